"""The README's lab command: up, a table of endpoints and people, the descriptor, and a clean stop."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from lab.__main__ import main
from lab.ad.ldap import connect
from lab.people import PEOPLE
from lab.slack.driver import SlackDriver
from lab.stack import Lab


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def test_lab_up_prints_where_everything_is_and_stops_on_sigterm(lab: Lab, tmp_path: Path) -> None:
    """Runs beside the shared lab: each lab's DC has its own loopback address."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab", "up", "--state-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout

    def pump() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    try:
        while not (seen and seen[-1].startswith("descriptor: ")):
            seen.append(lines.get(timeout=120))
        output = "".join(seen)
        path = Path(seen[-1].removeprefix("descriptor: ").strip())
        assert path == tmp_path.resolve() / "lab.json"
        descriptor = json.loads(path.read_text())
        assert {"ad", "entra", "slack", "duo", "people"} == set(descriptor)
        assert f"https://{descriptor['duo']['api_host']}" in output  # the Duo Auth API's row
        for p in PEOPLE:
            assert p.upn in output
        assert descriptor["ad"]["ldaps_url"] in output
        assert descriptor["slack"]["api_base"] in output
        ad = descriptor["ad"]
        assert ad["ldaps_url"] != lab.descriptor["ad"]["ldaps_url"]
        reader = ad["reader"]
        connect(reader["bind"], reader["password"], ca_file=Path(ad["ca_file"]), url=ad["ldaps_url"]).unbind()
        host = ad["ldaps_url"].removeprefix("ldaps://").split(":")[0]
        samba_pid = int((tmp_path / "samba" / "run" / "samba.pid").read_text())
        assert _alive(samba_pid)
        assert _device_code_interval(descriptor) == 5, "people get Microsoft's device-code interval by default"

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not _alive(samba_pid), "the lab left its samba process behind"
    assert not _port_open(host, 636)


def _device_code_interval(descriptor: dict[str, Any]) -> int:
    """The polling interval the lab's Entra announces to new device-code sign-ins, read from its control API."""
    entra = descriptor["entra"]
    with httpx.Client(verify=ssl.create_default_context(cafile=entra["ca_file"]), trust_env=False) as client:
        interval: int = client.get(entra["control"] + "/device/interval").json()["interval"]
    return interval


def _children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (Linux lists them per thread)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def _lab_up(tmp_path: Path, *args: str, env: dict[str, str] | None = None
            ) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab", "up", "--state-dir", str(tmp_path), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout

    def pump() -> None:
        for line in stdout:
            lines.put(line)
        lines.put("")  # end of output

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines


def test_lab_up_with_the_bot_answers_a_person_and_stops_the_bot_with_the_lab(lab: Lab, tmp_path: Path) -> None:
    """`resetbot-lab up --bot`: the bot is connected before the descriptor line, answers through the lab's Slack
    like any person would see it, and leaves no process behind on SIGTERM."""
    proc, lines = _lab_up(tmp_path, "--bot", "--device-code-interval", "1")
    seen: list[str] = []
    try:
        while not (seen and seen[-1].startswith("descriptor: ")):
            seen.append(lines.get(timeout=180))
            assert seen[-1], "".join(seen)
        assert any(line.startswith("bot: resetbot run is connected") for line in seen), "".join(seen)
        assert str(tmp_path.resolve() / "bot.log") in "".join(seen)
        descriptor = json.loads(Path(seen[-1].removeprefix("descriptor: ").strip()).read_text())
        assert _device_code_interval(descriptor) == 1
        [bot_pid] = [c for c in _children(proc.pid)
                     if b"bot\x00run" in Path(f"/proc/{c}/cmdline").read_bytes()]
        with SlackDriver(descriptor["slack"]["control"]) as driver:
            helpdesk = descriptor["slack"]["channels"]["helpdesk"]
            driver.command("hank", "/resetbot", "help", channel=helpdesk)
            said = driver.wait_for_ephemeral("hank", lambda e: "resets passwords in Entra ID" in e["text"],
                                             timeout=30)
        assert "/reset" in said["text"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not _alive(bot_pid), "the lab left the bot running"


def test_lab_up_with_a_bot_that_cannot_start_says_so_and_stops_the_lab(lab: Lab, tmp_path: Path) -> None:
    """A RESETBOT_* override the bot refuses (here a token Slack does not know) is told in one line with the log's
    path, and the lab goes down with exit status 1 instead of serving without a bot."""
    proc, lines = _lab_up(tmp_path, "--bot", env={"RESETBOT_SLACK_BOT_TOKEN": "xoxb-not-a-token-slack-knows"})
    try:
        assert proc.wait(timeout=180) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = []
    while (line := lines.get(timeout=10)) != "":
        output.append(line)
    text = "".join(output)
    assert "The bot did not start: resetbot run exited with status 2" in text, text
    assert "descriptor: " not in text
    assert "Lab stopped." in text
    assert "cannot start" in (tmp_path / "bot.log").read_text()
    samba_pid = int((tmp_path / "samba" / "run" / "samba.pid").read_text()) \
        if (tmp_path / "samba" / "run" / "samba.pid").exists() else None
    assert samba_pid is None or not _alive(samba_pid)


@pytest.mark.parametrize("bad", ["0", "61", "1.5", "five"])
def test_lab_up_refuses_a_device_code_interval_entra_could_not_announce(bad: str,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        main(["up", "--device-code-interval", bad])
    assert refused.value.code == 2
    assert f"whole seconds from 1 to 60, not {bad!r}" in capsys.readouterr().err

"""The README's lab command: up, a table of endpoints and people, the descriptor, and a clean stop."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from lab.ad.ldap import connect
from lab.people import PEOPLE
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
        assert {"ad", "entra", "slack", "people"} == set(descriptor)
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

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not _alive(samba_pid), "the lab left its samba process behind"
    assert not _port_open(host, 636)

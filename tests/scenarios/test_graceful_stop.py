"""``resetbot run`` as a real process, stopped with SIGTERM in the middle of a reset, in both Slack modes: it takes
no new work, the reset still posts its verdict, and the process exits 0 within its drain bound. And stopped in the
middle of a scheduled follow-up check: the check finishes (or is handed back when AD never answers), and after a
restart nothing is lost or said twice.

"In the middle" is made, not raced: the Entra stand-in holds the reset's operation ``running`` until the test has
seen the bot stop taking work, then releases it; a follow-up's LDAP search is held by freezing the lab's Samba
(SIGSTOP), which answers nothing until it is thawed."""

from __future__ import annotations

import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.cli.run import EXIT_TRY_AGAIN
from lab.demo import bot_environment
from lab.people import person
from lab.slack.driver import SlackDriver
from lab.stack import Lab
from tests.clients.graphlab import EntraControl
from tests.scenarios.harness import link_agent, thread
from tests.scenarios.test_followups_durable import (
    CONFIRMED,
    FAR_FOLLOWUP_ENV,
    _approve_alice,
    _make_due,
    _rows,
    _story_told_once,
)
from tests.scenarios.test_request_approval import request_for, slack_id

#: The bot's drain bound in these tests; the process must be gone well within it plus start-up slack.
DRAIN_SECONDS = 40


class BotProcess:
    """``python -m bot run`` with the lab's environment; its log lines are read as they come."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=env, cwd=cwd, text=True,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: list[str] = []
        self._new: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            self._new.put(line)

    def wait_for_line(self, needle: str, timeout: float = 30.0) -> str:
        """The first log line containing ``needle`` (already logged or still to come)."""
        seen = 0
        while True:
            for line in self.lines[seen:]:
                if needle in line:
                    return line
            seen = len(self.lines)
            try:
                self._new.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no log line with {needle!r}; log:\n" + "\n".join(self.lines)) from None

    def stop_hard(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def entra(lab: Lab) -> Iterator[EntraControl]:
    control = EntraControl(lab)
    control.reset()
    yield control
    control.reset(history=True)
    alice = person("alice")  # back to the fixture password, as the other reset stories leave it
    assert lab.ad.admin_connection().extend.microsoft.modify_password(alice.dn, alice.password)


def _start(lab: Lab, tmp_path: Path, mode: str, driver: SlackDriver, extra: dict[str, str] | None = None
           ) -> BotProcess:
    env = bot_environment(lab.descriptor, f"sqlite:///{tmp_path / 'resetbot.db'}")
    env["RESETBOT_DRAIN_SECONDS"] = str(DRAIN_SECONDS)
    env.update(extra or {})
    if mode == "http":
        env.update({"RESETBOT_SLACK_MODE": "http", "RESETBOT_HTTP_HOST": "127.0.0.1", "RESETBOT_HTTP_PORT": "0",
                    "RESETBOT_SLACK_SIGNING_SECRET": lab.descriptor["slack"]["signing_secret"]})
    before = len([c for c in driver.connections() if c.get("ready")])
    bot = BotProcess(env, tmp_path)
    line = bot.wait_for_line("serving Slack over")
    if mode == "http":
        url = line.rsplit(" ", 1)[-1]
        assert driver.set_request_url(url)["verified"]
    else:
        driver.wait_connected(before + 1)
    return bot


@pytest.mark.parametrize("mode", ["socket", "http"])
def test_sigterm_mid_reset_lets_the_verdict_land_and_takes_no_new_work(
        lab: Lab, driver: SlackDriver, entra: EntraControl, tmp_path: Path, mode: str) -> None:
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    bot = _start(lab, tmp_path, mode, driver)
    try:
        link_agent(lab, driver, "hank")
        request = request_for(lab, driver, "alice", f"stopped mid-reset over {mode}")
        ts = str(request["ts"])
        entra.faults(hold_operations=True)  # Graph keeps the reset running until the test releases it
        driver.click("mona", helpdesk, ts, "request_approve")
        driver.wait_for_message(helpdesk, lambda m: m["text"].startswith("Resetting"), thread_ts=ts, timeout=30)
        driver.wait_for(lambda: any(o["held"] for o in entra.operations()), timeout=30,
                        what="the stand-in to hold the reset")

        bot.proc.send_signal(signal.SIGTERM)
        bot.wait_for_line("stopping (SIGTERM)")
        assert not any("Done:" in m["text"] for m in driver.messages(helpdesk, thread_ts=ts)), "still resetting"
        if mode == "http":
            url = driver.http_requests()[-1]["url"]
            driver.wait_for(lambda: _refused(url), what="the HTTP port to close")
        else:
            driver.wait_for(lambda: not driver.connections(), what="the Socket Mode link to close")

        late = driver.command("hank", "/reset", f"<@{slack_id(lab, 'bob')}|bob> after SIGTERM", channel=helpdesk)
        assert late.get("error") == "dispatch_failed" and not late["acked"]
        assert bot.proc.poll() is None, "the stopping bot waits for the verdict of the reset in flight"

        entra.faults(hold_operations=False)
        done = driver.wait_for_message(helpdesk, lambda m: "Done:" in m["text"], thread_ts=ts, timeout=DRAIN_SECONDS)
        assert "must change it at next sign-in" in done["text"]
        assert bot.proc.wait(timeout=DRAIN_SECONDS) == 0, "\n".join(bot.lines)
        bot.wait_for_line("stopped: every reset in flight posted its verdict")
        assert not [m for m in driver.messages(helpdesk) if "after SIGTERM" in str(m["blocks"])]
        assert not [e for e in driver.ephemeral("hank") if "after SIGTERM" in e["text"]]
    finally:
        if mode == "http":
            driver.set_request_url(None)
        bot.stop_hard()


def _refused(url: str) -> bool:
    try:
        httpx.get(url, timeout=1, trust_env=False)
    except httpx.TransportError:
        return True
    return False


def test_sigint_when_idle_stops_at_once_and_exits_0(lab: Lab, driver: SlackDriver, tmp_path: Path) -> None:
    bot = _start(lab, tmp_path, "http", driver)
    try:
        bot.proc.send_signal(signal.SIGINT)
        assert bot.proc.wait(timeout=DRAIN_SECONDS) == 0, "\n".join(bot.lines)
        bot.wait_for_line("stopping (SIGINT)")
        bot.wait_for_line("stopped: every reset in flight posted its verdict")
    finally:
        driver.set_request_url(None)
        bot.stop_hard()


def test_a_taken_port_is_said_in_one_sentence(lab: Lab, driver: SlackDriver, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = bot_environment(lab.descriptor, f"sqlite:///{tmp_path / 'resetbot.db'}")
        env.update({"RESETBOT_SLACK_MODE": "http", "RESETBOT_HTTP_HOST": "127.0.0.1", "RESETBOT_HTTP_PORT": str(port),
                    "RESETBOT_SLACK_SIGNING_SECRET": lab.descriptor["slack"]["signing_secret"]})
        done = subprocess.run([sys.executable, "-m", "bot", "run"], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == EXIT_TRY_AGAIN, "the port may be the stopping instance's: starting again may work"
    assert f"resetbot cannot start: cannot listen on 127.0.0.1:{port}" in done.stderr
    assert lab.descriptor["slack"]["signing_secret"] not in done.stderr + done.stdout


def _stop_mid_followup(lab: Lab, driver: SlackDriver, tmp_path: Path) -> tuple[BotProcess, str, str]:
    """A bot whose reset of Alice succeeded, stopped with SIGTERM while its landed check is claimed and its LDAP
    search hangs on the frozen DC. Returns the stopping bot, the database URL and the request's thread."""
    url = f"sqlite:///{tmp_path / 'resetbot.db'}"
    bot = _start(lab, tmp_path, "socket", driver, FAR_FOLLOWUP_ENV)
    try:
        link_agent(lab, driver, "hank")
        ts = _approve_alice(lab, driver)
        lab.ad.freeze()
        _make_due(url, "landed", 0)
        driver.wait_for(lambda: [c for c in _rows(url)[1] if c.kind == "landed" and c.state == "running"],
                        timeout=30, what="the bot to claim the landed check")
        bot.proc.send_signal(signal.SIGTERM)
        bot.wait_for_line("stopping (SIGTERM)")
        assert bot.proc.poll() is None, "the stopping bot waits for the scheduled check in flight"
    except BaseException:
        lab.ad.thaw()
        bot.stop_hard()
        raise
    return bot, url, ts


def _restart_and_tell_the_rest(lab: Lab, driver: SlackDriver, tmp_path: Path, url: str, ts: str, *,
                               landed_too: bool = False) -> None:
    """A restarted bot runs the checks still ahead, each once (made due in turn), and repeats nothing the stopped
    one did: the whole story is then told once, in the thread, the DM and the audit trail."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    restarted = _start(lab, tmp_path, "socket", driver, FAR_FOLLOWUP_ENV)
    try:
        if landed_too:
            _make_due(url, "landed", 0)  # handed back due 30 s later; brought forward rather than waited for
            driver.wait_for_message(helpdesk, lambda m: CONFIRMED in m["text"], thread_ts=ts, timeout=60)
        _make_due(url, "replaced", 0)
        driver.wait_for_message(driver.dm_channel("alice"), lambda m: m["text"].startswith("Reminder"), timeout=60)
        _make_due(url, "replaced", 1)
        _story_told_once(lab, driver, url, ts)
        restarted.proc.send_signal(signal.SIGTERM)
        assert restarted.proc.wait(timeout=DRAIN_SECONDS) == 0, "\n".join(restarted.lines)
    finally:
        restarted.stop_hard()


def test_sigterm_while_a_followup_search_hangs_lets_the_check_finish_once(
        lab: Lab, driver: SlackDriver, entra: EntraControl, tmp_path: Path) -> None:
    """The DC answers again while the bot is stopping: the check it was running finishes and speaks before the
    process exits (the scheduler is stopped before Slack's client is closed). The window is the bot's LDAP timeout
    (10 s) from the claim; the test thaws the DC as soon as it has seen the bot stopping, well inside it."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    bot, url, ts = _stop_mid_followup(lab, driver, tmp_path)
    try:
        assert not [m for m in thread(driver, helpdesk, ts) if CONFIRMED in m["text"]], "held by the frozen DC"
        lab.ad.thaw()
        driver.wait_for_message(helpdesk, lambda m: CONFIRMED in m["text"], thread_ts=ts, timeout=DRAIN_SECONDS)
        assert bot.proc.wait(timeout=DRAIN_SECONDS) == 0, "\n".join(bot.lines)
        bot.wait_for_line("stopped: every reset in flight posted its verdict")
        assert not [line for line in bot.lines if "still running" in line], bot.lines
        [landed] = [c for c in _rows(url)[1] if c.kind == "landed"]
        assert (landed.state, landed.outcome, landed.attempts) == ("done", "landed", 1)
    finally:
        lab.ad.thaw()
        bot.stop_hard()
    _restart_and_tell_the_rest(lab, driver, tmp_path, url, ts)


def test_sigterm_while_the_dc_never_answers_hands_the_check_back_for_the_restart(
        lab: Lab, driver: SlackDriver, entra: EntraControl, tmp_path: Path) -> None:
    """The DC stays frozen through the whole stop: the search gives up at the bot's LDAP timeout (inside the drain
    bound), the check is handed back unanswered and uncounted, and the process still exits 0. The restarted bot
    answers it once; nothing was decided on the outage, nothing is said twice."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    bot, url, ts = _stop_mid_followup(lab, driver, tmp_path)
    try:
        assert bot.proc.wait(timeout=DRAIN_SECONDS) == 0, "\n".join(bot.lines)
        bot.wait_for_line("follow-ups: AD could not be read")
        bot.wait_for_line("stopped: every reset in flight posted its verdict")
    finally:
        lab.ad.thaw()
        bot.stop_hard()
    assert not [m for m in thread(driver, helpdesk, ts) if CONFIRMED in m["text"]]
    [landed] = [c for c in _rows(url)[1] if c.kind == "landed"]
    assert (landed.state, landed.claim, landed.attempts) == ("pending", None, 0), "handed back, not counted"
    assert "writeback_confirmed" not in [e.action for e in _rows(url)[2]]

    _restart_and_tell_the_rest(lab, driver, tmp_path, url, ts, landed_too=True)

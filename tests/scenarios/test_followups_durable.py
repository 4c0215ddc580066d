"""Follow-ups survive the bot being killed, and several replicas on one PostgreSQL run each check once.

The bot runs here as production runs it: ``python -m bot run`` processes configured only through their
environment. What is checked is what people see (the thread, the DM) and what the audit trail holds: each check's
outcome exactly once, and each check claimed once (``attempts``).

No test races a clock: the follow-ups are scheduled hours ahead (nothing can come due while a bot is killed or
started, however slow the machine), and the test then makes each check due in turn by writing its ``due_at``,
waiting for what it says before making the next one due. (Two checks of one kind due in one sweep would be one
check: the bot answers only the latest, by design.)
"""

from __future__ import annotations

import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import ldap3
import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.db import make_engine
from bot.models import AuditEvent, FollowUp, OutboxMessage, ResetRequest, utcnow
from bot.services.reset import LEASE, RECOVERY_GIVE_UP, RECOVERY_MARGIN
from lab.demo import bot_environment
from lab.people import person
from lab.slack.driver import SlackDriver
from lab.stack import Lab
from tests.clients.graphlab import EntraControl
from tests.scenarios.harness import link_agent, pg_schema_url, thread
from tests.scenarios.test_request_approval import request_for, slack_id

#: Short follow-up times (the landed check 4 s after the reset), for the test that is not about them.
FOLLOWUP_ENV = {
    "RESETBOT_SWEEP_SECONDS": "0.5",
    "RESETBOT_FOLLOWUP_LANDED_FIRST": "4s",
    "RESETBOT_FOLLOWUP_LANDED_DEADLINE": "5s",
    "RESETBOT_FOLLOWUP_REPLACED_AFTER": "6s,9s",
}
#: Follow-ups hours ahead: none comes due by itself during a test; ``_make_due`` brings each one forward.
FAR_FOLLOWUP_ENV = FOLLOWUP_ENV | {
    "RESETBOT_FOLLOWUP_LANDED_FIRST": "1h",
    "RESETBOT_FOLLOWUP_LANDED_DEADLINE": "2h",
    "RESETBOT_FOLLOWUP_REPLACED_AFTER": "3h,4h",
}
#: The killed bot's poll bound: far beyond the test, so it is still polling the held operation when killed.
KILLED_POLL_TIMEOUT_S = 600
CONFIRMED = "Confirmed on-premises: Active Directory shows the reset of Alice Archer's password"
FINAL = "has still not replaced the temporary password"


@pytest.fixture(autouse=True)
def _alice_back(lab: Lab) -> Iterator[None]:
    yield
    p = person("alice")
    assert lab.ad.admin_connection().extend.microsoft.modify_password(p.dn, p.password)


class BotProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=env, stdout=self._out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._out.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()


@contextmanager
def bots(driver: SlackDriver, env: dict[str, str], log: Path, count: int = 1) -> Iterator[list[BotProcess]]:
    before = len([c for c in driver.connections() if c.get("ready")])
    started = [BotProcess(env, log) for _ in range(count)]
    try:
        driver.wait_connected(before + count, timeout=60)
        yield started
    finally:
        for b in started:
            b.stop()


#: Each module shares one lab and resets the same few people many times: production's abuse limits (one open
#: request per target, a second approval for a target reset in the last day) would change these stories.
#: tests/scenarios/test_limits.py runs them as production does.
LOOSE_LIMITS_ENV = {"RESETBOT_LIMIT_AGENT_PER_HOUR": "10000", "RESETBOT_LIMIT_TEAM_PER_HOUR": "100000",
                    "RESETBOT_LIMIT_REPEAT_HOURS": "0"}


def _env(lab: Lab, url: str, followups: dict[str, str] = FOLLOWUP_ENV) -> dict[str, str]:
    env = bot_environment(lab.descriptor, url)
    env.update(LOOSE_LIMITS_ENV)
    env.update(followups)
    return env


def _rows(url: str) -> tuple[list[ResetRequest], list[FollowUp], list[AuditEvent]]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return (list(session.exec(select(ResetRequest))), list(session.exec(select(FollowUp))),
                    list(session.exec(select(AuditEvent))))
    finally:
        engine.dispose()


def _approve_alice(lab: Lab, driver: SlackDriver) -> str:
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    request = request_for(lab, driver, "alice", "durable follow-ups")
    ts = str(request["ts"])
    driver.click("mona", helpdesk, ts, "request_approve")
    driver.wait_for_message(helpdesk, lambda m: "sealed" in m["text"], thread_ts=ts, timeout=60)
    return ts


def _make_due(url: str, kind: str, step: int) -> None:
    """Bring one scheduled check forward to now (the bots' next sweep takes it)."""
    engine = make_engine(url)
    try:
        with Session(engine) as session, session.begin():
            moved = session.execute(sa.update(FollowUp)
                                    .where(col(FollowUp.kind) == kind, col(FollowUp.step) == step,
                                           col(FollowUp.state) == "pending")
                                    .values(due_at=utcnow()))
            assert moved.rowcount == 1, f"the {kind} check {step} was not pending"  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def _outbox(url: str, *, followups_only: bool = True) -> list[OutboxMessage]:
    """The outbox, oldest first: the follow-ups' messages (not the health pings' the bots also send)."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            rows = list(session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))))
            return [m for m in rows if m.origin.startswith("followup.") or not followups_only]
    finally:
        engine.dispose()


def _make_outbox_due(url: str) -> None:
    """Make every undelivered message due now, as if its retry time (or a dead sender's lease) had passed."""
    engine = make_engine(url)
    try:
        with Session(engine) as session, session.begin():
            session.execute(sa.update(OutboxMessage).where(col(OutboxMessage.state).in_(["pending", "sending"]))
                            .values(state="pending", next_at=utcnow(), claim=None, lease_until=None))
    finally:
        engine.dispose()


def _landed_while_slack_is_down(driver: SlackDriver, url: str) -> OutboxMessage:
    """Take chat.postMessage down, make the landed check due, and wait until its confirmation failed to post."""
    driver.faults(down=["chat.postMessage"])
    _make_due(url, "landed", 0)
    failed: OutboxMessage = driver.wait_for(
        lambda: next((m for m in _outbox(url) if m.attempts >= 1 and m.last_error == "service_unavailable"), None),
        timeout=60, what="the confirmation's post to fail")
    return failed


def _posted(driver: SlackDriver, text: str) -> int:
    return len([c for c in driver.calls("chat.postMessage") if c["ok"] and text in str(c["args"].get("text"))])


def _run_each_check_in_turn(lab: Lab, driver: SlackDriver, url: str, ts: str, *, outage: bool = False) -> None:
    """Make the landed check due, then the reminder, then the last word, each once the previous one spoke. With
    ``outage``, Slack is down when the landed check is answered, and back once its post has failed."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    if outage:
        try:
            _landed_while_slack_is_down(driver, url)
        finally:
            driver.faults(down=[])
        _make_outbox_due(url)
    else:
        _make_due(url, "landed", 0)
    driver.wait_for_message(helpdesk, lambda m: CONFIRMED in m["text"], thread_ts=ts, timeout=60)
    _make_due(url, "replaced", 0)
    driver.wait_for_message(driver.dm_channel("alice"), lambda m: m["text"].startswith("Reminder"), timeout=60)
    _make_due(url, "replaced", 1)


def _story_told_once(lab: Lab, driver: SlackDriver, url: str, ts: str) -> None:
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    driver.wait_for_message(helpdesk, lambda m: FINAL in m["text"], thread_ts=ts, timeout=60)
    said = [m["text"] for m in thread(driver, helpdesk, ts)]
    assert len([t for t in said if CONFIRMED in t]) == 1, said
    assert len([t for t in said if FINAL in t]) == 1, said
    reminders = [m for m in driver.messages(driver.dm_channel("alice")) if m["text"].startswith("Reminder")]
    assert len(reminders) == 1, reminders
    _, checks, events = _rows(url)
    assert sorted((c.kind, c.step, c.state, c.outcome, c.attempts) for c in checks) == [
        ("landed", 0, "done", "landed", 1), ("replaced", 0, "done", "reminded", 1),
        ("replaced", 1, "done", "never_replaced", 1)], "each check claimed once and answered once"
    actions = [e.action for e in events]
    for action in ("writeback_confirmed", "replace_reminded", "never_replaced"):
        assert actions.count(action) == 1, actions


def test_checks_pending_when_the_bot_is_killed_run_once_after_restart(
        lab: Lab, driver: SlackDriver, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'resetbot.db'}"
    env = _env(lab, url, FAR_FOLLOWUP_ENV)
    first = BotProcess(env, tmp_path / "bot.log")
    try:
        driver.wait_connected(1, timeout=60)
        link_agent(lab, driver, "hank")
        ts = _approve_alice(lab, driver)
        # The verdict's messages (the target's DM among them) are posted right after the commit: kill only once
        # Slack took them all, or a DM posted but not yet marked sent holds its conversation (the reminder to
        # Alice) behind its claim after the restart, and this test would be about the outbox, not the checks.
        driver.wait_for(lambda: all(m.state == "sent" for m in _outbox(url, followups_only=False)) or None,
                        timeout=60, what="every message of the reset marked sent")
    finally:
        first.kill()  # no goodbye: SIGKILL, with every follow-up still ahead
    _, checks, _ = _rows(url)
    killed_at = utcnow()
    assert sorted((c.kind, c.state, c.attempts) for c in checks) == [
        ("landed", "pending", 0), ("replaced", "pending", 0), ("replaced", "pending", 0)]
    assert all(c.due_at > killed_at + timedelta(minutes=30) for c in checks), "none could have come due yet"
    with bots(driver, env, tmp_path / "bot.log"):
        _run_each_check_in_turn(lab, driver, url, ts)
        _story_told_once(lab, driver, url, ts)


def test_two_bots_on_one_postgresql_run_each_check_once(lab: Lab, driver: SlackDriver, tmp_path: Path) -> None:
    """Slack is down when the landed check is answered: once it is back, both replicas' outbox runs race for the
    confirmation, and it is posted once; every other message too."""
    with pg_schema_url(None) as url:
        env = _env(lab, url, FAR_FOLLOWUP_ENV)
        # The schema is made by the first process to start; start one, then its twin.
        with bots(driver, env, tmp_path / "bot-1.log"), bots(driver, env, tmp_path / "bot-2.log"):
            link_agent(lab, driver, "hank")
            ts = _approve_alice(lab, driver)
            _run_each_check_in_turn(lab, driver, url, ts, outage=True)
            _story_told_once(lab, driver, url, ts)
            driver.wait_for(lambda: all(m.state == "sent" for m in _outbox(url, followups_only=False)) or None,
                            timeout=60, what="every message marked sent")
        assert _posted(driver, CONFIRMED) == 1, "both replicas retried; Slack took the confirmation once"
        assert [(m.origin, m.state) for m in _outbox(url)] == [
            ("followup.landed", "sent"), ("followup.replaced", "sent"), ("followup.replaced", "sent")]
        logs = (tmp_path / "bot-1.log").read_text() + (tmp_path / "bot-2.log").read_text()
        finished = [line for line in logs.splitlines() if "follow-up " in line and " of R-" in line]
        assert len(finished) == 3, finished


def test_messages_undelivered_when_the_bot_is_killed_are_posted_after_restart(
        lab: Lab, driver: SlackDriver, tmp_path: Path) -> None:
    """The landed check was answered while Slack was down, and the bot was killed before Slack came back: the
    outcome is recorded, its message waits in the outbox, and the restarted bot posts it, once."""
    url = f"sqlite:///{tmp_path / 'resetbot.db'}"
    env = _env(lab, url, FAR_FOLLOWUP_ENV)
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    first = BotProcess(env, tmp_path / "bot.log")
    try:
        driver.wait_connected(1, timeout=60)
        link_agent(lab, driver, "hank")
        ts = _approve_alice(lab, driver)
        _landed_while_slack_is_down(driver, url)
    finally:
        first.kill()
        driver.faults(down=[])
    [owed] = _outbox(url)
    assert (owed.kind, owed.state, owed.sent_at) == ("thread", "pending", None) and CONFIRMED in owed.text
    assert not [m for m in thread(driver, helpdesk, ts) if CONFIRMED in m["text"]]
    _, checks, events = _rows(url)
    assert [(c.state, c.outcome) for c in checks if c.kind == "landed"] == [("done", "landed")]
    assert [e.action for e in events].count("writeback_confirmed") == 1, "the outcome was recorded before the kill"
    _make_outbox_due(url)

    with bots(driver, env, tmp_path / "bot.log"):
        driver.wait_for_message(helpdesk, lambda m: CONFIRMED in m["text"], thread_ts=ts, timeout=60)
        driver.wait_for(lambda: all(m.state == "sent" for m in _outbox(url, followups_only=False)) or None,
                        timeout=60, what="the confirmation marked sent")
    assert len([m for m in thread(driver, helpdesk, ts) if CONFIRMED in m["text"]]) == 1
    assert _posted(driver, CONFIRMED) == 1
    _, checks, events = _rows(url)
    assert [c.attempts for c in checks if c.kind == "landed"] == [1], "the check itself was not run again"
    assert [e.action for e in events].count("writeback_confirmed") == 1


def _left_resetting_long_ago(url: str) -> None:
    """Age the killed bot's ``resetting`` request past the recovery threshold (its lease lapsed: nobody renews it)
    but not past the give-up bound, as time passing would."""
    stale = timedelta(seconds=2 * KILLED_POLL_TIMEOUT_S) + RECOVERY_MARGIN + timedelta(minutes=1)
    assert stale < RECOVERY_GIVE_UP
    engine = make_engine(url)
    try:
        with Session(engine) as session, session.begin():
            moved = session.execute(sa.update(ResetRequest).where(col(ResetRequest.state) == "resetting")
                                    .values(updated_at=utcnow() - stale, lease_until=utcnow() - stale + LEASE))
            assert moved.rowcount == 1  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def _bind_message(lab: Lab, upn: str, password: str) -> str:
    """"" when ``password`` signs in; else AD's bind message (data 52e: wrong password; 773: must change)."""
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(lab.ca.ca_file))
    server = ldap3.Server(lab.ad.ldaps_url, use_ssl=True, tls=tls, get_info=ldap3.NONE)
    conn = ldap3.Connection(server, user=upn, password=password, raise_exceptions=False)
    try:
        return "" if conn.bind() else str(conn.result["message"])
    finally:
        conn.unbind()


def test_a_reset_whose_bot_was_killed_while_graph_worked_is_finished_after_restart(
        lab: Lab, driver: SlackDriver, tmp_path: Path) -> None:
    """Killed between Graph's 202 and the verdict: the restarted bot asks Graph how the stored operation ended.
    The reset happened, but the temporary password died with the process: the thread says so, honestly.

    No race: the Entra stand-in holds the operation ``running`` (and AD untouched) until the bot is dead, and
    the bot would poll it far longer than the test takes."""
    entra = EntraControl(lab)
    entra.reset()  # this test's operations and requests only
    alice = person("alice")
    url = f"sqlite:///{tmp_path / 'resetbot.db'}"
    env = _env(lab, url) | {"RESETBOT_RESET_POLL_TIMEOUT_SECONDS": str(KILLED_POLL_TIMEOUT_S)}
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    before = entra.pwd_last_set(alice)
    assert before != 0
    try:
        first = BotProcess(env, tmp_path / "bot.log")
        try:
            driver.wait_connected(1, timeout=60)
            link_agent(lab, driver, "hank")
            request = request_for(lab, driver, "alice", "killed mid-reset")
            ts = str(request["ts"])
            entra.faults(hold_operations=True)
            driver.click("mona", helpdesk, ts, "request_approve")
            held = driver.wait_for(lambda: next((o for o in entra.operations() if o["held"]), None), timeout=60,
                                   what="the stand-in to hold the reset")
            driver.wait_for(lambda: next((r for r in _rows(url)[0] if r.operation_location), None), timeout=60,
                            what="the bot to store Graph's operation")
        finally:
            first.kill()
        [req] = _rows(url)[0]
        assert req.state == "resetting" and req.verdict is None
        assert req.operation_location is not None and req.operation_location.endswith(f"/operations/{held['id']}")
        assert entra.pwd_last_set(alice) == before, "AD untouched while Graph holds the reset"
        started = [m["text"] for m in thread(driver, helpdesk, ts)]
        assert started[-1].startswith("Resetting Alice Archer's password"), started

        entra.faults(hold_operations=False)
        driver.wait_for(lambda: [o["status"] for o in entra.operations()] == ["succeeded"], timeout=60,
                        what="the released operation to succeed")
    finally:
        entra.faults(hold_operations=False)
    _left_resetting_long_ago(url)

    with bots(driver, env, tmp_path / "bot.log"):
        said = driver.wait_for_message(helpdesk, lambda m: "resetbot restarted" in m["text"], thread_ts=ts, timeout=60)
        assert said["text"] == (":white_check_mark: Entra reports that the reset of Alice Archer's password "
                                "succeeded, but resetbot restarted before it could seal the temporary password, so "
                                "nobody can reveal it. Ask again for a new reset to get a password you can read out.")
        driver.wait_for_message(helpdesk, lambda m: CONFIRMED in m["text"], thread_ts=ts, timeout=30)
    told = [m["text"] for m in thread(driver, helpdesk, ts)]
    assert told[:len(started)] == started and len(told) == len(started) + 2, told  # one verdict, one follow-up
    assert told[-2] == said["text"] and CONFIRMED in told[-1], told
    assert not [m for m in thread(driver, helpdesk, ts) if "sealed until you reveal" in m["text"]]

    assert entra.pwd_last_set(alice) == 0, "AD has the reset: must change at next sign-in"
    assert "data 52e" in _bind_message(lab, alice.upn, alice.password), "the old password no longer works"
    resets = [r for r in entra.requests("graph") if r["method"] == "POST" and r["path"].endswith("/resetPassword")]
    assert len(resets) == 1, "the restarted bot asked how it ended; it did not reset again"

    [req], checks, events = _rows(url)
    assert req.state == "succeeded" and req.graph_operation_id == held["id"]
    assert [c.kind for c in checks] == ["landed"], "nobody holds the password: no reminders about it"
    mine = [e for e in events if e.request_id == req.id]
    hank, mona = (slack_id(lab, k) for k in ("hank", "mona"))
    assert [(e.action, e.actor) for e in mine] == [
        ("requested", hank), ("approval_added", mona), ("approved", mona), ("reset_started", "system"),
        ("succeeded", "system"), ("writeback_confirmed", "scheduler")], "each step once, the verdict recovered"
    [done] = [e for e in mine if e.action == "succeeded"]
    assert done.actor == "system" and '"recovered":true' in done.detail

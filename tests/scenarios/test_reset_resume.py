"""A bot killed (SIGKILL) between the request becoming ``resetting`` and Graph's operation being stored: the next
bot resumes the reset instead of answering "unknown" (issue 17).

The window is pinned, not raced: Graph answers the ``resetPassword`` POST 429 with a Retry-After far longer than
the test waits, so the killed bot is inside it (``resetting``, its baseline and client-request-id stored, no
operation) when it dies, and Graph never heard of the reset. The lease a killed bot leaves lapses a minute later;
the test ages it instead of waiting, as time passing would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col

from bot.db import make_engine
from bot.models import ResetRequest, utcnow
from lab.people import person
from lab.slack.driver import SlackDriver
from lab.stack import Lab
from tests.clients.graphlab import EntraControl
from tests.scenarios.harness import link_agent, thread
from tests.scenarios.test_followups_durable import FAR_FOLLOWUP_ENV, BotProcess, _bind_message, _env, _rows, bots
from tests.scenarios.test_request_approval import request_for

UNKNOWN = "stopped in the middle of this reset, before Entra said"


@pytest.fixture
def entra(lab: Lab) -> Iterator[EntraControl]:
    control = EntraControl(lab)
    control.reset()  # this test's operations and requests only
    yield control
    control.faults(throttle_next=0, retry_after=1, fault_path="")
    p = person("alice")
    assert lab.ad.admin_connection().extend.microsoft.modify_password(p.dn, p.password)


def _posts(entra: EntraControl) -> list[dict[str, object]]:
    return [r for r in entra.requests("graph") if r["method"] == "POST" and str(r["path"]).endswith("/resetPassword")]


def _lease_lapsed(url: str) -> None:
    """The killed bot's lease, a minute on: lapsed (nobody renews it); the reset began moments ago."""
    engine = make_engine(url)
    try:
        with Session(engine) as session, session.begin():
            moved = session.execute(sa.update(ResetRequest).where(col(ResetRequest.state) == "resetting")
                                    .values(lease_until=utcnow()))
            assert moved.rowcount == 1  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def _killed_before_graph_accepted(lab: Lab, driver: SlackDriver, entra: EntraControl, env: dict[str, str],
                                  log: Path) -> tuple[str, ResetRequest]:
    """Approve a reset of Alice and SIGKILL the bot while Graph keeps its resetPassword waiting (429)."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    url = env["RESETBOT_DATABASE_URL"]
    first = BotProcess(env, log)
    try:
        driver.wait_connected(1, timeout=60)
        link_agent(lab, driver, "hank")
        request = request_for(lab, driver, "alice", "killed before Graph answered")
        ts = str(request["ts"])
        entra.faults(throttle_next=1, retry_after=50, fault_path="resetPassword")
        driver.click("mona", helpdesk, ts, "request_approve")
        driver.wait_for(lambda: [r for r in _posts(entra) if r["status"] == 429] or None, timeout=60,
                        what="Graph to keep the reset waiting")
    finally:
        first.kill()
    [req] = _rows(url)[0]
    assert (req.state, req.operation_location, req.verdict) == ("resetting", None, None)
    return ts, req


def test_a_reset_killed_before_graph_accepted_it_is_made_by_the_next_bot(
        lab: Lab, driver: SlackDriver, entra: EntraControl, tmp_path: Path) -> None:
    """AD shows no write since the baseline recorded with ``resetting``: Graph never acted, so the next bot makes
    the reset (once), and the thread hears an ordinary verdict with its Reveal button. It used to say "unknown"."""
    alice = person("alice")
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    url = f"sqlite:///{tmp_path / 'resetbot.db'}"
    env = _env(lab, url, FAR_FOLLOWUP_ENV)
    before = entra.pwd_last_set(alice)
    ts, req = _killed_before_graph_accepted(lab, driver, entra, env, tmp_path / "bot.log")
    assert req.baseline_pwd_last_set == before and req.baseline_key_version is not None
    assert req.client_request_id, "the call's client-request-id is recorded before Graph is called"
    assert entra.pwd_last_set(alice) == before, "Graph never got to AD"
    started = [m["text"] for m in thread(driver, helpdesk, ts)]
    entra.faults(throttle_next=0)
    _lease_lapsed(url)

    with bots(driver, env, tmp_path / "bot.log"):
        done = driver.wait_for_message(helpdesk, lambda m: "Done:" in m["text"], thread_ts=ts, timeout=60)
        assert "must change it at next sign-in" in done["text"]
        driver.wait_for_message(helpdesk, lambda m: "sealed until you reveal" in m["text"], thread_ts=ts)
    told = [m["text"] for m in thread(driver, helpdesk, ts)]
    assert told[:len(started)] == started and not [t for t in told if UNKNOWN in t], told
    assert len([t for t in told if "Done:" in t]) == 1, told
    accepted = [r for r in _posts(entra) if r["status"] == 202]
    assert len(accepted) == 1, "one reset reached Graph: the resumed one"
    assert entra.pwd_last_set(alice) == 0, "AD has the reset: must change at next sign-in"
    assert "data 52e" in _bind_message(lab, alice.upn, alice.password), "the old password no longer works"
    [req], _, events = _rows(url)
    assert req.state == "succeeded" and req.graph_operation_id
    mine = [(e.action, e.detail) for e in events if e.request_id == req.id]
    assert [a for a, _ in mine].count("succeeded") == 1 and [a for a, _ in mine].count("reset_started") == 1, mine
    [(_, detail)] = [m for m in mine if m[0] == "succeeded"]
    assert '"made_again":true' in detail and '"recovered":true' in detail


def test_a_reset_killed_after_it_reached_ad_is_said_to_have_changed_the_password(
        lab: Lab, driver: SlackDriver, entra: EntraControl, tmp_path: Path) -> None:
    """AD shows a write since the baseline (here made while the bot is dead, as writeback would have made it had
    Graph accepted the reset just before the kill): the password changed and its value died with the process. The
    next bot says exactly that, audits it, and does not reset again."""
    alice = person("alice")
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    url = f"sqlite:///{tmp_path / 'resetbot.db'}"
    env = _env(lab, url, FAR_FOLLOWUP_ENV)
    ts, req = _killed_before_graph_accepted(lab, driver, entra, env, tmp_path / "bot.log")
    entra.faults(throttle_next=0)
    admin = lab.ad.admin_connection()
    assert admin.extend.microsoft.modify_password(alice.dn, EntraControl.fresh_password())
    _lease_lapsed(url)

    with bots(driver, env, tmp_path / "bot.log"):
        said = driver.wait_for_message(helpdesk, lambda m: "nobody holds the new password" in m["text"],
                                       thread_ts=ts, timeout=60)
    assert said["text"].startswith(":warning: resetbot stopped in the middle of this reset, before it stored "
                                   "Entra's answer. Active Directory shows that Alice Archer's password was changed")
    assert f"<@{req.requester}>, make a new request" in said["text"]
    told = [m["text"] for m in thread(driver, helpdesk, ts)]
    assert not [t for t in told if UNKNOWN in t or "sealed until you reveal" in t], told
    assert not [r for r in _posts(entra) if r["status"] == 202], "nothing was reset again"
    [req], _, events = _rows(url)
    assert req.state == "succeeded"
    [detail] = [e.detail for e in events if e.request_id == req.id and e.action == "succeeded"]
    assert '"ad":"written"' in detail and '"recovered":true' in detail

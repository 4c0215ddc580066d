"""Recovery never takes a live reset for a dead bot's (issue 14, item 9).

The bot here polls Graph for one second only (``RESETBOT_RESET_POLL_TIMEOUT_SECONDS=1``), so a reset counts as
left behind twelve seconds after it started: a reset still retrying a throttled Graph, or whose operation is
still running when its poll gives up, is exactly what recovery used to mistake for a stopped bot's."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from ldap3.core.exceptions import LDAPBindError

from bot.domain.lifecycle import RequestState
from bot.models import ResetRequest, utcnow
from lab.ad.ldap import connect
from lab.people import person
from lab.slack.driver import SlackDriver
from lab.stack import Lab
from tests.clients.graphlab import EntraControl
from tests.scenarios.harness import RunningBot, lab_settings, link_agent, request_row, running_bot, thread, wait_until
from tests.scenarios.test_request_approval import request_for
from tests.scenarios.test_reset_withheld import taps_of


@pytest.fixture(scope="module")
def bot(lab: Lab, driver: SlackDriver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBot]:
    db: Path = tmp_path_factory.mktemp("recovery") / "resetbot.db"
    with running_bot(lab_settings(lab, f"sqlite:///{db}", reset_poll_timeout_seconds=1), driver) as running:
        link_agent(lab, driver, "hank")
        yield running


@pytest.fixture
def entra(lab: Lab) -> Iterator[EntraControl]:
    control = EntraControl(lab)
    control.reset(history=True)
    yield control
    control.reset(history=True)
    admin = lab.ad.admin_connection()
    for key in ("alice", "bob"):
        assert admin.extend.microsoft.modify_password(person(key).dn, person(key).password)


def _request(bot: RunningBot, ts: str) -> ResetRequest:
    return request_row(bot, ts)


def _reveal_and_sign_in(lab: Lab, driver: SlackDriver, ts: str, key: str) -> None:
    """The requester reveals the password, and it is the one AD now holds (it must be changed first: 773)."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    reveal = driver.wait_for_message(helpdesk, lambda m: "sealed until you reveal" in m["text"], thread_ts=ts)
    driver.click("hank", helpdesk, reveal["ts"], "reset_reveal")
    modal = driver.wait_for_view("hank", lambda v: v.get("callback_id") == "reveal_password")
    password = str(modal["blocks"][1]["text"]["text"]).strip("`")
    with pytest.raises(LDAPBindError) as refused:
        connect(person(key).upn, password, ca_file=lab.ad.ca.ca_file, url=lab.ad.ldaps_url)
    assert "773" in str(refused.value) or "invalidCredentials" in str(refused.value)


def test_a_reset_still_retrying_a_throttled_graph_is_not_recovered(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl) -> None:
    """Graph answers the resetPassword POST 429 with Retry-After, twice: the live reset waits and retries, and
    meanwhile a sweep (this process's or another replica's) looks for resets left behind. It used to mark this one
    failed ("interrupted") while Graph went on to set the password nobody could then reveal."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    reset = bot.services.reset
    request = request_for(lab, driver, "bob", "throttled while recovering")
    ts = str(request["ts"])
    # Aimed at resetPassword: the approval's own Graph reads (who is who, the protection check) come first.
    entra.faults(throttle_next=2, retry_after=3, fault_path="resetPassword")
    driver.click("mona", helpdesk, ts, "request_approve")
    wait_until(lambda: [r for r in entra.requests("graph") if r["status"] == 429], what="Graph's first 429")
    req = _request(bot, ts)
    assert req.state == RequestState.RESETTING
    started = req.updated_at
    assert reset.recover_interrupted(now=started + reset.stale_after + timedelta(seconds=1)) == 0, \
        "a reset whose process is alive is nobody else's to recover"
    done = driver.wait_for_message(helpdesk, lambda m: "Done:" in m["text"], thread_ts=ts, timeout=30)
    assert "must change it at next sign-in" in done["text"]
    req = wait_until(lambda: (r := _request(bot, ts)).verdict and r, what="the verdict")
    assert req.state == RequestState.SUCCEEDED
    actions = [e.action for e in bot.audit(req.id)]
    assert actions.count("succeeded") == 1 and "failed" not in actions, actions
    _reveal_and_sign_in(lab, driver, ts, "bob")


def test_a_poll_that_times_out_asks_graph_again_later_instead_of_failing(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl) -> None:
    """Graph holds the operation ``running`` past the one-second poll: the reset used to end "failed" (unknown)
    although Graph could still make it. Now the thread hears that Entra is still working, the request stays
    resetting, and the next sweep after Graph finished records the real verdict, with the Reveal button: the
    password was kept sealed meanwhile."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    reset = bot.services.reset
    request = request_for(lab, driver, "alice", "graph slower than the poll")
    ts = str(request["ts"])
    entra.faults(hold_operations=True)
    try:
        driver.click("mona", helpdesk, ts, "request_approve")
        said = driver.wait_for_message(helpdesk, lambda m: "still working" in m["text"], thread_ts=ts, timeout=30)
        assert said["text"] == (":hourglass_flowing_sand: Entra is still working on the reset of Alice Archer's "
                                "password. I'll keep asking and say here how it ends.")
        assert reset.wait_idle(timeout=30)
        req = _request(bot, ts)
        assert (req.state, req.verdict) == (RequestState.RESETTING, None)
        assert reset.recover_interrupted() == 0, "Graph is still working: asked again at the next sweep"
        assert _request(bot, ts).state == RequestState.RESETTING
    finally:
        entra.faults(hold_operations=False)
    wait_until(lambda: [o["status"] for o in entra.operations()] == ["succeeded"], what="Graph to finish")
    assert reset.recover_interrupted() == 1
    done = driver.wait_for_message(helpdesk, lambda m: "Done:" in m["text"], thread_ts=ts, timeout=30)
    assert "must change it at next sign-in" in done["text"]
    assert not [m for m in thread(driver, helpdesk, ts) if "failed" in m["text"].lower()]
    req = _request(bot, ts)
    assert req.state == RequestState.SUCCEEDED
    _reveal_and_sign_in(lab, driver, ts, "alice")
    actions = [e.action for e in bot.audit(req.id)]
    assert actions[-2:] == ["succeeded", "revealed"], actions


def _slow_resetting_post(lab: Lab, driver: SlackDriver, entra: EntraControl, ts: str) -> None:
    """Approve, and make the "Resetting…" post slow as a rate-limited Slack makes it: three 429s with Retry-After
    before Slack takes it (slack-sdk waits each out). Pinned, not raced: Graph answers slowly while the approval's
    re-check reads it, after "Approved by" is posted and before the reset's first post, and the 429s are planned
    then, so they meet that post and no other."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    entra.faults(latency_ms=1500)
    driver.click("mona", helpdesk, ts, "request_approve")
    driver.wait_for_message(helpdesk, lambda m: m["text"].startswith("Approved by"), thread_ts=ts)
    def limited() -> int:
        return len([c for c in driver.calls("chat.postMessage") if c["status"] == 429])

    before = limited()
    driver.faults(fail_next={"method": "chat.postMessage", "status": 429, "count": 3})
    entra.faults(latency_ms=0)
    # Three 429s: two Retry-After waits (over a second each) behind it, and one still ahead.
    driver.wait_for(lambda: limited() >= before + 3 or None, timeout=30,
                    what="the reset's first post to be rate-limited three times")


def _resets_of(entra: EntraControl) -> list[dict[str, object]]:
    return [r for r in entra.requests("graph") if r["method"] == "POST" and str(r["path"]).endswith("/resetPassword")]


def test_a_slow_first_post_does_not_let_recovery_take_a_live_reset(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 14, finding 2: the "Resetting…" post used to run before the lease's heartbeat began, so a post slower
    than the lease (Slack rate-limiting the channel) let any replica's sweep take the live reset for a dead bot's
    and call it unknown, while the live one went on to set the password. A short lease (the field that
    ``RESETBOT_RESET_LEASE_SECONDS`` sets) makes the window seconds long; the heartbeat now runs from the moment
    the request is ``resetting``."""
    monkeypatch.setattr(bot.services.reset, "lease", timedelta(seconds=1.5))  # renewed every 0.375 s
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    request = request_for(lab, driver, "bob", "slack slower than the lease")
    ts = str(request["ts"])
    try:
        _slow_resetting_post(lab, driver, entra, ts)
        req = _request(bot, ts)
        assert req.state == RequestState.RESETTING
        assert utcnow() > req.updated_at + timedelta(seconds=1.5), "the first lease would have lapsed by now"
        assert bot.services.reset.recover_interrupted() == 0, "a reset whose process is alive is nobody's to recover"
    finally:
        driver.faults(fail_next=[])
    done = driver.wait_for_message(helpdesk, lambda m: "Done:" in m["text"], thread_ts=ts, timeout=30)
    assert "must change it at next sign-in" in done["text"]
    assert not [m for m in thread(driver, helpdesk, ts) if "stopped in the middle" in m["text"]]
    assert len(_resets_of(entra)) == 1
    _reveal_and_sign_in(lab, driver, ts, "bob")


def test_the_lease_of_a_reset_graph_is_still_working_on_is_renewed_by_its_poller(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 13 part 2: after Graph's 202 no thread of the reset's own is left (the one poller follows the
    operation), so the poller must keep the lease alive while Graph works, or a replica's sweep would take a live
    reset for a dead bot's. With a short lease and Graph holding the operation, the lease keeps moving ahead well
    past two whole leases; released, the reset ends with its verdict, Graph asked once."""
    monkeypatch.setattr(bot.services.reset, "lease", timedelta(seconds=1.5))  # renewed every 0.375 s
    monkeypatch.setattr(bot.services.reset, "poll_timeout_s", 30.0)  # this module's is a second: Graph outlasts it
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    request = request_for(lab, driver, "bob", "graph slower than the lease")
    ts = str(request["ts"])
    entra.faults(hold_operations=True)
    try:
        driver.click("mona", helpdesk, ts, "request_approve")
        wait_until(lambda: next((o for o in entra.operations() if o["held"]), None), timeout=30,
                   what="the stand-in to hold the reset")
        first = _request(bot, ts).lease_until
        assert first is not None
        later = wait_until(lambda: (r := _request(bot, ts)).lease_until and r.lease_until > first + timedelta(
            seconds=3) and r, timeout=30, what="the lease to be renewed past two whole leases")
        assert later.state == RequestState.RESETTING and later.lease_until > utcnow(), "still ahead, still ours"
    finally:
        entra.faults(hold_operations=False)
    done = driver.wait_for_message(helpdesk, lambda m: "Done:" in m["text"], thread_ts=ts, timeout=30)
    assert "must change it at next sign-in" in done["text"]
    assert len(_resets_of(entra)) == 1
    assert _request(bot, ts).lease_until is None, "the verdict gives the lease back"


def test_a_reset_that_lost_its_lease_does_not_call_graph(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl) -> None:
    """Issue 14, finding 2: however its lease was lost (the process paused longer than the lease, the database
    away for as long), a reset checks it is still its own right before ``resetPassword``. Here another replica's
    recovery takes it while its first post is slow, finds AD untouched and makes the reset itself: the live
    process must then not reset the password a second time under the recovered one."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    reset = bot.services.reset
    request = request_for(lab, driver, "alice", "lease taken while posting")
    ts = str(request["ts"])
    try:
        _slow_resetting_post(lab, driver, entra, ts)
        # A sweep whose clock says the lease lapsed long ago: it claims the request as a dead bot's.
        assert reset.recover_interrupted(now=utcnow() + timedelta(minutes=5)) == 1
    finally:
        driver.faults(fail_next=[])
    assert reset.wait_idle(timeout=30)
    bot.services.outbox.deliver()  # the recovered verdict waited behind the slow post in the same thread
    done = driver.wait_for_message(helpdesk, lambda m: "Done:" in m["text"], thread_ts=ts, timeout=30)
    assert "must change it at next sign-in" in done["text"]
    said = [m["text"] for m in thread(driver, helpdesk, ts)]
    assert len([t for t in said if "Done:" in t]) == 1 and not [t for t in said if "stopped in the middle" in t], said
    assert len(_resets_of(entra)) == 1, "the process that lost its lease did not call Graph"
    req = _request(bot, ts)
    assert req.state == RequestState.SUCCEEDED
    _reveal_and_sign_in(lab, driver, ts, "alice")


def test_a_tap_issued_before_the_bot_stopped_is_deleted_by_recovery(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl, monkeypatch: pytest.MonkeyPatch) -> None:
    """Entra issued the pass and the process stopped before its verdict: the pass died with it (it is sealed only
    with the verdict), so nobody can ever be shown it, and it must not stay usable for its hour either. Recovery
    (here a sweep whose clock says the lease lapsed long ago, while the live process is held right after the pass's
    id is recorded) says so in the thread, deletes it in Entra with the agent's token and audits it."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    reset = bot.services.reset
    entra.assign("hedy", "Authentication Administrator")
    link_agent(lab, driver, "hedy")
    request = request_for(lab, driver, "bob", "tap, then the bot stops", by="hedy", flags="--tap")
    ts = str(request["ts"])
    noted, go = threading.Event(), threading.Event()
    note = reset._note_tap

    def noted_then_held(request_id: str, method_id: str) -> None:
        """The process "stops" here: the pass's id is recorded, its verdict never comes (until released)."""
        note(request_id, method_id)
        noted.set()
        go.wait(timeout=60)

    monkeypatch.setattr(reset, "_note_tap", noted_then_held)
    try:
        driver.click("mona", helpdesk, ts, "request_approve")
        assert noted.wait(timeout=30), "Entra issued the TAP"
        assert len(taps_of(entra, "bob")) == 1
        assert reset.recover_interrupted(now=utcnow() + timedelta(minutes=5)) == 1
    finally:
        go.set()
    assert reset.wait_idle(timeout=30)
    said = driver.wait_for_message(helpdesk, lambda m: "stopped before anyone was shown it" in m["text"],
                                   thread_ts=ts, timeout=30)
    assert "deletes it in Entra" in said["text"]
    driver.wait_for_message(helpdesk, lambda m: "withheld Temporary Access Pass" in m["text"]
                            and "no longer exists" in m["text"], thread_ts=ts, timeout=30)
    assert taps_of(entra, "bob") == [], "the pass nobody can be shown no longer exists in Entra"
    deleted = [r for r in entra.requests("graph") if r["method"] == "DELETE"]
    assert [(r["user"], r["status"]) for r in deleted] == [(person("hedy").upn, 204)]
    req = _request(bot, ts)
    assert req.state == RequestState.FAILED
    trail = bot.audit(req.id)
    assert '"withheld":"interrupted"' in next(e.detail for e in trail if e.action == "tap_deleted")
    assert not [m for m in thread(driver, helpdesk, ts) if "press Reveal" in m["text"]]

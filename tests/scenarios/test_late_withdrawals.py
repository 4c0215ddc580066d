"""What a Cancel, Deny or "This wasn't me" does when it lands at the worst moment: while the requester's Reveal is
opening (the password is claimed, Slack opens the modal), or while the approved request's last check runs before
the reset. And a Duo push answered after its agent left the helpdesk. Asserted as people see it: the audit rows,
the thread, the sentence the clicker reads."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col

from bot import store
from bot.domain.lifecycle import RequestState
from bot.ids import new_correlation_id
from bot.models import ResetRequest, SealedSecret
from lab.slack.driver import SlackDriver
from lab.stack import Lab
from tests.scenarios.harness import (
    RunningBot,
    verifying_bot,
    wait_until,
)
from tests.scenarios.test_request_approval import request_for
from tests.scenarios.test_verification import duo_answer, helpdesk, in_thread, req_of, request_id, security, verify


@pytest.fixture(scope="module")
def bot(lab: Lab, driver: SlackDriver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBot]:
    yield from verifying_bot(lab, driver, tmp_path_factory)


def _reset_made(lab: Lab, bot: RunningBot, driver: SlackDriver, key: str, reason: str) -> tuple[dict[str, Any], str]:
    """A verified, approved request whose reset succeeded: (its request message, its id)."""
    duo_answer(lab, key, "allow")
    request = request_for(lab, driver, key, reason)
    rid = request_id(driver, lab, request)
    verify(lab, driver, request, "duo-push")
    in_thread(lab, driver, request, "Caller verified by Duo push")
    driver.click("mona", helpdesk(lab), request["ts"], "request_approve", stale_ok=True)
    wait_until(lambda: req_of(bot, request).state == RequestState.SUCCEEDED, timeout=30, what="the reset")
    in_thread(lab, driver, request, "sealed until you reveal it")  # the Reveal button a person presses
    driver.wait_for_message(driver.dm_channel(key), lambda m: rid in m["text"] and "reset by the helpdesk" in m["text"],
                            timeout=20)
    return request, rid


def test_a_cancel_while_the_reveal_opens_records_the_reveal_and_says_treat_it_as_read(
        lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """Hank presses Reveal (the password is claimed while Slack opens the modal) and Cancel lands meanwhile (another
    replica, another handler thread): the password is on his screen, so the trail and the thread say it was
    revealed and that it must be treated as read, never "discarded unrevealed"."""
    request, rid = _reset_made(lab, bot, driver, "bob", "reveal then cancel")
    hank = req_of(bot, request).requester
    shown, sentence = bot.services.reset.reveal(request_id=rid, actor=hank, correlation_id=new_correlation_id())
    assert shown is not None, sentence
    told = bot.services.requests.cancel(request_id=rid, actor=hank, correlation_id=new_correlation_id())
    assert told is not None and "treat it as read" in told
    bot.services.reset.reveal_shown(shown, actor=hank, correlation_id=new_correlation_id())
    events = bot.audit(rid)
    actions = [e.action for e in events]
    assert "revealed" in actions and "unrevealed_discarded" not in actions, actions
    assert any(e.action == "reset_withdrawn" and '"reveal_under_way":true' in (e.detail or "")
               for e in events)
    in_thread(lab, driver, request, "treat the password as read")
    in_thread(lab, driver, request, "revealed the temporary password")
    with bot.session() as session:
        assert not store.sealed.has_sealed(session, request_id=rid)


def test_this_wasnt_me_while_the_reveal_opens_records_the_reveal_and_offers_scramble(
        lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """The same with the target's "This wasn't me": the reveal is recorded, the thread says to treat the password as
    read, and security's alert offers Scramble password, as for any revealed password."""
    request, rid = _reset_made(lab, bot, driver, "bob", "reveal then not me")
    req = req_of(bot, request)
    shown, sentence = bot.services.reset.reveal(request_id=rid, actor=req.requester,
                                                correlation_id=new_correlation_id())
    assert shown is not None, sentence
    bot.services.reset.not_me(request_id=rid, actor=req.target_slack_id or "", correlation_id=new_correlation_id())
    bot.services.reset.reveal_shown(shown, actor=req.requester, correlation_id=new_correlation_id())
    events = bot.audit(rid)
    assert "revealed" in [e.action for e in events]
    disowned = [e for e in events if e.action == "reset_disowned"]
    assert disowned and "unrevealed_discarded" not in (disowned[0].detail or "")
    assert '"reveal_under_way":true' in (disowned[0].detail or "")
    in_thread(lab, driver, request, "treat the password as read")
    driver.wait_for_message(security(lab), lambda m: f"Containing {rid}" in m["text"]
                            and "Scramble password" in m["text"], timeout=20)


def test_a_reveal_that_fails_to_open_after_a_cancel_is_discarded_not_given_back(
        lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """The Cancel left the password to the reveal under way, but Slack did not open the modal after all: the claim
    is not given back (the next click would read what the Cancel withdrew); it is discarded unrevealed, and said."""
    request, rid = _reset_made(lab, bot, driver, "bob", "reveal fails after cancel")
    hank = req_of(bot, request).requester
    shown, sentence = bot.services.reset.reveal(request_id=rid, actor=hank, correlation_id=new_correlation_id())
    assert shown is not None, sentence
    bot.services.requests.cancel(request_id=rid, actor=hank, correlation_id=new_correlation_id())
    bot.services.reset.reveal_not_shown(shown, actor=hank, correlation_id=new_correlation_id(),
                                        error="expired_trigger_id")
    in_thread(lab, driver, request, "did not open after all")
    actions = [e.action for e in bot.audit(rid)]
    assert "unrevealed_discarded" in actions and "revealed" not in actions, actions
    again, refused = bot.services.reset.reveal(request_id=rid, actor=hank, correlation_id=new_correlation_id())
    assert again is None and refused


def test_a_reveal_whose_password_was_discarded_meanwhile_is_still_audited(
        lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """A reveal that held its claim past its time (its replica stalled while Slack opened the modal) finds its row
    discarded when Slack says the modal is open: the password was shown all the same, so "revealed" is written."""
    request, rid = _reset_made(lab, bot, driver, "alice", "reveal outlives its claim")
    hank = req_of(bot, request).requester
    shown, sentence = bot.services.reset.reveal(request_id=rid, actor=hank, correlation_id=new_correlation_id())
    assert shown is not None, sentence
    with bot.session() as session:  # what a discard does once the claim has lapsed
        session.execute(sa.delete(SealedSecret).where(col(SealedSecret.request_id) == rid))
        session.commit()
    bot.services.reset.reveal_shown(shown, actor=hank, correlation_id=new_correlation_id())
    revealed = [e for e in bot.audit(rid) if e.action == "revealed"]
    assert len(revealed) == 1 and "after_discard" in (revealed[0].detail or ""), revealed
    in_thread(lab, driver, request, "revealed the temporary password")


@pytest.fixture
def slow_recheck(bot: RunningBot) -> Iterator[threading.Event]:
    """The approved request's last check before the reset (AD, Graph roles) held until the test lets it go."""
    gate = threading.Event()
    reset = bot.services.reset
    original = reset.recheck
    assert original is not None

    def slow(req: Any) -> Any:
        gate.wait(30)
        return original(req)

    reset.recheck = slow
    yield gate
    gate.set()
    reset.recheck = original


@pytest.mark.parametrize("who", ["approver", "requester"])
def test_a_deny_or_cancel_while_approved_stops_the_reset(
        lab: Lab, bot: RunningBot, driver: SlackDriver, slow_recheck: threading.Event, who: str) -> None:
    """The request is approved and its check before the reset is slow (or its replica died there): the approver's
    Deny, or the requester's Cancel, still stops it. Nothing is set; the thread and the trail say who stopped it."""
    duo_answer(lab, "alice", "allow")
    request = request_for(lab, driver, "alice", f"{who} stops it while approved")
    rid = request_id(driver, lab, request)
    verify(lab, driver, request, "duo-push")
    in_thread(lab, driver, request, "Caller verified by Duo push")
    driver.click("mona", helpdesk(lab), request["ts"], "request_approve", stale_ok=True)
    wait_until(lambda: req_of(bot, request).state == RequestState.APPROVED, what="approved")
    req = req_of(bot, request)
    if who == "approver":
        said = bot.services.requests.deny(request_id=rid, actor=req.manager_slack_id or "",
                                          reason="impostor on the line", correlation_id=new_correlation_id())
    else:
        said = bot.services.requests.cancel(request_id=rid, actor=req.requester, correlation_id=new_correlation_id())
    assert said is None, said  # decided: the thread says so, not a refusal
    slow_recheck.set()
    assert bot.services.reset.wait_idle(timeout=30)
    final = RequestState.DENIED if who == "approver" else RequestState.CANCELLED
    assert req_of(bot, request).state == final
    actions = [e.action for e in bot.audit(rid)]
    assert "reset_started" not in actions and final.value in actions, actions
    in_thread(lab, driver, request, "Denied by" if who == "approver" else "Cancelled by")
    shown, sentence = bot.services.reset.reveal(request_id=rid, actor=req.requester,
                                                correlation_id=new_correlation_id())
    assert shown is None and sentence


def test_a_cancel_that_loses_the_race_is_answered_and_audited(
        lab: Lab, bot: RunningBot, driver: SlackDriver, slow_recheck: threading.Event,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Hank's Cancel read the request as approved, but the approver's Deny moved it first: his compare-and-set
    finds nothing to move. He is told where it stands, and the refusal is in the trail, never silence."""
    duo_answer(lab, "bob", "allow")
    request = request_for(lab, driver, "bob", "cancel loses the race")
    rid = request_id(driver, lab, request)
    verify(lab, driver, request, "duo-push")
    in_thread(lab, driver, request, "Caller verified by Duo push")
    driver.click("mona", helpdesk(lab), request["ts"], "request_approve", stale_ok=True)
    wait_until(lambda: req_of(bot, request).state == RequestState.APPROVED, what="approved")
    stale = req_of(bot, request)
    requests = bot.services.requests
    assert requests.deny(request_id=rid, actor=stale.manager_slack_id or "", reason="impostor on the line",
                         correlation_id=new_correlation_id()) is None
    slow_recheck.set()
    monkeypatch.setattr(requests, "_load", lambda _rid: (stale, []))  # what Hank's click read, before the Deny
    said = requests.cancel(request_id=rid, actor=stale.requester, correlation_id=new_correlation_id())
    assert said is not None and "no longer waiting for a decision" in said, said
    refused = [e for e in bot.audit(rid) if e.action == "refused"]
    assert refused and '"attempted":"cancel"' in (refused[-1].detail or ""), refused


_HELPDESK_GROUP = "S00HELPDESK"


@pytest.fixture
def hank_leaves(driver: SlackDriver) -> Iterator[Callable[[], None]]:
    """Take Hank out of the agents' user group (as an admin would); he is put back after the test."""
    def leave() -> None:
        driver.usergroup("ivan", "update", usergroup=_HELPDESK_GROUP, users=["hedy"])
    yield leave
    driver.usergroup("ivan", "update", usergroup=_HELPDESK_GROUP, users=["hank", "hedy"])


def test_a_duo_push_answered_after_the_agent_left_resets_nothing(
        lab: Lab, bot: RunningBot, driver: SlackDriver, hank_leaves: Callable[[], None]) -> None:
    """Approved first; Hank starts a Duo push while an agent and is removed from the helpdesk before the phone
    approves: the caller is verified, but the check before the reset finds Hank no longer an agent. Nothing is set;
    the thread says why in one sentence and the trail has the refusal."""
    request = request_for(lab, driver, "alice", "push answered after leaving")
    rid = request_id(driver, lab, request)
    driver.click("mona", helpdesk(lab), request["ts"], "request_approve", stale_ok=True)
    wait_until(lambda: "approval_added" in [e.action for e in bot.audit(rid)], what="mona's approval")
    duo_answer(lab, "alice", "allow", delay_ms=6000)
    verify(lab, driver, request, "duo-push")
    driver.wait_for_ephemeral("hank", lambda e: e["text"].startswith("Verification by Duo push started"))
    hank_leaves()
    in_thread(lab, driver, request, "Caller verified by Duo push")
    in_thread(lab, driver, request, "no longer a helpdesk agent")
    assert bot.services.reset.wait_idle(timeout=30)
    events = bot.audit(rid)
    assert req_of(bot, request).state == RequestState.CANCELLED
    assert "reset_started" not in [e.action for e in events]
    assert any(e.action == "refused" and '"requester_not_an_agent"' in (e.detail or "") for e in events)


def test_a_target_delivery_request_without_the_targets_slack_account_resets_nothing(
        lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """A request stored with delivery ``target`` but no Slack id for the target (refused at /reset, so only an old
    or altered row): nobody may reveal its password, so none is made, rather than letting the agent reveal it."""
    request = request_for(lab, driver, "bob", "target delivery without a slack id")
    rid = request_id(driver, lab, request)
    with bot.session() as session:
        session.execute(sa.update(ResetRequest).where(col(ResetRequest.id) == rid)
                        .values(delivery="target", target_slack_id=None))
        session.commit()
    duo_answer(lab, "bob", "allow")
    verify(lab, driver, request, "duo-push")
    in_thread(lab, driver, request, "Caller verified by Duo push")
    driver.click("mona", helpdesk(lab), request["ts"], "request_approve", stale_ok=True)
    in_thread(lab, driver, request, "nobody could read")
    assert bot.services.reset.wait_idle(timeout=30)
    assert req_of(bot, request).state == RequestState.CANCELLED
    assert "reset_started" not in [e.action for e in bot.audit(rid)]

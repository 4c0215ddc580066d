"""Verifying the caller before a reset: a Slack code, a Duo push, the target's Yes, a call-back. The reset is made
only once the request is approved and its caller verified, in either order; each failure ends in a sentence, an
audit row and, where the caller may be an impostor, a security alert. No code reaches anything but the target's DM.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import ssl
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot.clients.duo import DuoAuth
from bot.domain.lifecycle import RequestState
from bot.domain.verification import CODE_ALPHABET, CODE_LENGTH
from bot.models import ResetRequest, utcnow
from bot.settings import Delivery
from lab.ad.seed import group_dn
from lab.slack.driver import Message, SlackDriver
from lab.stack import Lab
from tests.clients.graphlab import EntraControl
from tests.scenarios.conftest import with_rules
from tests.scenarios.harness import (
    RunningBot,
    request_row,
    verifying_bot,
    wait_until,
)
from tests.scenarios.test_request_approval import request_for, slack_id
from tests.scenarios.test_reset import everything_people_and_storage_hold

_CODE = re.compile(rf"\*([{CODE_ALPHABET}]{{{CODE_LENGTH}}})\*")


@pytest.fixture(scope="module")
def bot(lab: Lab, driver: SlackDriver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBot]:
    yield from verifying_bot(lab, driver, tmp_path_factory)


def helpdesk(lab: Lab) -> str:
    return str(lab.descriptor["slack"]["channels"]["helpdesk"])


def security(lab: Lab) -> str:
    return str(lab.descriptor["slack"]["channels"]["security"])


def req_of(bot: RunningBot, request: dict[str, Any]) -> ResetRequest:
    return request_row(bot, request["ts"])


def in_thread(lab: Lab, driver: SlackDriver, request: dict[str, Any], text: str) -> Message:
    return driver.wait_for_message(helpdesk(lab), lambda m: text in m["text"], thread_ts=request["ts"], timeout=20)


def verify(lab: Lab, driver: SlackDriver, request: dict[str, Any], method: str, *, by: str = "hank") -> None:
    rid = request_id(driver, lab, request)
    driver.click(by, helpdesk(lab), request["ts"], f"caller_verify_{method.replace('-', '_')}",
                 value=f"{rid}|{method}", stale_ok=True)


def request_id(driver: SlackDriver, lab: Lab, request: dict[str, Any]) -> str:
    found = re.search(r"R-[0-9A-Z]{6}", str(request["blocks"]))
    assert found
    return found.group(0)


def code_sent_to(driver: SlackDriver, key: str, rid: str) -> str:
    dm = driver.wait_for_message(driver.dm_channel(key), lambda m: rid in m["text"] and "read them this code"
                                 in m["text"], timeout=20)
    found = _CODE.search(dm["text"])
    assert found, dm["text"]
    return found.group(1)


def enter_code(lab: Lab, driver: SlackDriver, request: dict[str, Any], code: str) -> None:
    prompt = in_thread(lab, driver, request, "press *Enter code*")
    before = len(driver.views("hank"))
    driver.click("hank", helpdesk(lab), prompt["ts"], "caller_enter_code", value=request_id(driver, lab, request),
                 stale_ok=True)
    modal = driver.wait_for(lambda: next((v for v in driver.views("hank")[before:]
                                          if v.get("callback_id") == "verify_code"), None))
    driver.submit("hank", modal["id"], {"verify_code_input": code})


def duo_answer(lab: Lab, username: str, result: str, delay_ms: int = 100) -> None:
    duo = lab.descriptor["duo"]
    with httpx.Client(verify=ssl.create_default_context(cafile=duo["ca_file"]), trust_env=False) as http:
        http.post(f"{duo['control']}/answer", json={"username": username, "result": result,
                                                    "delay_ms": delay_ms}).raise_for_status()


def test_a_slack_code_verifies_the_caller_and_only_then_the_reset_is_made(
        lab: Lab, bot: RunningBot, driver: SlackDriver, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    request = request_for(lab, driver, "alice", "new phone, locked out")
    assert "Caller not verified yet" in str(request["blocks"])
    driver.click("mona", helpdesk(lab), request["ts"], "request_approve")
    in_thread(lab, driver, request, "waiting for the caller to be verified")
    assert req_of(bot, request).state == RequestState.PENDING_APPROVAL, "approval alone must not reset"

    rid = request_id(driver, lab, request)
    verify(lab, driver, request, "slack-code")
    code = code_sent_to(driver, "alice", rid)
    enter_code(lab, driver, request, code.lower())  # read over the phone: case does not matter
    in_thread(lab, driver, request, "Caller verified by Slack code")
    in_thread(lab, driver, request, "Approved by")
    wait_until(lambda: req_of(bot, request).verdict, timeout=30, what="the reset's verdict")
    assert req_of(bot, request).state == RequestState.SUCCEEDED
    actions = [e.action for e in bot.audit(rid)]
    assert actions[:5] == ["requested", "approval_added", "verify_started", "caller_verified", "approved"]
    assert '"method":"slack-code"' in next(e.detail for e in bot.audit(rid) if e.action == "caller_verified")

    everywhere = everything_people_and_storage_hold(lab, driver, bot)
    assert everywhere.count(code) == 1, "the code is anywhere but in the one DM to the target"
    assert code.lower() not in everywhere
    logs = "\n".join(r.getMessage() + str(r.args) + str(r.exc_info) for r in caplog.records)
    assert code not in logs and code.lower() not in logs, "the code (or what the agent typed) reached a log"


def test_three_wrong_codes_fail_the_verification_and_alert_security(lab: Lab, bot: RunningBot,
                                                                    driver: SlackDriver) -> None:
    request = request_for(lab, driver, "bob", "says he is Bob")
    rid = request_id(driver, lab, request)
    verify(lab, driver, request, "slack-code")
    code = code_sent_to(driver, "bob", rid)
    wrong = next(c * CODE_LENGTH for c in CODE_ALPHABET if c * CODE_LENGTH != code)
    enter_code(lab, driver, request, wrong)
    driver.wait_for_ephemeral("hank", lambda e: "2 tries left" in e["text"])
    enter_code(lab, driver, request, wrong)
    driver.wait_for_ephemeral("hank", lambda e: "1 try left" in e["text"])
    enter_code(lab, driver, request, wrong)
    driver.wait_for_ephemeral("hank", lambda e: e["text"].startswith("The caller failed verification 3 times"))
    in_thread(lab, driver, request, "failed verification 3 times (3 wrong Slack codes;")
    alert = driver.wait_for_message(security(lab), lambda m: "3 times (3 wrong Slack codes)" in m["text"])
    assert "Bob Baker" in alert["text"] and rid in alert["text"]

    enter_code_again = in_thread(lab, driver, request, "press *Enter code*")
    driver.click("hank", helpdesk(lab), enter_code_again["ts"], "caller_enter_code", value=rid, stale_ok=True)
    driver.wait_for_ephemeral("hank", lambda e: "cannot be verified any more" in e["text"])
    driver.click("mona", helpdesk(lab), request["ts"], "request_approve", stale_ok=True)
    in_thread(lab, driver, request, "waiting for the caller to be verified")
    req = req_of(bot, request)
    assert req.state == RequestState.PENDING_APPROVAL and req.verification == "blocked"
    assert [e.action for e in bot.audit(rid)].count("verify_code_wrong") == 2
    failed = next(e for e in bot.audit(rid) if e.action == "verify_failed")
    assert '"outcome":"wrong_code"' in failed.detail and code not in failed.detail


def test_the_alert_after_three_failed_tries_names_the_methods_tried(lab: Lab, bot: RunningBot,
                                                                    driver: SlackDriver) -> None:
    """A Duo push nobody approved, then two wrong codes: the request's three tries are spent, and what security,
    the thread and the agent read says so, not "three wrong Slack codes"."""
    duo_answer(lab, "bob", "deny")
    request = request_for(lab, driver, "bob", "push then codes")
    rid = request_id(driver, lab, request)
    verify(lab, driver, request, "duo-push")
    in_thread(lab, driver, request, "was denied on")
    verify(lab, driver, request, "slack-code")
    code = code_sent_to(driver, "bob", rid)
    wrong = next(c * CODE_LENGTH for c in CODE_ALPHABET if c * CODE_LENGTH != code)
    enter_code(lab, driver, request, wrong)
    driver.wait_for_ephemeral("hank", lambda e: "1 try left" in e["text"])
    enter_code(lab, driver, request, wrong)
    alert = driver.wait_for_message(security(lab), lambda m: rid in m["text"])
    assert "1 Duo push nobody approved and 2 wrong Slack codes" in alert["text"], alert["text"]
    assert "Slack code verification" not in alert["text"]
    said = in_thread(lab, driver, request, "failed verification 3 times")
    assert "1 Duo push nobody approved and 2 wrong Slack codes" in said["text"]
    told = driver.wait_for_ephemeral("hank", lambda e: "3 times" in e["text"])
    assert "1 Duo push nobody approved and 2 wrong Slack codes" in told["text"]


def test_a_duo_push_approved_first_then_the_approval_resets(lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    duo_answer(lab, "alice", "allow")
    request = request_for(lab, driver, "alice", "duo then approval")
    rid = request_id(driver, lab, request)
    verify(lab, driver, request, "duo-push")
    in_thread(lab, driver, request, "sent a Duo push")
    in_thread(lab, driver, request, "Caller verified by Duo push")
    assert req_of(bot, request).state == RequestState.PENDING_APPROVAL
    redrawn = driver.wait_for_message(helpdesk(lab), lambda m: m["ts"] == request["ts"]
                                      and "Caller verified by Duo push" in str(m["blocks"]))
    assert "Verify caller" not in str(redrawn["blocks"]), "no verification is offered once the caller is verified"
    driver.click("mona", helpdesk(lab), request["ts"], "request_approve", stale_ok=True)
    in_thread(lab, driver, request, "Approved by")
    wait_until(lambda: req_of(bot, request).verdict, timeout=30, what="the reset's verdict")
    assert req_of(bot, request).state == RequestState.SUCCEEDED
    duo = lab.descriptor["duo"]
    with httpx.Client(verify=ssl.create_default_context(cafile=duo["ca_file"]), trust_env=False) as http:
        pushes = http.get(f"{duo['control']}/pushes", params={"username": "alice"}).json()
    assert any(rid in (p["pushinfo"] or "") for p in pushes), "the phone shows which request it is for"


@pytest.mark.parametrize(("answer", "said"), [("deny", "was denied on"), ("timeout", "Nobody answered")])
def test_a_denied_or_unanswered_duo_push_leaves_the_caller_unverified(
        lab: Lab, bot: RunningBot, driver: SlackDriver, answer: str, said: str) -> None:
    duo_answer(lab, "bob", answer)
    request = request_for(lab, driver, "bob", f"duo {answer}")
    rid = request_id(driver, lab, request)
    driver.click("mona", helpdesk(lab), request["ts"], "request_approve")
    verify(lab, driver, request, "duo-push")
    in_thread(lab, driver, request, said)
    req = req_of(bot, request)
    assert req.state == RequestState.PENDING_APPROVAL and req.verification == "failed"
    failed = next(e for e in bot.audit(rid) if e.action == "verify_failed")
    assert f'"outcome":"{answer}"' in failed.detail


def test_a_duo_push_reported_as_fraud_cancels_and_alerts_security(lab: Lab, bot: RunningBot,
                                                                  driver: SlackDriver) -> None:
    duo_answer(lab, "bob", "fraud")
    request = request_for(lab, driver, "bob", "duo fraud")
    rid = request_id(driver, lab, request)
    verify(lab, driver, request, "duo-push")
    in_thread(lab, driver, request, "reported the Duo push as fraud")
    alert = driver.wait_for_message(security(lab), lambda m: "reported a helpdesk Duo push as fraud" in m["text"])
    assert rid in alert["text"]
    wait_until(lambda: req_of(bot, request).state == RequestState.CANCELLED, what="the request cancelled")
    assert "cancelled" in [e.action for e in bot.audit(rid)]


def duo_press(lab: Lab, username: str, result: str) -> None:
    """The person answers their push that is still waiting, now (``duo_hold`` kept it waiting)."""
    duo = lab.descriptor["duo"]
    with httpx.Client(verify=ssl.create_default_context(cafile=duo["ca_file"]), trust_env=False) as http:
        http.post(f"{duo['control']}/press", json={"username": username, "result": result}).raise_for_status()


def duo_hold(lab: Lab, username: str) -> None:
    """That person's next push waits until ``duo_press`` (the phone left unanswered well past the test)."""
    duo_answer(lab, username, "timeout", delay_ms=600_000)


def test_a_duo_fraud_after_the_approval_cancels_before_any_reset(lab: Lab, bot: RunningBot,
                                                                 driver: SlackDriver) -> None:
    """Mona approved first; the request waits for its caller, whose Duo push the person reports as fraud: cancelled,
    nothing reset, and security told which request (its thread's link) and where it stood."""
    request = request_for(lab, driver, "bob", "approved, then fraud")
    rid = request_id(driver, lab, request)
    driver.click("mona", helpdesk(lab), request["ts"], "request_approve")
    in_thread(lab, driver, request, "waiting for the caller to be verified")
    duo_answer(lab, "bob", "fraud")
    verify(lab, driver, request, "duo-push")
    said = in_thread(lab, driver, request, "reported the Duo push as fraud")
    assert "cancelled" in said["text"]
    alert = driver.wait_for_message(security(lab), lambda m: rid in m["text"] and "fraud" in m["text"])
    assert "waiting for its caller to be verified" in alert["text"], alert["text"]
    assert f"/archives/{helpdesk(lab)}/p{str(request['ts']).replace('.', '')}" in alert["text"], "the thread's link"
    assert "nothing was changed" in alert["text"]
    wait_until(lambda: req_of(bot, request).state == RequestState.CANCELLED, what="the request cancelled")
    trail = [e.action for e in bot.audit(rid)]
    assert "cancelled" in trail and "reset_started" not in trail
    assert '"outcome":"fraud"' in next(e.detail for e in bot.audit(rid) if e.action == "verify_failed")


@pytest.mark.parametrize("when", ["running", "made"])
def test_a_duo_fraud_once_the_reset_ran_withholds_it_and_security_contains_it(
        lab: Lab, bot: RunningBot, driver: SlackDriver, when: str) -> None:
    """Verification not required here: the agent sent a push anyway, Mona approved, and the reset ran (or was made)
    before the person reported the push as fraud. Their report counts as their "No": nobody may read the password,
    their sessions are revoked, security hears that the password WAS changed (with the thread's link) and gets
    Scramble password."""
    entra = EntraControl(lab)
    with_rules(bot, verify_required=False)
    try:
        duo_hold(lab, "bob")
        request = request_for(lab, driver, "bob", f"fraud once {when}")
        rid = request_id(driver, lab, request)
        verify(lab, driver, request, "duo-push")
        in_thread(lab, driver, request, "Duo push")
        if when == "running":
            entra.faults(hold_operations=True)
        driver.click("mona", helpdesk(lab), request["ts"], "request_approve")
        if when == "running":
            wait_until(lambda: any(op["held"] for op in entra.operations()), what="the reset held in Entra")
        else:
            in_thread(lab, driver, request, "Done:")
        duo_press(lab, "bob", "fraud")
        said = in_thread(lab, driver, request, "reported the Duo push as fraud")
        assert "cancelled" not in said["text"]
        alert = driver.wait_for_message(security(lab), lambda m: rid in m["text"] and "fraud" in m["text"])
        assert f"/archives/{helpdesk(lab)}/p{str(request['ts']).replace('.', '')}" in alert["text"]
        assert ("being reset" if when == "running" else "WAS reset") in alert["text"], alert["text"]
        entra.faults(hold_operations=False)
        done = in_thread(lab, driver, request, "Done:")
        if when == "running":
            assert "discarded unrevealed" in done["text"]
        contained = driver.wait_for_message(security(lab), lambda m: f"Containing {rid}" in m["text"], timeout=30)
        assert "reset_scramble" in str(contained["blocks"]), "security may scramble the password the caller knows"
        in_thread(lab, driver, request, "sign-in sessions are revoked")
        reveal, sentence = bot.services.reset.reveal(request_id=rid, actor=req_of(bot, request).requester,
                                                     correlation_id="c-test")
        assert reveal is None and sentence is not None
        trail = [e.action for e in bot.audit(rid)]
        assert "target_disowned" in trail and "sessions_revoked" in trail
        assert "cancelled" not in trail
    finally:
        entra.faults(hold_operations=False)
        with_rules(bot, verify_required=True)


def test_only_the_requesting_agent_verifies(lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    request = request_for(lab, driver, "nora", "not the agent")
    verify(lab, driver, request, "duo-push", by="hedy")
    driver.wait_for_ephemeral("hedy", lambda e: "Only the agent who made the request" in e["text"])
    assert req_of(bot, request).verification == "none"


def test_the_targets_yes_verifies_and_a_callback_lists_only_numbers_on_file(lab: Lab, bot: RunningBot,
                                                                          driver: SlackDriver) -> None:
    request = request_for(lab, driver, "bob", "confirm by slack")
    verify(lab, driver, request, "slack-confirm")
    dm = driver.dm_channel("bob")
    question = driver.wait_for_message(dm, lambda m: "Did you ask the helpdesk" in str(m["blocks"]))
    driver.click("bob", dm, question["ts"], "target_confirm_yes")
    in_thread(lab, driver, request, "Caller verified by Slack confirmation")

    other = request_for(lab, driver, "alice", "callback please")
    before = len(driver.views("hank"))
    verify(lab, driver, other, "callback")
    modal = driver.wait_for(lambda: next((v for v in driver.views("hank")[before:]
                                          if v.get("callback_id") == "verify_callback"), None))
    shown = str(modal["blocks"])
    assert "+1 206 555 0103" in shown and "+1 206 555 0150" in shown
    driver.submit("hank", modal["id"], {"verify_callback_input": ["attested"]})
    verified = in_thread(lab, driver, other, "Caller verified by call-back")
    assert "weakest" in verified["text"]


def call_back(lab: Lab, driver: SlackDriver, request: dict[str, Any]) -> None:
    """Hank attests that he called the person back on a number on file (the form's one tick)."""
    before = len(driver.views("hank"))
    verify(lab, driver, request, "callback")
    modal = driver.wait_for(lambda: next((v for v in driver.views("hank")[before:]
                                          if v.get("callback_id") == "verify_callback"), None))
    driver.submit("hank", modal["id"], {"verify_callback_input": ["attested"]})


def test_approvals_given_before_a_call_back_must_be_given_again(lab: Lab, bot: RunningBot,
                                                                driver: SlackDriver) -> None:
    """Mona approves while the caller is "not verified yet", trusting a real verification to follow; Hank then
    attests a call-back, which is only his word. Her approval does not start the reset: the thread says why, the
    request message offers Approve again, the approvers are asked again, and her next Approve (she has now seen
    the call-back) starts it. A request needing two approvals needs both again."""
    mona = slack_id(lab, "mona")
    request = request_for(lab, driver, "alice", "approved before the call-back")
    rid = request_id(driver, lab, request)
    driver.click("mona", helpdesk(lab), request["ts"], "request_approve")
    waiting = in_thread(lab, driver, request, "waiting for the caller to be verified")
    assert "If the agent verifies by call-back (their word only), the approval must be given again" in waiting["text"]
    call_back(lab, driver, request)
    in_thread(lab, driver, request, "Caller verified by call-back")
    again = in_thread(lab, driver, request, "approve again")
    assert "call-back only" in again["text"] and "the agent's word" in again["text"]
    assert f"<@{mona}>" in again["text"], "the approver whose approval no longer counts is told"
    assert req_of(bot, request).state == RequestState.PENDING_APPROVAL, "a call-back must not start the reset"
    driver.wait_for_ephemeral("hank", lambda e: "no longer counts: the approvers are asked to approve again"
                              in e["text"])
    redrawn = driver.wait_for_message(helpdesk(lab), lambda m: m["ts"] == request["ts"]
                                      and "Caller verified by call-back" in str(m["blocks"]))
    assert "(0 of 1)" in str(redrawn["blocks"]) and "request_approve" in str(redrawn["blocks"])
    asked = driver.wait_for_message(driver.dm_channel("mona"), lambda m: rid in m["text"] and "again" in m["text"])
    assert "call-back" in asked["text"] and f"<#{helpdesk(lab)}>" in asked["text"], "as when the request was made"
    not_counted = next(e for e in bot.audit(rid) if e.action == "approval_not_counted")
    assert f'"approver":"{mona}"' in not_counted.detail and '"reason":"verified_by_callback_after"' \
        in not_counted.detail

    driver.click("mona", helpdesk(lab), request["ts"], "request_approve", stale_ok=True)  # the same approver
    in_thread(lab, driver, request, "Approved by")
    wait_until(lambda: req_of(bot, request).verdict, timeout=30, what="the reset's verdict")
    assert req_of(bot, request).state == RequestState.SUCCEEDED
    assert [e.action for e in bot.audit(rid)][:7] == [
        "requested", "approval_added", "verify_started", "caller_verified", "approval_not_counted",
        "approval_added", "approved"], "the early approval stays on record, with why it did not count"

    # Alice was just reset: within the repeat window her next request needs two different approvers.
    rules = bot.services.requests.rules
    with_rules(bot, limits=dataclasses.replace(rules.limits, repeat_hours=24))
    try:
        request = request_for(lab, driver, "alice", "two approvers, one before the call-back")
        assert "(0 of 2)" in str(request["blocks"])
        driver.click("mona", helpdesk(lab), request["ts"], "request_approve")
        in_thread(lab, driver, request, "(1 of 2)")
        call_back(lab, driver, request)
        in_thread(lab, driver, request, "approve again")
        driver.wait_for_message(helpdesk(lab), lambda m: m["ts"] == request["ts"] and "(0 of 2)" in str(m["blocks"])
                                and "Caller verified by call-back" in str(m["blocks"]))
        driver.click("mona", helpdesk(lab), request["ts"], "request_approve", stale_ok=True)
        driver.wait_for(lambda: len([m for m in driver.messages(helpdesk(lab), thread_ts=request["ts"])
                                     if "(1 of 2)" in m["text"]]) == 2)  # her approval counted again
        assert req_of(bot, request).state == RequestState.PENDING_APPROVAL
        driver.click("gina", helpdesk(lab), request["ts"], "request_approve", stale_ok=True)
        in_thread(lab, driver, request, "Approved by")
        wait_until(lambda: req_of(bot, request).verdict, timeout=30, what="the second reset's verdict")
        assert req_of(bot, request).state == RequestState.SUCCEEDED
    finally:
        bot.services.requests.rules = rules


def test_verify_on_the_command_line_starts_at_once(lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    request = request_for(lab, driver, "bob", "verify from the command", flags="--verify slack-code")
    rid = request_id(driver, lab, request)
    code_sent_to(driver, "bob", rid)
    in_thread(lab, driver, request, "started verification by Slack code")
    driver.command("hank", "/reset", "bob --verify sms", channel=helpdesk(lab))
    driver.wait_for_ephemeral("hank", lambda e: e["text"].startswith("`sms` is not a verification method"))


def test_a_protected_account_is_not_verified_by_a_call_back(lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    with_rules(bot, protected_group_dns=[group_dn("approvers")], protected_allowed=["ivan"])
    request = request_for(lab, driver, "ivan", "protected caller", flags="--verify callback")
    assert "call-back" not in str(request["blocks"]), "the weakest method is not offered for a protected account"
    driver.wait_for_ephemeral("hank", lambda e: "A call-back is not enough for a protected" in e["text"])
    assert req_of(bot, request).verification == "none"
    refused = bot.audit(req_of(bot, request).id)[-1]
    assert refused.action == "refused" and '"reason":"callback_not_for_protected"' in refused.detail
    driver.click("hank", helpdesk(lab), request["ts"], "request_cancel")


def test_target_delivery_reveals_only_to_the_target(lab: Lab, bot: RunningBot, driver: SlackDriver,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """RESETBOT_DELIVERY=target: the thread says who can reveal, the agent cannot, the target can, once."""
    caplog.set_level(logging.DEBUG)
    reset = bot.services.reset
    reset.delivery, bot.services.requests.rules = Delivery.TARGET, dataclasses.replace(
        bot.services.requests.rules, delivery=Delivery.TARGET)
    try:
        duo_answer(lab, "alice", "allow")
        request = request_for(lab, driver, "alice", "deliver to her", flags="--verify duo-push")
        in_thread(lab, driver, request, "Caller verified by Duo push")
        driver.click("mona", helpdesk(lab), request["ts"], "request_approve", stale_ok=True)
        done = in_thread(lab, driver, request, "Done:")
        assert "Only Alice Archer can reveal it" in done["text"] and "press Reveal" not in done["text"]
        in_thread(lab, driver, request, "the helpdesk never sees it")
        assert "reset_reveal" not in str(driver.messages(helpdesk(lab), thread_ts=request["ts"]))
        dm = driver.dm_channel("alice")
        notice = driver.wait_for_message(dm, lambda m: "Reveal" in str(m["blocks"]) and "reset by" in str(m["blocks"]))
        # Slack lets nobody else click in Alice's DM; a forged click by the agent is refused all the same.
        shown, said = reset.reveal(request_id=request_id(driver, lab, request), actor=slack_id(lab, "hank"),
                                   correlation_id="c-test")
        assert shown is None and said is not None and said.startswith("Only the person whose password was reset")
        driver.click("alice", dm, notice["ts"], "reset_reveal")
        modal = driver.wait_for_view("alice", lambda v: v.get("callback_id") == "reveal_password")
        password = str(modal["blocks"][1]["text"]["text"]).strip("`")
        assert len(password) >= 16
        driver.click("alice", dm, notice["ts"], "reset_reveal")
        driver.wait_for_ephemeral("alice", lambda e: "already revealed" in e["text"])
        assert not [v for v in driver.views("hank") if v.get("callback_id") == "reveal_password"]
        everywhere = everything_people_and_storage_hold(lab, driver, bot)
        everywhere += "\n".join(r.getMessage() + str(r.args) + str(r.exc_info) for r in caplog.records)
        assert password not in everywhere
    finally:
        reset.delivery = Delivery.AGENT


def duo_enrol(lab: Lab, username: str, enrolled: bool) -> None:
    duo = lab.descriptor["duo"]
    with httpx.Client(verify=ssl.create_default_context(cafile=duo["ca_file"]), trust_env=False) as http:
        http.post(f"{duo['control']}/enrolment", json={"username": username, "enrolled": enrolled}).raise_for_status()


def test_someone_without_a_duo_phone_is_told_to_use_another_method(lab: Lab, bot: RunningBot,
                                                                   driver: SlackDriver) -> None:
    duo_enrol(lab, "bob", False)
    try:
        request = request_for(lab, driver, "bob", "no duo phone")
        verify(lab, driver, request, "duo-push")
        driver.wait_for_ephemeral("hank", lambda e: e["text"].startswith("Bob Baker has no Duo phone"))
    finally:
        duo_enrol(lab, "bob", True)
    req = req_of(bot, request)
    assert req.verification == "none"
    failed = bot.audit(req.id)[-1]
    assert failed.action == "verify_failed" and '"outcome":"not_enrolled"' in failed.detail


def test_duo_refusing_the_integration_is_one_sentence_and_nothing_half_done(lab: Lab, bot: RunningBot,
                                                                             driver: SlackDriver) -> None:
    """A wrong secret key (rotated in Duo, not here): the lab's Duo refuses the signature, as Duo does."""
    d = lab.descriptor["duo"]
    requests = bot.services.requests
    real, requests.duo = requests.duo, DuoAuth(api_host=d["api_host"], integration_key=d["integration_key"],
                                               secret_key=SecretStr("rotated-" + d["secret_key"]),
                                               ca_file=Path(d["ca_file"]))
    try:
        request = request_for(lab, driver, "bob", "duo key rotated")
        verify(lab, driver, request, "duo-push")
        said = driver.wait_for_ephemeral("hank", lambda e: e["text"].startswith("The Duo push could not be sent"))
    finally:
        requests.duo = real
    assert "HTTP 401" in said["text"] and d["secret_key"] not in said["text"]
    req = req_of(bot, request)
    assert req.verification == "none" and req.state == RequestState.PENDING_APPROVAL
    assert '"outcome":"duo_unavailable"' in bot.audit(req.id)[-1].detail


def test_a_code_entered_after_five_minutes_has_expired(lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    request = request_for(lab, driver, "bob", "slow caller")
    rid = request_id(driver, lab, request)
    verify(lab, driver, request, "slack-code")
    code = code_sent_to(driver, "bob", rid)
    requests = bot.services.requests
    real = requests.clock
    requests.clock = lambda: real() + timedelta(minutes=5, seconds=1)
    try:
        enter_code(lab, driver, request, code)
        driver.wait_for_ephemeral("hank", lambda e: e["text"].startswith("That code has expired"))
    finally:
        requests.clock = real
    in_thread(lab, driver, request, "expired before it was entered")
    assert req_of(bot, request).verification == "failed"
    verify(lab, driver, request, "slack-code")  # a new attempt may follow an expired code, with a new code
    assert code_sent_to_again(driver, "bob", rid, not_=code)


def code_sent_to_again(driver: SlackDriver, key: str, rid: str, *, not_: str) -> str:
    dm = driver.wait_for_message(driver.dm_channel(key), lambda m: rid in m["text"] and "read them this code"
                                 in m["text"] and not_ not in m["text"], timeout=20)
    found = _CODE.search(dm["text"])
    assert found
    return found.group(1)


def test_a_duo_push_waiting_for_an_answer_holds_no_slack_handler(lab: Lab, bot: RunningBot,
                                                                 driver: SlackDriver) -> None:
    """The push is answered after 6 s; meanwhile the agent is told it started and the bot answers others."""
    duo_answer(lab, "alice", "allow", delay_ms=6000)
    request = request_for(lab, driver, "alice", "slow phone")
    verify(lab, driver, request, "duo-push")
    driver.wait_for_ephemeral("hank", lambda e: e["text"].startswith("Verification by Duo push started"))
    driver.command("hedy", "/reset-status", "", channel=helpdesk(lab))
    driver.wait_for_ephemeral("hedy", lambda e: bool(e["text"]))
    assert req_of(bot, request).verification == "pending", "answered before the phone was"
    in_thread(lab, driver, request, "Caller verified by Duo push")


def test_the_sweep_ends_a_verification_nobody_finished(lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """A code never entered (or a Duo push whose replica stopped following it) does not stay "under way"."""
    request = request_for(lab, driver, "bob", "caller hung up")
    verify(lab, driver, request, "slack-code")
    code_sent_to(driver, "bob", request_id(driver, lab, request))
    bot.services.requests.sweep(now=utcnow() + timedelta(minutes=4))
    assert req_of(bot, request).verification == "pending", "a code still in its 5 minutes is left alone"
    bot.services.requests.sweep(now=utcnow() + timedelta(minutes=7))
    in_thread(lab, driver, request, "expired before it was entered")
    req = req_of(bot, request)
    assert req.verification == "failed" and req.verify_sealed is None
    assert '"outcome":"expired"' in bot.audit(req.id)[-1].detail and bot.audit(req.id)[-1].actor == "scheduler"


def test_a_new_code_gives_no_new_tries(lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """Starting again before the third wrong code must not reset the count: three wrong codes per request."""
    request = request_for(lab, driver, "bob", "keeps guessing")
    rid = request_id(driver, lab, request)
    verify(lab, driver, request, "slack-code")
    first = code_sent_to(driver, "bob", rid)
    wrong = next(c * CODE_LENGTH for c in CODE_ALPHABET if c * CODE_LENGTH != first)
    enter_code(lab, driver, request, wrong)
    enter_code(lab, driver, request, wrong)
    driver.wait_for_ephemeral("hank", lambda e: "1 try left" in e["text"])
    verify(lab, driver, request, "slack-code")
    second = code_sent_to_again(driver, "bob", rid, not_=first)
    wrong = next(c * CODE_LENGTH for c in CODE_ALPHABET if c * CODE_LENGTH != second)
    enter_code(lab, driver, request, wrong)
    driver.wait_for_ephemeral("hank", lambda e: e["text"].startswith("The caller failed verification 3 times"))
    assert req_of(bot, request).verification == "blocked"
    driver.wait_for_message(security(lab), lambda m: "3 times (3 wrong Slack codes)" in m["text"])


def pushes_to(lab: Lab, username: str, rid: str) -> list[dict[str, Any]]:
    duo = lab.descriptor["duo"]
    with httpx.Client(verify=ssl.create_default_context(cafile=duo["ca_file"]), trust_env=False) as http:
        sent = http.get(f"{duo['control']}/pushes", params={"username": username}).json()
    return [p for p in sent if rid in (p["pushinfo"] or "")]


def test_duo_letting_someone_in_without_their_phone_does_not_verify(lab: Lab, bot: RunningBot,
                                                                    driver: SlackDriver) -> None:
    """Duo answers ``result: allow`` with ``status: bypass`` for a person an administrator put in bypass status:
    nobody touched the phone, so nothing proves the caller holds it."""
    duo_answer(lab, "bob", "bypass")
    request = request_for(lab, driver, "bob", "duo bypass")
    rid = request_id(driver, lab, request)
    driver.click("mona", helpdesk(lab), request["ts"], "request_approve")
    verify(lab, driver, request, "duo-push")
    in_thread(lab, driver, request, "without asking their phone")
    req = req_of(bot, request)
    assert req.state == RequestState.PENDING_APPROVAL and req.verification == "failed"
    assert '"outcome":"bypass"' in next(e.detail for e in bot.audit(rid) if e.action == "verify_failed")
    assert "caller_verified" not in [e.action for e in bot.audit(rid)]
    driver.click("hank", helpdesk(lab), request["ts"], "request_cancel", stale_ok=True)


def test_duo_pushes_are_limited_per_request(lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """Push fatigue: an agent (or a caller asking "send it again") may not push the person's phone until they give
    in and approve. Each push is one of the request's three tries; the third failing blocks it and tells
    security."""
    request = request_for(lab, driver, "bob", "push fatigue")
    rid = request_id(driver, lab, request)

    def failed_pushes() -> int:
        return len([e for e in bot.audit(rid) if e.action == "verify_failed"])

    for sent in range(1, 3):
        duo_answer(lab, "bob", "timeout")
        verify(lab, driver, request, "duo-push")
        wait_until(lambda: failed_pushes() >= sent, timeout=20, what="the push answered")  # noqa: B023
    duo_answer(lab, "bob", "timeout", delay_ms=3000)
    verify(lab, driver, request, "duo-push")
    wait_until(lambda: len([e for e in bot.audit(rid) if e.action == "verify_started"]) == 3, what="push 3 sent")
    verify(lab, driver, request, "duo-push")  # "send it again" while the third is unanswered: no fresh push
    driver.wait_for_ephemeral("hank", lambda e: "has used its 3 verification tries" in e["text"] and rid in e["text"])
    wait_until(lambda: failed_pushes() >= 3, timeout=20, what="the third push answered")
    alert = driver.wait_for_message(security(lab), lambda m: rid in m["text"] and "Duo" in m["text"])
    assert "impersonating" in alert["text"]
    assert req_of(bot, request).verification == "blocked"
    verify(lab, driver, request, "duo-push")
    driver.wait_for_ephemeral("hank", lambda e: "cannot be verified any more" in e["text"] and rid in e["text"])
    assert len(pushes_to(lab, "bob", rid)) == 3, "a fourth push reached the person's phone"
    driver.click("hank", helpdesk(lab), request["ts"], "request_cancel", stale_ok=True)


def test_this_wasnt_me_discards_a_password_nobody_revealed_yet(lab: Lab, bot: RunningBot,
                                                               driver: SlackDriver) -> None:
    """The target disowns the reset before the agent revealed the password: whoever asked must not learn it now."""
    duo_answer(lab, "alice", "allow")
    request = request_for(lab, driver, "alice", "disowned before reveal", flags="--verify duo-push")
    in_thread(lab, driver, request, "Caller verified by Duo push")
    driver.click("mona", helpdesk(lab), request["ts"], "request_approve", stale_ok=True)
    reveal = in_thread(lab, driver, request, "sealed")
    rid = request_id(driver, lab, request)
    notice = driver.wait_for_message(driver.dm_channel("alice"), lambda m: rid in str(m["blocks"])
                                     and "reset_not_me" in str(m["blocks"]))
    driver.click("alice", driver.dm_channel("alice"), notice["ts"], "reset_not_me")
    driver.wait_for_message(security(lab), lambda m: "was not asked for" in m["text"] and rid in m["text"])
    in_thread(lab, driver, request, "discarded before anyone revealed it")
    driver.click("hank", helpdesk(lab), reveal["ts"], "reset_reveal")
    driver.wait_for_ephemeral("hank", lambda e: "it is gone" in e["text"])
    assert not [v for v in driver.views("hank") if v.get("callback_id") == "reveal_password"
                and rid in str(v)], "the agent saw the password after the target disowned the reset"
    assert "revealed" not in [e.action for e in bot.audit(rid)]

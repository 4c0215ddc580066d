"""Every sentence shows what a person typed or the directory holds as inert words (issue 14, item 10).

Slack reads ``&``, ``<`` and ``>`` as control characters in every text it shows: a reason ``<!channel>`` would ping
the whole channel, a display name ``<https://evil.example|Reset portal>`` would be a link whose target nobody sees.
The only control sequences a sentence may hold are the bot's own: ``<@U…>`` and ``<#C…>`` for ids Slack gave it,
``<!date^…>`` and the approver group's ``<!subteam^…>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from bot import messages
from bot.domain.audit import AuditAction
from bot.domain.containment import ScrambleRefusal, StepResult
from bot.domain.lifecycle import RequestState
from bot.domain.parse import ParseError, ParseProblem
from bot.domain.rules import Protection
from bot.domain.verdict import Verdict, VerdictKind
from bot.domain.verification import VerifyRefusal
from bot.messages.format import esc
from bot.models import AuditEvent, ResetRequest

HOSTILE = "Eve <!channel> & <https://evil.example/reset|Reset portal> @here"
WHEN = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
_SEQUENCE = re.compile(r"<([^<>]*)>")
_OURS = re.compile(r"^(?:@[UW][A-Z0-9]+|#[CDG][A-Z0-9]+|!date\^\d+\^[^|]*\|[^|]*|!subteam\^S[A-Z0-9]+\|@[\w.-]+)$")


def hostile_request(**changes: Any) -> ResetRequest:
    values: dict[str, Any] = dict(
        id="R-7K3Q9M", requester="U0000HANK", requester_display=HOSTILE, target_entra_id="e1",
        target_upn="eve<!here>@corp.example.test", target_display=HOSTILE, reason=HOSTILE,
        manager_slack_id="U000MONA", approver_group="approvers", protected="admin_count",
        channel_id="C0HELPDESK", thread_ts="1.0", expires_at=WHEN, created_at=WHEN)
    values.update(changes)
    return ResetRequest(**values)


def texts(value: Any) -> list[str]:
    """Every string in a sentence, a Block Kit payload or a view."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in texts(v)]
    if isinstance(value, list | tuple):
        return [t for v in value for t in texts(v)]
    return []


def injected(value: Any) -> list[str]:
    """Control sequences, and broadcast words Slack would parse, that are not the bot's own."""
    found = [m.group(0) for t in texts(value) for m in _SEQUENCE.finditer(t) if not _OURS.match(m.group(1))]
    return found + [t for t in texts(value) if re.search(r"@(channel|here|everyone)\b", t)]


REQ = hostile_request()
SENTENCES: dict[str, Callable[[], Any]] = {
    "parse_problem": lambda: messages.requests.parse_problem(ParseError(ParseProblem.BAD_USER, HOSTILE)),
    "unknown_user": lambda: messages.requests.unknown_user(HOSTILE),
    "ambiguous_user": lambda: messages.requests.ambiguous_user(HOSTILE, [(HOSTILE, HOSTILE)]),
    "target_cannot_confirm": lambda: messages.requests.target_cannot_confirm(HOSTILE, HOSTILE),
    "not_synced": lambda: messages.requests.not_synced(HOSTILE),
    "not_in_ad": lambda: messages.requests.not_in_ad(HOSTILE),
    "account_disabled": lambda: messages.requests.account_disabled(HOSTILE),
    "locked_out_needs_unlock": lambda: messages.requests.locked_out_needs_unlock(HOSTILE),
    "unlocked": lambda: messages.requests.unlocked(HOSTILE),
    "unlock_failed": lambda: messages.requests.unlock_failed(HOSTILE, HOSTILE),
    "protected_refused": lambda: messages.requests.protected_refused(HOSTILE, [Protection.ADMIN_COUNT]),
    "request_not_found": lambda: messages.requests.request_not_found(HOSTILE),
    "request_text": lambda: messages.requests.request_text(REQ),
    "request_blocks": lambda: messages.requests.request_blocks(REQ, approvals=["U000GINA"], group_id="S0APPROVERS",
                                                               note=HOSTILE),
    "request_blocks_decided": lambda: messages.requests.request_blocks(
        hostile_request(state=RequestState.DENIED), approvals=[], group_id=None, decided_by="U000MONA",
        note=HOSTILE),
    "approver_mention": lambda: messages.requests.approver_mention(REQ, "S0APPROVERS"),
    "approver_dm": lambda: messages.requests.approver_dm(REQ, "C0HELPDESK"),
    "approve_again": lambda: messages.requests.approve_again(REQ, ["U000MONA", "U000GINA"], "S0APPROVERS"),
    "approve_again_dm": lambda: messages.requests.approve_again_dm(REQ, "C0HELPDESK"),
    "denied": lambda: messages.requests.denied("U000MONA", HOSTILE),
    "escalation": lambda: messages.requests.escalation(REQ, None),
    "security_protected_request": lambda: messages.requests.security_protected_request(REQ),
    "security_late_no": lambda: [messages.requests.security_late_no(hostile_request(state=state))
                                 for state in RequestState],
    "security_target_disowned": lambda: messages.requests.security_target_disowned(REQ),
    "confirm_question": lambda: (messages.requests.confirm_question_text(REQ),
                                 messages.requests.confirm_question_blocks(REQ)),
    "waiting_for_target": lambda: messages.requests.waiting_for_target(None, HOSTILE),
    "reset_started": lambda: messages.reset.reset_started(HOSTILE),
    "verdicts": lambda: [messages.reset.verdict_sentence(Verdict(kind), name=HOSTILE, requester="U0000HANK",
                                                         correlation_id="c-1") for kind in VerdictKind],
    "reset_recovered_unrevealable": lambda: messages.reset.reset_recovered_unrevealable(HOSTILE),
    "tap": lambda: (messages.reset.tap_started(HOSTILE), messages.reset.tap_issued(HOSTILE, "U0000HANK", 60),
                    messages.reset.tap_issued(HOSTILE, "U0000HANK", 60, withheld="target_said_no"),
                    messages.reset.tap_recovered_gone(HOSTILE, "U0000HANK"),
                    messages.reset.tap_recovered_deleted(HOSTILE, "U0000HANK")),
    "reveal_modal": lambda: messages.reset.reveal_modal(name=HOSTILE, password=SecretStr("Xy9-Qrst-Uvw"),
                                                        spelled="X-ray y 9", must_change=True)["blocks"][0],
    "security_reset_disowned": lambda: messages.reset.security_reset_disowned(REQ),
    "containment": lambda: [
        (messages.containment.contained(req, revoked, tap),
         messages.containment.security_alert_blocks(req, revoked, tap, scramble=not req.tap))
        for req in (REQ, hostile_request(tap=True))
        for revoked in (StepResult(done=True), StepResult(done=False, reason=HOSTILE))
        for tap in (None, StepResult(done=True, already=True), StepResult(done=False, reason=HOSTILE))],
    "withheld_tap": lambda: [
        (messages.containment.withheld_tap_deletion(hostile_request(tap=True), step),
         messages.containment.security_withheld_tap_not_deleted(hostile_request(tap=True), step, None))
        for step in (StepResult(done=True), StepResult(done=True, already=True),
                     StepResult(done=False, reason=HOSTILE))],
    "scramble": lambda: [messages.containment.scrambled(REQ, "U000IVAN"),
                         messages.containment.scramble_failed(REQ, "U000IVAN", HOSTILE, "c-1"),
                         messages.containment.scramble_pending(REQ, "U000IVAN", "c-1"),
                         *[messages.containment.scramble_refused(r, REQ.id, group=HOSTILE) for r in ScrambleRefusal]],
    "only_your_own": lambda: messages.status.only_your_own(HOSTILE),
    "no_requests_for": lambda: messages.status.no_requests_for(HOSTILE),
    "requests_for": lambda: messages.status.request_list(messages.status.requests_for(HOSTILE), [REQ]),
    "timeline": lambda: messages.status.timeline(REQ, [AuditEvent(
        seq=1, at=WHEN, actor="U0000HANK", action=AuditAction.REQUESTED, request_id=REQ.id, prev_hash="",
        hash="", detail="{}")]),
    "home": lambda: messages.home.home_view(pending_for_me=[REQ], mine=[REQ]),
    "followups": lambda: [
        messages.followups.writeback_confirmed(HOSTILE, must_change=True, seen_at=WHEN),
        messages.followups.writeback_confirmed(HOSTILE, must_change=False, seen_at=WHEN),
        messages.followups.writeback_unproven(HOSTILE, HOSTILE),
        messages.followups.writeback_not_seen(HOSTILE, waited="15 minutes", seen_at=WHEN, reset_at=WHEN,
                                              dn=HOSTILE),
        messages.followups.writeback_account_gone(HOSTILE, HOSTILE),
        messages.followups.password_replaced(HOSTILE, at=WHEN),
        messages.followups.password_never_replaced(HOSTILE, waited="1 day")],
    "links": lambda: [
        messages.links.linked(HOSTILE, [HOSTILE], service=False, can_reset_anyone=False),
        messages.links.login_code_dm("ABC-123", "https://microsoft.com/devicelogin", WHEN, sign_in_as=HOSTILE,
                                     service=True),
        messages.links.link_wrong_account(HOSTILE, HOSTILE, service=False, security_told=True),
        messages.links.link_wrong_account(HOSTILE, HOSTILE, service=True, security_told=True),
        messages.links.link_no_email(HOSTILE),
        messages.links.security_link_mismatch("U0000HANK", HOSTILE, HOSTILE, service=False),
        messages.links.link_reauth(HOSTILE, service=False),
        messages.links.role_too_weak(HOSTILE, [HOSTILE], [HOSTILE], [HOSTILE], service=False),
        messages.links.whoami_linked(HOSTILE, HOSTILE, WHEN, [HOSTILE], "ok", service=False),
        messages.links.unlinked(HOSTILE, service=False)],
    "canary": lambda: messages.health.canary_refused("canary@corp.example.test", HOSTILE),
    "in_ad_not_in_entra": lambda: [messages.requests.in_ad_not_in_entra(HOSTILE, HOSTILE, HOSTILE),
                                   messages.requests.in_ad_not_in_entra(HOSTILE, HOSTILE, "")],
    "only_a_near_match": lambda: messages.requests.only_a_near_match(HOSTILE, HOSTILE, HOSTILE),
    "protected_now": lambda: [messages.requests.protected_now(HOSTILE, [Protection.ADMIN_COUNT], was_protected=w)
                              for w in (True, False)],
    "recheck_failed": lambda: messages.requests.recheck_failed(HOSTILE, HOSTILE),
    "reset_still_running": lambda: messages.reset.reset_still_running(HOSTILE),
    "unknown_subcommand": lambda: messages.commands.unknown_subcommand(HOSTILE),
    "verdicts_to_target": lambda: [messages.reset.verdict_sentence(
        Verdict(kind), name=HOSTILE, requester="U0000HANK", correlation_id="c-1", to_target=True)
        for kind in VerdictKind],
    "target_cannot_reveal": lambda: messages.reset.target_cannot_reveal(HOSTILE, HOSTILE),
    "verify_bad_method": lambda: messages.requests.parse_problem(ParseError(ParseProblem.BAD_VERIFY_METHOD,
                                                                            HOSTILE)),
    "verify_state_lines": lambda: [messages.verification.state_line(
        hostile_request(verification=state, verify_method=method, verified_at=WHEN, verified_by="U0000HANK"),
        required=True) for state in ("none", "pending", "verified", "failed", "blocked")
        for method in ("slack-code", "duo-push", "slack-confirm", "callback")],
    "verify_sentences": lambda: [
        messages.verification.code_dm_text(REQ, SecretStr("ACD347")),
        messages.verification.security_code_failed(REQ, {"slack-code": 2, "duo-push": 1}),
        messages.verification.security_duo_exhausted(REQ, {"duo-push": 3}),
        *[messages.verification.security_duo_fraud(REQ, state, approved=True)
          for state in RequestState],
        messages.verification.security_duo_fraud(REQ, RequestState.SUCCEEDED, contained=False),
        *[messages.verification.duo_fraud_thread(HOSTILE, state, tap=tap) for state in RequestState
          for tap in (False, True)],
        messages.verification.duo_sent_thread("U0000HANK", HOSTILE),
        messages.verification.duo_not_enrolled(HOSTILE),
        messages.verification.duo_unavailable(HOSTILE),
        messages.verification.callback_no_numbers(HOSTILE),
        messages.verification.not_verified_before_reset(HOSTILE),
        messages.verification.refusal(VerifyRefusal.METHOD_NOT_ALLOWED, REQ, HOSTILE),
        *[messages.verification.duo_outcome_thread(o, HOSTILE)
          for o in ("allow", "deny", "timeout", "fraud", "error")]],
    "callback_modal": lambda: messages.verification.callback_modal(REQ, "C0HELPDESK", [HOSTILE, "+1 206 555 0103"]),
    "duo_pushinfo_no_name": lambda: messages.verification.duo_pushinfo(REQ),
}


@pytest.mark.parametrize("name", sorted(SENTENCES))
def test_no_sentence_carries_a_control_sequence_it_was_handed(name: str) -> None:
    said = SENTENCES[name]()
    assert texts(said), "the sentence says something"
    assert not injected(said), f"{name} lets these through: {injected(said)}"


def test_escaped_words_still_read_as_typed() -> None:
    """Slack shows ``&amp;`` as ``&``: the reader sees exactly what was typed, and ``@here`` notifies nobody."""
    assert esc("AT&T <b> @here, @Channel!") == "AT&amp;T &lt;b&gt; @\u200bhere, @\u200bChannel!"
    assert esc("alice@here.example") == "alice@here.example"  # an address is not a broadcast

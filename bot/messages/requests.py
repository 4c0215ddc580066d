"""A reset request's sentences and its thread message: what ``/reset`` answers (parse problems, unknown
or ambiguous people, refusals, protected accounts), the request message with its buttons, approvals, denials,
expiry and escalation, the target's confirmation and the deny modal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from bot.domain.lifecycle import RequestState
from bot.domain.parse import MAX_REASON_CHARS, ParseError, ParseProblem
from bot.domain.rules import Protection, Refusal
from bot.ids import Action, Block, Callback
from bot.messages.commands import RESET_USAGE
from bot.messages.format import Blocks, button, esc, esc_at_most, slack_date
from bot.models import ResetRequest
from bot.settings import VerifyMethod


def parse_problem(error: ParseError) -> str:
    match error.problem:
        case ParseProblem.NO_USER:
            return f"Whose password should I reset? {RESET_USAGE}"
        case ParseProblem.UNKNOWN_FLAG:
            return (f"I don't know the option `{error.detail}`; the options are `--unlock`, `--tap` and "
                    f"`--revoke-sessions`. {RESET_USAGE}")
        case ParseProblem.DUPLICATE_FLAG:
            return f"`{error.detail}` is given twice; give each option once. {RESET_USAGE}"
        case ParseProblem.BAD_USER:
            return (f"`{esc(error.detail)}` is not a user I can look up; use an @mention, an email address, a UPN or a "
                    f"sAMAccountName. {RESET_USAGE}")
        case ParseProblem.BAD_VERIFY_METHOD:
            methods = ", ".join(f"`{m.value}`" for m in VerifyMethod)
            given = f"`{esc(error.detail)}` is not a verification method" if error.detail else \
                "`--verify` needs a method"
            return f"{given}; the methods are {methods}. Nothing was requested."
        case ParseProblem.REASON_TOO_LONG:
            return (f"The reason is {error.detail} characters long; keep it to {MAX_REASON_CHARS} (a sentence or two "
                    "for the approver) and ask again. Nothing was requested.")


def unknown_user(text: str) -> str:
    return (f"I can't find anyone called `{esc(text)}` in Entra ID or Active Directory; check the spelling, or use "
            "their email address.")


def ambiguous_user(text: str, candidates: Sequence[tuple[str, str]]) -> str:
    listed = "; ".join(f"{esc(name)} (`{esc(upn)}`)" for name, upn in candidates)
    return f"`{esc(text)}` matches {len(candidates)} people: {listed}. Use the one's email address or UPN."


def in_ad_not_in_entra(text: str, name: str, upn: str) -> str:
    if not upn:
        return (f"`{esc(text)}` is {esc(name)} in Active Directory, but that account has no UPN, so I can't find it in "
                "Entra ID; use their Entra UPN or email address.")
    return (f"`{esc(text)}` is {esc(name)} (`{esc(upn)}`) in Active Directory, but Entra ID has no account with that "
            "UPN (not synced "
            "yet, or synced under another UPN), so I can't reset it; use their Entra UPN or email address.")


def only_a_near_match(text: str, name: str, upn: str) -> str:
    return (f"Nobody is called exactly `{esc(text)}`; the nearest is {esc(name)} (`{esc(upn)}`). If that is who you "
            "mean, use their "
            "email address or UPN.")


def not_in_directory_slack_user() -> str:
    return "That Slack user has no email address I can match to Entra ID; use their email address or UPN instead."


def slack_user_not_matched(slack_user: str) -> str:
    return (f"<@{slack_user}>'s Slack email address is not the sign-in name (UPN) of any Entra ID account, so I can't "
            "tell whose account they are; use their UPN or sAMAccountName instead. Nothing was requested.")


def not_an_agent(group: str) -> str:
    return f"Only members of the @{group} user group can request password resets."


def requester_left_before_reset(requester: str, name: str) -> str:
    """Said in the thread when the check right before the reset finds the requester out of the agents' group."""
    return (f":no_entry_sign: <@{requester}> is no longer a helpdesk agent (not in the agents' user group), so "
            f"{esc(name)}'s password was not reset; nothing was changed. An agent may make a new request.")


def target_cannot_reveal_now(name: str) -> str:
    return (f":no_entry: Not reset: only {esc(name)} may reveal the new password (RESETBOT_DELIVERY=target when this "
            "request was made), and the bot has no Slack account for them, so nobody could read it; nothing was "
            "changed. Ask them to use self-service password reset, or ask whoever runs resetbot.")


def self_reset() -> str:
    return ("You can't reset your own password through resetbot; use self-service password reset "
            "(https://aka.ms/sspr) or ask a colleague in the helpdesk.")


def requester_not_matched() -> str:
    return ("I can't match your Slack account to an Entra ID account (your Slack email address is no account's "
            "sign-in name, its UPN, there), so I can't make sure this isn't your own account; nothing was requested. "
            "Ask a Slack admin to set your profile's email address to your work address.")


def target_not_in_slack(name: str) -> str:
    return (f"{esc_at_most(name, NAME_CHARS)} has no Slack account I could match (by their mail or UPN), so they "
            "can't be asked or told by DM")


def target_cannot_confirm(name: str, upn: str) -> str:
    return (f"{target_not_in_slack(name)}, and here the person must confirm by DM before a reset; nothing was "
            f"requested. Their Slack profile's email address has to be `{esc(upn)}` (or their mail) first.")


def not_synced(name: str) -> str:
    return (f"{esc(name)} is a cloud-only account (not synced from on-premises AD), so there is nothing to write back; "
            "reset it in the Entra admin center instead.")


def not_in_ad(name: str) -> str:
    return (f"{esc(name)} is synced from on-premises, but I can't find the account in Active Directory; check that the "
            "bot's AD search base covers it.")


def account_disabled(name: str) -> str:
    return f"{esc(name)}'s account is disabled; enable it first (a reset won't let them sign in)."


def unlock_unavailable() -> str:
    return ("`--unlock` is not set up here (it needs an AD account allowed to clear lockouts: "
            "RESETBOT_LDAP_UNLOCK_BIND); ask without it, or ask an AD admin to unlock the account.")


def locked_out_needs_unlock(name: str) -> str:
    return (f"{esc(name)} is locked out in Active Directory, and writeback cannot reset a locked-out account; "
            f"ask again with `--unlock` to clear the lockout too. {RESET_USAGE}")


def unlocked(name: str) -> str:
    return f":unlock: Cleared {esc(name)}'s lockout in Active Directory."


def unlock_failed(name: str, why: str) -> str:
    return f":warning: Could not clear {esc(name)}'s lockout in Active Directory: {esc(why)}"


def protected_refused(name: str, reasons: Sequence[Protection]) -> str:
    return (f"{esc(name)}'s account is protected ({_protection_words(reasons)}), and no rule allows resetting it "
            "through resetbot; a domain administrator has to do it.")


def protected_now(name: str, reasons: Sequence[Protection], *, was_protected: bool) -> str:
    """Said in the thread when the check made again right before the reset finds the account protected."""
    if was_protected:
        return (f":no_entry: Not reset: {esc(name)}'s account is protected ({_protection_words(reasons)}) and no rule "
                "allows resetting it through resetbot any more; nothing was changed.")
    return (f":no_entry: Not reset: {esc(name)}'s account is protected now ({_protection_words(reasons)}), which it "
            "was "
            "not when this request was made; nothing was changed. A protected account needs a rule that names it "
            "and two approvers: ask again.")


def not_ready_now(requester: str, why: str) -> str:
    """Said in the thread when the acting identity can no longer make this reset (``why`` is addressed to them)."""
    return f":no_entry: Not reset (nothing was changed), <@{requester}>: {why}"


def recheck_failed(name: str, why: str) -> str:
    """Said in the thread when that check could not be made (Graph or AD failing): the reset fails closed."""
    return (f":warning: Not reset: I couldn't check {esc(name)}'s account again just before the reset "
            f"({esc(why.rstrip('.'))}),"
            " so nothing was changed; ask again once Entra ID and Active Directory answer.")


def _protection_words(reasons: Iterable[Protection]) -> str:
    words = {
        Protection.ADMIN_COUNT: "AD adminCount=1",
        Protection.PROTECTED_GROUP: "a member of a protected AD group",
        Protection.ENTRA_ROLE: "holds an Entra admin role",
        Protection.ENTRA_ELIGIBLE_ROLE: "eligible for an Entra admin role through PIM",
        Protection.OPERATOR: "one of resetbot's agents or approvers",
        Protection.OPERATOR_UNVERIFIED: ("possibly one of resetbot's agents or approvers: it matches no Slack "
                                         "account, and not every agent and approver matches an Entra ID account"),
    }
    return ", ".join(words[r] for r in reasons)


def request_not_posted() -> str:
    return "The request could not be posted: type /reset in a channel the bot is in, or set RESETBOT_REQUESTS_CHANNEL."


def request_created(request_id: str, channel: str) -> str:
    return f"Request {request_id} is posted in <#{channel}>; its approver has been asked."


# --- refusals ----------------------------------------------------------------------------------------------------

_REFUSALS: dict[Refusal, str] = {
    Refusal.REQUESTER_CANNOT_APPROVE: "You asked for this reset, so you can't approve or deny it; its approver will.",
    Refusal.TARGET_CANNOT_APPROVE: "This reset is for your own account, so you can't approve or deny it.",
    Refusal.NOT_AN_APPROVER: "You're not an approver for this request; only the people it names can approve or deny.",
    Refusal.ALREADY_APPROVED: "You've already approved this request; it needs a second, different approver.",
    Refusal.ONLY_REQUESTER_CANCELS: "Only the person who asked for this reset can cancel it.",
    Refusal.ONLY_TARGET_CONFIRMS: "Only the person whose password this is can answer this question.",
    Refusal.ONLY_REQUESTER_REVEALS: "Only the person who asked for this reset can see its temporary password.",
    Refusal.ONLY_TARGET_REVEALS: ("Only the person whose password was reset can see it, from their DM with the bot; "
                                  "the helpdesk never does."),
    Refusal.NOT_PENDING: "This request is no longer waiting for a decision; nothing was changed.",
    Refusal.APPROVER_NOT_MATCHED: (
        "I can't match your Slack account to an Entra ID account (your Slack email address is no account's mail or "
        "UPN there), so I can't make sure you are neither the requester nor the person whose password this is; "
        "nothing was changed. Another approver has to decide."),
    Refusal.REQUESTER_NOT_AN_AGENT: (
        "The person who asked for this reset is no longer a helpdesk agent (not in the agents' user group), so it "
        "can't be approved; nothing was changed."),
    Refusal.REQUESTER_NOT_MATCHED: (
        "I can't match the requester's Slack account to an Entra ID account any more, so I can't make sure you are "
        "not the same person; nothing was changed."),
}


def refusal(reason: Refusal, request_id: str | None = None) -> str:
    text = _REFUSALS[reason]
    return f"{text} ({request_id})" if request_id else text


def request_not_found(text: str) -> str:
    return f"There is no reset request `{esc(text)}`. Request ids look like `R-7K3Q9M`."


# --- the request message -------------------------------------------------------------------------------------

STATE_LINE = {
    RequestState.PENDING_APPROVAL: ":hourglass_flowing_sand: Waiting for approval",
    RequestState.APPROVED: ":white_check_mark: Approved",
    RequestState.RESETTING: ":arrows_counterclockwise: Resetting",
    RequestState.SUCCEEDED: ":white_check_mark: Reset done",
    RequestState.REJECTED: ":no_entry: Refused on-premises",
    RequestState.FAILED: ":warning: Failed",
    RequestState.DENIED: ":no_entry_sign: Denied",
    RequestState.CANCELLED: ":heavy_multiplication_x: Cancelled",
    RequestState.EXPIRED: ":hourglass: Expired without a decision",
}


def approvers_phrase(manager: str | None, group_id: str | None, group_handle: str | None) -> str:
    parts = []
    if manager:
        parts.append(f"<@{manager}>")
    if group_handle:
        parts.append(f"<!subteam^{group_id}|@{group_handle}>" if group_id else f"@{group_handle}")
    return " or ".join(parts) if parts else "nobody (no approver could be found)"


def request_text(req: ResetRequest) -> str:
    """The notification text (and screen-reader text) of the request message."""
    return f"Password reset {req.id} for {esc(req.target_display)}: {STATE_LINE[req.state].split(': ', 1)[-1]}"


#: What the request message shows of each value a person typed or the directory holds, as posted (escaped): at
#: most these, so its first section (name twice, UPN, reason, and the fixed words, about 700 at most) stays inside
#: Slack's 3,000 whatever is typed; the full reason stays in the audit trail.
NAME_CHARS = 256
REASON_CHARS = 1200
NOTE_CHARS = 1500


def request_blocks(req: ResetRequest, *, approvals: Sequence[str], group_id: str | None,
                   decided_by: str | None = None, note: str | None = None, caller_line: str | None = None,
                   verify_actions: dict[str, Any] | None = None) -> Blocks:
    """The request message, redrawn in place at every change of state; ``caller_line`` says how the caller was
    verified (``messages.verification.state_line``) and ``verify_actions`` holds the agent's buttons to verify."""
    options = [o for o, on in (("also unlock", req.unlock), ("Temporary Access Pass", req.tap),
                               ("also revoke their sign-in sessions", req.revoke_sessions)) if on]
    reason = f" · Reason: {esc_at_most(req.reason, REASON_CHARS)}" if req.reason else " · No reason given"
    lines = [
        f"*Password reset for {esc_at_most(req.target_display, NAME_CHARS)}* "
        f"(`{esc_at_most(req.target_upn, NAME_CHARS)}`)",
        f"Requested by <@{req.requester}>{reason}",
    ]
    if options:
        lines.append("Options: " + ", ".join(options))
    if req.target_slack_id is None:
        lines.append(f":warning: {target_not_in_slack(req.target_display)}: two different approvers decide.")
    if req.protected:
        reasons = [Protection(r) for r in req.protected.split(",")]
        lines.append(f":lock: Protected account ({_protection_words(reasons)}): needs two different approvers.")
    if req.approvals_required >= 2 and not req.protected and req.target_slack_id is not None:
        # The one other reason a request needs two (bot.domain.limits): its target was reset recently.
        lines.append(":repeat: This password was already reset recently: two different approvers decide.")
    status = STATE_LINE[req.state]
    if req.state == RequestState.PENDING_APPROVAL:
        status += f" ({len(approvals)} of {req.approvals_required})"
        if approvals:
            status += " · approved by " + ", ".join(f"<@{a}>" for a in approvals)
    elif decided_by:
        status += f" by <@{decided_by}>"
    if note:
        status += f": {esc_at_most(note, NOTE_CHARS)}"
    if caller_line:
        status += "\n" + caller_line
    blocks: Blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": status}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": (
            f"{req.id} · Approver: {approvers_phrase(req.manager_slack_id, group_id, req.approver_group)}"
            + (f" · Expires {slack_date(req.expires_at)}" if req.state == RequestState.PENDING_APPROVAL else "")
        )}]},
    ]
    if req.state == RequestState.PENDING_APPROVAL:
        blocks.append({"type": "actions", "block_id": Block.REQUEST_ACTIONS, "elements": [
            button("Approve", Action.APPROVE, req.id, style="primary"),
            button("Deny", Action.DENY, req.id, style="danger"),
            button("Cancel", Action.CANCEL, req.id),
        ]})
        if verify_actions is not None:
            blocks.append(verify_actions)
    return blocks


def approver_mention(req: ResetRequest, group_id: str | None) -> str:
    who = approvers_phrase(req.manager_slack_id, group_id, req.approver_group)
    needs = "two different approvals" if req.approvals_required == 2 else "an approval"
    return f"{who}: this reset needs {needs}. Approve or deny it with the buttons above."


def approve_again(req: ResetRequest, earlier: Sequence[str], group_id: str | None) -> str:
    """The thread's one sentence after a call-back verified a caller whose request was approved before it (or half
    approved): the approvals do not count, and the approvers (mentioned, so pinged as for a new request) decide
    again now that the message shows how the caller was verified."""
    who = approvers_phrase(req.manager_slack_id, group_id, req.approver_group)
    gave = " and ".join(f"<@{a}>" for a in earlier)
    approvals = "approvals" if len(earlier) > 1 else "approval"
    return (f":warning: The caller was verified by call-back only (the agent's word that they called a number on "
            f"file), so the {approvals} {gave} gave before it no longer count{'' if len(earlier) > 1 else 's'}: "
            f"{who}, approve again now that you see it if that is enough, or deny.")


def approve_again_dm(req: ResetRequest, channel: str) -> str:
    """The manager's DM, as when the request was made: their approval is needed again (``approve_again``)."""
    return (f"The caller of {req.id} (<@{req.requester}>'s reset of {esc(req.target_display)}, "
            f"`{esc(req.target_upn)}`) was verified by call-back only, the agent's word, after it was approved: "
            f"that approval no longer counts. Approve it again or deny it in the thread: <#{channel}>.")


def approver_dm(req: ResetRequest, channel: str) -> str:
    return (f"<@{req.requester}> asks to reset the password of {esc(req.target_display)} (`{esc(req.target_upn)}`), "
            "who reports "
            f"to you. Approve or deny it in the thread: <#{channel}> ({req.id}).")


def approval_added(approver: str, have: int, need: int) -> str:
    return f"<@{approver}> approved ({have} of {need}); one more different approver is needed."


def approved(approvers: Sequence[str]) -> str:
    who = " and ".join(f"<@{a}>" for a in approvers)
    return f"Approved by {who}."


def denied(actor: str, reason: str) -> str:
    return f"Denied by <@{actor}>: {esc(reason)}"


def cancelled(actor: str) -> str:
    return f"Cancelled by <@{actor}>. Nothing was changed."


def cancelled_by_target(target: str) -> str:
    return (f"Cancelled: <@{target}> said they did not ask for this reset. Nothing was changed, and security has "
            "been told.")


def expired(minutes: int) -> str:
    return f"Expired: nobody approved it within {minutes} minutes. Nothing was changed; ask again if it's still needed."


def escalation(req: ResetRequest, group_id: str | None) -> str:
    who = approvers_phrase(req.manager_slack_id, group_id, req.approver_group)
    return f"{who}: this request is still waiting and expires {slack_date(req.expires_at)}."


def security_protected_request(req: ResetRequest) -> str:
    reasons = [Protection(r) for r in req.protected.split(",") if r]
    return (f":lock: <@{req.requester}> asked to reset the protected account {esc(req.target_display)} "
            f"(`{esc(req.target_upn)}`; "
            f"{_protection_words(reasons)}), allowed by a rule with two approvers. Request {req.id}.")


def security_target_disowned(req: ResetRequest) -> str:
    return (f":rotating_light: {esc(req.target_display)} (`{esc(req.target_upn)}`) says they did NOT ask for the "
            f"password reset {req.id} that <@{req.requester}> requested. The request was cancelled.")


# --- the target's confirmation ---------------------------------------------------------------------------------

#: What a "No" that came after the request was decided means for the account, by the state it found.
_LATE_NO_OUTCOME = {
    RequestState.DENIED: "It had been denied, so nothing was changed.",
    RequestState.CANCELLED: "It had been cancelled, so nothing was changed.",
    RequestState.EXPIRED: "It had expired without a decision, so nothing was changed.",
    RequestState.REJECTED: "The new password had been refused, so nothing was changed.",
    RequestState.FAILED: "The reset had failed: check whether the password changed.",
    RequestState.RESETTING: "The reset was already under way: check whether the password changed.",
    RequestState.SUCCEEDED: "The reset had been made: their password WAS changed.",
}


def _late_no_outcome(state: RequestState) -> str:
    return _LATE_NO_OUTCOME.get(state, "Nothing was changed.")


def security_late_no(req: ResetRequest) -> str:
    return (f":rotating_light: {esc(req.target_display)} (`{esc(req.target_upn)}`) says they did NOT ask for the "
            f"password reset {req.id} that <@{req.requester}> requested. {_late_no_outcome(req.state)}")


def late_no_in_thread(target: str, state: RequestState) -> str:
    return (f":rotating_light: <@{target}> says they did not ask for this reset. {_late_no_outcome(state)} Security "
            "has been told.")


def late_no_answered(state: RequestState) -> str:
    if state in (RequestState.FAILED, RequestState.RESETTING):
        return "Thanks for telling us: security has been alerted and will check your account."
    return "Thanks for telling us: nothing was changed, and security has been told."

def confirm_question_text(req: ResetRequest) -> str:
    return f"Did you ask the helpdesk to reset your password? ({req.id})"


def confirm_question_blocks(req: ResetRequest) -> Blocks:
    saying = f", saying: _{esc_at_most(req.reason, REASON_CHARS)}_" if req.reason else ""
    text = (f"<@{req.requester}> from the helpdesk asked to reset your password ({req.id}){saying}.\n"
            "*Did you ask the helpdesk for this?*")
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "actions", "block_id": Block.CONFIRM_ACTIONS, "elements": [
            button("Yes, I asked", Action.CONFIRM_YES, req.id, style="primary"),
            button("No, I didn't", Action.CONFIRM_NO, req.id, style="danger"),
        ]},
    ]


def confirm_answered(yes: bool) -> str:
    return ("Thanks: the helpdesk can go ahead." if yes else
            "Thanks for telling us: the request was cancelled and security has been told.")


def target_confirmed(target: str) -> str:
    return f"<@{target}> confirmed they asked for this reset."


def waiting_for_target(target: str | None, name: str) -> str:
    who = f"<@{target}>" if target else esc(name)
    return f"Approved, and now waiting for {who} to confirm by DM that they asked for this reset."


# --- the deny modal ------------------------------------------------------------------------------------------

def deny_modal(request_id: str, channel: str) -> dict[str, Any]:
    """The reason modal; its metadata carries the request and the channel to answer in after submission."""
    return {
        "type": "modal",
        "callback_id": Callback.DENY_REASON,
        "private_metadata": f"{request_id}|{channel}",
        "title": {"type": "plain_text", "text": "Deny reset"},
        "submit": {"type": "plain_text", "text": "Deny"},
        "close": {"type": "plain_text", "text": "Back"},
        "blocks": [{
            "type": "input", "block_id": Block.DENY_REASON,
            "label": {"type": "plain_text", "text": f"Why deny {request_id}?"},
            "element": {"type": "plain_text_input", "action_id": Block.DENY_REASON_INPUT, "multiline": True,
                        "min_length": 3, "max_length": 500},
        }],
    }


def parse_deny_metadata(metadata: str) -> tuple[str, str]:
    request_id, _, channel = metadata.partition("|")
    return request_id, channel


def deny_reason_too_short() -> str:
    return "Please say in a few words why you deny it; the requester will see this."

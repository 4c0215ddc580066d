"""Every sentence the bot says and every Block Kit payload it builds lives here, by name.

Nothing here ever receives a password: the builders take requests, names and verdicts only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pydantic import SecretStr

from bot.ids import Action, Block, Callback, Command, ResetbotSubcommand
from bot.models import AuditEvent, ResetRequest
from bot.services.health_state import Change, Check, CheckView, HealthReport, HealthState, TransitionView
from bot.services.lifecycle import RequestState
from bot.services.parse import ParseError, ParseProblem
from bot.services.rules import Protection, Refusal
from bot.services.verdict import RejectionRule, Verdict, VerdictKind

Blocks = list[dict[str, Any]]

HELP_TEXT = "\n".join((
    "*resetbot* resets passwords in Entra ID and proves they reached Active Directory.",
    f"• `{Command.RESET} <user> [reason…] [--unlock] [--tap]`: request a reset; an approver approves it in the thread.",
    f"• `{Command.RESET_STATUS} [request-id | user]`: where a request stands, with its timeline.",
    f"• `{Command.RESETBOT} {ResetbotSubcommand.LOGIN} | {ResetbotSubcommand.LOGOUT} | "
    f"{ResetbotSubcommand.WHOAMI}`: link your own Entra account, or see or remove the link.",
    f"• `{Command.RESETBOT} {ResetbotSubcommand.HEALTH}`: is writeback working right now.",
    "A user is an @mention, an email address, a UPN or a sAMAccountName.",
))

RESET_USAGE = (f"Type `{Command.RESET} @user [reason] [--unlock] [--tap]`, "
               f"for example `{Command.RESET} @alice locked out`.")


def help_text() -> str:
    return HELP_TEXT


def unknown_subcommand(word: str) -> str:
    choices = ", ".join(f"`{s}`" for s in ResetbotSubcommand)
    return f"`{Command.RESETBOT} {word}` is not a command I know; try one of {choices}."


def not_available_yet(subcommand: str) -> str:
    return f"`{Command.RESETBOT} {subcommand}` is not available in this version of resetbot yet."


# --- /reset input ----------------------------------------------------------------------------------------------

def parse_problem(error: ParseError) -> str:
    match error.problem:
        case ParseProblem.NO_USER:
            return f"Whose password should I reset? {RESET_USAGE}"
        case ParseProblem.UNKNOWN_FLAG:
            return f"I don't know the option `{error.detail}`; the options are `--unlock` and `--tap`. {RESET_USAGE}"
        case ParseProblem.DUPLICATE_FLAG:
            return f"`{error.detail}` is given twice; give each option once. {RESET_USAGE}"
        case ParseProblem.BAD_USER:
            return (f"`{error.detail}` is not a user I can look up; use an @mention, an email address, a UPN or a "
                    f"sAMAccountName. {RESET_USAGE}")


def unknown_user(text: str) -> str:
    return (f"I can't find anyone called `{text}` in Entra ID or Active Directory; check the spelling, or use their "
            "email address.")


def ambiguous_user(text: str, candidates: Sequence[tuple[str, str]]) -> str:
    listed = "; ".join(f"{name} (`{upn}`)" for name, upn in candidates)
    return f"`{text}` matches {len(candidates)} people: {listed}. Use the one's email address or UPN."


def not_in_directory_slack_user() -> str:
    return "That Slack user has no email address I can match to Entra ID; use their email address or UPN instead."


def not_an_agent(group: str) -> str:
    return f"Only members of the @{group} user group can request password resets."


def self_reset() -> str:
    return ("You can't reset your own password through resetbot; use self-service password reset "
            "(https://aka.ms/sspr) or ask a colleague in the helpdesk.")


def not_synced(name: str) -> str:
    return (f"{name} is a cloud-only account (not synced from on-premises AD), so there is nothing to write back; "
            "reset it in the Entra admin center instead.")


def not_in_ad(name: str) -> str:
    return (f"{name} is synced from on-premises, but I can't find the account in Active Directory; check that the "
            "bot's AD search base covers it.")


def account_disabled(name: str) -> str:
    return f"{name}'s account is disabled; enable it first (a reset won't let them sign in)."


def unlock_unavailable() -> str:
    return ("`--unlock` is not set up here (it needs an AD account allowed to clear lockouts: "
            "RESETBOT_LDAP_UNLOCK_BIND); ask without it, or ask an AD admin to unlock the account.")


def locked_out_needs_unlock(name: str) -> str:
    return (f"{name} is locked out in Active Directory, and writeback cannot reset a locked-out account; "
            f"ask again with `--unlock` to clear the lockout too. {RESET_USAGE}")


def unlocked(name: str) -> str:
    return f":unlock: Cleared {name}'s lockout in Active Directory."


def unlock_failed(name: str, why: str) -> str:
    return f":warning: Could not clear {name}'s lockout in Active Directory: {why}"


def protected_refused(name: str, reasons: Sequence[Protection]) -> str:
    return (f"{name}'s account is protected ({_protection_words(reasons)}), and no rule allows resetting it "
            "through resetbot; a domain administrator has to do it.")


def _protection_words(reasons: Iterable[Protection]) -> str:
    words = {
        Protection.ADMIN_COUNT: "AD adminCount=1",
        Protection.PROTECTED_GROUP: "a member of a protected AD group",
        Protection.ENTRA_ROLE: "holds an Entra admin role",
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
    Refusal.NOT_PENDING: "This request is no longer waiting for a decision; nothing was changed.",
}


def refusal(reason: Refusal, request_id: str | None = None) -> str:
    text = _REFUSALS[reason]
    return f"{text} ({request_id})" if request_id else text


def request_not_found(text: str) -> str:
    return f"There is no reset request `{text}`. Request ids look like `R-7K3Q9M`."


# --- the request message -------------------------------------------------------------------------------------

_STATE_LINE = {
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


def slack_date(when: datetime) -> str:
    """A time every reader sees in their own time zone."""
    ts = int(when.timestamp())
    return f"<!date^{ts}^{{date_short_pretty}} {{time}}|{when.strftime('%Y-%m-%d %H:%M UTC')}>"


def approvers_phrase(manager: str | None, group_id: str | None, group_handle: str | None) -> str:
    parts = []
    if manager:
        parts.append(f"<@{manager}>")
    if group_handle:
        parts.append(f"<!subteam^{group_id}|@{group_handle}>" if group_id else f"@{group_handle}")
    return " or ".join(parts) if parts else "nobody (no approver could be found)"


def request_text(req: ResetRequest) -> str:
    """The notification text (and screen-reader text) of the request message."""
    return f"Password reset {req.id} for {req.target_display}: {_STATE_LINE[req.state].split(': ', 1)[-1]}"


def request_blocks(req: ResetRequest, *, approvals: Sequence[str], group_id: str | None,
                   decided_by: str | None = None, note: str | None = None) -> Blocks:
    """The request message, redrawn in place at every change of state."""
    options = [o for o, on in (("also unlock", req.unlock), ("Temporary Access Pass", req.tap)) if on]
    lines = [
        f"*Password reset for {req.target_display}* (`{req.target_upn}`)",
        f"Requested by <@{req.requester}>" + (f" · Reason: {req.reason}" if req.reason else " · No reason given"),
    ]
    if options:
        lines.append("Options: " + ", ".join(options))
    if req.protected:
        reasons = [Protection(r) for r in req.protected.split(",")]
        lines.append(f":lock: Protected account ({_protection_words(reasons)}): needs two different approvers.")
    status = _STATE_LINE[req.state]
    if req.state == RequestState.PENDING_APPROVAL:
        status += f" ({len(approvals)} of {req.approvals_required})"
        if approvals:
            status += " · approved by " + ", ".join(f"<@{a}>" for a in approvals)
    elif decided_by:
        status += f" by <@{decided_by}>"
    if note:
        status += f": {note}"
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
            _button("Approve", Action.APPROVE, req.id, style="primary"),
            _button("Deny", Action.DENY, req.id, style="danger"),
            _button("Cancel", Action.CANCEL, req.id),
        ]})
    return blocks


def _button(text: str, action: Action, value: str, *, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {"type": "button", "text": {"type": "plain_text", "text": text},
                              "action_id": action, "value": value}
    if style:
        button["style"] = style
    return button


def approver_mention(req: ResetRequest, group_id: str | None) -> str:
    who = approvers_phrase(req.manager_slack_id, group_id, req.approver_group)
    needs = "two different approvals" if req.approvals_required == 2 else "an approval"
    return f"{who}: this reset needs {needs}. Approve or deny it with the buttons above."


def approver_dm(req: ResetRequest, channel: str) -> str:
    return (f"<@{req.requester}> asks to reset the password of {req.target_display} (`{req.target_upn}`), who reports "
            f"to you. Approve or deny it in the thread: <#{channel}> ({req.id}).")


def approval_added(approver: str, have: int, need: int) -> str:
    return f"<@{approver}> approved ({have} of {need}); one more different approver is needed."


def approved(approvers: Sequence[str]) -> str:
    who = " and ".join(f"<@{a}>" for a in approvers)
    return f"Approved by {who}."


def denied(actor: str, reason: str) -> str:
    return f"Denied by <@{actor}>: {reason}"


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
    return (f":lock: <@{req.requester}> asked to reset the protected account {req.target_display} (`{req.target_upn}`; "
            f"{_protection_words(reasons)}), allowed by a rule with two approvers. Request {req.id}.")


def security_target_disowned(req: ResetRequest) -> str:
    return (f":rotating_light: {req.target_display} (`{req.target_upn}`) says they did NOT ask for the password reset "
            f"{req.id} that <@{req.requester}> requested. The request was cancelled.")


# --- the target's confirmation ---------------------------------------------------------------------------------

def confirm_question_text(req: ResetRequest) -> str:
    return f"Did you ask the helpdesk to reset your password? ({req.id})"


def confirm_question_blocks(req: ResetRequest) -> Blocks:
    text = (f"<@{req.requester}> from the helpdesk asked to reset your password ({req.id})"
            + (f", saying: _{req.reason}_" if req.reason else "") + ".\n*Did you ask the helpdesk for this?*")
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "actions", "block_id": Block.CONFIRM_ACTIONS, "elements": [
            _button("Yes, I asked", Action.CONFIRM_YES, req.id, style="primary"),
            _button("No, I didn't", Action.CONFIRM_NO, req.id, style="danger"),
        ]},
    ]


def confirm_answered(yes: bool) -> str:
    return ("Thanks: the helpdesk can go ahead." if yes else
            "Thanks for telling us: the request was cancelled and security has been told.")


def target_confirmed(target: str) -> str:
    return f"<@{target}> confirmed they asked for this reset."


def waiting_for_target(target: str | None, name: str) -> str:
    who = f"<@{target}>" if target else name
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


# --- /reset-status and App Home --------------------------------------------------------------------------------

def status_usage() -> str:
    return f"Type `{Command.RESET_STATUS} R-XXXXXX` for one request, or `{Command.RESET_STATUS} @user` for someone's."


def no_requests_for(who: str) -> str:
    return f"There are no reset requests for {who}."


def timeline(req: ResetRequest, events: Sequence[AuditEvent]) -> str:
    lines = [f"*{req.id}* · {req.target_display} (`{req.target_upn}`) · {_STATE_LINE[req.state]}"]
    for e in events:
        who = "resetbot" if e.actor in ("system", "scheduler") else f"<@{e.actor}>"
        step = e.action.replace("_", " ")
        if e.to_state and e.from_state:
            step += f" ({e.from_state.replace('_', ' ')} → {e.to_state.replace('_', ' ')})"
        lines.append(f"• {slack_date(e.at)} {who}: {step}")
    return "\n".join(lines)


def request_list(title: str, requests: Sequence[ResetRequest]) -> str:
    if not requests:
        return f"*{title}*\nNone."
    return f"*{title}*\n" + "\n".join(
        f"• {r.id} · {r.target_display} · {_STATE_LINE[r.state]} · {slack_date(r.created_at)}" for r in requests)


def home_view(*, pending_for_me: Sequence[ResetRequest], mine: Sequence[ResetRequest],
              health: HealthReport | None = None) -> dict[str, Any]:
    def section(text: str) -> dict[str, Any]:
        return {"type": "section", "text": {"type": "mrkdwn", "text": text}}

    blocks: Blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "resetbot"}},
        section(request_list("Waiting for my approval", pending_for_me)),
        {"type": "divider"},
        section(request_list("My recent requests", mine)),
    ]
    if health is not None:
        blocks += [{"type": "divider"}, section(health_home(health))]
    return {"type": "home", "blocks": blocks}


def internal_error(correlation_id: str) -> str:
    return (f"Something went wrong on my side and nothing was changed. If it happens again, give the helpdesk's "
            f"admins this reference: {correlation_id}.")


def service_unavailable(what: str, correlation_id: str) -> str:
    return f"{what} Nothing was changed; try again in a minute (reference {correlation_id})."


# --- the reset ------------------------------------------------------------------------------------------------

def reset_started(name: str) -> str:
    return f"Resetting {name}'s password in Entra ID; writeback carries it to Active Directory…"


_NOT_CHANGED = "The password was not changed."

_POLICY_RULE_WORDS = {
    RejectionRule.LENGTH: "it is shorter than the on-prem policy requires",
    RejectionRule.COMPLEXITY: "it does not meet the on-prem complexity rule",
    RejectionRule.HISTORY: "it matches one of the account's recent passwords (password history)",
    RejectionRule.MIN_AGE: "the password was changed too recently (minimum password age)",
    RejectionRule.FILTER: "a password filter on the domain controllers refused it (it meets length and complexity)",
    RejectionRule.FILTER_OR_HISTORY_OR_AGE: ("it meets length and complexity, so password history, the minimum "
                                             "age or a password filter refused it"),
    RejectionRule.BANNED: "it is on Entra ID's banned-password list",
}


_VERDICT_WORDS: dict[VerdictKind, str] = {
    VerdictKind.SUCCEEDED: (
        ":white_check_mark: Done: {name}'s new temporary password is set in Entra ID and written back to Active "
        "Directory; they must change it at next sign-in. {requester}, press Reveal to read it to them (it can be "
        "shown once, within 10 minutes)."),
    VerdictKind.SUCCEEDED_NO_MUST_CHANGE: (
        ":warning: Done, with a catch: the new temporary password is written back to Active Directory, but "
        "{name}'s account has \"password never expires\" set on-prem, so \"must change at next sign-in\" does not "
        "apply there. Ask them to change it themselves. {requester}, press Reveal to read it to them (once, within "
        "10 minutes)."),
    VerdictKind.POLICY_REJECTED: ":no_entry: Active Directory refused the new password: {rule}. {not_changed}",
    VerdictKind.CLOUD_REJECTED: ":no_entry: Entra ID refused the new password before writeback: {rule}. {not_changed}",
    VerdictKind.ROLE_TOO_WEAK: (
        ":no_entry: {requester}'s Entra role may not reset {name}'s password (Entra answered "
        "Authorization_RequestDenied); someone with a stronger admin role must do it. {not_changed}"),
    VerdictKind.WRITEBACK_OFF: (
        ":warning: Password writeback is not enabled for this tenant, so a synced account's password cannot be "
        "reset from the cloud; ask the Entra admins to turn it on in Entra Connect. {not_changed}"),
    VerdictKind.AGENT_OFFLINE: (
        ":warning: The on-premises writeback agent could not reach Active Directory (Entra Connect or the domain "
        "controller is down). {not_changed} Try again later and tell the AD team."),
    VerdictKind.PROTECTED_ON_PREM: (
        ":no_entry: Active Directory refused: the account is protected on-prem (adminCount=1) and the writeback "
        "account may not reset it. {not_changed}"),
    VerdictKind.DISABLED_ON_PREM: (
        ":no_entry: Active Directory refused: {name}'s account is disabled on-prem. {not_changed}"),
    VerdictKind.LOCKED_ON_PREM: (
        ":no_entry: Active Directory refused: {name}'s account is locked out on-prem; ask again with `--unlock`. "
        "{not_changed}"),
    VerdictKind.THROTTLED: (
        ":hourglass: Microsoft Graph is throttling requests right now. {not_changed} Try again in a few minutes."),
    VerdictKind.UNKNOWN: (
        ":grey_question: The reset did not complete and I can't tell why, so the password may or may not have "
        "changed; check the account before trying again (reference {cid})."),
}
_UNKNOWN_REASON_WORDS: dict[str, str] = {
    "reauth_required": (
        ":key: {requester} has no working Entra sign-in linked to resetbot, and resets are made with the agent's "
        "own Entra account: run `/resetbot login`, then ask again. {not_changed}"),
    "graph_unavailable": (
        ":warning: Microsoft Graph could not be reached, so the reset was not made as far as I can tell; check the "
        "account before trying again (reference {cid})."),
    "interrupted": (
        ":grey_question: resetbot stopped in the middle of this reset, before Entra said whether it was made, so "
        "{name}'s password may or may not have changed; check the account before asking again (reference {cid})."),
}


def verdict_sentence(verdict: Verdict, *, name: str, requester: str, correlation_id: str) -> str:
    """The verdict in plain words, for the thread. Never receives the password."""
    words = _VERDICT_WORDS[verdict.kind]
    if verdict.kind == VerdictKind.UNKNOWN:
        words = _UNKNOWN_REASON_WORDS.get(verdict.detail.get("reason", ""), words)
    rule = _POLICY_RULE_WORDS.get(verdict.rule, "it breaks a policy rule") if verdict.rule else ""
    return words.format(name=name, requester=f"<@{requester}>", rule=rule, not_changed=_NOT_CHANGED,
                        cid=correlation_id)


def reset_recovered_unrevealable(name: str) -> str:
    return (f":white_check_mark: Entra reports that the reset of {name}'s password succeeded, but resetbot restarted "
            "before it could seal the temporary password, so nobody can reveal it. Ask again for a new reset to get "
            "a password you can read out.")


def tap_started(name: str) -> str:
    return f"Issuing a Temporary Access Pass for {name} in Entra ID (no password change)…"


def tap_issued(name: str, requester: str, minutes: int) -> str:
    return (f":white_check_mark: Done: a Temporary Access Pass for {name} is ready, usable once within {minutes} "
            f"minutes; their password is unchanged. <@{requester}>, press Reveal to read it to them (it can be shown "
            "once, within 10 minutes).")


def reveal_blocks(request_id: str) -> Blocks:
    return [
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": "The temporary password is sealed until you reveal it."}},
        {"type": "actions", "block_id": Block.REVEAL_ACTIONS, "elements": [
            _button("Reveal temporary password", Action.REVEAL, request_id, style="primary")]},
    ]


def reveal_modal(*, name: str, password: SecretStr, spelled: str, must_change: bool,
                 tap: bool = False) -> dict[str, Any]:
    """The one place a temporary password (or Temporary Access Pass) is ever shown: a modal, to the requester,
    once."""
    secret = password.get_secret_value()
    after = "They must change it at next sign-in." if must_change else "Ask them to change it right away."
    if tap:
        after = "It signs them in once; then they set up their sign-in methods."
    return {
        "type": "modal",
        "callback_id": Callback.REVEAL,
        "title": {"type": "plain_text", "text": "Temporary Access Pass" if tap else "Temporary password"},
        "close": {"type": "plain_text", "text": "Done"},
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": (
                f"Read this to {name} now: it is shown only this once. {after}")}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"```{secret}```"}},
            {"type": "context", "elements": [{"type": "plain_text", "text": spelled}]},
        ],
    }


def revealed(requester: str) -> str:
    return f"<@{requester}> revealed the temporary password. It is no longer stored anywhere."


def reveal_gone() -> str:
    return ("This temporary password was already revealed, or its 10 minutes have passed: it is gone. Start a new "
            "reset if it's still needed.")


def secret_wiped() -> str:
    return "The temporary password was never revealed and has been wiped (10 minutes passed). Nothing else changed."


def target_reset_notice_text(req: ResetRequest) -> str:
    if req.tap:
        return f"The helpdesk issued a Temporary Access Pass for your account ({req.id})."
    return f"Your password was reset by the helpdesk ({req.id})."


def target_reset_notice_blocks(req: ResetRequest) -> Blocks:
    if req.tap:
        text = (f"The helpdesk issued a Temporary Access Pass for your account: <@{req.requester}> asked for it "
                f"({req.id}). It signs you in once. If you did not ask for this, tell us:")
    else:
        text = (f"Your password was reset by the helpdesk: <@{req.requester}> asked for it ({req.id}). You will be "
                "asked to choose a new one at your next sign-in. If you did not ask for this, tell us:")
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "actions", "block_id": Block.NOT_ME_ACTIONS, "elements": [
            _button("This wasn't me", Action.NOT_ME, req.id, style="danger")]},
    ]


def not_me_answered() -> str:
    return "Thanks for telling us: security has been alerted and will contact you."


def security_reset_disowned(req: ResetRequest) -> str:
    return (f":rotating_light: {req.target_display} (`{req.target_upn}`) says the password reset {req.id}, "
            f"requested by <@{req.requester}>, was not asked for by them. Their password WAS changed.")


# --- linking an Entra account ----------------------------------------------------------------------------------
# /resetbot login | logout | whoami, and what an agent is told before a reset about whose hands it is made by.
# The sign-in code reaches these builders only to be put in the agent's DM; never a token.

LOGIN = f"`{Command.RESETBOT} {ResetbotSubcommand.LOGIN}`"
LOGIN_SERVICE = f"`{Command.RESETBOT} {ResetbotSubcommand.LOGIN} --service`"


def _roles_phrase(roles: Sequence[str] | None) -> str:
    if roles is None:
        return "roles could not be read just now"
    return ", ".join(roles) if roles else "no Entra admin role"


def _listed(names: Sequence[str], last: str = "or") -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {last} {names[-1]}"


def link_usage(subcommand: str) -> str:
    if subcommand == ResetbotSubcommand.WHOAMI:
        return f"`{Command.RESETBOT} {subcommand}` takes nothing after it."
    return (f"`{Command.RESETBOT} {subcommand}` takes nothing after it, or `--service` for the service identity "
            f"(approvers only).")


def link_not_an_agent(group: str) -> str:
    return (f"Only members of the @{group} user group link an Entra account to resetbot, since only they request "
            "resets.")


def link_service_not_an_approver(group: str | None) -> str:
    who = f"members of the @{group} user group" if group else "approvers (no approver group is configured)"
    return f"Only {who} can link or unlink the service identity."


def link_service_not_used() -> str:
    return (f"Resets here are made with each agent's own Entra account, so there is no service identity to link; "
            f"{LOGIN} links yours.")


def link_not_needed(service_upn: str) -> str:
    return (f"Resets here are made as the service identity `{service_upn}`, so you don't need to link your own "
            f"account. An approver links the service identity with {LOGIN_SERVICE}.")


def login_already_waiting(expires_at: datetime, *, service: bool) -> str:
    whose = "A sign-in for the service identity" if service else "Your sign-in from before"
    return (f"{whose} is still waiting: use the code in the DM I sent, before {slack_date(expires_at)}, or let it "
            "run out and start again.")


def login_code_sent(expires_at: datetime) -> str:
    return (f"I've sent you a sign-in code in a DM; it works until {slack_date(expires_at)}. I'll tell you there "
            "when the account is linked.")


def login_code_dm(user_code: str, verification_uri: str, expires_at: datetime, *, sign_in_as: str | None,
                  service: bool) -> str:
    account = f"`{sign_in_as}`" if sign_in_as else "your own account"
    what = (f"link the service identity {account} to resetbot: every reset will be made as that account"
            if service else "link your Entra account to resetbot: resets you ask for will be made as you")
    return (f"To {what}. Open {verification_uri} and enter the code *{user_code}*, then sign in as {account}. "
            f"The code works until {slack_date(expires_at)}. Never pass it on to anyone: whoever signs in with it "
            "would be linked to your request. If you didn't ask for this, ignore this message.")


def linked(upn: str, roles: Sequence[str] | None, *, service: bool, can_reset_anyone: bool) -> str:
    who = "The service identity is" if service else "Your Entra account is"
    made = "every reset is made as this account" if service else "resets you ask for are made as this account"
    sentence = f"{who} linked as {upn} (roles: {_roles_phrase(roles)}); {made}."
    if roles is not None and not can_reset_anyone:
        sentence += (" It holds no Entra role that may reset passwords, so Microsoft will refuse its resets until "
                     "it gets one (Helpdesk Administrator or Password Administrator, for example).")
    return sentence


def link_declined(*, service: bool) -> str:
    again = LOGIN_SERVICE if service else LOGIN
    return f"The Microsoft sign-in was declined, so nothing was linked. Run {again} to try again."


def link_expired(*, service: bool) -> str:
    again = LOGIN_SERVICE if service else LOGIN
    return f"The sign-in code ran out before anyone used it, so nothing was linked. Run {again} for a new one."


def link_interrupted(*, service: bool) -> str:
    again = LOGIN_SERVICE if service else LOGIN
    return f"resetbot restarted while your sign-in was waiting, so nothing was linked. Run {again} again."


def link_failed(reason: str, correlation_id: str, *, service: bool) -> str:
    again = LOGIN_SERVICE if service else LOGIN
    return f"The sign-in did not link anything: {reason} Run {again} to try again (reference {correlation_id})."


def link_wrong_account(signed_in: str, expected: str, *, service: bool, security_told: bool) -> str:
    told = " and security has been told" if security_told else ""
    if service:
        return (f"That sign-in was completed as {signed_in}, not as the service identity {expected}, so nothing was "
                f"linked{told}. Run {LOGIN_SERVICE} again and sign in as {expected}.")
    return (f"That sign-in was completed as {signed_in}, which isn't your own account ({expected}), so nothing was "
            f"linked{told}. Run {LOGIN} again and sign in as yourself; never pass a sign-in code on to anyone.")


def link_no_email(signed_in: str) -> str:
    return (f"Your Slack profile shows no email address, so I can't tell whether {signed_in} is your own account; "
            "nothing was linked. Ask a Slack admin to show your email address, then try again.")


def security_link_mismatch(slack_user: str, signed_in: str, expected: str, *, service: bool) -> str:
    asked = f"<@{slack_user}> ran {LOGIN_SERVICE}" if service else f"<@{slack_user}> ran {LOGIN}"
    return (f":rotating_light: {asked}, but the Microsoft sign-in was completed as `{signed_in}` instead of "
            f"`{expected}`. Nothing was linked. A sign-in code completed by someone else can mean phishing: check "
            f"with <@{slack_user}> and with `{signed_in}`.")


def not_linked() -> str:
    return f"You haven't linked your Entra account yet, and resets you ask for are made as you: run {LOGIN} first."


def service_not_linked(service_upn: str) -> str:
    return (f"Resets here are made as the service identity `{service_upn}`, which isn't linked yet: an approver has "
            f"to run {LOGIN_SERVICE} first.")


def link_reauth(upn: str, *, service: bool) -> str:
    if service:
        return (f"The service identity's sign-in ({upn}) can no longer be used (it expired or was revoked): an "
                f"approver has to run {LOGIN_SERVICE} again.")
    return f"Your Entra sign-in ({upn}) can no longer be used (it expired or was revoked): run {LOGIN} again."


def role_too_weak(upn: str, caller_roles: Sequence[str], blocking: Sequence[str], needed: Sequence[str], *,
                  service: bool) -> str:
    who = f"The service identity {upn}" if service else f"Your Entra account {upn}"
    holds = f"({', '.join(caller_roles)})" if caller_roles else "(no Entra role that may reset passwords)"
    whom = f"someone who holds {_listed(blocking, 'and')}" if blocking else "anyone"
    return f"{who} {holds} can't reset the password of {whom}: that takes {_listed(needed)}."


def whoami_not_linked() -> str:
    return f"You haven't linked an Entra account. {LOGIN} links your own, through a Microsoft sign-in code by DM."


def whoami_linked(upn: str, display_name: str, linked_at: datetime, roles: Sequence[str] | None,
                  token_state: str, *, service: bool) -> str:
    who = "The service identity is" if service else "You're"
    name = f" ({display_name})" if display_name and display_name != upn else ""
    return (f"{who} linked as {upn}{name} since {slack_date(linked_at)}. Entra roles: {_roles_phrase(roles)}. "
            f"{token_state}")


def token_works() -> str:
    return "A token comes silently right now."


def token_needs_login(*, service: bool) -> str:
    again = LOGIN_SERVICE if service else LOGIN
    return f"But the sign-in can no longer be used silently (expired or revoked): run {again} again."


def token_unknown(reason: str) -> str:
    return f"Whether a token comes silently can't be checked right now: {reason}"


def whoami_service_mode(service_upn: str) -> str:
    return (f"Resets here are made as the service identity `{service_upn}`, not as you; any link of your own is "
            "not used.")


def unlinked(upn: str, *, service: bool) -> str:
    who = "The service identity" if service else "Your Entra account"
    return (f"{who} {upn} is unlinked: resetbot has deleted its sign-in. To end the sign-in at Microsoft too, sign "
            "out of your sessions at https://myaccount.microsoft.com.")


def nothing_to_unlink(*, service: bool) -> str:
    return "The service identity isn't linked." if service else "You have no linked Entra account."


# --- follow-ups: did it land in AD, did the user move on -----------------------------------------------------


def _ad_time(at: datetime | None) -> str:
    return slack_date(at) if at is not None else "never"


def writeback_confirmed(name: str, *, must_change: bool, seen_at: datetime | None) -> str:
    if must_change:
        return (f":white_check_mark: Confirmed on-premises: Active Directory shows the reset of {name}'s password, "
                "with *must change at next sign-in* set.")
    return (f":white_check_mark: Confirmed on-premises: Active Directory shows the reset of {name}'s password "
            f"(password last set {_ad_time(seen_at)}).")


def writeback_without_must_change(name: str, *, seen_at: datetime | None) -> str:
    return (f":warning: The reset of {name}'s password reached Active Directory ({_ad_time(seen_at)}), but the "
            "account's *password never expires* flag keeps *must change at next sign-in* from applying on-premises: "
            f"the temporary password stays valid there until {name} changes it. Ask them to change it now, or clear "
            "the flag in AD.")


def writeback_must_change_missing(name: str, *, seen_at: datetime | None, maybe_own: bool) -> str:
    """The reset landed with a ``pwdLastSet`` instant on an account without "password never expires".
    ``maybe_own``: AD's password version was not readable, so that instant may be the user's own change."""
    if maybe_own:
        return (f":warning: The reset of {name}'s password reached Active Directory ({_ad_time(seen_at)}), but AD "
                f"does not show *must change at next sign-in*: either {name} has already chosen their own password, "
                "or must-change did not apply on-premises and the temporary password stays valid there until they "
                "change it. Ask them to change it if they have not.")
    return (f":warning: The reset of {name}'s password reached Active Directory ({_ad_time(seen_at)}), but "
            "*must change at next sign-in* did not apply on-premises: the temporary password stays valid there "
            f"until {name} changes it. Ask them to change it now, or set the flag in AD.")


def writeback_unproven(name: str, dn: str) -> str:
    """AD shows must-change, as it did before the reset: nothing tells this reset from an earlier one."""
    return (f":grey_question: Not confirmed on-premises: Active Directory shows *must change at next sign-in* on "
            f"`{dn}`, but it may have shown that before this reset too (an earlier temporary password never "
            "replaced), and the bot cannot tell this reset from that one: it needs to read the password's version "
            "(`msDS-KeyVersionNumber`) before and after the reset. Writeback may or may not have reached AD; ask "
            f"{name} to sign in with the new temporary password to be sure.")


def writeback_not_seen(name: str, *, waited: str, seen_at: datetime | None, reset_at: datetime, dn: str) -> str:
    return (f":warning: {waited} after the reset ({slack_date(reset_at)}), Active Directory still does not show it: "
            f"`{dn}` has its password last set {_ad_time(seen_at)}. Entra said the reset succeeded, so writeback may "
            "not have reached the domain controller the bot reads, or the writeback agent went offline. Check Entra "
            f"Connect's password writeback before {name} relies on the new password on-premises.")


def writeback_account_gone(name: str, dn: str) -> str:
    return (f":warning: The reset of {name}'s password could not be confirmed on-premises: the AD account `{dn}` is "
            "no longer found.")


def password_replaced(name: str, *, at: datetime | None) -> str:
    return (f":lock: {name} has chosen their own password ({_ad_time(at)}): the temporary one no longer works. "
            "Follow-up done.")


def password_never_replaced(name: str, *, waited: str) -> str:
    return (f":hourglass: {waited} after the reset, {name} has still not replaced the temporary password; it keeps "
            "working until they do. No more reminders will be sent: call them, or reset again if the temporary "
            "password may have been seen by someone else.")


def replace_reminder(*, waited: str) -> str:
    return (f"Reminder: helpdesk reset your password {waited} ago and you haven't chosen your own yet. Sign in with "
            "the temporary password you were given and you'll be asked to choose a new one. If you didn't ask for "
            "this reset, press *This wasn't me* on the earlier message.")


def duration_words(seconds: float) -> str:
    """``1 hour 30 minutes``, ``2 days``, ``45 seconds``: how long, in at most two units a person reads at a glance
    (the smaller one dropped when it is zero)."""
    units = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
    left, parts = max(round(seconds), 0), list[str]()
    for unit, size in units:
        n, left = divmod(left, size)
        if n or parts:
            if n:
                parts.append(f"{n} {unit}{'s' if n != 1 else ''}")
            if len(parts) == 2 or (parts and size == 1) or (parts and not n):
                break
    return " ".join(parts) or "0 seconds"


# --- resetbot doctor ------------------------------------------------------------------------------------------
# One line per check: what was found, or what is wrong and what to do about it. Never a secret's value.

DOCTOR_OK, DOCTOR_FAIL, DOCTOR_SKIP = "ok", "FAIL", "skip"


# The checks' names, in the order they run.
CHECK_SETTINGS = "settings"
CHECK_PROXY = "outbound proxy"
CHECK_SLACK_BOT = "Slack bot token"
CHECK_SLACK_SCOPES = "Slack bot scopes"
CHECK_SLACK_APP = "Slack app token"
CHECK_ENTRA_TLS = "TLS to Entra ID"
CHECK_ENTRA_TOKEN = "Entra app token"  # noqa: S105 - a check's name
CHECK_GRAPH_ROLES = "Graph permissions"
CHECK_GRAPH_REACHABLE = "Graph reachable"
CHECK_GRAPH_USER = "Graph test user"
CHECK_RESET_ROLE = "Entra reset role"
CHECK_LDAP_TLS = "TLS to AD"
CHECK_LDAP_BIND = "LDAP bind"
CHECK_AD_POLICY = "AD password policy"
CHECK_WRITEBACK = "writeback rights"
CHECK_KEY_VERSION = "AD password version"
CHECK_DATABASE = "database"
CHECK_SERVICE_LINK = "service identity link"


def doctor_line(outcome: str, check: str, detail: str) -> str:
    return f"{outcome:<4}  {check}: {detail}"


def doctor_summary(failed: int) -> str:
    if not failed:
        return "Every check passed."
    return (f"{failed} check{'s' if failed != 1 else ''} failed: fix the lines marked FAIL and run resetbot doctor "
            "again.")


def doctor_settings_ok() -> str:
    return "complete"


def doctor_skipped_for(what: str) -> str:
    return f"skipped: {what} failed above"


def doctor_app_token_not_used() -> str:
    return "skipped: HTTP mode (RESETBOT_SLACK_MODE=http) uses no app-level token; Slack calls the bot's request URL"


def doctor_skipped_unset(setting: str, why: str) -> str:
    return f"skipped: set {setting} to {why}"


def doctor_slack_bot_ok(user: str, team: str) -> str:
    return f"authenticates as {user} in {team}"


def doctor_slack_refused(setting: str, error: str, kind: str) -> str:
    return f"Slack refused {setting} ({error}): copy the {kind} from the app's settings page into {setting}"


def doctor_slack_unreachable(reason: str, api_base: str) -> str:
    return f"Slack could not be reached at {api_base} ({reason}): check the network path and RESETBOT_SLACK_API_BASE"


def doctor_scopes_ok(count: int) -> str:
    return f"the bot token has all {count} scopes manifest.yml asks for"


def doctor_scopes_missing(missing: list[str]) -> str:
    return (f"the bot token lacks {', '.join(missing)}: add {'them' if len(missing) > 1 else 'it'} under "
            "OAuth & Permissions (as manifest.yml asks) and reinstall the app to the workspace")


def doctor_scopes_unknown() -> str:
    return "Slack did not say which scopes the bot token has (no x-oauth-scopes header)"


def doctor_app_token_ok() -> str:
    return "opens a Socket Mode connection (apps.connections.open)"


def doctor_tls_ok(host: str, ca_setting: str, ca_file: object, *, via: str | None = None) -> str:
    path = f", through the proxy {via}" if via else ""
    return (f"{host} presents a certificate trusted by {ca_file if ca_file else 'the system store'} "
            f"({ca_setting}{path})")


def doctor_tls_untrusted(host: str, reason: str, ca_setting: str, ca_file: object) -> str:
    bundle = f"the CA bundle {ca_file}" if ca_file else "the system's trust store"
    return (f"the certificate of {host} does not verify against {bundle} ({reason}): put the CA that issued it "
            f"in {ca_setting}")


def doctor_tls_unreachable(host: str, reason: str) -> str:
    return f"{host} did not answer TLS ({reason}): check that the server runs and the network path to it"


def doctor_ca_bundle_unreadable(ca_setting: str, reason: str) -> str:
    return f"{ca_setting} cannot be used as a CA bundle ({reason})"


def doctor_entra_token_ok(client_id: str, credential: str) -> str:
    return f"app {client_id} got a Graph token with its {credential}"


def doctor_entra_failed(sentence: str) -> str:
    return sentence.rstrip(".")


def doctor_roles_ok(roles: list[str]) -> str:
    return (f"the app's token carries {', '.join(roles)}; the app needs no directory role (resets are made "
            "with delegated tokens: the agents' own, or the service identity's)")


def doctor_roles_missing(missing: list[str], client_id: str) -> str:
    return (f"the app's token lacks the application permission{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}: add {'them' if len(missing) > 1 else 'it'} to app {client_id} under API "
            "permissions → Microsoft Graph → Application permissions, and grant admin consent")


def doctor_roles_unreadable() -> str:
    return "the app's token is not a readable JWT, so its permissions cannot be checked"


def doctor_graph_ok(host: str) -> str:
    return f"{host} presents a trusted certificate and answers the app's token (it read the tenant)"


def doctor_graph_refused(code: str, client_id: str) -> str:
    return (f"Graph refused the app's token when reading the tenant ({code}): give app {client_id} the application "
            "permission Organization.Read.All (API permissions → Microsoft Graph) and grant admin consent")


def doctor_graph_unavailable(sentence: str, graph_base: str) -> str:
    return (f"{sentence.rstrip('.')}: check RESETBOT_GRAPH_BASE ({graph_base}), the network path to it and "
            "Microsoft 365's service health")


def doctor_service_not_used() -> str:
    return ("skipped: RESETBOT_RESET_IDENTITY=agent and no canary, so no service identity is used: each agent's own "
            "Entra role is checked when they ask for a reset (/resetbot whoami shows it)")


def doctor_reset_role_ok(upn: str, roles: list[str], use: str) -> str:
    return f"the service identity {upn} ({use}) holds {', '.join(roles)}, which may reset an ordinary user's password"


def doctor_reset_role_missing(upn: str, held: list[str], use: str) -> str:
    holds = f"holds only {', '.join(held)}" if held else "holds no Entra directory role"
    return (f"the service identity {upn} ({use}) {holds}, so Microsoft will refuse its resets: assign it Helpdesk "
            "Administrator or User Administrator (Entra admin center → Roles and administrators)")


def doctor_reset_role_no_user(upn: str) -> str:
    return f"Entra ID has no user {upn}: set RESETBOT_SERVICE_IDENTITY_UPN to the service identity's UPN"


def doctor_service_use(service_mode: bool) -> str:
    return "every reset is made as it" if service_mode else "the canary is reset as it"


def doctor_service_link_ok(upn: str, linked_at: datetime) -> str:
    return (f"{upn} is linked (since {linked_at:%Y-%m-%d %H:%M} UTC) and its stored sign-in opens with "
            "RESETBOT_TOKEN_CACHE_KEY; /resetbot whoami shows whether Entra still honours it")


def doctor_service_link_missing(upn: str, use: str) -> str:
    return (f"{upn} is not linked, yet {use}: an approver runs /resetbot login --service and signs in as {upn}")


def doctor_service_link_other(linked: str, upn: str) -> str:
    return (f"the linked service identity is {linked}, not RESETBOT_SERVICE_IDENTITY_UPN ({upn}): an approver runs "
            f"/resetbot logout --service, then /resetbot login --service as {upn}")


def doctor_service_link_unreadable(upn: str) -> str:
    return (f"the stored sign-in of {upn} does not decrypt with RESETBOT_TOKEN_CACHE_KEY (nor any of "
            "RESETBOT_TOKEN_CACHE_OLD_KEYS): put back the key it was stored under, or link it again with "
            "/resetbot login --service")


def doctor_graph_user_ok(upn: str, sam: str | None) -> str:
    return f"{upn} is readable and synced from AD (sAMAccountName {sam})"


def doctor_graph_user_missing(upn: str) -> str:
    return f"Graph does not know {upn}: set RESETBOT_DOCTOR_TEST_USER to the UPN of a synced user"


def doctor_graph_user_not_synced(upn: str) -> str:
    return (f"{upn} is not synced from AD (no on-premises fields): pick a synced user for "
            "RESETBOT_DOCTOR_TEST_USER, or check Entra Connect's sync")


def doctor_ldap_bind_ok(bind: str) -> str:
    return f"bound as {bind} and read the rootDSE"


def doctor_ldap_failed(sentence: str) -> str:
    return (f"{sentence.rstrip('.')}: check RESETBOT_LDAP_URL, RESETBOT_LDAP_BIND and RESETBOT_LDAP_PASSWORD, "
            "and that the domain controller answers")


def doctor_policy_ok(min_length: int, psos: int) -> str:
    pso = f"{psos} fine-grained polic{'ies' if psos != 1 else 'y'} readable" if psos else "no fine-grained policies"
    return f"domain policy readable (minimum length {min_length}); {pso}"


def doctor_pso_hidden(container: str, count: int) -> str:
    return (f"{count} fine-grained password polic{'ies are' if count != 1 else 'y is'} not readable by the bot's "
            f"account: grant it Read on {container} (the bot refuses to guess a policy)")


def doctor_policy_failed(sentence: str) -> str:
    return f"the password policy could not be read ({sentence.rstrip('.')})"


def doctor_writeback_ok(account: str, ou: str) -> str:
    return f"{account} may reset passwords and write pwdLastSet and lockoutTime on users in {ou}"


def doctor_writeback_missing(account: str, ou: str, missing: list[str]) -> str:
    return (f"{account} lacks {', '.join(missing)} on users in {ou}: delegate them to the AD DS connector account "
            "(Entra Connect's ADSyncConfig Set-ADSyncPasswordWritebackPermissions does), or writeback will fail")


def doctor_writeback_account_unknown(account: str) -> str:
    return f"no single AD account matches {account}: set RESETBOT_WRITEBACK_ACCOUNT to the AD DS connector account"


def doctor_writeback_user_unknown(upn: str) -> str:
    return f"{upn} is not in AD under RESETBOT_LDAP_BASE_DN: set RESETBOT_DOCTOR_TEST_USER to a synced user"


def doctor_writeback_failed(sentence: str) -> str:
    return f"the rights could not be read ({sentence.rstrip('.')})"


def doctor_key_version_ok(upn: str, version: int) -> str:
    return (f"the bot's account reads msDS-KeyVersionNumber on {upn} (now {version}): follow-ups can prove each "
            "reset reached AD")


def doctor_key_version_hidden(dn: str) -> str:
    return (f"the bot's account cannot read msDS-KeyVersionNumber on {dn}: without it a reset of an account that "
            "already had to change its password cannot be proven to have reached AD (the thread says \"not "
            "confirmed\"); grant the bind account Read on that attribute (or Read all properties) for user objects")


def doctor_db_ok(backend: str) -> str:
    return f"{backend} reachable; the schema is up to date"


def doctor_db_unreachable(backend: str, reason: str) -> str:
    return f"the {backend} database could not be opened ({reason}): check RESETBOT_DATABASE_URL and the server"


def doctor_db_pending(pending: list[str]) -> str:
    shown = ", ".join(pending[:5]) + (", ..." if len(pending) > 5 else "")
    return f"the database is not migrated ({len(pending)} pending: {shown}): run resetbot migrate"


def doctor_unexpected(kind: str) -> str:
    return f"the check itself failed ({kind}); run with the same settings again, and report it if it stays"


# --- operator commands (resetbot migrate, resetbot audit, resetbot run's start) -------------------------------


def cannot_start(reason: str) -> str:
    """``resetbot run``'s one line on stderr when it cannot serve: the reason is one of the sentences below, a
    settings or database sentence, or a doctor sentence (the same calls fail the same way)."""
    return f"resetbot cannot start: {reason.rstrip('.')}."


def bot_token_kind() -> str:
    return "Bot User OAuth Token (xoxb-…)"


def app_token_kind() -> str:
    return "app-level token with connections:write (xapp-…)"


def cannot_listen(host: str, port: int, reason: str) -> str:
    return f"cannot listen on {host}:{port} ({reason})"


def proxy_refused(proxy: str, target: str, status: int, reason: str) -> str:
    """The proxy answered CONNECT with ``status``; ``proxy`` is shown without its credentials."""
    said = f"{status} {reason}".strip()
    if status == 407:
        return (f"the outbound proxy {proxy} refused the tunnel to {target} ({said}): check the user and password "
                "in RESETBOT_HTTPS_PROXY")
    return (f"the outbound proxy {proxy} refused the tunnel to {target} ({said}): ask the proxy's owners to allow "
            "CONNECT to that host, or check RESETBOT_HTTPS_PROXY")


def proxy_unreachable(proxy: str, reason: str) -> str:
    return (f"the outbound proxy {proxy} could not be reached ({reason}): check RESETBOT_HTTPS_PROXY and that the "
            "proxy runs")


def doctor_proxy_ok(proxy: str, targets: list[str]) -> str:
    return f"{proxy} opens tunnels to {', '.join(targets)}"


def doctor_proxy_unset() -> str:
    return "skipped: RESETBOT_HTTPS_PROXY is not set, so Slack, Entra ID and Graph are reached directly"


def cannot_open_socket_mode(api_base: str, reason: str) -> str:
    return f"cannot connect to Slack over Socket Mode at {api_base} ({reason})"


def slack_start_refused(kind: str) -> str:
    return f"Slack did not accept the bot while it started ({kind}): run resetbot doctor to see what is wrong"



def database_unavailable(where: str, reason: str) -> str:
    return f"The database {where} cannot be used: {reason}."


def database_missing(where: str) -> str:
    return f"There is no database at {where} (check RESETBOT_DATABASE_URL)."


def not_a_resetbot_database(where: str) -> str:
    return f"The database {where} has no resetbot audit trail (check RESETBOT_DATABASE_URL, or run `resetbot migrate`)."


def schema_ahead(unknown: Sequence[str], known_heads: Sequence[str]) -> str:
    return (f"The database is at schema revision {', '.join(unknown)}, which this version of resetbot does not know "
            f"(it expects {', '.join(known_heads)}): a newer version migrated it; run that version.")


def schema_behind(missing: Sequence[str]) -> str:
    return (f"The database schema is behind this version of resetbot (missing revision {', '.join(missing)}) and "
            "RESETBOT_MIGRATE_ON_START is off: run `resetbot migrate` first.")


def migrated(applied: Sequence[str], where: str) -> str:
    return f"Applied schema revision {', '.join(applied)} to {where}; it is up to date."


def already_migrated(at: Sequence[str], where: str) -> str:
    return f"The database {where} is already up to date (schema revision {', '.join(at)}); nothing to apply."


def bad_instant(text: str) -> str:
    return (f"{text!r} is not an ISO 8601 date or date-time; write e.g. 2025-03-04, 2025-03-04T09:30 (UTC) or "
            "2025-03-04T09:30+01:00.")


def bad_interval(since: datetime, until: datetime) -> str:
    return f"--until ({until.isoformat()}) must come after --since ({since.isoformat()})."


def cannot_write(path: str, reason: str) -> str:
    return f"Cannot write {path}: {reason}."


def audit_exported(count: int, path: str) -> str:
    return f"Exported {count} audit event{'' if count == 1 else 's'} to {path}."


def chain_intact(count: int) -> str:
    return f"{count} event{'' if count == 1 else 's'}, chain intact."


def chain_broken(first_bad_seq: int | None, reason: str, checked: int) -> str:
    at = f" at event {first_bad_seq}" if first_bad_seq is not None else ""
    return f"The audit chain is broken{at}: {reason}. ({checked} events before it are intact.)"


# --- health pings -------------------------------------------------------------------------------------------------

CHECK_LABELS: dict[Check, str] = {
    Check.GRAPH_TOKEN: "Graph token (the bot's app signs in to Entra ID)",
    Check.GRAPH_READ: "Graph read (Microsoft Graph answers the bot)",
    Check.LDAP: "LDAP bind and read (Active Directory answers the bot)",
    Check.DIRECTORY_SYNC: "Directory sync (Entra Connect synced recently)",
    Check.CANARY: "Canary (a reset of the canary account reached Active Directory)",
}
_STATE_WORDS = {
    HealthState.HEALTHY: ":large_green_circle: healthy",
    HealthState.DEGRADED: ":red_circle: degraded",
    HealthState.UNKNOWN: ":white_circle: not checked yet",
}


def check_label(check: Check) -> str:
    return CHECK_LABELS[check]


def _short_label(check: Check) -> str:
    return CHECK_LABELS[check].split(" (", 1)[0]


def health_token_ok() -> str:
    return "The token endpoint issued the bot's app a Graph token."


def health_graph_ok() -> str:
    return "Microsoft Graph read the tenant."


def health_ldap_ok() -> str:
    return "The bot bound to Active Directory and read it."


def health_sync_ok(last_sync: datetime) -> str:
    return f"Entra Connect last synced {slack_date(last_sync)}."


def health_sync_off() -> str:
    return "Directory sync is not enabled for this tenant (onPremisesSyncEnabled is false)."


def health_sync_never() -> str:
    return "Entra ID reports no directory sync at all (no onPremisesLastSyncDateTime)."


def health_sync_stale(last_sync: datetime, max_age_minutes: int) -> str:
    return (f"Entra Connect last synced {slack_date(last_sync)}, more than {max_age_minutes} minutes ago: "
            "check the Entra Connect server and its service.")


def canary_landed(upn: str, pwd_last_set: datetime | None) -> str:
    when = f" (pwdLastSet {slack_date(pwd_last_set)})" if pwd_last_set else ""
    return f"The canary {upn} was reset through Graph and Active Directory shows the new password{when}."


def canary_not_in_ad(upn: str) -> str:
    return f"The canary account {upn} was not found in Active Directory: check RESETBOT_CANARY_UPN."


def canary_not_in_entra(upn: str) -> str:
    return f"The canary account {upn} was not found in Entra ID: check RESETBOT_CANARY_UPN and that it is synced."


def canary_not_linked(service_upn: str) -> str:
    return (f"The canary is reset as the service identity `{service_upn}`, which isn't linked: an approver has to "
            f"run {LOGIN_SERVICE}.")


def canary_refused(upn: str, status_detail: str | None) -> str:
    return (f"The canary reset of {upn} did not land on-premises: "
            f"{status_detail or 'Graph gave no reason'}")


def canary_timed_out(upn: str, seconds: float) -> str:
    return f"The canary reset of {upn} had no verdict from writeback after {seconds:.0f} seconds."


def canary_not_moved(upn: str) -> str:
    return (f"Graph reported the canary reset of {upn} done, but its pwdLastSet in Active Directory did not move: "
            "the password did not land on-premises.")


def canary_ambiguous(upn: str) -> str:
    return (f"The canary {upn} must change its password at next logon, so pwdLastSet cannot show whether the reset "
            "landed: set 'Password never expires' on the canary account.")


def health_check_crashed(kind: str) -> str:
    return f"The check itself failed unexpectedly ({kind}); the bot's log has the details."


def _ms_said(code: str | None, status: int | None) -> str:
    """Microsoft's error code and the HTTP status, what support asks for, as " (AADSTS90033, HTTP 503)"."""
    said = ", ".join(x for x in (code, f"HTTP {status}" if status else None) if x)
    return f" ({said})" if said else ""


def health_ad_unreachable() -> str:
    return "Active Directory could not be reached or stopped answering the bot."


def health_ad_bind_refused() -> str:
    return ("Active Directory refused the bot's bind: check RESETBOT_LDAP_BIND and RESETBOT_LDAP_PASSWORD "
            "(`resetbot doctor` says more).")


def health_ad_base_unreadable() -> str:
    return ("The bot bound to Active Directory but could not read its base DN: check RESETBOT_LDAP_BASE_DN and that "
            "the bind account may read the domain.")


def health_ad_failed() -> str:
    return "Active Directory refused or failed one of the bot's reads; the bot's log has its answer."


def health_entra_refused(code: str | None, status: int | None) -> str:
    return (f"Entra ID refused the bot's app credentials{_ms_said(code, status)}: `resetbot doctor` names the "
            "setting to fix.")


def health_entra_unavailable(code: str | None, status: int | None) -> str:
    return f"Entra ID's token endpoint could not be reached or is unavailable{_ms_said(code, status)}."


def health_signin_expired() -> str:
    return f"The service identity's Microsoft sign-in can no longer be used: an approver has to run {LOGIN_SERVICE}."


def health_graph_denied(code: str | None, status: int | None) -> str:
    return f"Microsoft Graph refused the bot's call{_ms_said(code, status)}: check the app's Graph permissions."


def health_graph_throttled() -> str:
    return "Microsoft Graph kept throttling the bot (HTTP 429) after its retries."


def health_graph_unavailable() -> str:
    return "Microsoft Graph could not be reached or kept failing (HTTP 5xx) after the bot's retries."


def health_microsoft_failed(kind: str, code: str | None, status: int | None) -> str:
    return f"Microsoft answered the check with an error, {kind}{_ms_said(code, status)}; the bot's log has it."


def health_check_failed(kind: str) -> str:
    return f"The check failed ({kind}); the bot's log has the details."


def health_transition(change: Change) -> str:
    """The one message ops gets when health changes."""
    lines = [f"*resetbot health: {_STATE_WORDS[change.to_state]}*"
             + (" (was " + _STATE_WORDS[change.from_state].split(" ", 1)[1] + ")"
                if change.from_state != HealthState.UNKNOWN else "")]
    lines += [f"• :x: {_short_label(c)} failing: {detail}" for c, detail in change.newly_failing]
    lines += [f"• :white_check_mark: {_short_label(c)} recovered" for c in change.recovered]
    still = [c for c in change.failing if c not in {n for n, _ in change.newly_failing}]
    if still:
        lines.append("Still failing: " + ", ".join(_short_label(c) for c in still) + ".")
    return "\n".join(lines)


def _transition_line(t: TransitionView) -> str:
    what = ", ".join(f"{_short_label(c)} {'recovered' if ok else 'failing'}" for c, ok in t.changed.items())
    return f"• {slack_date(t.at)}: {t.from_state.value} → {t.to_state.value}" + (f" ({what})" if what else "")


def _check_line(view: CheckView) -> str:
    mark = ":white_check_mark:" if view.ok else ":x:"
    return f"{mark} *{_short_label(view.check)}* ({slack_date(view.at)}): {view.detail}"


def health_report(report: HealthReport) -> str:
    """``/resetbot health``: the state, each check's last result, the last transitions."""
    if report.state == HealthState.UNKNOWN:
        return "*resetbot health: " + _STATE_WORDS[HealthState.UNKNOWN] + "*\nNo round of health pings has run yet."
    lines = [f"*resetbot health: {_STATE_WORDS[report.state]}*"]
    lines += [_check_line(v) for v in report.checks]
    lines += _last_changes(report)
    return "\n".join(lines)


def _last_changes(report: HealthReport) -> list[str]:
    """The "Last changes" lines, newest first; ``/resetbot health`` and App Home show the same ones."""
    if not report.transitions:
        return []
    return ["*Last changes*", *(_transition_line(t) for t in report.transitions)]


def health_home(report: HealthReport) -> str:
    failing = [_short_label(v.check) for v in report.checks if not v.ok]
    text = f"*Writeback health:* {_STATE_WORDS[report.state]}"
    if failing:
        text += " (failing: " + ", ".join(failing) + ")"
    return "\n".join([text, *_last_changes(report),
                      f"`{Command.RESETBOT} {ResetbotSubcommand.HEALTH}` shows each check."])


def health_summary(report: HealthReport, counts: dict[Check, tuple[int, int]], changes: int) -> str:
    """The daily summary for ops: the state now, and each check's last 24 hours."""
    lines = [f"*resetbot daily health summary: {_STATE_WORDS[report.state]}*"]
    for view in report.checks:
        total, failed = counts.get(view.check, (0, 0))
        lines.append(f"• {_short_label(view.check)}: {'ok' if view.ok else 'failing'} now; "
                     f"{failed} of {total} checks failed in the last 24 hours")
    lines.append(f"{changes} change{'s' if changes != 1 else ''} of state in the last 24 hours.")
    return "\n".join(lines)

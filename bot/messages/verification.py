"""Verifying the caller: the state line on the request message, the buttons that start a method, what the thread,
the agent, the target and security are told, and the code and call-back modals.

``code_dm_text`` is the only builder that receives a one-time code, as a ``SecretStr``, for the DM to the target:
the code's one destination. Every other sentence names the method and the people, never the code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import SecretStr

from bot.domain.lifecycle import RequestState
from bot.domain.verification import (
    CODE_LENGTH,
    CODE_TTL,
    MAX_CODE_TRIES,
    STRENGTH,
    VerifyRefusal,
    VerifyState,
)
from bot.ids import Action, Block, Callback
from bot.messages.format import Blocks, button, esc, slack_date
from bot.models import ResetRequest
from bot.settings import VerifyMethod

METHOD_NAMES: dict[VerifyMethod, str] = {
    VerifyMethod.SLACK_CODE: "Slack code",
    VerifyMethod.SLACK_CONFIRM: "Slack confirmation",
    VerifyMethod.DUO_PUSH: "Duo push",
    VerifyMethod.CALLBACK: "call-back",
}


#: Each method's button (an action_id appears once per block).
VERIFY_ACTIONS: dict[VerifyMethod, Action] = {
    VerifyMethod.SLACK_CODE: Action.VERIFY_SLACK_CODE,
    VerifyMethod.SLACK_CONFIRM: Action.VERIFY_SLACK_CONFIRM,
    VerifyMethod.DUO_PUSH: Action.VERIFY_DUO_PUSH,
    VerifyMethod.CALLBACK: Action.VERIFY_CALLBACK,
}


def method_name(method: str | None) -> str:
    try:
        return METHOD_NAMES[VerifyMethod(method or "")]
    except ValueError:
        return f"`{esc(str(method)[:32])}`" if method else "an unknown method"


def state_line(req: ResetRequest, *, required: bool) -> str:
    """The request message's line about the caller, so the approver sees it before deciding."""
    state = VerifyState(req.verification)
    if state == VerifyState.VERIFIED and req.verified_at is not None:
        method = VerifyMethod(req.verify_method or VerifyMethod.CALLBACK)
        weak = " (the weakest method)" if method == VerifyMethod.CALLBACK else ""
        return (f":white_check_mark: Caller verified by {method_name(req.verify_method)}{weak} at "
                f"{slack_date(req.verified_at)}" + (f", run by <@{req.verified_by}>" if req.verified_by else ""))
    if state == VerifyState.PENDING:
        return f":hourglass_flowing_sand: Caller verification by {method_name(req.verify_method)} under way"
    if state == VerifyState.BLOCKED:
        return (f":rotating_light: Caller failed verification by {method_name(req.verify_method)}: this request "
                "cannot be verified any more")
    if state == VerifyState.FAILED:
        return f":x: Caller not verified: {method_name(req.verify_method)} failed" + (
            "; the reset waits for a verification" if required else "")
    return ":grey_question: Caller not verified yet" + ("; the reset waits for a verification" if required else "")


def verify_buttons(req: ResetRequest, methods: Sequence[VerifyMethod]) -> dict[str, Any] | None:
    """The agent's buttons, one per method this request may use, while a verification may be started."""
    if VerifyState(req.verification) in (VerifyState.VERIFIED, VerifyState.BLOCKED) or not methods:
        return None
    return {"type": "actions", "block_id": Block.VERIFY_ACTIONS, "elements": [
        button(f"Verify caller: {METHOD_NAMES[m]}", VERIFY_ACTIONS[m], f"{req.id}|{m.value}") for m in methods]}


def parse_verify_value(value: str) -> tuple[str, str]:
    request_id, _, method = value.partition("|")
    return request_id, method


def refusal(reason: VerifyRefusal, req: ResetRequest | None = None, method: str | None = None) -> str:
    name = method_name(method) if method else "that method"
    rid = f" ({req.id})" if req else ""
    return {
        VerifyRefusal.METHOD_NOT_ALLOWED: f"{name.capitalize()} is not one of the verification methods this "
                                          f"helpdesk allows{rid}.",
        VerifyRefusal.CALLBACK_NOT_FOR_PROTECTED: f"A call-back is not enough for a protected account{rid}: verify "
                                                  "the caller with another method.",
        VerifyRefusal.ONLY_REQUESTER_VERIFIES: f"Only the agent who made the request verifies its caller{rid}.",
        VerifyRefusal.NOT_PENDING: f"This request{rid} is no longer waiting, so its caller cannot be verified now.",
        VerifyRefusal.ALREADY_VERIFIED: f"The caller is already verified{rid}.",
        VerifyRefusal.BLOCKED: f"The caller failed verification{rid}; this request cannot be verified any more. "
                               "Security has been told; make a new request if the caller really is who they say.",
        VerifyRefusal.TARGET_NOT_IN_SLACK: f"The person has no Slack account the bot can match, so {name} cannot "
                                           f"reach them{rid}: use another method.",
        VerifyRefusal.NO_CODE_PENDING: f"No code is waiting to be entered{rid}: start a Slack code verification "
                                       "first (a code lasts 5 minutes).",
        VerifyRefusal.NO_TRIES_LEFT: f"This request{rid} has used its {MAX_CODE_TRIES} verification tries: wait for "
                                     "the one under way; if it fails, make a new request.",
        VerifyRefusal.REQUESTER_NOT_AN_AGENT: "You are no longer a helpdesk agent (not in the agents' user group), "
                                              f"so you cannot verify this caller{rid}: nothing was sent or recorded.",
    }[reason]


# --- slack-code --------------------------------------------------------------------------------------------------

def code_dm_text(req: ResetRequest, code: SecretStr) -> str:
    """The one message holding a code: the DM to the target. It says what it is for and what not to do with it."""
    minutes = int(CODE_TTL.total_seconds() // 60)
    return (f"<@{req.requester}> from the helpdesk is verifying a caller who says they are you ({req.id}).\n"
            f"If you are on the phone with the helpdesk, read them this code: *{code.get_secret_value()}* "
            f"(valid {minutes} minutes).\n"
            "If you are not on the phone with the helpdesk, do not share it with anyone, and tell security.")


def code_sent_thread(agent: str, target: str | None) -> str:
    who = f"<@{target}>" if target else "the person"
    return (f"<@{agent}> started verification by Slack code: a code was sent to {who} by DM. Ask the caller to read "
            "it to you, then press *Enter code*.")


def code_sent_blocks(agent: str, target: str | None, request_id: str) -> Blocks:
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": code_sent_thread(agent, target)}},
        {"type": "actions", "block_id": Block.CODE_ACTIONS, "elements": [
            button("Enter code", Action.ENTER_CODE, request_id, style="primary")]},
    ]


def code_modal(request_id: str, channel: str, *, tries_left: int) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": Callback.VERIFY_CODE,
        "private_metadata": f"{request_id}|{channel}",
        "title": {"type": "plain_text", "text": "Verify the caller"},
        "submit": {"type": "plain_text", "text": "Check code"},
        "close": {"type": "plain_text", "text": "Back"},
        "blocks": [{
            "type": "input", "block_id": Block.VERIFY_CODE,
            "label": {"type": "plain_text", "text": f"The code the caller reads to you ({request_id})"},
            "hint": {"type": "plain_text", "text": f"{CODE_LENGTH} characters; {tries_left} tries left."},
            "element": {"type": "plain_text_input", "action_id": Block.VERIFY_CODE_INPUT, "min_length": 1,
                        "max_length": 32},
        }],
    }


def parse_modal_metadata(metadata: str) -> tuple[str, str]:
    request_id, _, channel = metadata.partition("|")
    return request_id, channel


def code_wrong(tries_left: int) -> str:
    return (f"That code is not the one sent. {tries_left} {'try' if tries_left == 1 else 'tries'} left; after that "
            "the verification fails and security is told.")


def code_expired() -> str:
    return "That code has expired (codes last 5 minutes). Start a new Slack code verification for a new code."


def tries_phrase(tried: Mapping[str, int]) -> str:
    """A request's spent tries by method (``{"duo-push": 1, "slack-code": 2}``), as a person says them: "1 Duo push
    nobody approved and 2 wrong Slack codes". Tries count across methods, so an alert must name each one."""
    pushes, codes = tried.get(VerifyMethod.DUO_PUSH, 0), tried.get(VerifyMethod.SLACK_CODE, 0)
    parts = [f"{pushes} Duo push{'' if pushes == 1 else 'es'} nobody approved"] if pushes else []
    parts += [f"{codes} wrong Slack code{'' if codes == 1 else 's'}"] if codes else []
    return " and ".join(parts) or "no recorded tries"


def code_failed_thread(agent: str, tried: Mapping[str, int]) -> str:
    return (f":rotating_light: The caller failed verification {MAX_CODE_TRIES} times ({tries_phrase(tried)}; the "
            f"last code entered by <@{agent}>): verification failed, the password will not be reset on this request, "
            "and security has been told.")


def code_failed_agent(tried: Mapping[str, int]) -> str:
    return (f"The caller failed verification {MAX_CODE_TRIES} times ({tries_phrase(tried)}): they could not prove "
            "they are the person. The request cannot be verified any more and security has been told.")


def security_code_failed(req: ResetRequest, tried: Mapping[str, int]) -> str:
    return (f":rotating_light: A caller failed verification {MAX_CODE_TRIES} times ({tries_phrase(tried)}) for "
            f"{esc(req.target_display)} (`{esc(req.target_upn)}`), request {req.id} by <@{req.requester}>. "
            "Someone may be impersonating them to the helpdesk.")


def code_expired_thread() -> str:
    return ":x: The verification code expired before it was entered: the caller is not verified."


# --- duo-push ----------------------------------------------------------------------------------------------------

def duo_pushinfo(req: ResetRequest) -> str:
    """What the person's phone shows with the push (URL-encoded key/value pairs, as Duo takes them)."""
    return f"Request={req.id}&Action=Helpdesk+password+reset"


def duo_sent_thread(agent: str, name: str) -> str:
    return (f"<@{agent}> sent a Duo push to {esc(name)}'s enrolled phone. Ask the caller to approve it; the "
            "result appears here.")


def duo_not_enrolled(name: str) -> str:
    return (f"{esc(name)} has no Duo phone that takes pushes, so a Duo push cannot verify the caller: use another "
            "method.")


def duo_unavailable(why: str) -> str:
    return f"The Duo push could not be sent: {esc(why)} Try again, or use another method."


def duo_outcome_thread(outcome: str, name: str) -> str:
    return {
        "allow": f":white_check_mark: {esc(name)} approved the Duo push: the caller is verified.",
        "deny": f":x: The Duo push was denied on {esc(name)}'s phone: the caller is not verified.",
        "timeout": f":x: Nobody answered the Duo push on {esc(name)}'s phone in time: the caller is not verified.",
        "fraud": (f":rotating_light: {esc(name)} reported the Duo push as fraud: the request is cancelled and "
                  "security has been told."),
        "error": f":warning: Duo could not say how the push to {esc(name)}'s phone ended: the caller is not verified.",
        "bypass": (f":x: Duo let {esc(name)} through without asking their phone (Duo's bypass status): that proves "
                   "nothing about the caller, who is not verified. Use another method."),
    }[outcome]


def security_duo_exhausted(req: ResetRequest, tried: Mapping[str, int]) -> str:
    return (f":rotating_light: A caller failed verification {MAX_CODE_TRIES} times ({tries_phrase(tried)}) for "
            f"{esc(req.target_display)} (`{esc(req.target_upn)}`), the last by a Duo push nobody approved, request "
            f"{req.id} by <@{req.requester}>. Someone may be impersonating them to the helpdesk, or pushing their "
            "phone until they give in.")


def duo_fraud_thread(name: str, state: RequestState, *, tap: bool = False) -> str:
    """The thread's line when the target reports the caller's Duo push as fraud, by the state the report found."""
    head = f":rotating_light: {esc(name)} reported the Duo push as fraud"
    what = "Temporary Access Pass" if tap else "temporary password"
    if state in (RequestState.PENDING_APPROVAL, RequestState.APPROVED):
        return f"{head}: the request is cancelled and security has been told."
    if state == RequestState.RESETTING:
        return (f"{head} while the reset was under way. Entra cannot be stopped, so the {what} will be discarded "
                "unrevealed the moment it is made and the reset contained (sessions revoked"
                f"{', the pass deleted' if tap else ''}); security has been told.")
    if state == RequestState.SUCCEEDED:
        return (f"{head} after the reset was made: nobody may read the {what} any more, the reset is contained "
                "below, and security has been told.")
    return f"{head}. The request {_had(state)}, so nothing was changed; security has been told."


def _had(state: RequestState) -> str:
    """What had become of a request closed before a fraud report came, in words."""
    return {RequestState.FAILED: "had failed", RequestState.EXPIRED: "had expired",
            RequestState.REJECTED: "had been refused by the on-premises policy"}.get(state, f"had been {state.value}")


def security_duo_fraud(req: ResetRequest, state: RequestState, *, approved: bool = False,
                       link: str | None = None, contained: bool = True) -> str:
    """Security's alert for a Duo push reported as fraud: which request (its thread's ``link`` when Slack gave one),
    the state it was in, and whether anything was changed, so that a reset already made is contained (``contained``:
    the bot contains it and its alert follows; otherwise a person must)."""
    where = f" (<{link}|its thread>)" if link else ""
    head = (f":rotating_light: {esc(req.target_display)} (`{esc(req.target_upn)}`) reported a helpdesk Duo push as "
            f"fraud: request {req.id}{where} by <@{req.requester}>. Someone may be impersonating them.")
    what = "Temporary Access Pass" if req.tap else "password"
    if state in (RequestState.PENDING_APPROVAL, RequestState.APPROVED):
        stage = ("approved, its reset about to start" if state == RequestState.APPROVED
                 else "approved, waiting for its caller to be verified" if approved
                 else "waiting for approval")
        return f"{head} It was {stage}: it was cancelled and nothing was changed."
    if state == RequestState.RESETTING:
        making = "a Temporary Access Pass was being issued" if req.tap else "their password was being reset"
        return (f"{head} {making[0].upper()}{making[1:]} when they reported it: Entra cannot stop that, so the new "
                f"{what} is withheld from everyone and the reset is contained once made (the containment alert "
                "follows).")
    if state == RequestState.SUCCEEDED:
        changed = "A Temporary Access Pass WAS issued" if req.tap else "Their password WAS reset"
        if not contained:
            undo = "delete the pass" if req.tap else "reset the password again"
            return (f"{head} {changed} before they reported it, and the bot cannot contain it (the person is not in "
                    f"Slack): revoke their sessions and {undo} in the Entra admin center.")
        return (f"{head} {changed} before they reported it: it is withheld from anyone who had not read it yet and "
                "contained (the containment alert follows"
                f"{'' if req.tap else ', with Scramble password'}).")
    return f"{head} It {_had(state)}, so nothing was changed."


# --- slack-confirm -----------------------------------------------------------------------------------------------

def confirm_sent_thread(agent: str, target: str | None) -> str:
    who = f"<@{target}>" if target else "the person"
    return f"<@{agent}> asked {who} by DM to confirm they asked for this reset; their Yes verifies the caller."


# --- callback ----------------------------------------------------------------------------------------------------

def callback_modal(req: ResetRequest, channel: str, phones: Sequence[str]) -> dict[str, Any]:
    numbers = "\n".join(f"• {esc(p)}" for p in phones)
    return {
        "type": "modal",
        "callback_id": Callback.VERIFY_CALLBACK,
        "private_metadata": f"{req.id}|{channel}",
        "title": {"type": "plain_text", "text": "Call back"},
        "submit": {"type": "plain_text", "text": "I called back"},
        "close": {"type": "plain_text", "text": "Back"},
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": (
                f"Call {esc(req.target_display)} back on a number the directory holds, never one the caller "
                f"gives:\n{numbers}")}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": (
                "A call-back is the weakest method: a number on file may be out of date, or forwarded. The "
                "approver sees that the caller was verified this way.")}]},
            {"type": "input", "block_id": Block.VERIFY_CALLBACK, "label": {"type": "plain_text", "text": "Attest"},
             "element": {"type": "checkboxes", "action_id": Block.VERIFY_CALLBACK_INPUT, "options": [{
                 "text": {"type": "plain_text", "text": "I called back the number on file and spoke to the person"},
                 "value": "attested"}]}},
        ],
    }


def callback_no_numbers(name: str) -> str:
    return (f"The directory holds no phone number for {esc(name)}, so a call-back cannot verify the caller: use "
            "another method.")


def callback_must_attest() -> str:
    return "Tick the box only once you have called back a number on file and spoken to the person."


# --- outcomes ----------------------------------------------------------------------------------------------------

def verified_thread(method: str, agent: str | None, at: datetime) -> str:
    by = f" (run by <@{agent}>)" if agent else ""
    return (f":white_check_mark: Caller verified by {method_name(method)}{by} at {slack_date(at)} "
            f"({STRENGTH[VerifyMethod(method)]}).")


def verified_agent(method: str, *, approvals_taken_back: bool = False) -> str:
    again = (" The approval given before it no longer counts: the approvers are asked to approve again."
             if approvals_taken_back else "")
    return f"The caller is verified by {method_name(method)}." + again


def waiting_for_verification(*, callback_possible: bool = False) -> str:
    """Said when an approval comes before the verification; the approver learns at once that a call-back (which
    ``bot.domain.verification.earlier_approvals_void`` does not let this approval count after) would ask again."""
    then = (" If the agent verifies by call-back (their word only), the approval must be given again."
            if callback_possible else "")
    return "Approved, and now waiting for the caller to be verified before the password is reset." + then


def started_agent(method: str) -> str:
    return f"Verification by {method_name(method)} started; its result appears in the thread."


def not_verified_before_reset(name: str) -> str:
    return (f"The password of {esc(name)} was not reset: the caller was not verified. Verify the caller, then ask "
            "again.")


def code_not_sent() -> str:
    return "The code could not be sent to the person's Slack DM, so the caller is not verified. Try again."


def code_unreadable() -> str:
    return ("This code can no longer be checked (the bot restarted since it was sent). Start a new Slack code "
            "verification for a new code.")


def callback_needs_button() -> str:
    return ("A call-back is attested in a form: press *Verify caller: call-back* on the request once you have called "
            "the number on file.")


def attempt_lapsed(method: str) -> str:
    if method == VerifyMethod.SLACK_CODE:
        return code_expired_thread()
    return f":x: The {method_name(method)} got no answer in time: the caller is not verified."

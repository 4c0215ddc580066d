"""Verifying the caller: the methods, their strength, the one-time code's rules and who may use which method.

The helpdesk's caller says they are the target; a method proves it by something only the target holds (their
Slack session, their Duo phone) or, weakest, by the agent calling back a number the directory holds. Pure
functions: the services gather facts and act.

The order of approval and verification: a request is reset once it is approved *and* its caller verified, in
either order, with one exception. An approver who approves while the request says "not verified yet" trusts that a
real verification will follow. A method the caller completes (a one-time code read back, the target's Yes, a Duo
push approved on their phone) is one, and the earlier approval counts once it succeeds. A call-back is not: it is
the agent's own word that they called a number on file, exactly what an impostor on the phone (or an agent in on
it) relies on (CISA AA23-320A). So after a call-back the approvals given before it do not count
(``earlier_approvals_void``): the approvers are asked again, now seeing the call-back, and the next approval by an
allowed approver (the earlier one included) counts as usual. An approval given after the call-back, on a request
message that shows it, counts. The request keeps its deadline and escalation time: a call-back does not buy an
impostor more time.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from datetime import timedelta
from enum import StrEnum

from bot.settings import VerifyMethod


class VerifyState(StrEnum):
    """Where a request's caller verification stands (stored as its value)."""

    #: Nobody has started one.
    NONE = "none"
    PENDING = "pending"
    VERIFIED = "verified"
    #: The last attempt failed (a Duo deny or timeout, an expired code): the agent may start another.
    FAILED = "failed"
    #: Failed so that no further attempt is allowed on this request (three wrong codes): make a new request.
    BLOCKED = "blocked"


class VerifyRefusal(StrEnum):
    """Why a verification could not be started or a code not taken; ``bot.messages.verification`` words each."""

    METHOD_NOT_ALLOWED = "method_not_allowed"
    CALLBACK_NOT_FOR_PROTECTED = "callback_not_for_protected"
    ONLY_REQUESTER_VERIFIES = "only_requester_verifies"
    NOT_PENDING = "not_pending"
    ALREADY_VERIFIED = "already_verified"
    BLOCKED = "blocked"
    TARGET_NOT_IN_SLACK = "target_not_in_slack"
    NO_CODE_PENDING = "no_code_pending"
    #: The request's tries are used up while its last attempt (a Duo push) is still under way.
    NO_TRIES_LEFT = "no_tries_left"
    #: The requester has left the agents' user group since asking: they may no longer drive its verification, as
    #: they may no longer get it approved.
    REQUESTER_NOT_AN_AGENT = "requester_not_an_agent"


#: Strongest first: what the approver is told about the method that verified a caller.
STRENGTH: dict[VerifyMethod, str] = {
    VerifyMethod.DUO_PUSH: "strong: the target's enrolled Duo phone approved a push",
    VerifyMethod.SLACK_CODE: "strong: the caller read back a code sent to the target's Slack",
    VerifyMethod.SLACK_CONFIRM: "medium: the target said Yes in Slack, but the caller may not be the target",
    VerifyMethod.CALLBACK: "weakest: the agent called back a number the directory holds",
}

#: The methods the caller completes, not the agent: an approval given before one of them succeeded counts.
CALLER_COMPLETED: frozenset[VerifyMethod] = frozenset({VerifyMethod.DUO_PUSH, VerifyMethod.SLACK_CODE,
                                                       VerifyMethod.SLACK_CONFIRM})


class ApprovalVoid(StrEnum):
    """Why approvals given before the caller was verified do not count (an audit row's ``reason``)."""

    #: The caller was verified by a call-back, the agent's own word, after the approval: the approver did not see
    #: that this was all the proof there would be.
    VERIFIED_BY_CALLBACK_AFTER = "verified_by_callback_after"
    #: By a method not (yet) judged to be one the caller completes: counted as weak until it is.
    VERIFIED_BY_UNJUDGED_METHOD_AFTER = "verified_by_unjudged_method_after"


#: Digits and upper-case letters without the look-alikes 0/O, 1/I/L, 5/S, 2/Z, 8/B and U/V: read over the phone
#: and typed by someone else, a code must survive both.
CODE_ALPHABET = "34679ACDEFGHJKMNPQRTWXY"
CODE_LENGTH = 6
CODE_TTL = timedelta(minutes=5)
#: A request's verification tries, whatever the method: each wrong code and each Duo push sent (so a phone cannot
#: be pushed until its owner gives in). The last failing blocks the request's verification.
MAX_CODE_TRIES = 3
#: How long the bot waits for a Duo push to be answered before it counts as timed out (Duo's own is 60 s).
DUO_PUSH_WAIT = timedelta(seconds=90)


def new_code() -> str:
    """A fresh one-time code from ``secrets`` (23**6, about 1.5e8 codes; three tries per code)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(typed: str) -> str:
    """What the agent typed as the code's characters: case, spaces and dashes ignored."""
    return "".join(c for c in typed.upper() if not c.isspace() and c != "-")


def code_matches(expected: str, typed: str) -> bool:
    """Constant-time: how far a wrong code matched must not show in how long the answer took."""
    return hmac.compare_digest(normalize_code(expected).encode(), normalize_code(typed).encode())


def method_refusal(method: VerifyMethod, *, allowed: Sequence[VerifyMethod], protected: bool,
                   target_in_slack: bool) -> VerifyRefusal | None:
    """None when ``method`` may verify this request's caller. A protected account (allowed by a rule) needs more
    than a call-back; the Slack methods need the target in Slack."""
    if method not in allowed:
        return VerifyRefusal.METHOD_NOT_ALLOWED
    if protected and method == VerifyMethod.CALLBACK:
        return VerifyRefusal.CALLBACK_NOT_FOR_PROTECTED
    if not target_in_slack and method in (VerifyMethod.SLACK_CODE, VerifyMethod.SLACK_CONFIRM):
        return VerifyRefusal.TARGET_NOT_IN_SLACK
    return None


def start_refusal(state: VerifyState, tries: int = 0) -> VerifyRefusal | None:
    """Whether a new attempt may start, given where verification stands and the tries the request has used."""
    if state == VerifyState.VERIFIED:
        return VerifyRefusal.ALREADY_VERIFIED
    if state == VerifyState.BLOCKED:
        return VerifyRefusal.BLOCKED
    if tries >= MAX_CODE_TRIES:
        return VerifyRefusal.NO_TRIES_LEFT
    return None


def usable_methods(allowed: Sequence[VerifyMethod], *, protected: bool, target_in_slack: bool) -> list[VerifyMethod]:
    """The allowed methods this request may use, in the configured order (the buttons the agent sees)."""
    return [m for m in allowed
            if method_refusal(m, allowed=allowed, protected=protected, target_in_slack=target_in_slack) is None]


def earlier_approvals_void(method: VerifyMethod) -> ApprovalVoid | None:
    """None when the approvals given before the caller was verified by ``method`` count; otherwise why they do not.

    Only a method the caller completes (``CALLER_COMPLETED``) lets them count; any other (the call-back, or a method
    added later and not yet judged) makes the approvers decide again, seeing how the caller was verified.
    """
    if method in CALLER_COMPLETED:
        return None
    if method == VerifyMethod.CALLBACK:
        return ApprovalVoid.VERIFIED_BY_CALLBACK_AFTER
    return ApprovalVoid.VERIFIED_BY_UNJUDGED_METHOD_AFTER

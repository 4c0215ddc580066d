"""The reset request's state machine, as data and pure functions.

The table below is the single definition of which moves are legal. ``bot.store.requests.transition`` refuses to write a
move that is not in it (a programming error), and the services ask ``can_transition`` before they try one, so
the database can never hold a history the product does not allow. Nothing here touches I/O, which is what lets
the tests walk the whole table and throw random sequences at it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType


class RequestState(StrEnum):
    """Where a reset request stands. The values are what the database stores: never rename one."""

    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    RESETTING = "resetting"
    SUCCEEDED = "succeeded"
    REJECTED = "rejected"
    FAILED = "failed"
    DENIED = "denied"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


_S = RequestState

#: Every legal move. A state absent from the values' union of keys-with-moves is terminal.
#: - pending_approval: approved (enough distinct approvers), denied, cancelled (requester, or the target's "No"),
#:   expired (TTL reached without a decision);
#: - approved: resetting (the reset starts), denied or cancelled (an approver's Deny or the requester's Cancel while
#:   the check before the reset runs, or after a replica died there; only before the reset starts: once the Graph
#:   call may have been made, that would be a lie, and a later Deny or Cancel withdraws the result instead);
#: - resetting: succeeded, rejected (on-prem policy said no), failed (anything else).
TRANSITIONS: Mapping[RequestState, frozenset[RequestState]] = MappingProxyType(
    {
        _S.PENDING_APPROVAL: frozenset({_S.APPROVED, _S.DENIED, _S.CANCELLED, _S.EXPIRED}),
        _S.APPROVED: frozenset({_S.RESETTING, _S.DENIED, _S.CANCELLED}),
        _S.RESETTING: frozenset({_S.SUCCEEDED, _S.REJECTED, _S.FAILED}),
        _S.SUCCEEDED: frozenset(),
        _S.REJECTED: frozenset(),
        _S.FAILED: frozenset(),
        _S.DENIED: frozenset(),
        _S.CANCELLED: frozenset(),
        _S.EXPIRED: frozenset(),
    }
)

#: States a request never leaves; a request in one of them is "closed".
TERMINAL_STATES: frozenset[RequestState] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)

#: States that still wait for something to happen (a decision or the reset's outcome).
OPEN_STATES: frozenset[RequestState] = frozenset(RequestState) - TERMINAL_STATES

#: Time a request waits for approval before it expires (spec section 3).
DEFAULT_TTL = timedelta(minutes=30)


def is_terminal(state: RequestState) -> bool:
    """True when ``state`` has no way out: the request's outcome is final."""
    return not TRANSITIONS[state]


def can_transition(current: RequestState, to: RequestState) -> bool:
    """True when moving from ``current`` to ``to`` is a legal step (a state never "moves" to itself)."""
    return to in TRANSITIONS[current]


def predecessors(to: RequestState) -> frozenset[RequestState]:
    """Every state from which ``to`` may be reached in one step.

    This is the ``expected`` set for a compare-and-set whose source may vary, e.g. a cancel may come from
    ``pending_approval`` or ``approved``: ``transition(expected=predecessors(CANCELLED), to=CANCELLED)``.
    """
    return frozenset(s for s, nxt in TRANSITIONS.items() if to in nxt)


def required_approvals(*, protected: bool, target_in_slack: bool = True) -> int:
    """Distinct approvers needed: two for a protected target (spec section 1, never configurable away) and for a
    target with no Slack account the bot could match (nobody can ask them, tell them, or keep them from approving
    under a Slack account the bot does not know is theirs), else one."""
    return 2 if protected or not target_in_slack else 1


@dataclass(frozen=True, slots=True)
class Deadlines:
    """When a pending request is escalated (mentions the approver group) and when it expires."""

    escalate_at: datetime
    expires_at: datetime


def deadlines(created_at: datetime, ttl: timedelta = DEFAULT_TTL) -> Deadlines:
    """Escalate at half the TTL, expire at the TTL (spec section 3).

    Both instants are computed once, when the request is created, and stored: the scheduler then only compares
    them with "now", which any database can index, instead of doing date arithmetic in SQL.
    """
    if ttl <= timedelta(0):
        raise ValueError(f"a request's time to live must be positive, not {ttl}")
    if created_at.tzinfo is None:
        raise ValueError("created_at must be timezone-aware (UTC)")
    return Deadlines(escalate_at=created_at + ttl / 2, expires_at=created_at + ttl)

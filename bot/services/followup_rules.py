"""The rules of the follow-ups after a reset (spec section 5), as pure functions of what AD shows.

Two questions, both answered from ``pwdLastSet`` read over LDAP (the only proof that is AD's own):

- *Did the reset land on-prem?* Writeback sets the password and then ``pwdLastSet=0`` (must change at next
  logon). So the reset landed when ``pwdLastSet`` moved away from what it was just before the reset *and* is
  either 0 (must change, as intended) or an instant after the reset (the must-change flag did not apply:
  AD's "password never expires" flag keeps it from taking effect, which deserves its own warning).
  A value equal to the one read before the reset means AD has not heard of it (yet).
  Known blind spot: when ``pwdLastSet`` was already 0 before the reset (an earlier temporary password never
  replaced) and is 0 again, the two cannot be told apart; the spec accepts 0 as the proof.
- *Did the user replace the temporary password?* A user's own change sets ``pwdLastSet`` to the instant of
  the change: non-zero, after the reset, and different from the value the reset itself left (0, or the
  reset's own instant where must-change did not apply).

The DC's clock and the bot's are different clocks: an instant "after the reset" is compared with the reset's
time minus ``CLOCK_SKEW``, which is safe because "moved away from the baseline" is required as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.policy import filetime_to_datetime

#: How far the DC's clock may lag the bot's without a landed reset looking older than the reset. Kerberos
#: refuses more than 5 minutes of skew, so a working domain is within it.
CLOCK_SKEW = timedelta(minutes=5)
#: More doublings of the first delay than any deadline needs (2**62 first delays is far past any of them).
_MAX_DOUBLINGS = 62


class FollowUpKind(StrEnum):
    LANDED = "landed"
    REPLACED = "replaced"


class FollowUpState(StrEnum):
    """``pending`` → ``running`` (claimed by one replica, with a lease) → ``done`` | ``skipped``.

    ``running`` with an expired lease is claimable again: a replica killed mid-check does not lose the check.
    """

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    SKIPPED = "skipped"


class Landed(StrEnum):
    YES = "landed"
    #: Landed, but AD's "password never expires" flag kept must-change from applying on-prem.
    YES_WITHOUT_MUST_CHANGE = "landed_without_must_change"
    NOT_YET = "not_yet"
    ACCOUNT_GONE = "account_gone"


class Replaced(StrEnum):
    YES = "replaced"
    NOT_YET = "not_yet"
    ACCOUNT_GONE = "account_gone"


@dataclass(frozen=True, slots=True)
class Seen:
    """What AD showed for the account: ``pwdLastSet`` (raw FILETIME) and the never-expires flag; None if gone."""

    pwd_last_set: int
    never_expires: bool


def landed(seen: Seen | None, *, baseline: int | None, reset_at: datetime) -> Landed:
    if seen is None:
        return Landed.ACCOUNT_GONE
    if baseline is not None and seen.pwd_last_set == baseline and seen.pwd_last_set != 0:
        return Landed.NOT_YET
    if seen.pwd_last_set == 0:
        return Landed.YES
    at = filetime_to_datetime(seen.pwd_last_set)
    if at is None or at < reset_at - CLOCK_SKEW:
        return Landed.NOT_YET
    return Landed.YES_WITHOUT_MUST_CHANGE if seen.never_expires else Landed.YES


def replaced(seen: Seen | None, *, reset_at: datetime, left_by_reset: int | None) -> Replaced:
    """``left_by_reset``: the ``pwdLastSet`` the landed check saw (0 or the reset's instant), when it saw one."""
    if seen is None:
        return Replaced.ACCOUNT_GONE
    if seen.pwd_last_set in (0, left_by_reset):
        return Replaced.NOT_YET
    at = filetime_to_datetime(seen.pwd_last_set)
    if at is None or at < reset_at - CLOCK_SKEW:
        return Replaced.NOT_YET
    if left_by_reset is None and seen.never_expires:
        # Must-change never applied and the landing was never seen: this instant may be the reset's own.
        at_reset = abs((at - reset_at).total_seconds()) <= CLOCK_SKEW.total_seconds()
        return Replaced.NOT_YET if at_reset else Replaced.YES
    return Replaced.YES


def landed_retry_at(*, attempt: int, first_delay: timedelta, now: datetime, deadline: datetime) -> datetime | None:
    """When to look again after ``attempt`` (1-based) found nothing: the delay doubles each time, the last look
    is at the deadline itself, and None means the deadline has been reached (time to warn).

    ``attempt`` is not bounded (a check retried for days, a hand-edited row), and ``timedelta`` overflows near
    2.7 million years: the doublings are capped, and a delay that would pass the deadline is compared as a
    whole number of first delays before it is ever multiplied out, so no attempt count raises."""
    if now >= deadline:
        return None
    step = max(first_delay, timedelta(0))
    doublings = min(max(attempt - 1, 0), _MAX_DOUBLINGS)
    if step and (deadline - now) // step < (1 << doublings):
        return deadline
    return min(now + step * (1 << doublings), deadline)


def replaced_schedule(reset_at: datetime, offsets: Sequence[timedelta]) -> list[datetime]:
    """The instants of the "replaced yet?" checks; the last one is the final word."""
    return [reset_at + offset for offset in sorted(set(offsets))]

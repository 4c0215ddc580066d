"""The rules of the follow-ups after a reset (spec section 5), as pure functions of what AD shows.

Two questions, answered from what the bot's own LDAP account reads (the only proofs that are AD's own):

- *Did the reset land on-prem?* The proof is ``msDS-KeyVersionNumber``: AD's count of writes to the account's
  password, constructed from the version of ``unicodePwd`` in the object's replication metadata (MS-ADTS; Samba
  4.17 builds it the same way, and lets an ordinary authenticated account read it, as it does the raw
  ``replPropertyMetaData``; Samba answers ``msDS-ReplAttributeMetaData`` with nothing). Each password set or
  change adds exactly one; writing ``pwdLastSet`` does not. Read just before the reset and again after it, "it
  moved" is the proof that a password was written after the baseline, whatever ``pwdLastSet`` shows, and "it
  moved by more than one" means the reset was followed by another change (the user's own).
  ``pwdLastSet`` then says how it landed: 0 is *must change at next logon*, as writeback sets it; a new instant
  means must-change did not apply (AD's "password never expires" flag keeps it from taking effect, which has its
  own warning; on any other account something else kept it off or cleared it, which is warned about too).
- Where the version cannot be read (the bot's account may not, or the check has no baseline: a row an older
  release wrote; a recovered reset has the baseline stored with its Graph operation), ``pwdLastSet`` alone
  decides, with one blind spot said honestly: when it was already 0 before the reset (an earlier temporary
  password never replaced) and is 0 again, or 0 with no baseline, AD cannot tell this reset from the earlier
  one. That is ``UNPROVEN``, never "landed". And a new non-zero instant on an account without "password never
  expires" may then be the reset without must-change *or* the user's own change already; the thread is told both.
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
    #: Landed with a ``pwdLastSet`` instant instead of 0 on an account without that flag: must-change did not
    #: apply (or, where the key version is unknown, the user may already have changed it).
    YES_MUST_CHANGE_MISSING = "landed_must_change_missing"
    NOT_YET = "not_yet"
    #: AD shows what it would show had the reset landed, but also what it showed before it: no proof either way.
    UNPROVEN = "unproven"
    ACCOUNT_GONE = "account_gone"


class Replaced(StrEnum):
    YES = "replaced"
    NOT_YET = "not_yet"
    ACCOUNT_GONE = "account_gone"


@dataclass(frozen=True, slots=True)
class Seen:
    """What AD showed for the account (None if gone): ``pwdLastSet`` (raw FILETIME), the never-expires flag, and
    ``msDS-KeyVersionNumber`` (None when the bot's account may not read it)."""

    pwd_last_set: int
    never_expires: bool
    key_version: int | None = None


def password_writes(seen: Seen, baseline_version: int | None) -> int | None:
    """How many times the password was written since the baseline, by AD's own count; None when not known."""
    if seen.key_version is None or baseline_version is None:
        return None
    return max(seen.key_version - baseline_version, 0)


def landed(seen: Seen | None, *, baseline: int | None, reset_at: datetime,
           baseline_version: int | None = None) -> Landed:
    """``baseline`` and ``baseline_version``: ``pwdLastSet`` and ``msDS-KeyVersionNumber`` read just before the
    reset (None when not read)."""
    if seen is None:
        return Landed.ACCOUNT_GONE
    writes = password_writes(seen, baseline_version)
    if writes == 0:
        return Landed.NOT_YET  # AD's own count did not move: nothing was written, whatever pwdLastSet says
    if writes is None:
        if baseline is not None and seen.pwd_last_set == baseline and seen.pwd_last_set != 0:
            return Landed.NOT_YET
        if seen.pwd_last_set == 0:
            return Landed.UNPROVEN if baseline in (0, None) else Landed.YES
    elif seen.pwd_last_set == 0:
        return Landed.YES
    at = filetime_to_datetime(seen.pwd_last_set)
    if at is None or at < reset_at - CLOCK_SKEW:
        return Landed.NOT_YET
    if writes is not None and writes > 1:
        return Landed.YES  # the reset, then another change on top of it: this instant is that change's
    return Landed.YES_WITHOUT_MUST_CHANGE if seen.never_expires else Landed.YES_MUST_CHANGE_MISSING


def replaced(seen: Seen | None, *, reset_at: datetime, left_by_reset: int | None) -> Replaced:
    """``left_by_reset``: the ``pwdLastSet`` the landed check saw (0 or the reset's instant), when it saw one."""
    if seen is None:
        return Replaced.ACCOUNT_GONE
    if seen.pwd_last_set in (0, left_by_reset):
        return Replaced.NOT_YET
    at = filetime_to_datetime(seen.pwd_last_set)
    if at is None or at < reset_at - CLOCK_SKEW:
        return Replaced.NOT_YET
    if left_by_reset is None:
        # The landing was never seen and must-change may not have applied: this instant may be the reset's own.
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

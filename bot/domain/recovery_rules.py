"""What a reset cut off before Graph's operation was stored left in AD (the only witness recovery has then), and
which Temporary Access Pass a ``--tap`` reset cut off the same way may have left in Entra.

The bot records the account's ``pwdLastSet`` and ``msDS-KeyVersionNumber`` in the transaction that makes the request
``resetting``, before Graph is asked anything. A bot killed after that commit and before it stored Graph's operation
leaves recovery two possibilities: Graph never heard of the reset (AD untouched: make it again), or it did and
writeback carried it (AD written: the password changed and nobody holds it). AD's own write counter tells them
apart; ``pwdLastSet`` alone cannot when it was 0 before and after (must-change set both times).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from bot.domain.followup_rules import Seen, password_writes


class SinceBaseline(StrEnum):
    """What AD shows of the account's password since the baseline. Values are stable (audit)."""

    #: No write: the reset never reached AD, and may be made again.
    UNTOUCHED = "untouched"
    #: Written since: the reset (or someone else) changed it; the new password died with the process.
    WRITTEN = "written"
    #: AD cannot tell (no key version, and ``pwdLastSet`` 0 before and after, or no baseline at all).
    UNPROVEN = "unproven"
    ACCOUNT_GONE = "account_gone"
    #: AD stayed out of reach until recovery gave up: nothing was seen.
    UNREADABLE = "unreadable"


def since_baseline(seen: Seen | None, *, baseline: int | None, baseline_version: int | None) -> SinceBaseline:
    """``baseline`` and ``baseline_version``: ``pwdLastSet`` and ``msDS-KeyVersionNumber`` recorded when the reset
    began (None when not read)."""
    if seen is None:
        return SinceBaseline.ACCOUNT_GONE
    writes = password_writes(seen, baseline_version)
    if writes is not None:
        return SinceBaseline.WRITTEN if writes else SinceBaseline.UNTOUCHED
    if baseline is None:
        return SinceBaseline.UNPROVEN
    if seen.pwd_last_set != baseline:
        return SinceBaseline.WRITTEN
    # A reset writes pwdLastSet (0 for must-change, else now): the same non-zero instant means no write.
    return SinceBaseline.UNPROVEN if baseline == 0 else SinceBaseline.UNTOUCHED


#: How far Graph's clock may differ from the bot's when recovery compares a Temporary Access Pass's
#: ``createdDateTime`` (Graph's clock) with when the reset began (the bot's): five minutes, the skew Kerberos and
#: Entra's token validation tolerate, which a host kept by NTP never nears.
TAP_CLOCK_SKEW = timedelta(minutes=5)


def tap_may_be_ours(created: datetime | None, *, began: datetime, skew: timedelta = TAP_CLOCK_SKEW) -> bool:
    """Whether a pass the user holds may be the one a reset cut off after its POST made: one Graph made at or after
    ``began`` less ``skew``, or one whose creation time Graph left out.

    The rule leans to deleting. A user holds at most one pass, and a new POST deletes the old one, so the only pass
    that can be ours is one made since the reset began; a pass made earlier than that (by more than any clock skew)
    proves ours was never made, since it would have replaced it. Graph does not say who made a pass, so one made
    meanwhile by someone else (an administrator in the Entra admin center) cannot be told from ours: it is deleted
    too, and the thread says a pass was deleted. That error costs its maker a new pass; the other one (keeping a
    live pass nobody received, which satisfies MFA until it expires) is a credential in no one's sight. While this
    request is ``resetting`` the bot opens no other request for the same person (one open request per target), so
    the bot's own newer pass is never the one deleted."""
    return created is None or created >= began - skew

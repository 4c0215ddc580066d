"""Performing an approved reset: approved → resetting → succeeded | rejected | failed (spec section 4).

The password is generated for the target's effective policy, set in Entra ID with Graph ``resetPassword``
(the agent's own delegated token, so Entra's role rules apply), and writeback carries it to AD, whose answer
comes back in the operation. The verdict goes to the thread in plain words. The password itself only ever
exists in this process's memory, in the sealed (encrypted) row until its one reveal, and in the reveal
modal: never in a message, a log line, the audit trail, an outbox row or an exception.

What the reset says (the "resetting" line, the verdict or TAP line, the Reveal button, the target's DM with its
"This wasn't me" button, "revealed", the security alert, "wiped") is written to the outbox in the transaction that
decides it and delivered right after the commit (``bot.services.outbox``): a Slack failure at the verdict delays
those messages, in order, until Slack is back; it no longer loses them (the thread never hearing the verdict, the
requester never getting the Reveal button while the password sat sealed). Only the redraw of the request message
(chat.update) stays direct: it is idempotent, so a failed one is logged and the next redraw fixes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.services.reset_containment import ResetContainment
from bot.services.reset_perform import (
    LEASE,
    LEASE_HEARTBEAT,
    RECOVERY_GIVE_UP,
    REVEAL_TTL,
    TAP_LIFETIME_MINUTES,
    FollowUpPlanner,
    ResetDeps,
)
from bot.services.reset_recovery import RECOVERY_MARGIN, ResetRecovery
from bot.services.reset_reveal import REVEAL_CLAIM, Reveal

__all__ = [
    "LEASE",
    "LEASE_HEARTBEAT",
    "RECOVERY_GIVE_UP",
    "RECOVERY_MARGIN",
    "REVEAL_CLAIM",
    "REVEAL_TTL",
    "TAP_LIFETIME_MINUTES",
    "FollowUpPlanner",
    "ResetDeps",
    "ResetService",
    "Reveal",
]


@dataclass
class ResetService(ResetRecovery, ResetContainment):
    """The reset service: performing (``ResetPerforming``), recovering (``ResetRecovery``), the reveal and
    afterwards (``ResetReveal``), and containing a disowned reset (``ResetContainment``, which extends the reveal's
    "This wasn't me"), each in its module, over the fields of ``ResetDeps`` that they share."""

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

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from bot.clients.directory import Directory
from bot.clients.graph import Graph
from bot.clients.slack_notify import Notifier
from bot.db import SessionFactory
from bot.models import ResetRequest, utcnow
from bot.services.outbox import Outbox
from bot.services.reset_perform import (
    LEASE,
    LEASE_HEARTBEAT,
    RECOVERY_GIVE_UP,
    REVEAL_TTL,
    TAP_LIFETIME_MINUTES,
    FollowUpPlanner,
)
from bot.services.reset_recovery import RECOVERY_MARGIN, ResetRecovery
from bot.services.reset_reveal import REVEAL_CLAIM, ResetReveal, Reveal
from bot.services.sealing import Sealer

__all__ = [
    "LEASE",
    "LEASE_HEARTBEAT",
    "RECOVERY_GIVE_UP",
    "RECOVERY_MARGIN",
    "REVEAL_CLAIM",
    "REVEAL_TTL",
    "TAP_LIFETIME_MINUTES",
    "FollowUpPlanner",
    "ResetService",
    "Reveal",
]


@dataclass
class ResetService(ResetRecovery, ResetReveal):
    """The reset service: performing (``ResetPerforming``), recovering (``ResetRecovery``), and the reveal and
    afterwards (``ResetReveal``), each in its module; this class holds what they share, its fields."""

    begin: SessionFactory
    #: Only for the request message's redraw (chat.update) and its approver group's id: everything the reset posts
    #: goes through ``outbox``.
    notifier: Notifier
    #: Where the reset's messages are written with the decision they announce, and delivered from (retried).
    outbox: Outbox
    graph: Graph
    directory: Directory
    sealer: Sealer
    #: The delegated Graph access token of the agent (Slack id) whose hands perform the reset.
    token_for: Callable[[str], str]
    security_channel: str | None = None
    #: The agents' user group: a requester who has left it since asking is shown no password.
    agents_group: str | None = None
    followups: FollowUpPlanner | None = None
    #: The request rules' check made again right before the credential is set (``RequestService.recheck``): None
    #: to go on, or (reason, the thread's sentence) and nothing is set.
    recheck: Callable[[ResetRequest], tuple[str, str] | None] | None = None
    poll_timeout_s: float = 60.0
    clock: Callable[[], datetime] = field(default=utcnow)
    _in_flight: int = field(default=0, init=False, repr=False)
    _idle: threading.Condition = field(default_factory=threading.Condition, init=False, repr=False)

"""The outbox: Slack messages the bot owes, written in the transaction that decides them, delivered after it.

Why: a follow-up's final word, a "degraded" alert or a reset's verdict used to be posted once, after its commit; a
Slack 5xx, a rate limit or a network blip lost it for good, and the thread never heard (a reset's requester never
got the Reveal button). Now the service that decides (a reset's start and final transition, its reveal, "This wasn't
me" and the wipe of an unrevealed password; a follow-up's finish, a health transition, the day's summary claim)
writes an ``OutboxMessage`` row, with its Block Kit buttons if it has any, in the same transaction as the decision,
then kicks ``deliver`` with the new ids right after the commit, so the normal path is as immediate as before. The
scheduler runs ``deliver`` on every replica too (``bot.jobs``): it takes what the kick could not post, what a
process that died left behind, and retries.

Delivery: claim a row with a compare-and-set (``pending`` → ``sending`` with a lease, one row at a time so a slow
post never outlives the lease of the rows behind it), post it through the ``Notifier``, mark it ``sent`` on the
claim. A failed post is due again after a capped, doubling backoff (``bot.domain.outbox_rules``), until the
give-up horizon; then it is given up, audited (``message_given_up``) and logged. A conversation hears its messages
in the order they were decided: a message waits while an earlier one to the same place is undelivered.

The trade: delivery is at least once, not exactly once. chat.postMessage has no idempotency key, so nothing can
tell "Slack took it but the answer was lost" or "posted, then the process died before marking it sent" from "never
posted"; the row is posted again when its lease runs out. That window (a post's round trip plus one small commit)
is the only way a message is doubled; the alternative, marking before posting, would lose it instead, which for
"your temporary password was never replaced", "writeback is degraded" or a Reveal button is the worse failure. (A
doubled Reveal button is harmless: the sealed password is handed out once, whichever button is clicked.)
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlmodel import Session

from bot import store
from bot.clients.slack_notify import Blocks, Notifier
from bot.db import SessionFactory, Transactions
from bot.domain.audit import AuditAction, AuditDraft
from bot.domain.outbox_rules import OutboxRules, retry_at
from bot.errors import SlackUnavailableError
from bot.models import OutboxMessage, utcnow

log = logging.getLogger(__name__)

#: A scheduled run reads what is due again after a pass that posted something, at most this many times.
_MAX_PASSES = 10


class Kind(StrEnum):
    #: A reply in ``thread_ts`` of ``channel``.
    THREAD = "thread"
    #: A DM: ``channel`` is the person's Slack user id.
    DM = "dm"
    #: A top-level message in ``channel``.
    CHANNEL = "channel"


def _blocks_json(blocks: Blocks | None) -> str | None:
    return json.dumps(blocks, separators=(",", ":")) if blocks is not None else None


def thread_message(channel: str, thread_ts: str, text: str, *, origin: str, request_id: str | None = None,
                   blocks: Blocks | None = None) -> OutboxMessage:
    return OutboxMessage(kind=Kind.THREAD.value, channel=channel, thread_ts=thread_ts, text=text,
                         blocks=_blocks_json(blocks), origin=origin, request_id=request_id)


def dm_message(user: str, text: str, *, origin: str, request_id: str | None = None,
               blocks: Blocks | None = None) -> OutboxMessage:
    return OutboxMessage(kind=Kind.DM.value, channel=user, text=text, blocks=_blocks_json(blocks), origin=origin,
                         request_id=request_id)


def channel_message(channel: str, text: str, *, origin: str, request_id: str | None = None,
                    blocks: Blocks | None = None) -> OutboxMessage:
    return OutboxMessage(kind=Kind.CHANNEL.value, channel=channel, text=text, blocks=_blocks_json(blocks),
                         origin=origin, request_id=request_id)


def _error_code(e: Exception) -> str:
    """Slack's error code, or the exception's type: never its text (which could quote what was posted)."""
    return e.code if isinstance(e, SlackUnavailableError) else type(e).__name__


@dataclass
class Outbox(Transactions):
    begin: SessionFactory
    notifier: Notifier
    rules: OutboxRules = field(default_factory=OutboxRules)
    clock: Callable[[], datetime] = field(default=utcnow)
    #: Read-only transactions (``Transactions.reading``); None: ``begin``'s.
    reads: SessionFactory | None = None
    #: The UTC day this process last pruned delivered messages (once a day per replica: the DELETE is idempotent).
    _pruned_day: int | None = field(default=None, init=False, repr=False)

    def enqueue(self, session: Session, messages: Sequence[OutboxMessage], *, now: datetime) -> list[int]:
        """Queue ``messages`` in the caller's transaction (the one recording the decision they announce); their
        ids, to pass to ``deliver`` once that transaction has committed."""
        for m in messages:
            m.created_at = m.next_at = now
        return store.outbox.add_outbox(session, messages=messages)

    def deliver(self, ids: Collection[int] | None = None, *, now: datetime | None = None) -> int:
        """Post what is due: only ``ids`` (the kick right after a commit) or every ready message (the scheduled
        run). Returns how many this call posted. A message another replica holds, one not due yet, or one behind
        an undelivered earlier message to the same place is left for a later run."""
        now = now or self.clock()
        if ids is not None:
            # A message queued to the same conversation while this kick was posting found its own kick blocked
            # behind ours: it is ours to post now, not the scheduled run's a minute later. Our post is marked sent
            # before we look, so a message committed after the look is claimable by its own kick.
            sent, places = self._deliver_all(ids, now=now)
            for _ in range(_MAX_PASSES):
                if not places:
                    break
                with self.reading() as session:
                    due = store.outbox.due_outbox(session, now=now, places=places)
                posted, places = self._deliver_all(due, now=now) if due else (0, set())
                sent += posted
            return sent
        sent = 0
        for _ in range(_MAX_PASSES):
            # Another pass while the last one posted something: a message held back behind one just posted is
            # ready now, and a conversation's backlog goes out in one run, in order.
            with self.reading() as session:
                due = store.outbox.due_outbox(session, now=now)
            posted = self._deliver_all(due, now=now)[0] if due else 0
            sent += posted
            if not posted:
                break
        self._prune(now)
        return sent

    def _prune(self, now: datetime) -> None:
        day = now.date().toordinal()
        if day == self._pruned_day:
            return
        with self.begin() as session:
            gone = store.outbox.prune_outbox(session, before=now - self.rules.keep_for)
        self._pruned_day = day
        if gone:
            log.info("outbox: pruned %d delivered message(s) older than %s", gone, self.rules.keep_for)

    def _deliver_all(self, ids: Collection[int], *, now: datetime) -> tuple[int, set[tuple[str, str | None]]]:
        """How many of ``ids`` were posted, and the conversations (channel, thread ts) they went to."""
        sent = 0
        places: set[tuple[str, str | None]] = set()
        for message_id in sorted(ids):  # the order they were written: a conversation's order
            try:
                place = self._deliver_one(message_id, now=now)
            except Exception:
                # The database failed us mid-way: the row stays claimed, and is taken over after its lease.
                log.exception("outbox message %d could not be delivered; it is tried again after its lease",
                              message_id)
                continue
            if place is not None:
                sent += 1
                places.add(place)
        return sent, places

    def _deliver_one(self, message_id: int, *, now: datetime) -> tuple[str, str | None] | None:
        """The conversation the message was posted to; None when it was not (not ours, not due, or failed)."""
        claim = secrets.token_hex(8)
        with self.begin() as session:
            message = store.outbox.claim_outbox(session, message_id=message_id, claim=claim, now=now,
                                                lease_until=now + self.rules.lease)
        if message is None:
            return None
        try:
            ts = self._post(message)
        except Exception as e:
            self._failed(message, claim=claim, now=now, error=_error_code(e))
            return None
        with self.begin() as session:
            marked = store.outbox.mark_outbox_sent(session, message_id=message_id, claim=claim, now=now, ts=ts)
        if not marked:
            log.warning("outbox message %d (%s) was posted after its lease ran out; another replica may post it "
                        "again", message_id, message.origin)
        return message.channel, message.thread_ts

    def _post(self, message: OutboxMessage) -> str:
        kind = Kind(message.kind)
        blocks: Blocks | None = json.loads(message.blocks) if message.blocks else None
        if kind == Kind.DM:
            return self.notifier.dm(message.channel, message.text, blocks=blocks)[1]
        return self.notifier.post(message.channel, message.text, blocks=blocks,
                                  thread_ts=message.thread_ts if kind == Kind.THREAD else None)

    def _failed(self, message: OutboxMessage, *, claim: str, now: datetime, error: str) -> None:
        assert message.id is not None
        again = retry_at(self.rules, attempts=message.attempts, created_at=message.created_at, now=now, error=error)
        with self.begin() as session:
            if again is not None:
                store.outbox.retry_outbox(session, message_id=message.id, claim=claim, next_at=again, error=error)
            elif store.outbox.give_up_outbox(session, message_id=message.id, claim=claim, now=now, error=error):
                store.audit.append_audit(session, draft=AuditDraft(
                    actor="scheduler", action=AuditAction.MESSAGE_GIVEN_UP, request_id=message.request_id,
                    detail={"origin": message.origin, "kind": message.kind, "channel": message.channel,
                            "attempts": message.attempts, "error": error}), at=now)
        if again is not None:
            log.warning("outbox message %d (%s) not posted (Slack: %s, attempt %d); trying again at %s",
                        message.id, message.origin, error, message.attempts, again.isoformat())
        else:
            log.error("outbox message %d (%s) given up after %d attempt(s) (Slack: %s); the audit trail has it",
                      message.id, message.origin, message.attempts, error)

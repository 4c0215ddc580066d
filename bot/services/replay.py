"""Refusing replayed Slack requests in HTTP mode.

Slack signs each HTTP request (HMAC-SHA256 of ``v0:{timestamp}:{body}``) and bolt refuses a bad signature or a
timestamp more than five minutes off; a request copied off the wire, though, verifies again for the rest of
those five minutes. Each signature is therefore remembered in the database (so every replica sees it) for
longer than the window, and a signature already there is a replay. Slack's own retries are new requests with
new timestamps and signatures, so they are not refused.

Two checks, so that Slack's ack never waits for the database (a SQLite write queues behind every reset being
written, for up to the busy timeout; Slack allows 3 seconds):

- ``new_here``, on the ack path, in this process's memory only: a replay sent to the replica that served the
  original is answered 401 at once, as before.
- ``first_sight``, the database's INSERT ... ON CONFLICT DO NOTHING, is the arbiter across replicas. It runs in the
  work pool before any of the request's work (``handlers.work.on_ack_path``, which gets it through the request's
  context from ``bot.app.refuse_replays``): a replay that reaches another replica is acked there (200, the same
  answer-free ack the original got) but does nothing, and whichever of the two copies inserts first is the one
  served, so a request is served at most once whichever replicas see it, as long as the original's row outlives
  the copy's check: ``REMEMBER_FOR`` covers the window and the longest wait in the pool (``WORK_MAY_WAIT``; older
  work is not run). A request refused "busy" is remembered all the same (``handlers.work``, off the ack thread), so
  a copy of it cannot be served later instead.

What a replay can still get is the ack itself: a pure function of the request (a usage line, a form error, the
busy sentence), which whoever holds the request already has.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from bot import store
from bot.db import SessionFactory
from bot.models import utcnow

log = logging.getLogger(__name__)

#: How far a request's timestamp may be from now before bolt refuses it (Slack's documented window).
SIGNATURE_WINDOW = timedelta(minutes=5)
#: The longest a request's work may wait in the work pool before it runs (``handlers.work`` tells the person
#: "busy" instead of running older work). The database's check across replicas runs when the work starts, not at
#: the ack, so a copy that reached another replica at the window's edge is checked up to this much later.
WORK_MAY_WAIT = timedelta(minutes=20)
#: How long a signature is remembered: the window on both sides of now, so clock skew cannot reopen it, and the
#: wait in the work pool before a copy's check (``WORK_MAY_WAIT``): the original's row must outlive that check.
REMEMBER_FOR = 2 * SIGNATURE_WINDOW + WORK_MAY_WAIT
#: How often old signatures are deleted (by whichever request comes first after this much time).
PRUNE_EVERY = timedelta(minutes=1)


class ReplayGuard:
    """``first_sight(signature)``: True for a request never served before, False for a replay."""

    def __init__(self, begin: SessionFactory, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._begin = begin
        self._clock = clock
        self._lock = threading.Lock()
        self._pruned_at: datetime | None = None
        #: Signatures this process has served, and when: the ack path's check, no I/O.
        self._here: dict[str, datetime] = {}
        self._here_pruned_at: datetime | None = None

    def new_here(self, signature: str) -> bool:
        """True, and remembered, the first time this process sees ``signature``; False for a replay to this process.
        Memory only: on the ack path. ``first_sight`` decides across replicas, before the request's work."""
        now = self._clock()
        with self._lock:
            if self._here_pruned_at is None or now - self._here_pruned_at >= PRUNE_EVERY:
                self._here_pruned_at = now
                self._here = {s: at for s, at in self._here.items() if now - at < REMEMBER_FOR}
            if signature in self._here:
                log.warning("refused a replayed Slack request (its signature was already served)")
                return False
            self._here[signature] = now
            return True

    def first_sight(self, signature: str) -> bool:
        """True for a signature no replica recorded before (now recorded), False for a replay: one database write,
        off the ack path (see the module's docstring)."""
        now = self._clock()
        with self._begin() as session:
            fresh = store.replay.remember_signature(session, signature=signature, at=now)
        if not fresh:
            log.warning("refused a replayed Slack request (its signature was already served)")
        self._prune(now)
        return fresh

    def _prune(self, now: datetime) -> None:
        with self._lock:
            if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
                return
            self._pruned_at = now
        with self._begin() as session:
            gone = store.replay.forget_signatures(session, before=now - REMEMBER_FOR)
        if gone:
            log.debug("forgot %d Slack request signatures older than %s", gone, REMEMBER_FOR)

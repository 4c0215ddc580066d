"""Refusing replayed Slack requests in HTTP mode.

Slack signs each HTTP request (HMAC-SHA256 of ``v0:{timestamp}:{body}``) and bolt refuses a bad signature or a
timestamp more than five minutes off; a request copied off the wire, though, verifies again for the rest of
those five minutes. Each signature is therefore remembered in the database (so every replica sees it) for
longer than the window, and a signature already there is a replay. Slack's own retries are new requests with
new timestamps and signatures, so they are not refused.
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
#: How long a signature is remembered: the window on both sides of now, so clock skew cannot reopen it.
REMEMBER_FOR = 2 * SIGNATURE_WINDOW
#: How often old signatures are deleted (by whichever request comes first after this much time).
PRUNE_EVERY = timedelta(minutes=1)


class ReplayGuard:
    """``first_sight(signature)``: True for a request never served before, False for a replay."""

    def __init__(self, begin: SessionFactory, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._begin = begin
        self._clock = clock
        self._lock = threading.Lock()
        self._pruned_at: datetime | None = None

    def first_sight(self, signature: str) -> bool:
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

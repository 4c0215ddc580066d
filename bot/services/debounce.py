"""Work asked for many times in a moment, done once after it: App Home refreshes in a burst.

Why: each change to a request refreshes the App Homes of its requester and its manager, and a burst of two hundred
``/reset`` from one agent for one manager's team asked for four hundred ``views.publish`` in a minute or two (Slack's
Tier 4 allows about a hundred a minute, then answers 429). A home shows the state when it is drawn, not when it
was asked for, so asks for one person within ``delay`` seconds need one publish, drawn after the last of them:
at most one publish per person every ``delay`` seconds, the last change always shown.

Best effort by design: a refresh still waiting when the bot stops is dropped (``close``); the person's next
opening of App Home draws it anyway.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Debounce:
    """Runs the work asked for a key once, ``delay`` seconds after the first ask that found none waiting."""

    def __init__(self, delay: float) -> None:
        self._delay = delay
        self._lock = threading.Lock()
        self._due: dict[str, threading.Timer] = {}
        self._closed = False

    def ask(self, key: str, work: Callable[[], None]) -> None:
        """Do ``work`` for ``key`` soon; an ask while one is waiting is the same ask (the waiting work draws the
        state as it is when it runs, so it shows this change too)."""
        with self._lock:
            if self._closed or key in self._due:
                return
            timer = threading.Timer(self._delay, self._run, args=(key, work))
            timer.daemon = True
            self._due[key] = timer
        timer.start()

    def _run(self, key: str, work: Callable[[], None]) -> None:
        with self._lock:
            self._due.pop(key, None)  # before the work: a change made while it runs asks again
        try:
            work()
        except Exception:  # a thread of its own: nobody else would hear of it
            log.exception("a debounced %s failed", key.split(":", 1)[0])

    def pending(self) -> int:
        with self._lock:
            return len(self._due)

    def close(self) -> None:
        """Drop what is waiting, and take no more asks."""
        with self._lock:
            self._closed = True
            due, self._due = list(self._due.values()), {}
        for timer in due:
            timer.cancel()

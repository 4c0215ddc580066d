"""A bounded, thread-safe memory of recent answers, each kept with the moment it was read.

Why not a TTL cache with one lifetime (cachetools' ``TTLCache``): the same answer is good for one question and
too old for another (a Slack profile's name may be minutes old on a page; its email, which says who someone is,
must be younger), so the reader says how old an answer it accepts, and the writer says when the read *began*
(an answer read while something changed counts from before the change). Bounded by count, oldest use dropped
first, so a workspace of any size costs at most ``size`` entries.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """Answers by key, each with when it was read; at most ``size`` kept."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, *, max_age: float, now: float | None = None) -> V | None:
        """The answer if it was read at most ``max_age`` seconds before ``now`` (default: this moment)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            hit = self._items.get(key)
            if hit is None or hit[0] < now - max_age:
                return None
            self._items.move_to_end(key)
            return hit[1]

    def put(self, key: K, value: V, *, read_at: float | None = None) -> None:
        """Keep ``value``, read at ``read_at`` (default: now); a younger answer already kept is not replaced."""
        read_at = time.monotonic() if read_at is None else read_at
        with self._lock:
            old = self._items.get(key)
            if old is not None and old[0] > read_at:
                return
            self._items[key] = (read_at, value)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def drop(self, key: K) -> None:
        with self._lock:
            self._items.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

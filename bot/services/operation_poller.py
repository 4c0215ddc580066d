"""One poller for every reset whose Graph operation is in flight, instead of one blocked thread per reset.

A reset used to hold a work-pool thread (and a heartbeat thread) from Graph's 202 to the operation's end, sleeping
through Retry-After and the backoff: ten approvals waiting on Graph held ten threads, and the number of threads grew
with the resets in flight. Now the reset hands its operation here at the 202: one timer thread keeps every step's
next due time in a heap and, when one comes, runs that step on a small fixed pool (``workers`` threads: a poll is
one short HTTP call, a verdict one transaction and a few posts). A step returns when it wants to run again (None:
it is finished), so the lease renewal and the polls of a reset are the same step, run by whoever polls it.

Why a thread and a heap rather than the scheduler (APScheduler) or asyncio: the scheduler's jobs are its sweeps,
persisted and coalesced, with a resolution and a misfire policy meant for minutes, not the tens of milliseconds
between a writeback's end and the verdict; and the Graph client and the database are synchronous, so an asyncio
loop would only hand each call to a thread pool again. A heap with one condition variable is small, exact to the
millisecond, and costs nothing while idle.

Each step runs in the ``contextvars`` of the code that scheduled it (its log lines keep the request's correlation
id). A step that raises is logged and dropped: its owner must catch what it expects (the reset's step does).
"""

from __future__ import annotations

import contextvars
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

log = logging.getLogger("bot.services.reset")

#: Threads running due steps. A poll takes a few milliseconds and a verdict tens; four keep a Monday's resets
#: finishing together from queueing behind each other, and stay four whatever the number in flight.
POLL_WORKERS = 4

#: A step: does its work and returns the ``time.monotonic()`` at which it wants to run again, or None when done.
Step = Callable[[], float | None]


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    step: Step = field(compare=False)
    context: contextvars.Context = field(compare=False)


class OperationPoller:
    """Runs scheduled steps at their time on a fixed pool; ``schedule`` never blocks. Started on first use."""

    def __init__(self, *, workers: int = POLL_WORKERS, clock: Callable[[], float] = time.monotonic) -> None:
        self.workers = workers
        self.clock = clock
        self._heap: list[_Due] = []
        self._seq = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._stopped = False

    def schedule(self, at: float, step: Step) -> None:
        """Run ``step`` at ``at`` (``clock()`` time; now or past: as soon as a worker is free), then again at
        whatever it returns, until it returns None."""
        self._push(_Due(at, next(self._seq), step, contextvars.copy_context()))

    @property
    def pending(self) -> int:
        """Steps waiting for their time (not those running now)."""
        with self._wake:
            return len(self._heap)

    def close(self, timeout: float = 5.0) -> None:
        """Stop: steps not yet due are dropped (a reset's lease then lapses, and recovery asks Graph how it ended);
        steps running now finish, waited for up to ``timeout``."""
        with self._wake:
            self._stopped = True
            self._heap.clear()
            self._wake.notify_all()
            thread, pool = self._thread, self._pool
        if thread is not None:
            thread.join(timeout)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _push(self, due: _Due) -> None:
        with self._wake:
            if self._stopped:
                log.warning("the operation poller is stopped; a step was dropped (recovery picks its reset up)")
                return
            if self._thread is None:
                self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="resetbot-poll")
                self._thread = threading.Thread(target=self._run, name="resetbot-poller", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, due)
            if self._heap[0] is due:
                self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (not self._heap or self._heap[0].at > self.clock()):
                    self._wake.wait(None if not self._heap else self._heap[0].at - self.clock())
                if self._stopped:
                    return
                due = heapq.heappop(self._heap)
                pool = self._pool
            assert pool is not None
            try:
                pool.submit(self._step, due)
            except RuntimeError:  # shut down between the pop and the submit
                return

    def _step(self, due: _Due) -> None:
        try:
            again = due.context.run(due.step)
        except Exception:  # a step that raises is dropped, never the poller with it
            log.exception("a scheduled reset step failed and was dropped")
            return
        if again is not None:
            self._push(_Due(again, next(self._seq), due.step, due.context))

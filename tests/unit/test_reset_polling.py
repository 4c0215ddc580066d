"""When a reset's operation is polled (``bot.domain.reset_polling``) and the one poller that runs every reset's
steps (``bot.services.operation_poller``): steps run in order of their time, again at whatever they return, in the
context that scheduled them, on a fixed number of threads however many are waiting; a step that raises is dropped
and the others go on. Events, not sleeps: each step says when it ran."""

from __future__ import annotations

import contextvars
import functools
import queue
import threading
import time
from collections.abc import Callable

import pytest

from bot.domain.reset_polling import (
    POLL_CAP_S,
    POLL_FAST_S,
    POLL_FAST_WINDOW_S,
    next_poll,
)
from bot.services.operation_poller import OperationPoller


def test_retry_after_is_honoured_exactly_then_the_fast_interval_then_a_capped_growth() -> None:
    assert next_poll(1.0, None, looking_s=0.0).wait_s == 1.0, "Graph's instruction, exactly"
    assert next_poll(0.0, None, looking_s=0.0).wait_s == 0.0
    assert next_poll(None, None, looking_s=0.0).wait_s == POLL_FAST_S
    assert next_poll(None, POLL_FAST_S, looking_s=POLL_FAST_WINDOW_S - 0.01).wait_s == POLL_FAST_S
    waits, step = [], next_poll(None, POLL_FAST_S, looking_s=POLL_FAST_WINDOW_S)
    for _ in range(20):
        waits.append(step.wait_s)
        step = next_poll(None, step.interval_s, looking_s=POLL_FAST_WINDOW_S + 1)
    assert waits[0] > POLL_FAST_S and waits == sorted(waits) and max(waits) == POLL_CAP_S
    later = next_poll(2.0, POLL_CAP_S, looking_s=10.0)
    assert later.wait_s == 2.0 and later.interval_s == POLL_CAP_S, "a Retry-After later on is honoured too"


TAG: contextvars.ContextVar[str] = contextvars.ContextVar("tag", default="-")


def once(then: Callable[[], object]) -> Callable[[], float | None]:
    """A step that does ``then`` and is done."""
    def step() -> float | None:
        then()
        return None
    return step


def test_steps_run_by_their_time_again_when_asked_in_their_context_on_a_fixed_pool() -> None:
    poller = OperationPoller(workers=2)
    ran: queue.Queue[tuple[str, str]] = queue.Queue()
    try:
        now = time.monotonic()
        for name, at in (("late", now + 0.2), ("early", now), ("middle", now + 0.1)):
            TAG.set(f"cid-{name}")
            poller.schedule(at, once(functools.partial(lambda n: ran.put((n, TAG.get())), name)))
        assert [ran.get(timeout=5) for _ in range(3)] == [
            ("early", "cid-early"), ("middle", "cid-middle"), ("late", "cid-late")]

        turns: list[int] = []
        done = threading.Event()

        def thrice() -> float | None:
            turns.append(1)
            if len(turns) == 3:
                done.set()
                return None
            return time.monotonic()

        poller.schedule(time.monotonic(), thrice)
        assert done.wait(5) and len(turns) == 3

        before = threading.active_count()
        gate = threading.Event()
        for _ in range(50):  # fifty waiting resets are fifty heap entries, not fifty threads
            poller.schedule(time.monotonic() + 60, lambda: None)
        poller.schedule(time.monotonic(), once(gate.set))
        assert gate.wait(5)
        assert poller.pending == 50 and threading.active_count() <= before + 1
    finally:
        poller.close()


def test_a_step_that_raises_is_dropped_and_logged_and_the_others_go_on(caplog: pytest.LogCaptureFixture) -> None:
    poller = OperationPoller(workers=1)
    after = threading.Event()

    def broken() -> float | None:
        raise RuntimeError("boom")

    try:
        poller.schedule(time.monotonic(), broken)
        poller.schedule(time.monotonic() + 0.01, once(after.set))
        assert after.wait(5)
        assert "a scheduled reset step failed and was dropped" in caplog.text
    finally:
        poller.close()
    poller.schedule(time.monotonic(), lambda: None)  # after close: dropped, with a warning, never run
    assert "the operation poller is stopped" in caplog.text

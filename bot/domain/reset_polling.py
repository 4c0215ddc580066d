"""When to ask Graph again about a resetPassword operation: Graph's ``Retry-After`` when it gives one, exactly
(it is Graph's instruction, and asking sooner only earns a throttle), otherwise a short interval that grows a
little and then stays at ``POLL_CAP_S``.

Why short and capped, not doubling to seconds: the person waits in the thread for the verdict, and a writeback
finished a moment after a poll was only seen at the next one (doubling to 5 s showed one finished at 4.8 s at
8.75 s). Why growing at all: most writebacks end within the first second, and the first polls find them at once;
a slow one (seconds, an agent far away) costs at most ``1 / POLL_CAP_S`` requests a second, well within Graph's
limits for one tenant.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The first wait after a 202 (or a poll) that carried no Retry-After.
POLL_FIRST_S = 0.05
#: How each wait without Retry-After grows on the one before, and where it stops growing.
POLL_GROWTH = 1.5
POLL_CAP_S = 0.25


@dataclass(frozen=True, slots=True)
class PollStep:
    """How long to wait before the next poll, and the interval to grow from after it (when Graph says nothing)."""

    wait_s: float
    interval_s: float | None


def next_poll(retry_after_s: float | None, interval_s: float | None) -> PollStep:
    """The wait before the next poll: ``retry_after_s`` as Graph gave it, else the growing capped interval.
    ``interval_s`` is the step's ``interval_s`` from the poll before (None for the first)."""
    grown = POLL_FIRST_S if interval_s is None else min(interval_s * POLL_GROWTH, POLL_CAP_S)
    if retry_after_s is not None:
        return PollStep(max(0.0, retry_after_s), interval_s)
    return PollStep(grown, grown)

"""When to ask Graph again about a resetPassword operation: Graph's ``Retry-After`` when it gives one, exactly
(it is Graph's instruction, and asking sooner only earns a throttle); otherwise every ``POLL_FAST_S`` for the
first ``POLL_FAST_WINDOW_S``, then at an interval that grows to ``POLL_CAP_S`` and stays there.

Why: the person waits in the thread for the verdict, and a writeback that finished just after a poll is only seen at
the next one (the old doubling to 5 s showed one finished at 4.8 s at 8.75 s). Microsoft documents Retry-After on
this 202 as optional and its example sends none, so the bot cannot count on Graph to say when to look. Most
writebacks end within the first two seconds (a healthy agent, the lab's), and the fast window finds them within
``POLL_FAST_S``; that costs about seventy small GETs per reset, once. A slow one (an agent far away or offline) then
costs at most ``1 / POLL_CAP_S`` requests a second until it ends or the poll's bound runs out: a Monday's ten resets
in flight stay well inside Graph's per-tenant limits, and a 429 brings Graph's own Retry-After back into force.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The wait between polls in the first ``POLL_FAST_WINDOW_S`` after Graph allows the first look.
POLL_FAST_S = 0.03
POLL_FAST_WINDOW_S = 2.0
#: After the window, each wait grows on the one before by this much, up to the cap.
POLL_GROWTH = 1.5
POLL_CAP_S = 0.25


@dataclass(frozen=True, slots=True)
class PollStep:
    """How long to wait before the next poll, and the interval to grow from after it (when Graph says nothing)."""

    wait_s: float
    interval_s: float | None


def next_poll(retry_after_s: float | None, interval_s: float | None, *, looking_s: float) -> PollStep:
    """The wait before the next poll: ``retry_after_s`` as Graph gave it, else the fast interval while
    ``looking_s`` (seconds since the first look Graph allowed; 0 before it) is within the window, then the growing
    capped one. ``interval_s`` is the step's ``interval_s`` from the poll before (None for the first)."""
    if retry_after_s is not None:
        return PollStep(max(0.0, retry_after_s), interval_s)
    if looking_s < POLL_FAST_WINDOW_S or interval_s is None:
        return PollStep(POLL_FAST_S, POLL_FAST_S)
    grown = min(interval_s * POLL_GROWTH, POLL_CAP_S)
    return PollStep(grown, grown)

"""The health model, pure: which checks exist, what their latest results make the overall state, and what
changed between two states. Kept apart from the service so that the rules are testable without a lab and so
``bot.messages`` can name checks without importing the service.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Check(StrEnum):
    """The health checks, in the order they run and are shown."""

    GRAPH_TOKEN = "graph_token"  # noqa: S105 - a check name, not a token
    GRAPH_READ = "graph_read"
    LDAP = "ldap"
    DIRECTORY_SYNC = "directory_sync"
    CANARY = "canary"


class HealthState(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    #: No round has run yet (a fresh database).
    UNKNOWN = "unknown"


#: What a slot row's ``kind`` says it is.
ROUND_KIND = "round"
SUMMARY_KIND = "summary"


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict; ``detail`` is a sentence for ops and never holds a secret."""

    ok: bool
    detail: str


@dataclass(frozen=True)
class CheckView:
    """A check's latest stored result, for ``/resetbot health``, App Home and the summary."""

    check: Check
    ok: bool
    detail: str
    at: datetime


@dataclass(frozen=True)
class TransitionView:
    at: datetime
    from_state: HealthState
    to_state: HealthState
    #: Checks failing after the change, and the checks whose result changed (``{check: ok}``).
    failing: tuple[Check, ...]
    changed: Mapping[Check, bool]


@dataclass(frozen=True)
class HealthReport:
    state: HealthState
    checks: tuple[CheckView, ...]
    transitions: tuple[TransitionView, ...]


@dataclass(frozen=True)
class Change:
    """A change of state to announce: the new state, the checks now failing (with their details, in check
    order) and the checks that recovered."""

    from_state: HealthState
    to_state: HealthState
    failing: tuple[Check, ...]
    newly_failing: tuple[tuple[Check, str], ...]
    recovered: tuple[Check, ...]

    @property
    def news(self) -> bool:
        """Whether ops is told: every change but the very first round finding all well."""
        return not (self.from_state == HealthState.UNKNOWN and self.to_state == HealthState.HEALTHY)


def slot_of(when: datetime, interval_s: float) -> int:
    """The round a moment belongs to: every replica computes the same number from its own clock."""
    return math.floor(when.timestamp() / interval_s)


def overall(latest: Iterable[CheckView]) -> HealthState:
    views = list(latest)
    if not views:
        return HealthState.UNKNOWN
    return HealthState.HEALTHY if all(v.ok for v in views) else HealthState.DEGRADED


def ordered(checks: Iterable[Check]) -> tuple[Check, ...]:
    order = list(Check)
    return tuple(sorted(set(checks), key=order.index))


def change(previous_failing: Iterable[Check], previous_state: HealthState,
           latest: Mapping[Check, CheckResult]) -> Change | None:
    """The change to record when the state or the set of failing checks differs from the last recorded one;
    None when nothing changed (the same checks still failing, whatever their details say now, is not news).
    The first round makes a change from ``UNKNOWN`` even when all is well, so history starts there."""
    before = set(previous_failing)
    now = {c for c, r in latest.items() if not r.ok}
    state = HealthState.DEGRADED if now else HealthState.HEALTHY
    if now == before and state == previous_state:
        return None
    return Change(
        from_state=previous_state, to_state=state, failing=ordered(now),
        newly_failing=tuple((c, latest[c].detail) for c in ordered(now - before)),
        recovered=ordered(before - now),
    )

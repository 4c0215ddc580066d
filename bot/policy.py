"""The password policy model. Pure data and functions: the generator and local pre-check build on it.

AD stores ages and durations as negative counts of 100-ns intervals; this module speaks timedelta so that no
caller ever handles that encoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

#: AD's "never" for an age or duration (the most negative 64-bit integer).
AD_NEVER = -9223372036854775808


def ad_interval(value: int | str | None) -> timedelta | None:
    """An AD interval as a timedelta; None for "never" or an absent value."""
    if value is None or value == "":
        return None
    n = int(value)
    if n == AD_NEVER:
        return None
    return timedelta(microseconds=abs(n) / 10)


@dataclass(frozen=True)
class PasswordPolicy:
    """The policy that applies to one account: the domain's, or the fine-grained PSO that overrides it."""

    source: str
    min_length: int
    history_length: int
    complexity: bool
    min_age: timedelta | None
    max_age: timedelta | None

"""``since_baseline``: what recovery reads in AD decides between making a reset again and saying it went through, so
every way AD can answer is pinned here (a wrong UNTOUCHED resets a password twice)."""

from __future__ import annotations

import pytest

from bot.domain.followup_rules import Seen
from bot.domain.recovery_rules import SinceBaseline, since_baseline

T0 = 133_000_000_000_000_000  # a FILETIME instant
T1 = T0 + 10_000_000


@pytest.mark.parametrize(("seen", "baseline", "version", "expected"), [
    (None, T0, 3, SinceBaseline.ACCOUNT_GONE),
    (Seen(T0, False, 3), T0, 3, SinceBaseline.UNTOUCHED),
    (Seen(0, False, 4), T0, 3, SinceBaseline.WRITTEN),
    (Seen(0, False, 4), 0, 3, SinceBaseline.WRITTEN),  # must-change before and after: the counter still moved
    (Seen(0, False, 3), 0, 3, SinceBaseline.UNTOUCHED),
    (Seen(T0, False, 5), T0, 3, SinceBaseline.WRITTEN),  # written, then pwdLastSet put back: the counter tells
    # No key version readable: pwdLastSet alone.
    (Seen(T0, False, None), T0, None, SinceBaseline.UNTOUCHED),
    (Seen(0, False, None), T0, None, SinceBaseline.WRITTEN),
    (Seen(T1, False, None), T0, None, SinceBaseline.WRITTEN),
    (Seen(0, False, None), 0, None, SinceBaseline.UNPROVEN),
    (Seen(T0, False, None), None, None, SinceBaseline.UNPROVEN),
    (Seen(T0, False, 3), None, None, SinceBaseline.UNPROVEN),
])
def test_since_baseline(seen: Seen | None, baseline: int | None, version: int | None,
                        expected: SinceBaseline) -> None:
    assert since_baseline(seen, baseline=baseline, baseline_version=version) == expected

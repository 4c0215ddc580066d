"""The benchmarks still run (a small size): a benchmark that rotted would be found only when someone needs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.lab
def test_followup_lookup_benchmark_prints_both_ways_and_the_ratio() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.followup_lookup", "--accounts", "5", "--rounds", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "follow-up AD reads of 5 accounts (median of 1), lab Samba DC over LDAPS:"
    assert lines[1].startswith("  one search per account (baseline):")
    assert lines[2].startswith("  paged OR-searches (the bot):")
    assert lines[3].startswith("  batching speed-up:") and lines[3].endswith("x")
    assert lines[4] == "  LDAPS connections opened for all of it: 1"

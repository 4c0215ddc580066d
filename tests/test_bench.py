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


@pytest.mark.lab
def test_ack_burst_benchmark_prints_both_apps_every_load_and_the_ratios() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.ack_burst", "--commands", "4", "--agents", "2", "--burst", "4",
                           "--approvals", "2"], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("ack burst: resetbot against a bare bolt app")
    assert "unacked" in lines[1] and "dupes" in lines[1]
    rows = [line.split() for line in lines[2:] if line.split()[-1:] and line.split()[0] in ("closed", "open")]
    assert [r[r.index("bare") if "bare" in r else r.index("bot")] for r in rows] == ["bare", "bot", "bare", "bot"]
    bot_rows = [r for r in rows if "bot" in r]
    assert all(r[-3:] == ["4", "0", r[-1]] for r in bot_rows), "every request posted once, none twice"
    assert sum("bot/bare ack p99:" in line for line in lines) == 2
    assert "2 approvals held by Graph, one unrelated /reset: ack" in lines[-1]


@pytest.mark.lab
def test_approval_latency_benchmark_prints_every_load_and_the_overhead() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.approval_latency", "--rounds", "1", "--slow-ms", "300"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("approval latency: Approve click → verdict in the thread")
    assert "overhead" in lines[1]
    assert [line.split()[0] for line in lines[2:5]] == ["no", "Retry-After:", "slow"]
    assert lines[5].startswith("  the bot's overhead, median of every round:") and lines[5].endswith("(target ≤ 50 ms)")


def test_web_api_calls_benchmark_prints_each_phase_and_the_burst_against_the_tiers() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.web_api_calls", "--requests", "2", "--burst", "4",
                           "--quiet", "0.3"], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Web API calls per request (2 /reset")
    assert any(line.startswith("Web API calls per approval (2 approvals") for line in lines)
    assert sum(line.split()[:1] == ["all"] for line in lines) == 2
    assert any(line.startswith("burst: 4 /reset at once, 4 posted in") for line in lines)
    assert any("chat.postMessage" in line and "in the busiest minute" in line for line in lines)


def test_start_time_benchmark_prints_both_starts_and_the_difference() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.start_time", "--rounds", "1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("start: launch -> Socket Mode connected, median of 1,")
    assert "without click, rich, pygments, h2 (as in production)" in lines[0]
    assert lines[1].startswith("  bare bolt app: ") and lines[2].startswith("  resetbot run:  ")
    assert lines[3].startswith("  resetbot - bare: +") or lines[3].startswith("  resetbot - bare: -")


@pytest.mark.lab
def test_soak_benchmark_prints_rss_and_threads_at_each_checkpoint() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.soak", "--resets", "2", "--checkpoint", "1",
                           "--env", "MALLOC_ARENA_MAX=2"], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("soak: resetbot run on the lab, 2 resets (2 at a time)")
    assert "MALLOC_ARENA_MAX" in lines[0]
    assert [line.split()[0:3] for line in lines[1:4]] == [["connected,", "idle", "RSS"], ["after", "1", "resets"],
                                                          ["after", "2", "resets"]]
    assert all("threads" in line for line in lines[1:4])
    assert lines[4].startswith("  RSS growth from 1 resets to 2 resets: ")

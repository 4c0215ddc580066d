"""Slack Web API calls the bot makes per request and per approval, and in a burst against Slack's rate tiers.

    .venv/bin/python -m bench.web_api_calls [--requests 10] [--burst 200] [--quiet 3]

Runs the bot in this process against a lab (as the scenario tests do, with the one-open-request-per-target
limit off so that two targets can carry a burst), and reads what the lab's Slack recorded (``GET /control/calls``):

- per request: ``--requests`` ``/reset`` one after the other (each posted before the next), calls divided by
  the count;
- per approval: an Approve click on each of those requests, each verdict in its thread before the next click;
- burst: ``--burst`` ``/reset`` at once; for each method, the calls in the busiest 60 s and Slack's tier for it
  (Slack's published per-method limits: Tier 2 about 20 a minute, Tier 3 about 50, Tier 4 about 100;
  ``chat.postMessage`` about one a second per channel, with short bursts allowed).

The in-run baseline is the first request and approval, made with every cache cold: what each later one costs
against what a cold one does. Numbers, not assertions (tests/test_bench.py only runs it small).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.ack_burst import AGENT, APPROVER, _fire, _outcome, _reset_text
from lab.slack.driver import SlackDriver
from lab.stack import Lab
from tests.scenarios.conftest import with_rules
from tests.scenarios.harness import lab_settings, link_agent, running_bot

#: Slack's published rate tier of each method the bot calls (calls a minute); chat.postMessage is per channel.
TIERS: dict[str, tuple[str, int]] = {
    "usergroups.users.list": ("Tier 2", 20), "usergroups.list": ("Tier 2", 20),
    "users.lookupByEmail": ("Tier 3", 50), "conversations.open": ("Tier 3", 50), "chat.update": ("Tier 3", 50),
    "users.info": ("Tier 4", 100), "views.publish": ("Tier 4", 100), "chat.postEphemeral": ("Tier 4", 100),
    "chat.getPermalink": ("Tier 4", 100), "views.open": ("Tier 4", 100),
    "chat.postMessage": ("1/s per channel", 60),
}
IGNORED = {"auth.test", "apps.connections.open"}


#: Seconds without a new call after which the bot's work is taken as done (``--quiet``).
QUIET_S = 3.0


def _settled(driver: SlackDriver, quiet_s: float, timeout: float = 90.0) -> list[dict[str, Any]]:
    """Every call recorded, once none has come for ``quiet_s`` (the bot's work after a click ends with no event
    to wait for: an App Home refresh comes up to two seconds after the change that asked for it)."""
    deadline = time.monotonic() + timeout
    seen = -1
    while time.monotonic() < deadline:
        calls = driver.calls()
        if len(calls) == seen:
            return calls
        seen = len(calls)
        time.sleep(quiet_s)
    return driver.calls()


def _count(calls: list[dict[str, Any]]) -> Counter[str]:
    return Counter(c["method"] for c in calls if c["method"] not in IGNORED)


def _phase(driver: SlackDriver, steps: list[Callable[[], None]], quiet_s: float) -> tuple[Counter[str], Counter[str]]:
    """(calls of the first step, calls of all the others together), each step run after the last settled."""
    counts: list[Counter[str]] = []
    seen = len(_settled(driver, quiet_s))
    for step in steps:
        step()
        calls = _settled(driver, quiet_s)
        counts.append(_count(calls[seen:]))
        seen = len(calls)
    rest: Counter[str] = Counter()
    for c in counts[1:]:
        rest.update(c)
    return counts[0], rest


def _table(title: str, first: Counter[str], rest: Counter[str], n: int) -> None:
    print(f"{title} (first: caches cold; then the mean of the other {n}):")
    for method in sorted(set(first) | set(rest)):
        print(f"  {method:<24} first {first[method]:>3}   then {rest[method] / max(n, 1):>6.2f}")
    print(f"  {'all':<24} first {sum(first.values()):>3}   then {sum(rest.values()) / max(n, 1):>6.2f}")


def _busiest_minute(calls: list[dict[str, Any]], method: str) -> int:
    times = sorted(float(c["time"]) for c in calls if c["method"] == method)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= 60.0:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--quiet", type=float, default=QUIET_S,
                        help="seconds without a call that mean the bot is done (under 2.5 s: App Home refreshes "
                             "may be counted in the next step; for a quick check that the benchmark runs)")
    args = parser.parse_args()
    # The agent's device-code sign-in is set-up, not counted: a 1 s polling interval instead of Microsoft's 5 s.
    with tempfile.TemporaryDirectory() as tmp, Lab(Path(tmp) / "lab", device_code_interval_s=1) as lab, \
            SlackDriver(lab.descriptor["slack"]["control"], timeout=120) as driver, \
            running_bot(lab_settings(lab, f"sqlite:///{Path(tmp) / 'resetbot.db'}"), driver) as bot:
        # Load, not abuse: several requests open for each of the two targets at once (test_limits.py has the rule).
        with_rules(bot, limits=dataclasses.replace(bot.services.requests.rules.limits, one_open_per_target=False))
        helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
        link_agent(lab, driver, AGENT)
        n = args.requests

        def ask(i: int) -> None:
            driver.command(AGENT, "/reset", _reset_text(lab, i, "calls"), channel=helpdesk)
            _outcome(driver, helpdesk, "calls", i + 1, timeout=60)

        def approve(ts: str) -> None:
            driver.click(APPROVER, helpdesk, ts, "request_approve")
            driver.wait_for_message(helpdesk, lambda m: "Done:" in m["text"], thread_ts=ts, timeout=60)

        req_first, req_rest = _phase(driver, [functools.partial(ask, i) for i in range(n)], args.quiet)
        requests = [m for m in driver.messages(helpdesk)
                    if "calls " in str(m["blocks"]) and m["thread_ts"] in (None, m["ts"])]
        app_first, app_rest = _phase(driver, [functools.partial(approve, str(m["ts"])) for m in requests], args.quiet)
        before = len(driver.calls())  # settled: the phase ended with _settled
        started = time.monotonic()
        _fire(driver, [_reset_text(lab, i, "burst") for i in range(args.burst)], helpdesk, args.burst)
        posted, _dupes = _outcome(driver, helpdesk, "burst", args.burst, timeout=max(120.0, args.burst * 2.0))
        took = time.monotonic() - started
        burst = [c for c in _settled(driver, args.quiet)[before:] if c["method"] not in IGNORED]
    _table(f"Web API calls per request ({n} /reset, each posted before the next)", req_first, req_rest, n - 1)
    _table(f"Web API calls per approval ({len(requests)} approvals, each to its verdict)", app_first, app_rest,
           len(requests) - 1)
    print(f"burst: {args.burst} /reset at once, {posted} posted in {took:.1f} s; calls in the busiest minute:")
    for method, count in sorted(_count(burst).items()):
        tier, per_min = TIERS.get(method, ("?", 0))
        peak = _busiest_minute(burst, method)
        over = "" if not per_min or peak <= per_min else "  OVER"
        print(f"  {method:<24} {count:>5} in all, {peak:>5} in the busiest minute ({tier}, ~{per_min}/min){over}")


if __name__ == "__main__":
    main()

"""Flat memory: the bot's RSS and threads over many resets, start to finish, on the lab.

    .venv/bin/python -m bench.soak [--resets 1000] [--checkpoint 100] [--env NAME=VALUE ...] [--state-dir DIR]

Runs the real bot (``resetbot run``, its own process, ``lab.demo.BotProcess``: the follow-ups that prove each
reset reached AD run too) and drives whole resets through Slack as people would: one client per target account
(alice and bob: the bot refuses a second open request for an account) sends ``/reset``, the approver clicks
Approve, and the client waits for the verdict ("Done:") in the thread before the next. After every
``--checkpoint`` resets it reads the bot's ``VmRSS`` and thread count from ``/proc`` (and prints them as it
goes). The figure that matters is the growth from the first checkpoint (100 resets: every code path warmed,
every pool filled) to the last; the in-run baseline is the bot just connected and idle. About 1.5 s a reset
per client on the lab (Graph's ``Retry-After: 1`` included): 1,000 resets take about 15 minutes.

``--env NAME=VALUE`` sets the bot's environment (``--env MALLOC_ARENA_MAX=2``, as the shipped systemd unit
does; ``--env MALLOC_ARENA_MAX=`` removes it: glibc's default, up to eight arenas a core). Numbers, not
assertions.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from lab.demo import BotProcess
from lab.slack.driver import SlackDriver
from lab.stack import Lab
from tests.scenarios.harness import link_agent

AGENT = "hank"
APPROVER = "mona"
#: Who approves the other lab people's resets (their manager, or the approvers' group: ivan).
OTHER_APPROVER = "ivan"
#: One lane per target: the bot (rightly) refuses a second open request for an account.
TARGETS = ("alice", "bob")
#: The request limits are for people; the soak is one agent making a thousand resets of two accounts in minutes.
LIMITS = {"RESETBOT_LIMIT_AGENT_PER_HOUR": "10000", "RESETBOT_LIMIT_TEAM_PER_HOUR": "100000",
          "RESETBOT_LIMIT_REPEAT_HOURS": "0"}


def proc_status(pid: int) -> tuple[float, int]:
    """(RSS in MB, threads) of process ``pid``."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["Threads"])


class Soak:
    def __init__(self, lab: Lab, driver: SlackDriver) -> None:
        self.lab, self.driver = lab, driver
        self.helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
        self.ids = {p["key"]: p["slack_id"] for p in lab.descriptor["people"]}

    def one(self, n: int, target: str) -> None:
        """Reset number ``n`` (of ``target``) from /reset to its verdict."""
        tag = f"soak-{n:05d}"
        self.driver.command(AGENT, "/reset", f"<@{self.ids[target]}|{target}> {tag}", channel=self.helpdesk)
        request = self.driver.wait_for(lambda: next(
            (m for m in self.driver.messages(self.helpdesk) if tag in str(m["blocks"])), None),
            timeout=120, what=f"request {tag}")
        ts = str(request["ts"])
        approver = APPROVER if target in TARGETS else OTHER_APPROVER
        self.driver.click(approver, self.helpdesk, ts, "request_approve")
        # "Done:", or for nora (password never expires in AD) "Done, with a catch:"
        self.driver.wait_for_message(self.helpdesk, lambda m: "Done:" in m["text"] or "Done, with a catch" in m["text"],
                                     thread_ts=ts, timeout=120)

    def run(self, first: int, count: int, targets: tuple[str, ...] = TARGETS) -> None:
        todo = iter(range(first, first + count))
        lock = threading.Lock()
        errors: list[BaseException] = []

        def client(target: str) -> None:
            while not errors:
                with lock:
                    n = next(todo, None)
                if n is None:
                    return
                try:
                    self.one(n, target)
                except BaseException as e:  # reported below, after the other clients stop
                    errors.append(e)

        threads = [threading.Thread(target=client, args=(target,)) for target in targets]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resets", type=int, default=1000)
    parser.add_argument("--checkpoint", type=int, default=100)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--targets", default=",".join(TARGETS),
                        help="accounts reset, one client each (plain lab people: each lane goes as fast as one)")
    parser.add_argument("--state-dir", type=Path, help="keep the lab's and the bot's files (and log) here")
    args = parser.parse_args()
    overrides = dict(LIMITS)
    unset = []
    for item in args.env:
        name, _, value = item.partition("=")
        if value:
            overrides[name] = value
        else:
            unset.append(name)
    # The agent's device-code sign-in is set-up, not measured: a 1 s polling interval instead of Microsoft's 5 s.
    with tempfile.TemporaryDirectory() as scratch, \
            Lab(Path(args.state_dir or scratch) / "lab", device_code_interval_s=1) as lab, \
            SlackDriver(lab.descriptor["slack"]["control"], timeout=120) as driver:
        tmp = Path(args.state_dir or scratch)
        bot = BotProcess(lab, tmp, overrides=overrides)
        for name in unset:
            bot.env.pop(name, None)
        with bot:
            assert bot.proc is not None
            pid = bot.proc.pid
            link_agent(lab, driver, AGENT)
            rows: list[tuple[str, float, int, float]] = []
            rss, threads = proc_status(pid)
            rows.append(("connected, idle", rss, threads, 0.0))
            started = time.monotonic()
            done = 0
            while done < args.resets:
                step = min(args.checkpoint, args.resets - done)
                Soak(lab, driver).run(done, step, tuple(args.targets.split(",")))
                done += step
                rss, threads = proc_status(pid)
                rows.append((f"after {done} resets", rss, threads, time.monotonic() - started))
                print(f"  {rows[-1][0]:<22} RSS {rss:7.1f} MB  threads {threads:3d}", file=sys.stderr, flush=True)
    env: Any = {k: v for k, v in overrides.items() if k not in LIMITS} | dict.fromkeys(unset, "(unset)")
    print(f"soak: resetbot run on the lab, {args.resets} resets ({args.targets.count(',') + 1} at a time), "
          f"{os.cpu_count()} CPUs, bot environment {env or 'as in the lab'}:")
    for what, rss, threads, elapsed in rows:
        print(f"  {what:<22} RSS {rss:7.1f} MB  threads {threads:3d}  ({elapsed:6.1f} s)")
    first = next((r for r in rows if r[0].startswith("after")), rows[0])
    print(f"  RSS growth from {first[0].removeprefix('after ')} to {rows[-1][0].removeprefix('after ')}: "
          f"{rows[-1][1] - first[1]:+.1f} MB")


if __name__ == "__main__":
    main()

"""Slack's 3-second ack deadline under load: resetbot against a bare bolt app on the same lab, in one run.

    .venv/bin/python -m bench.ack_burst [--commands 200] [--agents 20] [--burst 200] [--approvals 10]

Both apps run as their own processes over Socket Mode against the lab's Slack stand-in, one after the other (the
stand-in spreads envelopes over every connection of the app, so they never share a phase). The bare app's
``/reset`` listener only calls ``ack()``: the floor this machine sets. Each phase measures the stand-in's own
``ack_ms`` (envelope sent → ack received) for every command:

- closed loop: ``--agents`` people's clients sending ``/reset`` back to back, ``--commands`` in all;
- open loop: ``--burst`` ``/reset`` sent at once;
- ``--approvals`` Approve clicks while the lab's Graph holds every reset (``hold_operations``), then one unrelated
  ``/reset``: its ack against the same command's ack when the bot is idle.

For the bot it also counts the requests posted (each command's reason once in the requests channel) and the
duplicates (a reason posted more than once: a redelivered command done twice). Every command comes from the one
linked agent (the lab has two helpdesk agents and the bench needs a linked sign-in); "agents" are concurrent
clients. Numbers, not assertions: tests never time anything (tests/test_bench.py only runs it small).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.demo import bot_environment
from lab.slack.driver import SlackDriver
from lab.stack import Lab
from tests.clients.graphlab import EntraControl
from tests.scenarios.harness import link_agent

ROOT = Path(__file__).resolve().parent.parent

#: A burst sends hundreds of requests from one agent: production's hourly limits would refuse all but the first ten.
LOAD_ENV = {"RESETBOT_LIMIT_AGENT_PER_HOUR": "10000", "RESETBOT_LIMIT_TEAM_PER_HOUR": "100000",
            "RESETBOT_LIMIT_REPEAT_HOURS": "0"}
AGENT = "hank"
APPROVER = "mona"
TARGETS = ("alice", "bob")

BARE_APP = """
import os, threading
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient
app = App(client=WebClient(token=os.environ["BOT_TOKEN"], base_url=os.environ["API_BASE"]),
          token_verification_enabled=False)
@app.command("/reset")
def reset(ack):
    ack()
handler = SocketModeHandler(app, os.environ["APP_TOKEN"], web_client=WebClient(base_url=os.environ["API_BASE"]))
handler.connect()
print("serving", flush=True)
threading.Event().wait()
"""


@dataclass
class Phase:
    """One load on one app: every command's ack and what the bot made of them."""

    name: str
    app: str
    acks: list[dict[str, Any]]
    posted: int | None = None
    duplicates: int | None = None
    redelivered: int = 0

    def ms(self) -> list[float]:
        return sorted(float(a["ack_ms"]) for a in self.acks if a.get("acked"))

    def pct(self, p: float) -> float:
        values = self.ms()
        if not values:
            return float("nan")
        return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]

    def line(self) -> str:
        unacked = len([a for a in self.acks if not a.get("acked")])
        posted = "-" if self.posted is None else str(self.posted)
        dupes = "-" if self.duplicates is None else str(self.duplicates)
        return (f"  {self.name:<34} {self.app:<5} {len(self.acks):>5} {unacked:>7} {self.pct(50):>8.1f} "
                f"{self.pct(95):>8.1f} {self.pct(99):>8.1f} {max(self.ms(), default=float('nan')):>8.1f} "
                f"{posted:>6} {dupes:>5} {self.redelivered:>11}")


HEADER = (f"  {'load':<34} {'app':<5} {'sent':>5} {'unacked':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'max ms':>8} {'posted':>6} {'dupes':>5} {'redelivered':>11}")


def _ack_ms(ack: Any) -> float:
    return float(ack.get("ack_ms") or 0.0)


def _reset_text(lab: Lab, i: int, tag: str) -> str:
    target = TARGETS[i % len(TARGETS)]
    sid = next(p["slack_id"] for p in lab.descriptor["people"] if p["key"] == target)
    return f"<@{sid}|{target}> {tag} {i:04d}"


def _fire(driver: SlackDriver, texts: list[str], channel: str, workers: int) -> list[dict[str, Any]]:
    """Send ``texts`` as /reset from ``workers`` concurrent clients (each back to back); every ack, in order.

    Each client has its own connection to the stand-in's control API, as separate people's clients would: 200
    threads sharing one httpx client now and then had a pooled connection closed under them ("Bad file
    descriptor"), and that command was counted as unacked although the bot had acked and posted it."""
    acks: list[dict[str, Any]] = [{} for _ in texts]
    todo = iter(range(len(texts)))
    lock = threading.Lock()
    start = threading.Barrier(workers)

    def client() -> None:
        with SlackDriver(driver.control_url, timeout=120) as own:
            start.wait()
            while True:
                with lock:
                    i = next(todo, None)
                if i is None:
                    return
                acks[i] = dict(own.command(AGENT, "/reset", texts[i], channel=channel))

    threads = [threading.Thread(target=client) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return acks


def _outcome(driver: SlackDriver, channel: str, tag: str, sent: int, *, timeout: float) -> tuple[int, int]:
    """(requests posted, duplicates) once every command tagged ``tag`` has been posted, or ``timeout`` passed."""
    def reasons() -> Counter[str]:
        found: Counter[str] = Counter()
        for m in driver.messages(channel):
            for word in str(m["blocks"]).split(f"{tag} ")[1:]:
                found[word[:4]] += 1
        return found

    with contextlib.suppress(AssertionError):  # what was not posted in time is counted as not posted
        driver.wait_for(lambda: len(reasons()) >= sent or None, timeout=timeout, what=f"{sent} {tag} requests")
    seen = reasons()
    return len(seen), sum(n - 1 for n in seen.values() if n > 1)


def _redelivered(driver: SlackDriver) -> int:
    return len([e for e in driver.envelopes("slash_commands") if e.get("retry_attempt")])


@contextmanager
def _process(args: list[str], env: dict[str, str], ready: str, log: Path) -> Iterator[subprocess.Popen[str]]:
    with log.open("w") as out:
        # this interpreter with our own arguments
        proc = subprocess.Popen(args, env=env, cwd=ROOT, text=True,  # noqa: S603
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            if ready in line:
                break
        else:
            raise RuntimeError(f"{args} exited before {ready!r}: see {log}")
        drain = threading.Thread(target=lambda: [out.write(x) for x in proc.stdout or []], daemon=True)
        drain.start()
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _connected(driver: SlackDriver, count: int) -> None:
    driver.wait_for(lambda: len([c for c in driver.connections() if c.get("ready")]) == count or None, timeout=60,
                    what=f"{count} Socket Mode connection(s)")


def _loads(lab: Lab, driver: SlackDriver, app: str, args: argparse.Namespace, settle: Callable[[str, int], tuple[
        int, int] | None]) -> list[Phase]:
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    phases = []
    for name, tag, count, workers in ((f"closed loop ({args.agents} agents, {args.commands})", "closed",
                                       args.commands, args.agents),
                                      (f"open loop ({args.burst} at once)", "burst", args.burst, args.burst)):
        driver.reset()
        acks = _fire(driver, [_reset_text(lab, i, f"bench-{tag}") for i in range(count)], helpdesk, workers)
        outcome = settle(f"bench-{tag}", count)
        phase = Phase(name, app, acks, redelivered=_redelivered(driver))
        if outcome is not None:
            phase.posted, phase.duplicates = outcome
        phases.append(phase)
    return phases


def _approvals(lab: Lab, driver: SlackDriver, entra: EntraControl, args: argparse.Namespace
               ) -> tuple[float, float | None]:
    """(idle ack ms, ack ms with ``--approvals`` resets held by Graph, None if not acked) of one unrelated
    /reset, for the bot."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    idle = statistics.median(_ack_ms(driver.command(AGENT, "/reset", _reset_text(lab, i, "bench-idle"),
                                                     channel=helpdesk)) for i in range(5))
    _outcome(driver, helpdesk, "bench-idle", 5, timeout=120)
    driver.reset()
    _fire(driver, [_reset_text(lab, i, "bench-held") for i in range(args.approvals)], helpdesk, args.approvals)
    _outcome(driver, helpdesk, "bench-held", args.approvals, timeout=300)
    requests = [m for m in driver.messages(helpdesk)
                if "bench-held" in str(m["blocks"]) and m["thread_ts"] in (None, m["ts"])]
    entra.faults(hold_operations=True)
    try:
        clicks = [threading.Thread(target=driver.click, args=(APPROVER, helpdesk, m["ts"], "request_approve"))
                  for m in requests]
        for t in clicks:
            t.start()
        for t in clicks:
            t.join()
        driver.wait_for(lambda: len([o for o in entra.operations() if o["held"]]) >= len(requests) or None,
                        timeout=120, what="Graph to hold every approved reset")
        unrelated = driver.command(AGENT, "/reset", _reset_text(lab, 0, "bench-unrelated"), channel=helpdesk)
        busy = _ack_ms(unrelated) if unrelated.get("acked") else None
    finally:
        entra.faults(hold_operations=False)
    return idle, busy


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--approvals", type=int, default=10)
    args = parser.parse_args()
    # The agent's device-code sign-in is set-up, not measured: a 1 s polling interval instead of Microsoft's 5 s.
    with tempfile.TemporaryDirectory() as tmp, Lab(Path(tmp) / "lab", device_code_interval_s=1) as lab, \
            SlackDriver(lab.descriptor["slack"]["control"], timeout=120) as driver:
        slack = lab.descriptor["slack"]
        helpdesk = slack["channels"]["helpdesk"]
        bare_env = {**os.environ, "BOT_TOKEN": slack["bot_token"], "APP_TOKEN": slack["app_token"],
                    "API_BASE": slack["api_base"]}
        with _process([sys.executable, "-c", BARE_APP], bare_env, "serving", Path(tmp) / "bare.log"):
            _connected(driver, 1)
            bare = _loads(lab, driver, "bare", args, lambda _tag, _n: None)
            bare_idle = statistics.median(_ack_ms(driver.command(AGENT, "/reset", "idle", channel=helpdesk))
                                          for _ in range(5))
        _connected(driver, 0)
        env = {**bot_environment(lab.descriptor, f"sqlite:///{Path(tmp) / 'resetbot.db'}"), **LOAD_ENV}
        # A burst at the lab's few people: see bench/many_open_bot.py for the one rule it relaxes.
        with _process([sys.executable, "-m", "bench.many_open_bot", "run"], env, "serving Slack over",
                      Path(tmp) / "bot.log"):
            _connected(driver, 1)
            link_agent(lab, driver, AGENT)
            bot = _loads(lab, driver, "bot", args,
                         lambda tag, n: _outcome(driver, helpdesk, tag, n, timeout=max(120.0, n * 2.0)))
            idle, held = _approvals(lab, driver, EntraControl(lab), args)
    print(f"ack burst: resetbot against a bare bolt app, lab Slack over Socket Mode, {os.cpu_count()} CPUs:")
    print(HEADER)
    for b, r in zip(bare, bot, strict=True):
        print(b.line())
        print(r.line())
        print(f"  {'':<34} bot/bare ack p99: {r.pct(99) / max(b.pct(99), 0.001):.1f}x")
    said = "NOT ACKED within 3 s" if held is None else f"ack {held:.1f} ms"
    ratio = "-" if held is None else f"{held / max(idle, 0.001):.1f}x"
    print(f"  {args.approvals} approvals held by Graph, one unrelated /reset: {said} "
          f"(idle {idle:.1f} ms; bare app idle {bare_idle:.1f} ms); ratio to idle {ratio}")


if __name__ == "__main__":
    main()

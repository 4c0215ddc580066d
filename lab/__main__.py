"""``resetbot-lab``: bring the lab up for people (the demo, manual testing, outside scripts).

    resetbot-lab up [--state-dir DIR] [--once] [--bot] [--device-code-interval SECONDS]
    resetbot-lab demo [--state-dir DIR]

Starts every stand-in on loopback, prints where everything is and who the seeded people are, writes the
descriptor, and keeps running until Ctrl-C or SIGTERM (``--once`` tears down right after printing). The
last line printed before it waits is ``descriptor: <path>``, which scripts read.

``--bot`` also runs the real bot (``resetbot run``, its own process) on the lab with the demo's settings, any
``RESETBOT_*`` variable in the environment overriding them, so benchmarks, evaluators and people trying the bot by
hand drive it through the control APIs without a launcher of their own. It is connected before the descriptor line
is printed, and stopped with the lab.

``--device-code-interval`` sets the polling interval the lab's Entra announces to device-code sign-ins (and enforces
with slow_down): Microsoft's 5 s by default; a script that links many agents may want 1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from lab.demo import BotExitedError, BotProcess, demo
from lab.entra.config import DEVICE_CODE_INTERVAL_RANGE_S, DEVICE_CODE_INTERVAL_S
from lab.errors import LabError
from lab.slack.driver import WaitTimeout
from lab.stack import Lab


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def _interval(text: str) -> int:
    """``--device-code-interval``: whole seconds within the bounds the Entra stand-in takes."""
    low, high = DEVICE_CODE_INTERVAL_RANGE_S
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"whole seconds from {low} to {high}, not {text!r}")
    return value


def summary(descriptor: dict[str, Any]) -> str:
    ad, slack = descriptor["ad"], descriptor["slack"]
    endpoints = [
        ("part", "endpoint", "notes"),
        ("AD (Samba)", ad["ldaps_url"], f"base {ad['base_dn']}, CA {ad['ca_file']}"),
        ("Slack Web API", slack["api_base"], f"team {slack['team_id']}, bot {slack['bot_user_id']}"),
        ("Slack driver", slack["control"], "act as a person: /command /click /submit /messages ..."),
    ]
    if "entra" in descriptor:
        entra = descriptor["entra"]
        endpoints.append(("Entra ID", entra["authority"], f"Graph {entra['graph_base']}"))
        endpoints.append(("Entra control", entra["control"], "faults, device sign-in, operations"))
    if "duo" in descriptor:
        duo = descriptor["duo"]
        endpoints.append(("Duo Auth API", f"https://{duo['api_host']}", f"control {duo['control']}"))
    people = [("key", "name", "upn", "groups", "entra roles", "flags", "manager")]
    for p in descriptor["people"]:
        people.append((
            p["key"], p["display_name"], p["upn"], ",".join(p["groups"]) or "-",
            ",".join(p["entra_roles"]) or "-", ",".join(p["flags"]) or "-", p["manager"] or "-",
        ))
    return f"{_table(endpoints)}\n\nSeeded people (passwords are in the descriptor):\n{_table(people)}"


def up(state_dir: Path, *, once: bool, bot: bool = False,
       device_code_interval_s: int = DEVICE_CODE_INTERVAL_S) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    lab = Lab(state_dir, device_code_interval_s=device_code_interval_s)
    print(f"Starting the lab in {lab.state_dir} ...", flush=True)
    try:
        descriptor = lab.start()
    except LabError as e:
        print(f"The lab did not start: {e}", file=sys.stderr)
        return 1
    with contextlib.ExitStack() as running:
        running.callback(lambda: print("Lab stopped.", file=sys.stderr, flush=True))
        running.callback(lab.stop)
        print(summary(descriptor))
        process = None
        if bot:
            overrides = {k: v for k, v in os.environ.items() if k.startswith("RESETBOT_")}
            process = BotProcess(lab, lab.state_dir, overrides=overrides)
            try:
                running.enter_context(process)
            except (BotExitedError, WaitTimeout) as e:
                print(f"The bot did not start: {e}", file=sys.stderr)
                return 1
            print(f"bot: resetbot run is connected; its log: {process.log_path}")
        if not once:
            print("Running. Press Ctrl-C (or send SIGTERM) to stop.")
        print(f"descriptor: {lab.descriptor_path}", flush=True)
        while not once and not stop.wait(0.5):
            if process is not None and (status := process.exited()) is not None:
                print(f"The bot stopped by itself (exit {status}); its log: {process.log_path}", file=sys.stderr)
                return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="resetbot-lab", description="The resetbot lab: local AD, Slack, Entra.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start the lab, print endpoints and people, run until Ctrl-C")
    p_up.add_argument("--state-dir", type=Path, default=Path(".lab"), help="where state and lab.json go")
    p_up.add_argument("--once", action="store_true", help="stop again right after printing")
    p_up.add_argument("--bot", action="store_true",
                      help="also run the bot on the lab (demo settings; RESETBOT_* variables override them)")
    p_up.add_argument("--device-code-interval", type=_interval, default=DEVICE_CODE_INTERVAL_S, metavar="SECONDS",
                      help="the polling interval announced to device-code sign-ins "
                           f"(default {DEVICE_CODE_INTERVAL_S}, Microsoft's)")
    p_demo = sub.add_parser("demo", help="bring the lab up, run the bot on it, play a helpdesk morning, stop")
    p_demo.add_argument("--state-dir", type=Path, default=Path(".lab"), help="where state and lab.json go")
    args = parser.parse_args(argv)
    if args.command == "up":
        return up(args.state_dir, once=args.once, bot=args.bot, device_code_interval_s=args.device_code_interval)
    if args.command == "demo":
        return demo(args.state_dir)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())

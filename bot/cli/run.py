"""``resetbot run``: serve Slack (Socket Mode or HTTP, see ``bot.serve``) until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import sys

from bot.cli import Subparsers
from bot.errors import ResetbotError
from bot.metrics import serve as serve_metrics
from bot.serve import Serving, serve_until_signalled
from bot.settings import SlackMode, load_settings
from bot.wiring import build_runtime


def register(sub: Subparsers) -> None:
    parser = sub.add_parser("run", help="serve Slack (Socket Mode or HTTP) until stopped")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT, then stop gracefully (work in flight finishes) and exit 0."""
    try:
        settings = load_settings()
        runtime = build_runtime(settings)
    except ResetbotError as e:  # settings, or a database that cannot be reached or is not at this code's schema
        print(f"resetbot cannot start: {e}", file=sys.stderr)
        return 2
    try:
        serve_metrics(port=settings.metrics_port, address=settings.metrics_address)  # a daemon thread, if set
    except ResetbotError as e:
        runtime.close(drain_s=0)
        print(f"resetbot cannot start: {e}", file=sys.stderr)
        return 2
    serving = Serving(settings, runtime)
    try:
        serve_until_signalled(serving)
    except OSError as e:  # raised by start(): the HTTP port cannot be bound, or Slack cannot be reached
        runtime.close(drain_s=0)
        where = (f"cannot listen on {settings.http_host}:{settings.http_port}" if settings.slack_mode == SlackMode.HTTP
                 else f"cannot connect to Slack over Socket Mode at {settings.slack_api_base}")
        print(f"resetbot cannot start: {where} ({e.strerror or e}).", file=sys.stderr)
        return 2
    return 0

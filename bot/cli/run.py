"""``resetbot run``: connect to Slack and serve until stopped."""

from __future__ import annotations

import argparse
import sys

from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient

from bot.app import create_app
from bot.cli import Subparsers
from bot.errors import ConfigError
from bot.jobs import start_scheduler
from bot.metrics import serve as serve_metrics
from bot.settings import load_settings
from bot.wiring import build_runtime


def register(sub: Subparsers) -> None:
    parser = sub.add_parser("run", help="connect to Slack (Socket Mode) and serve")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Connect over Socket Mode, sweep on schedule, and serve until interrupted."""
    try:
        settings = load_settings()
        runtime = build_runtime(settings)
        serve_metrics(port=settings.metrics_port, address=settings.metrics_address)  # a daemon thread, if set
    except ConfigError as e:
        print(f"resetbot cannot start: {e}", file=sys.stderr)
        return 2
    app = create_app(settings, runtime.services)
    scheduler = start_scheduler(runtime.services, sweep_seconds=settings.sweep_seconds)
    web = WebClient(base_url=settings.slack_api_base)
    handler = SocketModeHandler(app, settings.slack_app_token.get_secret_value(), web_client=web)
    try:
        handler.start()  # type: ignore[no-untyped-call]
    finally:
        scheduler.shutdown(wait=False)
        runtime.close()
    return 0

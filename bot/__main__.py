"""``resetbot``: the bot's command line."""

from __future__ import annotations

import argparse
import logging
import sys

from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient

from bot import __version__
from bot.app import create_app
from bot.errors import ConfigError
from bot.jobs import start_scheduler
from bot.settings import load_settings
from bot.wiring import build_runtime


def run() -> int:
    """Connect over Socket Mode, sweep on schedule, and serve until interrupted."""
    try:
        settings = load_settings()
        runtime = build_runtime(settings)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="resetbot", description="Password resets, approved and verified in Slack.")
    parser.add_argument("--version", action="version", version=f"resetbot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="connect to Slack (Socket Mode) and serve")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.command == "run":
        return run()
    return 2


if __name__ == "__main__":
    sys.exit(main())

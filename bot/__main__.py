"""``resetbot``: the bot's command line (each subcommand lives in its own module under ``bot.cli``)."""

from __future__ import annotations

import argparse
import sys

from bot import __version__, messages
from bot.cli import CommandModule
from bot.cli import audit as audit_command
from bot.cli import doctor as doctor_command
from bot.cli import migrate as migrate_command
from bot.cli import run as run_command
from bot.errors import ConfigError
from bot.logs import configure
from bot.settings import load_log_settings

COMMANDS: tuple[CommandModule, ...] = (run_command, migrate_command, audit_command, doctor_command)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="resetbot", description="Password resets, approved and verified in Slack.")
    parser.add_argument("--version", action="version", version=f"resetbot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    args = parser.parse_args(argv)
    try:
        logging_settings = load_log_settings()
    except ConfigError as e:
        print(messages.cli.cannot_start(str(e)), file=sys.stderr)
        return 2
    configure(level=logging_settings.log_level, fmt=logging_settings.log_format)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())

"""``resetbot``: the bot's command line (each subcommand lives in its own module under ``bot.cli``)."""

from __future__ import annotations

import argparse
import logging
import sys

from bot import __version__
from bot.cli import CommandModule
from bot.cli import audit as audit_command
from bot.cli import doctor as doctor_command
from bot.cli import migrate as migrate_command
from bot.cli import run as run_command

COMMANDS: tuple[CommandModule, ...] = (run_command, migrate_command, audit_command, doctor_command)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="resetbot", description="Password resets, approved and verified in Slack.")
    parser.add_argument("--version", action="version", version=f"resetbot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())

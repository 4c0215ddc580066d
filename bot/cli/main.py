"""``resetbot``'s command line: the parser, and the subcommand's module (one per command under ``bot.cli``).

Only the named command's module is imported: ``resetbot run`` never loads the doctor's checks, the audit export or
the migrations' command (tens of milliseconds at every start of the service, issue 13). ``resetbot --help``, no
command, or a name that is not a command load them all, so that argparse lists every command or says which exist.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import import_module
from typing import cast

from bot import __version__, messages
from bot.cli import CommandModule, start_heap
from bot.errors import ConfigError
from bot.logs import configure
from bot.settings import load_log_settings

#: Each command's name and the module that registers it, in the order ``--help`` lists them.
COMMANDS: dict[str, str] = {
    "run": "bot.cli.run",
    "migrate": "bot.cli.migrate",
    "audit": "bot.cli.audit",
    "doctor": "bot.cli.doctor",
}


def command_modules(argv: Sequence[str]) -> list[CommandModule]:
    """The module of the command ``argv`` names, or every command's when it names none (or an unknown one).
    ``resetbot`` itself takes only flags without values (``--help``, ``--version``), so the command is the first
    argument that is not a flag."""
    named = next((arg for arg in argv if not arg.startswith("-")), None)
    wanted = [COMMANDS[named]] if named in COMMANDS else list(COMMANDS.values())
    return [cast(CommandModule, import_module(name)) for name in wanted]


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="resetbot", description="Password resets, approved and verified in Slack.")
    parser.add_argument("--version", action="version", version=f"resetbot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in command_modules(args_in):
        command.register(sub)
    args = parser.parse_args(args_in)
    if args.command != "run":  # only `run` keeps the collector paused, until Slack is connected (start_heap)
        start_heap.resume()
    try:
        logging_settings = load_log_settings()
    except ConfigError as e:
        print(messages.cli.cannot_start(str(e)), file=sys.stderr)
        return 2
    configure(level=logging_settings.log_level, fmt=logging_settings.log_format)
    code: int = args.handler(args)
    return code

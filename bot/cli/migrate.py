"""``resetbot migrate``: bring the database schema up to date, for teams that migrate as a separate step
(``resetbot run`` also does it on start unless ``RESETBOT_MIGRATE_ON_START`` is off)."""

from __future__ import annotations

import argparse
import sys

from bot import messages, schema
from bot.cli import Subparsers
from bot.cli.database import open_database
from bot.errors import ResetbotError


def register(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "migrate", help="apply pending schema migrations (needs only RESETBOT_DATABASE_URL; safe to run again)")
    parser.set_defaults(handler=migrate)


def migrate(args: argparse.Namespace) -> int:
    """Apply what is pending, under the lock that lets replicas do the same at once; say what was applied."""
    try:
        engine = open_database(must_exist=False)
    except ResetbotError as e:
        print(f"resetbot migrate: {e}", file=sys.stderr)
        return 2
    try:
        where = schema.describe(engine)
        applied = schema.upgrade(engine)
        if applied:
            print(messages.cli.migrated(applied, where))
        else:
            print(messages.cli.already_migrated(schema.current(engine), where))
    except ResetbotError as e:
        print(f"resetbot migrate: {e}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    return 0

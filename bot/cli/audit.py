"""``resetbot audit export|verify``: hand the audit trail to an auditor, and prove it was not altered.

Both read only the database (``RESETBOT_DATABASE_URL``), in one read-only transaction, so they run anywhere the
database is reachable. Exit codes: 0 done (chain intact), 1 the chain is broken, 2 bad input or no usable
database.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from bot import messages, store
from bot.cli import Subparsers
from bot.cli.database import open_database, require_table
from bot.db import make_session_factory
from bot.domain.audit import to_csv, to_json, verify_chain
from bot.errors import ResetbotError

FORMATS = {"csv": to_csv, "json": to_json}


def register(sub: Subparsers) -> None:
    parser = sub.add_parser("audit", help="export or verify the hash-chained audit trail")
    audit_sub = parser.add_subparsers(dest="audit_command", required=True, metavar="{export,verify}")
    export = audit_sub.add_parser("export", help="write the events of a period as CSV or JSON")
    export.add_argument("--since", required=True, type=parse_instant, metavar="WHEN",
                        help="first instant, ISO 8601: 2025-03-04, 2025-03-04T09:30 (UTC) or with an offset")
    export.add_argument("--until", type=parse_instant, metavar="WHEN", help="end (excluded); default: now")
    export.add_argument("--format", required=True, choices=sorted(FORMATS))
    export.add_argument("--output", metavar="FILE", help="write to FILE instead of standard output")
    export.set_defaults(handler=export_command)
    verify = audit_sub.add_parser("verify", help="walk the hash chain; exit 1 and name the first bad event")
    verify.set_defaults(handler=verify_command)


def parse_instant(text: str) -> datetime:
    """An ISO 8601 date or date-time; without an offset it is UTC (the trail's own zone)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(messages.audit.bad_instant(text)) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def export_command(args: argparse.Namespace) -> int:
    since: datetime = args.since
    until: datetime | None = args.until
    if until is not None and until <= since:
        print(f"resetbot audit export: {messages.audit.bad_interval(since, until)}", file=sys.stderr)
        return 2
    try:
        with _snapshot() as session:
            events = list(store.audit.audit_between(session, since=since, until=until))
    except ResetbotError as e:
        print(f"resetbot audit export: {e}", file=sys.stderr)
        return 2
    text = FORMATS[args.format](events)
    if args.output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return 0
    try:
        Path(args.output).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    except OSError as e:
        print(f"resetbot audit export: {messages.audit.cannot_write(args.output, e.strerror or type(e).__name__)}",
              file=sys.stderr)
        return 2
    print(messages.audit.audit_exported(len(events), args.output), file=sys.stderr)
    return 0


def verify_command(args: argparse.Namespace) -> int:
    try:
        with _snapshot() as session:
            head = store.audit.get_audit_head(session)
            result = verify_chain(store.audit.iter_audit(session), head=head)
    except ResetbotError as e:
        print(f"resetbot audit verify: {e}", file=sys.stderr)
        return 2
    if result.ok:
        print(messages.audit.chain_intact(result.checked))
        return 0
    print(messages.audit.chain_broken(result.first_bad_seq, result.reason, result.checked))
    return 1


@contextmanager
def _snapshot() -> Iterator[Session]:
    """One read-only transaction over the trail. On PostgreSQL it is REPEATABLE READ, so the head and the events
    are read from one snapshot even while the bot appends (READ COMMITTED would let verify see an event newer
    than the head it read and call the chain broken); SQLite's read transaction is one snapshot already."""
    engine = open_database(must_exist=True)
    try:
        require_table(engine, "audit_event")
        bind: Engine = engine
        if engine.dialect.name == "postgresql":
            bind = engine.execution_options(isolation_level="REPEATABLE READ")
        with make_session_factory(bind, read_only=True).begin() as session:
            yield session
    finally:
        engine.dispose()

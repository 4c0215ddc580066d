"""``resetbot audit export | verify``: what an export wrote and what the chain's check found."""

from __future__ import annotations

from datetime import datetime


def bad_instant(text: str) -> str:
    return (f"{text!r} is not an ISO 8601 date or date-time; write e.g. 2025-03-04, 2025-03-04T09:30 (UTC) or "
            "2025-03-04T09:30+01:00.")


def bad_interval(since: datetime, until: datetime) -> str:
    return f"--until ({until.isoformat()}) must come after --since ({since.isoformat()})."


def cannot_write(path: str, reason: str) -> str:
    return f"Cannot write {path}: {reason}."


def audit_exported(count: int, path: str) -> str:
    return f"Exported {count} audit event{'' if count == 1 else 's'} to {path}."


def chain_intact(count: int) -> str:
    return f"{count} event{'' if count == 1 else 's'}, chain intact."


def chain_broken(first_bad_seq: int | None, reason: str, checked: int) -> str:
    at = f" at event {first_bad_seq}" if first_bad_seq is not None else ""
    return f"The audit chain is broken{at}: {reason}. ({checked} events before it are intact.)"

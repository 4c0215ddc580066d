"""Helpers shared by the storage tests: a fixed clock, audit drafts, request creation, racing threads."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from bot import store
from bot.domain.audit import AuditAction, AuditDraft
from bot.domain.lifecycle import deadlines
from bot.models import ResetRequest

#: A fixed "now" for tests that reason about deadlines; no test sleeps.
T0 = datetime(2025, 3, 4, 9, 0, 0, 123456, tzinfo=UTC)

T = TypeVar("T")


def draft(action: str = AuditAction.APPROVED, actor: str = "U0APPROVER", **kw: Any) -> AuditDraft:
    return AuditDraft(actor=actor, action=action, correlation_id=kw.pop("correlation_id", "c-1"), **kw)


def new_request(factory: sessionmaker[Session], *, created_at: datetime = T0, **kw: Any) -> ResetRequest:
    """Create a pending request (30 min TTL from ``created_at``) and commit it."""
    due = deadlines(created_at, kw.pop("ttl", timedelta(minutes=30)))
    fields: dict[str, Any] = {
        "requester": "U0AGENT",
        "requester_display": "Agent Smith",
        "target_entra_id": "00000000-0000-0000-0000-00000000beef",
        "target_upn": "Jane.Doe@Contoso.example",
        "target_display": "Jane Doe",
        "target_sam": "jdoe",
        "target_dn": "CN=Jane Doe,OU=Staff,DC=contoso,DC=example",
        "reason": "locked out after holiday",
    }
    fields.update(kw)
    with factory.begin() as session:
        created = store.requests.create_request(
            session,
            escalate_at=due.escalate_at,
            expires_at=due.expires_at,
            created_at=created_at,
            audit=draft(AuditAction.REQUESTED, actor=fields["requester"]),
            **fields,
        )
        assert created is not None
        return created


def run_concurrently(n: int, work: Callable[[int], T]) -> list[T]:
    """Run ``work(0..n-1)`` on n threads released at the same instant; re-raises the first exception."""
    barrier = threading.Barrier(n)

    def start(i: int) -> T:
        barrier.wait(timeout=30)
        return work(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(start, range(n)))


def run_resetbot(*args: str, database_url: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m bot ARGS`` as an operator runs it: a real process whose only setting is the database URL
    (every other RESETBOT_ variable removed, and a working folder with no .env), plus ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RESETBOT_")}
    clean |= {"RESETBOT_DATABASE_URL": database_url, **env}
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, env=clean, capture_output=True, text=True,
                          timeout=120, check=False)

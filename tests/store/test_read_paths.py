"""What only looks reads without the write lock (issue 13, part 5): ``/reset-status``, App Home and the sweep's
"what is due?" answer while a reset or a request is being written, on SQLite (DEFERRED: no wait for the write lock)
and on PostgreSQL (READ ONLY: the same paths write nothing, or they would fail there)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from bot import store
from bot.clients.directory import Directory
from bot.clients.slack_notify import Notifier
from bot.db import make_engine, make_session_factory
from bot.domain.lifecycle import RequestState
from bot.schema import upgrade
from bot.services.requests import RequestRules, RequestService
from bot.services.resolve import TargetResolver
from bot.settings import ApproverSource, TargetConfirmation
from tests.store.helpers import T0, new_request

pytest_plugins = ("tests.store.dbfixtures",)

AGENTS = "helpdesk"
AGENT = "U0AGENT"


class Slack:
    """The Slack the views talk to: the agents' group, and the App Homes published (what a person sees)."""

    def __init__(self) -> None:
        self.homes: dict[str, dict[str, Any]] = {}

    def group_members(self, handle: str, *, max_age: float = 0) -> frozenset[str]:
        return frozenset({AGENT}) if handle == AGENTS else frozenset()

    def group_id(self, handle: str) -> str | None:
        return None

    def publish_home(self, user: str, view: dict[str, Any], *, only_if_changed: bool = False) -> None:
        self.homes[user] = view


def _service(writes: sessionmaker[Session], reads: sessionmaker[Session], slack: Slack) -> RequestService:
    rules = RequestRules(agents_group=AGENTS, approvers_group=None, approver_source=ApproverSource.MANAGER,
                         ttl=timedelta(minutes=30), target_confirmation=TargetConfirmation.OFF,
                         protected_group_dns=(), protected_allowed=(), requests_channel=None, security_channel=None)
    return RequestService(begin=writes.begin, reads=reads.begin, notifier=cast(Notifier, slack),
                          resolver=cast(TargetResolver, object()), directory=cast(Directory, object()),
                          rules=rules, clock=lambda: T0)


def test_status_and_app_home_answer_while_a_writer_holds_the_sqlite_lock(tmp_path: Path) -> None:
    """Before: every view began IMMEDIATE and queued behind whatever was being written (here it gives up after
    its busy timeout: "database is locked"); a reset's transitions and a burst's requests made people wait."""
    engine = make_engine(f"sqlite:///{tmp_path / 'resetbot.db'}", busy_timeout_s=0.2)
    upgrade(engine)
    writes, reads = make_session_factory(engine), make_session_factory(engine, read_only=True)
    made = new_request(writes)
    slack = Slack()
    service = _service(writes, reads, slack)
    with writes.begin() as holding:
        holding.execute(text("SELECT 1"))  # a write transaction: SQLite's one write lock is held from BEGIN
        listed = service.status(actor=AGENT, text="")
        timeline = service.status(actor=AGENT, text=made.id)
        service.home(user=AGENT)
        assert service.sweep(now=T0) == (0, 0)  # nothing due yet: the sweep only looked
        with pytest.raises(OperationalError, match="database is locked"), writes.begin() as second:
            second.execute(text("SELECT 1"))  # a writer still waits for the lock: only the reads went past it
    assert made.id in listed
    assert made.id in timeline
    assert made.id in str(slack.homes[AGENT])
    engine.dispose()


def test_views_and_sweeps_write_nothing_through_their_read_only_transactions(engine: Engine) -> None:
    """On PostgreSQL the read-only transactions are READ ONLY: a view or a sweep's look that wrote would fail."""
    writes, reads = make_session_factory(engine), make_session_factory(engine, read_only=True)
    made = new_request(writes)
    slack = Slack()
    service = _service(writes, reads, slack)
    assert made.id in service.status(actor=AGENT, text="")
    assert made.id in service.status(actor=AGENT, text=made.id)
    service.home(user=AGENT)
    assert made.id in str(slack.homes[AGENT])
    # Past its deadline the request expires: the look is read-only, the expiry itself a write (a CAS transition).
    service.sweep(now=T0 + timedelta(hours=2))
    with reads.begin() as session:
        req = store.requests.get_request(session, request_id=made.id)
    assert req is not None and req.state == RequestState.EXPIRED

"""HTTP mode's replay refusal without a database write before the ack (bot.services.replay, bot.app.refuse_replays,
handlers.work): Slack's ack never waits for the database, and a replayed request is still served at most once,
whichever replica it reaches, a request refused "busy" included.

Each "replica" is a real bolt App with the bot's listeners (stand-in services, as in test_ack_path) and its own
``ReplayGuard``, all on one SQLite file, driven with signed-looking HTTP-mode requests (the signature check itself
is bolt's, tested on the lab in tests/scenarios/test_http_mode.py).
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode

import pytest
from slack_bolt import BoltRequest
from slack_sdk import WebClient

from bot.app import refuse_replays
from bot.db import make_engine, make_session_factory
from bot.schema import upgrade
from bot.services.registry import Services
from bot.services.replay import ReplayGuard
from handlers import register
from handlers.context import CorrelatedApp
from handlers.work import DEFAULT_LANES, Lane, LaneSize, WorkPool
from tests.unit.test_ack_path import WAIT, FakeHealth, FakeRequests, Gate, Recorder, ack_body

pytest_plugins = ("tests.unit.test_ack_path",)  # its recorder and gate fixtures


def _replica(recorder: Recorder, requests: FakeRequests, guard: ReplayGuard, pool: WorkPool) -> CorrelatedApp:
    """What ``bot.app.create_app`` builds in HTTP mode, minus bolt's signature check."""
    app = CorrelatedApp(client=WebClient(token="xoxb-test", base_url=recorder.base), signing_secret="",
                        token_verification_enabled=False, request_verification_enabled=False,
                        process_before_response=True)
    app.use(refuse_replays(guard))
    services = Services(requests=cast(Any, requests), reset=cast(Any, None), links=cast(Any, None),
                        followups=cast(Any, None), health=cast(Any, FakeHealth()), outbox=cast(Any, None))
    register(app, services, pool)
    return app


def signed_command(recorder: Recorder, text: str, *, signature: str) -> BoltRequest:
    body = urlencode({"command": "/reset", "text": text, "user_id": "U0000HANK", "channel_id": "C0HELP",
                      "team_id": "T1", "trigger_id": f"trigger-{text}",
                      "response_url": f"{recorder.base}respond/{text}"})
    return BoltRequest(body=body, headers={"content-type": ["application/x-www-form-urlencoded"],
                                           "x-slack-signature": [signature],
                                           "x-slack-request-timestamp": ["1700000000"]})


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "resetbot.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


def _guard(db: Path) -> ReplayGuard:
    return ReplayGuard(make_session_factory(make_engine(f"sqlite:///{db}", busy_timeout_s=2.0)).begin)


def test_the_ack_does_not_wait_for_a_database_another_writer_holds(recorder: Recorder, gate: Gate,
                                                                   db: Path) -> None:
    """Before: the signature was written before the ack, queued behind the writer (a reset, a burst), and past the
    busy timeout the request failed instead of being acked."""
    requests = FakeRequests(gate)
    pool = WorkPool()
    app = _replica(recorder, requests, _guard(db), pool)
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another transaction holds SQLite's one write lock
    try:
        acked = app.dispatch(signed_command(recorder, "while-writing", signature="v0=" + "1" * 64))
    finally:
        writer.execute("COMMIT")
        writer.close()
    assert ack_body(acked) == {}
    assert gate.wait_started() == "while-writing"  # the work ran once the writer was done
    gate.open.set()
    assert recorder.next("respond/while-writing")["text"] == "Request for while-writing posted."
    assert pool.wait_idle(WAIT)


def test_a_replay_is_refused_at_once_here_and_does_nothing_on_another_replica(
        recorder: Recorder, gate: Gate, db: Path, caplog: pytest.LogCaptureFixture) -> None:
    requests = FakeRequests(gate)
    gate.open.set()
    pools = [WorkPool(), WorkPool()]
    here, there = (_replica(recorder, requests, _guard(db), pool) for pool in pools)
    signature = "v0=" + "2" * 64
    assert ack_body(here.dispatch(signed_command(recorder, "once", signature=signature))) == {}
    assert recorder.next("respond/once")["text"] == "Request for once posted."
    assert pools[0].wait_idle(WAIT)

    assert here.dispatch(signed_command(recorder, "once", signature=signature)).status == 401
    caplog.set_level(logging.WARNING, logger="resetbot.work")
    assert ack_body(there.dispatch(signed_command(recorder, "once", signature=signature))) == {}
    assert pools[1].wait_idle(WAIT)
    assert requests.created == ["once"], "the copy did nothing"
    assert not [c for c in recorder.drained() if "once" in c[0]], "and said nothing"
    assert "another replica served first" in caplog.text


def test_a_request_refused_busy_is_not_served_later_from_a_copy(recorder: Recorder, gate: Gate, db: Path) -> None:
    requests = FakeRequests(gate)
    lanes = {lane: DEFAULT_LANES[lane] for lane in Lane} | {Lane.WORK: LaneSize(threads=1, queue=0)}
    busy_pool, other_pool = WorkPool(lanes), WorkPool()
    here = _replica(recorder, requests, _guard(db), busy_pool)
    there = _replica(recorder, requests, _guard(db), other_pool)
    assert ack_body(here.dispatch(signed_command(recorder, "filler", signature="v0=" + "3" * 64))) == {}
    assert gate.wait_started() == "filler"
    refused = signed_command(recorder, "refused", signature="v0=" + "4" * 64)
    assert ack_body(here.dispatch(refused))["text"].startswith("I'm too busy")
    gate.open.set()
    assert busy_pool.wait_idle(WAIT)  # the refusal's record is written as a notice task: done by now
    copy = signed_command(recorder, "refused", signature="v0=" + "4" * 64)
    assert ack_body(there.dispatch(copy)) == {}
    assert other_pool.wait_idle(WAIT)
    assert requests.created == ["filler"], "what the person was told was not done was not done by a copy either"


def test_a_refusal_is_never_recorded_on_the_ack_thread(recorder: Recorder, gate: Gate, db: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """When even the busy notices are backed up, the refused request's record is skipped (and logged) rather than
    written before the ack: a database write there could hold the ack past Slack's 3 s when the bot is busiest."""
    requests = FakeRequests(gate)
    lanes = {lane: DEFAULT_LANES[lane] for lane in Lane} | {Lane.WORK: LaneSize(threads=1, queue=0)}
    pool = WorkPool(lanes)
    app = _replica(recorder, requests, _guard(db), pool)
    assert ack_body(app.dispatch(signed_command(recorder, "filler", signature="v0=" + "5" * 64))) == {}
    assert gate.wait_started() == "filler"
    pool.notify = lambda task: False  # type: ignore[method-assign]  # the notices are backed up too
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # and another transaction holds SQLite's one write lock
    caplog.set_level(logging.WARNING, logger="resetbot.work")
    try:
        refused = app.dispatch(signed_command(recorder, "refused", signature="v0=" + "6" * 64))
    finally:
        writer.execute("COMMIT")
        writer.close()
    assert refused.status == 200 and ack_body(refused)["text"].startswith("I'm too busy")
    assert "could not record a refused request against replays" in caplog.text
    gate.open.set()
    assert pool.wait_idle(WAIT)

"""The ack path (handlers/work.py) through the real bolt App: every request is acked at once whatever the work pool
is doing, a full lane tells the person "busy" and starts nothing, modals never wait behind other work, and a
failure in the work reaches the person through the one error handler.

The app is driven with ``app.dispatch`` (as slack-bolt's own tests do); its Web API calls and response-URL answers
go to a small local HTTP recorder, so what is asserted is what Slack would have received. The services behind the
listeners are stand-ins whose work waits on a gate the test opens: "busy" is made, never raced or timed.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs

import pytest
from slack_bolt import BoltRequest, BoltResponse
from slack_sdk import WebClient

from bot import messages
from bot.domain.health_state import HealthReport, HealthState
from bot.services.registry import Services
from handlers import register
from handlers.context import CorrelatedApp
from handlers.work import (
    DEFAULT_LANES,
    MODAL_STALE_AFTER_S,
    WORK_MAY_WAIT_S,
    Lane,
    LaneSize,
    WorkPool,
    work_lanes,
)

WAIT = 10.0  # seconds an awaited event may take on a loaded machine before the test fails


@dataclass
class Recorder:
    """Every Web API call and response-URL post the app makes: ``(path, fields)`` in arrival order."""

    calls: queue.Queue[tuple[str, dict[str, Any]]] = field(default_factory=queue.Queue)
    base: str = ""

    def next(self, path_part: str) -> dict[str, Any]:
        """The next recorded call whose path contains ``path_part`` (others are dropped)."""
        while True:
            try:
                path, fields = self.calls.get(timeout=WAIT)
            except queue.Empty:
                raise AssertionError(f"no call to {path_part}") from None
            if path_part in path:
                return fields

    def drained(self) -> list[tuple[str, dict[str, Any]]]:
        out = []
        while not self.calls.empty():
            out.append(self.calls.get_nowait())
        return out


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            try:
                fields: dict[str, Any] = json.loads(raw)
            except ValueError:
                fields = {k: v[0] for k, v in parse_qs(raw).items()}
            rec.calls.put((self.path, fields))
            body = json.dumps({"ok": True, "view": {"id": "V1"}, "ts": "1.1", "channel": "D1"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    rec.base = f"http://127.0.0.1:{server.server_address[1]}/"
    yield rec
    server.shutdown()
    server.server_close()


class Gate:
    """Work that waits until the test opens it, and says when it started."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.started: queue.Queue[str] = queue.Queue()

    def hold(self, what: str) -> None:
        self.started.put(what)
        assert self.open.wait(WAIT), "the test never opened the gate"

    def wait_started(self) -> str:
        return self.started.get(timeout=WAIT)


@pytest.fixture
def gate() -> Iterator[Gate]:
    held = Gate()
    yield held
    held.open.set()  # a failed test leaves no worker waiting


class FakeRequests:
    """The request service's surface the listeners use; ``create`` holds on the gate."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.created: list[str] = []

    def create(self, *, requester: str, channel: str, text: str, correlation_id: str,
               source_key: str | None = None) -> str | None:
        self.gate.hold(text)
        if text == "boom":
            raise RuntimeError("the database fell over")
        self.created.append(text)
        return f"Request for {text} posted."

    def approve(self, *, request_id: str, actor: str, correlation_id: str, view: str | None = None) -> str | None:
        self.gate.hold(f"approve {request_id}")
        return None

    def confirm(self, *, request_id: str, actor: str, yes: bool, correlation_id: str) -> str | None:
        return f"{'Yes' if yes else 'No'} to {request_id} recorded."

    def can_decide(self, *, request_id: str, actor: str, correlation_id: str) -> str | None:
        return None

    def cancel(self, *, request_id: str, actor: str, correlation_id: str) -> str | None:
        return f"{request_id} cancelled."

    def deny(self, *, request_id: str, actor: str, reason: str, correlation_id: str) -> str | None:
        return f"{request_id} denied."

    def home(self, *, user: str, health: object = None) -> None:
        self.gate.hold(f"home {user}")


NO_ROUND_YET = HealthReport(state=HealthState.UNKNOWN, checks=(), transitions=())


class FakeHealth:
    def report(self) -> HealthReport:
        return NO_ROUND_YET


def _app(recorder: Recorder, pool: WorkPool, requests: FakeRequests) -> CorrelatedApp:
    app = CorrelatedApp(client=WebClient(token="xoxb-test", base_url=recorder.base), signing_secret="",
                        token_verification_enabled=False, request_verification_enabled=False,
                        process_before_response=True)
    services = Services(requests=cast(Any, requests), reset=cast(Any, None), links=cast(Any, None),
                        followups=cast(Any, None), health=cast(Any, FakeHealth()), outbox=cast(Any, None))
    register(app, services, pool)
    return app


def _small_pool(**sizes: LaneSize) -> WorkPool:
    lanes = {lane: sizes.get(str(lane), DEFAULT_LANES[lane]) for lane in Lane}
    return WorkPool(lanes)


def command(recorder: Recorder, text: str, *, name: str = "/reset", user: str = "U0000HANK") -> BoltRequest:
    return BoltRequest(mode="socket_mode", body={
        "command": name, "text": text, "user_id": user, "channel_id": "C0HELP", "team_id": "T1",
        "trigger_id": f"trigger-{text}", "response_url": f"{recorder.base}respond/{text}"})


def click(recorder: Recorder, action_id: str, value: str, *, user: str = "U000MONA") -> BoltRequest:
    return BoltRequest(mode="socket_mode", body={
        "type": "block_actions", "user": {"id": user}, "team": {"id": "T1"}, "trigger_id": "trigger-click",
        "container": {"channel_id": "C0HELP", "message_ts": "1.1"}, "channel": {"id": "C0HELP"},
        "actions": [{"action_id": action_id, "block_id": "b", "value": value, "type": "button"}],
        "response_url": f"{recorder.base}respond/{action_id}"})


def deny_submit(reason: str, *, user: str = "U000MONA") -> BoltRequest:
    return BoltRequest(mode="socket_mode", body={
        "type": "view_submission", "user": {"id": user}, "team": {"id": "T1"},
        "view": {"id": "V1", "type": "modal", "callback_id": "deny_reason", "private_metadata": "R-ABC123|C0HELP",
                 "state": {"values": {"deny_reason": {"deny_reason_input": {"type": "plain_text_input",
                                                                            "value": reason}}}}}})


def home_opened(user: str = "U000MONA") -> BoltRequest:
    return BoltRequest(mode="socket_mode", body={
        "type": "event_callback", "team_id": "T1", "event": {"type": "app_home_opened", "user": user, "tab": "home"}})


def ack_body(resp: BoltResponse) -> dict[str, Any]:
    """The ack's payload: bolt sends a text-only ack as the plain text, anything else as JSON."""
    assert resp.status == 200, resp.body
    if not resp.body:
        return {}
    try:
        return cast(dict[str, Any], json.loads(resp.body))
    except ValueError:
        return {"text": resp.body}


def busy_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "resetbot.work" and r.getMessage().startswith("busy:")]


def test_a_full_lane_acks_at_once_tells_busy_in_the_ack_and_starts_nothing(
        recorder: Recorder, gate: Gate, caplog: pytest.LogCaptureFixture) -> None:
    requests = FakeRequests(gate)
    pool = _small_pool(work=LaneSize(threads=1, queue=1))
    app = _app(recorder, pool, requests)

    assert ack_body(app.dispatch(command(recorder, "first"))) == {}
    assert gate.wait_started() == "first"  # the one worker is busy with it
    assert ack_body(app.dispatch(command(recorder, "second"))) == {}  # acked, waits in the queue
    refused = ack_body(app.dispatch(command(recorder, "third")))  # the lane is full
    assert refused["text"].startswith("I'm too busy to take this on right now and have not started it")
    assert len(busy_records(caplog)) == 1, "a refusal is logged once"

    gate.open.set()
    assert recorder.next("respond/first")["text"] == "Request for first posted."
    assert recorder.next("respond/second")["text"] == "Request for second posted."
    assert pool.wait_idle(WAIT)
    assert requests.created == ["first", "second"], "the refused command started nothing"
    assert not [c for c in recorder.drained() if "third" in c[0]], "and said nothing after its ack"
    # With room again, the same command is taken.
    assert ack_body(app.dispatch(command(recorder, "third"))) == {}
    assert recorder.next("respond/third")["text"] == "Request for third posted."


def test_a_click_on_a_full_lane_is_acked_and_told_busy_through_its_response_url(
        recorder: Recorder, gate: Gate, caplog: pytest.LogCaptureFixture) -> None:
    pool = _small_pool(decision=LaneSize(threads=1, queue=0))
    app = _app(recorder, pool, FakeRequests(gate))
    assert ack_body(app.dispatch(click(recorder, "request_approve", "R-AAAAAA"))) == {}
    assert gate.wait_started() == "approve R-AAAAAA"
    assert ack_body(app.dispatch(click(recorder, "request_approve", "R-BBBBBB"))) == {}
    told = recorder.next("respond/request_approve")
    assert told["text"].startswith("I'm too busy") and told["response_type"] == "ephemeral"
    assert told["replace_original"] is False, "the request message itself stays as it was"
    gate.open.set()
    assert pool.wait_idle(WAIT)
    assert len(busy_records(caplog)) == 1


def test_the_targets_no_is_heard_while_commands_fill_their_lane(recorder: Recorder, gate: Gate) -> None:
    """Any workspace member may send ``/reset-status``: a flood of commands fills their lane, and the target's "No"
    to a reset they did not ask for is still taken, not told "busy" (attacker review of issue 14)."""
    pool = _small_pool(work=LaneSize(threads=1, queue=0))
    app = _app(recorder, pool, FakeRequests(gate))
    app.dispatch(command(recorder, "filler"))
    assert gate.wait_started() == "filler"
    assert ack_body(app.dispatch(command(recorder, "flood")))["text"].startswith("I'm too busy")
    assert ack_body(app.dispatch(click(recorder, "target_confirm_no", "R-AAAAAA", user="U00ALICE"))) == {}
    said = recorder.next("respond/target_confirm_no")
    assert said["text"] == "No to R-AAAAAA recorded."
    gate.open.set()
    assert pool.wait_idle(WAIT)


def test_a_deny_reason_on_a_full_lane_keeps_the_modal_open_with_the_busy_sentence(
        recorder: Recorder, gate: Gate) -> None:
    pool = _small_pool(decision=LaneSize(threads=1, queue=0))
    app = _app(recorder, pool, FakeRequests(gate))
    app.dispatch(click(recorder, "request_approve", "R-AAAAAA"))
    gate.wait_started()
    answer = ack_body(app.dispatch(deny_submit("the person is on holiday")))
    assert answer["response_action"] == "errors"
    assert answer["errors"]["deny_reason"].startswith("I'm too busy")
    # A reason too short is answered in the ack whatever the pool is doing: no work needed.
    short = ack_body(app.dispatch(deny_submit("no")))
    assert short["errors"]["deny_reason"] == messages.requests.deny_reason_too_short()
    gate.open.set()
    assert pool.wait_idle(WAIT)


def test_a_deny_and_a_cancel_go_ahead_while_commands_fill_the_work_lane(recorder: Recorder, gate: Gate) -> None:
    """A flood of ``/reset`` or ``/reset-status`` (any member may send them) must not hold back the person who stops
    a reset while a second approver's Approve goes ahead in the decision lane."""
    pool = _small_pool(work=LaneSize(threads=1, queue=0))
    app = _app(recorder, pool, FakeRequests(gate))
    app.dispatch(command(recorder, "filler"))
    gate.wait_started()
    assert ack_body(app.dispatch(deny_submit("the caller could not say where she works"))) == {}
    assert recorder.next("chat.postEphemeral")["text"] == "R-ABC123 denied."
    assert ack_body(app.dispatch(click(recorder, "request_cancel", "R-BBBBBB", user="U0000HANK"))) == {}
    assert recorder.next("respond/request_cancel")["text"] == "R-BBBBBB cancelled."
    gate.open.set()
    assert pool.wait_idle(WAIT)


def test_modals_open_while_every_other_lane_is_full(recorder: Recorder, gate: Gate) -> None:
    """Deny's modal needs the click's trigger_id within 3 s: it never queues behind commands or resets."""
    pool = _small_pool(work=LaneSize(threads=1, queue=0), decision=LaneSize(threads=1, queue=0))
    app = _app(recorder, pool, FakeRequests(gate))
    app.dispatch(command(recorder, "filler"))
    app.dispatch(click(recorder, "request_approve", "R-AAAAAA"))
    assert {gate.wait_started(), gate.wait_started()} == {"filler", "approve R-AAAAAA"}
    assert ack_body(app.dispatch(click(recorder, "request_deny", "R-CCCCCC"))) == {}
    opened = recorder.next("views.open")
    assert opened["trigger_id"] == "trigger-click"
    assert "R-CCCCCC" in json.dumps(opened["view"])
    gate.open.set()
    assert pool.wait_idle(WAIT)


def test_a_modal_whose_trigger_would_be_spent_tells_busy_instead_of_failing(recorder: Recorder, gate: Gate) -> None:
    times = iter([0.0, MODAL_STALE_AFTER_S + 0.5])  # offered at 0 s, started after the trigger's useful life
    pool = WorkPool(DEFAULT_LANES, clock=lambda: next(times))
    app = _app(recorder, pool, FakeRequests(gate))
    assert ack_body(app.dispatch(click(recorder, "request_deny", "R-CCCCCC"))) == {}
    assert recorder.next("respond/request_deny")["text"].startswith("I'm too busy")
    assert pool.wait_idle(WAIT)
    assert not [c for c in recorder.drained() if "views.open" in c[0]]


def test_work_that_waited_past_the_replay_guards_memory_is_not_run(recorder: Recorder, gate: Gate) -> None:
    """The replay guard's check across replicas runs when the work starts and remembers signatures for a bounded
    time (``bot.services.replay.WORK_MAY_WAIT``): older work is not run; its person is told the bot is busy."""
    gate.open.set()
    times = iter([0.0, WORK_MAY_WAIT_S + 1])  # offered at 0 s, started after the longest wait allowed
    pool = WorkPool(DEFAULT_LANES, clock=lambda: next(times))
    requests = FakeRequests(gate)
    app = _app(recorder, pool, requests)
    assert ack_body(app.dispatch(command(recorder, "late"))) == {}
    assert recorder.next("respond/late")["text"].startswith("I'm too busy")
    assert pool.wait_idle(WAIT)
    assert requests.created == []


def test_a_failure_in_the_work_reaches_the_person_through_the_error_handler(
        recorder: Recorder, gate: Gate, caplog: pytest.LogCaptureFixture) -> None:
    gate.open.set()
    pool = _small_pool()
    app = _app(recorder, pool, FakeRequests(gate))
    assert ack_body(app.dispatch(command(recorder, "boom"))) == {}
    said = recorder.next("respond/boom")["text"]
    assert said.startswith("Something went wrong on my side and nothing was changed.")
    errors = [r for r in caplog.records if r.name == "resetbot.errors"]
    assert len(errors) == 1
    logged = re.search(r"unhandled error \((c-[0-9a-f]+)\)", errors[0].getMessage())
    assert logged and said.endswith(f"reference: {logged.group(1)}."), "the id logged is the id the person reads"
    assert pool.wait_idle(WAIT)


def test_resetbot_help_is_answered_in_the_ack_and_health_after_it(recorder: Recorder, gate: Gate) -> None:
    pool = _small_pool(work=LaneSize(threads=1, queue=0))
    app = _app(recorder, pool, FakeRequests(gate))
    app.dispatch(command(recorder, "filler"))
    gate.wait_started()
    # The lane is full, and help needs no work: answered anyway.
    assert ack_body(app.dispatch(command(recorder, "help", name="/resetbot")))["text"] == (
        messages.commands.help_text())
    assert ack_body(app.dispatch(command(recorder, "frobnicate", name="/resetbot")))["text"] == (
        messages.commands.unknown_subcommand("frobnicate"))
    assert ack_body(app.dispatch(command(recorder, "whoami --service", name="/resetbot")))["text"] == (
        messages.links.link_usage(cast(Any, "whoami")))
    gate.open.set()
    assert pool.wait_idle(WAIT)
    assert ack_body(app.dispatch(command(recorder, "health", name="/resetbot"))) == {}
    assert recorder.next("respond/health")["text"] == messages.health.health_report(NO_ROUND_YET)


def test_app_home_opened_on_a_full_lane_is_acked_and_only_logged(
        recorder: Recorder, gate: Gate, caplog: pytest.LogCaptureFixture) -> None:
    pool = _small_pool(work=LaneSize(threads=1, queue=0))
    app = _app(recorder, pool, FakeRequests(gate))
    app.dispatch(home_opened("U00ALICE"))
    assert gate.wait_started() == "home U00ALICE"
    assert app.dispatch(home_opened("U000MONA")).status == 200
    gate.open.set()
    assert pool.wait_idle(WAIT)
    assert len(busy_records(caplog)) == 1
    assert not [c for c in recorder.drained() if "auth.test" not in c[0]], "nobody asked: nothing is sent"


def test_the_pool_refuses_work_once_shut_down_and_drains_what_it_admitted() -> None:
    pool = WorkPool()
    done = threading.Event()
    assert pool.offer(Lane.WORK, done.set)
    assert pool.wait_idle(WAIT) and done.is_set()
    pool.shutdown(wait=True)
    assert not pool.offer(Lane.WORK, lambda: None)
    assert pool.wait_idle(0)


def test_lane_sizes_are_checked() -> None:
    with pytest.raises(ValueError, match="at least one thread"):
        LaneSize(threads=0, queue=1)
    with pytest.raises(ValueError, match="queue of 0 or more"):
        LaneSize(threads=1, queue=-1)
    with pytest.raises(ValueError, match="no size given"):
        WorkPool({Lane.WORK: LaneSize(1, 1)})


def test_the_work_lanes_threads_come_from_the_setting_and_the_rest_stay() -> None:
    lanes = work_lanes(7)
    assert lanes[Lane.WORK] == LaneSize(threads=7, queue=DEFAULT_LANES[Lane.WORK].queue)
    assert {lane: lanes[lane] for lane in Lane if lane != Lane.WORK} == {
        lane: DEFAULT_LANES[lane] for lane in Lane if lane != Lane.WORK}

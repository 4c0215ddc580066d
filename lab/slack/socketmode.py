"""Socket Mode: the WebSocket link Slack keeps open to the app, envelopes out, acks back.

Why this exists: the bot runs slack-sdk's built-in Socket Mode client unchanged, so the lab has to speak
its protocol exactly: ``apps.connections.open`` hands out a one-time ``ws://.../link/?ticket=...`` URL;
on connect the server says ``hello``; each delivery is an envelope the client acks with its
``envelope_id`` (and, for slash commands and view submissions, a response payload). Like Slack, the hub
spreads envelopes over the app's open connections (round robin), redelivers an envelope that is not acked
in time (``retry_attempt`` + 1, ``retry_reason`` ``timeout``, at most ``MAX_RETRIES`` times), and can ask
every client to reconnect (``{"type": "disconnect", "reason": "refresh_requested"}``). Ping/pong is
answered by aiohttp (slack-sdk pings right after the handshake and then every ``ping_interval``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from .blocks import JSON
from .faults import Faults
from .ids import APP_ID

log = logging.getLogger(__name__)

#: How often an unacknowledged envelope is delivered again (Slack: up to 3 retries).
MAX_RETRIES = 3
#: How long a ticket from apps.connections.open stays usable (it is also single-use).
TICKET_TTL_S = 60.0
#: How long a closing connection waits for the client's close frame.
CLOSE_TIMEOUT_S = 1.0
#: How long a connection told to reconnect stays open (Slack closes it about 10 s after the warning).
DRAIN_CLOSE_S = 10.0

AckCallback = Callable[[JSON | None], None]


@dataclass
class Delivery:
    """What happened to the first attempt of an envelope (what ``POST /command`` and friends return)."""

    envelope_id: str | None
    acked: bool
    ack_ms: float | None
    ack_body: JSON | None
    error: str | None = None
    #: HTTP delivery only: the status the app answered with (None when nothing answered).
    http_status: int | None = None

    def to_json(self) -> JSON:
        out: JSON = {"envelope_id": self.envelope_id, "acked": self.acked, "ack_ms": self.ack_ms,
                     "ack_body": self.ack_body}
        if self.error is not None:
            out["error"] = self.error
        if self.http_status is not None:
            out["http_status"] = self.http_status
        return out


@dataclass
class EnvelopeRecord:
    envelope_id: str
    type: str
    retry_attempt: int
    retry_reason: str
    connection_id: str
    sent_at: float
    payload: JSON
    acked: bool = False
    ack_ms: float | None = None
    ack_body: JSON | None = None
    dropped_acks: int = 0

    def to_json(self) -> JSON:
        return {"envelope_id": self.envelope_id, "type": self.type, "retry_attempt": self.retry_attempt,
                "retry_reason": self.retry_reason, "connection_id": self.connection_id, "sent_at": self.sent_at,
                "acked": self.acked, "ack_ms": self.ack_ms, "ack_body": self.ack_body,
                "dropped_acks": self.dropped_acks, "payload": self.payload}


@dataclass
class _Connection:
    id: str
    ws: web.WebSocketResponse
    opened_at: float
    ready: bool = False
    closed: bool = False
    draining: bool = False
    sent: int = 0

    def to_json(self) -> JSON:
        return {"id": self.id, "opened_at": self.opened_at, "ready": self.ready, "draining": self.draining,
                "envelopes_sent": self.sent}


@dataclass
class _Pending:
    record: EnvelopeRecord
    future: asyncio.Future[JSON | None]
    sent_monotonic: float = field(default_factory=time.monotonic)


class SocketHub:
    """All Socket Mode connections of the one lab app, and the envelopes in flight."""

    def __init__(self, faults: Callable[[], Faults]) -> None:
        self._faults = faults
        self._connections: list[_Connection] = []
        self._changed = asyncio.Event()
        self._rr = 0
        self._tickets: dict[str, float] = {}
        self._pending: dict[str, _Pending] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.envelopes: list[EnvelopeRecord] = []
        self.ws_base = ""  # ws://127.0.0.1:PORT, set by the server once it is bound
        self.wss_base = ""  # wss://127.0.0.1:TLS_PORT, when the server also serves TLS

    # ------------------------------------------------------------------ connecting

    def issue_url(self, *, tls: bool = False) -> str:
        """A fresh one-time link URL, as ``apps.connections.open`` returns it: ``wss://`` when asked over TLS."""
        ticket = str(uuid.uuid4())
        self._tickets[ticket] = time.monotonic()
        base = self.wss_base if tls and self.wss_base else self.ws_base
        return f"{base}/link/?ticket={ticket}&app_id={APP_ID}"

    def _take_ticket(self, ticket: str | None) -> bool:
        issued = self._tickets.pop(ticket or "", None)
        return issued is not None and time.monotonic() - issued <= TICKET_TTL_S

    async def handle_link(self, request: web.Request) -> web.StreamResponse:
        """The WebSocket endpoint behind the URL from ``apps.connections.open``."""
        if not self._take_ticket(request.query.get("ticket")):
            return web.Response(status=401, text="invalid or used ticket")
        ws = web.WebSocketResponse(timeout=CLOSE_TIMEOUT_S, autoping=True, compress=False)
        conn = _Connection(id=secrets.token_hex(6), ws=ws, opened_at=time.time())
        # Registered before the handshake completes: a client whose connect() has returned is known here,
        # so a dispatch racing with the handshake waits for the hello instead of failing.
        self._connections.append(conn)
        try:
            await ws.prepare(request)
            ready = [c for c in self._connections if not c.closed]
            await ws.send_str(json.dumps({
                "type": "hello", "num_connections": len(ready),
                "debug_info": {"host": "applink-lab", "build_number": 1, "approximate_connection_time": 18060},
                "connection_info": {"app_id": APP_ID},
            }))
            conn.ready = True
            self._notify()
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_text(conn, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        except ConnectionError:
            pass
        finally:
            conn.closed = True
            with contextlib.suppress(ValueError):
                self._connections.remove(conn)
            self._notify()
        return ws

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def connections(self) -> list[JSON]:
        return [c.to_json() for c in self._connections if not c.closed]

    def _on_text(self, conn: _Connection, data: str) -> None:
        try:
            msg = json.loads(data)
        except ValueError:
            log.warning("connection %s sent non-JSON text: %.200s", conn.id, data)
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("envelope_id"), str):
            return
        pending = self._pending.get(msg["envelope_id"])
        if pending is None or pending.future.done():
            return
        if self._faults().drop_acks:
            pending.record.dropped_acks += 1
            return
        body = msg.get("payload")
        pending.future.set_result(body if isinstance(body, dict) else None)

    async def _pick(self, timeout: float) -> _Connection | None:
        """The next connection, round robin.

        Waits for a handshake in progress, never for a client that is not connecting. Connections told to
        reconnect (draining) get nothing while a fresh one is expected; only if none shows up in time.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            live = [c for c in self._connections if not c.closed]
            fresh = [c for c in live if c.ready and not c.draining]
            if fresh:
                return self._round_robin(fresh)
            remaining = deadline - loop.time()
            if not live or remaining <= 0:
                draining = [c for c in live if c.ready]
                return self._round_robin(draining) if draining else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def _round_robin(self, candidates: list[_Connection]) -> _Connection:
        self._rr += 1
        return candidates[self._rr % len(candidates)]

    # ------------------------------------------------------------------ delivering

    async def deliver(self, type_: str, payload: JSON, *, accepts_response_payload: bool,
                      on_ack: AckCallback | None = None, on_give_up: Callable[[str], None] | None = None,
                      retry_without_connection: bool = False) -> Delivery:
        """Send ``payload`` as an envelope; return what became of the first attempt.

        Later attempts (after a timeout) run in the background. ``on_ack`` runs once, with the ack's
        payload, whichever attempt is acked; ``on_give_up`` runs with the reason if none is.
        """
        first: asyncio.Future[Delivery] = asyncio.get_running_loop().create_future()
        self._spawn(self._attempts(
            type_=type_, payload=payload, accepts=accepts_response_payload, first=first, on_ack=on_ack,
            on_give_up=on_give_up, retry_without_connection=retry_without_connection))
        return await asyncio.shield(first)

    async def _attempts(self, *, type_: str, payload: JSON, accepts: bool, first: asyncio.Future[Delivery],
                        on_ack: AckCallback | None, on_give_up: Callable[[str], None] | None,
                        retry_without_connection: bool) -> None:
        reason = "timeout"
        try:
            for attempt in range(MAX_RETRIES + 1):
                timeout = self._faults().ack_timeout_s
                conn = await self._pick(timeout)
                if conn is None:
                    reason = "dispatch_failed"
                    if not first.done():
                        first.set_result(Delivery(None, False, None, None, error=reason))
                    if not retry_without_connection:
                        break
                    await asyncio.sleep(timeout)
                    continue
                result = await self._send_once(conn, type_=type_, payload=payload, accepts=accepts, attempt=attempt,
                                               timeout=timeout)
                if not first.done():
                    first.set_result(result)
                if result.acked:
                    if on_ack is not None:
                        on_ack(result.ack_body)
                    return
                reason = "timeout"
            if on_give_up is not None:
                on_give_up("operation_timeout" if reason == "timeout" else reason)
        except asyncio.CancelledError:
            if not first.done():
                first.set_result(Delivery(None, False, None, None, error="shutting_down"))
            raise

    async def _send_once(self, conn: _Connection, *, type_: str, payload: JSON, accepts: bool, attempt: int,
                         timeout: float) -> Delivery:
        envelope_id = str(uuid.uuid4())
        envelope: JSON = {"envelope_id": envelope_id, "payload": payload, "type": type_,
                          "accepts_response_payload": accepts, "retry_attempt": attempt,
                          "retry_reason": "timeout" if attempt else ""}
        record = EnvelopeRecord(envelope_id=envelope_id, type=type_, retry_attempt=attempt,
                                retry_reason=envelope["retry_reason"], connection_id=conn.id,
                                sent_at=time.time(), payload=payload)
        self.envelopes.append(record)
        future: asyncio.Future[JSON | None] = asyncio.get_running_loop().create_future()
        pending = _Pending(record=record, future=future)
        self._pending[envelope_id] = pending
        try:
            try:
                await conn.ws.send_str(json.dumps(envelope))
                conn.sent += 1
            except (ConnectionError, RuntimeError) as exc:
                log.info("envelope %s not sent on %s: %s", envelope_id, conn.id, exc)
            try:
                body = await asyncio.wait_for(asyncio.shield(future), timeout)
            except TimeoutError:
                return Delivery(envelope_id, False, None, None)
            ack_ms = round((time.monotonic() - pending.sent_monotonic) * 1000, 1)
            record.acked, record.ack_ms, record.ack_body = True, ack_ms, body
            return Delivery(envelope_id, True, ack_ms, body)
        finally:
            self._pending.pop(envelope_id, None)

    async def disconnect_all(self, reason: str = "refresh_requested") -> int:
        """Ask every client to reconnect; slack-sdk opens a new link and drops the old one.

        Like Slack, the hub sends nothing more on a connection it has told to go (unless no other comes)
        and closes it ``DRAIN_CLOSE_S`` later if the client has not.
        """
        sent = 0
        message = json.dumps({"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-lab"}})
        for conn in [c for c in self._connections if c.ready and not c.closed and not c.draining]:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.ws.send_str(message)
                sent += 1
            conn.draining = True
            self._spawn(self._close_later(conn))
        self._notify()
        return sent

    async def _close_later(self, conn: _Connection) -> None:
        await asyncio.sleep(DRAIN_CLOSE_S)
        if not conn.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.ws.close(code=1001, message=b"refresh"), CLOSE_TIMEOUT_S * 2)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def reset(self) -> None:
        self.envelopes.clear()

    async def close(self) -> None:
        """Cancel deliveries in flight and close every connection (server shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for conn in list(self._connections):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.ws.close(code=1001, message=b"server shutdown"), CLOSE_TIMEOUT_S * 2)

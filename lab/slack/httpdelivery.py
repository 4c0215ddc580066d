"""HTTP delivery: what Slack does instead of Socket Mode when the app has a Request URL.

Why this exists: ``resetbot run`` can serve Slack over signed HTTP, so the lab must be able to deliver the
same slash commands, interactivity payloads and Events API callbacks as Slack POSTs them:

- slash commands as a form (``application/x-www-form-urlencoded``, one field per payload key);
- interactivity as a form with one field, ``payload=<JSON>``;
- events as a JSON body (``event_callback``); a new Request URL is first checked with ``url_verification``,
  whose ``challenge`` the app must echo, as Slack does before it saves the URL;
- every request signed: ``X-Slack-Request-Timestamp`` and ``X-Slack-Signature`` = ``v0=`` + hex
  HMAC-SHA256(signing secret, ``v0:{timestamp}:{body}``);
- the ack is the HTTP answer within ``ack_timeout_s`` (3 s): a 200 whose body (JSON, or plain text) is the
  response payload; anything else is a failure. Events are retried like Slack does (``X-Slack-Retry-Num``,
  ``X-Slack-Retry-Reason``), commands and clicks are not.

The ``http_signing`` fault sends requests unsigned, signed with a wrong secret, or with a timestamp older
than Slack's five-minute window; ``replay`` sends a request already delivered again, byte for byte.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from .blocks import JSON
from .faults import Faults
from .socketmode import MAX_RETRIES, AckCallback, Delivery

log = logging.getLogger(__name__)

#: How stale a ``stale`` fault makes the timestamp: past Slack's 5-minute window.
STALE_BY_S = 6 * 60
#: The signing modes of the ``http_signing`` fault.
SIGNING_MODES = ("ok", "unsigned", "wrong_secret", "stale")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 request signature."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class HttpRecord:
    """One HTTP request sent to the app, and its answer (``GET /control/http_requests``)."""

    type: str
    url: str
    headers: dict[str, str]
    body: str
    retry_num: int
    sent_at: float
    status: int | None = None
    answer: str = ""
    ms: float | None = None
    error: str | None = None

    def to_json(self) -> JSON:
        return {"type": self.type, "url": self.url, "headers": self.headers, "body": self.body,
                "retry_num": self.retry_num, "sent_at": self.sent_at, "status": self.status,
                "answer": self.answer, "ms": self.ms, "error": self.error}


class HttpDelivery:
    """Delivers to the app's Request URL, when one is set; same ``deliver`` contract as ``SocketHub``."""

    def __init__(self, faults: Callable[[], Faults], signing_secret: str) -> None:
        self._faults = faults
        self._secret = signing_secret
        self.url: str | None = None
        self.records: list[HttpRecord] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    # ------------------------------------------------------------------ the Request URL

    async def set_url(self, url: str | None) -> JSON:
        """Check ``url`` with ``url_verification`` and use it from now on; None goes back to Socket Mode."""
        if url is None:
            self.url = None
            return {"url": None, "verified": False}
        challenge = secrets.token_urlsafe(24)
        body = json.dumps({"token": "", "challenge": challenge, "type": "url_verification"}).encode()
        record = await self._post(url, "url_verification", body, "application/json", retry_num=0)
        answer = record.answer
        with_json = _json_or_none(answer)
        verified = record.status == 200 and (answer == challenge or (with_json or {}).get("challenge") == challenge)
        if verified:
            self.url = url
        return {"url": url if verified else None, "verified": verified, "status": record.status,
                "error": record.error}

    # ------------------------------------------------------------------ delivering

    async def deliver(self, type_: str, payload: JSON, *, accepts_response_payload: bool,
                      on_ack: AckCallback | None = None, on_give_up: Callable[[str], None] | None = None,
                      retry_without_connection: bool = False) -> Delivery:
        """POST ``payload`` as Slack would for ``type_``; return what became of the first attempt."""
        del accepts_response_payload  # over HTTP every answer may carry a payload
        assert self.url is not None
        body, content_type = _encode(type_, payload)
        retries = MAX_RETRIES if type_ == "events_api" else 0
        first = await self._attempt(type_, body, content_type, retry_num=0)
        if first.acked:
            if on_ack is not None:
                on_ack(first.ack_body)
        elif retries:
            self._spawn(self._retry(type_, body, content_type, retries=retries, on_ack=on_ack,
                                    on_give_up=on_give_up))
        elif on_give_up is not None:
            on_give_up(_notice_reason(first.error))
        return first

    async def _retry(self, type_: str, body: bytes, content_type: str, *, retries: int,
                     on_ack: AckCallback | None, on_give_up: Callable[[str], None] | None) -> None:
        reason = "operation_timeout"
        for attempt in range(1, retries + 1):
            await asyncio.sleep(self._faults().ack_timeout_s)
            result = await self._attempt(type_, body, content_type, retry_num=attempt)
            if result.acked:
                if on_ack is not None:
                    on_ack(result.ack_body)
                return
            reason = _notice_reason(result.error)
        if on_give_up is not None:
            on_give_up(reason)

    async def _attempt(self, type_: str, body: bytes, content_type: str, *, retry_num: int) -> Delivery:
        if self.url is None:
            return Delivery(None, False, None, None, error="dispatch_failed")
        record = await self._post(self.url, type_, body, content_type, retry_num=retry_num)
        if record.status != 200:
            error = record.error or f"http_{record.status}"
            return Delivery(None, False, None, None, error=error, http_status=record.status)
        return Delivery(None, True, record.ms, _ack_body(record.answer), http_status=200)

    async def _post(self, url: str, type_: str, body: bytes, content_type: str, *, retry_num: int) -> HttpRecord:
        headers = {"Content-Type": content_type, "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
        headers.update(self._signature_headers(body))
        if retry_num:
            headers.update({"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"})
        record = HttpRecord(type=type_, url=url, headers=headers, body=body.decode(), retry_num=retry_num,
                            sent_at=time.time())
        self.records.append(record)
        await self._send(record, body)
        return record

    async def _send(self, record: HttpRecord, body: bytes) -> None:
        started = time.monotonic()
        timeout = aiohttp.ClientTimeout(total=self._faults().ack_timeout_s)
        try:
            async with self._client().post(record.url, data=body, headers=record.headers, timeout=timeout,
                                           allow_redirects=False) as resp:
                record.status = resp.status
                record.answer = await resp.text()
        except TimeoutError:
            record.error = "operation_timeout"
        except aiohttp.ClientError as exc:
            log.info("HTTP delivery to %s failed: %s", record.url, exc)
            record.error = "dispatch_failed"
        record.ms = round((time.monotonic() - started) * 1000, 1)

    def _signature_headers(self, body: bytes) -> dict[str, str]:
        mode = self._faults().http_signing
        now = int(time.time())
        if mode == "unsigned":
            return {}
        if mode == "stale":
            timestamp = str(now - STALE_BY_S)
            return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": sign(self._secret, timestamp, body)}
        secret = secrets.token_hex(16) if mode == "wrong_secret" else self._secret
        return {"X-Slack-Request-Timestamp": str(now), "X-Slack-Signature": sign(secret, str(now), body)}

    async def replay(self, index: int) -> JSON:
        """Send recorded request ``index`` again, headers and body unchanged (an attacker's replay)."""
        try:
            original = self.records[index]
        except IndexError:
            return {"error": f"no recorded request {index}"}
        again = HttpRecord(type=original.type, url=original.url, headers=dict(original.headers), body=original.body,
                           retry_num=original.retry_num, sent_at=time.time())
        self.records.append(again)
        await self._send(again, original.body.encode())
        return again.to_json()

    # ------------------------------------------------------------------ housekeeping

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def reset(self) -> None:
        self.records.clear()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()


def _encode(type_: str, payload: JSON) -> tuple[bytes, str]:
    if type_ == "slash_commands":
        return urlencode({k: str(v) for k, v in payload.items()}).encode(), "application/x-www-form-urlencoded"
    if type_ == "interactive":
        return urlencode({"payload": json.dumps(payload)}).encode(), "application/x-www-form-urlencoded"
    return json.dumps(payload).encode(), "application/json"


def _notice_reason(error: str | None) -> str:
    """The error Slack names to the person when the app failed them (a refusal reads as a failed dispatch)."""
    return "operation_timeout" if error in (None, "operation_timeout") else "dispatch_failed"


def _json_or_none(text: str) -> JSON | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _ack_body(answer: str) -> JSON | None:
    """Slack reads a JSON answer as the response payload, and plain text as a message's text."""
    if not answer.strip():
        return None
    parsed = _json_or_none(answer)
    return parsed if parsed is not None else {"text": answer}

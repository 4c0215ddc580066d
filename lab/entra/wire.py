"""Microsoft's wire shapes: Graph's error envelope, the identity platform's error body, timestamps.

Clients (msal, msgraph-sdk, the bot's own httpx code) parse these bodies, so they follow Microsoft's
documented shapes exactly; only the sentences inside are the lab's where Microsoft documents none.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from aiohttp import web

#: Per-request facts the request log reads (set by the token endpoint and the Graph middleware).
LOG_APP: web.RequestKey[str | None] = web.RequestKey("log_app")
LOG_USER: web.RequestKey[str | None] = web.RequestKey("log_user")
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id")

#: Graph's content type for JSON entities and collections.
GRAPH_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def graph_time(when: dt.datetime) -> str:
    """Graph's DateTimeOffset form on directory objects: ``2024-05-01T12:34:56Z``."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def request_ids(request: web.Request) -> tuple[str, str]:
    """(request-id, client-request-id): Graph echoes the caller's client-request-id or makes one up."""
    rid = request.get(REQUEST_ID)
    if rid is None:
        rid = str(uuid.uuid4())
        request[REQUEST_ID] = rid
    return rid, request.headers.get("client-request-id", rid)


def graph_json(request: web.Request, body: Any, *, status: int = 200,
               headers: dict[str, str] | None = None) -> web.Response:
    rid, crid = request_ids(request)
    all_headers = {"request-id": rid, "client-request-id": crid, **(headers or {})}
    resp = web.Response(status=status, body=json.dumps(body).encode(), headers=all_headers)
    resp.headers["Content-Type"] = GRAPH_JSON
    return resp


def graph_empty(request: web.Request, status: int, *, headers: dict[str, str] | None = None) -> web.Response:
    """A body-less Graph answer (204 No Content), with Graph's request ids."""
    rid, crid = request_ids(request)
    return web.Response(status=status, headers={"request-id": rid, "client-request-id": crid, **(headers or {})})


def graph_error(request: web.Request, status: int, code: str, message: str, *,
                headers: dict[str, str] | None = None) -> web.Response:
    """Graph's error envelope: ``{"error": {"code", "message", "innerError": {date, request-id, ...}}}``."""
    rid, crid = request_ids(request)
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": utcnow().strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": rid,
                "client-request-id": crid,
            },
        }
    }
    all_headers = {"request-id": rid, "client-request-id": crid, **(headers or {})}
    resp = web.Response(status=status, body=json.dumps(body).encode(), headers=all_headers)
    resp.headers["Content-Type"] = "application/json"
    return resp


def denied(request: web.Request) -> web.Response:
    """The 403 Graph answers when the caller's permissions or directory role do not allow the call."""
    return graph_error(request, 403, "Authorization_RequestDenied",
                       "Insufficient privileges to complete the operation.")


def not_found(request: web.Request, what: str) -> web.Response:
    return graph_error(
        request, 404, "Request_ResourceNotFound",
        f"Resource '{what}' does not exist or one of its queried reference-property objects are not present.",
    )


def bad_request(request: web.Request, message: str, *, code: str = "Request_BadRequest") -> web.Response:
    return graph_error(request, 400, code, message)


class AadError(Exception):
    """An identity-platform refusal: raised by the token logic, rendered by :func:`aad_error`."""

    def __init__(self, status: int, error: str, code: int, description: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"AADSTS{code}: {description}")
        self.status = status
        self.error = error
        self.code = code
        self.description = description
        self.headers = headers or {}


def aad_error(request: web.Request, err: AadError, *, error_uri_base: str) -> web.Response:
    """The token endpoint's error body, as Microsoft sends it (error_codes, trace and correlation ids)."""
    now = utcnow()
    stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
    trace_id = str(uuid.uuid4())
    correlation_id = request.headers.get("client-request-id", str(uuid.uuid4()))
    description = (f"AADSTS{err.code}: {err.description}\r\nTrace ID: {trace_id}\r\n"
                   f"Correlation ID: {correlation_id}\r\nTimestamp: {stamp}")
    body = {
        "error": err.error,
        "error_description": description,
        "error_codes": [err.code],
        "timestamp": stamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"{error_uri_base}/error?code={err.code}",
    }
    return web.json_response(body, status=err.status, headers=err.headers)

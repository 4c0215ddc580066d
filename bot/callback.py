"""Where Microsoft sends an agent's browser back after a browser sign-in (``/resetbot login --browser``).

``GET /auth/callback?code=...&state=...``: the link service uses the ``state`` once and redeems the code; the page
the browser shows says only that the sign-in finished (or that the link was stale or not ours) and to go back to
Slack, where the DM says what happened. In HTTP mode the Slack server serves this path too (``bot.serve``); in
Socket Mode, where nothing else listens, :class:`CallbackListener` serves it over HTTPS on its own port. Only
agents' browsers need to reach it, never Slack or the internet.

Hardened like the HTTP mode server, whose limits it shares: bodies are never read (a GET carries none; anything
else is 405), the query and headers are bounded, nothing from the request is written into the page (no
reflection), and every page carries headers that keep it out of caches, frames and referrers.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from bot import messages
from bot.errors import ConfigError
from bot.ids import new_correlation_id
from bot.services.links import CallbackOutcome

log = logging.getLogger(__name__)

#: The path of the redirect URI (``RESETBOT_PUBLIC_URL`` + this).
CALLBACK_PATH = "/auth/callback"
#: The longest query taken: Entra's codes run to about 2 KB, with the state and session_state far less.
MAX_QUERY_CHARS = 16 * 1024
#: The request line and headers together (a browser's are a few KiB); more gets 413 (or 414 for the line).
MAX_HEADER_BYTES = 64 * 1024
#: The callback takes no body (cheroot answers 413 to a larger declared one, unread).
MAX_CALLBACK_BODY = 1024
#: Threads answering the callback: each may wait a few seconds on Entra's token endpoint.
CALLBACK_THREADS = 4

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
Finish = Callable[..., CallbackOutcome]

#: Every page: not cached (the URL held a code), not framed, no referrer leaving with the code, no script at all.
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Type", "text/html; charset=utf-8"),
    ("Cache-Control", "no-store"),
    ("Pragma", "no-cache"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Strict-Transport-Security", "max-age=31536000"),
)

_STATUS = {
    CallbackOutcome.DONE: "200 OK",
    CallbackOutcome.STALE: "400 Bad Request",
    CallbackOutcome.INVALID: "400 Bad Request",
    CallbackOutcome.UNAVAILABLE: "503 Service Unavailable",
}


def _query(environ: dict[str, Any]) -> dict[str, str] | None:
    """The query as single values; None when it is too long, malformed, or names a parameter twice."""
    raw = str(environ.get("QUERY_STRING") or "")
    if len(raw) > MAX_QUERY_CHARS:
        return None
    try:
        parsed = parse_qs(raw, keep_blank_values=False, max_num_fields=32)
    except ValueError:
        return None
    if any(len(values) != 1 for values in parsed.values()):
        return None
    return {k: v[0] for k, v in parsed.items()}


def callback_app(finish: Finish) -> WsgiApp:
    """The callback as a WSGI app; ``finish`` is ``LinkService.finish_browser_sign_in``."""

    def page(start_response: StartResponse, outcome: CallbackOutcome, reference: str,
             status: str | None = None, extra: tuple[tuple[str, str], ...] = ()) -> Iterable[bytes]:
        start_response(status or _STATUS[outcome], [*SECURITY_HEADERS, *extra])
        return [messages.links.callback_html(outcome.value, reference).encode()]

    def serve(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        reference = new_correlation_id()
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return page(start_response, CallbackOutcome.INVALID, reference, "405 Method Not Allowed",
                        (("Allow", "GET"),))
        query = _query(environ)
        if query is None:
            log.warning("refused a sign-in callback with an unreadable query (%s)", reference)
            return page(start_response, CallbackOutcome.INVALID, reference)
        try:
            outcome = finish(query, correlation_id=reference)
        except Exception:  # the browser still gets a page; the log has what happened
            log.exception("a sign-in callback failed (%s)", reference)
            return page(start_response, CallbackOutcome.UNAVAILABLE, reference, "500 Internal Server Error")
        return page(start_response, outcome, reference)

    return serve


def cheroot_server(bind: tuple[str, int], app: WsgiApp, *, threads: int, max_body: int) -> wsgi.Server:
    """A cheroot server with the limits every listener of resetbot has: bodies and headers bounded before they are
    read, cheroot's own errors sent through logging (so they are JSON when the log is, and redacted)."""
    server = wsgi.Server(bind, app, numthreads=threads, shutdown_timeout=10)

    def error_log(msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
        log.log(level, "HTTP server: %s", msg, exc_info=traceback)

    server.error_log = error_log  # type: ignore[method-assign]
    server.max_request_body_size = max_body
    server.max_request_header_size = MAX_HEADER_BYTES
    return server


class CallbackListener:
    """Socket Mode's HTTPS listener for the sign-in callback (and ``/healthz``, for the doctor and probes)."""

    def __init__(self, host: str, port: int, *, cert_file: Path, key_file: Path, finish: Finish) -> None:
        callback = callback_app(finish)

        def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            path = environ.get("PATH_INFO")
            if path == CALLBACK_PATH:
                return callback(environ, start_response)
            if path == "/healthz" and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
                start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
                return [b"ok\n"]
            start_response("404 Not Found", [*SECURITY_HEADERS[1:], ("Content-Type", "text/plain; charset=utf-8")])
            return [b"not found\n"]

        try:
            adapter = BuiltinSSLAdapter(str(cert_file), str(key_file))
        except (OSError, ssl.SSLError, ValueError) as e:
            raise ConfigError(f"RESETBOT_CALLBACK_CERT_FILE / RESETBOT_CALLBACK_KEY_FILE cannot be used: "
                              f"{type(e).__name__}.") from None
        adapter.context.minimum_version = ssl.TLSVersion.TLSv1_2
        # cheroot reads 0 as "no limit": the callback takes no body, so anything over a few bytes is refused unread.
        self._server = cheroot_server((host, port), app, threads=CALLBACK_THREADS, max_body=MAX_CALLBACK_BODY)
        self._server.ssl_adapter = adapter
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind now (a taken port fails the start, not a thread), then serve in a thread of its own."""
        self._server.prepare()
        self._thread = threading.Thread(target=self._server.serve, name="signin-callback", daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.bind_addr[:2]
        return str(host), int(port)

    def stop(self, timeout: float) -> None:
        self._server.shutdown_timeout = max(0.1, min(self._server.shutdown_timeout, timeout))
        self._server.stop()
        if self._thread is not None:
            self._thread.join(timeout=timeout)


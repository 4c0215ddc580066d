"""Where Microsoft sends an agent's browser back after a browser sign-in (``/resetbot login --browser``).

``POST /auth/callback`` (``code``, ``state``: Microsoft's ``form_post``): the link service uses the ``state`` once
and redeems the code; the page the browser shows says only that the sign-in finished (or that the link was stale or
not ours) and to go back to Slack, where the DM says what happened. In HTTP mode the Slack server serves this path
too (``bot.serve``); in Socket Mode, where nothing else listens, :class:`CallbackListener` serves it over HTTPS on
its own port. Only agents' browsers need to reach it, never Slack or the internet.

Hardened like the HTTP mode server, whose limits it shares (``bot.http_guard``): the form and the headers are
bounded before they are read, nothing from the request is written into the page (no reflection), and every page
carries headers that keep it out of caches, frames and referrers. The Socket Mode listener, which faces the
browsers itself, also shakes hands in its workers (never in the accept loop) and gives each connection one
request and one deadline for it, so slow or silent clients cannot shut agents out (``bot.callback_tls``).

cheroot is imported only when a listener is built (``CallbackListener`` here, HTTP mode's server in ``bot.serve``):
``resetbot run`` imports this module for its exception at every start, and most deployments (Socket Mode with the
device-code sign-in) never serve HTTP.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from bot import messages
from bot.errors import ConfigError, ResetbotError
from bot.http_guard import HEALTH_PATH, ServedPort, body_refusal, cheroot_server
from bot.ids import new_correlation_id
from bot.services.links import CallbackOutcome

log = logging.getLogger(__name__)

#: The path of the redirect URI (``RESETBOT_PUBLIC_URL`` + this).
CALLBACK_PATH = "/auth/callback"
#: The form's content type (``response_mode=form_post``).
FORM_TYPE = "application/x-www-form-urlencoded"
#: The largest form taken: Entra's codes run to about 2 KB, the state, session_state and client_info far less;
#: cheroot answers 413 to a larger declared body, unread.
MAX_CALLBACK_BODY = 16 * 1024
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


def _fields(raw: str) -> dict[str, str] | None:
    """The form as single values; None when it is malformed or names a field twice."""
    try:
        parsed = parse_qs(raw, keep_blank_values=False, max_num_fields=32)
    except ValueError:
        return None
    if any(len(values) != 1 for values in parsed.values()):
        return None
    return {k: v[0] for k, v in parsed.items()}


def _posted_form(environ: dict[str, Any]) -> dict[str, str] | str | None:
    """Microsoft's ``form_post`` answer: the fields, a refusal status for a body too large or no length, or None
    when it is not a form at all."""
    if str(environ.get("CONTENT_TYPE") or "").split(";", 1)[0].strip().lower() != FORM_TYPE:
        return None
    refusal = body_refusal(environ, MAX_CALLBACK_BODY)
    if refusal is not None:
        return refusal
    length = int(environ.get("CONTENT_LENGTH") or 0)
    try:
        raw = environ["wsgi.input"].read(length).decode("ascii")
    except (OSError, UnicodeDecodeError):
        return None
    return _fields(raw)


def callback_app(finish: Finish) -> WsgiApp:
    """The callback as a WSGI app; ``finish`` is ``LinkService.finish_browser_sign_in``. Microsoft posts the
    answer as a form (``response_mode=form_post``, so the code never sits in a URL, a browser's history or a
    proxy's log); a GET is never a sign-in's answer, and is shown the "not a sign-in" page."""

    def page(start_response: StartResponse, outcome: CallbackOutcome, reference: str,
             status: str | None = None, extra: tuple[tuple[str, str], ...] = ()) -> Iterable[bytes]:
        start_response(status or _STATUS[outcome], [*SECURITY_HEADERS, *extra])
        return [messages.links.callback_html(outcome.value, reference).encode()]

    def serve(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        reference = new_correlation_id()
        method = environ.get("REQUEST_METHOD")
        if method in ("GET", "HEAD"):
            return page(start_response, CallbackOutcome.INVALID, reference)
        if method != "POST":
            return page(start_response, CallbackOutcome.INVALID, reference, "405 Method Not Allowed",
                        (("Allow", "POST"),))
        form = _posted_form(environ)
        if isinstance(form, str):
            log.warning("refused a sign-in callback: %s (%s)", form, reference)
            return page(start_response, CallbackOutcome.INVALID, reference, form, (("Connection", "close"),))
        if form is None:
            log.warning("refused a sign-in callback that was no form (%s)", reference)
            return page(start_response, CallbackOutcome.INVALID, reference)
        try:
            outcome = finish(form, correlation_id=reference)
        except Exception:  # the browser still gets a page; the log has what happened
            log.exception("a sign-in callback failed (%s)", reference)
            return page(start_response, CallbackOutcome.UNAVAILABLE, reference, "500 Internal Server Error")
        return page(start_response, outcome, reference)

    return serve


def _closing(start_response: StartResponse) -> StartResponse:
    """Every answer closes its connection: one request per connection, within its deadline (``BoundedTlsIO``)."""

    def start(status: str, headers: list[tuple[str, str]]) -> Any:
        if not any(name.lower() == "connection" for name, _ in headers):
            headers = [*headers, ("Connection", "close")]
        return start_response(status, headers)

    return start


class CallbackListenError(ResetbotError):
    """The callback listener's port cannot be bound (taken, or not allowed): worth another start."""


class CallbackListener:
    """Socket Mode's HTTPS listener for the sign-in callback (and ``/healthz``, for the doctor and probes)."""

    def __init__(self, host: str, port: int, *, cert_file: Path, key_file: Path, finish: Finish,
                 request_s: float = 15.0) -> None:
        callback = callback_app(finish)

        def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            return route(environ, _closing(start_response))

        def route(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            path = environ.get("PATH_INFO")
            if path == CALLBACK_PATH:
                return callback(environ, start_response)
            if path == HEALTH_PATH and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
                start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
                return [b"ok\n"]
            start_response("404 Not Found", [*SECURITY_HEADERS[1:], ("Content-Type", "text/plain; charset=utf-8")])
            return [b"not found\n"]

        from bot.callback_tls import HandshakeInWorker  # noqa: PLC0415 (cheroot, lazily: see the module doc)
        try:
            adapter = HandshakeInWorker(str(cert_file), str(key_file))
        except (OSError, ssl.SSLError, ValueError) as e:
            reason = getattr(e, "strerror", None) or getattr(e, "reason", None) or type(e).__name__
            raise ConfigError(f"RESETBOT_CALLBACK_CERT_FILE ({cert_file}) and RESETBOT_CALLBACK_KEY_FILE ({key_file}) "
                              f"cannot be used as the sign-in callback's certificate and key ({reason}): give a PEM "
                              "certificate (with its chain) and its private key.") from None
        adapter.context.minimum_version = ssl.TLSVersion.TLSv1_2
        adapter.deadline_s = request_s
        server = cheroot_server((host, port), app, threads=CALLBACK_THREADS, max_body=MAX_CALLBACK_BODY)
        server.ssl_adapter = adapter
        self._port = ServedPort(server, "signin-callback")

    def start(self) -> None:
        """Bind now (a taken port fails the start, not a thread), then serve in a thread of its own; a port that
        cannot be bound raises CallbackListenError."""
        try:
            self._port.start()
        except OSError as e:
            host, port = self._port.address
            raise CallbackListenError(messages.cli.cannot_listen_for_callback(host, port,
                                                                              str(e.strerror or e))) from None

    @property
    def address(self) -> tuple[str, int]:
        return self._port.address

    def stop(self, timeout: float) -> None:
        self._port.stop(timeout)


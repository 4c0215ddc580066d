"""What every listener of resetbot does before its app sees a request: bodies and headers bounded before they are
read (cheroot answers 413 to a larger declared body, unread; a chunked one is read here, never past the cap), and
cheroot's own errors sent through logging. Used by HTTP mode's Slack server and the sign-in callback's listener.

cheroot is imported by the functions that need it, not with this module: ``resetbot run`` in Socket Mode imports
this module at every start and usually serves no HTTP at all."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cheroot import wsgi

log = logging.getLogger(__name__)

#: Liveness for load balancers, orchestrators and the doctor: 200 while the process serves.
HEALTH_PATH = "/healthz"
#: The request line and headers together (Slack's and a browser's are a few KiB); more gets 413 (or 414).
MAX_HEADER_BYTES = 64 * 1024

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def body_refusal(environ: dict[str, Any], limit: int) -> str | None:
    """None when the body may be read: within ``limit`` bytes. A body sent without Content-Length (chunked) is
    read here, never past the cap, and handed on with its length (bolt reads exactly Content-Length bytes, so it
    would otherwise see an empty body). cheroot has already answered 413 to a larger Content-Length, unread.

    A Content-Length that is no length (negative: cheroot 11 lets it through, being under the cap) is refused
    with 400 before anything reads it: bolt's ``read(-1)`` on cheroot's reader means "until the client stops"."""
    declared = environ.get("CONTENT_LENGTH")
    if declared:
        try:
            length = int(declared)
        except ValueError:
            return "400 Bad Request"
        if length < 0:
            return "400 Bad Request"
        return None if length <= limit else "413 Request Entity Too Large"
    from cheroot import errors as cheroot_errors  # noqa: PLC0415 (lazy: see the module doc)
    try:
        # cheroot's chunked reader stops with an error before a chunk would take it past max_request_body_size.
        body = environ["wsgi.input"].read(limit + 1)
    except (cheroot_errors.MaxSizeExceeded, OSError):
        return "413 Request Entity Too Large"
    if len(body) > limit:
        return "413 Request Entity Too Large"
    environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
    return None


def cheroot_server(bind: tuple[str, int], app: WsgiApp, *, threads: int, max_body: int,
                   request_s: float | None = None) -> wsgi.Server:
    """A cheroot server with the limits every listener of resetbot has: bodies and headers bounded before they are
    read, cheroot's own errors sent through logging (so they are JSON when the log is, and redacted), and with
    ``request_s`` each plain-HTTP request read within that many seconds (``bot.http_deadline`` says why)."""
    from cheroot import wsgi  # noqa: PLC0415 (lazy: see the module doc)
    server = wsgi.Server(bind, app, numthreads=threads, shutdown_timeout=10)
    if request_s is not None:
        from bot.http_deadline import deadline_connection  # noqa: PLC0415 (cheroot's subclasses: lazy as well)
        server.ConnectionClass = deadline_connection(request_s)

    def error_log(msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
        log.log(level, "HTTP server: %s", msg, exc_info=traceback)

    server.error_log = error_log  # type: ignore[method-assign]
    server.max_request_body_size = max_body
    server.max_request_header_size = MAX_HEADER_BYTES
    return server


class ServedPort:
    """One cheroot server on its own thread: bound by ``start`` (so a taken port fails the start, not a thread),
    stopped within a bound. HTTP mode's Slack listener and the sign-in callback's listener are each one."""

    def __init__(self, server: wsgi.Server, thread_name: str) -> None:
        self._server = server
        self._thread_name = thread_name
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind now, then serve on a thread; raises OSError if the port cannot be bound."""
        self._server.prepare()
        self._thread = threading.Thread(target=self._server.serve, name=self._thread_name, daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.bind_addr[:2]
        return str(host), int(port)

    def stop(self, timeout: float) -> None:
        # cheroot waits this long for requests being answered before it drops them; never past the caller's bound.
        self._server.shutdown_timeout = max(0.1, min(self._server.shutdown_timeout, timeout))
        self._server.stop()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

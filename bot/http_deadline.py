"""One deadline for each request a plain-HTTP listener reads (HTTP mode's Slack listener): cheroot's socket timeout is
per read (``server.timeout``, 10 s), so a client that drips its request line, headers or body a byte every few
seconds holds a worker thread for as long as it likes, and ``HTTP_THREADS`` such clients hold every worker: Slack's
own requests then queue past their 3 s. Here a request has ``deadline_s`` from its first read to its last; past it
the read fails as a timeout, cheroot answers 408 and closes. The clock restarts with each request of a kept-alive
connection (cheroot's ``communicate`` reads one request; an idle connection waits in cheroot's selector, holding no
worker). The TLS listener of the sign-in callback has its own, with the handshake inside it (``bot.callback_tls``).

This bounds each connection, not their number: many connections dripping in turn still keep the pool busy (cheroot
hands a connection to a thread at its first byte), which is why HTTP mode needs a reverse proxy in front that reads
whole requests before passing them on (README, HTTP mode).

Its own module because it subclasses cheroot's classes: ``bot.http_guard`` imports it only when it builds a
listener, so that a start that serves no HTTP never imports cheroot."""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Callable
from typing import Any

from cheroot.makefile import MakeFile, StreamReader
from cheroot.server import HTTPConnection


class DeadlineIO(socket.SocketIO):
    """A socket's reads within one deadline (each read's timeout is what is left, or the per-read one if smaller)."""

    def __init__(self, sock: socket.socket, deadline_s: float) -> None:
        super().__init__(sock, "rb")
        self._raw = sock
        self._per_read = sock.gettimeout()
        self._deadline_s = deadline_s
        self._ends: float | None = None

    def restart(self) -> None:
        """A new request: its own deadline, from its first read."""
        self._ends = None

    def readinto(self, b: Any) -> int | None:
        if self._ends is None:
            self._ends = time.monotonic() + self._deadline_s
        left = self._ends - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")  # cheroot's "timed out": 408 mid-request, then the connection closes
        self._raw.settimeout(left if self._per_read is None else min(left, self._per_read))
        return super().readinto(b)


class DeadlineReader(StreamReader):
    def __init__(self, sock: socket.socket, deadline_s: float, bufsize: int = io.DEFAULT_BUFFER_SIZE) -> None:
        super(StreamReader, self).__init__(DeadlineIO(sock, deadline_s), bufsize)  # past StreamReader's SocketIO
        self.bytes_read = 0

    def restart(self) -> None:
        raw = self.raw
        assert isinstance(raw, DeadlineIO)
        raw.restart()


class DeadlineConnection(HTTPConnection):
    """cheroot's connection, reading each plain-HTTP request within ``deadline_s``."""

    deadline_s: float = 3.0

    def __init__(self, server: Any, sock: socket.socket, makefile: Callable[..., Any] = MakeFile) -> None:
        deadline_s = self.deadline_s

        def files(s: socket.socket, mode: str = "r", bufsize: int = io.DEFAULT_BUFFER_SIZE) -> Any:
            return DeadlineReader(s, deadline_s, bufsize) if "r" in mode else makefile(s, mode, bufsize)

        # A TLS adapter's files (the sign-in callback's) bound themselves; only plain sockets are wrapped here.
        super().__init__(server, sock, files if makefile is MakeFile else makefile)

    def communicate(self) -> bool:
        restart = getattr(self.rfile, "restart", None)
        if restart is not None:
            restart()
        return bool(super().communicate())  # type: ignore[no-untyped-call]


def deadline_connection(deadline_s: float) -> type[DeadlineConnection]:
    """A connection class for one listener's ``server.ConnectionClass``, with its deadline."""
    return type("DeadlineConnection", (DeadlineConnection,), {"deadline_s": deadline_s})

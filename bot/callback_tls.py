"""The sign-in callback listener's TLS (Socket Mode): cheroot's adapter, with the handshake in a worker and one
deadline for a connection's handshake and request (``bot.callback`` says why). Its own module because it subclasses
cheroot's classes: ``bot.callback`` imports it only when it builds a listener, so that a start that serves no HTTP
never imports cheroot."""

from __future__ import annotations

import io
import select
import socket
import ssl
import time
from typing import Any

from cheroot import errors as cheroot_errors
from cheroot.makefile import StreamReader, StreamWriter
from cheroot.ssl.builtin import BuiltinSSLAdapter


class BoundedTlsIO(socket.SocketIO):
    """A TLS socket's reads, with the handshake first and one deadline for all of it: cheroot's socket timeout is
    per read, so a client dripping a byte every few seconds (its handshake, its headers) would hold a worker for
    ever, and a few of them every worker. The clock starts at the first byte (a browser's preconnected socket may
    idle first); a client that fails the handshake or runs out of time is dropped (quietly: cheroot closes on
    FatalSSLAlert, and answers 408 to a timeout within the request). Each connection serves one request
    (``Connection: close``), so the deadline is the request's."""

    def __init__(self, sock: ssl.SSLSocket, deadline_s: float) -> None:
        super().__init__(sock, "rb")
        self._tls = sock
        self._per_read = sock.gettimeout()
        self._deadline_s = deadline_s
        self._ends: float | None = None
        self._shaken = False

    def _left(self) -> float:
        if self._ends is None:
            self._ends = time.monotonic() + self._deadline_s
        return self._ends - time.monotonic()

    def _handshake(self) -> None:
        sock = self._tls
        sock.settimeout(0.0)
        try:
            while True:
                try:
                    sock.do_handshake()
                    return
                except ssl.SSLWantReadError:
                    waits: tuple[list[ssl.SSLSocket], list[ssl.SSLSocket]] = ([sock], [])
                except ssl.SSLWantWriteError:
                    waits = ([], [sock])
                left = self._left()
                if left <= 0 or not any(select.select(*waits, [], left)[:2]):
                    raise TimeoutError("timed out")
        finally:
            sock.settimeout(self._per_read)

    def readinto(self, b: Any) -> int | None:
        if not self._shaken:
            try:
                self._handshake()
            except OSError as e:  # ssl.SSLError and timeouts are OSErrors
                raise cheroot_errors.FatalSSLAlert(*e.args) from None
            self._shaken = True
        left = self._left()
        if left <= 0:
            raise TimeoutError("timed out")
        self._tls.settimeout(left if self._per_read is None else min(left, self._per_read))
        return super().readinto(b)


class BoundedTlsReader(StreamReader):
    def __init__(self, sock: ssl.SSLSocket, deadline_s: float, bufsize: int = io.DEFAULT_BUFFER_SIZE) -> None:
        super(StreamReader, self).__init__(BoundedTlsIO(sock, deadline_s), bufsize)  # past StreamReader's SocketIO
        self.bytes_read = 0


class HandshakeInWorker(BuiltinSSLAdapter):
    """cheroot's TLS adapter, but the handshake happens in a worker thread, on the request's first read, not in
    the accept loop: cheroot's own adapter shakes hands as it accepts, so one client that connects and says
    nothing stops every other connection for the socket timeout (a slowloris needs only a socket a few seconds)."""

    #: The time one connection has for its handshake and its whole request (set by ``CallbackListener``).
    deadline_s: float = 15.0

    def wrap(self, sock: Any) -> tuple[Any, dict[str, str]]:
        wrapped = self.context.wrap_socket(sock, do_handshake_on_connect=False, server_side=True)
        # The cipher and protocol are not known before the handshake; nothing here reads them.
        return wrapped, {"wsgi.url_scheme": "https", "HTTPS": "on"}

    def makefile(self, sock: Any, mode: str = "r", bufsize: int = io.DEFAULT_BUFFER_SIZE) -> Any:
        return BoundedTlsReader(sock, self.deadline_s, bufsize) if "r" in mode else StreamWriter(sock, mode, bufsize)

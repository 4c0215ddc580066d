"""A small HTTP CONNECT proxy on loopback, for the tests of ``RESETBOT_HTTPS_PROXY``.

It does what a corporate proxy does for TLS traffic and nothing more: reads ``CONNECT host:port``, checks
``Proxy-Authorization: Basic`` when it was given credentials (407 with ``Proxy-Authenticate`` otherwise), opens
the connection to the target and pipes bytes both ways. Every CONNECT is recorded (target, whether its
credentials were accepted, the status answered), so a test can show which hosts the bot reached through it.
Any other method is answered 405: the bot's clients never send a proxy anything but CONNECT for https/wss.

It runs its own event loop in a thread; ``stop()`` closes the listener and every tunnel still open.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import threading
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import quote

_HEAD_LIMIT = 64 * 1024
_START_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Tunnel:
    """One CONNECT as the proxy saw it."""

    target: str
    authorized: bool
    status: int


class ConnectProxy:
    """``with ConnectProxy(credentials=("user", "pass")) as proxy: ... proxy.url ... proxy.tunnels()``."""

    def __init__(self, *, credentials: tuple[str, str] | None = None, host: str = "127.0.0.1") -> None:
        self._credentials = credentials
        self._host = host
        self._port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._lock = threading.Lock()
        self._tunnels: list[Tunnel] = []

    # --- what tests read ---------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the proxy is not running")
        return self._port

    @property
    def address(self) -> str:
        """``http://host:port``, without credentials."""
        return f"http://{self._host}:{self.port}"

    def url(self, credentials: tuple[str, str] | None = None) -> str:
        """The proxy URL with ``credentials`` (default: the ones it requires), percent-encoded as a URL needs."""
        user_password = credentials or self._credentials
        if user_password is None:
            return self.address
        user, password = (quote(part, safe="") for part in user_password)
        return f"http://{user}:{password}@{self._host}:{self.port}"

    def tunnels(self) -> list[Tunnel]:
        with self._lock:
            return list(self._tunnels)

    def targets(self) -> set[str]:
        """Every ``host:port`` a tunnel was opened to (credentials accepted, target answered)."""
        return {t.target for t in self.tunnels() if t.status == 200}

    # --- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> ConnectProxy:
        self._loop = asyncio.new_event_loop()
        bound: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._serve, args=(bound,), name="connect-proxy", daemon=True)
        self._thread.start()
        self._port = bound.result(timeout=_START_TIMEOUT_S)
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout=_START_TIMEOUT_S)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=_START_TIMEOUT_S)
        self._loop = self._thread = None

    def __enter__(self) -> ConnectProxy:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _serve(self, bound: concurrent.futures.Future[int]) -> None:
        assert self._loop is not None
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(asyncio.start_server(self._handle, self._host, 0))
            bound.set_result(int(self._server.sockets[0].getsockname()[1]))
            loop.run_forever()
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        except BaseException as e:
            if not bound.done():
                bound.set_exception(e)
        finally:
            loop.close()

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()

    # --- one client connection ---------------------------------------------------------------------------------
    def _record(self, target: str, authorized: bool, status: int) -> None:
        with self._lock:
            self._tunnels.append(Tunnel(target, authorized, status))

    def _authorized(self, headers: dict[str, str]) -> bool:
        if self._credentials is None:
            return True
        expected = base64.b64encode(":".join(self._credentials).encode()).decode("ascii")
        return headers.get("proxy-authorization", "") == f"Basic {expected}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                return
            lines = head[:_HEAD_LIMIT].decode("latin-1").split("\r\n")
            method, _, rest = lines[0].partition(" ")
            target = rest.rsplit(" ", 1)[0]
            headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
            if method.upper() != "CONNECT":
                await _answer(writer, 405, "Method Not Allowed")
                return
            if not self._authorized(headers):
                self._record(target, False, 407)
                await _answer(writer, 407, "Proxy Authentication Required",
                              'Proxy-Authenticate: Basic realm="lab"\r\n')
                return
            host, _, port = target.rpartition(":")
            try:
                up_reader, upstream = await asyncio.open_connection(host.strip("[]"), int(port))
            except (OSError, ValueError):
                self._record(target, True, 502)
                await _answer(writer, 502, "Bad Gateway")
                return
            self._writers.add(upstream)
            self._record(target, True, 200)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await asyncio.gather(_pipe(reader, upstream), _pipe(up_reader, writer))
        finally:
            for w in (writer, upstream):
                if w is not None:
                    self._writers.discard(w)
                    w.close()


async def _answer(writer: asyncio.StreamWriter, status: int, reason: str, extra: str = "") -> None:
    writer.write(f"HTTP/1.1 {status} {reason}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until ``source`` ends, then half-close ``sink`` so the other side sees the end too."""
    try:
        while chunk := await source.read(65536):
            sink.write(chunk)
            await sink.drain()
        if sink.can_write_eof():
            sink.write_eof()
    except (ConnectionError, OSError):
        sink.close()

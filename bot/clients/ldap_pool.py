"""A few bound LDAPS connections per bind account, kept open between calls.

Opening one costs a TCP and TLS handshake and a bind: about 53 ms against the lab's DC, where the search the bot
then makes costs about 1.2 ms. Every ``/reset`` and every reset made two such calls, so a burst of requests spent
most of its AD time shaking hands. Kept-open connections make that the first call's cost only.

Each connection serves one call at a time (ldap3's synchronous strategy is not safe to share between threads), so
a call takes an idle one or opens a new one, and gives it back when done; at most ``size`` stay idle, the rest are
closed.

A connection is checked before use without a round trip: an idle LDAP connection has nothing to read, so a socket
that *is* readable holds either the DC's notice of disconnection (AD closes connections idle past MaxConnIdleTime,
15 minutes by default) or the end of the stream (the DC restarted). Such a connection, and every other idle one
opened before it, is dropped, and the call gets a fresh one. So the first call after an AD outage reaches the DC,
as it did when every call opened its own connection. A call that fails on the wire closes its connection and
drops the idle ones too: they share its fate more often than not. Idle connections older than ``max_idle_s`` are
never reused (under AD's own limit, so the bot rarely meets a connection the DC has just closed).

Each connection gets its own ``ldap3.Server`` (``new_server``): a shared one remembers an address that failed as
unavailable for ldap3's RESET_AVAILABILITY_TIMEOUT (5 s, in practice up to 6) and meanwhile fails every
connection at once with "invalid server address", without trying the DC.

ldap3 is imported when the first connection is opened, not when the bot starts: importing it costs about 60 ms,
and ``resetbot run`` connects to Slack before it first needs AD. So ``ldap3`` is named at module level only for
the type checker, and the functions that use it import it (``bot.clients.directory`` does the same).
"""

from __future__ import annotations

import contextlib
import select
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.errors import DirectoryUnavailableError

if TYPE_CHECKING:
    import ldap3

#: Idle connections kept per bind account: enough for the handler threads that read AD at once.
DEFAULT_POOL_SIZE = 4
#: Never reuse a connection idle longer than this: AD closes idle connections after MaxConnIdleTime (900 s).
DEFAULT_MAX_IDLE_S = 600.0


@dataclass
class _Idle:
    conn: ldap3.Connection
    since: float


class ConnectionPool:
    """Bound connections for one account. ``connection()`` lends one for the length of a ``with`` block."""

    def __init__(self, *, new_server: Callable[[], ldap3.Server], bind: str, password: str, timeout_s: int,
                 size: int = DEFAULT_POOL_SIZE, max_idle_s: float = DEFAULT_MAX_IDLE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._new_server = new_server
        self._bind = bind
        self._password = password
        self._timeout = timeout_s
        self._size = size
        self._max_idle_s = max_idle_s
        self._clock = clock
        self._idle: list[_Idle] = []
        self._lock = threading.Lock()
        #: Connections opened so far (for tests and benchmarks: reuse shows as this not growing).
        self.opened = 0

    @contextmanager
    def connection(self) -> Iterator[ldap3.Connection]:
        from ldap3.core.exceptions import LDAPException  # noqa: PLC0415 (lazy: see the module doc)
        conn = self._take() or self._open()
        try:
            yield conn
        except LDAPException as e:
            self._discard(conn)
            self.clear()
            raise DirectoryUnavailableError(f"Active Directory stopped answering: {type(e).__name__}.",
                                            fault="unreachable") from e
        except BaseException:
            # Not the wire's fault (a refusal the caller raised, a bug): the connection is as good as before.
            self._give_back(conn)
            raise
        self._give_back(conn)

    def clear(self) -> None:
        """Close every idle connection (after an outage, or when the bot stops)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for item in idle:
            self._discard(item.conn)

    def _take(self) -> ldap3.Connection | None:
        now = self._clock()
        while True:
            with self._lock:
                if not self._idle:
                    return None
                item = self._idle.pop()  # the most recently used: the likeliest to be alive
            if now - item.since <= self._max_idle_s and _looks_alive(item.conn):
                return item.conn
            self._discard(item.conn)
            self.clear()  # opened before whatever closed this one: do not try them one by one

    def _open(self) -> ldap3.Connection:
        import ldap3  # noqa: PLC0415 (lazy: see the module doc)
        from ldap3.core.exceptions import LDAPException  # noqa: PLC0415
        try:
            conn = ldap3.Connection(self._new_server(), user=self._bind, password=self._password,
                                    receive_timeout=self._timeout, raise_exceptions=False)
            if not conn.bind():
                raise DirectoryUnavailableError(
                    f"Active Directory refused the bot's bind as {self._bind} ({conn.result.get('description')}).",
                    fault="bind_refused",
                )
        except LDAPException as e:
            raise DirectoryUnavailableError(f"Active Directory could not be reached: {type(e).__name__}.",
                                            fault="unreachable") from e
        self.opened += 1
        return conn

    def _give_back(self, conn: ldap3.Connection) -> None:
        if conn.closed or not conn.bound:
            self._discard(conn)
            return
        with self._lock:
            if len(self._idle) < self._size:
                self._idle.append(_Idle(conn, self._clock()))
                return
        self._discard(conn)

    @staticmethod
    def _discard(conn: ldap3.Connection) -> None:
        from ldap3.core.exceptions import LDAPException  # noqa: PLC0415 (lazy: see the module doc)
        with contextlib.suppress(LDAPException):  # it was going away anyway
            conn.unbind()


def _looks_alive(conn: ldap3.Connection) -> bool:
    """No round trip: an idle connection's socket has nothing to read unless the DC closed it or said goodbye."""
    sock = getattr(conn, "socket", None)
    if conn.closed or not conn.bound or sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):  # a closed socket's fd is -1
        return False
    return not readable

"""The outbound HTTP proxy (``RESETBOT_HTTPS_PROXY``): one ``CONNECT`` tunnel opened by hand, for the doctor's
TLS probe and for the start-up check that the proxy lets the bot through. The URL itself (checked, shown without
credentials) is a settings value: ``bot.settings.proxy_url``.

Facts the rest of the bot relies on:

- Every HTTP client here (requests for msal, httpx for Graph, urllib inside slack_sdk's WebClient, slack_sdk's
  built-in Socket Mode client) sends ``Proxy-Authorization: Basic`` itself when the proxy URL carries
  ``user:password@``, and each percent-decodes them first, so one URL serves all of them.
- slack_sdk's Socket Mode client, given a proxy, always speaks TLS inside the tunnel (it never does for a
  ``ws://`` URL without one), and trusts ``WebClient.ssl``: a TLS-inspecting proxy's CA goes into
  ``RESETBOT_SLACK_CA_FILE``.
- A refused tunnel reaches each client as its own exception (requests' ProxyError, httpx's ProxyError,
  urllib's URLError or an HTTP 407, a bare Exception from Socket Mode whose text holds the proxy URL), so the
  bot checks one tunnel itself before it starts and names the proxy in one sentence.
- LDAP (LDAPS to the domain controllers) and the database are on the LAN: they never go through the proxy.
"""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

from bot.settings.proxy_url import ProxyUrl

#: The longest answer to CONNECT read before giving up on it: a status line and a few headers.
_MAX_ANSWER = 16 * 1024


class ProxyRefusedError(Exception):
    """The proxy answered CONNECT with something other than 200 (407: credentials refused or missing; 403:
    the proxy's rules forbid that host)."""

    def __init__(self, proxy: str, target: str, status: int, reason: str) -> None:
        super().__init__(f"{proxy} refused CONNECT {target}: {status} {reason}")
        self.proxy, self.target, self.status, self.reason = proxy, target, status, reason


class ProxyUnreachableError(Exception):
    """No answer from the proxy itself (refused, no route, DNS, timeout, not an HTTP proxy)."""

    def __init__(self, proxy: str, reason: str) -> None:
        super().__init__(f"{proxy}: {reason}")
        self.proxy, self.reason = proxy, reason


def open_tunnel(proxy: ProxyUrl, host: str, port: int, *, timeout_s: float) -> socket.socket:
    """A socket connected to ``host:port`` through the proxy (CONNECT answered 200), ready for TLS.

    The answer is read one byte at a time up to its blank line, so that nothing the target sends after it
    (a TLS server speaks only after the client, but a proxy may not wait) is swallowed.
    """
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        sock = socket.create_connection((proxy.host, proxy.port), timeout=timeout_s)
    except OSError as e:
        raise ProxyUnreachableError(proxy.shown, _reason(e)) from None
    try:
        lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
        auth = proxy.authorization()
        if auth is not None:
            lines.append(f"Proxy-Authorization: {auth}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
        answer = bytearray()
        while not answer.endswith(b"\r\n\r\n"):
            byte = sock.recv(1)
            if not byte or len(answer) > _MAX_ANSWER:
                raise ProxyUnreachableError(proxy.shown, "it closed the connection without answering CONNECT")
            answer += byte
        status_line = bytes(answer).split(b"\r\n", 1)[0].decode("latin-1")
        fields = status_line.split(" ", 2)
        if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
            raise ProxyUnreachableError(proxy.shown, "it did not answer CONNECT like an HTTP proxy")
        status = int(fields[1])
        if status != 200:
            raise ProxyRefusedError(proxy.shown, target, status, fields[2].strip() if len(fields) > 2 else "")
        return sock
    except OSError as e:
        sock.close()
        raise ProxyUnreachableError(proxy.shown, _reason(e)) from None
    except BaseException:
        sock.close()
        raise


def _reason(e: OSError) -> str:
    if isinstance(e, TimeoutError | socket.timeout):
        return "TimeoutError"
    if isinstance(e, ssl.SSLError):
        return type(e).__name__
    return e.strerror or type(e).__name__


def target_of(url: str) -> tuple[str, int]:
    """Host and port a client opens for ``url`` (https 443, http 80, ldaps 636, ws 80, wss 443 by default)."""
    parts = urlsplit(url)
    default = {"https": 443, "wss": 443, "ldaps": 636, "http": 80, "ws": 80}.get(parts.scheme.lower(), 443)
    return parts.hostname or "", parts.port or default

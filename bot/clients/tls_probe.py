"""One TLS handshake with the configured trust, so that ``resetbot doctor`` can tell "the server's certificate
is not trusted by the CA bundle" from "the server cannot be reached". The Microsoft and LDAP clients fold both
into a generic connection failure; an operator fixing a CA bundle needs the first said plainly.

With a proxy the handshake goes through a CONNECT tunnel, as the bot's own HTTP clients go: "TLS to Entra ID"
then tests the path the bot really uses (a TLS-inspecting proxy shows here as an untrusted certificate). A proxy
that refuses the tunnel or cannot be reached raises ``ProxyRefusedError`` / ``ProxyUnreachableError``."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

from bot.clients.http import tls_context
from bot.clients.proxy import open_tunnel, target_of
from bot.settings.proxy_url import ProxyUrl


class TlsUntrustedError(Exception):
    """The server answered TLS but its certificate does not verify against the configured CA bundle."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(f"{host}:{port}: {reason}")
        self.host, self.port, self.reason = host, port, reason


class TlsUnreachableError(Exception):
    """No TLS answer at all within the timeout (refused, no route, or a server that never answers)."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(f"{host}:{port}: {reason}")
        self.host, self.port, self.reason = host, port, reason


class CaBundleError(Exception):
    """The CA bundle file itself cannot be read or holds no certificate."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def check_tls(url: str, ca_file: str | Path | None, *, timeout_s: float = 5.0, proxy: ProxyUrl | None = None) -> None:
    """Handshake with the host of ``url`` (https or ldaps), through ``proxy`` if given, and verify its certificate
    and name."""
    host, port = target_of(url)
    try:
        context = tls_context(ca_file)
    except (OSError, ssl.SSLError) as e:
        raise CaBundleError(str(ca_file), getattr(e, "strerror", None) or str(e)) from None
    try:
        raw = (socket.create_connection((host, port), timeout=timeout_s) if proxy is None
               else open_tunnel(proxy, host, port, timeout_s=timeout_s))
        with raw, context.wrap_socket(raw, server_hostname=host):
            return
    except ssl.SSLCertVerificationError as e:
        raise TlsUntrustedError(host, port, e.verify_message or "certificate verify failed") from None
    except (OSError, ssl.SSLError) as e:
        raise TlsUnreachableError(host, port, type(e).__name__ if isinstance(e, TimeoutError) else
                                  (e.strerror or type(e).__name__)) from None

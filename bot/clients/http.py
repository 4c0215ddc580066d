"""TLS and HTTP sessions for the Microsoft clients: trust only what the settings say, never the environment.

Machines (and corporate images) often set ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` / proxy variables.
requests lets ``REQUESTS_CA_BUNDLE`` override a Session's ``verify=``, so a configured CA bundle would be
silently ignored; httpx reads ``SSL_CERT_FILE`` and the proxy variables the same way. Every client here is
therefore built with ``trust_env=False``: the CA bundle and the proxy come from the arguments (from
Settings), and with no CA bundle the system's trust store is used (OpenSSL's default verify paths), the
same for msal (requests: ``bot.clients.entra_auth.msal_http``, imported with msal when first needed) and for
Graph (httpx).
"""

from __future__ import annotations

import ssl
import uuid
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

#: Timeout (seconds) for one HTTP exchange with Entra ID or Graph unless the caller gives one.
DEFAULT_TIMEOUT_S = 30.0


def tls_context(ca_file: str | Path | None) -> ssl.SSLContext:
    """A verifying client context: the given CA bundle only, or the system's trust store.

    One context per bundle, shared by every client of the process: reading the system's trust store costs about
    25 ms a context, and the start made five of them. Sharing is safe: a context is only used to wrap sockets
    (thread-safe in OpenSSL) and nobody changes it after this; the settings naming the bundle are read once. A
    bundle that cannot be read raises each time (a failure is not cached)."""
    return _tls_context(None if ca_file is None else str(ca_file))


@lru_cache(maxsize=16)
def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    if ca_file is not None:
        return ssl.create_default_context(cafile=ca_file)
    return ssl.create_default_context()


def graph_http_client(ca_file: str | Path | None, *, proxy: str | None = None,
                      timeout: float = DEFAULT_TIMEOUT_S) -> httpx.Client:
    """The one httpx client for Graph: verifying TLS context, ``trust_env=False``, explicit proxy, timeouts. httpx
    is imported here, by the first request to Graph (see ``bot.clients.graph.client``)."""
    import httpx  # noqa: PLC0415 (lazy: see the docstring)
    return httpx.Client(
        verify=tls_context(ca_file),
        trust_env=False,
        proxy=proxy,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        follow_redirects=False,
    )


def new_correlation_id() -> str:
    """A fresh ``client-request-id`` (Graph and the identity platform expect a GUID)."""
    return str(uuid.uuid4())

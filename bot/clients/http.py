"""TLS and HTTP sessions for the Microsoft clients: trust only what the settings say, never the environment.

Machines (and corporate images) often set ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` / proxy variables.
requests lets ``REQUESTS_CA_BUNDLE`` override a Session's ``verify=``, so a configured CA bundle would be
silently ignored; httpx reads ``SSL_CERT_FILE`` and the proxy variables the same way. Every client here is
therefore built with ``trust_env=False``: the CA bundle and the proxy come from the arguments (from
Settings), and with no CA bundle the system's trust store is used (OpenSSL's default verify paths), the
same for msal (requests) and for Graph (httpx).
"""

from __future__ import annotations

import os
import ssl
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
import requests
import requests.adapters

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


def _requests_verify(ca_file: str | Path | None) -> str | bool:
    """requests' ``verify``: the CA bundle, else the system's default bundle (not certifi's), else True."""
    if ca_file is not None:
        return str(ca_file)
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.capath):
        if candidate and os.path.exists(candidate):
            return candidate
    return True


class _Session(requests.Session):
    """A requests Session with a default timeout (requests has no session-wide one; msal passes none when
    it is handed an ``http_client``)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, *args, **kwargs)  # type: ignore[arg-type]


def msal_http_client(ca_file: str | Path | None, *, proxy: str | None = None,
                     timeout: float = DEFAULT_TIMEOUT_S) -> requests.Session:
    """The ``http_client`` to hand msal: verify = the CA bundle (or the system's), ``trust_env=False`` so no
    environment variable can override it, proxies only as configured, one transport retry like msal's own."""
    session = _Session(timeout)
    session.trust_env = False
    session.verify = _requests_verify(ca_file)
    session.proxies = {"https": proxy, "http": proxy} if proxy else {}
    adapter = requests.adapters.HTTPAdapter(max_retries=1)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def graph_http_client(ca_file: str | Path | None, *, proxy: str | None = None,
                      timeout: float = DEFAULT_TIMEOUT_S) -> httpx.Client:
    """The one httpx client for Graph: verifying TLS context, ``trust_env=False``, explicit proxy, timeouts."""
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

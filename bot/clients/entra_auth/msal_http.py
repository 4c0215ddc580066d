"""msal's HTTP client: a requests Session that trusts only what the settings say (``bot.clients.http`` says why).

Its own module so that requests (about 40 ms to import, with urllib3) is imported only with msal, when the bot
first asks Entra ID for a token, never at start: ``bot.clients.entra_auth`` imports this module in the functions
that build msal applications.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

import requests
import requests.adapters

from bot.clients.http import DEFAULT_TIMEOUT_S


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

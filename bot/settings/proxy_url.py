"""The outbound HTTP proxy's URL (``RESETBOT_HTTPS_PROXY``) as a value: checked, shown without credentials, and
what of it must never reach a log.

It lives with the settings, which check it as soon as they are read; the ``CONNECT`` tunnel opened through it,
and the facts about how each HTTP client uses it, belong to the clients' ``proxy`` module.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit


class ProxyUrlError(ValueError):
    """The setting is not a usable proxy URL; the message says why, never the password."""


@dataclass(frozen=True, repr=False)
class ProxyUrl:
    """A parsed ``http://[user:password@]host:port`` proxy URL."""

    url: str
    host: str
    port: int
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> ProxyUrl:
        """The proxy URL, or ProxyUrlError: only ``http://`` (the bot tunnels TLS through it with CONNECT),
        a host and an explicit port (each client library has its own default), nothing after the port."""
        text = url.strip()
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            raise ProxyUrlError("is not a URL") from None
        if parts.scheme.lower() != "http":
            raise ProxyUrlError("must start with http:// (the bot tunnels TLS to Slack and Microsoft through the "
                                "proxy with CONNECT; the connection to the proxy itself is plain HTTP)")
        if not parts.hostname:
            raise ProxyUrlError("names no proxy host")
        if port is None:
            raise ProxyUrlError("needs the proxy's port, like http://proxy.example.com:3128")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ProxyUrlError("must hold only the proxy's address (and user:password), no path")
        if (parts.username is None) != (parts.password is None) or parts.username == "":
            raise ProxyUrlError("must give both user and password (http://user:password@host:port), or neither")
        return cls(url=text, host=parts.hostname, port=port,
                   username=unquote(parts.username) if parts.username is not None else None,
                   password=unquote(parts.password) if parts.password is not None else None)

    @property
    def shown(self) -> str:
        """The URL as a sentence or a log line may show it: without user and password."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def authorization(self) -> str | None:
        """The ``Proxy-Authorization`` value, or None when the proxy needs no credentials."""
        if self.username is None or self.password is None:
            return None
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")

    def __repr__(self) -> str:
        return f"ProxyUrl({self.shown!r})"


def secrets_in(url: str) -> list[str]:
    """What of a proxy URL must never reach a log, whether or not the URL is otherwise usable: the URL as written,
    the password as written and percent-decoded, and the ``Proxy-Authorization`` credentials made from them."""
    try:
        parts = urlsplit(url.strip())
        user, password = parts.username, parts.password
    except ValueError:
        return [url]
    if password is None:
        return []
    basic = f"{unquote(user or '')}:{unquote(password)}".encode()
    return [url, url.strip(), password, unquote(password), base64.b64encode(basic).decode("ascii")]

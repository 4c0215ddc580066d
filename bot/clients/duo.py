"""Duo's Auth API through duo-client, the package Duo publishes: ``preauth``, a push with ``auth`` (``async=1``)
and ``auth_status`` for its outcome.

Wire facts learned here: duo-client signs every request with the secret key (HMAC-SHA512, Duo's v5 canonical
form: date, method, host, path, parameters, the body's hash) and raises ``RuntimeError`` for every refusal, with
Duo's HTTP status on ``.status`` and its ``{"stat": "FAIL", "code", "message"}`` body on ``.data``; socket and TLS
failures come as ``OSError``. ``api_host`` may carry a port (``host:port``): duo-client takes the port separately and
signs the bare host, which must be the name on the API's certificate. ``auth_status`` long-polls: it answers
once the push is answered or after a while with ``waiting``. A ``deny`` whose status is ``fraud`` means the
person pressed "Report" on their phone; an ``allow`` whose status is not ``allow`` (``bypass``) means Duo let the
person through without asking their phone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duo_client
from pydantic import SecretStr

from bot.errors import DuoUnavailableError
from bot.settings import ProxyUrl

log = logging.getLogger(__name__)

#: How long one request to Duo may take; auth_status long-polls, so this is longer than Duo holds it.
_TIMEOUT_S = 70.0

PushOutcome = Literal["waiting", "allow", "deny", "fraud", "timeout", "bypass"]


@dataclass(frozen=True)
class Enrolment:
    """``preauth``'s answer: may this username be pushed (``auth``), and if not why (``enroll``, ``deny``...)."""

    result: str
    push_capable: bool


class DuoAuth:
    """One Duo Auth API application."""

    def __init__(self, *, api_host: str, integration_key: str, secret_key: SecretStr, ca_file: Path | None,
                 timeout_s: float = _TIMEOUT_S, proxy: ProxyUrl | None = None) -> None:
        host, _, port = api_host.partition(":")
        self._client: Any = duo_client.Auth(ikey=integration_key, skey=secret_key.get_secret_value(), host=host,
                                            port=int(port) if port else None,
                                            ca_certs=str(ca_file) if ca_file else None, timeout=timeout_s)
        if proxy is not None:  # RESETBOT_HTTPS_PROXY: TLS to Duo tunnelled with CONNECT, as for Slack and Graph
            auth = proxy.authorization()
            self._client.set_proxy(host=proxy.host, port=proxy.port,
                                   headers={"Proxy-Authorization": auth} if auth else None)

    def __repr__(self) -> str:
        return "DuoAuth()"

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except RuntimeError as e:
            status = getattr(e, "status", None)
            log.warning("Duo refused %s (HTTP %s)", what, status)
            raise DuoUnavailableError(f"Duo refused {what} (HTTP {status}).") from None
        except OSError as e:
            raise DuoUnavailableError(f"Duo could not be reached for {what} ({type(e).__name__}).") from None

    def check(self) -> None:
        """Duo's signed ``check``: raises unless the application accepts these keys."""
        self._call("the signed check", self._client.check)

    def enrolment(self, username: str) -> Enrolment:
        answer = self._call("the enrolment check", self._client.preauth, username=username)
        devices = answer.get("devices") or []
        push = any("push" in (d.get("capabilities") or []) for d in devices)
        return Enrolment(result=str(answer.get("result") or ""), push_capable=push)

    def push(self, username: str, *, pushinfo: str, type_: str) -> str:
        """Send a push to the person's first push-capable device; the transaction id to follow it with."""
        answer = self._call("the push", self._client.auth, factor="push", username=username, device="auto",
                            async_txn=True, pushinfo=pushinfo, type=type_)
        return str(answer["txid"])

    def outcome(self, txid: str) -> PushOutcome:
        answer = self._call("the push's status", self._client.auth_status, txid=txid)
        if answer.get("waiting"):
            return "waiting"
        status = str(answer.get("status") or "")
        if answer.get("success"):
            # Only a push the person approved proves they hold the phone: Duo also answers ``allow`` with status
            # ``bypass`` for someone an administrator let through without Duo.
            return "allow" if status == "allow" else "bypass"
        if status == "fraud":
            return "fraud"
        if status == "timeout":
            return "timeout"
        return "deny"

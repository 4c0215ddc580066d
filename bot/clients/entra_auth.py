"""Tokens from Entra ID through msal: the bot's own app-only token, and agents' delegated tokens.

- :class:`AppTokens`: client credentials (secret or certificate) for Graph reads and Temporary Access Passes.
- :class:`DelegatedTokens`: an agent links their own account once through the device-code flow (no inbound
  port, no redirect URI); the bot then keeps that account's msal token cache, encrypted with Fernet, and gets
  fresh access tokens silently with the refresh token. resetPassword accepts only delegated tokens, so every
  reset is made as a named person whose Entra role Microsoft checks.

Wire facts relied on (graph-and-entra.md): msal only talks to ``https`` authorities; with
``instance_discovery=False`` it reads ``{authority}/v2.0/.well-known/openid-configuration`` directly; it
answers ``acquire_token_for_client`` from its in-memory cache while the token has over 5 minutes left; it
RAISES ``MsalServiceError("HTTP Error: 503")`` on a 5xx token answer instead of returning an error dict, and
caches 429/5xx answers for Retry-After seconds (so a later call fails fast without asking again).

Nothing here logs, returns in an exception, or shows in a repr any token, secret, device code or token cache.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol
from urllib.parse import urlsplit

import msal
import requests
from cryptography import x509
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes, serialization
from msal.exceptions import MsalServiceError
from pydantic import SecretStr

from bot.clients.http import DEFAULT_TIMEOUT_S, msal_http_client
from bot.errors import (
    ConfigError,
    DeviceFlowDeclinedError,
    DeviceFlowError,
    DeviceFlowExpiredError,
    EntraAuthError,
    EntraReauthRequiredError,
    EntraUnavailableError,
)

log = logging.getLogger(__name__)

#: The app-only scope for Microsoft Graph (application permissions granted to the app registration).
GRAPH_DEFAULT_SCOPE = "https://graph.microsoft.com/.default"
#: What an agent's delegated token needs: resetPassword (and TAP creation), plus sign-in and own profile.
AGENT_SCOPES: tuple[str, ...] = ("UserAuthenticationMethod.ReadWrite.All", "User.Read")
#: The public cloud's authority host: the only one for which msal's instance discovery is left on.
PUBLIC_CLOUD_HOST = "login.microsoftonline.com"

# Setting names the operator sees in sentences (the composition root builds these clients from Settings).
_S_AUTHORITY = "RESETBOT_ENTRA_AUTHORITY"
_S_CLIENT_ID = "RESETBOT_ENTRA_CLIENT_ID"
_S_SECRET = "RESETBOT_ENTRA_CLIENT_SECRET"  # noqa: S105 - a setting's name
_S_CERT = "RESETBOT_ENTRA_CERTIFICATE_FILE and RESETBOT_ENTRA_PRIVATE_KEY_FILE"
_S_PUBLIC_CLIENT_ID = "RESETBOT_ENTRA_PUBLIC_CLIENT_ID"

_UNAVAILABLE_ERRORS = frozenset({"temporarily_unavailable", "server_error"})
_REAUTH_ERRORS = frozenset({"invalid_grant", "interaction_required", "login_required", "consent_required",
                            "bad_token", "token_expired", "invalid_client"})


class TokenSource(Protocol):
    """Something that hands out a bearer token for Graph (the app's, here)."""

    def token(self) -> str: ...


def instance_discovery_for(authority: str) -> bool:
    """Whether msal may run instance discovery for ``authority``.

    Instance discovery asks login.microsoftonline.com which hosts are aliases of the authority. For any other
    host (the lab's ``https://127.0.0.1:PORT/TENANT``, a sovereign or private cloud) Microsoft does not know
    the host, so msal would refuse the authority, and it would tell Microsoft about a host that is none of
    its business. Turned off, msal reads the authority's own OpenID configuration, which is all it needs.
    """
    return (urlsplit(authority).hostname or "").lower() == PUBLIC_CLOUD_HOST


def _check_authority(authority: str, setting: str = _S_AUTHORITY) -> str:
    parts = urlsplit(authority.strip())
    if parts.scheme != "https" or not parts.hostname or parts.path.strip("/") == "":
        raise ConfigError(f"{setting} must be an https URL ending in the tenant, like "
                          f"https://{PUBLIC_CLOUD_HOST}/<tenant id>.")
    return authority.strip().rstrip("/")


# --- the app's certificate credential -------------------------------------------------------------------------
@dataclass(frozen=True)
class CertificateCredential:
    """The app registration's certificate credential: the certificate (public) and its private key (secret).

    By default msal signs the client assertion RS256 with the certificate's SHA-1 thumbprint (``x5t``), which
    every Entra cloud accepts; ``send_x5c=True`` sends the certificate chain instead (PS256, ``x5t#S256`` and
    ``x5c``), as subject-name/issuer authentication needs.
    """

    certificate_pem: str
    private_key_pem: SecretStr = field(repr=False)
    thumbprint: str
    send_x5c: bool = False
    passphrase: SecretStr | None = field(default=None, repr=False)

    @classmethod
    def from_pem(cls, certificate_pem: str, private_key_pem: SecretStr | str, *,
                 passphrase: SecretStr | None = None, send_x5c: bool = False) -> CertificateCredential:
        """Checked at once: both parse, and the key belongs to the certificate (a ConfigError says which)."""
        key_pem = private_key_pem if isinstance(private_key_pem, SecretStr) else SecretStr(private_key_pem)
        try:
            cert = x509.load_pem_x509_certificate(certificate_pem.encode())
        except ValueError:
            raise ConfigError("RESETBOT_ENTRA_CERTIFICATE_FILE does not hold a PEM certificate.") from None
        try:
            key = serialization.load_pem_private_key(
                key_pem.get_secret_value().encode(),
                password=passphrase.get_secret_value().encode() if passphrase else None,
            )
        except (ValueError, TypeError):
            raise ConfigError("RESETBOT_ENTRA_PRIVATE_KEY_FILE does not hold a readable PEM private key (or its "
                              "passphrase is wrong).") from None
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        if key.public_key().public_bytes(serialization.Encoding.DER, spki) != \
                cert.public_key().public_bytes(serialization.Encoding.DER, spki):
            raise ConfigError("RESETBOT_ENTRA_PRIVATE_KEY_FILE is not the key of the certificate in "
                              "RESETBOT_ENTRA_CERTIFICATE_FILE.")
        pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        thumbprint = cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - Entra's x5t is SHA-1 by definition
        return cls(certificate_pem=pem, private_key_pem=key_pem, thumbprint=thumbprint, send_x5c=send_x5c,
                   passphrase=passphrase)

    @classmethod
    def from_files(cls, certificate_file: str | Path, private_key_file: str | Path | None = None, *,
                   passphrase: SecretStr | None = None, send_x5c: bool = False) -> CertificateCredential:
        """From PEM files; without ``private_key_file`` the key is looked for in the certificate file."""
        try:
            cert_text = Path(certificate_file).read_text()
            key_text = Path(private_key_file).read_text() if private_key_file else cert_text
        except OSError as e:
            raise ConfigError(f"The Entra certificate or key file cannot be read: {e.strerror} "
                              f"({e.filename}).") from None
        return cls.from_pem(cert_text, SecretStr(key_text), passphrase=passphrase, send_x5c=send_x5c)

    def msal_credential(self) -> dict[str, str]:
        cred = {"private_key": self.private_key_pem.get_secret_value()}
        if self.send_x5c:
            cred["public_certificate"] = self.certificate_pem
        else:
            cred["thumbprint"] = self.thumbprint
        if self.passphrase is not None:
            cred["passphrase"] = self.passphrase.get_secret_value()
        return cred


# --- error mapping --------------------------------------------------------------------------------------------
def _aadsts(result: dict[str, Any]) -> int | None:
    codes = result.get("error_codes") or []
    return int(codes[0]) if codes and str(codes[0]).isdigit() else None


def _fields(result: dict[str, Any]) -> dict[str, Any]:
    n = _aadsts(result)
    return {"code": f"AADSTS{n}" if n is not None else str(result.get("error") or "") or None,
            "request_id": result.get("correlation_id") or result.get("trace_id")}


def _unavailable_from(exc: BaseException, what: str) -> EntraUnavailableError:
    """A raised msal/requests failure as EntraUnavailableError (the exception's text may name a URL, never a
    secret; it is not repeated anyway)."""
    if isinstance(exc, MsalServiceError):
        status = str(exc).removeprefix("HTTP Error: ").strip()
        detail = f"HTTP {status}" if status.isdigit() else type(exc).__name__
        return EntraUnavailableError(f"Entra ID's token service is unavailable ({detail}) while {what}; "
                                     "the bot will try again later.",
                                     status=int(status) if status.isdigit() else None)
    return EntraUnavailableError(f"Entra ID could not be reached ({type(exc).__name__}) while {what}; check the "
                                 "network path to the authority and try again.")


def _app_error(result: dict[str, Any], *, client_id: str, uses_certificate: bool) -> Exception:
    """The error dict of a client-credentials request as the exception the operator should see."""
    error = str(result.get("error") or "unknown_error")
    n = _aadsts(result)
    fields = _fields(result)
    if error in _UNAVAILABLE_ERRORS:
        return EntraUnavailableError(f"Entra ID's token service is unavailable ({fields['code']}); the bot will "
                                     "try again later.", **fields)
    credential_setting = _S_CERT if uses_certificate else _S_SECRET
    if n == 7000222:
        return EntraAuthError(f"The bot's client secret has expired (AADSTS7000222): create a new secret for app "
                              f"{client_id} and put its value in {_S_SECRET}.", **fields)
    if n == 7000215 or (error == "invalid_client" and not uses_certificate and n not in (700016,)):
        return EntraAuthError(f"Entra ID refused the bot's client secret ({fields['code']}): check that "
                              f"{_S_SECRET} holds the secret's value (not its id) for app {client_id}.", **fields)
    if error == "invalid_client" or n in (700027, 700024, 700023):
        return EntraAuthError(f"Entra ID refused the bot's certificate credential ({fields['code']}): check that "
                              f"{credential_setting} hold a certificate uploaded to app {client_id} and its key.",
                              **fields)
    if n == 700016 or error == "unauthorized_client":
        return EntraAuthError(f"Entra ID does not know app {client_id} in this tenant ({fields['code']}): check "
                              f"{_S_CLIENT_ID} and {_S_AUTHORITY}.", **fields)
    if n == 90002 or error == "invalid_tenant":
        return EntraAuthError(f"Entra ID does not know the tenant in {_S_AUTHORITY} ({fields['code']}).", **fields)
    return EntraAuthError(f"Entra ID refused the bot's token request ({error}, {fields['code']}): check "
                          f"{_S_CLIENT_ID}, {credential_setting} and the app's Graph permissions.", **fields)


# --- app-only tokens ------------------------------------------------------------------------------------------
class AppTokens:
    """App-only tokens for Graph via msal's ConfidentialClientApplication (client secret OR certificate).

    The msal application is built on first use (its construction already fetches the authority's metadata,
    so a bot starting while Entra is unreachable still starts) and kept: msal caches the token in memory and
    renews it when under 5 minutes are left. Thread-safe.
    """

    def __init__(self, *, authority: str, client_id: str, client_secret: SecretStr | None = None,
                 certificate: CertificateCredential | None = None, ca_file: str | Path | None = None,
                 proxy: str | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                 scope: str = GRAPH_DEFAULT_SCOPE) -> None:
        if (client_secret is None) == (certificate is None):
            raise ConfigError(f"Set exactly one of {_S_SECRET} or RESETBOT_ENTRA_CERTIFICATE_FILE.")
        if not client_id.strip():
            raise ConfigError(f"{_S_CLIENT_ID} is empty.")
        self.authority = _check_authority(authority)
        self.client_id = client_id.strip()
        self._secret = client_secret
        self._certificate = certificate
        self._ca_file = ca_file
        self._proxy = proxy
        self._timeout = timeout
        self._scope = scope
        self._lock = threading.Lock()
        self._app: Any = None

    def __repr__(self) -> str:
        kind = "certificate" if self._certificate else "secret"
        return f"AppTokens(authority={self.authority!r}, client_id={self.client_id!r}, credential={kind})"

    def _msal_app(self) -> Any:
        with self._lock:
            if self._app is None:
                credential: Any = (self._certificate.msal_credential() if self._certificate
                                   else self._secret.get_secret_value() if self._secret else None)
                try:
                    self._app = msal.ConfidentialClientApplication(
                        self.client_id, client_credential=credential, authority=self.authority,
                        instance_discovery=instance_discovery_for(self.authority),
                        http_client=msal_http_client(self._ca_file, proxy=self._proxy, timeout=self._timeout),
                    )
                except (MsalServiceError, requests.RequestException) as e:
                    raise _unavailable_from(e, "reading the authority's metadata") from None
                except ValueError:
                    # msal's text here is about the authority's metadata; a bad key was refused earlier.
                    raise EntraAuthError(f"Entra ID did not accept the authority {self.authority} (its OpenID "
                                         f"configuration could not be read): check {_S_AUTHORITY}.") from None
            return self._app

    def token(self) -> str:
        """A Graph access token for the app (from msal's cache while it is fresh)."""
        app = self._msal_app()
        try:
            result = app.acquire_token_for_client(scopes=[self._scope])
        except (MsalServiceError, requests.RequestException) as e:
            raise _unavailable_from(e, "getting the bot's app token") from None
        if not isinstance(result, dict) or "access_token" not in result:
            err = _app_error(result if isinstance(result, dict) else {}, client_id=self.client_id,
                             uses_certificate=self._certificate is not None)
            log.warning("app token refused: %s", err)
            raise err
        log.debug("app token from %s", result.get("token_source"))
        return str(result["access_token"])


# --- delegated tokens through the device-code flow -------------------------------------------------------------
@dataclass(frozen=True)
class DeviceFlow:
    """A pending device-code sign-in: show ``message`` (or the code and the URL) to the agent. The msal flow
    (holding the device code, which redeems the tokens) stays inside and out of every repr."""

    user_code: str
    verification_uri: str
    message: str
    expires_at: datetime
    _msal_flow: dict[str, Any] = field(repr=False, compare=False, hash=False)
    _app: Any = field(repr=False, compare=False, hash=False)

    def cancel(self) -> None:
        """Make a waiting ``wait_for_device_flow`` return within about a second: msal's documented way to end
        its polling loop early is to set the flow's ``expires_at`` in the past (the waiter reports it expired)."""
        self._msal_flow["expires_at"] = 0


@dataclass(frozen=True)
class LinkedAccount:
    """An agent's linked Microsoft account: who it is and its msal token cache, Fernet-encrypted."""

    upn: str
    oid: str
    home_account_id: str
    encrypted_cache: str = field(repr=False)
    display_name: str = ""


class DelegatedToken(NamedTuple):
    """``(access_token, encrypted_cache)``: store ``encrypted_cache`` again when it differs from what was
    passed in (the refresh token rotated); it is the same string when msal answered from the cache."""

    access_token: str
    encrypted_cache: str

    def __repr__(self) -> str:
        return "DelegatedToken(access_token=<hidden>, encrypted_cache=<hidden>)"


def _scope_names(raw: str) -> set[str]:
    return {s.rsplit("/", 1)[-1].lower() for s in raw.split()}


class DelegatedTokens:
    """Agents' delegated Graph tokens: device-code sign-in, then silent refresh from an encrypted cache.

    ``key`` is a Fernet key (``Fernet.generate_key()``); ``old_keys`` still decrypt, so the key can be
    rotated: caches are written back under ``key`` whenever msal changes them.
    """

    def __init__(self, *, authority: str, client_id: str, key: SecretStr, old_keys: Sequence[SecretStr] = (),
                 ca_file: str | Path | None = None, proxy: str | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                 scopes: Sequence[str] = AGENT_SCOPES) -> None:
        self.authority = _check_authority(authority)
        if not client_id.strip():
            raise ConfigError(f"{_S_PUBLIC_CLIENT_ID} is empty.")
        self.client_id = client_id.strip()
        try:
            self._fernet = MultiFernet([Fernet(k.get_secret_value().encode()) for k in (key, *old_keys)])
        except (ValueError, TypeError):
            raise ConfigError("The token-cache encryption key must be a Fernet key: 32 url-safe base64-encoded "
                              "bytes, as Fernet.generate_key() makes.") from None
        self._scopes = list(scopes)
        self._ca_file = ca_file
        self._proxy = proxy
        self._timeout = timeout
        # Silent refreshes share one session and one msal http cache (it holds the authority's metadata for a
        # day and msal's throttling memory); the msal objects built per call use them under this lock.
        self._lock = threading.Lock()
        self._http = msal_http_client(ca_file, proxy=proxy, timeout=timeout)
        self._http_cache: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"DelegatedTokens(authority={self.authority!r}, client_id={self.client_id!r})"

    def _public_app(self, cache: msal.SerializableTokenCache, *, http: requests.Session,
                    http_cache: dict[str, Any]) -> Any:
        try:
            return msal.PublicClientApplication(
                self.client_id, authority=self.authority, instance_discovery=instance_discovery_for(self.authority),
                http_client=http, http_cache=http_cache, token_cache=cache,
            )
        except (MsalServiceError, requests.RequestException) as e:
            raise _unavailable_from(e, "reading the authority's metadata") from None
        except ValueError:
            raise EntraAuthError(f"Entra ID did not accept the authority {self.authority} (its OpenID "
                                 f"configuration could not be read): check {_S_AUTHORITY}.") from None

    # -- device-code sign-in -------------------------------------------------------------------------------
    def start_device_flow(self) -> DeviceFlow:
        """Ask Entra for a sign-in code the agent enters at Microsoft's page (any device, no inbound port)."""
        http = msal_http_client(self._ca_file, proxy=self._proxy, timeout=self._timeout)
        app = self._public_app(msal.SerializableTokenCache(), http=http, http_cache={})
        try:
            flow = app.initiate_device_flow(scopes=self._scopes)
        except (MsalServiceError, requests.RequestException) as e:
            raise _unavailable_from(e, "starting a device-code sign-in") from None
        if "user_code" not in flow:
            error = str(flow.get("error") or "unknown_error")
            fields = _fields(flow)
            if error in _UNAVAILABLE_ERRORS:
                raise EntraUnavailableError(f"Entra ID's sign-in service is unavailable ({fields['code']}); try "
                                            "again in a minute.", **fields)
            if error in ("unauthorized_client", "invalid_client"):
                raise EntraAuthError(f"Entra ID refused the device-code sign-in for app {self.client_id} "
                                     f"({fields['code']}): check {_S_PUBLIC_CLIENT_ID} and that the app allows "
                                     "public client flows.", **fields)
            raise EntraAuthError(f"Entra ID refused to start a device-code sign-in ({error}, {fields['code']}): "
                                 "check the app's delegated permissions.", **fields)
        expires = float(flow.get("expires_at") or time.time() + float(flow.get("expires_in", 900)))
        return DeviceFlow(
            user_code=str(flow["user_code"]),
            verification_uri=str(flow.get("verification_uri") or flow.get("verification_url") or ""),
            message=str(flow.get("message") or ""),
            expires_at=datetime.fromtimestamp(expires, UTC),
            _msal_flow=flow,
            _app=app,
        )

    def wait_for_device_flow(self, flow: DeviceFlow, *, timeout: float) -> LinkedAccount:
        """Block (polling at Microsoft's interval) until the agent completes the sign-in, declines it, the code
        expires, or ``timeout`` seconds pass (checked about once a second, as msal's loop sleeps in whole
        seconds); then the linked account with its encrypted token cache. A transient token-endpoint failure
        is retried until the deadline."""
        deadline = time.monotonic() + timeout
        app = flow._app

        def give_up(f: dict[str, Any]) -> bool:
            return float(f.get("expires_at", 0)) < time.time() or time.monotonic() >= deadline

        while True:
            try:
                result = app.acquire_token_by_device_flow(flow._msal_flow, exit_condition=give_up)
                break
            except (MsalServiceError, requests.RequestException) as e:
                # A transient token-endpoint failure: keep polling until the deadline.
                remaining = deadline - time.monotonic()
                if remaining <= 0 or give_up(flow._msal_flow):
                    raise _unavailable_from(e, "waiting for a device-code sign-in") from None
                time.sleep(min(float(flow._msal_flow.get("interval", 5)), remaining))
        if "access_token" not in result:
            raise self._device_error(result, timed_out=time.monotonic() >= deadline)
        return self._linked(app, result)

    @staticmethod
    def _device_error(result: dict[str, Any], *, timed_out: bool) -> Exception:
        error = str(result.get("error") or "unknown_error")
        fields = _fields(result)
        if error in ("authorization_declined", "access_denied"):
            return DeviceFlowDeclinedError("The Microsoft sign-in was declined, so the account was not linked.",
                                           reason="declined", **fields)
        if error == "expired_token":
            return DeviceFlowExpiredError("The sign-in code expired before it was used; start the sign-in again.",
                                          reason="expired", **fields)
        if error in ("authorization_pending", "slow_down"):
            reason = "timeout" if timed_out else "expired"
            return DeviceFlowExpiredError("Nobody completed the Microsoft sign-in in time; start the sign-in "
                                          "again.", reason=reason, **fields)
        if error in _UNAVAILABLE_ERRORS:
            return EntraUnavailableError(f"Entra ID's sign-in service is unavailable ({fields['code']}); try "
                                         "again in a minute.", **fields)
        return DeviceFlowError(f"The Microsoft sign-in did not complete ({error}, {fields['code']}); start it "
                               "again.", reason=error, **fields)

    def _linked(self, app: Any, result: dict[str, Any]) -> LinkedAccount:
        claims = result.get("id_token_claims") or {}
        upn = str(claims.get("preferred_username") or claims.get("upn") or "")
        granted = _scope_names(str(result.get("scope", "")))
        missing = [s for s in self._scopes if s.rsplit("/", 1)[-1].lower() not in granted]
        if missing:
            raise DeviceFlowError(f"The Microsoft sign-in of {upn or 'the agent'} did not grant "
                                  f"{', '.join(missing)}: an administrator must consent to it for the app.",
                                  reason="scope")
        accounts = [a for a in app.get_accounts() if str(a.get("username", "")).lower() == upn.lower()] \
            or app.get_accounts()
        if not accounts:
            raise DeviceFlowError("Entra ID's answer did not identify the signed-in account (no id token), so it "
                                  "cannot be used later; check the app registration.", reason="no_account")
        account = accounts[0]
        return LinkedAccount(
            upn=upn or str(account.get("username", "")),
            oid=str(claims.get("oid") or account.get("local_account_id") or ""),
            home_account_id=str(account["home_account_id"]),
            encrypted_cache=self._encrypt(app.token_cache.serialize()),
            display_name=str(claims.get("name") or ""),
        )

    # -- silent tokens -------------------------------------------------------------------------------------
    def token_for(self, link: LinkedAccount | tuple[str, str]) -> DelegatedToken:
        """A fresh delegated access token for a linked account (from the cache, or refreshed with the refresh
        token), and the cache to store back. ``link`` is a LinkedAccount or ``(encrypted_cache,
        home_account_id)``. EntraReauthRequiredError when the agent must sign in again."""
        if isinstance(link, LinkedAccount):
            encrypted, home_account_id, upn = link.encrypted_cache, link.home_account_id, link.upn
        else:
            (encrypted, home_account_id), upn = link, None
        cache = msal.SerializableTokenCache()
        cache.deserialize(self._decrypt(encrypted))
        with self._lock:
            app = self._public_app(cache, http=self._http, http_cache=self._http_cache)
            account = next((a for a in app.get_accounts() if a.get("home_account_id") == home_account_id), None)
            who = upn or "this agent"
            if account is None:
                raise EntraReauthRequiredError(f"The stored Microsoft sign-in of {who} holds no usable account; "
                                               "the agent must link their account again.")
            if upn is not None and str(account.get("username", "")).lower() != upn.lower():
                raise EntraReauthRequiredError(f"The stored Microsoft sign-in does not belong to {upn}; the agent "
                                               "must link their account again.")
            try:
                result = app.acquire_token_silent_with_error(self._scopes, account=account)
            except (MsalServiceError, requests.RequestException) as e:
                raise _unavailable_from(e, f"refreshing the sign-in of {who}") from None
        if not result:
            raise EntraReauthRequiredError(f"The Microsoft sign-in of {who} has no refresh token left; the agent "
                                           "must link their account again.")
        if "access_token" not in result:
            error = str(result.get("error") or "unknown_error")
            fields = _fields(result)
            if error in _UNAVAILABLE_ERRORS:
                raise EntraUnavailableError(f"Entra ID's token service is unavailable ({fields['code']}) while "
                                            f"refreshing the sign-in of {who}; try again later.", **fields)
            if error not in _REAUTH_ERRORS:
                log.warning("silent token refresh failed with %s (%s)", error, fields["code"])
            raise EntraReauthRequiredError(f"The Microsoft sign-in of {who} was revoked or has expired "
                                           f"({fields['code']}); the agent must link their account again.",
                                           **fields)
        log.debug("delegated token from %s", result.get("token_source"))
        new_cache = self._encrypt(cache.serialize()) if cache.has_state_changed else encrypted
        return DelegatedToken(str(result["access_token"]), new_cache)

    # -- the cache at rest ---------------------------------------------------------------------------------
    def _encrypt(self, serialized: str) -> str:
        return self._fernet.encrypt(serialized.encode()).decode("ascii")

    def opens(self, encrypted_cache: str) -> bool:
        """Whether a stored cache decrypts under the key (or an old one): no network call, so ``resetbot doctor`` can
        tell a changed token-cache key from a sign-in Entra no longer honours."""
        try:
            self._decrypt(encrypted_cache)
        except EntraReauthRequiredError:
            return False
        return True

    def _decrypt(self, encrypted: str) -> str:
        try:
            plain = self._fernet.decrypt(encrypted.encode("ascii")).decode()
            json.loads(plain)
        except (InvalidToken, UnicodeError, ValueError):
            raise EntraReauthRequiredError("The stored Microsoft sign-in could not be decrypted (was the token-cache "
                                           "key changed?); the agent must link their account again.") from None
        return plain

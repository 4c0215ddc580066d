"""Agents' delegated Graph tokens: an agent links their own account once through the device-code flow, then the
bot refreshes their access token silently from their msal token cache, kept Fernet-encrypted at rest.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from bot.clients.entra_auth.authority import _check_authority, instance_discovery_for
from bot.clients.entra_auth.msal_errors import (
    _UNAVAILABLE_ERRORS,
    _aadsts,
    _fields,
    _unavailable_from,
    _unreadable_authority,
    msal_failures,
)
from bot.clients.http import DEFAULT_TIMEOUT_S
from bot.errors import (
    ConfigError,
    DeviceFlowDeclinedError,
    DeviceFlowError,
    DeviceFlowExpiredError,
    EntraAuthError,
    EntraReauthRequiredError,
    EntraUnavailableError,
    SignInBlockedError,
)
from bot.logs import remember_secret

if TYPE_CHECKING:  # imported where used: see msal_errors
    import msal
    import requests

# Named after the package, as before the split: every log line shows its logger's name.
log = logging.getLogger("bot.clients.entra_auth")

#: What an agent's delegated token needs: resetPassword (and TAP creation and deletion), revoking a disowned reset's
#: target's sign-in sessions (containment), plus sign-in and own profile.
AGENT_SCOPES: tuple[str, ...] = ("UserAuthenticationMethod.ReadWrite.All", "User.RevokeSessions.All", "User.Read")

# The setting the operator sees in sentences (the composition root builds these clients from Settings).
_S_PUBLIC_CLIENT_ID = "RESETBOT_ENTRA_PUBLIC_CLIENT_ID"

#: Conditional Access refusing to issue the token for a completed sign-in: 53003 (blocked by policy, what the
#: "authentication flows" condition answers for device code), 53000/53001 (device not compliant / not joined),
#: 53002 (app not approved), 530032 (blocked by a security policy).
_BLOCKED_BY_POLICY = frozenset({53000, 53001, 53002, 53003, 530032})

#: What an OAuth ``error`` code looks like (RFC 6749 4.1.2.1; Entra's are lower-case words and underscores).
_OAUTH_ERROR = re.compile(r"[a-z_]{1,64}")

#: How long a browser sign-in's link works (its ``state`` is refused after this).
BROWSER_SIGN_IN_S = 600

_REAUTH_ERRORS = frozenset({"invalid_grant", "interaction_required", "login_required", "consent_required",
                            "bad_token", "token_expired", "invalid_client"})


def sign_in_tenant_problem(claims: dict[str, Any], tenant: str) -> str | None:
    """Why a completed sign-in is not of ``tenant`` (the authority's tenant id, as its OpenID configuration's
    token endpoint names it), or None. Entra puts the tenant signed into in the id token's ``tid``; with a
    tenant's own authority it is always that tenant, so a mismatch means the authority takes any tenant's accounts
    (``/common``, ``/organizations``, refused at start) or is not Entra's."""
    tid = str(claims.get("tid") or "").strip()
    if not tid:
        return "its id token names no tenant (tid)"
    if tid.lower() != tenant.strip().lower():
        return f"it was made in the tenant {tid}, not in {tenant}"
    return None


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
class BrowserFlow:
    """A browser sign-in just started: the URL to send the agent (Microsoft's page), its ``state`` (to find the
    attempt again when the browser comes back), and msal's flow, encrypted (it holds the PKCE verifier)."""

    auth_uri: str = field(repr=False)
    state: str = field(repr=False)
    encrypted_flow: str = field(repr=False)
    expires_at: datetime


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


def _new_cache() -> msal.SerializableTokenCache:
    import msal  # noqa: PLC0415 (lazy: see msal_errors)
    return msal.SerializableTokenCache()


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
        self._http: requests.Session | None = None  # built on first use, under the lock (see _shared_http)
        self._http_cache: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"DelegatedTokens(authority={self.authority!r}, client_id={self.client_id!r})"

    def _new_http(self) -> requests.Session:
        from bot.clients.entra_auth.msal_http import msal_http_client  # noqa: PLC0415 (lazy: see msal_errors)
        return msal_http_client(self._ca_file, proxy=self._proxy, timeout=self._timeout)

    def _shared_http(self) -> requests.Session:
        """The session silent refreshes share, made by the first one (call with the lock held)."""
        if self._http is None:
            self._http = self._new_http()
        return self._http

    def _public_app(self, cache: msal.SerializableTokenCache, *, http: requests.Session,
                    http_cache: dict[str, Any]) -> Any:
        import msal  # noqa: PLC0415 (lazy: see msal_errors)
        try:
            return msal.PublicClientApplication(
                self.client_id, authority=self.authority, instance_discovery=instance_discovery_for(self.authority),
                http_client=http, http_cache=http_cache, token_cache=cache,
            )
        except msal_failures() as e:
            raise _unavailable_from(e, "reading the authority's metadata") from None
        except ValueError:
            raise _unreadable_authority(self.authority) from None

    # -- device-code sign-in -------------------------------------------------------------------------------
    def start_device_flow(self) -> DeviceFlow:
        """Ask Entra for a sign-in code the agent enters at Microsoft's page (any device, no inbound port)."""
        http = self._new_http()
        app = self._public_app(_new_cache(), http=http, http_cache={})
        try:
            flow = app.initiate_device_flow(scopes=self._scopes)
        except msal_failures() as e:
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
        # The code (and the device code msal polls with) signs in whoever enters it first until it expires, and
        # slack-sdk logs the DM that carries it at DEBUG: no log line may hold either while they work.
        for live in (flow["user_code"], flow.get("device_code")):
            remember_secret(str(live) if live else None, ttl=max(expires - time.time(), 1.0))
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
            except msal_failures() as e:
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
        if _aadsts(result) in _BLOCKED_BY_POLICY:
            return SignInBlockedError(f"Entra ID's Conditional Access blocked this sign-in ({fields['code']}).",
                                      reason="blocked_by_policy", **fields)
        return DeviceFlowError(f"The Microsoft sign-in did not complete ({error}, {fields['code']}); start it "
                               "again.", reason=error, **fields)

    # -- browser sign-in (authorization code with PKCE) -------------------------------------------------------
    def start_browser_flow(self, redirect_uri: str, *, login_hint: str | None = None) -> BrowserFlow:
        """A sign-in URL for the agent's browser: msal's auth-code flow with PKCE, a fresh ``state`` and ``nonce``,
        and ``prompt=login`` (Microsoft asks for the password even in a browser already signed in, so the account
        is the one typed now, not whoever's session the browser holds). No network call: msal reads the
        authority's metadata only when the app is built, and that is cached."""
        with self._lock:
            app = self._public_app(_new_cache(), http=self._shared_http(), http_cache=self._http_cache)
        # form_post: Microsoft posts the code to the callback, so it never sits in a URL (history, logs, Referer).
        flow = app.initiate_auth_code_flow(scopes=self._scopes, redirect_uri=redirect_uri, prompt="login",
                                           login_hint=login_hint or None, response_mode="form_post")
        # The link is live while its state is: slack-sdk logs the DM carrying it at DEBUG, so it is redacted there.
        remember_secret(str(flow["state"]), ttl=BROWSER_SIGN_IN_S)
        return BrowserFlow(auth_uri=str(flow["auth_uri"]), state=str(flow["state"]),
                           encrypted_flow=self._encrypt(json.dumps(flow)),
                           expires_at=datetime.fromtimestamp(time.time() + BROWSER_SIGN_IN_S, UTC))

    def finish_browser_flow(self, encrypted_flow: str, auth_response: dict[str, str]) -> LinkedAccount:
        """Redeem the code Microsoft sent back (with the flow's PKCE verifier; msal checks ``state`` and the id
        token's ``nonce``) and check the account as ``wait_for_device_flow`` does. Raises DeviceFlowError (with a
        ``reason``), DeviceFlowDeclinedError, or EntraUnavailableError."""
        try:
            flow = json.loads(self._fernet.decrypt(encrypted_flow.encode("ascii")).decode())
        except (InvalidToken, UnicodeError, ValueError):
            raise DeviceFlowError("The sign-in's stored state could not be decrypted (was the token-cache key "
                                  "changed?); start it again.", reason="undecryptable") from None
        # msal logs the token request's form (code and code_verifier among it) at DEBUG; every log handler redacts
        # what is registered, so neither reaches a log line, whoever logs it.
        for secret in (auth_response.get("code"), flow.get("code_verifier")):
            remember_secret(secret, ttl=BROWSER_SIGN_IN_S)
        http = self._new_http()
        app = self._public_app(_new_cache(), http=http, http_cache={})
        answer = dict(auth_response)
        if "error" in answer and not _OAUTH_ERROR.fullmatch(answer["error"]):
            # The browser's post, not Microsoft's word: whoever holds a live link could otherwise put a sentence
            # of their own (a link, in the bot's voice) into the agent's DM and the audit trail.
            answer["error"] = "invalid_request"
        try:
            result = app.acquire_token_by_auth_code_flow(flow, answer, scopes=self._scopes)
        except msal_failures() as e:
            raise _unavailable_from(e, "finishing a browser sign-in") from None
        except ValueError:  # msal: the state (or the response's shape) does not match the flow
            raise DeviceFlowError("Microsoft's answer does not belong to this sign-in; start it again.",
                                  reason="state_mismatch") from None
        except RuntimeError:  # msal: the id token's nonce is not this flow's (a replayed or injected answer)
            raise DeviceFlowError("Microsoft's answer carried an id token issued for another sign-in; start it "
                                  "again.", reason="nonce_mismatch") from None
        if "access_token" not in result:
            error = str(result.get("error") or "unknown_error")
            if error == "access_denied" and not result.get("error_codes"):
                raise DeviceFlowDeclinedError("The Microsoft sign-in was declined or cancelled, so the account was "
                                              "not linked.", reason="declined")
            raise self._device_error(result, timed_out=False)
        return self._linked(app, result)

    def _linked(self, app: Any, result: dict[str, Any]) -> LinkedAccount:
        claims = result.get("id_token_claims") or {}
        upn = str(claims.get("preferred_username") or claims.get("upn") or "")
        wrong_tenant = sign_in_tenant_problem(claims, str(getattr(app.authority, "tenant", "") or ""))
        if wrong_tenant:
            raise DeviceFlowError(f"The Microsoft sign-in of {upn or 'the agent'} is not one of this tenant's: "
                                  f"{wrong_tenant}. Nothing was linked.", reason="wrong_tenant")
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
        cache = _new_cache()
        cache.deserialize(self._decrypt(encrypted))
        with self._lock:
            app = self._public_app(cache, http=self._shared_http(), http_cache=self._http_cache)
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
            except msal_failures() as e:
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

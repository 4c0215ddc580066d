"""The identity platform's endpoints: OIDC discovery, JWKS, token, device authorization (the interactive sign-in
page is :mod:`lab.entra.signin`).

msal talks to these changed only in authority (``https://127.0.0.1:PORT/TENANT``, ``instance_discovery=False``)
and CA, so the shapes are Microsoft's: discovery fields msal reads, the device-code answer, token answers
with ``id_token`` and ``client_info`` for user flows (msal needs both to remember the account), and error
bodies with ``error``, ``error_description`` (``AADSTS<n>: ...``) and ``error_codes``.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import secrets
import time
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from lab.entra import config
from lab.entra.state import DeviceFlow, State
from lab.entra.tokens import Grant
from lab.entra.wire import LOG_APP, LOG_USER, AadError, aad_error, utcnow

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
AUTHORIZATION_CODE_GRANT = "authorization_code"
_GRAPH_PREFIXES = (f"{config.GRAPH_RESOURCE}/", f"{config.GRAPH_APP_ID}/")
_USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ23456789"


def pkce_matches(verifier: str, challenge: str, method: str) -> bool:
    """RFC 7636: ``S256`` is base64url(SHA-256(verifier)) without padding; ``plain`` is the verifier itself."""
    if method == "plain":
        return secrets.compare_digest(verifier.encode(), challenge.encode())
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii", "replace")).digest()).rstrip(b"=")
    return secrets.compare_digest(digest, challenge.encode())


def _bad(error: str, code: int, description: str, status: int = 400) -> AadError:
    return AadError(status, error, code, description)


def split_scopes(raw: str) -> tuple[list[str], list[str]]:
    """(Graph permission names, reserved OIDC scopes) of a scope string; any other resource is refused."""
    graph: list[str] = []
    reserved: list[str] = []
    for scope in raw.split():
        if scope in config.RESERVED_SCOPES:
            reserved.append(scope)
            continue
        name = next((scope[len(p):] for p in _GRAPH_PREFIXES if scope.lower().startswith(p.lower())), None)
        if name is None:
            if "/" in scope or scope.startswith("api:"):
                resource = scope.rsplit("/", 1)[0]
                raise _bad("invalid_resource", 500011, f"The resource principal named {resource} was not found in "
                           f"the tenant named {config.TENANT_NAME}. This can happen if the application has not "
                           "been installed by the administrator of the tenant or consented to by any user in the "
                           "tenant. You might have sent your authentication request to the wrong tenant.")
            name = scope
        graph.append(name)
    return graph, reserved


class Identity:
    """The routes under ``/{tenant}/``; the state is shared with Graph and the control API."""

    def __init__(self, state: State) -> None:
        self.s = state

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/{tenant}/v2.0/.well-known/openid-configuration", self.discovery),
            web.get("/{tenant}/discovery/v2.0/keys", self.jwks),
            web.post("/{tenant}/oauth2/v2.0/token", self.token),
            web.post("/{tenant}/oauth2/v2.0/devicecode", self.devicecode),
            web.get("/devicelogin", self.devicelogin),
        ]

    # -- helpers ----------------------------------------------------------------------------------------
    def _check_tenant(self, request: web.Request) -> None:
        tenant = request.match_info["tenant"]
        if tenant.lower() not in (self.s.tenant_id, config.ONPREM_DOMAIN):
            raise _bad("invalid_tenant", 90002, f"Tenant '{tenant}' not found. Check to make sure you have the "
                       "correct tenant ID and are signing into the correct cloud.")

    def _error(self, request: web.Request, err: AadError) -> web.Response:
        return aad_error(request, err, error_uri_base=self.s.base)

    def _down(self) -> AadError | None:
        if not self.s.faults.token_endpoint_down:
            return None
        return AadError(503, "temporarily_unavailable", 90033, "A transient error has occurred. Please try again.",
                        headers={"Retry-After": self.s.faults.retry_after_header()})

    def _person(self, key: str) -> dict[str, str]:
        user = self.s.user_by_key(key)
        assert user is not None
        return {"id": user.id, "upn": user.person.upn, "name": user.person.display_name}

    # -- discovery --------------------------------------------------------------------------------------
    async def discovery(self, request: web.Request) -> web.Response:
        try:
            self._check_tenant(request)
        except AadError as err:
            return self._error(request, err)
        a = self.s.authority
        return web.json_response({
            "token_endpoint": self.s.token_endpoint,
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{a}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": self.s.issuer.id_token_issuer,
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{self.s.graph_base}/oidc/userinfo",
            "authorization_endpoint": f"{a}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": self.s.device_endpoint,
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{a}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce",
                                 "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "resetbot.lab",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
        })

    async def jwks(self, request: web.Request) -> web.Response:
        return web.json_response(self.s.issuer.jwks())

    async def devicelogin(self, request: web.Request) -> web.Response:
        return web.Response(text="resetbot lab: device sign-ins are approved with POST "
                            f"{self.s.control}/device/approve {{\"user_code\", \"upn\"}}.\n")

    # -- device authorization ---------------------------------------------------------------------------
    async def devicecode(self, request: web.Request) -> web.Response:
        form = await request.post()
        client_id = str(form.get("client_id", ""))
        request[LOG_APP] = client_id or None
        try:
            if (down := self._down()) is not None:
                raise down
            self._check_tenant(request)
            self._public_client(client_id, form)
            requested = tuple(str(form.get("scope", "")).split())
            graph, _ = split_scopes(" ".join(requested))
            granted = self._delegated(graph)
        except AadError as err:
            return self._error(request, err)
        now = utcnow()
        user_code = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(9))
        flow = DeviceFlow(
            device_code=f"DAQABIQEAAAD{secrets.token_urlsafe(96)}", user_code=user_code, client_id=client_id,
            requested=requested, granted=granted, created=now,
            expires_at=now + dt.timedelta(seconds=config.DEVICE_CODE_LIFETIME_S),
            interval=self.s.device_code_interval_s,
        )
        self.s.device_flows[flow.device_code] = flow
        uri = f"{self.s.base}/devicelogin"
        return web.json_response({
            "user_code": user_code,
            "device_code": flow.device_code,
            "verification_uri": uri,
            "expires_in": config.DEVICE_CODE_LIFETIME_S,
            "interval": flow.interval,
            "message": f"To sign in, use a web browser to open the page {uri} and enter the code {user_code} to "
                       "authenticate.",
        })

    def _public_client(self, client_id: str, form: Any) -> None:
        if client_id == config.APP_CLIENT_ID:
            raise _bad("invalid_client", 7000218, "The request body must contain the following parameter: "
                       "'client_assertion' or 'client_secret'.", 401)
        if client_id != config.PUBLIC_CLIENT_ID:
            raise self._unknown_client(client_id)
        if form.get("client_secret") or form.get("client_assertion"):
            raise _bad("invalid_client", 700025, "Client is public so neither 'client_assertion' nor "
                       "'client_secret' should be presented.", 401)

    def _unknown_client(self, client_id: str) -> AadError:
        return _bad("unauthorized_client", 700016, f"Application with identifier '{client_id}' was not found in "
                    f"the directory '{config.TENANT_NAME}'. This can happen if the application has not been "
                    "installed by the administrator of the tenant or consented to by any user in the tenant. You "
                    "may have sent your authentication request to the wrong tenant.")

    @staticmethod
    def _delegated(graph: list[str]) -> tuple[str, ...]:
        granted: list[str] = []
        for name in graph:
            if name == ".default":
                granted.extend(config.DELEGATED_SCOPES)
                continue
            match = next((s for s in config.DELEGATED_SCOPES if s.lower() == name.lower()), None)
            if match is None:
                raise _bad("invalid_scope", 65001, "The user or administrator has not consented to use the "
                           f"application with ID '{config.PUBLIC_CLIENT_ID}' named '{config.PUBLIC_CLIENT_NAME}'. "
                           f"Send an interactive authorization request for this user and resource. ('{name}' is "
                           "not a consented permission in the lab tenant.)")
            granted.append(match)
        return tuple(dict.fromkeys(granted))

    # -- token ------------------------------------------------------------------------------------------
    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        client_id = str(form.get("client_id", ""))
        basic = self._basic_auth(request)
        if basic is not None and not client_id:
            client_id = basic[0]
        request[LOG_APP] = client_id or None
        try:
            if (down := self._down()) is not None:
                raise down
            self._check_tenant(request)
            grant_type = str(form.get("grant_type", ""))
            if not grant_type:
                raise _bad("invalid_request", 900144, "The request body must contain the following parameter: "
                           "'grant_type'.")
            if grant_type == "client_credentials":
                body = self._client_credentials(client_id, form, basic)
            elif grant_type == DEVICE_CODE_GRANT:
                self._public_client(client_id, form)
                body = self._device_code(request, client_id, form)
            elif grant_type == AUTHORIZATION_CODE_GRANT:
                self._public_client(client_id, form)
                body = self._auth_code(request, client_id, form)
            elif grant_type == "refresh_token":
                self._public_client(client_id, form)
                body = self._refresh(request, client_id, form)
            else:
                raise _bad("unsupported_grant_type", 70003, f"The app requested an unsupported grant type "
                           f"'{grant_type}'.")
        except AadError as err:
            return self._error(request, err)
        return web.json_response(body)

    @staticmethod
    def _basic_auth(request: web.Request) -> tuple[str, str] | None:
        header = request.headers.get("Authorization", "")
        if not header.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        return unquote(user), unquote(password)

    def _client_credentials(self, client_id: str, form: Any, basic: tuple[str, str] | None) -> dict[str, Any]:
        if client_id == config.PUBLIC_CLIENT_ID:
            raise _bad("invalid_client", 7000218, "The request body must contain the following parameter: "
                       "'client_assertion' or 'client_secret'.", 401)
        if client_id != config.APP_CLIENT_ID:
            raise self._unknown_client(client_id)
        creds = self.s.credentials
        secret = form.get("client_secret") or (basic[1] if basic else None)
        assertion = form.get("client_assertion")
        if assertion:
            if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
                raise _bad("invalid_request", 50027, "Invalid client_assertion_type; expected "
                           f"'{CLIENT_ASSERTION_TYPE}'.")
            v1 = f"{self.s.base}/{self.s.tenant_id}/oauth2/token"
            creds.verify_assertion(str(assertion), client_id=client_id, audiences=(self.s.token_endpoint, v1))
        elif secret:
            if not creds.secret_matches(str(secret)):
                raise _bad("invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being "
                           "sent in the request is the client secret value, not the client secret ID, for a "
                           f"secret added to app '{client_id}'.", 401)
        else:
            raise _bad("invalid_client", 7000218, "The request body must contain the following parameter: "
                       "'client_assertion' or 'client_secret'.", 401)
        scope = str(form.get("scope", ""))
        graph, _ = split_scopes(scope)
        if graph != [".default"]:
            raise _bad("invalid_scope", 1002012, f"The provided value for scope {scope} is not valid. Client "
                       "credential flows must have a scope value with /.default suffixed to the resource "
                       "identifier (application ID URI).")
        # A revoked permission is missing from tokens issued after the revocation; earlier ones keep it until they
        # expire, as Entra's do.
        roles = tuple(r for r in self.s.app_roles if r not in self.s.faults.revoked_app_roles)
        token = self.s.issuer.app_token(client_id=client_id, app_name=config.APP_NAME, roles=roles)
        return {"token_type": "Bearer", "expires_in": config.ACCESS_TOKEN_LIFETIME_S,
                "ext_expires_in": config.ACCESS_TOKEN_LIFETIME_S, "access_token": token}

    def _device_code(self, request: web.Request, client_id: str, form: Any) -> dict[str, Any]:
        flow = self.s.device_flows.get(str(form.get("device_code", "")))
        if flow is None or flow.client_id != client_id:
            raise _bad("bad_verification_code", 70000, "The provided value for the input parameter "
                       "'device_code' is not valid.")
        now = time.monotonic()
        if flow.status == "pending" and utcnow() >= flow.expires_at:
            flow.status = "expired"
        if flow.status == "expired":
            raise _bad("expired_token", 70020, "The provided value for the input parameter 'device_code' is not "
                       "valid. This device code has expired.")
        if flow.status == "declined":
            raise _bad("authorization_declined", 70000, "The user declined the authorization request.")
        if flow.status == "redeemed":
            raise _bad("invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with "
                       "a new valid code or use an existing refresh token.")
        if flow.status == "pending":
            too_soon = flow.polled_too_soon(now)
            flow.last_poll = now
            if too_soon:
                flow.interval += 5
                raise _bad("slow_down", 70032, "Polling too frequently; wait 'interval' seconds between polls "
                           "(now increased by 5 seconds).")
            raise _bad("authorization_pending", 70016, "The provided request has not yet been authorized by the "
                       "user. The user must input their code.")
        assert flow.person_key is not None
        flow.status = "redeemed"
        if self.s.faults.device_code_blocked:
            # Conditional Access evaluates the sign-in the person just completed and refuses to issue a token;
            # the device-code client hears it at its next poll (as ``az login --use-device-code`` shows it).
            raise _bad("invalid_grant", 53003, "Access has been blocked by Conditional Access policies. The "
                       "access policy does not allow token issuance.")
        offline = "offline_access" in flow.requested
        return self._user_tokens(request, form, client_id=client_id, person_key=flow.person_key,
                                 granted=flow.granted, requested=flow.requested, offline=offline)

    def _auth_code(self, request: web.Request, client_id: str, form: Any) -> dict[str, Any]:
        """The ``authorization_code`` grant: once, within its lifetime, same client and ``redirect_uri``, and the
        ``code_verifier`` of the ``code_challenge`` the sign-in was started with (PKCE)."""
        grant = self.s.auth_codes.get(str(form.get("code", "")))
        if grant is None:
            raise _bad("invalid_grant", 70000, "The provided value for the 'code' parameter is not valid.")
        if grant.redeemed:
            raise _bad("invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with "
                       "a new valid code or use an existing refresh token.")
        if utcnow() >= grant.expires_at:
            raise _bad("invalid_grant", 70008, "The provided authorization code or refresh token has expired due "
                       "to inactivity.")
        req = grant.request
        if client_id != req.client_id:
            raise _bad("invalid_grant", 70000, "The provided value for the 'code' parameter is not valid (it was "
                       "issued to another client).")
        if str(form.get("redirect_uri", "")) != req.redirect_uri:
            raise _bad("invalid_grant", 50148, "The redirect_uri does not match the one the authorization code "
                       "was issued for.")
        verifier = str(form.get("code_verifier", ""))
        if req.code_challenge_method and not (verifier and pkce_matches(verifier, req.code_challenge,
                                                                        req.code_challenge_method)):
            raise _bad("invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in "
                       "the authorization request.")
        self.s.auth_codes[str(form["code"])] = dataclasses.replace(grant, redeemed=True)
        return self._user_tokens(request, form, client_id=client_id, person_key=grant.person_key,
                                 granted=req.granted, requested=req.requested,
                                 offline="offline_access" in req.requested, nonce=req.nonce)

    def _refresh(self, request: web.Request, client_id: str, form: Any) -> dict[str, Any]:
        grant = self.s.issuer.refresh_tokens.get(str(form.get("refresh_token", "")))
        if grant is None or grant.client_id != client_id:
            raise _bad("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid. (The refresh "
                       "token is not one this lab issued to this client.)")
        user = self.s.user_by_key(grant.person_key)
        if user is None or user.person.has("disabled"):
            raise _bad("invalid_grant", 50057, "The user account is disabled.")
        valid_from = user.sign_in_sessions_valid_from or user.created
        if grant.issued < valid_from:
            raise _bad("invalid_grant", 50173, "The provided grant has expired due to it being revoked, a fresh auth "
                       f"token is needed. The user might have changed or reset their password. The grant was issued "
                       f"on '{grant.issued.isoformat()}' and the TokensValidFrom date (before which tokens are not "
                       f"valid) for this user is '{valid_from.isoformat()}'.")
        requested = tuple(str(form.get("scope", "")).split())
        graph, _ = split_scopes(" ".join(requested))
        granted = self._delegated(graph) if graph else grant.scopes
        return self._user_tokens(request, form, client_id=client_id, person_key=grant.person_key, granted=granted,
                                 requested=requested, offline=True)

    def _user_tokens(self, request: web.Request, form: Any, *, client_id: str, person_key: str,
                     granted: tuple[str, ...], requested: tuple[str, ...], offline: bool,
                     nonce: str | None = None) -> dict[str, Any]:
        """A user token answer; a refresh token only when offline_access was asked for (msal always asks)."""
        person = self._person(person_key)
        request[LOG_USER] = person["upn"]
        issuer = self.s.issuer
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(requested) if requested else " ".join(granted),
            "expires_in": config.ACCESS_TOKEN_LIFETIME_S,
            "ext_expires_in": config.ACCESS_TOKEN_LIFETIME_S,
            "access_token": issuer.user_token(client_id=client_id, app_name=config.PUBLIC_CLIENT_NAME,
                                              person=person, scopes=granted),
            "id_token": issuer.id_token(client_id=client_id, person=person, nonce=nonce,
                                        tid=self.s.faults.sign_in_tenant or None),
        }
        if offline:
            body["refresh_token"] = issuer.new_refresh_token(Grant(client_id, person_key, granted))
        if str(form.get("client_info", "")) == "1":
            body["client_info"] = issuer.client_info(person)
        return body

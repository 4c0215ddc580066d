"""The :class:`GraphClient`: Microsoft Graph v1.0 over one httpx client, with the one request path (the bearer
token, ``client-request-id``, retries and Retry-After, same-origin follow-ups), the reads, resetPassword and its
long-running operation, Temporary Access Pass creation and deletion, and revokeSignInSessions.

httpx is imported when the first request is made, not at start: with the httpcore transport it loads, it costs
about 60 ms, and ``resetbot run`` connects to Slack before it first calls Graph. So ``httpx`` is named at module
level only for the type checker; the httpx client is built on first use (``bot.clients.http.graph_http_client``),
while its TLS context (the CA bundle, which must fail the start when unreadable) is made in ``__init__``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from pydantic import SecretStr

from bot.clients.entra_auth import TokenSource
from bot.clients.graph.interface import (
    GraphUser,
    OrgSync,
    ResetAccepted,
    ResetOperation,
    RoleGroups,
    TapMethod,
    TapResult,
    parse_graph_time,
)
from bot.clients.graph.wire import _graph_error, _retry_after, _Sealed, _segment, odata_string
from bot.clients.http import DEFAULT_TIMEOUT_S, graph_http_client, new_correlation_id, tls_context
from bot.domain.reset_polling import next_poll
from bot.errors import GraphError, GraphUnavailableError
from bot.logs import HELD_SECRET_TTL_S, remember_secret

if TYPE_CHECKING:
    import httpx

# Named after the package, as before the split: every log line shows its logger's name.
log = logging.getLogger("bot.clients.graph")

#: The fixed id of the password authentication method (Graph documents it).
PASSWORD_METHOD_ID = "28c10230-6103-485e-b985-444c60001490"  # noqa: S105 - an id, not a password

USER_SELECT: tuple[str, ...] = (
    "id", "userPrincipalName", "mail", "displayName", "accountEnabled", "onPremisesSyncEnabled",
    "onPremisesSamAccountName", "onPremisesDistinguishedName", "onPremisesDomainName",
    "onPremisesUserPrincipalName", "onPremisesLastSyncDateTime", "lastPasswordChangeDateTime",
)
_ORG_SELECT = "onPremisesSyncEnabled,onPremisesLastSyncDateTime,onPremisesLastPasswordSyncDateTime"
#: Graph's answer where a PIM read needs Entra ID P2 (or Governance) and the tenant has none.
_NO_PIM = "AadPremiumLicenseRequired"
_PIM_GROUPS = "/identityGovernance/privilegedAccess/group"
#: Values per ``in (...)`` clause: Graph caps the list (15 for directory objects); more are asked in turns.
_MAX_IN_VALUES = 15


class GraphClient:
    """A :class:`Graph` over one httpx client (TLS from ``ca_file`` or the system, ``trust_env=False``).

    Reads use the app's token (``app_tokens``); resetPassword uses the agent's delegated token. 429 and 5xx
    are retried at most ``max_retries`` times, honouring Retry-After (a wait longer than ``max_retry_wait_s``
    is not slept: the caller gets GraphThrottledError at once); without Retry-After the waits grow
    exponentially from ``backoff_s``. Thread-safe (httpx.Client is).
    """

    def __init__(self, base_url: str, app_tokens: TokenSource, *, ca_file: str | Path | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S, max_retries: int = 3, max_retry_wait_s: float = 60.0,
                 backoff_s: float = 0.5, proxy: str | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        base = urlsplit(self.base_url)
        if base.scheme != "https" or not base.hostname:
            raise ValueError("The Graph base URL must be https, like https://graph.microsoft.com/v1.0.")
        self._origin = (base.scheme, base.hostname.lower(), base.port or 443)
        self._tokens = app_tokens
        tls_context(ca_file)  # an unreadable CA bundle fails here, at start-up (the context is kept: cached)
        self._ca_file, self._proxy, self._timeout = ca_file, proxy, timeout
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()
        self.max_retries = max_retries
        self.max_retry_wait_s = max_retry_wait_s
        self.backoff_s = backoff_s
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"GraphClient(base_url={self.base_url!r})"

    @property
    def _http(self) -> httpx.Client:
        """The one httpx client, built by the first request (see the module doc)."""
        client = self._client
        if client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = graph_http_client(self._ca_file, proxy=self._proxy, timeout=self._timeout)
                client = self._client
        return client

    @_http.setter
    def _http(self, client: httpx.Client) -> None:
        self._client = client

    def close(self) -> None:
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the one request path ------------------------------------------------------------------------------
    def _url(self, path_or_url: str) -> str:
        if path_or_url.startswith("https://"):
            parts = urlsplit(path_or_url)
            if (parts.scheme, (parts.hostname or "").lower(), parts.port or 443) != self._origin:
                # A bearer token must never go to another host, whatever a Location or nextLink says.
                raise GraphError(f"Microsoft Graph pointed the bot at {parts.scheme}://{parts.netloc}, which is not "
                                 f"{self.base_url}; the call was not made.")
            return path_or_url
        return self.base_url + path_or_url

    def _call(self, method: str, path: str, *, what: str, access_token: str | None = None,
              params: Mapping[str, str] | None = None, body: Mapping[str, Any] | _Sealed | None = None,
              client_request_id: str, ok: tuple[int, ...] = (200,), none_on_404: bool = False,
              secret: str | None = None, sleep: Callable[[float], None] | None = None) -> httpx.Response | None:
        """Send with retries; the answer when its status is in ``ok`` (None on 404 if ``none_on_404``), else
        the bot.errors exception. ``secret`` (a password being set) is scrubbed from any error text."""
        import httpx  # noqa: PLC0415 (lazy: see the module doc)
        url = self._url(path)
        delegated = access_token is not None
        pause = sleep or self._sleep
        retries = 0
        while True:
            token = access_token if access_token is not None else self._tokens.token()
            headers = {"Authorization": f"Bearer {token}", "client-request-id": client_request_id,
                       "return-client-request-id": "true", "Accept": "application/json"}
            content = None
            if body is not None:
                headers["Content-Type"] = "application/json"
                content = body.content() if isinstance(body, _Sealed) else json.dumps(body).encode()
            try:
                response = self._http.request(method, url, params=params, headers=headers, content=content)
            except httpx.TransportError as e:
                # A POST whose request may have reached Graph is not repeated: it could act twice.
                safe = method == "GET" or isinstance(e, httpx.ConnectError | httpx.ConnectTimeout)
                if safe and retries < self.max_retries:
                    wait = self.backoff_s * 2 ** retries
                    log.info("Graph %s %s: %s; retry %d in %.2fs", method, path, type(e).__name__, retries + 1, wait)
                    retries += 1
                    pause(wait)
                    continue
                outcome = "" if safe else " (the outcome is unknown: check before repeating it)"
                err = GraphUnavailableError(f"Microsoft Graph could not be reached to {what} "
                                            f"({type(e).__name__}){outcome}.", client_request_id=client_request_id)
                raise err from (None if secret else e)
            status = response.status_code
            log.debug("Graph %s %s -> %d (request-id %s, client-request-id %s)", method, path, status,
                      response.headers.get("request-id"), client_request_id)
            if status in ok:
                return response
            if status == 404 and none_on_404:
                return None
            # 429 and 503 say the request was not processed; another 5xx (500, 502, 504) may come after a POST
            # took effect, and a repeated resetPassword would then be refused by password history.
            if status in (429, 503) or (status >= 500 and method == "GET"):
                after = _retry_after(response)
                wait = after if after is not None else self.backoff_s * 2 ** retries
                if retries < self.max_retries and wait <= self.max_retry_wait_s:
                    log.info("Graph %s %s -> %d; retry %d in %.2fs", method, path, status, retries + 1, wait)
                    retries += 1
                    pause(wait)
                    continue
            raise _graph_error(response, what=what, delegated=delegated, client_request_id=client_request_id,
                               secret=secret, retries=retries, method=method)

    @staticmethod
    def _json(response: httpx.Response, what: str, client_request_id: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise GraphError(f"Microsoft Graph answered with something other than a JSON object when asked to "
                             f"{what}.", request_id=response.headers.get("request-id"),
                             client_request_id=client_request_id, status=response.status_code)
        return body

    def _collect(self, path: str, params: Mapping[str, str] | None, *, what: str, crid: str,
                 limit: int | None = None) -> list[dict[str, Any]]:
        """Every ``value`` item across ``@odata.nextLink`` pages (at most ``limit``)."""
        items: list[dict[str, Any]] = []
        next_url: str | None = path
        query = params
        while next_url:
            response = self._call("GET", next_url, params=query, what=what, client_request_id=crid)
            assert response is not None
            body = self._json(response, what, crid)
            items += [v for v in body.get("value") or [] if isinstance(v, dict)]
            if limit is not None and len(items) >= limit:
                return items[:limit]
            link = body.get("@odata.nextLink")
            next_url, query = (str(link), None) if link else (None, None)
        return items

    # -- reads (app token) ---------------------------------------------------------------------------------
    def get_user(self, id_or_upn: str, *, client_request_id: str | None = None) -> GraphUser | None:
        """The user by object id or UPN with the on-prem facts, or None when Entra has no such user."""
        key = id_or_upn.strip()
        if not key or set(key) <= {"."}:
            return None
        crid = client_request_id or new_correlation_id()
        response = self._call("GET", f"/users/{_segment(key)}", params={"$select": ",".join(USER_SELECT)},
                              what=f"read user {key}", client_request_id=crid, none_on_404=True)
        return GraphUser.from_graph(self._json(response, "read a user", crid)) if response else None

    def phones(self, user_id: str, *, client_request_id: str | None = None) -> list[str]:
        """The numbers the directory holds for the user (``mobilePhone``, then ``businessPhones``), for a
        call-back; never a number anyone typed. Empty for an unknown user."""
        crid = client_request_id or new_correlation_id()
        response = self._call("GET", f"/users/{_segment(user_id)}", params={"$select": "mobilePhone,businessPhones"},
                              what=f"read the phone numbers of {user_id}", client_request_id=crid, none_on_404=True)
        if not response:
            return []
        body = self._json(response, "read phone numbers", crid)
        numbers = [body.get("mobilePhone"), *(body.get("businessPhones") or [])]
        return [str(n).strip() for n in dict.fromkeys(numbers) if isinstance(n, str) and n.strip()]

    def find_users(self, email_or_upn: str, *, client_request_id: str | None = None) -> list[GraphUser]:
        """Users whose mail or UPN equals the value (case-insensitive, as Graph compares)."""
        value = email_or_upn.strip()
        if not value:
            return []
        crid = client_request_id or new_correlation_id()
        literal = odata_string(value)
        params = {"$filter": f"mail eq {literal} or userPrincipalName eq {literal}",
                  "$select": ",".join(USER_SELECT)}
        found = self._collect("/users", params, what=f"look up {value}", crid=crid)
        return [GraphUser.from_graph(u) for u in found]

    def search_users(self, name: str, limit: int = 10, *, client_request_id: str | None = None) -> list[GraphUser]:
        """Users whose display name, given name or surname starts with ``name`` (at most ``limit``)."""
        value = name.strip()
        if not value or limit < 1:
            return []
        crid = client_request_id or new_correlation_id()
        literal = odata_string(value)
        flt = " or ".join(f"startswith({p},{literal})" for p in ("displayName", "givenName", "surname"))
        params = {"$filter": flt, "$select": ",".join(USER_SELECT), "$top": str(min(limit, 999))}
        found = self._collect("/users", params, what=f"search users named {value}", crid=crid, limit=limit)
        return [GraphUser.from_graph(u) for u in found]

    def manager_of(self, user_id: str, *, client_request_id: str | None = None) -> GraphUser | None:
        """The user's manager in Entra, or None when there is none (or it is not a user, e.g. a contact)."""
        crid = client_request_id or new_correlation_id()
        response = self._call("GET", f"/users/{_segment(user_id)}/manager",
                              params={"$select": ",".join(USER_SELECT)}, what=f"read the manager of {user_id}",
                              client_request_id=crid, none_on_404=True)
        if response is None:
            return None
        body = self._json(response, "read a manager", crid)
        if body.get("@odata.type", "#microsoft.graph.user") != "#microsoft.graph.user":
            return None
        return GraphUser.from_graph(body)

    def directory_roles_of(self, user_id: str, *, client_request_id: str | None = None) -> list[str]:
        """Display names of the Entra directory roles the user holds (directly or through groups)."""
        crid = client_request_id or new_correlation_id()
        objects = self._collect(f"/users/{_segment(user_id)}/transitiveMemberOf", {"$select": "id,displayName"},
                                what=f"read the roles of {user_id}", crid=crid)
        return [str(o.get("displayName") or "") for o in objects
                if o.get("@odata.type") == "#microsoft.graph.directoryRole"]

    def role_assignments_of(self, principals: str | Sequence[str], *,
                            client_request_id: str | None = None) -> list[str]:
        """Display names of every Entra role these principals (a user, and the role-assignable groups they are in)
        hold *actively* by assignment: built-in or custom, tenant-wide or scoped to an administrative unit.
        ``transitiveMemberOf`` shows none of the custom or scoped ones (a custom role is never a directoryRole
        object; a scoped one is a scoped role membership), and a role assigned to a group names the group as its
        ``principalId``, so a protection check that read only the user's own would miss them. A role whose
        definition Graph does not expand is named by its definition id (which no table knows: it counts as the most
        privileged)."""
        return self._role_names("/roleManagement/directory/roleAssignments", principals, client_request_id,
                                what="read role assignments")

    def eligible_roles_of(self, principals: str | Sequence[str], *,
                          client_request_id: str | None = None) -> list[str]:
        """Display names of the Entra roles these principals may activate through PIM (eligible, not yet held): one
        activation away from holding them, so as protected as the holders. A tenant without Entra ID P2 (or
        Governance) has no PIM, and Graph answers 400 ``AadPremiumLicenseRequired``: nobody can be eligible there, so
        that answer is an empty list; any other refusal raises (the caller fails closed)."""
        try:
            return self._role_names("/roleManagement/directory/roleEligibilityScheduleInstances", principals,
                                    client_request_id, what="read role eligibilities")
        except GraphError as e:
            if e.code == _NO_PIM:
                log.info("no PIM in this tenant (%s): nobody is eligible for a role", e.code)
                return []
            raise

    def role_groups_of(self, user_id: str, *, client_request_id: str | None = None) -> RoleGroups:
        """The role-assignable groups through which the user reaches Entra roles. Held: the groups of
        ``transitiveMemberOf`` with ``isAssignableToRole`` (such a group cannot hold groups, so membership is never
        deeper). Claimable: PIM for Groups (``identityGovernance/privilegedAccess/group``), which Graph lists only
        filtered on ``principalId`` or ``groupId``: every group the user is eligible to join or own; and every
        group they own now, read from the groups' side whatever the licence (an owner may add themselves as a
        member). Without Entra ID P2 there is no PIM (``AadPremiumLicenseRequired``): nothing is eligible that way,
        but ownership still counts. Any other refusal raises."""
        crid = client_request_id or new_correlation_id()
        groups = self._collect(f"/users/{_segment(user_id)}/transitiveMemberOf/microsoft.graph.group",
                               {"$select": "id,isAssignableToRole"}, what=f"read the groups of {user_id}", crid=crid)
        # Not False: Graph nulls every property of a group the app may not read (limited information, no 403),
        # and a group that may be role-assignable is read as one: its role assignments cost a query, never a miss.
        held = [str(g["id"]) for g in groups if g.get("isAssignableToRole") is not False and g.get("id")]
        claimable: list[str] = []
        flt = {"$filter": f"principalId eq {odata_string(user_id)}"}
        try:
            eligible = self._collect(f"{_PIM_GROUPS}/eligibilityScheduleInstances", flt,
                                     what=f"read the PIM group eligibilities of {user_id}", crid=crid)
            active = self._collect(f"{_PIM_GROUPS}/assignmentScheduleInstances", flt,
                                   what=f"read the PIM group assignments of {user_id}", crid=crid)
        except GraphError as e:
            if e.code != _NO_PIM:
                raise
            log.info("no PIM for Groups in this tenant (%s)", e.code)
        else:
            claimable = [str(i["groupId"]) for i in eligible if i.get("groupId")]
            claimable += [str(i["groupId"]) for i in active if i.get("groupId") and i.get("accessId") == "owner"]
            held += [str(i["groupId"]) for i in active if i.get("groupId") and i.get("accessId") == "member"]
        claimable += self._owned_role_groups(user_id, crid)
        held = list(dict.fromkeys(held))
        return RoleGroups(held=tuple(held), claimable=tuple(g for g in dict.fromkeys(claimable) if g not in held))

    def _owned_role_groups(self, user_id: str, crid: str) -> list[str]:
        """The role-assignable groups the user owns. Ownership is no PIM feature: without Entra ID P2 an owner may
        still add himself as a member, so this is read whatever the licence. A user's ``ownedObjects`` takes no
        application permission, so each role-assignable group's owners are read (every page of both lists)."""
        groups = self._collect("/groups", {"$filter": "isAssignableToRole eq true", "$select": "id"},
                               what="list the role-assignable groups", crid=crid)
        owned: list[str] = []
        for group in groups:
            gid = str(group.get("id") or "")
            if not gid:
                continue
            owners = self._collect(f"/groups/{_segment(gid)}/owners", {"$select": "id"},
                                   what=f"read the owners of group {gid}", crid=crid)
            if any(str(o.get("id") or "").lower() == user_id.lower() for o in owners):
                owned.append(gid)
        return owned

    def _role_names(self, path: str, principals: str | Sequence[str], client_request_id: str | None, *,
                    what: str) -> list[str]:
        crid = client_request_id or new_correlation_id()
        ids = [principals] if isinstance(principals, str) else list(dict.fromkeys(principals))
        names: list[str] = []
        for start in range(0, len(ids), _MAX_IN_VALUES):
            chunk = ids[start:start + _MAX_IN_VALUES]
            flt = (f"principalId eq {odata_string(chunk[0])}" if len(chunk) == 1
                   else f"principalId in ({', '.join(odata_string(i) for i in chunk)})")
            items = self._collect(path, {"$filter": flt, "$expand": "roleDefinition"},
                                  what=f"{what} of {', '.join(chunk)}", crid=crid)
            for item in items:
                definition = item.get("roleDefinition")
                name = definition.get("displayName") if isinstance(definition, dict) else None
                names.append(str(name or item.get("roleDefinitionId") or "unknown role"))
        return list(dict.fromkeys(names))

    def organization_sync(self, *, client_request_id: str | None = None) -> OrgSync:
        """The tenant's Entra Connect sync facts (both timestamps stop moving while Connect is down)."""
        crid = client_request_id or new_correlation_id()
        orgs = self._collect("/organization", {"$select": _ORG_SELECT}, what="read the tenant's sync status",
                             crid=crid)
        if not orgs:
            raise GraphError("Microsoft Graph returned no organization for the tenant.", client_request_id=crid)
        org = orgs[0]
        enabled = org.get("onPremisesSyncEnabled")
        return OrgSync(
            on_premises_sync_enabled=enabled if isinstance(enabled, bool) else None,
            last_sync=parse_graph_time(org.get("onPremisesLastSyncDateTime")),
            last_password_sync=parse_graph_time(org.get("onPremisesLastPasswordSyncDateTime")),
        )

    def ping(self, *, client_request_id: str | None = None) -> None:
        """The cheapest proof that the app gets a token and Graph answers it: the tenant's id."""
        crid = client_request_id or new_correlation_id()
        self._call("GET", "/organization", params={"$select": "id"}, what="read the tenant",
                   client_request_id=crid)

    # -- resetPassword (the agent's delegated token) -------------------------------------------------------
    def reset_password(self, *, access_token: str, user_id: str, new_password: SecretStr,
                       poll_timeout_s: float = 60.0, sleep: Callable[[float], None] | None = None,
                       client_request_id: str | None = None,
                       on_accepted: Callable[[str], None] | None = None) -> ResetOperation:
        """Reset ``user_id``'s password as the agent whose token this is, and poll the operation until it
        succeeds or fails (writeback's on-prem verdict), honouring Retry-After, for at most ``poll_timeout_s``
        (then the operation is returned as last seen, still running). Graph's refusals raise. This blocks its
        thread while Graph works: the bot's resets use :meth:`start_reset_password` and
        :meth:`poll_reset_operation` from one poller instead; this is for one-off callers (the doctor's probe).

        ``on_accepted`` gets the operation's absolute URL as soon as Graph accepts (202), before any polling: a
        caller that stores it can still learn the outcome after a crash (:meth:`get_reset_operation`)."""
        pause = sleep or self._sleep
        accepted = self.start_reset_password(access_token=access_token, user_id=user_id, new_password=new_password,
                                             client_request_id=client_request_id, sleep=pause)
        crid, location = accepted.client_request_id, accepted.location
        if on_accepted is not None:
            on_accepted(location)
        started = time.monotonic()
        waited = 0.0  # what was slept, so the bound also holds with an injected sleep

        def elapsed() -> float:
            return max(time.monotonic() - started, waited)

        step = next_poll(accepted.retry_after_s, None, looking_s=0.0)
        first_look: float | None = None
        while True:
            wait = max(0.0, min(step.wait_s, poll_timeout_s - elapsed()))
            if wait > 0:
                pause(wait)
                waited += wait
            first_look = elapsed() if first_look is None else first_look
            op, after = self.poll_reset_operation(access_token=access_token, location=location,
                                                  client_request_id=crid, sleep=pause)
            if op.done or elapsed() >= poll_timeout_s:
                if not op.done:
                    log.warning("reset of %s still %s after %.1fs (client-request-id %s)", user_id, op.status,
                                elapsed(), crid)
                return op
            step = next_poll(after, step.interval_s, looking_s=elapsed() - first_look)

    def start_reset_password(self, *, access_token: str, user_id: str, new_password: SecretStr,
                             client_request_id: str | None = None,
                             sleep: Callable[[float], None] | None = None) -> ResetAccepted:
        """Ask Graph to reset ``user_id``'s password as the agent whose token this is, and return at its 202:
        where to follow the operation and when Graph allows the first look (its ``Retry-After``, when it sends
        one: Microsoft documents the header as optional). Graph's refusals raise."""
        crid = client_request_id or new_correlation_id()
        path = f"/users/{_segment(user_id)}/authentication/methods/{PASSWORD_METHOD_ID}/resetPassword"
        response = self._call("POST", path, access_token=access_token,
                              body=_Sealed({"newPassword": new_password.get_secret_value()}),
                              what=f"reset the password of {user_id}", client_request_id=crid, ok=(202,),
                              secret=new_password.get_secret_value(), sleep=sleep)
        assert response is not None
        raw_location = response.headers.get("Location")
        if not raw_location:
            raise GraphError(f"Microsoft Graph accepted the reset of {user_id} without saying where to follow it "
                             "(no Location); check the user's sign-in logs before trying again.",
                             request_id=response.headers.get("request-id"), client_request_id=crid, status=202)
        location = urljoin(str(response.url), raw_location)
        self._url(location)  # same origin, or GraphError before any token is sent there
        return ResetAccepted(location=location, retry_after_s=_retry_after(response), client_request_id=crid,
                             request_id=response.headers.get("request-id"))

    def poll_reset_operation(self, *, access_token: str, location: str, client_request_id: str | None = None,
                             sleep: Callable[[float], None] | None = None) -> tuple[ResetOperation, float | None]:
        """The operation at ``location`` as it is now, and the Retry-After Graph sent with it (None: none)."""
        return self._poll(access_token, location, client_request_id or new_correlation_id(), sleep=sleep)

    def get_reset_operation(self, *, access_token: str, location: str,
                            client_request_id: str | None = None) -> ResetOperation:
        """The operation at ``location`` (from an earlier :meth:`reset_password`) as it is now."""
        return self._poll(access_token, location, client_request_id or new_correlation_id())[0]

    def _poll(self, access_token: str, location: str, crid: str, *,
              sleep: Callable[[float], None] | None = None) -> tuple[ResetOperation, float | None]:
        response = self._call("GET", location, access_token=access_token, what="follow the password reset",
                              client_request_id=crid, sleep=sleep)
        assert response is not None
        body = self._json(response, "follow the password reset", crid)
        detail = body.get("statusDetail")
        op = ResetOperation(
            id=str(body.get("id") or location.rsplit("/", 1)[-1]),
            status=str(body.get("status") or "unknown"),
            status_detail=str(detail) if detail else None,
            location=location,
            created=parse_graph_time(body.get("createdDateTime")),
            last_action=parse_graph_time(body.get("lastActionDateTime")),
            client_request_id=crid,
            request_id=response.headers.get("request-id"),
        )
        return op, _retry_after(response)

    # -- Temporary Access Pass -----------------------------------------------------------------------------
    def create_temporary_access_pass(self, *, user_id: str, access_token: str, lifetime_minutes: int = 60,
                                     usable_once: bool = True, client_request_id: str | None = None) -> TapResult:
        """A new Temporary Access Pass for the user (it replaces any other), as the agent whose delegated
        ``access_token`` this is. Never as the app: Graph checks an app permission against no directory role, so
        an app-made pass (which satisfies MFA) would bypass the agent's Entra role. The pass is shown by Graph only
        now: it comes back as a SecretStr."""
        if not 10 <= lifetime_minutes <= 43200:
            raise ValueError("lifetime_minutes must be between 10 and 43200")
        crid = client_request_id or new_correlation_id()
        response = self._call("POST", f"/users/{_segment(user_id)}/authentication/temporaryAccessPassMethods",
                              access_token=access_token,
                              body={"lifetimeInMinutes": lifetime_minutes, "isUsableOnce": usable_once},
                              what=f"create a Temporary Access Pass for {user_id}", client_request_id=crid,
                              ok=(200, 201))
        assert response is not None
        body = self._json(response, "create a Temporary Access Pass", crid)
        value = body.pop("temporaryAccessPass", None)
        if not value:
            raise GraphError("Microsoft Graph created a Temporary Access Pass but did not return it; create "
                             "another.", request_id=response.headers.get("request-id"), client_request_id=crid)
        remember_secret(str(value), ttl=HELD_SECRET_TTL_S)
        usable = body.get("isUsable")
        return TapResult(
            id=str(body.get("id") or ""),
            temporary_access_pass=SecretStr(str(value)),
            lifetime_minutes=int(body.get("lifetimeInMinutes") or lifetime_minutes),
            usable_once=bool(body.get("isUsableOnce", usable_once)),
            start=parse_graph_time(body.get("startDateTime")),
            is_usable=usable if isinstance(usable, bool) else None,
            client_request_id=crid,
            request_id=response.headers.get("request-id"),
        )

    def list_temporary_access_passes(self, *, user_id: str, access_token: str,
                                     client_request_id: str | None = None) -> list[TapMethod]:
        """The user's Temporary Access Passes, as the agent whose delegated token this is. Wire facts (Microsoft's
        "List temporaryAccessPassMethods"): ``GET /users/{id}/authentication/temporaryAccessPassMethods`` needs
        ``UserAuthenticationMethod.Read.All`` (or ReadWrite.All, which the agent's sign-in holds) and, on another
        user, a role that may read their methods (Global Reader, Authentication or Privileged Authentication
        Administrator, over the targets that role covers): the role that made a pass may read it. The answer is
        ``{"value": [...]}`` holding at most one pass (a user has one; a new POST deletes the old one), each with
        ``id``, ``createdDateTime``, ``startDateTime``, ``lifetimeInMinutes``, ``isUsableOnce``, ``isUsable`` and
        ``temporaryAccessPass`` null: the value is shown only in the POST's answer. A user Graph does not know is
        a 404, said as GraphError."""
        crid = client_request_id or new_correlation_id()
        response = self._call("GET", f"/users/{_segment(user_id)}/authentication/temporaryAccessPassMethods",
                              access_token=access_token, what=f"list the Temporary Access Passes of {user_id}",
                              client_request_id=crid)
        assert response is not None
        body = self._json(response, "list the Temporary Access Passes", crid)
        raw = body.get("value")
        if not isinstance(raw, list):
            raise GraphError("Microsoft Graph listed a user's Temporary Access Passes without a value list.",
                             request_id=response.headers.get("request-id"), client_request_id=crid)
        passes: list[TapMethod] = []
        for item in raw:
            if not isinstance(item, dict) or not item.get("id"):
                continue
            lifetime = item.get("lifetimeInMinutes")
            usable = item.get("isUsable")
            passes.append(TapMethod(
                id=str(item["id"]), created=parse_graph_time(item.get("createdDateTime")),
                start=parse_graph_time(item.get("startDateTime")),
                lifetime_minutes=lifetime if isinstance(lifetime, int) and not isinstance(lifetime, bool) else None,
                is_usable=usable if isinstance(usable, bool) else None))
        return passes

    def delete_temporary_access_pass(self, *, user_id: str, method_id: str, access_token: str,
                                     client_request_id: str | None = None) -> bool:
        """Delete the user's Temporary Access Pass ``method_id``, as the agent whose delegated token this is (Entra
        checks the same role as for creating one; the app holds no authentication-method permission). True when it
        was deleted now; False when Graph no longer has it (used, expired and cleaned up, replaced, or deleted
        before): either way nobody can sign in with it."""
        crid = client_request_id or new_correlation_id()
        response = self._call("DELETE", f"/users/{_segment(user_id)}/authentication/temporaryAccessPassMethods/"
                                        f"{_segment(method_id)}",
                              access_token=access_token, what=f"delete the Temporary Access Pass of {user_id}",
                              client_request_id=crid, ok=(204, 200), none_on_404=True)
        return response is not None

    def revoke_sign_in_sessions(self, *, user_id: str, access_token: str,
                                client_request_id: str | None = None) -> None:
        """Invalidate every refresh token and session cookie of the user (Graph moves the user's
        ``signInSessionsValidFromDateTime`` to now; apps ask them to sign in again within minutes), as the agent
        whose delegated token this is: Entra checks that its role may sign this user out (the Password Administrator
        may not). Repeating it is harmless."""
        crid = client_request_id or new_correlation_id()
        self._call("POST", f"/users/{_segment(user_id)}/revokeSignInSessions", access_token=access_token,
                   what=f"revoke the sign-in sessions of {user_id}", client_request_id=crid, ok=(200, 204))

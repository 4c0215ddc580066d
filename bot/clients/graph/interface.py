"""What the services see of Microsoft Graph: the :class:`Graph` Protocol they depend on and the frozen values its
calls return (users, the tenant's sync facts, a resetPassword operation, a Temporary Access Pass).

Plain values: building them from Graph's JSON is :mod:`bot.clients.graph.client`'s job, except a user, whose
properties :meth:`GraphUser.from_graph` reads itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import SecretStr

_TERMINAL = frozenset({"succeeded", "failed"})


def parse_graph_time(value: Any) -> datetime | None:
    """Graph's DateTimeOffset (``2024-05-01T12:34:56Z``, up to 7 fraction digits) as an aware datetime."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip()
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        return None
    if when.year <= 1:  # Graph's "never": 0001-01-01T00:00:00Z
        return None
    return when


@dataclass(frozen=True)
class GraphUser:
    id: str
    user_principal_name: str
    mail: str | None
    display_name: str
    account_enabled: bool | None
    on_premises_sync_enabled: bool | None
    on_premises_sam_account_name: str | None
    on_premises_distinguished_name: str | None
    on_premises_domain_name: str | None
    on_premises_user_principal_name: str | None
    on_premises_last_sync: datetime | None
    last_password_change: datetime | None

    @property
    def synced(self) -> bool:
        """Mastered on-prem and synced by Entra Connect (a reset must be written back)."""
        return self.on_premises_sync_enabled is True

    @classmethod
    def from_graph(cls, body: Mapping[str, Any]) -> GraphUser:
        def s(name: str) -> str | None:
            v = body.get(name)
            return str(v) if v not in (None, "") else None

        enabled, synced = body.get("accountEnabled"), body.get("onPremisesSyncEnabled")
        return cls(
            id=str(body["id"]),
            user_principal_name=str(body.get("userPrincipalName") or ""),
            mail=s("mail"),
            display_name=str(body.get("displayName") or ""),
            account_enabled=enabled if isinstance(enabled, bool) else None,
            on_premises_sync_enabled=synced if isinstance(synced, bool) else None,
            on_premises_sam_account_name=s("onPremisesSamAccountName"),
            on_premises_distinguished_name=s("onPremisesDistinguishedName"),
            on_premises_domain_name=s("onPremisesDomainName"),
            on_premises_user_principal_name=s("onPremisesUserPrincipalName"),
            on_premises_last_sync=parse_graph_time(body.get("onPremisesLastSyncDateTime")),
            last_password_change=parse_graph_time(body.get("lastPasswordChangeDateTime")),
        )


@dataclass(frozen=True)
class OrgSync:
    on_premises_sync_enabled: bool | None
    last_sync: datetime | None
    last_password_sync: datetime | None


@dataclass(frozen=True)
class ResetOperation:
    """A resetPassword long-running operation as last seen. ``status`` is Graph's (notStarted, running,
    succeeded, failed); when polling ran out of time it is still non-terminal and ``location`` can be polled
    again later with :meth:`GraphClient.get_reset_operation`."""

    id: str
    status: str
    status_detail: str | None
    location: str
    created: datetime | None
    last_action: datetime | None
    client_request_id: str
    request_id: str | None = None

    @property
    def done(self) -> bool:
        return self.status in _TERMINAL

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


@dataclass(frozen=True)
class ResetAccepted:
    """Graph's 202 to resetPassword: where to follow the operation, and ``retry_after_s``, Graph's Retry-After
    (None when it sent none), counted from the moment the 202 arrived."""

    location: str
    retry_after_s: float | None
    client_request_id: str
    request_id: str | None = None


@dataclass(frozen=True)
class RoleGroups:
    """The role-assignable groups through which a person reaches Entra roles: ``held``, whose roles they hold now
    (an active member); ``claimable``, whose roles they are one step from (eligible through PIM for Groups for
    membership or ownership, or an owner, who may add themselves)."""

    held: tuple[str, ...] = ()
    claimable: tuple[str, ...] = ()


@dataclass(frozen=True)
class TapResult:
    id: str
    temporary_access_pass: SecretStr = field(repr=False)
    lifetime_minutes: int
    usable_once: bool
    start: datetime | None
    is_usable: bool | None
    client_request_id: str
    request_id: str | None = None


@dataclass(frozen=True)
class TapMethod:
    """A Temporary Access Pass a user holds, as Graph lists it (``GET .../temporaryAccessPassMethods``): never its
    value (Graph shows that only in the answer to the POST that made it). ``created`` is Graph's
    ``createdDateTime`` (Graph's clock, UTC); None when Graph left it out."""

    id: str
    created: datetime | None
    start: datetime | None
    lifetime_minutes: int | None
    is_usable: bool | None


class Graph(Protocol):
    """What the services need from Microsoft Graph."""

    def get_user(self, id_or_upn: str, *, client_request_id: str | None = None) -> GraphUser | None: ...
    def find_users(self, email_or_upn: str, *, client_request_id: str | None = None) -> list[GraphUser]: ...
    def search_users(self, name: str, limit: int = 10, *,
                     client_request_id: str | None = None) -> list[GraphUser]: ...
    def manager_of(self, user_id: str, *, client_request_id: str | None = None) -> GraphUser | None: ...
    def directory_roles_of(self, user_id: str, *, client_request_id: str | None = None) -> list[str]: ...
    def role_assignments_of(self, principals: str | Sequence[str], *,
                            client_request_id: str | None = None) -> list[str]: ...
    def eligible_roles_of(self, principals: str | Sequence[str], *,
                          client_request_id: str | None = None) -> list[str]: ...
    def role_groups_of(self, user_id: str, *, client_request_id: str | None = None) -> RoleGroups: ...
    def organization_sync(self, *, client_request_id: str | None = None) -> OrgSync: ...
    def ping(self, *, client_request_id: str | None = None) -> None: ...
    def reset_password(self, *, access_token: str, user_id: str, new_password: SecretStr,
                       poll_timeout_s: float = 60.0, sleep: Callable[[float], None] | None = None,
                       client_request_id: str | None = None,
                       on_accepted: Callable[[str], None] | None = None) -> ResetOperation: ...
    def start_reset_password(self, *, access_token: str, user_id: str, new_password: SecretStr,
                             client_request_id: str | None = None,
                             sleep: Callable[[float], None] | None = None) -> ResetAccepted: ...
    def poll_reset_operation(self, *, access_token: str, location: str, client_request_id: str | None = None,
                             sleep: Callable[[float], None] | None = None
                             ) -> tuple[ResetOperation, float | None]: ...
    def get_reset_operation(self, *, access_token: str, location: str,
                            client_request_id: str | None = None) -> ResetOperation: ...
    def create_temporary_access_pass(self, *, user_id: str, access_token: str, lifetime_minutes: int = 60,
                                     usable_once: bool = True, client_request_id: str | None = None) -> TapResult: ...
    def list_temporary_access_passes(self, *, user_id: str, access_token: str,
                                     client_request_id: str | None = None) -> list[TapMethod]: ...
    def delete_temporary_access_pass(self, *, user_id: str, method_id: str, access_token: str,
                                     client_request_id: str | None = None) -> bool: ...
    def revoke_sign_in_sessions(self, *, user_id: str, access_token: str,
                                client_request_id: str | None = None) -> None: ...

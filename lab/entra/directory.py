"""The Entra directory: the people fixture as Entra sees it after an Entra Connect sync.

On-prem facts that only AD knows (objectSid, objectGUID as the immutable id, pwdLastSet) are read from the
lab AD once at start, as the initial sync would; live account state (disabled, locked, protected) is read
again by the writeback agent at each reset, because that is where Entra Connect's verdict comes from.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from lab.entra import config
from lab.entra.rbac import RoleAssignment, fixture_assignments, is_built_in
from lab.entra.wire import graph_time
from lab.people import AD_GROUPS, Group, Person

_GROUP_NAMESPACE = uuid.UUID("8a0e3d51-7c2b-4f6e-9d18-3b5a7c9e1f20")
#: Built-in critical groups (Domain Admins) are never synced by Entra Connect.
SYNCED_GROUPS: tuple[Group, ...] = tuple(g for g in AD_GROUPS if g != "privileged")

#: Graph's default user properties when no $select is given (v1.0).
DEFAULT_USER_PROPERTIES: tuple[str, ...] = (
    "businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone", "officeLocation",
    "preferredLanguage", "surname", "userPrincipalName", "id",
)


@dataclass(frozen=True)
class OnPremFacts:
    """What the initial sync read from AD for one person."""

    object_sid: str
    immutable_id: str  # base64 of objectGUID (Entra Connect's default source anchor)
    pwd_last_set: dt.datetime | None


@dataclass
class TemporaryAccessPass:
    id: str
    created: dt.datetime
    start: dt.datetime
    lifetime_minutes: int
    usable_once: bool

    def usable(self, now: dt.datetime) -> bool:
        return self.start <= now < self.start + dt.timedelta(minutes=self.lifetime_minutes)

    def as_json(self, now: dt.datetime) -> dict[str, Any]:
        usable = self.usable(now)
        reason = "EnabledByPolicy" if usable else ("NotYetValid" if now < self.start else "Expired")
        return {
            "id": self.id,
            "isUsable": usable,
            "methodUsabilityReason": reason,
            "temporaryAccessPass": None,
            "createdDateTime": graph_time(self.created),
            "startDateTime": graph_time(self.start),
            "lifetimeInMinutes": self.lifetime_minutes,
            "isUsableOnce": self.usable_once,
        }


@dataclass
class EntraUser:
    person: Person
    onprem: OnPremFacts | None  # None for cloud-only people
    created: dt.datetime
    last_password_change: dt.datetime
    force_change_next_sign_in: bool = False
    taps: list[TemporaryAccessPass] = field(default_factory=list)
    #: Active and eligible Entra role assignments (lab.entra.rbac); the fixture's ``entra_roles`` unless changed.
    assignments: list[RoleAssignment] = field(default_factory=list)
    #: ``mail`` as changed since the fixture (``POST /control/users``: an on-prem edit that Entra Connect synced).
    mail: str | None = None
    #: ``displayName`` as changed since the fixture, the same way (up to Entra's 256 characters, any of them).
    display_name: str | None = None
    #: ``signInSessionsValidFromDateTime``: refresh tokens and session cookies issued before it no longer work.
    #: ``revokeSignInSessions`` moves it to now; until then it is when the account was created.
    sign_in_sessions_valid_from: dt.datetime | None = None
    #: How many times ``revokeSignInSessions`` was called for this user (the control API shows it).
    revocations: int = 0

    def __post_init__(self) -> None:
        if not self.assignments:
            self.assignments = fixture_assignments(self.person)
        if self.sign_in_sessions_valid_from is None:
            self.sign_in_sessions_valid_from = self.created

    @property
    def id(self) -> str:
        return self.person.entra_id

    @property
    def synced(self) -> bool:
        return self.onprem is not None

    @property
    def roles(self) -> tuple[str, ...]:
        """The roles this user acts with as a caller: active, tenant-wide (lab.entra.rbac says why)."""
        return tuple(dict.fromkeys(a.role for a in self.assignments if not a.eligible and a.tenant_wide))

    @property
    def held_roles(self) -> tuple[str, ...]:
        """The roles Entra's reset and authentication-method checks count on a target: active, any scope."""
        return tuple(dict.fromkeys(a.role for a in self.assignments if not a.eligible))

    @property
    def directory_roles(self) -> tuple[str, ...]:
        """What ``transitiveMemberOf`` shows as directoryRole objects: active, tenant-wide, built-in."""
        return tuple(r for r in self.roles if is_built_in(r))

    def properties(self, last_sync: dt.datetime) -> dict[str, Any]:
        """Every property the stand-in serves, by Graph's (camelCase) name."""
        p = self.person
        on = self.onprem
        return {
            "id": self.id,
            "accountEnabled": not p.has("disabled"),
            "businessPhones": list(p.business_phones),
            "createdDateTime": graph_time(self.created),
            "department": p.department or None,
            "displayName": self.display_name or p.display_name,
            "givenName": p.given,
            "jobTitle": p.title or None,
            "lastPasswordChangeDateTime": graph_time(self.last_password_change),
            "mail": self.mail or p.mail,
            "mailNickname": p.key,
            "mobilePhone": p.mobile_phone,
            "officeLocation": None,
            "passwordPolicies": None,
            "signInSessionsValidFromDateTime": graph_time(self.sign_in_sessions_valid_from or self.created),
            "preferredLanguage": None,
            "surname": p.surname,
            "usageLocation": "US",
            "userPrincipalName": p.upn,
            "userType": "Member",
            "onPremisesSyncEnabled": True if on else None,
            "onPremisesSamAccountName": p.sam if on else None,
            "onPremisesDistinguishedName": p.dn if on else None,
            "onPremisesSecurityIdentifier": on.object_sid if on else None,
            "onPremisesDomainName": config.ONPREM_DOMAIN if on else None,
            "onPremisesUserPrincipalName": p.upn if on else None,
            "onPremisesImmutableId": on.immutable_id if on else None,
            "onPremisesLastSyncDateTime": graph_time(last_sync) if on else None,
        }


#: Every user property the stand-in serves (what $select may name); EntraUser.properties() has exactly these.
USER_PROPERTIES: tuple[str, ...] = (
    "id", "accountEnabled", "businessPhones", "createdDateTime", "department", "displayName", "givenName",
    "jobTitle", "lastPasswordChangeDateTime", "mail", "mailNickname", "mobilePhone", "officeLocation",
    "passwordPolicies", "preferredLanguage", "surname", "usageLocation", "userPrincipalName", "userType",
    "signInSessionsValidFromDateTime", "onPremisesSyncEnabled", "onPremisesSamAccountName",
    "onPremisesDistinguishedName", "onPremisesSecurityIdentifier", "onPremisesDomainName",
    "onPremisesUserPrincipalName", "onPremisesImmutableId", "onPremisesLastSyncDateTime",
)


class SelectError(ValueError):
    """A $select or $filter the stand-in cannot answer; the message is Graph's."""

    def __init__(self, message: str, *, code: str = "Request_BadRequest") -> None:
        super().__init__(message)
        self.code = code


def parse_select(raw: str | None, known: frozenset[str]) -> tuple[str, ...] | None:
    """Canonical property names of a $select, or None when there is none."""
    if raw is None or not raw.strip():
        return None
    by_lower = {k.lower(): k for k in known}
    out: list[str] = []
    for part in raw.split(","):
        name = part.strip()
        canonical = by_lower.get(name.lower())
        if canonical is None:
            raise SelectError(f"Could not find a property named '{name}' on type 'microsoft.graph.user'.")
        out.append(canonical)
    return tuple(dict.fromkeys(out))


def group_id(group: Group) -> str:
    return str(uuid.uuid5(_GROUP_NAMESPACE, group))


def role_object_id(role: str) -> str:
    return str(uuid.uuid5(_GROUP_NAMESPACE, f"role:{role}"))


def group_json(group: Group) -> dict[str, Any]:
    name = AD_GROUPS[group]
    return {
        "@odata.type": "#microsoft.graph.group",
        "id": group_id(group),
        "displayName": name,
        "description": f"resetbot lab: {group}",
        "groupTypes": [],
        "mailEnabled": False,
        "securityEnabled": True,
        "isAssignableToRole": False,  # Entra Connect never syncs a group as role-assignable
        "onPremisesSyncEnabled": True,
        "onPremisesSamAccountName": name.replace(" ", ""),
        "onPremisesDomainName": config.ONPREM_DOMAIN,
    }


def role_json(role: str) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.directoryRole",
        "id": role_object_id(role),
        "displayName": role,
        "description": None,
        "roleTemplateId": config.ROLE_TEMPLATE_IDS.get(role, str(uuid.uuid5(_GROUP_NAMESPACE, role))),
    }


def immutable_id(object_guid: bytes) -> str:
    return base64.b64encode(object_guid).decode()


# -- $filter ------------------------------------------------------------------------------------------
_STRING = r"'((?:[^']|'')*)'"
_EQ = re.compile(rf"^\s*(\w+)\s+eq\s+(?:{_STRING}|(true|false|null))\s*$", re.IGNORECASE)
_STARTSWITH = re.compile(rf"^\s*startswith\(\s*(\w+)\s*,\s*{_STRING}\s*\)\s*$", re.IGNORECASE)
_EQ_FILTERABLE = ("id", "mail", "userPrincipalName", "displayName", "mailNickname", "givenName", "surname",
                  "onPremisesSamAccountName", "onPremisesImmutableId", "accountEnabled", "onPremisesSyncEnabled")
_STARTSWITH_FILTERABLE = ("mail", "userPrincipalName", "displayName", "givenName", "surname", "mailNickname")


def _clause(text: str) -> tuple[str, str, str | bool | None]:
    """(operator, property, value) of one comparison."""
    if m := _EQ.match(text):
        prop, literal, keyword = m.group(1), m.group(2), m.group(3)
        value: str | bool | None
        if literal is not None:
            value = literal.replace("''", "'")
        else:
            value = {"true": True, "false": False, "null": None}[keyword.lower()]
        return "eq", _filterable(prop, _EQ_FILTERABLE), value
    if m := _STARTSWITH.match(text):
        return "startswith", _filterable(m.group(1), _STARTSWITH_FILTERABLE), m.group(2).replace("''", "'")
    raise SelectError(f"Invalid filter clause: {text.strip()}", code="BadRequest")


def _filterable(prop: str, allowed: tuple[str, ...]) -> str:
    for name in allowed:
        if name.lower() == prop.lower():
            return name
    raise SelectError(
        f"Unsupported or invalid query filter clause specified for property '{prop}' of resource 'User'.",
        code="Request_UnsupportedQuery",
    )


def _split_outside_quotes(text: str, word: str) -> list[str]:
    parts, depth_quote, start, i = [], False, 0, 0
    needle = f" {word} "
    low = text.lower()
    while i < len(text):
        if text[i] == "'":
            depth_quote = not depth_quote
        elif not depth_quote and low.startswith(needle, i):
            parts.append(text[start:i])
            i += len(needle)
            start = i
            continue
        i += 1
    parts.append(text[start:])
    return parts


def compile_filter(raw: str) -> Any:
    """A predicate over user property dicts for the supported subset of OData $filter: ``eq`` on strings,
    booleans and null, ``startswith``, joined by ``and`` or by ``or`` (not both, no parentheses)."""
    ors = _split_outside_quotes(raw, "or")
    ands = _split_outside_quotes(raw, "and")
    if len(ors) > 1 and len(ands) > 1:
        raise SelectError("The lab's $filter supports 'and' or 'or', not both.", code="Request_UnsupportedQuery")
    combine = any if len(ors) > 1 else all
    clauses = [_clause(c) for c in (ors if len(ors) > 1 else ands)]

    def matches(props: dict[str, Any]) -> bool:
        def one(op: str, prop: str, value: str | bool | None) -> bool:
            actual = props.get(prop)
            if op == "startswith":
                return isinstance(actual, str) and isinstance(value, str) and actual.lower().startswith(value.lower())
            if isinstance(actual, str) and isinstance(value, str):
                return actual.lower() == value.lower()
            return bool(actual == value)
        return combine(one(*c) for c in clauses)

    return matches


def known_user_properties() -> frozenset[str]:
    return frozenset(USER_PROPERTIES)

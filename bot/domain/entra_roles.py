"""Who may reset whose password in Entra ID: Microsoft's role table, as pure functions.

Graph's ``resetPassword`` is made with a delegated token, so Microsoft checks the caller's Entra role against the
target's (graph-and-entra.md, "Resetting a password"):

| target holds                                                   | roles that may reset them                        |
|----------------------------------------------------------------|--------------------------------------------------|
| no admin role, Directory Readers, Guest Inviter, Password Admin | Password, Helpdesk, Authentication, User,        |
|                                                                 | Privileged Authentication, Global Administrator  |
| Helpdesk Administrator                                          | Helpdesk, User, Privileged Authentication, Global |
| User Administrator, Groups Administrator                        | User, Privileged Authentication, Global          |
| Authentication Administrator                                    | Authentication, Privileged Authentication, Global |
| Global, Privileged Authentication, Privileged Role Admin,       | Privileged Authentication, Global                |
| any other (custom) role                                         |                                                  |

A target holding several roles needs every one of them covered; a caller holding several roles may use any of
them for each (as the lab's Entra does). Role names are compared case-insensitively, and the names Graph used
before Microsoft renamed them (``Company Administrator``, ``User Account Administrator``) count as today's.
The bot checks this only to tell an agent early; Microsoft decides at reset time.

A Temporary Access Pass (``--tap``) is an authentication method, and it satisfies MFA: Microsoft lets only the
Authentication, Privileged Authentication and Global Administrators manage another user's methods, each over the
targets its column of the same table covers ("For a list of the roles that an Authentication Administrator can read
or update authentication methods, see Who can reset passwords"). So every function here takes ``tap=True`` to use
those three columns only: a Helpdesk Administrator may reset Bob's password but not make Bob a TAP.
"""

from __future__ import annotations

from collections.abc import Iterable

GLOBAL_ADMIN = "Global Administrator"
PRIVILEGED_AUTH_ADMIN = "Privileged Authentication Administrator"
PRIVILEGED_ROLE_ADMIN = "Privileged Role Administrator"
USER_ADMIN = "User Administrator"
GROUPS_ADMIN = "Groups Administrator"
HELPDESK_ADMIN = "Helpdesk Administrator"
PASSWORD_ADMIN = "Password Administrator"  # noqa: S105 - a role's name
AUTH_ADMIN = "Authentication Administrator"
DIRECTORY_READERS = "Directory Readers"
GUEST_INVITER = "Guest Inviter"

#: The roles that may reset passwords at all (the table's columns), weakest first: the order sentences use.
RESETTING_ROLES: tuple[str, ...] = (PASSWORD_ADMIN, HELPDESK_ADMIN, AUTH_ADMIN, USER_ADMIN, PRIVILEGED_AUTH_ADMIN,
                                    GLOBAL_ADMIN)

#: The roles that may create a Temporary Access Pass (manage authentication methods), weakest first.
TAP_ROLES: tuple[str, ...] = (AUTH_ADMIN, PRIVILEGED_AUTH_ADMIN, GLOBAL_ADMIN)

#: The roles that may revoke another user's sign-in sessions (Entra's ``invalidateAllRefreshTokens``, one of its
#: "sensitive actions", over the targets each role's column of the reset table covers): containment of a disowned
#: reset. Not the Password Administrator, who may reset a password but sign nobody out.
REVOKING_ROLES: tuple[str, ...] = (HELPDESK_ADMIN, AUTH_ADMIN, USER_ADMIN, PRIVILEGED_AUTH_ADMIN, GLOBAL_ADMIN)

_ANYONE = frozenset(RESETTING_ROLES)
_PRIVILEGED = frozenset({PRIVILEGED_AUTH_ADMIN, GLOBAL_ADMIN})

#: target role -> the caller roles that may reset a holder of it; a role not listed falls in the last row.
TABLE: dict[str, frozenset[str]] = {
    DIRECTORY_READERS: _ANYONE,
    GUEST_INVITER: _ANYONE,
    PASSWORD_ADMIN: _ANYONE,
    HELPDESK_ADMIN: frozenset({HELPDESK_ADMIN, USER_ADMIN, PRIVILEGED_AUTH_ADMIN, GLOBAL_ADMIN}),
    USER_ADMIN: frozenset({USER_ADMIN, PRIVILEGED_AUTH_ADMIN, GLOBAL_ADMIN}),
    GROUPS_ADMIN: frozenset({USER_ADMIN, PRIVILEGED_AUTH_ADMIN, GLOBAL_ADMIN}),
    AUTH_ADMIN: frozenset({AUTH_ADMIN, PRIVILEGED_AUTH_ADMIN, GLOBAL_ADMIN}),
    GLOBAL_ADMIN: _PRIVILEGED,
    PRIVILEGED_AUTH_ADMIN: _PRIVILEGED,
    PRIVILEGED_ROLE_ADMIN: _PRIVILEGED,
}

_KNOWN = {name.lower(): name for name in (*TABLE, *RESETTING_ROLES)}
_OLD_NAMES = {"company administrator": GLOBAL_ADMIN, "user account administrator": USER_ADMIN}


def canonical_role(name: str) -> str:
    """The table's spelling of a role name (case and Microsoft's former names ignored); others unchanged."""
    key = " ".join(name.split()).lower()
    return _OLD_NAMES.get(key) or _KNOWN.get(key) or name.strip()


def allowed_callers(target_role: str) -> frozenset[str]:
    """The caller roles that may reset someone holding ``target_role`` (custom roles: the privileged two)."""
    return TABLE.get(canonical_role(target_role), _PRIVILEGED)


def _columns(tap: bool) -> tuple[str, ...]:
    return TAP_ROLES if tap else RESETTING_ROLES


def resetting_roles(caller_roles: Iterable[str], *, tap: bool = False) -> list[str]:
    """Those of ``caller_roles`` that may reset passwords (``tap``: create TAPs) at all, weakest first."""
    held = {canonical_role(r) for r in caller_roles}
    return [r for r in _columns(tap) if r in held]


def can_reset(caller_roles: Iterable[str], target_roles: Iterable[str], *, tap: bool = False) -> bool:
    """Whether a caller holding ``caller_roles`` may reset the password of (``tap``: create a Temporary Access Pass
    for) a target holding ``target_roles``."""
    caller = frozenset(resetting_roles(caller_roles, tap=tap))
    if not caller:
        return False
    return all(caller & allowed_callers(role) for role in target_roles)


def roles_needed(target_roles: Iterable[str], *, tap: bool = False) -> list[str]:
    """The single roles each of which may reset a holder of every one of ``target_roles`` (``tap``: create them a
    TAP), weakest first (what to tell an agent whose role is too weak). Never empty: the privileged two may act on
    anyone."""
    allowed = frozenset(_columns(tap))
    for role in target_roles:
        allowed &= allowed_callers(role)
    return [r for r in _columns(tap) if r in allowed]


def blocking_roles(caller_roles: Iterable[str], target_roles: Iterable[str], *, tap: bool = False) -> list[str]:
    """The target's roles (table spelling, in the order given, once each) that none of the caller's roles covers."""
    caller = frozenset(resetting_roles(caller_roles, tap=tap))
    out: list[str] = []
    for role in target_roles:
        name = canonical_role(role)
        if not caller & allowed_callers(name) and name not in out:
            out.append(name)
    return out


def can_revoke_sessions(caller_roles: Iterable[str], target_roles: Iterable[str]) -> bool:
    """Whether a caller holding ``caller_roles`` may revoke the sign-in sessions of a target holding
    ``target_roles`` (containment's first step)."""
    caller = frozenset(canonical_role(r) for r in caller_roles) & frozenset(REVOKING_ROLES)
    return bool(caller) and all(caller & allowed_callers(role) for role in target_roles)

"""Who may reset whose password: Microsoft's table of Entra admin roles (graph-and-entra.md).

Each row names the roles a target may hold; its set says which caller roles may reset such a target. A
target holding several roles needs a caller allowed for every one of them; a caller holding several roles
may do what any of them allows. Roles outside the table (custom roles too) fall in the last row.
"""

from __future__ import annotations

from collections.abc import Iterable

GLOBAL = "Global Administrator"
PRIV_AUTH = "Privileged Authentication Administrator"
PRIV_ROLE = "Privileged Role Administrator"
USER_ADMIN = "User Administrator"
GROUPS_ADMIN = "Groups Administrator"
HELPDESK = "Helpdesk Administrator"
PASSWORD_ADMIN = "Password Administrator"
AUTH_ADMIN = "Authentication Administrator"
DIRECTORY_READERS = "Directory Readers"
GUEST_INVITER = "Guest Inviter"

#: The roles that may reset passwords at all (the table's columns).
RESETTING_ROLES = frozenset({PASSWORD_ADMIN, HELPDESK, AUTH_ADMIN, USER_ADMIN, PRIV_AUTH, GLOBAL})

_EVERYONE = RESETTING_ROLES
#: target role -> caller roles allowed to reset a holder of it
_TABLE: dict[str, frozenset[str]] = {
    DIRECTORY_READERS: _EVERYONE,
    GUEST_INVITER: _EVERYONE,
    PASSWORD_ADMIN: _EVERYONE,
    HELPDESK: frozenset({HELPDESK, USER_ADMIN, PRIV_AUTH, GLOBAL}),
    USER_ADMIN: frozenset({USER_ADMIN, PRIV_AUTH, GLOBAL}),
    GROUPS_ADMIN: frozenset({USER_ADMIN, PRIV_AUTH, GLOBAL}),
    AUTH_ADMIN: frozenset({AUTH_ADMIN, PRIV_AUTH, GLOBAL}),
}
_PRIVILEGED = frozenset({PRIV_AUTH, GLOBAL})  # Global/Priv Auth/Priv Role admins and custom roles


def allowed_callers(target_role: str) -> frozenset[str]:
    return _TABLE.get(target_role, _PRIVILEGED)


def may_reset(caller_roles: Iterable[str], target_roles: Iterable[str]) -> bool:
    """Whether a caller holding ``caller_roles`` may reset the password of a target holding ``target_roles``."""
    caller = frozenset(caller_roles) & RESETTING_ROLES
    if not caller:
        return False
    return all(caller & allowed_callers(role) for role in target_roles)


#: Temporary Access Passes are an authentication method: only the authentication admin roles manage them.
TAP_ROLES = frozenset({AUTH_ADMIN, PRIV_AUTH, GLOBAL})


def may_create_tap(caller_roles: Iterable[str], target_roles: Iterable[str]) -> bool:
    caller = frozenset(caller_roles) & TAP_ROLES
    return bool(caller) and all(caller & allowed_callers(role) for role in target_roles)


#: Reading another user's Temporary Access Passes (GET temporaryAccessPassMethods, delegated): Microsoft lists the
#: Global Reader, Authentication Administrator and Privileged Authentication Administrator as the least privileged
#: roles (a Global Administrator holds all), each over the targets whose methods it may manage. The lab has no Global
#: Reader (its built-in roles are the reset table's), so here only the roles that may manage a pass read it: never
#: kinder than Graph. Helpdesk, Password and User Administrators may not: Graph answers 403.
def may_read_taps(caller_roles: Iterable[str], target_roles: Iterable[str]) -> bool:
    return may_create_tap(caller_roles, target_roles)


#: Revoking another user's sign-in sessions (``microsoft.directory/users/invalidateAllRefreshTokens``) is one of
#: Entra's "sensitive actions": the Helpdesk, Authentication, User, Privileged Authentication and Global
#: Administrators hold it, each over the targets its column of the reset table covers. The Password Administrator
#: does not: it may reset a password but not sign anyone out.
REVOKE_ROLES = frozenset({HELPDESK, AUTH_ADMIN, USER_ADMIN, PRIV_AUTH, GLOBAL})


def may_revoke_sessions(caller_roles: Iterable[str], target_roles: Iterable[str]) -> bool:
    caller = frozenset(caller_roles) & REVOKE_ROLES
    return bool(caller) and all(caller & allowed_callers(role) for role in target_roles)

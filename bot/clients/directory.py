"""Active Directory over LDAPS (ldap3): read accounts, their effective password policy, group membership.

The bot only ever reads AD with its own low-privilege account: the password itself travels through Entra
ID and writeback, never through this client. What this client learns (disabled, locked, protected, which
policy applies, when the password was last set) feeds the pre-flight checks and the follow-ups.

Wire facts relied on (seen on Samba 4.17 and documented for Windows): ``msDS-User-Account-Control-Computed``
carries LOCKOUT (0x10) and PASSWORD_EXPIRED (0x800000); ``msDS-ResultantPSO`` names the fine-grained policy
that applies, if any; ``pwdLastSet`` is a FILETIME where 0 means "must change at next logon";
``msDS-KeyVersionNumber`` (constructed from ``unicodePwd``'s replication metadata version) goes up by one at each
password write and is readable by an ordinary account (absent, not an error, where it is not); the matching
rule 1.2.840.113556.1.4.1941 (LDAP_MATCHING_RULE_IN_CHAIN) expands nested group membership on the server.
An object can be named by its objectGUID instead of its DN, ``<GUID=hex of the binary GUID>`` (MS-ADTS
3.1.1.3.1.2.4: every DC takes that form, as a search base and as the object of a modify; Samba too, seen): a
rename or move changes the DN, never the GUID, so the one write the bot makes (``unlock``) names the account so.
"""

from __future__ import annotations

import os
import ssl
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from bot.clients.ldap_pool import ConnectionPool
from bot.errors import ConfigError, DirectoryUnavailableError
from bot.policy import PasswordPolicy, ad_interval, filetime_to_datetime

if TYPE_CHECKING:
    import ldap3

UF_ACCOUNTDISABLE = 0x2
UF_DONT_EXPIRE_PASSWD = 0x10000
UF_LOCKOUT = 0x10
UF_PASSWORD_EXPIRED = 0x800000
_IN_CHAIN = "1.2.840.113556.1.4.1941"
#: ldap3's names for search scopes and a modify's operation (``ldap3.BASE`` … are these very strings), spelled
#: here so that this module needs ldap3 only once it talks to AD (ldap3 is imported lazily: see ldap_pool).
BASE, LEVEL, SUBTREE = "BASE", "LEVEL", "SUBTREE"
MODIFY_REPLACE = "MODIFY_REPLACE"
#: Values in one OR filter, and entries in one page, of the batched reads (``LdapDirectory._password_states``).
_OR_CHUNK = 200
_PAGE_SIZE = 1000

_PASSWORD_ATTRS = ("distinguishedName", "sAMAccountName", "userAccountControl", "pwdLastSet", "msDS-KeyVersionNumber")
_USER_ATTRS = (
    "distinguishedName", "sAMAccountName", "userPrincipalName", "displayName", "mail", "objectGUID",
    "userAccountControl", "msDS-User-Account-Control-Computed", "adminCount", "pwdLastSet", "lockoutTime",
    "msDS-ResultantPSO", "msDS-KeyVersionNumber",
)


@dataclass(frozen=True)
class DirectoryUser:
    dn: str
    sam: str
    upn: str | None
    display_name: str
    mail: str | None
    object_guid: str
    disabled: bool
    password_never_expires: bool
    locked_out: bool
    admin_count: bool
    pwd_last_set_raw: int
    resultant_pso: str | None
    #: ``msDS-KeyVersionNumber``: how many times the password was written (the follow-ups' proof that a reset
    #: landed); None when the bot's account may not read it.
    key_version: int | None = None

    @property
    def must_change_password(self) -> bool:
        return self.pwd_last_set_raw == 0

    @property
    def pwd_last_set(self) -> datetime | None:
        return filetime_to_datetime(self.pwd_last_set_raw)


class Directory(Protocol):
    """What the services need from AD."""

    def find_user(
        self, *, sam: str | None = None, upn: str | None = None, dn: str | None = None, guid: str | None = None
    ) -> DirectoryUser | None: ...
    def password_states_by_dn(self, dns: Sequence[str]) -> dict[str, PasswordState]: ...
    def password_states_by_sam(self, sams: Sequence[str]) -> dict[str, PasswordState]: ...
    def is_member_of_any(self, user_dn: str, group_dns: Sequence[str]) -> bool: ...
    @property
    def can_unlock(self) -> bool: ...
    def unlock(self, *, guid: str) -> None: ...
    def effective_policy(self, user: DirectoryUser) -> PasswordPolicy: ...
    def ping(self) -> None: ...


@dataclass(frozen=True)
class PasswordState:
    """What the follow-ups read of an account, no more: each attribute fewer is measurably cheaper per account
    when thousands of checks are due at once (Samba constructs ``msDS-ResultantPSO`` and
    ``msDS-User-Account-Control-Computed`` per entry read)."""

    dn: str
    sam: str
    pwd_last_set_raw: int
    password_never_expires: bool
    #: ``msDS-KeyVersionNumber`` (see ``DirectoryUser.key_version``); None when the bot's account may not read it.
    key_version: int | None


_Attrs = dict[str, list[Any]]


def guid_dn(guid: str) -> str:
    """The ``<GUID=...>`` name of the object whose objectGUID is ``guid`` (its string form, as ``format_uuid_le``
    writes it), in the hex-of-the-binary form every DC accepts. Anything that is not a GUID raises
    DirectoryUnavailableError, so nothing else can reach the DN."""
    try:
        return f"<GUID={uuid.UUID(guid).bytes_le.hex()}>"
    except ValueError:
        raise DirectoryUnavailableError("the account's objectGUID is not a GUID.") from None


def escaped(value: str) -> str:
    """``value`` as it may stand in a search filter (RFC 4515: ``*``, ``(``, ``)``, ``\\`` and NUL escaped)."""
    from ldap3.utils.conv import escape_filter_chars  # noqa: PLC0415 (lazy: see bot.clients.ldap_pool)
    return str(escape_filter_chars(value))


def _first(attrs: _Attrs, name: str) -> Any:
    values = attrs.get(name) or []
    return values[0] if values else None


def _to_user(dn: str, attrs: _Attrs) -> DirectoryUser:
    from ldap3.protocol.formatters.formatters import format_uuid_le  # noqa: PLC0415 (lazy: see ldap_pool)
    uac = int(_first(attrs, "userAccountControl") or 0)
    computed = int(_first(attrs, "msDS-User-Account-Control-Computed") or 0)
    pso = _first(attrs, "msDS-ResultantPSO")
    guid = _first(attrs, "objectGUID")
    kvno = _first(attrs, "msDS-KeyVersionNumber")
    return DirectoryUser(
        dn=dn,
        sam=str(_first(attrs, "sAMAccountName")),
        upn=_opt(_first(attrs, "userPrincipalName")),
        display_name=str(_first(attrs, "displayName") or ""),
        mail=_opt(_first(attrs, "mail")),
        object_guid=format_uuid_le(guid) if isinstance(guid, bytes) else str(guid or ""),
        disabled=bool(uac & UF_ACCOUNTDISABLE),
        password_never_expires=bool(uac & UF_DONT_EXPIRE_PASSWD),
        locked_out=bool(computed & UF_LOCKOUT),
        admin_count=int(_first(attrs, "adminCount") or 0) == 1,
        pwd_last_set_raw=int(_first(attrs, "pwdLastSet") or 0),
        resultant_pso=str(pso) if pso else None,
        key_version=int(kvno) if kvno not in (None, b"", "") else None,
    )


def _to_password_state(dn: str, attrs: _Attrs) -> PasswordState:
    kvno = _first(attrs, "msDS-KeyVersionNumber")
    return PasswordState(
        dn=dn,
        sam=str(_first(attrs, "sAMAccountName")),
        pwd_last_set_raw=int(_first(attrs, "pwdLastSet") or 0),
        password_never_expires=bool(int(_first(attrs, "userAccountControl") or 0) & UF_DONT_EXPIRE_PASSWD),
        key_version=int(kvno) if kvno not in (None, b"", "") else None,
    )


def _opt(value: Any) -> str | None:
    return str(value) if value else None


def _checked_url(url: str) -> str:
    """``url`` if ldap3 will take it: an ``ldap://`` or ``ldaps://`` URL (or a bare host) whose port, if any, is a
    port. ldap3 itself says so only when the first connection is made; a setting that can never work should stop
    the start instead, with the setting's name."""
    url = url.strip()
    scheme, sep, _ = url.partition("://")
    if sep and scheme.lower() not in ("ldap", "ldaps", "ldapi"):
        raise ConfigError(f"RESETBOT_LDAP_URL must start with ldaps:// (or ldap://), not {scheme}://.")
    try:
        _ = urlsplit(url if sep else f"ldap://{url}").port  # a ValueError unless a number up to 65535
    except ValueError:
        raise ConfigError("RESETBOT_LDAP_URL has a port that is not one (a number up to 65535).") from None
    return url


class LdapDirectory:
    """A :class:`Directory` over LDAPS, thread-safe: each call borrows a bound connection from a small pool per
    bind account (``bot.clients.ldap_pool``: why, and how a connection is checked before use and the pool rebuilt
    after an outage)."""

    def __init__(self, *, url: str, bind: str, password: str, base_dn: str, ca_file: str | None,
                 timeout_s: float = 10.0, unlock_bind: str | None = None,
                 unlock_password: str | None = None) -> None:
        # What ldap3 would refuse when the first connection is made fails here, at start-up, instead.
        self._url = _checked_url(url)
        if ca_file and not os.path.exists(ca_file):
            raise ConfigError(f"The CA bundle for AD ({ca_file}) does not exist: check RESETBOT_LDAP_CA_FILE.")
        self._ca_file = ca_file
        self._tls: ldap3.Tls | None = None  # built with the first connection (see ldap_pool: ldap3 is lazy)
        self._timeout = int(timeout_s)  # ldap3 packs it into a socket option: it must be an int
        self.base_dn = base_dn
        self._reader = self._pool(bind, password)
        self._unlocker = self._pool(unlock_bind, unlock_password) if unlock_bind and unlock_password else None

    def _new_server(self) -> ldap3.Server:
        import ldap3  # noqa: PLC0415 (lazy: see bot.clients.ldap_pool)
        if self._tls is None:  # two threads may both build one: the same settings, either will do
            self._tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=self._ca_file,
                                  version=ssl.PROTOCOL_TLS_CLIENT)
        return ldap3.Server(self._url, use_ssl=self._url.lower().startswith("ldaps://"), tls=self._tls,
                            get_info=ldap3.NONE, connect_timeout=self._timeout)

    def _pool(self, bind: str, password: str) -> ConnectionPool:
        return ConnectionPool(new_server=self._new_server, bind=bind, password=password, timeout_s=self._timeout)

    @property
    def connections_opened(self) -> int:
        """How many connections the reader's pool opened so far (reuse keeps it flat; tests and benchmarks)."""
        return self._reader.opened

    def close(self) -> None:
        """Unbind the idle connections (when the bot stops)."""
        for pool in (self._reader, self._unlocker):
            if pool is not None:
                pool.clear()

    def _connection(self, pool: ConnectionPool | None = None) -> AbstractContextManager[ldap3.Connection]:
        return (pool or self._reader).connection()

    def _search(self, conn: ldap3.Connection, base: str, flt: str, attrs: Sequence[str],
                scope: str = SUBTREE) -> list[tuple[str, _Attrs]]:
        """(dn, attributes) of each entry. Without schema (get_info=NONE) ldap3 hands back every
        attribute as a list of raw values, the same shape paged searches return."""
        ok = conn.search(base, flt, search_scope=scope, attributes=list(attrs))
        if not ok and conn.result["result"] not in (0, 32):  # 32 noSuchObject is "nothing there"
            raise DirectoryUnavailableError(f"An AD search failed: {conn.result['description']}.")
        return _entries(conn.response or [])

    def find_user(self, *, sam: str | None = None, upn: str | None = None, dn: str | None = None,
                  guid: str | None = None) -> DirectoryUser | None:
        """The one user matching exactly one of the keys, or None; values from people are escaped. ``guid`` (its
        objectGUID, as ``DirectoryUser.object_guid``) finds the account wherever it has been moved or renamed."""
        with self._connection() as conn:
            if dn is not None or guid is not None:
                base = guid_dn(guid) if guid is not None else str(dn)
                entries = self._search(conn, base, "(&(objectCategory=person)(objectClass=user))", _USER_ATTRS,
                                       BASE)
            else:
                if sam is not None:
                    flt = f"(sAMAccountName={escaped(sam)})"
                elif upn is not None:
                    flt = f"(userPrincipalName={escaped(upn)})"
                else:
                    raise ValueError("find_user needs sam, upn or dn")
                entries = self._search(conn, self.base_dn, f"(&(objectCategory=person)(objectClass=user){flt})",
                                       _USER_ATTRS)
        return _to_user(*entries[0]) if len(entries) == 1 else None

    def password_states_by_dn(self, dns: Sequence[str]) -> dict[str, PasswordState]:
        """Many accounts by DN, keyed by lower-cased DN. Costly on Samba (see ``_password_states``): the follow-ups
        ask ``password_states_by_sam`` first and this only for accounts it did not find."""
        return {state.dn.lower(): state for state in self._password_states("distinguishedName", dns)}

    def password_states_by_sam(self, sams: Sequence[str]) -> dict[str, PasswordState]:
        """Many accounts by sAMAccountName, keyed by lower-cased sAMAccountName (AD compares it without case)."""
        return {state.sam.lower(): state for state in self._password_states("sAMAccountName", sams)}

    def _password_states(self, attribute: str, values: Sequence[str]) -> Iterator[PasswordState]:
        """Paged searches for an OR of equalities, ``_OR_CHUNK`` values at a time, on one connection.

        Measured on Samba 4.17 with 10,000 accounts: an OR of ``sAMAccountName`` equalities is answered from its
        index, about twice as fast per account as an OR of ``distinguishedName`` equalities, which costs as much as
        one search per account (no batching gain at all); a chunk of 1,000 DNs is slower still than 200. Windows
        AD answers both from indexes. Pages of ``_PAGE_SIZE`` stay within AD's default MaxPageSize (1,000)."""
        if not values:
            return
        with self._connection() as conn:
            for start in range(0, len(values), _OR_CHUNK):
                ors = "".join(f"({attribute}={escaped(v)})" for v in values[start:start + _OR_CHUNK])
                pages = conn.extend.standard.paged_search(
                    self.base_dn, f"(&(objectClass=user)(|{ors}))", attributes=list(_PASSWORD_ATTRS),
                    paged_size=_PAGE_SIZE, generator=False,
                )
                # ldap3's paged search raises nothing when the connection does not (raise_exceptions=False): a busy
                # or refusing DC would read as "no such accounts". Its last result says which it was.
                if conn.result and conn.result.get("result") not in (0, 32):
                    raise DirectoryUnavailableError(f"An AD search failed: {conn.result.get('description')}.")
                for dn, attrs in _entries(pages):
                    yield _to_password_state(dn, attrs)

    def is_member_of_any(self, user_dn: str, group_dns: Sequence[str]) -> bool:
        """Transitive membership, resolved by the DC (nested groups count, as they do for AD's own checks)."""
        if not group_dns:
            return False
        with self._connection() as conn:
            ors = "".join(f"(memberOf:{_IN_CHAIN}:={escaped(g)})" for g in group_dns)
            return bool(self._search(conn, user_dn, f"(|{ors})", ["distinguishedName"], BASE))

    def effective_policy(self, user: DirectoryUser) -> PasswordPolicy:
        """The fine-grained PSO when one applies, else the domain policy."""
        with self._connection() as conn:
            if user.resultant_pso:
                attrs = ["msDS-MinimumPasswordLength", "msDS-PasswordHistoryLength", "msDS-PasswordComplexityEnabled",
                         "msDS-MinimumPasswordAge", "msDS-MaximumPasswordAge"]
                entries = self._search(conn, user.resultant_pso, "(objectClass=msDS-PasswordSettings)", attrs,
                                       BASE)
                if not entries or not entries[0][1].get(attrs[0]):
                    # AD lets only Domain Admins read PSOs unless delegated; guessing the domain policy
                    # instead could generate a password the real policy refuses.
                    raise DirectoryUnavailableError(
                        f"The bot's AD account cannot read the password policy {user.resultant_pso}: grant it "
                        "Read on CN=Password Settings Container,CN=System."
                    )
                _, e = entries[0]
                return PasswordPolicy(
                    source=user.resultant_pso,
                    min_length=int(_first(e, attrs[0]) or 0),
                    history_length=int(_first(e, attrs[1]) or 0),
                    complexity=str(_first(e, attrs[2])).upper() == "TRUE",
                    min_age=ad_interval(_first(e, attrs[3])),
                    max_age=ad_interval(_first(e, attrs[4])),
                )
            attrs = ["minPwdLength", "pwdHistoryLength", "pwdProperties", "minPwdAge", "maxPwdAge"]
            entries = self._search(conn, self.base_dn, "(objectClass=domain)", attrs, BASE)
            if not entries:
                raise DirectoryUnavailableError("The domain's password policy could not be read.")
            _, e = entries[0]
            return PasswordPolicy(
                source="domain",
                min_length=int(_first(e, attrs[0]) or 0),
                history_length=int(_first(e, attrs[1]) or 0),
                complexity=bool(int(_first(e, attrs[2]) or 0) & 1),
                min_age=ad_interval(_first(e, attrs[3])),
                max_age=ad_interval(_first(e, attrs[4])),
            )

    @property
    def can_unlock(self) -> bool:
        return self._unlocker is not None

    def unlock(self, *, guid: str) -> None:
        """Clear an AD lockout (``lockoutTime`` = 0, which also clears badPwdCount) with the unlock account,
        the one write the bot makes to AD; that account needs Write lockoutTime on user objects and nothing more.
        Addressed by objectGUID: whatever has been renamed or moved since, or put where the account used to be,
        the write lands on the account the request was made for, or nowhere."""
        if self._unlocker is None:
            raise DirectoryUnavailableError(
                "Unlocking needs RESETBOT_LDAP_UNLOCK_BIND and RESETBOT_LDAP_UNLOCK_PASSWORD.")
        with self._connection(self._unlocker) as conn:
            if not conn.modify(guid_dn(guid), {"lockoutTime": [(MODIFY_REPLACE, ["0"])]}):
                if conn.result.get("result") == 32:  # noSuchObject
                    raise DirectoryUnavailableError("the account is no longer in Active Directory.")
                raise DirectoryUnavailableError(
                    f"Active Directory refused to clear the lockout ({conn.result['description']}): the unlock "
                    "account needs Write lockoutTime on user objects.")

    def ping(self) -> None:
        """Bind and read the base DN's own object: the cheapest proof that the bot's bind works for what it does.

        The rootDSE would not do: a DC hands it to anyone, bound or not, so reading it proves only that the DC
        answers. The base DN's object is shown only to an authenticated account with read rights on it (Samba and
        Windows refuse anonymous reads of it), and every search the bot makes starts there, so a base DN with a
        typo, a bind that fell back to anonymous, or an account stripped of its read rights all fail here, not
        later as "no such user"."""
        with self._connection() as conn:
            conn.search(self.base_dn, "(objectClass=*)", search_scope=BASE, attributes=["objectClass"])
            if not _entries(conn.response or []):
                raise DirectoryUnavailableError(
                    f"Active Directory showed the bot nothing at its base DN {self.base_dn} "
                    f"({conn.result.get('description')}): the DN is wrong or the bind account may not read it.",
                    fault="base_unreadable")


def _entries(response: Sequence[dict[str, Any]]) -> list[tuple[str, _Attrs]]:
    out = []
    for item in response:
        if item.get("type") == "searchResEntry":
            attrs = {k: v if isinstance(v, list) else [v] for k, v in item.get("attributes", {}).items()}
            out.append((str(item["dn"]), attrs))
    return out

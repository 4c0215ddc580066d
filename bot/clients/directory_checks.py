"""What ``resetbot doctor`` reads from AD with the bot's own reader account, beyond what serving needs.

Reads only: the domain's password policy, whether fine-grained policies (PSOs) are readable, and the DACLs of
the containers above a user, to tell whether the writeback (AD DS connector) account holds the rights password
writeback needs there. Reading a DACL needs only READ_CONTROL, which authenticated users have on OUs by default,
when the SD-flags control asks for the DACL alone (owner and SACL need more).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.clients.ad_acl import DescriptorError, missing_rights, sid_to_str
from bot.clients.directory import BASE, LEVEL, LdapDirectory, _first, escaped
from bot.errors import DirectoryUnavailableError

_PSO_CONTAINER = "CN=Password Settings Container,CN=System"
_DACL_ONLY = 0x04
_IN_CHAIN = "1.2.840.113556.1.4.1941"


@dataclass(frozen=True)
class PolicyReadout:
    domain_min_length: int
    psos: int  # fine-grained policies found, each readable


@dataclass(frozen=True)
class WritebackRights:
    account: str
    containers: tuple[str, ...]
    missing: tuple[str, ...]


def _parent_chain(dn: str, base_dn: str) -> list[str]:
    """The DNs above ``dn`` up to and including ``base_dn``, nearest first."""
    from ldap3.utils.dn import parse_dn  # noqa: PLC0415 (lazy: see bot.clients.ldap_pool)
    parts = parse_dn(dn, escape=True)
    rdns = [f"{attr}={value}" for attr, value, _sep in parts]
    chain = [",".join(rdns[i:]) for i in range(1, len(rdns))]
    base = base_dn.lower().replace(" ", "")
    out = []
    for candidate in chain:
        out.append(candidate)
        if candidate.lower().replace(" ", "") == base:
            break
    return out


class DirectoryChecks:
    """Doctor-only reads over the same LDAPS connection settings as :class:`LdapDirectory`."""

    def __init__(self, directory: LdapDirectory) -> None:
        self._directory = directory

    def password_policy(self) -> PolicyReadout:
        """The domain policy must be readable, and so must every PSO (AD hides their attributes from
        non-admins unless delegated; the bot refuses to guess the policy then)."""
        base = self._directory.base_dn
        with self._directory._connection() as conn:
            conn.search(base, "(objectClass=domain)", search_scope=BASE, attributes=["minPwdLength"])
            entries = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
            min_length = _first(entries[0].get("attributes", {}), "minPwdLength") if entries else None
            if min_length in (None, []):
                raise DirectoryUnavailableError(f"domain policy unreadable at {base}")
            container = f"{_PSO_CONTAINER},{base}"
            ok = conn.search(container, "(objectClass=msDS-PasswordSettings)", search_scope=LEVEL,
                             attributes=["msDS-MinimumPasswordLength"])
            if not ok and conn.result["result"] not in (0, 32):
                raise DirectoryUnavailableError(f"PSO container unreadable: {conn.result['description']}")
            psos = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
            hidden = [e["dn"] for e in psos if not e.get("attributes", {}).get("msDS-MinimumPasswordLength")]
            if hidden:
                raise PsoUnreadableError(container, hidden)
        return PolicyReadout(domain_min_length=int(str(min_length[0] if isinstance(min_length, list)
                                                       else min_length)), psos=len(psos))

    def writeback_rights(self, account: str, user_dn: str) -> WritebackRights:
        """Which writeback rights ``account`` (sAMAccountName, UPN or DN) lacks on ``user_dn``, judged from
        the inheritable ACEs of the containers above it (the account's nested groups count)."""
        from ldap3.protocol.microsoft import security_descriptor_control  # noqa: PLC0415 (lazy: see ldap_pool)
        base = self._directory.base_dn
        with self._directory._connection() as conn:
            flt = (f"(distinguishedName={escaped(account)})" if "=" in account else
                   f"(userPrincipalName={escaped(account)})" if "@" in account else
                   f"(sAMAccountName={escaped(account.rsplit(chr(92), maxsplit=1)[-1])})")
            conn.search(base, f"(&(objectClass=user){flt})", attributes=["objectSid"])
            found = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
            if len(found) != 1:
                raise WritebackAccountNotFoundError(account)
            account_dn = str(found[0]["dn"])
            sids = {_sid(found[0])}
            conn.search(base, f"(member:{_IN_CHAIN}:={escaped(account_dn)})", attributes=["objectSid"])
            sids |= {_sid(e) for e in conn.response or [] if e.get("type") == "searchResEntry"}
            containers = _parent_chain(user_dn, base)
            descriptors = []
            for i, dn in enumerate(containers):
                conn.search(dn, "(objectClass=*)", search_scope=BASE, attributes=["nTSecurityDescriptor"],
                            controls=security_descriptor_control(sdflags=_DACL_ONLY))
                entries = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
                raw = entries[0].get("raw_attributes", {}).get("nTSecurityDescriptor") if entries else None
                if not raw:
                    raise DirectoryUnavailableError(f"the security descriptor of {dn} is not readable")
                descriptors.append((bytes(raw[0]), i == 0))
        try:
            missing = missing_rights(descriptors, frozenset(sids))
        except DescriptorError as e:
            raise DirectoryUnavailableError(str(e)) from None
        return WritebackRights(account=account, containers=tuple(containers), missing=tuple(missing))


def _sid(entry: dict[str, Any]) -> str:
    return sid_to_str(bytes(entry["raw_attributes"]["objectSid"][0]))


class PsoUnreadableError(DirectoryUnavailableError):
    def __init__(self, container: str, hidden: list[str]) -> None:
        super().__init__(f"{len(hidden)} fine-grained password policies under {container} are unreadable")
        self.container = container
        self.hidden = hidden


class WritebackAccountNotFoundError(DirectoryUnavailableError):
    def __init__(self, account: str) -> None:
        super().__init__(f"no single AD account {account}")
        self.account = account

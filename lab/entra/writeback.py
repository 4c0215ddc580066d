"""The writeback agent: what Entra Connect does on-prem when an admin resets a synced user's password.

It binds to the lab AD over LDAPS as the writeback (AD DS connector) account - never as an admin - and sets
``unicodePwd``, then ``pwdLastSet=0`` so the user must change it at next logon (not for accounts whose
password never expires, as Entra documents). AD's answer decides the outcome; a refusal leaves AD as it was.
Where Samba cannot give Entra Connect's verdict, the agent emulates it and says so:

- history on an admin reset comes from the policy-hints control; when the DC does not list that control in
  rootDSE ``supportedControl`` (Samba 4.17), the agent checks its own salted history against the effective
  ``pwdHistoryLength`` (domain or PSO via ``msDS-ResultantPSO``), read with the reader account (PSO
  attributes need an admin read: policy lookup only, never a write);
- accounts with ``adminCount=1`` are refused as Windows' AdminSDHolder would (Samba runs no SDProp, so the
  delegated right would otherwise reach them);
- disabled and locked-out accounts are refused as Entra Connect's events 33005 and 33006 report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ldap3
from ldap3.core.exceptions import LDAPException, LDAPSocketOpenError

from lab.ad.ldap import connect
from lab.entra.passwords import PasswordHistory
from lab.people import BASE_DN, Person

#: LDAP_SERVER_POLICY_HINTS_OID and its deprecated predecessor; value BER SEQUENCE { INTEGER 1 }.
POLICY_HINTS_OIDS = ("1.2.840.113556.1.4.2239", "1.2.840.113556.1.4.2066")
POLICY_HINTS_VALUE = b"\x30\x03\x02\x01\x01"

UF_ACCOUNTDISABLE = 0x2
UF_DONT_EXPIRE_PASSWD = 0x10000
UF_LOCKOUT = 0x10  # in msDS-User-Account-Control-Computed

RESULT_CONSTRAINT_VIOLATION = 19
RESULT_INSUFFICIENT_ACCESS = 50
RESULT_UNWILLING = 53
RESULT_NO_SUCH_OBJECT = 32

NOT_CHANGED = "The password was not changed."

#: Every statusDetail text the agent produces ({...} parts are filled in); lab/entra/README.md lists them.
DETAIL_DC_UNREACHABLE = "SSPR_0029: The writeback agent could not reach a domain controller ({error}). " + NOT_CHANGED
DETAIL_CONNECTOR_BIND = ("SSPR_0029: The writeback agent's AD DS connector account could not sign in to the "
                         "domain ({error}). " + NOT_CHANGED)
DETAIL_NOT_FOUND = "31011: The on-premises account {dn} was not found. " + NOT_CHANGED
DETAIL_PROTECTED = ("33004: The AD DS connector account has no permission to reset this account: it is protected "
                    "(adminCount=1, AdminSDHolder). " + NOT_CHANGED)
DETAIL_NO_PERMISSION = ("33004: The AD DS connector account has no permission to reset this account "
                        "(AD: {message}). " + NOT_CHANGED)
DETAIL_DISABLED = "33005: The on-premises account is disabled. " + NOT_CHANGED
DETAIL_LOCKED = "33006: The on-premises account is locked out. " + NOT_CHANGED
DETAIL_POLICY = "33008: The on-premises password policy refused the password (AD: {message}). " + NOT_CHANGED
DETAIL_HISTORY = ("33008: The on-premises password policy refused the password: it matches one of the last "
                  "{length} passwords (password history). " + NOT_CHANGED)
DETAIL_FAILED = "31011: The on-premises password reset failed (AD: {message}). " + NOT_CHANGED
DETAIL_MUST_CHANGE = ("31011: The password was set on-premises, but 'must change password at next logon' could "
                      "not be applied (AD: {message}).")


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    detail: str | None = None


def _ad_message(conn: Any) -> str:
    result = conn.result or {}
    message = str(result.get("message") or "").strip()
    return message or str(result.get("description") or "unknown error")


def _int(entry: Any, attr: str) -> int:
    value = entry[attr].value if attr in entry else None
    return int(value) if value not in (None, "") else 0


class WritebackAgent:
    """Resets passwords in the lab AD as Entra Connect would; blocking, so callers run it in a thread."""

    def __init__(self, ad: dict[str, Any], history: PasswordHistory) -> None:
        self._ad = ad
        self._history = history

    def _bind(self, account: str) -> Any:
        creds = self._ad[account]
        return connect(creds["bind"], creds["password"], ca_file=Path(self._ad["ca_file"]), url=self._ad["ldaps_url"])

    def reset(self, person: Person, password: str) -> Outcome:
        dn = person.dn
        assert dn is not None, "cloud-only people have no on-prem account"
        try:
            conn = self._bind("writeback")
        except LDAPSocketOpenError as exc:
            return Outcome(False, DETAIL_DC_UNREACHABLE.format(error=type(exc).__name__))
        except LDAPException as exc:
            return Outcome(False, DETAIL_CONNECTOR_BIND.format(error=type(exc).__name__))
        try:
            return self._reset(conn, person, dn, password)
        except LDAPException as exc:
            return Outcome(False, DETAIL_DC_UNREACHABLE.format(error=type(exc).__name__))
        finally:
            conn.unbind()

    def _reset(self, conn: Any, person: Person, dn: str, password: str) -> Outcome:
        conn.search("", "(objectClass=*)", search_scope=ldap3.BASE, attributes=["supportedControl"])
        hints = choose_history_mode(set(conn.entries[0].supportedControl.values) if conn.entries else set())
        attrs = ["userAccountControl", "msDS-User-Account-Control-Computed", "adminCount"]
        conn.search(dn, "(objectClass=user)", search_scope=ldap3.BASE, attributes=attrs)
        if conn.result.get("result") == RESULT_NO_SUCH_OBJECT or not conn.entries:
            return Outcome(False, DETAIL_NOT_FOUND.format(dn=dn))
        entry = conn.entries[0]
        refusal = _account_state_refusal(entry)
        if refusal is None and hints is None:
            length = self.history_length(dn)
            if length and self._history.in_history(person.key, password, length):
                refusal = DETAIL_HISTORY.format(length=length)
        if refusal is not None:
            return Outcome(False, refusal)
        controls = [(hints, True, POLICY_HINTS_VALUE)] if hints is not None else None
        if not conn.extend.microsoft.modify_password(dn, password, controls=controls):
            return Outcome(False, _modify_refusal(conn))
        self._history.record(person.key, password)
        if not _int(entry, "userAccountControl") & UF_DONT_EXPIRE_PASSWD and not conn.modify(
            dn, {"pwdLastSet": [(ldap3.MODIFY_REPLACE, ["0"])]}
        ):
            return Outcome(False, DETAIL_MUST_CHANGE.format(message=_ad_message(conn)))
        return Outcome(True)

    def history_length(self, dn: str) -> int:
        """The effective pwdHistoryLength for ``dn``: its resultant PSO's, else the domain's."""
        reader = self._bind("reader")
        try:
            reader.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["msDS-ResultantPSO"])
            pso = reader.entries[0]["msDS-ResultantPSO"].value if reader.entries else None
            if not pso:
                reader.search(BASE_DN, "(objectClass=domain)", search_scope=ldap3.BASE,
                              attributes=["pwdHistoryLength"])
                return _int(reader.entries[0], "pwdHistoryLength") if reader.entries else 0
            found = _read_pso_history(reader, str(pso))
        finally:
            reader.unbind()
        if found is None:  # PSOs are readable by admins only (Windows and Samba alike)
            admin = self._bind("admin")
            try:
                found = _read_pso_history(admin, str(pso))
            finally:
                admin.unbind()
        return found or 0


def _account_state_refusal(entry: Any) -> str | None:
    """Entra Connect's refusals that depend on the account's state in AD (protected, disabled, locked)."""
    if _int(entry, "adminCount") == 1:
        return DETAIL_PROTECTED
    if _int(entry, "userAccountControl") & UF_ACCOUNTDISABLE:
        return DETAIL_DISABLED
    if _int(entry, "msDS-User-Account-Control-Computed") & UF_LOCKOUT:
        return DETAIL_LOCKED
    return None


def _modify_refusal(conn: Any) -> str:
    """The statusDetail for AD's refusal of the unicodePwd write."""
    code = conn.result.get("result")
    if code == RESULT_CONSTRAINT_VIOLATION:
        return DETAIL_POLICY.format(message=_ad_message(conn))
    if code in (RESULT_INSUFFICIENT_ACCESS, RESULT_UNWILLING):
        return DETAIL_NO_PERMISSION.format(message=_ad_message(conn))
    return DETAIL_FAILED.format(message=_ad_message(conn))


def _read_pso_history(conn: Any, pso: str) -> int | None:
    conn.search(pso, "(objectClass=msDS-PasswordSettings)", search_scope=ldap3.BASE,
                attributes=["msDS-PasswordHistoryLength"])
    if not conn.entries or "msDS-PasswordHistoryLength" not in conn.entries[0]:
        return None
    value = conn.entries[0]["msDS-PasswordHistoryLength"].value
    return int(value) if value is not None else None


def choose_history_mode(supported_controls: set[str]) -> str | None:
    """The policy-hints OID to send when the DC offers one, else None (the agent emulates history)."""
    return next((oid for oid in POLICY_HINTS_OIDS if oid in supported_controls), None)


"""Seed the lab AD from the people fixture, as a Domain Admin over LDAPS.

Everything here runs once, while building the template, except :func:`lock_out`, which runs at every
start because a lockout is a point in time that expires (lockoutDuration).
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path
from typing import Any

import ldap3
from ldap3.core.exceptions import LDAPBindError
from ldap3.protocol.formatters.formatters import format_sid

from lab.ad.ldap import connect, filetime_interval
from lab.errors import LabError
from lab.people import (
    AD_GROUPS,
    BASE_DN,
    LOCKOUT_DURATION_MINUTES,
    LOCKOUT_THRESHOLD,
    OUS,
    PEOPLE,
    PSO_GROUP,
    PSO_MIN_LENGTH,
    PSO_NAME,
    SERVICE_ACCOUNTS,
    USER_OUS,
    Group,
    Person,
    in_ad,
    person,
)

UF_ACCOUNTDISABLE = 0x2
UF_NORMAL_ACCOUNT = 0x200
UF_DONT_EXPIRE_PASSWD = 0x10000

GROUPS_OU = f"OU=Groups,OU=Corp,{BASE_DN}"
PSO_CONTAINER = f"CN=Password Settings Container,CN=System,{BASE_DN}"
# Control-access right and attribute/class schemaIDGUIDs for the writeback account's delegation, the
# rights Microsoft documents for Entra Connect's AD DS connector account.
_RESET_PASSWORD_RIGHT = "00299570-246d-11d0-a768-00aa006e0529"
_ATTR_PWD_LAST_SET = "bf967a0a-0de6-11d0-a285-00aa003049e2"
_ATTR_LOCKOUT_TIME = "28630ebf-41d5-11d1-a9c1-0000f80367c1"
_CLASS_USER = "bf967aba-0de6-11d0-a285-00aa003049e2"


#: Groups every Windows Server 2016 (or later) domain has and Samba at the 2008 R2 functional level lacks, with their
#: groupType (global, universal security): members may write ``msDS-KeyCredentialLink`` (Windows Hello keys, "shadow
#: credentials") on any account, so AdminSDHolder protects them. The seed adds them where Windows keeps them, so the
#: lab domain has what a current one has (a protected-group check that names them must find them).
WINDOWS_2016_GROUPS: dict[str, int] = {"Key Admins": -2147483646, "Enterprise Key Admins": -2147483640}


def builtin_group_dn(cn: str) -> str:
    """A built-in group kept in the domain's Users container (Domain Admins, Key Admins, Domain Controllers...)."""
    return f"CN={cn},CN=Users,{BASE_DN}"


def group_dn(group: Group) -> str:
    if group == "privileged":
        return f"CN=Domain Admins,CN=Users,{BASE_DN}"
    return f"CN={AD_GROUPS[group]},{GROUPS_OU}"


def _check(conn: ldap3.Connection, what: str) -> None:
    if conn.result["result"] != 0:
        raise LabError(f"Seeding the lab AD failed at {what}: {conn.result['description']} {conn.result['message']}")


def _quoted_utf16(password: str) -> bytes:
    return f'"{password}"'.encode("utf-16-le")


def _uac(p: Person) -> int:
    uac = UF_NORMAL_ACCOUNT
    if p.has("disabled"):
        uac |= UF_ACCOUNTDISABLE
    if p.has("never_expires"):
        uac |= UF_DONT_EXPIRE_PASSWD
    return uac


def _add_user(conn: ldap3.Connection, dn: str, attrs: dict[str, Any], password: str, what: str) -> None:
    conn.add(dn, ["top", "person", "organizationalPerson", "user"], {**attrs, "unicodePwd": _quoted_utf16(password)})
    _check(conn, what)


def seed(conn: ldap3.Connection) -> None:
    """Create the lab's OUs, people, groups, service accounts, policy and PSO (idempotence not needed:
    this runs on a freshly provisioned domain)."""
    _seed_domain_policy_and_ous(conn)
    _seed_people(conn)
    _seed_service_accounts(conn)
    _seed_groups(conn)
    _seed_pso(conn)


def _seed_domain_policy_and_ous(conn: ldap3.Connection) -> None:
    conn.modify(
        BASE_DN,
        {
            "lockoutThreshold": [(ldap3.MODIFY_REPLACE, [str(LOCKOUT_THRESHOLD)])],
            "lockoutDuration": [(ldap3.MODIFY_REPLACE, [str(filetime_interval(LOCKOUT_DURATION_MINUTES))])],
            "lockOutObservationWindow": [
                (ldap3.MODIFY_REPLACE, [str(filetime_interval(LOCKOUT_DURATION_MINUTES))])
            ],
        },
    )
    _check(conn, "the domain lockout policy")
    for ou in OUS:
        conn.add(ou, ["top", "organizationalUnit"])
        _check(conn, ou)


def _seed_people(conn: ldap3.Connection) -> None:
    for p in PEOPLE:
        if not in_ad(p):
            continue
        dn = p.dn
        assert dn is not None
        attrs: dict[str, Any] = {
            "sAMAccountName": p.sam,
            "userPrincipalName": p.upn,
            "givenName": p.given,
            "sn": p.surname,
            "displayName": p.display_name,
            "mail": p.mail,
            "userAccountControl": str(_uac(p)),
        }
        if p.title:
            attrs["title"] = p.title
        if p.department:
            attrs["department"] = p.department
        _add_user(conn, dn, attrs, p.password, f"user {p.key}")
    for p in PEOPLE:
        if in_ad(p) and p.manager:
            conn.modify(p.dn, {"manager": [(ldap3.MODIFY_REPLACE, [person(p.manager).dn])]})
            _check(conn, f"manager of {p.key}")
    # Samba does not run SDProp, which stamps adminCount=1 on members of protected groups in Windows.
    for p in PEOPLE:
        if p.has("protected") and in_ad(p):
            conn.modify(p.dn, {"adminCount": [(ldap3.MODIFY_REPLACE, ["1"])]})
            _check(conn, f"adminCount of {p.key}")


def _seed_service_accounts(conn: ldap3.Connection) -> None:
    for acct in SERVICE_ACCOUNTS:
        _add_user(
            conn,
            acct.dn,
            {
                "sAMAccountName": acct.key,
                "userPrincipalName": acct.upn,
                "displayName": acct.display_name,
                "description": acct.purpose,
                "userAccountControl": str(UF_NORMAL_ACCOUNT | UF_DONT_EXPIRE_PASSWD),
            },
            acct.password,
            f"service account {acct.key}",
        )


def _seed_groups(conn: ldap3.Connection) -> None:
    for cn, group_type in WINDOWS_2016_GROUPS.items():
        conn.add(builtin_group_dn(cn), ["top", "group"], {"sAMAccountName": cn, "groupType": group_type})
        if conn.result["result"] != 68:  # entryAlreadyExists: a Samba that provisions them already
            _check(conn, f"group {cn}")
    for group, name in AD_GROUPS.items():
        if group != "privileged":
            conn.add(group_dn(group), ["top", "group"], {"sAMAccountName": name.replace(" ", ""), "description":
                     f"resetbot lab: {group}"})
            _check(conn, f"group {name}")
        dns = [p.dn for p in PEOPLE if group in p.groups and in_ad(p)]
        if dns:
            conn.modify(group_dn(group), {"member": [(ldap3.MODIFY_ADD, dns)]})
            _check(conn, f"members of {name}")


def _seed_pso(conn: ldap3.Connection) -> None:
    conn.add(
        f"CN={PSO_NAME},{PSO_CONTAINER}",
        ["top", "msDS-PasswordSettings"],
        {
            "msDS-PasswordSettingsPrecedence": "10",
            "msDS-PasswordReversibleEncryptionEnabled": "FALSE",
            "msDS-PasswordHistoryLength": "24",
            "msDS-PasswordComplexityEnabled": "TRUE",
            "msDS-MinimumPasswordLength": str(PSO_MIN_LENGTH),
            "msDS-MinimumPasswordAge": str(filetime_interval(24 * 60)),
            "msDS-MaximumPasswordAge": str(filetime_interval(42 * 24 * 60)),
            "msDS-LockoutThreshold": str(LOCKOUT_THRESHOLD),
            "msDS-LockoutObservationWindow": str(filetime_interval(LOCKOUT_DURATION_MINUTES)),
            "msDS-LockoutDuration": str(filetime_interval(LOCKOUT_DURATION_MINUTES)),
            "msDS-PSOAppliesTo": [group_dn(PSO_GROUP)],
        },
    )
    _check(conn, "the fine-grained password policy")


def object_sid(conn: ldap3.Connection, dn: str) -> str:
    conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["objectSid"])
    _check(conn, f"objectSid of {dn}")
    raw = conn.entries[0].objectSid.raw_values[0]
    return str(format_sid(raw))


def _dsacl(samba_tool: str, smb_conf: Path, sam_ldb: Path, object_dn: str, sddl: str) -> None:
    done = subprocess.run(
        [samba_tool, "dsacl", "set", f"--configfile={smb_conf}", "-H", str(sam_ldb), f"--objectdn={object_dn}",
         f"--sddl={sddl}"],
        capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        raise LabError(f"samba-tool dsacl set on {object_dn} failed: {done.stderr[-1000:]}")


def delegate_reader(samba_tool: str, smb_conf: Path, sam_ldb: Path, reader_sid: str) -> None:
    """Let the bot's read account read fine-grained password policies. AD lets only Domain Admins read
    PSOs by default (seen on Samba too: the object comes back with no attributes), and the bot needs the
    effective policy to generate a password that fits it; a real deployment grants the same."""
    _dsacl(samba_tool, smb_conf, sam_ldb, PSO_CONTAINER, f"(A;CI;RPLCLORC;;;{reader_sid})")


def delegate_writeback(samba_tool: str, smb_conf: Path, sam_ldb: Path, writeback_sid: str) -> None:
    """Give the writeback account exactly what Entra Connect's connector account gets: Reset Password
    and write access to pwdLastSet and lockoutTime on user objects below each user OU, nothing else."""
    aces = "".join(
        f"(OA;CIIO;{right};{guid};{_CLASS_USER};{writeback_sid})"
        for right, guid in (("CR", _RESET_PASSWORD_RIGHT), ("WP", _ATTR_PWD_LAST_SET), ("WP", _ATTR_LOCKOUT_TIME))
    )
    for ou in USER_OUS:
        _dsacl(samba_tool, smb_conf, sam_ldb, ou, aces)


def lock_out(url: str, ca_file: Path, p: Person) -> None:
    """Lock ``p`` out the way it happens in life: failed binds up to the lockout threshold."""
    assert p.dn is not None
    for _ in range(LOCKOUT_THRESHOLD):
        with contextlib.suppress(LDAPBindError):
            connect(p.upn, "not-" + p.password, ca_file=ca_file, url=url).unbind()

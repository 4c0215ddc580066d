"""The lab AD is a real, seeded Samba AD DC: what the bot and the Entra stand-in will rely on."""

from __future__ import annotations

import ssl
from pathlib import Path

import ldap3
import pytest
from ldap3.core.exceptions import LDAPBindError, LDAPSocketOpenError

from lab.ad.ldap import connect
from lab.ad.seed import group_dn
from lab.people import (
    BASE_DN,
    LOCKOUT_THRESHOLD,
    PEOPLE,
    PSO_MIN_LENGTH,
    PSO_NAME,
    READER,
    WRITEBACK,
    in_ad,
    person,
)
from lab.pki import LabCA
from lab.stack import Lab

UF_ACCOUNTDISABLE = 0x2
UF_DONT_EXPIRE_PASSWD = 0x10000
UF_LOCKOUT = 0x10


def reader(lab: Lab) -> ldap3.Connection:
    return as_account(lab, "reader")


def as_account(lab: Lab, account: str) -> ldap3.Connection:
    ad = lab.descriptor["ad"]
    return connect(ad[account]["bind"], ad[account]["password"], ca_file=Path(ad["ca_file"]), url=ad["ldaps_url"])


def sign_in(lab: Lab, upn: str, password: str) -> None:
    ad = lab.descriptor["ad"]
    connect(upn, password, ca_file=Path(ad["ca_file"]), url=ad["ldaps_url"]).unbind()


def read_user(conn: ldap3.Connection, sam: str, *attrs: str) -> ldap3.Entry:
    conn.search(BASE_DN, f"(sAMAccountName={ldap3.utils.conv.escape_filter_chars(sam)})", attributes=list(attrs))
    assert len(conn.entries) == 1, f"{sam}: {conn.result}"
    return conn.entries[0]


def test_reader_sees_every_seeded_person_with_mail_name_and_manager(lab: Lab) -> None:
    conn = reader(lab)
    conn.search(f"OU=Corp,{BASE_DN}", "(&(objectClass=user)(mail=*))",
                attributes=["sAMAccountName", "mail", "displayName", "manager", "userPrincipalName"])
    found = {str(e.sAMAccountName): e for e in conn.entries}
    expected = {p.sam for p in PEOPLE if in_ad(p)}
    assert set(found) == expected
    for p in PEOPLE:
        if not in_ad(p):
            continue
        entry = found[p.sam]
        assert str(entry.mail) == p.mail
        assert str(entry.displayName) == p.display_name
        assert str(entry.userPrincipalName) == p.upn
        assert (str(entry.manager) if entry.manager.value else None) == (person(p.manager).dn if p.manager else None)
    assert "cora" not in found, "cloud-only people must not exist on-prem"


def test_every_enabled_person_signs_in_with_the_fixture_password(lab: Lab) -> None:
    for p in PEOPLE:
        if in_ad(p) and not (p.has("disabled") or p.has("locked")):
            sign_in(lab, p.upn, p.password)


def test_account_states_disabled_never_expires_locked_protected(lab: Lab) -> None:
    conn = reader(lab)
    attrs = ("userAccountControl", "msDS-User-Account-Control-Computed", "adminCount", "memberOf", "lockoutTime")
    dave = read_user(conn, "dave", *attrs)
    assert int(dave.userAccountControl.value) & UF_ACCOUNTDISABLE
    nora = read_user(conn, "nora", *attrs)
    assert int(nora.userAccountControl.value) & UF_DONT_EXPIRE_PASSWD
    larry = read_user(conn, "larry", *attrs)
    assert int(larry["msDS-User-Account-Control-Computed"].value) & UF_LOCKOUT
    with pytest.raises(LDAPBindError):  # locked out: even the right password is refused
        sign_in(lab, person("larry").upn, person("larry").password)
    paula = read_user(conn, "paula", *attrs)
    assert int(paula.adminCount.value) == 1
    assert group_dn("privileged") in paula.memberOf.values
    alice = read_user(conn, "alice", *attrs)
    assert not int(alice["msDS-User-Account-Control-Computed"].value) & UF_LOCKOUT
    assert not alice.adminCount.value


def test_domain_has_a_lockout_policy(lab: Lab) -> None:
    conn = reader(lab)
    conn.search(BASE_DN, "(objectClass=domain)", search_scope=ldap3.BASE,
                attributes=["lockoutThreshold", "minPwdLength", "pwdProperties"])
    head = conn.entries[0]
    assert int(head.lockoutThreshold.value) == LOCKOUT_THRESHOLD
    assert int(head.minPwdLength.value) == 7
    assert int(head.pwdProperties.value) & 1, "complexity must be on"


def test_groups_hold_the_fixture_members(lab: Lab) -> None:
    conn = reader(lab)
    for group in ("helpdesk", "approvers", "it_admins"):
        conn.search(group_dn(group), "(objectClass=group)", search_scope=ldap3.BASE, attributes=["member"])
        members = set(conn.entries[0].member.values)
        assert members == {p.dn for p in PEOPLE if group in p.groups}, group


def writeback(lab: Lab) -> ldap3.Connection:
    return as_account(lab, "writeback")


def refusal(conn: ldap3.Connection, dn: str, password: str) -> str:
    """Reset ``dn``'s password and return Samba's refusal text ("" when it was accepted)."""
    ok = conn.extend.microsoft.modify_password(dn, password)
    return "" if ok else str(conn.result["message"])


def test_samba_refuses_short_noncomplex_and_banned_passwords_and_accepts_a_good_one(lab: Lab) -> None:
    bob = person("bob")
    assert bob.dn
    conn = writeback(lab)
    too_short = refusal(conn, bob.dn, "Ab1!x")
    not_complex = refusal(conn, bob.dn, "onlylowercaseletters")
    banned = refusal(conn, bob.dn, "Contoso!Harbour42")
    # Samba's own texts: length has its own; complexity and the password filter share one (the bot tells
    # them apart with its local complexity check, since "Contoso!Harbour42" is complex).
    assert too_short.startswith("0000052D")
    assert "too short" in too_short
    assert not_complex.startswith("0000052D")
    assert "complexity" in not_complex
    assert banned.startswith("0000052D")
    assert "complexity" in banned
    assert too_short != not_complex
    try:
        assert refusal(conn, bob.dn, "Harbour!Lights42") == ""
        sign_in(lab, bob.upn, "Harbour!Lights42")
    finally:
        assert lab.ad.admin_connection().extend.microsoft.modify_password(bob.dn, bob.password)


def test_the_pso_applies_to_the_admin_and_demands_fifteen_characters(lab: Lab) -> None:
    paula = person("paula")
    assert paula.dn
    conn = reader(lab)
    entry = read_user(conn, "paula", "msDS-ResultantPSO")
    assert str(entry["msDS-ResultantPSO"].value).startswith(f"CN={PSO_NAME},")
    assert not read_user(conn, "alice", "msDS-ResultantPSO")["msDS-ResultantPSO"].value
    admin = lab.ad.admin_connection()
    fourteen = "Harbour!Light4"
    assert len(fourteen) == PSO_MIN_LENGTH - 1
    text = refusal(admin, paula.dn, fourteen)
    assert "too short" in text
    assert str(PSO_MIN_LENGTH) in text
    assert refusal(admin, person("alice").dn or "", fourteen) == ""  # the domain's 7 is enough for alice
    assert admin.extend.microsoft.modify_password(person("alice").dn, person("alice").password)


def test_writeback_account_may_reset_users_and_nothing_more(lab: Lab) -> None:
    conn = writeback(lab)
    alice = person("alice")
    assert alice.dn
    assert refusal(conn, alice.dn, "Maple!Syrup77") == ""
    assert conn.modify(alice.dn, {"pwdLastSet": [(ldap3.MODIFY_REPLACE, ["0"])]})
    assert not conn.modify(alice.dn, {"description": [(ldap3.MODIFY_REPLACE, ["pwned"])]})
    assert conn.result["result"] == 50  # insufficientAccessRights
    assert refusal(conn, READER.dn, "Maple!Syrup77") != "", "service accounts are outside the user OUs"
    me = read_user(reader(lab), WRITEBACK.key, "memberOf")
    assert group_dn("privileged") not in me.memberOf.values
    assert lab.ad.admin_connection().extend.microsoft.modify_password(alice.dn, alice.password)


def test_ldaps_certificate_is_verified_against_the_lab_ca(lab: Lab, tmp_path: Path) -> None:
    ad = lab.descriptor["ad"]
    other_ca = LabCA(tmp_path / "other").ca_file
    with pytest.raises(LDAPSocketOpenError):
        connect(READER.upn, READER.password, ca_file=other_ca, url=ad["ldaps_url"])
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=ad["ca_file"])
    server = ldap3.Server(ad["ldaps_url"], use_ssl=True, tls=tls, get_info=ldap3.NONE)
    assert ldap3.Connection(server, READER.upn, READER.password, auto_bind=True).bound


def test_the_filter_can_be_told_to_refuse_the_next_password(lab: Lab) -> None:
    bob = person("bob")
    assert bob.dn
    conn = writeback(lab)
    lab.ad.refuse_next_passwords(1)
    assert "complexity" in refusal(conn, bob.dn, "Harbour!Lights43")  # a fine password, refused by the filter
    assert refusal(conn, bob.dn, "Harbour!Lights44") == ""  # only the next one
    assert lab.ad.admin_connection().extend.microsoft.modify_password(bob.dn, bob.password)

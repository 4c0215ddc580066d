"""The bot's AD client against the lab's Samba DC, bound as the bot's own read-only account."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.clients.directory import LdapDirectory
from bot.errors import DirectoryUnavailableError
from lab.ad.seed import group_dn
from lab.people import PEOPLE, PSO_MIN_LENGTH, in_ad, person
from lab.stack import Lab


@pytest.fixture(scope="module")
def directory(lab: Lab) -> LdapDirectory:
    ad = lab.descriptor["ad"]
    return LdapDirectory(url=ad["ldaps_url"], bind=ad["reader"]["bind"], password=ad["reader"]["password"],
                         base_dn=ad["base_dn"], ca_file=ad["ca_file"])


def test_finds_a_user_by_sam_upn_and_dn_with_the_same_answer(directory: LdapDirectory) -> None:
    alice = person("alice")
    by_sam = directory.find_user(sam="alice")
    assert by_sam is not None
    assert by_sam.dn == alice.dn
    assert by_sam.display_name == "Alice Archer"
    assert by_sam.mail == alice.mail
    assert directory.find_user(upn=alice.upn) == by_sam
    assert directory.find_user(dn=alice.dn) == by_sam
    assert not by_sam.disabled and not by_sam.locked_out and not by_sam.admin_count
    assert by_sam.pwd_last_set is not None
    assert datetime.now(UTC) - by_sam.pwd_last_set < timedelta(days=3650)


def test_unknown_and_hostile_input_find_nobody(directory: LdapDirectory) -> None:
    assert directory.find_user(sam="nobody-here") is None
    assert directory.find_user(sam="*") is None, "a wildcard must be escaped, not matched"
    assert directory.find_user(upn="a*)(sAMAccountName=alice") is None
    assert directory.find_user(sam="cora") is None, "cloud-only people are not in AD"


def test_account_states_come_through(directory: LdapDirectory) -> None:
    dave, nora, larry, paula = (directory.find_user(sam=k) for k in ("dave", "nora", "larry", "paula"))
    assert dave is not None and dave.disabled
    assert nora is not None and nora.password_never_expires
    assert larry is not None and larry.locked_out
    assert paula is not None and paula.admin_count


def test_transitive_membership(directory: LdapDirectory) -> None:
    paula, alice = person("paula"), person("alice")
    assert paula.dn and alice.dn
    assert directory.is_member_of_any(paula.dn, [group_dn("privileged")])
    assert directory.is_member_of_any(paula.dn, ["CN=Nope,DC=corp,DC=example,DC=test", group_dn("it_admins")])
    assert not directory.is_member_of_any(alice.dn, [group_dn("privileged"), group_dn("it_admins")])
    # Domain Admins is itself a member of Administrators: nesting counts.
    assert directory.is_member_of_any(paula.dn, ["CN=Administrators,CN=Builtin,DC=corp,DC=example,DC=test"])


def test_effective_policy_is_the_pso_for_the_admin_and_the_domain_for_others(directory: LdapDirectory) -> None:
    paula, alice = directory.find_user(sam="paula"), directory.find_user(sam="alice")
    assert paula is not None and alice is not None
    pso = directory.effective_policy(paula)
    assert pso.min_length == PSO_MIN_LENGTH
    assert pso.source.startswith("CN=IT Admins PSO,")
    domain = directory.effective_policy(alice)
    assert domain.source == "domain"
    assert (domain.min_length, domain.history_length, domain.complexity) == (7, 24, True)
    assert domain.min_age == timedelta(days=1)
    assert domain.max_age == timedelta(days=42)


def test_many_users_in_one_search(directory: LdapDirectory) -> None:
    dns = [p.dn for p in PEOPLE if in_ad(p) and p.dn]
    found = directory.password_states_by_dn([*dns, "CN=Ghost,OU=Staff,OU=Corp,DC=corp,DC=example,DC=test"])
    assert set(found) == {d.lower() for d in dns}


def test_many_users_by_logon_name_in_one_search_whatever_their_case(directory: LdapDirectory) -> None:
    people = [p for p in PEOPLE if in_ad(p)]
    hostile = ["ghost", "*", "alice)(sAMAccountName=*"]
    found = directory.password_states_by_sam([*(p.sam.upper() for p in people), *hostile])
    assert set(found) == {p.sam.lower() for p in people}, "the wildcard and the injection found nobody more"
    assert {u.dn for u in found.values()} == {p.dn for p in people}


def test_wrong_password_and_an_outage_are_directory_unavailable(lab: Lab) -> None:
    ad = lab.descriptor["ad"]
    wrong = LdapDirectory(url=ad["ldaps_url"], bind=ad["reader"]["bind"], password="wrong",
                          base_dn=ad["base_dn"], ca_file=ad["ca_file"])
    with pytest.raises(DirectoryUnavailableError, match="refused the bot's bind") as refused:
        wrong.ping()
    assert refused.value.fault == "bind_refused"
    down = LdapDirectory(url="ldaps://127.0.0.1:1", bind=ad["reader"]["bind"], password=ad["reader"]["password"],
                         base_dn=ad["base_dn"], ca_file=ad["ca_file"], timeout_s=2)
    with pytest.raises(DirectoryUnavailableError, match="could not be reached") as err:
        down.ping()
    assert ad["reader"]["password"] not in str(err.value)
    assert err.value.fault == "unreachable"


def test_the_first_call_after_an_outage_reaches_the_dc(lab: Lab, directory: LdapDirectory) -> None:
    """Once the DC serves again (``resume()`` returns only then), the bot's very next call works: the client
    keeps no memory of the failed address (ldap3's shared Server would refuse it for about 5 s more)."""
    lab.ad.pause()
    try:
        with pytest.raises(DirectoryUnavailableError) as err:
            directory.ping()
        assert err.value.fault == "unreachable"
    finally:
        lab.ad.resume()
    directory.ping()
    assert directory.find_user(sam="alice") is not None


def test_ping_reads_the_base_dn_so_a_bind_that_proves_nothing_fails(lab: Lab, directory: LdapDirectory) -> None:
    """The rootDSE answers anyone: an anonymous bind or a base DN with a typo would have pinged fine with it."""
    ad = lab.descriptor["ad"]
    directory.ping()
    anonymous = LdapDirectory(url=ad["ldaps_url"], bind="", password="", base_dn=ad["base_dn"], ca_file=ad["ca_file"])
    with pytest.raises(DirectoryUnavailableError, match="showed the bot nothing at its base DN") as err:
        anonymous.ping()
    assert err.value.fault == "base_unreadable"
    typo = LdapDirectory(url=ad["ldaps_url"], bind=ad["reader"]["bind"], password=ad["reader"]["password"],
                         base_dn="DC=corp,DC=exmaple,DC=test", ca_file=ad["ca_file"])
    with pytest.raises(DirectoryUnavailableError, match="DC=corp,DC=exmaple,DC=test") as err:
        typo.ping()
    assert err.value.fault == "base_unreadable"


def test_an_unreadable_pso_is_said_not_guessed(lab: Lab) -> None:
    """An account without read rights on the PSO container (here: the writeback account) must not fall
    back to the domain policy: that would generate passwords too short for the real one."""
    ad = lab.descriptor["ad"]
    undelegated = LdapDirectory(url=ad["ldaps_url"], bind=ad["writeback"]["bind"],
                                password=ad["writeback"]["password"], base_dn=ad["base_dn"], ca_file=ad["ca_file"])
    paula = undelegated.find_user(sam="paula")
    assert paula is not None and paula.resultant_pso
    with pytest.raises(DirectoryUnavailableError, match="cannot read the password policy"):
        undelegated.effective_policy(paula)

"""Protected accounts, seen whole and seen again: PIM-eligible, custom and administrative-unit-scoped Entra roles, the
AD groups AdminSDHolder guards, the bot's own agents and approvers; and the same check, with the agent's role, made
again right before the credential is set (a request may wait half an hour for its approver)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ldap3
import pytest
from sqlalchemy import text

from bot.domain.lifecycle import RequestState
from lab.people import BASE_DN, Person, person
from lab.slack.driver import SlackDriver
from lab.stack import Lab
from tests.clients.graphlab import EntraControl
from tests.scenarios.harness import RunningBot, link_agent, request_row, wait_until
from tests.scenarios.test_request_approval import request_for, slack_id
from tests.scenarios.test_reset import ad_attrs


@pytest.fixture(scope="module")
def entra(lab: Lab) -> EntraControl:
    return EntraControl(lab)


@pytest.fixture(autouse=True)
def _entra_as_seeded(entra: EntraControl, bot: RunningBot) -> Iterator[None]:
    """Every story starts and ends with the fixture's roles, no faults, and the resets it started finished."""
    entra.reset(history=True)
    yield
    wait_until(lambda: not any(r.state in (RequestState.APPROVED, RequestState.RESETTING) for r in bot.requests()),
               what="the test's resets to finish")
    entra.reset(history=True)


def helpdesk(lab: Lab) -> str:
    return str(lab.descriptor["slack"]["channels"]["helpdesk"])


def refused(lab: Lab, driver: SlackDriver, bot: RunningBot, key: str, *, by: str = "hank") -> str:
    """``by`` asks for ``key``'s reset; the one sentence they hear (nothing is posted, a refusal is audited)."""
    seen = len(driver.ephemeral(by))
    driver.command(by, "/reset", f"<@{slack_id(lab, key)}|{key}> called the helpdesk", channel=helpdesk(lab))
    driver.wait_for(lambda: len(driver.ephemeral(by)) > seen or None, what=f"an answer to {by}")
    said = driver.ephemeral(by)[seen]
    assert not driver.messages(helpdesk(lab)), f"a request was posted: {said['text']}"
    last = bot.audit()[-1]
    assert last.action == "refused" and '"reason":"protected"' in last.detail
    return str(said["text"])


def protected_sentence(name: str, words: str) -> str:
    return (f"{name}'s account is protected ({words}), and no rule allows resetting it through resetbot; a domain "
            "administrator has to do it.")


@pytest.mark.parametrize(("assignment", "words"), [
    ({"role": "Global Administrator", "eligible": True}, "eligible for an Entra admin role through PIM"),
    ({"role": "Contoso Password Reviewer", "custom": True}, "holds an Entra admin role"),
    ({"role": "Helpdesk Administrator", "administrative_unit": "Sales"}, "holds an Entra admin role"),
], ids=["pim-eligible", "custom", "au-scoped"])
def test_entra_roles_that_are_no_directory_role_membership_still_protect(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl, assignment: dict[str, Any],
        words: str) -> None:
    """None of these shows in transitiveMemberOf. Entra itself would let hank reset Bob while he is merely eligible
    for Global Administrator: one activation later, the caller would hold a Global Administrator's password."""
    entra.assign("bob", **assignment)
    assert refused(lab, driver, bot, "bob") == protected_sentence("Bob Baker", words)


@pytest.mark.parametrize(("group", "words"), [
    ({"members": ("bob",)}, "holds an Entra admin role"),
    ({"members": ("bob",), "eligible": True}, "eligible for an Entra admin role through PIM"),
    ({"eligible_members": ("bob",)}, "eligible for an Entra admin role through PIM"),
    ({"eligible_owners": ("bob",)}, "eligible for an Entra admin role through PIM"),
    ({"owners": ("bob",)}, "eligible for an Entra admin role through PIM"),
], ids=["member-of-role-group", "member-of-eligible-role-group", "pim-for-groups-eligible-member",
        "pim-for-groups-eligible-owner", "owner-of-role-group"])
def test_roles_held_through_a_role_assignable_group_protect(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl, group: dict[str, Any],
        words: str) -> None:
    """Global Administrator assigned to a role-assignable group, not to Bob: the assignment's principalId is the
    group, so reading Bob's own assignments finds nothing. A member holds the role; one merely eligible (PIM for
    Groups) for membership, or an owner (who may add himself), is one step from it."""
    eligible_role = bool(group.pop("eligible", False))
    entra.role_group("Tier0 Admins", **group)
    entra.assign_group("Tier0 Admins", "Global Administrator", eligible=eligible_role)
    assert refused(lab, driver, bot, "bob") == protected_sentence("Bob Baker", words)


def test_a_tenant_without_pim_for_groups_still_sees_roles_held_through_groups(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl) -> None:
    """Without Entra ID P2 the PIM reads answer AadPremiumLicenseRequired; membership of a role-assignable group
    still counts."""
    entra.faults(pim_unlicensed=True)
    entra.role_group("Tier0 Admins", members=("bob",))
    entra.assign_group("Tier0 Admins", "Global Administrator")
    assert refused(lab, driver, bot, "bob") == protected_sentence("Bob Baker", "holds an Entra admin role")


def test_an_owner_of_a_role_assignable_group_is_protected_without_pim(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl) -> None:
    """Ownership of a group is no PIM feature: in a tenant without Entra ID P2 an owner of a role-assignable group
    may still add himself as a member and so hold its role. The PIM reads answer AadPremiumLicenseRequired there,
    so a check that learnt of owners only from PIM for Groups saw none, and let the owner's password go."""
    entra.faults(pim_unlicensed=True)
    entra.role_group("Tier0 Admins", owners=("bob",))
    entra.assign_group("Tier0 Admins", "Global Administrator")
    assert refused(lab, driver, bot, "bob") == protected_sentence(
        "Bob Baker", "eligible for an Entra admin role through PIM")


GROUPS = ["CN=Key Admins,CN=Users", "CN=Enterprise Key Admins,CN=Users", "CN=Replicator,CN=Builtin",
          "CN=Domain Controllers,CN=Users", "CN=Read-only Domain Controllers,CN=Users"]


@pytest.mark.parametrize("group", GROUPS)
def test_members_of_the_key_admin_replicator_and_domain_controller_groups_are_protected(
        lab: Lab, bot: RunningBot, driver: SlackDriver, group: str) -> None:
    """By default, without RESETBOT_PROTECTED_GROUPS: members may write any account's Windows Hello keys, or
    replicate the domain's secrets."""
    admin = lab.ad.admin_connection()
    dn = f"{group},{BASE_DN}"
    assert admin.modify(dn, {"member": [(ldap3.MODIFY_ADD, [person("bob").dn])]}), admin.result
    try:
        assert refused(lab, driver, bot, "bob") == protected_sentence("Bob Baker", "a member of a protected AD group")
    finally:
        assert admin.modify(dn, {"member": [(ldap3.MODIFY_DELETE, [person("bob").dn])]}), admin.result


def test_the_bots_own_agents_and_approvers_are_protected(lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """Ivan approves resets and holds no admin role: resetting him (where Slack signs in through Entra) hands over
    his Slack identity, and with it his Approve button."""
    assert refused(lab, driver, bot, "ivan") == protected_sentence("Ivan Iverson", "one of resetbot's agents or "
                                                                   "approvers")
    said = refused(lab, driver, bot, "hedy")
    assert "holds an Entra admin role, one of resetbot's agents or approvers" in said


def test_a_target_who_became_protected_while_the_request_waited_is_not_reset(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl) -> None:
    before = ad_attrs(lab, "bob")
    request = request_for(lab, driver, "bob", "became eligible meanwhile")
    ts = str(request["ts"])
    entra.assign("bob", "Global Administrator", eligible=True)  # after the request, before the approval
    driver.click("mona", helpdesk(lab), ts, "request_approve")
    said = driver.wait_for_message(helpdesk(lab), lambda m: m["text"].startswith(":no_entry: Not reset"),
                                   thread_ts=ts, timeout=30)
    assert said["text"] == (
        ":no_entry: Not reset: Bob Baker's account is protected now (eligible for an Entra admin role through PIM), "
        "which it was not when this request was made; nothing was changed. A protected account needs a rule that "
        "names it and two approvers: ask again.")
    assert entra.operations() == [], "no resetPassword reached Entra"
    assert ad_attrs(lab, "bob") == before
    req = request_row(bot, ts)
    assert req.state == RequestState.CANCELLED
    last = bot.audit(req.id)[-1]
    assert (last.action, last.from_state, last.to_state) == ("refused", "approved", "cancelled")
    assert '"stage":"reset"' in last.detail and '"reason":"protected"' in last.detail


def test_an_agent_whose_role_was_taken_away_while_the_request_waited_sets_nothing(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl) -> None:
    """Hedy was an Authentication Administrator when she asked for Bob's TAP; the role is gone by the approval, so
    the bot stops there instead of sending Entra a call it would refuse."""
    entra.assign("hedy", "Authentication Administrator")
    link_agent(lab, driver, "hedy")
    request = request_for(lab, driver, "bob", "tap, then the role went", by="hedy", flags="--tap")
    ts = str(request["ts"])
    entra.assign("hedy", "Authentication Administrator", remove=True)
    driver.click("mona", helpdesk(lab), ts, "request_approve")
    said = driver.wait_for_message(helpdesk(lab), lambda m: m["text"].startswith(":no_entry: Not reset"),
                                   thread_ts=ts, timeout=30)
    assert said["text"] == (
        f":no_entry: Not reset (nothing was changed), <@{slack_id(lab, 'hedy')}>: Your Entra account "
        "hedy@corp.example.test (no Entra role that may create Temporary Access Passes) can't create a Temporary "
        "Access Pass for anyone: that takes Authentication Administrator, Privileged Authentication Administrator or "
        "Global Administrator.")
    assert not [r for r in entra.requests("graph") if r["path"].endswith("/temporaryAccessPassMethods")]
    req = request_row(bot, ts)
    assert req.state == RequestState.CANCELLED
    assert '"reason":"not_ready"' in bot.audit(req.id)[-1].detail


def test_when_the_check_cannot_be_made_again_nothing_is_set(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl) -> None:
    before = ad_attrs(lab, "bob")
    request = request_for(lab, driver, "bob", "graph down at approval")
    ts = str(request["ts"])
    # Graph's role reads fail (the approval's own look-up of who is who still answers): the re-check cannot be made.
    entra.faults(fail_next_5xx=50, fault_path="roleManagement")
    driver.click("mona", helpdesk(lab), ts, "request_approve")
    said = driver.wait_for_message(helpdesk(lab), lambda m: m["text"].startswith(":warning: Not reset"),
                                   thread_ts=ts, timeout=60)
    assert said["text"].startswith(":warning: Not reset: I couldn't check Bob Baker's account again just before the "
                                   "reset (")
    assert said["text"].endswith("), so nothing was changed; ask again once Entra ID and Active Directory answer.")
    entra.reset()
    assert entra.operations() == []
    assert ad_attrs(lab, "bob") == before
    req = request_row(bot, ts)
    assert req.state == RequestState.CANCELLED


def test_a_tenant_without_pim_still_resets_ordinary_users(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl) -> None:
    """Without Entra ID P2 Graph refuses to list eligibilities (AadPremiumLicenseRequired): there is no PIM, so
    nobody can be eligible, and that refusal must not block every reset."""
    entra.faults(pim_unlicensed=True)
    request = request_for(lab, driver, "alice", "no P2 here")
    driver.click("mona", helpdesk(lab), str(request["ts"]), "request_approve")
    driver.wait_for_message(helpdesk(lab), lambda m: "Done:" in m["text"], thread_ts=str(request["ts"]), timeout=30)
    alice = person("alice")
    assert lab.ad.admin_connection().extend.microsoft.modify_password(alice.dn, alice.password)


@pytest.mark.parametrize("guid_known", [True, False], ids=["by-guid", "row-without-guid"])
def test_the_check_before_the_reset_reads_the_account_asked_for_even_after_it_moved(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl, guid_known: bool) -> None:
    """Bob is renamed between the request and its approval and made protected (adminCount=1), and an ordinary
    account is put where he was. The check right before the reset used to read AD by the DN stored with the
    request, so it read that other account, found nothing protected, and let Bob's reset go on; it now reads the
    account by objectGUID, which no rename or move changes. A request stored before the GUID was kept (migration
    0010) has only the DN, which cannot tell Bob from whoever sits there now: it is refused, not read by DN."""
    helpdesk_channel = helpdesk(lab)
    bob = person("bob")
    assert bob.dn is not None
    rdn, parent = bob.dn.split(",", 1)
    moved = f"CN=Bob Baker (moved),{parent}"
    decoy = Person("decoy", "Dee", "Coy", bob.ou, "D3coy!Pass#Word-9")
    admin = lab.ad.admin_connection()
    before = ad_attrs(lab, "bob")
    request = request_for(lab, driver, "bob", "renamed and promoted meanwhile")
    ts = str(request["ts"])
    if not guid_known:
        with bot.runtime.session_factory.begin() as session:
            session.execute(text("UPDATE reset_request SET target_guid = NULL WHERE thread_ts = :ts"), {"ts": ts})
    try:
        assert admin.modify_dn(bob.dn, "CN=Bob Baker (moved)"), admin.result
        assert admin.modify(moved, {"adminCount": [(ldap3.MODIFY_REPLACE, ["1"])]}), admin.result
        assert admin.add(bob.dn, ["top", "person", "organizationalPerson", "user"], {
            "sAMAccountName": decoy.sam, "userPrincipalName": decoy.upn, "displayName": decoy.display_name,
            "userAccountControl": "512", "unicodePwd": f'"{decoy.password}"'.encode("utf-16-le")}), admin.result
        driver.click("mona", helpdesk_channel, ts, "request_approve")
        said = driver.wait_for_message(helpdesk_channel, lambda m: m["text"].startswith((":no_entry:", ":warning:",
                                                                                         ":white_check_mark:")),
                                       thread_ts=ts, timeout=30)
        protected = ":no_entry: Not reset: Bob Baker's account is protected now (AD adminCount=1)"
        unchecked = ":warning: Not reset: I couldn't check Bob Baker's account again just before the reset"
        # Without a GUID the row is refused unread; a check that still found Bob by his GUID (read before the row
        # lost it) refuses him as protected: either way nothing is set, never the decoy's "not protected".
        expected = (protected,) if guid_known else (unchecked, protected)
        assert said["text"].startswith(expected), said["text"]
        assert entra.operations() == [], "no resetPassword reached Entra"
        req = request_row(bot, ts)
        assert req.state == RequestState.CANCELLED
        reasons = ("protected",) if guid_known else ("recheck_failed", "protected")
        assert any(f'"reason":"{reason}"' in bot.audit(req.id)[-1].detail for reason in reasons)
    finally:
        admin.delete(bob.dn)
        admin.modify(moved, {"adminCount": [(ldap3.MODIFY_DELETE, [])]})
        admin.modify_dn(moved, rdn)
    assert ad_attrs(lab, "bob") == before

"""Role assignments as Graph shows them: directoryRole memberships, roleAssignments, PIM eligibilities."""

from __future__ import annotations

from typing import Any

from lab.entra import config
from lab.people import person
from tests.lab_entra.conftest import EntraLab
from tests.lab_entra.test_graph_reads import assert_graph_error

ASSIGNMENTS = "/roleManagement/directory/roleAssignments"
ELIGIBLE = "/roleManagement/directory/roleEligibilityScheduleInstances"
GA_TEMPLATE = config.ROLE_TEMPLATE_IDS["Global Administrator"]


def listed(entra: EntraLab, path: str, key: str, token: str | None = None) -> list[dict[str, Any]]:
    answer = entra.graph("GET", path, token or entra.app_token(),
                         params={"$filter": f"principalId eq '{person(key).entra_id}'", "$expand": "roleDefinition"})
    assert answer.status_code == 200, answer.text
    value: list[dict[str, Any]] = answer.json()["value"]
    return value


def directory_roles(entra: EntraLab, key: str) -> list[str]:
    body = entra.graph("GET", f"/users/{person(key).upn}/transitiveMemberOf", entra.app_token()).json()
    return [o["displayName"] for o in body["value"] if o["@odata.type"] == "#microsoft.graph.directoryRole"]


def test_a_fixture_role_is_an_active_tenant_wide_assignment(entra: EntraLab) -> None:
    [paula] = listed(entra, ASSIGNMENTS, "paula")
    assert (paula["principalId"], paula["roleDefinitionId"], paula["directoryScopeId"]) == (
        person("paula").entra_id, GA_TEMPLATE, "/")
    assert paula["roleDefinition"]["displayName"] == "Global Administrator"
    assert paula["roleDefinition"]["isBuiltIn"] is True
    assert listed(entra, ELIGIBLE, "paula") == []
    assert listed(entra, ASSIGNMENTS, "bob") == []


def test_eligible_custom_and_scoped_roles_are_not_directory_role_memberships(entra: EntraLab) -> None:
    """What transitiveMemberOf never shows, and what a check that reads only it therefore misses."""
    entra.assign("bob", "Global Administrator", eligible=True)
    entra.assign("bob", "Contoso Password Reviewer", custom=True)
    entra.assign("bob", "Helpdesk Administrator", administrative_unit="Sales")
    assert directory_roles(entra, "bob") == []
    active = {a["roleDefinition"]["displayName"]: a for a in listed(entra, ASSIGNMENTS, "bob")}
    assert set(active) == {"Contoso Password Reviewer", "Helpdesk Administrator"}
    assert active["Contoso Password Reviewer"]["roleDefinition"]["isBuiltIn"] is False
    assert active["Helpdesk Administrator"]["directoryScopeId"].startswith("/administrativeUnits/")
    [eligible] = listed(entra, ELIGIBLE, "bob")
    assert (eligible["roleDefinitionId"], eligible["memberType"]) == (GA_TEMPLATE, "Direct")
    assert eligible["roleDefinition"]["displayName"] == "Global Administrator"
    entra.assign("bob", "Global Administrator", eligible=True, remove=True)
    assert listed(entra, ELIGIBLE, "bob") == []
    entra.control("POST", "/reset")
    assert listed(entra, ASSIGNMENTS, "bob") == [], "a lab reset puts the fixture's roles back"


def test_reading_roles_takes_role_management_permissions(entra: EntraLab) -> None:
    entra.consent("User.Read.All", "GroupMember.Read.All", "Organization.Read.All")
    token = entra.app_token(fresh=True)
    for path in (ASSIGNMENTS, ELIGIBLE):
        answer = entra.graph("GET", path, token)
        assert answer.status_code == 403, path
        assert_graph_error(answer.json(), "Authorization_RequestDenied")
    delegated = entra.graph("GET", ASSIGNMENTS, entra.agent_token("hank"))
    assert delegated.status_code == 403
    entra.consent(*config.APP_ROLES)
    bad = entra.graph("GET", ASSIGNMENTS, entra.app_token(fresh=True), params={"$filter": "startswith(x,'y')"})
    assert bad.status_code == 400


def test_a_tenant_without_p2_has_no_pim_to_ask(entra: EntraLab) -> None:
    entra.control("POST", "/faults", {"pim_unlicensed": True})
    answer = entra.graph("GET", ELIGIBLE, entra.app_token())
    assert answer.status_code == 400
    assert_graph_error(answer.json(), "AadPremiumLicenseRequired")
    assert listed(entra, ASSIGNMENTS, "paula"), "active assignments need no P2"


def test_the_role_control_refuses_what_it_cannot_mean(entra: EntraLab) -> None:
    upn = person("bob").upn
    assert entra.control("POST", "/roles", {"upn": upn, "role": "Global Admin"}).status_code == 400, \
        "a misspelt built-in role is not silently a custom role"
    assert entra.control("POST", "/roles", {"upn": upn, "role": "Global Administrator", "custom": True}
                         ).status_code == 400
    assert entra.control("POST", "/roles", {"upn": "nobody@x", "role": "Global Administrator"}).status_code == 404
    assert entra.control("POST", "/roles", {"upn": upn, "role": "Global Administrator", "eligible": "yes"}
                         ).status_code == 400
    shown = entra.control("GET", f"/roles?upn={person('paula').upn}").json()
    assert shown["assignments"] == [{"role": "Global Administrator", "eligible": False, "scope": "/",
                                     "built_in": True}]


PIM_GROUPS = "/identityGovernance/privilegedAccess/group"


def test_a_role_assignable_groups_roles_are_listed_under_the_group_not_its_members(entra: EntraLab) -> None:
    """Graph's shape: the assignment's principalId is the group; a member's own filter finds nothing, the group's
    (or ``principalId in``) does; transitiveMemberOf shows the group as role-assignable, no directoryRole; Entra's
    own reset check counts the member's role through the group."""
    made = entra.control("POST", "/groups", {"name": "Tier0", "members": [person("bob").upn],
                                             "eligible_members": [person("alice").upn]})
    assert made.status_code == 200, made.text
    group_id = made.json()["id"]
    assert entra.control("POST", "/roles", {"group": "Tier0", "role": "Global Administrator"}).status_code == 200
    assert listed(entra, ASSIGNMENTS, "bob") == []
    both = entra.graph("GET", ASSIGNMENTS, entra.app_token(), params={
        "$filter": f"principalId in ('{person('bob').entra_id}', '{group_id}')", "$expand": "roleDefinition"})
    assert [(a["principalId"], a["roleDefinition"]["displayName"]) for a in both.json()["value"]] == [
        (group_id, "Global Administrator")]
    groups = entra.graph("GET", f"/users/{person('bob').upn}/transitiveMemberOf/microsoft.graph.group",
                         entra.app_token(), params={"$select": "id,isAssignableToRole"}).json()["value"]
    assert {"@odata.type": "#microsoft.graph.group", "id": group_id, "isAssignableToRole": True} in groups
    assert directory_roles(entra, "bob") == []
    refused = entra.graph("POST", f"/users/{person('bob').entra_id}/authentication/methods/"
                          "28c10230-6103-485e-b985-444c60001490/resetPassword", entra.agent_token("hank"),
                          body={"newPassword": "Xy7!long-enough-Pass"})
    assert refused.status_code == 403, "a Helpdesk Administrator may not reset a Global Administrator's password"
    eligible = entra.graph("GET", f"{PIM_GROUPS}/eligibilityScheduleInstances", entra.app_token(),
                           params={"$filter": f"principalId eq '{person('alice').entra_id}'"}).json()["value"]
    assert [(e["groupId"], e["accessId"]) for e in eligible] == [(group_id, "member")]
    active = entra.graph("GET", f"{PIM_GROUPS}/assignmentScheduleInstances", entra.app_token(),
                         params={"$filter": f"groupId eq '{group_id}'"}).json()["value"]
    assert [(a["principalId"], a["accessId"]) for a in active] == [(person("bob").entra_id, "member")]
    entra.control("POST", "/reset")
    assert entra.control("GET", "/groups").json() == [], "a lab reset removes the groups"


def test_pim_for_groups_takes_its_own_permissions_a_filter_and_p2(entra: EntraLab) -> None:
    flt = {"$filter": f"principalId eq '{person('bob').entra_id}'"}
    for kind in ("eligibilityScheduleInstances", "assignmentScheduleInstances"):
        assert entra.graph("GET", f"{PIM_GROUPS}/{kind}", entra.app_token(), params=flt).status_code == 200
        unfiltered = entra.graph("GET", f"{PIM_GROUPS}/{kind}", entra.app_token())
        assert unfiltered.status_code == 400, "Graph lists PIM for Groups only for a principal or a group"
        assert entra.graph("GET", f"{PIM_GROUPS}/{kind}", entra.agent_token("hank"), params=flt).status_code == 403
    entra.consent(*[r for r in config.APP_ROLES if "AzureADGroup" not in r])
    token = entra.app_token(fresh=True)
    for kind in ("eligibilityScheduleInstances", "assignmentScheduleInstances"):
        answer = entra.graph("GET", f"{PIM_GROUPS}/{kind}", token, params=flt)
        assert answer.status_code == 403
        assert_graph_error(answer.json(), "Authorization_RequestDenied")
    entra.consent(*config.APP_ROLES)
    entra.control("POST", "/faults", {"pim_unlicensed": True})
    answer = entra.graph("GET", f"{PIM_GROUPS}/eligibilityScheduleInstances", entra.app_token(fresh=True),
                         params=flt)
    assert answer.status_code == 400
    assert_graph_error(answer.json(), "AadPremiumLicenseRequired")
    entra.control("POST", "/reset")

"""Graph reads with the app's token: users with on-prem fields, filters, manager, memberships, tenant."""

from __future__ import annotations

from typing import Any

from ldap3.protocol.formatters.formatters import format_sid

from lab.people import DOMAIN, PEOPLE, person
from tests.lab_entra.conftest import EntraLab

ONPREM = ("onPremisesSyncEnabled,onPremisesSamAccountName,onPremisesDistinguishedName,onPremisesSecurityIdentifier,"
          "onPremisesDomainName,onPremisesUserPrincipalName,onPremisesImmutableId,onPremisesLastSyncDateTime,"
          "lastPasswordChangeDateTime,accountEnabled,id,userPrincipalName")


def assert_graph_error(body: dict[str, Any], code: str) -> None:
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert set(body["error"]["innerError"]) >= {"date", "request-id", "client-request-id"}


def test_user_by_upn_and_id_with_onprem_fields_only_when_selected(entra: EntraLab) -> None:
    token = entra.app_token()
    alice = person("alice")
    plain = entra.graph("GET", f"/users/{alice.upn}", token)
    assert plain.status_code == 200
    assert plain.headers["Content-Type"].startswith("application/json")
    body = plain.json()
    assert body["id"] == alice.entra_id
    assert body["mail"] == alice.mail
    assert body["displayName"] == alice.display_name
    assert not any(k.startswith("onPremises") for k in body)
    assert body["@odata.context"].endswith("$metadata#users/$entity")

    selected = entra.graph("GET", f"/users/{alice.entra_id}", token, params={"$select": ONPREM}).json()
    entry = entra.ad_attrs(alice, "objectSid")
    assert selected["onPremisesSyncEnabled"] is True
    assert selected["onPremisesSamAccountName"] == alice.sam
    assert selected["onPremisesDistinguishedName"] == alice.dn
    assert selected["onPremisesSecurityIdentifier"] == format_sid(entry.objectSid.raw_values[0])
    assert selected["onPremisesDomainName"] == DOMAIN
    assert selected["onPremisesUserPrincipalName"] == alice.upn
    assert selected["onPremisesImmutableId"]
    assert selected["onPremisesLastSyncDateTime"].endswith("Z")
    assert selected["lastPasswordChangeDateTime"].endswith("Z")
    assert selected["accountEnabled"] is True
    assert "mail" not in selected

    cora = entra.graph("GET", f"/users/{person('cora').upn}", token, params={"$select": ONPREM}).json()
    assert cora["onPremisesSyncEnabled"] is None
    assert cora["onPremisesSecurityIdentifier"] is None
    dave = entra.graph("GET", f"/users/{person('dave').upn}", token, params={"$select": "accountEnabled"}).json()
    assert dave["accountEnabled"] is False


def test_unknown_user_and_unknown_property_answer_graph_errors(entra: EntraLab) -> None:
    token = entra.app_token()
    missing = entra.graph("GET", "/users/nobody@corp.example.test", token)
    assert missing.status_code == 404
    assert_graph_error(missing.json(), "Request_ResourceNotFound")
    bad = entra.graph("GET", f"/users/{person('alice').upn}", token, params={"$select": "id,favouriteColour"})
    assert bad.status_code == 400
    assert_graph_error(bad.json(), "Request_BadRequest")
    unknown = entra.graph("GET", "/groupsOfThings", token)
    assert unknown.status_code == 400
    assert_graph_error(unknown.json(), "BadRequest")
    no_token = entra.graph("GET", "/users", "")
    assert no_token.status_code == 401
    assert_graph_error(no_token.json(), "InvalidAuthenticationToken")
    forged = entra.graph("GET", "/users", token[:-4] + "AAAA")
    assert forged.status_code == 401


def test_filters_on_mail_upn_and_display_name(entra: EntraLab) -> None:
    token = entra.app_token()
    by_mail = entra.graph("GET", "/users", token, params={"$filter": "mail eq 'BOB@corp.example.test'"}).json()
    assert [u["id"] for u in by_mail["value"]] == [person("bob").entra_id]
    by_upn = entra.graph("GET", "/users", token, params={"$filter": f"userPrincipalName eq '{person('hank').upn}'"})
    assert [u["userPrincipalName"] for u in by_upn.json()["value"]] == [person("hank").upn]
    starts = entra.graph("GET", "/users", token, params={"$filter": "startswith(displayName,'H')",
                                                           "$select": "displayName"}).json()
    assert sorted(u["displayName"] for u in starts["value"]) == ["Hank Hughes", "Hedy Holt"]
    none = entra.graph("GET", "/users", token, params={"$filter": "mail eq 'o''brien@corp.example.test'"}).json()
    assert none["value"] == []
    unsupported = entra.graph("GET", "/users", token, params={"$filter": "jobTitle eq 'x'"})
    assert unsupported.status_code == 400
    assert_graph_error(unsupported.json(), "Request_UnsupportedQuery")


def test_paging_follows_next_link(entra: EntraLab) -> None:
    token = entra.app_token()
    seen: list[str] = []
    url = "/users?$top=5&$select=id"
    while url:
        page = entra.graph("GET", url, token).json()
        seen += [u["id"] for u in page["value"]]
        url = page.get("@odata.nextLink", "")
    assert len(seen) == len(set(seen)) == len(PEOPLE)


def test_manager_and_transitive_memberships(entra: EntraLab) -> None:
    token = entra.app_token()
    manager = entra.graph("GET", f"/users/{person('alice').upn}/manager", token).json()
    assert manager["@odata.type"] == "#microsoft.graph.user"
    assert manager["id"] == person("mona").entra_id
    top = entra.graph("GET", f"/users/{person('olga').upn}/manager", token)
    assert top.status_code == 404
    assert_graph_error(top.json(), "Request_ResourceNotFound")

    hank = entra.graph("GET", f"/users/{person('hank').entra_id}/transitiveMemberOf", token).json()["value"]
    groups = {o["displayName"] for o in hank if o["@odata.type"] == "#microsoft.graph.group"}
    roles = {o["displayName"]: o["roleTemplateId"] for o in hank
             if o["@odata.type"] == "#microsoft.graph.directoryRole"}
    assert groups == {"Helpdesk"}
    assert roles == {"Helpdesk Administrator": "729827e3-9c14-49f7-bb1b-9608f156bbb8"}
    paula = entra.graph("GET", f"/users/{person('paula').upn}/transitiveMemberOf/microsoft.graph.group", token)
    assert {o["displayName"] for o in paula.json()["value"]} == {"IT Admins"}, "Domain Admins is never synced"


def test_organization_reports_sync_times(entra: EntraLab) -> None:
    token = entra.app_token()
    select = "onPremisesSyncEnabled,onPremisesLastSyncDateTime,onPremisesLastPasswordSyncDateTime"
    org = entra.graph("GET", "/organization", token, params={"$select": select}).json()["value"][0]
    assert set(org) == set(select.split(","))
    assert org["onPremisesSyncEnabled"] is True
    assert org["onPremisesLastPasswordSyncDateTime"] >= org["onPremisesLastSyncDateTime"]


def test_onprem_synchronization_is_for_global_administrators_with_a_delegated_token(entra: EntraLab) -> None:
    path = "/directory/onPremisesSynchronization"
    app = entra.graph("GET", path, entra.app_token())
    assert app.status_code == 403
    assert_graph_error(app.json(), "Authorization_RequestDenied")
    assert entra.graph("GET", path, entra.agent_token("hank")).status_code == 403
    paula = entra.graph("GET", path, entra.agent_token("paula"))
    assert paula.status_code == 200, paula.text
    assert paula.json()["value"][0]["features"]["passwordWritebackEnabled"] is True
    entra.control("POST", "/faults", {"writeback": "disabled"})
    off = entra.graph("GET", path, entra.agent_token("paula")).json()
    assert off["value"][0]["features"]["passwordWritebackEnabled"] is False


def test_requests_are_logged_with_caller_and_status(entra: EntraLab) -> None:
    token = entra.app_token()
    entra.graph("GET", f"/users/{person('alice').upn}", token)
    entra.graph("GET", f"/users/{person('alice').upn}", entra.agent_token("hedy"))
    log = [r for r in entra.control("GET", "/requests").json() if r["kind"] == "graph"]
    assert [(r["method"], r["app"], r["user"], r["status"]) for r in log] == [
        ("GET", entra.d["app"]["client_id"], None, 200),
        ("GET", entra.d["public_client_id"], person("hedy").upn, 200),
    ]
    assert log[0]["path"] == f"/v1.0/users/{person('alice').upn}"

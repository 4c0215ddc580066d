"""The other ways to a password: PATCH passwordProfile (cloud-only) and Temporary Access Passes."""

from __future__ import annotations

from lab.people import person
from tests.lab_entra.conftest import EntraLab, fresh_password
from tests.lab_entra.test_graph_reads import assert_graph_error


def test_patch_password_profile_is_app_only_and_for_cloud_only_users(entra: EntraLab) -> None:
    token = entra.app_token()
    profile = {"passwordProfile": {"password": fresh_password(), "forceChangePasswordNextSignIn": True}}
    cora = entra.graph("PATCH", f"/users/{person('cora').upn}", token, profile)
    assert cora.status_code == 204, cora.text
    synced = entra.graph("PATCH", f"/users/{person('alice').upn}", token, profile)
    assert synced.status_code == 400
    assert_graph_error(synced.json(), "Request_BadRequest")
    assert "on-premises mastered" in synced.json()["error"]["message"]
    weak = entra.graph("PATCH", f"/users/{person('cora').upn}", token, {"passwordProfile": {"password": "short"}})
    assert weak.status_code == 400
    assert "complexity" in weak.json()["error"]["message"]
    delegated = entra.graph("PATCH", f"/users/{person('cora').upn}", entra.agent_token("hedy"), profile)
    assert delegated.status_code == 403
    not_json = entra.graph("PATCH", f"/users/{person('cora').upn}", token, None, content=b"{not json")
    assert not_json.status_code == 400
    assert "JSON" in not_json.json()["error"]["message"]


def test_temporary_access_pass_one_usable_per_user(entra: EntraLab) -> None:
    token = entra.app_token()
    path = f"/users/{person('alice').upn}/authentication/temporaryAccessPassMethods"
    first = entra.graph("POST", path, token, {"lifetimeInMinutes": 60, "isUsableOnce": True})
    assert first.status_code == 201, first.text
    tap = first.json()
    assert tap["temporaryAccessPass"]
    assert tap["lifetimeInMinutes"] == 60
    assert tap["isUsableOnce"] is True
    assert tap["isUsable"] is True
    assert tap["methodUsabilityReason"] == "EnabledByPolicy"
    second = entra.graph("POST", path, token, {}).json()
    listed = entra.graph("GET", path, token).json()["value"]
    assert [t["id"] for t in listed] == [second["id"]], "a new TAP replaces the old one"
    assert listed[0]["temporaryAccessPass"] is None, "the pass is shown only at creation"
    too_long = entra.graph("POST", path, token, {"lifetimeInMinutes": 50000})
    assert too_long.status_code == 400
    # Delegated: Helpdesk Administrators cannot manage authentication methods.
    assert entra.graph("POST", path, entra.agent_token("hank"), {}).status_code == 403

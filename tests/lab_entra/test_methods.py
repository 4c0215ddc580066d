"""The other ways to a password: PATCH passwordProfile (cloud-only) and Temporary Access Passes."""

from __future__ import annotations

from lab.entra import config
from lab.people import person
from tests.lab_entra.conftest import EntraLab, fresh_password
from tests.lab_entra.test_graph_reads import assert_graph_error


def test_patch_password_profile_is_app_only_and_for_cloud_only_users(entra: EntraLab) -> None:
    """The lab's app has only the documented read permissions: it may not touch a password profile until an
    administrator consents User-PasswordProfile.ReadWrite.All (which resetbot never asks for)."""
    profile = {"passwordProfile": {"password": fresh_password(), "forceChangePasswordNextSignIn": True}}
    refused = entra.graph("PATCH", f"/users/{person('cora').upn}", entra.app_token(fresh=True), profile)
    assert refused.status_code == 403
    assert_graph_error(refused.json(), "Authorization_RequestDenied")
    entra.consent(*config.APP_ROLES, "User-PasswordProfile.ReadWrite.All")
    token = entra.app_token(fresh=True)
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


def test_an_app_only_temporary_access_pass_is_refused_with_the_documented_permissions(entra: EntraLab) -> None:
    """Graph lets an app holding UserAuthenticationMethod.ReadWrite.All mint a TAP for anyone, checking no role;
    resetbot's app registration holds only read permissions, so the lab's app is refused, as Graph refuses it."""
    token = entra.app_token(fresh=True)
    path = f"/users/{person('alice').upn}/authentication/temporaryAccessPassMethods"
    app = entra.graph("POST", path, token, {"lifetimeInMinutes": 60, "isUsableOnce": True})
    assert app.status_code == 403, app.text
    assert_graph_error(app.json(), "Authorization_RequestDenied")
    assert "temporaryAccessPass" not in app.text
    reset = f"/users/{person('alice').upn}/authentication/methods/28c10230-6103-485e-b985-444c60001490/resetPassword"
    assert entra.graph("POST", reset, token, {"newPassword": fresh_password()}).status_code == 403
    entra.assign("hedy", "Authentication Administrator")
    listed = entra.graph("GET", path, entra.agent_token("hedy")).json()["value"]
    assert listed == [], "nothing was created"
    # With the permission consented (as resetbot never asks), Graph would have made it: the app's consent decides.
    entra.consent(*config.APP_ROLES, "UserAuthenticationMethod.ReadWrite.All")
    assert entra.graph("POST", path, entra.app_token(fresh=True), {}).status_code == 201


def test_temporary_access_pass_one_usable_per_user(entra: EntraLab) -> None:
    entra.assign("hedy", "Authentication Administrator")
    token = entra.agent_token("hedy")
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


def test_delegated_temporary_access_passes_follow_microsofts_role_table(entra: EntraLab) -> None:
    """Authentication Administrators for non-admins (and the few roles the reset table lets them act on),
    Privileged Authentication and Global Administrators for anyone; Helpdesk and Password Administrators never."""
    def create(caller: str, target: str) -> int:
        path = f"/users/{person(target).upn}/authentication/temporaryAccessPassMethods"
        return entra.graph("POST", path, entra.agent_token(caller), {}).status_code

    assert create("hank", "alice") == 403, "a Helpdesk Administrator may reset a password, not create a TAP"
    assert create("hedy", "alice") == 403, "nor may a Password Administrator"
    entra.assign("hedy", "Authentication Administrator")
    assert create("hedy", "alice") == 201
    assert create("hedy", "hank") == 403, "a Helpdesk Administrator target needs more than Authentication Admin"
    assert create("hedy", "paula") == 403
    assert create("hedy", "hedy") == 403, "not on one's own account"
    entra.assign("bob", "Helpdesk Administrator", administrative_unit="Sales")
    assert create("hedy", "bob") == 403, "a role held in an administrative unit counts on the target"
    entra.assign("bob", "Global Administrator", eligible=True)
    entra.assign("bob", "Helpdesk Administrator", administrative_unit="Sales", remove=True)
    assert create("hedy", "bob") == 201, "Entra ignores an eligible (inactive) role: Microsoft's table does too"
    assert create("paula", "hank") == 201, "a Global Administrator may create one for anyone"


def test_reading_a_users_temporary_access_passes_takes_a_role_that_manages_them(entra: EntraLab) -> None:
    """GET temporaryAccessPassMethods on another user: the permission is not enough, as in Graph; the caller's role
    must cover the target's authentication methods (a Helpdesk or Password Administrator's does not)."""
    def read(caller: str, target: str) -> int:
        path = f"/users/{person(target).upn}/authentication/temporaryAccessPassMethods"
        return entra.graph("GET", path, entra.agent_token(caller)).status_code

    assert read("hank", "alice") == 403, "a Helpdesk Administrator may not read a user's passes"
    assert read("hedy", "alice") == 403, "nor may a Password Administrator"
    assert read("alice", "alice") == 200, "one's own need no role"
    entra.assign("hedy", "Authentication Administrator")
    assert read("hedy", "alice") == 200
    assert read("hedy", "paula") == 403, "not a Global Administrator's"
    assert read("paula", "hank") == 200

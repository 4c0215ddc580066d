"""Containment's two Graph calls as the lab's Entra answers them: revokeSignInSessions (and the user's
``signInSessionsValidFromDateTime`` moving) and deleting a Temporary Access Pass; each refused to the app (no such
permission consented) and to a role Entra does not allow, as Microsoft refuses them."""

from __future__ import annotations

from datetime import datetime

from lab.entra import config
from lab.people import person
from tests.lab_entra.conftest import EntraLab
from tests.lab_entra.test_graph_reads import assert_graph_error


def _valid_from(entra: EntraLab, key: str) -> datetime:
    user = entra.graph("GET", f"/users/{person(key).upn}?$select=signInSessionsValidFromDateTime",
                       entra.app_token()).json()
    return datetime.fromisoformat(user["signInSessionsValidFromDateTime"].replace("Z", "+00:00"))


def _revoke(entra: EntraLab, key: str, token: str) -> int:
    return entra.graph("POST", f"/users/{person(key).upn}/revokeSignInSessions", token).status_code


def test_revoke_sign_in_sessions_moves_the_users_valid_from_time(entra: EntraLab) -> None:
    before = _valid_from(entra, "alice")
    answer = entra.graph("POST", f"/users/{person('alice').upn}/revokeSignInSessions", entra.agent_token("hank"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["value"] is True
    after = _valid_from(entra, "alice")
    assert after > before
    seen = entra.control("GET", f"/sessions?upn={person('alice').upn}").json()
    assert seen["revocations"] == 1 and datetime.fromisoformat(seen["sign_in_sessions_valid_from"]) >= after
    assert entra.control("POST", "/reset").status_code == 200
    assert entra.control("GET", f"/sessions?upn={person('alice').upn}").json()["revocations"] == 0


def test_revoking_sessions_follows_entras_roles_and_is_refused_to_the_app(entra: EntraLab) -> None:
    """The app holds no User.RevokeSessions.All (README asks for none); the Password Administrator may reset a
    password but not sign anyone out; a Helpdesk Administrator may not sign out a Global Administrator."""
    app = entra.graph("POST", f"/users/{person('alice').upn}/revokeSignInSessions", entra.app_token(fresh=True))
    assert app.status_code == 403
    assert_graph_error(app.json(), "Authorization_RequestDenied")
    assert _revoke(entra, "alice", entra.agent_token("hedy")) == 403, "Password Administrator"
    assert _revoke(entra, "paula", entra.agent_token("hank")) == 403, "Helpdesk Administrator on a Global Admin"
    assert entra.control("GET", f"/sessions?upn={person('alice').upn}").json()["revocations"] == 0
    assert _revoke(entra, "alice", entra.agent_token("gina")) == 200, "User Administrator"
    entra.consent(*config.APP_ROLES, "User.RevokeSessions.All")
    assert _revoke(entra, "bob", entra.app_token(fresh=True)) == 200, "as Graph allows an app consented for it"


def test_a_temporary_access_pass_is_deleted_by_an_authentication_administrator(entra: EntraLab) -> None:
    entra.assign("hedy", "Authentication Administrator")
    path = f"/users/{person('bob').upn}/authentication/temporaryAccessPassMethods"
    made = entra.graph("POST", path, entra.agent_token("hedy"), {"lifetimeInMinutes": 60, "isUsableOnce": True})
    assert made.status_code == 201, made.text
    tap_id = made.json()["id"]
    by_app = entra.graph("DELETE", f"{path}/{tap_id}", entra.app_token(fresh=True))
    assert by_app.status_code == 403, "the app holds no authentication-method permission"
    by_helpdesk = entra.graph("DELETE", f"{path}/{tap_id}", entra.agent_token("hank"))
    assert by_helpdesk.status_code == 403, "a Helpdesk Administrator manages no authentication methods"
    assert [t["id"] for t in entra.graph("GET", path, entra.agent_token("hedy")).json()["value"]] == [tap_id]
    deleted = entra.graph("DELETE", f"{path}/{tap_id}", entra.agent_token("hedy"))
    assert deleted.status_code == 204, deleted.text
    assert entra.graph("GET", path, entra.agent_token("hedy")).json()["value"] == []
    again = entra.graph("DELETE", f"{path}/{tap_id}", entra.agent_token("hedy"))
    assert again.status_code == 404
    assert entra.control("GET", f"/sessions?upn={person('bob').upn}").json()["taps"] == []


def test_a_refresh_token_issued_before_the_revocation_no_longer_works(entra: EntraLab) -> None:
    """What revocation is for: the sign-ins someone already holds end. A refresh token issued before it is refused
    (invalid_grant, AADSTS50173) and a new sign-in works again."""
    app = entra.public()
    flow = app.initiate_device_flow(scopes=["User.Read"])
    assert entra.control("POST", "/device/approve", {"user_code": flow["user_code"],
                                                     "upn": person("hank").upn}).status_code == 200
    assert "access_token" in app.acquire_token_by_device_flow(flow)
    account = app.get_accounts()[0]
    assert "access_token" in (app.acquire_token_silent_with_error(["User.Read"], account, force_refresh=True) or {})
    assert _revoke(entra, "hank", entra.agent_token("gina")) == 200  # a User Administrator signs hank out
    refused = app.acquire_token_silent_with_error(["User.Read"], account, force_refresh=True) or {}
    assert refused.get("error") == "invalid_grant" and 50173 in refused.get("error_codes", []), refused

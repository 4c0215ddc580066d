"""resetPassword with plain httpx, the documented way: 202 + Location, poll, and AD has the verdict."""

from __future__ import annotations

import dataclasses
import json
import ssl
from collections.abc import Iterator

import ldap3
import pytest

from lab.entra import EntraStandIn
from lab.entra.passwords import PasswordHistory
from lab.entra.writeback import WritebackAgent
from lab.people import PEOPLE, PSO_NAME, Person, person
from lab.pki import LabCA
from tests.lab_entra.conftest import EntraLab, fresh_password
from tests.lab_entra.test_graph_reads import assert_graph_error

PASSWORD_METHOD = "28c10230-6103-485e-b985-444c60001490"


@pytest.fixture
def restore(entra: EntraLab) -> Iterator[list[Person]]:
    """People whose AD password a test may change; their fixture password is put back afterwards."""
    changed: list[Person] = []
    yield changed
    for p in changed:
        entra.restore(p)


def bind_error(entra: EntraLab, p: Person, password: str) -> str:
    """"" when ``password`` signs ``p`` in; else AD's bind message (data 773 = right but must change)."""
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(entra.ca_file))
    server = ldap3.Server(entra.ad_d["ldaps_url"], use_ssl=True, tls=tls, get_info=ldap3.NONE)
    conn = ldap3.Connection(server, user=p.upn, password=password, raise_exceptions=False)
    try:
        return "" if conn.bind() else str(conn.result["message"])
    finally:
        conn.unbind()


def test_reset_writes_back_and_sets_must_change(entra: EntraLab, restore: list[Person]) -> None:
    alice = person("alice")
    restore.append(alice)
    before = entra.pwd_last_set(alice)
    assert before != 0
    password = fresh_password()
    answer = entra.reset("hedy", "alice", password)
    assert answer.status_code == 202, answer.text
    assert answer.json() == {}
    location = answer.headers["Location"]
    assert location.startswith(f"{entra.d['graph_base']}/users/{alice.entra_id}/authentication/operations/")
    assert "Retry-After" not in answer.headers, "Microsoft's documented 202 carries none; the header is optional"
    op = entra.wait(location, entra.agent_token("hedy"))
    assert op["status"] == "succeeded", op
    assert op["statusDetail"] is None
    assert {"id", "createdDateTime", "lastActionDateTime", "resourceLocation"} <= set(op)
    assert entra.pwd_last_set(alice) == 0, "must change at next logon"
    assert "data 773" in bind_error(entra, alice, password), "the new password is right but must be changed"
    assert "data 52e" in bind_error(entra, alice, alice.password), "the old password no longer works"
    user = entra.graph("GET", f"/users/{alice.upn}", entra.app_token(),
                       params={"$select": "lastPasswordChangeDateTime"}).json()
    assert user["lastPasswordChangeDateTime"] >= op["createdDateTime"]
    logged = entra.control("GET", "/operations").json()
    assert [(o["upn"], o["caller"], o["status"]) for o in logged] == [(alice.upn, person("hedy").upn, "succeeded")]


def test_never_expiring_password_keeps_pwd_last_set(entra: EntraLab, restore: list[Person]) -> None:
    nora = person("nora")
    restore.append(nora)
    before = entra.pwd_last_set(nora)
    password = fresh_password()
    op = entra.reset_and_wait("hank", "nora", password)
    assert op["status"] == "succeeded", op
    after = entra.pwd_last_set(nora)
    assert after not in (0, before), "the password changed, but Entra does not apply must-change on-prem here"
    assert bind_error(entra, nora, password) == ""


@pytest.mark.parametrize(
    ("case", "password", "detail"),
    [
        ("too short for the domain", "Ab1!xy", "too short"),
        ("the on-prem password filter", "Welcome!Harbour42", "complexity"),
        ("not complex", "onlylowercaseletters", "complexity"),
        ("history", "FIXTURE", "password history"),
    ],
)
def test_ad_refusals_fail_the_operation_and_leave_ad_untouched(
    entra: EntraLab, restore: list[Person], case: str, password: str, detail: str
) -> None:
    bob = person("bob")
    restore.append(bob)
    before = entra.pwd_last_set(bob)
    op = entra.reset_and_wait("hedy", "bob", bob.password if password == "FIXTURE" else password)
    assert op["status"] == "failed", case
    assert op["statusDetail"].startswith("33008: ")
    assert detail in op["statusDetail"]
    assert entra.pwd_last_set(bob) == before
    assert bind_error(entra, bob, bob.password) == ""


def test_a_password_set_through_the_stand_in_is_in_history_afterwards(entra: EntraLab, restore: list[Person]) -> None:
    bob = person("bob")
    restore.append(bob)
    first = fresh_password()
    assert entra.reset_and_wait("hedy", "bob", first)["status"] == "succeeded"
    assert entra.reset_and_wait("hedy", "bob", fresh_password())["status"] == "succeeded"
    again = entra.reset_and_wait("hedy", "bob", first)
    assert again["status"] == "failed"
    assert "last 24 passwords" in again["statusDetail"]


def test_the_cloud_banned_list_refuses_before_anything_reaches_ad(entra: EntraLab) -> None:
    bob = person("bob")
    before = entra.pwd_last_set(bob)
    answer = entra.reset("hedy", "bob", "Qwerty!Harbour42")
    assert answer.status_code == 400
    assert_graph_error(answer.json(), "Request_BadRequest")
    assert "blocked" in answer.json()["error"]["message"]
    assert entra.control("GET", "/operations").json() == []
    assert entra.pwd_last_set(bob) == before


@pytest.mark.parametrize(("key", "detail"), [("dave", "33005: "), ("larry", "33006: ")])
def test_disabled_and_locked_accounts_fail_like_entra_connect(entra: EntraLab, key: str, detail: str) -> None:
    p = person(key)
    before = entra.pwd_last_set(p)
    op = entra.reset_and_wait("hedy", key, fresh_password())
    assert op["status"] == "failed"
    assert op["statusDetail"].startswith(detail)
    assert entra.pwd_last_set(p) == before


def test_protected_account_fails_with_33004(entra: EntraLab) -> None:
    """Only a Global or Privileged Authentication Administrator may reset paula (a Global Administrator) in
    Entra; the fixture has no second one, so a second stand-in (same AD) gives ivan that role."""
    people = tuple(dataclasses.replace(p, entra_roles=("Privileged Authentication Administrator",))
                   if p.key == "ivan" else p for p in PEOPLE)
    paula = person("paula")
    before = entra.pwd_last_set(paula)
    with EntraStandIn(entra.ad_d, LabCA(entra.ca_file.parent), people) as other:
        lab = EntraLab(ad=entra.ad, entra=other, ca_file=entra.ca_file)
        op = lab.reset_and_wait("ivan", "paula", fresh_password() + "Long")
    assert op["status"] == "failed"
    assert op["statusDetail"].startswith("33004: ")
    assert "adminCount=1" in op["statusDetail"]
    assert entra.pwd_last_set(paula) == before


def test_pso_history_length_is_read_for_pso_members(entra: EntraLab) -> None:
    """The PSO's 15-character minimum is Samba's to enforce (tests/lab_ad; its only member, paula, is
    protected, so no writeback reaches it); what the stand-in reads from the PSO is the history length,
    which needs an admin read of the PSO (policy lookup only)."""
    agent = WritebackAgent(entra.ad_d, PasswordHistory())
    paula = person("paula")
    assert paula.dn
    assert str(entra.ad_attrs(paula, "msDS-ResultantPSO")["msDS-ResultantPSO"].value).startswith(f"CN={PSO_NAME},")
    assert agent.history_length(paula.dn) == 24
    assert agent.history_length(person("alice").dn or "") == 24


def test_role_table_denies_helpdesk_resetting_a_global_administrator(entra: EntraLab) -> None:
    paula = person("paula")
    before = entra.pwd_last_set(paula)
    answer = entra.reset("hank", "paula", fresh_password() + "Long")
    assert answer.status_code == 403
    body = answer.json()
    assert_graph_error(body, "Authorization_RequestDenied")
    assert body["error"]["message"] == "Insufficient privileges to complete the operation."
    assert body["error"]["innerError"]["request-id"] == answer.headers["request-id"]
    # A Password Administrator may not reset a Helpdesk Administrator either.
    assert entra.reset("hedy", "hank", fresh_password()).status_code == 403
    assert entra.control("GET", "/operations").json() == []
    assert entra.pwd_last_set(paula) == before


def test_app_tokens_and_own_account_are_refused(entra: EntraLab) -> None:
    path = f"/users/{person('alice').upn}/authentication/methods/{PASSWORD_METHOD}/resetPassword"
    app = entra.graph("POST", path, entra.app_token(), {"newPassword": fresh_password()})
    assert app.status_code == 403
    assert_graph_error(app.json(), "Authorization_RequestDenied")
    own = entra.reset("hedy", "hedy", fresh_password())
    assert own.status_code == 403
    assert entra.control("GET", "/operations").json() == []


def test_cloud_only_user_gets_a_cloud_password_and_may_get_a_generated_one(entra: EntraLab) -> None:
    cora = person("cora")
    generated = entra.reset("hedy", "cora", None)
    assert generated.status_code == 202
    assert len(generated.json()["newPassword"]) >= 8
    op = entra.wait(generated.headers["Location"], entra.agent_token("hedy"))
    assert op["status"] == "succeeded"
    weak = entra.reset("hedy", "cora", "alllowercase")
    assert weak.status_code == 400
    assert "complexity" in weak.json()["error"]["message"]
    # For a synced user the password is required.
    assert entra.reset("hedy", "alice", None).status_code == 400
    assert cora.dn is None


def test_no_password_ever_appears_in_operations_requests_or_errors(entra: EntraLab, restore: list[Person]) -> None:
    bob = person("bob")
    restore.append(bob)
    good = fresh_password()
    short = "Zz9!short"[:6]
    assert entra.reset_and_wait("hedy", "bob", good)["status"] == "succeeded"
    assert entra.reset_and_wait("hedy", "bob", short)["status"] == "failed"
    banned = entra.reset("hedy", "bob", "Qwerty!Harbour42")
    logs = json.dumps([entra.control("GET", "/operations").json(), entra.control("GET", "/requests").json(),
                       banned.json()])
    for secret in (good, short, "Qwerty!Harbour42", bob.password):
        assert secret not in logs

"""Each fault switch of the control API produces what the reference says Graph or Entra would answer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from msal.exceptions import MsalServiceError

from lab.people import Person, person
from tests.lab_entra.conftest import GRAPH_DEFAULT, EntraLab, fresh_password
from tests.lab_entra.test_graph_reads import assert_graph_error
from tests.lab_entra.test_identity import claims


@pytest.fixture
def bob_untouched(entra: EntraLab) -> Iterator[Person]:
    """bob, asserted to have the same pwdLastSet after the test (a failed reset leaves AD as it was)."""
    bob = person("bob")
    before = entra.pwd_last_set(bob)
    yield bob
    assert entra.pwd_last_set(bob) == before


def test_throttle_next_answers_429_with_retry_after_then_recovers(entra: EntraLab) -> None:
    token = entra.app_token()
    entra.control("POST", "/faults", {"throttle_next": 2, "retry_after": 0.5})
    path = f"/users/{person('alice').upn}"
    for _ in range(2):
        got = entra.graph("GET", path, token)
        assert got.status_code == 429
        assert got.headers["Retry-After"] == "0.5"
        assert_graph_error(got.json(), "TooManyRequests")
    assert entra.graph("GET", path, token).status_code == 200
    statuses = [r["status"] for r in entra.control("GET", "/requests").json() if r["kind"] == "graph"]
    assert statuses == [429, 429, 200]


def test_fail_next_5xx_answers_503_once(entra: EntraLab) -> None:
    token = entra.app_token()
    entra.control("POST", "/faults", {"fail_next_5xx": 1})
    failed = entra.graph("GET", "/organization", token)
    assert failed.status_code == 503
    assert_graph_error(failed.json(), "serviceNotAvailable")
    assert entra.graph("GET", "/organization", token).status_code == 200


def test_latency_is_added_to_graph_calls(entra: EntraLab) -> None:
    token = entra.app_token()
    entra.control("POST", "/faults", {"latency_ms": 300})
    started = time.monotonic()
    assert entra.graph("GET", "/organization", token).status_code == 200
    assert time.monotonic() - started >= 0.3  # a lower bound only: never a flaky upper one


def test_token_endpoint_down_answers_503_then_recovers(entra: EntraLab) -> None:
    entra.control("POST", "/faults", {"token_endpoint_down": True, "retry_after": 1})
    # msal does not return 5xx answers as a result dict: it raises (the bot must catch this).
    with pytest.raises(MsalServiceError, match="503"):
        entra.confidential().acquire_token_for_client(scopes=GRAPH_DEFAULT)
    with entra.http() as client:
        raw = client.post(f"{entra.d['authority']}/oauth2/v2.0/token", data={"grant_type": "client_credentials"})
        assert raw.status_code == 503
        assert raw.headers["Retry-After"] == "1"
        assert raw.json()["error"] == "temporarily_unavailable"
    entra.control("POST", "/faults", {"token_endpoint_down": False})
    # msal caches 5xx answers for Retry-After seconds: a fresh app asks again.
    assert "access_token" in entra.confidential().acquire_token_for_client(scopes=GRAPH_DEFAULT)


def test_writeback_disabled_fails_the_operation_with_sspr_0010(entra: EntraLab, bob_untouched: Person) -> None:
    entra.control("POST", "/faults", {"writeback": "disabled"})
    op = entra.reset_and_wait("hedy", "bob", fresh_password())
    assert op["status"] == "failed"
    assert op["statusDetail"].startswith("SSPR_0010: ")
    # Cloud-only users do not need writeback.
    assert entra.reset_and_wait("hedy", "cora", fresh_password())["status"] == "succeeded"


def test_writeback_offline_fails_after_a_delay_with_a_connectivity_error(
    entra: EntraLab, bob_untouched: Person
) -> None:
    entra.control("POST", "/faults", {"writeback": "offline", "offline_delay_ms": 200})
    token = entra.app_token()
    sync_before = entra.graph("GET", "/organization", token).json()["value"][0]["onPremisesLastSyncDateTime"]
    answer = entra.reset("hedy", "bob", fresh_password())
    assert answer.status_code == 202
    op = entra.wait(answer.headers["Location"], entra.agent_token("hedy"))
    assert op["status"] == "failed"
    assert op["statusDetail"].startswith("SSPR_0030: ")
    org = entra.graph("GET", "/organization", token).json()["value"][0]
    assert org["onPremisesLastSyncDateTime"] == sync_before, "nothing syncs while the Connect server is down"


def test_sync_lag_makes_the_last_sync_times_that_old(entra: EntraLab) -> None:
    token = entra.app_token()
    query = "?$select=onPremisesLastSyncDateTime,onPremisesLastPasswordSyncDateTime"
    entra.control("POST", "/faults", {"sync_lag_minutes": 300})
    try:
        org = entra.graph("GET", "/organization" + query, token).json()["value"][0]
        now = datetime.now(UTC)
        for name in ("onPremisesLastSyncDateTime", "onPremisesLastPasswordSyncDateTime"):
            assert now - datetime.fromisoformat(org[name]) >= timedelta(minutes=300), name
    finally:
        entra.control("POST", "/faults", {"sync_lag_minutes": 0})
    org = entra.graph("GET", "/organization" + query, token).json()["value"][0]
    assert datetime.now(UTC) - datetime.fromisoformat(org["onPremisesLastSyncDateTime"]) < timedelta(minutes=31)


def test_a_revoked_app_role_is_missing_from_new_tokens_and_graph_refuses_them(entra: EntraLab) -> None:
    earlier = entra.app_token()
    faults = entra.control("POST", "/faults", {"revoked_app_roles": ["Organization.Read.All"]}).json()
    assert faults["revoked_app_roles"] == ["Organization.Read.All"]
    result = entra.confidential().acquire_token_for_client(scopes=GRAPH_DEFAULT)  # a new app: not msal's cache
    token = str(result["access_token"])
    roles = claims(token)["roles"]
    assert "Organization.Read.All" not in roles and "User.Read.All" in roles
    refused = entra.graph("GET", "/organization", token)
    assert refused.status_code == 403
    assert_graph_error(refused.json(), "Authorization_RequestDenied")
    assert entra.graph("GET", f"/users/{person('alice').upn}", token).status_code == 200
    assert entra.graph("GET", "/organization", earlier).status_code == 200  # issued before: keeps it until expiry
    assert entra.control("POST", "/faults", {"revoked_app_roles": "Organization.Read.All"}).status_code == 400
    assert entra.control("POST", "/reset").json()["faults"]["revoked_app_roles"] == []


def test_a_stopped_domain_controller_fails_the_operation(entra: EntraLab, bob_untouched: Person) -> None:
    entra.ad.pause()
    try:
        op = entra.reset_and_wait("hedy", "bob", fresh_password())
    finally:
        entra.ad.resume()
    assert op["status"] == "failed"
    assert op["statusDetail"].startswith("SSPR_0029: ")


def _held_operation(entra: EntraLab) -> dict[str, Any]:
    """The one operation, once the stand-in holds it (an event, awaited with a bound)."""
    deadline = time.monotonic() + 10
    while True:
        ops = entra.control("GET", "/operations").json()
        if ops and ops[0]["held"]:
            [op] = ops
            return dict(op)
        assert time.monotonic() < deadline, ops
        time.sleep(0.02)


def test_hold_operations_keeps_new_resets_running_until_released(entra: EntraLab) -> None:
    bob = person("bob")
    before = entra.pwd_last_set(bob)
    assert entra.control("POST", "/faults", {"hold_operations": True}).json()["hold_operations"] is True
    token = entra.agent_token("hedy")
    answer = entra.reset("hedy", "bob", fresh_password())
    assert answer.status_code == 202, answer.text
    try:
        held = _held_operation(entra)
        assert held["status"] == "running" and held["statusDetail"] is None
        polled = entra.graph("GET", answer.headers["Location"], token).json()
        assert polled["status"] == "running" and "held" not in polled, "Graph's answer is Graph's shape"
        assert entra.pwd_last_set(bob) == before, "nothing reaches AD while held"
        released = entra.control("POST", "/faults", {"hold_operations": False}).json()
        assert released["hold_operations"] is False
        op = entra.wait(answer.headers["Location"], token)
        assert op["status"] == "succeeded", op
        assert entra.pwd_last_set(bob) == 0, "written back once released"
        [logged] = entra.control("GET", "/operations").json()
        assert logged["status"] == "succeeded" and not logged["held"]
    finally:
        entra.restore(bob)


def test_a_lab_reset_drops_held_operations_before_they_reach_ad(entra: EntraLab, bob_untouched: Person) -> None:
    entra.control("POST", "/faults", {"hold_operations": True})
    assert entra.reset("hedy", "bob", fresh_password()).status_code == 202
    _held_operation(entra)
    cleared = entra.control("POST", "/reset").json()
    assert cleared["faults"]["hold_operations"] is False
    assert entra.control("GET", "/operations").json() == []
    # Writebacks take turns: one finished after the reset proves the dropped one never went to AD first.
    alice = person("alice")
    try:
        assert entra.reset_and_wait("hedy", "alice", fresh_password())["status"] == "succeeded"
    finally:
        entra.restore(alice)


def test_bad_fault_bodies_are_refused_and_reset_clears_everything(entra: EntraLab) -> None:
    assert entra.control("POST", "/faults", {"writeback": "sideways"}).status_code == 400
    assert entra.control("POST", "/faults", {"throttle_next": -1}).status_code == 400
    assert entra.control("POST", "/faults", {"no_such_fault": 1}).status_code == 400
    assert entra.control("POST", "/faults", {"throttle_next": 3}).json()["throttle_next"] == 3
    entra.graph("GET", "/organization", entra.app_token())
    assert entra.control("GET", "/requests").json()
    cleared = entra.control("POST", "/reset").json()
    assert cleared["faults"]["throttle_next"] == 0
    assert cleared["faults"]["writeback"] == "ok"
    assert entra.control("GET", "/requests").json() == []
    assert entra.control("GET", "/operations").json() == []

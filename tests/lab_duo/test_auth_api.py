"""Duo's own client (duo-client) against the Duo stand-in, changed only in host, port and CA: signatures are
checked as Duo documents them, pushes are answered as the control API says."""

from __future__ import annotations

import hashlib
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duo_client
import httpx
import pytest
from duo_client.client import canonicalize

from lab.duo import DuoStandIn
from lab.duo.signature import canonical
from lab.pki import LabCA


@pytest.fixture(scope="module")
def duo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuoStandIn]:
    with DuoStandIn(LabCA(tmp_path_factory.mktemp("duo-pki"))) as server:
        yield server


def client(duo: DuoStandIn, *, skey: str | None = None, sig_version: int | None = None) -> Any:
    d = duo.descriptor()
    host, _, port = d["api_host"].partition(":")
    return duo_client.Auth(ikey=d["integration_key"], skey=skey or d["secret_key"], host=host, port=int(port),
                           ca_certs=d["ca_file"], sig_version=sig_version)


def control(duo: DuoStandIn, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    d = duo.descriptor()
    with httpx.Client(verify=ssl.create_default_context(cafile=d["ca_file"]), trust_env=False) as http:
        resp = http.request(method, f"{d['control']}{path}", json=body, timeout=10)
    resp.raise_for_status()
    return resp.json()


def test_check_verifies_every_signature_version(duo: DuoStandIn) -> None:
    for version in (2, 4, 5):
        assert client(duo, sig_version=version).check()["time"] > 0
    calls = [c for c in control(duo, "GET", "/requests") if c["path"] == "/auth/v2/check"]
    assert [c["sig_version"] for c in calls[-3:]] == [2, 4, 5]
    assert all(c["signature_ok"] for c in calls[-3:])


def test_a_wrong_secret_key_is_refused(duo: DuoStandIn) -> None:
    with pytest.raises(RuntimeError, match=r"40103|Invalid signature"):
        client(duo, skey="not-the-secret-key-at-all-0000000000000").check()
    with pytest.raises(RuntimeError, match=r"40103|Invalid signature"):
        client(duo, skey="not-the-secret-key-at-all-0000000000000", sig_version=2).preauth(username="alice")
    assert control(duo, "GET", "/requests")[-1]["signature_ok"] is False


def test_a_request_changed_after_signing_is_refused(duo: DuoStandIn) -> None:
    """A signature covers the body: the same signed headers with another username are refused."""
    c = client(duo)
    captured: dict[str, Any] = {}
    real = c._make_request

    def tamper(method: str, uri: str, body: str, headers: dict[bytes, bytes]) -> Any:
        captured["sent"] = True
        return real(method, uri, body.replace("alice", "bob00"), headers)

    c._make_request = tamper
    with pytest.raises(RuntimeError, match="Invalid signature"):
        c.preauth(username="alice")
    assert captured["sent"]


def test_the_certificate_is_checked(duo: DuoStandIn, tmp_path: Path) -> None:
    other = LabCA(tmp_path / "other-ca")
    d = duo.descriptor()
    host, _, port = d["api_host"].partition(":")
    c = duo_client.Auth(ikey=d["integration_key"], skey=d["secret_key"], host=host, port=int(port),
                        ca_certs=str(other.ca_file))
    with pytest.raises(ssl.SSLError):
        c.check()


def test_preauth_offers_a_push_to_the_enrolled_phone_and_enrolment_to_others(duo: DuoStandIn) -> None:
    alice = client(duo).preauth(username="alice")
    assert alice["result"] == "auth"
    assert alice["devices"][0]["number"] == "XXX-XXX-0103"
    assert "push" in alice["devices"][0]["capabilities"]
    assert client(duo).preauth(username="cora")["result"] == "enroll"


@pytest.mark.parametrize(("answer", "status"), [("allow", "allow"), ("deny", "deny"), ("fraud", "fraud"),
                                                 ("timeout", "timeout")])
def test_an_async_push_ends_as_the_control_api_says(duo: DuoStandIn, answer: str, status: str) -> None:
    control(duo, "POST", "/answer", {"username": "bob", "result": answer, "delay_ms": 50})
    c = client(duo)
    txid = c.auth(factor="push", username="bob", device="auto", async_txn=True, pushinfo="request=R-1")["txid"]
    seen = c.auth_status(txid)
    while seen["waiting"]:
        seen = c.auth_status(txid)
    assert seen["status"] == status
    assert seen["success"] is (answer == "allow")
    push = next(p for p in control(duo, "GET", "/pushes?username=bob") if p["txid"] == txid)
    assert push["pushinfo"] == "request=R-1"


def test_a_waiting_push_is_answered_when_the_person_presses_and_only_once(duo: DuoStandIn) -> None:
    control(duo, "POST", "/answer", {"username": "bob", "result": "allow", "delay_ms": 600_000})
    c = client(duo)
    txid = c.auth(factor="push", username="bob", device="auto", async_txn=True)["txid"]
    assert next(p for p in control(duo, "GET", "/pushes?username=bob") if p["txid"] == txid)["status"] == "pushed"
    assert control(duo, "POST", "/press", {"username": "bob", "result": "fraud"})["txid"] == txid
    assert c.auth_status(txid)["status"] == "fraud"
    with pytest.raises(httpx.HTTPStatusError) as none_waits:  # answered: the queued "allow" changes nothing
        control(duo, "POST", "/press", {"username": "bob", "result": "allow"})
    assert none_waits.value.response.status_code == 409
    assert c.auth_status(txid)["status"] == "fraud"


def test_a_push_to_someone_not_enrolled_is_refused(duo: DuoStandIn) -> None:
    with pytest.raises(RuntimeError, match=r"40002|Invalid request parameters"):
        client(duo).auth(factor="push", username="cora", device="auto", async_txn=True)


def test_the_control_api_refuses_what_it_cannot_do(duo: DuoStandIn) -> None:
    with pytest.raises(httpx.HTTPStatusError):
        control(duo, "POST", "/answer", {"username": "cora", "result": "allow"})
    with pytest.raises(httpx.HTTPStatusError):
        control(duo, "POST", "/answer", {"username": "bob", "result": "maybe"})


def test_signature_canonical_matches_duo_clients_own(duo: DuoStandIn) -> None:
    """The lab's canonical string is duo-client's, byte for byte, for a body and X-Duo headers."""
    body = json.dumps({"username": "a b~c"}, sort_keys=True, separators=(",", ":"))
    theirs = canonicalize("POST", "Localhost", "/auth/v2/auth", {}, "Sun, 06 Dec 2026 07:00:00 -0000", 5,
                          body=body, additional_headers={"X-Duo-Extra": "1"})
    ours = canonical(5, date="Sun, 06 Dec 2026 07:00:00 -0000", method="post", host="Localhost",
                     path="/auth/v2/auth", params={}, body=body.encode(), headers={"X-Duo-Extra": "1"})
    assert ours == theirs
    assert hashlib.sha512(b"").hexdigest() in canonical(
        4, date="d", method="GET", host="h", path="/p", params={"a": ["1"]}, body=b"", headers={})


def test_the_control_api_takes_a_phone_away_and_gives_it_back(duo: DuoStandIn) -> None:
    control(duo, "POST", "/enrolment", {"username": "bob", "enrolled": False})
    try:
        assert client(duo).preauth(username="bob")["result"] == "enroll"
        with pytest.raises(RuntimeError, match=r"40002|Invalid request parameters"):
            client(duo).auth(factor="push", username="bob", device="auto", async_txn=True)
    finally:
        control(duo, "POST", "/enrolment", {"username": "bob", "enrolled": True})
    assert client(duo).preauth(username="bob")["result"] == "auth"
    with pytest.raises(httpx.HTTPStatusError):
        control(duo, "POST", "/enrolment", {"username": "mallory", "enrolled": True})

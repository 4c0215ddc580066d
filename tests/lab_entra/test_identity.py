"""msal against the stand-in, changed only in authority, instance_discovery=False and the CA it trusts."""

from __future__ import annotations

import base64
import datetime as dt
import json
import ssl
from typing import Any

import httpx
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from lab.people import person
from tests.lab_entra.conftest import AGENT_SCOPES, GRAPH_DEFAULT, EntraLab


def claims(token: str) -> dict[str, Any]:
    """A token's claims, unverified: what the test wants to see, not what it trusts."""
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def assert_aad_error(body: dict[str, Any], error: str, code: int) -> None:
    """The identity platform's error shape, as msal and the bot read it."""
    assert body["error"] == error
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert "Trace ID:" in body["error_description"]
    assert "Correlation ID:" in body["error_description"]
    assert body["error_codes"] == [code]
    assert {"timestamp", "trace_id", "correlation_id", "error_uri"} <= set(body)


def test_discovery_has_what_msal_needs(entra: EntraLab) -> None:
    d = entra.d
    with entra.http() as client:
        got = client.get(f"{d['authority']}/v2.0/.well-known/openid-configuration").json()
        assert got["token_endpoint"] == f"{d['authority']}/oauth2/v2.0/token"
        assert got["device_authorization_endpoint"] == f"{d['authority']}/oauth2/v2.0/devicecode"
        assert got["authorization_endpoint"].startswith(d["authority"])
        assert got["issuer"] == f"{d['authority']}/v2.0"
        keys = client.get(got["jwks_uri"]).json()["keys"]
        assert keys[0]["kty"] == "RSA"
        missing = client.get(f"{d['authority'].rsplit('/', 1)[0]}/no-such-tenant/v2.0/.well-known/openid-configuration")
        assert missing.status_code == 400
        assert_aad_error(missing.json(), "invalid_tenant", 90002)
    assert d["graph_base"].endswith("/v1.0")
    assert d["authority"].endswith("/" + d["tenant_id"])


def test_client_secret_token_is_cached_by_msal_and_verifies_against_jwks(entra: EntraLab) -> None:
    app = entra.confidential()
    first = app.acquire_token_for_client(scopes=GRAPH_DEFAULT)
    assert first["token_source"] == "identity_provider"
    assert first["expires_in"] > 300
    second = app.acquire_token_for_client(scopes=GRAPH_DEFAULT)
    assert second["token_source"] == "cache"
    token = first["access_token"]
    c = claims(token)
    assert c["aud"] == "https://graph.microsoft.com"
    assert c["tid"] == entra.d["tenant_id"]
    assert c["appid"] == entra.d["app"]["client_id"]
    assert c["idtyp"] == "app"
    assert "User.Read.All" in c["roles"]
    assert "scp" not in c
    # The signature verifies with the published key (as Graph's would).
    jwks = jwt.PyJWKClient(f"{entra.d['authority']}/discovery/v2.0/keys",
                           ssl_context=ssl.create_default_context(cafile=str(entra.ca_file)))
    key = jwks.get_signing_key_from_jwt(token)
    jwt.decode(token, key.key, algorithms=["RS256"], audience="https://graph.microsoft.com")


def test_certificate_credential_rs256_with_x5t(entra: EntraLab) -> None:
    app_d = entra.d["app"]
    app = entra.confidential({"private_key": app_d["private_key_pem"], "thumbprint": app_d["thumbprint"]})
    result = app.acquire_token_for_client(scopes=GRAPH_DEFAULT)
    assert "access_token" in result, result
    assert claims(result["access_token"])["appid"] == app_d["client_id"]


def test_certificate_credential_ps256_with_x5c(entra: EntraLab) -> None:
    app_d = entra.d["app"]
    app = entra.confidential({"private_key": app_d["private_key_pem"], "public_certificate": app_d["certificate_pem"]})
    result = app.acquire_token_for_client(scopes=GRAPH_DEFAULT)
    assert "access_token" in result, result


def _other_key_pem() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not the app")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def test_wrong_secret_unknown_key_and_wrong_scope_are_refused_in_microsofts_shape(entra: EntraLab) -> None:
    wrong = entra.confidential("not-the-secret").acquire_token_for_client(scopes=GRAPH_DEFAULT)
    assert wrong["error"] == "invalid_client"
    assert wrong["error_codes"] == [7000215]
    other_key, other_cert = _other_key_pem()
    # Signed by another key while naming the registered certificate's thumbprint.
    forged = entra.confidential({"private_key": other_key, "thumbprint": entra.d["app"]["thumbprint"]})
    assert forged.acquire_token_for_client(scopes=GRAPH_DEFAULT)["error_codes"] == [700027]
    # A certificate the app does not have.
    unknown = entra.confidential({"private_key": other_key, "public_certificate": other_cert})
    assert unknown.acquire_token_for_client(scopes=GRAPH_DEFAULT)["error_codes"] == [700027]
    bad_scope = entra.confidential().acquire_token_for_client(scopes=["https://graph.microsoft.com/User.Read.All"])
    assert bad_scope["error"] == "invalid_scope"
    assert bad_scope["error_codes"] == [1002012]


def test_device_code_flow_then_silent_and_refresh(entra: EntraLab) -> None:
    app = entra.public()
    flow = app.initiate_device_flow(scopes=AGENT_SCOPES)
    assert {"user_code", "device_code", "verification_uri", "expires_in", "interval", "message"} <= set(flow)
    assert flow["user_code"] in flow["message"]
    pending = entra.control("GET", "/device").json()
    assert any(f["user_code"] == flow["user_code"] and f["status"] == "pending" for f in pending)
    approved = entra.control("POST", "/device/approve", {"user_code": flow["user_code"], "upn": person("hedy").upn})
    assert approved.status_code == 200, approved.text
    result = app.acquire_token_by_device_flow(flow)
    assert "access_token" in result, result
    c = claims(result["access_token"])
    assert c["idtyp"] == "user"
    assert c["upn"] == person("hedy").upn
    assert c["oid"] == person("hedy").entra_id
    assert "UserAuthenticationMethod.ReadWrite.All" in c["scp"].split()
    assert "roles" not in c
    assert result["id_token_claims"]["preferred_username"] == person("hedy").upn
    accounts = app.get_accounts()
    assert [a["username"] for a in accounts] == [person("hedy").upn]
    silent = app.acquire_token_silent(AGENT_SCOPES, account=accounts[0])
    assert silent is not None
    assert silent["token_source"] == "cache"
    refreshed = app.acquire_token_silent(AGENT_SCOPES, account=accounts[0], force_refresh=True)
    assert refreshed is not None
    assert refreshed["token_source"] == "identity_provider", refreshed
    assert claims(refreshed["access_token"])["upn"] == person("hedy").upn
    logged = entra.control("GET", "/requests").json()
    assert any(r["kind"] == "token" and r["user"] == person("hedy").upn and r["status"] == 200 for r in logged)


def _poll(entra: EntraLab, client: httpx.Client, device_code: str) -> httpx.Response:
    return client.post(f"{entra.d['authority']}/oauth2/v2.0/token", data={
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "client_id": entra.d["public_client_id"],
        "device_code": device_code})


def _start(entra: EntraLab, client: httpx.Client) -> dict[str, Any]:
    got = client.post(f"{entra.d['authority']}/oauth2/v2.0/devicecode",
                      data={"client_id": entra.d["public_client_id"], "scope": "User.Read.All offline_access openid"})
    assert got.status_code == 200, got.text
    flow: dict[str, Any] = got.json()
    return flow


def test_device_code_polling_answers_pending_slow_down_declined_and_expired(entra: EntraLab) -> None:
    # Microsoft's interval, said here rather than assumed: a second poll at once is four seconds too soon.
    assert entra.control("POST", "/device/interval", {"interval": 5}).status_code == 200
    with entra.http() as client:
        flow = _start(entra, client)
        assert flow["interval"] == 5
        first = _poll(entra, client, flow["device_code"])
        assert first.status_code == 400
        assert_aad_error(first.json(), "authorization_pending", 70016)
        too_soon = _poll(entra, client, flow["device_code"])
        assert too_soon.status_code == 400
        assert too_soon.json()["error"] == "slow_down"
        assert entra.control("POST", "/device/decline", {"user_code": flow["user_code"]}).status_code == 200
        assert _poll(entra, client, flow["device_code"]).json()["error"] == "authorization_declined"

        flow = _start(entra, client)
        assert entra.control("POST", "/device/expire", {"user_code": flow["user_code"]}).status_code == 200
        assert_aad_error(_poll(entra, client, flow["device_code"]).json(), "expired_token", 70020)
        late = entra.control("POST", "/device/approve", {"user_code": flow["user_code"], "upn": person("hedy").upn})
        assert late.status_code == 409

        flow = _start(entra, client)
        disabled = entra.control("POST", "/device/approve", {"user_code": flow["user_code"],
                                                              "upn": person("dave").upn})
        assert disabled.status_code == 409
        assert entra.control("POST", "/device/approve", {"user_code": flow["user_code"],
                                                          "upn": person("hank").upn}).status_code == 200
        ok = _poll(entra, client, flow["device_code"])
        assert ok.status_code == 200
        body = ok.json()
        assert {"access_token", "refresh_token", "id_token", "scope", "expires_in"} <= set(body)
        again = _poll(entra, client, flow["device_code"])
        assert again.json()["error"] == "invalid_grant"


def test_a_shorter_interval_is_announced_kept_by_msal_and_still_enforced(entra: EntraLab) -> None:
    """The knob a test run uses (1 s): msal, which sleeps exactly the interval it is given, is never told to slow
    down, while a client that polls sooner than that still is."""
    assert entra.control("GET", "/device/interval").json() == {"interval": 5}  # the stand-in's start value
    with entra.http() as client:
        before = _start(entra, client)
        assert entra.control("POST", "/device/interval", {"interval": 1}).json() == {"interval": 1}
        hasty = _start(entra, client)
        assert hasty["interval"] == 1
        assert _poll(entra, client, hasty["device_code"]).json()["error"] == "authorization_pending"
        too_soon = _poll(entra, client, hasty["device_code"])
        assert_aad_error(too_soon.json(), "slow_down", 70032)
    flows = {f["user_code"]: f["interval"] for f in entra.control("GET", "/device").json()}
    assert flows[before["user_code"]] == 5, "a flow started before the change keeps the interval it was given"
    assert flows[hasty["user_code"]] == 6, "slow_down lengthens the flow's interval by 5 s"

    app = entra.public()
    flow = app.initiate_device_flow(scopes=AGENT_SCOPES)
    assert flow["interval"] == 1
    waits: list[int] = []

    def approve_after_the_first_poll(f: dict[str, Any]) -> bool:
        """msal asks this once per second of each wait: the first time, the person has just been asked."""
        waits.append(1)
        if len(waits) == 1:
            approved = entra.control("POST", "/device/approve", {"user_code": f["user_code"],
                                                                 "upn": person("hank").upn})
            assert approved.status_code == 200, approved.text
        return len(waits) > 3  # give up (and fail below) rather than poll on if the lab kept refusing msal's pace

    result = app.acquire_token_by_device_flow(flow, exit_condition=approve_after_the_first_poll)
    assert "access_token" in result, result
    assert len(waits) == 1, "msal polled twice: pending, then the token after one interval"

    for bad in (0, 61, "5", 1.5, True, None):
        refused = entra.control("POST", "/device/interval", {"interval": bad})
        assert refused.status_code == 400, bad
        assert "whole seconds from 1 to 60" in refused.json()["error"]
    assert entra.control("POST", "/reset").status_code == 200
    assert entra.control("GET", "/device/interval").json() == {"interval": 5}, "reset puts the start value back"


def test_client_info_is_returned_when_asked_for(entra: EntraLab) -> None:
    with entra.http() as client:
        flow = _start(entra, client)
        entra.control("POST", "/device/approve", {"user_code": flow["user_code"], "upn": person("gina").upn})
        got = client.post(f"{entra.d['authority']}/oauth2/v2.0/token", data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "client_id": entra.d["public_client_id"],
            "device_code": flow["device_code"], "client_info": "1"}).json()
    padded = got["client_info"] + "=" * (-len(got["client_info"]) % 4)
    info = json.loads(base64.urlsafe_b64decode(padded))
    assert info == {"uid": person("gina").entra_id, "utid": entra.d["tenant_id"]}

"""The bot's msal adapter against the lab's Entra stand-in over HTTPS: app tokens, device-code linking,
silent refresh from the encrypted cache, and each failure as the bot.errors exception an operator reads."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import jwt
import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from bot.clients.entra_auth import (
    AppTokens,
    CertificateCredential,
    DelegatedTokens,
    LinkedAccount,
    instance_discovery_for,
    sign_in_tenant_problem,
)
from bot.errors import (
    ConfigError,
    DeviceFlowDeclinedError,
    DeviceFlowExpiredError,
    EntraAuthError,
    EntraReauthRequiredError,
    EntraUnavailableError,
)
from lab.people import person

if TYPE_CHECKING:  # imported by pytest_plugins below, so that pytest rewrites its asserts
    from tests.clients.graphlab import EntraControl

pytest_plugins = ("tests.clients.graphlab",)


pytestmark = pytest.mark.usefixtures("clean_entra")


def claims(token: str) -> dict[str, object]:
    decoded: dict[str, object] = jwt.decode(token, options={"verify_signature": False})
    return decoded


# --- app-only ---------------------------------------------------------------------------------------------------
def test_instance_discovery_only_for_the_public_cloud() -> None:
    assert instance_discovery_for("https://login.microsoftonline.com/contoso.onmicrosoft.com")
    assert instance_discovery_for("https://LOGIN.microsoftonline.com/x")
    assert not instance_discovery_for("https://127.0.0.1:8443/tenant")
    assert not instance_discovery_for("https://login.microsoftonline.us/tenant")


def test_app_token_with_a_secret_is_cached(entra_control: EntraControl) -> None:
    tokens = entra_control.app_tokens()
    first, second = tokens.token(), tokens.token()
    assert first == second
    c = claims(first)
    assert c["idtyp"] == "app"
    assert c["appid"] == entra_control.d["app"]["client_id"]
    assert len([r for r in entra_control.requests("token") if r["status"] == 200]) == 1, "msal answers from cache"
    assert entra_control.d["app"]["client_secret"] not in repr(tokens)


def test_app_token_with_a_certificate_by_thumbprint_and_with_x5c(entra_control: EntraControl,
                                                                   tmp_path: Path) -> None:
    app = entra_control.d["app"]
    by_thumbprint = CertificateCredential.from_pem(app["certificate_pem"], app["private_key_pem"])
    assert by_thumbprint.thumbprint == app["thumbprint"].upper()
    assert app["private_key_pem"] not in repr(by_thumbprint)
    tokens = AppTokens(authority=entra_control.d["authority"], client_id=app["client_id"],
                       certificate=by_thumbprint, ca_file=entra_control.d["ca_file"])
    assert claims(tokens.token())["appid"] == app["client_id"]
    assert "credential=certificate" in repr(tokens)

    (tmp_path / "app.crt").write_text(app["certificate_pem"])
    (tmp_path / "app.key").write_text(app["private_key_pem"])
    x5c = CertificateCredential.from_files(tmp_path / "app.crt", tmp_path / "app.key", send_x5c=True)
    tokens = AppTokens(authority=entra_control.d["authority"], client_id=app["client_id"], certificate=x5c,
                       ca_file=entra_control.d["ca_file"])
    assert claims(tokens.token())["appid"] == app["client_id"]


def test_certificate_settings_are_checked_before_anything_connects(entra_control: EntraControl,
                                                                   tmp_path: Path) -> None:
    app = entra_control.d["app"]
    with pytest.raises(ConfigError, match="RESETBOT_ENTRA_CERTIFICATE_FILE does not hold"):
        CertificateCredential.from_pem("not a certificate", app["private_key_pem"])
    with pytest.raises(ConfigError, match="RESETBOT_ENTRA_PRIVATE_KEY_FILE does not hold"):
        CertificateCredential.from_pem(app["certificate_pem"], "not a key")
    (tmp_path / "app.crt").write_text(app["certificate_pem"])
    (tmp_path / "other.key").write_text(_other_key())
    with pytest.raises(ConfigError, match="is not the key of the certificate"):
        CertificateCredential.from_files(tmp_path / "app.crt", tmp_path / "other.key")
    with pytest.raises(ConfigError, match="cannot be read"):
        CertificateCredential.from_files(tmp_path / "missing.crt")
    with pytest.raises(ConfigError, match="Set exactly one"):
        AppTokens(authority=entra_control.d["authority"], client_id=app["client_id"])


def _other_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def test_a_wrong_secret_is_an_auth_error_naming_the_setting(entra_control: EntraControl,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "not-the-secret-" + Fernet.generate_key().decode()[:12]
    tokens = entra_control.app_tokens(secret=wrong)
    with pytest.raises(EntraAuthError, match="RESETBOT_ENTRA_CLIENT_SECRET") as err:
        tokens.token()
    assert err.value.code == "AADSTS7000215"
    assert err.value.request_id, "the token endpoint's correlation id, for support"
    assert str(err.value).count(".") >= 1 and "\n" not in str(err.value)
    assert not entra_control.leaks(wrong, caplog.records, err.value, tokens)
    assert any(r.name.startswith("msal") for r in caplog.records), "msal's own DEBUG logs were scanned too"


def test_an_unknown_tenant_names_the_authority_setting(entra_control: EntraControl) -> None:
    base = entra_control.d["authority"].rsplit("/", 1)[0]
    tokens = AppTokens(authority=f"{base}/no-such-tenant", client_id=entra_control.d["app"]["client_id"],
                       client_secret=SecretStr("x"), ca_file=entra_control.d["ca_file"])
    with pytest.raises(EntraAuthError, match="RESETBOT_ENTRA_AUTHORITY"):
        tokens.token()
    with pytest.raises(ConfigError, match="must be an https URL"):
        AppTokens(authority="http://login.example/tenant", client_id="x", client_secret=SecretStr("x"))


def test_token_endpoint_down_is_unavailable_and_the_same_client_recovers(entra_control: EntraControl) -> None:
    tokens = entra_control.app_tokens()
    entra_control.faults(token_endpoint_down=True, retry_after=1)
    with pytest.raises(EntraUnavailableError, match="HTTP 503") as err:
        tokens.token()
    assert err.value.status == 503
    entra_control.faults(token_endpoint_down=False)
    # msal remembers a 5xx for Retry-After seconds (integer seconds): honour it, then the same object works.
    time.sleep(1.1)
    assert tokens.token()


def test_an_unreachable_authority_is_unavailable(entra_control: EntraControl) -> None:
    tokens = AppTokens(authority="https://127.0.0.1:1/tenant", client_id="x", client_secret=SecretStr("s"),
                       ca_file=entra_control.d["ca_file"], timeout=5)
    with pytest.raises(EntraUnavailableError, match="could not be reached"):
        tokens.token()


# --- delegated: device-code linking ----------------------------------------------------------------------------
def test_device_code_sign_in_links_hank_then_tokens_come_silently(
    entra_control: EntraControl, agent_tokens: DelegatedTokens, cache_key: SecretStr,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    flow = agent_tokens.start_device_flow()
    assert len(flow.user_code) == 9 and flow.user_code in flow.message
    assert flow.verification_uri
    assert "device_code" not in repr(flow) and flow._msal_flow["device_code"] not in repr(flow)
    thread, out = entra_control.run_in_thread(lambda: agent_tokens.wait_for_device_flow(flow, timeout=60))
    # The bot is blocked polling (authorization_pending) until hank approves, as on Microsoft's page.
    deadline = time.monotonic() + 10
    while not any(r["kind"] == "token" and r["status"] == 400 for r in entra_control.requests()):
        assert time.monotonic() < deadline, "the bot never polled"
        time.sleep(0.05)
    assert thread.is_alive()
    entra_control.approve(flow.user_code, "hank")
    thread.join(30)
    assert not thread.is_alive()
    assert "error" not in out, out
    link: LinkedAccount = out["result"]
    hank = person("hank")
    assert (link.upn, link.oid) == (hank.upn, hank.entra_id)
    assert link.home_account_id.startswith(hank.entra_id)
    assert link.encrypted_cache not in repr(link)
    # The cache is stored encrypted: nothing readable in it without the key.
    plain = json.loads(Fernet(cache_key.get_secret_value().encode()).decrypt(link.encrypted_cache.encode()))
    assert plain["RefreshToken"] and plain["AccessToken"]
    assert "RefreshToken" not in link.encrypted_cache

    token = agent_tokens.token_for(link)
    c = claims(token.access_token)
    assert c["upn"] == hank.upn and c["idtyp"] == "user"
    assert "UserAuthenticationMethod.ReadWrite.All" in str(c["scp"]).split()
    assert token.encrypted_cache == link.encrypted_cache, "served from the cache: nothing to store again"
    assert token.access_token not in repr(token)
    again = agent_tokens.token_for((link.encrypted_cache, link.home_account_id))
    assert again.access_token == token.access_token

    refresh_token = next(iter(plain["RefreshToken"].values()))["secret"]
    for secret in (token.access_token, refresh_token):
        assert not entra_control.leaks(secret, caplog.records, link, flow, agent_tokens)


def _expire_access_tokens(link: LinkedAccount, key: SecretStr, *, drop_refresh: bool = False,
                          bad_refresh: bool = False) -> LinkedAccount:
    """The same link with its cached access token expired (so msal must refresh), optionally with the
    refresh token removed or replaced by one Entra never issued."""
    fernet = Fernet(key.get_secret_value().encode())
    cache = json.loads(fernet.decrypt(link.encrypted_cache.encode()))
    for entry in cache["AccessToken"].values():
        entry["expires_on"] = entry["extended_expires_on"] = str(int(time.time()) - 60)
    if drop_refresh:
        cache["RefreshToken"] = {}
    if bad_refresh:
        for entry in cache["RefreshToken"].values():
            entry["secret"] = "revoked-" + entry["secret"][:8]
    return LinkedAccount(upn=link.upn, oid=link.oid, home_account_id=link.home_account_id,
                         encrypted_cache=fernet.encrypt(json.dumps(cache).encode()).decode())


def test_an_expired_access_token_is_refreshed_and_the_new_cache_returned(
    entra_control: EntraControl, agent_tokens: DelegatedTokens, linked_hank: LinkedAccount, cache_key: SecretStr,
) -> None:
    stale = _expire_access_tokens(linked_hank, cache_key)
    fresh = agent_tokens.token_for(stale)
    assert claims(fresh.access_token)["upn"] == person("hank").upn
    assert fresh.encrypted_cache != stale.encrypted_cache, "the rotated refresh token must be stored"
    refreshes = [r for r in entra_control.requests("token") if r["status"] == 200]
    assert len(refreshes) == 1 and refreshes[0]["user"] == person("hank").upn
    # The new cache works on its own, from the cache this time.
    relinked = LinkedAccount(upn=stale.upn, oid=stale.oid, home_account_id=stale.home_account_id,
                             encrypted_cache=fresh.encrypted_cache)
    assert agent_tokens.token_for(relinked).access_token == fresh.access_token


@pytest.mark.parametrize("how", ["no refresh token", "revoked refresh token"])
def test_a_gone_or_revoked_refresh_token_needs_a_new_sign_in(
    agent_tokens: DelegatedTokens, linked_hank: LinkedAccount, cache_key: SecretStr, how: str,
) -> None:
    stale = _expire_access_tokens(linked_hank, cache_key, drop_refresh=how == "no refresh token",
                                  bad_refresh=how == "revoked refresh token")
    with pytest.raises(EntraReauthRequiredError, match="link their account again") as err:
        agent_tokens.token_for(stale)
    if how == "revoked refresh token":
        assert err.value.code == "AADSTS9002313"


def test_a_cache_that_is_not_this_agents_or_not_readable_needs_a_new_sign_in(
    entra_control: EntraControl, agent_tokens: DelegatedTokens, linked_hank: LinkedAccount,
) -> None:
    with pytest.raises(EntraReauthRequiredError, match="holds no usable account"):
        agent_tokens.token_for((linked_hank.encrypted_cache, "someone-else.tenant"))
    with pytest.raises(EntraReauthRequiredError, match="does not belong to"):
        agent_tokens.token_for(LinkedAccount(upn=person("hedy").upn, oid="x", home_account_id=linked_hank.
                                             home_account_id, encrypted_cache=linked_hank.encrypted_cache))
    other_key = entra_control.delegated(SecretStr(Fernet.generate_key().decode()))
    with pytest.raises(EntraReauthRequiredError, match="could not be decrypted"):
        other_key.token_for(linked_hank)
    with pytest.raises(ConfigError, match="Fernet key"):
        entra_control.delegated(SecretStr("not a key"))


def test_the_key_can_be_rotated(entra_control: EntraControl, linked_hank: LinkedAccount,
                                cache_key: SecretStr) -> None:
    new_key = SecretStr(Fernet.generate_key().decode())
    rotated = DelegatedTokens(authority=entra_control.d["authority"], client_id=entra_control.d["public_client_id"],
                              key=new_key, old_keys=[cache_key], ca_file=entra_control.d["ca_file"])
    stale = _expire_access_tokens(linked_hank, cache_key)
    fresh = rotated.token_for(stale)
    Fernet(new_key.get_secret_value().encode()).decrypt(fresh.encrypted_cache.encode())  # written under the new key


def test_token_endpoint_down_during_a_refresh_is_unavailable(
    entra_control: EntraControl, agent_tokens: DelegatedTokens, linked_hank: LinkedAccount, cache_key: SecretStr,
) -> None:
    stale = _expire_access_tokens(linked_hank, cache_key)
    entra_control.faults(token_endpoint_down=True)
    with pytest.raises(EntraUnavailableError):
        agent_tokens.token_for(stale)


@pytest.mark.parametrize("outcome", ["decline", "expire"])
def test_a_declined_or_expired_sign_in_says_so(entra_control: EntraControl, agent_tokens: DelegatedTokens,
                                               outcome: str) -> None:
    flow = agent_tokens.start_device_flow()
    entra_control.call("POST", f"/device/{outcome}", {"user_code": flow.user_code})
    expected = DeviceFlowDeclinedError if outcome == "decline" else DeviceFlowExpiredError
    with pytest.raises(expected) as err:
        agent_tokens.wait_for_device_flow(flow, timeout=30)
    assert err.value.reason == ("declined" if outcome == "decline" else "expired")
    assert "\n" not in str(err.value)


def test_nobody_signing_in_before_the_timeout_is_a_timeout(agent_tokens: DelegatedTokens) -> None:
    flow = agent_tokens.start_device_flow()
    with pytest.raises(DeviceFlowExpiredError, match="in time") as err:
        agent_tokens.wait_for_device_flow(flow, timeout=0.5)
    assert err.value.reason == "timeout"


def test_a_device_flow_while_entra_is_down_is_unavailable(entra_control: EntraControl,
                                                          agent_tokens: DelegatedTokens) -> None:
    entra_control.faults(token_endpoint_down=True)
    with pytest.raises(EntraUnavailableError):
        agent_tokens.start_device_flow()


@pytest.mark.parametrize(("claims_", "problem"), [
    ({"tid": "8f1c2f4e-0000-4000-8000-000000000001"}, None),
    ({"tid": "8F1C2F4E-0000-4000-8000-000000000001"}, None),
    ({"tid": "0badc0de-0000-4000-8000-000000000002"}, "0badc0de-0000-4000-8000-000000000002"),
    ({}, "no tenant"),
])
def test_a_sign_in_counts_only_in_the_configured_tenant(claims_: dict[str, str], problem: str | None) -> None:
    """Issue 14, item 11: the id token's ``tid`` must be the authority's tenant (as Entra's discovery names it),
    or the sign-in links nothing: defence in depth behind refusing multi-tenant authorities at start."""
    found = sign_in_tenant_problem(claims_, "8f1c2f4e-0000-4000-8000-000000000001")
    assert (found is None) if problem is None else (found is not None and problem in found)

"""The browser sign-in through the bot's msal adapter against the lab's Entra: msal's auth-code flow with PKCE and
``form_post``, the lab's sign-in page (the password checked against the lab AD), and each refusal Entra makes
(a wrong PKCE verifier, a reused code, an unregistered redirect URI, a replayed id token's nonce) as the bot reads
it. Also the device-code flow refused by Conditional Access (``device_code_blocked``)."""

from __future__ import annotations

import json
import logging
import ssl
from typing import TYPE_CHECKING

import httpx
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from bot.clients.entra_auth import DelegatedTokens
from bot.errors import DeviceFlowError, SignInBlockedError
from bot.logs import RedactingFilter
from lab.people import person

if TYPE_CHECKING:  # imported by pytest_plugins below, so that pytest rewrites its asserts
    from tests.clients.graphlab import EntraControl

pytest_plugins = ("tests.clients.graphlab",)

pytestmark = pytest.mark.usefixtures("clean_entra")

REDIRECT = "https://127.0.0.1:9/auth/callback"  # never reached: the test reads the form Entra would post there
@pytest.fixture
def registered(entra_control: EntraControl) -> str:
    entra_control.call("POST", "/redirect_uris", {"redirect_uri": REDIRECT})
    return REDIRECT


def test_browser_sign_in_links_hank_with_pkce_and_leaks_nothing(
    entra_control: EntraControl, agent_tokens: DelegatedTokens, cache_key: SecretStr, registered: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    flow = agent_tokens.start_browser_flow(registered, login_hint=person("hank").upn)
    msal_flow = json.loads(Fernet(cache_key.get_secret_value().encode()).decrypt(flow.encrypted_flow.encode()))
    assert msal_flow["code_verifier"] not in flow.encrypted_flow and flow.state not in repr(flow)
    params = httpx.URL(flow.auth_uri).params
    assert params["code_challenge_method"] == "S256" and params["prompt"] == "login"
    assert params["state"] == flow.state and params["response_mode"] == "form_post"
    _, posted = entra_control.browser_sign_in(flow.auth_uri, person("hank").upn, person("hank").password)
    assert posted["state"] == flow.state and posted["code"]
    link = agent_tokens.finish_browser_flow(flow.encrypted_flow, posted)
    assert (link.upn, link.oid) == (person("hank").upn, person("hank").entra_id)
    assert agent_tokens.token_for(link).access_token, "the browser-linked account gets tokens silently"
    # msal logs the token request at DEBUG; what a log handler writes has passed resetbot's redaction (every root
    # handler gets it: bot.logs.configure), so that is what is scanned.
    redaction = RedactingFilter()
    records = [r for r in caplog.records if redaction.filter(r)]
    for secret in (posted["code"], msal_flow["code_verifier"]):
        assert not entra_control.leaks(secret, records, link, flow, agent_tokens)

    with pytest.raises(DeviceFlowError) as reused:  # the same code again: Entra redeems a code once
        agent_tokens.finish_browser_flow(flow.encrypted_flow, posted)
    assert reused.value.code == "AADSTS54005" and reused.value.reason == "invalid_grant"


def test_the_token_endpoint_checks_the_pkce_verifier(entra_control: EntraControl, agent_tokens: DelegatedTokens,
                                                     cache_key: SecretStr, registered: str) -> None:
    """Someone who intercepted the code (not the verifier, which never left the bot) cannot redeem it."""
    flow = agent_tokens.start_browser_flow(registered)
    _, posted = entra_control.browser_sign_in(flow.auth_uri, person("hank").upn, person("hank").password)
    with httpx.Client(verify=ssl.create_default_context(cafile=entra_control.d["ca_file"]), trust_env=False) as c:
        answer = c.post(entra_control.d["authority"] + "/oauth2/v2.0/token", data={
            "grant_type": "authorization_code", "client_id": entra_control.d["public_client_id"],
            "code": posted["code"], "redirect_uri": registered, "code_verifier": "x" * 43})
    assert answer.status_code == 400 and answer.json()["error_codes"] == [501481]
    assert agent_tokens.finish_browser_flow(flow.encrypted_flow, posted).upn == person("hank").upn


def test_an_id_token_for_another_sign_in_is_refused(entra_control: EntraControl, agent_tokens: DelegatedTokens,
                                                    cache_key: SecretStr, registered: str) -> None:
    """The flow's nonce must come back in the id token: an answer made for another attempt links nothing."""
    fernet = Fernet(cache_key.get_secret_value().encode())
    flow = agent_tokens.start_browser_flow(registered)
    _, posted = entra_control.browser_sign_in(flow.auth_uri, person("hank").upn, person("hank").password)
    msal_flow = json.loads(fernet.decrypt(flow.encrypted_flow.encode()))
    msal_flow["nonce"] = "another-attempts-nonce"
    with pytest.raises(DeviceFlowError) as err:
        agent_tokens.finish_browser_flow(fernet.encrypt(json.dumps(msal_flow).encode()).decode(), posted)
    assert err.value.reason == "nonce_mismatch"


def test_entra_refuses_an_unregistered_redirect_uri_and_a_wrong_password(
    entra_control: EntraControl, agent_tokens: DelegatedTokens, registered: str,
) -> None:
    flow = agent_tokens.start_browser_flow("https://attacker.example/auth/callback")
    page, posted = entra_control.browser_sign_in(flow.auth_uri, person("hank").upn, person("hank").password)
    assert "AADSTS50011" in page and not posted
    flow = agent_tokens.start_browser_flow(registered)
    page, posted = entra_control.browser_sign_in(flow.auth_uri, person("hank").upn, "Wrong-Password-1")
    assert "AADSTS50126" in page and not posted


def test_a_declined_browser_sign_in_is_declined(agent_tokens: DelegatedTokens, registered: str) -> None:
    flow = agent_tokens.start_browser_flow(registered)
    with pytest.raises(DeviceFlowError) as err:
        agent_tokens.finish_browser_flow(flow.encrypted_flow, {"state": flow.state, "error": "access_denied",
                                                               "error_description": "the user cancelled"})
    assert err.value.reason == "declined"


def test_conditional_access_blocking_device_code_is_said_as_such(entra_control: EntraControl,
                                                                  agent_tokens: DelegatedTokens) -> None:
    entra_control.faults(device_code_blocked=True)
    flow = agent_tokens.start_device_flow()
    entra_control.approve(flow.user_code, "hank")
    with pytest.raises(SignInBlockedError) as err:
        agent_tokens.wait_for_device_flow(flow, timeout=30)
    assert err.value.code == "AADSTS53003" and err.value.reason == "blocked_by_policy"

"""Linking's pure parts: whose account a sign-in is, the settings it needs, and the sentences agents see."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot import messages
from bot.errors import ConfigError
from bot.services.links import AgentToken, LinkRules, owns_account
from bot.settings import FERNET_KEY_HOWTO, ResetIdentity, load_settings

SLACK = {"slack_bot_token": "xoxb-1-real", "slack_app_token": "xapp-1-real"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("RESETBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env


@pytest.mark.parametrize(("email", "upn", "mail", "owns"), [
    ("hank@corp.example.com", "hank@corp.example.com", None, True),
    ("Hank@Corp.Example.com", "hank@corp.example.COM", None, True),
    ("hank.hughes@example.com", "hank@corp.example.com", "Hank.Hughes@example.com", True),
    ("hank@corp.example.com", "alice@corp.example.com", "alice@corp.example.com", False),
    ("hank@corp.example.com", "alice@corp.example.com", None, False),
    (None, "hank@corp.example.com", "hank@corp.example.com", False),
    ("", "", "", False),
    (" ", "hank@corp.example.com", None, False),
])
def test_an_account_is_the_agents_own_only_when_their_slack_email_is_its_upn_or_mail(
        email: str | None, upn: str, mail: str | None, owns: bool) -> None:
    assert owns_account(email, upn=upn, mail=mail) is owns


def test_linking_settings_default_to_each_agents_own_account() -> None:
    key = Fernet.generate_key().decode()
    settings = load_settings(**SLACK, entra_public_client_id="11111111-2222", token_cache_key=key)
    assert settings.reset_identity == ResetIdentity.AGENT
    assert settings.require_linking() == []
    assert key not in repr(settings)
    rules = LinkRules.from_settings(settings)
    assert not rules.service_mode and rules.agents_group == "helpdesk"


def test_serving_without_linking_settings_says_what_is_missing_and_how_to_make_a_key() -> None:
    missing = " ".join(load_settings(**SLACK).require_linking())
    assert "RESETBOT_ENTRA_PUBLIC_CLIENT_ID is not set" in missing
    assert "RESETBOT_TOKEN_CACHE_KEY is not set" in missing and FERNET_KEY_HOWTO in missing


@pytest.mark.parametrize("bad", ["not-a-fernet-key", "changeme", "c2hvcnQ="])
def test_a_bad_token_cache_key_fails_fast_without_being_echoed(bad: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESETBOT_TOKEN_CACHE_KEY", bad)
    with pytest.raises(ConfigError) as err:
        load_settings(**SLACK)
    text = str(err.value)
    assert text.startswith("RESETBOT_TOKEN_CACHE_KEY ")
    assert 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"' in text
    assert bad not in text.replace("placeholder", "")


def test_old_keys_are_read_from_a_list_and_checked_too(monkeypatch: pytest.MonkeyPatch) -> None:
    old = [Fernet.generate_key().decode() for _ in range(2)]
    monkeypatch.setenv("RESETBOT_TOKEN_CACHE_OLD_KEYS", ",".join(old))
    settings = load_settings(**SLACK)
    assert [k.get_secret_value() for k in settings.token_cache_old_keys] == old
    monkeypatch.setenv("RESETBOT_TOKEN_CACHE_OLD_KEYS", f"{old[0]},nope,also-nope")
    with pytest.raises(ConfigError, match="RESETBOT_TOKEN_CACHE_OLD_KEYS is not a Fernet key") as err:
        load_settings(**SLACK)
    assert str(err.value).count("RESETBOT_TOKEN_CACHE_OLD_KEYS") == 1


def test_service_mode_needs_the_service_identitys_upn() -> None:
    with pytest.raises(ConfigError, match="RESETBOT_SERVICE_IDENTITY_UPN"):
        load_settings(**SLACK, reset_identity="service")
    settings = load_settings(**SLACK, reset_identity="service", service_identity_upn=" svc-reset@corp.example.com ")
    rules = LinkRules.from_settings(settings)
    assert rules.service_mode and rules.service_upn == "svc-reset@corp.example.com"


def test_an_agent_token_never_shows_the_token() -> None:
    token = AgentToken("eyJ.secret.sig", "hank@corp.example.com", "oid-1")
    assert "eyJ" not in repr(token) and "eyJ" not in str(token)


def test_a_role_too_weak_names_what_blocks_and_what_would_do() -> None:
    sentence = messages.links.role_too_weak("hank@corp.example.com", ["Helpdesk Administrator"],
                                            ["Global Administrator", "Authentication Administrator"],
                                            ["Privileged Authentication Administrator", "Global Administrator"],
                                            service=False)
    assert sentence == ("Your Entra account hank@corp.example.com (Helpdesk Administrator) can't reset the password "
                        "of someone who holds Global Administrator and Authentication Administrator: that takes "
                        "Privileged Authentication Administrator or Global Administrator.")
    nothing = messages.links.role_too_weak("svc@x.com", [], [], ["Password Administrator", "Global Administrator"],
                                           service=True)
    assert nothing.startswith("The service identity svc@x.com (no Entra role that may reset passwords) can't reset "
                              "the password of anyone")


def test_a_blocked_code_points_at_the_browser_only_where_it_is_allowed() -> None:
    allowed = messages.links.device_code_blocked(browser_allowed=True, service=True)
    assert allowed.endswith("Run `/resetbot login --service --browser` to sign in in your browser instead.")
    off = messages.links.device_code_blocked(browser_allowed=False, service=False)
    assert "turn on browser sign-in (RESETBOT_SIGNIN=both)" in off and "Conditional Access" in off


def test_browser_sign_in_needs_its_redirect_uri_to_be_allowed() -> None:
    key = Fernet.generate_key().decode()
    base = {**SLACK, "entra_public_client_id": "11111111-2222", "token_cache_key": key}
    assert not LinkRules.from_settings(load_settings(**base)).browser_allowed
    settings = load_settings(**base, signin="both", public_url="https://resetbot.corp.example",
                             callback_cert_file="/etc/resetbot/cb.pem", callback_key_file="/etc/resetbot/cb.key")
    rules = LinkRules.from_settings(settings)
    assert rules.browser_allowed and rules.redirect_uri == "https://resetbot.corp.example/auth/callback"


@pytest.mark.parametrize("kind", ["done", "stale", "invalid", "unavailable"])
def test_the_callback_page_is_plain_and_names_only_its_reference(kind: str) -> None:
    page = messages.links.callback_html(kind, "c-0123456789")
    assert page.startswith("<!doctype html>") and "(reference c-0123456789)" in page
    assert "<script" not in page and "`" not in page

"""Settings fail fast, one sentence per missing or placeholder value, and never echo a secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from bot.errors import ConfigError
from bot.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("RESETBOT_SLACK_BOT_TOKEN", "RESETBOT_SLACK_APP_TOKEN", "RESETBOT_SLACK_API_BASE",
                 "RESETBOT_SLACK_MODE", "RESETBOT_SLACK_SIGNING_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env; each test's own working folder


def test_missing_tokens_are_named_one_sentence_each() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings()
    text = str(err.value)
    assert "RESETBOT_SLACK_BOT_TOKEN is not set." in text
    assert "RESETBOT_SLACK_APP_TOKEN is not set." in text


def test_placeholders_and_wrong_token_kinds_are_refused_without_echoing_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESETBOT_SLACK_BOT_TOKEN", "xoxb-your-token-here")
    monkeypatch.setenv("RESETBOT_SLACK_APP_TOKEN", "xoxb-secret-in-the-wrong-place")
    with pytest.raises(ConfigError) as err:
        load_settings()
    text = str(err.value)
    assert "RESETBOT_SLACK_BOT_TOKEN must be the app's bot token" in text
    assert "RESETBOT_SLACK_APP_TOKEN must be an app-level token" in text
    assert "secret-in-the-wrong-place" not in text


def test_good_settings_keep_tokens_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESETBOT_SLACK_BOT_TOKEN", "xoxb-1-real")
    monkeypatch.setenv("RESETBOT_SLACK_APP_TOKEN", "xapp-1-real")
    settings = load_settings()
    assert settings.slack_bot_token.get_secret_value() == "xoxb-1-real"
    assert "xoxb-1-real" not in repr(settings)


def test_env_file_is_read() -> None:
    Path(".env").write_text("RESETBOT_SLACK_BOT_TOKEN=xoxb-from-file\nRESETBOT_SLACK_APP_TOKEN=xapp-from-file\n")
    token = load_settings().slack_app_token
    assert token is not None and token.get_secret_value() == "xapp-from-file"


def test_http_mode_needs_the_signing_secret_and_not_the_app_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESETBOT_SLACK_BOT_TOKEN", "xoxb-1-real")
    monkeypatch.setenv("RESETBOT_SLACK_MODE", "http")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert str(err.value) == (
        "RESETBOT_SLACK_MODE=http needs RESETBOT_SLACK_SIGNING_SECRET: the app's signing secret (Basic Information, "
        "App Credentials), which every request from Slack is verified with.")
    monkeypatch.setenv("RESETBOT_SLACK_SIGNING_SECRET", "changeme")
    with pytest.raises(ConfigError, match="needs RESETBOT_SLACK_SIGNING_SECRET") as placeholder:
        load_settings()
    assert "changeme" not in str(placeholder.value)
    monkeypatch.setenv("RESETBOT_SLACK_SIGNING_SECRET", "8f742231b10e8888abcd99yyyzzz85a5")
    settings = load_settings()
    assert settings.slack_app_token is None
    assert "8f742231b10e" not in repr(settings)


def test_an_unknown_mode_and_a_bad_port_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESETBOT_SLACK_BOT_TOKEN", "xoxb-1-real")
    monkeypatch.setenv("RESETBOT_SLACK_APP_TOKEN", "xapp-1-real")
    monkeypatch.setenv("RESETBOT_SLACK_MODE", "webhook")
    monkeypatch.setenv("RESETBOT_HTTP_PORT", "70000")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "RESETBOT_SLACK_MODE: Input should be 'socket' or 'http'." in str(err.value)
    assert "RESETBOT_HTTP_PORT" in str(err.value)


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    undocumented = [name for name in Settings.model_fields if f"`RESETBOT_{name.upper()}`" not in readme]
    assert not undocumented, f"document these in the README's settings table: {undocumented}"


def test_follow_up_times_are_read_as_an_operator_writes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESETBOT_SLACK_BOT_TOKEN", "xoxb-1-real")
    monkeypatch.setenv("RESETBOT_SLACK_APP_TOKEN", "xapp-1-real")
    monkeypatch.setenv("RESETBOT_FOLLOWUP_REPLACED_AFTER", "24h, 90m,1d, 1200")
    monkeypatch.setenv("RESETBOT_FOLLOWUP_LANDED_FIRST", "30")
    settings = load_settings()
    assert [d.total_seconds() for d in settings.followup_replaced_after] == [1200, 5400, 86400]
    assert settings.followup_landed_first.total_seconds() == 30
    assert settings.followup_landed_deadline.total_seconds() == 900


@pytest.mark.parametrize(("name", "value", "sentence"), [
    ("RESETBOT_FOLLOWUP_REPLACED_AFTER", "soon", "RESETBOT_FOLLOWUP_REPLACED_AFTER: 'soon' is not a duration; "
                                                 "write it like 90s, 15m, 4h or 1d."),
    ("RESETBOT_FOLLOWUP_REPLACED_AFTER", " , ", "RESETBOT_FOLLOWUP_REPLACED_AFTER needs at least one time"),
    ("RESETBOT_FOLLOWUP_LANDED_DEADLINE", "0m", "RESETBOT_FOLLOWUP_LANDED_DEADLINE must be longer than zero."),
    ("RESETBOT_FOLLOWUP_LANDED_FIRST", "-5s", "RESETBOT_FOLLOWUP_LANDED_FIRST: '-5s' is not a duration"),
    ("RESETBOT_FOLLOWUP_LANDED_FIRST", "20m", "RESETBOT_FOLLOWUP_LANDED_FIRST must not be later than"),
    ("RESETBOT_FOLLOWUP_LANDED_DEADLINE", "2h", "RESETBOT_FOLLOWUP_LANDED_DEADLINE must be earlier than the first"),
])
def test_bad_follow_up_times_are_one_sentence_each(monkeypatch: pytest.MonkeyPatch, name: str, value: str,
                                                   sentence: str) -> None:
    monkeypatch.setenv("RESETBOT_SLACK_BOT_TOKEN", "xoxb-1-real")
    monkeypatch.setenv("RESETBOT_SLACK_APP_TOKEN", "xapp-1-real")
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert sentence in str(err.value)


def test_protected_groups_default_to_every_group_adminsdholder_guards_and_the_dc_groups() -> None:
    """Key Admins and Enterprise Key Admins may write any account's Windows Hello keys, Replicator and the domain
    controllers' groups replicate secrets: their members are protected whatever else they hold."""
    settings = Settings(_env_file=None, slack_bot_token=SecretStr("xoxb-1-real"),  # type: ignore[call-arg]
                        slack_app_token=SecretStr("xapp-1-real"), ldap_base_dn="DC=corp,DC=example,DC=test")
    base = ",DC=corp,DC=example,DC=test"
    assert {f"CN=Key Admins,CN=Users{base}", f"CN=Enterprise Key Admins,CN=Users{base}",
            f"CN=Replicator,CN=Builtin{base}", f"CN=Domain Controllers,CN=Users{base}",
            f"CN=Read-only Domain Controllers,CN=Users{base}",
            f"CN=Enterprise Read-only Domain Controllers,CN=Users{base}",
            f"CN=Domain Admins,CN=Users{base}"} <= set(settings.protected_group_dns())


@pytest.mark.parametrize(("database_url", "key", "said"), [
    ("sqlite:///resetbot.db", None, ""),
    ("postgresql://resetbot@db.example.com/resetbot", None, "RESETBOT_SEALING_KEY is not set, and the database is "
                                                            "PostgreSQL, where several replicas may serve"),
    ("postgresql+psycopg://resetbot@db.example.com/resetbot", None, "RESETBOT_SEALING_KEY is not set"),
    ("postgres://resetbot@db.example.com/resetbot", "not-a-key", "RESETBOT_SEALING_KEY is not a Fernet key"),
    ("sqlite:///resetbot.db", "changeme", "RESETBOT_SEALING_KEY still holds a placeholder"),
    ("postgresql://resetbot@db.example.com/resetbot", Fernet.generate_key().decode(), ""),
])
def test_replicas_on_postgresql_need_one_shared_sealing_key(monkeypatch: pytest.MonkeyPatch, database_url: str,
                                                           key: str | None, said: str) -> None:
    monkeypatch.setenv("RESETBOT_SLACK_BOT_TOKEN", "xoxb-1-real")
    monkeypatch.setenv("RESETBOT_SLACK_APP_TOKEN", "xapp-1-real")
    monkeypatch.setenv("RESETBOT_DATABASE_URL", database_url)
    if key is not None:
        monkeypatch.setenv("RESETBOT_SEALING_KEY", key)
    else:
        monkeypatch.delenv("RESETBOT_SEALING_KEY", raising=False)
    problems = " ".join(load_settings().require_sealing())
    assert problems.startswith(said) if said else problems == ""
    assert key is None or key not in problems


@pytest.mark.parametrize("tenant", ["common", "organizations", "consumers", "Organizations/"])
def test_a_multi_tenant_authority_is_refused(monkeypatch: pytest.MonkeyPatch, tenant: str) -> None:
    """Issue 14, item 11: with /common or /organizations anyone from any tenant can complete a sign-in code."""
    monkeypatch.setenv("RESETBOT_SLACK_BOT_TOKEN", "xoxb-1-real")
    monkeypatch.setenv("RESETBOT_SLACK_APP_TOKEN", "xapp-1-real")
    monkeypatch.setenv("RESETBOT_ENTRA_AUTHORITY", f"https://login.microsoftonline.com/{tenant}")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert str(err.value) == (
        f"RESETBOT_ENTRA_AUTHORITY names no tenant (/{tenant.strip('/')} lets accounts of any tenant sign in): "
        "give your own tenant's id, https://login.microsoftonline.com/<tenant id>.")


def test_a_tenant_authority_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESETBOT_SLACK_BOT_TOKEN", "xoxb-1-real")
    monkeypatch.setenv("RESETBOT_SLACK_APP_TOKEN", "xapp-1-real")
    monkeypatch.setenv("RESETBOT_ENTRA_AUTHORITY", "https://login.microsoftonline.com/contoso.onmicrosoft.com")
    assert load_settings().entra_authority == "https://login.microsoftonline.com/contoso.onmicrosoft.com"


def test_browser_sign_in_needs_an_https_public_url_and_in_socket_mode_a_certificate(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESETBOT_SLACK_BOT_TOKEN", "xoxb-1-real")
    monkeypatch.setenv("RESETBOT_SLACK_APP_TOKEN", "xapp-1-real")
    assert load_settings().redirect_uri() is None, "device code (the default) needs no redirect URI"
    monkeypatch.setenv("RESETBOT_SIGNIN", "Both")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "RESETBOT_SIGNIN=both needs RESETBOT_PUBLIC_URL" in str(err.value)
    assert "needs RESETBOT_CALLBACK_CERT_FILE and RESETBOT_CALLBACK_KEY_FILE" in str(err.value)
    monkeypatch.setenv("RESETBOT_CALLBACK_CERT_FILE", "/etc/resetbot/callback.pem")
    monkeypatch.setenv("RESETBOT_CALLBACK_KEY_FILE", "/etc/resetbot/callback.key")
    for bad in ("http://resetbot.corp.example", "https://resetbot.corp.example/bot", "https://"):
        monkeypatch.setenv("RESETBOT_PUBLIC_URL", bad)
        with pytest.raises(ConfigError, match="RESETBOT_PUBLIC_URL must be an https URL with no path"):
            load_settings()
    monkeypatch.setenv("RESETBOT_PUBLIC_URL", "https://resetbot.corp.example:8443/")
    settings = load_settings()
    assert settings.redirect_uri() == "https://resetbot.corp.example:8443/auth/callback"
    monkeypatch.setenv("RESETBOT_SIGNIN", "web")
    with pytest.raises(ConfigError, match="RESETBOT_SIGNIN"):
        load_settings()


def test_http_mode_serves_the_callback_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESETBOT_SLACK_BOT_TOKEN", "xoxb-1-real")
    monkeypatch.setenv("RESETBOT_SLACK_MODE", "http")
    monkeypatch.setenv("RESETBOT_SLACK_SIGNING_SECRET", "8f742231b10e8888abcd99yyyzzz85a5")
    monkeypatch.setenv("RESETBOT_SIGNIN", "browser")
    monkeypatch.setenv("RESETBOT_PUBLIC_URL", "https://resetbot.corp.example")
    assert load_settings().redirect_uri() == "https://resetbot.corp.example/auth/callback"


def test_verification_methods_are_read_in_order_and_bad_ones_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESETBOT_SLACK_BOT_TOKEN", "xoxb-1-real")
    monkeypatch.setenv("RESETBOT_SLACK_APP_TOKEN", "xapp-1-real")
    settings = load_settings()
    assert settings.verify_required is True
    assert [m.value for m in settings.verify_methods] == ["slack-code", "slack-confirm", "callback"]
    monkeypatch.setenv("RESETBOT_VERIFY_METHODS", " Callback , slack-code,callback")
    assert [m.value for m in load_settings().verify_methods] == ["callback", "slack-code"]
    monkeypatch.setenv("RESETBOT_VERIFY_METHODS", "sms,slack-code")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "RESETBOT_VERIFY_METHODS: sms is not a method" in str(err.value)


def test_duo_push_needs_the_duo_application_and_never_echoes_its_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESETBOT_SLACK_BOT_TOKEN", "xoxb-1-real")
    monkeypatch.setenv("RESETBOT_SLACK_APP_TOKEN", "xapp-1-real")
    monkeypatch.setenv("RESETBOT_VERIFY_METHODS", "duo-push")
    monkeypatch.setenv("RESETBOT_DUO_SECRET_KEY", "duo-secret-value-123")
    with pytest.raises(ConfigError) as err:
        load_settings()
    text = str(err.value)
    assert "RESETBOT_DUO_API_HOST, RESETBOT_DUO_INTEGRATION_KEY" in text and "duo-secret-value-123" not in text
    monkeypatch.setenv("RESETBOT_DUO_API_HOST", "api-1234abcd.duosecurity.com")
    monkeypatch.setenv("RESETBOT_DUO_INTEGRATION_KEY", "DIXXXXXXXXXXXXXXXXXX")
    settings = load_settings()
    assert "duo-secret-value-123" not in repr(settings)

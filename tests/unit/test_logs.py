"""Log redaction and correlation: what an operator's log file holds, whatever is logged and however."""

from __future__ import annotations

import io
import json
import logging
import string
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from bot.__main__ import main
from bot.logs import (
    REDACTED,
    ContextExecutor,
    LogFormat,
    Redactor,
    SecretRegistry,
    bind_correlation,
    configure,
    current_correlation,
    forget_secret,
    remember_secret,
    unbind_correlation,
)
from bot.policy import PasswordPolicy, generate_temporary_password
from bot.settings import Settings

POLICY = PasswordPolicy(source="domain", min_length=7, history_length=24, complexity=True, min_age=None,
                        max_age=None)


@pytest.fixture
def fresh() -> Redactor:
    return Redactor(SecretRegistry())


@contextmanager
def configured(level: str, fmt: LogFormat | str, stream: io.StringIO) -> Iterator[None]:
    """``configure`` for one test, then the root logger as it was: its level, its handlers, and the filters
    ``configure`` put on handlers that are not ours (pytest's capture handlers among them)."""
    root = logging.getLogger()
    level_before, filters_before = root.level, {h: list(h.filters) for h in root.handlers}
    handler = configure(level=level, fmt=fmt, stream=stream)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level_before)
        for other, filters in filters_before.items():
            other.filters[:] = filters
        logging.captureWarnings(False)


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The root logger writing JSON lines, at DEBUG, into a buffer: what `RESETBOT_LOG_FORMAT=json` writes."""
    buffer = io.StringIO()
    with configured("DEBUG", LogFormat.JSON, buffer):
        yield buffer


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


@pytest.mark.parametrize(("text", "gone"), [
    ("token xoxb-1234-5678-abcdEFGH in the url", "xoxb-1234-5678-abcdEFGH"),
    ("app_token=xapp-1-A0B1-99-ff", "xapp-1-A0B1-99-ff"),
    ("rotating xoxe.xoxp-1-Mi0yLTE", "xoxe.xoxp-1-Mi0yLTE"),
    ("prefix_xoxp-77-88-99", "xoxp-77-88-99"),
    ("Authorization: Bearer abc.DEF-ghi_jkl~mno+/=", "abc.DEF-ghi_jkl~mno+/="),
    ("header basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
    ("id_token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl here", "eyJzdWIiOiIxIn0"),
    ("grant_type=client_credentials&client_secret=s3cr3t~value&scope=x", "s3cr3t~value"),
    ('{"newPassword": "Tr1cky \\"quoted\\" one"}', "Tr1cky"),
    ("{'password': 'hunter2hunter2'}", "hunter2hunter2"),
    ("LDAP_PASSWORD = plainvalue!", "plainvalue!"),
    ("refresh_token:abcdefgh12345", "abcdefgh12345"),
    ("token_cache_key=Zm9vYmFyYmF6cXV4", "Zm9vYmFyYmF6cXV4"),
    ("postgresql://resetbot:dbpass123@db.example:5432/resetbot", "dbpass123"),
    ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----", "MIIEvQIBADANBg"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEcut off by a limit", "MIIEcut"),
])
def test_credential_shapes_are_redacted_unregistered(fresh: Redactor, text: str, gone: str) -> None:
    redacted = fresh.redact(text)
    assert gone not in redacted
    assert REDACTED in redacted


@pytest.mark.parametrize("text", [
    "Done: Alice's password was reset and she must change it at next sign-in.",
    "password_never_expires=True for CN=Nora,OU=Staff",
    "display_name_tokens=('alice', 'smith') policy min_length=7",
    "request r-12ab approved by U0MONA (c-0123456789)",
    "RESETBOT_SLACK_APP_TOKEN must be an app-level token (it starts with xapp-).",
])
def test_ordinary_lines_are_left_alone(fresh: Redactor, text: str) -> None:
    assert fresh.redact(text) == text


@given(secret=st.text(alphabet=string.printable, min_size=6, max_size=40),
       before=st.text(max_size=30), after=st.text(max_size=30), times=st.integers(1, 3))
def test_a_registered_secret_never_survives_in_any_surrounding(secret: str, before: str, after: str,
                                                               times: int) -> None:
    registry = SecretRegistry()
    registry.remember(secret)
    redactor = Redactor(registry)
    for text in (before + secret * times + after, json.dumps({"v": before + secret + after}),
                 repr((before, secret, after))):
        assert secret not in redactor.redact(text)


def test_a_secret_lives_until_forgotten_or_its_lifetime_ends() -> None:
    now = [100.0]
    registry = SecretRegistry(clock=lambda: now[0])
    redactor = Redactor(registry)
    registry.remember("TempPass-1234", ttl=60)
    registry.remember("Forever-Secret")
    registry.remember("short")  # too short to be searched for without wrecking every line
    assert redactor.redact("TempPass-1234 Forever-Secret short") == f"{REDACTED} {REDACTED} short"
    now[0] += 61
    assert "TempPass-1234" not in registry
    assert redactor.redact("TempPass-1234 Forever-Secret") == f"TempPass-1234 {REDACTED}"
    registry.forget(SecretStr("Forever-Secret"))
    assert redactor.redact("Forever-Secret") == "Forever-Secret"


def test_every_secret_setting_is_redacted_once_settings_are_read(json_log: io.StringIO) -> None:
    settings = Settings(_env_file=None, slack_bot_token=SecretStr("xoxb-settings-test-1"),  # type: ignore[call-arg]
                        slack_app_token=SecretStr("xapp-settings-2"),
                        ldap_password=SecretStr("Ldap:Reader;Pass"), entra_client_secret=SecretStr("Cl13nt~S3cret"),
                        token_cache_old_keys=[SecretStr("b2xkLWtleS1vbmUtMzItYnl0ZXMtbG9uZy1hYWFhYWE=")])
    logging.getLogger("somelib").debug("connecting with %s and %s / %s", settings.ldap_password.get_secret_value()
                                       if settings.ldap_password else "", "Cl13nt~S3cret",
                                       "b2xkLWtleS1vbmUtMzItYnl0ZXMtbG9uZy1hYWFhYWE=")
    text = json_log.getvalue()
    for secret in ("Ldap:Reader;Pass", "Cl13nt~S3cret", "b2xkLWtleS1vbmUtMzItYnl0ZXMtbG9uZy1hYWFhYWE="):
        assert secret not in text


def test_generated_passwords_are_redacted_until_sealed(json_log: io.StringIO) -> None:
    password = generate_temporary_password(POLICY, sam="jdoe", display_name="Jane Doe")
    plain = password.get_secret_value()
    log = logging.getLogger("slack_sdk.web.base_client")
    log.debug("Sending a request - body_params: {'view': {'text': '%s'}}", plain)
    log.debug("body %r", {"newPassword": plain, "quoted": json.dumps(plain)})
    forget_secret(password)  # what the reset service does once the password is sealed
    log.debug("after sealing the process no longer holds it: %s", plain)
    records = lines(json_log)
    assert all(plain not in json.dumps(r) for r in records[:2])
    assert plain in str(records[2]["message"])


def test_tracebacks_extras_and_bad_format_strings_are_redacted(json_log: io.StringIO) -> None:
    registry_secret = "Zx9#registered-secret"
    remember_secret(registry_secret)
    log = logging.getLogger("resetbot.test")
    # Whatever an earlier test of the run left on this logger (a level, or disabled): the INFO line is under test.
    log.setLevel(logging.INFO)
    log.disabled = False
    try:
        raise RuntimeError(f"LDAP bind failed for password={registry_secret!r} token xoxb-9-9-abc")
    except RuntimeError:
        log.exception("could not bind", extra={"client_secret": "extra-secret-value",
                                               "detail": {"auth": ["Bearer abc.def.ghi", registry_secret],
                                                          "access_token": "opaque-token-value"},
                                               "attempt": 2})
    log.info("two placeholders, one argument: %s %s", registry_secret)  # noqa: PLE1206 (the bug under test)
    log.warning("an object: %s", SecretStr(registry_secret))
    text = json_log.getvalue()
    for gone in (registry_secret, "xoxb-9-9-abc", "extra-secret-value", "abc.def.ghi", "opaque-token-value"):
        assert gone not in text
    first, second, third = lines(json_log)
    assert "RuntimeError" in str(first["exception"]) and first["attempt"] == 2
    assert first["client_secret"] == REDACTED
    assert "two placeholders" in str(second["message"])
    assert third["message"] == "an object: **********"
    forget_secret(registry_secret)
    log.setLevel(logging.NOTSET)


def test_text_format_carries_the_correlation_id_and_redacts_tracebacks() -> None:
    buffer = io.StringIO()
    with configured("INFO", "text", buffer):
        token = bind_correlation("c-00000000aa")
        try:
            raise ValueError("refresh_token=abcdef123456")
        except ValueError:
            logging.getLogger("x").exception("failed")
        unbind_correlation(token)
        logging.getLogger("x").info("outside any request")
    out = buffer.getvalue()
    assert "[c-00000000aa] failed" in out and "abcdef123456" not in out and "ValueError" in out
    assert "[-] outside any request" in out


def test_work_handed_to_the_listener_pool_keeps_the_requests_correlation_id(json_log: io.StringIO) -> None:
    with ContextExecutor(max_workers=2) as pool:
        token = bind_correlation("c-1111111111")
        try:
            def work() -> str | None:
                logging.getLogger("w").info("in the pool")
                return current_correlation()

            seen = pool.submit(work)
            assert seen.result(timeout=5) == "c-1111111111"
        finally:
            unbind_correlation(token)
        assert pool.submit(current_correlation).result(timeout=5) is None
    assert lines(json_log)[-1]["correlation_id"] == "c-1111111111"


def test_a_bad_log_setting_stops_the_command_with_one_sentence(monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str],
                                                               tmp_path: object) -> None:
    monkeypatch.chdir(str(tmp_path))
    monkeypatch.setenv("RESETBOT_LOG_LEVEL", "chatty")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("resetbot cannot start: RESETBOT_LOG_LEVEL:") and err.count("\n") == 1
    monkeypatch.setenv("RESETBOT_LOG_LEVEL", "debug")
    monkeypatch.setenv("RESETBOT_LOG_FORMAT", "xml")
    assert main(["run"]) == 2
    assert "RESETBOT_LOG_FORMAT" in capsys.readouterr().err

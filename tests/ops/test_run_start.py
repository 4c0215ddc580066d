"""``resetbot run`` through its real entry point (``python -m bot run``) against the lab, with one piece broken
in turn so that it cannot start: each says why in one sentence on stderr, ``resetbot cannot start: …``, exits 2
when something must be changed first or 75 when something was out of reach (so that a service manager restarts
only those), prints no traceback and no secret."""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.cli.run import EXIT_MUST_FIX, EXIT_TRY_AGAIN
from lab.demo import bot_environment
from lab.stack import Lab


@pytest.fixture
def env(lab: Lab, tmp_path: Path) -> dict[str, str]:
    return bot_environment(lab.descriptor, f"sqlite:///{tmp_path / 'resetbot.db'}")


def http_mode(lab: Lab, env: dict[str, str], port: int = 0) -> dict[str, str]:
    del env["RESETBOT_SLACK_APP_TOKEN"]
    env.update({"RESETBOT_SLACK_MODE": "http", "RESETBOT_HTTP_HOST": "127.0.0.1", "RESETBOT_HTTP_PORT": str(port),
                "RESETBOT_SLACK_SIGNING_SECRET": lab.descriptor["slack"]["signing_secret"]})
    return env


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port nothing answers on while the test runs (bound, never listening)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def cannot_start(lab: Lab, env: dict[str, str], cwd: Path, *, code: int = EXIT_MUST_FIX) -> str:
    """The one sentence a failed start wrote on stderr, after checking how it failed: exit ``code``, no
    traceback, nothing on stdout, no secret anywhere."""
    done = subprocess.run([sys.executable, "-m", "bot", "run"], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == code, output
    assert "Traceback" not in output, output
    assert done.stdout == ""
    said = [x for x in done.stderr.splitlines() if x.startswith("resetbot cannot start: ")]
    assert len(said) == 1, done.stderr
    for name in ("RESETBOT_SLACK_BOT_TOKEN", "RESETBOT_SLACK_APP_TOKEN", "RESETBOT_SLACK_SIGNING_SECRET",
                 "RESETBOT_ENTRA_CLIENT_SECRET", "RESETBOT_LDAP_PASSWORD", "RESETBOT_TOKEN_CACHE_KEY"):
        if env.get(name):
            assert env[name] not in output, name
    return said[0]


def test_a_bot_token_slack_refuses(lab: Lab, env: dict[str, str], tmp_path: Path) -> None:
    env["RESETBOT_SLACK_BOT_TOKEN"] = "xoxb-1-not-the-bots"
    assert cannot_start(lab, env, tmp_path) == (
        "resetbot cannot start: Slack refused RESETBOT_SLACK_BOT_TOKEN (invalid_auth): copy the Bot User OAuth "
        "Token (xoxb-…) from the app's settings page into RESETBOT_SLACK_BOT_TOKEN.")


def test_an_app_token_slack_refuses(lab: Lab, env: dict[str, str], tmp_path: Path) -> None:
    env["RESETBOT_SLACK_APP_TOKEN"] = "xapp-1-A0RESETBOT-not-it"
    assert cannot_start(lab, env, tmp_path) == (
        "resetbot cannot start: Slack refused RESETBOT_SLACK_APP_TOKEN (invalid_auth): copy the app-level token "
        "with connections:write (xapp-…) from the app's settings page into RESETBOT_SLACK_APP_TOKEN.")


@pytest.mark.parametrize("mode", ["socket", "http"])
def test_slack_out_of_reach(lab: Lab, env: dict[str, str], tmp_path: Path, closed_port: int, mode: str) -> None:
    if mode == "http":
        http_mode(lab, env)
    env["RESETBOT_SLACK_API_BASE"] = api_base = f"http://127.0.0.1:{closed_port}/api/"
    assert cannot_start(lab, env, tmp_path, code=EXIT_TRY_AGAIN) == (
        f"resetbot cannot start: Slack could not be reached at {api_base} (URLError): check the network path and "
        "RESETBOT_SLACK_API_BASE.")


def test_an_http_port_already_taken(lab: Lab, env: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        said = cannot_start(lab, http_mode(lab, env, port), tmp_path, code=EXIT_TRY_AGAIN)
    assert said.startswith(f"resetbot cannot start: cannot listen on 127.0.0.1:{port} (")
    assert said.endswith(").")


def test_a_database_out_of_reach_is_worth_another_start(lab: Lab, env: dict[str, str], tmp_path: Path,
                                                        closed_port: int) -> None:
    env["RESETBOT_DATABASE_URL"] = f"postgresql://resetbot:db-s3cret@127.0.0.1:{closed_port}/resetbot"
    said = cannot_start(lab, env, tmp_path, code=EXIT_TRY_AGAIN)
    assert said.startswith(f"resetbot cannot start: The database postgresql+psycopg://resetbot:***@127.0.0.1:"
                           f"{closed_port}/resetbot cannot be used: "), said
    assert "db-s3cret" not in said


def test_postgresql_without_a_shared_sealing_key_must_be_fixed_first(lab: Lab, env: dict[str, str], tmp_path: Path,
                                                                     closed_port: int) -> None:
    """A PostgreSQL database means replicas may serve it; each would otherwise seal with a key of its own, and a
    Reveal reaching another replica could not open the password. Said before the database is even tried."""
    env["RESETBOT_DATABASE_URL"] = f"postgresql://resetbot:db-s3cret@127.0.0.1:{closed_port}/resetbot"
    del env["RESETBOT_SEALING_KEY"]
    said = cannot_start(lab, env, tmp_path)
    assert said.startswith("resetbot cannot start: RESETBOT_SEALING_KEY is not set, and the database is PostgreSQL"), \
        said
    assert "db-s3cret" not in said


def browser_sign_in(lab: Lab, env: dict[str, str], tmp_path: Path, port: int) -> dict[str, str]:
    """Socket Mode with browser sign-in: the callback listener on ``port`` with a certificate from the lab CA."""
    cert = lab.ca.issue_server_cert("run-callback", ips=("127.0.0.1",))
    env.update({"RESETBOT_SIGNIN": "both", "RESETBOT_PUBLIC_URL": f"https://127.0.0.1:{port}",
                "RESETBOT_CALLBACK_HOST": "127.0.0.1", "RESETBOT_CALLBACK_PORT": str(port),
                "RESETBOT_CALLBACK_CERT_FILE": str(cert.cert_file), "RESETBOT_CALLBACK_KEY_FILE": str(cert.key_file)})
    return env


def test_a_callback_certificate_that_cannot_be_read(lab: Lab, env: dict[str, str], tmp_path: Path) -> None:
    browser_sign_in(lab, env, tmp_path, 0)
    env["RESETBOT_CALLBACK_KEY_FILE"] = missing = str(tmp_path / "no-such.key")
    said = cannot_start(lab, env, tmp_path)
    assert said.startswith("resetbot cannot start: RESETBOT_CALLBACK_CERT_FILE (") and missing in said
    assert said.endswith("give a PEM certificate (with its chain) and its private key.")


def test_a_callback_port_already_taken(lab: Lab, env: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        said = cannot_start(lab, browser_sign_in(lab, env, tmp_path, port), tmp_path, code=EXIT_TRY_AGAIN)
    assert said.startswith(f"resetbot cannot start: cannot listen on 127.0.0.1:{port} for the sign-in callback (")
    assert "Address already in use" in said and said.endswith("free the port or change RESETBOT_CALLBACK_PORT.")


def test_socket_mode_serves_the_callback_over_https_until_stopped(lab: Lab, env: dict[str, str],
                                                                  tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    bot = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=browser_sign_in(lab, env, tmp_path, port),
                           cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    try:
        trusted = ssl.create_default_context(cafile=str(lab.ca.ca_file))
        deadline = time.monotonic() + 60
        with httpx.Client(verify=trusted, trust_env=False, timeout=5) as browser:
            while True:
                assert bot.poll() is None, bot.communicate()
                try:
                    health = browser.get(f"https://127.0.0.1:{port}/healthz")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the callback listener never answered"
                    time.sleep(0.2)
            assert health.text == "ok\n"
            page = browser.post(f"https://127.0.0.1:{port}/auth/callback", data={"state": "never-issued"})
            assert page.status_code == 400 and page.headers["x-frame-options"] == "DENY"
    finally:
        bot.send_signal(signal.SIGTERM)
        _out, err = bot.communicate(timeout=60)
    assert bot.returncode == 0, err
    assert f"serving the sign-in callback on https://127.0.0.1:{port}/auth/callback" in err

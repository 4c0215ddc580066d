"""The bot behind an outbound proxy (``RESETBOT_HTTPS_PROXY``), with a real CONNECT proxy on loopback that
requires a user and password: a whole reset works with every Slack, Entra ID and Graph connection tunnelled;
``resetbot doctor`` through it is all ok; a proxy that refuses the credentials or is down is one FAIL line and one
"resetbot cannot start" sentence; the proxy's password never reaches a log line, the doctor's output or a
sentence about a bad setting."""

from __future__ import annotations

import base64
import io
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from bot.cli.run import EXIT_MUST_FIX, EXIT_TRY_AGAIN
from bot.errors import ConfigError
from bot.logs import configure
from bot.settings import load_settings
from bot.wiring import build_runtime
from lab.people import person
from lab.slack.driver import SlackDriver
from lab.stack import Lab
from tests.clients.graphlab import EntraControl
from tests.ops.connect_proxy import ConnectProxy
from tests.ops.test_doctor import assert_ok_except, doctor, line, migrated_sqlite
from tests.ops.test_run_start import cannot_start, closed_port
from tests.scenarios.harness import lab_settings, link_agent, running_bot, wait_until
from tests.scenarios.test_request_approval import request_for

#: The proxy's password: URL-special characters (percent-encoded in the URL), so each client's decoding counts.
USER, PASSWORD = "resetbot", "Pr0xy:p@ss/w0rd"
CREDENTIALS = (USER, PASSWORD)
__all__ = ["closed_port"]  # the fixture: a port nothing answers on (a proxy that is down)


def _netloc(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    with ConnectProxy(credentials=CREDENTIALS) as running:
        yield running


@pytest.fixture
def driver(lab: Lab) -> Iterator[SlackDriver]:
    with SlackDriver(lab.descriptor["slack"]["control"]) as drv:
        drv.reset()
        yield drv


def behind_proxy(lab: Lab) -> dict[str, str]:
    """Settings that differ behind the proxy: Slack over TLS (Socket Mode tunnels are always TLS)."""
    return {"slack_api_base": lab.descriptor["slack"]["tls_api_base"],
            "slack_ca_file": lab.descriptor["entra"]["ca_file"]}


def proxy_env(lab: Lab, tmp_path: Path, proxy_url: str) -> dict[str, str]:
    from lab.demo import bot_environment  # noqa: PLC0415 - as test_doctor builds it

    env = bot_environment(lab.descriptor, migrated_sqlite(tmp_path / "resetbot.db"))
    env.update({f"RESETBOT_{k.upper()}": v for k, v in behind_proxy(lab).items()})
    env["RESETBOT_HTTPS_PROXY"] = proxy_url
    env["RESETBOT_DOCTOR_TEST_USER"] = person("alice").upn
    env["RESETBOT_WRITEBACK_ACCOUNT"] = lab.descriptor["ad"]["writeback"]["bind"]
    env["RESETBOT_LOG_LEVEL"] = "DEBUG"  # the libraries' own request logging too
    return env


def no_password(text: str, password: str = PASSWORD) -> None:
    """Neither the password, nor as the URL writes it, nor inside the Proxy-Authorization credentials."""
    basic = base64.b64encode(f"{USER}:{password}".encode()).decode("ascii")
    for secret in (password, quote(password, safe=""), basic):
        assert secret not in text


def test_a_reset_goes_through_the_proxy(lab: Lab, driver: SlackDriver, proxy: ConnectProxy,
                                        tmp_path: Path) -> None:
    settings = lab_settings(lab, f"sqlite:///{tmp_path / 'resetbot.db'}", https_proxy=proxy.url(),
                            **behind_proxy(lab))
    log = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure(level="DEBUG", stream=log)
    entra = EntraControl(lab)
    entra.reset(history=True)
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    try:
        with running_bot(settings, driver) as bot:
            link_agent(lab, driver, "hank")  # msal's device-code flow, through the proxy
            request = request_for(lab, driver, "alice", "locked out behind a proxy")
            driver.click("mona", helpdesk, str(request["ts"]), "request_approve")
            done = driver.wait_for_message(helpdesk, lambda m: "Done:" in m["text"], thread_ts=str(request["ts"]))
            assert "must change it at next sign-in" in done["text"]
            wait_until(lambda: bot.services.reset.wait_idle(timeout=0), what="the reset to post its verdict")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        alice = person("alice")
        assert lab.ad.admin_connection().extend.microsoft.modify_password(alice.dn, alice.password)
        entra.reset(history=True)
    entra_host, slack_host = _netloc(settings.entra_authority or ""), _netloc(settings.slack_api_base)
    assert _netloc(settings.graph_base) == entra_host  # the lab serves Entra ID and Graph on one port
    assert proxy.targets() == {entra_host, slack_host}, proxy.tunnels()
    assert all(t.authorized for t in proxy.tunnels()), "every client sent the proxy's credentials"
    # Socket Mode's link, the Web API, the token endpoint, Graph: each opened tunnels of its own.
    assert len([t for t in proxy.tunnels() if t.target == slack_host]) >= 2
    assert len([t for t in proxy.tunnels() if t.target == entra_host]) >= 2
    written = log.getvalue()
    assert "serving" in written or written.count("\n") > 10, "the bot's DEBUG log was captured"
    no_password(written)


def test_doctor_through_the_proxy_is_all_ok(lab: Lab, proxy: ConnectProxy, tmp_path: Path) -> None:
    code, lines = doctor(proxy_env(lab, tmp_path, proxy.url()), tmp_path)
    assert code == 0, "\n".join(lines)
    assert line(lines, "outbound proxy").startswith(f"ok    outbound proxy: {proxy.address} opens tunnels to ")
    entra_tls = line(lines, "TLS to Entra ID")
    assert entra_tls.startswith("ok    ") and entra_tls.endswith(f"through the proxy {proxy.address})")
    for check in ("Slack bot token", "Slack bot scopes", "Slack app token", "Entra app token", "Graph permissions",
                  "Graph reachable", "Graph test user", "TLS to AD", "LDAP bind", "database"):
        assert line(lines, check).startswith("ok    "), "\n".join(lines)
    slack_host = _netloc(lab.descriptor["slack"]["tls_api_base"])
    duo_host = lab.descriptor["duo"]["api_host"]  # the Duo check's signed request, tunnelled too
    assert line(lines, "Duo Auth API").startswith("ok    "), "\n".join(lines)
    assert proxy.targets() == {_netloc(lab.descriptor["entra"]["authority"]), slack_host, duo_host}
    assert all(t.authorized for t in proxy.tunnels())
    from tests.ops.test_doctor import LAST_STDERR  # noqa: PLC0415 - filled by doctor()

    no_password("\n".join(lines) + LAST_STDERR[0])


def test_a_proxy_refusing_the_password_is_one_fail_line(lab: Lab, proxy: ConnectProxy, tmp_path: Path) -> None:
    wrong = proxy.url((USER, "not-" + PASSWORD))
    code, lines = doctor(proxy_env(lab, tmp_path, wrong), tmp_path)
    assert code == 1
    first = _netloc(lab.descriptor["slack"]["tls_api_base"])
    assert line(lines, "outbound proxy") == (
        f"FAIL  outbound proxy: the outbound proxy {proxy.address} refused the tunnel to {first} (407 Proxy "
        "Authentication Required): check the user and password in RESETBOT_HTTPS_PROXY")
    assert_ok_except(lines, "outbound proxy")  # Slack and Entra are skipped for it; AD and the database are ok
    assert line(lines, "Slack bot token") == "skip  Slack bot token: skipped: outbound proxy failed above"
    assert line(lines, "TLS to Entra ID") == "skip  TLS to Entra ID: skipped: outbound proxy failed above"
    assert line(lines, "LDAP bind").startswith("ok    ")  # LDAP never goes through the proxy
    from tests.ops.test_doctor import LAST_STDERR  # noqa: PLC0415

    no_password("\n".join(lines) + LAST_STDERR[0], "not-" + PASSWORD)
    assert not any(t.authorized for t in proxy.tunnels())


def test_a_proxy_that_is_down_is_one_fail_line(lab: Lab, tmp_path: Path, closed_port: int) -> None:
    address = f"http://127.0.0.1:{closed_port}"
    url = f"http://{USER}:{quote(PASSWORD, safe='')}@127.0.0.1:{closed_port}"
    code, lines = doctor(proxy_env(lab, tmp_path, url), tmp_path)
    assert code == 1
    assert line(lines, "outbound proxy") == (
        f"FAIL  outbound proxy: the outbound proxy {address} could not be reached (Connection refused): check "
        "RESETBOT_HTTPS_PROXY and that the proxy runs")
    assert_ok_except(lines, "outbound proxy")


@pytest.mark.parametrize("fault", ["password", "down"])
def test_run_cannot_start_through_a_refusing_proxy(lab: Lab, proxy: ConnectProxy, tmp_path: Path,
                                                   closed_port: int, fault: str) -> None:
    if fault == "password":
        url, address = proxy.url((USER, "not-" + PASSWORD)), proxy.address
    else:
        address = f"http://127.0.0.1:{closed_port}"
        url = f"http://{USER}:{quote(PASSWORD, safe='')}@127.0.0.1:{closed_port}"
    env = proxy_env(lab, tmp_path, url)
    said = cannot_start(lab, env, tmp_path, code=EXIT_TRY_AGAIN if fault == "down" else EXIT_MUST_FIX)
    assert said.startswith(f"resetbot cannot start: the outbound proxy {address} ")
    assert said.endswith(("check the user and password in RESETBOT_HTTPS_PROXY.",
                          "check RESETBOT_HTTPS_PROXY and that the proxy runs."))
    done = subprocess.run([sys.executable, "-m", "bot", "run"], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)
    no_password(done.stdout + done.stderr, "not-" + PASSWORD if fault == "password" else PASSWORD)


@pytest.mark.parametrize(("value", "why"), [
    ("https://proxy.example.com:3128", "must start with http://"),
    ("http://proxy.example.com", "needs the proxy's port"),
    ("http://user:Secr3t-Pa55@proxy.example.com", "needs the proxy's port"),
    ("http://proxy.example.com:3128/path", "no path"),
    ("proxy.example.com:3128", "must start with http://"),
])
def test_a_bad_proxy_setting_is_one_sentence_without_the_password(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str, why: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RESETBOT_SLACK_BOT_TOKEN", "xoxb-1-real")
    monkeypatch.setenv("RESETBOT_SLACK_APP_TOKEN", "xapp-1-real")
    monkeypatch.setenv("RESETBOT_HTTPS_PROXY", value)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    said = str(refused.value)
    assert said.startswith("RESETBOT_HTTPS_PROXY ") and why in said and said.endswith(".")
    assert "Secr3t-Pa55" not in said


def test_the_password_is_redacted_from_every_log_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Whatever a library logs (the URL, the password, the Proxy-Authorization header) comes out redacted, from the
    moment the settings are read; the proxy's address stays readable."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RESETBOT_SLACK_BOT_TOKEN", "xoxb-1-real")
    monkeypatch.setenv("RESETBOT_SLACK_APP_TOKEN", "xapp-1-real")
    url = "http://resetbot:Pr0xy%3Ap%40ss%2Fw0rd@proxy.example.com:3128"
    monkeypatch.setenv("RESETBOT_HTTPS_PROXY", url)
    settings = load_settings()
    proxy = settings.proxy()
    assert proxy is not None and proxy.password == PASSWORD and proxy.shown == "http://proxy.example.com:3128"
    assert PASSWORD not in repr(settings) and PASSWORD not in repr(proxy)
    stream = io.StringIO()
    root = logging.getLogger()
    saved: tuple[list[Any], int] = (root.handlers[:], root.level)
    configure(level="DEBUG", stream=stream)
    try:
        log = logging.getLogger("urllib3.connectionpool")
        log.debug("Starting new HTTPS connection via %s", url)
        log.debug("proxy password %s", PASSWORD)
        log.debug("headers {'Proxy-Authorization': '%s'}", proxy.authorization())
        log.debug("tunnel through %s", proxy.shown)
        logging.getLogger("slack_sdk.socket_mode").error(
            "Failed to connect to the proxy (proxy: %s, connect status code: 407)", url)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    written = stream.getvalue()
    no_password(written)
    assert "tunnel through http://proxy.example.com:3128" in written


def test_ldap_is_never_proxied(lab: Lab, tmp_path: Path, closed_port: int) -> None:
    """With a proxy that is down, the directory still answers: LDAPS goes straight to the domain controller."""
    url = f"http://127.0.0.1:{closed_port}"
    settings = lab_settings(lab, f"sqlite:///{tmp_path / 'resetbot.db'}", https_proxy=url, **behind_proxy(lab))
    runtime = build_runtime(settings)
    try:
        runtime.directory.ping()
        assert runtime.directory.find_user(upn=person("alice").upn) is not None
    finally:
        runtime.close(drain_s=0)

"""Browser sign-in (issue 16): agents link through Microsoft's sign-in page in their browser, for tenants whose
Conditional Access blocks the device-code flow.

The bot runs in Socket Mode with ``RESETBOT_SIGNIN=both`` and its HTTPS callback listener (a certificate from the
lab CA); the "browser" is httpx following the redirects and posting the sign-in form, as a person's browser does,
and once a real one: headless Chromium (``tests/scenarios/chromium.py``), started once for the module.
Nobody is linked by device code in this module: hank's reset at the end is made with the browser-linked token.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import re
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from sqlmodel import col, select

from bot.callback import CALLBACK_THREADS, CallbackListener
from bot.logs import RedactingFilter
from bot.models import SERVICE_LINK_KEY, AgentLink, BrowserSignIn, utcnow
from bot.services.links import CallbackOutcome
from bot.settings import ResetIdentity, SignIn
from lab.people import person
from lab.pki import LabCA
from lab.slack.driver import Message, SlackDriver
from lab.stack import Lab
from tests.clients.graphlab import EntraControl
from tests.scenarios.chromium import chromium, require_tools, wait_for
from tests.scenarios.harness import RunningBot, lab_settings, running_bot, wait_until
from tests.scenarios.test_login import CODE_RE, dm_after, link_row, slack_id
from tests.scenarios.test_reset import approved_request

LINK_RE = re.compile(r"<(https://[^|>]+)\|this Microsoft sign-in page>")
#: Redeeming the code and reading roles: a few round trips to the lab's Entra.
SIGN_IN_S = 20.0


class _Form(HTMLParser):
    """The sign-in page's form: its action and its inputs, as a browser reads them."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.name = ""
        self.fields: dict[str, str] = {}
        self.error = ""
        self._in_error = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action, self.name = a.get("action", ""), a.get("name", "")
        elif tag == "input" and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")
        elif a.get("id") == "error":
            self._in_error = True

    def handle_data(self, data: str) -> None:
        if self._in_error:
            self.error += data
            self._in_error = False


class Browser:
    """httpx as a browser: follows redirects, trusts the lab CA (the lab's Entra and the bot's listener)."""

    def __init__(self, ca_file: str) -> None:
        self.client = httpx.Client(verify=ssl.create_default_context(cafile=ca_file), trust_env=False,
                                   follow_redirects=True, timeout=30)
        self.posted: tuple[str, dict[str, str]] = ("", {})

    def sign_in(self, url: str, upn: str, password: str) -> httpx.Response:
        """Open Microsoft's page, type the account and password, submit: the answer is the page the browser
        ends on (the bot's callback page, or the sign-in page again with an error). Microsoft's answer is a page
        whose script posts its form to the callback (``form_post``); the browser posts it as the script would,
        and remembers what it posted in ``self.posted``."""
        page = self.client.get(url)
        assert page.status_code == 200, page.text
        form = _Form()
        form.feed(page.text)
        assert form.action and "ctx" in form.fields, page.text
        fields = {**form.fields, "login": upn, "passwd": password}
        answer = self.client.post(httpx.URL(str(page.url)).join(form.action), data=fields)
        posting = _Form()
        posting.feed(answer.text)
        if posting.name != "hiddenform":
            return answer
        self.posted = (posting.action, posting.fields)
        return self.client.post(posting.action, data=posting.fields)


@pytest.fixture(scope="module")
def entra(lab: Lab) -> EntraControl:
    return EntraControl(lab)


@pytest.fixture(scope="module")
def browser(lab: Lab) -> Iterator[Browser]:
    b = Browser(lab.descriptor["entra"]["ca_file"])
    yield b
    b.client.close()


@pytest.fixture(scope="module")
def chrome(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """Headless Chromium trusting the lab CA (the lab's Entra and the bot's listener), started on first use."""
    require_tools()
    with chromium(tmp_path_factory.mktemp("chromium"), Path(lab.descriptor["entra"]["ca_file"])) as browser:
        yield browser


@pytest.fixture(scope="module")
def bot(lab: Lab, driver: SlackDriver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBot]:
    """Socket Mode, ``RESETBOT_SIGNIN=both``, and the HTTPS listener for the callback, as ``resetbot run`` starts
    them (the listener first: its port makes the public URL)."""
    cert = lab.ca.issue_server_cert("resetbot-callback", ips=("127.0.0.1",))
    holder: dict[str, Any] = {}

    def finish(query: Mapping[str, str], *, correlation_id: str) -> CallbackOutcome:
        result: CallbackOutcome = holder["bot"].services.links.finish_browser_sign_in(
            query, correlation_id=correlation_id)
        return result

    listener = CallbackListener("127.0.0.1", 0, cert_file=cert.cert_file, key_file=cert.key_file, finish=finish)
    listener.start()
    try:
        port = listener.address[1]
        db: Path = tmp_path_factory.mktemp("bot") / "resetbot.db"
        settings = lab_settings(lab, f"sqlite:///{db}", signin="both", public_url=f"https://127.0.0.1:{port}",
                                callback_cert_file=cert.cert_file, callback_key_file=cert.key_file)
        assert settings.signin == SignIn.BOTH
        with running_bot(settings, driver) as running:
            holder["bot"] = running
            yield running
    finally:
        listener.stop(timeout=5)


def register_redirect_uri(bot: RunningBot, entra: EntraControl) -> None:
    """The redirect URI on the lab's public client, as an administrator registers it."""
    entra.call("POST", "/redirect_uris", {"redirect_uri": bot.runtime.settings.redirect_uri()})


@pytest.fixture(autouse=True)
def _redirect_uri(bot: RunningBot, entra: EntraControl) -> None:
    """Registered before each test: another module may have reset the lab's Entra since."""
    register_redirect_uri(bot, entra)


def browser_login(lab: Lab, driver: SlackDriver, key: str, args: str = "--browser") -> str:
    """``key`` types ``/resetbot login --browser``; returns the sign-in link from their DM."""
    dm = driver.dm_channel(key)
    before = {m["ts"] for m in driver.messages(dm)}
    ack = driver.command(key, "/resetbot", f"login {args}", channel=lab.descriptor["slack"]["channels"]["helpdesk"])
    assert ack["acked"]
    driver.wait_for_ephemeral(key, lambda e: "sign-in link in a DM" in e["text"])
    link_dm = driver.wait_for_message(dm, lambda m: m["ts"] not in before and LINK_RE.search(m["text"]) is not None)
    match = LINK_RE.search(link_dm["text"])
    assert match
    return match.group(1)


def new_dm(driver: SlackDriver, key: str, prefix: str, before: set[str]) -> Message:
    return driver.wait_for_message(driver.dm_channel(key), lambda m: m["ts"] not in before
                                   and m["text"].startswith(prefix), timeout=SIGN_IN_S)


def dm_ts(driver: SlackDriver, key: str) -> set[str]:
    return {m["ts"] for m in driver.messages(driver.dm_channel(key))}


def assert_hardened_page(page: httpx.Response, *secrets_in_url: str) -> None:
    """The callback's page: security headers, and nothing of the request written back into it."""
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    for value in secrets_in_url:
        assert value not in page.text


def test_with_device_code_blocked_login_tells_the_agent_to_use_the_browser(lab: Lab, bot: RunningBot,
                                                                           driver: SlackDriver,
                                                                           entra: EntraControl) -> None:
    hank_id = slack_id(lab, "hank")
    entra.faults(device_code_blocked=True)
    try:
        driver.command("hank", "/resetbot", "login", channel=lab.descriptor["slack"]["channels"]["helpdesk"])
        dm = driver.wait_for_message(driver.dm_channel("hank"), lambda m: CODE_RE.search(m["text"]) is not None)
        match = CODE_RE.search(dm["text"])
        assert match
        entra.approve(match.group(1), "hank")  # hank signs in; Conditional Access then refuses the token
        told = dm_after(driver, "hank", "Your organisation blocks signing in with a code")
    finally:
        entra.faults(device_code_blocked=False)
    assert told["text"] == ("Your organisation blocks signing in with a code (Conditional Access), so nothing was "
                            "linked. Run `/resetbot login --browser` to sign in in your browser instead.")
    assert link_row(bot, hank_id) is None
    failed = [e for e in bot.audit() if e.action == "link_failed" and e.actor == hank_id]
    assert json.loads(failed[-1].detail) == {"code": "AADSTS53003", "reason": "blocked_by_policy", "service": False}


def test_a_wrong_password_on_microsofts_page_goes_nowhere(lab: Lab, bot: RunningBot, driver: SlackDriver,
                                                         browser: Browser) -> None:
    url = browser_login(lab, driver, "hank")
    page = browser.sign_in(url, person("hank").upn, "not-his-password")
    form = _Form()
    form.feed(page.text)
    assert "AADSTS50126" in form.error and str(page.url).startswith(lab.descriptor["entra"]["authority"])
    assert link_row(bot, slack_id(lab, "hank")) is None


def test_browser_login_links_the_agents_own_account(lab: Lab, bot: RunningBot, driver: SlackDriver,
                                                    browser: Browser, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    hank_id, upn = slack_id(lab, "hank"), person("hank").upn
    url = browser_login(lab, driver, "hank")
    query = httpx.URL(url).params
    assert query["prompt"] == "login" and query["code_challenge_method"] == "S256" and query["nonce"]
    assert query["response_mode"] == "form_post"
    assert query["redirect_uri"] == bot.runtime.settings.redirect_uri()
    before = dm_ts(driver, "hank")
    page = browser.sign_in(url, upn, person("hank").password)
    assert page.status_code == 200 and "Sign-in finished" in page.text and "go back to Slack" in page.text
    assert str(page.url) == bot.runtime.settings.redirect_uri()
    code = browser.posted[1]["code"]
    assert_hardened_page(page, code, query["state"])
    linked = new_dm(driver, "hank", "Your Entra account is linked as", before)
    assert linked["text"].startswith(f"Your Entra account is linked as {upn} (roles: Helpdesk Administrator)")
    row = link_row(bot, hank_id)
    assert row is not None and (row.upn, row.oid) == (upn, person("hank").entra_id)

    events = [e for e in bot.audit() if e.actor == hank_id and e.action in ("link_started", "linked")]
    assert [e.action for e in events][-2:] == ["link_started", "linked"]
    assert json.loads(events[-2].detail)["flow"] == "browser"
    with bot.session() as session:
        stored = list(session.exec(select(BrowserSignIn)).all())
    assert max(stored, key=lambda r: r.created_at).used_at is not None
    everything = " ".join(f"{r.state_hash} {r.encrypted_flow}" for r in stored)
    everything += " ".join(e.detail for e in bot.audit())
    assert query["state"] not in everything and code not in everything, "the state or code was stored in clear"
    everything += str(driver.messages(driver.dm_channel("hank"))) + str(driver.ephemeral("hank"))
    assert code not in everything
    redaction = RedactingFilter()  # what every log handler applies (bot.logs.configure)
    logged = [r.getMessage() + str(r.args) for r in caplog.records if redaction.filter(r)]
    assert not [line for line in logged if code in line], "the authorization code reached a log line"
    flow = json.loads(bot.services.links.tokens._fernet.decrypt(  # type: ignore[attr-defined]
        max(stored, key=lambda r: r.created_at).encrypted_flow.encode()))
    assert not [line for line in logged if flow["code_verifier"] in line], "the PKCE verifier reached a log line"
    # The bot's own lines: the "browser" here is httpx too, and logs the page it opens (a person's browser does not
    # write to the bot's log).
    ours = [r.getMessage() + str(r.args) for r in caplog.records
            if redaction.filter(r) and not (r.name == "httpx" and "/oauth2/v2.0/authorize" in r.getMessage())]
    assert not [line for line in ours if query["state"] in line], "the state (the live link) reached a log line"


def test_a_real_browser_links_the_agents_own_account(lab: Lab, bot: RunningBot, driver: SlackDriver,
                                                     chrome: WebDriver) -> None:
    """hank opens the DMed link in Chromium, types his password into the sign-in page and submits; Entra's page
    script posts the answer (``form_post``) to the bot's HTTPS listener, over TLS the browser checks itself."""
    hank_id, hank = slack_id(lab, "hank"), person("hank")
    url = browser_login(lab, driver, "hank")
    state = httpx.URL(url).params["state"]
    callback = str(bot.runtime.settings.redirect_uri())
    before = dm_ts(driver, "hank")
    chrome.get(url)
    wait_for(chrome, lambda b: b.find_elements(By.NAME, "passwd"), "Microsoft's sign-in page")
    assert chrome.current_url.startswith(lab.descriptor["entra"]["authority"])
    login = chrome.find_element(By.NAME, "login")
    login.clear()
    login.send_keys(hank.upn)
    chrome.find_element(By.NAME, "passwd").send_keys(hank.password)
    chrome.find_element(By.ID, "idSIButton9").click()
    wait_for(chrome, lambda b: b.current_url == callback and b.find_elements(By.TAG_NAME, "h1")
             and b.find_element(By.TAG_NAME, "h1").text == "Sign-in finished", "the bot's callback page")
    page = chrome.find_element(By.TAG_NAME, "body").text
    assert "You can close this page and go back to Slack" in page and state not in chrome.page_source
    linked = new_dm(driver, "hank", "Your Entra account is linked as", before)
    assert linked["text"].startswith(f"Your Entra account is linked as {hank.upn} (roles: Helpdesk Administrator)")
    row = link_row(bot, hank_id)
    assert row is not None and (row.upn, row.oid) == (hank.upn, hank.entra_id)
    events = [e for e in bot.audit() if e.actor == hank_id and e.action in ("link_started", "linked")]
    assert [e.action for e in events][-2:] == ["link_started", "linked"]
    assert json.loads(events[-2].detail)["flow"] == "browser"


def test_the_real_browser_refuses_a_certificate_the_lab_ca_did_not_issue(chrome: WebDriver,
                                                                          tmp_path: Path) -> None:
    """The browser's trust is the lab CA only, not "anything goes": a listener whose certificate comes from
    another CA gets Chromium's certificate error page, so the test above would catch a TLS mistake."""
    stranger = LabCA(tmp_path).issue_server_cert("resetbot-callback", ips=("127.0.0.1",))

    def finish(query: Mapping[str, str], *, correlation_id: str) -> CallbackOutcome:
        return CallbackOutcome.INVALID

    listener = CallbackListener("127.0.0.1", 0, cert_file=stranger.cert_file, key_file=stranger.key_file,
                                finish=finish)
    listener.start()
    try:
        host, port = listener.address
        chrome.get(f"https://{host}:{port}/healthz")
        wait_for(chrome, lambda b: "ERR_CERT_AUTHORITY_INVALID" in b.page_source, "Chromium's certificate error")
    finally:
        listener.stop(timeout=5)


def test_a_reused_state_links_nothing_and_says_why(lab: Lab, bot: RunningBot, driver: SlackDriver,
                                                   browser: Browser) -> None:
    """The whole callback URL replayed (a reload, or someone who saw it): the state is used once."""
    hank_id = slack_id(lab, "hank")
    url = browser_login(lab, driver, "hank")
    before = dm_ts(driver, "hank")
    browser.sign_in(url, person("hank").upn, person("hank").password)
    new_dm(driver, "hank", "Your Entra account is linked as", before)
    linked = link_row(bot, hank_id)
    before = dm_ts(driver, "hank")
    action, fields = browser.posted
    again = browser.client.post(action, data=fields)
    assert again.status_code == 400 and "already used or has run out" in again.text
    assert_hardened_page(again, fields["code"], fields["state"])
    told = new_dm(driver, "hank", "A sign-in link of yours came back after it had been used", before)
    assert "`/resetbot login --browser`" in told["text"]
    after = link_row(bot, hank_id)
    assert linked is not None and after is not None and after.linked_at == linked.linked_at
    failed = [e for e in bot.audit() if e.action == "link_failed" and e.actor == hank_id]
    assert json.loads(failed[-1].detail)["reason"] == "state_used"
    # Someone who saw the callback's form replays it over and over: each is refused, but the agent's DMs (and the
    # audit trail) hear of it once per link, not once per replay. The DM is posted before the page answers.
    audited = len(bot.audit())
    for _ in range(5):
        assert browser.client.post(action, data=fields).status_code == 400
    spam = [m for m in driver.messages(driver.dm_channel("hank"))
            if m["ts"] not in before and m["text"].startswith("A sign-in link of yours came back")]
    assert len(spam) == 1, f"{len(spam)} DMs for one replayed link"
    assert len(bot.audit()) == audited, "every replay of one link wrote an audit row"


def test_a_newer_link_replaces_the_one_before(lab: Lab, bot: RunningBot, driver: SlackDriver,
                                              browser: Browser) -> None:
    """Only the latest link DMed can link: one left in an older DM (or forwarded) does nothing."""
    hank = person("hank")
    older, newer = browser_login(lab, driver, "hank"), browser_login(lab, driver, "hank")
    before = dm_ts(driver, "hank")
    page = browser.sign_in(older, hank.upn, hank.password)
    assert page.status_code == 400 and "already used or has run out" in page.text
    new_dm(driver, "hank", "A sign-in link of yours came back after it had been used or replaced by a newer one",
           before)
    before = dm_ts(driver, "hank")
    assert browser.sign_in(newer, hank.upn, hank.password).status_code == 200
    new_dm(driver, "hank", "Your Entra account is linked as", before)


def test_a_stale_state_links_nothing_and_says_why(lab: Lab, bot: RunningBot, driver: SlackDriver,
                                                  browser: Browser, entra: EntraControl) -> None:
    """The sign-in comes back after its 10 minutes (the bot's clock is moved on while it does)."""
    hank_id = slack_id(lab, "hank")
    url = browser_login(lab, driver, "hank")
    links = bot.services.links
    before, linked = dm_ts(driver, "hank"), link_row(bot, hank_id)
    tokens_before = len(entra.requests())
    links.clock = lambda: utcnow() + timedelta(minutes=11)
    try:
        page = browser.sign_in(url, person("hank").upn, person("hank").password)
    finally:
        links.clock = utcnow
    assert page.status_code == 400 and "already used or has run out" in page.text
    told = new_dm(driver, "hank", "Your sign-in came back after its link had run out", before)
    assert "nothing was linked" in told["text"]
    after = link_row(bot, hank_id)
    assert (after.linked_at if after else None) == (linked.linked_at if linked else None)
    assert not [r for r in entra.requests()[tokens_before:] if r.get("path", "").endswith("/token")], \
        "a stale sign-in's code was redeemed"
    failed = [e for e in bot.audit() if e.action == "link_failed" and e.actor == hank_id]
    assert json.loads(failed[-1].detail)["reason"] == "state_expired"


def test_a_sign_in_as_someone_else_is_refused_and_reported(lab: Lab, bot: RunningBot, driver: SlackDriver,
                                                           browser: Browser, entra: EntraControl) -> None:
    """hank's link, forwarded to alice (phished, say), who signs in with her own password."""
    entra.restore(person("alice"))  # her fixture password (another module may have reset it)
    register_redirect_uri(bot, entra)  # the restore reset the lab's Entra
    hank_id, security = slack_id(lab, "hank"), lab.descriptor["slack"]["channels"]["security"]
    alice_upn, hank_upn = person("alice").upn, person("hank").upn
    url = browser_login(lab, driver, "hank")
    before, linked = dm_ts(driver, "hank"), link_row(bot, hank_id)
    page = browser.sign_in(url, alice_upn, person("alice").password)
    assert page.status_code == 200 and alice_upn not in page.text
    told = new_dm(driver, "hank", "That sign-in was completed as", before)
    assert told["text"].startswith(f"That sign-in was completed as {alice_upn}, which isn't your own account "
                                   f"({hank_upn}), so nothing was linked and security has been told.")
    assert told["text"].endswith("Run `/resetbot login --browser` again and sign in as yourself; never pass a "
                                 "sign-in link on to anyone.")
    alert = driver.wait_for_message(security, lambda m: alice_upn in m["text"])
    assert f"<@{hank_id}>" in alert["text"]
    after = link_row(bot, hank_id)
    assert linked is not None and after is not None, "hank linked in the browser earlier in this module"
    assert (after.upn, after.encrypted_cache) == (linked.upn, linked.encrypted_cache)
    refused = [e for e in bot.audit() if e.action == "link_refused"]
    assert refused and json.loads(refused[-1].detail)["signed_in"] == alice_upn


def test_a_token_from_another_tenant_links_nothing(lab: Lab, bot: RunningBot, driver: SlackDriver,
                                                   browser: Browser, entra: EntraControl) -> None:
    hank_id, other = slack_id(lab, "hank"), "0badc0de-0000-4000-8000-000000000002"
    url = browser_login(lab, driver, "hank")
    before, linked = dm_ts(driver, "hank"), link_row(bot, hank_id)
    entra.faults(sign_in_tenant=other)
    try:
        page = browser.sign_in(url, person("hank").upn, person("hank").password)
    finally:
        entra.faults(sign_in_tenant="")
    assert page.status_code == 200
    told = new_dm(driver, "hank", "The sign-in did not link anything", before)
    assert f"made in the tenant {other}" in told["text"] and "Nothing was linked" in told["text"]
    assert "Run `/resetbot login --browser` to try again" in told["text"]
    after = link_row(bot, hank_id)
    assert (after.encrypted_cache if after else None) == (linked.encrypted_cache if linked else None)
    failed = [e for e in bot.audit() if e.action == "link_failed" and e.actor == hank_id]
    assert json.loads(failed[-1].detail)["reason"] == "wrong_tenant"


def test_the_signin_setting_decides_what_login_does(lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """``browser``: a plain ``/resetbot login`` sends the link; ``device``: ``--browser`` is refused in a sentence
    saying how to turn it on; a doubled option gets the usage line."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    links, rules = bot.services.links, bot.services.links.rules
    try:
        links.rules = dataclasses.replace(rules, signin=SignIn.BROWSER)
        assert browser_login(lab, driver, "hank", args="").startswith(lab.descriptor["entra"]["authority"])
        links.rules = dataclasses.replace(rules, signin=SignIn.DEVICE)
        driver.command("hank", "/resetbot", "login --browser", channel=helpdesk)
        refused = driver.wait_for_ephemeral("hank", lambda e: "browser" in e["text"])
        assert refused["text"] == ("Signing in in the browser isn't turned on here, so `/resetbot login` uses a "
                                   "sign-in code. Whoever runs resetbot turns it on with RESETBOT_SIGNIN=both.")
    finally:
        links.rules = rules
    ack = driver.command("hank", "/resetbot", "login --browser --browser", channel=helpdesk)
    assert "takes nothing after it, or `--browser`" in str(ack)

def test_an_approver_links_the_service_identity_in_the_browser(lab: Lab, bot: RunningBot, driver: SlackDriver,
                                                              browser: Browser, entra: EntraControl) -> None:
    """``/resetbot login --service --browser``: the link asks for the service identity, and only it links."""
    gina = person("gina")
    entra.restore(gina)  # her fixture password (another module may have reset it)
    register_redirect_uri(bot, entra)
    links, rules = bot.services.links, bot.services.links.rules
    links.rules = dataclasses.replace(rules, reset_identity=ResetIdentity.SERVICE, service_upn=gina.upn)
    try:
        url = browser_login(lab, driver, "ivan", args="--service --browser")
        assert httpx.URL(url).params["login_hint"] == gina.upn
        before = dm_ts(driver, "ivan")
        assert browser.sign_in(url, gina.upn, gina.password).status_code == 200
        linked = new_dm(driver, "ivan", "The service identity is linked as", before)
        assert linked["text"].startswith(f"The service identity is linked as {gina.upn} (roles: User Administrator)")
        assert links.acting_token(slack_id(lab, "hank")).upn == gina.upn
    finally:
        links.rules = rules
        with bot.runtime.session_factory.begin() as session:
            session.execute(sa.delete(AgentLink).where(col(AgentLink.slack_user) == SERVICE_LINK_KEY))

def test_the_callback_refuses_what_is_not_a_sign_in(lab: Lab, bot: RunningBot, browser: Browser) -> None:
    callback = str(bot.runtime.settings.redirect_uri())
    unknown = browser.client.post(callback, data={"state": "<script>alert(1)</script>", "code": "x"})
    assert unknown.status_code == 400 and "this request is not one" in unknown.text
    assert_hardened_page(unknown, "<script>", "alert(1)")
    in_url = browser.client.get(callback, params={"state": "<b>x</b>", "code": "x"})  # form_post only
    assert in_url.status_code == 400 and "<b>x</b>" not in in_url.text
    assert browser.client.post(callback, content=b"state=a&state=b",
                               headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 400
    assert browser.client.post(callback, data={"state": "s" * 300}).status_code == 400
    assert browser.client.post(callback, content=b'{"state": "x"}',
                               headers={"Content-Type": "application/json"}).status_code == 400
    assert browser.client.put(callback, data={"state": "x"}).status_code == 405
    big = browser.client.post(callback, data={"state": "s" * 100_000})
    assert big.status_code == 413


def test_an_error_in_the_callback_is_never_written_into_the_agents_dm(lab: Lab, bot: RunningBot,
                                                                      driver: SlackDriver, browser: Browser) -> None:
    """Whoever holds a live link (a forwarded DM) can post an ``error`` of their own with its state: the DM the
    agent gets must not carry their words (a phishing link in the bot's voice)."""
    hank_id = slack_id(lab, "hank")
    url = browser_login(lab, driver, "hank")
    state = httpx.URL(url).params["state"]
    before = dm_ts(driver, "hank")
    page = browser.client.post(str(bot.runtime.settings.redirect_uri()),
                               data={"state": state, "error": "<https://evil.example/|Verify your account here>",
                                     "error_description": "AADSTS50000: <https://evil.example/|here>"})
    assert page.status_code == 200 and "evil" not in page.text
    told = new_dm(driver, "hank", "The sign-in did not link anything", before)
    assert "evil.example" not in told["text"] and "Verify your account" not in told["text"]
    failed = [e for e in bot.audit() if e.action == "link_failed" and e.actor == hank_id]
    assert "evil.example" not in failed[-1].detail


def test_a_callback_with_a_state_never_issued_is_audited_once_a_minute(lab: Lab, bot: RunningBot,
                                                                      browser: Browser) -> None:
    """Someone probing the callback with made-up states: on record, with the page's reference, but not one audit
    row per request (anyone who reaches the callback could otherwise flood the trail)."""
    callback = str(bot.runtime.settings.redirect_uri())
    links = bot.services.links
    links.clock = lambda: utcnow() + timedelta(hours=1)  # past any row an earlier test wrote
    try:
        audited = len(bot.audit())
        pages = [browser.client.post(callback, data={"state": f"made-up-{i}", "code": "x"}) for i in range(4)]
        assert all(p.status_code == 400 for p in pages)
        rows = [e for e in bot.audit()[audited:] if e.action == "link_failed"]
        assert len(rows) == 1, f"{len(rows)} audit rows for four made-up states"
        detail = json.loads(rows[0].detail)
        assert detail["reason"] == "state_unknown" and rows[0].actor == "unknown"
        assert rows[0].correlation_id and rows[0].correlation_id in pages[0].text
        assert "made-up" not in rows[0].detail
        links.clock = lambda: utcnow() + timedelta(hours=1, minutes=2)
        browser.client.post(callback, data={"state": "made-up-later", "code": "x"})
        assert len([e for e in bot.audit()[audited:] if e.action == "link_failed"]) == 2
    finally:
        links.clock = utcnow


def test_a_client_that_never_finishes_its_tls_handshake_blocks_no_one(lab: Lab, browser: Browser) -> None:
    """Slowloris on the Socket Mode listener: connections that open and say nothing (or drip their TLS
    handshake) must not stop an agent's browser from getting its page."""
    cert = lab.ca.issue_server_cert("resetbot-callback", ips=("127.0.0.1",))

    def finish(query: Mapping[str, str], *, correlation_id: str) -> CallbackOutcome:
        return CallbackOutcome.INVALID

    listener = CallbackListener("127.0.0.1", 0, cert_file=cert.cert_file, key_file=cert.key_file, finish=finish,
                                request_s=2.0)
    listener.start()
    silent = [socket.create_connection(listener.address) for _ in range(3)]
    # More connections than the listener has threads, each dripping a TLS record one byte at a time (each byte
    # well inside the socket timeout): each is cut off when its time for one request is up.
    stop = threading.Event()

    def drip(conn: socket.socket) -> None:
        conn.sendall(b"\x16\x03\x01\x02\x00")  # a handshake record of 512 bytes, never finished
        with contextlib.suppress(OSError):
            while not stop.wait(0.3):
                conn.sendall(b"\x00")

    drippers = [socket.create_connection(listener.address) for _ in range(CALLBACK_THREADS + 2)]
    threads = [threading.Thread(target=drip, args=(c,), daemon=True) for c in drippers]
    for t in threads:
        t.start()
    try:
        host, port = listener.address
        answer = browser.client.get(f"https://{host}:{port}/healthz", timeout=6)
        assert answer.status_code == 200
    finally:
        stop.set()
        for s in silent + drippers:
            s.close()
        listener.stop(timeout=5)


def test_a_reset_works_with_the_browser_linked_token(lab: Lab, bot: RunningBot, driver: SlackDriver,
                                                     browser: Browser, entra: EntraControl) -> None:
    hank_id = slack_id(lab, "hank")
    if link_row(bot, hank_id) is None:
        url = browser_login(lab, driver, "hank")
        before = dm_ts(driver, "hank")
        browser.sign_in(url, person("hank").upn, person("hank").password)
        new_dm(driver, "hank", "Your Entra account is linked as", before)
    link = link_row(bot, hank_id)
    assert isinstance(link, AgentLink)
    try:
        request, request_id = approved_request(lab, driver, bot, "bob", "locked out after holiday")
        done = driver.wait_for_message(lab.descriptor["slack"]["channels"]["helpdesk"],
                                       lambda m: "Done:" in m["text"], thread_ts=str(request["ts"]), timeout=30)
        assert "must change it at next sign-in" in done["text"]
        wait_until(lambda: any(e.action == "succeeded" for e in bot.audit(request_id)), what="the success on record")
        resets = [o for o in entra.call("GET", "/operations") if o["upn"] == person("bob").upn]
        assert bot.services.reset.wait_idle(timeout=30)
    finally:
        entra.restore(person("bob"))  # his fixture password back, for the modules after this one
    assert resets and resets[-1]["caller"] == person("hank").upn, "the reset was not made as hank's linked account"


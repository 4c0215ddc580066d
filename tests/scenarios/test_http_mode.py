"""HTTP mode: the real bot (``bot.serve.Serving``, what ``resetbot run`` builds) behind cheroot, with the lab's
Slack POSTing signed requests to it instead of using Socket Mode. A whole reset works; forged, stale and
replayed requests are refused and change nothing."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

import bot.serve
from bot.models import AuditEvent, ResetRequest
from bot.serve import HttpIntake, Serving
from bot.settings import SlackMode
from bot.wiring import build_runtime
from lab.people import person
from lab.slack.driver import SlackDriver, SlackDriverError
from lab.stack import Lab
from tests.clients.graphlab import EntraControl
from tests.scenarios.harness import lab_settings, link_agent, wait_until
from tests.scenarios.test_browser_login import LINK_RE, dm_ts, new_dm
from tests.scenarios.test_request_approval import request_for, slack_id

#: The reverse proxy's https URL agents' browsers would reach (TLS ends there; it passes /auth/callback through).
PUBLIC_URL = "https://resetbot.lab.invalid"


@dataclass
class HttpBot:
    serving: Serving
    base_url: str

    def requests(self) -> list[ResetRequest]:
        with self.serving.runtime.session_factory() as session:
            return list(session.exec(select(ResetRequest)).all())

    def audit(self) -> list[AuditEvent]:
        with self.serving.runtime.session_factory() as session:
            return list(session.exec(select(AuditEvent)).all())


@pytest.fixture(scope="module")
def http_bot(lab: Lab, driver: SlackDriver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpBot]:
    db: Path = tmp_path_factory.mktemp("http") / "resetbot.db"
    settings = lab_settings(lab, f"sqlite:///{db}", slack_mode=SlackMode.HTTP, slack_app_token=None,
                            slack_signing_secret=lab.descriptor["slack"]["signing_secret"],
                            http_host="127.0.0.1", http_port=0, signin="both", public_url=PUBLIC_URL)
    serving = Serving(settings, build_runtime(settings))
    serving.start()
    assert isinstance(serving.intake, HttpIntake)
    host, port = serving.intake.address
    base_url = f"http://{host}:{port}"
    try:
        answer = driver.set_request_url(f"{base_url}/slack/events")
        assert answer["verified"], answer
        link_agent(lab, driver, "hank")
        yield HttpBot(serving, base_url)
    finally:
        driver.set_request_url(None)
        assert serving.stop("end of module")


@pytest.fixture(autouse=True)
def _signed(driver: SlackDriver) -> Iterator[None]:
    yield
    driver.faults(http_signing="ok")


def test_a_whole_reset_works_over_signed_http(lab: Lab, http_bot: HttpBot, driver: SlackDriver) -> None:
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    request = request_for(lab, driver, "alice", "over http")
    driver.click("mona", helpdesk, str(request["ts"]), "request_approve")
    done = driver.wait_for_message(helpdesk, lambda m: "Done:" in m["text"], thread_ts=str(request["ts"]), timeout=30)
    assert "must change it at next sign-in" in done["text"]
    sent = driver.http_requests()
    assert {r["type"] for r in sent} >= {"slash_commands", "interactive"}
    assert all(r["status"] == 200 and r["headers"]["X-Slack-Signature"].startswith("v0=") for r in sent)
    assert not driver.envelopes(), "nothing went over Socket Mode"
    wait_until(lambda: any(r.verdict for r in http_bot.requests()), what="the verdict stored")
    assert http_bot.serving.runtime.services.reset.wait_idle(timeout=30)


def test_app_home_opened_arrives_as_a_json_event(http_bot: HttpBot, driver: SlackDriver) -> None:
    ack = driver.open_home("hank")
    assert ack["acked"] and ack.get("http_status") == 200
    driver.wait_for_home_view("hank")
    event = driver.http_requests()[-1]
    assert event["type"] == "events_api" and event["headers"]["Content-Type"] == "application/json"


def test_healthz_answers_and_other_paths_do_not(http_bot: HttpBot) -> None:
    with httpx.Client(base_url=http_bot.base_url, trust_env=False) as client:
        health = client.get("/healthz")
        assert (health.status_code, health.text) == (200, "ok\n")
        assert client.get("/slack/events").status_code == 404
        assert client.post("/elsewhere", content=b"x").status_code == 404


def _nothing_changed(http_bot: HttpBot, driver: SlackDriver, *, requests: int, audit: int, ephemerals: int) -> None:
    assert len(http_bot.requests()) == requests, "a request row was made"
    assert len(http_bot.audit()) == audit, "an audit row was written"
    from_bot = [e for e in driver.ephemeral("hank") if e["source"] != "slack"]
    assert len(from_bot) == ephemerals, "the bot answered a request it should have refused"


@pytest.mark.parametrize("forgery", ["unsigned", "wrong_secret", "stale"])
def test_forged_and_stale_requests_are_refused_and_change_nothing(lab: Lab, http_bot: HttpBot, driver: SlackDriver,
                                                                  forgery: str, caplog: pytest.LogCaptureFixture
                                                                  ) -> None:
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    caplog.set_level(logging.INFO)
    requests, audit = len(http_bot.requests()), len(http_bot.audit())
    driver.faults(http_signing=forgery)
    ack = driver.command("hank", "/reset", f"<@{slack_id(lab, 'bob')}|bob> forged {forgery}", channel=helpdesk)
    assert ack.get("http_status") == 401 and not ack["acked"]
    assert driver.messages(helpdesk) == []
    _nothing_changed(http_bot, driver, requests=requests, audit=audit, ephemerals=0)
    notice = driver.wait_for_ephemeral("hank", lambda e: e["source"] == "slack")
    assert notice["text"] == '/reset failed with the error "dispatch_failed"'
    # The operator sees one line per refusal, naming the likely cause; nothing of the request itself.
    refusals = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused a request to")]
    assert refusals and "RESETBOT_SLACK_SIGNING_SECRET" in refusals[0]
    assert f"forged {forgery}" not in caplog.text and "v0=" not in caplog.text


def test_a_replayed_request_is_refused_and_changes_nothing(lab: Lab, http_bot: HttpBot, driver: SlackDriver) -> None:
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    request_for(lab, driver, "bob", "asked once")
    sent = driver.http_requests()
    index = max(i for i, r in enumerate(sent) if r["type"] == "slash_commands" and "asked+once" in r["body"])
    assert sent[index]["status"] == 200
    assert http_bot.serving.work.wait_idle(timeout=15), "the genuine /reset finished answering"
    requests, audit = len(http_bot.requests()), len(http_bot.audit())
    messages = driver.messages(helpdesk)
    ephemerals = len([e for e in driver.ephemeral("hank") if e["source"] != "slack"])
    replayed = driver.replay(index)
    assert replayed["status"] == 401
    assert (replayed["body"], replayed["headers"]) == (sent[index]["body"], sent[index]["headers"])
    _nothing_changed(http_bot, driver, requests=requests, audit=audit, ephemerals=ephemerals)
    assert driver.messages(helpdesk) == messages


def test_a_request_url_that_does_not_answer_the_challenge_is_not_used(http_bot: HttpBot, driver: SlackDriver) -> None:
    with pytest.raises(SlackDriverError, match="409"):
        driver.set_request_url(f"{http_bot.base_url}/healthz")
    with pytest.raises(SlackDriverError, match="400"):
        driver.set_request_url("ftp://example.test/")
    # The good URL stays in use.
    assert driver.http_requests()[-1]["url"].endswith("/healthz")
    driver.command("hank", "/reset-status", "")
    assert driver.http_requests()[-1]["url"].endswith("/slack/events")


def _raw_exchange(base_url: str, head: bytes, body: bytes = b"") -> bytes:
    """Send ``head`` and the first bytes of a body over a raw socket and read the answer: what an attacker does,
    declaring far more than they send. A server that waited for the rest would never answer (the 20 s bound
    is a failure, not a measurement)."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        # The server may answer from the head alone and close: its answer is what counts, not the rest of ours.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head + body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
    return answer


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_a_body_declared_over_the_cap_gets_413_before_it_is_read(http_bot: HttpBot) -> None:
    """A 100 MiB body, declared and only begun: 413 at once, from the headers alone. It used to be read whole
    (bolt reads Content-Length bytes) before the signature was even looked at, by each of the server's threads."""
    requests, audit = len(http_bot.requests()), len(http_bot.audit())
    head = (b"POST /slack/events HTTP/1.1\r\nHost: bot\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\n\r\n" % (100 * 1024 * 1024))
    answer = _raw_exchange(http_bot.base_url, head, b"token=" + b"x" * 4096)
    assert _status(answer) == 413, answer[:200]
    assert (len(http_bot.requests()), len(http_bot.audit())) == (requests, audit)


@pytest.mark.parametrize("declared", [b"-1", b"-5000000", b"12abc"])
def test_a_content_length_that_is_no_length_gets_400_and_nothing_is_read(http_bot: HttpBot, declared: bytes) -> None:
    """A negative Content-Length passed the cap (it is under it) and cheroot handed bolt a reader that took
    ``read(-1)`` as "everything": an unsigned body was read until the client stopped (the answer came only when
    the server gave up waiting, 408). It is no length at all: 400 at once, unread."""
    requests, audit = len(http_bot.requests()), len(http_bot.audit())
    head = (b"POST /slack/events HTTP/1.1\r\nHost: bot\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: " + declared + b"\r\n\r\n")
    # Less than the socket buffers hold, so the sending never waits for a server that has already answered.
    answer = _raw_exchange(http_bot.base_url, head, b"token=" + b"x" * (32 * 1024))
    assert _status(answer) == 400, answer[:200]
    assert (len(http_bot.requests()), len(http_bot.audit())) == (requests, audit)


def test_a_chunked_body_over_the_cap_gets_413(http_bot: HttpBot) -> None:
    """No Content-Length to refuse by: the chunks are counted as they come, and reading stops at the cap."""
    head = (b"POST /slack/events HTTP/1.1\r\nHost: bot\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (256 * 1024, b"x" * 256 * 1024)
    answer = _raw_exchange(http_bot.base_url, head, chunk * 5)
    assert _status(answer) == 413, answer[:200]


def test_headers_over_the_cap_get_413(http_bot: HttpBot) -> None:
    head = (b"POST /slack/events HTTP/1.1\r\nHost: bot\r\nX-Padding: " + b"p" * (128 * 1024)
            + b"\r\nContent-Length: 0\r\n\r\n")
    assert _status(_raw_exchange(http_bot.base_url, head)) == 413


def test_a_signed_chunked_request_under_the_cap_is_served(http_bot: HttpBot, lab: Lab) -> None:
    """Reading chunks ourselves must not refuse what is allowed: a small chunked body reaches the signature check
    whole (and a correct signature over it is accepted)."""
    secret = lab.descriptor["slack"]["signing_secret"].encode()
    body = b"type=url_verification"  # bolt answers a signed one 200 (the challenge), an unsigned one 401
    stamp = str(int(time.time()))
    signature = "v0=" + hmac.new(secret, f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    head = (b"POST /slack/events HTTP/1.1\r\nHost: bot\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"X-Slack-Request-Timestamp: " + stamp.encode() + b"\r\nX-Slack-Signature: " + signature.encode()
            + b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    assert _status(_raw_exchange(http_bot.base_url, head, chunked)) == 200


def test_the_browser_sign_in_callback_is_served_by_the_same_server(lab: Lab, http_bot: HttpBot,
                                                                   driver: SlackDriver) -> None:
    """In HTTP mode no listener of its own: the Slack server takes ``/auth/callback`` (behind the reverse proxy
    that ends TLS for ``RESETBOT_PUBLIC_URL``), and a browser sign-in links hank through it."""
    entra = EntraControl(lab)
    entra.call("POST", "/redirect_uris", {"redirect_uri": f"{PUBLIC_URL}/auth/callback"})
    before = dm_ts(driver, "hank")
    driver.command("hank", "/resetbot", "login --browser", channel=lab.descriptor["slack"]["channels"]["helpdesk"])
    link = driver.wait_for_message(driver.dm_channel("hank"), lambda m: m["ts"] not in before
                                   and LINK_RE.search(m["text"]) is not None)
    match = LINK_RE.search(link["text"])
    assert match
    _, posted = entra.browser_sign_in(match.group(1), person("hank").upn, person("hank").password)
    with httpx.Client(base_url=http_bot.base_url, trust_env=False) as proxy:  # what the reverse proxy forwards
        page = proxy.post("/auth/callback", data=posted)
        assert page.status_code == 200 and "Sign-in finished" in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'none'")
        assert proxy.post("/auth/callback", data=posted).status_code == 400, "a state is used once"
        assert proxy.post("/auth/callback", content=b"x" * (2 * 1024 * 1024),
                          headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 413
    new_dm(driver, "hank", "Your Entra account is linked as", before)


def test_clients_dripping_their_requests_hold_no_thread_past_the_deadline(
        http_bot: HttpBot, monkeypatch: pytest.MonkeyPatch) -> None:
    """Slowloris on HTTP mode: more connections than the server has threads, each dripping its request a byte at a
    time (each byte well inside cheroot's per-read timeout). Each is cut off when its time for one request is up,
    so Slack's next request is served. Before, every thread stayed held for as long as the drip went on. The HTTP
    mode server is built here as in the bot, with a shorter deadline so that the test takes seconds."""
    monkeypatch.setattr(bot.serve, "HTTP_REQUEST_S", 2.0)
    intake = HttpIntake(http_bot.serving.app, http_bot.serving.settings.model_copy(update={"http_port": 0}))
    intake.start()
    host, port = intake.address
    stop = threading.Event()

    def drip(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(b"POST /slack/events HTTP/1.1\r\nHost: bot\r\n")
            while not stop.wait(0.3):
                conn.sendall(b"X")

    drippers = [socket.create_connection((host, port)) for _ in range(bot.serve.HTTP_THREADS + 2)]
    threads = [threading.Thread(target=drip, args=(c,), daemon=True) for c in drippers]
    for t in threads:
        t.start()
    try:
        answer = httpx.get(f"http://{host}:{port}/healthz", timeout=8)
        assert answer.status_code == 200
        timed_out = drippers[0].recv(200)
        assert timed_out.startswith(b"HTTP/1.1 408"), timed_out
    finally:
        stop.set()
        for s in drippers:
            s.close()
        intake.stop(timeout=5)

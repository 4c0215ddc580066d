"""Run the real bot against the lab: Settings from the descriptor, bolt over Socket Mode, a real database.

Scenario tests act as people through the lab's Slack driver and assert what people see (threads, DMs,
ephemeral messages, App Home) and what the audit trail says.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from cryptography.fernet import Fernet
from slack_bolt.adapter.socket_mode import SocketModeHandler
from sqlalchemy import make_url
from sqlmodel import Session, select

from bot.app import create_app
from bot.models import AuditEvent, ResetRequest
from bot.serve import socket_mode_handler
from bot.services.registry import Services
from bot.settings import Settings
from bot.wiring import Runtime, build_runtime
from handlers.work import WorkPool
from lab.slack.driver import Message, SlackDriver
from lab.stack import Lab

#: One token-cache key per test run: a bot restarted on the same database still reads the links it stored.
LAB_TOKEN_CACHE_KEY = Fernet.generate_key().decode()
#: One sealing key per test run, as replicas share one (PostgreSQL needs it: ``Settings.require_sealing``).
LAB_SEALING_KEY = Fernet.generate_key().decode()
PG_URL = os.environ.get("RESETBOT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def duo_settings(lab: Lab) -> dict[str, Any]:
    """The settings that point the bot at the lab's Duo: changed from a real Duo only in host and CA."""
    duo = lab.descriptor["duo"]
    return {"duo_api_host": duo["api_host"], "duo_integration_key": duo["integration_key"],
            "duo_secret_key": duo["secret_key"], "duo_ca_file": duo["ca_file"]}


def lab_settings(lab: Lab, database_url: str, **overrides: Any) -> Settings:
    d = lab.descriptor
    slack, entra, ad = d["slack"], d["entra"], d["ad"]
    values: dict[str, Any] = {
        "slack_bot_token": slack["bot_token"], "slack_app_token": slack["app_token"],
        "slack_api_base": slack["api_base"], "requests_channel": slack["channels"]["helpdesk"],
        "security_channel": slack["channels"]["security"], "ops_channel": slack["channels"]["ops"],
        "database_url": database_url,
        "entra_authority": entra["authority"], "graph_base": entra["graph_base"],
        "entra_client_id": entra["app"]["client_id"], "entra_client_secret": entra["app"]["client_secret"],
        "entra_ca_file": entra["ca_file"],
        "entra_public_client_id": entra["public_client_id"], "token_cache_key": LAB_TOKEN_CACHE_KEY,
        "sealing_key": LAB_SEALING_KEY,
        "ldap_url": ad["ldaps_url"], "ldap_bind": ad["reader"]["bind"], "ldap_password": ad["reader"]["password"],
        "ldap_base_dn": ad["base_dn"], "ldap_ca_file": ad["ca_file"],
        # The lab's writeback account has exactly Write lockoutTime besides Reset Password: enough to unlock.
        "ldap_unlock_bind": ad["writeback"]["bind"], "ldap_unlock_password": ad["writeback"]["password"],
        "sweep_seconds": 600,  # tests call sweep() themselves with the time they want
        # A module's stories share one bot and one agent, and reset the same few people again and again: the abuse
        # limits would refuse them by the second story. tests/scenarios/test_limits.py sets them as production does.
        "limit_agent_per_hour": 10_000, "limit_team_per_hour": 100_000, "limit_repeat_hours": 0,
        # The stories before caller verification are told without it; tests/scenarios/test_verification.py
        # turns it on (as the product's default is).
        "verify_required": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class RunningBot:
    runtime: Runtime
    handler: SocketModeHandler

    @property
    def services(self) -> Services:
        return self.runtime.services

    def requests(self) -> list[ResetRequest]:
        with self.runtime.session_factory() as session:
            return list(session.exec(select(ResetRequest)).all())

    def audit(self, request_id: str | None = None) -> list[AuditEvent]:
        with self.runtime.session_factory() as session:
            query = select(AuditEvent).order_by(AuditEvent.seq)  # type: ignore[arg-type]
            if request_id:
                query = query.where(AuditEvent.request_id == request_id)
            return list(session.exec(query).all())

    def session(self) -> Session:
        return self.runtime.session_factory()


@contextmanager
def running_bot(settings: Settings, driver: SlackDriver) -> Iterator[RunningBot]:
    runtime = build_runtime(settings)
    runtime.pin_groups()  # as `resetbot run` does before it serves
    # create_app's own pool, made here so that closing the bot ends its threads as `resetbot run`'s stop does: left
    # to the garbage collector, a closed bot's idle workers live on into later tests, which count threads.
    work = WorkPool()
    handler = socket_mode_handler(create_app(settings, runtime.services, work_pool=work), settings)
    before = len([c for c in driver.connections() if c.get("ready")])
    handler.connect()  # type: ignore[no-untyped-call]
    driver.wait_connected(before + 1)
    try:
        yield RunningBot(runtime, handler)
    finally:
        close_promptly(handler)
        work.shutdown(wait=False)
        runtime.close()


def close_promptly(handler: SocketModeHandler) -> None:
    """``handler.close()`` without the idle seconds slack-sdk's built-in client spends in it (up to four per bot
    stopped, so about two per test module): its close waits to take the socket's receive lock, which the reader
    holds through a ``recv()`` that times out only after 3 s, and then for its message loop, which polls its queue
    once a second. Shutting the socket down (the plain socket's shutdown: TLS then reads EOF, b"") wakes the reader,
    which sees its session ended and lets go; a None in the queue wakes the loop, which sees the client closed
    (None is what the loop skips). The close itself, and what the bot's own stop does, are unchanged."""
    client = handler.client
    client.closed = True
    client.auto_reconnect_enabled = False
    client.current_session_state.terminated = True
    session = client.current_session
    if session is not None and session.sock is not None:
        with contextlib.suppress(OSError):
            socket.socket.shutdown(session.sock, socket.SHUT_RDWR)
    client.message_queue.put(None)
    handler.close()  # type: ignore[no-untyped-call]


def verifying_bot(lab: Lab, driver: SlackDriver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBot]:
    """A module's bot with caller verification on (as the product's default is), every method offered, the lab's
    Duo, and hank linked: the body of the verification stories' ``bot`` fixtures."""
    db: Path = tmp_path_factory.mktemp("bot") / "resetbot.db"
    settings = lab_settings(lab, f"sqlite:///{db}", verify_required=True,
                            verify_methods="slack-code,duo-push,slack-confirm,callback", **duo_settings(lab))
    with running_bot(settings, driver) as running:
        link_agent(lab, driver, "hank")
        yield running


@contextmanager
def pg_schema_url(sqlite_url: str | None) -> Iterator[str]:
    """``sqlite_url`` as is, or (None) a URL to a fresh private schema in the test PostgreSQL, dropped after."""
    if sqlite_url is not None:
        yield sqlite_url
        return
    schema = f"t_{secrets.token_hex(6)}"
    conninfo = make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def thread(driver: SlackDriver, channel: str, ts: str) -> list[Message]:
    return [m for m in driver.messages(channel, thread_ts=ts) if m["ts"] != ts]


def wait_until(probe: Callable[[], Any], *, timeout: float = 15.0, what: str = "a condition") -> Any:
    """Poll an in-process condition (a database row, say) without a fixed sleep."""
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def request_row(bot: RunningBot, thread_ts: str) -> ResetRequest:
    """The request whose thread is ``thread_ts``. The bot records the thread's ts in its own transaction right
    after Slack answers the post, so a test that has just seen the message may be a moment ahead of the row."""
    found: ResetRequest = wait_until(lambda: next((r for r in bot.requests() if r.thread_ts == thread_ts), None),
                                     what=f"the request of thread {thread_ts}")
    return found


_CODE = re.compile(r"code \*([A-Z0-9-]+)\*")


def link_agent(lab: Lab, driver: SlackDriver, key: str) -> None:
    """``key`` links their own Entra account the way an agent does: `/resetbot login`, the code by DM, and
    the sign-in completed in the lab's Entra (as that person would in a browser)."""
    before = {m["ts"] for m in driver.messages(driver.dm_channel(key))}
    driver.command(key, "/resetbot", "login", channel=lab.descriptor["slack"]["channels"]["helpdesk"])
    dm = driver.dm_channel(key)
    code_dm = driver.wait_for_message(dm, lambda m: m["ts"] not in before and bool(_CODE.search(m["text"])))
    code = _CODE.search(code_dm["text"])
    assert code is not None
    entra = lab.descriptor["entra"]
    upn = next(p["upn"] for p in lab.descriptor["people"] if p["key"] == key)
    with httpx.Client(verify=ssl.create_default_context(cafile=entra["ca_file"]), trust_env=False) as client:
        answer = client.post(entra["control"] + "/device/approve", json={"user_code": code.group(1), "upn": upn})
        assert answer.status_code == 200, answer.text
    # A "linked" DM from an earlier bot's sign-in (another module's) must not count: only this one's.
    driver.wait_for_message(dm, lambda m: m["ts"] not in before and m["text"].startswith(
        "Your Entra account is linked as"), timeout=30)

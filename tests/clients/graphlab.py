"""Fixtures for the Entra/Graph client tests: the session lab's Entra stand-in, driven through its control API.

Loaded by the test modules with ``pytest_plugins``; nothing here is autouse (each module cleans up itself),
so registering it never starts a lab for tests that do not ask for one.
"""

from __future__ import annotations

import logging
import re
import secrets
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from typing import Any

import httpx
import ldap3
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from bot.clients.entra_auth import AppTokens, DelegatedTokens, LinkedAccount
from bot.clients.graph import GraphClient
from lab.people import Person, person
from lab.stack import Lab

_SAFE = "bcdfghjkmnpqrstvwxz"  # no vowels: a random tail never spells a banned word

#: Microsoft's sign-in page as a browser without script reads it: its hidden inputs and its form's action.
_INPUT = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
_ACTION = re.compile(r'<form method="post" action="([^"]+)"')


@dataclass
class EntraControl:
    """The Entra stand-in's control API (``entra.control``) and the lab facts the tests read."""

    lab: Lab

    @property
    def d(self) -> dict[str, Any]:
        entra: dict[str, Any] = self.lab.descriptor["entra"]
        return entra

    def _client(self) -> httpx.Client:
        return httpx.Client(verify=ssl.create_default_context(cafile=self.d["ca_file"]), trust_env=False,
                            timeout=30)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        with self._client() as client:
            answer = client.request(method, self.d["control"] + path, json=body)
        assert answer.status_code == 200, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json()

    def faults(self, **faults: Any) -> None:
        self.call("POST", "/faults", faults)

    def reset(self, *, history: bool = False) -> None:
        self.call("POST", "/reset", {"history": history})

    def requests(self, kind: str | None = None) -> list[dict[str, Any]]:
        logged: list[dict[str, Any]] = self.call("GET", "/requests")
        return [r for r in logged if kind is None or r["kind"] == kind]

    def operations(self) -> list[dict[str, Any]]:
        ops: list[dict[str, Any]] = self.call("GET", "/operations")
        return ops

    def assign(self, key: str, role: str, **how: Any) -> None:
        """Give ``key`` an Entra role (``eligible``, ``administrative_unit``, ``custom``, ``remove``: see
        lab/entra/README.md); ``reset()`` puts the fixture's roles back."""
        self.call("POST", "/roles", {"upn": person(key).upn, "role": role, **how})

    def role_group(self, name: str, *, members: tuple[str, ...] = (), owners: tuple[str, ...] = (),
                   eligible_members: tuple[str, ...] = (), eligible_owners: tuple[str, ...] = ()) -> None:
        """Make a role-assignable group whose members, owners and PIM-for-Groups eligible people are these
        people (by key); ``assign_group`` gives it roles; ``reset()`` removes it."""
        self.call("POST", "/groups", {"name": name, "members": [person(k).upn for k in members],
                                      "owners": [person(k).upn for k in owners],
                                      "eligible_members": [person(k).upn for k in eligible_members],
                                      "eligible_owners": [person(k).upn for k in eligible_owners]})

    def assign_group(self, group: str, role: str, **how: Any) -> None:
        """Give the role-assignable group ``group`` an Entra role (active, or ``eligible``)."""
        self.call("POST", "/roles", {"group": group, "role": role, **how})

    def consent(self, *app_roles: str) -> None:
        """Admin-consent exactly these application permissions for the bot's app; ``reset()`` undoes it."""
        self.call("POST", "/consent", {"app_roles": list(app_roles)})

    def approve(self, user_code: str, key: str) -> None:
        self.call("POST", "/device/approve", {"user_code": user_code, "upn": person(key).upn})

    # -- the bot's clients, built as the composition root will build them ----------------------------------
    def app_tokens(self, *, secret: str | None = None) -> AppTokens:
        return AppTokens(authority=self.d["authority"], client_id=self.d["app"]["client_id"],
                         client_secret=SecretStr(secret or self.d["app"]["client_secret"]),
                         ca_file=self.d["ca_file"])

    def graph(self, *, tokens: AppTokens | None = None, **kw: Any) -> GraphClient:
        kw.setdefault("backoff_s", 0.05)
        return GraphClient(self.d["graph_base"], tokens or self.app_tokens(), ca_file=self.d["ca_file"],
                           timeout=30, **kw)

    def delegated(self, key: SecretStr) -> DelegatedTokens:
        return DelegatedTokens(authority=self.d["authority"], client_id=self.d["public_client_id"], key=key,
                               ca_file=self.d["ca_file"])

    def link(self, tokens: DelegatedTokens, key: str) -> LinkedAccount:
        """A linked account for person ``key``: the code is approved before the bot polls (no waiting)."""
        flow = tokens.start_device_flow()
        self.approve(flow.user_code, key)
        return tokens.wait_for_device_flow(flow, timeout=30)

    # -- helpers ------------------------------------------------------------------------------------------
    @staticmethod
    def fresh_password() -> str:
        """A password no test used before (history never refuses it), complex enough for AD and the cloud."""
        return "Tide!" + "".join(secrets.choice(_SAFE) for _ in range(8)) + "Qz7"

    @staticmethod
    def leaks(secret: str, records: list[logging.LogRecord], *objects: object) -> list[str]:
        """Where ``secret`` shows: log messages (formatted, and their args), and str()/repr() of objects, their
        fields and exception chains."""
        found = []
        for r in records:
            if secret in r.getMessage() or secret in repr(r.args) or (r.exc_text and secret in r.exc_text):
                found.append(f"log {r.name}: {r.getMessage()[:80]}")
        seen: set[int] = set()

        def visit(obj: object, where: str) -> None:
            if id(obj) in seen or obj is None:
                return
            seen.add(id(obj))
            if secret in str(obj) or secret in repr(obj):
                found.append(f"{where}: {type(obj).__name__}")
            if isinstance(obj, BaseException):
                visit(obj.__cause__, where + ".__cause__")
                visit(obj.__context__, where + ".__context__")
                for name, value in vars(obj).items():
                    visit(value, f"{where}.{name}")
                for arg in obj.args:
                    visit(arg, where + ".args")

        for i, obj in enumerate(objects):
            visit(obj, f"object {i}")
        return found


    @staticmethod
    def run_in_thread(target: Any) -> tuple[threading.Thread, dict[str, Any]]:
        """Run ``target()`` in a thread; the dict gets ``result`` or ``error``."""
        out: dict[str, Any] = {}

        def body() -> None:
            try:
                out["result"] = target()
            except Exception as e:
                out["error"] = e

        thread = threading.Thread(target=body, daemon=True)
        thread.start()
        return thread, out

    # -- browser sign-in ------------------------------------------------------------------------------------
    def browser_sign_in(self, url: str, upn: str, password: str) -> tuple[str, dict[str, str]]:
        """Open Microsoft's page, sign in; returns the page's text and the fields its form would post to the app."""
        with httpx.Client(verify=ssl.create_default_context(cafile=self.d["ca_file"]), trust_env=False,
                          timeout=30) as client:
            page = client.get(url)
            if page.status_code != 200:
                return page.text, {}
            action = _ACTION.search(page.text)
            assert action, page.text
            fields = {unescape(k): unescape(v) for k, v in _INPUT.findall(page.text)}
            answer = client.post(page.url.join(unescape(action.group(1))), data={**fields, "login": upn,
                                                                                  "passwd": password})
        if 'name="hiddenform"' not in answer.text:
            return answer.text, {}
        return answer.text, {unescape(k): unescape(v) for k, v in _INPUT.findall(answer.text)}

    # -- AD, for assertions only -----------------------------------------------------------------------------
    def pwd_last_set(self, p: Person) -> int:
        conn = self.lab.ad.admin_connection()
        try:
            conn.search(p.dn, "(objectClass=user)", search_scope=ldap3.BASE, attributes=["pwdLastSet"])
            return int(conn.entries[0].pwdLastSet.raw_values[0])
        finally:
            conn.unbind()

    def restore(self, p: Person) -> None:
        """The fixture password back in AD (an admin reset) and the stand-in's history forgotten."""
        conn = self.lab.ad.admin_connection()
        try:
            assert conn.extend.microsoft.modify_password(p.dn, p.password), conn.result
        finally:
            conn.unbind()
        self.reset(history=True)


@pytest.fixture
def clean_entra(entra_control: EntraControl) -> Iterator[None]:
    """Faults off and logs cleared around each test (modules opt in with ``usefixtures``)."""
    entra_control.reset()
    yield
    entra_control.reset()


@pytest.fixture(scope="session")
def entra_control(lab: Lab) -> EntraControl:
    return EntraControl(lab)


@pytest.fixture(scope="session")
def cache_key() -> SecretStr:
    return SecretStr(Fernet.generate_key().decode())


@pytest.fixture(scope="session")
def agent_tokens(entra_control: EntraControl, cache_key: SecretStr) -> DelegatedTokens:
    return entra_control.delegated(cache_key)


@pytest.fixture(scope="session")
def linked_hank(entra_control: EntraControl, agent_tokens: DelegatedTokens) -> LinkedAccount:
    """hank (Helpdesk Administrator) linked once for the session."""
    return entra_control.link(agent_tokens, "hank")


@pytest.fixture
def hank_token(agent_tokens: DelegatedTokens, linked_hank: LinkedAccount) -> str:
    return agent_tokens.token_for(linked_hank).access_token


@pytest.fixture
def graph(entra_control: EntraControl) -> Iterator[GraphClient]:
    with entra_control.graph() as client:
        yield client


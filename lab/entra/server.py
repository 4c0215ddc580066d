"""EntraStandIn: the Entra ID + Microsoft Graph stand-in, served over HTTPS on a free loopback port.

It runs its own event loop in a thread so that synchronous callers (the lab command, pytest fixtures) can
start it, use it with blocking clients such as msal, and stop it. At start it performs the "initial sync":
it reads from the lab AD, as the reader account, what Entra Connect would have synced (objectSid,
objectGUID, pwdLastSet) and fails loudly if the AD is not there.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import threading
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import ldap3
from aiohttp import web
from ldap3.core.exceptions import LDAPException
from ldap3.protocol.formatters.formatters import format_sid

from lab.ad.ldap import connect
from lab.entra import config
from lab.entra.control import Control, request_log_middleware
from lab.entra.directory import EntraUser, OnPremFacts, immutable_id
from lab.entra.graph import Graph
from lab.entra.groups import Groups
from lab.entra.identity import Identity
from lab.entra.methods import Methods
from lab.entra.passwords import PasswordHistory
from lab.entra.pimgroups import PimForGroups
from lab.entra.rolemanagement import RoleManagement
from lab.entra.signin import SignIn
from lab.entra.state import State
from lab.entra.tokens import AppCredentials, TokenIssuer
from lab.entra.wire import utcnow
from lab.entra.writeback import WritebackAgent
from lab.errors import LabError
from lab.people import PEOPLE, Person
from lab.pki import LabCA

_START_TIMEOUT_S = 15.0
_FILETIME_EPOCH = dt.datetime(1601, 1, 1, tzinfo=dt.UTC)


def filetime_to_datetime(value: Any) -> dt.datetime | None:
    """AD's pwdLastSet (100-ns intervals since 1601, 0 = must change) as a UTC datetime."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    ticks = int(value or 0)
    return _FILETIME_EPOCH + dt.timedelta(microseconds=ticks // 10) if ticks > 0 else None


def initial_sync(ad: dict[str, Any], people: Sequence[Person]) -> dict[str, OnPremFacts]:
    """What Entra Connect's first sync reads from AD, per person key (synced people only)."""
    try:
        conn = connect(ad["reader"]["bind"], ad["reader"]["password"], ca_file=Path(ad["ca_file"]),
                       url=ad["ldaps_url"])
    except LDAPException as exc:
        raise LabError(f"The Entra stand-in cannot read the lab AD at {ad['ldaps_url']} ({type(exc).__name__}): "
                       "start the lab AD first.") from exc
    facts: dict[str, OnPremFacts] = {}
    try:
        for p in people:
            if p.dn is None:
                continue
            conn.search(p.dn, "(objectClass=user)", search_scope=ldap3.BASE,
                        attributes=["objectSid", "objectGUID", "pwdLastSet"])
            if not conn.entries:
                raise LabError(f"The lab AD has no {p.dn}: is it seeded from the same people fixture?")
            entry = conn.entries[0]
            facts[p.key] = OnPremFacts(
                object_sid=str(format_sid(entry.objectSid.raw_values[0])),
                immutable_id=immutable_id(entry.objectGUID.raw_values[0]),
                pwd_last_set=filetime_to_datetime(entry.pwdLastSet.value),
            )
    finally:
        conn.unbind()
    return facts


class EntraStandIn:
    """Entra ID (identity platform + Graph v1.0 subset) with password writeback into the lab AD.

    ``ad`` is the LAB.md "ad" descriptor section (LabAD.descriptor()); ``ca`` issues the HTTPS certificate.
    The tenant id and app ids are stable (lab.entra.config); secrets, the app certificate and the token
    signing key are new at every start. ``device_code_interval_s`` is the polling interval device flows are given
    (Microsoft's 5 s by default; a test run uses less, see ``lab.stack.Lab``).
    """

    def __init__(self, ad: dict[str, Any], ca: LabCA, people: Sequence[Person] = PEOPLE, *,
                 app_roles: tuple[str, ...] = config.APP_ROLES,
                 device_code_interval_s: int = config.DEVICE_CODE_INTERVAL_S) -> None:
        low, high = config.DEVICE_CODE_INTERVAL_RANGE_S
        if not low <= device_code_interval_s <= high:
            raise LabError(f"A device-code interval is whole seconds from {low} to {high}, "
                           f"not {device_code_interval_s}.")
        self._ad = ad
        self._ca = ca
        self._people = tuple(people)
        self._app_roles = app_roles
        self._device_code_interval_s = device_code_interval_s
        self._state: State | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> None:
        """Sync from AD, serve on 127.0.0.1:<free port>, and return once discovery answers over TLS."""
        if self._thread is not None:
            raise LabError("The Entra stand-in is already running.")
        facts = initial_sync(self._ad, self._people)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        cert = self._ca.issue_server_cert(f"entra-{port}", ips=("127.0.0.1",))
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(cert.cert_file, cert.key_file)
        self._state = self._build_state(f"https://127.0.0.1:{port}", facts)
        self._ready.clear()
        self._thread = threading.Thread(target=self._serve, args=(sock, tls), name=f"entra-stand-in:{port}",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S) or self._error is not None:
            self.stop()
            raise LabError(f"The Entra stand-in did not start: {self._error!r}")
        self._wait_until_it_answers()

    def _build_state(self, base: str, facts: dict[str, OnPremFacts]) -> State:
        now = utcnow()
        history = PasswordHistory()
        users: dict[str, EntraUser] = {}
        for p in self._people:
            onprem = facts.get(p.key)
            changed = onprem.pwd_last_set if onprem and onprem.pwd_last_set else now
            users[p.entra_id] = EntraUser(person=p, onprem=onprem, created=now - dt.timedelta(days=30),
                                          last_password_change=changed)
            history.seed(p.key, p.password)
        return State(
            base=base,
            credentials=AppCredentials.generate(),
            issuer=TokenIssuer(tenant_id=config.TENANT_ID, authority=f"{base}/{config.TENANT_ID}"),
            users=users,
            history=history,
            agent=WritebackAgent(self._ad, history),
            initial_passwords={p.key: p.password for p in self._people},
            app_roles=self._app_roles,
            device_code_interval_s=self._device_code_interval_s,
        )

    def _app(self, state: State) -> web.Application:
        graph = Graph(state)
        app = web.Application(middlewares=[request_log_middleware(state), graph.middleware])
        app.add_routes(Control(state).routes())
        app.add_routes(Identity(state).routes())
        app.add_routes(SignIn(state, self._ad).routes())
        app.add_routes(graph.routes())
        app.add_routes(Methods(state).routes())
        app.add_routes(RoleManagement(state).routes())
        app.add_routes(PimForGroups(state).routes())
        app.add_routes(Groups(state).routes())
        app.add_routes(graph.fallback_routes())
        return app

    def _serve(self, sock: socket.socket, tls: ssl.SSLContext) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            assert self._state is not None
            self._runner = web.AppRunner(self._app(self._state), access_log=None)
            loop.run_until_complete(self._runner.setup())
            loop.run_until_complete(web.SockSite(self._runner, sock, ssl_context=tls).start())
        except BaseException as exc:  # reported to start(), which raises it as a LabError
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._shutdown())
            loop.close()

    async def _shutdown(self) -> None:
        if self._state is not None:
            for task in list(self._state.tasks):
                task.cancel()
            await asyncio.gather(*self._state.tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    def _wait_until_it_answers(self) -> None:
        url = f"{self.authority}/v2.0/.well-known/openid-configuration"
        context = ssl.create_default_context(cafile=str(self._ca.ca_file))
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context),
                                             urllib.request.ProxyHandler({}))
        try:
            with opener.open(url, timeout=_START_TIMEOUT_S) as resp:
                if resp.status == 200:
                    return
        except OSError as exc:
            self.stop()
            raise LabError(f"The Entra stand-in does not answer at {url}: {exc}") from exc
        self.stop()
        raise LabError(f"The Entra stand-in answered {url} with an error.")

    def stop(self) -> None:
        """Stop serving, cancel running operations, and join the thread (idempotent)."""
        thread, loop = self._thread, self._loop
        if thread is not None and loop is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=_START_TIMEOUT_S)
        self._thread = None
        self._loop = None
        self._runner = None

    def __enter__(self) -> EntraStandIn:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- access -----------------------------------------------------------------------------------------
    @property
    def state(self) -> State:
        if self._state is None:
            raise LabError("The Entra stand-in has not been started.")
        return self._state

    @property
    def authority(self) -> str:
        return self.state.authority

    def descriptor(self) -> dict[str, Any]:
        """The LAB.md "entra" section."""
        s = self.state
        creds = s.credentials
        return {
            "tenant_id": s.tenant_id,
            "authority": s.authority,
            "graph_base": s.graph_base,
            "ca_file": str(self._ca.ca_file),
            "app": {
                "client_id": config.APP_CLIENT_ID,
                "client_secret": creds.client_secret,
                "certificate_pem": creds.certificate_pem,
                "private_key_pem": creds.private_key_pem,
                "thumbprint": creds.thumbprint,
            },
            "public_client_id": config.PUBLIC_CLIENT_ID,
            "control": s.control,
        }

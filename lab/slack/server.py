"""``SlackStandIn``: the lab's Slack, one aiohttp server on a free loopback port in its own thread.

Why this exists: tests, the demo and the lab command all need a Slack that the real slack-sdk and
slack-bolt can use changed only in base URL, started in-process, on a port the OS picks (so runs can be
parallel), and gone without a trace when stopped. One port serves the Web API (``/api/``), the Socket Mode
links (``/link/``), response URLs (``/commands/``, ``/actions/``) and the control API (``/control``).

Given the lab's CA, a second port serves the same over TLS (``tls_api_base``): a Web API call that arrives there
gets a ``wss://`` Socket Mode link on that port. slack_sdk's Socket Mode client, given a proxy, always speaks TLS
inside the tunnel (real Slack's links are ``wss://…:443``), so the bot behind a proxy needs this port.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from aiohttp import web

from lab.people import PEOPLE, Person
from lab.pki import LabCA

from .credentials import Credentials
from .driver_api import ControlApi
from .httpdelivery import HttpDelivery
from .ids import BOT_USER_ID, CHANNEL_NAMES, TEAM_ID, channel_id_for, user_id_for
from .socketmode import SocketHub
from .webapi import WebApi
from .workspace import Workspace

#: How long start() waits for the server to bind and answer.
START_TIMEOUT_S = 15.0


class SlackStandIn:
    """The lab's Slack. ``start()`` / ``stop()`` or use it as a context manager."""

    def __init__(self, *, people: Iterable[Person] = PEOPLE, host: str = "127.0.0.1", ca: LabCA | None = None) -> None:
        self._people = tuple(people)
        self._host = host
        self._ca = ca
        self._tls_port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._hub: SocketHub | None = None
        self._http: HttpDelivery | None = None
        self._workspace: Workspace | None = None
        self._creds: Credentials | None = None
        self._port: int | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Bind a free port, serve from a background thread, and return once the server answers."""
        if self._thread is not None:
            raise RuntimeError("the Slack stand-in is already running")
        self._creds = Credentials.generate()
        self._workspace = Workspace(self._people)
        self._loop = asyncio.new_event_loop()
        bound: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._serve, args=(self._loop, bound), name="lab-slack", daemon=True)
        self._thread.start()
        try:
            self._port = bound.result(timeout=START_TIMEOUT_S)
            self._wait_answering()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Close every connection, stop the server and join its thread; safe to call twice."""
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=START_TIMEOUT_S)
        self._thread = None
        self._loop = None
        self._port = None
        self._tls_port = None

    def __enter__(self) -> SlackStandIn:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _serve(self, loop: asyncio.AbstractEventLoop, bound: concurrent.futures.Future[int]) -> None:
        asyncio.set_event_loop(loop)
        try:
            try:
                loop.run_until_complete(self._startup(bound))
            except BaseException as exc:
                if not bound.done():
                    bound.set_exception(exc)
                return
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    async def _startup(self, bound: concurrent.futures.Future[int]) -> None:
        assert self._workspace is not None
        assert self._creds is not None
        ws = self._workspace
        self._hub = hub = SocketHub(lambda: ws.faults)
        webapi = WebApi(ws, hub, self._creds)
        self._http = http = HttpDelivery(lambda: ws.faults, self._creds.signing_secret)
        control = ControlApi(ws, hub, webapi, self._creds, http)
        app = web.Application()
        app.add_routes([web.route("*", "/api/{method}", webapi.handle), web.get("/link/", hub.handle_link),
                        *control.routes()])
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, 0)
        await site.start()
        port = int(self._runner.addresses[0][1])
        hub.ws_base = f"ws://{self._host}:{port}"
        control.base_url = f"http://{self._host}:{port}"
        if self._ca is not None:
            issued = self._ca.issue_server_cert("slack", ips=(self._host,))
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(issued.cert_file, issued.key_file)
            sock = socket.socket()
            sock.bind((self._host, 0))
            self._tls_port = int(sock.getsockname()[1])
            await web.SockSite(self._runner, sock, ssl_context=tls).start()
            hub.wss_base = f"wss://{self._host}:{self._tls_port}"
        bound.set_result(port)

    async def _shutdown(self) -> None:
        if self._hub is not None:
            await self._hub.close()
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()
        current = asyncio.current_task()
        leftovers = [t for t in asyncio.all_tasks() if t is not current]
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)

    def _wait_answering(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        url = f"{self.control_url}/health"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - our own loopback URL
                    if json.loads(resp.read()).get("ok"):
                        return
            except (urllib.error.URLError, OSError, ValueError):
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.02)

    # ------------------------------------------------------------------ what others need to know

    @property
    def running(self) -> bool:
        return self._port is not None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the Slack stand-in is not running")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def api_base(self) -> str:
        """What to pass as ``WebClient(base_url=...)``; ends with ``/api/`` as slack-sdk expects."""
        return f"{self.base_url}/api/"

    @property
    def tls_api_base(self) -> str | None:
        """The Web API over TLS (certificate from the lab's CA), or None without a CA."""
        return None if self._tls_port is None else f"https://{self._host}:{self._tls_port}/api/"

    @property
    def control_url(self) -> str:
        return f"{self.base_url}/control"

    @property
    def credentials(self) -> Credentials:
        if self._creds is None:
            raise RuntimeError("the Slack stand-in has not been started")
        return self._creds

    @property
    def workspace(self) -> Workspace:
        """The live state, for in-process assertions (its methods take the lock)."""
        if self._workspace is None:
            raise RuntimeError("the Slack stand-in has not been started")
        return self._workspace

    def descriptor(self) -> dict[str, Any]:
        """The ``slack`` section of the lab descriptor (LAB.md), exactly."""
        creds = self.credentials
        return {
            "api_base": self.api_base,
            "bot_token": creds.bot_token,
            "app_token": creds.app_token,
            "signing_secret": creds.signing_secret,
            "team_id": TEAM_ID,
            "bot_user_id": BOT_USER_ID,
            "channels": {name: channel_id_for(name) for name in CHANNEL_NAMES},
            "control": self.control_url,
            **({"tls_api_base": self.tls_api_base} if self.tls_api_base else {}),
        }

    def slack_ids(self) -> dict[str, str]:
        """Person key → Slack user id, for the people who have Slack (``slack=True``)."""
        return {p.key: user_id_for(p.key) for p in self._people if p.slack}

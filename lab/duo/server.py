"""DuoStandIn: the Duo Auth API stand-in, served over HTTPS (the lab CA) on a free loopback port.

duo-client connects to ``api_host`` on the given port and checks the certificate's DNS names itself (not its IP
addresses), so the stand-in's API host is ``localhost``, which the lab certificate names. Like the Entra stand-in
it runs its own event loop in a thread, so synchronous callers can start, use and stop it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import threading
import urllib.request
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from aiohttp import web

from lab.duo.api import AuthAPI
from lab.duo.control import Control
from lab.duo.state import DuoState
from lab.errors import LabError
from lab.people import PEOPLE, Person
from lab.pki import LabCA

API_HOST = "localhost"
_START_TIMEOUT_S = 15.0


class DuoStandIn:
    """Duo's Auth API for one integration whose keys are new at every start; people enrolled per the fixture."""

    def __init__(self, ca: LabCA, people: Sequence[Person] = PEOPLE) -> None:
        self._ca = ca
        self._people = tuple(people)
        self._state: DuoState | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise LabError("The Duo stand-in is already running.")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        cert = self._ca.issue_server_cert(f"duo-{port}", ips=("127.0.0.1",))
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(cert.cert_file, cert.key_file)
        self._state = DuoState.from_people(self._people, api_host=API_HOST, port=port)
        self._ready.clear()
        self._thread = threading.Thread(target=self._serve, args=(sock, tls), name=f"duo-stand-in:{port}",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S) or self._error is not None:
            self.stop()
            raise LabError(f"The Duo stand-in did not start: {self._error!r}")
        self._wait_until_it_answers()

    def _serve(self, sock: socket.socket, tls: ssl.SSLContext) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            assert self._state is not None
            app = web.Application()
            app.add_routes(AuthAPI(self._state).routes())
            app.add_routes(Control(self._state).routes())
            self._runner = web.AppRunner(app, access_log=None)
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
        url = f"{self.base}/auth/v2/ping"
        context = ssl.create_default_context(cafile=str(self._ca.ca_file))
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context),
                                             urllib.request.ProxyHandler({}))
        try:
            with opener.open(url, timeout=_START_TIMEOUT_S) as resp:
                if json.load(resp).get("stat") == "OK":
                    return
        except OSError as exc:
            self.stop()
            raise LabError(f"The Duo stand-in does not answer at {url}: {exc}") from exc
        self.stop()
        raise LabError(f"The Duo stand-in answered {url} with an error.")

    def stop(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is not None and loop is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=_START_TIMEOUT_S)
        self._thread = None
        self._loop = None
        self._runner = None

    def __enter__(self) -> DuoStandIn:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def state(self) -> DuoState:
        if self._state is None:
            raise LabError("The Duo stand-in has not been started.")
        return self._state

    @property
    def base(self) -> str:
        return f"https://{API_HOST}:{self.state.port}"

    def descriptor(self) -> dict[str, Any]:
        """The LAB.md "duo" section. ``api_host`` is ``host:port``: duo-client takes the port separately."""
        s = self.state
        return {
            "api_host": f"{s.api_host}:{s.port}",
            "integration_key": s.integration_key,
            "secret_key": s.secret_key,
            "ca_file": str(self._ca.ca_file),
            "control": f"{self.base}/control",
        }

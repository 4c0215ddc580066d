"""Serving Slack until told to stop, over Socket Mode or signed HTTP, and stopping without dropping work.

``resetbot run`` and the tests build the same ``Serving``, so what is tested is what runs. Stopping happens in
an order that loses nothing a person is waiting for:

1. stop taking work: close the Socket Mode connection (Slack sends the next request to another replica, or
   retries it) or stop accepting HTTP connections (requests already received are answered first);
2. stop the scheduler, letting a sweep that is running finish;
3. let the work pool finish what it admitted (a /reset being checked, an approval being recorded; handlers/work.py);
4. let resets in flight reach their verdict and post it (``Runtime.close``), then close every client.

All four steps share one bound (``RESETBOT_DRAIN_SECONDS``), counted from the signal: a process manager kills
a process that takes longer than its grace period anyway, and the log then says what was still running.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk.errors import SlackApiError

from bot.app import create_app, slack_client
from bot.callback import CALLBACK_PATH, CallbackListener, WsgiApp, callback_app
from bot.clients.slack_probe import SlackRefusedError
from bot.http_guard import HEALTH_PATH, ServedPort, body_refusal, cheroot_server
from bot.jobs import start_scheduler
from bot.services.replay import ReplayGuard
from bot.settings import Settings, SignIn, SlackMode
from bot.wiring import Runtime
from handlers.work import WorkPool, work_lanes

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler  # imported once connected: see bot.jobs

log = logging.getLogger(__name__)

#: Where Slack sends every HTTP request (commands, interactivity, events): bolt's default path.
SLACK_EVENTS_PATH = "/slack/events"
#: Threads answering HTTP requests; each only runs the ack path (the work runs in the work pool).
HTTP_THREADS = 10
#: Seconds one request may take to arrive, first byte to last (``bot.http_deadline``): Slack sends each in well under
#: one, and gives up on its answer after three, so a request still arriving then is no use; a client dripping bytes
#: is cut off then instead of holding a thread. It bounds what one slow connection holds, not how many there are:
#: the TLS-terminating reverse proxy HTTP mode needs in front must buffer whole requests (README, HTTP mode).
HTTP_REQUEST_S = 3.0
#: The largest request body taken, about a thousand times Slack's usual (a view submission with its state is the
#: biggest it sends): anyone may POST here, and a body is read before its signature can be checked, so what
#: one unsigned request may cost in memory is this, per server thread. More gets 413 without being read.
MAX_BODY_BYTES = 1024 * 1024

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class Intake(Protocol):
    """Where work comes in from Slack: started once, stopped once (after which nothing new is taken)."""

    def start(self) -> None: ...

    def stop(self, timeout: float) -> None: ...

    def describe(self) -> str: ...


def socket_mode_handler(app: App, settings: Settings) -> SocketModeHandler:
    """bolt's Socket Mode handler for ``app``: ``apps.connections.open`` and the WebSocket itself go through the
    outbound proxy if one is set (a CONNECT tunnel, then TLS with the Web API client's context)."""
    assert settings.slack_app_token is not None
    # The handler's own WebClient asks apps.connections.open with the app-level token, so it carries none itself.
    return SocketModeHandler(app, settings.slack_app_token.get_secret_value(),
                             web_client=slack_client(settings, None), proxy=settings.proxy_url())


class SocketModeIntake:
    """Socket Mode: the bot connects out with the app-level token; closing the link stops deliveries to us."""

    def __init__(self, app: App, settings: Settings) -> None:
        self._handler = socket_mode_handler(app, settings)

    def start(self) -> None:
        """Open the connection; a refused app-level token raises SlackRefusedError, Slack out of reach OSError."""
        try:
            self._handler.connect()  # type: ignore[no-untyped-call]
        except SlackApiError as e:
            raise SlackRefusedError(str(e.response.get("error"))) from None

    def stop(self, timeout: float) -> None:
        self._handler.close()  # type: ignore[no-untyped-call]

    def describe(self) -> str:
        return "Socket Mode"


def http_app(app: App, callback: WsgiApp | None = None) -> WsgiApp:
    """bolt's WSGI adapter at ``SLACK_EVENTS_PATH``, plus ``GET /healthz`` and (browser sign-in on) the sign-in
    callback at ``CALLBACK_PATH``; a body over ``MAX_BODY_BYTES`` gets 413."""
    slack = SlackRequestHandler(app, path=SLACK_EVENTS_PATH)

    def serve(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"ok\n"]
        if callback is not None and environ.get("PATH_INFO") == CALLBACK_PATH:
            return callback(environ, start_response)  # bounds its own (smaller) body
        refusal = body_refusal(environ, MAX_BODY_BYTES)
        if refusal is not None:
            log.warning("refused a request to %s: %s (its body is over %d bytes, or its length is no length)",
                        environ.get("PATH_INFO"), refusal, MAX_BODY_BYTES)
            start_response(refusal, [("Content-Type", "text/plain; charset=utf-8"), ("Connection", "close")])
            return [b"request body too large\n" if refusal.startswith("413") else b"bad request\n"]

        def answer(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            if status.startswith("401"):
                # bolt logs its refusals at INFO with the body: silenced (app.py). One line, nothing of the request.
                log.warning("refused a request to %s: unsigned, wrongly signed, stale or replayed (if every "
                            "request is refused, check RESETBOT_SLACK_SIGNING_SECRET)", environ.get("PATH_INFO"))
            return start_response(status, headers, *rest)

        return slack(environ, answer)

    return serve


class HttpIntake:
    """HTTP mode: cheroot serves bolt's WSGI adapter; ``stop`` closes the port and answers what came in first."""

    def __init__(self, app: App, settings: Settings, callback: WsgiApp | None = None) -> None:
        # Checked by cheroot from the headers alone: a larger declared body is answered 413 and never read.
        self._port = ServedPort(cheroot_server((settings.http_host, settings.http_port), http_app(app, callback),
                                               threads=HTTP_THREADS, max_body=MAX_BODY_BYTES,
                                               request_s=HTTP_REQUEST_S), "http")

    def start(self) -> None:
        self._port.start()

    @property
    def address(self) -> tuple[str, int]:
        return self._port.address

    def stop(self, timeout: float) -> None:
        self._port.stop(timeout)

    def describe(self) -> str:
        host, port = self.address
        return f"HTTP on http://{host}:{port}{SLACK_EVENTS_PATH}"


class Serving:
    """The app, its work pool, the scheduler and the intake for one running bot."""

    def __init__(self, settings: Settings, runtime: Runtime, *, scheduler: bool = True) -> None:
        self.settings = settings
        self.runtime = runtime
        self.work = WorkPool(work_lanes(settings.work_threads))
        guard = ReplayGuard(runtime.session_factory.begin) if settings.slack_mode == SlackMode.HTTP else None
        self.app = create_app(settings, runtime.services, replay_guard=guard, work_pool=self.work)
        browser = settings.signin != SignIn.DEVICE
        finish = runtime.services.links.finish_browser_sign_in
        self.intake: Intake = (HttpIntake(self.app, settings, callback_app(finish) if browser else None)
                               if settings.slack_mode == SlackMode.HTTP else SocketModeIntake(self.app, settings))
        #: Socket Mode with browser sign-in: the HTTPS listener agents' browsers come back to.
        self.callback: CallbackListener | None = None
        if browser and settings.slack_mode == SlackMode.SOCKET:
            assert settings.callback_cert_file is not None and settings.callback_key_file is not None
            self.callback = CallbackListener(settings.callback_host, settings.callback_port,
                                             cert_file=settings.callback_cert_file,
                                             key_file=settings.callback_key_file, finish=finish)
        self._with_scheduler = scheduler
        self.scheduler: BackgroundScheduler | None = None
        self._stopped = False

    def start(self) -> None:
        """Take work from Slack, then start the scheduler; raises OSError if the HTTP port (or the callback's)
        cannot be bound."""
        if self.callback is not None:
            self.callback.start()
            host, port = self.callback.address
            log.info("serving the sign-in callback on https://%s:%d%s", host, port, CALLBACK_PATH)
        self.intake.start()
        if self._with_scheduler:
            self.scheduler = start_scheduler(self.runtime.services, sweep_seconds=self.settings.sweep_seconds)
        log.info("serving Slack over %s", self.intake.describe())

    def stop(self, reason: str = "asked to") -> bool:
        """Stop as the module docstring says; True if everything in flight finished within the drain bound."""
        if self._stopped:
            return True
        self._stopped = True
        bound = self.settings.drain_seconds
        deadline = time.monotonic() + bound

        def left() -> float:
            return max(0.0, deadline - time.monotonic())

        log.info("stopping (%s): no new work is taken from Slack; waiting up to %.0f s for work in flight",
                 reason, bound)
        self.intake.stop(timeout=left())
        if self.callback is not None:
            self.callback.stop(timeout=left())
        scheduler = self.scheduler
        if scheduler is not None and not _within(lambda: scheduler.shutdown(wait=True), left()):
            log.warning("a scheduled job (a sweep, follow-up or health round) was still running when the bound ran "
                        "out; whatever it had not finished is picked up again after the restart")
        clean = self.work.wait_idle(timeout=left())
        if not clean:
            log.warning("a Slack listener's work was still running after %.0f s", bound)
        self.work.shutdown(wait=False)
        self.runtime.close(drain_s=left())  # waits for resets, then closes clients
        clean = self.runtime.services.reset.wait_idle(timeout=0) and clean
        if clean:
            log.info("stopped: every reset in flight posted its verdict")
        else:
            log.warning("stopped with work still running after %.0f s (RESETBOT_DRAIN_SECONDS)", bound)
        return clean


def _within(step: Callable[[], object], timeout: float) -> bool:
    """Run ``step`` in a helper thread and wait at most ``timeout``; True if it finished. A step that overruns is
    left to finish on its own (the thread is a daemon: it dies with the process)."""
    done = threading.Thread(target=step, name="stop-step", daemon=True)
    done.start()
    done.join(timeout)
    return not done.is_alive()


def serve_until_signalled(serving: Serving, signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
                          *, serving_started: Callable[[], None] | None = None) -> bool:
    """Start, call ``serving_started`` (``resetbot run``'s collector settles then: ``bot.cli.start_heap``), wait
    for SIGTERM or SIGINT (main thread only), then stop gracefully. Returns ``Serving.stop``'s."""
    received: list[str] = []
    wake = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if received:
            log.warning("%s again: already stopping, waiting for work in flight", name)
            return
        received.append(name)
        wake.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in signals}
    try:
        serving.start()
        if serving_started is not None:
            serving_started()
        while not wake.wait(0.5):
            pass
        return serving.stop(received[0])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

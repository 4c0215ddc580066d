"""The composition root for Slack: the only module that knows both slack_bolt and the services."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from slack_bolt import App, BoltRequest, BoltResponse
from slack_sdk import WebClient

from bot.clients.http import tls_context
from bot.services.registry import Services
from bot.services.replay import ReplayGuard
from bot.settings import Settings, SlackMode
from handlers import register
from handlers.context import REPLAY_CHECK_KEY, CorrelatedApp
from handlers.work import WorkPool

#: bolt logs the whole body and signature of a request it refuses at INFO: an operator's log must not keep them.
_BOLT_VERIFICATION_LOGGER = "slack_bolt.RequestVerification"


def web_client(settings: Settings) -> WebClient:
    """The bot's Web API client (its bot token)."""
    return slack_client(settings, settings.slack_bot_token.get_secret_value())


def slack_client(settings: Settings, token: str | None) -> WebClient:
    """A Web API client with ``token``, through the outbound proxy if one is set, trusting
    ``RESETBOT_SLACK_CA_FILE`` (or the system's store). Socket Mode's client takes its TLS context from here too.

    slack_sdk reads ``HTTPS_PROXY``-style variables itself when given no proxy (and urllib's default opener does
    as well): unlike the Microsoft clients, the Slack ones cannot be kept from the environment entirely.
    """
    return WebClient(token=token, base_url=settings.slack_api_base, proxy=settings.proxy_url(),
                     ssl=tls_context(settings.slack_ca_file))


def create_app(settings: Settings, services: Services, *, client: WebClient | None = None,
               replay_guard: ReplayGuard | None = None, work_pool: WorkPool | None = None) -> App:
    """A bolt App wired with every handler; built on demand, never at import time.

    In HTTP mode bolt verifies each request's signature and age with the signing secret, and ``replay_guard``
    (required there) refuses a signed request served before. ``work_pool`` runs the listeners' work after their
    ack (handlers/work.py), so that whoever stops the bot can wait for the work still running.

    ``process_before_response=True``: bolt runs each listener on the thread that received the request and sends
    its ack as soon as the listener returns. Our listeners only ack and hand their work to ``work_pool``, so the
    ack never waits for a free thread of a pool busy with Graph or AD (with ``False``, bolt would queue even the
    ack behind the listener pool and poll for it every 10 ms).

    ``name`` is given because without it bolt names the app after its caller's file with ``inspect.stack()``,
    which reads the source of every frame and scans every loaded module: a quarter of a second at start in a
    process that has loaded the bot's ~1,300 modules.
    """
    signing_secret = ""
    if settings.slack_mode == SlackMode.HTTP:
        if settings.slack_signing_secret is None or replay_guard is None:
            raise ValueError("HTTP mode needs the signing secret and a replay guard")
        signing_secret = settings.slack_signing_secret.get_secret_value()
        logging.getLogger(_BOLT_VERIFICATION_LOGGER).setLevel(logging.WARNING)
    app = CorrelatedApp(name="resetbot", client=client or web_client(settings), signing_secret=signing_secret,
                        token_verification_enabled=True, process_before_response=True)
    if replay_guard is not None:
        # Global middleware runs after bolt's own (signature check first): only verified requests are remembered.
        app.use(refuse_replays(replay_guard))
    # The work runs in this pool, each task in its request's context: its log lines carry the correlation id.
    register(app, services, work_pool or WorkPool())
    return app


def refuse_replays(guard: ReplayGuard) -> Callable[..., BoltResponse]:
    """A bolt middleware refusing HTTP requests whose signature was already served, without a database write
    before the ack (bot.services.replay): a replay to this process is answered 401 at once; the check across
    replicas is handed to the work pool in the request's context, and runs there before any of the request's work.
    Every listener's side effects run through ``handlers.work.on_ack_path``'s work, which is what makes that enough:
    a listener that acted on the ack path itself would have to call the check first."""

    def middleware(req: BoltRequest, next: Callable[[], BoltResponse]) -> BoltResponse:
        if req.mode != "http":
            return next()
        signature = (req.headers.get("x-slack-signature") or [""])[0]
        if not signature or not guard.new_here(signature):
            return BoltResponse(status=401, body={"error": "invalid request"})
        req.context[REPLAY_CHECK_KEY] = functools.partial(guard.first_sight, signature)
        return next()

    return middleware

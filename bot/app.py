"""The composition root for Slack: the only module that knows both slack_bolt and the services."""

from __future__ import annotations

from slack_bolt import App
from slack_sdk import WebClient

from bot.logs import ContextExecutor
from bot.services.registry import Services
from bot.settings import Settings
from handlers import register
from handlers.context import CorrelatedApp


def web_client(settings: Settings) -> WebClient:
    return WebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_base)


def create_app(settings: Settings, services: Services, *, client: WebClient | None = None) -> App:
    """A bolt App wired with every handler; built on demand, never at import time."""
    # Listeners run in this pool, each in its request's context: their log lines carry its correlation id.
    app = CorrelatedApp(client=client or web_client(settings), token_verification_enabled=True,
                        process_before_response=False,
                        listener_executor=ContextExecutor(max_workers=5, thread_name_prefix="resetbot-listener"))
    register(app, services)
    return app

"""The composition root for Slack: the only module that knows both slack_bolt and the services."""

from __future__ import annotations

from slack_bolt import App
from slack_sdk import WebClient

from bot.settings import Settings
from handlers import register


def create_app(settings: Settings) -> App:
    """A bolt App wired with every handler; built on demand, never at import time."""
    client = WebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_base)
    app = App(client=client, token_verification_enabled=True, process_before_response=False)
    register(app)
    return app

"""All configuration, from the environment or a ``.env`` file, validated at start.

Secrets are ``SecretStr`` and unwrapped only where a client is built. A missing secret or one still
holding a placeholder fails fast with one sentence per setting, before anything connects.
"""

from __future__ import annotations

from typing import Self

from pydantic import SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError

_PLACEHOLDERS = ("changeme", "change-me", "xoxb-your", "xapp-your", "todo", "replace-me", "...")


def _is_placeholder(value: str) -> bool:
    low = value.strip().lower()
    return not low or any(low.startswith(p) for p in _PLACEHOLDERS)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RESETBOT_", env_file=".env", extra="ignore")

    #: Bot token (xoxb-…), from the app's OAuth page.
    slack_bot_token: SecretStr
    #: App-level token (xapp-…) with connections:write, for Socket Mode.
    slack_app_token: SecretStr
    #: Web API base URL; only the lab changes it.
    slack_api_base: str = "https://slack.com/api/"

    @model_validator(mode="after")
    def _no_placeholders(self) -> Self:
        problems = []
        if _is_placeholder(self.slack_bot_token.get_secret_value()) or not (
            self.slack_bot_token.get_secret_value().startswith("xoxb-")
        ):
            problems.append("RESETBOT_SLACK_BOT_TOKEN must be the app's bot token (it starts with xoxb-).")
        if _is_placeholder(self.slack_app_token.get_secret_value()) or not (
            self.slack_app_token.get_secret_value().startswith("xapp-")
        ):
            problems.append("RESETBOT_SLACK_APP_TOKEN must be an app-level token (it starts with xapp-).")
        if not self.slack_api_base.endswith("/"):
            problems.append("RESETBOT_SLACK_API_BASE must end with '/'.")
        if problems:
            raise ValueError(" ".join(problems))
        return self


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment and .env, or a ConfigError naming every missing or bad value."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as e:
        sentences = []
        for err in e.errors():
            if err["type"] == "missing":
                name = "RESETBOT_" + str(err["loc"][0]).upper()
                sentences.append(f"{name} is not set.")
            else:
                sentences.append(str(err["msg"]).removeprefix("Value error, "))
        raise ConfigError(" ".join(sentences)) from None

"""All configuration, from the environment or a ``.env`` file, validated at start.

Secrets are ``SecretStr`` and unwrapped only where a client is built. A missing secret or one still
holding a placeholder fails fast with one sentence per setting, before anything connects. Every setting is
documented in the README's settings table (a test keeps the two in step).
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import ValidationError

from bot.errors import ConfigError
from bot.settings.base import LogSettings, StorageSettings
from bot.settings.enums import ApproverSource, LogLevel, ResetIdentity, SlackMode, TargetConfirmation
from bot.settings.full import DEFAULT_DRAIN_SECONDS, DEFAULT_PROTECTED_GROUP_CNS, Settings
from bot.settings.proxy_url import ProxyUrl, ProxyUrlError, secrets_in
from bot.settings.values import FERNET_KEY_HOWTO, parse_duration

__all__ = [
    "DEFAULT_DRAIN_SECONDS",
    "DEFAULT_PROTECTED_GROUP_CNS",
    "FERNET_KEY_HOWTO",
    "ApproverSource",
    "LogLevel",
    "LogSettings",
    "ProxyUrl",
    "ProxyUrlError",
    "ResetIdentity",
    "Settings",
    "SlackMode",
    "StorageSettings",
    "TargetConfirmation",
    "load_log_settings",
    "load_settings",
    "load_storage_settings",
    "parse_duration",
    "secrets_in",
]

_S = TypeVar("_S", bound="StorageSettings")


def load_log_settings() -> LogSettings:
    """Just the logging settings from the environment and .env, or a ConfigError naming the bad one."""
    try:
        return LogSettings()
    except ValidationError as e:
        raise ConfigError(_sentences(e)) from None


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment and .env, or a ConfigError naming every missing or bad value."""
    return _load(Settings, overrides)


def load_storage_settings(**overrides: object) -> StorageSettings:
    """Only the database settings (see ``StorageSettings``), or a ConfigError naming every bad value."""
    return _load(StorageSettings, overrides)


def _load(cls: type[_S], overrides: dict[str, object]) -> _S:
    try:
        return cls(**overrides)  # type: ignore[arg-type]
    except ValidationError as e:
        raise ConfigError(_sentences(e)) from None


def _sentences(e: ValidationError) -> str:
    sentences = []
    for err in e.errors():
        name = "RESETBOT_" + str(err["loc"][0]).upper() if err["loc"] else "settings"
        if err["type"] == "missing":
            sentences.append(f"{name} is not set.")
        elif err["type"] == "value_error":
            sentences.append(str(err["msg"]).removeprefix("Value error, "))
        else:
            sentences.append(f"{name}: {err['msg']}.")
    return " ".join(sentences)

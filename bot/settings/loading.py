"""Reading the settings: each ``load_*`` builds its settings class from the environment and ``.env`` (and any
overrides), or raises one ``ConfigError`` whose text says, setting by setting, what is missing or wrong."""

from __future__ import annotations

from typing import TypeVar

from pydantic import ValidationError

from bot.errors import ConfigError
from bot.settings.base import LogSettings, StorageSettings
from bot.settings.full import Settings

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

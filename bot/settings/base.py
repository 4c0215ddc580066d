"""The settings every command reads, the smaller ones first: logging (read before anything else), then the
database. ``Settings`` (bot.settings.full) extends them with everything ``resetbot run`` needs."""

from __future__ import annotations

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.logs import LogFormat
from bot.settings.enums import LogLevel


class LogSettings(BaseSettings):
    """The settings logging needs, readable on their own: every command sets up logging first, before (and
    whether or not) the rest of the settings are complete, so that a configuration error is logged the same way."""

    model_config = SettingsConfigDict(env_prefix="RESETBOT_", env_file=".env", extra="ignore")

    # --- Operations ----------------------------------------------------------------------------------------
    #: Least severe log level written: DEBUG, INFO, WARNING or ERROR.
    log_level: LogLevel = LogLevel.INFO
    #: ``text`` (one readable line per record) or ``json`` (one JSON object per line, for a log shipper).
    log_format: LogFormat = LogFormat.TEXT

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


class StorageSettings(LogSettings):
    """The settings a database-only command needs (``resetbot migrate``, ``resetbot audit``): just the database.

    ``Settings`` extends it, so both read the same variables from the same places; a command that loads only this
    works on a machine where the Slack, Entra and AD settings are not there (an auditor's laptop, a migration job).
    """

    # --- Storage -------------------------------------------------------------------------------------------
    #: SQLAlchemy URL: a SQLite file by default, ``postgresql://…`` for several replicas.
    database_url: str = "sqlite:///resetbot.db"

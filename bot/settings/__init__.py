"""All configuration, from the environment or a ``.env`` file, validated at start.

Secrets are ``SecretStr`` and unwrapped only where a client is built. A missing secret or one still
holding a placeholder fails fast with one sentence per setting, before anything connects. Every setting is
documented in the README's settings table (a test keeps the two in step).

Import from ``bot.settings``; the modules behind it: ``enums`` (the closed choices), ``values`` (parsing and
the checks settings share), ``proxy_url`` (the outbound proxy's URL as a value), ``base`` (``LogSettings``,
``StorageSettings``), ``full`` (``Settings``) and ``loading`` (``load_*``: a settings class or a ``ConfigError``).
The settings are the bottom layer: nothing here imports the clients, services or handlers.
"""

from __future__ import annotations

from bot.settings.base import LogSettings, StorageSettings
from bot.settings.enums import (
    ApproverSource,
    Delivery,
    LogLevel,
    ResetIdentity,
    SignIn,
    SlackMode,
    TargetConfirmation,
    VerifyMethod,
)
from bot.settings.full import DEFAULT_DRAIN_SECONDS, DEFAULT_PROTECTED_GROUP_CNS, Settings
from bot.settings.loading import load_log_settings, load_settings, load_storage_settings
from bot.settings.proxy_url import ProxyUrl, ProxyUrlError, secrets_in
from bot.settings.values import FERNET_KEY_HOWTO, parse_duration

__all__ = [
    "DEFAULT_DRAIN_SECONDS",
    "DEFAULT_PROTECTED_GROUP_CNS",
    "FERNET_KEY_HOWTO",
    "ApproverSource",
    "Delivery",
    "LogLevel",
    "LogSettings",
    "ProxyUrl",
    "ProxyUrlError",
    "ResetIdentity",
    "Settings",
    "SignIn",
    "SlackMode",
    "StorageSettings",
    "TargetConfirmation",
    "VerifyMethod",
    "load_log_settings",
    "load_settings",
    "load_storage_settings",
    "parse_duration",
    "secrets_in",
]

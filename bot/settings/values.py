"""How a setting's text becomes a value, and the checks several settings share: placeholders, Fernet keys,
durations and lists. A problem is said as a sentence that never quotes a secret."""

from __future__ import annotations

import re
from datetime import timedelta

from cryptography.fernet import Fernet
from pydantic import SecretStr

_PLACEHOLDERS = ("changeme", "change-me", "xoxb-your", "xapp-your", "todo", "replace-me", "...", "<")

#: How to make a token-cache key, quoted by every sentence about a missing or bad one.
FERNET_KEY_HOWTO = ('make one with: python -c "from cryptography.fernet import Fernet; '
                    'print(Fernet.generate_key().decode())"')


def is_placeholder(value: str) -> bool:
    low = value.strip().lower()
    return not low or any(low.startswith(p) for p in _PLACEHOLDERS)


def fernet_key_problem(key: SecretStr) -> str | None:
    """None for a usable Fernet key; otherwise why not (never the key itself)."""
    value = key.get_secret_value()
    if is_placeholder(value):
        return "still holds a placeholder"
    try:
        Fernet(value.encode())
    except (ValueError, TypeError):
        return "is not a Fernet key (32 url-safe base64-encoded bytes)"
    return None


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> timedelta:
    """``90s``, ``15m``, ``4h``, ``1d`` or a number of seconds: how an operator writes a delay in a .env file."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration; write it like 90s, 15m, 4h or 1d")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s").lower()])


def split_list(value: object) -> object:
    """A list setting's items: ``;``-separated when the text holds a ``;`` (a DN holds commas), else
    ``,``-separated; anything but text (a list passed in) is left to pydantic."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(";" if ";" in value else ",") if part.strip()]
    return value

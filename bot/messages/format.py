"""What every domain's sentences share: Slack dates, buttons, lists and durations."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.ids import Action

Blocks = list[dict[str, Any]]


def slack_date(when: datetime) -> str:
    """A time every reader sees in their own time zone."""
    ts = int(when.timestamp())
    return f"<!date^{ts}^{{date_short_pretty}} {{time}}|{when.strftime('%Y-%m-%d %H:%M UTC')}>"


def button(text: str, action: Action, value: str, *, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {"type": "button", "text": {"type": "plain_text", "text": text},
                              "action_id": action, "value": value}
    if style:
        button["style"] = style
    return button


def listed(names: Sequence[str], last: str = "or") -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {last} {names[-1]}"


def duration_words(seconds: float) -> str:
    """``1 hour 30 minutes``, ``2 days``, ``45 seconds``: how long, in at most two units a person reads at a glance
    (the smaller one dropped when it is zero)."""
    units = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
    left, parts = max(round(seconds), 0), list[str]()
    for unit, size in units:
        n, left = divmod(left, size)
        if n or parts:
            if n:
                parts.append(f"{n} {unit}{'s' if n != 1 else ''}")
            if len(parts) == 2 or (parts and size == 1) or (parts and not n):
                break
    return " ".join(parts) or "0 seconds"

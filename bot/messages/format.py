"""What every domain's sentences share: escaping, Slack dates, buttons, lists and durations."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.ids import Action

Blocks = list[dict[str, Any]]

#: ``@channel``, ``@here`` and ``@everyone`` typed as plain words (not inside an address such as
#: ``alice@here.example``): mrkdwn text objects are parsed with ``verbatim: false`` by default, under which Slack
#: "automatically parses certain mentions".
_BROADCAST = re.compile(r"(?<![\w.+-])@(channel|here|everyone)(?!\.?[\w-])", re.IGNORECASE)


def esc(text: object) -> str:
    """``text`` as inert words in mrkdwn: every value a person typed (a reason, a deny reason, a name they looked
    for) or the directory holds (a display name, a UPN, Graph's status text) goes through this before it joins a
    sentence, because Slack reads ``&``, ``<`` and ``>`` as control characters. Unescaped, a reason of
    ``<!channel>`` pings the whole channel and ``<https://evil.example|Reset portal>`` shows a link whose target
    the reader cannot see. Escaping exactly these three is what Slack's "Formatting text for app surfaces" asks
    (anything more would show as typed). A broadcast word (``@here``) gets a zero-width space after its ``@`` so
    that it reads the same but can never notify anyone."""
    escaped = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BROADCAST.sub("@\u200b\\1", escaped)


#: Slack's limit on a section's text (and on a context element's): a longer one fails the whole post.
SECTION_TEXT_LIMIT = 3000


def esc_at_most(text: object, limit: int) -> str:
    """:func:`esc`, cut to at most ``limit`` characters (an ellipsis included) when longer. Escaping grows text up
    to five times (``&`` is ``&amp;``), so a bound checked on what was typed does not bound what is posted; a
    value that must fit in a section with others is bounded here, as posted. The cut falls between typed
    characters, never inside an entity."""
    full = esc(text)
    if len(full) <= limit:
        return full
    raw = str(text)
    lo, hi = 0, min(len(raw), limit)
    while lo < hi:  # the longest prefix whose escaped form leaves room for the ellipsis (its length only grows)
        mid = (lo + hi + 1) // 2
        if len(esc(raw[:mid])) < limit:
            lo = mid
        else:
            hi = mid - 1
    return esc(raw[:lo]) + "…"


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

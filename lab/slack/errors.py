"""Slack's error answers, raised with Slack's wire codes wherever the stand-in refuses something.

The Web API turns a SlackError into ``{"ok": false, "error": ..., **extra}`` with its HTTP status and headers;
response URLs and the control API turn it into their own refusals.
"""

from __future__ import annotations

from .blocks import JSON


class SlackError(Exception):
    """A Slack API error: ``error`` is the wire code; ``extra`` goes into the body next to it."""

    def __init__(self, error: str, *, status: int = 200, extra: JSON | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.extra = extra or {}
        self.headers = headers or {}


def invalid_arguments(*messages: str) -> SlackError:
    """Slack's answer to a missing or malformed argument: ``invalid_arguments`` with ``[ERROR]`` messages."""
    return SlackError("invalid_arguments",
                      extra={"response_metadata": {"messages": [f"[ERROR] {m}" for m in messages]}})

"""The product's exceptions. Clients translate library errors into these; the one error handler turns
each into a sentence for the user (from bot.messages) with a correlation id."""

from __future__ import annotations


class ResetbotError(Exception):
    """Base class: something the user or operator can be told about in one sentence."""


class ConfigError(ResetbotError):
    """Settings are missing or still hold a placeholder; the message lists each one."""


class RequestNotFoundError(ResetbotError):
    """No reset request has this id (a stale button, a mistyped id in ``/reset-status``)."""

    def __init__(self, request_id: str) -> None:
        super().__init__(f"There is no reset request {request_id}.")
        self.request_id = request_id


class DirectoryUnavailableError(ResetbotError):
    """Active Directory could not be reached or refused the bot's own bind (not a verdict about a user)."""

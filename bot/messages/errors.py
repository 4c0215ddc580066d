"""The error handler's sentences: one helpful sentence with a correlation id, whatever went wrong."""

from __future__ import annotations


def internal_error(correlation_id: str) -> str:
    return (f"Something went wrong on my side and nothing was changed. If it happens again, give the helpdesk's "
            f"admins this reference: {correlation_id}.")


def service_unavailable(what: str, correlation_id: str) -> str:
    return f"{what} Nothing was changed; try again in a minute (reference {correlation_id})."


def busy(correlation_id: str) -> str:
    """What someone hears when the bot's work pool is full: nothing was started, so trying again is safe."""
    return (f"I'm too busy to take this on right now and have not started it: please try again in a minute "
            f"(reference {correlation_id}).")

"""The abuse limits' sentences: the agent's refusals and security's alerts (``bot.services.request_limits``)."""

from __future__ import annotations

from bot.messages.format import esc
from bot.models import ResetRequest


def _thread_of(req: ResetRequest, link: str | None) -> str:
    if link:
        return f"<{link}|its thread>"
    return f"its thread in <#{req.channel_id}>" if req.channel_id else "its thread"


def open_request(name: str, upn: str, req: ResetRequest, link: str | None) -> str:
    """``link``: the request message's permalink, when Slack gave one (None while it is still being posted)."""
    return (f"{esc(name)} (`{esc(upn)}`) already has a reset request open: {req.id}, asked by <@{req.requester}>, "
            f"{req.state.value.replace('_', ' ')} (see {_thread_of(req, link)}). Nothing new was requested; follow "
            "that one, or cancel it first.")


def agent_rate(made: int, limit: int) -> str:
    return (f"You have asked for {made} resets in the last hour, and the limit is {limit} an hour: nothing was "
            "requested. Ask again later, or ask another agent.")


def security_agent_rate(agent: str, made: int, limit: int) -> str:
    return (f":rotating_light: <@{agent}> asked for {made} password resets in the last hour and was refused another "
            f"(limit {limit} an hour). If that is not a busy morning, their Slack account may be in the wrong hands.")


def security_team_rate(made: int, limit: int) -> str:
    return (f":warning: The helpdesk has asked for {made} password resets in the last hour (more than the "
            f"{limit} expected). Nothing was refused; this is said once an hour.")


def security_repeat_target(req: ResetRequest, hours: int) -> str:
    return (f":warning: <@{req.requester}> asked to reset {esc(req.target_display)} (`{esc(req.target_upn)}`) "
            f"again: their password was already reset in the last {hours} hours. The request {req.id} needs two "
            "approvers.")

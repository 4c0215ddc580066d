"""``/reset-status``: a request's timeline and lists of requests."""

from __future__ import annotations

from collections.abc import Sequence

from bot.ids import Command
from bot.messages.format import esc, slack_date
from bot.messages.requests import STATE_LINE
from bot.models import AuditEvent, ResetRequest


def status_usage() -> str:
    return f"Type `{Command.RESET_STATUS} R-XXXXXX` for one request, or `{Command.RESET_STATUS} @user` for someone's."


def about_you() -> str:
    """The title of the list ``/reset-status`` shows someone outside the helpdesk: the requests about them."""
    return "Requests about your account"


def only_your_own(request_id: str | None) -> str:
    """Said alike whether or not the request or person exists: nothing is given away."""
    yours = f"`{Command.RESET_STATUS}` on its own lists the requests about your account"
    if request_id:
        return (f"There is no reset request `{esc(request_id)}` about your account. {yours}; only helpdesk agents "
                "and approvers look up other people's.")
    return f"Only helpdesk agents and approvers look people up. {yours}."


def not_matched() -> str:
    return ("I can't match your Slack account to an Entra ID account (your Slack email address is no account's mail "
            "or UPN there), so I can't tell which requests are about you; only helpdesk agents and approvers look "
            "requests up.")


def no_requests_for(who: str) -> str:
    return f"There are no reset requests for {esc(who)}."


def requests_for(name: str) -> str:
    """The title of the list of someone's requests."""
    return f"Requests for {esc(name)}"


def timeline(req: ResetRequest, events: Sequence[AuditEvent]) -> str:
    lines = [f"*{req.id}* · {esc(req.target_display)} (`{esc(req.target_upn)}`) · {STATE_LINE[req.state]}"]
    for e in events:
        who = "resetbot" if e.actor in ("system", "scheduler") else f"<@{e.actor}>"
        step = e.action.replace("_", " ")
        if e.to_state and e.from_state:
            step += f" ({e.from_state.replace('_', ' ')} → {e.to_state.replace('_', ' ')})"
        lines.append(f"• {slack_date(e.at)} {who}: {step}")
    return "\n".join(lines)


def request_list(title: str, requests: Sequence[ResetRequest]) -> str:
    if not requests:
        return f"*{title}*\nNone."
    return f"*{title}*\n" + "\n".join(
        f"• {r.id} · {esc(r.target_display)} · {STATE_LINE[r.state]} · {slack_date(r.created_at)}" for r in requests)

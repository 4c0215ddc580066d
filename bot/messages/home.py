"""App Home: the approver's and requester's lists, and the health panel.

Slack refuses a whole view (``invalid_arguments``) for one section whose text is over 3,000 characters, and
allows 100 blocks per view: a list of every pending request broke both once about 22 waited for one approver,
and the approver then saw a stale Home. Each list therefore shows its newest ``HOME_LIST_SHOWN`` requests, cut
earlier if their lines would not fit in one section, and says how many more there are and where to see them
(``/reset-status``). Whatever the counts, the view is at most 8 blocks and every text within its limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.domain.health_state import HealthReport
from bot.ids import Command
from bot.messages.format import SECTION_TEXT_LIMIT, Blocks, esc, slack_date
from bot.messages.health import health_home
from bot.messages.requests import STATE_LINE
from bot.models import ResetRequest

#: Requests listed in each of App Home's lists; the rest are counted.
HOME_LIST_SHOWN = 10
#: A target's name is cut to this in a list (a display name may be 256 characters), so ten lines always fit.
NAME_LIMIT = 100


def _line(r: ResetRequest) -> str:
    """Cut, then escaped: the name comes from the directory, and a cut must never split an entity in two."""
    name = r.target_display if len(r.target_display) <= NAME_LIMIT else r.target_display[:NAME_LIMIT - 1] + "…"
    return f"• {r.id} · {esc(name)} · {STATE_LINE[r.state]} · {slack_date(r.created_at)}"


def listed_requests(title: str, requests: Sequence[ResetRequest], total: int | None = None
                    ) -> tuple[str, int]:
    """The section text for ``requests`` (newest first), at most ``HOME_LIST_SHOWN`` lines and
    ``SECTION_TEXT_LIMIT`` characters, and how many of ``total`` (default: all given) it leaves out."""
    total = len(requests) if total is None else max(total, len(requests))
    if not requests:
        return f"*{title}*\nNone.", total
    text = f"*{title}*"
    shown = 0
    for r in requests[:HOME_LIST_SHOWN]:
        line = _line(r)
        if len(text) + 1 + len(line) > SECTION_TEXT_LIMIT:
            break
        text += "\n" + line
        shown += 1
    return text, total - shown


def more_pending(count: int) -> str:
    return (f"…and {count} more waiting for your approval, not shown here: type `{Command.RESET_STATUS} R-XXXXXX` "
            f"for any one of them, or open its thread in the requests channel.")


def more_mine(count: int) -> str:
    return (f"…and {count} older requests of yours: type `{Command.RESET_STATUS}` to list your recent ones, or "
            f"`{Command.RESET_STATUS} R-XXXXXX` for one.")


def home_view(*, pending_for_me: Sequence[ResetRequest], mine: Sequence[ResetRequest],
              health: HealthReport | None = None, mine_total: int | None = None) -> dict[str, Any]:
    """``pending_for_me`` and ``mine`` newest first; ``mine_total`` counts all of mine when only the newest were
    read."""

    def section(text: str) -> dict[str, Any]:
        return {"type": "section", "text": {"type": "mrkdwn", "text": text}}

    def more(text: str) -> dict[str, Any]:
        return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}

    pending_text, pending_left = listed_requests("Waiting for my approval", pending_for_me)
    mine_text, mine_left = listed_requests("My recent requests", mine, mine_total)
    blocks: Blocks = [{"type": "header", "text": {"type": "plain_text", "text": "resetbot"}}, section(pending_text)]
    if pending_left:
        blocks.append(more(more_pending(pending_left)))
    blocks += [{"type": "divider"}, section(mine_text)]
    if mine_left:
        blocks.append(more(more_mine(mine_left)))
    if health is not None:
        blocks += [{"type": "divider"}, section(health_home(health)[:SECTION_TEXT_LIMIT])]
    return {"type": "home", "blocks": blocks}

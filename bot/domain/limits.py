"""Limits on how fast resets may be asked for: the brake on a helpdesk account being abused (a phished agent, an
insider, a script) and on a target being reset again and again (a caller who keeps phoning in as them).

Pure: the counts are read by ``bot.store.limits`` inside the transaction that would make the request (so replicas
cannot both slip under a limit), and this module decides what they mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

#: The window of the per-agent and the whole-helpdesk limits: a rolling hour.
RATE_WINDOW = timedelta(hours=1)


class Limit(StrEnum):
    """Each limit; the values name it in audit rows and in ``resetbot_limits_total{limit}``: never rename one."""

    #: The target already has a request pending, approved or resetting: refused.
    OPEN_REQUEST = "open_request"
    #: The agent asked for more resets in the last hour than allowed: refused.
    AGENT_RATE = "agent_rate"
    #: The target's password was reset within the repeat window: two approvals, and security is told.
    REPEAT_TARGET = "repeat_target"
    #: The whole helpdesk asked for more resets in the last hour than expected: security is told (not a block).
    TEAM_RATE = "team_rate"


@dataclass(frozen=True, slots=True)
class LimitRules:
    """The limits' settings (``RESETBOT_LIMIT_*``). ``repeat_hours`` 0 turns the repeat-target rule off."""

    agent_per_hour: int = 10
    repeat_hours: int = 24
    team_per_hour: int = 50
    #: Always on in the product; a test that means to hold several requests for one person turns it off.
    one_open_per_target: bool = True

    @property
    def repeat_window(self) -> timedelta:
        return timedelta(hours=self.repeat_hours)


@dataclass(frozen=True, slots=True)
class LimitFacts:
    """What the database shows, read under the intake lock, about the request about to be made."""

    #: The id of the target's request still pending, approved or resetting; None when there is none.
    open_request: str | None
    #: Requests this agent made in the last hour (the one about to be made not counted).
    agent_recent: int
    #: Whether the agent's limit already alerted security within the last hour.
    agent_alerted: bool
    #: Whether the target's password was reset within the repeat window.
    reset_recently: bool
    #: Requests the whole helpdesk made in the last hour (the one about to be made not counted).
    team_recent: int
    #: Whether the team's limit already alerted security within the last hour.
    team_alerted: bool


@dataclass(frozen=True, slots=True)
class LimitDecision:
    """``refused``: the limit that refuses the request (None: it may be made). ``alert``: the limits security is
    told about with this request (or this refusal). ``approvals``: the fewest approvals the request needs."""

    refused: Limit | None
    alert: tuple[Limit, ...] = ()
    approvals: int = 1


def decide(facts: LimitFacts, rules: LimitRules) -> LimitDecision:
    """Apply the limits, first the ones that refuse: an open request for the same target (nothing else to say), then
    the agent's hourly limit (the first refusal in an hour alerts security; later ones are only audited). A request
    that may be made needs two approvals if its target was reset within the repeat window, and security hears of
    that, and of the whole helpdesk passing its hourly number (once an hour)."""
    if rules.one_open_per_target and facts.open_request is not None:
        return LimitDecision(Limit.OPEN_REQUEST)
    if facts.agent_recent >= rules.agent_per_hour:
        return LimitDecision(Limit.AGENT_RATE, alert=() if facts.agent_alerted else (Limit.AGENT_RATE,))
    alert: list[Limit] = []
    approvals = 1
    if rules.repeat_hours > 0 and facts.reset_recently:
        alert.append(Limit.REPEAT_TARGET)
        approvals = 2
    if facts.team_recent + 1 > rules.team_per_hour and not facts.team_alerted:
        alert.append(Limit.TEAM_RATE)
    return LimitDecision(None, tuple(alert), approvals)

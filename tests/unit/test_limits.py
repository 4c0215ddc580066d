"""The abuse limits' rule (``bot.domain.limits.decide``), over every combination of the facts that matter."""

from __future__ import annotations

import itertools

from bot.domain.limits import Limit, LimitDecision, LimitFacts, LimitRules, decide

RULES = LimitRules(agent_per_hour=10, repeat_hours=24, team_per_hour=50)


def facts(**kw: object) -> LimitFacts:
    values: dict[str, object] = {"open_request": None, "agent_recent": 0, "agent_alerted": False,
                                 "reset_recently": False, "team_recent": 0, "team_alerted": False}
    values.update(kw)
    return LimitFacts(**values)  # type: ignore[arg-type]


def test_an_ordinary_request_passes_with_one_approval_and_no_alert() -> None:
    assert decide(facts(agent_recent=9, team_recent=49), RULES) == LimitDecision(None, (), 1)


def test_an_open_request_for_the_target_refuses_before_anything_else() -> None:
    for agent, reset, team in itertools.product((0, 10, 11), (False, True), (0, 50)):
        got = decide(facts(open_request="R-1", agent_recent=agent, reset_recently=reset, team_recent=team), RULES)
        assert got == LimitDecision(Limit.OPEN_REQUEST)


def test_the_agents_limit_refuses_the_request_past_it_and_alerts_only_the_first_time_in_the_hour() -> None:
    assert decide(facts(agent_recent=10), RULES) == LimitDecision(Limit.AGENT_RATE, (Limit.AGENT_RATE,))
    assert decide(facts(agent_recent=25, agent_alerted=True), RULES) == LimitDecision(Limit.AGENT_RATE)
    assert decide(facts(agent_recent=10, reset_recently=True, team_recent=80), RULES).alert == (Limit.AGENT_RATE,)


def test_a_repeat_target_needs_two_approvals_and_alerts_unless_the_rule_is_off() -> None:
    assert decide(facts(reset_recently=True), RULES) == LimitDecision(None, (Limit.REPEAT_TARGET,), 2)
    off = LimitRules(repeat_hours=0)
    assert decide(facts(reset_recently=True), off) == LimitDecision(None, (), 1)


def test_the_team_passing_its_number_alerts_once_an_hour_and_never_refuses() -> None:
    assert decide(facts(team_recent=49), RULES).alert == ()
    assert decide(facts(team_recent=50), RULES) == LimitDecision(None, (Limit.TEAM_RATE,), 1)
    assert decide(facts(team_recent=70, team_alerted=True), RULES) == LimitDecision(None, (), 1)
    both = decide(facts(team_recent=50, reset_recently=True), RULES)
    assert both == LimitDecision(None, (Limit.REPEAT_TARGET, Limit.TEAM_RATE), 2)


def test_a_test_may_hold_several_requests_open_for_one_person() -> None:
    many = LimitRules(one_open_per_target=False)
    assert decide(facts(open_request="R-1"), many) == LimitDecision(None, (), 1)

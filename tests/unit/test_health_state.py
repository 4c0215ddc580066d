"""The health rules without a lab: slots, the overall state, and when a change is news."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from bot import messages
from bot.domain.health_state import (
    Check,
    CheckResult,
    CheckView,
    HealthReport,
    HealthState,
    change,
    overall,
    slot_of,
)

OK, BAD = CheckResult(ok=True, detail="fine"), CheckResult(ok=False, detail="LDAP is down")
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def results(failing: set[Check]) -> dict[Check, CheckResult]:
    return {c: BAD if c in failing else OK for c in Check}


def test_every_moment_of_an_interval_is_in_the_same_slot_and_the_next_interval_is_the_next_slot() -> None:
    start = datetime.fromtimestamp(slot_of(T0, 300) * 300, UTC)
    assert {slot_of(start + timedelta(seconds=s), 300) for s in (0, 1, 150, 299.9)} == {slot_of(T0, 300)}
    assert slot_of(start + timedelta(seconds=300), 300) == slot_of(T0, 300) + 1
    assert slot_of(T0, 1.5) != slot_of(T0 + timedelta(seconds=1.5), 1.5)


def test_the_first_healthy_round_is_not_news_but_a_first_degraded_one_is() -> None:
    quiet = change([], HealthState.UNKNOWN, results(set()))
    assert quiet is not None and quiet.to_state == HealthState.HEALTHY and not quiet.news
    first = change([], HealthState.UNKNOWN, results({Check.LDAP}))
    assert first is not None and first.to_state == HealthState.DEGRADED and first.news
    assert first.newly_failing == ((Check.LDAP, "LDAP is down"),) and first.recovered == ()


def test_degraded_then_healthy_names_what_recovered_and_the_same_failures_again_are_not_news() -> None:
    assert change([Check.LDAP], HealthState.DEGRADED, results({Check.LDAP})) is None
    back = change([Check.LDAP], HealthState.DEGRADED, results(set()))
    assert back is not None and back.to_state == HealthState.HEALTHY and back.recovered == (Check.LDAP,)
    worse = change([Check.LDAP], HealthState.DEGRADED, results({Check.LDAP, Check.GRAPH_TOKEN}))
    assert worse is not None and worse.newly_failing == ((Check.GRAPH_TOKEN, "LDAP is down"),)
    assert worse.failing == (Check.GRAPH_TOKEN, Check.LDAP)


@given(before=st.sets(st.sampled_from(list(Check))), now=st.sets(st.sampled_from(list(Check))))
def test_a_change_is_announced_exactly_when_the_failing_checks_differ(before: set[Check], now: set[Check]) -> None:
    state = HealthState.DEGRADED if before else HealthState.HEALTHY
    found = change(before, state, results(now))
    assert (found is not None) == (before != now)
    if found is not None:
        assert set(found.failing) == now
        assert {c for c, _ in found.newly_failing} == now - before and set(found.recovered) == before - now
        assert found.to_state == (HealthState.DEGRADED if now else HealthState.HEALTHY)
        assert messages.health.health_transition(found).startswith("*resetbot health: ")


def test_overall_state_and_what_people_read() -> None:
    assert overall([]) == HealthState.UNKNOWN
    views = [CheckView(check=c, ok=c != Check.LDAP, detail="d", at=T0) for c in Check]
    assert overall(views) == HealthState.DEGRADED and overall(views[:2]) == HealthState.HEALTHY
    report = HealthReport(state=HealthState.DEGRADED, checks=tuple(views), transitions=())
    assert "failing: LDAP bind and read" in messages.health.health_home(report)
    text = messages.health.health_report(report)
    assert all(messages.health.check_label(c).split(" (")[0] in text for c in Check)
    empty = HealthReport(state=HealthState.UNKNOWN, checks=(), transitions=())
    assert "No round of health pings has run yet." in messages.health.health_report(empty)

"""The follow-ups' rules, on every shape of ``pwdLastSet`` AD can show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from bot.domain.followup_rules import (
    CLOCK_SKEW,
    Landed,
    Replaced,
    Seen,
    landed,
    landed_retry_at,
    replaced,
    replaced_schedule,
)

RESET_AT = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)


def ft(at: datetime) -> int:
    """An instant as AD's FILETIME."""
    return int((at - _EPOCH) / timedelta(microseconds=1)) * 10


BEFORE = ft(RESET_AT - timedelta(days=30))
AFTER = ft(RESET_AT + timedelta(seconds=2))


def test_must_change_set_by_the_reset_is_landed() -> None:
    assert landed(Seen(0, never_expires=False), baseline=BEFORE, reset_at=RESET_AT) == Landed.YES


def test_unchanged_pwd_last_set_is_not_landed_yet() -> None:
    assert landed(Seen(BEFORE, never_expires=False), baseline=BEFORE, reset_at=RESET_AT) == Landed.NOT_YET


def test_a_new_instant_without_must_change_names_the_never_expires_flag() -> None:
    assert landed(Seen(AFTER, never_expires=True), baseline=BEFORE, reset_at=RESET_AT) == \
        Landed.YES_WITHOUT_MUST_CHANGE


def test_a_new_instant_on_an_account_without_never_expires_is_landed_without_must_change() -> None:
    """Writeback sets 0 there: an instant means must-change did not apply (or, with no version, the user's change)."""
    assert landed(Seen(AFTER, never_expires=False), baseline=BEFORE, reset_at=RESET_AT) == \
        Landed.YES_MUST_CHANGE_MISSING
    assert landed(Seen(AFTER, False, key_version=8), baseline=BEFORE, baseline_version=7, reset_at=RESET_AT) == \
        Landed.YES_MUST_CHANGE_MISSING
    # ... and the replaced checks never take that same instant for the user's own change.
    assert replaced(Seen(AFTER, False), reset_at=RESET_AT, left_by_reset=AFTER) == Replaced.NOT_YET
    assert replaced(Seen(AFTER, False), reset_at=RESET_AT, left_by_reset=None) == Replaced.NOT_YET
    own = ft(RESET_AT + timedelta(hours=2))
    assert replaced(Seen(own, False), reset_at=RESET_AT, left_by_reset=AFTER) == Replaced.YES


def test_a_repeat_reset_over_an_unreplaced_temporary_password_is_not_proven_by_pwd_last_set() -> None:
    """Before the reset AD already showed 0 (the earlier temporary password was never replaced): 0 again
    proves nothing, and with no baseline at all (a recovered reset) neither does 0."""
    assert landed(Seen(0, never_expires=False), baseline=0, reset_at=RESET_AT) == Landed.UNPROVEN
    assert landed(Seen(0, never_expires=False), baseline=None, reset_at=RESET_AT) == Landed.UNPROVEN
    # The version the bot read before the reset settles it both ways.
    assert landed(Seen(0, False, key_version=4), baseline=0, baseline_version=4, reset_at=RESET_AT) == \
        Landed.NOT_YET
    assert landed(Seen(0, False, key_version=5), baseline=0, baseline_version=4, reset_at=RESET_AT) == Landed.YES
    # A version read only on one side is no proof.
    assert landed(Seen(0, False, key_version=5), baseline=0, baseline_version=None, reset_at=RESET_AT) == \
        Landed.UNPROVEN


def test_pwd_last_set_moved_without_a_password_write_is_not_a_landing() -> None:
    """Someone ticked *must change* (or cleared it) in AD: ``pwdLastSet`` moved, the password did not."""
    assert landed(Seen(0, False, key_version=3), baseline=BEFORE, baseline_version=3, reset_at=RESET_AT) == \
        Landed.NOT_YET
    assert landed(Seen(AFTER, True, key_version=3), baseline=BEFORE, baseline_version=3, reset_at=RESET_AT) == \
        Landed.NOT_YET


def test_the_users_own_change_on_top_of_the_reset_is_a_landing_then_a_replacement() -> None:
    """Two writes since the baseline: the reset, then the user's own change (the bot looked late)."""
    own = ft(RESET_AT + timedelta(minutes=20))
    for never_expires in (False, True):
        seen = Seen(own, never_expires, key_version=9)
        assert landed(seen, baseline=BEFORE, baseline_version=7, reset_at=RESET_AT) == Landed.YES
        assert replaced(seen, reset_at=RESET_AT, left_by_reset=0) == Replaced.YES


def test_an_older_change_than_the_reset_is_not_the_reset() -> None:
    older = ft(RESET_AT - CLOCK_SKEW - timedelta(minutes=1))
    assert landed(Seen(older, never_expires=False), baseline=BEFORE, reset_at=RESET_AT) == Landed.NOT_YET


def test_a_dc_clock_slightly_behind_still_counts() -> None:
    behind = ft(RESET_AT - timedelta(minutes=2))
    assert landed(Seen(behind, never_expires=True), baseline=BEFORE, reset_at=RESET_AT) == \
        Landed.YES_WITHOUT_MUST_CHANGE


def test_a_vanished_account_is_said_as_such() -> None:
    assert landed(None, baseline=BEFORE, reset_at=RESET_AT) == Landed.ACCOUNT_GONE
    assert replaced(None, reset_at=RESET_AT, left_by_reset=0) == Replaced.ACCOUNT_GONE


def test_the_users_own_change_is_replaced_and_the_resets_own_value_is_not() -> None:
    own = ft(RESET_AT + timedelta(hours=2))
    assert replaced(Seen(own, False), reset_at=RESET_AT, left_by_reset=0) == Replaced.YES
    assert replaced(Seen(0, False), reset_at=RESET_AT, left_by_reset=0) == Replaced.NOT_YET
    assert replaced(Seen(AFTER, True), reset_at=RESET_AT, left_by_reset=AFTER) == Replaced.NOT_YET
    assert replaced(Seen(own, True), reset_at=RESET_AT, left_by_reset=AFTER) == Replaced.YES
    # Landing never seen, must-change never applied: the reset's own instant is not the user's change.
    assert replaced(Seen(AFTER, True), reset_at=RESET_AT, left_by_reset=None) == Replaced.NOT_YET
    assert replaced(Seen(own, True), reset_at=RESET_AT, left_by_reset=None) == Replaced.YES
    assert replaced(Seen(BEFORE, False), reset_at=RESET_AT, left_by_reset=None) == Replaced.NOT_YET


def test_retries_double_and_end_at_the_deadline() -> None:
    first, deadline = timedelta(seconds=15), RESET_AT + timedelta(minutes=15)
    now, seen = RESET_AT + first, []
    for attempt in range(1, 20):
        nxt = landed_retry_at(attempt=attempt, first_delay=first, now=now, deadline=deadline)
        if nxt is None:
            break
        seen.append((nxt - now).total_seconds())
        now = nxt
    assert seen[:5] == [15, 30, 60, 120, 240]
    assert now == deadline, "the last look is at the deadline itself"


def test_replaced_checks_are_in_order_without_duplicates() -> None:
    hours = [timedelta(hours=h) for h in (24, 1, 4, 1)]
    assert replaced_schedule(RESET_AT, hours) == [RESET_AT + timedelta(hours=h) for h in (1, 4, 24)]


@given(st.integers(min_value=1, max_value=2**62), st.integers(min_value=0, max_value=2**62), st.booleans())
def test_an_unchanged_non_zero_value_is_never_landed(value: int, baseline_delta: int, never_expires: bool) -> None:
    assert landed(Seen(value, never_expires), baseline=value, reset_at=RESET_AT) == Landed.NOT_YET
    # And nothing before the reset (beyond the skew) is ever taken for the user's own change.
    old = ft(RESET_AT - CLOCK_SKEW) - 1 - baseline_delta % ft(RESET_AT - CLOCK_SKEW)
    assert replaced(Seen(max(old, 1), never_expires), reset_at=RESET_AT, left_by_reset=None) == Replaced.NOT_YET


def test_a_huge_attempt_count_waits_until_the_deadline_instead_of_overflowing() -> None:
    deadline = RESET_AT + timedelta(minutes=15)
    for attempt in (64, 1_000, 10**18):
        assert landed_retry_at(attempt=attempt, first_delay=timedelta(seconds=15), now=RESET_AT,
                               deadline=deadline) == deadline
    assert landed_retry_at(attempt=10**18, first_delay=timedelta(days=10**6), now=RESET_AT,
                           deadline=datetime.max.replace(tzinfo=UTC)) == datetime.max.replace(tzinfo=UTC)


_INSTANTS = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@given(attempt=st.integers(min_value=-5, max_value=10**30), first=st.timedeltas(min_value=timedelta(0),
       max_value=timedelta(days=10**5)), now=_INSTANTS, ahead=st.timedeltas(min_value=timedelta(seconds=-10**6),
       max_value=timedelta(days=10**5)))
def test_the_next_look_never_raises_and_never_passes_the_deadline(
        attempt: int, first: timedelta, now: datetime, ahead: timedelta) -> None:
    deadline = now + ahead
    nxt = landed_retry_at(attempt=attempt, first_delay=first, now=now, deadline=deadline)
    if now >= deadline:
        assert nxt is None
    else:
        assert nxt is not None and now <= nxt <= deadline
        if first:
            assert nxt > now, "a positive first delay always moves the next look forward"


@given(st.integers(min_value=0, max_value=2**62), st.integers(min_value=0, max_value=2**62), st.booleans(),
       st.integers(min_value=0, max_value=2**31))
def test_an_unmoved_key_version_is_never_landed(seen: int, baseline: int, never_expires: bool, version: int) -> None:
    assert landed(Seen(seen, never_expires, key_version=version), baseline=baseline, baseline_version=version,
                  reset_at=RESET_AT) == Landed.NOT_YET


@given(st.sampled_from([0, None]), st.booleans(), st.one_of(st.none(), st.integers(min_value=1, max_value=99)))
def test_must_change_seen_twice_without_versions_is_never_called_landed(
        baseline: int | None, never_expires: bool, version: int | None) -> None:
    """Whichever side of the version is missing, 0 after 0 (or after nothing) is never a confirmation."""
    assert landed(Seen(0, never_expires, key_version=version), baseline=baseline, baseline_version=None,
                  reset_at=RESET_AT) == Landed.UNPROVEN
    assert landed(Seen(0, never_expires, key_version=None), baseline=baseline, baseline_version=version,
                  reset_at=RESET_AT) == Landed.UNPROVEN

"""The request state machine, exhaustively: every pair of states, and random walks through the table."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.lifecycle import (
    DEFAULT_TTL,
    OPEN_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    RequestState,
    can_transition,
    deadlines,
    is_terminal,
    predecessors,
    required_approvals,
)

S = RequestState

# The spec's lifecycle (PRODUCT.md section 3), written out independently of the code under test.
SPEC_MOVES: set[tuple[RequestState, RequestState]] = {
    (S.PENDING_APPROVAL, S.APPROVED),
    (S.PENDING_APPROVAL, S.DENIED),
    (S.PENDING_APPROVAL, S.CANCELLED),
    (S.PENDING_APPROVAL, S.EXPIRED),
    (S.APPROVED, S.RESETTING),
    (S.APPROVED, S.CANCELLED),
    (S.APPROVED, S.DENIED),  # a Deny before the reset starts stops it, as a Cancel does
    (S.RESETTING, S.SUCCEEDED),
    (S.RESETTING, S.REJECTED),
    (S.RESETTING, S.FAILED),
}
SPEC_TERMINAL = {S.SUCCEEDED, S.REJECTED, S.FAILED, S.DENIED, S.CANCELLED, S.EXPIRED}


def test_stored_values_never_change() -> None:
    # These strings are in databases and audit trails; renaming one orphans old rows.
    assert [s.value for s in RequestState] == [
        "pending_approval",
        "approved",
        "resetting",
        "succeeded",
        "rejected",
        "failed",
        "denied",
        "cancelled",
        "expired",
    ]


def test_table_covers_every_state_and_only_states() -> None:
    assert set(TRANSITIONS) == set(RequestState)
    assert all(nxt <= set(RequestState) for nxt in TRANSITIONS.values())


@pytest.mark.parametrize(("current", "to"), list(itertools.product(RequestState, repeat=2)))
def test_can_transition_matches_the_spec_for_every_pair(current: RequestState, to: RequestState) -> None:
    assert can_transition(current, to) is ((current, to) in SPEC_MOVES)


@pytest.mark.parametrize("state", list(RequestState))
def test_terminal_states(state: RequestState) -> None:
    assert is_terminal(state) is (state in SPEC_TERMINAL)
    assert (state in TERMINAL_STATES) is (state in SPEC_TERMINAL)
    assert (state in OPEN_STATES) is (state not in SPEC_TERMINAL)


@pytest.mark.parametrize("state", list(RequestState))
def test_predecessors_is_the_inverse_of_the_table(state: RequestState) -> None:
    assert predecessors(state) == {a for a, b in SPEC_MOVES if b == state}


def test_cancel_only_before_the_reset_starts() -> None:
    assert predecessors(S.CANCELLED) == {S.PENDING_APPROVAL, S.APPROVED}
    assert not can_transition(S.RESETTING, S.CANCELLED)


def test_every_state_is_reachable_and_every_open_state_can_finish() -> None:
    reachable = {S.PENDING_APPROVAL}
    frontier = [S.PENDING_APPROVAL]
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()]:
            if nxt not in reachable:
                reachable.add(nxt)
                frontier.append(nxt)
    assert reachable == set(RequestState)
    for state in OPEN_STATES:
        # The table is acyclic, so following any move long enough ends in a terminal state.
        seen, current = set(), state
        while not is_terminal(current):
            assert current not in seen
            seen.add(current)
            current = min(TRANSITIONS[current])
    assert predecessors(S.PENDING_APPROVAL) == frozenset()


@given(st.lists(st.sampled_from(list(RequestState)), max_size=40))
def test_random_walks_stay_in_the_table(attempts: list[RequestState]) -> None:
    state = S.PENDING_APPROVAL
    history = [state]
    for wanted in attempts:
        if can_transition(state, wanted):
            assert not is_terminal(state)
            assert wanted != state
            state = wanted
            history.append(state)
        elif is_terminal(state):
            assert not any(can_transition(state, other) for other in RequestState)
    assert all((a, b) in SPEC_MOVES for a, b in itertools.pairwise(history))
    # No state is visited twice, and only the last one may be terminal.
    assert len(set(history)) == len(history)
    assert not any(is_terminal(s) for s in history[:-1])


def test_deadlines_escalate_at_half_time() -> None:
    created = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    d = deadlines(created)
    assert timedelta(minutes=30) == DEFAULT_TTL
    assert d.escalate_at == created + timedelta(minutes=15)
    assert d.expires_at == created + timedelta(minutes=30)
    assert deadlines(created, timedelta(minutes=7)).escalate_at == created + timedelta(minutes=3, seconds=30)


@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(minutes=-1)])
def test_deadlines_need_a_positive_ttl(ttl: timedelta) -> None:
    with pytest.raises(ValueError, match="positive"):
        deadlines(datetime(2025, 1, 1, tzinfo=UTC), ttl)


def test_deadlines_refuse_naive_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        deadlines(datetime(2025, 1, 1))


def test_protected_targets_need_two_approvers() -> None:
    assert required_approvals(protected=True) == 2
    assert required_approvals(protected=False) == 1
    assert required_approvals(protected=False, target_in_slack=False) == 2  # nobody can ask or tell the target
    assert required_approvals(protected=True, target_in_slack=False) == 2

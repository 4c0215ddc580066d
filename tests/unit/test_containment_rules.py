"""Who may scramble a disowned reset's password, and which Entra roles may sign a user out: every combination."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from bot.domain.containment import ScrambleRefusal, scramble_in_progress, scramble_refusal, scramble_too_late
from bot.domain.entra_roles import (
    AUTH_ADMIN,
    GLOBAL_ADMIN,
    HELPDESK_ADMIN,
    PASSWORD_ADMIN,
    PRIVILEGED_AUTH_ADMIN,
    USER_ADMIN,
    can_revoke_sessions,
)
from bot.domain.lifecycle import RequestState

PEOPLE = ("U0REQUESTER", "U0TARGET", "U0APPROVER", "U0SECURITY", "U0BYSTANDER")


def test_only_a_security_member_outside_the_request_scrambles_a_password_the_request_set() -> None:
    for actor, group_set, in_group, state, tap, disowned, already, newer, running, late in itertools.product(
            PEOPLE, (True, False), (True, False), RequestState, (True, False), (True, False), (True, False),
            (True, False), (True, False), (True, False)):
        refusal = scramble_refusal(actor=actor, security_group_set=group_set, in_security_group=in_group,
                                   requester="U0REQUESTER", target="U0TARGET", approvers=["U0APPROVER"],
                                   state=state, tap=tap, disowned=disowned, already_scrambled=already,
                                   superseded=newer, in_progress=running, too_late=late)
        allowed = (group_set and in_group and actor in ("U0SECURITY", "U0BYSTANDER")
                   and state == RequestState.SUCCEEDED and not tap and disowned
                   and not (already or newer or running or late))
        assert (refusal is None) == allowed, (actor, group_set, in_group, state, tap, disowned, already, newer,
                                              refusal)
        if not group_set:
            assert refusal == ScrambleRefusal.NO_SECURITY_GROUP
        elif not in_group:
            assert refusal == ScrambleRefusal.NOT_IN_SECURITY_GROUP, "an outsider learns nothing of the request"
        elif actor in ("U0REQUESTER", "U0TARGET", "U0APPROVER"):
            assert refusal == ScrambleRefusal.PART_OF_THE_REQUEST
        elif running and not already and allowed is False and state == RequestState.SUCCEEDED and not tap \
                and disowned:
            assert refusal == ScrambleRefusal.SCRAMBLE_IN_PROGRESS
        elif newer and not already and allowed is False and state == RequestState.SUCCEEDED and not tap and disowned:
            assert refusal == ScrambleRefusal.SUPERSEDED, "a newer reset is never undone by an old alert's button"
        elif late and not (already or running) and state == RequestState.SUCCEEDED and not tap and disowned:
            assert refusal == ScrambleRefusal.TOO_LATE, "an alert past its window scrambles nothing"


def test_the_password_administrator_may_reset_but_sign_nobody_out() -> None:
    assert not can_revoke_sessions([PASSWORD_ADMIN], [])
    for role in (HELPDESK_ADMIN, AUTH_ADMIN, USER_ADMIN, PRIVILEGED_AUTH_ADMIN, GLOBAL_ADMIN):
        assert can_revoke_sessions([role], []), role
    assert not can_revoke_sessions([HELPDESK_ADMIN], [GLOBAL_ADMIN])
    assert can_revoke_sessions([HELPDESK_ADMIN, PASSWORD_ADMIN], [HELPDESK_ADMIN])
    assert not can_revoke_sessions([AUTH_ADMIN], [USER_ADMIN])
    assert can_revoke_sessions(["company administrator"], [GLOBAL_ADMIN]), "Graph's former name counts"


def test_a_started_scramble_holds_the_button_until_it_ends_or_its_claim_lapses() -> None:
    t0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    claim = timedelta(minutes=6)
    started = [("reset_disowned", t0), ("scramble_started", t0)]
    assert scramble_in_progress(started, now=t0 + timedelta(minutes=5), claim=claim)
    assert not scramble_in_progress(started, now=t0 + timedelta(minutes=6), claim=claim), "a dead replica lets go"
    for end in ("scrambled", "scramble_failed"):
        assert not scramble_in_progress([*started, (end, t0)], now=t0, claim=claim)
    assert scramble_in_progress([*started, ("scramble_failed", t0), ("scramble_started", t0)], now=t0, claim=claim)
    assert not scramble_in_progress([("reset_disowned", t0)], now=t0, claim=claim)


def test_scramble_is_too_late_only_past_the_window_from_the_alert() -> None:
    """The alert went out when the reset was both made and disowned: at the disowning, or at the reset's success
    when the target's No came while it ran; nothing disowned or nothing made is never "too late"."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    day = timedelta(hours=24)
    after_reset = [("succeeded", t0), ("reset_disowned", t0 + timedelta(hours=1))]
    assert not scramble_too_late(after_reset, now=t0 + timedelta(hours=25), window=day)
    assert scramble_too_late(after_reset, now=t0 + timedelta(hours=25, seconds=1), window=day)
    no_while_running = [("target_disowned", t0), ("succeeded", t0 + timedelta(hours=2))]
    assert not scramble_too_late(no_while_running, now=t0 + timedelta(hours=26), window=day)
    assert scramble_too_late(no_while_running, now=t0 + timedelta(hours=26, seconds=1), window=day)
    assert not scramble_too_late([("succeeded", t0)], now=t0 + 10 * day, window=day)
    assert not scramble_too_late([("target_disowned", t0)], now=t0 + 10 * day, window=day)

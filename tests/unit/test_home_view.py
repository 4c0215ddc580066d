"""App Home with any number of requests: the newest few of each list, a count of the rest and where to see them,
and a view Slack accepts (checked with the lab Slack's own validation, which holds Slack's limits exactly)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.lifecycle import RequestState
from bot.messages.format import SECTION_TEXT_LIMIT
from bot.messages.home import HOME_LIST_SHOWN, home_view, more_mine, more_pending
from bot.models import ResetRequest
from lab.slack.webapi import validate_view

T0 = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)


def _requests(n: int, *, name: str = "Alice Archer", state: RequestState = RequestState.PENDING_APPROVAL
              ) -> list[ResetRequest]:
    """``n`` requests, newest first (as the store returns them)."""
    return [ResetRequest(id=f"R-{i:06d}", requester="U000HANK", target_entra_id="e", target_upn="a@x.test",
                         target_display=name, state=state, created_at=T0 - timedelta(minutes=i),
                         expires_at=T0 + timedelta(hours=1), escalate_at=T0)
            for i in range(n)]


def _texts(view: dict[str, object]) -> list[str]:
    out = []
    for block in view["blocks"]:  # type: ignore[attr-defined]
        if block["type"] == "section":
            out.append(block["text"]["text"])
        elif block["type"] == "context":
            out.append(block["elements"][0]["text"])
    return out


@pytest.mark.parametrize("pending", [0, 1, HOME_LIST_SHOWN, HOME_LIST_SHOWN + 1, 22, 35, 500])
def test_any_number_of_pending_requests_renders_within_slacks_limits(pending: int) -> None:
    view = home_view(pending_for_me=_requests(pending), mine=_requests(3), mine_total=3)
    validate_view(view, ("home",))  # raises as Slack would refuse it
    texts = _texts(view)
    shown = [line for line in texts[0].splitlines()[1:] if line.startswith("• ")]
    assert len(shown) == min(pending, HOME_LIST_SHOWN)
    if pending == 0:
        assert texts[0] == "*Waiting for my approval*\nNone."
    if pending > HOME_LIST_SHOWN:
        assert texts[1] == more_pending(pending - HOME_LIST_SHOWN)
        assert "`/reset-status R-XXXXXX`" in texts[1]
        assert shown[0].startswith("• R-000000 "), "the newest first"
    else:
        assert not any(t.startswith("…and") for t in texts)


def test_my_requests_say_how_many_older_ones_there_are() -> None:
    view = home_view(pending_for_me=[], mine=_requests(HOME_LIST_SHOWN, state=RequestState.SUCCEEDED), mine_total=42)
    validate_view(view, ("home",))
    assert more_mine(42 - HOME_LIST_SHOWN) in _texts(view)
    assert "`/reset-status`" in more_mine(1)


def test_long_names_are_cut_so_a_section_never_passes_3000_characters() -> None:
    view = home_view(pending_for_me=_requests(40, name="W" * 256), mine=_requests(40, name="Ü" * 256),
                     mine_total=40)
    validate_view(view, ("home",))
    texts = _texts(view)
    assert all(len(t) <= SECTION_TEXT_LIMIT for t in texts)
    assert texts[1] == more_pending(40 - HOME_LIST_SHOWN)
    assert "W" * 99 + "…" in texts[0]


def test_a_total_below_what_was_given_counts_what_was_given() -> None:
    view = home_view(pending_for_me=[], mine=_requests(HOME_LIST_SHOWN + 2), mine_total=0)
    assert more_mine(2) in _texts(view)

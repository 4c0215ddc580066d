"""The request message fits Slack's limits whatever is typed or held in the directory.

The reason is bounded where it is typed (500 characters), but what Slack counts is the posted text, after
escaping: ``&`` becomes ``&amp;``, so 500 ampersands are 2,500 characters, and with a long display name and UPN the
first section went past Slack's 3,000: the post failed after the request was stored, and it sat pending with no
thread. Each value is now bounded as posted (:func:`esc_at_most`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import messages
from bot.domain.lifecycle import RequestState
from bot.domain.parse import MAX_REASON_CHARS
from bot.domain.rules import Protection
from bot.messages.format import SECTION_TEXT_LIMIT, esc, esc_at_most
from bot.models import ResetRequest

WHEN = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)


def worst_request(**changes: Any) -> ResetRequest:
    """Every field a person or the directory fills at its longest, in the characters escaping grows most."""
    values: dict[str, Any] = dict(
        id="R-7K3Q9M", requester="U0000HANK", requester_display="&" * 256, target_entra_id="e1",
        target_upn="&" * 113 + "@" + "&" * 140, target_display="&" * 256, reason="&" * MAX_REASON_CHARS,
        manager_slack_id="U000MONA", approver_group="a" * 80, protected=",".join(p.value for p in Protection),
        target_slack_id=None, unlock=True, tap=True, channel_id="C0HELPDESK", thread_ts="1.0", expires_at=WHEN,
        created_at=WHEN)
    values.update(changes)
    return ResetRequest(**values)


def section_texts(blocks: list[dict[str, Any]]) -> list[str]:
    out = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    out += [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]
    return out


@pytest.mark.parametrize("state", [RequestState.PENDING_APPROVAL, RequestState.DENIED])
def test_the_request_message_stays_inside_slacks_section_limit(state: RequestState) -> None:
    req = worst_request(state=state)
    blocks = messages.requests.request_blocks(req, approvals=["U000GINA"], group_id="S0APPROVERS",
                                              decided_by="U000MONA", note="<" * 2000)
    assert len(esc(req.reason)) == 5 * MAX_REASON_CHARS, "the typed bound alone would not have done"
    assert all(len(t) <= SECTION_TEXT_LIMIT for t in section_texts(blocks)), [len(t) for t in section_texts(blocks)]


@given(st.text(alphabet="&<>a@here ", max_size=600), st.integers(min_value=2, max_value=700))
def test_a_bounded_value_is_escaped_never_cut_inside_an_entity_and_never_longer(text: str, limit: int) -> None:
    shown = esc_at_most(text, limit)
    assert len(shown) <= limit
    if len(esc(text)) <= limit:
        assert shown == esc(text)
    else:
        assert shown.endswith("…")
        kept = shown[:-1]
        assert esc(text).startswith(kept) and not kept.endswith(("&", "&a", "&am", "&amp", "&l", "&lt", "&g", "&gt"))


def test_the_targets_question_stays_inside_slacks_section_limit() -> None:
    blocks = messages.requests.confirm_question_blocks(worst_request())
    assert all(len(t) <= SECTION_TEXT_LIMIT for t in section_texts(blocks))

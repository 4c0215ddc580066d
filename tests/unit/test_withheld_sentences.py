"""A password (or TAP) nobody may read, because the target said No or the request was called off while its reset
ran: its verdict says it was discarded and never asks anyone to press Reveal."""

from __future__ import annotations

import pytest

from bot import messages
from bot.domain.verdict import Verdict, VerdictKind


@pytest.mark.parametrize("why", ["target_said_no", "withdrawn"])
def test_a_withheld_verdict_says_discarded_and_never_press_reveal(why: str) -> None:
    said = [messages.reset.verdict_sentence(Verdict(VerdictKind.SUCCEEDED), name="Alice", requester="U1",
                                            correlation_id="c", withheld=why),
            messages.reset.verdict_sentence(Verdict(VerdictKind.SUCCEEDED), name="Alice", requester="U1",
                                            correlation_id="c", withheld=why, to_target=True),
            messages.reset.tap_issued("Alice", "U1", 60, withheld=why)]
    for text in said:
        assert "discarded unrevealed" in text and "nobody may read it" in text, text
        assert "Reveal" not in text, text


def test_a_verdict_nobody_withheld_still_asks_for_reveal() -> None:
    assert "press Reveal" in messages.reset.verdict_sentence(Verdict(VerdictKind.SUCCEEDED), name="Alice",
                                                             requester="U1", correlation_id="c")
    assert "press Reveal" in messages.reset.tap_issued("Alice", "U1", 60)

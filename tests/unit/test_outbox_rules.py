"""A failed post is tried again after a doubling, capped delay until the give-up horizon; a post Slack can never
take is given up at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.domain.outbox_rules import OutboxRules, retry_at

T0 = datetime(2031, 1, 1, tzinfo=UTC)
RULES = OutboxRules(first_retry=timedelta(seconds=15), retry_cap=timedelta(minutes=15),
                    give_up_after=timedelta(hours=24))


def test_retries_double_up_to_the_cap() -> None:
    delays = [retry_at(RULES, attempts=n, created_at=T0, now=T0, error="internal_error") for n in range(1, 9)]
    assert [d - T0 for d in delays if d] == [timedelta(seconds=s) for s in (15, 30, 60, 120, 240, 480, 900, 900)]
    assert retry_at(RULES, attempts=10_000, created_at=T0, now=T0, error="ratelimited") == T0 + RULES.retry_cap


def test_past_the_horizon_or_never_postable_it_is_given_up() -> None:
    late = T0 + RULES.give_up_after - timedelta(minutes=10)
    assert retry_at(RULES, attempts=90, created_at=T0, now=late, error="service_unavailable") is None
    assert retry_at(RULES, attempts=3, created_at=T0, now=late, error="unreachable") == late + timedelta(minutes=1)
    assert retry_at(RULES, attempts=1, created_at=T0, now=T0, error="msg_too_long") is None
    assert retry_at(RULES, attempts=1, created_at=T0, now=T0, error="channel_not_found") is not None, \
        "a channel the bot is not in yet may be fixed by inviting it"

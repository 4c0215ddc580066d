"""When the outbox tries a failed Slack post again, and when it stops: pure functions of the attempt count, the
message's age and Slack's error code."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

#: Slack's answers that the same text to the same place can never turn into a post: trying again for a day would
#: only hold back the messages queued behind it in that conversation.
NEVER_POSTABLE: frozenset[str] = frozenset({
    "msg_too_long", "no_text", "invalid_blocks", "invalid_blocks_format", "is_archived", "user_not_found",
    "cannot_dm_bot", "account_inactive", "user_disabled",
})


@dataclass(frozen=True, slots=True)
class OutboxRules:
    """The retry schedule of a failed post."""

    #: The first retry's delay; each later one waits twice as long, up to ``retry_cap``.
    first_retry: timedelta = timedelta(seconds=15)
    retry_cap: timedelta = timedelta(minutes=15)
    #: How long after it was written a message is still worth posting: a day-old "degraded" is history, and a
    #: follow-up's outcome is in the audit trail and ``/reset-status`` anyway.
    give_up_after: timedelta = timedelta(hours=24)
    #: How long a claimed message may take to post before another replica may take it over. Longer than one post
    #: can take (slack-sdk's 30 s timeout, plus its rate-limit retries), or a slow post is doubled.
    lease: timedelta = timedelta(minutes=2)
    #: How long a sent or given-up message is kept (an operator asking "was it posted, and when?"), then pruned,
    #: like health results: the outcome it announced stays in the audit trail for good.
    keep_for: timedelta = timedelta(days=30)


def retry_at(rules: OutboxRules, *, attempts: int, created_at: datetime, now: datetime,
             error: str) -> datetime | None:
    """When to try again after failed attempt number ``attempts`` (1 = the first post), or None to give up: Slack
    can never take this message, or the next try would fall past the give-up horizon."""
    if error in NEVER_POSTABLE:
        return None
    delay = min(rules.first_retry * (1 << min(max(attempts - 1, 0), 16)), rules.retry_cap)
    again = now + delay
    if again > created_at + rules.give_up_after:
        return None
    return again

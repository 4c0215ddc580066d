"""The outbox's claim on both databases: replicas sweeping at once claim each message once, a lapsed lease is
taken over once, the first claimant can no longer mark it sent; and a conversation's messages are claimable
only in the order they were written."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import cast

import pytest
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, select

from bot import store
from bot.clients.slack_notify import Blocks, Notifier
from bot.errors import SlackUnavailableError
from bot.models import OutboxMessage
from bot.services.outbox import Outbox, dm_message, thread_message
from tests.store.helpers import T0, run_concurrently

pytest_plugins = ("tests.store.dbfixtures",)

LEASE = timedelta(minutes=2)


def _queue(factory: sessionmaker[Session], *messages: tuple[str, str | None]) -> list[int]:
    with factory.begin() as session:
        return store.outbox.add_outbox(session, messages=[
            OutboxMessage(kind="thread" if ts else "channel", channel=channel, thread_ts=ts, text=f"message {i}",
                          origin="test", created_at=T0, next_at=T0)
            for i, (channel, ts) in enumerate(messages)])


def _sweep(factory: sessionmaker[Session], claim: str, at: timedelta, seen: list[int] | None = None) -> list[int]:
    """One replica's run: read what is ready (or, with ``seen``, what every replica read before any claim), then
    claim each, one transaction per message as the deliverer does."""
    now = T0 + at
    if seen is None:
        with factory.begin() as session:
            seen = store.outbox.due_outbox(session, now=now)
    won = []
    for i in seen:
        with factory.begin() as session:
            if store.outbox.claim_outbox(session, message_id=i, claim=claim, now=now,
                                         lease_until=now + LEASE) is not None:
                won.append(i)
    return won


def test_replicas_claim_each_message_once_and_a_lapsed_lease_once_more(factory: sessionmaker[Session]) -> None:
    ids = _queue(factory, *[(f"C{i:09}", None) for i in range(6)])  # six conversations: all ready at once
    replicas = 10
    claimed = run_concurrently(replicas, lambda n: _sweep(factory, f"first{n:02}", timedelta(seconds=1),
                                                          ids if n % 2 else None))
    assert sorted(i for got in claimed for i in got) == ids, "every message claimed, none twice"
    winner = {i: f"first{n:02}" for n, got in enumerate(claimed) for i in got}
    assert run_concurrently(replicas, lambda n: _sweep(factory, f"late{n:02}", timedelta(seconds=30))) == \
        [[]] * replicas, "nothing is claimable while the leases hold"

    retaken = run_concurrently(replicas, lambda n: _sweep(factory, f"second{n:02}", LEASE + timedelta(seconds=2),
                                                          ids if n % 2 else None))
    assert sorted(i for got in retaken for i in got) == ids, "each lapsed lease taken over once"
    heir = {i: f"second{n:02}" for n, got in enumerate(retaken) for i in got}
    with factory.begin() as session:
        assert not store.outbox.mark_outbox_sent(session, message_id=ids[0], claim=winner[ids[0]], now=T0, ts="1.1"), \
            "the first claimant lost the message with its lease"
        assert store.outbox.mark_outbox_sent(session, message_id=ids[0], claim=heir[ids[0]], now=T0, ts="1.2")
        rows = store.outbox.outbox_messages(session)
    assert {(m.id, m.attempts) for m in rows} == {(i, 2) for i in ids}
    assert [(m.state, m.ts) for m in rows if m.id == ids[0]] == [("sent", "1.2")]
    assert _sweep(factory, "third", LEASE * 3, [ids[0]]) == [], "a sent message is never claimed again"


def test_a_conversation_hears_its_messages_in_the_order_they_were_written(factory: sessionmaker[Session]) -> None:
    first, second, elsewhere, other_thread = _queue(
        factory, ("C0OPS", None), ("C0OPS", None), ("C0HELPDESK", "1.1"), ("C0OPS", "1.1"))
    now = T0 + timedelta(seconds=1)
    with factory.begin() as session:
        assert store.outbox.due_outbox(session, now=now) == [first, elsewhere, other_thread], \
            "the second ops message waits behind the first; other threads and channels do not"
        claimed = store.outbox.claim_outbox(session, message_id=first, claim="a", now=now, lease_until=now + LEASE)
        assert claimed is not None
    with factory.begin() as session:
        assert store.outbox.claim_outbox(session, message_id=second, claim="b", now=now,
                                         lease_until=now + LEASE) is None
        # The first post failed: it waits out a retry, and the second still waits behind it.
        assert store.outbox.retry_outbox(session, message_id=first, claim="a", next_at=now + timedelta(minutes=5),
                                         error="internal_error")
    with factory.begin() as session:
        assert second not in store.outbox.due_outbox(session, now=now + timedelta(minutes=1))
        assert store.outbox.due_outbox(session, now=now + timedelta(minutes=5))[0] == first
    later = now + timedelta(minutes=5)
    with factory.begin() as session:
        assert store.outbox.claim_outbox(session, message_id=first, claim="c", now=later, lease_until=later + LEASE)
        assert store.outbox.give_up_outbox(session, message_id=first, claim="c", now=later, error="internal_error")
    with factory.begin() as session:
        assert second in store.outbox.due_outbox(session, now=later), "a message given up holds nothing back"
        [given_up] = store.outbox.outbox_messages(session, states={"given_up"})
    assert (given_up.id, given_up.attempts, given_up.last_error) == (first, 2, "internal_error")


def test_pruning_forgets_only_old_messages_that_are_done_with(factory: sessionmaker[Session]) -> None:
    sent_old, owed_old, given_up_old, sent_new = _queue(factory, *[(f"C{i:09}", None) for i in range(4)])
    with factory.begin() as session:
        for i in (sent_old, given_up_old):
            assert store.outbox.claim_outbox(session, message_id=i, claim="c", now=T0,
                                             lease_until=T0 + LEASE) is not None
        assert store.outbox.mark_outbox_sent(session, message_id=sent_old, claim="c", now=T0, ts="1.1")
        assert store.outbox.give_up_outbox(session, message_id=given_up_old, claim="c", now=T0, error="is_archived")
        message = session.get(OutboxMessage, sent_new)
        assert message is not None
        message.created_at = T0 + timedelta(days=40)
        message.state = "sent"
    with factory.begin() as session:
        assert store.outbox.prune_outbox(session, before=T0 + timedelta(days=30)) == 2
    with factory.begin() as session:
        left = {m.id: m.state for m in session.exec(select(OutboxMessage))}
    assert left == {owed_old: "pending", sent_new: "sent"}, "a message still owed is kept, however old"


def test_the_scheduled_run_prunes_once_a_day(factory: sessionmaker[Session]) -> None:
    def sent_at_t0() -> int:
        [i] = _queue(factory, ("C000000001", None))
        with factory.begin() as session:
            assert store.outbox.claim_outbox(session, message_id=i, claim="c", now=T0,
                                             lease_until=T0 + LEASE) is not None
            assert store.outbox.mark_outbox_sent(session, message_id=i, claim="c", now=T0, ts="1.1")
        return i

    def ids() -> set[int | None]:
        with factory.begin() as session:
            return {m.id for m in session.exec(select(OutboxMessage))}

    outbox = Outbox(begin=factory.begin, notifier=cast(Notifier, object()))  # nothing is due: nothing is posted
    first = sent_at_t0()
    day31 = T0 + timedelta(days=31)
    assert outbox.deliver(now=day31) == 0
    assert first not in ids()
    second = sent_at_t0()
    outbox.deliver(now=day31 + timedelta(hours=1))
    assert second in ids(), "pruned once a day, not at every run"
    outbox.deliver(now=day31 + timedelta(days=1))
    assert second not in ids()


class _RefusingSlack:
    """Slack answering every post with ``code`` (a stand-in for the Notifier: this test is about the outbox)."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.posts = 0

    def post(self, channel: str, text: str, *, blocks: Blocks | None = None, thread_ts: str | None = None) -> str:
        self.posts += 1
        raise SlackUnavailableError("Slack refused the post.", code=self.code)


@pytest.mark.parametrize(("code", "at"), [
    ("is_archived", timedelta(seconds=1)),  # never postable: given up at once
    ("ratelimited", timedelta(hours=24)),  # retryable, but the next try would fall past the horizon
])
def test_a_message_given_up_is_audited_and_logged_without_its_text(
        factory: sessionmaker[Session], caplog: pytest.LogCaptureFixture, code: str, at: timedelta) -> None:
    [i] = _queue(factory, ("C000000001", None))
    slack = _RefusingSlack(code)
    outbox = Outbox(begin=factory.begin, notifier=cast(Notifier, slack))
    with caplog.at_level(logging.ERROR, logger="bot.services.outbox"):
        assert outbox.deliver(now=T0 + at) == 0
    assert slack.posts == 1
    with factory.begin() as session:
        message = session.get(OutboxMessage, i)
        assert message is not None
        assert (message.state, message.attempts, message.last_error) == ("given_up", 1, code)
        [event] = [e for e in store.audit.audit_between(session, since=T0) if e.action == "message_given_up"]
    assert event.actor == "scheduler"
    assert f'"error":"{code}"' in event.detail and '"origin":"test"' in event.detail
    assert "message 0" not in event.detail, "the audit row names the message, it does not repeat it"
    assert f"outbox message {i} (test) given up after 1 attempt(s) (Slack: {code})" in caplog.text
    assert outbox.deliver(now=T0 + at + timedelta(days=1)) == 0 and slack.posts == 1, "a given-up message rests"


class _RecordingSlack:
    """Slack taking every post, remembering what it was given (a stand-in for the Notifier)."""

    def __init__(self) -> None:
        self.said: list[tuple[str, str, str, Blocks | None, str | None]] = []

    def post(self, channel: str, text: str, *, blocks: Blocks | None = None, thread_ts: str | None = None) -> str:
        self.said.append(("post", channel, text, blocks, thread_ts))
        return f"1.{len(self.said)}"

    def dm(self, user: str, text: str, *, blocks: Blocks | None = None) -> tuple[str, str]:
        self.said.append(("dm", user, text, blocks, None))
        return "D0USER", f"1.{len(self.said)}"


def test_a_message_with_buttons_is_posted_with_its_blocks_and_a_plain_one_without(
        factory: sessionmaker[Session]) -> None:
    """A reset's Reveal button and the target's "This wasn't me" DM wait in the outbox with their Block Kit: the
    post and the DM hand Slack the same blocks the decision wrote; a plain message still posts no blocks."""
    button: Blocks = [{"type": "actions", "elements": [{"type": "button", "action_id": "reset_reveal",
                                                        "value": "R-1", "text": {"type": "plain_text",
                                                                                  "text": "Reveal"}}]}]
    slack = _RecordingSlack()
    outbox = Outbox(begin=factory.begin, notifier=cast(Notifier, slack))
    with factory.begin() as session:
        ids = outbox.enqueue(session, [
            thread_message("C0HELPDESK", "1.1", "sealed", blocks=button, origin="reset.reveal", request_id="R-1"),
            dm_message("U0ALICE", "reset", blocks=button, origin="reset.target_dm", request_id="R-1"),
            thread_message("C0HELPDESK", "1.1", "plain", origin="test")], now=T0)
    assert outbox.deliver(ids, now=T0) == 3
    assert slack.said == [("post", "C0HELPDESK", "sealed", button, "1.1"), ("dm", "U0ALICE", "reset", button, None),
                          ("post", "C0HELPDESK", "plain", None, "1.1")]


class _SlowSlack(_RecordingSlack):
    """Slack taking its time over the first post (held until ``release``), as it does on a busy Monday."""

    def __init__(self) -> None:
        super().__init__()
        self.posting = threading.Event()
        self.release = threading.Event()

    def post(self, channel: str, text: str, *, blocks: Blocks | None = None, thread_ts: str | None = None) -> str:
        if not self.said:
            self.posting.set()
            assert self.release.wait(10), "the test never released the first post"
        return super().post(channel, text, blocks=blocks, thread_ts=thread_ts)


def test_a_message_queued_while_an_earlier_one_is_posted_goes_out_right_after_it(
        factory: sessionmaker[Session]) -> None:
    """The thread's verdict is being posted when the target's "This wasn't me" queues containment's line in the
    same thread: its own kick finds it behind the verdict and leaves it. The delivery under way posts it right
    after, rather than leaving it to the scheduled run (a minute of silence in a security incident)."""
    slack = _SlowSlack()
    outbox = Outbox(begin=factory.begin, notifier=cast(Notifier, slack))
    with factory.begin() as session:
        first = outbox.enqueue(session, [thread_message("C0HELPDESK", "1.1", "verdict", origin="test")], now=T0)
    delivering = threading.Thread(target=outbox.deliver, args=(first,), kwargs={"now": T0})
    delivering.start()
    assert slack.posting.wait(10)
    with factory.begin() as session:
        later = outbox.enqueue(session, [thread_message("C0HELPDESK", "1.1", "contained", origin="test"),
                                         thread_message("C0ELSEWHERE", "2.2", "unrelated", origin="test")], now=T0)
    assert outbox.deliver(later[:1], now=T0) == 0, "behind the verdict still being posted: its kick leaves it"
    slack.release.set()
    delivering.join(10)
    assert [(s[1], s[2]) for s in slack.said] == [("C0HELPDESK", "verdict"), ("C0HELPDESK", "contained")], \
        "posted by the delivery under way, in order; another conversation's message is left to its own kick"

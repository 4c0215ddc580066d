"""A Duo push the person reports as fraud after the agent moved on to another attempt (a call-back attested, or a
second push sent while the first still waited). The person's "Report" says someone is impersonating them whatever
the bot has done with the request since: it must still count as their "No" and reach security, not be dropped
because the request's verification columns no longer name that push."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from bot.domain.lifecycle import RequestState
from bot.models import utcnow
from lab.slack.driver import SlackDriver
from lab.stack import Lab
from tests.scenarios.harness import RunningBot, verifying_bot, wait_until
from tests.scenarios.test_request_approval import request_for
from tests.scenarios.test_verification import (
    call_back,
    duo_hold,
    duo_press,
    in_thread,
    req_of,
    request_id,
    security,
    verify,
)


@pytest.fixture(scope="module")
def bot(lab: Lab, driver: SlackDriver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBot]:
    yield from verifying_bot(lab, driver, tmp_path_factory)


def test_a_fraud_report_on_a_push_a_call_back_replaced_still_cancels_and_alerts_security(
        lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """Hank sends Bob a Duo push; the caller says it does not arrive, so Hank attests a call-back instead. Bob, who
    never called, then presses Report on the push still on his phone. His report must cancel the request and tell
    security, as a report on a push still waiting does."""
    duo_hold(lab, "bob")
    request = request_for(lab, driver, "bob", "push, then a call-back")
    rid = request_id(driver, lab, request)
    verify(lab, driver, request, "duo-push")
    in_thread(lab, driver, request, "Duo push")
    call_back(lab, driver, request)
    in_thread(lab, driver, request, "Caller verified by call-back")
    duo_press(lab, "bob", "fraud")
    alert = driver.wait_for_message(security(lab), lambda m: rid in m["text"] and "fraud" in m["text"], timeout=20)
    assert "impersonating" in alert["text"]
    wait_until(lambda: req_of(bot, request).state == RequestState.CANCELLED, what="the request cancelled")


def test_a_fraud_report_on_a_push_a_second_push_replaced_still_alerts_security(
        lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """Hank's first push seems lost, so he sends a second; Alice presses Report on the first (the oldest waiting)."""
    duo_hold(lab, "alice")
    duo_hold(lab, "alice")
    request = request_for(lab, driver, "alice", "push twice")
    rid = request_id(driver, lab, request)
    verify(lab, driver, request, "duo-push")
    in_thread(lab, driver, request, "Duo push")
    wait_until(lambda: req_of(bot, request).verify_txid is not None, what="the first push recorded")
    first = req_of(bot, request).verify_txid
    verify(lab, driver, request, "duo-push")
    wait_until(lambda: req_of(bot, request).verify_txid not in (None, first), what="the second push recorded")
    duo_press(lab, "alice", "fraud")
    alert = driver.wait_for_message(security(lab), lambda m: rid in m["text"] and "fraud" in m["text"], timeout=20)
    assert "impersonating" in alert["text"]


class _StoppedReplica:
    """The Duo pool of a replica stopped right after it sent the push: the push is never followed there."""

    def submit(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_a_fraud_report_made_while_the_bot_restarted_is_not_recorded_as_a_timeout(
        lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """Hank sends Nora a push and the bot is restarted before Nora answers (the follower dies with its process; no
    replica follows the push again, the sweep ends it past its deadline). Nora presses Report meanwhile, and Duo
    holds that answer for the push's txid. The sweep must not call it unanswered: the report cancels the request
    and reaches security."""
    requests = bot.services.requests
    pool = requests.duo_pool
    duo_hold(lab, "nora")
    requests.duo_pool = _StoppedReplica()  # type: ignore[assignment]
    try:
        request = request_for(lab, driver, "nora", "push, then a restart")
        rid = request_id(driver, lab, request)
        verify(lab, driver, request, "duo-push")
        in_thread(lab, driver, request, "Duo push")
        duo_press(lab, "nora", "fraud")
        requests.sweep(now=utcnow() + timedelta(minutes=3))  # the push's 90 s and the sweep's margin are past
    finally:
        requests.duo_pool = pool
    alert = driver.wait_for_message(security(lab), lambda m: rid in m["text"] and "fraud" in m["text"], timeout=20)
    assert "impersonating" in alert["text"]
    wait_until(lambda: req_of(bot, request).state == RequestState.CANCELLED, what="the request cancelled")

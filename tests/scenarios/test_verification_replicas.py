"""Caller verification with two replicas on one PostgreSQL database: whichever replica Slack hands a click to, a
code sent by one is checked by the other (sealed with the shared key), wrong tries are counted once in the
database, and a verified caller plus an approval make exactly one reset; an approval racing a call-back on the
other replica counts only if it came after it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from bot.domain.lifecycle import RequestState
from bot.domain.verification import CODE_ALPHABET, CODE_LENGTH
from bot.settings import VerifyMethod
from lab.slack.driver import SlackDriver
from lab.stack import Lab
from tests.scenarios.conftest import with_rules
from tests.scenarios.harness import (
    RunningBot,
    duo_settings,
    lab_settings,
    link_agent,
    pg_schema_url,
    running_bot,
    wait_until,
)
from tests.scenarios.test_request_approval import request_for, slack_id
from tests.scenarios.test_verification import (
    code_sent_to,
    enter_code,
    helpdesk,
    in_thread,
    req_of,
    request_id,
    verify,
)


@pytest.fixture(scope="module")
def replicas(lab: Lab, driver: SlackDriver) -> Iterator[tuple[RunningBot, RunningBot]]:
    with pg_schema_url(None) as url:
        settings = lab_settings(lab, url, verify_required=True, verify_methods="slack-code,duo-push",
                                **duo_settings(lab))
        with running_bot(settings, driver) as first, running_bot(settings, driver) as second:
            link_agent(lab, driver, "hank")
            yield first, second


def test_a_code_sent_by_one_replica_is_checked_by_either(lab: Lab, driver: SlackDriver,
                                                         replicas: tuple[RunningBot, RunningBot]) -> None:
    first, second = replicas
    driver.reset()
    request = request_for(lab, driver, "alice", "two replicas")
    rid = request_id(driver, lab, request)
    verify(lab, driver, request, "slack-code")
    code = code_sent_to(driver, "alice", rid)
    wrong = next(c * CODE_LENGTH for c in CODE_ALPHABET if c * CODE_LENGTH != code)
    enter_code(lab, driver, request, wrong)
    driver.wait_for_ephemeral("hank", lambda e: "2 tries left" in e["text"])
    assert second.requests()[0].verify_tries == 1, "both replicas read the one count in the database"
    enter_code(lab, driver, request, code)
    in_thread(lab, driver, request, "Caller verified by Slack code")
    driver.click("mona", helpdesk(lab), request["ts"], "request_approve", stale_ok=True)
    wait_until(lambda: req_of(first, request).verdict, timeout=30, what="the reset's verdict")
    assert req_of(second, request).state == RequestState.SUCCEEDED
    assert [e.action for e in first.audit(rid)].count("reset_started") == 1
    assert first.runtime.services.reset.wait_idle(timeout=30) and second.runtime.services.reset.wait_idle(timeout=30)


def test_an_approval_racing_a_call_back_on_another_replica_counts_only_after_it(
        lab: Lab, driver: SlackDriver, replicas: tuple[RunningBot, RunningBot]) -> None:
    """Mona's Approve on one replica and Hank's call-back on the other at the same moment: the request row's lock
    orders them. An approval first is taken back (the call-back does not start the reset); an approval after the
    call-back counts. Never both, and never a reset resting on an approval given before the call-back."""
    first, second = replicas
    for bot in replicas:
        with_rules(bot, verify_methods=[VerifyMethod.SLACK_CODE, VerifyMethod.CALLBACK])
    driver.reset()
    request = request_for(lab, driver, "bob", "approve and call back at once")
    rid = request_id(driver, lab, request)
    start = threading.Barrier(2)

    def approve() -> None:
        start.wait()
        first.services.requests.approve(request_id=rid, actor=slack_id(lab, "mona"), correlation_id="c-race-a")

    def call_back() -> None:
        start.wait()
        second.services.requests.attest_callback(request_id=rid, actor=slack_id(lab, "hank"),
                                                 correlation_id="c-race-b")

    both = [threading.Thread(target=approve), threading.Thread(target=call_back)]
    for t in both:
        t.start()
    for t in both:
        t.join()
    actions = [e.action for e in first.audit(rid)]
    assert actions.count("caller_verified") == 1 and actions.count("approval_added") == 1
    if actions.index("approval_added") < actions.index("caller_verified"):
        assert "approval_not_counted" in actions and "approved" not in actions, actions
        assert req_of(second, request).state == RequestState.PENDING_APPROVAL
        in_thread(lab, driver, request, "approve again")
        assert second.services.requests.cancel(request_id=rid, actor=slack_id(lab, "hank"), correlation_id="c") \
            is None
    else:
        assert "approval_not_counted" not in actions and "approved" in actions, actions
        wait_until(lambda: req_of(first, request).verdict, timeout=30, what="the reset's verdict")
        assert first.runtime.services.reset.wait_idle(timeout=30)
        assert second.runtime.services.reset.wait_idle(timeout=30)

"""Caller verification with two replicas on one PostgreSQL database: whichever replica Slack hands a click to, a
code sent by one is checked by the other (sealed with the shared key), wrong tries are counted once in the
database, and a verified caller plus an approval make exactly one reset."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.domain.lifecycle import RequestState
from bot.domain.verification import CODE_ALPHABET, CODE_LENGTH
from lab.slack.driver import SlackDriver
from lab.stack import Lab
from tests.scenarios.harness import (
    RunningBot,
    duo_settings,
    lab_settings,
    link_agent,
    pg_schema_url,
    running_bot,
    wait_until,
)
from tests.scenarios.test_request_approval import request_for
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

"""An agent taken out of the agents' user group in the middle of a request can no longer drive its caller's
verification (start a method, enter a code, attest a call-back), as they can no longer get it approved: the
approval path asks Slack for the membership at that moment, and so does every verification click. Each refusal is
one sentence and an audit row; nothing is sent, nothing verified."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from lab.slack.driver import SlackDriver
from lab.stack import Lab
from tests.scenarios.harness import RunningBot, verifying_bot
from tests.scenarios.test_request_approval import request_for
from tests.scenarios.test_reset import everything_people_and_storage_hold
from tests.scenarios.test_verification import code_sent_to, helpdesk, in_thread, req_of, request_id, verify

_HELPDESK_GROUP = "S00HELPDESK"
_LEFT = "You are no longer a helpdesk agent"


@pytest.fixture(scope="module")
def bot(lab: Lab, driver: SlackDriver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBot]:
    yield from verifying_bot(lab, driver, tmp_path_factory)


@pytest.fixture
def hank_leaves(driver: SlackDriver) -> Iterator[Any]:
    """Call it to take Hank out of the helpdesk group; he is put back after the test."""
    def leave() -> None:
        driver.usergroup("ivan", "update", usergroup=_HELPDESK_GROUP, users=["hedy"])
    yield leave
    driver.usergroup("ivan", "update", usergroup=_HELPDESK_GROUP, users=["hank", "hedy"])


def refused_as_left(bot: RunningBot, rid: str) -> None:
    refused = [e for e in bot.audit(rid) if e.action == "refused"]
    assert refused and '"reason":"requester_not_an_agent"' in refused[-1].detail, [e.detail for e in refused]


@pytest.mark.parametrize("method", ["slack-code", "duo-push", "slack-confirm", "callback"])
def test_an_agent_who_left_cannot_start_a_verification(lab: Lab, bot: RunningBot, driver: SlackDriver,
                                                       hank_leaves: Any, method: str) -> None:
    request = request_for(lab, driver, "alice", f"left before {method}")
    rid = request_id(driver, lab, request)
    hank_leaves()
    before = len(driver.views("hank"))
    verify(lab, driver, request, method)
    driver.wait_for_ephemeral("hank", lambda e: _LEFT in e["text"] and rid in e["text"])
    assert req_of(bot, request).verification == "none"
    assert "verify_started" not in [e.action for e in bot.audit(rid)]
    assert not [v for v in driver.views("hank")[before:] if str(v.get("callback_id", "")).startswith("verify_")]
    refused_as_left(bot, rid)


def test_an_agent_who_left_cannot_enter_the_code(lab: Lab, bot: RunningBot, driver: SlackDriver,
                                                 hank_leaves: Any, caplog: pytest.LogCaptureFixture) -> None:
    """The code modal opened while Hank was an agent; he leaves, then submits the right code: refused, and the
    code he typed reaches no message, row or log line (only the target's DM holds it)."""
    caplog.set_level(logging.DEBUG)
    request = request_for(lab, driver, "bob", "left with the code box open")
    rid = request_id(driver, lab, request)
    verify(lab, driver, request, "slack-code")
    code = code_sent_to(driver, "bob", rid)
    prompt = in_thread(lab, driver, request, "press *Enter code*")
    before = len(driver.views("hank"))
    driver.click("hank", helpdesk(lab), prompt["ts"], "caller_enter_code", value=rid, stale_ok=True)
    modal = driver.wait_for(lambda: next((v for v in driver.views("hank")[before:]
                                          if v.get("callback_id") == "verify_code"), None))
    hank_leaves()
    driver.submit("hank", modal["id"], {"verify_code_input": code})
    driver.wait_for_ephemeral("hank", lambda e: _LEFT in e["text"] and rid in e["text"])
    assert req_of(bot, request).verification == "pending", "not verified"
    assert "caller_verified" not in [e.action for e in bot.audit(rid)]
    refused_as_left(bot, rid)
    # And the Enter code button no longer opens the box.
    driver.click("hank", helpdesk(lab), prompt["ts"], "caller_enter_code", value=rid, stale_ok=True)
    driver.wait_for_ephemeral("hank", lambda e: _LEFT in e["text"] and len([
        x for x in driver.ephemeral("hank") if _LEFT in x["text"]]) >= 2)
    everywhere = everything_people_and_storage_hold(lab, driver, bot)
    assert everywhere.count(code) == 1 and code.lower() not in everywhere, "the code is only in the target's DM"
    logs = "\n".join(r.getMessage() + str(r.args) + str(r.exc_info) for r in caplog.records)
    assert code not in logs and code.lower() not in logs


def test_an_agent_who_left_cannot_attest_a_call_back(lab: Lab, bot: RunningBot, driver: SlackDriver,
                                                     hank_leaves: Any) -> None:
    request = request_for(lab, driver, "alice", "left with the call-back box open")
    rid = request_id(driver, lab, request)
    before = len(driver.views("hank"))
    verify(lab, driver, request, "callback")
    modal = driver.wait_for(lambda: next((v for v in driver.views("hank")[before:]
                                          if v.get("callback_id") == "verify_callback"), None))
    hank_leaves()
    driver.submit("hank", modal["id"], {"verify_callback_input": ["attested"]})
    driver.wait_for_ephemeral("hank", lambda e: _LEFT in e["text"] and rid in e["text"])
    assert req_of(bot, request).verification == "none"
    assert "caller_verified" not in [e.action for e in bot.audit(rid)]
    refused_as_left(bot, rid)

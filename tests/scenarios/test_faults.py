"""Faults on the way: a redelivered command, and Graph failing mid-request. One sentence, nothing half-done."""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Iterator

import httpx
import pytest

from bot.domain.lifecycle import RequestState
from lab.slack.driver import SlackDriver
from lab.stack import Lab
from tests.scenarios.harness import RunningBot, wait_until
from tests.scenarios.test_request_approval import slack_id


@pytest.fixture
def entra_control(lab: Lab) -> Iterator[httpx.Client]:
    tls = ssl.create_default_context(cafile=lab.descriptor["entra"]["ca_file"])
    with httpx.Client(base_url=lab.descriptor["entra"]["control"], verify=tls) as c:
        c.post("/reset")
        yield c
        c.post("/reset")


def test_a_redelivered_command_makes_one_request(lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    driver.faults(drop_acks=True, ack_timeout_s=0.3)
    try:
        driver.command("hank", "/reset", f"<@{slack_id(lab, 'bob')}|bob> redelivery", channel=helpdesk)
        wait_until(lambda: len(driver.envelopes("slash_commands")) >= 2, what="a redelivery")
    finally:
        driver.faults(drop_acks=False)
    driver.wait_for_message(helpdesk, lambda m: "redelivery" in str(m["blocks"]))
    wait_until(lambda: len(driver.ephemeral("hank")) >= 1, what="the agent's confirmation")
    requests = [r for r in bot.requests() if r.reason == "redelivery"]
    assert len(requests) == 1
    assert len([m for m in driver.messages(helpdesk) if "redelivery" in str(m["blocks"])]) == 1


def test_graph_failing_gives_one_sentence_with_a_reference(lab: Lab, bot: RunningBot, driver: SlackDriver,
                                                           entra_control: httpx.Client,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    entra_control.post("/faults", json={"fail_next_5xx": 20})
    with caplog.at_level(logging.ERROR, logger="resetbot.errors"):
        driver.command("hank", "/reset", f"<@{slack_id(lab, 'alice')}|alice> graph is down", channel=helpdesk)
        said = driver.wait_for_ephemeral("hank", lambda e: "reference" in e["text"], timeout=20)
    assert "Nothing was changed; try again in a minute" in said["text"]
    ref = re.search(r"reference (c-[0-9a-f]{10})", said["text"])
    assert ref, said["text"]
    assert any(ref.group(1) in r.getMessage() for r in caplog.records), "the log line carries the same reference"
    assert not driver.messages(helpdesk)
    assert not [r for r in bot.requests() if r.reason == "graph is down"]
    assert all(r.state != RequestState.RESETTING for r in bot.requests())


def test_a_request_slack_would_not_post_is_withdrawn(lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """Slack refusing the request message (wherever the bot tries) must leave no pending request behind: nobody
    could see or decide it, yet it would count as open until it expired, and an approver's stale button or the
    target's Yes could still act on it. The agent hears one sentence; the trail says it was withdrawn."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    driver.faults(down=["chat.postMessage"])
    try:
        driver.command("hank", "/reset", f"<@{slack_id(lab, 'bob')}|bob> slack said no", channel=helpdesk)
        said = driver.wait_for_ephemeral("hank", lambda e: "reference c-" in e["text"], timeout=20)
    finally:
        driver.faults(down=[])
    assert "Nothing was changed" in said["text"], said["text"]
    assert len(driver.ephemeral("hank")) == 1, "one sentence"
    [req] = [r for r in bot.requests() if r.reason == "slack said no"]
    assert req.state == RequestState.CANCELLED, "no request is left pending without a thread"
    assert req.thread_ts is None
    actions = [e.action for e in bot.audit(req.id)]
    assert actions == ["requested", "cancelled"], actions

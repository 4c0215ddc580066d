"""Who may reveal a temporary password (``RESETBOT_DELIVERY``) is fixed when the request is made and stored with
it: an operator changing the setting (and restarting) between the request and its reveal changes nothing for that
request. Otherwise a switch from ``target`` to ``agent`` would hand the agent a password the request promised only
its owner would see."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from bot.settings import Delivery
from lab.slack.driver import SlackDriver
from lab.stack import Lab
from tests.scenarios.harness import RunningBot, wait_until
from tests.scenarios.test_request_approval import request_for, slack_id
from tests.scenarios.test_reset import everything_people_and_storage_hold


def test_a_request_made_for_the_target_to_reveal_stays_theirs_after_the_setting_changes(
        lab: Lab, bot: RunningBot, driver: SlackDriver, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    reset, rules = bot.services.reset, bot.services.requests.rules
    reset.delivery = Delivery.TARGET
    bot.services.requests.rules = dataclasses.replace(rules, delivery=Delivery.TARGET)
    try:
        request = request_for(lab, driver, "alice", "only she may read it")
    finally:  # the operator sets RESETBOT_DELIVERY=agent and restarts, before the approval and the reveal
        reset.delivery, bot.services.requests.rules = Delivery.AGENT, rules
    ts = str(request["ts"])
    driver.click("mona", helpdesk, ts, "request_approve")
    done = driver.wait_for_message(helpdesk, lambda m: "Done:" in m["text"], thread_ts=ts, timeout=30)
    assert "Only Alice Archer can reveal it" in done["text"] and "press Reveal" not in done["text"]
    assert "reset_reveal" not in str(driver.messages(helpdesk, thread_ts=ts))
    req = wait_until(lambda: next((r for r in bot.requests() if r.thread_ts == ts and r.verdict), None),
                     what="the verdict")
    shown, said = reset.reveal(request_id=req.id, actor=slack_id(lab, "hank"), correlation_id="c-test")
    assert shown is None and said is not None and said.startswith("Only the person whose password was reset")
    assert '"reason":"only_target_reveals"' in bot.audit(req.id)[-1].detail
    dm = driver.dm_channel("alice")
    notice = driver.wait_for_message(dm, lambda m: "Reveal" in str(m["blocks"]) and req.id in str(m["blocks"]))
    driver.click("alice", dm, notice["ts"], "reset_reveal")
    modal = driver.wait_for_view("alice", lambda v: v.get("callback_id") == "reveal_password")
    password = str(modal["blocks"][1]["text"]["text"]).strip("`")
    assert len(password) >= 16
    everywhere = everything_people_and_storage_hold(lab, driver, bot)
    everywhere += "\n".join(r.getMessage() + str(r.args) + str(r.exc_info) for r in caplog.records)
    assert password not in everywhere

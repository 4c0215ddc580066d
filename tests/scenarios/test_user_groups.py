"""Authority pinned to user groups by id (issue 14, item 6).

A user group's handle belongs to whichever group holds it now: where members may change user groups (Slack's
default), anyone can rename the helpdesk group's handle away and create a group of their own as @helpdesk. The bot
pins the agents' and approvers' groups by id: given as an id, or given as a handle and resolved once, at start.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.wiring import build_runtime
from lab.slack.driver import SlackDriver
from lab.stack import Lab
from tests.scenarios.harness import RunningBot, lab_settings, link_agent, running_bot
from tests.scenarios.test_request_approval import slack_id


@pytest.fixture(scope="module")
def bot(lab: Lab, driver: SlackDriver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBot]:
    """The agents' group given by its id, as the README recommends."""
    db: Path = tmp_path_factory.mktemp("bot") / "resetbot.db"
    with running_bot(lab_settings(lab, f"sqlite:///{db}", agents_group="S00HELPDESK"), driver) as running:
        link_agent(lab, driver, "hank")
        yield running


@pytest.fixture(autouse=True)
def _groups_back(driver: SlackDriver) -> Iterator[None]:
    """The lab is shared: the next module's bot pins the groups as the fixture made them."""
    yield
    driver.reset()


def take_over_the_helpdesk_handle(driver: SlackDriver, who: str) -> str:
    """``who`` (any member, as Slack allows by default) renames the real group's handle away and creates their
    own @helpdesk with only themselves in it; returns its id."""
    driver.usergroup(who, "update", usergroup="S00HELPDESK", handle="helpdesk-old", name="helpdesk-old")
    return str(driver.usergroup(who, "create", handle="helpdesk", name="helpdesk", users=[who])["id"])


def test_a_group_pinned_by_id_ignores_whoever_takes_its_handle(lab: Lab, bot: RunningBot,
                                                                driver: SlackDriver) -> None:
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    take_over_the_helpdesk_handle(driver, "alice")
    driver.command("alice", "/reset", "@bob she made herself helpdesk", channel=helpdesk)
    said = driver.wait_for_ephemeral("alice", lambda e: e["source"] != "slack")
    assert said["text"].startswith("Only members of the @helpdesk user group can request password resets")
    assert not driver.messages(helpdesk)
    driver.command("hank", "/reset", "@bob still the helpdesk", channel=helpdesk)
    request = driver.wait_for_message(helpdesk, lambda m: "still the helpdesk" in str(m["blocks"]))
    assert f"<@{slack_id(lab, 'hank')}>" in str(request["blocks"])


def test_a_handle_is_resolved_once_at_start_and_logged(lab: Lab, driver: SlackDriver, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    settings = lab_settings(lab, f"sqlite:///{tmp_path / 'pins.db'}")  # the default handles
    runtime = build_runtime(settings)
    try:
        with caplog.at_level(logging.INFO):
            runtime.pin_groups()
        said = [r.getMessage() for r in caplog.records if "RESETBOT_AGENTS_GROUP" in r.getMessage()]
        assert said == ["RESETBOT_AGENTS_GROUP: the handle @helpdesk is the user group S00HELPDESK, which is pinned "
                        "until the bot restarts; set RESETBOT_AGENTS_GROUP=S00HELPDESK to pin it for good"]
        take_over_the_helpdesk_handle(driver, "alice")
        assert runtime.notifier.group_id("helpdesk") == "S00HELPDESK"
        assert slack_id(lab, "alice") not in runtime.notifier.group_members("helpdesk")
    finally:
        runtime.close(drain_s=0)

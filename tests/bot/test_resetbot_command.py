"""The real bot (create_app + Socket Mode) against the lab's Slack: the wiring every feature rides on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient

from bot.app import create_app
from bot.messages import help_text
from bot.settings import Settings
from lab.slack.driver import SlackDriver
from lab.stack import Lab


@pytest.fixture(scope="module")
def driver(lab: Lab) -> Iterator[SlackDriver]:
    with SlackDriver(lab.descriptor["slack"]["control"]) as drv:
        yield drv


@pytest.fixture(scope="module")
def bot(lab: Lab, driver: SlackDriver) -> Iterator[None]:
    slack = lab.descriptor["slack"]
    settings = Settings(
        slack_bot_token=slack["bot_token"], slack_app_token=slack["app_token"], slack_api_base=slack["api_base"]
    )
    web = WebClient(base_url=slack["api_base"])
    handler = SocketModeHandler(create_app(settings), slack["app_token"], web_client=web)
    handler.connect()  # type: ignore[no-untyped-call]
    driver.wait_connected()
    yield
    handler.close()  # type: ignore[no-untyped-call]


def test_help_is_shown_only_to_the_person_who_asked(bot: None, driver: SlackDriver) -> None:
    ack = driver.command("hank", "/resetbot", "help", channel="helpdesk")
    assert ack["acked"]
    shown = driver.wait_for_ephemeral("hank", lambda e: "/reset <user>" in e["text"])
    assert shown["text"] == help_text()
    assert not any("/reset <user>" in m["text"] for m in driver.messages("helpdesk")), "help went to the channel"
    assert not driver.ephemeral("alice")


def test_an_empty_resetbot_command_is_help_too(bot: None, driver: SlackDriver) -> None:
    ack = driver.command("hedy", "/resetbot", "", channel="helpdesk")
    assert ack["acked"]
    driver.wait_for_ephemeral("hedy", lambda e: e["text"] == help_text())


def test_an_unknown_subcommand_gets_one_sentence_naming_the_choices(bot: None, driver: SlackDriver) -> None:
    driver.command("ivan", "/resetbot", "frobnicate now", channel="helpdesk")
    shown = driver.wait_for_ephemeral("ivan", lambda e: "frobnicate" in e["text"])
    assert shown["text"].startswith("`/resetbot frobnicate` is not a command I know")
    assert "`help`" in shown["text"]

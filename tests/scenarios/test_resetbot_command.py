"""The real bot (create_app + Socket Mode) against the lab's Slack: the wiring every feature rides on."""

from __future__ import annotations

from bot.messages.commands import help_text
from lab.slack.driver import SlackDriver
from tests.scenarios.harness import RunningBot


def test_help_is_shown_only_to_the_person_who_asked(bot: RunningBot, driver: SlackDriver) -> None:
    ack = driver.command("hank", "/resetbot", "help", channel="helpdesk")
    assert ack["acked"]
    shown = driver.wait_for_ephemeral("hank", lambda e: "/reset <user>" in e["text"])
    assert shown["text"] == help_text()
    assert not any("/reset <user>" in m["text"] for m in driver.messages("helpdesk")), "help went to the channel"
    assert not driver.ephemeral("alice")


def test_an_empty_resetbot_command_is_help_too(bot: RunningBot, driver: SlackDriver) -> None:
    ack = driver.command("hedy", "/resetbot", "", channel="helpdesk")
    assert ack["acked"]
    driver.wait_for_ephemeral("hedy", lambda e: e["text"] == help_text())


def test_an_unknown_subcommand_gets_one_sentence_naming_the_choices(bot: RunningBot, driver: SlackDriver) -> None:
    driver.command("ivan", "/resetbot", "frobnicate now", channel="helpdesk")
    shown = driver.wait_for_ephemeral("ivan", lambda e: "frobnicate" in e["text"])
    assert shown["text"].startswith("`/resetbot frobnicate` is not a command I know")
    assert "`help`" in shown["text"]

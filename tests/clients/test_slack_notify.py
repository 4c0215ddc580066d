"""What the bot remembers of Slack, and for how long, against the lab's Slack through slack-sdk's WebClient: each
remembered answer saves a Web API call, and none outlives what its decision accepts (a member taken out of a
group is gone for the next click, though the list was read a moment before)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.clients.slack_notify import SlackNotifier
from bot.domain.groups import MEMBERS_FOR_A_DECISION_S, MEMBERS_FOR_A_REQUEST_S, MEMBERS_FOR_A_VIEW_S
from lab.people import person
from lab.slack import SlackDriver, SlackStandIn
from lab.slack.ids import user_id_for

pytestmark = pytest.mark.lab  # the lab's Slack stand-in: left out of the fast loop like the rest of the lab

HELPDESK = "S00HELPDESK"


@pytest.fixture(scope="module")
def stand_in() -> Iterator[SlackStandIn]:
    with SlackStandIn() as server:
        yield server


@pytest.fixture(scope="module")
def driver(stand_in: SlackStandIn) -> Iterator[SlackDriver]:
    with SlackDriver(stand_in.descriptor()["control"]) as drv:
        yield drv


@pytest.fixture
def notifier(stand_in: SlackStandIn, driver: SlackDriver) -> SlackNotifier:
    """A new notifier (nothing remembered) on a clean workspace (no calls recorded, groups as made)."""
    driver.reset()
    desc = stand_in.descriptor()
    return SlackNotifier(WebClient(token=desc["bot_token"], base_url=desc["api_base"]))


def calls(driver: SlackDriver, method: str) -> list[dict[str, Any]]:
    return driver.calls(method)


def slack_id(_driver: SlackDriver, key: str) -> str:
    return user_id_for(key)


def test_a_profile_is_read_once_for_its_name_and_its_email(notifier: SlackNotifier, driver: SlackDriver) -> None:
    hank = slack_id(driver, "hank")
    assert notifier.email_of(hank) == person("hank").upn.lower()
    assert notifier.name_of(hank) == "Hank Hughes"
    assert notifier.email_of(hank) == person("hank").upn.lower()
    assert [c["args"]["user"] for c in calls(driver, "users.info")] == [hank]


def test_an_address_found_is_remembered_and_one_not_found_is_asked_again(notifier: SlackNotifier,
                                                                        driver: SlackDriver) -> None:
    hank = slack_id(driver, "hank")
    assert notifier.user_by_email(person("hank").upn) == hank
    assert notifier.user_by_email(person("hank").upn.upper()) == hank
    assert notifier.user_by_email("nobody@corp.example.test") is None
    assert notifier.user_by_email("nobody@corp.example.test") is None  # someone who joins Slack is found at once
    assert [c["args"]["email"] for c in calls(driver, "users.lookupByEmail")] == [
        person("hank").upn, "nobody@corp.example.test", "nobody@corp.example.test"]


def test_a_member_taken_out_is_gone_for_the_next_decision_though_the_list_was_just_read(
        notifier: SlackNotifier, driver: SlackDriver) -> None:
    hank, hedy = slack_id(driver, "hank"), slack_id(driver, "hedy")
    assert hank in notifier.group_members(HELPDESK, max_age=MEMBERS_FOR_A_VIEW_S)
    driver.usergroup("ivan", "update", usergroup=HELPDESK, users=["hedy"])
    # A view may show the list it read a moment ago; a decision reads it again.
    assert hank in notifier.group_members(HELPDESK, max_age=MEMBERS_FOR_A_REQUEST_S)
    assert notifier.group_members(HELPDESK, max_age=MEMBERS_FOR_A_DECISION_S) == {hedy}
    assert notifier.group_members(HELPDESK, max_age=MEMBERS_FOR_A_VIEW_S) == {hedy}, "the newer read is kept"
    assert len(calls(driver, "usergroups.users.list")) == 2


def test_decisions_at_once_share_a_read_begun_after_each_asked(notifier: SlackNotifier,
                                                              driver: SlackDriver) -> None:
    members = notifier.group_members(HELPDESK)  # pinned, and read once before
    before = len(calls(driver, "usergroups.users.list"))
    clicks = 20
    start = threading.Barrier(clicks)
    seen: list[frozenset[str]] = []

    def click() -> None:
        start.wait()
        seen.append(notifier.group_members(HELPDESK, max_age=MEMBERS_FOR_A_DECISION_S))

    threads = [threading.Thread(target=click) for _ in range(clicks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reads = len(calls(driver, "usergroups.users.list")) - before
    assert seen == [members] * clicks
    assert 1 <= reads < clicks, "each click waits for a read begun after it asked, and shares it"


def test_an_app_home_is_published_again_only_when_it_changed(notifier: SlackNotifier, driver: SlackDriver) -> None:
    hank = slack_id(driver, "hank")

    def view(text: str) -> dict[str, Any]:
        return {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}

    notifier.publish_home(hank, view("one"))
    notifier.publish_home(hank, view("one"), only_if_changed=True)
    assert len(calls(driver, "views.publish")) == 1
    notifier.publish_home(hank, view("two"), only_if_changed=True)
    notifier.publish_home(hank, view("two"))  # the person opened App Home: always published
    assert len(calls(driver, "views.publish")) == 3
    assert "two" in str(driver.home_view("hank"))


def test_a_dm_is_opened_once_and_every_message_reaches_it(notifier: SlackNotifier, driver: SlackDriver) -> None:
    hank = slack_id(driver, "hank")
    first, _ = notifier.dm(hank, "one")
    second, _ = notifier.dm(hank, "two")
    assert first == second == driver.dm_channel("hank")
    assert [m["text"] for m in driver.messages(first)][-2:] == ["one", "two"]
    assert len(calls(driver, "conversations.open")) == 1

"""Slack and Entra ID are matched by UPN, not by ``mail`` (issue 14, item 3).

Helpdesk staff can often edit ``mail`` on-premises (Entra Connect then syncs it): whoever sets a victim's mail to
the address on an accomplice's Slack profile would otherwise make that Slack account the victim in the bot's eyes.
The lab shows it with Zoe, whose Slack profile carries an address (another domain's) that is nobody's UPN.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from bot.models import SealedSecret
from bot.settings import TargetConfirmation
from lab.people import person
from lab.slack.driver import SlackDriver
from lab.stack import Lab
from tests.clients.graphlab import EntraControl
from tests.scenarios.conftest import with_rules
from tests.scenarios.harness import RunningBot, request_row, wait_until
from tests.scenarios.test_request_approval import slack_id
from tests.scenarios.test_reset import everything_people_and_storage_hold

ZOE_SLACK_ADDRESS = "zoe.zimmer@corp-chat.example"


@pytest.fixture(scope="module")
def entra(lab: Lab) -> EntraControl:
    return EntraControl(lab)


@pytest.fixture
def mail_pointed_at_zoe(entra: EntraControl) -> Iterator[list[str]]:
    """Set people's Entra ``mail`` to Zoe's Slack address, as an on-prem edit would; put them back after."""
    changed: list[str] = []
    yield changed
    for key in changed:
        entra.call("POST", "/users", {"upn": person(key).upn, "mail": None})


def point_mail_at_zoe(entra: EntraControl, changed: list[str], key: str) -> None:
    entra.call("POST", "/users", {"upn": person(key).upn, "mail": ZOE_SLACK_ADDRESS})
    changed.append(key)


def test_a_slack_user_is_not_the_entra_account_whose_mail_was_set_to_their_address(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl,
        mail_pointed_at_zoe: list[str]) -> None:
    """Bob's mail is made Zoe's Slack address: ``/reset @zoe`` must not reset Bob."""
    point_mail_at_zoe(entra, mail_pointed_at_zoe, "bob")
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    before = {r.id for r in bot.requests()}
    driver.command("hank", "/reset", f"<@{slack_id(lab, 'zoe')}|zoe> lost her phone", channel=helpdesk)
    said = driver.wait_for_ephemeral("hank", lambda e: "UPN" in e["text"] or "is posted in" in e["text"])
    assert said["text"].startswith(f"<@{slack_id(lab, 'zoe')}>'s Slack email address is not the sign-in name (UPN)")
    assert not [r for r in bot.requests() if r.id not in before], "no request may be made for Bob"
    assert not driver.messages(helpdesk)
    refused = bot.audit()[-1]
    assert refused.action == "refused" and "slack_user_not_matched" in refused.detail


def test_the_target_and_the_manager_are_found_in_slack_by_upn_not_by_mail(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl,
        mail_pointed_at_zoe: list[str]) -> None:
    """Bob's mail and his manager Mona's are made Zoe's Slack address: Bob is still the one asked "Did you ask the
    helpdesk?", Mona still the one asked to approve; Zoe hears nothing."""
    point_mail_at_zoe(entra, mail_pointed_at_zoe, "bob")
    point_mail_at_zoe(entra, mail_pointed_at_zoe, "mona")
    with_rules(bot, target_confirmation=TargetConfirmation.ASK)
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    driver.command("hank", "/reset", "bob@corp.example.test cannot sign in", channel=helpdesk)
    request = driver.wait_for_message(helpdesk, lambda m: "Password reset for Bob Baker" in str(m["blocks"]))
    driver.wait_for_message(driver.dm_channel("bob"), lambda m: "Did you ask the helpdesk" in str(m["blocks"]))
    driver.wait_for_message(driver.dm_channel("mona"), lambda m: "Bob Baker" in m["text"]
                            and "reports to you" in m["text"])
    req = wait_until(lambda: next((r for r in bot.requests() if r.thread_ts == request["ts"]), None))
    assert req.target_slack_id == slack_id(lab, "bob")
    assert req.manager_slack_id == slack_id(lab, "mona")
    assert not driver.messages(driver.dm_channel("zoe")), "Zoe was taken for Bob or for his manager"
    driver.click("hank", helpdesk, request["ts"], "request_cancel")
    driver.wait_for_message(helpdesk, lambda m: m["text"].startswith("Cancelled"), thread_ts=request["ts"])


def test_reveal_refuses_and_discards_the_password_once_the_target_said_no(
        lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """Issue 14 (sec review, finding 8). In ``ask`` mode the reset is made before Alice answers; her late "No" means
    the caller on the phone was not her: the password must not be shown to anyone, and is discarded."""
    with_rules(bot, target_confirmation=TargetConfirmation.ASK)
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    sealer, made = bot.services.reset.sealer, []
    original = sealer.seal

    def recording(secret: SecretStr) -> str:
        made.append(secret.get_secret_value())
        return original(secret)

    sealer.seal = recording  # type: ignore[method-assign]
    try:
        refuse_after_no(lab, bot, driver, helpdesk)
    finally:
        sealer.seal = original  # type: ignore[method-assign]
    assert made, "the reset sealed no password"
    everywhere = everything_people_and_storage_hold(lab, driver, bot)
    assert [p for p in made if p in everywhere] == [], "the discarded password shows somewhere"


def refuse_after_no(lab: Lab, bot: RunningBot, driver: SlackDriver, helpdesk: str) -> None:
    driver.command("hank", "/reset", f"<@{slack_id(lab, 'alice')}|alice> reveal after no", channel=helpdesk)
    request = driver.wait_for_message(helpdesk, lambda m: "reveal after no" in str(m["blocks"]))
    dm = driver.dm_channel("alice")
    question = driver.wait_for_message(dm, lambda m: "Did you ask the helpdesk" in str(m["blocks"])
                                       and "reveal after no" in str(m["blocks"]))
    driver.click("mona", helpdesk, request["ts"], "request_approve")
    reveal = driver.wait_for_message(helpdesk, lambda m: "sealed" in m["text"], thread_ts=request["ts"], timeout=30)
    driver.click("alice", dm, question["ts"], "target_confirm_no")
    driver.wait_for_message(helpdesk, lambda m: "WAS changed" in m["text"], thread_ts=request["ts"])
    req = request_row(bot, request["ts"])
    driver.click("hank", helpdesk, reveal["ts"], "reset_reveal")
    said = driver.wait_for_ephemeral("hank", lambda e: "did not ask" in e["text"] or "revealed" in e["text"])
    assert said["text"].startswith("Alice Archer said they did not ask for this reset")
    assert not [v for v in driver.views("hank") if v.get("callback_id") == "reveal_password"]
    driver.wait_for_message(helpdesk, lambda m: "discarded" in m["text"], thread_ts=request["ts"])
    with bot.session() as session:
        assert session.get(SealedSecret, req.id) is None, "the sealed password must be gone"
    refused = [e for e in bot.audit(req.id) if e.action == "refused"]
    assert refused and "target_said_no" in refused[-1].detail
    driver.click("hank", helpdesk, reveal["ts"], "reset_reveal")  # and again: nothing left to show
    wait_until(lambda: len([e for e in driver.ephemeral("hank") if "did not ask" in e["text"]]) == 2)
    alice = person("alice")
    assert lab.ad.admin_connection().extend.microsoft.modify_password(alice.dn, alice.password)

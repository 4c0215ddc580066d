"""Requests and approvals as people live them: in the helpdesk channel, its thread, DMs and App Home."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from bot.domain.lifecycle import RequestState
from lab.slack.driver import Message, SlackDriver
from lab.stack import Lab
from tests.scenarios.harness import RunningBot, request_row, thread, wait_until


def starts_with(prefix: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: str(e["text"]).startswith(prefix)


def slack_id(lab: Lab, key: str) -> str:
    return str(next(p["slack_id"] for p in lab.descriptor["people"] if p["key"] == key))


def test_agent_requests_and_the_manager_approves(lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    alice, mona, hank = slack_id(lab, "alice"), slack_id(lab, "mona"), slack_id(lab, "hank")
    ack = driver.command("hank", "/reset", f"<@{alice}|alice> forgot her password after holiday", channel=helpdesk)
    assert ack["acked"]

    request = driver.wait_for_message(helpdesk, lambda m: "Password reset for Alice Archer" in str(m["blocks"]))
    text = str(request["blocks"])
    assert f"<@{hank}>" in text and "forgot her password after holiday" in text and f"<@{mona}>" in text
    reply = driver.wait_for_ephemeral("hank", lambda e: "is posted in" in e["text"])
    assert "R-" in reply["text"]
    mention = driver.wait_for_message(helpdesk, lambda m: f"<@{mona}>" in m["text"], thread_ts=request["ts"])
    assert "needs an approval" in mention["text"]
    dm = driver.dm_channel("mona")
    driver.wait_for_message(dm, lambda m: "Alice Archer" in m["text"] and "reports to you" in m["text"])

    driver.click("mona", helpdesk, request["ts"], "request_approve")
    approved = driver.wait_for_message(helpdesk, lambda m: m["text"].startswith("Approved by"),
                                       thread_ts=request["ts"])
    assert approved["text"] == f"Approved by <@{mona}>."
    redrawn = driver.wait_for_message(helpdesk, lambda m: m["ts"] == request["ts"] and m["edited"] is not None
                                      and "Approved" in str(m["blocks"]))
    assert not any(b.get("type") == "actions" for b in redrawn["blocks"]), "no buttons once decided"

    req = wait_until(lambda: next((r for r in bot.requests() if r.thread_ts == request["ts"] and r.verdict), None))
    events = bot.audit(req.id)
    assert [e.action for e in events][:4] == ["requested", "approval_added", "approved", "reset_started"]
    assert [e.actor for e in events][:3] == [hank, mona, mona]
    assert events[2].from_state == RequestState.PENDING_APPROVAL and events[2].to_state == RequestState.APPROVED


def request_for(lab: Lab, driver: SlackDriver, key: str, reason: str = "locked out", *,
                by: str = "hank", flags: str = "") -> dict[str, Any]:
    """``by`` asks for a reset of ``key`` in #helpdesk; returns the request message."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    driver.command(by, "/reset", f"<@{slack_id(lab, key)}|{key}> {reason} {flags}".strip(), channel=helpdesk)
    name = next(p["display_name"] for p in lab.descriptor["people"] if p["key"] == key)
    return dict(driver.wait_for_message(helpdesk, lambda m: f"Password reset for {name}" in str(m["blocks"])
                                        and reason in str(m["blocks"])))


def test_a_denial_asks_for_a_reason_and_tells_the_thread(lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    request = request_for(lab, driver, "bob", "says he is locked out")
    driver.click("mona", helpdesk, request["ts"], "request_deny")
    modal = driver.wait_for_view("mona", lambda v: v.get("callback_id") == "deny_reason" and bool(v.get("open")))
    too_short = driver.submit("mona", modal["id"], {"deny_reason_input": "no"})
    assert too_short.get("view_open") and "few words" in str(too_short.get("errors"))
    driver.submit("mona", modal["id"], {"deny_reason_input": "Bob is on leave; call him first"})
    denied = driver.wait_for_message(helpdesk, lambda m: m["text"].startswith("Denied by"), thread_ts=request["ts"])
    assert denied["text"] == f"Denied by <@{slack_id(lab, 'mona')}>: Bob is on leave; call him first"
    req = request_row(bot, request["ts"])
    assert req.state == RequestState.DENIED
    assert bot.audit(req.id)[-1].action == "denied"


def test_only_the_requester_cancels(lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    request = request_for(lab, driver, "alice", "duplicate ticket")
    driver.click("mona", helpdesk, request["ts"], "request_cancel")
    refused = driver.wait_for_ephemeral("mona", lambda e: "cancel" in e["text"])
    assert refused["text"].startswith("Only the person who asked for this reset can cancel it.")
    driver.click("hank", helpdesk, request["ts"], "request_cancel")
    driver.wait_for_message(helpdesk, lambda m: m["text"].startswith("Cancelled by"), thread_ts=request["ts"])
    req = request_row(bot, request["ts"])
    assert req.state == RequestState.CANCELLED
    assert [e.action for e in bot.audit(req.id)] == ["requested", "refused", "cancelled"]


def test_requester_target_and_bystander_cannot_approve(lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    request = request_for(lab, driver, "bob", "new phone")
    for who, words in (("hank", "You asked for this reset"), ("bob", "This reset is for your own account"),
                       ("alice", "You're not an approver")):
        driver.click(who, helpdesk, request["ts"], "request_approve")
        driver.wait_for_ephemeral(who, starts_with(words))
    req = request_row(bot, request["ts"])
    assert req.state == RequestState.PENDING_APPROVAL
    refused = [e for e in bot.audit(req.id) if e.action == "refused"]
    assert [e.actor for e in refused] == [slack_id(lab, k) for k in ("hank", "bob", "alice")]
    assert all('"attempted":"approve"' in e.detail for e in refused)
    # gina is in the approver group and approves; the thread carries no trace of the refused clicks.
    driver.click("gina", helpdesk, request["ts"], "request_approve")
    driver.wait_for_message(helpdesk, lambda m: m["text"].startswith("Approved by"), thread_ts=request["ts"])
    assert not any("approver" in m["text"].lower() and "not" in m["text"] for m in thread(driver, helpdesk,
                                                                                            request["ts"]))



def test_an_approver_taken_out_of_the_group_cannot_approve_though_the_bot_just_read_it(
        lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """Gina leaves the approvers group a moment after the bot read its members (a bystander's click made it read
    them): her Approve and her Deny are refused at once, as for anyone outside the group. A remembered member list
    must never approve a reset."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    request = request_for(lab, driver, "bob", "approver leaves")
    driver.click("alice", helpdesk, request["ts"], "request_approve")
    driver.wait_for_ephemeral("alice", starts_with("You're not an approver"))
    driver.usergroup("ivan", "update", usergroup="S0APPROVERS", users=["ivan", "zoe"])
    try:
        for action in ("request_approve", "request_deny"):
            driver.click("gina", helpdesk, request["ts"], action)
        driver.wait_for(lambda: len([e for e in driver.ephemeral("gina")
                                     if e["text"].startswith("You're not an approver")]) == 2 or None,
                        what="both of Gina's clicks refused", describe=lambda: str(driver.ephemeral("gina")) + str(
                            [m["text"] for m in thread(driver, helpdesk, request["ts"])]))
        req = request_row(bot, request["ts"])
        assert req.state == RequestState.PENDING_APPROVAL
        refused = [e for e in bot.audit(req.id) if e.action == "refused" and e.actor == slack_id(lab, "gina")]
        assert sorted('"attempted":"approve"' in e.detail for e in refused) == [False, True]
        assert not [v for v in driver.views("gina") if v.get("open")], "no denial modal for her"
    finally:
        driver.usergroup("ivan", "update", usergroup="S0APPROVERS", users=["ivan", "gina", "zoe"])


_SEQUENCE = re.compile(r"<([^<>]*)>")
_OURS = re.compile(r"^(?:@[UW][A-Z0-9]+|#[CDG][A-Z0-9]+|!date\^\d+\^[^|]*\|[^|]*|!subteam\^S[A-Z0-9]+\|@[\w.-]+)$")


def foreign_markup(message: Message | dict[str, Any]) -> list[str]:
    """Control sequences in a message that are not the bot's own (ids Slack gave it, dates, the approver group),
    and broadcast words Slack would parse: what a person's words must never become."""
    def strings(value: Any) -> list[str]:
        if isinstance(value, dict):
            return [t for v in value.values() for t in strings(v)]
        if isinstance(value, list):
            return [t for v in value for t in strings(v)]
        return [value] if isinstance(value, str) else []

    texts = [message["text"], *strings(message["blocks"])]
    return [m.group(0) for t in texts for m in _SEQUENCE.finditer(t) if not _OURS.match(m.group(1))] + [
        t for t in texts if re.search(r"@(channel|here|everyone)\b", t)]


def test_what_people_type_reaches_the_thread_as_words_never_as_markup(
        lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """Issue 14, item 10. An agent's reason and an approver's deny reason are shown as typed: Slack's own mention
    of the channel, a literal ``<!here>`` and a link made with the composer's link tool (its label hiding where it
    goes) ping nobody and hide nothing."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    driver.command("hank", "/reset", "@bob @channel locked out & <!here> see [Reset portal](https://evil.example/r)",
                   channel=helpdesk)
    request = driver.wait_for_message(helpdesk, lambda m: "Password reset for Bob Baker" in str(m["blocks"]))
    assert not foreign_markup(request), foreign_markup(request)
    assert ("Reason: @\u200bchannel locked out &amp; &lt;!here&gt; see Reset portal (https://evil.example/r)"
            in request["blocks"][0]["text"]["text"])
    dm = driver.wait_for_message(driver.dm_channel("mona"), lambda m: "Bob Baker" in m["text"])
    assert not foreign_markup(dm)

    driver.click("mona", helpdesk, request["ts"], "request_deny")
    modal = driver.wait_for_view("mona", lambda v: v.get("callback_id") == "deny_reason" and bool(v.get("open")))
    driver.submit("mona", modal["id"], {"deny_reason_input": "<!channel> use <https://evil.example|the portal>"})
    denied = driver.wait_for_message(helpdesk, lambda m: m["text"].startswith("Denied by"), thread_ts=request["ts"])
    assert denied["text"] == (f"Denied by <@{slack_id(lab, 'mona')}>: &lt;!channel&gt; use "
                              "&lt;https://evil.example|the portal&gt;")
    redrawn = driver.wait_for_message(helpdesk, lambda m: m["ts"] == request["ts"] and "Denied" in str(m["blocks"]))
    assert not foreign_markup(redrawn), foreign_markup(redrawn)
    req = request_row(bot, request["ts"])
    assert req.reason == "@channel locked out & <!here> see Reset portal (https://evil.example/r)"

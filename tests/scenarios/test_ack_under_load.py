"""The ack path under load, as people see it (issue 13): while Graph holds ten approved resets, a new ``/reset``
is acked and answered, and each held reset ends with one verdict once Graph lets go; an approver with thirty-odd
requests waiting still gets a working App Home.

"Held" is made, not raced: the lab's Graph keeps every resetPassword operation running (``hold_operations``) until
the test releases it. Nothing here is timed: only outcomes are asserted.

A held reset holds no thread (issue 13 part 2): its operation is followed by the one poller, lease included, so
the bot's threads while ten resets wait on Graph are no more than once every reset has finished (the pools keep
their threads; what waited on Graph, a worker and a heartbeat per reset, is what must not be there).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator

import pytest

from bot.domain.lifecycle import RequestState
from bot.messages.home import HOME_LIST_SHOWN, more_pending
from lab.people import person
from lab.slack.driver import Message, SlackDriver
from lab.stack import Lab
from tests.clients.graphlab import EntraControl
from tests.scenarios.conftest import with_rules
from tests.scenarios.harness import RunningBot, thread, wait_until
from tests.scenarios.test_request_approval import request_for, slack_id

HELD = 10
TARGETS = ("alice", "bob")


@pytest.fixture(autouse=True)
def _many_open_per_target(bot: RunningBot) -> None:
    """Load, not abuse, is this module's subject: it holds several requests open for each of two people at once,
    which the one-open-request-per-target limit refuses (tests/scenarios/test_limits.py shows that)."""
    with_rules(bot, limits=dataclasses.replace(bot.services.requests.rules.limits, one_open_per_target=False))


@pytest.fixture
def entra(lab: Lab) -> Iterator[EntraControl]:
    control = EntraControl(lab)
    control.reset()
    yield control
    control.reset(history=True)
    for key in TARGETS:  # back to the fixture passwords, as the other reset stories leave them
        p = person(key)
        assert lab.ad.admin_connection().extend.microsoft.modify_password(p.dn, p.password)


def test_a_new_reset_is_answered_while_graph_holds_ten_approved_resets(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl) -> None:
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    requests = [request_for(lab, driver, TARGETS[i % 2], f"held reset {i}") for i in range(HELD)]
    entra.faults(hold_operations=True)
    for request in requests:
        assert driver.click("mona", helpdesk, request["ts"], "request_approve")["acked"]
    driver.wait_for(lambda: len([o for o in entra.operations() if o["held"]]) == HELD or None, timeout=60,
                    what="Graph to hold all ten resets")

    unrelated = driver.command("hank", "/reset", f"<@{slack_id(lab, 'bob')}|bob> unrelated, while ten are held",
                               channel=helpdesk)
    assert unrelated["acked"], "the ack never waits for the work of others"
    driver.wait_for_message(helpdesk, lambda m: "unrelated, while ten are held" in str(m["blocks"]), timeout=60)
    assert not any("Done:" in m["text"] for r in requests for m in thread(driver, helpdesk, r["ts"])), (
        "Graph still holds every reset")
    wait_until(lambda: all(any(m["text"].startswith("Resetting") for m in thread(driver, helpdesk, r["ts"]))
                           for r in requests) or None, timeout=30, what="every reset to say it started")
    held = [t.name for t in threading.enumerate()]

    entra.faults(hold_operations=False)
    ours = {r["ts"] for r in requests}
    wait_until(lambda: all(r.state == RequestState.SUCCEEDED for r in bot.requests() if r.thread_ts in ours),
               timeout=120, what="the ten held resets to finish")
    # A verdict is posted right after the commit that records it (the outbox): wait for it, then count it.
    for request in requests:
        driver.wait_for_message(helpdesk, lambda m: "Done:" in m["text"], thread_ts=request["ts"], timeout=60)
    for request in requests:
        verdicts = [m for m in thread(driver, helpdesk, request["ts"]) if "Done:" in m["text"]]
        assert len(verdicts) == 1, f"one verdict in {request['ts']}'s thread, not {len(verdicts)}"
    assert len([o for o in entra.operations() if o["status"] == "succeeded"]) == HELD
    assert not [e for e in driver.ephemeral("hank") if e["text"].startswith("I'm too busy")]
    assert bot.services.reset.wait_idle(timeout=30)
    after = [t.name for t in threading.enumerate()]
    # A little slack for a thread of the libraries coming or going; resets each holding a thread of their own (a
    # heartbeat, as before; their workers stay in the pool either way) would be ten over.
    assert len(held) <= len(after) + 2, f"threads with ten held: {sorted(held)}, after: {sorted(after)}"


def test_an_approver_with_thirty_odd_requests_waiting_gets_a_working_app_home(
        lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """Every request of the burst changes Mona's App Home: it is redrawn at most once per two seconds, not once per
    request, and without her opening it the last drawing shows every request (the newest ten and a count of the
    rest); none may fail, and opening it draws the same."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    before = len([r for r in bot.requests() if r.state == RequestState.PENDING_APPROVAL])
    burst = 32
    for i in range(burst):
        assert driver.command("hank", "/reset", f"<@{slack_id(lab, TARGETS[i % 2])}> home burst {i}",
                              channel=helpdesk)["acked"]
    driver.wait_for(lambda: len([m for m in driver.messages(helpdesk) if "home burst" in str(m["blocks"])])
                    == burst or None, timeout=120, what="every request of the burst to be posted")
    pending = before + burst
    driver.wait_for_home_view("mona", lambda v: more_pending(pending - HOME_LIST_SHOWN) in str(v), timeout=30)
    to_mona = [c for c in driver.calls("views.publish") if c["args"].get("user_id") == slack_id(lab, "mona")]
    assert len(to_mona) < burst / 2, f"{len(to_mona)} App Homes published to Mona for {burst} requests"
    driver.open_home("mona")
    home = driver.wait_for_home_view("mona", lambda v: more_pending(pending - HOME_LIST_SHOWN) in str(v),
                                     timeout=30)
    listed = home["blocks"][1]["text"]["text"]
    assert listed.startswith("*Waiting for my approval*")
    assert len([line for line in listed.splitlines() if line.startswith("• ")]) == HOME_LIST_SHOWN
    publishes = driver.calls("views.publish")
    assert publishes and all(c["ok"] for c in publishes), [c["error"] for c in publishes if not c["ok"]]


def test_a_burst_past_slacks_rate_limit_loses_no_request(lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """Slack answers 429 with Retry-After past about one message a second in a channel (the lab's ``rate_limit``
    fault). Eight ``/reset`` at once post sixteen messages in #helpdesk: slack-sdk waits out each Retry-After and
    tries again, so every request is posted once, with its approver's mention, and the agent is told each one's
    place; nobody is told something failed."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    burst = 8
    driver.faults(rate_limit=True)
    try:
        for i in range(burst):
            assert driver.command("hank", "/reset", f"<@{slack_id(lab, TARGETS[i % 2])}> rate burst {i:02d}",
                                  channel=helpdesk)["acked"]

        def posted() -> list[Message]:
            return [m for m in driver.messages(helpdesk) if "rate burst" in str(m["blocks"])]

        driver.wait_for(lambda: len(posted()) >= burst or None, timeout=120, what="every request of the burst")
        for request in posted():
            driver.wait_for_message(helpdesk, lambda m: "needs an approval" in m["text"], thread_ts=request["ts"],
                                    timeout=60)
    finally:
        driver.faults(rate_limit=False)
    reasons = sorted(str(m["blocks"]).split("rate burst ")[1][:2] for m in posted())
    assert reasons == [f"{i:02d}" for i in range(burst)], "each request once"
    throttled = [c for c in driver.calls("chat.postMessage") if c["status"] == 429]
    assert throttled, "Slack did throttle the burst"
    driver.wait_for(lambda: len([e for e in driver.ephemeral("hank") if "is posted in" in e["text"]]) >= burst
                    or None, timeout=60, what="the agent told where each request is")
    assert not [e for e in driver.ephemeral("hank") if "is posted in" not in e["text"]]

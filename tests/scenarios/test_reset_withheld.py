"""A reset that was disowned or called off while Entra was still making it: the target's "No", or a stale Cancel or
Deny pressed after the approval, cannot stop a reset Graph has started, but nobody may read its temporary password.
It is discarded the moment the reset is made (never sealed), the thread and the audit trail say so, and Reveal is
refused with a sentence. Asserted as people see it: the thread, the clicker's ephemeral, the audit rows; and no
password anywhere."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from bot import store
from bot.domain.lifecycle import RequestState
from bot.ids import new_correlation_id
from bot.settings import TargetConfirmation
from lab.slack.driver import Message, SlackDriver
from lab.stack import Lab
from tests.clients.graphlab import EntraControl
from tests.scenarios.conftest import with_rules
from tests.scenarios.harness import RunningBot, wait_until
from tests.scenarios.test_request_approval import request_for
from tests.scenarios.test_reset import everything_people_and_storage_hold


@pytest.fixture(scope="module")
def entra(lab: Lab) -> EntraControl:
    return EntraControl(lab)


@pytest.fixture(scope="module")
def set_passwords(bot: RunningBot) -> Iterator[list[str]]:
    """Every password this module's resets set, read on its way to Graph, to look for everywhere afterwards."""
    made: list[str] = []
    graph = bot.services.reset.graph
    original = graph.start_reset_password

    def recording(**kw: Any) -> Any:
        made.append(kw["new_password"].get_secret_value())
        return original(**kw)

    graph.start_reset_password = recording  # type: ignore[method-assign]
    yield made
    del graph.start_reset_password


@pytest.fixture(autouse=True)
def _scan(lab: Lab, entra: EntraControl, bot: RunningBot, driver: SlackDriver, set_passwords: list[str],
          caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    entra.reset(history=True)
    caplog.set_level(logging.DEBUG)
    yield
    entra.faults(hold_operations=False)
    wait_until(lambda: not any(r.state in (RequestState.APPROVED, RequestState.RESETTING) for r in bot.requests()),
               what="the test's resets to finish", timeout=30)
    assert bot.services.reset.wait_idle(timeout=30)
    everywhere = everything_people_and_storage_hold(lab, driver, bot)
    everywhere += "\n".join(r.getMessage() + repr(r.args) + str(r.exc_text) for r in caplog.records)
    assert set_passwords, "a reset was made"
    assert [p for p in set_passwords if p in everywhere] == [], "a password reached a message, row or log"


def _held_reset(lab: Lab, driver: SlackDriver, entra: EntraControl, reason: str) -> tuple[str, Message]:
    """A request for Alice, approved by Mona while Entra holds the reset: (its thread ts, the target's question)."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    request = request_for(lab, driver, "alice", reason)
    ask = driver.wait_for_message(driver.dm_channel("alice"), lambda m: "target_confirm_no" in str(m["blocks"]))
    entra.faults(hold_operations=True)
    driver.click("mona", helpdesk, str(request["ts"]), "request_approve")
    wait_until(lambda: any(op["held"] for op in entra.operations()), what="the reset held in Entra")
    return str(request["ts"]), ask


def _made_and_withheld(lab: Lab, driver: SlackDriver, bot: RunningBot, entra: EntraControl, ts: str) -> str:
    """Let Entra make the held reset; the thread says the password was discarded, with no Reveal button; the id."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    entra.faults(hold_operations=False)
    done = driver.wait_for_message(helpdesk, lambda m: "Done:" in m["text"], thread_ts=ts, timeout=30)
    assert "The temporary password was discarded unrevealed" in done["text"]
    assert "press Reveal" not in done["text"]
    req = next(r for r in bot.requests() if r.thread_ts == ts)
    assert req.state == RequestState.SUCCEEDED
    assert not any("reset_reveal" in str(m.get("blocks")) for m in driver.messages(helpdesk, thread_ts=ts)), \
        "no Reveal button for a password nobody may read"
    with bot.session() as session:
        assert not store.sealed.has_sealed(session, request_id=req.id), "nothing sealed"
    discarded = [e for e in bot.audit(req.id) if e.action == "unrevealed_discarded"]
    assert len(discarded) == 1
    return req.id


def test_a_no_while_the_reset_runs_discards_its_password(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl) -> None:
    with_rules(bot, target_confirmation=TargetConfirmation.ASK)
    ts, ask = _held_reset(lab, driver, entra, "no while it runs")
    driver.click("alice", driver.dm_channel("alice"), ask["ts"], "target_confirm_no")
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    driver.wait_for_message(helpdesk, lambda m: "says they did not ask for this reset" in m["text"], thread_ts=ts)
    request_id = _made_and_withheld(lab, driver, bot, entra, ts)
    assert '"reason":"target_said_no"' in next(
        e.detail for e in bot.audit(request_id) if e.action == "unrevealed_discarded")
    requester = next(r.requester for r in bot.requests() if r.id == request_id)
    reveal, sentence = bot.services.reset.reveal(request_id=request_id, actor=requester,
                                                 correlation_id=new_correlation_id())
    assert reveal is None
    assert sentence is not None and "said they did not ask for this reset" in sentence


@pytest.mark.parametrize("how", ["cancel", "deny"])
def test_a_cancel_or_deny_while_the_reset_runs_discards_its_password(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl, how: str) -> None:
    """Cancel (the requester) or Deny (an approver) pressed on the request message as it was before the approval
    (a client not yet redrawn): the reset cannot be stopped, so its password will be discarded, and is."""
    with_rules(bot, target_confirmation=TargetConfirmation.ASK)
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    ts, _ = _held_reset(lab, driver, entra, f"{how} while it runs")
    if how == "cancel":
        who = "hank"
        driver.click("hank", helpdesk, ts, "request_cancel", stale_ok=True)
    else:
        who = "mona"
        driver.click("mona", helpdesk, ts, "request_deny", stale_ok=True)
        modal = driver.wait_for_view("mona", lambda v: v.get("callback_id") == "deny_reason" and bool(v.get("open")))
        driver.submit("mona", modal["id"], {"deny_reason_input": "wrong person"})
    told = driver.wait_for_ephemeral(who, lambda e: "cannot be stopped" in e["text"])
    assert "discarded" in told["text"]
    driver.wait_for_message(helpdesk, lambda m: "under way" in m["text"] and "discarded" in m["text"], thread_ts=ts)
    request_id = _made_and_withheld(lab, driver, bot, entra, ts)
    assert [e.action for e in bot.audit(request_id)].count("reset_withdrawn") == 1
    requester = next(r.requester for r in bot.requests() if r.id == request_id)
    reveal, sentence = bot.services.reset.reveal(request_id=request_id, actor=requester,
                                                 correlation_id=new_correlation_id())
    assert reveal is None
    assert sentence is not None and "called off while its reset ran" in sentence
    refused = [e for e in bot.audit(request_id) if e.action == "refused"]
    assert refused and '"reason":"withdrawn"' in refused[-1].detail

"""A reset that was disowned or called off while Entra was still making it: the target's "No", or a stale Cancel or
Deny pressed after the approval, cannot stop a reset Graph has started, but nobody may read its temporary password.
It is discarded the moment the reset is made (never sealed), the thread and the audit trail say so, and Reveal is
refused with a sentence. Asserted as people see it: the thread, the clicker's ephemeral, the audit rows; and no
password anywhere."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from bot import store
from bot.domain.lifecycle import RequestState
from bot.ids import new_correlation_id
from bot.settings import TargetConfirmation
from lab.people import person
from lab.slack.driver import Message, SlackDriver
from lab.stack import Lab
from tests.clients.graphlab import EntraControl
from tests.scenarios.conftest import with_rules
from tests.scenarios.harness import RunningBot, link_agent, request_row, thread, wait_until
from tests.scenarios.test_request_approval import request_for
from tests.scenarios.test_reset import everything_people_and_storage_hold


@pytest.fixture(scope="module")
def entra(lab: Lab) -> EntraControl:
    return EntraControl(lab)


@pytest.fixture(scope="module")
def set_passwords(bot: RunningBot) -> Iterator[list[str]]:
    """Every password this module's resets set, read on its way to Graph, and every TAP Graph issued, to look for
    everywhere afterwards."""
    made: list[str] = []
    graph = bot.services.reset.graph
    original = graph.start_reset_password
    original_tap = graph.create_temporary_access_pass

    def recording(**kw: Any) -> Any:
        made.append(kw["new_password"].get_secret_value())
        return original(**kw)

    def recording_tap(**kw: Any) -> Any:
        tap = original_tap(**kw)
        made.append(tap.temporary_access_pass.get_secret_value())
        return tap

    graph.start_reset_password = recording  # type: ignore[method-assign]
    graph.create_temporary_access_pass = recording_tap  # type: ignore[method-assign]
    yield made
    del graph.start_reset_password, graph.create_temporary_access_pass


@pytest.fixture(autouse=True)
def _scan(lab: Lab, entra: EntraControl, bot: RunningBot, driver: SlackDriver, set_passwords: list[str],
          caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    entra.reset(history=True)
    caplog.set_level(logging.DEBUG)
    yield
    entra.faults(hold_operations=False, fail_next_5xx=0, fault_path="")
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


@contextmanager
def tap_held_after_creation(bot: RunningBot) -> Iterator[threading.Event]:
    """Graph issues the TAP, and the bot's reset then waits (before its verdict) until the test lets it go: the
    moment at which a Cancel, Deny or "No" can come while the TAP exists in Entra and the request is still
    ``resetting``. Yields the event set once the TAP exists; leaving the block lets the reset go on."""
    made, go = threading.Event(), threading.Event()
    graph = bot.services.reset.graph
    inner = graph.create_temporary_access_pass

    def held(**kw: Any) -> Any:
        tap = inner(**kw)
        made.set()
        go.wait(timeout=60)
        return tap

    graph.create_temporary_access_pass = held  # type: ignore[method-assign]
    try:
        yield made
    finally:
        go.set()
        graph.create_temporary_access_pass = inner  # type: ignore[method-assign]


def taps_of(entra: EntraControl, key: str) -> list[Any]:
    """The TAP methods Entra holds for the person (the lab's control API)."""
    seen: dict[str, Any] = entra.call("GET", f"/sessions?upn={person(key).upn}")
    return list(seen["taps"])


def _withheld_tap(lab: Lab, driver: SlackDriver, bot: RunningBot, entra: EntraControl, how: str, *,
                  reason: str) -> tuple[str, str]:
    """Hedy (an Authentication Administrator) asks for a TAP for Bob; Mona approves; once Entra has issued it, and
    before the verdict, the request is called off (``how``: cancel, or the target's "no"). (thread ts, request
    id), once the verdict is said."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    entra.assign("hedy", "Authentication Administrator")
    link_agent(lab, driver, "hedy")
    request = request_for(lab, driver, "bob", reason, by="hedy", flags="--tap")
    ts = str(request["ts"])
    ask = driver.wait_for_message(driver.dm_channel("bob"), lambda m: "target_confirm_no" in str(m["blocks"])
                                  and reason in str(m["blocks"])) if how == "no" else None
    with tap_held_after_creation(bot) as made:
        driver.click("mona", helpdesk, ts, "request_approve")
        assert made.wait(timeout=30), "Entra issued the TAP"
        assert len(taps_of(entra, "bob")) == 1
        if how == "cancel":
            driver.click("hedy", helpdesk, ts, "request_cancel", stale_ok=True)
            driver.wait_for_ephemeral("hedy", lambda e: "cannot be stopped" in e["text"])
        else:
            assert ask is not None
            driver.click("bob", driver.dm_channel("bob"), ask["ts"], "target_confirm_no")
            driver.wait_for_message(helpdesk, lambda m: "says they did not ask for this reset" in m["text"],
                                    thread_ts=ts)
    done = driver.wait_for_message(helpdesk, lambda m: "Temporary Access Pass for Bob Baker" in m["text"]
                                   and "Done:" in m["text"], thread_ts=ts, timeout=30)
    assert "discarded unrevealed" in done["text"] and "press Reveal" not in done["text"]
    return ts, request_row(bot, ts).id


@pytest.mark.parametrize("how", ["cancel", "no"])
def test_a_tap_called_off_while_it_was_issued_is_deleted_in_entra(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl, how: str) -> None:
    """A TAP nobody may be shown must not stay usable in Entra for its hour: it is deleted at once, with the token
    of the agent who made it, audited, and the thread says so."""
    with_rules(bot, target_confirmation=TargetConfirmation.ASK)
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    ts, request_id = _withheld_tap(lab, driver, bot, entra, how, reason=f"tap, then {how}")
    said = driver.wait_for_message(helpdesk, lambda m: m["text"].startswith(":lock:")
                                   and "Temporary Access Pass" in m["text"], thread_ts=ts, timeout=30)
    assert "could NOT" not in said["text"]
    assert taps_of(entra, "bob") == [], "the withheld TAP no longer exists in Entra"
    deleted = [r for r in entra.requests("graph") if r["method"] == "DELETE"]
    assert [(r["user"], r["status"]) for r in deleted] == [(person("hedy").upn, 204)], "once, as the agent"
    trail = [e.action for e in bot.audit(request_id)]
    assert "unrevealed_discarded" in trail and trail.count("tap_deleted") == 1
    assert "containment_failed" not in trail
    assert not any("reset_reveal" in str(m.get("blocks")) for m in thread(driver, helpdesk, ts))


def test_a_withheld_tap_entra_will_not_delete_is_told_to_security(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl) -> None:
    """Graph refuses the deletion (unavailable past the client's retries): the audit row says why, the thread says
    the TAP is still valid and what a person must do, and the security channel is told, with the request."""
    with_rules(bot, target_confirmation=TargetConfirmation.ASK)
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    security = lab.descriptor["slack"]["channels"]["security"]
    entra.faults(fail_next_5xx=10, fault_path="temporaryAccessPassMethods/")
    ts, request_id = _withheld_tap(lab, driver, bot, entra, "cancel", reason="tap, then cancel, Entra away")
    said = driver.wait_for_message(helpdesk, lambda m: "could NOT be deleted" in m["text"], thread_ts=ts,
                                   timeout=30)
    assert "Authentication Administrator" in said["text"]
    assert len(taps_of(entra, "bob")) == 1, "Entra still holds it: nobody pretends otherwise"
    alert = driver.wait_for_message(security, lambda m: request_id in m["text"] and "could NOT be deleted"
                                    in m["text"], timeout=30)
    assert "Bob Baker" in alert["text"]
    failed = [e for e in bot.audit(request_id) if e.action == "containment_failed"]
    assert len(failed) == 1 and '"step":"delete_tap"' in failed[0].detail
    assert "tap_deleted" not in [e.action for e in bot.audit(request_id)]
    entra.faults(fail_next_5xx=0, fault_path="")
    entra.reset(history=True)

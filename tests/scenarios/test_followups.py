"""Follow-ups after a reset, against the lab: AD is read over LDAP to prove the reset landed, and again later to
see whether the user chose their own password. Each test drives the follow-ups' clock itself (``run_due(now=…)``)
so that an hour or a day passes without waiting for it; what is checked is what people see."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text
from sqlmodel import Session

from bot.models import FollowUp, OutboxMessage
from bot.services.followups import CLAIM_LEASE
from bot.store.followups import claim_followup, followups_for
from bot.store.outbox import outbox_messages
from lab.people import person
from lab.slack.driver import SlackDriver
from lab.stack import Lab
from tests.clients.graphlab import EntraControl
from tests.scenarios.harness import RunningBot, link_agent, thread
from tests.scenarios.test_reset import approved_request

HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def entra(lab: Lab) -> EntraControl:
    return EntraControl(lab)


@pytest.fixture(autouse=True)
def _restore(lab: Lab, entra: EntraControl, bot: RunningBot) -> Iterator[None]:
    entra.reset(history=True)
    yield
    entra.reset(history=True)
    with bot.runtime.session_factory.begin() as session:  # this story's later checks are not the next story's
        session.execute(text("UPDATE follow_up SET state = 'skipped' WHERE state IN ('pending', 'running')"))
    admin = lab.ad.admin_connection()
    for key in ("alice", "bob", "nora"):
        p = person(key)
        assert admin.extend.microsoft.modify_password(p.dn, p.password)


_APPROVER = {"nora": "olga"}  # their manager; Mona manages the others


def _reset(lab: Lab, driver: SlackDriver, bot: RunningBot, key: str,
           reason: str = "follow-up story") -> tuple[str, str, datetime]:
    """(request id, thread ts, when the reset was made) of a reset of ``key`` that Entra reported done; a second
    reset of one person in a story needs its own ``reason``, which tells its request message apart."""
    request, request_id = approved_request(lab, driver, bot, key, reason,
                                           approver=_APPROVER.get(key, "mona"))
    [req] = [r for r in bot.requests() if r.id == request_id]
    assert req.state == "succeeded", req.verdict
    assert bot.services.reset.wait_idle(timeout=30), "the verdict was still being posted"
    checks = _checks(bot, request_id)
    assert [(c.kind, c.step, c.state) for c in checks] == [
        ("landed", 0, "pending"), ("replaced", 0, "pending"), ("replaced", 1, "pending"), ("replaced", 2, "pending")]
    return request_id, str(request["ts"]), checks[0].reset_at


def _checks(bot: RunningBot, request_id: str) -> list[FollowUp]:
    with bot.session() as session:
        return followups_for(session, request_id=request_id)


def _said(lab: Lab, driver: SlackDriver, ts: str, since: int = 0) -> list[str]:
    return [m["text"] for m in thread(driver, lab.descriptor["slack"]["channels"]["helpdesk"], ts)][since:]


def _actions(bot: RunningBot, request_id: str, first: str) -> list[str]:
    actions = [e.action for e in bot.audit(request_id)]
    return actions[actions.index(first):]


def test_a_reset_that_landed_is_confirmed_once(lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    request_id, ts, reset_at = _reset(lab, driver, bot, "alice")
    before = len(_said(lab, driver, ts))
    followups = bot.services.followups
    assert followups.run_due(now=reset_at + timedelta(seconds=5)) == 0, "nothing is due before the first look"
    assert followups.run_due(now=reset_at + timedelta(seconds=16)) == 1
    [said] = _said(lab, driver, ts, before)
    assert said == (":white_check_mark: Confirmed on-premises: Active Directory shows the reset of Alice Archer's "
                    "password, with *must change at next sign-in* set.")
    assert followups.run_due(now=reset_at + timedelta(seconds=30)) == 0
    assert len(_said(lab, driver, ts, before)) == 1, "a confirmation is posted once"
    [landed] = [e for e in bot.audit(request_id) if e.action == "writeback_confirmed"]
    assert landed.actor == "scheduler" and '"pwd_last_set":"0"' in landed.detail


def test_a_reset_ad_never_shows_is_warned_about_after_the_deadline(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl) -> None:
    """The writeback agent goes away after Entra accepted the reset: Graph says succeeded, AD never hears of it."""
    entra.faults(writeback="lost")
    request_id, ts, reset_at = _reset(lab, driver, bot, "bob")
    before = len(_said(lab, driver, ts))
    followups = bot.services.followups
    # First look, and each retry (15 s, then 30 s, ... apart): nothing yet, nothing said.
    at = reset_at + timedelta(seconds=16)
    for _ in range(4):
        assert followups.run_due(now=at) == 0
        [landed] = [c for c in _checks(bot, request_id) if c.kind == "landed"]
        assert landed.state == "pending" and landed.due_at > at
        at = landed.due_at
    assert _said(lab, driver, ts, before) == []
    assert followups.run_due(now=reset_at + timedelta(minutes=15)) == 1
    [warning] = _said(lab, driver, ts, before)
    assert "after the reset" in warning and "Active Directory still does not show it" in warning
    assert f"`{person('bob').dn}` has its password last set" in warning, "the warning names what AD showed"
    assert "Check Entra Connect's password writeback" in warning
    [event] = [e for e in bot.audit(request_id) if e.action == "writeback_not_seen"]
    assert '"attempts":5' in event.detail
    assert followups.run_due(now=reset_at + timedelta(minutes=20)) == 0
    assert len(_said(lab, driver, ts, before)) == 1


def test_the_thread_hears_when_the_user_chooses_their_own_password(
        lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    request_id, ts, reset_at = _reset(lab, driver, bot, "alice")
    followups = bot.services.followups
    assert followups.run_due(now=reset_at + timedelta(seconds=16)) == 1
    reveal = driver.wait_for_message(helpdesk, lambda m: "sealed" in m["text"], thread_ts=ts)
    driver.click("hank", helpdesk, reveal["ts"], "reset_reveal")
    modal = driver.wait_for_view("hank", lambda v: v.get("callback_id") == "reveal_password")
    # Said in the thread once Slack opened the modal (the password is spent only then): counted before "before".
    driver.wait_for_message(helpdesk, lambda m: "revealed the temporary password" in m["text"], thread_ts=ts)
    temporary = str(modal["blocks"][1]["text"]["text"]).strip("`")
    before = len(_said(lab, driver, ts))

    changed, message = lab.ad.change_own_password(str(person("alice").dn), temporary, "Own-Choice-9-Meadow")
    assert changed, message
    assert followups.run_due(now=reset_at + HOUR) == 1
    [said] = _said(lab, driver, ts, before)
    assert said.startswith(":lock: Alice Archer has chosen their own password (")
    assert said.endswith("): the temporary one no longer works. Follow-up done.")
    assert [(c.step, c.state, c.outcome) for c in _checks(bot, request_id) if c.kind == "replaced"] == [
        (0, "done", "replaced"), (1, "skipped", None), (2, "skipped", None)]
    assert followups.run_due(now=reset_at + 25 * HOUR) == 0, "no reminders once the user moved on"
    assert len(_said(lab, driver, ts, before)) == 1
    assert not [m for m in driver.messages(driver.dm_channel("alice")) if m["text"].startswith("Reminder")]
    assert _actions(bot, request_id, "writeback_confirmed")[-1] == "user_chose_own"


def test_a_user_who_never_replaces_it_is_reminded_and_the_thread_told(
        lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    request_id, ts, reset_at = _reset(lab, driver, bot, "alice")
    followups = bot.services.followups
    dm = driver.dm_channel("alice")
    assert followups.run_due(now=reset_at + timedelta(seconds=16)) == 1
    before = len(_said(lab, driver, ts))

    assert followups.run_due(now=reset_at + HOUR) == 1
    assert followups.run_due(now=reset_at + 4 * HOUR) == 1
    reminders = [m["text"] for m in driver.messages(dm) if m["text"].startswith("Reminder")]
    assert reminders == [
        "Reminder: helpdesk reset your password 1 hour ago and you haven't chosen your own yet. Sign in with the "
        "temporary password you were given and you'll be asked to choose a new one. If you didn't ask for this "
        "reset, press *This wasn't me* on the earlier message.",
        "Reminder: helpdesk reset your password 4 hours ago and you haven't chosen your own yet. Sign in with the "
        "temporary password you were given and you'll be asked to choose a new one. If you didn't ask for this "
        "reset, press *This wasn't me* on the earlier message."]
    assert _said(lab, driver, ts, before) == [], "reminders go to the user, not the thread"

    assert followups.run_due(now=reset_at + 24 * HOUR) == 1
    [final] = _said(lab, driver, ts, before)
    assert final.startswith(":hourglass: 1 day after the reset, Alice Archer has still not replaced the temporary "
                            "password")
    assert len([m for m in driver.messages(dm) if m["text"].startswith("Reminder")]) == 2, "no DM with the last word"
    assert _actions(bot, request_id, "writeback_confirmed") == [
        "writeback_confirmed", "replace_reminded", "replace_reminded", "never_replaced"]
    assert followups.run_due(now=reset_at + 48 * HOUR) == 0


def test_password_never_expires_keeps_must_change_off_and_the_thread_is_warned(
        lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    request_id, ts, reset_at = _reset(lab, driver, bot, "nora")
    before = len(_said(lab, driver, ts))
    assert bot.services.followups.run_due(now=reset_at + timedelta(seconds=16)) == 1
    [said] = _said(lab, driver, ts, before)
    assert said.startswith(":warning: The reset of Nora Nevers's password reached Active Directory (")
    assert "*password never expires* flag keeps *must change at next sign-in* from applying on-premises" in said
    # The reset's own pwdLastSet is not mistaken for the user's change.
    assert bot.services.followups.run_due(now=reset_at + HOUR) == 1
    assert next(c.outcome for c in _checks(bot, request_id) if c.kind == "replaced") == "reminded"


def test_ad_down_loses_no_check_and_decides_nothing(lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    request_id, ts, reset_at = _reset(lab, driver, bot, "alice")
    before = len(_said(lab, driver, ts))
    lab.ad.pause()
    try:
        assert bot.services.followups.run_due(now=reset_at + timedelta(seconds=16)) == 0
    finally:
        lab.ad.resume()
    [landed] = [c for c in _checks(bot, request_id) if c.kind == "landed"]
    assert landed.state == "pending" and landed.outcome is None, "the check is handed back, not decided"
    assert landed.attempts == 0, "a look AD did not answer is not an attempt"
    assert _said(lab, driver, ts, before) == []
    assert bot.services.followups.run_due(now=landed.due_at) == 1
    assert "Confirmed on-premises" in _said(lab, driver, ts, before)[0]
    [event] = [e for e in bot.audit(request_id) if e.action == "writeback_confirmed"]
    assert '"attempts":1' in event.detail


def test_a_check_whose_replica_died_mid_way_is_taken_over_once(lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """Another replica claimed the check and died before finishing it: its lease runs out, this one takes over,
    and the dead claim can no longer finish it."""
    request_id, ts, reset_at = _reset(lab, driver, bot, "alice")
    before = len(_said(lab, driver, ts))
    [landed] = [c for c in _checks(bot, request_id) if c.kind == "landed"]
    assert landed.id is not None
    now = reset_at + timedelta(seconds=16)
    with bot.runtime.session_factory.begin() as session:
        assert claim_followup(session, followup_id=landed.id, claim="deadreplica", now=now,
                              lease_until=now + CLAIM_LEASE)
    assert bot.services.followups.run_due(now=now) == 0, "a live claim is left alone"
    assert bot.services.followups.run_due(now=now + CLAIM_LEASE) == 1
    assert len(_said(lab, driver, ts, before)) == 1
    [done] = [c for c in _checks(bot, request_id) if c.kind == "landed"]
    assert done.state == "done" and done.claim != "deadreplica" and done.attempts == 2


def test_a_tap_or_a_refused_reset_has_no_follow_ups(lab: Lab, bot: RunningBot, driver: SlackDriver,
                                                    entra: EntraControl) -> None:
    entra.assign("hedy", "Authentication Administrator")  # a TAP takes an authentication administrator's role
    link_agent(lab, driver, "hedy")
    _, request_id = approved_request(lab, driver, bot, "bob", "tap story", flags="--tap", by="hedy")
    assert _checks(bot, request_id) == []
    lab.ad.refuse_next_passwords(1)
    _, refused_id = approved_request(lab, driver, bot, "alice", "refused story")
    [req] = [r for r in bot.requests() if r.id == refused_id]
    assert req.state == "rejected"
    assert _checks(bot, refused_id) == []


def test_many_due_checks_are_answered_by_one_directory_search(lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    ids = [_reset(lab, driver, bot, key) for key in ("alice", "bob")]
    directory = bot.services.followups.directory
    searches: list[tuple[str, int]] = []

    def counting(name: str) -> object:
        def search(keys: list[str]) -> object:
            searches.append((name, len(keys)))
            return getattr(directory, name)(keys)
        return staticmethod(search)

    followups = dataclasses.replace(bot.services.followups, directory=type(
        "Counting", (), {name: counting(name) for name in ("password_states_by_sam", "password_states_by_dn")})())
    latest = max(reset_at for _, _, reset_at in ids)
    assert followups.run_due(now=latest + timedelta(seconds=16)) == 2
    assert [s for s in searches if s[1]] == [("password_states_by_sam", 2)], "both accounts were read in one search"


def test_a_reset_interrupted_before_graph_accepted_it_is_said_to_be_unknown(
        lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """What a bot from before the reset stored its client-request-id and AD baseline (migration 0011) leaves when
    killed between "resetting" and Graph's 202: a request resetting, no operation, nothing to compare AD with. Such
    a reset is said to be unknown; one begun by this version is read in AD and made again or said to have changed
    the password (tests/scenarios/test_reset_resume.py)."""
    request_id, ts, _ = _reset(lab, driver, bot, "alice")
    with bot.runtime.session_factory.begin() as session:
        session.execute(text("DELETE FROM follow_up WHERE request_id = :id"), {"id": request_id})
        session.execute(text("UPDATE reset_request SET state = 'resetting', verdict = NULL, operation_location = NULL,"
                             " graph_operation_id = NULL, client_request_id = NULL WHERE id = :id"),
                        {"id": request_id})
    before = len(_said(lab, driver, ts))
    reset = bot.services.reset
    [req] = [r for r in bot.requests() if r.id == request_id]
    started = req.updated_at
    assert reset.recover_interrupted(now=started + timedelta(seconds=30)) == 0, "a live reset may still be running"
    assert reset.recover_interrupted(now=started + reset.stale_after + timedelta(seconds=1)) == 1
    [said] = _said(lab, driver, ts, before)
    assert said.startswith(":grey_question: resetbot stopped in the middle of this reset, before Entra said whether "
                           "it was made, so Alice Archer's password may or may not have changed")
    [req] = [r for r in bot.requests() if r.id == request_id]
    assert req.state == "failed" and req.verdict == "unknown"
    assert bot.audit(request_id)[-1].action == "failed" and '"reason":"interrupted"' in bot.audit(request_id)[-1].detail
    assert _checks(bot, request_id) == [], "nothing to follow up on a reset that may not have happened"
    assert reset.recover_interrupted(now=started + 2 * reset.stale_after) == 0


def test_a_user_who_chose_their_own_password_before_the_first_look_is_not_reminded(
        lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """The bot was down (or AD unreachable) while the user signed in and changed it: AD already shows their own
    password at the first look. That proves the reset landed, and it is their change, not the reset's."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    _, ts, reset_at = _reset(lab, driver, bot, "alice")
    reveal = driver.wait_for_message(helpdesk, lambda m: "sealed" in m["text"], thread_ts=ts)
    driver.click("hank", helpdesk, reveal["ts"], "reset_reveal")
    modal = driver.wait_for_view("hank", lambda v: v.get("callback_id") == "reveal_password")
    # Said in the thread once Slack opened the modal (the password is spent only then): counted before "before".
    driver.wait_for_message(helpdesk, lambda m: "revealed the temporary password" in m["text"], thread_ts=ts)
    changed, message = lab.ad.change_own_password(str(person("alice").dn), str(modal["blocks"][1]["text"]["text"])
                                                  .strip("`"), "Own-Choice-7-Harbor")
    assert changed, message
    before = len(_said(lab, driver, ts))
    followups = bot.services.followups
    assert followups.run_due(now=reset_at + 2 * HOUR) == 2, "the landed look and one reminder check, no burst"
    said = _said(lab, driver, ts, before)
    assert len(said) == 2 and "Confirmed on-premises" in said[0]
    assert said[1].startswith(":lock: Alice Archer has chosen their own password")
    assert not [m for m in driver.messages(driver.dm_channel("alice")) if m["text"].startswith("Reminder")]


def test_checks_that_fell_due_together_give_one_answer_not_a_burst(
        lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """The bot was down for a day: the three reminder checks are due at once; only the last one speaks."""
    request_id, ts, reset_at = _reset(lab, driver, bot, "alice")
    before = len(_said(lab, driver, ts))
    assert bot.services.followups.run_due(now=reset_at + 25 * HOUR) == 2
    said = _said(lab, driver, ts, before)
    assert len(said) == 2 and "Confirmed on-premises" in said[0]
    assert said[1].startswith(":hourglass: 1 day 1 hour after the reset, Alice Archer has still not replaced")
    assert not [m for m in driver.messages(driver.dm_channel("alice")) if m["text"].startswith("Reminder")]
    assert [(c.step, c.state) for c in _checks(bot, request_id) if c.kind == "replaced"] == [
        (0, "skipped"), (1, "skipped"), (2, "done")]


def test_no_reminders_about_a_password_nobody_revealed(lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    request_id, _, reset_at = _reset(lab, driver, bot, "alice")
    assert bot.services.reset.wipe_expired(now=reset_at + timedelta(minutes=11)) >= 1  # earlier stories' too
    assert [(c.kind, c.state) for c in _checks(bot, request_id)] == [
        ("landed", "pending"), ("replaced", "skipped"), ("replaced", "skipped"), ("replaced", "skipped")]
    assert bot.services.followups.run_due(now=reset_at + 25 * HOUR) == 1, "only whether it landed"


def test_an_approved_reset_a_stopped_bot_never_began_is_made_after_restart(
        lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """What a bot killed between the approval and the reset leaves: a request approved, nothing sent to Graph."""
    request_id, ts, _ = _reset(lab, driver, bot, "alice")
    with bot.runtime.session_factory.begin() as session:
        session.execute(text("DELETE FROM follow_up WHERE request_id = :id"), {"id": request_id})
        session.execute(text("DELETE FROM sealed_secret WHERE request_id = :id"), {"id": request_id})
        session.execute(text("UPDATE reset_request SET state = 'approved', verdict = NULL, operation_location = NULL,"
                             " graph_operation_id = NULL WHERE id = :id"), {"id": request_id})
    [req] = [r for r in bot.requests() if r.id == request_id]
    before = len(_said(lab, driver, ts))
    reset = bot.services.reset
    assert reset.recover_interrupted(now=req.updated_at + timedelta(seconds=30)) == 0
    assert reset.recover_interrupted(now=req.updated_at + reset.stale_after + timedelta(seconds=1)) == 1
    # The reset was started; Graph's operation is followed by the poller, whose verdict comes when Graph is done.
    done = ":white_check_mark: Done: Alice Archer's new temporary password"
    driver.wait_for(lambda: any(t.startswith(done) for t in _said(lab, driver, ts, before)) or None,
                    what="the verdict in the thread", describe=lambda: str(_said(lab, driver, ts, before)))
    [req] = [r for r in bot.requests() if r.id == request_id]
    assert req.state == "succeeded"
    assert [c.kind for c in _checks(bot, request_id)] == ["landed", "replaced", "replaced", "replaced"]


def test_an_account_gone_from_ad_is_said_once_and_nobody_is_reminded(
        lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """The account was deleted after the reset (here: its DN and name no longer match anything) and the bot
    was down past the first reminder: one sentence, not one per check."""
    request_id, ts, reset_at = _reset(lab, driver, bot, "alice")
    with bot.runtime.session_factory.begin() as session:
        session.execute(text("UPDATE reset_request SET target_dn = 'CN=Gone Away,OU=Staff,OU=Corp,DC=corp,DC=example,"
                             "DC=test', target_sam = 'goneaway' WHERE id = :id"), {"id": request_id})
    before = len(_said(lab, driver, ts))
    assert bot.services.followups.run_due(now=reset_at + 2 * HOUR) == 1
    [said] = _said(lab, driver, ts, before)
    assert said == (":warning: The reset of Alice Archer's password could not be confirmed on-premises: the AD "
                    "account `CN=Gone Away,OU=Staff,OU=Corp,DC=corp,DC=example,DC=test` is no longer found.")
    assert [(c.kind, c.state) for c in _checks(bot, request_id)] == [
        ("landed", "done"), ("replaced", "skipped"), ("replaced", "skipped"), ("replaced", "skipped")]
    assert not [m for m in driver.messages(driver.dm_channel("alice")) if m["text"].startswith("Reminder")]


def test_a_repeat_reset_writeback_lost_is_not_confirmed_by_the_earlier_must_change(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl) -> None:
    """Alice never replaced her first temporary password, so AD already shows *must change* (pwdLastSet 0) when
    she is reset again; this time writeback loses the reset. AD still shows 0, as it would had the reset landed:
    only the password's version, read before and after, tells them apart."""
    _, first_ts, first_at = _reset(lab, driver, bot, "alice")
    assert bot.services.followups.run_due(now=first_at + timedelta(seconds=16)) == 1
    assert "Confirmed on-premises" in _said(lab, driver, first_ts)[-1]
    alice = bot.runtime.directory.find_user(dn=person("alice").dn)
    assert alice is not None and alice.pwd_last_set_raw == 0 and alice.key_version is not None

    entra.faults(writeback="lost")
    request_id, ts, reset_at = _reset(lab, driver, bot, "alice", "follow-up story, again")
    [landed] = [c for c in _checks(bot, request_id) if c.kind == "landed"]
    assert (landed.baseline_pwd_last_set, landed.baseline_key_version) == (0, alice.key_version)
    before = len(_said(lab, driver, ts))
    followups = bot.services.followups
    at = reset_at + timedelta(seconds=16)
    while at < reset_at + timedelta(minutes=15):
        assert followups.run_due(now=at) == 0, "AD showing 0 again is no proof"
        [landed] = [c for c in _checks(bot, request_id) if c.kind == "landed"]
        at = landed.due_at
    assert followups.run_due(now=reset_at + timedelta(minutes=15)) == 1
    said = _said(lab, driver, ts, before)
    assert not any("Confirmed" in s for s in said), said
    [warning] = said
    assert "Active Directory still does not show it" in warning
    assert [e.action for e in bot.audit(request_id) if e.action.startswith("writeback")] == ["writeback_not_seen"]
    still = bot.runtime.directory.find_user(dn=person("alice").dn)
    assert still is not None and still.key_version == alice.key_version, "the lost reset never reached AD"


def test_a_repeat_reset_is_said_to_be_unproven_when_the_bot_may_not_read_the_password_version(
        lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """An AD where the bot's account is denied msDS-KeyVersionNumber (resetbot doctor fails "AD password version"
    there): a first reset is still proven by pwdLastSet moving to 0; a repeat one, from 0 to 0, cannot be, and the
    thread is told so instead of "Confirmed"."""
    alice = person("alice")
    assert alice.dn is not None
    with lab.ad.read_denied(alice.dn, attribute="msDS-KeyVersionNumber", to_account="svc-resetbot"):
        seen = bot.runtime.directory.find_user(dn=alice.dn)
        assert seen is not None and seen.key_version is None
        _, first_ts, first_at = _reset(lab, driver, bot, "alice")
        assert bot.services.followups.run_due(now=first_at + timedelta(seconds=16)) == 1
        assert "Confirmed on-premises" in _said(lab, driver, first_ts)[-1], "pwdLastSet moved to 0: proof enough"

        request_id, ts, reset_at = _reset(lab, driver, bot, "alice", "follow-up story, unproven")
        [landed] = [c for c in _checks(bot, request_id) if c.kind == "landed"]
        assert (landed.baseline_pwd_last_set, landed.baseline_key_version) == (0, None)
        before = len(_said(lab, driver, ts))
        assert bot.services.followups.run_due(now=reset_at + timedelta(seconds=16)) == 1
    [said] = _said(lab, driver, ts, before)
    assert said.startswith(":grey_question: Not confirmed on-premises: Active Directory shows *must change at next "
                           f"sign-in* on `{alice.dn}`, but it may have shown that before this reset too")
    assert [e.action for e in bot.audit(request_id) if e.action.startswith("writeback")] == ["writeback_unproven"]
    pending = [c for c in _checks(bot, request_id) if c.kind == "replaced"]
    assert [c.state for c in pending] == ["pending"] * 3, "Alice is still reminded: it most likely landed"


def test_one_failing_check_is_logged_and_retried_while_the_others_finish(
        lab: Lab, bot: RunningBot, driver: SlackDriver, caplog: pytest.LogCaptureFixture) -> None:
    """Three landed checks due in one sweep: Alice's confirmation cannot be posted (Slack refuses it), Bob's
    check cannot be answered by this release (a kind a newer one wrote), Nora's goes through. Each failure is
    logged, neither stops the others, Alice's confirmation is posted by the outbox's next run, and Bob's check is
    answered after its lease once it can be."""
    stories = {key: _reset(lab, driver, bot, key) for key in ("alice", "bob", "nora")}
    bob_id, bob_ts, _ = stories["bob"]
    [bob_landed] = [c for c in _checks(bot, bob_id) if c.kind == "landed"]
    with bot.runtime.session_factory.begin() as session:
        session.execute(text("UPDATE follow_up SET kind = 'landed_v2' WHERE id = :id"), {"id": bob_landed.id})
    before = {key: len(_said(lab, driver, ts)) for key, (_, ts, _) in stories.items()}
    now = max(reset_at for _, _, reset_at in stories.values()) + timedelta(seconds=16)
    driver.faults(fail_next={"method": "chat.postMessage", "error": "fatal_error", "count": 1})

    with caplog.at_level(logging.INFO, logger="bot.services.followups"):
        assert bot.services.followups.run_due(now=now) == 2, "Alice's and Nora's checks finish"
    logged = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("follow-up landed_v2 of") and "failed" in m for m in logged), logged
    assert any("(followup.landed) not posted (Slack: fatal_error, attempt 1)" in m for m in logged), logged

    alice_id, alice_ts, _ = stories["alice"]
    assert _said(lab, driver, alice_ts, before["alice"]) == [], "Slack refused the post"
    assert [e.action for e in bot.audit(alice_id)][-1] == "writeback_confirmed", "but the outcome is recorded"
    assert bot.services.outbox.deliver(now=now + timedelta(minutes=1)) == 1
    [alice_said] = _said(lab, driver, alice_ts, before["alice"])
    assert "Confirmed on-premises" in alice_said, "the outbox's next run posted it"
    [nora_said] = _said(lab, driver, stories["nora"][1], before["nora"])
    assert "reached Active Directory" in nora_said
    assert _said(lab, driver, bob_ts, before["bob"]) == []
    [held] = [c for c in _checks(bot, bob_id) if c.id == bob_landed.id]
    assert held.state == "running" and held.outcome is None, "the failed check is neither lost nor decided"

    with bot.runtime.session_factory.begin() as session:  # a replica that can answer it comes along
        session.execute(text("UPDATE follow_up SET kind = 'landed' WHERE id = :id"), {"id": bob_landed.id})
    assert bot.services.followups.run_due(now=now) == 0, "its lease still holds it"
    assert bot.services.followups.run_due(now=now + CLAIM_LEASE) == 1
    [bob_said] = _said(lab, driver, bob_ts, before["bob"])
    assert "Confirmed on-premises" in bob_said
    assert len(_said(lab, driver, alice_ts, before["alice"])) == 1 and len(_said(lab, driver, stories["nora"][1])) == \
        before["nora"] + 1, "nothing else was said twice"


def test_a_follow_up_whose_post_fails_is_delivered_by_a_later_run_exactly_once(
        lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """Slack is down when the confirmation is decided: the outcome is recorded and the message waits in the
    outbox; runs while Slack is still down try again on the backoff, and the first run after it is back posts it,
    once. No outbox message ever holds the temporary password."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    request_id, ts, reset_at = _reset(lab, driver, bot, "alice")
    reveal = driver.wait_for_message(helpdesk, lambda m: "sealed" in m["text"], thread_ts=ts)
    driver.click("hank", helpdesk, reveal["ts"], "reset_reveal")
    modal = driver.wait_for_view("hank", lambda v: v.get("callback_id") == "reveal_password")
    # Said in the thread once Slack opened the modal (the password is spent only then): counted before "before".
    driver.wait_for_message(helpdesk, lambda m: "revealed the temporary password" in m["text"], thread_ts=ts)
    temporary = str(modal["blocks"][1]["text"]["text"]).strip("`")
    before = len(_said(lab, driver, ts))
    outbox = bot.services.outbox
    now = reset_at + timedelta(seconds=16)

    driver.faults(down=["chat.postMessage"])
    try:
        assert bot.services.followups.run_due(now=now) == 1, "the check is answered whatever Slack does"
        assert [e.action for e in bot.audit(request_id)][-1] == "writeback_confirmed"
        assert outbox.deliver(now=now + timedelta(seconds=5)) == 0, "not due again yet: nothing is tried"
        assert outbox.deliver(now=now + timedelta(minutes=1)) == 0, "still down"
    finally:
        driver.faults(down=[])
    assert _said(lab, driver, ts, before) == []
    with bot.session() as session:
        [owed] = _followup_messages(session, request_id)
    assert (owed.state, owed.attempts, owed.last_error, owed.kind) == ("pending", 2, "service_unavailable", "thread")

    assert outbox.deliver(now=now + timedelta(minutes=5)) == 1
    assert outbox.deliver(now=now + timedelta(minutes=30)) == 0, "posted once: nothing left to post"
    [said] = _said(lab, driver, ts, before)
    assert said.startswith(":white_check_mark: Confirmed on-premises")
    with bot.session() as session:
        [sent] = _followup_messages(session, request_id)
        everything = outbox_messages(session)
    assert (sent.state, sent.attempts, sent.ts) == ("sent", 3, next(m["ts"] for m in thread(driver, helpdesk, ts)
                                                                   if m["text"] == said))
    assert not [m for m in everything if temporary in m.text + (m.blocks or "")]
    # "refused the new password: a password filter" is a verdict's own words; a follow-up never says "password:".
    assert not [m for m in everything if m.origin.startswith("followup.") and "password:" in m.text.lower()]


def _followup_messages(session: Session, request_id: str) -> list[OutboxMessage]:
    """The follow-ups' outbox messages of one request (its reset's own verdict and buttons are there too)."""
    return [m for m in outbox_messages(session, request_id=request_id) if m.origin.startswith("followup.")]

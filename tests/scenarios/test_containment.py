"""Containing a reset its target disowns: "This wasn't me" (or the target's "No" after the reset) revokes their
sign-in sessions and deletes the TAP the bot issued, at once, with the token the reset was made with; the security
channel's alert carries Scramble password, which only a member of the security group who had no part in the request
may press; a Graph failure is told, audited and retried on the next press. Asserted as people see it: the thread,
the security channel, the audit trail, Entra's own state (its control API) and AD."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import ldap3
import pytest
from ldap3.core.exceptions import LDAPBindError

from bot.domain.lifecycle import RequestState
from bot.settings import TargetConfirmation
from lab.ad.ldap import connect
from lab.people import person
from lab.slack.driver import SlackDriver
from lab.stack import Lab
from tests.clients.graphlab import EntraControl
from tests.scenarios.conftest import with_rules
from tests.scenarios.harness import RunningBot, link_agent, request_row, thread, wait_until
from tests.scenarios.test_request_approval import request_for, slack_id
from tests.scenarios.test_reset import approved_request, everything_people_and_storage_hold


@pytest.fixture(scope="module")
def entra(lab: Lab) -> EntraControl:
    return EntraControl(lab)


@pytest.fixture(scope="module")
def scrambled_passwords(bot: RunningBot) -> Iterator[list[str]]:
    """Every password a reset of this module set (Scramble's too: nobody is ever shown those) and every TAP it
    issued, read on its way to or from Graph, so the test can look for each everywhere it must never be."""
    made: list[str] = []
    graph = bot.services.reset.graph
    # Every password reaches Graph through start_reset_password (reset_password, which Scramble may use, calls it).
    original = graph.start_reset_password

    def recording(**kw: Any) -> Any:
        made.append(kw["new_password"].get_secret_value())
        return original(**kw)

    def recording_tap(**kw: Any) -> Any:
        tap = original_tap(**kw)
        made.append(tap.temporary_access_pass.get_secret_value())
        return tap

    original_tap = graph.create_temporary_access_pass
    graph.start_reset_password = recording  # type: ignore[method-assign]
    graph.create_temporary_access_pass = recording_tap  # type: ignore[method-assign]
    yield made
    del graph.start_reset_password, graph.create_temporary_access_pass


@pytest.fixture(autouse=True)
def _restore(lab: Lab, entra: EntraControl, bot: RunningBot, driver: SlackDriver, scrambled_passwords: list[str],
             caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    entra.reset(history=True)
    caplog.set_level(logging.DEBUG)
    saved = bot.services.reset.security_group
    yield
    bot.services.reset.security_group = saved
    wait_until(lambda: not any(r.state in (RequestState.APPROVED, RequestState.RESETTING) for r in bot.requests()),
               what="the test's resets to finish")
    assert bot.services.reset.wait_idle(timeout=30)
    everywhere = everything_people_and_storage_hold(lab, driver, bot)
    everywhere += "\n".join(r.getMessage() + repr(r.args) + str(r.exc_text) for r in caplog.records)
    assert [p for p in scrambled_passwords if p in everywhere] == [], "a password reached a message, row or log"
    entra.reset(history=True)
    admin = lab.ad.admin_connection()
    for key in ("alice", "bob"):
        assert admin.extend.microsoft.modify_password(person(key).dn, person(key).password)


def security_group(driver: SlackDriver, bot: RunningBot, *members: str) -> None:
    """A "security" user group made in Slack by a workspace member, pinned for the bot by its id."""
    made = driver.usergroup("olga", "create", handle="security-team", name="Security team", users=list(members))
    bot.services.reset.security_group = made["id"]


def sessions(entra: EntraControl, key: str) -> dict[str, Any]:
    seen: dict[str, Any] = entra.call("GET", f"/sessions?upn={person(key).upn}")
    return seen


def actions(bot: RunningBot, request_id: str) -> list[str]:
    return [e.action for e in bot.audit(request_id)]


def reveal(lab: Lab, driver: SlackDriver, ts: str, by: str = "hank") -> str:
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    button = driver.wait_for_message(helpdesk, lambda m: "sealed" in m["text"], thread_ts=ts)
    driver.click(by, helpdesk, button["ts"], "reset_reveal")
    modal = driver.wait_for_view(by, lambda v: v.get("callback_id") == "reveal_password")
    return str(modal["blocks"][1]["text"]["text"]).strip("`")


def key_version(lab: Lab, key: str) -> int:
    """``msDS-KeyVersionNumber``: one more at every password set (``pwdLastSet`` stays 0 while must-change holds)."""
    conn = lab.ad.admin_connection()
    conn.search(person(key).dn, "(objectClass=user)", search_scope=ldap3.BASE, attributes=["msDS-KeyVersionNumber"])
    return int(conn.entries[0]["msDS-KeyVersionNumber"].value)


def test_this_wasnt_me_revokes_the_sessions_and_only_security_may_scramble(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl) -> None:
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    security = lab.descriptor["slack"]["channels"]["security"]
    security_group(driver, bot, "ivan", "hank", "mona")  # the requester and the approver are members too
    request, request_id = approved_request(lab, driver, bot, "alice", "phoned in, says she is locked out")
    ts = str(request["ts"])
    password = reveal(lab, driver, ts)  # read out to whoever was on the phone
    before = datetime.fromisoformat(sessions(entra, "alice")["sign_in_sessions_valid_from"])

    notice = driver.wait_for_message(driver.dm_channel("alice"), lambda m: "reset by the helpdesk" in m["text"])
    driver.click("alice", driver.dm_channel("alice"), notice["ts"], "reset_not_me")
    said = driver.wait_for_message(helpdesk, lambda m: "sign-in sessions are revoked" in m["text"], thread_ts=ts)
    assert said["text"].startswith(":lock: Alice Archer's sign-in sessions are revoked: every app asks them to sign")
    alert = driver.wait_for_message(security, lambda m: f"Containing {request_id}" in m["text"])
    assert "sign-in sessions are revoked" in alert["text"] and "Scramble password" in alert["text"]
    assert [e["action_id"] for b in alert["blocks"] if b["type"] == "actions" for e in b["elements"]] == [
        "reset_scramble"]
    driver.wait_for_message(driver.dm_channel("alice"), lambda m: "signed out everywhere" in m["text"])
    assert "Their password WAS changed" in alert["text"]
    assert [m["ts"] for m in driver.messages(security) if request_id in m["text"]] == [alert["ts"]], \
        "one alert says what happened and what was contained"

    seen = sessions(entra, "alice")
    assert seen["revocations"] == 1 and datetime.fromisoformat(seen["sign_in_sessions_valid_from"]) > before
    revoked = [r for r in entra.requests("graph") if r["path"].endswith("/revokeSignInSessions")]
    assert [(r["user"], r["status"]) for r in revoked] == [(person("hank").upn, 200)], "with the reset's own token"
    assert actions(bot, request_id)[-2:] == ["reset_disowned", "sessions_revoked"]

    # Scramble: refused to someone outside the group, and to the requester and the approver inside it.
    after_reset = key_version(lab, "alice")
    for who, words in (("gina", "Only members of @security-team may scramble"),
                       ("hank", "You asked for, approved or are the target of this reset"),
                       ("mona", "You asked for, approved or are the target of this reset")):
        driver.click(who, security, alert["ts"], "reset_scramble")
        refused = driver.wait_for_ephemeral(who, lambda e, w=words: w in e["text"])  # type: ignore[misc]
        assert refused["text"].endswith(f"({request_id})")
    refusals = [e for e in bot.audit(request_id) if e.action == "refused" and "scramble" in e.detail]
    assert [(e.actor, '"reason":"not_in_security_group"' in e.detail) for e in refusals] == [
        (slack_id(lab, "gina"), True), (slack_id(lab, "hank"), False), (slack_id(lab, "mona"), False)]
    assert key_version(lab, "alice") == after_reset, "a refused press changes nothing"

    driver.click("ivan", security, alert["ts"], "reset_scramble")
    done = driver.wait_for_message(helpdesk, lambda m: "scrambled" in m["text"], thread_ts=ts, timeout=30)
    assert done["text"].startswith(f":lock: <@{slack_id(lab, 'ivan')}> scrambled Alice Archer's password")
    driver.wait_for_message(security, lambda m: "scrambled Alice Archer's password" in m["text"])
    driver.wait_for_ephemeral("ivan", lambda e: "scrambled" in e["text"])
    assert key_version(lab, "alice") != after_reset, "a new reset reached AD"
    assert "sign-in sessions are revoked" in done["text"]
    assert sessions(entra, "alice")["revocations"] == 2, \
        "a session the caller opened with the temporary password before the scramble ends too"
    with pytest.raises(LDAPBindError) as old:  # the temporary password read out on the phone is worth nothing
        connect(person("alice").upn, password, ca_file=lab.ad.ca.ca_file, url=lab.ad.ldaps_url)
    assert "773" not in str(old.value), "no longer the temporary password AD wants changed: simply wrong"
    assert actions(bot, request_id)[-2:] == ["scrambled", "sessions_revoked"]
    assert not any(m for m in thread(driver, helpdesk, ts) if "sealed" in m["text"] and m["ts"] > done["ts"]), \
        "nothing offers the scrambled password to anyone"

    driver.click("ivan", security, alert["ts"], "reset_scramble")
    driver.wait_for_ephemeral("ivan", lambda e: "already scrambled" in e["text"])
    assert actions(bot, request_id).count("scrambled") == 1


def test_a_disowned_tap_is_deleted_and_there_is_nothing_to_scramble(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl) -> None:
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    security = lab.descriptor["slack"]["channels"]["security"]
    entra.assign("hedy", "Authentication Administrator")
    link_agent(lab, driver, "hedy")
    request = request_for(lab, driver, "bob", "new phone, no password", by="hedy", flags="--tap")
    ts = str(request["ts"])
    driver.click("mona", helpdesk, ts, "request_approve")
    driver.wait_for_message(helpdesk, lambda m: "Temporary Access Pass for Bob Baker is ready" in m["text"],
                            thread_ts=ts, timeout=30)
    assert len(sessions(entra, "bob")["taps"]) == 1

    notice = driver.wait_for_message(driver.dm_channel("bob"), lambda m: "Temporary Access Pass" in m["text"])
    driver.click("bob", driver.dm_channel("bob"), notice["ts"], "reset_not_me")
    said = driver.wait_for_message(helpdesk, lambda m: "Temporary Access Pass the bot issued is deleted" in m["text"],
                                   thread_ts=ts)
    assert "Bob Baker's sign-in sessions are revoked" in said["text"]
    assert sessions(entra, "bob")["taps"] == [] and sessions(entra, "bob")["revocations"] == 1
    deleted = [r for r in entra.requests("graph") if r["method"] == "DELETE"]
    assert [(r["user"], r["status"]) for r in deleted] == [(person("hedy").upn, 204)]
    alert = driver.wait_for_message(security, lambda m: "Containing" in m["text"])
    assert "reset_scramble" not in str(alert["blocks"]), "a TAP changed no password: nothing to scramble"
    req = request_row(bot, ts)
    assert "No password was changed" in alert["text"]
    assert [m["ts"] for m in driver.messages(security) if req.id in m["text"]] == [alert["ts"]]
    assert not [m for m in thread(driver, helpdesk, ts) if "password WAS changed" in m["text"]], \
        "a TAP changed no password: nobody is told it did"
    assert actions(bot, req.id)[-3:] == ["reset_disowned", "sessions_revoked", "tap_deleted"]


def test_a_containment_graph_refuses_is_told_audited_and_retried_on_the_next_press(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl) -> None:
    """Hedy, a Password Administrator, may reset Alice's password but Entra does not let her role sign anyone out:
    containment says so in the thread and the alert, with what a person must do, and audits it. Once her role is
    raised, Alice's next press revokes the sessions."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    security = lab.descriptor["slack"]["channels"]["security"]
    link_agent(lab, driver, "hedy")
    request, request_id = approved_request(lab, driver, bot, "alice", "cannot sign in", by="hedy")
    ts = str(request["ts"])
    notice = driver.wait_for_message(driver.dm_channel("alice"), lambda m: "reset by the helpdesk" in m["text"])
    driver.click("alice", driver.dm_channel("alice"), notice["ts"], "reset_not_me")
    said = driver.wait_for_message(helpdesk, lambda m: "could NOT be revoked" in m["text"], thread_ts=ts)
    assert "Entra refused it: Authorization_RequestDenied" in said["text"]
    assert "Revoke sessions" in said["text"], "what a person must do"
    alert = driver.wait_for_message(security, lambda m: f"Containing {request_id}" in m["text"])
    assert "could NOT be revoked" in alert["text"]
    failed = bot.audit(request_id)[-1]
    assert failed.action == "containment_failed" and '"step":"revoke_sessions"' in failed.detail
    assert sessions(entra, "alice")["revocations"] == 0

    entra.assign("hedy", "Helpdesk Administrator")
    driver.click("alice", driver.dm_channel("alice"), notice["ts"], "reset_not_me", stale_ok=True)
    driver.wait_for_message(helpdesk, lambda m: "sign-in sessions are revoked" in m["text"], thread_ts=ts)
    assert sessions(entra, "alice")["revocations"] == 1
    assert actions(bot, request_id)[-1] == "sessions_revoked"


def test_graph_unavailable_during_containment_is_never_silent(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl) -> None:
    """Graph answers 503 to every try (the client's retries included): the step is left for a person, said and
    audited; the sessions stay as they were."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    request, request_id = approved_request(lab, driver, bot, "bob", "forgot it")
    ts = str(request["ts"])
    notice = driver.wait_for_message(driver.dm_channel("bob"), lambda m: "reset by the helpdesk" in m["text"])
    entra.faults(fail_next_5xx=10, fault_path="revokeSignInSessions")
    driver.click("bob", driver.dm_channel("bob"), notice["ts"], "reset_not_me")
    said = driver.wait_for_message(helpdesk, lambda m: "could NOT be revoked" in m["text"], thread_ts=ts, timeout=30)
    assert "serviceNotAvailable" in said["text"] or "unavailable" in said["text"].lower()
    assert bot.audit(request_id)[-1].action == "containment_failed"
    assert sessions(entra, "bob")["revocations"] == 0


def test_a_no_after_the_reset_was_made_is_contained_too(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl) -> None:
    """In ask mode the target says Yes, the reset is made, then they say No (a caller who had their phone): the
    late No is treated as "This wasn't me", containment included."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    with_rules(bot, target_confirmation=TargetConfirmation.ASK)
    request = request_for(lab, driver, "alice", "asked twice")
    ts = str(request["ts"])
    ask = driver.wait_for_message(driver.dm_channel("alice"), lambda m: "target_confirm_yes" in str(m["blocks"]))
    driver.click("alice", driver.dm_channel("alice"), ask["ts"], "target_confirm_yes")
    driver.click("mona", helpdesk, ts, "request_approve")
    req = wait_until(lambda: next((r for r in bot.requests() if r.thread_ts == ts and r.verdict), None),
                     timeout=30, what="the reset's verdict")
    assert req.state == RequestState.SUCCEEDED
    # The verdict's messages are out (the DM telling her is the last): then she says No.
    driver.wait_for_message(driver.dm_channel("alice"), lambda m: "reset by the helpdesk" in m["text"])
    driver.click("alice", driver.dm_channel("alice"), ask["ts"], "target_confirm_no", stale_ok=True)
    driver.wait_for_message(helpdesk, lambda m: "sign-in sessions are revoked" in m["text"], thread_ts=ts)
    assert sessions(entra, "alice")["revocations"] == 1
    assert "sessions_revoked" in actions(bot, req.id)


def test_revoke_sessions_on_an_ordinary_reset_signs_the_user_out_once_it_is_made(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl) -> None:
    """``--revoke-sessions``, for an account the caller says was compromised: the request shows it, and once the
    reset is made the user's sessions are revoked with the agent's own token, audited and said in the thread."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    request, request_id = approved_request(lab, driver, bot, "bob", "laptop stolen", flags="--revoke-sessions")
    assert "also revoke their sign-in sessions" in str(request["blocks"])
    ts = str(request["ts"])
    said = driver.wait_for_message(helpdesk, lambda m: "sign-in sessions are revoked" in m["text"], thread_ts=ts)
    assert said["text"].startswith(":lock: Bob Baker's sign-in sessions are revoked")
    assert sessions(entra, "bob")["revocations"] == 1
    revoked = [r for r in entra.requests("graph") if r["path"].endswith("/revokeSignInSessions")]
    assert [(r["user"], r["status"]) for r in revoked] == [(person("hank").upn, 200)]
    assert actions(bot, request_id)[-2:] == ["succeeded", "sessions_revoked"]
    assert not driver.messages(lab.descriptor["slack"]["channels"]["security"]), "nobody disowned it: no alert"

    # The caller signs in with the temporary password after that revocation; then Bob says it was not him: his
    # sessions are revoked again, ending the caller's.
    notice = driver.wait_for_message(driver.dm_channel("bob"), lambda m: "reset by the helpdesk" in m["text"])
    driver.click("bob", driver.dm_channel("bob"), notice["ts"], "reset_not_me")
    driver.wait_for_message(lab.descriptor["slack"]["channels"]["security"], lambda m: "Containing" in m["text"])
    assert sessions(entra, "bob")["revocations"] == 2
    assert actions(bot, request_id)[-2:] == ["reset_disowned", "sessions_revoked"]


def test_revoke_sessions_the_agents_role_may_not_do_is_refused_before_approval_or_said_in_the_thread(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hedy, a Password Administrator, may reset Bob but Entra lets her sign nobody out: she is told at once, and
    nobody is asked to approve. When her role changes after approval (the check bypassed here), Entra's own refusal
    at reset time is said in the thread; the reset itself stands."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    link_agent(lab, driver, "hedy")
    driver.command("hedy", "/reset", f"<@{slack_id(lab, 'bob')}|bob> laptop stolen --revoke-sessions",
                   channel=helpdesk)
    told = driver.wait_for_ephemeral("hedy", lambda e: "--revoke-sessions" in e["text"])
    assert told["text"].startswith(f"Your Entra account {person('hedy').upn} may reset this password but not revoke")
    assert not driver.messages(helpdesk), "nobody is asked to approve what Entra would half refuse"
    assert '"reason":"not_ready"' in bot.audit()[-1].detail

    monkeypatch.setattr(bot.services.requests, "readiness", None)
    request, request_id = approved_request(lab, driver, bot, "bob", "laptop stolen", flags="--revoke-sessions",
                                           by="hedy")
    said = driver.wait_for_message(helpdesk, lambda m: "could NOT be revoked" in m["text"],
                                   thread_ts=str(request["ts"]))
    assert "Authorization_RequestDenied" in said["text"]
    assert bot.audit(request_id)[-1].action == "containment_failed"
    assert next(r for r in bot.requests() if r.id == request_id).state == RequestState.SUCCEEDED, \
        "the reset itself stands"


def test_scramble_on_a_reset_nobody_disowned_is_refused(lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """The button is only on a containment alert; a click forged for another request changes nothing."""
    security_group(driver, bot, "ivan")
    _, request_id = approved_request(lab, driver, bot, "bob", "forgot it")
    before = key_version(lab, "bob")
    said = bot.services.reset.scramble(request_id=request_id, actor=slack_id(lab, "ivan"), correlation_id="c-t")
    assert said == f"Nobody disowned this reset, so there is nothing to contain. ({request_id})"
    assert key_version(lab, "bob") == before
    assert '"reason":"not_disowned"' in bot.audit(request_id)[-1].detail


def test_scramble_is_refused_once_the_alert_is_older_than_its_window(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl) -> None:
    """A day after the alert the user has most likely recovered by changing their own password, which the bot does
    not see: the old alert's Scramble would lock them out of it. Past RESETBOT_SCRAMBLE_WINDOW_HOURS (24 by
    default) the press is refused with a sentence and an audit row, and nothing is set."""
    security = lab.descriptor["slack"]["channels"]["security"]
    security_group(driver, bot, "ivan")
    _, request_id = approved_request(lab, driver, bot, "alice", "an old alert")
    notice = driver.wait_for_message(driver.dm_channel("alice"), lambda m: "reset by the helpdesk" in m["text"])
    driver.click("alice", driver.dm_channel("alice"), notice["ts"], "reset_not_me")
    alert = driver.wait_for_message(security, lambda m: f"Containing {request_id}" in m["text"])
    before = key_version(lab, "alice")
    resets = len([r for r in entra.requests("graph") if r["path"].endswith("/resetPassword")])
    saved = bot.services.reset.clock
    bot.services.reset.clock = lambda: saved() + timedelta(hours=24, minutes=1)
    try:
        driver.click("ivan", security, alert["ts"], "reset_scramble")
        told = driver.wait_for_ephemeral("ivan", lambda e: request_id in e["text"])
    finally:
        bot.services.reset.clock = saved
    assert told["text"].startswith("This alert is more than 24 hours old"), told["text"]
    assert key_version(lab, "alice") == before
    assert len([r for r in entra.requests("graph") if r["path"].endswith("/resetPassword")]) == resets
    assert "scrambled" not in actions(bot, request_id)
    assert '"reason":"too_late"' in bot.audit(request_id)[-1].detail


def test_scramble_on_an_old_alert_never_undoes_a_newer_reset(
        lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """Alice disowns a reset; nobody scrambles; she recovers through a new, verified request. The old alert's
    button stays in the security channel: a press on it now would reset the password she was just given to one
    nobody knows, locking her out at a security member's whim. It is refused, naming the newer request."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    security = lab.descriptor["slack"]["channels"]["security"]
    security_group(driver, bot, "ivan")
    request, old_id = approved_request(lab, driver, bot, "alice", "phoned in")
    notice = driver.wait_for_message(driver.dm_channel("alice"), lambda m: "reset by the helpdesk" in m["text"])
    driver.click("alice", driver.dm_channel("alice"), notice["ts"], "reset_not_me")
    alert = driver.wait_for_message(security, lambda m: f"Containing {old_id}" in m["text"])
    driver.wait_for_message(helpdesk, lambda m: "sign-in sessions are revoked" in m["text"],
                            thread_ts=str(request["ts"]))

    _, newer_id = approved_request(lab, driver, bot, "alice", "recovering, verified this time")
    assert next(r for r in bot.requests() if r.id == newer_id).state == RequestState.SUCCEEDED
    recovered = key_version(lab, "alice")
    driver.click("ivan", security, alert["ts"], "reset_scramble")
    refused = driver.wait_for_ephemeral("ivan", lambda e: old_id in e["text"])
    assert refused["text"] == (f"A newer reset of this user was made since ({newer_id}): scrambling this one would "
                               f"undo it. If that one is disowned too, scramble it from its own alert. ({old_id})")
    assert key_version(lab, "alice") == recovered, "the password she recovered with stands"
    assert '"reason":"superseded"' in bot.audit(old_id)[-1].detail
    assert "scrambled" not in actions(bot, old_id)


def test_a_requester_who_logs_out_cannot_disarm_scramble(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl) -> None:
    """The agent who made the reset (the insider, or whoever holds their Slack session) logs out of the bot as soon
    as the password is read out: their token is gone, and with it, on the reset's token alone, the security team's
    one button. A security member who is a linked agent scrambles with their own sign-in instead."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    security = lab.descriptor["slack"]["channels"]["security"]
    security_group(driver, bot, "hedy")
    link_agent(lab, driver, "hedy")
    request, request_id = approved_request(lab, driver, bot, "alice", "phoned in")
    notice = driver.wait_for_message(driver.dm_channel("alice"), lambda m: "reset by the helpdesk" in m["text"])
    driver.click("alice", driver.dm_channel("alice"), notice["ts"], "reset_not_me")
    alert = driver.wait_for_message(security, lambda m: f"Containing {request_id}" in m["text"])
    driver.command("hank", "/resetbot", "logout", channel=helpdesk)
    wait_until(lambda: any(e.action == "unlinked" and e.actor == slack_id(lab, "hank") for e in bot.audit()),
               what="hank's logout")
    try:
        after_reset = key_version(lab, "alice")
        driver.click("hedy", security, alert["ts"], "reset_scramble")
        done = driver.wait_for_message(helpdesk, lambda m: "scrambled" in m["text"] or "NOT changed" in m["text"],
                                       thread_ts=str(request["ts"]), timeout=30)
        assert done["text"].startswith(f":lock: <@{slack_id(lab, 'hedy')}> scrambled Alice Archer's password")
        assert key_version(lab, "alice") != after_reset
        resets = [r for r in entra.requests("graph") if r["path"].endswith("/resetPassword")]
        assert resets[-1]["user"] == person("hedy").upn, "made with the presser's own sign-in"
    finally:
        link_agent(lab, driver, "hank")


def test_two_presses_at_once_scramble_once(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl) -> None:
    """Two security members press Scramble while the first press's reset is still in Entra's hands: the second is
    told it is under way and sets nothing (once means once, across threads and replicas)."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    security = lab.descriptor["slack"]["channels"]["security"]
    security_group(driver, bot, "ivan", "gina")
    request, request_id = approved_request(lab, driver, bot, "alice", "phoned in")
    notice = driver.wait_for_message(driver.dm_channel("alice"), lambda m: "reset by the helpdesk" in m["text"])
    driver.click("alice", driver.dm_channel("alice"), notice["ts"], "reset_not_me")
    alert = driver.wait_for_message(security, lambda m: f"Containing {request_id}" in m["text"])
    entra.faults(hold_operations=True)
    try:
        driver.click("ivan", security, alert["ts"], "reset_scramble")
        wait_until(lambda: any(op["held"] for op in entra.operations()), what="the first scramble held in Entra")
        driver.click("gina", security, alert["ts"], "reset_scramble")
        told = driver.wait_for_ephemeral("gina", lambda e: request_id in e["text"])
        assert told["text"] == (f"Someone in the security group is scrambling this password right now; the thread "
                                f"will say how it ended. ({request_id})")
    finally:
        entra.faults(hold_operations=False)
    driver.wait_for_message(helpdesk, lambda m: "scrambled" in m["text"], thread_ts=str(request["ts"]), timeout=30)
    assert actions(bot, request_id).count("scrambled") == 1
    assert len([r for r in entra.requests("graph") if r["path"].endswith("/resetPassword")]) == 2, \
        "the reset, then one scramble"
    assert '"reason":"scramble_in_progress"' in next(
        e.detail for e in bot.audit(request_id) if e.action == "refused" and e.actor == slack_id(lab, "gina"))


def test_a_no_while_the_reset_runs_is_contained_once_it_is_made(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl) -> None:
    """The target's No lands while Graph is still working on the reset (nothing to contain yet); the moment the
    reset is made, it is contained: sessions revoked, security alerted with Scramble."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    with_rules(bot, target_confirmation=TargetConfirmation.ASK)
    request = request_for(lab, driver, "alice", "while it runs")
    ts = str(request["ts"])
    ask = driver.wait_for_message(driver.dm_channel("alice"), lambda m: "target_confirm_no" in str(m["blocks"]))
    entra.faults(hold_operations=True)
    driver.click("mona", helpdesk, ts, "request_approve")
    wait_until(lambda: any(op["held"] for op in entra.operations()), what="the reset held in Entra")
    driver.click("alice", driver.dm_channel("alice"), ask["ts"], "target_confirm_no")
    driver.wait_for_message(helpdesk, lambda m: "says they did not ask for this reset" in m["text"], thread_ts=ts)
    assert sessions(entra, "alice")["revocations"] == 0, "nothing is contained before the reset is made"
    entra.faults(hold_operations=False)
    driver.wait_for_message(helpdesk, lambda m: "sign-in sessions are revoked" in m["text"], thread_ts=ts, timeout=30)
    assert sessions(entra, "alice")["revocations"] == 1
    security = lab.descriptor["slack"]["channels"]["security"]
    alert = driver.wait_for_message(security, lambda m: "Containing" in m["text"])
    assert "reset_scramble" in str(alert["blocks"])
    req = request_row(bot, ts)
    assert actions(bot, req.id)[-1] == "sessions_revoked"


def test_no_scrambled_or_temporary_password_is_anywhere(scrambled_passwords: list[str]) -> None:
    """Runs last: the autouse check after each test already scanned every message, row and log line for every
    password and TAP this module set; here, that there were some to look for (a TAP among them)."""
    assert len(scrambled_passwords) >= 5

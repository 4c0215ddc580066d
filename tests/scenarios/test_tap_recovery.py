"""A bot killed after Graph made a ``--tap`` request's Temporary Access Pass and before it stored Graph's answer: the
pass is live and nobody received it. Recovery asks Graph for the user's passes, deletes the one made since the
reset began, and the thread says so; what cannot be deleted is said, audited and told to security.

The window is pinned, not raced: the lab holds Graph's answer to the TAP POST (``hold_answers_to``) after it made
the pass, so the bot is killed with the pass in Entra and its value on the wire to a process that is gone. The
lease a killed bot leaves lapses a minute later; the test ages it instead of waiting, as time passing would.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.models import ResetRequest
from bot.services.reset import RECOVERY_GIVE_UP
from bot.settings import Settings
from lab.people import person
from lab.slack.driver import SlackDriver
from lab.stack import Lab
from tests.clients.graphlab import EntraControl
from tests.scenarios.harness import lab_settings, link_agent, running_bot, thread
from tests.scenarios.test_followups_durable import FAR_FOLLOWUP_ENV, BotProcess, _env, _rows
from tests.scenarios.test_request_approval import request_for
from tests.scenarios.test_reset_resume import _lease_lapsed

_TAPS = "temporaryAccessPassMethods"
STOPPED = "resetbot stopped after asking Entra for this Temporary Access Pass and before it stored Entra's answer"


@pytest.fixture
def entra(lab: Lab) -> Iterator[EntraControl]:
    control = EntraControl(lab)
    control.reset()  # this test's requests, roles and passes only
    yield control
    control.reset()


def _taps(entra: EntraControl, key: str = "bob") -> list[dict[str, Any]]:
    """The user's passes as an administrator sees them in the portal (never their values)."""
    taps: list[dict[str, Any]] = entra.call("GET", f"/sessions?upn={person(key).upn}")["taps"]
    return taps


def _settings(lab: Lab, url: str, env: dict[str, str]) -> Settings:
    """The next bot, in this process, on the killed one's database and keys (its agents' sign-ins stay usable)."""
    return lab_settings(lab, url, token_cache_key=env["RESETBOT_TOKEN_CACHE_KEY"],
                        sealing_key=env["RESETBOT_SEALING_KEY"])


def _killed_after_graph_made_the_tap(lab: Lab, driver: SlackDriver, entra: EntraControl, env: dict[str, str],
                                     log: Path) -> tuple[str, ResetRequest]:
    """Hedy (Authentication Administrator) asks for Bob's TAP, Mona approves, and the bot is SIGKILLed once Graph
    has made the pass while its answer is held."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    first = BotProcess(env, log)
    try:
        driver.wait_connected(1, timeout=60)
        entra.assign("hedy", "Authentication Administrator")
        link_agent(lab, driver, "hedy")
        ts = str(request_for(lab, driver, "bob", "killed after Graph made the pass", by="hedy", flags="--tap")["ts"])
        entra.faults(hold_answers_to=_TAPS)
        driver.click("mona", helpdesk, ts, "request_approve")
        driver.wait_for(lambda: _taps(entra) or None, timeout=60, what="Graph to make the pass")
    finally:
        first.kill()
        entra.faults(hold_answers_to="")
    [req] = _rows(env["RESETBOT_DATABASE_URL"])[0]
    assert (req.state, req.tap, req.graph_operation_id, req.verdict) == ("resetting", True, None, None)
    assert req.client_request_id, "the call's client-request-id is recorded before Graph is called"
    assert len(_taps(entra)) == 1, "Graph made the pass; nobody received it"
    return ts, req


def test_a_tap_made_for_a_killed_bot_is_deleted_by_recovery(
        lab: Lab, driver: SlackDriver, entra: EntraControl, tmp_path: Path) -> None:
    """Recovery lists Bob's passes as Hedy, deletes the one made since the reset began, and the thread hears in one
    sentence that a pass was made, nobody received it and it is deleted. It used to say only "unknown"."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    url = f"sqlite:///{tmp_path / 'resetbot.db'}"
    env = _env(lab, url, FAR_FOLLOWUP_ENV)
    ts, req = _killed_after_graph_made_the_tap(lab, driver, entra, env, tmp_path / "bot.log")
    _lease_lapsed(url)

    with running_bot(_settings(lab, url, env), driver) as bot:
        assert bot.services.reset.recover_interrupted() == 1
        said = driver.wait_for_message(helpdesk, lambda m: STOPPED in m["text"], thread_ts=ts, timeout=30)
        events = bot.audit(req.id)
        [done] = bot.requests()
    assert _taps(entra) == [], "the pass nobody received is gone from Entra"
    assert said["text"] == (
        f":warning: {STOPPED}: Entra had made one for Bob Baker, which nobody received, and resetbot has now deleted "
        f"it, so nobody can sign in with it (<@{req.requester}>, make a new request if they still need one).")
    told = [m["text"] for m in thread(driver, helpdesk, ts)]
    assert not [t for t in told if ":grey_question:" in t or "Reveal" in t], told
    security = lab.descriptor["slack"]["channels"]["security"]
    assert not [m for m in driver.messages(security) if req.id in m["text"]], "nothing is left for security"
    assert (done.state, done.verdict) == ("failed", "unknown")
    mine = [(e.action, e.detail) for e in events]
    assert [a for a, _ in mine][-2:] == ["tap_deleted", "failed"], mine
    assert '"recovered":true' in mine[-2][1] and '"already_gone":false' in mine[-2][1]
    assert '"tap":"deleted"' in mine[-1][1] and '"recovered":true' in mine[-1][1]
    deletes = [r for r in entra.requests("graph") if r["method"] == "DELETE" and _TAPS in str(r["path"])]
    assert [(r["user"], r["status"]) for r in deletes] == [(person("hedy").upn, 204)], "deleted as the requester"


def test_a_tap_graph_cannot_delete_is_retried_then_said_and_told_to_security(
        lab: Lab, driver: SlackDriver, entra: EntraControl, tmp_path: Path) -> None:
    """Graph lists Bob's pass but answers 503 to its deletion: recovery hands the request back to the next sweep,
    saying nothing; once the give-up bound has passed, the thread hears that the pass nobody received could not be
    deleted, security is told, and the failed step is audited."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    security = lab.descriptor["slack"]["channels"]["security"]
    url = f"sqlite:///{tmp_path / 'resetbot.db'}"
    env = _env(lab, url, FAR_FOLLOWUP_ENV)
    ts, req = _killed_after_graph_made_the_tap(lab, driver, entra, env, tmp_path / "bot.log")
    _lease_lapsed(url)
    said_before = len(thread(driver, helpdesk, ts))
    entra.faults(fail_next_5xx=100, fault_path=f"{_TAPS}/")  # the DELETE's path; the list's has no slash after

    with running_bot(_settings(lab, url, env), driver) as bot:
        reset = bot.services.reset
        assert reset.recover_interrupted() == 0, "Graph out of reach: handed back to the next sweep"
        [now] = bot.requests()
        assert (now.state, now.verdict) == ("resetting", None)
        assert len(thread(driver, helpdesk, ts)) == said_before
        assert reset.recover_interrupted(now=now.updated_at + RECOVERY_GIVE_UP + timedelta(minutes=1)) == 1
        said = driver.wait_for_message(helpdesk, lambda m: STOPPED in m["text"], thread_ts=ts, timeout=30)
        alert = driver.wait_for_message(security, lambda m: req.id in m["text"], timeout=30)
        events = bot.audit(req.id)
    entra.faults(fail_next_5xx=0, fault_path="")
    assert len(_taps(entra)) == 1, "Graph never deleted it"
    assert said["text"].startswith(
        f":rotating_light: {STOPPED}: Entra had made one for Bob Baker, which nobody received, and it could not be "
        "deleted (Microsoft Graph ")
    assert said["text"].endswith("so the security channel has been told and an Authentication Administrator must "
                                 f"delete Bob Baker's Temporary Access Pass in the Entra admin center (reference "
                                 f"{events[-1].correlation_id}).")
    assert f"<@{req.requester}>" in alert["text"] and "could not be deleted" in alert["text"]
    mine = [(e.action, e.detail) for e in events]
    assert [a for a, _ in mine][-2:] == ["containment_failed", "failed"], mine
    assert '"step":"delete_tap"' in mine[-2][1] and '"tap":"not_deleted"' in mine[-1][1]


def test_a_tap_entra_refuses_to_show_is_said_at_once_and_told_to_security(
        lab: Lab, driver: SlackDriver, entra: EntraControl, tmp_path: Path) -> None:
    """Bob has become a Global Administrator since: Hedy's Authentication Administrator role may no longer read (or
    delete) his passes, and Graph answers 403. A refusal is not waited out: the thread hears at once that a pass
    may have been made and could not be checked, and security is told."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    security = lab.descriptor["slack"]["channels"]["security"]
    url = f"sqlite:///{tmp_path / 'resetbot.db'}"
    env = _env(lab, url, FAR_FOLLOWUP_ENV)
    ts, req = _killed_after_graph_made_the_tap(lab, driver, entra, env, tmp_path / "bot.log")
    entra.assign("bob", "Global Administrator")
    _lease_lapsed(url)

    with running_bot(_settings(lab, url, env), driver) as bot:
        assert bot.services.reset.recover_interrupted() == 1
        said = driver.wait_for_message(helpdesk, lambda m: STOPPED in m["text"], thread_ts=ts, timeout=30)
        alert = driver.wait_for_message(security, lambda m: req.id in m["text"], timeout=30)
        events = bot.audit(req.id)
    assert len(_taps(entra)) == 1
    assert said["text"].startswith(f":rotating_light: {STOPPED}, so Entra may have made one for Bob Baker that "
                                   "nobody received, and it could not be checked (Entra refused it: ")
    assert "could not be checked" in alert["text"]
    mine = [(e.action, e.detail) for e in events]
    assert [a for a, _ in mine][-2:] == ["containment_failed", "failed"], mine
    assert '"tap":"unchecked"' in mine[-1][1]

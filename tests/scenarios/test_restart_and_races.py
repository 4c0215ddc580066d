"""The bot restarted with requests pending, and click storms on SQLite and PostgreSQL: one outcome each."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from lab.people import person
from lab.slack.driver import SlackDriver
from lab.stack import Lab
from tests.scenarios.harness import RunningBot, lab_settings, link_agent, pg_schema_url, running_bot, thread, wait_until
from tests.scenarios.test_request_approval import request_for, slack_id


def test_escalation_then_expiry_survive_a_restart(lab: Lab, driver: SlackDriver, tmp_path: Path) -> None:
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    db = f"sqlite:///{tmp_path / 'restart.db'}"
    with running_bot(lab_settings(lab, db), driver) as first:
        link_agent(lab, driver, "hank")
        request = request_for(lab, driver, "alice", "expires test")
        req = wait_until(lambda: next((r for r in first.requests() if r.thread_ts == request["ts"]), None))
    with running_bot(lab_settings(lab, db), driver) as second:  # the bot restarted
        assert second.services.requests.sweep(now=req.created_at + timedelta(minutes=16)) == (1, 0)
        assert second.services.requests.sweep(now=req.created_at + timedelta(minutes=17)) == (0, 0)
        esc = driver.wait_for_message(helpdesk, lambda m: "still waiting" in m["text"], thread_ts=request["ts"])
        assert f"<@{slack_id(lab, 'mona')}>" in esc["text"] and "@approvers" in esc["text"]
        assert second.services.requests.sweep(now=req.created_at + timedelta(minutes=31)) == (0, 1)
        driver.wait_for_message(helpdesk, lambda m: m["text"].startswith("Expired"), thread_ts=request["ts"])
        assert second.services.requests.sweep(now=req.created_at + timedelta(minutes=40)) == (0, 0)
        assert [e.action for e in second.audit(req.id)] == ["requested", "escalated", "expired"]
    final = next(m for m in driver.messages(helpdesk) if m["ts"] == request["ts"])
    assert "Expired" in str(final["blocks"])
    assert not any(b.get("type") == "actions" for b in final["blocks"]), "an expired request has no buttons"
    assert len([m for m in thread(driver, helpdesk, request["ts"]) if m["text"].startswith("Expired")]) == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_fifty_simultaneous_approve_clicks_make_one_transition(lab: Lab, driver: SlackDriver, tmp_path: Path,
                                                               backend: str) -> None:
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    with pg_schema_url(f"sqlite:///{tmp_path / 'storm.db'}" if backend == "sqlite" else None) as url, \
            running_bot(lab_settings(lab, url), driver) as bot:
        link_agent(lab, driver, "hank")
        request = request_for(lab, driver, "alice", f"storm on {backend}")
        with ThreadPoolExecutor(max_workers=50) as pool:
            acks = list(pool.map(lambda _: driver.click("mona", helpdesk, request["ts"], "request_approve",
                                                            stale_ok=True),
                                 range(50)))
        assert all(a["acked"] for a in acks)
        driver.wait_for_message(helpdesk, lambda m: m["text"].startswith("Approved by"), thread_ts=request["ts"])
        req = wait_until(lambda: next((r for r in bot.requests() if r.thread_ts == request["ts"]), None))
        actions = wait_until(lambda: [e.action for e in bot.audit(req.id)] if req and bot.requests() and any(
            r.id == req.id and r.verdict for r in bot.requests()) else None, what="the reset's end")
        assert actions[:3] == ["requested", "approval_added", "approved"]
        assert actions.count("approved") == 1 and actions.count("reset_started") == 1, actions
        approved = [m for m in thread(driver, helpdesk, request["ts"]) if m["text"].startswith("Approved by")]
        assert len(approved) == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_approve_and_the_targets_yes_at_the_same_moment_approve_the_request(
        lab: Lab, driver: SlackDriver, tmp_path: Path, backend: str) -> None:
    """Required confirmation: the manager's Approve and the target's Yes arrive together. Each used to read the
    other's half before the other committed it (Approve saw no Yes, Yes saw no approval), so neither moved the
    request, and it sat pending until it expired. Whichever commits second must see the first: every round is
    approved once, and its reset runs."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    dm = driver.dm_channel("bob")

    def one_round(bot: RunningBot, n: int) -> list[str]:
        asked = {m["ts"] for m in driver.messages(dm)}
        request = request_for(lab, driver, "bob", f"yes race {n} on {backend}")
        question = driver.wait_for_message(dm, lambda m: m["ts"] not in asked and "Did you ask the helpdesk"
                                           in str(m["blocks"]))
        with ThreadPoolExecutor(max_workers=2) as pool:
            acks = list(pool.map(lambda click: driver.click(*click), [
                ("mona", helpdesk, request["ts"], "request_approve"),
                ("bob", dm, question["ts"], "target_confirm_yes")]))
        assert all(a["acked"] for a in acks)
        driver.wait_for_message(helpdesk, lambda m: m["text"].startswith("Approved by"), thread_ts=request["ts"])
        req = wait_until(lambda: next((r for r in bot.requests() if r.thread_ts == request["ts"] and r.verdict),
                                      None), timeout=30, what="the reset's verdict")
        return [e.action for e in bot.audit(req.id)]

    with pg_schema_url(f"sqlite:///{tmp_path / 'yes.db'}" if backend == "sqlite" else None) as url, \
            running_bot(lab_settings(lab, url, target_confirmation="required"), driver) as bot:
        link_agent(lab, driver, "hank")
        try:
            for n in range(6):
                actions = one_round(bot, n)
                assert actions.count("approved") == 1 and actions.count("reset_started") == 1, actions
        finally:
            bob = person("bob")
            assert lab.ad.admin_connection().extend.microsoft.modify_password(bob.dn, bob.password)

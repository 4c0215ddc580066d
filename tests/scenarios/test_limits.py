"""The abuse limits at ``/reset`` (issue 15, part 4), each across two replicas sharing one database: PostgreSQL, and
a SQLite file. Replica A is a whole bot (Socket Mode; hank links his Entra account through it), replica B the same
services built again on the same database, as a second process would have them. ``/reset`` is made through each
replica's request service, at the same moment where a race matters; what the agent is told (the sentence the
handler sends them), the channels, the audit trail and the Prometheus counters are asserted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.domain.lifecycle import RequestState
from bot.metrics import REGISTRY
from bot.models import AuditEvent, ResetRequest
from bot.services.registry import Services
from bot.wiring import build_runtime
from lab.people import person
from lab.slack.driver import SlackDriver
from lab.stack import Lab
from tests.scenarios.harness import lab_settings, link_agent, pg_schema_url, running_bot, wait_until
from tests.scenarios.test_request_approval import slack_id

BACKENDS = ["sqlite", "postgresql"]
#: People any agent may ask to reset (not protected, in AD, enabled, not locked out).
TARGETS = ("alice", "bob", "nora", "mona", "olga")


@contextmanager
def two_replicas(lab: Lab, driver: SlackDriver, tmp_path: Path, backend: str,
                 **limits: Any) -> Iterator[tuple[Services, Services]]:
    with pg_schema_url(f"sqlite:///{tmp_path / 'limits.db'}" if backend == "sqlite" else None) as url:
        settings = lab_settings(lab, url, **limits)
        with running_bot(settings, driver) as a:
            link_agent(lab, driver, "hank")
            b = build_runtime(settings)
            b.pin_groups()
            try:
                yield a.services, b.services
            finally:
                b.close()


def ask(services: Services, key: str, reason: str, by: str = "hank") -> Callable[[Any], str | None]:
    def make(lab: Lab) -> str | None:
        return services.requests.create(requester=slack_id(lab, by), channel=helpdesk(lab),
                                        text=f"<@{slack_id(lab, key)}|{key}> {reason}", correlation_id=reason)
    return make


def at_once(lab: Lab, calls: list[Callable[[Any], str | None]]) -> list[str | None]:
    """Run every call at the same instant, each on its own thread (as two replicas' work pools would)."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[Any], str | None]) -> str | None:
        start.wait()
        return call(lab)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def helpdesk(lab: Lab) -> str:
    return str(lab.descriptor["slack"]["channels"]["helpdesk"])


def security(driver: SlackDriver, lab: Lab) -> list[str]:
    return [m["text"] for m in driver.messages(lab.descriptor["slack"]["channels"]["security"])]


def requests_of(services: Services) -> list[ResetRequest]:
    with services.requests.begin() as session:
        return list(session.exec(select(ResetRequest)).all())


def audit_of(services: Services) -> list[AuditEvent]:
    with services.requests.begin() as session:
        return list(session.exec(select(AuditEvent).order_by(AuditEvent.seq)).all())  # type: ignore[arg-type]


def counted(limit: str) -> float:
    return REGISTRY.get_sample_value("resetbot_limits_total", {"limit": limit}) or 0.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_open_request_per_target_even_when_two_replicas_are_asked_at_once(
        lab: Lab, driver: SlackDriver, tmp_path: Path, backend: str) -> None:
    before = counted("open_request")
    with two_replicas(lab, driver, tmp_path, backend) as (a, b):
        said = at_once(lab, [ask(a, "bob", "twice at once"), ask(b, "bob", "twice at once")])
        made = requests_of(a)
        assert len(made) == 1, "two replicas both made a request for Bob"
        req = made[0]
        refused = next(s for s in said if s and "already has" in s)
        # The thread is named once the winner has posted it (here it may still be posting).
        assert refused.startswith(f"Bob Baker (`{person('bob').upn}`) already has a reset request open: {req.id}, "
                                  f"asked by <@{slack_id(lab, 'hank')}>, pending approval (see ")
        assert refused.endswith("Nothing new was requested; follow that one, or cancel it first.")
        assert len([m for m in driver.messages(helpdesk(lab)) if "twice at once" in str(m["blocks"])]) == 1
        # Later, from the other replica, still refused while it is open; once it is decided, Bob may be asked for.
        again = ask(b, "bob", "still open")(lab)
        posted = next(m for m in driver.messages(helpdesk(lab)) if "twice at once" in str(m["blocks"]))
        link = f"https://resetbot-lab.slack.com/archives/{helpdesk(lab)}/p{posted['ts'].replace('.', '')}"
        assert again is not None and f"{req.id}, asked by" in again and f"(see <{link}|its thread>)" in again
        assert a.requests.cancel(request_id=req.id, actor=slack_id(lab, "hank"), correlation_id="c") is None
        assert "is posted in" in str(ask(b, "bob", "after the cancel")(lab))
        refusals = [e for e in audit_of(a) if e.action == "refused" and '"reason":"open_request"' in e.detail]
        assert len(refusals) == 2 and all(req.id in e.detail for e in refusals)
    assert counted("open_request") - before == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_agent_past_the_hourly_limit_is_refused_and_security_told_once(
        lab: Lab, driver: SlackDriver, tmp_path: Path, backend: str) -> None:
    before = counted("agent_rate")
    with two_replicas(lab, driver, tmp_path, backend, limit_agent_per_hour=3) as (a, b):
        said = at_once(lab, [ask((a, b)[i % 2], key, f"burst {key}") for i, key in enumerate(TARGETS)])
        made = requests_of(a)
        assert len(made) == 3, "the replicas together let more than three through"
        free = [k for k in TARGETS if person(k).upn not in {r.target_upn for r in made}]
        refused = [s for s in said if s and s.startswith("You have asked for")]
        assert refused == ["You have asked for 3 resets in the last hour, and the limit is 3 an hour: nothing was "
                           "requested. Ask again later, or ask another agent."] * 2
        alerts = wait_until(lambda: [t for t in security(driver, lab) if "was refused another" in t])
        assert alerts == [f":rotating_light: <@{slack_id(lab, 'hank')}> asked for 3 password resets in the last hour "
                          "and was refused another (limit 3 an hour). If that is not a busy morning, their Slack "
                          "account may be in the wrong hands."]
        # A third refusal, in the same hour: audited, refused, but security is not told again.
        third = ask(b, free[0], "once more")(lab)
        assert third is not None and third.startswith("You have asked for 3")
        assert len([t for t in security(driver, lab) if "was refused another" in t]) == 1
        trail = audit_of(a)
        assert len([e for e in trail if e.action == "refused" and '"reason":"agent_rate"' in e.detail]) == 3
        assert len([e for e in trail if e.action == "agent_limit_alerted"]) == 1
        # Another agent is not held back by hank's number.
        link_agent(lab, driver, "hedy")
        assert "is posted in" in str(ask(a, free[1], "hedy asks", by="hedy")(lab))
    assert counted("agent_rate") - before == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_whole_helpdesk_past_its_hourly_number_alerts_security_once_and_refuses_nothing(
        lab: Lab, driver: SlackDriver, tmp_path: Path, backend: str) -> None:
    before = counted("team_rate")
    with two_replicas(lab, driver, tmp_path, backend, limit_team_per_hour=2) as (a, b):
        said = at_once(lab, [ask((a, b)[i % 2], key, f"team {key}") for i, key in enumerate(TARGETS)])
        assert all("is posted in" in str(s) for s in said), said
        assert len(requests_of(a)) == len(TARGETS)
        alerts = wait_until(lambda: [t for t in security(driver, lab) if "in the last hour (more than" in t])
        assert alerts == [":warning: The helpdesk has asked for 3 password resets in the last hour (more than the 2 "
                          "expected). Nothing was refused; this is said once an hour."]
        assert len([e for e in audit_of(b) if e.action == "team_limit_alerted"]) == 1
    assert counted("team_rate") - before == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_target_reset_within_the_repeat_window_needs_two_approvals_and_security_is_told(
        lab: Lab, driver: SlackDriver, tmp_path: Path, backend: str) -> None:
    before = counted("repeat_target")
    alice = person("alice")
    try:
        with two_replicas(lab, driver, tmp_path, backend, limit_repeat_hours=24) as (a, b):
            assert "is posted in" in str(ask(a, "alice", "first time")(lab))
            first = requests_of(a)[0]
            assert first.approvals_required == 1
            assert a.requests.approve(request_id=first.id, actor=slack_id(lab, "mona"), correlation_id="c") is None
            wait_until(lambda: next(r for r in requests_of(a) if r.id == first.id).state == RequestState.SUCCEEDED,
                       timeout=30, what="the first reset to succeed")
            assert a.reset.wait_idle(timeout=30)
            assert "is posted in" in str(ask(b, "alice", "second time")(lab))
            second = next(r for r in requests_of(b) if r.id != first.id)
            assert second.approvals_required == 2
            posted = driver.wait_for_message(helpdesk(lab), lambda m: "second time" in str(m["blocks"]))
            assert "(0 of 2)" in str(posted["blocks"])
            assert "This password was already reset recently: two different approvers decide" in str(posted["blocks"])
            alert = driver.wait_for_message(lab.descriptor["slack"]["channels"]["security"],
                                            lambda m: "again" in m["text"])
            assert alert["text"] == (f":warning: <@{slack_id(lab, 'hank')}> asked to reset Alice Archer "
                                     f"(`{alice.upn}`) again: their password was already reset in the last 24 hours. "
                                     f"The request {second.id} needs two approvers.")
            assert [e.action for e in audit_of(a) if e.request_id == second.id] == ["requested",
                                                                                     "repeat_target_alerted"]
            # One approval is not enough any more.
            assert b.requests.approve(request_id=second.id, actor=slack_id(lab, "mona"), correlation_id="c") is None
            assert next(r for r in requests_of(b) if r.id == second.id).state == RequestState.PENDING_APPROVAL
            assert b.requests.cancel(request_id=second.id, actor=slack_id(lab, "hank"), correlation_id="c") is None
    finally:
        assert lab.ad.admin_connection().extend.microsoft.modify_password(alice.dn, alice.password)
    assert counted("repeat_target") - before == 1

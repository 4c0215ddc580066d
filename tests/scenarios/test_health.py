"""Health pings against the lab: an LDAP outage and its end, the token endpoint down, the canary end to end,
a check that crashes, two replicas on PostgreSQL, and what ``/resetbot health`` and App Home show.

Most tests drive a health service of their own (the bot's clients, a fresh database) so each starts from a
clean history; rounds are run by the real scheduler where the timing matters, or by ``tick`` with a chosen
``now`` where that is clearer.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlmodel import select

from bot import messages
from bot.db import make_engine, make_session_factory
from bot.domain.health_state import Check, CheckResult, slot_of
from bot.jobs import start_scheduler
from bot.metrics import METRICS, set_health
from bot.models import SERVICE_LINK_KEY, AgentLink, HealthResult, HealthSlot, HealthTransition
from bot.policy import generate_temporary_password
from bot.schema import upgrade
from bot.services import health as health_module
from bot.services.health import HealthService
from bot.services.outbox import Outbox
from bot.store.outbox import outbox_messages
from bot.wiring import build_runtime
from lab.people import person
from lab.slack.driver import Message, SlackDriver
from lab.stack import Lab
from tests.clients.graphlab import EntraControl
from tests.scenarios.harness import RunningBot, lab_settings, pg_schema_url, wait_until

#: A fixed future moment for ticks with a chosen ``now`` (a slot no real clock has reached).
T0 = datetime(2031, 3, 3, 12, 0, 0, tzinfo=UTC)
ROUND_CHECKS = [Check.GRAPH_TOKEN, Check.GRAPH_READ, Check.LDAP, Check.DIRECTORY_SYNC]


@pytest.fixture(scope="module")
def entra(lab: Lab) -> EntraControl:
    return EntraControl(lab)


@pytest.fixture
def clean_entra(entra: EntraControl) -> Iterator[EntraControl]:
    entra.reset()
    yield entra
    entra.reset()


@pytest.fixture
def health(bot: RunningBot, tmp_path: Path) -> Iterator[HealthService]:
    """A health service on the bot's clients with a database of its own (no history), 2-second rounds."""
    engine = make_engine(f"sqlite:///{tmp_path / 'health.db'}")
    upgrade(engine)
    base = bot.services.health
    begin = make_session_factory(engine).begin
    yield HealthService(begin=begin, outbox=Outbox(begin=begin, notifier=bot.runtime.notifier),
                        graph=bot.runtime.graph, directory=bot.runtime.directory,
                        fresh_app_token=base.fresh_app_token, canary_token=base.canary_token,
                        rules=dataclasses.replace(base.rules, interval_s=2.0, summary_hour=23))
    engine.dispose()


def ops(lab: Lab) -> str:
    return str(lab.descriptor["slack"]["channels"]["ops"])


def said(driver: SlackDriver, lab: Lab, prefix: str) -> list[Message]:
    return [m for m in driver.messages(ops(lab)) if m["text"].startswith(prefix)]


Row = TypeVar("Row", HealthResult, HealthSlot, HealthTransition)


def rows(health: HealthService, model: type[Row]) -> list[Row]:
    with health.begin() as session:
        return list(session.exec(select(model)).all())


def results_of(health: HealthService, slot: int) -> dict[str, HealthResult]:
    with health.begin() as session:
        found = session.exec(select(HealthResult).where(HealthResult.round_slot == slot)).all()
    return {r.check_name: r for r in found}


def at(slot_offset: int, seconds: float = 0.0) -> datetime:
    """A moment ``seconds`` into the ``slot_offset``-th 2-second slot after T0."""
    return T0 + timedelta(seconds=2 * slot_offset + seconds)


def test_ldap_outage_degrades_health_and_its_end_restores_it_each_told_once(
        lab: Lab, bot: RunningBot, driver: SlackDriver, health: HealthService) -> None:
    health.rules = dataclasses.replace(health.rules, interval_s=1.0)
    scheduler = start_scheduler(dataclasses.replace(bot.services, health=health), sweep_seconds=600)

    def rounds() -> int:
        return len([s for s in rows(health, HealthSlot) if s.kind == "round"])

    def rounds_after(n: int) -> Callable[[], bool]:
        return lambda: rounds() >= n

    try:
        wait_until(rounds_after(1), timeout=30, what="a first round")
        wait_until(lambda: results_of(health, max(s.slot for s in rows(health, HealthSlot))),
                   what="the first round's results")
        lab.ad.pause()
        try:
            down = driver.wait_for_message(ops(lab), lambda m: "degraded" in m["text"], timeout=60)
            wait_until(rounds_after(rounds() + 2), timeout=60, what="two more rounds while LDAP is down")
        finally:
            lab.ad.resume()
        back = driver.wait_for_message(ops(lab), lambda m: m["text"].startswith("*resetbot health: :large_green"),
                                       timeout=60)
        wait_until(rounds_after(rounds() + 2), timeout=60, what="two more rounds after LDAP is back")
    finally:
        scheduler.shutdown(wait=True)
    assert "LDAP bind and read failing: Active Directory could not be reached" in down["text"]
    assert "Graph" not in down["text"], "only LDAP failed"
    assert "LDAP bind and read recovered" in back["text"] and "(was degraded)" in back["text"]
    assert len(said(driver, lab, "*resetbot health: :red_circle: degraded")) == 1
    assert len(said(driver, lab, "*resetbot health: :large_green_circle: healthy")) == 1
    transitions = [(t.from_state, t.to_state) for t in rows(health, HealthTransition)]
    assert transitions == [("unknown", "healthy"), ("healthy", "degraded"), ("degraded", "healthy")]
    assert health.report().state == "healthy"


def test_token_endpoint_down_degrades_health_naming_the_graph_token(
        lab: Lab, driver: SlackDriver, health: HealthService, clean_entra: EntraControl) -> None:
    assert health.tick(now=at(0)).change is None  # healthy from the start: nothing to tell
    clean_entra.faults(token_endpoint_down=True)
    outcome = health.tick(now=at(1))
    assert outcome.change is not None and [c for c, _ in outcome.change.newly_failing] == [Check.GRAPH_TOKEN]
    failed = results_of(health, outcome.round_slot or 0)
    assert not failed["graph_token"].ok and failed["graph_read"].ok and failed["ldap"].ok
    assert failed["graph_token"].detail == ("Entra ID's token endpoint could not be reached or is unavailable "
                                            "(HTTP 503).")
    told = driver.wait_for_message(ops(lab), lambda m: "degraded" in m["text"])
    assert f"Graph token failing: {failed['graph_token'].detail}" in told["text"]
    assert health.tick(now=at(2)).change is None, "still the same failure: not news"
    clean_entra.faults(token_endpoint_down=False)
    assert health.tick(now=at(3)).change is not None
    driver.wait_for_message(ops(lab), lambda m: "Graph token recovered" in m["text"])
    assert len(said(driver, lab, "*resetbot health:")) == 2


@pytest.fixture
def service_identity(lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl) -> Iterator[str]:
    """With a canary configured, an approver (ivan) links the service identity (gina) in agent mode."""
    links = bot.services.links
    rules = links.rules
    upn = person("gina").upn
    links.rules = dataclasses.replace(rules, canary=True, service_upn=upn)
    try:
        yield upn
    finally:
        links.rules = rules
        with bot.runtime.session_factory.begin() as session:
            session.execute(sa.delete(AgentLink).where(AgentLink.slack_user == SERVICE_LINK_KEY))  # type: ignore[arg-type]


def link_service_identity(lab: Lab, driver: SlackDriver, entra: EntraControl) -> None:
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    before = {m["ts"] for m in driver.messages(driver.dm_channel("ivan"))}
    driver.command("ivan", "/resetbot", "login --service", channel=helpdesk)
    code_re = re.compile(r"enter the code \*([A-Z0-9]+)\*")
    dm = driver.wait_for_message(driver.dm_channel("ivan"),
                                 lambda m: m["ts"] not in before and code_re.search(m["text"]) is not None)
    code = code_re.search(dm["text"])
    assert code
    entra.approve(code.group(1), "gina")
    driver.wait_for_message(driver.dm_channel("ivan"), lambda m: m["text"].startswith(
        "The service identity is linked as"), timeout=30)


def test_the_canary_proves_writeback_end_to_end_and_says_when_it_did_not_land(
        lab: Lab, driver: SlackDriver, health: HealthService, clean_entra: EntraControl,
        service_identity: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []  # every canary password, to look for it everywhere afterwards

    def recording(*args: Any, **kwargs: Any) -> SecretStr:
        secret = generate_temporary_password(*args, **kwargs)
        made.append(secret.get_secret_value())
        return secret

    monkeypatch.setattr(health_module, "generate_temporary_password", recording)
    canary = person("canary")
    health.rules = dataclasses.replace(health.rules, canary_upn=canary.upn, service_upn=service_identity)
    unlinked = health.tick(now=at(0))
    assert unlinked.change is not None and [c for c, _ in unlinked.change.newly_failing] == [Check.CANARY]
    assert results_of(health, unlinked.round_slot or 0)["canary"].detail == (
        f"The canary is reset as the service identity `{service_identity}`, which isn't linked: an approver has to "
        "run `/resetbot login --service`.")

    link_service_identity(lab, driver, clean_entra)
    before = clean_entra.pwd_last_set(canary)
    with caplog.at_level(logging.DEBUG):
        landed = health.tick(now=at(1))
    assert landed.change is not None and landed.change.recovered == (Check.CANARY,)
    result = results_of(health, landed.round_slot or 0)["canary"]
    assert result.ok and result.detail.startswith(f"The canary {canary.upn} was reset through Graph and Active "
                                                  "Directory shows the new password")
    assert clean_entra.pwd_last_set(canary) > before, "pwdLastSet moved in AD"
    ops_done = [o for o in clean_entra.operations() if o["upn"] == canary.upn]
    assert [(o["caller"], o["status"]) for o in ops_done] == [(service_identity, "succeeded")]
    driver.wait_for_message(ops(lab), lambda m: "Canary recovered" in m["text"])

    clean_entra.faults(writeback="offline", offline_delay_ms=200)
    lost = health.tick(now=at(2))
    assert lost.change is not None and [c for c, _ in lost.change.newly_failing] == [Check.CANARY]
    detail = results_of(health, lost.round_slot or 0)["canary"].detail
    assert detail.startswith(f"The canary reset of {canary.upn} did not land on-premises: SSPR_0030")
    told = driver.wait_for_message(ops(lab), lambda m: "Canary failing" in m["text"] and "SSPR_0030" in m["text"])
    assert told["text"].startswith("*resetbot health: :red_circle: degraded*")
    # Graph says done but AD never hears (the agent went away after the relay took it): only AD can tell.
    clean_entra.faults(writeback="lost")
    silent = health.tick(now=at(3))
    assert results_of(health, silent.round_slot or 0)["canary"].detail == (
        f"Graph reported the canary reset of {canary.upn} done, but its pwdLastSet in Active Directory did not move: "
        "the password did not land on-premises.")
    # No temporary password of the canary's ever reaches a result, a log line or a message.
    texts = [r.getMessage() for r in caplog.records] + [m["text"] for m in driver.messages(ops(lab))]
    texts += [r.detail for r in rows(health, HealthResult)] + [caplog.text]
    assert len(made) == 3 and not [t for t in texts if "newPassword" in t or any(p in t for p in made)]


def test_a_check_that_raises_is_logged_recorded_as_failed_and_the_next_round_runs(
        lab: Lab, driver: SlackDriver, health: HealthService, caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> CheckResult:
        raise ZeroDivisionError("a bug in the check")

    works = health.checks[Check.GRAPH_READ]
    health.checks[Check.GRAPH_READ] = broken
    with caplog.at_level(logging.ERROR, logger="bot.services.health"):
        first = health.tick(now=at(0))
    assert first.round_slot is not None
    failed = results_of(health, first.round_slot)
    assert sorted(failed) == sorted(c.value for c in ROUND_CHECKS)
    assert not failed["graph_read"].ok and failed["ldap"].ok
    assert failed["graph_read"].detail == ("The check itself failed unexpectedly (ZeroDivisionError); the bot's log "
                                           "has the details.")
    logged = caplog.text  # with the traceback (redaction may fold it into the message itself)
    assert "health check graph_read raised" in logged and "ZeroDivisionError: a bug in the check" in logged
    driver.wait_for_message(ops(lab), lambda m: "Graph read failing" in m["text"])
    health.checks[Check.GRAPH_READ] = works
    second = health.tick(now=at(1))
    assert second.round_slot == first.round_slot + 1 and results_of(health, second.round_slot)["graph_read"].ok
    assert health.report().state == "healthy"


def test_two_replicas_on_postgresql_run_each_round_and_summary_once(
        lab: Lab, driver: SlackDriver, clean_entra: EntraControl) -> None:
    with pg_schema_url(None) as url:
        settings = lab_settings(lab, url, health_interval_seconds=2, health_summary_hour=8)
        replicas = [build_runtime(settings), build_runtime(settings)]
        try:
            services = [r.services.health for r in replicas]
            moments = [at(slot, s) for slot in range(3) for s in (0.1, 0.7, 1.3, 1.9)]
            with ThreadPoolExecutor(max_workers=2) as pool:
                for now in moments:  # both replicas tick at each moment, at the same time
                    list(pool.map(lambda h, when=now: h.tick(now=when), services))
            with replicas[0].session_factory() as session:
                slots = session.exec(select(HealthSlot)).all()
                results = session.exec(select(HealthResult)).all()
        finally:
            for runtime in replicas:
                runtime.close()
    rounds = sorted(s.slot for s in slots if s.kind == "round")
    assert rounds == [slot_of(at(0), 2) + i for i in range(3)]
    assert len([s for s in slots if s.kind == "summary"]) == 1
    for slot in rounds:
        assert sorted(r.check_name for r in results if r.round_slot == slot) == sorted(c.value for c in ROUND_CHECKS)
    reads = [r for r in clean_entra.requests("graph") if r["path"].endswith("/organization")
             and "onPremises" not in str(r["query"])]
    assert len(reads) == 3, "one Graph read per round, whichever replica ran it"
    assert len(said(driver, lab, "*resetbot daily health summary")) == 1


def test_resetbot_health_and_app_home_show_the_state(lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    driver.command("hank", "/resetbot", "health", channel=helpdesk)
    driver.wait_for_ephemeral("hank", lambda e: "No round of health pings has run yet." in e["text"])
    bot.services.health.tick(now=T0)
    driver.command("hedy", "/resetbot", "health", channel=helpdesk)
    shown = driver.wait_for_ephemeral("hedy", lambda e: e["text"].startswith("*resetbot health:"))
    assert shown["text"].startswith("*resetbot health: :large_green_circle: healthy*")
    for label in ("Graph token", "Graph read", "LDAP bind and read", "Directory sync"):
        assert f"*{label}*" in shown["text"]
    assert "Entra Connect last synced" in shown["text"]
    assert not any("resetbot health" in m["text"] for m in driver.messages(helpdesk)), "only hedy sees it"
    driver.open_home("hank")
    home = wait_until(lambda: driver.home_view("hank"), what="hank's App Home")
    text = str(home)
    assert "Writeback health:* :large_green_circle: healthy" in text and "My recent requests" in text


def home_health(driver: SlackDriver, user: str, state: str) -> str:
    """``user`` opens App Home; the text of its health section once it shows ``state``."""
    driver.open_home(user)

    def shown() -> str | None:
        view = driver.home_view(user) or {}
        texts = [b["text"]["text"] for b in view.get("blocks", []) if b.get("type") == "section"]
        return next((t for t in texts if t.startswith(f"*Writeback health:* {state}")), None)

    found: str = wait_until(shown, what=f"{user}'s App Home to show {state}")
    return found


def test_app_home_shows_the_state_and_the_last_changes_after_an_ldap_outage(
        lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """The bot's own health service (its database, its App Home); rounds in slots no real clock has reached,
    so the bot's scheduler, ticking at today's time, cannot interleave a round of its own."""
    health = bot.services.health
    first = health.tick(now=T0 + timedelta(days=1))
    assert first.round_slot is not None
    lab.ad.pause()
    try:
        down = health.tick(now=T0 + timedelta(days=2))
    finally:
        lab.ad.resume()
    assert down.change is not None and down.change.failing == (Check.LDAP,)
    text = home_health(driver, "hank", ":red_circle: degraded")
    lines = text.splitlines()
    assert lines[0] == "*Writeback health:* :red_circle: degraded (failing: LDAP bind and read)"
    assert lines[1] == "*Last changes*"
    assert re.fullmatch(r"• <!date\^\d+\^[^|]+\|[^>]+>: healthy → degraded \(LDAP bind and read failing\)",
                        lines[2]), lines
    assert lines[-1] == "`/resetbot health` shows each check."
    # The same lines as /resetbot health's, from the one builder.
    report = messages.health.health_report(health.report())
    assert "\n".join(lines[1:-1]) in report

    back = health.tick(now=T0 + timedelta(days=3))
    assert back.change is not None and back.change.recovered == (Check.LDAP,)
    again = home_health(driver, "hank", ":large_green_circle: healthy").splitlines()
    assert "degraded → healthy (LDAP bind and read recovered)" in again[2] and "healthy → degraded" in again[3]


def test_the_daily_summary_tells_ops_the_state_each_checks_failures_and_the_changes(
        lab: Lab, driver: SlackDriver, health: HealthService, clean_entra: EntraControl) -> None:
    health.tick(now=at(0))
    clean_entra.faults(token_endpoint_down=True)
    health.tick(now=at(1))
    clean_entra.faults(token_endpoint_down=False)
    health.tick(now=at(2))
    clean_entra.faults(token_endpoint_down=True)
    evening = T0.replace(hour=health.rules.summary_hour, minute=0, second=1)
    outcome = health.tick(now=evening)  # the day's fourth round, then the summary
    assert outcome.round_slot is not None and outcome.summary
    [summary] = said(driver, lab, "*resetbot daily health summary")
    assert summary["text"] == "\n".join([
        "*resetbot daily health summary: :red_circle: degraded*",
        "• Graph token: failing now; 2 of 4 checks failed in the last 24 hours",
        "• Graph read: ok now; 0 of 4 checks failed in the last 24 hours",
        "• LDAP bind and read: ok now; 0 of 4 checks failed in the last 24 hours",
        "• Directory sync: ok now; 0 of 4 checks failed in the last 24 hours",
        "4 changes of state in the last 24 hours.",
    ])
    assert not health.tick(now=evening + timedelta(minutes=5)).summary, "one summary a day"


def test_a_stale_directory_sync_degrades_health_and_a_fresh_one_restores_it(
        lab: Lab, driver: SlackDriver, health: HealthService, clean_entra: EntraControl) -> None:
    limit = health.rules.sync_max_age_minutes
    assert health.tick(now=at(0)).change is None
    clean_entra.faults(sync_lag_minutes=limit + 1)  # Entra Connect stalled just over the limit ago
    stale = health.tick(now=at(1))
    assert stale.change is not None and [c for c, _ in stale.change.newly_failing] == [Check.DIRECTORY_SYNC]
    detail = results_of(health, stale.round_slot or 0)["directory_sync"].detail
    assert re.fullmatch(rf"Entra Connect last synced <!date\^\d+\^[^>]+>, more than {limit} minutes ago: check the "
                        "Entra Connect server and its service\\.", detail), detail
    told = driver.wait_for_message(ops(lab), lambda m: "degraded" in m["text"])
    assert f"Directory sync failing: {detail}" in told["text"]
    clean_entra.faults(sync_lag_minutes=0)
    fresh = health.tick(now=at(2))
    assert fresh.change is not None and fresh.change.recovered == (Check.DIRECTORY_SYNC,)
    assert results_of(health, fresh.round_slot or 0)["directory_sync"].detail.startswith("Entra Connect last synced")
    driver.wait_for_message(ops(lab), lambda m: "Directory sync recovered" in m["text"])


def test_every_replica_reports_the_latest_round_in_its_health_gauge(
        health: HealthService, clean_entra: EntraControl) -> None:
    """The replica that lost the round still scrapes as the round said: the gauge is read back from the database."""
    clean_entra.faults(token_endpoint_down=True)
    assert health.tick(now=at(0)).round_slot is not None
    clean_entra.faults(token_endpoint_down=False)
    other = dataclasses.replace(health, runner="the-other-replica")  # same database, its own slot cache
    set_health("graph_token", True)  # whatever this process last saw
    assert other.tick(now=at(0, 0.5)).round_slot is None, "the slot was claimed already"
    gauge = {s.labels["check"]: s.value for metric in METRICS.health.collect() for s in metric.samples}
    assert gauge["graph_token"] == 0 and gauge["ldap"] == 1 and gauge["graph_read"] == 1


def test_a_health_change_slack_did_not_take_is_retried_and_ops_hears_the_changes_in_order(
        lab: Lab, driver: SlackDriver, health: HealthService, clean_entra: EntraControl) -> None:
    """Slack is down when health degrades, and still down when it recovers: both changes wait in the outbox, and
    once Slack is back ops hears "degraded" then "healthy", each once, never the recovery first."""
    assert health.tick(now=at(0)).change is None
    driver.faults(down=["chat.postMessage"])
    try:
        clean_entra.faults(token_endpoint_down=True)
        assert health.tick(now=at(1)).change is not None
        clean_entra.faults(token_endpoint_down=False)
        assert health.tick(now=at(2)).change is not None
        assert health.outbox.deliver(now=at(2, 1)) == 0, "the recovery waits behind the undelivered alert"
    finally:
        driver.faults(down=[])
    assert said(driver, lab, "*resetbot health:") == []
    with health.begin() as session:
        assert [(m.state, m.attempts) for m in outbox_messages(session)] == [("pending", 1), ("pending", 0)]
    assert health.outbox.deliver(now=at(2) + timedelta(minutes=1)) == 2
    assert health.outbox.deliver(now=at(2) + timedelta(minutes=30)) == 0
    told = [m["text"] for m in said(driver, lab, "*resetbot health:")]
    assert len(told) == 2 and "degraded" in told[0] and "Graph token failing" in told[0], told
    assert "Graph token recovered" in told[1], told

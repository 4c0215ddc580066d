"""Metrics: counted once a transition commits (never for a rolled-back one), latencies from the row's own
timestamps, served over HTTP only when asked for."""

from __future__ import annotations

import socket
from datetime import timedelta

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from bot import metrics, store
from bot.domain.audit import AuditAction
from bot.domain.lifecycle import RequestState
from bot.errors import ConfigError
from bot.metrics import REGISTRY, Metrics, record_followup, serve, set_health
from tests.store.helpers import T0, draft, new_request

pytest_plugins = ("tests.store.dbfixtures",)


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_reset_is_counted_with_its_latencies_once_committed(factory: sessionmaker[Session]) -> None:
    before = {k: value(k) for k in ("resetbot_approval_latency_seconds_count", "resetbot_reset_latency_seconds_count",
                                    "resetbot_reset_latency_seconds_sum", "resetbot_approval_latency_seconds_sum")}
    succeeded = value("resetbot_requests_total", outcome="succeeded")
    verdict = value("resetbot_verdicts_total", verdict="policy_rejected")
    req = new_request(factory)
    with factory.begin() as session:
        store.requests.transition(session, request_id=req.id, expected={RequestState.PENDING_APPROVAL},
                                  to=RequestState.APPROVED, changes={"decided_at": T0 + timedelta(seconds=90)},
                                  audit=draft(AuditAction.APPROVED), now=T0 + timedelta(seconds=90))
        store.requests.transition(session, request_id=req.id, expected={RequestState.APPROVED},
                                  to=RequestState.RESETTING,
                                  audit=draft(AuditAction.RESET_STARTED), now=T0 + timedelta(seconds=91))
        assert value("resetbot_approval_latency_seconds_count") == before["resetbot_approval_latency_seconds_count"]
    assert value("resetbot_approval_latency_seconds_count") == before["resetbot_approval_latency_seconds_count"] + 1
    assert value("resetbot_approval_latency_seconds_sum") == pytest.approx(
        before["resetbot_approval_latency_seconds_sum"] + 90)
    with factory.begin() as session:
        store.requests.transition(session, request_id=req.id, expected={RequestState.RESETTING},
                                  to=RequestState.REJECTED,
                                  changes={"verdict": "policy_rejected"}, audit=draft(AuditAction.REJECTED),
                                  now=T0 + timedelta(seconds=93))
    assert value("resetbot_requests_total", outcome="rejected") >= 1
    assert value("resetbot_verdicts_total", verdict="policy_rejected") == verdict + 1
    assert value("resetbot_reset_latency_seconds_count") == before["resetbot_reset_latency_seconds_count"] + 1
    assert value("resetbot_reset_latency_seconds_sum") == pytest.approx(
        before["resetbot_reset_latency_seconds_sum"] + 3)
    assert value("resetbot_requests_total", outcome="succeeded") == succeeded


def test_a_rolled_back_or_lost_transition_counts_nothing(factory: sessionmaker[Session]) -> None:
    denied = value("resetbot_requests_total", outcome="denied")
    req = new_request(factory)

    def deny_then_fail() -> None:
        with factory.begin() as session:
            store.requests.transition(session, request_id=req.id, expected={RequestState.PENDING_APPROVAL},
                                      to=RequestState.DENIED, audit=draft(AuditAction.DENIED))
            raise RuntimeError("the transaction fails after the move")

    with pytest.raises(RuntimeError):
        deny_then_fail()
    assert value("resetbot_requests_total", outcome="denied") == denied
    with factory.begin() as session:
        store.requests.transition(session, request_id=req.id, expected={RequestState.PENDING_APPROVAL},
                                  to=RequestState.DENIED, audit=draft(AuditAction.DENIED))
    with factory.begin() as session:  # a second click loses the race: nothing moved, nothing counted
        assert store.requests.transition(session, request_id=req.id, expected={RequestState.PENDING_APPROVAL},
                                         to=RequestState.DENIED, audit=draft(AuditAction.DENIED)) is None
    assert value("resetbot_requests_total", outcome="denied") == denied + 1


def scrape(port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5, trust_env=False).text
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples


def test_the_endpoint_serves_every_metric_and_only_when_asked() -> None:
    assert serve(port=None) is None
    registry = CollectorRegistry()
    fresh = Metrics(registry)
    record_followup("reached_ad", "confirmed", metrics=fresh)
    set_health("writeback", False, metrics=fresh)
    set_health("ldap", True, metrics=fresh)
    server = serve(port=0, registry=registry)
    assert server is not None
    try:
        got = scrape(server.port)
        assert got["resetbot_requests_total"][(("outcome", "expired"),)] == 0
        assert set(dict(k)["verdict"] for k in got["resetbot_verdicts_total"]) >= {"succeeded", "unknown"}
        assert got["resetbot_followups_total"] == {(("check", "reached_ad"), ("outcome", "confirmed")): 1}
        assert got["resetbot_health_ok"] == {(("check", "ldap"),): 1, (("check", "writeback"),): 0}
        assert got["resetbot_reset_latency_seconds_count"] == {(): 0}
        with pytest.raises(ConfigError, match="RESETBOT_METRICS_PORT"):
            serve(port=server.port, registry=registry)
    finally:
        server.close()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", server.port)) != 0, "closed means nothing listens"


def test_the_process_metrics_are_served_too() -> None:
    assert metrics.REGISTRY.get_sample_value("process_virtual_memory_bytes") is not None

"""Prometheus metrics: every definition in one place, small typed functions to record them, and the endpoint.

The request and verdict metrics are recorded where every state change already passes, ``bot.store.requests.transition``,
once its transaction has committed (a rolled-back move counts nothing), with the latencies read from the request
row's own timestamps; so no service has to remember to count. The registry is this process's own (not
prometheus_client's global one): several replicas are several scrape targets, and Prometheus adds them up.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from bot.domain.lifecycle import RequestState
from bot.domain.limits import Limit
from bot.domain.verdict import VerdictKind
from bot.errors import ConfigError

log = logging.getLogger(__name__)

#: The terminal states a request is counted under, by ``resetbot_requests_total{outcome}``.
OUTCOMES: tuple[RequestState, ...] = (
    RequestState.SUCCEEDED, RequestState.REJECTED, RequestState.FAILED,
    RequestState.DENIED, RequestState.CANCELLED, RequestState.EXPIRED,
)
_VERDICT_STATES = frozenset({RequestState.SUCCEEDED, RequestState.REJECTED, RequestState.FAILED})

#: Approvals are human: seconds to hours (a request expires after 30 minutes by default, 24 h at most).
APPROVAL_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 86400.0)
#: A reset is Graph's operation plus writeback: about a second when all is well, a minute when polling gives up.
RESET_BUCKETS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)


class Metrics:
    """Every resetbot metric, registered in ``registry``. Label values known in advance start at zero, so a
    rate or an alert has a series from the first scrape instead of after the first event."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter("resetbot_requests", "Reset requests that reached a final state, by outcome.",
                                ["outcome"], registry=registry)
        self.approval_latency = Histogram(
            "resetbot_approval_latency_seconds", "Seconds from a request being made to its approval.",
            buckets=APPROVAL_BUCKETS, registry=registry)
        self.reset_latency = Histogram(
            "resetbot_reset_latency_seconds", "Seconds from a request's approval to the reset's verdict.",
            buckets=RESET_BUCKETS, registry=registry)
        self.verdicts = Counter("resetbot_verdicts", "Reset verdicts, by kind (succeeded, policy_rejected, ...).",
                                ["verdict"], registry=registry)
        self.followups = Counter("resetbot_followups", "Follow-up checks run, by check and outcome.",
                                 ["check", "outcome"], registry=registry)
        self.health = Gauge("resetbot_health_ok", "1 while a health check passes, 0 while it fails.",
                            ["check"], registry=registry)
        self.limits = Counter("resetbot_limits", "Abuse limits that applied to a /reset: refused (open_request, "
                              "agent_rate), two approvals required (repeat_target), security alerted (team_rate).",
                              ["limit"], registry=registry)
        for limit in Limit:
            self.limits.labels(limit=limit.value)
        for state in OUTCOMES:
            self.requests.labels(outcome=state.value)
        for kind in VerdictKind:
            self.verdicts.labels(verdict=kind.value)


#: This process's registry: resetbot's metrics and the process's own (CPU, memory, open files, GC).
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)
METRICS = Metrics(REGISTRY)


def record_transition(*, to: RequestState, created_at: datetime, decided_at: datetime | None, at: datetime,
                      verdict: str | None, metrics: Metrics = METRICS) -> None:
    """Count a committed state change: the outcome of a final one, the approval latency of an approval,
    the verdict and reset latency of a reset's end (approval → verdict)."""
    if to == RequestState.APPROVED and decided_at is not None:
        metrics.approval_latency.observe(max(0.0, (decided_at - created_at).total_seconds()))
    if to in OUTCOMES:
        metrics.requests.labels(outcome=to.value).inc()
    if to in _VERDICT_STATES:
        if verdict:
            metrics.verdicts.labels(verdict=verdict).inc()
        if decided_at is not None:
            metrics.reset_latency.observe(max(0.0, (at - decided_at).total_seconds()))


def record_limit(limit: Limit, *, metrics: Metrics = METRICS) -> None:
    """One abuse limit applied to a request (or to an attempt at one)."""
    metrics.limits.labels(limit=limit.value).inc()


def record_followup(check: str, outcome: str, *, metrics: Metrics = METRICS) -> None:
    """One follow-up check ran (``check``: what it proves; ``outcome``: what it found)."""
    metrics.followups.labels(check=check, outcome=outcome).inc()


def set_health(check: str, ok: bool, *, metrics: Metrics = METRICS) -> None:
    """The latest result of health check ``check``."""
    metrics.health.labels(check=check).set(1 if ok else 0)


@dataclass
class MetricsServer:
    """The running ``/metrics`` endpoint (a daemon thread); ``close`` stops it and frees the port."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve(*, port: int | None, address: str = "127.0.0.1",
          registry: CollectorRegistry = REGISTRY) -> MetricsServer | None:
    """Serve ``/metrics`` on ``address:port``; nothing (None) when no port is set. ``port=0`` picks a free one.
    A port that cannot be had is a ConfigError: an operator who asked for metrics wants to know at start."""
    if port is None:
        return None
    try:
        server, thread = start_http_server(port, addr=address, registry=registry)
    except OSError as e:
        raise ConfigError(f"RESETBOT_METRICS_PORT: cannot serve metrics on {address}:{port} "
                          f"({e.strerror or type(e).__name__}).") from None
    running = MetricsServer(server, thread)
    log.info("metrics served at http://%s:%d/metrics", address, running.port)
    return running

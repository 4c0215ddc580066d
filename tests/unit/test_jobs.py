"""The scheduler runs the sweep on its interval, and a failing run never stops the next one."""

from __future__ import annotations

import threading
from typing import Any, cast

from bot.jobs import SWEEP_JOB_ID, start_scheduler
from bot.services.registry import Services


class _Requests:
    """Stands in for RequestService.sweep only: the first run fails, the next ones succeed."""

    def __init__(self) -> None:
        self.calls = 0
        self.second = threading.Event()

    def sweep(self) -> tuple[int, int]:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("LDAP went away")
        self.second.set()
        return (0, 0)


def test_a_failing_sweep_is_logged_and_the_next_one_runs() -> None:
    requests = _Requests()
    reset = type("R", (), {"wipe_expired": lambda self: 0})()
    health = type("H", (), {"tick": lambda self: None, "rules": type("Rules", (), {"tick_s": 600})()})()
    services = cast(Services, cast(Any, type("S", (), {"requests": requests, "reset": reset, "health": health})()))
    scheduler = start_scheduler(services, sweep_seconds=0.05)
    try:
        assert scheduler.get_job(SWEEP_JOB_ID) is not None
        assert requests.second.wait(timeout=10), "the sweep did not run again after a failure"
    finally:
        scheduler.shutdown(wait=True)
    assert requests.calls >= 2

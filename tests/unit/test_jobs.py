"""The scheduler runs each job on its interval, and a failing run never stops the next one."""

from __future__ import annotations

import threading
from typing import Any, cast

from bot.jobs import (
    FOLLOWUPS_JOB_ID,
    HEALTH_JOB_ID,
    OUTBOX_JOB_ID,
    RECOVER_JOB_ID,
    SWEEP_JOB_ID,
    WIPE_JOB_ID,
    start_scheduler,
)
from bot.services.registry import Services


class _FailsOnce:
    """Stands in for one job body only: the first run fails, the next ones succeed."""

    def __init__(self) -> None:
        self.calls = 0
        self.second = threading.Event()

    def __call__(self) -> int:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("LDAP went away")
        self.second.set()
        return 0


def test_a_failing_job_is_logged_and_its_next_run_happens() -> None:
    sweep, wipe, followups, recover, tick, outbox = (_FailsOnce() for _ in range(6))
    services = cast(Services, cast(Any, type("S", (), {
        "requests": type("Q", (), {"sweep": staticmethod(sweep)})(),
        "reset": type("R", (), {"wipe_expired": staticmethod(wipe), "recover_interrupted": staticmethod(recover)})(),
        "followups": type("F", (), {"run_due": staticmethod(followups)})(),
        "health": type("H", (), {"tick": staticmethod(tick), "rules": type("Rules", (), {"tick_s": 0.05})()})(),
        "outbox": type("O", (), {"deliver": staticmethod(outbox)})(),
    })()))
    scheduler = start_scheduler(services, sweep_seconds=0.05)
    try:
        for job_id in (SWEEP_JOB_ID, WIPE_JOB_ID, FOLLOWUPS_JOB_ID, RECOVER_JOB_ID, HEALTH_JOB_ID, OUTBOX_JOB_ID):
            assert scheduler.get_job(job_id) is not None
        for name, body in (("sweep", sweep), ("wipe", wipe), ("follow-ups", followups), ("recovery", recover),
                           ("health", tick), ("outbox", outbox)):
            assert body.second.wait(timeout=10), f"the {name} job did not run again after a failure"
    finally:
        scheduler.shutdown(wait=True)

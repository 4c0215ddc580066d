"""APScheduler wiring: which service function runs when.

Requests keep their own deadlines in the database (``escalate_at``, ``expires_at``), and follow-ups their
``due_at`` (``bot.models.FollowUp``), so the scheduler only needs short interval jobs that sweep for what is
due: nothing about a request lives in the scheduler, a restart loses nothing, and several replicas sweeping
at once are safe because every change is a compare-and-set whose winner alone posts. Each job body is
isolated: a failure is logged and the next run happens as planned. Health pings work the same way: a
short tick on every replica, and a round per time slot claimed in the database (``bot.services.health``).
The outbox's run (``bot.services.outbox``) posts what the follow-ups and health decided but Slack did not take at
once (and what a process that died after its commit left behind): its rows are claimed the same way.

APScheduler is imported by ``start_scheduler``, not with this module: it scans every installed package's entry
points when it is imported (about 80 ms), and ``resetbot run`` starts the scheduler only once Slack is connected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bot.services.registry import Services

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger(__name__)

SWEEP_JOB_ID = "requests.sweep"
WIPE_JOB_ID = "reset.wipe_expired"
FOLLOWUPS_JOB_ID = "followups.run_due"
RECOVER_JOB_ID = "reset.recover_interrupted"
HEALTH_JOB_ID = "health.tick"
OUTBOX_JOB_ID = "outbox.deliver"


def isolated(name: str, body: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        try:
            body()
        except Exception:
            log.exception("scheduled job %s failed; it runs again at its next time", name)

    return run


def start_scheduler(services: Services, *, sweep_seconds: float) -> BackgroundScheduler:
    from apscheduler.schedulers.background import BackgroundScheduler  # noqa: PLC0415 (lazy: see the module doc)
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_job(
        isolated(SWEEP_JOB_ID, services.requests.sweep), "interval", seconds=sweep_seconds, id=SWEEP_JOB_ID,
        coalesce=True, max_instances=1, next_run_time=datetime.now(UTC), replace_existing=True,
    )
    scheduler.add_job(
        isolated(WIPE_JOB_ID, services.reset.wipe_expired), "interval", seconds=sweep_seconds, id=WIPE_JOB_ID,
        coalesce=True, max_instances=1, next_run_time=datetime.now(UTC), replace_existing=True,
    )
    scheduler.add_job(
        isolated(FOLLOWUPS_JOB_ID, services.followups.run_due), "interval", seconds=sweep_seconds,
        id=FOLLOWUPS_JOB_ID, coalesce=True, max_instances=1, next_run_time=datetime.now(UTC), replace_existing=True,
    )
    scheduler.add_job(
        isolated(RECOVER_JOB_ID, services.reset.recover_interrupted), "interval", seconds=sweep_seconds,
        id=RECOVER_JOB_ID, coalesce=True, max_instances=1, next_run_time=datetime.now(UTC), replace_existing=True,
    )
    scheduler.add_job(
        isolated(OUTBOX_JOB_ID, services.outbox.deliver), "interval", seconds=sweep_seconds,
        id=OUTBOX_JOB_ID, coalesce=True, max_instances=1, next_run_time=datetime.now(UTC), replace_existing=True,
    )
    health = services.health
    scheduler.add_job(
        isolated(HEALTH_JOB_ID, health.tick), "interval", seconds=health.rules.tick_s, id=HEALTH_JOB_ID,
        coalesce=True, max_instances=1, next_run_time=datetime.now(UTC), replace_existing=True,
    )
    scheduler.start()
    return scheduler

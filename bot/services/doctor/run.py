"""``run_checks``: every check in its order, each group from the module named for what it checks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from bot import messages
from bot.services.doctor.callback import check_callback
from bot.services.doctor.database import check_database
from bot.services.doctor.directory import ad_checks
from bot.services.doctor.duo import check_duo
from bot.services.doctor.entra import entra_checks
from bot.services.doctor.plan import (
    S_CALLBACK,
    S_DATABASE,
    S_DUO,
    S_PROXY,
    S_SERVICE_LINK,
    S_SETTINGS,
    CheckResult,
    DoctorPlan,
    Run,
    check_settings,
    skip,
)
from bot.services.doctor.proxy import check_proxy
from bot.services.doctor.service_identity import service_link, service_skip
from bot.services.doctor.slack import slack_checks


def run_checks(plan: DoctorPlan) -> Iterator[CheckResult]:
    """Every check, in order, as soon as each is done (so the operator sees progress)."""
    run = Run()
    state: dict[str, Any] = {}
    yield run.check(S_SETTINGS, lambda: check_settings(plan))
    if plan.proxy is None:
        yield skip(S_PROXY, messages.doctor.doctor_proxy_unset())
    else:
        yield run.check(S_PROXY, lambda: check_proxy(plan))
    yield from slack_checks(plan, run, state)
    yield from entra_checks(plan, run, state)
    yield run.check(S_CALLBACK, lambda: check_callback(plan))
    yield from ad_checks(plan, run)
    yield run.check(S_DUO, lambda: check_duo(plan), needs=(S_PROXY,))
    if plan.database_url is None:
        yield skip(S_DATABASE, messages.doctor.doctor_skipped_for(S_SETTINGS))
        yield skip(S_SERVICE_LINK, messages.doctor.doctor_skipped_for(S_SETTINGS))
        return
    url = plan.database_url
    yield run.check(S_DATABASE, lambda: check_database(url))
    if plan.service_upn is None:
        yield skip(S_SERVICE_LINK, service_skip(plan))
    else:
        yield run.check(S_SERVICE_LINK, lambda: service_link(plan, url), needs=(S_DATABASE,))

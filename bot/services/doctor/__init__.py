"""``resetbot doctor``'s checks: each dependency in turn, one result per check, in an order where a check runs
only when what it stands on passed (no Graph permissions without a token), and a failure elsewhere never
stops a check that does not depend on it (AD down still checks the database).

Each result carries a sentence from bot.messages saying what was found, or what is wrong and what to do.
Unexpected exceptions become a FAIL line naming only their type: a doctor that crashes tells nothing, and an
exception's text may hold what must not be printed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from bot import messages
from bot.services.doctor.database import database
from bot.services.doctor.directory import ad_checks
from bot.services.doctor.entra import entra_checks, token_roles
from bot.services.doctor.plan import (
    S_DATABASE,
    S_PROXY,
    S_SERVICE_LINK,
    S_SETTINGS,
    CheckResult,
    DoctorPlan,
    Outcome,
    Run,
    fail,
    ok,
    skip,
)
from bot.services.doctor.proxy import Blocked, proxied_targets, proxy, proxy_problem
from bot.services.doctor.service_identity import service_link, service_skip
from bot.services.doctor.slack import slack_checks

__all__ = [
    "S_SETTINGS",
    "Blocked",
    "CheckResult",
    "DoctorPlan",
    "Outcome",
    "proxied_targets",
    "proxy_problem",
    "run_checks",
    "token_roles",
]


def run_checks(plan: DoctorPlan) -> Iterator[CheckResult]:
    """Every check, in order, as soon as each is done (so the operator sees progress)."""
    run = Run()
    state: dict[str, Any] = {}
    if plan.settings_problems:
        yield run.check(S_SETTINGS, lambda: fail(S_SETTINGS, " ".join(plan.settings_problems)))
    else:
        yield run.check(S_SETTINGS, lambda: ok(S_SETTINGS, messages.doctor.doctor_settings_ok()))
    if plan.proxy is None:
        yield skip(S_PROXY, messages.doctor.doctor_proxy_unset())
    else:
        yield run.check(S_PROXY, lambda: proxy(plan))
    yield from slack_checks(plan, run, state)
    yield from entra_checks(plan, run, state)
    yield from ad_checks(plan, run)
    if plan.database_url is None:
        yield skip(S_DATABASE, messages.doctor.doctor_skipped_for(S_SETTINGS))
        yield skip(S_SERVICE_LINK, messages.doctor.doctor_skipped_for(S_SETTINGS))
        return
    url = plan.database_url
    yield run.check(S_DATABASE, lambda: database(url))
    if plan.service_upn is None:
        yield skip(S_SERVICE_LINK, service_skip(plan))
    else:
        yield run.check(S_SERVICE_LINK, lambda: service_link(plan, url), needs=(S_DATABASE,))

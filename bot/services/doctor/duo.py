"""Duo: the Auth API application answers a signed ``check`` with the configured keys (a wrong secret key, a
deleted application or a host that is not the application's fails here, not at a caller's first push)."""

from __future__ import annotations

from bot import messages
from bot.errors import DuoUnavailableError
from bot.services.doctor.plan import S_DUO, CheckResult, DoctorPlan, fail, ok, skip


def check_duo(plan: DoctorPlan) -> CheckResult:
    if plan.duo is None or plan.duo_host is None:
        return skip(S_DUO, messages.doctor.doctor_duo_not_used())
    try:
        plan.duo.check()
    except DuoUnavailableError as e:
        return fail(S_DUO, messages.doctor.doctor_duo_failed(plan.duo_host, str(e)))
    return ok(S_DUO, messages.doctor.doctor_duo_ok(plan.duo_host))

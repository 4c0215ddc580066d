"""The outbound proxy: does it let the bot through to each host it needs? ``resetbot run`` asks
``proxy_problem`` too, before it starts (``bot.services.start_checks``)."""

from __future__ import annotations

from bot import messages
from bot.clients.proxy import target_of
from bot.services.doctor.plan import S_PROXY, CheckResult, DoctorPlan, fail, ok
from bot.services.start_checks import proxy_problem


def check_proxy(plan: DoctorPlan) -> CheckResult:
    assert plan.proxy is not None
    problem = proxy_problem(plan.proxy, plan.proxied_urls, plan.tls_timeout_s)
    if problem is not None:
        return fail(S_PROXY, problem.sentence)
    targets = [f"{host}:{port}" for host, port in map(target_of, plan.proxied_urls)]
    return ok(S_PROXY, messages.doctor.doctor_proxy_ok(plan.proxy.shown, targets))

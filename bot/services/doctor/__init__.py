"""``resetbot doctor``'s checks: each dependency in turn, one result per check, in an order where a check runs
only when what it stands on passed (no Graph permissions without a token), and a failure elsewhere never
stops a check that does not depend on it (AD down still checks the database).

Each result carries a sentence from bot.messages saying what was found, or what is wrong and what to do.
Unexpected exceptions become a FAIL line naming only their type: a doctor that crashes tells nothing, and an
exception's text may hold what must not be printed.

The modules, named for what they check: ``plan`` (the ``DoctorPlan``, ``CheckResult``, the check names and the
``Run`` that skips what depends on a failure), ``run`` (``run_checks``: the order), ``proxy``, ``slack``,
``tls``, ``entra`` (the token, Graph's permissions, reachability, the test user), ``service_identity`` (the
service identity's reset role and its link), ``directory`` (Active Directory) and ``database``. Import from
``bot.services.doctor``.
"""

from __future__ import annotations

from bot.services.doctor.entra import token_roles
from bot.services.doctor.plan import S_SETTINGS, CheckResult, DoctorPlan, Outcome
from bot.services.doctor.run import run_checks
from bot.services.start_checks import Blocked, proxied_targets, proxy_problem

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

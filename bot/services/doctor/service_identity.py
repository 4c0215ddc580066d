"""The service identity (the account every reset is done as in service mode, or the canary's): can it reset
a user (its Entra directory roles), and is it linked in the database with a token cache the key opens?"""

from __future__ import annotations

from bot import messages, store
from bot.db import make_engine, make_session_factory
from bot.domain.entra_roles import can_reset, can_revoke_sessions, resetting_roles
from bot.errors import MicrosoftError
from bot.models import SERVICE_LINK_KEY
from bot.services.doctor.plan import S_RESET_ROLE, S_SERVICE_LINK, S_SETTINGS, CheckResult, DoctorPlan, fail, ok, skip


def service_skip(plan: DoctorPlan) -> str:
    if plan.service_wanted:  # service mode or a canary without a UPN: the settings line says so
        return messages.doctor.doctor_skipped_for(S_SETTINGS)
    return messages.doctor.doctor_service_not_used()


def reset_role(plan: DoctorPlan) -> CheckResult:
    """The service identity's Entra directory roles, read as the bot reads a target's (transitive memberOf with
    the app token), against Microsoft's table: can it reset a user who holds no admin role (and sign them out, for
    containment: said, not failed, since resets work without it)? Microsoft decides
    at reset time; this is the bot's own prediction, made before anyone waits on a reset."""
    assert plan.graph is not None and plan.service_upn is not None
    upn = plan.service_upn
    use = messages.doctor.doctor_service_use(plan.service_mode)
    try:
        user = plan.graph.get_user(upn)
        if user is None:
            return fail(S_RESET_ROLE, messages.doctor.doctor_reset_role_no_user(upn))
        held = plan.graph.directory_roles_of(user.id)
    except MicrosoftError as e:
        return fail(S_RESET_ROLE, messages.doctor.doctor_entra_failed(str(e)))
    if not can_reset(held, ()):
        return fail(S_RESET_ROLE, messages.doctor.doctor_reset_role_missing(upn, sorted(set(held)), use))
    return ok(S_RESET_ROLE, messages.doctor.doctor_reset_role_ok(upn, resetting_roles(held), use,
                                                                 may_revoke=not plan.service_mode
                                                                 or can_revoke_sessions(held, ())))


def service_link(plan: DoctorPlan, url: str) -> CheckResult:
    """Is the service identity linked (a stored sign-in in the database), as that account, and does the stored
    cache decrypt with the configured key? No call to Entra: whether it still honours the sign-in is what
    ``/resetbot whoami`` shows, and a doctor must not refresh (and so rotate) a stored sign-in."""
    assert plan.service_upn is not None
    upn = plan.service_upn
    engine = make_engine(url)
    try:
        with make_session_factory(engine, read_only=True).begin() as session:
            link = store.links.get_link(session, slack_user=SERVICE_LINK_KEY)
            found = None if link is None else (link.upn, link.linked_at, link.encrypted_cache)
    finally:
        engine.dispose()
    if found is None:
        return fail(S_SERVICE_LINK, messages.doctor.doctor_service_link_missing(
            upn, messages.doctor.doctor_service_use(plan.service_mode)))
    linked_upn, linked_at, cache = found
    if linked_upn.strip().lower() != upn.strip().lower():
        return fail(S_SERVICE_LINK, messages.doctor.doctor_service_link_other(linked_upn, upn))
    if plan.cache_opens is None:  # no token-cache key: the settings line says so
        return skip(S_SERVICE_LINK, messages.doctor.doctor_skipped_for(S_SETTINGS))
    if not plan.cache_opens(cache):
        return fail(S_SERVICE_LINK, messages.doctor.doctor_service_link_unreadable(upn))
    return ok(S_SERVICE_LINK, messages.doctor.doctor_service_link_ok(linked_upn, linked_at))

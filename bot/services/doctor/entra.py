"""Entra ID and Graph: TLS to the authority, the app's token and its application permissions, Graph
reachable with it, the test user synced; and, through bot.services.doctor.service_identity, the reset role."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from typing import Any

from bot import messages
from bot.errors import GraphPermissionError, GraphUnavailableError, MicrosoftError
from bot.services.doctor.plan import (
    S_ENTRA_TLS,
    S_ENTRA_TOKEN,
    S_GRAPH_REACHABLE,
    S_GRAPH_ROLES,
    S_GRAPH_USER,
    S_PROXY,
    S_RESET_ROLE,
    S_SETTINGS,
    CheckResult,
    DoctorPlan,
    Outcome,
    Run,
    fail,
    no_test_user,
    ok,
    skip,
)
from bot.services.doctor.service_identity import reset_role, service_skip
from bot.services.doctor.tls import check_tls_to

#: Application permissions the bot's app token must carry (README "Entra ID"): resolve people and managers,
#: read memberships (directory roles included: role holders are protected), read the tenant's sync status, and read
#: role assignments and PIM eligibilities (custom, administrative-unit-scoped and eligible roles protect too: Graph's
#: roleAssignments and roleEligibilityScheduleInstances both accept RoleManagement.Read.Directory), and PIM for
#: Groups (eligible or active membership and ownership of role-assignable groups: each list has its own permission).
GRAPH_APP_ROLES: tuple[str, ...] = ("User.Read.All", "GroupMember.Read.All", "Organization.Read.All",
                                    "RoleManagement.Read.Directory", "PrivilegedEligibilitySchedule.Read.AzureADGroup",
                                    "PrivilegedAssignmentSchedule.Read.AzureADGroup")
#: Application permissions that set a password or an authentication method (a Temporary Access Pass among them).
#: resetbot uses none: every credential is set with a delegated token, so Entra checks the agent's role. An app
#: holding one is checked against no role at all, so whoever holds the app's secret could mint a password or a TAP
#: (which satisfies MFA) for anyone: the doctor fails while the token carries one.
CREDENTIAL_APP_ROLES: tuple[str, ...] = (
    "UserAuthenticationMethod.ReadWrite.All", "UserAuthMethod-TAP.ReadWrite.All",
    "UserAuthMethod-Password.ReadWrite.All", "User-PasswordProfile.ReadWrite.All",
)

#: Application permissions that let the app sign anyone out (revoke their sign-in sessions) with no role checked.
#: resetbot revokes a disowned reset's target's sessions with the delegated token the reset was made with, so Entra
#: checks that identity's role; an app holding one could sign out a Global Administrator: the doctor fails on it.
SIGN_OUT_APP_ROLES: tuple[str, ...] = ("User.RevokeSessions.All",)


def entra_checks(plan: DoctorPlan, run: Run, state: dict[str, Any]) -> Iterator[CheckResult]:
    if plan.entra_url is None:
        for name in (S_ENTRA_TLS, S_ENTRA_TOKEN, S_GRAPH_ROLES, S_GRAPH_REACHABLE, S_GRAPH_USER, S_RESET_ROLE):
            yield skip(name, plan.skipped.get("entra", messages.doctor.doctor_skipped_for(S_SETTINGS)))
        return
    entra_url = plan.entra_url
    yield run.check(S_ENTRA_TLS, lambda: check_tls_to(S_ENTRA_TLS, entra_url, plan.entra_ca_file,
                                                      "RESETBOT_ENTRA_CA_FILE", plan.tls_timeout_s, proxy=plan.proxy),
                    needs=(S_PROXY,))
    yield run.check(S_ENTRA_TOKEN, lambda: _entra_token(plan, state), needs=(S_ENTRA_TLS,))
    yield run.check(S_GRAPH_ROLES, lambda: _graph_roles(plan, state), needs=(S_ENTRA_TOKEN,))
    # Graph's first call: a Graph that is down or refuses the token is named here, not as a test-user problem.
    yield run.check(S_GRAPH_REACHABLE, lambda: _graph_reachable(plan), needs=(S_ENTRA_TOKEN,))
    yield run.check(S_GRAPH_USER, lambda: _graph_user(plan), needs=(S_GRAPH_REACHABLE,))
    if plan.service_upn is None:
        yield skip(S_RESET_ROLE, service_skip(plan))
    else:
        yield run.check(S_RESET_ROLE, lambda: reset_role(plan), needs=(S_GRAPH_REACHABLE,))


def _entra_token(plan: DoctorPlan, state: dict[str, Any]) -> CheckResult:
    if plan.tokens is None:
        return fail(S_ENTRA_TOKEN, plan.tokens_problem or messages.doctor.doctor_skipped_for(S_SETTINGS))
    try:
        state["token"] = plan.tokens.token()
    except MicrosoftError as e:
        return fail(S_ENTRA_TOKEN, messages.doctor.doctor_entra_failed(str(e)))
    return ok(S_ENTRA_TOKEN, messages.doctor.doctor_entra_token_ok(plan.client_id or "", plan.credential_kind))


def token_roles(access_token: str) -> list[str] | None:
    """The ``roles`` claim of an access token, read without verifying it (the bot is the token's holder, not its
    audience: Graph verifies it); None when the token is not a JWT."""
    parts = access_token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    roles = claims.get("roles") if isinstance(claims, dict) else None
    return [str(r) for r in roles] if isinstance(roles, list) else []


def _graph_roles(plan: DoctorPlan, state: dict[str, Any]) -> CheckResult:
    roles = token_roles(str(state.get("token") or ""))
    if roles is None:
        return fail(S_GRAPH_ROLES, messages.doctor.doctor_roles_unreadable())
    missing = [r for r in GRAPH_APP_ROLES if r not in roles]
    if missing:
        return fail(S_GRAPH_ROLES, messages.doctor.doctor_roles_missing(missing, plan.client_id or ""))
    excess = [r for r in CREDENTIAL_APP_ROLES if r in roles]
    if excess:
        return fail(S_GRAPH_ROLES, messages.doctor.doctor_roles_set_credentials(excess, plan.client_id or ""))
    sign_out = [r for r in SIGN_OUT_APP_ROLES if r in roles]
    if sign_out:
        return fail(S_GRAPH_ROLES, messages.doctor.doctor_roles_sign_out(sign_out, plan.client_id or ""))
    return ok(S_GRAPH_ROLES, messages.doctor.doctor_roles_ok(list(GRAPH_APP_ROLES)))


def _graph_reachable(plan: DoctorPlan) -> CheckResult:
    """TLS to Graph's own host (``graph.microsoft.com`` is not the authority's ``login.microsoftonline.com``, so
    a proxy or firewall may treat them differently), then the cheapest read with the app's token."""
    assert plan.graph is not None and plan.graph_base is not None
    result = check_tls_to(S_GRAPH_REACHABLE, plan.graph_base, plan.entra_ca_file, "RESETBOT_ENTRA_CA_FILE",
                          plan.tls_timeout_s,
                          proxy=plan.proxy)
    if result.outcome != Outcome.OK:
        return result
    try:
        plan.graph.ping()
    except GraphPermissionError as e:
        return fail(S_GRAPH_REACHABLE, messages.doctor.doctor_graph_refused(e.code or f"HTTP {e.status}",
                                                                            plan.client_id or ""))
    except GraphUnavailableError as e:
        return fail(S_GRAPH_REACHABLE, messages.doctor.doctor_graph_unavailable(str(e), plan.graph_base))
    except MicrosoftError as e:
        return fail(S_GRAPH_REACHABLE, messages.doctor.doctor_entra_failed(str(e)))
    return ok(S_GRAPH_REACHABLE, messages.doctor.doctor_graph_ok(plan.graph_base.split("://", 1)[-1].split("/", 1)[0]))


def _graph_user(plan: DoctorPlan) -> CheckResult:
    if not plan.test_user:
        return skip(S_GRAPH_USER, no_test_user())
    assert plan.graph is not None
    try:
        user = plan.graph.get_user(plan.test_user)
    except MicrosoftError as e:
        return fail(S_GRAPH_USER, messages.doctor.doctor_entra_failed(str(e)))
    if user is None:
        return fail(S_GRAPH_USER, messages.doctor.doctor_graph_user_missing(plan.test_user))
    if not user.synced or not user.on_premises_sam_account_name:
        return fail(S_GRAPH_USER, messages.doctor.doctor_graph_user_not_synced(plan.test_user))
    return ok(S_GRAPH_USER, messages.doctor.doctor_graph_user_ok(plan.test_user, user.on_premises_sam_account_name))

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

from sqlalchemy import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from bot import messages
from bot.clients.directory import LdapDirectory
from bot.clients.directory_checks import DirectoryChecks, PsoUnreadableError, WritebackAccountNotFoundError
from bot.db import make_engine
from bot.errors import ConfigError, DatabaseUnavailableError, DirectoryUnavailableError, SchemaAheadError
from bot.services.doctor.entra import entra_checks, token_roles
from bot.services.doctor.plan import (
    S_AD_POLICY,
    S_DATABASE,
    S_KEY_VERSION,
    S_LDAP_BIND,
    S_LDAP_TLS,
    S_PROXY,
    S_SERVICE_LINK,
    S_SETTINGS,
    S_WRITEBACK,
    CheckResult,
    DoctorPlan,
    Outcome,
    Run,
    fail,
    ok,
    skip,
    test_user_unset,
)
from bot.services.doctor.proxy import Blocked, proxied_targets, proxy, proxy_problem
from bot.services.doctor.service_identity import service_link, service_skip
from bot.services.doctor.slack import slack_checks
from bot.services.doctor.tls import tls

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
    yield from _ad_checks(plan, run)
    if plan.database_url is None:
        yield skip(S_DATABASE, messages.doctor.doctor_skipped_for(S_SETTINGS))
        yield skip(S_SERVICE_LINK, messages.doctor.doctor_skipped_for(S_SETTINGS))
        return
    url = plan.database_url
    yield run.check(S_DATABASE, lambda: _database(url))
    if plan.service_upn is None:
        yield skip(S_SERVICE_LINK, service_skip(plan))
    else:
        yield run.check(S_SERVICE_LINK, lambda: service_link(plan, url), needs=(S_DATABASE,))


def _ad_checks(plan: DoctorPlan, run: Run) -> Iterator[CheckResult]:
    if plan.directory is None or plan.ldap_url is None:
        for name in (S_LDAP_TLS, S_LDAP_BIND, S_AD_POLICY, S_WRITEBACK, S_KEY_VERSION):
            yield skip(name, plan.skipped.get("ldap", messages.doctor.doctor_skipped_for(S_SETTINGS)))
        return
    directory, ldap_url = plan.directory, plan.ldap_url
    if ldap_url.lower().startswith("ldaps://"):
        yield run.check(S_LDAP_TLS, lambda: tls(S_LDAP_TLS, ldap_url, plan.ldap_ca_file,
                                               "RESETBOT_LDAP_CA_FILE", plan.tls_timeout_s))
    yield run.check(S_LDAP_BIND, lambda: _ldap_bind(directory, plan.ldap_bind or ""), needs=(S_LDAP_TLS,))
    yield run.check(S_AD_POLICY, lambda: _ad_policy(directory), needs=(S_LDAP_BIND,))
    yield run.check(S_WRITEBACK, lambda: _writeback(plan, directory), needs=(S_LDAP_BIND,))
    yield run.check(S_KEY_VERSION, lambda: _key_version(plan, directory), needs=(S_LDAP_BIND,))


# --- Active Directory --------------------------------------------------------------------------------------------
def _ldap_bind(directory: LdapDirectory, bind: str) -> CheckResult:
    try:
        directory.ping()
    except DirectoryUnavailableError as e:
        return fail(S_LDAP_BIND, messages.doctor.doctor_ldap_failed(str(e)))
    return ok(S_LDAP_BIND, messages.doctor.doctor_ldap_bind_ok(bind))


def _ad_policy(directory: LdapDirectory) -> CheckResult:
    try:
        policy = DirectoryChecks(directory).password_policy()
    except PsoUnreadableError as e:
        return fail(S_AD_POLICY, messages.doctor.doctor_pso_hidden(e.container, len(e.hidden)))
    except DirectoryUnavailableError as e:
        return fail(S_AD_POLICY, messages.doctor.doctor_policy_failed(str(e)))
    return ok(S_AD_POLICY, messages.doctor.doctor_policy_ok(policy.domain_min_length, policy.psos))


def _writeback(plan: DoctorPlan, directory: LdapDirectory) -> CheckResult:
    if not plan.writeback_account:
        return skip(S_WRITEBACK, messages.doctor.doctor_skipped_unset("RESETBOT_WRITEBACK_ACCOUNT",
                                                                      "the AD DS connector account"))
    if not plan.test_user:
        return skip(S_WRITEBACK, messages.doctor.doctor_skipped_unset("RESETBOT_DOCTOR_TEST_USER",
                                                                      "a synced user's UPN (its OU is checked)"))
    try:
        user = directory.find_user(upn=plan.test_user)
        if user is None:
            return fail(S_WRITEBACK, messages.doctor.doctor_writeback_user_unknown(plan.test_user))
        rights = DirectoryChecks(directory).writeback_rights(plan.writeback_account, user.dn)
    except WritebackAccountNotFoundError:
        return fail(S_WRITEBACK, messages.doctor.doctor_writeback_account_unknown(plan.writeback_account))
    except DirectoryUnavailableError as e:
        return fail(S_WRITEBACK, messages.doctor.doctor_writeback_failed(str(e)))
    ou = rights.containers[0] if rights.containers else user.dn
    if rights.missing:
        return fail(S_WRITEBACK,
                    messages.doctor.doctor_writeback_missing(plan.writeback_account, ou, list(rights.missing)))
    return ok(S_WRITEBACK, messages.doctor.doctor_writeback_ok(plan.writeback_account, ou))


def _key_version(plan: DoctorPlan, directory: LdapDirectory) -> CheckResult:
    """The follow-ups' proof that a reset landed is ``msDS-KeyVersionNumber`` moving (bot.domain.followup_rules);
    an account denied it falls back to ``pwdLastSet``, which cannot tell a repeat reset from the one before."""
    if not plan.test_user:
        return skip(S_KEY_VERSION, test_user_unset())
    try:
        user = directory.find_user(upn=plan.test_user)
    except DirectoryUnavailableError as e:
        return fail(S_KEY_VERSION, messages.doctor.doctor_ldap_failed(str(e)))
    if user is None:
        return fail(S_KEY_VERSION, messages.doctor.doctor_writeback_user_unknown(plan.test_user))
    if user.key_version is None:
        return fail(S_KEY_VERSION, messages.doctor.doctor_key_version_hidden(user.dn))
    return ok(S_KEY_VERSION, messages.doctor.doctor_key_version_ok(plan.test_user, user.key_version))


# --- the database ------------------------------------------------------------------------------------------------
def _pending(engine: Engine) -> list[str]:
    """Migrations not yet applied (bot.schema is imported here: it brings alembic, which only this check needs)."""
    from bot import schema  # noqa: PLC0415

    return list(schema.pending(engine))


def _database(url: str) -> CheckResult:
    try:
        engine = make_engine(url)
    except ConfigError as e:
        return fail(S_DATABASE, str(e).rstrip("."))
    backend = engine.dialect.name
    try:
        with engine.connect():
            pass
        pending = _pending(engine)
    except SQLAlchemyError as e:
        reason = str(getattr(e, "orig", None) or type(e).__name__).strip().splitlines()[0]
        password = make_url(url).password
        if password:
            reason = reason.replace(str(password), "***")
        return fail(S_DATABASE, messages.doctor.doctor_db_unreachable(backend, reason))
    except (DatabaseUnavailableError, SchemaAheadError) as e:  # their messages hide the password
        return fail(S_DATABASE, str(e).rstrip("."))
    finally:
        engine.dispose()
    if pending:
        return fail(S_DATABASE, messages.doctor.doctor_db_pending(pending))
    return ok(S_DATABASE, messages.doctor.doctor_db_ok(backend))

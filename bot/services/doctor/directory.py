"""Active Directory: TLS (LDAPS), the bind, the password policy, the writeback account's rights and the
password version the follow-ups read."""

from __future__ import annotations

from collections.abc import Iterator

from bot import messages
from bot.clients.directory import LdapDirectory
from bot.clients.directory_checks import DirectoryChecks, PsoUnreadableError, WritebackAccountNotFoundError
from bot.errors import DirectoryUnavailableError
from bot.services.doctor.plan import (
    S_AD_POLICY,
    S_KEY_VERSION,
    S_LDAP_BIND,
    S_LDAP_TLS,
    S_SETTINGS,
    S_WRITEBACK,
    CheckResult,
    DoctorPlan,
    Run,
    fail,
    no_test_user,
    ok,
    skip,
)
from bot.services.doctor.tls import check_tls_to


def ad_checks(plan: DoctorPlan, run: Run) -> Iterator[CheckResult]:
    if plan.directory is None or plan.ldap_url is None:
        for name in (S_LDAP_TLS, S_LDAP_BIND, S_AD_POLICY, S_WRITEBACK, S_KEY_VERSION):
            yield skip(name, plan.skipped.get("ldap", messages.doctor.doctor_skipped_for(S_SETTINGS)))
        return
    directory, ldap_url = plan.directory, plan.ldap_url
    if ldap_url.lower().startswith("ldaps://"):
        yield run.check(S_LDAP_TLS, lambda: check_tls_to(S_LDAP_TLS, ldap_url, plan.ldap_ca_file,
                                                         "RESETBOT_LDAP_CA_FILE", plan.tls_timeout_s))
    yield run.check(S_LDAP_BIND, lambda: _ldap_bind(directory, plan.ldap_bind or ""), needs=(S_LDAP_TLS,))
    yield run.check(S_AD_POLICY, lambda: _ad_policy(directory), needs=(S_LDAP_BIND,))
    yield run.check(S_WRITEBACK, lambda: _writeback(plan, directory), needs=(S_LDAP_BIND,))
    yield run.check(S_KEY_VERSION, lambda: _key_version(plan, directory), needs=(S_LDAP_BIND,))


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
        return skip(S_KEY_VERSION, no_test_user())
    try:
        user = directory.find_user(upn=plan.test_user)
    except DirectoryUnavailableError as e:
        return fail(S_KEY_VERSION, messages.doctor.doctor_ldap_failed(str(e)))
    if user is None:
        return fail(S_KEY_VERSION, messages.doctor.doctor_writeback_user_unknown(plan.test_user))
    if user.key_version is None:
        return fail(S_KEY_VERSION, messages.doctor.doctor_key_version_hidden(user.dn))
    return ok(S_KEY_VERSION, messages.doctor.doctor_key_version_ok(plan.test_user, user.key_version))

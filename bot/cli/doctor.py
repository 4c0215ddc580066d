"""``resetbot doctor``: check every dependency the bot needs and say exactly what is wrong.

This is a composition root like ``resetbot run``: it builds the clients from the settings, with short timeouts
(the doctor must answer in seconds even when a server hangs), and hands them to bot.services.doctor. A part that
cannot be built (a certificate file that does not parse) is reported on its own line; the rest still run.
"""

from __future__ import annotations

import argparse
import sys

from bot import messages
from bot.cli import Subparsers
from bot.clients.directory import LdapDirectory
from bot.clients.duo import DuoAuth
from bot.clients.entra_auth import AppTokens, CertificateCredential, DelegatedTokens
from bot.clients.graph import GraphClient
from bot.clients.slack_probe import SlackProbe
from bot.errors import ConfigError
from bot.services.doctor import S_SETTINGS, CheckResult, DoctorPlan, Outcome, run_checks
from bot.services.start_checks import outbound_urls
from bot.settings import ResetIdentity, Settings, SignIn, VerifyMethod, load_settings

#: Seconds any one exchange with a dependency may take during ``resetbot doctor``.
DOCTOR_TIMEOUT_S = 5


def register(sub: Subparsers) -> None:
    parser = sub.add_parser("doctor", help="check Slack, Entra ID / Graph, AD and the database; exit 1 if any fails")
    parser.set_defaults(handler=doctor)


def build_plan(settings: Settings) -> DoctorPlan:
    """Every client the checks need, built from ``settings``; what cannot be built says why."""
    plan = DoctorPlan(settings_problems=settings.require_directories() + settings.require_linking()
                      + settings.require_sealing(),
                      database_url=settings.database_url, test_user=settings.doctor_test_user,
                      writeback_account=settings.writeback_account, tls_timeout_s=DOCTOR_TIMEOUT_S)
    plan.proxy = settings.proxy()
    plan.browser_sign_in = settings.signin != SignIn.DEVICE
    plan.public_url, plan.redirect_uri = settings.public_url, settings.redirect_uri()
    plan.proxied_urls = outbound_urls(settings)
    plan.slack = SlackProbe(settings.slack_api_base, timeout_s=DOCTOR_TIMEOUT_S, proxy=settings.proxy_url(),
                            ca_file=settings.slack_ca_file)
    plan.slack_bot_token = settings.slack_bot_token.get_secret_value()
    plan.slack_app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else None
    plan.slack_api_base = settings.slack_api_base
    plan.user_groups = [(setting, ref) for setting, ref in (("RESETBOT_AGENTS_GROUP", settings.agents_group),
                                                            ("RESETBOT_APPROVERS_GROUP", settings.approvers_group),
                                                            ("RESETBOT_SECURITY_GROUP", settings.security_group))
                        if ref]
    if settings.entra_authority and settings.entra_client_id and (
            settings.entra_client_secret is not None or settings.entra_certificate_file is not None):
        plan.entra_url, plan.entra_ca_file = settings.entra_authority, settings.entra_ca_file
        plan.client_id = settings.entra_client_id
        try:
            certificate = None
            if settings.entra_certificate_file is not None:
                plan.credential_kind = "certificate"
                certificate = CertificateCredential.from_files(settings.entra_certificate_file,
                                                               settings.entra_private_key_file)
            plan.tokens = AppTokens(authority=settings.entra_authority, client_id=settings.entra_client_id,
                                    client_secret=None if certificate else settings.entra_client_secret,
                                    certificate=certificate, ca_file=settings.entra_ca_file,
                                    timeout=DOCTOR_TIMEOUT_S, proxy=settings.proxy_url())
            plan.graph = GraphClient(settings.graph_base, plan.tokens, ca_file=settings.entra_ca_file,
                                     timeout=DOCTOR_TIMEOUT_S, max_retries=0, proxy=settings.proxy_url())
            plan.graph_base = settings.graph_base
        except (ConfigError, ValueError) as e:
            plan.tokens, plan.tokens_problem = None, str(e).rstrip(".")
    _service_identity(settings, plan)
    if VerifyMethod.DUO_PUSH in settings.verify_methods and settings.duo_api_host and settings.duo_integration_key \
            and settings.duo_secret_key:
        plan.duo_host = settings.duo_api_host
        plan.duo = DuoAuth(api_host=settings.duo_api_host, integration_key=settings.duo_integration_key,
                           secret_key=settings.duo_secret_key, ca_file=settings.duo_ca_file,
                           timeout_s=DOCTOR_TIMEOUT_S, proxy=settings.proxy())
    if settings.ldap_url and settings.ldap_bind and settings.ldap_password and settings.ldap_base_dn:
        plan.ldap_url, plan.ldap_ca_file, plan.ldap_bind = settings.ldap_url, settings.ldap_ca_file, settings.ldap_bind
        plan.directory = LdapDirectory(
            url=settings.ldap_url, bind=settings.ldap_bind, password=settings.ldap_password.get_secret_value(),
            base_dn=settings.ldap_base_dn, ca_file=str(settings.ldap_ca_file) if settings.ldap_ca_file else None,
            timeout_s=DOCTOR_TIMEOUT_S)
    return plan



def _service_identity(settings: Settings, plan: DoctorPlan) -> None:
    """The service identity is checked when something is done as it: every reset in service mode, or the canary
    in either mode (README "Health pings")."""
    plan.service_mode = settings.reset_identity == ResetIdentity.SERVICE
    plan.service_wanted = plan.service_mode or bool((settings.canary_upn or "").strip())
    upn = (settings.service_identity_upn or "").strip()
    if upn and plan.service_wanted:
        plan.service_upn = upn
    if settings.entra_authority and settings.entra_public_client_id and settings.token_cache_key is not None:
        try:
            plan.cache_opens = DelegatedTokens(
                authority=settings.entra_authority, client_id=settings.entra_public_client_id,
                key=settings.token_cache_key, old_keys=settings.token_cache_old_keys,
                ca_file=settings.entra_ca_file, timeout=DOCTOR_TIMEOUT_S, proxy=settings.proxy_url()).opens
        except ConfigError:  # the settings line names the key that is not one
            plan.cache_opens = None


def doctor(args: argparse.Namespace) -> int:
    """Print one line per check and a summary; exit 1 when any check failed."""
    try:
        settings = load_settings()
    except ConfigError as e:
        print(CheckResult(S_SETTINGS, Outcome.FAIL, str(e)).line())
        print(messages.doctor.doctor_summary(1))
        return 1
    plan = build_plan(settings)
    failed = 0
    try:
        for result in run_checks(plan):
            print(result.line(), flush=True)
            failed += result.outcome == Outcome.FAIL
    finally:
        if plan.graph is not None:
            plan.graph.close()
    print(messages.doctor.doctor_summary(failed), file=sys.stdout)
    return 1 if failed else 0

"""The composition root for everything but Slack's listeners: settings in, clients and services out.

``resetbot run`` and the tests build the same Runtime, so what is tested is what runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from bot import messages, schema
from bot.app import web_client
from bot.clients.directory import LdapDirectory
from bot.clients.duo import DuoAuth
from bot.clients.entra_auth import AppTokens, CertificateCredential, DelegatedTokens
from bot.clients.graph import GraphClient
from bot.clients.slack_notify import SlackNotifier
from bot.db import make_engine, make_session_factory
from bot.domain.groups import group_ref
from bot.errors import ConfigError, ResetbotError
from bot.models import SERVICE_LINK_KEY
from bot.services.followups import FollowUpRules, FollowUpService
from bot.services.health import HealthRules, HealthService
from bot.services.links import LinkRules, LinkService
from bot.services.outbox import Outbox
from bot.services.registry import Services
from bot.services.requests import RequestRules, RequestService
from bot.services.reset import ResetService
from bot.services.resolve import TargetResolver
from bot.services.sealing import Sealer
from bot.settings import Settings, VerifyMethod

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    graph: GraphClient
    directory: LdapDirectory
    notifier: SlackNotifier
    services: Services

    def pin_groups(self) -> None:
        """Pin the agents', approvers' and security user groups to their ids now, at start (a handle is resolved
        once and logged; see ``SlackNotifier.pin``), so that nobody who takes a handle later gains their authority. A
        ConfigError when a group the settings name does not exist; Slack's own errors as they come."""
        for setting, ref in (("RESETBOT_AGENTS_GROUP", self.settings.agents_group),
                             ("RESETBOT_APPROVERS_GROUP", self.settings.approvers_group),
                             ("RESETBOT_SECURITY_GROUP", self.settings.security_group)):
            if ref and self.notifier.pin(ref, setting=setting) is None:
                raise ConfigError(messages.cli.group_not_found(setting, group_ref(ref)))

    def close(self, *, drain_s: float = 60.0) -> None:
        """Let resets already running post their verdicts (up to ``drain_s``), then close every client."""
        if not self.services.reset.wait_idle(timeout=drain_s):
            log.warning("closing with a reset still running after %.0f s", drain_s)
        self.services.reset.close()
        self.services.requests.close()
        self.services.links.close()
        self.graph.close()
        self.directory.close()
        self.engine.dispose()


def _duo(settings: Settings) -> DuoAuth | None:
    """Duo's Auth API, when duo-push is an allowed method (the settings refuse it without Duo's details)."""
    if VerifyMethod.DUO_PUSH not in settings.verify_methods:
        return None
    assert settings.duo_api_host and settings.duo_integration_key and settings.duo_secret_key
    return DuoAuth(api_host=settings.duo_api_host, integration_key=settings.duo_integration_key,
                   secret_key=settings.duo_secret_key, ca_file=settings.duo_ca_file, proxy=settings.proxy())


def _app_tokens(settings: Settings) -> AppTokens:
    """The app's token source. Health builds a throwaway one per round, so its token check asks the token
    endpoint itself rather than msal's in-memory cache, which would hide an outage for up to an hour."""
    assert settings.entra_authority and settings.entra_client_id
    certificate = None
    if settings.entra_certificate_file is not None:
        certificate = CertificateCredential.from_files(settings.entra_certificate_file, settings.entra_private_key_file)
    return AppTokens(
        authority=settings.entra_authority, client_id=settings.entra_client_id,
        client_secret=None if certificate else settings.entra_client_secret, certificate=certificate,
        ca_file=settings.entra_ca_file, proxy=settings.proxy_url(),
    )


def _delegated_tokens(settings: Settings) -> DelegatedTokens:
    """Agents' linked sign-ins: the public client's device-code flow, caches encrypted with the settings' key."""
    assert settings.entra_authority and settings.entra_public_client_id and settings.token_cache_key
    return DelegatedTokens(authority=settings.entra_authority, client_id=settings.entra_public_client_id,
                           key=settings.token_cache_key, old_keys=settings.token_cache_old_keys,
                           ca_file=settings.entra_ca_file, proxy=settings.proxy_url())


def prepare_schema(engine: Engine, *, migrate: bool) -> None:
    """Apply pending migrations (under their lock), or, when the team migrates as a separate step, refuse to
    serve on a schema this code does not match: a ConfigError telling the operator to run ``resetbot migrate``."""
    if migrate:
        schema.upgrade(engine)
        return
    behind = schema.pending(engine)
    if behind:
        raise ConfigError(messages.cli.schema_behind(behind))


def build_runtime(settings: Settings) -> Runtime:
    """Every client and service from the settings; a ConfigError lists whatever is missing."""
    missing = settings.require_directories() + settings.require_linking() + settings.require_sealing()
    if missing:
        raise ConfigError(" ".join(missing))
    assert settings.ldap_url and settings.ldap_bind and settings.ldap_password and settings.ldap_base_dn
    engine = make_engine(settings.database_url)
    try:
        prepare_schema(engine, migrate=settings.migrate_on_start)
    except ResetbotError:
        engine.dispose()
        raise
    factory = make_session_factory(engine)
    # What only looks (status, App Home, a sweep's "what is due?") reads without the write lock (bot.db.Transactions).
    reads = make_session_factory(engine, read_only=True).begin
    graph = GraphClient(settings.graph_base, _app_tokens(settings), ca_file=settings.entra_ca_file,
                        proxy=settings.proxy_url())
    directory = LdapDirectory(
        url=settings.ldap_url, bind=settings.ldap_bind, password=settings.ldap_password.get_secret_value(),
        base_dn=settings.ldap_base_dn, ca_file=str(settings.ldap_ca_file) if settings.ldap_ca_file else None,
        unlock_bind=settings.ldap_unlock_bind,
        unlock_password=settings.ldap_unlock_password.get_secret_value() if settings.ldap_unlock_password else None,
    )
    notifier = SlackNotifier(web_client(settings))
    resolver = TargetResolver(graph=graph, directory=directory, notifier=notifier,
                              accept_mail=settings.link_accept_mail)
    links = LinkService(begin=factory.begin, reads=reads, notifier=notifier, tokens=_delegated_tokens(settings),
                        graph=graph, rules=LinkRules.from_settings(settings))
    outbox = Outbox(begin=factory.begin, reads=reads, notifier=notifier)
    followups = FollowUpService(begin=factory.begin, reads=reads, outbox=outbox, directory=directory,
                                rules=FollowUpRules.from_settings(settings))
    sealer = Sealer(settings.sealing_key)
    reset = ResetService(begin=factory.begin, reads=reads, notifier=notifier, outbox=outbox, graph=graph,
                         directory=directory, sealer=sealer, token_for=links.reset_token,
                         security_channel=settings.security_channel, agents_group=settings.agents_group,
                         security_group=settings.security_group or None, followups=followups,
                         poll_timeout_s=settings.reset_poll_timeout_seconds,
                         lease=timedelta(seconds=settings.reset_lease_seconds), delivery=settings.delivery,
                         scramble_window=timedelta(hours=settings.scramble_window_hours))
    requests = RequestService(begin=factory.begin, reads=reads, notifier=notifier, resolver=resolver,
                              directory=directory, rules=RequestRules.from_settings(settings),
                              after_approval=reset.perform, readiness=links.readiness,
                              disowned_after_reset=reset.not_me, sealer=sealer, duo=_duo(settings),
                              phones_of=graph.phones)
    reset.recheck = requests.recheck  # the request rules again, right before any credential is set
    health = HealthService(begin=factory.begin, reads=reads, outbox=outbox, graph=graph, directory=directory,
                           fresh_app_token=lambda: _app_tokens(settings).token(),
                           canary_token=lambda: links.token_for(SERVICE_LINK_KEY).access_token,
                           rules=HealthRules.from_settings(settings))
    requests.health_report = health.report
    return Runtime(settings=settings, engine=engine, session_factory=factory, graph=graph, directory=directory,
                   notifier=notifier, services=Services(requests=requests, reset=reset, links=links,
                                                      followups=followups, health=health, outbox=outbox))

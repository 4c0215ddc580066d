"""What the doctor works from and what it answers: the ``DoctorPlan`` the composition root builds, one
``CheckResult`` per check under its name (``S_*``), and the ``Run`` that skips a check when one it stands on
failed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from bot import messages
from bot.clients.directory import LdapDirectory
from bot.clients.duo import DuoAuth
from bot.clients.entra_auth import TokenSource
from bot.clients.graph import GraphClient
from bot.clients.slack_probe import SlackProbe
from bot.settings import ProxyUrl


class Outcome(StrEnum):
    OK = messages.doctor.DOCTOR_OK
    FAIL = messages.doctor.DOCTOR_FAIL
    SKIP = messages.doctor.DOCTOR_SKIP


@dataclass(frozen=True)
class CheckResult:
    check: str
    outcome: Outcome
    detail: str

    def line(self) -> str:
        return messages.doctor.doctor_line(self.outcome, self.check, self.detail)


@dataclass
class DoctorPlan:
    """What the composition root could build from the settings; a part left None is skipped with its reason.
    Secrets (the Slack tokens, a database URL that may hold a password) stay out of its repr."""

    settings_problems: list[str]
    #: The outbound proxy (its repr hides the credentials), and the https URLs the bot reaches through it.
    proxy: ProxyUrl | None = None
    proxied_urls: list[str] = field(default_factory=list)
    slack: SlackProbe | None = None
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    slack_api_base: str = ""
    #: The user groups that hold authority, as (setting, id or handle): the agents', the approvers', security's.
    user_groups: list[tuple[str, str]] = field(default_factory=list)
    entra_url: str | None = None
    entra_ca_file: Path | None = None
    client_id: str | None = None
    credential_kind: str = "client secret"
    tokens: TokenSource | None = None
    tokens_problem: str | None = None
    graph: GraphClient | None = None
    graph_base: str | None = None
    #: Duo's Auth API (``duo-push`` allowed) and its host, for the signed ``check``.
    duo: DuoAuth | None = None
    duo_host: str | None = None
    #: The service identity's UPN when something is done as it: every reset (``service_mode``), or the canary.
    service_upn: str | None = None
    service_mode: bool = False
    #: Something is to be done as the service identity (service mode, or a canary), UPN set or not.
    service_wanted: bool = False
    #: Whether a stored token cache decrypts under the token-cache key(s); None when the key is not set.
    cache_opens: Callable[[str], bool] | None = field(default=None, repr=False)
    ldap_url: str | None = None
    ldap_ca_file: Path | None = None
    ldap_bind: str | None = None
    directory: LdapDirectory | None = None
    test_user: str | None = None
    writeback_account: str | None = None
    database_url: str | None = field(default=None, repr=False)
    tls_timeout_s: float = 5.0
    #: With browser sign-in on: the public URL agents' browsers come back to, and the redirect URI to register.
    browser_sign_in: bool = False
    public_url: str | None = None
    redirect_uri: str | None = None
    skipped: dict[str, str] = field(default_factory=dict)


class Run:
    """Runs checks in order, remembering which failed so that those depending on them are skipped. A skip names
    the check that really failed, however far up the chain: the operator fixes that one line."""

    def __init__(self) -> None:
        #: check that did not pass -> the check whose failure it comes from (itself when it failed).
        self.failed: dict[str, str] = {}

    def check(self, name: str, fn: Callable[[], CheckResult], *, needs: tuple[str, ...] = ()) -> CheckResult:
        for need in needs:
            if need in self.failed:
                root = self.failed[need]
                self.failed[name] = root
                return CheckResult(name, Outcome.SKIP, messages.doctor.doctor_skipped_for(root))
        try:
            result = fn()
        except Exception as e:  # one check's surprise must not stop the others
            result = CheckResult(name, Outcome.FAIL, messages.doctor.doctor_unexpected(type(e).__name__))
        if result.outcome != Outcome.OK:
            self.failed[name] = name
        return result


def ok(name: str, detail: str) -> CheckResult:
    return CheckResult(name, Outcome.OK, detail)


def fail(name: str, detail: str) -> CheckResult:
    return CheckResult(name, Outcome.FAIL, detail)


def skip(name: str, detail: str) -> CheckResult:
    return CheckResult(name, Outcome.SKIP, detail)


S_SETTINGS = messages.doctor.CHECK_SETTINGS
S_PROXY = messages.doctor.CHECK_PROXY
S_SLACK_BOT = messages.doctor.CHECK_SLACK_BOT
S_SLACK_SCOPES = messages.doctor.CHECK_SLACK_SCOPES
S_SLACK_APP = messages.doctor.CHECK_SLACK_APP
S_SLACK_GROUPS = messages.doctor.CHECK_SLACK_GROUPS
S_ENTRA_TLS = messages.doctor.CHECK_ENTRA_TLS
S_ENTRA_TOKEN = messages.doctor.CHECK_ENTRA_TOKEN
S_GRAPH_ROLES = messages.doctor.CHECK_GRAPH_ROLES
S_GRAPH_REACHABLE = messages.doctor.CHECK_GRAPH_REACHABLE
S_GRAPH_USER = messages.doctor.CHECK_GRAPH_USER
S_RESET_ROLE = messages.doctor.CHECK_RESET_ROLE
S_LDAP_TLS = messages.doctor.CHECK_LDAP_TLS
S_LDAP_BIND = messages.doctor.CHECK_LDAP_BIND
S_AD_POLICY = messages.doctor.CHECK_AD_POLICY
S_WRITEBACK = messages.doctor.CHECK_WRITEBACK
S_KEY_VERSION = messages.doctor.CHECK_KEY_VERSION
S_DATABASE = messages.doctor.CHECK_DATABASE
S_SERVICE_LINK = messages.doctor.CHECK_SERVICE_LINK
S_CALLBACK = messages.doctor.CHECK_CALLBACK
S_DUO = messages.doctor.CHECK_DUO


def no_test_user() -> str:
    return messages.doctor.doctor_skipped_unset("RESETBOT_DOCTOR_TEST_USER", "a synced user's UPN")


def check_settings(plan: DoctorPlan) -> CheckResult:
    """The first line: the settings' own problems, each one sentence (the checks after it need sound settings)."""
    if plan.settings_problems:
        return fail(S_SETTINGS, " ".join(plan.settings_problems))
    return ok(S_SETTINGS, messages.doctor.doctor_settings_ok())

"""``Settings``: everything ``resetbot run`` needs, on top of the logging and database settings it extends
(bot.settings.base). Its checks run as the settings are read, each bad or missing value said in a sentence that
names the setting."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import NoDecode

from bot.logs import SECRETS
from bot.settings.base import StorageSettings
from bot.settings.enums import (
    ApproverSource,
    Delivery,
    ResetIdentity,
    SignIn,
    SlackMode,
    TargetConfirmation,
    VerifyMethod,
)
from bot.settings.proxy_url import ProxyUrl, ProxyUrlError, secrets_in
from bot.settings.values import FERNET_KEY_HOWTO, fernet_key_problem, is_placeholder, parse_duration, split_list

#: How long a stopping bot waits for work in flight, by default: below Kubernetes' 30 s grace period, and below
#: the stop timeout of the shipped systemd unit (deploy/resetbot.service; a test keeps the two in step).
DEFAULT_DRAIN_SECONDS = 25.0

#: AD's built-in protected groups (AdminSDHolder's list, Windows Server 2016 and later), by CN, and the domain
#: controllers' groups; each is matched below the domain's base DN (one that does not exist, such as Enterprise Key
#: Admins outside the forest root, matches nobody). Key Admins and Enterprise Key Admins may write any account's
#: msDS-KeyCredentialLink (Windows Hello keys: "shadow credentials"); Replicator and the domain controllers replicate
#: the domain's secrets.
DEFAULT_PROTECTED_GROUP_CNS = (
    "CN=Domain Admins,CN=Users",
    "CN=Enterprise Admins,CN=Users",
    "CN=Schema Admins,CN=Users",
    "CN=Key Admins,CN=Users",
    "CN=Enterprise Key Admins,CN=Users",
    "CN=Domain Controllers,CN=Users",
    "CN=Read-only Domain Controllers,CN=Users",
    "CN=Enterprise Read-only Domain Controllers,CN=Users",
    "CN=Administrators,CN=Builtin",
    "CN=Account Operators,CN=Builtin",
    "CN=Backup Operators,CN=Builtin",
    "CN=Server Operators,CN=Builtin",
    "CN=Print Operators,CN=Builtin",
    "CN=Replicator,CN=Builtin",
)


#: Authority paths that are no tenant: Entra takes sign-ins from any tenant (or personal accounts) there.
_MULTI_TENANT = frozenset({"common", "organizations", "consumers"})

class Settings(StorageSettings):
    """Everything ``resetbot run`` needs."""

    # --- Slack -------------------------------------------------------------------------------------------
    #: Bot token (xoxb-…), from the app's OAuth page.
    slack_bot_token: SecretStr
    #: ``socket`` (the bot connects out; no inbound port) or ``http`` (Slack POSTs signed requests to the bot).
    #: Declared before the two settings that depend on it, so their checks can read it.
    slack_mode: SlackMode = SlackMode.SOCKET
    #: App-level token (xapp-…) with connections:write; Socket Mode needs it, HTTP mode does not.
    slack_app_token: SecretStr | None = Field(default=None, validate_default=True)
    #: The app's signing secret (Basic Information); HTTP mode verifies every request with it.
    slack_signing_secret: SecretStr | None = Field(default=None, validate_default=True)
    #: Address and port the HTTP mode server listens on (``0`` picks a free port, logged at start).
    http_host: str = "0.0.0.0"  # noqa: S104 - Slack must reach it; every request is signed
    http_port: int = Field(default=3000, ge=0, le=65535)
    #: Seconds a stopping bot (SIGTERM, Ctrl-C) waits for work in flight; keep it under the orchestrator's grace.
    drain_seconds: float = Field(default=DEFAULT_DRAIN_SECONDS, ge=0, le=600)
    #: Threads resolving requests after their ack (``handlers.work``: why three by default). More let a burst drain
    #: faster where Graph and AD answer slowly, at the cost of the acks' latency while it does.
    work_threads: int = Field(default=3, ge=1, le=32)
    #: Web API base URL; only the lab changes it.
    slack_api_base: str = "https://slack.com/api/"
    #: Channel id where requests typed in a DM with the bot are posted (their thread lives there).
    requests_channel: str | None = None
    #: Channel id for security alerts (protected targets, "This wasn't me", a target's "No").
    security_channel: str | None = None
    #: Channel id for health pings.
    ops_channel: str | None = None
    #: The Slack user group whose members may request resets: its id (``S0123ABCD``, pinned for good) or its
    #: handle (``helpdesk``, resolved to an id once at start and logged): a handle can be taken by whoever
    #: re-creates it where members may change user groups (``bot.domain.groups``).
    agents_group: str = "helpdesk"
    #: The Slack user group whose members may approve, by id or handle as above; empty for none.
    approvers_group: str = "approvers"
    #: The Slack user group whose members may press Scramble password on a containment alert, by id or handle as
    #: above; empty: nobody may (the press is refused and says to reset the password by hand).
    security_group: str = ""

    # --- Rules ---------------------------------------------------------------------------------------------
    approver_source: ApproverSource = ApproverSource.MANAGER_OR_GROUP
    #: Minutes a request waits for approval; at half-time the approvers are reminded.
    approval_ttl_minutes: int = Field(default=30, ge=2, le=24 * 60)
    target_confirmation: TargetConfirmation = TargetConfirmation.OFF
    #: AD groups whose members (nested included) are protected; DNs, ``;``-separated. Empty: AD's built-in list.
    protected_groups: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: Protected accounts a rule allows anyway (sAMAccountName or UPN); they need two approvers and alert security.
    protected_allowed: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: Requests one agent may make in a rolling hour; more are refused, and the first refusal alerts security.
    limit_agent_per_hour: int = Field(default=10, ge=1, le=10_000)
    #: Hours after a target's password was reset during which another reset of it needs two approvals and
    #: alerts security; 0 turns the rule off.
    limit_repeat_hours: int = Field(default=24, ge=0, le=24 * 90)
    #: Hours after a containment alert during which its Scramble password button works; a later press is refused.
    #: 24 by default (``bot.domain.containment.DEFAULT_SCRAMBLE_WINDOW`` says why).
    scramble_window_hours: int = Field(default=24, ge=1, le=24 * 30)
    #: Requests the whole helpdesk may make in a rolling hour before security is alerted (once an hour; no block).
    limit_team_per_hour: int = Field(default=50, ge=1, le=100_000)
    #: A reset is made only once the caller is verified as well as approved (in either order). Off: approval alone.
    verify_required: bool = True
    #: The methods an agent may verify a caller with, ``,``-separated, strongest first as offered: ``slack-code``,
    #: ``duo-push``, ``slack-confirm``, ``callback`` (the weakest; never enough for a protected account).
    verify_methods: Annotated[list[VerifyMethod], NoDecode] = Field(default_factory=lambda: [
        VerifyMethod.SLACK_CODE, VerifyMethod.SLACK_CONFIRM, VerifyMethod.CALLBACK])
    #: Who can reveal the temporary password: ``agent`` (the requester, who reads it to the caller) or ``target``
    #: (only the person whose password it is, from their DM with the bot; the agent never sees it).
    delivery: Delivery = Delivery.AGENT
    #: Duo Auth API application (``duo-push``): its API hostname (``api-XXXXXXXX.duosecurity.com``), integration
    #: key and secret key; ``duo_ca_file`` only where TLS to Duo is inspected (default: duo-client's own CAs).
    duo_api_host: str | None = None
    duo_integration_key: str | None = None
    duo_secret_key: SecretStr | None = None
    duo_ca_file: Path | None = None
    #: Seconds between sweeps for escalations, expiries and due follow-ups.
    sweep_seconds: float = Field(default=15.0, gt=0, le=600)

    #: How long a reset waits for Graph's operation (writeback's verdict); one still running then is left to the
    #: sweeps, which ask Graph again until it ends. An approved request whose reset has not begun twice this long
    #: after its approval was left by a stopped bot and is started (a resetting one is judged by its lease).
    reset_poll_timeout_seconds: float = Field(default=60.0, ge=1, le=600)
    #: A reset in flight holds a lease renewed four times within this; another replica takes over the reset of a
    #: stopped bot once it lapsed. Shorter resumes sooner, but a process stalled longer than it loses its reset.
    reset_lease_seconds: float = Field(default=60.0, ge=4, le=600)

    # --- Follow-ups ----------------------------------------------------------------------------------------------
    #: First look in AD for a reset after it is made; each later look waits twice as long.
    followup_landed_first: timedelta = timedelta(seconds=15)
    #: When the looks give up and the thread is warned that AD does not show the reset.
    followup_landed_deadline: timedelta = timedelta(minutes=15)
    #: When to check that the user replaced the temporary password (``,``-separated); the last is the final word.
    followup_replaced_after: Annotated[list[timedelta], NoDecode] = Field(
        default_factory=lambda: [timedelta(hours=1), timedelta(hours=4), timedelta(hours=24)])

    # --- Health pings ------------------------------------------------------------------------------------------
    #: Seconds between rounds of health pings (token, Graph read, LDAP, sync freshness, canary); one round per
    #: interval across all replicas.
    health_interval_seconds: float = Field(default=300.0, ge=1, le=24 * 3600)
    #: Minutes Entra Connect may go without a directory sync (``onPremisesLastSyncDateTime``) before health is
    #: degraded; Connect syncs every 30 minutes by default.
    health_sync_max_age_minutes: int = Field(default=120, ge=5, le=7 * 24 * 60)
    #: Hour of the day (UTC) from which the daily health summary is posted to the ops channel.
    health_summary_hour: int = Field(default=8, ge=0, le=23)
    #: UPN of a dedicated canary account that every round resets through Graph, as the linked service identity,
    #: and checks on-premises; empty: no canary.
    canary_upn: str | None = None
    #: Seconds the canary waits for writeback's verdict before it counts as not landed.
    canary_timeout_seconds: float = Field(default=60.0, gt=0, le=600)

    #: Fernet key sealing temporary passwords until their one reveal. Empty: a key made at start and kept in
    #: memory only (a restart makes unrevealed passwords unrevealable); required with PostgreSQL, where several
    #: replicas may serve (``require_sealing``).
    sealing_key: SecretStr | None = None

    # --- Storage (the database URL itself is in StorageSettings) -------------------------------------------
    #: Apply pending schema migrations when ``resetbot run`` starts (under a lock, so replicas may start together).
    #: Off: the schema is left alone, and ``run`` refuses to start while it is behind (run ``resetbot migrate``).
    migrate_on_start: bool = True

    # --- Entra ID / Graph ---------------------------------------------------------------------------------
    #: ``https://login.microsoftonline.com/<tenant id>`` (the lab: its own authority).
    entra_authority: str | None = None
    graph_base: str = "https://graph.microsoft.com/v1.0"
    entra_client_id: str | None = None
    entra_client_secret: SecretStr | None = None
    #: PEM files of the app's certificate credential (instead of a secret).
    entra_certificate_file: Path | None = None
    entra_private_key_file: Path | None = None
    #: CA bundle for TLS to Entra and Graph (default: the system's).
    entra_ca_file: Path | None = None
    #: Client id of the public client app agents link their own account through (device-code sign-in).
    entra_public_client_id: str | None = None
    #: Fernet key encrypting linked sign-ins (msal token caches) in the database.
    token_cache_key: SecretStr | None = None
    #: Former token-cache keys, ``,``-separated: still read, while every cache is written back under the new key.
    token_cache_old_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    #: ``agent``: each reset is made as the requesting agent's linked account; ``service``: as one service identity.
    reset_identity: ResetIdentity = ResetIdentity.AGENT
    #: Also take an Entra account whose ``mail`` (not only its UPN) is a person's Slack address as theirs: when an
    #: agent links it, and when Slack users and Entra accounts are matched (target, manager, requester, approver).
    #: Off by default: ``mail`` is often editable on-prem by the very helpdesk staff who link, so it proves
    #: nothing; turn it on only where UPNs are not the addresses people have in Slack and ``mail`` is written by
    #: nobody but the directory's owners.
    link_accept_mail: bool = False
    #: UPN of the service identity (``reset_identity=service``); an approver links it with /resetbot login --service.
    service_identity_upn: str | None = None
    #: How agents link: ``device`` (the device-code flow), ``browser`` (sign-in in the agent's browser, redirected
    #: back to ``RESETBOT_PUBLIC_URL``/auth/callback), or ``both`` (``/resetbot login --browser`` for the latter).
    signin: SignIn = SignIn.DEVICE
    #: The https URL agents' browsers reach the bot at (no path): the redirect URI is this + /auth/callback.
    public_url: str | None = None
    #: Socket Mode only: where the HTTPS listener for the sign-in callback binds (HTTP mode serves it itself).
    callback_host: str = "0.0.0.0"  # noqa: S104 - agents' browsers must reach it; it serves only the callback
    callback_port: int = Field(default=8443, ge=0, le=65535)
    #: Socket Mode only: the listener's certificate (PEM, chain included) and key; a certificate agents' browsers
    #: trust for the public URL's host name.
    callback_cert_file: Path | None = None
    callback_key_file: Path | None = None

    # --- Active Directory ------------------------------------------------------------------------------
    ldap_url: str | None = None
    ldap_bind: str | None = None
    ldap_password: SecretStr | None = None
    ldap_base_dn: str | None = None
    #: An account allowed to write lockoutTime on user objects, for ``--unlock`` (the bot's only AD write).
    ldap_unlock_bind: str | None = None
    ldap_unlock_password: SecretStr | None = None
    #: CA bundle for LDAPS (default: the system's).
    ldap_ca_file: Path | None = None

    # --- Operations (logging: see LogSettings) -------------------------------------------------------------
    #: Port of the Prometheus ``/metrics`` endpoint; empty (the default) serves no metrics.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    #: Address the metrics endpoint listens on; ``0.0.0.0`` lets a Prometheus on another host scrape it.
    metrics_address: str = "127.0.0.1"
    #: Outbound HTTP proxy for everything the bot reaches on the internet (Slack, Entra ID, Graph), as
    #: ``http://[user:password@]host:port``; TLS is tunnelled through it with CONNECT. Empty: direct. The
    #: Microsoft clients never read ``HTTPS_PROXY``-style variables; slack_sdk does when this is empty (see
    #: ``bot.app.slack_client``), so set this rather than those. Not a ``SecretStr``: without
    #: credentials it is an address that log lines may show; its password is registered for redaction on its own
    #: (and the whole URL when it holds one), and it stays out of the settings' repr.
    https_proxy: str | None = Field(default=None, repr=False)
    #: CA bundle for TLS to Slack (Web API and Socket Mode), e.g. a TLS-inspecting proxy's CA (default: the system's).
    slack_ca_file: Path | None = None

    # --- resetbot doctor -----------------------------------------------------------------------------------
    #: UPN of a synced user ``resetbot doctor`` reads in Entra ID and AD (and whose OU it checks writeback's
    #: rights on). Empty: those checks are skipped with a note.
    doctor_test_user: str | None = None
    #: The writeback (Entra Connect AD DS connector) account, as sAMAccountName, UPN or DN, whose rights
    #: ``resetbot doctor`` checks on the test user's OU. Empty: that check is skipped with a note.
    writeback_account: str | None = None

    @field_validator("slack_mode", "signin", mode="before")
    @classmethod
    def _mode_lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("agents_group", "approvers_group", "security_group")
    @classmethod
    def _group_ref(cls, value: str) -> str:
        """``@helpdesk`` as typed in Slack is the handle ``helpdesk``."""
        return value.strip().removeprefix("@")

    @field_validator("entra_authority")
    @classmethod
    def _one_tenant(cls, value: str | None) -> str | None:
        """``/common``, ``/organizations`` (and ``/consumers``) let accounts of any tenant (or personal ones) sign
        in: a phished sign-in code could then be completed by an account of the attacker's own tenant."""
        if value is None:
            return None
        tenant = urlsplit(value.strip()).path.strip("/").split("/", 1)[0]
        if tenant.lower() in _MULTI_TENANT:
            raise ValueError(f"RESETBOT_ENTRA_AUTHORITY names no tenant (/{tenant} lets accounts of any tenant sign "
                             "in): give your own tenant's id, https://login.microsoftonline.com/<tenant id>.")
        return value

    @field_validator("https_proxy")
    @classmethod
    def _proxy_url(cls, value: str | None) -> str | None:
        """The URL may hold the proxy's password: that (and the URL holding it) is redacted from every log line as
        soon as it is read, even if another setting then fails, and a sentence about the URL never quotes it."""
        if value is None or not value.strip():  # ``RESETBOT_HTTPS_PROXY=`` in a .env: no proxy, as leaving it out
            return None
        for secret in secrets_in(value):
            SECRETS.remember(secret)
        try:
            ProxyUrl.parse(value)
        except ProxyUrlError as e:
            raise ValueError(f"RESETBOT_HTTPS_PROXY {e}.") from None
        return value.strip()

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr) -> SecretStr:
        """A field check, like the app token's below, so that both tokens' sentences come together."""
        bot = value.get_secret_value()
        if is_placeholder(bot) or not bot.startswith("xoxb-"):
            raise ValueError("RESETBOT_SLACK_BOT_TOKEN must be the app's bot token (it starts with xoxb-).")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token_for_socket_mode(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        """Socket Mode connects with the app-level token; HTTP mode never uses it. A field check (not a model
        check) so that its sentence comes together with the other fields' ones."""
        if info.data.get("slack_mode") != SlackMode.SOCKET:  # HTTP, or a mode already refused with its own sentence
            return value
        if value is None:
            raise ValueError("RESETBOT_SLACK_APP_TOKEN is not set.")
        app = value.get_secret_value()
        if is_placeholder(app) or not app.startswith("xapp-"):
            raise ValueError("RESETBOT_SLACK_APP_TOKEN must be an app-level token (it starts with xapp-).")
        return value

    @field_validator("slack_signing_secret")
    @classmethod
    def _signing_secret_for_http_mode(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        """HTTP mode without a signing secret would serve anyone who can reach the port: refuse to start."""
        if info.data.get("slack_mode") != SlackMode.HTTP:
            return value
        if value is None or is_placeholder(value.get_secret_value()):
            raise ValueError("RESETBOT_SLACK_MODE=http needs RESETBOT_SLACK_SIGNING_SECRET: the app's signing "
                             "secret (Basic Information, App Credentials), which every request from Slack is "
                             "verified with.")
        return value

    @field_validator("protected_groups", "protected_allowed", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return split_list(value)

    @field_validator("verify_methods", mode="before")
    @classmethod
    def _methods(cls, value: object) -> object:
        items = split_list(value)
        if isinstance(items, list):
            items = [i.strip().lower() if isinstance(i, str) else i for i in items]
            known = {m.value for m in VerifyMethod}
            unknown = [i for i in items if isinstance(i, str) and i not in known]
            if unknown:
                raise ValueError(f"RESETBOT_VERIFY_METHODS: {', '.join(unknown)} is not a method; choose from "
                                 f"{', '.join(known)}.")
            if not items:
                raise ValueError("RESETBOT_VERIFY_METHODS needs at least one method "
                                 "(or RESETBOT_VERIFY_REQUIRED=false).")
            items = list(dict.fromkeys(items))
        return items

    @model_validator(mode="after")
    def _duo_configured(self) -> Self:
        if VerifyMethod.DUO_PUSH in self.verify_methods:
            missing = [name for name, value in (("RESETBOT_DUO_API_HOST", self.duo_api_host),
                                                ("RESETBOT_DUO_INTEGRATION_KEY", self.duo_integration_key),
                                                ("RESETBOT_DUO_SECRET_KEY", self.duo_secret_key)) if not value]
            if missing:
                raise ValueError(f"RESETBOT_VERIFY_METHODS names duo-push, which needs {', '.join(missing)}: the "
                                 "Duo Auth API application's details (Duo Admin Panel, Applications).")
        return self

    @field_validator("followup_landed_first", "followup_landed_deadline", "followup_replaced_after", mode="before")
    @classmethod
    def _durations(cls, value: object, info: ValidationInfo) -> object:
        name = f"RESETBOT_{str(info.field_name).upper()}"
        items = split_list(value) if info.field_name == "followup_replaced_after" else [value]
        if not isinstance(items, list) or not items:
            raise ValueError(f"{name} needs at least one time, like 1h,4h,24h.")
        try:
            delays = [parse_duration(item) for item in items]
        except ValueError as e:
            raise ValueError(f"{name}: {e}.") from None
        if any(d <= timedelta(0) for d in delays):
            raise ValueError(f"{name} must be longer than zero.")
        return sorted(set(delays)) if info.field_name == "followup_replaced_after" else delays[0]

    @model_validator(mode="after")
    def _never_logged(self) -> Self:
        """Every secret setting is redacted from every log line of this process, from the moment it is read."""
        SECRETS.remember_fields(self)
        return self

    @model_validator(mode="after")
    def _no_placeholders(self) -> Self:
        problems = []
        if not self.slack_api_base.endswith("/"):
            problems.append("RESETBOT_SLACK_API_BASE must end with '/'.")
        if self.entra_client_secret is not None and is_placeholder(self.entra_client_secret.get_secret_value()):
            problems.append("RESETBOT_ENTRA_CLIENT_SECRET still holds a placeholder.")
        if self.ldap_password is not None and is_placeholder(self.ldap_password.get_secret_value()):
            problems.append("RESETBOT_LDAP_PASSWORD still holds a placeholder.")
        if problems:
            raise ValueError(" ".join(problems))
        return self

    def proxy(self) -> ProxyUrl | None:
        """The outbound proxy, or None to connect directly (the URL was checked when the settings were read)."""
        return ProxyUrl.parse(self.https_proxy) if self.https_proxy is not None else None

    def proxy_url(self) -> str | None:
        """The proxy URL as the HTTP client libraries take it (credentials included), or None."""
        return self.https_proxy

    def protected_group_dns(self) -> list[str]:
        if self.protected_groups:
            return list(self.protected_groups)
        base = self.ldap_base_dn or ""
        return [f"{cn},{base}" for cn in DEFAULT_PROTECTED_GROUP_CNS] if base else []

    def require_directories(self) -> list[str]:
        """Sentences for the Entra and AD settings that serving requests needs but that are missing."""
        needed = {
            "RESETBOT_ENTRA_AUTHORITY": self.entra_authority,
            "RESETBOT_ENTRA_CLIENT_ID": self.entra_client_id,
            "RESETBOT_LDAP_URL": self.ldap_url,
            "RESETBOT_LDAP_BIND": self.ldap_bind,
            "RESETBOT_LDAP_PASSWORD": self.ldap_password,
            "RESETBOT_LDAP_BASE_DN": self.ldap_base_dn,
        }
        missing = [f"{name} is not set." for name, value in needed.items() if value is None]
        if self.entra_client_secret is None and self.entra_certificate_file is None:
            missing.append("Set RESETBOT_ENTRA_CLIENT_SECRET or RESETBOT_ENTRA_CERTIFICATE_FILE.")
        return missing

    def require_sealing(self) -> list[str]:
        """Sentences for a sealing key that serving cannot do without. How the bot knows it may be one of several
        replicas: the database is PostgreSQL (a SQLite file is served by one process; PostgreSQL is what the README
        tells teams running replicas to use). Each replica without the shared key would seal with one of its own,
        made at start, and a Reveal click reaching another replica could never open that password."""
        if self.sealing_key is not None:
            problem = fernet_key_problem(self.sealing_key)
            return [f"RESETBOT_SEALING_KEY {problem}; {FERNET_KEY_HOWTO}"] if problem else []
        if self.database_url.split(":", 1)[0].split("+", 1)[0] in ("postgres", "postgresql"):
            return ["RESETBOT_SEALING_KEY is not set, and the database is PostgreSQL, where several replicas may "
                    "serve: set the same key on every replica, so that any of them can open a password another "
                    f"sealed; {FERNET_KEY_HOWTO}"]
        return []

    @field_validator("token_cache_old_keys", mode="before")
    @classmethod
    def _split_old_keys(cls, value: object) -> object:
        return split_list(value)

    @model_validator(mode="after")
    def _follow_up_order(self) -> Self:
        """The reminders compare with what the landed check saw, so it must be over before the first reminder."""
        if self.followup_landed_first > self.followup_landed_deadline:
            raise ValueError("RESETBOT_FOLLOWUP_LANDED_FIRST must not be later than RESETBOT_FOLLOWUP_LANDED_DEADLINE.")
        if self.followup_landed_deadline >= self.followup_replaced_after[0]:
            raise ValueError("RESETBOT_FOLLOWUP_LANDED_DEADLINE must be earlier than the first of "
                             "RESETBOT_FOLLOWUP_REPLACED_AFTER: whether the reset landed is settled before any "
                             "reminder.")
        return self

    @model_validator(mode="after")
    def _linking(self) -> Self:
        problems = []
        keys = [("RESETBOT_TOKEN_CACHE_KEY", self.token_cache_key)] if self.token_cache_key is not None else []
        keys += [("RESETBOT_TOKEN_CACHE_OLD_KEYS", k) for k in self.token_cache_old_keys]
        named: set[str] = set()
        for name, key in keys:
            problem = fernet_key_problem(key)
            if problem and name not in named:  # one sentence per setting, however many old keys are bad
                named.add(name)
                problems.append(f"{name} {problem}; {FERNET_KEY_HOWTO}")
        if self.entra_public_client_id is not None and is_placeholder(self.entra_public_client_id):
            problems.append("RESETBOT_ENTRA_PUBLIC_CLIENT_ID still holds a placeholder.")
        canary = (self.canary_upn or "").strip()
        if canary and not (self.service_identity_upn or "").strip():
            problems.append("RESETBOT_CANARY_UPN needs RESETBOT_SERVICE_IDENTITY_UPN: the canary is reset as the "
                            "service identity, which an approver links with /resetbot login --service.")
        if self.reset_identity == ResetIdentity.SERVICE:
            upn = (self.service_identity_upn or "").strip()
            if not upn or "@" not in upn or is_placeholder(upn):
                problems.append("RESETBOT_RESET_IDENTITY=service needs RESETBOT_SERVICE_IDENTITY_UPN: the UPN of the "
                                "account every reset is made as (e.g. svc-reset@corp.example.com).")
        if problems:
            raise ValueError(" ".join(problems))
        return self

    @model_validator(mode="after")
    def _browser_sign_in(self) -> Self:
        """Browser sign-in needs the URL Microsoft sends the browser back to, and (in Socket Mode, where nothing
        else listens) a certificate to serve it with: said at start, not when the first agent tries."""
        if self.signin == SignIn.DEVICE:
            return self
        problems = []
        parts = urlsplit((self.public_url or "").strip())
        if not self.public_url:
            problems.append(f"RESETBOT_SIGNIN={self.signin.value} needs RESETBOT_PUBLIC_URL: the https URL agents' "
                            "browsers reach resetbot at (the redirect URI is that URL + /auth/callback).")
        elif parts.scheme != "https" or not parts.hostname or parts.path.strip("/") or parts.query:
            problems.append("RESETBOT_PUBLIC_URL must be an https URL with no path, like https://resetbot.corp.example."
                            "com:8443 (Microsoft redirects only to https).")
        if self.slack_mode == SlackMode.SOCKET and (self.callback_cert_file is None or self.callback_key_file is None):
            problems.append(f"RESETBOT_SIGNIN={self.signin.value} in Socket Mode needs RESETBOT_CALLBACK_CERT_FILE and "
                            "RESETBOT_CALLBACK_KEY_FILE: the sign-in callback is served over HTTPS by a listener of "
                            "its own.")
        if problems:
            raise ValueError(" ".join(problems))
        return self

    def redirect_uri(self) -> str | None:
        """The redirect URI to register on the public client app (Mobile and desktop or Web platform)."""
        if self.signin == SignIn.DEVICE or not self.public_url:
            return None
        return self.public_url.strip().rstrip("/") + "/auth/callback"

    def require_linking(self) -> list[str]:
        """Sentences for what linking Entra accounts (and so every reset) needs but is missing."""
        missing = []
        if self.entra_public_client_id is None:
            missing.append("RESETBOT_ENTRA_PUBLIC_CLIENT_ID is not set (the app agents sign in through).")
        if self.token_cache_key is None:
            missing.append(f"RESETBOT_TOKEN_CACHE_KEY is not set; {FERNET_KEY_HOWTO}")
        return missing

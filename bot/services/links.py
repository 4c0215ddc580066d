"""Whose hands make a reset: agents link their own Entra account (product spec, section 4, "Whose hands").

``/resetbot login`` starts Microsoft's device-code sign-in: the bot asks Entra for a code, DMs it to the agent
(never a channel), and waits for the sign-in in a background thread of its own, so the Slack listener answers at
once and no inbound port is needed. When the sign-in completes, the account must be the agent's own: its UPN
must equal the Slack user's email address (its mail only with ``RESETBOT_LINK_ACCEPT_MAIL``: helpdesk staff can
often edit ``mail`` on-prem, and would then link an administrator's account whose mail they set to their own
address), in the configured tenant (the id token's ``tid``). A sign-in completed as someone else is refused, audited and
reported to security, because that is exactly what a phished sign-in code looks like (an attacker starts a
sign-in and talks an administrator into entering the code). In service mode (``RESETBOT_RESET_IDENTITY=service``)
one account, ``RESETBOT_SERVICE_IDENTITY_UPN``, makes every reset; an approver links it with
``/resetbot login --service`` and it is stored under ``SERVICE_LINK_KEY``.

Where Conditional Access blocks the device-code flow (Microsoft recommends it: phishing kits abuse that flow),
Entra refuses the completed sign-in (AADSTS53003) and the agent is told to sign in in the browser instead:
``/resetbot login --browser`` (``RESETBOT_SIGNIN``) DMs a one-time link to Microsoft's page (auth code with PKCE,
``prompt=login``), and Microsoft posts the answer to the callback (``bot.callback``), which calls
``finish_browser_sign_in``. The attempt lives in the database, found by its ``state``'s hash and used once, so any
replica can finish it; then the same ownership and tenant checks as for a code apply. A refused callback (a used,
replaced or expired link) is audited and told to its agent once per link; one with a state never issued, which
anyone who reaches the callback can send, is logged, and audited at most once a minute.

The msal token cache is kept only encrypted (``DelegatedTokens`` encrypts it with the token-cache key) and
refreshed silently; a refreshed cache is written back with a compare-and-set, so a refresh never overwrites a
newer sign-in. ``readiness`` tells the requesting agent, before approval is asked for, that the reset could not
be made: no link, a sign-in that no longer works, or an Entra role too weak for this target (``entra_roles``).

Audit actions (``AuditDraft.action``): ``link_started``, ``linked``, ``link_failed``, ``link_refused`` (signed in as
the wrong account), ``unlinked``, and ``refused`` (someone who may not link tried to).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple, Protocol

from bot import messages, store
from bot.clients.entra_auth import BrowserFlow, DelegatedToken, DeviceFlow, LinkedAccount
from bot.clients.slack_notify import Notifier
from bot.db import SessionFactory, Transactions
from bot.domain.audit import AuditAction, AuditDraft
from bot.domain.entra_roles import blocking_roles, can_reset, can_revoke_sessions, resetting_roles, roles_needed
from bot.domain.groups import MEMBERS_FOR_A_DECISION_S
from bot.errors import (
    DeviceFlowDeclinedError,
    DeviceFlowExpiredError,
    EntraReauthRequiredError,
    EntraUnavailableError,
    NotLinkedError,
    ResetbotError,
    SignInBlockedError,
)
from bot.models import SERVICE_LINK_KEY, AgentLink, utcnow
from bot.services.resolve import EntraUser
from bot.settings import ResetIdentity, Settings, SignIn

log = logging.getLogger(__name__)

#: Seconds waited beyond the code's own expiry before giving up on a sign-in.
_EXPIRY_MARGIN_S = 5.0


class LinkAudit(StrEnum):
    """Audit actions of linking (``AuditDraft.action`` is a plain string; these join the product's own)."""

    LINK_STARTED = "link_started"
    LINKED = "linked"
    LINK_FAILED = "link_failed"
    #: The sign-in was completed as an account that is not the one asked for: a security signal.
    LINK_REFUSED = "link_refused"
    UNLINKED = "unlinked"


class LinkTokens(Protocol):
    """What linking needs from ``bot.clients.entra_auth.DelegatedTokens``."""

    def start_device_flow(self) -> DeviceFlow: ...
    def start_browser_flow(self, redirect_uri: str, *, login_hint: str | None = None) -> BrowserFlow: ...
    def finish_browser_flow(self, encrypted_flow: str, auth_response: dict[str, str]) -> LinkedAccount: ...
    def wait_for_device_flow(self, flow: DeviceFlow, *, timeout: float) -> LinkedAccount: ...
    def token_for(self, link: LinkedAccount | tuple[str, str]) -> DelegatedToken: ...


class LinkDirectory(Protocol):
    """What linking reads from Entra with the bot's own app token (``bot.clients.graph.GraphClient``)."""

    def get_user(self, id_or_upn: str) -> EntraUser | None: ...
    def directory_roles_of(self, user_id: str) -> Sequence[str]: ...


class AgentToken(NamedTuple):
    """A delegated access token and the account it acts as (for the audit trail: who made the reset)."""

    access_token: str
    upn: str
    oid: str

    def __repr__(self) -> str:
        return f"AgentToken(access_token=<hidden>, upn={self.upn!r}, oid={self.oid!r})"


@dataclass(frozen=True)
class LinkRules:
    """The part of the settings linking reads, so tests can swap it (like ``RequestRules``)."""

    reset_identity: ResetIdentity
    service_upn: str | None
    agents_group: str
    approvers_group: str | None
    security_channel: str | None
    #: A health canary is configured: it is reset as the service identity, so that may be linked in agent mode.
    canary: bool = False
    #: The account's ``mail`` proves ownership too (``RESETBOT_LINK_ACCEPT_MAIL``); by default only its UPN does.
    accept_mail: bool = False
    #: How agents sign in (``RESETBOT_SIGNIN``), and where Microsoft sends a browser sign-in back to.
    signin: SignIn = SignIn.DEVICE
    redirect_uri: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> LinkRules:
        return cls(
            reset_identity=settings.reset_identity,
            service_upn=(settings.service_identity_upn or "").strip() or None,
            agents_group=settings.agents_group,
            approvers_group=settings.approvers_group or None,
            security_channel=settings.security_channel,
            canary=bool((settings.canary_upn or "").strip()),
            accept_mail=settings.link_accept_mail,
            signin=settings.signin,
            redirect_uri=settings.redirect_uri(),
        )

    @property
    def service_mode(self) -> bool:
        return self.reset_identity == ResetIdentity.SERVICE

    @property
    def browser_allowed(self) -> bool:
        return self.signin != SignIn.DEVICE and self.redirect_uri is not None


class CallbackOutcome(StrEnum):
    """Which page the browser is shown after Microsoft's redirect (the result itself goes to the agent's DM)."""

    DONE = "done"  # the sign-in was taken up: linked, or refused with the reason in the DM
    STALE = "stale"  # the state was used before or ran out
    INVALID = "invalid"  # no state, or one never issued here
    UNAVAILABLE = "unavailable"  # Entra could not be reached or the bot failed: the agent starts again


#: What of Microsoft's redirect is handed to msal (the rest of the query is ignored).
_AUTH_RESPONSE_KEYS = ("code", "state", "error", "error_description", "client_info", "session_state")
#: A state longer than this was never issued here (msal's are 22 characters): refused before any lookup.
_MAX_STATE_CHARS = 256
#: How long a used or expired browser sign-in is remembered, so a late replay is told "used", not "unknown".
_SIGN_IN_MEMORY = timedelta(days=1)


def state_hash(state: str) -> str:
    """How a browser sign-in's state is found in the database (the raw value is never stored)."""
    return hashlib.sha256(state.encode("utf-8", "replace")).hexdigest()


def owns_account(slack_email: str | None, *, upn: str, mail: str | None) -> bool:
    """Whether an Entra account (``upn``, ``mail``) is the Slack user's own: their Slack email address is the
    account's UPN or mail, case-insensitively. No email address: not provably theirs."""
    email = (slack_email or "").strip().lower()
    if not email:
        return False
    return email in {a.strip().lower() for a in (upn, mail or "") if a.strip()}


@dataclass
class LinkService(Transactions):
    begin: SessionFactory
    notifier: Notifier
    tokens: LinkTokens
    graph: LinkDirectory
    rules: LinkRules
    clock: Callable[[], datetime] = field(default=utcnow)
    #: Sign-ins waited for at the same time (each holds a thread while the agent types the code).
    max_waiting: int = 8
    #: Read-only transactions (``Transactions.reading``); None: ``begin``'s.
    reads: SessionFactory | None = None
    _executor: ThreadPoolExecutor = field(init=False, repr=False)
    _waiting: dict[str, DeviceFlow | None] = field(init=False, repr=False, default_factory=dict)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)
    _closing: threading.Event = field(init=False, repr=False, default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=self.max_waiting, thread_name_prefix="resetbot-link")

    def close(self) -> None:
        """Stop waiting for sign-ins (their agents are told to start again) and end the worker threads."""
        self._closing.set()
        with self._lock:
            flows = [f for f in self._waiting.values() if f is not None]
        for flow in flows:
            flow.cancel()
        self._executor.shutdown(wait=True, cancel_futures=True)

    # --- /resetbot login ---------------------------------------------------------------------------------------

    def login(self, *, slack_user: str, correlation_id: str, service: bool = False, browser: bool = False) -> str:
        """Start linking ``slack_user``'s own Entra account (or, with ``service``, the service identity): the code
        (or, with ``browser`` or ``RESETBOT_SIGNIN=browser``, a sign-in link) goes to their DM, the wait happens in
        the background (or at the callback). Returns the sentence to show them privately."""
        refusal = self._may_link(slack_user, service=service, correlation_id=correlation_id, attempted="login")
        if refusal:
            return refusal
        if browser and not self.rules.browser_allowed:
            return messages.links.browser_sign_in_off()
        if browser or self.rules.signin == SignIn.BROWSER:
            return self._login_browser(slack_user=slack_user, correlation_id=correlation_id, service=service)
        key = SERVICE_LINK_KEY if service else slack_user
        with self._lock:
            if self._closing.is_set():
                return messages.links.link_interrupted(service=service)
            if key in self._waiting:
                pending = self._waiting[key]
                return messages.links.login_already_waiting(pending.expires_at if pending else self.clock(),
                                                            service=service)
            self._waiting[key] = None  # reserved while the code is fetched, so a double command starts one
        try:
            flow = self.tokens.start_device_flow()
            with self._lock:
                self._waiting[key] = flow
            sign_in_as = self.rules.service_upn if service else self.notifier.email_of(slack_user)
            self.notifier.dm(slack_user, messages.links.login_code_dm(flow.user_code, flow.verification_uri,
                                                                      flow.expires_at, sign_in_as=sign_in_as,
                                                                      service=service))
            self._audit(AuditDraft(actor=slack_user, action=LinkAudit.LINK_STARTED, correlation_id=correlation_id,
                                   detail={"service": service, "expires_at": flow.expires_at.isoformat()}))
            self._executor.submit(self._finish, key=key, slack_user=slack_user, flow=flow,
                                  correlation_id=correlation_id, service=service)
        except BaseException:
            with self._lock:
                self._waiting.pop(key, None)
            raise
        return messages.links.login_code_sent(flow.expires_at)

    def _may_link(self, slack_user: str, *, service: bool, correlation_id: str, attempted: str) -> str | None:
        """None when ``slack_user`` may (un)link this identity; otherwise the sentence (refusals audited)."""
        if service:
            if not (self.rules.service_mode or self.rules.canary):
                return messages.links.link_service_not_used()
            group = self.rules.approvers_group
            if not group or slack_user not in self.notifier.group_members(group, max_age=MEMBERS_FOR_A_DECISION_S):
                self._audit(AuditDraft(actor=slack_user, action=AuditAction.REFUSED, correlation_id=correlation_id,
                                       detail={"stage": "link", "reason": "not_an_approver", "service": True,
                                               "attempted": attempted}))
                return messages.links.link_service_not_an_approver(self.notifier.group_handle(group) if group
                                                                    else None)
            return None
        if attempted != "login":
            return None  # anyone may see or remove their own link
        if self.rules.service_mode:
            assert self.rules.service_upn
            return messages.links.link_not_needed(self.rules.service_upn)
        if slack_user not in self.notifier.group_members(self.rules.agents_group,
                                                         max_age=MEMBERS_FOR_A_DECISION_S):
            self._audit(AuditDraft(actor=slack_user, action=AuditAction.REFUSED, correlation_id=correlation_id,
                                   detail={"stage": "link", "reason": "not_an_agent", "attempted": attempted}))
            return messages.links.link_not_an_agent(self.notifier.group_handle(self.rules.agents_group))
        return None

    def _finish(self, *, key: str, slack_user: str, flow: DeviceFlow, correlation_id: str, service: bool) -> None:
        """The background half of ``login``: wait for the sign-in, check whose it is, store it, tell the agent."""
        try:
            remaining = (flow.expires_at - self.clock()).total_seconds() + _EXPIRY_MARGIN_S
            try:
                account = self.tokens.wait_for_device_flow(flow, timeout=max(remaining, 1.0))
            except DeviceFlowDeclinedError:
                self._failed(slack_user, "declined", messages.links.link_declined(service=service), correlation_id,
                             service)
                return
            except DeviceFlowExpiredError as e:
                if self._closing.is_set():
                    self._failed(slack_user, "interrupted", messages.links.link_interrupted(service=service),
                                 correlation_id, service)
                else:
                    self._failed(slack_user, e.reason, messages.links.link_expired(service=service), correlation_id,
                                 service)
                return
            except SignInBlockedError as e:  # Conditional Access: not a failure to retry, a flow to switch from
                blocked = messages.links.device_code_blocked(browser_allowed=self.rules.browser_allowed,
                                                             service=service)
                self._failed(slack_user, e.reason, blocked, correlation_id, service, code=e.code)
                return
            except ResetbotError as e:  # the reason a DeviceFlowError gives (wrong_tenant, scope...) goes on record
                self._failed(slack_user, str(getattr(e, "reason", "") or "error"),
                             messages.links.link_failed(str(e), correlation_id, service=service),
                             correlation_id, service, error=type(e).__name__)
                return
            self._complete(key=key, slack_user=slack_user, account=account, correlation_id=correlation_id,
                           service=service)
        except Exception as e:  # a background thread: nobody else would ever hear of it
            log.exception("linking for %s failed (%s)", slack_user, correlation_id)
            try:
                self._failed(slack_user, "error", messages.errors.internal_error(correlation_id), correlation_id,
                             service, error=type(e).__name__)
            except Exception:
                log.exception("could not tell %s that linking failed (%s)", slack_user, correlation_id)
        finally:
            with self._lock:
                if self._waiting.get(key) is flow:
                    del self._waiting[key]

    # --- /resetbot login --browser, and the callback ------------------------------------------------------------

    def _login_browser(self, *, slack_user: str, correlation_id: str, service: bool) -> str:
        """A one-time sign-in link by DM. The attempt (state, PKCE verifier, nonce, whose it is) is stored, not
        kept in memory: Microsoft may send the browser back to any replica, after a restart too. It replaces any
        link of the same person still waiting, so at most one link of theirs can link anything (two started at
        once included: ``store.links.save_browser_sign_in``)."""
        assert self.rules.redirect_uri is not None
        sign_in_as = self.rules.service_upn if service else self.notifier.email_of(slack_user)
        flow = self.tokens.start_browser_flow(self.rules.redirect_uri, login_hint=sign_in_as)
        now = self.clock()
        with self.begin() as session:
            store.links.purge_browser_sign_ins(session, before=now - _SIGN_IN_MEMORY)
            # Retires theirs still waiting, even one started at this instant.
            store.links.save_browser_sign_in(session, state_hash=state_hash(flow.state), slack_user=slack_user,
                                             service=service, correlation_id=correlation_id,
                                             encrypted_flow=flow.encrypted_flow, created_at=now,
                                             expires_at=flow.expires_at)
            store.audit.append_audit(session, draft=AuditDraft(
                actor=slack_user, action=LinkAudit.LINK_STARTED, correlation_id=correlation_id,
                detail={"service": service, "flow": "browser", "expires_at": flow.expires_at.isoformat()}))
        self.notifier.dm(slack_user, messages.links.login_link_dm(flow.auth_uri, flow.expires_at,
                                                                  sign_in_as=sign_in_as, service=service))
        return messages.links.login_link_sent(flow.expires_at)

    def finish_browser_sign_in(self, query: Mapping[str, str], *, correlation_id: str) -> CallbackOutcome:
        """Microsoft sent a browser back to the callback with ``query``: use its ``state`` once, redeem the code as
        the agent who started it, and check the account exactly as a device-code sign-in's. The agent hears the
        result by DM; what is returned picks the page the browser shows (which never says whose sign-in it was)."""
        state = str(query.get("state") or "")
        if not state or len(state) > _MAX_STATE_CHARS:
            log.warning("a sign-in callback without a usable state was refused (%s)", correlation_id)
            return CallbackOutcome.INVALID
        now = self.clock()
        hashed = state_hash(state)
        told = False
        with self.begin() as session:
            claim, row = store.links.claim_browser_sign_in(session, state_hash=hashed, at=now)
            if row is None and store.links.first_unknown_in_minute(session, at=now):
                store.audit.append_audit(session, at=now, draft=AuditDraft(
                    actor=store.links.UNKNOWN_CALLER, action=LinkAudit.LINK_FAILED, correlation_id=correlation_id,
                    detail={"flow": "browser", "reason": "state_unknown", "per": "minute"}))
            elif row is not None and claim != store.links.SignInClaim.CLAIMED:
                # Once per link: whoever holds a used callback could otherwise spam the agent and the trail.
                told = store.links.first_refusal(session, state_hash=hashed, at=now)
                if told:
                    store.audit.append_audit(session, draft=AuditDraft(
                        actor=row.slack_user, action=LinkAudit.LINK_FAILED, correlation_id=correlation_id,
                        detail={"service": row.service, "flow": "browser", "reason": f"state_{claim.value}",
                                "started": row.correlation_id}))
        if row is None:
            log.warning("a sign-in callback with a state never issued here was refused (%s)", correlation_id)
            return CallbackOutcome.INVALID
        if claim != store.links.SignInClaim.CLAIMED:
            if not told:
                log.warning("a sign-in callback of %s came back again (%s, %s): refused, its agent was told before",
                            row.slack_user, claim.value, correlation_id)
                return CallbackOutcome.STALE
            sentence = (messages.links.browser_link_expired(service=row.service)
                        if claim == store.links.SignInClaim.EXPIRED
                        else messages.links.browser_link_reused(service=row.service))
            self.notifier.dm(row.slack_user, sentence)
            return CallbackOutcome.STALE
        response = {k: str(query[k]) for k in _AUTH_RESPONSE_KEYS if query.get(k)}
        try:
            return self._finish_browser(response, row.encrypted_flow, slack_user=row.slack_user, service=row.service,
                                        correlation_id=correlation_id)
        except Exception as e:  # the state is used up: the agent must hear that, whatever failed
            log.exception("a browser sign-in of %s failed (%s)", row.slack_user, correlation_id)
            self._failed(row.slack_user, "error", messages.errors.internal_error(correlation_id), correlation_id,
                         row.service, flow="browser", error=type(e).__name__)
            return CallbackOutcome.UNAVAILABLE

    def _finish_browser(self, response: dict[str, str], encrypted_flow: str, *, slack_user: str, service: bool,
                        correlation_id: str) -> CallbackOutcome:
        """The claimed half of ``finish_browser_sign_in``: redeem, check, store, tell."""
        key = SERVICE_LINK_KEY if service else slack_user
        try:
            account = self.tokens.finish_browser_flow(encrypted_flow, response)
        except DeviceFlowDeclinedError:
            self._failed(slack_user, "declined", messages.links.link_declined(service=service, browser=True),
                         correlation_id, service, flow="browser")
            return CallbackOutcome.DONE
        except EntraUnavailableError as e:
            self._failed(slack_user, "unavailable", messages.links.link_failed(str(e), correlation_id,
                                                                              service=service, browser=True),
                         correlation_id, service, flow="browser", error=type(e).__name__)
            return CallbackOutcome.UNAVAILABLE
        except ResetbotError as e:  # wrong_tenant, scope, nonce_mismatch, invalid_grant...: on record, and said
            self._failed(slack_user, str(getattr(e, "reason", "") or "error"),
                         messages.links.link_failed(str(e), correlation_id, service=service, browser=True),
                         correlation_id, service, flow="browser", error=type(e).__name__)
            return CallbackOutcome.DONE
        self._complete(key=key, slack_user=slack_user, account=account, correlation_id=correlation_id,
                       service=service, browser=True)
        return CallbackOutcome.DONE

    def _failed(self, slack_user: str, reason: str, sentence: str, correlation_id: str, service: bool,
                **detail: object) -> None:
        self._audit(AuditDraft(actor=slack_user, action=LinkAudit.LINK_FAILED, correlation_id=correlation_id,
                               detail={"service": service, "reason": reason, **detail}))
        self.notifier.dm(slack_user, sentence)

    def _complete(self, *, key: str, slack_user: str, account: LinkedAccount, correlation_id: str,
                  service: bool, browser: bool = False) -> None:
        expected = self.rules.service_upn if service else self.notifier.email_of(slack_user)
        if service:
            ok = account.upn.strip().lower() == (expected or "").strip().lower()
        else:  # the UPN; the account's mail only where a setting says so (helpdesk staff can often edit mail)
            ok = owns_account(expected, upn=account.upn, mail=None) or (
                self.rules.accept_mail and expected is not None
                and owns_account(expected, upn=account.upn, mail=self._mail_of(account.oid)))
        if not ok:
            self._refuse_account(slack_user, account, expected, correlation_id, service, browser=browser)
            return
        roles = self._read_roles(account.oid)
        with self.begin() as session:
            store.links.save_link(session, slack_user=key, upn=account.upn, oid=account.oid,
                                  home_account_id=account.home_account_id, encrypted_cache=account.encrypted_cache,
                                  display_name=account.display_name, roles=roles, at=self.clock())
            store.audit.append_audit(session, draft=AuditDraft(
                actor=slack_user, action=LinkAudit.LINKED, correlation_id=correlation_id,
                detail={"service": service, "upn": account.upn, "oid": account.oid,
                        "roles": None if roles is None else sorted(roles)}))
        self.notifier.dm(slack_user, messages.links.linked(account.upn, roles, service=service,
                                                           can_reset_anyone=bool(resetting_roles(roles or ()))))

    def _refuse_account(self, slack_user: str, account: LinkedAccount, expected: str | None, correlation_id: str,
                        service: bool, *, browser: bool = False) -> None:
        """The sign-in was not the account asked for: store nothing (the cache is dropped), audit, tell."""
        reason = "wrong_account" if expected else "no_email"
        security = self.rules.security_channel if expected else None
        self._audit(AuditDraft(actor=slack_user, action=LinkAudit.LINK_REFUSED, correlation_id=correlation_id,
                               detail={"service": service, "reason": reason, "signed_in": account.upn,
                                       "expected": expected}))
        if expected is None:
            self.notifier.dm(slack_user, messages.links.link_no_email(account.upn))
            return
        told = False
        if security:
            try:
                self.notifier.post(security, messages.links.security_link_mismatch(slack_user, account.upn, expected,
                                                                                   service=service))
                told = True
            except ResetbotError:  # the agent must still hear why nothing was linked
                log.exception("could not alert security about a mismatched sign-in (%s)", correlation_id)
        self.notifier.dm(slack_user, messages.links.link_wrong_account(account.upn, expected, service=service,
                                                                       security_told=told, browser=browser))

    def _mail_of(self, oid: str) -> str | None:
        user = self.graph.get_user(oid)
        return user.mail if user is not None else None

    def _read_roles(self, oid: str) -> list[str] | None:
        try:
            return list(self.graph.directory_roles_of(oid))
        except ResetbotError as e:
            log.warning("could not read the Entra roles of %s: %s", oid, type(e).__name__)
            return None

    # --- /resetbot whoami and logout ---------------------------------------------------------------------------

    def whoami(self, *, slack_user: str) -> str:
        """Who ``slack_user`` is linked as (and, in service mode, the service identity): when, Entra roles, and
        whether a token comes silently right now."""
        if not self.rules.service_mode:
            return self._describe(slack_user, service=False)
        assert self.rules.service_upn
        return " ".join((messages.links.whoami_service_mode(self.rules.service_upn),
                         self._describe(SERVICE_LINK_KEY, service=True)))

    def _describe(self, key: str, *, service: bool) -> str:
        with self.reading() as session:
            link = store.links.get_link(session, slack_user=key)
        if link is None:
            return messages.links.service_not_linked(self.rules.service_upn or "") if service else \
                messages.links.whoami_not_linked()
        try:
            self._token(key, service=service)
            state = messages.links.token_works()
        except EntraReauthRequiredError:
            state = messages.links.token_needs_login(service=service)
        except NotLinkedError:  # unlinked meanwhile
            return messages.links.whoami_not_linked()
        except ResetbotError as e:
            state = messages.links.token_unknown(str(e))
        roles = self._fresh_roles(link, fallback=True)
        return messages.links.whoami_linked(link.upn, link.display_name, link.linked_at, roles, state, service=service)

    def logout(self, *, slack_user: str, correlation_id: str, service: bool = False) -> str:
        """Forget ``slack_user``'s link (or the service identity's) and its encrypted sign-in."""
        refusal = self._may_link(slack_user, service=service, correlation_id=correlation_id, attempted="logout")
        if refusal:
            return refusal
        key = SERVICE_LINK_KEY if service else slack_user
        with self.begin() as session:
            gone = store.links.delete_link(session, slack_user=key)
            if gone is not None:
                store.audit.append_audit(session, draft=AuditDraft(
                    actor=slack_user, action=LinkAudit.UNLINKED, correlation_id=correlation_id,
                    detail={"service": service, "upn": gone.upn, "oid": gone.oid}))
        if gone is None:
            return messages.links.nothing_to_unlink(service=service)
        return messages.links.unlinked(gone.upn, service=service)

    # --- tokens and readiness, for the reset ---------------------------------------------------------------

    def token_for(self, slack_user: str) -> AgentToken:
        """A delegated access token of the account linked to ``slack_user`` (``SERVICE_LINK_KEY``: the service
        identity), refreshed silently; a refreshed cache is stored again (encrypted).

        Raises ``NotLinkedError`` (no link) or ``EntraReauthRequiredError`` (the sign-in no longer works), each
        with the sentence to show the agent, or ``EntraUnavailableError`` (try again later)."""
        link, token = self._token(slack_user, service=slack_user == SERVICE_LINK_KEY)
        return AgentToken(token.access_token, link.upn, link.oid)

    def acting_token(self, requester_slack_user: str) -> AgentToken:
        """The token a reset asked for by ``requester_slack_user`` is made with: theirs, or in service mode the
        service identity's. Raises as ``token_for``."""
        return self.token_for(SERVICE_LINK_KEY if self.rules.service_mode else requester_slack_user)

    def reset_token(self, requester_slack_user: str) -> str:
        """``acting_token(...).access_token``: a drop-in for a ``token_for: Callable[[str], str]``."""
        return self.acting_token(requester_slack_user).access_token

    def readiness(self, requester_slack_user: str, target_roles: Sequence[str], *, tap: bool = False,
                  revoke_sessions: bool = False) -> str | None:
        """None when a reset asked for by ``requester_slack_user`` of a target holding the Entra directory roles
        ``target_roles`` (display names) can be made: the acting identity (the requester, or the service identity
        in service mode) is linked, its sign-in still works silently, and its Entra roles (read afresh) are strong
        enough per Microsoft's table (``tap``: to create a Temporary Access Pass, which takes an authentication
        administrator's role; ``revoke_sessions``: also to sign the target out, which a Password Administrator may
        not). Otherwise the one sentence to tell the requester. Entra or Graph being
        unreachable raises (``EntraUnavailableError``, ``GraphError``): that is not a verdict on the agent."""
        service = self.rules.service_mode
        key = SERVICE_LINK_KEY if service else requester_slack_user
        try:
            link, _ = self._token(key, service=service)
        except (NotLinkedError, EntraReauthRequiredError) as e:
            return str(e)
        roles = self._fresh_roles(link, fallback=False)
        assert roles is not None
        if not can_reset(roles, target_roles, tap=tap):
            return messages.links.role_too_weak(link.upn, resetting_roles(roles, tap=tap),
                                                blocking_roles(roles, target_roles, tap=tap),
                                                roles_needed(target_roles, tap=tap), service=service, tap=tap)
        if revoke_sessions and not can_revoke_sessions(roles, target_roles):
            return messages.links.may_not_revoke_sessions(link.upn, service=service)
        return None

    def _token(self, key: str, *, service: bool) -> tuple[AgentLink, DelegatedToken]:
        with self.reading() as session:
            link = store.links.get_link(session, slack_user=key)
        if link is None:
            sentence = messages.links.service_not_linked(self.rules.service_upn or "") if service else \
                messages.links.not_linked()
            raise NotLinkedError(sentence, slack_user=key, service=service)
        account = LinkedAccount(upn=link.upn, oid=link.oid, home_account_id=link.home_account_id,
                                encrypted_cache=link.encrypted_cache, display_name=link.display_name)
        try:
            token = self.tokens.token_for(account)
        except EntraReauthRequiredError as e:
            raise EntraReauthRequiredError(messages.links.link_reauth(link.upn, service=service), code=e.code,
                                           request_id=e.request_id, status=e.status) from None
        if token.encrypted_cache != link.encrypted_cache:
            with self.begin() as session:
                store.links.replace_link_cache(session, slack_user=key, expected=link.encrypted_cache,
                                               encrypted_cache=token.encrypted_cache, at=self.clock())
        return link, token

    def _fresh_roles(self, link: AgentLink, *, fallback: bool) -> list[str] | None:
        """The account's Entra roles read now (and recorded); with ``fallback``, the recorded ones when Graph
        cannot be asked."""
        try:
            roles = list(self.graph.directory_roles_of(link.oid))
        except ResetbotError:
            if not fallback:
                raise
            return store.links.link_roles(link)
        with self.begin() as session:
            store.links.set_link_roles(session, slack_user=link.slack_user, oid=link.oid, roles=roles, at=self.clock())
        return roles

    def _audit(self, draft: AuditDraft) -> None:
        with self.begin() as session:
            store.audit.append_audit(session, draft=draft)

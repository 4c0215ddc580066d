"""Everything the stand-in's routes share: the tenant's URLs, directory, tokens, faults, logs, flows.

The aiohttp routes run on one event loop thread and the control API is served by the same loop, so plain
Python structures need no locks; only the blocking LDAP work leaves the loop (in a worker thread).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from lab.entra import config
from lab.entra.directory import EntraUser
from lab.entra.operations import Operation
from lab.entra.passwords import PasswordHistory
from lab.entra.rbac import RoleAssignment, RoleGroup, fixture_assignments
from lab.entra.tokens import AppCredentials, TokenIssuer
from lab.entra.wire import utcnow
from lab.entra.writeback import WritebackAgent

#: ``lost``: Entra reports the operation ``succeeded`` but nothing reaches AD, as when the relay took the request
#: and the on-prem agent went away before writing it (or wrote to a DC the bot does not read). Only the bot's
#: on-prem follow-up can notice; this mode exists to prove that it does.
WritebackMode = Literal["ok", "disabled", "offline", "lost"]
_WRITEBACK_MODES = ("ok", "disabled", "offline", "lost")


class FaultError(ValueError):
    """A POST /faults body the stand-in cannot apply; the message says which field and why."""


@dataclass
class Faults:
    """The control API's switches (LAB.md names), plus ``offline_delay_ms``."""

    writeback: WritebackMode = "ok"
    latency_ms: int = 0
    throttle_next: int = 0
    retry_after: float = 1
    fail_next_5xx: int = 0
    token_endpoint_down: bool = False
    offline_delay_ms: int = config.DEFAULT_OFFLINE_DELAY_MS
    #: Entra Connect stalled this many minutes ago: both sync cycles report times at least this old.
    sync_lag_minutes: int = 0
    #: Application permissions left out of app tokens issued from now on (admin consent withdrawn for them).
    revoked_app_roles: list[str] = field(default_factory=list)
    #: New resetPassword operations stay ``running`` (nothing reaches AD) until this is switched off: lets a test
    #: act "while Graph works" (kill or stop the bot) at a moment of its choosing instead of racing a delay.
    hold_operations: bool = False
    #: Retry-After (seconds) on resetPassword's 202; 0 sends none. Microsoft documents the header as optional and
    #: its examples of this call carry none, so the lab sends none unless a test asks for one.
    reset_retry_after: float = config.RESET_RETRY_AFTER_S
    #: The tenant has no Entra ID P2 (or Governance) licence, so no PIM: roleEligibilityScheduleInstances answers
    #: 400 AadPremiumLicenseRequired, as Graph does there.
    pim_unlicensed: bool = False
    #: When set, ``throttle_next`` and ``fail_next_5xx`` answer only Graph calls whose path holds this text (e.g.
    #: ``resetPassword``): Graph throttles per resource, and a test can aim at one call among the lookups around it.
    fault_path: str = ""
    #: Conditional Access blocks the device-code flow (its "authentication flows" condition): a device-code
    #: sign-in the person completes is refused at the next poll with AADSTS53003, as Entra answers it.
    device_code_blocked: bool = False
    #: When set, id tokens name this tenant id in ``tid`` instead of the lab's: a sign-in made in another
    #: tenant (what a multi-tenant authority or a swapped authority would hand back), for the bot to refuse.
    sign_in_tenant: str = ""
    #: When set, Graph's answer to a call whose path holds this text waits, after Graph acted on it, until this is
    #: cleared: a test kills the bot while the answer is on its way (e.g. a TAP made that nobody received) without
    #: racing a delay. ``POST /reset`` releases every held answer.
    hold_answers_to: str = ""

    def update(self, body: dict[str, Any]) -> None:
        """Apply the fields present in ``body``; validate all of them before changing any."""
        unknown = set(body) - set(self.as_json())
        if unknown:
            raise FaultError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        changes = {name: _checked(name, value) for name, value in body.items()}
        for name, value in changes.items():
            setattr(self, name, value)

    def as_json(self) -> dict[str, Any]:
        return {
            "writeback": self.writeback,
            "latency_ms": self.latency_ms,
            "throttle_next": self.throttle_next,
            "retry_after": self.retry_after,
            "fail_next_5xx": self.fail_next_5xx,
            "token_endpoint_down": self.token_endpoint_down,
            "offline_delay_ms": self.offline_delay_ms,
            "sync_lag_minutes": self.sync_lag_minutes,
            "revoked_app_roles": list(self.revoked_app_roles),
            "hold_operations": self.hold_operations,
            "reset_retry_after": self.reset_retry_after,
            "pim_unlicensed": self.pim_unlicensed,
            "fault_path": self.fault_path,
            "device_code_blocked": self.device_code_blocked,
            "sign_in_tenant": self.sign_in_tenant,
            "hold_answers_to": self.hold_answers_to,
        }

    def reset_retry_after_header(self) -> dict[str, str]:
        """resetPassword's 202 Retry-After, when one is set."""
        value = self.reset_retry_after
        if not value:
            return {}
        return {"Retry-After": str(int(value)) if float(value).is_integer() else str(value)}

    def retry_after_header(self) -> str:
        value = self.retry_after
        return str(int(value)) if float(value).is_integer() else str(value)


def _released() -> asyncio.Event:
    event = asyncio.Event()
    event.set()
    return event


DeviceStatus = Literal["pending", "approved", "declined", "expired", "redeemed"]


@dataclass
class DeviceFlow:
    device_code: str
    user_code: str
    client_id: str
    requested: tuple[str, ...]  # scopes as the client wrote them (echoed in the token answer)
    granted: tuple[str, ...]  # Graph permission names that go into scp
    created: dt.datetime
    expires_at: dt.datetime
    interval: int = config.DEVICE_CODE_INTERVAL_S
    status: DeviceStatus = "pending"
    person_key: str | None = None
    last_poll: float | None = None

    def as_control(self) -> dict[str, Any]:
        return {"user_code": self.user_code, "client_id": self.client_id, "scopes": list(self.requested),
                "status": self.status, "expires_at": self.expires_at.isoformat(), "interval": self.interval}

    def polled_too_soon(self, now: float) -> bool:
        """Whether a poll at ``now`` (monotonic) comes sooner than the interval this flow was given allows. msal
        sleeps exactly ``interval`` seconds between polls, so a poll from it arrives a little later than that; the
        slack (one second, half the interval when that is shorter) only forgives a clock's jitter, so a client that
        polls faster than it was told still gets slow_down at a 1 s interval too."""
        if self.last_poll is None:
            return False
        return now - self.last_poll < self.interval - min(1.0, self.interval / 2)


@dataclass(frozen=True)
class AuthRequest:
    """An ``/authorize`` request whose sign-in page is shown: what the code issued for it will be bound to."""

    client_id: str
    redirect_uri: str
    state: str
    nonce: str | None
    code_challenge: str
    code_challenge_method: str  # "S256", "plain", or "" (no PKCE)
    requested: tuple[str, ...]
    granted: tuple[str, ...]
    expires_at: dt.datetime
    login_hint: str = ""
    response_mode: str = "query"  # "query" (a redirect) or "form_post" (a page that posts the answer)


@dataclass(frozen=True)
class AuthCode:
    """An authorization code: the request it answers, who signed in, and whether it was redeemed (once only)."""

    request: AuthRequest
    person_key: str
    expires_at: dt.datetime
    redeemed: bool = False


@dataclass
class State:
    base: str  # https://127.0.0.1:PORT
    credentials: AppCredentials
    issuer: TokenIssuer
    users: dict[str, EntraUser]  # by Entra object id
    history: PasswordHistory
    agent: WritebackAgent
    initial_passwords: dict[str, str]
    app_roles: tuple[str, ...] = config.APP_ROLES
    tenant_id: str = config.TENANT_ID
    started: dt.datetime = field(default_factory=utcnow)
    faults: Faults = field(default_factory=Faults)
    operations: dict[str, Operation] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    device_flows: dict[str, DeviceFlow] = field(default_factory=dict)
    #: Interactive sign-ins: pages shown (by their form's context id), codes issued, the public client's
    #: registered redirect URIs (``POST /control/redirect_uris``).
    auth_requests: dict[str, AuthRequest] = field(default_factory=dict)
    auth_codes: dict[str, AuthCode] = field(default_factory=dict)
    redirect_uris: set[str] = field(default_factory=set)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    #: One reset at a time on-prem, as the writeback agent works through its queue (keeps history exact).
    writeback_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    sync_frozen_at: dt.datetime | None = None
    #: Set unless ``hold_operations`` is on; held operations wait for it (see ``hold``).
    released: asyncio.Event = field(default_factory=_released)
    #: Set unless ``hold_answers_to`` is set; held answers wait for it (see ``hold_answer``).
    answers_released: asyncio.Event = field(default_factory=_released)
    #: Counts ``reset()`` calls, so an operation held across a reset knows it was dropped.
    generation: int = 0
    #: The application permissions the stand-in started with (``POST /control/consent`` changes ``app_roles``;
    #: ``reset()`` puts these back).
    initial_app_roles: tuple[str, ...] = ()
    #: Role-assignable groups made through ``POST /control/groups`` (none at start), by name.
    role_groups: dict[str, RoleGroup] = field(default_factory=dict)
    #: The polling interval (whole seconds) announced to new device flows and enforced with slow_down: Microsoft's 5
    #: unless the stand-in was started with another; ``POST /control/device/interval`` changes it for flows started
    #: from then on, and ``reset()`` puts the start value back.
    device_code_interval_s: int = config.DEVICE_CODE_INTERVAL_S
    initial_device_code_interval_s: int = 0

    def __post_init__(self) -> None:
        self.initial_app_roles = self.app_roles
        self.initial_device_code_interval_s = self.device_code_interval_s

    # -- URLs -------------------------------------------------------------------------------------------
    @property
    def authority(self) -> str:
        return f"{self.base}/{self.tenant_id}"

    @property
    def graph_base(self) -> str:
        return f"{self.base}/v1.0"

    @property
    def control(self) -> str:
        return f"{self.base}/control"

    @property
    def token_endpoint(self) -> str:
        return f"{self.authority}/oauth2/v2.0/token"

    @property
    def device_endpoint(self) -> str:
        return f"{self.authority}/oauth2/v2.0/devicecode"

    # -- directory --------------------------------------------------------------------------------------
    def user(self, id_or_upn: str) -> EntraUser | None:
        key = id_or_upn.strip().lower()
        for u in self.users.values():
            if u.id == key or u.person.upn.lower() == key:
                return u
        return None

    def user_by_key(self, key: str) -> EntraUser | None:
        return next((u for u in self.users.values() if u.person.key == key), None)

    def role_assignments(self) -> list[RoleAssignment]:
        """Every role assignment in the tenant, active and eligible: people's and role-assignable groups'."""
        return ([a for u in self.users.values() for a in u.assignments]
                + [a for g in self.role_groups.values() for a in g.assignments])

    def held_roles(self, user: EntraUser) -> tuple[str, ...]:
        """What Entra's reset and authentication-method checks count on a target: its active roles in any scope,
        its own and those of the role-assignable groups it is an active member of."""
        through_groups = [a.role for g in self.role_groups.values() if user.id in g.members
                          for a in g.assignments if not a.eligible]
        return tuple(dict.fromkeys([*user.held_roles, *through_groups]))

    def _cycle(self, period_s: int) -> dt.datetime:
        """The last time a sync cycle of ``period_s`` ran: cycles started 10 minutes before the lab did, and
        stop while the writeback fault is "offline" (the Connect server is down, so nothing syncs). With
        ``sync_lag_minutes`` the clock they are read at is that far back (a Connect server that stalled then)."""
        epoch = self.started - dt.timedelta(minutes=10)
        now = (self.sync_frozen_at or utcnow()) - dt.timedelta(minutes=self.faults.sync_lag_minutes)
        cycles = int((now - epoch).total_seconds() // period_s)
        return epoch + dt.timedelta(seconds=cycles * period_s)

    def last_sync(self) -> dt.datetime:
        return self._cycle(config.SYNC_CYCLE_S)

    def last_password_sync(self) -> dt.datetime:
        return self._cycle(config.PASSWORD_SYNC_CYCLE_S)

    def set_writeback(self, mode: WritebackMode) -> None:
        if mode == "offline" and self.sync_frozen_at is None:
            self.sync_frozen_at = utcnow()
        elif mode != "offline":
            self.sync_frozen_at = None

    def set_hold(self, hold: bool) -> None:
        """Hold new resetPassword operations, or release every held one (switching the fault off)."""
        if hold:
            self.released.clear()
        else:
            self.released.set()

    def set_answer_hold(self, hold: bool) -> None:
        """Hold the answers to the calls ``hold_answers_to`` names, or release every held one."""
        if hold:
            self.answers_released.clear()
        else:
            self.answers_released.set()

    async def hold_answer(self) -> None:
        """Wait while answers are held (the call was made: only its answer waits)."""
        await self.answers_released.wait()

    async def hold(self) -> bool:
        """Wait while operations are held; False when the lab was reset meanwhile. A held operation dropped by a
        reset must end without touching AD: otherwise a test's teardown reset would let a stale writeback land
        in the middle of the next test."""
        generation = self.generation
        await self.released.wait()
        return generation == self.generation

    def spawn(self, coro: Any) -> None:
        """Run ``coro`` in the background, keeping a reference so it is not collected (and can be cancelled)."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def reset(self, *, history: bool) -> None:
        """POST /control/reset: faults off, logs and operations and device flows cleared, the app's consented
        permissions, the device-code interval, everyone's role assignments, sign-in sessions (never revoked) and
        Temporary Access Passes (none) back to the start; held operations are dropped (they never reach AD), held
        answers released."""
        self.faults = Faults()
        self.set_writeback("ok")
        self.generation += 1
        self.set_hold(False)
        self.set_answer_hold(False)
        self.operations.clear()
        self.requests.clear()
        self.device_flows.clear()
        self.auth_requests.clear()
        self.auth_codes.clear()
        self.redirect_uris.clear()
        self.app_roles = self.initial_app_roles
        self.device_code_interval_s = self.initial_device_code_interval_s
        for user in self.users.values():
            user.assignments = fixture_assignments(user.person)
            user.mail = None
            user.display_name = None
            user.sign_in_sessions_valid_from, user.revocations = user.created, 0
            user.taps = []
        self.role_groups.clear()
        if history:
            self.history.forget()
            for key, password in self.initial_passwords.items():
                self.history.seed(key, password)


#: The text fields of ``Faults`` and what their text must be.
_TEXT_FAULTS = {"fault_path": "text (empty: every Graph call)",
                "hold_answers_to": "text (empty: no answer held)",
                "sign_in_tenant": "a tenant id (empty: the lab's own)"}


#: The fault fields that are seconds: (whether 0 is allowed, what they must be).
_SECONDS_FAULTS = {"retry_after": (False, "a positive number of seconds"),
                   "reset_retry_after": (True, "a number of seconds, 0 or more (0: no Retry-After)")}


def _checked(name: str, value: Any) -> Any:
    """``value`` as a fault field takes it, or a FaultError saying what it must be."""
    if name == "writeback":
        if value not in _WRITEBACK_MODES:
            raise FaultError(f"writeback must be one of {', '.join(_WRITEBACK_MODES)}")
    elif name in ("token_endpoint_down", "hold_operations", "pim_unlicensed", "device_code_blocked"):
        if not isinstance(value, bool):
            raise FaultError(f"{name} must be true or false")
    elif name in _TEXT_FAULTS:
        if not isinstance(value, str):
            raise FaultError(f"{name} must be {_TEXT_FAULTS[name]}")
    elif name == "revoked_app_roles":
        if not isinstance(value, list) or not all(isinstance(r, str) and r for r in value):
            raise FaultError("revoked_app_roles must be a list of application permission names")
    elif name in _SECONDS_FAULTS:
        zero_ok, what = _SECONDS_FAULTS[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                or not (value > 0 or (zero_ok and value == 0)):
            raise FaultError(f"{name} must be {what}")
    elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FaultError(f"{name} must be a non-negative integer")
    return list(value) if isinstance(value, list) else value

"""The persisted tables: reset requests, approvals and the hash-chained audit trail. Data only, no rules.

Conventions kept here so that every query and every migration agrees:

- every timestamp is UTC and timezone-aware in Python (``UTCDateTime``); SQLite has no timezone type, so the
  column stores naive UTC and gives it back aware, and a naive value is refused at bind time rather than guessed;
- enum-valued columns are plain strings (no native PostgreSQL ENUM), so adding a state is not a schema change;
- constraint and index names follow ``NAMING_CONVENTION``, so Alembic (a later issue) can autogenerate, alter and
  drop them by name on both databases;
- no password, temporary password or TAP is ever stored in these tables; the audit detail is checked for keys
  that look like one (``bot.domain.audit.canonical_detail``).
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from bot.domain.lifecycle import RequestState

#: Names for constraints and indexes, set before any table is declared (SQLAlchemy names them at declaration).
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION

#: The single row id of ``AuditHead``.
AUDIT_HEAD_ID = 1

#: Crockford's base-32 alphabet: digits and upper-case letters without I, L, O, U, so an id read over the phone
#: or typed from a screenshot has no look-alikes. 32**6 ~ 10**9 ids; a collision is retried on insert.
REQUEST_ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
REQUEST_ID_PREFIX = "R-"
REQUEST_ID_LENGTH = 6
_TYPO_FIXES = str.maketrans({"O": "0", "I": "1", "L": "1"})
_REQUEST_ID_RE = re.compile(rf"R-[{REQUEST_ID_ALPHABET}]{{{REQUEST_ID_LENGTH}}}")


def new_request_id() -> str:
    """A fresh, unguessable request id such as ``R-7K3Q9M`` (``secrets``: ids appear in public channels)."""
    return REQUEST_ID_PREFIX + "".join(secrets.choice(REQUEST_ID_ALPHABET) for _ in range(REQUEST_ID_LENGTH))


def normalize_request_id(text: str) -> str | None:
    """The canonical id for what a person typed (``r-7k3q9m``, ``7K3Q9M``, ``R-7K3Q9O``), or None if it is not one.

    Case is ignored, the prefix is optional, and O/I/L are read as 0/1/1 as Crockford's scheme intends.
    """
    body = text.strip().upper().removeprefix(REQUEST_ID_PREFIX).replace("-", "").translate(_TYPO_FIXES)
    candidate = REQUEST_ID_PREFIX + body
    return candidate if _REQUEST_ID_RE.fullmatch(candidate) else None


def utcnow() -> datetime:
    """The current instant, UTC-aware; the one clock the store uses when the caller does not pass ``now``."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always UTC-aware in Python, on SQLite (naive UTC text) and PostgreSQL (timestamptz).

    Naive datetimes are refused: an instant without a zone is a bug waiting to become a wrong expiry.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware (UTC) datetime")
        value = value.astimezone(UTC)
        # SQLite stores text; keeping it naive-UTC keeps every stored value the same width, so that string
        # comparison (expires_at <= :now) is time comparison.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _state_type() -> sa.Enum:
    """A ``RequestState`` column stored as its value in a VARCHAR (no native ENUM, no CHECK to migrate)."""
    return sa.Enum(
        RequestState,
        native_enum=False,
        create_constraint=False,
        length=32,
        values_callable=lambda enum: [member.value for member in enum],
        validate_strings=True,
    )


class ResetRequest(SQLModel, table=True):
    """One ``/reset`` request, from creation to its final state.

    ``state`` only ever changes through ``bot.store.requests.transition`` (a compare-and-set), which also bumps
    ``version``, stamps ``updated_at`` and copies the old state into ``previous_state`` in the same UPDATE, so the
    audit event can name the state the request really left.
    """

    __tablename__: ClassVar[Any] = "reset_request"
    __table_args__: ClassVar[Any] = (
        sa.Index(None, "state", "expires_at"),
        sa.CheckConstraint("approvals_required BETWEEN 1 AND 2", name="approvals_required"),
        sa.CheckConstraint("version >= 1", name="version"),
    )

    id: str = Field(default_factory=new_request_id, primary_key=True, max_length=16)
    #: Indexed: the abuse limits count the requests of the last hour at every ``/reset``.
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    #: Bumped by every transition and message attachment; lets a caller detect that its copy is stale.
    version: int = Field(default=1)

    #: Slack user id of the agent who asked, and how they were shown at the time.
    requester: str = Field(index=True, max_length=32)
    requester_display: str = Field(default="", max_length=255)

    #: The target as resolved at request time. ``target_upn`` is stored lower-case (UPNs are case-insensitive),
    #: so "all requests for this person" is an index lookup.
    target_entra_id: str = Field(max_length=64, index=True)
    target_upn: str = Field(index=True, max_length=320)
    target_sam: str | None = Field(default=None, max_length=64)
    target_dn: str | None = Field(default=None, max_length=1024)
    #: The AD account's objectGUID, read when the request was made: the reset finds (and ``--unlock`` writes to)
    #: that very account, wherever a rename or move has put it since; a DN may name another account by then.
    #: In its braced string form, as ldap3 reads it (``{xxxxxxxx-...}``: 38 characters).
    target_guid: str | None = Field(default=None, max_length=38)
    target_display: str = Field(default="", max_length=255)

    #: What made this request, unique: the slash command's trigger_id. A redelivered command (Slack retries an
    #: envelope whose ack it did not see) then finds the request it already made instead of making a second.
    source_key: str | None = Field(default=None, max_length=255, unique=True)
    #: The target's Slack id (for the DM and to refuse their own approval), when they are in Slack.
    target_slack_id: str | None = Field(default=None, max_length=32)
    #: Who may approve, fixed when the request is made: the target's directory manager in Slack (if the rules
    #: count managers) and the handle of the approver group (if they count groups; membership is checked live).
    manager_slack_id: str | None = Field(default=None, max_length=32)
    approver_group: str | None = Field(default=None, max_length=64)
    #: Comma-separated ``bot.domain.rules.Protection`` reasons; empty when the target is not protected.
    protected: str = Field(default="", max_length=128)
    #: Target confirmation by DM: ``off``, ``pending``, ``yes`` or ``no`` (``bot.domain.rules.Confirmation``).
    confirmation: str = Field(default="off", max_length=16)
    #: Who may reveal the temporary password (``bot.settings.Delivery``: ``agent`` or ``target``), fixed when the
    #: request is made: a later change of ``RESETBOT_DELIVERY`` must not hand the password to someone else. None
    #: only for a request made before this was stored (then the setting at reveal time decides, as it did).
    delivery: str | None = Field(default=None, max_length=16)

    #: How the caller was verified (``bot.domain.verification``): ``verification`` is a ``VerifyState`` value,
    #: ``verify_method`` the method of the last attempt, ``verified_at`` when it succeeded and ``verified_by`` the
    #: agent who ran it. A one-time code lives only sealed (``verify_sealed``: Fernet under the sealing key, which
    #: the database never holds) until ``verify_expires_at``, with ``verify_tries`` wrong entries so far; a Duo push
    #: is ``verify_txid``. Cleared when the attempt ends, and the sealed code by any move to a final state.
    verification: str = Field(default="none", max_length=16)
    verify_method: str | None = Field(default=None, max_length=16)
    verified_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    verified_by: str | None = Field(default=None, max_length=32)
    verify_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    verify_tries: int = Field(default=0)
    verify_sealed: str | None = Field(default=None, sa_type=sa.Text, repr=False)
    verify_txid: str | None = Field(default=None, max_length=128)

    reason: str = Field(default="", sa_type=sa.Text)
    #: Also clear an AD lockout (``--unlock``); issue a Temporary Access Pass instead of a password (``--tap``).
    unlock: bool = Field(default=False)
    #: Also revoke the target's sign-in sessions once the credential is set (``--revoke-sessions``).
    revoke_sessions: bool = Field(default=False)
    tap: bool = Field(default=False)

    state: RequestState = Field(default=RequestState.PENDING_APPROVAL, sa_type=_state_type(), nullable=False)
    previous_state: RequestState | None = Field(default=None, sa_type=_state_type(), nullable=True)
    #: 1, or 2 for a protected target (two distinct people).
    approvals_required: int = Field(default=1)

    #: Where the request message lives in Slack; the thread every later message goes to. Set once it is posted.
    channel_id: str | None = Field(default=None, max_length=32)
    thread_ts: str | None = Field(default=None, max_length=32)

    #: Computed once at creation (``bot.domain.lifecycle.deadlines``); the scheduler compares them with now.
    escalate_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    #: Set by ``bot.store.requests.mark_escalated`` (a compare-and-set), so the escalation happens once across replicas.
    escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    #: When an approver (or expiry, or a cancel) decided the request's fate.
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)

    #: Graph's long-running operation id for the reset, and the plain-words verdict kind it ended with.
    graph_operation_id: str | None = Field(default=None, max_length=255)
    #: The operation's URL, stored the moment Graph accepts the reset: a bot that dies while polling leaves the
    #: request ``resetting``, and whoever recovers it asks Graph here how it ended.
    operation_location: str | None = Field(default=None, max_length=2048)
    #: The account's ``pwdLastSet`` and ``msDS-KeyVersionNumber`` read just before the reset, stored with the
    #: operation: a recovered reset's landed check needs them as much as a live one's (without them a
    #: ``pwdLastSet`` of 0 proves nothing).
    baseline_pwd_last_set: int | None = Field(default=None, sa_type=sa.BigInteger, nullable=True)
    baseline_key_version: int | None = Field(default=None, nullable=True)
    #: The ``client-request-id`` of the reset's Graph call, stored with the baseline in the transaction that moves
    #: the request to ``resetting``: recovery names the call it asks about, and a request that has it (a release
    #: that records the baseline before Graph is called) can be checked against AD when no operation was stored.
    client_request_id: str | None = Field(default=None, max_length=64)
    verdict: str | None = Field(default=None, max_length=64)
    #: Who holds a ``resetting`` request (a random token per reset, or per recovery) and until when: the live
    #: process renews it while Graph works (retries and Retry-After included), so recovery takes only a reset
    #: whose holder stopped renewing. Both cleared when the reset ends; a lapsed lease is recovery's to take.
    lease_owner: str | None = Field(default=None, max_length=32)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class Approval(SQLModel, table=True):
    """One person's approval of one request. The primary key makes a second click by the same person a no-op,
    which is how "the same person approving twice counts once" is enforced by the database itself."""

    __tablename__: ClassVar[Any] = "approval"

    request_id: str = Field(foreign_key="reset_request.id", primary_key=True, max_length=16)
    approver: str = Field(primary_key=True, max_length=32)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class AuditEvent(SQLModel, table=True):
    """One append-only audit record, chained to its predecessor by ``prev_hash``.

    ``seq`` is assigned from ``AuditHead`` under its row lock rather than by a database sequence: sequences leave
    gaps on rollback, and here a gap must mean "a row was deleted". ``hash`` is
    ``bot.domain.audit.event_hash`` over every other column. No foreign key to ``reset_request``: refused
    actions may name a request that does not exist, and the trail must outlive any clean-up of requests.
    """

    __tablename__: ClassVar[Any] = "audit_event"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    request_id: str | None = Field(default=None, index=True, max_length=16)
    #: Slack user id, or ``system`` / ``scheduler`` for the bot itself.
    actor: str = Field(max_length=64)
    #: Indexed: the abuse limits look for their last alert (an action) at every ``/reset``.
    action: str = Field(max_length=64, index=True)
    from_state: str | None = Field(default=None, max_length=32)
    to_state: str | None = Field(default=None, max_length=32)
    correlation_id: str | None = Field(default=None, max_length=64)
    graph_operation_id: str | None = Field(default=None, max_length=255)
    verdict: str | None = Field(default=None, max_length=64)
    #: Canonical JSON text of a flat-ish object (sorted keys, compact); never a secret.
    detail: str = Field(default="{}", sa_type=sa.Text)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


class AuditHead(SQLModel, table=True):
    """The single row holding the chain's tip (last ``seq`` and its ``hash``).

    Every append UPDATEs it first, in the appending transaction: PostgreSQL then row-locks it until commit and
    SQLite already holds the database write lock, so appends are serialised and the chain can never fork.
    """

    __tablename__: ClassVar[Any] = "audit_head"
    __table_args__: ClassVar[Any] = (sa.CheckConstraint(f"id = {AUDIT_HEAD_ID}", name="single_row"),)

    id: int = Field(default=AUDIT_HEAD_ID, primary_key=True, sa_column_kwargs={"autoincrement": False})
    last_seq: int = Field(default=0)
    last_hash: str = Field(max_length=64)


class SealedSecret(SQLModel, table=True):
    """A temporary password (or TAP) waiting for its one reveal, encrypted with a key the database never holds.

    A click on Reveal first claims it (``claimed_until``: a compare-and-set, so one click at a time may show it),
    and deletes it only once Slack has opened the modal that shows it; a reveal that could not be shown gives
    the claim back. Deleted too by the sweep once ``expires_at`` passes (ten minutes), unless a reveal holds it.
    """

    __tablename__: ClassVar[Any] = "sealed_secret"

    request_id: str = Field(foreign_key="reset_request.id", primary_key=True, max_length=16)
    kind: str = Field(default="password", max_length=16)
    ciphertext: str = Field(sa_type=sa.Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    #: Until when a Reveal click holds it while Slack opens the modal (None: nobody does).
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class AgentLink(SQLModel, table=True):
    """An Entra account linked to a Slack user through the device-code sign-in (``/resetbot login``), or the
    service identity (``slack_user`` = ``SERVICE_LINK_KEY``).

    The msal token cache (refresh and access tokens) is held only as ``encrypted_cache``: Fernet ciphertext under
    the token-cache key from the settings, which the database never holds. No token is ever stored in clear.
    ``roles`` is the JSON list of Entra directory roles last read for the account (shown by ``/resetbot whoami``;
    readiness reads them afresh).
    """

    __tablename__: ClassVar[Any] = "agent_link"

    slack_user: str = Field(primary_key=True, max_length=64)
    upn: str = Field(max_length=320)
    oid: str = Field(max_length=64)
    display_name: str = Field(default="", max_length=255)
    home_account_id: str = Field(max_length=255)
    encrypted_cache: str = Field(sa_type=sa.Text, repr=False)
    linked_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    #: When the stored cache last changed because msal refreshed it (the refresh token rotated).
    refreshed_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    roles: str | None = Field(default=None, sa_type=sa.Text)
    roles_checked_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


#: ``AgentLink.slack_user`` of the service identity (no Slack user id looks like it).
SERVICE_LINK_KEY = "~service"


class BrowserSignIn(SQLModel, table=True):
    """A browser sign-in (``/resetbot login --browser``) waiting for Microsoft to send the agent's browser back.

    The callback may reach any replica, so the attempt lives here, not in memory: found by the SHA-256 of its
    ``state`` (the raw value travels only in the sign-in URL and the redirect), bound to the Slack user who asked
    and to this attempt, good until ``expires_at``, and used once (``used_at`` is set by a compare-and-set before
    the code is redeemed). msal's flow (the PKCE ``code_verifier`` and the ``nonce`` among it) is kept only as
    ``encrypted_flow``, Fernet ciphertext under the token-cache key.
    """

    __tablename__: ClassVar[Any] = "browser_sign_in"
    #: At most one waiting sign-in per person, and one for the service identity whoever started it (any approver
    #: may): a newer link retires the older one, and two started at once on PostgreSQL would otherwise each miss the
    #: other's (``store.links``). Partial on both databases: migration 0017 says so for each. Only SQLite's clause
    #: is repeated here, because naming PostgreSQL's imports its dialect at every start, on SQLite too (about
    #: 30 ms); the schema comes from the migrations, and the comparison with the models does not read the clause.
    __table_args__: ClassVar[Any] = (
        sa.Index("uq_browser_sign_in_waiting", "slack_user", unique=True,
                 sqlite_where=sa.text("used_at IS NULL AND NOT service")),
        sa.Index("uq_browser_sign_in_service_waiting", "service", unique=True,
                 sqlite_where=sa.text("used_at IS NULL AND service")),
    )

    state_hash: str = Field(primary_key=True, max_length=64)
    slack_user: str = Field(max_length=64)
    service: bool = Field(default=False)
    correlation_id: str = Field(max_length=64)
    encrypted_flow: str = Field(sa_type=sa.Text, repr=False)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    #: When a callback refused for this state (used, expired, replaced) was first audited and told to the agent:
    #: later replays of it are only logged, so whoever holds a used callback cannot spam the agent's DMs or the trail.
    refused_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class FollowUp(SQLModel, table=True):
    """One scheduled check after a successful reset: "did it land in AD?" or "did the user replace it?".

    The schedule lives here, not in the scheduler: a replica claims a due row with a compare-and-set
    (``pending`` → ``running`` with a lease), does the check, and finishes it with a second compare-and-set on its
    claim token, so each check runs once across replicas and restarts. A replica that dies mid-check leaves a
    ``running`` row whose lease runs out; another replica takes it over then. ``pwdLastSet`` values are AD's raw
    FILETIMEs (64-bit).
    """

    __tablename__: ClassVar[Any] = "follow_up"
    __table_args__: ClassVar[Any] = (
        sa.Index(None, "state", "due_at"),
        sa.UniqueConstraint("request_id", "kind", "step"),
    )

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(foreign_key="reset_request.id", index=True, max_length=16)
    #: ``bot.domain.followup_rules.FollowUpKind``; ``step`` orders the checks of one kind (0, 1, 2, ...).
    kind: str = Field(max_length=16)
    step: int = Field(default=0)
    #: The last check of its kind: its "not yet" is the final word (a warning, or "never replaced").
    final: bool = Field(default=False)
    state: str = Field(default="pending", max_length=16)
    due_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    #: "Landed" checks retry with backoff until this instant, then warn.
    deadline_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    attempts: int = Field(default=0)
    #: When the reset was made (the bot's clock) and the account's ``pwdLastSet`` just before it.
    reset_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    baseline_pwd_last_set: int | None = Field(default=None, sa_type=sa.BigInteger, nullable=True)
    #: The account's ``msDS-KeyVersionNumber`` just before the reset: "it moved" is the proof that it landed.
    baseline_key_version: int | None = Field(default=None, nullable=True)
    #: The running claim: a random token and when it lapses.
    claim: str | None = Field(default=None, max_length=32)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    #: ``bot.domain.followup_rules.Landed`` / ``Replaced`` value, and the ``pwdLastSet`` it was decided on.
    outcome: str | None = Field(default=None, max_length=32)
    seen_pwd_last_set: int | None = Field(default=None, sa_type=sa.BigInteger, nullable=True)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class SeenSlackRequest(SQLModel, table=True):
    """A signed HTTP request from Slack that was already served, remembered by its signature.

    Bolt checks the signature and refuses timestamps more than five minutes off, but inside that window the
    same signed request sent again (captured and replayed, or resent by a proxy) would be served again. The
    primary key makes the second insert of a signature fail on whichever replica it reaches, so a replay is
    refused everywhere, not just where the first copy landed. Rows older than the window are deleted.
    """

    __tablename__: ClassVar[Any] = "seen_slack_request"

    #: ``X-Slack-Signature`` (``v0=`` and 64 hex digits): an HMAC over timestamp and body, unique per request.
    signature: str = Field(primary_key=True, max_length=128)
    seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=True)


# --- health pings ------------------------------------------------------------------------------------------------

class HealthSlot(SQLModel, table=True):
    """One claimed run of a scheduled health job: a round of pings (``kind`` ``round``, ``slot`` =
    floor(epoch seconds / interval)) or a daily summary (``kind`` ``summary``, ``slot`` = the day's ordinal).

    Every replica's scheduler ticks; the one whose INSERT of the slot's row succeeds runs it, the others skip.
    So a round fires once per interval however many replicas run, and a restart loses nothing: the schedule is
    the clock plus this table.
    """

    __tablename__: ClassVar[Any] = "health_slot"

    kind: str = Field(primary_key=True, max_length=16)
    slot: int = Field(primary_key=True, sa_type=sa.BigInteger, sa_column_kwargs={"autoincrement": False})
    #: Which process ran it (host and pid), for an operator reading the table after an incident.
    runner: str = Field(max_length=255)
    claimed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class HealthResult(SQLModel, table=True):
    """One check's result in one round. ``detail`` is a sentence for ops (never a secret)."""

    __tablename__: ClassVar[Any] = "health_result"
    __table_args__: ClassVar[Any] = (sa.Index(None, "check_name", "round_slot"),)

    id: int | None = Field(default=None, primary_key=True)
    round_slot: int = Field(sa_type=sa.BigInteger, index=True)
    check_name: str = Field(max_length=32)
    ok: bool
    detail: str = Field(default="", sa_type=sa.Text)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class HealthTransition(SQLModel, table=True):
    """A change of health state, posted to ops once: ``seq`` is the previous transition's plus one, so of two
    replicas seeing the same change only one INSERT succeeds, and only its author posts.

    ``failing`` is the JSON list of failing checks after the change (empty: healthy); ``changed`` the JSON object
    of the checks whose result changed, ``{check: bool}`` (true: it recovered, false: it started failing). The
    details of a failure stay in its ``HealthResult`` rows, so a transition row never repeats them.
    """

    __tablename__: ClassVar[Any] = "health_transition"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    round_slot: int = Field(sa_type=sa.BigInteger)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    from_state: str = Field(max_length=16)
    to_state: str = Field(max_length=16)
    failing: str = Field(default="[]", sa_type=sa.Text)
    changed: str = Field(default="{}", sa_type=sa.Text)


# --- the outbox ----------------------------------------------------------------------------------------------------

class OutboxMessage(SQLModel, table=True):
    """A Slack message the bot owes someone, written in the same transaction as the decision it announces (a
    follow-up's finish, a health transition, a day's summary claim), so a recorded outcome always has its message.

    ``bot.services.outbox`` delivers it: a replica claims a due row with a compare-and-set (``pending`` →
    ``sending`` with a lease, like ``FollowUp``), posts it, and marks it ``sent`` on its claim; a failed post is
    ``pending`` again at ``next_at`` (capped backoff) until the give-up horizon, then ``given_up``. ``text`` is the
    sentence as it was decided, and ``blocks`` its Block Kit JSON when it has buttons (a reset's Reveal button, the
    target's "This wasn't me"). Neither ever holds a password: the reset's sentences name the person and the request,
    and its buttons carry only the request id; the password stays sealed until its one reveal, in a modal.
    """

    __tablename__: ClassVar[Any] = "outbox_message"
    __table_args__: ClassVar[Any] = (
        sa.Index(None, "state", "next_at"),
        sa.Index(None, "channel", "thread_ts", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    #: ``thread`` (a reply in ``thread_ts`` of ``channel``), ``dm`` (``channel`` is the person's Slack user id) or
    #: ``channel`` (a top-level message in ``channel``).
    kind: str = Field(max_length=16)
    channel: str = Field(max_length=32)
    thread_ts: str | None = Field(default=None, max_length=32)
    text: str = Field(sa_type=sa.Text)
    #: Compact JSON of the message's Block Kit blocks, or None for plain text (``text`` is then all it says, and
    #: with blocks it is Slack's fallback for notifications).
    blocks: str | None = Field(default=None, sa_type=sa.Text)
    #: What the message announces, for the log and the give-up audit (``followup.landed``, ``reset.verdict``).
    origin: str = Field(default="", max_length=64)
    #: The request it belongs to, if any (the give-up is audited on it).
    request_id: str | None = Field(default=None, max_length=16)
    state: str = Field(default="pending", max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    next_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    attempts: int = Field(default=0)
    claim: str | None = Field(default=None, max_length=32)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    #: Slack's error code of the last failed post (``ratelimited``, ``internal_error``, ...), never its text.
    last_error: str | None = Field(default=None, max_length=64)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    #: The posted message's ``ts``, once sent.
    ts: str | None = Field(default=None, max_length=32)
    given_up_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)

"""Queries over the request, approval and audit tables. Keyword-only, session passed in, no product rules.

The caller owns the transaction (``with factory.begin() as session:``) and should end it right after the
store call: a transition or an audit append holds row locks — and the audit head, which every appender needs —
until commit. Nothing here commits.

Concurrency contract:

- ``transition`` is one conditional UPDATE (``WHERE id = :id AND state IN (:expected)``); whoever's UPDATE
  matches wins, everyone else gets ``None``. Only the winner appends an audit event. A lost race is *not*
  audited: it is a duplicate click, a Slack redelivery or a second replica doing the same job, and nothing was
  refused — the action the person asked for happened, just not through this call. Auditing it would let one
  click storm write fifty events and queue fifty writers on the audit head. Refusals the product decides (an
  ineligible approver, self-approval, ...) are audited by the service with ``append_audit`` and action
  ``refused``.
- ``append_audit`` first UPDATEs the single ``audit_head`` row: PostgreSQL row-locks it until commit, SQLite
  already holds the write lock (BEGIN IMMEDIATE), so appends are serialised and the chain cannot fork.
- Lock order is request row, then audit head. Within one transaction, do any ``transition`` before an
  unrelated ``append_audit``, never the reverse, or two transactions can deadlock on PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import datetime
from typing import Any, NamedTuple, cast

import sqlalchemy as sa
from sqlalchemy import event, orm
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot import metrics
from bot.domain.audit import GENESIS_HASH, AuditDraft, canonical_detail, event_hash
from bot.domain.lifecycle import RequestState, can_transition
from bot.errors import RequestNotFoundError
from bot.models import (
    AUDIT_HEAD_ID,
    AgentLink,
    Approval,
    AuditEvent,
    AuditHead,
    FollowUp,
    HealthResult,
    HealthSlot,
    HealthTransition,
    OutboxMessage,
    ResetRequest,
    SealedSecret,
    SeenSlackRequest,
    new_request_id,
    utcnow,
)

#: Columns a transition may set besides ``state`` (which it sets) and the bookkeeping it does itself
#: (``previous_state``, ``version``, ``updated_at``). Anything else is a programming error.
TRANSITION_COLUMNS: frozenset[str] = frozenset({"decided_at", "graph_operation_id", "verdict"})

_ID_ATTEMPTS = 5

log = logging.getLogger(__name__)

_AFTER_COMMIT = "resetbot_after_commit"


def _after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run ``action`` once the session's transaction commits; never if it rolls back (so a metric counts only
    what the database really holds)."""
    session.info.setdefault(_AFTER_COMMIT, []).append(action)


@event.listens_for(orm.Session, "after_commit")
def _run_after_commit(session: orm.Session) -> None:
    for action in session.info.pop(_AFTER_COMMIT, []):
        try:
            action()
        except Exception:  # a metric must never fail a committed change
            log.exception("after-commit action failed")


@event.listens_for(orm.Session, "after_soft_rollback")
def _drop_after_commit(session: orm.Session, previous_transaction: orm.SessionTransaction) -> None:
    session.info.pop(_AFTER_COMMIT, None)


# --- requests -------------------------------------------------------------------------------------------------


def create_request(
    session: Session,
    *,
    requester: str,
    target_entra_id: str,
    target_upn: str,
    escalate_at: datetime,
    expires_at: datetime,
    audit: AuditDraft,
    requester_display: str = "",
    target_display: str = "",
    target_sam: str | None = None,
    target_dn: str | None = None,
    reason: str = "",
    unlock: bool = False,
    tap: bool = False,
    approvals_required: int = 1,
    target_slack_id: str | None = None,
    manager_slack_id: str | None = None,
    approver_group: str | None = None,
    protected: str = "",
    confirmation: str = "off",
    source_key: str | None = None,
    created_at: datetime | None = None,
) -> ResetRequest | None:
    """Insert a new request in ``pending_approval`` with a fresh id, and audit its creation (None → pending).

    The id is random; on the (one in ~10**9) chance it already exists the insert is retried with another id
    inside a savepoint, so the caller's transaction survives. Returns None (and audits nothing) when a request
    with the same ``source_key`` exists already: the same command delivered twice makes one request.
    """
    now = created_at or utcnow()
    for _ in range(_ID_ATTEMPTS):
        request = ResetRequest(
            id=new_request_id(),
            created_at=now,
            updated_at=now,
            requester=requester,
            requester_display=requester_display,
            target_entra_id=target_entra_id,
            target_upn=target_upn.lower(),
            target_sam=target_sam,
            target_dn=target_dn,
            target_display=target_display,
            reason=reason,
            unlock=unlock,
            tap=tap,
            approvals_required=approvals_required,
            target_slack_id=target_slack_id,
            manager_slack_id=manager_slack_id,
            approver_group=approver_group,
            protected=protected,
            confirmation=confirmation,
            source_key=source_key,
            escalate_at=escalate_at,
            expires_at=expires_at,
        )
        try:
            with session.begin_nested():
                session.add(request)
        except IntegrityError:
            if source_key is not None and find_by_source(session, source_key=source_key) is not None:
                return None
            if session.get(ResetRequest, request.id) is None:
                raise  # not an id collision: a real constraint violation
            continue
        draft = dataclasses.replace(
            audit, request_id=request.id, from_state=None, to_state=RequestState.PENDING_APPROVAL.value
        )
        append_audit(session, draft=draft, at=now)
        return request
    raise RuntimeError(f"no free request id after {_ID_ATTEMPTS} attempts")  # pragma: no cover


def find_by_source(session: Session, *, source_key: str) -> ResetRequest | None:
    return session.exec(select(ResetRequest).where(col(ResetRequest.source_key) == source_key)).first()


def get_request(session: Session, *, request_id: str) -> ResetRequest | None:
    """The request with exactly this id (see ``bot.models.normalize_request_id`` for what people type)."""
    return session.get(ResetRequest, request_id)


def find_requests(
    session: Session,
    *,
    requester: str | None = None,
    target_upn: str | None = None,
    states: Collection[RequestState] | None = None,
    limit: int = 20,
) -> list[ResetRequest]:
    """Requests matching every given filter (none given: all), most recent first, at most ``limit``."""
    query = select(ResetRequest)
    if requester is not None:
        query = query.where(col(ResetRequest.requester) == requester)
    if target_upn is not None:
        query = query.where(col(ResetRequest.target_upn) == target_upn.lower())
    if states is not None:
        query = query.where(col(ResetRequest.state).in_(list(states)))
    query = query.order_by(col(ResetRequest.created_at).desc(), col(ResetRequest.id).desc()).limit(limit)
    return list(session.exec(query).all())


def attach_message(session: Session, *, request_id: str, channel_id: str, thread_ts: str) -> bool:
    """Record where the request message was posted; only once (False if already set or no such request)."""
    result = session.execute(
        sa.update(ResetRequest)
        .where(col(ResetRequest.id) == request_id, col(ResetRequest.thread_ts).is_(None))
        .values(channel_id=channel_id, thread_ts=thread_ts, version=col(ResetRequest.version) + 1, updated_at=utcnow())
        .execution_options(synchronize_session="fetch")
    )
    return _rowcount(result) == 1


def transition(
    session: Session,
    *,
    request_id: str,
    expected: Collection[RequestState],
    to: RequestState,
    audit: AuditDraft,
    changes: Mapping[str, object] | None = None,
    now: datetime | None = None,
) -> ResetRequest | None:
    """Compare-and-set the request's state from one of ``expected`` to ``to``, and audit it, atomically.

    One ``UPDATE reset_request SET state = :to, previous_state = state, version = version + 1, ...
    WHERE id = :id AND state IN (:expected) RETURNING previous_state``. If no row matched — someone else moved it
    first, or there is no such request — returns ``None`` and appends nothing (see the module docstring for why a
    lost race is not audited). Otherwise appends ``audit`` with ``request_id``, ``from_state`` (the state the row
    really left) and ``to_state`` filled in (``graph_operation_id`` / ``verdict`` default to those in
    ``changes``) and returns the refreshed request.

    Raises ``ValueError`` if any expected→to move is not in the lifecycle table or ``changes`` names a column
    outside ``TRANSITION_COLUMNS``: both are bugs, and refusing them keeps illegal histories out of the database.
    """
    sources = frozenset(expected)
    if not sources:
        raise ValueError("transition needs at least one expected state")
    illegal = sorted(s.value for s in sources if not can_transition(s, to))
    if illegal:
        raise ValueError(f"illegal transition {', '.join(illegal)} -> {to.value}")
    extra = dict(changes or {})
    unknown = sorted(set(extra) - TRANSITION_COLUMNS)
    if unknown:
        raise ValueError(f"transition cannot set {', '.join(unknown)}")
    now = now or utcnow()
    result = session.execute(
        sa.update(ResetRequest)
        .where(col(ResetRequest.id) == request_id, col(ResetRequest.state).in_(sorted(sources)))
        .values(
            **extra,
            state=to,
            # In an UPDATE's SET list a column reference is the row's *old* value, on SQLite and PostgreSQL alike.
            previous_state=col(ResetRequest.state),
            version=col(ResetRequest.version) + 1,
            updated_at=now,
        )
        .returning(col(ResetRequest.previous_state))
        .execution_options(synchronize_session=False)
    )
    row = result.first()
    if row is None:
        return None
    left: RequestState = row[0]
    draft = dataclasses.replace(
        audit,
        request_id=request_id,
        from_state=left.value,
        to_state=to.value,
        graph_operation_id=audit.graph_operation_id or _opt_str(extra.get("graph_operation_id")),
        verdict=audit.verdict or _opt_str(extra.get("verdict")),
    )
    append_audit(session, draft=draft, at=now)
    moved = session.get(ResetRequest, request_id, populate_existing=True)
    if moved is not None:
        created_at, decided_at, verdict = moved.created_at, moved.decided_at, moved.verdict
        _after_commit(session, lambda: metrics.record_transition(to=to, created_at=created_at, decided_at=decided_at,
                                                                 at=now, verdict=verdict))
    return moved


def note_operation(session: Session, *, request_id: str, location: str, baseline: int | None = None,
                   baseline_version: int | None = None) -> bool:
    """Remember where Graph's operation for a reset in progress can be followed, and the account's baseline
    read before it (only while ``resetting``, and without touching ``updated_at``: that is when the reset
    started, which recovery measures from)."""
    result = session.execute(
        sa.update(ResetRequest)
        .where(col(ResetRequest.id) == request_id, col(ResetRequest.state) == RequestState.RESETTING)
        .values(operation_location=location, baseline_pwd_last_set=baseline, baseline_key_version=baseline_version)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


def stuck_requests(session: Session, *, state: RequestState, since_before: datetime,
                   limit: int = 50) -> list[ResetRequest]:
    """Requests in ``state`` since before ``since_before``: left there by a bot that stopped (``approved`` before
    its reset began, ``resetting`` while Graph worked)."""
    return list(session.exec(
        select(ResetRequest)
        .where(col(ResetRequest.state) == state, col(ResetRequest.updated_at) <= since_before)
        .order_by(col(ResetRequest.updated_at)).limit(limit)
    ))


def mark_escalated(
    session: Session, *, request_id: str, at: datetime, audit: AuditDraft | None = None
) -> ResetRequest | None:
    """Set ``escalated_at`` once, only while the request is still pending (compare-and-set, like ``transition``).

    Returns the request if this call did it, None if it was already escalated, decided, or does not exist; the
    winner alone posts the escalation and (when ``audit`` is given) appends the event.
    """
    result = session.execute(
        sa.update(ResetRequest)
        .where(
            col(ResetRequest.id) == request_id,
            col(ResetRequest.state) == RequestState.PENDING_APPROVAL,
            col(ResetRequest.escalated_at).is_(None),
        )
        .values(escalated_at=at, version=col(ResetRequest.version) + 1, updated_at=at)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(result) != 1:
        return None
    if audit is not None:
        append_audit(session, draft=dataclasses.replace(audit, request_id=request_id), at=at)
    return session.get(ResetRequest, request_id, populate_existing=True)


def set_confirmation(
    session: Session, *, request_id: str, expected: str, to: str, audit: AuditDraft, at: datetime | None = None
) -> ResetRequest | None:
    """Compare-and-set the target's confirmation (``pending`` → ``yes``/``no``) while the request is pending.

    Like ``transition``: the one caller whose UPDATE matches gets the refreshed request and appends ``audit``;
    a repeated click or a late answer gets None and writes nothing.
    """
    at = at or utcnow()
    result = session.execute(
        sa.update(ResetRequest)
        .where(
            col(ResetRequest.id) == request_id,
            col(ResetRequest.state) == RequestState.PENDING_APPROVAL,
            col(ResetRequest.confirmation) == expected,
        )
        .values(confirmation=to, version=col(ResetRequest.version) + 1, updated_at=at)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(result) != 1:
        return None
    append_audit(session, draft=dataclasses.replace(audit, request_id=request_id), at=at)
    return session.get(ResetRequest, request_id, populate_existing=True)


def due_for_escalation(session: Session, *, now: datetime, limit: int = 100) -> list[ResetRequest]:
    """Pending, not yet escalated, past their half-time and not yet expired: oldest deadline first."""
    query = (
        select(ResetRequest)
        .where(
            col(ResetRequest.state) == RequestState.PENDING_APPROVAL,
            col(ResetRequest.escalated_at).is_(None),
            col(ResetRequest.escalate_at) <= now,
            col(ResetRequest.expires_at) > now,
        )
        .order_by(col(ResetRequest.escalate_at), col(ResetRequest.id))
        .limit(limit)
    )
    return list(session.exec(query).all())


def due_for_expiry(session: Session, *, now: datetime, limit: int = 100) -> list[ResetRequest]:
    """Pending requests whose ``expires_at`` has passed (``<= now``): oldest first. Expire each with
    ``transition(expected={PENDING_APPROVAL}, to=EXPIRED)`` — a concurrent approval then simply wins or loses."""
    query = (
        select(ResetRequest)
        .where(col(ResetRequest.state) == RequestState.PENDING_APPROVAL, col(ResetRequest.expires_at) <= now)
        .order_by(col(ResetRequest.expires_at), col(ResetRequest.id))
        .limit(limit)
    )
    return list(session.exec(query).all())


# --- approvals ------------------------------------------------------------------------------------------------


class ApprovalTally(NamedTuple):
    total: int
    added: bool


def add_approval(
    session: Session,
    *,
    request_id: str,
    approver: str,
    at: datetime | None = None,
    audit: AuditDraft | None = None,
) -> ApprovalTally:
    """Record ``approver``'s approval (idempotent per person): how many distinct people have approved, and
    whether this call added one (so only the click that counted announces it).

    The request row is locked first (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's BEGIN IMMEDIATE already
    serialises): without it, two different approvers clicking at the same moment on a two-approver request
    could each count only themselves, and neither would move it to approved. An approval is only recorded while
    the request is ``pending_approval`` (otherwise the current count is returned unchanged); ``audit``, when
    given, is appended only if a new approval was recorded, so repeated clicks do not spam the trail.

    Raises ``RequestNotFoundError`` if there is no such request.
    """
    state = session.execute(
        sa.select(col(ResetRequest.state)).where(col(ResetRequest.id) == request_id).with_for_update()
    ).scalar_one_or_none()
    if state is None:
        raise RequestNotFoundError(request_id)
    exists = session.get(Approval, (request_id, approver)) is not None
    added = state == RequestState.PENDING_APPROVAL and not exists
    if added:
        when = at or utcnow()
        session.add(Approval(request_id=request_id, approver=approver, at=when))
        session.flush()
        if audit is not None:
            append_audit(session, draft=dataclasses.replace(audit, request_id=request_id), at=when)
    return ApprovalTally(count_approvals(session, request_id=request_id), added)


def count_approvals(session: Session, *, request_id: str) -> int:
    """Distinct approvers of the request (the primary key makes rows distinct per person)."""
    query = sa.select(sa.func.count()).select_from(Approval).where(col(Approval.request_id) == request_id)
    return int(session.execute(query).scalar_one())


def list_approvals(session: Session, *, request_id: str) -> list[Approval]:
    """The request's approvals in the order they were given (for the thread and ``/reset-status``)."""
    query = select(Approval).where(col(Approval.request_id) == request_id).order_by(col(Approval.at))
    return list(session.exec(query).all())


# --- audit ----------------------------------------------------------------------------------------------------


def ensure_audit_head(session: Session) -> None:
    """Insert the chain's head row (seq 0, genesis hash) unless it exists; safe when replicas race to do it."""
    values: dict[str, Any] = {"id": AUDIT_HEAD_ID, "last_seq": 0, "last_hash": GENESIS_HASH}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(postgresql.insert(AuditHead).values(values).on_conflict_do_nothing(index_elements=["id"]))
    elif dialect == "sqlite":
        session.execute(sqlite.insert(AuditHead).values(values).on_conflict_do_nothing(index_elements=["id"]))
    elif session.get(AuditHead, AUDIT_HEAD_ID) is None:  # pragma: no cover - only the two dialects are supported
        session.add(AuditHead(id=AUDIT_HEAD_ID, last_seq=0, last_hash=GENESIS_HASH))
        session.flush()


def _claim_next_seq(session: Session) -> tuple[int, str]:
    """Take the audit head's lock and the next seq; returns (seq, previous hash)."""
    claim = (
        sa.update(AuditHead)
        .where(col(AuditHead.id) == AUDIT_HEAD_ID)
        .values(last_seq=col(AuditHead.last_seq) + 1)
        .returning(col(AuditHead.last_seq), col(AuditHead.last_hash))
        .execution_options(synchronize_session=False)
    )
    row = session.execute(claim).first()
    if row is None:
        ensure_audit_head(session)
        row = session.execute(claim).one()
    return int(row[0]), str(row[1])


def append_audit(session: Session, *, draft: AuditDraft, at: datetime | None = None) -> AuditEvent:
    """Append one event to the hash chain, in the caller's transaction, and return it.

    Empty optional strings are stored as NULL, so that the CSV export (where both are an empty cell) reads back
    exactly. Raises ``ValueError`` / ``TypeError`` if the detail is not a JSON object or has a key that looks
    like a secret — before anything is written.
    """
    detail = canonical_detail(draft.detail)
    seq, prev_hash = _claim_next_seq(session)
    event = AuditEvent(
        seq=seq,
        at=at or utcnow(),
        request_id=draft.request_id or None,
        actor=draft.actor,
        action=str(draft.action),
        from_state=draft.from_state or None,
        to_state=draft.to_state or None,
        correlation_id=draft.correlation_id or None,
        graph_operation_id=draft.graph_operation_id or None,
        verdict=draft.verdict or None,
        detail=detail,
        prev_hash=prev_hash,
        hash="",
    )
    event.hash = event_hash(event)
    session.add(event)
    session.flush()
    session.execute(
        sa.update(AuditHead)
        .where(col(AuditHead.id) == AUDIT_HEAD_ID)
        .values(last_hash=event.hash)
        .execution_options(synchronize_session=False)
    )
    return event


def get_audit_head(session: Session) -> tuple[int, str]:
    """(last seq, last hash) of the chain — pass it to ``verify_chain(head=...)`` to detect a truncated tail."""
    head = session.get(AuditHead, AUDIT_HEAD_ID, populate_existing=True)
    return (0, GENESIS_HASH) if head is None else (head.last_seq, head.last_hash)


def iter_audit(session: Session, *, after_seq: int = 0, batch_size: int = 500) -> Iterator[AuditEvent]:
    """Every audit event with ``seq > after_seq``, in chain order, fetched in batches (keyset pagination)."""
    last = after_seq
    while True:
        query = select(AuditEvent).where(col(AuditEvent.seq) > last).order_by(col(AuditEvent.seq)).limit(batch_size)
        batch = list(session.exec(query).all())
        yield from batch
        if len(batch) < batch_size:
            return
        last = batch[-1].seq


def audit_between(
    session: Session, *, since: datetime, until: datetime | None = None, batch_size: int = 500
) -> Iterator[AuditEvent]:
    """The events stamped at or after ``since`` and before ``until`` (open-ended without it), in chain order,
    fetched in batches (keyset pagination on ``seq``): what an audit export of a period holds."""
    last = 0
    while True:
        query = select(AuditEvent).where(col(AuditEvent.seq) > last, col(AuditEvent.at) >= since)
        if until is not None:
            query = query.where(col(AuditEvent.at) < until)
        batch = list(session.exec(query.order_by(col(AuditEvent.seq)).limit(batch_size)).all())
        yield from batch
        if len(batch) < batch_size:
            return
        last = batch[-1].seq


def audit_for_request(session: Session, *, request_id: str) -> list[AuditEvent]:
    """The request's timeline (its events in chain order). Not verifiable on its own: the chain spans requests."""
    query = select(AuditEvent).where(col(AuditEvent.request_id) == request_id).order_by(col(AuditEvent.seq))
    return list(session.exec(query).all())


# --- helpers --------------------------------------------------------------------------------------------------


def _rowcount(result: sa.Result[Any]) -> int:
    """Rows an UPDATE matched (``session.execute`` types its answer as the general ``Result``)."""
    return cast("sa.CursorResult[Any]", result).rowcount


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


# --- sealed secrets ---------------------------------------------------------------------------------------------


def seal(session: Session, *, request_id: str, ciphertext: str, expires_at: datetime, kind: str = "password") -> None:
    session.add(SealedSecret(request_id=request_id, ciphertext=ciphertext, expires_at=expires_at, kind=kind))
    session.flush()


def unseal_once(session: Session, *, request_id: str, now: datetime) -> tuple[str, str] | None:
    """Take (kind, ciphertext) out, deleting it in the same statement: exactly one caller ever gets it."""
    row = session.execute(
        sa.delete(SealedSecret)
        .where(col(SealedSecret.request_id) == request_id, col(SealedSecret.expires_at) > now)
        .returning(col(SealedSecret.kind), col(SealedSecret.ciphertext))
    ).first()
    return (str(row[0]), str(row[1])) if row is not None else None


def has_sealed(session: Session, *, request_id: str) -> bool:
    return session.get(SealedSecret, request_id) is not None


def wipe_expired_secrets(session: Session, *, now: datetime) -> list[str]:
    """Delete every sealed secret past its time; returns their request ids (for the audit)."""
    rows = session.execute(
        sa.delete(SealedSecret).where(col(SealedSecret.expires_at) <= now).returning(col(SealedSecret.request_id))
    ).all()
    return [str(r[0]) for r in rows]



# --- follow-ups -------------------------------------------------------------------------------------------------

_FOLLOWUP_PENDING, _FOLLOWUP_RUNNING, _FOLLOWUP_DONE, _FOLLOWUP_SKIPPED = "pending", "running", "done", "skipped"


def add_followups(session: Session, *, rows: Collection[FollowUp]) -> None:
    """Schedule checks; meant to run in the transaction that records the reset's success, so that a reset is
    never recorded without its follow-ups (nor the reverse)."""
    session.add_all(rows)
    session.flush()


def _claimable(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(
        sa.and_(col(FollowUp.state) == _FOLLOWUP_PENDING, col(FollowUp.due_at) <= now),
        sa.and_(col(FollowUp.state) == _FOLLOWUP_RUNNING, col(FollowUp.lease_until) <= now),
    )


def due_followups(session: Session, *, now: datetime, limit: int = 200) -> list[int]:
    """Ids of checks due (or whose claimant's lease ran out), oldest first. Reading them claims nothing."""
    # Ordered by id too: two replicas claiming rows with the same due_at lock them in the same order (no deadlock).
    rows = session.exec(select(FollowUp.id).where(_claimable(now)).order_by(col(FollowUp.due_at), col(FollowUp.id))
                        .limit(limit))
    return [int(r) for r in rows if r is not None]


def claim_followup(session: Session, *, followup_id: int, claim: str, now: datetime,
                   lease_until: datetime) -> FollowUp | None:
    """Compare-and-set one due check to ``running`` under ``claim``; None when another replica got it first."""
    result = session.execute(
        sa.update(FollowUp)
        .where(col(FollowUp.id) == followup_id, _claimable(now))
        .values(state=_FOLLOWUP_RUNNING, claim=claim, lease_until=lease_until, attempts=col(FollowUp.attempts) + 1)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(result) != 1:
        return None
    return session.get(FollowUp, followup_id, populate_existing=True)


def _set_claimed(session: Session, *, ids: Collection[int], claim: str, values: Mapping[str, object]) -> int:
    """UPDATE the checks ``claim`` still holds (``running`` under it); a check taken over by another replica
    after this one's lease ran out is not touched. Returns how many were."""
    result = session.execute(
        sa.update(FollowUp)
        .where(col(FollowUp.id).in_(sorted(ids)), col(FollowUp.claim) == claim,
               col(FollowUp.state) == _FOLLOWUP_RUNNING)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


def finish_followup(session: Session, *, followup_id: int, claim: str, outcome: str, seen: int | None,
                    now: datetime) -> bool:
    """``running`` → ``done`` only for the holder of ``claim``: a replica whose lease was taken over loses."""
    return _set_claimed(session, ids=[followup_id], claim=claim, values={
        "state": _FOLLOWUP_DONE, "outcome": outcome, "seen_pwd_last_set": seen, "done_at": now, "lease_until": None,
    }) == 1


def retry_followup(session: Session, *, followup_id: int, claim: str, due_at: datetime,
                   seen: int | None = None, counted: bool = True) -> bool:
    """Give a claimed check back, due again at ``due_at``. The claim counted an attempt; ``counted=False`` takes
    it back (AD could not be read: nothing was looked at, and the attempts count drives the backoff and the
    audit trail)."""
    values: dict[str, object] = {
        "state": _FOLLOWUP_PENDING, "due_at": due_at, "claim": None, "lease_until": None, "seen_pwd_last_set": seen,
    }
    if not counted:
        values["attempts"] = col(FollowUp.attempts) - 1
    return _set_claimed(session, ids=[followup_id], claim=claim, values=values) == 1


def skip_followups(session: Session, *, request_id: str, kind: str, now: datetime, claim: str | None = None) -> int:
    """Retire the still-pending checks of one kind (the user replaced the password: no more reminders), and
    those ``claim`` holds itself (claimed in the same run, not yet answered: they must not speak after this)."""
    waiting = col(FollowUp.state) == _FOLLOWUP_PENDING
    if claim is not None:
        waiting = sa.or_(waiting, sa.and_(col(FollowUp.state) == _FOLLOWUP_RUNNING, col(FollowUp.claim) == claim))
    result = session.execute(
        sa.update(FollowUp)
        .where(col(FollowUp.request_id) == request_id, col(FollowUp.kind) == kind, waiting)
        .values(state=_FOLLOWUP_SKIPPED, done_at=now, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


def drop_claimed_followups(session: Session, *, ids: Collection[int], claim: str, now: datetime) -> int:
    """Retire checks this claim holds without answering them (superseded by a later one due at once)."""
    return _set_claimed(session, ids=ids, claim=claim,
                        values={"state": _FOLLOWUP_SKIPPED, "done_at": now, "lease_until": None})


def followups_for(session: Session, *, request_id: str) -> list[FollowUp]:
    return list(session.exec(select(FollowUp).where(col(FollowUp.request_id) == request_id)
                             .order_by(col(FollowUp.kind), col(FollowUp.step))))


# --- agent links ----------------------------------------------------------------------------------------------


def get_link(session: Session, *, slack_user: str) -> AgentLink | None:
    """The Entra account linked to ``slack_user`` (or to the service identity's reserved key), if any."""
    return session.get(AgentLink, slack_user, populate_existing=True)


def save_link(
    session: Session,
    *,
    slack_user: str,
    upn: str,
    oid: str,
    home_account_id: str,
    encrypted_cache: str,
    display_name: str = "",
    roles: Collection[str] | None = None,
    at: datetime | None = None,
) -> AgentLink:
    """Link ``slack_user`` to an Entra account, replacing any earlier link (one INSERT ... ON CONFLICT DO UPDATE,
    so two replicas finishing a sign-in at once leave one row). ``encrypted_cache`` must already be encrypted."""
    when = at or utcnow()
    values: dict[str, Any] = {
        "slack_user": slack_user, "upn": upn, "oid": oid, "display_name": display_name,
        "home_account_id": home_account_id, "encrypted_cache": encrypted_cache, "linked_at": when,
        "refreshed_at": None, "roles": _roles_json(roles), "roles_checked_at": when if roles is not None else None,
    }
    changes = {k: v for k, v in values.items() if k != "slack_user"}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(postgresql.insert(AgentLink).values(values).on_conflict_do_update(
            index_elements=["slack_user"], set_=changes))
    elif dialect == "sqlite":
        session.execute(sqlite.insert(AgentLink).values(values).on_conflict_do_update(
            index_elements=["slack_user"], set_=changes))
    else:  # pragma: no cover - only the two dialects are supported
        session.merge(AgentLink(**values))
        session.flush()
    link = get_link(session, slack_user=slack_user)
    assert link is not None
    return link


def replace_link_cache(session: Session, *, slack_user: str, expected: str, encrypted_cache: str,
                       at: datetime | None = None) -> bool:
    """Store a refreshed cache, only if the row still holds ``expected`` (compare-and-set): a link replaced or
    removed meanwhile (a new sign-in, a logout) is never overwritten by a refresh of the old one."""
    result = session.execute(
        sa.update(AgentLink)
        .where(col(AgentLink.slack_user) == slack_user, col(AgentLink.encrypted_cache) == expected)
        .values(encrypted_cache=encrypted_cache, refreshed_at=at or utcnow())
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


def set_link_roles(session: Session, *, slack_user: str, oid: str, roles: Collection[str],
                   at: datetime | None = None) -> bool:
    """Record the Entra roles just read for the account ``oid`` linked to ``slack_user`` (not if it changed)."""
    result = session.execute(
        sa.update(AgentLink)
        .where(col(AgentLink.slack_user) == slack_user, col(AgentLink.oid) == oid)
        .values(roles=_roles_json(roles), roles_checked_at=at or utcnow())
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


def delete_link(session: Session, *, slack_user: str) -> AgentLink | None:
    """Remove the link and its encrypted cache; the removed row (detached), or None if there was none."""
    link = session.get(AgentLink, slack_user, with_for_update=True)
    if link is None:
        return None
    session.delete(link)
    session.flush()
    return link


def link_roles(link: AgentLink) -> list[str] | None:
    """The roles recorded on a link, or None when they were never read."""
    if link.roles is None:
        return None
    value = json.loads(link.roles)
    return [str(r) for r in value] if isinstance(value, list) else None


def _roles_json(roles: Collection[str] | None) -> str | None:
    return None if roles is None else json.dumps(sorted(set(roles)))


# --- signed HTTP requests (replay refusal) ---------------------------------------------------------------------


def remember_signature(session: Session, *, signature: str, at: datetime | None = None) -> bool:
    """Record a served request's signature: True the first time, False if it was already there (a replay).

    One INSERT ... ON CONFLICT DO NOTHING, so two replicas handed the same request at once cannot both win.
    """
    values: dict[str, Any] = {"signature": signature, "seen_at": at or utcnow()}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        statement: Any = postgresql.insert(SeenSlackRequest).values(values).on_conflict_do_nothing(
            index_elements=["signature"])
    elif dialect == "sqlite":
        statement = sqlite.insert(SeenSlackRequest).values(values).on_conflict_do_nothing(
            index_elements=["signature"])
    else:  # pragma: no cover - only the two dialects are supported
        if session.get(SeenSlackRequest, signature) is not None:
            return False
        session.add(SeenSlackRequest(**values))
        session.flush()
        return True
    # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT through the ORM session.
    return session.execute(statement.returning(col(SeenSlackRequest.signature))).first() is not None


def forget_signatures(session: Session, *, before: datetime) -> int:
    """Delete signatures seen before ``before`` (older than Slack's window, so bolt refuses them anyway)."""
    result = session.execute(
        sa.delete(SeenSlackRequest).where(col(SeenSlackRequest.seen_at) < before)
        .execution_options(synchronize_session=False))
    return _rowcount(result)


# --- health pings ---------------------------------------------------------------------------------------------

def claim_health_slot(session: Session, *, kind: str, slot: int, runner: str, at: datetime | None = None) -> bool:
    """Claim a round (or a day's summary) for this replica: an INSERT ... ON CONFLICT DO NOTHING of the slot's
    row; True for the one caller whose row went in. Commit before running the slot, so others see the claim."""
    values: dict[str, Any] = {"kind": kind, "slot": slot, "runner": runner, "claimed_at": at or utcnow()}
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert(HealthSlot) if dialect == "postgresql" else sqlite.insert(HealthSlot)
    # RETURNING, not rowcount: an ORM-enabled INSERT's result does not report rows on every driver.
    claimed = session.execute(insert.values(values).on_conflict_do_nothing(index_elements=["kind", "slot"])
                              .returning(col(HealthSlot.slot))).first()
    return claimed is not None


def count_health_slots(session: Session, *, kind: str, since_slot: int = 0) -> int:
    query = sa.select(sa.func.count()).select_from(HealthSlot).where(
        col(HealthSlot.kind) == kind, col(HealthSlot.slot) >= since_slot)
    return int(session.execute(query).scalar_one())


def add_health_results(session: Session, *, round_slot: int, results: Mapping[str, tuple[bool, str]],
                       at: datetime | None = None) -> None:
    """Store one round's results, ``{check: (ok, detail)}``."""
    when = at or utcnow()
    for check, (ok, detail) in results.items():
        session.add(HealthResult(round_slot=round_slot, check_name=check, ok=ok, detail=detail, at=when))
    session.flush()


def latest_health_results(session: Session) -> dict[str, HealthResult]:
    """Each check's most recent result (by round, then insertion), whichever replica stored it."""
    ranked = sa.select(
        col(HealthResult.id),
        sa.func.row_number().over(partition_by=col(HealthResult.check_name),
                                  order_by=(col(HealthResult.round_slot).desc(), col(HealthResult.id).desc()))
        .label("rank"),
    ).subquery()
    query = select(HealthResult).join(ranked, col(HealthResult.id) == ranked.c.id).where(ranked.c.rank == 1)
    return {r.check_name: r for r in session.exec(query).all()}


def health_results_for(session: Session, *, round_slot: int) -> list[HealthResult]:
    query = select(HealthResult).where(col(HealthResult.round_slot) == round_slot).order_by(col(HealthResult.id))
    return list(session.exec(query).all())


def health_failures_since(session: Session, *, since: datetime) -> dict[str, tuple[int, int]]:
    """``{check: (results, failures)}`` stored since ``since``, for the daily summary."""
    failed = sa.func.sum(sa.case((col(HealthResult.ok).is_(False), 1), else_=0))
    query = (sa.select(col(HealthResult.check_name), sa.func.count(), failed)
             .where(col(HealthResult.at) >= since).group_by(col(HealthResult.check_name)))
    return {str(name): (int(total), int(bad or 0)) for name, total, bad in session.execute(query).all()}


def last_health_transition(session: Session) -> HealthTransition | None:
    query = select(HealthTransition).order_by(col(HealthTransition.seq).desc()).limit(1)
    return session.exec(query).first()


def add_health_transition(session: Session, *, transition: HealthTransition) -> bool:
    """Insert a transition whose ``seq`` follows the last one; False when another replica's took that seq first
    (then it announces the change, not this caller)."""
    values = {c.name: getattr(transition, c.name) for c in HealthTransition.__table__.columns}  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert(HealthTransition) if dialect == "postgresql" else sqlite.insert(HealthTransition)
    claimed = session.execute(insert.values(values).on_conflict_do_nothing(index_elements=["seq"])
                              .returning(col(HealthTransition.seq))).first()
    return claimed is not None


def recent_health_transitions(session: Session, *, limit: int = 5, since: datetime | None = None
                              ) -> list[HealthTransition]:
    """The newest transitions first."""
    query = select(HealthTransition).order_by(col(HealthTransition.seq).desc()).limit(limit)
    if since is not None:
        query = query.where(col(HealthTransition.at) >= since)
    return list(session.exec(query).all())


def prune_health(session: Session, *, before: datetime) -> int:
    """Forget results and slot claims older than ``before`` (transitions are kept: they are the history)."""
    gone = _rowcount(session.execute(sa.delete(HealthResult).where(col(HealthResult.at) < before)))
    session.execute(sa.delete(HealthSlot).where(col(HealthSlot.claimed_at) < before))
    return gone


# --- the outbox -----------------------------------------------------------------------------------------------

_OUTBOX_PENDING, _OUTBOX_SENDING, _OUTBOX_SENT, _OUTBOX_GIVEN_UP = "pending", "sending", "sent", "given_up"


def add_outbox(session: Session, *, messages: Collection[OutboxMessage]) -> list[int]:
    """Queue messages in the caller's transaction (the one recording what they announce); their ids, so the
    caller can have them delivered right after the commit."""
    session.add_all(messages)
    session.flush()
    return [m.id for m in messages if m.id is not None]


def _outbox_claimable(now: datetime) -> sa.ColumnElement[bool]:
    """Due (or its sender's lease ran out), and not behind an undelivered earlier message to the same place: a
    conversation hears its messages in the order they were decided (never "healthy" before "degraded"), even
    when the earlier one is waiting out a retry."""
    earlier = orm.aliased(OutboxMessage)
    ahead = sa.exists().where(
        col(earlier.channel) == col(OutboxMessage.channel),
        col(earlier.thread_ts).is_not_distinct_from(col(OutboxMessage.thread_ts)),
        col(earlier.id) < col(OutboxMessage.id),
        col(earlier.state).in_([_OUTBOX_PENDING, _OUTBOX_SENDING]),
    )
    return sa.and_(
        sa.or_(
            sa.and_(col(OutboxMessage.state) == _OUTBOX_PENDING, col(OutboxMessage.next_at) <= now),
            sa.and_(col(OutboxMessage.state) == _OUTBOX_SENDING, col(OutboxMessage.lease_until) <= now),
        ),
        ~ahead,
    )


def prune_outbox(session: Session, *, before: datetime) -> int:
    """Forget messages written before ``before`` that are done with (sent or given up); one still owed is kept,
    however old (it is given up, and audited, first)."""
    return _rowcount(session.execute(
        sa.delete(OutboxMessage)
        .where(col(OutboxMessage.state).in_((_OUTBOX_SENT, _OUTBOX_GIVEN_UP)), col(OutboxMessage.created_at) < before)
        .execution_options(synchronize_session=False)))


def due_outbox(session: Session, *, now: datetime, limit: int = 200) -> list[int]:
    """Ids of messages ready to send, in the order they were written. Reading them claims nothing."""
    rows = session.exec(select(OutboxMessage.id).where(_outbox_claimable(now)).order_by(col(OutboxMessage.id))
                        .limit(limit))
    return [int(r) for r in rows if r is not None]


def claim_outbox(session: Session, *, message_id: int, claim: str, now: datetime,
                 lease_until: datetime) -> OutboxMessage | None:
    """Compare-and-set one ready message to ``sending`` under ``claim`` (counting an attempt); None when another
    replica got it first, it is not due, or an earlier message to the same place is still undelivered."""
    result = session.execute(
        sa.update(OutboxMessage)
        .where(col(OutboxMessage.id) == message_id, _outbox_claimable(now))
        .values(state=_OUTBOX_SENDING, claim=claim, lease_until=lease_until,
                attempts=col(OutboxMessage.attempts) + 1)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(result) != 1:
        return None
    return session.get(OutboxMessage, message_id, populate_existing=True)


def _set_outbox_claimed(session: Session, *, message_id: int, claim: str, values: Mapping[str, object]) -> bool:
    """UPDATE the message only while ``claim`` still holds it (``sending`` under it)."""
    result = session.execute(
        sa.update(OutboxMessage)
        .where(col(OutboxMessage.id) == message_id, col(OutboxMessage.claim) == claim,
               col(OutboxMessage.state) == _OUTBOX_SENDING)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


def mark_outbox_sent(session: Session, *, message_id: int, claim: str, now: datetime, ts: str | None) -> bool:
    """``sending`` → ``sent`` for the holder of ``claim``. False: its lease ran out and another replica took the
    message over (it may then be posted twice: the one duplicate window an outbox without an idempotency key has)."""
    return _set_outbox_claimed(session, message_id=message_id, claim=claim, values={
        "state": _OUTBOX_SENT, "sent_at": now, "ts": ts, "lease_until": None, "last_error": None})


def retry_outbox(session: Session, *, message_id: int, claim: str, next_at: datetime, error: str) -> bool:
    """Hand a message whose post failed back, due again at ``next_at``."""
    return _set_outbox_claimed(session, message_id=message_id, claim=claim, values={
        "state": _OUTBOX_PENDING, "next_at": next_at, "claim": None, "lease_until": None, "last_error": error[:64]})


def give_up_outbox(session: Session, *, message_id: int, claim: str, now: datetime, error: str) -> bool:
    """Stop trying a message (past the horizon, or Slack can never take it); the caller audits it."""
    return _set_outbox_claimed(session, message_id=message_id, claim=claim, values={
        "state": _OUTBOX_GIVEN_UP, "given_up_at": now, "lease_until": None, "last_error": error[:64]})


def outbox_messages(session: Session, *, states: Collection[str] | None = None,
                    request_id: str | None = None) -> list[OutboxMessage]:
    """Messages in the order they were written, optionally only in ``states`` or of one request."""
    query = select(OutboxMessage).order_by(col(OutboxMessage.id))
    if states is not None:
        query = query.where(col(OutboxMessage.state).in_(sorted(states)))
    if request_id is not None:
        query = query.where(col(OutboxMessage.request_id) == request_id)
    return list(session.exec(query).all())

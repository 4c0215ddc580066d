"""Reset requests and their approvals: creating a request, the compare-and-set ``transition`` (see the
package's concurrency contract), the operation and baseline a reset stores, escalation and expiry, and the
approvals' tally.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot import metrics
from bot.domain.audit import AuditAction, AuditDraft
from bot.domain.lifecycle import RequestState, can_transition, is_terminal
from bot.errors import RequestNotFoundError
from bot.models import (
    Approval,
    AuditEvent,
    ResetRequest,
    new_request_id,
    utcnow,
)
from bot.store.audit import append_audit
from bot.store.shared import after_commit, opt_str, rowcount

#: Columns a transition may set besides ``state`` (which it sets) and the bookkeeping it does itself
#: (``previous_state``, ``version``, ``updated_at``). Anything else is a programming error.
TRANSITION_COLUMNS: frozenset[str] = frozenset({"decided_at", "graph_operation_id", "verdict", "lease_owner",
                                                "lease_until", "baseline_pwd_last_set", "baseline_key_version",
                                                "client_request_id"})

_ID_ATTEMPTS = 5


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
    target_guid: str | None = None,
    reason: str = "",
    unlock: bool = False,
    revoke_sessions: bool = False,
    tap: bool = False,
    approvals_required: int = 1,
    target_slack_id: str | None = None,
    manager_slack_id: str | None = None,
    approver_group: str | None = None,
    protected: str = "",
    confirmation: str = "off",
    source_key: str | None = None,
    created_at: datetime | None = None,
    delivery: str | None = None,
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
            target_guid=target_guid,
            target_display=target_display,
            reason=reason,
            unlock=unlock,
            revoke_sessions=revoke_sessions,
            tap=tap,
            approvals_required=approvals_required,
            target_slack_id=target_slack_id,
            manager_slack_id=manager_slack_id,
            approver_group=approver_group,
            protected=protected,
            confirmation=confirmation,
            delivery=delivery,
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


def lock_request(session: Session, *, request_id: str) -> ResetRequest | None:
    """The request as committed now, its row locked until the transaction ends (``SELECT ... FOR UPDATE`` on
    PostgreSQL; SQLite's BEGIN IMMEDIATE already holds the write lock): for a decision that rests on two columns
    other transactions change (the approvals and the target's confirmation), read where no one can change them
    before this transaction commits."""
    return session.exec(
        select(ResetRequest).where(col(ResetRequest.id) == request_id).with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def find_requests(
    session: Session,
    *,
    requester: str | None = None,
    target_upn: str | None = None,
    states: Collection[RequestState] | None = None,
    limit: int = 20,
    target_entra_id: str | None = None,
) -> list[ResetRequest]:
    """Requests matching every given filter (none given: all), most recent first, at most ``limit``."""
    query = select(ResetRequest)
    if requester is not None:
        query = query.where(col(ResetRequest.requester) == requester)
    if target_upn is not None:
        query = query.where(col(ResetRequest.target_upn) == target_upn.lower())
    if target_entra_id is not None:
        query = query.where(col(ResetRequest.target_entra_id) == target_entra_id)
    if states is not None:
        query = query.where(col(ResetRequest.state).in_(list(states)))
    query = query.order_by(col(ResetRequest.created_at).desc(), col(ResetRequest.id).desc()).limit(limit)
    return list(session.exec(query).all())


def newer_password_reset(session: Session, *, request: ResetRequest) -> ResetRequest | None:
    """The most recent password reset (not a TAP) of ``request``'s target asked for after it and made, or being
    made: what a Scramble of ``request`` would undo."""
    if not request.target_entra_id:
        return None
    return session.exec(
        select(ResetRequest)
        .where(col(ResetRequest.target_entra_id) == request.target_entra_id, col(ResetRequest.id) != request.id,
               col(ResetRequest.created_at) >= request.created_at, sa.not_(col(ResetRequest.tap)),
               col(ResetRequest.state).in_([RequestState.APPROVED, RequestState.RESETTING, RequestState.SUCCEEDED]))
        .order_by(col(ResetRequest.created_at).desc(), col(ResetRequest.id).desc())
    ).first()


def count_requests(session: Session, *, requester: str) -> int:
    """How many requests ``requester`` ever made (App Home says how many its list leaves out)."""
    query = sa.select(sa.func.count()).select_from(ResetRequest).where(col(ResetRequest.requester) == requester)
    return int(session.execute(query).scalar_one())


def attach_message(session: Session, *, request_id: str, channel_id: str, thread_ts: str) -> bool:
    """Record where the request message was posted; only once (False if already set or no such request)."""
    result = session.execute(
        sa.update(ResetRequest)
        .where(col(ResetRequest.id) == request_id, col(ResetRequest.thread_ts).is_(None))
        .values(channel_id=channel_id, thread_ts=thread_ts, version=col(ResetRequest.version) + 1, updated_at=utcnow())
        .execution_options(synchronize_session="fetch")
    )
    return rowcount(result) == 1


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
    if is_terminal(to):
        # A closed request keeps no secret: a verification code sent and never entered (cancelled, denied, expired
        # while it waited) goes in the very UPDATE that closes it, whichever path makes the move.
        extra.update(verify_sealed=None, verify_expires_at=None)
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
        graph_operation_id=audit.graph_operation_id or opt_str(extra.get("graph_operation_id")),
        verdict=audit.verdict or opt_str(extra.get("verdict")),
    )
    append_audit(session, draft=draft, at=now)
    moved = session.get(ResetRequest, request_id, populate_existing=True)
    if moved is not None:
        created_at, decided_at, verdict = moved.created_at, moved.decided_at, moved.verdict
        after_commit(session, lambda: metrics.record_transition(to=to, created_at=created_at, decided_at=decided_at,
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
    return rowcount(result) == 1


def note_tap(session: Session, *, request_id: str, method_id: str) -> bool:
    """Remember the id of the Temporary Access Pass Entra just issued for a request still ``resetting`` (in
    ``graph_operation_id``, where its verdict records it too), before the verdict: should the process stop in
    between, recovery knows a pass exists that nobody can be shown, and deletes it. ``updated_at`` is left alone."""
    result = session.execute(
        sa.update(ResetRequest)
        .where(col(ResetRequest.id) == request_id, col(ResetRequest.state) == RequestState.RESETTING)
        .values(graph_operation_id=method_id)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


def _abandoned(now: datetime, since_before: datetime) -> sa.ColumnElement[bool]:
    """Left behind by whoever held it: a lease that lapsed (its holder stopped renewing it, however long the reset
    has run), or, with no lease (``approved``, or a row an older release wrote), no change since ``since_before``."""
    return sa.or_(
        col(ResetRequest.lease_until) <= now,
        sa.and_(col(ResetRequest.lease_until).is_(None), col(ResetRequest.updated_at) <= since_before),
    )


def stuck_requests(session: Session, *, state: RequestState, since_before: datetime, now: datetime,
                   limit: int = 50) -> list[ResetRequest]:
    """Requests in ``state`` left there by a bot that stopped (``approved`` before its reset began, ``resetting``
    while Graph worked): see ``_abandoned``. A reset whose process is alive renews its lease, and is never here."""
    return list(session.exec(
        select(ResetRequest)
        .where(col(ResetRequest.state) == state, _abandoned(now, since_before))
        .order_by(col(ResetRequest.updated_at)).limit(limit)
    ))


def withheld_taps_owed(session: Session, *, made_after: datetime, made_before: datetime,
                       limit: int = 50) -> list[tuple[ResetRequest, str]]:
    """``succeeded`` TAP resets whose pass was withheld (``unrevealed_discarded``) and whose deletion has no
    outcome on record (neither ``tap_deleted`` nor ``containment_failed``), made in the window: a process that
    stopped between the verdict's commit and the deletion left the pass usable. With the withholding's reason."""
    audited = select(AuditEvent.request_id).where(
        col(AuditEvent.action).in_([AuditAction.TAP_DELETED, AuditAction.CONTAINMENT_FAILED]))
    rows = session.exec(
        select(ResetRequest, AuditEvent.detail).join(AuditEvent, col(AuditEvent.request_id) == ResetRequest.id)
        .where(col(ResetRequest.state) == RequestState.SUCCEEDED, col(ResetRequest.tap).is_(True),
               col(ResetRequest.updated_at) > made_after, col(ResetRequest.updated_at) < made_before,
               col(AuditEvent.action) == AuditAction.UNREVEALED_DISCARDED,
               col(ResetRequest.id).not_in(audited))
        .order_by(col(ResetRequest.updated_at)).limit(limit)
    ).all()
    owed = []
    for req, detail in rows:
        reason = str((json.loads(detail or "{}") or {}).get("reason") or "withdrawn")
        owed.append((req, reason))
    return owed


def claim_succeeded(session: Session, *, request_id: str, owner: str, now: datetime, until: datetime) -> bool:
    """Take a ``succeeded`` request for one piece of follow-through (a withheld TAP's deletion) with the lease
    columns, unless another replica holds it: a compare-and-set, so one replica does it."""
    result = session.execute(
        sa.update(ResetRequest)
        .where(col(ResetRequest.id) == request_id, col(ResetRequest.state) == RequestState.SUCCEEDED,
               sa.or_(col(ResetRequest.lease_until).is_(None), col(ResetRequest.lease_until) < now))
        .values(lease_owner=owner, lease_until=until)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


def claim_lease(session: Session, *, request_id: str, owner: str, now: datetime, until: datetime,
                since_before: datetime) -> ResetRequest | None:
    """Take an abandoned ``resetting`` request for recovery (a compare-and-set on the condition that found it):
    the request, or None when its holder renewed the lease meanwhile or another replica took it first.
    ``updated_at`` is left alone: recovery's give-up bound counts from when the reset started."""
    result = session.execute(
        sa.update(ResetRequest)
        .where(col(ResetRequest.id) == request_id, col(ResetRequest.state) == RequestState.RESETTING,
               _abandoned(now, since_before))
        .values(lease_owner=owner, lease_until=until)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        return None
    return session.get(ResetRequest, request_id, populate_existing=True)


def renew_lease(session: Session, *, request_id: str, owner: str, until: datetime) -> bool:
    """Move the lease ``owner`` holds on a ``resetting`` request to ``until`` (later: the heartbeat of a live
    reset; now: handing it to the next sweep). False when the request is no longer resetting or no longer
    ``owner``'s."""
    result = session.execute(
        sa.update(ResetRequest)
        .where(col(ResetRequest.id) == request_id, col(ResetRequest.state) == RequestState.RESETTING,
               col(ResetRequest.lease_owner) == owner)
        .values(lease_until=until)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


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
    if rowcount(result) != 1:
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
    if rowcount(result) != 1:
        return None
    append_audit(session, draft=dataclasses.replace(audit, request_id=request_id), at=at)
    return session.get(ResetRequest, request_id, populate_existing=True)


def set_verification(
    session: Session, *, request_id: str, expected: Collection[str], changes: Mapping[str, object],
    audit: AuditDraft | None, match: Mapping[str, object] | None = None, at: datetime | None = None,
    any_state: bool = False,
) -> ResetRequest | None:
    """Compare-and-set the caller's verification of a pending request: from a ``verification`` in ``expected``
    (and every column in ``match`` equal to its value: the attempt's code tries, its Duo txid) to ``changes``.

    The one caller whose UPDATE matches gets the refreshed request and appends ``audit`` (when given); a repeated
    submission, a second replica's poll or an attempt superseded by a newer one gets None and writes nothing.
    ``any_state``: whatever state the request has moved to since the attempt began (a Duo push reported as fraud
    after the approval, or once the reset ran); ``updated_at`` is then left alone (for a request ``resetting`` it
    is when the reset started, which recovery and the follow-ups read).
    """
    at = at or utcnow()
    conditions = [col(ResetRequest.id) == request_id, col(ResetRequest.verification).in_(list(expected))]
    if not any_state:
        conditions.append(col(ResetRequest.state) == RequestState.PENDING_APPROVAL)
    conditions += [getattr(ResetRequest, name) == value for name, value in (match or {}).items()]
    result = session.execute(
        sa.update(ResetRequest).where(*conditions)
        .values(**changes, version=col(ResetRequest.version) + 1, **({} if any_state else {"updated_at": at}))
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        return None
    if audit is not None:
        append_audit(session, draft=dataclasses.replace(audit, request_id=request_id), at=at)
    return session.get(ResetRequest, request_id, populate_existing=True)


def disown(session: Session, *, request_id: str, audit: AuditDraft, at: datetime | None = None,
           unasked_too: bool = False) -> ResetRequest | None:
    """The target's "No", whatever state the request is in: compare-and-set the confirmation from ``pending`` (or
    an earlier ``yes``) to ``no``. A "No" that comes late still counts (the caller alerts security), but only
    once: the caller whose UPDATE matches gets the refreshed request and appends ``audit``; a repeated "No", or
    one to a request that never asked (``off``), gets None and writes nothing. ``unasked_too``: a disowning the
    target made without being asked (reporting the caller's Duo push as fraud) counts on an ``off`` request too.
    ``updated_at`` is left alone: for a request ``resetting`` it is when the reset started, which recovery and the
    follow-ups read.
    """
    at = at or utcnow()
    before = ("pending", "yes", "off") if unasked_too else ("pending", "yes")
    result = session.execute(
        sa.update(ResetRequest)
        .where(col(ResetRequest.id) == request_id, col(ResetRequest.confirmation).in_(before))
        .values(confirmation="no", version=col(ResetRequest.version) + 1)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
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


def stale_verifications(session: Session, *, before: datetime, limit: int = 100) -> list[ResetRequest]:
    """Pending requests whose caller verification is still under way past ``before`` (a code nobody entered, a Duo
    push whose follower stopped with its replica): the sweep ends each with ``set_verification``."""
    query = (
        select(ResetRequest)
        .where(col(ResetRequest.state) == RequestState.PENDING_APPROVAL, col(ResetRequest.verification) == "pending",
               col(ResetRequest.verify_expires_at) < before)
        .order_by(col(ResetRequest.verify_expires_at), col(ResetRequest.id))
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


def remove_approvals(session: Session, *, request_id: str) -> list[Approval]:
    """Take back every approval of the request (they no longer count: ``bot.domain.verification``'s
    ``earlier_approvals_void``) and return them, for the caller's audit rows. Call it in the transaction whose
    compare-and-set locked the request row: an approval committed before that lock is removed, one after it is
    given on top of what the lock protected, and a person whose approval was removed may approve again (the primary
    key no longer holds their row)."""
    removed = list_approvals(session, request_id=request_id)
    for approval in removed:
        session.expunge(approval)  # read as they were; this session must not hand them out again
    if removed:
        session.execute(sa.delete(Approval).where(col(Approval.request_id) == request_id)
                        .execution_options(synchronize_session=False))
    return removed


def list_approvals(session: Session, *, request_id: str) -> list[Approval]:
    """The request's approvals in the order they were given (for the thread and ``/reset-status``)."""
    query = select(Approval).where(col(Approval.request_id) == request_id).order_by(col(Approval.at))
    return list(session.exec(query).all())

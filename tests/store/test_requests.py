"""Requests, transitions, approvals, escalation and expiry on SQLite and PostgreSQL (one thread)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, col

from bot import store
from bot.domain.audit import AuditAction, verify_chain
from bot.domain.lifecycle import RequestState, predecessors
from bot.errors import RequestNotFoundError
from bot.models import REQUEST_ID_ALPHABET, ResetRequest, normalize_request_id
from tests.store.helpers import T0, draft, new_request

pytest_plugins = ("tests.store.dbfixtures",)

S = RequestState
PENDING = {S.PENDING_APPROVAL}


def _timeline(factory: sessionmaker[Session], request_id: str) -> list[tuple[str, str | None, str | None]]:
    with factory.begin() as session:
        return [(e.action, e.from_state, e.to_state) for e in store.audit.audit_for_request(session,
                                                                                            request_id=request_id)]


def _chain_ok(factory: sessionmaker[Session]) -> bool:
    with factory.begin() as session:
        return verify_chain(store.audit.iter_audit(session), head=store.audit.get_audit_head(session)).ok


def test_create_and_read_back(factory: sessionmaker[Session]) -> None:
    created = new_request(factory, unlock=True, approvals_required=2)
    assert re.fullmatch(rf"R-[{REQUEST_ID_ALPHABET}]{{6}}", created.id)
    assert normalize_request_id(created.id.lower()) == created.id
    with factory.begin() as session:
        got = store.requests.get_request(session, request_id=created.id)
        assert got is not None
        assert got.state is S.PENDING_APPROVAL
        assert got.previous_state is None
        assert got.version == 1
        assert (got.created_at, got.created_at.tzinfo) == (T0, UTC)
        assert got.escalate_at == T0 + timedelta(minutes=15)
        assert got.expires_at == T0 + timedelta(minutes=30)
        assert got.escalated_at is None
        assert got.decided_at is None
        assert got.target_upn == "jane.doe@contoso.example"  # UPNs are case-insensitive: stored lower-case
        assert (got.unlock, got.tap, got.approvals_required) == (True, False, 2)
        assert (got.target_sam, got.reason) == ("jdoe", "locked out after holiday")
        assert store.requests.get_request(session, request_id="R-000000") is None
    assert _timeline(factory, created.id) == [("requested", None, "pending_approval")]
    assert _chain_ok(factory)


def test_other_zones_are_stored_as_the_same_instant_and_naive_times_refused(factory: sessionmaker[Session]) -> None:
    paris = T0.astimezone(timezone(timedelta(hours=1)))
    created = new_request(factory, created_at=paris)
    with factory.begin() as session:
        got = store.requests.get_request(session, request_id=created.id)
        assert got is not None
        assert got.created_at == T0
        assert got.created_at.utcoffset() == timedelta(0)
    naive = datetime(2025, 1, 1)
    with pytest.raises(StatementError, match="naive datetime"), factory.begin() as session:
        store.requests.create_request(
            session,
            requester="U0AGENT",
            target_entra_id="x",
            target_upn="x@contoso.example",
            escalate_at=naive,
            expires_at=T0,
            audit=draft(AuditAction.REQUESTED),
        )


def ids(rows: list[ResetRequest]) -> list[str]:
    return [r.id for r in rows]


def test_find_requests_filters_and_orders_recent_first(factory: sessionmaker[Session]) -> None:
    a = new_request(factory, created_at=T0)
    b = new_request(factory, created_at=T0 + timedelta(minutes=1), requester="U0OTHER")
    c = new_request(factory, created_at=T0 + timedelta(minutes=2), target_upn="bob@contoso.example")
    with factory.begin() as session:
        store.requests.transition(session, request_id=a.id, expected=PENDING, to=S.DENIED,
                                  audit=draft(AuditAction.DENIED))
    with factory.begin() as session:
        assert ids(store.requests.find_requests(session)) == [c.id, b.id, a.id]
        assert ids(store.requests.find_requests(session, limit=2)) == [c.id, b.id]
        assert ids(store.requests.find_requests(session, requester="U0AGENT")) == [c.id, a.id]
        assert ids(store.requests.find_requests(session, target_upn="JANE.DOE@contoso.example")) == [b.id, a.id]
        assert ids(store.requests.find_requests(session, states=[S.PENDING_APPROVAL])) == [c.id, b.id]
        assert ids(store.requests.find_requests(session, states=[S.DENIED], requester="U0AGENT")) == [a.id]
        assert store.requests.find_requests(session, states=[]) == []


def test_the_happy_path_through_the_lifecycle(factory: sessionmaker[Session]) -> None:
    req = new_request(factory)
    steps: list[tuple[RequestState, str, dict[str, object]]] = [
        (S.APPROVED, AuditAction.APPROVED, {"decided_at": T0 + timedelta(minutes=1)}),
        (S.RESETTING, AuditAction.RESET_STARTED, {}),
        (S.SUCCEEDED, AuditAction.SUCCEEDED, {"graph_operation_id": "op-42", "verdict": "written_back"}),
    ]
    moved: ResetRequest | None = None
    for i, (to, action, changes) in enumerate(steps, start=2):
        with factory.begin() as session:
            moved = store.requests.transition(
                session,
                request_id=req.id,
                expected=predecessors(to),
                to=to,
                changes=changes,
                audit=draft(action),
                now=T0 + timedelta(minutes=i),
            )
            assert moved is not None
            assert (moved.state, moved.version, moved.updated_at) == (to, i, T0 + timedelta(minutes=i))
    assert moved is not None
    assert moved.previous_state is S.RESETTING
    assert (moved.graph_operation_id, moved.verdict) == ("op-42", "written_back")
    assert moved.decided_at == T0 + timedelta(minutes=1)
    assert _timeline(factory, req.id) == [
        ("requested", None, "pending_approval"),
        ("approved", "pending_approval", "approved"),
        ("reset_started", "approved", "resetting"),
        ("succeeded", "resetting", "succeeded"),
    ]
    with factory.begin() as session:
        last = store.audit.audit_for_request(session, request_id=req.id)[-1]
    # The Graph operation id and verdict reach the audit event without being repeated in the draft.
    assert (last.graph_operation_id, last.verdict, last.correlation_id) == ("op-42", "written_back", "c-1")
    assert _chain_ok(factory)


def test_cancel_reports_the_state_it_really_left(factory: sessionmaker[Session]) -> None:
    req = new_request(factory)
    with factory.begin() as session:
        store.requests.transition(session, request_id=req.id, expected=PENDING, to=S.APPROVED, audit=draft())
    with factory.begin() as session:
        cancelled = store.requests.transition(
            session,
            request_id=req.id,
            expected=predecessors(S.CANCELLED),
            to=S.CANCELLED,
            audit=draft(AuditAction.CANCELLED, actor="U0AGENT"),
        )
    assert cancelled is not None
    assert cancelled.previous_state is S.APPROVED
    assert _timeline(factory, req.id)[-1] == ("cancelled", "approved", "cancelled")


def test_a_lost_compare_and_set_changes_and_audits_nothing(factory: sessionmaker[Session]) -> None:
    req = new_request(factory)
    with factory.begin() as session:
        assert store.requests.transition(session, request_id=req.id, expected=PENDING, to=S.DENIED,
                                         audit=draft()) is not None
    with factory.begin() as session:
        again = store.requests.transition(session, request_id=req.id, expected=PENDING, to=S.APPROVED, audit=draft())
        missing = store.requests.transition(session, request_id="R-000000", expected=PENDING, to=S.APPROVED,
                                            audit=draft())
        assert again is None
        assert missing is None
        got = store.requests.get_request(session, request_id=req.id)
        assert got is not None
        assert (got.state, got.version) == (S.DENIED, 2)
    assert len(_timeline(factory, req.id)) == 2


@pytest.mark.parametrize(
    ("expected", "to", "changes", "message"),
    [
        ({S.PENDING_APPROVAL}, S.SUCCEEDED, {}, "illegal transition pending_approval -> succeeded"),
        ({S.RESETTING, S.APPROVED}, S.CANCELLED, {}, "illegal transition resetting -> cancelled"),
        ({S.SUCCEEDED}, S.FAILED, {}, "illegal transition"),
        (set(), S.APPROVED, {}, "at least one expected state"),
        ({S.PENDING_APPROVAL}, S.APPROVED, {"state": "succeeded"}, "cannot set state"),
        ({S.PENDING_APPROVAL}, S.APPROVED, {"requester": "U0MALLORY"}, "cannot set requester"),
    ],
)
def test_illegal_transitions_are_refused_before_touching_the_database(
    factory: sessionmaker[Session],
    expected: set[RequestState],
    to: RequestState,
    changes: dict[str, object],
    message: str,
) -> None:
    req = new_request(factory)
    with factory.begin() as session, pytest.raises(ValueError, match=message):
        store.requests.transition(session, request_id=req.id, expected=expected, to=to, changes=changes, audit=draft())
    with factory.begin() as session:
        got = store.requests.get_request(session, request_id=req.id)
        assert got is not None
        assert got.state is S.PENDING_APPROVAL


def test_two_distinct_approvers_are_needed_for_a_protected_target(factory: sessionmaker[Session]) -> None:
    req = new_request(factory, approvals_required=2)

    def approve(approver: str) -> RequestState:
        with factory.begin() as session:
            count = store.requests.add_approval(
                session, request_id=req.id, approver=approver, at=T0, audit=draft(AuditAction.APPROVAL_ADDED, approver)
            ).total
            if count >= req.approvals_required:
                won = draft(actor=approver)
                store.requests.transition(session, request_id=req.id, expected=PENDING, to=S.APPROVED, audit=won)
            got = store.requests.get_request(session, request_id=req.id)
            assert got is not None
            return got.state

    assert approve("U0ALICE") is S.PENDING_APPROVAL
    assert approve("U0ALICE") is S.PENDING_APPROVAL  # the same person twice counts once
    assert approve("U0BOB") is S.APPROVED
    assert approve("U0CAROL") is S.APPROVED  # too late: not recorded, no second transition
    with factory.begin() as session:
        assert [a.approver for a in store.requests.list_approvals(session, request_id=req.id)] == ["U0ALICE", "U0BOB"]
        assert store.requests.count_approvals(session, request_id=req.id) == 2
    assert _timeline(factory, req.id) == [
        ("requested", None, "pending_approval"),
        ("approval_added", None, None),
        ("approval_added", None, None),
        ("approved", "pending_approval", "approved"),
    ]


def test_approving_an_unknown_request_is_an_error(factory: sessionmaker[Session]) -> None:
    with factory.begin() as session, pytest.raises(RequestNotFoundError, match="R-000000"):
        store.requests.add_approval(session, request_id="R-000000", approver="U0ALICE")


def test_escalation_and_expiry_are_due_at_the_right_times(factory: sessionmaker[Session]) -> None:
    early = new_request(factory, created_at=T0)  # escalate T0+15, expire T0+30
    late = new_request(factory, created_at=T0 + timedelta(minutes=10))  # escalate T0+25, expire T0+40
    short = new_request(factory, created_at=T0, ttl=timedelta(minutes=4))  # escalate T0+2, expire T0+4
    decided = new_request(factory, created_at=T0)
    with factory.begin() as session:
        store.requests.transition(session, request_id=decided.id, expected=PENDING, to=S.APPROVED, audit=draft())

    def due(minutes: float) -> tuple[list[str], list[str]]:
        now = T0 + timedelta(minutes=minutes)
        with factory.begin() as session:
            return (
                [r.id for r in store.requests.due_for_escalation(session, now=now)],
                [r.id for r in store.requests.due_for_expiry(session, now=now)],
            )

    assert due(0) == ([], [])
    assert due(2) == ([short.id], [])
    assert due(3.99) == ([short.id], [])
    assert due(4) == ([], [short.id])  # expiring, no longer worth escalating
    assert due(15) == ([early.id], [short.id])
    assert due(25) == ([early.id, late.id], [short.id])
    assert due(30) == ([late.id], [short.id, early.id])
    assert due(40) == ([], [short.id, early.id, late.id])

    with factory.begin() as session:
        first = store.requests.mark_escalated(
            session, request_id=early.id, at=T0 + timedelta(minutes=15), audit=draft(AuditAction.ESCALATED, "system")
        )
        assert first is not None
        assert first.escalated_at == T0 + timedelta(minutes=15)
        assert store.requests.mark_escalated(session, request_id=early.id, at=T0 + timedelta(minutes=16)) is None
        assert store.requests.mark_escalated(session, request_id=decided.id, at=T0 + timedelta(minutes=16)) is None
    assert due(25) == ([late.id], [short.id])
    assert _timeline(factory, early.id)[-1] == ("escalated", None, None)

    with factory.begin() as session:
        for r in store.requests.due_for_expiry(session, now=T0 + timedelta(minutes=30)):
            store.requests.transition(session, request_id=r.id, expected=PENDING, to=S.EXPIRED,
                                      audit=draft(actor="system"))
    assert due(40) == ([], [late.id])
    assert _chain_ok(factory)


def test_the_request_message_is_attached_once(factory: sessionmaker[Session]) -> None:
    req = new_request(factory)
    with factory.begin() as session:
        assert store.requests.attach_message(session, request_id=req.id, channel_id="C0HELP",
                                             thread_ts="1700000000.000100")
        assert not store.requests.attach_message(session, request_id=req.id, channel_id="C0HELP",
                                                 thread_ts="1700000001.0")
        got = store.requests.get_request(session, request_id=req.id)
        assert got is not None
        assert (got.channel_id, got.thread_ts, got.version) == ("C0HELP", "1700000000.000100", 2)


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("R-7K3Q9M", "R-7K3Q9M"),
        ("r-7k3q9m", "R-7K3Q9M"),
        (" 7K3Q9M ", "R-7K3Q9M"),
        ("R-7K3Q9O", "R-7K3Q90"),
        ("R-IL0000", "R-110000"),
        ("R-7K3Q9", None),
        ("R-7K3Q9MM", None),
        ("R-7K3Q9U", None),
        ("", None),
    ],
)
def test_request_ids_are_forgiving_to_type(typed: str, canonical: str | None) -> None:
    assert normalize_request_id(typed) == canonical


def test_the_same_command_delivered_twice_makes_one_request(factory: sessionmaker[Session]) -> None:
    first = new_request(factory, source_key="trigger-1")
    with factory.begin() as session:
        again = store.requests.create_request(
            session, requester="U0AGENT", target_entra_id="x", target_upn="jane.doe@contoso.example",
            escalate_at=first.escalate_at, expires_at=first.expires_at, source_key="trigger-1",
            audit=draft(AuditAction.REQUESTED),
        )
    assert again is None
    with factory.begin() as session:
        assert len(store.requests.find_requests(session, target_upn="jane.doe@contoso.example")) == 1
        assert [e.action for e in store.audit.iter_audit(session)] == ["requested"]


def test_lock_request_reads_the_row_as_committed_not_as_the_session_last_saw_it(
        factory: sessionmaker[Session]) -> None:
    """A decision taken inside a transaction reads the target's confirmation as it is now, even when the same
    session had read the request before another change to it."""
    req = new_request(factory, confirmation="pending")
    with factory.begin() as session:
        seen = store.requests.get_request(session, request_id=req.id)
        assert seen is not None and seen.confirmation == "pending"
        session.execute(sa.update(ResetRequest).where(col(ResetRequest.id) == req.id).values(confirmation="yes")
                        .execution_options(synchronize_session=False))
        assert seen.confirmation == "pending", "the session's copy is stale"
        locked = store.requests.lock_request(session, request_id=req.id)
        assert locked is not None and locked.confirmation == "yes"
        assert store.requests.lock_request(session, request_id="R-ZZZZZZ") is None


def test_the_target_guid_is_kept_as_ad_reads_it(factory: sessionmaker[Session]) -> None:
    guid = "{7bcc79df-bb6a-41ad-8bba-ad050c49e1a6}"  # ldap3's form of objectGUID, braces included
    created = new_request(factory, target_guid=guid)
    with factory.begin() as session:
        got = store.requests.get_request(session, request_id=created.id)
        assert got is not None and got.target_guid == guid


def test_a_late_no_is_recorded_once_whatever_the_state(factory: sessionmaker[Session]) -> None:
    """Issue 14, item 3: the target's "No" counts in any state (a late one alerts security), once."""
    created = new_request(factory, confirmation="pending")
    with factory.begin() as session:
        store.requests.transition(session, request_id=created.id, expected=PENDING, to=S.DENIED,
                                  audit=draft(AuditAction.DENIED))
    with factory.begin() as session:
        first = store.requests.disown(session, request_id=created.id,
                                      audit=draft(AuditAction.TARGET_DISOWNED, actor="U0TARGET"))
        assert first is not None and first.confirmation == "no" and first.state == S.DENIED
    with factory.begin() as session:
        assert store.requests.disown(session, request_id=created.id,
                                     audit=draft(AuditAction.TARGET_DISOWNED, actor="U0TARGET")) is None
    yes_first = new_request(factory, confirmation="yes")
    off = new_request(factory, confirmation="off")
    with factory.begin() as session:
        assert store.requests.disown(session, request_id=yes_first.id, audit=draft(AuditAction.TARGET_DISOWNED))
        assert store.requests.disown(session, request_id=off.id, audit=draft(AuditAction.TARGET_DISOWNED)) is None
    with factory.begin() as session:  # never asked, but reported the caller's Duo push as fraud: that counts
        unasked = store.requests.disown(session, request_id=off.id, audit=draft(AuditAction.TARGET_DISOWNED),
                                        unasked_too=True)
        assert unasked is not None and unasked.confirmation == "no"
    assert [a for a, _, _ in _timeline(factory, created.id)].count("target_disowned") == 1
    assert _chain_ok(factory)


def test_find_requests_by_target_object_id(factory: sessionmaker[Session]) -> None:
    """``/reset-status`` for someone outside the helpdesk: the requests about them, found by Entra object id."""
    mine = new_request(factory, target_entra_id="e-alice", target_upn="alice@corp.example.test")
    new_request(factory, target_entra_id="e-bob", target_upn="bob@corp.example.test")
    with factory.begin() as session:
        assert [r.id for r in store.requests.find_requests(session, target_entra_id="e-alice")] == [mine.id]


def test_a_withheld_tap_without_a_deletion_on_record_is_owed_once_and_taken_by_one(
        factory: sessionmaker[Session]) -> None:
    """Recovery's query for a withheld TAP whose process stopped before deleting it (bot.services.reset_recovery):
    a ``succeeded`` TAP reset with ``unrevealed_discarded`` and no deletion outcome is owed, with its reason, until
    one is recorded; a second replica's claim loses to the first."""
    req = new_request(factory, tap=True)
    with factory.begin() as session:
        session.execute(sa.update(ResetRequest).where(col(ResetRequest.id) == req.id)
                        .values(state=RequestState.SUCCEEDED, updated_at=T0 + timedelta(minutes=1)))
        store.audit.append_audit(session, draft=draft(AuditAction.UNREVEALED_DISCARDED, actor="system",
                                                      request_id=req.id, detail={"reason": "withdrawn"}))
    before = T0 + timedelta(minutes=5)
    with factory() as session:
        owed = store.requests.withheld_taps_owed(session, made_after=T0, made_before=before)
        assert [(r.id, why) for r, why in owed] == [(req.id, "withdrawn")]
        assert store.requests.withheld_taps_owed(session, made_after=T0 + timedelta(minutes=2),
                                                 made_before=T0 + timedelta(minutes=5)) == []
    with factory.begin() as session:
        assert store.requests.claim_succeeded(session, request_id=req.id, owner="a", now=T0, until=T0 + timedelta(1))
    with factory.begin() as session:
        assert not store.requests.claim_succeeded(session, request_id=req.id, owner="b", now=T0,
                                                  until=T0 + timedelta(1))
        store.audit.append_audit(session, draft=draft(AuditAction.TAP_DELETED, actor="system", request_id=req.id))
    with factory() as session:
        assert store.requests.withheld_taps_owed(session, made_after=T0, made_before=before) == []

"""The tamper-evident audit trail: hashing, verification, export — in memory and on both databases."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from bot import store
from bot.domain.audit import (
    FIELDS,
    GENESIS_HASH,
    AuditAction,
    AuditDraft,
    canonical_bytes,
    canonical_detail,
    event_hash,
    from_csv,
    from_json,
    to_csv,
    to_json,
    verify_chain,
)
from bot.models import AuditEvent
from tests.store.helpers import T0, draft, run_concurrently

pytest_plugins = ("tests.store.dbfixtures",)


def chain(n: int) -> list[AuditEvent]:
    """n correctly chained events, built in memory the way the store builds them."""
    events: list[AuditEvent] = []
    prev = GENESIS_HASH
    for seq in range(1, n + 1):
        event = AuditEvent(
            seq=seq,
            at=T0 + timedelta(seconds=seq),
            request_id=f"R-00000{seq % 10}",
            actor=f"U{seq}",
            action=AuditAction.APPROVED.value,
            from_state="pending_approval",
            to_state="approved",
            correlation_id=f"c-{seq}",
            detail=canonical_detail({"n": seq}),
            prev_hash=prev,
            hash="",
        )
        event.hash = event_hash(event)
        prev = event.hash
        events.append(event)
    return events


def copy(event: AuditEvent, **changes: object) -> AuditEvent:
    return AuditEvent.model_validate({**event.model_dump(), **changes})


# --- pure -----------------------------------------------------------------------------------------------------


def test_golden_hash_pins_the_canonical_form() -> None:
    # If this changes, every stored chain stops verifying: change the format only with a migration of the trail.
    event = AuditEvent(
        seq=1,
        at=datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        request_id="R-7K3Q9M",
        actor="U0AGENT",
        action="requested",
        from_state=None,
        to_state="pending_approval",
        correlation_id="c-1",
        graph_operation_id=None,
        verdict=None,
        detail='{"reason":"locked out"}',
        prev_hash=GENESIS_HASH,
        hash="",
    )
    expected = (
        '{"action":"requested","actor":"U0AGENT","at":"2025-01-02T03:04:05.678901+00:00","correlation_id":"c-1",'
        '"detail":"{\\"reason\\":\\"locked out\\"}","from_state":null,"graph_operation_id":null,'
        f'"prev_hash":"{"0" * 64}","request_id":"R-7K3Q9M","seq":1,"to_state":"pending_approval","verdict":null}}'
    )
    assert canonical_bytes(event).decode() == expected
    assert event_hash(event) == hashlib.sha256(expected.encode()).hexdigest()
    assert event_hash(event) == "938b05e7aef9d1ad5f89b90968933ecf0aa3b0ea897f2425d2afd24a959a5deb"


def test_hash_depends_on_meaning_not_layout_of_detail_or_zone_of_time() -> None:
    base = chain(1)[0]
    relaid = copy(base, detail='{ "n" : 1 }', at=base.at.astimezone(timezone(timedelta(hours=2))))
    assert event_hash(relaid) == base.hash
    assert event_hash(copy(base, detail='{"n": 2}')) != base.hash


def test_secrets_are_refused_in_detail() -> None:
    for key in ("password", "temporary_password", "Passcode", "client_secret", "pass"):
        with pytest.raises(ValueError, match="secret"):
            canonical_detail({"outer": [{key: "hunter2"}]})
    assert canonical_detail({"tap": True, "bypass_reason": "x"}) == '{"bypass_reason":"x","tap":true}'
    with pytest.raises(TypeError):
        canonical_detail('["not", "an", "object"]')
    with pytest.raises(ValueError, match="JSON compliant"):
        canonical_detail({"x": float("nan")})


def test_an_intact_chain_verifies() -> None:
    events = chain(6)
    result = verify_chain(events, head=(6, events[-1].hash))
    assert result.ok
    assert result.checked == 6
    assert verify_chain([]).ok


@pytest.mark.parametrize("field", [f for f in FIELDS if f not in ("seq", "prev_hash", "hash")])
def test_any_changed_field_is_detected_at_its_seq(field: str) -> None:
    events = chain(5)
    original = getattr(events[2], field)
    forged: object = (
        original + timedelta(microseconds=1)
        if isinstance(original, datetime)
        else '{"n":99}'
        if field == "detail"
        else "mallory"
    )
    events[2] = copy(events[2], **{field: forged})
    result = verify_chain(events)
    assert not result.ok
    assert result.first_bad_seq == 3
    assert "altered" in result.reason


def test_a_deleted_row_is_detected() -> None:
    events = chain(5)
    del events[1]
    result = verify_chain(events)
    assert (result.ok, result.first_bad_seq) == (False, 2)
    assert "missing" in result.reason


def test_a_deleted_row_with_renumbering_is_detected() -> None:
    events = chain(5)
    del events[1]
    events = [copy(e, seq=i) if i >= 2 else e for i, e in enumerate(events, start=1)]
    result = verify_chain(events)
    assert (result.ok, result.first_bad_seq) == (False, 2)


def test_an_inserted_row_is_detected() -> None:
    events = chain(4)
    forged = copy(events[1], actor="mallory", prev_hash=events[1].hash, seq=3)
    forged.hash = event_hash(forged)  # a well-formed event that claims to follow event 2 ...
    events.insert(2, forged)  # ... but then the real event 3 no longer fits
    result = verify_chain(events)
    assert (result.ok, result.first_bad_seq) == (False, 3)
    # Renumbering the rows after it does not help: the next one's seq and prev_hash are both hashed.
    events = events[:3] + [copy(e, seq=e.seq + 1) for e in events[3:]]
    result = verify_chain(events)
    assert (result.ok, result.first_bad_seq) == (False, 4)


def test_reordered_rows_are_detected() -> None:
    events = chain(5)
    events[1], events[2] = events[2], events[1]
    assert verify_chain(events).first_bad_seq == 2
    # Swapping the seq numbers too does not help: seq is hashed.
    events = chain(5)
    events[1], events[2] = copy(events[2], seq=2), copy(events[1], seq=3)
    assert verify_chain(events).first_bad_seq == 2


def test_a_truncated_tail_needs_the_head_to_be_seen() -> None:
    events = chain(5)
    head = (5, events[-1].hash)
    assert verify_chain(events[:3]).ok
    result = verify_chain(events[:3], head=head)
    assert (result.ok, result.first_bad_seq) == (False, 4)


def test_verification_can_resume_from_a_checkpoint() -> None:
    events = chain(6)
    assert verify_chain(events[3:], after=(3, events[2].hash)).ok
    assert verify_chain(events[3:], after=(3, GENESIS_HASH)).first_bad_seq == 4


def test_unparseable_detail_is_reported_not_raised() -> None:
    events = chain(3)
    events[1] = copy(events[1], detail="{not json")
    result = verify_chain(events)
    assert (result.ok, result.first_bad_seq) == (False, 2)


# --- on the databases -----------------------------------------------------------------------------------------


def _append(factory: sessionmaker[Session], n: int) -> None:
    for i in range(n):
        with factory.begin() as session:
            store.audit.append_audit(session, draft=draft(AuditAction.REFUSED, actor=f"U{i}", detail={"i": i}), at=T0)


def _verify(factory: sessionmaker[Session]) -> tuple[bool, int | None, int]:
    with factory.begin() as session:
        result = verify_chain(store.audit.iter_audit(session, batch_size=3), head=store.audit.get_audit_head(session))
    return result.ok, result.first_bad_seq, result.checked


def test_db_chain_verifies_and_head_follows(factory: sessionmaker[Session]) -> None:
    assert _verify(factory) == (True, None, 0)
    _append(factory, 7)
    assert _verify(factory) == (True, None, 7)
    with factory.begin() as session:
        events = list(store.audit.iter_audit(session))
        assert [e.seq for e in events] == list(range(1, 8))
        assert events[0].prev_hash == GENESIS_HASH
        assert store.audit.get_audit_head(session) == (7, events[-1].hash)
        assert [e.seq for e in store.audit.iter_audit(session, after_seq=5)] == [6, 7]


def test_db_tampered_field_is_detected_with_its_seq(engine: Engine, factory: sessionmaker[Session]) -> None:
    _append(factory, 5)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_event SET actor = 'mallory' WHERE seq = 3"))
    assert _verify(factory) == (False, 3, 2)


def test_db_deleted_middle_row_is_detected(engine: Engine, factory: sessionmaker[Session]) -> None:
    _append(factory, 5)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_event WHERE seq = 3"))
    assert _verify(factory) == (False, 3, 2)


def test_db_deleted_last_row_is_detected_through_the_head(engine: Engine, factory: sessionmaker[Session]) -> None:
    _append(factory, 5)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_event WHERE seq = 5"))
    assert _verify(factory) == (False, 5, 4)


def test_db_a_failed_transaction_leaves_no_gap(factory: sessionmaker[Session]) -> None:
    _append(factory, 2)
    session = factory()
    store.audit.append_audit(session, draft=draft())
    session.rollback()  # the caller's work failed after the append
    session.close()
    _append(factory, 1)
    assert _verify(factory) == (True, None, 3)


def test_db_secret_detail_is_refused_before_anything_is_written(factory: sessionmaker[Session]) -> None:
    with pytest.raises(ValueError, match="secret"), factory.begin() as session:
        store.audit.append_audit(session, draft=draft(detail={"password": "Winter2025!"}))
    assert _verify(factory) == (True, None, 0)


def test_db_twenty_concurrent_appends_keep_one_chain(factory: sessionmaker[Session]) -> None:
    _append(factory, 1)

    def work(i: int) -> int:
        with factory.begin() as session:
            return store.audit.append_audit(session, draft=draft(AuditAction.REFUSED, actor=f"U{i}")).seq

    seqs = run_concurrently(20, work)
    assert sorted(seqs) == list(range(2, 22))
    assert _verify(factory) == (True, None, 21)
    with factory.begin() as session:
        prevs = [e.prev_hash for e in store.audit.iter_audit(session)]
    assert len(set(prevs)) == 21  # no fork: no two events follow the same predecessor


def test_db_export_round_trips_every_field(factory: sessionmaker[Session]) -> None:
    tricky = 'comma, "quote", newline\nand ünïcödé ✓'
    with factory.begin() as session:
        store.audit.append_audit(session, draft=draft(AuditAction.REQUESTED, actor="U0AGENT", detail={}), at=T0)
        store.audit.append_audit(
            session,
            draft=AuditDraft(
                actor="U0APPROVER",
                action=AuditAction.SUCCEEDED,
                request_id="R-7K3Q9M",
                from_state="resetting",
                to_state="succeeded",
                correlation_id="c-9",
                graph_operation_id="op-123",
                verdict="written_back",
                detail={"reason": tricky, "rules": ["length", "history"], "n": 3, "ok": True, "none": None},
            ),
            at=T0 + timedelta(seconds=1),
        )
    with factory.begin() as session:
        events = list(store.audit.iter_audit(session))
        head = store.audit.get_audit_head(session)
    originals = [e.model_dump() for e in events]
    assert originals[1]["detail"] == canonical_detail(
        {"reason": tricky, "rules": ["length", "history"], "n": 3, "ok": True, "none": None}
    )
    for exported, reader in ((to_csv(events), from_csv), (to_json(events), from_json)):
        back = reader(exported)
        assert [e.model_dump() for e in back] == originals
        assert verify_chain(back, head=head).ok
    rows = json.loads(to_json(events))
    assert list(rows[0]) == list(FIELDS)
    assert rows[1]["detail"]["rules"] == ["length", "history"]
    assert rows[1]["at"] == "2025-03-04T09:00:01.123456+00:00"
    assert to_csv(events).splitlines()[0] == ",".join(FIELDS)


def test_db_exported_tampering_is_detected(factory: sessionmaker[Session]) -> None:
    _append(factory, 3)
    with factory.begin() as session:
        exported = to_json(store.audit.iter_audit(session))
    rows = json.loads(exported)
    rows[1]["verdict"] = "succeeded"
    result = verify_chain(from_json(json.dumps(rows)))
    assert (result.ok, result.first_bad_seq) == (False, 2)


def test_draft_is_immutable() -> None:
    d = draft()
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.actor = "mallory"  # type: ignore[misc]

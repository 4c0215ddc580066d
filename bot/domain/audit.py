"""The audit trail's rules, as pure functions: what an event is, how it is hashed, how a chain is verified,
how it is exported.

Each event's ``hash`` is SHA-256 over a canonical JSON object of all its other fields, ``prev_hash`` included,
and ``prev_hash`` is the previous event's ``hash`` (64 zeros for the first). Changing, deleting, inserting or
reordering a stored row therefore breaks the chain at that row, and ``verify_chain`` says where. Someone able to
rewrite the whole table *and* recompute every hash is not caught by the chain alone: publishing the head hash
elsewhere (e.g. in the daily ops summary) anchors it.

``bot.store.audit.append_audit`` uses ``event_hash`` so that writing and verifying share one definition. This module
imports nothing from the store or any client (it is a leaf), which is what makes that safe.

The exports carry every column, hashes included, so that an exported file can be verified offline with
``from_csv`` / ``from_json`` + ``verify_chain``. They are evidence, so values are written verbatim: the CSV is not
"defused" for spreadsheets (that would change the data and break verification) — open it as text.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from bot.models import AuditEvent

#: ``prev_hash`` of the first event.
GENESIS_HASH = "0" * 64

#: The exported columns, in order; every one of them except ``hash`` is covered by ``hash``.
FIELDS: tuple[str, ...] = (
    "seq",
    "at",
    "request_id",
    "actor",
    "action",
    "from_state",
    "to_state",
    "correlation_id",
    "graph_operation_id",
    "verdict",
    "detail",
    "prev_hash",
    "hash",
)
_OPTIONAL_TEXT = ("request_id", "from_state", "to_state", "correlation_id", "graph_operation_id", "verdict")

#: Detail keys that look like a secret. A tripwire, not a guarantee: the real rule is that the password never
#: reaches code that builds an audit event.
_SECRET_KEY_RE = re.compile(r"pass(word|code|phrase)|secret|(^|_)pass$", re.IGNORECASE)


class AuditAction(StrEnum):
    """The actions the product records. ``AuditDraft.action`` is a ``str`` so other domains can add their own."""

    REQUESTED = "requested"
    APPROVAL_ADDED = "approval_added"
    #: An approval given before the caller was verified that no longer counts (``bot.domain.verification``'s
    #: ``earlier_approvals_void``: the caller was verified by a call-back after it). Its ``approval_added`` row stays;
    #: detail ``approver``, ``approved_at``, ``method`` and ``reason``.
    APPROVAL_NOT_COUNTED = "approval_not_counted"
    APPROVED = "approved"
    DENIED = "denied"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    ESCALATED = "escalated"
    RESET_STARTED = "reset_started"
    UNLOCKED = "unlocked"
    SUCCEEDED = "succeeded"
    REJECTED = "rejected"
    FAILED = "failed"
    #: The temporary password was shown to the requester (once), or wiped unseen after its ten minutes.
    REVEALED = "revealed"
    UNREVEALED_WIPED = "unrevealed_wiped"
    #: Reveal was pressed but the password could not be shown (Slack did not open the modal, or this replica
    #: cannot unseal it): it stays sealed for the next press.
    REVEAL_FAILED = "reveal_failed"
    #: A Cancel or Deny pressed while the reset was already running (a message not yet redrawn): Graph's reset
    #: cannot be stopped, so its password is discarded when it is made (``UNREVEALED_DISCARDED``).
    RESET_WITHDRAWN = "reset_withdrawn"
    #: A password made after the target's "No" or a withdrawal was discarded at once, never sealed nor revealable
    #: (detail ``reason``: ``target_said_no`` or ``withdrawn``).
    UNREVEALED_DISCARDED = "unrevealed_discarded"
    #: The target pressed "This wasn't me" on the DM telling them their password was reset.
    RESET_DISOWNED = "reset_disowned"
    #: The target answered the "Did you ask helpdesk for this?" DM.
    TARGET_CONFIRMED = "target_confirmed"
    TARGET_DISOWNED = "target_disowned"
    #: Follow-ups (spec section 5): what AD showed after the reset, and whether the user replaced the password.
    WRITEBACK_CONFIRMED = "writeback_confirmed"
    WRITEBACK_NOT_SEEN = "writeback_not_seen"
    #: AD shows what a landed reset would show, but also what it showed before: neither confirmed nor warned.
    WRITEBACK_UNPROVEN = "writeback_unproven"
    USER_CHOSE_OWN = "user_chose_own"
    REPLACE_REMINDED = "replace_reminded"
    NEVER_REPLACED = "never_replaced"
    #: A message the bot owed (a follow-up's outcome, a health change) that Slack never took before the outbox's
    #: give-up horizon: the outcome stands, nobody was told.
    MESSAGE_GIVEN_UP = "message_given_up"
    #: An abuse limit told security (``bot.domain.limits``): an agent's first refusal in an hour, the whole
    #: helpdesk past its hourly number, a target reset again within the repeat window. The first two are also how
    #: every replica knows the alert went out in this window.
    AGENT_LIMIT_ALERTED = "agent_limit_alerted"
    TEAM_LIMIT_ALERTED = "team_limit_alerted"
    REPEAT_TARGET_ALERTED = "repeat_target_alerted"
    #: Caller verification (``bot.domain.verification``): an attempt started with a method, a wrong code entered,
    #: the attempt failed (wrong codes, a Duo deny, fraud or timeout, an expired code), the caller verified.
    VERIFY_STARTED = "verify_started"
    VERIFY_CODE_WRONG = "verify_code_wrong"
    VERIFY_FAILED = "verify_failed"
    CALLER_VERIFIED = "caller_verified"
    #: Containment of a disowned reset ("This wasn't me", or the target's "No" after it was made): the target's
    #: sign-in sessions revoked, the Temporary Access Pass the bot issued deleted, or one of those not done (detail
    #: ``step`` and ``reason``: left for a person, or for the next press).
    SESSIONS_REVOKED = "sessions_revoked"
    TAP_DELETED = "tap_deleted"
    CONTAINMENT_FAILED = "containment_failed"
    #: A member of the security group pressed Scramble password: the password reset again to one nobody is shown.
    SCRAMBLED = "scrambled"
    #: A Scramble press passed every check and holds the button until its ``scrambled``/``scramble_failed``.
    SCRAMBLE_STARTED = "scramble_started"
    SCRAMBLE_FAILED = "scramble_failed"
    #: Someone tried something they may not do (ineligible click, self-approval, ...): nothing changed.
    REFUSED = "refused"


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditDraft:
    """What a caller knows about an event before it is appended; the store adds seq, time and hashes.

    ``bot.store.requests.transition`` fills ``request_id``, ``from_state`` and ``to_state`` itself (from the row it
    really changed), so a transition's draft only needs who, what and why.
    """

    actor: str
    action: str
    request_id: str | None = None
    from_state: str | None = None
    to_state: str | None = None
    correlation_id: str | None = None
    graph_operation_id: str | None = None
    verdict: str | None = None
    #: JSON-serialisable facts (reason, channel, rule name, ...); never a password, TAP or token.
    detail: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of ``verify_chain``: ``ok``, or the first ``seq`` found wrong and why, in one sentence."""

    ok: bool
    first_bad_seq: int | None = None
    reason: str = ""
    #: How many events were checked (all of them when ok).
    checked: int = 0


def _check_no_secrets(value: object, path: str = "") -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if not isinstance(key, str):
                raise TypeError(f"audit detail keys must be strings, got {key!r} at {path or 'top level'}")
            if _SECRET_KEY_RE.search(key):
                raise ValueError(f"audit detail key {path + key!r} looks like a secret; secrets are never audited")
            _check_no_secrets(inner, f"{path}{key}.")
    elif isinstance(value, list | tuple):
        for inner in value:
            _check_no_secrets(inner, path)


def canonical_detail(detail: Mapping[str, object] | str) -> str:
    """The one text form of an event's detail: JSON, keys sorted, compact, UTF-8, no NaN/Infinity.

    Accepts the stored text too (re-canonicalising it), so hashing depends on the detail's meaning, not on how a
    JSON export happened to lay it out.
    """
    value: object = json.loads(detail) if isinstance(detail, str) else detail
    if not isinstance(value, Mapping):
        raise TypeError("audit detail must be a JSON object")
    _check_no_secrets(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def format_at(at: datetime) -> str:
    """An instant as hashed and exported: UTC, ISO 8601, always with microseconds (both databases keep them)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at!r} in an audit event")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _scalar_fields(event: AuditEvent) -> dict[str, object]:
    """The fields the hash and the export write alike (``at`` as its canonical text), in the export's order."""
    return {
        "seq": event.seq,
        "at": format_at(event.at),
        "request_id": event.request_id,
        "actor": event.actor,
        "action": event.action,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "correlation_id": event.correlation_id,
        "graph_operation_id": event.graph_operation_id,
        "verdict": event.verdict,
    }


def canonical_bytes(event: AuditEvent) -> bytes:
    """The exact bytes ``event_hash`` digests: a JSON object of every field but ``hash``, keys sorted."""
    body = {**_scalar_fields(event), "detail": canonical_detail(event.detail), "prev_hash": event.prev_hash}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def event_hash(event: AuditEvent) -> str:
    """SHA-256 (hex) of ``canonical_bytes(event)``: what ``event.hash`` must equal."""
    return hashlib.sha256(canonical_bytes(event)).hexdigest()


def verify_chain(
    events: Iterable[AuditEvent],
    *,
    after: tuple[int, str] = (0, GENESIS_HASH),
    head: tuple[int, str] | None = None,
) -> VerifyResult:
    """Check that ``events`` (in the order given) form one unbroken chain.

    ``after`` is the (seq, hash) the first event follows: the genesis by default, or a checkpoint already
    verified, so a long trail can be checked incrementally. ``head`` is ``bot.store.audit.get_audit_head``'s answer;
    with it, deleting the *newest* events (which leaves a shorter but valid chain) is caught too.

    Detected, with the first seq concerned: a changed field (hash mismatch), a deleted row (seq gap), an
    inserted row or reordered rows (seq out of order, or prev_hash not the previous hash), a missing tail.
    """
    expected_seq, prev_hash = after[0] + 1, after[1]
    checked = 0
    for event in events:
        problem = _check_event(event, expected_seq=expected_seq, prev_hash=prev_hash)
        if problem is not None:
            return VerifyResult(False, problem[0], problem[1], checked)
        prev_hash = event.hash
        expected_seq += 1
        checked += 1
    last_seq = expected_seq - 1
    if head is None or (last_seq, prev_hash) == head:
        return VerifyResult(True, None, "", checked)
    if head[0] > last_seq:
        return VerifyResult(False, last_seq + 1, f"events {last_seq + 1}-{head[0]} are missing at the end", checked)
    return VerifyResult(False, last_seq, f"the chain ends at {last_seq} but its recorded head is {head[0]}", checked)


def _check_event(event: AuditEvent, *, expected_seq: int, prev_hash: str) -> tuple[int, str] | None:
    """(first bad seq, reason) if ``event`` cannot come next in the chain, else None."""
    if event.seq > expected_seq:
        gap = f"{expected_seq}" if event.seq == expected_seq + 1 else f"{expected_seq}-{event.seq - 1}"
        return expected_seq, f"event {gap} is missing: found {event.seq} next (deleted, or rows out of order)"
    if event.seq < expected_seq:
        return event.seq, f"event {event.seq} is out of order (it comes after {expected_seq - 1})"
    if event.prev_hash != prev_hash:
        return event.seq, f"event {event.seq} does not follow event {expected_seq - 1} (prev_hash differs)"
    try:
        recomputed = event_hash(event)
    except (ValueError, TypeError) as e:
        return event.seq, f"event {event.seq} cannot be hashed: {e}"
    if recomputed != event.hash:
        return event.seq, f"event {event.seq} was altered (its hash does not match its fields)"
    return None


# --- export ---------------------------------------------------------------------------------------------------


def _row(event: AuditEvent) -> dict[str, object]:
    return {**_scalar_fields(event), "detail": json.loads(event.detail), "prev_hash": event.prev_hash,
            "hash": event.hash}


def to_json(events: Iterable[AuditEvent]) -> str:
    """The events as a JSON array of objects (``FIELDS``), ``detail`` as a nested object, ``at`` ISO 8601 UTC."""
    return json.dumps([_row(e) for e in events], ensure_ascii=False, indent=1)


def to_csv(events: Iterable[AuditEvent]) -> str:
    """The events as CSV with a header row (``FIELDS``); empty cell = null, ``detail`` as canonical JSON text."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELDS)
    for event in events:
        row = _row(event)
        row["detail"] = canonical_detail(event.detail)
        writer.writerow(["" if row[name] is None else row[name] for name in FIELDS])
    return out.getvalue()


def _event_from(raw: Mapping[str, object]) -> AuditEvent:
    missing = [name for name in FIELDS if name not in raw]
    if missing:
        raise ValueError(f"audit export row lacks {', '.join(missing)}")
    detail = raw["detail"]
    optional = {name: (None if raw[name] in (None, "") else str(raw[name])) for name in _OPTIONAL_TEXT}
    return AuditEvent(
        seq=int(str(raw["seq"])),
        at=datetime.fromisoformat(str(raw["at"])),
        actor=str(raw["actor"]),
        action=str(raw["action"]),
        detail=canonical_detail(detail if isinstance(detail, str | Mapping) else str(detail)),
        prev_hash=str(raw["prev_hash"]),
        hash=str(raw["hash"]),
        **optional,
    )


def from_json(text: str) -> list[AuditEvent]:
    """Events read back from ``to_json`` output (detached objects, for ``verify_chain``)."""
    rows = json.loads(text)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError("an audit JSON export is an array of objects")
    return [_event_from(r) for r in rows]


def from_csv(text: str) -> list[AuditEvent]:
    """Events read back from ``to_csv`` output (detached objects, for ``verify_chain``)."""
    return [_event_from(r) for r in csv.DictReader(io.StringIO(text))]

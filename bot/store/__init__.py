"""The queries, one module per domain, named like the services: ``store.requests`` (requests, transitions,
approvals), ``store.audit``, ``store.followups``, ``store.outbox``, ``store.health``, ``store.links`` (agents'
Entra links), ``store.sealed`` (a temporary password until its one reveal),
``store.limits`` (what the abuse limits count) and ``store.replay`` (signed HTTP
requests already seen); ``store.shared`` holds the after-commit hook they use. Keyword-only, session passed in,
no product rules.

The caller owns the transaction (``with factory.begin() as session:``) and should end it right after the
store call: a transition or an audit append holds row locks — and the audit head, which every appender needs —
until commit. Nothing here commits.

Concurrency contract:

- ``requests.transition`` is one conditional UPDATE (``WHERE id = :id AND state IN (:expected)``); whoever's
  UPDATE matches wins, everyone else gets ``None``. Only the winner appends an audit event. A lost race is *not*
  audited: it is a duplicate click, a Slack redelivery or a second replica doing the same job, and nothing was
  refused — the action the person asked for happened, just not through this call. Auditing it would let one
  click storm write fifty events and queue fifty writers on the audit head. Refusals the product decides (an
  ineligible approver, self-approval, ...) are audited by the service with ``audit.append_audit`` and action
  ``refused``.
- ``audit.append_audit`` first UPDATEs the single ``audit_head`` row: PostgreSQL row-locks it until commit,
  SQLite already holds the write lock (BEGIN IMMEDIATE), so appends are serialised and the chain cannot fork.
- Lock order is request row, then audit head. Within one transaction, do any ``transition`` before an
  unrelated ``append_audit``, never the reverse, or two transactions can deadlock on PostgreSQL.

PostgreSQL's dialect module (``sqlalchemy.dialects.postgresql``, for its ``INSERT … ON CONFLICT``) is imported
inside the functions that use it, on a PostgreSQL database only: it costs a SQLite deployment 30 ms of every
start for nothing (the engine of a PostgreSQL deployment imports it anyway).
"""

from bot.store import audit, followups, health, limits, links, outbox, replay, requests, sealed, shared

__all__ = ["audit", "followups", "health", "limits", "links", "outbox", "replay", "requests", "sealed", "shared"]

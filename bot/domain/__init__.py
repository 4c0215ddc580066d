"""The product's vocabulary and its pure rules: the request's state machine (``lifecycle``), who may do what
(``rules``, ``entra_roles``), what people type (``parse``), what a reset's outcome means (``verdict``), the
follow-ups' and the outbox's timing (``followup_rules``, ``outbox_rules``), the health model (``health_state``) and
the audit chain (``audit``).

Nothing here does I/O, so every rule is testable exhaustively and without a lab. These modules sit below the
services, the store and the messages, which all speak this vocabulary; they import only ``bot.models``,
``bot.policy``, ``bot.settings`` and ``bot.errors`` (the import contracts in pyproject.toml hold this). Keep this
``__init__`` free of imports.
"""

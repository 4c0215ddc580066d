"""Every sentence the bot says and every Block Kit payload it builds, one module per domain, named like the
services: ``messages.requests`` (a request, its refusals, its thread message, the target's confirmation),
``messages.reset`` (the verdict, the TAP, the reveal), ``messages.containment`` (a disowned reset's
containment and Scramble password), ``messages.followups``, ``messages.health``,
``messages.links`` (linking an Entra account), ``messages.status`` and ``messages.home`` (``/reset-status``,
App Home), ``messages.doctor``, ``messages.cli`` and ``messages.audit`` (the operator's commands),
``messages.limits`` (the abuse limits at ``/reset``), ``messages.commands`` (help and usage) and
``messages.errors`` (the error handler's sentences);
``messages.format`` holds what they share (dates, buttons, lists, durations).

Call them as ``messages.reset.verdict_sentence(...)``: the domain's name says where a sentence lives. Nothing
here ever receives a password, a TAP or a code: the builders take requests, names and verdicts only.
"""

from bot.messages import (
    audit,
    cli,
    commands,
    containment,
    doctor,
    errors,
    followups,
    format,
    health,
    home,
    limits,
    links,
    requests,
    reset,
    status,
    verification,
)

__all__ = [
    "audit",
    "cli",
    "commands",
    "containment",
    "doctor",
    "errors",
    "followups",
    "format",
    "health",
    "home",
    "limits",
    "links",
    "requests",
    "reset",
    "status",
    "verification",
]

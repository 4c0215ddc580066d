"""``/reset`` and ``/reset-status``: ack at once (Slack's 3 s are hard), then do the work and answer privately."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, BoltContext, Respond

from handlers.context import correlation_of, services_of


def handle_reset(ack: Ack, command: dict[str, Any], context: BoltContext, respond: Respond) -> None:
    ack()
    sentence = services_of(context).requests.create(
        requester=command["user_id"], channel=command["channel_id"], text=command.get("text") or "",
        correlation_id=correlation_of(context), source_key=command.get("trigger_id"),
    )
    if sentence:
        respond(text=sentence, response_type="ephemeral")


def handle_reset_status(ack: Ack, command: dict[str, Any], context: BoltContext, respond: Respond) -> None:
    ack()
    sentence = services_of(context).requests.status(actor=command["user_id"], text=command.get("text") or "",
                                                    correlation_id=correlation_of(context))
    respond(text=sentence, response_type="ephemeral")

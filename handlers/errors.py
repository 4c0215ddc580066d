"""The one error handler: every failure reaches the person as one sentence with a correlation id.

Known failures (bot.errors) say what was unavailable; anything else is "something went wrong on my side".
Both are logged with the correlation id and the traceback, never with a secret (the product's errors are
written without them, and log redaction is the next line of defence).
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import BoltContext
from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient

from bot import messages
from bot.errors import ResetbotError
from handlers.context import correlation_of

log = logging.getLogger("resetbot.errors")


def handle_error(error: Exception, body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    cid = correlation_of(context)
    log.error("unhandled error (%s): %s", cid, type(error).__name__, exc_info=error)
    if isinstance(error, ResetbotError):
        sentence = messages.errors.service_unavailable(str(error), cid)
    else:
        sentence = messages.errors.internal_error(cid)
    user = (body.get("user") or {}).get("id") or body.get("user_id")
    channel = (body.get("channel") or {}).get("id") or body.get("channel_id")
    try:
        if body.get("response_url"):
            WebhookClient(body["response_url"]).send(text=sentence, response_type="ephemeral")
        elif user and channel:
            client.chat_postEphemeral(channel=channel, user=user, text=sentence)
        elif user:
            client.chat_postMessage(channel=user, text=sentence)
    except Exception:
        log.exception("could not tell %s about error %s", user, cid)

"""The buttons on a request message and the target's DM, and the deny-reason modal."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import messages
from bot.ids import Block
from handlers.context import correlation_of, services_of


def _answer(respond: Respond, sentence: str | None) -> None:
    if sentence:
        respond(text=sentence, response_type="ephemeral", replace_original=False)


def handle_approve(ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext,
                   respond: Respond) -> None:
    ack()
    request_id, view = messages.requests.approve_click(action["value"])
    _answer(respond, services_of(context).requests.approve(
        request_id=request_id, actor=body["user"]["id"], correlation_id=correlation_of(context), view=view))


def handle_cancel(ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext,
                  respond: Respond) -> None:
    ack()
    _answer(respond, services_of(context).requests.cancel(
        request_id=action["value"], actor=body["user"]["id"], correlation_id=correlation_of(context)))


def handle_deny_click(ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext,
                      respond: Respond, client: WebClient) -> None:
    """Ask for a reason first; someone who may not deny gets the refusal instead of a modal."""
    ack()
    request_id = action["value"]
    refusal = services_of(context).requests.can_decide(request_id=request_id, actor=body["user"]["id"],
                                                       correlation_id=correlation_of(context))
    if refusal:
        _answer(respond, refusal)
        return
    channel = (body.get("container") or {}).get("channel_id") or ""
    client.views_open(trigger_id=body["trigger_id"], view=messages.requests.deny_modal(request_id, channel))


def _deny_reason(view: dict[str, Any]) -> str:
    values = view["state"]["values"]
    return str(values.get(Block.DENY_REASON, {}).get(Block.DENY_REASON_INPUT, {}).get("value") or "").strip()


def deny_reason_answer(body: dict[str, Any]) -> dict[str, Any] | None:
    """The deny modal's form error, answered in the ack (the modal stays open); None for a reason long enough."""
    if len(_deny_reason(body["view"])) < 3:
        return {"response_action": "errors", "errors": {Block.DENY_REASON: messages.requests.deny_reason_too_short()}}
    return None


def handle_deny_submit(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext,
                       client: WebClient) -> None:
    """Record the denial; a reason too short was answered in the ack already (``deny_reason_answer``)."""
    reason = _deny_reason(view)
    ack()
    request_id, channel = messages.requests.parse_deny_metadata(view.get("private_metadata") or "")
    user = body["user"]["id"]
    sentence = services_of(context).requests.deny(request_id=request_id, actor=user, reason=reason,
                                                  correlation_id=correlation_of(context))
    if sentence and channel:
        client.chat_postEphemeral(channel=channel, user=user, text=sentence)


def handle_confirm(yes: bool) -> Any:
    def listener(ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext,
                 respond: Respond) -> None:
        ack()
        sentence = services_of(context).requests.confirm(
            request_id=action["value"], actor=body["user"]["id"], yes=yes, correlation_id=correlation_of(context))
        if sentence:
            # Replace the question with the answer, so it cannot be clicked again.
            respond(text=sentence, replace_original=True)

    listener.__name__ = f"handle_confirm_{'yes' if yes else 'no'}"
    return listener


def handle_reveal(ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext,
                  respond: Respond, client: WebClient) -> None:
    """The requester's one look at the temporary password: a modal, never a message."""
    ack()
    reset, actor, cid = services_of(context).reset, body["user"]["id"], correlation_of(context)
    shown, sentence = reset.reveal(request_id=action["value"], actor=actor, correlation_id=cid)
    if shown is not None:
        # Spent only once Slack has opened the modal: a trigger_id past its 3 s, or Slack failing, leaves it sealed.
        try:
            _unlogged(client).views_open(trigger_id=body["trigger_id"], view=shown.modal)
        except SlackApiError as e:
            sentence = reset.reveal_not_shown(shown, actor=actor, correlation_id=cid,
                                              error=str(e.response.get("error") or e.response.status_code))
        except OSError as e:  # the network: whether Slack opened it is unknown, and a lost password is worse
            sentence = reset.reveal_not_shown(shown, actor=actor, correlation_id=cid, error=type(e).__name__)
        else:
            reset.reveal_shown(shown, actor=actor, correlation_id=cid)
    _answer(respond, sentence)


#: slack-sdk logs every request and response body at DEBUG; the reveal modal's must never reach a log.
_SILENT = logging.getLogger("resetbot.reveal.unlogged")
_SILENT.setLevel(logging.ERROR)


def _unlogged(client: WebClient) -> WebClient:
    """The same Web API client, with a logger that never records request or response bodies."""
    return WebClient(token=client.token, base_url=client.base_url, timeout=client.timeout, ssl=client.ssl,
                     proxy=client.proxy, headers=client.headers, retry_handlers=client.retry_handlers,
                     logger=_SILENT)


def handle_not_me(ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext,
                  respond: Respond) -> None:
    ack()
    sentence = services_of(context).reset.not_me(request_id=action["value"], actor=body["user"]["id"],
                                                 correlation_id=correlation_of(context))
    respond(text=sentence, replace_original=True)


def handle_scramble(ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext,
                    respond: Respond) -> None:
    """Scramble password, on the security channel's containment alert: the answer goes to the presser alone (the
    thread and the channel hear the outcome from the service), and the alert stays for the next member."""
    ack()
    sentence = services_of(context).reset.scramble(request_id=action["value"], actor=body["user"]["id"],
                                                   correlation_id=correlation_of(context))
    _answer(respond, sentence)

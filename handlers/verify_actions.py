"""The agent's verification of the caller: the thread's "Verify caller" buttons, "Enter code" and its modal, and the
call-back's attestation modal. The typed code is wrapped in a ``SecretStr`` at once and never logged."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr
from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient

from bot import messages
from bot.ids import Block
from bot.settings import VerifyMethod
from handlers.context import correlation_of, services_of


def _answer(respond: Respond, sentence: str | None) -> None:
    if sentence:
        respond(text=sentence, response_type="ephemeral", replace_original=False)


def _channel(body: dict[str, Any]) -> str:
    return str((body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get("id") or "")


def handle_verify(ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext, respond: Respond,
                  client: WebClient) -> None:
    """A "Verify caller: METHOD" button: start that method, or (call-back) open its modal."""
    ack()
    request_id, method = messages.verification.parse_verify_value(action["value"])
    requests, actor = services_of(context).requests, body["user"]["id"]
    if method == VerifyMethod.CALLBACK:
        modal, sentence = requests.callback_modal(request_id=request_id, actor=actor, channel=_channel(body))
        if modal is not None:
            client.views_open(trigger_id=body["trigger_id"], view=modal)
        _answer(respond, sentence)
        return
    _answer(respond, requests.start_verification(request_id=request_id, actor=actor, method=method,
                                                 correlation_id=correlation_of(context)))


def handle_enter_code(ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext,
                      respond: Respond, client: WebClient) -> None:
    ack()
    request_id = action["value"]
    tries_left, sentence = services_of(context).requests.code_entry(request_id=request_id, actor=body["user"]["id"],
                                                                    correlation_id=correlation_of(context))
    if tries_left is None:
        _answer(respond, sentence)
        return
    client.views_open(trigger_id=body["trigger_id"],
                      view=messages.verification.code_modal(request_id, _channel(body), tries_left=tries_left))


def _typed(view: dict[str, Any], block: str, action: str) -> dict[str, Any]:
    return dict((view.get("state") or {}).get("values", {}).get(block, {}).get(action) or {})


def handle_code_submit(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext,
                       client: WebClient) -> None:
    typed = SecretStr(str(_typed(view, Block.VERIFY_CODE, Block.VERIFY_CODE_INPUT).get("value") or ""))
    ack()
    request_id, channel = messages.verification.parse_modal_metadata(view.get("private_metadata") or "")
    user = body["user"]["id"]
    sentence = services_of(context).requests.submit_code(request_id=request_id, actor=user, typed=typed,
                                                         correlation_id=correlation_of(context))
    if sentence and channel:
        client.chat_postEphemeral(channel=channel, user=user, text=sentence)


def callback_answer(body: dict[str, Any]) -> dict[str, Any] | None:
    """The call-back modal's form error, in the ack: the box must be ticked."""
    chosen = _typed(body["view"], Block.VERIFY_CALLBACK, Block.VERIFY_CALLBACK_INPUT).get("selected_options") or []
    if not any(o.get("value") == "attested" for o in chosen):
        return {"response_action": "errors",
                "errors": {Block.VERIFY_CALLBACK: messages.verification.callback_must_attest()}}
    return None


def handle_callback_submit(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext,
                           client: WebClient) -> None:
    ack()
    request_id, channel = messages.verification.parse_modal_metadata(view.get("private_metadata") or "")
    user = body["user"]["id"]
    sentence = services_of(context).requests.attest_callback(request_id=request_id, actor=user,
                                                             correlation_id=correlation_of(context))
    if sentence and channel:
        client.chat_postEphemeral(channel=channel, user=user, text=sentence)

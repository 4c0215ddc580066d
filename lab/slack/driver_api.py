"""The control API under ``/control`` (names from LAB.md) and the ``response_url`` endpoints.

Why this exists: tests and the demo act as people ("alice types /reset", "ivan clicks Approve", "hank
submits the modal") and then look at what those people would see. Each action builds the payload Slack
would send (see payloads.py), delivers it over Socket Mode and reports the ack; each look returns the
workspace's state. ``response_url`` lives here too because it is the other half of an interaction: what
the app sends back there (and in a slash command's ack) lands where Slack would put it.

In requests, ``user`` may be a fixture key (``alice``) or a Slack user id; ``channel`` may be a channel
id, a name (``helpdesk`` / ``#helpdesk``), a DM id, or a person (meaning their DM with the bot).
Errors are HTTP 4xx with ``{"error": "..."}``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, NoReturn

from aiohttp import web

from . import payloads
from .blocks import (
    JSON,
    MESSAGE_BLOCK_LIMIT,
    STATEFUL_TYPES,
    BlockError,
    action_payload,
    apply_values,
    build_state,
    find_element,
    iter_elements,
    missing_required,
    normalize_blocks,
    unknown_value_keys,
)
from .composer import Composer, should_escape
from .credentials import Credentials
from .errors import SlackError
from .faults import FailRule
from .httpdelivery import SIGNING_MODES, HttpDelivery
from .ids import SLACKBOT_ID, TEAM_ID, USERGROUP_EDITORS
from .records import Channel, User, View
from .socketmode import AckCallback, Delivery, SocketHub
from .webapi import WebApi, kept_state, validate_view
from .workspace import Workspace

log = logging.getLogger(__name__)


def _fail(status: int, message: str, **extra: Any) -> NoReturn:
    body = json.dumps({"error": message, **extra})
    raise _http_error(status, body)


def _http_error(status: int, body: str) -> web.HTTPException:
    classes: dict[int, type[web.HTTPException]] = {
        400: web.HTTPBadRequest, 403: web.HTTPForbidden, 404: web.HTTPNotFound, 409: web.HTTPConflict,
        422: web.HTTPUnprocessableEntity,
    }
    return classes.get(status, web.HTTPBadRequest)(text=body, content_type="application/json")


def _ok(body: Any) -> web.Response:
    return web.json_response(body)


class ControlApi:
    """Acting as people, and looking at what they see."""

    def __init__(self, ws: Workspace, hub: SocketHub, webapi: WebApi, creds: Credentials,
                 http: HttpDelivery) -> None:
        self.ws = ws
        self.hub = hub
        self.http = http
        self.webapi = webapi
        self.creds = creds
        self.base_url = ""  # http://127.0.0.1:PORT, set by the server once bound

    def routes(self) -> list[web.RouteDef]:
        c = "/control"
        return [
            web.get(f"{c}/health", self.health),
            web.post(f"{c}/command", self.command),
            web.post(f"{c}/click", self.click),
            web.post(f"{c}/submit", self.submit),
            web.post(f"{c}/close", self.close),
            web.post(f"{c}/home", self.home),
            web.get(f"{c}/messages", self.messages),
            web.get(f"{c}/dm", self.dm),
            web.get(f"{c}/ephemeral", self.ephemeral),
            web.get(f"{c}/views", self.views),
            web.get(f"{c}/home_view", self.home_view),
            web.get(f"{c}/calls", self.calls),
            web.post(f"{c}/faults", self.faults),
            web.post(f"{c}/disconnect", self.disconnect),
            web.post(f"{c}/reset", self.reset),
            web.get(f"{c}/connections", self.connections),
            web.get(f"{c}/envelopes", self.envelopes),
            web.post(f"{c}/request_url", self.request_url),
            web.get(f"{c}/http_requests", self.http_requests),
            web.post(f"{c}/replay", self.replay),
            web.post(f"{c}/usergroup", self.usergroup),
            web.post("/commands/{team}/{n}/{secret}", self.response_url),
            web.post("/actions/{team}/{n}/{secret}", self.response_url),
        ]

    # ------------------------------------------------------------------ helpers

    @staticmethod
    async def _body(request: web.Request) -> JSON:
        if not request.body_exists:
            return {}
        try:
            body = await request.json()
        except ValueError:
            _fail(400, "body must be JSON")
        if not isinstance(body, dict):
            _fail(400, "body must be a JSON object")
        return body

    def _user(self, ref: Any) -> User:
        if not isinstance(ref, str) or not ref:
            _fail(400, "missing 'user'")
        user = self.ws.user(ref)
        if user is None or user.is_bot:
            _fail(404, f"no such person in the Slack workspace: {ref!r}")
        return user

    def _channel(self, ref: Any, user: User | None = None) -> Channel:
        if (ref is None or ref == "") and user is not None:
            return self.ws.dm(user.id)
        if not isinstance(ref, str):
            _fail(400, "missing 'channel'")
        try:
            channel = self.ws.channel(ref)
        except SlackError:
            _fail(404, f"no such channel: {ref!r}")
        if user is not None and user.id not in channel.members:
            _fail(403, f"{user.name} cannot see channel {channel.id}")
        return channel

    def _composer(self) -> Composer:
        """What a person typed, as Slack delivers it: names looked up in this workspace (see composer.py)."""
        def channel_named(name: str) -> Channel | None:
            with self.ws.lock:
                return next((c for c in self.ws.channels.values() if not c.is_im and c.name == name), None)

        def group_by_handle(handle: str) -> str | None:
            with self.ws.lock:
                return next((gid for gid, g in self.ws.usergroups.items() if g.get("handle") == handle), None)

        return Composer(user=self.ws.user, channel_named=channel_named, group_by_handle=group_by_handle)

    def _response_url(self, kind: str, rid: str) -> str:
        path = "commands" if kind == "command" else "actions"
        return f"{self.base_url}/{path}/{TEAM_ID}/{rid}"

    async def _deliver(self, type_: str, payload: JSON, *, accepts_response_payload: bool,
                       on_ack: AckCallback | None = None, on_give_up: Callable[[str], None] | None = None,
                       retry_without_connection: bool = False) -> Delivery:
        """Over HTTP when the app has a Request URL, as Slack does; over Socket Mode otherwise."""
        transport: SocketHub | HttpDelivery = self.http if self.http.url is not None else self.hub
        return await transport.deliver(type_, payload, accepts_response_payload=accepts_response_payload,
                                       on_ack=on_ack, on_give_up=on_give_up,
                                       retry_without_connection=retry_without_connection)

    @staticmethod
    def _reply(delivery: Delivery, **extra: Any) -> web.Response:
        return _ok({**delivery.to_json(), **extra})

    # ------------------------------------------------------------------ responses from the app

    def apply_response(self, *, kind: str, user_id: str, channel: Channel, message_ts: str | None,
                       thread_ts: str | None, body: JSON, source: str) -> None:
        """Put an app's response (response_url post or slash-command ack) where Slack would show it."""
        if body.get("delete_original") and kind in ("message", "ephemeral") and message_ts:
            if kind == "message":
                self.ws.delete_message(channel, message_ts)
            else:
                self.ws.replace_ephemeral(user_id, message_ts, delete=True)
            return
        text = str(body.get("text") or "")
        try:
            blocks = normalize_blocks(body.get("blocks") or [], limit=MESSAGE_BLOCK_LIMIT)
        except BlockError as exc:
            raise SlackError("invalid_blocks", status=400, extra={"errors": exc.messages}) from None
        if not text and not blocks and not body.get("attachments"):
            raise SlackError("no_text", status=400)
        thread = body.get("thread_ts") or thread_ts
        if body.get("replace_original") and kind in ("message", "ephemeral") and message_ts:
            if kind == "message":
                self.ws.update_message(channel, message_ts, text=text, blocks=blocks)
            else:
                self.ws.replace_ephemeral(user_id, message_ts, text=text, blocks=blocks)
            return
        if body.get("response_type") == "in_channel":
            self.ws.post_message(channel, text=text, blocks=blocks, thread_ts=thread)
        else:
            self.ws.post_ephemeral(channel, user_id, text=text, blocks=blocks, thread_ts=thread, source=source)

    async def response_url(self, request: web.Request) -> web.Response:
        rid = f"{request.match_info['n']}/{request.match_info['secret']}"
        try:
            ru = self.ws.use_response_url(rid)
            try:
                body = await request.json()
            except ValueError:
                raise SlackError("invalid_payload", status=400) from None
            if not isinstance(body, dict):
                raise SlackError("invalid_payload", status=400)
            channel = self.ws.channel(ru.channel)
            self.apply_response(kind=ru.kind, user_id=ru.user, channel=channel, message_ts=ru.message_ts,
                                thread_ts=ru.thread_ts, body=body, source="response_url")
        except SlackError as exc:
            return web.Response(status=exc.status if exc.status != 200 else 400, text=exc.error)
        return web.Response(text="ok")

    def _slack_notice(self, channel: Channel, user: User, text: str) -> None:
        """What Slack itself shows the person (only to them) when the app fails them."""
        self.ws.post_ephemeral(channel, user.id, text=text, blocks=[], sender=SLACKBOT_ID, bot_id=None,
                               source="slack")

    # ------------------------------------------------------------------ acting as a person

    async def command(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        user = self._user(body.get("user"))
        channel = self._channel(body.get("channel"), user)
        command = str(body.get("command") or "")
        if not command:
            _fail(400, "missing 'command'")
        command = command if command.startswith("/") else f"/{command}"
        text = self._composer().command_text(str(body.get("text") or ""), escape_entities=should_escape(command))
        trigger = self.ws.issue_trigger(user.id)
        ru = self.ws.new_response_url(kind="command", user=user.id, channel=channel.id)
        payload = payloads.slash_command(
            verification_token=self.creds.verification_token, user=user, channel=channel, command=command,
            text=text, response_url=self._response_url("command", ru.id), trigger_id=trigger)

        def on_ack(ack: JSON | None) -> None:
            if not ack or not (ack.get("text") or ack.get("blocks")):
                return
            try:
                self.apply_response(kind="command", user_id=user.id, channel=channel, message_ts=None,
                                    thread_ts=None, body=ack, source="ack")
            except SlackError as exc:
                self._slack_notice(channel, user, f'{command} failed with the error "{exc.error}"')

        def on_give_up(reason: str) -> None:
            self._slack_notice(channel, user, f'{command} failed with the error "{reason}"')

        delivery = await self._deliver("slash_commands", payload, accepts_response_payload=True,
                                          on_ack=on_ack, on_give_up=on_give_up)
        return self._reply(delivery, trigger_id=trigger)

    async def click(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        user = self._user(body.get("user"))
        action_id = body.get("action_id")
        if not isinstance(action_id, str) or not action_id:
            _fail(400, "missing 'action_id'")
        value = body.get("value")
        if body.get("view_id"):
            return await self._click_view(user, str(body["view_id"]), action_id, value)
        channel = self._channel(body.get("channel"), user)
        ts = body.get("ts")
        if not isinstance(ts, str):
            _fail(400, "missing 'ts'")
        msg = self.ws.find_message(channel.id, ts)
        eph = None if msg is not None else self.ws.find_ephemeral(user.id, ts)
        if msg is None and eph is None:
            _fail(404, f"no message {ts} in {channel.id} that {user.name} can see")
        blocks = msg.blocks if msg is not None else eph.blocks if eph is not None else []
        found = find_element(blocks, action_id, value)
        if found is None and msg is not None and body.get("stale_ok"):
            # A click from a client still showing an earlier version of the message (50 people clicking
            # at once, say): Slack delivers it with the blocks that client shows.
            for earlier in reversed(msg.earlier_blocks):
                found = find_element(earlier, action_id, value)
                if found is not None:
                    blocks = earlier
                    break
        if found is None:
            have = [e.get("action_id") for _b, e in iter_elements(blocks)]
            _fail(404, f"no element with action_id {action_id!r} in message {ts}", action_ids=have)
        block, element = found
        try:
            action = action_payload(block, element, value, action_ts=self.ws.new_ts())
        except ValueError as exc:
            _fail(400, str(exc))
        thread_ts = msg.thread_ts if msg is not None and msg.is_reply else None
        kind = "message" if msg is not None else "ephemeral"
        ru = self.ws.new_response_url(kind=kind, user=user.id, channel=channel.id, message_ts=ts,
                                      thread_ts=msg.thread_ts if msg is not None else None)
        trigger = self.ws.issue_trigger(user.id)
        state = build_state(blocks, {action_id: value} if element.get("type") in STATEFUL_TYPES else None)
        payload = payloads.block_actions_message(
            verification_token=self.creds.verification_token, user=user, channel=channel,
            message=msg.to_slack() if msg is not None else {}, message_ts=ts, thread_ts=thread_ts,
            is_ephemeral=msg is None, actions=[action], state=state,
            response_url=self._response_url(kind, ru.id), trigger_id=trigger)
        delivery = await self._deliver("interactive", payload, accepts_response_payload=False)
        return self._reply(delivery, trigger_id=trigger)

    def _visible_view(self, user: User, view_id: Any) -> View:
        if not isinstance(view_id, str) or not view_id:
            _fail(400, "missing 'view_id'")
        view = self.ws.find_view(view_id=view_id)
        if view is None or view.user != user.id:
            _fail(404, f"{user.name} has no view {view_id}")
        if view.type == "modal" and not view.open:
            _fail(409, f"view {view_id} is closed")
        return view

    async def _click_view(self, user: User, view_id: str, action_id: str, value: Any) -> web.Response:
        view = self._visible_view(user, view_id)
        blocks: list[JSON] = view.body.get("blocks", [])
        found = find_element(blocks, action_id, value)
        if found is None:
            have = [e.get("action_id") for _b, e in iter_elements(blocks)]
            _fail(404, f"no element with action_id {action_id!r} in view {view_id}", action_ids=have)
        block, element = found
        try:
            action = action_payload(block, element, value, action_ts=self.ws.new_ts())
            if element.get("type") in STATEFUL_TYPES:
                view.state = apply_values(blocks, view.state, {f"{block['block_id']}.{action_id}": value})
        except ValueError as exc:
            _fail(400, str(exc))
        trigger = self.ws.issue_trigger(user.id)
        payload = payloads.block_actions_view(verification_token=self.creds.verification_token, user=user,
                                              view=view, actions=[action], trigger_id=trigger)
        delivery = await self._deliver("interactive", payload, accepts_response_payload=False)
        return self._reply(delivery, trigger_id=trigger)

    async def submit(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        user = self._user(body.get("user"))
        view = self._visible_view(user, body.get("view_id"))
        if view.type != "modal":
            _fail(409, f"view {view.id} is not a modal")
        top = self.ws.top_view(user.id)
        if top is None or top.id != view.id:
            _fail(409, f"view {view.id} is not the top of {user.name}'s modal stack")
        values = body.get("values") or {}
        if not isinstance(values, dict):
            _fail(400, "'values' must be an object")
        blocks: list[JSON] = view.body.get("blocks", [])
        unknown = unknown_value_keys(blocks, values)
        if unknown:
            _fail(400, f"values name no input of view {view.id}: {unknown}")
        try:
            state = apply_values(blocks, view.state, values)
        except ValueError as exc:
            _fail(400, str(exc))
        missing = missing_required(blocks, state)
        if missing:
            _fail(422, "Slack's client does not submit a modal with required inputs empty", block_ids=missing)
        view.state = state
        view.errors = None
        trigger = self.ws.issue_trigger(user.id)
        payload = payloads.view_submission(verification_token=self.creds.verification_token, user=user,
                                           view=view, trigger_id=trigger)

        def on_ack(ack: JSON | None) -> None:
            self._after_submission(view, user, ack or {})

        delivery = await self._deliver("interactive", payload, accepts_response_payload=True, on_ack=on_ack)
        return self._reply(delivery, trigger_id=trigger, view_open=view.open, errors=view.errors)

    def _after_submission(self, view: View, user: User, ack: JSON) -> None:
        """Slack's handling of a view_submission ack: errors, update, push, clear, or close."""
        action = ack.get("response_action")
        try:
            if action == "errors":
                errors = ack.get("errors")
                view.errors = errors if isinstance(errors, dict) else {"": "invalid errors"}
            elif action == "update":
                new = validate_view(ack.get("view"), ("modal",))
                self.ws.update_view(view, new, kept_state(view, new["blocks"]), hash_=None)
            elif action == "push":
                new = validate_view(ack.get("view"), ("modal",))
                self.ws.push_view(user.id, new, build_state(new["blocks"]), opened_by="response_action")
            elif action == "clear":
                self.ws.close_view(view, clear=True)
            else:
                self.ws.close_view(view)
        except SlackError as exc:
            # Slack keeps the modal open and shows the person an error.
            view.errors = {"": f"{exc.error}: {exc.extra}"}

    async def close(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        user = self._user(body.get("user"))
        view = self._visible_view(user, body.get("view_id"))
        if view.type != "modal":
            _fail(409, f"view {view.id} is not a modal")
        top = self.ws.top_view(user.id)
        if top is None or top.id != view.id:
            _fail(409, f"view {view.id} is not the top of {user.name}'s modal stack")
        clear = bool(view.body.get("clear_on_close"))
        closed = self.ws.close_view(view, clear=clear)
        delivery = Delivery(None, False, None, None)
        if view.body.get("notify_on_close"):
            payload = payloads.view_closed(verification_token=self.creds.verification_token, user=user,
                                           view=view, is_cleared=clear and len(closed) > 1)
            delivery = await self._deliver("interactive", payload, accepts_response_payload=False)
        return self._reply(delivery, closed=[v.id for v in closed])

    async def home(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        user = self._user(body.get("user"))
        dm = self.ws.dm(user.id)
        event = payloads.app_home_opened(user=user, dm=dm, home=self.ws.home_view(user.id), event_ts=self.ws.new_ts())
        payload = payloads.event_callback(verification_token=self.creds.verification_token, event=event,
                                          event_time=int(self.ws.now()))
        delivery = await self._deliver("events_api", payload, accepts_response_payload=False,
                                          retry_without_connection=True)
        return self._reply(delivery, event_id=payload["event_id"])

    # ------------------------------------------------------------------ looking

    async def health(self, request: web.Request) -> web.Response:
        return _ok({"ok": True})

    async def messages(self, request: web.Request) -> web.Response:
        channel = self._channel(request.query.get("channel"))
        thread_ts = request.query.get("thread_ts") or None
        return _ok([m.transcript() for m in self.ws.channel_messages(channel.id, thread_ts)])

    async def dm(self, request: web.Request) -> web.Response:
        user = self._user(request.query.get("user"))
        return _ok({"channel": self.ws.dm(user.id).id})

    async def ephemeral(self, request: web.Request) -> web.Response:
        user = self._user(request.query.get("user"))
        return _ok([e.transcript() for e in self.ws.ephemerals_for(user.id)])

    async def views(self, request: web.Request) -> web.Response:
        user = self._user(request.query.get("user"))
        return _ok([v.transcript() for v in self.ws.modals_for(user.id)])

    async def home_view(self, request: web.Request) -> web.Response:
        user = self._user(request.query.get("user"))
        view = self.ws.home_view(user.id)
        return _ok(view.transcript() if view is not None else None)

    async def calls(self, request: web.Request) -> web.Response:
        method = request.query.get("method") or None
        return _ok([c.to_json() for c in self.ws.calls_of(method)])

    async def connections(self, request: web.Request) -> web.Response:
        return _ok(self.hub.connections())

    async def envelopes(self, request: web.Request) -> web.Response:
        kind = request.query.get("type") or None
        return _ok([e.to_json() for e in self.hub.envelopes if kind is None or e.type == kind])

    # ------------------------------------------------------------------ steering

    async def faults(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        faults = self.ws.faults
        for key in ("rate_limit", "drop_acks"):
            if key in body:
                setattr(faults, key, bool(body[key]))
        for key, low in (("ack_timeout_s", 0.01), ("trigger_ttl_s", 0.0)):
            if key in body:
                try:
                    value = float(body[key])
                except (TypeError, ValueError):
                    _fail(400, f"{key} must be a number")
                if value < low:
                    _fail(400, f"{key} must be at least {low}")
                setattr(faults, key, value)
        self._scopes_and_signing(body)
        if "fail_next" in body:
            rules = body["fail_next"]
            if rules is None or isinstance(rules, list):  # a list is the whole plan: [] clears what was planned
                faults.fail_next.clear()
            for rule in rules if isinstance(rules, list) else [rules] if rules is not None else []:
                if not isinstance(rule, dict) or not isinstance(rule.get("method"), str):
                    _fail(400, "fail_next needs {method, status?, error?, count?}")
                status = int(rule.get("status", 200))
                default_error = "ratelimited" if status == 429 else "internal_error"
                faults.fail_next.append(FailRule(method=rule["method"], status=status,
                                                 error=str(rule.get("error") or default_error),
                                                 count=int(rule.get("count", 1))))
        return _ok(faults.to_json())

    def _scopes_and_signing(self, body: dict[str, Any]) -> None:
        faults = self.ws.faults
        if "revoked_scopes" in body:
            revoked = body["revoked_scopes"]
            if not isinstance(revoked, list) or not all(isinstance(s, str) for s in revoked):
                _fail(400, "revoked_scopes must be a list of scope names")
            faults.revoked_scopes = list(revoked)
        if "http_signing" in body:
            if body["http_signing"] not in SIGNING_MODES:
                _fail(400, f"http_signing must be one of {list(SIGNING_MODES)}")
            faults.http_signing = str(body["http_signing"])
        if "usergroup_editors" in body:
            if body["usergroup_editors"] not in USERGROUP_EDITORS:
                _fail(400, f"usergroup_editors must be one of {list(USERGROUP_EDITORS)}")
            faults.usergroup_editors = str(body["usergroup_editors"])
        if "down" in body:
            down = body["down"]
            if not isinstance(down, list) or not all(isinstance(m, str) for m in down):
                _fail(400, "down must be a list of Web API method names (or \"*\")")
            faults.down = list(down)

    async def usergroup(self, request: web.Request) -> web.Response:
        """A person creates or changes a user group in Slack's client (what an app never sees happen)."""
        body = await self._body(request)
        user = self._user(body.get("user"))
        action = body.get("action")
        if action not in ("create", "update", "disable", "enable"):
            _fail(400, "action must be create, update, disable or enable")
        users = body.get("users")
        if users is not None and (not isinstance(users, list) or not all(isinstance(u, str) for u in users)):
            _fail(400, "users must be a list of people")
        try:
            gid = self.ws.edit_usergroup(user, str(action), usergroup=body.get("usergroup"),
                                         handle=body.get("handle"), name=body.get("name"), users=users)
        except SlackError as e:
            _fail(403 if e.error == "permission_denied" else 409 if e.error == "name_already_exists" else 404,
                  e.error)
        return _ok({"usergroup": self.ws.usergroup_json(gid, include_users=True)})

    async def disconnect(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        sent = await self.hub.disconnect_all(str(body.get("reason") or "refresh_requested"))
        return _ok({"sent": sent})

    async def request_url(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        url = body.get("url")
        if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
            _fail(400, "'url' must be an http(s) URL, or null for Socket Mode")
        answer = await self.http.set_url(url)
        if url is not None and not answer["verified"]:
            _fail(409, "the Request URL did not answer url_verification with the challenge",
                  http_status=answer.get("status"))
        return _ok(answer)

    async def http_requests(self, request: web.Request) -> web.Response:
        return _ok([r.to_json() for r in self.http.records])

    async def replay(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        try:
            index = int(body.get("index", -1))
        except (TypeError, ValueError):
            _fail(400, "'index' must be an integer")
        answer = await self.http.replay(index)
        if "error" in answer and "status" not in answer:
            _fail(404, str(answer["error"]))
        return _ok(answer)

    async def reset(self, request: web.Request) -> web.Response:
        self.ws.reset()
        self.hub.reset()
        self.http.reset()
        self.webapi.reset()
        return _ok({"ok": True})

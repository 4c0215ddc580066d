"""The Web API under ``/api/{method}``: the methods the bot calls, with Slack's shapes and errors.

Why this exists: the bot talks to Slack only through slack-sdk's WebClient, so the lab answers exactly what
that client sends (JSON POST for chat.* / views.*, form POST for auth.test / apps.connections.open /
conversations.open, and GET-style query arguments for the reads; the sync client POSTs those as forms, the
async one may GET) and answers with Slack's success shapes and error codes. Every call is logged for
``GET /control/calls``.

Choices where Slack documents nothing:
- An unknown method answers HTTP 404 with ``{"ok": false, "error": "unknown_method", "req_method": ...}``
  and is checked before the token (slack.com does both); slack-sdk raises SlackApiError either way.
- A JSON body's ``token`` field is ignored (Slack wants the header with JSON); form/query ``token`` works.
- Failing calls planned with ``fail_next`` are consumed after authentication, so an unauthenticated call
  does not use one up. A method that is ``down`` answers 503 before any planned failure is consumed.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .blocks import JSON, MESSAGE_BLOCK_LIMIT, VIEW_BLOCK_LIMIT, BlockError, build_state, normalize_blocks, text_errors
from .credentials import Credentials
from .errors import SlackError, invalid_arguments
from .ids import BOT_ID, BOT_NAME, BOT_USER_ID, TEAM_DOMAIN, TEAM_ID, TEAM_NAME
from .records import ApiCall, View
from .socketmode import SocketHub
from .workspace import Workspace

Handler = Callable[[JSON], JSON]

#: chat.postMessage budget per channel when the ``rate_limit`` fault is on: a burst, then 1 per second.
RATE_BURST = 3
RATE_PER_S = 1.0
#: Slack refuses views larger than 250 kB.
VIEW_SIZE_LIMIT = 250_000
#: Message text longer than this is ``msg_too_long``.
MSG_TEXT_LIMIT = 40_000


def _bool(value: Any) -> bool:
    return value is True or value == 1 or (isinstance(value, str) and value.lower() in ("1", "true"))


def _str(args: JSON, name: str) -> str | None:
    value = args.get(name)
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _json_arg(args: JSON, name: str, error: str) -> Any:
    """An argument that is JSON: an object already (JSON body) or a JSON string (form / query)."""
    value = args.get(name)
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise SlackError(error) from None
    return value


def _ts_key(ts: str) -> float:
    try:
        return float(ts)
    except ValueError:
        return 0.0


def validate_view(raw: Any, allowed: tuple[str, ...]) -> JSON:
    """A view definition validated as Slack does, with block and action ids filled in."""
    if not isinstance(raw, dict):
        raise invalid_arguments("missing required field: view")
    if len(json.dumps(raw)) > VIEW_SIZE_LIMIT:
        raise SlackError("view_too_large")
    if raw.get("type") not in allowed:
        raise invalid_arguments(f"must be one of: {', '.join(allowed)} [json-pointer:/view/type]")
    try:
        blocks = normalize_blocks(raw.get("blocks", []), limit=VIEW_BLOCK_LIMIT, pointer="/view/blocks")
    except BlockError as exc:
        raise invalid_arguments(*exc.messages) from None
    errors: list[str] = []
    if raw["type"] == "modal":
        errors += text_errors(raw.get("title"), "/view/title", max_len=24, plain_only=True)
        for key in ("submit", "close"):
            if raw.get(key) is not None:
                errors += text_errors(raw[key], f"/view/{key}", max_len=24, plain_only=True)
        if raw.get("submit") is None and any(b.get("type") == "input" for b in blocks):
            errors.append("must provide submit when input blocks are present [json-pointer:/view/submit]")
    for key, limit in (("private_metadata", 3000), ("callback_id", 255), ("external_id", 255)):
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            errors.append(f"must be less than {limit + 1} characters [json-pointer:/view/{key}]")
    if errors:
        raise invalid_arguments(*errors)
    return {**raw, "blocks": blocks}


def kept_state(old: View | None, blocks: list[JSON]) -> JSON:
    """New state for updated blocks: what the person typed survives where block_id/action_id stay."""
    state = build_state(blocks)
    if old is None:
        return state
    for block_id, actions in state.items():
        for action_id in actions:
            previous = old.state.get(block_id, {}).get(action_id)
            if previous is not None and previous.get("type") == actions[action_id].get("type"):
                actions[action_id] = previous
    return state


class WebApi:
    """The Web API handler; ``handle`` is mounted at ``/api/{method}``."""

    def __init__(self, ws: Workspace, hub: SocketHub, creds: Credentials) -> None:
        self.ws = ws
        self.hub = hub
        self.creds = creds
        self._buckets: dict[str, tuple[float, float]] = {}
        self.methods: dict[str, Handler] = {
            "auth.test": self.auth_test,
            "apps.connections.open": self.apps_connections_open,
            "chat.postMessage": self.chat_post_message,
            "chat.update": self.chat_update,
            "chat.postEphemeral": self.chat_post_ephemeral,
            "chat.getPermalink": self.chat_get_permalink,
            "views.open": self.views_open,
            "views.update": self.views_update,
            "views.push": self.views_push,
            "views.publish": self.views_publish,
            "users.info": self.users_info,
            "users.lookupByEmail": self.users_lookup_by_email,
            "usergroups.list": self.usergroups_list,
            "usergroups.users.list": self.usergroups_users_list,
            "conversations.open": self.conversations_open,
            "conversations.info": self.conversations_info,
            "conversations.replies": self.conversations_replies,
            "conversations.history": self.conversations_history,
        }

    # ------------------------------------------------------------------ plumbing

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        call = ApiCall(method=method, args={}, time=time.time())
        headers: dict[str, str] = {}
        try:
            handler = self.methods.get(method)
            if handler is None:
                raise SlackError("unknown_method", status=404, extra={"req_method": method})
            args, token = await self._read(request)
            call.args = args
            if self._authorize(method, token) == "bot":
                # Slack names the token's scopes on every answer to a call made with it.
                headers["x-oauth-scopes"] = ",".join(self.ws.faults.granted_scopes())
            if self.ws.faults.is_down(method):
                raise SlackError("service_unavailable", status=503)
            rule = self.ws.faults.take_failure(method)
            if rule is not None:
                raise SlackError(rule.error, status=rule.status,
                                 headers={"Retry-After": "1"} if rule.status == 429 else None)
            # A link asked for over TLS is a wss:// one, as real Slack's (see SlackStandIn).
            answer = self.hub.issue_url(tls=request.secure) if method == "apps.connections.open" else None
            body: JSON = {"ok": True, **({"url": answer} if answer else handler(args))}
            status = 200
        except SlackError as exc:
            body = {"ok": False, "error": exc.error, **exc.extra}
            status, headers = exc.status, {**headers, **(exc.headers or {})}
            call.ok, call.error = False, exc.error
        call.status = status
        self.ws.log_call(call)
        return web.json_response(body, status=status, headers=headers)

    async def _read(self, request: web.Request) -> tuple[JSON, str | None]:
        """Arguments from the query string and the body, and the token (header first, then form/query)."""
        args: JSON = dict(request.query)
        form_token = args.pop("token", None)
        if request.method == "POST" and request.body_exists:
            ctype = request.content_type
            if ctype == "application/json":
                raw = await request.text()
                try:
                    body = json.loads(raw) if raw.strip() else {}
                except ValueError:
                    raise SlackError("invalid_json") from None
                if not isinstance(body, dict):
                    raise SlackError("json_not_object")
                body.pop("token", None)
                args.update(body)
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, str):
                        args[key] = value
                form_token = args.pop("token", form_token)
            elif ctype not in ("", "text/plain", "application/octet-stream"):
                raise SlackError("invalid_post_type")
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        return args, token or (form_token if isinstance(form_token, str) else None)

    def _authorize(self, method: str, token: str | None) -> str:
        """The kind of token (``bot`` or ``app``), or Slack's error for a missing, unknown or wrong one."""
        if not token:
            raise SlackError("not_authed")
        if token == self.creds.bot_token:
            kind = "bot"
        elif token == self.creds.app_token:
            kind = "app"
        else:
            raise SlackError("invalid_auth")
        needed = "app" if method == "apps.connections.open" else "bot"
        if kind != needed:
            raise SlackError("not_allowed_token_type")
        return kind

    def _rate_limit(self, channel_id: str) -> None:
        """Token bucket per channel for chat.postMessage, on only while the ``rate_limit`` fault is set."""
        if not self.ws.faults.rate_limit:
            return
        now = time.monotonic()
        tokens, last = self._buckets.get(channel_id, (float(RATE_BURST), now))
        tokens = min(float(RATE_BURST), tokens + (now - last) * RATE_PER_S)
        if tokens < 1.0:
            self._buckets[channel_id] = (tokens, now)
            retry_after = max(1, math.ceil((1.0 - tokens) / RATE_PER_S))
            raise SlackError("ratelimited", status=429, headers={"Retry-After": str(retry_after)})
        self._buckets[channel_id] = (tokens - 1.0, now)

    def reset(self) -> None:
        self._buckets.clear()

    @staticmethod
    def _blocks(args: JSON, *, limit: int) -> list[JSON] | None:
        if "blocks" not in args:
            return None
        raw = _json_arg(args, "blocks", "invalid_blocks_format")
        if raw is None:
            return []
        try:
            return normalize_blocks(raw, limit=limit)
        except BlockError as exc:
            raise SlackError("invalid_blocks", extra={
                "errors": exc.messages,
                "response_metadata": {"messages": [f"[ERROR] {m}" for m in exc.messages]}}) from None

    @staticmethod
    def _text(args: JSON) -> str | None:
        text = args.get("text")
        if text is None:
            text = args.get("markdown_text")
        if text is None:
            return None
        text = str(text)
        if len(text) > MSG_TEXT_LIMIT:
            raise SlackError("msg_too_long")
        return text

    # ------------------------------------------------------------------ auth and connections

    def auth_test(self, args: JSON) -> JSON:
        return {"url": f"https://{TEAM_DOMAIN}.slack.com/", "team": TEAM_NAME, "user": BOT_NAME,
                "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False}

    def apps_connections_open(self, args: JSON) -> JSON:
        return {"url": self.hub.issue_url()}

    # ------------------------------------------------------------------ chat

    def chat_post_message(self, args: JSON) -> JSON:
        channel = self.ws.channel(_str(args, "channel"))
        text = self._text(args)
        blocks = self._blocks(args, limit=MESSAGE_BLOCK_LIMIT)
        attachments = _json_arg(args, "attachments", "invalid_attachments")
        if not text and not blocks and not attachments:
            raise SlackError("no_text")
        self._rate_limit(channel.id)
        metadata = _json_arg(args, "metadata", "invalid_metadata_format")
        msg = self.ws.post_message(channel, text=text or "", blocks=blocks or [], thread_ts=_str(args, "thread_ts"),
                                   reply_broadcast=_bool(args.get("reply_broadcast")),
                                   metadata=metadata if isinstance(metadata, dict) else None,
                                   attachments=attachments if isinstance(attachments, list) else None)
        return {"channel": channel.id, "ts": msg.ts, "message": msg.to_slack()}

    def chat_update(self, args: JSON) -> JSON:
        channel = self.ws.channel(_str(args, "channel"), allow_user=False)
        ts = _str(args, "ts")
        if ts is None:
            raise SlackError("message_not_found")
        text = self._text(args)
        blocks = self._blocks(args, limit=MESSAGE_BLOCK_LIMIT)
        attachments = _json_arg(args, "attachments", "invalid_attachments")
        if text is None and blocks is None and attachments is None:
            raise SlackError("no_text")
        msg = self.ws.update_message(channel, ts, text=text, blocks=blocks,
                                     attachments=attachments if isinstance(attachments, list) else None)
        return {"channel": channel.id, "ts": msg.ts, "text": msg.text, "message": msg.to_slack()}

    def chat_get_permalink(self, args: JSON) -> JSON:
        """As Slack: ``channel`` and ``message_ts`` of a message that exists; a reply's link names its thread."""
        channel = self.ws.channel(_str(args, "channel"), allow_user=False)
        ts = _str(args, "message_ts")
        if ts is None:
            raise invalid_arguments("missing required field: message_ts")
        msg = self.ws.find_message(channel.id, ts)
        if msg is None:
            raise SlackError("message_not_found")
        link = f"https://{TEAM_DOMAIN}.slack.com/archives/{channel.id}/p{ts.replace('.', '')}"
        if msg.is_reply and msg.thread_ts:
            link += f"?thread_ts={msg.thread_ts}&cid={channel.id}"
        return {"channel": channel.id, "permalink": link}

    def chat_post_ephemeral(self, args: JSON) -> JSON:
        channel = self.ws.channel(_str(args, "channel"))
        user = self.ws.user_by_id(args.get("user"))
        if user is None:
            raise SlackError("user_not_found")
        if user.id not in channel.members:
            raise SlackError("user_not_in_channel")
        text = self._text(args)
        blocks = self._blocks(args, limit=MESSAGE_BLOCK_LIMIT)
        if not text and not blocks and not args.get("attachments"):
            raise SlackError("no_text")
        eph = self.ws.post_ephemeral(channel, user.id, text=text or "", blocks=blocks or [],
                                     thread_ts=_str(args, "thread_ts"))
        return {"message_ts": eph.ts}

    # ------------------------------------------------------------------ views

    def views_open(self, args: JSON) -> JSON:
        body = validate_view(_json_arg(args, "view", "invalid_arguments"), ("modal",))
        trigger = self.ws.exchange_trigger(args.get("trigger_id") or args.get("interactivity_pointer"))
        view = self.ws.open_view(trigger.user, body, build_state(body["blocks"]))
        return {"view": view.to_slack()}

    def views_push(self, args: JSON) -> JSON:
        body = validate_view(_json_arg(args, "view", "invalid_arguments"), ("modal",))
        trigger = self.ws.exchange_trigger(args.get("trigger_id") or args.get("interactivity_pointer"))
        view = self.ws.push_view(trigger.user, body, build_state(body["blocks"]))
        return {"view": view.to_slack()}

    def views_update(self, args: JSON) -> JSON:
        view_id, external_id = _str(args, "view_id"), _str(args, "external_id")
        if view_id is None and external_id is None:
            raise invalid_arguments("missing required field: view_id or external_id")
        view = self.ws.find_view(view_id=view_id, external_id=external_id)
        if view is None:
            raise SlackError("not_found")
        body = validate_view(_json_arg(args, "view", "invalid_arguments"), (view.type,))
        self.ws.update_view(view, body, kept_state(view, body["blocks"]), hash_=_str(args, "hash"))
        return {"view": view.to_slack()}

    def views_publish(self, args: JSON) -> JSON:
        user = self.ws.user_by_id(args.get("user_id"))
        if user is None or user.is_bot:
            raise SlackError("user_not_found")
        body = validate_view(_json_arg(args, "view", "invalid_arguments"), ("home",))
        old = self.ws.home_view(user.id)
        view = self.ws.publish_home(user.id, body, kept_state(old, body["blocks"]), hash_=_str(args, "hash"))
        return {"view": view.to_slack()}

    # ------------------------------------------------------------------ users and groups

    def users_info(self, args: JSON) -> JSON:
        user = self.ws.user_by_id(args.get("user"))
        if user is None:
            raise SlackError("user_not_found")
        return {"user": user.to_slack()}

    def users_lookup_by_email(self, args: JSON) -> JSON:
        email = _str(args, "email")
        if email is None:
            raise invalid_arguments("missing required field: email")
        user = self.ws.user_by_email(email)
        if user is None:
            raise SlackError("users_not_found")
        return {"user": user.to_slack()}

    def usergroups_list(self, args: JSON) -> JSON:
        include_users = _bool(args.get("include_users"))
        include_disabled = _bool(args.get("include_disabled"))
        return {"usergroups": [self.ws.usergroup_json(gid, include_users=include_users)
                               for gid in self.ws.usergroup_ids(include_disabled=include_disabled)]}

    def usergroups_users_list(self, args: JSON) -> JSON:
        gid = _str(args, "usergroup")
        if gid is None:
            raise invalid_arguments("missing required field: usergroup")
        return {"users": self.ws.usergroup_members(gid)}

    # ------------------------------------------------------------------ conversations

    def conversations_open(self, args: JSON) -> JSON:
        channel_ref, users = _str(args, "channel"), _str(args, "users")
        if channel_ref is not None:
            channel = self.ws.channel(channel_ref, allow_user=False)
            if not channel.is_im:
                raise SlackError("method_not_supported_for_channel_type")
            existed = True
        elif users is not None:
            ids = [u.strip() for u in users.split(",") if u.strip()]
            if len(ids) != 1:
                raise invalid_arguments("the lab opens DMs with one person only (no group DMs)")
            user = self.ws.user_by_id(ids[0])
            if user is None:
                raise SlackError("user_not_found")
            if user.is_bot:
                raise SlackError("cannot_dm_bot")
            existed = f"D{user.id[1:]}" in self.ws.channels
            channel = self.ws.dm(user.id)
        else:
            raise SlackError("users_list_not_supplied")
        out: JSON = {"channel": channel.to_slack() if _bool(args.get("return_im")) else {"id": channel.id}}
        if existed:
            out.update({"no_op": True, "already_open": True})
        return out

    def conversations_info(self, args: JSON) -> JSON:
        return {"channel": self.ws.channel(_str(args, "channel"), allow_user=False).to_slack()}

    @staticmethod
    def _window(items: list[JSON], args: JSON) -> list[JSON]:
        oldest, latest = _str(args, "oldest"), _str(args, "latest")
        inclusive = _bool(args.get("inclusive"))
        out = []
        for m in items:
            key = _ts_key(m["ts"])
            if oldest is not None and (key < _ts_key(oldest) or (key == _ts_key(oldest) and not inclusive)):
                continue
            if latest is not None and (key > _ts_key(latest) or (key == _ts_key(latest) and not inclusive)):
                continue
            out.append(m)
        return out

    @staticmethod
    def _page(items: list[JSON], args: JSON, default_limit: int) -> JSON:
        try:
            limit = max(1, min(1000, int(args.get("limit") or default_limit)))
            cursor = _str(args, "cursor")
            offset = int(base64.b64decode(cursor).decode().split(":", 1)[1]) if cursor else 0
        except (ValueError, IndexError):
            raise SlackError("invalid_cursor") from None
        page = items[offset:offset + limit]
        more = offset + limit < len(items)
        next_cursor = base64.b64encode(f"offset:{offset + limit}".encode()).decode() if more else ""
        return {"messages": page, "has_more": more, "response_metadata": {"next_cursor": next_cursor}}

    def conversations_history(self, args: JSON) -> JSON:
        channel = self.ws.channel(_str(args, "channel"), allow_user=False)
        msgs = [m.to_slack() for m in self.ws.channel_messages(channel.id) if not m.is_reply or m.reply_broadcast]
        msgs = self._window(list(reversed(msgs)), args)
        return {**self._page(msgs, args, 100), "pin_count": 0, "channel_actions_ts": None,
                "channel_actions_count": 0}

    def conversations_replies(self, args: JSON) -> JSON:
        channel = self.ws.channel(_str(args, "channel"), allow_user=False)
        ts = _str(args, "ts")
        parent = self.ws.find_message(channel.id, ts) if ts else None
        if parent is None:
            raise SlackError("thread_not_found")
        root = parent.thread_ts if parent.is_reply and parent.thread_ts else parent.ts
        msgs = [m.to_slack() for m in self.ws.channel_messages(channel.id, thread_ts=root)]
        return self._page(self._window(msgs, args), args, 1000)

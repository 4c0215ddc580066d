"""What the lab's Slack workspace holds, one dataclass per kind of thing, in Slack's own shapes.

``to_slack()`` is the object as the Web API and the payloads carry it; ``transcript()`` / ``to_json()`` is what
the control API shows a test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .blocks import JSON
from .ids import APP_ID, BOT_ID, BOT_NAME, BOT_USER_ID, TEAM_ID


@dataclass
class User:
    id: str
    name: str
    real_name: str
    email: str | None
    first_name: str = ""
    last_name: str = ""
    title: str = ""
    is_bot: bool = False
    bot_id: str | None = None
    key: str | None = None
    is_admin: bool = False

    def to_slack(self) -> JSON:
        profile: JSON = {
            "title": self.title, "real_name": self.real_name, "real_name_normalized": self.real_name,
            "display_name": self.real_name if not self.is_bot else "",
            "display_name_normalized": self.real_name if not self.is_bot else "",
            "first_name": self.first_name, "last_name": self.last_name, "team": TEAM_ID,
            "status_text": "", "status_emoji": "",
        }
        if self.email is not None:
            profile["email"] = self.email
        if self.bot_id is not None:
            profile.update({"bot_id": self.bot_id, "api_app_id": APP_ID, "always_active": True})
        return {
            "id": self.id, "team_id": TEAM_ID, "name": self.name, "deleted": False, "color": "9f69e7",
            "real_name": self.real_name, "tz": "Europe/Berlin", "tz_label": "Central European Time",
            "tz_offset": 3600, "profile": profile, "is_admin": self.is_admin, "is_owner": False,
            "is_primary_owner": False, "is_restricted": False, "is_ultra_restricted": False,
            "is_bot": self.is_bot, "is_app_user": False, "updated": 1764000000,
            "is_email_confirmed": self.email is not None,
        }


@dataclass
class Channel:
    id: str
    name: str
    created: int
    is_im: bool = False
    user: str | None = None
    members: set[str] = field(default_factory=set)

    @property
    def payload_name(self) -> str:
        """The name interaction payloads carry (Slack says ``directmessage`` for a DM)."""
        return "directmessage" if self.is_im else self.name

    def to_slack(self) -> JSON:
        if self.is_im:
            return {"id": self.id, "created": self.created, "is_archived": False, "is_im": True,
                    "is_org_shared": False, "context_team_id": TEAM_ID, "updated": self.created * 1000,
                    "user": self.user, "is_user_deleted": False, "priority": 0}
        return {
            "id": self.id, "name": self.name, "is_channel": True, "is_group": False, "is_im": False,
            "is_mpim": False, "is_private": False, "created": self.created, "is_archived": False,
            "is_general": False, "unlinked": 0, "name_normalized": self.name, "is_shared": False,
            "is_org_shared": False, "is_pending_ext_shared": False, "pending_shared": [],
            "context_team_id": TEAM_ID, "updated": self.created * 1000, "creator": BOT_USER_ID,
            "is_ext_shared": False, "shared_team_ids": [TEAM_ID], "is_member": BOT_USER_ID in self.members,
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": f"The lab's #{self.name} channel", "creator": "", "last_set": 0},
            "previous_names": [], "num_members": len(self.members),
        }


@dataclass
class Message:
    channel: str
    ts: str
    user: str
    text: str
    blocks: list[JSON]
    bot_id: str | None = None
    thread_ts: str | None = None
    edited: JSON | None = None
    reply_broadcast: bool = False
    metadata: JSON | None = None
    attachments: list[JSON] | None = None
    replies: list[str] = field(default_factory=list)
    #: Blocks this message had before each edit, oldest first: a person whose client has not redrawn yet
    #: still sees (and can click) an earlier version, as in Slack.
    earlier_blocks: list[list[JSON]] = field(default_factory=list)

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def to_slack(self) -> JSON:
        """The message as ``conversations.history`` / ``chat.postMessage`` return it."""
        out: JSON = {"type": "message", "user": self.user, "text": self.text, "ts": self.ts, "team": TEAM_ID}
        if self.bot_id is not None:
            out.update({"bot_id": self.bot_id, "app_id": APP_ID, "bot_profile": {
                "id": self.bot_id, "app_id": APP_ID, "name": BOT_NAME, "icons": {}, "deleted": False,
                "updated": 1764000000, "team_id": TEAM_ID}})
        if self.blocks:
            out["blocks"] = self.blocks
        if self.attachments:
            out["attachments"] = self.attachments
        if self.metadata is not None:
            out["metadata"] = self.metadata
        if self.edited is not None:
            out["edited"] = self.edited
        if self.thread_ts is not None:
            out["thread_ts"] = self.thread_ts
        if self.is_reply:
            out["parent_user_id"] = self.user
            if self.reply_broadcast:
                out["subtype"] = "thread_broadcast"
        if self.replies:
            out.update({"reply_count": len(self.replies), "reply_users_count": 1,
                        "latest_reply": self.replies[-1], "reply_users": [self.user], "is_locked": False,
                        "subscribed": False})
        return out

    def transcript(self) -> JSON:
        """The control API's view of the message (LAB.md ``GET /messages``)."""
        return {"ts": self.ts, "thread_ts": self.thread_ts, "user": self.user, "bot_id": self.bot_id,
                "text": self.text, "blocks": self.blocks, "edited": self.edited, "channel": self.channel}


@dataclass
class Ephemeral:
    ts: str
    channel: str
    user: str  # who sees it
    sender: str
    text: str
    blocks: list[JSON]
    thread_ts: str | None = None
    source: str = "chat.postEphemeral"
    bot_id: str | None = BOT_ID

    def to_slack(self) -> JSON:
        out: JSON = {"type": "message", "subtype": "bot_message", "text": self.text, "ts": self.ts,
                     "user": self.sender, "blocks": self.blocks}
        if self.bot_id is not None:
            out["bot_id"] = self.bot_id
        if self.thread_ts is not None:
            out["thread_ts"] = self.thread_ts
        return out

    def transcript(self) -> JSON:
        return {"ts": self.ts, "channel": self.channel, "user": self.user, "sender": self.sender,
                "bot_id": self.bot_id, "text": self.text, "blocks": self.blocks, "thread_ts": self.thread_ts,
                "source": self.source}


@dataclass
class View:
    id: str
    user: str
    body: JSON  # the app's view definition, ids filled in
    hash: str
    state: JSON
    root_view_id: str
    previous_view_id: str | None = None
    open: bool = True
    errors: JSON | None = None
    opened_by: str = "views.open"

    @property
    def type(self) -> str:
        return str(self.body.get("type"))

    def to_slack(self) -> JSON:
        body = self.body
        return {
            "id": self.id, "team_id": TEAM_ID, "type": body.get("type"), "blocks": body.get("blocks", []),
            "private_metadata": body.get("private_metadata", ""), "callback_id": body.get("callback_id", ""),
            "state": {"values": self.state}, "hash": self.hash, "title": body.get("title"),
            "clear_on_close": bool(body.get("clear_on_close", False)),
            "notify_on_close": bool(body.get("notify_on_close", False)), "close": body.get("close"),
            "submit": body.get("submit"), "previous_view_id": self.previous_view_id,
            "root_view_id": self.root_view_id, "app_id": APP_ID, "external_id": body.get("external_id", ""),
            "app_installed_team_id": TEAM_ID, "bot_id": BOT_ID,
        }

    def transcript(self) -> JSON:
        return {**self.to_slack(), "open": self.open, "user": self.user, "errors": self.errors,
                "opened_by": self.opened_by}


@dataclass
class Trigger:
    id: str
    user: str
    issued: float
    used: bool = False


@dataclass
class ResponseUrl:
    id: str
    kind: str  # "command" | "message" | "ephemeral"
    user: str
    channel: str
    created: float
    message_ts: str | None = None
    thread_ts: str | None = None
    uses: int = 0


@dataclass
class ApiCall:
    method: str
    args: JSON
    time: float
    status: int = 200
    ok: bool = True
    error: str | None = None

    def to_json(self) -> JSON:
        return {"method": self.method, "args": self.args, "time": self.time, "status": self.status,
                "ok": self.ok, "error": self.error}

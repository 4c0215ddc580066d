"""The Slack workspace the lab pretends to be: people, the bot, channels, messages, views, triggers.

Why this exists: the Web API, the Socket Mode hub and the control API all read and change one workspace,
and tests assert on it ("what would a person see?"). Keeping it plain Python with Slack's own shapes
(``to_slack()``) lets the HTTP layers stay thin. Every public method takes the lock, so a test may read it
from its own thread while the server's event loop changes it.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from lab.people import PEOPLE, Person

from .blocks import JSON
from .errors import SlackError, invalid_arguments
from .faults import Faults
from .ids import (
    BOT_ID,
    BOT_NAME,
    BOT_USER_ID,
    CHANNEL_NAMES,
    TEAM_ID,
    USERGROUP_NAMES,
    WORKSPACE_ADMINS,
    channel_id_for,
    dm_id_for,
    user_id_for,
    usergroup_id_for,
)
from .records import ApiCall, Channel, Ephemeral, Message, ResponseUrl, Trigger, User, View
from .views import ViewsMixin

#: A response_url works five times within 30 minutes.
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL_S = 30 * 60.0


class Workspace(ViewsMixin):
    """All state of the lab's Slack workspace. Methods raise SlackError with Slack's error codes.

    The ``views.*`` methods (modal stacks, home tabs) are in ViewsMixin (views.py); their state is here.
    """

    def __init__(self, people: Iterable[Person] = PEOPLE, *, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.RLock()
        self._clock = clock
        self._monotonic = monotonic
        self._last_ts = 0
        self.created = int(clock())
        self.users: dict[str, User] = {}
        self.keys: dict[str, str] = {}
        for p in people:
            if not p.slack:
                continue
            uid = user_id_for(p.key)
            self.users[uid] = User(id=uid, name=p.key, real_name=p.display_name, email=p.slack_mail or p.mail,
                                   first_name=p.given, last_name=p.surname, title=p.title, key=p.key,
                                   is_admin=p.key in WORKSPACE_ADMINS)
            self.keys[p.key] = uid
        self.bot = User(id=BOT_USER_ID, name=BOT_NAME, real_name=BOT_NAME, email=None, is_bot=True,
                        bot_id=BOT_ID)
        self.users[BOT_USER_ID] = self.bot
        humans = {uid for uid in self.users if uid != BOT_USER_ID}
        self.channels: dict[str, Channel] = {}
        for name in CHANNEL_NAMES:
            cid = channel_id_for(name)
            self.channels[cid] = Channel(id=cid, name=name, created=self.created, members=humans | {BOT_USER_ID})
        self.usergroups: dict[str, JSON] = {}
        self._group_members: dict[str, list[str]] = {}
        admin = next((uid for uid, u in self.users.items() if u.is_admin), BOT_USER_ID)
        for group in USERGROUP_NAMES:
            gid = usergroup_id_for(group)
            self._group_members[gid] = [user_id_for(p.key) for p in people if p.slack and group in p.groups]
            self.usergroups[gid] = {"name": group, "handle": group, "created_by": admin, "updated_by": admin,
                                    "date_update": self.created, "date_delete": 0, "deleted_by": None}
        self._fixture_groups = ({g: dict(m) for g, m in self.usergroups.items()},
                                {g: list(m) for g, m in self._group_members.items()})
        self.messages: dict[str, list[Message]] = {}
        self.ephemerals: list[Ephemeral] = []
        self.views: dict[str, View] = {}
        self.stacks: dict[str, list[str]] = {}
        self.home_views: dict[str, str] = {}
        self.triggers: dict[str, Trigger] = {}
        self.response_urls: dict[str, ResponseUrl] = {}
        self.calls: list[ApiCall] = []
        self.faults = Faults()

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    # ------------------------------------------------------------------ time and ids

    def new_ts(self) -> str:
        """A message timestamp: wall-clock microseconds, strictly increasing and unique."""
        with self._lock:
            now = int(self._clock() * 1_000_000)
            self._last_ts = max(now, self._last_ts + 1)
            return f"{self._last_ts // 1_000_000}.{self._last_ts % 1_000_000:06d}"

    def now(self) -> float:
        return self._clock()

    # ------------------------------------------------------------------ people

    def user(self, ref: str) -> User | None:
        """A user by Slack id, by fixture key (``alice``) or by ``@name``."""
        with self._lock:
            ref = ref.removeprefix("@")
            if ref in self.users:
                return self.users[ref]
            uid = self.keys.get(ref)
            return self.users.get(uid) if uid else None

    def user_by_id(self, user_id: Any) -> User | None:
        """A user by Slack id only (what the Web API accepts)."""
        with self._lock:
            return self.users.get(user_id) if isinstance(user_id, str) else None

    def user_by_email(self, email: str) -> User | None:
        with self._lock:
            wanted = email.strip().lower()
            for u in self.users.values():
                if u.email is not None and u.email.lower() == wanted:
                    return u
            return None

    def usergroup_json(self, gid: str, *, include_users: bool) -> JSON:
        with self._lock:
            meta = self.usergroups[gid]
            members = self._group_members[gid]
            out: JSON = {
                "id": gid, "team_id": TEAM_ID, "is_usergroup": True, "is_subteam": True, "name": meta["name"],
                "description": f"The lab's {meta['name']} group", "handle": meta["handle"],
                "is_external": False, "date_create": self.created, "date_update": meta["date_update"],
                "date_delete": meta["date_delete"], "auto_type": None, "auto_provision": False,
                "enterprise_subteam_id": "", "created_by": meta["created_by"], "updated_by": meta["updated_by"],
                "deleted_by": meta["deleted_by"],
                "prefs": {"channels": [], "groups": []}, "user_count": len(members), "channel_count": 0,
            }
            if include_users:
                out["users"] = list(members)
            return out

    def usergroup_ids(self, *, include_disabled: bool) -> list[str]:
        with self._lock:
            return [gid for gid, meta in self.usergroups.items() if include_disabled or not meta["date_delete"]]

    def edit_usergroup(self, user: User, action: str, *, usergroup: str | None = None, handle: str | None = None,
                       name: str | None = None, users: list[str] | None = None) -> str:
        """A person creates, changes, disables or enables a user group in Slack's client, as the workspace's
        setting allows (``usergroup_editors``: anyone, or only admins: else ``permission_denied``). Handles and
        names are unique among enabled groups (``name_already_exists``, the lab's code for both). Returns the id."""
        with self._lock:
            if self.faults.usergroup_editors == "admins" and not user.is_admin:
                raise SlackError("permission_denied")
            now = int(self._clock())
            if action == "create":
                if not handle:
                    raise invalid_arguments("missing required field: handle")
                gid = "S" + secrets.token_hex(5).upper()
                self.usergroups[gid] = {"name": name or handle, "handle": "", "created_by": user.id,
                                        "updated_by": user.id, "date_update": now, "date_delete": 0,
                                        "deleted_by": None}
                self._group_members[gid] = []
            elif usergroup not in self.usergroups:
                raise SlackError("no_such_subteam")
            else:
                gid = usergroup
            meta = self.usergroups[gid]
            for key, value in (("handle", handle), ("name", name or (handle if action == "create" else None))):
                if value is not None and any(m[key] == value and not m["date_delete"]
                                             for g, m in self.usergroups.items() if g != gid):
                    if action == "create":
                        del self.usergroups[gid], self._group_members[gid]
                    raise SlackError("name_already_exists")
                if value is not None:
                    meta[key] = value
            if users is not None:
                ids = [u.id for u in (self.user(ref) for ref in users) if u is not None]
                self._group_members[gid] = ids
            if action == "disable":
                meta["date_delete"], meta["deleted_by"] = now, user.id
            elif action == "enable":
                meta["date_delete"], meta["deleted_by"] = 0, None
            meta["updated_by"], meta["date_update"] = user.id, now
            return gid

    def usergroup_members(self, gid: str) -> list[str]:
        with self._lock:
            if gid not in self._group_members:
                raise SlackError("no_such_subteam")
            return list(self._group_members[gid])

    # ------------------------------------------------------------------ conversations

    def dm(self, user_id: str) -> Channel:
        """The bot's DM with ``user_id``, opened on first use (as Slack does when the app writes to a user)."""
        with self._lock:
            cid = dm_id_for(user_id)
            if cid not in self.channels:
                self.channels[cid] = Channel(id=cid, name=user_id, created=int(self._clock()), is_im=True,
                                             user=user_id, members={user_id, BOT_USER_ID})
            return self.channels[cid]

    def channel(self, ref: str | None, *, allow_user: bool = True) -> Channel:
        """A conversation by id, by ``#name`` / name, or (with ``allow_user``) a user id meaning their DM."""
        with self._lock:
            if not ref:
                raise SlackError("channel_not_found")
            if ref in self.channels:
                return self.channels[ref]
            if ref.startswith("D"):
                uid = "U" + ref[1:]
                if uid in self.users and uid != BOT_USER_ID:
                    return self.dm(uid)
            name = ref.removeprefix("#")
            for ch in self.channels.values():
                if not ch.is_im and ch.name == name:
                    return ch
            if allow_user:
                user = self.user(ref)
                if user is not None and not user.is_bot:
                    return self.dm(user.id)
            raise SlackError("channel_not_found")

    def _channel_messages(self, channel_id: str) -> list[Message]:
        return self.messages.setdefault(channel_id, [])

    def find_message(self, channel_id: str, ts: str) -> Message | None:
        with self._lock:
            for m in self.messages.get(channel_id, []):
                if m.ts == ts:
                    return m
            return None

    def post_message(self, channel: Channel, *, text: str, blocks: list[JSON], user: str = BOT_USER_ID,
                     bot_id: str | None = BOT_ID, thread_ts: str | None = None, reply_broadcast: bool = False,
                     metadata: JSON | None = None, attachments: list[JSON] | None = None) -> Message:
        with self._lock:
            parent: Message | None = None
            if thread_ts is not None:
                parent = self.find_message(channel.id, thread_ts)
                if parent is not None and parent.is_reply and parent.thread_ts is not None:
                    # Slack files a reply to a reply under the thread's parent.
                    thread_ts = parent.thread_ts
                    parent = self.find_message(channel.id, thread_ts)
            msg = Message(channel=channel.id, ts=self.new_ts(), user=user, text=text, blocks=blocks,
                          bot_id=bot_id, thread_ts=thread_ts, reply_broadcast=reply_broadcast,
                          metadata=metadata, attachments=attachments)
            if parent is not None:
                parent.thread_ts = parent.ts
                parent.replies.append(msg.ts)
            self._channel_messages(channel.id).append(msg)
            return msg

    def update_message(self, channel: Channel, ts: str, *, text: str | None, blocks: list[JSON] | None,
                       attachments: list[JSON] | None = None, editor: str = BOT_USER_ID) -> Message:
        with self._lock:
            msg = self.find_message(channel.id, ts)
            if msg is None:
                raise SlackError("message_not_found")
            if editor == BOT_USER_ID and msg.bot_id != BOT_ID:
                raise SlackError("cant_update_message")
            if text is not None:
                msg.text = text
            if blocks is not None:
                msg.earlier_blocks.append(msg.blocks)
                msg.blocks = blocks
            if attachments is not None:
                msg.attachments = attachments
            msg.edited = {"user": editor, "ts": self.new_ts()}
            return msg

    def delete_message(self, channel: Channel, ts: str) -> None:
        with self._lock:
            msgs = self.messages.get(channel.id, [])
            msg = self.find_message(channel.id, ts)
            if msg is None:
                raise SlackError("message_not_found")
            msgs.remove(msg)
            if msg.is_reply and msg.thread_ts is not None:
                parent = self.find_message(channel.id, msg.thread_ts)
                if parent is not None and ts in parent.replies:
                    parent.replies.remove(ts)

    def channel_messages(self, channel_id: str, thread_ts: str | None = None) -> list[Message]:
        """Messages oldest first: the whole channel, or one thread (parent first, then replies)."""
        with self._lock:
            msgs = list(self.messages.get(channel_id, []))
            if thread_ts is not None:
                msgs = [m for m in msgs if thread_ts in (m.ts, m.thread_ts)]
            return sorted(msgs, key=lambda m: _ts_key(m.ts))

    def post_ephemeral(self, channel: Channel, user: str, *, text: str, blocks: list[JSON],
                       thread_ts: str | None = None, sender: str = BOT_USER_ID, bot_id: str | None = BOT_ID,
                       source: str = "chat.postEphemeral") -> Ephemeral:
        with self._lock:
            eph = Ephemeral(ts=self.new_ts(), channel=channel.id, user=user, sender=sender, text=text,
                            blocks=blocks, thread_ts=thread_ts, source=source, bot_id=bot_id)
            self.ephemerals.append(eph)
            return eph

    def replace_ephemeral(self, user_id: str, ts: str, *, text: str | None = None,
                          blocks: list[JSON] | None = None, delete: bool = False) -> None:
        """What ``replace_original`` / ``delete_original`` do to an ephemeral message the person still sees."""
        with self._lock:
            eph = self.find_ephemeral(user_id, ts)
            if eph is None:
                raise SlackError("message_not_found", status=404)
            if delete:
                self.ephemerals.remove(eph)
                return
            eph.text = text if text is not None else eph.text
            eph.blocks = blocks if blocks is not None else eph.blocks

    def ephemerals_for(self, user_id: str) -> list[Ephemeral]:
        with self._lock:
            return [e for e in self.ephemerals if e.user == user_id]

    def find_ephemeral(self, user_id: str, ts: str) -> Ephemeral | None:
        with self._lock:
            for e in self.ephemerals:
                if e.user == user_id and e.ts == ts:
                    return e
            return None

    # ------------------------------------------------------------------ triggers and response URLs

    def issue_trigger(self, user_id: str) -> str:
        with self._lock:
            tid = f"{int(self._clock() * 1000)}{secrets.randbelow(1000):03d}.7365.{secrets.token_hex(16)}"
            self.triggers[tid] = Trigger(id=tid, user=user_id, issued=self._monotonic())
            return tid

    def exchange_trigger(self, trigger_id: Any) -> Trigger:
        """Use a trigger_id: single use, valid for ``faults.trigger_ttl_s`` (3 s, as Slack)."""
        with self._lock:
            if not isinstance(trigger_id, str) or not trigger_id:
                raise invalid_arguments("missing required field: trigger_id")
            trig = self.triggers.get(trigger_id)
            if trig is None:
                raise SlackError("invalid_arguments",
                                 extra={"response_metadata": {"messages": ["invalid `trigger_id`"]}})
            if trig.used:
                raise SlackError("exchanged_trigger_id")
            if self._monotonic() - trig.issued > self.faults.trigger_ttl_s:
                raise SlackError("expired_trigger_id")
            trig.used = True
            return trig

    def new_response_url(self, *, kind: str, user: str, channel: str, message_ts: str | None = None,
                         thread_ts: str | None = None) -> ResponseUrl:
        with self._lock:
            rid = f"{secrets.randbelow(10**12):012d}/{secrets.token_urlsafe(18)}"
            ru = ResponseUrl(id=rid, kind=kind, user=user, channel=channel, created=self._monotonic(),
                             message_ts=message_ts, thread_ts=thread_ts)
            self.response_urls[rid] = ru
            return ru

    def use_response_url(self, rid: str) -> ResponseUrl:
        with self._lock:
            ru = self.response_urls.get(rid)
            if ru is None or self._monotonic() - ru.created > RESPONSE_URL_TTL_S:
                raise SlackError("expired_url", status=404)
            if ru.uses >= RESPONSE_URL_USES:
                raise SlackError("used_url", status=404)
            ru.uses += 1
            return ru

    # ------------------------------------------------------------------ calls, faults, reset

    def log_call(self, call: ApiCall) -> None:
        with self._lock:
            self.calls.append(call)

    def calls_of(self, method: str | None = None) -> list[ApiCall]:
        with self._lock:
            return [c for c in self.calls if method is None or c.method == method]

    def reset(self) -> None:
        """Forget messages, ephemerals, views, triggers, calls and faults, and put the user groups back as the
        fixture made them; people and channels stay."""
        with self._lock:
            self.messages.clear()
            self.ephemerals.clear()
            self.views.clear()
            self.stacks.clear()
            self.home_views.clear()
            self.triggers.clear()
            self.response_urls.clear()
            self.calls.clear()
            self.faults = Faults()
            groups, members = self._fixture_groups
            self.usergroups = {g: dict(m) for g, m in groups.items()}
            self._group_members = {g: list(m) for g, m in members.items()}


def _ts_key(ts: str) -> tuple[int, int]:
    sec, _, frac = ts.partition(".")
    return int(sec), int(frac or 0)

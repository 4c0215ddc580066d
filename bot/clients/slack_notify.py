"""Slack as the services see it: post, update, DM, look people up. The only place the services' words
reach Slack's Web API, so slack_sdk never leaks into the rules.

Rate limits: slack-sdk retries only connection errors by default; a ``RateLimitErrorRetryHandler`` makes it
honour 429 + Retry-After (chat.postMessage is about 1 message/s per channel).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.errors import SlackUnavailableError

T = TypeVar("T")
Blocks = list[dict[str, Any]]
_GROUP_CACHE_S = 60.0


class Notifier(Protocol):
    def post(self, channel: str, text: str, *, blocks: Blocks | None = None, thread_ts: str | None = None) -> str: ...
    def update(self, channel: str, ts: str, text: str, *, blocks: Blocks | None = None) -> None: ...
    def ephemeral(self, channel: str, user: str, text: str, *, thread_ts: str | None = None) -> None: ...
    def dm(self, user: str, text: str, *, blocks: Blocks | None = None) -> tuple[str, str]: ...
    def email_of(self, user: str) -> str | None: ...
    def user_by_email(self, email: str) -> str | None: ...
    def name_of(self, user: str) -> str: ...
    def group_members(self, handle: str) -> frozenset[str]: ...
    def group_id(self, handle: str) -> str | None: ...
    def publish_home(self, user: str, view: dict[str, Any]) -> None: ...


class SlackNotifier:
    """A :class:`Notifier` over slack-sdk's WebClient."""

    def __init__(self, client: WebClient) -> None:
        if not any(isinstance(h, RateLimitErrorRetryHandler) for h in client.retry_handlers):
            client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=3))
        self._client = client
        self._lock = threading.Lock()
        self._groups: dict[str, tuple[float, str | None, frozenset[str]]] = {}

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except SlackApiError as e:
            code = str(e.response.get("error") or f"http_{e.response.status_code}")
            raise SlackUnavailableError(f"Slack refused {what} ({code}).", code=code) from e
        except OSError as e:
            raise SlackUnavailableError(f"Slack could not be reached for {what}.") from e

    def post(self, channel: str, text: str, *, blocks: Blocks | None = None, thread_ts: str | None = None) -> str:
        resp = self._call("a message", lambda: self._client.chat_postMessage(
            channel=channel, text=text, blocks=blocks, thread_ts=thread_ts, unfurl_links=False))
        return str(resp["ts"])

    def update(self, channel: str, ts: str, text: str, *, blocks: Blocks | None = None) -> None:
        self._call("a message update", lambda: self._client.chat_update(channel=channel, ts=ts, text=text,
                                                                         blocks=blocks or []))

    def ephemeral(self, channel: str, user: str, text: str, *, thread_ts: str | None = None) -> None:
        self._call("an ephemeral message", lambda: self._client.chat_postEphemeral(
            channel=channel, user=user, text=text, thread_ts=thread_ts))

    def dm(self, user: str, text: str, *, blocks: Blocks | None = None) -> tuple[str, str]:
        opened = self._call("a DM", lambda: self._client.conversations_open(users=[user]))
        channel = str(opened["channel"]["id"])
        return channel, self.post(channel, text, blocks=blocks)

    def email_of(self, user: str) -> str | None:
        try:
            resp = self._client.users_info(user=user)
        except SlackApiError as e:
            if e.response.get("error") in ("user_not_found", "users_not_found"):
                return None
            raise SlackUnavailableError(f"Slack refused users.info ({e.response.get('error')}).") from e
        email = resp["user"].get("profile", {}).get("email")
        return str(email).lower() if email else None

    def name_of(self, user: str) -> str:
        try:
            resp = self._client.users_info(user=user)
        except SlackApiError:
            return user
        u = resp["user"]
        return str(u.get("real_name") or u.get("profile", {}).get("real_name") or u.get("name") or user)

    def user_by_email(self, email: str) -> str | None:
        try:
            resp = self._client.users_lookupByEmail(email=email)
        except SlackApiError as e:
            if e.response.get("error") == "users_not_found":
                return None
            raise SlackUnavailableError(f"Slack refused users.lookupByEmail ({e.response.get('error')}).") from e
        return str(resp["user"]["id"])

    def _group(self, handle: str) -> tuple[str | None, frozenset[str]]:
        """Group id and members, cached briefly: usergroups.users.list is tier 2 (about 20 calls a minute)."""
        now = time.monotonic()
        with self._lock:
            hit = self._groups.get(handle)
            if hit and now - hit[0] < _GROUP_CACHE_S:
                return hit[1], hit[2]
        groups = self._call("the user group list", self._client.usergroups_list)
        gid = next((str(g["id"]) for g in groups["usergroups"] if g.get("handle") == handle), None)
        members: frozenset[str] = frozenset()
        if gid:
            resp = self._call("the user group's members", lambda: self._client.usergroups_users_list(usergroup=gid))
            members = frozenset(str(u) for u in resp["users"])
        with self._lock:
            self._groups[handle] = (now, gid, members)
        return gid, members

    def group_members(self, handle: str) -> frozenset[str]:
        return self._group(handle)[1]

    def group_id(self, handle: str) -> str | None:
        return self._group(handle)[0]

    def publish_home(self, user: str, view: dict[str, Any]) -> None:
        self._call("the App Home", lambda: self._client.views_publish(user_id=user, view=view))

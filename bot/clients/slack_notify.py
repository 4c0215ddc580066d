"""Slack as the services see it: post, update, DM, look people up. The only place the services' words
reach Slack's Web API, so slack_sdk never leaks into the rules.

Rate limits: slack-sdk retries only connection errors by default; a ``RateLimitErrorRetryHandler`` makes it
honour 429 + Retry-After (chat.postMessage is about 1 message/s per channel).

User groups are named by the settings with an id or a handle, and either way *pinned*: a handle is looked up
once (``pin``) and from then on the group is asked for by its id (``usergroups.users.list?usergroup=S…``). A
handle belongs to whichever group holds it now, and where members may change user groups anyone can give it to a
group of their own; the id stays with the group the bot started with (``bot.domain.groups``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from pydantic import SecretStr
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.domain.groups import GroupFacts, find_group, group_ref, is_group_id
from bot.errors import SlackUnavailableError

log = logging.getLogger(__name__)
T = TypeVar("T")
Blocks = list[dict[str, Any]]
_GROUP_CACHE_S = 60.0
#: The logger of the client that sends codes: errors only, never a request or response body.
_SILENT = logging.getLogger("resetbot.slack.unlogged")
_SILENT.setLevel(logging.ERROR)


class Notifier(Protocol):
    def post(self, channel: str, text: str, *, blocks: Blocks | None = None, thread_ts: str | None = None) -> str: ...
    def update(self, channel: str, ts: str, text: str, *, blocks: Blocks | None = None) -> None: ...
    def ephemeral(self, channel: str, user: str, text: str, *, thread_ts: str | None = None) -> None: ...
    def dm(self, user: str, text: str, *, blocks: Blocks | None = None) -> tuple[str, str]: ...
    def dm_secret(self, user: str, text: SecretStr) -> None: ...
    def email_of(self, user: str) -> str | None: ...
    def user_by_email(self, email: str) -> str | None: ...
    def name_of(self, user: str) -> str: ...
    def permalink(self, channel: str, ts: str) -> str | None: ...
    def group_members(self, handle: str, *, fresh: bool = False) -> frozenset[str]: ...
    def group_id(self, handle: str) -> str | None: ...
    def group_handle(self, ref: str) -> str: ...
    def publish_home(self, user: str, view: dict[str, Any]) -> None: ...


class SlackNotifier:
    """A :class:`Notifier` over slack-sdk's WebClient."""

    def __init__(self, client: WebClient) -> None:
        if not any(isinstance(h, RateLimitErrorRetryHandler) for h in client.retry_handlers):
            client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=3))
        self._client = client
        self._lock = threading.Lock()
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}
        #: Each group the settings (or a stored request) name, as it was the first time it was looked up.
        self._pins: dict[str, GroupFacts] = {}

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

    def dm_secret(self, user: str, text: SecretStr) -> None:
        """A DM holding a one-time code: sent with a client whose logger never records request or response bodies
        (slack-sdk logs both at DEBUG), and never retried through the outbox, which would store it."""
        quiet = WebClient(token=self._client.token, base_url=self._client.base_url, timeout=self._client.timeout,
                          ssl=self._client.ssl, proxy=self._client.proxy, headers=self._client.headers,
                          retry_handlers=self._client.retry_handlers, logger=_SILENT)
        opened = self._call("a DM", lambda: quiet.conversations_open(users=[user]))
        channel = str(opened["channel"]["id"])
        self._call("a DM", lambda: quiet.chat_postMessage(channel=channel, text=text.get_secret_value(),
                                                          unfurl_links=False))

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

    def permalink(self, channel: str, ts: str) -> str | None:
        """A link to the message (``chat.getPermalink``), or None when Slack will not give one: a link is a
        convenience in a sentence, never worth failing it for."""
        try:
            resp = self._client.chat_getPermalink(channel=channel, message_ts=ts)
        except (SlackApiError, OSError) as e:
            log.info("no permalink for %s/%s: %s", channel, ts, type(e).__name__)
            return None
        link = resp.get("permalink")
        return str(link) if link else None

    def user_by_email(self, email: str) -> str | None:
        try:
            resp = self._client.users_lookupByEmail(email=email)
        except SlackApiError as e:
            if e.response.get("error") == "users_not_found":
                return None
            raise SlackUnavailableError(f"Slack refused users.lookupByEmail ({e.response.get('error')}).") from e
        return str(resp["user"]["id"])

    def user_groups(self) -> list[GroupFacts]:
        """Every enabled user group of the workspace, as ``usergroups.list`` shows it."""
        groups = self._call("the user group list", self._client.usergroups_list)
        return [GroupFacts(id=str(g["id"]), handle=str(g.get("handle") or ""),
                           created_by=g.get("created_by") or None, updated_by=g.get("updated_by") or None)
                for g in groups["usergroups"]]

    def pin(self, ref: str, *, setting: str | None = None) -> GroupFacts | None:
        """The group ``ref`` (an id, or a handle) names, looked up the first time and kept for the life of the
        process: a handle given away to another group later changes nothing here. None (and nothing kept) when
        the workspace has no such group. ``setting`` names where the ref came from, for the log line that says
        what a handle was pinned to."""
        key = group_ref(ref)
        with self._lock:
            pinned = self._pins.get(key)
        if pinned is not None:
            return pinned
        found = find_group(key, self.user_groups())
        if found is None:
            return None
        with self._lock:
            pinned = self._pins.setdefault(key, found)
        if pinned is found and not is_group_id(key):
            where = setting or "a stored request"
            fix = f"; set {setting}={found.id} to pin it for good" if setting else ""
            log.info("%s: the handle @%s is the user group %s, which is pinned until the bot restarts%s", where,
                     key, found.id, fix)
        return pinned

    def group_members(self, handle: str, *, fresh: bool = False) -> frozenset[str]:
        """The members of the pinned group, cached briefly: usergroups.users.list is tier 2 (about 20 calls a
        minute). ``fresh`` asks Slack now, for a decision that must not rest on a minute-old list (someone taken
        out of the helpdesk approving or revealing). Nobody, when the workspace has no such group."""
        pinned = self.pin(handle)
        if pinned is None:
            return frozenset()
        now = time.monotonic()
        with self._lock:
            hit = self._groups.get(pinned.id)
            if hit and now - hit[0] < _GROUP_CACHE_S and not fresh:
                return hit[1]
        resp = self._call("the user group's members",
                          lambda: self._client.usergroups_users_list(usergroup=pinned.id))
        members = frozenset(str(u) for u in resp["users"])
        with self._lock:
            self._groups[pinned.id] = (now, members)
        return members

    def group_id(self, handle: str) -> str | None:
        pinned = self.pin(handle)
        return pinned.id if pinned is not None else None

    def group_handle(self, ref: str) -> str:
        """The handle to show for a group (as it was when pinned); the ref itself when there is no such group."""
        pinned = self.pin(ref)
        return pinned.handle if pinned is not None and pinned.handle else group_ref(ref)

    def publish_home(self, user: str, view: dict[str, Any]) -> None:
        self._call("the App Home", lambda: self._client.views_publish(user_id=user, view=view))

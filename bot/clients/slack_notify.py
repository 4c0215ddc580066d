"""Slack as the services see it: post, update, DM, look people up. The only place the services' words
reach Slack's Web API, so slack_sdk never leaks into the rules.

Rate limits: slack-sdk retries only connection errors by default; a ``RateLimitErrorRetryHandler`` makes it
honour 429 + Retry-After (chat.postMessage is about 1 message/s per channel).

User groups are named by the settings with an id or a handle, and either way *pinned*: a handle is looked up
once (``pin``) and from then on the group is asked for by its id (``usergroups.users.list?usergroup=S…``). A
handle belongs to whichever group holds it now, and where members may change user groups anyone can give it to a
group of their own; the id stays with the group the bot started with (``bot.domain.groups``).

What does not change between requests is remembered briefly, in bounded memories (``bot.clients.recent``), each
read for as young an answer as its use needs (a /reset used to cost nine ``users.info``, two
``users.lookupByEmail`` and a ``conversations.open`` for people the bot had just looked up; bench/web_api_calls.py):

- a user group's members: as old as the decision allows (``bot.domain.groups``: read now for a click that
  approves or reveals, a few seconds for a request, a minute for a view); one read at a time per group, shared by
  whoever waits for it;
- a Slack profile (``users.info``): its name for ten minutes (only shown); its email, which says who the person
  is, for a minute (an email changed by the workspace's admins is seen within that minute);
- an address's Slack account (``users.lookupByEmail``): a minute, and only a found one (someone who joins Slack
  is found at once);
- a DM's channel (``conversations.open``): a day (its id never changes);
- App Home: a refresh is published only when the person's view changed since the bot last published it to them
  (within ten minutes: another replica may have published since).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from pydantic import SecretStr
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.clients.recent import Recent
from bot.domain.groups import MEMBERS_FOR_A_VIEW_S, GroupFacts, find_group, group_ref, is_group_id
from bot.errors import SlackUnavailableError

log = logging.getLogger(__name__)
T = TypeVar("T")
Blocks = list[dict[str, Any]]
#: How long a Slack profile's name, and its email, are taken as they were read (see the module's docstring).
NAME_MAX_AGE_S = 600.0
EMAIL_MAX_AGE_S = 60.0
#: How long a published App Home is taken as what the person sees, for skipping an unchanged refresh.
HOME_MAX_AGE_S = 600.0
#: How long a DM's channel id is remembered: it never changes; a day bounds what a long-running bot keeps.
DM_MAX_AGE_S = 86_400.0
#: People remembered (profiles, addresses, App Homes): a workspace's worth, whatever its size.
REMEMBERED_PEOPLE = 4096
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
    def group_members(self, handle: str, *, max_age: float = MEMBERS_FOR_A_VIEW_S) -> frozenset[str]: ...
    def group_id(self, handle: str) -> str | None: ...
    def group_handle(self, ref: str) -> str: ...
    def publish_home(self, user: str, view: dict[str, Any], *, only_if_changed: bool = False) -> None: ...


class SlackNotifier:
    """A :class:`Notifier` over slack-sdk's WebClient."""

    def __init__(self, client: WebClient) -> None:
        if not any(isinstance(h, RateLimitErrorRetryHandler) for h in client.retry_handlers):
            client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=3))
        self._client = client
        self._lock = threading.Lock()
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}
        #: One member-list read at a time per group: who waits takes the answer of a read begun after they asked.
        self._group_reads: dict[str, threading.Lock] = {}
        #: One message at a time per channel (``post``).
        self._channel_turns: dict[str, threading.Lock] = {}
        self._profiles: Recent[str, dict[str, Any]] = Recent(REMEMBERED_PEOPLE)
        self._by_email: Recent[str, str] = Recent(REMEMBERED_PEOPLE)
        self._homes: Recent[str, str] = Recent(REMEMBERED_PEOPLE)
        self._dm_channels: Recent[str, str] = Recent(REMEMBERED_PEOPLE)
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
        """Messages to one channel go one at a time. Slack takes about one a second per channel and answers 429
        with Retry-After past a short burst; threads that all met the 429 slept the same Retry-After, met it again,
        and one of a burst of eight ``/reset`` lost its approver's mention after three tries. One at a time, the
        sender waits out Retry-After and the others wait their turn without spending tries."""
        with self._lock:
            turn = self._channel_turns.setdefault(channel, threading.Lock())
        with turn:
            resp = self._call("a message", lambda: self._client.chat_postMessage(
                channel=channel, text=text, blocks=blocks, thread_ts=thread_ts, unfurl_links=False))
        return str(resp["ts"])

    def update(self, channel: str, ts: str, text: str, *, blocks: Blocks | None = None) -> None:
        self._call("a message update", lambda: self._client.chat_update(channel=channel, ts=ts, text=text,
                                                                         blocks=blocks or []))

    def ephemeral(self, channel: str, user: str, text: str, *, thread_ts: str | None = None) -> None:
        self._call("an ephemeral message", lambda: self._client.chat_postEphemeral(
            channel=channel, user=user, text=text, thread_ts=thread_ts))

    def _dm_channel(self, user: str, client: WebClient) -> str:
        """The bot's DM with ``user``: opened once, then remembered (a DM's id never changes, and posting to it
        works whether or not the person has it open)."""
        known = self._dm_channels.get(user, max_age=DM_MAX_AGE_S)
        if known is not None:
            return known
        opened = self._call("a DM", lambda: client.conversations_open(users=[user]))
        channel = str(opened["channel"]["id"])
        self._dm_channels.put(user, channel)
        return channel

    def dm(self, user: str, text: str, *, blocks: Blocks | None = None) -> tuple[str, str]:
        channel = self._dm_channel(user, self._client)
        return channel, self.post(channel, text, blocks=blocks)

    def dm_secret(self, user: str, text: SecretStr) -> None:
        """A DM holding a one-time code: sent with a client whose logger never records request or response bodies
        (slack-sdk logs both at DEBUG), and never retried through the outbox, which would store it."""
        quiet = WebClient(token=self._client.token, base_url=self._client.base_url, timeout=self._client.timeout,
                          ssl=self._client.ssl, proxy=self._client.proxy, headers=self._client.headers,
                          retry_handlers=self._client.retry_handlers, logger=_SILENT)
        channel = self._dm_channel(user, quiet)
        self._call("a DM", lambda: quiet.chat_postMessage(channel=channel, text=text.get_secret_value(),
                                                          unfurl_links=False))

    def _profile(self, user: str, max_age: float) -> dict[str, Any] | None:
        """The Slack user as ``users.info`` shows them, read at most ``max_age`` seconds ago; None if no such user."""
        hit = self._profiles.get(user, max_age=max_age)
        if hit is not None:
            return hit
        started = time.monotonic()
        try:
            resp = self._client.users_info(user=user)
        except SlackApiError as e:
            if e.response.get("error") in ("user_not_found", "users_not_found"):
                return None
            raise SlackUnavailableError(f"Slack refused users.info ({e.response.get('error')}).") from e
        found = dict(resp["user"])
        self._profiles.put(user, found, read_at=started)
        return found

    def email_of(self, user: str) -> str | None:
        found = self._profile(user, EMAIL_MAX_AGE_S)
        email = (found or {}).get("profile", {}).get("email")
        return str(email).lower() if email else None

    def name_of(self, user: str) -> str:
        try:
            u = self._profile(user, NAME_MAX_AGE_S)
        except SlackUnavailableError:
            return user
        if u is None:
            return user
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
        key = email.strip().lower()
        hit = self._by_email.get(key, max_age=EMAIL_MAX_AGE_S)
        if hit is not None:
            return hit
        started = time.monotonic()
        try:
            resp = self._client.users_lookupByEmail(email=email)
        except SlackApiError as e:
            if e.response.get("error") == "users_not_found":
                return None
            raise SlackUnavailableError(f"Slack refused users.lookupByEmail ({e.response.get('error')}).") from e
        found = str(resp["user"]["id"])
        self._by_email.put(key, found, read_at=started)
        return found

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

    def group_members(self, handle: str, *, max_age: float = MEMBERS_FOR_A_VIEW_S) -> frozenset[str]:
        """The members of the pinned group, as read at most ``max_age`` seconds before this call (0: by a read
        that began after it). ``bot.domain.groups`` says how old a list each decision accepts, and why. Nobody,
        when the workspace has no such group."""
        pinned = self.pin(handle)
        if pinned is None:
            return frozenset()
        oldest = time.monotonic() - max_age
        with self._lock:
            reading = self._group_reads.setdefault(pinned.id, threading.Lock())
        with reading:
            with self._lock:
                hit = self._groups.get(pinned.id)
            if hit is not None and hit[0] >= oldest:
                return hit[1]  # read by whoever held the lock, after this call began (or young enough)
            started = time.monotonic()
            resp = self._call("the user group's members",
                              lambda: self._client.usergroups_users_list(usergroup=pinned.id))
            members = frozenset(str(u) for u in resp["users"])
            with self._lock:
                self._groups[pinned.id] = (started, members)
            return members

    def group_id(self, handle: str) -> str | None:
        pinned = self.pin(handle)
        return pinned.id if pinned is not None else None

    def group_handle(self, ref: str) -> str:
        """The handle to show for a group (as it was when pinned); the ref itself when there is no such group."""
        pinned = self.pin(ref)
        return pinned.handle if pinned is not None and pinned.handle else group_ref(ref)

    def publish_home(self, user: str, view: dict[str, Any], *, only_if_changed: bool = False) -> None:
        """Publish ``user``'s App Home. ``only_if_changed`` (a refresh after someone's action) skips a view the bot
        published to them, unchanged, in the last ``HOME_MAX_AGE_S``: most changes to a request change one or two
        people's views, not every view a change used to republish."""
        digest = hashlib.sha256(json.dumps(view, sort_keys=True, default=str).encode()).hexdigest()
        if only_if_changed and self._homes.get(user, max_age=HOME_MAX_AGE_S) == digest:
            return
        self._homes.drop(user)  # until Slack has taken this one, what the person sees is unknown
        self._call("the App Home", lambda: self._client.views_publish(user_id=user, view=view))
        self._homes.put(user, digest)

"""``SlackDriver``: act as people in the lab's Slack and look at what they see, over the control API.

Why this exists: tests and the demo should read like a person's story ("alice runs /reset", "ivan clicks
Approve", "alice's DM now says Done") and must not sleep for fixed times: the bot answers asynchronously,
so every look comes with a ``wait_for_*`` variant that polls briefly until the condition holds and, if it
never does, fails with the transcript in the error message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypedDict, TypeVar, cast

import httpx

T = TypeVar("T")

#: How often the wait_for helpers look again.
POLL_INTERVAL_S = 0.02


class Ack(TypedDict, total=False):
    """What an action returns: the first delivery attempt and its ack (LAB.md)."""

    envelope_id: str | None
    acked: bool
    ack_ms: float | None
    ack_body: dict[str, Any] | None
    error: str
    http_status: int
    trigger_id: str
    view_open: bool
    errors: dict[str, Any] | None
    closed: list[str]
    event_id: str


class Message(TypedDict):
    ts: str
    thread_ts: str | None
    user: str
    bot_id: str | None
    text: str
    blocks: list[dict[str, Any]]
    edited: dict[str, Any] | None
    channel: str


class SlackDriverError(RuntimeError):
    """The control API refused a request (unknown person, no such button, ...)."""


class WaitTimeout(AssertionError):
    """A wait_for condition never held; the message carries what was there instead."""


class SlackDriver:
    """A thin typed client of the Slack stand-in's control API (``descriptor["slack"]["control"]``)."""

    def __init__(self, control_url: str, *, timeout: float = 20.0) -> None:
        self.control_url = control_url.rstrip("/")
        self._http = httpx.Client(base_url=self.control_url, timeout=timeout)

    def close_client(self) -> None:
        self._http.close()

    def __enter__(self) -> SlackDriver:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close_client()

    def _call(self, method: str, path: str, *, json: Any = None, params: dict[str, str] | None = None) -> Any:
        resp = self._http.request(method, path, json=json, params=params)
        if resp.status_code >= 400:
            raise SlackDriverError(f"{method} {path} -> {resp.status_code}: {resp.text}")
        return resp.json()

    # ------------------------------------------------------------------ acting as a person

    def command(self, user: str, command: str, text: str = "", *, channel: str | None = None) -> Ack:
        """``user`` types ``command text`` in ``channel`` (default: their DM with the bot); the app gets ``text`` as
        Slack sends it (escaped, mentions and links in their ``<…>`` forms: see composer.py)."""
        return cast(Ack, self._call("POST", "/command", json={"user": user, "channel": channel,
                                                             "command": command, "text": text}))

    def click(self, user: str, channel: str, ts: str, action_id: str, value: Any = None, *,
              stale_ok: bool = False) -> Ack:
        """``user`` clicks (or picks ``value`` in) the element ``action_id`` of message ``ts``; with ``stale_ok``
        the click may come from an earlier version of the message (a client that has not redrawn yet)."""
        body: dict[str, Any] = {"user": user, "channel": channel, "ts": ts, "action_id": action_id}
        if value is not None:
            body["value"] = value
        if stale_ok:
            body["stale_ok"] = True
        return cast(Ack, self._call("POST", "/click", json=body))

    def click_view(self, user: str, view_id: str, action_id: str, value: Any = None) -> Ack:
        """``user`` clicks an element inside a modal or their App Home."""
        body: dict[str, Any] = {"user": user, "view_id": view_id, "action_id": action_id}
        if value is not None:
            body["value"] = value
        return cast(Ack, self._call("POST", "/click", json=body))

    def submit(self, user: str, view_id: str, values: dict[str, Any] | None = None) -> Ack:
        """``user`` fills in ``values`` (by action_id, block_id or "block_id.action_id") and submits."""
        return cast(Ack, self._call("POST", "/submit", json={"user": user, "view_id": view_id,
                                                            "values": values or {}}))

    def close(self, user: str, view_id: str) -> Ack:
        """``user`` closes (cancels) the modal ``view_id``."""
        return cast(Ack, self._call("POST", "/close", json={"user": user, "view_id": view_id}))

    def open_home(self, user: str) -> Ack:
        """``user`` opens the app's Home tab (sends app_home_opened)."""
        return cast(Ack, self._call("POST", "/home", json={"user": user}))

    # ------------------------------------------------------------------ looking

    def messages(self, channel: str, thread_ts: str | None = None) -> list[Message]:
        params = {"channel": channel}
        if thread_ts is not None:
            params["thread_ts"] = thread_ts
        return cast(list[Message], self._call("GET", "/messages", params=params))

    def dm_channel(self, user: str) -> str:
        return cast(str, self._call("GET", "/dm", params={"user": user})["channel"])

    def ephemeral(self, user: str) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._call("GET", "/ephemeral", params={"user": user}))

    def views(self, user: str) -> list[dict[str, Any]]:
        """Modals opened for ``user``, newest last, each with ``open``, ``state`` and ``errors``."""
        return cast(list[dict[str, Any]], self._call("GET", "/views", params={"user": user}))

    def home_view(self, user: str) -> dict[str, Any] | None:
        return cast(dict[str, Any] | None, self._call("GET", "/home_view", params={"user": user}))

    def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._call("GET", "/calls", params={"method": method} if method else None))

    def envelopes(self, type_: str | None = None) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._call("GET", "/envelopes", params={"type": type_} if type_ else None))

    def connections(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._call("GET", "/connections"))

    # ------------------------------------------------------------------ steering

    def faults(self, *, rate_limit: bool | None = None, fail_next: dict[str, Any] | list[dict[str, Any]] | None = None,
               drop_acks: bool | None = None, ack_timeout_s: float | None = None,
               trigger_ttl_s: float | None = None, revoked_scopes: list[str] | None = None,
               http_signing: str | None = None, down: list[str] | None = None,
               usergroup_editors: str | None = None) -> dict[str, Any]:
        """Change only the switches given; returns all of them. ``down=["chat.postMessage"]`` takes that method
        down (HTTP 503) until ``down=[]``. ``fail_next={...}`` plans one more failing call (or ``count`` of them);
        a list replaces every planned failure, so ``fail_next=[]`` clears the plan."""
        body = {k: v for k, v in {"rate_limit": rate_limit, "fail_next": fail_next, "drop_acks": drop_acks,
                                  "ack_timeout_s": ack_timeout_s, "trigger_ttl_s": trigger_ttl_s,
                                  "revoked_scopes": revoked_scopes, "http_signing": http_signing,
                                  "down": down, "usergroup_editors": usergroup_editors}.items()
                if v is not None}
        return cast(dict[str, Any], self._call("POST", "/faults", json=body))

    def usergroup(self, user: str, action: str, *, usergroup: str | None = None, handle: str | None = None,
                  name: str | None = None, users: list[str] | None = None) -> dict[str, Any]:
        """``user`` creates, changes (handle, name, members), disables or enables a user group in Slack's client;
        answers the group as ``usergroups.list`` shows it (with its users)."""
        body = {k: v for k, v in {"user": user, "action": action, "usergroup": usergroup, "handle": handle,
                                  "name": name, "users": users}.items() if v is not None}
        return cast(dict[str, Any], self._call("POST", "/usergroup", json=body)["usergroup"])

    def disconnect(self, reason: str = "refresh_requested") -> int:
        """Ask every Socket Mode client to reconnect; returns how many were asked."""
        return cast(int, self._call("POST", "/disconnect", json={"reason": reason})["sent"])

    def set_request_url(self, url: str | None) -> dict[str, Any]:
        """Deliver over HTTP to ``url`` from now on (after Slack's url_verification), or (None) Socket Mode."""
        return cast(dict[str, Any], self._call("POST", "/request_url", json={"url": url}))

    def http_requests(self) -> list[dict[str, Any]]:
        """Every HTTP request sent to the app: type, headers, body, status, answer."""
        return cast(list[dict[str, Any]], self._call("GET", "/http_requests"))

    def replay(self, index: int = -1) -> dict[str, Any]:
        """Send recorded HTTP request ``index`` (default: the last) again, byte for byte; returns its record."""
        return cast(dict[str, Any], self._call("POST", "/replay", json={"index": index}))

    def reset(self) -> None:
        """Forget messages, views, calls, envelopes and faults (people and channels stay)."""
        self._call("POST", "/reset", json={})

    # ------------------------------------------------------------------ waiting without sleeping

    @staticmethod
    def wait_for(probe: Callable[[], T | None], *, timeout: float = 10.0, describe: Callable[[], str] | None = None,
                 what: str = "condition") -> T:
        """Call ``probe`` until it returns something other than None (or False); fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            result = probe()
            if result is not None and result is not False:
                return result
            if time.monotonic() > deadline:
                detail = describe() if describe is not None else ""
                raise WaitTimeout(f"timed out after {timeout}s waiting for {what}\n{detail}")
            time.sleep(POLL_INTERVAL_S)

    def wait_for_message(self, channel: str, predicate: Callable[[Message], bool], *,
                         thread_ts: str | None = None, timeout: float = 10.0) -> Message:
        """The first message in ``channel`` (or the thread) for which ``predicate`` holds."""
        def probe() -> Message | None:
            return next((m for m in self.messages(channel, thread_ts) if predicate(m)), None)

        return self.wait_for(probe, timeout=timeout, what=f"a message in {channel}",
                             describe=lambda: _transcript(self.messages(channel, thread_ts)))

    def wait_for_ephemeral(self, user: str, predicate: Callable[[dict[str, Any]], bool], *,
                           timeout: float = 10.0) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            return next((e for e in self.ephemeral(user) if predicate(e)), None)

        return self.wait_for(probe, timeout=timeout, what=f"an ephemeral message for {user}",
                             describe=lambda: _transcript(self.ephemeral(user)))

    def wait_for_view(self, user: str, predicate: Callable[[dict[str, Any]], bool] = lambda v: bool(v["open"]), *,
                      timeout: float = 10.0) -> dict[str, Any]:
        """The newest modal of ``user`` for which ``predicate`` holds (default: an open one)."""
        def probe() -> dict[str, Any] | None:
            return next((v for v in reversed(self.views(user)) if predicate(v)), None)

        return self.wait_for(probe, timeout=timeout, what=f"a modal for {user}",
                             describe=lambda: repr(self.views(user)))

    def wait_for_home_view(self, user: str, predicate: Callable[[dict[str, Any]], bool] = lambda v: True, *,
                           timeout: float = 10.0) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            view = self.home_view(user)
            return view if view is not None and predicate(view) else None

        return self.wait_for(probe, timeout=timeout, what=f"the home view of {user}",
                             describe=lambda: repr(self.home_view(user)))

    def wait_connected(self, count: int = 1, *, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until at least ``count`` Socket Mode connections have said hello."""
        def probe() -> list[dict[str, Any]] | None:
            ready = [c for c in self.connections() if c.get("ready")]
            return ready if len(ready) >= count else None

        return self.wait_for(probe, timeout=timeout, what=f"{count} Socket Mode connection(s)",
                             describe=lambda: repr(self.connections()))


def _transcript(items: list[Any]) -> str:
    lines = [f"  {m.get('ts')} {m.get('user')}: {m.get('text')!r}" + (" (edited)" if m.get("edited") else "")
             for m in items]
    return "transcript:\n" + ("\n".join(lines) if lines else "  (empty)")

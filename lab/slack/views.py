"""The workspace's views: each person's stack of modals (``views.open`` / ``push`` / ``update``) and App Home.

Workspace takes this in as a mixin so that the Web API and the control API keep calling ``workspace.open_view``
and the rest. The state lives on the workspace (``views``, ``stacks``, ``home_views``, set up and cleared with
everything else by Workspace) and every method takes the workspace's one lock.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable

from .blocks import JSON
from .errors import SlackError
from .ids import random_id
from .records import View

#: A modal stack holds at most three views.
VIEW_STACK_LIMIT = 3


class ViewsMixin:
    """Modal stacks and home tabs, part of Workspace. Methods raise SlackError with Slack's error codes."""

    # Set by Workspace.__init__.
    _lock: threading.RLock
    _clock: Callable[[], float]
    views: dict[str, View]
    #: Per person, the ids of their open modals, root first.
    stacks: dict[str, list[str]]
    #: Per person, the id of their published home view.
    home_views: dict[str, str]

    def _new_view(self, user_id: str, body: JSON, state: JSON, *, root: str | None, previous: str | None,
                  opened_by: str) -> View:
        vid = random_id("V")
        view = View(id=vid, user=user_id, body=body, hash=self._new_hash(), state=state,
                    root_view_id=root or vid, previous_view_id=previous, opened_by=opened_by)
        self.views[vid] = view
        return view

    def _new_hash(self) -> str:
        return f"{int(self._clock())}.{secrets.token_hex(4)}"

    def _check_external_id(self, body: JSON, *, except_view: str | None = None) -> None:
        ext = body.get("external_id")
        if not ext:
            return
        for v in self.views.values():
            if v.id != except_view and v.body.get("external_id") == ext and (v.open or v.type == "home"):
                raise SlackError("duplicate_external_id")

    def open_view(self, user_id: str, body: JSON, state: JSON) -> View:
        """``views.open``: a new root modal; a modal already open for the person is replaced."""
        with self._lock:
            self._check_external_id(body)
            for vid in self.stacks.get(user_id, []):
                self.views[vid].open = False
            view = self._new_view(user_id, body, state, root=None, previous=None, opened_by="views.open")
            self.stacks[user_id] = [view.id]
            return view

    def push_view(self, user_id: str, body: JSON, state: JSON, *, opened_by: str = "views.push") -> View:
        with self._lock:
            stack = self.stacks.get(user_id, [])
            if not stack:
                return self.open_view(user_id, body, state)
            if len(stack) >= VIEW_STACK_LIMIT:
                raise SlackError("push_limit_reached")
            self._check_external_id(body)
            top = self.views[stack[-1]]
            view = self._new_view(user_id, body, state, root=top.root_view_id, previous=top.id,
                                  opened_by=opened_by)
            stack.append(view.id)
            return view

    def find_view(self, *, view_id: str | None = None, external_id: str | None = None) -> View | None:
        with self._lock:
            if view_id:
                return self.views.get(view_id)
            if external_id:
                for v in reversed(list(self.views.values())):
                    if v.body.get("external_id") == external_id and (v.open or v.type == "home"):
                        return v
            return None

    def update_view(self, view: View, body: JSON, new_state: JSON, *, hash_: str | None) -> View:
        with self._lock:
            if view.type == "modal" and not view.open:
                raise SlackError("not_found")
            if hash_ is not None and hash_ != view.hash:
                raise SlackError("hash_conflict")
            self._check_external_id(body, except_view=view.id)
            view.body = body
            view.state = new_state
            view.hash = self._new_hash()
            view.errors = None
            return view

    def publish_home(self, user_id: str, body: JSON, state: JSON, *, hash_: str | None) -> View:
        with self._lock:
            vid = self.home_views.get(user_id)
            if vid is not None:
                view = self.views[vid]
                if hash_ is not None and hash_ != view.hash:
                    raise SlackError("hash_conflict")
                view.body, view.state, view.hash = body, state, self._new_hash()
                return view
            view = self._new_view(user_id, body, state, root=None, previous=None, opened_by="views.publish")
            self.home_views[user_id] = view.id
            return view

    def home_view(self, user_id: str) -> View | None:
        with self._lock:
            vid = self.home_views.get(user_id)
            return self.views[vid] if vid else None

    def top_view(self, user_id: str) -> View | None:
        with self._lock:
            stack = self.stacks.get(user_id, [])
            return self.views[stack[-1]] if stack else None

    def close_view(self, view: View, *, clear: bool = False) -> list[View]:
        """Close ``view`` (and everything above it); ``clear`` closes the person's whole stack."""
        with self._lock:
            stack = self.stacks.get(view.user, [])
            if view.id not in stack:
                view.open = False
                return [view]
            cut = 0 if clear else stack.index(view.id)
            closed = [self.views[v] for v in stack[cut:]]
            for v in closed:
                v.open = False
            del stack[cut:]
            return closed

    def modals_for(self, user_id: str) -> list[View]:
        with self._lock:
            return [v for v in self.views.values() if v.user == user_id and v.type == "modal"]

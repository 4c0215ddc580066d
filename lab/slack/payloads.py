"""The payloads Slack sends an app when a person acts: slash commands, block_actions, view_submission,
view_closed and the app_home_opened event.

Why this exists: bolt routes and parses these by their exact shape (``extract_user_id``, ``channel_id``,
``container``, ``view.state.values``...), so the control API must produce what Slack produces, field for
field, including Slack's quirks (slash-command values are all strings, a DM's ``channel_name`` is
``directmessage``, ephemeral sources carry no ``message``).
"""

from __future__ import annotations

import secrets
import string

from .blocks import JSON
from .ids import APP_ID, BOT_USER_ID, ENTERPRISE_ID, TEAM_DOMAIN, TEAM_ID
from .records import Channel, User, View


def _user(user: User) -> JSON:
    return {"id": user.id, "username": user.name, "name": user.name, "team_id": TEAM_ID}


def _team() -> JSON:
    return {"id": TEAM_ID, "domain": TEAM_DOMAIN}


def slash_command(*, verification_token: str, user: User, channel: Channel, command: str, text: str,
                  response_url: str, trigger_id: str) -> JSON:
    """A slash command: the form fields Slack posts, as the JSON object Socket Mode carries (all strings)."""
    return {
        "token": verification_token, "team_id": TEAM_ID, "team_domain": TEAM_DOMAIN,
        "channel_id": channel.id, "channel_name": channel.payload_name, "user_id": user.id,
        "user_name": user.name, "command": command, "text": text, "api_app_id": APP_ID,
        "is_enterprise_install": "false", "response_url": response_url, "trigger_id": trigger_id,
    }


def block_actions_message(*, verification_token: str, user: User, channel: Channel, message: JSON,
                          message_ts: str, thread_ts: str | None, is_ephemeral: bool, actions: list[JSON],
                          state: JSON, response_url: str, trigger_id: str) -> JSON:
    """A click in a message (``container.type`` ``message``); ephemeral sources carry no ``message``."""
    container: JSON = {"type": "message", "message_ts": message_ts, "channel_id": channel.id,
                       "is_ephemeral": is_ephemeral}
    if thread_ts is not None:
        container["thread_ts"] = thread_ts
    payload: JSON = {
        "type": "block_actions", "user": _user(user), "api_app_id": APP_ID, "token": verification_token,
        "container": container, "trigger_id": trigger_id, "team": _team(), "enterprise": ENTERPRISE_ID,
        "is_enterprise_install": False, "channel": {"id": channel.id, "name": channel.payload_name},
        "state": {"values": state}, "response_url": response_url, "actions": actions,
    }
    if not is_ephemeral:
        payload["message"] = message
    return payload


def block_actions_view(*, verification_token: str, user: User, view: View, actions: list[JSON],
                       trigger_id: str) -> JSON:
    """A click inside a modal or the App Home (``container.type`` ``view``); no response_url there."""
    return {
        "type": "block_actions", "user": _user(user), "api_app_id": APP_ID, "token": verification_token,
        "container": {"type": "view", "view_id": view.id}, "trigger_id": trigger_id, "team": _team(),
        "enterprise": ENTERPRISE_ID, "is_enterprise_install": False, "view": view.to_slack(),
        "actions": actions,
    }


def view_submission(*, verification_token: str, user: User, view: View, trigger_id: str) -> JSON:
    return {
        "type": "view_submission", "team": _team(), "user": _user(user), "api_app_id": APP_ID,
        "token": verification_token, "trigger_id": trigger_id, "view": view.to_slack(), "response_urls": [],
        "is_enterprise_install": False, "enterprise": ENTERPRISE_ID,
    }


def view_closed(*, verification_token: str, user: User, view: View, is_cleared: bool) -> JSON:
    return {
        "type": "view_closed", "team": _team(), "user": _user(user), "api_app_id": APP_ID,
        "token": verification_token, "view": view.to_slack(), "is_cleared": is_cleared,
        "is_enterprise_install": False, "enterprise": ENTERPRISE_ID,
    }


def event_id() -> str:
    return "Ev" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(10))


def event_callback(*, verification_token: str, event: JSON, event_time: int) -> JSON:
    """The Events API wrapper (``type: event_callback``) around one event."""
    return {
        "token": verification_token, "team_id": TEAM_ID, "context_team_id": TEAM_ID,
        "context_enterprise_id": None, "api_app_id": APP_ID, "event": event, "type": "event_callback",
        "event_id": event_id(), "event_time": event_time,
        "authorizations": [{"enterprise_id": ENTERPRISE_ID, "team_id": TEAM_ID, "user_id": BOT_USER_ID,
                            "is_bot": True, "is_enterprise_install": False}],
        "is_ext_shared_channel": False, "event_context": "4-" + secrets.token_urlsafe(24),
    }


def app_home_opened(*, user: User, dm: Channel, home: View | None, event_ts: str) -> JSON:
    event: JSON = {"type": "app_home_opened", "user": user.id, "channel": dm.id, "tab": "home",
                   "event_ts": event_ts}
    if home is not None:
        event["view"] = home.to_slack()
    return event

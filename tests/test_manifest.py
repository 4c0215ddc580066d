"""manifest.yml obeys Slack's manifest rules and agrees with what the code registers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.ids import BOT_SCOPES, Command, Event
from bot.serve import SLACK_EVENTS_PATH
from handlers import COMMAND_ROUTES

MANIFEST = Path(__file__).resolve().parents[1] / "manifest.yml"
#: Exactly what the product needs (see the comments in manifest.yml); anything else is over-asking. The same
#: constant is what ``resetbot doctor`` expects the installed bot token to carry.
NEEDED_SCOPES = set(BOT_SCOPES)


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data = yaml.safe_load(MANIFEST.read_text())
    assert isinstance(data, dict)
    return data


def test_display_information_within_slack_limits(manifest: dict[str, Any]) -> None:
    info = manifest["display_information"]
    assert 0 < len(info["name"]) <= 35
    assert 0 < len(info["description"]) <= 140


def test_slash_commands_are_valid_and_match_the_code(manifest: dict[str, Any]) -> None:
    commands = manifest["features"]["slash_commands"]
    for c in commands:
        assert c["command"].startswith("/")
        assert c["command"] == c["command"].lower()
        assert len(c["command"]) <= 32
        assert c["description"]
        assert len(c["description"]) <= 2000
        assert isinstance(c["should_escape"], bool)
        assert c.get("usage_hint")
    declared = {c["command"] for c in commands}
    assert declared == {str(c) for c in Command}
    assert {str(c) for c in COMMAND_ROUTES} <= declared, "the app listens to a command Slack would never send"


def test_bot_user_home_tab_socket_mode_and_interactivity(manifest: dict[str, Any]) -> None:
    features, settings = manifest["features"], manifest["settings"]
    assert features["bot_user"]["display_name"]
    assert features["app_home"]["home_tab_enabled"] is True
    assert settings["socket_mode_enabled"] is True
    assert settings["interactivity"]["is_enabled"] is True
    assert set(settings["event_subscriptions"]["bot_events"]) == {str(e) for e in Event}


def test_exactly_the_scopes_the_product_needs(manifest: dict[str, Any]) -> None:
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == NEEDED_SCOPES


def test_the_http_mode_notes_name_the_path_the_bot_serves() -> None:
    notes = [line for line in MANIFEST.read_text().splitlines() if line.startswith("#")]
    assert any(f"https://<your host>{SLACK_EVENTS_PATH}" in line for line in notes)
    readme = (MANIFEST.parent / "README.md").read_text()
    assert f"https://<your host>{SLACK_EVENTS_PATH}" in readme

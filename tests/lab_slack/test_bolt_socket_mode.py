"""The real slack-bolt App on slack-sdk's built-in Socket Mode client, against the stand-in.

Each test acts as a person through the driver and asserts what that person would see.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from slack_bolt import Ack, App, BoltRequest, Respond
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient

from lab.slack import SlackDriver, SlackDriverError, SlackStandIn


class Seen:
    """What the bot's listeners saw, with a wait that needs no fixed sleep."""

    def __init__(self) -> None:
        self._items: list[tuple[str, Any]] = []
        self._cond = threading.Condition()

    def add(self, kind: str, item: Any) -> None:
        with self._cond:
            self._items.append((kind, item))
            self._cond.notify_all()

    def of(self, kind: str) -> list[Any]:
        with self._cond:
            return [item for k, item in self._items if k == kind]

    def wait(self, kind: str, predicate: Callable[[list[Any]], bool] = bool, timeout: float = 10.0) -> list[Any]:
        with self._cond:
            ok = self._cond.wait_for(lambda: predicate([i for k, i in self._items if k == kind]), timeout)
            assert ok, f"never saw {kind}: {self._items}"
            return [i for k, i in self._items if k == kind]

    def clear(self) -> None:
        with self._cond:
            self._items.clear()


REQUEST_BLOCKS: list[dict[str, Any]] = [
    {"type": "section", "block_id": "summary", "text": {"type": "mrkdwn", "text": "Password reset requested"}},
    {"type": "actions", "block_id": "decide", "elements": [
        {"type": "button", "action_id": "approve", "value": "req-1", "style": "primary",
         "text": {"type": "plain_text", "text": "Approve"}},
        {"type": "button", "action_id": "deny", "value": "req-1", "style": "danger",
         "text": {"type": "plain_text", "text": "Deny"}},
    ]},
]

MODAL: dict[str, Any] = {
    "type": "modal", "callback_id": "reset_form", "notify_on_close": True, "private_metadata": "req-1",
    "title": {"type": "plain_text", "text": "Reset a password"}, "submit": {"type": "plain_text", "text": "Send"},
    "blocks": [
        {"type": "input", "block_id": "reason_block", "label": {"type": "plain_text", "text": "Reason"},
         "element": {"type": "plain_text_input", "action_id": "reason"}},
        {"type": "input", "block_id": "who_block", "label": {"type": "plain_text", "text": "Who"},
         "element": {"type": "static_select", "action_id": "who", "options": [
             {"text": {"type": "plain_text", "text": "Alice"}, "value": "alice"},
             {"text": {"type": "plain_text", "text": "Bob"}, "value": "bob"}]}},
    ],
}


def connect(handler: SocketModeHandler) -> None:
    """Open the Socket Mode link in the background (bolt leaves these two methods unannotated)."""
    handler.connect()  # type: ignore[no-untyped-call]


def close(handler: SocketModeHandler) -> None:
    """Stop the client's threads and close its socket (slack-sdk waits for its reader's 3 s recv timeout)."""
    handler.close()  # type: ignore[no-untyped-call]


def build_app(client: WebClient, seen: Seen) -> App:
    app = App(client=client)

    @app.command("/reset")
    def reset(ack: Ack, command: dict[str, Any], client: WebClient) -> None:
        ack()
        seen.add("command", command)
        client.chat_postMessage(channel=command["channel_id"], text=f"Reset for <@{command['user_id']}>",
                                blocks=REQUEST_BLOCKS)

    @app.command("/ask")
    def ask(ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        ack(text="Working on it")
        seen.add("command", command)
        respond(text="Done, in the channel", response_type="in_channel")

    @app.action("approve")
    def approve(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        seen.add("action", body)
        client.chat_update(channel=body["channel"]["id"], ts=body["container"]["message_ts"],
                           text=f"Approved by <@{body['user']['id']}>", blocks=[])

    @app.command("/modal")
    def modal(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        client.views_open(trigger_id=body["trigger_id"], view=MODAL)

    @app.view("reset_form")
    def submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        values = view["state"]["values"]
        reason = values["reason_block"]["reason"]["value"]
        if len(reason) < 5:
            ack(response_action="errors", errors={"reason_block": "Tell us a bit more"})
            return
        ack()
        who = values["who_block"]["who"]["selected_option"]["value"]
        seen.add("submission", view)
        client.chat_postMessage(channel=body["user"]["id"], text=f"Submitted: {reason} for {who}")

    @app.view_closed("reset_form")
    def closed(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        seen.add("closed", body)

    @app.event("app_home_opened")
    def home(event: dict[str, Any], client: WebClient, request: BoltRequest) -> None:
        seen.add("home", {"event": event, "retry": request.headers.get("x-slack-retry-num", ["0"])[0]})
        client.views_publish(user_id=event["user"], view={"type": "home", "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"Hello <@{event['user']}>"}}]})

    @app.command("/eph")
    def eph(ack: Ack, command: dict[str, Any], client: WebClient) -> None:
        ack()
        client.chat_postEphemeral(channel=command["channel_id"], user=command["user_id"], text="Only you",
                                  blocks=[{"type": "actions", "elements": [
                                      {"type": "button", "action_id": "dismiss",
                                       "text": {"type": "plain_text", "text": "Dismiss"}}]}])

    @app.action("dismiss")
    def dismiss(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        seen.add("dismiss", body)
        respond(text="Dismissed", replace_original=True)

    @app.command("/wizard")
    def wizard(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        client.views_open(trigger_id=body["trigger_id"], view=STEP_ONE)

    @app.action("more")
    def more(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        seen.add("more", body)
        client.views_push(trigger_id=body["trigger_id"], view=STEP_TWO)

    @app.view("step_two")
    def step_two(ack: Ack) -> None:
        ack(response_action="update", view={**STEP_TWO, "callback_id": "step_two_done",
                                            "title": {"type": "plain_text", "text": "Almost"}})

    @app.view("step_two_done")
    def step_two_done(ack: Ack) -> None:
        ack(response_action="clear")

    return app


STEP_ONE: dict[str, Any] = {
    "type": "modal", "callback_id": "step_one", "title": {"type": "plain_text", "text": "Step one"},
    "blocks": [{"type": "actions", "block_id": "nav", "elements": [
        {"type": "button", "action_id": "more", "text": {"type": "plain_text", "text": "More"}}]}],
}
STEP_TWO: dict[str, Any] = {
    "type": "modal", "callback_id": "step_two", "title": {"type": "plain_text", "text": "Step two"},
    "submit": {"type": "plain_text", "text": "Next"},
    "blocks": [{"type": "input", "block_id": "note", "label": {"type": "plain_text", "text": "Note"},
                "element": {"type": "plain_text_input", "action_id": "text"}}],
}


@pytest.fixture(scope="module")
def seen() -> Seen:
    return Seen()


@pytest.fixture(scope="module")
def bot(stand_in: SlackStandIn, seen: Seen) -> Iterator[App]:
    desc = stand_in.descriptor()
    client = WebClient(token=desc["bot_token"], base_url=desc["api_base"])
    app = build_app(client, seen)
    handler = SocketModeHandler(app, desc["app_token"], web_client=client)
    connect(handler)
    try:
        yield app
    finally:
        close(handler)


@pytest.fixture(autouse=True)
def _connected(bot: App, driver: SlackDriver, seen: Seen) -> None:
    driver.wait_connected()
    seen.clear()


def test_slash_command_is_acked_and_the_reply_shows(driver: SlackDriver, seen: Seen) -> None:
    ack = driver.command("alice", "/reset", "my password", channel="helpdesk")
    assert ack["acked"] is True
    assert ack["ack_ms"] is not None
    assert ack["ack_ms"] < 3000
    msg = driver.wait_for_message("helpdesk", lambda m: m["text"] == "Reset for <@U00ALICE>")
    assert msg["bot_id"] == "B0RESETBOT"
    (command,) = seen.of("command")
    assert command["text"] == "my password"
    assert command["channel_name"] == "helpdesk"
    assert command["user_name"] == "alice"
    assert command["response_url"].startswith("http://127.0.0.1:")


def test_command_text_arrives_as_slack_sends_it(driver: SlackDriver, seen: Seen) -> None:
    """What a person types reaches the app in Slack's wire form: ``&``, ``<``, ``>`` always escaped and, for a
    command with ``should_escape`` (``/reset`` in manifest.yml), mentions, channels, links and addresses in their
    ``<…>`` forms; a command without it (``/ask`` is not in the manifest) gets them as typed."""
    typed = ("@bob @channel a & <b> see https://x.example/a?b=1&c=2 and [Click](https://evil.example) "
             "mail bob@corp.example.test in #security <@U00ALICE|alice> @nobody-here <!here>")
    driver.command("hank", "/reset", typed, channel="helpdesk")
    driver.command("hank", "/ask", typed, channel="helpdesk")
    reset, ask = (c["text"] for c in seen.wait("command", lambda cs: len(cs) == 2))
    assert reset == (
        "<@U0000BOB|bob> <!channel> a &amp; &lt;b&gt; see <https://x.example/a?b=1&amp;c=2> and "
        "<https://evil.example|Click> mail <mailto:bob@corp.example.test|bob@corp.example.test> in "
        "<#C0SECURITY|security> <@U00ALICE|alice> @nobody-here &lt;!here&gt;")
    assert ask == (
        "@bob @channel a &amp; &lt;b&gt; see https://x.example/a?b=1&amp;c=2 and Click mail "
        "bob@corp.example.test in #security @alice @nobody-here &lt;!here&gt;")


def test_button_click_round_trip(driver: SlackDriver, seen: Seen) -> None:
    driver.command("alice", "/reset", channel="helpdesk")
    request = driver.wait_for_message("helpdesk", lambda m: bool(m["blocks"]))
    ack = driver.click("ivan", "helpdesk", request["ts"], "approve")
    assert ack["acked"] is True
    done = driver.wait_for_message("helpdesk", lambda m: m["text"].startswith("Approved"))
    assert done["ts"] == request["ts"]
    assert done["edited"] is not None
    assert done["text"] == "Approved by <@U000IVAN>"
    (body,) = seen.of("action")
    assert body["actions"][0] == {**body["actions"][0], "action_id": "approve", "block_id": "decide",
                                  "value": "req-1", "type": "button"}
    assert body["container"] == {"type": "message", "message_ts": request["ts"], "channel_id": "C0HELPDESK",
                                 "is_ephemeral": False}
    assert body["message"]["blocks"][1]["elements"][0]["action_id"] == "approve"


def test_modal_errors_then_submission(driver: SlackDriver, seen: Seen) -> None:
    driver.command("hank", "/modal")
    view = driver.wait_for_view("hank")
    assert view["callback_id"] == "reset_form"
    too_short = driver.submit("hank", view["id"], {"reason": "pw", "who": "alice"})
    assert too_short["acked"] is True
    assert too_short["view_open"] is True
    assert too_short["errors"] == {"reason_block": "Tell us a bit more"}
    done = driver.submit("hank", view["id"], {"reason": "forgot it", "who": "alice"})
    assert done["view_open"] is False
    dm = driver.dm_channel("hank")
    driver.wait_for_message(dm, lambda m: m["text"] == "Submitted: forgot it for alice")
    (submitted,) = seen.of("submission")
    assert submitted["private_metadata"] == "req-1"
    assert submitted["state"]["values"]["who_block"]["who"]["selected_option"]["value"] == "alice"


def test_closing_a_modal_notifies_the_app(driver: SlackDriver, seen: Seen) -> None:
    driver.command("hedy", "/modal")
    view = driver.wait_for_view("hedy")
    closed = driver.close("hedy", view["id"])
    assert closed["acked"] is True
    (body,) = seen.wait("closed")
    assert body["view"]["id"] == view["id"]
    assert driver.views("hedy")[-1]["open"] is False


def test_app_home_opened_publishes_the_home_view(driver: SlackDriver) -> None:
    ack = driver.open_home("alice")
    assert ack["acked"] is True
    home = driver.wait_for_home_view("alice")
    assert home["blocks"][0]["text"]["text"] == "Hello <@U00ALICE>"


def test_ack_text_and_respond(driver: SlackDriver) -> None:
    driver.command("bob", "/ask", channel="ops")
    eph = driver.wait_for_ephemeral("bob", lambda e: e["text"] == "Working on it")
    assert eph["channel"] == "C000000OPS"
    assert eph["source"] == "ack"
    driver.wait_for_message("ops", lambda m: m["text"] == "Done, in the channel")


def test_unacked_envelopes_are_redelivered(driver: SlackDriver, seen: Seen) -> None:
    driver.faults(drop_acks=True, ack_timeout_s=0.3)
    first = driver.open_home("nora")
    assert first["acked"] is False
    retries = seen.wait("home", lambda items: any(i["retry"] == "1" for i in items))
    assert retries[0]["retry"] == "0"
    driver.faults(drop_acks=False)
    acked = driver.wait_for(lambda: next((e for e in driver.envelopes("events_api") if e["acked"]), None))
    assert acked["retry_attempt"] >= 1
    assert acked["retry_reason"] == "timeout"
    attempts = driver.envelopes("events_api")
    assert attempts[0]["retry_attempt"] == 0
    assert attempts[0]["dropped_acks"] == 1
    assert attempts[1]["retry_attempt"] == 1
    assert attempts[0]["payload"]["event_id"] == attempts[1]["payload"]["event_id"]


def test_disconnect_makes_the_client_reconnect(driver: SlackDriver) -> None:
    (before,) = driver.wait_connected()
    assert driver.disconnect() == 1
    (told,) = [c for c in driver.connections() if c["id"] == before["id"]]
    assert told["draining"] is True
    # slack-sdk opens the new link at once but reads it only after closing the old one (its reader's
    # 3 s recv timeout), so wait until the old link is gone before acting.
    driver.wait_for(lambda: [c["id"] for c in driver.connections()] not in ([], [before["id"]])
                    and before["id"] not in [c["id"] for c in driver.connections()])
    ack = driver.command("alice", "/reset", channel="security")
    assert ack["acked"] is True
    driver.wait_for_message("security", lambda m: m["text"] == "Reset for <@U00ALICE>")


def test_envelopes_are_spread_over_connections(stand_in: SlackStandIn, bot: App, driver: SlackDriver) -> None:
    desc = stand_in.descriptor()
    second = SocketModeHandler(bot, desc["app_token"],
                               web_client=WebClient(token=desc["bot_token"], base_url=desc["api_base"]))
    connect(second)
    try:
        driver.wait_connected(2)
        for _ in range(4):
            assert driver.command("alice", "/reset", channel="ops")["acked"] is True
        used = {e["connection_id"] for e in driver.envelopes("slash_commands")}
        assert len(used) == 2
    finally:
        close(second)
    driver.wait_for(lambda: len(driver.connections()) == 1)


def test_ephemeral_button_and_respond_replace(driver: SlackDriver, seen: Seen) -> None:
    driver.command("bob", "/eph", channel="helpdesk")
    eph = driver.wait_for_ephemeral("bob", lambda e: e["text"] == "Only you")
    assert driver.click("bob", "helpdesk", eph["ts"], "dismiss")["acked"] is True
    driver.wait_for_ephemeral("bob", lambda e: e["ts"] == eph["ts"] and e["text"] == "Dismissed")
    (body,) = seen.of("dismiss")
    assert body["container"]["is_ephemeral"] is True
    assert "message" not in body
    with pytest.raises(SlackDriverError, match="404"):
        driver.click("alice", "helpdesk", eph["ts"], "dismiss")  # not alice's to click


def test_modal_button_push_update_and_clear(driver: SlackDriver, seen: Seen) -> None:
    driver.command("gina", "/wizard")
    first = driver.wait_for_view("gina", lambda v: v["open"] and v["callback_id"] == "step_one")
    assert driver.click_view("gina", first["id"], "more")["acked"] is True
    second = driver.wait_for_view("gina", lambda v: v["open"] and v["callback_id"] == "step_two")
    assert second["previous_view_id"] == first["id"]
    assert second["root_view_id"] == first["id"]
    (clicked,) = seen.of("more")
    assert clicked["container"] == {"type": "view", "view_id": first["id"]}
    with pytest.raises(SlackDriverError, match="422"):
        driver.submit("gina", second["id"])  # the note is required
    updated = driver.submit("gina", second["id"], {"text": "hello"})
    assert updated["view_open"] is True
    (now,) = [v for v in driver.views("gina") if v["id"] == second["id"]]
    assert now["callback_id"] == "step_two_done"
    assert now["state"]["values"]["note"]["text"]["value"] == "hello"  # kept across the update
    assert driver.submit("gina", second["id"])["view_open"] is False
    assert not [v for v in driver.views("gina") if v["open"]]

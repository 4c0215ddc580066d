"""The Web API through slack-sdk's own WebClient: Slack's shapes, errors, rate limits and faults."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from lab.people import PEOPLE
from lab.slack import SlackDriver, SlackDriverError, SlackStandIn

MODAL: dict[str, Any] = {
    "type": "modal", "callback_id": "form", "title": {"type": "plain_text", "text": "Reset"},
    "submit": {"type": "plain_text", "text": "Send"},
    "blocks": [{"type": "input", "block_id": "why", "label": {"type": "plain_text", "text": "Why?"},
                "element": {"type": "plain_text_input", "action_id": "reason"}}],
}


@pytest.fixture(scope="module")
def desc(stand_in: SlackStandIn) -> dict[str, Any]:
    return stand_in.descriptor()


@pytest.fixture(scope="module")
def client(desc: dict[str, Any]) -> WebClient:
    return WebClient(token=desc["bot_token"], base_url=desc["api_base"])


def error_of(call: Any) -> tuple[int, str]:
    """Run ``call`` expecting SlackApiError; return (HTTP status, error code)."""
    with pytest.raises(SlackApiError) as info:
        call()
    return info.value.response.status_code, info.value.response["error"]


def trigger_for(driver: SlackDriver, user: str = "alice") -> str:
    """A fresh trigger_id: the command is not delivered (no app connected) but its trigger is issued."""
    ack = driver.command(user, "/reset")
    assert ack["error"] == "dispatch_failed"
    return ack["trigger_id"]


def test_descriptor_is_the_lab_md_slack_section(stand_in: SlackStandIn, desc: dict[str, Any]) -> None:
    assert set(desc) == {"api_base", "bot_token", "app_token", "signing_secret", "team_id", "bot_user_id",
                         "channels", "control"}
    assert desc["api_base"].endswith("/api/")
    assert desc["bot_token"].startswith("xoxb-")
    assert desc["app_token"].startswith("xapp-")
    assert set(desc["channels"]) == {"helpdesk", "security", "ops"}
    ids = stand_in.slack_ids()
    assert ids["alice"] == "U00ALICE"
    assert "canary" not in ids  # slack=False in the fixture
    assert set(ids) == {p.key for p in PEOPLE if p.slack}


def test_auth_test_describes_the_bot(client: WebClient, desc: dict[str, Any]) -> None:
    resp = client.auth_test()
    assert resp["user_id"] == desc["bot_user_id"]
    assert resp["team_id"] == desc["team_id"]
    assert resp["bot_id"].startswith("B")


def test_tokens_are_checked(desc: dict[str, Any]) -> None:
    base = desc["api_base"]
    assert error_of(lambda: WebClient(token="xoxb-wrong", base_url=base).auth_test()) == (200, "invalid_auth")
    assert error_of(lambda: WebClient(base_url=base).auth_test()) == (200, "not_authed")
    app_client = WebClient(token=desc["app_token"], base_url=base)
    assert error_of(app_client.auth_test) == (200, "not_allowed_token_type")
    bot_client = WebClient(token=desc["bot_token"], base_url=base)
    assert error_of(lambda: bot_client.apps_connections_open(app_token=desc["bot_token"])) == (
        200, "not_allowed_token_type")
    url = bot_client.apps_connections_open(app_token=desc["app_token"])["url"]
    assert url.startswith("ws://127.0.0.1:")
    assert "/link/?ticket=" in url


def test_unknown_method(client: WebClient) -> None:
    assert error_of(lambda: client.api_call("chat.fooBar")) == (404, "unknown_method")


def test_users(client: WebClient) -> None:
    alice = client.users_lookupByEmail(email="Alice@corp.example.test")["user"]
    assert alice["id"] == "U00ALICE"
    assert alice["profile"]["email"] == "alice@corp.example.test"
    assert alice["real_name"] == "Alice Archer"
    assert alice["name"] == "alice"
    assert client.users_info(user="U00ALICE")["user"]["profile"]["real_name"] == "Alice Archer"
    assert error_of(lambda: client.users_lookupByEmail(email="nobody@corp.example.test"))[1] == "users_not_found"
    assert error_of(lambda: client.users_lookupByEmail(email="canary@corp.example.test"))[1] == "users_not_found"
    assert error_of(lambda: client.users_info(user="U0NOBODY"))[1] == "user_not_found"


def test_usergroups(client: WebClient) -> None:
    groups = {g["handle"]: g for g in client.usergroups_list(include_users=True)["usergroups"]}
    assert set(groups) == {"helpdesk", "approvers"}
    assert sorted(groups["helpdesk"]["users"]) == ["U000HANK", "U000HEDY"]
    members = client.usergroups_users_list(usergroup=groups["approvers"]["id"])["users"]
    assert sorted(members) == ["U0000ZOE", "U000GINA", "U000IVAN"]
    assert error_of(lambda: client.usergroups_users_list(usergroup="S0NOPE"))[1] == "no_such_subteam"


def test_post_message_and_transcript(client: WebClient, driver: SlackDriver, desc: dict[str, Any]) -> None:
    helpdesk = desc["channels"]["helpdesk"]
    resp = client.chat_postMessage(channel=helpdesk, text="Reset request",
                                   blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "*Reset*"}}])
    assert resp["channel"] == helpdesk
    assert resp["message"]["bot_id"] == "B0RESETBOT"
    assert resp["message"]["blocks"][0]["block_id"]  # Slack fills in missing block ids
    reply = client.chat_postMessage(channel=helpdesk, text="in thread", thread_ts=resp["ts"])
    assert float(reply["ts"]) > float(resp["ts"])
    thread = driver.messages(helpdesk, thread_ts=resp["ts"])
    assert [m["text"] for m in thread] == ["Reset request", "in thread"]
    assert thread[0]["thread_ts"] == resp["ts"]
    history = client.conversations_history(channel=helpdesk)["messages"]
    assert [m["text"] for m in history] == ["Reset request"]
    assert history[0]["reply_count"] == 1
    replies = client.conversations_replies(channel=helpdesk, ts=resp["ts"])["messages"]
    assert [m["ts"] for m in replies] == [resp["ts"], reply["ts"]]
    assert error_of(lambda: client.conversations_replies(channel=helpdesk, ts="1.000001"))[1] == "thread_not_found"


def test_post_message_to_a_user_lands_in_their_dm(client: WebClient, driver: SlackDriver) -> None:
    resp = client.chat_postMessage(channel="U0000BOB", text="psst")
    dm = driver.dm_channel("bob")
    assert resp["channel"] == dm
    assert dm.startswith("D")
    assert [m["text"] for m in driver.messages(dm)] == ["psst"]
    opened = client.conversations_open(users="U0000BOB")
    assert opened["channel"]["id"] == dm
    assert client.conversations_info(channel=dm)["channel"]["is_im"] is True


def test_post_message_errors(client: WebClient, desc: dict[str, Any]) -> None:
    helpdesk = desc["channels"]["helpdesk"]
    assert error_of(lambda: client.chat_postMessage(channel="C0NOWHERE", text="x"))[1] == "channel_not_found"
    with pytest.warns(UserWarning, match="text"):  # slack-sdk warns before sending
        assert error_of(lambda: client.chat_postMessage(channel=helpdesk))[1] == "no_text"
    too_long = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    with pytest.raises(SlackApiError) as info:
        client.chat_postMessage(channel=helpdesk, text="x", blocks=too_long)
    assert info.value.response["error"] == "invalid_blocks"
    assert "json-pointer:/blocks/0/text/text" in info.value.response["errors"][0]
    twice = [{"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": t}, "action_id": "same", "value": t}
        for t in ("a", "b")]}]
    with pytest.raises(SlackApiError) as info:  # Slack: an action_id is unique within its block
        client.chat_postMessage(channel=helpdesk, text="x", blocks=twice)
    assert info.value.response["error"] == "invalid_blocks"
    assert "duplicate action_id: same" in info.value.response["errors"][0]


def test_update_message(client: WebClient, driver: SlackDriver, stand_in: SlackStandIn,
                        desc: dict[str, Any]) -> None:
    ops = desc["channels"]["ops"]
    ts = client.chat_postMessage(channel=ops, text="pending")["ts"]
    updated = client.chat_update(channel=ops, ts=ts, text="done")
    assert updated["text"] == "done"
    (msg,) = driver.messages(ops)
    assert msg["text"] == "done"
    assert msg["edited"] is not None
    assert error_of(lambda: client.chat_update(channel=ops, ts="1700000000.000001", text="x"))[1] == (
        "message_not_found")
    # A person's message: the app may not edit it.
    ws = stand_in.workspace
    theirs = ws.post_message(ws.channel(ops), text="mine", blocks=[], user="U00ALICE", bot_id=None)
    assert error_of(lambda: client.chat_update(channel=ops, ts=theirs.ts, text="x"))[1] == "cant_update_message"


def test_get_permalink(client: WebClient, desc: dict[str, Any]) -> None:
    helpdesk = desc["channels"]["helpdesk"]
    ts = client.chat_postMessage(channel=helpdesk, text="a request")["ts"]
    link = client.chat_getPermalink(channel=helpdesk, message_ts=ts)
    assert link["permalink"] == f"https://resetbot-lab.slack.com/archives/{helpdesk}/p{ts.replace('.', '')}"
    reply = client.chat_postMessage(channel=helpdesk, text="in the thread", thread_ts=ts)["ts"]
    assert client.chat_getPermalink(channel=helpdesk, message_ts=reply)["permalink"].endswith(
        f"/p{reply.replace('.', '')}?thread_ts={ts}&cid={helpdesk}")
    assert error_of(lambda: client.chat_getPermalink(channel=helpdesk, message_ts="1700000000.000001"))[1] == (
        "message_not_found")
    assert error_of(lambda: client.chat_getPermalink(channel="C0NOWHERE", message_ts=ts))[1] == "channel_not_found"


def test_post_ephemeral(client: WebClient, driver: SlackDriver, desc: dict[str, Any]) -> None:
    helpdesk = desc["channels"]["helpdesk"]
    resp = client.chat_postEphemeral(channel=helpdesk, user="U000HANK", text="only you")
    (eph,) = driver.ephemeral("hank")
    assert eph["ts"] == resp["message_ts"]
    assert eph["text"] == "only you"
    assert driver.messages(helpdesk) == []
    bob_dm = driver.dm_channel("bob")
    assert error_of(lambda: client.chat_postEphemeral(channel=bob_dm, user="U000HANK", text="x"))[1] == (
        "user_not_in_channel")


def test_trigger_ids_are_single_use_and_expire(client: WebClient, driver: SlackDriver) -> None:
    trigger = trigger_for(driver)
    view = client.views_open(trigger_id=trigger, view=MODAL)["view"]
    assert view["id"].startswith("V")
    assert view["state"]["values"] == {"why": {"reason": {"type": "plain_text_input", "value": None}}}
    assert error_of(lambda: client.views_open(trigger_id=trigger, view=MODAL))[1] == "exchanged_trigger_id"
    assert error_of(lambda: client.views_open(trigger_id="123.456.abc", view=MODAL))[1] == "invalid_arguments"
    driver.faults(trigger_ttl_s=0)
    stale = trigger_for(driver)
    assert error_of(lambda: client.views_open(trigger_id=stale, view=MODAL))[1] == "expired_trigger_id"
    (opened,) = driver.views("alice")
    assert opened["open"] is True


def test_views_are_validated_and_updated(client: WebClient, driver: SlackDriver) -> None:
    long_title = {**MODAL, "title": {"type": "plain_text", "text": "x" * 25}}
    with pytest.raises(SlackApiError) as info:
        client.views_open(trigger_id=trigger_for(driver), view=long_title)
    assert info.value.response["error"] == "invalid_arguments"
    assert "/view/title/text" in info.value.response["response_metadata"]["messages"][0]
    view = client.views_open(trigger_id=trigger_for(driver), view=MODAL)["view"]
    updated = client.views_update(view_id=view["id"], hash=view["hash"],
                                  view={**MODAL, "title": {"type": "plain_text", "text": "Step 2"}})["view"]
    assert updated["id"] == view["id"]
    assert updated["hash"] != view["hash"]
    assert error_of(lambda: client.views_update(view_id=view["id"], hash=view["hash"], view=MODAL))[1] == (
        "hash_conflict")
    assert error_of(lambda: client.views_update(view_id="V0NOPE", view=MODAL))[1] == "not_found"


def test_views_publish(client: WebClient, driver: SlackDriver) -> None:
    home = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Hi"}}]}
    first = client.views_publish(user_id="U000NORA", view=home)["view"]
    again = client.views_publish(user_id="U000NORA", view=home)["view"]
    assert first["id"] == again["id"]
    published = driver.home_view("nora")
    assert published is not None
    assert published["blocks"][0]["text"]["text"] == "Hi"
    assert error_of(lambda: client.views_publish(user_id="U000NORA", view=MODAL))[1] == "invalid_arguments"


def test_views_publish_holds_slacks_limits_exactly(client: WebClient, driver: SlackDriver) -> None:
    """A Home tab takes 100 blocks and a section 3,000 characters (docs.slack.dev: Home tab views, section block);
    one more of either and Slack refuses the whole view with ``invalid_arguments``, naming where."""
    def section(text: str) -> dict[str, Any]:
        return {"type": "section", "text": {"type": "mrkdwn", "text": text}}

    client.views_publish(user_id="U000NORA", view={"type": "home", "blocks": [section("x" * 3000)]})
    client.views_publish(user_id="U000NORA", view={"type": "home", "blocks": [section("y")] * 100})
    assert len((driver.home_view("nora") or {})["blocks"]) == 100
    with pytest.raises(SlackApiError) as too_long:
        client.views_publish(user_id="U000NORA", view={"type": "home", "blocks": [section("z" * 3001)]})
    assert too_long.value.response["error"] == "invalid_arguments"
    assert "json-pointer:/view/blocks/0/text/text" in str(too_long.value.response["response_metadata"])
    with pytest.raises(SlackApiError) as too_many:
        client.views_publish(user_id="U000NORA", view={"type": "home", "blocks": [section("z")] * 101})
    assert too_many.value.response["error"] == "invalid_arguments"
    assert "json-pointer:/view/blocks" in str(too_many.value.response["response_metadata"])
    assert (driver.home_view("nora") or {})["blocks"][0]["text"]["text"] == "y", "a refused view changes nothing"


def test_rate_limit_fault_and_sdk_retry(desc: dict[str, Any], driver: SlackDriver) -> None:
    driver.faults(rate_limit=True)
    channel = desc["channels"]["security"]
    plain = WebClient(token=desc["bot_token"], base_url=desc["api_base"])
    for i in range(3):  # the burst
        plain.chat_postMessage(channel=channel, text=f"burst {i}")
    with pytest.raises(SlackApiError) as info:
        plain.chat_postMessage(channel=channel, text="one too many")
    assert info.value.response.status_code == 429
    assert info.value.response["error"] == "ratelimited"
    assert int(info.value.response.headers["Retry-After"]) >= 1
    patient = WebClient(token=desc["bot_token"], base_url=desc["api_base"],
                        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)])
    assert patient.chat_postMessage(channel=channel, text="after waiting")["ok"]
    statuses = [c["status"] for c in driver.calls("chat.postMessage")]
    assert statuses.count(429) >= 2
    assert statuses[-1] == 200


def test_fail_next(client: WebClient, driver: SlackDriver) -> None:
    driver.faults(fail_next={"method": "users.info", "status": 500, "error": "fatal_error", "count": 2})
    assert error_of(lambda: client.users_info(user="U00ALICE")) == (500, "fatal_error")
    assert error_of(lambda: client.users_info(user="U00ALICE")) == (500, "fatal_error")
    assert client.users_info(user="U00ALICE")["ok"]
    assert client.auth_test()["ok"]  # other methods were never affected


def test_an_empty_list_clears_the_planned_failures(client: WebClient, driver: SlackDriver) -> None:
    driver.faults(fail_next={"method": "users.info", "status": 500, "error": "fatal_error", "count": 5})
    assert error_of(lambda: client.users_info(user="U00ALICE")) == (500, "fatal_error")
    assert driver.faults(fail_next=[])["fail_next"] == []
    assert client.users_info(user="U00ALICE")["ok"], "nothing is left of the plan"
    driver.faults(fail_next=[{"method": "auth.test", "status": 500, "error": "fatal_error"}])
    assert [r["method"] for r in driver.faults()["fail_next"]] == ["auth.test"]
    assert error_of(client.auth_test) == (500, "fatal_error")


def test_a_method_taken_down_answers_503_until_it_is_back(client: WebClient, driver: SlackDriver) -> None:
    driver.faults(down=["chat.postMessage"])
    for _ in range(3):
        assert error_of(lambda: client.chat_postMessage(channel="C0HELPDESK", text="lost?")) == (
            503, "service_unavailable")
    assert client.users_info(user="U00ALICE")["ok"], "only the listed method is down"
    assert not driver.messages("C0HELPDESK"), "nothing was posted while it was down"
    assert driver.faults(down=[])["down"] == []
    assert client.chat_postMessage(channel="C0HELPDESK", text="back")["ok"]
    assert [c["status"] for c in driver.calls("chat.postMessage")] == [503, 503, 503, 200]
    driver.faults(down=["*"])
    assert error_of(client.auth_test) == (503, "service_unavailable")
    driver.reset()
    assert client.auth_test()["ok"], "a reset brings Slack back"


def test_calls_are_logged_without_tokens(client: WebClient, driver: SlackDriver) -> None:
    client.users_info(user="U000IVAN")
    (call,) = driver.calls("users.info")
    assert call["args"]["user"] == "U000IVAN"
    assert "token" not in call["args"]
    assert call["ok"] is True
    assert call["time"] <= time.time()


def test_form_get_and_token_param(desc: dict[str, Any]) -> None:
    """The other ways Slack accepts arguments: GET query, form POST with a ``token`` field."""
    base = desc["api_base"]
    got = httpx.get(f"{base}users.info", params={"user": "U00ALICE"},
                    headers={"Authorization": f"Bearer {desc['bot_token']}"}).json()
    assert got["user"]["id"] == "U00ALICE"
    form = httpx.post(f"{base}users.lookupByEmail", data={"token": desc["bot_token"],
                                                          "email": "bob@corp.example.test"}).json()
    assert form["user"]["id"] == "U0000BOB"
    blocks = '[{"type": "divider"}]'
    posted = httpx.post(f"{base}chat.postMessage", data={"token": desc["bot_token"], "channel": "ops",
                                                         "text": "form", "blocks": blocks}).json()
    assert posted["ok"]
    assert posted["channel"] == desc["channels"]["ops"]


def test_async_client(desc: dict[str, Any]) -> None:
    async def run() -> str:
        client = AsyncWebClient(token=desc["bot_token"], base_url=desc["api_base"])
        resp = await client.users_lookupByEmail(email="gina@corp.example.test")
        return str(resp["user"]["id"])

    assert asyncio.run(run()) == "U000GINA"


def test_no_app_connected_is_dispatch_failed(driver: SlackDriver) -> None:
    ack = driver.command("alice", "reset", "please")
    assert ack["acked"] is False
    assert ack["error"] == "dispatch_failed"
    notice = driver.wait_for_ephemeral("alice", lambda e: "dispatch_failed" in e["text"])
    assert notice["sender"] == "USLACKBOT"
    assert notice["text"] == '/reset failed with the error "dispatch_failed"'


def test_stop_leaves_no_thread() -> None:
    before = {t for t in threading.enumerate() if t.name == "lab-slack"}
    server = SlackStandIn()
    server.start()
    assert server.running
    assert len({t for t in threading.enumerate() if t.name == "lab-slack"} - before) == 1
    server.stop()
    assert not server.running
    assert {t for t in threading.enumerate() if t.name == "lab-slack"} == before


def test_people_change_user_groups_as_the_workspace_allows(client: WebClient, driver: SlackDriver) -> None:
    """What an app never sees happen: a member takes the @helpdesk handle for a group of their own (allowed by
    Slack's default setting), an admin-only workspace refuses it, and the changes show in the group's fields."""
    listed = {g["handle"]: g for g in client.usergroups_list()["usergroups"]}
    assert listed["helpdesk"]["created_by"] == "U000IVAN" and client.users_info(user="U000IVAN")["user"]["is_admin"]
    assert not client.users_info(user="U00ALICE")["user"]["is_admin"]
    driver.faults(usergroup_editors="admins")
    with pytest.raises(SlackDriverError, match="permission_denied"):
        driver.usergroup("alice", "update", usergroup="S00HELPDESK", users=["alice"])
    driver.faults(usergroup_editors="everyone")
    with pytest.raises(SlackDriverError, match="name_already_exists"):
        driver.usergroup("alice", "create", handle="helpdesk")
    old = driver.usergroup("alice", "update", usergroup="S00HELPDESK", handle="helpdesk-old")
    assert old["updated_by"] == "U00ALICE" and old["handle"] == "helpdesk-old"
    taken = driver.usergroup("alice", "create", handle="helpdesk", name="Service desk", users=["alice"])
    assert taken["id"] != "S00HELPDESK" and taken["users"] == ["U00ALICE"]
    driver.usergroup("alice", "disable", usergroup="S0APPROVERS")
    handles = {g["handle"]: g["id"] for g in client.usergroups_list()["usergroups"]}
    assert handles == {"helpdesk-old": "S00HELPDESK", "helpdesk": taken["id"]}
    assert "approvers" in {g["handle"] for g in client.usergroups_list(include_disabled=True)["usergroups"]}
    driver.reset()
    assert {g["handle"]: g["id"] for g in client.usergroups_list()["usergroups"]} == {
        "helpdesk": "S00HELPDESK", "approvers": "S0APPROVERS"}

"""Whose hands: agents link their own Entra account by device code, in Slack, against the lab's Entra.

Each device-code sign-in costs about one polling interval (5 s in the lab), so hank signs in once for the whole
module (``hank``), and the tests that need a sign-in of their own are few. Tests run in file order: the one that
logs hank out comes last.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from bot.errors import NotLinkedError
from bot.logs import RedactingFilter
from bot.models import SERVICE_LINK_KEY, AgentLink
from bot.services.links import LinkService
from bot.settings import ResetIdentity
from lab.people import person
from lab.slack.driver import Message, SlackDriver
from lab.stack import Lab
from tests.clients.graphlab import EntraControl
from tests.scenarios.harness import RunningBot

CODE_RE = re.compile(r"enter the code \*([A-Z0-9]+)\*")
#: A sign-in completes at the bot's next poll: up to one lab interval (5 s) after the approval, plus slack.
SIGN_IN_S = 20.0


def slack_id(lab: Lab, key: str) -> str:
    return str(next(p["slack_id"] for p in lab.descriptor["people"] if p["key"] == key))


def claims(jwt: str) -> dict[str, Any]:
    body = jwt.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


@pytest.fixture(scope="module")
def entra(lab: Lab) -> EntraControl:
    return EntraControl(lab)


def start_login(lab: Lab, driver: SlackDriver, key: str, args: str = "") -> tuple[str, Message]:
    """``key`` types ``/resetbot login [args]`` in #helpdesk; returns the sign-in code from their DM, and the DM."""
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    ack = driver.command(key, "/resetbot", f"login {args}".strip(), channel=helpdesk)
    assert ack["acked"]
    driver.wait_for_ephemeral(key, lambda e: "sign-in code in a DM" in e["text"])
    dm = driver.wait_for_message(driver.dm_channel(key), lambda m: CODE_RE.search(m["text"]) is not None)
    match = CODE_RE.search(dm["text"])
    assert match
    return match.group(1), dm


def dm_after(driver: SlackDriver, key: str, prefix: str) -> Message:
    return driver.wait_for_message(driver.dm_channel(key), lambda m: m["text"].startswith(prefix), timeout=SIGN_IN_S)


def link_row(bot: RunningBot, slack_user: str) -> AgentLink | None:
    with bot.session() as session:
        return session.get(AgentLink, slack_user)


@pytest.fixture(scope="module")
def hank(lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl) -> dict[str, Any]:
    """hank (helpdesk, Helpdesk Administrator) links his account once: what he saw, as he saw it."""
    driver.reset()
    code, code_dm = start_login(lab, driver, "hank")
    ephemeral = driver.ephemeral("hank")
    channel_text = [m["text"] for m in driver.messages(lab.descriptor["slack"]["channels"]["helpdesk"])]
    entra.approve(code, "hank")
    linked = dm_after(driver, "hank", "Your Entra account is linked as")
    return {"code": code, "code_dm": code_dm, "ephemeral": ephemeral, "channel": channel_text, "linked": linked}


def test_login_sends_the_code_by_dm_and_links_hanks_own_account(lab: Lab, bot: RunningBot, hank: dict[str, Any],
                                                               entra: EntraControl) -> None:
    hank_id, upn = slack_id(lab, "hank"), person("hank").upn
    code_dm: Message = hank["code_dm"]
    assert hank["code"] in code_dm["text"] and "https://" in code_dm["text"] and "works until" in code_dm["text"]
    assert not any(hank["code"] in text for text in hank["channel"]), "the sign-in code went to a channel"
    assert not any(hank["code"] in e["text"] for e in hank["ephemeral"])
    assert hank["linked"]["text"].startswith(f"Your Entra account is linked as {upn} (roles: Helpdesk Administrator)")

    row = link_row(bot, hank_id)
    assert row is not None and (row.upn, row.oid) == (upn, person("hank").entra_id)
    assert row.roles == '["Helpdesk Administrator"]'
    events = [e for e in bot.audit() if e.actor == hank_id and e.action in ("link_started", "linked")]
    assert [e.action for e in events][-2:] == ["link_started", "linked"]
    assert upn in events[-1].detail and hank["code"] not in "".join(e.detail for e in bot.audit())


def test_whoami_shows_the_link_its_roles_and_that_a_token_comes_silently(lab: Lab, bot: RunningBot,
                                                                         driver: SlackDriver,
                                                                         hank: dict[str, Any]) -> None:
    driver.command("hank", "/resetbot", "whoami", channel=lab.descriptor["slack"]["channels"]["helpdesk"])
    shown = driver.wait_for_ephemeral("hank", lambda e: "linked as" in e["text"])
    assert shown["text"].startswith(f"You're linked as {person('hank').upn} (Hank Hughes) since <!date^")
    assert "Entra roles: Helpdesk Administrator." in shown["text"]
    assert shown["text"].endswith("A token comes silently right now.")


def test_the_sign_in_is_stored_encrypted_and_refreshed_silently(lab: Lab, bot: RunningBot, hank: dict[str, Any],
                                                                entra: EntraControl) -> None:
    hank_id = slack_id(lab, "hank")
    fernet = Fernet(bot.runtime.settings.token_cache_key.get_secret_value().encode())  # type: ignore[union-attr]

    def stored() -> str:
        with bot.session() as session:
            return str(session.execute(sa.text("SELECT encrypted_cache FROM agent_link WHERE slack_user = :u"),
                                       {"u": hank_id}).scalar_one())

    token = bot.services.links.token_for(hank_id)
    assert claims(token.access_token)["upn"] == person("hank").upn and token.upn == person("hank").upn
    column = stored()
    cache = json.loads(fernet.decrypt(column.encode()))
    refresh_token = next(iter(cache["RefreshToken"].values()))["secret"]
    for secret in (token.access_token, refresh_token, "RefreshToken", "AccessToken"):
        assert secret not in column

    # The access token runs out: the next token comes from the refresh token, and the rotated cache is stored.
    for entry in cache["AccessToken"].values():
        entry["expires_on"] = entry["extended_expires_on"] = str(int(time.time()) - 60)
    with bot.runtime.session_factory.begin() as session:
        session.execute(sa.update(AgentLink).where(AgentLink.slack_user == hank_id)  # type: ignore[arg-type]
                        .values(encrypted_cache=fernet.encrypt(json.dumps(cache).encode()).decode()))
    expired_column = stored()
    entra.reset()
    fresh = bot.services.links.token_for(hank_id)
    assert fresh.access_token != token.access_token and claims(fresh.access_token)["upn"] == person("hank").upn
    assert [r["user"] for r in entra.requests("token") if r["status"] == 200] == [person("hank").upn]
    column = stored()
    assert column != expired_column
    new_refresh = next(iter(json.loads(fernet.decrypt(column.encode()))["RefreshToken"].values()))["secret"]
    for secret in (fresh.access_token, new_refresh, refresh_token):
        assert secret not in column
    row = link_row(bot, hank_id)
    assert row is not None and row.refreshed_at is not None
    assert bot.services.links.token_for(hank_id).access_token == fresh.access_token  # from the cache now


def test_readiness_before_approval(lab: Lab, bot: RunningBot, hank: dict[str, Any]) -> None:
    links = bot.services.links
    hank_id, ivan_id = slack_id(lab, "hank"), slack_id(lab, "ivan")
    assert links.readiness(hank_id, []) is None
    assert links.readiness(hank_id, ["Password Administrator"]) is None
    assert links.readiness(hank_id, ["Helpdesk Administrator"]) is None
    too_weak = links.readiness(hank_id, ["Global Administrator"])
    assert too_weak == (f"Your Entra account {person('hank').upn} (Helpdesk Administrator) can't reset the password "
                        "of someone who holds Global Administrator: that takes Privileged Authentication "
                        "Administrator or Global Administrator.")
    not_linked = links.readiness(ivan_id, [])
    assert not_linked is not None and "run `/resetbot login` first" in not_linked
    assert links.acting_token(hank_id).upn == person("hank").upn
    with pytest.raises(NotLinkedError, match="/resetbot login"):
        links.reset_token(ivan_id)


def test_only_agents_link_and_bad_options_get_one_sentence(lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    alice = slack_id(lab, "alice")
    driver.command("alice", "/resetbot", "login", channel=helpdesk)
    refused = driver.wait_for_ephemeral("alice", lambda e: "link an Entra account" in e["text"])
    assert refused["text"].startswith("Only members of the @helpdesk user group")
    assert not driver.messages(driver.dm_channel("alice"))
    assert any(e.actor == alice and e.action == "refused" and '"stage":"link"' in e.detail for e in bot.audit())
    ack = driver.command("hank", "/resetbot", "login --everyone", channel=helpdesk)
    assert ack["ack_body"] and "takes nothing after it" in str(ack["ack_body"])
    driver.command("hank", "/resetbot", "health", channel=helpdesk)
    # Health reads the database, so it is answered just after the ack (the ack path does no I/O), to hank only.
    driver.wait_for_ephemeral("hank", lambda e: "resetbot health:" in e["text"])


def test_a_declined_sign_in_links_nothing(lab: Lab, bot: RunningBot, driver: SlackDriver,
                                          entra: EntraControl) -> None:
    code, _ = start_login(lab, driver, "hedy")
    entra.call("POST", "/device/decline", {"user_code": code})
    declined = dm_after(driver, "hedy", "The Microsoft sign-in was declined")
    assert declined["text"].endswith("Run `/resetbot login` to try again.")
    hedy = slack_id(lab, "hedy")
    assert link_row(bot, hedy) is None
    failed = [e for e in bot.audit() if e.actor == hedy and e.action == "link_failed"]
    assert failed and '"reason":"declined"' in failed[-1].detail


def test_the_sign_in_code_reaches_no_log_line(lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl,
                                             caplog: pytest.LogCaptureFixture) -> None:
    """The code in the DM is a live credential for ten minutes (whoever enters it first signs in where the agent
    meant to): slack-sdk logs the DM it posts at DEBUG, so the code must be redacted like a password."""
    caplog.set_level(logging.DEBUG)
    code, _ = start_login(lab, driver, "hedy")
    entra.call("POST", "/device/decline", {"user_code": code})
    dm_after(driver, "hedy", "The Microsoft sign-in was declined")
    redaction = RedactingFilter()  # what every log handler applies (bot.logs.configure)
    logged = [r.getMessage() + str(r.args) for r in caplog.records if redaction.filter(r)]
    assert logged and not [line for line in logged if code in line], "the sign-in code reached a log line"


def test_a_sign_in_completed_as_someone_else_is_refused_and_reported(lab: Lab, bot: RunningBot,
                                                                     driver: SlackDriver, hank: dict[str, Any],
                                                                     entra: EntraControl) -> None:
    """hank asks, alice (phished, say) enters the code: nothing is linked, hank's own link stays, security hears."""
    hank_id, security = slack_id(lab, "hank"), lab.descriptor["slack"]["channels"]["security"]
    before = link_row(bot, hank_id)
    code, _ = start_login(lab, driver, "hank")
    entra.approve(code, "alice")
    told = dm_after(driver, "hank", "That sign-in was completed as")
    alice_upn, hank_upn = person("alice").upn, person("hank").upn
    assert told["text"].startswith(f"That sign-in was completed as {alice_upn}, which isn't your own account "
                                   f"({hank_upn}), so nothing was linked and security has been told.")
    alert = driver.wait_for_message(security, lambda m: alice_upn in m["text"])
    assert f"<@{hank_id}>" in alert["text"] and "phishing" in alert["text"]
    after = link_row(bot, hank_id)
    assert before is not None and after is not None
    assert (after.upn, after.encrypted_cache) == (hank_upn, before.encrypted_cache)
    refused = [e for e in bot.audit() if e.action == "link_refused"]
    assert refused and refused[-1].actor == hank_id
    assert json.loads(refused[-1].detail) == {"expected": hank_upn, "reason": "wrong_account", "service": False,
                                              "signed_in": alice_upn}


def test_an_account_whose_mail_was_made_the_agents_address_is_not_theirs(lab: Lab, bot: RunningBot,
                                                                        driver: SlackDriver, hank: dict[str, Any],
                                                                        entra: EntraControl) -> None:
    """Issue 14, item 11. Helpdesk staff can often edit ``mail`` on-prem: hank sets Paula's (a Global
    Administrator) to his own address and gets her to enter his sign-in code. Only the UPN proves an account is
    his, so nothing is linked and security hears of it."""
    hank_id, paula = slack_id(lab, "hank"), person("paula")
    before = link_row(bot, hank_id)
    entra.call("POST", "/users", {"upn": paula.upn, "mail": person("hank").mail})
    try:
        code, _ = start_login(lab, driver, "hank")
        entra.approve(code, "paula")
        told = dm_after(driver, "hank", "That sign-in was completed as")
    finally:
        entra.call("POST", "/users", {"upn": paula.upn, "mail": None})
    assert told["text"].startswith(f"That sign-in was completed as {paula.upn}, which isn't your own account")
    after = link_row(bot, hank_id)
    assert before is not None and after is not None and after.upn == person("hank").upn
    driver.wait_for_message(lab.descriptor["slack"]["channels"]["security"], lambda m: paula.upn in m["text"])
    refused = [e for e in bot.audit() if e.action == "link_refused"]
    assert refused and json.loads(refused[-1].detail)["signed_in"] == paula.upn


def test_a_second_login_while_waiting_starts_nothing_and_a_shutdown_tells_the_agent(
        lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """A second LinkService on the same clients (as a replica would be), stopped while hedy's sign-in waits."""
    links, hedy = bot.services.links, slack_id(lab, "hedy")
    replica = LinkService(begin=links.begin, notifier=links.notifier, tokens=links.tokens, graph=links.graph,
                          rules=links.rules)
    try:
        first = replica.login(slack_user=hedy, correlation_id="c-test-1")
        assert first.startswith("I've sent you a sign-in code in a DM")
        again = replica.login(slack_user=hedy, correlation_id="c-test-2")
        assert again.startswith("Your sign-in from before is still waiting")
        driver.wait_for_message(driver.dm_channel("hedy"), lambda m: CODE_RE.search(m["text"]) is not None)
        assert len([m for m in driver.messages(driver.dm_channel("hedy")) if CODE_RE.search(m["text"])]) == 1
    finally:
        replica.close()  # stops the polling (else it would wait out the code's 15 minutes) and joins the worker
    told = [m for m in driver.messages(driver.dm_channel("hedy")) if m["text"].startswith("resetbot restarted")]
    assert len(told) == 1 and told[0]["text"].endswith("Run `/resetbot login` again.")
    failed = [e for e in bot.audit() if e.actor == hedy and e.action == "link_failed"]
    assert failed and '"reason":"interrupted"' in failed[-1].detail and failed[-1].correlation_id == "c-test-1"
    assert replica.login(slack_user=hedy, correlation_id="c-test-3").startswith("resetbot restarted")
    assert link_row(bot, hedy) is None


@pytest.fixture
def service_mode(lab: Lab, bot: RunningBot) -> Iterator[str]:
    """Resets made as one service identity (gina, User Administrator) for this test; the agent mode after."""
    links = bot.services.links
    rules = links.rules
    upn = person("gina").upn
    links.rules = dataclasses.replace(rules, reset_identity=ResetIdentity.SERVICE, service_upn=upn)
    yield upn
    links.rules = rules
    with bot.runtime.session_factory.begin() as session:
        session.execute(sa.delete(AgentLink).where(AgentLink.slack_user == SERVICE_LINK_KEY))  # type: ignore[arg-type]


def test_in_service_mode_an_approver_links_the_service_identity_and_it_makes_every_reset(
        lab: Lab, bot: RunningBot, driver: SlackDriver, entra: EntraControl, service_mode: str) -> None:
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    links, hedy, ivan = bot.services.links, slack_id(lab, "hedy"), slack_id(lab, "ivan")
    driver.command("alice", "/resetbot", "login --service", channel=helpdesk)
    driver.wait_for_ephemeral("alice", lambda e: e["text"].startswith("Only members of the @approvers user group"))
    driver.command("hank", "/resetbot", "login", channel=helpdesk)
    driver.wait_for_ephemeral("hank", lambda e: "you don't need to link your own account" in e["text"])
    not_yet = links.readiness(hedy, [])
    assert not_yet is not None and "`/resetbot login --service`" in not_yet

    code, code_dm = start_login(lab, driver, "ivan", "--service")
    assert f"sign in as `{service_mode}`" in code_dm["text"]
    entra.approve(code, "gina")
    linked = dm_after(driver, "ivan", "The service identity is linked as")
    assert linked["text"].startswith(f"The service identity is linked as {service_mode} (roles: User Administrator)")

    assert links.readiness(hedy, ["Helpdesk Administrator"]) is None  # hedy never linked: not needed
    weak = links.readiness(hedy, ["Global Administrator"])
    assert weak is not None and weak.startswith(f"The service identity {service_mode} (User Administrator) can't")
    assert links.acting_token(hedy).upn == service_mode
    driver.command("hank", "/resetbot", "whoami", channel=helpdesk)
    whoami = driver.wait_for_ephemeral("hank", lambda e: "not as you" in e["text"])
    assert f"The service identity is linked as {service_mode}" in whoami["text"]

    driver.command("ivan", "/resetbot", "logout --service", channel=helpdesk)
    driver.wait_for_ephemeral("ivan", lambda e: e["text"].startswith(f"The service identity {service_mode} is "
                                                                     "unlinked"))
    assert link_row(bot, SERVICE_LINK_KEY) is None
    assert links.readiness(hedy, []) == not_yet
    actions = [e.action for e in bot.audit() if e.actor == ivan]
    assert actions[-3:] == ["link_started", "linked", "unlinked"]


def test_logout_forgets_the_link(lab: Lab, bot: RunningBot, driver: SlackDriver, hank: dict[str, Any]) -> None:
    """Last in the module: hank's shared sign-in goes."""
    helpdesk, hank_id = lab.descriptor["slack"]["channels"]["helpdesk"], slack_id(lab, "hank")
    driver.command("hank", "/resetbot", "logout", channel=helpdesk)
    gone = driver.wait_for_ephemeral("hank", lambda e: "unlinked" in e["text"])
    assert gone["text"].startswith(f"Your Entra account {person('hank').upn} is unlinked")
    assert link_row(bot, hank_id) is None
    assert bot.audit()[-1].action == "unlinked" and bot.audit()[-1].actor == hank_id
    driver.command("hank", "/resetbot", "whoami", channel=helpdesk)
    driver.wait_for_ephemeral("hank", lambda e: e["text"].startswith("You haven't linked an Entra account."))
    with pytest.raises(NotLinkedError):
        bot.services.links.token_for(hank_id)
    assert bot.services.links.readiness(hank_id, []) == (
        "You haven't linked your Entra account yet, and resets you ask for are made as you: run `/resetbot login` "
        "first.")
    driver.command("hank", "/resetbot", "logout", channel=helpdesk)
    driver.wait_for_ephemeral("hank", lambda e: e["text"] == "You have no linked Entra account.")

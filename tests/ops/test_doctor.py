"""``resetbot doctor`` through its real entry point (``python -m bot doctor``, settings only from the
environment) against the lab: all green, then each dependency broken in turn. Each test asserts the line an
operator reads and the exit code, and puts the shared lab back as it found it."""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import ldap3
import pytest
from cryptography.fernet import Fernet
from ldap3.protocol.microsoft import security_descriptor_control
from pydantic import SecretStr

from bot import store
from bot.callback import CallbackListener
from bot.cli.doctor import build_plan
from bot.clients.ad_acl import dacl, sid_to_str
from bot.db import make_engine, make_session_factory
from bot.models import SERVICE_LINK_KEY
from bot.services.links import CallbackOutcome
from bot.settings import load_settings
from lab.demo import bot_environment
from lab.people import person as lab_person
from lab.pki import LabCA
from lab.slack.driver import SlackDriver
from lab.stack import Lab
from tests.clients.graphlab import EntraControl
from tests.dbtemplate import migrated_sqlite_file


def person(lab: Lab, key: str) -> dict[str, Any]:
    return next(p for p in lab.descriptor["people"] if p["key"] == key)


def migrated_sqlite(path: Path) -> str:
    return migrated_sqlite_file(path)


@pytest.fixture
def env(lab: Lab, tmp_path: Path) -> dict[str, str]:
    values = bot_environment(lab.descriptor, migrated_sqlite(tmp_path / "resetbot.db"))
    values["RESETBOT_DOCTOR_TEST_USER"] = person(lab, "alice")["upn"]
    values["RESETBOT_WRITEBACK_ACCOUNT"] = lab.descriptor["ad"]["writeback"]["bind"]
    return values


#: What the last run printed on stderr (its log), for the test that no secret reaches any output.
LAST_STDERR: list[str] = []


def doctor(env: dict[str, str], cwd: Path) -> tuple[int, list[str]]:
    """Exit code and stdout lines of ``python -m bot doctor``."""
    done = subprocess.run([sys.executable, "-m", "bot", "doctor"], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=90, check=False)
    LAST_STDERR[:] = [done.stderr]
    return done.returncode, done.stdout.splitlines()


def line(lines: list[str], check: str) -> str:
    found = [x for x in lines if re.sub(r"^(ok|FAIL|skip)\s+", "", x).startswith(check + ":")]
    assert len(found) == 1, f"no single line for {check!r} in:\n" + "\n".join(lines)
    return found[0]


def assert_ok_except(lines: list[str], *failing: str) -> None:
    """Every check line is ok or skipped with a note, except ``failing``, which are FAIL."""
    for x in lines:
        if x.startswith("FAIL"):
            assert any(x.startswith(f"FAIL  {name}:") for name in failing), "\n".join(lines)
    for name in failing:
        assert line(lines, name).startswith("FAIL  "), "\n".join(lines)


def test_all_green_on_the_lab(env: dict[str, str], tmp_path: Path) -> None:
    code, lines = doctor(env, tmp_path)
    assert code == 0, "\n".join(lines)
    for check in ("settings", "Slack bot token", "Slack bot scopes", "Slack app token", "Slack user groups",
                  "TLS to Entra ID",
                  "Entra app token", "Graph permissions", "Graph reachable", "Graph test user", "TLS to AD",
                  "LDAP bind", "AD password policy", "writeback rights", "AD password version", "database",
                  "Duo Auth API"):
        assert line(lines, check).startswith("ok    "), "\n".join(lines)
    assert line(lines, "Graph reachable").startswith("ok    Graph reachable: 127.0.0.1:")
    assert line(lines, "Graph reachable").endswith("presents a trusted certificate and answers the app's token "
                                                   "(it read the tenant)")
    agents_mode = ("skipped: RESETBOT_RESET_IDENTITY=agent and no canary, so no service identity is used: each "
                   "agent's own Entra role is checked when they ask for a reset (/resetbot whoami shows it)")
    assert line(lines, "Entra reset role") == f"skip  Entra reset role: {agents_mode}"
    assert line(lines, "service identity link") == f"skip  service identity link: {agents_mode}"
    assert "all 6 scopes" in line(lines, "Slack bot scopes")
    assert "User.Read.All, GroupMember.Read.All, Organization.Read.All" in line(lines, "Graph permissions")
    assert "synced from AD (sAMAccountName alice)" in line(lines, "Graph test user")
    assert "1 fine-grained policy readable" in line(lines, "AD password policy")
    assert "may reset passwords and write pwdLastSet and lockoutTime on users in OU=Staff" in \
        line(lines, "writeback rights")
    assert lines[-1] == "Every check passed."


def test_a_wrong_duo_secret_key_fails_its_line_only(env: dict[str, str], tmp_path: Path) -> None:
    env["RESETBOT_DUO_SECRET_KEY"] = "rotated-in-duo-" + env["RESETBOT_DUO_SECRET_KEY"]
    code, lines = doctor(env, tmp_path)
    assert code == 1
    assert_ok_except(lines, "Duo Auth API")
    assert "Duo refused the signed check (HTTP 401)" in line(lines, "Duo Auth API")
    assert env["RESETBOT_DUO_SECRET_KEY"] not in "\n".join(lines) + LAST_STDERR[0]
    env["RESETBOT_VERIFY_METHODS"] = "slack-code"
    code, lines = doctor(env, tmp_path)
    assert code == 0 and line(lines, "Duo Auth API") == ("skip  Duo Auth API: skipped: duo-push is not in "
                                                         "RESETBOT_VERIFY_METHODS")


def test_in_http_mode_the_app_token_is_not_needed(env: dict[str, str], tmp_path: Path) -> None:
    del env["RESETBOT_SLACK_APP_TOKEN"]
    env["RESETBOT_SLACK_MODE"] = "http"
    env["RESETBOT_SLACK_SIGNING_SECRET"] = "8f742231b10e8888abcd99yyyzzz85a5"
    code, lines = doctor(env, tmp_path)
    assert code == 0, "\n".join(lines)
    assert line(lines, "Slack app token") == ("skip  Slack app token: skipped: HTTP mode (RESETBOT_SLACK_MODE=http) "
                                              "uses no app-level token; Slack calls the bot's request URL")
    assert env["RESETBOT_SLACK_SIGNING_SECRET"] not in "\n".join(lines) + LAST_STDERR[0]


def test_no_secret_reaches_the_output(env: dict[str, str], tmp_path: Path) -> None:
    env["RESETBOT_LDAP_PASSWORD"] = "Wr0ng-but-secret-Pa55"
    env["RESETBOT_ENTRA_CLIENT_SECRET"] = "also-wrong-and-secret"
    code, lines = doctor(env, tmp_path)
    assert code == 1
    text = "\n".join(lines) + LAST_STDERR[0]
    for secret in ("Wr0ng-but-secret-Pa55", "also-wrong-and-secret", env["RESETBOT_SLACK_BOT_TOKEN"],
                   env["RESETBOT_SLACK_APP_TOKEN"], env["RESETBOT_TOKEN_CACHE_KEY"]):
        assert secret not in text


def test_the_plan_keeps_secrets_out_of_its_repr(env: dict[str, str], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    env["RESETBOT_DATABASE_URL"] = "postgresql://resetbot:Db-Pa55-secret@127.0.0.1:1/resetbot"
    for name, value in env.items():
        if name.startswith("RESETBOT_"):
            monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    plan = build_plan(load_settings())
    try:
        shown = repr(plan)
    finally:
        assert plan.graph is not None
        plan.graph.close()
    assert "DoctorPlan(" in shown and env["RESETBOT_ENTRA_CLIENT_ID"] in shown
    for secret in (env["RESETBOT_SLACK_BOT_TOKEN"], env["RESETBOT_SLACK_APP_TOKEN"], "Db-Pa55-secret",
                   env["RESETBOT_ENTRA_CLIENT_SECRET"], env["RESETBOT_LDAP_PASSWORD"], env["RESETBOT_TOKEN_CACHE_KEY"]):
        assert secret not in shown


def test_settings_missing_are_named_and_other_checks_still_run(env: dict[str, str], tmp_path: Path) -> None:
    del env["RESETBOT_LDAP_URL"]
    del env["RESETBOT_TOKEN_CACHE_KEY"]
    code, lines = doctor(env, tmp_path)
    assert code == 1
    settings = line(lines, "settings")
    assert "RESETBOT_LDAP_URL is not set." in settings and "RESETBOT_TOKEN_CACHE_KEY is not set" in settings
    assert line(lines, "LDAP bind").startswith("skip  ")
    assert_ok_except(lines, "settings")


def test_settings_that_stop_everything(env: dict[str, str], tmp_path: Path) -> None:
    env["RESETBOT_SLACK_BOT_TOKEN"] = "xoxb-your-token"
    code, lines = doctor(env, tmp_path)
    assert code == 1
    assert "RESETBOT_SLACK_BOT_TOKEN must be the app's bot token" in line(lines, "settings")


def test_wrong_slack_bot_token(env: dict[str, str], tmp_path: Path) -> None:
    env["RESETBOT_SLACK_BOT_TOKEN"] = "xoxb-1-not-the-bots"
    code, lines = doctor(env, tmp_path)
    assert code == 1
    assert line(lines, "Slack bot token") == (
        "FAIL  Slack bot token: Slack refused RESETBOT_SLACK_BOT_TOKEN (invalid_auth): copy the Bot User OAuth "
        "Token (xoxb-…) from the app's settings page into RESETBOT_SLACK_BOT_TOKEN")
    assert line(lines, "Slack bot scopes") == "skip  Slack bot scopes: skipped: Slack bot token failed above"
    assert_ok_except(lines, "Slack bot token")


def test_slack_out_of_reach(env: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as closed:  # bound, never listening
        closed.bind(("127.0.0.1", 0))
        env["RESETBOT_SLACK_API_BASE"] = api_base = f"http://127.0.0.1:{closed.getsockname()[1]}/api/"
        code, lines = doctor(env, tmp_path)
    assert code == 1
    assert line(lines, "Slack bot token") == (f"FAIL  Slack bot token: Slack could not be reached at {api_base} "
                                              "(URLError): check the network path and RESETBOT_SLACK_API_BASE")
    assert line(lines, "Slack app token").startswith(f"FAIL  Slack app token: Slack could not be reached at {api_base}")
    assert_ok_except(lines, "Slack bot token", "Slack app token")


def test_missing_slack_scope(lab: Lab, env: dict[str, str], tmp_path: Path) -> None:
    with SlackDriver(lab.descriptor["slack"]["control"]) as driver:
        driver.faults(revoked_scopes=["users:read.email"])
        try:
            code, lines = doctor(env, tmp_path)
        finally:
            driver.faults(revoked_scopes=[])
    assert code == 1
    assert line(lines, "Slack bot scopes") == (
        "FAIL  Slack bot scopes: the bot token lacks users:read.email: add it under OAuth & Permissions (as "
        "manifest.yml asks) and reinstall the app to the workspace")
    assert_ok_except(lines, "Slack bot scopes")


def test_user_groups_are_named_by_id_and_a_members_change_is_a_warning(lab: Lab, env: dict[str, str],
                                                                      tmp_path: Path) -> None:
    """Issue 14, item 6. Slack shows no app whether members may change user groups; the doctor says so, names
    each group's id, and fails when Slack shows that someone who is not an admin did change one."""
    env["RESETBOT_APPROVERS_GROUP"] = "S0APPROVERS"
    code, lines = doctor(env, tmp_path)
    assert code == 0, "\n".join(lines)
    groups = line(lines, "Slack user groups")
    assert groups.startswith("ok    Slack user groups: RESETBOT_AGENTS_GROUP @helpdesk is S00HELPDESK (a handle: set "
                             "RESETBOT_AGENTS_GROUP=S00HELPDESK to pin it by id); RESETBOT_APPROVERS_GROUP @approvers "
                             "is S0APPROVERS (pinned by id)."), groups
    assert "Slack does not show apps whether members may change user groups" in groups
    with SlackDriver(lab.descriptor["slack"]["control"]) as driver:
        driver.usergroup("alice", "update", usergroup="S0APPROVERS", users=["ivan", "gina", "alice"])
        try:
            code, lines = doctor(env, tmp_path)
        finally:
            driver.reset()
    assert code == 1
    assert line(lines, "Slack user groups") == (
        "FAIL  Slack user groups: @approvers (S0APPROVERS, RESETBOT_APPROVERS_GROUP) was last changed by Alice "
        "Archer, who is not a workspace admin: this workspace lets members change user groups, so anyone can make "
        "themselves an agent or an approver. Let only admins manage user groups (Workspace settings > Permissions "
        "> User Groups), then check who is in the group")
    assert_ok_except(lines, "Slack user groups")


def test_a_configured_group_that_does_not_exist(env: dict[str, str], tmp_path: Path) -> None:
    env["RESETBOT_AGENTS_GROUP"] = "S0NOSUCHGRP"
    code, lines = doctor(env, tmp_path)
    assert code == 1
    assert line(lines, "Slack user groups") == (
        "FAIL  Slack user groups: RESETBOT_AGENTS_GROUP: this Slack workspace has no user group S0NOSUCHGRP; give "
        "the id (S…) of an existing group, as usergroups.list shows it")
    assert_ok_except(lines, "Slack user groups")


def test_wrong_slack_app_token(env: dict[str, str], tmp_path: Path) -> None:
    env["RESETBOT_SLACK_APP_TOKEN"] = "xapp-1-A0RESETBOT-not-it"
    code, lines = doctor(env, tmp_path)
    assert code == 1
    assert "Slack refused RESETBOT_SLACK_APP_TOKEN (invalid_auth)" in line(lines, "Slack app token")
    assert_ok_except(lines, "Slack app token")


def test_bot_token_given_as_app_token(env: dict[str, str], tmp_path: Path) -> None:
    env["RESETBOT_SLACK_APP_TOKEN"] = "xapp-" + env["RESETBOT_SLACK_BOT_TOKEN"]
    code, lines = doctor(env, tmp_path)
    assert code == 1
    assert line(lines, "Slack app token").startswith("FAIL  Slack app token: Slack refused RESETBOT_SLACK_APP_TOKEN")


def test_wrong_graph_client_secret(env: dict[str, str], tmp_path: Path) -> None:
    env["RESETBOT_ENTRA_CLIENT_SECRET"] = "not-the-apps-secret"
    code, lines = doctor(env, tmp_path)
    assert code == 1
    token = line(lines, "Entra app token")
    assert token.startswith("FAIL  Entra app token: Entra ID refused the bot's client secret")
    assert "RESETBOT_ENTRA_CLIENT_SECRET" in token
    assert line(lines, "Graph permissions") == "skip  Graph permissions: skipped: Entra app token failed above"
    assert line(lines, "Graph reachable") == "skip  Graph reachable: skipped: Entra app token failed above"
    assert line(lines, "Graph test user") == "skip  Graph test user: skipped: Entra app token failed above"
    assert_ok_except(lines, "Entra app token")


@pytest.fixture
def entra_control(lab: Lab) -> Iterator[httpx.Client]:
    entra = lab.descriptor["entra"]
    with httpx.Client(base_url=entra["control"], verify=ssl.create_default_context(cafile=entra["ca_file"]),
                      trust_env=False) as client:
        yield client


def test_entra_token_endpoint_down(env: dict[str, str], tmp_path: Path, entra_control: httpx.Client) -> None:
    entra_control.post("/faults", json={"token_endpoint_down": True}).raise_for_status()
    try:
        code, lines = doctor(env, tmp_path)
    finally:
        entra_control.post("/faults", json={"token_endpoint_down": False}).raise_for_status()
    assert code == 1
    assert line(lines, "Entra app token").startswith(
        "FAIL  Entra app token: Entra ID's token service is unavailable (")
    assert_ok_except(lines, "Entra app token")


def test_graph_down_is_named_apart_from_the_token(env: dict[str, str], tmp_path: Path,
                                                  entra_control: httpx.Client) -> None:
    entra_control.post("/faults", json={"fail_next_5xx": 1}).raise_for_status()  # the doctor does not retry
    try:
        code, lines = doctor(env, tmp_path)
    finally:
        entra_control.post("/faults", json={"fail_next_5xx": 0}).raise_for_status()
    assert code == 1
    reachable = line(lines, "Graph reachable")
    assert reachable.startswith("FAIL  Graph reachable: Microsoft Graph is unavailable and could not read the "
                                "tenant after 0 retries (serviceNotAvailable: ")
    assert reachable.endswith(f"check RESETBOT_GRAPH_BASE ({env['RESETBOT_GRAPH_BASE']}), the network path to it "
                              "and Microsoft 365's service health")
    assert line(lines, "Entra app token").startswith("ok    ")
    assert line(lines, "Graph test user") == "skip  Graph test user: skipped: Graph reachable failed above"
    assert_ok_except(lines, "Graph reachable")


def test_graph_host_that_does_not_answer(env: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as closed:  # a port nothing listens on: bound, never listening
        closed.bind(("127.0.0.1", 0))
        env["RESETBOT_GRAPH_BASE"] = f"https://127.0.0.1:{closed.getsockname()[1]}/v1.0"
        code, lines = doctor(env, tmp_path)
    assert code == 1
    reachable = line(lines, "Graph reachable")
    assert reachable.startswith("FAIL  Graph reachable: 127.0.0.1:") and "did not answer TLS (" in reachable
    assert line(lines, "TLS to Entra ID").startswith("ok    ")  # the authority is another matter
    assert_ok_except(lines, "Graph reachable")


def doctor_with_revoked(env: dict[str, str], cwd: Path, entra_control: httpx.Client,
                        permission: str) -> tuple[int, list[str]]:
    """The doctor run while Entra leaves ``permission`` out of new app tokens (admin consent withdrawn)."""
    entra_control.post("/faults", json={"revoked_app_roles": [permission]}).raise_for_status()
    try:
        return doctor(env, cwd)
    finally:
        entra_control.post("/faults", json={"revoked_app_roles": []}).raise_for_status()


def test_revoked_graph_permission(env: dict[str, str], tmp_path: Path, entra_control: httpx.Client) -> None:
    code, lines = doctor_with_revoked(env, tmp_path, entra_control, "GroupMember.Read.All")
    assert code == 1
    assert line(lines, "Graph permissions") == (
        f"FAIL  Graph permissions: the app's token lacks the application permission GroupMember.Read.All: add it "
        f"to app {env['RESETBOT_ENTRA_CLIENT_ID']} under API permissions → Microsoft Graph → Application "
        "permissions, and grant admin consent")
    assert_ok_except(lines, "Graph permissions")


def test_revoked_permission_that_graph_reachable_needs(env: dict[str, str], tmp_path: Path,
                                                       entra_control: httpx.Client) -> None:
    code, lines = doctor_with_revoked(env, tmp_path, entra_control, "Organization.Read.All")
    assert code == 1
    assert "lacks the application permission Organization.Read.All" in line(lines, "Graph permissions")
    assert line(lines, "Graph reachable") == (
        "FAIL  Graph reachable: Graph refused the app's token when reading the tenant (Authorization_RequestDenied): "
        f"give app {env['RESETBOT_ENTRA_CLIENT_ID']} the application permission Organization.Read.All (API "
        "permissions → Microsoft Graph) and grant admin consent")
    assert_ok_except(lines, "Graph permissions", "Graph reachable")


def test_an_app_that_may_set_credentials_fails_the_permissions_check(env: dict[str, str], tmp_path: Path,
                                                                     entra_control: httpx.Client) -> None:
    """An app holding an authentication-method permission mints TAPs and passwords for anyone without any role check:
    resetbot never uses one, so its presence is a hole the doctor names (whoever holds the app's secret holds it)."""
    consented = entra_control.get("/consent").json()["app_roles"]
    entra_control.post("/consent", json={"app_roles": [*consented, "UserAuthenticationMethod.ReadWrite.All"]}
                       ).raise_for_status()
    try:
        code, lines = doctor(env, tmp_path)
    finally:
        entra_control.post("/consent", json={"app_roles": consented}).raise_for_status()
    assert code == 1
    assert line(lines, "Graph permissions") == (
        "FAIL  Graph permissions: the app's token also carries UserAuthenticationMethod.ReadWrite.All, which "
        "resetbot never uses: with it, whoever holds the app's credential can set passwords or Temporary Access "
        "Passes for anyone, no Entra role asked; remove it from app "
        f"{env['RESETBOT_ENTRA_CLIENT_ID']} under API permissions → Microsoft Graph → Application permissions")
    assert_ok_except(lines, "Graph permissions")


def test_ldap_wrong_password(env: dict[str, str], tmp_path: Path) -> None:
    env["RESETBOT_LDAP_PASSWORD"] = "Not-The-Readers-1"
    code, lines = doctor(env, tmp_path)
    assert code == 1
    bind = line(lines, "LDAP bind")
    assert bind.startswith("FAIL  LDAP bind: Active Directory refused the bot's bind as ")
    assert "invalidCredentials" in bind and "RESETBOT_LDAP_PASSWORD" in bind
    assert line(lines, "AD password policy") == "skip  AD password policy: skipped: LDAP bind failed above"
    assert_ok_except(lines, "LDAP bind")


def test_ldap_server_paused(lab: Lab, env: dict[str, str], tmp_path: Path) -> None:
    lab.ad.pause()
    try:
        code, lines = doctor(env, tmp_path)
    finally:
        lab.ad.resume()
    assert code == 1
    assert "did not answer TLS (" in line(lines, "TLS to AD")
    assert line(lines, "LDAP bind") == "skip  LDAP bind: skipped: TLS to AD failed above"
    assert line(lines, "AD password policy") == "skip  AD password policy: skipped: TLS to AD failed above"
    assert line(lines, "database").startswith("ok    database:")  # AD down still checks the database
    assert_ok_except(lines, "TLS to AD")


def _without_trustee(descriptor: bytes, sid: str) -> bytes:
    """The same DACL less every ACE naming ``sid``, as a DACL-only self-relative descriptor."""
    import struct  # noqa: PLC0415

    kept = [a.raw for a in dacl(descriptor) if a.sid != sid]
    (control,) = struct.unpack_from("<H", descriptor, 2)
    (offset,) = struct.unpack_from("<I", descriptor, 16)
    revision = descriptor[offset]
    body = b"".join(kept)
    acl = struct.pack("<BBHHH", revision, 0, 8 + len(body), len(kept), 0) + body
    return struct.pack("<BBHIIII", 1, 0, control, 0, 0, 0, 20) + acl


def test_password_version_hidden_from_the_bot(lab: Lab, env: dict[str, str], tmp_path: Path) -> None:
    alice_dn = person(lab, "alice")["dn"]
    with lab.ad.read_denied(alice_dn, attribute="msDS-KeyVersionNumber", to_account="svc-resetbot"):
        code, lines = doctor(env, tmp_path)
    assert code == 1
    assert line(lines, "AD password version") == (
        f"FAIL  AD password version: the bot's account cannot read msDS-KeyVersionNumber on {alice_dn}: without it "
        "a reset of an account that already had to change its password cannot be proven to have reached AD (the "
        "thread says \"not confirmed\"); grant the bind account Read on that attribute (or Read all properties) "
        "for user objects")
    assert_ok_except(lines, "AD password version")
    code, lines = doctor(env, tmp_path)  # the DACL is back as it was
    assert line(lines, "AD password version").startswith(
        f"ok    AD password version: the bot's account reads msDS-KeyVersionNumber on {person(lab, 'alice')['upn']}")


def test_writeback_rights_removed(lab: Lab, env: dict[str, str], tmp_path: Path) -> None:
    alice_dn = person(lab, "alice")["dn"]
    ou = alice_dn.split(",", 1)[1]
    admin = lab.ad.admin_connection()
    sd_control = security_descriptor_control(sdflags=0x04)
    try:
        admin.search(lab.descriptor["ad"]["base_dn"], "(sAMAccountName=svc-writeback)", attributes=["objectSid"])
        sid = sid_to_str(admin.entries[0].objectSid.raw_values[0])
        admin.search(ou, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["nTSecurityDescriptor"],
                     controls=sd_control)
        original = bytes(admin.response[0]["raw_attributes"]["nTSecurityDescriptor"][0])
        stripped = _without_trustee(original, sid)
        assert admin.modify(ou, {"nTSecurityDescriptor": [(ldap3.MODIFY_REPLACE, [stripped])]},
                            controls=sd_control), admin.result
        try:
            code, lines = doctor(env, tmp_path)
        finally:
            assert admin.modify(ou, {"nTSecurityDescriptor": [(ldap3.MODIFY_REPLACE, [original])]},
                                controls=sd_control), admin.result
    finally:
        admin.unbind()
    assert code == 1
    assert line(lines, "writeback rights") == (
        f"FAIL  writeback rights: {env['RESETBOT_WRITEBACK_ACCOUNT']} lacks Reset Password, Write pwdLastSet, "
        f"Write lockoutTime on users in {ou}: delegate them to the AD DS connector account (Entra Connect's "
        "ADSyncConfig Set-ADSyncPasswordWritebackPermissions does), or writeback will fail")
    assert_ok_except(lines, "writeback rights")
    code, lines = doctor(env, tmp_path)  # and back as it was
    assert code == 0, "\n".join(lines)


def test_writeback_account_unknown(env: dict[str, str], tmp_path: Path) -> None:
    env["RESETBOT_WRITEBACK_ACCOUNT"] = "MSOL_nobody"
    code, lines = doctor(env, tmp_path)
    assert code == 1
    assert "no single AD account matches MSOL_nobody" in line(lines, "writeback rights")


def test_reader_account_has_no_writeback_rights(lab: Lab, env: dict[str, str], tmp_path: Path) -> None:
    env["RESETBOT_WRITEBACK_ACCOUNT"] = lab.descriptor["ad"]["reader"]["bind"]
    code, lines = doctor(env, tmp_path)
    assert code == 1
    assert "lacks Reset Password, Write pwdLastSet, Write lockoutTime" in line(lines, "writeback rights")


def test_without_test_user_those_lines_are_skipped_with_a_note(env: dict[str, str], tmp_path: Path) -> None:
    del env["RESETBOT_DOCTOR_TEST_USER"]
    code, lines = doctor(env, tmp_path)
    assert code == 0, "\n".join(lines)
    assert line(lines, "Graph test user") == ("skip  Graph test user: skipped: set RESETBOT_DOCTOR_TEST_USER to "
                                              "a synced user's UPN")


def test_cloud_only_test_user(lab: Lab, env: dict[str, str], tmp_path: Path) -> None:
    env["RESETBOT_DOCTOR_TEST_USER"] = person(lab, "cora")["upn"]
    code, lines = doctor(env, tmp_path)
    assert code == 1
    assert "is not synced from AD" in line(lines, "Graph test user")


def test_database_unreachable(env: dict[str, str], tmp_path: Path) -> None:
    env["RESETBOT_DATABASE_URL"] = "postgresql://postgres@127.0.0.1:1/test"
    code, lines = doctor(env, tmp_path)
    assert code == 1
    assert line(lines, "database").startswith("FAIL  database: the postgresql database could not be opened (")
    assert_ok_except(lines, "database")


def test_database_not_migrated(env: dict[str, str], tmp_path: Path) -> None:
    env["RESETBOT_DATABASE_URL"] = f"sqlite:///{tmp_path / 'empty.db'}"
    code, lines = doctor(env, tmp_path)
    assert code == 1
    assert line(lines, "database").startswith("FAIL  database: the database is not migrated (")
    assert line(lines, "database").endswith("run resetbot migrate")
    assert_ok_except(lines, "database")


# --- certificate credentials and CA bundles ----------------------------------------------------------------------
@pytest.fixture
def certificate_env(lab: Lab, env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    app = lab.descriptor["entra"]["app"]
    cert, key = tmp_path / "app-cert.pem", tmp_path / "app-key.pem"
    cert.write_text(app["certificate_pem"])
    key.write_text(app["private_key_pem"])
    key.chmod(0o600)
    del env["RESETBOT_ENTRA_CLIENT_SECRET"]
    env["RESETBOT_ENTRA_CERTIFICATE_FILE"] = str(cert)
    env["RESETBOT_ENTRA_PRIVATE_KEY_FILE"] = str(key)
    return env


def test_certificate_credential_passes(certificate_env: dict[str, str], tmp_path: Path) -> None:
    code, lines = doctor(certificate_env, tmp_path)
    assert code == 0, "\n".join(lines)
    assert "got a Graph token with its certificate" in line(lines, "Entra app token")


def test_certificate_that_is_not_the_apps(certificate_env: dict[str, str], tmp_path: Path) -> None:
    other = LabCA(tmp_path / "other-pki")
    issued = other.issue_server_cert("not-the-app")
    Path(certificate_env["RESETBOT_ENTRA_CERTIFICATE_FILE"]).write_bytes(issued.cert_file.read_bytes())
    Path(certificate_env["RESETBOT_ENTRA_PRIVATE_KEY_FILE"]).write_bytes(issued.key_file.read_bytes())
    code, lines = doctor(certificate_env, tmp_path)
    assert code == 1
    token = line(lines, "Entra app token")
    assert token.startswith("FAIL  Entra app token: Entra ID refused the bot's certificate credential")
    assert "RESETBOT_ENTRA_CERTIFICATE_FILE" in token
    assert_ok_except(lines, "Entra app token")


def test_key_that_does_not_match_the_certificate(lab: Lab, certificate_env: dict[str, str], tmp_path: Path) -> None:
    other = LabCA(tmp_path / "other-pki").issue_server_cert("stray")
    Path(certificate_env["RESETBOT_ENTRA_PRIVATE_KEY_FILE"]).write_bytes(other.key_file.read_bytes())
    code, lines = doctor(certificate_env, tmp_path)
    assert code == 1
    assert line(lines, "Entra app token") == (
        "FAIL  Entra app token: RESETBOT_ENTRA_PRIVATE_KEY_FILE is not the key of the certificate in "
        "RESETBOT_ENTRA_CERTIFICATE_FILE")


def test_wrong_ca_bundle_for_graph(env: dict[str, str], tmp_path: Path) -> None:
    stranger = LabCA(tmp_path / "stranger-pki")
    env["RESETBOT_ENTRA_CA_FILE"] = str(stranger.ca_file)
    code, lines = doctor(env, tmp_path)
    assert code == 1
    tls = line(lines, "TLS to Entra ID")
    assert tls.startswith("FAIL  TLS to Entra ID: the certificate of 127.0.0.1:")
    assert f"does not verify against the CA bundle {stranger.ca_file}" in tls
    assert tls.endswith("put the CA that issued it in RESETBOT_ENTRA_CA_FILE")
    assert line(lines, "Entra app token") == "skip  Entra app token: skipped: TLS to Entra ID failed above"
    assert_ok_except(lines, "TLS to Entra ID")


def test_wrong_ca_bundle_for_ldaps(env: dict[str, str], tmp_path: Path) -> None:
    stranger = LabCA(tmp_path / "stranger-pki")
    env["RESETBOT_LDAP_CA_FILE"] = str(stranger.ca_file)
    code, lines = doctor(env, tmp_path)
    assert code == 1
    tls = line(lines, "TLS to AD")
    assert "does not verify against the CA bundle" in tls and tls.endswith("in RESETBOT_LDAP_CA_FILE")
    assert_ok_except(lines, "TLS to AD")


def test_ca_bundle_that_is_not_one(env: dict[str, str], tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    env["RESETBOT_LDAP_CA_FILE"] = str(junk)
    code, lines = doctor(env, tmp_path)
    assert code == 1
    assert line(lines, "TLS to AD").startswith("FAIL  TLS to AD: RESETBOT_LDAP_CA_FILE cannot be used as a CA bundle")


# --- the service identity (RESETBOT_RESET_IDENTITY=service, or a canary) -----------------------------------------
def service_env(env: dict[str, str], key: str) -> dict[str, str]:
    env["RESETBOT_RESET_IDENTITY"] = "service"
    env["RESETBOT_SERVICE_IDENTITY_UPN"] = lab_person(key).upn
    return env


def link_service_identity(lab: Lab, env: dict[str, str], key: str) -> None:
    """Link person ``key`` as the service identity in the doctor's database, as /resetbot login --service does:
    a device-code sign-in approved through the stand-in, its cache encrypted with the bot's key."""
    control = EntraControl(lab)
    account = control.link(control.delegated(SecretStr(env["RESETBOT_TOKEN_CACHE_KEY"])), key)
    engine = make_engine(env["RESETBOT_DATABASE_URL"])
    try:
        with make_session_factory(engine).begin() as session:
            store.links.save_link(session, slack_user=SERVICE_LINK_KEY, upn=account.upn, oid=account.oid,
                                  home_account_id=account.home_account_id, encrypted_cache=account.encrypted_cache)
    finally:
        engine.dispose()


def test_service_identity_with_a_resetting_role_but_not_linked(env: dict[str, str], tmp_path: Path) -> None:
    gina = lab_person("gina").upn
    code, lines = doctor(service_env(env, "gina"), tmp_path)
    assert code == 1
    assert line(lines, "Entra reset role") == (
        f"ok    Entra reset role: the service identity {gina} (every reset is made as it) holds User "
        "Administrator, which may reset an ordinary user's password")
    assert line(lines, "service identity link") == (
        f"FAIL  service identity link: {gina} is not linked, yet every reset is made as it: an approver runs "
        f"/resetbot login --service and signs in as {gina}")
    assert_ok_except(lines, "service identity link")


def test_service_identity_linked_passes(lab: Lab, env: dict[str, str], tmp_path: Path) -> None:
    link_service_identity(lab, service_env(env, "hank"), "hank")
    code, lines = doctor(env, tmp_path)
    assert code == 0, "\n".join(lines)
    assert "holds Helpdesk Administrator, which may reset" in line(lines, "Entra reset role")
    link = line(lines, "service identity link")
    assert link.startswith(f"ok    service identity link: {lab_person('hank').upn} is linked (since ")
    assert link.endswith("UTC) and its stored sign-in opens with RESETBOT_TOKEN_CACHE_KEY; /resetbot whoami shows "
                         "whether Entra still honours it")


def test_service_identity_stored_under_another_key(lab: Lab, env: dict[str, str], tmp_path: Path) -> None:
    link_service_identity(lab, service_env(env, "hank"), "hank")
    env["RESETBOT_TOKEN_CACHE_KEY"] = Fernet.generate_key().decode()  # rotated without keeping the old one
    code, lines = doctor(env, tmp_path)
    assert code == 1
    assert line(lines, "service identity link").startswith(
        f"FAIL  service identity link: the stored sign-in of {lab_person('hank').upn} does not decrypt with "
        "RESETBOT_TOKEN_CACHE_KEY")
    assert_ok_except(lines, "service identity link")


def test_service_identity_without_a_resetting_role(lab: Lab, env: dict[str, str], tmp_path: Path) -> None:
    link_service_identity(lab, env, "hank")  # linked as someone else than the setting names
    ivan = lab_person("ivan").upn
    code, lines = doctor(service_env(env, "ivan"), tmp_path)
    assert code == 1
    assert line(lines, "Entra reset role") == (
        f"FAIL  Entra reset role: the service identity {ivan} (every reset is made as it) holds no Entra directory "
        "role, so Microsoft will refuse its resets: assign it Helpdesk Administrator or User Administrator (Entra "
        "admin center → Roles and administrators)")
    assert line(lines, "service identity link") == (
        f"FAIL  service identity link: the linked service identity is {lab_person('hank').upn}, not "
        f"RESETBOT_SERVICE_IDENTITY_UPN ({ivan}): an approver runs /resetbot logout --service, then /resetbot "
        f"login --service as {ivan}")
    assert_ok_except(lines, "Entra reset role", "service identity link")


def test_service_identity_unknown_to_entra(env: dict[str, str], tmp_path: Path) -> None:
    env = service_env(env, "gina")
    env["RESETBOT_SERVICE_IDENTITY_UPN"] = "svc-nobody@" + lab_person("gina").upn.split("@", 1)[1]
    code, lines = doctor(env, tmp_path)
    assert code == 1
    assert line(lines, "Entra reset role") == (
        f"FAIL  Entra reset role: Entra ID has no user {env['RESETBOT_SERVICE_IDENTITY_UPN']}: set "
        "RESETBOT_SERVICE_IDENTITY_UPN to the service identity's UPN")


def test_a_service_identity_that_may_not_sign_anyone_out_is_told_containment_needs_a_person(
        env: dict[str, str], tmp_path: Path) -> None:
    """Hedy's Password Administrator role resets passwords but Entra lets it revoke nobody's sessions: in service
    mode, containment of a disowned reset (made with the service identity's token) would be left to a person."""
    hedy = lab_person("hedy").upn
    _, lines = doctor(service_env(env, "hedy"), tmp_path)
    assert line(lines, "Entra reset role") == (
        f"ok    Entra reset role: the service identity {hedy} (every reset is made as it) holds Password "
        "Administrator, which may reset an ordinary user's password, but not revoke their sign-in sessions when they "
        "disown a reset (containment then leaves that to a person): assign it Helpdesk Administrator or User "
        "Administrator as well")


def test_an_app_that_may_sign_anyone_out_fails_the_permissions_check(env: dict[str, str], tmp_path: Path,
                                                                   entra_control: httpx.Client) -> None:
    """Containment revokes sessions with the reset's delegated token; an app-only User.RevokeSessions.All would let
    whoever holds the app's secret sign out anyone, a Global Administrator included."""
    consented = entra_control.get("/consent").json()["app_roles"]
    entra_control.post("/consent", json={"app_roles": [*consented, "User.RevokeSessions.All"]}).raise_for_status()
    try:
        code, lines = doctor(env, tmp_path)
    finally:
        entra_control.post("/consent", json={"app_roles": consented}).raise_for_status()
    assert code == 1
    assert line(lines, "Graph permissions").startswith(
        "FAIL  Graph permissions: the app's token also carries User.RevokeSessions.All, which resetbot never uses")
    assert_ok_except(lines, "Graph permissions")


def test_canary_in_agent_mode_checks_the_service_identity(env: dict[str, str], tmp_path: Path) -> None:
    env["RESETBOT_CANARY_UPN"] = lab_person("canary").upn
    env["RESETBOT_SERVICE_IDENTITY_UPN"] = lab_person("hedy").upn
    code, lines = doctor(env, tmp_path)
    assert code == 1
    assert line(lines, "Entra reset role").startswith(
        f"ok    Entra reset role: the service identity {lab_person('hedy').upn} (the canary is reset as it) holds "
        "Password Administrator")
    assert "is not linked, yet the canary is reset as it" in line(lines, "service identity link")
    assert_ok_except(lines, "service identity link")


def test_service_identity_without_a_token_cache_key(env: dict[str, str], tmp_path: Path) -> None:
    del env["RESETBOT_TOKEN_CACHE_KEY"]
    code, lines = doctor(service_env(env, "gina"), tmp_path)
    assert code == 1
    assert "RESETBOT_TOKEN_CACHE_KEY is not set" in line(lines, "settings")
    assert line(lines, "Entra reset role").startswith("ok    ")  # reading the role needs no key
    assert line(lines, "service identity link").startswith(
        f"FAIL  service identity link: {lab_person('gina').upn} is not linked")
    assert_ok_except(lines, "settings", "service identity link")


@pytest.fixture
def callback_listener(lab: Lab) -> Iterator[str]:
    """The Socket Mode callback listener with a certificate from the lab CA, as agents' browsers would reach it."""
    cert = lab.ca.issue_server_cert("doctor-callback", ips=("127.0.0.1",))
    listener = CallbackListener("127.0.0.1", 0, cert_file=cert.cert_file, key_file=cert.key_file,
                                finish=lambda query, **_: CallbackOutcome.INVALID)
    listener.start()
    try:
        yield f"https://127.0.0.1:{listener.address[1]}"
        with httpx.Client(verify=ssl.create_default_context(cafile=str(lab.ca.ca_file)), trust_env=False) as c:
            assert c.get(f"https://127.0.0.1:{listener.address[1]}/healthz").text == "ok\n"
    finally:
        listener.stop(timeout=5)


def test_the_sign_in_callback_is_checked_with_the_systems_trust(lab: Lab, env: dict[str, str], tmp_path: Path,
                                                                callback_listener: str) -> None:
    code, lines = doctor(env, tmp_path)
    assert code == 0 and line(lines, "sign-in callback") == (
        "skip  sign-in callback: RESETBOT_SIGNIN is device: agents link with a sign-in code, no callback is served")
    cert_dir = tmp_path / "callback"
    cert_dir.mkdir()
    env = {**env, "RESETBOT_SIGNIN": "both", "RESETBOT_PUBLIC_URL": callback_listener,
           "RESETBOT_CALLBACK_CERT_FILE": str(cert_dir / "unused.pem"),
           "RESETBOT_CALLBACK_KEY_FILE": str(cert_dir / "unused.key")}
    redirect = f"{callback_listener}/auth/callback"
    code, lines = doctor(env, tmp_path)  # the lab CA is no CA the system trusts
    assert code == 1
    assert_ok_except(lines, "sign-in callback")
    shown = line(lines, "sign-in callback")
    assert "does not verify against the system's trust store" in shown and shown.endswith(
        f"The redirect URI to register is {redirect}")
    code, lines = doctor({**env, "SSL_CERT_FILE": str(lab.ca.ca_file)}, tmp_path)  # a CA the system trusts
    assert line(lines, "sign-in callback") == (
        f"ok    sign-in callback: {callback_listener.removeprefix('https://')} answers with a certificate the "
        f"system trusts; register the redirect URI {redirect} on the public client app (Authentication, Mobile "
        "and desktop applications)")
    code, lines = doctor({**env, "RESETBOT_SLACK_MODE": "http", "RESETBOT_SLACK_SIGNING_SECRET": "8f7422318888abcd9",
                          "RESETBOT_PUBLIC_URL": "https://127.0.0.1:1"}, tmp_path)
    assert "did not answer TLS" in line(lines, "sign-in callback") and line(lines, "sign-in callback").startswith(
        "FAIL")

"""What an operator sees of the real ``resetbot run`` (its own process, configured only by its environment):
JSON log lines at DEBUG that carry each request's correlation id and no secret, and the Prometheus endpoint."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from bot.domain.limits import Limit
from lab.demo import bot_environment
from lab.people import person
from lab.slack.driver import SlackDriver
from lab.stack import Lab
from tests.scenarios.harness import link_agent, wait_until
from tests.scenarios.test_request_approval import request_for, slack_id

SECRET_SETTINGS = ("RESETBOT_SLACK_BOT_TOKEN", "RESETBOT_SLACK_APP_TOKEN", "RESETBOT_ENTRA_CLIENT_SECRET",
                   "RESETBOT_TOKEN_CACHE_KEY", "RESETBOT_LDAP_PASSWORD", "RESETBOT_LDAP_UNLOCK_PASSWORD")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening_ports(pid: int) -> set[int]:
    """TCP ports the process ``pid`` listens on, from /proc: its socket inodes matched to LISTEN rows."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            cols = row.split()
            if cols[3] == "0A" and cols[9] in inodes:
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


@dataclass
class BotProcess:
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]
    database: Path
    metrics_port: int | None

    def lines(self) -> list[dict[str, Any]]:
        """Every line the bot wrote, each parsed as JSON (a line that is not JSON fails the test)."""
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def audit(self, request_ts: str) -> list[dict[str, Any]]:
        engine = create_engine(f"sqlite:///{self.database}")
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT a.action, a.correlation_id FROM audit_event a JOIN reset_request r ON a.request_id = r.id "
                "WHERE r.thread_ts = :ts ORDER BY a.seq"), {"ts": request_ts}).all()
        engine.dispose()
        return [{"action": r[0], "correlation_id": r[1]} for r in rows]

    def scrape(self) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
        body = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5, trust_env=False).text
        samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
        for family in text_string_to_metric_families(body):
            for s in family.samples:
                samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
        return samples


def start_bot(lab: Lab, driver: SlackDriver, folder: Path, **extra: str) -> BotProcess:
    database = folder / "resetbot.db"
    env = bot_environment(lab.descriptor, f"sqlite:///{database}")
    env.update(extra)
    log = folder / "bot.log"
    before = len([c for c in driver.connections() if c.get("ready")])
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=folder)
    port = int(extra["RESETBOT_METRICS_PORT"]) if "RESETBOT_METRICS_PORT" in extra else None
    try:
        driver.wait_connected(before + 1, timeout=60)
    except Exception:
        stop(process)
        raise AssertionError("the bot did not connect:\n" + log.read_text()[-3000:]) from None
    return BotProcess(process, log, env, database, port)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def bot_process(lab: Lab, driver: SlackDriver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotProcess]:
    folder = tmp_path_factory.mktemp("observed")
    bot = start_bot(lab, driver, folder, RESETBOT_LOG_FORMAT="json", RESETBOT_LOG_LEVEL="DEBUG",
                    RESETBOT_METRICS_PORT=str(free_port()), RESETBOT_METRICS_ADDRESS="127.0.0.1",
                    # the follow-up proving a reset landed comes a second after it, to be counted here
                    RESETBOT_SWEEP_SECONDS="1", RESETBOT_FOLLOWUP_LANDED_FIRST="1s",
                    # the module resets Alice more than once: one approval each time, as these stories count them
                    RESETBOT_LIMIT_REPEAT_HOURS="0")
    try:
        link_agent(lab, driver, "hank")
        yield bot
    finally:
        stop(bot.process)
        entra = lab.descriptor["entra"]
        with httpx.Client(verify=ssl.create_default_context(cafile=entra["ca_file"]), trust_env=False) as c:
            c.post(entra["control"] + "/reset", json={"history": True})
        admin = lab.ad.admin_connection()
        for key in ("alice", "bob"):
            p = person(key)
            assert admin.extend.microsoft.modify_password(p.dn, p.password)


@pytest.fixture
def entra_control(lab: Lab) -> Iterator[httpx.Client]:
    tls = ssl.create_default_context(cafile=lab.descriptor["entra"]["ca_file"])
    with httpx.Client(base_url=lab.descriptor["entra"]["control"], verify=tls, trust_env=False) as c:
        c.post("/faults", json={})
        yield c
        c.post("/reset")


def approve_and_wait(lab: Lab, driver: SlackDriver, key: str, reason: str, words: tuple[str, ...]) -> str:
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    request = request_for(lab, driver, key, reason)
    ts = str(request["ts"])
    driver.click("mona", helpdesk, ts, "request_approve")
    driver.wait_for_message(helpdesk, lambda m: any(w in m["text"] for w in words), thread_ts=ts, timeout=60)
    return ts


def test_json_logs_carry_each_requests_id_and_no_secret(lab: Lab, driver: SlackDriver, bot_process: BotProcess,
                                                        entra_control: httpx.Client) -> None:
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    # A good reset, revealed: the password the bot made is what Hank reads in the modal.
    ts = approve_and_wait(lab, driver, "alice", "observed reset", ("Done:",))
    reveal = driver.wait_for_message(helpdesk, lambda m: "sealed" in m["text"], thread_ts=ts)
    driver.click("hank", helpdesk, reveal["ts"], "reset_reveal")
    modal = driver.wait_for_view("hank", lambda v: v.get("callback_id") == "reveal_password")
    password = str(modal["blocks"][1]["text"]["text"]).strip("`")
    driver.wait_for_message(helpdesk, lambda m: "revealed the temporary password" in m["text"], thread_ts=ts)
    # A reset the domain's filter refuses (its password is never shown to anyone).
    lab.ad.refuse_next_passwords(1)
    approve_and_wait(lab, driver, "bob", "observed refusal", ("refused",))
    # A forced error: Graph fails while the request is made; the agent gets one sentence with a reference.
    entra_control.post("/faults", json={"fail_next_5xx": 20})
    driver.command("hank", "/reset", f"<@{slack_id(lab, 'alice')}|alice> graph is down", channel=helpdesk)
    said = driver.wait_for_ephemeral("hank", lambda e: "reference" in e["text"], timeout=30)
    entra_control.post("/faults", json={})
    ref = re.search(r"reference (c-[0-9a-f]{10})", said["text"])
    assert ref, said["text"]

    def error_logged() -> list[dict[str, Any]]:
        return [ln for ln in bot_process.lines() if ln.get("logger") == "resetbot.errors"]

    errors = wait_until(error_logged, what="the error's log line")
    lines = bot_process.lines()  # every line is JSON, or this fails
    assert {ln["correlation_id"] for ln in errors} == {ref.group(1)}
    assert "Traceback" in errors[0]["exception"] and errors[0]["level"] == "ERROR"
    # The reset ran in a listener thread after the approval, under the approval's id, as the audit says.
    started = next(a for a in bot_process.audit(ts) if a["action"] == "reset_started")
    graph_calls = [ln for ln in lines if ln.get("correlation_id") == started["correlation_id"]
                   and "resetPassword" in ln["message"]]
    assert graph_calls, "the reset's Graph call is logged under the approval's correlation id"
    assert all(ln["correlation_id"] for ln in lines if "resetPassword" in ln["message"])
    # Nothing secret in any of it: the password, every secret setting, any access token.
    everything = bot_process.log.read_text()
    assert len(password) >= 16 and password not in everything
    for name in SECRET_SETTINGS:
        assert bot_process.env[name] not in everything, f"{name} reached the log"
    assert not re.search(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ", everything), "an access token reached the log"
    assert any(ln["level"] == "DEBUG" for ln in lines)


def test_metrics_move_with_a_reset_and_a_denial(lab: Lab, driver: SlackDriver, bot_process: BotProcess) -> None:
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    before = bot_process.scrape()
    reset_ts = approve_and_wait(lab, driver, "alice", "counted reset", ("Done:",))
    driver.wait_for_message(helpdesk, lambda m: "Confirmed on-premises" in m["text"], thread_ts=reset_ts, timeout=30)
    request = request_for(lab, driver, "bob", "counted denial")
    driver.click("mona", helpdesk, str(request["ts"]), "request_deny")
    modal = driver.wait_for_view("mona", lambda v: v.get("callback_id") == "deny_reason" and bool(v.get("open")))
    driver.submit("mona", modal["id"], {"deny_reason_input": "Call her manager first, please"})
    driver.wait_for_message(helpdesk, lambda m: "Denied by" in m["text"], thread_ts=str(request["ts"]))

    def moved() -> dict[str, dict[tuple[tuple[str, str], ...], float]] | None:
        after = bot_process.scrape()
        done = after["resetbot_requests_total"][(("outcome", "denied"),)] > \
            before["resetbot_requests_total"][(("outcome", "denied"),)]
        return after if done else None

    after = wait_until(moved, what="the denial to be counted")

    def delta(name: str, **labels: str) -> float:
        key = tuple(sorted(labels.items()))
        return float(after[name].get(key, 0.0) - before[name].get(key, 0.0))

    assert delta("resetbot_requests_total", outcome="succeeded") == 1
    # Each abuse limit has its series from the first scrape, and none applied to these two ordinary requests.
    assert sorted(after["resetbot_limits_total"]) == sorted((("limit", lim.value),) for lim in Limit)
    assert all(delta("resetbot_limits_total", limit=lim.value) == 0 for lim in Limit)
    assert delta("resetbot_requests_total", outcome="denied") == 1
    assert delta("resetbot_requests_total", outcome="failed") == 0
    assert delta("resetbot_verdicts_total", verdict="succeeded") == 1
    assert delta("resetbot_approval_latency_seconds_count") == 1
    assert delta("resetbot_reset_latency_seconds_count") == 1
    assert delta("resetbot_reset_latency_seconds_sum") > 0
    assert delta("resetbot_reset_latency_seconds_bucket", le="+Inf") == 1
    assert delta("resetbot_followups_total", check="landed", outcome="landed") == 1
    # The health round at start was stored, and every check of it is on the gauge.
    health = after["resetbot_health_ok"]
    assert health[(("check", "ldap"),)] == 1 and health[(("check", "graph_token"),)] == 1
    assert bot_process.metrics_port in listening_ports(bot_process.process.pid)


def test_without_a_metrics_port_nothing_listens(lab: Lab, driver: SlackDriver, bot_process: BotProcess,
                                                tmp_path: Path) -> None:
    quiet = start_bot(lab, driver, tmp_path)
    try:
        assert listening_ports(quiet.process.pid) == set()
        assert "metrics served" not in quiet.log.read_text()
        assert quiet.log.read_text().strip(), "text logs by default"
    finally:
        stop(quiet.process)

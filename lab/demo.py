"""A scripted helpdesk morning on the lab: the README's main command.

Brings the lab up, starts the real bot (``resetbot run``, its own process, configured only through its
environment as in production) against it, and plays four stories through the lab's Slack driver as the
people would: a good reset whose caller is verified by a Duo push, a reset whose caller reads back a Slack code
and the domain's password filter refuses, a denied request, a protected account, and an impostor whose Duo push
the real person reports as fraud. Each thread is printed as people see it; then everything is taken down.
"""

from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

from lab.slack.driver import SlackDriver
from lab.stack import Lab

_CODE = re.compile(r"code \*([A-Z0-9-]+)\*")
#: The demo as the product ships: no reset until the caller is verified.
DEMO_OVERRIDES = {"RESETBOT_VERIFY_REQUIRED": "true"}


def bot_environment(descriptor: dict[str, Any], database_url: str) -> dict[str, str]:
    """The bot's settings for this lab, as environment variables (what an operator would put in .env)."""
    slack, entra, ad, duo = descriptor["slack"], descriptor["entra"], descriptor["ad"], descriptor["duo"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESETBOT_")}
    env.update({
        "RESETBOT_SLACK_BOT_TOKEN": slack["bot_token"], "RESETBOT_SLACK_APP_TOKEN": slack["app_token"],
        "RESETBOT_SLACK_API_BASE": slack["api_base"], "RESETBOT_REQUESTS_CHANNEL": slack["channels"]["helpdesk"],
        "RESETBOT_SECURITY_CHANNEL": slack["channels"]["security"], "RESETBOT_OPS_CHANNEL": slack["channels"]["ops"],
        "RESETBOT_DATABASE_URL": database_url,
        "RESETBOT_ENTRA_AUTHORITY": entra["authority"], "RESETBOT_GRAPH_BASE": entra["graph_base"],
        "RESETBOT_ENTRA_CLIENT_ID": entra["app"]["client_id"],
        "RESETBOT_ENTRA_CLIENT_SECRET": entra["app"]["client_secret"],
        "RESETBOT_ENTRA_PUBLIC_CLIENT_ID": entra["public_client_id"], "RESETBOT_ENTRA_CA_FILE": entra["ca_file"],
        "RESETBOT_TOKEN_CACHE_KEY": Fernet.generate_key().decode(),
        "RESETBOT_SEALING_KEY": Fernet.generate_key().decode(),
        "RESETBOT_LDAP_URL": ad["ldaps_url"], "RESETBOT_LDAP_BIND": ad["reader"]["bind"],
        "RESETBOT_LDAP_PASSWORD": ad["reader"]["password"], "RESETBOT_LDAP_BASE_DN": ad["base_dn"],
        "RESETBOT_LDAP_CA_FILE": ad["ca_file"],
        "RESETBOT_LDAP_UNLOCK_BIND": ad["writeback"]["bind"],
        "RESETBOT_LDAP_UNLOCK_PASSWORD": ad["writeback"]["password"],
        # Every verification method, Duo's through the lab's Duo (changed from a real one only in host and CA).
        # Not required here: the scripted stories of `up --bot` callers (benchmarks, tests) approve and expect a
        # reset; the demo requires it (DEMO_OVERRIDES), as the product's default does.
        "RESETBOT_VERIFY_REQUIRED": "false",
        "RESETBOT_VERIFY_METHODS": "slack-code,duo-push,slack-confirm,callback",
        "RESETBOT_DUO_API_HOST": duo["api_host"], "RESETBOT_DUO_INTEGRATION_KEY": duo["integration_key"],
        "RESETBOT_DUO_SECRET_KEY": duo["secret_key"], "RESETBOT_DUO_CA_FILE": duo["ca_file"],
    })
    return env


class Morning:
    def __init__(self, lab: Lab, driver: SlackDriver) -> None:
        self.lab = lab
        self.driver = driver
        d = lab.descriptor
        self.helpdesk = d["slack"]["channels"]["helpdesk"]
        self.names = {p["slack_id"]: p["display_name"] for p in d["people"] if p["slack_id"]}
        self.names[d["slack"]["bot_user_id"]] = "resetbot"
        self.ids = {p["key"]: p["slack_id"] for p in d["people"]}

    def say(self, who: str, text: str) -> None:
        print(f"\n>>> {self.names[self.ids[who]]} types: {text}", flush=True)

    def show(self, text: str) -> str:
        text = re.sub(r"<!subteam\^\w+\|(@[\w.-]+)>", r"\1", text)
        return re.sub(r"<@(\w+)>", lambda m: "@" + str(self.names.get(m.group(1)) or m.group(1)), text)

    def print_thread(self, title: str, ts: str) -> None:
        print(f"\n--- #helpdesk thread: {title}")
        for m in self.driver.messages(self.helpdesk, thread_ts=ts):
            lines = [self.show(b["text"]["text"]) for b in m["blocks"] if b.get("type") == "section"] or \
                [self.show(m["text"])]
            who = self.names.get(m["user"], m["user"])
            print(f"  [{who}] " + "\n      ".join("\n".join(lines).splitlines()))

    def wait(self, probe: Callable[[], Any], what: str, timeout: float = 60) -> Any:
        return self.driver.wait_for(probe, timeout=timeout, what=what)

    def link(self, who: str) -> None:
        self.say(who, "/resetbot login")
        self.driver.command(who, "/resetbot", "login", channel=self.helpdesk)
        dm = self.driver.dm_channel(who)
        code_dm = self.driver.wait_for_message(dm, lambda m: bool(_CODE.search(m["text"])), timeout=30)
        code = _CODE.search(code_dm["text"])
        assert code is not None
        print(f"    (DM to {who}: {self.show(code_dm['text'])[:140]}...)")
        upn = next(p["upn"] for p in self.lab.descriptor["people"] if p["key"] == who)
        entra = self.lab.descriptor["entra"]
        with httpx.Client(verify=ssl.create_default_context(cafile=entra["ca_file"]), trust_env=False) as client:
            client.post(entra["control"] + "/device/approve", json={"user_code": code.group(1), "upn": upn})
        linked = self.driver.wait_for_message(dm, lambda m: "linked" in m["text"].lower()
                                              and m["ts"] != code_dm["ts"], timeout=60)
        print(f"    (DM to {who}: {self.show(linked['text'])})")

    def request(self, who: str, target: str, reason: str, flags: str = "") -> dict[str, Any]:
        text = f"<@{self.ids[target]}|{target}> {reason} {flags}".strip()
        self.say(who, f"/reset @{target} {reason} {flags}".strip())
        self.driver.command(who, "/reset", text, channel=self.helpdesk)
        return dict(self.driver.wait_for_message(self.helpdesk, lambda m: reason in str(m["blocks"]), timeout=30))

    def verdict(self, ts: str, words: tuple[str, ...]) -> None:
        self.driver.wait_for_message(self.helpdesk, lambda m: any(w in m["text"] for w in words), thread_ts=ts,
                                     timeout=60)

    def duo_answers(self, who: str, result: str) -> None:
        """How ``who``'s phone will answer the next Duo push (the lab's Duo control API)."""
        duo = self.lab.descriptor["duo"]
        with httpx.Client(verify=ssl.create_default_context(cafile=duo["ca_file"]), trust_env=False) as client:
            client.post(duo["control"] + "/answer", json={"username": who, "result": result, "delay_ms": 1500})

    def click_verify(self, who: str, request: dict[str, Any], method: str) -> None:
        rid = re.search(r"R-[0-9A-Z]{6}", str(request["blocks"]))
        assert rid is not None
        self.driver.click(who, self.helpdesk, request["ts"], f"caller_verify_{method.replace('-', '_')}",
                          value=f"{rid.group(0)}|{method}", stale_ok=True)

    def in_thread(self, ts: str, words: str, timeout: float = 60) -> dict[str, Any]:
        return dict(self.driver.wait_for_message(self.helpdesk, lambda m: words in m["text"], thread_ts=ts,
                                                 timeout=timeout))

    def play(self) -> None:
        print("\n=== A helpdesk morning (every message below is what people see in Slack) ===")
        self.link("hank")
        self.good_reset()
        self.code_and_policy_refusal()
        self.denied_and_protected()
        self.impostor()

    def good_reset(self) -> None:
        request = self.request("hank", "alice", "forgot her password after the holidays")
        print(">>> Hank clicks 'Verify caller: Duo push'; Alice approves the push on her phone")
        self.duo_answers("alice", "allow")
        self.click_verify("hank", request, "duo-push")
        self.in_thread(request["ts"], "Caller verified by Duo push")
        print(">>> Mona Manning (her manager) sees 'Caller verified by Duo push' and clicks Approve")
        self.driver.click("mona", self.helpdesk, request["ts"], "request_approve", stale_ok=True)
        self.verdict(request["ts"], ("Done", "refused", "did not complete"))
        reveal = self.driver.wait_for_message(self.helpdesk, lambda m: "sealed" in m["text"], thread_ts=request["ts"])
        print(">>> Hank clicks Reveal (the password opens in a modal only he sees; it is not printed here)")
        self.driver.click("hank", self.helpdesk, reveal["ts"], "reset_reveal")
        self.driver.wait_for_message(self.helpdesk, lambda m: "revealed" in m["text"], thread_ts=request["ts"])
        print(">>> (a few seconds later resetbot reads Alice's account in AD itself: did the reset land on-prem?)")
        self.driver.wait_for_message(self.helpdesk, lambda m: "Confirmed on-premises" in m["text"],
                                     thread_ts=request["ts"], timeout=60)
        self.print_thread("a good reset", request["ts"])

    def code_and_policy_refusal(self) -> None:
        self.lab.ad.refuse_next_passwords(1)
        request = self.request("hank", "bob", "locked out of the VPN")
        print(">>> Mona Manning clicks Approve (the domain's password filter is set to refuse the next password)")
        self.driver.click("mona", self.helpdesk, request["ts"], "request_approve")
        self.in_thread(request["ts"], "waiting for the caller to be verified")
        print(">>> Hank clicks 'Verify caller: Slack code'; Bob reads the code from his Slack DM over the phone")
        self.click_verify("hank", request, "slack-code")
        code_dm = self.driver.wait_for_message(self.driver.dm_channel("bob"), lambda m: "read them this code"
                                               in m["text"], timeout=30)
        code = re.search(r"code: \*([A-Z0-9]+)\*", code_dm["text"])
        assert code is not None
        print("    (DM to bob: a one-time code; not printed here)")
        prompt = self.in_thread(request["ts"], "press *Enter code*")
        before = len(self.driver.views("hank"))
        self.driver.click("hank", self.helpdesk, prompt["ts"], "caller_enter_code",
                          value=re.sub(r".*\((R-[0-9A-Z]{6})\).*", r"\1", code_dm["text"].splitlines()[0]))
        modal = self.wait(lambda: next((v for v in self.driver.views("hank")[before:]
                                        if v.get("callback_id") == "verify_code"), None), "the code modal")
        self.driver.submit("hank", modal["id"], {"verify_code_input": code.group(1)})
        self.verdict(request["ts"], ("refused", "Done", "did not complete"))
        self.print_thread("a verified caller, and a policy refusal", request["ts"])

    def denied_and_protected(self) -> None:
        request = self.request("hank", "alice", "says she needs it again")
        print(">>> Mona Manning clicks Deny and gives a reason")
        self.driver.click("mona", self.helpdesk, request["ts"], "request_deny")
        modal = self.driver.wait_for_view("mona", lambda v: v.get("callback_id") == "deny_reason" and
                                          bool(v.get("open")))
        self.driver.submit("mona", modal["id"], {"deny_reason_input": "Already reset this morning; call her first"})
        self.verdict(request["ts"], ("Denied by",))
        self.print_thread("a denied request", request["ts"])

        self.say("hank", "/reset @paula lost her security key")
        self.driver.command("hank", "/reset", f"<@{self.ids['paula']}|paula> lost her security key",
                            channel=self.helpdesk)
        refused = self.driver.wait_for_ephemeral("hank", lambda e: "protected" in e["text"], timeout=30)
        print(f"\n--- only Hank sees: {self.show(refused['text'])}")

    def impostor(self) -> None:
        self.duo_answers("larry", "fraud")
        request = self.request("hank", "larry", "new phone, cannot sign in", flags="--unlock --verify duo-push")
        print(">>> The caller is not Larry: the real Larry gets the Duo push and reports it as fraud")
        self.in_thread(request["ts"], "reported the Duo push as fraud")
        alert = self.driver.wait_for_message(self.lab.descriptor["slack"]["channels"]["security"],
                                             lambda m: "as fraud" in m["text"], timeout=30)
        self.print_thread("an impostor", request["ts"])
        print(f"\n--- #security: {self.show(alert['text'])}")


class BotExitedError(RuntimeError):
    """The bot stopped by itself while starting (its log says why)."""


class BotProcess:
    """The real bot (``resetbot run``, its own process) on a running lab, configured only through its environment
    as in production: the demo's settings, then ``overrides``. Its output goes to ``log_path``. Leaving the ``with``
    block stops it as systemd would (SIGTERM, then SIGKILL after the drain), so no process is left behind."""

    def __init__(self, lab: Lab, state_dir: Path, *, overrides: dict[str, str] | None = None) -> None:
        self.env = bot_environment(lab.descriptor, f"sqlite:///{state_dir.resolve() / 'bot.db'}")
        # The follow-up that proves the reset landed in AD comes seconds after it, not the production 15 s.
        self.env |= {"RESETBOT_SWEEP_SECONDS": "1", "RESETBOT_FOLLOWUP_LANDED_FIRST": "2s"}
        self.env |= overrides or {}
        self.control = lab.descriptor["slack"]["control"]
        self.log_path = state_dir.resolve() / "bot.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> BotProcess:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            with SlackDriver(self.control) as driver:
                driver.wait_for(self._connected_or_exited(driver), timeout=60, what="the bot's Socket Mode connection")
        except BaseException:
            self.stop()
            raise
        if (status := self.exited()) is not None:
            raise BotExitedError(f"resetbot run exited with status {status} before it connected; see {self.log_path}")
        return self

    def _connected_or_exited(self, driver: SlackDriver) -> Callable[[], bool | None]:
        """A probe that answers as soon as the bot is connected or has given up (a refused setting exits at once:
        no point waiting a minute for it)."""
        def probe() -> bool | None:
            return True if self.exited() is not None or any(c.get("ready") for c in driver.connections()) else None
        return probe

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def exited(self) -> int | None:
        """The bot's exit status once it has stopped by itself (a refused setting, a crash), else None."""
        return None if self.proc is None else self.proc.poll()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def demo(state_dir: Path) -> int:
    state_dir.mkdir(parents=True, exist_ok=True)
    with Lab(state_dir) as lab, BotProcess(lab, state_dir, overrides=DEMO_OVERRIDES) as bot:
        with SlackDriver(lab.descriptor["slack"]["control"]) as driver:
            Morning(lab, driver).play()
        print(f"\nDone. The bot's log is in {bot.log_path}.")
        return 0

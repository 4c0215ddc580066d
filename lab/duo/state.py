"""What the Duo stand-in knows: the integration's keys, who is enrolled with which phone, the pushes sent and how
each will be answered."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from lab.people import Person

Answer = Literal["allow", "deny", "fraud", "timeout", "bypass"]
ANSWERS: tuple[Answer, ...] = ("allow", "deny", "fraud", "timeout", "bypass")

#: How long the phone "takes" to answer a push nobody told the control API about.
DEFAULT_ANSWER_DELAY_S = 0.3
#: How long auth_status holds a request open while the push is still waiting (Duo long-polls it).
LONG_POLL_S = 5.0

#: Duo's auth_status answers, by how the push ended: (result, status, status_msg).
OUTCOMES: dict[Answer, tuple[str, str, str]] = {
    "allow": ("allow", "allow", "Success. Logging you in..."),
    "deny": ("deny", "deny", "Login request denied."),
    "fraud": ("deny", "fraud", "Login request reported as fraudulent."),
    "timeout": ("deny", "timeout", "Login timed out."),
    # An administrator put the person in Duo's "bypass" status (or a policy lets them in without Duo): Duo answers
    # "allow" without anyone having touched the phone.
    "bypass": ("allow", "bypass", "Bypassing Duo authentication."),
}
WAITING = ("waiting", "pushed", "Pushed a login request to your device...")


@dataclass(frozen=True)
class Device:
    device: str
    number: str
    name: str = "iPhone"
    type: str = "phone"
    capabilities: tuple[str, ...] = ("auto", "push", "sms", "phone", "mobile_otp")

    def wire(self) -> dict[str, Any]:
        return {"device": self.device, "type": self.type, "number": self.number, "name": self.name,
                "display_name": f"{self.name} ({self.number})", "capabilities": list(self.capabilities)}


def device_for(p: Person) -> Device:
    """A stable Duo device id (20 upper-case characters, like Duo's) and the masked number Duo shows."""
    digest = hashlib.sha256(f"duo-device:{p.key}".encode()).hexdigest().upper()
    number = p.mobile_phone or (p.business_phones[0] if p.business_phones else "")
    return Device(device=("D" + digest)[:20], number=f"XXX-XXX-{number[-4:]}" if number else "")


@dataclass
class Push:
    txid: str
    username: str
    device: str
    type: str | None
    pushinfo: str | None
    display_username: str | None
    created: float
    decided: asyncio.Event = field(default_factory=asyncio.Event)
    answer: Answer | None = None

    def outcome(self) -> tuple[str, str, str]:
        return OUTCOMES[self.answer] if self.answer is not None else WAITING

    def wire(self) -> dict[str, Any]:
        result, status, _ = self.outcome()
        return {"txid": self.txid, "username": self.username, "device": self.device, "type": self.type,
                "pushinfo": self.pushinfo, "display_username": self.display_username, "result": result,
                "status": status, "created": self.created}


@dataclass
class DuoState:
    api_host: str
    port: int
    integration_key: str = field(default_factory=lambda: "DI" + secrets.token_hex(9).upper())
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(30))
    enrolled: dict[str, Device] = field(default_factory=dict)
    #: Everyone the people fixture enrols, so that the control API can give back a phone it took away.
    fixture_devices: dict[str, Device] = field(default_factory=dict)
    answers: dict[str, deque[tuple[Answer, float]]] = field(default_factory=dict)
    pushes: dict[str, Push] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @classmethod
    def from_people(cls, people: tuple[Person, ...], *, api_host: str, port: int) -> DuoState:
        state = cls(api_host=api_host, port=port)
        state.fixture_devices = {p.duo_username: device_for(p) for p in people if p.duo_username}
        state.enrolled = dict(state.fixture_devices)
        return state

    def next_answer(self, username: str) -> tuple[Answer, float]:
        queue = self.answers.get(username)
        return queue.popleft() if queue else ("allow", DEFAULT_ANSWER_DELAY_S)

    def start_push(self, username: str, device: str, *, type_: str | None, pushinfo: str | None,
                   display_username: str | None) -> Push:
        push = Push(txid=secrets.token_hex(16), username=username, device=device, type=type_, pushinfo=pushinfo,
                    display_username=display_username, created=time.time())
        self.pushes[push.txid] = push
        answer, delay = self.next_answer(username)
        task = asyncio.get_running_loop().create_task(self._answer_later(push, answer, delay))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return push

    def press(self, username: str, answer: Answer) -> Push | None:
        """The person answers their oldest push still waiting, now, whatever was queued for it (a push is answered
        once, as on Duo's app: the queued answer then changes nothing). None when no push of theirs waits."""
        push = next((p for p in self.pushes.values() if p.username == username and p.answer is None), None)
        if push is not None:
            push.answer = answer
            push.decided.set()
        return push

    @staticmethod
    async def _answer_later(push: Push, answer: Answer, delay: float) -> None:
        await asyncio.sleep(delay)
        if push.answer is None:  # not answered meanwhile through ``press``
            push.answer = answer
            push.decided.set()

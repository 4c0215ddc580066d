"""The whole lab as one object: bring every stand-in up, write the descriptor, take it all down.

Tests start it in-process (one per test run); the ``resetbot-lab`` command wraps it for people.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from types import TracebackType
from typing import Any

from lab.ad.dc import LabAD
from lab.duo import DuoStandIn
from lab.entra import EntraStandIn
from lab.entra.config import DEVICE_CODE_INTERVAL_S
from lab.people import PEOPLE, Person
from lab.pki import LabCA
from lab.slack.server import SlackStandIn

log = logging.getLogger(__name__)

DESCRIPTOR_NAME = "lab.json"


def person_entry(p: Person, *, slack_id: str | None) -> dict[str, Any]:
    """One person as LAB.md describes it."""
    return {
        "key": p.key,
        "display_name": p.display_name,
        "upn": p.upn,
        "mail": p.mail,
        "sam": None if p.has("cloud_only") else p.sam,
        "dn": p.dn,
        "slack_id": slack_id,
        "slack_mail": (p.slack_mail or p.mail) if slack_id else None,
        "entra_id": p.entra_id,
        "manager": p.manager,
        "groups": list(p.groups),
        "entra_roles": list(p.entra_roles),
        "password": p.password,
        "flags": list(p.flags),
        "duo": p.duo_username,
        "phones": list(p.phones),
    }


class Lab:
    """AD (Samba) + Entra ID/Graph stand-in (writing back into that AD) + Slack stand-in + Duo Auth API stand-in,
    sharing one CA and one state folder.

    ``device_code_interval_s``: the polling interval the Entra stand-in announces to device-code sign-ins (and
    enforces with slow_down). Microsoft's 5 s by default, as the demo shows it; a test run, which links an agent
    for every module, passes 1 so that each sign-in waits one second instead of five.
    """

    def __init__(self, state_dir: Path, *, cache_dir: Path | None = None,
                 device_code_interval_s: int = DEVICE_CODE_INTERVAL_S) -> None:
        self.device_code_interval_s = device_code_interval_s
        self.state_dir = state_dir.resolve()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.ca = LabCA(self.state_dir / "pki")
        self.ad = LabAD(self.state_dir, self.ca, cache_dir=cache_dir)
        self.slack = SlackStandIn(ca=self.ca)
        self.duo = DuoStandIn(self.ca)
        self.entra: EntraStandIn | None = None
        self.descriptor: dict[str, Any] = {}

    @property
    def descriptor_path(self) -> Path:
        return self.state_dir / DESCRIPTOR_NAME

    def start(self) -> dict[str, Any]:
        try:
            self.ad.start()
            # Entra first syncs from AD (objectSid, objectGUID, pwdLastSet), so it comes up after it.
            self.entra = EntraStandIn(self.ad.descriptor(), self.ca,
                                      device_code_interval_s=self.device_code_interval_s)
            self.entra.start()
            self.slack.start()
            self.duo.start()
        except BaseException:
            self.stop()
            raise
        slack_ids = self.slack.slack_ids()
        self.descriptor = {
            "ad": self.ad.descriptor(),
            "entra": self.entra.descriptor(),
            "slack": self.slack.descriptor(),
            "duo": self.duo.descriptor(),
            "people": [person_entry(p, slack_id=slack_ids.get(p.key)) for p in PEOPLE],
        }
        # The descriptor holds lab credentials: readable by the owner only.
        fd = os.open(self.descriptor_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self.descriptor, f, indent=2)
        return self.descriptor

    def stop(self) -> None:
        parts = [("Duo stand-in", self.duo.stop), ("Slack stand-in", self.slack.stop), ("Samba AD DC", self.ad.stop)]
        if self.entra is not None:
            parts.insert(2, ("Entra stand-in", self.entra.stop))
        for part, stop in parts:
            try:
                stop()
            except Exception:
                log.exception("stopping the lab's %s failed", part)

    def __enter__(self) -> Lab:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

"""The faults a test switches on through ``POST /faults``, and the scopes the installed app is granted.

Rate limits, planned failures, methods down, lost acks, shorter timeouts, revoked scopes and forged HTTP
signatures: the stand-in misbehaves only when a test asks it to, and the Web API, Socket Mode hub and HTTP
delivery all read the same switches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from .blocks import JSON

#: Slack keeps a trigger_id valid for 3 seconds.
TRIGGER_TTL_S = 3.0
#: Slack waits 3 seconds for a Socket Mode ack.
ACK_TIMEOUT_S = 3.0

#: The app manifest at the repository root: the lab installs the app with exactly the scopes it asks for.
MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yml"


@cache
def manifest_bot_scopes() -> tuple[str, ...]:
    """The bot scopes manifest.yml asks for: what Slack grants the bot token when the app is installed."""
    data = yaml.safe_load(MANIFEST.read_text())
    return tuple(str(s) for s in data["oauth_config"]["scopes"]["bot"])


@dataclass
class FailRule:
    method: str
    status: int = 200
    error: str = "internal_error"
    count: int = 1


@dataclass
class Faults:
    """Switches a test flips through ``POST /faults``; ``Workspace.reset()`` puts them back."""

    rate_limit: bool = False
    fail_next: list[FailRule] = field(default_factory=list)
    drop_acks: bool = False
    ack_timeout_s: float = ACK_TIMEOUT_S
    trigger_ttl_s: float = TRIGGER_TTL_S
    #: Bot scopes taken away from the installed app (as if an admin had re-installed it with fewer).
    revoked_scopes: list[str] = field(default_factory=list)
    #: HTTP delivery: ``ok`` signs as Slack does; ``unsigned``, ``wrong_secret`` and ``stale`` send forgeries.
    http_signing: str = "ok"
    #: Web API methods that answer HTTP 503 ``service_unavailable`` until taken off the list (``*``: every
    #: method): Slack down for as long as a test needs, however often the app retries meanwhile.
    down: list[str] = field(default_factory=list)
    #: *(workspace setting)* who may create and change user groups: ``everyone`` (Slack's default) or ``admins``.
    usergroup_editors: str = "everyone"

    def is_down(self, method: str) -> bool:
        return method in self.down or "*" in self.down

    def granted_scopes(self) -> list[str]:
        """What the bot token carries: the manifest's bot scopes less the revoked ones."""
        return [s for s in manifest_bot_scopes() if s not in self.revoked_scopes]

    def to_json(self) -> JSON:
        return {"rate_limit": self.rate_limit, "drop_acks": self.drop_acks, "ack_timeout_s": self.ack_timeout_s,
                "trigger_ttl_s": self.trigger_ttl_s, "revoked_scopes": list(self.revoked_scopes),
                "granted_scopes": self.granted_scopes(), "http_signing": self.http_signing, "down": list(self.down),
                "usergroup_editors": self.usergroup_editors,
                "fail_next": [{"method": r.method, "status": r.status, "error": r.error, "count": r.count}
                              for r in self.fail_next]}

    def take_failure(self, method: str) -> FailRule | None:
        """Consume one planned failure of ``method``, if any is left."""
        for rule in self.fail_next:
            if rule.method == method and rule.count > 0:
                rule.count -= 1
                if rule.count == 0:
                    self.fail_next.remove(rule)
                return rule
        return None

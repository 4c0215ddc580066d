"""Which Slack address belongs to which Entra account (issue 14, item 3): the UPN, and the mail only when the
setting says so. Small stand-ins for Graph's user lookup and Slack's, answering as those do (Graph's filter
matches mail or UPN, case aside; Slack's lookup by email ignores case); the lab tests show it end to end."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from bot.clients.directory import Directory
from bot.clients.slack_notify import Notifier
from bot.domain.parse import TargetKind, TargetRef
from bot.services.resolve import EntraDirectory, ResolveFailure, ResolveProblem, Target, TargetResolver


@dataclass(frozen=True)
class User:
    id: str
    user_principal_name: str
    mail: str | None
    display_name: str = ""
    account_enabled: bool | None = True
    on_premises_sync_enabled: bool | None = False
    on_premises_sam_account_name: str | None = None
    on_premises_distinguished_name: str | None = None


BOB = User("bob-id", "bob@corp.example", "zoe@chat.example")  # his mail was set to Zoe's Slack address
SLACK = {"U0ZOE": "zoe@chat.example", "U0BOB": "bob@corp.example"}


class Graph:
    def find_users(self, email_or_upn: str) -> Sequence[User]:
        v = email_or_upn.lower()
        return [u for u in (BOB,) if v in (u.user_principal_name.lower(), (u.mail or "").lower())]


class Slack:
    def email_of(self, user: str) -> str | None:
        return SLACK.get(user)

    def user_by_email(self, email: str) -> str | None:
        return next((uid for uid, e in SLACK.items() if e == email.lower()), None)


def resolver(*, accept_mail: bool) -> TargetResolver:
    return TargetResolver(graph=cast(EntraDirectory, Graph()), directory=cast(Directory, object()),
                          notifier=cast(Notifier, Slack()), accept_mail=accept_mail)


def test_by_default_only_the_upn_links_slack_and_entra() -> None:
    r = resolver(accept_mail=False)
    assert r.entra_id_of("U0ZOE") is None
    assert r.entra_id_of("U0BOB") == "bob-id"
    found: Any = r.resolve(TargetRef(TargetKind.SLACK_USER, "U0ZOE"))
    assert isinstance(found, ResolveProblem) and found.failure == ResolveFailure.SLACK_USER_NOT_MATCHED
    bob: Any = r.resolve(TargetRef(TargetKind.SLACK_USER, "U0BOB"))
    assert isinstance(bob, Target) and bob.slack_id == "U0BOB"


def test_with_mail_accepted_the_mail_links_them_too() -> None:
    r = resolver(accept_mail=True)
    found: Any = r.resolve(TargetRef(TargetKind.SLACK_USER, "U0ZOE"))
    assert isinstance(found, Target) and found.entra.id == "bob-id"
    assert r.entra_id_of("U0BOB") == "bob-id"
    assert r.entra_id_of("U0ZOE") == "bob-id"


class CountingGraph(Graph):
    def __init__(self) -> None:
        self.searches: list[str] = []

    def find_users(self, email_or_upn: str) -> Sequence[User]:
        self.searches.append(email_or_upn)
        return super().find_users(email_or_upn)


def test_a_found_identity_is_remembered_and_one_not_found_is_asked_again() -> None:
    """Every /reset asks who each agent and approver is: one Graph search per person a minute, not per request;
    someone not matched is searched again each time (they may have been fixed since)."""
    graph = CountingGraph()
    r = TargetResolver(graph=cast(EntraDirectory, graph), directory=cast(Directory, object()),
                       notifier=cast(Notifier, Slack()), accept_mail=False)
    assert [r.entra_id_of("U0BOB") for _ in range(3)] == ["bob-id"] * 3
    assert [r.entra_id_of("U0ZOE") for _ in range(2)] == [None, None]
    assert graph.searches == ["bob@corp.example", "zoe@chat.example", "zoe@chat.example"]

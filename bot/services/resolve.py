"""Who is meant: from what an agent typed to one person in Slack, Entra ID and AD.

Entra ID is the source of truth for identity (the reset happens there); AD is where the account must exist
for writeback; Slack is matched by email, the one key all three share. Matching by email can miss (a Slack
profile with an alias or another domain's address), so people are *compared* by Entra object id
(:meth:`TargetResolver.entra_id_of`), and a miss is reported as None for the caller to fail closed on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from bot.clients.directory import Directory, DirectoryUser
from bot.clients.slack_notify import Notifier
from bot.domain.parse import TargetKind, TargetRef

MAX_CANDIDATES = 5


class EntraUser(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def user_principal_name(self) -> str: ...
    @property
    def mail(self) -> str | None: ...
    @property
    def display_name(self) -> str: ...
    @property
    def account_enabled(self) -> bool | None: ...
    @property
    def on_premises_sync_enabled(self) -> bool | None: ...
    @property
    def on_premises_sam_account_name(self) -> str | None: ...
    @property
    def on_premises_distinguished_name(self) -> str | None: ...


class EntraDirectory(Protocol):
    """The Graph reads resolution needs (bot.clients.graph.GraphClient provides them)."""

    def get_user(self, id_or_upn: str) -> EntraUser | None: ...
    def find_users(self, email_or_upn: str) -> Sequence[EntraUser]: ...
    def search_users(self, name: str, limit: int = 10) -> Sequence[EntraUser]: ...
    def manager_of(self, user_id: str) -> EntraUser | None: ...
    def directory_roles_of(self, user_id: str) -> Sequence[str]: ...


@dataclass(frozen=True)
class Target:
    entra: EntraUser
    ad: DirectoryUser | None
    slack_id: str | None

    @property
    def name(self) -> str:
        return self.entra.display_name or self.entra.user_principal_name

    @property
    def email(self) -> str:
        return (self.entra.mail or self.entra.user_principal_name).lower()


class ResolveFailure(StrEnum):
    UNKNOWN = "unknown"
    AMBIGUOUS = "ambiguous"
    SLACK_USER_WITHOUT_EMAIL = "slack_user_without_email"


@dataclass(frozen=True)
class ResolveProblem:
    failure: ResolveFailure
    text: str
    candidates: tuple[tuple[str, str], ...] = ()


class TargetResolver:
    def __init__(self, *, graph: EntraDirectory, directory: Directory, notifier: Notifier) -> None:
        self._graph = graph
        self._directory = directory
        self._notifier = notifier

    def resolve(self, ref: TargetRef) -> Target | ResolveProblem:
        users = self._candidates(ref)
        if isinstance(users, ResolveProblem):
            return users
        unique = {u.id: u for u in users}
        if not unique:
            return ResolveProblem(ResolveFailure.UNKNOWN, ref.value)
        if len(unique) > 1:
            listed = tuple((u.display_name, u.user_principal_name) for u in list(unique.values())[:MAX_CANDIDATES])
            return ResolveProblem(ResolveFailure.AMBIGUOUS, ref.value, listed)
        entra = next(iter(unique.values()))
        return Target(entra=entra, ad=self._ad_account(entra), slack_id=self._slack_id(entra))

    def _candidates(self, ref: TargetRef) -> Sequence[EntraUser] | ResolveProblem:
        match ref.kind:
            case TargetKind.SLACK_USER:
                email = self._notifier.email_of(ref.value)
                if not email:
                    return ResolveProblem(ResolveFailure.SLACK_USER_WITHOUT_EMAIL, ref.value)
                return self._graph.find_users(email)
            case TargetKind.EMAIL_OR_UPN:
                return self._graph.find_users(ref.value)
            case TargetKind.SAM:
                ad = self._directory.find_user(sam=ref.value)
                if ad is not None and ad.upn:
                    found = self._graph.get_user(ad.upn)
                    if found is not None:
                        return [found]
                return self._graph.search_users(ref.value)
            case TargetKind.NAME:
                return self._graph.search_users(ref.value)

    def _ad_account(self, entra: EntraUser) -> DirectoryUser | None:
        if not entra.on_premises_sync_enabled:
            return None
        if entra.on_premises_distinguished_name:
            found = self._directory.find_user(dn=entra.on_premises_distinguished_name)
            if found is not None:
                return found
        if entra.on_premises_sam_account_name:
            return self._directory.find_user(sam=entra.on_premises_sam_account_name)
        return None

    def _slack_id(self, entra: EntraUser) -> str | None:
        for email in dict.fromkeys(e for e in (entra.mail, entra.user_principal_name) if e):
            found = self._notifier.user_by_email(email.lower())
            if found:
                return found
        return None

    def entra_id_of(self, slack_user: str) -> str | None:
        """The Entra object id of a Slack user: their Slack profile's email found as a mail or UPN in Entra. None
        when they show no email, no Entra account has it, or several do: never a guess."""
        email = self._notifier.email_of(slack_user)
        if not email:
            return None
        found = {u.id for u in self._graph.find_users(email)}
        return next(iter(found)) if len(found) == 1 else None

    def manager_slack_id(self, entra: EntraUser) -> str | None:
        manager = self._graph.manager_of(entra.id)
        return self._slack_id(manager) if manager is not None else None

    def entra_roles(self, entra: EntraUser) -> Sequence[str]:
        return self._graph.directory_roles_of(entra.id)

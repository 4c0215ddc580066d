"""Who is meant: from what an agent typed to one person in Slack, Entra ID and AD.

Entra ID is the source of truth for identity (the reset happens there); AD is where the account must exist
for writeback; Slack is matched by the Slack profile's email address, which must be the Entra account's UPN. Not
its ``mail``: helpdesk staff can often edit ``mail`` on-premises (Entra Connect syncs it), and setting a victim's
mail to an accomplice's Slack address would make that Slack account the victim here (asked to confirm, taken for
their manager, resolved by ``/reset @accomplice``). ``RESETBOT_LINK_ACCEPT_MAIL`` lets ``mail`` count too, where
only the directory's owners can write it. Matching can miss (a Slack profile with an alias or another domain's
address), so people are *compared* by Entra object id (:meth:`TargetResolver.entra_id_of`), and a miss is
reported as None for the caller to fail closed on.

A name is never guessed: a display-name prefix search only finds candidates. One is taken only when it is exactly
what was typed (the whole display name, or the UPN's or mail's part before the @); a lone near match is offered,
not picked, and an AD account whose UPN Entra does not know is said, not swapped for a namesake in Entra.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from bot.clients.directory import Directory, DirectoryUser
from bot.clients.graph import RoleGroups
from bot.clients.recent import Recent
from bot.clients.slack_notify import EMAIL_MAX_AGE_S, REMEMBERED_PEOPLE, Notifier
from bot.domain.parse import TargetKind, TargetRef

MAX_CANDIDATES = 5
#: How long a Slack user's Entra object id is taken as found: as long as the Slack email it was found by
#: (``bot.clients.slack_notify.EMAIL_MAX_AGE_S``), which may itself be that old, so a changed Slack email or UPN
#: is seen within two minutes. Every ``/reset`` asks it for each of the helpdesk's agents and approvers (is the
#: target one of them?), a Graph search each; a person not found is asked again every time.
IDENTITY_MAX_AGE_S = EMAIL_MAX_AGE_S


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
    def role_assignments_of(self, principals: str | Sequence[str]) -> Sequence[str]: ...
    def eligible_roles_of(self, principals: str | Sequence[str]) -> Sequence[str]: ...
    def role_groups_of(self, user_id: str) -> RoleGroups: ...


@dataclass(frozen=True)
class AdminRoles:
    """The Entra admin roles a person holds now (``active``: directory roles, and custom or administrative-unit-scoped
    assignments) and those they may activate through PIM (``eligible``)."""

    active: tuple[str, ...]
    eligible: tuple[str, ...]


@dataclass(frozen=True)
class Target:
    entra: EntraUser
    ad: DirectoryUser | None
    slack_id: str | None

    @property
    def name(self) -> str:
        return self.entra.display_name or self.entra.user_principal_name


class ResolveFailure(StrEnum):
    UNKNOWN = "unknown"
    AMBIGUOUS = "ambiguous"
    SLACK_USER_WITHOUT_EMAIL = "slack_user_without_email"
    #: The Slack user's email address is no Entra account's UPN (nor, with mail accepted, its mail).
    SLACK_USER_NOT_MATCHED = "slack_user_not_matched"
    #: The sAMAccountName is an AD account, but Entra has no user with its UPN (candidates: that AD account).
    NOT_IN_ENTRA = "not_in_entra"
    #: Nobody is called exactly that; one person's name starts with it (candidates: that person).
    NOT_EXACT = "not_exact"


@dataclass(frozen=True)
class ResolveProblem:
    failure: ResolveFailure
    text: str
    candidates: tuple[tuple[str, str], ...] = ()


class TargetResolver:
    def __init__(self, *, graph: EntraDirectory, directory: Directory, notifier: Notifier,
                 accept_mail: bool = False) -> None:
        self._graph = graph
        self._directory = directory
        self._notifier = notifier
        #: ``mail`` matches a Slack address too (``RESETBOT_LINK_ACCEPT_MAIL``); by default only the UPN does.
        self._accept_mail = accept_mail
        self._entra_ids: Recent[str, str] = Recent(REMEMBERED_PEOPLE)

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
                owned = self._owned_by(email)
                if not owned:
                    return ResolveProblem(ResolveFailure.SLACK_USER_NOT_MATCHED, ref.value)
                return owned
            case TargetKind.EMAIL_OR_UPN:
                return self._graph.find_users(ref.value)
            case TargetKind.SAM:
                ad = self._directory.find_user(sam=ref.value)
                if ad is None:
                    return self._by_name(ref.value)
                found = self._graph.get_user(ad.upn) if ad.upn else None
                if found is None:  # that AD account, and no other: never a namesake found by name
                    return ResolveProblem(ResolveFailure.NOT_IN_ENTRA, ref.value,
                                          ((ad.display_name or ad.sam, ad.upn or ""),))
                return [found]
            case TargetKind.NAME:
                return self._by_name(ref.value)

    def _by_name(self, text: str) -> Sequence[EntraUser] | ResolveProblem:
        """Whoever is exactly ``text``; else the prefix search's finds as candidates (several: ambiguous; one: a
        near match, offered and not picked; none: unknown)."""
        found = self._graph.search_users(text)
        exact = [u for u in found if _is_exactly(u, text)]
        if exact:
            return exact
        if len(found) == 1:
            return ResolveProblem(ResolveFailure.NOT_EXACT, text,
                                  ((found[0].display_name, found[0].user_principal_name),))
        return found

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

    def _addresses(self, entra: EntraUser) -> list[str]:
        """The addresses a Slack profile may carry to be this Entra account's: its UPN (and its mail, if accepted)."""
        found = [entra.user_principal_name] + ([entra.mail] if self._accept_mail and entra.mail else [])
        return list(dict.fromkeys(a.strip().lower() for a in found if a and a.strip()))

    def _owned_by(self, email: str) -> list[EntraUser]:
        """The Entra accounts a Slack address belongs to: Graph's lookup matches mail or UPN, so its finds whose
        match was only the mail are dropped unless mail is accepted."""
        wanted = email.strip().lower()
        return [u for u in self._graph.find_users(email) if wanted in self._addresses(u)]

    def _slack_id(self, entra: EntraUser) -> str | None:
        for email in self._addresses(entra):
            found = self._notifier.user_by_email(email)
            if found:
                return found
        return None

    def entra_id_of(self, slack_user: str) -> str | None:
        """The Entra object id of a Slack user: their Slack profile's email found as a UPN (or, if accepted, a
        mail) in Entra. None when they show no email, no Entra account has it, or several do: never a guess.
        A found id is remembered for ``IDENTITY_MAX_AGE_S``."""
        started = time.monotonic()
        hit = self._entra_ids.get(slack_user, max_age=IDENTITY_MAX_AGE_S, now=started)
        if hit is not None:
            return hit
        email = self._notifier.email_of(slack_user)
        if not email:
            return None
        found = {u.id for u in self._owned_by(email)}
        if len(found) != 1:
            return None
        entra_id = next(iter(found))
        self._entra_ids.put(slack_user, entra_id, read_at=started)
        return entra_id

    def manager_slack_id(self, entra: EntraUser) -> str | None:
        manager = self._graph.manager_of(entra.id)
        return self._slack_id(manager) if manager is not None else None

    def admin_roles(self, entra_id: str) -> AdminRoles:
        """Every way the person holds or may claim an Entra role: ``transitiveMemberOf`` alone shows only active,
        tenant-wide, built-in ones, so the role assignments and PIM eligibilities are read as well, the person's
        own and those of the role-assignable groups they are in (a group's assignment names the group, not its
        members). A group they may join or own through PIM for Groups, or own now, is one step from its roles:
        those count as eligible. A Graph failure raises: whoever asks must fail closed."""
        groups = self._graph.role_groups_of(entra_id)
        holders = [entra_id, *groups.held]
        active = [*self._graph.directory_roles_of(entra_id), *self._graph.role_assignments_of(holders)]
        eligible = list(self._graph.eligible_roles_of(holders))
        if groups.claimable:
            eligible += [*self._graph.role_assignments_of(groups.claimable),
                         *self._graph.eligible_roles_of(groups.claimable)]
        return AdminRoles(active=tuple(dict.fromkeys(active)), eligible=tuple(dict.fromkeys(eligible)))


def _is_exactly(user: EntraUser, text: str) -> bool:
    """``text`` is this user's whole display name, or the part before the @ of their UPN or mail (case aside)."""
    typed = text.strip().casefold()
    names = [user.display_name] + [a.split("@", 1)[0] for a in (user.user_principal_name, user.mail) if a]
    return any(n and n.casefold() == typed for n in names)

"""Who may do what. Pure functions over plain facts, so that every rule is testable exhaustively and the
services only gather the facts (from Slack, Entra, AD, the database) and act on the answer.

Rules that are never configurable away (product spec, section 1): requester, approver and target are three
different people; a click by someone who may not approve changes nothing; protected accounts are refused
unless a rule names them, and then need two distinct approvers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from bot.settings import ApproverSource


class Refusal(StrEnum):
    """Why an action was refused; bot.messages has the sentence for each."""

    NOT_AN_AGENT = "not_an_agent"
    SELF_RESET = "self_reset"
    REQUESTER_CANNOT_APPROVE = "requester_cannot_approve"
    TARGET_CANNOT_APPROVE = "target_cannot_approve"
    NOT_AN_APPROVER = "not_an_approver"
    ALREADY_APPROVED = "already_approved"
    ONLY_REQUESTER_CANCELS = "only_requester_cancels"
    ONLY_TARGET_CONFIRMS = "only_target_confirms"
    ONLY_REQUESTER_REVEALS = "only_requester_reveals"
    #: ``RESETBOT_DELIVERY=target``: nobody but the person whose password it is may see it.
    ONLY_TARGET_REVEALS = "only_target_reveals"
    NOT_PENDING = "not_pending"
    #: The person acting (or the requester) has no Entra account the bot can match to their Slack account, so
    #: "three different people" cannot be checked: it fails closed.
    APPROVER_NOT_MATCHED = "approver_not_matched"
    REQUESTER_NOT_MATCHED = "requester_not_matched"
    #: The requester has left the agents' group since asking: their request is not approved, nor revealed to them.
    REQUESTER_NOT_AN_AGENT = "requester_not_an_agent"
    #: An Approve clicked on a message that did not yet show the call-back made since (``bot.domain.verification``).
    CALLBACK_NOT_SEEN = "callback_not_seen"


@dataclass(frozen=True)
class Approvers:
    """The people who may approve one request, as far as they can be known when it is made."""

    manager: str | None  # Slack id of the target's directory manager, when found in Slack
    group_handle: str | None  # the approver group, when it counts for this request

    def describe_ids(self) -> list[str]:
        return [self.manager] if self.manager else []


def approvers_for(*, source: ApproverSource, manager: str | None, group_handle: str | None,
                  requester: str, target: str | None) -> Approvers:
    """Who approves: the manager and/or the group, per the configured source. A manager who is also the
    requester or the target cannot approve, so they are not named."""
    use_manager = source in (ApproverSource.MANAGER, ApproverSource.MANAGER_OR_GROUP)
    use_group = source in (ApproverSource.GROUP, ApproverSource.MANAGER_OR_GROUP)
    named_manager = manager if use_manager and manager not in (requester, target) else None
    return Approvers(manager=named_manager, group_handle=group_handle if use_group and group_handle else None)


def approval_refusal(*, actor: str, requester: str, target: str | None, approvers: Approvers,
                     actor_in_group: bool, already_approved: bool) -> Refusal | None:
    """None when ``actor`` may approve (or deny) now; otherwise why not."""
    if actor == requester:
        return Refusal.REQUESTER_CANNOT_APPROVE
    if target is not None and actor == target:
        return Refusal.TARGET_CANNOT_APPROVE
    eligible = (approvers.manager is not None and actor == approvers.manager) or (
        approvers.group_handle is not None and actor_in_group
    )
    if not eligible:
        return Refusal.NOT_AN_APPROVER
    if already_approved:
        return Refusal.ALREADY_APPROVED
    return None


def identity_refusal(*, actor: str | None, requester: str | None, target: str) -> Refusal | None:
    """Requester ≠ approver ≠ target, compared by Entra object id (the spec: never by email strings). Slack ids
    alone miss the same person under another Slack account, or a target whose Slack account was never matched;
    an id that could not be found (None) fails closed rather than letting the click through."""
    if actor is None:
        return Refusal.APPROVER_NOT_MATCHED
    if actor == target:
        return Refusal.TARGET_CANNOT_APPROVE
    if requester is None:
        return Refusal.REQUESTER_NOT_MATCHED
    if actor == requester:
        return Refusal.REQUESTER_CANNOT_APPROVE
    return None


def cancel_refusal(*, actor: str, requester: str) -> Refusal | None:
    return None if actor == requester else Refusal.ONLY_REQUESTER_CANCELS


class Protection(StrEnum):
    """Why an account is protected. The values are stored (comma-joined) on the request: never rename one."""

    ADMIN_COUNT = "admin_count"
    PROTECTED_GROUP = "protected_group"
    #: Holds an Entra role now: a directory role, or a custom or administrative-unit-scoped assignment.
    ENTRA_ROLE = "entra_role"
    #: May activate an Entra role through PIM: one activation (which the new password and an MFA, or a TAP, would
    #: satisfy) from holding it, and Entra's own reset check ignores eligible roles.
    ENTRA_ELIGIBLE_ROLE = "entra_eligible_role"
    #: One of resetbot's own agents or approvers: resetting them hands over their Slack identity (where Slack signs
    #: in through Entra), and with it the power to ask for or approve resets.
    OPERATOR = "operator"
    #: Matched to no Slack account while some agent or approver matches no Entra account: the target may be that
    #: agent or approver, and nothing can show otherwise, so the account is treated as one (fail closed).
    OPERATOR_UNVERIFIED = "operator_unverified"


def protection_reasons(*, admin_count: bool, in_protected_group: bool, entra_roles: Iterable[str],
                       eligible_roles: Iterable[str] = (), operator: bool = False,
                       operator_unverified: bool = False) -> list[Protection]:
    """Why an account is protected (empty: it is not)."""
    reasons = []
    if admin_count:
        reasons.append(Protection.ADMIN_COUNT)
    if in_protected_group:
        reasons.append(Protection.PROTECTED_GROUP)
    if any(entra_roles):
        reasons.append(Protection.ENTRA_ROLE)
    if any(eligible_roles):
        reasons.append(Protection.ENTRA_ELIGIBLE_ROLE)
    if operator:
        reasons.append(Protection.OPERATOR)
    elif operator_unverified:
        reasons.append(Protection.OPERATOR_UNVERIFIED)
    return reasons


def allowed_by_rule(*, sam: str | None, upn: str, allowed: Iterable[str]) -> bool:
    """Whether a configured rule names this protected account (by sAMAccountName or UPN, any case)."""
    names = {a.strip().lower() for a in allowed if a.strip()}
    return upn.lower() in names or (sam is not None and sam.lower() in names)

"""Who may approve: every combination of the facts, against the spec's never-configurable rules."""

from __future__ import annotations

import itertools

import pytest

from bot.domain.rules import (
    Approvers,
    Protection,
    Refusal,
    allowed_by_rule,
    approval_refusal,
    approvers_for,
    cancel_refusal,
    identity_refusal,
    protection_reasons,
)
from bot.settings import ApproverSource

REQ, TGT, MGR, OTHER = "U_REQ", "U_TGT", "U_MGR", "U_OTHER"


@pytest.mark.parametrize("source", list(ApproverSource))
def test_manager_who_is_requester_or_target_is_never_named(source: ApproverSource) -> None:
    for manager in (REQ, TGT):
        assert approvers_for(source=source, manager=manager, group_handle="approvers", requester=REQ,
                             target=TGT).manager is None


def test_sources_pick_manager_group_or_both() -> None:
    def pick(source: ApproverSource) -> Approvers:
        return approvers_for(source=source, manager=MGR, group_handle="approvers", requester=REQ, target=TGT)

    assert pick(ApproverSource.MANAGER) == Approvers(MGR, None)
    assert pick(ApproverSource.GROUP) == Approvers(None, "approvers")
    assert pick(ApproverSource.MANAGER_OR_GROUP) == Approvers(MGR, "approvers")


@pytest.mark.parametrize(
    ("actor", "in_group", "approvers", "already", "expected"),
    [
        (MGR, False, Approvers(MGR, None), False, None),
        (OTHER, True, Approvers(None, "approvers"), False, None),
        (OTHER, False, Approvers(MGR, "approvers"), False, Refusal.NOT_AN_APPROVER),
        (OTHER, True, Approvers(MGR, None), False, Refusal.NOT_AN_APPROVER),
        (MGR, False, Approvers(MGR, None), True, Refusal.ALREADY_APPROVED),
        (REQ, True, Approvers(REQ, "approvers"), False, Refusal.REQUESTER_CANNOT_APPROVE),
        (TGT, True, Approvers(TGT, "approvers"), False, Refusal.TARGET_CANNOT_APPROVE),
    ],
)
def test_approval_refusal(actor: str, in_group: bool, approvers: Approvers, already: bool,
                          expected: Refusal | None) -> None:
    assert approval_refusal(actor=actor, requester=REQ, target=TGT, approvers=approvers, actor_in_group=in_group,
                            already_approved=already) == expected


def test_requester_and_target_can_never_approve_whatever_the_facts() -> None:
    for actor, manager, in_group, already in itertools.product((REQ, TGT), (REQ, TGT, MGR, None),
                                                                (True, False), (True, False)):
        refusal = approval_refusal(actor=actor, requester=REQ, target=TGT, approvers=Approvers(manager, "g"),
                                   actor_in_group=in_group, already_approved=already)
        assert refusal in (Refusal.REQUESTER_CANNOT_APPROVE, Refusal.TARGET_CANNOT_APPROVE)


E_REQ, E_TGT, E_OTHER = "e-req", "e-tgt", "e-other"


@pytest.mark.parametrize(
    ("actor", "requester", "expected"),
    [
        (E_OTHER, E_REQ, None),
        (E_TGT, E_REQ, Refusal.TARGET_CANNOT_APPROVE),
        (E_REQ, E_REQ, Refusal.REQUESTER_CANNOT_APPROVE),
        (None, E_REQ, Refusal.APPROVER_NOT_MATCHED),
        (E_OTHER, None, Refusal.REQUESTER_NOT_MATCHED),
        (None, None, Refusal.APPROVER_NOT_MATCHED),
    ],
)
def test_people_are_compared_by_entra_object_id_and_a_miss_fails_closed(
        actor: str | None, requester: str | None, expected: Refusal | None) -> None:
    """Issue 14, item 2: whoever a Slack account cannot be matched to in Entra decides nothing, and the requester
    or target approving under another Slack account (an alias) is caught by the object id."""
    assert identity_refusal(actor=actor, requester=requester, target=E_TGT) == expected


def test_only_the_requester_cancels() -> None:
    assert cancel_refusal(actor=REQ, requester=REQ) is None
    assert cancel_refusal(actor=MGR, requester=REQ) == Refusal.ONLY_REQUESTER_CANCELS


def test_protection_reasons_and_rules() -> None:
    assert protection_reasons(admin_count=False, in_protected_group=False, entra_roles=[]) == []
    assert protection_reasons(admin_count=True, in_protected_group=True, entra_roles=["Global Administrator"]) == [
        Protection.ADMIN_COUNT, Protection.PROTECTED_GROUP, Protection.ENTRA_ROLE]
    assert protection_reasons(admin_count=False, in_protected_group=False, entra_roles=[],
                              eligible_roles=["Global Administrator"]) == [Protection.ENTRA_ELIGIBLE_ROLE]
    assert protection_reasons(admin_count=False, in_protected_group=False, entra_roles=[], operator=True) == [
        Protection.OPERATOR]
    assert allowed_by_rule(sam="Paula", upn="paula@corp.example.test", allowed=["paula"])
    assert allowed_by_rule(sam=None, upn="Paula@Corp.Example.Test", allowed=[" paula@corp.example.test "])
    assert not allowed_by_rule(sam="paula", upn="paula@corp.example.test", allowed=["", "alice"])

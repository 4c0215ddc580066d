"""Naming the agents' and approvers' user groups, and what Slack shows of who changed them (issue 14, item 6)."""

from __future__ import annotations

import pytest

from bot.domain.groups import GroupFacts, changed_by_a_member, find_group, group_ref, is_group_id

HELPDESK = GroupFacts("S00HELPDESK", "helpdesk", created_by="U_ADMIN", updated_by="U_ADMIN")
IMPOSTOR = GroupFacts("S0IMPOSTOR", "helpdesk-2", created_by="U_ALICE", updated_by="U_ALICE")


@pytest.mark.parametrize(("ref", "is_id"), [("S00HELPDESK", True), ("S0123ABCD", True), ("helpdesk", False),
                                            ("@helpdesk", False), ("s0123abcd", False), ("S", False)])
def test_an_id_is_told_from_a_handle(ref: str, is_id: bool) -> None:
    assert is_group_id(group_ref(ref)) is is_id


def test_a_group_is_found_by_id_or_by_its_handle_now() -> None:
    groups = [HELPDESK, IMPOSTOR]
    assert find_group("S00HELPDESK", groups) == HELPDESK
    assert find_group("@helpdesk", groups) == HELPDESK
    assert find_group("S0NOSUCH", groups) is None
    moved = [GroupFacts("S00HELPDESK", "helpdesk-old"), GroupFacts("S0IMPOSTOR", "helpdesk")]
    assert find_group("S00HELPDESK", moved) == moved[0], "an id never follows the handle"
    assert find_group("helpdesk", moved) == moved[1], "a handle does: why the bot pins it"


def test_a_change_by_someone_who_is_not_an_admin_is_named() -> None:
    admins = {"U_ADMIN"}.__contains__
    assert changed_by_a_member(HELPDESK, admins) is None
    assert changed_by_a_member(IMPOSTOR, admins) == "U_ALICE"
    assert changed_by_a_member(GroupFacts("S1", "x", created_by="U_ADMIN", updated_by="U_BOB"), admins) == "U_BOB"
    assert changed_by_a_member(GroupFacts("S1", "x"), admins) is None

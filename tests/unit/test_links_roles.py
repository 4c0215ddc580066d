"""``can_reset`` against Microsoft's role table (graph-and-entra.md), every cell and every combination."""

from __future__ import annotations

import itertools

import pytest

from bot.domain.entra_roles import (
    RESETTING_ROLES,
    blocking_roles,
    can_reset,
    canonical_role,
    resetting_roles,
    roles_needed,
)

PA, HA = "Password Administrator", "Helpdesk Administrator"
AA, UA = "Authentication Administrator", "User Administrator"
PAA, GA = "Privileged Authentication Administrator", "Global Administrator"

#: The reference table transcribed cell by cell: target row -> "y"/"-" for the columns in this order.
COLUMNS = (PA, HA, AA, UA, PAA, GA)
ROWS: dict[str | None, str] = {
    None: "yyyyyy",  # no admin role
    "Directory Readers": "yyyyyy",
    "Guest Inviter": "yyyyyy",
    PA: "yyyyyy",
    HA: "-y-yyy",
    UA: "---yyy",
    "Groups Administrator": "---yyy",
    AA: "--y-yy",
    GA: "----yy",
    PAA: "----yy",
    "Privileged Role Administrator": "----yy",
    "Contoso Custom Reset Role": "----yy",  # custom roles
}
#: Roles that are no column: holding only these, nobody resets anyone.
NOT_COLUMNS = ("Directory Readers", "Guest Inviter", "Groups Administrator", "Privileged Role Administrator",
               "Contoso Custom Reset Role", "Exchange Administrator")


def cell(target: str | None, caller: str) -> bool:
    return ROWS[target][COLUMNS.index(caller)] == "y"


def targets(row: str | None) -> list[str]:
    return [] if row is None else [row]


@pytest.mark.parametrize("caller", COLUMNS)
@pytest.mark.parametrize("target", list(ROWS))
def test_every_cell_of_the_table(caller: str, target: str | None) -> None:
    assert can_reset([caller], targets(target)) is cell(target, caller)


@pytest.mark.parametrize("caller", [*NOT_COLUMNS, None])
def test_roles_outside_the_columns_reset_nobody(caller: str | None) -> None:
    held = [] if caller is None else [caller]
    for target in ROWS:
        assert not can_reset(held, targets(target))
    assert resetting_roles(held) == []


def test_every_combination_of_caller_and_target_roles() -> None:
    """Several caller roles: any of them may cover each target role; several target roles: each must be covered."""
    rows = [r for r in ROWS if r is not None]
    target_sets = [list(t) for n in range(3) for t in itertools.combinations(rows, n)]
    for n in range(len(COLUMNS) + 1):
        for callers in itertools.combinations(COLUMNS, n):
            held = [*callers, "Directory Readers"]  # a role that resets nobody never changes the answer
            for target_roles in target_sets:
                expected = bool(callers) and all(any(cell(t, c) for c in callers) for t in target_roles)
                assert can_reset(held, target_roles) is expected, (callers, target_roles)
                uncovered = [t for t in target_roles if not any(cell(t, c) for c in callers)]
                assert blocking_roles(held, target_roles) == uncovered


def test_roles_needed_is_the_single_roles_that_would_do() -> None:
    assert roles_needed([]) == list(RESETTING_ROLES)
    assert roles_needed([GA]) == [PAA, GA]
    assert roles_needed([HA]) == [HA, UA, PAA, GA]
    assert roles_needed([HA, AA]) == [PAA, GA]  # no single role below the privileged two covers both
    rows = [r for r in ROWS if r is not None]
    for n in range(3):
        for target_roles in itertools.combinations(rows, n):
            for role in RESETTING_ROLES:
                assert (role in roles_needed(target_roles)) is can_reset([role], target_roles)


def test_names_are_matched_whatever_their_case_and_old_names_count() -> None:
    assert can_reset(["helpdesk administrator"], ["HELPDESK  ADMINISTRATOR"])
    assert can_reset(["Company Administrator"], [GA])  # Global Administrator's former name
    assert can_reset(["User Account Administrator"], ["Groups Administrator"])
    assert canonical_role(" password administrator ") == PA
    assert canonical_role("Some Custom Role") == "Some Custom Role"
    assert blocking_roles([HA], ["global administrator", GA, AA]) == [GA, AA]


# --- Temporary Access Passes: the same table, the authentication-method columns only -------------------------
TAP_COLUMNS = (AA, PAA, GA)


@pytest.mark.parametrize("caller", COLUMNS)
@pytest.mark.parametrize("target", list(ROWS))
def test_a_tap_takes_an_authentication_admin_column_of_the_table(caller: str, target: str | None) -> None:
    """Password and Helpdesk Administrators may reset a password but never create a TAP (it satisfies MFA); the
    three authentication-method roles may, over exactly the targets their reset column covers."""
    expected = caller in TAP_COLUMNS and cell(target, caller)
    assert can_reset([caller], targets(target), tap=True) is expected
    assert (caller in roles_needed(targets(target), tap=True)) is expected


def test_tap_sentences_name_only_the_roles_that_may_create_one() -> None:
    assert resetting_roles([HA, PA], tap=True) == []
    assert resetting_roles([GA, HA, AA], tap=True) == [AA, GA]
    assert roles_needed([], tap=True) == [AA, PAA, GA]
    assert roles_needed([HA], tap=True) == [PAA, GA]
    assert blocking_roles([HA], [], tap=True) == []
    assert blocking_roles([AA], [HA, PA], tap=True) == [HA]

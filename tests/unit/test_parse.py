from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.parse import ParseError, ParseProblem, ResetArgs, TargetKind, TargetRef, parse_reset, parse_target


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("<@U00ALICE|alice>", TargetRef(TargetKind.SLACK_USER, "U00ALICE")),
        ("<@U00ALICE>", TargetRef(TargetKind.SLACK_USER, "U00ALICE")),
        ("<mailto:Alice@Corp.Example.Test|Alice@Corp.Example.Test>", TargetRef(TargetKind.EMAIL_OR_UPN,
                                                                                  "alice@corp.example.test")),
        ("alice@corp.example.test", TargetRef(TargetKind.EMAIL_OR_UPN, "alice@corp.example.test")),
        ("@alice", TargetRef(TargetKind.SAM, "alice")),
        ("CORP\\alice", TargetRef(TargetKind.SAM, "alice")),
        ("alice", TargetRef(TargetKind.SAM, "alice")),
        ("Archer-Smithsonian-Longname", TargetRef(TargetKind.NAME, "Archer-Smithsonian-Longname")),
        ("a*", None),
        ("<script>", None),
        ("", None),
    ],
)
def test_parse_target(token: str, expected: TargetRef | None) -> None:
    assert parse_target(token) == expected


def test_flags_anywhere_and_the_rest_is_the_reason() -> None:
    parsed = parse_reset("--unlock <@U00ALICE|alice> locked out after holiday --tap")
    assert parsed == ResetArgs(TargetRef(TargetKind.SLACK_USER, "U00ALICE"), "locked out after holiday", True, True)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", ParseProblem.NO_USER),
        ("   ", ParseProblem.NO_USER),
        ("--unlock", ParseProblem.NO_USER),
        ("alice --force", ParseProblem.UNKNOWN_FLAG),
        ("alice --unlock --UNLOCK", ParseProblem.DUPLICATE_FLAG),
        ("a*)( reason", ParseProblem.BAD_USER),
    ],
)
def test_malformed_input_names_the_problem(text: str, problem: ParseProblem) -> None:
    parsed = parse_reset(text)
    assert isinstance(parsed, ParseError)
    assert parsed.problem == problem


@given(st.text())
def test_never_raises_and_never_lets_ldap_metacharacters_through(text: str) -> None:
    parsed = parse_reset(text)
    if isinstance(parsed, ResetArgs) and parsed.target.kind in (TargetKind.SAM, TargetKind.NAME):
        assert not any(c in parsed.target.value for c in "*()\\\x00")

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


def test_a_reason_in_slacks_wire_form_is_read_as_the_words_the_person_meant() -> None:
    """``/reset`` has ``should_escape``: Slack sends typed ``&<>`` as entities and mentions, channels, links and
    addresses as control sequences. The reason keeps what the person meant as plain words (the real URL behind a
    labelled link shown, no control sequence left), so that the sentences can escape it once."""
    wire = ("<@U0000BOB|bob> --unlock locked out &amp; cross &lt;!channel&gt; <!here> "
            "<!subteam^S0APPROVERS|@approvers> see <https://evil.example/reset|Reset portal> or "
            "<https://x.example/a?b=1&amp;c=2> ask <@U000MONA|mona> <@U000IVAN> "
            "in <#C0SECURITY|security> <#C0PRIVATE|> mail <mailto:bob@corp.example.test|Bob> "
            "at <!date^1764080000^{date}|Nov 25>")
    parsed = parse_reset(wire)
    assert isinstance(parsed, ResetArgs)
    assert parsed.target == TargetRef(TargetKind.SLACK_USER, "U0000BOB") and parsed.unlock
    assert parsed.reason == (
        "locked out & cross <!channel> @here @approvers see Reset portal (https://evil.example/reset) or "
        "https://x.example/a?b=1&c=2 ask @mona @U000IVAN in #security #C0PRIVATE mail bob@corp.example.test "
        "at Nov 25")


def test_a_link_label_with_spaces_stays_one_piece() -> None:
    parsed = parse_reset("<@U0000BOB|bob> <https://evil.example|Click here --tap> now")
    assert parsed == ResetArgs(TargetRef(TargetKind.SLACK_USER, "U0000BOB"),
                               "Click here --tap (https://evil.example) now", False, False)


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("&lt;@U00ALICE&gt;", None),  # typed literally: Slack escaped it, so it is no mention
        ("&lt;script&gt;", None),
        ("AT&amp;T", TargetRef(TargetKind.NAME, "AT&T")),
    ],
)
def test_escaped_text_never_names_anyone_by_accident(token: str, expected: TargetRef | None) -> None:
    assert parse_target(token) == expected

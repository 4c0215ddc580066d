from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bot.domain.parse import (
    _EMAILISH,
    MAX_REASON_CHARS,
    MAX_TARGET_CHARS,
    ParseError,
    ParseProblem,
    ResetArgs,
    TargetKind,
    TargetRef,
    parse_reset,
    parse_target,
)

#: The ``re`` module's own parser and opcodes (private, and without type stubs): what the pattern compiles to.
sre_parser: Any = importlib.import_module("re._parser")
sre_constants: Any = importlib.import_module("re._constants")


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
    assert not parsed.revoke_sessions


def test_revoke_sessions_is_a_flag_like_the_others() -> None:
    parsed = parse_reset("<@U00ALICE|alice> phone stolen --Revoke-Sessions")
    assert isinstance(parsed, ResetArgs) and parsed.revoke_sessions and not parsed.tap
    assert parsed.reason == "phone stolen"
    twice = parse_reset("<@U00ALICE|alice> --revoke-sessions x --revoke-sessions")
    assert isinstance(twice, ParseError) and twice.problem == ParseProblem.DUPLICATE_FLAG


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


# --- input bounds (issue 14, item 12) ------------------------------------------------------------------------


def test_a_reason_over_the_bound_is_refused_and_one_at_it_is_kept() -> None:
    at_bound = "x" * MAX_REASON_CHARS
    parsed = parse_reset(f"alice {at_bound}")
    assert isinstance(parsed, ResetArgs) and parsed.reason == at_bound
    over = parse_reset("alice " + "word " * (MAX_REASON_CHARS // 5) + "more --unlock")
    assert over == ParseError(ParseProblem.REASON_TOO_LONG, str(MAX_REASON_CHARS // 5 * 5 + 4))


@pytest.mark.parametrize("token", [
    "x@" + "a." * 8000 + "@",  # the 16k-character token that took about a second
    "x@" + "a" * MAX_TARGET_CHARS + ".test",
    "b" * (MAX_TARGET_CHARS + 1),
])
def test_a_target_token_over_the_bound_names_nobody(token: str) -> None:
    assert parse_target(token) is None
    parsed = parse_reset(f"{token} reason")
    assert isinstance(parsed, ParseError) and parsed.problem == ParseProblem.BAD_USER
    assert len(parsed.detail) <= MAX_TARGET_CHARS + 1, "the sentence quotes a bounded piece of it"


def _repeats(parsed: Iterable[tuple[Any, Any]]) -> Iterator[Any]:
    """Every repeat opcode in a parsed pattern, nested groups included."""
    for op, arg in parsed:
        if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT):
            yield op
            yield from _repeats(arg[2])
        elif op in (sre_constants.SUBPATTERN, sre_constants.ATOMIC_GROUP):
            yield from _repeats(arg[-1])
        elif op == sre_constants.BRANCH:
            for branch in arg[1]:
                yield from _repeats(branch)


def test_the_email_pattern_can_never_backtrack() -> None:
    """Timing-free proof that matching is linear: every repeat in the pattern is possessive, so the engine never
    gives characters back and retries (what made ``x@a.a.a...@`` quadratic); each character is read once per
    repeat that can hold it."""
    repeats = list(_repeats(sre_parser.parse(_EMAILISH.pattern)))
    assert repeats and set(repeats) == {sre_constants.POSSESSIVE_REPEAT}


def _reference_emailish(token: str) -> bool:
    """What the pattern means, in plain Python: one @, no space or angle bracket, and a domain of at least two
    non-empty dot-separated labels."""
    local, at, domain = token.partition("@")
    labels = domain.split(".")
    return (bool(at and local) and "@" not in domain and not any(c.isspace() or c in "<>" for c in token)
            and len(labels) >= 2 and all(labels))


@given(st.text(alphabet="ab.@ <\t", max_size=40))
@example("a@..b")
@example("a@b.c")
@example("a@b.")
def test_the_email_pattern_means_what_it_says(token: str) -> None:
    assert bool(_EMAILISH.match(token)) == _reference_emailish(token)


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


@pytest.mark.parametrize(("text", "method"), [
    ("alice --verify slack-code", "slack-code"),
    ("--verify=DUO-PUSH alice lost phone", "duo-push"),
    ("alice lost phone --verify callback --unlock", "callback"),
    ("alice lost phone", None),
])
def test_verify_takes_a_method(text: str, method: str | None) -> None:
    parsed = parse_reset(text)
    assert isinstance(parsed, ResetArgs)
    assert parsed.verify == method
    assert "verify" not in parsed.reason and parsed.target.value == "alice"


@pytest.mark.parametrize(("text", "problem", "detail"), [
    ("alice --verify", ParseProblem.BAD_VERIFY_METHOD, ""),
    ("alice --verify sms", ParseProblem.BAD_VERIFY_METHOD, "sms"),
    ("alice --verify callback --verify slack-code", ParseProblem.DUPLICATE_FLAG, "--verify"),
])
def test_a_bad_verify_is_named(text: str, problem: ParseProblem, detail: str) -> None:
    assert parse_reset(text) == ParseError(problem, detail)

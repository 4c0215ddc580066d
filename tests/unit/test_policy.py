"""The local pre-check rule by rule, and the generator against it over many draws and random policies."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from bot.policy import (
    AD_NON_ALPHANUMERIC,
    ALPHABET,
    DEFAULT_GENERATED_LENGTH,
    DIGITS,
    DISPLAY_NAME_SEPARATORS,
    LOWER,
    MAX_PASSWORD_LENGTH,
    MIN_GENERATED_LENGTH,
    SYMBOLS,
    UPPER,
    CharClass,
    PasswordPolicy,
    PasswordRule,
    RuleBroken,
    char_class,
    char_classes,
    display_name_tokens,
    generate_temporary_password,
    groups,
    phonetic,
    precheck,
    spell,
    utf16_length,
)

R = PasswordRule


def policy(min_length: int = 7, *, complexity: bool = True) -> PasswordPolicy:
    return PasswordPolicy(source="domain", min_length=min_length, history_length=24, complexity=complexity,
                          min_age=timedelta(days=1), max_age=timedelta(days=42))


def rules(password: str, pol: PasswordPolicy | None = None, *, sam: str | None = None,
          display_name: str | None = None) -> list[PasswordRule]:
    return [b.rule for b in precheck(password, pol or policy(), sam=sam, display_name=display_name)]


# --- length -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("password", "min_length", "expected"),
    [
        ("Ab3!xyz", 7, []),  # exactly the minimum
        ("Ab3!xy", 7, [RuleBroken(R.TOO_SHORT, needed=7, actual=6)]),  # one short
        ("Ab3!xyzw", 7, []),
        ("Ab3!" * 16, 64, []),
        ("Ab3!" * 16, 65, [RuleBroken(R.TOO_SHORT, needed=65, actual=64)]),
        ("Ab3", 0, []),  # no minimum
        ("Ab3\U0001F600", 4, []),  # an emoji is one character for the minimum (AD counts two: never fewer)
        ("Ab3\U0001F600", 5, [RuleBroken(R.TOO_SHORT, needed=5, actual=4)]),
    ],
)
def test_min_length(password: str, min_length: int, expected: list[RuleBroken]) -> None:
    assert precheck(password, policy(min_length), sam=None, display_name=None) == expected


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("Ab3!" * 64, []),  # exactly 256
        ("Ab3!" * 64 + "x", [RuleBroken(R.TOO_LONG, needed=256, actual=257)]),
        # 255 characters + an emoji: 256 code points but 257 UTF-16 units, AD's unit.
        ("Ab3!" * 63 + "Ab3" + "\U0001F600", [RuleBroken(R.TOO_LONG, needed=256, actual=257)]),
        ("Ab3!" * 63 + "Ab" + "\U0001F600", []),
    ],
)
def test_max_length_in_utf16_units(password: str, expected: list[RuleBroken]) -> None:
    assert precheck(password, policy(), sam=None, display_name=None) == expected


def test_utf16_length() -> None:
    assert utf16_length("") == 0
    assert utf16_length("abc") == 3
    assert utf16_length("é漢") == 2
    assert utf16_length("\U0001F600") == 2
    assert utf16_length("\ud800") == 1  # a lone surrogate does not break the count


# --- complexity ---------------------------------------------------------------------------------------------------

U, L, D, S, OL = CharClass.UPPER, CharClass.LOWER, CharClass.DIGIT, CharClass.SYMBOL, CharClass.OTHER_LETTER


@pytest.mark.parametrize(
    ("password", "classes"),
    [
        ("abcdefgh", {L}),
        ("ABCDEFGH", {U}),
        ("12345678", {D}),
        ("!@#$%^&*", {S}),
        ("abcdEFGH", {L, U}),
        ("abcdEF12", {L, U, D}),
        ("abcd1234!", {L, D, S}),
        ("ABCD!!!!", {U, S}),
        ("ABCD!!!!7", {U, S, D}),
        ("abc漢字かな", {L, OL}),  # CJK and kana: letters without case, the fifth class
        ("abc漢字1", {L, OL, D}),
        ("\u05e9\u05dc\u05d5\u05dd123", {OL, D}),  # Hebrew (shalom): letters are uncased letters too
        ("ÄÖÜäöü", {U, L}),  # non-ASCII cased letters count as upper and lower
        ("ΣΑΣσας", {U, L}),  # Greek
        ("ЖЖжж", {U, L}),  # Cyrillic
        ("abcd€€€€1", {L, D}),  # a currency sign counts in no class (Windows; Samba would count it)
        ("abc\U0001F600\U0001F600d1", {L, D}),  # nor does an emoji
        ("abcd    12", {L, D}),  # nor a space
        ("ABC٣٣٣", {U}),  # Arabic-Indic digits are not "0 through 9", nor letters
        ("~!@#$%^&*_-+=`|\\(){}[]:;\"'<>,.?/", {S}),  # every AD non-alphanumeric
        ("", set()),
    ],
)
def test_char_classes(password: str, classes: set[CharClass]) -> None:
    assert char_classes(password) == classes
    broken = precheck(password, policy(0), sam=None, display_name=None)
    complexity = [b for b in broken if b.rule is R.COMPLEXITY]
    if len(classes) >= 3:
        assert complexity == []
    else:
        assert complexity == [RuleBroken(R.COMPLEXITY, needed=3, actual=len(classes), classes=frozenset(classes))]


def test_every_ascii_character_has_the_class_samba_gives_it() -> None:
    """Samba's check_password_quality (replicated in lab/ad/check_password.py) for ASCII, character by character."""
    for code in range(32, 127):
        c = chr(code)
        expected = (D if c.isdigit() else U if c.isupper() else L if c.islower()
                    else S if c in "~!@#$%^&*_-+=`|\\(){}[]:;\"'<>,.?/" else None)
        assert char_class(c) == expected, c


def test_complexity_off_skips_only_the_classes() -> None:
    assert rules("abcdefgh", policy(complexity=False)) == []
    assert rules("abcdefgh", policy(complexity=True)) == [R.COMPLEXITY]
    # The name rules are the bot's own: they apply whatever the policy's complexity flag says.
    assert rules("xalicex", policy(0, complexity=False), sam="alice") == [R.CONTAINS_ACCOUNT_NAME]
    assert rules("xarcherx", policy(0, complexity=False), display_name="Alice Archer") == [R.CONTAINS_DISPLAY_NAME]


# --- account name -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("password", "sam", "broken"),
    [
        ("Xy9-alice-Qrstuvw", "alice", True),  # the password Samba 4.17 accepts on an admin reset
        ("Xy9-ALICE-Qrstuvw", "alice", True),  # case-insensitive, both ways
        ("Xy9-alice-Qrstuvw", "ALICE", True),
        ("Xy9-AlIcE-Qrstuvw", "aLiCe", True),
        ("alice", "alice", True),
        ("Xy9-alic-Qrstuvw", "alice", False),  # only the whole name counts
        ("Xy9-a.lice-Qrstuvw", "alice", False),
        ("Xy9-ali-Qrstuvw", "ali", True),  # three characters: checked
        ("Xy9-al-Qrstuvw", "al", False),  # under three: exempt
        ("Xy9-a-Qrstuvw", "a", False),
        ("Xy9-al-Qrstuvw", "", False),
        ("Xy9-al-Qrstuvw", None, False),
        ("Xy9-STRASSE-Qrs", "straße", True),  # case folding, stricter than AD, never looser
    ],
)
def test_account_name(password: str, sam: str | None, broken: bool) -> None:
    found = [b for b in precheck(password, policy(), sam=sam, display_name=None)
             if b.rule is R.CONTAINS_ACCOUNT_NAME]
    assert found == ([RuleBroken(R.CONTAINS_ACCOUNT_NAME, token=sam)] if broken else [])


# --- display name -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sep", sorted(DISPLAY_NAME_SEPARATORS))
def test_display_name_is_split_on_each_separator(sep: str) -> None:
    display = f"Alice{sep}Archer"
    assert display_name_tokens(display) == ("Alice", "Archer")
    assert rules("Qq9!archer", display_name=display) == [R.CONTAINS_DISPLAY_NAME]
    assert rules("Qq9!ALICE", display_name=display) == [R.CONTAINS_DISPLAY_NAME]
    assert rules("Qq9!alicearcher", display_name=display) == [R.CONTAINS_DISPLAY_NAME] * 2
    assert rules("Qq9!arch-alic", display_name=display) == []  # parts of tokens are not looked for


@pytest.mark.parametrize(
    ("display", "tokens"),
    [
        ("Alice Archer", ("Alice", "Archer")),
        ("Archer, Alice (IT)", ("Archer", "Alice", "(IT)")),
        ("A. Li-Archer_x#Bob\tCarl,Dave.Eve fin", ("Archer", "Bob", "Carl", "Dave", "Eve", "fin")),
        ("Jo Li", ()),  # tokens under three characters are ignored
        ("Alicearcher", ("Alicearcher",)),  # no separator: the whole name is the token
        ("O'Brien/Smith", ("O'Brien/Smith",)),  # ' and / are not separators
        ("Alice alice ALICE", ("Alice",)),  # each token once, case-insensitively
        ("  --Bob--  ", ("Bob",)),
        ("Zoë Ünal", ("Zoë", "Ünal")),
        ("", ()),
        (None, ()),
    ],
)
def test_display_name_tokens(display: str | None, tokens: tuple[str, ...]) -> None:
    assert display_name_tokens(display) == tokens


def test_display_name_token_is_reported_as_written_there() -> None:
    broken = precheck("Zq9!ARCHERzoËx", policy(), sam=None, display_name="Zoë Archer")
    assert broken == [RuleBroken(R.CONTAINS_DISPLAY_NAME, token="Zoë"),
                      RuleBroken(R.CONTAINS_DISPLAY_NAME, token="Archer")]


def test_short_tokens_and_other_separators_are_not_looked_for() -> None:
    assert rules("Qq9!jo-li", display_name="Jo Li") == []
    assert rules("Qq9!brien", display_name="O'Brien") == []
    assert rules("Qq9!o'brien", display_name="O'Brien") == [R.CONTAINS_DISPLAY_NAME]


# --- hygiene ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("", [R.EMPTY, R.TOO_SHORT, R.COMPLEXITY]),
        ("        ", [R.EMPTY, R.COMPLEXITY]),
        ("\t\n", [R.EMPTY, R.TOO_SHORT, R.COMPLEXITY, R.UNPRINTABLE]),
        (" Abc123!x", [R.SURROUNDING_WHITESPACE]),
        ("Abc123!x ", [R.SURROUNDING_WHITESPACE]),
        ("Abc 123!x", []),  # a space inside is AD's business, and AD allows it
        ("Abc\u200b123!x", [R.UNPRINTABLE]),  # zero-width space
        ("Abc\x00123!x", [R.UNPRINTABLE]),
        ("Abc\t123!x", [R.UNPRINTABLE]),
        ("Abc\ud800123!x", [R.UNPRINTABLE]),  # lone surrogate
    ],
)
def test_hygiene(password: str, expected: list[PasswordRule]) -> None:
    assert rules(password) == expected


def test_every_rule_at_once_in_a_fixed_order() -> None:
    pol = policy(400)
    password = " alice archer " + "a" * 300 + "\x00"
    assert rules(password, pol, sam="alice", display_name="Alice Archer") == [
        R.TOO_SHORT, R.TOO_LONG, R.COMPLEXITY, R.CONTAINS_ACCOUNT_NAME, R.CONTAINS_DISPLAY_NAME,
        R.CONTAINS_DISPLAY_NAME, R.SURROUNDING_WHITESPACE, R.UNPRINTABLE,
    ]


def test_a_rule_broken_never_holds_the_password() -> None:
    password = "Xy9-alice-Qrs"
    for broken in precheck(password, policy(20), sam="alice", display_name="Alice Archer"):
        assert password not in repr(broken)


# --- the generator ------------------------------------------------------------------------------------------------

LOOK_ALIKES = set("0Oo1lIi5S2Z8B`'\"")


def test_alphabet() -> None:
    assert not LOOK_ALIKES & set(ALPHABET)
    assert len(set(ALPHABET)) == len(ALPHABET) == 28
    assert {char_class(c) for c in UPPER} == {U}
    assert {char_class(c) for c in LOWER} == {L}
    assert {char_class(c) for c in DIGITS} == {D}
    assert {char_class(c) for c in SYMBOLS} == {S}
    assert set(SYMBOLS) <= AD_NON_ALPHANUMERIC
    assert not set(SYMBOLS) & set("*_~`<>&$\\")  # Slack mrkdwn, HTML, shells
    # Each letter in one case only: "c or C?" never comes up.
    assert not {c.lower() for c in UPPER} & set(LOWER)


def check_generated(secret: SecretStr, pol: PasswordPolicy, sam: str | None, display_name: str | None,
                    length: int) -> str:
    password = secret.get_secret_value()
    assert len(password) == length
    assert set(password) <= set(ALPHABET)
    assert not LOOK_ALIKES & set(password)
    assert " " not in password
    assert precheck(password, pol, sam=sam, display_name=display_name) == []
    assert all(set(password) & set(chars) for chars in (UPPER, LOWER, DIGITS, SYMBOLS))
    if sam and len(sam) >= 3:
        assert sam.casefold() not in password.casefold()
    for token in display_name_tokens(display_name):
        assert token.casefold() not in password.casefold()
    return password


#: Names made of the generator's own characters (and a few others), so that they could appear in a password.
names = st.text(alphabet=ALPHABET + "aeiouxyz", min_size=0, max_size=8)
display_names = st.lists(st.text(alphabet=ALPHABET + "aeiou", min_size=1, max_size=5), max_size=12).flatmap(
    lambda parts: st.lists(st.sampled_from(sorted(DISPLAY_NAME_SEPARATORS)), min_size=len(parts),
                           max_size=len(parts)).map(lambda seps: "".join(p + s for p, s in zip(parts, seps,
                                                                                              strict=True))))


@settings(max_examples=300, deadline=None)
@given(min_length=st.integers(1, 64), complexity=st.booleans(), sam=st.none() | names,
       display_name=st.none() | display_names)
def test_generated_passwords_pass_the_precheck(min_length: int, complexity: bool, sam: str | None,
                                               display_name: str | None) -> None:
    pol = policy(min_length, complexity=complexity)
    secret = generate_temporary_password(pol, sam=sam, display_name=display_name)
    check_generated(secret, pol, sam, display_name, max(min_length, DEFAULT_GENERATED_LENGTH))


@settings(max_examples=100, deadline=None)
@given(min_length=st.integers(1, 64), extra=st.integers(0, 40), sam=st.none() | names,
       display_name=st.none() | display_names)
def test_generated_passwords_of_a_chosen_length(min_length: int, extra: int, sam: str | None,
                                                display_name: str | None) -> None:
    pol = policy(min_length)
    length = max(min_length, MIN_GENERATED_LENGTH) + extra
    check_generated(generate_temporary_password(pol, sam=sam, display_name=display_name, length=length), pol, sam,
                    display_name, length)


def test_names_made_of_the_alphabet_are_avoided() -> None:
    """125 three-letter tokens of the alphabet's own letters, plus C-K-L...: together they would turn up in
    about one draw in ten."""
    tokens = [x + y + z for x in "adefh" for y in "adefh" for z in "adefh"]
    display = " ".join(tokens + [u * 3 for u in UPPER])
    pol = policy(12)
    for _ in range(300):
        check_generated(generate_temporary_password(pol, sam="adef", display_name=display), pol, "adef", display, 16)


def test_longest_policies() -> None:
    pol = policy(MAX_PASSWORD_LENGTH)
    check_generated(generate_temporary_password(pol, sam="alice", display_name="Alice Archer"), pol, "alice",
                    "Alice Archer", MAX_PASSWORD_LENGTH)
    with pytest.raises(ValueError, match="at most 256"):
        generate_temporary_password(policy(MAX_PASSWORD_LENGTH + 1), sam=None, display_name=None)


@pytest.mark.parametrize(("min_length", "length"), [(7, 11), (7, 257), (20, 19), (7, 0), (7, -1)])
def test_lengths_out_of_range_are_refused(min_length: int, length: int) -> None:
    with pytest.raises(ValueError, match="characters"):
        generate_temporary_password(policy(min_length), sam=None, display_name=None, length=length)


def test_lengths_at_the_floor_are_accepted() -> None:
    pol = policy(7)
    assert len(generate_temporary_password(pol, sam=None, display_name=None,
                                           length=MIN_GENERATED_LENGTH).get_secret_value()) == MIN_GENERATED_LENGTH
    assert len(generate_temporary_password(policy(20), sam=None, display_name=None,
                                           length=20).get_secret_value()) == 20


def test_the_secret_is_not_shown_by_accident() -> None:
    secret = generate_temporary_password(policy(), sam="alice", display_name="Alice Archer")
    assert secret.get_secret_value() not in (str(secret), repr(secret), f"{secret}")


def test_distribution_over_2000_draws() -> None:
    """Every character turns up, none far from its share; each class turns up at every position. The bounds are
    some 8 standard deviations wide: this never fails by chance, only when the generator is biased."""
    draws = [generate_temporary_password(policy(), sam="alice", display_name="Alice Archer").get_secret_value()
             for _ in range(2000)]
    counts = Counter("".join(draws))
    assert set(counts) == set(ALPHABET)
    mean = sum(counts.values()) / len(ALPHABET)
    for c in ALPHABET:
        assert 0.75 * mean < counts[c] < 1.25 * mean, (c, counts[c], mean)
    for position in range(DEFAULT_GENERATED_LENGTH):
        assert {char_class(d[position]) for d in draws} == {U, L, D, S}
    assert len(set(draws)) == len(draws)


# --- reading it out -------------------------------------------------------------------------------------------------

def test_groups() -> None:
    assert groups("abcdefghij") == ("abcd", "efgh", "ij")
    assert groups(SecretStr("abcdefgh"), 4) == ("abcd", "efgh")
    assert groups("abc", 5) == ("abc",)
    assert groups("") == ()
    with pytest.raises(ValueError, match="at least 1"):
        groups("abc", 0)


def test_phonetic_example() -> None:
    assert phonetic("Ka7#") == "upper-case K as in Kilo, lower-case a as in alpha, 7 seven, # hash"
    assert phonetic(SecretStr("x!"), separator=" / ") == "lower-case x as in x-ray / ! exclamation mark"


def test_every_alphabet_character_has_a_plain_spelling() -> None:
    spelled = [spell(c) for c in ALPHABET]
    assert len(set(spelled)) == len(ALPHABET)
    for c, words in zip(ALPHABET, spelled, strict=True):
        assert c in words
        assert "(" not in words  # a word of its own, never a Unicode name
    assert phonetic(ALPHABET).count(", ") == len(ALPHABET) - 1


@pytest.mark.parametrize(
    ("c", "words"),
    [
        ("0", "0 zero"),
        ("O", "upper-case O as in Oscar"),
        ("é", "é (latin small letter e with acute)"),
        ("漢", "漢 (cjk unified ideograph-6f22)"),
        (" ", "space"),
        ("\t", "tab"),
        ("\x00", "U+0000"),
        ("\u00a0", "no-break space"),
        ("*", "* asterisk"),
    ],
)
def test_spell_anything(c: str, words: str) -> None:
    assert spell(c) == words

"""The password policy model, the local pre-check and the temporary-password generator. Pure: no I/O.

AD stores ages and durations as negative counts of 100-ns intervals; this module speaks timedelta so that no
caller ever handles that encoding.

The pre-check (``precheck``) applies AD's length and complexity rules locally, conservatively: a password it
passes is accepted by both Windows and Samba as far as length and complexity go, so an on-prem refusal of such
a password points at history, age or a password filter (``bot.domain.verdict`` relies on that). Where the two
DCs count differently, the stricter reading wins:

- minimum length counts code points (Windows and Samba count UTF-16 units, never fewer); the 256 maximum
  counts UTF-16 units (never more than code points);
- the five complexity classes: upper case, lower case (ASCII, or any Unicode cased letter), ASCII digits 0-9,
  the ASCII non-alphanumerics ``~!@#$%^&*_-+=`|\\(){}[]:;"'<>,.?/`` (Windows' and Samba's list), and
  "other letters": non-ASCII letters without case (CJK, Arabic, Hebrew...). Samba also counts any other
  non-ASCII character (a currency sign, an emoji) in that fifth class; Windows does not, so neither do we. A
  space counts in no class on either;
- the account-name and display-name parts are Windows' (Samba 4.17 skips them on an admin reset) and apply
  whatever ``complexity`` says: they are the bot's own rule for every password it sets. Comparison is
  case-insensitive by ``str.casefold`` (which also matches "ß" with "ss": stricter than AD, never looser).

The generator (``generate_temporary_password``) draws from ``ALPHABET`` with ``secrets`` only, and redraws
until ``precheck`` finds nothing and all four ASCII classes are present: rejection sampling keeps the result
uniform over the acceptable passwords.
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pydantic import SecretStr

from bot.logs import HELD_SECRET_TTL_S, remember_secret

#: AD's "never" for an age or duration (the most negative 64-bit integer).
AD_NEVER = -9223372036854775808


def ad_interval(value: int | str | None) -> timedelta | None:
    """An AD interval as a timedelta; None for "never" or an absent value."""
    if value is None or value == "":
        return None
    n = int(value)
    if n == AD_NEVER:
        return None
    return timedelta(microseconds=abs(n) / 10)


_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)


def filetime_to_datetime(value: int) -> datetime | None:
    """A FILETIME (``pwdLastSet``) as an aware UTC datetime; None for 0 ("must change") and the "never" sentinels."""
    if value <= 0 or value >= 0x7FFFFFFFFFFFFFFF:
        return None
    return _FILETIME_EPOCH + timedelta(microseconds=value // 10)


@dataclass(frozen=True)
class PasswordPolicy:
    """The policy that applies to one account: the domain's, or the fine-grained PSO that overrides it."""

    source: str
    min_length: int
    history_length: int
    complexity: bool
    min_age: timedelta | None
    max_age: timedelta | None


#: AD's hard maximum for a password, in UTF-16 code units (Windows and Samba alike).
MAX_PASSWORD_LENGTH = 256

#: Complexity: at least this many of the five classes, when the policy asks for complexity.
COMPLEXITY_CLASSES_NEEDED = 3

#: Account names and display-name tokens shorter than this are not looked for in the password (AD's rule).
MIN_NAME_TOKEN_LENGTH = 3

#: What AD splits a displayName on to find its tokens: comma, period, hyphen, underscore, space, hash, tab.
DISPLAY_NAME_SEPARATORS = frozenset(",.-_ #\t")

#: The ASCII characters AD counts as "non-alphanumeric" (Windows' documented list; Samba uses the same one).
AD_NON_ALPHANUMERIC = frozenset("~!@#$%^&*_-+=`|\\(){}[]:;\"'<>,.?/")


class CharClass(StrEnum):
    """AD's five complexity classes."""

    UPPER = "upper"
    LOWER = "lower"
    DIGIT = "digit"
    SYMBOL = "symbol"  # one of AD_NON_ALPHANUMERIC
    OTHER_LETTER = "other_letter"  # a non-ASCII letter without case (CJK, Arabic, Hebrew, ...)


class PasswordRule(StrEnum):
    """A local rule a password can break; bot.messages has the sentence for each. Values are stable."""

    EMPTY = "empty"  # empty or only whitespace
    TOO_SHORT = "too_short"  # needed = policy.min_length, actual = length in code points
    TOO_LONG = "too_long"  # needed = 256, actual = length in UTF-16 units
    COMPLEXITY = "complexity"  # needed = 3, actual = classes present, classes = which
    CONTAINS_ACCOUNT_NAME = "contains_account_name"  # token = the sAMAccountName
    CONTAINS_DISPLAY_NAME = "contains_display_name"  # token = the displayName token found, as written there
    SURROUNDING_WHITESPACE = "surrounding_whitespace"  # leading or trailing whitespace: lost in copy and paste
    UNPRINTABLE = "unprintable"  # a control, format (zero-width...) or lone surrogate character


#: The rules that are AD's (Windows') own; the others are the bot's hygiene rules.
AD_RULES = frozenset({
    PasswordRule.TOO_SHORT,
    PasswordRule.TOO_LONG,
    PasswordRule.COMPLEXITY,
    PasswordRule.CONTAINS_ACCOUNT_NAME,
    PasswordRule.CONTAINS_DISPLAY_NAME,
})


@dataclass(frozen=True)
class RuleBroken:
    """One rule a password breaks, as data (the sentence is built in bot.messages). Never holds the password;
    ``token`` is the account name or display-name token found in it."""

    rule: PasswordRule
    needed: int | None = None
    actual: int | None = None
    token: str | None = None
    classes: frozenset[CharClass] | None = None


def char_class(c: str) -> CharClass | None:
    """The complexity class one character counts in, or None (a space, a currency sign, an emoji...)."""
    if c.isascii():
        if c.isdigit():
            return CharClass.DIGIT
        if c.isupper():
            return CharClass.UPPER
        if c.islower():
            return CharClass.LOWER
        return CharClass.SYMBOL if c in AD_NON_ALPHANUMERIC else None
    if c.isupper():
        return CharClass.UPPER
    if c.islower():
        return CharClass.LOWER
    if c.isalpha():
        return CharClass.OTHER_LETTER
    return None


def char_classes(password: str) -> frozenset[CharClass]:
    """Which of the five complexity classes ``password`` has."""
    return frozenset(k for k in map(char_class, password) if k is not None)


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units, AD's unit: a character outside the BMP (an emoji) counts two."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def display_name_tokens(display_name: str | None) -> tuple[str, ...]:
    """The displayName tokens AD looks for in a password: split on ``DISPLAY_NAME_SEPARATORS``, tokens of 3+
    characters, each once (case-insensitively), in order."""
    if not display_name:
        return ()
    tokens: list[str] = []
    seen: set[str] = set()
    current: list[str] = []
    for c in [*display_name, " "]:
        if c not in DISPLAY_NAME_SEPARATORS:
            current.append(c)
            continue
        token = "".join(current)
        current.clear()
        if len(token) >= MIN_NAME_TOKEN_LENGTH and token.casefold() not in seen:
            seen.add(token.casefold())
            tokens.append(token)
    return tuple(tokens)


def _unprintable(c: str) -> bool:
    return unicodedata.category(c) in ("Cc", "Cf", "Cs")


def precheck(password: str, policy: PasswordPolicy, *, sam: str | None,
             display_name: str | None) -> list[RuleBroken]:
    """Every local rule ``password`` breaks for the account (``sam``, ``display_name``) under ``policy``, in a
    fixed order (that of ``PasswordRule``, display-name tokens in displayName order). Empty: it passes locally."""
    broken: list[RuleBroken] = []
    if not password.strip():
        broken.append(RuleBroken(PasswordRule.EMPTY))
    if len(password) < policy.min_length:
        broken.append(RuleBroken(PasswordRule.TOO_SHORT, needed=policy.min_length, actual=len(password)))
    units = utf16_length(password)
    if units > MAX_PASSWORD_LENGTH:
        broken.append(RuleBroken(PasswordRule.TOO_LONG, needed=MAX_PASSWORD_LENGTH, actual=units))
    if policy.complexity:
        classes = char_classes(password)
        if len(classes) < COMPLEXITY_CLASSES_NEEDED:
            broken.append(RuleBroken(PasswordRule.COMPLEXITY, needed=COMPLEXITY_CLASSES_NEEDED,
                                     actual=len(classes), classes=classes))
    folded = password.casefold()
    if sam and len(sam) >= MIN_NAME_TOKEN_LENGTH and sam.casefold() in folded:
        broken.append(RuleBroken(PasswordRule.CONTAINS_ACCOUNT_NAME, token=sam))
    broken.extend(RuleBroken(PasswordRule.CONTAINS_DISPLAY_NAME, token=token)
                  for token in display_name_tokens(display_name) if token.casefold() in folded)
    if password.strip() and password != password.strip():
        broken.append(RuleBroken(PasswordRule.SURROUNDING_WHITESPACE))
    if any(_unprintable(c) for c in password):
        broken.append(RuleBroken(PasswordRule.UNPRINTABLE))
    return broken


# --- The temporary-password generator -------------------------------------------------------------------------

#: The generator's alphabet, 28 characters chosen to be read off a screen and dictated over the phone:
#: - never a look-alike: no 0 O o Q, no 1 l I i, no 5 S s, no 2 Z z, no 8 B b; and to keep 6 and 9, no G b
#:   (like 6) and no g q (like 9); no U u V v (U/V, VV/W), no m (rn/m);
#: - each letter in one case only, so "c or C?" never comes up: the upper-case letters are those whose lower
#:   case is just a smaller copy (c k p w x y) plus L (whose lower case is excluded);
#: - symbols that are easy to name, are in AD's non-alphanumeric list, and mean nothing to Slack's mrkdwn
#:   (no * _ ~ `), HTML (< > &), shells ($ \ ' ") or readers (, . : ; look like specks; - and _ like each other).
UPPER = "CKLPWXY"
LOWER = "adefhjnrt"
DIGITS = "34679"
SYMBOLS = "!#%+=?@"
ALPHABET = UPPER + LOWER + DIGITS + SYMBOLS

#: The default length of a temporary password (longer when the policy asks for more).
DEFAULT_GENERATED_LENGTH = 16

#: The shortest temporary password the generator makes even when asked for less (about 57 bits of entropy).
MIN_GENERATED_LENGTH = 12

#: Redraws before giving up (never reached in practice: each draw is refused with a small probability).
_MAX_DRAWS = 10_000


def generate_temporary_password(policy: PasswordPolicy, *, sam: str | None, display_name: str | None,
                                length: int | None = None) -> SecretStr:
    """A temporary password for the account: ``length`` characters (default ``max(policy.min_length, 16)``)
    from ``ALPHABET``, with an upper-case letter, a lower-case letter, a digit and a symbol, passing
    ``precheck`` (so no sAMAccountName and no displayName token). ``ValueError`` when ``length`` is under
    ``max(policy.min_length, 12)`` or the policy asks for more than 256 characters."""
    if policy.min_length > MAX_PASSWORD_LENGTH:
        raise ValueError(f"the policy asks for at least {policy.min_length} characters; AD allows at most "
                         f"{MAX_PASSWORD_LENGTH}")
    floor = max(policy.min_length, MIN_GENERATED_LENGTH)
    if length is None:
        length = max(policy.min_length, DEFAULT_GENERATED_LENGTH)
    elif not floor <= length <= MAX_PASSWORD_LENGTH:
        raise ValueError(f"a temporary password for this policy has {floor} to {MAX_PASSWORD_LENGTH} characters, "
                         f"not {length}")
    for _ in range(_MAX_DRAWS):
        candidate = "".join(secrets.choice(ALPHABET) for _ in range(length))
        if _has_four_classes(candidate) and not precheck(candidate, policy, sam=sam, display_name=display_name):
            remember_secret(candidate, ttl=HELD_SECRET_TTL_S)  # no log line may hold it, whoever logs it
            return SecretStr(candidate)
    raise ValueError("no password avoiding this account's names could be drawn")  # pragma: no cover


def _has_four_classes(candidate: str) -> bool:
    return all(any(c in chars for c in candidate) for chars in (UPPER, LOWER, DIGITS, SYMBOLS))


def _reveal(password: str | SecretStr) -> str:
    return password.get_secret_value() if isinstance(password, SecretStr) else password


def groups(password: str | SecretStr, size: int = 4) -> tuple[str, ...]:
    """The password cut into groups of ``size`` characters, for display only (the password has no spaces)."""
    if size < 1:
        raise ValueError("size must be at least 1")
    text = _reveal(password)
    return tuple(text[i:i + size] for i in range(0, len(text), size))


# --- Spelling it out ------------------------------------------------------------------------------------------

NATO = {
    "a": "Alpha", "b": "Bravo", "c": "Charlie", "d": "Delta", "e": "Echo", "f": "Foxtrot", "g": "Golf",
    "h": "Hotel", "i": "India", "j": "Juliet", "k": "Kilo", "l": "Lima", "m": "Mike", "n": "November",
    "o": "Oscar", "p": "Papa", "q": "Quebec", "r": "Romeo", "s": "Sierra", "t": "Tango", "u": "Uniform",
    "v": "Victor", "w": "Whiskey", "x": "X-ray", "y": "Yankee", "z": "Zulu",
}

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

SYMBOL_NAMES = {
    "!": "exclamation mark", "#": "hash", "%": "percent", "+": "plus", "=": "equals", "?": "question mark",
    "@": "at sign", "$": "dollar", "&": "ampersand", "*": "asterisk", "^": "caret", "~": "tilde",
    "-": "hyphen", "_": "underscore", ".": "full stop", ",": "comma", ":": "colon", ";": "semicolon",
    "/": "slash", "\\": "backslash", "|": "vertical bar", "'": "apostrophe", '"': "double quote",
    "`": "backtick", "(": "opening parenthesis", ")": "closing parenthesis", "[": "opening square bracket",
    "]": "closing square bracket", "{": "opening curly brace", "}": "closing curly brace", "<": "less-than sign",
    ">": "greater-than sign", " ": "space", "\t": "tab",
}


def spell(c: str) -> str:
    """One character as said over the phone: "upper-case K as in Kilo", "lower-case m as in mike", "7 seven",
    "# hash"; anything else by its Unicode name."""
    if c.isascii() and c.isalpha():
        word = NATO[c.lower()]
        return f"upper-case {c} as in {word}" if c.isupper() else f"lower-case {c} as in {word.lower()}"
    if c.isascii() and c.isdigit():
        return f"{c} {DIGIT_NAMES[int(c)]}"
    if c.isspace() or not c.isprintable():
        return SYMBOL_NAMES.get(c) or unicodedata.name(c, "").lower() or f"U+{ord(c):04X}"
    if c in SYMBOL_NAMES:
        return f"{c} {SYMBOL_NAMES[c]}"
    return f"{c} ({unicodedata.name(c, f'U+{ord(c):04X}').lower()})"


def phonetic(password: str | SecretStr, *, separator: str = ", ") -> str:
    """The whole password spelled out, character by character, joined by ``separator``."""
    return separator.join(spell(c) for c in _reveal(password))

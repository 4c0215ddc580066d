"""Parsing what people type: ``/reset`` arguments and the many ways to name a person. Pure functions.

Slack rewrites what people type before the bot sees it. It always sends the three characters it uses for control
sequences as entities (a typed ``&`` arrives as ``&amp;``, ``<`` as ``&lt;``, ``>`` as ``&gt;``), and, when a
command has ``should_escape`` on (as ``/reset`` and ``/reset-status`` do), ``@alice`` arrives as ``<@U123|alice>``
(or ``<@U123>``), ``#general`` as ``<#C123|general>``, a URL as ``<https://…>`` or, made with the link tool,
``<https://…|its text>``, an email address as ``<mailto:a@b.c|a@b.c>`` and ``@here`` as ``<!here>``. Both forms,
and the raw ones, are accepted. A person is named only by a real control sequence: ``&lt;@U123&gt;`` is text someone
typed. What is kept as words (the reason) is turned back into plain text by :func:`plain_text`, with no control
sequence left in it: the sentences escape it again when they show it (``bot.messages.format.esc``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from bot.settings import VerifyMethod

_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
_MAILTO = re.compile(r"^<mailto:([^|>]+)(?:\|[^>]*)?>$")
#: An address: one ``@``, and a domain of two or more dot-separated labels. Every repeat is possessive and the
#: classes around each separator exclude it, so the match never backtracks: linear in the token's length (the
#: old ``[^@\s<>]+\.[^@\s<>]+`` let the dot fall anywhere, quadratic on ``x@a.a.a...@``).
_EMAILISH = re.compile(r"^[^@\s<>]++@[^@\s<>.]++(?:\.[^@\s<>.]++)++$")
_SAM = re.compile(r"^[A-Za-z0-9._\-$]{1,20}$")
#: A control sequence (``<…>``, no ``<`` or ``>`` inside: Slack escapes those) or a run of other non-space text;
#: one word may join both (``x<@U1>``), and a link's label may hold spaces without splitting the word.
_WORD = re.compile(r"(?:<[^<>]*>|[^\s<])+|<")
_SEQUENCE = re.compile(r"<([^<>]*)>")

FLAGS = ("--unlock", "--tap", "--revoke-sessions")
#: The option that takes a value: ``--verify METHOD`` (or ``--verify=METHOD``) starts that caller verification.
VERIFY_FLAG = "--verify"
#: The longest reason ``/reset`` takes: the deny modal's bound too. A reason is a sentence or two for the
#: approver and the target; 500 characters keep the request message far inside Slack's 3,000 per section
#: (a longer one failed the post after the request was stored, leaving it pending with no thread).
MAX_REASON_CHARS = 500
#: The longest name ``/reset`` looks up: Entra's limit for a display name (a UPN or an address is shorter:
#: 113 and 254), checked before any pattern reads the token.
MAX_TARGET_CHARS = 256


class TargetKind(StrEnum):
    SLACK_USER = "slack_user"
    EMAIL_OR_UPN = "email_or_upn"
    SAM = "sam"
    NAME = "name"


@dataclass(frozen=True)
class TargetRef:
    kind: TargetKind
    value: str


@dataclass(frozen=True)
class ResetArgs:
    target: TargetRef
    reason: str
    unlock: bool
    tap: bool
    verify: VerifyMethod | None = None
    #: Also revoke the target's sign-in sessions once the reset is made (the caller says the account was
    #: compromised): whoever holds a session now is signed out with the old password.
    revoke_sessions: bool = False


class ParseProblem(StrEnum):
    NO_USER = "no_user"
    UNKNOWN_FLAG = "unknown_flag"
    BAD_USER = "bad_user"
    DUPLICATE_FLAG = "duplicate_flag"
    REASON_TOO_LONG = "reason_too_long"
    BAD_VERIFY_METHOD = "bad_verify_method"


@dataclass(frozen=True)
class ParseError:
    problem: ParseProblem
    detail: str = ""


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _sequence_words(body: str) -> str:
    """One control sequence as the words it stands for: ``<@U1|bob>`` → ``@bob``, ``<#C1|general>`` →
    ``#general``, ``<!here>`` → ``@here``, ``<!subteam^S1|@helpdesk>`` → ``@helpdesk``, ``<!date^…|Nov 25>`` →
    ``Nov 25``, ``<mailto:a@b.c|Bob>`` → ``a@b.c``, ``<https://x|Click>`` → ``Click (https://x)``: a link's real
    target is always shown, never hidden behind its label."""
    target, _, label = body.partition("|")
    if target.startswith("@"):
        return "@" + (label or target[1:])
    if target.startswith("#"):
        return "#" + (label or target[1:])
    if target.startswith("!"):
        if label:
            return label if target.startswith("!date^") or label.startswith("@") else "@" + label.lstrip("@")
        return "@" + target[1:].split("^", 1)[-1]
    if target.startswith("mailto:"):
        return target.removeprefix("mailto:")
    if label and label != target and label != target.split("://", 1)[-1]:
        return f"{label} ({target})"
    return target


def plain_text(wire: str) -> str:
    """Slack's wire form of typed text as the plain words the person meant: control sequences turned into their
    words (see :func:`_sequence_words`), entities decoded. The result holds no control sequence Slack would act on
    as such; whatever ``<``, ``>`` and ``&`` it holds are characters the person typed."""
    return _unescape(_SEQUENCE.sub(lambda m: _sequence_words(_unescape(m.group(1))), wire))


def parse_target(token: str) -> TargetRef | None:
    """What kind of name ``token`` (in Slack's wire form) is; None when it cannot name anyone (longer than any
    name can be, too)."""
    token = token.strip()
    if len(token) > MAX_TARGET_CHARS:
        return None
    if m := _MENTION.match(token):
        return TargetRef(TargetKind.SLACK_USER, m.group(1))
    if m := _MAILTO.match(token):
        return TargetRef(TargetKind.EMAIL_OR_UPN, _unescape(m.group(1)).lower())
    token = _unescape(token)  # anything else is text the person typed, entities and all
    if token.startswith("@") and len(token) > 1:
        token = token[1:]  # "@alice" typed where Slack did not turn it into a mention: try it as a name
    if _EMAILISH.match(token):
        return TargetRef(TargetKind.EMAIL_OR_UPN, token.lower())
    if "\\" in token:  # CORP\alice
        token = token.rsplit("\\", 1)[1]
    if _SAM.match(token):
        return TargetRef(TargetKind.SAM, token)
    if token and not any(c in token for c in "<>*()\\\x00"):
        return TargetRef(TargetKind.NAME, token)
    return None


def _verify_method(value: str) -> VerifyMethod | ParseError:
    try:
        return VerifyMethod(value.lower())
    except ValueError:
        return ParseError(ParseProblem.BAD_VERIFY_METHOD, value[:40])


def _take_verify(words: list[str]) -> tuple[list[str], VerifyMethod | None] | ParseError:
    """``--verify METHOD`` (or ``--verify=METHOD``) taken out of ``words``: the other words and the method."""
    others: list[str] = []
    verify: VerifyMethod | None = None
    seen = False
    it = iter(words)
    for word in it:
        name, eq, value = word.partition("=")
        if name.lower() != VERIFY_FLAG:
            others.append(word)
            continue
        if seen:
            return ParseError(ParseProblem.DUPLICATE_FLAG, VERIFY_FLAG)
        seen = True
        chosen = _verify_method(value if eq else next(it, ""))
        if isinstance(chosen, ParseError):
            return chosen
        verify = chosen
    return others, verify


def parse_reset(text: str) -> ResetArgs | ParseError:
    """``<user> [reason…] [--unlock] [--tap] [--revoke-sessions] [--verify METHOD]``; flags may stand anywhere,
    the first other word is the user, and the rest, at most ``MAX_REASON_CHARS`` long, the reason.

    ``text`` is Slack's wire form; the reason comes back as plain words (:func:`plain_text`)."""
    taken = _take_verify(_WORD.findall(text or ""))
    if isinstance(taken, ParseError):
        return taken
    words, verify = taken
    flags: set[str] = set()
    rest: list[str] = []
    for word in words:
        if word.startswith("--"):
            flag = word.lower()
            if flag not in FLAGS:
                return ParseError(ParseProblem.UNKNOWN_FLAG, word)
            if flag in flags:
                return ParseError(ParseProblem.DUPLICATE_FLAG, word)
            flags.add(flag)
        else:
            rest.append(word)
    if not rest:
        return ParseError(ParseProblem.NO_USER)
    target = parse_target(rest[0])
    if target is None:
        return ParseError(ParseProblem.BAD_USER, rest[0][:MAX_TARGET_CHARS + 1])
    reason = plain_text(" ".join(rest[1:]))
    if len(reason) > MAX_REASON_CHARS:
        return ParseError(ParseProblem.REASON_TOO_LONG, str(len(reason)))
    return ResetArgs(target=target, reason=reason, unlock="--unlock" in flags, tap="--tap" in flags,
                     revoke_sessions="--revoke-sessions" in flags, verify=verify)

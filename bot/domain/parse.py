"""Parsing what people type: ``/reset`` arguments and the many ways to name a person. Pure functions.

Slack rewrites some input before the bot sees it when a command has ``should_escape`` on (as ``/reset``
does): ``@alice`` arrives as ``<@U123|alice>`` (or ``<@U123>``), and an email address as
``<mailto:a@b.c|a@b.c>``. Both forms, and the raw ones, are accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
_MAILTO = re.compile(r"^<mailto:([^|>]+)(?:\|[^>]*)?>$")
#: An address: one ``@``, and a domain of two or more dot-separated labels. Every repeat is possessive and the
#: classes around each separator exclude it, so the match never backtracks: linear in the token's length (the
#: old ``[^@\s<>]+\.[^@\s<>]+`` let the dot fall anywhere, quadratic on ``x@a.a.a...@``).
_EMAILISH = re.compile(r"^[^@\s<>]++@[^@\s<>.]++(?:\.[^@\s<>.]++)++$")
_SAM = re.compile(r"^[A-Za-z0-9._\-$]{1,20}$")

FLAGS = ("--unlock", "--tap")
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


class ParseProblem(StrEnum):
    NO_USER = "no_user"
    UNKNOWN_FLAG = "unknown_flag"
    BAD_USER = "bad_user"
    DUPLICATE_FLAG = "duplicate_flag"
    REASON_TOO_LONG = "reason_too_long"


@dataclass(frozen=True)
class ParseError:
    problem: ParseProblem
    detail: str = ""


def parse_target(token: str) -> TargetRef | None:
    """What kind of name ``token`` is; None when it cannot name anyone (longer than any name can be, too)."""
    token = token.strip()
    if len(token) > MAX_TARGET_CHARS:
        return None
    if m := _MENTION.match(token):
        return TargetRef(TargetKind.SLACK_USER, m.group(1))
    if m := _MAILTO.match(token):
        return TargetRef(TargetKind.EMAIL_OR_UPN, m.group(1).lower())
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


def parse_reset(text: str) -> ResetArgs | ParseError:
    """``<user> [reason…] [--unlock] [--tap]``; flags may stand anywhere, the first other word is the user, and
    the rest, at most ``MAX_REASON_CHARS`` long, the reason."""
    words = (text or "").split()
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
    reason = " ".join(rest[1:])
    if len(reason) > MAX_REASON_CHARS:
        return ParseError(ParseProblem.REASON_TOO_LONG, str(len(reason)))
    return ResetArgs(target=target, reason=reason, unlock="--unlock" in flags, tap="--tap" in flags)

"""What a reset's outcome means, in one verdict. Pure: plain data in, a ``Verdict`` out.

The inputs are what the reset service saw: the resetPassword operation's final ``status`` and
``statusDetail``, or the kind of error that ended it before an operation existed; the local pre-check of the
password that was sent (``bot.policy.precheck``: never the password itself, which this module never receives);
and whether the AD account has DONT_EXPIRE_PASSWD.

statusDetail texts for on-prem outcomes are not documented by Microsoft, so nothing here depends on a sentence:
a text is classified by its stable markers, in this order (the first that matches decides):

1. "must change ... could not be applied" with "the password was set" (and no "not changed"): the password
   is in AD but the must-change flag is not → SUCCEEDED_NO_MUST_CHANGE (the operation says ``failed``);
2. Entra Connect's codes: SSPR_0010 → WRITEBACK_OFF; SSPR_0030 or event 31034 → AGENT_OFFLINE; SSPR_0029
   → AGENT_OFFLINE (DC unreachable, or the connector account cannot sign in); 33004 → PROTECTED_ON_PREM;
   33005 → DISABLED_ON_PREM; 33006 → LOCKED_ON_PREM; 33008, AD's 0000052D or "constraint violation"
   → POLICY_REJECTED; 31011 (a generic failure) → UNKNOWN;
3. words, for texts without a code: "writeback ... not enabled/disabled", "could not reach", "offline",
   "protected", "disabled", "locked", a policy word ("too short", "complexity", "history", "too young"...);
4. otherwise UNKNOWN.

Which policy rule refused (POLICY_REJECTED), by the words of the text first, then by the local pre-check:
"history" → HISTORY; "too young"/"age" → MIN_AGE; "too short"/"too long"/"length" → LENGTH; "complexity" →
COMPLEXITY when the pre-check also fails complexity or a name rule (sAMAccountName, displayName), else FILTER
(Samba reports a password filter's refusal with the complexity text, and the pre-check is never looser than AD);
no word (Windows says only 0000052D) → LENGTH or COMPLEXITY when the pre-check fails that, else
FILTER_OR_HISTORY_OR_AGE.

Errors before an operation existed (``ErrorKind``; ``error_kind`` maps bot.errors' exceptions): 403 →
ROLE_TOO_WEAK; 429 after the retries → THROTTLED; 400 → CLOUD_REJECTED (rule BANNED for "blocked"/"banned"/
"Password Protection", else COMPLEXITY or LENGTH by the words) or UNKNOWN for any other 400; Graph unavailable,
polling timed out, re-link needed, anything else → UNKNOWN (``detail["reason"]`` says which). An operation still
``running``/``notStarted`` when polling gave up → UNKNOWN (reason ``not_finished``).

The request's final state (``Verdict.final_state``, table ``FINAL_STATE``):
- ``succeeded``: SUCCEEDED, SUCCEEDED_NO_MUST_CHANGE (the password is set on-prem: reveal it);
- ``rejected`` (the directory said no to this password or this account; the password was not changed):
  POLICY_REJECTED, CLOUD_REJECTED, PROTECTED_ON_PREM, DISABLED_ON_PREM, LOCKED_ON_PREM;
- ``failed`` (the reset could not be made; nothing says the password or the account is at fault):
  ROLE_TOO_WEAK, WRITEBACK_OFF, AGENT_OFFLINE, THROTTLED, UNKNOWN.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from bot.domain.lifecycle import RequestState
from bot.errors import (
    EntraReauthRequiredError,
    EntraUnavailableError,
    GraphPermissionError,
    GraphRejectedError,
    GraphThrottledError,
    GraphUnavailableError,
)
from bot.policy import PasswordRule, RuleBroken


class VerdictKind(StrEnum):
    """What happened to a reset; bot.messages has the sentence for each. Values are stable (audit)."""

    SUCCEEDED = "succeeded"  # written back; the user must change it at next sign-in
    SUCCEEDED_NO_MUST_CHANGE = "succeeded_no_must_change"  # written back; must-change not applied on-prem
    POLICY_REJECTED = "policy_rejected"  # the on-prem password policy refused it; ``rule`` says which
    CLOUD_REJECTED = "cloud_rejected"  # Entra refused it before writeback (banned password list, cloud policy)
    ROLE_TOO_WEAK = "role_too_weak"  # the agent's Entra role may not reset this target (403)
    WRITEBACK_OFF = "writeback_off"  # password writeback is not enabled for the tenant
    AGENT_OFFLINE = "agent_offline"  # writeback agent or DC unreachable, or its AD account cannot sign in
    PROTECTED_ON_PREM = "protected_on_prem"  # 33004: protected account (adminCount=1) or no permission on it
    DISABLED_ON_PREM = "disabled_on_prem"  # 33005
    LOCKED_ON_PREM = "locked_on_prem"  # 33006
    THROTTLED = "throttled"  # Graph still answered 429 after the bounded retries
    UNKNOWN = "unknown"  # anything else: say so, with the correlation id


class RejectionRule(StrEnum):
    """Which rule refused the password, as far as it can be known. Values are stable (audit)."""

    LENGTH = "length"
    COMPLEXITY = "complexity"
    HISTORY = "history"
    MIN_AGE = "min_age"
    FILTER = "filter"  # the refusal says "complexity" but the password passes complexity: a password filter
    FILTER_OR_HISTORY_OR_AGE = "filter_or_history_or_age"  # passes length and complexity, reason not given
    BANNED = "banned"  # CLOUD_REJECTED: Entra Password Protection's banned list


class ErrorKind(StrEnum):
    """How a reset ended before there was an operation to poll (or without its outcome)."""

    PERMISSION_DENIED = "permission_denied"  # 403 Authorization_RequestDenied
    THROTTLED = "throttled"  # 429 after the bounded retries
    UNAVAILABLE = "unavailable"  # Graph or the token endpoint answered 5xx or could not be reached
    BAD_REQUEST = "bad_request"  # 400 on resetPassword: the cloud refused the password, or another 400
    POLL_TIMEOUT = "poll_timeout"  # the operation was not finished when polling gave up
    REAUTH_REQUIRED = "reauth_required"  # 401: the agent's linked sign-in no longer works
    OTHER = "other"  # any other error (an unexpected answer, a 404...)


def error_kind(exc: BaseException) -> ErrorKind:
    """The ``ErrorKind`` of an exception from bot.clients (bot.errors), for ``ResetOutcome.error``."""
    for cls, kind in (
        (GraphPermissionError, ErrorKind.PERMISSION_DENIED),
        (GraphThrottledError, ErrorKind.THROTTLED),
        (GraphUnavailableError, ErrorKind.UNAVAILABLE),
        (EntraUnavailableError, ErrorKind.UNAVAILABLE),
        (GraphRejectedError, ErrorKind.BAD_REQUEST),
        (EntraReauthRequiredError, ErrorKind.REAUTH_REQUIRED),
    ):
        if isinstance(exc, cls):
            return kind
    return ErrorKind.OTHER


#: The request's final state for each verdict (see the module docstring).
FINAL_STATE: Mapping[VerdictKind, RequestState] = MappingProxyType({
    VerdictKind.SUCCEEDED: RequestState.SUCCEEDED,
    VerdictKind.SUCCEEDED_NO_MUST_CHANGE: RequestState.SUCCEEDED,
    VerdictKind.POLICY_REJECTED: RequestState.REJECTED,
    VerdictKind.CLOUD_REJECTED: RequestState.REJECTED,
    VerdictKind.PROTECTED_ON_PREM: RequestState.REJECTED,
    VerdictKind.DISABLED_ON_PREM: RequestState.REJECTED,
    VerdictKind.LOCKED_ON_PREM: RequestState.REJECTED,
    VerdictKind.ROLE_TOO_WEAK: RequestState.FAILED,
    VerdictKind.WRITEBACK_OFF: RequestState.FAILED,
    VerdictKind.AGENT_OFFLINE: RequestState.FAILED,
    VerdictKind.THROTTLED: RequestState.FAILED,
    VerdictKind.UNKNOWN: RequestState.FAILED,
})


@dataclass(frozen=True)
class ResetOutcome:
    """What the reset service saw. Either ``status`` (+ ``status_detail``) of the finished operation, or
    ``error`` (+ Graph's ``error_code`` and ``error_message``); ``error`` wins when both are given."""

    status: str | None = None  # "succeeded" / "failed" (case-insensitive)
    status_detail: str | None = None
    error: ErrorKind | None = None
    error_code: str | None = None  # Graph's error.code, e.g. "Request_BadRequest"
    error_message: str | None = None  # Graph's error.message (Graph never echoes a password)
    precheck: Sequence[RuleBroken] = ()  # bot.policy.precheck of the password that was sent
    never_expires: bool = False  # the AD account has DONT_EXPIRE_PASSWD (0x10000)

    def __post_init__(self) -> None:
        object.__setattr__(self, "precheck", tuple(self.precheck))


@dataclass(frozen=True)
class Verdict:
    """The verdict: its kind, the rule when a policy refused, and detail safe for the audit (markers, reason
    keys, the rules the pre-check found, the service's own text; never the password, never a name token)."""

    kind: VerdictKind
    rule: RejectionRule | None = None
    detail: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    @property
    def final_state(self) -> RequestState:
        return FINAL_STATE[self.kind]


#: statusDetail and error texts kept in the audit are cut to this many characters.
MAX_TEXT_IN_DETAIL = 500


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def _code(code: str) -> re.Pattern[str]:
    return _rx(rf"(?<![0-9A-Za-z]){code}(?![0-9A-Za-z])")


_MUST_CHANGE = _rx(r"must[ -]change")
_PASSWORD_WAS_SET = _rx(r"password (was|has been) (set|changed)")
_NOT_CHANGED = _rx(r"\bnot (been )?changed\b")

_SSPR_0010 = _code(r"SSPR[_ -]?0010")
_SSPR_0029 = _code(r"SSPR[_ -]?0029")
_SSPR_0030 = _code(r"SSPR[_ -]?0030")
_EV_RELAY = _code("31034")
_EV_PROTECTED = _code("33004")
_EV_DISABLED = _code("33005")
_EV_LOCKED = _code("33006")
_EV_POLICY = _code("33008")
_AD_CONSTRAINT = _rx(r"0000052D|constraint[ _]?violation")
_EV_FAILED = _code("31011")

_SIGN_IN = _rx(r"sign[ -]?in|\bbind\b|logon|log on|credential")
_NOT_FOUND = _rx(r"not found|no such object|does not exist")

_WORD_WRITEBACK_OFF = _rx(r"writeback[^.]*\b(not enabled|disabled|turned off)")
_WORD_OFFLINE = _rx(r"could not reach|cannot reach|unreachable|did not answer|not respond|offline|connectivity")
_WORD_PROTECTED = _rx(r"protected|adminsdholder|admincount|no permission|insufficient access")
_WORD_DISABLED = _rx(r"\bdisabled\b")
_WORD_LOCKED = _rx(r"\blocked\b")

_RULE_HISTORY = _rx(r"histor|recently used|already used|\bre-?used?\b")
_RULE_AGE = _rx(r"too young|too recent|\bage\b|minpwdage")
_RULE_LENGTH = _rx(r"too short|too long|\blength\b|minpwdlength")
_RULE_COMPLEXITY = _rx(r"complex")
_WORD_POLICY = _rx(r"password policy|policy refused|password filter")

_CLOUD_BANNED = _rx(r"blocked|banned|password protection")

_LENGTH_EVIDENCE = frozenset({PasswordRule.TOO_SHORT, PasswordRule.TOO_LONG, PasswordRule.EMPTY})
_COMPLEXITY_EVIDENCE = frozenset({PasswordRule.COMPLEXITY, PasswordRule.CONTAINS_ACCOUNT_NAME,
                                  PasswordRule.CONTAINS_DISPLAY_NAME})


def classify(outcome: ResetOutcome) -> Verdict:
    """The verdict for one reset's outcome (see the module docstring for every marker and the mapping)."""
    local = {broken.rule for broken in outcome.precheck}
    base: dict[str, str] = {}
    if local:
        base["local_rules"] = ",".join(sorted(local))
    if outcome.error is not None:
        return _classify_error(outcome, base)
    status = (outcome.status or "").strip().lower()
    base["status"] = _safe_text(status) or "none"
    if outcome.status_detail:
        base["status_detail"] = _safe_text(outcome.status_detail)
    if status == "succeeded":
        if outcome.never_expires:
            return _verdict(VerdictKind.SUCCEEDED_NO_MUST_CHANGE, None, base, marker="status",
                            reason="never_expires")
        return _verdict(VerdictKind.SUCCEEDED, None, base, marker="status")
    if status != "failed":
        return _verdict(VerdictKind.UNKNOWN, None, base, marker="status", reason="not_finished")
    text = outcome.status_detail or ""
    if not text.strip():
        return _verdict(VerdictKind.UNKNOWN, None, base, marker="status", reason="no_detail")
    return _classify_detail(text, local, base, never_expires=outcome.never_expires)


def _classify_detail(text: str, local: set[PasswordRule], base: dict[str, str], *,
                     never_expires: bool) -> Verdict:
    if _MUST_CHANGE.search(text) and _PASSWORD_WAS_SET.search(text) and not _NOT_CHANGED.search(text):
        reason = "never_expires" if never_expires else "must_change_not_applied"
        return _verdict(VerdictKind.SUCCEEDED_NO_MUST_CHANGE, None, base, marker="must_change", reason=reason)
    if _SSPR_0010.search(text):
        return _verdict(VerdictKind.WRITEBACK_OFF, None, base, marker="SSPR_0010")
    if _SSPR_0030.search(text):
        return _verdict(VerdictKind.AGENT_OFFLINE, None, base, marker="SSPR_0030", reason="agent_no_answer")
    if _EV_RELAY.search(text):
        return _verdict(VerdictKind.AGENT_OFFLINE, None, base, marker="31034", reason="agent_no_answer")
    if _SSPR_0029.search(text):
        reason = "connector_sign_in" if _SIGN_IN.search(text) else "dc_unreachable"
        return _verdict(VerdictKind.AGENT_OFFLINE, None, base, marker="SSPR_0029", reason=reason)
    for pattern, kind, marker in (
        (_EV_PROTECTED, VerdictKind.PROTECTED_ON_PREM, "33004"),
        (_EV_DISABLED, VerdictKind.DISABLED_ON_PREM, "33005"),
        (_EV_LOCKED, VerdictKind.LOCKED_ON_PREM, "33006"),
    ):
        if pattern.search(text):
            return _verdict(kind, None, base, marker=marker)
    if _EV_POLICY.search(text):
        return _verdict(VerdictKind.POLICY_REJECTED, _policy_rule(text, local), base, marker="33008")
    if _AD_CONSTRAINT.search(text):
        return _verdict(VerdictKind.POLICY_REJECTED, _policy_rule(text, local), base, marker="0000052D")
    if _EV_FAILED.search(text):
        reason = "account_not_found" if _NOT_FOUND.search(text) else "onprem_failure"
        return _verdict(VerdictKind.UNKNOWN, None, base, marker="31011", reason=reason)
    return _classify_words(text, local, base)


def _classify_words(text: str, local: set[PasswordRule], base: dict[str, str]) -> Verdict:
    if _WORD_WRITEBACK_OFF.search(text):
        return _verdict(VerdictKind.WRITEBACK_OFF, None, base, marker="words")
    if _WORD_OFFLINE.search(text):
        return _verdict(VerdictKind.AGENT_OFFLINE, None, base, marker="words")
    if _WORD_PROTECTED.search(text):
        return _verdict(VerdictKind.PROTECTED_ON_PREM, None, base, marker="words")
    if _WORD_DISABLED.search(text):
        return _verdict(VerdictKind.DISABLED_ON_PREM, None, base, marker="words")
    if _WORD_LOCKED.search(text):
        return _verdict(VerdictKind.LOCKED_ON_PREM, None, base, marker="words")
    if any(p.search(text) for p in (_WORD_POLICY, _RULE_HISTORY, _RULE_AGE, _RULE_LENGTH, _RULE_COMPLEXITY)):
        return _verdict(VerdictKind.POLICY_REJECTED, _policy_rule(text, local), base, marker="words")
    return _verdict(VerdictKind.UNKNOWN, None, base, marker="none", reason="unrecognised")


def _policy_rule(text: str, local: set[PasswordRule]) -> RejectionRule:
    """Which rule an on-prem policy refusal was about: the text's words first, then the local pre-check."""
    if _RULE_HISTORY.search(text):
        return RejectionRule.HISTORY
    if _RULE_AGE.search(text):
        return RejectionRule.MIN_AGE
    if _RULE_LENGTH.search(text):
        return RejectionRule.LENGTH
    if _RULE_COMPLEXITY.search(text):
        return RejectionRule.COMPLEXITY if local & _COMPLEXITY_EVIDENCE else RejectionRule.FILTER
    if local & _LENGTH_EVIDENCE:
        return RejectionRule.LENGTH
    if local & _COMPLEXITY_EVIDENCE:
        return RejectionRule.COMPLEXITY
    return RejectionRule.FILTER_OR_HISTORY_OR_AGE


def _classify_error(outcome: ResetOutcome, base: dict[str, str]) -> Verdict:
    error = outcome.error
    assert error is not None
    base["error"] = str(error)
    if outcome.error_code:
        base["error_code"] = _safe_text(outcome.error_code)
    message = outcome.error_message or ""
    if message:
        base["error_message"] = _safe_text(message)
    if error is ErrorKind.PERMISSION_DENIED:
        return _verdict(VerdictKind.ROLE_TOO_WEAK, None, base, marker="error")
    if error is ErrorKind.THROTTLED:
        return _verdict(VerdictKind.THROTTLED, None, base, marker="error")
    if error is ErrorKind.BAD_REQUEST:
        if _CLOUD_BANNED.search(message):
            return _verdict(VerdictKind.CLOUD_REJECTED, RejectionRule.BANNED, base, marker="error")
        if _RULE_COMPLEXITY.search(message):
            return _verdict(VerdictKind.CLOUD_REJECTED, RejectionRule.COMPLEXITY, base, marker="error")
        if _RULE_LENGTH.search(message):
            return _verdict(VerdictKind.CLOUD_REJECTED, RejectionRule.LENGTH, base, marker="error")
        return _verdict(VerdictKind.UNKNOWN, None, base, marker="error", reason="bad_request")
    reasons = {ErrorKind.UNAVAILABLE: "graph_unavailable", ErrorKind.POLL_TIMEOUT: "poll_timeout",
               ErrorKind.REAUTH_REQUIRED: "reauth_required"}
    return _verdict(VerdictKind.UNKNOWN, None, base, marker="error", reason=reasons.get(error, "other_error"))


def _verdict(kind: VerdictKind, rule: RejectionRule | None, base: dict[str, str], *, marker: str,
             reason: str | None = None) -> Verdict:
    detail = {"marker": marker, **base}
    if reason:
        detail["reason"] = reason
    return Verdict(kind, rule, MappingProxyType(detail))


def _safe_text(text: str) -> str:
    """One line, printable, at most ``MAX_TEXT_IN_DETAIL`` characters."""
    line = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return line if len(line) <= MAX_TEXT_IN_DETAIL else line[:MAX_TEXT_IN_DETAIL - 1] + "…"

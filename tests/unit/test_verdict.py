"""Every outcome the lab's Entra stand-in produces (lab/entra/README.md), and variants of each, to its verdict."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.lifecycle import RequestState, can_transition
from bot.domain.verdict import (
    FINAL_STATE,
    ErrorKind,
    RejectionRule,
    ResetOutcome,
    Verdict,
    VerdictKind,
    classify,
    error_kind,
)
from bot.errors import (
    EntraReauthRequiredError,
    EntraUnavailableError,
    GraphError,
    GraphNotFoundError,
    GraphPermissionError,
    GraphRejectedError,
    GraphThrottledError,
    GraphUnavailableError,
)
from bot.policy import PasswordPolicy, PasswordRule, RuleBroken, precheck

K, RR = VerdictKind, RejectionRule
README = Path(__file__).resolve().parents[2] / "lab" / "entra" / "README.md"

SAMBA_SHORT = ("0000052D: Constraint violation - check_password_restrictions: the password is too short. It should be "
               "equal or longer than 7 characters!")
SAMBA_COMPLEXITY = ("0000052D: Constraint violation - check_password_restrictions: the password does not meet the "
                    "complexity criteria!")
SAMBA_YOUNG = "0000052D: Constraint violation - check_password_restrictions: the password is too young to change!"
SAMBA_HISTORY = ("0000052D: Constraint violation - check_password_restrictions: the password was already used (in "
                 "history)!")
WINDOWS_52D = "0000052D: AtrErr: DSID-03191083, problem 1005 (CONSTRAINT_ATT_TYPE), data 0, Att 9005a (unicodePwd)"
INSUFF_ACCESS = "00002098: SecErr: DSID-03150F94, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0"
UNWILLING = "0000001F: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM), data 0"
DIR_ERROR = "000020D6: SvcErr: DSID-03100829, problem 5012 (DIR_ERROR), data 0"
DN = "CN=Alice Archer,OU=People,DC=corp,DC=example,DC=test"

FAILS_COMPLEXITY = (RuleBroken(PasswordRule.COMPLEXITY, needed=3, actual=2),)
FAILS_LENGTH = (RuleBroken(PasswordRule.TOO_SHORT, needed=7, actual=5),)
HAS_NAME = (RuleBroken(PasswordRule.CONTAINS_ACCOUNT_NAME, token="alice"),)
PASSES: tuple[RuleBroken, ...] = ()


@dataclass(frozen=True)
class Case:
    fill: dict[str, str]
    precheck: tuple[RuleBroken, ...]
    kind: VerdictKind
    rule: RejectionRule | None = None
    reason: str | None = None


#: Every statusDetail template of lab/entra/README.md, with the verdicts of its filled-in forms.
CASES: dict[str, list[Case]] = {
    "SSPR_0010: Password writeback is not enabled for this tenant, so the password of an on-premises synchronized "
    "user cannot be reset in the cloud. The password was not changed.": [Case({}, PASSES, K.WRITEBACK_OFF)],
    "SSPR_0030: The on-premises writeback agent did not answer (event 31034: the relay could not reach the Entra "
    "Connect server). The password was not changed.": [Case({}, PASSES, K.AGENT_OFFLINE, reason="agent_no_answer")],
    "SSPR_0029: The writeback agent could not reach a domain controller ({error}). The password was not changed.": [
        Case({"error": "LDAPSocketOpenError"}, PASSES, K.AGENT_OFFLINE, reason="dc_unreachable"),
        Case({"error": "LDAPSessionTerminatedByServerError"}, PASSES, K.AGENT_OFFLINE, reason="dc_unreachable"),
    ],
    "SSPR_0029: The writeback agent's AD DS connector account could not sign in to the domain ({error}). The "
    "password was not changed.": [
        Case({"error": "LDAPInvalidCredentialsResult"}, PASSES, K.AGENT_OFFLINE, reason="connector_sign_in"),
        Case({"error": "LDAPBindError"}, PASSES, K.AGENT_OFFLINE, reason="connector_sign_in"),
    ],
    "31011: The on-premises account {dn} was not found. The password was not changed.": [
        Case({"dn": DN}, PASSES, K.UNKNOWN, reason="account_not_found"),
    ],
    "33004: The AD DS connector account has no permission to reset this account: it is protected (adminCount=1, "
    "AdminSDHolder). The password was not changed.": [Case({}, PASSES, K.PROTECTED_ON_PREM)],
    "33004: The AD DS connector account has no permission to reset this account (AD: {message}). The password was "
    "not changed.": [
        Case({"message": INSUFF_ACCESS}, PASSES, K.PROTECTED_ON_PREM),
        Case({"message": UNWILLING}, PASSES, K.PROTECTED_ON_PREM),
    ],
    "33005: The on-premises account is disabled. The password was not changed.": [
        Case({}, PASSES, K.DISABLED_ON_PREM),
    ],
    "33006: The on-premises account is locked out. The password was not changed.": [
        Case({}, PASSES, K.LOCKED_ON_PREM),
    ],
    "33008: The on-premises password policy refused the password: it matches one of the last {length} passwords "
    "(password history). The password was not changed.": [
        Case({"length": "24"}, PASSES, K.POLICY_REJECTED, RR.HISTORY),
        Case({"length": "1"}, PASSES, K.POLICY_REJECTED, RR.HISTORY),
    ],
    "33008: The on-premises password policy refused the password (AD: {message}). The password was not changed.": [
        Case({"message": SAMBA_SHORT}, PASSES, K.POLICY_REJECTED, RR.LENGTH),
        Case({"message": SAMBA_SHORT}, FAILS_LENGTH, K.POLICY_REJECTED, RR.LENGTH),
        # Complexity and the password filter share one text: the local check tells them apart.
        Case({"message": SAMBA_COMPLEXITY}, FAILS_COMPLEXITY, K.POLICY_REJECTED, RR.COMPLEXITY),
        Case({"message": SAMBA_COMPLEXITY}, HAS_NAME, K.POLICY_REJECTED, RR.COMPLEXITY),
        Case({"message": SAMBA_COMPLEXITY}, PASSES, K.POLICY_REJECTED, RR.FILTER),
        Case({"message": SAMBA_YOUNG}, PASSES, K.POLICY_REJECTED, RR.MIN_AGE),
        Case({"message": SAMBA_HISTORY}, PASSES, K.POLICY_REJECTED, RR.HISTORY),
        # Windows gives no reason: the local check says what it can, else history, age or a filter.
        Case({"message": WINDOWS_52D}, PASSES, K.POLICY_REJECTED, RR.FILTER_OR_HISTORY_OR_AGE),
        Case({"message": WINDOWS_52D}, FAILS_LENGTH, K.POLICY_REJECTED, RR.LENGTH),
        Case({"message": WINDOWS_52D}, FAILS_COMPLEXITY, K.POLICY_REJECTED, RR.COMPLEXITY),
        Case({"message": WINDOWS_52D}, HAS_NAME, K.POLICY_REJECTED, RR.COMPLEXITY),
    ],
    "31011: The on-premises password reset failed (AD: {message}). The password was not changed.": [
        Case({"message": DIR_ERROR}, PASSES, K.UNKNOWN, reason="onprem_failure"),
        Case({"message": "Operations error"}, PASSES, K.UNKNOWN, reason="onprem_failure"),
        Case({"message": WINDOWS_52D}, PASSES, K.POLICY_REJECTED, RR.FILTER_OR_HISTORY_OR_AGE),
    ],
    "31011: The password was set on-premises, but 'must change password at next logon' could not be applied (AD: "
    "{message}).": [
        Case({"message": INSUFF_ACCESS}, PASSES, K.SUCCEEDED_NO_MUST_CHANGE, reason="must_change_not_applied"),
        Case({"message": WINDOWS_52D}, PASSES, K.SUCCEEDED_NO_MUST_CHANGE, reason="must_change_not_applied"),
    ],
}


def readme_templates() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("### Every statusDetail", 1)[1].split("\n## ", 1)[0]
    return [m.group(1) for m in re.finditer(r"^\| `([^`]+)` \|", section, re.MULTILINE)]


def test_every_readme_status_detail_has_cases() -> None:
    templates = readme_templates()
    assert len(templates) >= 13
    assert sorted(templates) == sorted(CASES)


ALL = [(template, case) for template, cases in CASES.items() for case in cases]


def failed(detail: str, pre: tuple[RuleBroken, ...] = PASSES, *, never_expires: bool = False) -> Verdict:
    return classify(ResetOutcome(status="failed", status_detail=detail, precheck=pre, never_expires=never_expires))


def check(verdict: Verdict, case: Case) -> None:
    assert (verdict.kind, verdict.rule) == (case.kind, case.rule)
    assert verdict.detail.get("reason") == case.reason


@pytest.mark.parametrize(("template", "case"), ALL)
def test_readme_status_details(template: str, case: Case) -> None:
    check(failed(template.format(**case.fill), case.precheck), case)


VARIANTS = [
    pytest.param(str.upper, id="upper"),
    pytest.param(str.lower, id="lower"),
    pytest.param(str.swapcase, id="swapcase"),
    pytest.param(lambda t: f"Password reset failed. {t} Please contact your administrator.", id="extra-words"),
    pytest.param(lambda t: f"  {t}\r\n  Correlation ID: 0f6c5a44-3f0e-4a8b-9a51-2d4b0c7c9d10", id="extra-lines"),
    pytest.param(lambda t: t.replace(". ", ".  ").replace(": ", " : "), id="spacing"),
]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(("template", "case"), ALL)
def test_variants_classify_the_same(template: str, case: Case, variant: Callable[[str], str]) -> None:
    check(failed(variant(template.format(**case.fill)), case.precheck), case)


@pytest.mark.parametrize(
    ("text", "kind", "rule"),
    [
        # Texts without a code, as another Entra might word them.
        ("Password writeback is disabled for this tenant.", K.WRITEBACK_OFF, None),
        ("The on-premises agent is offline.", K.AGENT_OFFLINE, None),
        ("Could not reach a domain controller.", K.AGENT_OFFLINE, None),
        ("The account is protected by AdminSDHolder.", K.PROTECTED_ON_PREM, None),
        ("The user's on-premises account is disabled.", K.DISABLED_ON_PREM, None),
        ("The user's on-premises account is locked.", K.LOCKED_ON_PREM, None),
        ("The password is too short.", K.POLICY_REJECTED, RR.LENGTH),
        ("The password does not meet the complexity requirements.", K.POLICY_REJECTED, RR.FILTER),
        ("The password was used recently (password history).", K.POLICY_REJECTED, RR.HISTORY),
        ("Minimum password age not reached.", K.POLICY_REJECTED, RR.MIN_AGE),
        ("The on-premises password policy refused it.", K.POLICY_REJECTED, RR.FILTER_OR_HISTORY_OR_AGE),
        ("sspr_0010", K.WRITEBACK_OFF, None),
        ("SSPR-0030", K.AGENT_OFFLINE, None),
        ("Event 33006.", K.LOCKED_ON_PREM, None),
        # Numbers that only contain a code are not that code.
        ("Error 133004 happened.", K.UNKNOWN, None),
        ("SSPR_00101: something.", K.UNKNOWN, None),
    ],
)
def test_texts_without_the_labs_sentences(text: str, kind: VerdictKind, rule: RejectionRule | None) -> None:
    verdict = failed(text)
    assert (verdict.kind, verdict.rule) == (kind, rule)


@pytest.mark.parametrize("text", ["Something went wrong.", "Error 42.", "   ", "", None])
def test_unknown_texts(text: str | None) -> None:
    verdict = classify(ResetOutcome(status="failed", status_detail=text))
    assert (verdict.kind, verdict.rule) == (K.UNKNOWN, None)
    assert verdict.final_state is RequestState.FAILED
    assert verdict.detail["reason"] == ("unrecognised" if text and text.strip() else "no_detail")


# --- success ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("status", ["succeeded", "SUCCEEDED", " Succeeded "])
def test_success(status: str) -> None:
    verdict = classify(ResetOutcome(status=status))
    assert verdict == Verdict(K.SUCCEEDED, None, verdict.detail)
    assert verdict.final_state is RequestState.SUCCEEDED


def test_success_with_a_password_that_never_expires() -> None:
    verdict = classify(ResetOutcome(status="succeeded", never_expires=True))
    assert verdict.kind is K.SUCCEEDED_NO_MUST_CHANGE
    assert verdict.detail["reason"] == "never_expires"
    assert verdict.final_state is RequestState.SUCCEEDED


def test_never_expires_changes_no_failure() -> None:
    text = "33005: The on-premises account is disabled. The password was not changed."
    assert failed(text, never_expires=True).kind is K.DISABLED_ON_PREM
    assert failed("33008: (AD: " + SAMBA_YOUNG + ")", never_expires=True).rule is RR.MIN_AGE


@pytest.mark.parametrize("status", ["running", "notStarted", "", None, "weird"])
def test_unfinished_or_odd_status_is_unknown(status: str | None) -> None:
    verdict = classify(ResetOutcome(status=status))
    assert verdict.kind is K.UNKNOWN
    assert verdict.detail["reason"] == "not_finished"


# --- errors before an operation -----------------------------------------------------------------------------------

BANNED = ("The specified password contains words or characters that have been blocked by your administrator "
          "(Microsoft Entra Password Protection). Please provide a different password.")
CLOUD_COMPLEXITY = ("The specified password does not comply with password complexity requirements. Please provide a "
                    "different password.")


@pytest.mark.parametrize(
    ("error", "code", "message", "expected"),
    [
        (ErrorKind.PERMISSION_DENIED, "Authorization_RequestDenied",
         "Insufficient privileges to complete the operation.", (K.ROLE_TOO_WEAK, None, None)),
        (ErrorKind.THROTTLED, "TooManyRequests", None, (K.THROTTLED, None, None)),
        (ErrorKind.UNAVAILABLE, "serviceNotAvailable", None, (K.UNKNOWN, None, "graph_unavailable")),
        (ErrorKind.POLL_TIMEOUT, None, None, (K.UNKNOWN, None, "poll_timeout")),
        (ErrorKind.BAD_REQUEST, "Request_BadRequest", BANNED, (K.CLOUD_REJECTED, RR.BANNED, None)),
        (ErrorKind.BAD_REQUEST, "Request_BadRequest", BANNED.upper(), (K.CLOUD_REJECTED, RR.BANNED, None)),
        (ErrorKind.BAD_REQUEST, "Request_BadRequest", CLOUD_COMPLEXITY, (K.CLOUD_REJECTED, RR.COMPLEXITY, None)),
        (ErrorKind.BAD_REQUEST, "Request_BadRequest", "The password is too long.", (K.CLOUD_REJECTED, RR.LENGTH,
         None)),
        (ErrorKind.BAD_REQUEST, "BadRequest", "Unable to read JSON request payload.", (K.UNKNOWN, None,
         "bad_request")),
        (ErrorKind.BAD_REQUEST, "badRequest", None, (K.UNKNOWN, None, "bad_request")),
        (ErrorKind.REAUTH_REQUIRED, "InvalidAuthenticationToken", None, (K.UNKNOWN, None, "reauth_required")),
        (ErrorKind.OTHER, "Request_ResourceNotFound", None, (K.UNKNOWN, None, "other_error")),
    ],
)
def test_errors(error: ErrorKind, code: str | None, message: str | None,
                expected: tuple[VerdictKind, RejectionRule | None, str | None]) -> None:
    verdict = classify(ResetOutcome(error=error, error_code=code, error_message=message))
    assert (verdict.kind, verdict.rule, verdict.detail.get("reason")) == expected
    assert verdict.detail["error"] == error.value
    if code:
        assert verdict.detail["error_code"] == code


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (GraphPermissionError("no", code="Authorization_RequestDenied", status=403), ErrorKind.PERMISSION_DENIED),
        (GraphThrottledError("slow down", status=429), ErrorKind.THROTTLED),
        (GraphUnavailableError("down", status=503), ErrorKind.UNAVAILABLE),
        (EntraUnavailableError("down", status=503), ErrorKind.UNAVAILABLE),
        (GraphRejectedError("Microsoft Graph refused to reset the password of alice: " + BANNED, status=400),
         ErrorKind.BAD_REQUEST),
        (EntraReauthRequiredError("sign in again", status=401), ErrorKind.REAUTH_REQUIRED),
        (GraphNotFoundError("gone", status=404), ErrorKind.OTHER),
        (GraphError("odd"), ErrorKind.OTHER),
        (RuntimeError("bug"), ErrorKind.OTHER),
    ],
)
def test_error_kind_of_the_clients_exceptions(exc: BaseException, kind: ErrorKind) -> None:
    assert error_kind(exc) is kind


def test_a_rejected_reset_through_the_clients_exception() -> None:
    exc = GraphRejectedError("Microsoft Graph refused to reset the password of alice: " + BANNED,
                             code="Request_BadRequest", status=400)
    verdict = classify(ResetOutcome(error=error_kind(exc), error_code=exc.code, error_message=str(exc)))
    assert (verdict.kind, verdict.rule, verdict.final_state) == (K.CLOUD_REJECTED, RR.BANNED, RequestState.REJECTED)


def test_an_error_wins_over_a_status() -> None:
    verdict = classify(ResetOutcome(status="succeeded", error=ErrorKind.POLL_TIMEOUT))
    assert verdict.kind is K.UNKNOWN


# --- the mapping to the request's final state ---------------------------------------------------------------------

def test_final_states() -> None:
    assert set(FINAL_STATE) == set(VerdictKind)
    for kind, state in FINAL_STATE.items():
        assert can_transition(RequestState.RESETTING, state), kind
    by_state = {s: {k for k, v in FINAL_STATE.items() if v is s} for s in set(FINAL_STATE.values())}
    assert by_state == {
        RequestState.SUCCEEDED: {K.SUCCEEDED, K.SUCCEEDED_NO_MUST_CHANGE},
        RequestState.REJECTED: {K.POLICY_REJECTED, K.CLOUD_REJECTED, K.PROTECTED_ON_PREM, K.DISABLED_ON_PREM,
                                K.LOCKED_ON_PREM},
        RequestState.FAILED: {K.ROLE_TOO_WEAK, K.WRITEBACK_OFF, K.AGENT_OFFLINE, K.THROTTLED, K.UNKNOWN},
    }


@pytest.mark.parametrize(("template", "case"), ALL)
def test_final_state_of_every_lab_outcome(template: str, case: Case) -> None:
    verdict = failed(template.format(**case.fill), case.precheck)
    assert verdict.final_state is FINAL_STATE[case.kind]


# --- the audit detail ---------------------------------------------------------------------------------------------

def test_detail_names_the_marker_and_the_local_rules_but_no_token() -> None:
    pre = tuple(precheck("Xy9-alice-archer", PasswordPolicy("domain", 20, 24, True, timedelta(0), None),
                         sam="alice", display_name="Alice Archer"))
    verdict = failed("33008: refused (AD: " + WINDOWS_52D + ").", pre)
    assert verdict.kind is K.POLICY_REJECTED
    assert verdict.rule is RR.LENGTH
    assert verdict.detail["marker"] == "33008"
    assert verdict.detail["local_rules"] == "contains_account_name,contains_display_name,too_short"
    assert not any(word in value.lower() for value in verdict.detail.values() for word in ("alice", "archer"))


def test_detail_text_is_one_bounded_line() -> None:
    verdict = failed("33006: locked\r\nout\x00 " + "x" * 2000)
    text = verdict.detail["status_detail"]
    assert text.startswith("33006: locked out ")
    assert len(text) == 500
    assert text.isprintable()


def test_verdicts_are_hashable_and_frozen() -> None:
    verdict = classify(ResetOutcome(status="succeeded"))
    assert hash(verdict) == hash(classify(ResetOutcome(status="succeeded")))
    with pytest.raises(AttributeError):
        verdict.kind = K.UNKNOWN  # type: ignore[misc]
    with pytest.raises(TypeError):
        verdict.detail["marker"] = "x"  # type: ignore[index]


@settings(max_examples=200, deadline=None)
@given(status=st.none() | st.sampled_from(["succeeded", "failed", "running"]) | st.text(max_size=10),
       detail=st.none() | st.text(max_size=300), never_expires=st.booleans(),
       rules=st.lists(st.sampled_from(list(PasswordRule)), max_size=4))
def test_any_outcome_gets_a_verdict(status: str | None, detail: str | None, never_expires: bool,
                                    rules: list[PasswordRule]) -> None:
    verdict = classify(ResetOutcome(status=status, status_detail=detail, never_expires=never_expires,
                                    precheck=[RuleBroken(r) for r in rules]))
    assert verdict.kind in FINAL_STATE
    assert (verdict.rule is not None) == (verdict.kind in (K.POLICY_REJECTED, K.CLOUD_REJECTED))
    assert all(isinstance(v, str) and v.isprintable() and len(v) <= 500 for v in verdict.detail.values())


@settings(max_examples=100, deadline=None)
@given(prefix=st.text(alphabet=st.characters(categories=["Ll", "Lu", "Zs"]), max_size=40),
       suffix=st.text(alphabet=st.characters(categories=["Ll", "Lu", "Zs"]), max_size=40))
def test_a_leading_code_decides_whatever_words_surround_it(prefix: str, suffix: str) -> None:
    """Words around a code never override it (except the must-change case, which needs its own words)."""
    for code, kind in (("SSPR_0010", K.WRITEBACK_OFF), ("33005", K.DISABLED_ON_PREM), ("33006", K.LOCKED_ON_PREM),
                       ("33004", K.PROTECTED_ON_PREM)):
        text = f"{prefix} {code}: {suffix}. The password was not changed."
        assert failed(text).kind is kind

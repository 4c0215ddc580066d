"""The caller-verification rules: codes (alphabet, length, case-blind constant-time match) and who may use which
method."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.verification import (
    CALLER_COMPLETED,
    CODE_ALPHABET,
    CODE_LENGTH,
    ApprovalVoid,
    VerifyRefusal,
    VerifyState,
    code_matches,
    earlier_approvals_void,
    method_refusal,
    new_code,
    start_refusal,
    usable_methods,
)
from bot.settings import VerifyMethod

ALL = tuple(VerifyMethod)


def test_codes_have_no_look_alikes_and_differ() -> None:
    for pair in ("0O", "1IL", "5S", "2Z", "8B", "UV"):
        assert not set(pair) & set(CODE_ALPHABET), pair
    codes = {new_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(len(c) == CODE_LENGTH and set(c) <= set(CODE_ALPHABET) for c in codes)


@given(st.text(alphabet=CODE_ALPHABET, min_size=CODE_LENGTH, max_size=CODE_LENGTH))
def test_a_code_read_back_matches_whatever_its_case_and_spacing(code: str) -> None:
    assert code_matches(code, code.lower())
    assert code_matches(code, f" {code[:3]}-{code[3:]} ")
    assert not code_matches(code, code[:-1])
    assert not code_matches(code, code[:-1] + ("3" if code[-1] != "3" else "4"))


def test_an_empty_entry_never_matches() -> None:
    assert not code_matches(new_code(), "")


@pytest.mark.parametrize("method", ALL)
def test_a_method_must_be_allowed(method: VerifyMethod) -> None:
    others = tuple(m for m in ALL if m != method)
    assert method_refusal(method, allowed=others, protected=False, target_in_slack=True) \
        == VerifyRefusal.METHOD_NOT_ALLOWED


def test_a_protected_account_needs_more_than_a_call_back() -> None:
    assert method_refusal(VerifyMethod.CALLBACK, allowed=ALL, protected=True, target_in_slack=True) \
        == VerifyRefusal.CALLBACK_NOT_FOR_PROTECTED
    assert usable_methods(ALL, protected=True, target_in_slack=True) == [
        VerifyMethod.SLACK_CODE, VerifyMethod.SLACK_CONFIRM, VerifyMethod.DUO_PUSH]


def test_the_slack_methods_need_the_target_in_slack() -> None:
    assert usable_methods(ALL, protected=False, target_in_slack=False) == [VerifyMethod.DUO_PUSH,
                                                                           VerifyMethod.CALLBACK]


def test_a_new_attempt_may_follow_a_failed_one_but_not_a_blocked_or_verified_one() -> None:
    assert start_refusal(VerifyState.NONE) is None
    assert start_refusal(VerifyState.FAILED) is None
    assert start_refusal(VerifyState.FAILED, tries=2) is None
    assert start_refusal(VerifyState.PENDING, tries=3) == VerifyRefusal.NO_TRIES_LEFT, "a push sent is a try"
    assert start_refusal(VerifyState.BLOCKED, tries=3) == VerifyRefusal.BLOCKED
    assert start_refusal(VerifyState.PENDING) is None
    assert start_refusal(VerifyState.BLOCKED) == VerifyRefusal.BLOCKED
    assert start_refusal(VerifyState.VERIFIED) == VerifyRefusal.ALREADY_VERIFIED


@pytest.mark.parametrize("method", [VerifyMethod.SLACK_CODE, VerifyMethod.DUO_PUSH, VerifyMethod.SLACK_CONFIRM])
def test_an_approval_given_before_a_method_the_caller_completes_counts(method: VerifyMethod) -> None:
    assert earlier_approvals_void(method) is None


def test_an_approval_given_before_a_call_back_does_not_count() -> None:
    """The call-back is the agent's word: the approver who approved "not verified yet" must see it and decide."""
    assert earlier_approvals_void(VerifyMethod.CALLBACK) == ApprovalVoid.VERIFIED_BY_CALLBACK_AFTER


def test_every_method_is_judged_and_only_the_call_back_is_the_agents_word() -> None:
    """A method added to the settings is weak here until someone puts it in ``CALLER_COMPLETED``."""
    assert set(CALLER_COMPLETED) == set(VerifyMethod) - {VerifyMethod.CALLBACK}
    assert [m for m in VerifyMethod if earlier_approvals_void(m) is not None] == [VerifyMethod.CALLBACK]

"""The stand-in's pure rules, without a lab: role table, OData subset, faults, passwords, history mode."""

from __future__ import annotations

import datetime as dt

import jwt
import pytest

from lab.entra import roles
from lab.entra.directory import SelectError, compile_filter, known_user_properties, parse_select
from lab.entra.passwords import PasswordHistory, banned_word, cloud_complex_enough, generate_cloud_password
from lab.entra.server import filetime_to_datetime
from lab.entra.state import FaultError, Faults
from lab.entra.tokens import TokenIssuer
from lab.entra.writeback import POLICY_HINTS_OIDS, choose_history_mode

G, PA, PR, UA, GA_, HD, PW, AA = (roles.GLOBAL, roles.PRIV_AUTH, roles.PRIV_ROLE, roles.USER_ADMIN,
                                   roles.GROUPS_ADMIN, roles.HELPDESK, roles.PASSWORD_ADMIN, roles.AUTH_ADMIN)


@pytest.mark.parametrize(
    ("target", "allowed"),
    [
        ((), {PW, HD, AA, UA, PA, G}),
        ((roles.DIRECTORY_READERS,), {PW, HD, AA, UA, PA, G}),
        ((PW,), {PW, HD, AA, UA, PA, G}),
        ((HD,), {HD, UA, PA, G}),
        ((UA,), {UA, PA, G}),
        ((GA_,), {UA, PA, G}),
        ((AA,), {AA, PA, G}),
        ((G,), {PA, G}),
        ((PR,), {PA, G}),
        (("Some Custom Role",), {PA, G}),
        ((HD, AA), {PA, G}),
    ],
)
def test_the_reset_role_table(target: tuple[str, ...], allowed: set[str]) -> None:
    for caller in (PW, HD, AA, UA, PA, G):
        assert roles.may_reset([caller], target) == (caller in allowed), (caller, target)
    assert not roles.may_reset([], target)
    assert not roles.may_reset([roles.DIRECTORY_READERS], target)


def test_a_caller_with_two_roles_may_do_what_either_allows() -> None:
    assert roles.may_reset([HD, AA], [AA])
    assert roles.may_reset([HD, AA], [HD])


def test_select_is_case_insensitive_and_refuses_unknown_properties() -> None:
    known = known_user_properties()
    assert parse_select("ID,onpremisessyncenabled", known) == ("id", "onPremisesSyncEnabled")
    assert parse_select(None, known) is None
    with pytest.raises(SelectError):
        parse_select("id,nope", known)


def test_filter_subset() -> None:
    props = {"mail": "Alice@corp.example.test", "displayName": "Alice O'Hara", "accountEnabled": True,
             "onPremisesSyncEnabled": None}
    assert compile_filter("mail eq 'alice@corp.example.test'")(props)
    assert compile_filter("startswith(displayName,'alice o''h')")(props)
    assert compile_filter("accountEnabled eq true and onPremisesSyncEnabled eq null")(props)
    assert compile_filter("mail eq 'x' or displayName eq 'Alice O''Hara'")(props)
    assert not compile_filter("mail eq 'bob@corp.example.test'")(props)
    assert compile_filter("displayName eq 'a and b'")({"displayName": "A and B"})
    with pytest.raises(SelectError) as unsupported:
        compile_filter("jobTitle eq 'x'")
    assert unsupported.value.code == "Request_UnsupportedQuery"
    with pytest.raises(SelectError):
        compile_filter("mail gt 'x'")


def test_faults_validate_everything_before_changing_anything() -> None:
    faults = Faults()
    faults.update({"writeback": "offline", "retry_after": 2.5, "throttle_next": 3})
    assert faults.as_json()["writeback"] == "offline"
    assert faults.retry_after_header() == "2.5"
    with pytest.raises(FaultError):
        faults.update({"throttle_next": 0, "fail_next_5xx": "many"})
    assert faults.throttle_next == 3
    faults.update({"hold_operations": True})
    assert faults.as_json()["hold_operations"] is True
    for bad in ({"writeback": "off"}, {"latency_ms": -1}, {"token_endpoint_down": 1}, {"retry_after": 0},
                {"fail_next_5xx": True}, {"surprise": 1}, {"sync_lag_minutes": -1},
                {"hold_operations": 1}, {"hold_operations": "yes"}):
        with pytest.raises(FaultError):
            Faults().update(bad)


def test_cloud_password_rules() -> None:
    assert banned_word("Qwerty!Harbour42")
    assert banned_word("M0nk3y!Business9")  # substitutions undone
    assert not banned_word("Harbour!Lights42")
    assert not banned_word("Welcome!Harbour42"), "AD's filter refuses this one; the cloud list does not"
    assert cloud_complex_enough("Harbour!Lights42")
    assert not cloud_complex_enough("Ab1!xyz")
    assert not cloud_complex_enough("alllowercaseletters")
    generated = generate_cloud_password()
    assert cloud_complex_enough(generated)
    assert not banned_word(generated)


def test_history_counts_the_current_password_and_respects_the_length() -> None:
    history = PasswordHistory()
    history.seed("bob", "Old!Pass1")
    history.record("bob", "New!Pass2")
    assert history.in_history("bob", "New!Pass2", 1)
    assert not history.in_history("bob", "Old!Pass1", 1)
    assert history.in_history("bob", "Old!Pass1", 2)
    assert not history.in_history("bob", "Other!Pass3", 24)
    assert not history.in_history("alice", "Old!Pass1", 24)


def test_the_policy_hints_control_is_used_only_when_the_dc_offers_it() -> None:
    assert choose_history_mode({"1.2.840.113556.1.4.319"}) is None  # Samba 4.17: emulate
    assert choose_history_mode({POLICY_HINTS_OIDS[1]}) == POLICY_HINTS_OIDS[1]
    assert choose_history_mode(set(POLICY_HINTS_OIDS)) == POLICY_HINTS_OIDS[0]


def test_filetime_conversion() -> None:
    assert filetime_to_datetime(0) is None
    assert filetime_to_datetime("116444736000000000") == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def test_tokens_from_another_issuer_are_refused() -> None:
    ours = TokenIssuer(tenant_id="t", authority="https://127.0.0.1:1/t")
    theirs = TokenIssuer(tenant_id="t", authority="https://127.0.0.1:1/t")
    token = theirs.app_token(client_id="00000000-0000-0000-0000-000000000001", app_name="x", roles=("User.Read.All",))
    assert theirs.verify_access_token(token)["roles"] == ["User.Read.All"]
    with pytest.raises(jwt.InvalidSignatureError):
        ours.verify_access_token(token)

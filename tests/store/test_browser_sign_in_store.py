"""Browser sign-ins waiting for their callback, on SQLite and PostgreSQL: a state is used once across replicas
(twenty simultaneous callbacks make one claim), a late one is expired and used up, an unknown one is unknown, and
old ones are purged."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, col, select

from bot import store
from bot.models import BrowserSignIn
from bot.store.links import SignInClaim
from tests.store.helpers import T0, run_concurrently

pytest_plugins = ("tests.store.dbfixtures",)

TEN_MINUTES = timedelta(minutes=10)


def _started(factory: sessionmaker[Session], state_hash: str = "a" * 64) -> str:
    with factory.begin() as session:
        store.links.save_browser_sign_in(session, state_hash=state_hash, slack_user="U1", service=False,
                                         correlation_id="c-1", encrypted_flow="opaque", created_at=T0,
                                         expires_at=T0 + TEN_MINUTES)
    return state_hash


def test_twenty_simultaneous_callbacks_make_one_claim(factory: sessionmaker[Session]) -> None:
    state = _started(factory)

    def callback(i: int) -> SignInClaim:
        with factory.begin() as session:
            return store.links.claim_browser_sign_in(session, state_hash=state, at=T0 + timedelta(seconds=1))[0]

    outcomes = run_concurrently(20, callback)
    assert outcomes.count(SignInClaim.CLAIMED) == 1
    assert set(outcomes) == {SignInClaim.CLAIMED, SignInClaim.USED}


def test_a_claim_carries_whose_sign_in_it_is(factory: sessionmaker[Session]) -> None:
    state = _started(factory)
    with factory.begin() as session:
        claim, row = store.links.claim_browser_sign_in(session, state_hash=state, at=T0)
    assert claim == SignInClaim.CLAIMED and row is not None
    assert (row.slack_user, row.service, row.correlation_id, row.encrypted_flow) == ("U1", False, "c-1", "opaque")


def test_a_late_callback_is_expired_and_uses_the_state_up(factory: sessionmaker[Session]) -> None:
    state = _started(factory)
    with factory.begin() as session:
        assert store.links.claim_browser_sign_in(session, state_hash=state, at=T0 + TEN_MINUTES)[0] == \
            SignInClaim.EXPIRED
    with factory.begin() as session:
        assert store.links.claim_browser_sign_in(session, state_hash=state, at=T0)[0] == SignInClaim.USED


def test_an_unknown_state_is_unknown_and_old_ones_are_purged(factory: sessionmaker[Session]) -> None:
    old, new = _started(factory, "o" * 64), "n" * 64
    with factory.begin() as session:
        store.links.save_browser_sign_in(session, state_hash=new, slack_user="U2", service=True,
                                         correlation_id="c-2", encrypted_flow="opaque", created_at=T0 + TEN_MINUTES,
                                         expires_at=T0 + 2 * TEN_MINUTES)
    with factory.begin() as session:
        assert store.links.claim_browser_sign_in(session, state_hash="x" * 64, at=T0) == (SignInClaim.UNKNOWN, None)
        assert store.links.purge_browser_sign_ins(session, before=T0 + TEN_MINUTES + timedelta(seconds=1)) == 1
    with factory.begin() as session:
        assert store.links.claim_browser_sign_in(session, state_hash=old, at=T0)[0] == SignInClaim.UNKNOWN
        assert store.links.claim_browser_sign_in(session, state_hash=new, at=T0 + TEN_MINUTES)[0] == \
            SignInClaim.CLAIMED


def test_a_newer_sign_in_retires_the_waiting_ones_of_the_same_person_only(factory: sessionmaker[Session]) -> None:
    mine = _started(factory, "m" * 64)
    with factory.begin() as session:
        store.links.save_browser_sign_in(session, state_hash="s" * 64, slack_user="U1", service=True,
                                         correlation_id="c-3", encrypted_flow="opaque", created_at=T0,
                                         expires_at=T0 + TEN_MINUTES)
        store.links.save_browser_sign_in(session, state_hash="t" * 64, slack_user="U2", service=False,
                                         correlation_id="c-4", encrypted_flow="opaque", created_at=T0,
                                         expires_at=T0 + TEN_MINUTES)
    assert _waiting(factory, "U1", False) == [mine], "the service identity's and another person's leave it be"
    newer = _started(factory, "n" * 64)
    assert _waiting(factory, "U1", False) == [newer]
    with factory.begin() as session:
        assert store.links.retire_browser_sign_ins(session, slack_user="U1", service=False, at=T0) == 1
    with factory.begin() as session:
        assert store.links.claim_browser_sign_in(session, state_hash=mine, at=T0)[0] == SignInClaim.USED
        assert store.links.claim_browser_sign_in(session, state_hash=newer, at=T0)[0] == SignInClaim.USED
        assert store.links.claim_browser_sign_in(session, state_hash="s" * 64, at=T0)[0] == SignInClaim.CLAIMED
        assert store.links.claim_browser_sign_in(session, state_hash="t" * 64, at=T0)[0] == SignInClaim.CLAIMED


def test_twenty_simultaneous_replays_are_told_once(factory: sessionmaker[Session]) -> None:
    """A used callback replayed from many places at once (several replicas): one refusal is audited and DMed."""
    state = _started(factory)
    with factory.begin() as session:
        store.links.claim_browser_sign_in(session, state_hash=state, at=T0)

    def replay(i: int) -> bool:
        with factory.begin() as session:
            return store.links.first_refusal(session, state_hash=state, at=T0 + timedelta(seconds=1))

    assert run_concurrently(20, replay).count(True) == 1


def test_made_up_states_are_counted_once_a_minute_and_purged(factory: sessionmaker[Session]) -> None:
    def made_up(i: int) -> bool:
        with factory.begin() as session:
            return store.links.first_unknown_in_minute(session, at=T0 + timedelta(seconds=10))

    assert run_concurrently(20, made_up).count(True) == 1
    with factory.begin() as session:
        assert not store.links.first_unknown_in_minute(session, at=T0 + timedelta(seconds=59))
        assert store.links.first_unknown_in_minute(session, at=T0 + timedelta(seconds=60))
        # The minute's marker can never be claimed as a sign-in, nor retired as anyone's.
        marker = f"unknown:{T0:%Y-%m-%dT%H:%M}"
        assert store.links.claim_browser_sign_in(session, state_hash=marker, at=T0)[0] == SignInClaim.USED
        assert store.links.purge_browser_sign_ins(session, before=T0 + timedelta(minutes=2)) == 2


def _waiting(factory: sessionmaker[Session], slack_user: str, service: bool) -> list[str]:
    with factory() as session:
        return [r.state_hash for r in session.exec(select(BrowserSignIn).where(
            col(BrowserSignIn.slack_user) == slack_user, col(BrowserSignIn.service).is_(service),
            col(BrowserSignIn.used_at).is_(None)))]


def test_twenty_simultaneous_sign_ins_of_one_person_leave_one_link_that_works(
        factory: sessionmaker[Session]) -> None:
    """``/resetbot login --browser`` sent twice at once (two clicks, two replicas): each transaction retired what
    it saw waiting, neither saw the other's, and both links stayed good (PostgreSQL). At most one may."""

    def start(i: int) -> None:
        with factory.begin() as session:  # as bot.services.links starts one
            store.links.retire_browser_sign_ins(session, slack_user="U1", service=False, at=T0)
            store.links.save_browser_sign_in(session, state_hash=f"{i:064d}", slack_user="U1", service=False,
                                             correlation_id=f"c-{i}", encrypted_flow="opaque", created_at=T0,
                                             expires_at=T0 + TEN_MINUTES)

    run_concurrently(20, start)
    assert len(_waiting(factory, "U1", False)) == 1


def test_a_newer_service_identity_sign_in_retires_the_one_another_approver_left_waiting(
        factory: sessionmaker[Session]) -> None:
    """The service identity is one account, and any approver may start its sign-in: the model and migration 0017
    say one waiting "for the service identity", but the index and the retire are per person, so a link DMed to
    one approver stays good after another approver's newer link (two links that can link the account that makes
    every reset). The one sent last must be the only one that works, as for a person's own link."""
    with factory.begin() as session:
        store.links.save_browser_sign_in(session, state_hash="a" * 64, slack_user="U1", service=True,
                                         correlation_id="c-1", encrypted_flow="opaque", created_at=T0,
                                         expires_at=T0 + TEN_MINUTES)
    with factory.begin() as session:
        store.links.save_browser_sign_in(session, state_hash="b" * 64, slack_user="U2", service=True,
                                         correlation_id="c-2", encrypted_flow="opaque",
                                         created_at=T0 + timedelta(seconds=1), expires_at=T0 + TEN_MINUTES)
    with factory.begin() as session:
        assert store.links.claim_browser_sign_in(session, state_hash="a" * 64, at=T0 + timedelta(seconds=2))[0] \
            == SignInClaim.USED, "the earlier service-identity link still works"
        assert store.links.claim_browser_sign_in(session, state_hash="b" * 64, at=T0 + timedelta(seconds=2))[0] \
            == SignInClaim.CLAIMED

"""A sealed password's one reveal, on SQLite and PostgreSQL: claimed by one click at a time, spent only under
that claim, given back when it could not be shown, and never wiped while a reveal holds it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from bot import store
from tests.store.helpers import T0, new_request, run_concurrently

pytest_plugins = ("tests.store.dbfixtures",)

CLAIM = timedelta(minutes=2)


def _sealed(factory: sessionmaker[Session]) -> str:
    req = new_request(factory)
    with factory.begin() as session:
        store.sealed.seal(session, request_id=req.id, ciphertext="opaque", expires_at=T0 + timedelta(minutes=10))
    return req.id


def test_twenty_simultaneous_clicks_make_one_claim(factory: sessionmaker[Session]) -> None:
    request_id = _sealed(factory)

    def click(i: int) -> bool:
        with factory.begin() as session:
            return store.sealed.claim_sealed(session, request_id=request_id, now=T0, until=T0 + CLAIM) is not None

    assert run_concurrently(20, click).count(True) == 1
    with factory.begin() as session:
        assert store.sealed.is_claimed(session, request_id=request_id, now=T0)


def test_a_claim_not_shown_is_given_back_and_one_shown_is_spent(factory: sessionmaker[Session]) -> None:
    request_id = _sealed(factory)
    with factory.begin() as session:
        assert store.sealed.claim_sealed(session, request_id=request_id, now=T0, until=T0 + CLAIM) == (
            "password", "opaque")
        assert store.sealed.claim_sealed(session, request_id=request_id, now=T0, until=T0 + CLAIM) is None
        assert store.sealed.release_claim(session, request_id=request_id, claimed_until=T0 + CLAIM)
    later = T0 + timedelta(seconds=5)
    with factory.begin() as session:
        assert store.sealed.claim_sealed(session, request_id=request_id, now=later, until=later + CLAIM)
        assert not store.sealed.spend_sealed(session, request_id=request_id, claimed_until=T0 + CLAIM), \
            "an earlier claim spends nothing"
        assert store.sealed.spend_sealed(session, request_id=request_id, claimed_until=later + CLAIM)
        assert store.sealed.claim_sealed(session, request_id=request_id, now=later, until=later + CLAIM) is None
        assert not store.sealed.is_claimed(session, request_id=request_id, now=later)


def test_a_lapsed_claim_can_be_taken_again_and_a_held_one_is_not_wiped(factory: sessionmaker[Session]) -> None:
    request_id = _sealed(factory)
    with factory.begin() as session:
        assert store.sealed.claim_sealed(session, request_id=request_id, now=T0, until=T0 + CLAIM)
    lapsed = T0 + CLAIM + timedelta(seconds=1)  # the claimant died while Slack opened its modal
    with factory.begin() as session:
        assert store.sealed.claim_sealed(session, request_id=request_id, now=lapsed, until=T0 + timedelta(minutes=11))
    with factory.begin() as session:
        assert store.sealed.wipe_expired_secrets(session, now=T0 + timedelta(minutes=10, seconds=30)) == [], \
            "a reveal showing it right now keeps it"
        assert store.sealed.wipe_expired_secrets(session, now=T0 + timedelta(minutes=12)) == [request_id]


def test_a_password_a_reveal_holds_is_not_discarded_and_says_so(factory: sessionmaker[Session]) -> None:
    """A Cancel, Deny or "This wasn't me" while Slack opens the reveal's modal: the row stays for the reveal to
    spend (its "revealed" audit), and the caller hears that a reveal was under way, not "discarded unrevealed"."""
    request_id = _sealed(factory)
    with factory.begin() as session:
        assert store.sealed.claim_sealed(session, request_id=request_id, now=T0, until=T0 + CLAIM)
    with factory.begin() as session:
        assert store.sealed.discard_sealed(session, request_id=request_id, now=T0) == store.sealed.Discard.REVEALING
    with factory.begin() as session:
        assert store.sealed.spend_sealed(session, request_id=request_id, claimed_until=T0 + CLAIM), \
            "the reveal under way still spends its claim"
        assert store.sealed.discard_sealed(session, request_id=request_id, now=T0) == store.sealed.Discard.NONE


def test_a_lapsed_claim_is_discarded_but_reported_as_maybe_read(factory: sessionmaker[Session]) -> None:
    """A claim whose reveal never said how it ended (its replica died while Slack opened the modal) may have shown
    the password: it is deleted (nobody else reads it) and reported as a reveal, not as unrevealed."""
    request_id = _sealed(factory)
    with factory.begin() as session:
        assert store.sealed.claim_sealed(session, request_id=request_id, now=T0, until=T0 + CLAIM)
    lapsed = T0 + CLAIM + timedelta(seconds=1)
    with factory.begin() as session:
        assert store.sealed.discard_sealed(session, request_id=request_id, now=lapsed) == \
            store.sealed.Discard.REVEALING
        assert not store.sealed.has_sealed(session, request_id=request_id)
    unclaimed = _sealed(factory)
    with factory.begin() as session:
        assert store.sealed.discard_sealed(session, request_id=unclaimed, now=T0) == store.sealed.Discard.DISCARDED
        assert not store.sealed.has_sealed(session, request_id=unclaimed)

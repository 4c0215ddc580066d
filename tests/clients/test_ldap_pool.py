"""The AD client keeps its LDAPS connections open between calls, and never lets a dead one cost a call: against
the lab's real Samba DC, stopped, restarted and frozen."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.clients.directory import LdapDirectory
from bot.errors import DirectoryUnavailableError
from lab.people import person
from lab.stack import Lab


def _directory(lab: Lab, *, timeout_s: float = 10.0) -> LdapDirectory:
    ad = lab.descriptor["ad"]
    return LdapDirectory(url=ad["ldaps_url"], bind=ad["reader"]["bind"], password=ad["reader"]["password"],
                         base_dn=ad["base_dn"], ca_file=ad["ca_file"], timeout_s=timeout_s)


def test_calls_one_after_another_share_one_connection(lab: Lab) -> None:
    directory = _directory(lab)
    try:
        for _ in range(20):
            assert directory.find_user(sam="alice") is not None
        dns = [dn for dn in (person("alice").dn, person("bob").dn) if dn is not None]
        assert directory.password_states_by_dn(dns).keys() == {dn.lower() for dn in dns} and len(dns) == 2
        directory.ping()
        assert directory.connections_opened == 1
    finally:
        directory.close()


def test_calls_at_once_each_get_their_own_connection_and_all_answer(lab: Lab) -> None:
    directory = _directory(lab)
    start = threading.Barrier(8)

    def find(_: int) -> str | None:
        start.wait()
        found = directory.find_user(sam="alice")
        return found.sam if found else None

    try:
        for _ in range(3):
            with ThreadPoolExecutor(8) as pool:
                assert list(pool.map(find, range(8))) == ["alice"] * 8
        # The first round opened up to eight; later rounds reuse the four kept idle and open the rest anew.
        assert directory.connections_opened <= 8 + 2 * 4
    finally:
        directory.close()


def test_the_first_call_after_the_dc_restarted_reaches_it(lab: Lab) -> None:
    """Kept-open connections die with the DC; the pool notices before using one (the socket says so), so the
    first call after the DC is back answers, as it did when every call opened its own connection."""
    directory = _directory(lab)
    try:
        assert directory.find_user(sam="alice") is not None
        lab.ad.pause()
        try:
            with pytest.raises(DirectoryUnavailableError):
                directory.find_user(sam="alice")
        finally:
            lab.ad.resume()
        found = directory.find_user(sam="alice")
        assert found is not None and found.sam == "alice"
    finally:
        directory.close()


def test_a_restart_between_two_calls_costs_no_call(lab: Lab) -> None:
    """No call is made while the DC is away: the idle connection is dead when the next call comes, and that call
    still answers."""
    directory = _directory(lab)
    try:
        assert directory.find_user(sam="alice") is not None
        opened = directory.connections_opened
        lab.ad.pause()
        lab.ad.resume()
        assert directory.find_user(sam="bob") is not None
        assert directory.connections_opened == opened + 1
    finally:
        directory.close()


def test_a_frozen_dc_fails_the_call_in_one_sentence_and_the_next_call_after_it_thaws_answers(lab: Lab) -> None:
    directory = _directory(lab, timeout_s=2)
    try:
        assert directory.find_user(sam="alice") is not None
        lab.ad.freeze()
        try:
            with pytest.raises(DirectoryUnavailableError, match="Active Directory"):
                directory.find_user(sam="alice")
        finally:
            lab.ad.thaw()
        assert directory.find_user(sam="alice") is not None
    finally:
        directory.close()

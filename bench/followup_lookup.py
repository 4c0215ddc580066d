"""What batching the follow-ups' AD reads is worth: the bot's paged OR-searches by logon name for every due check,
against one search per account on a connection kept open (a fair baseline: the AD client keeps its connections
open, so neither way pays a handshake per account), on the lab's real Samba DC over LDAPS.

    .venv/bin/python -m bench.followup_lookup [--accounts N] [--rounds R]

Both ways read the same N accounts with the same attributes and must find them all; the one-by-one way is the
baseline, measured in the same run, so the ratio holds on any machine. A sweep with many checks due at once
(after an outage, or a morning of resets) is where it matters. Seeding is an LDAP add per account (Samba takes
about 10 ms each, so 10,000 accounts take two minutes before anything is measured).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bot.clients.directory import LdapDirectory
from lab.ad.dc import LabAD
from lab.people import BASE_DN
from lab.pki import LabCA

BENCH_OU = f"OU=Bench,{BASE_DN}"


def _seed(ad: LabAD, count: int) -> list[str]:
    """``count`` plain accounts in their own OU (no password: the reads do not need one); their DNs."""
    admin = ad.admin_connection()
    try:
        admin.add(BENCH_OU, "organizationalUnit")
        dns = []
        for i in range(count):
            dn = f"CN=Bench User {i:05d},{BENCH_OU}"
            if not admin.add(dn, ["top", "person", "organizationalPerson", "user"],
                             {"sAMAccountName": _sam(i), "displayName": f"Bench User {i:05d}"}):
                raise RuntimeError(f"could not add {dn}: {admin.result}")
            dns.append(dn)
        return dns
    finally:
        admin.unbind()


def _sam(i: int) -> str:
    return f"bench{i:05d}"


def _median_s(fn: Callable[[], int], rounds: int, expected: int) -> float:
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        found = fn()
        times.append(time.perf_counter() - began)
        if found != expected:
            raise RuntimeError(f"found {found} of {expected} accounts")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ad = LabAD(Path(tmp), LabCA(Path(tmp) / "pki"))
        ad.start()
        try:
            dns = _seed(ad, args.accounts)
            reader = ad.descriptor()["reader"]
            directory = LdapDirectory(url=ad.ldaps_url, bind=reader["bind"], password=reader["password"],
                                      base_dn=BASE_DN, ca_file=str(ad.ca.ca_file))
            sams = [_sam(i) for i in range(len(dns))]
            batched = _median_s(lambda: len(directory.password_states_by_sam(sams)), args.rounds, len(dns))
            one_by_one = _median_s(lambda: sum(directory.find_user(dn=dn) is not None for dn in dns), args.rounds,
                                   len(dns))
            opened = directory.connections_opened
            directory.close()
        finally:
            ad.stop()
    n = len(dns)
    print(f"follow-up AD reads of {n} accounts (median of {args.rounds}), lab Samba DC over LDAPS:")
    print(f"  one search per account (baseline): {one_by_one:7.3f} s  ({one_by_one / n * 1000:6.2f} ms per account)")
    print(f"  paged OR-searches (the bot):       {batched:7.3f} s  ({batched / n * 1000:6.2f} ms per account)")
    print(f"  batching speed-up:                 {one_by_one / batched:7.1f}x")
    print(f"  LDAPS connections opened for all of it: {opened}")


if __name__ == "__main__":
    main()

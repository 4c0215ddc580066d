"""How long the lab's AD takes to come up: cold (provision + seed a template) against warm (copy it).

    .venv/bin/python -m bench.lab_start [--rounds N]

The warm start is what every test run and every `resetbot-lab up` pays; the cold one is the baseline it is
compared against in the same run, so the ratio says what the template cache is worth on this machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from lab.ad.dc import LabAD
from lab.pki import LabCA


def _start_stop(state: Path, cache: Path) -> float:
    ad = LabAD(state, LabCA(state / "pki"), cache_dir=cache)
    began = time.perf_counter()
    ad.start()
    elapsed = time.perf_counter() - began
    ad.stop()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cache = root / "cache"
        cold = _start_stop(root / "cold", cache)
        warm = [_start_stop(root / f"warm{i}", cache) for i in range(rounds)]
    median = statistics.median(warm)
    print(f"lab AD start, cold (provision + seed): {cold:6.2f} s")
    print(f"lab AD start, warm (template copy):    {median:6.2f} s  (median of {rounds}; min {min(warm):.2f})")
    print(f"template cache speed-up:               {cold / median:6.1f}x")


if __name__ == "__main__":
    main()

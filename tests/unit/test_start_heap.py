"""``resetbot``'s start and the garbage collector (bot.cli.start_heap): paused while the start imports and builds,
then, once serving, what the start built is left out of full passes (those held the GIL for hundreds of
milliseconds under a burst, and every ack waited for them: bench/ack_burst.py), and collection runs again."""

from __future__ import annotations

import gc
import json
import subprocess
import sys

import pytest

from bot.cli import start_heap


@pytest.fixture
def collector_restored() -> object:
    was = gc.isenabled()
    yield None
    gc.unfreeze()
    if was:
        gc.enable()
    else:
        gc.disable()


def test_what_the_start_built_is_no_longer_walked_by_a_full_collection(collector_restored: object) -> None:
    start_heap.pause()
    built_at_start = [[i] for i in range(1000)]  # containers the collector tracks, as the start's modules are
    start_heap.settle()
    assert gc.isenabled(), "serving collects as usual"
    walked = {id(o) for o in gc.get_objects()}  # every generation a collection walks
    assert not [x for x in built_at_start if id(x) in walked]
    made_after = [[i] for i in range(10)]
    walked = {id(o) for o in gc.get_objects()}
    assert all(id(x) in walked for x in made_after), "what serving makes is still collected"


_PROBE = """
import gc, json, sys
from bot.__main__ import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps({"enabled": gc.isenabled()}), file=sys.stderr)
"""


@pytest.mark.process
@pytest.mark.parametrize("argv", [["--version"], ["migrate", "--help"], ["doctor", "--no-such-flag"]])
def test_the_collector_runs_again_whatever_the_command_line_did(argv: list[str]) -> None:
    """Paused only for the start: a command that ends (or argparse exits) leaves it collecting."""
    done = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, timeout=120,
                          check=False)
    last = done.stderr.strip().splitlines()[-1]
    assert json.loads(last) == {"enabled": True}, done.stderr

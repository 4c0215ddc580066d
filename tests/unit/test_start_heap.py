"""``resetbot run`` leaves what its start built out of the garbage collector's full passes (bot.cli.run): those
passes held the GIL for hundreds of milliseconds under a burst, and every ack waited for them (bench/ack_burst.py)."""

from __future__ import annotations

import gc

from bot.cli.run import freeze_start_up_heap


def test_what_the_start_built_is_no_longer_walked_by_a_full_collection() -> None:
    built_at_start = [[i] for i in range(1000)]  # containers the collector tracks, as the start's modules are
    freeze_start_up_heap()
    try:
        walked = {id(o) for o in gc.get_objects()}  # every generation a collection walks
        assert not [x for x in built_at_start if id(x) in walked]
        made_after = [[i] for i in range(10)]
        walked = {id(o) for o in gc.get_objects()}
        assert all(id(x) in walked for x in made_after), "what serving makes is still collected"
    finally:
        gc.unfreeze()

"""The garbage collector during ``resetbot``'s start: paused from the first import until Slack is connected, then
one collection, what is left frozen, and collection as usual.

Why paused: the start imports SQLAlchemy, pydantic, bolt and the bot, and builds the app and its clients: some
157,000 tracked containers that live as long as the process. Each collection during the start walked the older
ones again, about 75 ms of a 0.6 s start on the 2-core lab machine (``bench/start_time.py``). Reference counting
still frees almost everything at once; only cycles wait, for under a second.

Why one collection after connecting, not before: it takes about 50 ms with the GIL held. Before the connection it
delays the moment Slack can deliver anything; just after it, it delays at most the first ack, by that much.

Why frozen (``settle``): every full (oldest-generation) collection walked those objects while holding the GIL: 90
to 420 ms each on the lab under a burst of ``/reset``, during which no listener thread could ack
(``bench/ack_burst.py``; timed with a ``gc.callbacks`` hook). ``gc.freeze`` moves them to a generation the
collector never scans, so a full pass only walks what was made since (5 to 48 ms there); the collection before it
keeps the start's garbage from being frozen for good. Alone it did not bring the closed loop's ack p99 down beyond
the run-to-run noise; the work lane's threads were the larger part (``handlers/work.py``).
"""

from __future__ import annotations

import gc


def pause() -> None:
    """Stop automatic collection for the start (``bot.__main__`` calls it before importing anything else)."""
    gc.disable()


def resume() -> None:
    """Collect automatically again: every command but ``run`` right after parsing, and at any exit."""
    gc.enable()


def settle() -> None:
    """Once serving: collect the start's garbage, freeze what is left out of full passes, collect as usual."""
    gc.collect()
    gc.freeze()
    gc.enable()

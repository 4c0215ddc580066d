"""App Home refreshes asked in a burst are drawn once, after the last ask; one asked later is drawn again."""

from __future__ import annotations

import functools
import threading

from bot.services.debounce import Debounce


def test_asks_while_one_waits_are_one_run_and_a_later_ask_runs_again() -> None:
    runs: list[str] = []
    ran = [threading.Event(), threading.Event()]
    debounce = Debounce(0.3)

    def work(label: str) -> None:
        runs.append(label)
        ran[len(runs) - 1].set()

    for i in range(50):
        debounce.ask("home:U1", functools.partial(work, f"burst {i}"))
    debounce.ask("home:U2", lambda: None)
    assert debounce.pending() == 2
    assert ran[0].wait(10)
    assert runs == ["burst 0"], "fifty asks, one run"
    debounce.ask("home:U1", lambda: work("later"))
    assert ran[1].wait(10)
    assert runs == ["burst 0", "later"]


def test_close_drops_what_waits_and_takes_no_more() -> None:
    debounce = Debounce(60)
    ran = threading.Event()
    debounce.ask("home:U1", ran.set)
    debounce.close()
    debounce.ask("home:U2", ran.set)
    assert debounce.pending() == 0
    assert not ran.is_set()

"""``resetbot``: the bot's command line (``bot.cli.main``; each subcommand lives in its own module under ``bot.cli``).

This module imports nothing of the bot before it pauses the garbage collector: the start imports and builds some
157,000 objects that live as long as the process, and collections during the start walked them again and again
(about 75 ms of a start of 0.6 s on the 2-core lab machine). ``bot.cli.start_heap`` says when it runs again.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from bot.cli import start_heap


def main(argv: Sequence[str] | None = None) -> int:
    start_heap.pause()
    try:
        from bot.cli.main import main as command_line  # noqa: PLC0415 (after the pause: see the module doc)

        return command_line(argv)
    finally:
        start_heap.resume()  # a start that failed before serving, or a test calling this in its own process


if __name__ == "__main__":
    sys.exit(main())

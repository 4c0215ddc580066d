"""``resetbot``'s subcommands: one module per command, each exposing ``register(sub)``.

A command module adds its own argparse parser and sets ``handler`` (a function taking the parsed
arguments and returning the exit code) with ``set_defaults``; ``bot.cli.main`` only collects them. So a new
command is a new file and one line in ``COMMANDS``, and no command's options leak into another's.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Protocol, TypeAlias

Handler = Callable[[argparse.Namespace], int]


# argparse's own type for ``add_subparsers()``; private in name only, typeshed documents it.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class CommandModule(Protocol):
    def register(self, sub: Subparsers) -> None: ...

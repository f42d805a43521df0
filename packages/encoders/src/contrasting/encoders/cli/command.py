"""``Command``: the type of a ``contrasting`` subcommand (see ``cli`` for how subcommands are found and run)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """One subcommand: its one-line help, how it adds its arguments, and how it runs (returns the exit status)."""

    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]

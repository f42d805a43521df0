"""Checked argument types for every ``contrasting`` command's ``argparse`` options.

Each is an ``argparse`` ``type=`` callable: it returns the parsed value or raises
``argparse.ArgumentTypeError`` with what was expected, so argparse prints
``argument --workers: expected an integer >= 1, got '-1'`` and exits with status 2 before any work starts.
Paths are checked for what they must be (an existing file, an existing folder, or a place a folder can be
made), not opened. ``OneLineParser`` is the parser every command uses: its errors are one line.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path
from typing import NoReturn


def _integer(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= {least}, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"expected an integer >= {least}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer n ≥ 1 (sizes, epochs, workers, steps)."""
    return _integer(text, 1)


def nonnegative_int(text: str) -> int:
    """An integer n ≥ 0 (counts where 0 means off, seeds)."""
    return _integer(text, 0)


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number x > 0 (budgets, time limits, learning rates)."""
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def nonnegative_float(text: str) -> float:
    """A finite number x ≥ 0 (weight decay, margins, waits)."""
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def unit_interval(text: str) -> float:
    """A finite number in [0, 1] (fractions, probabilities)."""
    value = _finite(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def _existing(text: str, folder: bool) -> Path:
    """``text`` as a path that exists and is a folder (``folder``) or a file (not ``folder``)."""
    path = Path(text).expanduser()
    want, other = ("folder", "file") if folder else ("file", "folder")
    if path.exists() and path.is_dir() != folder:
        raise argparse.ArgumentTypeError(f"expected a {want}, got the {other} {text!r}")
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such {want}: {text!r}")
    return path


def existing_file(text: str) -> Path:
    """A path to a file that exists (not a folder)."""
    return _existing(text, folder=False)


def existing_dir(text: str) -> Path:
    """A path to a folder that exists."""
    return _existing(text, folder=True)


def output_dir(text: str) -> Path:
    """A folder to write into: it exists as a folder, or it does not exist and nothing above it is a file."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"expected a folder to write into, got the file {text!r}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f"cannot make the folder {text!r}: {str(parent)!r} is a file")
            break
    return path


def output_file(text: str) -> Path:
    """A file to write (replaced if it exists): not a folder, and no file where a folder above it must be."""
    path = Path(text).expanduser()
    if not path.name or path.is_dir():
        raise argparse.ArgumentTypeError(f"expected a file to write, got the folder {text!r}")
    output_dir(str(path.parent))
    return path


def new_file(text: str) -> Path:
    """A file to create: nothing exists at the path yet, and its folder is not a file."""
    path = output_file(text)
    if path.exists():
        raise argparse.ArgumentTypeError(f"{text!r} exists (expected a new file)")
    return path


def output_file_or_stdout(text: str) -> Path | str:
    """``-`` (standard output) or a file to write (``output_file``)."""
    return text if text == "-" else output_file(text)


def existing_path(text: str) -> Path:
    """A file or folder that exists (``--compare``: another report's folder or its findings.json)."""
    path = Path(text).expanduser()
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such file or folder: {text!r}")
    return path


def hash_prefix(text: str) -> str:
    """A grid spec hash or a prefix of one: hexadecimal digits."""
    if not re.fullmatch(r"[0-9a-fA-F]{1,64}", text):
        raise argparse.ArgumentTypeError(f"expected a spec hash (a prefix of hexadecimal digits), got {text!r}")
    return text.lower()


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr, ``<prog>: error: <message>``, exit status 2
    (the shape of every other failure of a ``contrasting`` command); ``--help`` lists the options. Its
    sub-parsers are of the same class."""

    def error(self, message: str) -> NoReturn:
        """Print ``<prog>: error: <message>`` on one line and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def parse_or_status(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace | int:
    """``parser.parse_args(argv)``, or the exit status argparse chose (2 after its one-line error, 0 after
    ``--help``) for commands whose callers expect a status rather than ``SystemExit``."""
    try:
        return parser.parse_args(argv)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 2

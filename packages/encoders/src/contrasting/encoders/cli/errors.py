"""How a failed ``contrasting`` command ends: one line on stderr naming what went wrong, an exit status.

Every subcommand runs through :func:`run_command`. An exception becomes
``contrasting <command>: error: <message>``:

* exit status 2 for input the user can fix (``usage_errors()``: a bad value, an unknown name, a file that is
  missing, a directory where a file was expected or the reverse, a file that exists, no permission, a
  YAML/JSON/SQLite file that cannot be parsed);
* exit status 1 for a run that failed (``fault_errors()``: a non-finite loss, an unusable checkpoint) and for
  anything unforeseen, whose message then names the exception type and says ``--debug`` shows the traceback;
* exit status 130 for Ctrl-C (``interrupted``; the project's long jobs resume on a rerun).

With ``--debug`` (anywhere on the command line) or ``CONTRASTING_DEBUG=1`` nothing is caught: the traceback
is printed as Python prints it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable

DEBUG_FLAG = "--debug"
INTERRUPTED = 130


def usage_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean the input is wrong (exit status 2)."""
    import sqlite3  # stdlib; imported here to keep ``contrasting --help`` light

    from ..registry import UnknownNameError
    from ..weights.layouts import LayoutError

    kinds: list[type[BaseException]] = [UnknownNameError, LayoutError, ValueError, OSError, sqlite3.DatabaseError,
                                         json.JSONDecodeError]
    import yaml

    kinds.append(yaml.YAMLError)
    return tuple(kinds)


_FAULTS = (("contrasting.encoders.training.trainer", "NonFiniteLossError"),
           ("contrasting.encoders.weights.checkpoints", "CheckpointError"))


def fault_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean the run itself failed (exit status 1). Only those of modules already imported:
    an error of a type whose module was never imported cannot exist, and formatting an error stays torch-free."""
    return tuple(getattr(sys.modules[module], name) for module, name in _FAULTS if module in sys.modules)


def take_debug_flag(argv: list[str]) -> tuple[list[str], bool]:
    """``argv`` without its ``--debug`` tokens, and whether there was one (or ``CONTRASTING_DEBUG=1``); a
    ``--debug`` sets ``CONTRASTING_DEBUG=1`` so that commands which report their own errors see it too."""
    kept = [token for token in argv if token != DEBUG_FLAG]
    if len(kept) != len(argv):
        os.environ["CONTRASTING_DEBUG"] = "1"
    return kept, debugging()


def debugging() -> bool:
    """True when tracebacks are wanted (``--debug`` or ``CONTRASTING_DEBUG=1``): a command that catches its own
    errors re-raises them then."""
    return os.environ.get("CONTRASTING_DEBUG") == "1"


def describe(error: BaseException) -> str:
    """One line for ``error``: an OS error as ``<reason>: <path>``, a known error as its message, anything else
    as ``<Type>: <message> (--debug shows the traceback)``."""
    if isinstance(error, KeyError) and error.args:  # str() of a KeyError quotes its message
        text = str(error.args[0])
    elif isinstance(error, OSError) and error.strerror:
        where = f": {error.filename}" if error.filename is not None else ""
        also = f" -> {error.filename2}" if error.filename2 is not None else ""
        text = f"{error.strerror}{where}{also}"
    else:
        text = str(error).strip() or type(error).__name__
        if not isinstance(error, usage_errors() + fault_errors()):
            text = f"{type(error).__name__}: {text} ({DEBUG_FLAG} shows the traceback)"
    return " ".join(text.split())


def error_line(command: str, error: BaseException) -> str:
    """``contrasting <command>: error: <describe(error)>``: the one line of a failed command."""
    return f"contrasting {command}: error: {describe(error)}"


def exit_status(error: BaseException) -> int:
    """2 for :func:`usage_errors`, 1 for everything else."""
    if isinstance(error, fault_errors()):
        return 1
    return 2 if isinstance(error, usage_errors()) else 1


def run_command(name: str, run: Callable[[], int | None], *, debug: bool = False) -> int:
    """Run one subcommand and return its exit status; a failure is one line on stderr (module docstring)."""
    if debug:
        return int(run() or 0)
    try:
        return int(run() or 0)
    except KeyboardInterrupt:
        print(f"contrasting {name}: interrupted (a rerun resumes where it stopped)", file=sys.stderr)
        return INTERRUPTED
    except Exception as error:  # the command line's last resort: one line instead of a traceback
        print(error_line(name, error), file=sys.stderr)
        return exit_status(error)

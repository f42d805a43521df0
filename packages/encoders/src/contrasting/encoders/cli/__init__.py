"""The one ``contrasting`` command: a dispatcher whose subcommands come from the entry-point group
``contrasting.commands``.

A package adds a subcommand by registering an object in its pyproject::

    [project.entry-points."contrasting.commands"]
    eval = "contrasting.eval.cli:eval_command"

The object is either

* a ``Command(help, configure, run)``: ``configure(parser)`` adds the subcommand's arguments to its
  ``argparse`` subparser and ``run(args) -> int`` executes it (this package's commands), or
* a callable ``command(argv: list[str] | None) -> int`` that parses its own arguments: it receives every
  argument after its name unchanged; the first line of its docstring is its help.

Every subcommand, of either kind, runs through ``cli_errors.run_command``: a failure ends as one line,
``contrasting <command>: error: <message>``, with exit status 2 for input the user can fix and 1 for a failed
run; ``--debug`` anywhere on the command line (or ``CONTRASTING_DEBUG=1``) shows the traceback instead.
This package registers ``pretrain``, ``export`` and ``inspect-checkpoint``; they are also available when the
package runs from a source tree without its entry points (``python -m contrasting.encoders``).

``--local_rank`` is accepted (and ignored: ``LOCAL_RANK`` is read from the environment) because the
``deepspeed`` launcher passes it before the subcommand: ``deepspeed --hostfile hosts $(which contrasting)
pretrain ...``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from importlib.metadata import entry_points

from .command import Command
from .errors import run_command, take_debug_flag

GROUP = "contrasting.commands"


def discover() -> dict[str, Command | Callable[[list[str] | None], int]]:
    """Every subcommand: this package's, then the entry points of ``contrasting.commands`` (sorted by name).

    An entry point that fails to load is skipped with a warning on stderr naming it and the error; two
    different commands under one name raise ``RuntimeError``.
    """
    from . import commands as own

    found: dict = dict(own.COMMANDS)
    for ep in entry_points(group=GROUP):
        try:
            command = ep.load()
        except Exception as error:  # a broken plug-in must not take the other commands down
            print(f"contrasting: warning: command {ep.name!r} ({ep.value}) failed to load: {error}", file=sys.stderr)
            continue
        if ep.name in found and found[ep.name] is not command:
            raise RuntimeError(f"two packages register the command {ep.name!r} ({ep.value} and another)")
        if not isinstance(command, Command) and not callable(command):
            print(f"contrasting: warning: command {ep.name!r} ({ep.value}) is neither a Command nor a callable",
                  file=sys.stderr)
            continue
        found[ep.name] = command
    return dict(sorted(found.items()))


def version_text() -> str:
    """``contrasting --version``: every contrasting distribution's installed version and the git commit of the
    source tree (``unknown`` outside a git checkout)."""
    from ..provenance import PROJECT_DISTRIBUTIONS, git_commit, installed_version

    lines = [f"{dist} {installed_version(dist) or '(not installed)'}" for dist in PROJECT_DISTRIBUTIONS]
    return "\n".join([*lines, f"git {git_commit() or 'unknown'}"])


def _help(command) -> str:
    if isinstance(command, Command):
        return command.help
    doc = (getattr(command, "__doc__", None) or "").strip()
    return " ".join(doc.split("\n\n")[0].split())


def build_parser(commands: dict) -> argparse.ArgumentParser:
    """The top-level parser with one subparser per command (callable commands parse their own arguments)."""
    parser = argparse.ArgumentParser(prog="contrasting", description="Contrastive encoders: pre-train, import, "
                                     "export and evaluate.")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--version", action="store_true", help="print every package's version and the git commit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in commands.items():
        if isinstance(command, Command):
            p = sub.add_parser(name, help=command.help, description=command.help)
            command.configure(p)
            p.set_defaults(_run=command.run, _name=name, _parser=p)
        else:
            sub.add_parser(name, help=_help(command), add_help=False)
    return parser


def _command_position(argv: list[str]) -> int | None:
    """Index of the subcommand name in ``argv`` (skipping the launcher's ``--local_rank`` forms)."""
    i = 0
    while i < len(argv):
        token = argv[i]
        if token.startswith(("--local_rank=", "--local-rank=")):
            i += 1
        elif token in ("--local_rank", "--local-rank"):
            i += 2
        elif token.startswith("-"):
            return None
        else:
            return i
    return None


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the chosen subcommand and return its exit status."""
    argv, debug = take_debug_flag(list(sys.argv[1:] if argv is None else argv))
    position = _command_position(argv)
    if "--version" in (argv if position is None else argv[:position]):
        print(version_text())
        return 0
    commands = discover()
    if position is not None and argv[position] in commands and not isinstance(commands[argv[position]], Command):
        name, command = argv[position], commands[argv[position]]
        return run_command(name, lambda: command(argv[position + 1:]), debug=debug)
    parser = build_parser(commands)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # reported by the subcommand's parser, so that the message names the subcommand and its usage
        args._parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return run_command(args._name, lambda: args._run(args), debug=debug)

if __name__ == "__main__":
    sys.exit(main())

"""The ``contrasting eval`` and ``contrasting tasks`` subcommands.

Both are entry points of the group ``contrasting.commands`` (see this package's pyproject.toml), each a
callable ``command(argv: list[str] | None) -> int`` that parses its own arguments and returns the exit
status; ``contrasting.encoders.cli:main`` dispatches ``contrasting <name> ...`` to them (the
first docstring line is the subcommand's help). Without that package,
``python -m contrasting.eval {eval,tasks} ...`` runs the same functions.

    contrasting tasks [--data-root DIR] [--json]
    contrasting eval --encoder CKPT|random|supervised --task NAME [--arch resnet50] [--seed 0]
                     [--hparams JSON] [--epochs N] [--image-size N] [--device auto] [--data-root DIR]
                     [--cache-dir DIR] [--no-cache] [--workers N] [--json] [--quiet]

Exit status: 0 on success, 2 on bad input (a bad option value, unknown task, missing or malformed data,
unknown checkpoint layout, mismatched head and encoder), with the error on stderr as one line,
``contrasting <command>: error: <message>``. Every option is checked when the arguments are parsed
(``OneLineParser``, the ``contrasting.encoders.cli.args`` types), before torch is imported or any work starts.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from contrasting.data.atomic import atomic_write_text
from contrasting.encoders.cli.args import (
    OneLineParser,
    existing_dir,
    nonnegative_int,
    output_dir,
    output_file_or_stdout,
    parse_or_status,
    positive_int,
)
from contrasting.encoders.cli.errors import debugging, error_line, usage_errors
from contrasting.eval.catalog.tasks import TaskDataError, catalog_hparam_check, check_data, get_task, list_tasks


def _tasks_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="contrasting tasks", description="List the end tasks and where their data is.")
    p.add_argument("--data-root", type=existing_dir, help="directory holding every task's data (else per-task "
                                                          "env vars / $CONTRASTING_DATA)")
    p.add_argument("--json", action="store_true", help="one JSON object per task")
    p.add_argument("--task", metavar="NAME", help="everything about one task: layout, protocol, deviations")
    p.add_argument("--check", metavar="ROOT", type=existing_dir,
                   help="check the study tasks' data under ROOT (found / partial / missing / malformed, with sample "
                        "counts against the published ones) before any training; exit 1 when any is not found")
    return p


def check_command(root, as_json: bool) -> int:
    """``tasks --check ROOT``: one line per study task (``data_check.check_task_data``); 0 when all are found."""
    from contrasting.eval.catalog.data_check import check_task_data

    checks = [check_task_data(spec, root) for spec in list_tasks() if not spec.builtin]
    for c in checks:
        if as_json:
            print(json.dumps(c.to_dict()))
            continue
        counts = "" if c.counts is None else f"{c.counts[0]} train / {c.counts[1]} test"
        print(f"{c.task:<20} {c.status:<10} {counts:<26} {c.problem or c.root}")
    bad = [c for c in checks if c.status != "found"]
    if not as_json:
        print(f"{len(checks) - len(bad)} of {len(checks)} study tasks found under {root}"
              + (f"; not usable as published: {', '.join(c.task for c in bad)}" if bad else ""))
    return 1 if bad else 0


def describe_task(name: str, data_root=None) -> str:
    """A task's entry as text: what it measures, its expected data layout (and whether it is present), its
    protocol, and where that protocol differs from the study's (``deviations`` + ``PROTOCOL_DEVIATIONS``)."""
    from contrasting.eval.catalog.tasks import PROTOCOL_DEVIATIONS, get_task

    spec = get_task(name)
    status = check_data(spec, data_root)
    lines = [f"{spec.name}: {spec.title} ({spec.group}-level {spec.kind}; source: {spec.source or '-'}; "
             f"version {spec.version})",
             f"  target {spec.target}" + (f", {spec.num_classes} classes" if spec.num_classes else "") +
             f"; head {spec.head}, loss {spec.loss}, metric {spec.metric} "
             f"({'higher' if spec.higher_is_better else 'lower'} is better)",
             f"  schedule: {spec.schedule.epochs} epochs, batch {spec.schedule.batch_size}, lr {spec.schedule.lr:g} "
             f"({spec.schedule.optimizer}, decay {spec.schedule.decay}); input {spec.image_size[0]}x"
             f"{spec.image_size[1]}, {spec.frames} frame(s)" + (
                 f"; training on {spec.train_crops.size[0]}x{spec.train_crops.size[1]} crops (scale "
                 f"{spec.train_crops.scale[0]:g}-{spec.train_crops.scale[1]:g}, flip {spec.train_crops.flip:g})"
                 if spec.train_crops else ""),
             f"  data: {'present at ' + str(status.root) if status.present else 'missing: ' + status.missing[0]}"
             f" (reader {spec.layout.reader}; env {spec.env})",
             "  expected layout:", *("    " + line for line in spec.layout.structure.splitlines()),
             "  differs from the study's protocol:",
             *(f"    - {d}" for d in (*spec.deviations, *PROTOCOL_DEVIATIONS))]
    if spec.paper:
        layout = {f"layout {k}": v for k, v in spec.paper.get("layout", {}).items() if k != "structure"}
        shown = {**layout, **{k: v for k, v in spec.paper.items() if k not in ("layout", "deviations")}}
        lines.append(f"  the study's own form: --task {spec.name}:paper (" +
                     ", ".join(f"{k} {v}" for k, v in shown.items()) + ")")
    return "\n".join(lines)


def tasks_command(argv: list[str] | None = None) -> int:
    """List the end tasks and whether their data is present.

    Prints name, group, head, loss, metric (↑ higher / ↓ lower is better), schedule, and whether the data
    is present with the path looked at (the first missing one if not)."""
    args = _tasks_parser().parse_args(argv)
    if args.check is not None:
        return check_command(args.check, args.json)
    if args.task:
        try:
            print(describe_task(args.task, args.data_root))
        except KeyError as unknown:  # get_task's unknown name: the user's input, one line, status 2
            raise ValueError(f"--task: {unknown.args[0]}") from None
        return 0
    rows = []
    for spec in list_tasks():
        status = check_data(spec, args.data_root)
        where = str(status.root) if status.present else status.missing[0]
        rows.append({"task": spec.name, "group": f"{spec.group}/{spec.kind}", "head": spec.head, "loss": spec.loss,
                     "metric": spec.metric + (" ↑" if spec.higher_is_better else " ↓"),
                     "schedule": f"{spec.schedule.epochs}/{spec.schedule.batch_size}/{spec.schedule.lr:g}",
                     "data": "present" if status.present else ("built on use" if spec.builtin else "missing"),
                     "path": where, "version": spec.version})
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    cols = ["task", "group", "head", "loss", "metric", "schedule", "data", "path"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols[:-1]}
    print("  ".join(c.ljust(widths.get(c, 0)) for c in cols))
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths.get(c, 0)) for c in cols))
    return 0


_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def encoder_arg(text: str) -> str:
    """``--encoder``: ``random[:arch]``, ``supervised[:arch]``, or a checkpoint file or run folder that exists."""
    if text.partition(":")[0] in ("random", "supervised") or Path(text).expanduser().exists():
        return text
    raise argparse.ArgumentTypeError(f"expected a checkpoint file or run folder, 'random[:arch]' or "
                                     f"'supervised[:arch]'; no such file or folder: {text!r}")


def device_arg(text: str) -> str:
    """``--device``: ``auto``, ``cpu``, ``mps``, ``cuda`` or ``cuda:N``."""
    if not _DEVICE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"expected auto, cpu, mps, cuda or cuda:N, got {text!r}")
    return text


def _key_values(text: str) -> dict:
    """``lr=1e-3,epochs=5`` → ``{"lr": 0.001, "epochs": 5}``: each item read as an override
    (``contrasting.encoders.overrides.parse_override``), so values mean what they mean in a config."""
    from contrasting.encoders.overrides import parse_override

    setting = {}
    for item in text.split(","):
        key, sep, _ = item.partition("=")
        if not sep or not key.strip() or "." in key:
            raise argparse.ArgumentTypeError(f"expected key=value[,key=value...] or a JSON list, got {text!r}")
        try:
            setting.update(parse_override(item.strip()))
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return setting


def hparams_arg(text: str) -> list[dict]:
    """``--hparams``: one setting as ``key=value[,key=value...]`` (the overrides' form, e.g. ``lr=1e-3,epochs=5``),
    or a JSON list of settings to select among (one object is one setting); each a mapping of ``Schedule``
    fields with values the schedule can use."""
    if not text.lstrip().startswith(("[", "{")):
        value = _key_values(text)
    else:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise argparse.ArgumentTypeError(f"expected a JSON list of objects, got {text!r} ({exc.msg})") from None
    settings = [value] if isinstance(value, dict) else value
    if not isinstance(settings, list) or not settings or not all(isinstance(h, dict) for h in settings):
        raise argparse.ArgumentTypeError(f"expected a non-empty JSON list of objects, got {text!r}")
    for i, setting in enumerate(settings):
        problems = catalog_hparam_check(setting)
        if problems:
            raise argparse.ArgumentTypeError(f"setting {i}: {'; '.join(problems)}")
    return settings


def _eval_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="contrasting eval", description="Evaluate one frozen encoder on end tasks.")
    p.add_argument("--encoder", required=True, type=encoder_arg,
                   help="checkpoint path or run folder, 'random[:arch]' or 'supervised[:arch]'")
    p.add_argument("--task", required=True, nargs="+", metavar="NAME",
                   help="one or more task names (see `contrasting tasks`), evaluated in order")
    p.add_argument("--arch", default=None, help="backbone for random/supervised (default resnet50)")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--hparams", type=hparams_arg, default=None,
                   help="one setting over the default schedule, e.g. lr=1e-3,epochs=5, or a JSON list of settings "
                        "to select among on the validation split, e.g. '[{\"lr\": 1e-3}, {\"lr\": 1e-4}]'")
    p.add_argument("--epochs", type=positive_int, default=None, help="override every setting's epoch count")
    p.add_argument("--image-size", type=positive_int, default=None,
                   help="override the task's input size (square)")
    p.add_argument("--device", type=device_arg, default="auto", help="auto, cpu, mps, cuda or cuda:N")
    p.add_argument("--data-root", type=output_dir, default=None,
                   help="directory holding the task's data (a built-in task's world is built there on first use)")
    p.add_argument("--cache-dir", type=output_dir, default=None,
                   help="memory-map image-level features here (reused across runs)")
    p.add_argument("--no-cache", action="store_true", help="re-encode every batch (the uncached baseline)")
    p.add_argument("--workers", type=nonnegative_int, default=0,
                   help="data-loading worker processes (0: load in the main process)")
    p.add_argument("--json", nargs="?", const="-", default=None, type=output_file_or_stdout, metavar="FILE",
                   help="the whole results as JSON: to FILE (a list, one record per task, written atomically), or "
                        "printed when no FILE is given (one object for one task, else a list)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p


def _known_task(name: str) -> bool:
    """A catalog task, or the paper form of one that has it."""
    try:
        get_task(name)
    except (KeyError, ValueError):
        return False
    return True


def eval_command(argv: list[str] | None = None) -> int:
    """Evaluate one frozen encoder on one end task.

    Runs ``protocol.run_cell`` and prints the test metric of the setting selected on the validation split,
    the settings' validation scores and the timings (or everything as JSON). Bad options end argparse's way
    (one line, ``SystemExit(2)``); bad input found later (unknown task, missing data or checkpoint) returns 2
    after one line on stderr."""
    args = _eval_parser().parse_args(argv)
    unknown = [t for t in args.task if not _known_task(t)]
    if unknown:
        error = ValueError(f"--task: unknown task {', '.join(map(repr, unknown))}; see `contrasting tasks`")
        if debugging():
            raise error
        print(error_line("eval", error), file=sys.stderr)
        return 2
    from contrasting.eval.cell.protocol import run_cell  # torch: only once the arguments parse

    results = []
    try:
        check_device(args.device)
        if args.arch is not None and not args.encoder.startswith("supervised"):  # before any data is read
            from contrasting.encoders import BACKBONES

            BACKBONES.get(args.arch)  # UnknownNameError (a ValueError) listing the known backbones
        for task in args.task:
            results.append(run_cell(args.encoder, task, hparams=args.hparams, seed=args.seed, device=args.device,
                                    data_root=args.data_root, cache_dir=args.cache_dir, progress=not args.quiet,
                                    arch=args.arch, image_size=args.image_size, epochs=args.epochs,
                                    feature_cache="off" if args.no_cache else "auto", num_workers=args.workers))
            if args.json != "-":
                _print_result(results[-1])
    except (TaskDataError, KeyError, RuntimeError, *usage_errors()) as exc:
        if debugging():
            raise
        print(error_line("eval", exc), file=sys.stderr)
        return 2
    finally:
        _write_json(results, args.json)
    return 0


def _write_json(results: list, target) -> None:
    """The results as JSON (``--json``): printed (one object for one result) or written atomically as a list."""
    if target is None or not results:
        return
    records = [r.to_dict() for r in results]
    if target == "-":
        print(json.dumps(records[0] if len(records) == 1 else records, indent=2))
    else:
        atomic_write_text(target, json.dumps(records, indent=2) + "\n")


def check_device(device: str) -> None:
    """Refuse (ValueError) a ``--device`` this machine does not have, before any data is read (imports torch)."""
    import torch

    kind, _, index = device.partition(":")
    if kind == "cuda" and int(index or 0) >= torch.cuda.device_count():
        raise ValueError(f"--device {device}: no such CUDA device ({torch.cuda.device_count()} visible)")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ValueError("--device mps: the MPS backend is not available on this machine")


def _print_result(result) -> None:
    """``contrasting eval``'s summary of one result: the test metric, the settings' validation scores, timings."""
    arrow = "higher" if result.higher_is_better else "lower"
    print(f"encoder {result.encoder}  task {result.task} (v{result.task_version})  seed {result.seed}")
    print(f"test {result.metric} = {result.value:.4f}  ({arrow} is better; score {result.score:.4f})")
    for r in result.val_scores:
        hp = r["hparams"]
        print(f"  setting lr={hp['lr']:g} epochs={hp['epochs']} batch={hp['batch_size']}: val {result.metric} = "
              f"{r['val']:.4f}")
    print("selected: " + ", ".join(f"{k}={v}" for k, v in result.selected.items()))
    print("sizes: " + ", ".join(f"{k} {v}" for k, v in result.sizes.items()) + "   timings: " +
          ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items()))


def report_command(argv: list[str] | None = None) -> int:
    """Write the study's analysis of a results store or a results CSV: report, findings.json, figures.

    The parser is built here, the analysis (pandas, scipy, matplotlib) imported only once the arguments parse,
    so that ``contrasting report --help`` answers at once. Returns the exit status, 2 after one line on stderr
    for a bad option or source."""
    from contrasting.eval.analysis.cli import add_report_arguments  # argparse only

    parser = OneLineParser(prog="contrasting report",
                           description="Analysis report from a results store or a results CSV.")
    args = parse_or_status(add_report_arguments(parser), argv)
    if isinstance(args, int):
        return args
    from contrasting.eval.analysis.report import run_report  # the heavy part

    return run_report(args)


COMMANDS = {"eval": eval_command, "tasks": tasks_command, "report": report_command}


def main(argv: list[str] | None = None) -> int:
    """``python -m contrasting.eval <eval|tasks> ...``."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m contrasting.eval {{{','.join(COMMANDS)}}} ...", file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:])

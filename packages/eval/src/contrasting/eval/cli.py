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

Exit status: 0 on success, 2 on bad input (unknown task, missing or malformed data, unknown checkpoint
layout, mismatched head and encoder), with the error on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys

from contrasting.eval.tasks import TaskDataError, check_data, list_tasks


def _tasks_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="contrasting tasks", description="List the end tasks and where their data is.")
    p.add_argument("--data-root", help="directory holding every task's data (else per-task env vars / "
                                       "$CONTRASTING_DATA)")
    p.add_argument("--json", action="store_true", help="one JSON object per task")
    return p


def tasks_command(argv: list[str] | None = None) -> int:
    """List the end tasks and whether their data is present.

    Prints name, group, head, loss, metric (↑ higher / ↓ lower is better), schedule, and whether the data
    is present with the path looked at (the first missing one if not)."""
    args = _tasks_parser().parse_args(argv)
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
    from contrasting.eval import _adapters  # imports torch and the data package

    world = _adapters.world_tasks()
    if world is None:
        print("\n(built-in tasks need contrasting-data to build the shapes world)")
    return 0


def _eval_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="contrasting eval", description="Evaluate one frozen encoder on one end task.")
    p.add_argument("--encoder", required=True, help="checkpoint path, 'random[:arch]' or 'supervised[:arch]'")
    p.add_argument("--task", required=True, help="task name (see `contrasting tasks`)")
    p.add_argument("--arch", default=None, help="backbone for random/supervised (default resnet50)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hparams", default=None,
                   help='JSON list of settings over the default schedule, e.g. \'[{"lr": 1e-3}, {"lr": 1e-4}]\'')
    p.add_argument("--epochs", type=int, default=None, help="override every setting's epoch count")
    p.add_argument("--image-size", type=int, default=None, help="override the task's input size (square)")
    p.add_argument("--device", default="auto")
    p.add_argument("--data-root", default=None)
    p.add_argument("--cache-dir", default=None, help="memory-map image-level features here (reused across runs)")
    p.add_argument("--no-cache", action="store_true", help="re-encode every batch (the uncached baseline)")
    p.add_argument("--workers", type=int, default=0, help="data-loading worker processes")
    p.add_argument("--json", action="store_true", help="print the whole result as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p


def eval_command(argv: list[str] | None = None) -> int:
    """Evaluate one frozen encoder on one end task.

    Runs ``protocol.run_cell`` and prints the test metric of the setting selected on the validation split,
    the settings' validation scores and the timings (or everything as JSON)."""
    args = _eval_parser().parse_args(argv)
    from contrasting.eval.protocol import run_cell  # torch: only once the arguments parse

    try:
        hparams = json.loads(args.hparams) if args.hparams else None
        if hparams is not None and not (isinstance(hparams, list) and all(isinstance(h, dict) for h in hparams)):
            raise ValueError("--hparams: expected a JSON list of objects")
        result = run_cell(args.encoder, args.task, hparams=hparams, seed=args.seed, device=args.device,
                          data_root=args.data_root, cache_dir=args.cache_dir, progress=not args.quiet, arch=args.arch,
                          image_size=args.image_size, epochs=args.epochs,
                          feature_cache="off" if args.no_cache else "auto", num_workers=args.workers)
    except (TaskDataError, KeyError, ValueError, FileNotFoundError, RuntimeError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"contrasting eval: error: {msg}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
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
    return 0


def report_command(argv: list[str] | None = None) -> int:
    """Write the study's analysis of a results store or a results CSV: report, findings.json, figures.

    The parser is built here, the analysis (pandas, scipy, matplotlib) imported only once the arguments parse,
    so that ``contrasting report --help`` answers at once."""
    from contrasting.eval.report_cli import add_report_arguments  # argparse only

    parser = argparse.ArgumentParser(prog="contrasting report",
                                     description="Analysis report from a results store or a results CSV.")
    args = add_report_arguments(parser).parse_args(argv)
    from contrasting.eval.report import run_report  # the heavy part

    return run_report(args)


COMMANDS = {"eval": eval_command, "tasks": tasks_command, "report": report_command}


def main(argv: list[str] | None = None) -> int:
    """``python -m contrasting.eval <eval|tasks> ...``."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m contrasting.eval {{{','.join(COMMANDS)}}} ...", file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:])

"""``contrasting grid``: run a grid spec locally or on Slurm, show its status.

Every option is checked when the arguments are parsed (``OneLineParser``, ``contrasting.encoders.cli.args``):
a bad one ends with one line on stderr and exit status 2 before the spec or the store is opened. A spec or
store found unusable later ends the same way, ``contrasting grid: error: <message>``.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

from contrasting.encoders.cli.args import (
    OneLineParser,
    existing_dir,
    existing_file,
    hash_prefix,
    new_file,
    nonnegative_int,
    output_dir,
    output_file,
    parse_or_status,
    positive_float,
    positive_int,
)
from contrasting.encoders.cli.errors import debugging, error_line, usage_errors
from contrasting.eval.grid.cells import RunnerError, error_summary
from contrasting.eval.grid.pool import Terminated, run_grid
from contrasting.eval.grid.spec import (
    SpecError,
    load_spec,
)
from contrasting.eval.grid.store import ResultStore, StoreError, repair_store

# ----------------------------------------------------------------------------------------------- status


def status_report(store: ResultStore, spec_hash: str | None = None, *, failures: int = 5) -> str:
    """A plain-text summary of a store: per grid spec (the latest, or ``spec_hash``), cells by status, a
    per-encoder × per-task done count, the cells running now (runner, lease) and the latest failures."""
    specs = store.specs()
    if not specs:
        return f"{store.path}: empty results store"
    chosen = next((s for s in specs if s["spec_hash"].startswith(spec_hash)), None) if spec_hash else specs[0]
    if chosen is None:
        return f"{store.path}: no spec with hash {spec_hash}"
    h = chosen["spec_hash"]
    cells = store.cells(h)
    c = store.counts(h)
    total = len(cells)
    lines = [f"store {store.path}", f"grid {chosen['name']!r} (spec {h[:12]}, {len(specs)} spec(s) in the store)",
             f"cells: {total} total, {c['done']} done ({100 * c['done'] / max(total, 1):.0f}%), {c['failed']} failed, "
             f"{c['running']} running, {c['pending']} pending"]
    encs = list(dict.fromkeys(x.encoder for x in cells))
    tasks = list(dict.fromkeys(x.task for x in cells))
    done = {}
    for x in cells:
        key = (x.encoder, x.task)
        d, n = done.get(key, (0, 0))
        done[key] = (d + (x.status == "done"), n + 1)
    w = max([len(e) for e in encs] + [7])
    tw = [max(len(t), 5) for t in tasks]
    lines.append("")
    lines.append("done per encoder × task:")
    lines.append(" " * (w + 2) + "  ".join(t.rjust(n) for t, n in zip(tasks, tw, strict=True)))
    for e in encs:
        row = "  ".join(f"{done[(e, t)][0]}/{done[(e, t)][1]}".rjust(n) for t, n in zip(tasks, tw, strict=True))
        lines.append(f"  {e.ljust(w)}{row}")
    running = [x for x in cells if x.status == "running"]
    if running:
        lines.append("")
        lines.append("running:")
        for x in running:
            left = (x.lease_until or 0) - time.time()
            lines.append(f"  {x.label} by {x.claimed_by} (lease {left:+.0f} s)")
    failed = [x for x in cells if x.status == "failed"]
    if failed:
        lines.append("")
        lines.append(f"failed ({len(failed)}; rerun `contrasting grid run` to retry):")
        for x in failed[:failures]:
            lines.append(f"  {x.label}: {error_summary(x.error)}")
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------------- CLI


def key_value(text: str) -> str:
    """A ``key=value`` item (spec overrides, ``--slurm`` parameters) with a non-empty key."""
    key, sep, _ = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return text


def executor_arg(text: str) -> str:
    """``--executor``: ``module:function``."""
    module, sep, function = text.partition(":")
    if not (sep and module and function):
        raise argparse.ArgumentTypeError(f"expected module:function, got {text!r}")
    return text


def grid_device(text: str) -> str:
    """``--device`` of a grid run: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (what the spec's runner accepts)."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N, got {text!r}")
    return text


def _add_run_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument("spec", type=existing_file, help="grid spec (YAML)")
    run.add_argument("overrides", nargs="*", type=key_value, metavar="key=value",
                     help="dotted spec overrides, e.g. runner.workers=2")
    run.add_argument("--store", type=output_file, help="results store (default: the spec's store)")
    run.add_argument("--workers", type=positive_int, help="worker processes (default: one per GPU, or the spec's)")
    run.add_argument("--device", type=grid_device, help="auto, cpu, cuda or cuda:N")
    run.add_argument("--timeout", type=positive_float, dest="timeout_s", help="per-cell time limit in seconds")
    run.add_argument("--executor", type=executor_arg,
                     help="module:function running one cell (default: contrasting.eval run_cell)")
    run.add_argument("--no-retry-failed", action="store_true", help="leave cells recorded as failed alone")
    run.add_argument("--no-progress", action="store_true", help="no progress output")
    run.add_argument("--no-wait", action="store_true", help="do not wait for cells other runners are running")
    run.add_argument("--cluster", choices=("slurm", "local", "auto"),
                     help="submit each cell as a submitit job instead of running worker processes")
    run.add_argument("--cluster-folder", type=output_dir, help="submitit log folder (default: <store>.jobs)")
    run.add_argument("--slurm", action="append", type=key_value, default=[], metavar="key=value",
                     help="submitit/Slurm parameter, e.g. --slurm slurm_partition=gpu --slurm timeout_min=120")


def add_grid_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``grid`` command's sub-commands (``run``, ``status``, ``ingest``, ``repair``) to ``parser``."""
    sub = parser.add_subparsers(dest="grid_command", required=True, metavar="{run,status,ingest,repair}")
    _add_run_arguments(sub.add_parser(
        "run", help="run (or resume) a grid of encoder × task cells",
        description="Run every unfinished cell of a grid spec and record it in the results store. Rerunning "
                    "resumes; cells recorded as failed are retried."))
    st = sub.add_parser("status", help="summarise a results store")
    st.add_argument("store", type=existing_file, help="results store (.sqlite) or a grid spec (its store)")
    st.add_argument("--spec-hash", type=hash_prefix,
                    help="the grid to summarise (prefix; default the latest registered)")
    st.add_argument("--failures", type=nonnegative_int, default=10, help="failed cells to list")
    ing = sub.add_parser("ingest", help="ingest cluster result files into the store")
    ing.add_argument("store", type=existing_file, help="results store (.sqlite)")
    ing.add_argument("--results", type=existing_dir, help="result-file folder (default: <store>.results)")
    rep = sub.add_parser("repair", help="salvage the intact rows of a damaged store into a new one")
    rep.add_argument("store", type=existing_file, help="the damaged results store (.sqlite), read only")
    rep.add_argument("--out", required=True, type=new_file, help="the new store (must not exist)")
    return parser


def _store_from(arg: str) -> Path:
    p = Path(arg)
    if p.suffix in (".yaml", ".yml"):
        return load_spec(p, validate=False).store_path
    return p


def grid_command(args: argparse.Namespace) -> int:
    """Run the ``grid`` sub-command parsed by ``add_grid_arguments``; returns the exit status (0: the grid is
    complete / the command succeeded, 1: cells failed or remain, 2: the spec or store is unusable, after one
    line on stderr, 130: interrupted)."""
    try:
        if args.grid_command == "run":
            return _run_spec(args)
        return _STORE_COMMANDS[args.grid_command](args)
    except (SpecError, StoreError, RunnerError, *usage_errors()) as exc:
        if debugging():
            raise
        print(error_line("grid", exc), file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Terminated):
        print("stopped: finished cells are kept, running ones return to pending; rerun to resume", file=sys.stderr)
        return 130


def _status(args: argparse.Namespace) -> int:
    with ResultStore(_store_from(args.store), create=False) as store:
        if args.spec_hash and not any(s["spec_hash"].startswith(args.spec_hash) for s in store.specs()):
            raise ValueError(f"{store.path}: no grid with spec hash {args.spec_hash!r}")
        print(status_report(store, args.spec_hash, failures=args.failures))
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from contrasting.eval.grid.cluster import default_result_dir, ingest_results

    with ResultStore(args.store, create=False) as store:
        rep = ingest_results(store, args.results or default_result_dir(store.path))
    print(rep)
    return 0


def _repair(args: argparse.Namespace) -> int:
    report = repair_store(args.store, args.out)
    kept, lost = sum(k for k, _ in report.values()), sum(n for _, n in report.values())
    print(f"repaired {args.store} into {args.out}: {kept} rows kept, {lost} lost (" +
          ", ".join(f"{t} {k}/{k + n}" for t, (k, n) in report.items()) + ")")
    return 0


_STORE_COMMANDS = {"status": _status, "ingest": _ingest, "repair": _repair}


def _run_spec(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec, args.overrides, validate=False)
    retry = False if args.no_retry_failed else None
    if args.cluster:
        from contrasting.eval.grid.cluster import run_grid_cluster

        summary = run_grid_cluster(spec, store=args.store, cluster=args.cluster, folder=args.cluster_folder,
                                   executor=args.executor, timeout_s=args.timeout_s,
                                   parameters=dict(_kv(x) for x in args.slurm), retry_failed=retry,
                                   progress=not args.no_progress)
    else:
        summary = run_grid(spec, store=args.store, executor=args.executor, workers=args.workers, device=args.device,
                           timeout_s=args.timeout_s, retry_failed=retry,
                           progress=False if args.no_progress else "auto", wait_for_others=not args.no_wait)
    print(f"grid {summary.spec_name!r}: {summary.done}/{summary.total} done, {summary.failed} failed, "
          f"{summary.pending} pending, {summary.running} running elsewhere; this run: {summary.ran} ran, "
          f"{summary.failed_now} failed in {summary.wall_s:.1f} s  [{summary.store}]")
    for label, err in summary.failures[:10]:
        print(f"  failed: {label}: {err}")
    return 0 if summary.complete else 1


def _kv(item: str) -> tuple[str, Any]:
    import yaml

    k, sep, v = item.partition("=")
    if not sep:
        raise ValueError(f"--slurm {item!r}: expected key=value")
    return k, yaml.safe_load(v)


def grid_main(argv: list[str] | None = None) -> int:
    """Run, resume and summarise encoder × task grids: ``grid run SPEC [key=value ...]``, ``grid status STORE``,
    ``grid ingest STORE``, ``grid repair STORE --out NEW``.

    The ``contrasting grid`` subcommand (entry point ``contrasting.commands``: a callable taking ``argv`` and
    returning the exit status, 2 after one line on stderr for a bad option); ``python -m
    contrasting.eval.grid.cli`` runs it without the dispatcher."""
    parser = OneLineParser(prog="contrasting grid", description="Resumable encoder × task grids.")
    args = parse_or_status(add_grid_arguments(parser), argv)
    return args if isinstance(args, int) else grid_command(args)


if __name__ == "__main__":
    sys.exit(grid_main())


"""``contrasting grid``: run a grid spec locally or on Slurm, show its status."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from contrasting.eval.cells import RunnerError, error_summary
from contrasting.eval.grid_spec import (
    SpecError,
    load_spec,
)
from contrasting.eval.pool import Terminated, run_grid
from contrasting.eval.store import ResultStore, StoreError, repair_store

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


def add_grid_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``grid`` command's sub-commands (``run``, ``status``, ``ingest``, ``repair``) to ``parser``."""
    sub = parser.add_subparsers(dest="grid_command", required=True, metavar="{run,status,ingest,repair}")
    run = sub.add_parser("run", help="run (or resume) a grid of encoder × task cells",
                         description="Run every unfinished cell of a grid spec and record it in the results store. "
                                     "Rerunning resumes; cells recorded as failed are retried.")
    run.add_argument("spec", help="grid spec (YAML)")
    run.add_argument("overrides", nargs="*", metavar="key=value", help="dotted spec overrides, e.g. runner.workers=2")
    run.add_argument("--store", help="results store (default: the spec's store)")
    run.add_argument("--workers", type=int, help="worker processes (default: one per GPU, or the spec's)")
    run.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    run.add_argument("--timeout", type=float, dest="timeout_s", help="per-cell time limit in seconds")
    run.add_argument("--executor", help="module:function running one cell (default: contrasting.eval run_cell)")
    run.add_argument("--no-retry-failed", action="store_true", help="leave cells recorded as failed alone")
    run.add_argument("--no-progress", action="store_true", help="no progress output")
    run.add_argument("--no-wait", action="store_true", help="do not wait for cells other runners are running")
    run.add_argument("--cluster", choices=("slurm", "local", "auto"),
                     help="submit each cell as a submitit job instead of running worker processes")
    run.add_argument("--cluster-folder", help="submitit log folder (default: <store>.jobs)")
    run.add_argument("--slurm", action="append", default=[], metavar="key=value",
                     help="submitit/Slurm parameter, e.g. --slurm slurm_partition=gpu --slurm timeout_min=120")
    st = sub.add_parser("status", help="summarise a results store")
    st.add_argument("store", help="results store (.sqlite) or a grid spec (its store)")
    st.add_argument("--spec-hash", help="the grid to summarise (prefix; default the latest registered)")
    st.add_argument("--failures", type=int, default=10, help="failed cells to list")
    ing = sub.add_parser("ingest", help="ingest cluster result files into the store")
    ing.add_argument("store", help="results store (.sqlite)")
    ing.add_argument("--results", help="result-file folder (default: <store>.results)")
    rep = sub.add_parser("repair", help="salvage the intact rows of a damaged store into a new one")
    rep.add_argument("store", help="the damaged results store (.sqlite), read only")
    rep.add_argument("--out", required=True, help="the new store (must not exist)")
    return parser


def _store_from(arg: str) -> Path:
    p = Path(arg)
    if p.suffix in (".yaml", ".yml"):
        return load_spec(p, validate=False).store_path
    return p


def grid_command(args: argparse.Namespace) -> int:
    """Run the ``grid`` sub-command parsed by ``add_grid_arguments``; returns the exit status (0: the grid is
    complete / the command succeeded, 1: cells failed or remain, 2: the spec or store is unusable)."""
    try:
        if args.grid_command == "status":
            path = _store_from(args.store)
            with ResultStore(path, create=False) as store:
                print(status_report(store, args.spec_hash, failures=args.failures))
            return 0
        if args.grid_command == "ingest":
            from contrasting.eval.cluster import default_result_dir, ingest_results

            with ResultStore(args.store, create=False) as store:
                rep = ingest_results(store, args.results or default_result_dir(store.path))
            print(rep)
            return 0
        if args.grid_command == "repair":
            report = repair_store(args.store, args.out)
            kept, lost = sum(k for k, _ in report.values()), sum(n for _, n in report.values())
            print(f"repaired {args.store} into {args.out}: {kept} rows kept, {lost} lost (" +
                  ", ".join(f"{t} {k}/{k + n}" for t, (k, n) in report.items()) + ")")
            return 0
        spec = load_spec(args.spec, args.overrides, validate=False)
        if args.cluster:
            from contrasting.eval.cluster import run_grid_cluster

            params = dict(_kv(x) for x in args.slurm)
            summary = run_grid_cluster(spec, store=args.store, cluster=args.cluster, folder=args.cluster_folder,
                                       executor=args.executor, timeout_s=args.timeout_s, parameters=params,
                                       retry_failed=False if args.no_retry_failed else None,
                                       progress=not args.no_progress)
        else:
            summary = run_grid(spec, store=args.store, executor=args.executor, workers=args.workers,
                               device=args.device, timeout_s=args.timeout_s,
                               retry_failed=False if args.no_retry_failed else None,
                               progress=False if args.no_progress else "auto", wait_for_others=not args.no_wait)
    except (SpecError, FileNotFoundError, FileExistsError, StoreError, RunnerError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Terminated):
        print("stopped: finished cells are kept, running ones return to pending; rerun to resume", file=sys.stderr)
        return 130
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
    returning the exit status); ``python -m contrasting.eval.grid_cli`` runs it without the dispatcher."""
    parser = argparse.ArgumentParser(prog="contrasting grid", description="Resumable encoder × task grids.")
    add_grid_arguments(parser)
    return grid_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(grid_main())


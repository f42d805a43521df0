"""Grids on a cluster: each cell one submitit job (Slurm, or submitit's local executor), results as files.

SQLite must not be written concurrently over a network filesystem, so jobs never touch the store. A job runs
its cell and writes one result file, atomically (temporary file in the same folder → flush → fsync → rename
→ fsync of the folder), into ``<store>.results/``:  ``<cell key>.<token>.json`` with ``format``, ``key``,
``status`` (done/failed), ``score``, ``val_score``, ``metrics``, ``timings``, ``versions``, ``error``,
``started``, ``finished``, ``runner``. A reader sees either no file or a whole one; temporary files
(``.*.tmp``) are never read. One process — the submitting runner, or ``contrasting grid ingest`` — ingests the
files: each file is applied in one store transaction keyed by its token, so ingesting twice (or after a crash
between the commit and moving the file to ``ingested/``) changes nothing.

Claims: submitted cells are claimed in the store under a ``submitit:`` runner whose lease is the job's time
limit plus a margin; they are not reclaimed by pid (the job runs elsewhere), only when that lease expires.
A job that ends without a result file (killed by Slurm, out of memory) is recorded as failed with the job's
own error when the submitting runner sees it end.

Pre-training at scale is a command job: ``submit_command`` wraps e.g. ``deepspeed --num_gpus 8 -m
contrasting.encoders.cli pretrain ...`` (the DeepSpeed launcher) in a submitit ``CommandFunction``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contrasting.data.atomic import atomic_write_bytes
from contrasting.eval.grid.cells import (
    CellRequest,
    OpenGrid,
    execute_cell,
    open_grid,
)
from contrasting.eval.grid.pool import GridRunSummary
from contrasting.eval.grid.spec import (
    GridSpec,
    RunResolver,
    TaskLookup,
)
from contrasting.eval.grid.store import ResultStore, RunnerId

RESULT_FORMAT = 1
LEASE_MARGIN_S = 600.0  # queueing and start-up time a job may take beyond its own time limit


def default_result_dir(store_path: str | os.PathLike) -> Path:
    """``<store>.results``: the folder beside the store where jobs write their result files."""
    p = Path(store_path)
    return p.with_name(p.name + ".results")


# ---------------------------------------------------------------------------------------------- result files


def write_result_file(result_dir: str | os.PathLike, record: Mapping) -> Path:
    """Write ``record`` (with its ``key``) atomically (``atomic_write_bytes``) as ``<key>.<token>.json`` in
    ``result_dir``; returns the path. On any error (a full disk: OSError ENOSPC) the temporary file is removed and
    the error re-raised, so no partial file is ever visible under a result name."""
    folder = Path(result_dir)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{record['key']}.{uuid.uuid4().hex[:12]}.json"
    data = json.dumps({"format": RESULT_FORMAT, **record}, sort_keys=True, allow_nan=False).encode()
    return atomic_write_bytes(final, data)


def read_result_file(path: str | os.PathLike) -> dict:
    """Parse and check one result file; ValueError says what is wrong with it."""
    try:
        rec = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"unreadable result file: {exc}") from None
    if not isinstance(rec, dict) or rec.get("format") != RESULT_FORMAT:
        raise ValueError(f"not a result file of format {RESULT_FORMAT}")
    if not isinstance(rec.get("key"), str) or rec.get("status") not in ("done", "failed"):
        raise ValueError("result file lacks key or status")
    if rec["status"] == "done" and not isinstance(rec.get("score"), (int, float)):
        raise ValueError("a done result without a numeric score")
    return rec


@dataclass
class IngestReport:
    """What ``ingest_results`` did: counts per outcome and the files it could not use (with why)."""

    applied: int = 0
    duplicate: int = 0
    seen: int = 0
    unknown: int = 0
    invalid: list[tuple[str, str]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = (f"ingested {self.applied} result file(s); {self.duplicate} duplicate(s) of finished cells, "
                f"{self.seen} seen before, {self.unknown} for cells not in the store, {len(self.invalid)} invalid")
        return text + "".join(f"\n  invalid {f}: {why}" for f, why in self.invalid)


def ingest_results(store: ResultStore, result_dir: str | os.PathLike, *, move: bool = True) -> IngestReport:
    """Apply every result file of ``result_dir`` to ``store`` exactly once (see the module docstring); with
    ``move``, files go to ``result_dir/ingested/`` afterwards. Invalid files are left in place and reported,
    never applied; temporary files are ignored."""
    folder = Path(result_dir)
    rep = IngestReport()
    if not folder.is_dir():
        return rep
    for path in sorted(folder.glob("*.json")):
        if path.name.startswith("."):
            continue
        try:
            rec = read_result_file(path)
        except ValueError as exc:
            rep.invalid.append((path.name, str(exc)))
            continue
        outcome = store.ingest(path.stem, rec)
        setattr(rep, outcome, getattr(rep, outcome) + 1)
        if outcome in ("applied", "duplicate"):
            rep.keys.append(rec["key"])
        if move and outcome != "unknown":
            (folder / "ingested").mkdir(exist_ok=True)
            with contextlib.suppress(OSError):
                os.replace(path, folder / "ingested" / path.name)
    return rep


# ---------------------------------------------------------------------------------------------------- jobs


def cell_job(request: Mapping, result_dir: str, executor: str) -> dict:
    """The function each cluster job runs: execute one cell and write its result file (done, or failed with
    the traceback). Returns the record. Only a failure to write the file raises (the job then fails and the
    submitting runner records it)."""
    req = CellRequest.from_dict(request)
    runner = f"submitit:{os.environ.get('SLURM_JOB_ID') or os.environ.get('SUBMITIT_LOCAL_JOB_ID') or os.getpid()}"

    def progress(fraction=None, message="", *_, **__):
        if fraction is not None:
            print(f"[cell {req.key}] {100 * float(fraction):.0f}% {message}", flush=True)

    status, payload = execute_cell(executor, req, progress)
    record = {"key": req.key, "status": status, **payload, "finished": time.time(), "runner": runner}
    write_result_file(result_dir, record)
    return record


def make_executor(cluster: str, folder: str | os.PathLike, *, timeout_s: float, parameters: Mapping | None = None):
    """A submitit executor: ``cluster`` is ``slurm``, ``local`` (subprocesses on this machine), ``debug``
    (in-process) or ``auto`` (Slurm when available, else local). ``parameters`` go to ``update_parameters``
    (e.g. ``slurm_partition``, ``gpus_per_node``, ``cpus_per_task``); ``timeout_min`` defaults from
    ``timeout_s``. ImportError when submitit is not installed."""
    import submitit  # an optional dependency, only for clusters

    ex = submitit.AutoExecutor(folder=str(folder), cluster=None if cluster == "auto" else cluster)
    params = {"timeout_min": max(1, math.ceil(timeout_s / 60)), **dict(parameters or {})}
    ex.update_parameters(**params)
    return ex


def submit_command(command: list[str], folder: str | os.PathLike, *, cluster: str = "auto",
                   timeout_s: float = 24 * 3600, parameters: Mapping | None = None):
    """Submit a command line as one job (e.g. pre-training through the DeepSpeed launcher); returns the
    submitit job (``job.result()`` is its stdout)."""
    import submitit

    ex = make_executor(cluster, folder, timeout_s=timeout_s, parameters=parameters)
    return ex.submit(submitit.helpers.CommandFunction(list(command)))


def _job_error(job, slurm_state: str | None = None) -> str:
    text = f"job {job.job_id} ended without a result file"
    if slurm_state is not None and not job.done():  # submitit cannot tell (no sacct): exception() waits for ever
        text += f": Slurm state {slurm_state}"
    else:
        try:
            exc = job.exception()
        except Exception as e:  # submitit raises its own errors for vanished jobs
            exc = e
        if exc is not None:
            text += f": {exc}"
    with contextlib.suppress(Exception):
        tail = (job.stderr() or "").strip().splitlines()[-20:]
        if tail:
            text += "\n" + "\n".join(tail)
    return text


_SLURM_ENDED = {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "TIMEOUT"}


def _slurm_ended(jobs: Iterable) -> dict[str, str]:
    """Slurm jobs that have ended although submitit cannot tell, id → Slurm state: submitit asks ``sacct``,
    which fails on a cluster without accounting, and a job that ends without its result pickle (cancelled,
    killed) then stays UNKNOWN, never done. ``squeue -t all`` lists a job until MinJobAge after its end; one it
    no longer lists has ended too (state ``PURGED``). An unusable ``squeue`` ends nothing."""
    try:
        from submitit.slurm.slurm import SlurmJob
    except ImportError:
        return {}
    ids = [j.job_id for j in jobs if isinstance(j, SlurmJob) and j.state == "UNKNOWN"]
    if not ids:
        return {}
    try:
        cmd = ["squeue", "-h", "-t", "all", "-r", "-o", "%i %T", "-j", ",".join(ids)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return {}
    if out.returncode != 0:  # every id unknown to squeue fails the call: all of them have ended long ago
        return dict.fromkeys(ids, "PURGED") if "Invalid job id" in out.stderr else {}
    states = dict(line.split()[:2] for line in out.stdout.splitlines() if len(line.split()) >= 2)
    ended = {i: states.get(i, "PURGED") for i in ids}
    return {i: st for i, st in ended.items() if st in _SLURM_ENDED or st == "PURGED"}


def run_grid_cluster(spec: GridSpec | str | os.PathLike, *, store: ResultStore | str | os.PathLike | None = None,
                     overrides: Iterable[str] = (), cluster: str = "auto", folder: str | os.PathLike | None = None,
                     executor: str | None = None, timeout_s: float | None = None,
                     parameters: Mapping[str, Any] | None = None, retry_failed: bool | None = None,
                     progress: bool = True, poll_s: float = 5.0, submitit_executor=None,
                     task_lookup: TaskLookup | None = None,
                     run_resolver: RunResolver | None = None) -> GridRunSummary:
    """Submit every pending cell of ``spec`` as a job, then ingest result files until the jobs end.

    Before submitting it ingests files already there (a previous submission's) and, with ``retry_failed``,
    returns failed cells to pending. Cells still claimed by earlier jobs are not resubmitted until their lease
    expires. ``submitit_executor`` replaces ``make_executor(cluster, folder, ...)`` (tests pass a local one).
    Returns a ``GridRunSummary`` like ``run_grid``; a kill of this process leaves the jobs running, and a rerun
    ingests their files."""
    t0 = time.monotonic()
    with open_grid(spec, store, overrides=overrides, executor=executor, task_lookup=task_lookup,
                   run_resolver=run_resolver) as grid:
        return _run_cluster(grid, cluster, folder, timeout_s or grid.spec.runner.timeout_s, parameters,
                            retry_failed, progress, poll_s, submitit_executor, t0)


def _run_cluster(grid: OpenGrid, cluster: str, folder, timeout_s: float, parameters, retry_failed: bool | None,
                 progress: bool, poll_s: float, submitit_executor, t0: float) -> GridRunSummary:
    spec, store, shash, cells, executor = grid.spec, grid.store, grid.spec_hash, grid.cells, grid.executor
    results = default_result_dir(store.path)
    say = (lambda m: print(m, file=sys.stderr, flush=True)) if progress else (lambda m: None)
    rep = ingest_results(store, results)
    if rep.applied:
        say(f"[grid] {rep}")
    store.reap()
    if retry_failed if retry_failed is not None else spec.runner.retry_failed:
        store.reset_failed(shash)
    pending = store.cells(shash, "pending")
    summary = GridRunSummary(spec.name, shash, str(store.path), len(cells), 0, 0, 0, 0)
    jobs = []
    if pending:
        ex = submitit_executor or make_executor(cluster, folder or store.path.with_name(store.path.name + ".jobs"),
                                                timeout_s=timeout_s, parameters=parameters)
        claimant = RunnerId(f"submitit:{uuid.uuid4().hex[:8]}", "cluster", 0, None)
        keys = store.claim_keys(claimant, [c.key for c in pending], lease_s=timeout_s + LEASE_MARGIN_S)
        by_key = {c.key: c for c in pending}
        requests = [dict(by_key[k].request) for k in keys]
        try:
            with ex.batch():
                handles = [ex.submit(cell_job, r, str(results), executor) for r in requests]
        except Exception:
            store.release(claimant.id, keys, reason="submission failed")
            raise
        jobs = list(zip(keys, handles, strict=True))
        say(f"[grid] submitted {len(jobs)} cell job(s) ({type(ex).__name__}); results in {results}")
    open_jobs = dict(jobs)
    done_before = store.counts(shash)["done"]
    while open_jobs:
        time.sleep(poll_s)
        rep = ingest_results(store, results)
        for k in rep.keys:
            open_jobs.pop(k, None)
        if rep.applied:
            c = store.counts(shash)
            say(f"[grid] {c['done']}/{len(cells)} done, {c['failed']} failed, {len(open_jobs)} job(s) open")
        ended = _slurm_ended(open_jobs.values())
        for k, job in list(open_jobs.items()):
            if job.done() or job.job_id in ended:
                rep = ingest_results(store, results)  # its file may have landed since the last pass
                for kk in rep.keys:
                    open_jobs.pop(kk, None)
                if k in open_jobs:
                    row = store.get(k)
                    if row is not None and row.status == "running":
                        store.record_failed(k, row.claimed_by, _job_error(job, ended.get(job.job_id)))
                        summary.failures.append((row.label, f"job {job.job_id} ended without a result"))
                    open_jobs.pop(k)
    counts = store.counts(shash)
    summary.done, summary.failed, summary.pending, summary.running = (counts["done"], counts["failed"],
                                                                      counts["pending"], counts["running"])
    summary.ran = max(0, counts["done"] - done_before)
    summary.failed_now = sum(1 for k, _ in jobs if (store.get(k) or None) and store.get(k).status == "failed")
    summary.wall_s = time.monotonic() - t0
    return summary

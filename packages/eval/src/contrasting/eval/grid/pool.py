"""The resumable grid runner's local pool: enumerate cells, skip finished ones, run the rest in worker processes.

Cells. One cell is (encoder, task, hyper-parameter setting, seed). Its key is the SHA-256 of the encoder's
weights identity (kind, arch, checkpoint SHA-256, layout), the task name and version, the hyper-parameter
values, the seed and the code version (the contrasting-eval release, or the spec's ``code_version``): renaming
an encoder or a setting keeps its results, changing a checkpoint's bytes or a task's version does not.

Execution. ``run_grid`` registers the cells in the store, returns cells of dead runners to pending, optionally
retries failed ones, then keeps ``workers`` spawned processes busy. Each worker process runs cells one after
another through the *executor*, ``executor(request: CellRequest, progress) -> result`` (default: contrasting
.eval's ``run_cell``), where ``progress(fraction, message)`` reports per-cell progress back to the runner and
``result`` is a mapping or an object with ``metrics``/``timings``/``versions`` (see ``normalise_result``).
The main process alone talks to the store: it claims a cell (a lease, see ``store``), sends it to an idle
worker, heartbeats its leases, and records each result in one transaction. A worker that raises is recorded
as failed with the traceback; one that dies (a crash, an OOM kill, ``kill -9``) or exceeds ``timeout_s`` is
killed with its process group, recorded as failed with the reason, and replaced; the grid goes on. Workers
die with the runner (``PR_SET_PDEATHSIG`` and a parent watch). Stopping the runner (Ctrl-C, SIGTERM) returns
its running cells to pending; a ``kill -9`` leaves them claimed by a dead pid, which the next run reclaims.

Devices: ``cuda`` runs one worker per visible GPU (``CUDA_VISIBLE_DEVICES`` set per worker); ``cpu`` runs
``workers`` processes with ``cores // workers`` torch threads each.

The grid's modules by job: ``cells`` (a cell's key, request, result and environment), ``pool`` (this: the local
worker pool, ``run_grid``), ``cluster`` (Slurm through submitit), ``cli`` (the ``contrasting grid`` command).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import math
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import wait as mp_wait
from typing import Any

from contrasting.data.executors.workers import describe_exit
from contrasting.eval.grid.cells import (
    CellRequest,
    Executor,
    OpenGrid,
    RunnerError,
    error_summary,
    execute_cell,
    open_grid,
    resolve_executor,
)
from contrasting.eval.grid.spec import (
    GridSpec,
    RunResolver,
    TaskLookup,
)
from contrasting.eval.grid.store import CellRow, ResultStore, RunnerId, StoreError

_ACTIVE_RUNNERS: set[str] = set()  # runner ids of this process that are running now (see ResultStore.reap)
PROGRESS_MIN_INTERVAL_S = 0.25  # a worker sends at most ~4 progress messages a second per cell
WORKER_START_FAILURES = 3  # consecutive worker deaths before any cell runs: the executor is broken, stop


# ------------------------------------------------------------------------------------------------ workers


def _die_with_parent(parent_pid: int) -> None:
    """Kill this worker when the runner dies: PR_SET_PDEATHSIG on Linux, and a watcher thread everywhere."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1

    def watch():
        while True:
            if os.getppid() != parent_pid:
                os._exit(70)
            time.sleep(0.5)

    if os.getppid() != parent_pid:
        os._exit(70)
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _worker_main(conn, executor: str, parent_pid: int, threads: int | None) -> None:
    """Worker process: receive request dicts, run them, send ('done'|'error', key, payload) back."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)  # own process group: a timeout kills the cell's own subprocesses too
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the runner decides when workers stop
    if threads and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    try:
        fn = resolve_executor(executor)
    except BaseException:
        conn.send(("fatal", None, f"executor {executor!r} cannot be loaded:\n{traceback.format_exc()}"))
        return
    conn.send(("ready", None, os.getpid()))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        req = CellRequest.from_dict(msg)
        last = [0.0]

        def progress(fraction: float | None = None, message: str = "", *_, _key=req.key, _last=last, **__):
            now = time.monotonic()
            if now - _last[0] >= PROGRESS_MIN_INTERVAL_S or (fraction is not None and fraction >= 1):
                _last[0] = now
                with contextlib.suppress(Exception):
                    conn.send(("progress", _key, (None if fraction is None else float(fraction), str(message))))

        status, payload = execute_cell(fn, req, progress)
        conn.send(("done" if status == "done" else "error", req.key, payload))


@dataclass
class _Slot:
    index: int
    device: str
    env: dict
    threads: int | None
    process: Any = None
    conn: Any = None
    ready: bool = False
    cell: CellRow | None = None
    started: float = 0.0
    deadline: float = math.inf
    last_encoder: str | None = None
    bar: Any = None


class _Pool:
    """Worker processes, each running one cell at a time (spawn context: no inherited locks or CUDA state)."""

    def __init__(self, executor: str, slots: list[_Slot]):
        self.ctx = mp.get_context("spawn")
        self.executor = executor
        self.slots = slots
        self.start_failures = 0

    def start(self, slot: _Slot) -> None:
        parent, child = self.ctx.Pipe(duplex=True)
        proc = self.ctx.Process(target=_worker_main, args=(child, self.executor, os.getpid(), slot.threads),
                                name=f"grid-worker-{slot.index}", daemon=False)
        saved = {k: os.environ.get(k) for k in slot.env}
        os.environ.update(slot.env)  # spawn copies the environment: set before torch is imported there
        try:
            proc.start()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        child.close()
        slot.process, slot.conn, slot.ready, slot.cell = proc, parent, False, None

    def kill(self, slot: _Slot) -> None:
        proc = slot.process
        if proc is None:
            return
        if proc.is_alive():
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                proc.kill()
        proc.join(timeout=10)
        with contextlib.suppress(OSError):
            slot.conn.close()
        slot.process = slot.conn = None
        slot.ready = False

    def stop_all(self) -> None:
        for s in self.slots:
            if s.process is not None and s.process.is_alive() and s.cell is None and s.ready:
                with contextlib.suppress(OSError, BrokenPipeError):
                    s.conn.send(None)
        deadline = time.monotonic() + 3
        for s in self.slots:
            if s.process is not None:
                s.process.join(timeout=max(0.0, deadline - time.monotonic()) if s.cell is None else 0)
                self.kill(s)


# -------------------------------------------------------------------------------------------------- runner


@dataclass
class GridRunSummary:
    """What a ``run_grid`` call did and where the grid stands: cell counts over the whole grid, the cells this
    call ran and failed, and the failures' first error lines."""

    spec_name: str
    spec_hash: str
    store: str
    total: int
    done: int
    failed: int
    pending: int
    running: int
    ran: int = 0
    failed_now: int = 0
    wall_s: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every cell of the grid is done."""
        return self.done == self.total


def detect_devices(device: str, workers: int | None) -> list[str]:
    """Worker devices: for ``cuda`` one worker per visible GPU (``workers`` caps it), for ``cpu`` ``workers``
    (default 1) CPU workers; ``auto`` picks cuda when torch sees a GPU. RunnerError when cuda is asked for
    and absent."""
    if device in ("auto", "cuda") or device.startswith("cuda"):
        import torch

        n = torch.cuda.device_count()
        if n == 0 and device != "auto":
            raise RunnerError(f"device {device!r} requested but no CUDA device is visible")
        if n:
            if device.startswith("cuda:"):
                return [device]
            return [f"cuda:{i}" for i in range(n)][: workers or n]
    return ["cpu"] * (workers or 1)


def _slots_for(devices: list[str], threads: int | None) -> list[_Slot]:
    slots = []
    cores = os.cpu_count() or 1
    n_cpu = sum(d == "cpu" for d in devices)
    for i, d in enumerate(devices):
        if d == "cpu":
            t = threads or max(1, cores // max(1, n_cpu))
            env = {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": str(t), "MKL_NUM_THREADS": str(t)}
            slots.append(_Slot(i, "cpu", env, t))
        else:
            gpu = d.split(":", 1)[1]
            slots.append(_Slot(i, "cuda", {"CUDA_VISIBLE_DEVICES": gpu}, threads))
    return slots


class Terminated(BaseException):
    """SIGTERM arrived: stop like Ctrl-C."""


def _on_sigterm(signum, frame):
    raise Terminated()


class _Progress:
    """Overall bar plus one bar per worker (tqdm) on a terminal; one line per finished cell otherwise."""

    def __init__(self, mode: bool | str, total: int, initial: int, slots: list[_Slot], name: str):
        self.bars = mode is True or (mode == "auto" and sys.stderr.isatty())
        self.lines = mode is not False and not self.bars
        self.total, self.done, self.slots = total, initial, slots
        self.overall = None
        if self.bars:
            from tqdm.auto import tqdm

            self.tqdm = tqdm
            self.overall = tqdm(total=total, initial=initial, desc=f"grid {name}", unit="cell", position=0,
                                dynamic_ncols=True)
            for s in slots:
                s.bar = tqdm(total=100, desc=f"worker {s.index}: idle", position=s.index + 1, leave=False,
                             bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed} {postfix}", dynamic_ncols=True)

    def write(self, text: str) -> None:
        if self.bars:
            self.tqdm.write(text, file=sys.stderr)
        elif self.lines:
            print(text, file=sys.stderr, flush=True)

    def start(self, slot: _Slot, cell: CellRow) -> None:
        if slot.bar is not None:
            slot.bar.reset(total=100)
            slot.bar.set_description_str(f"worker {slot.index}: {cell.label}"[:90])
            slot.bar.set_postfix_str("")

    def cell_progress(self, slot: _Slot, fraction: float | None, message: str) -> None:
        if slot.bar is not None:
            if fraction is not None:
                slot.bar.n = int(100 * min(1.0, max(0.0, fraction)))
            slot.bar.set_postfix_str(message[:40], refresh=True)

    def finish(self, slot: _Slot | None, cell: CellRow, ok: bool, detail: str, failed: int, running: int) -> None:
        self.done += ok
        mark = "done" if ok else "FAILED"
        self.write(f"[grid] {self.done}/{self.total} {mark} {cell.label}: {detail}")
        if self.overall is not None:
            self.overall.update(int(ok))
            self.overall.set_postfix(failed=failed, running=running)
        if slot is not None and slot.bar is not None:
            slot.bar.reset(total=100)
            slot.bar.set_description_str(f"worker {slot.index}: idle")

    def close(self) -> None:
        if self.bars:
            for s in self.slots:
                s.bar.close()
            self.overall.close()


def run_grid(spec: GridSpec | str | os.PathLike, *, store: ResultStore | str | os.PathLike | None = None,
             overrides: Iterable[str] = (), executor: str | Executor | None = None, workers: int | None = None,
             device: str | None = None, timeout_s: float | None = None, lease_s: float | None = None,
             retry_failed: bool | None = None, progress: bool | str = "auto", wait_for_others: bool = True,
             task_lookup: TaskLookup | None = None, run_resolver: RunResolver | None = None,
             poll_s: float = 0.5) -> GridRunSummary:
    """Run every unfinished cell of ``spec`` and record it in the store; return a ``GridRunSummary``.

    ``spec``: a ``GridSpec`` or a YAML path (with ``overrides``). ``store``: a ``ResultStore``, a path, or None
    for the spec's. ``executor``, ``workers``, ``device``, ``timeout_s``, ``lease_s``, ``retry_failed`` override
    the spec's ``runner`` section (see the module docstring for their meaning; ``executor`` must be
    importable by name, a ``'module:function'`` string or a module-level function). ``progress``: True (bars),
    False (silent), ``'auto'`` (bars on a terminal, one line per cell otherwise). ``wait_for_others``: when
    only cells running under other live runners remain, wait for them (and take them over if their runner
    dies) instead of returning.

    Failures of cells never raise: they are recorded and summarised. Raises ``SpecError`` before anything runs,
    ``RunnerError`` when the executor cannot be loaded, ``StoreError`` when the store cannot be written (the
    running cells are returned to pending when possible; finished ones are kept)."""
    if workers is not None and workers < 1:  # no worker would run a cell and the runner would wait forever
        raise ValueError(f"workers: expected an integer >= 1, got {workers}")
    if timeout_s is not None and not 0 < timeout_s < math.inf:
        raise ValueError(f"timeout_s: expected a finite number > 0, got {timeout_s}")
    t_start = time.monotonic()
    with open_grid(spec, store, overrides=overrides, executor=executor, task_lookup=task_lookup,
                   run_resolver=run_resolver) as grid:
        opts = grid.spec.runner
        runner = RunnerId.current()
        _ACTIVE_RUNNERS.add(runner.id)
        try:
            return _run_claimed(grid, runner, workers or opts.workers, device or opts.device,
                                timeout_s or opts.timeout_s, lease_s or opts.lease_s,
                                opts.retry_failed if retry_failed is None else retry_failed, progress,
                                wait_for_others, poll_s, t_start)
        finally:
            _ACTIVE_RUNNERS.discard(runner.id)


def _run_claimed(grid: OpenGrid, runner: RunnerId, workers: int, device: str, timeout_s: float, lease_s: float,
                 retry_failed: bool, progress: bool | str, wait_for_others: bool, poll_s: float,
                 t_start: float) -> GridRunSummary:
    spec, store, shash, cells, opts = grid.spec, grid.store, grid.spec_hash, grid.cells, grid.spec.runner
    store.reap(active=_ACTIVE_RUNNERS)
    if retry_failed:
        store.reset_failed(shash)
    counts = store.counts(shash)
    summary = GridRunSummary(spec.name, shash, str(store.path), len(cells), counts["done"], counts["failed"],
                             counts["pending"], counts["running"])
    if counts["pending"] == 0 and (counts["running"] == 0 or not wait_for_others):
        return summary
    slots = _slots_for(detect_devices(device, workers), opts.threads_per_worker)
    pool = _Pool(grid.executor, slots)
    bars = _Progress(progress, len(cells), counts["done"], slots, spec.name)
    prev_term = None
    if threading.current_thread() is threading.main_thread():
        prev_term = signal.signal(signal.SIGTERM, _on_sigterm)
    next_beat = time.monotonic() + lease_s / 4
    exhausted = False
    try:
        for s in slots:
            pool.start(s)
        while True:
            # 1. give every ready, idle worker a cell
            if not exhausted:
                for s in slots:
                    if s.ready and s.cell is None:
                        cell = store.claim(runner, shash, lease_s=lease_s, prefer_encoder=s.last_encoder)
                        if cell is None:
                            exhausted = True
                            break
                        _dispatch(pool, s, cell, timeout_s, bars, store, runner, summary)
            busy = [s for s in slots if s.cell is not None]
            if exhausted and not busy:
                counts = store.counts(shash)
                if counts["pending"]:
                    exhausted = False
                    continue
                if counts["running"] and wait_for_others:
                    if store.reap(active=_ACTIVE_RUNNERS):
                        exhausted = False
                        continue
                    time.sleep(poll_s)
                    continue
                break
            # 2. wait for a message, a worker death, a deadline or the next heartbeat
            now = time.monotonic()
            wake = min([s.deadline for s in busy] + [next_beat, now + poll_s])
            waitables = [s.conn for s in slots if s.conn is not None] + \
                        [s.process.sentinel for s in slots if s.process is not None]
            mp_wait(waitables, timeout=max(0.0, wake - now))
            for s in slots:
                _service(pool, s, store, runner, bars, summary, timeout_s)
            now = time.monotonic()
            _kill_overdue(pool, slots, store, runner, bars, summary, timeout_s, now)
            if now >= next_beat:
                _heartbeat(store, runner, slots, lease_s, bars)
                next_beat = now + lease_s / 4
                if exhausted and store.reap(active=_ACTIVE_RUNNERS):
                    exhausted = False
                exhausted = exhausted and store.counts(shash)["pending"] == 0
    finally:
        if prev_term is not None:
            signal.signal(signal.SIGTERM, prev_term)
        pool.stop_all()
        bars.close()
        with contextlib.suppress(StoreError):
            store.release(runner.id, reason="runner stopped before the cell finished")
    counts = store.counts(shash)
    summary.done, summary.failed, summary.pending, summary.running = (counts["done"], counts["failed"],
                                                                      counts["pending"], counts["running"])
    summary.wall_s = time.monotonic() - t_start
    return summary


def _kill_overdue(pool: _Pool, slots: list[_Slot], store: ResultStore, runner: RunnerId, bars: _Progress,
                  summary: GridRunSummary, timeout_s: float, now: float) -> None:
    """Kill every worker whose cell ran past its deadline, record the cell as failed, start a new worker."""
    for s in slots:
        if s.cell is not None and now > s.deadline:
            cell = s.cell
            pool.kill(s)
            _record_failure(pool, store, runner, bars, summary, s, cell,
                            f"timed out after {timeout_s:g} s (worker killed)", {}, None)
            pool.start(s)


def _heartbeat(store: ResultStore, runner: RunnerId, slots: list[_Slot], lease_s: float, bars: _Progress) -> None:
    """Renew the leases of the running cells; warn about any claim lost meanwhile."""
    lost = store.heartbeat(runner.id, [s.cell.key for s in slots if s.cell is not None], lease_s=lease_s)
    for k in lost:
        bars.write(f"[grid] warning: lost the claim on cell {k} (lease expired); its result is recorded "
                   "only if no other runner finishes it first")


def _dispatch(pool: _Pool, s: _Slot, cell: CellRow, timeout_s: float, bars: _Progress, store: ResultStore,
              runner: RunnerId, summary: GridRunSummary) -> None:
    request = CellRequest.from_dict(cell.request, device="cpu" if s.device == "cpu" else "cuda")
    s.cell, s.started, s.deadline, s.last_encoder = cell, time.time(), time.monotonic() + timeout_s, cell.encoder
    bars.start(s, cell)
    try:
        s.conn.send(dataclasses.asdict(request))
    except (OSError, BrokenPipeError):
        pass  # the worker died between cells: _service records the cell as failed and restarts it


def _service(pool: _Pool, s: _Slot, store: ResultStore, runner: RunnerId, bars: _Progress, summary: GridRunSummary,
             timeout_s: float) -> None:
    """Drain a worker's messages; handle its death."""
    if s.process is None:
        return
    try:
        while s.conn.poll():
            kind, key, payload = s.conn.recv()
            if kind == "ready":
                s.ready = True
                pool.start_failures = 0
            elif kind == "fatal":
                raise RunnerError(payload)
            elif kind == "progress" and s.cell is not None and key == s.cell.key:
                bars.cell_progress(s, *payload)
            elif kind == "done" and s.cell is not None and key == s.cell.key:
                cell, s.cell, s.deadline = s.cell, None, math.inf
                store.record_done(key, runner.id, score=payload["score"], val_score=payload["val_score"],
                                  metrics=payload["metrics"], timings=payload["timings"],
                                  versions=payload["versions"], started=payload["started"])
                summary.ran += 1
                bars.finish(s, cell, True, f"{cell.task_meta.get('metric', 'score')} = {payload['score']:.4g} "
                            f"({payload['timings'].get('cell_wall_s', 0):.1f} s)", summary.failed_now,
                            _busy(pool))
            elif kind == "error" and s.cell is not None and key == s.cell.key:
                cell, s.cell, s.deadline = s.cell, None, math.inf
                _record_failure(pool, store, runner, bars, summary, s, cell, payload["error"], payload["timings"],
                                payload["started"], payload.get("versions"))
    except (EOFError, OSError):
        pass
    if not s.process.is_alive():
        code = s.process.exitcode
        cell = s.cell
        was_ready = s.ready
        pool.kill(s)
        if cell is not None:
            _record_failure(pool, store, runner, bars, summary, s, cell,
                            f"worker process died while running the cell ({describe_exit(code)})", {}, None)
        elif not was_ready:
            pool.start_failures += 1
            if pool.start_failures >= WORKER_START_FAILURES:
                raise RunnerError(f"worker processes die before running any cell ({describe_exit(code)}); "
                                  f"executor {pool.executor!r}")
        pool.start(s)


def _busy(pool: _Pool) -> int:
    return sum(s.cell is not None for s in pool.slots)


def _record_failure(pool: _Pool, store: ResultStore, runner: RunnerId, bars: _Progress, summary: GridRunSummary,
                    s: _Slot | None, cell: CellRow, error: str, timings: Mapping, started: float | None,
                    versions: Mapping | None = None) -> None:
    if s is not None:
        started = started if started is not None else s.started
        s.cell, s.deadline = None, math.inf
    store.record_failed(cell.key, runner.id, error, timings=timings, versions=versions, started=started)
    summary.failed_now += 1
    first = error_summary(error)
    summary.failures.append((cell.label, first))
    bars.finish(s, cell, False, first, summary.failed_now, _busy(pool))


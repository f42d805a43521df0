"""The resumable grid runner: enumerate cells, skip finished ones, run the rest in worker processes.

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
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import ctypes
import dataclasses
import hashlib
import importlib
import math
import multiprocessing as mp
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import wait as mp_wait
from pathlib import Path
from typing import Any

from contrasting.eval.grid_spec import (
    GridSpec,
    HParamCheck,
    ResolvedEncoder,
    RunResolver,
    SpecError,
    TaskInfo,
    TaskLookup,
    canonical_json,
    catalog_hparam_check,
    catalog_task_lookup,
    find_run_checkpoint,
    load_spec,
    spec_hash,
    validate_spec,
)
from contrasting.eval.store import CellRecord, CellRow, ResultStore, RunnerId, StoreError

DEFAULT_EXECUTOR = "contrasting.eval.runner:run_cell_executor"
_ACTIVE_RUNNERS: set[str] = set()  # runner ids of this process that are running now (see ResultStore.reap)
PROGRESS_MIN_INTERVAL_S = 0.25  # a worker sends at most ~4 progress messages a second per cell
WORKER_START_FAILURES = 3  # consecutive worker deaths before any cell runs: the executor is broken, stop


class RunnerError(RuntimeError):
    """The grid cannot run (broken executor, unusable device); finished cells are kept."""


# -------------------------------------------------------------------------------------------------- cells


def code_version() -> str:
    """The code version in cell keys: the installed contrasting-eval version (``0+unknown`` if not installed)."""
    from importlib import metadata  # noqa: PLC0415

    try:
        return metadata.version("contrasting-eval")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def cell_key(encoder_identity: Mapping, task: TaskInfo, hparams: Mapping | list, seed: int, version: str) -> str:
    """The cell's key: SHA-256 (hex, 32 chars) of the canonical JSON of everything that determines its result."""
    payload = {"encoder": dict(encoder_identity), "task": task.name, "task_version": task.version,
               "hparams": hparams, "seed": int(seed), "code": version}
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class CellRequest:
    """What an executor gets for one cell (plain data, picklable, no torch). ``encoder_spec`` is what
    ``contrasting.eval``'s ``load_encoder`` takes (a checkpoint path, ``random:<arch>``, ``supervised:<arch>``);
    ``device`` is assigned by the runner (``cpu`` or ``cuda``/``cuda:0`` inside a GPU worker)."""

    key: str
    encoder: str
    encoder_spec: str
    arch: str
    layout: str | None
    encoder_meta: dict
    task: str
    task_meta: dict
    hparams_name: str
    hparams: dict | list
    seed: int
    data_root: str | None = None
    cache_dir: str | None = None
    device: str = "cpu"

    @property
    def label(self) -> str:
        """``encoder × task [hparams, seed]``."""
        return f"{self.encoder} × {self.task} [{self.hparams_name}, seed {self.seed}]"

    @classmethod
    def from_dict(cls, d: Mapping, **changes) -> CellRequest:
        """Build from a stored request (unknown keys ignored), with fields replaced by ``changes``."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{**{k: v for k, v in d.items() if k in names}, **changes})


def task_meta(info: TaskInfo, spec: GridSpec) -> dict:
    """The task metadata stored with each cell: catalog fields, ``group`` and the spec's annotations."""
    entry = next(t for t in spec.tasks if t.name == info.name)
    return {**dataclasses.asdict(info), "group": info.group, "reference": entry.reference,
            "similar_corpus": list(entry.similar_corpus), "supervised_domain": entry.supervised_domain}


def build_cells(spec: GridSpec, encoders: Mapping[str, ResolvedEncoder], tasks: Mapping[str, TaskInfo],
                version: str | None = None) -> list[CellRecord]:
    """Every cell of ``spec`` in grid order (encoder-major, then task, setting, seed) as store records."""
    version = version or spec.code_version or code_version()
    cells = []
    for e in spec.encoders:
        r = encoders[e.name]
        for t in spec.tasks:
            info = tasks[t.name]
            tmeta = task_meta(info, spec)
            for h in spec.hparams:
                for seed in spec.seeds:
                    key = cell_key(r.identity, info, h.values, seed, version)
                    values = copy.deepcopy(h.values)
                    req = CellRequest(key=key, encoder=e.name, encoder_spec=r.loader_spec, arch=r.arch,
                                      layout=r.layout, encoder_meta=r.meta, task=t.name, task_meta=tmeta,
                                      hparams_name=h.name, hparams=values, seed=seed, data_root=spec.data_root,
                                      cache_dir=spec.cache_dir)
                    cells.append(CellRecord(key=key, encoder=e.name, task=t.name, hparams_name=h.name,
                                            hparams=values, seed=seed, encoder_meta=r.meta, task_meta=tmeta,
                                            request=dataclasses.asdict(req)))
    return cells


def prepare_grid(spec: GridSpec | str | os.PathLike, store: ResultStore, *, overrides: Iterable[str] = (),
                 task_lookup: TaskLookup = catalog_task_lookup, run_resolver: RunResolver = find_run_checkpoint,
                 hparam_check: HParamCheck | None = None) -> tuple[GridSpec, str, list[CellRecord]]:
    """Load and validate ``spec`` (a path or a ``GridSpec``), hash its checkpoints (cached in the store),
    build its cells and register them. Returns (spec, spec hash, cells). Raises ``SpecError``."""
    if not isinstance(spec, GridSpec):
        spec = load_spec(spec, overrides, validate=False)
    cache = store.hash_cache()
    n_cached = len(cache)
    encoders, tasks = validate_spec(spec, task_lookup=task_lookup, run_resolver=run_resolver, hash_cache=cache,
                                    hparam_check=hparam_check)
    if len(cache) != n_cached:
        store.save_hash_cache(cache)
    cells = build_cells(spec, encoders, tasks)
    h = spec_hash(spec)
    store.register(h, spec.name, canonical_json(spec.to_dict()), cells)
    return spec, h, cells


# ------------------------------------------------------------------------------------------------ results


def _clean(obj):
    """JSON-able copy: tensors/arrays become lists or floats, non-finite floats None, unknown types str."""
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if hasattr(obj, "tolist"):
        return _clean(obj.tolist())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _clean(dataclasses.asdict(obj))
    return str(obj)


def _field(out, name, default=None):
    if isinstance(out, Mapping):
        return out.get(name, default)
    return getattr(out, name, default)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def normalise_result(out: Any, task_meta: Mapping) -> dict:
    """An executor's result as the store's record: ``score`` (the task's primary test metric, raw: an L1 error
    stays positive), ``val_score`` (its validation counterpart, used to select among grid-level settings; None
    when absent), and JSON-able ``metrics``, ``timings``, ``versions``.

    ``out`` is contrasting.eval's ``CellResult`` (raw metric in ``value``; its ``score`` is signed and not used;
    ``val_scores`` entries carry the raw validation metric under ``val``) or a mapping/object with ``metrics``
    and optionally ``value`` or ``score`` (raw), ``val_score``, ``timings``, ``versions``. Without those the
    score is ``metrics[<task metric>]`` (or ``test_<metric>``, or the only numeric metric) and the validation
    score ``metrics['val_<metric>']``. ValueError when no score is found or it is not finite."""
    metrics = _clean(_field(out, "metrics", None) or {})
    if not isinstance(metrics, dict):
        raise ValueError(f"result metrics must be a mapping, got {type(metrics).__name__}")
    metric = task_meta.get("metric", "score")
    hib = _field(out, "higher_is_better", task_meta.get("higher_is_better", True))
    score = _field(out, "value", None)
    if score is None:
        score = next((metrics[k] for k in (metric, f"test_{metric}") if _number(metrics.get(k))), None)
    if score is None:
        score = _field(out, "score", None)
    if score is None:
        numeric = [v for v in metrics.values() if _number(v)]
        score = numeric[0] if len(numeric) == 1 else None
    if score is None:
        raise ValueError(f"the result has no primary score: expected 'value', 'score' or metric {metric!r} among "
                         f"{sorted(metrics)}")
    score = float(score)
    if not math.isfinite(score):
        raise ValueError(f"non-finite score {score}")
    val = _field(out, "val_score", None)
    entries = _field(out, "val_scores", None)
    if val is None and isinstance(entries, (list, tuple)):
        vals = [float(e["val"]) for e in entries if isinstance(e, Mapping) and _number(e.get("val"))]
        if vals:
            val = max(vals) if hib else min(vals)  # the setting the cell selected (its own rule)
    if val is None:
        val = next((metrics[k] for k in (f"val_{metric}", "val_score") if _number(metrics.get(k))), None)
    val = float(val) if val is not None and math.isfinite(float(val)) else None
    timings = _clean(_field(out, "timings", None) or {})
    versions = _clean(_field(out, "versions", None) or {})
    return {"score": score, "val_score": val, "metrics": metrics, "timings": timings if isinstance(timings, dict)
            else {}, "versions": versions if isinstance(versions, dict) else {}}


_VERSIONS: dict | None = None


def environment_versions() -> dict:
    """Python, platform, torch (when loaded), the contrasting distributions and the git commit of this
    checkout (when it is one), computed once per process."""
    global _VERSIONS
    if _VERSIONS is None:
        from importlib import metadata  # noqa: PLC0415

        v = {"python": platform.python_version(), "platform": platform.platform()}
        for dist in ("contrasting-eval", "contrasting-encoders", "contrasting-data", "contrasting-losses"):
            with contextlib.suppress(metadata.PackageNotFoundError):
                v[dist] = metadata.version(dist)
        try:
            out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                                 text=True, timeout=5)
            if out.returncode == 0:
                v["git"] = out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
        _VERSIONS = v
    v = dict(_VERSIONS)
    if "torch" in sys.modules:
        v["torch"] = getattr(sys.modules["torch"], "__version__", "?")
    return v


# ---------------------------------------------------------------------------------------------- executors


Executor = Callable[[CellRequest, Callable[..., None]], Any]


def resolve_executor(ref: str | Executor) -> Executor:
    """A callable, or ``'module:function'`` imported and looked up. ValueError/ImportError explain a bad ref."""
    if callable(ref):
        return ref
    module, sep, name = str(ref).partition(":")
    if not sep:
        raise ValueError(f"executor {ref!r}: expected 'module:function'")
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def executor_ref(executor: str | Executor | None) -> str:
    """The importable ``'module:qualname'`` of an executor (worker processes import it by name)."""
    if executor is None:
        return DEFAULT_EXECUTOR
    if isinstance(executor, str):
        return executor
    mod, qual = getattr(executor, "__module__", None), getattr(executor, "__qualname__", "")
    if not mod or "<" in qual or mod == "__main__":
        raise ValueError(f"executor {executor!r} must be an importable module-level function (workers import it)")
    return f"{mod}:{qual}"


def run_cell_executor(request: CellRequest, progress: Callable[..., None]):
    """The default executor: ``contrasting.eval.protocol.run_cell`` on the request's encoder spec and task. The
    setting's values go to ``run_cell(hparams=...)`` as they are (a mapping of ``Schedule`` fields, or a list of
    them to select among on the validation split inside the cell). ``run_cell`` reports progress only as text
    (``progress: bool``), so the runner shows the cell's elapsed time instead."""
    from contrasting.eval.protocol import run_cell  # noqa: PLC0415 - torch is imported by workers only

    progress(0.0, "running")
    hp = request.hparams
    return run_cell(request.encoder_spec, request.task, hparams=list(hp) if isinstance(hp, list) else dict(hp),
                    seed=request.seed, device=request.device, data_root=request.data_root,
                    cache_dir=request.cache_dir, progress=False, arch=request.arch)


def _stable_unit(*parts) -> float:
    """A deterministic number in [0, 1) from ``parts``."""
    return int(hashlib.sha256(canonical_json(list(parts)).encode()).hexdigest()[:12], 16) / 16**12


def synthetic_cell(request: CellRequest, progress: Callable[..., None]) -> dict:
    """A torch-free stand-in for ``run_cell``, for dry runs of the whole pipeline and for benchmarks: it trains
    a ridge-regression probe (numpy) on synthetic features whose class signal depends on the encoder's metadata
    (random < SSL < supervised on semantic tasks, SSL ahead on structural ones) and reports top-1 (or an L1
    error for tasks whose metric is lower-is-better) with its binomial standard error and the chance baseline
    (1/10, or 0.9 as an error). ``hparams``: ``samples`` (default 2000), ``dim`` (256),
    ``sleep_s`` (extra wait). Deterministic in (encoder, task, seed)."""
    import numpy as np  # noqa: PLC0415

    h = request.hparams if isinstance(request.hparams, Mapping) else (request.hparams or [{}])[0]
    n, d, classes = int(h.get("samples", 2000)), int(h.get("dim", 256)), 10
    meta, tmeta = request.encoder_meta, request.task_meta
    t0 = time.perf_counter()
    semantic = tmeta.get("kind") == "semantic"
    quality = 0.15 + 0.5 * _stable_unit(request.encoder, "quality")
    if meta.get("random"):
        quality = 0.05
    elif meta.get("supervised"):
        quality = 0.9 if semantic else 0.35
    elif not semantic:
        quality += 0.2
    quality *= 0.7 + 0.6 * _stable_unit(request.encoder, request.task)
    rng = np.random.default_rng(int(_stable_unit(request.key, request.seed) * 2**32))
    y = rng.integers(0, classes, n)
    centers = rng.standard_normal((classes, d)) * (3.0 / math.sqrt(d))  # centre distance ≈ 4.2 · quality
    x = quality * centers[y] + rng.standard_normal((n, d))
    progress(0.3, "features")
    split = int(0.8 * n)
    onehot = np.eye(classes)[y[:split]]
    xtr = x[:split]
    w = np.linalg.solve(xtr.T @ xtr + 10.0 * np.eye(d), xtr.T @ onehot)
    progress(0.8, "probe")
    acc = float((np.argmax(x[split:] @ w, 1) == y[split:]).mean())
    val = float((np.argmax(xtr[: split // 4] @ w, 1) == y[: split // 4]).mean())
    if h.get("sleep_s"):
        time.sleep(float(h["sleep_s"]))
    metric = tmeta.get("metric", "top1")
    higher = tmeta.get("higher_is_better", True)
    score = acc if higher else 1.0 - acc
    se = math.sqrt(max(acc * (1 - acc), 1e-12) / (n - split))
    progress(1.0, "done")
    return {"metrics": {metric: score, f"val_{metric}": val if higher else 1 - val, "se": se,
                        "baseline": 1 / classes if higher else 1 - 1 / classes},
            "timings": {"total_s": time.perf_counter() - t0}}


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
    except BaseException:  # noqa: BLE001 - reported to the runner, which stops the grid
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

        t0, started = time.perf_counter(), time.time()
        try:
            out = fn(req, progress)
            payload = normalise_result(out, req.task_meta)
            payload["timings"] = {**payload["timings"], "cell_wall_s": time.perf_counter() - t0}
            payload["versions"] = {**environment_versions(), **payload["versions"]}
            payload["started"] = started
            conn.send(("done", req.key, payload))
        except Exception:  # noqa: BLE001 - any failure of a cell is recorded, the worker lives on
            conn.send(("error", req.key, {"error": traceback.format_exc(), "started": started,
                                          "timings": {"cell_wall_s": time.perf_counter() - t0},
                                          "versions": environment_versions()}))


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


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


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
        try:
            import torch  # noqa: PLC0415 - only to count GPUs

            n = torch.cuda.device_count()
        except ImportError:
            n = 0
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


class _Terminated(BaseException):
    """SIGTERM arrived: stop like Ctrl-C."""


def _on_sigterm(signum, frame):
    raise _Terminated()


class _Progress:
    """Overall bar plus one bar per worker (tqdm) on a terminal; one line per finished cell otherwise."""

    def __init__(self, mode: bool | str, total: int, initial: int, slots: list[_Slot], name: str):
        self.bars = mode is True or (mode == "auto" and sys.stderr.isatty())
        self.lines = mode is not False and not self.bars
        self.total, self.done, self.slots = total, initial, slots
        self.overall = None
        if self.bars:
            from tqdm.auto import tqdm  # noqa: PLC0415

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
             task_lookup: TaskLookup = catalog_task_lookup, run_resolver: RunResolver = find_run_checkpoint,
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
    own_store = not isinstance(store, ResultStore)
    if not isinstance(spec, GridSpec):
        spec = load_spec(spec, overrides, validate=False)
    if own_store:
        store = ResultStore(store if store is not None else spec.store_path)
    try:
        return _run(spec, store, executor_ref(executor or spec.runner.executor), workers, device, timeout_s,
                    lease_s, retry_failed, progress, wait_for_others, task_lookup, run_resolver, poll_s)
    finally:
        if own_store:
            store.close()


def _run(spec, store, executor, workers, device, timeout_s, lease_s, retry_failed, progress, wait_for_others,
         task_lookup, run_resolver, poll_s) -> GridRunSummary:
    t_start = time.monotonic()
    opts = spec.runner
    timeout_s = timeout_s or opts.timeout_s
    lease_s = lease_s or opts.lease_s
    retry_failed = opts.retry_failed if retry_failed is None else retry_failed
    check = catalog_hparam_check if executor == DEFAULT_EXECUTOR else None
    spec, shash, cells = prepare_grid(spec, store, task_lookup=task_lookup, run_resolver=run_resolver,
                                      hparam_check=check)
    runner = RunnerId.current()
    _ACTIVE_RUNNERS.add(runner.id)
    try:
        return _run_claimed(spec, shash, cells, store, runner, executor, workers, device, timeout_s, lease_s,
                            retry_failed, progress, wait_for_others, poll_s, t_start)
    finally:
        _ACTIVE_RUNNERS.discard(runner.id)


def _run_claimed(spec, shash, cells, store, runner, executor, workers, device, timeout_s, lease_s, retry_failed,
                 progress, wait_for_others, poll_s, t_start) -> GridRunSummary:
    opts = spec.runner
    store.reap(active=_ACTIVE_RUNNERS)
    if retry_failed:
        store.reset_failed(shash)
    counts = store.counts(shash)
    summary = GridRunSummary(spec.name, shash, str(store.path), len(cells), counts["done"], counts["failed"],
                             counts["pending"], counts["running"])
    if counts["pending"] == 0 and (counts["running"] == 0 or not wait_for_others):
        return summary
    slots = _slots_for(detect_devices(device or opts.device, workers or opts.workers), opts.threads_per_worker)
    pool = _Pool(executor, slots)
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
            for s in slots:
                if s.cell is not None and now > s.deadline:
                    cell = s.cell
                    pool.kill(s)
                    _record_failure(pool, store, runner, bars, summary, s, cell,
                                    f"timed out after {timeout_s:g} s (worker killed)", {}, None)
                    pool.start(s)
            if now >= next_beat:
                lost = store.heartbeat(runner.id, [s.cell.key for s in slots if s.cell is not None], lease_s=lease_s)
                for k in lost:
                    bars.write(f"[grid] warning: lost the claim on cell {k} (lease expired); its result is recorded "
                               "only if no other runner finishes it first")
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
                            f"worker process died while running the cell ({_describe_exit(code)})", {}, None)
        elif not was_ready:
            pool.start_failures += 1
            if pool.start_failures >= WORKER_START_FAILURES:
                raise RunnerError(f"worker processes die before running any cell ({_describe_exit(code)}); "
                                  f"executor {pool.executor!r}")
        pool.start(s)


def error_summary(error: str | None) -> str:
    """The one line of an error text worth showing: a traceback's exception line (``KeyError: 'x'``, the first
    line of a multi-line message), else the text's first line."""
    lines = (error or "").strip().splitlines()
    if not lines:
        return "failed"
    frames = [i for i, line in enumerate(lines) if line.startswith("  File ")]
    if lines[0].startswith("Traceback") and frames:
        rest = [line for line in lines[frames[-1] + 1:] if line and not line.startswith(" ")]
        if rest:
            return rest[0]
    return lines[0] if not lines[0].startswith("Traceback") else lines[-1]


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
    """Add the ``grid`` command's sub-commands (``run``, ``status``, ``ingest``) to ``parser``."""
    sub = parser.add_subparsers(dest="grid_command", required=True, metavar="{run,status,ingest}")
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
            from contrasting.eval.cluster import default_result_dir, ingest_results  # noqa: PLC0415

            with ResultStore(args.store, create=False) as store:
                rep = ingest_results(store, args.results or default_result_dir(store.path))
            print(rep)
            return 0
        spec = load_spec(args.spec, args.overrides, validate=False)
        if args.cluster:
            from contrasting.eval.cluster import run_grid_cluster  # noqa: PLC0415

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
    except (SpecError, FileNotFoundError, StoreError, RunnerError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, _Terminated):
        print("stopped: finished cells are kept, running ones return to pending; rerun to resume", file=sys.stderr)
        return 130
    print(f"grid {summary.spec_name!r}: {summary.done}/{summary.total} done, {summary.failed} failed, "
          f"{summary.pending} pending, {summary.running} running elsewhere; this run: {summary.ran} ran, "
          f"{summary.failed_now} failed in {summary.wall_s:.1f} s  [{summary.store}]")
    for label, err in summary.failures[:10]:
        print(f"  failed: {label}: {err}")
    return 0 if summary.complete else 1


def _kv(item: str) -> tuple[str, Any]:
    import yaml  # noqa: PLC0415

    k, sep, v = item.partition("=")
    if not sep:
        raise ValueError(f"--slurm {item!r}: expected key=value")
    return k, yaml.safe_load(v)


def grid_main(argv: list[str] | None = None) -> int:
    """Run, resume and summarise encoder × task grids: ``grid run SPEC [key=value ...]``, ``grid status STORE``,
    ``grid ingest STORE``.

    The ``contrasting grid`` subcommand (entry point ``contrasting.commands``: a callable taking ``argv`` and
    returning the exit status); ``python -m contrasting.eval.runner`` runs it without the dispatcher."""
    parser = argparse.ArgumentParser(prog="contrasting grid", description="Resumable encoder × task grids.")
    add_grid_arguments(parser)
    return grid_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(grid_main())

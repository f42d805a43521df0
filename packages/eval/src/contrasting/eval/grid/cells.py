"""One cell of a grid: its key, its request to an executor, the executor's result made into metrics, the
environment recorded with it, and how an executor reference (``"module:function"``) is resolved; and how every
grid run begins (``open_grid``: spec, store, executor, registered cells), whichever runner then runs the cells."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import importlib
import math
import os
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contrasting.encoders.provenance import environment, installed_version
from contrasting.eval.catalog.tasks import catalog_hparam_check
from contrasting.eval.grid.spec import (
    GridSpec,
    HParamCheck,
    ResolvedEncoder,
    RunResolver,
    SpecError,
    TaskInfo,
    TaskLookup,
    canonical_json,
    catalog_task_lookup,
    find_run_checkpoint,
    load_spec,
    spec_hash,
    validate_spec,
)
from contrasting.eval.grid.store import CellRecord, ResultStore

DEFAULT_EXECUTOR = "contrasting.eval.grid.cells:run_cell_executor"


class RunnerError(RuntimeError):
    """The grid cannot run (broken executor, unusable device); finished cells are kept."""


# -------------------------------------------------------------------------------------------------- cells


def code_version() -> str:
    """The code version in cell keys: the installed contrasting-eval version (``0+unknown`` if not installed)."""
    return installed_version("contrasting-eval") or "0+unknown"


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


@dataclass
class OpenGrid:
    """A grid ready to run: its validated spec, open store, executor reference, spec hash and registered cells."""

    spec: GridSpec
    store: ResultStore
    executor: str
    spec_hash: str
    cells: list[CellRecord]


@contextlib.contextmanager
def open_grid(spec: GridSpec | str | os.PathLike, store: ResultStore | str | os.PathLike | None = None, *,
              overrides: Iterable[str] = (), executor: str | Executor | None = None,
              task_lookup: TaskLookup | None = None, run_resolver: RunResolver | None = None) -> Iterator[OpenGrid]:
    """How every grid run begins and ends, for the local pool and the cluster alike.

    ``spec``: a ``GridSpec`` or a YAML path (with ``overrides``). ``store``: a ``ResultStore``, a path, or None
    for the spec's; one opened here is closed on exit, and one created here for a spec that ``prepare_grid``
    refuses is removed (a refused spec leaves no store behind). The executor reference is ``executor`` or the
    spec's ``runner.executor``; the default executor's hyper-parameters are checked against the task catalog.
    ``task_lookup`` and ``run_resolver`` default to the task catalog and the encoders package's run directories.
    Raises ``SpecError`` (before any cell is registered) or ``ValueError`` for an executor that is no importable
    function."""
    if not isinstance(spec, GridSpec):
        spec = load_spec(spec, overrides, validate=False)
    own = not isinstance(store, ResultStore)
    path = Path(store if store is not None else spec.store_path) if own else None
    created, refused = own and not path.exists(), False
    opened = ResultStore(path) if own else store
    try:
        ref = executor_ref(executor or spec.runner.executor)
        check = catalog_hparam_check if ref == DEFAULT_EXECUTOR else None
        try:
            spec, shash, cells = prepare_grid(spec, opened, task_lookup=task_lookup or catalog_task_lookup,
                                              run_resolver=run_resolver or find_run_checkpoint, hparam_check=check)
        except SpecError:
            refused = True
            raise
        yield OpenGrid(spec, opened, ref, shash, cells)
    finally:
        if own:
            opened.close()
        if created and refused:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)


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




# ---------------------------------------------------------------------------------------------- executors


Executor = Callable[[CellRequest, Callable[..., None]], Any]

# Executor modules as grid specs written before contrasting.eval had subpackages name them.
MOVED_MODULES = {"contrasting.eval.cells": "contrasting.eval.grid.cells"}


def _current_ref(ref: str) -> str:
    """``ref`` with its module under its current name (``MOVED_MODULES``)."""
    module, sep, name = ref.partition(":")
    return f"{MOVED_MODULES.get(module, module)}{sep}{name}"


def resolve_executor(ref: str | Executor) -> Executor:
    """A callable, or ``'module:function'`` imported and looked up (a module in ``MOVED_MODULES`` under its
    new name). ValueError/ImportError explain a bad ref."""
    if callable(ref):
        return ref
    module, sep, name = _current_ref(str(ref)).partition(":")
    if not sep:
        raise ValueError(f"executor {ref!r}: expected 'module:function'")
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def executor_ref(executor: str | Executor | None) -> str:
    """The importable ``'module:qualname'`` of an executor (worker processes import it by name; a moved module
    under its current name, so the default executor is recognised however an older spec spells it)."""
    if executor is None:
        return DEFAULT_EXECUTOR
    if isinstance(executor, str):
        return _current_ref(executor)
    mod, qual = getattr(executor, "__module__", None), getattr(executor, "__qualname__", "")
    if not mod or "<" in qual or mod == "__main__":
        raise ValueError(f"executor {executor!r} must be an importable module-level function (workers import it)")
    return f"{mod}:{qual}"


def run_cell_executor(request: CellRequest, progress: Callable[..., None]):
    """The default executor: ``contrasting.eval.cell.protocol.run_cell`` on the request's encoder spec and task. The
    setting's values go to ``run_cell(hparams=...)`` as they are (a mapping of ``Schedule`` fields, or a list of
    them to select among on the validation split inside the cell). ``run_cell`` reports progress only as text
    (``progress: bool``), so the runner shows the cell's elapsed time instead."""
    from contrasting.eval.cell.protocol import run_cell

    progress(0.0, "running")
    hp = request.hparams
    return run_cell(request.encoder_spec, request.task, hparams=list(hp) if isinstance(hp, list) else dict(hp),
                    seed=request.seed, device=request.device, data_root=request.data_root,
                    cache_dir=request.cache_dir, progress=False, arch=request.arch)


def execute_cell(executor: str | Executor, request: CellRequest, progress: Callable[..., None]) -> tuple[str, dict]:
    """Run one cell through ``executor`` (a callable, or a reference that ``resolve_executor`` imports; an
    import failure is the cell's failure), wherever it runs (a pool worker, a cluster job): ``("done", record)``
    with ``normalise_result``'s fields, or ``("failed", record)`` with the traceback as ``error``. Either record
    has ``timings.cell_wall_s``, ``versions`` (this process's ``environment()`` under the executor's own) and
    ``started`` (epoch seconds). Only the cell's own failure is caught (``Exception``, not a kill or exit)."""
    t0, started = time.perf_counter(), time.time()
    try:
        payload = normalise_result(resolve_executor(executor)(request, progress), request.task_meta)
    except Exception:  # recorded as the cell's failure
        return "failed", {"error": traceback.format_exc(), "timings": {"cell_wall_s": time.perf_counter() - t0},
                          "versions": environment(), "started": started}
    payload["timings"] = {**payload["timings"], "cell_wall_s": time.perf_counter() - t0}
    payload["versions"] = {**environment(), **payload["versions"]}
    payload["started"] = started
    return "done", payload


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


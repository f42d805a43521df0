"""Grid runner throughput: cells per minute through ``run_grid`` (claims, worker processes, one store transaction
per cell), from an empty store to a finished grid.

Run: ``pytest bench/bench_grid.py --benchmark-only`` (every case is quick: ``-k quick`` selects them all).

* ``synthetic``: 24 cells (3 encoders × the 8 built-in tasks) of ``bench.grid_executors.synthetic_cell``, which
  fits a numpy ridge probe on 2000 × 256 synthetic features (≈ 0.1 s of CPU): the runner's own cost per cell shows
  as the gap between ``cells_per_min`` and ``ideal_cells_per_min`` = workers · 60 / (mean executor seconds per cell).
  Worker start-up (a Python process importing contrasting.eval) is included, as in a real run.
* ``real_cell``: one built-in cell through contrasting.eval's ``run_cell`` (random ResNet-18 × shapes-shape, one
  epoch); skipped, with the cell's error, when the shapes world cannot be built or read here, and in the
  untimed ``--benchmark-disable`` pass. ``steady_cells_per_min`` (synthetic) leaves out worker start-up.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

from bench.harness import record
from contrasting.eval.grid.cells import error_summary
from contrasting.eval.grid.pool import run_grid
from contrasting.eval.grid.spec import load_spec
from contrasting.eval.grid.store import ResultStore

BUILTIN = ["shapes-shape", "shapes-texture", "shapes-digit", "shapes-count", "shapes-camera-shift",
           "shapes-segmentation", "shapes-foreground", "shapes-depth"]


def grid_spec(folder: Path, *, encoders: list[dict], tasks: list[str], hparams: dict, workers: int,
              executor: str | None, data_root: str | None = None):
    raw = {"name": "bench", "store": str(folder / "grid.sqlite"), "encoders": encoders, "tasks": tasks,
           "hparams": {"default": hparams}, "seeds": [0], "data_root": data_root,
           "runner": {"workers": workers, "device": "cpu", "executor": executor, "timeout_s": 1800}}
    return load_spec({k: v for k, v in raw.items() if v is not None}, base_dir=folder)


def _run_once(benchmark, spec_factory, rounds: int):
    """Time ``run_grid`` from an empty store, ``rounds`` times; returns the last summary and its store folder."""
    state = {}

    def setup():
        if "folder" in state:
            shutil.rmtree(state["folder"], ignore_errors=True)
        state["folder"] = Path(tempfile.mkdtemp(prefix="bench-grid-"))
        state["spec"] = spec_factory(state["folder"])
        return (), {}

    def run():
        state["summary"] = run_grid(state["spec"], progress=False)

    benchmark.pedantic(run, setup=setup, rounds=rounds, iterations=1, warmup_rounds=0)
    return state


def bench_grid_quick_synthetic(benchmark):
    workers = 2
    encoders = [{"name": "Random", "kind": "random"}, {"name": "Supervised", "kind": "supervised"},
                {"name": "Supervised18", "kind": "supervised", "arch": "resnet18", "method": "simclr"}]
    state = _run_once(benchmark, lambda f: grid_spec(f, encoders=encoders, tasks=BUILTIN, hparams={}, workers=workers,
                                                     executor="bench.grid_executors:synthetic_cell"), rounds=2)
    summary = state["summary"]
    assert summary.complete, summary.failures
    with ResultStore(state["spec"].store_path) as store:
        done = store.cells(status="done")
    shutil.rmtree(state["folder"], ignore_errors=True)
    if benchmark.disabled:  # the untimed smoke pass: no statistics to record
        return
    mean_cell = sum(c.timings["cell_wall_s"] for c in done) / len(done)
    span = max(c.finished for c in done) - min(c.started for c in done)  # first dispatch → last record
    record(benchmark, device="cpu", dtype=torch.float64, work=summary.total, work_unit="cells", flops=None,
           peak_memory_mb=None, impl="runner", entry="synthetic", cells=summary.total, workers=workers,
           cells_per_min=60 * summary.total / benchmark.stats.stats.median,
           steady_cells_per_min=60 * summary.total / span, executor_s_per_cell=mean_cell,
           ideal_cells_per_min=workers * 60 / mean_cell)


def bench_grid_quick_real_cell(benchmark):
    if benchmark.disabled:
        # scripts/test.sh's untimed smoke pass (--benchmark-disable): the real cell costs 1–2 min on 2 CPU cores
        # (one ResNet-18 encoding pass over the shapes world); it runs under --benchmark-only (scripts/main.sh).
        pytest.skip("the real built-in cell runs only when timed (--benchmark-only)")
    pytest.importorskip("contrasting.eval.cell.protocol")
    data_root = os.environ.get("CONTRASTING_BENCH_DATA")  # None: the catalog's default data home
    state = _run_once(benchmark, lambda f: grid_spec(
        f, encoders=[{"name": "Random18", "kind": "random", "arch": "resnet18"}], tasks=["shapes-shape"],
        hparams={"epochs": 1}, workers=1, executor=None, data_root=data_root), rounds=1)
    summary = state["summary"]
    if not summary.complete:
        with ResultStore(state["spec"].store_path) as store:
            err = error_summary(store.cells()[0].error)
        shutil.rmtree(state["folder"], ignore_errors=True)
        pytest.skip(f"the built-in cell failed here: {err}")
    with ResultStore(state["spec"].store_path) as store:
        cell = store.cells()[0]
    shutil.rmtree(state["folder"], ignore_errors=True)
    record(benchmark, device="cpu", dtype=torch.float32, work=1, work_unit="cells", flops=None, peak_memory_mb=None,
           impl="runner", entry="real_cell", cells=1, workers=1,
           cells_per_min=60 / benchmark.stats.stats.median, executor_s_per_cell=cell.timings.get("cell_wall_s"),
           score=cell.score)

"""Executors for benchmarking the grid runner without torch work."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Mapping

from contrasting.eval.grid.cells import CellRequest
from contrasting.eval.grid.spec import (
    canonical_json,
)


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
    import numpy as np

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


"""Built-in world generator: per-item cost of every registered sampler, PNG encoding (ours vs Pillow's, the
baseline, in the same run), and whole-world builds (files included).

Run: ``pytest bench/bench_builtin.py --benchmark-only`` (``-k quick`` for the quick cases; the default world,
~31k items, is only in the full run). Every row's ``extra_info`` carries items/s via ``bench.harness.record``;
the world builds also record the worker CPU seconds, so runs on a loaded machine can be compared.
"""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from bench.harness import record
from contrasting.data.builtin import CORPORA, TASKS, SceneSpec, WorldConfig, build_world, render_scene
from contrasting.data.builtin.build import item_rng
from contrasting.data.builtin.layout import encode_png
from contrasting.data.builtin.registry import SplitContext, class_names, has_item_labels

SPEC = SceneSpec()
ITEMS = 20  # items per timed round of a sampler
ENTRIES = [*(("corpus", n) for n in CORPORA), *(("task", n) for n in TASKS)]


def _record(benchmark, work, unit, **extra):
    if not benchmark.disabled:
        record(benchmark, device="cpu", dtype=torch.uint8, work=work, work_unit=unit, flops=None,
               peak_memory_mb=None, **extra)


@pytest.mark.parametrize(("section", "name"), ENTRIES, ids=lambda v: str(v))
def test_sampler_quick(benchmark, section, name):
    entry = CORPORA[name] if section == "corpus" else TASKS[name]
    n_classes = len(class_names(entry, SPEC) or ())
    labels = [i % n_classes if has_item_labels(entry) else None for i in range(ITEMS)]
    context = SplitContext(0, "train")

    def step():
        for i, label in enumerate(labels):
            entry.sampler(item_rng(0, name, "train", i), SPEC, label, context)

    step()  # warm-up: the digit entries load scikit-learn's digits once
    benchmark.pedantic(step, rounds=5, iterations=1)
    _record(benchmark, ITEMS, "items", entry=name)


def _pil_png(array):
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG", compress_level=1)
    return out.getvalue()


@pytest.mark.parametrize("impl", ["ours", "pillow"])
def test_png_encode_quick(benchmark, impl):
    images = [render_scene(np.random.default_rng(i), SPEC).image for i in range(ITEMS)]
    encode = encode_png if impl == "ours" else _pil_png

    def step():
        for image in images:
            encode(image)

    benchmark.pedantic(step, rounds=5, iterations=1)
    sizes = [len(encode(image)) for image in images]
    _record(benchmark, ITEMS, "images", impl=impl, mean_bytes=float(np.mean(sizes)))


def _build(benchmark, tmp_path, config, workers):
    worlds = []

    def step():
        worlds.append(build_world(tmp_path, config, progress=False, workers=workers, force=True))

    benchmark.pedantic(step, rounds=1, iterations=1)
    timing = worlds[-1].manifest["timing"]
    items = sum(f.size for f in worlds[-1].corpora.values()) + sum(
        s.size for t in worlds[-1].tasks.values() for s in t.values())
    _record(benchmark, items, "items", workers=workers, worker_cpu_s=timing["worker_cpu_s"],
            loadavg=timing["loadavg"], files=worlds[-1].manifest["files"]["count"])


@pytest.mark.parametrize("workers", [1, 2])
def test_build_small_quick(benchmark, tmp_path, workers):
    _build(benchmark, tmp_path, WorldConfig(scale=0.02, gallery=8), workers)


def test_build_default(benchmark, tmp_path):
    _build(benchmark, tmp_path, WorldConfig(), None)


def test_build_default_128px(benchmark, tmp_path):
    _build(benchmark, tmp_path, WorldConfig(scene=replace(SPEC, resolution=128), scale=0.25), None)

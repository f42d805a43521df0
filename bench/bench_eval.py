"""Frozen-feature protocol: image-level evaluation with the feature cache vs re-encoding every batch.

Run: ``pytest bench/bench_eval.py --benchmark-only`` (``-k quick``: a random ResNet-18 at 32 px on the
shapes world's shape-class task, a world of scale 0.02: 36 train (val carved from them) + 12 test images).

Both rows run the same cell through ``contrasting.eval.run_cell`` at the study's image-level schedule
(100 epochs, batch 32, Adam lr 1e-4), same seed:

* ``cached`` (``feature_cache="memory"``): each split encoded once, the linear head trained on the fp16
  cache. Work: encoder forwards = train + test images, once.
* ``reference`` (``feature_cache="off"``, the baseline, ViRB without pre-encoding): every training batch
  is loaded and encoded again, every epoch. Encoder forwards = epochs × train + val + test images.

Both produce the same numbers (the uncached features are rounded through fp16 like the cache; a test in
tests/eval/test_protocol.py checks equality). ``extra_info``: throughput in sample-epochs/s, encoder
forwards, the test top-1, and on the cached row ``speedup_vs_reference`` (the reference median of the same
run over the cached median).
"""

from __future__ import annotations

import pytest
import torch

from bench.harness import record
from contrasting.eval import run_cell

EPOCHS = 100  # the study's image-level epoch count (ImageNet, Pets, CIFAR-100, DTD, CLEVR, THOR)
TASK = "shapes-shape"
_medians: dict = {}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    builtin = pytest.importorskip("contrasting.data.builtin")
    root = tmp_path_factory.mktemp("bench-world")
    builtin.build_world(root, builtin.WorldConfig(scale=0.02, corpora=(), tasks=("shape-cls",), gallery=0),
                        progress=False, workers=1)
    _cell(root, "cached")  # warm-up: imports, thread pools, the page cache of the world's PNGs
    return root


def _cell(world, impl: str):
    return run_cell("random:resnet18", TASK, data_root=world, image_size=32, seed=0, device="cpu", epochs=EPOCHS,
                    hparams={"lr": 1e-4, "batch_size": 32}, feature_cache="memory" if impl == "cached" else "off")


@pytest.mark.parametrize("impl", ["reference", "cached"])  # reference first: the cached row divides by it
def bench_eval_quick(benchmark, world, impl):
    result = {}
    benchmark.pedantic(lambda: result.update(r=_cell(world, impl)), rounds=3 if impl == "cached" else 1,
                       iterations=1, warmup_rounds=0)
    r = result["r"]
    assert r.selected["epochs"] == EPOCHS
    if benchmark.disabled:  # the untimed smoke pass of scripts/test.sh: no stats to record
        return
    n_train, n_eval = r.sizes["train"], r.sizes["val"] + r.sizes["test"]
    forwards = n_train + n_eval if impl == "cached" else EPOCHS * n_train + n_eval
    _medians[impl] = benchmark.stats.stats.median
    extra = {}
    if impl == "cached" and "reference" in _medians:
        extra["speedup_vs_reference"] = _medians["reference"] / _medians["cached"]
    record(benchmark, device="cpu", dtype=torch.float32, work=n_train * EPOCHS, work_unit="sample-epochs",
           flops=None, peak_memory_mb=None, impl=impl, entry=TASK, b=32, encoder="random:resnet18@32px",
           epochs=EPOCHS, encoder_forwards=forwards, top1=r.value, train=n_train, test=r.sizes["test"],
           baseline="reference = uncached (re-encode every batch)", **extra)

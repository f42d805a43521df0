"""One full self-supervised training step on the CPU — augment, forward, backward, optimiser — as the demo runs it
now against the step it ran before, in the same run.

Run: ``pytest bench/bench_training.py --benchmark-only``.

Both steps train MoCo v2 (ResNet-18, small stem, width 16: the demo's encoder) on 32 px PNG images (the built-in
world's resolution) in batches of 128 two-view images, with the method's own optimiser:

* **now**: DALI CPU executor (1 thread, beside torch's 2), bf16 autocast (BatchNorm and the loss in fp32) with
  channels-last tensors — what ``contrasting pretrain`` picks on a CPU with bf16 matrix instructions;
* **before**: the torchvision executor (2 DataLoader workers), fp32, contiguous tensors.

The timed function is one epoch of ``STEPS`` steps of *now*; before each round ``setup`` runs the same number of
*before* steps and times them, so the two alternate on the same machine state. A third figure, the bare bf16
forward + backward of the same backbone and views (no data loading, no optimiser), is the ceiling *now* is
measured against. ``extra_info``: ``throughput`` (images/s now), ``before_images_per_s``, ``speedup``,
``bare_images_per_s``, ``share_of_bare``, ``peak_memory_mb`` (resident set), precisions and layouts.

Targets (issue "A demo whose encoders learn"): speedup ≥ 3×, share_of_bare ≥ 0.5.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np
import pytest
import torch
from PIL import Image

from bench.harness import record
from contrasting.data import ImageFolderSource, make_loader
from contrasting.encoders import build_backbone, build_method, resolve_config
from contrasting.encoders.training.data import make_recipe
from contrasting.encoders.training.optim import apply_schedule, build_optimizer, make_schedule
from contrasting.encoders.training.precision import cpu_has_fast_bf16

N_IMAGES = 1024
BATCH = 128
STEPS = N_IMAGES // BATCH
SIZE = 32
ROUNDS = 3


def _folder(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("bench_training")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / 6.0
    for c in range(4):
        (root / f"{c}").mkdir()
    for i in range(N_IMAGES):
        base = np.stack([np.sin(xx * (1 + k) + rng.random() * 6) * np.cos(yy * (1.3 - 0.2 * k)) for k in range(3)], -1)
        img = ((base * 0.5 + 0.5) * 220 + rng.normal(0, 10, (SIZE, SIZE, 3))).clip(0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / f"{i % 4}" / f"{i:05d}.png")
    return str(root)


def _trainer(precision: str, channels_last: bool):
    """(method, optimiser, schedule) of the demo's MoCo v2 run."""
    config = resolve_config({"method": {"name": "mocov2", "queue_size": 1024, "momentum": 0.99},
                             "backbone": {"name": "resnet18", "small_stem": True, "width": 16},
                             "optim": {"lr": 0.06, "scale_lr_with_batch": False},
                             "train": {"batch_size": BATCH, "precision": precision}})
    torch.manual_seed(0)
    method = build_method("mocov2", build_backbone(config.backbone, config.backbone_options), config.method_config())
    method.on_train_start()
    if channels_last:
        method.to(memory_format=torch.channels_last)
    opt, opt_cfg = build_optimizer(config.optimizer, method, config.optimizer_options, method.group_options())
    schedule = make_schedule(opt_cfg, global_batch=BATCH, steps_per_epoch=STEPS, total_steps=10_000)
    return method, opt, schedule


def _epoch(loader, method, opt, schedule, *, bf16: bool, channels_last: bool, first_step: int) -> int:
    layout = torch.channels_last if channels_last else torch.contiguous_format
    n = 0
    for k, batch in enumerate(loader):
        method.step = first_step + k
        apply_schedule(opt.param_groups, schedule, method.step)
        method.before_step(lambda p, v: p.data.copy_(v))
        views = [v.contiguous(memory_format=layout) for v in batch.views]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = method(views)
        if not torch.isfinite(loss):
            raise FloatingPointError("non-finite loss")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n += len(batch.indices)
    return n


@pytest.mark.skipif(not cpu_has_fast_bf16(), reason="the CPU has no bf16 matrix instructions")
def test_training_step_cpu(benchmark, tmp_path_factory):
    source = ImageFolderSource(_folder(tmp_path_factory))
    recipe = make_recipe("moco_v2", SIZE, {})
    now_loader = make_loader(recipe, source, BATCH, backend="dali", device="cpu", num_threads=1, last_batch="drop")
    before_loader = make_loader(recipe, source, BATCH, backend="torchvision", num_workers=2, last_batch="drop")
    now, before = _trainer("bf16", True), _trainer("fp32", False)
    state = {"now": 0, "before": 0}
    before_rates = []

    def run(which):
        loader, (method, opt, schedule) = (now_loader, now) if which == "now" else (before_loader, before)
        n = _epoch(loader, method, opt, schedule, bf16=which == "now", channels_last=which == "now",
                   first_step=state[which])
        state[which] += STEPS
        return n

    run("now"), run("before")  # warm-up: pipelines, workers, kernels

    def setup():
        t0 = time.perf_counter()
        n = run("before")
        before_rates.append(n / (time.perf_counter() - t0))

    benchmark.pedantic(lambda: run("now"), setup=setup, rounds=ROUNDS, warmup_rounds=0, iterations=1)
    if benchmark.disabled:
        return
    method = now[0]
    batch = list(now_loader)[0]  # a whole epoch: no DALI thread is still prefetching while the bare step is timed
    views = [v.contiguous(memory_format=torch.channels_last) for v in batch.views]
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = method(views)
        loss.backward()
        times.append(time.perf_counter() - t0)
    bare = BATCH / statistics.median(times[2:])
    rate = N_IMAGES // BATCH * BATCH / benchmark.stats.stats.median
    before_rate = statistics.median(before_rates)
    with open("/proc/self/status") as f:
        peak = next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM"))
    record(benchmark, device="cpu", dtype=torch.bfloat16, work=N_IMAGES // BATCH * BATCH, work_unit="images",
           flops=None, peak_memory_mb=peak, before_images_per_s=before_rate, speedup=rate / before_rate,
           bare_images_per_s=bare, share_of_bare=rate / bare, now="dali-cpu 1 thread, bf16 autocast, channels_last",
           before="torchvision 2 workers, fp32, contiguous", method="mocov2", backbone="resnet18-w16-small-stem",
           image_size=SIZE, batch_size=BATCH, cpu_count=os.cpu_count(), threads=torch.get_num_threads())

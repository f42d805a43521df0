"""Training-step throughput of every method: the DeepSpeed engine vs a plain PyTorch loop, same model, data and run.

Run: ``pytest bench/bench_encoders.py --benchmark-only`` (``-k quick`` for the CPU quick config, ``-m gpu`` for
ResNet-50 at 224 px in bf16); ``python -m bench.bench_encoders runs/bench-*.json`` prints the overhead table.

One benchmark per method. The timed function is one optimizer step through the engine:
``contrasting.encoders.training.trainer.train_step``, the step ``pretrain`` takes (schedule → ``before_step`` →
``engine(views)`` → NaN check → ``engine.backward`` → ``engine.step``). Before each timed round, ``setup`` takes
one step of the plain loop (the reference: the same method module copied, its own optimizer of the same kind,
``loss.backward()``, ``optimizer.step()``, the same NaN check; ``torch.autocast`` for bf16) and times it itself, so both
implementations alternate round by round on the same machine state. Both start from identical weights
and read the same pre-built batches (no data loading in the loop).

``extra_info``: the engine's images/s (``throughput``), the plain loop's (``reference_throughput``), their
medians, and ``engine_overhead_pct`` = (median over rounds of engine time / plain time of the same round − 1)
× 100, with its range over rounds, and the same from the fastest round of each (``engine_overhead_pct_of_minima``,
the least disturbed); target ≤ 5 % on one device. The per-round ratio keeps the comparison honest on a shared
machine whose load changes between rounds (the medians alone can differ by 2× there).
Work unit: images per optimizer step (each image gives 2 views, or 2 + 4 small crops for SwAV).
"""

from __future__ import annotations

import copy
import json
import math
import statistics
import sys
import time

import pytest
import torch

from bench.harness import record, sync
from contrasting.encoders import build_backbone, build_method, resolve_config
from contrasting.encoders.training.data import synthetic_source
from contrasting.encoders.training.optim import apply_schedule, build_optimizer, make_schedule

METHODS = ("simclr", "mocov1", "mocov2", "swav", "supervised")
CPU_QUICK = dict(backbone="resnet18", small_stem=True, image_size=32, batch=32, precision="fp32")
GPU = dict(backbone="resnet50", small_stem=False, image_size=224, batch=64, precision="bf16")


def _config(method: str, size: dict):
    return resolve_config({"method": {"name": method, **({"num_classes": 10} if method == "supervised" else {})},
                           "backbone": {"name": size["backbone"], "small_stem": size["small_stem"]},
                           "train": {"batch_size": size["batch"], "precision": size["precision"]}})


def make_pair(method: str, device: str, size: dict):
    """(engine_step, plain_step): one optimizer step each, synchronised, on identical copies of one model."""
    from contrasting.encoders.distributed import setup_distributed  # imports DeepSpeed
    from contrasting.encoders.training.trainer import deepspeed_config, skip_single_rank_allreduce, train_step

    info = setup_distributed()
    import deepspeed

    config = _config(method, size)
    torch.manual_seed(0)
    online = build_method(method, build_backbone(config.backbone, config.backbone_options),
                          config.method_config()).to(device)
    plain = copy.deepcopy(online)
    online.on_train_start()
    plain.on_train_start()
    source = synthetic_source(method, image_size=size["image_size"], batch_size=size["batch"],
                              num_images=2 * size["batch"])
    batches = [([v.to(device) for v in views], labels.to(device)) for views, labels in source.epoch(0)]
    opt_cfg = config.optimizer_config()
    schedule = make_schedule(opt_cfg, global_batch=size["batch"], steps_per_epoch=100, total_steps=10_000)
    ds_opt, _ = build_optimizer(config.optimizer, online, config.optimizer_options, online.group_options())
    engine, ds_opt, _, _ = deepspeed.initialize(model=online, optimizer=ds_opt,
                                                config=deepspeed_config(config, 1, torch.device(device)))
    skip_single_rank_allreduce(engine, 1)
    ref_opt, _ = build_optimizer(config.optimizer, plain, config.optimizer_options, plain.group_options())
    autocast = size["precision"] == "bf16"
    state = {"engine": 0, "plain": 0}

    def set_plain(param, value):
        with torch.no_grad():
            param.copy_(value)

    def engine_step():
        s = state["engine"]
        train_step(engine, online, ds_opt, schedule, s, iter([batches[s % len(batches)]]), info)
        sync(device)
        state["engine"] += 1

    def plain_step():
        s = state["plain"]
        views, labels = batches[s % len(batches)]
        plain.step = s
        apply_schedule(ref_opt.param_groups, schedule, s)
        plain.before_step(set_plain)
        with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=autocast):
            loss = plain(views, labels)
        if not math.isfinite(loss.item()):
            raise RuntimeError("non-finite loss in the benchmark")
        ref_opt.zero_grad(set_to_none=True)
        loss.backward()
        ref_opt.step()
        sync(device)
        state["plain"] += 1

    return engine_step, plain_step


def _run(benchmark, method: str, device: str, size: dict, rounds: int):
    engine_step, plain_step = make_pair(method, device, size)
    if not benchmark.disabled:  # (--benchmark-disable: one untimed step of each, a smoke test)
        engine_step()  # warm-up of both (allocator, oneDNN/cuDNN algorithm choice, DeepSpeed's first step)
        plain_step()
    plain_times: list[float] = []

    def setup():
        start = time.perf_counter()
        plain_step()
        plain_times.append(time.perf_counter() - start)

    benchmark.pedantic(engine_step, setup=setup, rounds=rounds, warmup_rounds=0, iterations=1)
    if benchmark.disabled:
        return
    plain_median = statistics.median(plain_times)
    ratios = [e / p for e, p in zip(benchmark.stats.stats.data, plain_times, strict=True)]
    dtype = torch.bfloat16 if size["precision"] == "bf16" else torch.float32
    record(benchmark, device=device, dtype=dtype, work=size["batch"], work_unit="images", flops=None,
           peak_memory_mb=None, impl="deepspeed", entry=method, b=size["batch"], backbone=size["backbone"],
           image_size=size["image_size"], precision=size["precision"], reference_median_s=plain_median,
           reference_throughput=size["batch"] / plain_median,
           engine_overhead_pct=(statistics.median(ratios) - 1.0) * 100.0,
           engine_overhead_pct_range=[(min(ratios) - 1.0) * 100.0, (max(ratios) - 1.0) * 100.0],
           engine_overhead_pct_of_minima=(benchmark.stats.stats.min / min(plain_times) - 1.0) * 100.0)


@pytest.mark.parametrize("method", METHODS, ids=lambda m: f"quick-{m}")
def test_train_step_cpu(benchmark, method):
    """CPU quick config: ResNet-18 with the small-image stem, 32 px, batch 32, fp32."""
    _run(benchmark, method, "cpu", CPU_QUICK, rounds=7)


@pytest.mark.gpu
@pytest.mark.parametrize("method", METHODS)
def test_train_step_gpu_bf16(benchmark, method):
    """GPU config: ResNet-50, 224 px, batch 64, bf16 autocast (the study's encoders)."""
    _run(benchmark, method, "cuda", GPU, rounds=20)


def table(path: str) -> str:
    """Markdown table of the engine-vs-plain rows of a pytest-benchmark JSON file."""
    with open(path) as f:
        data = json.load(f)
    lines = ["| method | device | backbone | px | batch | engine img/s | plain img/s | overhead: paired median (range) "
             "| overhead: fastest rounds |", "|---|---|---|---|---|---|---|---|---|"]
    for bench in data["benchmarks"]:
        info = bench.get("extra_info") or {}
        if "engine_overhead_pct" not in info:
            continue
        low, high = info["engine_overhead_pct_range"]
        lines.append(f"| {info['entry']} | {info['device']} | {info['backbone']} | {info['image_size']} | "
                     f"{info['b']} | {info['throughput']:.1f} | {info['reference_throughput']:.1f} | "
                     f"{info['engine_overhead_pct']:+.1f} % ({low:+.0f} … {high:+.0f}) | "
                     f"{info['engine_overhead_pct_of_minima']:+.1f} % |")
    return "\n".join(lines)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(f"\n{arg}\n")
        print(table(arg))

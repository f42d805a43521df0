"""SwAV Sinkhorn and the full SwAV loss: fused (backend "auto") vs SwAV's eager reference.

Run: ``pytest bench/bench_sinkhorn.py --benchmark-only`` (``-m gpu`` for the GPU rows). The reference
(and on GPU its torch.compile) runs in the same session as the baseline; every row's ``extra_info``
carries throughput, GB/s, peak memory (MiB, inputs excluded; ``bench.harness``), device and versions.
``test_cpu_interleaved`` alternates fused and reference round by round and stores the speed-up: use it on
a shared machine, where load drifts between the separate rows (``OMP_NUM_THREADS=1`` also avoids the
OpenMP oversubscription stalls — ~12 ms per parallel op — that a loaded 2-core machine shows).

Cases (SwAV's ImageNet setting: K = 3000 prototypes, ε = 0.05, 3 iterations, T = 0.1):

* ``sinkhorn``: B = 4096 scores → Q, no autograd. Work = B·K elements.
* ``swav``: 2 + 6 views (2 large, 6 small crops) of B = 256 rows, assign views (0, 1), forward and
  backward. Work = 8·B samples.

Byte models (what an implementation must at least move, and what ours is designed to move):

    sinkhorn  compulsory: read the scores once, write Q once (fp32)        B·K·(s + 4)
              design (Triton): 2·iterations reads of the scores + Q write   B·K·(6s + 4)
    swav      compulsory: forward reads each view once, backward reads it and writes its gradient,
              plus the two Sinkhorns' compulsory bytes                      8·B·K·3s + 2·B·K·(s + 4)

with s the bytes per score. GB/s against the compulsory bytes is the figure to compare with the
measured copy bandwidth (``test_gpu_copy_bandwidth``): the issue's target is ≥ 40 % of it on an H100.
"""

from __future__ import annotations

import statistics
import time

import pytest
import torch
import torch.nn.functional as F

from bench.harness import peak_mb, record, select_impl, sync, time_step
from contrasting.losses import REFERENCES

CASE = "bench.bench_sinkhorn:make_step"
EPSILON, ITERATIONS, TEMPERATURE = 0.05, 3, 0.1


def _fn(op: str, impl: str):
    fused, reference = REFERENCES["sinkhorn" if op == "sinkhorn" else "swav_loss"]
    return select_impl(impl, fused, reference, key=f"sinkhorn:{op}")


def _cosine_scores(b: int, k: int, d: int, g: torch.Generator) -> torch.Tensor:
    """SwAV's scores: L2-normalised embeddings times L2-normalised prototypes, in [−1, 1]."""
    return F.normalize(torch.randn(b, d, generator=g), dim=1) @ F.normalize(torch.randn(k, d, generator=g), dim=1).T


def make_step(device: str, dtype: torch.dtype, *, op: str, impl: str, b: int, k: int, views: int = 1):
    """One synchronised call of ``op`` (sinkhorn: Q; swav: forward + backward) on fixed random inputs."""
    g = torch.Generator().manual_seed(0)
    fn = _fn(op, impl)
    if op == "sinkhorn":
        scores = _cosine_scores(b, k, 128, g).to(device, dtype)

        def step():
            fn(scores, epsilon=EPSILON, iterations=ITERATIONS)
            sync(device)

        return step
    leaves = [_cosine_scores(b, k, 128, g).to(device, dtype).requires_grad_(True) for _ in range(views)]

    def step():
        for v in leaves:
            v.grad = None
        loss = fn(leaves, temperature=TEMPERATURE, epsilon=EPSILON, sinkhorn_iterations=ITERATIONS,
                  assign_views=(0, 1))
        loss.backward()
        sync(device)

    return step


def byte_models(op: str, dtype: torch.dtype, b: int, k: int, views: int = 1) -> dict:
    s = torch.finfo(dtype).bits // 8
    if op == "sinkhorn":
        return dict(compulsory=b * k * (s + 4), design=b * k * (2 * ITERATIONS * s + 4))
    return dict(compulsory=views * b * k * 3 * s + 2 * b * k * (s + 4))


def _run(benchmark, device, dtype, impl, rounds, **size):
    if not time_step(benchmark, make_step(device, dtype, impl=impl, **size), device, rounds):
        return
    mem = peak_mb(CASE, device, dtype, impl=impl, **size)
    seconds = benchmark.stats.stats.median
    gbs = {f"{name}_gb_per_s": n / seconds / 1e9 for name, n in byte_models(dtype=dtype, **size).items()}
    if size["op"] == "sinkhorn":
        work, unit = size["b"] * size["k"], "elements"
    else:
        work, unit = size["views"] * size["b"], "samples"
    record(benchmark, device=device, dtype=dtype, work=work, work_unit=unit, flops=None, peak_memory_mb=mem,
           impl=impl, epsilon=EPSILON, iterations=ITERATIONS, **gbs, **size)


SINKHORN = dict(op="sinkhorn", b=4096, k=3000)
SWAV = dict(op="swav", b=256, k=3000, views=8)
CPU = [SINKHORN, SWAV]
GPU = [SINKHORN, SWAV, dict(SWAV, b=4096)]  # and a 4096-sample batch per view on GPU
ids = lambda s: "-".join(f"{k}{v}" if k != "op" else v for k, v in s.items())


@pytest.mark.parametrize("impl", ["fused", "reference"])
@pytest.mark.parametrize("size", CPU, ids=ids)
def test_cpu(benchmark, size, impl):
    _run(benchmark, "cpu", torch.float32, impl, rounds=7 if size["op"] == "sinkhorn" else 20, **size)


@pytest.mark.parametrize("size", CPU, ids=ids)
def test_cpu_interleaved(benchmark, size):
    """Fused timed by the benchmark, the reference timed in each round's (untimed) setup just before it:
    on a shared machine whose load drifts between tests, the ratio of these medians is the fair one."""
    fused = make_step("cpu", torch.float32, impl="fused", **size)
    reference = make_step("cpu", torch.float32, impl="reference", **size)
    fused()  # warm-up
    reference()
    ref_times = []

    def time_reference():
        start = time.perf_counter()
        reference()
        ref_times.append(time.perf_counter() - start)

    benchmark.pedantic(fused, setup=time_reference, rounds=7 if size["op"] == "sinkhorn" else 20, iterations=1)
    if benchmark.disabled:
        return
    ref_median = statistics.median(ref_times)
    work = size["b"] * size["k"] if size["op"] == "sinkhorn" else size["views"] * size["b"]
    record(benchmark, device="cpu", dtype=torch.float32, work=work,
           work_unit="elements" if size["op"] == "sinkhorn" else "samples", flops=None, peak_memory_mb=None,
           impl="fused", reference_median_s=ref_median,
           speedup_vs_reference=ref_median / benchmark.stats.stats.median, **size)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("impl", ["fused", "reference", "reference_compiled"])
@pytest.mark.parametrize("size", GPU, ids=ids)
def test_gpu(benchmark, size, impl, dtype):
    _run(benchmark, "cuda", dtype, impl, rounds=50, **size)


@pytest.mark.gpu
def test_gpu_copy_bandwidth(benchmark):
    """The measured device-to-device copy rate that the GB/s figures above are compared against."""
    src = torch.empty(1 << 28, device="cuda", dtype=torch.float32)  # 1 GiB
    dst = torch.empty_like(src)

    def step():
        dst.copy_(src)
        sync("cuda")

    step()
    benchmark.pedantic(step, rounds=20, warmup_rounds=2, iterations=1)
    if not benchmark.disabled:
        record(benchmark, device="cuda", dtype=torch.float32, work=2 * src.numel() * 4 / 1e9, work_unit="GB",
               flops=None, peak_memory_mb=None, bytes_moved=2 * src.numel() * 4)

"""InfoNCE family: fused (backend "auto") vs the materialised-logits reference, forward+backward.

Run: ``pytest bench/bench_infonce.py --benchmark-only`` (``-k quick`` for the quick CPU sizes,
``-m gpu`` for the GPU sizes). Every row's ``extra_info`` carries throughput (rows/s), TFLOP/s
from the FLOP model below, peak memory (MiB, inputs excluded), device and versions; the reference
(and on GPU its torch.compile) runs in the same session as the baseline.

FLOP model, forward+backward with recompute, R rows × M columns × D features:
    info_nce, clip_loss, nt_xent: 8·R·M·D   (S forward, S recomputed, dS·Y, dSᵀ·X)
    moco (keys and queue without gradient): 4·N·K·D   (S and P·Y in one pass)
"""

from __future__ import annotations

import pytest
import torch

from bench.harness import peak_mb, record, select_impl, sync, time_step
from contrasting.losses import REFERENCES

CASE = "bench.bench_infonce:make_step"
IMPLS = {"info_nce": REFERENCES["info_nce"], "moco": REFERENCES["info_nce"], "nt_xent": REFERENCES["nt_xent"],
         "clip": REFERENCES["clip_loss"]}


def _fn(entry: str, impl: str):
    return select_impl(impl, *IMPLS[entry], key=f"infonce:{entry}")


def make_step(device: str, dtype: torch.dtype, *, entry: str, impl: str, n: int, d: int, k: int = 0):
    """One synchronised forward+backward of ``entry`` on fixed random inputs."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, d, generator=g).to(device, dtype).requires_grad_(True)
    b = torch.randn(n, d, generator=g).to(device, dtype).requires_grad_(entry != "moco")
    queue = torch.randn(k, d, generator=g).to(device, dtype) if entry == "moco" else None
    fn = _fn(entry, impl)
    temperature = 0.5 if entry == "nt_xent" else 0.07

    def step():
        a.grad = None
        if entry == "moco":
            loss = fn(a, b, queue, temperature=temperature, in_batch_negatives=False)
        else:
            loss = fn(a, b, temperature=temperature)
        loss.backward()
        sync(device)

    return step


def flops(entry: str, n: int, d: int, k: int) -> float:
    if entry == "moco":
        return 4.0 * n * k * d
    rows = 2 * n if entry == "nt_xent" else n
    return 8.0 * rows * rows * d


def _run(benchmark, device, dtype, impl, rounds, **size):
    if not time_step(benchmark, make_step(device, dtype, impl=impl, **size), device, rounds):
        return
    mem = peak_mb(CASE, device, dtype, impl=impl, **size)
    rows = 2 * size["n"] if size["entry"] == "nt_xent" else size["n"]
    record(benchmark, device=device, dtype=dtype, work=rows, work_unit="rows",
           flops=flops(size["entry"], size["n"], size["d"], size.get("k", 0)), peak_memory_mb=mem, impl=impl,
           **size)


CPU_QUICK = [
    dict(entry="info_nce", n=2048, d=128),
    dict(entry="moco", n=512, d=128, k=8192),
    dict(entry="nt_xent", n=1024, d=128),
    dict(entry="clip", n=2048, d=128),
]
CPU_FULL = [dict(entry="info_nce", n=8192, d=128), dict(entry="clip", n=8192, d=128)]
GPU = [
    dict(entry="info_nce", n=32768, d=256),
    dict(entry="clip", n=32768, d=256),
    dict(entry="nt_xent", n=16384, d=256),
    dict(entry="moco", n=4096, d=128, k=65536),
]
ids = lambda s: "-".join(f"{k}{v}" if k != "entry" else v for k, v in s.items())


@pytest.mark.parametrize("impl", ["fused", "reference"])
@pytest.mark.parametrize("size", CPU_QUICK, ids=lambda s: "quick-" + ids(s))
def test_cpu_quick(benchmark, size, impl):
    _run(benchmark, "cpu", torch.float32, impl, rounds=3, **size)


@pytest.mark.parametrize("impl", ["fused", "reference"])
@pytest.mark.parametrize("size", CPU_FULL, ids=ids)
def test_cpu(benchmark, size, impl):
    _run(benchmark, "cpu", torch.float32, impl, rounds=3, **size)


@pytest.mark.gpu
@pytest.mark.parametrize("impl", ["fused", "reference", "reference_compiled"])
@pytest.mark.parametrize("size", GPU, ids=ids)
def test_gpu_bf16(benchmark, size, impl):
    _run(benchmark, "cuda", torch.bfloat16, impl, rounds=10, **size)


@pytest.mark.gpu
def test_gpu_bf16_matmul_rate(benchmark):
    """The measured bf16 matmul rate that the fused kernels' TFLOP/s are compared against."""
    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)

    def step():
        a @ b
        sync("cuda")

    step()
    benchmark.pedantic(step, rounds=20, warmup_rounds=2, iterations=1)
    if not benchmark.disabled:
        record(benchmark, device="cuda", dtype=torch.bfloat16, work=1, work_unit="matmuls",
               flops=2.0 * n**3, peak_memory_mb=None, n=n)

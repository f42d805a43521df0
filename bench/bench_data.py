"""Augmentation throughput: the DALI executor vs the torchvision DataLoader (the reference), same CPU threads.

Run: ``pytest bench/bench_data.py --benchmark-only`` (``-k quick`` for the CPU cases, ``-m gpu`` for the GPU
ones). The JPEGs are made by the benchmark itself (``N_IMAGES`` smooth colour images of 160–256 px, quality 90;
GPU cases: ImageNet-sized, 300–500 px, 256 distinct images written 8 times so that each of the 16 workers
gets batches). One round = one epoch over them. The timed
function is the DALI epoch; before every round, the ``setup`` hook runs one torchvision epoch over the same
plan and times it, so the two executors alternate and share the machine's load (the rows also record the
load average). ``extra_info`` (via ``bench.harness.record``):
``throughput`` = DALI images/s (median round), ``torchvision_images_per_s`` (median), ``speedup``,
``peak_memory_mb`` and ``memory_mb_per_epoch`` (GPU: the device's memory in use; CPU: this process's resident
set, read after each DALI epoch — a growing list is a leak), threads,
recipe and view sizes, GPU decoding's ``fancy_upsampling`` (exact chroma, the default, or nvJPEG's own),
DALI's photometric implementation ("numba": one compiled function per view, the CPU default; "torch":
batched torch kernels on DALI's output, the GPU default; "native": DALI operators) and hue model ("hsv":
torchvision-exact; "yiq": DALI's native ``fn.hsv``).

Targets (issue): CPU, 2 threads vs ``num_workers=2``, 96–128 px crops: DALI ≥ 2×; GPU (H100, 16 cores) vs a
16-worker loader at 224 px: ≥ 3×.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time

import numpy as np
import pytest
import torch
from PIL import Image

from bench.harness import record
from contrasting.data import FileListSource, get_recipe, make_loader, scan_source

N_IMAGES = 256
SIZE_RANGE = (160, 256)
GPU_SIZE_RANGE = (300, 500)  # ImageNet's train images average about 400 × 350 px


def make_jpegs(folder, n: int = N_IMAGES, seed: int = 0, size_range=SIZE_RANGE) -> list[str]:
    """``n`` JPEGs of random sizes in ``size_range``: smooth gradients plus noise (realistic file sizes)."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        h, w = (int(v) for v in rng.integers(size_range[0], size_range[1] + 1, size=2))
        yy, xx = np.mgrid[0:h, 0:w] / 40.0
        base = np.stack([np.sin(xx * (1 + c) + rng.random() * 6) * np.cos(yy * (1.5 - 0.3 * c)) for c in range(3)], -1)
        img = ((base * 0.5 + 0.5) * 200 + rng.normal(0, 12, (h, w, 3))).clip(0, 255).astype(np.uint8)
        path = os.path.join(folder, f"{i:04d}.jpg")
        Image.fromarray(img).save(path, quality=90)
        paths.append(path)
    return paths


def _catalog(tmp_path_factory, n: int, size_range=SIZE_RANGE, copies: int = 1):
    folder = tmp_path_factory.mktemp("bench_jpegs")
    paths = make_jpegs(str(folder), n, size_range=size_range)
    for c in range(1, copies):
        for p in paths[:n]:
            paths.append(shutil.copyfile(p, p.replace(".jpg", f"-{c}.jpg")))
    return scan_source(FileListSource.from_samples([(p, i % 10) for i, p in enumerate(paths)]))


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """The CPU cases' JPEGs (N_IMAGES), scanned once per module."""
    return _catalog(tmp_path_factory, N_IMAGES)


@pytest.fixture(scope="module")
def gpu_catalog(tmp_path_factory):
    """The GPU cases' JPEGs: GPU_BATCHES_PER_WORKER batches for each of the 16 torchvision workers, which take
    one batch each (256 images in batches of 128 would leave 14 of them idle)."""
    n = 16 * GPU_BATCHES_PER_WORKER * GPU_BATCH
    return _catalog(tmp_path_factory, N_IMAGES, GPU_SIZE_RANGE, copies=n // N_IMAGES)


_torchvision: dict = {}


def _epoch(loader) -> int:
    return sum(len(b.indices) for b in loader)


def memory_in_use_mb(device: str) -> float:
    """MiB in use: on the GPU the whole device's (total − free, so DALI's own pools count), on the CPU this
    process's resident set (DALI's CPU pipeline runs in it; torchvision's workers are other processes)."""
    if device == "gpu":
        free, total = torch.cuda.mem_get_info()
        return (total - free) / 2**20
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _run(benchmark, catalog, *, recipe, kw, device: str, threads: int, batch_size: int, hue: str, rounds: int,
         photometric: str = "auto", **dali_kw):
    key = (recipe.name, tuple(v.size for v in recipe.views), threads, batch_size)
    if key not in _torchvision:
        _torchvision[key] = make_loader(recipe, catalog, batch_size, backend="torchvision", num_workers=threads)
    ref = _torchvision[key]
    dali = make_loader(recipe, catalog, batch_size, backend="dali", device=device, num_threads=threads, hue=hue,
                       photometric=photometric, **dali_kw)
    _epoch(dali), _epoch(ref)  # warm-up: pipeline build, worker start-up, page cache
    ref_rates, loads, memory = [], [os.getloadavg()[0]], []

    def setup():
        memory.append(memory_in_use_mb(device))  # after the previous DALI epoch
        t0 = time.perf_counter()
        n = _epoch(ref)
        ref_rates.append(n / (time.perf_counter() - t0))

    def step():
        _epoch(dali)
        if device == "gpu":
            torch.cuda.synchronize()

    benchmark.pedantic(step, setup=setup, rounds=rounds, warmup_rounds=0, iterations=1)
    loads.append(os.getloadavg()[0])
    memory.append(memory_in_use_mb(device))
    if benchmark.disabled:
        return
    n = len(catalog)
    tv = statistics.median(ref_rates)
    record(benchmark, device="cuda" if device == "gpu" else "cpu", dtype=torch.float32, work=n, work_unit="images",
           flops=None, peak_memory_mb=max(memory), memory_mb_per_epoch=memory,
           memory_growth_mb=memory[-1] - memory[0], recipe=recipe.name,
           view_sizes=[v.size for v in recipe.expanded_views()],
           executor=f"dali-{device}", hue=hue, photometric=dali.photometric, threads=threads, batch_size=batch_size,
           fancy_upsampling=dali.fancy_upsampling, image_sizes=list(catalog_sizes(catalog)),
           torchvision_images_per_s=tv, speedup=(n / benchmark.stats.stats.median) / tv,
           load_average=loads, cpu_count=os.cpu_count(), **kw)


def catalog_sizes(catalog) -> tuple[int, int]:
    """(smallest, largest) image side of ``catalog``."""
    return int(catalog.sizes.min()), int(catalog.sizes.max())


CPU_QUICK = [
    ("simclr", dict(size=96)),
    ("simclr", dict(size=128)),
    ("swav", dict(global_size=128, local_size=64)),
]
ids = lambda c: f"{c[0]}-" + "-".join(str(v) for v in c[1].values())


# DALI's photometric implementation × hue model: the default CPU executor (Numba, exact), batched torch ops
# (the GPU default), the native DALI operators with the exact hue, and with DALI's own YIQ hue
VARIANTS = {"numba": ("numba", "hsv"), "torch": ("torch", "hsv"), "native-hsv": ("native", "hsv"),
            "native-yiq": ("native", "yiq")}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("case", CPU_QUICK, ids=lambda c: "quick-" + ids(c))
def test_cpu_quick(benchmark, catalog, case, variant):
    """DALI CPU (2 threads) vs torchvision (2 workers), 96–128 px crops."""
    name, kw = case
    photometric, hue = VARIANTS[variant]
    _run(benchmark, catalog, recipe=get_recipe(name, **kw), kw=kw, device="cpu", threads=2, batch_size=64, hue=hue,
         rounds=5, photometric=photometric)


GPU = [("simclr", dict(size=224)), ("swav", dict(global_size=224, local_size=96))]
GPU_BATCH = 64
GPU_BATCHES_PER_WORKER = 2


# GPU variants: the default (exact chroma upsampling, batched torch photometric ops), nvJPEG's own chroma
# upsampling, and DALI's native photometric operators
GPU_VARIANTS = {"exact": dict(fancy_upsampling=True), "nvjpeg": dict(fancy_upsampling=False),
                "native-ops": dict(photometric="native")}


@pytest.mark.gpu
@pytest.mark.parametrize("variant", list(GPU_VARIANTS))
@pytest.mark.parametrize("case", GPU, ids=ids)
def test_gpu(benchmark, gpu_catalog, case, variant):
    """DALI GPU (mixed decoding, 16 threads) vs torchvision (16 workers), 224 px."""
    name, kw = case
    _run(benchmark, gpu_catalog, recipe=get_recipe(name, **kw), kw=kw, device="gpu", threads=16,
         batch_size=GPU_BATCH, hue="hsv", rounds=3, **GPU_VARIANTS[variant])

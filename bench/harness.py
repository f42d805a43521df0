"""One benchmark harness for every op: setup factories, synchronised steps, peak memory, one results schema.

A *case* is a function ``make(device, dtype, **size) -> step`` where ``step()`` runs one forward+backward
and synchronises the device. The same factory serves the timing (pytest-benchmark) and the memory
measurement, so both look at identical work:

* CUDA: peak = max_memory_allocated after reset, minus the memory held by the inputs.
* CPU: PyTorch has no CPU allocator statistics, so the step runs in a fresh subprocess: the kernel's
  resident-set high-water mark is reset (``/proc/self/clear_refs``), one step runs, and the peak is
  VmHWM − VmRSS-before. A warm-up step at a tiny size first pays the one-time costs (thread pools,
  autograd engine), which are not the op's memory.
"""

from __future__ import annotations

import importlib
import json
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def sync(device: str) -> None:
    """Wait for queued GPU work, so that wall-clock timings cover the kernels themselves."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def environment(device: str) -> dict:
    """Versions and machine, stored with every benchmark row."""
    import triton  # optional on CPU-only installs

    return {
        "device": device_name(device),
        "torch": torch.__version__,
        "triton": getattr(triton, "__version__", "?"),
        "python": platform.python_version(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


_COMPILED: dict = {}


def select_impl(impl: str, fused, reference, key: str):
    """The callable a benchmark row times: "fused", "reference", or "reference_compiled" (torch.compile of
    the reference, compiled once per ``key`` and process)."""
    if impl == "fused":
        return fused
    if impl == "reference":
        return reference
    if impl == "reference_compiled":
        return _COMPILED.setdefault(key, torch.compile(reference))
    raise ValueError(f"impl: expected fused, reference or reference_compiled, got {impl!r}")


def _resolve(case: str):
    module, name = case.rsplit(":", 1)
    return getattr(importlib.import_module(module), name)


def cuda_peak_mb(make, device: str, dtype: torch.dtype, **size) -> float:
    """Extra CUDA memory at the peak of one step (inputs excluded)."""
    step = make(device, dtype, **size)
    step()
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def cpu_peak_mb(case: str, dtype: torch.dtype, **size) -> float:
    """Growth of the resident high-water mark over one CPU step, measured in a fresh process (MiB)."""
    args = json.dumps({"case": case, "dtype": str(dtype).replace("torch.", ""), "size": size})
    out = subprocess.run([sys.executable, "-m", "bench.harness", args], cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=900)
    return float(out.stdout.strip().splitlines()[-1])


def peak_mb(case: str, device: str, dtype: torch.dtype, **size) -> float:
    if device.startswith("cuda"):
        return cuda_peak_mb(_resolve(case), device, dtype, **size)
    return cpu_peak_mb(case, dtype, **size)


def _probe(spec: str) -> None:
    cfg = json.loads(spec)
    make, dtype = _resolve(cfg["case"]), getattr(torch, cfg["dtype"])
    tiny = {k: min(v, 16) if isinstance(v, int) else v for k, v in cfg["size"].items()}
    make("cpu", dtype, **tiny)()
    step = make("cpu", dtype, **cfg["size"])
    before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    step()
    print((_status_kib("VmHWM") - before) / 1024)


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status: CPU peak memory needs Linux")


def time_step(benchmark, step, device: str, rounds: int) -> bool:
    """Warm ``step`` up once (compilation for torch.compile / Triton), then time ``rounds`` calls of it (one warm-up
    round on a GPU). Returns False when benchmarks are disabled (nothing to record)."""
    step()
    benchmark.pedantic(step, rounds=rounds, warmup_rounds=1 if device == "cuda" else 0, iterations=1)
    return not benchmark.disabled


def record(benchmark, *, device: str, dtype: torch.dtype, work: float, work_unit: str, flops: float | None,
           peak_memory_mb: float | None, **extra) -> None:
    """Fill ``benchmark.extra_info`` with the results schema shared by all suites (after timing)."""
    seconds = benchmark.stats.stats.median
    info = environment(device)
    info.update(dtype=str(dtype).replace("torch.", ""), median_s=seconds,
                throughput=work / seconds, throughput_unit=f"{work_unit}/s",
                peak_memory_mb=peak_memory_mb, **extra)
    if flops is not None:
        info["tflops"] = flops / seconds / 1e12
    benchmark.extra_info.update(info)


if __name__ == "__main__":
    _probe(sys.argv[1])

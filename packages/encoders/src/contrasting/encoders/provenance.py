"""What produced a number: the one record of the software and machine stored with every run and every result.

``environment()`` returns a flat ``{str: str}``:

* ``python``, ``platform``, ``machine``, ``cpu`` (the CPU model), ``cpu_count`` (logical CPUs this process may use);
* ``torch_threads`` / ``torch_interop_threads`` (when torch is loaded) and the thread variables of the
  environment that change numerics (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``)
  when set;
* ``gpu`` (every visible CUDA device's name, ``;``-separated) and ``cuda`` when torch is loaded and sees one;
* the version of every distribution whose code can change a result (the four contrasting packages, torch,
  torchvision, triton, nvidia-dali, deepspeed, numpy, scipy), ``absent`` when not installed;
* ``git``: the commit of this checkout, when it is one.

The static part is computed once per process; thread counts are read at each call (a worker may change them).
Two results whose records differ in ``cpu``, ``gpu``, a thread count or a version may differ in their last
bits (a float reduction's order); ``bench/results/2026-12-04-cpu.md`` measures by how much on the demo.
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PROJECT_DISTRIBUTIONS = ("contrasting-losses", "contrasting-data", "contrasting-encoders", "contrasting-eval")
DISTRIBUTIONS = PROJECT_DISTRIBUTIONS + ("torch", "torchvision", "triton", "nvidia-dali-cuda130", "deepspeed", "numpy",
                                         "scipy")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_STATIC: dict[str, str] | None = None


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else ``platform.processor()``, else ``unknown``."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def installed_version(dist: str) -> str:
    """The installed version of distribution ``dist`` (``importlib.metadata``), or ``""`` when it is not installed."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""


def git_commit() -> str:
    """The commit of the checkout this file lives in, or ``""`` when it is not one (an installed wheel)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _static() -> dict[str, str]:
    global _STATIC
    if _STATIC is None:
        usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        record = {"python": platform.python_version(), "platform": platform.platform(),
                  "machine": platform.machine(), "cpu": cpu_model(), "cpu_count": str(usable)}
        record.update({dist: installed_version(dist) or "absent" for dist in DISTRIBUTIONS})
        commit = git_commit()
        if commit:
            record["git"] = commit
        _STATIC = record
    return dict(_STATIC)


def _torch_record() -> dict[str, str]:
    torch = sys.modules.get("torch")
    if torch is None:
        return {}
    record = {"torch_threads": str(torch.get_num_threads()),
              "torch_interop_threads": str(torch.get_num_interop_threads())}
    cuda = getattr(torch, "cuda", None)
    if cuda is not None and cuda.is_initialized():  # never initialise CUDA just to describe it
        record["gpu"] = ";".join(cuda.get_device_name(i) for i in range(cuda.device_count()))
        record["cuda"] = str(torch.version.cuda)
    return record


def environment() -> dict[str, str]:
    """The provenance record described in the module docstring."""
    record = _static()
    record.update({name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ})
    record.update(_torch_record())
    return record

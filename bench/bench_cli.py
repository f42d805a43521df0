"""Start-up of the ``contrasting`` command line: ``contrasting --help`` against bare ``python -c "import sys"``, in
the same run.

Run: ``pytest bench/bench_cli.py --benchmark-only``. One round = one process of each (the interpreter's own
start-up is the baseline, timed in ``setup`` before every round); ``extra_info``: ``throughput`` (starts/s),
``wall_s`` and ``baseline_wall_s`` (medians), ``peak_memory_mb`` and ``baseline_peak_memory_mb`` (the child's
maximum resident set, from ``wait4``). Target (issue "Fits its users' habits"): ≤ 1.0 s and ≤ 200 MB on the
2-core machine, for ``--help`` and every ``<command> --help``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import pytest
import torch

from bench.harness import record

COMMANDS = ["--help", "pretrain --help", "eval --help", "report --help", "demo --help", "grid --help"]


# The child reports its own peak resident set (VmHWM of its address space) at exit: the rusage of a child forked
# from this large process would report this process's peak (Linux carries it across fork + exec).
PEAK = ("import atexit, sys\n"
        "def _peak():\n"
        "    with open('/proc/self/status') as f:\n"
        "        kb = next(int(l.split()[1]) for l in f if l.startswith('VmHWM'))\n"
        "    sys.stderr.write(f'PEAK_KB {kb}\\n')\n"
        "atexit.register(_peak)\n")


def run_child(code: str) -> tuple[float, float]:
    """(wall seconds, peak resident MiB) of ``python -c code`` with the peak reporter prepended."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PEAK + code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{code!r} exited with {done.returncode}: {done.stderr[-500:]}")
    return wall, int(done.stderr.rsplit("PEAK_KB", 1)[1].split()[0]) / 1024


@pytest.mark.parametrize("command", COMMANDS)
def test_cli_startup(benchmark, command):
    cli = ("import sys\nfrom contrasting.encoders.cli import main\ntry:\n    main(" + repr(command.split()) + ")\n"
           "except SystemExit:\n    pass\n")
    bare = "import sys\n"
    base, peaks = [], []

    def setup():
        base.append(run_child(bare))

    def start():
        peaks.append(run_child(cli)[1])

    run_child(cli)  # warm the page cache
    benchmark.pedantic(start, setup=setup, rounds=5, warmup_rounds=0, iterations=1)
    if benchmark.disabled:
        return
    record(benchmark, device="cpu", dtype=torch.float32, work=1, work_unit="starts", flops=None,
           peak_memory_mb=max(peaks), command=f"contrasting {command}", wall_s=benchmark.stats.stats.median,
           baseline_wall_s=statistics.median(w for w, _ in base),
           baseline_peak_memory_mb=max(m for _, m in base))

"""Worker processes for ``torch.utils.data.DataLoader``: started by a fork server, never forked from the caller.

Why. ``fork()`` copies a process's memory but only the calling thread. A process that holds thread pools
(DALI pipelines, OpenMP/oneDNN, Numba, the Triton interpreter) leaves objects behind whose other threads do
not exist in the child. Measured here (2026-12-03, ``pytest bench/ --benchmark-only``, core dump of the dead
worker): a DALI ``Pipeline`` that had become cyclic garbage in the parent was finalised by the garbage
collector *inside* a forked torchvision worker; its ``Shutdown()`` joined executor threads that do not exist
after the fork (``std::thread::join`` → ``pthread_clockjoin_ex``) and the worker died of SIGSEGV — only when a
collection happened to run in the worker, hence one failed run in two.

``worker_context()`` is the ``multiprocessing_context`` to give every DataLoader of the project: the
``forkserver`` start method, whose server is a fresh interpreter (started once per process, with
``PRELOAD`` imported so that each worker starts in milliseconds) and forks workers from its own single
thread. ``describe_worker_death`` turns a dead worker into one line: which worker, which batches and sample
indices it held, and the signal or exit code.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
from collections.abc import Callable, Sequence

START_METHOD = "forkserver" if sys.platform.startswith("linux") else "spawn"
# Imported once by the fork server, so that each worker begins with torch, torchvision and the executor loaded.
PRELOAD = ["torch", "torchvision", "contrasting.data.executors.torchvision_backend"]


def worker_context(start_method: str | None = None) -> multiprocessing.context.BaseContext:
    """The multiprocessing context for DataLoader workers: ``start_method`` ("forkserver", "spawn" or "fork";
    default ``START_METHOD``). "fork" is accepted for callers that know their process holds no threads."""
    method = START_METHOD if start_method is None else start_method
    if method not in multiprocessing.get_all_start_methods():
        raise ValueError(f"start_method: expected one of {multiprocessing.get_all_start_methods()}, got {method!r}")
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(PRELOAD)  # takes effect when the server starts (the first worker of the process)
    return ctx


class WorkerDiedError(RuntimeError):
    """A DataLoader worker process died (signal or non-zero exit); the message names the worker, the batches and
    sample indices it held, and how it ended."""


def describe_exit(exitcode: int | None) -> str:
    """How a child process ended, from its ``exitcode``: "still running", "killed by signal SIGKILL", "exit code 1"."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            return f"killed by signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


def describe_worker_death(iterator, sample_indices: Callable[[int], Sequence[int]], limit: int = 12) -> str | None:
    """One line naming each dead worker of a ``_MultiProcessingDataLoaderIter``: its id and pid, how it ended,
    the epoch positions of the batches it held (tasks sent and not returned) and their sample indices
    (``sample_indices(position)``). None when no worker is dead (the error was something else)."""
    workers = getattr(iterator, "_workers", None) or []
    task_info = getattr(iterator, "_task_info", {}) or {}
    parts = []
    for wid, w in enumerate(workers):
        if w.is_alive():
            continue
        held = sorted(idx for idx, info in task_info.items() if len(info) == 1 and info[0] == wid)
        samples = [int(s) for idx in held for s in sample_indices(idx)]
        shown = ", ".join(map(str, samples[:limit])) + (f", … ({len(samples)} in all)" if len(samples) > limit else "")
        parts.append(f"worker {wid} (pid {w.pid}) {describe_exit(w.exitcode)} while holding batch(es) {held or 'none'}"
                     f"{f' with sample indices [{shown}]' if samples else ''}")
    return "; ".join(parts) or None


def dataloader_kwargs(num_workers: int, start_method: str | None = None) -> dict:
    """``DataLoader`` keyword arguments for ``num_workers`` worker processes started by ``worker_context``
    and kept across epochs (nothing extra for 0: the data is loaded in this process)."""
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers: expected an int >= 0, got {num_workers!r}")
    if num_workers == 0:
        return {"num_workers": 0}
    return {"num_workers": num_workers, "multiprocessing_context": worker_context(start_method),
            "persistent_workers": True}

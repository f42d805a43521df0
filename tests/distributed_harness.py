"""Run a function in N gloo processes on loopback and collect what each returns (for equality tests).

    results = run_on_ranks(fn, world_size=2, args=(...))   # fn(rank, world_size, *args) -> picklable

Each worker initialises torch.distributed (gloo, 127.0.0.1, a free port), runs ``fn`` and sends its
result back (serialised with torch.save); an exception in any worker is re-raised here with the worker's traceback.
"""

from __future__ import annotations

import io
import os
import socket
import traceback

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world_size, port, fn, args, queue):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    try:
        dist.init_process_group("gloo", rank=rank, world_size=world_size)
        buffer = io.BytesIO()
        torch.save(fn(rank, world_size, *args), buffer)  # bytes, not shared-memory tensors that die with us
        queue.put((rank, "ok", buffer.getvalue()))
    except BaseException:  # forwarded to the parent with its traceback
        queue.put((rank, "error", traceback.format_exc()))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def run_on_ranks(fn, world_size: int = 2, args: tuple = (), timeout: float = 300.0) -> list:
    """fn(rank, world_size, *args) in ``world_size`` processes; returns the results ordered by rank."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_worker, args=(r, world_size, port, fn, args, queue)) for r in range(world_size)]
    for p in procs:
        p.start()
    results = {}
    try:
        for _ in range(world_size):
            rank, status, payload = queue.get(timeout=timeout)
            if status == "error":
                raise RuntimeError(f"rank {rank} failed:\n{payload}")
            results[rank] = torch.load(io.BytesIO(payload), weights_only=False)
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    return [results[r] for r in range(world_size)]

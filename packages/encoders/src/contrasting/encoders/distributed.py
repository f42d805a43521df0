"""Process setup for DeepSpeed: one process with no launcher, or many under ``deepspeed``/``torchrun``.

* Launched (``RANK`` and ``WORLD_SIZE`` set by ``deepspeed``, ``torchrun`` or a test harness): the
  environment is used as is.
* Not launched: this process is rank 0 of 1 — ``RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1
  MASTER_PORT=<a free port>`` are set here, otherwise DeepSpeed falls back to MPI discovery (mpi4py). They
  stay in ``os.environ``, so child processes inherit them; ``SELF_SET`` marks them as ours, and a child
  that calls ``setup_distributed`` takes a fresh port instead of its parent's.
* No CUDA device: ``DS_ACCELERATOR=cpu`` (DeepSpeed's CPU accelerator: gloo, or oneCCL when installed).

Both must happen before ``deepspeed`` picks its accelerator, i.e. before ``deepspeed.accelerator`` is first
used in the process; ``setup_distributed`` does them first.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """This process's place: global rank, world size, local rank, its device and whether a launcher started it."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    launched: bool

    @property
    def is_main(self) -> bool:
        """True on global rank 0 (which writes logs, exports and commits checkpoints)."""
        return self.rank == 0

    @property
    def process_group(self):
        """The group whose ranks share negatives (``dist.group.WORLD``), None for a single process."""
        return dist.group.WORLD if self.world_size > 1 else None


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SELF_SET = "CONTRASTING_SINGLE_PROCESS"
"""Set to "<pid>:<port>" when this package wrote RANK/WORLD_SIZE/MASTER_PORT itself (single process)."""


def launched_by_launcher() -> bool:
    """True when RANK and WORLD_SIZE come from a launcher (deepspeed, torchrun, a test harness).

    Variables this package set itself for a single process (``SELF_SET`` names their port) do not count:
    a child process inherits them, and must not take itself for rank 0 of its parent's group.
    """
    env = os.environ
    if "RANK" not in env or "WORLD_SIZE" not in env:
        return False
    _, _, port = env.get(SELF_SET, "").partition(":")
    return not (port and port == env.get("MASTER_PORT") and env["RANK"] == "0" and env["WORLD_SIZE"] == "1")


def _skip_shm_comm_build() -> None:
    # DeepSpeed 0.19.8 (deepspeed/comm/torch.py, TorchBackend.__init__) JIT-compiles its shared-memory
    # comm op whenever the CPU accelerator starts a backend: ~2.5 min on 2 cores on the first run of a
    # machine. The op only serves ``inference_all_reduce``, which training never calls (its all_reduce goes
    # to torch.distributed). Marking it incompatible (the dict that deepspeed.ops documents as editable)
    # skips the build. Remove when DeepSpeed builds the op lazily (checked 2026-11 on 0.19.8).
    import deepspeed.ops  # only after DS_ACCELERATOR is settled

    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False


def setup_distributed() -> DistInfo:
    """Set the single-process environment when needed (module docstring), start DeepSpeed's comm backend
    (idempotent) and return this process's ``DistInfo``. On CUDA, the local rank's device becomes current."""
    launched = launched_by_launcher()
    mine = os.environ.get(SELF_SET, "").partition(":")[0] == str(os.getpid())
    if not launched and not mine:
        # First call in this process: a port of our own (a parent's, inherited, is in use by the parent).
        inherited = SELF_SET in os.environ
        port = str(free_port()) if inherited or "MASTER_PORT" not in os.environ else os.environ["MASTER_PORT"]
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_PORT=port,
                          MASTER_ADDR="127.0.0.1" if inherited else os.environ.get("MASTER_ADDR", "127.0.0.1"))
        os.environ[SELF_SET] = f"{os.getpid()}:{port}"
    os.environ.setdefault("LOCAL_RANK", "0")
    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    import deepspeed  # the environment above must be set before DeepSpeed reads it
    from deepspeed.accelerator import get_accelerator

    accelerator = get_accelerator()
    if accelerator.device_name() == "cpu":
        _skip_shm_comm_build()
    deepspeed.init_distributed(dist_backend=accelerator.communication_backend_name(), verbose=False)
    local_rank = int(os.environ["LOCAL_RANK"])
    if accelerator.device_name() == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, device, launched)


def barrier(info: DistInfo) -> None:
    """A barrier across all ranks (nothing for a single process)."""
    if info.world_size > 1:
        dist.barrier()

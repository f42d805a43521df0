"""Epoch plans: which samples each shard reads in which batch, and the last-batch policy.

One plan serves both executors, so for the same (seed, epoch, shard) they read the same batches. With N
usable samples, S = ``num_shards`` shards and batch size B, epoch e is planned as::

    order = permutation(N) seeded by (seed, e)        (arange(N) when shuffle=False)
    "partial": order padded (wrapping to its start) to a multiple of S;  shard s reads order[s::S]
               in batches of B, the last one smaller. S = 1: every sample exactly once.
    "pad":     order padded (wrapping) to a multiple of S·B: every shard reads ⌈N/(S·B)⌉ full batches.
    "drop":    order truncated to a multiple of S·B: ⌊N/(S·B)⌋ full batches; the rest is dropped
               (different samples each epoch when shuffling).

      shard 0: order[0], order[S],   order[2S], ...   ─┐
      shard 1: order[1], order[S+1], ...                ├─ every shard the same number of batches, so
      ...                                              ─┘  collective ops in the training step never hang

Each epoch's ``EpochReport`` counts what was padded, dropped and skipped (unreadable files).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LAST_BATCH = ("partial", "pad", "drop")


@dataclass
class EpochReport:
    """What one shard read in one epoch: batches and samples yielded, padding, drops, skipped files."""

    epoch: int
    shard_id: int
    num_shards: int
    batches: int
    samples: int
    padded: int
    dropped: int
    skipped: int
    skipped_paths: list[str] = field(default_factory=list)
    complete: bool = False


def check_sharding(shard_id: int, num_shards: int) -> None:
    """0 <= shard_id < num_shards, both ints."""
    for name, v in (("shard_id", shard_id), ("num_shards", num_shards)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name}: expected an int, got {type(v).__name__}")
    if num_shards < 1 or not 0 <= shard_id < num_shards:
        raise ValueError(f"shard_id/num_shards: expected 0 <= shard_id < num_shards, got {shard_id}/{num_shards}")


def plan_epoch(n: int, batch_size: int, *, epoch: int, seed: int, shuffle: bool = True, shard_id: int = 0,
               num_shards: int = 1, last_batch: str = "partial") -> tuple[list[np.ndarray], int, int]:
    """Batches (arrays of catalog rows) of one shard for one epoch, and the global (padded, dropped) counts."""
    if last_batch not in LAST_BATCH:
        raise ValueError(f"last_batch: expected one of {LAST_BATCH}, got {last_batch!r}")
    check_sharding(shard_id, num_shards)
    if n < 1:
        raise ValueError("plan_epoch: no samples")
    order = np.random.default_rng([int(seed), int(epoch)]).permutation(n) if shuffle else np.arange(n)
    unit = num_shards if last_batch == "partial" else num_shards * batch_size
    if last_batch == "drop":
        total = (n // unit) * unit
        if total == 0:
            raise ValueError(f"last_batch='drop': {n} samples are fewer than one batch per shard "
                             f"({batch_size} x {num_shards}); every batch would be dropped")
    else:
        total = -(-n // unit) * unit
    padded, dropped = max(0, total - n), max(0, n - total)
    order = np.resize(order, total) if total > n else order[:total]
    mine = order[shard_id::num_shards]
    batches = [mine[i:i + batch_size] for i in range(0, len(mine), batch_size)]
    return batches, padded, dropped

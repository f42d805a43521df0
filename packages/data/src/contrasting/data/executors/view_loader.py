"""The executor-independent half of a loader: ``Batch`` and ``ViewLoader``'s epoch logic (scan, plan,
per-batch parameters, epoch reports). The executors (``loader.TorchvisionLoader``, ``dali_backend.DALILoader``)
subclass ``ViewLoader`` and implement ``_execute``; ``loader.make_loader`` picks one."""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ..params import ViewParams, batch_rng, sample_batch
from ..plan import EpochReport, check_sharding, plan_epoch
from ..recipes import Recipe, get_recipe
from ..sources import ArraySource, Catalog, PairListSource, scan_source


@dataclass
class Batch:
    """One batch of augmented views (see the module docstring for shapes and devices)."""

    views: list[torch.Tensor]
    labels: torch.Tensor | None
    targets: list[torch.Tensor] | None
    indices: torch.Tensor


def _check_target(recipe: Recipe, catalog: Catalog) -> None:
    kind, src = recipe.target, catalog.source
    if kind is None:
        return
    if isinstance(src, PairListSource):
        if kind == "flow":
            raise ValueError("recipe target 'flow': PairListSource holds PNG masks/depth; use ArraySource(targets=)")
        if kind == "mask" and catalog.target_dtype != np.uint8:
            raise ValueError(f"recipe target 'mask' needs 8-bit PNG targets, got {catalog.target_dtype}")
        return
    if isinstance(src, ArraySource) and src.targets is not None:
        is_flow = src.targets.ndim == 4
        if (kind == "flow") != is_flow or (kind == "mask" and src.targets.dtype != np.uint8):
            raise ValueError(f"recipe target {kind!r} does not match ArraySource targets "
                             f"{src.targets.dtype} {src.targets.shape}")
        return
    raise ValueError(f"recipe {recipe.name!r} has target {kind!r}: expected a PairListSource or an ArraySource "
                     f"with targets, got {type(src).__name__}")


class ViewLoader:
    """Shared epoch logic; subclasses implement ``_execute(tasks)`` (yielding Batch objects in task order).

    Arguments: ``recipe`` (a Recipe or a registered name), ``source`` (a source, or a Catalog already scanned
    under its own ``on_error`` policy),
    ``batch_size``; ``seed``, ``shuffle``; ``shard_id``/``num_shards`` and ``last_batch`` ("partial", "pad",
    "drop"; see ``plan.py``); ``on_error`` ("raise" or "skip") and ``check`` ("header" or "full") for the
    file scan. Iterating starts the next epoch (0, 1, ...; ``set_epoch`` overrides, as
    ``DistributedSampler.set_epoch``); after a complete epoch ``last_report`` holds its EpochReport and a
    warning names the number of skipped files, if any.
    """

    backend = "?"

    def __init__(self, recipe: Recipe | str, source, batch_size: int, *, seed: int = 0, shuffle: bool = True,
                 shard_id: int = 0, num_shards: int = 1, last_batch: str = "partial", on_error: str = "raise",
                 check: str = "header", scan_threads: int = 8):
        self.recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
        if not isinstance(self.recipe, Recipe):
            raise TypeError(f"recipe: expected a Recipe or a registered name, got {type(recipe).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed: expected an int >= 0, got {seed!r}")
        check_sharding(shard_id, num_shards)
        self.catalog = source if isinstance(source, Catalog) else scan_source(
            source, check=check, on_error=on_error, num_threads=scan_threads)
        _check_target(self.recipe, self.catalog)
        self.batch_size, self.seed, self.shuffle = batch_size, int(seed), bool(shuffle)
        self.shard_id, self.num_shards, self.last_batch = shard_id, num_shards, last_batch
        self._next_epoch = 0
        self.last_report: EpochReport | None = None
        self._batches_per_epoch = len(plan_epoch(len(self.catalog), batch_size, epoch=0, seed=self.seed,
                                                 shuffle=False, shard_id=shard_id, num_shards=num_shards,
                                                 last_batch=last_batch)[0])

    def __len__(self) -> int:
        """Batches per epoch of this shard (the same every epoch)."""
        return self._batches_per_epoch

    def set_epoch(self, epoch: int) -> None:
        """The next iteration runs epoch ``epoch`` (its order and parameters are a function of seed and epoch)."""
        self._next_epoch = int(epoch)

    def tasks(self, epoch: int) -> list[tuple[np.ndarray, list[ViewParams]]]:
        """The (catalog rows, per-view parameters) of every batch this shard reads in ``epoch``."""
        batches, _, _ = self._plan(epoch)
        out = []
        for b, rows in enumerate(batches):
            rng = batch_rng(self.seed, epoch, self.shard_id, b)
            out.append((rows, sample_batch(self.recipe, self.catalog.sizes[rows], rng)))
        return out

    def _plan(self, epoch: int):
        return plan_epoch(len(self.catalog), self.batch_size, epoch=epoch, seed=self.seed, shuffle=self.shuffle,
                          shard_id=self.shard_id, num_shards=self.num_shards, last_batch=self.last_batch)

    def __iter__(self):
        epoch = self._next_epoch
        self._next_epoch += 1
        _, padded, dropped = self._plan(epoch)
        tasks = self.tasks(epoch)
        rejected = self.catalog.rejected
        report = EpochReport(epoch, self.shard_id, self.num_shards, 0, 0, padded, dropped, len(rejected),
                             [p for p, _ in rejected])
        for batch in self._execute(tasks):
            report.batches += 1
            report.samples += len(batch.indices)
            yield batch
        report.complete = True
        self.last_report = report
        if rejected:
            warnings.warn(f"epoch {epoch}: skipped {len(rejected)} unreadable file(s) (on_error='skip'), e.g. "
                          f"{rejected[0][0]}: {rejected[0][1]}; see loader.last_report", stacklevel=2)

    def _execute(self, tasks):
        raise NotImplementedError

"""Loaders: one epoch logic (scan, plan, parameters, reports) and two executors behind ``make_loader``.

``make_loader(recipe, source, batch_size, backend=...)`` dispatches through ``BACKENDS``:

=============== ========================================================================================
``"dali"``      ``DALILoader``: an NVIDIA DALI pipeline, ``device="gpu"`` (mixed decoding) or ``"cpu"``
                (``device_id=None``); ``"auto"`` picks the GPU when CUDA is available.
``"torchvision"`` ``TorchvisionLoader``: torchvision v2 kernels in ``DataLoader`` workers (the reference).
``"auto"``      DALI if it imports, else torchvision (with a warning).
=============== ========================================================================================

Both iterate over ``Batch`` objects: ``views`` (a list of (n, 3, S, S) float32 normalised tensors, one per
output view, ``count`` expanded), ``labels`` ((n,) int64 or None), ``targets`` (one per view for dense
recipes, else None) and ``indices`` ((n,) int64: rows of ``source.samples``), on the executor's device.
For the same (recipe, source, batch size, seed, epoch, shard) both read the same samples in the same batches
with the same augmentation parameters (``tasks(epoch)``), whatever the number of threads or workers.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .params import ViewParams, batch_rng, sample_batch
from .plan import EpochReport, check_sharding, plan_epoch
from .recipes import Recipe, get_recipe
from .sources import ArraySource, Catalog, PairListSource, scan_source
from .torchvision_backend import TaskDataset, TaskSampler, identity
from .workers import WorkerDiedError, describe_worker_death, worker_context


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


class TorchvisionLoader(ViewLoader):
    """The torchvision v2 executor: ``num_workers`` DataLoader processes (0: in this process), one batch per
    task; outputs moved to ``device`` (default CPU). Worker processes persist across epochs and are started by
    ``workers.worker_context(start_method)`` (a fork server by default: never a fork of this process, whose
    threads would be missing in the child). A worker that dies raises ``WorkerDiedError`` naming the worker,
    the sample indices it held and the signal; the next epoch starts new workers."""

    backend = "torchvision"

    def __init__(self, recipe, source, batch_size: int, *, num_workers: int = 2, device: str | torch.device = "cpu",
                 prefetch_factor: int = 2, start_method: str | None = None, **kwargs):
        super().__init__(recipe, source, batch_size, **kwargs)
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers: expected an int >= 0, got {num_workers!r}")
        self.device = torch.device(device)
        self.num_workers, self.prefetch_factor = num_workers, prefetch_factor
        self.context = worker_context(start_method) if num_workers > 0 else None
        self._sampler = TaskSampler()
        self._loader = self._make_dataloader()

    def _make_dataloader(self) -> torch.utils.data.DataLoader:
        extra = {"persistent_workers": True, "prefetch_factor": self.prefetch_factor,
                 "multiprocessing_context": self.context} if self.num_workers > 0 else {}
        return torch.utils.data.DataLoader(TaskDataset(self.recipe, self.catalog), batch_size=None,
                                           sampler=self._sampler, num_workers=self.num_workers,
                                           collate_fn=identity, **extra)

    def _execute(self, tasks):
        self._sampler.tasks = tasks
        iterator = iter(self._loader)
        move = (lambda t: t.to(self.device, non_blocking=True)) if self.device.type != "cpu" else (lambda t: t)
        while True:
            try:
                out = next(iterator)
            except StopIteration:
                return
            except RuntimeError:
                death = describe_worker_death(iterator, lambda i: self.catalog.index[tasks[i][0]])
                if death is None:
                    raise
                self._loader = self._make_dataloader()  # the old workers are gone: the next epoch starts new ones
                raise WorkerDiedError(f"torchvision executor: {death}") from None
            index = torch.from_numpy(self.catalog.index[out["rows"].numpy()])
            yield Batch(views=[move(v) for v in out["views"]],
                        labels=None if out["labels"] is None else move(out["labels"]),
                        targets=None if out["targets"] is None else [move(t) for t in out["targets"]],
                        indices=index)


def _dali_loader():
    from .dali_backend import DALILoader  # noqa: PLC0415 - DALI is imported only when it runs

    return DALILoader


BACKENDS = {"dali": _dali_loader, "torchvision": lambda: TorchvisionLoader}


def resolve_backend(backend: str = "auto") -> str:
    """"dali" or "torchvision" for ``backend`` ("auto": DALI if ``nvidia.dali`` imports)."""
    if backend not in ("auto", *BACKENDS):
        raise ValueError(f"backend: expected 'auto', 'dali' or 'torchvision', got {backend!r}")
    if backend != "auto":
        return backend
    try:
        import nvidia.dali  # noqa: F401, PLC0415
    except ImportError:
        warnings.warn("nvidia-dali is not installed: using the torchvision executor", stacklevel=3)
        return "torchvision"
    return "dali"


def make_loader(recipe: Recipe | str, source, batch_size: int, *, backend: str = "auto", **kwargs) -> ViewLoader:
    """A loader of ``recipe`` over ``source`` executed by ``backend`` ("auto", "dali", "torchvision").

    ``kwargs`` go to the loader: the shared ones of ``ViewLoader`` plus, for DALI, ``device`` ("auto", "gpu",
    "cpu"), ``num_threads``, ``device_id``, ``prefetch``, ``hue``, ``photometric`` ("auto", "numba", "torch",
    "native"), ``fancy_upsampling``; for torchvision ``num_workers``, ``device``, ``start_method``.
    """
    return BACKENDS[resolve_backend(backend)]()(recipe, source, batch_size, **kwargs)

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

import torch

from ..recipes import Recipe
from .torchvision_backend import TaskDataset, TaskSampler, identity
from .view_loader import Batch, ViewLoader
from .workers import WorkerDiedError, describe_worker_death, worker_context


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
    from .dali_backend import DALILoader  # DALI is imported only when it runs

    return DALILoader


BACKENDS = {"dali": _dali_loader, "torchvision": lambda: TorchvisionLoader}


def resolve_backend(backend: str = "auto") -> str:
    """"dali" or "torchvision" for ``backend`` ("auto": DALI if ``nvidia.dali`` imports)."""
    if backend not in ("auto", *BACKENDS):
        raise ValueError(f"backend: expected 'auto', 'dali' or 'torchvision', got {backend!r}")
    if backend != "auto":
        return backend
    try:
        import nvidia.dali  # noqa: F401
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

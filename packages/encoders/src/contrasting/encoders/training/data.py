"""Batches of views for training: the protocol the trainer consumes, an in-memory source, and the corpus wiring.

The trainer is independent of how views are made. It takes a ``BatchSource``:

    len(source)                      micro-batches per epoch on this rank
    source.epoch(epoch, start=0)     an iterator over (views, labels) of that epoch, from batch ``start`` on:
                                     views a list of (N, 3, H, W) float tensors, labels (N,) int64 or None
    source.num_classes               classes of the labels (None when unlabelled)

Sources built with ``indices=True`` (for a method whose ``MethodSpec.corpus_indices`` is set: PIRL's memory
bank) yield (views, labels, indices) instead, ``indices`` (N,) int64 each sample's row in the corpus, and have
``corpus_size`` (every index is below it).

``epoch(e, start)`` must give the same batches for the same (e, start) on every call — that is what makes a
resumed run continue the same data order. Any sized iterable of (views, labels) works too
(``as_batch_source``): it is re-iterated each epoch and the first ``start`` batches are skipped.

Every corpus — the ``synthetic`` one (seeded random images in memory, for smoke tests and benchmarks), the
built-in corpora, image folders, file lists and study layouts — comes through ``contrasting.data``'s recipes and
executors (``build_source``), so there is one augmentation schema: the recipe.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from ..methods.spec import method_spec
from ..registry import unknown

Batch = tuple[list[torch.Tensor], torch.Tensor | None]


@runtime_checkable
class BatchSource(Protocol):
    """What the trainer iterates (module docstring)."""

    num_classes: int | None

    def __len__(self) -> int:
        """Micro-batches per epoch on this rank."""
        ...

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """The (views, labels) batches of ``epoch`` from batch ``start`` on; the same for the same arguments."""
        ...


class IterableSource:
    """A sized iterable of (views, labels) as a ``BatchSource``: re-iterated every epoch, ``start`` batches skipped."""

    def __init__(self, batches: Iterable[Batch], num_classes: int | None = None):
        if not hasattr(batches, "__len__"):
            raise TypeError("data: expected a sized iterable of (views, labels) batches (len() = batches per epoch)")
        self.batches, self.num_classes = batches, num_classes

    def __len__(self) -> int:
        return len(self.batches)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """The batches of one pass, from batch ``start`` on."""
        return itertools.islice(iter(self.batches), start, None)


def as_batch_source(data) -> BatchSource:
    """``data`` itself when it is a ``BatchSource``, else an ``IterableSource`` around it."""
    if isinstance(data, BatchSource):
        return data
    return IterableSource(data, getattr(data, "num_classes", None))


SYNTHETIC_OPTIONS = ("num_images", "num_classes")  # data.options of the synthetic corpus itself, not of its recipe


def synthetic_source(method: str, *, image_size: int, batch_size: int, num_images: int = 512,
                     num_classes: int = 10, seed: int = 0, rank: int = 0, world_size: int = 1,
                     recipe: str | None = None, options: dict | None = None) -> LoaderSource:
    """The ``synthetic`` corpus: ``num_images`` seeded random images with random labels (no content to learn),
    viewed like every corpus through the method's ``contrasting.data`` recipe (``recipe`` overrides it, ``options``
    are its arguments), by the torchvision executor in this process, sharded over ranks (last partial batch
    dropped)."""
    from contrasting.data import ArraySource, make_loader

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (num_images, image_size, image_size, 3), dtype=np.uint8)
    source = ArraySource(images, labels=rng.integers(0, num_classes, num_images))
    loader = make_loader(make_recipe(recipe_name(method, recipe), image_size, options or {}),
                         source, batch_size, backend="torchvision", seed=seed, shuffle=True, shard_id=rank,
                         num_shards=world_size, last_batch="drop", num_workers=0)
    if len(loader) == 0:
        raise ValueError(f"data: {num_images} images give no full batch of {batch_size} on each of {world_size} "
                         "ranks")
    return LoaderSource(loader, num_classes, indices=method_spec(method).corpus_indices)


SPECIAL_CORPORA = ("synthetic",)


def build_source(data, method: str, *, batch_size: int, seed: int, rank: int, world_size: int,
                 device: torch.device) -> BatchSource:
    """The ``BatchSource`` of a ``DataSection`` for ``method`` on this rank.

    ``synthetic`` is built here; built-in corpus names (``contrasting.data.builtin``: the world is built
    on first use, images at its resolution unless ``image_size`` is set), image folders and file lists
    go through ``contrasting.data`` recipes (the method's ``MethodSpec.recipe``) and executors (``data.executor``: auto,
    dali, torchvision), sharded over ranks with the last partial batch dropped. Unknown corpus names raise
    ``UnknownNameError`` listing the valid ones.
    """
    image_size = data.image_size or 224
    if data.corpus == "synthetic":
        own = {k: v for k, v in data.options.items() if k in SYNTHETIC_OPTIONS}
        return synthetic_source(method, image_size=image_size, batch_size=batch_size, seed=seed, rank=rank,
                                world_size=world_size, recipe=data.recipe, **own,
                                options={k: v for k, v in data.options.items() if k not in SYNTHETIC_OPTIONS})
    return _contrasting_data_source(data, method, batch_size=batch_size, seed=seed, rank=rank,
                                    world_size=world_size, device=device)




class LoaderSource:
    """A ``contrasting.data`` loader (DALI or torchvision executor) as a ``BatchSource``.

    ``epoch(e, start)`` sets the loader's epoch (its order and augmentation parameters are a function of
    (seed, epoch, shard)) and skips the first ``start`` batches, so a resumed run sees the same batches.
    ``indices``: batches are (views, labels, the loader's sample indices), below ``corpus_size``.
    """

    def __init__(self, loader, num_classes: int | None, indices: bool = False):
        self.loader, self.num_classes, self.indices = loader, num_classes, indices
        catalog = getattr(loader, "catalog", None)
        self.corpus_size = int(catalog.index.max()) + 1 if catalog is not None and len(catalog) else None

    def __len__(self) -> int:
        return len(self.loader)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """The loader's batches of ``epoch`` from batch ``start`` on, as (views, labels)."""
        self.loader.set_epoch(epoch)
        # Skipped batches are still decoded: the loader has no public way to start mid-epoch.
        for batch in itertools.islice(iter(self.loader), start, None):
            yield (batch.views, batch.labels, batch.indices) if self.indices else (batch.views, batch.labels)


def recipe_name(method: str, recipe: str | None = None) -> str:
    """The recipe a run of ``method`` trains with: ``recipe`` (``data.recipe``) when set, else the method's
    ``MethodSpec.recipe``, else the recipe of the method's name."""
    return recipe or method_spec(method).recipe or method


def make_recipe(name: str, image_size: int | None, options: dict):
    """The ``contrasting.data`` recipe ``name`` with its crop sizes set from ``image_size`` by the recipe's own rule
    (``sized_recipe``; None: the recipe's sizes), then ``options`` (the factory's keyword arguments)."""
    from contrasting.data import sized_recipe

    try:
        return sized_recipe(name, image_size, **options)
    except KeyError as error:
        raise unknown("recipe", name, _recipe_names()) from error
    except TypeError as error:  # an option the recipe's factory does not take
        raise ValueError(f"data.options: {error}") from error


def _recipe_names() -> list[str]:
    from contrasting.data import list_recipes

    return list_recipes()


def _builtin_corpus_root(name: str, root: str | None, rank: int, world_size: int):
    """The ImageFolder root of built-in corpus ``name``, building the world once (rank 0 first)."""
    import torch.distributed as dist

    from contrasting.data.builtin import build_world

    if world_size > 1 and rank != 0:
        dist.barrier()  # rank 0 builds (or finds) the world first
    world = build_world(root, progress=rank == 0)
    if world_size > 1 and rank == 0:
        dist.barrier()
    return world.corpora[name].root, world.config.scene.resolution


def _contrasting_data_source(data, method, *, batch_size, seed, rank, world_size, device) -> BatchSource:
    from contrasting.data import FileListSource, ImageFolderSource, make_loader, resolve_backend
    from contrasting.data.builtin import list_corpora

    image_size = data.image_size
    if data.corpus in list_corpora():
        folder, resolution = _builtin_corpus_root(data.corpus, data.root, rank, world_size)
        source = ImageFolderSource(folder)
        image_size = image_size or resolution
    elif parse_layout_corpus(data.corpus) is not None:
        source = open_layout_corpus(data.corpus, seed=seed)
    else:
        path = Path(data.corpus)
        if not path.exists():
            raise unknown("corpus", data.corpus, _corpus_choices(), plural="corpora")
        source = ImageFolderSource(path) if path.is_dir() else FileListSource(path)
    recipe = make_recipe(recipe_name(method, data.recipe), image_size, data.options)
    backend = resolve_backend(data.executor)
    if backend == "dali":
        extra = {"device": "gpu" if device.type == "cuda" else "cpu", "num_threads": data.workers,
                 **({"device_id": device.index} if device.type == "cuda" else {})}
    else:
        extra = {"num_workers": data.workers, "device": device}
    loader = make_loader(recipe, source, batch_size, backend=backend, seed=seed, shuffle=True, shard_id=rank,
                         num_shards=world_size, last_batch="drop", **extra)
    classes = getattr(source, "classes", None)
    return LoaderSource(loader, len(classes) if classes else None, indices=method_spec(method).corpus_indices)


def corpus_names() -> list[str]:
    """Every corpus name ``build_source`` accepts besides paths: ``synthetic`` and the built-in corpora."""
    from contrasting.data.builtin import list_corpora

    return sorted([*SPECIAL_CORPORA, *list_corpora()])


def _corpus_choices() -> list[str]:
    return [*corpus_names(), "<image-folder directory>", "<file list>", "<layout>[/<subset>]:<root>"]


def parse_layout_corpus(name: str) -> tuple[str, str | None, Path] | None:
    """``"imagenet:/data/imagenet"`` → ("imagenet", None, root); ``"imagenet/half_log:/data/in"`` → ("imagenet",
    "half_log", root): a ``contrasting.data.corpora`` layout (imagenet, places365, kinetics, taskonomy) under a
    root folder, optionally one of its study subsets (half, quarter, half_linear, half_log). None when ``name``
    is not of that form (or names an existing path)."""
    head, sep, root = name.partition(":")
    if not sep or not root or Path(name).exists():
        return None
    layout, _, subset = head.partition("/")
    from contrasting.data.corpora import CORPORA, SUBSETS

    if layout not in CORPORA:
        return None
    if subset and subset not in SUBSETS:
        raise unknown("corpus subset", subset, SUBSETS)
    return layout, subset or None, Path(root)


def open_layout_corpus(name: str, *, seed: int = 0):
    """The source of a ``<layout>[/<subset>]:<root>`` corpus (``parse_layout_corpus``). A subset is drawn with
    ``seed`` (the same files on every rank and every run) and kept as a file list under the cache folder."""
    from contrasting.data import FileListSource
    from contrasting.data.builtin import resolve_root
    from contrasting.data.corpora import open_corpus, write_subset

    layout, subset, root = parse_layout_corpus(name)
    source = open_corpus(layout, root)
    if subset is None:
        return source
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:10]
    target = resolve_root(None) / "subsets" / f"{layout}-{subset}-seed{seed}-{digest}.txt"
    target.parent.mkdir(parents=True, exist_ok=True)
    write_subset(source, subset, target, root=root, seed=seed, corpus=layout)  # atomic; every rank writes the same
    return FileListSource(target, root=root)


def check_corpus(name: str) -> None:
    """Raise ``UnknownNameError`` listing the valid corpus names unless ``name`` is one, an existing path, or a
    ``<layout>[/<subset>]:<root>`` corpus whose root is a folder."""
    if name in corpus_names() or Path(name).exists():
        return
    parsed = parse_layout_corpus(name)
    if parsed is not None:
        if not parsed[2].is_dir():
            raise FileNotFoundError(f"--corpus {name}: {parsed[2]} is not a directory")
        return
    raise unknown("corpus", name, _corpus_choices(), plural="corpora")

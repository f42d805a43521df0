"""The built-in shapes world and image-folder listings, as the task catalog reads them (from contrasting.data).

The world comes from ``contrasting.data.builtin.build_world(root=..., progress=...)`` (``world_dir`` finds it,
``ensure_world`` builds it, ``world_classes`` reads its manifest); image folders are listed by
``contrasting.data.sources.ImageFolderSource`` (classes = sorted sub-folder names). Imports no torch.
"""

from __future__ import annotations

import os
from pathlib import Path

from contrasting.data.sources import IMAGE_EXTENSIONS  # noqa: F401 (the readers' too: one list of image types)

WORLD_ENV = "CONTRASTING_DATA_SHAPES_WORLD"


def world_dir(data_root: os.PathLike | str | None = None) -> Path:
    """The folder of the shapes world the built-in tasks read (``world-<key>``, holding manifest.json):

    ``$CONTRASTING_DATA_SHAPES_WORLD`` when no ``data_root`` is given; else, under ``data_root`` (default: the
    data package's cache root, ``$CONTRASTING_DATA`` or ``~/.cache/contrasting/builtin``), ``data_root`` itself
    if it is a world, the default configuration's world if present, the only complete world if there is one,
    and otherwise the default configuration's (not yet built) folder.
    """
    if data_root is None and os.environ.get(WORLD_ENV):
        return Path(os.environ[WORLD_ENV]).expanduser()
    from contrasting.data import builtin

    base = builtin.resolve_root(data_root)
    default = base / f"world-{builtin.world_key(builtin.WorldConfig())}"
    if (base / "manifest.json").is_file():
        return base
    if (default / "manifest.json").is_file():
        return default
    worlds = sorted(p for p in base.glob("world-*") if (p / "manifest.json").is_file()) if base.is_dir() else []
    return worlds[0] if len(worlds) == 1 else default


def ensure_world(folder: Path, progress: bool = False) -> Path:
    """Build the default shapes world where ``world_dir`` expects it; returns the world's folder."""
    from contrasting.data.builtin import build_world

    return Path(build_world(root=folder.parent, progress=progress).path)


def world_classes(folder: Path, world_task: str) -> list[str] | None:
    """Class names of a built-in task from the world's manifest.json (None without classes)."""
    import json

    try:
        classes = json.loads((folder / "manifest.json").read_text())["tasks"][world_task].get("classes")
    except (OSError, ValueError, KeyError):
        return None
    return list(classes) if classes else None


def world_tasks() -> list[str]:
    """The data package's own list of built-in tasks."""
    from contrasting.data.builtin import list_tasks

    return [str(getattr(t, "name", t)) for t in list_tasks()]


def folder_samples(root: Path, exclude: tuple[str, ...] = ()) -> tuple[list[tuple[str, int]], list[str]]:
    """(path, class index) pairs and class names of an image-folder tree ``root/<class>/<image>``
    (``ImageFolderSource``'s listing), without the classes in ``exclude``, re-indexed in sorted order."""
    from contrasting.data.sources import ImageFolderSource

    src = ImageFolderSource(root)
    classes = [c for c in src.classes if c not in exclude]
    index = {c: i for i, c in enumerate(classes)}
    samples = [(str(path), index[src.classes[label]]) for path, label in src.samples if src.classes[label] in index]
    return samples, classes

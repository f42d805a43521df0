"""Pre-training corpora by on-disk layout, and deterministic subsets written as shareable file lists.

``open_corpus(name, root, split)`` returns a source for a registered layout (``CORPORA``):

============ =========================================================================================
imagenet     ILSVRC-2012 class folders: ``root/train/<wnid>/*.JPEG`` (or ``root/ILSVRC/Data/CLS-LOC/train``);
             ``split="val"`` needs ``root/val/<wnid>/`` (validation images sorted into class folders)
places365    ``root/places365_<split>_standard.txt`` + ``root/data_256/`` (the challenge layout, lines
             ``/a/airfield/00000001.jpg 0``), else ``root/<split>/<category>/`` (places365_standard)
kinetics     extracted frames ``root/<split>/<class>/<video_id>/<frame>.jpg``; label = class;
             ``frames_per_video=k`` keeps k evenly spaced frames per video (all by default)
taskonomy    ``root/<building>/rgb/*.png``; label = building index (no semantic classes)
============ =========================================================================================

Subsets (``SUBSETS``; the study's pre-training variants) pick files per class with a generator seeded by
(seed, class index), so a subset depends only on the corpus listing and the seed:

* ``half`` / ``quarter``: ⌊n_c·f⌉ files of every class c (f = 1/2, 1/4; at least one), balanced;
* ``half_linear`` / ``half_log``: the same total as ``half``, class sizes unbalanced. Classes are ranked by a
  seeded permutation; rank r of C gets weight w_r = 1 − (1 − 1/ρ)·r/(C−1) (linear) or w_r = ρ^(−r/(C−1))
  (log: linear in log-size); sizes n_r = min(n_c, max(1, round(a·w_r))) with a found by bisection so that the
  total matches. ρ (``imbalance``, largest/smallest weight) defaults to 100.

``write_subset`` writes the list with paths relative to the corpus root and a header recording the corpus,
subset, seed and counts: read it back with ``FileListSource(path, root=<local copy of the corpus>)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .sources import FileListSource, ImageFolderSource, write_file_list

RANK_STREAM = 0x52414E4B  # "RANK": the generator key of the class ranking, apart from the per-class keys (seed, c)


@dataclass(frozen=True)
class Corpus:
    """A registered on-disk layout: ``open(root, split, **kw) -> source``, with its description."""

    name: str
    layout: str
    open: Callable
    provenance: str


CORPORA: dict[str, Corpus] = {}


def register_corpus(name: str, layout: str, provenance: str = ""):
    """Decorator: register ``open(root, split, **kw) -> source`` as corpus ``name``."""

    def deco(fn):
        if name in CORPORA:
            raise ValueError(f"register_corpus: {name!r} is already registered")
        CORPORA[name] = Corpus(name, layout, fn, provenance)
        return fn

    return deco


def open_corpus(name: str, root: str | os.PathLike, split: str = "train", **kwargs):
    """The source of corpus ``name`` under ``root``; errors name the layout that was expected."""
    if name not in CORPORA:
        raise KeyError(f"unknown corpus {name!r}; registered: {', '.join(sorted(CORPORA))}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"corpus {name}: {root} is not a directory (expected {CORPORA[name].layout})")
    return CORPORA[name].open(root, split, **kwargs)


def _first_dir(*candidates: Path, what: str) -> Path:
    for c in candidates:
        if c.is_dir():
            return c
    raise FileNotFoundError(f"{what}: none of {', '.join(map(str, candidates))} exists")


@register_corpus("imagenet", "root/train/<wnid>/*.JPEG", "ILSVRC-2012 (Russakovsky et al. 2015)")
def _imagenet(root: Path, split: str):
    d = _first_dir(root / split, root / "ILSVRC" / "Data" / "CLS-LOC" / split, what=f"imagenet {split}")
    return ImageFolderSource(d)


@register_corpus("places365", "root/data_256 + places365_<split>_standard.txt, or root/<split>/<category>/",
                 "Places365-Standard (Zhou et al. 2017)")
def _places365(root: Path, split: str):
    listing = root / f"places365_{split}_standard.txt"
    if listing.is_file():
        images = _first_dir(root / "data_256", root / f"{split}_256", root, what="places365 images")
        samples = []
        for lineno, line in enumerate(listing.read_text().splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2:
                raise ValueError(f"{listing}:{lineno}: expected '<path> <label>', got {line!r}")
            samples.append((str(images / parts[0].lstrip("/")), int(parts[1])))
        classes = None
        cats = root / "categories_places365.txt"
        if cats.is_file():
            classes = [ln.split()[0] for ln in cats.read_text().splitlines() if ln.strip()]
        return FileListSource.from_samples(samples, classes=classes)
    return ImageFolderSource(_first_dir(root / split, what=f"places365 {split}"))


@register_corpus("kinetics", "root/<split>/<class>/<video_id>/<frame>.jpg (extracted frames)",
                 "Kinetics-400 (Kay et al. 2017), frames extracted by the user")
def _kinetics(root: Path, split: str, frames_per_video: int | None = None):
    base = _first_dir(root / split, what=f"kinetics {split}")
    classes = sorted(d.name for d in base.iterdir() if d.is_dir())
    if not classes:
        raise ValueError(f"kinetics: {base} has no class folders (expected <class>/<video_id>/<frame>.jpg)")
    samples = []
    for label, c in enumerate(classes):
        for video in sorted(v for v in (base / c).iterdir() if v.is_dir()):
            frames = sorted(f for f in os.listdir(video) if f.lower().endswith((".jpg", ".jpeg", ".png")))
            if frames_per_video is not None and len(frames) > frames_per_video:
                keep = np.linspace(0, len(frames) - 1, frames_per_video).round().astype(int)
                frames = [frames[i] for i in keep]
            samples += [(str(video / f), label) for f in frames]
    if not samples:
        raise ValueError(f"kinetics: no frames under {base}")
    return FileListSource.from_samples(samples, classes=classes)


@register_corpus("taskonomy", "root/<building>/rgb/*.png", "Taskonomy (Zamir et al. 2018), rgb domain")
def _taskonomy(root: Path, split: str):
    buildings = sorted(d.name for d in root.iterdir() if (d / "rgb").is_dir())
    if not buildings:
        raise ValueError(f"taskonomy: no <building>/rgb/ folders under {root}")
    samples = [(str(root / b / "rgb" / f), label) for label, b in enumerate(buildings)
               for f in sorted(os.listdir(root / b / "rgb")) if f.lower().endswith((".png", ".jpg"))]
    return FileListSource.from_samples(samples, classes=buildings)


# --------------------------------------------------------------------------------------------- subsets
def _by_class(source) -> dict[int, list[str]]:
    if not source.samples or source.samples[0][1] is None:
        raise ValueError("subsets need labelled samples (classes, buildings, ...)")
    groups: dict[int, list[str]] = {}
    for path, label in source.samples:
        groups.setdefault(int(label), []).append(str(path))
    return groups


def _pick(groups: dict[int, list[str]], sizes: dict[int, int], seed: int) -> list[tuple[str, int]]:
    out = []
    for label in sorted(groups):
        files = sorted(groups[label])
        rng = np.random.default_rng([int(seed), label])
        keep = np.sort(rng.permutation(len(files))[: sizes[label]])
        out += [(files[i], label) for i in keep]
    return out


def balanced_subset(source, fraction: float, *, seed: int = 0) -> list[tuple[str, int]]:
    """round(n_c·fraction) (at least 1) files of every class c, chosen per class by (seed, c)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction: expected 0 < fraction <= 1, got {fraction}")
    groups = _by_class(source)
    return _pick(groups, {c: max(1, int(round(len(f) * fraction))) for c, f in groups.items()}, seed)


def unbalanced_subset(source, fraction: float = 0.5, *, profile: str = "linear", imbalance: float = 100.0,
                      seed: int = 0) -> list[tuple[str, int]]:
    """Class sizes following a ``linear`` or ``log`` profile (see the module docstring), same total as the
    balanced subset of ``fraction``."""
    if profile not in ("linear", "log"):
        raise ValueError(f"profile: expected 'linear' or 'log', got {profile!r}")
    if imbalance < 1:
        raise ValueError(f"imbalance: expected >= 1, got {imbalance}")
    groups = _by_class(source)
    labels = sorted(groups)
    C = len(labels)
    total = sum(max(1, int(round(len(groups[c]) * fraction))) for c in labels)
    rank = np.empty(C, dtype=np.int64)
    rank[np.random.default_rng([int(seed), RANK_STREAM]).permutation(C)] = np.arange(C)
    t = rank / max(C - 1, 1)
    w = 1.0 - (1.0 - 1.0 / imbalance) * t if profile == "linear" else imbalance ** (-t)
    avail = np.array([len(groups[c]) for c in labels])

    def sizes(a: float) -> np.ndarray:
        return np.minimum(avail, np.maximum(1, np.round(a * w))).astype(np.int64)

    lo, hi = 0.0, float(avail.max()) * float(imbalance) + 1.0
    for _ in range(100):  # sizes(a).sum() is non-decreasing in a
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if sizes(mid).sum() < total else (lo, mid)
    n = sizes(hi)
    return _pick(groups, dict(zip(labels, n.tolist(), strict=True)), seed)


SUBSETS: dict[str, Callable] = {
    "half": lambda src, seed: balanced_subset(src, 0.5, seed=seed),
    "quarter": lambda src, seed: balanced_subset(src, 0.25, seed=seed),
    "half_linear": lambda src, seed: unbalanced_subset(src, 0.5, profile="linear", seed=seed),
    "half_log": lambda src, seed: unbalanced_subset(src, 0.5, profile="log", seed=seed),
}


def build_subset(source, name: str, *, seed: int = 0) -> list[tuple[str, int]]:
    """The (path, label) samples of subset ``name`` (``SUBSETS``) of ``source``."""
    if name not in SUBSETS:
        raise KeyError(f"unknown subset {name!r}; expected one of {', '.join(SUBSETS)}")
    return SUBSETS[name](source, seed)


def write_subset(source, name: str, path: str | os.PathLike, *, root: str | os.PathLike, seed: int = 0,
                 corpus: str = "") -> Path:
    """Write subset ``name`` of ``source`` as a file list relative to the corpus ``root`` (with a header)."""
    samples = build_subset(source, name, seed=seed)
    counts = np.bincount([lab for _, lab in samples])
    header = (f"contrasting.data subset: corpus={corpus or '?'} subset={name} seed={seed}\n"
              f"{len(samples)} files of {len(source)}; per class min {counts[counts > 0].min()} "
              f"max {counts.max()}")
    return write_file_list(path, samples, root=root, classes=getattr(source, "classes", None), header=header)

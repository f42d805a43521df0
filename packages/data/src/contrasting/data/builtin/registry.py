"""Registry of the built-in pre-training corpora and end tasks: typed entries, filled by decorators.

A corpus or a task is *one decorated sampler function* plus data (timm-style registration, lm-evaluation-harness
style tasks): adding a task means adding one ``@register_task(...)`` entry in ``entries.py``, not a class. The
entry's ``kind`` decides the on-disk layout and the target format (``KINDS``), its ``labels`` names a label space
(``LABEL_SPACES``), its ``profile`` the class frequencies of every split.

Sampler contract: ``sampler(rng, spec, label, context) -> Sample``, a pure function of its arguments; ``label`` is
the class the item must have (pre-assigned so that class frequencies are exact) or None for tasks without classes.

Log-unbalanced profile (the study's "log-unbalanced ImageNet"): class k gets a share ∝ exp(−c·k); counts are
rounded by largest remainder so that they sum to the total, with at least one item per class.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields

import numpy as np

from contrasting.data.builtin.scene import SceneSpec
from contrasting.data.vocabulary import GROUP_TITLES

GROUPS = GROUP_TITLES
SPLITS = ("train", "val", "test")
CORPUS_SPLIT = "train"  # a pre-training corpus has a single split


@dataclass(frozen=True)
class Kind:
    """What an item of a task is: its on-disk ``layout`` and what its ``target`` means."""

    name: str
    layout: str
    target: str


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("classification", "image-folder", "class index: the image's class folder and the list's label"),
        Kind("pair-classification", "view-pair-list", "class index of an ordered pair of views"),
        Kind("segmentation", "pair-list", "uint8 PNG class mask, 0 = background, k + 1 = shape class k"),
        Kind("binary-mask", "pair-list", "uint8 PNG mask, 1 = foreground (any object), 0 = background"),
        Kind("depth", "pair-list", "uint16 PNG, depth × DEPTH_SCALE, larger = farther, background = 1.0"),
    )
}
METRICS = {"top1": True, "miou": True, "iou": True, "l1": False}  # metric -> higher_is_better
SHIFT_DIRECTIONS = ("left", "right", "up", "down")  # camera-shift classes: where view b's window moved

# Label space name -> class names for a scene distribution (class index = position).
LABEL_SPACES: dict[str, Callable[[SceneSpec], tuple[str, ...]]] = {
    "shapes": lambda spec: spec.shapes,
    "textures": lambda spec: spec.textures,
    "digits": lambda spec: tuple(str(d) for d in range(10)),
    "count": lambda spec: tuple(str(n) for n in range(spec.objects[0], spec.objects[1] + 1)),
    "shift": lambda spec: SHIFT_DIRECTIONS,
    "segmentation": lambda spec: ("background", *spec.shapes),
    "foreground": lambda spec: ("background", "foreground"),
}


@dataclass(frozen=True)
class ClassProfile:
    """Class frequencies: ``kind`` "balanced" (equal shares) or "log" (share of class k ∝ exp(−c·k))."""

    kind: str = "balanced"
    c: float = 0.0

    def __post_init__(self):
        if self.kind not in ("balanced", "log"):
            raise ValueError(f"profile kind: expected 'balanced' or 'log', got {self.kind!r}")
        if self.kind == "log" and not self.c > 0:
            raise ValueError(f"log profile: expected c > 0, got {self.c}")

    def weights(self, num_classes: int) -> np.ndarray:
        """Shares of the classes 0..num_classes−1, summing to 1."""
        k = np.arange(num_classes, dtype=np.float64)
        w = np.exp(-self.c * k) if self.kind == "log" else np.ones(num_classes)
        return w / w.sum()

    def counts(self, total: int, num_classes: int) -> np.ndarray:
        """Integer class counts summing to ``total`` (largest remainder; >= 1 per class when total allows)."""
        if total < num_classes:
            raise ValueError(f"profile: {total} items cannot cover {num_classes} classes")
        exact = self.weights(num_classes) * total
        counts = np.floor(exact).astype(np.int64)
        order = np.argsort(-(exact - counts), kind="stable")
        counts[order[: total - counts.sum()]] += 1
        while (counts == 0).any():  # only for extreme c: move one item from the largest class
            counts[np.argmax(counts)] -= 1
            counts[np.argmin(counts)] += 1
        return counts


@dataclass(frozen=True)
class SplitContext:
    """Where an item is generated: the world seed and the split name (e.g. for split-disjoint source pools)."""

    seed: int
    split: str


@dataclass(frozen=True)
class Sample:
    """One generated item: ``image`` (H, W, 3) uint8; ``target`` a per-pixel array (pixel-wise kinds);
    ``image_b`` the second view (pair kinds); ``extra`` named numbers written beside the list (e.g. offsets)."""

    image: np.ndarray
    target: np.ndarray | None = None
    image_b: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


Sampler = Callable[[np.random.Generator, SceneSpec, "int | None", SplitContext], Sample]


@dataclass(frozen=True)
class CorpusSpec:
    """A pre-training corpus: ``size`` images in one split, stored as an image folder by class."""

    name: str
    description: str
    labels: str
    size: int
    profile: ClassProfile = ClassProfile()
    similar_tasks: tuple[str, ...] = ()  # end tasks whose data this corpus resembles (the study's finding 5)
    version: int = 1
    sampler: Sampler | None = field(default=None, compare=False, repr=False)

    @property
    def kind(self) -> str:
        """Corpora are stored like classification data (the class is known, unused by SSL)."""
        return "classification"

    @property
    def splits(self) -> tuple[tuple[str, int], ...]:
        """The single (split, size) pair."""
        return ((CORPUS_SPLIT, self.size),)


@dataclass(frozen=True)
class TaskSpec:
    """An end task: group, kind (→ layout, target), metric, label space, split sizes and class profile."""

    name: str
    description: str
    group: str
    kind: str
    metric: str
    labels: str | None
    splits: tuple[tuple[str, int], ...]
    profile: ClassProfile = ClassProfile()
    version: int = 1
    sampler: Sampler | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.group not in GROUPS:
            raise ValueError(f"task {self.name}: group must be one of {GROUPS}, got {self.group!r}")
        if self.kind not in KINDS:
            raise ValueError(f"task {self.name}: kind must be one of {sorted(KINDS)}, got {self.kind!r}")
        if self.metric not in METRICS:
            raise ValueError(f"task {self.name}: metric must be one of {sorted(METRICS)}, got {self.metric!r}")
        if self.labels is not None and self.labels not in LABEL_SPACES:
            raise ValueError(f"task {self.name}: labels must be one of {sorted(LABEL_SPACES)}, got {self.labels!r}")
        if tuple(s for s, _ in self.splits) != SPLITS:
            raise ValueError(f"task {self.name}: splits must be {SPLITS} in order, got {self.splits}")

    @property
    def higher_is_better(self) -> bool:
        """Direction of the metric (False for L1)."""
        return METRICS[self.metric]

    @property
    def layout(self) -> str:
        """On-disk layout, from the kind."""
        return KINDS[self.kind].layout

    @property
    def level(self) -> str:
        """Either "image-level" or "pixel-wise"."""
        return self.group.split(" ")[0]

    @property
    def nature(self) -> str:
        """Either "semantic" or "structural"."""
        return self.group.split(" ")[1]


CORPORA: dict[str, CorpusSpec] = {}
TASKS: dict[str, TaskSpec] = {}


def _registrar(table: dict, spec_cls: type, kind: str, name: str, spec: dict) -> Callable[[Sampler], Sampler]:
    def decorate(sampler: Sampler) -> Sampler:
        if name in table:
            raise ValueError(f"{kind} {name!r} is already registered")
        table[name] = spec_cls(name=name, sampler=sampler, **spec)
        return sampler

    return decorate


def register_corpus(name: str, **spec) -> Callable[[Sampler], Sampler]:
    """Decorator: register the sampler as corpus ``name`` (keyword fields of :class:`CorpusSpec`).

    Decorators stack, so one sampler may serve several corpora. Raises ValueError on a duplicate name.
    """

    return _registrar(CORPORA, CorpusSpec, "corpus", name, spec)


def register_task(name: str, **spec) -> Callable[[Sampler], Sampler]:
    """Decorator: register the sampler as task ``name`` (keyword fields of :class:`TaskSpec`)."""

    return _registrar(TASKS, TaskSpec, "task", name, spec)


def list_corpora() -> list[str]:
    """Names of the registered pre-training corpora, in registration order."""
    return list(CORPORA)


def list_tasks(group: str | None = None) -> list[str]:
    """Names of the registered end tasks (of one of ``GROUPS`` if given), in registration order."""
    if group is not None and group not in GROUPS:
        raise ValueError(f"group: expected one of {GROUPS}, got {group!r}")
    return [name for name, task in TASKS.items() if group is None or task.group == group]


def get_corpus(name: str) -> CorpusSpec:
    """The registered corpus ``name``; KeyError listing the known names otherwise."""
    if name not in CORPORA:
        raise KeyError(f"unknown corpus {name!r}; known: {list_corpora()}")
    return CORPORA[name]


def get_task(name: str) -> TaskSpec:
    """The registered task ``name``; KeyError listing the known names otherwise."""
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; known: {list_tasks()}")
    return TASKS[name]


def class_names(entry: CorpusSpec | TaskSpec, spec: SceneSpec) -> tuple[str, ...] | None:
    """Class names of an entry under a scene distribution (None for tasks without a label space)."""
    return None if entry.labels is None else LABEL_SPACES[entry.labels](spec)


def has_item_labels(entry: CorpusSpec | TaskSpec) -> bool:
    """Whether items carry a pre-assigned class (classification kinds) rather than a per-pixel target."""
    return entry.kind in ("classification", "pair-classification")


def entry_parameters(entry: CorpusSpec | TaskSpec) -> dict:
    """The entry's data fields (no sampler) as JSON-ready values: hashed into the cache key, stored in manifests."""
    out = {}
    for f in fields(entry):
        if f.name == "sampler":
            continue
        value = getattr(entry, f.name)
        out[f.name] = {"kind": value.kind, "c": value.c} if isinstance(value, ClassProfile) else _jsonable(value)
    return out


def _jsonable(value):
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"non-finite parameter {value}")
    return value

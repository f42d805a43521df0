"""The built-in corpora and end tasks: one decorated sampler per entry (the canonical list lives here).

Pre-training corpora (equal size, mirroring the study's datasets):

    shapes      object-centric scenes, balanced dominant-shape classes            ~ ImageNet
    shapes-lt   the same scenes, class k ∝ exp(−LT_C·k), same total size          ~ log-unbalanced ImageNet
    textures    backgrounds only (no objects): a different domain                 ~ Places / Taskonomy
    digits      scikit-learn's real 8×8 digits (train pool only), upscaled on textures   ~ a real-data domain

In ``shapes``/``shapes-lt`` an image's class is its dominant object's, which is sampled nearest and largest
(object-centric, like ImageNet). ``shapes-lt`` at the default size: circle 1392, square 764, triangle 419, star
230, cross 126, ring 69 (c = LT_C = 0.6; largest / smallest ≈ e^{5c} ≈ 20).

End tasks (the study's four groups), each with train/val/test:

    shape-cls     image-level semantic    class of the dominant object (most visible pixels)    top-1
    texture-cls   image-level semantic    background texture family, objects on top             top-1
    digit-cls     image-level semantic    real digit class; source digits split-disjoint        top-1
    count         image-level structural  number of objects (CLEVR-count analogue)              top-1
    camera-shift  image-level structural  direction of the camera shift between two views       top-1
    shape-seg     pixel-wise semantic     per-pixel shape class, 0 = background                  mIoU
    foreground    pixel-wise semantic     foreground (any object) mask                           IoU
    depth         pixel-wise structural   per-pixel depth from layer order, larger = farther     L1

Camera shift (egomotion analogue, classification): a scene is rendered on a canvas larger by ``2·m`` pixels;
view a is the centre crop, view b the crop whose window moved by (dx, dy) pixels: |main component| uniform in
[SceneSpec.shift·R] along the class direction, the other component a jitter in ±SHIFT_JITTER·R. Class = direction of
the window (= camera) motion: left (dx < 0), right (dx > 0), up (dy < 0), down (dy > 0). (dx, dy) are stored in
``<split>_extra.csv`` so that a regression variant needs no regeneration.
"""

from __future__ import annotations

import importlib.util
import math
import zlib
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from contrasting.data.builtin.layout import encode_depth
from contrasting.data.builtin.registry import (
    SHIFT_DIRECTIONS,
    ClassProfile,
    Sample,
    SplitContext,
    register_corpus,
    register_task,
)
from contrasting.data.builtin.scene import (
    SceneSpec,
    add_noise,
    composite_digit,
    render_scene,
    render_texture,
)

CORPUS_SIZE = 3000
TASK_SPLITS = (("train", 1500), ("val", 300), ("test", 600))
LT_C = 0.6  # log-unbalanced profile: with 6 classes the largest class is e^{5c} = e^3 ≈ 20× the smallest
DIGIT_SPLITS = (("train", 0.6), ("val", 0.15), ("test", 0.25))  # shares of each digit class's real images
SHIFT_JITTER = 0.03125  # |perpendicular component| / resolution: up to 2 px at 64
_DIRECTION_VECTORS = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}  # (dy, dx)


# --- real digits: scikit-learn's 1,797 8×8 images (shipped with the package, no download) ------------------


@lru_cache(maxsize=1)
def load_real_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits: (images (1797, 8, 8) float32 in 0..16, labels (1797,) int64), as ``load_digits``.

    The CSV that ``load_digits`` parses is read directly from scikit-learn's installed files, because importing
    ``sklearn.datasets`` costs ~2 s per generator process; ``load_digits`` itself is the fallback should the file
    move (tests pin the equality of both).
    """
    spec = importlib.util.find_spec("sklearn")  # locates the package without importing it
    csv = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec and spec.origin else None
    if csv is not None and csv.is_file():
        data = np.loadtxt(csv, delimiter=",")
        images, labels = data[:, :-1].reshape(-1, 8, 8), data[:, -1]
    else:
        from sklearn.datasets import load_digits  # slow import, fallback only

        bunch = load_digits()
        images, labels = bunch.images, bunch.target
    return np.ascontiguousarray(images, dtype=np.float32), labels.astype(np.int64)


@lru_cache(maxsize=64)
def digit_pool(seed: int, split: str) -> tuple[tuple[int, ...], ...]:
    """Indices of the real digits that ``split`` may use, per class; disjoint across splits (stratified
    DIGIT_SPLITS shares of every class, from a permutation seeded by ``seed``)."""
    _, labels = load_real_digits()
    names = [name for name, _ in DIGIT_SPLITS]
    if split not in names:
        raise ValueError(f"digit split: expected one of {names}, got {split!r}")
    pools = []
    for digit in range(10):
        members = np.flatnonzero(labels == digit)
        members = members[np.random.default_rng([seed, zlib.crc32(b"digits"), digit]).permutation(len(members))]
        bounds = np.rint(np.cumsum([0.0] + [share for _, share in DIGIT_SPLITS]) * len(members)).astype(int)
        k = names.index(split)
        pools.append(tuple(int(i) for i in members[bounds[k]:bounds[k + 1]]))
    return tuple(pools)


def _digit_image(rng, spec, label, split, seed):
    images, _ = load_real_digits()
    pool = digit_pool(seed, split)[label]
    return composite_digit(rng, spec, images[pool[int(rng.integers(len(pool)))]])


# --- corpora ------------------------------------------------------------------------------------------------


# Stacked decorators apply bottom-up: "shapes" (below) is registered first.
@register_corpus("shapes-lt", description="object-centric scenes, log-unbalanced classes (class k share ~ exp(-c*k))",
                 labels="shapes", size=CORPUS_SIZE, profile=ClassProfile("log", LT_C),
                 similar_tasks=("shape-cls", "shape-seg"))
@register_corpus("shapes", description="object-centric scenes, balanced dominant-shape classes", labels="shapes",
                 size=CORPUS_SIZE, similar_tasks=("shape-cls", "shape-seg"))
def _shapes_corpus(rng: np.random.Generator, spec: SceneSpec, label: int, context: SplitContext) -> Sample:
    return Sample(render_scene(rng, spec, dominant=label).image)


@register_corpus("textures", description="procedural backgrounds only, no objects (a different domain)",
                 labels="textures", size=CORPUS_SIZE, similar_tasks=("texture-cls",))
def _textures_corpus(rng: np.random.Generator, spec: SceneSpec, label: int, context: SplitContext) -> Sample:
    background, _ = render_texture(rng, spec, label)
    return Sample(add_noise(rng, background, spec.noise))


@register_corpus("digits", description="real scikit-learn digits (the digit-cls train pool) upscaled on textures",
                 labels="digits", size=CORPUS_SIZE, similar_tasks=("digit-cls",))
def _digits_corpus(rng: np.random.Generator, spec: SceneSpec, label: int, context: SplitContext) -> Sample:
    return Sample(_digit_image(rng, spec, label, "train", context.seed))


# --- end tasks ----------------------------------------------------------------------------------------------


@register_task("shape-cls", description="class of the dominant object (most visible pixels)",
               group="image-level semantic", kind="classification", metric="top1", labels="shapes",
               splits=TASK_SPLITS)
def _shape_cls(rng: np.random.Generator, spec: SceneSpec, label: int, context: SplitContext) -> Sample:
    return Sample(render_scene(rng, spec, dominant=label).image)


@register_task("texture-cls", description="texture family of the background, objects on top",
               group="image-level semantic", kind="classification", metric="top1", labels="textures",
               splits=TASK_SPLITS)
def _texture_cls(rng: np.random.Generator, spec: SceneSpec, label: int, context: SplitContext) -> Sample:
    return Sample(render_scene(rng, spec, texture=label).image)


@register_task("digit-cls", description="real digit class (scikit-learn digits, split-disjoint source images)",
               group="image-level semantic", kind="classification", metric="top1", labels="digits",
               splits=TASK_SPLITS)
def _digit_cls(rng: np.random.Generator, spec: SceneSpec, label: int, context: SplitContext) -> Sample:
    return Sample(_digit_image(rng, spec, label, context.split, context.seed))


@register_task("count", description="number of objects in the scene (CLEVR-count analogue)",
               group="image-level structural", kind="classification", metric="top1", labels="count",
               splits=TASK_SPLITS)
def _count(rng: np.random.Generator, spec: SceneSpec, label: int, context: SplitContext) -> Sample:
    return Sample(render_scene(rng, spec, n_objects=spec.objects[0] + label).image)


def shift_margin(spec: SceneSpec) -> int:
    """Canvas margin (pixels per side) that holds the largest camera shift plus jitter."""
    return math.ceil(spec.shift[1] * spec.resolution) + math.ceil(SHIFT_JITTER * spec.resolution)


@register_task("camera-shift", description="direction of the camera shift between two views (egomotion analogue)",
               group="image-level structural", kind="pair-classification", metric="top1", labels="shift",
               splits=TASK_SPLITS)
def _camera_shift(rng: np.random.Generator, spec: SceneSpec, label: int, context: SplitContext) -> Sample:
    r, m = spec.resolution, shift_margin(spec)
    scene = render_scene(rng, replace(spec, noise=0.0), canvas=(r + 2 * m, r + 2 * m))
    lo, hi = (max(1, math.ceil(f * r)) for f in spec.shift)
    jitter = math.ceil(SHIFT_JITTER * r)
    main, side = int(rng.integers(lo, hi + 1)), int(rng.integers(-jitter, jitter + 1))
    uy, ux = _DIRECTION_VECTORS[SHIFT_DIRECTIONS[label]]
    dy, dx = uy * main + ux * side, ux * main + uy * side
    view_a = scene.image[m:m + r, m:m + r].astype(np.float32)
    view_b = scene.image[m + dy:m + dy + r, m + dx:m + dx + r].astype(np.float32)
    return Sample(add_noise(rng, view_a, spec.noise), image_b=add_noise(rng, view_b, spec.noise),
                  extra={"dx": dx, "dy": dy})


@register_task("shape-seg", description="per-pixel shape class, 0 = background", group="pixel-wise semantic",
               kind="segmentation", metric="miou", labels="segmentation", splits=TASK_SPLITS)
def _shape_seg(rng: np.random.Generator, spec: SceneSpec, label: None, context: SplitContext) -> Sample:
    scene = render_scene(rng, spec)
    return Sample(scene.image, target=scene.mask)


@register_task("foreground", description="foreground mask: pixels of any object", group="pixel-wise semantic",
               kind="binary-mask", metric="iou", labels="foreground", splits=TASK_SPLITS)
def _foreground(rng: np.random.Generator, spec: SceneSpec, label: None, context: SplitContext) -> Sample:
    scene = render_scene(rng, spec)
    return Sample(scene.image, target=(scene.mask > 0).astype(np.uint8))


@register_task("depth", description="per-pixel depth from layer order (larger = farther, background 1.0)",
               group="pixel-wise structural", kind="depth", metric="l1", labels=None, splits=TASK_SPLITS)
def _depth(rng: np.random.Generator, spec: SceneSpec, label: None, context: SplitContext) -> Sample:
    scene = render_scene(rng, spec)
    return Sample(scene.image, target=encode_depth(scene.depth))

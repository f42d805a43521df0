"""Per-sample augmentation parameters: sampled once, in NumPy, and executed by every backend.

Both executors take their randomness from here, so for one epoch plan they apply *the same* crop windows,
jitter factors, orders, flips and blur widths to the same samples, and a test can compare their pixels. The
samplers reproduce torchvision's (v2) ``make_params`` distributions, vectorised over a batch:

* random-resized crop: up to 10 attempts of area ~ U[scale]·H·W and log-aspect ~ U[log ratio];
  w = round(√(area·r)), h = round(√(area/r)); the first attempt that fits wins, at an offset uniform over the
  integer positions; if none fits, the central crop of the whole image with the aspect clamped to ``ratio``.
* centre crop: shorter side to ``resize`` (the longer one ``int(resize·long/short)``), anchor
  ``round((H' − size)/2)`` (half to even, like Python's ``round``).
* colour jitter: applied iff u < p; a uniformly random order of the four adjustments; factors ~ U[range].
* blur: σ ~ U[sigma]; the 1-D kernel is torchvision's ``exp(−x²/2σ²)`` normalised, x = −(k−1)/2 … (k−1)/2.

Randomness comes from a ``numpy.random.Generator`` the caller seeds (the loaders: epoch, shard and batch).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ops import JITTER_IDENTITY, gaussian_kernel1d  # noqa: F401 (the executors' names for them)
from .recipes import Recipe, View

RRC_ATTEMPTS = 10  # torchvision's RandomResizedCrop tries 10 windows before falling back to the centre


@dataclass
class ViewParams:
    """Parameters of one view for a batch of n samples (arrays over the batch).

    ``crop`` (n, 4) int64 holds top, left, height, width in source pixels, or, for ``crop="center"``, in the
    pixels of the image after the pre-resize to ``resize`` (n, 2) (height, width). ``flip`` is the net
    horizontal flip (XOR of the view's flip ops). ``ops[j]`` holds the arrays of ``view.ops[j]``:
    every op has ``apply`` (n,) bool; ColorJitter adds ``order`` (n, 4) (a permutation of 0 = brightness,
    1 = contrast, 2 = saturation, 3 = hue) and ``factors`` (n, 4); GaussianBlur adds ``sigma`` (n,) and
    ``kernel_size`` (int).
    """

    view: View
    crop: np.ndarray
    resize: np.ndarray | None
    flip: np.ndarray
    ops: list[dict]

    def __len__(self) -> int:
        return len(self.crop)


def random_resized_crop(sizes: np.ndarray, scale, ratio, rng: np.random.Generator) -> np.ndarray:
    """(n, 4) windows top, left, height, width for images of ``sizes`` (n, 2) = (H, W), as torchvision."""
    sizes = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
    n = len(sizes)
    H, W = sizes[:, 0:1].astype(np.float64), sizes[:, 1:2].astype(np.float64)
    target = H * W * rng.uniform(scale[0], scale[1], size=(n, RRC_ATTEMPTS))
    aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1]), size=(n, RRC_ATTEMPTS)))
    w = np.round(np.sqrt(target * aspect)).astype(np.int64)
    h = np.round(np.sqrt(target / aspect)).astype(np.int64)
    fits = (w > 0) & (w <= W) & (h > 0) & (h <= H)
    first = fits.argmax(axis=1)
    rows = np.arange(n)
    h, w = h[rows, first], w[rows, first]
    u = rng.random((n, 2))
    Hi, Wi = sizes[:, 0], sizes[:, 1]
    top = np.floor(u[:, 0] * (Hi - h + 1)).astype(np.int64)
    left = np.floor(u[:, 1] * (Wi - w + 1)).astype(np.int64)
    for i in np.flatnonzero(~fits.any(axis=1)):  # torchvision's fallback: central crop, aspect clamped
        Hc, Wc = int(Hi[i]), int(Wi[i])
        in_ratio = Wc / Hc
        if in_ratio < min(ratio):
            wc, hc = Wc, int(round(Wc / min(ratio)))
        elif in_ratio > max(ratio):
            hc, wc = Hc, int(round(Hc * max(ratio)))
        else:
            wc, hc = Wc, Hc
        h[i], w[i], top[i], left[i] = hc, wc, (Hc - hc) // 2, (Wc - wc) // 2
    return np.stack([top, left, h, w], axis=1)


def center_crop(sizes: np.ndarray, size: int, resize: int) -> tuple[np.ndarray, np.ndarray]:
    """(pre-resize (n, 2), window (n, 4)) of torchvision's ``Resize(resize)`` + ``CenterCrop(size)``."""
    sizes = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
    pre = np.empty_like(sizes)
    crop = np.empty((len(sizes), 4), dtype=np.int64)
    for i, (H, W) in enumerate(sizes.tolist()):
        short, long = (W, H) if W <= H else (H, W)
        new_long = int(resize * long / short)
        nh, nw = (new_long, resize) if W <= H else (resize, new_long)
        pre[i] = nh, nw
        crop[i] = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0)), size, size
    return pre, crop


def _sample_op(op, view: View, n: int, rng: np.random.Generator) -> dict:
    out = {"apply": rng.random(n) < op.p}
    out.update(op.sample(view.size, n, rng))
    return out


def sample_view(view: View, sizes: np.ndarray, rng: np.random.Generator) -> ViewParams:
    """Sample one view's parameters for images of ``sizes`` (n, 2) = (H, W)."""
    sizes = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
    n = len(sizes)
    resize = None
    if view.crop == "random_resized":
        crop = random_resized_crop(sizes, view.scale, view.ratio, rng)
    elif view.crop == "resize":
        crop = np.concatenate([np.zeros((n, 2), np.int64), sizes], axis=1)
    else:
        resize, crop = center_crop(sizes, view.size, view.resize_to)
    ops = [_sample_op(op, view, n, rng) for op in view.ops]
    flip = np.zeros(n, dtype=bool)
    for op, params in zip(view.ops, ops, strict=True):
        if op.mirrors:
            flip ^= params["apply"]
    return ViewParams(view=view, crop=crop, resize=resize, flip=flip, ops=ops)


def sample_batch(recipe: Recipe, sizes: np.ndarray, rng: np.random.Generator) -> list[ViewParams]:
    """Parameters of every output view of ``recipe`` (``count`` expanded) for one batch."""
    return [sample_view(v, sizes, rng) for v in recipe.expanded_views()]


def batch_rng(seed: int, epoch: int, shard_id: int, batch_index: int) -> np.random.Generator:
    """The generator of one batch: a pure function of (seed, epoch, shard, batch), whatever the backend."""
    return np.random.default_rng([int(seed), int(epoch), int(shard_id), int(batch_index)])

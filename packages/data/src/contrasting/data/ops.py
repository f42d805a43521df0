"""Augmentation ops: each one class holding its parameters (typed, checked data), how its per-sample randomness is
drawn, and how every executor applies it — so a new op is one class here plus, where its arithmetic is new, a
kernel in each executor's module. The executors dispatch on these methods, never on the op's type:

===================== ==================================================================================
``sample``            extra per-sample parameters beyond ``apply`` (NumPy, from the batch's generator;
                      ``params.sample_view``)
``slots`` / ``pack``  their floats in the DALI parameter vector, after the ``apply`` flag
                      (``dali_backend.ParamLayout``)
``numba_row``         (kind, argument) of the op in the Numba program (``dali_numba``); None: not photometric
``dali_step``         (kind, static argument) of the native DALI plan (``dali_backend``); None: not photometric
``torch_batch``       the op on the rows of a uint8 batch that drew it, in place (``torch_photometric``)
``torchvision_one``   the op on one image (``torchvision_backend.apply_view``)
``torchvision_transform``  the plain torchvision v2 transform (``torchvision_backend.view_transform``)
===================== ==================================================================================

An op that ``mirrors`` (the horizontal flip) moves pixels: it applies to the image and a dense target alike, and
the photometric executors leave it to the geometry (the net flip of ``ViewParams``). Conventions are torchvision's:

* ``ColorJitter(brightness=0.4)`` means a factor drawn from U[0.6, 1.4]; ``hue=0.1`` a hue shift drawn from
  U[-0.1, 0.1] turns of the colour circle (DALI's degrees: × 360). The four adjustments run in a random order
  per sample, as torchvision (and SimCLR's TensorFlow code) do.
* ``GaussianBlur.kernel_size=None`` is SimCLR's rule: 10 % of the view size, odd (23 at 224 px, 11 at 96 px);
  the 1-D kernel is torchvision's ``exp(−x²/2σ²)`` normalised, x = −(k−1)/2 … (k−1)/2.
* ``Solarize.threshold`` is on the [0, 1] intensity scale (BYOL: 0.5, i.e. pixels ≥ 127.5 of 255 are inverted).

Backend modules are imported inside the methods, so this module (and a recipe) imports no torch or DALI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

JITTER_IDENTITY = (1.0, 1.0, 1.0, 0.0)  # brightness, contrast, saturation factors and hue shift that do nothing
# Numba program codes of the photometric ops (dali_numba.run dispatches on them)
NUMBA_JITTER, NUMBA_GRAY, NUMBA_BLUR, NUMBA_SOLARIZE = 1.0, 2.0, 3.0, 4.0


def checked_pair(name: str, value, *, low: float | None = None, high: float | None = None) -> tuple[float, float]:
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        lo, hi = float(value[0]), float(value[1])
    else:
        raise ValueError(f"{name}: expected a pair (low, high), got {value!r}")
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise ValueError(f"{name}: expected finite low <= high, got {value!r}")
    if (low is not None and lo < low) or (high is not None and hi > high):
        raise ValueError(f"{name}: expected values in [{low}, {high}], got {value!r}")
    return lo, hi


def _probability(name: str, p) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: expected a probability in [0, 1], got {p!r}")
    return float(p)


def _jitter_range(name: str, value, center: float, bound: tuple[float, float]) -> tuple[float, float] | None:
    """torchvision's ``ColorJitter._check_input``: x → [center − x, center + x] (clipped), None if degenerate."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"ColorJitter.{name}: expected a non-negative value, got {value!r}")
        lo, hi = center - float(value), center + float(value)
        if name != "hue":
            lo = max(lo, 0.0)
    else:
        lo, hi = checked_pair(f"ColorJitter.{name}", value)
    if lo < bound[0] or hi > bound[1]:
        raise ValueError(f"ColorJitter.{name}: range [{lo}, {hi}] leaves [{bound[0]}, {bound[1]}]")
    return None if lo == hi == center else (lo, hi)


def gaussian_kernel1d(kernel_size: int, sigma: float) -> np.ndarray:
    """torchvision's 1-D Gaussian kernel (float32, sums to 1) of odd ``kernel_size`` and width ``sigma``."""
    x = np.arange(kernel_size, dtype=np.float64) - (kernel_size - 1) / 2.0
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


def _rows(on: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.asarray(on, dtype=bool))


class Op:
    """What every augmentation op provides (the module docstring's table); the defaults are those of an op
    without parameters beyond ``apply``. ``p`` is the probability that a sample gets the op."""

    mirrors = False

    def sample(self, view_size: int, n: int, rng: np.random.Generator) -> dict:
        """Per-sample parameters beyond ``apply`` for ``n`` samples of a view of ``view_size`` pixels."""
        return {}

    def slots(self, view_size: int) -> int:
        """Floats this op's parameters take in the DALI parameter vector after its ``apply`` flag."""
        return 0

    def pack(self, params: dict, out: np.ndarray) -> None:
        """Write ``params`` into ``out`` (n, ``slots``)."""

    def _unsupported(self, executor: str):
        return NotImplementedError(f"{executor}: unsupported op {type(self).__name__}")

    def numba_row(self, view_size: int) -> tuple[float, float] | None:
        """(program code, static argument) in ``dali_numba``'s program; None for an op that mirrors."""
        raise self._unsupported("DALI backend")

    def dali_step(self, view_size: int, gpu: bool, hue: str) -> tuple[str, object] | None:
        """(kind, static argument) of the native DALI plan; None for an op that mirrors."""
        raise self._unsupported("DALI backend")

    def torch_batch(self, x, params: dict, on: np.ndarray) -> None:
        """Apply to the samples ``on`` (bool, (n,)) of the uint8 batch ``x`` (n, 3, H, W), in place."""
        raise self._unsupported("torch photometric ops")

    def torchvision_one(self, img, params: dict, i: int):
        """Sample ``i``'s image (3, H, W) uint8 with the op applied (the caller checks ``apply``)."""
        raise self._unsupported("torchvision backend")

    def torchvision_transform(self, size: int):
        """The plain torchvision v2 transform (its own randomness) for a view of ``size`` pixels."""
        raise self._unsupported("torchvision backend")


@dataclass(frozen=True)
class ColorJitter(Op):
    """Brightness, contrast, saturation (multiplicative) and hue (additive, in turns) in a random order.

    Applied as a whole with probability ``p`` (``RandomApply([ColorJitter(...)], p)``).
    """

    brightness: float | tuple[float, float] = 0.0
    contrast: float | tuple[float, float] = 0.0
    saturation: float | tuple[float, float] = 0.0
    hue: float | tuple[float, float] = 0.0
    p: float = 1.0

    def __post_init__(self):
        _probability("ColorJitter.p", self.p)
        self.ranges()

    def ranges(self) -> tuple[tuple[float, float] | None, ...]:
        """(brightness, contrast, saturation, hue) sampling ranges; None for an adjustment that is off."""
        inf = float("inf")
        return (
            _jitter_range("brightness", self.brightness, 1.0, (0.0, inf)),
            _jitter_range("contrast", self.contrast, 1.0, (0.0, inf)),
            _jitter_range("saturation", self.saturation, 1.0, (0.0, inf)),
            _jitter_range("hue", self.hue, 0.0, (-0.5, 0.5)),
        )

    def sample(self, view_size, n, rng):
        """``order`` (n, 4): a uniformly random permutation of the adjustments; ``factors`` (n, 4) ~ U[range]."""
        order = np.argsort(rng.random((n, 4)), axis=1).astype(np.int64)
        factors = np.tile(np.asarray(JITTER_IDENTITY), (n, 1))
        for k, rng_k in enumerate(self.ranges()):
            if rng_k is not None:
                factors[:, k] = rng.uniform(rng_k[0], rng_k[1], size=n)
        return {"order": order, "factors": factors}

    def slots(self, view_size):
        return 8

    def pack(self, params, out):
        out[:, 0:4] = params["order"]
        out[:, 4:8] = params["factors"]

    def numba_row(self, view_size):
        return NUMBA_JITTER, sum(1 << k for k, r in enumerate(self.ranges()) if r is not None)

    def dali_step(self, view_size, gpu, hue):
        from .kernels.dali_kernels import jitter_kernels

        return "jitter", jitter_kernels(self.ranges(), gpu, hue)

    def torch_batch(self, x, params, on):
        import torch

        from .kernels.torch_photometric import JITTER_OPS, update

        enabled = [k for k, r in enumerate(self.ranges()) if r is not None]
        for pos in range(4):
            for k in enabled:
                rows = _rows(on & (params["order"][:, pos] == k))
                if rows.size:
                    factors = np.asarray(params["factors"][rows, k], dtype=np.float32)
                    update(x, rows, JITTER_OPS[k], torch.from_numpy(factors).to(x.device))

    def torchvision_one(self, img, params, i):
        from torchvision.transforms.v2 import functional as F

        adjust = (F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue)
        ranges = self.ranges()
        for k in params["order"][i]:
            if ranges[k] is not None:
                img = adjust[k](img, float(params["factors"][i][k]))
        return img

    def torchvision_transform(self, size):
        from torchvision.transforms import v2

        return v2.RandomApply([v2.ColorJitter(*self.ranges())], p=self.p)


@dataclass(frozen=True)
class Grayscale(Op):
    """ITU-R 601-2 luma (0.2989 R + 0.587 G + 0.114 B) replicated to three channels, with probability ``p``."""

    p: float = 0.2

    def __post_init__(self):
        _probability("Grayscale.p", self.p)

    def numba_row(self, view_size):
        return NUMBA_GRAY, 0.0

    def dali_step(self, view_size, gpu, hue):
        return "gray", None

    def torch_batch(self, x, params, on):
        from .kernels.torch_photometric import grayscale, update

        update(x, _rows(on), grayscale)

    def torchvision_one(self, img, params, i):
        from torchvision.transforms.v2 import functional as F

        return F.rgb_to_grayscale(img, num_output_channels=3)

    def torchvision_transform(self, size):
        from torchvision.transforms import v2

        return v2.RandomGrayscale(p=self.p)


@dataclass(frozen=True)
class GaussianBlur(Op):
    """Gaussian blur with σ ~ U[sigma], a square ``kernel_size`` window (None: 10 % of the view size, odd)."""

    p: float = 0.5
    sigma: tuple[float, float] = (0.1, 2.0)
    kernel_size: int | None = None

    def __post_init__(self):
        _probability("GaussianBlur.p", self.p)
        lo, _ = checked_pair("GaussianBlur.sigma", self.sigma)
        if lo <= 0:
            raise ValueError(f"GaussianBlur.sigma: expected values > 0, got {self.sigma!r}")
        k = self.kernel_size
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0):
            raise ValueError(f"GaussianBlur.kernel_size: expected an odd positive int or None, got {k!r}")

    def window(self, view_size: int) -> int:
        """The kernel size used for a view of ``view_size`` pixels."""
        return self.kernel_size if self.kernel_size is not None else 2 * round(0.05 * view_size) + 1

    def sample(self, view_size, n, rng):
        """``sigma`` (n,) ~ U[sigma]; ``kernel_size``: the view's window."""
        return {"sigma": rng.uniform(self.sigma[0], self.sigma[1], size=n), "kernel_size": self.window(view_size)}

    def slots(self, view_size):
        return self.window(view_size)

    def pack(self, params, out):
        k = params["kernel_size"]
        out[:, 0:k] = np.stack([gaussian_kernel1d(k, s) for s in params["sigma"]])

    def numba_row(self, view_size):
        return NUMBA_BLUR, float(self.window(view_size))

    def dali_step(self, view_size, gpu, hue):
        return "blur", (self.window(view_size), gpu)

    def torch_batch(self, x, params, on):
        import torch

        from .kernels.torch_photometric import blur, update

        rows = _rows(on)
        if rows.size:
            kernels = np.stack([gaussian_kernel1d(params["kernel_size"], s) for s in params["sigma"][rows]])
            update(x, rows, blur, torch.from_numpy(kernels))

    def torchvision_one(self, img, params, i):
        from torchvision.transforms.v2 import functional as F

        k, sigma = params["kernel_size"], float(params["sigma"][i])
        return F.gaussian_blur(img, [k, k], [sigma, sigma])

    def torchvision_transform(self, size):
        from torchvision.transforms import v2

        return v2.RandomApply([v2.GaussianBlur(self.window(size), sigma=self.sigma)], p=self.p)


@dataclass(frozen=True)
class Solarize(Op):
    """Invert the intensities at or above ``threshold`` (on the [0, 1] scale), with probability ``p``."""

    p: float = 0.2
    threshold: float = 0.5

    def __post_init__(self):
        _probability("Solarize.p", self.p)
        if not isinstance(self.threshold, (int, float)) or not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"Solarize.threshold: expected a value in [0, 1], got {self.threshold!r}")

    def numba_row(self, view_size):
        return NUMBA_SOLARIZE, self.threshold * 255.0

    def dali_step(self, view_size, gpu, hue):
        return "solarize", self.threshold

    def torch_batch(self, x, params, on):
        from .kernels.torch_photometric import solarize, update

        update(x, _rows(on), solarize, self.threshold * 255.0)

    def torchvision_one(self, img, params, i):
        from torchvision.transforms.v2 import functional as F

        return F.solarize(img, threshold=self.threshold * 255.0)

    def torchvision_transform(self, size):
        from torchvision.transforms import v2

        return v2.RandomSolarize(threshold=self.threshold * 255.0, p=self.p)


@dataclass(frozen=True)
class HorizontalFlip(Op):
    """Mirror left-right with probability ``p`` (the image and, in dense recipes, its target)."""

    p: float = 0.5
    mirrors = True

    def __post_init__(self):
        _probability("HorizontalFlip.p", self.p)

    def numba_row(self, view_size):
        return None

    def dali_step(self, view_size, gpu, hue):
        return None  # the net flip, in crop_mirror_normalize

    def torch_batch(self, x, params, on):
        return None  # flips commute with every photometric op: the caller applies the net flip

    def torchvision_one(self, img, params, i):
        from torchvision.transforms.v2 import functional as F

        return F.horizontal_flip(img)

    def torchvision_transform(self, size):
        from torchvision.transforms import v2

        return v2.RandomHorizontalFlip(p=self.p)


OPS: dict[str, type[Op]] = {cls.__name__: cls for cls in (ColorJitter, Grayscale, GaussianBlur, Solarize,
                                                          HorizontalFlip)}

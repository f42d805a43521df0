"""The native DALI kernels of the photometric ops (``dali_backend``'s native path; its module docstring tabulates
how each reproduces torchvision's uint8 arithmetic). Per-sample arguments are DataNodes of the per-sample
parameter vector; none of these functions is converted by AutoGraph."""

from __future__ import annotations

import functools

import nvidia.dali.fn as fn
import nvidia.dali.types as types
from nvidia.dali import math as dmath
from nvidia.dali.pipeline import do_not_convert

LUMA = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale weights
TO_UINT8 = 255.999 / 255.0  # torchvision's float→uint8 scale (x·(255 + 1 − 1e-3)), in 0–255 units
TRUNCATE = -0.499 / 255.0  # brightness_shift (in units of 255) that turns DALI's rounding into truncation


@do_not_convert
def on_device(node, gpu: bool):
    """Per-sample parameters are CPU data; GPU arithmetic and filters get a GPU copy."""
    return node.gpu() if gpu else node


@do_not_convert
def to_u8(y):
    """float (already within [0, 255]) → uint8 by truncation, as torchvision's ``Tensor.to(torch.uint8)``."""
    return fn.cast(dmath.floor(y), dtype=types.UINT8)


@do_not_convert
def brightness(x, b, gpu: bool):
    return fn.brightness_contrast(x, brightness=b, brightness_shift=TRUNCATE)


@do_not_convert
def contrast(x, c, gpu: bool):
    if gpu:  # the mean lives on the GPU, and DALI's per-sample arguments must be CPU data
        m = fn.reductions.mean(dmath.floor(fn.coord_transform(x, M=list(LUMA), dtype=types.FLOAT)))
        return to_u8(dmath.clamp(x * on_device(c, gpu) + m * (1.0 - on_device(c, gpu)), 0.0, 255.0))
    # mean of floor(luma) = mean of DALI's rounded BT.601 luma − 0.5 (uniform fractional parts): |error| < 0.05
    m = fn.reductions.mean(fn.color_space_conversion(x, image_type=types.RGB, output_type=types.GRAY)) - 0.5
    return fn.brightness_contrast(x, contrast=c, contrast_center=m, brightness_shift=TRUNCATE)


@do_not_convert
def saturation(x, s, gpu: bool):
    # DALI's YIQ saturation scales I and Q around the luma Y: the same blend as torchvision's (|Δ| <= 1)
    return fn.hsv(x, saturation=s)


@do_not_convert
def hue_yiq(x, h, gpu: bool):
    """DALI's hue: a rotation of the I, Q chroma plane by 360·h degrees (not HSV's hexcone)."""
    return fn.hsv(x, hue=h * 360.0)


@do_not_convert
def hue_hsv(x, h, gpu: bool):
    """torchvision's RGB→HSV, h += shift (turns, mod 1), HSV→RGB, in the branch-free hexcone form:
    channel_n = V − C·clamp(min(k, 4 − k), 0, 1), k = (n + 6h) mod 6, n = 5, 3, 1 for R, G, B; C = V − min."""
    h = on_device(h, gpu)
    r, g, b = x[:, :, 0:1] * 1.0, x[:, :, 1:2] * 1.0, x[:, :, 2:3] * 1.0
    maxc = dmath.max(dmath.max(r, g), b)
    chroma = maxc - dmath.min(dmath.min(r, g), b)
    inv = 1.0 / dmath.max(chroma, 1e-6)
    rc, gc, bc = (maxc - r) * inv, (maxc - g) * inv, (maxc - b) * inv
    is_r = maxc == r
    is_g = (maxc == g) & (maxc != r)
    is_b = (maxc != g) & (maxc != r)
    h6 = is_r * (bc - gc) + is_g * (rc - bc + 2.0) + is_b * (gc - rc + 4.0) + h * 6.0
    out = []
    for n in (5.0, 3.0, 1.0):
        k = h6 + n
        k = k - dmath.floor(k / 6.0) * 6.0
        out.append(to_u8((maxc - chroma * dmath.clamp(dmath.min(k, 4.0 - k), 0.0, 1.0)) * TO_UINT8))
    return fn.cat(*out, axis=2)


HUE_MODELS = {"hsv": hue_hsv, "yiq": hue_yiq}


@do_not_convert
def grayscale(x):
    """floor(0.2989 R + 0.587 G + 0.114 B) in all three channels (coord_transform rounds: shift by −0.499)."""
    return fn.coord_transform(x, M=list(LUMA) * 3, T=[-0.499] * 3, dtype=types.UINT8)


@do_not_convert
def blur(x, kernel, k: int, gpu: bool):
    kv = on_device(fn.reshape(kernel, shape=[k, 1]), gpu)
    kh = on_device(fn.reshape(kernel, shape=[1, k]), gpu)
    y = fn.filter(x, kv, border="reflect_101", dtype=types.FLOAT)
    y = fn.filter(y, kh, border="reflect_101")
    return to_u8(dmath.clamp(y + 0.5, 0.0, 255.0))  # torchvision rounds the float convolution


@do_not_convert
def solarize(x, threshold: float):
    t = threshold * 255.0
    return fn.lookup_table(x, keys=list(range(256)), values=[255 - v if v >= t else v for v in range(256)],
                           dtype=types.UINT8)


def jitter_kernels(ranges, gpu: bool, hue: str) -> tuple:
    """The native kernels of the four colour-jitter adjustments (None where ``ranges`` disables one)."""
    fns = (brightness, contrast, saturation, HUE_MODELS[hue])
    return tuple(None if r is None else functools.partial(f, gpu=gpu) for f, r in zip(fns, ranges, strict=True))

"""The photometric ops of a view as one compiled per-sample function for DALI's CPU pipeline.

DALI's native CPU operators need about a hundred graph nodes per view to express torchvision's colour jitter
(a random order of four ops, each a conditional, and the HSV hexcone hue in element-wise arithmetic), and
each node is a pass over the image plus scheduling. Here the whole photometric chain of a view — colour
jitter in its sampled order, grayscale, Gaussian blur, solarize — runs as one Numba-compiled function that
DALI calls per sample (``nvidia.dali.plugin.numba.fn.numba_function``), in torchvision's own uint8
arithmetic (float32, truncation back to uint8 after every op, as ``torchvision.transforms.v2.functional``):

================ ==========================================================================================
brightness       y = trunc(clamp(b·v, 0, 255))
contrast         y = trunc(clamp(c·v + (1 − c)·m, 0, 255)), m = mean over pixels of floor(luma)
saturation       y = trunc(clamp(s·v + (1 − s)·floor(luma), 0, 255))
luma             0.2989 R + 0.587 G + 0.114 B (float32)
hue              v/255 → HSV (hexcone), h ← (h + shift) mod 1, HSV → RGB, trunc(255.999·x)
grayscale        trunc(luma) in all three channels
blur             separable float32 convolution with the sampled kernel, reflect-101 borders, rounded
solarize         v → 255 − v where v ≥ 255·threshold
================ ==========================================================================================

The view's op sequence is a static program (``program``): rows of (kind, offset into the parameter vector,
argument); the per-sample parameters are the same float32 vector the native path reads (``ParamLayout``).
"""

from __future__ import annotations

import numba
import numpy as np

from ..ops import NUMBA_BLUR as BLUR
from ..ops import NUMBA_GRAY as GRAY
from ..ops import NUMBA_JITTER as JITTER
from ..ops import NUMBA_SOLARIZE as SOLARIZE
from ..recipes import View


def program(view: View, offsets: tuple[int, ...]) -> np.ndarray:
    """(n_ops, 3) float32 rows (kind, parameter offset, argument) of ``view``'s photometric ops (each op's
    ``numba_row``; ops that mirror are left to the caller).

    Arguments: jitter → bit mask of the enabled adjustments (1 brightness, 2 contrast, 4 saturation, 8 hue);
    blur → the window k; solarize → the threshold on the 0–255 scale.
    """
    rows = [(row[0], o, row[1]) for op, o in zip(view.ops, offsets, strict=True)
            if (row := op.numba_row(view.size)) is not None]
    return np.array(rows, dtype=np.float32).reshape(-1, 3)


@numba.njit(cache=True)
def _to_u8(y):
    """float32 → uint8 as torch's ``clamp_(0, 255).to(uint8)``: clamp, then truncate."""
    if y < 0.0:
        return np.uint8(0)
    if y > 255.0:
        return np.uint8(255)
    return np.uint8(np.int32(y))


@numba.njit(cache=True)
def _fma(a, b, c):
    """float32 a + b·c rounded once, as torch's vectorised ``add(other, alpha=…)`` (a fused multiply-add)."""
    return np.float32(np.float64(a) + np.float64(b) * np.float64(c))


@numba.njit(cache=True)
def _luma(r, g, b):
    """torch's ``r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114)``."""
    y = np.float32(r) * np.float32(0.2989)
    y = _fma(y, np.float32(g), np.float32(0.587))
    return _fma(y, np.float32(b), np.float32(0.114))


@numba.njit(cache=True)
def _brightness(src, dst, f):
    s1, d1 = src.reshape(-1), dst.reshape(-1)
    for x in range(s1.shape[0]):
        d1[x] = _to_u8(np.float32(s1[x]) * f)


@numba.njit(cache=True)
def _blend_with(src, dst, f, gray, per_pixel):
    """dst = trunc(clamp(f·src + (1 − f)·g)), g the per-pixel floored luma or the scalar ``gray``."""
    h, w, _ = src.shape
    alpha = np.float32(1.0 - np.float64(f))
    for i in range(h):
        for j in range(w):
            g = gray
            if per_pixel:
                g = np.float32(np.floor(_luma(src[i, j, 0], src[i, j, 1], src[i, j, 2])))
            for c in range(3):
                dst[i, j, c] = _to_u8(_fma(np.float32(src[i, j, c]) * f, g, alpha))


@numba.njit(cache=True)
def _mean_floor_luma(src):
    h, w, _ = src.shape
    total = 0.0
    for i in range(h):
        for j in range(w):
            total += np.floor(_luma(src[i, j, 0], src[i, j, 1], src[i, j, 2]))
    return np.float32(total / max(h * w, 1))


@numba.njit(cache=True)
def _hue(src, dst, shift):
    """torchvision's ``adjust_hue`` (float32 throughout), written branch-free so that the pixel loop vectorises."""
    s1, d1 = src.reshape(-1), dst.reshape(-1)
    inv = np.float32(1.0 / 255.0)
    one, zero = np.float32(1.0), np.float32(0.0)
    sixth, to_u8 = np.float32(1.0 / 6.0), np.float32(255.999)
    for q in range(s1.shape[0] // 3):
        r = np.float32(s1[3 * q]) * inv
        g = np.float32(s1[3 * q + 1]) * inv
        b = np.float32(s1[3 * q + 2]) * inv
        maxc = max(r, max(g, b))
        minc = min(r, min(g, b))
        eqc = maxc == minc
        cr = maxc - minc
        s = cr / (one if eqc else maxc)
        crd = one if eqc else cr
        rc, gc, bc = (maxc - r) / crd, (maxc - g) / crd, (maxc - b) / crd
        hh = (bc - gc) if maxc == r else ((rc + np.float32(2.0) - bc) if maxc == g else (gc + np.float32(4.0) - rc))
        hh = hh * sixth + one
        hh = hh - np.floor(hh)  # fmod(·, 1) of a positive number
        hh = hh + shift
        hh = hh - np.floor(hh)  # remainder(·, 1)
        h6 = hh * np.float32(6.0)
        fi = np.floor(h6)
        f = h6 - fi
        i = np.int32(fi)
        i = i - 6 if i >= 6 else i  # h6 rounds up to 6.0 for h just below 1
        sxf = s * f
        oms = one - s
        v = maxc
        qq = min(max((one - sxf) * v, zero), one)
        t = min(max((sxf + oms) * v, zero), one)
        p = min(max(oms * v, zero), one)
        ro = v if (i == 0 or i == 5) else (qq if i == 1 else (p if i <= 3 else t))
        go = t if i == 0 else (v if i <= 2 else (qq if i == 3 else p))
        bo = p if i <= 1 else (t if i == 2 else (v if i <= 4 else qq))
        d1[3 * q] = np.uint8(np.int32(ro * to_u8))
        d1[3 * q + 1] = np.uint8(np.int32(go * to_u8))
        d1[3 * q + 2] = np.uint8(np.int32(bo * to_u8))


@numba.njit(cache=True)
def _gray(src, dst):
    h, w, _ = src.shape
    for i in range(h):
        for j in range(w):
            y = np.uint8(np.int32(_luma(src[i, j, 0], src[i, j, 1], src[i, j, 2])))
            dst[i, j, 0] = y
            dst[i, j, 1] = y
            dst[i, j, 2] = y


@numba.njit(cache=True)
def _reflect(i, n):
    if i < 0:
        i = -i
    if i >= n:
        i = 2 * n - 2 - i
    return i


@numba.njit(cache=True)
def _blur(src, dst, kernel):
    """Vertical then horizontal pass over whole rows (contiguous W·3 runs, so the inner loops vectorise)."""
    h, w, _ = src.shape
    k = kernel.shape[0]
    r = k // 2
    row = w * 3
    s2 = src.reshape(h, row)
    pad = np.empty((w + 2 * r) * 3, dtype=np.float32)
    acc = np.empty(row, dtype=np.float32)
    d2 = dst.reshape(h, row)
    for i in range(h):
        acc[:] = 0.0
        for t in range(k):
            srow = s2[_reflect(i + t - r, h)]
            kt = kernel[t]
            for x in range(row):
                acc[x] += kt * np.float32(srow[x])
        pad[r * 3:r * 3 + row] = acc
        for j in range(r):  # reflect-101 borders of the row
            for c in range(3):
                pad[(r - 1 - j) * 3 + c] = acc[(j + 1) * 3 + c]
                pad[(r + w + j) * 3 + c] = acc[(w - 2 - j) * 3 + c]
        acc[:] = 0.0
        for t in range(k):
            kt = kernel[t]
            base = t * 3
            for x in range(row):
                acc[x] += kt * pad[base + x]
        for x in range(row):
            d2[i, x] = _to_u8(np.floor(acc[x] + np.float32(0.5)))


@numba.njit(cache=True)
def _solarize(src, dst, threshold):
    s1, d1 = src.reshape(-1), dst.reshape(-1)
    for x in range(s1.shape[0]):
        v = s1[x]
        d1[x] = np.uint8(255 - v) if v >= threshold else v


@numba.njit(cache=True)
def _jitter_op(k, src, dst, f):
    if k == 0:
        _brightness(src, dst, f)
    elif k == 1:
        _blend_with(src, dst, f, _mean_floor_luma(src), False)
    elif k == 2:
        _blend_with(src, dst, f, np.float32(0.0), True)
    else:
        _hue(src, dst, f)


@numba.njit(cache=True)
def run_program(out, img, p, prog):
    """Apply ``prog`` (rows of ``program``) with parameters ``p`` to ``img`` (H, W, 3) uint8, into ``out``."""
    a = img.copy()
    b = np.empty_like(a)
    for row in range(prog.shape[0]):
        kind, o, arg = prog[row, 0], int(prog[row, 1]), prog[row, 2]
        if p[o] <= 0.5:
            continue
        if kind == JITTER:
            mask = int(arg)
            for pos in range(4):
                k = int(p[o + 1 + pos])
                if mask & (1 << k):
                    _jitter_op(k, a, b, p[o + 5 + k])
                    a, b = b, a
        elif kind == GRAY:
            _gray(a, b)
            a, b = b, a
        elif kind == BLUR:
            _blur(a, b, p[o + 1:o + 1 + int(arg)])
            a, b = b, a
        elif kind == SOLARIZE:
            _solarize(a, b, arg)
            a, b = b, a
    out[:] = a


def same_shape(outs, ins):
    """DALI setup function: each sample's output has its input image's shape."""
    for sample in range(len(outs[0])):
        for d in range(len(outs[0][sample])):
            outs[0][sample][d] = ins[0][sample][d]


def run(out, img, p, prog):
    """DALI's per-sample ``run_fn``: ``run_program`` with the view's program as a third (constant) input, so
    that one compiled function serves every view of every pipeline."""
    run_program(out, img, p, prog)

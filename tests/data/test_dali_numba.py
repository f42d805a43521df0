"""The Numba photometric kernels of DALI's CPU path against torchvision's uint8 functional ops, op by op, on
random images of odd sizes: identical bytes, except that contrast (mean of the floored luma summed in a
different order) may move a value by one level where the blend lands on an integer."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.transforms.v2 import functional as F

from contrasting.data.executors.dali_backend import ParamLayout
from contrasting.data.kernels import dali_numba as dn
from contrasting.data.params import gaussian_kernel1d
from contrasting.data.recipes import ColorJitter, GaussianBlur, Grayscale, HorizontalFlip, Solarize, View

sizes = st.tuples(st.integers(12, 41), st.integers(12, 41))


def _image(seed: int, h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = np.cumsum(rng.integers(-9, 10, (h, w, 3)), axis=1) + rng.integers(0, 255, (1, 1, 3))
    noisy = rng.integers(0, 256, (h, w, 3))
    return np.where(rng.random((h, w, 1)) < 0.5, smooth % 256, noisy).astype(np.uint8)


def _torch(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1)


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).numpy()


def _diff(a: np.ndarray, b: np.ndarray) -> tuple[int, float]:
    d = np.abs(a.astype(np.int32) - b.astype(np.int32))
    return int(d.max()), float((d > 0).mean())


ADJUST = (F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue)


@settings(max_examples=25, deadline=None)
@given(size=sizes, seed=st.integers(0, 10_000), k=st.integers(0, 3),
       u=st.floats(0.0, 1.0, allow_nan=False))
def test_jitter_ops_match_torchvision(size, seed, k, u):
    factor = np.float32(u - 0.5) if k == 3 else np.float32(2.0 * u)  # hue in [-0.5, 0.5], others in [0, 2]
    img = _image(seed, *size)
    out = np.empty_like(img)
    dn._jitter_op(k, img, out, factor)
    ref = _numpy(ADJUST[k](_torch(img), float(factor)))
    worst, frac = _diff(out, ref)
    if k == 1:
        assert worst <= 1 and frac <= 0.01, (worst, frac)
    else:
        assert worst == 0, (k, float(factor), worst, frac)


@settings(max_examples=20, deadline=None)
@given(size=sizes, seed=st.integers(0, 10_000), sigma=st.floats(0.1, 3.0), k=st.sampled_from([3, 5, 9, 11]))
def test_blur_matches_torchvision(size, seed, sigma, k):
    img = _image(seed, *size)
    out = np.empty_like(img)
    dn._blur(img, out, gaussian_kernel1d(k, sigma).astype(np.float32))
    ref = _numpy(F.gaussian_blur(_torch(img), [k, k], [sigma, sigma]))
    worst, frac = _diff(out, ref)
    assert worst <= 1 and frac <= 0.002, (worst, frac)  # 2-D vs separable float32 sums: ties at .5 only


@pytest.mark.parametrize("threshold", [0.0, 0.5, 0.7, 1.0])
def test_solarize_and_grayscale_match_torchvision(threshold):
    img = _image(1, 23, 17)
    out = np.empty_like(img)
    dn._solarize(img, out, threshold * 255.0)
    assert np.array_equal(out, _numpy(F.solarize(_torch(img), threshold * 255.0)))
    dn._gray(img, out)
    assert np.array_equal(out, _numpy(F.rgb_to_grayscale(_torch(img), num_output_channels=3)))


def test_program_runs_ops_in_order_with_their_flags():
    """A view with jitter (sampled order), grayscale, blur and solarize: the program applies the enabled ops in
    declaration order and the jitter's adjustments in the sampled order, skipping disabled ones."""
    view = View(24, ops=(ColorJitter(0.4, 0.4, 0.4, 0.1), Grayscale(p=0.5), GaussianBlur(p=0.5, kernel_size=5),
                         Solarize(p=0.5), HorizontalFlip()))
    layout = ParamLayout.of(view)
    prog = dn.program(view, layout.offsets)
    assert prog.shape == (4, 3) and list(prog[:, 0]) == [dn.JITTER, dn.GRAY, dn.BLUR, dn.SOLARIZE]
    img = _image(7, 24, 24)
    p = np.zeros(layout.length, dtype=np.float32)
    o_jit, o_gray, o_blur, o_sol = layout.offsets[:4]
    order, factors = [3, 0, 2, 1], np.array([1.3, 0.7, 1.5, -0.08], dtype=np.float32)
    p[o_jit], p[o_jit + 1:o_jit + 5], p[o_jit + 5:o_jit + 9] = 1, order, factors
    kernel = gaussian_kernel1d(5, 1.2).astype(np.float32)
    p[o_blur], p[o_blur + 1:o_blur + 6] = 1, kernel
    p[o_sol] = 1  # grayscale stays off
    out = np.empty_like(img)
    dn.run(out, img, p, prog)
    ref = _torch(img)
    for k in order:
        ref = ADJUST[k](ref, float(factors[k]))
    ref = F.solarize(F.gaussian_blur(ref, [5, 5], [1.2, 1.2]), 127.5)
    worst, frac = _diff(out, _numpy(ref))
    assert worst <= 1 and frac <= 0.01, (worst, frac)
    p[o_jit] = p[o_blur] = p[o_sol] = 0  # everything off: the image passes through
    dn.run(out, img, p, prog)
    assert np.array_equal(out, img)

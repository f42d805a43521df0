"""Our NumPy samplers draw from torchvision's own distributions (``make_params`` of the v2 transforms).

Two-sample Kolmogorov–Smirnov tests at fixed seeds (p > 1e-3), binomial/χ² tests for probabilities and orders.
Both executors take their parameters from these samplers, so this is the parameter-distribution half of the
DALI ↔ torchvision equivalence; test_equivalence.py is the pixel half.
"""

import itertools

import numpy as np
import pytest
import torch
from scipy import stats
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from contrasting.data.params import center_crop, gaussian_kernel1d, random_resized_crop, sample_view
from contrasting.data.recipes import ColorJitter, GaussianBlur, Grayscale, View

N = 3000
P_MIN = 1e-3


def _tv_rrc(h, w, scale, ratio, n):
    torch.manual_seed(0)
    t = v2.RandomResizedCrop(32, scale=scale, ratio=ratio)
    img = torch.zeros(1, h, w)
    out = np.array([[p["top"], p["left"], p["height"], p["width"]] for p in (t.make_params([img]) for _ in range(n))])
    return out


@pytest.mark.parametrize("hw, scale, ratio", [
    ((120, 200), (0.08, 1.0), (3 / 4, 4 / 3)),
    ((40, 400), (0.14, 1.0), (3 / 4, 4 / 3)),  # extreme aspect: the centre-crop fallback fires often
    ((64, 64), (0.05, 0.14), (3 / 4, 4 / 3)),
])
def test_random_resized_crop_matches_torchvision(hw, scale, ratio):
    ours = random_resized_crop(np.tile(hw, (N, 1)), scale, ratio, np.random.default_rng(0))
    ref = _tv_rrc(*hw, scale, ratio, N)
    H, W = hw
    assert (ours[:, 0] >= 0).all() and (ours[:, 1] >= 0).all()
    assert (ours[:, 0] + ours[:, 2] <= H).all() and (ours[:, 1] + ours[:, 3] <= W).all()
    for name, f in [("area", lambda c: c[:, 2] * c[:, 3] / (H * W)),
                    ("log-aspect", lambda c: np.log(c[:, 3] / c[:, 2])),
                    ("top", lambda c: c[:, 0]), ("left", lambda c: c[:, 1])]:
        p = stats.ks_2samp(f(ours), f(ref)).pvalue
        assert p > P_MIN, f"{name}: KS p={p:.2e} for {hw} {scale}"
    # the fallback window (whole image, aspect clamped) appears equally often
    fallback = lambda c: np.mean(c[:, 3] * c[:, 2] == (c[:, 3].max() * c[:, 2].max()))
    assert abs(fallback(ours) - fallback(ref)) < 0.03


def test_center_crop_is_torchvisions_resize_then_center_crop():
    sizes = np.array([[50, 80], [80, 50], [33, 33], [300, 301]])
    pre, crop = center_crop(sizes, 24, 28)
    for (h, w), (nh, nw), (t, l, ch, cw) in zip(sizes.tolist(), pre.tolist(), crop.tolist(), strict=True):
        img = torch.arange(h * w, dtype=torch.float32).reshape(1, h, w)
        ref = F.center_crop(F.resize(img, 28, antialias=True), [24, 24])
        ours = F.crop(F.resize(img, [nh, nw], antialias=True), t, l, ch, cw)
        assert torch.equal(ref, ours)


def test_color_jitter_factors_order_and_probability_match_torchvision():
    op = ColorJitter(0.8, 0.4, 0.2, 0.1, p=0.8)
    view = View(32, ops=(op,))
    prm = sample_view(view, np.tile([40, 40], (N, 1)), np.random.default_rng(1)).ops[0]
    torch.manual_seed(1)
    t = v2.ColorJitter(0.8, 0.4, 0.2, 0.1)
    ref = [t.make_params([]) for _ in range(N)]
    keys = ["brightness_factor", "contrast_factor", "saturation_factor", "hue_factor"]
    for k, key in enumerate(keys):
        p = stats.ks_2samp(prm["factors"][:, k], [r[key] for r in ref]).pvalue
        assert p > P_MIN, f"{key}: KS p={p:.2e}"
    perms = {p: i for i, p in enumerate(itertools.permutations(range(4)))}
    counts = np.bincount([perms[tuple(o)] for o in prm["order"].tolist()], minlength=24)
    assert stats.chisquare(counts).pvalue > P_MIN, "jitter order is not uniform over the 24 permutations"
    assert stats.binomtest(int(prm["apply"].sum()), N, 0.8).pvalue > P_MIN


def test_blur_sigma_and_kernel_match_torchvision():
    view = View(96, ops=(GaussianBlur(p=0.5), Grayscale(p=0.2)))
    blur, gray = sample_view(view, np.tile([40, 40], (N, 1)), np.random.default_rng(2)).ops
    torch.manual_seed(2)
    ref = [v2.GaussianBlur(11, sigma=(0.1, 2.0)).make_params([])["sigma"][0] for _ in range(N)]
    assert stats.ks_2samp(blur["sigma"], ref).pvalue > P_MIN
    assert blur["kernel_size"] == 11
    assert stats.binomtest(int(blur["apply"].sum()), N, 0.5).pvalue > P_MIN
    assert stats.binomtest(int(gray["apply"].sum()), N, 0.2).pvalue > P_MIN
    for k, s in [(23, 0.1), (23, 1.7), (11, 2.0), (3, 0.5)]:
        tv = F._misc._get_gaussian_kernel1d(k, s, dtype=torch.float32, device=torch.device("cpu")).numpy()
        np.testing.assert_allclose(gaussian_kernel1d(k, s), tv, rtol=1e-5, atol=1e-7)


def test_sampling_is_a_pure_function_of_the_generator():
    view = View(32, ops=(ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8), GaussianBlur(p=0.5)))
    sizes = np.array([[40, 60], [70, 30]])
    a = sample_view(view, sizes, np.random.default_rng(7))
    b = sample_view(view, sizes, np.random.default_rng(7))
    np.testing.assert_array_equal(a.crop, b.crop)
    np.testing.assert_array_equal(a.ops[0]["factors"], b.ops[0]["factors"])

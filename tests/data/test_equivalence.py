"""DALI ↔ torchvision equivalence: the same sampled parameters give the same images, op by op and recipe by
recipe, and DALI executes the sampled windows (recovered from its outputs) with torchvision's distribution.

Tolerances are in normalised units (one uint8 level ≈ 0.0174): every registered recipe at random parameters
— mean |Δ| ≤ TOL_MEAN (0.02) and ≤ 1 % of elements off by more than 0.1; fixed parameters: the per-op bounds
in ``FIXED``. The recipe, fixed-parameter and crop tests run on the CPU pipeline and, where CUDA is present,
on the GPU one (mixed decoding of the same JPEGs, the batched torch photometric ops); each records its
measured mean |Δ| and outlier fraction as junit properties. DALI's native hue (``hue="yiq"``, a rotation in
YIQ space) is a documented difference with its own, measured bound.
"""

import numpy as np
import pytest
import torch
from scipy import stats
from torchvision.transforms import v2

from contrasting.data import ArraySource, ImageFolderSource, Recipe, View, get_recipe, list_recipes, make_loader
from contrasting.data.recipes import ColorJitter, GaussianBlur, Grayscale, HorizontalFlip, Solarize
from contrasting.data.sources import scan_source
from tests.data.helpers import TOL_MEAN, TOL_OUTLIER, make_folder, max_normalised_diff, smooth_image

EXCLUDED = {"dense": "needs targets: tests/data/test_dense.py"}
DEVICES = ["cpu", pytest.param("gpu", marks=pytest.mark.gpu)]
SMALL = {"swav": dict(global_size=40, local_size=24), "eval_center": dict(size=32), "eval_resize": dict(size=32)}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return scan_source(ImageFolderSource(make_folder(tmp_path_factory.mktemp("eq"), per_class=3,
                                                     size_range=(40, 90))))


def _run_both(recipe, source, batch_size, device="cpu", **dali_kw):
    dali = list(make_loader(recipe, source, batch_size, backend="dali", device=device, seed=3, **dali_kw))
    ref = list(make_loader(recipe, source, batch_size, backend="torchvision", num_workers=0, seed=3))
    assert len(dali) == len(ref)
    for d, t in zip(dali, ref, strict=True):
        assert torch.equal(d.indices, t.indices) and len(d.views) == len(t.views)
        assert all(v.device.type == ("cuda" if device == "gpu" else "cpu") for v in d.views)
        d.views = [v.cpu() for v in d.views]
        if t.labels is not None:
            assert torch.equal(d.labels.cpu(), t.labels)
    return dali, ref


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", [n for n in list_recipes() if n not in EXCLUDED])
def test_registered_recipe_agrees(name, folder, device, record_property):
    recipe = get_recipe(name, **SMALL.get(name, dict(size=40)))
    dali, ref = _run_both(recipe, folder, 5, device)
    diffs = [max_normalised_diff(a, b) for d, t in zip(dali, ref, strict=True)
             for a, b in zip(d.views, t.views, strict=True)]
    record_property("max_mean", max(m for m, _ in diffs))
    record_property("max_outliers", max(o for _, o in diffs))
    for d, t in zip(dali, ref, strict=True):
        for k, (a, b) in enumerate(zip(d.views, t.views, strict=True)):
            assert a.shape == b.shape and a.dtype == b.dtype == torch.float32
            mean, outliers = max_normalised_diff(a, b)
            assert mean <= TOL_MEAN and outliers <= TOL_OUTLIER, f"{name} view {k}: mean {mean:.4f} out {outliers:.4f}"


def _fixed(op, crop="resize"):
    return Recipe("fixed", (View(40, crop=crop, ops=(op,) if op else ()),))


# (op, mean |Δ| bound): probabilities 1 and degenerate ranges, so every sample gets the same parameters
FIXED = [
    (None, 0.005),
    (ColorJitter(brightness=(1.6, 1.6)), 0.005),
    (ColorJitter(contrast=(0.5, 0.5)), 0.005),
    (ColorJitter(contrast=(1.7, 1.7)), 0.005),
    (ColorJitter(saturation=(1.7, 1.7)), 0.02),  # DALI's YIQ saturation: unfloored luma, rounding (< 1 level)
    (ColorJitter(saturation=(0.2, 0.2)), 0.02),
    (ColorJitter(hue=(0.12, 0.12)), 0.005),
    (ColorJitter(hue=(-0.3, -0.3)), 0.005),
    (ColorJitter((1.3, 1.3), (0.7, 0.7), (1.5, 1.5), (0.1, 0.1)), 0.02),  # random order, fixed factors
    (Grayscale(p=1.0), 0.005),
    (GaussianBlur(p=1.0, sigma=(1.5, 1.5), kernel_size=9), 0.005),
    (Solarize(p=1.0, threshold=0.5), 0.005),
    (HorizontalFlip(p=1.0), 0.005),
]


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(11)
    return ArraySource(np.stack([smooth_image(rng, 56, 72) for _ in range(6)]))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op, bound", FIXED, ids=lambda x: type(x).__name__ if not isinstance(x, float) else "")
def test_fixed_parameters_agree(op, bound, arrays, device, record_property):
    (d,), (t,) = _run_both(_fixed(op), arrays, 6, device)
    mean, outliers = max_normalised_diff(d.views[0], t.views[0])
    record_property("mean", mean)
    record_property("outliers", outliers)
    assert mean <= bound, f"{op}: mean |Δ| {mean:.4f} > {bound}"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("crop", ["center", "random_resized"])
def test_crop_modes_agree(crop, arrays, device):
    (d,), (t,) = _run_both(_fixed(None, crop=crop), arrays, 6, device)
    assert max_normalised_diff(d.views[0], t.views[0])[0] <= 0.005


def test_yiq_hue_is_a_documented_difference(arrays):
    """hue="yiq" uses DALI's fn.hsv: exact for brightness/contrast/saturation, ≈ 0.1–0.3 off for hue 0.1."""
    (d,), (t,) = _run_both(_fixed(ColorJitter(hue=(0.1, 0.1))), arrays, 6, hue="yiq")
    mean, _ = max_normalised_diff(d.views[0], t.views[0])
    assert 0.05 < mean < 0.4, f"YIQ vs HSV hue: mean |Δ| {mean:.3f}"
    (d,), (t,) = _run_both(_fixed(ColorJitter((1.3, 1.3), (0.7, 0.7), (1.5, 1.5))), arrays, 6, hue="yiq")
    assert max_normalised_diff(d.views[0], t.views[0])[0] <= 0.02


def test_dali_executes_the_sampled_windows_with_torchvisions_distribution():
    """A coordinate image (R = 2x, G = 2y) lets us read each output's crop window and flip back."""
    S, H, W = 12, 100, 120
    yy, xx = np.mgrid[0:H, 0:W]
    coord = np.stack([xx * 2 % 256, yy * 2 % 256, np.full_like(xx, 128)], -1).astype(np.uint8)
    src = ArraySource(np.repeat(coord[None, :, :, :].clip(0, 255), 48, axis=0))
    recipe = Recipe("coords", (View(S, count=4, ops=(HorizontalFlip(),)),), mean=(0, 0, 0), std=(1, 1, 1))
    loader = make_loader(recipe, src, 48, backend="dali", device="cpu", seed=0, shuffle=False)
    (batch,), (tasks,) = list(loader), loader.tasks(0)
    areas = []
    for view, vp in zip(batch.views, tasks[1], strict=True):
        r = view[:, 0].numpy() * 255 / 2  # source x of each output pixel
        g = view[:, 1].numpy() * 255 / 2
        flipped = r[:, :, 0].mean(1) > r[:, :, -1].mean(1)
        np.testing.assert_array_equal(flipped, vp.flip)
        top, left, h, w = vp.crop.T
        np.testing.assert_allclose(r.mean((1, 2)), left + w / 2 - 0.5, atol=1.0)
        np.testing.assert_allclose(g.mean((1, 2)), top + h / 2 - 0.5, atol=1.0)
        w_est = np.abs(r[:, :, -1] - r[:, :, 0]).mean(1) * S / (S - 1)
        assert (np.abs(w_est - w) <= 0.1 * w + 2).all(), (w_est, w)
        areas += list(w_est * (np.ptp(g, axis=1).mean(1) * S / (S - 1)) / (H * W))
    torch.manual_seed(0)
    t = v2.RandomResizedCrop(S)
    ref = [(p["height"] * p["width"]) / (H * W) for p in (t.make_params([torch.zeros(1, H, W)]) for _ in range(2000))]
    assert stats.ks_2samp(areas, ref).pvalue > 1e-3

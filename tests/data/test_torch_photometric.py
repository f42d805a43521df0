"""The batched torch photometric ops (the DALI GPU executor's default) against torchvision's uint8 functional
ops applied sample by sample, on random batches of odd sizes with a different factor per sample; on the CPU
and, where CUDA is present, on the GPU. Blends (contrast, saturation) may move a value by one level where
the float32 result lands on an integer (fused vs unfused multiply-add); blur by one level on rare ties."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.transforms.v2 import functional as F

from contrasting.data import ImageFolderSource, get_recipe, make_loader, scan_source
from contrasting.data.executors.dali_backend import resolve_photometric
from contrasting.data.kernels import torch_photometric as tp
from contrasting.data.params import gaussian_kernel1d
from tests.data.helpers import TOL_MEAN, TOL_OUTLIER, make_folder, max_normalised_diff

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]
shapes = st.tuples(st.integers(1, 5), st.integers(9, 37), st.integers(9, 37))
ADJUST = (F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue)


def _batch(seed: int, n: int, h: int, w: int) -> torch.Tensor:
    """(n, 3, h, w) uint8: half smooth ramps, half noise."""
    rng = np.random.default_rng(seed)
    smooth = np.cumsum(rng.integers(-9, 10, (n, 3, h, w)), axis=3) + rng.integers(0, 255, (n, 3, 1, 1))
    noisy = rng.integers(0, 256, (n, 3, h, w))
    return torch.from_numpy(np.where(rng.random((n, 1, h, w)) < 0.5, smooth % 256, noisy).astype(np.uint8))


def _diff(a: torch.Tensor, b: torch.Tensor) -> tuple[int, float]:
    d = (a.cpu().int() - b.cpu().int()).abs()
    return int(d.max()), float((d > 0).float().mean())


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=20, deadline=None)
@given(shape=shapes, seed=st.integers(0, 10_000), k=st.integers(0, 3))
def test_jitter_ops_match_torchvision(device, shape, seed, k):
    x = _batch(seed, *shape)
    rng = np.random.default_rng(seed + 1)
    f = rng.uniform(-0.5, 0.5, shape[0]) if k == 3 else rng.uniform(0.0, 2.0, shape[0])
    out = tp.JITTER_OPS[k](x.to(device), torch.tensor(f, dtype=torch.float32, device=device))
    ref = torch.stack([ADJUST[k](x[i], float(np.float32(f[i]))) for i in range(shape[0])])
    worst, frac = _diff(out, ref)
    if k in (1, 2):
        assert worst <= 1 and frac <= 0.01, (k, worst, frac)
    else:
        assert worst == 0, (k, worst, frac)


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=15, deadline=None)
@given(shape=shapes, seed=st.integers(0, 10_000), k=st.sampled_from([3, 5, 9]))
def test_blur_matches_torchvision(device, shape, seed, k):
    x = _batch(seed, *shape)
    sigma = np.random.default_rng(seed).uniform(0.1, 3.0, shape[0])
    kernels = torch.from_numpy(np.stack([gaussian_kernel1d(k, s) for s in sigma]))
    out = tp.blur(x.to(device), kernels)
    ref = torch.stack([F.gaussian_blur(x[i], [k, k], [float(s), float(s)]) for i, s in enumerate(sigma)])
    worst, frac = _diff(out, ref)
    assert worst <= 1 and frac <= 0.002, (worst, frac)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("threshold", [0.0, 0.5, 0.7, 1.0])
def test_solarize_and_grayscale_match_torchvision(device, threshold):
    x = _batch(3, 3, 23, 17)
    assert torch.equal(tp.solarize(x.to(device), threshold * 255.0).cpu(), F.solarize(x, threshold * 255.0))
    assert torch.equal(tp.grayscale(x.to(device)).cpu(), F.rgb_to_grayscale(x, num_output_channels=3))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return scan_source(ImageFolderSource(make_folder(tmp_path_factory.mktemp("tp"), per_class=3)))


@pytest.mark.parametrize("name, kw", [("simclr", dict(size=40)), ("byol", dict(size=40)),
                                      ("swav", dict(global_size=40, local_size=24))])
def test_dali_with_torch_photometric_matches_the_reference(folder, name, kw):
    """DALI decode + geometry, then these ops: the same views as the torchvision executor (CPU pipeline)."""
    recipe = get_recipe(name, **kw)
    dali = make_loader(recipe, folder, 5, backend="dali", device="cpu", seed=2, photometric="torch")
    ref = make_loader(recipe, folder, 5, backend="torchvision", num_workers=0, seed=2)
    for d, t in zip(dali, ref, strict=True):
        for a, b in zip(d.views, t.views, strict=True):
            mean, out = max_normalised_diff(a, b)
            assert mean <= TOL_MEAN and out <= TOL_OUTLIER, (name, mean, out)


def test_photometric_choice_and_its_errors(folder):
    assert resolve_photometric("auto", "cpu", "hsv") == "numba"
    assert resolve_photometric("auto", "gpu", "hsv") == "torch"
    assert resolve_photometric("auto", "gpu", "yiq") == resolve_photometric("auto", "cpu", "yiq") == "native"
    for args, match in [(("fast", "cpu", "hsv"), "photometric: expected one of"),
                        (("torch", "gpu", "yiq"), "photometric='torch' implements hue='hsv' only"),
                        (("numba", "gpu", "hsv"), "photometric='numba' runs on the CPU")]:
        with pytest.raises(ValueError, match=match):
            resolve_photometric(*args)
    with pytest.raises(TypeError, match="fancy_upsampling: expected a bool"):
        make_loader(get_recipe("simclr", size=32), folder, 4, backend="dali", device="cpu", fancy_upsampling="yes")

"""Dense recipes: geometry applied jointly to image and target (mask, depth, flow), photometry to the image only;
DALI and torchvision agree on targets (nearest-neighbour at pixel centres)."""

import numpy as np
import pytest
import torch
from PIL import Image

from contrasting.data import ArraySource, PairListSource, Recipe, View, get_recipe, make_loader, write_pair_list
from contrasting.data.recipes import HorizontalFlip
from tests.data.helpers import TOL_MEAN, max_normalised_diff, smooth_image

MEAN, STD = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    root = tmp_path_factory.mktemp("dense")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(6):
        img = smooth_image(rng, 48 + 4 * i, 64)
        Image.fromarray(img).save(root / f"img{i}.png")
        mask = (img[..., 0] // 64).astype(np.uint8)
        m = Image.fromarray(mask, "L")
        if i % 2:  # palette masks keep their indices
            m = m.convert("P")
        m.save(root / f"mask{i}.png")
        Image.fromarray(img[..., 1].astype(np.uint16) * 100).save(root / f"depth{i}.png")
        rows.append((root / f"img{i}.png", root / f"mask{i}.png", root / f"depth{i}.png"))
    masks = write_pair_list(root / "masks.txt", [(a, b) for a, b, _ in rows], root=root)
    depths = write_pair_list(root / "depth.txt", [(a, c) for a, _, c in rows], root=root)
    return PairListSource(masks), PairListSource(depths)


def _both(recipe, source):
    out = []
    for kw in (dict(backend="dali", device="cpu"), dict(backend="torchvision", num_workers=0)):
        (batch,) = list(make_loader(recipe, source, 6, seed=4, **kw))
        out.append(batch)
    return out


def test_mask_follows_the_image_geometry(pairs):
    recipe = Recipe("dense", (View(32, count=2, scale=(0.3, 1.0), ops=(HorizontalFlip(),)),), mean=MEAN, std=STD,
                    target="mask")
    dali, ref = _both(recipe, pairs[0])
    for d_img, t_img, d_m, t_m in zip(dali.views, ref.views, dali.targets, ref.targets, strict=True):
        assert d_m.dtype == torch.int64 and d_m.shape == (6, 32, 32)
        assert (d_m == t_m).float().mean() > 0.995
        assert max_normalised_diff(d_img, t_img)[0] < TOL_MEAN
        # the mask is R // 64 of the image: after the joint transform it still is (away from edges)
        assert ((d_img[:, 0] * 255).round().long() // 64 == d_m).float().mean() > 0.9


def test_depth_values_are_kept(pairs):
    recipe = get_recipe("dense", size=32, target="depth")
    dali, ref = _both(recipe, pairs[1])
    for d, t in zip(dali.targets, ref.targets, strict=True):
        assert d.dtype == torch.float32 and d.shape == (6, 1, 32, 32)
        assert (d == t).float().mean() > 0.995
        assert set(torch.unique(d).long().tolist()) <= set((np.arange(256) * 100).tolist())
    assert max_normalised_diff(dali.views[0], ref.views[0])[0] < TOL_MEAN  # with colour jitter


def test_mask_recipe_rejects_depth_pngs(pairs):
    with pytest.raises(ValueError, match="8-bit"):
        make_loader(get_recipe("dense", size=32, target="mask"), pairs[1], 2, backend="torchvision")


def test_flow_vectors_are_rescaled_and_mirrored():
    rng = np.random.default_rng(1)
    images = np.stack([smooth_image(rng, 40, 60) for _ in range(8)])
    flow = np.broadcast_to(np.float32([1.5, -2.0]), (8, 40, 60, 2)).copy()
    recipe = Recipe("flow", (View(20, ops=(HorizontalFlip(),)),), target="flow")
    src = ArraySource(images, targets=flow)
    for kw in (dict(backend="dali", device="cpu"), dict(backend="torchvision", num_workers=0)):
        loader = make_loader(recipe, src, 8, seed=2, shuffle=False, **kw)
        (batch,), ((_, (vp,)),) = list(loader), loader.tasks(0)
        f = batch.targets[0]
        assert f.shape == (8, 2, 20, 20)
        sign = np.where(vp.flip, -1.0, 1.0)
        np.testing.assert_allclose(f[:, 0].mean((1, 2)).numpy(), sign * 1.5 * 20 / vp.crop[:, 3], rtol=1e-4)
        np.testing.assert_allclose(f[:, 1].mean((1, 2)).numpy(), -2.0 * 20 / vp.crop[:, 2], rtol=1e-4)

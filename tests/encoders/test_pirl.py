"""PIRL: the jigsaw tiling and permutation, the negatives, the memory-bank update, the loss against a float64
reference, gradients, training through DeepSpeed (decreasing loss, resume to the same weights as an uninterrupted
run) and the VISSL-PIRL export → import round trip."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from contrasting.encoders import export_backbone, load_backbone
from contrasting.encoders.methods import method_spec
from contrasting.encoders.methods.pirl import (
    PIRLConfig,
    draw_negatives,
    jigsaw_tiles,
    memory_update_,
    patch_size,
    sample_jigsaw,
)
from contrasting.encoders.training.trainer import pretrain

from .helpers import read_log, tiny_backbone, tiny_batch, tiny_config, tiny_method, tiny_source
from .test_byol import _Interrupted


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 5), size=st.integers(3, 23), grid=st.integers(1, 4), seed=st.integers(0, 2**31))
def test_tiles_reassemble_the_image_and_permutations_are_permutations(n, size, grid, seed):
    if size < grid:
        return
    x = torch.randn(n, 3, size, size)
    cell, patch = patch_size(size, grid, 1.0)
    offsets, perms = sample_jigsaw(n, grid, cell, patch, torch.Generator().manual_seed(seed))
    assert (offsets == 0).all() and patch == cell  # full cells: no room to move
    assert (perms.sort(dim=1).values == torch.arange(grid * grid)).all()
    tiles = jigsaw_tiles(x, grid, cell, patch, offsets)
    assert tiles.shape == (n, grid * grid, 3, cell, cell)
    rows = [torch.cat(list(tiles[:, r * grid:(r + 1) * grid].unbind(1)), dim=-1) for r in range(grid)]
    torch.testing.assert_close(torch.cat(rows, dim=-2), x[:, :, :grid * cell, :grid * cell], rtol=0, atol=0)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 4), size=st.integers(9, 40), seed=st.integers(0, 2**31))
def test_patches_are_cut_inside_their_cells(n, size, seed):
    x = torch.arange(n * size * size, dtype=torch.float64).view(n, 1, size, size).expand(n, 3, size, size)
    cell, patch = patch_size(size, 3, 64 / 85)
    offsets, _ = sample_jigsaw(n, 3, cell, patch, torch.Generator().manual_seed(seed))
    assert ((offsets >= 0) & (offsets <= cell - patch)).all()
    tiles = jigsaw_tiles(x, 3, cell, patch, offsets)
    for i in range(n):
        for k in range(9):
            top = (k // 3) * cell + int(offsets[i, k, 0])
            left = (k % 3) * cell + int(offsets[i, k, 1])
            torch.testing.assert_close(tiles[i, k], x[i, :, top:top + patch, left:left + patch], rtol=0, atol=0)


@settings(max_examples=40, deadline=None)
@given(corpus=st.integers(2, 300), batch=st.integers(1, 40), count=st.integers(1, 400), seed=st.integers(0, 99))
def test_negatives_are_distinct_and_exclude_the_batch(corpus, batch, count, seed):
    g = torch.Generator().manual_seed(seed)
    exclude = torch.randperm(corpus, generator=g)[:min(batch, corpus - 1)]
    neg = draw_negatives(corpus, exclude, count, g)
    assert neg.numel() == min(count, corpus - exclude.numel())
    assert neg.unique().numel() == neg.numel() and not torch.isin(neg, exclude).any()
    assert ((neg >= 0) & (neg < corpus)).all()


def test_memory_update_is_the_normalised_moving_average():
    memory = F.normalize(torch.randn(10, 4, dtype=torch.float64), dim=1)
    before = memory.clone()
    idx, f = torch.tensor([7, 2]), torch.randn(2, 4, dtype=torch.float64)
    memory_update_(memory, idx, f, 0.5)
    expected = F.normalize(0.5 * before[idx] + 0.5 * F.normalize(f, dim=1), dim=1)
    torch.testing.assert_close(memory[idx], expected)
    others = torch.ones(10, dtype=torch.bool)
    others[idx] = False
    torch.testing.assert_close(memory[others], before[others], rtol=0, atol=0)


def test_a_row_starts_at_its_images_first_feature():
    memory = F.normalize(torch.randn(6, 3, dtype=torch.float64), dim=1)
    visited = torch.tensor([False, True, False, False, False, False])
    before, f = memory.clone(), torch.randn(2, 3, dtype=torch.float64)
    memory_update_(memory, torch.tensor([0, 1]), f, 0.5, visited)
    torch.testing.assert_close(memory[0], F.normalize(f[0], dim=0))  # first visit: the feature itself
    torch.testing.assert_close(memory[1], F.normalize(0.5 * before[1] + 0.5 * F.normalize(f[1], dim=0), dim=0))
    assert visited.tolist() == [True, True, False, False, False, False]
    torch.testing.assert_close(memory[2:], before[2:], rtol=0, atol=0)


def _nce64(q, pos, neg, tau):
    """−log exp(q·p/τ) / (exp(q·p/τ) + Σ exp(q·n/τ)), materialised in float64, mean over rows."""
    q, pos, neg = (F.normalize(t.double(), dim=1) for t in (q, pos, neg))
    logits = torch.cat([(q * pos).sum(1, keepdim=True), q @ neg.T], dim=1) / tau
    return float((torch.logsumexp(logits, dim=1) - logits[:, 0]).mean())


@settings(max_examples=8, deadline=None)
@given(n=st.sampled_from([3, 5, 7]), negatives=st.sampled_from([1, 13, 45]), lam=st.floats(0.0, 1.0),
       seed=st.integers(0, 99))
def test_loss_matches_the_float64_reference(n, negatives, lam, seed):
    torch.manual_seed(seed)
    method = tiny_method("pirl", num_negatives=negatives, loss_lambda=lam, corpus_size=53, seed=seed).eval()
    views = [torch.randn(n, 3, 20, 20), torch.randn(n, 3, 19, 19)]
    indices = torch.randperm(53)[:n]
    loss = method(views, indices=indices)
    g = method.generator()  # eval: the counter did not move, the same draws again
    cfg = method.config
    cell, patch = patch_size(19, cfg.grid, cfg.patch_fraction)
    offsets, perms = sample_jigsaw(n, cfg.grid, cell, patch, g)
    neg_j, neg_i = (draw_negatives(53, indices, negatives, g) for _ in range(2))
    assert neg_j.numel() == min(negatives, 53 - n)
    with torch.no_grad():
        f = method.image_embedding(views[0])
        tiles = jigsaw_tiles(views[1], cfg.grid, cell, patch, offsets).flatten(0, 1)
        z = method.patch_head(method.backbone.embed(tiles)).view(n, 9, -1)
        z = torch.stack([z[i, perms[i]] for i in range(n)])  # concatenated in the permuted order
        gj = method.jigsaw_head(z.flatten(1))
    m = method.memory
    expected = lam * _nce64(gj, m[indices], m[neg_j], 0.07) + (1 - lam) * _nce64(f, m[indices], m[neg_i], 0.07)
    assert loss.dtype == torch.float32 and math.isclose(float(loss.detach()), expected, rel_tol=1e-5,
                                                               abs_tol=1e-5)


def test_forward_updates_the_bank_rows_of_its_images_in_training_only():
    method = tiny_method("pirl")
    views, _, indices = tiny_batch("pirl")
    before = method.memory.clone()
    method.eval()
    method(views, indices=indices)
    assert int(method.draws) == 0 and torch.equal(method.memory, before)
    method.train()
    method(views, indices=indices)
    changed = (method.memory != before).any(dim=1)
    assert int(method.draws) == 1 and changed.nonzero().squeeze(1).sort().values.tolist() == sorted(indices.tolist())
    torch.testing.assert_close(method.memory.norm(dim=1), torch.ones(64))


def test_gradients_reach_the_online_network_only():
    method = tiny_method("pirl")
    views, _, indices = tiny_batch("pirl")
    method(views, indices=indices).backward()
    assert {n for n, _ in method.named_buffers()} >= {"memory", "draws"} and not method.memory.requires_grad
    assert all(p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
               for n, p in method.named_parameters() if not n.startswith("backbone.fc"))


def test_bad_indices_and_options_are_named():
    method = tiny_method("pirl")
    views, _, indices = tiny_batch("pirl")
    with pytest.raises(ValueError, match="needs each sample's corpus index"):
        method(views)
    with pytest.raises(ValueError, match=r"indices: expected values in \[0, 64\)"):
        method(views, indices=indices + 64)
    with pytest.raises(ValueError, match="corpus_size"):
        tiny_method("pirl", corpus_size=None)


def test_spec_chance_loss_counts_the_negatives():
    spec = method_spec("pirl")
    assert spec.corpus_indices and spec.recipe == "moco_v2"
    assert math.isclose(spec.chance_loss({"num_negatives": 512}, 128), math.log(513))
    assert math.isclose(spec.chance_loss({}, 128), math.log(PIRLConfig.num_negatives + 1))
    assert math.isclose(spec.chance_loss({"corpus_size": 64, "num_negatives": 512}, 8), math.log(57))


def test_trains_with_a_decreasing_loss_through_deepspeed_and_resumes(tmp_path):
    options = {"temperature": 0.2}
    optim = {"lr": 0.1, "scale_lr_with_batch": False}
    full = pretrain(tiny_config("pirl", tmp_path / "full", method_options=options, optim=optim, epochs=4,
                                checkpoint_every=4), tiny_source("pirl"))
    losses = [e["loss"] for e in read_log(tmp_path / "full") if e["event"] == "step"]
    assert full.steps == 32 and all(math.isfinite(v) for v in losses)
    assert sum(losses[-8:]) / 8 < sum(losses[:8]) / 8 - 0.05, losses  # the bank fills with f and both terms learn
    assert int(full.method.draws) == 32

    part = tmp_path / "part"
    with pytest.raises(KeyboardInterrupt):
        pretrain(tiny_config("pirl", part, method_options=options, optim=optim, epochs=4, checkpoint_every=4),
                 _Interrupted(tiny_source("pirl"), after=15))
    resumed = pretrain(tiny_config("pirl", part, method_options=options, optim=optim, epochs=4, checkpoint_every=4),
                       tiny_source("pirl"))
    assert resumed.resumed_from == "step_00000012" and resumed.steps == 32
    for (n, a), b in zip(full.method.state_dict().items(), resumed.method.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=n)  # bit-identical, the memory bank and draws too


def test_vissl_export_imports_back_with_identical_weights(tmp_path):
    from contrasting.encoders.methods.pirl import export_vissl

    method = tiny_method("pirl", seed=3)
    views, _, indices = tiny_batch("pirl")
    method(views, indices=indices)  # BatchNorm running statistics away from their initial values
    path = tmp_path / "pirl_vissl.torch"
    torch.save(export_vissl(method), path)
    backbone, layout = load_backbone(path)
    assert layout == "vissl" and backbone.describe() == method.backbone.describe()
    expected = method.backbone.state_dict()
    for k, v in backbone.state_dict().items():
        torch.testing.assert_close(v, expected[k], rtol=0, atol=0, msg=k)
    back, _ = load_backbone(export_backbone(backbone, tmp_path / "back.pth"), tiny_backbone(1))
    for k, v in back.state_dict().items():
        torch.testing.assert_close(v, expected[k], rtol=0, atol=0, msg=k)

"""Epoch plans: exactly once per epoch, sharding with equal batch counts, last-batch policies, epochs in the
loaders (reproducible, early exit, set_epoch) for both executors."""

import numpy as np
import pytest
import torch

from contrasting.data import ArraySource, Recipe, View, make_loader, plan_epoch
from contrasting.data.recipes import ColorJitter, HorizontalFlip

RECIPE = Recipe("tiny", (View(16, count=2, ops=(HorizontalFlip(), ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8))),))


@pytest.mark.parametrize("n, bs", [(10, 3), (9, 3), (1, 4)])
def test_partial_single_shard_reads_every_sample_once(n, bs):
    batches, padded, dropped = plan_epoch(n, bs, epoch=0, seed=0)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(n)) and (padded, dropped) == (0, 0)
    assert [len(b) for b in batches[:-1]] == [bs] * (len(batches) - 1)


@pytest.mark.parametrize("policy", ["partial", "pad", "drop"])
@pytest.mark.parametrize("n, bs, shards", [(23, 4, 3), (24, 4, 3), (5, 2, 4)])
def test_shards_get_equal_batch_counts_and_cover_the_epoch(policy, n, bs, shards):
    if policy == "drop" and n < bs * shards:
        with pytest.raises(ValueError, match="every batch would be dropped"):
            plan_epoch(n, bs, epoch=0, seed=0, num_shards=shards, last_batch=policy)
        return
    plans = [plan_epoch(n, bs, epoch=1, seed=3, shard_id=s, num_shards=shards, last_batch=policy)
             for s in range(shards)]
    assert len({len(b) for b, _, _ in plans}) == 1, "shards differ in batch count: a collective would hang"
    rows = np.concatenate([np.concatenate(b) for b, _, _ in plans])
    _, padded, dropped = plans[0]
    assert len(rows) == n + padded - dropped
    if policy == "drop":
        assert len(set(rows.tolist())) == len(rows) == n - dropped
        assert all(len(x) == bs for b, _, _ in plans for x in b)
    else:
        assert set(rows.tolist()) == set(range(n)) and padded < (shards if policy == "partial" else shards * bs)
    if policy == "pad":
        assert all(len(x) == bs for b, _, _ in plans for x in b)


def test_plans_are_reproducible_and_change_with_the_epoch():
    a = plan_epoch(50, 8, epoch=2, seed=1)[0]
    b = plan_epoch(50, 8, epoch=2, seed=1)[0]
    c = plan_epoch(50, 8, epoch=3, seed=1)[0]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    assert np.array_equal(np.concatenate(plan_epoch(7, 3, epoch=0, seed=0, shuffle=False)[0]), np.arange(7))
    with pytest.raises(ValueError, match="last_batch"):
        plan_epoch(5, 2, epoch=0, seed=0, last_batch="wrap")
    with pytest.raises(ValueError, match="shard_id"):
        plan_epoch(5, 2, epoch=0, seed=0, shard_id=2, num_shards=2)


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(0)
    return ArraySource((rng.random((11, 20, 24, 3)) * 255).astype(np.uint8), labels=np.arange(11) % 3)


@pytest.mark.parametrize("kw", [dict(backend="dali", device="cpu"), dict(backend="torchvision", num_workers=1)],
                         ids=["dali", "torchvision"])
def test_loader_epochs(arrays, kw):
    loader = make_loader(RECIPE, arrays, 4, seed=5, **kw)
    assert len(loader) == 3
    e0 = list(loader)
    assert [len(b.indices) for b in e0] == [4, 4, 3]
    assert sorted(torch.cat([b.indices for b in e0]).tolist()) == list(range(11))
    assert torch.equal(e0[0].labels, e0[0].indices % 3)
    assert loader.last_report.epoch == 0 and loader.last_report.samples == 11
    for _b in loader:  # leave epoch 1 early: the next epoch must not see its prefetched batches
        break
    e2 = list(loader)
    assert loader.last_report.epoch == 2 and sum(len(b.indices) for b in e2) == 11
    loader.set_epoch(0)
    again = list(loader)
    for x, y in zip(e0, again, strict=True):
        assert torch.equal(x.indices, y.indices)
        assert all(torch.equal(u, v) for u, v in zip(x.views, y.views, strict=True))


def test_sharded_loaders_partition_the_epoch(arrays):
    seen = []
    for shard in range(2):
        loader = make_loader(RECIPE, arrays, 3, backend="torchvision", num_workers=0, shard_id=shard, num_shards=2,
                             last_batch="pad")
        seen.append(torch.cat([b.indices for b in loader]))
        assert len(loader) == 2 and loader.last_report.padded == 1
    assert set(torch.cat(seen).tolist()) == set(range(11))

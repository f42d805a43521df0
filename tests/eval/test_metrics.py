"""Metrics against hand-computed cases and scikit-learn; accumulation over batches never depends on their size."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, jaccard_score

from contrasting.eval.metrics import (
    L1,
    METRICS,
    BinaryIoU,
    ConfusionMatrix,
    FlowAccuracy,
    Top1,
    make_metric,
    signed_score,
)


def _batches(n: int, size: int):
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


@pytest.mark.parametrize("batch", [1, 7, 32, 1000])
def test_top1_matches_sklearn_for_any_batch_size(batch):
    g = torch.Generator().manual_seed(1)
    logits, target = torch.randn(103, 5, generator=g), torch.randint(0, 5, (103,), generator=g)
    m = Top1()
    for s in _batches(103, batch):
        m.update(logits[s], target[s])
    assert m.compute()["top1"] == pytest.approx(accuracy_score(target.numpy(), logits.argmax(1).numpy()))


def test_miou_hand_case():
    # target [0 0 1 1], prediction [0 1 1 1]: IoU_0 = 1/2, IoU_1 = 2/3; class 2 absent from both → left out
    m = ConfusionMatrix(num_classes=3, background=0)
    m.update_labels(torch.tensor([0, 1, 1, 1]), torch.tensor([0, 0, 1, 1]))
    out = m.compute()
    assert out["miou"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert out["miou_no_bg"] == pytest.approx(2 / 3)
    assert out["pixel_acc"] == pytest.approx(3 / 4)


@pytest.mark.parametrize("batch", [1, 3, 8, 17])
def test_miou_matches_sklearn_and_is_independent_of_the_test_batch_size(batch):
    g = torch.Generator().manual_seed(2)
    n, c, h, w = 17, 4, 5, 7  # ragged: 17 images, the last batch is partial for every batch size but 1 and 17
    logits = torch.randn(n, c, h, w, generator=g)
    target = torch.randint(0, c, (n, h, w), generator=g)
    target[:, 0, 0] = 255  # ignored pixels
    m = ConfusionMatrix(num_classes=c, ignore_index=255)
    for s in _batches(n, batch):
        m.update(logits[s], target[s])
    keep = target.reshape(-1) != 255
    ref = jaccard_score(target.reshape(-1)[keep].numpy(), logits.argmax(1).reshape(-1)[keep].numpy(), average="macro")
    assert m.compute()["miou"] == pytest.approx(ref, abs=1e-12)


def test_miou_per_batch_would_differ():
    """The original's per-batch mean differs from the whole-set value: the reason for accumulating."""
    target = torch.tensor([[0, 0, 0, 1], [1, 1, 1, 1]])
    pred = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    whole = ConfusionMatrix(2)
    whole.update_labels(pred, target)
    per_batch = []
    for i in range(2):
        m = ConfusionMatrix(2)
        m.update_labels(pred[i], target[i])
        per_batch.append(m.compute()["miou"])
    assert whole.compute()["miou"] != pytest.approx(float(np.mean(per_batch)))


def test_binary_iou_matches_sklearn():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(9, 1, 6, 6, generator=g)
    target = (torch.rand(9, 6, 6, generator=g) > 0.6).float()
    m = BinaryIoU()
    for s in _batches(9, 4):
        m.update(logits[s], target[s])
    ref = jaccard_score(target.reshape(-1).numpy(), (logits.reshape(-1) > 0).numpy())
    assert m.compute()["iou"] == pytest.approx(ref)


def test_l1_ignores_missing_and_is_lower_better():
    pred = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    target = torch.tensor([[1.5, float("nan")], [2.0, 4.0]])
    m = L1()
    m.update(pred[:1], target[:1])
    m.update(pred[1:], target[1:])
    assert m.compute()["l1"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert METRICS["l1"].higher_is_better is False
    assert signed_score("l1", 0.25) == -0.25 and signed_score("top1", 0.25) == 0.25


def test_flow_accuracy_hand_case():
    # four valid pixels: EPE 0 (good), 2.9 (good: < 3 px), 4 with |f| = 100 (good: < 5 %), 4 with |f| = 10 (bad)
    flow = torch.tensor([[0.0, 0.0], [0.0, 0.0], [100.0, 0.0], [10.0, 0.0], [0.0, 0.0]])
    pred = torch.tensor([[0.0, 0.0], [2.9, 0.0], [104.0, 0.0], [14.0, 0.0], [50.0, 50.0]])
    valid = torch.tensor([1.0, 1, 1, 1, 0])
    target = torch.cat([flow.T, valid[None]]).reshape(1, 3, 1, 5)
    m = FlowAccuracy()
    m.update(pred.T.reshape(1, 2, 1, 5), target)
    out = m.compute()
    assert out["flow_acc"] == pytest.approx(3 / 4)
    assert out["epe"] == pytest.approx((0 + 2.9 + 4 + 4) / 4)


def test_empty_and_unknown():
    assert math.isnan(L1().compute()["l1"])
    assert ConfusionMatrix(3).compute()["miou"] == 0.0
    with pytest.raises(ValueError, match="unknown metric 'nope'"):
        make_metric("nope")

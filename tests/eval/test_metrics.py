"""Metrics against hand-computed cases and scikit-learn; accumulation over batches never depends on their size."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, jaccard_score

from contrasting.eval.catalog.metrics import (
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


# ------------------------------------------------------------------------------------ per-sample statistics

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from contrasting.eval.catalog.metric_stats import (  # noqa: E402
    bootstrap_weights,
    decode_samples,
    encode_samples,
    resample_values,
    value_from_totals,
)
from contrasting.eval.catalog.metrics import constant_predictor  # noqa: E402


def _random_case(name: str, seed: int, n: int, c: int = 4):
    g = torch.Generator().manual_seed(seed)
    if name == "top1":
        return torch.randn(n, c, generator=g), torch.randint(0, c, (n,), generator=g)
    if name in ("miou", "miou_no_bg"):
        t = torch.randint(0, c, (n, 5, 6), generator=g)
        t[torch.rand(t.shape, generator=g) < 0.1] = 255
        return torch.randn(n, c, 5, 6, generator=g), t
    if name == "iou":
        t = (torch.rand(n, 5, 6, generator=g) < 0.3).float()
        t[torch.rand(t.shape, generator=g) < 0.1] = 255
        return torch.randn(n, 1, 5, 6, generator=g), t
    if name in ("l1", "within"):
        t = torch.rand(n, 5, 6, generator=g)
        t[torch.rand(t.shape, generator=g) < 0.2] = float("nan")
        return torch.rand(n, 5, 6, generator=g), t
    t = torch.randn(n, 3, 5, 6, generator=g) * 3
    t[:, 2] = (torch.rand(n, 5, 6, generator=g) < 0.7).float()
    return torch.randn(n, 2, 5, 6, generator=g) * 3, t


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(["top1", "miou", "miou_no_bg", "iou", "l1", "flow_acc", "within"]),
       seed=st.integers(0, 10**6),
       n=st.integers(1, 12), split=st.integers(1, 12))
def test_per_sample_rows_sum_to_the_metric_and_resample_it(name, seed, n, split):
    out, target = _random_case(name, seed, n)
    m = make_metric(name, num_classes=4)
    for s in _batches(n, split):
        m.update(out[s], target[s])
    rows = m.per_sample()
    assert rows.shape[0] == n
    value = m.compute()[name]
    assert float(value_from_totals(name, rows.sum(0))) == pytest.approx(value, nan_ok=True) or math.isnan(value)
    one = np.ones((1, n))  # the identity resample
    assert resample_values(name, rows, one)[0] == pytest.approx(value, nan_ok=True) or math.isnan(value)
    name_back, back = decode_samples(encode_samples(name, rows))
    assert name_back == name and np.allclose(back, rows)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(1, 6), split=st.integers(1, 6))
def test_within_matches_a_float64_reference(seed, n, split):
    rng = np.random.default_rng(seed)
    target = rng.uniform(0, 1, (n, 4, 5))
    target[rng.uniform(size=target.shape) < 0.2] = np.nan
    pred = target + rng.choice([0.0, 0.049, -0.05, 0.051, 0.3], size=target.shape)
    m = make_metric("within")
    for s in _batches(n, split):
        m.update(torch.from_numpy(pred[s]).unsqueeze(1).float(), torch.from_numpy(target[s]).float())
    valid = np.isfinite(target)
    err = np.abs(pred.astype(np.float32).astype(np.float64) - target.astype(np.float32).astype(np.float64))[valid]
    got = m.compute()
    if valid.any():
        assert got["within"] == pytest.approx(np.mean(err <= 0.05)) and got["l1"] == pytest.approx(err.mean())
    assert METRICS["within"].higher_is_better


def test_confusion_rows_agree_with_the_matrix():
    out, target = _random_case("miou", 3, 9)
    m = ConfusionMatrix(num_classes=4)
    m.update(out, target)
    c = 4
    tp, fp, fn = np.split(m.per_sample().sum(0), 3)
    mat = m.matrix.numpy()
    assert np.array_equal(tp, np.diag(mat)) and np.array_equal(fp, mat.sum(0) - np.diag(mat))
    assert np.array_equal(fn, mat.sum(1) - np.diag(mat)) and len(tp) == c


def test_standard_error_matches_the_binomial_one():
    m = Top1()
    rng = np.random.default_rng(0)
    labels = torch.from_numpy(rng.integers(0, 2, 2000))
    m.update(torch.nn.functional.one_hot(torch.from_numpy((rng.random(2000) < 0.7).astype(int)) * labels, 2)
             .float(), labels)
    p = m.compute()["top1"]
    assert m.standard_error() == pytest.approx(math.sqrt(p * (1 - p) / 2000), rel=0.1)
    w = bootstrap_weights(50, 10, np.random.default_rng(0))
    assert w.shape == (10, 50) and (w.sum(1) == 50).all()


def test_trivial_baselines_are_the_best_constant_predictions():
    labels = torch.tensor([2, 2, 2, 0, 1])
    test = torch.tensor([2, 0, 2, 1])
    m = make_metric("top1", num_classes=3)
    m.update(constant_predictor("top1", labels, num_classes=3)(test), test)
    assert m.compute()["top1"] == 0.5
    masks = [torch.tensor([[0, 0, 0], [0, 1, 2]]), torch.tensor([[0, 0, 1], [1, 1, 255]])]
    for metric, k in (("miou", 0), ("miou_no_bg", 1)):
        pred = constant_predictor(metric, masks, num_classes=3)(torch.stack(masks))
        assert pred.shape == (2, 3, 2, 3) and (pred.argmax(1) == k).all()
    m = make_metric("miou", num_classes=3)
    t = torch.stack(masks)
    m.update(constant_predictor("miou", masks, num_classes=3)(t), t)
    assert m.compute()["miou"] == pytest.approx((6 / 11) / 3)  # background IoU = its share; others 0
    fg = [torch.tensor([[0.0, 1.0], [1.0, 255.0]])]
    assert (constant_predictor("iou", fg)(torch.stack(fg)) > 0).all()
    assert (constant_predictor("iou", [torch.zeros(2, 2)])(torch.zeros(1, 2, 2)) < 0).all()
    depth = [torch.tensor([[1.0, 2.0], [3.0, float("nan")]])]
    assert (constant_predictor("l1", depth)(torch.zeros(1, 2, 2)) == 2.0).all()
    viz = [torch.tensor([[0.1, 0.12, 0.5], [0.55, 0.56, float("nan")]])]
    assert torch.allclose(constant_predictor("within", viz)(torch.zeros(1, 2, 3)), torch.full((1, 2, 3), 0.55,
                                                                                           dtype=torch.float64))
    flow = [torch.tensor([[[1.0, 3.0]], [[2.0, 2.0]], [[1.0, 0.0]]])]
    pred = constant_predictor("flow_acc", flow)(torch.zeros(2, 3, 1, 2))
    assert pred.shape == (2, 2, 1, 2) and pred[0, :, 0, 0].tolist() == [1.0, 2.0]

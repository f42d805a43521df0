"""TrainCrops: the joint geometric augmentation of pixel tasks' training samples (the paper forms of Cityscapes,
EgoHands and KITTI) keeps image and target aligned, pads with the target's ignore value, honours min_classes, and
is refused where it cannot apply."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from contrasting.eval import get_task
from contrasting.eval.catalog.readers import crop_sample
from contrasting.eval.catalog.tasks import TrainCrops
from contrasting.eval.cell.protocol import make_optimizer


def _columns(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (1 frame) and a mask whose values both encode each pixel's (row, column), above the ignore index."""
    code = 256 + torch.arange(h * w, dtype=torch.float32).reshape(h, w)
    return code.expand(1, 3, h, w).clone(), code.long()


@settings(max_examples=40, deadline=None)
@given(h=st.integers(3, 20), w=st.integers(3, 20), ch=st.integers(1, 24), cw=st.integers(1, 24),
       flip=st.sampled_from([0.0, 1.0]), seed=st.integers(0, 2**31))
def test_image_and_target_stay_aligned_and_padding_is_ignored(h, w, ch, cw, flip, seed):
    torch.manual_seed(seed)
    spec = get_task("cityscapes")
    x, y = _columns(h, w)
    cx, cy = crop_sample(x, y, TrainCrops((ch, cw), flip=flip), spec)
    assert cx.shape == (1, 3, ch, cw) and cy.shape == (ch, cw)
    inside = cy != spec.ignore_index
    assert torch.equal(cx[0, 0][inside].long(), cy[inside])  # the same pixel under image and target
    assert (cx[0, 0][~inside] == 0).all()  # padding: 0 in normalised images
    assert int(inside.sum()) == min(ch, h) * min(cw, w)
    if flip and inside[0].sum() > 1:  # mirrored: codes fall along a row
        row = cy[0][inside[0]]
        assert (row[1:] < row[:-1]).all()


def test_regression_targets_pad_with_nan_and_min_classes_redraws():
    torch.manual_seed(0)
    depth = get_task("nyu-depth")
    _, y = crop_sample(torch.zeros(1, 3, 4, 4), torch.ones(4, 4), TrainCrops((6, 6)), depth)
    assert torch.isnan(y).sum() == 36 - 16
    ego = get_task("egohands")
    target = torch.zeros(40, 40, dtype=torch.long)
    target[-12:, -12:] = 3  # one hand in a corner: 13 % of the 8×8 windows show it

    def hits(min_classes: int) -> int:
        found = 0
        for seed in range(40):
            torch.manual_seed(seed)
            _, y = crop_sample(torch.zeros(1, 3, 40, 40), target, TrainCrops((8, 8), min_classes=min_classes), ego)
            found += len(torch.unique(y)) == 2
        return found

    assert hits(1) <= 12 and hits(2) >= 24  # up to ten draws: ~76 % of windows show the hand, one draw ~13 %


def test_train_crops_are_refused_where_they_cannot_apply():
    with pytest.raises(ValueError, match="TrainCrops"):
        TrainCrops((0, 4))
    with pytest.raises(ValueError, match="train_crops are for pixel tasks"):
        dataclasses.replace(get_task("dtd"), train_crops=TrainCrops((4, 4)))
    with pytest.raises(ValueError, match="without flips of flow targets"):
        dataclasses.replace(get_task("kitti-flow"), train_crops=TrainCrops((4, 4), flip=0.5))


def test_a_paper_form_names_only_fields_a_task_has():
    dtd = get_task("dtd")
    for paper in ({"metric": "within", "nope": 1}, {"name": "x"}, {"layout": {"reader": "pets", "wrong": 1}}):
        with pytest.raises(ValueError, match="paper form fields"):
            dataclasses.replace(dtd, paper=paper)
    form = dataclasses.replace(dtd, paper={"layout": {"options": {"extra": 1}}}).paper_form()
    assert form.layout.options == {**dtd.layout.options, "extra": 1} and form.layout.paths == dtd.layout.paths


def test_poly_decay_follows_deeplab():
    sched = dataclasses.replace(get_task("cityscapes:paper").schedule, epochs=10)
    opt, lr = make_optimizer([torch.nn.Parameter(torch.zeros(1))], sched)
    rates = []
    for _ in range(10):
        rates.append(opt.param_groups[0]["lr"])
        lr.step()
    assert rates == pytest.approx([sched.lr * (1 - e / 10) ** 0.9 for e in range(10)])

"""Registry contract: every corpus and task pinned (group, kind, metric, classes, split sizes), every sampler's
output shapes, class profiles (balanced vs log-unbalanced), and the real digits' split-disjoint pools."""

from __future__ import annotations

import numpy as np
import pytest

from contrasting.data.builtin import (
    CORPORA,
    GROUPS,
    TASKS,
    ClassProfile,
    SceneSpec,
    get_task,
    list_corpora,
    list_tasks,
    register_task,
)
from contrasting.data.builtin.entries import LT_C, digit_pool, load_real_digits
from contrasting.data.builtin.layout import DEPTH_SCALE, decode_depth
from contrasting.data.builtin.registry import SplitContext, class_names, has_item_labels

SPEC = SceneSpec()
SPLITS = {"train": 1500, "val": 300, "test": 600}
# name -> (group, kind, metric, higher_is_better, number of classes (None: no label space))
TASK_CONTRACT = {
    "shape-cls": ("image-level semantic", "classification", "top1", True, 6),
    "texture-cls": ("image-level semantic", "classification", "top1", True, 6),
    "digit-cls": ("image-level semantic", "classification", "top1", True, 10),
    "count": ("image-level structural", "classification", "top1", True, 5),
    "camera-shift": ("image-level structural", "pair-classification", "top1", True, 4),
    "shape-seg": ("pixel-wise semantic", "segmentation", "miou", True, 7),
    "foreground": ("pixel-wise semantic", "binary-mask", "iou", True, 2),
    "depth": ("pixel-wise structural", "depth", "l1", False, None),
}
CORPUS_CONTRACT = {"shapes": ("balanced", 6), "shapes-lt": ("log", 6), "textures": ("balanced", 6),
                   "digits": ("balanced", 10)}


def test_registry_lists_the_pinned_entries():
    assert list_corpora() == list(CORPUS_CONTRACT)
    assert list_tasks() == list(TASK_CONTRACT)
    assert {TASKS[t].group for t in TASKS} == set(GROUPS), "all four groups of the study are covered"
    assert list_tasks("pixel-wise structural") == ["depth"]


@pytest.mark.parametrize("name", list(TASK_CONTRACT))
def test_task_contract(name):
    task = get_task(name)
    group, kind, metric, higher, n_classes = TASK_CONTRACT[name]
    assert (task.group, task.kind, task.metric, task.higher_is_better) == (group, kind, metric, higher)
    assert dict(task.splits) == SPLITS
    classes = class_names(task, SPEC)
    assert (None if classes is None else len(classes)) == n_classes
    assert task.layout == {"classification": "image-folder", "pair-classification": "view-pair-list"}.get(
        kind, "pair-list")


@pytest.mark.parametrize("name", list(CORPUS_CONTRACT))
def test_corpus_contract(name):
    corpus = CORPORA[name]
    profile, n_classes = CORPUS_CONTRACT[name]
    assert corpus.size == 3000 and corpus.profile.kind == profile
    assert len(class_names(corpus, SPEC)) == n_classes
    assert corpus.similar_tasks and all(t in TASKS for t in corpus.similar_tasks)


ENTRIES = [("corpus", n) for n in CORPORA] + [("task", n) for n in TASKS]


@pytest.mark.parametrize(("section", "name"), ENTRIES)
def test_every_sampler_returns_its_kind(section, name):
    entry = CORPORA[name] if section == "corpus" else TASKS[name]
    classes = class_names(entry, SPEC)
    r = SPEC.resolution
    for i in range(3):
        label = i % len(classes) if has_item_labels(entry) else None
        sample = entry.sampler(np.random.default_rng(i), SPEC, label, SplitContext(0, "val"))
        assert sample.image.shape == (r, r, 3) and sample.image.dtype == np.uint8
        if entry.kind == "pair-classification":
            assert sample.image_b.shape == (r, r, 3) and set(sample.extra) == {"dx", "dy"}
        elif entry.kind in ("segmentation", "binary-mask"):
            assert sample.target.shape == (r, r) and sample.target.dtype == np.uint8
            assert sample.target.max() < len(classes)
        elif entry.kind == "depth":
            assert sample.target.dtype == np.uint16
            depth = decode_depth(sample.target)
            assert depth.max() == pytest.approx(1.0) and depth.min() >= SPEC.depth[0] - 1 / DEPTH_SCALE
        else:
            assert sample.target is None and sample.image_b is None


def test_camera_shift_views_are_shifted_crops_of_one_scene():
    task = get_task("camera-shift")
    r = SPEC.resolution
    for label in range(4):
        sample = task.sampler(np.random.default_rng(label), SPEC, label, SplitContext(0, "train"))
        dx, dy = sample.extra["dx"], sample.extra["dy"]
        main = {0: -dx, 1: dx, 2: -dy, 3: dy}[label]
        assert main >= 4 and abs(dy if label < 2 else dx) <= 2, "the class is the main direction of the shift"
        a, b = sample.image, sample.image_b
        # view b's pixel (y, x) is view a's pixel (y + dy, x + dx) where both exist
        ya, xa = slice(max(dy, 0), r + min(dy, 0)), slice(max(dx, 0), r + min(dx, 0))
        yb, xb = slice(max(-dy, 0), r + min(-dy, 0)), slice(max(-dx, 0), r + min(-dx, 0))
        np.testing.assert_array_equal(a[ya, xa], b[yb, xb])


def test_balanced_profile_counts():
    counts = ClassProfile().counts(3000, 6)
    assert counts.tolist() == [500] * 6
    assert ClassProfile().counts(7, 3).tolist() == [3, 2, 2]


def test_log_profile_counts_follow_exp_minus_ck():
    profile = ClassProfile("log", LT_C)
    counts = profile.counts(3000, 6)
    assert counts.tolist() == [1392, 764, 419, 230, 126, 69], "documented in the report"
    assert counts.sum() == 3000 and (np.diff(counts) < 0).all()
    slope = np.polyfit(np.arange(6), np.log(counts), 1)[0]
    assert slope == pytest.approx(-LT_C, abs=0.01)
    assert (ClassProfile("log", 3.0).counts(12, 6) >= 1).all(), "every class keeps an item"
    with pytest.raises(ValueError):
        profile.counts(5, 6)
    with pytest.raises(ValueError):
        ClassProfile("log", 0.0)


def test_real_digits_match_scikit_learn_and_pools_are_disjoint():
    from sklearn.datasets import load_digits

    images, labels = load_real_digits()
    bunch = load_digits()
    np.testing.assert_array_equal(images, bunch.images)
    np.testing.assert_array_equal(labels, bunch.target)
    pools = {split: digit_pool(0, split) for split in ("train", "val", "test")}
    for digit in range(10):
        sets = [set(pools[s][digit]) for s in pools]
        assert all(sets), f"digit {digit} missing from a split"
        assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
        assert set().union(*sets) == set(np.flatnonzero(labels == digit).tolist())
        assert all(labels[i] == digit for s in sets for i in s)
        n = len(np.flatnonzero(labels == digit))
        assert len(sets[0]) == pytest.approx(0.6 * n, abs=1)
    assert digit_pool(1, "train") != digit_pool(0, "train"), "the split follows the seed"


def test_registration_rejects_duplicates_and_bad_entries():
    with pytest.raises(ValueError, match="already registered"):
        register_task("depth", description="", group="pixel-wise structural", kind="depth", metric="l1",
                      labels=None, splits=tuple(SPLITS.items()))(lambda *a: None)
    with pytest.raises(ValueError, match="group"):
        register_task("new", description="", group="pixel-wise other", kind="depth", metric="l1",
                      labels=None, splits=tuple(SPLITS.items()))(lambda *a: None)
    assert "new" not in TASKS
    with pytest.raises(KeyError, match="known"):
        get_task("nope")


"""Corpus layouts (tiny fake trees; files are empty: layouts are listed, not decoded) and subset builders."""

import shutil
from collections import Counter

import numpy as np
import pytest

from contrasting.data import FileListSource
from contrasting.data.corpora import (
    CORPORA,
    balanced_subset,
    build_subset,
    open_corpus,
    unbalanced_subset,
    write_subset,
)


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


@pytest.fixture
def imagenet(tmp_path):
    root = tmp_path / "imagenet"
    for c, n in [("n01", 40), ("n02", 20), ("n03", 8), ("n04", 12)]:
        for i in range(n):
            _touch(root / "train" / c / f"{c}_{i:04d}.JPEG")
    return root


def test_registry_has_the_studys_corpora():
    assert {"imagenet", "places365", "kinetics", "taskonomy"} <= set(CORPORA)
    with pytest.raises(KeyError, match="registered"):
        open_corpus("coco", ".")


def test_imagenet_and_its_kaggle_layout(imagenet, tmp_path):
    src = open_corpus("imagenet", imagenet)
    assert src.classes == ["n01", "n02", "n03", "n04"] and len(src) == 80
    kaggle = tmp_path / "kaggle" / "ILSVRC" / "Data" / "CLS-LOC"
    shutil.copytree(imagenet / "train", kaggle / "train")
    assert len(open_corpus("imagenet", tmp_path / "kaggle")) == 80
    with pytest.raises(FileNotFoundError, match="imagenet val"):
        open_corpus("imagenet", imagenet, split="val")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        open_corpus("imagenet", tmp_path / "nothing")


def test_places365_both_layouts(tmp_path):
    root = tmp_path / "places"
    for p in ["a/airfield/00000001.jpg", "a/airfield/00000002.jpg", "b/bakery/shop/00000001.jpg"]:
        _touch(root / "data_256" / p)
    (root / "places365_train_standard.txt").write_text(
        "/a/airfield/00000001.jpg 0\n/a/airfield/00000002.jpg 0\n/b/bakery/shop/00000001.jpg 1\n")
    (root / "categories_places365.txt").write_text("/a/airfield 0\n/b/bakery/shop 1\n")
    src = open_corpus("places365", root)
    assert [lab for _, lab in src.samples] == [0, 0, 1] and src.classes == ["/a/airfield", "/b/bakery/shop"]
    assert src.samples[2][0] == str(root / "data_256" / "b/bakery/shop/00000001.jpg")
    easy = tmp_path / "easy"
    _touch(easy / "val" / "airfield" / "x.jpg")
    assert open_corpus("places365", easy, split="val").classes == ["airfield"]


def test_kinetics_frames_and_taskonomy(tmp_path):
    root = tmp_path / "kinetics"
    for c in ["abseiling", "bowling"]:
        for v in ["vid1", "vid2"]:
            for f in range(10):
                _touch(root / "train" / c / v / f"frame_{f:05d}.jpg")
    assert len(open_corpus("kinetics", root)) == 40
    src = open_corpus("kinetics", root, frames_per_video=3)
    assert len(src) == 12 and src.samples[0][0].endswith("vid1/frame_00000.jpg")
    assert src.samples[2][0].endswith("frame_00009.jpg") and src.classes == ["abseiling", "bowling"]
    tk = tmp_path / "taskonomy"
    for b in ["allensville", "beechwood"]:
        for i in range(3):
            _touch(tk / b / "rgb" / f"point_{i}_view_0_domain_rgb.png")
    (tk / "readme").mkdir(parents=True)
    src = open_corpus("taskonomy", tk)
    assert len(src) == 6 and src.classes == ["allensville", "beechwood"]


def test_balanced_subsets(imagenet):
    src = open_corpus("imagenet", imagenet)
    half = Counter(lab for _, lab in balanced_subset(src, 0.5, seed=0))
    assert half == {0: 20, 1: 10, 2: 4, 3: 6}
    quarter = Counter(lab for _, lab in build_subset(src, "quarter", seed=0))
    assert quarter == {0: 10, 1: 5, 2: 2, 3: 3}
    assert build_subset(src, "half", seed=0) == build_subset(src, "half", seed=0)
    assert build_subset(src, "half", seed=0) != build_subset(src, "half", seed=1)


@pytest.mark.parametrize("profile", ["linear", "log"])
def test_unbalanced_subsets_keep_the_half_total(imagenet, profile):
    src = open_corpus("imagenet", imagenet)
    samples = unbalanced_subset(src, 0.5, profile=profile, imbalance=10, seed=0)
    counts = Counter(lab for _, lab in samples)
    assert sum(counts.values()) == 40 and len(counts) == 4
    assert len({p for p, _ in samples}) == len(samples)
    assert max(counts.values()) >= 2 * min(counts.values())
    with pytest.raises(ValueError, match="profile"):
        unbalanced_subset(src, profile="sqrt")


def test_written_subset_is_shareable(imagenet, tmp_path):
    src = open_corpus("imagenet", imagenet)
    lst = write_subset(src, "half_log", tmp_path / "half_log.txt", root=imagenet, seed=3, corpus="imagenet")
    text = lst.read_text()
    assert "subset=half_log seed=3" in text and str(imagenet) not in text
    moved = tmp_path / "elsewhere"
    shutil.copytree(imagenet, moved)
    back = FileListSource(lst, root=moved)
    expected = [(p.replace(str(imagenet), str(moved)), lab) for p, lab in build_subset(src, "half_log", seed=3)]
    assert back.samples == expected and back.classes == src.classes
    assert np.bincount([lab for _, lab in back.samples]).sum() == 40

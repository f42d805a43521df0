"""``--corpus <layout>[/<subset>]:<root>``: the data package's corpus layouts and study subsets reach pre-training."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from contrasting.encoders import resolve_config
from contrasting.encoders.registry import UnknownNameError
from contrasting.encoders.training.data import check_corpus, open_layout_corpus, parse_layout_corpus
from contrasting.encoders.training.trainer import pretrain

from .helpers import WIDTH


@pytest.fixture
def imagenet_root(tmp_path, monkeypatch):
    """ILSVRC-2012's class-folder layout in miniature: 4 classes × 8 JPEGs of 32 px."""
    monkeypatch.setenv("CONTRASTING_DATA", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    root = tmp_path / "imagenet"
    for c in range(4):
        folder = root / "train" / f"n0000000{c}"
        folder.mkdir(parents=True)
        for i in range(8):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"img_{i}.JPEG")
    return root


def test_layout_and_subset_names_parse(imagenet_root):
    assert parse_layout_corpus(f"imagenet:{imagenet_root}") == ("imagenet", None, imagenet_root)
    assert parse_layout_corpus(f"imagenet/half_log:{imagenet_root}")[:2] == ("imagenet", "half_log")
    assert parse_layout_corpus("shapes") is None and parse_layout_corpus(str(imagenet_root)) is None
    with pytest.raises(UnknownNameError, match=r"unknown corpus subset 'tenth'; valid corpus subsets: half"):
        parse_layout_corpus(f"imagenet/tenth:{imagenet_root}")
    with pytest.raises(FileNotFoundError, match=r"--corpus imagenet:/nowhere: /nowhere is not a directory"):
        check_corpus("imagenet:/nowhere")


def test_subsets_are_the_studys_and_deterministic(imagenet_root):
    full = open_layout_corpus(f"imagenet:{imagenet_root}")
    half = open_layout_corpus(f"imagenet/half:{imagenet_root}", seed=3)
    again = open_layout_corpus(f"imagenet/half:{imagenet_root}", seed=3)
    assert len(full) == 32 and len(half) == 16 and half.path == again.path
    assert half.path.read_text() == again.path.read_text()
    labels = [label for _, label in half.samples]
    assert np.bincount(labels).tolist() == [4, 4, 4, 4]  # half of every class


def test_pretrain_reads_a_subset_named_on_the_command_line_form(imagenet_root, tmp_path):
    config = resolve_config({"method": {"name": "simclr"},
                             "backbone": {"name": "resnet18", "small_stem": True, "width": WIDTH},
                             "data": {"corpus": f"imagenet/quarter:{imagenet_root}", "image_size": 32,
                                      "executor": "torchvision", "workers": 0},
                             "train": {"epochs": 1, "batch_size": 4, "progress": False, "precision": "fp32",
                                       "output_dir": str(tmp_path / "run")}})
    result = pretrain(config)
    assert result.steps == 2  # a quarter of 32 images, in batches of 4

"""Fixtures of the eval tests: a small shapes world (contrasting.data.builtin) and tiny encoders."""

from __future__ import annotations

import pytest
import torch
from torch import nn


class TinyBackbone(nn.Module):
    """A 5-scale conv net with ResNet-like strides (2, 4, 8, 16, 32) and widths 8/8/16/32/64, returning a dict
    under the torchvision-style names (conv1, layer1..layer4): exercises the adapter's alias mapping."""

    WIDTHS = (8, 8, 16, 32, 64)

    def __init__(self):
        super().__init__()
        w = self.WIDTHS

        def block(cin, cout, stride):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

        self.conv1 = block(3, w[0], 2)
        self.layer1 = nn.Sequential(nn.MaxPool2d(3, 2, 1), block(w[0], w[1], 1))
        self.layer2 = block(w[1], w[2], 2)
        self.layer3 = block(w[2], w[3], 2)
        self.layer4 = block(w[3], w[4], 2)

    def forward(self, x):
        out = {"conv1": self.conv1(x)}
        out["layer1"] = self.layer1(out["conv1"])
        out["layer2"] = self.layer2(out["layer1"])
        out["layer3"] = self.layer3(out["layer2"])
        out["layer4"] = self.layer4(out["layer3"])
        return out


def tiny_backbone(seed: int = 0) -> TinyBackbone:
    torch.manual_seed(seed)
    return TinyBackbone()


WORLD_SCALE = 0.1  # per built-in task 150 train + 30 val (merged into train) and 60 test images of 64×64


@pytest.fixture(scope="session")
def world_root(tmp_path_factory):
    """A data root holding one shapes world (tasks only, no corpora or gallery): what `world_dir` picks."""
    builtin = pytest.importorskip("contrasting.data.builtin")
    root = tmp_path_factory.mktemp("data")
    builtin.build_world(root, builtin.WorldConfig(scale=WORLD_SCALE, corpora=(), gallery=0), progress=False, workers=1)
    return root


@pytest.fixture(autouse=True)
def one_cpu_thread():
    """Tiny models on a 2-core machine: one intra-op thread avoids OpenMP spin contention (restored after)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def tiny():
    return tiny_backbone()

"""Backbones: torchvision's parameter layout, multi-scale features, registry errors."""

from __future__ import annotations

import pytest
import torch
import torchvision

from contrasting.encoders import BACKBONES, FEATURES, UnknownNameError, build_backbone


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_state_dict_is_torchvision_without_fc(name):
    ours = build_backbone(name).state_dict()
    theirs = getattr(torchvision.models, name)().state_dict()
    assert set(ours) == set(theirs) - {"fc.weight", "fc.bias"}
    mismatched = [k for k in ours if ours[k].shape != theirs[k].shape]
    assert not mismatched, mismatched


def test_same_features_as_torchvision_with_its_weights():
    tv = torchvision.models.resnet18().eval()
    ours = build_backbone("resnet18").eval()
    ours.load_state_dict({k: v for k, v in tv.state_dict().items() if not k.startswith("fc.")})
    x = torch.randn(2, 3, 64, 64)
    tv.fc = torch.nn.Identity()
    torch.testing.assert_close(ours.embed(x), tv(x))


@pytest.mark.parametrize(("small_stem", "stem_hw", "layer1_hw"), [(False, 32, 16), (True, 64, 64)])
def test_multiscale_features(small_stem, stem_hw, layer1_hw):
    backbone = build_backbone("resnet50", small_stem=small_stem, width=8)
    feats = backbone(torch.randn(2, 3, 64, 64))
    assert tuple(feats) == FEATURES
    assert feats["stem"].shape == (2, 8, stem_hw, stem_hw)
    assert feats["layer1"].shape == (2, 32, layer1_hw, layer1_hw)
    for i, key in enumerate(("layer2", "layer3", "layer4"), start=1):
        assert feats[key].shape == (2, backbone.channels[key], layer1_hw >> i, layer1_hw >> i)
    assert feats["pool"].shape == (2, backbone.embed_dim) == (2, 256)
    assert backbone.conv1.weight.shape[-1] == (3 if small_stem else 7)


def test_unknown_backbone_lists_valid_names():
    with pytest.raises(UnknownNameError, match=r"unknown backbone 'resnet99'; valid backbones: resnet18, resnet50"):
        build_backbone("resnet99")
    assert BACKBONES.names() == ["resnet18", "resnet50"]


def test_unknown_backbone_option_lists_valid_fields():
    with pytest.raises(UnknownNameError, match=r"'depth'.*small_stem, width, zero_init_residual"):
        build_backbone("resnet18", depth=18)
    with pytest.raises(ValueError, match="width"):
        build_backbone("resnet18", width=0)

"""Every head's output shape on ResNet-18 and ResNet-50 features, and its error on mismatched features."""

from __future__ import annotations

import pytest
import torch
import torchvision

from contrasting.eval import FrozenEncoder, get_task
from contrasting.eval.catalog.heads import HEADS, DeepLabHead, LinearHead, MLPHead, UNetDecoder, build_head
from tests.eval.conftest import TinyBackbone

WIDTHS = {"resnet18": (64, 64, 128, 256, 512), "resnet50": (64, 256, 512, 1024, 2048)}
HEAD_TASKS = {"linear": "pets", "mlp": "kinetics", "unet": "nyu-depth", "unet2": "kitti-flow", "deeplab": "cityscapes"}


@pytest.fixture(scope="module", params=["resnet18", "resnet50"])
def encoder(request):
    torch.manual_seed(0)
    return FrozenEncoder(torchvision.models.get_model(request.param, weights=None), request.param)


@pytest.fixture(scope="module")
def features(encoder):
    """One forward of 12 non-square images (64×96, divisible by 32), shared by the shape tests."""
    with torch.no_grad():
        return encoder(torch.randn(12, 3, 64, 96, generator=torch.Generator().manual_seed(0)))


def test_every_registered_head_is_covered():
    assert set(HEAD_TASKS) == set(HEADS)


def test_encoder_widths(encoder):
    w = WIDTHS[encoder.name]
    assert [encoder.widths[k] for k in ("stem", "stage1", "stage2", "stage3", "stage4")] == list(w)
    assert encoder.widths["embedding"] == w[-1]


@pytest.mark.parametrize("head", sorted(HEAD_TASKS))
def test_head_output_shape(encoder, features, head):
    spec = get_task(HEAD_TASKS[head])
    h, w = 64, 96
    feats = {k: v[: 2 * spec.frames] for k, v in features.items()}
    module = build_head(spec, encoder)
    if head in ("linear", "mlp"):
        x = feats["embedding"].reshape(2, spec.frames, -1)
        assert module(x).shape == (2, spec.num_classes)
        return
    if head == "unet2":
        x = [{k: v.reshape(2, 2, *v.shape[1:])[:, i] for k, v in feats.items()} for i in range(2)]
        assert module(x).shape == (2, 2, h, w)
        return
    x = {k: v[:2] for k, v in feats.items()}
    out = module(x)
    if head == "deeplab":
        assert out.shape == (2, spec.num_classes, h // 4, w // 4)
        assert all(p.requires_grad for p in module.stage4.parameters())  # the dilated copy trains
        assert not any(p.requires_grad for p in encoder.parameters())  # the encoder's own stage does not
    else:
        assert out.shape == (2, 1, h, w)


def test_unet_with_odd_input_resizes_skips():
    enc = FrozenEncoder(TinyBackbone(), "tiny")
    with torch.no_grad():
        feats = enc(torch.randn(1, 3, 45, 37))
    out = UNetDecoder(enc.widths, 3, enc.name)(feats)
    assert out.shape[:2] == (1, 3)


def test_mismatched_features_name_head_and_encoder(encoder, features):
    other = "resnet50" if encoder.name == "resnet18" else "resnet18"
    widths = dict(zip(("stem", "stage1", "stage2", "stage3", "stage4"), WIDTHS[other], strict=True))
    widths["embedding"] = widths["stage4"]
    feats = {k: v[:1] for k, v in features.items()}
    with pytest.raises(ValueError, match=rf"head 'linear'.*encoder '{encoder.name}'"):
        LinearHead(widths["embedding"], 5, encoder.name)(feats["embedding"])
    with pytest.raises(ValueError, match=rf"head 'mlp'.*encoder '{encoder.name}'"):
        MLPHead(widths["embedding"], 2, 5, encoder=encoder.name)(feats["embedding"][:, None].expand(1, 2, -1))
    with pytest.raises(ValueError, match=rf"head 'unet'.*encoder '{encoder.name}'"):
        UNetDecoder(widths, 1, encoder.name)(feats)


def test_deeplab_mismatch_and_missing_stage4():
    tiny = FrozenEncoder(TinyBackbone(), "tiny")
    r50 = dict(zip(("stem", "stage1", "stage2", "stage3", "stage4"), WIDTHS["resnet50"], strict=True))
    with pytest.raises(ValueError, match="head 'deeplab'.*encoder 'mix'"):
        DeepLabHead(r50, tiny.stage4, 3, "mix")
    with pytest.raises(ValueError, match="head 'deeplab'.*stage-4"):
        DeepLabHead(tiny.widths, None, 3, "plain")
    with torch.no_grad():
        out = DeepLabHead(tiny.widths, tiny.stage4, 3, "tiny")(tiny(torch.randn(2, 3, 32, 32)))
    assert out.shape == (2, 3, 8, 8)


@pytest.mark.parametrize("small_stem, size", [(True, 32), (False, 64)])
def test_unet_output_is_at_the_input_resolution(small_stem, size):
    """The small stem keeps the input resolution in the stem and stage 1: the decoder upsamples only where the
    encoder's strides change (before: 4× the input, then downsampled)."""
    from contrasting.encoders import build_backbone

    enc = FrozenEncoder(build_backbone("resnet18", {"small_stem": small_stem, "width": 8}), "r18")
    head = build_head(get_task("shapes-segmentation"), enc, 5)
    out = head({k: v for k, v in enc(torch.zeros(2, 3, size, size)).items()})
    assert out.shape == (2, 5, size, size)
    assert enc.strides == ({"stem": 1, "stage1": 1, "stage2": 2, "stage3": 4, "stage4": 8} if small_stem else
                           {"stem": 2, "stage1": 4, "stage2": 8, "stage3": 16, "stage4": 32})

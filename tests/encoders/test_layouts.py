"""Strict checkpoint import in every layout (state dicts built here, in each project's format) and export."""

from __future__ import annotations

import argparse
import json
import re

import pytest
import torch
import torchvision

from contrasting.encoders import (
    LAYOUTS,
    LayoutError,
    UnknownLayoutError,
    UnknownNameError,
    build_backbone,
    detect_layout,
    export_backbone,
    infer_architecture,
    load_backbone,
)

from .helpers import tiny_backbone


def _trunk():
    return {k: v.clone() for k, v in tiny_backbone(seed=7).state_dict().items()}


def _head(prefix, shapes):
    return {f"{prefix}{name}": torch.randn(*shape) for name, shape in shapes.items()}


def moco_v2_checkpoint(trunk):
    """facebookresearch/moco main_moco.py save_checkpoint: query and key encoders, MLP head, queue."""
    dim = trunk["layer4.1.bn2.weight"].shape[0]
    head = {"fc.0.weight": (dim, dim), "fc.0.bias": (dim,), "fc.2.weight": (128, dim), "fc.2.bias": (128,)}
    sd = {f"module.encoder_q.{k}": v for k, v in trunk.items()} | _head("module.encoder_q.", head)
    sd |= {f"module.encoder_k.{k}": v.clone() for k, v in trunk.items()} | _head("module.encoder_k.", head)
    sd |= {"module.queue": torch.randn(128, 64), "module.queue_ptr": torch.zeros(1, dtype=torch.long)}
    return {"epoch": 200, "arch": "resnet50", "state_dict": sd,
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.03, "momentum": 0.9, "params": [0, 1]}]}}


def moco_v1_checkpoint(trunk):
    dim = trunk["layer4.1.bn2.weight"].shape[0]
    sd = {f"module.encoder_q.{k}": v for k, v in trunk.items()}
    sd |= _head("module.encoder_q.", {"fc.weight": (128, dim), "fc.bias": (128,)})
    sd |= {f"module.encoder_k.{k}": v.clone() for k, v in trunk.items()}
    sd |= {"module.queue": torch.randn(128, 64), "module.queue_ptr": torch.zeros(1, dtype=torch.long)}
    return {"epoch": 200, "arch": "resnet50", "state_dict": sd}


def swav_release(trunk):
    """The official release swav_800ep_pretrain.pth.tar: a flat DataParallel dict, no 'state_dict' wrapper."""
    dim = trunk["layer4.1.bn2.weight"].shape[0]
    head = {"projection_head.0.weight": (2048, dim), "projection_head.0.bias": (2048,),
            "projection_head.1.weight": (2048,), "projection_head.1.bias": (2048,),
            "projection_head.1.running_mean": (2048,), "projection_head.1.running_var": (2048,),
            "projection_head.3.weight": (128, 2048), "projection_head.3.bias": (128,),
            "prototypes.weight": (3000, 128)}
    sd = {f"module.{k}": v for k, v in trunk.items()} | _head("module.", head)
    sd["module.projection_head.1.num_batches_tracked"] = torch.tensor(5)
    return sd


def vissl_checkpoint(trunk):
    """VISSL's checkpoint (PIRL from the model zoo): trunk under classy_state_dict/base_model/model."""
    heads = {"0.clf.0.weight": torch.randn(128, 16), "0.clf.0.bias": torch.randn(128)}
    return {"phase_idx": 799, "iteration": 1000, "type": "checkpoint",
            "classy_state_dict": {"base_model": {"model": {"trunk": {f"_feature_blocks.{k}": v
                                                                     for k, v in trunk.items()},
                                                           "heads": heads}}}}


def virb_encoder(trunk):
    """ViRB's scripts/moco_to_virb.py output: 'module.encoder_q.' renamed to 'model.', head kept."""
    dim = trunk["layer4.1.bn2.weight"].shape[0]
    return {f"model.{k}": v for k, v in trunk.items()} | _head("model.", {"fc.weight": (128, dim),
                                                                          "fc.bias": (128,)})


BUILDERS = {"moco": moco_v2_checkpoint, "swav": swav_release, "vissl": vissl_checkpoint, "virb": virb_encoder}


def test_every_layout_is_covered_here():
    assert set(LAYOUTS.names()) == {*BUILDERS, "torchvision", "contrasting"}


@pytest.mark.parametrize("layout", sorted(BUILDERS))
def test_prefixed_layouts_load_strictly_and_exactly(layout, tmp_path):
    trunk = _trunk()
    path = tmp_path / f"{layout}.pth"
    torch.save(BUILDERS[layout](trunk), path)
    backbone, found = load_backbone(path)  # architecture inferred from the shapes
    assert found == layout
    assert backbone.describe() == {"backbone": "resnet18", "small_stem": True, "width": 8}
    for k, v in backbone.state_dict().items():
        torch.testing.assert_close(v, trunk[k], msg=k)


def test_moco_v1_linear_head_is_dropped():
    backbone, found = load_backbone(moco_v1_checkpoint(_trunk()))
    assert found == "moco" and backbone.name == "resnet18"


def test_torchvision_supervised_and_old_files_without_num_batches_tracked():
    tv = torchvision.models.resnet18().state_dict()
    backbone, found = load_backbone(tv)
    assert found == "torchvision" and backbone.describe() == {"backbone": "resnet18", "small_stem": False, "width": 64}
    torch.testing.assert_close(backbone.state_dict()["layer3.0.conv1.weight"], tv["layer3.0.conv1.weight"])
    old = {k: v for k, v in tv.items() if not k.endswith("num_batches_tracked")}  # pre-0.4.1 model-zoo files
    backbone, _ = load_backbone(old)
    assert int(backbone.bn1.num_batches_tracked) == 0


def test_export_import_round_trip_and_torchvision_compatibility(tmp_path):
    source = build_backbone("resnet18")
    with torch.no_grad():
        for p in source.parameters():
            p.normal_()
    path = export_backbone(source, tmp_path / "backbone.pt", meta={"method": "simclr", "step": 12})
    sidecar = json.loads((tmp_path / "backbone.pt.json").read_text())
    assert sidecar["backbone"] == "resnet18" and sidecar["step"] == 12 and sidecar["format"].startswith("contrasting")
    loaded, found = load_backbone(path)
    assert found == "contrasting"
    for (k, a), b in zip(source.state_dict().items(), loaded.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=k)
    result = torchvision.models.resnet18().load_state_dict(torch.load(path, weights_only=True), strict=False)
    assert sorted(result.missing_keys) == ["fc.bias", "fc.weight"] and not result.unexpected_keys


def test_wrong_prefix_is_an_error_listing_keys():
    trunk = _trunk()
    single_gpu = {f"encoder_q.{k}": v for k, v in trunk.items()}  # MoCo trained without DataParallel
    with pytest.raises(UnknownLayoutError, match=r"no known layout; its first keys: \[encoder_q\.conv1\.weight") as e:
        load_backbone(single_gpu)
    assert "moco:" in str(e.value) and "torchvision:" in str(e.value)  # the known layouts are named
    with pytest.raises(LayoutError) as e:
        load_backbone(moco_v2_checkpoint(trunk), tiny_backbone(), layout="swav")
    message = str(e.value)
    assert "missing keys (100): bn1.bias" in message and "unexpected keys" in message
    assert re.search(r"unexpected keys \(\d+\): encoder_k\.", message)  # the key encoder is not dropped by swav


def test_missing_unexpected_and_misshaped_keys_are_listed():
    trunk = _trunk()
    broken = dict(trunk)
    del broken["layer4.1.bn2.weight"]
    broken["layer5.0.conv1.weight"] = torch.zeros(1)
    with pytest.raises(LayoutError, match=r"missing keys \(1\): layer4\.1\.bn2\.weight(.|\n)*unexpected keys \(1\): "
                                          r"layer5\.0\.conv1\.weight"):
        load_backbone(broken, tiny_backbone())
    with pytest.raises(LayoutError, match=r"shape mismatches \(1\): conv1\.weight: checkpoint \(8, 3, 3, 3\) vs "
                                          r"backbone \(8, 3, 7, 7\)"):
        load_backbone(trunk, build_backbone("resnet18", width=8))  # small-stem weights into a 7×7 stem


def test_unknown_layout_name_lists_the_known_ones():
    with pytest.raises(UnknownNameError, match="valid checkpoint layouts: contrasting, moco, swav, torchvision, "
                                               "virb, vissl"):
        load_backbone(_trunk(), layout="simclr")


def test_pickled_objects_need_trust(tmp_path):
    path = tmp_path / "moco.pth.tar"
    checkpoint = moco_v2_checkpoint(_trunk())
    checkpoint["args"] = argparse.Namespace(lr=0.03)  # what main_moco.py-style scripts sometimes pickle
    torch.save(checkpoint, path)
    with pytest.raises(LayoutError, match="trusted=True"):
        load_backbone(path)
    assert load_backbone(path, trusted=True)[1] == "moco"


def test_detect_and_infer():
    assert detect_layout(swav_release(_trunk())) == "swav"
    assert infer_architecture(build_backbone("resnet50", width=16).state_dict()) == {
        "backbone": "resnet50", "small_stem": False, "width": 16}

"""Optimizers, schedule, parameter groups and the configuration layers."""

from __future__ import annotations

import math

import pytest
import torch

from contrasting.encoders import LARS, Schedule, UnknownNameError, build_optimizer, parse_override, resolve_config
from contrasting.encoders.training.optim import apply_schedule, make_schedule, param_groups

from .helpers import tiny_method


def test_schedule_warmup_then_cosine_to_the_final_ratio():
    s = Schedule(peak_lr=1.0, total_steps=110, warmup_steps=10, final_lr_ratio=0.1)
    assert [s(i) for i in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert s(10) == pytest.approx(1.0)
    assert s(60) == pytest.approx(0.1 + 0.5 * 0.9)  # halfway through the cosine
    assert s(110) == pytest.approx(0.1) and s(500) == pytest.approx(0.1)


def test_lr_scales_with_the_global_batch():
    config = resolve_config({"method": {"name": "simclr"}}).optimizer_config()
    s = make_schedule(config, global_batch=4096, steps_per_epoch=10, total_steps=1000)
    assert s.peak_lr == pytest.approx(0.3 * 16) and s.warmup_steps == 100  # SimCLR: 4.8 at 4096, 10 epochs


def test_lars_step_matches_the_formula():
    w = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
    w.grad = torch.tensor([0.6, 0.8])
    opt = LARS([w], lr=0.5, momentum=0.9, weight_decay=0.1, eta=0.001)
    d = torch.tensor([0.6, 0.8]) + 0.1 * torch.tensor([3.0, 4.0])  # g + λw, ‖d‖ = 1.5
    expected = torch.tensor([3.0, 4.0]) - 0.5 * (0.001 * 5.0 / 1.5) * d
    opt.step()
    torch.testing.assert_close(w.detach(), expected)


def test_groups_exclude_bias_and_norm_and_freeze_prototypes():
    method = tiny_method("swav")
    config = resolve_config({"method": {"name": "simclr"}}).optimizer_config()  # LARS, excludes biases/BN
    groups = {g["name"]: g for g in param_groups(method, config, method.group_options())}
    assert set(groups) == {"default", "default/no_decay", "prototypes"}
    assert groups["default/no_decay"]["weight_decay"] == 0 and not groups["default/no_decay"]["lars_adapt"]
    assert all(p.ndim <= 1 for p in groups["default/no_decay"]["params"])
    assert groups["prototypes"]["frozen_steps"] == 2
    s = Schedule(peak_lr=1.0, total_steps=10)
    apply_schedule(list(groups.values()), s, step=1)
    assert groups["prototypes"]["lr"] == 0 and groups["prototypes"]["weight_decay"] == 0
    assert groups["default"]["lr"] == pytest.approx(s(1)) and groups["default"]["weight_decay"] == 1e-6
    apply_schedule(list(groups.values()), s, step=2)
    assert groups["prototypes"]["lr"] == pytest.approx(s(2)) and groups["prototypes"]["weight_decay"] == 1e-6


def test_unknown_optimizer_lists_the_valid_ones():
    with pytest.raises(UnknownNameError, match="valid optimizers: adamw, lars, sgd"):
        build_optimizer("adam", tiny_method("simclr"))


def test_method_defaults_follow_the_papers():
    simclr = resolve_config({"method": {"name": "simclr"}})
    assert simclr.optimizer == "lars" and simclr.zero_stage_for(8) == 0
    moco = resolve_config({"method": {"name": "mocov2"}})
    assert (moco.optimizer, moco.optimizer_options["lr"], moco.zero_stage_for(8)) == ("sgd", 0.03, 1)
    assert moco.zero_stage_for(1) == 0  # one process: nothing to partition
    assert moco.method_config().temperature == 0.2
    assert resolve_config({"method": {"name": "mocov1"}}).method_config().temperature == 0.07
    swav = resolve_config({"method": {"name": "swav"}})
    assert swav.optimizer_config().final_lr_ratio == 0.001 and swav.method_config().freeze_prototypes_steps == 313


def test_another_optimizer_drops_the_paper_optimizer_settings():
    config = resolve_config({"method": {"name": "mocov2"}, "optim": {"name": "adamw"}})
    assert config.optimizer == "adamw" and "momentum" not in config.optimizer_options
    assert config.optimizer_config().lr == 1e-3


def test_layers_and_overrides(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("method: {name: mocov2, queue_size: 4096}\ntrain: {epochs: 5}\noptim: {lr: 1e-2}\n")
    from contrasting.encoders import load_yaml

    config = resolve_config(load_yaml(path), parse_override("train.epochs=7"),
                            parse_override("deepspeed.zero_optimization.stage=2"), parse_override("optim.lr=1e-4"))
    assert config.method_options == {"queue_size": 4096} and config.train.epochs == 7
    assert config.optimizer_options["lr"] == 1e-4 and config.deepspeed == {"zero_optimization": {"stage": 2}}
    assert resolve_config(config.to_dict()) == config
    assert parse_override("method.assign_views=[0, 1]") == {"method": {"assign_views": [0, 1]}}


@pytest.mark.parametrize(("layer", "message"), [
    ({"methd": {}}, r"unknown config section 'methd'; valid config sections: backbone, data, deepspeed"),
    ({"method": {"name": "moco"}}, r"unknown method 'moco'; valid methods: byol, mocov1, mocov2"),
    ({"train": {"epoch": 3}}, r"unknown train field 'epoch'; valid train fields: batch_size"),
    ({"method": {"name": "simclr", "temp": 0.1}}, r"unknown simclr config field 'temp'.*temperature"),
    ({"train": {"precision": "fp8"}}, r"unknown precision 'fp8'; valid precisions: auto, bf16, fp16, fp32"),
])
def test_config_errors_list_the_valid_names(layer, message):
    with pytest.raises(UnknownNameError, match=message):
        resolve_config(layer)


def test_lars_refuses_zero_partitions():
    with pytest.raises(ValueError, match="LARS.*zero_stage=0"):
        resolve_config({"method": {"name": "simclr"}, "train": {"zero_stage": 1}})
    with pytest.raises(ValueError, match="stage 3"):
        resolve_config({"method": {"name": "mocov2"}, "train": {"zero_stage": 3}})
    assert math.isfinite(resolve_config({"train": {"zero_stage": 0}}).optimizer_options["lr"])


def test_bad_override_syntax():
    with pytest.raises(ValueError, match="key.path=value"):
        parse_override("train.epochs")

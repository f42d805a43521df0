"""DeepSpeed training in one process (no launcher): every optimiser path, checkpoints, NaN stop, precision."""

from __future__ import annotations

import json
import math

import pytest
import torch

from contrasting.encoders import load_backbone, load_run_backbone, pretrain
from contrasting.encoders.training.trainer import NonFiniteLossError
from contrasting.encoders.weights.checkpoints import CheckpointError, CheckpointManager

from .helpers import read_log, tiny_config, tiny_source


def _steps(run_dir):
    return [e for e in read_log(run_dir) if e["event"] == "step"]


def _model_states(run_dir, tag):
    return torch.load(run_dir / "checkpoints" / tag / "mp_rank_00_model_states.pt", weights_only=False)


def test_mocov2_zero1_checkpoints_queue_and_export(tmp_path):
    config = tiny_config("mocov2", tmp_path, max_steps=3, checkpoint_every=2, zero_stage=1)
    result = pretrain(config, tiny_source("mocov2"))
    assert result.steps == 3 and math.isfinite(result.final_loss)
    assert [e["step"] for e in _steps(tmp_path)] == [1, 2, 3]
    manager = CheckpointManager(tmp_path / "checkpoints", info=None)
    assert manager.latest_tag() == "step_00000003" and manager.is_complete("step_00000002")
    module = _model_states(tmp_path, "step_00000003")["module"]
    assert int(module["queue_ptr"]) == 3 * 8 % 32  # three batches of 8 keys went into the 32-key FIFO
    assert "momentum_encoder.backbone.conv1.weight" in module
    exported, layout = load_backbone(result.export_path)
    from_run, meta = load_run_backbone(tmp_path)
    assert layout == "contrasting" and meta["step"] == 3 and meta["method"] == "mocov2"
    for a, b in zip(exported.state_dict().values(), from_run.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_simclr_lars_with_gradient_accumulation_follows_the_schedule(tmp_path):
    config = tiny_config("simclr", tmp_path, max_steps=2, grad_accum=2)
    result = pretrain(config, tiny_source("simclr"))
    assert result.steps == 2
    steps = _steps(tmp_path)
    # SimCLR: lr 0.3 × 16/256 with 10 warmup epochs of 4 steps each → warmup spans all 2 steps of the run
    assert [e["lr"] for e in steps] == pytest.approx([0.3 * 16 / 256 * (s + 1) / 2 for s in range(2)])
    start = next(e for e in read_log(tmp_path) if e["event"] == "start")
    assert start["global_batch"] == 16 and start["steps_per_epoch"] == 4


def test_swav_prototypes_stay_normalised_and_frozen_under_zero(tmp_path):
    # SGD + ZeRO-1: the prototype projection must also reach the optimizer's fp32 master copy
    config = tiny_config("swav", tmp_path, optim={"name": "sgd", "lr": 0.5}, max_steps=3, checkpoint_every=1,
                         keep_checkpoints=5, zero_stage=1)
    pretrain(config, tiny_source("swav"))
    protos = [_model_states(tmp_path, f"step_0000000{s}")["module"]["prototypes.weight"] for s in (1, 2, 3)]
    torch.testing.assert_close(protos[0].norm(dim=1), torch.ones(16))
    torch.testing.assert_close(protos[1], protos[0])  # frozen for 2 steps: not even weight decay
    assert not torch.allclose(protos[2], protos[1])  # then trained


class _NaNAt:
    """``tiny_source`` whose batch ``bad`` has NaN images."""

    def __init__(self, source, bad):
        self.source, self.bad, self.num_classes = source, bad, source.num_classes

    def __len__(self):
        return len(self.source)

    def epoch(self, epoch, start=0):
        for i, (views, labels) in enumerate(self.source.epoch(epoch, start), start=start):
            yield ([torch.full_like(v, math.nan) for v in views] if i == self.bad else views), labels


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    config = tiny_config("supervised", tmp_path, checkpoint_every=2)
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at step 3 \(epoch 0, batch 3\).*last good "
                                                 r"checkpoint: step_00000002"):
        pretrain(config, _NaNAt(tiny_source("supervised"), bad=3))
    manager = CheckpointManager(tmp_path / "checkpoints", info=None)
    assert manager.latest_tag() == "step_00000002"
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir() if p.suffix != ".py") == [
        "latest", "step_00000002"]
    assert read_log(tmp_path)[-1]["event"] == "error" and not (tmp_path / "backbone.pt").exists()
    module = _model_states(tmp_path, "step_00000002")["module"]
    assert all(torch.isfinite(v).all() for v in module.values() if v.is_floating_point())


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_autocast_keeps_weights_and_batchnorm_fp32(tmp_path, precision):
    config = tiny_config("supervised", tmp_path, max_steps=1, precision=precision)
    result = pretrain(config, tiny_source("supervised"))
    assert math.isfinite(result.final_loss)
    module = _model_states(tmp_path, "step_00000001")["module"]
    assert module["backbone.bn1.running_var"].dtype == torch.float32
    assert module["backbone.conv1.weight"].dtype == torch.float32
    generated = json.loads(json.dumps(read_log(tmp_path)[0]["config"]))
    assert generated["train"]["precision"] == precision


def test_existing_checkpoints_are_never_overwritten_by_a_new_run(tmp_path):
    config = tiny_config("simclr", tmp_path, max_steps=1)
    pretrain(config, tiny_source("simclr"))
    with pytest.raises(CheckpointError, match="already holds checkpoints"):
        pretrain(tiny_config("simclr", tmp_path, max_steps=1, resume=False), tiny_source("simclr"))
    with pytest.raises(CheckpointError, match=r"different run \(differs in batch_size\)"):
        pretrain(tiny_config("simclr", tmp_path, max_steps=2, batch_size=4), tiny_source("simclr", batch_size=4))


def test_a_run_resumes_from_its_own_saved_config(tmp_path):
    """config.yaml spells out every default; resuming with it as the config is the same run, not a different one."""
    import yaml

    from contrasting.encoders import resolve_config

    pretrain(tiny_config("swav", tmp_path, max_steps=1), tiny_source("swav"))
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    saved["train"]["max_steps"] = 2
    result = pretrain(resolve_config(saved), tiny_source("swav"))
    assert result.steps == 2 and any(e["event"] == "resume" for e in read_log(tmp_path))
    saved["method"]["prototypes"] += 1  # a real difference is still refused
    with pytest.raises(CheckpointError, match=r"different run \(differs in method_options\)"):
        pretrain(resolve_config(saved), tiny_source("swav"))


def test_random_baseline_is_exported_without_training(tmp_path):
    config = tiny_config("random", tmp_path)
    result = pretrain(config)
    assert result.steps == 0 and result.export_path.exists()
    again = pretrain(tiny_config("random", tmp_path / "again"))
    a, b = load_backbone(result.export_path)[0], load_backbone(again.export_path)[0]
    torch.testing.assert_close(a.conv1.weight, b.conv1.weight)  # seeded: the same random encoder


def test_auto_precision_and_channels_last_follow_the_cpu(tmp_path, monkeypatch):
    from contrasting.encoders.training import precision as trainer

    assert trainer.resolve_precision("fp32", torch.device("cpu")) == "fp32"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert trainer.resolve_precision("auto", torch.device("cpu")) == "fp32"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert trainer.resolve_precision("auto", torch.device("cpu")) == "bf16"
    assert trainer.resolve_channels_last(None, "bf16") and not trainer.resolve_channels_last(None, "fp32")
    assert trainer.resolve_channels_last(True, "fp32")
    pretrain(tiny_config("simclr", tmp_path, max_steps=2), tiny_source("simclr"))
    start = read_log(tmp_path)[0]
    assert start["precision"] == "bf16" and start["channels_last"] is True


def test_online_knn_monitor_is_logged(tmp_path):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in range(2):
            (tmp_path / split / f"{c}").mkdir(parents=True)
            for i in range(6):
                img = np.full((16, 16, 3), 40 + 170 * c, np.uint8) + rng.integers(0, 20, (16, 16, 3), dtype=np.uint8)
                Image.fromarray(img).save(tmp_path / split / f"{c}" / f"{i}.png")
    run = tmp_path / "run"
    config = tiny_config("simclr", run, max_steps=2, knn_train=str(tmp_path / "train"),
                         knn_test=str(tmp_path / "test"), knn_every=1)
    pretrain(config, tiny_source("simclr"))
    knn = [e for e in read_log(run) if e["event"] == "knn"]
    assert [e["step"] for e in knn] == [1, 2] and all(0 <= e["top1"] <= 1 for e in knn)
    assert knn[-1]["top1"] == 1.0  # two classes of flat grey levels: any encoder separates them
    with pytest.raises(ValueError, match="give both"):
        tiny_config("simclr", run, knn_train=str(tmp_path / "train"))


def test_export_steps_write_intermediate_backbones(tmp_path):
    result = pretrain(tiny_config("mocov2", tmp_path, max_steps=3, export_steps=[1, 2, 9]), tiny_source("mocov2"))
    assert result.steps == 3
    assert sorted(p.name for p in tmp_path.glob("backbone-step*.pt")) == ["backbone-step000001.pt",
                                                                         "backbone-step000002.pt"]
    early, _ = load_backbone(tmp_path / "backbone-step000001.pt")
    final, _ = load_backbone(result.export_path)
    assert any(not torch.equal(a, b) for a, b in zip(early.state_dict().values(), final.state_dict().values(),
                                                      strict=True))
    assert [e["step"] for e in read_log(tmp_path) if e["event"] == "export"] == [1, 2]

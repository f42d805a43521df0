"""The ``contrasting`` command: dispatch, pretrain / export / inspect-checkpoint, errors that list valid names."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torchvision

from contrasting.encoders import cli, load_backbone

from .helpers import read_log


def test_help_lists_this_package_commands(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("pretrain", "export", "inspect-checkpoint"))


def test_callable_commands_get_their_arguments_unchanged(monkeypatch):
    seen = []

    def echo(argv=None):
        """Echo its arguments."""
        seen.append(argv)
        return 3

    monkeypatch.setattr(cli, "discover", lambda: {"echo": echo})
    assert cli.main(["--local_rank=1", "echo", "--encoder", "x", "pos"]) == 3
    assert seen == [["--encoder", "x", "pos"]]


def test_print_config_applies_overrides(capsys):
    assert cli.main(["--local_rank", "0", "pretrain", "--method", "mocov2", "--epochs", "3", "--print-config",
                     "--corpus", "synthetic", "optim.lr=0.06", "method.queue_size=1024"]) == 0
    out = capsys.readouterr().out
    assert "queue_size: 1024" in out and "epochs: 3" in out and "lr: 0.06" in out and "name: sgd" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--method", "npid"],
     "unknown method 'npid'; valid methods: byol, mocov1, mocov2, pirl, random, simclr, supervised, swav"),
    (["--backbone", "vit"], "unknown backbone 'vit'; valid backbones: resnet18, resnet50"),
    (["--corpus", "imagenet-nowhere"], "unknown corpus 'imagenet-nowhere'; valid corpora: <file list>"),
    (["train.epoch=1"], "unknown train field 'epoch'"),
])
def test_unknown_names_are_clear_errors(args, message, capsys):
    assert cli.main(["pretrain", "--print-config", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("contrasting pretrain: error: ") and message in err


def test_random_pretrain_then_inspect_and_export(tmp_path, capsys):
    run = tmp_path / "random"
    assert cli.main(["pretrain", "--method", "random", "--backbone", "resnet18", "--small-stem", "--output",
                     str(run), "backbone.width=8"]) == 0
    assert "backbone exported to" in capsys.readouterr().out
    assert cli.main(["inspect-checkpoint", str(run / "backbone.pt"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == {**report, "layout": "contrasting", "backbone": "resnet18", "small_stem": True, "width": 8,
                      "strict_load": "ok"}


def test_export_converts_a_published_layout(tmp_path, capsys):
    tv = tmp_path / "resnet18-supervised.pth"
    torch.save(torchvision.models.resnet18().state_dict(), tv)
    assert cli.main(["export", str(tv), "--out", str(tmp_path / "ours.pt")]) == 0
    assert "from torchvision" in capsys.readouterr().out
    assert load_backbone(tmp_path / "ours.pt")[1] == "contrasting"
    wrong = tmp_path / "wrong.pth"
    torch.save({f"backbone.{k}": v for k, v in torchvision.models.resnet18().state_dict().items()}, wrong)
    assert cli.main(["inspect-checkpoint", str(wrong)]) == 2
    err = capsys.readouterr().err
    assert "no known layout; its first keys: [backbone.conv1.weight" in err


def test_image_folder_corpus_through_contrasting_data(tmp_path):
    pytest.importorskip("contrasting.data")
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / "images" / c).mkdir(parents=True)
        for i in range(8):
            pixels = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "images" / c / f"{i}.png")
    run = tmp_path / "run"
    assert cli.main(["pretrain", "--method", "simclr", "--corpus", str(tmp_path / "images"), "--backbone", "resnet18",
                     "--small-stem", "--image-size", "32", "--batch-size", "8", "--max-steps", "1", "--output",
                     str(run), "--no-progress", "backbone.width=8", "data.executor=torchvision",
                     "data.workers=0"]) == 0
    steps = [e for e in read_log(run) if e["event"] == "step"]
    assert len(steps) == 1 and np.isfinite(steps[0]["loss"])


@pytest.mark.slow
def test_builtin_corpus(tmp_path):
    pytest.importorskip("contrasting.data.builtin")
    run = tmp_path / "run"
    assert cli.main(["pretrain", "--method", "mocov2", "--corpus", "shapes", "--backbone", "resnet18",
                     "--small-stem", "--image-size", "32", "--batch-size", "8", "--max-steps", "2", "--output",
                     str(run), "--no-progress", "backbone.width=8", "method.queue_size=64", "train.log_every=1"]) == 0
    assert [e["step"] for e in read_log(run) if e["event"] == "step"] == [1, 2]

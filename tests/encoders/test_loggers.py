"""Loggers chosen by ``train.loggers``: log.jsonl always, metrics.csv rows without duplicates across a resume,
TensorBoard and Weights & Biases only when installed (W&B offline without a key), clear errors otherwise."""

from __future__ import annotations

import csv
import json
import sys
import types

import pytest

from contrasting.encoders.config import resolve_config
from contrasting.encoders.training import loggers
from contrasting.encoders.training.loggers import LOGGERS, CsvLogger, logger_problems, open_loggers, wandb_mode


def _rows(run_dir) -> list[dict]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def _step(step: int, **fields) -> dict:
    return {"event": "step", "time": 0.0, "step": step, "epoch": 0, "loss": 1.0 / step, "lr": 0.1, **fields}


def test_registry_names_the_loggers():
    assert set(LOGGERS) >= {"jsonl", "csv", "tensorboard", "wandb"}
    assert resolve_config({}).train.loggers == ["jsonl", "csv"]


def test_jsonl_is_always_written_and_csv_holds_metric_rows(tmp_path):
    opened = open_loggers(["csv"], tmp_path)
    assert [type(lg).__name__ for lg in opened] == ["JsonlLogger", "CsvLogger"]
    for record in ({"event": "start", "time": 0.0}, _step(1), {"event": "checkpoint", "step": 1, "tag": "x"},
                   _step(2), {"event": "knn", "time": 0.0, "step": 2, "top1": 0.5}):
        for logger in opened:
            logger.log(record)
    events = [json.loads(line)["event"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert events == ["start", "step", "checkpoint", "step", "knn"]
    rows = _rows(tmp_path)
    assert [(r["event"], r["step"]) for r in rows] == [("step", "1"), ("step", "2"), ("knn", "2")]
    assert list(rows[0]) == ["event", "time", "step", "epoch", "loss", "lr", "top1"]  # union of keys
    assert rows[2]["top1"] == "0.5" and rows[0]["top1"] == ""


def test_csv_resume_does_not_duplicate_rows(tmp_path):
    first = CsvLogger(tmp_path, {})
    first.log({"event": "start"})
    for step in range(1, 6):
        first.log(_step(step))
    # the run stopped after step 5; its last checkpoint is step 3: the resumed run logs 4 and 5 again
    second = CsvLogger(tmp_path, {})
    second.log({"event": "resume", "step": 3})
    assert [r["step"] for r in _rows(tmp_path)] == ["1", "2", "3"]
    for step in range(4, 8):
        second.log(_step(step, images_per_s=10.0))
    rows = _rows(tmp_path)
    assert [r["step"] for r in rows] == [str(s) for s in range(1, 8)]
    assert rows[0]["images_per_s"] == "" and rows[-1]["images_per_s"] == "10.0"
    CsvLogger(tmp_path, {}).log({"event": "start"})  # a fresh start (no checkpoint) drops every row
    assert _rows(tmp_path) == []


def test_requested_but_not_installed_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(loggers, "installed", lambda module: False)
    problems = logger_problems(["jsonl", "wandb", "tensorboard"])
    assert [str(p) for p in problems] == [
        "train.loggers: 'wandb' needs the wandb package, which is not installed (pip install wandb); or drop it "
        "from train.loggers",
        "train.loggers: 'tensorboard' needs the tensorboard package, which is not installed (pip install "
        "tensorboard); or drop it from train.loggers"]
    with pytest.raises(ValueError, match="'wandb' needs the wandb package"):
        resolve_config({"train": {"loggers": ["jsonl", "wandb"]}})
    with pytest.raises(ValueError, match="unknown logger 'mlflow'; valid loggers: csv, jsonl, tensorboard, wandb"):
        resolve_config({"train": {"loggers": ["mlflow"]}})
    with pytest.raises(ValueError, match="train.loggers: expected a list of logger names"):
        resolve_config({"train": {"loggers": "csv"}})


def test_wandb_mode_never_needs_a_network():
    assert wandb_mode({}) == "offline"
    assert wandb_mode({"WANDB_API_KEY": "k"}) == "online"
    assert wandb_mode({"WANDB_MODE": "disabled", "WANDB_API_KEY": "k"}) == "disabled"


def test_wandb_logger_with_a_stand_in_module(tmp_path, monkeypatch):
    """The W&B logger's calls (the real package is optional and not installed here)."""
    calls = []

    class Run:
        def log(self, data, step=None):
            calls.append(("log", data, step))

        def finish(self):
            calls.append(("finish",))

    fake = types.SimpleNamespace(init=lambda **kw: calls.append(("init", kw)) or Run())
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.setattr(loggers, "installed", lambda module: True)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    opened = open_loggers(["jsonl", "wandb"], tmp_path, {"train": {"epochs": 1}})
    for logger in opened:
        logger.log(_step(2))
        logger.log({"event": "checkpoint", "step": 2})
        logger.close()
    init = calls[0][1]
    assert init["mode"] == "offline" and init["dir"] == str(tmp_path) and init["config"] == {"train": {"epochs": 1}}
    assert calls[1:] == [("log", {"train/loss": 0.5, "train/lr": 0.1}, 2), ("finish",)]


def test_wandb_logger_offline_with_the_real_package(tmp_path, monkeypatch):
    """With wandb installed and no network or key: an offline run folder holding the logged steps."""
    pytest.importorskip("wandb", reason="wandb is optional")
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    opened = open_loggers(["jsonl", "wandb"], tmp_path, {"train": {"epochs": 1}})
    for step in (1, 2):
        for logger in opened:
            logger.log(_step(step))
    for logger in opened:
        logger.close()
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb")), runs


def test_tensorboard_scalars(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is optional")
    logger = open_loggers(["tensorboard"], tmp_path)[1]
    logger.log(_step(1))
    logger.close()
    assert any((tmp_path / "tensorboard").iterdir())


def test_a_run_writes_metrics_csv_and_its_full_config(tmp_path):
    """One tiny training run: metrics.csv has a row per logged step, config.yaml the fully resolved config."""
    import yaml

    from contrasting.encoders.training.trainer import pretrain

    from .helpers import tiny_config, tiny_source

    config = tiny_config("simclr", tmp_path / "run", max_steps=2)
    pretrain(config, data=tiny_source("simclr"))
    rows = _rows(tmp_path / "run")
    assert [r["step"] for r in rows] == ["1", "2"] and all(float(r["loss"]) > 0 for r in rows)
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved == config.to_dict() and "temperature" in saved["method"] and "eta" in saved["optim"]

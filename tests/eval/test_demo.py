"""``contrasting demo`` (contrasting.eval.demo): presets, the run plan and the grid spec it writes, and the tiny
preset end to end — world, pre-training subprocesses, grid, report — then a rerun that recomputes nothing and a
rerun after an interrupted run that resumes it from its checkpoint."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from contrasting.encoders.methods import methods_with_role
from contrasting.eval import demo
from contrasting.eval.catalog.tasks import get_task, list_tasks
from contrasting.eval.grid.spec import load_spec

builtin = pytest.importorskip("contrasting.data.builtin")


def fake_world(tmp_path: Path, size: int = 1500):
    corpora = {c: SimpleNamespace(root=tmp_path / "corpora" / c / "train", size=size) for c in builtin.list_corpora()}
    tasks = {t: {s: SimpleNamespace(root=tmp_path / "tasks" / t / s) for s in ("train", "val", "test")}
             for t in builtin.list_tasks()}
    return SimpleNamespace(path=tmp_path, key="0123456789abcdef", corpora=corpora, tasks=tasks)


@pytest.mark.parametrize("name", sorted(demo.PRESETS))
def test_presets_are_consistent(name):
    p = demo.PRESETS[name]
    tasks = demo.eval_tasks(p)
    assert p.reference_task in tasks and get_task(p.reference_task).group == "image"
    assert set(p.corpora) <= set(builtin.list_corpora()) and p.supervised_corpus in builtin.list_corpora()
    assert set(p.methods) <= set(methods_with_role("ssl"))
    config = demo.world_config(p)
    assert set(config.tasks) == {demo.world_task(t) for t in tasks}
    assert p.supervised_corpus in config.corpora
    if name != "tiny":  # the README's demo: every built-in task, the balanced / unbalanced pair and a third corpus
        assert tasks == [t.name for t in list_tasks(builtin=True)]
        assert {"shapes", "shapes-lt"} < set(p.corpora) and len(p.corpora) >= 3
        assert {"mocov2", "swav"} <= set(p.methods)  # the study's comparison, on the same corpora


def test_budget_scales_pretraining_only():
    p = demo.PRESETS["quick"]
    assert p.scaled(None) is p
    longer = p.scaled(p.minutes + p.pretrain_minutes)  # twice the pre-training time
    assert longer.ssl_steps == 2 * p.ssl_steps and longer.supervised_steps == 2 * p.supervised_steps
    assert longer.image_hparams == p.image_hparams and longer.scale == p.scale
    assert p.scaled(0.01).ssl_steps >= 1


def test_plan_runs_and_grid_spec_carry_the_analysis_metadata(tmp_path):
    p = demo.PRESETS["quick"]
    world = fake_world(tmp_path)
    runs = demo.plan_runs(p, world, tmp_path / "out")
    assert len(runs) == 2 + len(p.methods) * len(p.corpora)
    assert len({r.dir for r in runs}) == len(runs) and len({r.name for r in runs}) == len(runs)
    # The directory hash covers the configuration, not where the world lies.
    moved = demo.plan_runs(p, fake_world(tmp_path / "elsewhere"), tmp_path / "out")
    assert [r.dir for r in moved] == [r.dir for r in runs]
    assert demo.plan_runs(p.scaled(30), world, tmp_path / "out")[2].dir != runs[2].dir
    moco = next(r for r in runs if r.name == "MoCoV2-shapes")
    assert moco.layer["train"]["max_steps"] == p.ssl_steps and moco.layer["backbone"]["small_stem"]
    assert moco.epochs == pytest.approx(p.ssl_steps * p.batch_size / 1500, abs=1e-3)
    assert moco.layer["method"]["queue_size"] < 1500 // p.batch_size * p.batch_size  # shorter than an epoch
    assert moco.layer["data"]["executor"] == "dali" and moco.layer["train"]["precision"] == "auto"
    assert moco.layer["train"]["knn_train"].endswith("shape-cls/train") and moco.series == (p.ssl_steps // 2,)
    assert next(r for r in runs if r.name == "SwAV-textures").series == ()

    raw = demo.grid_spec(p, runs, world, tmp_path / "out", workers=2)
    spec = load_spec(raw, validate=False)
    by = {e.name: e for e in spec.encoders}
    assert demo.encoder_count(p)[0] == len(spec.encoders)  # what the demo's first line announces
    assert by["Random"].method == "random" and by["Random"].kind == "checkpoint"
    assert by["Supervised-shapes"].kind == "supervised" and by["Supervised-shapes"].corpus == "shapes"
    assert (by["MoCoV2-shapes"].balanced, by["MoCoV2-shapes-lt"].balanced) == (True, False)
    assert by["MoCoV2-shapes"].pair == by["MoCoV2-shapes-lt"].pair == "shapes"
    half = f"MoCoV2-shapes@{p.ssl_steps // 2}"
    assert by[half].kind == "checkpoint" and by[half].epochs == pytest.approx(by["MoCoV2-shapes"].epochs / 2, 1e-2)
    assert by[half].pair == f"shapes@{p.ssl_steps // 2}" and by[half].balanced is True
    assert by["SwAV-textures"].balanced is None and by["SwAV-textures"].epochs == by["SwAV-shapes"].epochs
    tasks = {t.name: t for t in spec.tasks}
    assert [t for t in tasks if tasks[t].reference] == [p.reference_task] == [spec.analysis.reference_task]
    assert set(tasks["shapes-shape"].similar_corpus) == {"shapes", "shapes-lt"}
    assert tasks["shapes-texture"].similar_corpus == ("textures",)
    assert spec.runner.executor == demo.EXECUTOR and spec.hparams[0].values["image_size"] == p.resolution
    assert spec.hparams[0].values["pixel_cache"] is True


def test_no_learning_losses():
    p = demo.PRESETS["quick"]
    assert demo.no_learning_loss("simclr", {}, 128) == pytest.approx(math.log(255))
    layer = demo.method_layer("mocov2", p, 200, 1500)
    assert demo.no_learning_loss("mocov2", layer, 128) == pytest.approx(math.log(layer["method"]["queue_size"] + 1))
    assert demo.no_learning_loss("swav", demo.method_layer("swav", p, 200, 1500), 128) == pytest.approx(math.log(100))
    assert demo.no_learning_loss("random", {}, 128) is None


def test_demo_cell_rejects_unknown_settings():
    request = SimpleNamespace(hparams={"image_size": 32, "image": [{"learning_rate": 1}]}, task="shapes-shape")
    with pytest.raises(ValueError, match="learning_rate"):
        demo.demo_cell(request, lambda *a, **k: None)
    with pytest.raises(ValueError, match="colour"):
        demo.demo_cell(SimpleNamespace(hparams={"colour": 1}, task="shapes-shape"), lambda *a, **k: None)


def _state(out: Path, summary: dict) -> tuple[dict, dict]:
    from contrasting.eval.grid.store import ResultStore

    runs = {name: (Path(d) / "backbone.pt").stat().st_mtime_ns for name, d in summary["pretrain"]["runs"].items()}
    with ResultStore(out / "grid.sqlite", create=False) as store:
        cells = {c.key: (c.status, c.attempts, c.finished, c.score) for c in store.cells(summary["grid"]["spec_hash"])}
    return runs, cells


@pytest.mark.slow
def test_tiny_demo_end_to_end_then_reuses_and_resumes(tmp_path, capsys):
    pytest.importorskip("deepspeed")
    pytest.importorskip("contrasting.encoders")
    out, data = tmp_path / "demo", tmp_path / "data"
    argv = ["--preset", "tiny", "--out", str(out), "--data-root", str(data), "--workers", "2", "--no-progress"]

    assert demo.demo_main(argv) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / demo.SUMMARY).read_text())
    report = out / "report"
    for name in ("report.html", "report.md", "results.csv", "cells.csv", "figures/scatter_vs_reference.png"):
        assert (report / name).is_file(), name
    assert f"report: {report / 'report.html'}" in printed and "findings" in printed
    assert [f["number"] for f in summary["findings"]] == [1, 2, 3, 4, 5, 6]
    assert all(f["verdict"] in ("supported", "refuted", "inconclusive", "not testable") for f in summary["findings"])
    runs = summary["pretrain"]["runs"]
    assert sorted(summary["pretrain"]["ran"]) == sorted(runs) and not summary["pretrain"]["failed"]
    assert summary["grid"]["done"] == summary["grid"]["total"] == len(runs) * 2
    stamps, cells = _state(out, summary)
    assert all(status == "done" and attempts == 1 for status, attempts, _, _ in cells.values())
    from contrasting.eval.grid.store import ResultStore

    with ResultStore(out / "grid.sqlite", create=False) as store:
        meta = {c.encoder: c.encoder_meta for c in store.cells(summary["grid"]["spec_hash"])}
    assert meta["Random"]["method"] == "random" and meta["Supervised-shapes"]["supervised"] is True
    assert (meta["SwAV-shapes"]["balanced"], meta["SwAV-shapes-lt"]["balanced"]) == (True, False)

    # A rerun recomputes nothing: no pre-training subprocess, no cell, the same files and store rows.
    assert demo.demo_main(argv) == 0
    again = json.loads((out / demo.SUMMARY).read_text())
    assert again["pretrain"]["ran"] == [] and sorted(again["pretrain"]["reused"]) == sorted(runs)
    assert again["grid"]["ran"] == 0 and again["grid"]["spec_hash"] == summary["grid"]["spec_hash"]
    assert _state(out, again) == (stamps, cells)

    # An interrupted run (no completion marker, no export yet) resumes from its last checkpoint: it trains no
    # step again, and its re-exported backbone has the same bytes, so its cells are reused too.
    run_dir = Path(runs["MoCoV2-shapes"])
    (run_dir / demo.DONE).unlink()
    (run_dir / "backbone.pt").unlink()
    before = len((run_dir / "log.jsonl").read_text().splitlines())
    assert demo.demo_main(argv) == 0
    third = json.loads((out / demo.SUMMARY).read_text())
    assert third["pretrain"]["ran"] == ["MoCoV2-shapes"]
    events = [json.loads(line)["event"] for line in (run_dir / "log.jsonl").read_text().splitlines()[before:]]
    assert "resume" in events and "step" not in events and events[-1] == "end"
    assert third["grid"]["ran"] == 0
    assert _state(out, third)[1] == cells


def test_methods_option_is_checked_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "demo"
    assert demo.demo_main(["--preset", "tiny", "--methods", "mocov2,foo", "--out", str(out)]) == 2
    assert "--methods: 'foo' not a self-supervised method" in capsys.readouterr().err and not out.exists()
    assert demo.checked_methods(("byol", "pirl")) == ("byol", "pirl")
    with pytest.raises(ValueError, match="valid: .*byol.*pirl"):
        demo.checked_methods(("supervised",))  # a baseline, not a self-supervised method
    with pytest.raises(SystemExit):
        demo.demo_main(["--methods", "swav,swav"])


@pytest.mark.slow
def test_byol_and_pirl_enter_the_demo_on_the_built_in_world(tmp_path):
    """The two methods added as one file each train on the built-in world through the demo's runner (DeepSpeed,
    DALI loaders; PIRL with each sample's corpus index) and are evaluated as encoders of its grid."""
    pytest.importorskip("deepspeed")
    out = tmp_path / "demo"
    argv = ["--preset", "tiny", "--methods", "byol,pirl", "--out", str(out), "--data-root", str(tmp_path / "data"),
            "--workers", "2", "--no-progress"]
    assert demo.demo_main(argv) == 0
    summary = json.loads((out / demo.SUMMARY).read_text())
    runs = summary["pretrain"]["runs"]
    assert {n for n in runs if n.startswith(("BYOL-", "PIRL-"))} == {
        "BYOL-shapes", "BYOL-shapes-lt", "PIRL-shapes", "PIRL-shapes-lt"}
    assert not summary["pretrain"]["failed"] and summary["grid"]["done"] == summary["grid"]["total"] == 12
    for name in ("BYOL-shapes", "PIRL-shapes-lt"):
        steps = [json.loads(line) for line in (Path(runs[name]) / "log.jsonl").read_text().splitlines()]
        losses = [e["loss"] for e in steps if e["event"] == "step"]
        assert len(losses) == 2 and all(math.isfinite(v) for v in losses)

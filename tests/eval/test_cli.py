"""The `contrasting tasks` and `contrasting eval` subcommands (called as the entry points are)."""

from __future__ import annotations

import json
from importlib import metadata

import pytest
import torch
import torchvision

from contrasting.eval import TASKS
from contrasting.eval.cli import eval_command, main, tasks_command


def test_entry_points_are_registered():
    eps = {ep.name: ep.value for ep in metadata.entry_points(group="contrasting.commands")}
    assert eps.get("eval") == "contrasting.eval.cli:eval_command"
    assert eps.get("tasks") == "contrasting.eval.cli:tasks_command"


def test_tasks_lists_every_task_with_presence(world_root, capsys):
    assert tasks_command(["--data-root", str(world_root)]) == 0
    out = capsys.readouterr().out
    for name in TASKS:
        assert name in out
    assert f"{world_root}/oxford-iiit-pet/images" in out  # where it was looked for
    assert tasks_command(["--data-root", str(world_root), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    status = {r["task"]: r["data"] for r in rows}
    assert status["shapes-shape"] == "present" and status["imagenet"] == "missing" and len(rows) == len(TASKS)


def test_eval_runs_one_cell(world_root, capsys):
    rc = eval_command(["--encoder", "random:resnet18", "--task", "shapes-digit", "--data-root", str(world_root),
                       "--image-size", "32", "--epochs", "2", "--hparams", '[{"lr": 1e-3}, {"lr": 1e-2}]',
                       "--quiet", "--device", "cpu"])
    out = capsys.readouterr().out
    assert rc == 0 and "test top1 = " in out and "higher is better" in out and out.count("setting lr=") == 2
    rc = main(["eval", "--encoder", "random:resnet18", "--task", "shapes-digit", "--data-root", str(world_root),
               "--image-size", "32", "--epochs", "1", "--json", "--quiet"])
    result = json.loads(capsys.readouterr().out)
    assert rc == 0 and result["task"] == "shapes-digit" and result["metric"] == "top1"


def test_eval_missing_data_names_task_path_and_layout(tmp_path, capsys):
    rc = eval_command(["--encoder", "random:resnet18", "--task", "dtd", "--data-root", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "task 'dtd'" in err and str(tmp_path / "dtd") in err and "labels/{train,val,test}1.txt" in err


def test_eval_takes_a_paper_form_by_name(tmp_path, capsys):
    rc = eval_command(["--encoder", "random:resnet18", "--task", "kitti-flow:paper", "--data-root", str(tmp_path),
                       "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "task 'kitti-flow:paper'" in err and "viz_flow_occ" in err  # known; its data is missing
    assert eval_command(["--encoder", "random", "--task", "dtd:paper", "--quiet"]) == 2
    assert "unknown task 'dtd:paper'" in capsys.readouterr().err


def test_eval_unknown_task_and_bad_checkpoint(world_root, tmp_path, capsys):
    assert eval_command(["--encoder", "random", "--task", "nope", "--quiet"]) == 2
    assert "unknown task 'nope'" in capsys.readouterr().err
    bad = tmp_path / "weird.pth"
    torch.save({"trunk.x." + k: v for k, v in torchvision.models.resnet18().state_dict().items()}, bad)
    rc = eval_command(["--encoder", str(bad), "--task", "shapes-digit", "--data-root", str(world_root), "--quiet"])
    assert rc == 2 and str(bad) in capsys.readouterr().err


def test_usage(capsys):
    assert main([]) == 2
    with pytest.raises(SystemExit):
        eval_command(["--task", "pets"])  # --encoder is required


def test_tasks_describes_one_task_with_its_deviations(capsys):
    from contrasting.encoders.cli import main
    from contrasting.eval.catalog.tasks import PROTOCOL_DEVIATIONS, get_task

    assert main(["tasks", "--task", "cityscapes"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cityscapes: Cityscapes semantic segmentation") and "expected layout:" in out
    for deviation in (*get_task("cityscapes").deviations, *PROTOCOL_DEVIATIONS):
        assert deviation in out
    assert "the study's own form: --task cityscapes:paper" in out
    assert main(["tasks", "--task", "cityscapes:paper"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cityscapes:paper: ") and "20 classes" in out and "450x450 crops (scale 0.5-2" in out
    assert all(d in out for d in get_task("cityscapes:paper").deviations)
    assert main(["tasks", "--task", "dtd:paper"]) == 2  # dtd follows the study: no paper form
    assert "has no paper form" in capsys.readouterr().err
    assert main(["tasks", "--task", "no-such-task"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("contrasting tasks: error: --task: unknown task 'no-such-task'")


def test_eval_takes_several_tasks_and_writes_json(world_root, tmp_path, capsys):
    out = tmp_path / "results.json"
    rc = main(["eval", "--encoder", "random:resnet18", "--task", "shapes-digit", "shapes-count", "--data-root",
               str(world_root), "--image-size", "32", "--hparams", "lr=1e-3,epochs=1", "--json", str(out), "--quiet"])
    printed = capsys.readouterr().out
    records = json.loads(out.read_text())
    assert rc == 0 and [r["task"] for r in records] == ["shapes-digit", "shapes-count"]
    assert all(r["selected"]["lr"] == 1e-3 and r["selected"]["epochs"] == 1 for r in records)
    assert printed.count("test top1 = ") == 2
    rc = main(["eval", "--encoder", "random:resnet18", "--task", "shapes-digit", "no-such", "--quiet"])
    assert rc == 2 and "unknown task 'no-such'" in capsys.readouterr().err


def test_an_unknown_arch_is_refused_before_any_data_is_read(tmp_path, capsys, monkeypatch):
    from contrasting.eval.cell import protocol

    monkeypatch.setattr(protocol, "load_task_data", lambda *a, **k: pytest.fail("data read before the check"))
    rc = main(["eval", "--encoder", "random", "--arch", "resnet19", "--task", "shapes-digit", "--quiet",
               "--data-root", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "resnet19" in err[0] and "resnet18" in err[0]

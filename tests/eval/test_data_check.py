"""``contrasting tasks --check ROOT``: each study task's data found, partial, missing or malformed, before training."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from contrasting.eval.catalog.data_check import check_task_data
from contrasting.eval.catalog.tasks import get_task
from tests.eval.real_formats import WRITERS


def _write(root, task):
    WRITERS[task](root / get_task(task).subdir, np.random.default_rng(0))


def test_each_state_is_told_apart(tmp_path):
    for task in ("dtd", "cifar100", "thor-num-steps"):
        _write(tmp_path, task)
    (tmp_path / get_task("cifar100").subdir / "cifar-100-python" / "train").write_bytes(b"not a pickle")
    dtd = check_task_data("dtd", tmp_path)
    assert dtd.status == "partial" and dtd.counts[0] > 0 and dtd.expected == (3760, 1880)
    assert f"{dtd.counts[0]} train / {dtd.counts[1]} test" in dtd.problem and "3760 / 1880" in dtd.problem
    exact = check_task_data(dataclasses.replace(get_task("dtd"), expected_sizes=dtd.counts), tmp_path)
    assert exact.status == "found" and exact.problem == ""
    assert check_task_data("thor-num-steps", tmp_path).status == "found"  # no published counts to compare
    broken = check_task_data("cifar100", tmp_path)
    assert broken.status == "malformed" and "cifar-100-python/train" in broken.problem
    missing = check_task_data("kitti-flow", tmp_path)
    assert missing.status == "missing" and "image_2" in missing.problem and missing.counts is None


def test_the_command_lists_every_study_task_and_fails_unless_all_are_found(tmp_path, capsys):
    from contrasting.encoders.cli import main

    _write(tmp_path, "dtd")
    assert main(["tasks", "--check", str(tmp_path)]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 21 and lines[-1].startswith("0 of 20 study tasks found")
    assert any(line.startswith("dtd") and "partial" in line for line in lines)
    assert main(["tasks", "--check", str(tmp_path), "--json"]) == 1
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == 20 and {r["status"] for r in records} == {"partial", "missing"}
    with pytest.raises(SystemExit) as refused:  # refused by argparse before any check
        main(["tasks", "--check", str(tmp_path / "absent")])
    assert refused.value.code == 2 and "argument --check: no such folder" in capsys.readouterr().err

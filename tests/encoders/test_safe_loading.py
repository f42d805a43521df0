"""Nothing executes from a file: run directories, checkpoints and RNG states load with weights_only=True, and a
crafted pickle is refused before any unpickling that could run it."""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil

import numpy as np
import pytest
import torch

from contrasting.encoders import load_run_backbone, pretrain
from contrasting.encoders.weights.checkpoints import (
    COMPLETE,
    CheckpointError,
    _files_manifest,
    rng_state,
    set_rng_state,
)

from .helpers import tiny_config, tiny_source


class _Payload:
    """Unpickling it creates ``marker``: the stand-in for code run from a data file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _plant(path, marker):
    with open(path, "wb") as f:
        pickle.dump({"module": {}, "evil": _Payload(marker)}, f)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    pretrain(tiny_config("mocov2", out, max_steps=2, checkpoint_every=1), tiny_source("mocov2"))
    return out


def test_rng_state_round_trips_through_a_weights_only_file(tmp_path):
    torch.manual_seed(3), np.random.seed(4), random.seed(5)
    torch.save(rng_state(), tmp_path / "rng.pt")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], got[0]) and np.array_equal(expected[1], got[1]) and expected[2] == got[2]


def _tampered(run_dir, tmp_path, name: str):
    """A copy of ``run_dir`` whose ``name`` files in every checkpoint are crafted pickles, their commit records
    forged to match (sizes updated); returns (copy, the marker the payload would create)."""
    copy, marker = tmp_path / "copy", tmp_path / "pwned"
    shutil.copytree(run_dir, copy)
    for path in copy.glob(f"checkpoints/step_*/{name}"):
        _plant(path, marker)
        record = json.loads((path.parent / COMPLETE).read_text())
        record["files"] = _files_manifest(path.parent)
        (path.parent / COMPLETE).write_text(json.dumps(record))
    return copy, marker


def test_a_crafted_model_states_file_is_refused_without_running_it(run_dir, tmp_path):
    copy, marker = _tampered(run_dir, tmp_path, "mp_rank_00_model_states.pt")
    with pytest.raises(CheckpointError, match="objects other than tensors"):
        load_run_backbone(copy)
    assert not marker.exists()


def test_resuming_from_a_crafted_rng_state_is_refused_without_running_it(run_dir, tmp_path):
    copy, marker = _tampered(run_dir, tmp_path, "rng_rank0.pt")
    with pytest.raises(CheckpointError, match="objects other than tensors"):
        pretrain(tiny_config("mocov2", copy, max_steps=3, checkpoint_every=1), tiny_source("mocov2"))
    assert not marker.exists()


def test_a_genuine_run_still_loads_and_resumes(run_dir, tmp_path):
    backbone, meta = load_run_backbone(run_dir)
    assert meta["method"] == "mocov2" and meta["step"] == 2
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    assert pretrain(tiny_config("mocov2", copy, max_steps=3, checkpoint_every=1), tiny_source("mocov2")).steps == 3

"""PIRL and BYOL, each added as one method file, are pre-trained through DeepSpeed and evaluated as run-directory
encoders of a grid by the default executor (the study's protocol), beside the random baseline."""

from __future__ import annotations

import math

import pytest

from contrasting.eval.grid.pool import run_grid
from contrasting.eval.grid.spec import load_spec
from contrasting.eval.grid.store import ResultStore

pytest.importorskip("deepspeed")
helpers = pytest.importorskip("tests.encoders.helpers")


@pytest.mark.slow
def test_pirl_and_byol_runs_are_evaluated_in_a_grid(tmp_path, world_root):
    from contrasting.encoders.training.trainer import pretrain

    for method in ("pirl", "byol"):
        pretrain(helpers.tiny_config(method, tmp_path / method, epochs=2), helpers.tiny_source(method))
        assert (tmp_path / method / "backbone.pt").is_file()
    spec = load_spec({
        "name": "new-methods", "store": str(tmp_path / "grid.sqlite"), "data_root": str(world_root),
        "encoders": [{"name": "PIRL", "kind": "run", "path": str(tmp_path / "pirl")},
                     {"name": "BYOL", "kind": "run", "path": str(tmp_path / "byol")},
                     {"name": "Random", "kind": "random", "arch": "resnet18"}],
        "tasks": ["shapes-digit"], "hparams": {"one": {"epochs": 1, "batch_size": 32}},
        "runner": {"workers": 1, "device": "cpu"}})
    summary = run_grid(spec, progress=False)
    assert (summary.total, summary.done, summary.failed) == (3, 3, 0)
    with ResultStore(spec.store_path, create=False) as store:
        cells = {c.encoder: c for c in store.cells(summary.spec_hash)}
    assert {cells["PIRL"].encoder_meta["method"], cells["BYOL"].encoder_meta["method"]} == {"pirl", "byol"}
    assert all(c.status == "done" and math.isfinite(c.score) for c in cells.values())

"""Every built-in task end to end with a tiny encoder on a small shapes world from contrasting.data.builtin."""

from __future__ import annotations

import math

import pytest

from contrasting.eval import check_data, get_task, list_tasks, run_cell
from contrasting.eval.catalog.world import world_tasks
from tests.eval.conftest import tiny_backbone

BUILTIN = [t.name for t in list_tasks(builtin=True)]
EXPECTED = {  # task → (classes, metric); classes 0 for regression
    "shapes-shape": (6, "top1"), "shapes-texture": (6, "top1"), "shapes-digit": (10, "top1"),
    "shapes-count": (5, "top1"), "shapes-camera-shift": (4, "top1"), "shapes-segmentation": (7, "miou"),
    "shapes-foreground": (0, "iou"), "shapes-depth": (0, "l1"),
}


def test_builtin_tasks_are_listed():
    assert set(BUILTIN) == set(EXPECTED)


@pytest.mark.parametrize("task", BUILTIN)
def test_builtin_task_end_to_end(world_root, task):
    spec = get_task(task)
    assert check_data(spec, world_root).present
    r = run_cell(tiny_backbone(), task, data_root=world_root, image_size=32, epochs=1 if spec.pixelwise else 5)
    classes, metric = EXPECTED[task]
    assert (r.metric, r.sizes["classes"]) == (metric, classes)
    assert math.isfinite(r.value) and (r.value >= 0 if metric == "l1" else 0 <= r.value <= 1)
    assert r.score == (r.value if spec.higher_is_better else -r.value)
    assert r.sizes["test"] > 0 and r.sizes["val"] > 0 and r.timings["total_s"] > 0
    assert r.versions["torch"] and r.task_version == spec.version
    assert r.versions["torch_threads"] and r.versions["cpu"]  # what may move the last bits between machines
    assert r.sizes["train"] + r.sizes["val"] == 180 and r.sizes["test"] == 60  # world val merged into train
    assert r.to_dict()["selected"]["epochs"] == (1 if spec.pixelwise else 5)


def test_world_contract(world_root):
    """What this package assumes of the shapes world: its task names, depth units and where it lies."""
    import contrasting.data.builtin as builtin
    from contrasting.eval.catalog.world import world_dir

    assert {get_task(t).layout.options["world_task"] for t in BUILTIN} == set(world_tasks())
    assert get_task("shapes-depth").layout.options["depth_scale"] == 1 / builtin.DEPTH_SCALE
    assert {get_task(t).metric for t in BUILTIN} == {w.metric for w in builtin.TASKS.values()}
    folder = world_dir(world_root)
    assert (folder / "manifest.json").is_file() and folder.parent == world_root
    assert world_dir(folder) == folder  # a world folder given directly


@pytest.mark.slow
def test_default_world_is_built_on_first_use(tmp_path):
    """A built-in task with no world present builds the default one (about 25 s on an idle 2-core machine)."""
    r = run_cell(tiny_backbone(), "shapes-count", data_root=tmp_path, image_size=32, epochs=1)
    assert r.sizes["test"] > 0
    assert all(check_data(t, tmp_path).present for t in BUILTIN)


def test_egohands_style_cell_deeplab_weighted_ce(world_root):
    """The DeepLab head, weighted cross-entropy and mIoU without background (EgoHands' recipe) end to end."""
    spec = get_task("shapes-segmentation").with_overrides(head="deeplab", loss="weighted_ce", metric="miou_no_bg",
                                                          name="shapes-seg-deeplab")
    r = run_cell(tiny_backbone(), spec, data_root=world_root, image_size=32, epochs=1)
    assert r.metric == "miou_no_bg" and 0 <= r.value <= 1 and "miou" in r.metrics


def test_fixed_class_weights_are_the_ones_trained_with(world_root, monkeypatch):
    """A task that fixes its class weights (EgoHands: the study's [0.1, 1, 1, 1, 1]) trains with exactly those."""
    import contrasting.eval.cell.protocol as protocol

    seen = []
    real = protocol.make_loss
    monkeypatch.setattr(protocol, "make_loss", lambda spec, weight=None: seen.append(weight) or real(spec, weight))
    weights = (0.1, 1.0, 2.0, 1.0, 1.0, 1.0, 1.0)  # background + the world's 6 shapes
    spec = get_task("shapes-segmentation").with_overrides(head="deeplab", loss="weighted_ce", metric="miou_no_bg",
                                                          name="shapes-seg-fixed",
                                                          loss_options={"class_weights": weights})
    run_cell(tiny_backbone(), spec, data_root=world_root, image_size=32, epochs=1)
    assert seen and seen[0].tolist() == pytest.approx(list(weights))
    assert get_task("egohands").loss_options["class_weights"] == (0.1, 1.0, 1.0, 1.0, 1.0)
    assert not any("class weights" in d for d in get_task("egohands").deviations)

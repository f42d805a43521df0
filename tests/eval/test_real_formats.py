"""The 20 study tasks on miniature copies of their datasets in the published formats (``real_formats.py``): the
catalog finds each copy, its reader lists exactly the samples and labels written and decodes the targets as the
format defines them, one protocol cell (random encoder, one setting, one epoch) gives a finite metric, and damaged
copies — a split file missing, a label out of range, an unreadable image, a map of the wrong size — fail with a
``TaskDataError`` naming the file."""

from __future__ import annotations

import dataclasses
import math
import shutil
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from contrasting.eval import TaskDataError, check_data, get_task, list_tasks, read_task, run_cell
from contrasting.eval.catalog.readers import TaskDataset, load_image
from tests.eval.conftest import tiny_backbone
from tests.eval.real_formats import MALFORMED, NO_RANGE, WRITERS

STUDY = [t.name for t in list_tasks(builtin=False)]
KINDS = ("missing_split", "label_out_of_range", "unreadable_image", "wrong_size")
CELL_SIZE = {"cityscapes": (32, 64), "egohands": (32, 64), "kitti-flow": (32, 96)}  # the tasks' aspect ratios
CELL_HPARAMS = {"lr": 1e-3, "batch_size": 8}


@pytest.fixture(scope="session")
def pristine(tmp_path_factory):
    """task → (data root, ``Written``): each task's copy, written once per session into its own data root."""
    made = {}

    def get(task: str):
        if task not in made:
            data_root = tmp_path_factory.mktemp(task)
            rng = np.random.default_rng(zlib.crc32(task.encode()))
            made[task] = data_root, WRITERS[task](data_root / get_task(task).subdir, rng)
        return made[task]

    return get


def _listed(data) -> dict:
    """sample key (first image path, or (split, index) for samples inside a file) → (split, index, target)."""
    out = {}
    for name, split in (("train", data.train), ("test", data.test)):
        for i, (refs, target) in enumerate(zip(split.inputs, split.targets, strict=True)):
            out[str(refs[0]) if isinstance(refs[0], str) else (name, i)] = (name, split, i, target)
    return out


def test_every_study_task_has_a_writer_and_damages():
    assert sorted(WRITERS) == sorted(STUDY) and sorted(MALFORMED) == sorted(STUDY)
    for task in STUDY:
        kinds = set(MALFORMED[task])
        assert {"missing_split", "unreadable_image"} <= kinds <= set(KINDS), task
        assert ("label_out_of_range" in kinds) != (task in NO_RANGE), task
        assert "wrong_size" in kinds or not (get_task(task).pixelwise and task != "egohands"), task


@pytest.mark.parametrize("task", STUDY)
def test_reader_reads_what_was_written(pristine, task):
    data_root, written = pristine(task)
    spec = get_task(task)
    status = check_data(spec, data_root)
    assert status.present, status.missing
    listed = _listed(read_task(spec, status.root))
    assert set(listed) == set(written.labels)
    if written.test is not None:
        assert {k for k, v in listed.items() if v[0] == "test"} == written.test
    for key, expected in written.labels.items():
        _, split, i, target = listed[key]
        if not spec.pixelwise:
            assert target == expected, key
            continue
        y = TaskDataset(spec.with_overrides(image_size=expected.shape[-2:]), split)[i][1]
        want = torch.from_numpy(np.asarray(expected))
        if want.dtype.is_floating_point:
            torch.testing.assert_close(y.float(), want.float(), rtol=1e-6, atol=1e-6, equal_nan=True, msg=str(key))
        else:
            checked = want >= 0
            assert torch.equal(y[checked], want[checked].to(y.dtype)), key
            assert checked.float().mean() > 0.95
    for key, image in written.images.items():  # lossless formats decode to the exact pixels
        _, split, i, _ = listed[key]
        x = load_image(split.inputs[i][0], image.shape[:2])
        assert torch.equal(x.mul(255).round().to(torch.uint8).permute(1, 2, 0), torch.from_numpy(image)), key
    for key, means in written.frame_means.items():  # Kinetics: the evenly spaced frames of the clip, in order
        _, split, i, _ = listed[key]
        got = [float(load_image(ref, (24, 32)).mean() * 255) for ref in split.inputs[i]]
        assert got == pytest.approx(means, abs=4), key


@pytest.mark.parametrize("task", STUDY)
def test_one_cell_gives_a_finite_metric(pristine, task):
    data_root, written = pristine(task)
    spec = get_task(task)
    r = run_cell(tiny_backbone(), spec, data_root=data_root, image_size=CELL_SIZE.get(task, 32), epochs=1,
                 hparams=CELL_HPARAMS, seed=0)
    assert math.isfinite(r.value), (task, r.metric, r.metrics)
    assert r.task == task and r.task_version == spec.version and r.metric == spec.metric
    assert r.sizes["train"] + r.sizes["val"] + r.sizes["test"] == len(written.labels)


def test_the_paper_form_of_kitti_reads_the_visualisation_and_runs_a_cell(pristine):
    """kitti-flow:paper: the study's target (viz_flow_occ's luminance / 255) and score (pixels within 0.05)."""
    data_root, written = pristine("kitti-flow")
    spec = get_task("kitti-flow:paper")
    status = check_data(spec, data_root)
    assert status.present, status.missing
    data = read_task(spec, status.root)
    assert len(data.train) + len(data.test) == len(written.labels) and "viz_flow_occ" in str(data.test.targets[0])
    rgb = np.asarray(Image.open(data.test.targets[0]).convert("RGB"), dtype=np.float64)
    luminance = (rgb @ np.array([0.299, 0.587, 0.114])) / 255
    y = TaskDataset(spec.with_overrides(image_size=rgb.shape[:2]), data.test)[0][1]
    np.testing.assert_allclose(y.numpy(), luminance, atol=1e-5)
    r = run_cell(tiny_backbone(), spec, data_root=data_root, image_size=CELL_SIZE["kitti-flow"], epochs=1,
                 hparams=CELL_HPARAMS, seed=0)
    assert r.task == "kitti-flow:paper" and r.metric == "within" and 0.0 <= r.value <= 1.0
    assert math.isfinite(r.metrics["l1"])


PAPER_FORMS = [t for t in STUDY if get_task(t).paper]


def test_the_paper_forms_are_those_the_catalog_declares():
    assert PAPER_FORMS == ["cityscapes", "egohands", "kitti-flow"]
    with pytest.raises(ValueError, match="has no paper form"):
        get_task("dtd:paper")


@pytest.mark.parametrize("task", PAPER_FORMS)
def test_a_paper_form_reads_the_copy_and_trains_on_crops(pristine, task):
    """Each paper form on the same miniature copy: read, and one cell trained on random crops (scaled down with
    the input) and tested on whole inputs gives a finite metric."""
    data_root, written = pristine(task)
    spec = get_task(f"{task}:paper")
    data = read_task(spec, check_data(spec, data_root).root)
    assert len(data.train) + len(data.test) == len(written.labels)
    h, w = CELL_SIZE[task]
    small = spec.with_overrides(image_size=(h, w), train_crops=dataclasses.replace(spec.train_crops,
                                                                                    size=(h // 2, w // 2)))
    r = run_cell(tiny_backbone(), small, data_root=data_root, epochs=1, hparams=CELL_HPARAMS, seed=0)
    assert math.isfinite(r.value) and r.task == f"{task}:paper", (task, r.metrics)


def test_cityscapes_paper_form_has_the_study_20_classes(pristine):
    data_root, written = pristine("cityscapes")
    spec = get_task("cityscapes:paper")
    data = read_task(spec, check_data(spec, data_root).root)
    for i, refs in enumerate(data.train.inputs):
        want = torch.from_numpy(written.labels[refs[0]])
        y = TaskDataset(spec.with_overrides(image_size=want.shape), data.train)[i][1]
        assert torch.equal(y, torch.where(want == 255, 0, want + 1)) and int(y.max()) <= 19


def test_egohands_paper_form_splits_the_frames_in_path_order(pristine):
    data_root, written = pristine("egohands")
    spec = get_task("egohands:paper")
    data = read_task(spec, check_data(spec, data_root).root)
    frames = sorted(written.labels)
    assert [r[0] for r in data.train.inputs] == frames[:int(0.9 * len(frames))]
    assert [r[0] for r in data.test.inputs] == frames[int(0.9 * len(frames)):]


CASES = [(t, k) for t in STUDY for k in KINDS if k in MALFORMED[t]]


@pytest.mark.parametrize(("task", "kind"), CASES)
def test_damaged_copy_fails_naming_the_file(pristine, tmp_path, task, kind):
    data_root, _ = pristine(task)
    spec = get_task(task).with_overrides(image_size=16)
    root = tmp_path / spec.subdir
    shutil.copytree(data_root / spec.subdir, root)
    bad = MALFORMED[task][kind](root)
    with pytest.raises(TaskDataError) as err:
        data = read_task(spec, root)
        for split in (data.test, data.train):  # decoding every sample, as training would
            ds = TaskDataset(spec, split)
            for i in range(len(ds)):
                ds[i]
    message = str(err.value)
    assert f"task {task!r}" in message and str(bad) in message, message


def test_the_nyu_tasks_share_their_folder(tmp_path):
    """nyu-depth reads the published .mat files, nyu-walkable its lists, both under the one 'nyu' folder."""
    from tests.eval.real_formats import write_nyu_depth, write_nyu_walkable

    rng = np.random.default_rng(0)
    depth, walk = get_task("nyu-depth"), get_task("nyu-walkable")
    assert depth.subdir == walk.subdir
    written = {"nyu-depth": write_nyu_depth(tmp_path / "nyu", rng), "nyu-walkable": write_nyu_walkable(tmp_path / "nyu",
                                                                                                      rng)}
    for spec in (depth, walk):
        status = check_data(spec, tmp_path)
        assert status.present, status.missing
        assert set(_listed(read_task(spec, status.root))) == set(written[spec.name].labels)


def test_kinetics_clips_are_decoded_with_a_video_reader(pristine):
    av = pytest.importorskip("av")
    data_root, written = pristine("kinetics")
    assert "PyAV" in written.notes and "missing" not in written.notes.split(";")[0]
    clips = sorted((data_root / "kinetics").glob("*/*.mp4"))
    assert len(clips) == len(written.labels) == 9
    with av.open(str(clips[0])) as container:
        assert container.streams.video[0].codec_context.name == "h264"


@pytest.mark.parametrize("task", ["thor-num-steps", "nuscenes-egomotion"])
def test_class_count_is_read_from_the_labels(pristine, task):
    """As the study's code: the head's width is 1 + the largest training label, not a number fixed in the catalog."""
    from contrasting.eval.cell.protocol import _num_classes

    root, written = pristine(task)
    spec = get_task(task)
    assert spec.num_classes is None
    data = read_task(spec, check_data(task, root).root)
    assert _num_classes(spec, data) == max(data.train.targets) + 1 == max(written.labels.values()) + 1

"""The task catalog's contract, and the readers of the real datasets' formats on miniature copies of them."""

from __future__ import annotations

import json
import pickle
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from contrasting.eval import READERS, TASKS, TaskDataError, check_data, get_task, list_tasks, read_task
from contrasting.eval.catalog.heads import HEADS
from contrasting.eval.catalog.metrics import METRICS
from contrasting.eval.catalog.objectives import LOSSES
from contrasting.eval.catalog.readers import TARGET_DECODERS, TaskDataset, target_decoder
from contrasting.eval.catalog.tasks import Layout, TaskSpec, register_task

STUDY = {  # the study's 20 tasks: group/kind, head, loss, metric, epochs/batch/lr (../shared/study.md)
    "imagenet": ("image/semantic", "linear", "ce", "top1", (100, 32, 1e-4)),
    "pets": ("image/semantic", "linear", "ce", "top1", (100, 32, 1e-4)),
    "caltech101": ("image/semantic", "linear", "ce", "top1", (500, 32, 1e-4)),
    "cifar100": ("image/semantic", "linear", "ce", "top1", (100, 32, 1e-4)),
    "sun397": ("image/semantic", "linear", "ce", "top1", (250, 32, 1e-4)),
    "eurosat": ("image/semantic", "linear", "ce", "top1", (200, 32, 1e-4)),
    "dtd": ("image/semantic", "linear", "ce", "top1", (100, 32, 1e-4)),
    "kinetics": ("image/semantic", "mlp", "ce", "top1", (100, 32, 3e-4)),
    "clevr-count": ("image/structural", "linear", "ce", "top1", (100, 32, 1e-4)),
    "thor-num-steps": ("image/structural", "linear", "ce", "top1", (100, 32, 1e-4)),
    "thor-egomotion": ("image/structural", "mlp", "ce", "top1", (100, 32, 1e-4)),
    "nuscenes-egomotion": ("image/structural", "mlp", "ce", "top1", (100, 32, 1e-4)),
    "cityscapes": ("pixel/semantic", "deeplab", "ce", "miou", (100, 16, 3e-4)),
    "pets-seg": ("pixel/semantic", "unet", "bce", "iou", (100, 16, 1e-4)),
    "egohands": ("pixel/semantic", "deeplab", "weighted_ce", "miou_no_bg", (25, 16, 3e-4)),
    "nyu-depth": ("pixel/structural", "unet", "l1", "l1", (250, 16, 3e-4)),
    "nyu-walkable": ("pixel/structural", "unet", "bce", "iou", (250, 16, 1e-4)),
    "thor-depth": ("pixel/structural", "unet", "l1", "l1", (50, 16, 3e-4)),
    "taskonomy-depth": ("pixel/structural", "unet", "l1", "l1", (50, 16, 1e-4)),
    "kitti-flow": ("pixel/structural", "unet2", "l1_valid", "flow_acc", (250, 16, 3e-4)),
}


def test_the_study_tasks_are_in_the_catalog_as_specified():
    assert [t.name for t in list_tasks(builtin=False)] == list(STUDY)
    for name, (group, head, loss, metric, sched) in STUDY.items():
        t = get_task(name)
        assert (f"{t.group}/{t.kind}", t.head, t.loss, t.metric) == (group, head, loss, metric), name
        assert (t.schedule.epochs, t.schedule.batch_size, t.schedule.lr) == sched, name
        assert (t.schedule.optimizer, t.schedule.weight_decay) == ("adam", 0.0)
    assert get_task("kinetics").frames == 6 and get_task("thor-egomotion").frames == 2


@pytest.mark.parametrize("task", list(TASKS))
def test_every_task_names_registered_parts(task):
    t = get_task(task)
    assert t.layout.reader in READERS and t.head in HEADS and t.loss in LOSSES and t.metric in METRICS
    assert t.higher_is_better == METRICS[t.metric].higher_is_better
    assert t.layout.structure and t.layout.paths and t.version >= 1
    if t.pixelwise:
        assert target_decoder(t) in TARGET_DECODERS.values()


def test_registry_errors():
    with pytest.raises(KeyError, match="unknown task 'nope'; known tasks: imagenet"):
        get_task("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_task(get_task("pets"))
    with pytest.raises(ValueError, match="group/kind"):
        TaskSpec(**{**get_task("pets").__dict__, "group": "video"})


def test_presence_and_missing_data_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CONTRASTING_DATA_PETS", str(tmp_path / "pets"))
    status = check_data("pets")
    assert not status.present and status.root == tmp_path / "pets"
    assert str(tmp_path / "pets" / "images") in status.missing
    with pytest.raises(TaskDataError) as err:
        read_task(get_task("pets"), status.root)
    msg = str(err.value)
    assert "task 'pets'" in msg and str(tmp_path / "pets") in msg and "annotations/{trainval,test}.txt" in msg


# ------------------------------------------------------------------------------------ the real formats


def _img(path: Path, size=(12, 10), value=128, mode="RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    Image.fromarray(np.full(shape, value, dtype=np.uint8)).save(path)


def _spec(task: str, **kw) -> TaskSpec:
    return get_task(task).with_overrides(**{"image_size": 16, **kw})


def test_pets_classes_and_segmentation_target_is_the_pet(tmp_path):
    for name in ("Abyssinian_1", "beagle_2", "beagle_3"):
        _img(tmp_path / "images" / f"{name}.jpg", size=(2, 2))
        trimap = np.array([[1, 2], [3, 1]], dtype=np.uint8)
        (tmp_path / "annotations" / "trimaps").mkdir(parents=True, exist_ok=True)
        Image.fromarray(trimap).save(tmp_path / "annotations" / "trimaps" / f"{name}.png")
    (tmp_path / "annotations" / "trainval.txt").write_text("Abyssinian_1 1 1 1\nbeagle_2 13 2 1\n")
    (tmp_path / "annotations" / "test.txt").write_text("beagle_3 13 2 1\n")
    data = read_task(_spec("pets"), tmp_path)
    assert data.train.targets == [0, 12] and data.test.targets == [12]
    seg = _spec("pets-seg", image_size=2)
    data = read_task(seg, tmp_path)
    x, y = TaskDataset(seg, data.test)[0]
    assert x.shape == (1, 3, 2, 2)
    assert y.tolist() == [[1.0, 0.0], [0.0, 1.0]]  # pet = 1; background and border = 0
    (tmp_path / "annotations" / "test.txt").write_text("beagle_3 x\n")
    with pytest.raises(TaskDataError, match="malformed line"):
        read_task(_spec("pets"), tmp_path)


def test_cifar100_pickles(tmp_path):
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    for split, n in (("train", 5), ("test", 3)):
        data = np.arange(n * 3072, dtype=np.int64).reshape(n, 3072) % 256
        with open(d / split, "wb") as f:
            pickle.dump({b"data": data.astype(np.uint8), b"fine_labels": list(range(n))}, f)
    (d / "meta").write_bytes(pickle.dumps({b"fine_label_names": []}))
    data = read_task(_spec("cifar100"), tmp_path)
    assert len(data.train) == 5 and data.test.targets == [0, 1, 2]
    assert data.train.inputs[1][0].shape == (32, 32, 3)
    assert int(data.train.inputs[0][0][0, 0, 1]) == 1024 % 256  # channel-major rows → HWC
    x, y = TaskDataset(_spec("cifar100"), data.train)[1]
    assert x.shape == (1, 3, 16, 16) and int(y) == 1


def test_caltech_first_30_per_class_train_and_eurosat_fixed_hash_split(tmp_path):
    for c in ("accordion", "BACKGROUND_Google"):
        for i in range(33):
            _img(tmp_path / "101_ObjectCategories" / c / f"image_{i:04d}.jpg", size=(4, 4))
    with pytest.raises(TaskDataError, match="1 class folders found \\(accordion\\), the task has 101 classes"):
        read_task(_spec("caltech101"), tmp_path)  # an image-folder task needs all its class folders
    data = read_task(_spec("caltech101", num_classes=1), tmp_path)
    assert len(data.train) == 30 and len(data.test) == 3 and data.classes == ["accordion"]
    for c in ("Forest", "River"):
        for i in range(50):
            _img(tmp_path / "2750" / c / f"{c}_{i}.jpg", size=(4, 4))
    a, b = read_task(_spec("eurosat", num_classes=2), tmp_path), read_task(_spec("eurosat", num_classes=2), tmp_path)
    assert a.test.inputs == b.test.inputs and 5 < len(a.test) < 40
    assert not set(a.test.inputs) & set(a.train.inputs)


def test_dtd_sun397_clevr(tmp_path):
    for rel in ("banded/banded_0001.jpg", "banded/banded_0002.jpg", "dotted/dotted_0001.jpg"):
        _img(tmp_path / "dtd" / "images" / rel, size=(4, 4))
    labels = tmp_path / "dtd" / "labels"
    labels.mkdir()
    (labels / "train1.txt").write_text("banded/banded_0001.jpg\n")
    (labels / "val1.txt").write_text("dotted/dotted_0001.jpg\n")
    (labels / "test1.txt").write_text("banded/banded_0002.jpg\n")
    data = read_task(_spec("dtd"), tmp_path)
    assert data.classes == ["banded", "dotted"] and data.train.targets == [0, 1] and data.test.targets == [0]

    for rel in ("a/abbey/sun_a.jpg", "b/beach/sun_b.jpg", "a/abbey/sun_c.jpg"):
        _img(tmp_path / "SUN397" / rel, size=(4, 4))
    (tmp_path / "Partitions").mkdir()
    (tmp_path / "Partitions" / "Training_01.txt").write_text("/a/abbey/sun_a.jpg\n/b/beach/sun_b.jpg\n")
    (tmp_path / "Partitions" / "Testing_01.txt").write_text("/a/abbey/sun_c.jpg\n")
    data = read_task(_spec("sun397"), tmp_path)
    assert data.classes == ["/a/abbey", "/b/beach"] and data.test.targets == [0]

    c = tmp_path / "CLEVR_v1.0"
    for split in ("train", "val"):
        _img(c / "images" / split / f"CLEVR_{split}_000000.png", size=(4, 4))
        scenes = {"scenes": [{"image_filename": f"CLEVR_{split}_000000.png", "objects": [{}] * 5}]}
        (c / "scenes").mkdir(exist_ok=True)
        (c / "scenes" / f"CLEVR_{split}_scenes.json").write_text(json.dumps(scenes))
    data = read_task(_spec("clevr-count"), tmp_path)
    assert data.train.targets == [2] and data.test.targets == [2]  # 5 objects → class 5 − 3


def test_file_list_pairs_and_malformed(tmp_path):
    for n in ("a.png", "b.png"):
        _img(tmp_path / n, size=(4, 4))
    (tmp_path / "train.csv").write_text("view_a,view_b,label\na.png,b.png,3\n")
    (tmp_path / "test.csv").write_text("a.png b.png 1\n")
    spec = _spec("thor-egomotion")
    data = read_task(spec, tmp_path)
    assert data.train.inputs == [(str(tmp_path / "a.png"), str(tmp_path / "b.png"))] and data.test.targets == [1]
    assert TaskDataset(spec, data.train)[0][0].shape == (2, 3, 16, 16)
    (tmp_path / "test.csv").write_text("a.png,2\n")
    with pytest.raises(TaskDataError, match=r"task 'thor-egomotion'.*expected 2 paths"):
        read_task(spec, tmp_path)


def test_cityscapes_ids_to_train_ids(tmp_path):
    for split in ("train", "val"):
        _img(tmp_path / "leftImg8bit" / split / "aachen" / "aachen_0_leftImg8bit.png", size=(3, 1))
        lab = tmp_path / "gtFine" / split / "aachen" / "aachen_0_gtFine_labelIds.png"
        lab.parent.mkdir(parents=True)
        Image.fromarray(np.array([[7, 26, 0]], dtype=np.uint8)).save(lab)
    spec = get_task("cityscapes").with_overrides(image_size=(1, 3))
    data = read_task(spec, tmp_path)
    assert TaskDataset(spec, data.test)[0][1].tolist() == [[0, 13, 255]]  # road, car, void


def _png16_rgb(path: Path, a: np.ndarray) -> None:
    """A 16-bit RGB PNG written by hand (PIL cannot write them)."""
    h, w, _ = a.shape
    raw = b"".join(b"\x00" + a[i].astype(">u2").tobytes() for i in range(h))

    def chunk(t, d):
        return len(d).to_bytes(4, "big") + t + d + (zlib.crc32(t + d) & 0xFFFFFFFF).to_bytes(4, "big")

    ihdr = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([16, 2, 0, 0, 0])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) +
                     chunk(b"IEND", b""))


def test_kitti_flow_split_and_decoding(tmp_path):
    for i in range(10):
        for f in ("10", "11"):
            _img(tmp_path / "training" / "image_2" / f"{i:06d}_{f}.png", size=(4, 2))
        flow = np.zeros((2, 4, 3), dtype=np.uint16)
        flow[..., 0] = 2**15 + 64 * 2  # u = 2 px
        flow[..., 1] = 2**15 - 64  # v = −1 px
        flow[0, 0, 2] = 1  # one valid pixel
        _png16_rgb(tmp_path / "training" / "flow_occ" / f"{i:06d}_10.png", flow)
    spec = get_task("kitti-flow").with_overrides(image_size=(4, 8))  # twice the width: u doubles
    data = read_task(spec, tmp_path)
    assert len(data.train) == 9 and len(data.test) == 1
    x, y = TaskDataset(spec, data.test)[0]
    assert x.shape == (2, 3, 4, 8)
    assert y[:, 0, 0].tolist() == [4.0, -2.0, 1.0] and float(y[2].sum()) == 4.0  # nearest: 1 px → 2×2


def test_depth_png_missing_is_nan(tmp_path):
    _img(tmp_path / "rgb.png", size=(2, 1))
    Image.fromarray(np.array([[0, 1500]], dtype=np.uint16)).save(tmp_path / "d.png")
    (tmp_path / "train.txt").write_text("rgb.png,d.png\n")
    (tmp_path / "test.txt").write_text("rgb.png,d.png\n")
    spec = get_task("thor-depth").with_overrides(image_size=(1, 2))
    y = TaskDataset(spec, read_task(spec, tmp_path).test)[0][1]
    assert torch.isnan(y[0, 0]) and float(y[0, 1]) == pytest.approx(1.5)


def test_egohands_polygons(tmp_path):
    from scipy.io import savemat

    video = tmp_path / "_LABELLED_SAMPLES" / "CARDS_COURTYARD_B_T"
    _img(video / "frame_0001.jpg", size=(1280, 720))
    square = np.array([[0, 0], [600, 0], [600, 300], [0, 300]], dtype=float)
    empty = np.zeros((0, 2))
    polys = np.zeros((1, 1), dtype=[("myleft", object), ("myright", object), ("yourleft", object),
                                    ("yourright", object)])
    polys[0, 0] = (square, empty, empty, square + [640, 360])  # nearest samples rows 0, 360 and columns 0, 640
    savemat(video / "polygons.mat", {"polygons": polys})
    spec = get_task("egohands").with_overrides(image_size=(2, 2))
    data = READERS["egohands"](spec, tmp_path)  # read_task would refuse the empty test split
    assert len(data.train) == 1 and len(data.test) == 0
    y = TaskDataset(spec, data.train)[0][1]
    assert y.tolist() == [[1, 0], [0, 4]]


def test_a_new_task_is_one_entry(tmp_path):
    for c in ("x", "y"):
        for split in ("tr", "te"):
            _img(tmp_path / "mine" / split / c / "0.png", size=(4, 4))
    spec = TaskSpec(name="my-task", title="mine", group="image", kind="semantic",
                    layout=Layout("image_folder", {"train": "tr", "test": "te"}, "tr/<c>/*, te/<c>/*"),
                    target="class", num_classes=None, head="linear", loss="ce", metric="top1", higher_is_better=True,
                    schedule=get_task("pets").schedule, subdir="mine", env="MY_TASK_ROOT")
    assert check_data(spec, tmp_path).present
    assert read_task(spec, tmp_path / "mine").classes == ["x", "y"]


def test_a_crafted_cifar_pickle_is_refused_without_running_it(tmp_path):
    import os
    import pickle

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {tmp_path / 'pwned'}",)

    d = tmp_path / "cifar-100-python"
    d.mkdir()
    for name in ("train", "test", "meta"):
        with open(d / name, "wb") as f:
            pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [0, 1], b"x": Payload()}, f)
    with pytest.raises(TaskDataError, match="not a CIFAR python batch.*posix.system|not allowed"):
        read_task(_spec("cifar100"), tmp_path)
    assert not (tmp_path / "pwned").exists()

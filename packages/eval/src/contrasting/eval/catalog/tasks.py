"""The end-task catalog: every task is one declarative ``TaskSpec`` entry in one registry.

A task says *what* is evaluated (group, target, classes), *where its data lies* (a ``Layout``: a reader
name, paths relative to the task's data root and the documented expected tree), *how* (head, loss,
metric with its direction) and *for how long* (the study's default ``Schedule``). Adding a task is adding
one ``register_task(TaskSpec(...))`` call below; readers (``readers.py``), heads (``heads.py``), losses
(``objectives.py``) and metrics (``metrics.py``) are looked up by name in their own registries.

Data roots. A task's data is looked for at, in order:
  1. ``data_root / spec.subdir`` when a ``data_root`` is passed (CLI ``--data-root``);
  2. the directory in the task's own environment variable (``spec.env``, e.g. ``CONTRASTING_DATA_PETS``);
  3. ``$CONTRASTING_DATA / spec.subdir``, ``$CONTRASTING_DATA`` defaulting to ``~/.cache/contrasting/data``.
Built-in tasks live in the shapes world written by ``contrasting.data.builtin.build_world``: its folder is
``world.world_dir(data_root)`` (``$CONTRASTING_DATA_SHAPES_WORLD``, else the world of the default
configuration — or the only world — under ``data_root`` or the data package's cache root), built there on
first use.

Versions. ``spec.version`` is bumped whenever a change would alter a task's numbers (split, reader,
target decoding, metric); results carry it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from contrasting.data.builtin import DEPTH_SCALE
from contrasting.data.builtin import TASKS as WORLD_TASKS
from contrasting.data.vocabulary import KINDS, LEVELS, split_group_title

GROUPS = LEVELS  # a task's ``group`` field holds its level
TARGETS = ("class", "mask", "binary", "depth", "flow", "scalar")  # scalar: one continuous value a pixel
PAPER_SUFFIX = ":paper"  # get_task("<name>:paper"): the study's own form of a task that has one (TaskSpec.paper)
DEFAULT_DATA = "~/.cache/contrasting/data"
WORLD_SUBDIR = "shapes-world"


class TaskDataError(RuntimeError):
    """A task's data is missing or malformed: names the task, the path looked at and the expected layout."""

    def __init__(self, task: str, path: os.PathLike | str, expected: str, problem: str = "missing"):
        self.task, self.path, self.expected, self.problem = task, str(path), expected, problem
        super().__init__(f"task {task!r}: {problem}: {path}\nexpected layout:\n{expected}")


@dataclass(frozen=True)
class Schedule:
    """Head training schedule. Adam without weight decay as in the study; the learning rate follows
    ``decay`` and is stepped once per epoch (the original never stepped its schedulers):

    * ``"cosine"``: lr_e = lr · ½(1 + cos(π·e/epochs)), e = 0 … epochs−1;
    * ``"step"``: lr_e = lr · 0.1^(number of milestones ≤ e/epochs), milestones at ½ and ¾;
    * ``"poly"``: lr_e = lr · (1 − e/epochs)^0.9 (DeepLab's, the study's Cityscapes schedule);
    * ``"none"``: lr_e = lr.

    ``refit``: once this setting is selected on the validation split, train it again from the same seed on the
    whole training split (train + validation) and report that head, as the study did; off by default (the head
    reported is the one that was selected).
    """

    epochs: int
    batch_size: int
    lr: float
    optimizer: str = "adam"
    weight_decay: float = 0.0
    decay: str = "cosine"
    refit: bool = False


_SCHEDULE_CHOICES = {"optimizer": ("adam", "sgd"), "decay": ("cosine", "step", "poly", "none")}


def schedule_value_problem(key: str, value: Any) -> str | None:
    """What is wrong with ``value`` for the ``Schedule`` field ``key`` (None: nothing): epochs and batch size
    are integers >= 1, the learning rate a finite number > 0, weight decay a finite number >= 0."""
    if key in _SCHEDULE_CHOICES:
        choices = _SCHEDULE_CHOICES[key]
        return None if value in choices else f"{key}: expected one of {', '.join(choices)}, got {value!r}"
    if key == "refit":
        return None if isinstance(value, bool) else f"refit: expected true or false, got {value!r}"
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if key in ("epochs", "batch_size"):
        ok, want = number and isinstance(value, int) and value >= 1, "an integer >= 1"
    elif key == "lr":
        ok, want = number and value > 0, "a finite number > 0"
    else:
        ok, want = number and value >= 0, "a finite number >= 0"
    return None if ok else f"{key}: expected {want}, got {value!r}"


def catalog_hparam_check(values: Mapping | list) -> list[str]:
    """The hyper-parameter check for contrasting.eval's ``run_cell``: every key is a ``Schedule`` field with a
    value the schedule can use (``schedule_value_problem``; a setting may be a list of such mappings, selected
    among inside the cell)."""
    known = list(Schedule.__dataclass_fields__)
    problems = []
    for entry in values if isinstance(values, list) else [values]:
        if not isinstance(entry, Mapping):
            problems.append(f"expected a mapping of Schedule fields, got {entry!r}")
            continue
        problems += [f"unknown key {k!r} (known: {', '.join(known)})" for k in entry if k not in known]
        problems += [p for k, v in entry.items() if k in known and (p := schedule_value_problem(k, v))]
    return problems



@dataclass(frozen=True)
class Layout:
    """Where a task's data lies: ``reader`` (a name in ``readers.READERS``), ``paths`` (role → path relative
    to the task's data root; every one must exist for the data to count as present), ``structure`` (the
    documented expected tree, printed in errors) and reader ``options``."""

    reader: str
    paths: dict[str, str]
    structure: str
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TrainCrops:
    """Joint geometric augmentation of a pixel task's training samples (the study's code for Cityscapes, EgoHands
    and KITTI): the input size scaled by s ~ U[``scale``], mirrored with probability ``flip``, then a window of
    ``size`` (h, w) at a uniformly random position — padded where the scaled image is smaller (the images with 0
    after normalisation, the targets with their ignore value). ``min_classes``: the window is redrawn, up to 10
    times, until its target shows that many classes (the study's EgoHands loop). Evaluation sees whole inputs."""

    size: tuple[int, int]
    scale: tuple[float, float] = (1.0, 1.0)
    flip: float = 0.0
    min_classes: int = 1

    def __post_init__(self):
        if len(self.size) != 2 or min(self.size) < 1 or not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError(f"TrainCrops: expected a size (h, w) >= 1 and 0 < scale low <= high, got {self}")
        if not 0.0 <= self.flip <= 1.0 or self.min_classes < 1:
            raise ValueError(f"TrainCrops: expected flip in [0, 1] and min_classes >= 1, got {self}")


@dataclass(frozen=True)
class TaskSpec:
    """One end task. ``group`` × ``kind`` are the study's four groups; ``frames`` is the number of images
    per sample (6 for Kinetics clips, 2 for egomotion and flow pairs); ``num_classes`` is None for
    regression targets; ``metric``'s direction is ``higher_is_better``; ``loss_options`` go to the loss;
    ``pooling``: image-level features are stage 4 average-pooled on a ``pooling``×``pooling`` grid (1: the
    global average, the study's protocol); ``deviations``: where this task's data, split, input or metric
    differs from the study's (Kotar et al. 2021 and its code), one sentence each, shown by ``contrasting tasks
    --task NAME`` and in every report (``PROTOCOL_DEVIATIONS`` holds those of every task); ``expected_sizes``:
    (train, test) sample counts of the published dataset under this task's split rule, which ``contrasting tasks
    --check`` compares a user's copy with (None where the release varies or is not public); ``paper``: field
    values that give the study's own form of the task where this default departs from it for a better one
    (``get_task("<name>:paper")``, ``paper_form``; ``layout`` a mapping of the Layout fields that differ, paths
    and options merged into this task's; its own ``deviations`` say what still differs);
    ``train_crops``: the geometric augmentation of training samples (``TrainCrops``; None: whole inputs)."""

    name: str
    title: str
    group: str
    kind: str
    layout: Layout
    target: str
    num_classes: int | None
    head: str
    loss: str
    metric: str
    higher_is_better: bool
    schedule: Schedule
    subdir: str
    env: str
    image_size: tuple[int, int] = (224, 224)
    frames: int = 1
    val_fraction: float = 0.1
    ignore_index: int = 255
    loss_options: dict = field(default_factory=dict)
    builtin: bool = False
    source: str = ""
    version: int = 1
    pooling: int = 1
    deviations: tuple[str, ...] = ()
    expected_sizes: tuple[int, int] | None = None
    paper: dict = field(default_factory=dict)
    train_crops: TrainCrops | None = None

    def __post_init__(self):
        if self.group not in GROUPS or self.kind not in KINDS:
            raise ValueError(f"task {self.name!r}: group/kind must be in {GROUPS}×{KINDS}, "
                             f"got {self.group}/{self.kind}")
        if self.target not in TARGETS:
            raise ValueError(f"task {self.name!r}: target must be one of {TARGETS}, got {self.target!r}")
        if self.train_crops is not None and (self.group != "pixel" or self.target == "flow" and self.train_crops.flip):
            raise ValueError(f"task {self.name!r}: train_crops are for pixel tasks, without flips of flow targets")
        unknown = set(self.paper) - set(self.__dataclass_fields__) | {"name", "paper"} & set(self.paper)
        unknown |= set(self.paper.get("layout", {})) - set(Layout.__dataclass_fields__)
        if unknown:
            raise ValueError(f"task {self.name!r}: paper form fields must be TaskSpec fields other than name and "
                             f"paper, its layout a mapping of Layout fields; got {sorted(unknown)}")
        weights = self.loss_options.get("class_weights")
        if weights is not None and (not all(w > 0 for w in weights)
                                    or self.num_classes is not None and len(weights) != self.num_classes):
            raise ValueError(f"task {self.name!r}: loss_options.class_weights must hold one positive weight per "
                             f"class ({self.num_classes or 'read from the data'}), got {weights!r}")

    def paper_form(self) -> TaskSpec:
        """The study's own form of this task: ``paper``'s field values, named ``<name>:paper``. ValueError for a
        task that has none (its default is the study's, or its differences are declared in ``deviations``)."""
        if not self.paper:
            raise ValueError(f"task {self.name!r} has no paper form: it follows the study's protocol where it can "
                             "(what differs is in its deviations)")
        changes = dict(self.paper)
        if "layout" in changes:  # what differs from this task's layout; paths and options merge into its own
            lay = dict(changes["layout"])
            for key in ("paths", "options"):
                if key in lay:
                    lay[key] = {**getattr(self.layout, key), **lay[key]}
            changes["layout"] = replace(self.layout, **lay)
        return replace(self, name=self.name + PAPER_SUFFIX, paper={}, **changes)

    @property
    def pixelwise(self) -> bool:
        """True for tasks trained per batch through the frozen encoder (no feature cache)."""
        return self.group == "pixel"

    def with_overrides(self, **changes) -> TaskSpec:
        """A copy with fields replaced (``image_size`` may be an int); ``schedule`` fields by name too."""
        sched = {k: changes.pop(k) for k in list(changes) if k in Schedule.__dataclass_fields__}
        if isinstance(changes.get("image_size"), int):
            changes["image_size"] = (changes["image_size"],) * 2
        spec = replace(self, **changes)
        return replace(spec, schedule=replace(spec.schedule, **sched)) if sched else spec


TASKS: dict[str, TaskSpec] = {}


def register_task(spec: TaskSpec) -> TaskSpec:
    """Add ``spec`` to the registry; a second task of the same name is an error."""
    if spec.name in TASKS:
        raise ValueError(f"task {spec.name!r} is already registered")
    TASKS[spec.name] = spec
    return spec


def get_task(name: str | TaskSpec) -> TaskSpec:
    """The registered task ``name``, or its paper form for ``<name>:paper`` (a ``TaskSpec`` passes through);
    unknown names list the known ones."""
    if isinstance(name, TaskSpec):
        return name
    if name.endswith(PAPER_SUFFIX) and name[:-len(PAPER_SUFFIX)] in TASKS:
        return TASKS[name[:-len(PAPER_SUFFIX)]].paper_form()
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None


def list_tasks(group: str | None = None, kind: str | None = None, builtin: bool | None = None) -> list[TaskSpec]:
    """Registered tasks in catalog order, optionally filtered by group, kind and built-in-ness."""
    return [t for t in TASKS.values() if (group is None or t.group == group) and (kind is None or t.kind == kind)
            and (builtin is None or t.builtin == builtin)]


def data_home() -> Path:
    """``$CONTRASTING_DATA`` or ``~/.cache/contrasting/data``."""
    return Path(os.environ.get("CONTRASTING_DATA", DEFAULT_DATA)).expanduser()


def resolve_root(spec: TaskSpec, data_root: os.PathLike | str | None = None) -> Path:
    """The directory a task's layout paths are relative to (see the module docstring for the order)."""
    if spec.builtin:
        from contrasting.eval.catalog.world import world_dir  # imports the data package

        return world_dir(data_root)
    if data_root is not None:
        return Path(data_root).expanduser() / spec.subdir
    if os.environ.get(spec.env):
        return Path(os.environ[spec.env]).expanduser()
    return data_home() / spec.subdir


@dataclass(frozen=True)
class DataStatus:
    """Whether every path of a task's layout exists under ``root``; ``missing`` lists those that do not."""

    task: str
    root: Path
    present: bool
    missing: tuple[str, ...]


def check_data(spec: TaskSpec | str, data_root: os.PathLike | str | None = None) -> DataStatus:
    """Presence check by the expected paths only (cheap; readers validate contents)."""
    spec = get_task(spec)
    root = resolve_root(spec, data_root)
    missing = tuple(str(root / p) for p in spec.layout.paths.values() if not (root / p).exists())
    return DataStatus(spec.name, root, not missing, missing)


# --------------------------------------------------------------------------------------------------------
# The study's 20 tasks (Kotar et al. 2021, Table 1 / ../shared/study.md). Schedules: epochs/batch/lr there.
# --------------------------------------------------------------------------------------------------------

def _image_cls(name, title, kind, layout, num_classes, epochs, *, subdir, env, lr=1e-4, head="linear", frames=1,
               source="", **kw) -> TaskSpec:
    return TaskSpec(name=name, title=title, group="image", kind=kind, layout=layout, target="class",
                    num_classes=num_classes, head=head, loss="ce", metric="top1", higher_is_better=True,
                    schedule=Schedule(epochs, 32, lr), subdir=subdir, env=env, frames=frames, source=source, **kw)


def _pixel(name, title, kind, layout, target, num_classes, head, loss, metric, epochs, lr, *, subdir, env,
           higher=True, frames=1, source="", **kw) -> TaskSpec:
    return TaskSpec(name=name, title=title, group="pixel", kind=kind, layout=layout, target=target,
                    num_classes=num_classes, head=head, loss=loss, metric=metric, higher_is_better=higher,
                    schedule=Schedule(epochs, 16, lr), subdir=subdir, env=env, frames=frames, source=source, **kw)


PROTOCOL_DEVIATIONS = (
    "head schedule: cosine decay of the learning rate by default (Schedule.decay); the study's code created "
    "schedulers it never stepped, a constant rate in effect (decay: none reproduces it)",
    "the head is not refit on train + validation after the hyper-parameter search unless a setting says "
    "refit: true: by default it trains on 90 % of the training split (val_fraction 0.1), the study's final heads "
    "on all of it",
)

_LIST_FORMAT = "one sample a line, comma- or whitespace-separated; a first line that is a header is skipped"

register_task(_image_cls(
    "imagenet", "ImageNet classification", "semantic",
    Layout("image_folder", {"train": "train", "test": "val"},
           "train/<wnid>/*.JPEG   (ILSVRC2012_img_train.tar, per-class tars extracted)\n"
           "val/<wnid>/*.JPEG     (ILSVRC2012_img_val.tar sorted into class folders by the usual valprep.sh)"),
    1000, 100, subdir="imagenet", env="CONTRASTING_DATA_IMAGENET", expected_sizes=(1281167, 50000),
    source="ILSVRC-12; test = val"))

register_task(_image_cls(
    "pets", "Oxford-IIIT Pet breed classification", "semantic",
    Layout("pets", {"images": "images", "train": "annotations/trainval.txt", "test": "annotations/test.txt"},
           "images/<Breed_name>_<n>.jpg                 (images.tar.gz)\n"
           "annotations/{trainval,test}.txt            (annotations.tar.gz:\n"
           "                                           '<image> <class 1..37> <species> <breed>')"),
    37, 100, subdir="oxford-iiit-pet", env="CONTRASTING_DATA_PETS", expected_sizes=(3680, 3669),
    source="Parkhi et al. 2012"))

register_task(_image_cls(
    "caltech101", "CalTech-101 classification", "semantic",
    Layout("image_folder", {"train": "101_ObjectCategories"},
           "101_ObjectCategories/<class>/image_NNNN.jpg   (101_ObjectCategories.tar.gz; BACKGROUND_Google is skipped)\n"
           "split: the first 30 images of each class (sorted by name) train, the rest test",
           {"per_class_train": 30, "exclude": ["BACKGROUND_Google"]}),
    101, 500, subdir="caltech101", env="CONTRASTING_DATA_CALTECH101",
    deviations=(
        "train: the first 30 images of each class by name, 3,030 images; the study's list has 3,060 and is "
        'not reproduced',
    ),
    expected_sizes=(3030, 5647),
    source="Fei-Fei et al. 2004"))

register_task(_image_cls(
    "cifar100", "CIFAR-100 classification", "semantic",
    Layout("cifar_pickle", {"train": "cifar-100-python/train", "test": "cifar-100-python/test",
                            "meta": "cifar-100-python/meta"},
           "cifar-100-python/{train,test,meta}   (cifar-100-python.tar.gz: pickled dicts with b'data' N×3072 uint8\n"
           "                                      and b'fine_labels'; 32 px images are upsampled to the input size)"),
    100, 100, subdir="cifar100", env="CONTRASTING_DATA_CIFAR100", expected_sizes=(50000, 10000),
    source="Krizhevsky 2009"))

register_task(_image_cls(
    "sun397", "SUN397 scene classification", "semantic",
    Layout("sun397", {"images": "SUN397", "train": "Partitions/Training_01.txt", "test": "Partitions/Testing_01.txt"},
           "SUN397/<l>/<class>[/<sub>]/sun_*.jpg     (SUN397.tar.gz)\n"
           "Partitions/{Training,Testing}_01.txt     (Partitions.zip: lines '/a/abbey/sun_aaa.jpg'; class = dir)"),
    397, 250, subdir="sun397", env="CONTRASTING_DATA_SUN397",
    deviations=(
        "train: partition 1's 19,850 images; the study trained on 87,003",
    ),
    expected_sizes=(19850, 19850),
    source="Xiao et al. 2010, partition 1"))

register_task(_image_cls(
    "eurosat", "EuroSAT land-use classification", "semantic",
    Layout("image_folder", {"train": "2750"},
           "2750/<Class>/<Class>_<n>.jpg   (EuroSAT.zip, RGB)\n"
           "split: no official one; a fixed 80/20 split by a hash of the file name (stable across runs)",
           {"test_fraction": 0.2}),
    10, 200, subdir="eurosat", env="CONTRASTING_DATA_EUROSAT",
    deviations=(
        "split: 80/20 by a hash of the file name, not the study's split",
    ),
    source="Helber et al. 2019"))

register_task(_image_cls(
    "dtd", "DTD texture classification", "semantic",
    Layout("dtd", {"images": "dtd/images", "train": "dtd/labels/train1.txt", "val": "dtd/labels/val1.txt",
                   "test": "dtd/labels/test1.txt"},
           "dtd/images/<class>/<class>_NNNN.jpg            (dtd-r1.0.1.tar.gz)\n"
           "dtd/labels/{train,val,test}1.txt               (lines '<class>/<file>.jpg'; train = train1 + val1)"),
    47, 100, subdir="dtd", env="CONTRASTING_DATA_DTD", expected_sizes=(3760, 1880),
    source="Cimpoi et al. 2014, split 1"))

register_task(_image_cls(
    "kinetics", "Kinetics-400 action recognition (6 frames)", "semantic",
    Layout("kinetics_frames", {"train": "annotations/train.csv", "test": "annotations/validate.csv",
                               "frames": "frames"},
           "annotations/{train,validate}.csv   (the official CSVs: label,youtube_id,time_start,time_end,split)\n"
           "frames/<youtube_id>_<start:06d>_<end:06d>/*.jpg   (6 frames per clip, extracted beforehand, e.g.\n"
           "                                                  ffmpeg at evenly spaced times; clips without frames\n"
           "                                                  are skipped)", {"frames": 6}),
    400, 100, lr=3e-4, head="mlp", frames=6, subdir="kinetics", env="CONTRASTING_DATA_KINETICS",
    deviations=(
        'every clip with extracted frames; the study used a 50,000-clip subset',
    ),
    source="Kay et al. 2017"))

register_task(_image_cls(
    "clevr-count", "CLEVR object count", "structural",
    Layout("clevr_count", {"train": "CLEVR_v1.0/scenes/CLEVR_train_scenes.json",
                           "test": "CLEVR_v1.0/scenes/CLEVR_val_scenes.json", "images": "CLEVR_v1.0/images"},
           "CLEVR_v1.0/images/{train,val}/CLEVR_<split>_NNNNNN.png   (CLEVR_v1.0.zip)\n"
           "CLEVR_v1.0/scenes/CLEVR_{train,val}_scenes.json        (count = len(objects), class = count − 3;\n"
           "                                                        test = val, the test split has no scenes)"),
    8, 100, subdir="clevr", env="CONTRASTING_DATA_CLEVR", expected_sizes=(70000, 15000),
    source="Johnson et al. 2017"))

_VIRB_NOTE = "no public distribution format (the data comes with the ViRB release); read from list files:\n"

register_task(_image_cls(
    "thor-num-steps", "THOR number of steps between views", "structural",
    Layout("file_list", {"train": "train.csv", "test": "test.csv"},
           _VIRB_NOTE + "{train,test}.csv: 'image,label' (label = number of steps, 0..C−1); " + _LIST_FORMAT),
    None, 100, subdir="thor-num-steps", env="CONTRASTING_DATA_THOR_NUM_STEPS",  # classes: from the labels
    source="ViRB (AI2-THOR)"))

register_task(_image_cls(
    "thor-egomotion", "THOR egomotion (action between two frames)", "structural",
    Layout("file_list", {"train": "train.csv", "test": "test.csv"},
           _VIRB_NOTE + "{train,test}.csv: 'view_a,view_b,label' (label = action 0..4); " + _LIST_FORMAT,
           {"frames": 2}),
    5, 100, head="mlp", frames=2, subdir="thor-egomotion", env="CONTRASTING_DATA_THOR_EGOMOTION",
    source="ViRB (AI2-THOR)"))

register_task(_image_cls(
    "nuscenes-egomotion", "nuScenes egomotion (action between two frames)", "structural",
    Layout("file_list", {"train": "train.csv", "test": "test.csv"},
           _VIRB_NOTE + "{train,test}.csv: 'view_a,view_b,label' (frames from samples/CAM_FRONT); " + _LIST_FORMAT,
           {"frames": 2}),
    None, 100, head="mlp", frames=2, subdir="nuscenes-egomotion", env="CONTRASTING_DATA_NUSCENES_EGOMOTION",
    # classes: from the labels, as the study's code
    source="ViRB (nuScenes)"))

register_task(_pixel(
    "cityscapes", "Cityscapes semantic segmentation", "semantic",
    Layout("cityscapes", {"train_images": "leftImg8bit/train", "train_labels": "gtFine/train",
                          "test_images": "leftImg8bit/val", "test_labels": "gtFine/val"},
           "leftImg8bit/{train,val}/<city>/<name>_leftImg8bit.png   (leftImg8bit_trainvaltest.zip)\n"
           "gtFine/{train,val}/<city>/<name>_gtFine_labelIds.png    (gtFine_trainvaltest.zip; labelIds mapped to\n"
           "                                                         the 19 trainIds, others void; test = val)"),
    "mask", 19, "deeplab", "ce", "miou", 100, 3e-4, subdir="cityscapes", env="CONTRASTING_DATA_CITYSCAPES",
    image_size=(256, 512),
    deviations=(
        'input resized to 256×512 with no scale, flip or crop augmentation, 19 trainIds with void ignored; '
        'the study: 20 classes, 0.5–2× scale, 450 px crops, full-resolution test, poly learning-rate decay (its '
        'paper form, cityscapes:paper)',
    ),
    expected_sizes=(2975, 500),
    source="Cordts et al. 2016",
    paper={"layout": {"options": {"target": "cityscapes20"}, "structure":
        "leftImg8bit/{train,val}/<city>/<name>_leftImg8bit.png   (leftImg8bit_trainvaltest.zip)\n"
        "gtFine/{train,val}/<city>/<name>_gtFine_labelIds.png    (gtFine_trainvaltest.zip; the study's 20 classes:\n"
        "                                                         0 = void, trainId + 1; test = val)"},
        "num_classes": 20, "image_size": (1024, 2048),
        "train_crops": TrainCrops((450, 450), scale=(0.5, 2.0), flip=0.5),
        "schedule": Schedule(100, 16, 3e-4, decay="poly"),
        "deviations": ("crop windows lie within the scaled image (padded where it is smaller than 450 px); the "
                       "study's code drew them from the unscaled size",
                       "poly learning-rate decay as the study states it; its code never stepped the scheduler "
                       "(a constant rate in effect: decay none)")}))

register_task(_pixel(
    "pets-seg", "Oxford-IIIT Pet segmentation (the pet)", "semantic",
    Layout("pets", {"images": "images", "trimaps": "annotations/trimaps", "train": "annotations/trainval.txt",
                    "test": "annotations/test.txt"},
           "images/<name>.jpg, annotations/trimaps/<name>.png (trimap 1 = pet, 2 = background, 3 = border;\n"
           "target = the pet, value 1 — the original code took background + border), annotations/{trainval,test}.txt",
           {"target": "trimap"}),
    "binary", 1, "unet", "bce", "iou", 100, 1e-4, subdir="oxford-iiit-pet", env="CONTRASTING_DATA_PETS",
    expected_sizes=(3680, 3669),
    source="Parkhi et al. 2012"))

register_task(_pixel(
    "egohands", "EgoHands hand segmentation (4 hands + background)", "semantic",
    Layout("egohands", {"samples": "_LABELLED_SAMPLES"},
           "_LABELLED_SAMPLES/<VIDEO>/frame_NNNN.jpg + polygons.mat   (egohands_data.zip; polygons.mat holds the\n"
           "                                      struct 'polygons' with fields myleft, myright, yourleft, yourright)\n"
           "split: the 48 videos sorted by name, every 6th (8 videos) test"),
    "mask", 5, "deeplab", "weighted_ce", "miou_no_bg", 25, 3e-4, subdir="egohands", env="CONTRASTING_DATA_EGOHANDS",
    image_size=(240, 416), loss_options={"class_weights": (0.1, 1.0, 1.0, 1.0, 1.0)},  # the study's, fixed
    deviations=(
        'input 240×416, not 513 px crops and a full-resolution test',
        "split: every 6th video by name, not the study's (the first 90 % of the frames in path order)",
        "both in its paper form, egohands:paper",
    ),
    source="Bambach et al. 2015",
    paper={"layout": {"options": {"split": "frames_90"}, "structure":
        "_LABELLED_SAMPLES/<VIDEO>/frame_NNNN.jpg + polygons.mat   (egohands_data.zip; polygons.mat holds the\n"
        "                                      struct 'polygons' with fields myleft, myright, yourleft, yourright)\n"
        "split: the frames of all videos in path order, the first 90 % train (the study's)"},
        "image_size": (720, 1280), "train_crops": TrainCrops((513, 513), min_classes=2),
        "deviations": ("frames decoded from the published polygons; the study read masks it had rasterised "
                       "itself (same split rule, file names may sort differently)",)}))

_DEPTH_LIST = "{train,test}.txt: 'image,depth' with depth a 16-bit PNG"

register_task(_pixel(
    "nyu-depth", "NYU Depth v2 depth", "structural",
    Layout("nyu_mat", {"mat": "nyu_depth_v2_labeled.mat", "splits": "splits.mat"},
           "nyu_depth_v2_labeled.mat   (the labeled set as published: MATLAB v7.3 = HDF5, read with h5py;\n"
           "                            'images' 480×640×3×N uint8, 'depths' 480×640×N float32 in metres)\n"
           "splits.mat                 (MATLAB v5: 'trainNdxs' 795×1, 'testNdxs' 654×1, 1-based indices)",
           {"target": "depth"}),
    "depth", None, "unet", "l1", "l1", 250, 3e-4, higher=False, subdir="nyu", env="CONTRASTING_DATA_NYU",
    version=2,
    deviations=(
        "train: splits.mat's 795 images; the study used 1,159",
    ),
    expected_sizes=(795, 654),
    source="Silberman et al. 2012"))

register_task(_pixel(
    "nyu-walkable", "NYU walkable surfaces", "structural",
    Layout("pair_list", {"train": "walkable/train.txt", "test": "walkable/test.txt"},
           "walkable/{train,test}.txt: 'image,mask' with mask a PNG (nonzero = walkable); the walkable\n"
           "annotations come from Mottaghi et al.'s release, images from the NYU labeled set",
           {"target": "binary"}),
    "binary", 1, "unet", "bce", "iou", 250, 1e-4, subdir="nyu", env="CONTRASTING_DATA_NYU",
    deviations=(
        "train: splits.mat's 795 images; the study used 1,159",
    ),
    source="Mottaghi et al. 2016"))

register_task(_pixel(
    "thor-depth", "THOR depth", "structural",
    Layout("pair_list", {"train": "train.txt", "test": "test.txt"},
           _VIRB_NOTE + _DEPTH_LIST + " in millimetres (0 = missing)", {"target": "depth", "depth_scale": 1e-3}),
    "depth", None, "unet", "l1", "l1", 50, 3e-4, higher=False, subdir="thor-depth", env="CONTRASTING_DATA_THOR_DEPTH",
    deviations=(
        "depth from 16-bit millimetre PNGs; the study's labels are 8-bit JPEGs, so L1 is on another scale",
    ),
    source="ViRB (AI2-THOR)"))

register_task(_pixel(
    "taskonomy-depth", "Taskonomy depth (z-buffer)", "structural",
    Layout("taskonomy", {"rgb": "rgb", "depth": "depth_zbuffer", "train": "splits/train.txt",
                         "test": "splits/test.txt"},
           "rgb/<building>/point_<p>_view_<v>_domain_rgb.png\n"
           "depth_zbuffer/<building>/point_<p>_view_<v>_domain_depth_zbuffer.png   (16-bit, 1/512 m, 65535 = none)\n"
           "splits/{train,test}.txt: one building a line (from the official train/test building lists)",
           {"depth_scale": 1 / 512, "invalid": 65535}),
    "depth", None, "unet", "l1", "l1", 50, 1e-4, higher=False, subdir="taskonomy",
    env="CONTRASTING_DATA_TASKONOMY",
    deviations=(
        "split: the official building lists, not the study's 39,995-image scene list",
    ),
    source="Zamir et al. 2018"))

register_task(_pixel(
    "kitti-flow", "KITTI 2015 optical flow", "structural",
    Layout("kitti_flow", {"images": "training/image_2", "flow": "training/flow_occ"},
           "training/image_2/NNNNNN_{10,11}.png   (data_scene_flow.zip)\n"
           "training/flow_occ/NNNNNN_10.png        (16-bit RGB: u = (R − 2^15)/64, v = (G − 2^15)/64, valid = B > 0)\n"
           "split: 200 pairs sorted by id, the first 180 train, the last 20 test (the study's 90/10)"),
    "flow", None, "unet2", "l1_valid", "flow_acc", 250, 3e-4, frames=2, subdir="kitti", env="CONTRASTING_DATA_KITTI",
    image_size=(256, 832),
    deviations=(
        "2-channel flow scored as the share of valid pixels with end-point error < 3 px or < 5 % (KITTI's Fl "
        "inverted); the study scored 1-channel viz_flow_occ / 255 by the share of pixels with error ≤ 0.05 (its "
        "paper form, kitti-flow:paper)",
        'input 256×832, not 224 px crops',
    ),
    expected_sizes=(180, 20),
    source="Menze & Geiger 2015",
    paper={"layout": {"paths": {"flow": "training/viz_flow_occ"}, "options": {"target": "flow_viz"}, "structure":
        "training/image_2/NNNNNN_{10,11}.png   (data_scene_flow.zip)\n"
        "training/viz_flow_occ/NNNNNN_10.png    (8-bit RGB visualisation of the flow; target = its luminance / 255,\n"
        "                                       as the study's code read it)\n"
        "split: 200 pairs sorted by id, the first 180 train, the last 20 test (the study's 90/10)"},
        "target": "scalar", "loss": "l1", "metric": "within", "higher_is_better": True, "image_size": (376, 1242),
        "train_crops": TrainCrops((224, 224)),
        "deviations": ("test images resized to 376×1242 (the study resized only the targets; KITTI's images are "
                       "370–376 × 1224–1242)",)}))

# --------------------------------------------------------------------------------------------------------
# Built-in tasks: the shapes world of contrasting.data.builtin (``world-<key>/tasks/<task>/...``), small enough
# for CI. Paths are relative to the world folder (``world.world_dir``); the world's own val split is merged
# into train, from which the protocol carves its validation split like for every other task.
# --------------------------------------------------------------------------------------------------------

_WORLD_SIZE = (64, 64)
_FOLDER = "{train,val,test}/<NN>_<class>/<index>.png   (image folders; manifest.json names the classes)"
_PAIRS = "{{train,val,test}}.txt: '<split>/images/<i>.png,<split>/targets/<i>.png' (pair lists; target PNG: {})"


@dataclass(frozen=True)
class BuiltinProtocol:
    """How eval reads and scores a built-in task of one data ``kind`` (``contrasting.data.builtin.KINDS``)."""

    reader: str
    structure: str
    target: str
    head: str
    loss: str
    epochs: int = 20
    batch: int = 32
    frames: int = 1
    pooling: int = 1
    options: tuple = ()


# The data package owns the built-in tasks (name, group, kind, metric, description: its registry); eval adds, per
# kind, the reader, head and schedule.
BUILTIN_PROTOCOLS = {
    "classification": BuiltinProtocol("image_folder", _FOLDER, "class", "linear", "ce"),
    "pair-classification": BuiltinProtocol(
        "file_list", "{train,val,test}.txt: '<split>/a/<i>.png,<split>/b/<i>.png,<label>' (view-pair lists)",
        "class", "mlp", "ce", frames=2, pooling=2),
    "segmentation": BuiltinProtocol("pair_list", _PAIRS.format("uint8 class, 0 = background"), "mask", "unet", "ce",
                                    epochs=10, batch=16, options=(("target", "mask"),)),
    "binary-mask": BuiltinProtocol("pair_list", _PAIRS.format("uint8, 1 = any object"), "binary", "unet", "bce",
                                   epochs=10, batch=16, options=(("target", "binary"),)),
    "depth": BuiltinProtocol("pair_list", _PAIRS.format(f"uint16 depth · {DEPTH_SCALE}, background 1.0"), "depth",
                             "unet", "l1", epochs=10, batch=16,
                             options=(("target", "depth"), ("depth_scale", 1 / DEPTH_SCALE))),
}
# eval's name of a world task: "shapes-" + the world name without "-cls"; these read better spelled out.
_BUILTIN_NAMES = {"shape-seg": "shapes-segmentation"}


def builtin_task_name(world_task: str) -> str:
    """The catalog name of the world's task ``world_task``: shape-cls → shapes-shape, count → shapes-count."""
    return _BUILTIN_NAMES.get(world_task, "shapes-" + world_task.removesuffix("-cls"))


def builtin_task_spec(world_task) -> TaskSpec:
    """The catalog entry of one world task (``contrasting.data.builtin.TaskSpec``), its protocol by its kind."""
    proto = BUILTIN_PROTOCOLS[world_task.kind]
    level, kind = split_group_title(world_task.group)
    base = f"tasks/{world_task.name}"
    if proto.reader == "image_folder":
        paths = {s: f"{base}/{s}" for s in ("train", "val", "test")}
    else:
        paths = {s: f"{base}/{s}.txt" for s in ("train", "val", "test")}
    layout = Layout(proto.reader, paths, f"{base}/" + proto.structure,
                    {"base": base, "world_task": world_task.name, **dict(proto.options)})
    return TaskSpec(name=builtin_task_name(world_task.name), title=f"Shapes world: {world_task.description}",
                    group=level, kind=kind, layout=layout, target=proto.target, num_classes=None, head=proto.head,
                    loss=proto.loss, metric=world_task.metric, higher_is_better=world_task.higher_is_better,
                    schedule=Schedule(proto.epochs, proto.batch, 1e-3), subdir=WORLD_SUBDIR,
                    env="CONTRASTING_DATA_SHAPES_WORLD", image_size=_WORLD_SIZE, frames=proto.frames, builtin=True,
                    source=f"contrasting.data.builtin task {world_task.name!r}", pooling=proto.pooling)


for _world_task in WORLD_TASKS.values():
    register_task(builtin_task_spec(_world_task))

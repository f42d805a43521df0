"""Readers (one per on-disk layout) and the datasets that turn their samples into tensors.

A reader ``read(spec, root) -> TaskData`` lists a task's train and test samples from the dataset's own
distribution format (``tasks.py`` documents each layout); it never decodes pixels, so listing ImageNet is
cheap. A sample is a tuple of ``spec.frames`` image references (a path, or an HWC uint8 array for CIFAR)
and a target: a class index for image-level tasks, a target reference for pixel tasks, decoded by the
``TARGET_DECODERS`` entry the layout names (``options["target"]``, default per reader).

Missing files or malformed lists raise ``TaskDataError`` naming the task, the path and the layout.
Splits that the dataset does not define are fixed functions of file names (never of a seed), so that every
cell of a grid sees the same test set.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import pickle
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from contrasting.eval.catalog.tasks import TaskDataError, TaskSpec, TrainCrops
from contrasting.eval.catalog.world import IMAGE_EXTENSIONS, folder_samples, world_classes

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Split:
    """Samples of one split: ``inputs[i]`` is a tuple of image refs, ``targets[i]`` a label or a target ref."""

    inputs: list[tuple]
    targets: list

    def __len__(self) -> int:
        return len(self.inputs)

    def subset(self, idx) -> Split:
        return Split([self.inputs[i] for i in idx], [self.targets[i] for i in idx])


@dataclass
class TaskData:
    """A task's listed data: ``train`` and ``test`` splits, class names when the format has them."""

    train: Split
    test: Split
    root: Path
    classes: list[str] | None = None


READERS: dict[str, Callable[[TaskSpec, Path], TaskData]] = {}


def register_reader(name: str):
    """Decorator: ``@register_reader("name")`` puts a reader into ``READERS``."""
    def deco(fn):
        READERS[name] = fn
        return fn
    return deco


def read_task(spec: TaskSpec, root: Path) -> TaskData:
    """List ``spec``'s data under ``root`` with its layout's reader; checks presence and non-empty splits."""
    for rel in spec.layout.paths.values():
        if not (root / rel).exists():
            raise TaskDataError(spec.name, root / rel, spec.layout.structure)
    try:
        reader = READERS[spec.layout.reader]
    except KeyError:
        raise ValueError(f"task {spec.name!r}: unknown reader {spec.layout.reader!r}; "
                         f"known: {sorted(READERS)}") from None
    data = reader(spec, root)
    for name, split in (("train", data.train), ("test", data.test)):
        if len(split) == 0:
            raise TaskDataError(spec.name, root, spec.layout.structure, f"no {name} samples found")
        bad = next((s for s in split.inputs if len(s) != spec.frames), None)
        if bad is not None:
            raise TaskDataError(spec.name, root, spec.layout.structure,
                                f"{name} sample with {len(bad)} images, expected {spec.frames}")
    _check_labels(spec, root, data)
    return data


def _check_labels(spec: TaskSpec, root: Path, data: TaskData) -> None:
    """Image-level tasks of a fixed class count: at most that many class names — exactly that many class folders
    for an image-folder layout, whose folders are the classes — and every label in 0..C−1 (a label out of range
    would fail deep in training, a missing folder train a head of the wrong width). A task whose count is read
    from its labels (``num_classes`` None, no class names) has C = 1 + the largest training label, so a test
    label beyond every training one is refused too. Names the split's file or folder."""
    n = spec.num_classes
    if spec.target == "class" and n is None and not data.classes and len(data.train.targets):
        n = int(max(data.train.targets)) + 1
    if spec.target != "class" or not n:
        return
    where = lambda key: root / spec.layout.paths[key] if key in spec.layout.paths else root
    if data.classes and spec.layout.reader == "image_folder" and len(data.classes) != n:
        shown = ", ".join(data.classes[:5]) + (", ..." if len(data.classes) > 5 else "")
        raise TaskDataError(spec.name, where("train"), spec.layout.structure,
                            f"{len(data.classes)} class folders found ({shown}), the task has {n} classes")
    if data.classes and len(data.classes) > n:
        raise TaskDataError(spec.name, where("train"), spec.layout.structure,
                            f"{len(data.classes)} classes found, the task has {n}")
    for key, split in (("train", data.train), ("test", data.test)):
        i = next((i for i, t in enumerate(split.targets) if not 0 <= t < n), None)
        if i is not None:
            ref = split.inputs[i][0]
            shown = f" ({ref})" if isinstance(ref, (str, os.PathLike)) else ""
            raise TaskDataError(spec.name, where(key), spec.layout.structure,
                                f"{key} label out of range: class index {split.targets[i]} of sample {i}{shown}, "
                                f"expected 0..{n - 1}")


def _stable_fraction(key: str) -> float:
    """A number in [0, 1) fixed by ``key`` (used for splits the dataset does not define)."""
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 2**32


def _lines(spec: TaskSpec, path: Path, header: bool = False) -> list[list[str]]:
    """Rows of a list file (comma or whitespace separated, '#' comments); with ``header``, a first row with no
    path-like or numeric field (e.g. 'view_a,view_b,label') is skipped."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise TaskDataError(spec.name, path, spec.layout.structure, f"unreadable ({exc})") from exc
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        rows.append([f.strip() for f in (next(csv.reader([line])) if "," in line else line.split())])
    if header and rows and not any("." in f or "/" in f or f.lstrip("-").isdigit() for f in rows[0]):
        rows = rows[1:]
    return rows


# ------------------------------------------------------------------------------------------------ readers


@register_reader("image_folder")
def read_image_folder(spec: TaskSpec, root: Path) -> TaskData:
    """``<train>/<class>/*`` and ``<test>/<class>/*``; or one tree split by ``per_class_train`` (first n of
    each class, sorted) or ``test_fraction`` (fixed by a hash of the path relative to the tree)."""
    opts, paths = spec.layout.options, spec.layout.paths
    exclude = tuple(opts.get("exclude", ()))
    train, classes = folder_samples(root / paths["train"], exclude)
    if "val" in paths:  # a dataset's own val split joins train (the protocol carves its own)
        val, val_classes = folder_samples(root / paths["val"], exclude)
        if val_classes != classes:
            raise TaskDataError(spec.name, root / paths["val"], spec.layout.structure,
                                f"val classes differ from train classes ({len(val_classes)} vs {len(classes)})")
        train = train + val
    if "test" in paths:
        test, test_classes = folder_samples(root / paths["test"], exclude)
        if test_classes != classes:
            raise TaskDataError(spec.name, root / paths["test"], spec.layout.structure,
                                f"test classes differ from train classes ({len(test_classes)} vs {len(classes)})")
    elif "per_class_train" in opts:
        n, seen, kept, test = opts["per_class_train"], {}, [], []
        for p, c in train:
            seen[c] = seen.get(c, 0) + 1
            (kept if seen[c] <= n else test).append((p, c))
        train = kept
    else:
        base = root / paths["train"]
        is_test = [_stable_fraction(str(Path(p).relative_to(base))) < opts["test_fraction"] for p, _ in train]
        test = [s for s, t in zip(train, is_test, strict=True) if t]
        train = [s for s, t in zip(train, is_test, strict=True) if not t]
    as_split = lambda s: Split([(p,) for p, _ in s], [c for _, c in s])
    return TaskData(as_split(train), as_split(test), root, _world_names(spec, root) or classes)


def _world_names(spec: TaskSpec, root: Path) -> list[str] | None:
    """Class names from the shapes world's manifest for built-in tasks (None otherwise)."""
    return world_classes(root, spec.layout.options["world_task"]) if "world_task" in spec.layout.options else None


def _with_val(spec: TaskSpec, split_fn) -> Split:
    """Train plus, where the layout has one, the dataset's own val split (the protocol carves its own)."""
    train = split_fn("train")
    if "val" in spec.layout.paths:
        val = split_fn("val")
        train = Split(train.inputs + val.inputs, train.targets + val.targets)
    return train


@register_reader("pets")
def read_pets(spec: TaskSpec, root: Path) -> TaskData:
    """Oxford-IIIT Pet: list lines '<image> <class 1..37> <species> <breed>'; classification targets are
    class − 1, segmentation targets the trimap of the image (pet = value 1)."""
    seg = spec.layout.options.get("target") == "trimap"

    def split(key):
        inputs, targets = [], []
        for row in _lines(spec, root / spec.layout.paths[key]):
            if len(row) < 2 or not row[1].isdigit():
                raise TaskDataError(spec.name, root / spec.layout.paths[key], spec.layout.structure,
                                    f"malformed line {' '.join(row)!r}")
            inputs.append((str(root / "images" / f"{row[0]}.jpg"),))
            targets.append(str(root / "annotations" / "trimaps" / f"{row[0]}.png") if seg else int(row[1]) - 1)
        return Split(inputs, targets)

    return TaskData(split("train"), split("test"), root)


class DataUnpickler(pickle.Unpickler):
    """An unpickler that builds only plain containers, numbers, strings, bytes and numpy arrays — what CIFAR's
    python batches hold — and refuses every other global, so a crafted dataset file cannot run code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("copyreg", "_reconstructor"), ("builtins", "object")}

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a data file")


def load_data_pickle(path: Path):
    """``DataUnpickler(encoding='bytes').load()`` of ``path``."""
    with open(path, "rb") as f:
        return DataUnpickler(f, encoding="bytes").load()


@register_reader("cifar_pickle")
def read_cifar(spec: TaskSpec, root: Path) -> TaskData:
    """CIFAR-100 python version: pickled dicts, b'data' (N, 3072) uint8 in CHW order, b'fine_labels'; read with
    ``DataUnpickler`` (no code from the file)."""
    def split(key):
        path = root / spec.layout.paths[key]
        try:
            d = load_data_pickle(path)
        except (pickle.UnpicklingError, EOFError, ValueError) as error:
            raise TaskDataError(spec.name, path, spec.layout.structure,
                                f"not a CIFAR python batch ({str(error)[:200]})") from None
        if b"data" not in d or b"fine_labels" not in d:
            raise TaskDataError(spec.name, path, spec.layout.structure, "no b'data' / b'fine_labels' in the pickle")
        data = np.asarray(d[b"data"])
        if data.ndim != 2 or data.shape[1] != 3072 or data.dtype != np.uint8 or len(d[b"fine_labels"]) != len(data):
            raise TaskDataError(spec.name, path, spec.layout.structure,
                                f"b'data' is {data.dtype} {data.shape} with {len(d[b'fine_labels'])} labels, expected "
                                "uint8 (N, 3072) — 32×32 RGB images — and N labels")
        images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return Split([(im,) for im in images], [int(c) for c in d[b"fine_labels"]])

    return TaskData(split("train"), split("test"), root)


@register_reader("sun397")
def read_sun397(spec: TaskSpec, root: Path) -> TaskData:
    """SUN397 partition files: '/a/abbey/sun_x.jpg' relative to SUN397/; the class is the directory."""
    rows = {k: [r[0] for r in _lines(spec, root / spec.layout.paths[k])] for k in ("train", "test")}
    classes = sorted({str(Path(r).parent) for r in rows["train"]})
    index = {c: i for i, c in enumerate(classes)}
    _known_classes(spec, root, "test", [str(Path(r).parent) for r in rows["test"]], index)
    img = root / spec.layout.paths["images"]
    split = lambda rs: Split([(str(img / r.lstrip("/")),) for r in rs], [index[str(Path(r).parent)] for r in rs])
    return TaskData(split(rows["train"]), split(rows["test"]), root, classes)


def _known_classes(spec: TaskSpec, root: Path, key: str, labels: list[str], index: dict) -> None:
    """A split file's class that the training split does not have is an error naming the file."""
    unknown = next((c for c in labels if c not in index), None)
    if unknown is not None:
        raise TaskDataError(spec.name, root / spec.layout.paths[key], spec.layout.structure,
                            f"class {unknown!r} is not in the training split")


@register_reader("dtd")
def read_dtd(spec: TaskSpec, root: Path) -> TaskData:
    """DTD: labels/{train,val,test}1.txt list '<class>/<file>.jpg'; train = train1 + val1."""
    rows = {k: [r[0] for r in _lines(spec, root / spec.layout.paths[k])] for k in ("train", "val", "test")}
    classes = sorted({r.split("/")[0] for r in rows["train"] + rows["val"]})
    index = {c: i for i, c in enumerate(classes)}
    _known_classes(spec, root, "test", [r.split("/")[0] for r in rows["test"]], index)
    img = root / spec.layout.paths["images"]
    split = lambda rs: Split([(str(img / r),) for r in rs], [index[r.split("/")[0]] for r in rs])
    return TaskData(split(rows["train"] + rows["val"]), split(rows["test"]), root, classes)


@register_reader("kinetics_frames")
def read_kinetics(spec: TaskSpec, root: Path) -> TaskData:
    """Kinetics CSVs (label,youtube_id,time_start,time_end,...) + frames/<id>_<start:06d>_<end:06d>/*.jpg;
    clips whose frame directory is absent are skipped, one with fewer than ``frames`` images is an error."""
    k = spec.layout.options.get("frames", spec.frames)
    frames_dir = root / spec.layout.paths["frames"]
    rows = {s: _lines(spec, root / spec.layout.paths[s], header=True) for s in ("train", "test")}
    classes = sorted({r[0] for r in rows["train"]})
    index = {c: i for i, c in enumerate(classes)}

    def split(rs):
        inputs, targets = [], []
        for r in rs:
            clip = frames_dir / f"{r[1]}_{int(float(r[2])):06d}_{int(float(r[3])):06d}"
            if not clip.is_dir() or r[0] not in index:
                continue
            files = sorted(f for f in clip.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS)
            if len(files) < k:
                raise TaskDataError(spec.name, clip, spec.layout.structure, f"{len(files)} frames, expected {k}")
            pick = np.linspace(0, len(files) - 1, k).round().astype(int)
            inputs.append(tuple(str(files[i]) for i in pick))
            targets.append(index[r[0]])
        return Split(inputs, targets)

    return TaskData(split(rows["train"]), split(rows["test"]), root, classes)


@register_reader("clevr_count")
def read_clevr(spec: TaskSpec, root: Path) -> TaskData:
    """CLEVR scenes JSON: one image per scene, class = number of objects − 3 (3..10 objects)."""
    def split(key, sub):
        path = root / spec.layout.paths[key]
        try:
            scenes = json.loads(path.read_text())["scenes"]
        except (KeyError, ValueError) as exc:
            raise TaskDataError(spec.name, path, spec.layout.structure, f"malformed scenes file ({exc})") from exc
        img = root / spec.layout.paths["images"] / sub
        return Split([(str(img / s["image_filename"]),) for s in scenes], [len(s["objects"]) - 3 for s in scenes])

    return TaskData(split("train", "train"), split("test", "val"), root)


@register_reader("file_list")
def read_file_list(spec: TaskSpec, root: Path) -> TaskData:
    """List files 'image_1,...,image_k,label' (k = ``frames``), paths relative to ``options['base']``."""
    k, base = spec.frames, root / spec.layout.options.get("base", "")

    def split(key):
        path = root / spec.layout.paths[key]
        inputs, targets = [], []
        for row in _lines(spec, path, header=True):
            if len(row) != k + 1 or not row[-1].lstrip("-").isdigit():
                raise TaskDataError(spec.name, path, spec.layout.structure,
                                    f"malformed line {','.join(row)!r}: expected {k} paths and an integer label")
            inputs.append(tuple(str(base / p) for p in row[:k]))
            targets.append(int(row[-1]))
        return Split(inputs, targets)

    return TaskData(_with_val(spec, split), split("test"), root, _world_names(spec, root))


@register_reader("pair_list")
def read_pair_list(spec: TaskSpec, root: Path) -> TaskData:
    """List files 'image,target' (target a PNG), paths relative to ``options['base']``."""
    base = root / spec.layout.options.get("base", "")

    def split(key):
        path = root / spec.layout.paths[key]
        rows = _lines(spec, path, header=True)
        if any(len(r) != 2 for r in rows):
            raise TaskDataError(spec.name, path, spec.layout.structure, "malformed line: expected 'image,target'")
        return Split([(str(base / r[0]),) for r in rows], [str(base / r[1]) for r in rows])

    return TaskData(_with_val(spec, split), split("test"), root, _world_names(spec, root))


@register_reader("cityscapes")
def read_cityscapes(spec: TaskSpec, root: Path) -> TaskData:
    """Cityscapes: each leftImg8bit image with its gtFine labelIds PNG (target decoder 'cityscapes')."""
    def split(images, labels):
        img_dir, lab_dir = root / spec.layout.paths[images], root / spec.layout.paths[labels]
        inputs, targets = [], []
        for f in sorted(img_dir.rglob("*_leftImg8bit.png")):
            rel = f.relative_to(img_dir)
            lab = lab_dir / rel.parent / rel.name.replace("_leftImg8bit.png", "_gtFine_labelIds.png")
            if not lab.is_file():
                raise TaskDataError(spec.name, lab, spec.layout.structure, "label file missing")
            inputs.append((str(f),))
            targets.append(str(lab))
        return Split(inputs, targets)

    return TaskData(split("train_images", "train_labels"), split("test_images", "test_labels"), root)


@register_reader("egohands")
def read_egohands(spec: TaskSpec, root: Path) -> TaskData:
    """EgoHands labelled samples: targets are (polygons.mat, frame index) pairs, rasterised on decode. Split: every
    6th video by name is test, or with the layout option ``split: "frames_90"`` the study's — the frames of all
    videos in path order, the first 90 % train."""
    videos = sorted(d for d in (root / spec.layout.paths["samples"]).iterdir() if d.is_dir())
    samples = []  # (video index, frame path, target)
    for i, video in enumerate(videos):
        mat = video / "polygons.mat"
        if not mat.is_file():
            raise TaskDataError(spec.name, mat, spec.layout.structure)
        frames = sorted(f for f in video.iterdir() if f.suffix.lower() == ".jpg")
        samples += [(i, (str(f),), (str(mat), j)) for j, f in enumerate(frames)]
    if spec.layout.options.get("split") == "frames_90":
        is_test = [k >= int(0.9 * len(samples)) for k in range(len(samples))]
    else:
        is_test = [i % 6 == 5 for i, _, _ in samples]
    pick = lambda test: Split([s[1] for s, t in zip(samples, is_test, strict=True) if t == test],
                              [s[2] for s, t in zip(samples, is_test, strict=True) if t == test])
    return TaskData(pick(False), pick(True), root)


@register_reader("taskonomy")
def read_taskonomy(spec: TaskSpec, root: Path) -> TaskData:
    """Taskonomy: for each building of a split file, every rgb image with its depth_zbuffer PNG."""
    rgb, depth = root / spec.layout.paths["rgb"], root / spec.layout.paths["depth"]

    def split(key):
        inputs, targets = [], []
        for (building, *_) in _lines(spec, root / spec.layout.paths[key]):
            for f in sorted((rgb / building).glob("*_domain_rgb.png")):
                d = depth / building / f.name.replace("_domain_rgb.png", "_domain_depth_zbuffer.png")
                if d.is_file():
                    inputs.append((str(f),))
                    targets.append(str(d))
        return Split(inputs, targets)

    return TaskData(split("train"), split("test"), root)


@register_reader("kitti_flow")
def read_kitti_flow(spec: TaskSpec, root: Path) -> TaskData:
    """KITTI 2015 flow: (NNNNNN_10.png, NNNNNN_11.png) → flow_occ/NNNNNN_10.png; first 90 % train."""
    img, flow = root / spec.layout.paths["images"], root / spec.layout.paths["flow"]
    ids = sorted(f.name[:-7] for f in img.glob("*_10.png"))
    samples = [((str(img / f"{i}_10.png"), str(img / f"{i}_11.png")), str(flow / f"{i}_10.png")) for i in ids]
    n_train = int(round(0.9 * len(samples)))
    as_split = lambda s: Split([a for a, _ in s], [b for _, b in s])
    return TaskData(as_split(samples[:n_train]), as_split(samples[n_train:]), root)


@dataclass(frozen=True)
class MatSlice:
    """One sample of an array in a MATLAB v7.3 (HDF5) file, read with h5py when used: ``np.asarray(ref)`` is
    ``file[dataset][index]`` transposed from MATLAB's column-major order, e.g. an (H, W, 3) image from NYU's
    (N, 3, W, H) ``images`` or an (H, W) map from its (N, W, H) ``depths``. ``shape`` reads no pixels."""

    path: str
    dataset: str
    index: int

    def _open(self):
        import h5py  # only the published NYU file needs it

        return h5py.File(self.path, "r")

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        with self._open() as f:
            a = np.ascontiguousarray(f[self.dataset][self.index].T)
        return a if dtype is None else a.astype(dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        with self._open() as f:
            return tuple(f[self.dataset].shape[1:][::-1])

    def __str__(self) -> str:
        return f"{self.path}:{self.dataset}[{self.index}]"


@register_reader("nyu_mat")
def read_nyu_mat(spec: TaskSpec, root: Path) -> TaskData:
    """NYU Depth v2 as published: ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3, i.e. HDF5, read with h5py; MATLAB's
    480×640×3×1449 ``images`` uint8 and 480×640×1449 ``depths`` float32 in metres appear transposed, (N, 3, W, H)
    and (N, W, H)) with ``splits.mat`` (MATLAB v5: ``trainNdxs``, ``testNdxs``, 1-based column vectors). Samples
    are ``MatSlice`` refs (nothing decoded here); targets decode with ``decode_depth`` (metres, 0 = missing)."""
    from scipy.io import loadmat

    mat, splits = root / spec.layout.paths["mat"], root / spec.layout.paths["splits"]
    fail = lambda path, problem: TaskDataError(spec.name, path, spec.layout.structure, problem)
    try:
        with MatSlice(str(mat), "images", 0)._open() as f:
            images, depths = f["images"], f["depths"]
            n, hw = images.shape[0], images.shape[2:]
            if images.ndim != 4 or images.shape[1] != 3 or images.dtype != np.uint8 or depths.shape != (n, *hw):
                raise fail(mat, f"'images' {images.dtype} {images.shape} and 'depths' {depths.shape}: expected "
                                "uint8 (N, 3, W, H) and (N, W, H)")
    except (OSError, KeyError) as exc:
        raise fail(mat, f"not a MATLAB v7.3 (HDF5) file with 'images' and 'depths' ({exc})") from exc
    try:
        ndx = loadmat(splits)
        ndx = {k: np.asarray(ndx[k], dtype=np.float64).ravel() for k in ("trainNdxs", "testNdxs")}
    except Exception as exc:  # scipy raises ValueError, MatReadError, … for a file that is no MATLAB v5 file
        raise fail(splits, f"not a MATLAB v5 file with 'trainNdxs' and 'testNdxs' ({type(exc).__name__}: {exc})") \
            from exc
    for key, v in ndx.items():
        bad = v[(v != np.round(v)) | (v < 1) | (v > n)]
        if bad.size:
            raise fail(splits, f"{key}: index {bad[0]:g} out of range 1..{n} (1-based, {n} images in {mat.name})")

    def split(key):
        idx = ndx[key].astype(int) - 1
        return Split([(MatSlice(str(mat), "images", int(i)),) for i in idx],
                     [MatSlice(str(mat), "depths", int(i)) for i in idx])

    return TaskData(split("trainNdxs"), split("testNdxs"), root)


# ------------------------------------------------------------------------------------------------ decoding


def load_image(ref, size: tuple[int, int]) -> torch.Tensor:
    """An RGB image ref (a path, or an HWC uint8 array or array-like such as ``MatSlice``) as a float (3, H, W)
    tensor in [0, 1], resized to ``size`` (bilinear with antialias)."""
    if not isinstance(ref, (str, os.PathLike)):
        arr = np.asarray(ref)
    else:
        with Image.open(ref) as im:
            arr = np.asarray(im.convert("RGB"))
    t = torch.from_numpy(np.array(arr, dtype=np.uint8)).permute(2, 0, 1).float().div_(255)  # a writable copy
    if tuple(t.shape[1:]) != tuple(size):
        t = F.interpolate(t[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
    return t


def _png(ref) -> np.ndarray:
    if not isinstance(ref, (str, os.PathLike)):  # an array-like target (``MatSlice``)
        return np.asarray(ref)
    with Image.open(ref) as im:
        return np.array(im)


def _nearest(t: torch.Tensor, size) -> torch.Tensor:
    """Nearest-neighbour resize of an (H, W) or (C, H, W) tensor."""
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    x = t[None, None] if t.dim() == 2 else t[None]
    out = F.interpolate(x.float(), size=size, mode="nearest")
    return out[0, 0] if t.dim() == 2 else out[0]


_CITYSCAPES_TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
                         26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}  # labelId → trainId; the rest is void


def decode_mask(ref, size, spec: TaskSpec) -> torch.Tensor:
    """Class-index PNG → (H, W) int64."""
    return _nearest(torch.from_numpy(_png(ref).astype(np.int64)), size).long()


def decode_cityscapes(ref, size, spec: TaskSpec) -> torch.Tensor:
    """gtFine labelIds (0..33, one channel) → 19 trainIds, others ``ignore_index``."""
    ids = _png(ref)
    if ids.ndim != 2 or ids.dtype != np.uint8 or int(ids.max(initial=0)) > 33:
        raise ValueError(f"{ref}: not a gtFine labelIds map ({ids.dtype} {ids.shape}, values up to "
                         f"{int(ids.max(initial=0))}; expected one 8-bit channel of label ids 0..33)")
    lut = np.full(256, spec.ignore_index, dtype=np.int64)
    for label_id, train_id in _CITYSCAPES_TRAIN_IDS.items():
        lut[label_id] = train_id
    return _nearest(torch.from_numpy(lut[ids]), size).long()


def decode_cityscapes20(ref, size, spec: TaskSpec) -> torch.Tensor:
    """gtFine labelIds → the study's 20 classes: 0 for void (every id without a trainId), trainId + 1 for the
    others; nothing ignored."""
    train_ids = decode_cityscapes(ref, size, spec)
    return torch.where(train_ids == spec.ignore_index, -1, train_ids) + 1


def decode_binary(ref, size, spec: TaskSpec) -> torch.Tensor:
    """Mask PNG → (H, W) float, 1 where nonzero."""
    return _nearest(torch.from_numpy((_png(ref) > 0).astype(np.float32)), size)


def decode_trimap(ref, size, spec: TaskSpec) -> torch.Tensor:
    """Oxford-IIIT Pet trimap (1 = pet, 2 = background, 3 = border) → (H, W) float, 1 on the pet, 0 elsewhere."""
    trimap = _png(ref)
    if trimap.ndim != 2 or not np.isin(trimap, (1, 2, 3)).all():
        raise ValueError(f"{ref}: not a trimap ({trimap.shape}, values {np.unique(trimap)[:8].tolist()}; "
                         "expected one channel of 1, 2, 3)")
    return _nearest(torch.from_numpy((trimap == 1).astype(np.float32)), size)


def decode_depth(ref, size, spec: TaskSpec) -> torch.Tensor:
    """Depth PNG → (H, W) float metres = value · depth_scale; 0 and ``invalid`` become NaN (ignored)."""
    raw = _png(ref).astype(np.float32)
    if raw.ndim == 3:
        raw = raw[..., 0]
    opts = spec.layout.options
    depth = raw * float(opts.get("depth_scale", 1.0))
    depth[(raw == 0) | (raw == opts.get("invalid", -1))] = np.nan
    return _nearest(torch.from_numpy(depth), size)


def decode_kitti_flow(ref, size, spec: TaskSpec) -> torch.Tensor:
    """KITTI flow PNG → (3, H, W): u, v in pixels of the resized image, valid ∈ {0, 1}.
    u = (R − 2^15)/64 · W'/W, v = (G − 2^15)/64 · H'/H; nearest resize (the flow is sparse)."""
    import torchvision

    # PIL reads 16-bit RGB PNGs as 8-bit; torchvision decodes them but warns that its decoders are deprecated
    # since 0.29 (in favour of torchcodec, not a dependency here). Remove when torchcodec is adopted.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="torchvision")
        raw = torchvision.io.decode_png(torchvision.io.read_file(str(ref)),
                                        mode=torchvision.io.ImageReadMode.UNCHANGED)
    raw = raw.to(torch.int32).float()
    h, w = raw.shape[1:]
    u, v = (raw[0] - 2**15) / 64 * (size[1] / w), (raw[1] - 2**15) / 64 * (size[0] / h)
    return _nearest(torch.stack([u, v, (raw[2] > 0).float()]), size)


def decode_flow_viz(ref, size, spec: TaskSpec) -> torch.Tensor:
    """KITTI's ``viz_flow_occ`` visualisation → (H, W) float: its luminance (PIL's "F" conversion, 0.299 R +
    0.587 G + 0.114 B) / 255, the target the study's code trained on; nearest resize."""
    with Image.open(ref) as im:
        lum = np.asarray(im.convert("RGB").convert("F"), dtype=np.float32) / 255.0
    return _nearest(torch.from_numpy(lum), size)


EGOHANDS_HW = (720, 1280)  # every EgoHands frame; the polygons are in its pixel coordinates


def decode_egohands(ref, size, spec: TaskSpec) -> torch.Tensor:
    """EgoHands polygons (myleft, myright, yourleft, yourright → classes 1..4, 0 background) rasterised at
    720×1280 and resized (nearest)."""
    from scipy.io import loadmat  # only EgoHands needs scipy

    mat, frame = ref
    entries = loadmat(mat)["polygons"][0]
    if frame >= len(entries):
        raise ValueError(f"{mat}: {len(entries)} polygon entries, but frame {frame + 1} of its video has none")
    polys = entries[frame]
    canvas = Image.new("L", EGOHANDS_HW[::-1], 0)
    draw = ImageDraw.Draw(canvas)
    for cls, field in enumerate(("myleft", "myright", "yourleft", "yourright"), start=1):
        pts = np.asarray(polys[field]).reshape(-1, 2)
        if len(pts) >= 3:
            draw.polygon([tuple(map(float, p)) for p in pts], fill=cls)
    return _nearest(torch.from_numpy(np.asarray(canvas).astype(np.int64)), size).long()


def _ref_name(ref, i: int) -> str:
    """The file an image or target ref comes from (EgoHands targets: their polygons.mat)."""
    if isinstance(ref, tuple):
        ref = ref[0]
    return f"<in-memory image of sample {i}>" if isinstance(ref, np.ndarray) else str(ref)


def _native_hw(ref) -> tuple[int, int] | None:
    """(H, W) of an image or target ref without decoding its pixels; EgoHands' polygons are drawn on 720×1280."""
    if isinstance(ref, tuple):
        return EGOHANDS_HW
    if not isinstance(ref, (str, os.PathLike)):
        return tuple(ref.shape[:2])
    with Image.open(ref) as im:
        return im.height, im.width


TARGET_DECODERS: dict[str, Callable] = {
    "mask": decode_mask, "cityscapes": decode_cityscapes, "cityscapes20": decode_cityscapes20,
    "binary": decode_binary, "trimap": decode_trimap,
    "depth": decode_depth, "flow": decode_kitti_flow, "flow_viz": decode_flow_viz, "egohands": decode_egohands,
}
_DEFAULT_DECODER = {"cityscapes": "cityscapes", "egohands": "egohands", "kitti_flow": "flow", "taskonomy": "depth",
                    "nyu_mat": "depth"}


def target_decoder(spec: TaskSpec) -> Callable:
    """The decoder of a pixel task's targets: ``layout.options['target']``, else the reader's, else the target kind."""
    name = spec.layout.options.get("target") or _DEFAULT_DECODER.get(spec.layout.reader) or spec.target
    return TARGET_DECODERS[name]


class TaskDataset(torch.utils.data.Dataset):
    """(images, target) for one split: images (frames, 3, H, W) ImageNet-normalised; target an int64 class
    (image-level) or the decoded target map (pixel tasks). ``augment`` adds the study's pixel-task colour
    jitter (0.4, 0.4, 0.4, 0.1) and random grayscale (p = 0.2) to the images only."""

    def __init__(self, spec: TaskSpec, split: Split, augment: bool = False):
        self.spec, self.split, self.size = spec, split, tuple(spec.image_size)
        self.decode = target_decoder(spec) if spec.pixelwise else None
        self.mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
        self.augment = None
        if augment:
            from torchvision.transforms import v2

            self.augment = v2.Compose([v2.ColorJitter(0.4, 0.4, 0.4, 0.1), v2.RandomGrayscale(0.2)])

    def __len__(self) -> int:
        return len(self.split)

    def _guarded(self, i: int, ref, fn):
        """``fn()``; a failure becomes a ``TaskDataError`` naming the file of ``ref``."""
        try:
            return fn()
        except TaskDataError:
            raise
        except (OSError, ValueError, KeyError, IndexError, RuntimeError) as exc:
            raise TaskDataError(self.spec.name, _ref_name(ref, i), self.spec.layout.structure,
                                f"cannot decode sample {i} ({type(exc).__name__}: {exc})") from exc

    def _check_sizes(self, i: int, refs: tuple, target) -> None:
        """Pixel tasks: every image of a sample and its target map have one size (a target of another size would
        be resized onto the wrong pixels); names the file that differs from the first image."""
        first = self._guarded(i, refs[0], lambda: _native_hw(refs[0]))
        for ref in (*refs[1:], target):
            hw = self._guarded(i, ref, lambda ref=ref: _native_hw(ref))
            if hw is not None and first is not None and hw != first:
                raise TaskDataError(self.spec.name, _ref_name(ref, i), self.spec.layout.structure,
                                    f"sample {i}: {hw[1]}×{hw[0]} (W×H), but its image {_ref_name(refs[0], i)} "
                                    f"is {first[1]}×{first[0]}")

    def __getitem__(self, i):
        refs, label = self.split.inputs[i], self.split.targets[i]
        crops = self.spec.train_crops if self.augment is not None else None
        size = self.size if crops is None else _scaled(self.size, crops.scale)
        images = [self._guarded(i, ref, lambda ref=ref: load_image(ref, size)) for ref in refs]
        if self.decode:
            target = self._guarded(i, label, lambda: self.decode(label, size, self.spec))
            self._check_sizes(i, refs, label)
        else:
            target = torch.tensor(label)
        x = torch.stack(images)
        if self.augment is not None:
            x = torch.stack([self.augment(im) for im in x])  # frames of one sample get independent jitter
        x = (x - self.mean) / self.std
        return (x, target) if crops is None else crop_sample(x, target, crops, self.spec)


def _scaled(size: tuple[int, int], scale: tuple[float, float]) -> tuple[int, int]:
    """``size`` times s ~ U[scale] (torch's generator: seeded by the protocol, per worker by the DataLoader)."""
    s = scale[0] + (scale[1] - scale[0]) * float(torch.rand(()))
    return max(1, round(size[0] * s)), max(1, round(size[1] * s))


def _pad_value(spec: TaskSpec) -> float:
    """What a target is padded with outside the image: invalid flow (0), missing depth or value (NaN), else the
    ignore index."""
    if spec.target == "flow":
        return 0.0
    return float("nan") if spec.target in ("depth", "scalar") else spec.ignore_index


def crop_sample(x: torch.Tensor, target: torch.Tensor, crops: TrainCrops, spec: TaskSpec):
    """``TrainCrops`` on one training sample: normalised images ``x`` (frames, 3, H, W) and their target map
    ((H, W) or (C, H, W)) mirrored together with probability ``crops.flip``, then cut to a ``crops.size`` window
    at a random position (padded: images with 0, the target with ``_pad_value``), redrawn up to 10 times until
    the target shows ``crops.min_classes`` classes."""
    if float(torch.rand(())) < crops.flip:
        x, target = x.flip(-1), target.flip(-1)
    (h, w), (H, W) = crops.size, x.shape[-2:]
    if H < h or W < w:
        x = F.pad(x, (0, max(0, w - W), 0, max(0, h - H)))
        target = F.pad(target[None].float(), (0, max(0, w - W), 0, max(0, h - H)),
                       value=_pad_value(spec))[0].to(target.dtype)
        H, W = x.shape[-2:]
    for _ in range(10):
        top, left = int(torch.randint(0, H - h + 1, ())), int(torch.randint(0, W - w + 1, ()))
        window = target[..., top:top + h, left:left + w]
        if crops.min_classes <= 1 or len(torch.unique(window[window != spec.ignore_index])) >= crops.min_classes:
            break
    return x[..., top:top + h, left:left + w], window

"""Miniature copies of the study's 20 datasets in their published layouts, for the reader tests.

``WRITERS[task](root, rng)`` writes a handful of samples per split (or per class) into ``root`` — the task's data
root, ``data_root / spec.subdir`` — with the dataset's own directory and file names, image formats (8- and 16-bit
PNG, RGBA PNG, JPEG incl. grayscale, CMYK and a PNG named .JPEG, H.264 MP4) and label encodings, and returns a
``Written``: what a correct reader must find. ``MALFORMED[task]`` holds, per kind of damage, a function that
damages a copy at ``root`` and returns the path the resulting error must name.

Formats that have no public distribution (the THOR and nuScenes tasks of ViRB, NYU walkable) are written in the
list layout the catalog documents, with the original image names (ViRB's ``*_rgb.jpg``, nuScenes' ``samples/
CAM_FRONT/<log>__CAM_FRONT__<timestamp>.jpg``). Kinetics: clips are written as H.264 MP4 files in the CVDF
mirror's layout (``{train,val}/<youtube_id>_<start:06d>_<end:06d>.mp4``) and decoded with PyAV into the frames
layout the catalog reads (the extraction step it documents); without PyAV the frames are written directly.
"""

from __future__ import annotations

import io
import json
import pickle
import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from tests.eval.test_tasks import _png16_rgb


@dataclass
class Written:
    """What a writer wrote. ``labels``: sample key → expected target: a class index, or for pixel tasks the
    expected decoded map at the sample's own size (NaN: missing depth; -1 in integer maps: not checked). The key
    is the path of the sample's first image, or ``(split, index)`` for samples inside one file (CIFAR, NYU).
    ``test``: the keys of the test split where the dataset defines it. ``images``: key → the exact HWC uint8
    image (lossless formats). ``frame_means``: key → mean level of each of a clip's frames (Kinetics).
    ``notes``: what the copy has that is special."""

    labels: dict
    test: set | None = None
    images: dict = field(default_factory=dict)
    frame_means: dict = field(default_factory=dict)
    notes: str = ""


# ------------------------------------------------------------------------------------------------ helpers


def _rgb(rng, h: int, w: int) -> np.ndarray:
    """A smooth random colour image (compresses like a photo, unlike white noise)."""
    base = rng.integers(40, 216, 3)
    yy, xx = np.mgrid[0:h, 0:w]
    ramp = (20 * np.sin(xx / max(w, 1) * 6.28 * rng.uniform(0.5, 2)) + 20 * np.cos(yy / max(h, 1) * 3.14))[..., None]
    noise = rng.integers(-12, 13, (h, w, 3))
    return np.clip(base + ramp + noise, 0, 255).astype(np.uint8)


def _size(rng, lo: int = 24, hi: int = 40) -> tuple[int, int]:
    return int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))


def _save(path: Path, arr: np.ndarray, mode: str | None = None, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(arr)
    if mode is not None:
        im = im.convert(mode)
    im.save(path, **kw)
    return path


def _write_lines(path: Path, lines) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def _listed_splits(root: Path, suffix: str, header: str, sizes, sample, notes: str = "") -> Written:
    """One list file ``<split><suffix>`` (``header``, then a row a sample) per (split, n) in ``sizes``;
    ``sample(split, i)`` writes the sample's files and returns (its row, its key path, its expected target)."""
    labels, test = {}, set()
    for split, n in sizes:
        rows = [header]
        for i in range(n):
            row, key, target = sample(split, i)
            rows.append(row)
            labels[str(key)] = target
            if split == "test":
                test.add(str(key))
        _write_lines(root / f"{split}{suffix}", rows)
    return Written(labels, test, notes=notes)


# ------------------------------------------------------------------------------------------------ ImageNet

IMAGENET_WNIDS = sorted(f"n{1440764 + 9973 * i:08d}" for i in range(1000))


def write_imagenet(root: Path, rng) -> Written:
    """train/<wnid>/<wnid>_<n>.JPEG and val/<wnid>/ILSVRC2012_val_<n:08d>.JPEG (val sorted into class folders as
    valprep.sh does), all 1000 classes, one image each; like the real set, one train "JPEG" is a PNG
    (n02105855_2933.JPEG) and one is CMYK."""
    labels, test = {}, set()
    for c, wnid in enumerate(IMAGENET_WNIDS):
        kind = {0: {"format": "PNG"}, 1: {"mode": "CMYK", "format": "JPEG"}}.get(c, {"format": "JPEG"})
        mode = kind.pop("mode", None)
        p = _save(root / "train" / wnid / f"{wnid}_{c + 1}.JPEG", _rgb(rng, *_size(rng)), mode, **kind)
        labels[str(p)] = c
        p = _save(root / "val" / wnid / f"ILSVRC2012_val_{c + 1:08d}.JPEG", _rgb(rng, *_size(rng)), format="JPEG")
        labels[str(p)] = c
        test.add(str(p))
    return Written(labels, test, notes="1000 classes × (1 train + 1 val); a PNG and a CMYK JPEG named .JPEG")


# ------------------------------------------------------------------------------------------------ Oxford-IIIT Pet

PET_BREEDS = [  # CLASS-ID 1..37 (annotations/list.txt); capitalised names are cats (SPECIES 1), the rest dogs (2)
    "Abyssinian", "american_bulldog", "american_pit_bull_terrier", "basset_hound", "beagle", "Bengal", "Birman",
    "Bombay", "boxer", "British_Shorthair", "chihuahua", "Egyptian_Mau", "english_cocker_spaniel", "english_setter",
    "german_shorthaired", "great_pyrenees", "havanese", "japanese_chin", "keeshond", "leonberger", "Maine_Coon",
    "miniature_pinscher", "newfoundland", "Persian", "pomeranian", "pug", "Ragdoll", "Russian_Blue", "saint_bernard",
    "samoyed", "scottish_terrier", "shiba_inu", "Siamese", "Sphynx", "staffordshire_bull_terrier", "wheaten_terrier",
    "yorkshire_terrier"]
PETS_WRITTEN = {"trainval": [("Abyssinian", 100), ("Abyssinian", 101), ("beagle", 12), ("beagle", 13),
                             ("Egyptian_Mau", 20), ("Egyptian_Mau", 21), ("yorkshire_terrier", 7),
                             ("yorkshire_terrier", 8)],
                "test": [("Abyssinian", 201), ("beagle", 30), ("Egyptian_Mau", 40), ("yorkshire_terrier", 50)]}


def _pet_line(breed: str, n: int) -> str:
    species = 1 if breed[0].isupper() else 2
    same = [b for b in PET_BREEDS if (b[0].isupper()) == (species == 1)]
    return f"{breed}_{n} {PET_BREEDS.index(breed) + 1} {species} {same.index(breed) + 1}"


def _write_pets(root: Path, rng) -> tuple[Written, Written]:
    """images/<Breed>_<n>.jpg, annotations/{list,trainval,test}.txt ('<image> <class 1..37> <species> <breed>')
    and annotations/trimaps/<image>.png (8-bit, 1 = pet, 2 = background, 3 = border); image sizes differ, one
    image is a grayscale JPEG."""
    cls, seg, test = {}, {}, set()
    for split, items in PETS_WRITTEN.items():
        for breed, n in items:
            h, w = _size(rng, 28, 40)
            img = root / "images" / f"{breed}_{n}.jpg"
            _save(img, _rgb(rng, h, w), "L" if (breed, n) == ("beagle", 30) else None, quality=90)
            trimap = np.full((h, w), 2, np.uint8)
            y0, x0 = int(rng.integers(2, h // 3)), int(rng.integers(2, w // 3))
            y1, x1 = int(rng.integers(2 * h // 3, h - 2)), int(rng.integers(2 * w // 3, w - 2))
            trimap[y0 - 1:y1 + 1, x0 - 1:x1 + 1] = 3
            trimap[y0:y1, x0:x1] = 1
            _save(root / "annotations" / "trimaps" / f"{breed}_{n}.png", trimap)
            cls[str(img)] = PET_BREEDS.index(breed)
            seg[str(img)] = (trimap == 1).astype(np.float32)
            if split == "test":
                test.add(str(img))
    ann = root / "annotations"
    for split, items in PETS_WRITTEN.items():
        _write_lines(ann / f"{split}.txt", [_pet_line(b, n) for b, n in items])
    _write_lines(ann / "list.txt", ["#Image CLASS-ID SPECIES BREED ID", "#ID: 1:37 Class ids", "#SPECIES: 1:Cat 2:Dog",
                                    "#BREED ID: 1-25:Cat 1:12:Dog", "#All images with 1st letter as captial are cat "
                                    "images", "#images with small first letter are dog images"] +
                 [_pet_line(b, n) for items in PETS_WRITTEN.values() for b, n in items])
    note = "4 breeds (class ids 1, 5, 12, 37) × 3 images, one grayscale JPEG"
    return Written(cls, test, notes=note), Written(seg, test, notes=note + "; trimaps 1/2/3")


def write_pets(root: Path, rng) -> Written:
    return _write_pets(root, rng)[0]


def write_pets_seg(root: Path, rng) -> Written:
    return _write_pets(root, rng)[1]


# ------------------------------------------------------------------------------------------------ CalTech-101

CALTECH_CLASSES = sorted(["accordion", "airplanes", "anchor", "ant", "barrel", "bass", "beaver", "Faces", "Faces_easy",
                          "Leopards", "Motorbikes", "yin_yang"] + [f"category_{i:03d}" for i in range(89)])
CALTECH_BIG = ("Faces", "airplanes", "yin_yang")  # 32 images: 30 train, 2 test; the others have 1 (train)


def write_caltech101(root: Path, rng) -> Written:
    """101_ObjectCategories/<class>/image_NNNN.jpg for the 101 classes and BACKGROUND_Google (skipped by the
    reader); some images grayscale, as in the real set."""
    base, labels, test = root / "101_ObjectCategories", {}, set()
    for c, name in enumerate(CALTECH_CLASSES):
        for k in range(1, 33 if name in CALTECH_BIG else 2):
            p = _save(base / name / f"image_{k:04d}.jpg", _rgb(rng, *_size(rng)), "L" if k % 7 == 3 else None)
            labels[str(p)] = c
            if k > 30:
                test.add(str(p))
    for k in range(1, 4):
        _save(base / "BACKGROUND_Google" / f"image_{k:04d}.jpg", _rgb(rng, *_size(rng)))
    return Written(labels, test, notes="101 classes + BACKGROUND_Google; 3 classes with 32 images (2 test)")


# ------------------------------------------------------------------------------------------------ CIFAR-100


class _Py2Pickler(pickle._Pickler):
    """Pickles as Python 2's cPickle did (CIFAR's batches were written by it): ``bytes`` as (SHORT_)BINSTRING, not
    Python 3's ``_codecs.encode(str, 'latin1')`` reduction that protocol 2 uses for them."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes(self, obj: bytes) -> None:
        n = len(obj)
        self.write((pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def py2_pickle(obj) -> bytes:
    """``obj`` pickled with protocol 2 as Python 2 and numpy 1 wrote it (numpy arrays via
    ``numpy.core.multiarray._reconstruct``)."""
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def _cifar_batch(path: Path, data: np.ndarray, fine: list[int], coarse: list[int], label: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    d = {b"filenames": [f"img_{i}.png".encode() for i in range(len(fine))], b"batch_label": label,
         b"fine_labels": fine, b"coarse_labels": coarse, b"data": data}
    path.write_bytes(py2_pickle(d))


def write_cifar100(root: Path, rng) -> Written:
    """cifar-100-python/{train,test,meta}: pickled dicts with bytes keys (b'data' N×3072 uint8, channel-major
    rows; b'fine_labels', b'coarse_labels', b'filenames', b'batch_label'), read without running code."""
    base, labels, images, test = root / "cifar-100-python", {}, {}, set()
    for split, n in (("train", 24), ("test", 8)):
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        fine = [int(x) for x in rng.integers(0, 100, n)]
        _cifar_batch(base / split, data, fine, [f // 5 for f in fine], f"{split} batch 1 of 1".encode())
        for i in range(n):
            labels[(split, i)] = fine[i]
            images[(split, i)] = data[i].reshape(3, 32, 32).transpose(1, 2, 0)
            if split == "test":
                test.add((split, i))
    (base / "meta").write_bytes(py2_pickle({b"fine_label_names": [f"fine_{i}".encode() for i in range(100)],
                                            b"coarse_label_names": [f"coarse_{i}".encode() for i in range(20)]}))
    return Written(labels, test, images, notes="24 train, 8 test; Python 2 pickles (protocol 2, BINSTRING bytes)")


# ------------------------------------------------------------------------------------------------ SUN397

SUN_CLASSES = ["/a/abbey", "/b/bakery/shop", "/b/beach", "/k/kitchen"]  # '/b/bakery/shop': a class with a sub-dir


def write_sun397(root: Path, rng) -> Written:
    """SUN397/<l>/<class>[/<sub>]/sun_<16 letters>.jpg and Partitions/{Training,Testing}_01.txt, ClassName.txt."""
    labels, test, rows = {}, set(), {"Training": [], "Testing": []}
    for c, name in enumerate(sorted(SUN_CLASSES)):
        for part, k in (("Training", 0), ("Training", 1), ("Testing", 2)):
            rel = f"{name}/sun_{''.join(chr(97 + int(x)) for x in rng.integers(0, 26, 16))}.jpg"
            p = _save(root / "SUN397" / rel.lstrip("/"), _rgb(rng, *_size(rng)), "L" if k == 2 and c == 1 else None)
            rows[part].append(rel)
            labels[str(p)] = c
            if part == "Testing":
                test.add(str(p))
    for part, rels in rows.items():
        _write_lines(root / "Partitions" / f"{part}_01.txt", rels)
    _write_lines(root / "Partitions" / "ClassName.txt", SUN_CLASSES)
    return Written(labels, test, notes="4 classes (one with a sub-category dir) × (2 train + 1 test)")


# ------------------------------------------------------------------------------------------------ EuroSAT

EUROSAT_CLASSES = ["AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial", "Pasture",
                   "PermanentCrop", "Residential", "River", "SeaLake"]


def write_eurosat(root: Path, rng) -> Written:
    """2750/<Class>/<Class>_<n>.jpg (EuroSAT.zip, 64×64 RGB JPEGs), the 10 classes × 6 images."""
    labels = {}
    for c, name in enumerate(EUROSAT_CLASSES):
        for n in range(1, 7):
            labels[str(_save(root / "2750" / name / f"{name}_{n}.jpg", _rgb(rng, 64, 64)))] = c
    return Written(labels, None, notes="10 classes × 6 images of 64×64; test = a hash of the name")


# ------------------------------------------------------------------------------------------------ DTD

DTD_CLASSES = ["banded", "dotted", "zigzagged"]


def write_dtd(root: Path, rng) -> Written:
    """dtd/images/<class>/<class>_NNNN.jpg and dtd/labels/{train,val,test}1.txt ('<class>/<file>.jpg')."""
    labels, test, lists = {}, set(), {"train1": [], "val1": [], "test1": []}
    for c, name in enumerate(DTD_CLASSES):
        for k, part in enumerate(("train1", "val1", "test1", "train1")):
            rel = f"{name}/{name}_{k + 1:04d}.jpg"
            p = _save(root / "dtd" / "images" / rel, _rgb(rng, *_size(rng)))
            lists[part].append(rel)
            labels[str(p)] = c
            if part == "test1":
                test.add(str(p))
    for part, rels in lists.items():
        _write_lines(root / "dtd" / "labels" / f"{part}.txt", rels)
    return Written(labels, test, notes="3 classes × (2 train1 + 1 val1 + 1 test1)")


# ------------------------------------------------------------------------------------------------ Kinetics

KINETICS_CLIPS = [  # label, youtube_id, time_start, time_end, split; the last train clip is gone from YouTube
    ("abseiling", "0347ZoDXyP0", 14, 24, "train"), ("abseiling", "-3B32lodo2M", 59, 69, "train"),
    ("air drumming", "3caPS4FHFF8", 36, 46, "train"), ("air drumming", "Ga1Ao9ZH3Wc", 0, 10, "train"),
    ("playing cello", "pR4r52jB4kI", 112, 122, "train"), ("playing cello", "8DTMkMC9Ny0", 2, 12, "train"),
    ("playing cello", "Qgone000000", 30, 40, "train"),
    ("abseiling", "3E7Jib8Yq5M", 7, 17, "val"), ("air drumming", "oPMnOVM3cGc", 24, 34, "val"),
    ("playing cello", "zX9vK2pL0bQ", 91, 101, "val"),
]
KINETICS_FRAMES = 12  # per clip; frame t is grey level 10 + 20 t (± a tint that keeps the mean)
KINETICS_MISSING = "Qgone000000"


def _clip_name(yid: str, start: int, end: int) -> str:
    return f"{yid}_{start:06d}_{end:06d}"


def _clip_frames(i: int) -> list[np.ndarray]:
    tint = np.array([8, 0, -8]) * (1 if i % 2 else -1)
    return [np.clip(np.full((24, 32, 3), 10 + 20 * t) + tint, 0, 255).astype(np.uint8) for t in range(KINETICS_FRAMES)]


def write_mp4(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    """An H.264 MP4 (yuv420p) of ``frames`` with PyAV."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        stream.options = {"crf": "10", "preset": "ultrafast"}
        for arr in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def extract_clip_frames(video: Path, out_dir: Path, k: int = 6) -> list[int]:
    """Decode ``video`` with PyAV and save ``k`` evenly spaced frames as out_dir/NNNNNN.jpg (1-based, like
    ``ffmpeg -i clip.mp4 %06d.jpg``); returns the indices of the frames kept."""
    import av

    with av.open(str(video)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    pick = np.linspace(0, len(frames) - 1, k).round().astype(int)
    for j, t in enumerate(pick):
        _save(out_dir / f"{j + 1:06d}.jpg", frames[t], quality=95)
    return [int(t) for t in pick]


def write_kinetics(root: Path, rng) -> Written:
    """annotations/{train,validate}.csv (label,youtube_id,time_start,time_end,split,is_cc), clips as H.264 MP4
    under {train,val}/<id>_<start:06d>_<end:06d>.mp4, decoded with PyAV into frames/<clip>/NNNNNN.jpg (6 a clip);
    one CSV row's clip is missing (skipped, as for the videos gone from YouTube)."""
    try:
        import av  # noqa: F401
        have_av = True
    except ImportError:
        have_av = False
    classes = sorted({c[0] for c in KINETICS_CLIPS if c[4] == "train"})
    header = "label,youtube_id,time_start,time_end,split,is_cc"
    for split, fname in (("train", "train.csv"), ("val", "validate.csv")):
        _write_lines(root / "annotations" / fname,
                     [header] + [f"{c[0]},{c[1]},{c[2]},{c[3]},{split},0" for c in KINETICS_CLIPS if c[4] == split])
    labels, test, means = {}, set(), {}
    for i, (label, yid, start, end, split) in enumerate(KINETICS_CLIPS):
        if yid == KINETICS_MISSING:
            continue
        name, frames = _clip_name(yid, start, end), _clip_frames(i)
        if have_av:
            video = write_mp4(root / split / f"{name}.mp4", frames)
            pick = extract_clip_frames(video, root / "frames" / name)
        else:
            pick = np.linspace(0, len(frames) - 1, 6).round().astype(int).tolist()
            for j, t in enumerate(pick):
                _save(root / "frames" / name / f"{j + 1:06d}.jpg", frames[t], quality=95)
        key = str(root / "frames" / name / "000001.jpg")
        labels[key] = classes.index(label)
        means[key] = [10 + 20 * t for t in pick]
        if split == "val":
            test.add(key)
    notes = ("H.264 MP4 clips decoded with PyAV" if have_av else "PyAV missing: frames written directly") + \
        "; 3 classes, 6 train + 3 val clips, 1 missing clip"
    return Written(labels, test, frame_means=means, notes=notes)


# ------------------------------------------------------------------------------------------------ CLEVR


def _clevr_scene(rng, split: str, index: int, count: int) -> dict:
    objects = [{"color": str(rng.choice(["gray", "red", "blue", "green", "brown", "purple", "cyan", "yellow"])),
                "size": str(rng.choice(["large", "small"])), "shape": str(rng.choice(["cube", "sphere", "cylinder"])),
                "material": str(rng.choice(["rubber", "metal"])), "rotation": float(rng.uniform(0, 360)),
                "3d_coords": [float(x) for x in rng.uniform(-3, 3, 3)],
                "pixel_coords": [int(rng.integers(0, 480)), int(rng.integers(0, 320)), float(rng.uniform(8, 14))]}
               for _ in range(count)]
    rel = {d: [[j for j in range(count) if j != i and (j + i + k) % 2] for i in range(count)]
           for k, d in enumerate(("right", "behind", "front", "left"))}
    return {"split": split, "image_index": index, "image_filename": f"CLEVR_{split}_{index:06d}.png",
            "objects": objects, "relationships": rel,
            "directions": {"right": [0.65, 0.75, 0.0], "behind": [-0.75, 0.65, 0.0], "above": [0.0, 0.0, 1.0],
                           "below": [-0.0, -0.0, -1.0], "left": [-0.65, -0.75, -0.0], "front": [0.75, -0.65, -0.0]}}


def write_clevr(root: Path, rng) -> Written:
    """CLEVR_v1.0/images/{train,val,test}/CLEVR_<split>_NNNNNN.png (RGBA PNGs) and scenes/CLEVR_{train,val}_
    scenes.json ({"info", "scenes": [{"image_filename", "objects": [...], ...}]}); class = objects − 3."""
    base, labels, images, test = root / "CLEVR_v1.0", {}, {}, set()
    for split, n in (("train", 10), ("val", 5), ("test", 2)):
        scenes = []
        for i in range(n):
            rgba = np.dstack([_rgb(rng, 32, 48), np.full((32, 48), 255, np.uint8)])
            p = _save(base / "images" / split / f"CLEVR_{split}_{i:06d}.png", rgba)
            if split == "test":  # the test split has images and no scenes
                continue
            count = 3 + (i * 3 + (split == "val")) % 8
            scenes.append(_clevr_scene(rng, split, i, count))
            labels[str(p)], images[str(p)] = count - 3, rgba[..., :3]
            if split == "val":
                test.add(str(p))
        if split != "test":
            info = {"split": split, "license": "Creative Commons Attribution (CC BY 4.0)", "version": "1.0",
                    "date": "2/14/2017"}
            (base / "scenes").mkdir(parents=True, exist_ok=True)
            (base / "scenes" / f"CLEVR_{split}_scenes.json").write_text(json.dumps({"info": info, "scenes": scenes}))
    return Written(labels, test, images, notes="RGBA PNGs; 10 train + 5 val scenes with 3..10 objects")


# ------------------------------------------------------------------------------------------------ THOR, nuScenes


def write_thor_num_steps(root: Path, rng) -> Written:
    """{train,test}.csv 'image,label' over ViRB's images <split>/FloorPlan<k>/<n>_rgb.jpg (label = steps 0..3)."""
    def sample(split, i):
        rel = f"{split}/FloorPlan{1 + i % 3}/{i:03d}_rgb.jpg"
        return f"{rel},{i % 4}", _save(root / rel, _rgb(rng, 32, 32)), i % 4

    return _listed_splits(root, ".csv", "image,label", (("train", 10), ("test", 4)), sample,
                          notes="ViRB image names; 10 train, 4 test")


def _pairs(root: Path, rng, name_pair, hw, n_train=10, n_test=5) -> Written:
    def sample(split, i):
        a, b = name_pair(split, i)
        pa, _ = _save(root / a, _rgb(rng, *hw)), _save(root / b, _rgb(rng, *hw))
        return f"{a},{b},{i % 5}", pa, i % 5

    return _listed_splits(root, ".csv", "view_a,view_b,label", (("train", n_train), ("test", n_test)), sample)


def write_thor_egomotion(root: Path, rng) -> Written:
    """{train,test}.csv 'view_a,view_b,label' over ViRB's <name>_rgb_a.jpg / <name>_rgb_b.jpg (action 0..4)."""
    w = _pairs(root, rng, lambda s, i: (f"{s}/FloorPlan{201 + i}_{i:04d}_rgb_a.jpg",
                                        f"{s}/FloorPlan{201 + i}_{i:04d}_rgb_b.jpg"), (32, 32))
    w.notes = "ViRB image names; 10 train, 5 test pairs"
    return w


NUSCENES_LOG = "n008-2018-08-01-15-16-36-0400"


def write_nuscenes_egomotion(root: Path, rng) -> Written:
    """{train,test}.csv over consecutive nuScenes keyframes samples/CAM_FRONT/<log>__CAM_FRONT__<µs>.jpg (the
    published names; 1600×900 JPEGs, here 32×18)."""
    def names(split, i):
        t = 1533151603512404 + (i + (0 if split == "train" else 50)) * 1_000_000
        return (f"samples/CAM_FRONT/{NUSCENES_LOG}__CAM_FRONT__{t}.jpg",
                f"samples/CAM_FRONT/{NUSCENES_LOG}__CAM_FRONT__{t + 500_000}.jpg")

    w = _pairs(root, rng, names, (18, 32))
    w.notes = "nuScenes sample names; 10 train, 5 test pairs"
    return w


# ------------------------------------------------------------------------------------------------ Cityscapes

CITYSCAPES_LABELS = [  # (name, id, trainId) — cityscapesScripts' helpers/labels.py
    ("unlabeled", 0, 255), ("ego vehicle", 1, 255), ("rectification border", 2, 255), ("out of roi", 3, 255),
    ("static", 4, 255), ("dynamic", 5, 255), ("ground", 6, 255), ("road", 7, 0), ("sidewalk", 8, 1),
    ("parking", 9, 255), ("rail track", 10, 255), ("building", 11, 2), ("wall", 12, 3), ("fence", 13, 4),
    ("guard rail", 14, 255), ("bridge", 15, 255), ("tunnel", 16, 255), ("pole", 17, 5), ("polegroup", 18, 255),
    ("traffic light", 19, 6), ("traffic sign", 20, 7), ("vegetation", 21, 8), ("terrain", 22, 9), ("sky", 23, 10),
    ("person", 24, 11), ("rider", 25, 12), ("car", 26, 13), ("truck", 27, 14), ("bus", 28, 15),
    ("caravan", 29, 255), ("trailer", 30, 255), ("train", 31, 16), ("motorcycle", 32, 17), ("bicycle", 33, 18),
    ("license plate", -1, -1)]
CITYSCAPES_FILES = {"train": [("aachen", 0, 19), ("aachen", 1, 19), ("bochum", 0, 1), ("bochum", 3, 5)],
                    "val": [("frankfurt", 0, 294), ("munster", 5, 19)]}
CITYSCAPES_HW = (16, 32)


def _cityscapes_stem(city, seq, frame) -> str:
    return f"{city}_{seq:06d}_{frame:06d}"


def write_cityscapes(root: Path, rng) -> Written:
    """leftImg8bit/{train,val}/<city>/<city>_<seq>_<frame>_leftImg8bit.png (8-bit RGB) and gtFine/.../
    *_gtFine_{labelIds,color,instanceIds}.png + *_gtFine_polygons.json (labelIds 8-bit 0..33, instanceIds
    16-bit); labelIds decode to the official trainIds, the rest void (255)."""
    to_train = {i: t for _, i, t in CITYSCAPES_LABELS if i >= 0}
    colors = np.array([[(7 * i) % 256, (53 * i) % 256, (101 * i) % 256] for i in range(34)], np.uint8)
    labels, images, test = {}, {}, set()
    h, w = CITYSCAPES_HW
    for split, files in CITYSCAPES_FILES.items():
        for city, seq, frame in files:
            stem = _cityscapes_stem(city, seq, frame)
            img = _rgb(rng, h, w)
            p = _save(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", img)
            ids = np.repeat(np.repeat(rng.integers(0, 34, (h // 4, w // 4)), 4, 0), 4, 1).astype(np.uint8)
            ids[0, :4] = [7, 26, 0, 33]  # road, car, unlabeled, bicycle
            gt = root / "gtFine" / split / city
            _save(gt / f"{stem}_gtFine_labelIds.png", ids)
            _save(gt / f"{stem}_gtFine_color.png", colors[ids])
            instances = np.where(ids >= 24, ids.astype(np.uint16) * 1000 + 1, ids).astype(np.uint16)  # id·1000+n
            _save(gt / f"{stem}_gtFine_instanceIds.png", instances)
            (gt / f"{stem}_gtFine_polygons.json").write_text(json.dumps({"imgHeight": h, "imgWidth": w, "objects": []}))
            labels[str(p)] = np.vectorize(to_train.get)(ids).astype(np.int64)
            images[str(p)] = img
            if split == "val":
                test.add(str(p))
    return Written(labels, test, images, notes="4 train + 2 val of 16×32 (1:2 like 1024×2048); every labelId 0..33")


# ------------------------------------------------------------------------------------------------ EgoHands

EGOHANDS_VIDEOS = ["CARDS_COURTYARD_B_T", "CARDS_OFFICE_S_B", "CHESS_COURTYARD_B_T", "CHESS_LIVINGROOM_T_H",
                   "JENGA_OFFICE_H_T", "PUZZLE_COURTYARD_H_S"]  # sorted; the 6th is test (every 6th video)
EGOHANDS_FRAMES = ("frame_0011.jpg", "frame_0143.jpg")
EGOHANDS_FIELDS = ("myleft", "myright", "yourleft", "yourright")


def _egohands_polygons(path: Path, per_frame: list[dict]) -> None:
    from scipy.io import savemat

    polys = np.zeros((1, len(per_frame)), dtype=[(f, object) for f in EGOHANDS_FIELDS])
    for j, hands in enumerate(per_frame):
        polys[0, j] = tuple(hands.get(f, np.zeros((0, 0))) for f in EGOHANDS_FIELDS)
    savemat(path, {"polygons": polys})


def write_egohands(root: Path, rng) -> Written:
    """_LABELLED_SAMPLES/<VIDEO>/frame_NNNN.jpg (1280×720 JPEGs) + polygons.mat (struct 'polygons' 1×frames with
    fields myleft, myright, yourleft, yourright: N×2 [x y] or empty), 6 videos × 2 frames."""
    labels, test = {}, set()
    quadrant = {"myleft": (360, 0), "myright": (360, 640), "yourleft": (0, 640), "yourright": (0, 0)}  # (y, x)
    for v, video in enumerate(EGOHANDS_VIDEOS):
        per_frame = []
        for j, fname in enumerate(EGOHANDS_FRAMES):
            p = _save(root / "_LABELLED_SAMPLES" / video / fname, _rgb(rng, 720, 1280), quality=80)
            expected = np.zeros((720, 1280), np.int16)
            hands = {}
            present = EGOHANDS_FIELDS if v == 5 or j == 0 else EGOHANDS_FIELDS[v % 4:v % 4 + 1]
            for cls, f in enumerate(EGOHANDS_FIELDS, start=1):
                if f not in present:
                    continue
                qy, qx = quadrant[f]
                y0, x0 = qy + int(rng.integers(20, 120)), qx + int(rng.integers(20, 200))
                y1, x1 = y0 + int(rng.integers(80, 200)), x0 + int(rng.integers(100, 400))
                hands[f] = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=float)
                expected[y0 - 1:y1 + 2, x0 - 1:x1 + 2] = -1  # the outline: not checked
                expected[y0 + 1:y1 - 1, x0 + 1:x1 - 1] = cls
            per_frame.append(hands)
            labels[str(p)] = expected
            if v == 5:
                test.add(str(p))
        _egohands_polygons(root / "_LABELLED_SAMPLES" / video / "polygons.mat", per_frame)
    return Written(labels, test, notes="6 videos × 2 frames of 1280×720; hands as rectangles, every hand in test")


# ------------------------------------------------------------------------------------------------ NYU

NYU_HW, NYU_N = (24, 32), 8
NYU_TRAIN, NYU_TEST = [1, 2, 4, 5, 7], [3, 6, 8]  # 1-based, as in splits.mat
MATLAB_73_HEADER = "MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Sep 17 16:12:49 2012 HDF5 schema 1.00 ."


def write_nyu_mat(path: Path, images: np.ndarray, depths: np.ndarray) -> None:
    """A MATLAB v7.3 file as MATLAB writes it: HDF5 after a 512-byte user block with MATLAB's text header, arrays
    stored column-major, i.e. transposed: ``images`` (N, H, W, 3) → (N, 3, W, H), ``depths`` (N, H, W) → (N, W, H),
    each with its MATLAB_class attribute."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, arr, cls in (("images", images.transpose(0, 3, 2, 1), b"uint8"),
                               ("depths", depths.transpose(0, 2, 1), b"single"),
                               ("rawDepths", np.where(depths > 8, 0, depths).transpose(0, 2, 1), b"single"),
                               ("labels", (depths * 10).astype(np.uint16).transpose(0, 2, 1), b"uint16")):
            f.create_dataset(name, data=np.ascontiguousarray(arr))
            f[name].attrs["MATLAB_class"] = np.bytes_(cls)
    header = MATLAB_73_HEADER.encode().ljust(116, b" ") + b"\0" * 8 + struct.pack("<H", 0x0200) + b"IM"
    with open(path, "r+b") as f:
        f.write(header)


def write_nyu_depth(root: Path, rng) -> Written:
    """nyu_depth_v2_labeled.mat (MATLAB v7.3 = HDF5: 'images', 'depths' in metres, 'rawDepths', 'labels') and
    splits.mat (MATLAB v5: 'trainNdxs', 'testNdxs' 1-based column vectors of doubles)."""
    from scipy.io import savemat

    h, w = NYU_HW
    images = np.stack([_rgb(rng, h, w) for _ in range(NYU_N)])
    yy, xx = np.mgrid[0:h, 0:w]
    depths = np.stack([(1 + 0.2 * k + 0.1 * xx + 0.05 * yy + rng.uniform(0, 0.5, (h, w))).astype(np.float32)
                       for k in range(NYU_N)])
    write_nyu_mat(root / "nyu_depth_v2_labeled.mat", images, depths)
    savemat(root / "splits.mat", {"trainNdxs": np.array(NYU_TRAIN, float)[:, None],
                                  "testNdxs": np.array(NYU_TEST, float)[:, None]})
    labels, imgs, test = {}, {}, set()
    for split, idx in (("train", NYU_TRAIN), ("test", NYU_TEST)):
        for i, n in enumerate(idx):
            labels[(split, i)], imgs[(split, i)] = depths[n - 1], images[n - 1]
            if split == "test":
                test.add((split, i))
    return Written(labels, test, imgs, notes=f"{NYU_N} images of 24×32, splits 5/3; MATLAB v7.3 user block")


def write_nyu_walkable(root: Path, rng) -> Written:
    """walkable/{train,test}.txt 'image,mask' over images exported from the labeled set (images/NNNN.png, 8-bit
    RGB) and walkable masks (walkable/masks/NNNN.png, 8-bit, nonzero = walkable)."""
    labels, test = {}, set()
    h, w = NYU_HW
    for split, idx in (("train", range(1, 9)), ("test", range(9, 12))):
        rows = []
        for n in idx:
            img = _save(root / "images" / f"{n:04d}.png", _rgb(rng, h, w))
            mask = np.zeros((h, w), np.uint8)
            mask[h // 2 + int(rng.integers(-3, 4)):, :] = 255 if n % 2 else 1
            _save(root / "walkable" / "masks" / f"{n:04d}.png", mask)
            rows.append(f"images/{n:04d}.png,walkable/masks/{n:04d}.png")
            labels[str(img)] = (mask > 0).astype(np.float32)
            if split == "test":
                test.add(str(img))
        _write_lines(root / "walkable" / f"{split}.txt", rows)
    return Written(labels, test, notes="8 train, 3 test; masks 0/255 and 0/1")


# ------------------------------------------------------------------------------------------------ THOR depth


def write_thor_depth(root: Path, rng) -> Written:
    """{train,test}.txt 'image,depth' over <split>/FloorPlan<k>/<n>_rgb.jpg and <n>_depth.png (16-bit mm)."""
    def sample(split, i):
        stem = f"{split}/FloorPlan{1 + i % 2}/{i:03d}"
        img = _save(root / f"{stem}_rgb.jpg", _rgb(rng, 32, 32))
        mm = rng.integers(400, 6000, (32, 32)).astype(np.uint16)
        mm[0, :3] = 0  # missing
        _save(root / f"{stem}_depth.png", mm)
        depth = mm.astype(np.float32) / 1000
        depth[mm == 0] = np.nan
        return f"{stem}_rgb.jpg,{stem}_depth.png", img, depth

    return _listed_splits(root, ".txt", "image,depth", (("train", 8), ("test", 3)), sample,
                          notes="16-bit PNG millimetres, 0 = missing; 8 train, 3 test")


# ------------------------------------------------------------------------------------------------ Taskonomy

TASKONOMY_BUILDINGS = {"train": ["allensville", "beechwood"], "test": ["collierville"]}


def write_taskonomy(root: Path, rng) -> Written:
    """rgb/<building>/point_<p>_view_<v>_domain_rgb.png and depth_zbuffer/<building>/..._domain_depth_zbuffer.png
    (16-bit, 1/512 m, 65535 = no depth), splits/{train,test}.txt (buildings)."""
    labels, test = {}, set()
    for split, buildings in TASKONOMY_BUILDINGS.items():
        for b in buildings:
            for p, v in ((0, 0), (0, 3), (12, 1)):
                stem = f"point_{p}_view_{v}_domain"
                img = _save(root / "rgb" / b / f"{stem}_rgb.png", _rgb(rng, 32, 32))
                raw = rng.integers(256, 8 * 512, (32, 32)).astype(np.uint16)
                raw[-2:, :] = 65535  # sky / no geometry
                _save(root / "depth_zbuffer" / b / f"{stem}_depth_zbuffer.png", raw)
                depth = raw.astype(np.float32) / 512
                depth[raw == 65535] = np.nan
                labels[str(img)] = depth
                if split == "test":
                    test.add(str(img))
        _write_lines(root / "splits" / f"{split}.txt", buildings)
    return Written(labels, test, notes="2 train buildings + 1 test, 3 views each; 65535 = invalid")


# ------------------------------------------------------------------------------------------------ KITTI

KITTI_HW, KITTI_PAIRS = (12, 40), 10


def write_kitti_flow(root: Path, rng) -> Written:
    """training/image_2/NNNNNN_{10,11}.png (8-bit RGB), training/flow_occ/NNNNNN_10.png and flow_noc (16-bit RGB:
    u = (R − 2^15)/64, v = (G − 2^15)/64, B = valid; invalid pixels all 0), and training/viz_flow_occ/NNNNNN_10.png
    (8-bit RGB visualisations, black where the flow is invalid: the paper form's target)."""
    labels, images, test = {}, {}, set()
    h, w = KITTI_HW
    for i in range(KITTI_PAIRS):
        im10, im11 = _rgb(rng, h, w), _rgb(rng, h, w)
        p = _save(root / "training" / "image_2" / f"{i:06d}_10.png", im10)
        _save(root / "training" / "image_2" / f"{i:06d}_11.png", im11)
        uv = np.round(rng.uniform(-20, 20, (h, w, 2)) * 64)
        valid = rng.uniform(size=(h, w)) < 0.7
        valid[0, 0] = True
        flow = np.zeros((h, w, 3), np.uint16)
        flow[valid, :2] = (uv[valid] + 2**15).astype(np.uint16)
        flow[valid, 2] = 1
        _png16_rgb(root / "training" / "flow_occ" / f"{i:06d}_10.png", flow)
        noc = flow.copy()
        noc[:, : w // 4] = 0
        _png16_rgb(root / "training" / "flow_noc" / f"{i:06d}_10.png", noc)
        viz = (np.clip(np.abs(uv) * 4, 0, 255) * valid[..., None]).astype(np.uint8)
        _save(root / "training" / "viz_flow_occ" / f"{i:06d}_10.png", np.dstack([viz, viz[..., :1] // 2]))
        raw = flow.astype(np.float32)
        labels[str(p)] = np.stack([(raw[..., 0] - 2**15) / 64, (raw[..., 1] - 2**15) / 64, raw[..., 2]])
        images[str(p)] = im10
        if i >= KITTI_PAIRS - 1:
            test.add(str(p))
    return Written(labels, test, images, notes=f"{KITTI_PAIRS} pairs of 12×40 (9 train, 1 test); flow_noc and "
                   "viz_flow_occ beside")


# ------------------------------------------------------------------------------------------------ registry

WRITERS: dict[str, Callable[[Path, np.random.Generator], Written]] = {
    "imagenet": write_imagenet, "pets": write_pets, "caltech101": write_caltech101, "cifar100": write_cifar100,
    "sun397": write_sun397, "eurosat": write_eurosat, "dtd": write_dtd, "kinetics": write_kinetics,
    "clevr-count": write_clevr, "thor-num-steps": write_thor_num_steps, "thor-egomotion": write_thor_egomotion,
    "nuscenes-egomotion": write_nuscenes_egomotion, "cityscapes": write_cityscapes, "pets-seg": write_pets_seg,
    "egohands": write_egohands, "nyu-depth": write_nyu_depth, "nyu-walkable": write_nyu_walkable,
    "thor-depth": write_thor_depth, "taskonomy-depth": write_taskonomy, "kitti-flow": write_kitti_flow,
}


# ------------------------------------------------------------------------------------------------ damage

def _rm(rel: str):
    def damage(root: Path) -> Path:
        p = root / rel
        shutil.rmtree(p) if p.is_dir() else p.unlink()
        return p
    return damage


def _garble(rel: str):
    def damage(root: Path) -> Path:
        p = root / rel
        p.write_bytes(b"\x00\x01 this is not an image \xff\xfe" * 8)
        return p
    return damage


def _resized(rel: str, dh: int = 3, dw: int = 0):
    """The image at ``rel`` saved again dh rows and dw columns larger (its mode and bit depth kept)."""
    def damage(root: Path) -> Path:
        p = root / rel
        with Image.open(p) as im:
            im.load()
            im.resize((im.width + dw, im.height + dh), Image.NEAREST).save(p, format=im.format)
        return p
    return damage


def _edit(rel: str, fn: Callable[[list[str]], list[str]]):
    def damage(root: Path) -> Path:
        p = root / rel
        p.write_text("".join(f"{line}\n" for line in fn(p.read_text().splitlines())))
        return p
    return damage


def _extra_class(folder: str, name: str, also: str | None = None):
    """A class folder more than the dataset has (in ``folder``, and in ``also`` when given)."""
    def damage(root: Path) -> Path:
        for f in (folder, also):
            if f:
                _save(root / f / name / f"{name}_1.jpg", np.full((24, 24, 3), 90, np.uint8))
        return root / folder
    return damage


def _cifar_test(fine_labels=None, columns=3072):
    def damage(root: Path) -> Path:
        p = root / "cifar-100-python" / "test"
        data = np.zeros((4, columns), np.uint8)
        fine = fine_labels or [0, 1, 2, 3]
        _cifar_batch(p, data, fine, [0] * 4, b"test batch 1 of 1")
        return p
    return damage


def _clevr_eleven(root: Path) -> Path:
    p = root / "CLEVR_v1.0" / "scenes" / "CLEVR_val_scenes.json"
    d = json.loads(p.read_text())
    d["scenes"][0]["objects"] = d["scenes"][0]["objects"][:1] * 11  # 11 objects: class 8, the task has 0..7
    p.write_text(json.dumps(d))
    return p


def _trimap_value_4(root: Path) -> Path:
    p = root / "annotations" / "trimaps" / "Abyssinian_201.png"
    t = np.array(Image.open(p))
    t[0, 0] = 4
    _save(p, t)
    return p


def _cityscapes_id_34(root: Path) -> Path:
    p = root / "gtFine" / "val" / "frankfurt" / f"{_cityscapes_stem('frankfurt', 0, 294)}_gtFine_labelIds.png"
    ids = np.array(Image.open(p))
    ids[3, 3] = 34
    _save(p, ids)
    return p


def _egohands_short(root: Path) -> Path:
    p = root / "_LABELLED_SAMPLES" / EGOHANDS_VIDEOS[5] / "polygons.mat"
    _egohands_polygons(p, [{}])  # one entry for two frames
    return p


def _egohands_small_frame(root: Path) -> Path:
    p = root / "_LABELLED_SAMPLES" / EGOHANDS_VIDEOS[5] / EGOHANDS_FRAMES[0]
    _save(p, np.full((360, 640, 3), 100, np.uint8))
    return p


def _nyu_split_past_end(root: Path) -> Path:
    from scipy.io import savemat

    p = root / "splits.mat"
    savemat(p, {"trainNdxs": np.array(NYU_TRAIN, float)[:, None], "testNdxs": np.array([3, NYU_N + 1], float)[:, None]})
    return p


def _nyu_depths_other_size(root: Path) -> Path:
    p = root / "nyu_depth_v2_labeled.mat"
    h, w = NYU_HW
    write_nyu_mat(p, np.zeros((NYU_N, h, w, 3), np.uint8), np.ones((NYU_N, h + 2, w), np.float32))
    return p


def _kitti_flow_other_size(root: Path) -> Path:
    p = root / "training" / "flow_occ" / f"{KITTI_PAIRS - 1:06d}_10.png"
    h, w = KITTI_HW
    _png16_rgb(p, np.zeros((h, w + 2, 3), np.uint16))
    return p


def _kinetics_too_many_labels(root: Path) -> Path:
    extra = [f"extra label {i:03d},Xextra{i:05d},0,10,train,0" for i in range(400)]
    return _edit("annotations/train.csv", lambda lines: lines + extra)(root)


_PET_TEST, _CITY_VAL = "images/Abyssinian_201.jpg", f"leftImg8bit/val/frankfurt/{_cityscapes_stem('frankfurt', 0, 294)}"
_CLIP = _clip_name("3E7Jib8Yq5M", 7, 17)

MALFORMED: dict[str, dict[str, Callable[[Path], Path]]] = {
    # kinds: missing_split (a split file or the tree a split comes from), label_out_of_range, unreadable_image,
    # wrong_size (a target map or image of another size than its sample's image; CIFAR: rows not 3072 bytes)
    "imagenet": {"missing_split": _rm("val"),
                 "label_out_of_range": _extra_class("train", "n99999999", also="val"),
                 "unreadable_image": _garble(f"val/{IMAGENET_WNIDS[0]}/ILSVRC2012_val_00000001.JPEG")},
    "pets": {"missing_split": _rm("annotations/test.txt"),
             "label_out_of_range": _edit("annotations/test.txt", lambda ls: [ls[0].replace(" 1 1 1", " 38 1 1")] +
                                         ls[1:]),
             "unreadable_image": _garble(_PET_TEST)},
    "caltech101": {"missing_split": _rm("101_ObjectCategories"),
                   "label_out_of_range": _extra_class("101_ObjectCategories", "zebra"),
                   "unreadable_image": _garble("101_ObjectCategories/Faces/image_0031.jpg")},
    "cifar100": {"missing_split": _rm("cifar-100-python/test"),
                 "label_out_of_range": _cifar_test(fine_labels=[0, 1, 100, 3]),
                 "unreadable_image": lambda root: _garble("cifar-100-python/test")(root),
                 "wrong_size": _cifar_test(columns=3 * 28 * 28)},
    "sun397": {"missing_split": _rm("Partitions/Testing_01.txt"),
               "label_out_of_range": _edit("Partitions/Testing_01.txt", lambda ls: ls + ["/z/zoo/sun_zzzz.jpg"]),
               "unreadable_image": lambda root: _garble(
                   "SUN397/" + (root / "Partitions/Testing_01.txt").read_text().split()[0].lstrip("/"))(root)},
    "eurosat": {"missing_split": _rm("2750"),
                "label_out_of_range": _extra_class("2750", "Glacier"),
                "unreadable_image": _garble("2750/Forest/Forest_3.jpg")},
    "dtd": {"missing_split": _rm("dtd/labels/test1.txt"),
            "label_out_of_range": _edit("dtd/labels/test1.txt", lambda ls: ls + ["zebra/zebra_0001.jpg"]),
            "unreadable_image": _garble("dtd/images/dotted/dotted_0003.jpg")},
    "kinetics": {"missing_split": _rm("annotations/validate.csv"),
                 "label_out_of_range": _kinetics_too_many_labels,
                 "unreadable_image": _garble(f"frames/{_CLIP}/000006.jpg")},
    "clevr-count": {"missing_split": _rm("CLEVR_v1.0/scenes/CLEVR_val_scenes.json"),
                    "label_out_of_range": _clevr_eleven,
                    "unreadable_image": _garble("CLEVR_v1.0/images/val/CLEVR_val_000002.png")},
    "thor-num-steps": {"missing_split": _rm("test.csv"),
                       "label_out_of_range": _edit("test.csv", lambda ls: ls[:1] + [ls[1].rsplit(",", 1)[0] + ",4"] +
                                                   ls[2:]),
                       "unreadable_image": _garble("test/FloorPlan2/001_rgb.jpg")},
    "thor-egomotion": {"missing_split": _rm("test.csv"),
                       "label_out_of_range": _edit("test.csv", lambda ls: ls[:1] + [ls[1].rsplit(",", 1)[0] + ",5"] +
                                                   ls[2:]),
                       "unreadable_image": _garble("test/FloorPlan202_0001_rgb_b.jpg")},
    "nuscenes-egomotion": {"missing_split": _rm("test.csv"),
                           "label_out_of_range": _edit("test.csv", lambda ls: ls[:1] + [ls[1].rsplit(",", 1)[0] +
                                                                                        ",7"] + ls[2:]),
                           "unreadable_image": _garble(f"samples/CAM_FRONT/{NUSCENES_LOG}__CAM_FRONT__"
                                                       f"{1533151603512404 + 51_000_000 + 500_000}.jpg")},
    "cityscapes": {"missing_split": _rm("gtFine/val"),
                   "label_out_of_range": _cityscapes_id_34,
                   "unreadable_image": _garble(f"{_CITY_VAL}_leftImg8bit.png"),
                   "wrong_size": _resized(f"gtFine/val/frankfurt/{_cityscapes_stem('frankfurt', 0, 294)}"
                                          "_gtFine_labelIds.png")},
    "pets-seg": {"missing_split": _rm("annotations/trainval.txt"),
                 "label_out_of_range": _trimap_value_4,
                 "unreadable_image": _garble(_PET_TEST),
                 "wrong_size": _resized("annotations/trimaps/Abyssinian_201.png", dw=2)},
    "egohands": {"missing_split": _rm(f"_LABELLED_SAMPLES/{EGOHANDS_VIDEOS[5]}/polygons.mat"),
                 "label_out_of_range": _egohands_short,
                 "unreadable_image": _garble(f"_LABELLED_SAMPLES/{EGOHANDS_VIDEOS[5]}/{EGOHANDS_FRAMES[1]}"),
                 "wrong_size": _egohands_small_frame},
    "nyu-depth": {"missing_split": _rm("splits.mat"),
                  "label_out_of_range": _nyu_split_past_end,
                  "unreadable_image": _garble("nyu_depth_v2_labeled.mat"),
                  "wrong_size": _nyu_depths_other_size},
    "nyu-walkable": {"missing_split": _rm("walkable/test.txt"),
                     "unreadable_image": _garble("images/0010.png"),
                     "wrong_size": _resized("walkable/masks/0010.png")},
    "thor-depth": {"missing_split": _rm("test.txt"),
                   "unreadable_image": _garble("test/FloorPlan2/001_rgb.jpg"),
                   "wrong_size": _resized("test/FloorPlan2/001_depth.png")},
    "taskonomy-depth": {"missing_split": _rm("splits/test.txt"),
                        "unreadable_image": _garble("rgb/collierville/point_0_view_3_domain_rgb.png"),
                        "wrong_size": _resized("depth_zbuffer/collierville/point_0_view_3_domain_depth_zbuffer.png")},
    "kitti-flow": {"missing_split": _rm("training/flow_occ"),
                   "unreadable_image": _garble(f"training/image_2/{KITTI_PAIRS - 1:06d}_11.png"),
                   "wrong_size": _kitti_flow_other_size},
}
NO_RANGE = {  # tasks whose label encoding has no out-of-range value, and why
    "nyu-walkable": "masks: any nonzero value is walkable", "thor-depth": "depth: any 16-bit value is a depth",
    "taskonomy-depth": "depth: any 16-bit value is a depth (65535 = none)",
    "kitti-flow": "flow: any 16-bit value is a flow; valid = B > 0",
}

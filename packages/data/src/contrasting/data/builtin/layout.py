"""On-disk layouts of the built-in world: the layouts the real datasets use, read by ``contrasting.data.sources``.

Every entry (corpus or task) is a folder; each split is a sub-folder plus a list file beside it, whose paths are
relative to the list's folder (``FileListSource`` / ``PairListSource`` resolve them that way)::

    image-folder    <entry>/<split>/<NN>_<class>/<index>.png     ImageFolder/ImageNet: sorted folders = class index
                    <entry>/<split>.txt       <split>/<NN>_<class>/<index>.png,<label>
    pair-list       <entry>/<split>/images/<index>.png           RGB input
                    <entry>/<split>/targets/<index>.png          uint8 class mask or uint16 depth PNG
                    <entry>/<split>.txt       <split>/images/<index>.png,<split>/targets/<index>.png
    view-pair-list  <entry>/<split>/a/<index>.png, <entry>/<split>/b/<index>.png   two views of one scene
                    <entry>/<split>.txt       <split>/a/<index>.png,<split>/b/<index>.png,<label>
                    <entry>/<split>_extra.csv header, then one row of named numbers per pair (same order)

Images are PNG (lossless, so a seed determines the bytes), written by a minimal encoder (:func:`encode_png`).
Depth is stored as ``round(depth · DEPTH_SCALE)`` in a 16-bit PNG, depth in units of the background plane (1.0).
"""

from __future__ import annotations

import csv
import os
import struct
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from contrasting.data.builtin.registry import KINDS, Sample

DEPTH_SCALE = 10000  # uint16 depth units per background-plane distance (resolution 1e-4; max 6.5535)
PNG_COMPRESS_LEVEL = 1  # zlib level: 6 saves ~17 % of the bytes at twice the encoding time
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LAYOUTS = ("image-folder", "pair-list", "view-pair-list")


def class_folder(index: int, name: str) -> str:
    """Folder name of class ``index``: zero-padded index first, so sorted folder names give class indices."""
    return f"{index:02d}_{name}"


def item_name(index: int) -> str:
    """File name of item ``index`` of a split."""
    return f"{index:06d}.png"


def encode_depth(depth: np.ndarray) -> np.ndarray:
    """Float depth (background plane = 1.0) → uint16 ``round(depth · DEPTH_SCALE)``; ValueError out of range."""
    scaled = np.rint(np.asarray(depth, np.float64) * DEPTH_SCALE)
    if scaled.min() < 0 or scaled.max() > np.iinfo(np.uint16).max:
        raise ValueError(f"depth out of the uint16 range at DEPTH_SCALE={DEPTH_SCALE}")
    return scaled.astype(np.uint16)


def decode_depth(stored: np.ndarray) -> np.ndarray:
    """uint16 PNG values → float32 depth in units of the background plane."""
    return np.asarray(stored, np.float32) / DEPTH_SCALE


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of uint8 (H, W) grey, uint8 (H, W, 3) RGB or uint16 (H, W) grey; a pure function of the array.

    A minimal encoder (signature, IHDR, one IDAT, IEND; filter type 0 on every row; zlib level
    PNG_COMPRESS_LEVEL): 7× faster than Pillow's for 64×64 images and no larger on these flat-coloured images.
    """
    array = np.asarray(array)
    if array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3:
        depth, colour_type = 8, 2
    elif array.dtype in (np.uint8, np.uint16) and array.ndim == 2:
        depth, colour_type = array.dtype.itemsize * 8, 0
    else:
        raise TypeError(f"encode_png: expected uint8 (H, W[, 3]) or uint16 (H, W), got {array.dtype} {array.shape}")
    height, width = array.shape[:2]
    rows = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder(">")).view(np.uint8).reshape(height, -1)
    raw = np.zeros((height, rows.shape[1] + 1), np.uint8)  # column 0: the row's filter type (0 = none)
    raw[:, 1:] = rows

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return (PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw.tobytes(), PNG_COMPRESS_LEVEL))
            + chunk(b"IEND", b""))


def write_png(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write :func:`encode_png` of the array to ``path``; identical arrays give identical files."""
    with open(path, "wb") as f:
        f.write(encode_png(array))


def read_png(path: str | os.PathLike) -> np.ndarray:
    """Read a PNG written by :func:`write_png` back to the same array (uint16 stays uint16)."""
    with Image.open(path) as image:
        if image.mode in ("I;16", "I;16B", "I"):
            return np.asarray(image, dtype=np.uint16)
        return np.asarray(image)


def write_list(path: str | os.PathLike, rows: Iterable[Sequence]) -> None:
    """Write a list file: one comma-separated row per line, UTF-8, ``\\n`` endings."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(",".join(str(v) for v in row) + "\n" for row in rows)


def read_list(path: str | os.PathLike) -> list[list[str]]:
    """Rows of a list file (comma-separated; blank lines and ``#`` comments skipped); a reference reader for
    the view-pair-list layout, which ``contrasting.data.sources`` has no source for."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                rows.append(line.split(","))
    return rows


def write_extra(path: str | os.PathLike, rows: Sequence[dict]) -> None:
    """Write the per-item named numbers of a split as CSV with a header (nothing when there are none)."""
    if not rows or not rows[0]:
        return
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def split_folders(layout: str, split: str, classes: Sequence[str] | None) -> list[str]:
    """Sub-folders (relative to the entry folder) that a split of this layout writes into."""
    if layout == "image-folder":
        return [f"{split}/{class_folder(i, c)}" for i, c in enumerate(classes)]
    if layout == "pair-list":
        return [f"{split}/images", f"{split}/targets"]
    if layout == "view-pair-list":
        return [f"{split}/a", f"{split}/b"]
    raise ValueError(f"layout: expected one of {LAYOUTS}, got {layout!r}")


def write_sample(entry_dir: str | os.PathLike, kind: str, split: str, index: int, label: int | None,
                 classes: Sequence[str] | None, sample: Sample) -> list:
    """Write one item's files under ``entry_dir`` (folders from :func:`split_folders` must exist) and return its
    list row (paths relative to ``entry_dir``, then the label where the layout has one)."""
    entry_dir = Path(entry_dir)
    layout = KINDS[kind].layout
    name = item_name(index)
    if layout == "image-folder":
        rel = f"{split}/{class_folder(label, classes[label])}/{name}"
        write_png(entry_dir / rel, sample.image)
        return [rel, label]
    if layout == "pair-list":
        image, target = f"{split}/images/{name}", f"{split}/targets/{name}"
        write_png(entry_dir / image, sample.image)
        write_png(entry_dir / target, sample.target)
        return [image, target]
    a, b = f"{split}/a/{name}", f"{split}/b/{name}"
    write_png(entry_dir / a, sample.image)
    write_png(entry_dir / b, sample.image_b)
    return [a, b, label]

"""Where samples come from: an image-folder tree, a file list, in-memory arrays, image/target pair lists.

Every source exposes ``samples`` — a list of ``(path or index, label)`` (``label`` None when the source has
none; for ``PairListSource`` the second entry is the target path) — ``__len__`` and, where the layout names
them, ``classes``. Sources only list; ``scan_source`` checks the files (existence, header, truncation,
optionally a full decode) and returns the ``Catalog`` the executors read, with the ``on_error`` policy:

* ``"raise"`` (default): the first scan that finds unusable files raises ``UnreadableImageError`` naming
  them (path and reason);
* ``"skip"``: they are left out of every epoch and counted in each epoch's report (and a warning).

Decoding conventions shared by both executors (tested against PIL): EXIF orientation is applied; grayscale,
CMYK, palette and alpha images become RGB (alpha dropped, as PIL's ``convert("RGB")``). JPEG, PNG and WebP
are decoded natively by DALI and torchvision; anything else PIL can read (BMP, TIFF, GIF, 16-bit PNG, …) is
*transcoded*: decoded by PIL, converted to 8-bit RGB and re-encoded as PNG in memory, so both executors see
identical pixels.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .atomic import atomic_write_text

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm", ".pgm", ".pbm")
ON_ERROR = ("raise", "skip")
CHECKS = ("header", "full")
# (format, mode) pairs DALI's and torchvision's decoders both turn into the same RGB as PIL's convert("RGB")
NATIVE = {
    "JPEG": {"L", "RGB", "CMYK"},
    "PNG": {"L", "LA", "P", "RGB", "RGBA"},
    "WEBP": {"RGB", "RGBA"},
}
TAIL_BYTES = 4096  # a complete JPEG/PNG ends with its end marker within this many bytes
EXIF_ORIENTATION = 0x0112
TRANSPOSED_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height
MASK_MODES = ("L", "P")
DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I")


class UnreadableImageError(ValueError):
    """Files that cannot be used; ``rejected`` lists (path, reason) pairs."""

    def __init__(self, rejected: list[tuple[str, str]], hint: str = ""):
        self.rejected = list(rejected)
        shown = "\n".join(f"  {p}: {why}" for p, why in self.rejected[:10])
        more = f"\n  ... and {len(self.rejected) - 10} more" if len(self.rejected) > 10 else ""
        super().__init__(f"{len(self.rejected)} unreadable image file(s):\n{shown}{more}{hint}")


def _resolve(p: str, base: Path) -> str:
    path = Path(p)
    return str(path if path.is_absolute() else base / path)


def _check_list_path(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"file list {path} does not exist")
    if not path.is_file():
        raise ValueError(f"file list {path} is not a file")
    return path


class ImageFolderSource:
    """``root/<class>/**/<image>``: classes are the sorted sub-folder names, label = class index.

    Files are those with an image extension (case-insensitive), sorted, found recursively (like
    torchvision's ``ImageFolder``). A missing root raises FileNotFoundError; a root with no class folders or
    no image files raises ValueError.
    """

    def __init__(self, root: str | os.PathLike, extensions: Sequence[str] = IMAGE_EXTENSIONS):
        root = Path(root)
        if not root.exists():
            raise FileNotFoundError(f"ImageFolderSource: {root} does not exist")
        if not root.is_dir():
            raise NotADirectoryError(f"ImageFolderSource: {root} is not a directory")
        self.root = root
        self.classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
        if not self.classes:
            raise ValueError(f"ImageFolderSource: {root} has no class sub-folders (expected root/<class>/<image>)")
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        exts = tuple(e.lower() for e in extensions)
        self.samples: list[tuple[str, int | None]] = []
        for c in self.classes:
            for dirpath, dirnames, filenames in sorted(os.walk(root / c, followlinks=True)):
                dirnames.sort()
                for f in sorted(filenames):
                    if f.lower().endswith(exts):
                        self.samples.append((os.path.join(dirpath, f), self.class_to_idx[c]))
        if not self.samples:
            raise ValueError(f"ImageFolderSource: no image files ({', '.join(exts)}) under {root}")

    def __len__(self) -> int:
        return len(self.samples)

    def __repr__(self) -> str:
        return f"ImageFolderSource({str(self.root)!r}, {len(self)} images, {len(self.classes)} classes)"


class FileListSource:
    """A text file of ``path[,label]`` lines; relative paths resolve against ``root`` or the list's folder.

    Blank lines and ``#`` comments are ignored; a ``# classes: [...]`` (JSON) header names the classes. Either
    every line has an integer label or none has (labels None). Paths must not contain commas or newlines.
    Missing files are reported by the scan (``on_error``), not here.
    """

    def __init__(self, path: str | os.PathLike, root: str | os.PathLike | None = None):
        path = _check_list_path(path)
        base = Path(root) if root is not None else path.parent
        self.path, self.root, self.classes = path, base, None
        samples: list[tuple[str, int | None]] = []
        for lineno, raw in enumerate(path.read_text().splitlines(), 1):
            line = raw.strip()
            if line.startswith("# classes:"):
                self.classes = list(json.loads(line[len("# classes:"):]))
                continue
            if not line or line.startswith("#"):
                continue
            label = None
            if "," in line:
                p, lab = line.rsplit(",", 1)
                try:
                    label = int(lab)
                except ValueError:
                    raise ValueError(f"{path}:{lineno}: label {lab.strip()!r} is not an integer "
                                     "(expected 'path[,label]')") from None
                line = p.strip()
            samples.append((_resolve(line, base), label))
        if not samples:
            raise ValueError(f"FileListSource: {path} lists no files")
        if len({lab is None for _, lab in samples}) > 1:
            raise ValueError(f"FileListSource: {path} mixes labelled and unlabelled lines")
        self.samples = samples

    @classmethod
    def from_samples(cls, samples: Iterable[tuple[str, int | None]], classes: Sequence[str] | None = None,
                     root: str | os.PathLike | None = None) -> FileListSource:
        """An in-memory list (no file): ``samples`` of (path, label), paths relative to ``root`` if given."""
        self = cls.__new__(cls)
        base = Path(root) if root is not None else None
        self.path, self.root = None, base
        self.classes = list(classes) if classes is not None else None
        self.samples = [(_resolve(str(p), base) if base is not None else str(p), lab) for p, lab in samples]
        if not self.samples:
            raise ValueError("FileListSource.from_samples: no samples")
        return self

    def __len__(self) -> int:
        return len(self.samples)

    def __repr__(self) -> str:
        return f"FileListSource({str(self.path)!r}, {len(self)} images)"


class PairListSource:
    """A text file of ``image_path,target_path`` lines (dense tasks); relative paths as in FileListSource.

    The target is a PNG of the image's size: an 8-bit class mask (mode L or P: palette indices) or a 16-bit
    depth map. ``samples`` holds (image path, target path).
    """

    def __init__(self, path: str | os.PathLike, root: str | os.PathLike | None = None):
        path = _check_list_path(path)
        base = Path(root) if root is not None else path.parent
        self.path, self.root, self.classes = path, base, None
        self.samples: list[tuple[str, str]] = []
        for lineno, raw in enumerate(path.read_text().splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            parts = [s.strip() for s in line.split(",")]
            if len(parts) != 2 or not all(parts):
                raise ValueError(f"{path}:{lineno}: expected 'image_path,target_path', got {line!r}")
            self.samples.append((_resolve(parts[0], base), _resolve(parts[1], base)))
        if not self.samples:
            raise ValueError(f"PairListSource: {path} lists no pairs")

    def __len__(self) -> int:
        return len(self.samples)


class ArraySource:
    """In-memory images ``(N, H, W, 3)`` uint8 with optional ``labels`` (N,) and dense ``targets``.

    ``targets``: (N, H, W) uint8 masks or uint16 depth, or (N, H, W, 2) float32 optical flow (u, v in pixels).
    """

    def __init__(self, images: np.ndarray, labels=None, targets: np.ndarray | None = None):
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
            shape = getattr(images, "shape", None)
            raise ValueError(f"ArraySource.images: expected a uint8 array (N, H, W, 3), got "
                             f"{type(images).__name__} {getattr(images, 'dtype', '')} {shape}")
        if len(images) == 0 or images.shape[1] == 0 or images.shape[2] == 0:
            raise ValueError(f"ArraySource.images: empty array {images.shape}")
        self.images = images
        self.labels = None
        if labels is not None:
            labels = np.asarray(labels)
            if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
                raise ValueError(f"ArraySource.labels: expected {len(images)} integers, got {labels.dtype} "
                                 f"{labels.shape}")
            self.labels = labels.astype(np.int64)
        self.targets = None
        if targets is not None:
            ok = (isinstance(targets, np.ndarray) and targets.shape[:3] == images.shape[:3] and (
                (targets.ndim == 3 and targets.dtype in (np.uint8, np.uint16))
                or (targets.ndim == 4 and targets.shape[3] == 2 and targets.dtype == np.float32)))
            if not ok:
                raise ValueError("ArraySource.targets: expected (N, H, W) uint8/uint16 or (N, H, W, 2) float32 "
                                 f"matching images {images.shape[:3]}, got {getattr(targets, 'dtype', '')} "
                                 f"{getattr(targets, 'shape', None)}")
            self.targets = targets
        self.classes = None
        self.samples = [(i, None if self.labels is None else int(self.labels[i])) for i in range(len(images))]

    def __len__(self) -> int:
        return len(self.images)


def _check_sample_path(p) -> str:
    s = str(p)
    if "," in s or "\n" in s:
        raise ValueError(f"file list: path {s!r} contains a comma or newline")
    return s


def write_file_list(path: str | os.PathLike, samples: Iterable[tuple], *, root: str | os.PathLike | None = None,
                    classes: Sequence[str] | None = None, header: str | None = None) -> Path:
    """Write ``samples`` ((path, label) or (path,)) as ``path[,label]`` lines; FileListSource reads it back.

    With ``root``, paths are written relative to it (a shareable list: read it with ``root=`` the local copy
    of the corpus). ``classes`` adds a ``# classes: [...]`` header; ``header`` extra ``#`` comment lines.
    Returns the path written.
    """
    path = Path(path)
    lines = [f"# {h}" for h in (header.splitlines() if header else [])]
    if classes is not None:
        lines.append("# classes: " + json.dumps(list(classes)))
    for s in samples:
        p = s[0]
        label = s[1] if len(s) > 1 else None
        p = os.path.relpath(p, root) if root is not None else str(p)
        lines.append(_check_sample_path(p) + ("" if label is None else f",{int(label)}"))
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, "\n".join(lines) + "\n")


def write_pair_list(path: str | os.PathLike, pairs: Iterable[tuple], *, root: str | os.PathLike | None = None) -> Path:
    """Write (image path, target path) pairs as ``image,target`` lines (relative to ``root`` if given)."""
    path = Path(path)
    rel = (lambda p: os.path.relpath(p, root)) if root is not None else str
    lines = [f"{_check_sample_path(rel(a))},{_check_sample_path(rel(b))}" for a, b in pairs]
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, "\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------------- scanning
@dataclass
class ImageInfo:
    """Header facts of one usable image: oriented (height, width) and whether it must be transcoded."""

    height: int
    width: int
    transcode: bool


def inspect_image(path: str, check: str = "header") -> ImageInfo:
    """Header check of one image file; raises ValueError(reason) when the file is unusable.

    ``"header"``: the file exists, is non-empty, PIL identifies it, and a JPEG/PNG ends with its end marker
    (a truncated file does not); non-native formats are fully decoded. ``"full"``: every file is decoded.
    """
    try:
        nbytes = os.path.getsize(path)
    except OSError:
        raise ValueError("missing file") from None
    if nbytes == 0:
        raise ValueError("empty file")
    try:
        with Image.open(path) as im:
            fmt, mode, (w, h) = im.format, im.mode, im.size
            orientation = im.getexif().get(EXIF_ORIENTATION, 1) if fmt in ("JPEG", "WEBP", "PNG", "TIFF") else 1
            transcode = mode not in NATIVE.get(fmt, ())
            if check == "full" or transcode:
                im.load()
    except UnidentifiedImageError:
        raise ValueError("not an image PIL can identify") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ValueError(f"cannot be decoded ({e})") from None
    if fmt in ("JPEG", "PNG"):
        marker = b"\xff\xd9" if fmt == "JPEG" else b"IEND"
        with open(path, "rb") as f:
            f.seek(max(0, nbytes - TAIL_BYTES))
            if marker not in f.read():
                raise ValueError(f"truncated {fmt} (no end marker)")
    if w < 1 or h < 1:
        raise ValueError(f"empty image {w}x{h}")
    if orientation in TRANSPOSED_ORIENTATIONS:
        w, h = h, w
    return ImageInfo(h, w, transcode)


def inspect_target(path: str, image_hw: tuple[int, int]) -> np.dtype:
    """Check a dense target PNG (8-bit mask or 16-bit depth, the image's size); returns its dtype."""
    if not os.path.exists(path):
        raise ValueError(f"missing target {path}")
    try:
        with Image.open(path) as im:
            fmt, mode, (w, h) = im.format, im.mode, im.size
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"target {path} cannot be read ({e})") from None
    if fmt != "PNG" or mode not in MASK_MODES + DEPTH_MODES:
        raise ValueError(f"target {path}: expected an 8-bit (L/P) or 16-bit PNG, got {fmt} mode {mode}")
    if (h, w) != tuple(image_hw):
        raise ValueError(f"target {path} is {w}x{h} but the image is {image_hw[1]}x{image_hw[0]}")
    return np.dtype(np.uint8) if mode in MASK_MODES else np.dtype(np.uint16)


@dataclass
class Catalog:
    """The usable samples of a source, after the scan; what the executors read.

    ``index`` maps catalog rows to ``source.samples``; ``sizes`` (n, 2) = oriented (H, W); ``labels`` (n,)
    int64 or None; ``paths``/``target_paths`` for file sources (None for arrays); ``transcode`` (n,) bool;
    ``target_dtype`` for pair sources; ``rejected`` the (path, reason) pairs left out.
    """

    source: object
    index: np.ndarray
    sizes: np.ndarray
    labels: np.ndarray | None
    paths: list[str] | None
    target_paths: list[str] | None = None
    transcode: np.ndarray | None = None
    target_dtype: np.dtype | None = None
    rejected: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def is_array(self) -> bool:
        """True for in-memory arrays (nothing to decode)."""
        return self.paths is None


def scan_source(source, *, check: str = "header", on_error: str = "raise", num_threads: int = 8) -> Catalog:
    """Inspect every file of ``source`` (thread pool) and build its Catalog under the ``on_error`` policy.

    Raises UnreadableImageError (on_error="raise") naming each unusable file, or, with "skip", keeps them in
    ``catalog.rejected``; raises ValueError if nothing usable is left.
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error: expected one of {ON_ERROR}, got {on_error!r}")
    if check not in CHECKS:
        raise ValueError(f"check: expected one of {CHECKS}, got {check!r}")
    if isinstance(source, ArraySource):
        n = len(source)
        sizes = np.tile(np.asarray(source.images.shape[1:3], np.int64), (n, 1))
        return Catalog(source, np.arange(n), sizes, source.labels, None)
    if not hasattr(source, "samples"):
        raise TypeError(f"scan_source: expected a source with .samples, got {type(source).__name__}")
    pairs = isinstance(source, PairListSource)
    image_paths = [str(p) for p, _ in source.samples]

    def one(i):
        try:
            info = inspect_image(image_paths[i], check)
            tdtype = inspect_target(source.samples[i][1], (info.height, info.width)) if pairs else None
            return info, tdtype
        except ValueError as e:
            return str(e), None

    with ThreadPoolExecutor(max(1, num_threads)) as pool:
        results = list(pool.map(one, range(len(image_paths))))
    keep = [i for i, (r, _) in enumerate(results) if isinstance(r, ImageInfo)]
    rejected = [(image_paths[i], r) for i, (r, _) in enumerate(results) if not isinstance(r, ImageInfo)]
    if rejected and on_error == "raise":
        raise UnreadableImageError(rejected, "\n(on_error='skip' leaves them out and reports them each epoch)")
    if not keep:
        raise ValueError(f"no usable image in {source!r} ({len(rejected)} rejected)")
    target_dtype = None
    if pairs:
        dtypes = {results[i][1] for i in keep}
        if len(dtypes) > 1:
            raise ValueError("PairListSource: targets mix 8-bit and 16-bit PNGs")
        target_dtype = dtypes.pop()
    labels = None
    if not pairs and source.samples[0][1] is not None:
        labels = np.asarray([source.samples[i][1] for i in keep], dtype=np.int64)
    return Catalog(
        source=source,
        index=np.asarray(keep, dtype=np.int64),
        sizes=np.asarray([(results[i][0].height, results[i][0].width) for i in keep], dtype=np.int64).reshape(-1, 2),
        labels=labels,
        paths=[image_paths[i] for i in keep],
        target_paths=[source.samples[i][1] for i in keep] if pairs else None,
        transcode=np.asarray([results[i][0].transcode for i in keep], dtype=bool),
        target_dtype=target_dtype,
        rejected=rejected,
    )


# --------------------------------------------------------------------------------------------- reading
def pil_rgb(path: str) -> Image.Image:
    """PIL's decode of ``path`` as 8-bit RGB with EXIF orientation applied (16-bit data scaled by 1/257)."""
    with Image.open(path) as im:
        if im.getexif().get(EXIF_ORIENTATION, 1) != 1:
            im = ImageOps.exif_transpose(im)
        if im.mode in DEPTH_MODES or im.mode == "F":
            a = np.asarray(im, dtype=np.float64)
            scale = 1.0 / 257.0 if im.mode != "F" else 255.0
            im = Image.fromarray(np.clip(np.round(a * scale), 0, 255).astype(np.uint8), "L")
        if im.mode == "RGB":
            im.load()  # before the file closes
            return im
        return im.convert("RGB")


def read_encoded(path: str, transcode: bool) -> np.ndarray:
    """The bytes a decoder gets for ``path``: the file itself, or (``transcode``) PIL's RGB as a PNG."""
    if not transcode:
        return np.fromfile(path, dtype=np.uint8)
    buf = io.BytesIO()
    pil_rgb(path).save(buf, format="PNG", compress_level=1)
    return np.frombuffer(buf.getvalue(), dtype=np.uint8)


def read_target(path: str, dtype: np.dtype) -> np.ndarray:
    """A dense target PNG as an (H, W) array of ``dtype`` (palette masks keep their indices)."""
    with Image.open(path) as im:
        return np.asarray(im).astype(dtype, copy=False)

"""The torchvision (v2) executor: the reference every other backend is compared with, and the benchmark baseline.

``apply_view`` runs one view of one sample with *given* parameters through torchvision's v2 functional
kernels on uint8 tensors — exactly what ``v2.RandomResizedCrop``, ``v2.ColorJitter`` & co. do after their
``make_params`` — and ``TorchvisionLoader`` feeds batches through a ``torch.utils.data.DataLoader`` whose
workers each build a whole batch. ``torchvision_transforms`` builds the plain torchvision pipeline of a recipe
(its own random sampling) for code that wants no loader; ``tests/data`` checks that our sampler
(``params.py``) reproduces its distributions.

Dense targets: the crop and flips of the image, with ``NEAREST_EXACT`` interpolation for masks and depth
(pixel centres, as DALI's ``INTERP_NN``), bilinear without antialiasing for flow, whose vectors are scaled by
the resize factors and whose u component changes sign under a horizontal flip.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.transforms import InterpolationMode, v2
from torchvision.transforms.v2 import functional as F

from ..params import ViewParams
from ..recipes import Recipe, View
from ..sources import Catalog, pil_rgb, read_target


def decode(path: str) -> torch.Tensor:
    """(3, H, W) uint8 RGB of an image file: PIL's decode (libjpeg-turbo, as DALI's CPU decoder), EXIF
    orientation applied, any mode converted as ``convert("RGB")`` (torchvision's own decoders are deprecated
    since 0.29 in favour of TorchCodec)."""
    return torch.from_numpy(np.array(pil_rgb(path))).permute(2, 0, 1)


def _apply_op(img: torch.Tensor, op, params: dict, i: int) -> torch.Tensor:
    return op.torchvision_one(img, params, i) if params["apply"][i] else img


def _geometry(img: torch.Tensor, vp: ViewParams, i: int, interpolation, antialias: bool) -> torch.Tensor:
    top, left, h, w = (int(v) for v in vp.crop[i])
    size = vp.view.size
    if vp.resize is not None:
        img = F.resize(img, [int(v) for v in vp.resize[i]], interpolation=interpolation, antialias=antialias)
        return F.crop(img, top, left, h, w)
    return F.resized_crop(img, top, left, h, w, [size, size], interpolation=interpolation, antialias=antialias)


def apply_view(img: torch.Tensor, vp: ViewParams, i: int, mean, std) -> torch.Tensor:
    """Sample ``i`` of view ``vp`` from a (3, H, W) uint8 image: (3, S, S) float32, normalised.

    Geometry (bilinear, antialiased), then the view's ops in declaration order, each if its ``apply`` is
    set; finally ``to_dtype(float32, scale=True)`` and ``normalize(mean, std)``.
    """
    img = _geometry(img, vp, i, InterpolationMode.BILINEAR, True)
    for op, params in zip(vp.view.ops, vp.ops, strict=True):
        img = _apply_op(img, op, params, i)
    return F.normalize(F.to_dtype(img, torch.float32, scale=True), list(mean), list(std))


def apply_target(target: torch.Tensor, vp: ViewParams, i: int, kind: str) -> torch.Tensor:
    """The geometric part of view ``vp`` applied to a (C, H, W) target: mask → (S, S) int64,
    depth → (1, S, S) float32, flow (2, H, W) → (2, S, S) float32 with vectors rescaled and u mirrored."""
    if kind == "flow":
        top, left, h, w = (int(v) for v in vp.crop[i])
        t = _geometry(target.float(), vp, i, InterpolationMode.BILINEAR, False)
        if vp.resize is not None:
            sy, sx = vp.resize[i][0] / target.shape[1], vp.resize[i][1] / target.shape[2]
        else:
            sy, sx = vp.view.size / h, vp.view.size / w
        t = t * torch.tensor([sx, sy], dtype=torch.float32).view(2, 1, 1)
        if vp.flip[i]:
            t = F.horizontal_flip(t) * torch.tensor([-1.0, 1.0]).view(2, 1, 1)
        return t
    t = _geometry(target.float(), vp, i, InterpolationMode.NEAREST_EXACT, False)
    if vp.flip[i]:
        t = F.horizontal_flip(t)
    return t[0].long() if kind == "mask" else t


def load_image(catalog: Catalog, row: int) -> torch.Tensor:
    """(3, H, W) uint8 image of catalog row ``row`` (decoded file or in-memory array)."""
    if catalog.is_array:
        return torch.from_numpy(catalog.source.images[catalog.index[row]]).permute(2, 0, 1)
    path = catalog.paths[row]
    try:
        return decode(path)
    except Exception as e:  # the decoder's message does not always name the file
        raise RuntimeError(f"cannot decode {path}: {e}") from e


def load_target(catalog: Catalog, row: int) -> torch.Tensor:
    """(C, H, W) target of catalog row ``row``."""
    if catalog.is_array:
        t = torch.from_numpy(np.ascontiguousarray(catalog.source.targets[catalog.index[row]]))
        return t.permute(2, 0, 1) if t.dim() == 3 else t.unsqueeze(0)
    return torch.from_numpy(read_target(catalog.target_paths[row], catalog.target_dtype).astype(np.int32))[None]


def run_batch(recipe: Recipe, catalog: Catalog, rows: np.ndarray, views: list[ViewParams]) -> dict:
    """One batch: {"views": [(n, 3, S, S)], "labels": (n,) or None, "targets": [...] or None, "rows": (n,)}."""
    out_views = [[] for _ in views]
    out_targets = [[] for _ in views] if recipe.target else None
    for i, row in enumerate(rows):
        img = load_image(catalog, int(row))
        target = load_target(catalog, int(row)) if recipe.target else None
        for v, vp in enumerate(views):
            out_views[v].append(apply_view(img, vp, i, recipe.mean, recipe.std))
            if target is not None:
                out_targets[v].append(apply_target(target, vp, i, recipe.target))
    labels = None if catalog.labels is None else torch.from_numpy(catalog.labels[rows])
    return {
        "views": [torch.stack(v) for v in out_views],
        "labels": labels,
        "targets": None if out_targets is None else [torch.stack(t) for t in out_targets],
        "rows": torch.from_numpy(np.asarray(rows, dtype=np.int64)),
    }


class TaskDataset(torch.utils.data.Dataset):
    """Map-style dataset whose "index" is a whole task (rows, view params): one item = one batch."""

    def __init__(self, recipe: Recipe, catalog: Catalog):
        self.recipe, self.catalog = recipe, catalog

    def __getitem__(self, task):
        rows, views = task
        return run_batch(self.recipe, self.catalog, rows, views)


class TaskSampler(torch.utils.data.Sampler):
    """Yields the tasks of the current epoch (set by the loader before each epoch)."""

    def __init__(self):
        self.tasks: list = []

    def __iter__(self):
        return iter(self.tasks)

    def __len__(self) -> int:
        return len(self.tasks)


def identity(x):
    """collate_fn of batch-level tasks: the worker already built the batch."""
    return x


# --------------------------------------------------------------------------------------------- plain torchvision
def view_transform(view: View, mean, std) -> v2.Compose:
    """The plain torchvision v2 pipeline of one view (uint8 (3, H, W) in, normalised float out)."""
    if view.crop == "random_resized":
        geometry = [v2.RandomResizedCrop(view.size, scale=view.scale, ratio=view.ratio, antialias=True)]
    elif view.crop == "resize":
        geometry = [v2.Resize((view.size, view.size), antialias=True)]
    else:
        geometry = [v2.Resize(view.resize_to, antialias=True), v2.CenterCrop(view.size)]
    ops = [op.torchvision_transform(view.size) for op in view.ops]
    tail = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    return v2.Compose(geometry + ops + tail)


def torchvision_transforms(recipe: Recipe) -> list[v2.Compose]:
    """One plain torchvision v2 pipeline per output view of ``recipe`` (count expanded; image only)."""
    return [view_transform(v, recipe.mean, recipe.std) for v in recipe.expanded_views()]

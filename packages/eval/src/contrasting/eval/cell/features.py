"""Frozen-feature cache of the image-level tasks: each split is encoded once, all head settings reuse it.

Features are the pooled embeddings, (N, frames, D) in float16 (as in the study), kept in memory or, with
a cache directory, in a memory-mapped file::

    <cache_dir>/<key>.f16    raw little-endian float16, C order, shape from the header
    <cache_dir>/<key>.json   {"key": {...fields...}, "shape": [N, k, D], "sha256": "<hex of the .f16 bytes>"}

``key`` is the SHA-256 of the key fields (encoder fingerprint, task, task version, split, image size, a
digest of the sample list). Writing is atomic: data and header go to temporary names and are renamed, the
header last, so a header only ever describes a complete file. Before reuse the header's key and shape, the
file's size and its checksum are verified; anything that does not match is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from contrasting.data.atomic import atomic_output, atomic_write_text
from contrasting.data.executors.workers import dataloader_kwargs
from contrasting.encoders.training.precision import cpu_has_fast_bf16
from contrasting.eval.catalog.readers import TaskDataset

CHUNK = 1 << 24  # bytes per read when checksumming a cache file (16 MiB)


def refs_digest(inputs) -> str:
    """SHA-256 over a split's image refs (paths as text, in-memory images by their bytes)."""
    h = hashlib.sha256()
    for sample in inputs:
        for ref in sample:
            h.update(ref.tobytes() if isinstance(ref, np.ndarray) else str(ref).encode())
            h.update(b"\0")
    return h.hexdigest()


def autocast(device: torch.device):
    """Mixed precision: on CUDA bfloat16 where supported, else float16; on a CPU bfloat16 where it has bf16
    matrix instructions (``contrasting.encoders.training.precision``: 2–4× faster there), else none."""
    if device.type != "cuda":
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=cpu_has_fast_bf16())
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def encode_images(encoder, x: torch.Tensor, device: torch.device) -> dict[str, torch.Tensor]:
    """Frozen features of a batch of samples x: (B, k, 3, H, W) → the encoder's dict with a frame axis
    inserted after the batch axis ((B, k, ...)), computed under no_grad and, on CUDA, autocast."""
    b, k = x.shape[:2]
    with torch.no_grad(), autocast(device):
        feats = encoder(x.to(device, non_blocking=True).flatten(0, 1))
    return {name: f.float().reshape(b, k, *f.shape[1:]) for name, f in feats.items()}


def pooled(feats: dict[str, torch.Tensor], grid: int = 1) -> torch.Tensor:
    """The image-level feature of ``encode_images``' output: the embedding (global average pool of stage 4) for
    ``grid`` 1, else stage 4 average-pooled on a ``grid``×``grid`` grid and flattened (B, k, D·grid²), for tasks
    about where things are (a global average discards position)."""
    if grid == 1:
        return feats["embedding"]
    s4 = feats["stage4"]
    b, k = s4.shape[:2]
    return F.adaptive_avg_pool2d(s4.flatten(0, 1), grid).reshape(b, k, -1)


def encode_split(encoder, dataset: TaskDataset, out: np.ndarray, *, device: torch.device, batch_size: int = 64,
                 num_workers: int = 0, progress: bool = False, grid: int = 1) -> None:
    """Write the pooled embeddings (``pooled(…, grid)``) of every sample of ``dataset`` into ``out`` (N, k, D)
    float16, in order."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False,
                                         **dataloader_kwargs(num_workers))
    start = 0
    for i, (x, _) in enumerate(loader):
        e = pooled(encode_images(encoder, x, device), grid)
        out[start:start + len(e)] = e.cpu().numpy().astype(np.float16)
        start += len(e)
        if progress and (i % 20 == 0 or start == len(dataset)):
            print(f"  encoded {start}/{len(dataset)}", file=sys.stderr, flush=True)
    if start != len(out):
        raise RuntimeError(f"encoded {start} samples, expected {len(out)}")


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def _valid_cache(data: Path, header: Path, key: dict, shape: tuple) -> bool:
    try:
        meta = json.loads(header.read_text())
    except (OSError, ValueError):
        return False
    if meta.get("key") != key or tuple(meta.get("shape", ())) != tuple(shape):
        return False
    if not data.is_file() or data.stat().st_size != int(np.prod(shape)) * 2:
        return False
    return _sha256_file(data) == meta.get("sha256")


def cached_features(key: dict, shape: tuple[int, ...], compute: Callable[[np.ndarray], None],
                    cache_dir: os.PathLike | str | None = None, progress: bool = False) -> tuple[np.ndarray, bool]:
    """Features of ``shape`` for ``key``: ``compute(out)`` fills a float16 array when there is no valid cache.

    Returns (array, hit). Without ``cache_dir`` the array is in memory and never a hit; with one it is a
    read-only ``np.memmap`` of the verified (or freshly written) file.
    """
    shape = tuple(int(s) for s in shape)
    if cache_dir is None:
        out = np.empty(shape, dtype=np.float16)
        compute(out)
        return out, False
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:40]
    data, header = cache_dir / f"{name}.f16", cache_dir / f"{name}.json"
    if header.exists():
        if _valid_cache(data, header, key, shape):
            return np.memmap(data, dtype=np.float16, mode="r", shape=shape), True
        if progress:
            print(f"  cache {data} is stale or corrupt: recomputing", file=sys.stderr)
    with atomic_output(data) as tmp:
        out = np.memmap(tmp, dtype=np.float16, mode="w+", shape=shape)
        compute(out)
        out.flush()
        del out
        digest = _sha256_file(tmp)
    atomic_write_text(header, json.dumps({"key": key, "shape": list(shape), "sha256": digest}, sort_keys=True))
    return np.memmap(data, dtype=np.float16, mode="r", shape=shape), False


class FeatureSource:
    """Rows of cached features on demand: ``get(idx) -> (len(idx), k, D)`` float32 on ``device``.

    Arrays up to ``in_memory_bytes`` are copied to a tensor on the device once; larger memory-mapped ones
    are read per batch (rows in the order asked for)."""

    def __init__(self, features: np.ndarray, device: torch.device, in_memory_bytes: int = 4 << 30):
        self.device = device
        self.shape = features.shape
        if features.nbytes <= in_memory_bytes:
            self.tensor, self.array = torch.from_numpy(np.array(features)).to(device), None  # writable copy
        else:
            self.tensor, self.array = None, features

    def get(self, idx: torch.Tensor) -> torch.Tensor:
        if self.tensor is not None:
            return self.tensor[idx.to(self.tensor.device)].float()
        rows = np.asarray(self.array[idx.cpu().numpy()])
        return torch.from_numpy(rows).to(self.device).float()


class EncodingSource:
    """The uncached baseline: ``get(idx)`` loads and encodes the samples every time (what caching saves)."""

    def __init__(self, encoder, dataset: TaskDataset, device: torch.device, grid: int = 1):
        self.encoder, self.dataset, self.device, self.grid = encoder, dataset, device, grid

    def get(self, idx: torch.Tensor) -> torch.Tensor:
        x = torch.stack([self.dataset[int(i)][0] for i in idx])
        # rounded through float16 like the cache, so that both paths train on identical numbers
        return pooled(encode_images(self.encoder, x, self.device), self.grid).half().float()

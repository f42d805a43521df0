"""Synthetic images and folder layouts for the contrasting.data tests (small, so the suite stays fast)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# DALI vs torchvision agreement, in normalised units (1/255/0.225 ≈ 0.0174 per uint8 level)
TOL_MEAN = 0.02  # mean |Δ| of a whole batch of views (≈ 1.2 levels)
TOL_OUTLIER = 0.01  # fraction of elements with |Δ| > 0.1 (≈ 6 levels)


def smooth_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(h, w, 3) uint8 with smooth colour gradients and mild noise (JPEG-friendly, saturated colours)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = []
    for _ in range(3):
        fx, fy, ph = rng.uniform(0.02, 0.12), rng.uniform(0.02, 0.12), rng.uniform(0, 6.3)
        chans.append(np.sin(xx * fx + ph) * np.cos(yy * fy - ph))
    img = (np.stack(chans, -1) * 0.5 + 0.5) * 235 + rng.normal(0, 6, (h, w, 3)) + 10
    return np.clip(img, 0, 255).astype(np.uint8)


def write_images(folder: Path, n: int, *, seed: int = 0, size_range=(48, 96), fmt: str = "jpg",
                 prefix: str = "img") -> list[Path]:
    """``n`` smooth images of random sizes in ``size_range`` written to ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        h, w = rng.integers(size_range[0], size_range[1] + 1, size=2)
        p = folder / f"{prefix}{i:03d}.{fmt}"
        Image.fromarray(smooth_image(rng, int(h), int(w))).save(p, quality=92)
        paths.append(p)
    return paths


def make_folder(root: Path, classes=("cat", "dog", "eel"), per_class: int = 4, *, seed: int = 0, **kw) -> Path:
    """``root/<class>/img*.jpg`` with ``per_class`` images per class."""
    for k, c in enumerate(classes):
        write_images(root / c, per_class, seed=seed + k, **kw)
    return root


def max_normalised_diff(a, b) -> tuple[float, float]:
    """(mean |a − b|, fraction of elements with |a − b| > 0.1) over tensors a, b."""
    d = (a.float() - b.float()).abs()
    return float(d.mean()), float((d > 0.1).float().mean())


def decode_dali(paths, device: str = "gpu", fancy_upsampling: bool = True) -> list[np.ndarray]:
    """HWC uint8 RGB arrays of the image files ``paths`` decoded by DALI in one batch, with the pipeline's own
    decoder arguments (``decoder_kwargs``): ``device`` "gpu" (needs CUDA) or "cpu"."""
    import nvidia.dali.fn as fn  # DALI only where a decoder test runs
    import nvidia.dali.types as types
    import torch
    from nvidia.dali import pipeline_def

    from contrasting.data.executors.dali_backend import decoder_kwargs

    encoded = [np.fromfile(p, dtype=np.uint8) for p in paths]
    gpu = device == "gpu"
    kw = decoder_kwargs(device, fancy_upsampling)

    @pipeline_def(batch_size=len(encoded), num_threads=2, device_id=torch.cuda.current_device() if gpu else None)
    def pipe():
        return fn.decoders.image(fn.external_source(source=lambda: encoded, batch=True), output_type=types.RGB, **kw)

    p = pipe()
    p.build()
    out = p.run()[0]
    out = out.as_cpu() if gpu else out
    return [np.array(out.at(i)) for i in range(len(encoded))]


def decode_reference(path) -> np.ndarray:
    """HWC uint8 RGB of an image file as the torchvision executor decodes it (``torchvision_backend.decode``)."""
    from contrasting.data.executors.torchvision_backend import decode

    return decode(str(path)).permute(1, 2, 0).numpy()

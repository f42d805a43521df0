"""The photometric ops of a view on a whole batch in torch, with per-sample parameters: the DALI GPU
executor's default (``photometric="torch"``: DALI decodes, crops, resizes and flips on the GPU, these batched
kernels do the rest on the same tensors).

DALI's native GPU operators need a per-sample conditional for every jitter position and op (about a hundred
graph nodes per view, each a kernel launch over split and merged batches); here each op runs once per batch
on the samples that drew it, in torchvision's uint8 arithmetic (float32, truncation back to uint8 after every
op, as ``torchvision.transforms.v2.functional``), images (n, 3, H, W) uint8, factors (n,):

================ ==========================================================================================
brightness       y = trunc(clamp(b·v, 0, 255))
contrast         y = trunc(clamp(c·v + (1 − c)·m, 0, 255)), m = per-image mean of floor(luma)
saturation       y = trunc(clamp(s·v + (1 − s)·floor(luma), 0, 255))
luma             0.2989 R + 0.587 G + 0.114 B (float32, as torchvision's ``mul``/``add_(alpha=)`` chain)
hue              v/255 → HSV (hexcone), h ← (h + shift) mod 1, HSV → RGB, trunc(255.999·x)
grayscale        trunc(luma) in all three channels
blur             2-D float32 convolution with the sample's kernel k kᵀ, reflect borders, rounded
solarize         v → 255 − v where v ≥ 255·threshold
================ ==========================================================================================

Which samples get which op, in which order, comes from the same ``ViewParams`` both other executors read;
the selection is done on the host (NumPy), so no op waits for the device.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

# HSV → RGB: for each hexcone sector i = 0…5, which of (v, p, q, t) each output channel takes
_SECTOR = ((0, 2, 1, 1, 3, 0), (3, 0, 0, 2, 1, 1), (1, 1, 3, 0, 0, 2))


def _u8(y: torch.Tensor) -> torch.Tensor:
    """float → uint8 as torchvision: clamp to [0, 255], then truncate."""
    return y.clamp_(0, 255).to(torch.uint8)


def _per_sample(f: torch.Tensor) -> torch.Tensor:
    return f.to(torch.float32).view(-1, 1, 1, 1)


def luma(x: torch.Tensor) -> torch.Tensor:
    """(n, 1, H, W) float32 0.2989 R + 0.587 G + 0.114 B of uint8 images ``x`` (n, 3, H, W)."""
    r, g, b = x.float().unbind(1)
    return r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114).unsqueeze(1)


def _blend(x: torch.Tensor, other: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """trunc(clamp(f·x + (1 − f)·other)) with per-sample ``f``; ``other`` broadcasts over channels."""
    f = _per_sample(f)
    return _u8(torch.addcmul(x.float() * f, other, 1.0 - f))


def brightness(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """torchvision's ``adjust_brightness`` per sample: trunc(clamp(f·v))."""
    return _u8(x.float() * _per_sample(f))


def contrast(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """torchvision's ``adjust_contrast`` per sample: blend with the image's mean floored luma."""
    return _blend(x, luma(x).floor_().mean(dim=(1, 2, 3), keepdim=True), f)


def saturation(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """torchvision's ``adjust_saturation`` per sample: blend with the pixel's floored luma."""
    return _blend(x, luma(x).floor_(), f)


def hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """torchvision's ``adjust_hue`` per sample (shift in turns): RGB → HSV, h ← (h + shift) mod 1, HSV → RGB."""
    img = x.float().mul_(1.0 / 255.0)
    r, g, b = img.unbind(1)
    maxc = torch.maximum(torch.maximum(r, g), b)
    minc = torch.minimum(torch.minimum(r, g), b)
    eqc = maxc == minc
    chroma = maxc - minc
    ones = torch.ones_like(maxc)
    s = chroma / torch.where(eqc, ones, maxc)
    div = torch.where(eqc, ones, chroma)
    rc, gc, bc = (maxc - r) / div, (maxc - g) / div, (maxc - b) / div
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, rc.add(2.0).sub_(bc), gc.add(4.0).sub_(rc)))
    h = h.mul_(1.0 / 6.0).add_(1.0).fmod_(1.0)
    h = h.add_(shift.to(torch.float32).view(-1, 1, 1)).remainder_(1.0)
    h6 = h.mul_(6.0)
    sector = torch.floor(h6)
    frac = h6.sub_(sector)
    sxf = s * frac
    oms = 1.0 - s
    q = (1.0 - sxf).mul_(maxc).clamp_(0.0, 1.0)
    t = sxf.add_(oms).mul_(maxc).clamp_(0.0, 1.0)
    p = oms.mul_(maxc).clamp_(0.0, 1.0)
    vpqt = torch.stack((maxc, p, q, t), dim=1)
    table = torch.tensor(_SECTOR, dtype=torch.long, device=x.device)
    select = table[:, sector.to(torch.long).remainder_(6)].transpose(0, 1)  # (n, 3, H, W)
    return vpqt.gather(1, select).mul_(255.999).to(torch.uint8)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """torchvision's ``rgb_to_grayscale(…, 3)``: trunc(luma) in all three channels."""
    return luma(x).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()


def blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """torchvision's ``gaussian_blur`` per sample: the 2-D kernel k kᵀ of each sample's 1-D ``kernel`` (n, k),
    reflect padding, float32 convolution, rounded."""
    n, c, h, w = x.shape
    k = kernel.shape[1]
    kernel = kernel.to(device=x.device, dtype=torch.float32)
    weight = (kernel[:, :, None] * kernel[:, None, :]).repeat_interleave(c, dim=0).unsqueeze(1)
    y = F.pad(x.float().reshape(1, n * c, h, w), [k // 2] * 4, mode="reflect")
    return _u8(F.conv2d(y, weight, groups=n * c).round_()).reshape(n, c, h, w)


def solarize(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """torchvision's ``solarize`` with ``threshold`` on the 0–255 scale: 255 − v where v ≥ threshold."""
    return torch.where(x >= threshold, 255 - x, x)


JITTER_OPS = (brightness, contrast, saturation, hue)


def update(x: torch.Tensor, rows: np.ndarray, op, *args) -> None:
    """x[rows] ← op(x[rows], *args), ``rows`` host indices (nothing to do when empty)."""
    if rows.size:
        idx = torch.from_numpy(rows).to(x.device)
        x[idx] = op(x[idx], *args)


def apply_view(x: torch.Tensor, vp) -> torch.Tensor:
    """The photometric ops of ``vp.view`` on the uint8 batch ``x`` (n, 3, H, W), sample by sample as ``vp`` (a
    ``params.ViewParams``) drew them: each op's ``torch_batch`` (flips are left to the caller: every op here
    commutes with them). Returns a new tensor."""
    x = x.clone()
    for op, p in zip(vp.view.ops, vp.ops, strict=True):
        op.torch_batch(x, p, np.asarray(p["apply"], dtype=bool))
    return x


def normalise(x: torch.Tensor, mean, std) -> torch.Tensor:
    """(x − 255·mean) / (255·std) per channel, float32, of the uint8 batch ``x`` (n, 3, H, W)."""
    m = torch.tensor([255.0 * v for v in mean], dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor([255.0 * v for v in std], dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    return (x.float() - m) / s

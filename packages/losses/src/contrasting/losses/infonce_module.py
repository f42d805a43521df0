"""nn.Module wrappers of the InfoNCE family, for users who compose losses as modules."""

from __future__ import annotations

import torch
from torch import nn

from .infonce import clip_loss, info_nce, nt_xent


class InfoNCE(nn.Module):
    """``info_nce`` as a module: ``InfoNCE(temperature=0.2, in_batch_negatives=False)(q, k, queue)``."""

    def __init__(self, temperature: float = 0.07, *, in_batch_negatives: bool = True, normalize: bool = True,
                 reduction: str = "mean", process_group=None, backend: str = "auto"):
        super().__init__()
        self.temperature = temperature
        self.kwargs = dict(in_batch_negatives=in_batch_negatives, normalize=normalize, reduction=reduction,
                           process_group=process_group, backend=backend)

    def forward(self, query: torch.Tensor, key: torch.Tensor, queue: torch.Tensor | None = None) -> torch.Tensor:
        return info_nce(query, key, queue, temperature=self.temperature, **self.kwargs)


class NTXent(nn.Module):
    """``nt_xent`` as a module: ``NTXent(temperature=0.5)(z1, z2)``."""

    def __init__(self, temperature: float = 0.5, *, normalize: bool = True, reduction: str = "mean",
                 process_group=None, backend: str = "auto"):
        super().__init__()
        self.temperature = temperature
        self.kwargs = dict(normalize=normalize, reduction=reduction, process_group=process_group, backend=backend)

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return nt_xent(z1, z2, temperature=self.temperature, **self.kwargs)


class CLIPLoss(nn.Module):
    """``clip_loss`` with CLIP's learnable logit scale: s = exp(logit_scale), τ = 1/s, clamped at ``max_scale``.

    ``learnable=False`` keeps τ fixed at ``temperature``.
    """

    def __init__(self, temperature: float = 0.07, *, learnable: bool = True, max_scale: float = 100.0,
                 normalize: bool = True, reduction: str = "mean", process_group=None, backend: str = "auto"):
        super().__init__()
        init = torch.tensor(1.0 / temperature).log()
        self.logit_scale = nn.Parameter(init) if learnable else None
        self.register_buffer("fixed_logit_scale", init, persistent=False)
        self.max_scale = max_scale
        self.kwargs = dict(normalize=normalize, reduction=reduction, process_group=process_group, backend=backend)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        log_s = self.logit_scale if self.logit_scale is not None else self.fixed_logit_scale
        temperature = 1.0 / log_s.exp().clamp(max=self.max_scale)
        return clip_loss(a, b, temperature=temperature, **self.kwargs)

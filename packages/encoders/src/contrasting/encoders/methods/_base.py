"""What every pre-training method is: an nn.Module whose forward takes the batch of views and returns the loss.

Contract between a method and the training loop (``contrasting.encoders.training.trainer`` and any plain loop):

* ``loss = method(views, labels)`` — ``views`` a list of (N, 3, H, W) tensors (the same N images, one
  tensor per view; views of equal size are encoded together), ``labels`` (N,) int64 or None. One forward
  per backward: everything the loss needs (momentum keys, Sinkhorn codes) happens inside it.
* ``method.step`` — the optimizer step about to be taken (0-based), set by the loop before the forward;
  ``method.total_steps`` — the run's total steps (None when unknown), set by the loop before training.
  Methods with step-dependent behaviour (SwAV's prototype freeze and queue start, BYOL's τ schedule) read them.
* ``method.before_step(set_param)`` — called once per optimizer step before its first forward;
  ``set_param(param, value)`` writes a parameter everywhere it lives (the module and, under ZeRO,
  the optimizer's fp32 master copy). SwAV projects its prototypes onto the unit sphere here.
* ``method.on_train_start()`` — called once for a fresh run, after the parameters are final on every
  rank (after DeepSpeed's broadcast); MoCo copies the online encoder into the momentum encoder here.
* ``method.group_options()`` — {parameter-name prefix: options} merged into that parameter group
  (SwAV: ``{"prototypes.": {"frozen_steps": n}}``: lr and weight decay 0 for the first n steps).
* State that is not optimised (momentum encoder, queues) lives in buffers, so it is in the module's
  state dict, and with it in every checkpoint, and never in the optimizer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

import torch
import torch.distributed as dist
from torch import nn

from ..backbones import ResNet

SetParam = Callable[[nn.Parameter, torch.Tensor], None]


def check_views(views, *, min_views: int, max_views: int | None = None, name: str = "views") -> list[torch.Tensor]:
    """``views`` as a list of (N, 3, H, W) floating tensors with one N; errors name the offending view."""
    if isinstance(views, torch.Tensor) or not isinstance(views, Sequence):
        raise TypeError(f"{name}: expected a list of (N, 3, H, W) tensors (one per view), got {type(views).__name__}")
    views = list(views)
    if len(views) < min_views or (max_views is not None and len(views) > max_views):
        want = f"{min_views}" if max_views == min_views else f"at least {min_views}"
        if max_views is not None and max_views != min_views:
            want = f"{min_views} to {max_views}"
        raise ValueError(f"{name}: expected {want} views, got {len(views)}")
    for i, v in enumerate(views):
        if not isinstance(v, torch.Tensor) or v.dim() != 4 or not v.is_floating_point():
            shape = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
            raise ValueError(f"{name}[{i}]: expected a floating (N, C, H, W) tensor, got {shape}")
        if v.shape[0] != views[0].shape[0]:
            raise ValueError(f"{name}[{i}]: has N={v.shape[0]} images but {name}[0] has N={views[0].shape[0]}; "
                             "expected the same images in every view")
    if views[0].shape[0] == 0:
        raise ValueError(f"{name}: empty batch")
    return views


def encode_views(encoder: Callable[[torch.Tensor], torch.Tensor], views: list[torch.Tensor]) -> list[torch.Tensor]:
    """``encoder`` applied to every view, one call per run of consecutive views of equal size (multi-crop).

    As in SwAV, the large crops go through the network together, then the small crops together, so
    BatchNorm statistics are per resolution. Returns one (N, ...) output per view, in order.
    """
    outputs, start = [], 0
    while start < len(views):
        end = start + 1
        while end < len(views) and views[end].shape[1:] == views[start].shape[1:]:
            end += 1
        out = encoder(torch.cat(views[start:end]) if end - start > 1 else views[start])
        outputs.extend(out.chunk(end - start))
        start = end
    return outputs


def world_size(process_group) -> int:
    """Ranks in ``process_group`` (1 without one)."""
    return 1 if process_group is None else dist.get_world_size(process_group)


class Method(nn.Module):
    """Base of the pre-training methods (see the module docstring for the contract).

    ``trainable`` is False for baselines that are not trained (random); ``uses_labels`` is True when the
    forward needs the labels (supervised); ``registry_name`` is set by ``build_method``.
    """

    trainable: ClassVar[bool] = True
    uses_labels: ClassVar[bool] = False

    def __init__(self, backbone: ResNet, process_group=None):
        super().__init__()
        self.backbone = backbone
        self.process_group = process_group
        self.step = 0
        self.total_steps: int | None = None
        self.registry_name = ""

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> torch.Tensor:
        """The scalar training loss of one batch of views."""
        raise NotImplementedError

    def before_step(self, set_param: SetParam) -> None:
        """Parameter projections applied once per optimizer step before its first forward (default: none)."""

    def on_train_start(self) -> None:
        """One-time initialisation of non-optimised state for a fresh run (default: none)."""

    def group_options(self) -> dict[str, dict]:
        """Extra optimizer-group options by parameter-name prefix (default: none)."""
        return {}

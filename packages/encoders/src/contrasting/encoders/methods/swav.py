"""SwAV (Caron et al., NeurIPS 2020): swapped prediction of Sinkhorn codes over prototypes, multi-crop.

    z_v = normalize(g(f(x_v)))      for every view v (2 large crops first, then the small ones)
    s_v = z_v · Cᵀ                  C: K prototypes, projected onto the unit sphere before every step
    L   = swav_loss([s_v], τ, ε, assign_views)              (``contrasting.losses``)

``swav_loss`` computes the targets q_v = sinkhorn(s_v) for the assign views (SwAV's crops_for_assign)
and the cross-entropy of every other view's softmax(s_u/τ) against them. Views of one size go through
the network together (SwAV's multi-crop forward).

Paper details kept: prototypes normalised each step (``before_step``, written to the optimizer's master
copy too under ZeRO); prototypes frozen for the first ``freeze_prototypes_steps`` optimizer steps (their
gradient is zero, and their group's lr and weight decay are 0, so weights and momentum stay untouched,
as SwAV's ``p.grad = None``); optional queue of past embeddings (``SwAVLoss``) used from
``queue_start_step`` on (SwAV: from epoch 15, for batches below 256); scores in float32 under autocast
(Sinkhorn's exp(s/ε) with ε = 0.05 amplifies bf16's rounding 20×). With a process group the Sinkhorn's
per-prototype sums run over all ranks' samples; each rank's queue holds its own samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from contrasting.losses import SwAVLoss

from ..backbones import ResNet
from ._base import Method, SetParam, check_views, encode_views, world_size
from .heads import bn_projector
from .spec import MethodSpec, ShortRun, register_method


@dataclass
class SwAVConfig:
    """SwAV's hyper-parameters (the paper's ImageNet defaults; ``queue_length`` 3840 for small batches)."""

    projection_hidden: int | None = None
    projection_dim: int = 128
    prototypes: int = 3000
    temperature: float = 0.1
    epsilon: float = 0.05
    sinkhorn_iterations: int = 3
    assign_views: tuple[int, ...] = (0, 1)
    freeze_prototypes_steps: int = 313
    queue_length: int = 0
    queue_start_step: int = 0

    def __post_init__(self):
        self.assign_views = tuple(self.assign_views)


class SwAV(Method):
    """``loss = SwAV(backbone, config)(views)`` with ``views`` = 2 large crops then any number of small ones."""


    def __init__(self, backbone: ResNet, config: SwAVConfig, process_group=None):
        super().__init__(backbone, process_group)
        self.config = config
        self.projector = bn_projector(backbone.embed_dim, config)
        self.prototypes = nn.Linear(config.projection_dim, config.prototypes, bias=False)
        with torch.no_grad():
            self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))
        group = process_group if world_size(process_group) > 1 else None
        self.criterion = SwAVLoss(config.temperature, epsilon=config.epsilon,
                                  sinkhorn_iterations=config.sinkhorn_iterations, assign_views=config.assign_views,
                                  queue_length=config.queue_length,
                                  feature_dim=config.projection_dim if config.queue_length else None,
                                  process_group=group)

    @property
    def prototypes_frozen(self) -> bool:
        """True while ``step`` < ``freeze_prototypes_steps``."""
        return self.step < self.config.freeze_prototypes_steps

    @torch.no_grad()
    def before_step(self, set_param: SetParam) -> None:
        """Project the prototypes onto the unit sphere (SwAV normalises them at the start of every iteration)."""
        w = self.prototypes.weight
        set_param(w, F.normalize(w.detach().float(), dim=1).to(w.dtype))

    def group_options(self) -> dict[str, dict]:
        """The prototypes get lr and weight decay 0 for the first ``freeze_prototypes_steps`` steps."""
        return {"prototypes.": {"frozen_steps": self.config.freeze_prototypes_steps}}

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> torch.Tensor:
        """SwAV's loss over all views (labels are ignored); fills the queue in training mode once it is active."""
        views = check_views(views, min_views=2)
        z = encode_views(lambda x: F.normalize(self.projector(self.backbone.embed(x)).float(), dim=1), views)
        w = self.prototypes.weight
        if self.prototypes_frozen:
            w = w.detach() + 0.0 * w  # same values, zero gradient
        with torch.autocast(device_type=w.device.type, enabled=False):
            scores = [F.linear(z_v.float(), w.float()) for z_v in z]
            use_queue = self.training and self.config.queue_length > 0 and self.step >= self.config.queue_start_step
            return self.criterion(scores, embeddings=[z_v.detach() for z_v in z], prototypes=w.detach().float(),
                                  use_queue=use_queue)


def _short_run(run: ShortRun) -> dict:
    # 100 prototypes for ~1,500 images, frozen for the first 20 % of the steps; eps 0.01 (at 0.05 and 0.03 the codes
    # of nearly identical initial embeddings stay uniform, the loss at ln K); two half-size crops of 15-40 %
    return {"method": {"prototypes": 100, "epsilon": 0.01, "freeze_prototypes_steps": max(1, run.steps // 5)},
            "optim": {"lr": 0.6, "scale_lr_with_batch": False, "warmup_epochs": run.warmup_epochs,
                      "final_lr_ratio": 0.001},
            "data": {"options": {"n_local": 2, "local_size": max(8, run.resolution // 2), "global_scale": [0.3, 1.0],
                                 "local_scale": [0.15, 0.4], "strength": 0.5, "blur": False}}}


SWAV_SPEC = MethodSpec(
    "SwAV", optim={"name": "lars", "lr": 0.3, "weight_decay": 1e-6, "warmup_epochs": 10, "final_lr_ratio": 0.001,
                   "exclude_bias_and_norm": False},
    recipe="swav", step_cost=1.8, short_run=_short_run,
    chance_loss=lambda options, batch_size: math.log(int(options.get("prototypes", SwAVConfig.prototypes))))


@register_method("swav", SwAVConfig, SWAV_SPEC, paper="Caron et al., NeurIPS 2020", origin="facebookresearch/swav")
def _swav(config: SwAVConfig, backbone: ResNet, process_group=None) -> SwAV:
    return SwAV(backbone, config, process_group)

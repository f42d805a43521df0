"""BYOL (Grill et al., NeurIPS 2020): an online network predicts a slowly moving target network's projection.

Online: y = f_θ(x), z = g_θ(y), p = q_θ(z) (projector g and predictor q: MLPs with BatchNorm, 4096 → 256).
Target: z' = g_ξ(f_ξ(x)), never optimised; after every optimizer step ξ ← τ_k·ξ + (1 − τ_k)·θ with

    τ_k = 1 − (1 − τ_base)·(cos(π·k/K) + 1)/2        (τ_base = 0.996; K the run's total steps)

    L = ‖p̂(v₁) − ẑ'(v₂)‖² + ‖p̂(v₂) − ẑ'(v₁)‖² = 4 − 2·cos(p(v₁), z'(v₂)) − 2·cos(p(v₂), z'(v₁))

(the paper's symmetrised loss; x̂ = x/‖x‖). The mean over the batch is returned, in float32. No negatives.

As MoCo's key encoder, the target's weights are buffers (in the state dict and every checkpoint, never in the
optimizer); ``before_step`` applies the update of the step about to be taken (``self.step``) and reads
``total_steps`` (set by the trainer; τ_base when unset). Under data parallelism each rank's BatchNorm sees its
own batch (the paper synchronises BatchNorm; unsynchronised here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import ResNet
from ._base import Method, check_views, encode_views
from .heads import projection_mlp
from .moco import momentum_copy, momentum_update_
from .spec import MethodSpec, ShortRun, register_method


@dataclass
class BYOLConfig:
    """BYOL's hyper-parameters (the paper's ImageNet values)."""

    projection_hidden: int = 4096
    projection_dim: int = 256
    prediction_hidden: int = 4096
    base_momentum: float = 0.996


def target_momentum(base: float, step: int, total_steps: int | None) -> float:
    """τ_k = 1 − (1 − τ_base)·(cos(π·k/K) + 1)/2, from τ_base at k = 0 to 1 at k = K (τ_base without K)."""
    if not total_steps:
        return base
    k = min(max(step, 0), total_steps)
    return 1.0 - (1.0 - base) * (math.cos(math.pi * k / total_steps) + 1.0) / 2.0


def regression_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """‖p̂ − ẑ‖² = 2 − 2·cos(p, z) per row, in float32."""
    return 2.0 - 2.0 * F.cosine_similarity(p.float(), z.float(), dim=1)


class BYOL(Method):
    """``loss = BYOL(backbone, config)([view_1, view_2])`` (see the module docstring)."""

    def __init__(self, backbone: ResNet, config: BYOLConfig, process_group=None):
        super().__init__(backbone, process_group)
        if not 0.0 <= config.base_momentum <= 1.0:
            raise ValueError(f"base_momentum: expected a value in [0, 1], got {config.base_momentum}")
        self.config = config
        self.projector = projection_mlp(backbone.embed_dim, config.projection_hidden, config.projection_dim,
                                        batch_norm=True)
        self.predictor = projection_mlp(config.projection_dim, config.prediction_hidden, config.projection_dim,
                                        batch_norm=True)
        self.target, self._target_names = momentum_copy(self.online)

    @property
    def online(self) -> nn.ModuleDict:
        """The online encoder as the target's twin: {"backbone", "projector"}."""
        return nn.ModuleDict({"backbone": self.backbone, "projector": self.projector})

    @torch.no_grad()
    def on_train_start(self) -> None:
        """ξ ← θ, after the online network is final on every rank."""
        momentum_update_(self.online, self.target, self._target_names, 0.0)

    def before_step(self, set_param) -> None:
        """ξ ← τ_k·ξ + (1 − τ_k)·θ for the step k about to be taken (no update before the first)."""
        if self.step > 0:
            tau = target_momentum(self.config.base_momentum, self.step, self.total_steps)
            momentum_update_(self.online, self.target, self._target_names, tau)

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> torch.Tensor:
        """The symmetrised BYOL loss of two views (mean over the batch)."""
        views = check_views(views, min_views=2, max_views=2)
        p1, p2 = encode_views(lambda x: self.predictor(self.projector(self.backbone.embed(x))), views)
        with torch.no_grad():
            z1, z2 = encode_views(lambda x: self.target["projector"](self.target["backbone"].embed(x)), views)
        return (regression_loss(p1, z2) + regression_loss(p2, z1)).mean()


def _short_run(run: ShortRun) -> dict:
    # τ_base 0.99 (0.996 leaves the target near its initialisation in a few hundred steps), heads 4× the width of
    # a small backbone, LARS at 1.0 without batch scaling; SimCLR's crops of 30-100 %, no blur
    return {"method": {"base_momentum": 0.99, "projection_hidden": 512, "prediction_hidden": 512,
                       "projection_dim": 128},
            "optim": {"lr": 1.0, "scale_lr_with_batch": False, "warmup_epochs": run.warmup_epochs},
            "data": {"recipe": "simclr", "options": {"scale": [0.3, 1.0], "blur": False}}}


BYOL_SPEC = MethodSpec(
    "BYOL", optim={"name": "lars", "lr": 0.2, "weight_decay": 1.5e-6, "warmup_epochs": 10,
                   "exclude_bias_and_norm": True},
    recipe="byol", short_run=_short_run,
    # predictions uncorrelated with the targets: E‖p̂ − ẑ‖² = 2 per direction
    chance_loss=lambda options, batch_size: 4.0)


@register_method("byol", BYOLConfig, BYOL_SPEC, paper="Grill et al., NeurIPS 2020", origin="deepmind/deepmind-research")
def _byol(config: BYOLConfig, backbone: ResNet, process_group=None) -> BYOL:
    return BYOL(backbone, config, process_group)

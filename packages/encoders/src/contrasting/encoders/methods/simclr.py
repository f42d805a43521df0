"""SimCLR (Chen et al., ICML 2020): two views, a projection MLP and NT-Xent over every other view.

    z_a = g(f(x_a)), z_b = g(f(x_b));   L = nt_xent(z_a, z_b, τ)   (``contrasting.losses.nt_xent``)

With ``gather_negatives`` and a process group, the candidates are the views of every rank (SimCLR's
global batch: 2·N·W − 1 negatives per row), with gradients returned to their owners.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from contrasting.losses import nt_xent

from ..backbones import ResNet
from ._base import Method, check_views, encode_views, world_size
from .heads import bn_projector
from .spec import MethodSpec, ShortRun, register_method


@dataclass
class SimCLRConfig:
    """SimCLR's hyper-parameters (ImageNet defaults of the paper's code: τ = 0.1, 128-d output).

    ``projection_hidden`` None means the backbone's embedding width (2048 for ResNet-50).
    """

    projection_hidden: int | None = None
    projection_dim: int = 128
    temperature: float = 0.1
    gather_negatives: bool = True


class SimCLR(Method):
    """``loss = SimCLR(backbone, config)([view_a, view_b])``: NT-Xent over the projected views."""


    def __init__(self, backbone: ResNet, config: SimCLRConfig, process_group=None):
        super().__init__(backbone, process_group)
        self.config = config
        self.projector = bn_projector(backbone.embed_dim, config)

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> torch.Tensor:
        """NT-Xent of the two views' projections (labels are ignored)."""
        views = check_views(views, min_views=2, max_views=2)
        z_a, z_b = encode_views(lambda x: self.projector(self.backbone.embed(x)), views)
        group = self.process_group if self.config.gather_negatives and world_size(self.process_group) > 1 else None
        return nt_xent(z_a.float(), z_b.float(), temperature=self.config.temperature, process_group=group,
                       check_finite=False)


def _short_run(run: ShortRun) -> dict:
    # τ 0.2 and LARS at 4.8 (no batch scaling) for a few hundred steps of a small corpus; crops of 30-100 %
    return {"method": {"temperature": 0.2},
            "optim": {"lr": 4.8, "scale_lr_with_batch": False, "warmup_epochs": run.warmup_epochs},
            "data": {"options": {"scale": [0.3, 1.0], "blur": False}}}


SIMCLR_SPEC = MethodSpec(
    "SimCLR", optim={"name": "lars", "lr": 0.3, "weight_decay": 1e-6, "warmup_epochs": 10,
                     "exclude_bias_and_norm": True},
    recipe="simclr", short_run=_short_run,
    chance_loss=lambda options, batch_size: math.log(2 * batch_size - 1))  # the 2N - 1 other views


@register_method("simclr", SimCLRConfig, SIMCLR_SPEC, paper="Chen et al., ICML 2020", origin="google-research/simclr")
def _simclr(config: SimCLRConfig, backbone: ResNet, process_group=None) -> SimCLR:
    return SimCLR(backbone, config, process_group)

"""The random-encoder baseline: the backbone's seeded initialisation, never trained."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..backbones import ResNet
from ._base import Method
from .spec import MethodSpec, register_method


@dataclass
class RandomConfig:
    """No options: the encoder is the backbone as initialised under the run's seed."""


class RandomInit(Method):
    """A backbone kept at its (seeded) initialisation; ``pretrain`` exports it without training."""

    trainable = False

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> torch.Tensor:
        """Not trainable: raises ``RuntimeError``."""
        raise RuntimeError("the random encoder is not trained: export it as initialised (pretrain does)")


RANDOM_SPEC = MethodSpec("Random", role="random", recipe="supervised",
                         trainable=False, step_cost=0.0, short_run=lambda run: {})


@register_method("random", RandomConfig, RANDOM_SPEC, paper="Kotar et al., ICCV 2021 (baseline)", origin="this package")
def _random(config: RandomConfig, backbone: ResNet, process_group=None) -> RandomInit:
    return RandomInit(backbone, process_group)

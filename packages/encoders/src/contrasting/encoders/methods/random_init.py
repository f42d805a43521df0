"""The random-encoder baseline: the backbone's seeded initialisation, never trained."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._base import Method


@dataclass
class RandomConfig:
    """No options: the encoder is the backbone as initialised under the run's seed."""


class RandomInit(Method):
    """A backbone kept at its (seeded) initialisation; ``pretrain`` exports it without training."""

    trainable = False

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> torch.Tensor:
        """Not trainable: raises ``RuntimeError``."""
        raise RuntimeError("the random encoder is not trained: export it as initialised (pretrain does)")

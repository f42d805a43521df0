"""The supervised baseline trained by the same machinery: a linear classifier on the pooled embedding, cross-entropy.

Every view of an image is a training example with the image's label (one view for the usual
supervised recipe). ``num_classes`` comes from the corpus when the config leaves it unset.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import ResNet
from ._base import Method, check_views, encode_views
from .spec import MethodSpec, ShortRun, register_method


@dataclass
class SupervisedConfig:
    """``num_classes`` (None: taken from the corpus by the trainer) and label smoothing."""

    num_classes: int | None = None
    label_smoothing: float = 0.0


class Supervised(Method):
    """``loss = Supervised(backbone, config)(views, labels)``: mean cross-entropy over all views."""

    uses_labels = True

    def __init__(self, backbone: ResNet, config: SupervisedConfig, process_group=None):
        super().__init__(backbone, process_group)
        if config.num_classes is None or config.num_classes < 2:
            raise ValueError(f"num_classes: expected an int >= 2 (the corpus's classes), got {config.num_classes!r}")
        self.config = config
        self.classifier = nn.Linear(backbone.embed_dim, config.num_classes)

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> torch.Tensor:
        """Cross-entropy of every view's logits against ``labels`` (N,) int64 class indices."""
        views = check_views(views, min_views=1)
        if labels is None:
            raise ValueError("labels: the supervised method needs the corpus labels, got None")
        if labels.shape != (views[0].shape[0],):
            raise ValueError(f"labels: expected shape ({views[0].shape[0]},), got {tuple(labels.shape)}")
        logits = torch.cat(encode_views(lambda x: self.classifier(self.backbone.embed(x)), views)).float()
        return F.cross_entropy(logits, labels.repeat(len(views)), label_smoothing=self.config.label_smoothing)


def _short_run(run: ShortRun) -> dict:
    return {"optim": {"lr": 0.05, "scale_lr_with_batch": False, "warmup_epochs": run.warmup_epochs},
            "data": {"options": {"scale": [0.3, 1.0]}}}


SUPERVISED_SPEC = MethodSpec(
    "Supervised", role="supervised", optim={"name": "sgd", "lr": 0.1, "weight_decay": 1e-4, "momentum": 0.9},
    recipe="supervised", corpus_classes=True, step_cost=0.6,
    short_run=_short_run,
    chance_loss=lambda options, batch_size: None)


@register_method("supervised", SupervisedConfig, SUPERVISED_SPEC, paper="He et al., CVPR 2016", origin="this package")
def _supervised(config: SupervisedConfig, backbone: ResNet, process_group=None) -> Supervised:
    return Supervised(backbone, config, process_group)

"""contrasting.encoders: ResNet backbones, SSL pre-training through DeepSpeed, strict checkpoint import/export.

Backbones (``build_backbone``: resnet18, resnet50; small-image stem; multi-scale features), methods
(``build_method``: simclr, mocov1, mocov2, swav, supervised, random), training (``resolve_config`` +
``pretrain``), checkpoint layouts (``load_backbone``: moco, swav, vissl, virb, torchvision, contrasting;
``export_backbone``) and the ``contrasting`` command (``cli.main``). Importing this package does not
import DeepSpeed; ``pretrain`` does.
"""

from .backbones import BACKBONES, FEATURES, ResNet, ResNetConfig, build_backbone
from .config import RunConfig, load_yaml, parse_override, resolve_config
from .layouts import (
    LAYOUTS,
    LayoutError,
    UnknownLayoutError,
    detect_layout,
    export_backbone,
    infer_architecture,
    load_backbone,
)
from .methods import METHODS, Method, build_method
from .optim import LARS, OPTIMIZERS, Schedule, build_optimizer
from .registry import UnknownNameError
from .runs import load_run_backbone

__all__ = [
    "BACKBONES", "FEATURES", "ResNet", "ResNetConfig", "build_backbone",
    "METHODS", "Method", "build_method",
    "OPTIMIZERS", "LARS", "Schedule", "build_optimizer",
    "RunConfig", "resolve_config", "load_yaml", "parse_override",
    "LAYOUTS", "LayoutError", "UnknownLayoutError", "detect_layout", "export_backbone", "infer_architecture",
    "load_backbone", "load_run_backbone",
    "UnknownNameError",
    "pretrain", "NonFiniteLossError", "PretrainResult",
]


def __getattr__(name):
    # The trainer imports DeepSpeed (seconds, and it picks its accelerator): loaded on first use only.
    if name in ("pretrain", "NonFiniteLossError", "PretrainResult"):
        from . import trainer  # noqa: PLC0415

        return getattr(trainer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

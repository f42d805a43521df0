"""contrasting.encoders: ResNet backbones, SSL pre-training through DeepSpeed, strict checkpoint import/export.

Backbones (``build_backbone``: resnet18, resnet50; small-image stem; multi-scale features), methods
(``build_method``: simclr, mocov1, mocov2, swav, byol, pirl, supervised, random), training (``resolve_config`` +
``pretrain``), checkpoint layouts (``load_backbone``: moco, swav, vissl, virb, torchvision, contrasting;
``export_backbone``) and the ``contrasting`` command (``cli.main``). Names are imported on first use:
importing this package imports neither torch nor DeepSpeed.
"""

from contrasting.data.lazy import lazy_exports

_EXPORTS = {
    "BACKBONES": "backbones", "FEATURES": "backbones", "ResNet": "backbones", "ResNetConfig": "backbones",
    "build_backbone": "backbones",
    "RunConfig": "config", "load_yaml": "config", "parse_override": "overrides", "resolve_config": "config",
    "LAYOUTS": "weights.layouts", "LayoutError": "weights.layouts", "UnknownLayoutError": "weights.layouts",
    "detect_layout": "weights.layouts", "export_backbone": "weights.layouts", "infer_architecture": "weights.layouts",
    "load_backbone": "weights.layouts",
    "METHODS": "methods", "Method": "methods", "build_method": "methods",
    "LARS": "training.optim", "OPTIMIZERS": "training.optim", "Schedule": "training.optim",
    "build_optimizer": "training.optim",
    "UnknownNameError": "registry",
    "load_run_backbone": "weights.runs",
    # the trainer imports DeepSpeed (seconds, and it picks its accelerator)
    "pretrain": "training.trainer", "NonFiniteLossError": "training.trainer", "PretrainResult": "training.trainer",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, "contrasting-encoders")

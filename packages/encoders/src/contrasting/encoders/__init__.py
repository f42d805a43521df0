"""contrasting.encoders: ResNet backbones, SSL pre-training through DeepSpeed, strict checkpoint import/export.

Backbones (``build_backbone``: resnet18, resnet50; small-image stem; multi-scale features), methods
(``build_method``: simclr, mocov1, mocov2, swav, byol, pirl, supervised, random), training (``resolve_config`` +
``pretrain``), checkpoint layouts (``load_backbone``: moco, swav, vissl, virb, torchvision, contrasting;
``export_backbone``) and the ``contrasting`` command (``cli.main``). Names are imported on first use:
importing this package imports neither torch nor DeepSpeed.
"""

from contrasting.data.lazy import lazy_exports

_MODULE_EXPORTS = {  # module → the public names it defines
    "backbones": ("BACKBONES", "FEATURES", "ResNet", "ResNetConfig", "build_backbone"),
    "config": ("RunConfig", "load_yaml", "resolve_config"),
    "overrides": ("parse_override",),
    "methods": ("METHODS", "Method", "build_method"),
    "registry": ("UnknownNameError",),
    "training.optim": ("LARS", "OPTIMIZERS", "Schedule", "build_optimizer"),
    "training.trainer": ("pretrain", "NonFiniteLossError", "PretrainResult"),  # imports DeepSpeed: seconds
    "weights.layouts": ("LAYOUTS", "LayoutError", "UnknownLayoutError", "detect_layout", "export_backbone",
                        "infer_architecture", "load_backbone"),
    "weights.runs": ("load_run_backbone",),
}
_EXPORTS = {name: module for module, names in _MODULE_EXPORTS.items() for name in names}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, "contrasting-encoders")

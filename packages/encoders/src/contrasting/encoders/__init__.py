"""contrasting.encoders: ResNet backbones, SSL pre-training through DeepSpeed, strict checkpoint import/export.

Backbones (``build_backbone``: resnet18, resnet50; small-image stem; multi-scale features), methods
(``build_method``: simclr, mocov1, mocov2, swav, supervised, random), training (``resolve_config`` +
``pretrain``), checkpoint layouts (``load_backbone``: moco, swav, vissl, virb, torchvision, contrasting;
``export_backbone``) and the ``contrasting`` command (``cli.main``). Names are imported on first use:
importing this package imports neither torch nor DeepSpeed.
"""

import importlib

_EXPORTS = {
    "BACKBONES": "backbones", "FEATURES": "backbones", "ResNet": "backbones", "ResNetConfig": "backbones",
    "build_backbone": "backbones",
    "RunConfig": "config", "load_yaml": "config", "parse_override": "config", "resolve_config": "config",
    "LAYOUTS": "layouts", "LayoutError": "layouts", "UnknownLayoutError": "layouts", "detect_layout": "layouts",
    "export_backbone": "layouts", "infer_architecture": "layouts", "load_backbone": "layouts",
    "METHODS": "methods", "Method": "methods", "build_method": "methods",
    "LARS": "optim", "OPTIMIZERS": "optim", "Schedule": "optim", "build_optimizer": "optim",
    "UnknownNameError": "registry",
    "load_run_backbone": "runs",
    # the trainer imports DeepSpeed (seconds, and it picks its accelerator)
    "pretrain": "trainer", "NonFiniteLossError": "trainer", "PretrainResult": "trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name == "__version__":  # the installed distribution's: pyproject.toml is the one owner of the number
        from importlib import metadata  # noqa: PLC0415

        try:
            return metadata.version("contrasting-encoders")
        except metadata.PackageNotFoundError:
            return "0+unknown"
    # Every name is imported on first use, so that the ``contrasting`` command line starts without torch.
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)

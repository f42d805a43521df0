"""Package namespaces whose names are imported on first use (PEP 562), so that importing a package, or one light
module of it, does not import torch.

    __getattr__, __dir__, __all__ = lazy_exports(__name__, {"make_loader": "loader", ...}, "contrasting-data")

``exports`` maps a public name to the submodule defining it, or to ``"submodule:attribute"`` when the public name
differs from the attribute's. ``__version__`` is the installed distribution's (pyproject.toml owns the number).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str],
                 distribution: str) -> tuple[Callable[[str], object], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package`` (see the module docstring)."""
    public = sorted(exports)

    def __getattr__(name: str):
        if name == "__version__":
            from importlib import metadata

            try:
                return metadata.version(distribution)
            except metadata.PackageNotFoundError:
                return "0+unknown"
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = exports[name].partition(":")
        value = getattr(importlib.import_module(f"{package}.{module}"), attribute or name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(public))

    return __getattr__, __dir__, public

"""Registries filled by decorator, each entry a name, a typed dataclass config and a builder.

    BACKBONES = Registry("backbone")

    @BACKBONES.register("resnet18", ResNetConfig, paper="He et al. 2016", origin="torchvision")
    def resnet18(config: ResNetConfig) -> Backbone: ...

    BACKBONES.build("resnet18", small_stem=True)     # config fields as keyword overrides
    BACKBONES.get("resnet99")   # UnknownNameError: unknown backbone 'resnet99'; valid: resnet18, resnet50

Every lookup of a name that is not registered raises ``UnknownNameError`` listing the valid names;
unknown config fields raise listing the valid fields.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .field_checks import value_problems


class UnknownNameError(ValueError):
    """A name (backbone, method, layout, optimizer, corpus, config field) that is not registered."""


def unknown(kind: str, name: object, valid, *, plural: str | None = None) -> UnknownNameError:
    """The error for an unknown ``kind`` name, listing the ``valid`` ones (sorted)."""
    return UnknownNameError(f"unknown {kind} {name!r}; valid {plural or kind + 's'}: "
                            f"{', '.join(sorted(map(str, valid)))}")


@dataclass(frozen=True)
class Entry:
    """One registered name: its config dataclass, its builder, where it comes from, and the typed data the
    registry's users read besides the builder (``spec``: a ``MethodSpec`` for methods)."""

    name: str
    config_cls: type
    builder: Callable
    provenance: dict[str, str] = field(default_factory=dict)
    defaults: dict = field(default_factory=dict)
    spec: Any = None

    def config(self, **overrides) -> Any:
        """A config with this entry's defaults and ``overrides`` (unknown fields raise, listing the valid ones)."""
        return make_config(self.config_cls, {**self.defaults, **overrides}, f"{self.name} config field")


def make_config(config_cls: type, values: dict, kind: str = "config field"):
    """``config_cls(**values)`` for a dataclass, with unknown keys reported by name, listing the valid fields."""
    valid = [f.name for f in dataclasses.fields(config_cls)]
    for key in values:
        if key not in valid:
            raise unknown(kind, key, valid)
    return config_cls(**values)


class Registry:
    """Name → ``Entry``; filled with ``@registry.register(name, ConfigCls, **provenance)``."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, config_cls: type, *, defaults: dict | None = None, spec: Any = None,
                 **provenance: str):
        """Decorator registering ``builder(config)`` under ``name``; a duplicate name raises ``ValueError``.

        ``defaults`` overrides the config class's field defaults for this entry (a variant of one config
        class, as timm's tagged entries); ``provenance`` (paper, origin, licence ...) is kept for listings.
        """
        if not dataclasses.is_dataclass(config_cls):
            raise TypeError(f"{self.kind} {name!r}: config class must be a dataclass, got {config_cls!r}")

        def decorate(builder: Callable) -> Callable:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            entry = Entry(name, config_cls, builder, dict(provenance), dict(defaults or {}), spec)
            entry.config()  # the defaults must form a valid config
            self._entries[name] = entry
            return builder

        return decorate

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str) -> Entry:
        """The entry for ``name``; ``UnknownNameError`` listing the valid names when there is none."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise unknown(self.kind, name, self._entries) from None

    def build(self, name: str, config=None, /, *args, **kwargs):
        """``builder(config, *args, **kwargs)``; ``config``: an instance of the entry's config class, a dict or None."""
        entry = self.get(name)
        if config is None:
            config = entry.config()
        elif isinstance(config, dict):
            config = entry.config(**config)
        elif not isinstance(config, entry.config_cls):
            raise TypeError(f"{self.kind} {name!r}: expected a {entry.config_cls.__name__} or a dict, "
                            f"got {type(config).__name__}")
        problems = value_problems(self.kind, config)  # the run config's rules, for objects built from Python too
        if problems:
            raise problems[0] if len(problems) == 1 else ValueError("; ".join(map(str, problems)))
        return entry.builder(config, *args, **kwargs)

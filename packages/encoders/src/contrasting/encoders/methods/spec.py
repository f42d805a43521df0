"""The method registry and what each entry carries besides its module: ``MethodSpec``.

A method lives in one file that defines its module, its config dataclass and registers both with its spec::

    @register_method("byol", BYOLConfig, BYOL_SPEC, paper="Grill et al., NeurIPS 2020", origin="deepmind/byol")
    def _byol(config: BYOLConfig, backbone: ResNet, process_group=None) -> BYOL: ...

Everything else (the run config's optimiser defaults, the data recipe, the synthetic corpus's views, the trainer's
"does it train, does it need the corpus's classes", the demo's short-run settings and the loss of a run that
learned nothing) reads the spec, so nothing outside the method's file names a method.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..registry import Registry

METHODS = Registry("method")
ROLES = ("ssl", "supervised", "random")


@dataclass(frozen=True)
class ShortRun:
    """The size of a short run (the demo's presets), from which a method derives its settings for it:
    ``steps`` optimizer steps of ``batch_size`` images at ``resolution`` px, ``warmup_epochs`` of warm-up."""

    steps: int
    batch_size: int
    resolution: int
    warmup_epochs: float


@dataclass(frozen=True)
class MethodSpec:
    """What a method brings besides its module.

    * ``title``: its name in tables and encoder names ("MoCoV2"); ``role``: "ssl", "supervised" or "random" (the
      study's encoder roles);
    * ``optim``: the paper's optimiser section (``optim`` of the run config: name, lr per 256 images, ...);
    * ``recipe``: the ``contrasting.data`` augmentation recipe it trains with, on every corpus (None: the recipe
      of the method's name);
    * ``trainable``: False for baselines exported as initialised; ``corpus_classes``: its ``num_classes`` comes
      from the corpus when unset; ``corpus_indices``: its forward takes each sample's corpus index (``indices=``,
      delivered by the data sources as a batch's third element) and its ``corpus_size`` comes from the corpus when
      unset (PIRL's memory bank);
    * ``step_cost``: cost of one step relative to MoCo v2's (schedules the costliest runs first);
    * ``short_run(run) -> dict``: the run-config layer (``method``, ``optim``, ``data`` sections) for a short run
      of size ``run`` (``ShortRun``), as the demo trains it; None: the paper's settings;
    * ``chance_loss(method_options, batch_size)``: the loss of a run that learned nothing (ln of the candidates a
      row scores, ln K for prototype codes), None where there is no such value.
    """

    title: str
    role: str = "ssl"
    optim: Mapping = field(default_factory=dict)
    recipe: str | None = None
    trainable: bool = True
    corpus_classes: bool = False
    corpus_indices: bool = False
    step_cost: float = 1.0
    short_run: Callable[[ShortRun], dict] | None = None
    chance_loss: Callable[[Mapping, int], float | None] = lambda options, batch_size: None

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"role: expected one of {', '.join(ROLES)}, got {self.role!r}")


def register_method(name: str, config_cls: type, spec: MethodSpec, **provenance: str):
    """Decorator: register ``builder(config, backbone, process_group) -> Method`` under ``name`` with ``spec``."""
    if not isinstance(spec, MethodSpec):
        raise TypeError(f"method {name!r}: spec must be a MethodSpec, got {type(spec).__name__}")
    return METHODS.register(name, config_cls, spec=spec, **provenance)


def method_spec(name: str) -> MethodSpec:
    """The spec of registered method ``name`` (``UnknownNameError`` listing the valid names otherwise)."""
    return METHODS.get(name).spec


def methods_with_role(role: str) -> list[str]:
    """The registered methods of ``role`` ("ssl", "supervised", "random"), sorted."""
    return [n for n in METHODS.names() if method_spec(n).role == role]


def log_candidates(count: int) -> float:
    """ln(count): the InfoNCE loss of uniform scores over ``count`` candidates."""
    return math.log(count)

"""The value rules of every config field, by field name (the same rule in every section and registry entry).

``FIELD_CHECKS[name](value)`` is None for a valid value, else what was expected (``expected an integer >= 1``);
a field without a rule of its own is checked by its annotated type (``bool``, ``str``, ``int``, ``float``,
``dict``). Used by the run config (``config.field_problems``, naming ``section.field``) and by the registries'
``build`` (every method, backbone and optimiser built from Python gets the same checks).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], "str | None"]
"""A value check: None when the value is valid, else what was expected (``expected an integer >= 1``)."""


def _integer(least: int) -> Check:
    def check(value):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            return f"expected an integer >= {least}"
        return None
    return check


def _number(low: float, *, above: bool = False, high: float | None = None) -> Check:
    bound = f"in [{low}, {high}]" if high is not None else (f"> {low}" if above else f">= {low}")

    def check(value):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or (value <= low if above else value < low) or (high is not None and value > high):
            return f"expected a finite number {bound}"
        return None
    return check


def _integers(least: int) -> Check:
    one = _integer(least)

    def check(value):
        if not isinstance(value, (list, tuple)) or any(one(v) for v in value):
            return f"expected a list of integers >= {least}"
        return None
    return check


def _betas(value):
    if not isinstance(value, (list, tuple)) or len(value) != 2 or any(_number(0, high=1)(v) or v == 1 for v in value):
        return "expected two numbers in [0, 1), e.g. [0.9, 0.999]"
    return None


_SIZE, _COUNT, _POSITIVE, _NONNEGATIVE, _FRACTION = _integer(1), _integer(0), _number(0, above=True), _number(0), \
    _number(0, high=1)
FIELD_CHECKS: dict[str, Check] = {
    # sizes, lengths and intervals: >= 1
    **dict.fromkeys(("epochs", "batch_size", "grad_accum", "keep_checkpoints", "log_every", "max_steps",
                     "image_size", "width", "projection_dim", "projection_hidden", "prediction_hidden", "queue_size",
                     "prototypes", "sinkhorn_iterations"), _SIZE),
    # counts where 0 means off or none, seeds, the number of data-loading workers (0: the main process)
    **dict.fromkeys(("seed", "queue_seed", "checkpoint_every", "knn_every", "workers", "freeze_prototypes_steps",
                     "queue_length", "queue_start_step", "zero_stage"), _COUNT),
    "num_classes": _integer(2),
    # rates and temperatures: finite > 0
    **dict.fromkeys(("lr", "temperature", "epsilon", "eta"), _POSITIVE),
    # decays, clipping, warm-up: finite >= 0
    **dict.fromkeys(("weight_decay", "warmup_epochs", "grad_clip"), _NONNEGATIVE),
    # fractions and momenta: [0, 1]
    **dict.fromkeys(("final_lr_ratio", "momentum", "base_momentum", "label_smoothing"), _FRACTION),
    "export_steps": _integers(1),
    "assign_views": _integers(0),
    "betas": _betas,
}
"""The value check of every numeric config field, by field name (the same rule in every section)."""

_TYPE_CHECKS: dict[str, Check] = {
    "bool": lambda v: None if isinstance(v, bool) else "expected true or false",
    "str": lambda v: None if isinstance(v, str) and v.strip() else "expected a non-empty string",
    "dict": lambda v: None if isinstance(v, dict) else "expected a mapping",
    "int": lambda v: None if isinstance(v, int) and not isinstance(v, bool) else "expected an integer",
    "float": _number(-math.inf),
}


def field_check(f: dataclasses.Field) -> tuple[Check | None, bool]:
    """The check of field ``f`` (by name, else by its annotation's type) and whether None is allowed."""
    annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    kinds = [part.strip() for part in annotation.split("|")]
    optional = "None" in kinds
    base = next((k for k in kinds if k != "None"), "")
    return FIELD_CHECKS.get(f.name, _TYPE_CHECKS.get(base)), optional



def value_problem(prefix: str, f: dataclasses.Field, value: Any) -> ValueError | None:
    """The ``ValueError`` of ``value`` for field ``f`` when it breaks the field's rule (None when it keeps it),
    naming ``<prefix>.<field>``, e.g. ``method.temperature: expected a finite number > 0, got 0``."""
    check, optional = field_check(f)
    if check is None or (optional and value is None):
        return None
    problem = check(value)
    return ValueError(f"{prefix}.{f.name}: {problem}, got {value!r}") if problem else None


def value_problems(prefix: str, config: Any) -> list[ValueError]:
    """``value_problem`` of every field of the dataclass instance ``config``."""
    found = (value_problem(prefix, f, getattr(config, f.name)) for f in dataclasses.fields(config))
    return [p for p in found if p is not None]

"""The pre-training configuration: defaults, per-method defaults, a YAML file, ``key=value`` overrides.

Layers, later ones winning (dicts merge key by key, anything else replaces):

    DEFAULTS  →  the method's optimiser (MethodSpec.optim)  →  YAML file  →  command-line flags  →  key=value overrides

The method named by the user layers (default ``simclr``) picks the method defaults, so ``method.name=swav``
also switches to LARS with SwAV's settings; naming another optimizer (``optim.name=adamw``) drops the
method's optimizer settings for that optimizer's own defaults. The result is a ``RunConfig``;
``RunConfig.to_dict()`` is what the run directory's ``config.yaml`` stores. Sections (the YAML file has the
same shape)::

    method:    {name: simclr, <SimCLRConfig fields>}          # methods.METHODS
    backbone:  {name: resnet50, small_stem: false, width: 64}  # backbones.BACKBONES
    optim:     {name: lars, lr: 0.3, weight_decay: 1.0e-6, warmup_epochs: 10, ...}   # optim.OPTIMIZERS
    data:      {corpus: shapes, recipe: null, image_size: null, ...}                # DataSection
    train:     {epochs: 100, batch_size: 256, output_dir: runs/pretrain, ...}       # TrainSection
    deepspeed: {}        # merged last into the generated DeepSpeed config (any DeepSpeed key)

Overrides are dotted paths with YAML values: ``train.epochs=3``, ``optim.lr=0.6``,
``deepspeed.zero_optimization.stage=2``, ``method.assign_views=[0,1]``. Unknown sections and fields
raise ``UnknownNameError`` listing the valid ones (``deepspeed`` is passed through as is).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .backbones import BACKBONES
from .methods import METHODS
from .optim import OPTIMIZERS, check_zero_stage
from .registry import make_config, unknown


@dataclass
class DataSection:
    """Where the images come from and how the views are made.

    ``corpus``: a built-in corpus name (``contrasting.data.builtin``), ``synthetic`` (random tensors, for
    smoke tests and benchmarks), an image-folder directory, a file list, or ``<layout>[/<subset>]:<root>``: a
    ``contrasting.data.corpora`` layout (imagenet, places365, kinetics, taskonomy) and optionally one of the
    study's subsets (half, quarter, half_linear, half_log), e.g. ``imagenet/half_log:/data/imagenet``. ``recipe``: the
    ``contrasting.data`` augmentation recipe (None: the method's). ``image_size``: the large-crop size
    (None: the recipe's). ``root``: where built-in data is cached (None: its default). ``executor``:
    the recipe executor (``auto``: DALI where it is available, else torchvision). ``options``: passed
    to the recipe as is.
    """

    corpus: str = "shapes"
    recipe: str | None = None
    image_size: int | None = None
    root: str | None = None
    executor: str = "auto"
    workers: int = 4
    options: dict = field(default_factory=dict)


@dataclass
class TrainSection:
    """How long, how big and where: ``batch_size`` is per process and micro-step (DeepSpeed's
    train_micro_batch_size_per_gpu); the global batch is batch_size × grad_accum × processes.

    ``precision``: ``fp32``, ``bf16`` or ``fp16`` (DeepSpeed's torch_autocast: weights, BatchNorm and the
    optimizer stay fp32), ``auto``: bf16 on a GPU that supports it and on a CPU with bf16 matrix instructions
    (AVX512-BF16 or AMX), fp32 elsewhere. ``channels_last``: NHWC activations and weights (the layout the fast
    bf16 convolutions want); None: on whenever the precision is bf16 or fp16. ``zero_stage`` None:
    1 with several processes, 0 for one process or LARS (``RunConfig.zero_stage_for``). ``grad_clip`` 0
    disables clipping. ``checkpoint_every``: optimizer steps between checkpoints (0: only at epoch ends).
    ``max_steps``: stop early (None: all epochs).
    ``resume``: continue from the output directory's latest checkpoint when there is one.
    ``knn_train`` / ``knn_test``: image folders (one sub-folder per class) of a labelled task; when both are
    set, the backbone's weighted k-NN top-1 from one to the other is logged (event ``knn``) every
    ``knn_every`` optimizer steps (0: at the end only) — solo-learn's online monitor. ``export_steps``: also
    export the backbone after these optimizer steps (``backbone-step<N>.pt``: the study's epoch series).
    """

    epochs: int = 100
    batch_size: int = 256
    grad_accum: int = 1
    max_steps: int | None = None
    seed: int = 0
    precision: str = "auto"
    channels_last: bool | None = None
    zero_stage: int | None = None
    grad_clip: float = 0.0
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    log_every: int = 10
    progress: bool = True
    output_dir: str = "runs/pretrain"
    resume: bool = True
    knn_train: str | None = None
    knn_test: str | None = None
    knn_every: int = 0
    export_steps: list[int] = field(default_factory=list)


SECTIONS = ("method", "backbone", "optim", "data", "train", "deepspeed")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
EXECUTORS = ("auto", "dali", "torchvision")

DEFAULTS: dict[str, Any] = {
    "method": {"name": "simclr"},
    "backbone": {"name": "resnet50"},
    "optim": {"name": "sgd"},
    "data": {},
    "train": {},
    "deepspeed": {},
}

def merge(base: dict, update: dict) -> dict:
    """A deep copy of ``base`` with ``update`` merged in (dicts key by key, other values replaced)."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> dict:
    """``"a.b.c=value"`` → ``{"a": {"b": {"c": value}}}``, ``value`` parsed as YAML (``3``, ``1e-4``, ``[0, 1]``)."""
    key, sep, raw = text.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise ValueError(f"override {text!r}: expected key.path=value, e.g. train.epochs=3")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as error:
        raise ValueError(f"override {text!r}: the value is not valid YAML ({_first_line(error)})") from None
    if isinstance(value, str) and _looks_like_float(value):
        value = float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string
    out: dict = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def _looks_like_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip().lower() not in ("nan", "inf", "-inf", "infinity", "-infinity")


def load_yaml(path: str | Path) -> dict:
    """A YAML mapping from ``path`` (an empty file is ``{}``); anything else raises ``ValueError`` naming the file
    (not UTF-8, not valid YAML, not a mapping). A missing file or a folder raises the ``OSError`` of opening it."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: expected a UTF-8 YAML file, got undecodable bytes ({error.reason} at byte "
                         f"{error.start})") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML ({_first_line(error)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a YAML mapping of sections ({', '.join(SECTIONS)}), "
                         f"got {type(data).__name__}")
    return _fix_floats(data)


def _first_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:300]


def _fix_floats(node):
    if isinstance(node, dict):
        return {k: _fix_floats(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_fix_floats(v) for v in node]
    if isinstance(node, str) and _looks_like_float(node) and any(c in node for c in "eE"):
        return float(node)
    return node


@dataclass
class RunConfig:
    """A resolved, validated configuration (module docstring). Build it with ``resolve_config``."""

    method: str
    method_options: dict
    backbone: str
    backbone_options: dict
    optimizer: str
    optimizer_options: dict
    data: DataSection
    train: TrainSection
    deepspeed: dict = field(default_factory=dict)

    def method_config(self):
        """The method's config dataclass instance."""
        return METHODS.get(self.method).config(**self.method_options)

    def optimizer_config(self):
        """The optimizer's config dataclass instance."""
        return OPTIMIZERS.get(self.optimizer).config(**self.optimizer_options)

    def zero_stage_for(self, world_size: int) -> int:
        """``train.zero_stage``, or its default for ``world_size`` processes: 1 for SGD/AdamW on several ranks;
        0 for LARS (needs whole tensors) and for one process (nothing to partition, and ZeRO's flat-buffer
        copies cost ~5 % of a small CPU step)."""
        if self.train.zero_stage is not None:
            return self.train.zero_stage
        return 0 if self.optimizer == "lars" or world_size == 1 else 1

    def to_dict(self) -> dict:
        """The nested-section form (what ``resolve_config`` accepts as a layer, and config.yaml holds)."""
        return {
            "method": {"name": self.method, **self.method_options},
            "backbone": {"name": self.backbone, **self.backbone_options},
            "optim": {"name": self.optimizer, **self.optimizer_options},
            "data": dataclasses.asdict(self.data),
            "train": dataclasses.asdict(self.train),
            "deepspeed": copy.deepcopy(self.deepspeed),
        }


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


def _field_check(f: dataclasses.Field) -> tuple[Check | None, bool]:
    """The check of field ``f`` (by name, else by its annotation's type) and whether None is allowed."""
    annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    kinds = [part.strip() for part in annotation.split("|")]
    optional = "None" in kinds
    base = next((k for k in kinds if k != "None"), "")
    return FIELD_CHECKS.get(f.name, _TYPE_CHECKS.get(base)), optional


def check_fields(section: str, config_cls: type, values: dict, kind: str) -> None:
    """Check ``values`` (field → value, as the user gave them) against the dataclass ``config_cls``.

    Unknown fields raise ``UnknownNameError`` listing the valid ones (``kind``: ``train field``...); a value of the
    wrong type or out of range raises ``ValueError`` naming the dotted key, e.g.
    ``data.image_size: expected an integer >= 1, got 0``.
    """
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    for key, value in values.items():
        if key not in fields:
            raise unknown(kind, key, fields)
        check, optional = _field_check(fields[key])
        if check is None or (optional and value is None):
            continue
        problem = check(value)
        if problem:
            raise ValueError(f"{section}.{key}: {problem}, got {value!r}")


def _section(tree: dict, section: str) -> dict:
    node = tree.get(section)
    if node is None:
        return {}
    if not isinstance(node, dict):
        raise ValueError(f"{section}: expected a mapping of {section} fields (e.g. {section}.<field>=<value>), "
                         f"got {node!r}")
    return dict(node)


def _named_section(tree: dict, section: str, registry) -> tuple[str, dict]:
    node = _section(tree, section)
    name = node.pop("name", None)
    entry = registry.get(name)
    check_fields(section, entry.config_cls, node, f"{name} config field")
    entry.config(**node)  # the config class's own checks (they name the field)
    return name, node


def _check_names(data: DataSection, train: TrainSection) -> None:
    if data.executor not in EXECUTORS:
        raise unknown("data executor", data.executor, EXECUTORS)
    if train.precision not in PRECISIONS:
        raise unknown("precision", train.precision, PRECISIONS)
    if (train.knn_train is None) != (train.knn_test is None):
        raise ValueError("train.knn_train and train.knn_test: give both image folders or neither")


def resolve_config(*layers: dict) -> RunConfig:
    """Merge user ``layers`` (nested-section dicts, later wins) over the defaults and the method's defaults.

    Raises ``UnknownNameError`` for unknown sections, names and fields (listing the valid ones) and
    ``ValueError`` naming the dotted key for invalid values (``check_fields``: every numeric field is
    range-checked, e.g. sizes and epochs >= 1, learning rates and temperatures finite > 0, fractions in [0, 1]).
    """
    user: dict = {}
    for layer in layers:
        if not isinstance(layer, dict):
            raise ValueError(f"config: expected a mapping of sections ({', '.join(SECTIONS)}), got {layer!r}")
        for section in layer:
            if section not in SECTIONS:
                raise unknown("config section", section, SECTIONS)
        user = merge(user, layer)
    method = _section(user, "method").get("name", DEFAULTS["method"]["name"])
    paper = METHODS.get(method).spec.optim
    method_defaults = {"optim": dict(paper)} if paper else {}
    chosen = _section(user, "optim").get("name")
    if chosen is not None and chosen != method_defaults.get("optim", {}).get("name"):
        # another optimizer than the paper's: its own defaults, not the paper's settings for the other one
        method_defaults = {k: v for k, v in method_defaults.items() if k != "optim"}
    tree = merge(merge(DEFAULTS, method_defaults), user)
    method, method_options = _named_section(tree, "method", METHODS)
    backbone, backbone_options = _named_section(tree, "backbone", BACKBONES)
    optimizer, optimizer_options = _named_section(tree, "optim", OPTIMIZERS)
    sections = {}
    for name, cls in (("data", DataSection), ("train", TrainSection)):
        values = _section(tree, name)
        check_fields(name, cls, values, f"{name} field")
        sections[name] = make_config(cls, values, f"{name} field")
    data, train = sections["data"], sections["train"]
    _check_names(data, train)
    deepspeed_overrides = tree.get("deepspeed") or {}
    if not isinstance(deepspeed_overrides, dict):
        raise ValueError(f"deepspeed: expected a mapping of DeepSpeed config keys, got {deepspeed_overrides!r}")
    config = RunConfig(method, method_options, backbone, backbone_options, optimizer, optimizer_options,
                       data, train, deepspeed_overrides)
    if train.zero_stage is not None:
        check_zero_stage(optimizer, train.zero_stage)
    return config

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
    value = yaml.safe_load(raw) if raw.strip() else None
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
    """A YAML mapping from ``path`` (an empty file is ``{}``); anything else raises ``ValueError``."""
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a YAML mapping of sections ({', '.join(SECTIONS)}), "
                         f"got {type(data).__name__}")
    return _fix_floats(data)


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


def _named_section(tree: dict, section: str, registry) -> tuple[str, dict]:
    node = dict(tree.get(section) or {})
    name = node.pop("name", None)
    entry = registry.get(name)
    entry.config(**node)  # validates field names and values now, with the valid fields in the error
    return name, node


def resolve_config(*layers: dict) -> RunConfig:
    """Merge user ``layers`` (nested-section dicts, later wins) over the defaults and the method's defaults.

    Raises ``UnknownNameError`` for unknown sections, names and fields (listing the valid ones) and
    ``ValueError`` for invalid values.
    """
    user: dict = {}
    for layer in layers:
        for section in layer:
            if section not in SECTIONS:
                raise unknown("config section", section, SECTIONS)
        user = merge(user, layer)
    method = (user.get("method") or {}).get("name", DEFAULTS["method"]["name"])
    paper = METHODS.get(method).spec.optim
    method_defaults = {"optim": dict(paper)} if paper else {}
    chosen = (user.get("optim") or {}).get("name")
    if chosen is not None and chosen != method_defaults.get("optim", {}).get("name"):
        # another optimizer than the paper's: its own defaults, not the paper's settings for the other one
        method_defaults = {k: v for k, v in method_defaults.items() if k != "optim"}
    tree = merge(merge(DEFAULTS, method_defaults), user)
    method, method_options = _named_section(tree, "method", METHODS)
    backbone, backbone_options = _named_section(tree, "backbone", BACKBONES)
    optimizer, optimizer_options = _named_section(tree, "optim", OPTIMIZERS)
    data = make_config(DataSection, tree.get("data") or {}, "data field")
    train = make_config(TrainSection, tree.get("train") or {}, "train field")
    if train.precision not in PRECISIONS:
        raise unknown("precision", train.precision, PRECISIONS)
    for name in ("epochs", "batch_size", "grad_accum", "keep_checkpoints", "log_every"):
        value = getattr(train, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"train.{name}: expected an int >= 1, got {value!r}")
    if train.checkpoint_every < 0:
        raise ValueError(f"train.checkpoint_every: expected an int >= 0, got {train.checkpoint_every!r}")
    if isinstance(train.knn_every, bool) or not isinstance(train.knn_every, int) or train.knn_every < 0:
        raise ValueError(f"train.knn_every: expected an int >= 0, got {train.knn_every!r}")
    if not isinstance(train.export_steps, (list, tuple)) or any(
            isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in train.export_steps):
        raise ValueError(f"train.export_steps: expected a list of ints >= 1, got {train.export_steps!r}")
    if (train.knn_train is None) != (train.knn_test is None):
        raise ValueError("train.knn_train and train.knn_test: give both image folders or neither")
    if train.max_steps is not None and train.max_steps < 1:
        raise ValueError(f"train.max_steps: expected None or an int >= 1, got {train.max_steps!r}")
    deepspeed_overrides = tree.get("deepspeed") or {}
    if not isinstance(deepspeed_overrides, dict):
        raise ValueError(f"deepspeed: expected a mapping of DeepSpeed config keys, got {deepspeed_overrides!r}")
    config = RunConfig(method, method_options, backbone, backbone_options, optimizer, optimizer_options,
                       data, train, deepspeed_overrides)
    if train.zero_stage is not None:
        check_zero_stage(optimizer, train.zero_stage)
    return config

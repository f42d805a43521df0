"""The pre-training configuration: defaults, per-method defaults, a YAML file, ``key=value`` overrides.

Layers, later ones winning (``OmegaConf.merge``: dicts merge key by key, anything else replaces):

    DEFAULTS  →  the method's optimiser (MethodSpec.optim)  →  YAML files  →  command-line flags  →  key=value overrides

then ``${...}`` interpolations are resolved (``${oc.env:CONTRASTING_DATA,/data}``, ``${method.name}``). The method
named by the user layers (default ``simclr``) picks the method defaults, so ``method.name=swav`` also switches to
LARS with SwAV's settings; naming another optimizer (``optim.name=adamw``) drops the method's optimizer settings
for that optimizer's own defaults. The result is a ``RunConfig``; ``RunConfig.to_dict()`` is the fully resolved
config (every field of every section's config class) that the run directory's ``config.yaml`` stores and
``pretrain --dry-run`` prints. Sections (the YAML file has the same shape)::

    method:    {name: simclr, <SimCLRConfig fields>}          # methods.METHODS
    backbone:  {name: resnet50, small_stem: false, width: 64}  # backbones.BACKBONES
    optim:     {name: lars, lr: 0.3, weight_decay: 1.0e-6, warmup_epochs: 10, ...}   # optim.OPTIMIZERS
    data:      {corpus: shapes, recipe: null, image_size: null, ...}                # DataSection
    train:     {epochs: 100, batch_size: 256, output_dir: runs/pretrain, ...}       # TrainSection
    deepspeed: {}        # merged last into the generated DeepSpeed config (any DeepSpeed key)

Overrides are dotted paths with YAML values (``OmegaConf.from_dotlist``): ``train.epochs=3``, ``optim.lr=0.6``,
``deepspeed.zero_optimization.stage=2``, ``method.assign_views=[0,1]``. Every problem of a config is reported at
once (``ConfigErrors``: one ``; ``-separated line): unknown sections, names and fields as ``UnknownNameError``
listing the valid ones (``deepspeed`` is passed through as is), bad values as ``ValueError`` naming the dotted
key. Shipped configs (``configs/``: one per method, ``corpus/<name>`` per study corpus) are named by
``config_path``/``shipped_configs``.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .backbones import BACKBONES
from .field_checks import field_check, value_problem
from .methods import METHODS
from .overrides import container, first_line, omegaconf
from .registry import make_config, unknown
from .training.optim import OPTIMIZERS, check_zero_stage


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
    ``max_steps``: stop early (None: all epochs). ``loggers``: where metrics go
    (``contrasting.encoders.training.loggers``: ``jsonl`` (log.jsonl, always written), ``csv`` (metrics.csv),
    ``tensorboard``, ``wandb``).
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
    loggers: list[str] = field(default_factory=lambda: ["jsonl", "csv"])


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

class ConfigErrors(ValueError):
    """Several problems of one configuration, reported together as one line (``; ``-separated); ``errors`` holds
    each (``UnknownNameError`` or ``ValueError``, each naming its dotted key and what is allowed)."""

    def __init__(self, errors: list[Exception]):
        self.errors = list(errors)
        super().__init__("; ".join(str(e) for e in self.errors))


def raise_all(errors: list[Exception]) -> None:
    """Nothing for no errors, the error itself for one (its type kept), ``ConfigErrors`` for several."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ConfigErrors(errors)


def merge(base: dict, update: dict) -> dict:
    """A copy of ``base`` with ``update`` merged in (``OmegaConf.merge``: dicts key by key, lists and other values
    replaced); a plain dict, ``${...}`` interpolations kept as written (``resolve_config`` resolves them)."""
    conf = omegaconf()
    base, update = _plain(base), _plain(update)
    return container(conf.merge(conf.create(_replaced(base, update)), conf.create(update)))


def _replaced(base: dict, update: dict) -> dict:
    """``base`` without the keys whose value ``update`` replaces by one of another kind (a mapping by a list, a
    list by a mapping), which ``OmegaConf.merge`` refuses to merge."""
    out = {}
    for key, value in base.items():
        if key in update and isinstance(value, dict) and isinstance(update[key], dict):
            out[key] = _replaced(value, update[key])
        elif key not in update or isinstance(value, dict) == isinstance(update[key], dict):
            out[key] = value
    return out


def load_yaml(path: str | Path) -> dict:
    """A YAML mapping from ``path`` (``OmegaConf.load``; an empty file is ``{}``); anything else raises
    ``ValueError`` naming the file (not UTF-8, not valid YAML, not a mapping). A missing file or a folder raises
    the ``OSError`` of opening it."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: expected a UTF-8 YAML file, got undecodable bytes ({error.reason} at byte "
                         f"{error.start})") from None
    try:
        data = yaml.safe_load(text)  # the shape first: OmegaConf reads a list file as a ListConfig
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a YAML mapping of sections ({', '.join(SECTIONS)}), "
                             f"got {type(data).__name__}")
        return container(omegaconf().create(text))
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML ({first_line(error)})") from None
    except ValueError:
        raise
    except Exception as error:  # omegaconf's own errors (a key it cannot hold)
        raise ValueError(f"{path}: {first_line(error)}") from None


def _plain(node):
    """``node`` with tuples as lists and paths as strings (what YAML and OmegaConf hold)."""
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_plain(v) for v in node]
    return str(node) if isinstance(node, Path) else node


def resolve_interpolations(tree: dict) -> dict:
    """``tree`` with its ``${...}`` interpolations resolved (``${method.name}``, ``${oc.env:DATA,/data}``); one
    that cannot be resolved raises ``ValueError`` naming its key."""
    conf = omegaconf()
    node = conf.create(_plain(tree))
    try:
        return conf.to_container(node, resolve=True)
    except Exception as error:  # omegaconf's InterpolationResolutionError and kin, which name the full key
        key = getattr(error, "full_key", None)
        raise ValueError(f"{key + ': ' if key else ''}cannot resolve an interpolation "
                         f"({first_line(error).split(chr(10))[0]})") from None


def shipped_configs() -> dict[str, Path]:
    """The configs shipped with this package (``configs/*.yaml``, ``configs/corpus/*.yaml``), by name
    (``mocov2``, ``corpus/imagenet``)."""
    root = Path(__file__).parent / "configs"
    return {p.relative_to(root).with_suffix("").as_posix(): p for p in sorted(root.rglob("*.yaml"))}


def config_path(name: str | Path) -> Path:
    """A ``--config`` value as a file: an existing path, else a shipped config's name (``mocov2``,
    ``corpus/imagenet``; ``.yaml`` optional); neither raises ``FileNotFoundError`` listing the shipped ones."""
    path = Path(name).expanduser()
    if path.is_file():
        return path
    shipped = shipped_configs()
    key = str(name).removesuffix(".yaml")
    if key in shipped:
        return shipped[key]
    raise FileNotFoundError(f"--config {str(name)!r}: no such file and no shipped config of that name; shipped "
                            f"configs: {', '.join(shipped)}")


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
        """The fully resolved nested-section form, every default included (each section's config dataclass):
        what ``resolve_config`` accepts as a layer (giving an equal config), config.yaml holds and
        ``pretrain --dry-run`` prints. ``method_options``/``backbone_options``/``optimizer_options`` keep what
        the layers gave (the checkpoint fingerprint reads them)."""
        def named(name: str, config) -> dict:
            return {"name": name, **_plain(dataclasses.asdict(config))}

        return {
            "method": named(self.method, self.method_config()),
            "backbone": named(self.backbone, BACKBONES.get(self.backbone).config(**self.backbone_options)),
            "optim": named(self.optimizer, self.optimizer_config()),
            "data": _plain(dataclasses.asdict(self.data)),
            "train": _plain(dataclasses.asdict(self.train)),
            "deepspeed": copy.deepcopy(self.deepspeed),
        }

    def __eq__(self, other: object) -> bool:
        """Equal when both resolve to the same full config (``to_dict``), however sparsely the layers spelt it."""
        if not isinstance(other, RunConfig):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # mutable, as a dataclass with eq


def field_problems(section: str, config_cls: type, values: dict, kind: str) -> list[Exception]:
    """Every problem of ``values`` (field → value, as the user gave them) against the dataclass ``config_cls``:
    an ``UnknownNameError`` per unknown field (listing the valid ones; ``kind``: ``train field``...) and a
    ``ValueError`` per value of the wrong type or out of range, naming the dotted key, e.g.
    ``data.image_size: expected an integer >= 1, got 0``."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    problems: list[Exception] = []
    for key, value in values.items():
        problem = value_problem(section, fields[key], value) if key in fields else unknown(kind, key, fields)
        if problem is not None:
            problems.append(problem)
    if not problems:
        problems += schema_problems(section, config_cls, values)
    return problems


def schema_problems(section: str, config_cls: type, values: dict) -> list[Exception]:
    """``values`` merged into the typed schema ``OmegaConf.structured(config_cls)``: [] when OmegaConf accepts every
    value for its field's annotated type, else one ``ValueError`` naming the dotted key."""
    conf = omegaconf()
    try:
        conf.merge(conf.structured(config_cls), values)
    except Exception as error:  # omegaconf.errors.ValidationError and kin, which carry the key
        key = getattr(error, "full_key", None) or "?"
        return [ValueError(f"{section}.{key}: {first_line(error).split(' full_key:')[0]}")]
    return []


def check_fields(section: str, config_cls: type, values: dict, kind: str) -> None:
    """Raise ``field_problems`` of ``values``: the error itself for one, ``ConfigErrors`` (all of them, one line)
    for several."""
    raise_all(field_problems(section, config_cls, values, kind))


def _valid_values(config_cls: type, values: dict) -> dict:
    """The known fields of ``values`` whose values pass their checks (to go on checking the rest of a config)."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    kept = {}
    for key, value in values.items():
        if key in fields:
            check, optional = field_check(fields[key])
            if check is None or (optional and value is None) or check(value) is None:
                kept[key] = value
    return kept


def _section(tree: dict, section: str) -> dict:
    node = tree.get(section)
    if node is None:
        return {}
    if not isinstance(node, dict):
        raise ValueError(f"{section}: expected a mapping of {section} fields (e.g. {section}.<field>=<value>), "
                         f"got {node!r}")
    return dict(node)


def _named_section(tree: dict, section: str, registry, errors: list[Exception]) -> tuple[str, dict]:
    """(name, options) of a named section (method, backbone, optim); its problems appended to ``errors``."""
    node = _section(tree, section)
    name = node.pop("name", None)
    try:
        entry = registry.get(name)
    except ValueError as error:
        errors.append(error)
        return name, node
    problems = field_problems(section, entry.config_cls, node, f"{name} config field")  # + its typed schema
    if not problems:
        try:
            entry.config(**node)  # the config class's own checks (they name the field)
        except (TypeError, ValueError) as error:
            problems.append(error if isinstance(error, ValueError) else ValueError(f"{section}: {error}"))
    errors.extend(problems)
    return name, node


def _name_problems(data: DataSection, train: TrainSection) -> list[Exception]:
    from .training.loggers import logger_problems

    problems: list[Exception] = []
    if data.executor not in EXECUTORS:
        problems.append(unknown("data executor", data.executor, EXECUTORS))
    if train.precision not in PRECISIONS:
        problems.append(unknown("precision", train.precision, PRECISIONS))
    if (train.knn_train is None) != (train.knn_test is None):
        problems.append(ValueError("train.knn_train and train.knn_test: give both image folders or neither"))
    return problems + logger_problems(train.loggers)


def _user_tree(layers: tuple, errors: list[Exception]) -> dict:
    """The user layers merged (later wins); a layer that is not a mapping raises, unknown sections are left out
    and appended to ``errors``."""
    user: dict = {}
    for layer in layers:
        if not isinstance(layer, dict):
            raise ValueError(f"config: expected a mapping of sections ({', '.join(SECTIONS)}), got {layer!r}")
        errors += [unknown("config section", s, SECTIONS) for s in layer if s not in SECTIONS]
        user = merge(user, {s: v for s, v in layer.items() if s in SECTIONS})
    return user


def _method_defaults(user: dict) -> dict:
    """The method's layer: its paper's optimizer section, dropped when the user names another optimizer."""
    method = _section(user, "method").get("name", DEFAULTS["method"]["name"])
    if method not in METHODS:
        return {}  # resolve_config reports the unknown name with the other problems
    paper = METHODS.get(method).spec.optim
    defaults = {"optim": dict(paper)} if paper else {}
    chosen = _section(user, "optim").get("name")
    if chosen is not None and chosen != defaults.get("optim", {}).get("name"):
        return {}  # another optimizer than the paper's: its own defaults, not the paper's settings for it
    return defaults


def resolve_config(*layers: dict) -> RunConfig:
    """Merge user ``layers`` (nested-section dicts, later wins) over the defaults and the method's defaults,
    resolve ``${...}`` interpolations, and validate.

    Every problem is reported at once (``ConfigErrors``, one ``; ``-separated line; a single problem raises as
    itself): ``UnknownNameError`` for unknown sections, names and fields (listing the valid ones) and
    ``ValueError`` naming the dotted key for invalid values (``check_fields``: every numeric field is
    range-checked, e.g. sizes and epochs >= 1, learning rates and temperatures finite > 0, fractions in [0, 1]).
    """
    errors: list[Exception] = []
    user = _user_tree(layers, errors)
    tree = resolve_interpolations(merge(merge(DEFAULTS, _method_defaults(user)), user))
    named = {s: _named_section(tree, s, r, errors) for s, r in (("method", METHODS), ("backbone", BACKBONES),
                                                               ("optim", OPTIMIZERS))}
    sections = {}
    for name, cls in (("data", DataSection), ("train", TrainSection)):
        values = _section(tree, name)
        problems = field_problems(name, cls, values, f"{name} field")
        errors += problems
        sections[name] = make_config(cls, _valid_values(cls, values), f"{name} field")
    data, train = sections["data"], sections["train"]
    errors += _name_problems(data, train)
    deepspeed_overrides = tree.get("deepspeed") or {}
    if not isinstance(deepspeed_overrides, dict):
        errors.append(ValueError(f"deepspeed: expected a mapping of DeepSpeed config keys, got "
                                 f"{deepspeed_overrides!r}"))
    (method, method_options), (backbone, backbone_options), (optimizer, optimizer_options) = named.values()
    if train.zero_stage is not None and optimizer in OPTIMIZERS:
        try:
            check_zero_stage(optimizer, train.zero_stage)
        except ValueError as error:
            errors.append(error)
    raise_all(errors)
    return RunConfig(method, method_options, backbone, backbone_options, optimizer, optimizer_options,
                     data, train, deepspeed_overrides)

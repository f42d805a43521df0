"""Grid specification: encoders × tasks × hyper-parameter settings × seeds, as typed data loaded from YAML.

A spec file::

    name: shapes-demo
    store: results/demo.sqlite          # relative paths resolve against the spec file's directory
    data_root: data                     # passed to every cell (None: the catalog's own data roots)
    cache_dir: cache                    # feature cache of the frozen-feature protocol
    encoders:
      - {name: SimCLR-balanced, kind: run, path: runs/simclr-balanced,
         method: simclr, corpus: shapes-balanced, corpus_size: 20000, epochs: 30, balanced: true, pair: shapes}
      - {name: MoCoV2, kind: checkpoint, path: ckpt/mocov2.pth, layout: moco, method: mocov2, corpus: imagenet}
      - {name: Supervised, kind: supervised}      # torchvision ImageNet weights (or `path:` a checkpoint)
      - {name: Random, kind: random}
    tasks: [shapes-shape, shapes-depth, {name: sun397, similar_corpus: places}]
    hparams:                            # named settings, each a mapping handed to the cell as `hparams`
      default: {}
      lr3e-4: {lr: 3.0e-4}
    seeds: [0, 1]
    runner: {workers: 2, device: cpu, timeout_s: 1800}
    analysis: {reference_task: shapes-shape}

Overrides are dotted ``key=value`` strings whose value is parsed as YAML: ``runner.workers=4``,
``seeds=[0,1,2]``, ``encoders.Random.arch=resnet18`` (list entries by ``name`` or by index),
``hparams.default.lr=1e-3``. They apply to the raw mapping before it is typed, so an override that names an
unknown key is rejected like the same key in the file.

Validation happens before anything runs and reports every problem at once, each naming its entry
(``encoders[2] 'MoCo': checkpoint ... does not exist``). Task names are checked through an injectable
``task_lookup`` (default: ``contrasting.eval.catalog.tasks.get_task``) and encoders through ``resolve_encoder``
(files must exist; ``run`` directories must contain a checkpoint).

Cell identity. ``resolve_encoder`` turns an entry into a ``ResolvedEncoder`` whose ``identity`` covers what
determines its weights (kind, architecture, checkpoint SHA-256, layout) and not its display name or
metadata; the runner hashes it with the task (and task version), the hyper-parameter values, the seed and the
code version into the cell key.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from contrasting.data.vocabulary import group_name
from contrasting.encoders.overrides import split_override

ENCODER_KINDS = ("checkpoint", "run", "random", "supervised")
# Names a `contrasting pretrain` run directory is searched for, in this order, before any other checkpoint
# file (see `find_run_checkpoint`); the encoders package can replace the rule through `run_resolver`.
RUN_CHECKPOINT_NAMES = ("encoder.pt", "backbone.pt", "final.pt", "checkpoint.pt", "model.pt")
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".pth.tar", ".torch")
RUN_METADATA_FILES = ("run.json", "config.json", "config.yaml", "run.yaml")


class SpecError(ValueError):
    """A grid spec is invalid; ``problems`` lists every problem, each naming its entry."""

    def __init__(self, problems: Iterable[str], source: str | None = None):
        self.problems = list(problems)
        head = f"invalid grid spec {source}" if source else "invalid grid spec"
        super().__init__(head + ":\n" + "\n".join(f"  - {p}" for p in self.problems))


# ------------------------------------------------------------------------------------------- typed entries


@dataclass(frozen=True)
class GridEncoder:
    """One encoder entry. ``kind``: ``checkpoint`` (a file in any layout the loader knows; ``layout`` is a
    hint passed through), ``run`` (a ``contrasting pretrain`` run directory), ``random`` or ``supervised``
    (torchvision's ImageNet weights, or ``path`` to a supervised checkpoint). The remaining fields are
    analysis metadata: pre-training ``method`` (simclr, mocov2, swav, ...), ``corpus`` and its size, pre-training
    ``epochs``, and ``balanced``/``pair`` for the balanced-vs-unbalanced comparison (two encoders with the same
    ``pair`` and method, one balanced and one not, are compared)."""

    name: str
    kind: str
    path: str | None = None
    layout: str | None = None
    arch: str = "resnet50"
    method: str | None = None
    corpus: str | None = None
    corpus_size: int | None = None
    epochs: float | None = None
    balanced: bool | None = None
    pair: str | None = None


@dataclass(frozen=True)
class GridTask:
    """One task entry: a catalog name plus analysis annotations. ``reference`` marks the reference task
    (ImageNet in the study); ``similar_corpus`` names pre-training corpora similar to this task's data (finding
    5: SUN397 ~ places); ``supervised_domain`` marks tasks whose classes the supervised encoder's labels cover
    (Pets within ImageNet; finding 1)."""

    name: str
    reference: bool = False
    similar_corpus: tuple[str, ...] = ()
    supervised_domain: bool = False


@dataclass(frozen=True)
class HParamSetting:
    """A named hyper-parameter setting; ``values`` (a mapping, or a list of mappings for the cell to select
    among on its validation split) is handed unchanged to every cell that uses it."""

    name: str
    values: dict | list = field(default_factory=dict)


@dataclass(frozen=True)
class RunnerOptions:
    """How cells run. ``workers``: worker processes (None: one per visible GPU, else 1); ``device``: ``auto``,
    ``cpu``, ``cuda``; ``timeout_s``: per-cell limit; ``lease_s``: how long a claim outlives its last heartbeat;
    ``executor``: ``module:function`` running one cell (None: contrasting.eval's ``run_cell``);
    ``threads_per_worker``: torch threads of a CPU worker (None: cores / workers); ``retry_failed``: rerun
    cells recorded as failed by an earlier run."""

    workers: int | None = None
    device: str = "auto"
    timeout_s: float = 6 * 3600.0
    lease_s: float = 120.0
    executor: str | None = None
    threads_per_worker: int | None = None
    retry_failed: bool = True


@dataclass(frozen=True)
class AnalysisOptions:
    """Report settings: ``reference_task`` (default: a task marked ``reference``, else ``imagenet``, else the
    first image-level semantic task) and ``hparams`` (the setting reported when cells have no validation score
    to select by; default: the first setting)."""

    reference_task: str | None = None
    hparams: str | None = None


@dataclass(frozen=True)
class GridSpec:
    """A validated grid. Paths are absolute after loading; ``base_dir`` is where relative ones resolved."""

    name: str
    encoders: tuple[GridEncoder, ...]
    tasks: tuple[GridTask, ...]
    hparams: tuple[HParamSetting, ...] = (HParamSetting("default"),)
    seeds: tuple[int, ...] = (0,)
    store: str | None = None
    data_root: str | None = None
    cache_dir: str | None = None
    code_version: str | None = None
    runner: RunnerOptions = RunnerOptions()
    analysis: AnalysisOptions = AnalysisOptions()
    base_dir: str = "."

    def to_dict(self) -> dict:
        """The spec as plain data (the YAML layout, ``base_dir`` left out)."""
        out = dataclasses.asdict(self)
        out.pop("base_dir")
        out["hparams"] = {h.name: copy.deepcopy(h.values) for h in self.hparams}
        out["tasks"] = [{**t, "similar_corpus": list(t["similar_corpus"])} for t in out["tasks"]]
        out["encoders"] = list(out["encoders"])
        out["seeds"] = list(self.seeds)
        return out

    def encoder(self, name: str) -> GridEncoder:
        """The encoder entry called ``name`` (KeyError otherwise)."""
        for e in self.encoders:
            if e.name == name:
                return e
        raise KeyError(f"no encoder named {name!r} in grid {self.name!r}")

    @property
    def store_path(self) -> Path:
        """The results store: ``store`` or ``<base_dir>/<name>.sqlite``."""
        return Path(self.store) if self.store else Path(self.base_dir) / f"{self.name}.sqlite"


def spec_hash(spec: GridSpec) -> str:
    """SHA-256 of the spec's canonical JSON (what was asked for; recorded with every cell)."""
    return hashlib.sha256(canonical_json(spec.to_dict()).encode()).hexdigest()


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no spaces, tuples as lists): the input of every hash here."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)


def _json_default(o):
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    if isinstance(o, Path):
        return str(o)
    if dataclasses.is_dataclass(o):
        return dataclasses.asdict(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


# ---------------------------------------------------------------------------------------------- overrides


def apply_overrides(raw: Mapping, overrides: Iterable[str]) -> dict:
    """A deep copy of ``raw`` with every ``key=value`` override applied. Lists are indexed by position or by
    the ``name`` of an entry (a plain string entry is its own name); a missing mapping level is created, so an
    unknown key reaches validation and is rejected there. Values are read as every ``contrasting`` override
    (``contrasting.encoders.overrides``). ValueError names the override that cannot apply."""
    out = copy.deepcopy(dict(raw))
    if isinstance(out.get("encoders"), list):
        out["encoders"] = [_expand_encoder(e) for e in out["encoders"]]
    for item in overrides:
        path, value = split_override(item)
        node: Any = out
        for depth, part in enumerate(path):
            last = depth == len(path) - 1
            where = ".".join(path[: depth + 1])
            if isinstance(node, list):
                idx = _list_index(node, part)
                if idx is None:
                    raise ValueError(f"override {item!r}: no entry {part!r} in {'.'.join(path[:depth]) or 'spec'}")
                if last:
                    node[idx] = value
                else:
                    if isinstance(node[idx], str):  # a bare task name becomes a mapping to take annotations
                        node[idx] = {"name": node[idx]}
                    node = node[idx]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    if node.get(part) is None:
                        node[part] = {}
                    node = node[part]
            else:
                raise ValueError(f"override {item!r}: {where} is inside a {type(node).__name__}, not a mapping")
    return out


def _expand_encoder(entry):
    """The shorthand encoder entries ``random`` and ``supervised`` as mappings (named Random, Supervised)."""
    if isinstance(entry, str) and entry in ("random", "supervised"):
        return {"name": entry.capitalize(), "kind": entry}
    return entry


def _list_index(items: list, part: str) -> int | None:
    for i, entry in enumerate(items):
        name = entry.get("name") if isinstance(entry, dict) else entry if isinstance(entry, str) else None
        if name == part:
            return i
    if re.fullmatch(r"-?\d+", part) and -len(items) <= int(part) < len(items):
        return int(part) % len(items)
    return None


# ------------------------------------------------------------------------------------------ typed parsing


def _fields(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _check_keys(entry: Mapping, cls, where: str, problems: list[str], skip=("base_dir",)) -> None:
    known = [k for k in _fields(cls) if k not in skip]
    for key in entry:
        if key not in known:
            problems.append(f"{where}: unknown key {key!r} (known: {', '.join(known)})")


def _typed(value, want: type | tuple, where: str, problems: list[str], *, optional=True):
    if value is None and optional:
        return None
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, bool) and want in (int, float):
        problems.append(f"{where}: expected {want.__name__}, got {value!r}")
        return None
    if not isinstance(value, want):
        names = want.__name__ if isinstance(want, type) else "/".join(t.__name__ for t in want)
        problems.append(f"{where}: expected {names}, got {type(value).__name__} {value!r}")
        return None
    return value


def _resolve_path(p: str | None, base: Path) -> str | None:
    if p is None:
        return None
    q = Path(os.path.expandvars(str(p))).expanduser()
    return str(q if q.is_absolute() else (base / q).resolve())


_ENCODER_TYPES = {"name": str, "kind": str, "path": str, "layout": str, "arch": str, "method": str, "corpus": str,
                  "corpus_size": int, "epochs": float, "balanced": bool, "pair": str}
_RUNNER_TYPES = {"workers": int, "device": str, "timeout_s": float, "lease_s": float, "executor": str,
                 "threads_per_worker": int, "retry_failed": bool}


def _entries(raw: Mapping, key: str, what: str, problems: list[str]) -> list:
    """``raw[key]`` when it is a non-empty list, else [] with a problem naming ``key`` and ``what`` it lists."""
    entries = raw.get(key) or []
    if not isinstance(entries, list) or not entries:
        problems.append(f"{key}: expected a non-empty list of {what}")
        return []
    return entries


def _encoders_from(raw: Mapping, base: Path, problems: list[str]) -> list[GridEncoder]:
    """The ``encoders`` entries, typed; problems appended."""
    encoders = []
    for i, entry in enumerate(_entries(raw, "encoders", "encoder entries", problems)):
        label = f"encoders[{i}]"
        entry = _expand_encoder(entry)
        if not isinstance(entry, Mapping):
            problems.append(f"{label}: expected a mapping with name and kind, got {entry!r}")
            continue
        label = f"{label} {entry.get('name')!r}" if entry.get("name") else label
        _check_keys(entry, GridEncoder, label, problems)
        vals = {k: _typed(entry.get(k), t, f"{label}.{k}", problems) for k, t in _ENCODER_TYPES.items() if k in entry}
        if not vals.get("name"):
            problems.append(f"{label}: missing 'name'")
            continue
        kind = vals.get("kind")
        if kind not in ENCODER_KINDS:
            problems.append(f"{label}: kind must be one of {', '.join(ENCODER_KINDS)}, got {kind!r}")
            continue
        vals["path"] = _resolve_path(vals.get("path"), base)
        vals = {k: v for k, v in vals.items() if v is not None or k == "path"}
        encoders.append(GridEncoder(**vals))
    _duplicates([e.name for e in encoders], "encoders", problems)
    return encoders


def _tasks_from(raw: Mapping, problems: list[str]) -> list[GridTask]:
    """The ``tasks`` entries (names or mappings), typed; problems appended."""
    tasks = []
    for i, entry in enumerate(_entries(raw, "tasks", "task names or entries", problems)):
        entry = {"name": entry} if isinstance(entry, str) else entry
        label = f"tasks[{i}]" + (f" {entry.get('name')!r}" if isinstance(entry, Mapping) and entry.get("name") else "")
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            problems.append(f"{label}: expected a task name or a mapping with 'name', got {entry!r}")
            continue
        _check_keys(entry, GridTask, label, problems)
        similar = entry.get("similar_corpus") or ()
        similar = (similar,) if isinstance(similar, str) else similar
        if not isinstance(similar, (list, tuple)) or not all(isinstance(s, str) for s in similar):
            problems.append(f"{label}.similar_corpus: expected a corpus name or a list of them, got {similar!r}")
            similar = ()
        tasks.append(GridTask(name=entry["name"],
                              reference=bool(_typed(entry.get("reference", False), bool, f"{label}.reference",
                                                    problems)),
                              similar_corpus=tuple(similar),
                              supervised_domain=bool(_typed(entry.get("supervised_domain", False), bool,
                                                            f"{label}.supervised_domain", problems))))
    _duplicates([t.name for t in tasks], "tasks", problems)
    if sum(t.reference for t in tasks) > 1:
        problems.append("tasks: more than one task is marked reference: true")
    return tasks


def _hparams_from(raw: Mapping, problems: list[str]) -> list[HParamSetting]:
    """The ``hparams`` settings (a mapping name → values, or a list of named entries); problems appended."""
    raw_h = raw.get("hparams")
    hparams: list[HParamSetting] = []
    if raw_h is None:
        hparams = [HParamSetting("default", {})]
    elif isinstance(raw_h, Mapping) and raw_h:
        for hname, values in raw_h.items():
            values = {} if values is None else values
            if isinstance(values, list) and values and all(isinstance(v, Mapping) for v in values):
                hparams.append(HParamSetting(str(hname), [dict(v) for v in values]))
                continue
            if not isinstance(values, Mapping):
                problems.append(f"hparams[{hname!r}]: expected a mapping of hyper-parameters (or a list of them, "
                                f"selected among inside the cell), got {values!r}")
                continue
            hparams.append(HParamSetting(str(hname), dict(values)))
    elif isinstance(raw_h, list) and raw_h:
        for i, entry in enumerate(raw_h):
            if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
                problems.append(f"hparams[{i}]: a list entry needs a 'name' and its values, got {entry!r}")
                continue
            hparams.append(HParamSetting(entry["name"], {k: v for k, v in entry.items() if k != "name"}))
    else:
        problems.append(f"hparams: expected a non-empty mapping of name -> settings, got {raw_h!r}")
    _duplicates([h.name for h in hparams], "hparams", problems)
    values_seen: dict[str, str] = {}
    for h in hparams:
        k = canonical_json(h.values)
        if k in values_seen:
            problems.append(f"hparams[{h.name!r}]: same values as hparams[{values_seen[k]!r}]")
        values_seen.setdefault(k, h.name)
    return hparams


def _seeds_from(raw: Mapping, problems: list[str]) -> list[int]:
    """The ``seeds`` (an integer or a list); problems appended."""
    seeds = raw.get("seeds", [0])
    seeds = [seeds] if isinstance(seeds, int) and not isinstance(seeds, bool) else seeds
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                                                            and s >= 0 for s in seeds):
        problems.append(f"seeds: expected a non-empty list of integers >= 0, got {seeds!r}")
        seeds = [0]
    _duplicates([str(s) for s in seeds], "seeds", problems)
    return seeds


def _options_from(raw: Mapping, hparams: list[HParamSetting], tasks: list[GridTask],
                  problems: list[str]) -> tuple[RunnerOptions, AnalysisOptions]:
    """The ``runner`` and ``analysis`` sections, typed and checked; problems appended."""
    runner = _sub_options(raw.get("runner"), RunnerOptions, _RUNNER_TYPES, "runner", problems)
    if runner.device not in ("auto", "cpu", "cuda") and not runner.device.startswith("cuda:"):
        problems.append(f"runner.device: expected auto, cpu, cuda or cuda:N, got {runner.device!r}")
    if runner.workers is not None and runner.workers < 1:
        problems.append(f"runner.workers: must be at least 1, got {runner.workers}")
    if not (0 < runner.timeout_s < math.inf and 0 < runner.lease_s < math.inf):  # NaN too
        problems.append(f"runner.timeout_s and runner.lease_s must be finite and positive, got {runner.timeout_s} "
                        f"and {runner.lease_s}")
    if runner.executor is not None and ":" not in runner.executor:
        problems.append(f"runner.executor: expected 'module:function', got {runner.executor!r}")
    analysis = _sub_options(raw.get("analysis"), AnalysisOptions, {"reference_task": str, "hparams": str},
                            "analysis", problems)
    if analysis.hparams is not None and analysis.hparams not in {h.name for h in hparams}:
        problems.append(f"analysis.hparams: no hyper-parameter setting named {analysis.hparams!r}")
    if analysis.reference_task is not None and analysis.reference_task not in {t.name for t in tasks}:
        problems.append(f"analysis.reference_task: {analysis.reference_task!r} is not one of the grid's tasks")
    return runner, analysis


def spec_from_dict(raw: Mapping, base_dir: str | os.PathLike = ".", source: str | None = None) -> GridSpec:
    """Type a raw mapping into a ``GridSpec`` (structure and types only; see ``validate_spec`` for tasks and
    files). Raises ``SpecError`` listing every unknown key, wrong type and duplicate name, each with its entry."""
    problems: list[str] = []
    base = Path(base_dir).resolve()
    if not isinstance(raw, Mapping):
        raise SpecError([f"the spec must be a mapping, got {type(raw).__name__}"], source)
    _check_keys(raw, GridSpec, "spec", problems)
    name = _typed(raw.get("name", Path(source).stem if source else "grid"), str, "name", problems) or "grid"

    encoders = _encoders_from(raw, base, problems)
    tasks = _tasks_from(raw, problems)
    hparams = _hparams_from(raw, problems)
    seeds = _seeds_from(raw, problems)
    runner, analysis = _options_from(raw, hparams, tasks, problems)

    strs = {k: _typed(raw.get(k), str, k, problems) for k in ("store", "data_root", "cache_dir", "code_version")}
    if problems:
        raise SpecError(problems, source)
    return GridSpec(name=name, encoders=tuple(encoders), tasks=tuple(tasks), hparams=tuple(hparams),
                    seeds=tuple(seeds), store=_resolve_path(strs["store"], base),
                    data_root=_resolve_path(strs["data_root"], base), cache_dir=_resolve_path(strs["cache_dir"], base),
                    code_version=strs["code_version"], runner=runner, analysis=analysis, base_dir=str(base))


def _sub_options(raw, cls, types: dict, where: str, problems: list[str]):
    if raw is None:
        return cls()
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: expected a mapping, got {raw!r}")
        return cls()
    _check_keys(raw, cls, where, problems)
    vals = {k: _typed(raw[k], t, f"{where}.{k}", problems) for k, t in types.items() if k in raw}
    nullable = {f.name for f in dataclasses.fields(cls) if f.default is None}
    return cls(**{k: v for k, v in vals.items() if v is not None or k in nullable})


def _duplicates(names: list[str], where: str, problems: list[str]) -> None:
    seen = set()
    for n in names:
        if n in seen:
            problems.append(f"{where}: {n!r} appears more than once")
        seen.add(n)


# ------------------------------------------------------------------------------------------- task lookup


@dataclass(frozen=True)
class TaskInfo:
    """What the grid needs to know about a task: ``level`` (image/pixel) × ``kind`` (semantic/structural) is
    its group; ``metric`` and ``higher_is_better`` its primary metric; ``version`` enters the cell key."""

    name: str
    level: str
    kind: str
    metric: str
    higher_is_better: bool = True
    version: int = 1
    title: str = ""
    builtin: bool = False

    @property
    def group(self) -> str:
        """``'<level> <kind>'``, e.g. ``'pixel structural'``."""
        return group_name(self.level, self.kind)


TaskLookup = Callable[[str], TaskInfo]


def catalog_task_lookup(name: str) -> TaskInfo:
    """The default ``TaskLookup``: ``contrasting.eval.catalog.tasks.get_task`` (KeyError naming the known tasks)."""
    from contrasting.eval.catalog import tasks as catalog  # the catalog is optional for the grid

    t = catalog.get_task(name)
    return TaskInfo(name=t.name, level=t.group, kind=t.kind, metric=t.metric, higher_is_better=t.higher_is_better,
                    version=int(getattr(t, "version", 1)), title=getattr(t, "title", ""),
                    builtin=bool(getattr(t, "builtin", False)))


# ----------------------------------------------------------------------------------------- encoder lookup


@dataclass(frozen=True)
class ResolvedEncoder:
    """An encoder entry made concrete: ``loader_spec`` is what the cell executor loads (a checkpoint path,
    ``random:<arch>`` or ``supervised:<arch>``); ``identity`` (weights only: kind, arch, checkpoint SHA-256,
    layout) enters the cell key; ``meta`` is the analysis metadata (method, corpus, ..., ``supervised``,
    ``random``) recorded with every cell."""

    name: str
    kind: str
    loader_spec: str
    arch: str
    layout: str | None
    checkpoint: str | None
    sha256: str | None
    identity: dict
    meta: dict


def sha256_file(path: str | os.PathLike, cache: dict | None = None) -> str:
    """SHA-256 of a file's bytes, streamed; ``cache`` (a dict) is keyed by (path, size, mtime_ns)."""
    st = os.stat(path)
    key = (str(path), st.st_size, st.st_mtime_ns)
    if cache is not None and key in cache:
        return cache[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if cache is not None:
        cache[key] = h.hexdigest()
    return h.hexdigest()


def find_run_checkpoint(run_dir: str | os.PathLike) -> tuple[Path, dict]:
    """The checkpoint of a ``contrasting pretrain`` run directory and the run's metadata.

    Rule (until the encoders package exports its own resolver): the first of ``RUN_CHECKPOINT_NAMES`` found
    directly in ``run_dir`` or its ``checkpoints/``, else the newest file with a checkpoint suffix up to two
    levels down. Metadata is the first of ``RUN_METADATA_FILES`` that parses to a mapping (its ``method``,
    ``corpus``, ``corpus_size``, ``epochs``, ``arch`` fill fields the spec left empty). FileNotFoundError
    names the directory when no checkpoint is there."""
    root = Path(run_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"run directory {root} does not exist")
    found = None
    for sub in (root, root / "checkpoints"):
        found = next((sub / n for n in RUN_CHECKPOINT_NAMES if (sub / n).is_file()), None)
        if found:
            break
    if found is None:
        cands = [p for p in list(root.glob("*")) + list(root.glob("*/*"))
                 if p.is_file() and p.name.endswith(CHECKPOINT_SUFFIXES)]
        if not cands:
            raise FileNotFoundError(f"no checkpoint ({', '.join(RUN_CHECKPOINT_NAMES)} or *.pt/*.pth/*.ckpt) "
                                    f"in run directory {root}")
        found = max(cands, key=lambda p: (p.stat().st_mtime_ns, p.name))
    meta: dict = {}
    for n in RUN_METADATA_FILES:
        p = root / n
        if p.is_file():
            try:
                data = json.loads(p.read_text()) if n.endswith(".json") else yaml.safe_load(p.read_text())
            except (ValueError, yaml.YAMLError):
                continue
            if isinstance(data, Mapping):
                meta = run_metadata(data)
                break
    return found, meta


def run_metadata(config: Mapping) -> dict:
    """The analysis metadata in a run's config: ``contrasting pretrain``'s nested layout (``method.name``,
    ``data.corpus``, ``train.epochs``, ``backbone.name``) or flat keys (``method``, ``corpus``, ``corpus_size``,
    ``epochs``, ``arch``); keys that are absent are left out."""
    def section(name: str, key: str):
        value = config.get(name)
        return value.get(key) if isinstance(value, Mapping) else None

    method = config.get("method")
    out = {"method": method.get("name") if isinstance(method, Mapping) else method,
           "corpus": section("data", "corpus") or config.get("corpus"),
           "corpus_size": config.get("corpus_size"),
           "epochs": section("train", "epochs") if isinstance(config.get("train"), Mapping) else config.get("epochs"),
           "arch": section("backbone", "name") or config.get("arch")}
    return {k: v for k, v in out.items() if v is not None}


RunResolver = Callable[[str], tuple[Path, dict]]


def resolve_encoder(enc: GridEncoder, *, run_resolver: RunResolver = find_run_checkpoint,
                    hash_cache: dict | None = None) -> ResolvedEncoder:
    """Make an entry concrete (see ``ResolvedEncoder``). FileNotFoundError/ValueError explain a missing
    checkpoint, an empty run directory or a ``random`` entry with a path."""
    meta = {k: getattr(enc, k) for k in ("method", "corpus", "corpus_size", "epochs", "balanced", "pair")}
    arch, checkpoint = enc.arch, None
    if enc.kind == "random":
        if enc.path:
            raise ValueError("a random encoder takes no path")
        meta.update(method=meta["method"] or "random")
    elif enc.kind == "supervised":
        meta.update(method=meta["method"] or "supervised")
        if enc.path:
            checkpoint = enc.path
    elif enc.kind == "checkpoint":
        if not enc.path:
            raise ValueError("kind checkpoint needs a path")
        checkpoint = enc.path
    elif enc.kind == "run":
        if not enc.path:
            raise ValueError("kind run needs the run directory as path")
        found, run_meta = run_resolver(enc.path)
        checkpoint = str(found)
        for k, v in run_meta.items():
            if k == "arch":
                continue
            if meta.get(k) is None:
                meta[k] = v
    else:
        raise ValueError(f"unknown kind {enc.kind!r}")
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist")
    sha = sha256_file(checkpoint, hash_cache) if checkpoint else None
    meta.update(supervised=enc.kind == "supervised", random=enc.kind == "random", kind=enc.kind, arch=arch)
    if meta.get("corpus_size") is not None and meta.get("epochs") is not None:
        meta["updates"] = float(meta["corpus_size"]) * float(meta["epochs"])
    loader_spec = checkpoint if checkpoint else f"{enc.kind}:{arch}"
    identity = {"kind": "supervised" if enc.kind == "supervised" else ("random" if enc.kind == "random" else "weights"),
                "arch": arch, "sha256": sha, "layout": enc.layout}
    return ResolvedEncoder(name=enc.name, kind=enc.kind, loader_spec=loader_spec, arch=arch, layout=enc.layout,
                           checkpoint=checkpoint, sha256=sha, identity=identity, meta=meta)


# ------------------------------------------------------------------------------------------------ loading


HParamCheck = Callable[[Mapping | list], list[str]]


def validate_spec(spec: GridSpec, *, task_lookup: TaskLookup = catalog_task_lookup,
                  run_resolver: RunResolver = find_run_checkpoint, hparam_check: HParamCheck | None = None,
                  hash_cache: dict | None = None, source: str | None = None
                  ) -> tuple[dict[str, ResolvedEncoder], dict[str, TaskInfo]]:
    """Check every task against ``task_lookup`` and resolve every encoder (files exist, runs hold a
    checkpoint, no two entries are the same weights); ``hparam_check(values)`` returns problems of one setting.
    Returns the resolved encoders and task infos by name; raises ``SpecError`` listing every problem."""
    problems: list[str] = []
    infos: dict[str, TaskInfo] = {}
    for i, t in enumerate(spec.tasks):
        try:
            infos[t.name] = task_lookup(t.name)
        except (KeyError, ValueError) as exc:  # ValueError: '<name>:paper' of a task without a paper form
            problems.append(f"tasks[{i}] {t.name!r}: unknown task ({exc.args[0] if exc.args else ''})")
    resolved: dict[str, ResolvedEncoder] = {}
    by_identity: dict[str, str] = {}
    for i, e in enumerate(spec.encoders):
        try:
            r = resolve_encoder(e, run_resolver=run_resolver, hash_cache=hash_cache)
        except (OSError, ValueError) as exc:
            problems.append(f"encoders[{i}] {e.name!r}: {exc}")
            continue
        ident = canonical_json(r.identity)
        if ident in by_identity:
            problems.append(f"encoders[{i}] {e.name!r}: same weights as encoder {by_identity[ident]!r}")
        by_identity.setdefault(ident, e.name)
        resolved[e.name] = r
    if hparam_check is not None:
        for h in spec.hparams:
            problems += [f"hparams[{h.name!r}]: {p}" for p in hparam_check(h.values)]
    if problems:
        raise SpecError(problems, source)
    return resolved, infos


def load_spec(source: str | os.PathLike | Mapping, overrides: Iterable[str] = (), *,
              base_dir: str | os.PathLike | None = None, validate: bool = True,
              task_lookup: TaskLookup = catalog_task_lookup, run_resolver: RunResolver = find_run_checkpoint,
              hparam_check: HParamCheck | None = None) -> GridSpec:
    """Read a spec (a YAML file path or an already-parsed mapping), apply ``overrides`` and type it; with
    ``validate`` (default) also check tasks and encoders (``validate_spec``). Relative paths resolve against
    the file's directory (or ``base_dir``, default the working directory, for a mapping). Raises ``SpecError``
    (every problem, each naming its entry), or ValueError for a malformed override."""
    if isinstance(source, Mapping):
        raw, label, base = dict(source), None, Path(base_dir or ".")
    else:
        path = Path(source)
        label = str(path)
        try:
            raw = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise SpecError([f"cannot read the spec: {exc}"], label) from None
        except yaml.YAMLError as exc:
            raise SpecError([f"not valid YAML: {exc}"], label) from None
        raw = raw if raw is not None else {}
        base = Path(base_dir) if base_dir is not None else path.resolve().parent
        if isinstance(raw, Mapping):
            raw = {"name": path.stem, **raw}
    if not isinstance(raw, Mapping):
        raise SpecError([f"the spec must be a mapping, got {type(raw).__name__}"], label)
    raw = apply_overrides(raw, overrides)
    spec = spec_from_dict(raw, base, label)
    if validate:
        validate_spec(spec, task_lookup=task_lookup, run_resolver=run_resolver, hparam_check=hparam_check,
                      source=label)
    return spec

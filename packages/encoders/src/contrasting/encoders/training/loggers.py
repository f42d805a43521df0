"""Where a run's metrics go, chosen by ``train.loggers`` (default ``[jsonl, csv]``), written by rank 0 only.

    jsonl        log.jsonl: one JSON object per event (start, resume, step, checkpoint, knn, export, end, error);
                 always written (the demo, the tests and resume read it), listed or not
    csv          metrics.csv: one row per logged metric event (step, knn), header = the union of their keys
    tensorboard  tensorboard/: scalars of the metric events (``train/loss``, ``train/lr``, ``knn/top1`` ...)
    wandb        Weights & Biases, under the run folder; offline unless ``WANDB_MODE`` says otherwise or
                 ``WANDB_API_KEY`` is set (never waits on a network it was not given)

A logger is a class registered by name with ``@register_logger(name, requires=module)``; ``open_loggers(names,
run_dir, config)`` opens them, ``logger_problems(names)`` says (before any work) which names are unknown or
need a package that is not installed. Each logger gets every event as one record ``{"event", "time", **fields}``.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from contrasting.data.atomic import atomic_write_bytes

from ..registry import unknown

METRIC_EVENTS = ("step", "knn")
"""The events whose fields are metrics (a CSV row, TensorBoard and W&B scalars)."""
ALWAYS = "jsonl"


@dataclass(frozen=True)
class LoggerKind:
    """A registered logger: its class (``cls(run_dir, config)``) and the module it needs (None: none)."""

    name: str
    cls: type
    requires: str | None = None
    install: str | None = None


LOGGERS: dict[str, LoggerKind] = {}


def register_logger(name: str, *, requires: str | None = None, install: str | None = None) -> Callable[[type], type]:
    """Class decorator: register a logger class under ``name``; ``requires``: the module it imports, ``install``:
    the pip requirement that provides it (for the not-installed error)."""
    def decorate(cls: type) -> type:
        if name in LOGGERS:
            raise ValueError(f"logger {name!r} is already registered")
        LOGGERS[name] = LoggerKind(name, cls, requires, install or requires)
        return cls
    return decorate


def installed(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def logger_problems(names) -> list[Exception]:
    """What is wrong with ``train.loggers``: not a list of names, unknown names (listing the valid ones), loggers
    whose package is not installed (naming what to install). Empty when all can be opened."""
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        return [ValueError(f"train.loggers: expected a list of logger names ({', '.join(sorted(LOGGERS))}), "
                           f"got {names!r}")]
    problems: list[Exception] = []
    for name in names:
        kind = LOGGERS.get(name)
        if kind is None:
            problems.append(unknown("logger", name, LOGGERS))
        elif kind.requires and not installed(kind.requires):
            problems.append(ValueError(f"train.loggers: {name!r} needs the {kind.requires} package, which is not "
                                       f"installed (pip install {kind.install}); or drop it from train.loggers"))
    return problems


def open_loggers(names, run_dir: str | os.PathLike, config: dict | None = None) -> list:
    """The loggers ``names`` (``jsonl`` first, always) writing under ``run_dir``; ``config``: the resolved run
    config (W&B stores it). Unknown or missing ones raise ``ValueError`` (``logger_problems``)."""
    problems = logger_problems(names)
    if problems:
        raise ValueError("; ".join(map(str, problems)))
    ordered = [ALWAYS, *(n for n in dict.fromkeys(names) if n != ALWAYS)]
    run_dir = Path(run_dir)
    return [LOGGERS[name].cls(run_dir, config or {}) for name in ordered]


def _scalars(record: dict) -> dict[str, float]:
    """The finite numeric fields of a metric record, but its step, epoch and time."""
    return {k: float(v) for k, v in record.items()
            if k not in ("event", "time", "step", "epoch") and isinstance(v, (int, float))
            and not isinstance(v, bool) and math.isfinite(v)}


def _prefix(event: str) -> str:
    return "train" if event == "step" else event


@register_logger("jsonl")
class JsonlLogger:
    """log.jsonl: every event appended as one JSON line."""

    def __init__(self, run_dir: Path, config: dict):
        self.path = run_dir / "log.jsonl"

    def log(self, record: dict) -> None:
        """Append ``record`` as one line."""
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def close(self) -> None:
        """Nothing to flush (each line is written when logged)."""


@register_logger("csv")
class CsvLogger:
    """metrics.csv: one row per metric event (``METRIC_EVENTS``), the header the union of the rows' keys.

    A new row is appended; a row with a key the header lacks, or a run restarting (``start``: from step 0,
    ``resume``: from its checkpoint's step), rewrites the file atomically, keeping only the rows of steps up to
    where the run continues, so a resumed run never repeats a row."""

    def __init__(self, run_dir: Path, config: dict):
        self.path = run_dir / "metrics.csv"
        self.rows: list[dict] = []
        if self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as f:
                self.rows = list(csv.DictReader(f))
        self.header = list(dict.fromkeys(k for row in self.rows for k in row))

    def log(self, record: dict) -> None:
        """Add a metric row, or trim the rows a restarting run will log again."""
        event = record.get("event")
        if event in ("start", "resume"):
            step = int(record.get("step") or 0)
            kept = [row for row in self.rows if _step(row) <= step]
            if len(kept) != len(self.rows):
                self.rows = kept
                self._rewrite()
            return
        if event not in METRIC_EVENTS:
            return
        row = {k: v for k, v in record.items() if v is None or isinstance(v, (int, float, str))}
        self.rows.append(row)
        if any(k not in self.header for k in row):
            self.header += [k for k in row if k not in self.header]
            self._rewrite()
        else:
            with open(self.path, "a", newline="", encoding="utf-8") as f:
                csv.DictWriter(f, self.header).writerow(row)

    def _rewrite(self) -> None:
        buffer = io.StringIO(newline="")
        writer = csv.DictWriter(buffer, self.header)
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_bytes(self.path, buffer.getvalue().encode("utf-8"))

    def close(self) -> None:
        """Nothing to flush (each row is written when logged)."""


def _step(row: dict) -> int:
    try:
        return int(float(row.get("step") or 0))
    except ValueError:
        return 0


@register_logger("tensorboard", requires="tensorboard")
class TensorBoardLogger:
    """tensorboard/: every metric event's numbers as scalars (``train/loss``, ``train/lr``, ``knn/top1``)."""

    def __init__(self, run_dir: Path, config: dict):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(run_dir / "tensorboard"))

    def log(self, record: dict) -> None:
        """Add the scalars of a metric event at its step."""
        if record.get("event") in METRIC_EVENTS:
            for key, value in _scalars(record).items():
                self.writer.add_scalar(f"{_prefix(record['event'])}/{key}", value, record.get("step", 0))

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()


def wandb_mode(environ=os.environ) -> str:
    """``WANDB_MODE`` when set, else ``online`` with ``WANDB_API_KEY`` and ``offline`` without (no network)."""
    return environ.get("WANDB_MODE") or ("online" if environ.get("WANDB_API_KEY") else "offline")


@register_logger("wandb", requires="wandb")
class WandbLogger:
    """Weights & Biases (files under the run folder, ``wandb_mode``); the run's id follows from the run folder,
    so a resumed run continues the same W&B run. ``WANDB_PROJECT`` names the project (default ``contrasting``)."""

    def __init__(self, run_dir: Path, config: dict):
        import wandb

        run_id = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:16]
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "contrasting"), dir=str(run_dir),
                              name=run_dir.name, id=run_id, resume="allow", config=config, mode=wandb_mode())

    def log(self, record: dict) -> None:
        """Log the scalars of a metric event at its step."""
        if record.get("event") in METRIC_EVENTS:
            prefix = _prefix(record["event"])
            self.run.log({f"{prefix}/{k}": v for k, v in _scalars(record).items()}, step=record.get("step"))

    def close(self) -> None:
        """Finish the W&B run (offline: the files stay for ``wandb sync``)."""
        self.run.finish()

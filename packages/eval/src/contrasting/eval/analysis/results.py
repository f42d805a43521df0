"""The results table: one row per encoder × task × seed, the contract between a grid and its analysis.

``contrasting report RESULTS.csv --out DIR`` and ``contrasting.eval.analyze(df)`` read it; every report writes
its own as ``DIR/results.csv``, so that a report's results round-trip. Columns (``COLUMNS`` is the one owner):

============== ======== ===============================================================================
column         level    meaning
============== ======== ===============================================================================
encoder        cell     encoder name (required)
task           cell     task name (required)
value          cell     the task's primary metric, in the metric's own direction (required, finite)
seed           cell     evaluation seed (default 0)
se             cell     standard error of ``value`` over the test set (empty: unknown)
role           encoder  ``ssl`` / ``supervised`` / ``random`` (required)
method         encoder  pre-training method (``mocov2``, ``swav``, ...; empty for baselines)
corpus         encoder  pre-training corpus
corpus_size    encoder  images in the corpus
epochs         encoder  pre-training epochs
balanced       encoder  ``true`` / ``false`` / empty: the corpus's class balance, for balanced/unbalanced pairs
pair           encoder  matches a balanced encoder with its unbalanced twin at equal updates
level          task     ``image`` / ``pixel`` (required)
kind           task     ``semantic`` / ``structural`` (required)
metric         task     metric name (``top1``, ``miou``, ``iou``, ``l1``, ...; required)
higher_is_better task   ``true`` / ``false`` (required)
baseline       task     the trivial baseline's score: the best input-independent predictor (required)
reference      task     ``true`` for the task whose accuracy plays ImageNet's role
similar_corpus task     corpora similar to the task's data, ``;``-separated
supervised_domain task  ``true`` for tasks close to the supervised encoder's labels (Pets)
best           task     optional: the metric's perfect score when ``metric`` is not in ``PERFECT_SCORE``
============== ======== ===============================================================================

Unknown extra columns are kept and ignored. Encoder columns must agree across an encoder's rows and task
columns across a task's rows. A bad table raises ``ResultsError`` naming the row (the CSV line: the header is
line 1) and the column of every problem. ``samples`` (per-sample statistics of cells from a results store, for
test-set bootstraps) travel beside the table, not in it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from contrasting.data.vocabulary import KINDS, LEVELS

ROLES = ("ssl", "supervised", "random")
# The score a perfect prediction gets, per metric: gains are measured as the share of the way from the trivial
# baseline to it.
PERFECT_SCORE = {"top1": 1.0, "top5": 1.0, "acc": 1.0, "accuracy": 1.0, "miou": 1.0, "miou_no_bg": 1.0, "iou": 1.0,
                 "flow_acc": 1.0, "l1": 0.0, "epe": 0.0}
TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes", "t", "y"), ("false", "0", "no", "f", "n")


class ResultsError(ValueError):
    """A results table is malformed; the message names the row and column of each problem."""


@dataclass(frozen=True)
class Column:
    """One column of the contract: its ``name``, ``level`` (cell / encoder / task), ``parse`` (raw value →
    typed value, raising ValueError with what was expected), whether it is ``required`` and its ``default``."""

    name: str
    level: str
    parse: Callable
    required: bool = False
    default: object = None


def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())


def _text(v) -> str:
    if _blank(v):
        raise ValueError("a non-empty name")
    return str(v).strip()


def _opt_text(v) -> str | None:
    return None if _blank(v) else str(v).strip()


def _number(v, *, finite: bool = True) -> float:
    if isinstance(v, bool):
        raise ValueError("a number")
    try:
        x = float(str(v).strip()) if isinstance(v, str) else float(v)
    except (TypeError, ValueError):
        raise ValueError("a number") from None
    if finite and not math.isfinite(x):
        raise ValueError("a finite number")
    return x


def _opt_number(v) -> float | None:
    return None if _blank(v) else _number(v)


def _se(v) -> float:
    if _blank(v):
        return math.nan
    x = _number(v)
    if x < 0:
        raise ValueError("a standard error >= 0")
    return x


def _int(v) -> int:
    x = _number(v)
    if x != int(x):
        raise ValueError("an integer")
    return int(x)


def _opt_bool(v) -> bool | None:
    if _blank(v):
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, float)) and v in (0, 1):
        return bool(v)
    s = str(v).strip().lower()
    if s in TRUE_WORDS:
        return True
    if s in FALSE_WORDS:
        return False
    raise ValueError("true or false")


def _bool(v) -> bool:
    b = _opt_bool(v)
    if b is None:
        raise ValueError("true or false")
    return b


def _flag(v) -> bool:
    return bool(_opt_bool(v))


def _choice(options: tuple[str, ...]) -> Callable:
    def parse(v):
        s = "" if _blank(v) else str(v).strip().lower()
        if s not in options:
            raise ValueError(" or ".join(options))
        return s
    return parse


def _corpora(v) -> tuple[str, ...]:
    if _blank(v):
        return ()
    return tuple(c.strip() for c in str(v).split(";") if c.strip())


COLUMNS: tuple[Column, ...] = (
    Column("encoder", "cell", _text, True),
    Column("task", "cell", _text, True),
    Column("value", "cell", _number, True),
    Column("seed", "cell", _int, False, 0),
    Column("se", "cell", _se, False, math.nan),
    Column("role", "encoder", _choice(ROLES), True),
    Column("method", "encoder", _opt_text),
    Column("corpus", "encoder", _opt_text),
    Column("corpus_size", "encoder", _opt_number),
    Column("epochs", "encoder", _opt_number),
    Column("balanced", "encoder", _opt_bool),
    Column("pair", "encoder", _opt_text),
    Column("level", "task", _choice(LEVELS), True),
    Column("kind", "task", _choice(KINDS), True),
    Column("metric", "task", _text, True),
    Column("higher_is_better", "task", _bool, True),
    Column("baseline", "task", _number, True),
    Column("reference", "task", _flag, False, False),
    Column("similar_corpus", "task", _corpora, False, ()),
    Column("supervised_domain", "task", _flag, False, False),
    Column("best", "task", _opt_number),
)
COLUMN_NAMES = tuple(c.name for c in COLUMNS)
ENCODER_COLUMNS = tuple(c.name for c in COLUMNS if c.level == "encoder")
TASK_COLUMNS = tuple(c.name for c in COLUMNS if c.level == "task")
MAX_REPORTED = 20


@dataclass
class PerSample:
    """Per-test-sample statistics of one cell, enough to recompute its metric on any resample of the test set:
    ``stats`` (n, k) summed over the samples of a resample give the metric through ``contrasting.eval.catalog.metrics``'
    ``value_from_totals(metric, totals)``."""

    metric: str
    stats: np.ndarray


@dataclass
class Results:
    """A validated results table: ``frame`` (pandas, the contract's columns typed, extra columns kept), plus
    optional ``samples`` ((encoder, task, seed) → PerSample) and ``source`` (for messages)."""

    frame: pd.DataFrame
    samples: dict[tuple[str, str, int], PerSample] = field(default_factory=dict)
    source: str = "results"

    @property
    def encoders(self) -> list[str]:
        """Encoders in order of first appearance."""
        return list(dict.fromkeys(self.frame["encoder"]))

    @property
    def tasks(self) -> list[str]:
        """Tasks in order of first appearance."""
        return list(dict.fromkeys(self.frame["task"]))

    def encoder_meta(self) -> dict[str, dict]:
        """Encoder → its encoder-level columns."""
        first = self.frame.drop_duplicates("encoder")
        return {r["encoder"]: {c: r[c] for c in ENCODER_COLUMNS} for _, r in first.iterrows()}

    def task_meta(self) -> dict[str, dict]:
        """Task → its task-level columns (``best`` filled from ``PERFECT_SCORE``)."""
        first = self.frame.drop_duplicates("task")
        return {r["task"]: {c: r[c] for c in TASK_COLUMNS} for _, r in first.iterrows()}


def _raise(problems: list[str], source: str) -> None:
    if not problems:
        return
    more = f" (and {len(problems) - MAX_REPORTED} more)" if len(problems) > MAX_REPORTED else ""
    lines = problems[:MAX_REPORTED]
    raise ResultsError(f"{source}: {len(problems)} problem(s){more}: " + "; ".join(lines))


def validate(frame: pd.DataFrame, *, source: str = "results", samples: Mapping | None = None) -> Results:
    """Check and type a results table (see the module docstring). Raises ``ResultsError`` listing every problem
    as ``row N, column 'c': expected …, got …`` (N: the CSV line, the header being line 1)."""
    if not isinstance(frame, pd.DataFrame):
        raise ResultsError(f"{source}: expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [c.name for c in COLUMNS if c.required and c.name not in frame.columns]
    if missing:
        raise ResultsError(f"{source}: missing column(s) {', '.join(repr(m) for m in missing)} (required: "
                           f"{', '.join(c.name for c in COLUMNS if c.required)})")
    if frame.empty:
        raise ResultsError(f"{source}: the table has no rows")
    problems: list[str] = []
    typed: dict[str, list] = {}
    for col in COLUMNS:
        values = frame[col.name].tolist() if col.name in frame.columns else [col.default] * len(frame)
        out = []
        for i, v in enumerate(values):
            if col.name not in frame.columns:
                out.append(col.default)
                continue
            try:
                parsed = col.parse(v)
            except ValueError as e:
                problems.append(f"row {i + 2}, column {col.name!r}: expected {e}, got {v!r}")
                parsed = col.default
            if parsed is None and col.default is not None:
                parsed = col.default
            out.append(parsed)
        typed[col.name] = out
    _raise(problems, source)
    df = frame.copy()
    for name, values in typed.items():
        df[name] = pd.Series(values, index=frame.index, dtype=object)
    for name in ("value", "se", "baseline"):
        df[name] = df[name].astype(float)
    df["seed"] = df["seed"].astype(int)
    df = df.reset_index(drop=True)
    problems += _duplicates(df) + _consistency(df, "encoder", ENCODER_COLUMNS) + _consistency(df, "task", TASK_COLUMNS)
    for task, best in df.drop_duplicates("task")[["task", "best"]].itertuples(index=False):
        metric = df.loc[df["task"] == task, "metric"].iloc[0]
        if best is None and metric.lower() not in PERFECT_SCORE:
            row = int(df.index[df["task"] == task][0]) + 2
            problems.append(f"row {row}, column 'best': task {task!r} has metric {metric!r}, whose perfect score is "
                            f"unknown (known: {', '.join(sorted(PERFECT_SCORE))}): give it in a 'best' column")
    _raise(problems, source)
    df["best"] = [b if b is not None else PERFECT_SCORE[m.lower()] for b, m in zip(df["best"], df["metric"],
                                                                                      strict=True)]
    return Results(df, dict(samples or {}), source)


def _duplicates(df: pd.DataFrame) -> list[str]:
    dup = df.duplicated(["encoder", "task", "seed"], keep=False)
    out, seen = [], {}
    for i in df.index[dup]:
        key = (df.at[i, "encoder"], df.at[i, "task"], df.at[i, "seed"])
        if key in seen:
            out.append(f"row {i + 2}, column 'seed': duplicates row {seen[key] + 2} (encoder {key[0]!r}, task "
                       f"{key[1]!r}, seed {key[2]})")
        else:
            seen[key] = i
    return out


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def _consistency(df: pd.DataFrame, key: str, columns: tuple[str, ...]) -> list[str]:
    out = []
    keys = df[key].tolist()
    for col in columns:
        values, first = df[col].tolist(), {}
        reported = set()
        for i, (k, v) in enumerate(zip(keys, values, strict=True)):
            if k not in first:
                first[k] = i
            elif k not in reported and not _same(v, values[first[k]]):
                reported.add(k)
                out.append(f"row {i + 2}, column {col!r}: {key} {k!r} has {values[first[k]]!r} in row "
                           f"{first[k] + 2} but {v!r} here")
    return out


def read_csv(path: str | os.PathLike) -> Results:
    """Read and validate a results CSV (see the module docstring)."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise ResultsError(f"{path}: not a readable CSV file ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
                           ) from None
    return validate(frame, source=str(path))


def _cell_text(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, tuple):
        return ";".join(v)
    if isinstance(v, float):
        return repr(v) if v != int(v) or abs(v) >= 1e15 else str(int(v)) if abs(v) < 1e15 else repr(v)
    return str(v)


def to_frame(results: Results) -> pd.DataFrame:
    """The table as written: the contract's columns first (values as text: booleans ``true``/``false``,
    corpora ``;``-joined, unknown values empty), then the extra columns."""
    df = results.frame
    extra = [c for c in df.columns if c not in COLUMN_NAMES]
    out = pd.DataFrame({c: [_cell_text(v) for v in df[c]] for c in COLUMN_NAMES})
    for c in extra:
        out[c] = df[c].values
    return out


def write_csv(results: Results, path: str | os.PathLike) -> Path:
    """Write the table to ``path`` atomically (one header row; ``read_csv`` gives it back)."""
    from contrasting.data.atomic import atomic_write_text  # keeps this module import-light

    return atomic_write_text(path, to_frame(results).to_csv(index=False))


def role_of(meta: Mapping) -> str:
    """``random``, ``supervised`` or ``ssl`` from a grid's encoder metadata (flags, else the method's name)."""
    method = "".join(ch for ch in str(meta.get("method") or "").lower() if ch.isalnum())
    if meta.get("random") or method == "random":
        return "random"
    if meta.get("supervised") or method == "supervised":
        return "supervised"
    return "ssl"


def _chosen_setting(settings: dict[str, list], higher: bool, hparams: str | None, order) -> tuple[str, bool]:
    """The hyper-parameter setting reported for a cell: the only one, the best mean validation score, else the
    configured one (``hparams``, else the first of ``order``). Returns (setting, selected_without_validation)."""
    if len(settings) == 1:
        return next(iter(settings)), False
    if all(all(c.val_score is not None for c in cs) for cs in settings.values()):
        sign = 1.0 if higher else -1.0
        return max(settings, key=lambda h: sign * float(np.mean([c.val_score for c in settings[h]]))), False
    ranked = [h for h in order if h in settings] + sorted(settings)
    return (hparams if hparams in settings else ranked[0]), True


def from_cells(cells, *, hparams: str | None = None, hparams_order=(), source: str = "store") -> Results:
    """The results table of a grid's finished cells (objects with encoder, task, hparams_name, seed, score,
    val_score, metrics, encoder_meta, task_meta, status): one row per encoder × task × seed of the setting chosen
    by ``_chosen_setting`` (never by the test score), with the cell's ``se``, ``baseline`` and per-sample
    statistics from its metrics. ``frame.attrs["notes"]`` says when a setting was chosen without validation."""
    from contrasting.eval.catalog.metric_stats import decode_samples

    done = [c for c in cells if getattr(c, "status", "done") == "done" and c.score is not None]
    by: dict[tuple[str, str], dict[str, list]] = {}
    for c in done:
        by.setdefault((c.encoder, c.task), {}).setdefault(c.hparams_name, []).append(c)
    rows, samples, unvalidated, no_baseline = [], {}, set(), []
    for (_, _), settings in by.items():
        first = next(iter(settings.values()))[0]
        chosen, blind = _chosen_setting(settings, first.task_meta.get("higher_is_better", True), hparams,
                                        hparams_order)
        if blind:
            unvalidated.add(chosen)
        for c in sorted(settings[chosen], key=lambda c: c.seed):
            em, tm, m = c.encoder_meta, c.task_meta, c.metrics or {}
            if not isinstance(m.get("baseline"), (int, float)):
                no_baseline.append(f"{c.encoder} × {c.task}")
            level, kind = tm.get("level"), tm.get("kind")
            if (level is None or kind is None) and tm.get("group"):
                level, _, kind = str(tm["group"]).partition(" ")
            rows.append({"encoder": c.encoder, "task": c.task, "value": c.score, "seed": c.seed,
                         "se": m.get("se"), "role": role_of(em), "method": em.get("method"),
                         "corpus": em.get("corpus"), "corpus_size": em.get("corpus_size"),
                         "epochs": em.get("epochs"), "balanced": em.get("balanced"), "pair": em.get("pair"),
                         "level": level, "kind": kind, "metric": tm.get("metric"),
                         "higher_is_better": tm.get("higher_is_better", True), "baseline": m.get("baseline"),
                         "reference": bool(tm.get("reference")),
                         "similar_corpus": ";".join(tm.get("similar_corpus") or ()),
                         "supervised_domain": bool(tm.get("supervised_domain")), "hparams": chosen})
            if isinstance(m.get("per_sample"), dict):
                samples[(c.encoder, c.task, int(c.seed))] = PerSample(*decode_samples(m["per_sample"]))
    if no_baseline:
        shown = ", ".join(no_baseline[:6]) + (f", … ({len(no_baseline)} in all)" if len(no_baseline) > 6 else "")
        raise ResultsError(f"{source}: cells without a recorded trivial baseline (run by an older version or an "
                           f"executor that does not report one; rerun them): {shown}")
    if not rows:
        raise ResultsError(f"{source}: no finished cell to report on")
    results = validate(pd.DataFrame(rows), source=source, samples=samples)
    if unvalidated:
        results.frame.attrs["notes"] = [
            "some cells ran under several hyper-parameter settings without validation scores; the setting(s) "
            f"{', '.join(sorted(unvalidated))} are reported (never selected by test score)"]
    return results

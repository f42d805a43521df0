"""The study's analysis on a results table: encoders × tasks, one score per cell, with metadata.

Notation (Kotar et al. 2021, §4 and ../shared/study.md). For encoder e and task t, s[e, t] is the task's
primary test metric (mean over seeds). Oriented scores flip lower-is-better metrics (L1 errors) so that
higher is better everywhere: o[e, t] = s[e, t] if higher_is_better(t) else −s[e, t]. Every comparison below is
made on o. Roles: ``random`` and ``supervised`` baselines (encoder metadata flags), self-supervised (``ssl``)
for every other encoder.

* Correlation with the reference task r (ImageNet, or the built-in semantic task): Spearman ρ and Pearson r of
  o[·, t] against o[·, r] over the self-supervised encoders (baselines would dominate any rank correlation),
  with their two-sided p-values (``scipy.stats.spearmanr``/``pearsonr``).
* Normalised score (the paper's): z[e, t] = (o[e, t] − o[supervised, t]) / std_e o[·, t].
* MoCo v2 vs SwAV, per task: Δ[t] = (mean o[MoCo, t] − mean o[SwAV, t]) / |mean o[SwAV, t]| · 100, the means
  over encoders pre-trained on the corpora both methods used (and the same epochs when both are known).
* Best self-supervised vs supervised: (max_ssl o[·, t] − o[sup, t]) / |o[sup, t]| · 100.
* Balanced vs unbalanced: pairs of encoders with the same ``pair`` id and method, one ``balanced`` and one not;
  per task the relative improvement of unbalanced over balanced; per metric family (accuracy, IoU, L1, ...)
  a one-way ANOVA (``scipy.stats.f_oneway``) of balanced against unbalanced scores standardised per task.
* Similar data: for tasks annotated with ``similar_corpus``, the encoder pre-trained on that corpus against
  the other encoders of its method.

Hyper-parameter settings: when a cell was run under several settings, the setting with the best mean
validation score (``val_score``) is reported; without validation scores the configured setting is used and a
note says so. The test score is never used to select.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

LEVELS = ("image", "pixel")
KINDS = ("semantic", "structural")
GROUPS = ("image semantic", "image structural", "pixel semantic", "pixel structural")
METRIC_FAMILIES = {"top1": "accuracy", "acc": "accuracy", "accuracy": "accuracy", "top5": "accuracy",
                   "miou": "IoU", "miou_no_bg": "IoU", "iou": "IoU", "l1": "L1", "flow_acc": "flow accuracy"}


def method_key(name: str | None) -> str:
    """Normalised method name: lower case, alphanumerics only (``MoCo v2`` → ``mocov2``, ``SwAV`` → ``swav``)."""
    return re.sub(r"[^a-z0-9]", "", (name or "").lower())


def metric_family(metric: str) -> str:
    """The family a metric belongs to for the balanced-vs-unbalanced ANOVA (``top1`` → accuracy, ...)."""
    return METRIC_FAMILIES.get(metric.lower(), metric)


# ------------------------------------------------------------------------------------------------- table


@dataclass
class ResultsTable:
    """Scores of encoders × tasks with metadata.

    ``scores[i, j]`` is encoder i's mean score on task j over seeds (NaN when missing), ``samples[(enc, task)]``
    the per-seed scores it averages (None at construction: one sample per cell, the score itself).
    ``encoder_meta[enc]`` holds ``method``, ``corpus``, ``corpus_size``, ``epochs``, ``updates``, ``balanced``,
    ``pair``, ``supervised``, ``random``; ``task_meta[task]`` holds
    ``level`` (image/pixel), ``kind`` (semantic/structural), ``metric``, ``higher_is_better`` and the
    optional ``reference``, ``similar_corpus``, ``supervised_domain``. ``notes`` explain selections made when
    the table was built."""

    encoders: list[str]
    tasks: list[str]
    scores: np.ndarray
    encoder_meta: dict[str, dict]
    task_meta: dict[str, dict]
    samples: dict[tuple[str, str], list[float]] | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.scores = np.asarray(self.scores, dtype=float).reshape(len(self.encoders), len(self.tasks))
        for t in self.tasks:
            m = self.task_meta.setdefault(t, {})
            if "group" in m and ("level" not in m or "kind" not in m):
                lvl, _, knd = str(m["group"]).partition(" ")
                m.setdefault("level", lvl)
                m.setdefault("kind", knd)
            m.setdefault("higher_is_better", True)
            m.setdefault("metric", "score")
        for e in self.encoders:
            self.encoder_meta.setdefault(e, {})
        if self.samples is None:
            self.samples = {(e, t): [float(self.scores[i, j])] for i, e in enumerate(self.encoders)
                            for j, t in enumerate(self.tasks) if np.isfinite(self.scores[i, j])}

    # -- construction

    @classmethod
    def from_cells(cls, cells: Iterable, *, hparams: str | None = None,
                   hparams_order: Sequence[str] = ()) -> ResultsTable:
        """Build from finished store rows (objects with encoder, task, hparams_name, seed, score, val_score,
        encoder_meta, task_meta, status). Rows not ``done`` are ignored. Several settings per encoder × task:
        the best mean ``val_score``, else ``hparams`` (default: the first of ``hparams_order``)."""
        rows = [c for c in cells if getattr(c, "status", "done") == "done" and c.score is not None]
        encoders = list(dict.fromkeys(c.encoder for c in rows))
        tasks = list(dict.fromkeys(c.task for c in rows))
        emeta = {c.encoder: dict(c.encoder_meta) for c in rows}
        tmeta = {c.task: dict(c.task_meta) for c in rows}
        by: dict[tuple[str, str], dict[str, list]] = {}
        for c in rows:
            by.setdefault((c.encoder, c.task), {}).setdefault(c.hparams_name, []).append(c)
        scores = np.full((len(encoders), len(tasks)), np.nan)
        samples: dict[tuple[str, str], list[float]] = {}
        notes: list[str] = []
        unvalidated = set()
        for (e, t), settings in by.items():
            hib = tmeta[t].get("higher_is_better", True)
            if len(settings) == 1:
                chosen = next(iter(settings))
            elif all(all(c.val_score is not None for c in cs) for cs in settings.values()):
                sign = 1.0 if hib else -1.0
                chosen = max(settings, key=lambda h: sign * float(np.mean([c.val_score for c in settings[h]])))
            else:
                order = [h for h in hparams_order if h in settings] + sorted(settings)
                chosen = hparams if hparams in settings else order[0]
                unvalidated.add(chosen)
            vals = [float(c.score) for c in sorted(settings[chosen], key=lambda c: c.seed)]
            samples[(e, t)] = vals
            scores[encoders.index(e), tasks.index(t)] = float(np.mean(vals))
        if unvalidated:
            notes.append("some cells ran under several hyper-parameter settings without validation scores; the "
                         f"setting(s) {', '.join(sorted(unvalidated))} are reported (never selected by test score)")
        return cls(encoders, tasks, scores, emeta, tmeta, samples, notes)

    @classmethod
    def from_store(cls, store, spec_hash: str | None = None, *, hparams: str | None = None) -> ResultsTable:
        """Build from a ``ResultStore``: the done cells of ``spec_hash`` (default: the latest registered grid),
        in grid order; ``hparams`` as in ``from_cells`` (default: the spec's ``analysis.hparams``)."""
        spec_hash = spec_hash or store.latest_spec_hash()
        order: list[str] = []
        for s in store.specs():
            if s["spec_hash"] == spec_hash:
                order = list(s["spec"].get("hparams", {}))
                hparams = hparams or (s["spec"].get("analysis") or {}).get("hparams")
        return cls.from_cells(store.cells(spec_hash, "done"), hparams=hparams, hparams_order=order)

    # -- views

    def col(self, task: str) -> np.ndarray:
        """Raw scores of ``task`` over encoders."""
        return self.scores[:, self.tasks.index(task)]

    def oriented(self) -> np.ndarray:
        """Scores with lower-is-better tasks negated (higher is better everywhere)."""
        sign = np.array([1.0 if self.task_meta[t].get("higher_is_better", True) else -1.0 for t in self.tasks])
        return self.scores * sign

    def ocol(self, task: str) -> np.ndarray:
        """Oriented scores of ``task`` over encoders."""
        return self.oriented()[:, self.tasks.index(task)]

    def role(self, encoder: str) -> str:
        """``random``, ``supervised`` or ``ssl``."""
        m = self.encoder_meta.get(encoder, {})
        if m.get("random") or method_key(m.get("method")) == "random":
            return "random"
        if m.get("supervised") or method_key(m.get("method")) == "supervised":
            return "supervised"
        return "ssl"

    def by_role(self, role: str) -> list[str]:
        """Encoders with ``role``, in table order."""
        return [e for e in self.encoders if self.role(e) == role]

    def level(self, task: str) -> str:
        """``image`` or ``pixel``."""
        return str(self.task_meta[task].get("level", "image"))

    def kind(self, task: str) -> str:
        """``semantic`` or ``structural``."""
        return str(self.task_meta[task].get("kind", "semantic"))

    def group(self, task: str) -> str:
        """``'<level> <kind>'``."""
        return f"{self.level(task)} {self.kind(task)}"

    def rows(self, encoders: Iterable[str]) -> list[int]:
        """Row indices of ``encoders``."""
        return [self.encoders.index(e) for e in encoders]

    def subset(self, encoders: Sequence[str] | None = None, tasks: Sequence[str] | None = None) -> ResultsTable:
        """A table restricted to ``encoders`` and ``tasks`` (order as given)."""
        encoders = list(encoders) if encoders is not None else list(self.encoders)
        tasks = list(tasks) if tasks is not None else list(self.tasks)
        idx_e, idx_t = self.rows(encoders), [self.tasks.index(t) for t in tasks]
        return ResultsTable(encoders, tasks, self.scores[np.ix_(idx_e, idx_t)],
                            {e: dict(self.encoder_meta[e]) for e in encoders},
                            {t: dict(self.task_meta[t]) for t in tasks},
                            {k: v for k, v in self.samples.items() if k[0] in encoders and k[1] in tasks},
                            list(self.notes))

    def seed_std(self) -> np.ndarray:
        """Standard deviation over seeds per cell (NaN with fewer than two seeds)."""
        out = np.full(self.scores.shape, np.nan)
        for (e, t), vals in self.samples.items():
            if len(vals) > 1:
                out[self.encoders.index(e), self.tasks.index(t)] = float(np.std(vals, ddof=1))
        return out

    def reference_task(self, preferred: str | None = None) -> str | None:
        """The reference task: ``preferred`` if present, else one marked ``reference``, else ``imagenet``, else
        the first image-level semantic task (built-in ones first). None if there is no image semantic task."""
        if preferred:
            if preferred not in self.tasks:
                raise KeyError(f"reference task {preferred!r} is not in the results (tasks: {', '.join(self.tasks)})")
            return preferred
        marked = [t for t in self.tasks if self.task_meta[t].get("reference")]
        if marked:
            return marked[0]
        if "imagenet" in self.tasks:
            return "imagenet"
        sem = [t for t in self.tasks if self.group(t) == "image semantic"]
        sem.sort(key=lambda t: not self.task_meta[t].get("builtin", False))
        return sem[0] if sem else None

    def to_csv(self, path: str | os.PathLike, *, oriented: bool = False) -> Path:
        """Write the encoders × tasks table (raw scores, or oriented) with role/method/corpus columns."""
        path = Path(path)
        data = self.oriented() if oriented else self.scores
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["encoder", "role", "method", "corpus", *self.tasks])
            w.writerow(["(metric)", "", "", "", *[self.task_meta[t].get("metric", "") for t in self.tasks]])
            w.writerow(["(group)", "", "", "", *[self.group(t) for t in self.tasks]])
            for i, e in enumerate(self.encoders):
                m = self.encoder_meta[e]
                w.writerow([e, self.role(e), m.get("method") or "", m.get("corpus") or "",
                            *["" if not np.isfinite(v) else f"{v:.6g}" for v in data[i]]])
        return path


# -------------------------------------------------------------------------------------------- statistics


def _finite_pairs(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def _corr(x: np.ndarray, y: np.ndarray, kind: str) -> tuple[float, float, int]:
    """(coefficient, two-sided p, n) over finite pairs; NaNs when n < 3 or either side is constant."""
    x, y = _finite_pairs(x, y)
    n = len(x)
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan, n
    res = stats.spearmanr(x, y) if kind == "spearman" else stats.pearsonr(x, y)
    return float(res[0]), float(res[1]), n


@dataclass(frozen=True)
class TaskCorrelation:
    """Correlation of one task with the reference over ``n`` encoders."""

    task: str
    group: str
    n: int
    spearman: float
    spearman_p: float
    pearson: float
    pearson_p: float


def analysis_encoders(table: ResultsTable, include: str = "ssl") -> list[str]:
    """The encoders correlations run over: ``ssl`` (self-supervised only, the default), ``pretrained``
    (self-supervised and supervised) or ``all``."""
    if include == "all":
        return list(table.encoders)
    if include == "pretrained":
        return [e for e in table.encoders if table.role(e) != "random"]
    if include == "ssl":
        return table.by_role("ssl")
    raise ValueError(f"include must be ssl, pretrained or all, got {include!r}")


def correlations_with_reference(table: ResultsTable, reference: str, *, include: str = "ssl",
                                pvalues: bool = True) -> list[TaskCorrelation]:
    """Spearman and Pearson correlation (with p-values) of every other task's oriented score with the
    reference task's, over ``analysis_encoders(table, include)``. ``pvalues=False`` computes the coefficients
    only (vectorised; p-values NaN), for bootstrap replicates."""
    rows = table.rows(analysis_encoders(table, include))
    o = table.oriented()[rows]
    jr = table.tasks.index(reference)
    ref = o[:, jr]
    others = [j for j in range(len(table.tasks)) if j != jr]
    if not pvalues and len(rows) >= 3 and np.isfinite(o).all():
        rho = _rowwise_corr(stats.rankdata(ref), stats.rankdata(o[:, others], axis=0))
        r = _rowwise_corr(ref, o[:, others])
        return [TaskCorrelation(table.tasks[j], table.group(table.tasks[j]), len(rows), float(rho[k]), math.nan,
                                float(r[k]), math.nan) for k, j in enumerate(others)]
    out = []
    for j in others:
        t = table.tasks[j]
        rho, prho, n = _corr(ref, o[:, j], "spearman")
        r, pr, _ = _corr(ref, o[:, j], "pearson")
        out.append(TaskCorrelation(t, table.group(t), n, rho, prho, r, pr))
    return out


def _rowwise_corr(x: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Pearson correlation of vector ``x`` with every column of ``ys`` (NaN where either is constant)."""
    xc = x - x.mean()
    yc = ys - ys.mean(axis=0)
    den = np.sqrt((xc**2).sum() * (yc**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (xc @ yc) / np.where(den > 0, den, 1.0), np.nan)


def task_correlation_matrix(table: ResultsTable, *, method: str = "spearman", include: str = "ssl"
                            ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Task × task correlation (``spearman`` or ``pearson``) over ``include`` encoders; returns (tasks, ρ, p),
    tasks ordered by group."""
    tasks = sorted(table.tasks, key=lambda t: (GROUPS.index(table.group(t)) if table.group(t) in GROUPS else 9,
                                               table.tasks.index(t)))
    rows = table.rows(analysis_encoders(table, include))
    o = table.oriented()[rows]
    k = len(tasks)
    rho, p = np.full((k, k), np.nan), np.full((k, k), np.nan)
    for a, ta in enumerate(tasks):
        for b, tb in enumerate(tasks):
            if a == b:
                rho[a, b], p[a, b] = 1.0, 0.0
            elif b > a:
                c, pv, _ = _corr(o[:, table.tasks.index(ta)], o[:, table.tasks.index(tb)], method)
                rho[a, b] = rho[b, a] = c
                p[a, b] = p[b, a] = pv
    return tasks, rho, p


@dataclass(frozen=True)
class Fit:
    """Least-squares line of a task's standardised score against the reference's (``scipy.stats.linregress``)."""

    task: str
    slope: float
    intercept: float
    r: float
    p: float
    n: int


def standardised(table: ResultsTable, rows: Sequence[int] | None = None) -> np.ndarray:
    """Oriented scores z-scored per task over ``rows`` (all encoders by default); constant tasks give 0."""
    o = table.oriented() if rows is None else table.oriented()[list(rows)]
    mu = np.nanmean(o, axis=0)
    sd = np.nanstd(o, axis=0, ddof=1) if o.shape[0] > 1 else np.zeros(o.shape[1])
    sd = np.where((sd > 0) & np.isfinite(sd), sd, 1.0)
    return (o - mu) / sd


def fits_vs_reference(table: ResultsTable, reference: str, *, include: str = "ssl") -> dict[str, Fit]:
    """Per task, the fitted line of its standardised oriented score against the reference's raw score, over
    ``include`` encoders (needs three or more)."""
    enc = analysis_encoders(table, include)
    rows = table.rows(enc)
    z = standardised(table, rows)
    x = table.scores[rows, table.tasks.index(reference)]
    out = {}
    for j, t in enumerate(table.tasks):
        if t == reference:
            continue
        xx, yy = _finite_pairs(x, z[:, j])
        if len(xx) >= 3 and np.ptp(xx) > 0:
            res = stats.linregress(xx, yy)
            out[t] = Fit(t, float(res.slope), float(res.intercept), float(res.rvalue), float(res.pvalue), len(xx))
    return out


def normalised_scores(table: ResultsTable) -> np.ndarray | None:
    """The paper's normalised score (o − o[supervised]) / std over encoders, per task; None without a
    supervised encoder."""
    sup = table.by_role("supervised")
    if not sup:
        return None
    o = table.oriented()
    ref = o[table.encoders.index(sup[0])]
    sd = np.nanstd(o, axis=0, ddof=1)
    sd = np.where((sd > 0) & np.isfinite(sd), sd, 1.0)
    return (o - ref) / sd


def ranks(table: ResultsTable) -> np.ndarray:
    """Rank of each encoder per task (1 = best oriented score; ties averaged; NaN stays NaN)."""
    o = table.oriented()
    out = np.full(o.shape, np.nan)
    for j in range(o.shape[1]):
        ok = np.isfinite(o[:, j])
        out[ok, j] = stats.rankdata(-o[ok, j])
    return out


def relative(a: float, b: float) -> float:
    """(a − b) / |b| · 100, NaN when b is 0 or either is missing."""
    if not (np.isfinite(a) and np.isfinite(b)) or b == 0:
        return math.nan
    return (a - b) / abs(b) * 100.0


# -------------------------------------------------------------------------------------------- comparisons


@dataclass(frozen=True)
class MethodDiff:
    """Per task, method a vs method b: means of oriented scores over ``n`` matched encoders each and
    Δ = (mean_a − mean_b)/|mean_b|·100 (positive: a better)."""

    task: str
    group: str
    n: int
    mean_a: float
    mean_b: float
    rel_diff_pct: float


def matched_method_pairs(table: ResultsTable, a: str, b: str) -> list[tuple[str, str]]:
    """Encoders of methods ``a`` and ``b`` pre-trained on the same corpus (and the same epochs when both are
    known), one pair per corpus-epochs combination (the first encoder of each method there)."""
    ka, kb = method_key(a), method_key(b)

    def slot(e):
        m = table.encoder_meta[e]
        return (m.get("corpus"), m.get("epochs"))

    left = {}
    for e in table.encoders:
        if method_key(table.encoder_meta[e].get("method")) == ka and table.encoder_meta[e].get("corpus"):
            left.setdefault(slot(e), e)
    pairs = []
    for e in table.encoders:
        m = table.encoder_meta[e]
        if method_key(m.get("method")) != kb or not m.get("corpus"):
            continue
        match = left.get(slot(e))
        if match is None and m.get("epochs") is None:
            match = next((v for (c, _), v in left.items() if c == m.get("corpus")), None)
        if match is None:
            match = next((v for (c, ep), v in left.items() if c == m.get("corpus") and ep is None), None)
        if match is not None and match not in [p[0] for p in pairs]:
            pairs.append((match, e))
    return pairs


def method_difference(table: ResultsTable, a: str = "mocov2", b: str = "swav") -> list[MethodDiff]:
    """MoCo v2 vs SwAV (by default) per task over matched pairs (``matched_method_pairs``); empty without
    pairs."""
    pairs = matched_method_pairs(table, a, b)
    if not pairs:
        return []
    o = table.oriented()
    ia, ib = table.rows([p[0] for p in pairs]), table.rows([p[1] for p in pairs])
    out = []
    for j, t in enumerate(table.tasks):
        va, vb = o[ia, j], o[ib, j]
        ok = np.isfinite(va) & np.isfinite(vb)
        if not ok.any():
            continue
        ma, mb = float(va[ok].mean()), float(vb[ok].mean())
        out.append(MethodDiff(t, table.group(t), int(ok.sum()), ma, mb, relative(ma, mb)))
    return out


@dataclass(frozen=True)
class BestVsSupervised:
    """Per task: the best self-supervised encoder, its score and the supervised encoder's (raw metric values)
    and the relative improvement of the best over supervised on oriented scores (positive: SSL better)."""

    task: str
    group: str
    best: str
    best_score: float
    supervised_score: float
    rel_improvement_pct: float


def best_vs_supervised(table: ResultsTable) -> list[BestVsSupervised]:
    """The best self-supervised encoder vs the supervised one, per task (empty without both)."""
    sup, ssl = table.by_role("supervised"), table.by_role("ssl")
    if not sup or not ssl:
        return []
    o = table.oriented()
    i_sup, rows = table.encoders.index(sup[0]), table.rows(ssl)
    out = []
    for j, t in enumerate(table.tasks):
        col = o[rows, j]
        if not np.isfinite(col).any() or not np.isfinite(o[i_sup, j]):
            continue
        k = int(np.nanargmax(col))
        out.append(BestVsSupervised(t, table.group(t), ssl[k], float(table.scores[rows[k], j]),
                                    float(table.scores[i_sup, j]), relative(float(col[k]), float(o[i_sup, j]))))
    return out


def balanced_pairs(table: ResultsTable) -> list[tuple[str, str]]:
    """(balanced, unbalanced) encoder pairs: same ``pair`` id and method, ``balanced`` True and False."""
    groups: dict[tuple, dict[bool, list[str]]] = {}
    for e in table.encoders:
        m = table.encoder_meta[e]
        if m.get("pair") is None or m.get("balanced") is None:
            continue
        groups.setdefault((m["pair"], method_key(m.get("method"))), {}).setdefault(bool(m["balanced"]), []).append(e)
    pairs = []
    for g in groups.values():
        for bal, unb in zip(g.get(True, []), g.get(False, []), strict=False):
            pairs.append((bal, unb))
    return pairs


@dataclass(frozen=True)
class BalanceTask:
    """Per task: mean relative improvement of unbalanced over balanced (oriented; positive: unbalanced
    better) over ``n`` pairs, with the task's metric family."""

    task: str
    group: str
    family: str
    n: int
    rel_improvement_pct: float


@dataclass(frozen=True)
class Anova:
    """One-way ANOVA of balanced vs unbalanced per-task standardised scores within a metric family."""

    family: str
    f: float
    p: float
    n_balanced: int
    n_unbalanced: int
    mean_difference: float  # mean standardised unbalanced − balanced (positive: unbalanced better)


def oneway_anova(*groups: Sequence[float]) -> tuple[float, float]:
    """One-way ANOVA F and p, computed directly (the same statistic as ``scipy.stats.f_oneway``, which the
    tests use as the oracle, without its per-call overhead: bootstrap replicates call this thousands of
    times)."""
    arrs = [np.asarray(g, dtype=float) for g in groups]
    n, k = sum(len(a) for a in arrs), len(arrs)
    grand = np.concatenate(arrs).mean()
    between = sum(len(a) * (a.mean() - grand) ** 2 for a in arrs) / (k - 1)
    within = sum(((a - a.mean()) ** 2).sum() for a in arrs) / (n - k)
    if within == 0:
        return (math.inf, 0.0) if between > 0 else (math.nan, math.nan)
    f = between / within
    return float(f), float(stats.f.sf(f, k - 1, n - k))


def balanced_vs_unbalanced(table: ResultsTable, *, fast: bool = False
                           ) -> tuple[list[tuple[str, str]], list[BalanceTask], list[Anova]]:
    """Pairs, per-task relative improvements and per-family ANOVAs (empty lists without pairs); ``fast`` uses
    ``oneway_anova`` instead of ``scipy.stats.f_oneway`` (same numbers)."""
    pairs = balanced_pairs(table)
    if not pairs:
        return [], [], []
    o = table.oriented()
    bal, unb = table.rows([p[0] for p in pairs]), table.rows([p[1] for p in pairs])
    per_task, fam_vals = [], {}
    for j, t in enumerate(table.tasks):
        rel = [relative(float(o[u, j]), float(o[b, j])) for b, u in zip(bal, unb, strict=True)]
        rel = [r for r in rel if np.isfinite(r)]
        fam = metric_family(str(table.task_meta[t].get("metric", "")))
        if rel:
            per_task.append(BalanceTask(t, table.group(t), fam, len(rel), float(np.mean(rel))))
        both = np.concatenate([o[bal, j], o[unb, j]])
        ok = np.isfinite(both)
        if ok.sum() < 2:
            continue
        mu, sd = both[ok].mean(), both[ok].std(ddof=1)
        sd = sd if sd > 0 else 1.0
        zb, zu = (o[bal, j] - mu) / sd, (o[unb, j] - mu) / sd
        fb, fu = fam_vals.setdefault(fam, ([], []))
        fb += [v for v in zb if np.isfinite(v)]
        fu += [v for v in zu if np.isfinite(v)]
    anovas = []
    for fam, (zb, zu) in fam_vals.items():
        if len(zb) >= 2 and len(zu) >= 2 and np.ptp(zb + zu) > 0:
            f, p = oneway_anova(zb, zu) if fast else stats.f_oneway(zb, zu)
            anovas.append(Anova(fam, float(f), float(p), len(zb), len(zu),
                                float(np.mean(zu) - np.mean(zb))))
    return pairs, per_task, anovas


@dataclass(frozen=True)
class SimilarData:
    """For a task with a similar pre-training corpus: the encoder pre-trained on it vs the other ``n_others``
    encoders of its method (oriented scores): rank among them (1 = best) and the margin over their mean."""

    task: str
    method: str
    encoder: str
    corpus: str
    score: float
    others_mean: float
    rank: int
    n_others: int

    @property
    def beats_mean(self) -> bool:
        """The similar-corpus encoder scores above the mean of the others."""
        return self.score > self.others_mean


def similar_data(table: ResultsTable) -> list[SimilarData]:
    """One entry per (task with ``similar_corpus``, encoder pre-trained on such a corpus) that has at least one
    encoder of the same method (and epochs, when known) pre-trained elsewhere."""
    o = table.oriented()
    out = []
    for j, t in enumerate(table.tasks):
        similar = {c.lower() for c in (table.task_meta[t].get("similar_corpus") or [])}
        if not similar:
            continue
        for e in table.by_role("ssl"):
            m = table.encoder_meta[e]
            if str(m.get("corpus") or "").lower() not in similar or not np.isfinite(o[table.encoders.index(e), j]):
                continue
            others = [x for x in table.by_role("ssl") if x != e
                      and method_key(table.encoder_meta[x].get("method")) == method_key(m.get("method"))
                      and str(table.encoder_meta[x].get("corpus") or "").lower() not in similar
                      and (m.get("epochs") is None or table.encoder_meta[x].get("epochs") in (None, m.get("epochs")))
                      and np.isfinite(o[table.encoders.index(x), j])]
            if not others:
                continue
            s = float(o[table.encoders.index(e), j])
            ov = o[table.rows(others), j]
            out.append(SimilarData(t, str(m.get("method")), e, str(m.get("corpus")), s, float(ov.mean()),
                                   int(1 + (ov > s).sum()), len(others)))
    return out


def correlation_with_meta(table: ResultsTable, key: str, *, include: str = "ssl") -> list[TaskCorrelation]:
    """Spearman/Pearson of each task's oriented score with an encoder metadata number (``corpus_size``,
    ``updates``, ``epochs``) over ``include`` encoders that have it; empty when fewer than 3 have it or it is
    constant."""
    enc = [e for e in analysis_encoders(table, include)
           if isinstance(table.encoder_meta[e].get(key), (int, float))]
    if len(enc) < 3:
        return []
    x = np.array([float(table.encoder_meta[e][key]) for e in enc])
    if np.ptp(x) == 0:
        return []
    o = table.oriented()[table.rows(enc)]
    out = []
    for j, t in enumerate(table.tasks):
        rho, prho, n = _corr(x, o[:, j], "spearman")
        r, pr, _ = _corr(x, o[:, j], "pearson")
        out.append(TaskCorrelation(t, table.group(t), n, rho, prho, r, pr))
    return out


@dataclass(frozen=True)
class Noise:
    """How much signal the grid has: the median seed standard deviation per task (NaN with one seed) and, on
    the reference task, the lift of the best self-supervised encoder over the random one (raw metric)."""

    seed_std: dict[str, float]
    reference: str | None
    ssl_lift_over_random: float | None
    n_seeds: int


def noise_summary(table: ResultsTable, reference: str | None) -> Noise:
    """See ``Noise``."""
    sd = table.seed_std()
    med = {t: (float(np.nanmedian(sd[:, j])) if np.isfinite(sd[:, j]).any() else math.nan)
           for j, t in enumerate(table.tasks)}
    lift = None
    rnd, ssl = table.by_role("random"), table.by_role("ssl")
    if reference and rnd and ssl:
        col = table.ocol(reference)
        best = np.nanmax(col[table.rows(ssl)])
        lift = float(abs(best - col[table.encoders.index(rnd[0])]))
        if best < col[table.encoders.index(rnd[0])]:
            lift = -lift
    n_seeds = max((len(v) for v in table.samples.values()), default=0)
    return Noise(med, reference, lift, n_seeds)


# -------------------------------------------------------------------------------------------- resampling


def sample_array(table: ResultsTable) -> tuple[np.ndarray, np.ndarray]:
    """Per-seed scores as an (encoders, tasks, max seeds) array padded with NaN, and the seed counts."""
    width = max((len(v) for v in table.samples.values()), default=1)
    arr = np.full((len(table.encoders), len(table.tasks), max(width, 1)), np.nan)
    count = np.zeros((len(table.encoders), len(table.tasks)), dtype=int)
    pos_e = {e: i for i, e in enumerate(table.encoders)}
    pos_t = {t: j for j, t in enumerate(table.tasks)}
    for (e, t), vals in table.samples.items():
        arr[pos_e[e], pos_t[t], : len(vals)] = vals
        count[pos_e[e], pos_t[t]] = len(vals)
    return arr, count


def resample(table: ResultsTable, rng: np.random.Generator, *, units: Sequence[Sequence[str]],
             suffix_keys: Sequence[str] = (), seeds: bool = True,
             _samples: tuple[np.ndarray, np.ndarray] | None = None) -> ResultsTable:
    """A bootstrap replicate: the encoders of ``units`` (tuples of encoder names resampled together, with
    replacement) replace those units; encoders in no unit stay. Metadata keys in ``suffix_keys`` (e.g.
    ``pair``, ``corpus``) get the draw's index appended so duplicated units stay separate pairs. With ``seeds``,
    each cell's value is the mean of a resample (with replacement) of its per-seed scores. The replicate
    keeps no per-seed samples. ``_samples``: ``sample_array(table)``, precomputed for speed."""
    in_units = {e for u in units for e in u}
    keep = [e for e in table.encoders if e not in in_units]
    draws = [units[i] for i in rng.integers(0, len(units), len(units))] if units else []
    pos = {e: i for i, e in enumerate(table.encoders)}
    names, rows, meta = [], [], {}
    for e in keep:
        names.append(e)
        rows.append(pos[e])
        meta[e] = table.encoder_meta[e]
    for k, unit in enumerate(draws):
        for e in unit:
            name = f"{e}~{k}"
            names.append(name)
            rows.append(pos[e])
            m = dict(table.encoder_meta[e])
            for key in suffix_keys:
                if m.get(key) is not None:
                    m[key] = f"{m[key]}~{k}"
            meta[name] = m
    scores = table.scores[rows].copy()
    if seeds:
        arr, count = _samples if _samples is not None else sample_array(table)
        if arr.shape[2] > 1:
            a, c = arr[rows], count[rows]
            idx = np.floor(rng.random(a.shape) * np.maximum(c, 1)[..., None]).astype(int)
            drawn = np.take_along_axis(a, idx, axis=2)
            mask = np.arange(a.shape[2])[None, None, :] < c[..., None]
            multi = c > 1
            mean = np.where(mask, drawn, 0.0).sum(axis=2) / np.maximum(c, 1)
            scores = np.where(multi, mean, scores)
    return ResultsTable(names, list(table.tasks), scores, meta, table.task_meta, {})


def fmt(x: float | None, digits: int = 3) -> str:
    """A number for tables: ``'—'`` for None/NaN, else ``digits`` significant digits."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:.{digits}g}"


def fmt_p(p: float | None) -> str:
    """A p-value: ``'—'``, ``'<0.001'`` or three decimals."""
    if p is None or not math.isfinite(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def group_means(values: Mapping[str, float], table: ResultsTable, by: str = "group") -> dict[str, float]:
    """Mean of per-task ``values`` per task ``group`` (or ``level``/``kind``), NaNs skipped."""
    acc: dict[str, list[float]] = {}
    for t, v in values.items():
        key = table.group(t) if by == "group" else (table.level(t) if by == "level" else table.kind(t))
        if np.isfinite(v):
            acc.setdefault(key, []).append(v)
    return {k: float(np.mean(v)) for k, v in acc.items()}

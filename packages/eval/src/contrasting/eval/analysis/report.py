"""``contrasting report SOURCE``: the study's tables, figures and six findings from a results store or a results
CSV.

Outputs, in one folder (default ``<source>-report/`` beside the source):

* ``report.html``: self-contained — CSS inline, figures as base64 ``data:`` PNGs, no script, no external
  resource — so it opens offline and can be mailed as one file;
* ``report.md``: the same content in Markdown, figures linked from ``figures/``;
* ``findings.json``: one record per finding (``claims.FindingRecord``: number, name, claim, verdict, effect,
  ci_low, ci_high, p, margin, units, reasons, ...);
* ``results.csv``: the results table in the long format of ``contrasting.eval.analysis.results`` (one row per encoder ×
  task × seed, with its standard error and the task's trivial baseline), so that a report's own results
  round-trip through ``contrasting report results.csv``; ``cells.csv`` (stores only): every cell of the grid;
* ``figures/*.png``: every figure (``scatter_vs_reference.png`` is the main one).

Both documents are rendered from one list of ``Section``s so that they cannot drift apart.
"""

from __future__ import annotations

import argparse
import base64
import csv
import html
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from contrasting.data.atomic import atomic_write_text
from contrasting.encoders.cli.errors import debugging
from contrasting.eval.analysis import plots, stats
from contrasting.eval.analysis.claims import (
    CLAIMS,
    INCONCLUSIVE,
    NOT_TESTABLE,
    REFUTED,
    REPLICATES,
    SUPPORTED,
    FindingRecord,
    Grid,
    balanced_pairs,
    evaluate_claims,
    method_pairs,
    prepare,
    similar_comparisons,
)
from contrasting.eval.analysis.results import Results, ResultsError, from_cells, read_csv, validate, write_csv

MAIN_FIGURE = "scatter_vs_reference.png"
CHANCE_MARK = "°"


# ---------------------------------------------------------------------------------------- document model


@dataclass
class Para:
    """A paragraph (plain text; ``css`` class in HTML)."""

    text: str
    css: str = ""


@dataclass
class Table:
    """A table: header, rows of cell strings, optional caption; ``bold`` holds (row, column) cells to
    emphasise, ``muted`` cells to grey out (at chance) and ``css`` per-row classes."""

    header: list[str]
    rows: list[list[str]]
    caption: str = ""
    bold: set = field(default_factory=set)
    muted: set = field(default_factory=set)
    row_css: list[str] = field(default_factory=list)
    name: str = ""


@dataclass
class Figure:
    """A PNG figure on disk with its alt text and caption."""

    path: Path
    alt: str
    caption: str = ""


@dataclass
class Section:
    """A titled section with an anchor ``id`` and its items in order."""

    id: str
    title: str
    items: list = field(default_factory=list)


@dataclass
class ReportFiles:
    """Where ``build_report`` wrote its outputs, and the findings it concluded."""

    folder: Path
    html: Path
    markdown: Path
    csv: Path
    findings_json: Path
    cells_csv: Path | None
    figures: dict[str, Path]
    findings: list[FindingRecord]


# ------------------------------------------------------------------------------------------------ build


def _from_store(path, spec_hash: str | None) -> tuple[Results, list, dict]:
    from contrasting.eval.grid.store import ResultStore  # only stores need it

    store = path if isinstance(path, ResultStore) else ResultStore(path, create=False)
    try:
        h = spec_hash or store.latest_spec_hash()
        if h is None:
            raise ResultsError(f"{store.path}: the store holds no grid")
        spec = next((s for s in store.specs() if s["spec_hash"].startswith(h)), None)
        if spec is None:
            raise ResultsError(f"{store.path}: no grid with spec hash {h!r}")
        cells = store.cells(spec["spec_hash"])
        order = list(spec["spec"].get("hparams", {}))
        chosen = (spec["spec"].get("analysis") or {}).get("hparams")
        results = from_cells(cells, hparams=chosen, hparams_order=order, source=str(store.path))
        info = {"name": spec["name"], "store": str(store.path), "spec_hash": spec["spec_hash"], "total": len(cells),
                "counts": store.counts(spec["spec_hash"]), "spec": spec["spec"]}
        return results, cells, info
    finally:
        if not isinstance(path, ResultStore):
            store.close()


def load_source(source, spec_hash: str | None = None) -> tuple[Results, list, dict]:
    """(results, the grid's cells — stores only —, info) from a results store or its path, a results CSV, a
    pandas DataFrame or ``Results``."""
    import pandas as pd

    if isinstance(source, Results):
        return source, [], {"name": source.source, "source": source.source}
    if isinstance(source, pd.DataFrame):
        return validate(source, source="DataFrame"), [], {"name": "results table", "source": "DataFrame"}
    if not isinstance(source, (str, os.PathLike)):
        return _from_store(source, spec_hash)
    path = Path(source)
    if path.is_dir():
        raise ResultsError(f"{path}: is a directory; expected a results store (.sqlite) or a results CSV")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such results store or CSV")
    if path.suffix.lower() == ".csv":
        return read_csv(path), [], {"name": path.stem, "source": str(path)}
    return _from_store(path, spec_hash)


def build_report(source, out_dir: str | os.PathLike | None = None, *, reference: str | None = None,
                 spec_hash: str | None = None, title: str | None = None, replicates: int = REPLICATES,
                 seed: int = 0, runs: dict | None = None, compare: str | os.PathLike | None = None) -> ReportFiles:
    """Analyse ``source`` (``load_source``) and write the report (module docstring) to ``out_dir`` (default
    ``<source>-report``). ``reference``: the reference task (default: the spec's ``analysis.reference_task``,
    else the task marked ``reference``, else imagenet); ``replicates``: bootstrap replicates (0: no intervals,
    every verdict inconclusive); ``runs``: pre-training runs to show (name → {steps, loss, no_learning,
    final_loss, knn}: the demo's ``run_curves``); ``compare``: another report's ``findings.json`` (or its
    folder) — e.g. the same study on another world seed —, whose verdicts are set beside these. Raises
    ``ResultsError`` on a bad table, FileNotFoundError on a missing source."""
    results, cells, info = load_source(source, spec_hash)
    if out_dir is None:
        origin = info.get("store") or info.get("source")
        if not origin or origin == "DataFrame":
            raise ValueError("out_dir is required for a table given in memory")
        p = Path(origin)
        out_dir = p.with_name(p.stem + "-report")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out}: exists and is not a directory (--out wants a folder)")
    (out / "figures").mkdir(parents=True, exist_ok=True)
    reference = reference or ((info.get("spec") or {}).get("analysis") or {}).get("reference_task")
    grid = prepare(results, replicates=max(int(replicates), 2), seed=seed, reference=reference)
    findings = evaluate_claims(grid)
    if replicates <= 0:
        for f in findings:
            if f.verdict in (SUPPORTED, REFUTED):
                f.verdict, f.reasons = INCONCLUSIVE, f.reasons + ["bootstrap off (replicates = 0)"]
    csv_path = write_csv(results, out / "results.csv")
    findings_path = atomic_write_text(out / "findings.json",
                                      json.dumps([f.to_json() for f in findings], indent=1, default=str))
    cells_path = _cells_csv(cells, out / "cells.csv") if cells else None
    sections, figures = _sections(grid, results, findings, info, cells, out / "figures", runs or {})
    if compare is not None:
        sections.insert(1, _comparison_section(findings, compare))
    heading = title or f"Contrasting encoders: {info['name']}"
    html_path = atomic_write_text(out / "report.html", _html(heading, info, sections, grid))
    md_path = atomic_write_text(out / "report.md", _markdown(heading, info, sections, grid, out))
    return ReportFiles(out, html_path, md_path, csv_path, findings_path, cells_path, figures, findings)


def _cells_csv(cells: Sequence, path: Path) -> Path:
    import io

    from contrasting.eval.grid.cells import error_summary  # torch-free

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["key", "encoder", "task", "hparams", "hparams_json", "seed", "status", "score", "val_score",
                "se", "baseline", "cell_wall_s", "error"])
    for c in cells:
        m = c.metrics or {}
        w.writerow([c.key, c.encoder, c.task, c.hparams_name, json.dumps(c.hparams, sort_keys=True), c.seed,
                    c.status, "" if c.score is None else f"{c.score:.6g}",
                    "" if c.val_score is None else f"{c.val_score:.6g}", m.get("se", ""), m.get("baseline", ""),
                    c.timings.get("cell_wall_s", ""), error_summary(c.error) if c.error else ""])
    return atomic_write_text(path, buf.getvalue())


_VERDICT_CSS = {SUPPORTED: "ok", REFUTED: "no", INCONCLUSIVE: "na", NOT_TESTABLE: "na"}


def _f(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:+.{digits}f}"


def _p(p) -> str:
    if p is None or not math.isfinite(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _finding_rows(findings: list[FindingRecord]) -> list[list[str]]:
    rows = []
    for f in findings:
        level = f"{100 * f.ci_level:.0f} % " if f.ci_level else ""
        effect = "—" if f.effect is None else f"{_f(f.effect)} [{_f(f.ci_low)}, {_f(f.ci_high)}] {level}".strip()
        margin = "" if f.margin is None else f" (margin {f.margin:g})"
        rows.append([str(f.number), f"{f.name}: {f.claim}", f.verdict, effect + margin, _p(f.p),
                     f"{f.units} {f.unit_kind}".strip() if f.units else "—", "; ".join(f.reasons)])
    return rows


def _sections(grid: Grid, results: Results, findings: list[FindingRecord], info: dict, cells: Sequence,
              figdir: Path, runs: dict) -> tuple[list[Section], dict[str, Path]]:
    figs: dict[str, Path] = {}
    secs = [_findings_section(grid, findings)]
    ssl = grid.rows("ssl")
    ref = grid.reference
    s = Section("scatter", f"End tasks against the reference task ({ref or 'none'})")
    if ref is not None and len(ssl) + len(grid.rows("supervised")) >= 2:
        rows = ssl + grid.rows("supervised")
        figs["scatter"] = plots.scatter_gains(grid, ref, rows, figdir / MAIN_FIGURE)
        s.items.append(Figure(figs["scatter"], f"gains of every task against {ref}, one panel per task group",
                              "Gains over each task's trivial baseline (0 = chance, 1 = perfect), so every task "
                              "shares one scale. Colour: pre-training method; marker: corpus; hollow grey: the cell "
                              "(or its reference cell) is at chance. Lines: least-squares fits over cells above "
                              "chance."))
    else:
        s.items.append(Para("Needs a reference task and at least two pre-trained encoders.", "na"))
    secs.append(s)
    secs.append(_results_section(grid, figdir, figs))
    secs.append(_ranking_section(grid, figdir, figs))
    secs.append(_correlation_section(grid, findings, figdir, figs))
    secs += _comparison_sections(grid, figdir, figs)
    if runs:
        secs.append(_pretraining_section(runs, grid.reference, figdir, figs))
    secs.append(_method_section(grid, results, info, cells))
    return secs, figs


def _comparison_section(findings: list[FindingRecord], compare: str | os.PathLike) -> Section:
    """This report's verdicts beside another's (``findings.json``), the changed ones named."""
    path = Path(compare)
    path = path / "findings.json" if path.is_dir() else path
    try:
        other = {int(r["number"]): r for r in json.loads(path.read_text())}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ResultsError(f"{path}: not a findings.json to compare with ({error})") from None
    s = Section("comparison", f"Verdicts beside {path}")
    rows, changed = [], []
    for f in findings:
        o = other.get(f.number, {})
        ov = o.get("verdict", "—")
        if ov != f.verdict and (f.verdict in (SUPPORTED, REFUTED) or ov in (SUPPORTED, REFUTED)):
            changed.append(f"{f.number} ({f.name}: {ov} there, {f.verdict} here)")
        rows.append([str(f.number), f.name, f.verdict, ov, _f(f.effect), _f(o.get("effect"))])
    s.items.append(Table(["#", "finding", "verdict here", "verdict there", "effect here", "effect there"], rows,
                         name="comparison"))
    s.items.append(Para("Conclusive verdicts that differ: " + "; ".join(changed) + "." if changed else
                        "Every finding that either report calls conclusive has the same verdict in both.",
                        "warn" if changed else ""))
    return s


def _pretraining_section(runs: dict, reference: str | None, figdir: Path, figs: dict) -> Section:
    s = Section("pretraining", "Pre-training")
    rows = []
    for name, r in sorted(runs.items()):
        chance, final = r.get("no_learning"), r["final_loss"]
        ratio = final / chance if chance else math.nan
        knn = r.get("knn") or []
        rows.append([name, str(r["steps"][-1]), f"{final:.3f}", "—" if not chance else f"{chance:.3f}",
                     "—" if not chance else f"{100 * ratio:.0f} %", "—" if not knn else f"{knn[-1][1]:.3f}"])
    s.items.append(Table(["run", "steps", "final loss", "no-learning loss", "final / no-learning", "k-NN top-1"],
                         rows, caption="No-learning loss: each method's loss when its outputs carry no information "
                         "about the image (its MethodSpec.chance_loss): ln of the candidates a row scores for InfoNCE "
                         "losses (MoCo: the positive and the queue; SimCLR: the 2N − 1 other views; PIRL: both NCE "
                         "terms), ln K for SwAV's codes, zero cosine similarity for BYOL's regression. "
                         f"k-NN: weighted 20-NN on "
                         f"the reference task ({reference}), train → test, at the end of the run.", name="pretraining"))
    figs["pretraining"] = plots.pretraining_curves(runs, figdir / "pretraining.png")
    s.items.append(Figure(figs["pretraining"], "pre-training losses and online k-NN accuracy"))
    return s


def _findings_section(grid: Grid, findings: list[FindingRecord]) -> Section:
    s = Section("findings", "The six findings on this grid")
    s.items.append(Table(["#", "finding", "verdict", "effect [interval]", "p", "units", "why"],
                         _finding_rows(findings), caption="Effects are in gain units (the share of the way from the "
                         "trivial baseline to a perfect score); what each one measures is under 'How the numbers "
                         "were made'.", row_css=[_VERDICT_CSS[f.verdict] for f in findings], name="findings"))
    n_chance = int((~grid.signal & np.isfinite(grid.gain)).sum())
    n_cells = int(np.isfinite(grid.gain).sum())
    if n_chance:
        s.items.append(Para(f"{n_chance} of {n_cells} cells are at chance (not above their task's trivial baseline by "
                            "more than 2 standard errors; marked ° below). A comparison enters a finding only where "
                            "at least one of its cells is above chance.", "warn"))
    dead = [t for j, t in enumerate(grid.tasks) if not grid.signal[:, j].any()]
    if dead:
        s.items.append(Para(f"No encoder is above chance on {', '.join(dead)}: these tasks enter no finding.", "warn"))
    if not np.isfinite(grid.gain_se).any():
        s.items.append(Para("No standard errors were given: the signal gate is 'above the baseline' and test-set noise "
                            "does not enter the intervals.", "warn"))
    return s


def _value_text(v: float, se: float) -> str:
    if not math.isfinite(v):
        return "—"
    text = f"{v:.3f}" if abs(v) < 10 else f"{v:.4g}"
    return text + (f" ± {se:.3f}" if math.isfinite(se) else "")


def _results_section(grid: Grid, figdir: Path, figs: dict) -> Section:
    s = Section("results", "Results: encoders × tasks")
    base = {t: grid.task_meta[t]["baseline"] for t in grid.tasks}
    raw, raw_se = grid.value, grid.value_se
    header = ["encoder", "role", "method", "corpus"] + grid.tasks
    rows = [["trivial baseline", "", "", ""] + [f"{base[t]:.3f}" for t in grid.tasks]]
    bold, muted = set(), set()
    for i, e in enumerate(grid.encoders):
        m = grid.encoder_meta[e]
        row = [e, m["role"], str(m.get("method") or ""), str(m.get("corpus") or "")]
        for j in range(len(grid.tasks)):
            text = _value_text(raw[i, j], raw_se[i, j])
            if np.isfinite(raw[i, j]) and not grid.signal[i, j]:
                text += f" {CHANCE_MARK}"
                muted.add((i + 1, 4 + j))
            row.append(text)
        rows.append(row)
    for j in range(len(grid.tasks)):
        col = np.where(grid.signal[:, j], grid.gain[:, j], np.nan)
        if np.isfinite(col).any():
            bold.add((int(np.nanargmax(col)) + 1, 4 + j))
    cap = "; ".join(f"{t}: {grid.task_meta[t]['level']} {grid.task_meta[t]['kind']}, {grid.task_meta[t]['metric']}"
                    f"{'' if grid.task_meta[t]['higher_is_better'] else ' (lower is better)'}" for t in grid.tasks)
    s.items.append(Table(header, rows, caption=cap, bold=bold, muted=muted, name="results"))
    s.items.append(Para(f"Each task's primary metric (mean over seeds) ± its standard error over the test set. "
                        f"{CHANCE_MARK}: at chance — not above the trivial baseline (first row: the best "
                        "input-independent predictor, fitted on the task's train split) by more than 2 standard "
                        "errors. Bold: the best cell above chance. The same table in long format: results.csv."))
    figs["gains"] = plots.gain_heatmap(grid, figdir / "gains.png")
    s.items.append(Figure(figs["gains"], "encoders by tasks heat map of gains over chance"))
    return s


def _ranking_section(grid: Grid, figdir: Path, figs: dict) -> Section:
    s = Section("ranking", "Ranking the encoders over all tasks")
    rows = grid.rows("ssl") + grid.rows("supervised") + grid.rows("random")
    names = [grid.encoders[i] for i in rows]
    cols = [j for j in range(len(grid.tasks)) if grid.signal[rows, j].any()]
    rk = stats.rank_encoders(names, [grid.tasks[j] for j in cols], grid.gain[np.ix_(rows, cols)],
                             grid.gain_se[np.ix_(rows, cols)]) if cols else None
    if rk is None:
        s.items.append(Para("Needs two encoders and two tasks with signal and every encoder scored on them.", "na"))
        return s
    s.items.append(Para(f"Friedman test over {len(rk.tasks)} tasks (blocks) and {len(names)} encoders: statistic "
                        f"{rk.statistic:.2f}, p = {_p(rk.p)}; Nemenyi critical difference at 5 %: "
                        f"{rk.critical_difference:.2f} ranks (Demšar 2006)."))
    order = np.argsort(rk.mean_rank)
    s.items.append(Table(["rank", "encoder", "mean rank"],
                         [[str(k + 1), names[i], f"{rk.mean_rank[i]:.2f}"] for k, i in enumerate(order)],
                         name="ranks"))
    if len(names) >= 2:
        figs["cd"] = plots.critical_difference(names, rk.mean_rank, rk.pairwise_p, figdir / "critical_difference.png",
                                               title="Mean rank over tasks (bars: not separated by Nemenyi at 5 %)")
        s.items.append(Figure(figs["cd"], "critical difference diagram of the encoders' mean ranks"))
    top = list(order[: min(len(order), 10)])
    s.items.append(Table(["P(row > column)"] + [names[i] for i in top],
                         [[names[i]] + ["—" if i == j else f"{rk.improvement[i, j]:.2f} "
                                        f"[{rk.improvement_low[i, j]:.2f}, {rk.improvement_high[i, j]:.2f}]"
                                        for j in top] for i in top],
                         caption="Probability of improvement (rliable): the chance that the row's encoder beats the "
                         "column's on a task, given each cell's test-set noise, averaged over tasks; 95 % bootstrap "
                         "interval over tasks. Best ten by mean rank.", name="improvement"))
    return s


def _correlation_section(grid: Grid, findings: list[FindingRecord], figdir: Path, figs: dict) -> Section:
    ref = grid.reference
    s = Section("correlation", f"Correlation of each task with {ref or 'the reference'}")
    ssl = grid.rows("ssl")
    if ref is None or len(ssl) < 3:
        s.items.append(Para("Needs a reference task and at least three self-supervised encoders.", "na"))
        return s
    jr = grid.col(ref)
    rows_out, values, groups, names = [], [], [], []
    for j, t in enumerate(grid.tasks):
        if j == jr:
            continue
        x, y = grid.gain[ssl, jr], grid.gain[ssl, j]
        ok = np.isfinite(x) & np.isfinite(y)
        r = float(np.corrcoef(x[ok], y[ok])[0, 1]) if ok.sum() >= 3 and np.ptp(x[ok]) > 0 and np.ptp(y[ok]) > 0 \
            else math.nan
        rc = float(stats.corrected_correlation(x, y, grid.gain_se[ssl, jr], grid.gain_se[ssl, j]))
        group = f"{grid.task_meta[t]['level']} {grid.task_meta[t]['kind']}"
        rows_out.append([t, group, str(int(grid.signal[ssl, j].sum())), str(int(ok.sum())), _f(r, 2), _f(rc, 2)])
        names.append(t)
        values.append(rc)
        groups.append(group)
    s.items.append(Table(["task", "group", "encoders above chance", "n", "Pearson r (gains)", "corrected for noise"],
                         rows_out, caption=f"Over the {len(ssl)} self-supervised encoders. The corrected r divides by "
                         "the square root of both tasks' reliabilities (1 − noise variance / variance over encoders): "
                         "test-set noise alone pulls correlations towards 0.", name="correlation"))
    figs["corr"] = plots.bars(names, values, figdir / "corr_reference.png", groups=groups,
                              title=f"Correlation with {ref} (corrected for noise)", ylabel="r")
    s.items.append(Figure(figs["corr"], f"correlation of each task's gains with {ref}'s"))
    if len(grid.tasks) >= 2:
        g = grid.gain[ssl]
        k = len(grid.tasks)
        m = np.full((k, k), np.nan)
        for a in range(k):
            for b in range(k):
                m[a, b] = 1.0 if a == b else float(stats.corrected_correlation(
                    g[:, a], g[:, b], grid.gain_se[ssl, a], grid.gain_se[ssl, b]))
        figs["heatmap"] = plots.heatmap(grid.tasks, m, figdir / "task_correlation.png",
                                        title="Task × task correlation of gains (corrected for noise)",
                                        groups=[f"{grid.task_meta[t]['level']} {grid.task_meta[t]['kind']}"
                                                for t in grid.tasks])
        s.items.append(Figure(figs["heatmap"], "task by task correlation heat map"))
    return s


def _diff_rows(grid: Grid, pairs: list[tuple[int, int]]) -> list[tuple[str, str, float, float, int]]:
    """Per task: mean (second − first) gain over pairs with a cell above chance, its SE, and the pair count."""
    out = []
    for j, t in enumerate(grid.tasks):
        d, v = [], []
        for a, b in pairs:
            if (grid.signal[a, j] or grid.signal[b, j]) and np.isfinite(grid.gain[[a, b], j]).all():
                d.append(grid.gain[b, j] - grid.gain[a, j])
                v.append(np.nansum(grid.gain_se[[a, b], j] ** 2))
        if d:
            out.append((t, f"{grid.task_meta[t]['level']} {grid.task_meta[t]['kind']}", float(np.mean(d)),
                        float(math.sqrt(sum(v)) / len(d)), len(d)))
    return out


def _comparison_sections(grid: Grid, figdir: Path, figs: dict) -> list[Section]:
    secs = []
    for sid, title, pairs, label, fname in (
            ("methods", "MoCo v2 vs SwAV", method_pairs(grid, "swav", "mocov2"), "MoCo v2 − SwAV",
             "mocov2_vs_swav.png"),
            ("balance", "Balanced vs unbalanced pre-training data", balanced_pairs(grid), "unbalanced − balanced",
             "balanced_vs_unbalanced.png")):
        s = Section(sid, title)
        rows = _diff_rows(grid, pairs)
        if rows:
            s.items.append(Para("Pairs: " + ", ".join(f"{grid.encoders[a]} / {grid.encoders[b]}" for a, b in pairs)
                                + "."))
            s.items.append(Table(["task", "group", "pairs", f"gain {label}", "SE (test set)"],
                                 [[t, g, str(n), _f(d), f"{e:.3f}"] for t, g, d, e, n in rows], name=sid))
            figs[sid] = plots.bars([r[0] for r in rows], [r[2] for r in rows], figdir / fname,
                                   groups=[r[1] for r in rows], errors=[r[3] for r in rows],
                                   title=f"{title}: mean gain difference ({label}; whiskers ±2 SE)",
                                   ylabel="gain difference")
            s.items.append(Figure(figs[sid], f"per-task gain difference {label}"))
        else:
            s.items.append(Para("Not available: no pair with a cell above chance.", "na"))
        secs.append(s)
    s = Section("supervised", "Self-supervised vs supervised")
    sup, ssl = grid.rows("supervised"), grid.rows("ssl")
    if sup and ssl:
        rows = []
        for j, t in enumerate(grid.tasks):
            if not grid.signal[sup + ssl, j].any():
                continue
            g = grid.gain[ssl, j]
            k = int(np.nanargmax(g)) if np.isfinite(g).any() else None
            rows.append([t, f"{grid.task_meta[t]['level']} {grid.task_meta[t]['kind']}",
                         _f(float(np.nanmean(grid.gain[sup, j]))), _f(float(np.nanmean(g))),
                         "—" if k is None else f"{grid.encoders[ssl[k]]} ({_f(float(g[k]))})",
                         _f(float(np.nanmean(g) - np.nanmean(grid.gain[sup, j])))])
        s.items.append(Table(["task", "group", "supervised gain", "mean self-supervised", "best self-supervised",
                              "mean SSL − supervised"], rows, name="supervised"))
    else:
        s.items.append(Para("Not available: needs a supervised and a self-supervised encoder.", "na"))
    secs.append(s)
    s = Section("similar", "Pre-training on similar data")
    comps = similar_comparisons(grid)
    if comps:
        rows = []
        for c in comps:
            adv = grid.gain[c["row"]] - np.nanmean(grid.gain[c["others"]], axis=0)
            rows.append([grid.encoders[c["row"]], grid.tasks[c["col"]], str(len(c["others"])),
                         _f(float(adv[c["col"]])), _f(float(np.nanmean(adv[c["dissimilar"]]))),
                         _f(float(adv[c["col"]] - np.nanmean(adv[c["dissimilar"]])))])
        s.items.append(Table(["encoder", "similar task", "others of its method", "advantage there",
                              "mean advantage elsewhere", "difference"], rows,
                             caption="Advantage: the encoder's gain minus the mean of its method's other encoders.",
                             name="similar"))
    else:
        s.items.append(Para("Not available: needs tasks annotated with similar_corpus and encoders pre-trained on "
                            "those corpora, with others of their method.", "na"))
    secs.append(s)
    return secs


def _method_section(grid: Grid, results: Results, info: dict, cells: Sequence) -> Section:
    s = Section("method", "How the numbers were made")
    s.items.append(Para(
        "Scores. Each cell is the task's primary test metric (mean over seeds) with its standard error over the test "
        "set, from a bootstrap of the per-sample statistics when the cell recorded them. Each task's trivial baseline "
        "b is the score of the best input-independent predictor fitted on its train split (the majority class for "
        "accuracy, the majority pixel class everywhere for mIoU, all-foreground for binary IoU, the median target "
        "for L1, the median flow for flow accuracy). Every comparison uses gains g = (s − b)/(s* − b), s* the "
        "metric's perfect score (1 − L1/L1_b for errors): 0 at chance, 1 at perfection, one scale for every task "
        "and metric family. A cell is at chance unless g exceeds 2 standard errors."))
    s.items.append(Para(
        "Findings. Each finding is a named claim with one effect statistic (listed below). Its interval is "
        "estimate ± t·SE, the SE from a hierarchical bootstrap (the finding's units — encoders or encoder pairs "
        "— resampled within their strata, tasks as strata, the test-set replicates of the cells whose encoder is "
        "not resampled, seeds within cells) with the small-sample correction √(n/(n−1)), and t on n − 1 degrees "
        "of freedom for n units. Claims of a difference are supported (refuted) when the 95 % interval excludes 0 "
        "on the claimed (opposite) side; claims of no difference use an equivalence or non-inferiority test "
        "against a stated margin (TOST, 90 % interval). Calibration: on simulated grids of the study's design "
        "(tests/eval/test_claims_calibration.py) no-effect grids are called at most 5 % of the time and planted "
        "effects of 3 standard errors are found at least 80 % of the time."))
    s.items.append(Table(["#", "name", "test", "effect statistic", "needs"],
                         [[str(c.number), c.name, c.test + (f" (margin {c.margin:g})" if c.margin else ""),
                           c.statistic, c.needs] for c in CLAIMS.values()], name="claims"))
    med_se = np.nanmedian(np.where(np.isfinite(grid.gain_se), grid.gain_se, np.nan), axis=0) \
        if np.isfinite(grid.gain_se).any() else np.full(len(grid.tasks), np.nan)
    s.items.append(Table(["task", "group", "metric", "higher is better", "trivial baseline", "perfect score",
                          "median SE (gain)", "cells above chance"],
                         [[t, f"{grid.task_meta[t]['level']} {grid.task_meta[t]['kind']}", grid.task_meta[t]["metric"],
                           "yes" if grid.task_meta[t]["higher_is_better"] else "no",
                           f"{grid.task_meta[t]['baseline']:.4g}", f"{grid.task_meta[t]['best']:.4g}",
                           "—" if not math.isfinite(med_se[j]) else f"{med_se[j]:.3f}",
                           f"{int(grid.signal[:, j].sum())}/{int(np.isfinite(grid.gain[:, j]).sum())}"]
                          for j, t in enumerate(grid.tasks)], name="tasks"))
    s.items += [Para(n) for n in results.frame.attrs.get("notes", [])]
    s.items += _deviation_items(grid.tasks)
    s.items.append(Para(REPRODUCIBILITY))
    failed = [c for c in cells if c.status == "failed"]
    if failed:
        from contrasting.eval.grid.cells import error_summary

        s.items.append(Table(["cell", "error"], [[c.label, error_summary(c.error)] for c in failed],
                             caption="Failed cells (rerun the grid to retry).", name="failed"))
    versions: dict[str, set] = {}
    for c in cells:
        for k, v in (c.versions or {}).items():
            versions.setdefault(k, set()).add(str(v))
    if versions:
        s.items.append(Para("Versions: " + "; ".join(f"{k} {', '.join(sorted(v))}"
                                                     for k, v in sorted(versions.items()))))
    return s


REPRODUCIBILITY = (
    "Reproducibility. The same command on the same machine with the same thread counts gives bit-identical "
    "encoders and scores (tests/eval/test_reproducible.py); each cell records its CPU/GPU, thread counts and "
    "library versions (Versions below). Another thread count or processor changes the order of floating-point "
    "reductions, and training amplifies it: measured on the quick demo (2 workers × 1 thread against 1 × 2, same "
    "machine and seeds), the cells' gains moved by a median of 0.012 (90th percentile 0.063, largest 0.20), 7 % "
    "of cells by more than 2 standard errors of their difference, and 1 of the 6 verdicts changed; another world "
    "seed changed 2 (bench/results/2026-12-04-cpu.md). The intervals above do not include that spread: compare "
    "runs with --compare before reading a verdict as settled."
)
"""The measured spread of this project's numbers between runs that differ only in threads or seeds."""


def _deviation_items(task_names: Sequence[str]) -> list:
    """Where the catalog's protocol differs from the study's, for the catalog tasks among ``task_names``."""
    from contrasting.eval.catalog.tasks import PROTOCOL_DEVIATIONS, get_task

    known = []
    for name in task_names:  # catalog tasks and their paper forms; a grid's own tasks have no entry
        try:
            known.append(get_task(name))
        except (KeyError, ValueError):
            continue
    if not known:
        return []
    rows = [[spec.name, d] for spec in known for d in spec.deviations]
    items: list = [Para("Protocol: where it differs from the study's, for every task: " +
                        "; ".join(PROTOCOL_DEVIATIONS) + ".")]
    if rows:
        items.append(Table(["task", "differs from the study"], rows, name="deviations"))
    return items


# ------------------------------------------------------------------------------------------------ render

_CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;margin:0;background:#f6f7f9;
color:#1d2329;font-size:16px;line-height:1.45}
main{max-width:1200px;margin:0 auto;padding:24px 32px;background:#fff}
h1{font-size:28px;margin:0 0 8px}h2{font-size:22px;margin-top:36px;border-bottom:2px solid #e3e6ea;padding-bottom:4px}
p.meta{color:#5a6470;margin-top:0}nav a{margin-right:14px;color:#2457a6;text-decoration:none}
table{border-collapse:collapse;margin:12px 0;font-size:14px;width:auto;max-width:100%}
.scroll{overflow-x:auto}
th,td{border:1px solid #d5d9de;padding:5px 9px;text-align:left;vertical-align:top}
th{background:#eef1f4}tr.ok td:nth-child(3){background:#dff3e3;font-weight:600}
tr.no td:nth-child(3){background:#fbe1e1;font-weight:600}tr.na td:nth-child(3){background:#eceef0;color:#555}
td.num{text-align:right;font-variant-numeric:tabular-nums}td.chance{color:#8a9199;background:#f3f4f6}caption{caption-side:bottom;text-align:left;color:#5a6470;
padding-top:4px;font-size:13px}
p.warn{background:#fff6da;border-left:4px solid #e0b000;padding:8px 12px}p.na{color:#5a6470;font-style:italic}
figure{margin:16px 0}figure img{max-width:100%;height:auto;border:1px solid #e3e6ea}
figcaption{color:#5a6470;font-size:14px}
"""


def _img_data(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _html(title: str, info: dict, sections: list[Section], grid: Grid) -> str:
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">', f"<title>{e(title)}</title>",
             f"<style>{_CSS}</style></head><body><main>", f"<h1>{e(title)}</h1>",
             f'<p class="meta">{e(_meta(info, grid))}</p>',
             "<nav>" + "".join(f'<a href="#{s.id}">{e(s.title)}</a>' for s in sections) + "</nav>"]
    for s in sections:
        parts.append(f'<section id="{s.id}"><h2>{e(s.title)}</h2>')
        for item in s.items:
            if isinstance(item, Para):
                parts.append(f'<p class="{item.css}">{e(item.text)}</p>' if item.css else f"<p>{e(item.text)}</p>")
            elif isinstance(item, Figure):
                parts.append(f'<figure><img src="{_img_data(item.path)}" alt="{e(item.alt)}" '
                             f'data-name="{e(item.path.name)}">'
                             + (f"<figcaption>{e(item.caption)}</figcaption>" if item.caption else "") + "</figure>")
            elif isinstance(item, Table):
                parts.append(_html_table(item))
        parts.append("</section>")
    parts.append("</main></body></html>")
    return "\n".join(parts)


def _is_num(text: str) -> bool:
    t = text.replace("±", " ").split()[0] if text.strip() else ""
    try:
        float(t.replace("%", "").replace("+", ""))
        return True
    except ValueError:
        return False


def _html_table(t: Table) -> str:
    e = html.escape
    out = [f'<div class="scroll"><table data-name="{e(t.name)}">']
    if t.caption:
        out.append(f"<caption>{e(t.caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in t.header) + "</tr></thead><tbody>")
    for i, row in enumerate(t.rows):
        css = f' class="{t.row_css[i]}"' if i < len(t.row_css) and t.row_css[i] else ""
        cells = []
        for j, c in enumerate(row):
            text = f"<b>{e(c)}</b>" if (i, j) in t.bold else e(c)
            classes = (["num"] if _is_num(c) and j > 0 else []) + (["chance"] if (i, j) in t.muted else [])
            cls = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{cls}>{text}</td>")
        out.append(f"<tr{css}>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _meta(info: dict, grid: Grid) -> str:
    bits = []
    if info.get("store"):
        c = info.get("counts") or {}
        bits.append(f"store {info['store']}")
        bits.append(f"{c.get('done', 0)}/{info.get('total')} cells done, {c.get('failed', 0)} failed")
    elif info.get("source"):
        bits.append(f"results {info['source']}")
    bits.append(f"{len(grid.encoders)} encoders × {len(grid.tasks)} tasks")
    bits.append("generated " + time.strftime("%Y-%m-%d %H:%M %Z"))
    return " · ".join(bits)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown(title: str, info: dict, sections: list[Section], grid: Grid, out: Path) -> str:
    lines = [f"# {title}", "", _meta(info, grid), ""]
    for s in sections:
        lines += [f"## {s.title}", ""]
        for item in s.items:
            if isinstance(item, Para):
                lines += [("> " if item.css == "warn" else "") + item.text, ""]
            elif isinstance(item, Figure):
                rel = item.path.relative_to(out).as_posix()
                lines += [f"![{item.alt}]({rel})", ""]
                if item.caption:
                    lines += [f"*{item.caption}*", ""]
            elif isinstance(item, Table):
                lines.append("| " + " | ".join(_md_cell(h) for h in item.header) + " |")
                lines.append("|" + "|".join("---" for _ in item.header) + "|")
                for i, row in enumerate(item.rows):
                    lines.append("| " + " | ".join(f"**{_md_cell(c)}**" if (i, j) in item.bold else _md_cell(c)
                                                   for j, c in enumerate(row)) + " |")
                lines.append("")
                if item.caption:
                    lines += [f"*{item.caption}*", ""]
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------------- CLI


def run_report(args: argparse.Namespace) -> int:
    """Run ``contrasting report`` with parsed arguments (``analysis.cli.add_report_arguments``); prints where the
    files are and each finding's verdict.
    Returns 0, or 2 on a missing or malformed source (one line on stderr)."""
    if args.bootstrap is None:
        args.bootstrap = REPLICATES
    if args.bootstrap < 0:
        print(f"contrasting report: error: --bootstrap: expected an integer >= 0, got {args.bootstrap}",
              file=sys.stderr)
        return 2
    source = Path(args.source)
    try:
        if source.suffix in (".yaml", ".yml"):
            from contrasting.eval.grid.spec import load_spec

            source = load_spec(source, validate=False).store_path
        files = build_report(source, args.out, reference=args.reference, spec_hash=args.spec_hash, title=args.title,
                             replicates=args.bootstrap, compare=args.compare)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        if debugging():
            raise
        text = " ".join(str(exc).split()) or type(exc).__name__  # every line of it (a spec lists its problems)
        print(f"contrasting report: error: {text}", file=sys.stderr)
        return 2
    print(f"report: {files.html}\n        {files.markdown}\n        {files.findings_json}\n        {files.csv}")
    for f in files.findings:
        effect = "" if f.effect is None else f"  effect {f.effect:+.3f} [{_f(f.ci_low)}, {_f(f.ci_high)}]"
        print(f"  finding {f.number} ({f.name}): {f.verdict}{effect}")
    return 0

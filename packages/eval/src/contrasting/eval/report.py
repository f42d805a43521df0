"""``contrasting report STORE``: the study's tables, figures and six findings from a results store.

Outputs, in one folder (default ``<store>-report/`` beside the store):

* ``report.html``: self-contained — CSS inline, figures as base64 ``data:`` PNGs, no script, no external
  resource — so it opens offline and can be mailed as one file;
* ``report.md``: the same content in Markdown, figures linked from ``figures/``;
* ``results.csv``: the encoders × tasks table (raw scores; metric and group rows under the header);
  ``cells.csv``: every finished cell (long format, with hyper-parameters, seed and timings);
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

from contrasting.eval import analysis as an
from contrasting.eval import plots
from contrasting.eval.analysis import ResultsTable, fmt, fmt_p
from contrasting.eval.findings import NOT_SUPPORTED, NOT_TESTABLE, SUPPORTED, Finding, evaluate_findings
from contrasting.eval.runner import error_summary
from contrasting.eval.store import ResultStore

MAIN_FIGURE = "scatter_vs_reference.png"


# ---------------------------------------------------------------------------------------- document model


@dataclass
class Para:
    """A paragraph (plain text; ``css`` class in HTML)."""

    text: str
    css: str = ""


@dataclass
class Table:
    """A table: header, rows of cell strings, optional caption; ``bold`` holds (row, column) cells to
    emphasise and ``css`` per-row classes."""

    header: list[str]
    rows: list[list[str]]
    caption: str = ""
    bold: set = field(default_factory=set)
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
    cells_csv: Path
    figures: dict[str, Path]
    findings: list[Finding]


# ------------------------------------------------------------------------------------------------ build


def _source(source, spec_hash: str | None) -> tuple[ResultsTable, list, dict]:
    """(table, all cells of the grid, grid info) from a store, a store path or a table."""
    if isinstance(source, ResultsTable):
        return source, [], {"name": "results table", "store": "", "total": None}
    own = not isinstance(source, ResultStore)
    store = ResultStore(source, create=False) if own else source
    try:
        h = spec_hash or store.latest_spec_hash()
        if h is None:
            raise ValueError(f"{store.path}: the store holds no grid")
        spec = next(s for s in store.specs() if s["spec_hash"].startswith(h))
        cells = store.cells(spec["spec_hash"])
        table = ResultsTable.from_store(store, spec["spec_hash"])
        info = {"name": spec["name"], "store": str(store.path), "spec_hash": spec["spec_hash"], "total": len(cells),
                "counts": store.counts(spec["spec_hash"]), "spec": spec["spec"]}
        return table, cells, info
    finally:
        if own:
            store.close()


def build_report(source: ResultStore | str | os.PathLike | ResultsTable, out_dir: str | os.PathLike | None = None, *,
                 reference: str | None = None, spec_hash: str | None = None, title: str | None = None,
                 n_boot: int = 500, seed: int = 0) -> ReportFiles:
    """Analyse a store (its latest grid, or ``spec_hash``) or a ``ResultsTable`` and write the report (see the
    module docstring) to ``out_dir`` (default ``<store>-report``). ``reference``: the reference task (default:
    the spec's ``analysis.reference_task``, else ``ResultsTable.reference_task()``); ``n_boot``: bootstrap
    replicates per finding. ValueError when the store has no finished cell or no reference task exists."""
    table, cells, info = _source(source, spec_hash)
    if not table.encoders:
        raise ValueError(f"{info.get('store') or 'the table'}: no finished cell to report on")
    if out_dir is None:
        if not info.get("store"):
            raise ValueError("out_dir is required for a ResultsTable")
        p = Path(info["store"])
        out_dir = p.with_name(p.stem + "-report")
    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    reference = reference or ((info.get("spec") or {}).get("analysis") or {}).get("reference_task")
    ref = table.reference_task(reference)
    if ref is None:
        raise ValueError("no reference task: the grid has no image-level semantic task (set analysis.reference_task)")
    findings = evaluate_findings(table, ref, n_boot=n_boot, seed=seed)
    csv_path = table.to_csv(out / "results.csv")
    cells_path = _cells_csv(cells, out / "cells.csv")
    sections, figures = _sections(table, ref, findings, info, cells, out / "figures")
    heading = title or f"Contrasting encoders: {info['name']}"
    (out / "report.html").write_text(_html(heading, info, sections, table))
    (out / "report.md").write_text(_markdown(heading, info, sections, table, out))
    return ReportFiles(out, out / "report.html", out / "report.md", csv_path, cells_path, figures, findings)


def _cells_csv(cells: Sequence, path: Path) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "encoder", "task", "hparams", "hparams_json", "seed", "status", "score", "val_score",
                    "metrics_json", "cell_wall_s", "error"])
        for c in cells:
            w.writerow([c.key, c.encoder, c.task, c.hparams_name, json.dumps(c.hparams, sort_keys=True), c.seed,
                        c.status, "" if c.score is None else f"{c.score:.6g}",
                        "" if c.val_score is None else f"{c.val_score:.6g}", json.dumps(c.metrics, sort_keys=True),
                        c.timings.get("cell_wall_s", ""), error_summary(c.error) if c.error else ""])
    return path


_VERDICT_CSS = {SUPPORTED: "ok", NOT_SUPPORTED: "no", NOT_TESTABLE: "na"}


def _sections(table: ResultsTable, ref: str, findings: list[Finding], info: dict, cells: Sequence,
              figdir: Path) -> tuple[list[Section], dict[str, Path]]:
    figs: dict[str, Path] = {}
    secs: list[Section] = []
    ssl = table.by_role("ssl")
    noise = an.noise_summary(table, ref)

    # findings
    s = Section("findings", "The six findings on this grid")
    s.items.append(Table(["#", "claim (Kotar et al. 2021)", "verdict", "confidence", "statistic"],
                         [[str(f.number), f.claim, f.verdict, f.confidence_note, f.statistic] for f in findings],
                         caption="Rules and confidence levels: see 'How the numbers were made' below.",
                         row_css=[_VERDICT_CSS[f.verdict] for f in findings], name="findings"))
    s.items += [Para(w, "warn") for w in _warnings(table, ref, noise)]
    secs.append(s)

    # main figure
    fits = an.fits_vs_reference(table, ref)
    s = Section("scatter", f"End tasks against the reference task ({ref})")
    if len(ssl) >= 3:
        figs["scatter"] = plots.scatter_vs_reference(table, ref, fits, figdir / MAIN_FIGURE)
        s.items.append(Figure(figs["scatter"], f"scores of every task against {ref}, one panel per task group",
                              "Each point is a self-supervised encoder (baselines are in the results table); lines "
                              "are least-squares fits per task (r: Pearson on the standardised scores)."))
    else:
        s.items.append(Para(f"Needs at least three self-supervised encoders (has {len(ssl)}).", "na"))
    secs.append(s)

    # results table
    s = Section("results", "Results: encoders × tasks")
    s.items.append(_results_table(table))
    s.items.append(Para("Raw primary metric per task (mean over seeds, ± standard deviation when there are several);"
                        " the best value per task is bold; L1 is an error (lower is better). CSV: results.csv "
                        "(this table) and cells.csv (every cell)."))
    figs["scores"] = plots.score_heatmap(table, figdir / "scores.png")
    s.items.append(Figure(figs["scores"], "encoders by tasks heatmap of standardised scores"))
    secs.append(s)

    # correlations with the reference
    corr = an.correlations_with_reference(table, ref)
    s = Section("correlation", f"Correlation of each task with {ref}")
    s.items.append(Table(["task", "group", "n", "Spearman ρ", "p", "Pearson r", "p"],
                         [[c.task, c.group, str(c.n), fmt(c.spearman, 2), fmt_p(c.spearman_p), fmt(c.pearson, 2),
                           fmt_p(c.pearson_p)] for c in corr],
                         caption=f"Over the {len(ssl)} self-supervised encoders (oriented scores).",
                         name="correlation"))
    if corr:
        figs["corr"] = plots.bars([c.task for c in corr], [c.spearman for c in corr], figdir / "corr_reference.png",
                                  title=f"Spearman ρ with {ref}", ylabel="Spearman ρ",
                                  groups=[c.group for c in corr],
                                  annotations=[f"p={fmt_p(c.spearman_p)}" for c in corr])
        s.items.append(Figure(figs["corr"], f"Spearman correlation of each task with {ref}"))
    for key, label in (("corpus_size", "pre-training dataset size"), ("updates", "number of updates")):
        rows = an.correlation_with_meta(table, key)
        if rows:
            s.items.append(Table(["task", "group", "n", "Spearman ρ", "p", "Pearson r", "p"],
                                 [[c.task, c.group, str(c.n), fmt(c.spearman, 2), fmt_p(c.spearman_p),
                                   fmt(c.pearson, 2), fmt_p(c.pearson_p)] for c in rows],
                                 caption=f"Correlation with the {label}.", name=f"corr_{key}"))
    secs.append(s)

    # task x task heatmap
    s = Section("heatmap", "Task × task correlation")
    if len(ssl) >= 3 and len(table.tasks) >= 2:
        names, rho, _ = an.task_correlation_matrix(table)
        figs["heatmap"] = plots.heatmap(names, rho, figdir / "task_correlation.png",
                                        title="Spearman ρ between tasks (self-supervised encoders)",
                                        groups=[table.group(t) for t in names])
        s.items.append(Figure(figs["heatmap"], "task by task Spearman correlation heatmap",
                              "Tick colours mark the task groups."))
    else:
        s.items.append(Para("Needs at least three self-supervised encoders and two tasks.", "na"))
    secs.append(s)

    # MoCo v2 vs SwAV
    s = Section("methods", "MoCo v2 vs SwAV")
    diffs = an.method_difference(table, "mocov2", "swav")
    if diffs:
        pairs = an.matched_method_pairs(table, "mocov2", "swav")
        s.items.append(Para("Matched pairs (same corpus): " + ", ".join(f"{a} / {b}" for a, b in pairs) + "."))
        s.items.append(Table(["task", "group", "pairs", "MoCo v2 mean", "SwAV mean", "Δ % (MoCo − SwAV)"],
                             [[d.task, d.group, str(d.n), fmt(d.mean_a), fmt(d.mean_b), f"{d.rel_diff_pct:+.1f}"]
                              for d in diffs], name="methods"))
        gm = an.group_means({d.task: d.rel_diff_pct for d in diffs}, table)
        s.items.append(Para("Mean Δ per group: " + "; ".join(f"{g} {v:+.1f} %" for g, v in gm.items()) + "."))
        figs["methods"] = plots.bars([d.task for d in diffs], [d.rel_diff_pct for d in diffs],
                                     figdir / "mocov2_vs_swav.png", title="MoCo v2 vs SwAV (positive: MoCo v2 better)",
                                     ylabel="relative difference (%)", groups=[d.group for d in diffs])
        s.items.append(Figure(figs["methods"], "relative difference between MoCo v2 and SwAV per task"))
    else:
        s.items.append(Para("Not available: needs a MoCo v2 and a SwAV encoder pre-trained on the same corpus.", "na"))
    secs.append(s)

    # best SSL vs supervised
    s = Section("supervised", "Best self-supervised encoder vs supervised")
    bvs = an.best_vs_supervised(table)
    if bvs:
        s.items.append(Table(["task", "group", "best self-supervised", "its score", "supervised", "improvement %"],
                             [[b.task, b.group, b.best, fmt(b.best_score), fmt(b.supervised_score),
                               f"{b.rel_improvement_pct:+.1f}"] for b in bvs], name="supervised"))
        figs["supervised"] = plots.bars([b.task for b in bvs], [b.rel_improvement_pct for b in bvs],
                                        figdir / "best_vs_supervised.png",
                                        title="Best self-supervised vs supervised (positive: self-supervised better)",
                                        ylabel="relative improvement (%)", groups=[b.group for b in bvs])
        s.items.append(Figure(figs["supervised"], "relative improvement of the best self-supervised encoder"))
    else:
        s.items.append(Para("Not available: needs a supervised and a self-supervised encoder.", "na"))
    secs.append(s)

    # balanced vs unbalanced
    s = Section("balance", "Balanced vs unbalanced pre-training data")
    pairs, per_task, anovas = an.balanced_vs_unbalanced(table)
    if per_task:
        s.items.append(Para("Pairs (balanced / unbalanced): " + ", ".join(f"{a} / {b}" for a, b in pairs) + "."))
        s.items.append(Table(["task", "group", "metric family", "pairs", "unbalanced vs balanced %"],
                             [[t.task, t.group, t.family, str(t.n), f"{t.rel_improvement_pct:+.1f}"]
                              for t in per_task], name="balance"))
        s.items.append(Table(["metric family", "F", "p", "n balanced", "n unbalanced", "unbalanced − balanced (sd)"],
                             [[a.family, f"{a.f:.2f}", fmt_p(a.p), str(a.n_balanced), str(a.n_unbalanced),
                               f"{a.mean_difference:+.2f}"] for a in anovas],
                             caption="One-way ANOVA per metric family on scores standardised per task.",
                             name="anova") if anovas else Para("ANOVA needs at least two pairs.", "na"))
        figs["balance"] = plots.bars([t.task for t in per_task], [t.rel_improvement_pct for t in per_task],
                                     figdir / "balanced_vs_unbalanced.png",
                                     title="Unbalanced vs balanced (positive: unbalanced better)",
                                     ylabel="relative improvement (%)", groups=[t.group for t in per_task])
        s.items.append(Figure(figs["balance"], "relative improvement of unbalanced over balanced pre-training"))
    else:
        s.items.append(Para("Not available: needs encoders marked balanced: true / false with the same pair id.", "na"))
    secs.append(s)

    # similar data
    s = Section("similar", "Pre-training on similar data")
    sim = an.similar_data(table)
    if sim:
        s.items.append(Table(["task", "method", "encoder", "corpus", "oriented score", "others' mean", "rank"],
                             [[r.task, r.method, r.encoder, r.corpus, fmt(r.score), fmt(r.others_mean),
                               f"{r.rank}/{r.n_others + 1}"] for r in sim], name="similar"))
    else:
        s.items.append(Para("Not available: needs tasks annotated with similar_corpus and encoders pre-trained on "
                            "those corpora.", "na"))
    secs.append(s)

    # noise & method notes
    s = Section("method", "How the numbers were made")
    s.items.append(Para(
        "Scores are each task's primary test metric; lower-is-better metrics (L1) are negated before any "
        "comparison. Correlations use the self-supervised encoders only. Verdict rules and thresholds: "
        "contrasting.eval.findings (finding 1: supervised best on the reference and on no task outside it and "
        "tasks marked supervised_domain; 2: median Spearman ρ of non-image-semantic tasks < 0.5; 3: mean MoCo v2 − "
        "SwAV difference > 0 on pixel-wise and < 0 on image-level tasks; 4: best-SSL-over-supervised improvement "
        "larger on structural than semantic tasks; 5: similar-corpus encoder above its method's mean in ≥ 2/3 of "
        "comparisons; 6: no metric family where balanced is significantly better and mean unbalanced − balanced ≥ "
        "−2 %). Confidence: share of bootstrap replicates (resampling the encoders a finding rests on, and seeds) "
        "giving the same verdict — high ≥ 90 % with ≥ 5 units, moderate ≥ 75 % with ≥ 3 units, low otherwise."))
    s.items.append(Table(["task", "group", "metric", "higher is better", "median seed sd"],
                         [[t, table.group(t), str(table.task_meta[t].get("metric", "")),
                           "yes" if table.task_meta[t].get("higher_is_better", True) else "no",
                           fmt(noise.seed_std.get(t))] for t in table.tasks], name="tasks"))
    s.items += [Para(n) for n in table.notes]
    failed = [c for c in cells if c.status == "failed"]
    if failed:
        s.items.append(Table(["cell", "error"], [[c.label, error_summary(c.error)] for c in failed],
                             caption="Failed cells (rerun the grid to retry).", name="failed"))
    versions = {}
    for c in cells:
        for k, v in (c.versions or {}).items():
            versions.setdefault(k, set()).add(str(v))
    if versions:
        text = "; ".join(f"{k} {', '.join(sorted(v))}" for k, v in sorted(versions.items()))
        s.items.append(Para("Versions: " + text))
    secs.append(s)
    return secs, figs


def _warnings(table: ResultsTable, ref: str, noise: an.Noise) -> list[str]:
    out = []
    ssl = table.by_role("ssl")
    if len(ssl) < 6:
        out.append(f"Only {len(ssl)} self-supervised encoders: correlations and bootstrap confidences are coarse; "
                   "treat every verdict as indicative.")
    if noise.ssl_lift_over_random is not None:
        sd = noise.seed_std.get(ref, math.nan)
        txt = (f"Signal: the best self-supervised encoder is {noise.ssl_lift_over_random:+.3g} above the random "
               f"encoder on {ref}")
        if math.isfinite(sd):
            txt += f" (median seed sd {sd:.2g})"
        if abs(noise.ssl_lift_over_random) < 0.05 and table.task_meta[ref].get("metric") in ("top1", "acc"):
            txt += ": a small lift — pre-training barely separated the encoders from random, so the findings mostly " \
                   "reflect noise; a longer pre-training preset gives clearer statistics"
        out.append(txt + ".")
    if noise.n_seeds <= 1:
        out.append("One seed per cell: seed noise is not measured, and the bootstrap resamples encoders only.")
    return out


def _score(v: float) -> str:
    """Scores: three decimals below 10 (accuracies, IoUs, L1 errors), four significant digits above."""
    if not np.isfinite(v):
        return "—"
    return f"{v:.3f}" if abs(v) < 10 else f"{v:.4g}"


def _results_table(table: ResultsTable) -> Table:
    sd = table.seed_std()
    o = table.oriented()
    header = ["encoder", "role", "method", "corpus"] + table.tasks
    rows, bold = [], set()
    for i, e in enumerate(table.encoders):
        m = table.encoder_meta[e]
        row = [e, table.role(e), str(m.get("method") or ""), str(m.get("corpus") or "")]
        for j in range(len(table.tasks)):
            v = table.scores[i, j]
            cell = _score(v)
            if np.isfinite(v) and np.isfinite(sd[i, j]):
                cell += f" ± {_score(sd[i, j])}"
            row.append(cell)
        rows.append(row)
    for j in range(len(table.tasks)):
        col = o[:, j]
        if np.isfinite(col).any():
            bold.add((int(np.nanargmax(col)), 4 + j))
    cap = "Groups: " + "; ".join(f"{t}: {table.group(t)}, {table.task_meta[t].get('metric', '')}" for t in table.tasks)
    return Table(header, rows, caption=cap, bold=bold, name="results")


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
td.num{text-align:right;font-variant-numeric:tabular-nums}caption{caption-side:bottom;text-align:left;color:#5a6470;
padding-top:4px;font-size:13px}
p.warn{background:#fff6da;border-left:4px solid #e0b000;padding:8px 12px}p.na{color:#5a6470;font-style:italic}
figure{margin:16px 0}figure img{max-width:100%;height:auto;border:1px solid #e3e6ea}
figcaption{color:#5a6470;font-size:14px}
"""


def _img_data(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _html(title: str, info: dict, sections: list[Section], table: ResultsTable) -> str:
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">', f"<title>{e(title)}</title>",
             f"<style>{_CSS}</style></head><body><main>", f"<h1>{e(title)}</h1>",
             f'<p class="meta">{e(_meta(info, table))}</p>',
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
            cls = ' class="num"' if _is_num(c) and j > 0 else ""
            cells.append(f"<td{cls}>{text}</td>")
        out.append(f"<tr{css}>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _meta(info: dict, table: ResultsTable) -> str:
    bits = []
    if info.get("store"):
        c = info.get("counts") or {}
        bits.append(f"store {info['store']}")
        bits.append(f"{c.get('done', 0)}/{info.get('total')} cells done, {c.get('failed', 0)} failed")
    bits.append(f"{len(table.encoders)} encoders × {len(table.tasks)} tasks")
    bits.append("generated " + time.strftime("%Y-%m-%d %H:%M %Z"))
    return " · ".join(bits)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown(title: str, info: dict, sections: list[Section], table: ResultsTable, out: Path) -> str:
    lines = [f"# {title}", "", _meta(info, table), ""]
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


def add_report_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``contrasting report``'s arguments to ``parser``."""
    parser.add_argument("store", help="results store (.sqlite) or a grid spec (its store)")
    parser.add_argument("--out", help="output folder (default: <store>-report beside the store)")
    parser.add_argument("--reference", help="reference task (default: the spec's, else imagenet or the built-in "
                                            "semantic task)")
    parser.add_argument("--spec-hash", help="the grid to report on (prefix; default: the latest registered)")
    parser.add_argument("--title", help="report title")
    parser.add_argument("--bootstrap", type=int, default=500, help="bootstrap replicates per finding (default 500)")
    return parser


def report_command(args: argparse.Namespace) -> int:
    """Run ``contrasting report`` with parsed arguments; prints where the files are and each finding's verdict.
    Returns 0, or 2 when the store is missing or holds nothing to report."""
    store = Path(args.store)
    if store.suffix in (".yaml", ".yml"):
        from contrasting.eval.grid_spec import load_spec  # noqa: PLC0415

        store = load_spec(store, validate=False).store_path
    try:
        files = build_report(store, args.out, reference=args.reference, spec_hash=args.spec_hash, title=args.title,
                             n_boot=args.bootstrap)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"report: {files.html}\n        {files.markdown}\n        {files.csv}")
    for f in files.findings:
        print(f"  finding {f.number}: {f.verdict:<13} {f.confidence_note}")
    return 0


def report_main(argv: list[str] | None = None) -> int:
    """Write the study's analysis of a results store: HTML and Markdown report, CSV tables, figures.

    The ``contrasting report`` subcommand (entry point ``contrasting.commands``: a callable taking ``argv`` and
    returning the exit status); ``python -m contrasting.eval.report`` runs it without the dispatcher."""
    parser = argparse.ArgumentParser(prog="contrasting report", description="Analysis report from a results store.")
    add_report_arguments(parser)
    return report_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(report_main())

"""The report's figures (matplotlib, Agg backend, PNG), sized to be read without zooming.

Every function draws one figure from analysis results and writes it to ``path``; it returns the path.
Fonts are 12–14 pt at 100 dpi on figures about 1000–1300 px wide; colours encode the four task groups
consistently across figures (``GROUP_COLOURS``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: figures are only ever written to files
import matplotlib.pyplot as plt  # noqa: E402 - after the backend choice
import numpy as np  # noqa: E402

from contrasting.eval.analysis import GROUPS, Fit, ResultsTable, analysis_encoders, standardised  # noqa: E402

DPI = 100
GROUP_COLOURS = {"image semantic": "#1f77b4", "image structural": "#ff7f0e", "pixel semantic": "#2ca02c",
                 "pixel structural": "#d62728"}
STYLE = {"font.size": 12, "axes.titlesize": 14, "axes.labelsize": 13, "xtick.labelsize": 11,
         "ytick.labelsize": 11, "legend.fontsize": 10, "figure.titlesize": 15, "axes.grid": True,
         "grid.alpha": 0.3}
MARKERS = "os^Dv<>Ph*X"


def _save(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return path


def scatter_vs_reference(table: ResultsTable, reference: str, fits: Mapping[str, Fit], path: str | os.PathLike,
                         *, include: str = "ssl") -> Path:
    """The main figure: one panel per task group; x = the reference task's score, y = each task's oriented
    score standardised over the plotted encoders (up is better), one colour/marker per task with its fitted
    line and Pearson r in the legend. Only ``include`` encoders (self-supervised by default) are drawn:
    baselines would set the axes' range and flatten everything else."""
    enc = analysis_encoders(table, include)
    rows = table.rows(enc)
    z = standardised(table, rows)
    x = table.scores[rows, table.tasks.index(reference)]
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(2, 2, figsize=(13, 9.5), sharex=True)
        for ax, group in zip(axes.flat, GROUPS, strict=True):
            tasks = [t for t in table.tasks if table.group(t) == group and t != reference]
            ax.set_title(group)
            ax.set_ylabel("standardised score (up = better)")
            if not tasks:
                ax.text(0.5, 0.5, "no task in this group", ha="center", va="center", transform=ax.transAxes,
                        fontsize=13, color="0.4")
                continue
            for k, t in enumerate(tasks):
                y = z[:, table.tasks.index(t)]
                ok = np.isfinite(x) & np.isfinite(y)
                colour = plt.cm.tab10(k % 10)
                fit = fits.get(t)
                r = f"{fit.r:.2f}" if fit is not None and math.isfinite(fit.r) else "—"
                ax.scatter(x[ok], y[ok], s=60, color=colour, marker=MARKERS[k % len(MARKERS)],
                           label=f"{t} (r={r})", edgecolor="black", linewidth=0.5, zorder=3)
                if fit is not None and ok.sum() >= 2 and math.isfinite(fit.slope):
                    xs = np.linspace(np.nanmin(x[ok]), np.nanmax(x[ok]), 20)
                    ax.plot(xs, fit.intercept + fit.slope * xs, color=colour, linewidth=2, alpha=0.8)
            ax.legend(loc="best", framealpha=0.85)
        for ax in axes[1]:
            ax.set_xlabel(f"{reference} {table.task_meta[reference].get('metric', 'score')}")
        fig.suptitle(f"End-task score vs {reference} over {len(enc)} self-supervised encoders")
        fig.tight_layout()
        return _save(fig, path)


def heatmap(names: Sequence[str], matrix: np.ndarray, path: str | os.PathLike, *, title: str,
            groups: Sequence[str] | None = None, vmin: float = -1.0, vmax: float = 1.0, cmap: str = "RdBu_r") -> Path:
    """A square annotated heatmap (task × task correlations); tick labels coloured by ``groups``."""
    k = len(names)
    size = max(6.0, 0.75 * k + 3)
    with plt.rc_context({**STYLE, "axes.grid": False}):
        fig, ax = plt.subplots(figsize=(size + 1.5, size))
        im = ax.imshow(matrix, vmin=vmin, vmax=vmax, cmap=cmap)
        ax.set_xticks(range(k), names, rotation=45, ha="right")
        ax.set_yticks(range(k), names)
        if groups is not None:
            for lab, g in zip(ax.get_xticklabels(), groups, strict=True):
                lab.set_color(GROUP_COLOURS.get(g, "black"))
            for lab, g in zip(ax.get_yticklabels(), groups, strict=True):
                lab.set_color(GROUP_COLOURS.get(g, "black"))
        if k <= 20:
            for a in range(k):
                for b in range(k):
                    v = matrix[a, b]
                    if np.isfinite(v):
                        ax.text(b, a, f"{v:.2f}", ha="center", va="center", fontsize=10 if k <= 12 else 8,
                                color="white" if abs(v) > 0.6 else "black")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        ax.set_title(title)
        fig.tight_layout()
        return _save(fig, path)


def bars(labels: Sequence[str], values: Sequence[float], path: str | os.PathLike, *, title: str, ylabel: str,
         groups: Sequence[str] | None = None, annotations: Sequence[str] | None = None,
         reference_line: float | None = 0.0) -> Path:
    """Vertical bars per task, coloured by group (legend), optional text over each bar."""
    k = len(labels)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(max(8.0, 0.8 * k + 3), 5.5))
        colours = [GROUP_COLOURS.get(g, "0.5") for g in groups] if groups else ["#1f77b4"] * k
        vals = np.array([v if v is not None and math.isfinite(v) else np.nan for v in values], dtype=float)
        ax.bar(range(k), np.nan_to_num(vals), color=colours, edgecolor="black", linewidth=0.5)
        ax.set_xticks(range(k), labels, rotation=35, ha="right")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        if reference_line is not None:
            ax.axhline(reference_line, color="black", linewidth=1)
        if annotations:
            for i, (v, a) in enumerate(zip(vals, annotations, strict=True)):
                if a and np.isfinite(v):
                    ax.annotate(a, (i, v), textcoords="offset points", xytext=(0, 4 if v >= 0 else -14),
                                ha="center", fontsize=10)
        if groups:
            seen = [g for g in GROUPS if g in set(groups)]
            ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=GROUP_COLOURS[g]) for g in seen], labels=seen,
                      loc="best")
        fig.tight_layout()
        return _save(fig, path)


def score_heatmap(table: ResultsTable, path: str | os.PathLike) -> Path:
    """Encoders × tasks, each task's oriented scores standardised over encoders (colour) with the raw value
    written in each cell."""
    z = standardised(table)
    e, t = len(table.encoders), len(table.tasks)
    with plt.rc_context({**STYLE, "axes.grid": False}):
        fig, ax = plt.subplots(figsize=(max(8.0, 1.1 * t + 3), max(4.0, 0.5 * e + 2)))
        im = ax.imshow(z, cmap="viridis", aspect="auto", vmin=-2, vmax=2)
        ax.set_xticks(range(t), table.tasks, rotation=35, ha="right")
        ax.set_yticks(range(e), table.encoders)
        for lab, task in zip(ax.get_xticklabels(), table.tasks, strict=True):
            lab.set_color(GROUP_COLOURS.get(table.group(task), "black"))
        for i in range(e):
            for j in range(t):
                v = table.scores[i, j]
                if np.isfinite(v):
                    ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=9,
                            color="black" if z[i, j] > 0.5 else "white")
        fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02, label="standardised (up = better)")
        ax.set_title("Scores per encoder and task (colour: standardised per task)")
        fig.tight_layout()
        return _save(fig, path)

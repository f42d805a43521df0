"""The report's figures (matplotlib, Agg backend, PNG), sized to be read without zooming.

Every function draws one figure and writes it to ``path``; it returns the path. Scores are gains over the
trivial baseline (``stats``: 0 = chance, 1 = perfect), so panels share one scale; cells at chance are drawn
grey and hollow. Colours encode task groups (``GROUP_COLOURS``) or pre-training methods (``METHOD_COLOURS``),
markers corpora, consistently across figures.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

from contrasting.data.atomic import atomic_output
from contrasting.data.vocabulary import GROUP_NAMES

matplotlib.use("Agg")  # headless: figures are only ever written to files
import matplotlib.pyplot as plt
import numpy as np

DPI = 100
GROUPS = GROUP_NAMES
GROUP_COLOURS = {"image semantic": "#1f77b4", "image structural": "#ff7f0e", "pixel semantic": "#2ca02c",
                 "pixel structural": "#d62728"}
METHOD_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
CHANCE_COLOUR = "0.72"
STYLE = {"font.size": 12, "axes.titlesize": 14, "axes.labelsize": 13, "xtick.labelsize": 11,
         "ytick.labelsize": 11, "legend.fontsize": 10, "figure.titlesize": 15, "axes.grid": True,
         "grid.alpha": 0.3}
MARKERS = "os^Dv<>Ph*X"


def _save(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=DPI, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return path


def _styles(keys: Sequence[str], palette) -> dict[str, object]:
    ordered = list(dict.fromkeys(str(k) for k in keys))
    return {k: palette[i % len(palette)] for i, k in enumerate(ordered)}


def scatter_gains(grid, reference: str, rows: Sequence[int], path: str | os.PathLike) -> Path:
    """The main figure: one panel per task group; x = the reference task's gain, y = each task's gain, one point
    per (encoder, task) with the encoder's method as colour and corpus as marker (legend), a least-squares line
    per task over the cells above chance, and the cells at chance grey and hollow. ``rows``: the encoders drawn."""
    jr = grid.col(reference)
    methods = [str(grid.encoder_meta[grid.encoders[i]].get("method") or grid.encoder_meta[grid.encoders[i]]["role"])
               for i in rows]
    corpora = [str(grid.encoder_meta[grid.encoders[i]].get("corpus") or "—") for i in rows]
    colour, marker = _styles(methods, METHOD_PALETTE), _styles(corpora, MARKERS)
    x = grid.gain[list(rows), jr]
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(2, 2, figsize=(14, 10), sharex=True)
        for ax, group in zip(axes.flat, GROUPS, strict=True):
            cols = [j for j, t in enumerate(grid.tasks) if j != jr and
                    f"{grid.task_meta[t]['level']} {grid.task_meta[t]['kind']}" == group]
            ax.set_title(group)
            ax.set_ylabel("gain over chance (0 = chance, 1 = perfect)")
            ax.axhline(0, color="black", linewidth=1)
            if not cols:
                ax.text(0.5, 0.5, "no task in this group", ha="center", va="center", transform=ax.transAxes,
                        fontsize=13, color="0.4")
                continue
            for j in cols:
                y = grid.gain[list(rows), j]
                sig = grid.signal[list(rows), j] & grid.signal[list(rows), jr]
                for k in range(len(rows)):
                    if not (np.isfinite(x[k]) and np.isfinite(y[k])):
                        continue
                    style = dict(color=colour[methods[k]], edgecolor="black") if sig[k] else dict(
                        facecolor="none", edgecolor=CHANCE_COLOUR)
                    ax.scatter(x[k], y[k], s=55, marker=marker[corpora[k]], linewidth=0.7, zorder=3, **style)
                ok = sig & np.isfinite(x) & np.isfinite(y)
                if ok.sum() >= 3 and np.ptp(x[ok]) > 0:
                    slope, intercept = np.polyfit(x[ok], y[ok], 1)
                    xs = np.linspace(x[ok].min(), x[ok].max(), 10)
                    ax.plot(xs, intercept + slope * xs, color="0.35", linewidth=1.2, alpha=0.8)
                    ax.annotate(grid.tasks[j], (xs[-1], intercept + slope * xs[-1]), fontsize=10, color="0.25",
                                xytext=(3, 0), textcoords="offset points")
                elif np.isfinite(y).any():
                    k = int(np.nanargmax(np.where(np.isfinite(x), y, np.nan))) if np.isfinite(x).any() else 0
                    if np.isfinite(x[k]) and np.isfinite(y[k]):
                        ax.annotate(grid.tasks[j], (x[k], y[k]), fontsize=10, color="0.25", xytext=(4, 4),
                                    textcoords="offset points")
        for ax in axes[1]:
            ax.set_xlabel(f"gain on the reference task {reference}")
        handles = [plt.Line2D([], [], linestyle="", marker="o", color=c, markeredgecolor="black", label=m)
                   for m, c in colour.items()]
        handles += [plt.Line2D([], [], linestyle="", marker=mk, color="0.5", label=c) for c, mk in marker.items()]
        handles.append(plt.Line2D([], [], linestyle="", marker="o", markerfacecolor="none",
                                  markeredgecolor=CHANCE_COLOUR, label="at chance"))
        fig.legend(handles=handles, loc="center right", bbox_to_anchor=(1.13, 0.5), title="method / corpus")
        fig.suptitle(f"Every task's gain against {reference}'s, per encoder (lines: fits over cells above chance)")
        fig.tight_layout()
        return _save(fig, path)


def gain_heatmap(grid, path: str | os.PathLike) -> Path:
    """Encoders × tasks: colour = gain over chance on one scale for every task, the raw metric value written in
    the cell, cells at chance hatched grey."""
    e, t = len(grid.encoders), len(grid.tasks)
    with plt.rc_context({**STYLE, "axes.grid": False}):
        fig, ax = plt.subplots(figsize=(max(8.0, 1.15 * t + 3), max(4.0, 0.5 * e + 2)))
        shown = np.where(grid.signal, grid.gain, np.nan)
        im = ax.imshow(shown, cmap="viridis", aspect="auto", vmin=0, vmax=max(0.2, float(np.nanmax(
            np.where(np.isfinite(shown), shown, 0)))))
        for i in range(e):
            for j in range(t):
                if not grid.signal[i, j]:
                    ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="0.9", hatch="//",
                                               edgecolor=CHANCE_COLOUR, linewidth=0))
                v = grid.gain[i, j]
                if np.isfinite(v):
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=9,
                            color="0.35" if not grid.signal[i, j] else "white" if v < 0.6 * im.norm.vmax else "black")
        ax.set_xticks(range(t), grid.tasks, rotation=35, ha="right")
        ax.set_yticks(range(e), grid.encoders)
        for lab, task in zip(ax.get_xticklabels(), grid.tasks, strict=True):
            m = grid.task_meta[task]
            lab.set_color(GROUP_COLOURS.get(f"{m['level']} {m['kind']}", "black"))
        fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02, label="gain over chance")
        ax.set_title("Gain over the trivial baseline per encoder and task (hatched: at chance)")
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
            for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
                for lab, g in zip(labels, groups, strict=True):
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
         groups: Sequence[str] | None = None, errors: Sequence[float] | None = None,
         annotations: Sequence[str] | None = None, reference_line: float | None = 0.0) -> Path:
    """Vertical bars per task, coloured by group (legend), with optional ±2 SE whiskers (``errors``: one SE per
    bar) and text over each bar."""
    k = len(labels)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(max(8.0, 0.8 * k + 3), 5.5))
        colours = [GROUP_COLOURS.get(g, "0.5") for g in groups] if groups else ["#1f77b4"] * k
        vals = np.array([v if v is not None and math.isfinite(v) else np.nan for v in values], dtype=float)
        yerr = None if errors is None else 2 * np.nan_to_num(np.asarray(errors, dtype=float))
        ax.bar(range(k), np.nan_to_num(vals), color=colours, edgecolor="black", linewidth=0.5, yerr=yerr,
               capsize=4 if yerr is not None else 0)
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


def critical_difference(names: Sequence[str], mean_rank: np.ndarray, pairwise_p: np.ndarray,
                        path: str | os.PathLike, *, title: str) -> Path:
    """Demšar's critical-difference diagram (scikit-posthocs): encoders on the axis of mean ranks, bars joining
    those whose Nemenyi test does not separate them at 5 %."""
    import pandas as pd
    import scikit_posthocs as sp

    ranks = pd.Series(np.asarray(mean_rank, dtype=float), index=list(names))
    sig = pd.DataFrame(np.asarray(pairwise_p, dtype=float), index=list(names), columns=list(names))
    with plt.rc_context({**STYLE, "axes.grid": False}):
        fig, ax = plt.subplots(figsize=(11, max(3.0, 0.32 * len(names) + 1.5)))
        sp.critical_difference_diagram(ranks, sig, ax=ax, label_fmt_left="{label} ({rank:.1f})  ",
                                       label_fmt_right="  ({rank:.1f}) {label}")
        ax.set_title(title)
        fig.tight_layout()
        return _save(fig, path)


def pretraining_curves(runs: dict[str, dict], path: str | os.PathLike, *, knn_label: str = "k-NN top-1") -> Path:
    """Left: each run's loss (``steps``, ``loss``) divided by its no-learning value (``no_learning``: ln of the
    candidates, ln K for SwAV), so that every method starts near 1 and 0.9 marks the demo's target; right: the
    online k-NN checks (``knn``: [(step, top-1)])."""
    with plt.rc_context(STYLE):
        fig, (ax, bx) = plt.subplots(1, 2, figsize=(15, 6))
        for k, (name, run) in enumerate(sorted(runs.items())):
            style = dict(color=METHOD_PALETTE[k % len(METHOD_PALETTE)],
                         linestyle=("-", "--", ":", "-.")[k // len(METHOD_PALETTE) % 4], linewidth=1.6, label=name)
            chance = run.get("no_learning")
            loss = np.asarray(run["loss"], dtype=float)
            ax.plot(run["steps"], loss / chance if chance else loss, **style)
            if run.get("knn"):
                steps, top1 = zip(*run["knn"], strict=True)
                bx.plot(steps, top1, marker="o", **style)
        ax.axhline(1.0, color="black", linewidth=1)
        ax.axhline(0.9, color="0.5", linewidth=1, linestyle="--")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("loss / no-learning loss")
        ax.set_title("Pre-training loss (1 = no learning; dashed: 90 %)")
        bx.set_xlabel("optimizer step")
        bx.set_ylabel(knn_label)
        bx.set_title("Online k-NN on the reference task")
        ax.legend(loc="lower left", ncol=2, framealpha=0.85)
        fig.tight_layout()
        return _save(fig, path)

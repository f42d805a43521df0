"""Simulated study grids in the results-CSV format, for calibrating the findings' decision rules.

The design is the study's (Kotar et al. 2021): 20 tasks in the four groups with their metrics and trivial
baselines, a supervised and a random encoder, MoCo v2 and SwAV each pre-trained on ImageNet, half, quarter,
linearly- and log-unbalanced ImageNet, Places, Kinetics and Taskonomy (16 self-supervised encoders; 4
balanced / unbalanced pairs; 8 similar-corpus comparisons).

Gains (share of the way from the trivial baseline to a perfect score) are drawn as

    g[e, t] = μ_t + a_e + c_et + (planted effect) + se · z_et,     z ~ N(0, 1),

μ_t ~ U(0.3, 0.6) the task's level, a_e ~ N(0, σ_a²) the encoder's overall quality, c_et ~ N(0, σ_c²) its
task-specific deviation, ``se`` the per-cell standard error (gain units): every encoder, whatever its role,
method or corpus, comes from one distribution unless an effect is planted. The random encoder sits at chance
(μ = 0.02). ``correlated`` grids instead give each encoder a latent factor z_e and each task a loading λ_t,
g = μ_t + s·(λ_t z_e + √(1 − λ_t²) w_et) + se·z, so that the true correlation of two tasks over encoders is
λ_a λ_b: the reference has λ = 1, the other image-level semantic tasks ``control``, every other task ``rho``.
Values are written in each metric's own units (L1 as an error) with their standard errors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# name, level, kind, metric, trivial baseline (in the metric's units)
TASKS = [
    ("imagenet", "image", "semantic", "top1", 0.001), ("pets", "image", "semantic", "top1", 1 / 37),
    ("caltech101", "image", "semantic", "top1", 1 / 102), ("cifar100", "image", "semantic", "top1", 0.01),
    ("sun397", "image", "semantic", "top1", 1 / 397), ("eurosat", "image", "semantic", "top1", 0.1),
    ("dtd", "image", "semantic", "top1", 1 / 47), ("kinetics", "image", "semantic", "top1", 1 / 400),
    ("clevr-count", "image", "structural", "top1", 1 / 8), ("thor-num-steps", "image", "structural", "top1", 0.25),
    ("thor-egomotion", "image", "structural", "top1", 0.2), ("nuscenes-egomotion", "image", "structural", "top1", 0.2),
    ("cityscapes", "pixel", "semantic", "miou", 0.04), ("pets-seg", "pixel", "semantic", "iou", 0.3),
    ("egohands", "pixel", "semantic", "miou_no_bg", 0.02), ("nyu-depth", "pixel", "structural", "l1", 0.8),
    ("nyu-walkable", "pixel", "structural", "iou", 0.3), ("thor-depth", "pixel", "structural", "l1", 0.5),
    ("taskonomy-depth", "pixel", "structural", "l1", 0.3), ("kitti-flow", "pixel", "structural", "flow_acc", 0.2),
]
SIMILAR = {"caltech101": "imagenet", "sun397": "places", "kinetics": "kinetics", "taskonomy-depth": "taskonomy"}
CORPORA = [("imagenet", 1_281_167, None, None), ("imagenet-half", 640_000, True, "half"),
           ("imagenet-quarter", 320_000, True, "quarter"), ("imagenet-linear", 640_000, False, "half"),
           ("imagenet-log", 320_000, False, "quarter"), ("places", 1_300_000, None, None),
           ("kinetics", 1_300_000, None, None), ("taskonomy", 1_300_000, None, None)]
METHODS = ("mocov2", "swav")
PERFECT = {"l1": 0.0}


def encoders() -> list[dict]:
    """The simulated grid's encoders with their metadata columns."""
    out = [{"encoder": "Supervised", "role": "supervised", "corpus": "imagenet"},
           {"encoder": "Random", "role": "random"}]
    for m in METHODS:
        for corpus, size, balanced, pair in CORPORA:
            out.append({"encoder": f"{m}-{corpus}", "role": "ssl", "method": m, "corpus": corpus,
                        "corpus_size": size, "epochs": 200, "balanced": balanced, "pair": pair})
    return out


def _frame(gain: np.ndarray, se: float, encs: list[dict]) -> pd.DataFrame:
    rows = []
    for i, e in enumerate(encs):
        for j, (task, level, kind, metric, base) in enumerate(TASKS):
            best = PERFECT.get(metric, 1.0)
            rows.append({**{k: e.get(k) for k in ("encoder", "role", "method", "corpus", "corpus_size", "epochs",
                                                  "balanced", "pair")},
                         "task": task, "seed": 0, "value": base + gain[i, j] * (best - base),
                         "se": se * abs(best - base), "level": level, "kind": kind, "metric": metric,
                         "higher_is_better": metric != "l1", "baseline": base, "reference": task == "imagenet",
                         "similar_corpus": SIMILAR.get(task, ""), "supervised_domain": task == "pets"})
    return pd.DataFrame(rows)


def plant_mask(claim: int, encs: list[dict]) -> np.ndarray:
    """(E, T) cells that move a claim's effect statistic by exactly the planted amount in its claimed direction:
    1: the supervised encoder on its domain (ImageNet, Pets); 3: MoCo v2 on pixel-wise tasks; 4: every
    self-supervised encoder on structural tasks; 5: each encoder on the task its corpus is similar to; 6: the
    unbalanced encoders everywhere."""
    mask = np.zeros((len(encs), len(TASKS)))
    for i, e in enumerate(encs):
        for j, (task, level, kind, *_rest) in enumerate(TASKS):
            if claim == 1 and e["role"] == "supervised" and task in ("imagenet", "pets"):
                mask[i, j] = 1
            elif claim == 3 and e.get("method") == "mocov2" and level == "pixel":
                mask[i, j] = 1
            elif claim == 4 and e["role"] == "ssl" and kind == "structural":
                mask[i, j] = 1
            elif claim == 5 and e["role"] == "ssl" and SIMILAR.get(task) == e.get("corpus"):
                mask[i, j] = 1
            elif claim == 6 and e.get("balanced") is False:
                mask[i, j] = 1
    return mask


def simulate(rng: np.random.Generator, *, se: float = 0.02, sigma_encoder: float = 0.02, sigma_cell: float = 0.0,
             plant: int | None = None, effect: float = 0.0) -> pd.DataFrame:
    """One grid (module docstring): per-cell standard error ``se``, encoder quality spread ``sigma_encoder``,
    task-specific spread ``sigma_cell``, and ``effect`` (gain units) planted for claim ``plant``."""
    encs = encoders()
    mu = rng.uniform(0.3, 0.6, len(TASKS))
    a = rng.normal(0, sigma_encoder, len(encs))[:, None]
    c = rng.normal(0, sigma_cell, (len(encs), len(TASKS)))
    gain = mu[None, :] + a + c
    gain[[i for i, e in enumerate(encs) if e["role"] == "random"]] = 0.02
    if plant is not None:
        gain = gain + effect * plant_mask(plant, encs)
    gain = gain + se * rng.standard_normal(gain.shape)
    return _frame(gain, se, encs)


def simulate_correlated(rng: np.random.Generator, *, rho: float, control: float = 0.9, spread: float = 0.1,
                        se: float = 0.0075) -> pd.DataFrame:
    """A grid whose tasks correlate with the reference through a latent encoder factor (module docstring):
    true correlation ``rho`` for tasks that are not image-level semantic, ``control`` for the other image-level
    semantic tasks; ``spread`` the between-encoder standard deviation of true gains, ``se`` the per-cell one."""
    encs = encoders()
    z = rng.standard_normal(len(encs))[:, None]
    loading = np.array([1.0 if t == "imagenet" else control if (lv, k) == ("image", "semantic") else rho
                        for t, lv, k, *_ in TASKS])[None, :]
    w = rng.standard_normal((len(encs), len(TASKS)))
    gain = rng.uniform(0.3, 0.6, len(TASKS))[None, :] + spread * (loading * z + np.sqrt(1 - loading ** 2) * w)
    gain[[i for i, e in enumerate(encs) if e["role"] == "random"]] = 0.02
    gain = gain + se * rng.standard_normal(gain.shape)
    return _frame(gain, se, encs)

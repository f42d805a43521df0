"""The six findings' rules on constructed tables: supported, not supported and not testable for each, and
the bootstrap confidence labels."""

from __future__ import annotations

import numpy as np
import pytest

from contrasting.eval.analysis import ResultsTable
from contrasting.eval.findings import (
    NOT_SUPPORTED,
    NOT_TESTABLE,
    SUPPORTED,
    evaluate_finding,
    evaluate_findings,
)
from tests.eval.test_analysis import balance_table, method_table

TASKS = {"ref": ("image", "semantic", "top1", True), "pets": ("image", "semantic", "top1", True),
         "count": ("image", "structural", "top1", True), "seg": ("pixel", "semantic", "miou", True),
         "depth": ("pixel", "structural", "l1", False)}


def tmeta(**extra):
    out = {t: {"level": lv, "kind": k, "metric": m, "higher_is_better": h} for t, (lv, k, m, h) in TASKS.items()}
    out["pets"]["supervised_domain"] = True
    for t, m in extra.items():
        out[t].update(m)
    return out


def study_table(n_ssl=8, sup_row=None, structural=None, seed=0, **extra) -> ResultsTable:
    """n_ssl self-supervised encoders whose ref accuracy spreads over 0.3–0.7; pets follows ref; count, seg and
    depth are unrelated to ref (a fixed shuffle) unless ``structural`` gives them; a supervised encoder best on ref
    and pets, a random one worst everywhere."""
    rng = np.random.default_rng(seed)
    ref = np.linspace(0.3, 0.7, n_ssl)
    perm = rng.permutation(n_ssl)
    cols = {"ref": ref, "pets": ref * 0.9 + 0.05, "count": 0.4 + 0.4 * ref[perm],
            "seg": 0.3 + 0.4 * ref[np.roll(perm, 3)], "depth": 0.5 - 0.3 * ref[np.roll(perm, 5)]}
    if structural is not None:
        cols.update(structural(ref))
    rows = [[cols[t][i] for t in TASKS] for i in range(n_ssl)]
    rows.append(sup_row or [0.9, 0.85, 0.5, 0.5, 0.45])
    rows.append([0.05, 0.05, 0.1, 0.1, 0.9])
    enc = [f"SSL{i}" for i in range(n_ssl)] + ["Supervised", "Random"]
    meta = {e: {"method": "simclr", "corpus": f"c{i}"} for i, e in enumerate(enc[:n_ssl])}
    meta["Supervised"] = {"supervised": True}
    meta["Random"] = {"random": True}
    return ResultsTable(enc, list(TASKS), np.array(rows, dtype=float), meta, tmeta(**extra))


def test_finding_1():
    f = evaluate_finding(1, study_table(), n_boot=50)
    assert f.verdict == SUPPORTED and "outside {pets, ref}: 0" in f.statistic
    f = evaluate_finding(1, study_table(sup_row=[0.9, 0.85, 0.5, 0.5, 0.01]), n_boot=50)  # best on depth too
    assert f.verdict == NOT_SUPPORTED and f.numbers["outside"] == ["depth"]
    no_sup = study_table()
    no_sup.encoder_meta["Supervised"] = {"method": "byol"}
    assert evaluate_finding(1, no_sup.subset(no_sup.encoders[:2]), n_boot=50).verdict == NOT_TESTABLE


def test_finding_2():
    f = evaluate_finding(2, study_table(), n_boot=100)
    assert f.verdict == SUPPORTED and f.numbers["median_rho"] < 0.5
    assert f.numbers["median_rho_semantic"] == pytest.approx(1.0)  # pets follows ref exactly
    follows = study_table(structural=lambda r: {"count": r, "seg": r * 2, "depth": 1 - r})
    f = evaluate_finding(2, follows, n_boot=100)
    assert f.verdict == NOT_SUPPORTED and f.numbers["median_rho"] == pytest.approx(1.0)
    assert f.confidence == "high" and f.agreement == 1.0 and f.units == 8
    assert evaluate_finding(2, study_table(n_ssl=4), n_boot=10).verdict == NOT_TESTABLE


def test_finding_3():
    f = evaluate_finding(3, method_table(0.10, -0.10), n_boot=100)
    assert f.verdict == SUPPORTED and f.numbers["pixel_pct"] > 0 > f.numbers["image_pct"]
    assert f.units == 3 and f.confidence in ("moderate", "low")  # three pairs cannot give "high"
    assert evaluate_finding(3, method_table(-0.10, 0.10), n_boot=20).verdict == NOT_SUPPORTED
    t = method_table()
    only_moco = t.subset([e for e in t.encoders if not e.startswith("SwAV")])
    assert evaluate_finding(3, only_moco, n_boot=20).verdict == NOT_TESTABLE


def test_finding_4():
    # the supervised encoder: strong on semantic tasks, weak on structural ones
    f = evaluate_finding(4, study_table(sup_row=[0.9, 0.85, 0.3, 0.72, 0.6]), n_boot=50)
    assert f.verdict == SUPPORTED and f.numbers["structural_pct"] > f.numbers["semantic_pct"]
    f = evaluate_finding(4, study_table(sup_row=[0.5, 0.5, 0.95, 0.5, 0.05]), n_boot=50)
    assert f.verdict == NOT_SUPPORTED
    t = study_table()
    assert evaluate_finding(4, t.subset(tasks=["ref", "pets", "seg"]), n_boot=10).verdict == NOT_TESTABLE


def test_finding_5():
    base = study_table()
    t = study_table(count={"similar_corpus": ["c7"]})  # SSL7 (corpus c7) is best on count only by chance...
    j = t.tasks.index("count")
    t.scores[t.encoders.index("SSL7"), j] = 0.99  # ... so make it clearly so
    f = evaluate_finding(5, t, n_boot=50)
    assert f.verdict == SUPPORTED and "SSL7 rank 1/8" in f.statistic
    t.scores[t.encoders.index("SSL7"), j] = 0.01
    assert evaluate_finding(5, t, n_boot=20).verdict == NOT_SUPPORTED
    assert evaluate_finding(5, base, n_boot=20).verdict == NOT_TESTABLE


def test_finding_5_bootstraps_all_encoders_when_each_is_similar_to_some_task():
    """Two encoders, each pre-trained on the corpus of one task: no "other" encoder is left to resample, so
    the bootstrap resamples both (it used to report 100 % agreement over 0 units)."""
    t = study_table(n_ssl=2, count={"similar_corpus": ["c0"]}, seg={"similar_corpus": ["c1"]})
    f = evaluate_finding(5, t, n_boot=40)
    assert f.verdict in (SUPPORTED, NOT_SUPPORTED) and f.units == 2
    assert f.agreement is not None and f.confidence == "low" and "over 2 units" in f.confidence_note


def test_finding_6():
    f = evaluate_finding(6, balance_table(gain=0.05), n_boot=100)
    assert f.verdict == SUPPORTED and f.numbers["mean_rel_pct"] == pytest.approx(5)
    f = evaluate_finding(6, balance_table(gain=-0.30, n_pairs=5), n_boot=100)
    assert f.verdict == NOT_SUPPORTED and f.numbers["mean_rel_pct"] == pytest.approx(-30)
    assert f.confidence == "high" and f.units == 5
    assert evaluate_finding(6, study_table(), n_boot=10).verdict == NOT_TESTABLE


def test_evaluate_findings_on_a_grid_without_the_needed_encoders():
    found = evaluate_findings(study_table(), n_boot=20)
    assert [f.number for f in found] == [1, 2, 3, 4, 5, 6]
    untestable = [f for f in found if f.verdict == NOT_TESTABLE]
    assert {f.number for f in untestable} == {3, 5, 6}
    assert all(f.confidence_note == "—" and f.statistic.startswith("needs") for f in untestable)
    assert all(f.confidence in ("high", "moderate", "low") for f in found if f.verdict != NOT_TESTABLE)

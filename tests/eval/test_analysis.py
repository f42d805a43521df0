"""Analysis on constructed results tables with known correlations and known group effects (scipy is the
oracle for every statistic)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats

from contrasting.eval import analysis as an
from contrasting.eval.analysis import ResultsTable

GROUP_TASKS = {"ref": ("image", "semantic"), "same": ("image", "semantic"), "rev": ("image", "structural"),
               "depth": ("pixel", "structural"), "seg": ("pixel", "semantic")}


def task_meta(**extra):
    meta = {t: {"level": lv, "kind": k, "metric": "top1", "higher_is_better": True} for t, (lv, k) in
            GROUP_TASKS.items()}
    meta["depth"].update(metric="l1", higher_is_better=False)
    meta["seg"].update(metric="miou")
    for t, m in extra.items():
        meta[t].update(m)
    return meta


def correlated_table() -> ResultsTable:
    """8 SSL encoders; same = 2·ref + 1 (ρ = 1), rev = −ref (ρ = −1), depth is an L1 error falling with ref
    (oriented ρ = +1), seg a fixed permutation; the random baseline is an outlier everywhere."""
    ref = np.array([0.30, 0.35, 0.42, 0.47, 0.55, 0.61, 0.66, 0.72])
    seg = ref[[3, 0, 6, 1, 7, 2, 5, 4]]
    rows = [[r, 2 * r + 1, -r, 1.0 - 0.5 * r, s] for r, s in zip(ref, seg, strict=True)]
    rows.append([0.05, 5.0, 3.0, 9.0, 0.9])  # random
    enc = [f"ssl{i}" for i in range(8)] + ["Random"]
    meta = {e: {"method": "simclr"} for e in enc[:8]}
    meta["Random"] = {"random": True}
    return ResultsTable(enc, list(GROUP_TASKS), np.array(rows), meta, task_meta())


def test_orientation_negates_lower_is_better():
    t = correlated_table()
    assert np.allclose(t.ocol("depth"), -t.col("depth")) and np.allclose(t.ocol("ref"), t.col("ref"))
    assert t.role("Random") == "random" and t.by_role("ssl") == [f"ssl{i}" for i in range(8)]
    assert t.group("depth") == "pixel structural" and t.reference_task() == "ref"


def test_correlations_with_reference_match_scipy():
    t = correlated_table()
    corr = {c.task: c for c in an.correlations_with_reference(t, "ref")}
    assert corr["same"].spearman == pytest.approx(1) and corr["same"].pearson == pytest.approx(1)
    assert corr["rev"].spearman == pytest.approx(-1)
    assert corr["depth"].spearman == pytest.approx(1)  # the L1 error was oriented before correlating
    ref, seg = t.col("ref")[:8], t.col("seg")[:8]
    rho, p = stats.spearmanr(ref, seg)
    r, pr = stats.pearsonr(ref, seg)
    assert corr["seg"].spearman == pytest.approx(rho) and corr["seg"].spearman_p == pytest.approx(p)
    assert corr["seg"].pearson == pytest.approx(r) and corr["seg"].pearson_p == pytest.approx(pr)
    assert all(c.n == 8 for c in corr.values())  # the random baseline is left out
    fast = {c.task: c for c in an.correlations_with_reference(t, "ref", pvalues=False)}
    assert all(fast[k].spearman == pytest.approx(corr[k].spearman) for k in corr)
    assert all(fast[k].pearson == pytest.approx(corr[k].pearson) for k in corr)
    allc = {c.task: c for c in an.correlations_with_reference(t, "ref", include="all")}
    assert allc["seg"].n == 9


def test_task_matrix_and_fits():
    t = correlated_table()
    names, rho, p = an.task_correlation_matrix(t)
    assert names == ["ref", "same", "rev", "seg", "depth"]  # grouped: image sem, image struct, pixel sem, pixel struct
    assert np.allclose(np.diag(rho), 1) and np.allclose(rho, rho.T)
    assert rho[0, 1] == pytest.approx(1) and rho[0, 2] == pytest.approx(-1)
    fits = an.fits_vs_reference(t, "ref")
    z = an.standardised(t, t.rows(t.by_role("ssl")))
    res = stats.linregress(t.col("ref")[:8], z[:, t.tasks.index("seg")])
    assert fits["seg"].slope == pytest.approx(res.slope) and fits["seg"].r == pytest.approx(res.rvalue)


def test_missing_cells_and_constant_tasks_give_nan():
    t = correlated_table()
    t.scores[2, t.tasks.index("seg")] = np.nan
    t.scores[:, t.tasks.index("same")] = 1.0
    corr = {c.task: c for c in an.correlations_with_reference(t, "ref")}
    assert corr["seg"].n == 7 and math.isfinite(corr["seg"].spearman)
    assert math.isnan(corr["same"].spearman)


def method_table(effect_pixel=0.10, effect_image=-0.10) -> ResultsTable:
    """MoCo v2 / SwAV pairs on three corpora: MoCo = SwAV·(1 + effect) per level; plus unmatched SimCLR."""
    enc, rows, meta = [], [], {}
    rng = np.random.default_rng(0)
    for corpus in ("a", "b", "c"):
        base = rng.uniform(0.4, 0.8, len(GROUP_TASKS))
        base[3] = rng.uniform(0.2, 0.4)  # depth L1
        effect = np.array([effect_image if GROUP_TASKS[t][0] == "image" else effect_pixel for t in GROUP_TASKS])
        oriented_sign = np.array([-1.0 if t == "depth" else 1.0 for t in GROUP_TASKS])
        swav = base
        # for the L1 task "better" means lower: apply the effect to the oriented score
        moco = oriented_sign * (oriented_sign * base + effect * np.abs(base))
        for name, method, vals in (("MoCo", "MoCo v2", moco), ("SwAV", "SwAV", swav)):
            enc.append(f"{name}-{corpus}")
            rows.append(vals)
            meta[enc[-1]] = {"method": method, "corpus": corpus, "epochs": 200}
    enc.append("SimCLR-z")
    rows.append(np.full(len(GROUP_TASKS), 0.5))
    meta["SimCLR-z"] = {"method": "simclr", "corpus": "z"}
    return ResultsTable(enc, list(GROUP_TASKS), np.array(rows), meta, task_meta())


def test_method_difference_recovers_the_group_effects():
    t = method_table()
    pairs = an.matched_method_pairs(t, "mocov2", "swav")
    assert pairs == [("MoCo-a", "SwAV-a"), ("MoCo-b", "SwAV-b"), ("MoCo-c", "SwAV-c")]
    diffs = {d.task: d for d in an.method_difference(t)}
    o = t.oriented()
    for task, d in diffs.items():
        j = t.tasks.index(task)
        ma, mb = o[[0, 2, 4], j].mean(), o[[1, 3, 5], j].mean()
        assert d.rel_diff_pct == pytest.approx((ma - mb) / abs(mb) * 100)
        assert d.n == 3
    for task in ("ref", "same", "rev"):
        assert diffs[task].rel_diff_pct == pytest.approx(-10)
    assert diffs["seg"].rel_diff_pct == pytest.approx(10)
    assert diffs["depth"].rel_diff_pct > 0  # MoCo's L1 error is lower
    assert an.group_means({k: v.rel_diff_pct for k, v in diffs.items()}, t, by="level")["image"] == pytest.approx(-10)


def balance_table(gain=0.05, n_pairs=3, noise=0.0, seed=1) -> ResultsTable:
    """Pairs (balanced, unbalanced) with the unbalanced one better by ``gain`` (relative, oriented)."""
    rng = np.random.default_rng(seed)
    enc, rows, meta = [], [], {}
    sign = np.array([-1.0 if t == "depth" else 1.0 for t in GROUP_TASKS])
    for i in range(n_pairs):
        base = rng.uniform(0.3, 0.8, len(GROUP_TASKS))
        unb = sign * (sign * base + gain * base) + noise * rng.standard_normal(len(GROUP_TASKS))
        for name, bal, vals in ((f"Bal{i}", True, base), (f"Unb{i}", False, unb)):
            enc.append(name)
            rows.append(vals)
            meta[name] = {"method": "mocov2", "pair": f"p{i}", "balanced": bal, "corpus": name}
    return ResultsTable(enc, list(GROUP_TASKS), np.array(rows), meta, task_meta())


def test_balanced_vs_unbalanced_relative_gain_and_anova():
    t = balance_table(gain=0.05)
    pairs, per_task, anovas = an.balanced_vs_unbalanced(t)
    assert pairs == [("Bal0", "Unb0"), ("Bal1", "Unb1"), ("Bal2", "Unb2")]
    assert all(x.rel_improvement_pct == pytest.approx(5) for x in per_task)
    fams = {a.family: a for a in anovas}
    assert set(fams) == {"accuracy", "IoU", "L1"}
    # the accuracy family: standardise each task over its six encoders, then scipy's f_oneway
    o = t.oriented()
    zb, zu = [], []
    for task in ("ref", "same", "rev"):
        col = o[:, t.tasks.index(task)]
        z = (col - col.mean()) / col.std(ddof=1)
        zb += list(z[::2])
        zu += list(z[1::2])
    ref = stats.f_oneway(zb, zu)
    assert fams["accuracy"].f == pytest.approx(ref.statistic) and fams["accuracy"].p == pytest.approx(ref.pvalue)
    assert fams["accuracy"].mean_difference > 0
    fast = {a.family: a for a in an.balanced_vs_unbalanced(t, fast=True)[2]}
    assert all(fast[k].f == pytest.approx(fams[k].f) and fast[k].p == pytest.approx(fams[k].p) for k in fams)


def test_oneway_anova_matches_scipy():
    rng = np.random.default_rng(3)
    for k in (2, 3):
        groups = [rng.normal(i * 0.3, 1, 5 + i) for i in range(k)]
        f, p = an.oneway_anova(*groups)
        ref = stats.f_oneway(*groups)
        assert f == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)


def test_best_vs_supervised_normalised_and_ranks():
    enc = ["A", "B", "Sup", "Rand"]
    scores = np.array([[0.6, 0.30], [0.7, 0.20], [0.8, 0.25], [0.1, 0.9]])
    meta = {"A": {"method": "simclr"}, "B": {"method": "swav"}, "Sup": {"supervised": True},
            "Rand": {"method": "random"}}
    tm = {"cls": {"level": "image", "kind": "semantic", "metric": "top1"},
          "depth": {"level": "pixel", "kind": "structural", "metric": "l1", "higher_is_better": False}}
    t = ResultsTable(enc, ["cls", "depth"], scores, meta, tm)
    rows = {r.task: r for r in an.best_vs_supervised(t)}
    assert rows["cls"].best == "B" and rows["cls"].rel_improvement_pct == pytest.approx((0.7 - 0.8) / 0.8 * 100)
    assert rows["depth"].best == "B" and rows["depth"].best_score == 0.20
    assert rows["depth"].rel_improvement_pct == pytest.approx((-0.20 + 0.25) / 0.25 * 100)  # a lower error: +20 %
    z = an.normalised_scores(t)
    o = t.oriented()
    assert np.allclose(z, (o - o[2]) / o.std(axis=0, ddof=1))
    assert an.ranks(t)[:, 0].tolist() == [3, 2, 1, 4] and an.ranks(t)[:, 1].tolist() == [3, 1, 2, 4]


def test_similar_data_and_meta_correlations():
    enc = ["M-places", "M-imagenet", "M-kinetics", "S-places"]
    meta = {"M-places": {"method": "mocov2", "corpus": "places", "corpus_size": 1.3e6, "updates": 2.6e8},
            "M-imagenet": {"method": "mocov2", "corpus": "imagenet", "corpus_size": 1.28e6, "updates": 1.0e9},
            "M-kinetics": {"method": "mocov2", "corpus": "kinetics", "corpus_size": 0.3e6, "updates": 0.6e8},
            "S-places": {"method": "swav", "corpus": "places", "corpus_size": 0.5e6, "updates": 1.0e8}}
    tm = {"sun": {"level": "image", "kind": "semantic", "metric": "top1", "similar_corpus": ["Places"]},
          "cls": {"level": "image", "kind": "semantic", "metric": "top1"}}
    t = ResultsTable(enc, ["sun", "cls"], np.array([[0.6, 0.5], [0.5, 0.7], [0.4, 0.3], [0.9, 0.4]]), meta, tm)
    (row,) = an.similar_data(t)  # S-places has no other SwAV encoder to compare with
    assert (row.encoder, row.rank, row.n_others, row.beats_mean) == ("M-places", 1, 2, True)
    assert row.others_mean == pytest.approx(0.45)
    size = {c.task: c for c in an.correlation_with_meta(t, "corpus_size")}
    rho, p = stats.spearmanr([1.3e6, 1.28e6, 0.3e6, 0.5e6], [0.5, 0.7, 0.3, 0.4])
    assert size["cls"].spearman == pytest.approx(rho) and size["cls"].spearman_p == pytest.approx(p)


def cell(enc, task, h, seed, score, val=None, status="done"):
    return SimpleNamespace(encoder=enc, task=task, hparams_name=h, seed=seed, score=score, val_score=val,
                           encoder_meta={"method": "simclr"}, task_meta={"group": "image semantic", "metric": "top1"},
                           status=status)


def test_from_cells_selects_by_validation_and_averages_seeds():
    cells = [cell("A", "cls", "lr1", 0, 0.50, 0.70), cell("A", "cls", "lr1", 1, 0.54, 0.72),
             cell("A", "cls", "lr2", 0, 0.90, 0.60), cell("A", "cls", "lr2", 1, 0.92, 0.61),  # better test, worse val
             cell("B", "cls", "lr1", 0, 0.30), cell("B", "cls", "lr2", 0, 0.40),
             cell("C", "cls", "lr1", 0, 0.99, status="failed")]
    t = ResultsTable.from_cells(cells, hparams_order=["lr2", "lr1"])
    assert t.encoders == ["A", "B"]  # failed cells are not results
    assert t.scores[0, 0] == pytest.approx(0.52) and t.samples[("A", "cls")] == [0.50, 0.54]
    assert t.scores[1, 0] == pytest.approx(0.40)  # no validation scores: the configured order's first setting
    assert "lr2" in t.notes[0] and "never selected by test score" in t.notes[0]
    assert t.seed_std()[0, 0] == pytest.approx(np.std([0.50, 0.54], ddof=1))
    assert t.task_meta["cls"]["level"] == "image" and t.task_meta["cls"]["kind"] == "semantic"


def test_resample_units_seeds_and_suffixes():
    t = balance_table()
    t.samples = {(e, task): [v - 0.01, v + 0.01] for e, row in zip(t.encoders, t.scores, strict=True)
                 for task, v in zip(t.tasks, row, strict=True)}
    units = [tuple(p) for p in an.balanced_pairs(t)]
    rng = np.random.default_rng(0)
    rep = an.resample(t, rng, units=units, suffix_keys=("pair",))
    assert len(rep.encoders) == 6 and all("~" in e for e in rep.encoders)
    assert len(an.balanced_pairs(rep)) == 3  # duplicated pairs stay separate pairs
    diff = np.abs(rep.scores - t.scores[[t.encoders.index(e.split("~")[0]) for e in rep.encoders]])
    assert np.all(diff <= 0.01 + 1e-12)  # each value is a mean of resampled seeds
    keep = an.resample(t, rng, units=[], seeds=False)
    assert keep.encoders == t.encoders and np.array_equal(keep.scores, t.scores)


def test_csv_export(tmp_path):
    t = correlated_table()
    text = t.to_csv(tmp_path / "r.csv").read_text().splitlines()
    assert text[0] == "encoder,role,method,corpus,ref,same,rev,depth,seg"
    assert text[1].startswith("(metric),,,,top1") and text[2].startswith("(group),,,,image semantic")
    assert text[-1].startswith("Random,random,")

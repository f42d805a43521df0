"""The findings as named claims: gains and gates, intervals, what makes a claim testable, and ``analyze`` on a
results table. Calibration on simulated grids: test_claims_calibration.py."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from contrasting.eval import analyze
from contrasting.eval.analysis import claims
from contrasting.eval.analysis import stats as S
from contrasting.eval.analysis.results import validate
from tests.eval.grid_simulator import simulate


def test_gain_is_the_share_of_the_way_from_chance_to_perfect():
    assert S.gains(0.55, 0.1, 1.0) == pytest.approx(0.5)
    assert S.gains(0.3, 0.6, 0.0) == pytest.approx(0.5)  # L1: 1 − L1 / L1_baseline
    assert S.gains(0.05, 0.1, 1.0) < 0
    assert math.isnan(float(S.gains(0.5, 1.0, 1.0)))
    assert S.gain_se(0.02, 0.6, 0.0) == pytest.approx(0.02 / 0.6)
    assert S.above_chance([0.1, 0.03, -0.2, np.nan, 0.02, 0.005], [0.02, 0.02, 0.02, 0.02, np.nan, 0.0001]).tolist() \
        == [True, False, False, False, True, False]  # the last: significant, but below the 0.01 floor
    assert S.family_gate(1) == 2.0 and 2.8 < S.family_gate(11) < 2.9


def test_interval_is_a_t_interval_for_a_mean_of_units():
    rng = np.random.default_rng(0)
    x = rng.normal(0.3, 1.0, 5)
    reps = x[rng.integers(0, 5, size=(20000, 5))].mean(axis=1)
    ci = S.interval(x.mean(), reps, 5)
    lo, hi = st.t.interval(0.95, 4, loc=x.mean(), scale=st.sem(x))
    assert ci.low == pytest.approx(lo, rel=0.03) and ci.high == pytest.approx(hi, rel=0.03)
    p = S.p_value(x.mean(), reps, 5)
    assert p == pytest.approx(st.ttest_1samp(x, 0).pvalue, abs=0.02)
    assert math.isnan(S.interval(1.0, reps, 1).low) and math.isnan(S.p_value(1.0, reps, 1))
    assert math.isnan(S.interval(1.0, np.full(100, np.nan), 5).low)


def test_corrected_correlation_undoes_noise_attenuation():
    rng = np.random.default_rng(1)
    z = rng.standard_normal(4000)
    x, y = z + rng.normal(0, 1, 4000), z + rng.normal(0, 1, 4000)
    raw = np.corrcoef(x, y)[0, 1]
    assert raw == pytest.approx(0.5, abs=0.05)
    # the true signals' variance is 1, the noise 1: reliability 1/2 each
    assert float(S.corrected_correlation(x, y, 1.0, 1.0)) == pytest.approx(1.0, abs=0.08)


def test_registry_holds_six_named_claims_with_their_tests():
    assert sorted(claims.CLAIMS) == [1, 2, 3, 4, 5, 6]
    assert len({c.name for c in claims.CLAIMS.values()}) == 6
    assert {c.test for c in claims.CLAIMS.values()} == {"difference", "equivalence", "non-inferiority"}
    assert claims.CLAIMS[2].margin and claims.CLAIMS[6].margin and claims.CLAIMS[1].margin is None
    with pytest.raises(ValueError, match="already registered"):
        claims.register_claim(claims.CLAIMS[1])


@pytest.fixture(scope="module")
def frame():
    return simulate(np.random.default_rng(3))


def test_analyze_takes_a_dataframe_and_returns_records(frame):
    records = analyze(frame, replicates=300)
    assert [r.number for r in records] == [1, 2, 3, 4, 5, 6]
    for r in records:
        j = r.to_json()
        assert j["verdict"] in claims.VERDICTS and isinstance(j["reasons"], list) and j["units"] >= 2
        assert j["ci_low"] <= j["effect"] <= j["ci_high"]


def test_missing_encoders_or_tasks_make_claims_not_testable_with_reasons(frame):
    no_sup = frame[frame["role"] != "supervised"]
    recs = {r.number: r for r in analyze(no_sup, replicates=50)}
    assert recs[1].verdict == recs[4].verdict == claims.NOT_TESTABLE
    assert "supervised encoder" in recs[1].reasons[0]
    only_moco = frame[frame["method"] != "swav"]
    assert analyze(only_moco, replicates=50)[2].verdict == claims.NOT_TESTABLE


def test_cells_at_chance_keep_a_task_out_and_are_named(frame):
    f = frame.copy()
    pixel = f["level"] == "pixel"
    f.loc[pixel, "value"] = f.loc[pixel, "baseline"]  # every pixel-wise cell exactly at its baseline
    rec = analyze(f, replicates=50)[2]
    assert rec.verdict == claims.NOT_TESTABLE
    assert "usable: 0 and 12" in rec.reasons[0] and "cells at chance:" in rec.reasons[1]


def test_a_near_zero_score_does_not_make_a_finding():
    """The old rule divided by near-zero scores: one SwAV IoU of 0.002 against MoCo's 0.1 gave +4000 %. In gains
    over chance both are below the baseline, the task is at chance for both and enters no finding."""
    f = simulate(np.random.default_rng(4))
    iou = (f["task"] == "pets-seg") & f["method"].isin(["mocov2", "swav"])
    f.loc[iou, "value"] = np.where(f.loc[iou, "method"] == "swav", 0.002, 0.1)  # baseline 0.3
    rec = analyze(f, replicates=50)[2]
    assert "pets-seg" not in rec.details["pixel-wise tasks"]


def test_seeds_are_averaged_and_their_spread_enters_the_standard_error(frame):
    two = pd.concat([frame, frame.assign(seed=1, value=frame["value"] + 0.01)], ignore_index=True)
    grid = claims.prepare(validate(two), replicates=50)
    one = claims.prepare(validate(frame), replicates=50)
    assert np.allclose(grid.value, one.value + 0.005)
    assert (grid.value_se >= one.value_se - 1e-12).all()

"""Calibration of the findings' decision rules on simulated study grids (``grid_simulator``), fixed seeds.

For claims of a difference (1, 3, 4, 5): on grids with no true effect each is called supported or refuted at
most 5 % of the time (binomial slack: the one-sided 99 % bound); with an effect of 3 per-cell standard errors
planted in the claimed direction it is supported at least 80 % of the time, and with the opposite one refuted
at least 80 %. For claims of no difference (2, 6): with a true difference of twice the margin, supported at most
5 %; with none and a per-cell standard error of a quarter of the margin, supported at least 80 %.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from contrasting.eval.analysis import claims
from contrasting.eval.analysis.results import validate
from tests.eval.grid_simulator import simulate, simulate_correlated

GRIDS = 200
REPLICATES = 400
SE = 0.02  # per-cell standard error, gain units
SLACK = 0.05 + 2.33 * math.sqrt(0.05 * 0.95 / GRIDS)


def verdicts(make, numbers, scenario: int) -> dict[int, np.ndarray]:
    """The verdicts of ``numbers`` on GRIDS grids from ``make(rng)``."""
    out = {n: [] for n in numbers}
    for k in range(GRIDS):
        frame = make(np.random.default_rng([scenario, k]))
        grid = claims.prepare(validate(frame), replicates=REPLICATES, seed=k)
        for n in numbers:
            out[n].append(claims.evaluate_claim(claims.CLAIMS[n], grid).verdict)
    return {n: np.array(v) for n, v in out.items()}


@pytest.fixture(scope="module")
def null_verdicts():
    return verdicts(lambda rng: simulate(rng, se=SE, sigma_encoder=SE), (1, 3, 4, 5), 1)


@pytest.mark.parametrize("number", [1, 3, 4, 5])
def test_no_effect_is_rarely_called(null_verdicts, number):
    v = null_verdicts[number]
    assert (v == claims.NOT_TESTABLE).sum() == 0
    rate = np.isin(v, [claims.SUPPORTED, claims.REFUTED]).mean()
    assert rate <= SLACK, f"claim {number}: {rate:.3f} of no-effect grids called (bound {SLACK:.3f})"


@pytest.mark.parametrize("number", [1, 3, 4, 5])
@pytest.mark.parametrize("sign", [1, -1])
def test_a_planted_effect_of_three_standard_errors_is_found(number, sign):
    v = verdicts(lambda rng: simulate(rng, se=SE, sigma_encoder=SE, plant=number, effect=3 * SE * sign),
                 (number,), 10 + number * (3 + sign))[number]
    expected = claims.SUPPORTED if sign > 0 else claims.REFUTED
    assert (v == expected).mean() >= 0.8, f"claim {number}, sign {sign}: {(v == expected).mean():.3f} {expected}"
    assert (v == (claims.REFUTED if sign > 0 else claims.SUPPORTED)).mean() <= 0.01


def test_unbalanced_twice_the_margin_worse_is_not_supported():
    m = claims.BALANCE_MARGIN
    v = verdicts(lambda rng: simulate(rng, se=m / 4, sigma_encoder=m / 4, plant=6, effect=-2 * m), (6,), 30)[6]
    assert (v == claims.SUPPORTED).mean() <= SLACK


def test_unbalanced_as_good_is_supported():
    m = claims.BALANCE_MARGIN
    v = verdicts(lambda rng: simulate(rng, se=m / 4, sigma_encoder=m / 4), (6,), 31)[6]
    assert (v == claims.SUPPORTED).mean() >= 0.8


@pytest.mark.parametrize("se", [0.0075, 0.1])
def test_correlation_of_twice_the_margin_is_not_called_little(se):
    """Also with noise as large as the encoders' spread: noise does not correlate, and without the correction
    for attenuation and the control it would pass for 'no correlation'."""
    v = verdicts(lambda rng: simulate_correlated(rng, rho=2 * claims.CORRELATION_MARGIN, se=se), (2,), 40)[2]
    assert (v == claims.SUPPORTED).mean() <= SLACK


def test_no_correlation_is_supported():
    """True correlation 0 and a per-cell standard error of a quarter of the margin (relative to the encoders'
    spread of 0.1: 0.0075)."""
    v = verdicts(lambda rng: simulate_correlated(rng, rho=0.0, se=0.1 * claims.CORRELATION_MARGIN / 4), (2,), 41)[2]
    assert (v == claims.SUPPORTED).mean() >= 0.8

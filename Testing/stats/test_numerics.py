"""stats.numerics: exact arithmetic helpers, quantiles, Wilson interval, mid-ranks."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from ParaspinalFatLib.stats import StatsError
from ParaspinalFatLib.stats.numerics import (
    accurate_mean, confidence_from_alpha, mean_sd, midranks_sorted, residual_accurate,
    significance_level, sum_sq_dev, t_quantile, two_product, two_sum, wilson_ci, z_quantile,
)


@pytest.mark.parametrize("confidence, alpha", [(0.95, 0.05), (0.9, 0.1), (0.99, 0.01),
                                               (0.8, 0.2), (0.999, 0.001), (0.5, 0.5)])
def test_significance_level_is_the_decimal_complement(confidence, alpha):
    assert significance_level(confidence) == alpha  # exactly: float 1 - 0.9 is 0.09999999999999998
    assert confidence_from_alpha(alpha) == confidence
    assert t_quantile(significance_level(confidence), 7) == sps.t.ppf(1 - alpha / 2, 7)


def test_significance_level_round_trips_on_a_grid():
    for k in range(1, 1000):
        alpha = k / 1000
        assert significance_level(confidence_from_alpha(alpha)) == alpha


@pytest.mark.parametrize("alpha", [0, 1, 5, -0.1])
def test_confidence_from_alpha_rejects_bad_levels(alpha):
    with pytest.raises(StatsError, match="alpha must be between 0 and 1"):
        confidence_from_alpha(alpha)


def test_z_quantile_and_its_check():
    assert z_quantile(0.95) == pytest.approx(1.959963984540054, rel=1e-15)
    with pytest.raises(StatsError, match="confidence"):
        z_quantile(1.5)


def test_accurate_sums_on_a_hard_case():
    x = 1e12 + np.array([0.4, 0.3, 0.5, 0.1, 0.3])  # a common part, as in NIST SmLs07-09
    assert accurate_mean(x) == float(sum(map(Fraction, x)) / 5)
    y = 1e9 + np.array([4.0, 7, 13, 16])
    assert sum_sq_dev(y, accurate_mean(y)) == 90.0
    m, sd = mean_sd(y)
    assert m == 1e9 + 10 and sd == math.sqrt(30.0)
    assert math.isnan(mean_sd(np.array([2.0]))[1])


@settings(max_examples=100, deadline=None)
@given(*[st.floats(-1e100, 1e100).filter(lambda v: v == 0 or abs(v) > 1e-100)] * 2)
def test_error_free_transformations(a, b):  # TwoProduct is exact unless a product underflows
    s, e = two_sum(np.array([a]), np.array([b]))
    assert Fraction(s[0]) + Fraction(e[0]) == Fraction(a) + Fraction(b)
    p, e = two_product(np.array([a]), np.array([b]))
    assert Fraction(p[0]) + Fraction(e[0]) == Fraction(a) * Fraction(b)


def test_residual_accurate_beats_plain_float():
    X = np.array([[1.0, 1e8], [1.0, 1e8 + 1]])
    b = np.array([1e-8, 1.0 / 3.0])
    y = np.array([3.3333333e7, 3.3333334e7])
    exact = [Fraction(yi) - Fraction(X[i, 0]) * Fraction(b[0]) - Fraction(X[i, 1]) * Fraction(b[1])
             for i, yi in enumerate(y)]
    np.testing.assert_allclose(residual_accurate(y, X, b), [float(v) for v in exact], rtol=1e-15)


def test_wilson_ci_edges_and_statsmodels():
    assert wilson_ci(0, 10) == (0.0, pytest.approx(0.2775327998628899, rel=1e-12))
    assert wilson_ci(10, 10)[1] == 1.0
    assert all(math.isnan(v) for v in wilson_ci(0, 0))
    sm = pytest.importorskip("statsmodels.stats.proportion")
    np.testing.assert_allclose(wilson_ci(7, 19, 0.9),
                               sm.proportion_confint(7, 19, alpha=0.1, method="wilson"), rtol=1e-12)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-5, 5), max_size=40))
def test_midranks_equal_scipy_average_ranks(values):
    v = np.sort(np.array(values, dtype=float))
    np.testing.assert_array_equal(midranks_sorted(v), sps.rankdata(v) if v.size else v)

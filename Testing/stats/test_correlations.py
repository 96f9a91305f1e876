"""correlation / correlation_table: Hollander & Wolfe (R cor.test), scipy oracles, edge cases."""
from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from ParaspinalFatLib.stats import StatsError, correlation, correlation_table
from ParaspinalFatLib.stats import StatsWarning


def _case(statsref, name):
    with open(statsref / "expected.json") as fh:
        return json.load(fh)["cases"][name]


@pytest.fixture(scope="module")
def hollander(statsref):
    return (pd.read_csv(statsref / "csv" / "corr_hollander_wolfe.csv"),
            _case(statsref, "corr_hollander_wolfe")["expected"])


def test_hollander_wolfe_pearson(hollander):
    data, exp = hollander
    e = exp["pearson"]
    res = correlation(data, "x", "y")
    assert res.r == pytest.approx(e["r"], abs=5e-8)
    assert res.t == pytest.approx(e["t"], abs=5e-5)
    assert res.df == e["df"] and res.n == 9
    assert res.p == pytest.approx(e["p_two_sided"], abs=5e-5)
    assert res.ci_low == pytest.approx(e["ci95"][0], abs=5e-8)
    assert res.ci_high == pytest.approx(e["ci95"][1], abs=5e-8)


def test_hollander_wolfe_spearman_t_approximation(hollander):
    """SPSS/scipy t-approximation p; R's exact p (0.0968) differs, as REFERENCES.md notes."""
    data, exp = hollander
    e = exp["spearman"]
    res = correlation(data, "x", "y", method="spearman")
    assert res.r == pytest.approx(e["rho"], abs=1e-15)
    n = res.n
    assert (n ** 3 - n) * (1 - res.r) / 6 == pytest.approx(e["S"], abs=1e-9)  # R's S
    assert res.p == pytest.approx(e["p_two_sided_t_approx_scipy_default"], rel=1e-10)
    assert abs(res.p - e["p_two_sided_exact"]) > 0.005  # documented convention difference
    assert "t" in res.p_method and "approximation" in res.ci_method


# --- oracles ---------------------------------------------------------------------------------
def _pair_frame(seed, n=None, ties=False):
    rng = np.random.default_rng(seed)
    n = n or int(rng.integers(5, 120))
    x = rng.normal(100, 15, n)
    y = 0.4 * x + rng.normal(0, 10, n)
    if ties:
        x, y = np.round(x / 10), np.round(y / 5)
    return pd.DataFrame({"x": x, "y": y})


@pytest.mark.parametrize("seed", range(12))
def test_pearson_matches_scipy(seed):
    df = _pair_frame(seed)
    alpha = [0.05, 0.01, 0.1][seed % 3]
    res = correlation(df, "x", "y", confidence=1 - alpha)
    ref = stats.pearsonr(df.x, df.y)
    ci = ref.confidence_interval(confidence_level=1 - alpha)
    np.testing.assert_allclose([res.r, res.p, res.ci_low, res.ci_high],
                               [ref.statistic, ref.pvalue, ci.low, ci.high], rtol=1e-10)


@pytest.mark.parametrize("seed", range(12))
def test_spearman_matches_scipy(seed):
    df = _pair_frame(seed, ties=seed % 2 == 1)
    res = correlation(df, "x", "y", method="spearman")
    ref = stats.spearmanr(df.x, df.y)
    np.testing.assert_allclose([res.r, res.p], [ref.correlation, ref.pvalue], rtol=1e-10)
    # CI: Fisher z on the mid-ranks (the same definition pingouin uses)
    rk = stats.pearsonr(stats.rankdata(df.x), stats.rankdata(df.y)).confidence_interval()
    np.testing.assert_allclose([res.ci_low, res.ci_high], [rk.low, rk.high], rtol=1e-10)


def test_spearman_ci_matches_pingouin():
    pg = pytest.importorskip("pingouin")
    df = _pair_frame(3, n=40)
    res = correlation(df, "x", "y", method="spearman")
    ci = pg.compute_esci(stat=res.r, nx=res.n, ny=res.n, eftype="r", decimals=12)
    np.testing.assert_allclose([res.ci_low, res.ci_high], ci, atol=1e-11)


def test_correlation_table_rows_equal_single_calls_and_missing_modes():
    rng = np.random.default_rng(5)
    n = 60
    df = pd.DataFrame({"vbmd": rng.normal(120, 35, n), "age": rng.normal(50, 10, n),
                       "bmi": rng.normal(25, 3, n), "pdff": rng.normal(18, 8, n)})
    df.loc[[1, 2], "age"] = np.nan
    df.loc[[3], "pdff"] = np.nan
    df.loc[[4], "vbmd"] = np.nan
    tab = correlation_table(df, "vbmd", ["age", "bmi", "pdff"])
    out = tab.to_frame()
    assert list(out["variable"]) == ["age", "bmi", "pdff"]
    assert list(out["n"]) == [57, 59, 58]  # pairwise deletion
    for row in out.itertuples():
        single = correlation(df, row.variable, "vbmd")
        assert row.r == single.r and row.p == single.p and row.ci_low == single.ci_low
    lw = correlation_table(df, "vbmd", ["age", "bmi", "pdff"], missing="listwise").to_frame()
    assert set(lw["n"]) == {56}
    sp = correlation_table(df, "vbmd", ["age"], method="spearman").to_frame()
    assert sp["method"].iloc[0] == "spearman"


def test_perfect_and_small_samples():
    df = pd.DataFrame({"x": [1.0, 2, 3, 4, 5], "y": [2.0, 4, 6, 8, 10]})
    res = correlation(df, "x", "y")
    assert res.r == 1.0 and res.p == 0.0 and math.isinf(res.t)
    assert res.ci_low == 1.0 and res.ci_high == 1.0
    neg = correlation(df.assign(y=-df.y), "x", "y", method="spearman")
    assert neg.r == -1.0 and neg.p == 0.0
    with pytest.warns(StatsWarning, match="n = 3"):
        three = correlation(df.iloc[:3].assign(y=[1.0, 3.0, 2.0]), "x", "y")
    assert np.isnan(three.ci_low) and three.notes and not np.isnan(three.p)


def test_correlation_errors():
    df = pd.DataFrame({"x": [1.0, 2, 3, 4], "c": [5.0] * 4, "s": ["1", "2", "x", "4"],
                       "y": [1.0, np.nan, np.nan, 2.0]})
    with pytest.raises(StatsError, match="not in the table"):
        correlation(df, "x", "zz")
    with pytest.raises(StatsError, match="column 'c' has zero variance"):
        correlation(df, "x", "c")
    with pytest.raises(StatsError, match="column 's' is not numeric"):
        correlation(df, "x", "s")
    with pytest.raises(StatsError, match="2 complete pair"):
        correlation(df, "x", "y")
    with pytest.raises(StatsError, match="same column"):
        correlation(df, "x", "x")
    with pytest.raises(StatsError, match="method"):
        correlation(df, "x", "c", method="kendall")
    with pytest.raises(StatsError, match="column 'c' has zero variance"):
        correlation_table(df, "x", ["c"])
    with pytest.raises(StatsError, match="also in columns"):
        correlation_table(df, "x", ["x"])
    with pytest.raises(StatsError, match="no columns"):
        correlation_table(df, "x", [])


# --- properties -------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.floats(1e-4, 1e4), st.floats(-1e4, 1e4),
       st.sampled_from(["pearson", "spearman"]), st.randoms(use_true_random=False))
def test_r_invariant_to_units_and_row_order(seed, scale, offset, method, rnd):
    df = _pair_frame(seed)
    perm = list(range(len(df)))
    rnd.shuffle(perm)
    a = correlation(df, "x", "y", method=method)
    b = correlation(df.iloc[perm].assign(x=lambda d: d.x * scale + offset), "x", "y",
                    method=method)
    assert b.r == pytest.approx(a.r, rel=1e-9, abs=1e-12)
    assert b.p == pytest.approx(a.p, rel=1e-7, abs=1e-300)
    c = correlation(df.assign(x=-df.x), "x", "y", method=method)
    assert c.r == pytest.approx(-a.r, rel=1e-12, abs=1e-15)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert a.n == len(df)


def test_nullable_dtypes_are_numeric():
    df = pd.DataFrame({"x": pd.array([1, 2, None, 4, 5, 7], dtype="Int64"),
                       "y": pd.array([2.0, 1.0, 3.0, None, 6.5, 6.0], dtype="Float64")})
    res = correlation(df, "x", "y")
    ref = stats.pearsonr([1, 2, 5, 7], [2.0, 1.0, 6.5, 6.0])
    assert res.n == 4 and res.n_missing == 2
    assert res.r == pytest.approx(ref.statistic, rel=1e-12)


# --- deprecated spellings (previous release) ---------------------------------------------------
def test_deprecated_alpha_variables_and_positional_method():
    df = _pair_frame(2, n=30).assign(z=lambda d: d.x * d.y)
    with pytest.deprecated_call(match="passing method positionally.*alpha= is deprecated"):
        old = correlation(df, "x", "y", "spearman", alpha=0.1)
    new = correlation(df, "x", "y", method="spearman", confidence=0.9)
    assert old == new
    with pytest.deprecated_call(match="CorrelationResult.alpha is deprecated"):
        assert old.alpha == 0.1
    with pytest.deprecated_call(match="variables= is deprecated, use columns="):
        old_tab = correlation_table(df, "y", variables=["x", "z"], alpha=0.01)
    new_tab = correlation_table(df, "y", ["x", "z"], confidence=0.99)
    pd.testing.assert_frame_equal(old_tab.to_frame(), new_tab.to_frame(), check_exact=True)

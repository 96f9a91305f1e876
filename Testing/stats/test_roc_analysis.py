"""Tests of ``ParaspinalFatLib.stats.roc_analysis``: AUC, DeLong variance/CI/test, curve, Youden.

Oracles: a naive O(n_pos * n_neg) placement-value DeLong written here (AUC, variance,
covariance to 1e-10), scikit-learn ``roc_auc_score``/``roc_curve`` (AUC and curve
points with direction "<"), statsmodels ``proportion_confint(method="wilson")`` for the
sensitivity/specificity intervals, and R pROC's published values for the ``aSAH`` data
(statsref ``roc_pROC_aSAH``: AUCs, DeLong variances, covariances, ``ci.auc``, paired
``roc.test`` Z/p/CI, Youden point) to pROC's test tolerance (1.5e-8 relative).
pROC's *unpaired* DeLong test (also in the reference) is not part of the API:
``roc_compare`` is the paired test of two scores on the same subjects.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from ParaspinalFatLib.stats import StatsError, roc, roc_compare
from ParaspinalFatLib.stats.roc_analysis import placements

PROC_RTOL = 1.5e-8


def naive_psi(cases, controls):
    return (cases[:, None] > controls[None, :]) + 0.5 * (cases[:, None] == controls[None, :])


def naive_delong(y, s1, s2=None):
    """DeLong et al. (1988) with explicit placement values: O(m * n) memory and time."""
    y = np.asarray(y, bool)
    psis = [naive_psi(s[y], s[~y]) for s in ([s1] if s2 is None else [s1, s2])]
    m, n = psis[0].shape
    v10 = np.array([p.mean(axis=1) for p in psis])
    v01 = np.array([p.mean(axis=0) for p in psis])
    s10 = np.atleast_2d(np.cov(v10))
    s01 = np.atleast_2d(np.cov(v01))
    aucs = np.array([p.mean() for p in psis])
    return aucs, s10 / m + s01 / n


def random_scores(seed, n_min=10, n_max=400):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(n_min, n_max))
    y = rng.uniform(size=n) < rng.uniform(0.1, 0.9)
    y[:2], y[2:4] = True, False
    shift = rng.uniform(-1, 2)
    s1 = rng.normal(size=n) + shift * y
    s2 = 0.6 * s1 + rng.normal(size=n) + 0.3 * y
    if seed % 2 == 0:  # ties, as with graded scales
        s1, s2 = np.round(s1 * 2) / 2, np.round(s2)
    return y.astype(int), s1, s2


def proc_case(statsref):
    cases = json.loads((statsref / "expected.json").read_text())["cases"]
    data = pd.read_csv(statsref / "csv" / "roc_pROC_aSAH.csv")
    return cases["roc_pROC_aSAH"]["expected"], data


# ---------------------------------------------------------------------------
# independent implementations
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(30))
def test_auc_and_delong_variance_match_naive(seed):
    y, s1, _ = random_scores(seed)
    res = roc(dv=y, score=s1, direction="<")
    aucs, cov = naive_delong(y, s1)
    np.testing.assert_allclose(res.auc, aucs[0], rtol=1e-12)
    np.testing.assert_allclose(res.variance, cov[0, 0], rtol=1e-10)
    sk = pytest.importorskip("sklearn.metrics")
    np.testing.assert_allclose(res.auc, sk.roc_auc_score(y, s1), rtol=1e-12)
    z = stats.norm.ppf(0.975)
    np.testing.assert_allclose([res.ci_low, res.ci_high],
                               np.clip([aucs[0] - z * res.se, aucs[0] + z * res.se], 0, 1), rtol=1e-12)


@pytest.mark.parametrize("seed", range(20))
def test_roc_compare_matches_naive(seed):
    y, s1, s2 = random_scores(seed)
    res = roc_compare(dv=y, score1=s1, score2=s2, direction="<")
    aucs, cov = naive_delong(y, s1, s2)
    np.testing.assert_allclose([res.auc1, res.auc2], aucs, rtol=1e-12)
    np.testing.assert_allclose([res.var1, res.var2, res.cov],
                               [cov[0, 0], cov[1, 1], cov[0, 1]], rtol=1e-9, atol=1e-15)
    se = np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    z = (aucs[0] - aucs[1]) / se
    np.testing.assert_allclose(res.se, se, rtol=1e-9)
    np.testing.assert_allclose(res.z, z, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(res.p, 2 * stats.norm.sf(abs(z)), rtol=1e-8)
    swapped = roc_compare(dv=y, score1=s2, score2=s1, direction="<")
    np.testing.assert_allclose(swapped.z, -res.z, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("seed", range(10))
def test_curve_points_match_sklearn(seed):
    sk = pytest.importorskip("sklearn.metrics")
    y, s1, _ = random_scores(seed)
    res = roc(dv=y, score=s1, direction="<")
    fpr, tpr, _thr = sk.roc_curve(y, s1, drop_intermediate=False)
    np.testing.assert_allclose(res.fpr, fpr, rtol=0, atol=1e-15)
    np.testing.assert_allclose(res.tpr, tpr, rtol=0, atol=1e-15)
    # thresholds are mid-points between consecutive distinct scores, +inf first
    uniq = np.unique(s1)
    assert res.thresholds[0] == np.inf and res.thresholds[-1] == -np.inf
    np.testing.assert_allclose(res.thresholds[1:-1], ((uniq[:-1] + uniq[1:]) / 2)[::-1], rtol=1e-15)
    frame = res.curve_frame()
    assert list(frame.columns) == ["threshold", "fpr", "tpr", "sensitivity", "specificity"]


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("direction", ["<", ">"])
def test_youden_point_is_the_brute_force_optimum(seed, direction):
    sm_prop = pytest.importorskip("statsmodels.stats.proportion")
    y, s1, _ = random_scores(seed)
    res = roc(dv=y, score=s1, direction=direction)
    cases, controls = s1[y == 1], s1[y == 0]
    uniq = np.unique(s1)
    cuts = np.concatenate([[-np.inf], (uniq[:-1] + uniq[1:]) / 2, [np.inf]])
    if direction == "<":
        sens = np.array([(cases >= c).mean() for c in cuts])
        spec = np.array([(controls < c).mean() for c in cuts])
    else:
        sens = np.array([(cases <= c).mean() for c in cuts])
        spec = np.array([(controls > c).mean() for c in cuts])
    j = sens + spec - 1
    assert res.youden_j == pytest.approx(j.max(), abs=1e-12)
    assert res.n_youden_optima == int(np.sum(np.isclose(j, j.max(), rtol=0, atol=1e-12)))
    assert res.sensitivity == pytest.approx(sens[np.isclose(j, j.max(), atol=1e-12)].max(), abs=1e-15)
    thr = res.youden_threshold
    if direction == "<":
        tp, tn = np.sum(cases >= thr), np.sum(controls < thr)
    else:
        tp, tn = np.sum(cases <= thr), np.sum(controls > thr)
    assert (res.tp, res.tn, res.fn, res.fp) == (tp, tn, len(cases) - tp, len(controls) - tn)
    for (lo, hi), x, n in ((res.sensitivity_ci, tp, len(cases)), (res.specificity_ci, tn, len(controls))):
        ref = sm_prop.proportion_confint(x, n, alpha=0.05, method="wilson")
        np.testing.assert_allclose([lo, hi], ref, rtol=1e-10, atol=1e-14)


# ---------------------------------------------------------------------------
# direction convention
# ---------------------------------------------------------------------------

def test_direction_auto_follows_proc_median_rule():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0])
    low_cases = np.array([1.0, 2, 3, 5, 4, 6, 7, 8, 9])  # cases score lower
    res = roc(dv=y, score=low_cases)
    assert res.direction == ">"
    assert res.auc == pytest.approx(roc(dv=y, score=-low_cases, direction="<").auc, rel=1e-15)
    assert res.auc > 0.5
    forced = roc(dv=y, score=low_cases, direction="<")
    assert forced.auc == pytest.approx(1 - res.auc, rel=1e-12)
    # ">" thresholds are in score units and a case is positive when score <= threshold
    assert res.tp == np.sum(low_cases[y == 1] <= res.youden_threshold)
    # equal medians -> "<" (pROC: median(controls) <= median(cases))
    tie = roc(dv=np.array([1, 1, 1, 0, 0, 0]), score=np.array([1.0, 5, 9, 0, 5, 10]))
    assert tie.direction == "<"
    # the median rule decides, not the AUC: here AUC("<") < 0.5 although medians favour "<"
    y2 = np.array([1] * 5 + [0] * 5)
    s2 = np.array([5.0, 5, 5, 0, 0, 4.9, 4.9, 4.9, 10, 10])  # medians: cases 5, controls 4.9
    odd = roc(dv=y2, score=s2)
    assert odd.direction == "<" and odd.auc == pytest.approx(9.0 / 25.0)
    both = roc_compare(dv=y, score1=low_cases, score2=-low_cases)
    assert (both.direction1, both.direction2) == (">", "<")
    assert both.difference == pytest.approx(0.0, abs=1e-15)


def test_dataframe_form_strings_and_missing():
    y = np.array(["poor", "good"] * 10, dtype=object)
    rng = np.random.default_rng(1)
    s = rng.normal(size=20) + (y == "poor")
    s[3] = np.nan
    y[6] = None
    df = pd.DataFrame({"grade": y, "fa": s, "adc": s[::-1]})
    res = roc(df, "grade", "fa", positive="poor")
    assert res.n == 18 and res.n_excluded == 2 and res.n_pos + res.n_neg == 18
    keep = ~pd.isna(y) & ~np.isnan(s)
    arr = roc(dv=(y[keep] == "poor").astype(int), score=s[keep])
    assert res.auc == pytest.approx(arr.auc, rel=1e-15) and res.se == pytest.approx(arr.se, rel=1e-15)
    cmp = roc_compare(df, "grade", "fa", "adc", positive="poor")
    assert cmp.n_excluded == 3 and cmp.n == 17
    assert roc(dv=pd.Series(y), score=pd.Series(s), positive="poor").auc == pytest.approx(res.auc)
    assert res.to_frame().shape[0] == 1 and cmp.to_frame().shape[0] == 1


# ---------------------------------------------------------------------------
# pROC aSAH reference
# ---------------------------------------------------------------------------

def test_proc_asah_auc_variance_ci(statsref):
    exp, data = proc_case(statsref)
    fits = {m: roc(data, "outcome", m, positive="Poor") for m in ("wfns", "s100b", "ndka")}
    for fit in fits.values():
        assert fit.direction == "<" and fit.n_pos == 41 and fit.n_neg == 72
    np.testing.assert_allclose(fits["wfns"].auc, exp["auc"]["wfns"], atol=5e-8)
    assert round(fits["s100b"].auc, 4) == exp["auc"]["s100b"]
    assert round(fits["ndka"].auc, 3) == exp["auc"]["ndka"]
    for m, var in exp["delong_var"].items():
        np.testing.assert_allclose(fits[m].variance, var, rtol=PROC_RTOL)
    lo, mid, hi = exp["ci_auc_delong_ndka"]
    np.testing.assert_allclose([fits["ndka"].ci_low, fits["ndka"].auc, fits["ndka"].ci_high],
                               [lo, mid, hi], rtol=PROC_RTOL)
    female = data[data["gender"] == "Female"]
    fem = roc(female, "outcome", "ndka", positive="Poor")
    np.testing.assert_allclose([fem.ci_low, fem.auc, fem.ci_high],
                               exp["ci_auc_delong_ndka_female_subset"], rtol=1e-9)


def test_proc_asah_covariances_and_paired_tests(statsref):
    exp, data = proc_case(statsref)
    for pair, cov in exp["delong_cov"].items():
        a, b = pair.split(",")
        res = roc_compare(data, "outcome", a, b, positive="Poor")
        np.testing.assert_allclose(res.cov, cov, rtol=PROC_RTOL)
    for pair, ref in exp["roc_test_delong_paired"].items():
        a, b = pair.split("_vs_")
        res = roc_compare(data, "outcome", a, b, positive="Poor")
        np.testing.assert_allclose([res.z, res.p], [ref["Z"], ref["p"]], rtol=PROC_RTOL)
        np.testing.assert_allclose([res.ci_low, res.ci_high], ref["ci"], rtol=PROC_RTOL)
    one = exp["roc_test_delong_one_sided_wfns_vs_s100b"]
    for alt in ("greater", "less"):
        res = roc_compare(data, "outcome", "wfns", "s100b", positive="Poor", alternative=alt)
        np.testing.assert_allclose(res.p, one[alt], rtol=PROC_RTOL)


def test_proc_asah_youden(statsref):
    exp, data = proc_case(statsref)
    ref = exp["youden_best_s100b"]
    res = roc(data, "outcome", "s100b", positive="Poor")
    assert res.youden_threshold == pytest.approx(ref["threshold"], rel=1e-12)
    assert res.sensitivity == pytest.approx(ref["sensitivity"], rel=1e-15)
    assert res.specificity == pytest.approx(ref["specificity"], rel=1e-15)
    assert (res.tp, res.fn, res.tn, res.fp) == (ref["tp"], ref["fn"], ref["tn"], ref["fp"])
    assert res.n_youden_optima == 1


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------

def test_errors():
    y = np.array([0, 1, 0, 1, 0, 1])
    s = np.arange(6.0)
    with pytest.raises(StatsError, match="single class"):
        roc(dv=np.zeros(6), score=s)
    with pytest.raises(StatsError, match=r"single class.*positive='Poor'"):
        roc(dv=np.array(["a", "b"] * 3), score=s, positive="Poor")
    with pytest.raises(StatsError, match="3 distinct values"):
        roc(dv=np.array([0, 1, 2, 0, 1, 2]), score=s)
    with pytest.raises(StatsError, match="n too small"):
        roc(dv=np.array([1, 0, 0, 0]), score=np.arange(4.0))
    with pytest.raises(StatsError, match="not in the table"):
        roc(pd.DataFrame({"y": y, "s": s}), "y", "nope")
    with pytest.raises(StatsError, match="not numeric"):
        roc(dv=y, score=["a", "b", "c", "d", "e", "f"])
    with pytest.raises(StatsError, match="has 5 values"):
        roc(dv=y, score=s[:5])
    with pytest.raises(StatsError, match="direction"):
        roc(dv=y, score=s, direction="up")
    with pytest.raises(StatsError, match="alternative"):
        roc_compare(dv=y, score1=s, score2=s[::-1], alternative="bigger")
    with pytest.raises(StatsError, match="dv= and score="):
        roc(pd.DataFrame({"y": y, "s": s}))
    with pytest.raises(StatsError, match="single class"):
        roc(dv=np.array([1, 1, np.nan, 0]), score=np.array([1.0, 2, 3, np.nan]))


def test_deprecated_spellings_of_the_previous_release():
    y, s1, s2 = random_scores(4)
    df = pd.DataFrame({"y": y, "a": s1, "b": s2})
    new = roc(df, "y", "a", positive=1, direction="<").to_frame()
    with pytest.deprecated_call(match=r"positional order \(dv, score, positive, direction\)"):
        old = roc(y, s1, 1, "<")
    pd.testing.assert_frame_equal(old.to_frame(), new, check_exact=True)
    with pytest.deprecated_call(match="outcome= is deprecated, use dv="):
        old = roc(df, outcome="y", score="a", direction="<")
    pd.testing.assert_frame_equal(old.to_frame(), new, check_exact=True)
    with pytest.deprecated_call(match="positional order"):
        old = roc(df, "a", outcome="y", direction="<")  # score second, as before
    pd.testing.assert_frame_equal(old.to_frame(), new, check_exact=True)
    with pytest.deprecated_call(match="y_true= is deprecated, use dv="):
        old = roc(y_true=y, score=s1, direction="<")
    pd.testing.assert_frame_equal(old.to_frame(), new, check_exact=True)
    new_cmp = roc_compare(df, "y", "a", "b", positive=1).to_frame()
    with pytest.deprecated_call(match="positional order"):
        old_cmp = roc_compare(y, s1, s2, 1)
    pd.testing.assert_frame_equal(old_cmp.to_frame(), new_cmp, check_exact=True)
    with pytest.deprecated_call(match="outcome= is deprecated"):
        old_cmp = roc_compare(df, outcome="y", score1="a", score2="b")
    pd.testing.assert_frame_equal(old_cmp.to_frame(), new_cmp, check_exact=True)
    with pytest.raises(TypeError, match="got both outcome= .* and dv="):
        roc(df, dv="y", score="a", outcome="y")
    with pytest.raises(TypeError, match="positional"):
        roc(df, "y", "a", 1)  # options are keyword-only in the new order


def test_placements_is_the_public_delong_building_block():
    y, s1, _ = random_scores(5)
    pl = placements(s1[y == 1], s1[y == 0])
    res = roc(dv=y, score=s1, direction="<")
    assert pl.auc == res.auc
    var = np.var(pl.v10, ddof=1) / pl.v10.size + np.var(pl.v01, ddof=1) / pl.v01.size
    assert var == pytest.approx(res.variance, rel=1e-15)


def test_perfect_separation_and_identical_scores():
    y = np.array([0, 0, 0, 1, 1, 1])
    perfect = roc(dv=y, score=np.arange(6.0))
    assert perfect.auc == 1.0 and perfect.se == 0.0 and (perfect.ci_low, perfect.ci_high) == (1.0, 1.0)
    assert perfect.sensitivity == 1.0 and perfect.specificity == 1.0
    flat = roc(dv=y, score=np.ones(6))
    assert flat.auc == 0.5 and flat.se == 0.0
    same = roc_compare(dv=y, score1=np.arange(6.0), score2=np.arange(6.0))
    assert same.difference == 0.0 and same.z == 0.0 and same.p == 1.0


# ---------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------

scores_strategy = st.lists(
    # continuous scores on a 1e-3 grid so that the transforms below stay strictly monotone
    # in floating point (exp(v/10) of two subnormals would tie)
    st.tuples(st.booleans(), st.integers(-20, 20), st.integers(-5000, 5000).map(lambda k: k / 1000)),
    min_size=4, max_size=80,
).filter(lambda rows: 2 <= sum(r[0] for r in rows) <= len(rows) - 2)


@settings(max_examples=80, deadline=None)
@given(rows=scores_strategy, use_ints=st.booleans())
def test_negation_and_monotone_transforms(rows, use_ints):
    y = np.array([r[0] for r in rows], int)
    s = np.array([r[1] if use_ints else r[2] for r in rows], float)
    base = roc(dv=y, score=s, direction="<")
    neg = roc(dv=y, score=-s, direction="<")
    np.testing.assert_allclose(neg.auc, 1 - base.auc, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(neg.se, base.se, rtol=1e-9, atol=1e-15)
    for transform in (lambda v: np.exp(v / 10.0), lambda v: v ** 3 + v, np.arctan,
                      lambda v: 1000.0 * v - 7.0):
        t = roc(dv=y, score=transform(s), direction="<")
        np.testing.assert_allclose(t.auc, base.auc, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(t.se, base.se, rtol=1e-9, atol=1e-15)
        assert (t.sensitivity, t.specificity) == (base.sensitivity, base.specificity)
    auto = roc(dv=y, score=s)
    if auto.direction == "<":
        assert auto.auc == base.auc


@settings(max_examples=40, deadline=None)
@given(rows=scores_strategy, perm_seed=st.integers(0, 10 ** 6))
def test_row_permutation_invariance(rows, perm_seed):
    y = np.array([r[0] for r in rows], int)
    s = np.array([r[2] for r in rows], float)
    s2 = np.array([r[1] for r in rows], float)
    perm = np.random.default_rng(perm_seed).permutation(len(y))
    a, b = roc(dv=y, score=s), roc(dv=y[perm], score=s[perm])
    assert a.auc == pytest.approx(b.auc, rel=1e-12, abs=1e-15)
    assert a.se == pytest.approx(b.se, rel=1e-9, abs=1e-15)
    assert a.youden_threshold == b.youden_threshold
    c = roc_compare(dv=y, score1=s, score2=s2)
    d = roc_compare(dv=y[perm], score1=s[perm], score2=s2[perm])
    assert c.cov == pytest.approx(d.cov, rel=1e-9, abs=1e-15)

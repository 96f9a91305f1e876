"""Tests of ``ParaspinalFatLib.stats.agreement``: ICC (6 forms) and Cohen's kappa.

Oracles
-------
* pingouin ``intraclass_corr`` (rounding switched off): every ICC, F, df, p and CI to 1e-8.
  Definitions match exactly (pingouin also uses F(n-1, (n-1)(k-1)) for ICC(A,1) and
  the Spearman-Brown ICC(A,k) interval).
* A port of R ``irr::icc`` written below (McGraw & Wong algebra, as irr codes it).
  Definitions that differ and are documented in ``agreement.py``: irr tests ICC(A,1)
  on the Satterthwaite df ``v`` (our ``df2_ci``) and evaluates ``v`` at ICC(A,k) for
  the ICC(A,k) interval.
* statsmodels ``cohens_kappa`` (kappa, ASE, ASE under H0, z, p, CI) and scikit-learn
  ``cohen_kappa_score`` (kappa) to 1e-8.
* Published references in ``statsref`` (Shrout & Fleiss 1979 / psych / DescTools,
  irr ``anxiety``, pingouin wine data, SAS PROC FREQ table, irr ``kappa2``, Fleiss 1971
  diagnoses rater 1 vs 2) to the printed digits.  Fleiss' multi-rater kappa of that
  case is not a Cohen's kappa and is not implemented (not part of the API).
"""
from __future__ import annotations

import json
import warnings
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import linalg, stats

from ParaspinalFatLib.stats import StatsError, cohen_kappa, icc

FORMS = ["ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k"]


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def assert_printed(value, printed, what=""):
    """``value`` rounds to the printed number: |value - printed| <= half a unit of its last digit."""
    exponent = Decimal(repr(printed)).as_tuple().exponent
    half = 0.5 * 10.0 ** exponent
    assert abs(value - float(printed)) <= half * (1 + 1e-9) + 1e-15, (what, value, printed)


def load_expected(statsref):
    return json.loads((statsref / "expected.json").read_text())["cases"]


def random_ratings(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 40))
    k = int(rng.integers(2, 7))
    subject = rng.normal(0, rng.uniform(0.1, 3), size=(n, 1))
    rater = rng.normal(0, rng.uniform(0, 2), size=(1, k))
    y = 50 + subject + rater + rng.normal(0, 1, size=(n, k))
    if seed % 3 == 0:
        y = np.round(y)  # ties, as with integer grades
    return y


def to_long(y):
    n, k = y.shape
    return pd.DataFrame({
        "subject": np.repeat(np.arange(n), k),
        "rater": np.tile([f"r{j}" for j in range(k)], n),
        "score": y.ravel(),
    })


def pingouin_icc(long_df, **kw):
    pg = pytest.importorskip("pingouin")
    old = pg.options.copy()
    for key in [key for key in pg.options if str(key).startswith("round")]:
        del pg.options[key]
    pg.options["round"] = None
    try:
        with warnings.catch_warnings():  # pingouin's own pandas deprecations
            warnings.simplefilter("ignore")
            res = pg.intraclass_corr(long_df, "subject", "rater", "score", **kw)
    finally:
        pg.options.clear()
        pg.options.update(old)
    col = "CI95" if "CI95" in res.columns else "CI95%"
    ci = np.vstack(res[col].to_numpy())
    return res, ci


def irr_icc_agreement(y, unit, conf=0.95):
    """R irr::icc(model="twoway", type="agreement", unit, r0=0), transcribed."""
    ns, raters = y.shape
    alpha = 1 - conf
    smean = y.mean(axis=1)
    rmean = y.mean(axis=0)
    grand = y.mean()
    ssr = raters * np.sum((smean - grand) ** 2)
    msr = ssr / (ns - 1)
    ssc = ns * np.sum((rmean - grand) ** 2)
    msc = ssc / (raters - 1)
    sst = np.sum((y - grand) ** 2)
    sse = sst - ssr - ssc
    mse = sse / ((ns - 1) * (raters - 1))
    if unit == "single":
        coeff = (msr - mse) / (msr + (raters - 1) * mse + raters / ns * (msc - mse))
    else:
        coeff = (msr - mse) / (msr + (msc - mse) / ns)
    fvalue = msr / mse
    a = (raters * coeff) / (ns * (1 - coeff))
    b = 1 + (raters * coeff * (ns - 1)) / (ns * (1 - coeff))
    v = (a * msc + b * mse) ** 2 / ((a * msc) ** 2 / (raters - 1)
                                     + (b * mse) ** 2 / ((ns - 1) * (raters - 1)))
    p = stats.f.sf(fvalue, ns - 1, v)
    fl = stats.f.ppf(1 - alpha / 2, ns - 1, v)
    fu = stats.f.ppf(1 - alpha / 2, v, ns - 1)
    if unit == "single":
        lo = ns * (msr - fl * mse) / (fl * (raters * msc + (raters * ns - raters - ns) * mse) + ns * msr)
        hi = ns * (fu * msr - mse) / (raters * msc + (raters * ns - raters - ns) * mse + ns * fu * msr)
    else:
        lo = ns * (msr - fl * mse) / (fl * (msc - mse) + ns * msr)
        hi = ns * (fu * msr - mse) / (msc - mse + ns * fu * msr)
    return {"icc": coeff, "F": fvalue, "df2": v, "p": p, "lo": lo, "hi": hi}


def spearman_brown(r, k):
    return k * r / (1 + (k - 1) * r)


# ---------------------------------------------------------------------------
# ICC against independent implementations
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(40))
def test_icc_matches_pingouin(seed):
    y = random_ratings(seed)
    ours = icc(y).to_frame().set_index("form").loc[FORMS]
    ref, ci = pingouin_icc(to_long(y))
    np.testing.assert_allclose(ours["icc"], ref["ICC"], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(ours["F"], ref["F"], rtol=1e-8)
    np.testing.assert_allclose(ours["df1"], ref["df1"], rtol=0)
    np.testing.assert_allclose(ours["df2"], ref["df2"], rtol=0)
    np.testing.assert_allclose(ours["p"], ref["pval"], rtol=1e-8, atol=1e-300)
    np.testing.assert_allclose(ours[["ci_low", "ci_high"]].to_numpy(), ci, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("seed", range(20))
def test_icc_agreement_against_irr_port(seed):
    y = random_ratings(seed)
    res = icc(y).to_frame().set_index("form")
    single = irr_icc_agreement(y, "single")
    a1 = res.loc["ICC2"]
    np.testing.assert_allclose([a1.icc, a1.F, a1.df2_ci, a1.ci_low, a1.ci_high],
                               [single["icc"], single["F"], single["df2"], single["lo"], single["hi"]],
                               rtol=1e-8, atol=1e-12)
    # documented difference 1: irr's p uses F(n-1, v); ours F(n-1, (n-1)(k-1))
    np.testing.assert_allclose(stats.f.sf(a1.F, a1.df1, a1.df2_ci), single["p"], rtol=1e-8)
    n, k = y.shape
    assert a1.df2 == (n - 1) * (k - 1)
    # documented difference 2: our ICC(A,k) interval = Spearman-Brown of the ICC(A,1) interval
    ak = res.loc["ICC2k"]
    np.testing.assert_allclose(ak.icc, irr_icc_agreement(y, "average")["icc"], rtol=1e-10)
    np.testing.assert_allclose([ak.ci_low, ak.ci_high],
                               [spearman_brown(a1.ci_low, k), spearman_brown(a1.ci_high, k)],
                               rtol=1e-10, atol=1e-12)


def test_icc_long_wide_array_forms_agree(statsref):
    wine = pd.read_csv(statsref / "csv" / "icc_pingouin_wine.csv")
    long_res = icc(wine, targets="Wine", raters="Judge", ratings="Scores").to_frame()
    wide = wine.pivot(index="Wine", columns="Judge", values="Scores").reset_index()
    wide_res = icc(wide, targets="Wine").to_frame()
    cols_res = icc(wide, raters=["A", "B", "C", "D"]).to_frame()
    arr_res = icc(wide[["A", "B", "C", "D"]].to_numpy()).to_frame()
    for other in (wide_res, cols_res, arr_res):
        pd.testing.assert_frame_equal(long_res, other, check_exact=False, rtol=1e-12)


def test_icc_listwise_deletion_matches_complete_subset():
    y = random_ratings(7)
    y_missing = y.copy()
    y_missing[[1, 4], [0, 1]] = np.nan
    res = icc(y_missing)
    full = icc(np.delete(y, [1, 4], axis=0))
    assert res.n == y.shape[0] - 2 and res.n_excluded == 2
    pd.testing.assert_frame_equal(res.to_frame(), full.to_frame())
    ref, _ci = pingouin_icc(to_long(y_missing), nan_policy="omit")
    np.testing.assert_allclose(res.to_frame()["icc"], ref["ICC"], rtol=1e-8)
    # long format: an absent (subject, rater) row counts as missing too
    long_df = to_long(y).drop(index=[3])
    assert icc(long_df, "subject", "rater", "score").n_excluded == 1


def test_icc_selection_and_aliases():
    y = random_ratings(3)
    res = icc(y, form="ICC(C,1)")
    assert res.form == "ICC3"
    assert res.description == "Two-way mixed effects, consistency, single measures"
    for alias, form in [("ICC(1,1)", "ICC1"), ("icc(a,1)", "ICC2"), ("ICC(2,k)", "ICC2k"),
                        ("ICC(C,k)", "ICC3k"), ("ICC(k)", "ICC1k"), ("ICC3", "ICC3")]:
        sel = icc(y, form=alias)
        assert sel.form == form
        row = sel.to_frame().set_index("form").loc[form]
        assert sel.icc == row["icc"] and sel.ci_low == row["ci_low"] and sel.p == row["p"]
        assert res.select(alias).icc == sel.icc
    assert icc(y).form == "ICC2"  # default: single-measure absolute agreement
    table = res.to_frame()
    assert list(table["mcgraw_wong"]) == ["ICC(1)", "ICC(A,1)", "ICC(C,1)", "ICC(k)", "ICC(A,k)", "ICC(C,k)"]
    assert set(table["unit"]) == {"single measures", "average measures"}


def test_icc_edge_cases():
    base = np.array([[1.0, 1.0], [2.0, 2.0], [4.0, 4.0], [3.0, 3.0]])
    perfect = icc(base).to_frame().set_index("form")
    assert np.allclose(perfect["icc"], 1.0)
    assert np.allclose(perfect[["ci_low", "ci_high"]], 1.0)
    assert (perfect["p"] == 0).all()
    offset = base + np.array([[0.0, 1.0]])  # rater 2 always one point higher
    res = icc(offset).to_frame().set_index("form")
    assert res.loc["ICC3", "icc"] == pytest.approx(1.0)
    assert 0 < res.loc["ICC2", "icc"] < 1
    assert np.isfinite(res.loc["ICC2", ["ci_low", "ci_high"]].astype(float)).all()
    # two subjects is the minimum
    assert icc(np.array([[1.0, 2.0], [3.0, 3.5]])).n == 2


def test_icc_errors():
    y = random_ratings(1)
    with pytest.raises(StatsError, match="not in the table"):
        icc(to_long(y), "subject", "rater", "nope")
    with pytest.raises(StatsError, match="at least 2 raters"):
        icc(y[:, :1])
    with pytest.raises(StatsError, match="at least 2 subjects"):
        icc(y[:1])
    with pytest.raises(StatsError, match="at least 2 subjects"):
        icc(np.array([[1.0, np.nan], [2.0, 3.0], [np.nan, 1.0]]))
    with pytest.raises(StatsError, match="identical"):
        icc(np.ones((5, 3)))
    with pytest.raises(StatsError, match="unknown ICC form"):
        icc(y, form="ICC4")
    long_df = to_long(y)
    with pytest.raises(StatsError, match="repeat"):
        icc(pd.concat([long_df, long_df.iloc[:1]]), "subject", "rater", "score")
    bad = long_df.astype({"score": object})
    bad.loc[0, "score"] = "high"
    with pytest.raises(StatsError, match="'score' is not numeric"):
        icc(bad, "subject", "rater", "score")
    nolabel = long_df.astype({"rater": object})
    nolabel.loc[0, "rater"] = None
    with pytest.raises(StatsError, match="'rater' has 1 missing"):
        icc(nolabel, "subject", "rater", "score")
    with pytest.raises(StatsError, match="long-format"):
        icc(long_df, ratings="score")
    with pytest.raises(StatsError, match="2-D"):
        icc(np.arange(5.0))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10 ** 6), perm_seed=st.integers(0, 10 ** 6))
def test_icc_invariant_to_row_and_rater_order(seed, perm_seed):
    y = random_ratings(seed)
    rng = np.random.default_rng(perm_seed)
    shuffled = y[rng.permutation(y.shape[0])][:, rng.permutation(y.shape[1])]
    a = icc(y).to_frame()
    b = icc(shuffled).to_frame()
    num = ["icc", "F", "p", "ci_low", "ci_high", "df2_ci"]
    np.testing.assert_allclose(a[num].to_numpy(float), b[num].to_numpy(float), rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------------
# ICC against published references
# ---------------------------------------------------------------------------

def test_icc_shrout_fleiss_1979(statsref):
    case = load_expected(statsref)["icc_shrout_fleiss_1979"]["expected"]
    data = pd.read_csv(statsref / "csv" / "icc_shrout_fleiss_1979.csv")
    res = icc(data, targets="target")
    table = res.to_frame().set_index("form").loc[FORMS]
    sf = case["shrout_fleiss_1979"]
    for key, ms in [("BMS", "MSR"), ("WMS", "MSW"), ("JMS", "MSC"), ("EMS", "MSE")]:
        assert_printed(res.mean_squares[ms], sf[key], key)
    for key, form in [("ICC_1_1", "ICC1"), ("ICC_2_1", "ICC2"), ("ICC_3_1", "ICC3"),
                      ("ICC_1_4", "ICC1k"), ("ICC_2_4", "ICC2k"), ("ICC_3_4", "ICC3k")]:
        assert_printed(table.loc[form, "icc"], sf[key], key)
    psych = case["psych_ICC"]
    ours = table.loc[psych["order"]]
    for col, ref_col in [("icc", "ICC"), ("F", "F"), ("df1", "df1"), ("df2", "df2"),
                         ("p", "p"), ("ci_low", "lower"), ("ci_high", "upper")]:
        for form, value, printed in zip(psych["order"], ours[col], psych[ref_col]):
            assert_printed(value, printed, (form, col))
    desc = case["DescTools_ICC"]
    for col, ref_col in [("icc", "est"), ("F", "F"), ("p", "p")]:
        for form, value, printed in zip(psych["order"], ours[col], desc[ref_col]):
            assert_printed(value, printed, (form, col))


def test_icc_irr_anxiety(statsref):
    case = load_expected(statsref)["icc_irr_anxiety"]["expected"]
    data = pd.read_csv(statsref / "csv" / "icc_kappa_irr_anxiety.csv")
    res = icc(data, targets="subject", form="ICC(A,1)")
    assert_printed(res.icc, case["ICC_A_1"])
    assert_printed(res.F, case["F"])
    assert res.df1 == case["df1"]
    assert_printed(res.ci_low, case["ci95"][0])
    assert_printed(res.ci_high, case["ci95"][1])
    row = res.to_frame().set_index("form").loc["ICC2"]
    # irr's F-test df (Satterthwaite v) and p, reproduced from the reported df2_ci
    assert_printed(row["df2_ci"], case["df2"])
    assert_printed(stats.f.sf(res.F, res.df1, row["df2_ci"]), case["p"])
    # our (SPSS/psych/pingouin) convention: df2 = (n-1)(k-1) = 38, p = 0.0562
    assert res.df2 == 38
    assert_printed(res.p, 0.0562)


def test_icc_pingouin_wine(statsref):
    case = load_expected(statsref)["icc_pingouin_wine"]["expected"]
    data = pd.read_csv(statsref / "csv" / "icc_pingouin_wine.csv")
    table = icc(data, "Wine", "Judge", "Scores").to_frame().set_index("form").loc[case["order"]]
    for col, ref_col in [("icc", "ICC"), ("df1", "df1"), ("df2", "df2"), ("p", "p"),
                         ("ci_low", "lower"), ("ci_high", "upper")]:
        for form, value, printed in zip(case["order"], table[col], case[ref_col]):
            assert_printed(value, printed, (form, col))
    for value, printed in zip(table["F"], case["F_rounded"]):
        assert round(value) == printed


def test_irr_port_reproduces_irr_average_interval(statsref):
    """The port is right: irr's own ICC(A,k) interval on the S&F data is 0.039-0.929."""
    data = pd.read_csv(statsref / "csv" / "icc_shrout_fleiss_1979.csv")
    port = irr_icc_agreement(data[["J1", "J2", "J3", "J4"]].to_numpy(float), "average")
    assert_printed(port["lo"], 0.039)
    assert_printed(port["hi"], 0.929)
    ours = icc(data, targets="target", form="ICC2k")
    assert_printed(ours.ci_low, 0.071)  # psych / SPSS convention
    assert_printed(ours.ci_high, 0.93)


# ---------------------------------------------------------------------------
# Cohen's kappa
# ---------------------------------------------------------------------------

def ratings_from_table(table):
    table = np.asarray(table)
    r1, r2 = [], []
    for i in range(table.shape[0]):
        for j in range(table.shape[1]):
            r1 += [i] * int(table[i, j])
            r2 += [j] * int(table[i, j])
    return pd.DataFrame({"a": r1, "b": r2})


def random_kappa_data(seed):
    rng = np.random.default_rng(seed)
    r = int(rng.integers(2, 7))
    n = int(rng.integers(8, 200))
    truth = rng.integers(0, r, n)
    noise = rng.uniform(0, 1.5)
    a = np.clip(np.round(truth + rng.normal(0, noise, n)), 0, r - 1).astype(int)
    b = np.clip(np.round(truth + rng.normal(0, noise, n)), 0, r - 1).astype(int)
    return pd.DataFrame({"a": a, "b": b}), r


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
@pytest.mark.parametrize("seed", range(25))
def test_kappa_matches_statsmodels_and_sklearn(seed, weights):
    sm_ir = pytest.importorskip("statsmodels.stats.inter_rater")
    sk = pytest.importorskip("sklearn.metrics")
    df, r = random_kappa_data(seed)
    cats = list(range(r))
    res = cohen_kappa(df, "a", "b", weights=weights, categories=cats)
    table = np.zeros((r, r))
    np.add.at(table, (df["a"], df["b"]), 1)
    ref = sm_ir.cohens_kappa(table, wt=weights)
    np.testing.assert_allclose(res.kappa, ref.kappa, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(res.se, ref.std_kappa, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(res.se0, ref.std_kappa0, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(res.z, ref.z_value, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(res.p, ref.pvalue_two_sided, rtol=1e-8, atol=1e-300)
    np.testing.assert_allclose([res.ci_low, res.ci_high], [ref.kappa_low, ref.kappa_upp],
                               rtol=1e-8, atol=1e-12)
    sk_kappa = sk.cohen_kappa_score(df["a"], df["b"], weights=weights, labels=cats)
    np.testing.assert_allclose(res.kappa, sk_kappa, rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(res.table.to_numpy(), table)
    assert res.n == len(df)


def test_kappa_default_categories_are_observed_levels():
    df = pd.DataFrame({"a": [1, 2, 4, 4, 2, 1, 4], "b": [1, 2, 4, 2, 2, 4, 4]})
    res = cohen_kappa(df, "a", "b", weights="linear")
    assert res.categories == [1, 2, 4]
    full = cohen_kappa(df, "a", "b", weights="linear", categories=[1, 2, 3, 4])
    assert full.categories == [1, 2, 3, 4] and full.kappa != res.kappa
    # unweighted kappa does not depend on unused categories
    assert cohen_kappa(df, "a", "b", categories=[0, 1, 2, 3, 4]).kappa == pytest.approx(
        cohen_kappa(df, "a", "b").kappa, rel=1e-12)


def test_kappa_strings_arrays_and_missing():
    a = ["poor", "good", "good", None, "poor", "good", "poor", "good"]
    b = ["poor", "good", "poor", "good", "poor", "good", "poor", np.nan]
    res = cohen_kappa(None, a, b)
    assert res.n == 6 and res.n_excluded == 2
    assert res.categories == ["good", "poor"]
    df = pd.DataFrame({"r1": a, "r2": b})
    assert cohen_kappa(df, "r1", "r2").kappa == pytest.approx(res.kappa, rel=1e-15)
    assert res.to_frame().shape == (1, 13)


def test_kappa_perfect_agreement():
    df = pd.DataFrame({"a": [0, 1, 2, 1, 0, 2], "b": [0, 1, 2, 1, 0, 2]})
    res = cohen_kappa(df, "a", "b")
    assert res.kappa == pytest.approx(1.0) and res.se == pytest.approx(0.0, abs=1e-12)
    assert res.ci_low == pytest.approx(1.0) and res.p < 0.01


def test_kappa_custom_weight_matrix_irr(statsref):
    """irr kappa2(anxiety[,2:3], c(0,0,1,1,2)): disagreement weights by |i-j| scaled to [0,1]."""
    case = load_expected(statsref)["kappa_irr_anxiety"]["expected"]["custom_weights_0_0_1_1_2"]
    data = pd.read_csv(statsref / "csv" / "icc_kappa_irr_anxiety.csv")
    w = 1.0 - linalg.toeplitz([0, 0, 1, 1, 2]) / 2.0
    res = cohen_kappa(data, "rater2", "rater3", weights=w)
    np.testing.assert_allclose([res.kappa, res.z, res.p], [case["kappa"], case["z"], case["p"]],
                               rtol=1e-6)


def test_kappa_irr_anxiety(statsref):
    case = load_expected(statsref)["kappa_irr_anxiety"]["expected"]
    data = pd.read_csv(statsref / "csv" / "icc_kappa_irr_anxiety.csv")
    for key, weights in [("unweighted", None), ("equal_linear", "linear"),
                         ("squared_quadratic", "quadratic")]:
        res = cohen_kappa(data, "rater2", "rater3", weights=weights)
        np.testing.assert_allclose([res.kappa, res.z, res.p],
                                   [case[key]["kappa"], case[key]["z"], case[key]["p"]], rtol=1e-6)
        # irr names are accepted too
        alias = {"unweighted": "unweighted", "equal_linear": "equal", "squared_quadratic": "squared"}[key]
        assert cohen_kappa(data, "rater2", "rater3", weights=alias).kappa == res.kappa


def test_kappa_sas_table(statsref):
    case = load_expected(statsref)["kappa_sas_table10"]["expected"]
    table = np.array(json.loads(case["table"]))
    df = ratings_from_table(table)
    for key, weights in [("simple", None), ("weighted_cicchetti_allison", "linear")]:
        ref = case[key]
        res = cohen_kappa(df, "a", "b", weights=weights)
        assert_printed(res.kappa, ref["kappa"], key)
        assert_printed(res.se, ref["ASE"], key)
        assert_printed(res.ci_low, ref["lower"], key)
        assert_printed(res.ci_high, ref["upper"], key)
        assert_printed(res.se0, ref["ASE_H0"], key)
        assert_printed(res.z, ref["Z"], key)
        assert_printed(res.p, ref["p_two_sided"], key)
        assert_printed(stats.norm.sf(res.z), ref["p_one_sided"], key)


def test_kappa_fleiss1971_rater1_vs_rater2(statsref):
    case = load_expected(statsref)["kappa_fleiss1971_diagnoses"]["expected"]["cohen_rater1_rater2"]
    data = pd.read_csv(statsref / "csv" / "kappa_fleiss1971_diagnoses.csv")
    for key, weights in [("unweighted", None), ("equal", "linear"), ("squared", "quadratic")]:
        res = cohen_kappa(data, "rater1", "rater2", weights=weights, categories=[1, 2, 3, 4, 5])
        assert_printed(res.kappa, case[key]["kappa"], key)
        assert_printed(res.z, case[key]["z"], key)
        np.testing.assert_allclose(res.p, case[key]["p"], rtol=5e-3)  # 3 significant digits


def test_kappa_errors():
    df = pd.DataFrame({"a": [1, 1, 1], "b": [1, 1, 1], "c": [1, 2, 3]})
    with pytest.raises(StatsError, match="not in the table"):
        cohen_kappa(df, "a", "zz")
    with pytest.raises(StatsError, match="undefined"):
        cohen_kappa(df, "a", "b")
    with pytest.raises(StatsError, match="at least 2"):
        cohen_kappa(df.iloc[:1], "a", "c")
    with pytest.raises(StatsError, match=r"c: ratings \['3'\] are not in categories \[1, 2\]"):
        cohen_kappa(df, "a", "c", categories=[1, 2])
    with pytest.raises(StatsError, match="weights must be"):
        cohen_kappa(df, "a", "c", weights="cubic")
    with pytest.raises(StatsError, match="symmetric"):
        cohen_kappa(df, "a", "c", weights=np.array([[1, 0.5, 0], [0, 1, 0], [0, 0, 1]]))
    with pytest.raises(StatsError, match="3 x 3"):
        cohen_kappa(df, "a", "c", weights=np.eye(2))
    with pytest.raises(StatsError, match="different lengths"):
        cohen_kappa(None, [1, 2, 3], [1, 2])


@settings(max_examples=60, deadline=None)
@given(
    pairs=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=2, max_size=60),
    weights=st.sampled_from([None, "linear", "quadratic"]),
    perm_seed=st.integers(0, 10 ** 6),
)
def test_kappa_symmetric_in_raters_and_row_order(pairs, weights, perm_seed):
    df = pd.DataFrame(pairs, columns=["a", "b"])
    try:
        res = cohen_kappa(df, "a", "b", weights=weights)
    except StatsError:
        return  # a single common category: undefined both ways
    swapped = cohen_kappa(df, "b", "a", weights=weights)
    shuffled = cohen_kappa(df.sample(frac=1.0, random_state=perm_seed % (2 ** 32)), "a", "b",
                           weights=weights)
    for other in (swapped, shuffled):
        for key in ("kappa", "se", "se0", "ci_low", "ci_high", "observed_agreement",
                    "expected_agreement"):
            np.testing.assert_allclose(getattr(other, key), getattr(res, key), rtol=1e-10,
                                       atol=1e-13)
        if np.isfinite(res.z):
            np.testing.assert_allclose(other.p, res.p, rtol=1e-9, atol=1e-14)
    np.testing.assert_array_equal(swapped.table.to_numpy(), res.table.to_numpy().T)

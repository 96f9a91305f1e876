"""Tests of ``ParaspinalFatLib.stats.logistic.logistic_regression``.

Oracles: statsmodels ``Logit`` (Newton, tight tolerance) and scikit-learn
``LogisticRegression`` without penalty (Newton-Cholesky) to 1e-8 on random data
with badly scaled/offset predictors; Stata 11 output for the Spector & Mazzeo data
(statsref ``logit_spector``) to rtol 2e-6 (Stata's own convergence).  SPSS's Wald is
(B/SE)^2, so its p equals the two-sided z-test p of statsmodels/Stata.  There is no
independent Python implementation of the SAS/SPSS Hosmer-Lemeshow grouping; it is
checked against a plain decile implementation where both definitions coincide (all
covariate patterns distinct, n a multiple of 10) and structurally (ties never split).
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from ParaspinalFatLib.stats import StatsError, logistic_regression


def random_logit_data(seed, n_min=30, n_max=300):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(n_min, n_max))
    p = int(rng.integers(1, 5))
    x = rng.normal(size=(n, p)) * rng.uniform(0.01, 1000, size=p) + rng.uniform(-1e4, 1e4, size=p)
    if p > 1:
        x[:, 1] = rng.integers(0, 2, n)
    beta = rng.normal(size=p) / x.std(axis=0)
    eta = (x - x.mean(axis=0)) @ beta + rng.normal() * 0.5
    y = (rng.uniform(size=n) < 1.0 / (1.0 + np.exp(-eta))).astype(int)
    names = [f"x{j}" for j in range(p)]
    df = pd.DataFrame(x, columns=names)
    df["y"] = y
    return df, names


def statsmodels_logit(y, x):
    sm = pytest.importorskip("statsmodels.api")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sm.Logit(np.asarray(y, float), np.column_stack([x, np.ones(len(x))])).fit(
            disp=0, method="newton", tol=1e-13, maxiter=200)


def unpenalised_sklearn():
    sk = pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression
    major, minor = (int(v) for v in sk.__version__.split(".")[:2])
    if (major, minor) >= (1, 8):  # penalty= deprecated in 1.8
        return LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-13, max_iter=1000)
    return LogisticRegression(penalty=None, solver="newton-cholesky", tol=1e-13, max_iter=1000)


# ---------------------------------------------------------------------------
# independent implementations
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(30))
def test_matches_statsmodels(seed):
    df, names = random_logit_data(seed)
    res = logistic_regression(df, "y", names)
    ref = statsmodels_logit(df["y"], df[names].to_numpy())
    coef = res.to_frame()
    assert list(coef["term"]) == names + ["Constant"]
    np.testing.assert_allclose(coef["B"], ref.params, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(coef["SE"], ref.bse, rtol=1e-8)
    np.testing.assert_allclose(coef["z"], ref.tvalues, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(coef["Wald"], ref.tvalues ** 2, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(coef["p"], ref.pvalues, rtol=1e-7, atol=1e-300)
    ci = np.asarray(ref.conf_int())
    np.testing.assert_allclose(np.log(coef[["OR_ci_low", "OR_ci_high"]].to_numpy()), ci,
                               rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(coef["OR"], np.exp(ref.params), rtol=1e-8)
    np.testing.assert_allclose(res.minus2ll, -2 * ref.llf, rtol=1e-10)
    # statsmodels fits the null model iteratively (~1e-10 relative); the exact null
    # log-likelihood has the closed form n*(ybar log ybar + (1-ybar) log(1-ybar))
    ybar = df["y"].mean()
    ll0 = len(df) * (ybar * np.log(ybar) + (1 - ybar) * np.log(1 - ybar))
    np.testing.assert_allclose(res.minus2ll_null, -2 * ll0, rtol=1e-13)
    np.testing.assert_allclose(res.minus2ll_null, -2 * ref.llnull, rtol=1e-8)
    np.testing.assert_allclose(res.model_chi2, 2 * (ref.llf - ll0), rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(res.model_chi2, ref.llr, atol=1e-6)
    np.testing.assert_allclose(res.model_p, stats.chi2.sf(2 * (ref.llf - ll0), len(names)),
                               rtol=1e-7, atol=1e-300)
    np.testing.assert_allclose(res.cov, np.asarray(ref.cov_params()), rtol=1e-7, atol=1e-300)
    n = len(df)
    cs = 1 - np.exp(2 * (ll0 - ref.llf) / n)
    np.testing.assert_allclose(res.cox_snell_r2, cs, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(res.nagelkerke_r2, cs / (1 - np.exp(2 * ll0 / n)), rtol=1e-8,
                               atol=1e-12)
    assert 0 <= res.cox_snell_r2 <= res.nagelkerke_r2 <= 1


@pytest.mark.parametrize("seed", range(10))
def test_matches_sklearn_unpenalised(seed):
    df, names = random_logit_data(seed + 100)
    res = logistic_regression(df, "y", names)
    model = unpenalised_sklearn().fit(df[names].to_numpy(), df["y"].to_numpy())
    np.testing.assert_allclose(res.params.to_numpy(),
                               np.r_[model.coef_.ravel(), model.intercept_], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(res.predicted.to_numpy(),
                               model.predict_proba(df[names].to_numpy())[:, 1], rtol=1e-8)


def test_categorical_coding_and_joint_wald():
    rng = np.random.default_rng(5)
    n = 240
    grp = rng.choice(["low", "mid", "high"], n)
    age = rng.normal(60, 8, n)
    eta = -0.5 + 0.8 * (grp == "mid") + 1.4 * (grp == "high") + 0.03 * (age - 60)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(int)
    df = pd.DataFrame({"y": y, "grp": grp, "age": age})
    res = logistic_regression(df, "y", ["age", "grp"], categorical={"grp": "low"})
    assert res.terms == ["age", "grp[high]", "grp[mid]", "Constant"]
    x = np.column_stack([age, grp == "high", grp == "mid"]).astype(float)
    ref = statsmodels_logit(y, x)
    np.testing.assert_allclose(res.params.to_numpy(), ref.params, rtol=1e-8)
    np.testing.assert_allclose(res.to_frame()["SE"], ref.bse, rtol=1e-8)
    r = np.zeros((2, 4))
    r[0, 1] = r[1, 2] = 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wald = ref.wald_test(r, scalar=True, use_f=False)
    row = res.wald_tests.set_index("predictor").loc["grp"]
    np.testing.assert_allclose(row["Wald"], float(np.squeeze(wald.statistic)), rtol=1e-8)
    assert row["df"] == 2
    np.testing.assert_allclose(row["p"], float(wald.pvalue), rtol=1e-7)
    # default reference = first sorted level ("high")
    default = logistic_regression(df, "y", ["age", "grp"], categorical=["grp"])
    assert default.terms == ["age", "grp[low]", "grp[mid]", "Constant"]
    np.testing.assert_allclose(default.minus2ll, res.minus2ll, rtol=1e-12)


# ---------------------------------------------------------------------------
# published reference: Stata 11 on the Spector & Mazzeo data
# ---------------------------------------------------------------------------

def test_spector_stata(statsref):
    case = json.loads((statsref / "expected.json").read_text())["cases"]["logit_spector"]["expected"]
    data = pd.read_csv(statsref / "csv" / "logit_spector.csv")
    res = logistic_regression(data, "GRADE", ["GPA", "TUCE", "PSI"])
    coef = res.to_frame().set_index("term")
    order = ["GPA", "TUCE", "PSI", "Constant"]
    np.testing.assert_allclose(coef.loc[order, "B"], case["params"], rtol=2e-6)
    np.testing.assert_allclose(coef.loc[order, "SE"], case["bse"], rtol=2e-6)
    np.testing.assert_allclose(coef.loc[order, "z"], case["z"], rtol=2e-6)
    np.testing.assert_allclose(coef.loc[order, "p"], case["pvalues"], rtol=1e-5)
    b_ci = np.log(coef.loc[order, ["OR_ci_low", "OR_ci_high"]].to_numpy())
    np.testing.assert_allclose(b_ci, case["conf_int"], rtol=2e-6)
    np.testing.assert_allclose(coef.loc[order, "OR"], case["odds_ratio_derived"], rtol=2e-6)
    # derived exp(B -/+ 1.96 SE): a relative error in OR is an absolute error in B; Stata's
    # B are ~1.5e-6 (absolute) from the optimum, amplified by the constant's large SE
    np.testing.assert_allclose(coef.loc[order, ["OR_ci_low", "OR_ci_high"]].to_numpy(),
                               case["odds_ratio_ci_derived"], rtol=1e-5)
    # Stata prints llf 7.6e-7 away from its own optimum (statsref discrepancy 5)
    np.testing.assert_allclose(-res.minus2ll / 2, case["llf"], rtol=1e-7)
    np.testing.assert_allclose(-res.minus2ll_null / 2, case["llnull"], rtol=1e-10)
    np.testing.assert_allclose(res.model_chi2, case["llr"], rtol=1e-6)
    np.testing.assert_allclose(res.model_p, case["llr_pvalue"], rtol=1e-6)
    np.testing.assert_allclose(1 - res.minus2ll / res.minus2ll_null, case["pseudo_r2_mcfadden"],
                               rtol=1e-6)
    np.testing.assert_allclose(res.minus2ll + 2 * 4, case["aic"], rtol=1e-7)
    np.testing.assert_allclose(res.minus2ll + 4 * np.log(32), case["bic"], rtol=1e-7)
    assert res.n == 32 and res.n_events == 11 and res.model_df == 3
    # HL grouping: target floor(0.1*32 + 0.5) = 3; 9 groups of 3 and a last group of 5
    assert list(res.hosmer_lemeshow["table"]["n"]) == [3] * 9 + [5]
    assert res.hosmer_lemeshow["df"] == 8


# ---------------------------------------------------------------------------
# Hosmer-Lemeshow, classification table, scores
# ---------------------------------------------------------------------------

def plain_deciles_hl(y, p):
    order = np.argsort(p)
    chi2 = 0.0
    for idx in np.array_split(order, 10):
        o, e, m = y[idx].sum(), p[idx].sum(), len(idx)
        chi2 += (o - e) ** 2 / (e * (1 - e / m))
    return chi2, stats.chi2.sf(chi2, 8)


@pytest.mark.parametrize("seed", range(5))
def test_hosmer_lemeshow_equals_plain_deciles_without_ties(seed):
    rng = np.random.default_rng(seed)
    n = 200
    x = rng.normal(size=n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(0.3 + x + 0.4 * x ** 2)))).astype(int)
    res = logistic_regression(pd.DataFrame({"y": y, "x": x}), "y", ["x"])
    chi2, p = plain_deciles_hl(y.astype(float), res.predicted.to_numpy())
    hl = res.hosmer_lemeshow
    assert hl["df"] == 8 and list(hl["table"]["n"]) == [20] * 10
    np.testing.assert_allclose([hl["chi2"], hl["p"]], [chi2, p], rtol=1e-10)
    table = hl["table"]
    np.testing.assert_allclose(table["observed_event"].sum(), y.sum())
    np.testing.assert_allclose(table["expected_event"].sum(), y.sum(), rtol=1e-8)  # score equation


def test_hosmer_lemeshow_keeps_tied_patterns_together():
    rng = np.random.default_rng(11)
    n = 300
    grade = rng.integers(0, 4, n)  # 4 covariate patterns
    y = (rng.uniform(size=n) < 0.2 + 0.15 * grade).astype(int)
    res = logistic_regression(pd.DataFrame({"y": y, "grade": grade}), "y", ["grade"])
    hl = res.hosmer_lemeshow
    block_sizes = sorted(np.bincount(grade))
    assert sorted(hl["table"]["n"]) == block_sizes  # each block is exactly one group here
    assert hl["df"] == 2
    binary = logistic_regression(pd.DataFrame({"y": y, "g": grade > 1}), "y", ["g"])
    assert binary.hosmer_lemeshow["df"] == 0 and np.isnan(binary.hosmer_lemeshow["p"])


def test_classification_table_and_scores():
    df, names = random_logit_data(3)
    res = logistic_regression(df, "y", names)
    p = res.predicted.to_numpy()
    y = df["y"].to_numpy()
    table = res.classification.set_index("observed")
    assert table.loc[0, "predicted_0"] == np.sum((y == 0) & (p <= 0.5))
    assert table.loc[1, "predicted_1"] == np.sum((y == 1) & (p > 0.5))
    assert res.percent_correct == pytest.approx(100 * np.mean((p > 0.5) == (y == 1)))
    assert table.loc["Overall", "percent_correct"] == pytest.approx(res.percent_correct)
    # the score is the linear predictor, usable for ROC on the fitted rows and on new data
    np.testing.assert_allclose(res.linear_score(df).to_numpy(), res.score.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(res.predict_proba(df).to_numpy(), p, rtol=1e-12)
    np.testing.assert_allclose(1 / (1 + np.exp(-res.score.to_numpy())), p, rtol=1e-12)
    new = df.iloc[:5].copy()
    new.loc[new.index[0], names[0]] = np.nan
    score = res.linear_score(new)
    assert np.isnan(score.iloc[0]) and np.isfinite(score.iloc[1:]).all()
    assert res.summary_frame().shape[0] == 1


def test_outcome_coding_and_listwise():
    df, names = random_logit_data(8)
    base = logistic_regression(df, "y", names)
    labelled = df.assign(y=np.where(df["y"] == 1, "poor", "good"))
    res = logistic_regression(labelled, "y", names, positive="poor")
    np.testing.assert_allclose(res.params, base.params, rtol=1e-12)
    assert res.positive == "poor" and res.negative == "good"
    flipped = logistic_regression(labelled, "y", names, positive="good")
    np.testing.assert_allclose(flipped.params, -base.params, rtol=1e-10)
    boolean = logistic_regression(df.assign(y=df["y"] == 1), "y", names)
    np.testing.assert_allclose(boolean.params, base.params, rtol=1e-12)
    holes = df.copy()
    holes.loc[holes.index[:3], names[0]] = np.nan
    holes.loc[holes.index[5], "y"] = np.nan
    res = logistic_regression(holes, "y", names)
    assert res.n == len(df) - 4 and res.n_excluded == 4
    full = logistic_regression(df.drop(index=df.index[[0, 1, 2, 5]]), "y", names)
    np.testing.assert_allclose(res.params, full.params, rtol=1e-12)
    assert list(res.score.index) == list(full.score.index)


def test_deprecated_outcome_event_and_positional_categorical():
    df, names = random_logit_data(8)
    labelled = df.assign(y=np.where(df["y"] == 1, "poor", "good"), g=df.index % 3)
    with pytest.deprecated_call(
            match="outcome= is deprecated, use dv=; event= is deprecated, use positive="):
        old = logistic_regression(labelled, predictors=names + ["g"], outcome="y", event="poor")
    new = logistic_regression(labelled, "y", names + ["g"], positive="poor")
    pd.testing.assert_frame_equal(old.to_frame(), new.to_frame(), check_exact=True)
    with pytest.deprecated_call(match="passing categorical positionally"):
        old_cat = logistic_regression(labelled, "y", names + ["g"], ["g"], positive="poor")
    new_cat = logistic_regression(labelled, "y", names + ["g"], categorical=["g"], positive="poor")
    pd.testing.assert_frame_equal(old_cat.to_frame(), new_cat.to_frame(), check_exact=True)
    with pytest.deprecated_call(match="LogisticResult.event is deprecated, use .positive"):
        assert old.event == "poor"
    with pytest.deprecated_call(match="LogisticResult.nonevent is deprecated, use .negative"):
        assert old.nonevent == "good"
    with pytest.deprecated_call(match="LogisticResult.outcome is deprecated, use .dv"):
        assert old.outcome == "y"
    with pytest.raises(TypeError, match="got both event= .* and positive="):
        logistic_regression(labelled, "y", names, event="poor", positive="poor")


def test_logistic_keeps_category_order_like_r_and_statsmodels():
    smf = pytest.importorskip("statsmodels.formula.api")
    rng = np.random.default_rng(1)
    n = 300
    df = pd.DataFrame({"fa": rng.normal(0.3, 0.05, n),
                       "strength": pd.Categorical(rng.choice(["poor", "good"], n),
                                                  categories=["poor", "good"], ordered=True)})
    logit = -6 + 20 * df["fa"] + 0.8 * (df["strength"] == "good")
    df["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    res = logistic_regression(df, "y", ["fa", "strength"], categorical=["strength"])
    table = res.to_frame().set_index(res.to_frame().columns[0])
    assert "strength[good]" in table.index  # reference = first category ("poor"), as in R
    oracle = smf.logit("y ~ fa + C(strength)", data=df.assign(strength=df["strength"].astype(str)).assign(
        strength=lambda d: pd.Categorical(d["strength"], categories=["poor", "good"]))).fit(disp=0)
    assert table.loc["strength[good]", "B"] == pytest.approx(oracle.params["C(strength)[T.good]"], rel=1e-6)


def test_near_separation_still_fits():
    rng = np.random.default_rng(0)
    x = rng.normal(size=60)
    z = rng.normal(size=60)
    y = (x > 0).astype(int)
    y[np.argmin(np.abs(x - 0.5))] = 0  # one overlap: MLE exists
    df = pd.DataFrame({"y": y, "x": x, "z": z})
    res = logistic_regression(df, "y", ["x", "z"])
    ref = statsmodels_logit(y, np.column_stack([x, z]))
    np.testing.assert_allclose(res.params.to_numpy(), ref.params, rtol=1e-7)


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------

def separation_frames():
    rng = np.random.default_rng(0)
    n = 60
    x, z = rng.normal(size=n), rng.normal(size=n)
    g = (rng.uniform(size=n) < 0.3).astype(int)
    quasi_y = np.where(g == 1, 1, (rng.uniform(size=n) < 0.4).astype(int))
    grp = np.array(["a", "b", "c"])[rng.integers(0, 3, n)]
    cat_y = rng.integers(0, 2, n)
    cat_y[grp == "c"] = 0
    return {
        "complete": (pd.DataFrame({"y": (x > 0).astype(int), "x": x, "z": z}), ["z", "x"], None,
                     r"^complete separation of outcome 'y' by predictor\(s\) \['x'\]"),
        "quasi": (pd.DataFrame({"y": quasi_y, "g": g, "z": z}), ["z", "g"], None,
                  r"^quasi-complete separation of outcome 'y' by predictor\(s\) \['g'\]"),
        "combination": (pd.DataFrame({"y": (x + z > 0).astype(int), "x": x, "z": z}), ["x", "z"],
                        None, r"^complete separation .* \['x', 'z'\]"),
        "categorical": (pd.DataFrame({"y": cat_y, "grp": grp, "z": z}), ["z", "grp"], ["grp"],
                        r"^quasi-complete separation .* \['grp'\]"),
    }


@pytest.mark.parametrize("kind", ["complete", "quasi", "combination", "categorical"])
def test_separation_is_an_error_naming_predictors(kind):
    df, preds, cats, pattern = separation_frames()[kind]
    with pytest.raises(StatsError, match=pattern):
        logistic_regression(df, "y", preds, categorical=cats)


def test_input_errors():
    df, names = random_logit_data(2)
    with pytest.raises(StatsError, match="not in the table"):
        logistic_regression(df, "y", ["nope"])
    with pytest.raises(StatsError, match="single class"):
        logistic_regression(df.assign(y=1), "y", names)
    with pytest.raises(StatsError, match="3 levels"):
        logistic_regression(df.assign(y=np.arange(len(df)) % 3), "y", names)
    with pytest.raises(StatsError, match="pass positive="):
        logistic_regression(df.assign(y=np.where(df["y"] == 1, "a", "b")), "y", names)
    with pytest.raises(StatsError, match="positive= level 'zz' does not occur"):
        logistic_regression(df.assign(y=np.where(df["y"] == 1, "a", "b")), "y", names,
                            positive="zz")
    with pytest.raises(StatsError, match="'const' has zero variance"):
        logistic_regression(df.assign(const=3.0), "y", names + ["const"])
    with pytest.raises(StatsError, match=r"collinear.*('twice'.*'x0'|'x0'.*'twice')"):
        logistic_regression(df.assign(twice=2 * df["x0"] + 1), "y", names + ["twice"])
    with pytest.raises(StatsError, match="too small"):
        logistic_regression(df.groupby("y").head(1), "y", names[:1])
    with pytest.raises(StatsError, match="'sex' is not numeric; list it in categorical="):
        logistic_regression(df.assign(sex=np.where(df.index % 2, "m", "f")), "y", names + ["sex"])
    with pytest.raises(StatsError, match="'sex' has a single level"):
        logistic_regression(df.assign(sex="m"), "y", names + ["sex"], categorical=["sex"])
    with pytest.raises(StatsError, match="also listed as a predictor"):
        logistic_regression(df, "y", names + ["y"])
    with pytest.raises(StatsError, match="not among the predictors"):
        logistic_regression(df, "y", names, categorical=["other"])
    fit = logistic_regression(df.assign(sex=np.where(df.index % 2, "m", "f")), "y",
                              names + ["sex"], categorical=["sex"])
    with pytest.raises(StatsError, match="not seen when fitting"):
        fit.linear_score(df.assign(sex="x"))


# ---------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10 ** 6), perm_seed=st.integers(0, 10 ** 6),
       scale=st.floats(1e-3, 1e3))
def test_row_permutation_and_scaling(seed, perm_seed, scale):
    df, names = random_logit_data(seed, 40, 120)
    try:
        res = logistic_regression(df, "y", names)
    except StatsError:
        return  # a random draw may be separated; covered elsewhere
    shuffled = df.sample(frac=1.0, random_state=perm_seed % (2 ** 32))
    perm = logistic_regression(shuffled, "y", names)
    np.testing.assert_allclose(perm.params, res.params, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(perm.to_frame()["SE"], res.to_frame()["SE"], rtol=1e-8)
    np.testing.assert_allclose(perm.hosmer_lemeshow["chi2"], res.hosmer_lemeshow["chi2"], rtol=1e-8)
    scaled = logistic_regression(df.assign(**{names[0]: df[names[0]] * scale}), "y", names)
    np.testing.assert_allclose(scaled.params.iloc[0] * scale, res.params.iloc[0], rtol=1e-8)
    np.testing.assert_allclose(scaled.minus2ll, res.minus2ll, rtol=1e-10)

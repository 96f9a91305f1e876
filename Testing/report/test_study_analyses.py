"""Study analyses and their config: every number equals the statistic computed directly
(by ``ParaspinalFatLib.stats`` and by an independent oracle: numpy/scipy/sklearn), and the
tables follow the papers' formatting rules."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from ParaspinalFatLib import stats
from ParaspinalFatLib.errors import InputError, ParaspinalFatWarning
from ParaspinalFatLib.report.analysis_config import AnalysisConfig, load_config
from ParaspinalFatLib.report.study_analyses import (
    MINUS, add_groups, format_ci, format_interval, format_mean_sd, format_number, format_p,
    format_percent_ci, resolve_variables, run_analyses, stars, variable_label,
)

SIX = ["mf_csa_mean", "es_csa_mean", "ps_csa_mean", "mf_pdff_mean", "es_pdff_mean", "ps_pdff_mean"]


# --------------------------------------------------------------------------- data
def seed001_data(n: int = 90, seed: int = 7, repeat: int = 14):
    """One row per subject plus repeated readings (session 2) of the first ``repeat``."""
    rng = np.random.default_rng(seed)
    vbmd = rng.normal(115.0, 35.0, n).clip(35.0, 210.0)
    vbmd[:3] = [120.0, 80.0, 79.9]  # ISCD boundaries: osteopenia, osteopenia, osteoporosis
    sex = np.where(rng.random(n) < 0.5, "M", "F")
    d = pd.DataFrame({
        "subject": [f"S{i:03d}" for i in range(n)],
        "age": 90.0 - 0.3 * vbmd + rng.normal(0, 6, n),
        "sex": sex,
        "bmi": rng.normal(24.7, 3.2, n),
        "vbmd": vbmd,
    })
    for m, (c0, p0) in {"mf": (660, 17), "es": (1070, 18), "ps": (940, 5.7)}.items():
        d[f"{m}_csa_mean"] = c0 + 1.2 * (vbmd - 122) + np.where(sex == "M", 80, -80) + rng.normal(0, 100, n)
        d[f"{m}_pdff_mean"] = p0 - 0.06 * (vbmd - 122) + rng.normal(0, 3, n)
    first = d.assign(session="1")
    second = d.iloc[:repeat].copy()
    for c in SIX:
        second[c] = second[c] * (1.0 + rng.normal(0, 0.05, repeat))
    second["session"] = "2"
    readings = pd.concat([first, second], ignore_index=True)
    readings = readings[["subject", "session"] + [c for c in d.columns if c != "subject"]]
    return d, readings


def seed002_data(n: int = 100, seed: int = 3):
    rng = np.random.default_rng(seed)
    lovett = rng.choice([1, 2, 3, 4, 5], n, p=[0.05, 0.1, 0.16, 0.35, 0.34])
    poor = lovett < 4
    d = pd.DataFrame({"subject": [f"T{i:03d}" for i in range(n)], "age": rng.normal(65.5, 1.3, n),
                      "sex": rng.choice(["male", "female"], n), "bmi": rng.normal(23.5, 1.0, n),
                      "tscore": rng.normal(-2.9, 0.5, n), "lovett": lovett})
    d["am_fa_mean"] = 0.35 - 0.03 * poor + rng.normal(0, 0.05, n)
    d["al_fa_mean"] = 0.33 - 0.02 * poor + rng.normal(0, 0.05, n)
    d["am_adc_mean"] = 1.5 - 0.08 * poor + rng.normal(0, 0.15, n)
    agree = rng.random(n) < 0.85
    d["lovett_rater1"] = lovett
    d["lovett_rater2"] = np.where(agree, lovett, np.clip(lovett + rng.choice([-1, 1], n), 0, 5))
    return d


def iscd(v):
    return "Normal" if v > 120 else ("Osteoporosis" if v < 80 else "Osteopenia")


@pytest.fixture(scope="module")
def s001():
    d, readings = seed001_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParaspinalFatWarning)
        res = run_analyses(d, load_config(), readings=readings)
    return d, readings, res


@pytest.fixture(scope="module")
def s002():
    d = seed002_data()
    cfg = load_config("seed002").with_changes(variables=("am_fa_mean", "al_fa_mean", "am_adc_mean"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParaspinalFatWarning)
        res = run_analyses(d, cfg)
    return d, res


def cell(table, row_label, column_prefix):
    row = table[table.iloc[:, 0] == row_label]
    assert len(row) == 1, (row_label, list(table.iloc[:, 0]))
    cols = [column_prefix] if column_prefix in table.columns else [
        c for c in table.columns if str(c).startswith(column_prefix)]
    assert len(cols) == 1, (column_prefix, list(table.columns))
    return row[cols[0]].iloc[0]


# --------------------------------------------------------------------------- formatting
def test_formatting_rules_of_the_papers():
    assert format_mean_sd(682.4949, 121.5811) == "682.49 ± 121.58"
    assert format_mean_sd(-2.904, 0.4349) == f"{MINUS}2.90 ± 0.43"
    assert format_p(0.0004) == "< 0.001**"
    assert format_p(1e-30) == "< 0.001**"
    assert format_p(0.006) == "0.006**"
    assert format_p(0.0101) == "0.010*"
    assert format_p(0.0496) == "0.050*"  # significant although it rounds to .050 (SPSS prints .050)
    assert format_p(0.05) == "0.050"
    assert format_p(0.172) == "0.172"
    assert format_p(float("nan")) == "n/a"
    assert (stars(0.009), stars(0.01), stars(0.049), stars(0.05)) == ("**", "*", "*", "")
    assert format_number(-0.694) == f"{MINUS}0.694"
    assert format_number(-0.0001) == f"{MINUS}1.00e{MINUS}04"
    assert format_number(-0.0004, 3) == f"{MINUS}4.00e{MINUS}04"
    assert format_number(-0.0006, 3) == f"{MINUS}0.001"
    assert format_number(3.02e12) == "3.02e12"
    assert format_number(0.0) == "0.000" and format_number(-0.0) == "0.000"
    assert format_ci(0.885, 0.772, 0.943) == "0.885 (0.772–0.943)"
    assert format_interval(-0.9, -0.8) == f"{MINUS}0.900, {MINUS}0.800"
    assert format_percent_ci(0.902, 0.812, 0.952) == "90.2% (81.2%–95.2%)"
    # no table cell may start with a spreadsheet formula character
    assert not format_number(-5.0).startswith("-")


def test_variable_labels():
    assert variable_label("mf_pdff_mean") == "MF PDFF (%)"
    assert variable_label("ps_csa_mean") == "PS CSA (mm²)"
    assert variable_label("vbmd") == "vBMD (mg/cm³)"
    cb = pd.DataFrame({"variable": ["vl_fa_mean"], "label": ["Vastus lateralis FA"], "unit": [""]})
    assert variable_label("vl_fa_mean", cb) == "Vastus lateralis FA"
    assert variable_label("unknown_col") == "unknown_col"


def test_auto_variables_are_the_six_in_paper_order_or_the_codebook_ones():
    d, _ = seed001_data(20)
    shuffled = d[["subject", "ps_pdff_mean", "mf_csa_mean", "age", "es_pdff_mean", "ps_csa_mean",
                  "mf_pdff_mean", "es_csa_mean"]]
    assert resolve_variables(shuffled) == SIX
    other = pd.DataFrame({"subject": ["a"], "vl_fa_mean": [0.3], "vl_fa_L4_5_left": [0.3], "age": [3]})
    cb = pd.DataFrame({"variable": ["vl_fa_mean", "vl_fa_L4_5_left", "age"], "kind": ["muscle", "muscle", "clinical"],
                       "level": ["mean", "L4/5", ""], "side": [np.nan, "left", np.nan]})
    assert resolve_variables(other, "auto", cb) == ["vl_fa_mean"]
    assert resolve_variables(other, ["age"]) == ["age"]


# --------------------------------------------------------------------------- groups
def test_iscd_groups_with_inclusive_boundaries_and_labels():
    d, _ = seed001_data(30)
    cfg = load_config()
    out, order = add_groups(d, cfg.groups)
    assert order == ["Normal", "Osteopenia", "Osteoporosis"]
    assert list(out["vbmd_group"].iloc[:3]) == ["Osteopenia", "Osteopenia", "Osteoporosis"]
    assert list(out["vbmd_group"].astype(str)) == [iscd(v) for v in d["vbmd"]]


def test_cutoff_groups_put_the_cutoff_value_in_the_upper_group():
    cfg = AnalysisConfig()
    from ParaspinalFatLib.report.analysis_config import GroupsConfig
    g = GroupsConfig(enabled=True, column="x", source="cutoff", cutoff=(4.0, 10.0), labels=("lo", "mid", "hi"),
                     name="g")
    data = pd.DataFrame({"x": [3.9, 4.0, 9.99, 10.0, np.nan]})
    out, order = add_groups(data, g)
    assert order == ["lo", "mid", "hi"]
    assert list(out["g"].astype(object).where(out["g"].notna(), None)) == ["lo", "mid", "mid", "hi", None]
    assert cfg.groups.enabled is False


# --------------------------------------------------------------------------- seed 001
def test_group_table_means_and_counts_equal_numpy(s001):
    d, _, res = s001
    t = res.tables["groups"]
    g = d["vbmd"].map(iscd)
    for var in ("mf_csa_mean", "age"):
        for grp in ("Normal", "Osteopenia", "Osteoporosis"):
            x = d.loc[g == grp, var].to_numpy()
            expect = format_mean_sd(x.mean(), x.std(ddof=1), 2)
            label = variable_label(var)
            assert cell(t, label, f"{grp} (N = {len(x)})") == expect
            assert res.value("descriptives", var, grp, "mean") == pytest.approx(x.mean(), rel=1e-13)
            assert res.value("descriptives", var, grp, "sd") == pytest.approx(x.std(ddof=1), rel=1e-12)
    x = d["mf_csa_mean"].to_numpy()
    assert cell(t, "MF CSA (mm²)", f"All (N = {len(d)})") == format_mean_sd(x.mean(), x.std(ddof=1))
    males = [(g == grp)[d["sex"] == "M"].sum() for grp in ("Normal", "Osteopenia", "Osteoporosis")]
    females = [(g == grp)[d["sex"] == "F"].sum() for grp in ("Normal", "Osteopenia", "Osteoporosis")]
    row = t[t["Variable"] == "Sex (F/M)"].iloc[0]
    assert row.iloc[1] == f"{females[0]}/{males[0]}" and row.iloc[3] == f"{females[2]}/{males[2]}"
    chi2, p, dof, _ = sps.chi2_contingency(np.array([females, males]), correction=False)
    assert res.value("chi_square", "sex", "vbmd_group", "chi2") == pytest.approx(chi2, rel=1e-10)
    assert row["p"] == format_p(p)


def test_anova_and_lsd_equal_direct_calls_and_scipy(s001):
    d, _, res = s001
    grouped = d.assign(vbmd_group=stats.vbmd_category(d["vbmd"]))
    direct = stats.anova_oneway(grouped, "mf_pdff_mean", "vbmd_group", posthoc="lsd")
    assert res.value("anova", "mf_pdff_mean", "between", "F") == direct.F
    assert res.value("anova", "mf_pdff_mean", "between", "p") == direct.p
    g = d["vbmd"].map(iscd)
    arrays = [d.loc[g == k, "mf_pdff_mean"].to_numpy() for k in ("Normal", "Osteopenia", "Osteoporosis")]
    f, p = sps.f_oneway(*arrays)
    assert res.value("anova", "mf_pdff_mean", "between", "F") == pytest.approx(f, rel=1e-10)
    assert res.value("anova", "mf_pdff_mean", "between", "p") == pytest.approx(p, rel=1e-8)
    # LSD: unadjusted t on the pooled MS_within, df = N - k (hand formula)
    ns = [a.size for a in arrays]
    mse = sum(((a - a.mean()) ** 2).sum() for a in arrays) / (sum(ns) - 3)
    diff = arrays[1].mean() - arrays[2].mean()
    t = diff / math.sqrt(mse * (1 / ns[1] + 1 / ns[2]))
    p_lsd = 2 * sps.t.sf(abs(t), sum(ns) - 3)
    got = res.value("posthoc_lsd", "mf_pdff_mean", "Osteopenia vs Osteoporosis", "p")
    assert got == pytest.approx(p_lsd, rel=1e-9)
    row = direct.posthoc[(direct.posthoc["group_a"] == "osteopenia") & (direct.posthoc["group_b"] == "osteoporosis")]
    assert got == float(row["p"].iloc[0])
    assert cell(res.tables["posthoc"], "MF PDFF (%)", "Osteopenia vs Osteoporosis") == format_p(p_lsd)
    assert cell(res.tables["groups"], "MF PDFF (%)", "p") == format_p(p)
    assert res.figure_data["posthoc"].shape[0] == 3 * 9  # 3 pairs x (3 clinical + 6 muscle)


def test_by_sex_is_the_student_t_test(s001):
    d, _, res = s001
    m = d.loc[d["sex"] == "M", "ps_csa_mean"]
    f = d.loc[d["sex"] == "F", "ps_csa_mean"]
    t, p = sps.ttest_ind(m, f, equal_var=True)
    assert res.value("by_sex_ttest_student", "ps_csa_mean", "M vs F", "t") == pytest.approx(t, rel=1e-10)
    assert res.value("by_sex_ttest_student", "ps_csa_mean", "M vs F", "p") == pytest.approx(p, rel=1e-8)
    table = res.tables["by_sex"]
    assert list(table.columns) == ["Variable", f"M (N = {len(m)})", f"F (N = {len(f)})", "p"]
    assert cell(table, "PS CSA (mm²)", "p") == format_p(p)
    assert cell(table, "PS CSA (mm²)", "M (N") == format_mean_sd(m.mean(), m.std(ddof=1))
    assert "Student" in res.footnotes["by_sex"]


def test_welch_is_used_when_configured(s001):
    d, readings, _ = s001
    from ParaspinalFatLib.report.analysis_config import BySexConfig
    cfg = load_config().with_changes(by_sex=BySexConfig(enabled=True, column="sex", test="welch"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParaspinalFatWarning)
        res = run_analyses(d, cfg)
    m = d.loc[d["sex"] == "M", "mf_pdff_mean"]
    f = d.loc[d["sex"] == "F", "mf_pdff_mean"]
    t, p = sps.ttest_ind(m, f, equal_var=False)
    assert res.value("by_sex_ttest_welch", "mf_pdff_mean", "M vs F", "p") == pytest.approx(p, rel=1e-8)
    assert "Welch" in res.footnotes["by_sex"]


def test_correlations_equal_pearsonr(s001):
    d, _, res = s001
    r, p = sps.pearsonr(d["es_pdff_mean"], d["vbmd"])
    assert res.value("correlation", "es_pdff_mean", "vbmd", "r") == pytest.approx(r, rel=1e-12)
    assert res.value("correlation", "es_pdff_mean", "vbmd", "p") == pytest.approx(p, rel=1e-8)
    direct = stats.correlation(d, "es_pdff_mean", "vbmd")
    assert res.value("correlation", "es_pdff_mean", "vbmd", "ci_low") == direct.ci_low
    t = res.tables["correlations"]
    assert cell(t, "ES PDFF (%)", "r") == format_number(r) + stars(p)
    assert list(t["Variable"]) == ["Age (years)", "BMI (kg/m²)"] + [variable_label(v) for v in SIX]


def test_regression_equals_least_squares(s001):
    d, _, res = s001
    X = np.column_stack([np.ones(len(d)), (d["sex"] == "M").astype(float), d["age"]] + [d[v] for v in SIX])
    b, *_ = np.linalg.lstsq(X, d["vbmd"].to_numpy(), rcond=None)
    assert res.value("regression", "vbmd", "age", "B") == pytest.approx(b[2], rel=1e-9)
    assert res.value("regression", "vbmd", "sex[M]", "B") == pytest.approx(b[1], rel=1e-9)
    assert res.value("regression", "vbmd", "mf_pdff_mean", "B") == pytest.approx(b[6], rel=1e-9)
    resid = d["vbmd"].to_numpy() - X @ b
    r2 = 1 - (resid ** 2).sum() / ((d["vbmd"] - d["vbmd"].mean()) ** 2).sum()
    assert res.value("regression_model", "vbmd", "model", "r_squared") == pytest.approx(r2, rel=1e-10)
    assert res.value("regression_model", "vbmd", "model", "r") == pytest.approx(math.sqrt(r2), rel=1e-10)
    n, k = len(d), 8
    adj = 1 - (1 - r2) * (n - 1) / (n - k - 1)
    assert res.value("regression_model", "vbmd", "model", "adj_r_squared") == pytest.approx(adj, rel=1e-10)
    direct = stats.linear_regression(d, "vbmd", ["sex", "age"] + SIX, categorical={"sex": None})
    coef = direct.coefficients.set_index("term")
    assert res.value("regression", "vbmd", "ps_csa_mean", "beta") == coef.loc["ps_csa_mean", "beta"]
    t = res.tables["regression"]
    assert cell(t, "Age (years)", "B") == format_number(b[2])
    assert cell(t, "Sex (M vs F)", "p") == format_p(coef.loc["sex[M]", "p"])
    assert f"R² = {format_number(r2)}" in res.footnotes["regression"]


def test_icc_between_sessions_equals_hand_formula(s001):
    d, readings, res = s001
    wide = readings.pivot(index="subject", columns="session", values="mf_csa_mean").dropna()
    y = wide.to_numpy()
    n, k = y.shape
    grand = y.mean()
    msr = k * ((y.mean(axis=1) - grand) ** 2).sum() / (n - 1)
    msc = n * ((y.mean(axis=0) - grand) ** 2).sum() / (k - 1)
    mse = ((y - y.mean(axis=1, keepdims=True) - y.mean(axis=0) + grand) ** 2).sum() / ((n - 1) * (k - 1))
    icc_a1 = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    assert n == 14
    assert res.value("icc", "mf_csa_mean", "between sessions", "icc") == pytest.approx(icc_a1, rel=1e-10)
    direct = stats.icc(wide, form="ICC2")
    assert res.value("icc", "mf_csa_mean", "between sessions", "ci_low") == direct.ci_low
    assert cell(res.tables["reproducibility"], "MF CSA (mm²)", "ICC") == format_ci(direct.icc, direct.ci_low,
                                                                                    direct.ci_high)
    assert "ICC(A,1)" in res.footnotes["reproducibility"] and "ICC(A,1)" in res.methods


def test_results_table_is_tidy_and_every_n_is_an_integer(s001):
    _, _, res = s001
    r = res.results
    assert list(r.columns) == ["analysis", "dv", "group_or_term", "statistic", "value", "n"]
    assert str(r["n"].dtype) == "Int64" and r["value"].dtype == np.float64
    assert not r.duplicated(["analysis", "dv", "group_or_term", "statistic"]).any()
    assert set(res.tables) == {"reproducibility", "groups", "posthoc", "by_sex", "correlations", "regression",
                               "regression_model"}
    assert "first reading" in res.methods and "LSD" in res.methods


# --------------------------------------------------------------------------- seed 002
def test_seed002_two_groups_t_test_logistic_roc_delong_kappa(s002):
    d, res = s002
    grp = np.where(d["lovett"] < 4, "poor", "good")
    a = d.loc[grp == "poor", "am_fa_mean"]
    b = d.loc[grp == "good", "am_fa_mean"]
    t, p = sps.ttest_ind(a, b, equal_var=True)
    assert res.value("ttest_student", "am_fa_mean", "poor vs good", "p") == pytest.approx(p, rel=1e-8)
    assert cell(res.tables["groups"], "am_fa_mean", "p") == format_p(p)
    stars_for = res.figure_data["posthoc"].set_index("variable")
    assert stars_for.loc["am_fa_mean", "p"] == res.value("ttest_student", "am_fa_mean", "poor vs good", "p")
    # FA has an SD below 0.1: the mean ± SD keeps two significant digits of the SD
    sd = d["am_fa_mean"].std(ddof=1)
    dec = max(2, math.ceil(-math.log10(sd)) + 1)
    assert cell(res.tables["groups"], "am_fa_mean", "poor") == format_mean_sd(a.mean(), a.std(ddof=1), dec)

    preds = ["am_fa_mean", "al_fa_mean", "am_adc_mean"]
    data = d.assign(function_group=grp)
    lr = stats.logistic_regression(data, "function_group", preds, positive="poor")
    coef = lr.coefficients.set_index("term")
    b_am = res.value("logistic", "function_group", "am_fa_mean", "B")
    assert b_am == coef.loc["am_fa_mean", "B"]
    assert res.value("logistic", "function_group", "am_fa_mean", "OR") == pytest.approx(math.exp(b_am), rel=1e-12)
    import statsmodels.api as sm
    fit = sm.Logit((grp == "poor").astype(float), sm.add_constant(d[preds])).fit(disp=0)
    assert b_am == pytest.approx(fit.params["am_fa_mean"], rel=1e-6)

    from sklearn.metrics import cohen_kappa_score, roc_auc_score
    auc = res.value("roc", "am_adc_mean", "function_group=poor", "auc")
    assert auc == pytest.approx(roc_auc_score(grp == "poor", -d["am_adc_mean"]), rel=1e-12)
    score = lr.linear_score(data)
    assert res.value("roc", "combined", "function_group=poor", "auc") == pytest.approx(
        roc_auc_score(grp == "poor", score), rel=1e-12)
    cmp_ = stats.roc_compare(data.assign(s=score), dv="function_group", score1="s", score2="am_fa_mean",
                             positive="poor", direction=("<", ">"))
    assert res.value("roc_compare", "combined", "combined vs am_fa_mean", "p") == pytest.approx(cmp_.p, rel=1e-12)
    assert res.value("roc_compare", "combined", "combined vs am_fa_mean", "difference") == pytest.approx(
        cmp_.difference, rel=1e-12)
    kappa = res.value("kappa", "lovett_rater1 vs lovett_rater2", "lovett_rater1 vs lovett_rater2", "kappa")
    assert kappa == pytest.approx(cohen_kappa_score(d["lovett_rater1"], d["lovett_rater2"]), rel=1e-12)
    assert set(res.tables) >= {"groups", "logistic", "logistic_model", "roc", "roc_compare", "kappa"}
    assert "posthoc" not in res.tables
    roc_t = res.tables["roc"]
    assert roc_t["Predictor"].iloc[-1] == "Combined (logistic score)"
    assert "apparent AUC" in res.footnotes["roc"]


# --------------------------------------------------------------------------- problems
def test_a_repeated_subject_is_refused():
    d, readings = seed001_data(20, repeat=3)
    with pytest.raises(InputError, match="S000.*one_per_subject"):
        run_analyses(readings, load_config())


def test_missing_columns_and_degenerate_variables_become_notes_not_numbers():
    d, _ = seed001_data(40)
    d = d.drop(columns=["bmi"])
    d["es_pdff_mean"] = 5.0  # zero variance: no ANOVA, no correlation
    with pytest.warns(ParaspinalFatWarning):
        res = run_analyses(d, load_config())
    assert any("'bmi'" in n for n in res.notes)
    assert any("es_pdff_mean" in n and "not computed" in n for n in res.notes)
    t = res.tables["groups"]
    assert "BMI (kg/m²)" not in list(t["Variable"])
    assert cell(t, "ES PDFF (%)", "p") == ""
    r = res.results
    assert not ((r["analysis"] == "anova") & (r["dv"] == "es_pdff_mean")).any()
    assert "ES PDFF (%)" not in list(res.tables["correlations"]["Variable"]) or \
        cell(res.tables["correlations"], "ES PDFF (%)", "p") == "n/a"


def test_groups_without_source_column_skip_group_tables_with_a_note():
    d, _ = seed001_data(30)
    with pytest.warns(ParaspinalFatWarning):
        res = run_analyses(d.drop(columns=["vbmd"]), load_config())
    assert "groups" not in res.tables and "regression" not in res.tables
    assert any("'vbmd'" in n for n in res.notes)
    assert "by_sex" in res.tables


# --------------------------------------------------------------------------- config
def test_packaged_configs_load():
    c1 = load_config()
    assert c1.source == "seed001" and c1.groups.source == "vbmd_iscd" and c1.anova.posthoc == "lsd"
    assert c1.by_sex.test == "student" and c1.reproducibility.form == "ICC2"
    assert c1.reproducibility.repeated == "first" and not c1.logistic.enabled
    c2 = load_config("seed002")
    assert c2.groups.source == "lovett" and c2.roc.combined and c2.logistic.positive == "poor"
    assert c2.kappa.columns == ("lovett_rater1", "lovett_rater2") and not c2.regression.enabled


def test_unknown_key_is_named_with_its_file(tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text('[groups]\ncolumn = "vbmd"\ncolum = "x"\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"typo\.toml.*'groups\.colum'.*did you mean 'column'"):
        load_config(path)
    path.write_text('titel = "x"\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"typo\.toml.*'titel'"):
        load_config(path)


@pytest.mark.parametrize("text, match", [
    ('[anova]\nposthoc = "scheffe"\n', "anova.posthoc"),
    ('[reproducibility]\nrepeated = "last"\n', "reproducibility.repeated"),
    ('[groups]\nfrom = "cutoff"\ncolumn = "x"\ncutoff = [3]\nlabels = ["a"]\n', "labels"),
    ('[by_sex]\ntest = 3\n', "by_sex.test"),
    ('[roc]\ndv = "g"\n', "roc.positive"),
    ("confidence = 95\n", "confidence"),
    ("[groups\n", "not valid TOML"),
])
def test_bad_values_are_refused(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=match):
        load_config(path)


def test_base_config_is_merged_key_by_key(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('base = "seed001"\ntitle = "Mine"\n[by_sex]\ntest = "welch"\n'
                    '[reproducibility]\nform = "ICC(C,1)"\n', encoding="utf-8")
    c = load_config(path)
    assert c.title == "Mine" and c.by_sex.test == "welch" and c.by_sex.column == "sex"
    assert c.reproducibility.form == "ICC3" and c.groups.name == "vbmd_group"
    assert "base seed001" in c.source


def test_missing_file_and_unknown_name():
    with pytest.raises(InputError, match="not a packaged config"):
        load_config("seed999")
    with pytest.raises(InputError, match="file not found"):
        load_config("/nonexistent/analysis.toml")


# --------------------------------------------------------------------------- "auto" and what it leaves out
def _muscle_codebook(variables):
    """codebook.csv rows of muscle means (level mean, no side): variable -> (metric, map_name)."""
    return pd.DataFrame([{"variable": v, "label": v, "unit": "", "kind": "muscle", "muscle": v.split("_")[0],
                          "metric": metric, "level": "mean", "side": np.nan, "map_name": map_name}
                         for v, (metric, map_name) in variables.items()])


@pytest.mark.parametrize("kind, variables, left_out", [
    ("pdff", {"mf_csa_mean": ("csa", ""), "mf_pdff_mean": ("pdff", ""), "mf_fatpct_mean": ("fatpct", "")}, []),
    ("dixon", {"mf_csa_mean": ("csa", ""), "mf_ff_mean": ("ff", ""), "mf_fatpct_mean": ("fatpct", ""),
               "mf_fatcsa_mean": ("fatcsa", "")}, ["mf_ff_mean", "mf_fatpct_mean"]),
    ("ct", {"ps_csa_mean": ("csa", ""), "ps_hu_mean": ("hu", ""), "ps_fatpct_mean": ("fatpct", "")},
     ["ps_hu_mean", "ps_fatpct_mean"]),
    ("t2", {"es_csa_mean": ("csa", ""), "es_fatpct_mean": ("fatpct", ""), "es_kjaer_mean": ("kjaer", "")},
     ["es_fatpct_mean"]),
    ("named maps", {"mf_csa_mean": ("csa", ""), "mf_fa_mean": ("mean", "fa"), "mf_adc_mean": ("mean", "adc")},
     ["mf_fa_mean", "mf_adc_mean"]),
])
def test_auto_on_areas_only_names_the_fat_and_map_measures_it_left_out(kind, variables, left_out):
    rng = np.random.default_rng(4)
    n = 24
    data = pd.DataFrame({"subject": [f"S{i:02d}" for i in range(n)], "vbmd": rng.normal(120, 30, n),
                         "sex": rng.choice(["M", "F"], n), "age": rng.normal(60, 8, n)})
    for v in variables:
        data[v] = rng.normal(50, 10, n)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ParaspinalFatWarning)
        res = run_analyses(data, load_config(), codebook=_muscle_codebook(variables))
    notes = [n for n in res.notes if "fat and map measures" in n]
    if not left_out:  # a PDFF study: "auto" analyses its PDFF means, nothing to say
        assert notes == []
        return
    assert len(notes) == 1 and notes[0] in [str(w.message) for w in caught]
    analysed = [v for v in variables if variables[v][0] == "csa"]
    assert f"cross-sectional areas only ({', '.join(analysed)})" in notes[0]
    assert f"({', '.join(left_out)})" in notes[0]
    for v in variables:  # the grades and the fat/lean areas are not offered
        if v not in left_out and v not in analysed:
            assert v not in notes[0]
    # listed variables: nothing left out to report
    listed = run_analyses(data, load_config().with_changes(variables=tuple(analysed)),
                          codebook=_muscle_codebook(variables))
    assert not [n for n in listed.notes if "fat and map measures" in n]

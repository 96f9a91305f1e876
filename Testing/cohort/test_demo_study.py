"""The embedded default end to end: synthetic cohort -> cohort -> report.

The recovered group means must lie within sampling error of the values the cohort was drawn
from (seed 001's Table 2), and every number of the report must equal ParaspinalFatLib.stats
called directly on subjects.csv."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from ParaspinalFatLib import stats
from ParaspinalFatLib.cohort.runner import run_cohort
from ParaspinalFatLib.cohort.subject_tables import one_per_subject, write_subject_tables
from ParaspinalFatLib.cohort.synthetic_cohort import SEED001_TABLE2, make_synthetic_cohort
from ParaspinalFatLib.report.html_report import write_report
from report_results import result_value

VARIABLES = ["mf_csa_mean", "es_csa_mean", "ps_csa_mean", "mf_pdff_mean", "es_pdff_mean", "ps_pdff_mean"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    cohort = make_synthetic_cohort(root / "synthetic", n_subjects=45, seed=7, n_repeated=8)
    result = run_cohort(cohort.manifest, root / "study", workers=2, assemble=write_subject_tables, progress=False)
    assert result.n_failed == 0 and result.n_measured == 53
    report = write_report(root / "study")
    subjects = pd.read_csv(root / "study" / "subjects.csv", dtype={"subject": str, "session": str})
    results = pd.read_csv(report.results_csv)
    return cohort, subjects, results


def _one(subjects):
    one = one_per_subject(subjects, repeated="first", key_columns=("subject", "session"))
    one = one.copy()
    one["vbmd_group"] = list(stats.vbmd_category(one["vbmd"]))
    return one


def test_measured_values_equal_what_was_drawn(study):
    cohort, subjects, _results = study
    one = _one(subjects).set_index("subject")
    truth = cohort.truth.set_index("subject")
    for var in VARIABLES:
        measured = one.loc[truth.index, var].to_numpy(float)
        drawn = truth[var].to_numpy(float)
        tol = 1.2 if "csa" in var else 1e-3  # half a pixel (1.125 mm2); PDFF exact to float32
        assert np.max(np.abs(measured - drawn)) <= tol, var


def test_recovered_group_means_lie_within_sampling_error_of_table_2(study):
    _cohort, subjects, _results = study
    one = _one(subjects)
    groups = {"normal": "Normal", "osteopenia": "Osteopenia", "osteoporosis": "Osteoporosis"}
    checked = 0
    for key, label in groups.items():
        rows = one[one["vbmd_group"].astype(str).str.lower() == key]
        assert len(rows) >= 3
        table = SEED001_TABLE2[key] if key in SEED001_TABLE2 else SEED001_TABLE2[label]
        for var in VARIABLES + ["age", "vbmd"]:
            mean, sd = table[var] if var in table else table[var.replace("_mean", "")]
            se = sd / np.sqrt(len(rows))
            assert abs(rows[var].mean() - mean) <= 4 * se, (key, var, rows[var].mean(), mean, se)
            checked += 1
    assert checked == 24


def test_every_report_number_equals_the_statistics_called_directly(study):
    _cohort, subjects, results = study
    one = _one(subjects)
    order = ["Normal", "Osteopenia", "Osteoporosis"]
    one["vbmd_group"] = one["vbmd_group"].astype(str).str.capitalize()
    for var in ("mf_pdff_mean", "ps_csa_mean", "age"):
        res = stats.anova_oneway(one, dv=var, between="vbmd_group", order=order)
        assert result_value(results, "anova", var, "between", "F") == pytest.approx(res.F, rel=1e-9)
        assert result_value(results, "anova", var, "between", "p") == pytest.approx(res.p, rel=1e-9, abs=1e-300)
        mean = one.loc[one["vbmd_group"] == "Osteoporosis", var].mean()
        assert result_value(results, "descriptives", var, "Osteoporosis", "mean") == pytest.approx(mean, rel=1e-12)
    r = stats.correlation(one, x="mf_pdff_mean", y="vbmd")
    assert result_value(results, "correlation", "mf_pdff_mean", "vbmd", "r") == pytest.approx(r.r, rel=1e-9)
    # reproducibility: ICC(A,1) between the two sessions of the repeated subjects
    wide = subjects.pivot_table(index="subject", columns="session", values="ps_csa_mean").dropna()
    icc = stats.icc(wide, form="ICC2")
    assert result_value(results, "icc", "ps_csa_mean", "between sessions", "icc") == pytest.approx(icc.icc, rel=1e-9)
    assert 0.8 < icc.icc < 1.0

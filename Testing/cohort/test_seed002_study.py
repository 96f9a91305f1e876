"""Seed 002's design end to end on measured data: two named scalar maps per subject (FA and
ADC) -> ``run_cohort`` -> ``write_report`` with the ``seed002`` config.

The configs were otherwise tested on hand-built subject tables only. Here every checked number
of the report is recomputed from ``subjects.csv`` with other libraries: the Student t-test with
scipy, the ROC AUC and Cohen's kappa with scikit-learn, the logistic regression's B and odds
ratios with statsmodels. With ``variables = "auto"`` the report analyses the cross-sectional
areas only and says, in its notes, that the maps' muscle means were not analysed.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

pytest.importorskip("matplotlib")
scipy_stats = pytest.importorskip("scipy.stats")
metrics = pytest.importorskip("sklearn.metrics")
sm = pytest.importorskip("statsmodels.api")

from ParaspinalFatLib.cohort.runner import run_cohort  # noqa: E402
from ParaspinalFatLib.cohort.subject_tables import write_subject_tables  # noqa: E402
from ParaspinalFatLib.cohort.synthetic_cohort import make_synthetic_cohort  # noqa: E402
from ParaspinalFatLib.errors import ParaspinalFatWarning  # noqa: E402
from ParaspinalFatLib.report.html_report import write_report  # noqa: E402
from report_results import result_value  # noqa: E402

LISTED = ["mf_fa_mean", "es_fa_mean", "mf_adc_mean"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("seed002")
    cohort = make_synthetic_cohort(root / "synthetic", n_subjects=36, seed=11, n_repeated=0)
    base = cohort.manifest.parent
    rng = np.random.default_rng(2)
    rows = []
    for _, r in pd.read_csv(cohort.manifest, dtype={"subject": str}).iterrows():
        pdff = sitk.ReadImage(str(base / r["image"]))
        values = sitk.GetArrayFromImage(pdff).astype(np.float64)
        lovett = int(rng.choice([1, 2, 3, 4, 5], p=[0.1, 0.15, 0.2, 0.3, 0.25]))
        poor = lovett < 4
        common = {"subject": r["subject"], "segmentation": str(base / r["segmentation"]), "map": "scalar",
                  "age": r["age"], "sex": r["sex"], "bmi": r["bmi"],
                  "tscore": round(float(rng.normal(-2.5, 0.6)), 1), "lovett": lovett, "lovett_rater1": lovett,
                  "lovett_rater2": lovett if rng.random() < 0.8 else int(np.clip(lovett + rng.choice([-1, 1]), 0, 5))}
        # FA lower and ADC higher in the poor group, overlapping between subjects; voxel noise
        maps = {"fa": 0.30 - 0.01 * poor + rng.normal(0.0, 0.015) + 0.001 * values
                + rng.normal(0.0, 0.02, values.shape),
                "adc": 1.50 + 0.03 * poor + rng.normal(0.0, 0.05) - 0.004 * values
                + rng.normal(0.0, 0.05, values.shape)}
        for name, array in maps.items():
            img = sitk.GetImageFromArray(array.astype(np.float32))
            img.CopyInformation(pdff)
            path = root / f"{r['subject']}_{name}.nrrd"
            sitk.WriteImage(img, str(path), True)
            rows.append({**common, "image": str(path), "map_name": name})
    manifest = root / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    result = run_cohort(manifest, root / "study", workers=1, assemble=write_subject_tables, progress=False)
    assert result.n_failed == 0 and result.n_measured == 72
    config = root / "listed.toml"
    config.write_text('base = "seed002"\nvariables = [' + ", ".join(f'"{v}"' for v in LISTED) + "]\n"
                      "[figures]\nenabled = false\n", encoding="utf-8")
    listed = write_report(root / "study", config=config, output=root / "report_listed")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ParaspinalFatWarning)
        auto = write_report(root / "study", config="seed002", output=root / "report_auto")
    subjects = pd.read_csv(root / "study" / "subjects.csv", dtype={"subject": str})
    return subjects, pd.read_csv(listed.results_csv), auto, [str(w.message) for w in caught]


def test_the_maps_are_variables_of_each_subject(study):
    subjects, _results, _auto, _notes = study
    assert len(subjects) == 36
    for v in LISTED + ["ps_fa_mean", "es_adc_mean"]:
        assert subjects[v].notna().all(), v
    # the two maps were measured on the same ROIs: one CSA, and FA below ADC everywhere
    assert (subjects["mf_fa_mean"] < 0.5).all() and (subjects["mf_adc_mean"] > 1.0).all()


def test_t_tests_roc_kappa_and_logistic_equal_other_libraries(study):
    subjects, results, _auto, _notes = study
    poor = (subjects["lovett"] < 4).to_numpy()
    for v in LISTED:
        x = subjects[v].to_numpy(dtype=float)
        t = scipy_stats.ttest_ind(x[poor], x[~poor])  # Student (equal variances), poor vs good
        assert result_value(results, "ttest_student", v, "poor vs good", "t") == pytest.approx(t.statistic, rel=1e-9)
        assert result_value(results, "ttest_student", v, "poor vs good", "p") == pytest.approx(t.pvalue, rel=1e-9)
        # pROC's direction "auto": the cases (poor) are taken as higher when their median is
        higher = np.median(x[poor]) >= np.median(x[~poor])
        auc = metrics.roc_auc_score(poor, x if higher else -x)
        assert result_value(results, "roc", v, "function_group=poor", "auc") == pytest.approx(auc, rel=1e-12)
    kappa = metrics.cohen_kappa_score(subjects["lovett_rater1"], subjects["lovett_rater2"])
    pair = "lovett_rater1 vs lovett_rater2"
    assert result_value(results, "kappa", pair, pair, "kappa") == pytest.approx(kappa, rel=1e-12)
    fit = sm.Logit(poor.astype(float), sm.add_constant(subjects[LISTED].to_numpy(dtype=float))).fit(disp=0)
    for k, v in enumerate(LISTED, start=1):
        assert result_value(results, "logistic", "function_group", v, "B") == pytest.approx(fit.params[k], rel=1e-6)
        assert result_value(results, "logistic", "function_group", v, "OR") == pytest.approx(np.exp(fit.params[k]),
                                                                                        rel=1e-6)
        assert result_value(results, "logistic", "function_group", v, "SE") == pytest.approx(fit.bse[k], rel=1e-5)


def test_auto_says_which_map_variables_it_left_out(study):
    subjects, _results, auto, caught = study
    analysed = set(pd.read_csv(auto.results_csv)["dv"])
    assert {"mf_csa_mean", "es_csa_mean", "ps_csa_mean"} <= analysed
    assert not analysed & {"mf_fa_mean", "mf_adc_mean"}
    note = [n for n in auto.notes if "fat and map measures" in n]
    assert len(note) == 1 and note[0] in caught
    for v in ("mf_adc_mean", "mf_fa_mean", "es_adc_mean", "es_fa_mean", "ps_adc_mean", "ps_fa_mean"):
        assert v in note[0], v
    assert "cross-sectional areas only (mf_csa_mean, es_csa_mean, ps_csa_mean)" in note[0]
    assert ('variables = ["mf_adc_mean", "mf_fa_mean"]' in note[0]
            or 'variables = ["mf_fa_mean", "mf_adc_mean"]' in note[0])
    html = auto.html.read_text(encoding="utf-8")
    assert "fat and map measures of the muscles" in html

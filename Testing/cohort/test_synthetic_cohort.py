"""The synthetic demo cohort: files that measure back to the values they were drawn from.

Independent checks: every case is measured by the real pipeline
(``ParaspinalFatLib.measure``) reading the written files; CSA must equal the
drawn value to within half a pixel area (the ROI is the ``round(CSA / pixel
area)`` voxels of an ellipse), mean PDFF to 1e-3 % (float32 storage); groups
are recovered from vBMD with ``stats.vbmd_category``; group means of a
383-subject cohort must lie within 3 standard errors of seed 001 Table 2; the
Table 2 transcription itself is checked against the paper's "All" column.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from ParaspinalFatLib import measure, stats
from ParaspinalFatLib.cohort import synthetic_cohort as sc
from ParaspinalFatLib.cohort.synthetic_cohort import (
    GROUPS, SEED001_TABLE2, VALUE_RANGES, draw_subjects, make_synthetic_cohort,
)
from ParaspinalFatLib.errors import InputError

ABBR = {"multifidus": "mf", "erector_spinae": "es", "psoas": "ps"}
MUSCLE_VARS = ["mf_csa", "es_csa", "ps_csa", "mf_pdff", "es_pdff", "ps_pdff"]
PIXEL_AREA = 1.5 * 1.5


def _measure_manifest(folder: Path, manifest: pd.DataFrame, declare_scale: bool = True) -> pd.DataFrame:
    """Measure every manifest row; per-level rows with the drawn-value column names attached."""
    tables = []
    for _, row in manifest.iterrows():
        options = {"pdff_scale": row["pdff_scale"]} if declare_scale else {}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = measure(str(folder / row["image"]), str(folder / row["segmentation"]),
                          map_kind=row["map"], subject=row["subject"], **options)
        if declare_scale:
            assert [str(w.message) for w in caught] == []  # clean inputs: no warning at all
        levels = res.levels.copy()
        levels["session"] = int(row["session"])
        tables.append(levels)
    out = pd.concat(tables, ignore_index=True)
    tag = out["level"].str.replace("/", "_", regex=False)
    prefix = out["muscle"].map(ABBR)
    out["csa_col"] = prefix + "_csa_" + tag + "_" + out["side"]
    out["pdff_col"] = prefix + "_pdff_" + tag + "_" + out["side"]
    return out


def _drawn(truth: pd.DataFrame, levels: pd.DataFrame, column: str) -> np.ndarray:
    t = truth.set_index("subject")
    return np.array([t.at[s, c] for s, c in zip(levels["subject"], levels[column])], dtype=float)


@pytest.fixture(scope="module")
def cohort60(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic60")
    cohort = make_synthetic_cohort(folder, 60, seed=11, n_repeated=30)
    manifest = pd.read_csv(cohort.manifest, dtype={"subject": str})
    levels = _measure_manifest(cohort.folder, manifest)
    return cohort, manifest, levels


@pytest.fixture(scope="module")
def cohort383(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic383")
    return make_synthetic_cohort(folder, 383, seed=5, n_repeated=30)


# --------------------------------------------------------------------------- Table 2 transcription
def test_table2_transcription_reproduces_the_papers_all_column():
    # Table 2 "All (N = 383)": 190/193 M/F, mean +- SD of the whole cohort
    paper_all = {"age": (51.69, 11.06), "bmi": (24.68, 3.23), "vbmd": (122.08, 38.69),
                 "mf_csa": (661.29, 130.82), "es_csa": (1069.95, 270.82), "ps_csa": (942.14, 335.74),
                 "mf_pdff": (17.63, 8.74), "es_pdff": (18.13, 7.95), "ps_pdff": (5.74, 2.21)}
    n = np.array([SEED001_TABLE2[g]["n"] for g in GROUPS])
    assert n.tolist() == [191, 129, 63]
    assert sum(SEED001_TABLE2[g]["male"] for g in GROUPS) == 190
    assert sum(SEED001_TABLE2[g]["female"] for g in GROUPS) == 193
    for g in GROUPS:
        assert SEED001_TABLE2[g]["male"] + SEED001_TABLE2[g]["female"] == SEED001_TABLE2[g]["n"]
    for var, (mean_all, sd_all) in paper_all.items():
        mu = np.array([SEED001_TABLE2[g][var][0] for g in GROUPS])
        sd = np.array([SEED001_TABLE2[g][var][1] for g in GROUPS])
        grand = (n * mu).sum() / n.sum()
        pooled = np.sqrt((((n - 1) * sd ** 2).sum() + (n * (mu - grand) ** 2).sum()) / (n.sum() - 1))
        assert grand == pytest.approx(mean_all, abs=0.01), var
        assert pooled == pytest.approx(sd_all, abs=0.01), var
    with pytest.raises(TypeError):
        SEED001_TABLE2["normal"]["age"] = (0.0, 1.0)  # read-only


# --------------------------------------------------------------------------- files and manifest
def test_manifest_rows_paths_and_clinical_columns(cohort60):
    cohort, manifest, _ = cohort60
    truth = cohort.truth
    assert list(manifest.columns) == ["subject", "session", "image", "segmentation", "map", "pdff_scale",
                                      "age", "sex", "bmi", "vbmd"]
    assert cohort.n_subjects == len(truth) == 60
    assert len(manifest) == 60 + 30
    assert truth["repeated"].sum() == 30
    assert set(manifest.loc[manifest["session"] == 2, "subject"]) == set(truth.loc[truth["repeated"], "subject"])
    assert (manifest.groupby("subject")["session"].apply(sorted).map(tuple).isin([(1,), (1, 2)])).all()
    assert (manifest["map"] == "pdff").all() and (manifest["pdff_scale"] == "0-100").all()
    for col in ("image", "segmentation"):
        assert not manifest[col].map(lambda p: Path(p).is_absolute()).any()
        assert manifest[col].map(lambda p: (cohort.folder / p).is_file()).all()
    written = sorted(p.name for p in (cohort.folder / "cases_input").iterdir())
    assert len(written) == 60 + 90 and not [n for n in written if n.startswith(".")]  # no temporary left
    # a second reading re-draws the ROIs on the same image
    assert manifest.groupby("subject")["image"].nunique().max() == 1
    assert manifest["segmentation"].is_unique
    merged = manifest.merge(truth, on="subject", suffixes=("", "_truth"))
    for col in ("age", "bmi", "vbmd"):
        np.testing.assert_allclose(merged[col], merged[f"{col}_truth"], rtol=0, atol=1e-9)
    assert (merged["sex"] == merged["sex_truth"]).all() and set(merged["sex"]) == {"M", "F"}
    on_disk = pd.read_csv(cohort.folder / "truth.csv", dtype={"subject": str})
    pd.testing.assert_frame_equal(on_disk, truth, check_dtype=False, rtol=1e-12)
    assert cohort.truth_path == cohort.folder / "truth.csv"


def test_truth_subject_values_are_the_mean_of_levels_and_sides(cohort60):
    truth = cohort60[0].truth
    for var in MUSCLE_VARS:
        per_roi = truth[[f"{var}_{lv}_{side}" for lv in ("L3_4", "L4_5", "L5_S1") for side in ("left", "right")]]
        np.testing.assert_allclose(per_roi.mean(axis=1), truth[f"{var}_mean"], rtol=1e-12)
        ratio = per_roi.to_numpy() / truth[[f"{var}_mean"]].to_numpy()
        assert np.all(np.abs(ratio - 1) <= 0.06 + 1e-12)  # +-3 % each, centred: within +-6 %
        assert np.abs(ratio - 1).max() > 0.01  # the levels and sides do differ


def test_image_grid_and_rois(cohort60):
    cohort, manifest, levels = cohort60
    image = sitk.ReadImage(str(cohort.folder / manifest["image"].iloc[0]))
    assert image.GetSize() == (200, 136, 3)
    assert image.GetSpacing() == (1.5, 1.5, 4.0)
    assert image.GetPixelID() == sitk.sitkFloat32
    s1 = levels[levels["session"] == 1]
    assert len(s1) == 60 * 18
    assert s1.groupby("subject").size().eq(18).all()
    assert set(s1["segment"].str.replace(r"_[LR]_", "_", regex=True).unique()) == {
        f"{m}_{lv}" for m in ("MF", "ES", "PS") for lv in ("L3/4", "L4/5", "L5/S1")}
    # L3/4 is the cranial slice (LPS +z superior), the levels on their own slices
    assert s1.groupby("level")["slice_index"].unique().map(tuple).to_dict() == {
        "L3/4": (2,), "L4/5": (1,), "L5/S1": (0,)}
    assert (s1["level_source"] == "segment_name").all()
    np.testing.assert_allclose(s1["pixel_area_mm2"], PIXEL_AREA)


# --------------------------------------------------------------------------- measured = drawn
def test_measured_csa_matches_the_drawn_csa_within_half_a_pixel(cohort60):
    cohort, _, levels = cohort60
    s1 = levels[levels["session"] == 1]
    drawn = _drawn(cohort.truth, s1, "csa_col")
    err = np.abs(s1["csa_mm2"].to_numpy() - drawn)
    # bound: |measured - drawn| <= pixel area / 2 (the ROI holds round(CSA / pixel area) voxels),
    # far tighter than a pixel ring (perimeter x pixel side, ~100 mm2 here)
    assert err.max() <= PIXEL_AREA / 2 + 1e-9
    assert err.max() > 0.5  # the drawn CSA is continuous, the grid is not
    np.testing.assert_allclose(s1["csa_mm2"], s1["n_voxels"] * PIXEL_AREA, rtol=1e-12)


def test_measured_pdff_equals_the_drawn_pdff(cohort60):
    cohort, _, levels = cohort60
    s1 = levels[levels["session"] == 1]
    drawn = _drawn(cohort.truth, s1, "pdff_col")
    np.testing.assert_allclose(s1["fat_fraction_pct"], drawn, rtol=0, atol=1e-3)
    np.testing.assert_allclose(s1["mean"], drawn, rtol=0, atol=1e-3)


def test_fat_voxel_share_follows_the_pdff(cohort60):
    _, _, levels = cohort60
    s1 = levels[levels["session"] == 1]
    p = s1["fat_fraction_pct"].to_numpy()
    share = s1["fat_area_ratio"].to_numpy()
    # fat voxels hold 60-95 %, lean voxels stay below 12 %: p/60 >= share >= (p - 12)/(95 - 12)
    assert np.all(share <= p / 60.0 + 1e-12)
    assert np.all(share >= (p - 12.0) / 83.0 - 1e-12)
    assert np.all(share[p >= 5.0] > 0)
    assert stats.correlation(pd.DataFrame({"p": p, "share": share}), "p", "share").r > 0.95


def test_groups_are_recovered_from_vbmd(cohort60):
    cohort, manifest, _ = cohort60
    truth = cohort.truth
    recovered = stats.vbmd_category(truth["vbmd"])
    assert (recovered.astype(str) == truth["group"]).all()
    from_manifest = stats.vbmd_category(manifest["vbmd"]).astype(str)
    assert (from_manifest.to_numpy() == manifest.merge(truth, on="subject")["group"].to_numpy()).all()
    sizes = truth["group"].value_counts()
    assert sizes.to_dict() == {"normal": 30, "osteopenia": 20, "osteoporosis": 10}


def test_second_reading_gives_high_but_imperfect_iccs(cohort60):
    _, _, levels = cohort60
    repeated = levels[levels["subject"].isin(levels.loc[levels["session"] == 2, "subject"])]
    for metric in ("csa_mm2", "fat_fraction_pct"):
        per_subject = repeated.groupby(["subject", "muscle", "session"])[metric].mean().unstack("session")
        for muscle in ABBR:
            wide = per_subject.xs(muscle, level="muscle")
            assert len(wide) == 30
            assert not np.allclose(wide[1], wide[2])
            value = stats.icc(wide, raters=[1, 2], form="ICC2").icc
            assert 0.8 < value < 0.999, (metric, muscle, value)


# --------------------------------------------------------------------------- a paper-sized cohort
def test_383_subjects_reproduce_table2(cohort383):
    truth = cohort383.truth
    assert truth["group"].value_counts().to_dict() == {"normal": 191, "osteopenia": 129, "osteoporosis": 63}
    sexes = truth.groupby(["group", "sex"]).size()
    for g in GROUPS:
        assert (sexes[(g, "M")], sexes[(g, "F")]) == (SEED001_TABLE2[g]["male"], SEED001_TABLE2[g]["female"])
    assert (stats.vbmd_category(truth["vbmd"]).astype(str) == truth["group"]).all()
    assert truth["age"].between(24, 76).all()
    for g, sub in truth.groupby("group"):
        for var in ["age", "bmi", "vbmd"] + MUSCLE_VARS:
            x = sub[var if var in ("age", "bmi", "vbmd") else f"{var}_mean"].to_numpy(float)
            mean, sd = SEED001_TABLE2[g][var]
            n = x.size
            assert abs(x.mean() - mean) <= 3 * sd / np.sqrt(n), (g, var, x.mean(), mean)
            # SD within 4 standard errors (delta method from the sample's 4th moment: skewed truncations)
            m4 = np.mean((x - x.mean()) ** 4)
            se_sd = np.sqrt(max(m4 - x.var() ** 2, 0) / n) / (2 * x.std())
            assert abs(x.std(ddof=1) - sd) <= 4 * se_sd, (g, var, x.std(ddof=1), sd)
            if var in VALUE_RANGES and var != "vbmd":
                low, high = VALUE_RANGES[var]
                assert x.min() >= np.floor(low) and x.max() <= np.ceil(high)
    manifest = pd.read_csv(cohort383.manifest, dtype={"subject": str})
    assert len(manifest) == 383 + 30


def test_moment_matching_removes_the_truncation_bias():
    # a plain truncation of N(154.46, 21.43) at 120 would give mean 156.9 and SD ~17.5 (normal group);
    # with 40000 subjects the standard error of the mean is ~0.15
    truth = draw_subjects(40000, seed=1, n_repeated=0)
    normal = truth.loc[truth["group"] == "normal", "vbmd"]
    assert normal.min() > 120.0
    assert normal.mean() == pytest.approx(154.46, abs=0.6)
    assert normal.std() == pytest.approx(21.43, abs=0.6)
    porosis = truth.loc[truth["group"] == "osteoporosis", "vbmd"]
    assert porosis.max() < 80.0
    assert porosis.mean() == pytest.approx(65.06, abs=0.8)
    assert porosis.std() == pytest.approx(13.07, abs=0.8)


# --------------------------------------------------------------------------- small cohorts, options, errors
def test_small_cohorts_keep_every_group():
    for n, expected in [(3, [1, 1, 1]), (10, [4, 3, 3]), (12, [5, 4, 3])]:
        truth = draw_subjects(n, seed=2)
        counts = truth["group"].value_counts().reindex(list(GROUPS)).tolist()
        assert counts == expected, (n, counts)
        assert truth["subject"].is_unique
        assert truth["repeated"].sum() == min(10, n)  # default: 10 repeated readings, at most N


def test_same_seed_same_files_other_seed_other_values(tmp_path):
    a = make_synthetic_cohort(tmp_path / "a", 4, seed=7, n_repeated=1)
    b = make_synthetic_cohort(tmp_path / "b", 4, seed=7, n_repeated=1)
    c = make_synthetic_cohort(tmp_path / "c", 4, seed=8, n_repeated=1)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    for name in sorted(p.name for p in (a.folder / "cases_input").iterdir()):
        if name.endswith("_pdff.nrrd"):
            x = sitk.GetArrayFromImage(sitk.ReadImage(str(a.folder / "cases_input" / name)))
            y = sitk.GetArrayFromImage(sitk.ReadImage(str(b.folder / "cases_input" / name)))
            np.testing.assert_array_equal(x, y)
    assert not np.allclose(a.truth["vbmd"], c.truth["vbmd"])
    pd.testing.assert_frame_equal(a.truth, draw_subjects(4, seed=7, n_repeated=1))


@pytest.mark.parametrize("scale, full", [("0-1", 1.0), ("0-1000", 1000.0)])
def test_other_storage_scales_are_detected_and_measure_the_same(tmp_path, scale, full):
    cohort = make_synthetic_cohort(tmp_path, 3, seed=4, n_repeated=0, pdff_scale=scale)
    manifest = pd.read_csv(cohort.manifest, dtype={"subject": str})
    assert (manifest["pdff_scale"] == scale).all()
    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(cohort.folder / manifest["image"].iloc[0])))
    assert 0.85 * full < arr.max() <= 0.95 * full  # subcutaneous fat ring ~90 %
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the detection warning
        levels = _measure_manifest(cohort.folder, manifest, declare_scale=False)
    assert (levels["pdff_scale"] == scale).all()
    np.testing.assert_allclose(levels["fat_fraction_pct"], _drawn(cohort.truth, levels, "pdff_col"), atol=1e-3)


def test_more_slices_put_the_levels_apart(tmp_path):
    cohort = make_synthetic_cohort(tmp_path, 3, seed=3, n_repeated=1, shape=(200, 136, 13))
    manifest = pd.read_csv(cohort.manifest, dtype={"subject": str})
    levels = _measure_manifest(cohort.folder, manifest)
    # levels at round(12 * 5/6), round(12 / 2), round(12 / 6)
    assert levels.groupby("level")["slice_index"].unique().map(tuple).to_dict() == {
        "L3/4": (10,), "L4/5": (6,), "L5/S1": (2,)}
    s1 = levels[levels["session"] == 1]
    np.testing.assert_allclose(s1["fat_fraction_pct"], _drawn(cohort.truth, s1, "pdff_col"), atol=1e-3)
    assert np.abs(s1["csa_mm2"] - _drawn(cohort.truth, s1, "csa_col")).max() <= PIXEL_AREA / 2 + 1e-9


def test_extreme_drawn_values_fit_and_measure_exactly(tmp_path, monkeypatch):
    """The largest and smallest values the generator can draw (range ends +-6 %) in the default grid."""
    real = draw_subjects(3, seed=1, n_repeated=3)
    extreme = real.copy()
    for var in MUSCLE_VARS:
        low, high = VALUE_RANGES[var]
        cols = [c for c in real.columns if c.startswith(var + "_L")]
        extreme.loc[0, cols] = high * 1.06  # every ROI at the largest size / PDFF
        extreme.loc[1, cols] = low * 0.94
        extreme.loc[2, cols] = [high * 1.06, low * 0.94] * 3
        extreme[f"{var}_mean"] = extreme[cols].mean(axis=1)
    monkeypatch.setattr(sc, "draw_subjects", lambda *a, **k: extreme.copy())
    cohort = make_synthetic_cohort(tmp_path, 3, seed=1, n_repeated=3)
    manifest = pd.read_csv(cohort.manifest, dtype={"subject": str})
    levels = _measure_manifest(cohort.folder, manifest)
    s1 = levels[levels["session"] == 1]
    assert len(s1) == 3 * 18
    np.testing.assert_allclose(s1["fat_fraction_pct"], _drawn(extreme, s1, "pdff_col"), atol=1e-3)
    assert np.abs(s1["csa_mm2"] - _drawn(extreme, s1, "csa_col")).max() <= PIXEL_AREA / 2 + 1e-9
    assert s1["csa_mm2"].max() > 2000


def test_a_grid_too_small_is_refused(tmp_path):
    with pytest.raises(InputError, match=r"do not fit in an image of shape=\(96, 96, 3\)"):
        make_synthetic_cohort(tmp_path, 6, shape=(96, 96, 3))


@pytest.mark.parametrize("kwargs, message", [
    ({"n_subjects": 2}, "n_subjects must be at least 3"),
    ({"n_subjects": 5.5}, "n_subjects must be a whole number"),
    ({"n_subjects": 5, "n_repeated": 6}, "n_repeated must be at least 0 and at most 5"),
    ({"pdff_scale": "percent"}, "pdff_scale must be one of"),
    ({"shape": (200, 136, 2)}, "too small"),
    ({"shape": (200, 136)}, "need 3 values"),
    ({"spacing": (1.5, 0.0, 4.0)}, "spacing must be 3 positive"),
])
def test_bad_arguments_are_input_errors(tmp_path, kwargs, message):
    args = {"n_subjects": 6}
    args.update(kwargs)
    n = args.pop("n_subjects")
    with pytest.raises(InputError, match=message):
        make_synthetic_cohort(tmp_path, n, **args)
    assert not (tmp_path / "manifest.csv").exists()

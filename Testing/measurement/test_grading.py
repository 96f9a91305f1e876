"""Goutallier / Kjaer grading (ParaspinalFatLib.measurement.grading).

Every expected grade below is worked out by hand from the documented cut-offs
(Goutallier, project convention: 10 / 25 / 40 / 60 %, grade g if
cutoffs[g-1] <= x < cutoffs[g]; Kjaer 2007: < 10 | 10..50 inclusive | > 50),
not by calling the code under test.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
import pytest

from ParaspinalFatLib.errors import InputError
from ParaspinalFatLib.measurement.grading import ALL_LEVELS_LABEL, GOUTALLIER_CUTOFFS, GRADE_SUMMARY_COLUMNS, KJAER_CUTOFFS, add_grades, goutallier_grade, grade_columns, grade_summary, kjaer_grade
from ParaspinalFatLib.schemas import LEVEL_COLUMNS

LOWER = "mean L3/4-L5/S1"
up = np.inf
down = -np.inf


def test_defaults_are_the_documented_ones():
    assert GOUTALLIER_CUTOFFS == (10.0, 25.0, 40.0, 60.0)
    assert KJAER_CUTOFFS == (10.0, 50.0)


# --------------------------------------------------------------------------- Goutallier boundaries
@pytest.mark.parametrize("k, cut", list(enumerate(GOUTALLIER_CUTOFFS)))
def test_goutallier_exactly_at_and_next_to_each_cutoff(k, cut):
    # cut-off k is the lower bound of grade k + 1 (closed below, open above)
    x = [np.nextafter(cut, down), cut, np.nextafter(cut, up)]
    assert goutallier_grade(x).tolist() == [k, k + 1, k + 1]


def test_goutallier_table_of_values():
    x = [0.0, 5.0, 9.999, 10.0, 24.9, 25.0, 39.99, 40.0, 50.0, 59.99, 60.0, 100.0, -2.0, 103.0]
    assert goutallier_grade(x).tolist() == [0, 0, 0, 1, 1, 2, 2, 3, 3, 3, 4, 4, 0, 4]


# --------------------------------------------------------------------------- Kjaer boundaries
def test_kjaer_exactly_at_10_and_50_and_nearest_floats():
    x = [
        np.nextafter(10.0, down), 10.0, np.nextafter(10.0, up),
        np.nextafter(50.0, down), 50.0, np.nextafter(50.0, up),
    ]
    # "< 10 %" -> 0; "10-50 %" includes both 10 and 50 -> 1; "> 50 %" starts above 50 -> 2
    assert kjaer_grade(x).tolist() == [0, 1, 1, 1, 1, 2]


def test_kjaer_table_of_values():
    assert kjaer_grade([0.0, 9.5, 30.0, 50.5, 100.0]).tolist() == [0, 0, 1, 2, 2]


# --------------------------------------------------------------------------- custom cut-offs
def test_custom_goutallier_cutoffs_boundaries():
    cut = (5.0, 15.0, 30.0, 50.0)
    x = [4.9, 5.0, 14.9, 15.0, 29.9, 30.0, 49.9, 50.0, np.nextafter(50.0, down)]
    assert goutallier_grade(x, cut).tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 3]
    # the default would give other grades for the same numbers
    assert goutallier_grade([30.0, 50.0]).tolist() == [2, 3]


def test_custom_kjaer_cutoffs_boundaries():
    # e.g. the 20 % / 50 % variant used in some lumbar trials
    cut = (20.0, 50.0)
    x = [np.nextafter(20.0, down), 20.0, 50.0, np.nextafter(50.0, up)]
    assert kjaer_grade(x, cut).tolist() == [0, 1, 1, 2]
    assert kjaer_grade([15.0], cut).tolist() == [0]


def test_cutoffs_accept_lists_and_numpy_arrays():
    assert goutallier_grade(45.0, [10, 25, 40, 60]) == 3
    assert kjaer_grade(45.0, np.array([10.0, 40.0])) == 2


# --------------------------------------------------------------------------- NaN / shapes / types
def test_nan_and_non_finite_are_missing():
    g = goutallier_grade([np.nan, np.inf, -np.inf, None, 12.0])
    k = kjaer_grade([np.nan, np.inf, -np.inf, None, 12.0])
    assert g.dtype == np.float64 and k.dtype == np.float64
    assert np.isnan(g[:4]).all() and g[4] == 1
    assert np.isnan(k[:4]).all() and k[4] == 1


def test_scalar_gives_0d_array_and_shape_is_kept():
    g = goutallier_grade(30.0)
    assert isinstance(g, np.ndarray) and g.shape == () and float(g) == 2.0
    assert np.isnan(kjaer_grade(float("nan")))
    x = np.array([[5.0, 12.0], [45.0, np.nan]])
    g2 = goutallier_grade(x)
    assert g2.shape == (2, 2)
    np.testing.assert_array_equal(g2, [[0, 1], [3, np.nan]])


def test_pandas_nullable_input():
    s = pd.Series([12.0, None, 61.0], dtype="Float64")
    np.testing.assert_array_equal(goutallier_grade(s), [1, np.nan, 4])
    np.testing.assert_array_equal(kjaer_grade(s), [1, np.nan, 2])


def test_input_not_modified():
    x = np.array([np.inf, 30.0])
    goutallier_grade(x)
    assert x[0] == np.inf


# --------------------------------------------------------------------------- cut-off errors
@pytest.mark.parametrize("grade, cut, words", [
    (goutallier_grade, (10.0, 25.0, 40.0), ["Goutallier", "expected 4", "got 3"]),
    (goutallier_grade, (10.0, 25.0, 40.0, 60.0, 80.0), ["Goutallier", "expected 4", "got 5"]),
    (goutallier_grade, (10.0, 25.0, 25.0, 60.0), ["Goutallier", "strictly increasing", "25"]),
    (goutallier_grade, (10.0, 40.0, 25.0, 60.0), ["Goutallier", "strictly increasing"]),
    (goutallier_grade, (10.0, 25.0, np.nan, 60.0), ["Goutallier", "finite"]),
    (goutallier_grade, ("a", "b", "c", "d"), ["Goutallier", "4 numbers"]),
    (goutallier_grade, 10.0, ["Goutallier", "4 numbers"]),
    (kjaer_grade, (10.0,), ["Kjaer", "expected 2", "got 1"]),
    (kjaer_grade, (50.0, 10.0), ["Kjaer", "strictly increasing"]),
    (kjaer_grade, (10.0, 10.0), ["Kjaer", "strictly increasing"]),
    (kjaer_grade, (10.0, np.inf), ["Kjaer", "finite"]),
], ids=lambda v: v.__name__ if callable(v) else None)
def test_bad_cutoffs(grade, cut, words):
    with pytest.raises(InputError) as exc:
        grade([20.0], cut)
    for w in words:
        assert w in str(exc.value)


def test_non_numeric_fat_pct():
    with pytest.raises(InputError, match="fat_pct must be numeric"):
        goutallier_grade(["twelve"])


# --------------------------------------------------------------------------- hand-built per-level table
def _row(subject, muscle, side, level, csa, fat_csa, lean_csa, ratio, ff, map_kind):
    return {
        "subject": subject, "muscle": muscle, "side": side, "level": level,
        "csa_mm2": csa, "fat_csa_mm2": fat_csa, "lean_csa_mm2": lean_csa,
        "fat_area_ratio": ratio, "fat_fraction_pct": ff, "map_kind": map_kind,
    }


nan = float("nan")

# Written by hand.  PDFF rows carry both a mean FF and a thresholded fat area.
HAND_ROWS = [
    # subject A, multifidus, PDFF map: FF graded (auto)
    _row("A", "multifidus", "left", "L3/4", 500.0, 50.0, 450.0, 0.10, 8.0, "pdff"),    # G0 K0
    _row("A", "multifidus", "right", "L3/4", 500.0, 60.0, 440.0, 0.12, 12.0, "pdff"),  # G1 K1
    _row("A", "multifidus", "left", "L4/5", 200.0, 40.0, 160.0, 0.20, 20.0, "pdff"),   # G1 K1
    _row("A", "multifidus", "right", "L4/5", 800.0, 400.0, 400.0, 0.50, 50.0, "pdff"), # G3 K1
    _row("A", "multifidus", "left", "L5/S1", 600.0, 150.0, 450.0, 0.25, 25.0, "pdff"), # G2 K1
    _row("A", "multifidus", "right", "L5/S1", 600.0, 390.0, 210.0, 0.65, 64.0, "pdff"),# G4 K2
    # subject A, psoas, T1 map (no FF): fat area % graded
    _row("A", "psoas", "left", "L4/5", 600.0, 300.0, 300.0, 0.50, nan, "t1"),          # 50 %: G3 K1
    _row("A", "psoas", "right", "L4/5", 1400.0, 50.0, 1350.0, 50.0 / 1400.0, nan, "t1"),  # 3.57 %: G0 K0
    # subject B, erector spinae, CT: L3/4 missing
    _row("B", "erector_spinae", "left", "L4/5", 1000.0, 100.0, 900.0, 0.10, nan, "ct"),   # G1 K1
    _row("B", "erector_spinae", "right", "L4/5", 1000.0, 405.0, 595.0, 0.405, nan, "ct"), # G3 K1
    _row("B", "erector_spinae", "left", "L5/S1", 1000.0, 90.0, 910.0, 0.09, nan, "ct"),   # G0 K0
    _row("B", "erector_spinae", "right", "L5/S1", nan, nan, nan, nan, nan, "ct"),          # ungraded
]


def hand_table() -> pd.DataFrame:
    df = pd.DataFrame(HAND_ROWS)
    assert set(df.columns) <= set(LEVEL_COLUMNS)
    df.index = [f"r{i}" for i in range(len(df))]  # a non-default index must survive
    return df


def test_add_grades_auto_on_hand_table():
    df = hand_table()
    before = df.copy()
    out = add_grades(df)
    pd.testing.assert_frame_equal(df, before)  # input untouched
    assert list(out.index) == list(df.index)
    assert list(out.columns[: len(df.columns)]) == list(df.columns)
    assert str(out["goutallier"].dtype) == "Int64" and str(out["kjaer"].dtype) == "Int64"
    expected_pct = [8.0, 12.0, 20.0, 50.0, 25.0, 64.0, 50.0, 100 * 50 / 1400, 10.0, 40.5, 9.0, nan]
    np.testing.assert_allclose(out["grade_fat_pct"].to_numpy(dtype=float), expected_pct, rtol=1e-12)
    assert list(out["grade_source"]) == ["fat_fraction_pct"] * 6 + ["fat_area_pct"] * 5 + [""]
    g = out["goutallier"].tolist()
    k = out["kjaer"].tolist()
    assert g[:11] == [0, 1, 1, 3, 2, 4, 3, 0, 1, 3, 0]
    assert k[:11] == [0, 1, 1, 1, 1, 2, 1, 0, 1, 1, 0]
    assert out["goutallier"].isna().tolist() == [False] * 11 + [True]
    assert out["kjaer"].isna().tolist() == [False] * 11 + [True]


def test_add_grades_explicit_sources():
    df = hand_table()
    area = add_grades(df, source="fat_area_pct")
    # PDFF rows now graded on their fat area: 10, 12, 20, 50, 25, 65 %
    np.testing.assert_allclose(area["grade_fat_pct"].to_numpy(dtype=float)[:6], [10, 12, 20, 50, 25, 65])
    assert area["goutallier"].tolist()[:6] == [1, 1, 1, 3, 2, 4]
    assert area["kjaer"].tolist()[:6] == [1, 1, 1, 1, 1, 2]
    assert set(area["grade_source"].iloc[:11]) == {"fat_area_pct"}
    ff = add_grades(df, source="fat_fraction_pct")
    assert ff["goutallier"].isna().tolist() == [False] * 6 + [True] * 6
    assert list(ff["grade_source"]) == ["fat_fraction_pct"] * 6 + [""] * 6


def test_add_grades_custom_cutoffs():
    out = add_grades(hand_table(), goutallier_cutoffs=(5, 15, 30, 50), kjaer_cutoffs=(20, 50))
    # pct 8, 12, 20, 50, 25, 64, 50, 3.57, 10, 40.5, 9
    assert out["goutallier"].tolist()[:11] == [1, 1, 2, 4, 2, 4, 4, 0, 1, 3, 1]
    assert out["kjaer"].tolist()[:11] == [0, 0, 1, 1, 1, 2, 1, 0, 0, 1, 0]


def test_add_grades_table_with_only_one_fat_column():
    df = hand_table().drop(columns=["fat_fraction_pct"])
    out = add_grades(df)  # auto: area for every row
    assert out["goutallier"].tolist()[:6] == [1, 1, 1, 3, 2, 4]
    df = hand_table().drop(columns=["fat_area_ratio"])
    out = add_grades(df)
    assert out["goutallier"].isna().sum() == 6


def test_add_grades_errors_name_the_column():
    df = hand_table()
    with pytest.raises(InputError, match="fat_fraction_pct"):
        add_grades(df.drop(columns=["fat_fraction_pct"]), source="fat_fraction_pct")
    with pytest.raises(InputError, match="fat_area_ratio"):
        add_grades(df.drop(columns=["fat_area_ratio"]), source="fat_area_pct")
    with pytest.raises(InputError, match="neither column 'fat_fraction_pct' nor 'fat_area_ratio'"):
        add_grades(df.drop(columns=["fat_fraction_pct", "fat_area_ratio"]))
    with pytest.raises(InputError, match="source must be one of auto, fat_fraction_pct, fat_area_pct"):
        add_grades(df, source="fat_ratio")
    with pytest.raises(InputError, match="Kjaer cut-offs must be strictly increasing"):
        add_grades(df, kjaer_cutoffs=(50, 10))
    with pytest.raises(InputError, match="expected 4"):
        add_grades(df, goutallier_cutoffs=(10, 50))


def test_add_grades_rejects_percent_stored_as_ratio():
    df = hand_table()
    df.loc["r8", "fat_area_ratio"] = 10.0  # 10 % written into a 0..1 column
    with pytest.raises(InputError, match=r"fat_area_ratio must be a fraction 0\.\.1.*'r8'.*percentage"):
        add_grades(df)
    # a row graded on its FF does not use the ratio, so a bad ratio there is not an error
    df = hand_table()
    df.loc["r0", "fat_area_ratio"] = 10.0
    assert add_grades(df)["goutallier"].iloc[0] == 0


@pytest.mark.parametrize("source", ["auto", "fat_area_pct", "fat_fraction_pct"])
def test_grade_columns_from_arrays_equal_add_grades(source):
    # the per-level table grades its rows from arrays: the same columns as add_grades on the table
    df = hand_table()
    cols = grade_columns(df["fat_fraction_pct"].to_numpy(), df["fat_area_ratio"].to_numpy(), source=source,
                         goutallier_cutoffs=(5, 15, 30, 50))
    expected = add_grades(df, source=source, goutallier_cutoffs=(5, 15, 30, 50))
    assert list(cols) == ["grade_fat_pct", "grade_source", "goutallier", "kjaer"]
    got = pd.DataFrame(cols, index=df.index)
    pd.testing.assert_frame_equal(got, expected[list(cols)], check_exact=True)
    with pytest.raises(InputError, match=r"fat_area_ratio must be a fraction 0\.\.1.*row 3 has 10"):
        grade_columns(np.array([nan] * 4), np.array([0.1, 0.2, 0.3, 10.0]))
    with pytest.raises(InputError, match="source must be one of"):
        grade_columns(np.zeros(1), np.zeros(1), source="ratio")


# --------------------------------------------------------------------------- grade_summary
def _get(out, subject, muscle, level, side):
    sel = out[(out["subject"] == subject) & (out["muscle"] == muscle)
              & (out["level"] == level) & (out["side"] == side)]
    assert len(sel) == 1, (subject, muscle, level, side, len(sel))
    return sel.iloc[0]


def test_grade_summary_columns_and_order():
    out = grade_summary(hand_table())
    assert list(out.columns) == GRADE_SUMMARY_COLUMNS
    a_mf = out[(out["subject"] == "A") & (out["muscle"] == "multifidus")]
    assert list(zip(a_mf["level"], a_mf["side"])) == [
        ("L3/4", "left"), ("L3/4", "right"), ("L3/4", "combined"),
        ("L4/5", "left"), ("L4/5", "right"), ("L4/5", "combined"),
        ("L5/S1", "left"), ("L5/S1", "right"), ("L5/S1", "combined"),
        (ALL_LEVELS_LABEL, "left"), (ALL_LEVELS_LABEL, "right"), (ALL_LEVELS_LABEL, "combined"),
        (LOWER, "left"), (LOWER, "right"), (LOWER, "combined"),
    ]
    assert list(out["subject"].drop_duplicates()) == ["A", "B"]


# (subject, muscle, level, side, fat %, Goutallier, Kjaer, source, n_levels) of grade_summary(hand_table())
LEVEL_GRADES_BY_HAND = [
    # L3/4: (8*500 + 12*500) / 1000 = 10.0 -> G1 (10 is the lower bound of 1), K1
    ("A", "multifidus", "L3/4", "combined", 10.0, 1, 1, "fat_fraction_pct", 1),
    # L4/5: (20*200 + 50*800) / 1000 = 44.0 -> G3 K1 (the plain mean 35 would be G2)
    ("A", "multifidus", "L4/5", "combined", 44.0, 3, 1, "fat_fraction_pct", 1),
    # L5/S1: (25*600 + 64*600) / 1200 = 44.5 -> G3 K1
    ("A", "multifidus", "L5/S1", "combined", 44.5, 3, 1, "fat_fraction_pct", 1),
    # per side values are the rows' own
    ("A", "multifidus", "L5/S1", "right", 64.0, 4, 2, "fat_fraction_pct", 1),
    # psoas L4/5: (300 + 50) / (600 + 1400) = 17.5 % -> G1 K1
    # (the mean of the side percentages, (50 + 3.57) / 2 = 26.8, would be G2)
    ("A", "psoas", "L4/5", "combined", 17.5, 1, 1, "fat_area_pct", 1),
    # erector spinae L4/5: (100 + 405) / 2000 = 25.25 % -> G2 K1
    ("B", "erector_spinae", "L4/5", "combined", 25.25, 2, 1, "fat_area_pct", 1),
    # L5/S1 right is ungraded -> combined ungraded
    ("B", "erector_spinae", "L5/S1", "combined", nan, nan, nan, "", 0),
]


@pytest.mark.parametrize("subject, muscle, level, side, pct, goutallier, kjaer, source, n_levels",
                         LEVEL_GRADES_BY_HAND, ids=lambda v: v if isinstance(v, str) else None)
def test_level_grades_by_hand(subject, muscle, level, side, pct, goutallier, kjaer, source, n_levels):
    """Combined grades of the mean fat fraction and of the fat area, and one side's own grade."""
    r = _get(grade_summary(hand_table()), subject, muscle, level, side)
    assert r["grade_fat_pct"] == pytest.approx(pct, nan_ok=True)
    assert [r["goutallier"], r["kjaer"]] == pytest.approx([goutallier, kjaer], nan_ok=True)
    assert (r["grade_source"], r["n_levels"]) == (source, n_levels)


def test_combined_uses_finite_voxel_area_when_roi_has_nan_voxels():
    rows = [
        # 100 mm2 of the left ROI are NaN voxels: fat + lean = 400 of csa 500
        _row("C", "multifidus", "left", "L4/5", 500.0, 100.0, 300.0, 0.25, nan, "t2"),
        _row("C", "multifidus", "right", "L4/5", 500.0, 100.0, 400.0, 0.20, nan, "t2"),
    ]
    out = grade_summary(pd.DataFrame(rows))
    # (100 + 100) / (400 + 500) = 22.22 %: the value of one ROI over both sides' finite voxels
    assert _get(out, "C", "multifidus", "L4/5", "combined")["grade_fat_pct"] == pytest.approx(200 / 900 * 100)
    # without fat/lean columns the weights fall back to csa_mm2: (25*500 + 20*500)/1000 = 22.5
    out = grade_summary(pd.DataFrame(rows).drop(columns=["lean_csa_mm2"]))
    assert _get(out, "C", "multifidus", "L4/5", "combined")["grade_fat_pct"] == pytest.approx(22.5)


def test_mean_grade_over_levels_by_hand():
    out = grade_summary(hand_table())
    # A multifidus Goutallier: left 0, 1, 2 ; right 1, 3, 4 ; combined 1, 3, 3
    #            Kjaer:      left 0, 1, 1 ; right 1, 1, 2 ; combined 1, 1, 1
    for level in (ALL_LEVELS_LABEL, LOWER):
        for side, g, k in (("left", 1.0, 2 / 3), ("right", 8 / 3, 4 / 3), ("combined", 7 / 3, 1.0)):
            r = _get(out, "A", "multifidus", level, side)
            assert r["goutallier"] == pytest.approx(g)
            assert r["kjaer"] == pytest.approx(k)
            assert r["n_levels"] == 3
            assert np.isnan(r["grade_fat_pct"]) and r["grade_source"] == ""


def test_lower_lumbar_mean_needs_all_three_levels():
    out = grade_summary(hand_table())
    # B erector spinae: L3/4 not measured, L5/S1 right ungraded
    r = _get(out, "B", "erector_spinae", LOWER, "left")
    assert np.isnan(r["goutallier"]) and np.isnan(r["kjaer"]) and r["n_levels"] == 2
    r = _get(out, "B", "erector_spinae", ALL_LEVELS_LABEL, "left")  # grades 1, 0
    assert (r["goutallier"], r["kjaer"], r["n_levels"]) == (0.5, 0.5, 2)
    r = _get(out, "B", "erector_spinae", ALL_LEVELS_LABEL, "right")  # only L4/5: G3 K1
    assert (r["goutallier"], r["kjaer"], r["n_levels"]) == (3.0, 1.0, 1)
    r = _get(out, "B", "erector_spinae", LOWER, "right")
    assert np.isnan(r["goutallier"]) and r["n_levels"] == 1
    # A psoas: only L4/5 -> lower-lumbar mean NaN, mean over levels = that level
    r = _get(out, "A", "psoas", LOWER, "combined")
    assert np.isnan(r["goutallier"]) and r["n_levels"] == 1
    assert _get(out, "A", "psoas", ALL_LEVELS_LABEL, "left")["goutallier"] == 3.0


def test_no_lower_lumbar_row_without_lower_lumbar_levels():
    rows = [_row("D", "multifidus", "left", "L1/2", 500.0, 50.0, 450.0, 0.1, nan, "ct")]
    out = grade_summary(pd.DataFrame(rows))
    assert list(out["level"]) == ["L1/2", ALL_LEVELS_LABEL]


def test_grade_summary_mixed_sources_sideless_and_duplicate_rois():
    rows = [
        # left from a PDFF map, right only from a T1 map: no common source -> no combined grade
        _row("E", "multifidus", "left", "L4/5", 500.0, 50.0, 450.0, 0.10, 15.0, "pdff"),
        _row("E", "multifidus", "right", "L4/5", 500.0, 100.0, 400.0, 0.20, nan, "t1"),
        # one bilateral ROI without side
        _row("E", "autochthon", "", "L4/5", 3000.0, 900.0, 2100.0, 0.30, nan, "ct"),
        # two ROIs of the same side and level: pooled area-weighted (30*100 + 10*300)/400 = 15
        _row("E", "psoas", "left", "L4/5", 100.0, 30.0, 70.0, 0.30, nan, "ct"),
        _row("E", "psoas", "left", "L4/5", 300.0, 30.0, 270.0, 0.10, nan, "ct"),
    ]
    out = grade_summary(pd.DataFrame(rows))
    r = _get(out, "E", "multifidus", "L4/5", "combined")
    assert np.isnan(r["goutallier"]) and r["grade_source"] == "mixed"
    r = _get(out, "E", "autochthon", "L4/5", "")
    assert (r["grade_fat_pct"], r["goutallier"], r["kjaer"]) == (pytest.approx(30.0), 2, 1)
    assert not ((out["muscle"] == "autochthon") & (out["side"] == "combined")).any()
    r = _get(out, "E", "psoas", "L4/5", "left")
    assert r["grade_fat_pct"] == pytest.approx(15.0) and r["goutallier"] == 1
    assert not ((out["muscle"] == "psoas") & (out["side"] == "combined")).any()  # no right side


def test_grade_summary_custom_cutoffs_and_source():
    out = grade_summary(hand_table(), source="fat_area_pct", goutallier_cutoffs=(5, 15, 30, 50),
                        kjaer_cutoffs=(20, 50))
    # A multifidus L4/5 on fat area: (40 + 400) / 1000 = 44 % -> G3 (30 <= 44 < 50), K1
    r = _get(out, "A", "multifidus", "L4/5", "combined")
    assert r["grade_fat_pct"] == pytest.approx(44.0) and r["grade_source"] == "fat_area_pct"
    assert (r["goutallier"], r["kjaer"]) == (3, 1)
    # L3/4 on fat area: (50 + 60) / 1000 = 11 % -> G1, K0 (below 20)
    r = _get(out, "A", "multifidus", "L3/4", "combined")
    assert (r["goutallier"], r["kjaer"]) == (1, 0)


def test_grade_summary_missing_columns():
    df = hand_table()
    for col in ("subject", "muscle", "side", "level", "csa_mm2"):
        with pytest.raises(InputError, match=f"no column '{col}'"):
            grade_summary(df.drop(columns=[col]))
    with pytest.raises(InputError, match="DataFrame"):
        grade_summary([1, 2, 3])


def test_empty_table():
    empty = pd.DataFrame(columns=LEVEL_COLUMNS)
    out = grade_summary(empty)
    assert len(out) == 0 and list(out.columns) == GRADE_SUMMARY_COLUMNS
    graded = add_grades(empty)
    assert {"grade_fat_pct", "grade_source", "goutallier", "kjaer"} <= set(graded.columns)
    assert len(graded) == 0


def test_combined_grade_counts_undefined_voxels_in_the_area():
    """T1 (3 classes) / CT: fat_area_ratio is fat / classified voxels, so the left+right pool must
    weight each side by fat + lean + undefined, exactly as one ROI over both sides would."""
    rows = []
    for side, fat, lean, und in (("left", 5, 5, 90), ("right", 40, 60, 0)):
        tot = fat + lean + und
        rows.append(dict(subject="s1", muscle="multifidus", side=side, level="L4/5", csa_mm2=float(tot),
                         fat_csa_mm2=float(fat), lean_csa_mm2=float(lean), undefined_csa_mm2=float(und),
                         fat_area_ratio=fat / tot, fat_fraction_pct=np.nan))
    out = grade_summary(pd.DataFrame(rows))
    comb = out[(out["side"] == "combined") & (out["level"] == "L4/5")].iloc[0]
    assert comb["grade_fat_pct"] == pytest.approx(100 * 45 / 200)  # 22.5 %
    assert comb["goutallier"] == 1


# --------------------------------------------------------------------------- cut-off checks and row warnings
@pytest.mark.parametrize("scale, cut, option, words", [
    ("goutallier", (10, 25, 40, 160), "(goutallier_cutoffs, --goutallier-cutoffs)",
     "Goutallier cut-offs (goutallier_cutoffs, --goutallier-cutoffs) must lie between 0 and 100 %"),
    ("goutallier", (-1, 25, 40, 60), "", "Goutallier cut-offs must lie between 0 and 100 %"),
    ("kjaer", (10, 100.5), "(k)", "Kjaer cut-offs (k) must lie between 0 and 100 %"),
    ("kjaer", "50,10", "", "Kjaer cut-offs must be strictly increasing, got [50.0, 10.0]"),
    ("kjaer", "ten,fifty", "", "Kjaer cut-offs must be a sequence of 2 numbers"),
])
def test_check_cutoffs_names_scale_and_option_and_refuses_outside_0_100(scale, cut, option, words):
    from ParaspinalFatLib.measurement.grading import check_cutoffs

    with pytest.raises(InputError) as exc:
        check_cutoffs(cut, scale, option=option)
    assert words in str(exc.value)


def test_check_cutoffs_accepts_the_ends_and_cli_text():
    from ParaspinalFatLib.measurement.grading import check_cutoffs

    assert check_cutoffs((0, 25, 40, 100), "goutallier") == (0.0, 25.0, 40.0, 100.0)
    assert check_cutoffs("10,50", "kjaer") == (10.0, 50.0)
    with pytest.raises(InputError, match="scale must be one of goutallier, kjaer"):
        check_cutoffs((10, 50), "lovett")
    with pytest.raises(InputError, match="between 0 and 100"):
        goutallier_grade([20.0], (10, 25, 40, 101))


def test_grade_summary_joins_the_row_warnings_it_summarises():
    df = hand_table()
    df["segment"] = [f"seg{i}" for i in range(len(df))]
    df["warnings"] = ""
    df.loc["r3", "warnings"] = "thresholds not fitted"        # A multifidus right L4/5
    df.loc["r11", "warnings"] = "fat/lean composition not measurable (NaN): all 9 voxels are excluded"
    out = grade_summary(df)
    assert out.columns[-1] == "warnings"

    def w(subject, muscle, level, side):
        r = out[(out.subject == subject) & (out.muscle == muscle) & (out.level == level) & (out.side == side)]
        assert len(r) == 1
        return r["warnings"].iloc[0]

    assert w("A", "multifidus", "L4/5", "right") == "seg3 (L4/5): thresholds not fitted"
    assert w("A", "multifidus", "L4/5", "combined") == "seg3 (L4/5): thresholds not fitted"
    assert w("A", "multifidus", "L4/5", "left") == ""
    assert w("A", "multifidus", "L3/4", "combined") == ""
    assert w("A", "multifidus", ALL_LEVELS_LABEL, "right") == "seg3 (L4/5): thresholds not fitted"
    assert w("A", "multifidus", "mean L3/4-L5/S1", "left") == ""
    reason = "seg11 (L5/S1): fat/lean composition not measurable (NaN): all 9 voxels are excluded"
    assert w("B", "erector_spinae", "L5/S1", "right") == reason
    assert np.isnan(out[(out.subject == "B") & (out.level == "L5/S1") & (out.side == "right")]["goutallier"]).all()
    assert w("B", "erector_spinae", ALL_LEVELS_LABEL, "right") == reason
    assert (out.loc[out.muscle == "psoas", "warnings"] == "").all()
    # a table without a warnings column (or after a CSV round trip, NaN) gives empty texts
    assert (grade_summary(hand_table())["warnings"] == "").all()
    df.loc["r3", "warnings"] = np.nan
    assert w("A", "multifidus", "L4/5", "right") == "seg3 (L4/5): thresholds not fitted"  # old `out`
    assert (grade_summary(df).query("muscle == 'multifidus'")["warnings"] == "").all()


# =============================================================================
# frozen reference: grade_summary before issue #11 (pandas groupby/agg with
# Python aggregations), copied verbatim with its helpers; the vectorised
# grade_summary must give the same frames bit for bit
# =============================================================================
def _reference_grade_summary(levels, source="auto", goutallier_cutoffs=GOUTALLIER_CUTOFFS,
                             kjaer_cutoffs=KJAER_CUTOFFS):
    from typing import Optional

    from ParaspinalFatLib.measurement.grading import check_cutoffs
    from ParaspinalFatLib.measurement.summary import join_warnings, labelled_row_warnings
    from ParaspinalFatLib.schemas import LOWER_LUMBAR_LABEL, LOWER_LUMBAR_LEVELS

    gcut, kcut = check_cutoffs(goutallier_cutoffs, "goutallier"), check_cutoffs(kjaer_cutoffs, "kjaer")
    grade_columns = ["goutallier", "kjaer"]
    for c in ("subject", "muscle", "side", "level", "csa_mm2"):
        if c not in levels.columns:
            raise InputError(f"missing column {c}")
    pct, src = _reference_grade_input(levels, source)
    area = _reference_finite_area(levels)
    keys = ["subject", "muscle", "level"]
    work = pd.DataFrame({
        "subject": levels["subject"].to_numpy(dtype=object),
        "muscle": levels["muscle"].to_numpy(dtype=object),
        "level": levels["level"].to_numpy(dtype=object),
        "side": _reference_side_labels(levels["side"]),
        "pct": pct,
        "src": src,
        "ok": np.isfinite(pct),
        "pw": pct * area,
        "area": area,
        "area_ok": np.isfinite(area) & (area >= 0),
        "warn": labelled_row_warnings(levels),
    })

    per_side = _reference_pool(work, keys + ["side"])
    lr = work[work["side"].isin(["left", "right"])]
    combined = _reference_pool(lr, keys)
    combined = combined[combined["n_sides"].to_numpy() == 2].copy()
    combined["side"] = "combined"
    level_rows = pd.concat([per_side.reset_index(), combined.reset_index()], ignore_index=True)
    level_rows["goutallier"] = goutallier_grade(level_rows["grade_fat_pct"], gcut)
    level_rows["kjaer"] = kjaer_grade(level_rows["grade_fat_pct"], kcut)
    level_rows["n_levels"] = np.isfinite(level_rows["goutallier"].to_numpy(dtype=float)).astype(int)

    def level_mean(rows: pd.DataFrame, label: str, need: Optional[int]) -> pd.DataFrame:
        g = rows.groupby(["subject", "muscle", "side"], sort=False, dropna=False)
        m = g.agg(**{c: (c, "mean") for c in grade_columns},
                  n_levels=("goutallier", "count"), warnings=("warnings", join_warnings)).reset_index()
        if need is not None:
            m.loc[m["n_levels"] < need, grade_columns] = np.nan
        m["level"] = label
        m["grade_fat_pct"] = np.nan
        m["grade_source"] = ""
        return m

    parts = [level_rows, level_mean(level_rows, ALL_LEVELS_LABEL, None)]
    lower = level_rows[level_rows["level"].isin(list(LOWER_LUMBAR_LEVELS))]
    if len(lower):
        parts.append(level_mean(lower, LOWER_LUMBAR_LABEL, len(LOWER_LUMBAR_LEVELS)))
    out = pd.concat([p[GRADE_SUMMARY_COLUMNS] for p in parts], ignore_index=True)

    measured = [lv for lv in pd.unique(level_rows["level"]) if not _reference_is_missing(lv)]
    rank = {lv: i for i, lv in enumerate(sorted(measured, key=_reference_level_key))}
    missing_rank = len(measured)
    rank[ALL_LEVELS_LABEL] = missing_rank + 1
    rank[LOWER_LUMBAR_LABEL] = missing_rank + 2
    side_order = {"left": 0, "right": 1, "combined": 2, "": 3}
    out["_lrank"] = [missing_rank if _reference_is_missing(lv) else rank[lv] for lv in out["level"]]
    out["_srank"] = [side_order.get(s, len(side_order)) for s in out["side"]]
    out = out.sort_values(["subject", "muscle", "_lrank", "_srank"], kind="mergesort")
    out = out.drop(columns=["_lrank", "_srank"]).reset_index(drop=True)
    for col in ["grade_fat_pct"] + grade_columns:
        out[col] = out[col].astype(float)
    out["n_levels"] = out["n_levels"].astype(int)
    return out


def _reference_grade_input(levels, source):
    n = len(levels)
    col = lambda name: np.array(pd.to_numeric(levels[name]), dtype=float)  # noqa: E731
    ff = col("fat_fraction_pct") if "fat_fraction_pct" in levels.columns else np.full(n, np.nan)
    area_pct = np.full(n, np.nan)
    if source != "fat_fraction_pct" and "fat_area_ratio" in levels.columns:
        area_pct = 100.0 * col("fat_area_ratio")
    ff_ok = np.isfinite(ff)
    area_ok = np.isfinite(area_pct)
    if source == "fat_fraction_pct":
        pct = np.where(ff_ok, ff, np.nan)
        src = np.where(ff_ok, "fat_fraction_pct", "")
    elif source == "fat_area_pct":
        pct = np.where(area_ok, area_pct, np.nan)
        src = np.where(area_ok, "fat_area_pct", "")
    else:
        pct = np.where(ff_ok, ff, np.where(area_ok, area_pct, np.nan))
        src = np.where(ff_ok, "fat_fraction_pct", np.where(area_ok, "fat_area_pct", ""))
    return pct.astype(float), src.astype(object)


def _reference_finite_area(levels):
    col = lambda name: np.array(pd.to_numeric(levels[name]), dtype=float)  # noqa: E731
    csa = col("csa_mm2")
    if "fat_csa_mm2" in levels.columns and "lean_csa_mm2" in levels.columns:
        fl = col("fat_csa_mm2") + col("lean_csa_mm2")
        if "undefined_csa_mm2" in levels.columns:
            und = col("undefined_csa_mm2")
            fl = fl + np.where(np.isfinite(und), und, 0.0)
        return np.where(np.isfinite(fl), fl, csa)
    return csa


def _reference_side_labels(side):
    out = []
    for s in side.tolist():
        if s is None or (isinstance(s, float) and np.isnan(s)) or s is pd.NA:
            out.append("")
        else:
            out.append(str(s))
    return np.array(out, dtype=object)


def _reference_pool(work, keys):
    from ParaspinalFatLib.measurement.summary import join_warnings

    g = work.groupby(keys, sort=False, dropna=False)
    agg = g.agg(
        n=("pct", "size"), n_ok=("ok", "sum"), n_src=("src", "nunique"),
        first=("pct", "first"), src=("src", "first"),
        pw=("pw", "sum"), w=("area", "sum"), w_ok=("area_ok", "all"), n_sides=("side", "nunique"),
        warnings=("warn", join_warnings),
    )
    n = agg["n"].to_numpy()
    all_ok = (agg["n_ok"].to_numpy() == n)
    mixed = all_ok & (agg["n_src"].to_numpy() > 1)
    w = agg["w"].to_numpy(dtype=float)
    weighted_ok = agg["w_ok"].to_numpy(dtype=bool) & (w > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        weighted = agg["pw"].to_numpy(dtype=float) / w
    value = np.where(n == 1, agg["first"].to_numpy(dtype=float), np.where(weighted_ok, weighted, np.nan))
    value = np.where(all_ok & ~mixed, value, np.nan)
    source = np.where(mixed, "mixed", np.where(all_ok, agg["src"].to_numpy(dtype=object), ""))
    return pd.DataFrame(
        {"grade_fat_pct": value, "grade_source": source.astype(object), "n_sides": agg["n_sides"].to_numpy(),
         "warnings": agg["warnings"].to_numpy(dtype=object)},
        index=agg.index,
    )


def _reference_is_missing(value):
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def _reference_level_key(level):
    from ParaspinalFatLib.anatomy.level_names import level_sort_key

    if isinstance(level, str):
        return level_sort_key(level)
    return (float("inf"), str(level))


_GEN_LEVELS = ["T12/L1", "L1/2", "L2/3", "L3/4", "L4/5", "L5/S1", "L3/4", "L4/5", "L5/S1", "L4", "S1"]
_GEN_WARNINGS = ["fat/lean composition not measurable (NaN): all voxels are excluded",
                 "psoas on T1: unreliable", "level from vertebrae; disc missing"]


def _random_level_table(rng, n):
    """A seeded per-level table: repeats, missing levels and sides, NaN, CT and PDFF rows, warnings."""
    subjects = [f"s{i}" for i in range(int(rng.choice([1, 1, 2, 3])))]
    muscles = list(rng.choice(["multifidus", "erector_spinae", "psoas", "quadratus_lumborum", "m5"],
                              size=int(rng.integers(1, 6)), replace=False))
    lv = list(rng.choice(_GEN_LEVELS, size=int(rng.integers(1, 7))))
    sides = ["left", "right", ""] if rng.random() < 0.5 else ["left", "right"]
    subj, mus, lev, sid = (rng.choice(x, size=n) for x in (subjects, muscles, lv, sides))
    if rng.random() < 0.2 and n > 12:  # a big pool of ROIs of one muscle/side/level
        idx = rng.choice(n, size=int(rng.integers(3, min(n, 150) + 1)), replace=False)
        subj[idx], mus[idx], lev[idx], sid[idx] = subjects[0], muscles[0], lv[0], "left"
    csa = rng.integers(0, 3000, size=n) * rng.choice([0.5, 1.0, 1.625])
    ratio = rng.random(n)
    ratio[rng.random(n) < 0.1] = rng.choice([0.0, 1.0])
    ct = rng.random(n) < rng.choice([0.0, 0.3, 1.0])  # CT rows: no fat fraction, fat area %
    table = pd.DataFrame({
        "subject": subj, "segment": [f"{m}_{s}_{x}_{i}" for i, (m, s, x) in enumerate(zip(mus, sid, lev))],
        "muscle": mus, "side": sid, "level": lev, "csa_mm2": csa,
        "fat_csa_mm2": csa * ratio, "lean_csa_mm2": csa * (1 - ratio),
        "undefined_csa_mm2": np.where(rng.random(n) < 0.3, rng.random(n) * 10, 0.0),
        "fat_area_ratio": ratio, "fat_fraction_pct": np.where(ct, np.nan, rng.random(n) * 100),
        "unit": np.where(ct, "HU", "%"), "warnings": "",
    })
    if rng.random() < 0.5:  # values exactly at the default cut-offs
        at = rng.random(n) < 0.2
        table.loc[at, "fat_fraction_pct"] = rng.choice([10.0, 25.0, 40.0, 50.0, 60.0], size=int(at.sum()))
    warned = rng.random(n) < 0.15
    table.loc[warned, "warnings"] = rng.choice(_GEN_WARNINGS, size=int(warned.sum()))
    bad = rng.random(n) < 0.1  # not measurable
    table.loc[bad, ["fat_csa_mm2", "lean_csa_mm2", "undefined_csa_mm2", "fat_area_ratio", "fat_fraction_pct"]] = np.nan
    table.loc[bad, "warnings"] = _GEN_WARNINGS[0]
    for col in ("csa_mm2", "fat_csa_mm2", "lean_csa_mm2", "undefined_csa_mm2", "fat_fraction_pct"):
        r = rng.random(n)
        table.loc[r < 0.03, col] = np.nan
        table.loc[(r >= 0.03) & (r < 0.05), col] = rng.choice([np.inf, 0.0, -0.0])
    if rng.random() < 0.1:
        table["subject"] = [int(x[1:]) + 100 for x in table["subject"]]
    if rng.random() < 0.1:
        table.loc[rng.random(n) < 0.1, "side"] = rng.choice(["midline", "both"])
    if rng.random() < 0.1:
        table["level"] = table["level"].astype(object)
        table.loc[rng.random(n) < 0.1, "level"] = np.nan
    if rng.random() < 0.05:
        table["subject"] = table["subject"].astype(object)
        table.loc[rng.random(n) < 0.1, "subject"] = np.nan
    for col in ("warnings", "segment", "undefined_csa_mm2", "fat_fraction_pct"):
        if rng.random() < 0.08:
            table = table.drop(columns=[col])
    table = table.sample(frac=1.0, random_state=int(rng.integers(0, 2 ** 31))).reset_index(drop=True)
    if rng.random() < 0.25:  # CSV round trip: "" sides and warnings come back as NaN
        buf = io.StringIO()
        table.to_csv(buf, index=False)
        table = pd.read_csv(io.StringIO(buf.getvalue()))
    return table


def test_grade_summary_equals_the_frozen_implementation_on_generated_tables():
    from ParaspinalFatLib.measurement.grading import GRADE_SOURCES

    rng = np.random.default_rng(11)
    checked = 0
    for i in range(80):
        n = int(rng.choice([1, 2, 3, 6, 18, 18, 40, 60])) if i % 15 else 200
        table = _random_level_table(rng, n)
        source = str(rng.choice(GRADE_SOURCES))
        if source == "fat_fraction_pct" and "fat_fraction_pct" not in table.columns:
            source = "auto"
        kw = {"source": source}
        if rng.random() < 0.4:
            kw["goutallier_cutoffs"] = tuple(np.sort(rng.choice(np.arange(1.0, 99.0), 4, replace=False)))
            kw["kjaer_cutoffs"] = tuple(np.sort(rng.choice(np.arange(1.0, 99.0), 2, replace=False)))
        before = table.copy()
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            new = grade_summary(table, **kw)
        ref = _reference_grade_summary(table.copy(), **kw)
        pd.testing.assert_frame_equal(table, before)
        pd.testing.assert_frame_equal(new, ref, check_exact=True, obj=f"case {i} {kw}")
        checked += 1
    empty = _random_level_table(rng, 18).iloc[:0]
    pd.testing.assert_frame_equal(grade_summary(empty), _reference_grade_summary(empty), check_exact=True)
    assert checked == 80

"""tables.summarize: left/right, asymmetry, pooling of several ROIs, CSV round trip."""
import io

import numpy as np
import pandas as pd
import pytest

from ParaspinalFatLib.schemas import LOWER_LUMBAR_LABEL
from ParaspinalFatLib.measurement.summary import summarize


def _row(muscle, side, level, csa, ff, unit="%", mean=None, n=None):
    n = n if n is not None else int(csa)
    return dict(subject="s1", segment=f"{muscle}_{side}_{level}", muscle=muscle, side=side, level=level,
                csa_mm2=float(csa), fat_csa_mm2=csa * ff / 100, lean_csa_mm2=csa * (1 - ff / 100),
                undefined_csa_mm2=0.0, fat_area_ratio=ff / 100, fat_fraction_pct=ff,
                mean=ff if mean is None else mean, unit=unit, n_voxels=n, n_nan=0, n_below_noise=0)


def _get(s, muscle, level, metric):
    return s[(s.muscle == muscle) & (s.level == level) & (s.metric == metric)].iloc[0]


def test_left_right_asymmetry_and_lower_lumbar_mean_by_hand():
    rows = [_row("multifidus", side, lv, csa, ff) for side, base in (("left", 600), ("right", 500))
            for lv, csa, ff in (("L3/4", base, 10), ("L4/5", base + 60, 15), ("L5/S1", base + 120, 20))]
    s = summarize(pd.DataFrame(rows))
    r = _get(s, "multifidus", "L4/5", "csa_mm2")
    assert (r.left, r.right, r.lr_mean) == (660, 560, 610)
    assert r.asymmetry_pct == pytest.approx(100 / 610 * 100)
    m = _get(s, "multifidus", LOWER_LUMBAR_LABEL, "csa_mm2")
    assert (m.left, m.right, m.n_levels) == (660, 560, 3)


def test_asymmetry_of_mean_hu_is_not_a_percentage():
    rows = [_row("autochthon", "left", "L4/5", 2000, 20, unit="HU", mean=-13.38),
            _row("autochthon", "right", "L4/5", 2100, 18, unit="HU", mean=-5.65)]
    s = summarize(pd.DataFrame(rows))
    assert np.isnan(_get(s, "autochthon", "L4/5", "mean").asymmetry_pct)
    assert _get(s, "autochthon", "L4/5", "csa_mm2").asymmetry_pct == pytest.approx(100 / 2050 * 100)


def test_two_rois_of_one_muscle_side_level_are_pooled_as_one():
    rows = [_row("erector_spinae", "left", "L4/5", 800, 10), _row("erector_spinae", "left", "L4/5", 400, 30)]
    s = summarize(pd.DataFrame(rows))
    assert _get(s, "erector_spinae", "L4/5", "csa_mm2").left == 1200
    assert _get(s, "erector_spinae", "L4/5", "fat_fraction_pct").left == pytest.approx((800 * 10 + 400 * 30) / 1200)
    assert _get(s, "erector_spinae", "L4/5", "fat_area_ratio").left == pytest.approx((80 + 120) / 1200)


def test_bilateral_roi_survives_a_csv_round_trip():
    df = pd.DataFrame([_row("psoas", "", "L4/5", 1000, 5)])
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    back = pd.read_csv(io.StringIO(buf.getvalue()))
    assert back["side"].isna().all()
    assert _get(summarize(back), "psoas", "L4/5", "csa_mm2").lr_mean == 1000


def test_unmeasurable_side_gives_nan_asymmetry_and_carries_the_row_warning():
    rows = [_row("multifidus", side, lv, csa, ff) for side in ("left", "right")
            for lv, csa, ff in (("L3/4", 600, 10), ("L4/5", 660, 15), ("L5/S1", 720, 20))]
    df = pd.DataFrame(rows)
    df["warnings"] = ""
    bad = (df.side == "left") & (df.level == "L4/5")
    for col in ("fat_csa_mm2", "lean_csa_mm2", "undefined_csa_mm2", "fat_area_ratio", "fat_fraction_pct", "mean"):
        df.loc[bad, col] = np.nan
    df.loc[bad, "warnings"] = "fat/lean composition not measurable (NaN): all 660 voxels are excluded"
    s = summarize(df)
    reason = "multifidus_left_L4/5 (L4/5): fat/lean composition not measurable (NaN): all 660 voxels are excluded"
    for metric in ("lean_csa_mm2", "fat_csa_mm2", "fat_fraction_pct", "fat_area_ratio"):
        r = _get(s, "multifidus", "L4/5", metric)
        assert np.isnan(r.left) and np.isfinite(r.right)
        assert np.isnan(r.asymmetry_pct) and np.isnan(r.lr_mean)
        assert r.warnings == reason
        m = _get(s, "multifidus", LOWER_LUMBAR_LABEL, metric)
        assert np.isnan(m.left) and np.isfinite(m.right) and m.warnings == reason
    r = _get(s, "multifidus", "L4/5", "csa_mm2")
    assert r.asymmetry_pct == 0.0 and r.warnings == reason  # CSA is measured on both sides
    assert _get(s, "multifidus", "L3/4", "csa_mm2").warnings == ""
    wide = summarize(df, wide=True)
    assert wide.loc[0, "warnings"] == reason
    assert np.isnan(wide.loc[0, "multifidus L4/5 asymmetry_pct lean_csa_mm2"])


def test_warnings_of_both_sides_and_levels_are_joined_once_each():
    rows = [_row("psoas", side, lv, 1000, 5) for side in ("left", "right") for lv in ("L3/4", "L4/5", "L5/S1")]
    df = pd.DataFrame(rows)
    df["warnings"] = ["psoas on T1: unreliable"] * 6
    s = summarize(df)
    r = _get(s, "psoas", "L4/5", "csa_mm2")
    assert r.warnings == ("psoas_left_L4/5 (L4/5): psoas on T1: unreliable; "
                          "psoas_right_L4/5 (L4/5): psoas on T1: unreliable")
    m = _get(s, "psoas", LOWER_LUMBAR_LABEL, "csa_mm2")
    assert m.warnings.count("; ") == 5
    buf = io.StringIO()
    df.assign(warnings="").to_csv(buf, index=False)  # empty warnings come back from a CSV as NaN
    back = pd.read_csv(io.StringIO(buf.getvalue()))
    assert back["warnings"].isna().all() and (summarize(back)["warnings"] == "").all()

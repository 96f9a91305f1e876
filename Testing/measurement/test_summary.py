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

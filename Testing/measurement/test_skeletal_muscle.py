"""Skeletal muscle index on hand-checkable per-level tables."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from ParaspinalFatLib.errors import InputError, ParaspinalFatWarning
from ParaspinalFatLib.measurement.skeletal_muscle import ALL_MUSCLES, SMI_COLUMNS, muscle_index
from ParaspinalFatLib.schemas import LEVEL_COLUMNS


def levels_table(rows):
    """Per-level table with LEVEL_COLUMNS from (subject, segment, muscle, side, level, csa_mm2[, warnings])."""
    records = []
    for r in rows:
        subject, segment, muscle, side, level, csa = r[:6]
        rec = {c: np.nan for c in LEVEL_COLUMNS}
        rec.update(subject=subject, segment=segment, muscle=muscle, side=side, level=level, csa_mm2=csa,
                   warnings=r[6] if len(r) > 6 else "")
        records.append(rec)
    return pd.DataFrame(records, columns=LEVEL_COLUMNS)


BASE = [
    ("p1", "psoas_left", "psoas", "left", "L3", 1000.0),
    ("p1", "psoas_right", "psoas", "right", "L3", 1200.0),
    ("p1", "autochthon_left", "erector_spinae", "left", "L3", 2250.0),
    ("p1", "autochthon_right", "erector_spinae", "right", "L3", 2150.0),
    ("p1", "psoas_left", "psoas", "left", "L4/5", 9999.0),  # other levels are ignored
    ("p1", "psoas_right", "psoas", "right", "L4/5", 9999.0),
    ("p1", "psoas_left", "psoas", "left", "L3/4", 7777.0),
]


def test_hand_checked_psoas_and_all_muscles():
    out = muscle_index(levels_table(BASE), 1.6)
    assert list(out.columns) == SMI_COLUMNS
    assert out["muscle"].tolist() == ["erector_spinae", "psoas", ALL_MUSCLES]
    ps = out.set_index("muscle").loc["psoas"]
    assert (ps["left_csa_cm2"], ps["right_csa_cm2"], ps["csa_cm2"]) == (10.0, 12.0, 22.0)
    assert ps["smi_cm2_m2"] == pytest.approx(8.59375, abs=1e-12)  # 22 / 1.6^2
    assert ps["height_m"] == 1.6 and ps["n_segments"] == 2 and ps["level"] == "L3" and ps["subject"] == "p1"
    assert ps["warnings"] == ""
    es = out.set_index("muscle").loc["erector_spinae"]
    assert es["csa_cm2"] == pytest.approx(44.0) and es["smi_cm2_m2"] == pytest.approx(44.0 / 2.56)
    al = out.set_index("muscle").loc[ALL_MUSCLES]
    assert al["csa_cm2"] == pytest.approx(66.0) and al["smi_cm2_m2"] == pytest.approx(66.0 / 2.56)
    assert al["left_csa_cm2"] == pytest.approx(32.5) and al["right_csa_cm2"] == pytest.approx(33.5)
    assert al["n_segments"] == 4 and al["warnings"] == ""


@pytest.mark.parametrize("spelling", ["L3", "l3", "vertebrae_L3", " L3 "])
def test_level_spelling(spelling):
    out = muscle_index(levels_table(BASE), 1.6, level=spelling)
    assert out["level"].eq("L3").all() and len(out) == 3
    # the table's own level spelling is read the same way
    rows = [r[:4] + ("L3 vertebra",) + r[5:] if r[4] == "L3" else r for r in BASE]
    assert muscle_index(levels_table(rows), 1.6, level=spelling)["csa_cm2"].iloc[-1] == pytest.approx(66.0)


def test_disc_level():
    out = muscle_index(levels_table(BASE), 2.0, level="L4-L5")
    ps = out.set_index("muscle").loc["psoas"]
    assert ps["level"] == "L4/5" and ps["csa_cm2"] == pytest.approx(199.98)
    assert ps["smi_cm2_m2"] == pytest.approx(199.98 / 4.0)


def test_missing_side_gives_nan_with_a_warning():
    rows = BASE[:3]  # erector_spinae right absent
    out = muscle_index(levels_table(rows), 1.6).set_index("muscle")
    es = out.loc["erector_spinae"]
    assert es["left_csa_cm2"] == 22.5 and np.isnan(es["right_csa_cm2"])
    assert np.isnan(es["csa_cm2"]) and np.isnan(es["smi_cm2_m2"])
    assert "erector_spinae at L3 has no right side" in es["warnings"]
    al = out.loc[ALL_MUSCLES]
    assert np.isnan(al["csa_cm2"]) and np.isnan(al["smi_cm2_m2"]) and np.isnan(al["right_csa_cm2"])
    assert "erector_spinae" in al["warnings"]
    assert out.loc["psoas", "csa_cm2"] == 22.0  # the complete muscle is unaffected


def test_nan_area_gives_nan_total():
    rows = list(BASE)
    rows[1] = ("p1", "psoas_right", "psoas", "right", "L3", np.nan)
    out = muscle_index(levels_table(rows), 1.6).set_index("muscle")
    assert out.loc["psoas", "left_csa_cm2"] == 10.0 and np.isnan(out.loc["psoas", "right_csa_cm2"])
    assert np.isnan(out.loc["psoas", "csa_cm2"]) and "psoas_right is NaN" in out.loc["psoas", "warnings"]
    assert np.isnan(out.loc[ALL_MUSCLES, "csa_cm2"])


def test_unsided_muscle_and_repeated_segments():
    rows = [
        ("p1", "psoas", "psoas", "", "L3", 2000.0),  # one bilateral ROI
        ("p1", "longissimus_left", "erector_spinae", "left", "L3", 1000.0),
        ("p1", "iliocostalis_left", "erector_spinae", "left", "L3", 500.0),
        ("p1", "ES_R", "erector_spinae", "right", "L3", 1400.0),
    ]
    out = muscle_index(levels_table(rows), 1.8).set_index("muscle")
    ps = out.loc["psoas"]
    assert np.isnan(ps["left_csa_cm2"]) and np.isnan(ps["right_csa_cm2"])
    assert ps["csa_cm2"] == 20.0 and ps["smi_cm2_m2"] == pytest.approx(20.0 / 3.24) and ps["warnings"] == ""
    es = out.loc["erector_spinae"]
    assert (es["left_csa_cm2"], es["right_csa_cm2"], es["csa_cm2"], es["n_segments"]) == (15.0, 14.0, 29.0, 3)
    assert "2 segments of erector_spinae left" in es["warnings"] and "overlap" in es["warnings"]
    al = out.loc[ALL_MUSCLES]
    assert al["csa_cm2"] == pytest.approx(49.0) and al["n_segments"] == 4
    assert (al["left_csa_cm2"], al["right_csa_cm2"]) == (15.0, 14.0)  # only sided muscles have sides


def test_row_warnings_are_carried_over():
    rows = list(BASE)
    rows[0] = rows[0] + ("fat/lean composition not measurable (NaN): whatever",)
    rows[4] = rows[4] + ("a warning at another level",)
    out = muscle_index(levels_table(rows), 1.6).set_index("muscle")
    assert out.loc["psoas", "warnings"] == "psoas_left (L3): fat/lean composition not measurable (NaN): whatever"
    assert "psoas_left (L3): fat/lean" in out.loc[ALL_MUSCLES, "warnings"]
    assert "another level" not in out.loc[ALL_MUSCLES, "warnings"]
    assert out.loc["erector_spinae", "warnings"] == ""


def test_no_row_at_the_level():
    with pytest.warns(ParaspinalFatWarning, match=r"SMI needs.*--levels L3"):
        out = muscle_index(levels_table(BASE[4:]), 1.6)
    assert out.empty and list(out.columns) == SMI_COLUMNS


def test_several_subjects():
    rows = list(BASE) + [("p2", "psoas_left", "psoas", "left", "L3", 800.0),
                         ("p2", "psoas_right", "psoas", "right", "L3", 900.0),
                         ("p3", "psoas_left", "psoas", "left", "L4/5", 800.0)]
    table = levels_table(rows)
    with pytest.raises(InputError, match=r"height_m \(--height-m\).*3 subjects"):
        muscle_index(table, 1.6)
    with pytest.warns(ParaspinalFatWarning, match="p3"):
        out = muscle_index(table, {"p1": 1.6, "p2": 1.5, "p3": 1.7})
    p2 = out[out["subject"] == "p2"].set_index("muscle")
    assert p2.loc["psoas", "csa_cm2"] == 17.0 and p2.loc["psoas", "smi_cm2_m2"] == pytest.approx(17.0 / 2.25)
    assert p2.loc[ALL_MUSCLES, "csa_cm2"] == 17.0
    assert out["subject"].tolist() == ["p1"] * 3 + ["p2"] * 2
    with pytest.raises(InputError, match="no height given for subject 'p2'"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            muscle_index(table, {"p1": 1.6})


def test_csv_round_trip_sides():
    # after a CSV round trip an empty side is NaN; the table still reads
    table = levels_table([("p1", "psoas", "psoas", "", "L3", 2000.0)])
    table["side"] = [np.nan]
    table["warnings"] = [np.nan]
    out = muscle_index(table, 1.6)
    assert out.iloc[0]["csa_cm2"] == 20.0 and out.iloc[0]["warnings"] == ""


@pytest.mark.parametrize("bad, needle", [
    (175, "centimetres"), (160.0, "centimetres"), (0.9, "between 1.0 and 2.5"), (2.6, "between 1.0 and 2.5"),
    (float("nan"), "metres"), (float("inf"), "metres"), (-1.7, "between"), (True, "metres"), ("tall", "metres"),
    (None, "metres"), (0.0, "between"),
])
def test_height_refusals(bad, needle):
    with pytest.raises(InputError, match=r"height_m \(--height-m\)") as err:
        muscle_index(levels_table(BASE), bad)
    assert needle in str(err.value)


def test_height_boundaries_and_text():
    assert muscle_index(levels_table(BASE), 1.0)["smi_cm2_m2"].iloc[-1] == pytest.approx(66.0)
    assert muscle_index(levels_table(BASE), 2.5)["smi_cm2_m2"].iloc[-1] == pytest.approx(66.0 / 6.25)
    assert muscle_index(levels_table(BASE), "1.6")["smi_cm2_m2"].iloc[-1] == pytest.approx(66.0 / 2.56)


def test_other_refusals():
    with pytest.raises(InputError, match="not a vertebra or disc level"):
        muscle_index(levels_table(BASE), 1.6, level="lumbar")
    with pytest.raises(InputError, match="csa_mm2"):
        muscle_index(levels_table(BASE).drop(columns=["csa_mm2"]), 1.6)

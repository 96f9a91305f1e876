"""cohort.exports: Excel and SPSS files read back with openpyxl / pyreadstat; atomic writing."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ParaspinalFatLib.cohort.exports import GOUTALLIER_LABELS, KJAER_LABELS, write_excel, write_spss
from ParaspinalFatLib.cohort.subject_tables import subjects_table
from ParaspinalFatLib.errors import InputError
from ParaspinalFatLib.stats.clinical_categories import vbmd_category

FORMULA = '=HYPERLINK("http://evil.example","click")'


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _sample():
    return pd.DataFrame({
        "subject": [FORMULA, "s2", "@cmd", "-3.5", "\tx"],
        "age": [50, 61, 72, 33, 44],
        "delta": [-3.5, np.nan, 0.25, np.inf, -np.inf],
        "grade": pd.array([1, pd.NA, 0, 4, 2], dtype="Int64"),
        "smoker": [True, False, True, False, True],
        "note": ["ok\x01bad", None, "+1", "+ call", "plain"],
    })


# --------------------------------------------------------------------------- Excel
def test_xlsx_round_trip_keeps_numbers_and_neutralises_formula_text(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    codebook = pd.DataFrame({"variable": ["=bad header", "age"], "label": ["x", "Age (years)"]})
    path = write_excel(tmp_path / "out.xlsx", {"subjects": _sample(), "codebook": codebook})
    assert path == tmp_path / "out.xlsx"
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["subjects", "codebook"]
    ws = book["subjects"]
    rows = [[c.value for c in r] for r in ws.iter_rows()]
    assert rows[0] == ["subject", "age", "delta", "grade", "smoker", "note"]
    assert [r[0] for r in rows[1:]] == ["'" + FORMULA, "s2", "'@cmd", "-3.5", "'\tx"]
    assert all(c.data_type != "f" for r in ws.iter_rows() for c in r)  # no formula anywhere
    assert [r[1] for r in rows[1:]] == [50, 61, 72, 33, 44]
    assert isinstance(rows[1][1], int) and isinstance(rows[1][2], float)
    assert [r[2] for r in rows[1:]] == [-3.5, None, 0.25, "inf", "-inf"]
    assert [r[3] for r in rows[1:]] == [1, None, 0, 4, 2]
    assert [r[4] for r in rows[1:]] == [True, False, True, False, True]
    assert [r[5] for r in rows[1:]] == ["ok\ufffdbad", None, "+1", "'+ call", "plain"]
    cb = [[c.value for c in r] for r in book["codebook"].iter_rows()]
    assert cb[1] == ["'=bad header", "x"] and cb[2] == ["age", "Age (years)"]
    assert ws.freeze_panes == "A2"
    # pandas reads the same values back
    back = pd.read_excel(path, sheet_name="subjects")
    assert back["age"].tolist() == [50, 61, 72, 33, 44]
    assert _leftovers(tmp_path) == []


def test_xlsx_cells_of_every_column_type(tmp_path):
    """Whole numpy columns are converted at once, other columns cell by cell: each type's cells."""
    openpyxl = pytest.importorskip("openpyxl")
    from datetime import datetime

    table = pd.DataFrame({
        "f32": np.array([1.1, np.nan, np.inf, 2.0], dtype=np.float32),
        "u8": np.array([0, 7, 255, 1], dtype=np.uint8),
        "i64": np.array([-(2 ** 40), 0, 3, 2 ** 40]),
        "flag": np.array([True, False, False, True]),
        "Float": pd.array([0.5, None, -2.0, 3.0], dtype="Float64"),
        "boolean": pd.array([True, None, False, True], dtype="boolean"),
        "when": pd.to_datetime(["2020-01-02 03:04", None, "2021-12-31 00:00", "2019-06-01 12:00"]),
        "cat": pd.Categorical(["b", "=a", None, "b"]),
        "mixed": [1, "x", 2.5, None],
    })
    path = write_excel(tmp_path / "types.xlsx", {"t": table})
    rows = [[c.value for c in r] for r in openpyxl.load_workbook(path)["t"].iter_rows()]
    columns = list(zip(*rows[1:]))
    assert columns[0] == (float(np.float32(1.1)), None, "inf", 2.0)  # the float32 value, exactly
    assert columns[1] == (0, 7, 255, 1) and columns[2] == (-(2 ** 40), 0, 3, 2 ** 40)
    assert all(type(v) is int for v in columns[1] + columns[2])
    assert columns[3] == (True, False, False, True) and all(type(v) is bool for v in columns[3])
    assert columns[4] == (0.5, None, -2.0, 3.0)
    assert columns[5] == (True, None, False, True)
    assert columns[6] == (datetime(2020, 1, 2, 3, 4), None, datetime(2021, 12, 31), datetime(2019, 6, 1, 12))
    assert columns[7] == ("b", "'=a", None, "b")
    assert columns[8] == (1, "x", 2.5, None)


def test_xlsx_failure_leaves_the_previous_file_and_no_partial_file(tmp_path):
    pytest.importorskip("openpyxl")
    target = tmp_path / "subjects.xlsx"
    target.write_bytes(b"previous workbook")
    bad = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", {"not": "storable"}]})
    with pytest.raises(InputError, match="sheet 'subjects', column 'b', row 2 .*previous file"):
        write_excel(target, {"codebook": pd.DataFrame({"v": [1]}), "subjects": bad})
    assert target.read_bytes() == b"previous workbook"
    assert _leftovers(tmp_path) == []
    fresh = tmp_path / "new.xlsx"
    with pytest.raises(InputError):
        write_excel(fresh, {"subjects": bad})
    assert not fresh.exists() and _leftovers(tmp_path) == []


def test_xlsx_failure_when_moving_in_leaves_no_partial_file(tmp_path, monkeypatch):
    pytest.importorskip("openpyxl")
    import os
    target = tmp_path / "subjects.xlsx"
    target.write_bytes(b"previous workbook")
    seen = []

    def broken_replace(src, dst):
        seen.append(os.path.getsize(src))  # the whole workbook was written to the temporary file
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(InputError, match="No space left"):
        write_excel(target, {"subjects": _sample()})
    monkeypatch.undo()
    assert seen and seen[0] > 1000
    assert target.read_bytes() == b"previous workbook" and _leftovers(tmp_path) == []


@pytest.mark.parametrize("name", ["", "a" * 32, "a/b", "x[1]", "'quoted'"])
def test_bad_sheet_names_are_refused(tmp_path, name):
    pytest.importorskip("openpyxl")
    with pytest.raises(InputError, match="sheet name"):
        write_excel(tmp_path / "x.xlsx", {name: pd.DataFrame({"a": [1]})})
    with pytest.raises(InputError, match="twice"):
        write_excel(tmp_path / "x.xlsx", {"Data": pd.DataFrame(), "data": pd.DataFrame()})
    assert not (tmp_path / "x.xlsx").exists()


# --------------------------------------------------------------------------- SPSS
def _subjects():
    rows = []
    for subject, ff, grade in (("s1", 10.0, 1), ("s2", 30.0, 3)):
        for side in ("left", "right"):
            for i, lv in enumerate(("L3/4", "L4/5", "L5/S1")):
                rows.append(dict(subject=subject, case_id=subject, segment=f"mf_{side}_{lv}", muscle="multifidus",
                                 side=side, level=lv, csa_mm2=500.0 + i, fat_fraction_pct=ff + i, fat_area_ratio=0.1,
                                 fat_csa_mm2=50.0, lean_csa_mm2=450.0, undefined_csa_mm2=0.0, mean=ff + i, unit="%",
                                 map_kind="pdff", goutallier=grade + (i == 2), kjaer=1, n_voxels=500, n_nan=0,
                                 n_below_noise=0))
    measurements = pd.DataFrame(rows)
    clinical = pd.DataFrame({"case_id": ["s1", "s2"], "subject": [FORMULA, "s2"], "Sex": ["F", "M"],
                             "vBMD group": ["osteoporosis", "normal"], "Age (years)": [70, 55],
                             "Comment": ["=cmd|' /C calc'!A0", None]})
    measurements.loc[measurements.subject == "s1", "subject"] = FORMULA
    return subjects_table(measurements, clinical)


def test_sav_round_trip_labels_value_labels_and_codes(tmp_path):
    pyreadstat = pytest.importorskip("pyreadstat")
    subjects, codebook = _subjects()
    subjects["bmd_cat"] = vbmd_category(pd.Series([70.0, 130.0]))  # an ordered Categorical (report-derived)
    path = write_spss(tmp_path / "subjects.sav", subjects, codebook)
    df, meta = pyreadstat.read_sav(str(path))
    assert list(df.columns) == list(subjects.columns)
    labels = meta.column_names_to_labels
    assert labels["mf_pdff_mean"] == "Multifidus PDFF, mean of L3/4-L5/S1, left-right mean (%)"
    assert labels["mf_csa_L4_5_left"] == "Multifidus CSA, L4/5, left (mm2)"
    assert labels["age_years"] == "Age (years)"  # the unit is already in the header
    assert labels["mf_goutallier_L4_5_left"] == "Multifidus Goutallier grade, L4/5, left"
    assert labels["bmd_cat"] is None  # no codebook row
    vl = meta.variable_value_labels
    # sex: male first (1 = M, 2 = F); the vBMD groups in their clinical order
    assert vl["sex"] == {1.0: "M", 2.0: "F"} and df["sex"].tolist() == [2.0, 1.0]
    assert vl["vbmd_group"] == {1.0: "normal", 2.0: "osteoporosis"} and df["vbmd_group"].tolist() == [2.0, 1.0]
    assert vl["bmd_cat"] == {1.0: "normal", 2.0: "osteoporosis"} and df["bmd_cat"].tolist() == [2.0, 1.0]
    assert vl["comment"] == {1.0: "'=cmd|' /C calc'!A0"} and df["comment"].iloc[0] == 1.0
    assert np.isnan(df["comment"].iloc[1])
    assert vl["mf_goutallier_L4_5_left"] == {float(k): v for k, v in GOUTALLIER_LABELS.items()}
    assert vl["mf_kjaer_L3_4_right"] == {float(k): v for k, v in KJAER_LABELS.items()}
    assert "mf_goutallier_mean" not in vl and "mf_goutallier_L4_5" not in vl  # means of grades are numbers
    assert df["mf_goutallier_mean_left"].tolist() == pytest.approx([4 / 3, 10 / 3])
    assert df["mf_goutallier_L5_S1_left"].tolist() == [2.0, 4.0]
    assert df["subject"].tolist() == ["'" + FORMULA, "s2"]
    assert df["age_years"].tolist() == [70.0, 55.0]
    assert df["mf_pdff_mean"].tolist() == pytest.approx([11.0, 31.0])
    assert meta.variable_measure["sex"] == "nominal" and meta.variable_measure["vbmd_group"] == "ordinal"
    assert meta.variable_measure["mf_goutallier_L4_5_left"] == "ordinal"
    assert meta.variable_measure["mf_pdff_mean"] == "scale"
    assert _leftovers(tmp_path) == []


def test_sav_bool_and_nullable_integers(tmp_path):
    pyreadstat = pytest.importorskip("pyreadstat")
    data = pd.DataFrame({"smoker": [True, False], "n": pd.array([3, pd.NA], dtype="Int64"), "txt": ["a", None]})
    write_spss(tmp_path / "x.sav", data)
    df, meta = pyreadstat.read_sav(str(tmp_path / "x.sav"))
    assert df["smoker"].tolist() == [1.0, 0.0] and meta.variable_value_labels["smoker"] == {0.0: "False", 1.0: "True"}
    assert df["n"].iloc[0] == 3.0 and np.isnan(df["n"].iloc[1])
    assert df["txt"].tolist() == ["a", ""]  # no codebook: a text column stays text


def test_sav_refuses_names_spss_does_not_accept(tmp_path):
    pytest.importorskip("pyreadstat")
    for bad in (["BMI (kg/m2)"], ["age", "AGE"], ["by"]):
        with pytest.raises(InputError):
            write_spss(tmp_path / "x.sav", pd.DataFrame({c: [1.0] for c in bad}) if len(set(bad)) == len(bad)
                       else pd.DataFrame([[1.0, 2.0]], columns=bad))
    assert not (tmp_path / "x.sav").exists()


def test_sav_failure_leaves_the_previous_file_and_no_partial_file(tmp_path, monkeypatch):
    pyreadstat = pytest.importorskip("pyreadstat")
    target = tmp_path / "subjects.sav"
    target.write_bytes(b"previous sav")

    def broken(df, dst_path, **kwargs):
        with open(dst_path, "wb") as fh:
            fh.write(b"$FL2 half")
        raise pyreadstat.ReadstatError("simulated write failure")

    monkeypatch.setattr(pyreadstat, "write_sav", broken)
    subjects, codebook = _subjects()
    with pytest.raises(InputError, match="simulated write failure"):
        write_spss(target, subjects, codebook)
    assert target.read_bytes() == b"previous sav"
    assert _leftovers(tmp_path) == []

"""cohort.variables and cohort.subject_tables: names, pooling, level means, readings, maps, clinical columns.

Every expected number is computed by hand from the rows built here.
"""
from __future__ import annotations

import io
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from ParaspinalFatLib.cohort.subject_tables import CODEBOOK_COLUMNS, one_per_subject, subjects_table, \
    write_subject_tables
from ParaspinalFatLib.cohort.variables import check_variable_name, natural_key, safe_column_name, variable_name
from ParaspinalFatLib.errors import InputError, MissingDependencyError, ParaspinalFatWarning
from ParaspinalFatLib.measurement.summary import summarize

NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
LEVELS = ("L3/4", "L4/5", "L5/S1")


def row(subject, muscle, side, level, csa, ff, *, ratio=None, rater=None, session=None, map_name=None,
        kind="pdff", mean=None, unit="%", segment=None, goutallier=None, kjaer=None, n=None):
    """One per-level row; pixel area 1 mm2, so n_voxels = CSA and nothing NaN."""
    ratio = ff / 100.0 if ratio is None else ratio
    out = {"subject": subject}
    for key, value in (("rater", rater), ("session", session), ("map_name", map_name)):
        if value is not None:
            out[key] = value
    out.update(
        case_id=f"{subject}__{rater}__{session}__{map_name}", segment=segment or f"{muscle}_{side}_{level}",
        muscle=muscle, side=side, level=level, csa_mm2=float(csa), fat_fraction_pct=float(ff),
        fat_area_ratio=ratio, fat_csa_mm2=csa * ratio, lean_csa_mm2=csa * (1 - ratio), undefined_csa_mm2=0.0,
        mean=float(ff if mean is None else mean), unit=unit, map_kind=kind,
        goutallier=pd.NA if goutallier is None else goutallier, kjaer=pd.NA if kjaer is None else kjaer,
        n_voxels=int(csa if n is None else n), n_nan=0, n_below_noise=0, warnings="")
    return out


def table(rows):
    df = pd.DataFrame(rows)
    for col in ("goutallier", "kjaer"):
        df[col] = df[col].astype("Int64")
    return df


def mf_case(subject, base_ff=10.0, **kw):
    """Multifidus left/right at L3/4, L4/5, L5/S1: CSA 500/510/520 (+100 right), FF base+0/2/4 (+1 right)."""
    rows = []
    for side, dcsa, dff in (("left", 0, 0.0), ("right", 100, 1.0)):
        for i, lv in enumerate(LEVELS):
            rows.append(row(subject, "multifidus", side, lv, 500 + 10 * i + dcsa, base_ff + 2 * i + dff,
                            ratio=0.1 + 0.01 * i, goutallier=1, kjaer=1, **kw))
    return rows


# --------------------------------------------------------------------------- names
def test_variable_names_follow_the_spec_examples():
    assert variable_name("multifidus", "pdff", "mean") == "mf_pdff_mean"
    assert variable_name("psoas", "csa", "L4/5", "left") == "ps_csa_L4_5_left"
    assert variable_name("erector_spinae", "csa", "mean", "left") == "es_csa_mean_left"
    assert variable_name("quadratus_lumborum", "fatpct", "L5/S1", "right") == "ql_fatpct_L5_S1_right"
    assert variable_name("autochthon", "hu", "L3") == "au_hu_L3"
    assert variable_name("gluteus_maximus", "csa", "T12/L1", None) == "gluteus_maximus_csa_T12_L1"
    assert variable_name("Rectus femoris", "fa", "L4/5", "") == "rectus_femoris_fa_L4_5"


def test_long_muscle_names_are_shortened_to_64_characters():
    name = variable_name("a_very_long_muscle_name_" * 4, "goutallier", "T12/L1", "right")
    assert len(name) == 64 and NAME.match(name)
    assert name.endswith("_goutallier_T12_L1_right") and name.startswith("a_very_long_muscle_name_a")


@pytest.mark.parametrize("args", [("multifidus", "pdff", "L4-5"), ("multifidus", "pdff", "L4/5", "both"),
                                  ("multifidus", "PDFF", "L4/5"), ("multifidus", "p-dff", "mean"),
                                  ("multifidus", "x" * 70, "mean")])
def test_bad_name_parts_raise_input_error(args):
    with pytest.raises(InputError):
        variable_name(*args)


def test_check_variable_name_rules():
    check_variable_name("a" * 64)
    check_variable_name("mf_pdff_L4_5_left")
    for bad in ("a" * 65, "1abc", "_abc", "a-b", "a b", "", "BY", "to", "mf.pdff"):
        with pytest.raises(InputError):
            check_variable_name(bad)


def test_safe_column_name_from_manifest_headers():
    taken = {"subject"}
    assert safe_column_name("BMI (kg/m2)", taken) == "bmi_kg_m2"
    assert safe_column_name("Age", taken) == "age"
    assert safe_column_name("AGE", taken) == "age_2"  # case-insensitive clash
    assert safe_column_name("Âge ", taken) == "age_3"
    assert safe_column_name("1st visit", taken) == "v_1st_visit"
    assert safe_column_name("***", taken) == "var"
    assert safe_column_name("to", taken) == "to_var"  # SPSS reserved word
    assert safe_column_name("Subject", taken) == "subject_2"
    long = safe_column_name("x" * 100, taken)
    assert long == "x" * 64
    assert safe_column_name("x" * 100, taken) == "x" * 62 + "_2"
    assert {"bmi_kg_m2", "age", "age_2", "age_3", "v_1st_visit", "var", "to_var", "subject_2"} <= taken
    for name in taken:
        check_variable_name(name)


def test_natural_order_reads_numbers_as_numbers():
    assert sorted(["s10", "s2", "S1", None, "s2b"], key=natural_key) == ["S1", "s2", "s2b", "s10", None]


# --------------------------------------------------------------------------- values by hand
def test_per_level_left_right_and_three_level_means_by_hand():
    subjects, codebook = subjects_table(table(mf_case("s1")), None)
    r = subjects.iloc[0]
    assert r["mf_csa_L4_5_left"] == 510 and r["mf_csa_L4_5_right"] == 610 and r["mf_csa_L4_5"] == 560
    assert r["mf_pdff_L3_4_left"] == 10 and r["mf_pdff_L3_4_right"] == 11
    assert r["mf_pdff_mean_left"] == pytest.approx((10 + 12 + 14) / 3)
    assert r["mf_pdff_mean_right"] == pytest.approx((11 + 13 + 15) / 3)
    assert r["mf_pdff_mean"] == pytest.approx((10 + 12 + 14 + 11 + 13 + 15) / 6)
    assert r["mf_csa_mean"] == pytest.approx((500 + 510 + 520 + 600 + 610 + 620) / 6)
    assert r["mf_fatpct_L5_S1_left"] == pytest.approx(12.0)  # 100 x 0.12
    assert r["mf_fatcsa_L4_5_right"] == pytest.approx(610 * 0.11)
    assert r["mf_leancsa_L4_5_right"] == pytest.approx(610 * 0.89)
    assert r["mf_goutallier_L4_5_left"] == 1 and r["mf_kjaer_mean"] == 1
    # a PDFF map has no "mean" metric of its own, and no ff/hu
    assert not [c for c in subjects.columns if c.startswith(("mf_mean", "mf_ff", "mf_hu"))]
    # every muscle variable equals the case's own summary (same pooling code)
    s = summarize(table(mf_case("s1")))
    lr = s[(s.muscle == "multifidus") & (s.metric == "fat_fraction_pct") & (s.level == "mean L3/4-L5/S1")]
    assert r["mf_pdff_mean"] == lr["lr_mean"].iloc[0]
    cb = codebook.set_index("variable")
    assert list(codebook.columns) == CODEBOOK_COLUMNS
    assert cb.loc["mf_pdff_mean", "label"] == "Multifidus PDFF, mean of L3/4-L5/S1, left-right mean"
    assert (cb.loc["mf_pdff_mean", "unit"], cb.loc["mf_pdff_mean", "kind"]) == ("%", "muscle")
    assert (cb.loc["mf_pdff_mean", "level"], cb.loc["mf_pdff_mean", "side"]) == ("mean", "")
    assert cb.loc["mf_pdff_mean", "source"] == "fat_fraction_pct"
    assert "NaN unless all three levels exist" in cb.loc["mf_pdff_mean", "how"]
    assert (cb.loc["mf_csa_L4_5_left", "unit"], cb.loc["mf_fatpct_mean", "unit"]) == ("mm2", "%")
    assert cb.loc["mf_goutallier_mean", "unit"] == "grade" and "mean of grades" in cb.loc["mf_goutallier_mean", "how"]
    assert cb.loc["mf_csa_L4_5_left", "label"] == "Multifidus CSA, L4/5, left"
    assert cb.loc["mf_fatpct_mean_right", "source"] == "fat_area_ratio"
    assert list(cb.index) == list(subjects.columns)
    assert all(NAME.match(c) and len(c) <= 64 for c in subjects.columns)


def test_pooled_segments_add_areas_and_weight_means_like_summary():
    rows = [row("s1", "erector_spinae", "left", "L4/5", 800, 10, ratio=0.10, segment="longissimus_L",
                goutallier=1, kjaer=1),
            row("s1", "erector_spinae", "left", "L4/5", 400, 30, ratio=0.30, segment="iliocostalis_L",
                goutallier=2, kjaer=1),
            row("s1", "erector_spinae", "right", "L4/5", 1000, 20, ratio=0.2, goutallier=1, kjaer=1)]
    with pytest.warns(ParaspinalFatWarning, match="different grades"):
        subjects, _ = subjects_table(table(rows), None)
    r = subjects.iloc[0]
    assert r["es_csa_L4_5_left"] == 1200
    assert r["es_pdff_L4_5_left"] == pytest.approx((800 * 10 + 400 * 30) / 1200)
    assert r["es_fatpct_L4_5_left"] == pytest.approx(100 * (80 + 120) / 1200)
    assert r["es_fatcsa_L4_5_left"] == pytest.approx(80 + 120)
    assert r["es_pdff_L4_5"] == pytest.approx(((800 * 10 + 400 * 30) / 1200 + 20) / 2)
    assert r["es_kjaer_L4_5_left"] == 1  # both segments grade 1: the pooled ROI is grade 1
    assert np.isnan(r["es_goutallier_L4_5_left"])  # 1 and 2: unknown without the cut-offs, never a guess
    assert np.isnan(r["es_goutallier_L4_5"]) and r["es_goutallier_L4_5_right"] == 1
    assert "es_pdff_mean" not in subjects.columns  # no case measured the three levels


def test_a_missing_level_gives_nan_three_level_means_never_zero():
    rows = [r for r in mf_case("s1") if not (r["side"] == "left" and r["level"] == "L5/S1")]
    bad = mf_case("s2")
    bad[1]["fat_fraction_pct"] = np.nan  # left L4/5 not measurable
    subjects, _ = subjects_table(table(rows + bad), None)
    s1, s2 = subjects.set_index("subject").loc["s1"], subjects.set_index("subject").loc["s2"]
    assert np.isnan(s1["mf_pdff_mean_left"]) and np.isnan(s1["mf_pdff_mean"]) and np.isnan(s1["mf_csa_mean"])
    assert s1["mf_pdff_mean_right"] == pytest.approx(13.0)
    assert np.isnan(s1["mf_pdff_L5_S1_left"]) and np.isnan(s1["mf_pdff_L5_S1"])
    assert s1["mf_pdff_L5_S1_right"] == 15
    assert np.isnan(s2["mf_pdff_L4_5_left"]) and np.isnan(s2["mf_pdff_L4_5"]) and np.isnan(s2["mf_pdff_mean"])
    assert s2["mf_csa_L4_5_left"] == 510 and s2["mf_csa_mean"] == pytest.approx(560)
    assert (subjects.select_dtypes("number") != 0).all().all()


def test_bilateral_roi_has_no_side_columns_and_survives_a_csv_round_trip():
    rows = [row("s1", "psoas", "", lv, 900 + i, 5 + i, goutallier=0, kjaer=0) for i, lv in enumerate(LEVELS)]
    df = table(rows)
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    back = pd.read_csv(io.StringIO(buf.getvalue()), dtype={"subject": str})
    for t in (df, back):
        subjects, _ = subjects_table(t, None)
        r = subjects.iloc[0]
        assert r["ps_csa_L4_5"] == 901 and r["ps_pdff_mean"] == pytest.approx(6.0)
        assert not [c for c in subjects.columns if c.endswith(("_left", "_right"))]


def test_rows_per_subject_rater_session_in_natural_order():
    rows = []
    for subject, rater, session, ff in (("s10", "1", "1", 30), ("s2", "2", "1", 20), ("s2", "1", "10", 22),
                                        ("s2", "1", "2", 21), ("s2", "1", "1", 19)):
        rows += mf_case(subject, ff, rater=rater, session=session)
    subjects, codebook = subjects_table(table(rows), None)
    assert list(subjects.columns[:3]) == ["subject", "rater", "session"]
    got = list(subjects[["subject", "session", "rater"]].itertuples(index=False, name=None))
    assert got == [("s2", "1", "1"), ("s2", "1", "2"), ("s2", "2", "1"), ("s2", "10", "1"), ("s10", "1", "1")]
    assert list(subjects["mf_pdff_L3_4_left"]) == [19, 20, 21, 22, 30]
    assert list(codebook["kind"][:3]) == ["key", "key", "key"]


def test_one_per_subject_first_and_mean():
    rows = []
    for subject, rater, session, ff in (("s2", "10", "1", 40), ("s2", "2", "1", 20), ("s2", "1", "2", 30),
                                        ("s10", "1", "1", 50)):
        rows += mf_case(subject, ff, rater=rater, session=session)
    clinical = pd.DataFrame({"case_id": range(4), "subject": ["s2", "s2", "s2", "s10"],
                             "rater": ["10", "2", "1", "1"], "session": ["1", "1", "2", "1"],
                             "Age": [61, 61, 61, 70], "Sex": ["F", "F", "F", "M"]})
    subjects, _ = subjects_table(table(rows), clinical)
    first = one_per_subject(subjects)
    assert list(first["subject"]) == ["s2", "s10"]
    # lowest session (1), then lowest rater in natural order: "2" before "10"
    assert (first.loc[0, "session"], first.loc[0, "rater"]) == ("1", "2")
    assert first.loc[0, "mf_pdff_L3_4_left"] == 20
    mean = one_per_subject(subjects, repeated="mean")
    assert mean.loc[0, "mf_pdff_L3_4_left"] == pytest.approx((40 + 20 + 30) / 3)
    assert mean.loc[0, "mf_pdff_mean"] == pytest.approx(np.mean([40, 20, 30]) + 2.5)
    assert mean.loc[0, "mf_csa_L4_5_left"] == 510  # equal readings stay exactly equal
    assert (mean.loc[0, "age"], mean.loc[0, "sex"]) == (61, "F")
    assert mean.loc[0, "rater"] == "2;10;1" and mean.loc[0, "session"] == "1;1;2"
    assert mean.loc[1, "mf_pdff_L3_4_left"] == 50
    subjects.loc[0, "sex"] = "M"
    with pytest.raises(InputError, match="sex"):
        one_per_subject(subjects, repeated="mean")
    with pytest.raises(InputError):
        one_per_subject(subjects, repeated="median")


def test_one_per_subject_mean_skips_a_missing_reading():
    rows = mf_case("s1", 10, rater="a") + mf_case("s1", 20, rater="b")
    rows[0]["fat_fraction_pct"] = np.nan
    subjects, _ = subjects_table(table(rows), None)
    mean = one_per_subject(subjects, repeated="mean", key_columns=("subject", "rater"))
    assert mean.loc[0, "mf_pdff_L3_4_left"] == 20  # only reading b has it
    assert mean.loc[0, "mf_pdff_L4_5_left"] == pytest.approx(17)  # (12 + 22) / 2


def test_map_name_is_pivoted_into_the_names():
    rows = []
    for mp, unit, csa_shift, value in (("FA", "", 0, 0.45), ("ADC", "mm2/s", 7, 0.0015)):
        for side in ("left", "right"):
            for i, lv in enumerate(LEVELS):
                mean = value + (0.01 if side == "right" else 0.0) * (1 if mp == "FA" else 0.01) + i * 0.001
                rows.append(row("p1", "vastus_lateralis", side, lv, 2000 + 10 * i + csa_shift, np.nan,
                                ratio=np.nan, map_name=mp, kind="scalar", mean=mean, unit=unit))
    rows[-1]["csa_mm2"] = np.nan  # ADC right L5/S1 has no CSA: FA's is used
    subjects, codebook = subjects_table(table(rows), None)
    r = subjects.iloc[0]
    cols = set(subjects.columns)
    assert "vastus_lateralis_fa_L4_5_left" in cols and "vastus_lateralis_adc_L4_5_left" in cols
    assert not [c for c in cols if c.startswith("vastus_lateralis_mean_")]  # the map tags replace "mean"
    assert r["vastus_lateralis_fa_L4_5_left"] == pytest.approx(0.451)
    assert r["vastus_lateralis_adc_L3_4_right"] == pytest.approx(0.0015 + 0.0001)
    assert r["vastus_lateralis_fa_mean"] == pytest.approx(np.mean([0.45, 0.451, 0.452, 0.46, 0.461, 0.462]))
    # csa once: from the first map in natural order ("ADC" < "FA") that has a value
    assert r["vastus_lateralis_csa_L4_5_left"] == 2017
    assert r["vastus_lateralis_csa_L5_S1_right"] == 2020
    assert len([c for c in cols if c.startswith("vastus_lateralis_csa_L4_5")]) == 3
    cb = codebook.set_index("variable")
    assert (cb.loc["vastus_lateralis_adc_L4_5_left", "unit"], cb.loc["vastus_lateralis_adc_L4_5_left", "map_name"],
            cb.loc["vastus_lateralis_adc_L4_5_left", "metric"]) == ("mm2/s", "ADC", "mean")
    assert cb.loc["vastus_lateralis_fa_L4_5_left", "label"] == "Vastus lateralis FA, L4/5, left"
    assert cb.loc["vastus_lateralis_csa_L4_5_left", "map_name"] == ""
    assert "first map" in cb.loc["vastus_lateralis_csa_L4_5_left", "how"]


def test_metrics_follow_the_map_kind():
    rows = [row("c1", "autochthon", sd, "L4/5", 2000, np.nan, ratio=0.2, kind="ct", mean=-5.0 if sd == "left"
                else 15.0, unit="HU", goutallier=2, kjaer=1) for sd in ("left", "right")]
    rows += [row("d1", "autochthon", sd, "L4/5", 2000, 12.0, ratio=0.1, kind="dixon") for sd in ("left", "right")]
    subjects, codebook = subjects_table(table(rows), None)
    s = subjects.set_index("subject")
    assert s.loc["c1", "au_hu_L4_5"] == 5.0 and np.isnan(s.loc["d1", "au_hu_L4_5"])
    assert s.loc["d1", "au_ff_L4_5_left"] == 12.0 and np.isnan(s.loc["c1", "au_ff_L4_5_left"])
    assert s.loc["c1", "au_fatpct_L4_5_left"] == pytest.approx(20.0)
    assert "au_pdff_L4_5" not in s.columns and "au_mean_L4_5" not in s.columns
    assert codebook.set_index("variable").loc["au_hu_L4_5", "unit"] == "HU"


def test_clinical_columns_are_safe_and_clashes_get_clin():
    rows = mf_case("s1") + mf_case("s2", 20)
    clinical = pd.DataFrame({"case_id": ["a", "b"], "subject": ["s1", "s2"], "BMI (kg/m2)": [24.5, 31.0],
                             "mf_pdff_mean": [1.0, 2.0], "Sex": ["M", "F"], "=HYPERLINK(\"x\")": ["u", "v"]})
    subjects, codebook = subjects_table(table(rows), clinical)
    assert list(subjects.columns[:5]) == ["subject", "bmi_kg_m2", "mf_pdff_mean_clin", "sex", "hyperlink_x"]
    assert list(subjects["mf_pdff_mean_clin"]) == [1.0, 2.0]
    assert list(subjects["mf_pdff_mean"]) == [pytest.approx(12.5), pytest.approx(22.5)]
    cb = codebook.set_index("variable")
    assert (cb.loc["bmi_kg_m2", "label"], cb.loc["bmi_kg_m2", "unit"], cb.loc["bmi_kg_m2", "kind"]) == (
        "BMI (kg/m2)", "kg/m2", "clinical")
    assert cb.loc["mf_pdff_mean_clin", "label"] == "mf_pdff_mean"
    assert len({c.lower() for c in subjects.columns}) == subjects.shape[1]


def test_clinical_values_that_disagree_within_a_subject_are_refused():
    rows = mf_case("s1", map_name="FA", kind="pdff") + mf_case("s1", map_name="ADC", kind="pdff")
    clinical = pd.DataFrame({"case_id": ["a", "b"], "subject": ["s1", "s1"], "map_name": ["FA", "ADC"],
                             "age": [50, 51]})
    with pytest.raises(InputError, match="subject 's1'.*age"):
        subjects_table(table(rows), clinical)
    clinical["age"] = 50
    subjects, _ = subjects_table(table(rows), clinical)
    assert len(subjects) == 1 and subjects.loc[0, "age"] == 50


def test_several_map_kinds_without_map_name_and_bad_levels_are_refused():
    rows = [row("s1", "multifidus", "left", "L4/5", 500, 10), row("s1", "multifidus", "right", "L4/5", 500, 10,
                                                                   kind="dixon")]
    with pytest.raises(InputError, match="several map kinds"):
        subjects_table(table(rows), None)
    with pytest.raises(InputError, match="L4-5"):
        subjects_table(table([row("s1", "multifidus", "left", "L4-5", 500, 10)]), None)
    with pytest.raises(InputError, match="map kind 'xray'"):
        subjects_table(table([row("s1", "multifidus", "left", "L4/5", 500, 10, kind="xray")]), None)


# --------------------------------------------------------------------------- the assemble hook
def _manifest(clinical, keys=("subject",)):
    cols = [c for c in clinical.columns if c not in ("case_id",) + tuple(keys)]
    return SimpleNamespace(clinical=clinical, key_columns=keys, clinical_columns=cols)


@pytest.mark.parametrize("where", ["here", "worker processes"])
def test_write_subject_tables_writes_the_set_and_neutralises_formulas(tmp_path, where):
    """The same files whether the exports are written here or by other processes (the cohort's pool)."""
    pytest.importorskip("openpyxl")
    pytest.importorskip("pyreadstat")
    rows = mf_case('=HYPERLINK("http://evil","x")') + mf_case("s2", 20)
    clinical = pd.DataFrame({"case_id": ["a", "b"], "subject": ['=HYPERLINK("http://evil","x")', "s2"],
                             "Sex": ["M", "F"], "Age": [50, 60]})
    pd.DataFrame({"row": ["3"], "subject": ["@bad"], "case_id": ["x"], "file": ["f"], "stage": ["measure"],
                  "error_type": ["InputError"], "message": ["-oops"]}).to_csv(tmp_path / "errors.csv", index=False)
    if where == "here":
        written = write_subject_tables(tmp_path, table(rows), _manifest(clinical))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
            written = write_subject_tables(tmp_path, table(rows), _manifest(clinical), submit=pool.submit)
    assert list(written) == ["subjects.csv", "codebook.csv", "subjects.xlsx", "subjects.sav"]
    assert set(written) == {"subjects.csv", "codebook.csv", "subjects.xlsx", "subjects.sav"}
    assert all(p.is_file() and p.parent == tmp_path for p in written.values())
    back = pd.read_csv(tmp_path / "subjects.csv", dtype={"subject": str})
    assert list(back["subject"]) == ["'=HYPERLINK(\"http://evil\",\"x\")", "s2"]
    assert back.loc[1, "mf_pdff_mean"] == pytest.approx(22.5)
    import openpyxl
    book = openpyxl.load_workbook(tmp_path / "subjects.xlsx")
    assert book.sheetnames == ["subjects", "codebook", "errors"]
    assert book["subjects"]["A2"].value == "'=HYPERLINK(\"http://evil\",\"x\")"
    assert book["errors"]["B2"].value == "'@bad" and book["errors"]["G2"].value == "'-oops"
    import pyreadstat
    df, meta = pyreadstat.read_sav(str(tmp_path / "subjects.sav"))
    assert list(df["subject"]) == ["'=HYPERLINK(\"http://evil\",\"x\")", "s2"]
    assert meta.variable_value_labels["sex"] == {1.0: "M", 2.0: "F"}
    assert not list(tmp_path.glob(".*"))  # no staging folder or temporary file left


@pytest.mark.parametrize("where", ["here", "submitted, not found", "submitted, found but broken"])
def test_write_subject_tables_skips_a_missing_package_and_removes_its_stale_file(tmp_path, monkeypatch, where):
    """Without openpyxl no workbook, and none of an earlier run left: whether the exports are
    written here or submitted (where openpyxl may be found but fail to import in the worker)."""
    pytest.importorskip("pyreadstat")
    from concurrent.futures import ThreadPoolExecutor

    import ParaspinalFatLib.cohort.subject_tables as st
    real, real_installed = st.require, st.is_installed

    def fake(package, needed_for=None):
        if package == "openpyxl":
            raise MissingDependencyError("the package 'openpyxl' is needed ...")
        return real(package, needed_for)

    monkeypatch.setattr(st, "require", fake)
    if where == "submitted, not found":
        monkeypatch.setattr(st, "is_installed", lambda p: p != "openpyxl" and real_installed(p))
    else:
        monkeypatch.setattr(st, "is_installed", lambda p: p == "openpyxl" or real_installed(p))
    (tmp_path / "subjects.xlsx").write_bytes(b"old workbook")
    clinical = pd.DataFrame({"case_id": ["a"], "subject": ["s1"], "age": [40]})
    if where == "here":
        written = write_subject_tables(tmp_path, table(mf_case("s1")), _manifest(clinical))
    else:
        with ThreadPoolExecutor(2) as pool:  # threads: the patched require applies in the "worker"
            written = write_subject_tables(tmp_path, table(mf_case("s1")), _manifest(clinical), submit=pool.submit)
    assert list(written) == ["subjects.csv", "codebook.csv", "subjects.sav"]
    assert not (tmp_path / "subjects.xlsx").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codebook.csv", "subjects.csv", "subjects.sav"]


def test_write_subject_tables_changes_nothing_when_an_export_fails(tmp_path, monkeypatch):
    pytest.importorskip("pyreadstat")
    pytest.importorskip("openpyxl")
    import ParaspinalFatLib.cohort.exports as ex

    (tmp_path / "subjects.csv").write_text("old\n")

    def broken(path, data, codebook=None):
        path.write_bytes(b"partial")
        raise InputError("disk full")

    monkeypatch.setattr(ex, "write_spss", broken)
    clinical = pd.DataFrame({"case_id": ["a"], "subject": ["s1"], "age": [40]})
    with pytest.raises(InputError, match="disk full"):
        write_subject_tables(tmp_path, table(mf_case("s1")), _manifest(clinical))
    assert (tmp_path / "subjects.csv").read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["subjects.csv"]


def test_write_subject_tables_changes_nothing_when_a_submitted_export_fails(tmp_path, monkeypatch):
    """An export failing where it was submitted: its error is raised here, after the other export
    finished, and the set is not committed."""
    pytest.importorskip("pyreadstat")
    pytest.importorskip("openpyxl")
    from concurrent.futures import ThreadPoolExecutor

    import ParaspinalFatLib.cohort.exports as ex

    (tmp_path / "subjects.csv").write_text("old\n")
    submitted = []

    def broken(path, sheets):
        path.write_bytes(b"partial")
        raise InputError("disk full")

    monkeypatch.setattr(ex, "write_excel", broken)
    clinical = pd.DataFrame({"case_id": ["a"], "subject": ["s1"], "age": [40]})
    with ThreadPoolExecutor(2) as pool:
        def submit(fn, *args):
            future = pool.submit(fn, *args)
            submitted.append((fn.__name__, args, future))
            return future

        with pytest.raises(InputError, match="disk full"):
            write_subject_tables(tmp_path, table(mf_case("s1")), _manifest(clinical), submit=submit)
    assert all(f.done() for _, _, f in submitted)
    # first the two imports of the exports' packages (warming the workers), then the two exports
    assert [(name, args[:2] if name == "_export" else args) for name, args, _ in submitted] == [
        ("_import_packages", (["openpyxl", "pyreadstat"],)), ("_import_packages", (["openpyxl", "pyreadstat"],)),
        ("_export", (broken, "openpyxl")), ("_export", (ex.write_spss, "pyreadstat"))]
    assert isinstance(submitted[2][2].exception(), InputError)
    assert submitted[3][2].result() is True  # the SPSS file was written (into the staging folder)...
    assert (tmp_path / "subjects.csv").read_text() == "old\n"  # ...but nothing was committed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["subjects.csv"]


def test_all_cases_failed_gives_an_empty_table():
    subjects, codebook = subjects_table(pd.DataFrame({"subject": pd.Series([], dtype=object)}),
                                        pd.DataFrame({"case_id": ["a"], "subject": ["s1"], "age": [3]}))
    assert len(subjects) == 0 and list(subjects.columns) == ["subject", "age"]
    assert list(codebook["variable"]) == ["subject", "age"]


def test_first_reading_rows_follow_the_one_per_subject_rule_in_natural_order():
    """The level profile and the tables pick the same reading: 's2' comes before 's10'."""
    from ParaspinalFatLib.cohort.subject_tables import first_reading_rows

    long = pd.DataFrame({"subject": ["A", "A", "A", "A", "B", "B"],
                         "session": ["s10", "s10", "s2", "s2", "1", "1"],
                         "rater": ["x", "x", "x", "x", "2", "1"],
                         "value": [1, 2, 3, 4, 5, 6]})
    assert first_reading_rows(long).tolist() == [False, False, True, True, False, True]
    one = one_per_subject(long[["subject", "session", "rater", "value"]].drop_duplicates(["subject", "session", "rater"]),
                          key_columns=("subject", "session", "rater"))
    assert one.set_index("subject").loc["A", "session"] == "s2"
    assert first_reading_rows(long.drop(columns=["session", "rater"])).all()

"""Reading and checking a cohort manifest (ParaspinalFatLib.cohort.manifest).

Every expected value is written out by hand from the manifest text of the test:
row numbers are the file's line numbers, paths are joined by hand, option
values are the literal numbers of the cells.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from ParaspinalFatLib.cohort.manifest import (
    KEY_COLUMNS, OPTION_KINDS, CaseSpec, make_case_id, option_columns, read_manifest,
)
from ParaspinalFatLib.errors import InputError
from ParaspinalFatLib.measurement.pipeline import MeasureOptions


def _touch(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def study(tmp_path):
    """A manifest folder with placeholder input files (the manifest only checks that they exist)."""
    root = tmp_path / "proj"
    for name in ("S1", "S2", "S3", "S4"):
        _touch(root / "img" / f"{name}.nrrd")
        _touch(root / "seg" / f"{name}.seg.nrrd")
    _touch(root / "img" / "S5_fat.nrrd")
    _touch(root / "img" / "S5_water.nrrd")
    _touch(root / "marks" / "S1.mrk.json", "{}")
    return root


def _write(path: Path, rows, sep=",", bom=False, newline="\r\n") -> Path:
    with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=sep, lineterminator=newline)
        for row in rows:
            writer.writerow(row)
    return path


# --------------------------------------------------------------------------- good manifests
def test_paths_options_and_keys_of_a_good_manifest(study, tmp_path, monkeypatch):
    manifest = _write(study / "cases.csv", [
        ["subject", "rater", "image", "segmentation", "map", "n_slices", "fat_window", "levels", "ct_units_check",
         "goutallier_cutoffs", "bone_levels", "bone_slab_mm", "markups", "classifier_params", "age"],
        ["S1", "A", "img/S1.nrrd", "seg/S1.seg.nrrd", "", "3", "", "L4/5;L5/S1", "", "10,25,40,60", "", "",
         "marks/S1.mrk.json", "", "61"],
        ["S1", "B", "img/S1.nrrd", "seg/S1.seg.nrrd", "CT", "", "-190,-29", "all", "no", "", "none", "all", "",
         '{"k": 3}', ""],
    ])
    monkeypatch.chdir(tmp_path)  # relative paths must resolve against the manifest's folder, not here
    m = read_manifest(manifest)
    assert m.errors == []
    assert m.key_columns == ["subject", "rater"]
    assert m.clinical_columns == ["age"]
    assert [c.case_id for c in m.cases] == ["S1__r-A", "S1__r-B"]
    assert [c.row for c in m.cases] == [2, 3]
    a, b = m.cases
    assert a.image == str(study / "img" / "S1.nrrd")
    assert a.segmentation == str(study / "seg" / "S1.seg.nrrd")
    assert a.key == {"subject": "S1", "rater": "A"}
    assert a.options == {"n_slices": 3, "levels": ["L4/5", "L5/S1"], "goutallier_cutoffs": (10.0, 25.0, 40.0, 60.0),
                         "markups": str(study / "marks" / "S1.mrk.json"), "subject": "S1"}
    assert b.options == {"map_kind": "ct", "fat_window": (-190.0, -29.0), "levels": "all", "ct_units_check": False,
                         "bone_levels": [], "bone_slab_mm": None, "classifier_params": {"k": 3}, "subject": "S1"}
    # the same subject's age once given, once empty: no disagreement, the value on both rows
    assert m.clinical["age"].tolist() == [61.0, 61.0]
    assert m.clinical["age"].dtype == np.float64
    assert m.clinical["case_id"].tolist() == ["S1__r-A", "S1__r-B"]


def test_bom_semicolons_crlf_and_decimal_commas(study):
    manifest = _write(study / "semi.csv", [
        ["Subject", "Image", "Segmentation", "height_m", "bmi"],
        ["S1", "img/S1.nrrd", "seg/S1.seg.nrrd", "1,75", "22,5"],
        ["S2", "img/S2.nrrd", "seg/S2.seg.nrrd", "1.62", "NA"],
    ], sep=";", bom=True)
    assert manifest.read_bytes().startswith(b"\xef\xbb\xbf")
    m = read_manifest(manifest)
    assert m.errors == []
    assert [c.options["height_m"] for c in m.cases] == [1.75, 1.62]
    assert m.clinical["bmi"].tolist()[0] == 22.5 and np.isnan(m.clinical["bmi"].tolist()[1])
    assert [c.subject for c in m.cases] == ["S1", "S2"]


def test_tab_separated_and_blank_lines_keep_file_line_numbers(study):
    text = ("subject\timage\tsegmentation\tnote\n\n"
            "S1\timg/S1.nrrd\tseg/S1.seg.nrrd\t\"two\nlines\"\n"
            "S2\timg/S2.nrrd\tseg/missing.seg.nrrd\t\n")
    (study / "tab.tsv").write_text(text, encoding="utf-8")
    m = read_manifest(study / "tab.tsv")
    assert [c.row for c in m.cases] == [3]
    assert m.clinical["note"].tolist() == ["two\nlines"]
    assert [(e.row, e.subject) for e in m.errors] == [(5, "S2")]  # line 3-4 is S1's quoted two-line cell


def test_dixon_rows_from_fat_and_water_columns(study):
    manifest = _write(study / "dixon.csv", [
        ["subject", "fat", "water", "segmentation"],
        ["S5", "img/S5_fat.nrrd", "img/S5_water.nrrd", "seg/S1.seg.nrrd"],
    ])
    (case,) = read_manifest(manifest).cases
    assert case.image is None
    assert case.options == {"map_kind": "dixon", "fat": str(study / "img" / "S5_fat.nrrd"),
                            "water": str(study / "img" / "S5_water.nrrd"), "subject": "S5"}


def test_inline_label_names_and_level_positions(study):
    manifest = _write(study / "names.csv", [
        ["subject", "image", "segmentation", "label_names", "level_slices"],
        ["S1", "img/S1.nrrd", "seg/S1.seg.nrrd", "1=right ES,2=left ES", "L4/5=18"],
        ["S2", "img/S2.nrrd", "seg/S2.seg.nrrd", "1=right ES,1=left ES", "L9=3"],
        ["S3", "img/S3.nrrd", "seg/S3.seg.nrrd", "names/missing.ctbl", ""],
    ])
    m = read_manifest(manifest)
    assert m.cases[0].options["label_names"] == "1=right ES,2=left ES"
    assert m.cases[0].options["level_slices"] == "L4/5=18"
    by_row = {}
    for e in m.errors:
        by_row.setdefault(e.row, []).append(e.message)
    assert sorted(by_row) == [3, 4]
    assert any("label_names" in msg and "given twice" in msg for msg in by_row[3])
    assert any("level_slices" in msg and "'L9'" in msg for msg in by_row[3])
    assert by_row[4] == [f"label_names file not found: {study / 'names' / 'missing.ctbl'} (column 'label_names'; "
                         f"relative paths are read from the manifest's folder {study}); check the path"]


def test_defaults_apply_unless_the_row_overrides(study, tmp_path, monkeypatch):
    manifest = _write(study / "d.csv", [
        ["subject", "image", "segmentation", "n_slices"],
        ["S1", "img/S1.nrrd", "seg/S1.seg.nrrd", ""],
        ["S2", "img/S2.nrrd", "seg/S2.seg.nrrd", "5"],
    ])
    marks = _touch(tmp_path / "cwd" / "m.fcsv")
    monkeypatch.chdir(tmp_path / "cwd")
    m = read_manifest(manifest, defaults={"n_slices": 3, "map": "PDFF", "pdff_scale": "0-1", "markups": "m.fcsv",
                                          "unit": None, "levels": "L4/5,L5/S1"})
    assert [c.options["n_slices"] for c in m.cases] == [3, 5]
    for c in m.cases:
        assert c.options["map_kind"] == "pdff" and c.options["pdff_scale"] == "0-1"
        assert c.options["markups"] == str(marks)  # command-line paths: relative to the current folder
        assert c.options["levels"] == ["L4/5", "L5/S1"]
        assert "unit" not in c.options
    with pytest.raises(TypeError, match="n_slicez"):
        read_manifest(manifest, defaults={"n_slicez": 3})
    with pytest.raises(InputError, match="n_slices"):
        read_manifest(manifest, defaults={"n_slices": 4})
    with pytest.raises(InputError, match="markups.*not found"):
        read_manifest(manifest, defaults={"markups": "nope.fcsv"})
    with pytest.raises(InputError, match="qc_dir"):
        read_manifest(manifest, defaults={"qc_dir": "qc"})


# --------------------------------------------------------------------------- bad rows
def test_every_bad_row_is_listed_and_the_others_pass(study):
    rows = [
        ["subject", "session", "image", "segmentation", "map", "n_slices", "age", "sex", "note"],
        ["S1", "1", "img/S1.nrrd", "seg/S1.seg.nrrd", "pdff", "1", "61", "F", '=HYPERLINK("http://x","y")'],  # 2 ok
        ["S2", "1", "img/S2.nrrd", "seg/nope.seg.nrrd", "", "", "70", "M", ""],                 # 3 missing file
        ["S3", "1", "img/S3.nrrd", "seg/S3.seg.nrrd", "pdf", "", "55", "F", ""],                # 4 unknown map kind
        ["S4", "1", "img/S4.nrrd", "seg/S4.seg.nrrd", "", "abc", "48", "F", ""],                # 5 n_slices abc
        ["S1", "2", "img/S1.nrrd", "seg/S1.seg.nrrd", "", "", "", "F", ""],                     # 6 ok (age empty)
        ["S4", "2", "img/S4.nrrd", "seg/S4.seg.nrrd", "", "", "49", "F", ""],                   # 7 age 48 vs 49
        ["S3", "2", "img/S3.nrrd", "seg/S3.seg.nrrd", "", "", "55", "F", ""],                   # 8 dup of 9
        ["S3", "2", "img/S3.nrrd", "seg/S3.seg.nrrd", "", "", "55", "F", ""],                   # 9 dup of 8
        ["S2", "3", "img/S2.nrrd", "seg/S2.seg.nrrd", "", "2", "abc", "M", ""],                 # 10 even n, age abc
    ]
    m = read_manifest(_write(study / "bad.csv", rows))
    assert [c.row for c in m.cases] == [2, 6]
    assert m.n_rows == 9
    assert m.error_rows == [3, 4, 5, 7, 8, 9, 10]
    msgs = {}
    for e in m.errors:
        assert e.stage == "manifest" and e.error_type == "InputError"
        msgs.setdefault(e.row, []).append(e.message)
    assert any(msg.startswith("segmentation file not found: " + str(study / "seg" / "nope.seg.nrrd"))
               for msg in msgs[3])
    assert [e.file for e in m.errors if e.row == 3 and "not found" in e.message] == [str(study / "seg" / "nope.seg.nrrd")]
    assert "column 'map' = 'pdf': unknown map kind 'pdf'; use one of pdff, dixon, ct, t1, t2, scalar" in msgs[4]
    assert "column 'n_slices' = 'abc': not a whole number" in msgs[5]
    # S4: rows 5 and 7 disagree on age (48 vs 49): both rows are errors
    age = [msg for msg in msgs[7] if "clinical column 'age' differs" in msg]
    assert age == ["clinical column 'age' differs between the rows of subject 'S4': 48 (row 5) vs 49 (row 7); "
                   "a subject's clinical values must be the same on all its rows (or left empty)"]
    assert age[0] in msgs[5]
    for row in (8, 9):
        assert any(msg.startswith("duplicate key (subject='S3', session='2') on rows 8, 9") for msg in msgs[row])
    assert any("n_slices (--n-slices) must be an odd number >= 1" in msg and "got 2" in msg for msg in msgs[10])
    assert any(msg.startswith("clinical column 'age': 'abc' is not a number, while 7 of the column's 8 values")
               for msg in msgs[10])
    # S2's age: 70 (row 3) vs 'abc' (row 10, not a number, so missing): no disagreement message
    assert not any("differs" in msg for msg in msgs[3])
    # the formula-like cell is kept as text, exactly, never evaluated
    assert m.clinical["note"].tolist()[0] == '=HYPERLINK("http://x","y")'
    assert m.clinical["age"].tolist() == [61.0, 61.0]
    assert m.clinical["sex"].tolist() == ["F", "F"]


def test_dixon_and_map_conflicts_are_row_errors(study):
    m = read_manifest(_write(study / "dx.csv", [
        ["subject", "image", "fat", "water", "segmentation", "map"],
        ["S1", "img/S1.nrrd", "", "img/S5_water.nrrd", "seg/S1.seg.nrrd", ""],         # water without dixon
        ["S2", "img/S2.nrrd", "img/S5_fat.nrrd", "img/S5_water.nrrd", "seg/S2.seg.nrrd", "dixon"],  # fat twice
        ["S3", "", "img/S5_fat.nrrd", "", "seg/S3.seg.nrrd", "dixon"],                  # no water
        ["S4", "", "", "", "seg/S4.seg.nrrd", ""],                                       # no image
        ["S5", "img/nope_fat.nrrd", "", "img/S5_water.nrrd", "seg/S1.seg.nrrd", "dixon"],  # fat (as image) missing
        ["S6", "", "img/S5_fat.nrrd", "img/nope_water.nrrd", "seg/S1.seg.nrrd", ""],      # water missing
    ]))
    assert m.cases == []
    text = {e.row: e.message for e in m.errors}
    assert "only used with map 'dixon'" in text[2]
    assert "the fat image is given twice" in text[3]
    assert "needs a fat image" in text[4] and "water" in text[4]
    assert text[5] == "column 'image' is empty; give the image file of this measurement"
    assert text[6].startswith(f"image file not found: {study / 'img' / 'nope_fat.nrrd'}")
    assert text[7].startswith(f"water file not found: {study / 'img' / 'nope_water.nrrd'}")


# --------------------------------------------------------------------------- the file as a whole
@pytest.mark.parametrize("header, needle", [
    (["subject", "image"], "segmentation"),
    (["subject", "segmentation", "fat"], "image (or fat + water)"),
    (["image", "segmentation"], "subject"),
])
def test_missing_required_columns_name_the_file_and_columns(study, header, needle):
    path = _write(study / "cols.csv", [header, ["S1"] * len(header)])
    with pytest.raises(InputError) as info:
        read_manifest(path)
    assert str(path) in str(info.value) and needle in str(info.value)
    for column in header:
        assert repr(column) in str(info.value)


def test_unreadable_manifests(study):
    with pytest.raises(InputError, match="file not found"):
        read_manifest(study / "none.csv")
    (study / "latin1.csv").write_bytes("subject,image,segmentation,name\nS1,a,b,M\xfcller\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8.*CSV UTF-8"):
        read_manifest(study / "latin1.csv")
    with pytest.raises(InputError, match="no measurement row"):
        read_manifest(_write(study / "header.csv", [["subject", "image", "segmentation"]]))
    with pytest.raises(InputError, match="qc_dir.*cases/<case_id>/qc"):
        read_manifest(_write(study / "qc.csv", [["subject", "image", "segmentation", "qc_dir"], ["S1", "a", "b", "q"]]))
    with pytest.raises(InputError, match="case_id"):
        read_manifest(_write(study / "cid.csv", [["subject", "image", "segmentation", "case_id"], ["S1", "a", "b", "c"]]))
    with pytest.raises(InputError, match="both give 'map_kind'"):
        read_manifest(_write(study / "two.csv", [["subject", "image", "segmentation", "map", "map_kind"],
                                                  ["S1", "a", "b", "ct", "ct"]]))


def test_values_under_an_unnamed_column_and_near_miss_option_names(study):
    m = read_manifest(_write(study / "x.csv", [
        ["subject", "image", "segmentation", "n_slice", ""],
        ["S1", "img/S1.nrrd", "seg/S1.seg.nrrd", "3", ""],
        ["S2", "img/S2.nrrd", "seg/S2.seg.nrrd", "3", "oops"],
    ]))
    assert [c.subject for c in m.cases] == ["S1"]
    assert [(e.row, "'oops'" in e.message) for e in m.errors] == [(3, True)]
    assert m.clinical_columns == ["n_slice"]
    assert any("'n_slice'" in note and "'n_slices'" in note for note in m.notes)


# --------------------------------------------------------------------------- case ids
def test_case_ids_are_readable_safe_and_never_collide(study):
    assert make_case_id({"subject": "S001"}) == ("S001", False)
    assert make_case_id({"subject": "S1", "rater": "A", "session": "2", "map_name": "FA"}) == (
        "S1__r-A__s-2__m-FA", False)
    key = {"subject": "a b/c", "rater": "", "session": "", "map_name": ""}
    digest = hashlib.sha256(json.dumps(["a b/c", "", "", ""]).encode()).hexdigest()[:8]
    assert make_case_id(key) == (f"a_b_c_{digest}", True)
    assert make_case_id({"subject": ".hidden"})[0].startswith("_hidden_")
    # 'a b' and 'a_b' differ: the first is changed, so it gets the hash
    assert make_case_id({"subject": "a b"})[0] != make_case_id({"subject": "a_b"})[0]
    m = read_manifest(_write(study / "ids.csv", [
        ["subject", "image", "segmentation"],
        ["S1", "img/S1.nrrd", "seg/S1.seg.nrrd"],
        ["s1", "img/S2.nrrd", "seg/S2.seg.nrrd"],
        ['=HYPERLINK("http://x","y")', "img/S3.nrrd", "seg/S3.seg.nrrd"],
    ]))
    ids = [c.case_id for c in m.cases]
    assert len({i.lower() for i in ids}) == 3  # distinct even on a case-insensitive file system
    assert ids[0].startswith("S1_") and ids[1].startswith("s1_")
    assert ids[2].startswith("_HYPERLINK__http___x___y___")
    assert all(set(i) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") for i in ids)
    assert m.cases[2].subject == '=HYPERLINK("http://x","y")'


# --------------------------------------------------------------------------- the option table
def test_every_measure_option_has_a_cell_conversion():
    fields = {f.name for f in dataclasses.fields(MeasureOptions)}
    assert set(OPTION_KINDS) == fields
    columns = option_columns()
    assert columns["map"] == "map_kind"
    assert "qc_dir" not in columns and "subject" not in columns and "fat_labelmap" not in columns
    assert set(KEY_COLUMNS) == {"subject", "rater", "session", "map_name"}


def test_case_spec_options_are_accepted_by_measure_options(study):
    m = read_manifest(_write(study / "o.csv", [
        ["subject", "image", "segmentation", "muscle_window", "kjaer_cutoffs", "per_slice", "muscles", "segments",
         "cranio_caudal", "bmd_calibration", "convention"],
        ["S1", "img/S1.nrrd", "seg/S1.seg.nrrd", "-29, 151", "10,50", "yes", "multifidus;psoas", "MF_L,MF_R",
         "0,0,-1", "0.8,-2.5", "TotalSegmentator"],
    ]))
    (case,) = m.cases
    opts = MeasureOptions.from_kwargs(**case.options)
    assert opts.muscle_window == (-29.0, 151.0) and opts.kjaer_cutoffs == (10.0, 50.0)
    assert opts.per_slice is True and opts.muscles == ["multifidus", "psoas"] and opts.segments == ["MF_L", "MF_R"]
    assert opts.cranio_caudal == (0.0, 0.0, -1.0) and opts.bmd_calibration == (0.8, -2.5)
    assert opts.convention == "totalsegmentator"
    assert isinstance(case, CaseSpec) and os.path.isabs(case.image)

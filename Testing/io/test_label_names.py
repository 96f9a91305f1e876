"""Inline label names (ParaspinalFatLib.io.label_names): ``"1=right ES,2=right MF"``.

Expected tables are written out by hand; error messages must name the option and the
offending item.
"""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from ParaspinalFatLib.errors import InputError
from ParaspinalFatLib.io.label_names import describe_names, parse_inline_names, read_label_table
from ParaspinalFatLib.io.segmentation_files import read_segmentation

OPTION = "label_names (--label-names)"


def test_inline_table_basic():
    assert read_label_table("1=right ES,2=right MF,3=left MF,4=left ES") == {
        1: ("right ES", None), 2: ("right MF", None), 3: ("left MF", None), 4: ("left ES", None)}


def test_inline_whitespace_semicolons_and_trailing_separator():
    got = read_label_table("  1 = right ES ;2=right MF,  10=MF_L_L4/5 ,")
    assert got == {1: ("right ES", None), 2: ("right MF", None), 10: ("MF_L_L4/5", None)}
    assert list(got) == [1, 2, 10]
    assert read_label_table("7=psoas") == {7: ("psoas", None)}  # one item


@pytest.mark.parametrize("text, item, fragment", [
    ("1=a,1=b", "1=b", "label value 1 is given twice ('1=a' and '1=b')"),
    ("1=right MF,2=right MF", "2=right MF", "name 'right MF' is given twice ('1=right MF' and '2=right MF')"),
    ("1=right MF,2=Right mf", "2=Right mf", "(ignoring upper/lower case)"),
    ("1=a,x=b", "x=b", "the label value 'x' is not a whole number"),
    ("1=a,1.5=b", "1.5=b", "the label value '1.5' is not a whole number"),
    ("right ES=1", "right ES=1", "the label value 'right ES' is not a whole number"),
    ("0=background,1=a", "0=background", "value 0 is the background"),
    ("1=a,-2=b", "-2=b", "label values are whole numbers >= 1"),
    ("1=a,3=", "3=", "has an empty name"),
    ("1=a,3= ", "3=", "has an empty name"),
    ("1=a,b", "b", "has no '='"),
    ("1=a=b,2=c", "1=a=b", "has more than one '='"),
    (f"1=a,{2 ** 63}=b", f"{2 ** 63}=b", "above the largest supported label value"),
])
def test_inline_errors_name_option_and_item(text, item, fragment):
    with pytest.raises(InputError) as err:
        read_label_table(text)
    msg = str(err.value)
    assert msg.startswith(OPTION + ":"), msg
    assert f"'{item}'" in msg, msg
    assert fragment in msg, msg


def test_inline_without_items_is_refused():
    with pytest.raises(InputError, match=r"label_names \(--label-names\): no VALUE=NAME items"):
        parse_inline_names(" ,; ")


def test_missing_file_keeps_its_message_and_mentions_the_inline_form(tmp_path):
    for path in (str(tmp_path / "names.csv"), "/data/run=3/names.csv", "labels=v2.ctbl"):
        with pytest.raises(InputError) as err:
            read_label_table(path)
        msg = str(err.value)
        assert "not found; check the path" in msg and "'1=right ES,2=right MF" in msg, path
    # a PathLike is always a path, even when it reads like an inline table
    with pytest.raises(InputError, match="not found"):
        read_label_table(tmp_path / "1=a")


def test_existing_file_wins_over_the_inline_reading(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "1=a.csv").write_text("value,name\n5,multifidus_left\n", encoding="utf-8")
    assert read_label_table("1=a.csv") == {5: ("multifidus_left", None)}


def test_describe_names_inline(tmp_path):
    assert describe_names("1=a,2=b") == "inline names '1=a,2=b'"
    assert describe_names(str(tmp_path / "n.csv")) == str(tmp_path / "n.csv")


def test_read_segmentation_with_inline_names(tmp_path):
    arr = np.zeros((4, 5, 6), np.uint8)
    arr[1, 1:3, 1:3] = 1
    arr[2, 2:4, 3:5] = 2
    image = sitk.GetImageFromArray(arr)
    path = tmp_path / "labels.nii.gz"
    sitk.WriteImage(image, str(path))
    seg = read_segmentation(path, names="1=multifidus_left; 2=multifidus_right")
    assert sorted(seg.names()) == ["multifidus_left", "multifidus_right"]
    assert np.array_equal(seg.mask("multifidus_right"), arr == 2)

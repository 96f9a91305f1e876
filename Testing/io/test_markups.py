"""Slicer markups lines and points (ParaspinalFatLib.io.markups): read_lines, read_control_points.

Files are written here in the Slicer ``.mrk.json`` schema; expected LPS coordinates are
the written ones (LPS) or with x and y negated (RAS).
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from ParaspinalFatLib.errors import InputError, LevelWarning
from ParaspinalFatLib.io.markups import read_control_points, read_lines


def _cp(label, position, status="defined"):
    return {"id": label, "label": label, "position": [float(v) for v in position], "positionStatus": status}


def _markup(mtype, name, points, system="LPS", units="mm"):
    return {"type": mtype, "name": name, "coordinateSystem": system, "coordinateUnits": units,
            "controlPoints": [_cp(*p) for p in points]}


def _write(path, *markups):
    path.write_text(json.dumps({"@schema": "markups-schema-v1.0.3.json#", "markups": list(markups)}),
                    encoding="utf-8")
    return path


def test_read_lines_lps_and_ras(tmp_path):
    path = _write(
        tmp_path / "l.mrk.json",
        _markup("Line", "L4/5", [("L-1", (1.0, -2.0, 3.0)), ("L-2", (4.0, 5.0, 6.0))], "LPS"),
        _markup("Line", "L5/S1", [("L-1", (1.0, -2.0, 3.0)), ("L-2", (4.0, 5.0, 6.0))], "RAS"),
        _markup("Fiducial", "F", [("L3/4", (0.0, 0.0, 9.0))]),
    )
    lines = read_lines(path)
    assert [ln[0] for ln in lines] == ["L4/5", "L5/S1"]
    np.testing.assert_allclose(lines[0][1], [1.0, -2.0, 3.0])
    np.testing.assert_allclose(lines[0][2], [4.0, 5.0, 6.0])
    np.testing.assert_allclose(lines[1][1], [-1.0, 2.0, 3.0])
    np.testing.assert_allclose(lines[1][2], [-4.0, -5.0, 6.0])
    assert lines[1][3] == f"line 'L5/S1' in {path} (RAS)"
    # points of the point list only; the lines are not points and raise no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        points = read_control_points(path)
    assert [p[0] for p in points] == ["L3/4"]


def test_read_lines_label_choice_and_units(tmp_path):
    path = _write(
        tmp_path / "u.mrk.json",
        _markup("Line", "L", [("L4-L5", (1000.0, 0.0, 0.0)), ("L-2", (0.0, 2000.0, 0.0))], units="um"),
        _markup("Line", "ruler", [("L-1", (0.0, 0.0, 0.0)), ("L-2", (0.0, 1.0, 0.0))]),
        _markup("Line", "L3", [("L4/5", (0.0, 0.0, 0.0)), ("L-2", (0.0, 1.0, 0.0))]),
    )
    lines = read_lines(path)
    # name not a level -> first point's label; neither -> the name; a level name wins
    assert [ln[0] for ln in lines] == ["L4-L5", "ruler", "L3"]
    np.testing.assert_allclose(lines[0][1], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(lines[0][2], [0.0, 2.0, 0.0])


def test_read_lines_needs_two_placed_points(tmp_path):
    path = _write(
        tmp_path / "p.mrk.json",
        _markup("Line", "L4/5", [("a", (0, 0, 0)), ("b", (0, 1, 0), "undefined")]),
        _markup("Line", "L3/4", [("a", (0, 0, 0))]),
    )
    with pytest.warns(LevelWarning) as rec:
        assert read_lines(path) == []
    messages = " ".join(str(w.message) for w in rec)
    assert "line 'L4/5' has 1 placed control point(s) (of 2)" in messages
    assert "line 'L3/4' has 1 placed control point(s) (of 1)" in messages


def test_other_markup_types_still_warn(tmp_path):
    path = _write(tmp_path / "c.mrk.json", _markup("Curve", "spine", [("L4/5", (0, 0, 0))]))
    with pytest.warns(LevelWarning, match="'spine' is of type 'Curve', not a point list or a line"):
        assert read_control_points(path) == []
    assert read_lines(path) == []


def test_read_lines_errors_and_fcsv(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_lines(tmp_path / "missing.mrk.json")
    bad = _write(tmp_path / "b.mrk.json", _markup("Line", "L4/5", [("a", (0, 0, 0)), ("b", (0, 1, 0))], "IJK"))
    with pytest.raises(InputError, match="coordinateSystem 'IJK'"):
        read_lines(bad)
    nan = _write(tmp_path / "n.mrk.json", _markup("Line", "L4/5", [("a", (0, 0, 0)), ("b", (0, float("nan"), 0))]))
    with pytest.raises(InputError, match="non-finite position"):
        read_lines(nan)
    fcsv = tmp_path / "F.fcsv"
    fcsv.write_text("# CoordinateSystem = LPS\n# columns = id,x,y,z,label\n1,1,2,3,L4/5\n", encoding="utf-8")
    assert read_lines(fcsv) == []
    assert [p[0] for p in read_control_points(fcsv)] == ["L4/5"]

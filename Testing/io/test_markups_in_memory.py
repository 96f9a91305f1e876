"""Markups held in memory (ParaspinalFatLib.io.markups.InMemoryMarkups) are read as a file is.

The oracle is the file reader: the same point lists and lines written as a Slicer
``.mrk.json`` (in the file's own schema) must give the same labels, LPS points, warnings
and landmarks; the expected LPS coordinates are the RAS ones with x and y negated.
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from ParaspinalFatLib.anatomy.landmarks import find_landmarks, read_markups
from ParaspinalFatLib.errors import InputError, LevelError, LevelWarning
from ParaspinalFatLib.io.markups import InMemoryMarkups, Markup, read_control_points, read_lines

POINTS = [("L3/4", (1.5, -20.0, 40.0)), ("L4", (2.0, -22.0, 25.0)), ("L5", (2.5, -24.0, -5.0)), ("gap", (0, 0, 0))]
LINE = [("L-1", (0.0, -40.0, 12.0)), ("L-2", (0.0, 10.0, 8.0))]


def _memory():
    return InMemoryMarkups((
        Markup("points", "Fiducial", [p[0] for p in POINTS], [p[1] for p in POINTS], "RAS"),
        Markup("L4/5", "Line", [p[0] for p in LINE], [p[1] for p in LINE], "RAS"),
    ), source="markups 'points', 'L4/5'")


def _file(tmp_path):
    def markup(mtype, name, points):
        return {"type": mtype, "name": name, "coordinateSystem": "RAS", "coordinateUnits": "mm",
                "controlPoints": [{"id": str(i), "label": label, "position": list(map(float, xyz)),
                                   "positionStatus": "defined"} for i, (label, xyz) in enumerate(points)]}

    path = tmp_path / "levels.mrk.json"
    path.write_text(json.dumps({"@schema": "markups-schema-v1.0.3.json#",
                                "markups": [markup("Fiducial", "points", POINTS), markup("Line", "L4/5", LINE)]}))
    return path


def test_points_and_lines_equal_the_file_reader(tmp_path):
    memory, path = _memory(), _file(tmp_path)
    got, want = read_control_points(memory), read_control_points(path)
    assert [p[0] for p in got] == [p[0] for p in want] == [p[0] for p in POINTS]
    for (_, a, where), (_, b, _), (_, ras) in zip(got, want, POINTS):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, np.array(ras) * [-1.0, -1.0, 1.0])
        assert where == "of 'points' in markups 'points', 'L4/5' (RAS)"
    (lab, p0, p1, where), = read_lines(memory)
    (lab_f, q0, q1, _), = read_lines(path)
    assert lab == lab_f == "L4/5" and where == "line 'L4/5' in markups 'points', 'L4/5' (RAS)"
    np.testing.assert_array_equal(p0, q0)
    np.testing.assert_array_equal(p1, q1)


def test_landmarks_equal_the_file_reader(tmp_path):
    with warnings.catch_warnings(record=True) as seen_memory:
        warnings.simplefilter("always")
        memory = read_markups(_memory(), include_vertebrae=True)
    with warnings.catch_warnings(record=True) as seen_file:
        warnings.simplefilter("always")
        from_file = read_markups(_file(tmp_path), include_vertebrae=True)
    assert list(memory) == list(from_file) == ["L3/4", "L4", "L4/5", "L5"]
    for level in memory:
        np.testing.assert_array_equal(memory[level].point_lps, from_file[level].point_lps)
        assert memory[level].source == "markups"
        assert memory[level].direction_source == from_file[level].direction_source
    # the line gives L4/5 at its midpoint, not the vertebra points' midpoint
    np.testing.assert_allclose(memory["L4/5"].point_lps, [0.0, 15.0, 10.0])
    # the label that is no level is warned about the same way
    assert [str(w.message).split(":", 1)[1] for w in seen_memory if w.category is LevelWarning] == \
        [str(w.message).split(":", 1)[1] for w in seen_file if w.category is LevelWarning]
    assert any("'gap'" in str(w.message) for w in seen_memory)
    # find_landmarks takes it alone or in a list, like a path
    assert list(find_landmarks(markups=_memory())) == ["L3/4", "L4/5"]
    with pytest.raises(LevelError, match="given twice"):
        find_landmarks(markups=[_memory(), _memory()])


def test_line_label_rule_and_unplaced_points():
    marks = InMemoryMarkups((
        Markup("L", "Line", ["L5/S1", "L-2"], [(0, 0, 0), (0, 30, 2)]),          # first point names the level
        Markup("ruler", "Line", ["a", "b", "c"], [(0, 0, 0), (0, 1, 0), (0, 2, 0)], placed=[True, False, True]),
        Markup("short", "Line", ["a", "b"], [(0, 0, 0), (0, 1, 0)], placed=[True, False]),
        Markup("p", "Fiducial", ["L2/3", "L3/4"], [(0, 0, 1), (0, 0, 2)], placed=[False, True]),
    ))
    with pytest.warns(LevelWarning) as seen:
        lines = read_lines(marks)
        points = read_control_points(marks)
    assert [ln[0] for ln in lines] == ["L5/S1", "ruler"]
    assert [p[0] for p in points] == ["L3/4"]
    text = " ".join(str(w.message) for w in seen)
    assert "line 'short' has 1 placed control point(s) (of 2)" in text
    assert "control point 'L2/3' of 'p' is not placed" in text
    assert str(marks) == "markups in memory"


@pytest.mark.parametrize("kwargs, words", [
    ({"kind": "Curve"}, "kind must be 'Fiducial'"),
    ({"coordinate_system": "IJK"}, "coordinate_system must be 'LPS' or 'RAS'"),
    ({"positions": [(0, 0)]}, "positions must be n x 3 numbers"),
    ({"positions": [(0, 0, float("nan"))]}, "not finite"),
    ({"labels": ["a", "b"]}, "1 control points but 2 labels"),
    ({"placed": [True, True]}, "1 control points but 1 labels and 2 placed flags"),
])
def test_bad_markups_are_refused(kwargs, words):
    args = {"name": "m", "kind": "Fiducial", "labels": ["L4/5"], "positions": [(0, 0, 0)]}
    args.update(kwargs)
    with pytest.raises(InputError, match=words):
        Markup(**args)
    with pytest.raises(InputError, match="must be Markup objects"):
        InMemoryMarkups(({"name": "m"},))


def test_positions_are_copied_and_read_only():
    xyz = np.array([[1.0, 2.0, 3.0]])
    m = Markup("p", "Fiducial", ["L4/5"], xyz, "RAS")
    xyz[0, 0] = 99.0
    assert m.positions[0, 0] == 1.0 and not m.positions.flags.writeable
    np.testing.assert_array_equal(m.lps(), [[-1.0, -2.0, 3.0]])

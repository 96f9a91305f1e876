"""Typed level positions (ParaspinalFatLib.anatomy.level_positions): slice numbers and z.

The grid is 10 x 20 x 30 voxels (i, j, k), spacing (0.8, 0.8, 3) mm, rotated 25 degrees
about (1, 2, 3) and far from the origin.  Expected points are written out from the
definition ``origin + R @ (spacing * ijk)`` and the closed-form central line, not with the
library's own index helpers.
"""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from ParaspinalFatLib.anatomy.level_positions import (
    landmarks_from_slices,
    landmarks_from_z,
    parse_level_assignments,
    typed_positions,
)
from ParaspinalFatLib.errors import InputError, LevelWarning
from ParaspinalFatLib.geometry import Geometry


def rotation(axis, degrees):
    a = np.asarray(axis, dtype=float)
    a = a / np.linalg.norm(a)
    t = np.radians(degrees)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k


R = rotation((1, 2, 3), 25)
SIZE = (10, 20, 30)
SPACING = np.array([0.8, 0.8, 3.0])
ORIGIN = np.array([-120.0, 85.5, -410.25])
GEOM = Geometry(SIZE, tuple(SPACING), tuple(ORIGIN), tuple(R.ravel()))
OPT = "level_slices (--level-slices)"


def point_at(i, j, k):
    return ORIGIN + R @ (SPACING * np.array([i, j, k], dtype=float))


CENTRE = point_at(4.5, 9.5, 14.5)  # grid centre
NORMAL_K = R[:, 2]  # orthonormal grid: the k planes' normal is the k axis


def test_grid_is_as_described():
    assert R[2, 2] > 0.9  # k runs (mostly) superior: higher slices have higher z
    assert not np.allclose(R, np.eye(3))


# ============================================================================ parsing
def test_parse_any_spelling_whitespace_and_separators():
    got = parse_level_assignments(" L5-S1 = 24 ; L34=12 ,L4-L5=18.0,", option=OPT)
    assert got == {"L3/4": 12.0, "L4/5": 18.0, "L5/S1": 24.0}
    assert list(got) == ["L3/4", "L4/5", "L5/S1"]  # cranial to caudal
    assert parse_level_assignments({"L4-5": 18, "L3": "10.5"}, option=OPT) == {"L3": 10.5, "L4/5": 18.0}
    assert parse_level_assignments(["L3/4=12", "L4/5=18"], option=OPT) == {"L3/4": 12.0, "L4/5": 18.0}
    assert parse_level_assignments("L4/5=-312.5", option="level_z (--level-z)") == {"L4/5": -312.5}


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"),
    (" , ;", "empty"),
    ({}, "empty"),
    ("L4/5=18,L4-L5=19", "L4/5 is given twice ('L4/5=18' and 'L4-L5=19')"),
    ("L3-L5=4", "item 'L3-L5=4': 'L3-L5' is not a vertebra or disc level"),
    ("disc=4", "item 'disc=4': 'disc' is not a vertebra or disc level"),
    ("L4/5=abc", "item 'L4/5=abc': 'abc' is not a finite number"),
    ("L4/5=nan", "item 'L4/5=nan': 'nan' is not a finite number"),
    ("L4/5=-312,5", "item '5' is not LEVEL=NUMBER"),  # decimal comma
    ("L4/5==3", "item 'L4/5==3' is not LEVEL=NUMBER"),
    ({"L4/5": True}, "'True' is not a finite number"),
    (12, "expected a text"),
])
def test_parse_errors_name_option_and_item(text, fragment):
    with pytest.raises(InputError) as err:
        parse_level_assignments(text, option=OPT)
    assert str(err.value).startswith(OPT + ":")
    assert fragment in str(err.value)


# ============================================================================ slices
def test_slice_base_0_is_the_centre_of_that_slice():
    found = landmarks_from_slices("L4/5=12", GEOM, 2)
    lm = found["L4/5"]
    assert lm.source == "level_slices"
    np.testing.assert_allclose(lm.point_lps, point_at(4.5, 9.5, 12), atol=1e-9)
    index, offset = GEOM.nearest_slice(lm.point_lps, 2)
    assert index == 12 and abs(offset) < 1e-9
    assert "slice 12 (0-based) of axis k" in lm.detail and OPT in lm.detail
    assert lm.direction_lps is None


def test_slice_base_1_is_one_lower():
    lm = landmarks_from_slices("L4/5=12", GEOM, 2, base=1)["L4/5"]
    np.testing.assert_allclose(lm.point_lps, point_at(4.5, 9.5, 11), atol=1e-9)
    assert GEOM.nearest_slice(lm.point_lps, 2)[0] == 11
    assert "slice 12 (1-based) of axis k (ITK index 11)" in lm.detail


def test_slices_along_another_axis():
    lm = landmarks_from_slices({"L3": 7.0}, GEOM, 0)["L3"]  # whole float accepted
    np.testing.assert_allclose(lm.point_lps, point_at(7, 9.5, 14.5), atol=1e-9)
    assert "of axis i" in lm.detail


def test_slice_out_of_range_base_0_suggests_base_1():
    with pytest.raises(InputError) as err:
        landmarks_from_slices("L3/4=25,L5/S1=30", GEOM, 2)
    msg = str(err.value)
    assert "level L5/S1: slice 30 is outside the image" in msg
    assert "axis k has 30 slices, numbered 0..29 when counting from 0" in msg
    assert "slice_base (--slice-base) 1" in msg and "exists when counting from 1" in msg


def test_slice_out_of_range_base_1_suggests_base_0():
    with pytest.raises(InputError) as err:
        landmarks_from_slices("L4/5=0", GEOM, 2, base=1)
    msg = str(err.value)
    assert "level L4/5: slice 0 is outside the image" in msg
    assert "numbered 1..30 when counting from 1" in msg
    assert "slice_base (--slice-base) 0" in msg and "exists when counting from 0" in msg


@pytest.mark.parametrize("value, base", [(31, 0), (31, 1), (-1, 0), (-1, 1)])
def test_slice_out_of_range_for_both_bases_suggests_no_base(value, base):
    with pytest.raises(InputError) as err:
        landmarks_from_slices({"L4/5": value}, GEOM, 2, base=base)
    msg = str(err.value)
    assert f"slice {value} is outside the image" in msg
    assert f"numbered {base}..{29 + base}" in msg
    assert "exists when counting from" not in msg


def test_slice_number_must_be_whole_and_base_and_axis_valid():
    with pytest.raises(InputError, match=r"level L4/5: slice 12.5 is not a whole number"):
        landmarks_from_slices("L4/5=12.5", GEOM, 2)
    with pytest.raises(InputError, match=r"slice_base \(--slice-base\) must be 0 .* or 1"):
        landmarks_from_slices("L4/5=12", GEOM, 2, base=2)
    with pytest.raises(InputError, match="slice axis must be 0, 1 or 2"):
        landmarks_from_slices("L4/5=12", GEOM, 3)


def test_adjacent_typed_vertebrae_give_their_disc():
    found = landmarks_from_slices("L3=20,L4=10,L5=2,L5/S1=1", GEOM, 2)
    assert list(found) == ["L3", "L3/4", "L4", "L4/5", "L5", "L5/S1"]
    np.testing.assert_allclose(found["L3/4"].point_lps, point_at(4.5, 9.5, 15), atol=1e-9)
    np.testing.assert_allclose(found["L4/5"].point_lps, point_at(4.5, 9.5, 6), atol=1e-9)
    np.testing.assert_allclose(found["L3"].point_lps, point_at(4.5, 9.5, 20), atol=1e-9)
    assert found["L3/4"].source == "level_slices" and "midpoint of the typed L3" in found["L3/4"].detail
    # a typed disc is kept, not replaced by the midpoint
    typed = landmarks_from_slices("L3=20,L4=10,L3/4=16", GEOM, 2)
    np.testing.assert_allclose(typed["L3/4"].point_lps, point_at(4.5, 9.5, 16), atol=1e-9)
    # no L4: no L3/4 or L4/5 from L3 and L5
    assert list(landmarks_from_slices("L3=20,L5=2", GEOM, 2)) == ["L3", "L5"]


def test_levels_out_of_cranio_caudal_order_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        landmarks_from_slices("L3/4=20,L4/5=14,L5/S1=8", GEOM, 2)  # k runs superior: fine
    with pytest.warns(LevelWarning, match=r"not in cranio-caudal order.*L3/4 \(z = .*\) is not above L4/5"):
        landmarks_from_slices("L3/4=8,L4/5=14", GEOM, 2)


# ============================================================================ z
def test_z_point_lies_on_the_central_line_at_that_z():
    z = float(CENTRE[2]) + 17.25
    lm = landmarks_from_z(f"L4/5={z}", GEOM, 2)["L4/5"]
    assert lm.source == "level_z"
    assert lm.point_lps[2] == pytest.approx(z, abs=1e-9)
    expected = CENTRE + (z - CENTRE[2]) / NORMAL_K[2] * NORMAL_K
    np.testing.assert_allclose(lm.point_lps, expected, atol=1e-9)
    np.testing.assert_allclose(np.cross(lm.point_lps - CENTRE, NORMAL_K), 0.0, atol=1e-9)
    # nearest slice: distance along the normal / 3 mm from the centre slice 14.5
    k_expected = int(np.floor(14.5 + (z - CENTRE[2]) / NORMAL_K[2] / 3.0 + 0.5))
    assert GEOM.nearest_slice(lm.point_lps, 2)[0] == k_expected
    assert f"nearest slice {k_expected}" in lm.detail and "z = " in lm.detail


def test_z_outside_the_image_gives_the_range():
    lo = CENTRE[2] + (-0.5 - 14.5) * 3.0 * NORMAL_K[2]
    hi = CENTRE[2] + (29.5 - 14.5) * 3.0 * NORMAL_K[2]
    inside = landmarks_from_z({"L5/S1": lo + 0.01}, GEOM, 2)["L5/S1"]
    assert GEOM.nearest_slice(inside.point_lps, 2)[0] == 0
    with pytest.raises(InputError) as err:
        landmarks_from_z({"L4/5": hi + 0.5}, GEOM, 2)
    msg = str(err.value)
    assert msg.startswith("level_z (--level-z): level L4/5")
    assert f"covers z = {lo:.2f} to {hi:.2f} mm" in msg


def test_z_refused_when_slices_are_parallel_to_z():
    # k runs along LPS x: its slice planes contain the z axis
    sagittal = Geometry(SIZE, tuple(SPACING), tuple(ORIGIN), (0, 0, 1, 0, 1, 0, 1, 0, 0))
    with pytest.raises(InputError, match=r"parallel to the z axis.*level_slices \(--level-slices\)"):
        landmarks_from_z("L4/5=-400", sagittal, 2)


# ============================================================================ both
def test_typed_positions_combine_and_refuse_a_level_in_both():
    z_l4 = float(point_at(4.5, 9.5, 10)[2])
    found = typed_positions(GEOM, 2, level_slices="L3=20", level_z=f"L4={z_l4}")
    assert list(found) == ["L3", "L3/4", "L4"]
    assert found["L3"].source == "level_slices" and found["L4"].source == "level_z"
    expected_l4 = CENTRE + (z_l4 - CENTRE[2]) / NORMAL_K[2] * NORMAL_K
    np.testing.assert_allclose(found["L3/4"].point_lps, (point_at(4.5, 9.5, 20) + expected_l4) / 2, atol=1e-9)
    with pytest.raises(InputError, match="level L4/5 is given both in level_slices"):
        typed_positions(GEOM, 2, level_slices="L4/5=12", level_z=f"L4-L5={z_l4}")
    assert typed_positions(GEOM, 2) == {}
    base1 = typed_positions(GEOM, 2, level_slices="L4/5=12", slice_base=1)
    assert GEOM.nearest_slice(base1["L4/5"].point_lps, 2)[0] == 11
    assert re.search(r"\(1-based\)", base1["L4/5"].detail)

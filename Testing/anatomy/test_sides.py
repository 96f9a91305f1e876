"""Left/right check of sided segment names (ParaspinalFatLib.anatomy.sides).

The catalogue cases (swapped names on phantoms, tilted/rotated/flipped grids, RAS files,
MyoSegmenTUM) are in Testing/test_bad_inputs.py, section "sides".  Here: the centroid
routine against the library's reference one, the midline model (a curved spine), the
sources and their wording, the arguments and the table helper, and TotalSegmentator's
real outputs.  Synthetic shapes are axis-aligned boxes whose centroids are their centres.
"""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

from ParaspinalFatLib.anatomy.landmarks import segment_centroids
from ParaspinalFatLib.anatomy.sides import SideCheck, _centroids, add_side_warnings, check_sides
from ParaspinalFatLib.errors import InputError, NameWarning
from ParaspinalFatLib.geometry import Geometry
from ParaspinalFatLib.phantom import make_phantom
from ParaspinalFatLib.segmentation import Segment, Segmentation


# ============================================================================ helpers
def _grid(shape=(40, 60, 120), spacing=(1.0, 1.0, 2.0), origin=(-60.0, -30.0, -40.0)):
    """Geometry for a numpy (k, j, i) shape; voxel (i, j, k) lies at origin + spacing * (i, j, k)."""
    nk, nj, ni = shape
    return Geometry((ni, nj, nk), spacing, origin, (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0))


def _box(layer, geom, centre, half, value):
    """Paint the voxels whose centres lie within ``half`` mm of ``centre`` (LPS); returns its centroid."""
    nk, nj, ni = layer.shape
    o, s = np.asarray(geom.origin), np.asarray(geom.spacing)
    ranges = []
    for axis, n in zip(range(3), (ni, nj, nk)):
        lo = int(np.ceil((centre[axis] - half[axis] - o[axis]) / s[axis] - 1e-9))
        hi = int(np.floor((centre[axis] + half[axis] - o[axis]) / s[axis] + 1e-9))
        ranges.append((max(lo, 0), min(hi, n - 1)))
    (i0, i1), (j0, j1), (k0, k1) = ranges
    assert not layer[k0:k1 + 1, j0:j1 + 1, i0:i1 + 1].any()
    layer[k0:k1 + 1, j0:j1 + 1, i0:i1 + 1] = value
    return o + s * np.array([(i0 + i1) / 2, (j0 + j1) / 2, (k0 + k1) / 2])


@pytest.fixture(scope="module")
def phantom3d():
    return make_phantom(mode="3d")


# ============================================================================ centroids
@pytest.mark.parametrize("dtype, big", [(np.uint8, 0), (np.int16, 0), (np.uint16, 60000), (np.int32, 2 ** 31 - 9),
                                        (np.int64, 2 ** 40), (np.uint32, 2 ** 32 - 3)])
def test_centroids_equal_the_reference_routine(phantom3d, dtype, big):
    """Run-length centroids == landmarks.segment_centroids for every label type and size,
    on two layers (an overlapping segment), with an empty segment left out."""
    seg = phantom3d.segmentation
    lay0 = seg.layers[0].astype(dtype)
    segs = list(seg.segments)
    if big:
        lay0[lay0 == 1] = big  # multifidus_left gets a large label value
        segs[0] = dataclasses.replace(segs[0], label_value=int(big))
    lay1 = np.zeros_like(lay0)
    lay1[5:20, 10:30, 40:60] = 7  # overlaps muscles of layer 0
    segs += [Segment("overlap_box", 1, 7), Segment("empty_one", 1, 9)]
    two = Segmentation(np.stack([lay0, lay1]), seg.geometry, segs, source="two layers")
    ours = _centroids(two, two.segments)
    ref = segment_centroids(two)
    assert set(ref) == {s.name for s in segs} - {"empty_one"}
    for s in two.segments:
        if s.name == "empty_one":
            assert (1, 9) not in ours
        else:
            np.testing.assert_allclose(ours[(s.layer, s.label_value)], ref[s.name][0], atol=1e-9)


def test_centroids_of_interleaved_runs_and_full_width_rows():
    """A label that leaves and re-enters a row, and labels that span whole rows of the box."""
    geom = _grid((4, 5, 6))
    lay = np.zeros((4, 5, 6), np.uint8)
    lay[0, 0, :] = 1       # a whole row: runs touch the next row's start
    lay[0, 1, :] = 1
    lay[1, 2, [0, 1, 4, 5]] = 2
    lay[1, 2, [2, 3]] = 3  # label 2 interrupted by label 3 in the same row
    lay[3, 4, 5] = 2
    seg = Segmentation(lay, geom, [Segment("a", 0, 1), Segment("b", 0, 2), Segment("c", 0, 3)])
    ours = _centroids(seg, seg.segments)
    for value in (1, 2, 3):
        kji = np.argwhere(lay == value).mean(axis=0)
        np.testing.assert_allclose(ours[(0, value)], np.asarray(geom.origin) + kji[::-1] * geom.spacing)


# ============================================================================ midline model
def _curved_spine(swap_top=False):
    """A C-shaped lumbar scoliosis: vertebra centres at x = -20, +20, +20, -20 mm (L2..L5, 16 mm
    apart; x and z uncorrelated, so the principal spine axis is exactly +z), with 2-D multifidus
    ROIs 12 mm either side of each vertebra (named with the vertebra level)."""
    geom = _grid((40, 60, 140), spacing=(1.0, 1.0, 2.0), origin=(-70.0, -30.0, -40.0))
    lay = np.zeros(geom.shape, np.uint8)
    segs, truth = [], {}
    value = 0
    for n, level in enumerate(("L2", "L3", "L4", "L5")):
        z = -30.0 + 16.0 * n
        x0 = (-20.0, 20.0, 20.0, -20.0)[n]
        value += 1
        v = _box(lay, geom, (x0, 0.0, z), (9.0, 7.0, 5.0), value)
        segs.append(Segment(f"vertebrae_{level}", 0, value))
        for side, sign in (("L", 1.0), ("R", -1.0)):
            value += 1
            c = _box(lay, geom, (x0 + sign * 12.0, 20.0, z), (4.0, 5.0, 0.9), value)
            name = f"MF_{side}_{level}"
            if swap_top and level == "L2":
                name = f"MF_{'R' if side == 'L' else 'L'}_{level}"
            segs.append(Segment(name, 0, value))
            truth[name] = c[0] - v[0]
    return Segmentation(lay, geom, segs, source="scoliosis"), truth


def test_curved_spine_is_followed_level_by_level():
    seg, truth = _curved_spine()
    res = check_sides(seg, warn=False)
    assert res.warnings == {} and res.midline_source == "spine_masks"
    assert res.midline_detail == "from vertebra masks"
    assert sorted(abs(v) for v in truth.values()) == pytest.approx([12.0] * 8)
    for name, off in truth.items():
        assert res.offsets_mm[name] == pytest.approx(off, abs=1e-9)
    # teeth: one straight midline through the mean vertebra x (0) would put the right ROI of L3
    # 8 mm to the patient's LEFT, beyond the 5 mm margin
    assert segment_centroids(seg, ["MF_R_L3"])["MF_R_L3"][0][0] == pytest.approx(8.0)


def test_curved_spine_swapped_level_is_flagged_alone():
    seg, truth = _curved_spine(swap_top=True)
    res = check_sides(seg, warn=False)
    assert set(res.warnings) == {"MF_L_L2", "MF_R_L2"}
    assert res.warnings["MF_L_L2"] == (
        "segment 'MF_L_L2' is named left but its centroid lies 12.0 mm to the patient's RIGHT of the spine "
        "midline (from vertebra masks; it lies to the patient's right of 'MF_R_L2'); check the label names "
        "(left/right swapped?)")


def test_spinal_canal_and_sacrum_are_midline_sources_and_named():
    geom = _grid()
    lay = np.zeros(geom.shape, np.uint8)
    _box(lay, geom, (0.0, 12.0, 7.5), (6.0, 5.0, 22.5), 1)  # spinal canal
    _box(lay, geom, (0.0, 0.0, -30.0), (20.0, 12.0, 8.0), 2)  # sacrum
    _box(lay, geom, (25.0, 20.0, 0.0), (6.0, 6.0, 20.0), 3)
    _box(lay, geom, (-25.0, 20.0, 0.0), (6.0, 6.0, 20.0), 4)
    seg = Segmentation(lay, geom, [Segment("spinal canal", 0, 1), Segment("sacrum", 0, 2),
                                   Segment("multifidus right", 0, 3), Segment("multifidus left", 0, 4)])
    res = check_sides(seg, warn=False)
    assert res.midline_detail == "from sacrum and spinal canal masks"
    assert res.offsets_mm == pytest.approx({"multifidus right": 25.0, "multifidus left": -25.0})
    assert set(res.warnings) == {"multifidus right", "multifidus left"}


def test_axial_rotation_without_pairs_does_not_raise_a_false_alarm(phantom3d):
    """Only left muscles (no pair gives the left direction) on a patient rotated 25 degrees about the
    spine: +x is then 25 degrees off, the multifidus comes within the margin -> no warning, listed."""
    seg = phantom3d.segmentation
    t = np.radians(25.0)
    r = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    g = seg.geometry
    d = np.asarray(g.direction).reshape(3, 3)
    moved = seg.with_layers(seg.layers, Geometry(g.size, g.spacing, tuple(r @ np.asarray(g.origin)),
                                                 tuple((r @ d).ravel())))
    left_only = Segmentation(moved.layers, moved.geometry,
                             [s for s in moved.segments if not s.name.endswith("right")], source="rotated")
    res = check_sides(left_only, warn=False)
    assert res.warnings == {}
    assert res.near_midline == ["multifidus_left"]
    # the same with the pairs: the left direction follows the rotation, offsets as unrotated
    both = check_sides(moved, warn=False)
    plain = check_sides(seg, warn=False)
    assert both.offsets_mm == pytest.approx(plain.offsets_mm, abs=1e-9)


# ============================================================================ arguments
def test_segments_argument_checks_any_kind_and_names_are_checked(phantom3d):
    seg = phantom3d.segmentation
    renamed = [dataclasses.replace(s, name={"psoas_left": "kidney_right"}.get(s.name, s.name)) for s in seg.segments]
    other = Segmentation(seg.layers, seg.geometry, renamed, source="kidney")
    assert "kidney_right" not in check_sides(other, warn=False).offsets_mm  # not a muscle: not by default
    res = check_sides(other, segments=["kidney_right", "multifidus_left"], warn=False)
    assert set(res.offsets_mm) == {"kidney_right", "multifidus_left"}
    assert set(res.warnings) == {"kidney_right"}
    with pytest.raises(InputError, match="no segment named 'nope'"):
        check_sides(other, segments=["nope"])


def test_empty_sided_segment_is_listed_not_checked(phantom3d):
    seg = phantom3d.segmentation
    empty = Segmentation(seg.layers, seg.geometry, list(seg.segments) + [Segment("quadratus_lumborum_left", 0, 250)],
                         source="e")
    res = check_sides(empty, warn=False)
    assert res.unchecked == {"quadratus_lumborum_left": "empty segment"}
    assert res.warnings == {} and len(res.offsets_mm) == 6


@pytest.mark.parametrize("kwargs, match", [
    ({"margin_mm": float("nan")}, "margin_mm must be a finite number >= 0"),
    ({"margin_mm": "wide"}, "margin_mm must be a finite number >= 0"),
    ({"cranio_caudal": (0, 0, 0)}, "cranio_caudal must be a non-zero LPS 3-vector"),
    ({"cranio_caudal": (0, 1)}, "cranio_caudal must be a non-zero LPS 3-vector"),
])
def test_bad_arguments_are_refused(phantom3d, kwargs, match):
    with pytest.raises(InputError, match=match):
        check_sides(phantom3d.segmentation, **kwargs)


def test_left_right_spine_axis_is_refused():
    ph = make_phantom(mode="2d")
    with pytest.raises(InputError, match="runs left-right"):
        check_sides(ph.segmentation, cranio_caudal=(1.0, 0.0, 0.0))


def test_nothing_sided_gives_an_empty_result():
    geom = _grid()
    lay = np.zeros(geom.shape, np.uint8)
    _box(lay, geom, (0.0, 0.0, 0.0), (20.0, 10.0, 10.0), 1)
    res = check_sides(Segmentation(lay, geom, [Segment("psoas", 0, 1)]))
    assert (res.warnings, res.offsets_mm, res.unchecked, res.note, res.midline_source) == ({}, {}, {}, "", None)


# ============================================================================ table helper
def test_add_side_warnings_appends_to_the_rows_of_the_segment():
    check = SideCheck(warnings={"MF_L": "segment 'MF_L' is named left but ..."})
    table = pd.DataFrame({"segment": ["MF_L", "MF_L", "MF_R"], "warnings": ["", "psoas on T1", None]})
    out = add_side_warnings(table, check)
    assert list(out["warnings"]) == ["segment 'MF_L' is named left but ...",
                                     "psoas on T1; segment 'MF_L' is named left but ...", ""]
    assert list(table["warnings"])[:2] == ["", "psoas on T1"]  # the input is not modified
    assert add_side_warnings(None, check) is None
    assert add_side_warnings(table, SideCheck()) is table


def test_messages_are_issued_as_name_warnings(phantom3d):
    seg = phantom3d.segmentation
    swapped = [dataclasses.replace(s, name={"psoas_left": "psoas_right", "psoas_right": "psoas_left"}.get(s.name, s.name))
               for s in seg.segments]
    with pytest.warns(NameWarning) as rec:
        res = check_sides(Segmentation(seg.layers, seg.geometry, swapped, source="s"))
    assert sorted(str(w.message) for w in rec) == sorted(res.warnings.values())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_sides(Segmentation(seg.layers, seg.geometry, swapped, source="s"), warn=False)


# ============================================================================ real data
def _read_ts(realdata, name):
    from ParaspinalFatLib.io.segmentation_files import read_segmentation

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_segmentation(realdata / "totalsegmentator" / name)


@pytest.mark.parametrize("name, detail", [
    ("example_seg_fast_force_split.nii.gz", "from vertebra, sacrum and spinal cord masks"),  # CT, stored RAS
    ("example_seg_mr.nii.gz", "from vertebra, disc and spinal cord masks"),  # one label for all vertebrae
])
def test_totalsegmentator_outputs_pass_and_a_swap_is_caught(realdata, name, detail):
    seg = _read_ts(realdata, name)
    res = check_sides(seg, warn=False)
    assert res.midline_detail == detail and res.warnings == {} and res.near_midline == []
    sided = [s.name for s in seg.segments if s.name.startswith(("autochthon", "iliopsoas", "gluteus"))]
    assert set(res.offsets_mm) == {n for n in sided if n in segment_centroids(seg, sided)}
    for n, off in res.offsets_mm.items():
        assert (off > 0) == n.endswith("left")
    # independent: autochthon offset ~ its centroid x minus the x of the vertebra centroids
    cents = segment_centroids(seg)
    spine_x = np.mean([p[0] for k, (p, _n) in cents.items() if k.startswith("vertebrae")])
    for side in ("left", "right"):
        assert res.offsets_mm[f"autochthon_{side}"] == pytest.approx(cents[f"autochthon_{side}"][0][0] - spine_x,
                                                                      abs=4.0)
    swapped = [dataclasses.replace(s, name={"autochthon_left": "autochthon_right",
                                            "autochthon_right": "autochthon_left"}.get(s.name, s.name))
               for s in seg.segments]
    res2 = check_sides(Segmentation(seg.layers, seg.geometry, swapped, source=seg.source), warn=False)
    assert set(res2.warnings) == {"autochthon_left", "autochthon_right"}
    assert f"({detail}; it lies to the patient's right of 'autochthon_right')" in res2.warnings["autochthon_left"]

"""Level landmarks (ParaspinalFatLib.levels): disc masks, vertebra masks, sacrum, markups.

Synthetic phantoms are built in a "spine frame" (axis u tilted from LPS +z) on an
oblique, anisotropic voxel grid whose origin is far from 0; expected points are the
analytical centroids of the shapes (box and ellipsoid centres, volume-weighted means),
computed here without the library.
"""
from __future__ import annotations

import gzip
import json
import struct
import warnings
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from ParaspinalFatLib.errors import InputError, LevelError
from ParaspinalFatLib.geometry import Geometry
from ParaspinalFatLib.anatomy.landmarks import LevelLandmark, disc_normal_from_line, find_landmarks, read_markups, landmarks_from_discs, landmarks_from_vertebrae, segment_centroids, spine_axis, vertebra_centroids
from ParaspinalFatLib.errors import LevelWarning
from ParaspinalFatLib.segmentation import Segment, Segmentation


# ============================================================================ phantom
def rotation(axis, degrees):
    a = np.asarray(axis, dtype=float)
    a = a / np.linalg.norm(a)
    t = np.radians(degrees)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k


P0 = np.array([-37.3, 112.6, -420.9])  # L4 body centre, far from the origin (LPS mm)
U = rotation((1, 0, 0), -15) @ rotation((0, 1, 0), 5) @ np.array([0.0, 0.0, 1.0])  # spine axis, superior
_post = np.array([0.0, 1.0, 0.0]) - U[1] * U
POST = _post / np.linalg.norm(_post)  # posterior, orthogonal to U
LAT = np.cross(POST, U)
PITCH = 36.0
CENTRES = {"L3": P0 + PITCH * U, "L4": P0, "L5": P0 - PITCH * U, "S1": P0 - 2 * PITCH * U}

# (centre offset in (lat, post, u), half sizes (lat, post, u)) of boxes, per vertebra
BODY = ((0, 0, 0), (20, 15, 12))
ARCH = ((0, 28, 0), (8, 10, 8))
ALAE = [((30, 0, 0), (10, 8, 10)), ((-30, 0, 0), (10, 8, 10))]
LOWER_SACRUM = ((0, 0, -37), (15, 12, 25))  # fused S2-S5, directly below the S1 body
DISC_SEMI = (19, 14, 4)

LABELS = {"L3": 1, "L4": 2, "L5": 3, "S1": 4, "sacrum_lower": 5, "L3/4": 11, "L4/5": 12, "L5/S1": 13}
DIRECTION = rotation((1, 2, 3), 25)
SPACING = np.array([1.0, 1.4, 1.8])


def _frame_point(centre, offset):
    return centre + offset[0] * LAT + offset[1] * POST + offset[2] * U


def _box_volume(half):
    return 8.0 * half[0] * half[1] * half[2]


def weighted_centroid(centre, boxes):
    vols = np.array([_box_volume(h) for _, h in boxes])
    pts = np.array([_frame_point(centre, o) for o, _ in boxes])
    return (vols[:, None] * pts).sum(axis=0) / vols.sum()


def expected_vertebra(level):
    return weighted_centroid(CENTRES[level], [BODY, ARCH])


def expected_s1_with_alae():
    return weighted_centroid(CENTRES["S1"], [BODY, ARCH] + ALAE)


def expected_disc(upper, lower):
    return (CENTRES[upper] + CENTRES[lower]) / 2.0


def _grid_covering(points, direction, spacing, margin_voxels=3):
    m = direction * spacing
    idx = np.linalg.solve(m, np.asarray(points).T).T
    lo = np.floor(idx.min(axis=0)) - margin_voxels
    hi = np.ceil(idx.max(axis=0)) + margin_voxels
    return Geometry(
        size=tuple(int(v) for v in hi - lo + 1),
        spacing=tuple(float(s) for s in spacing),
        origin=tuple(float(v) for v in m @ lo),
        direction=tuple(float(v) for v in direction.ravel()),
    )


def _voxel_centres(geom):
    k, j, i = np.indices(geom.shape, dtype=float)
    ijk = np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1)
    return geom.index_to_physical(ijk)


def _to_frame(points, centre):
    """Coordinates (lat, post, u) of LPS points relative to ``centre``."""
    return (np.asarray(points) - centre) @ np.stack([LAT, POST, U], axis=1)


@pytest.fixture(scope="module")
def phantom():
    """Label array + geometry of L3, L4, L5, S1 (with alae), lower sacrum and 3 discs."""
    corners = []
    for s in np.linspace(-140, 55, 40):
        for a in (-45, 45):
            for b in (-20, 45):
                corners.append(P0 + s * U + a * LAT + b * POST)
    geom = _grid_covering(corners, DIRECTION, SPACING)
    frame = _to_frame(_voxel_centres(geom), P0)  # every voxel centre in the spine frame, once
    labels = np.zeros(len(frame), dtype=np.int16)

    def paint_box(centre, box, value):
        offset, half = box
        c = _to_frame(_frame_point(centre, offset), P0)
        labels[np.all(np.abs(frame - c) <= np.asarray(half), axis=1)] = value

    for level in ("L3", "L4", "L5", "S1"):
        for box in (BODY, ARCH):
            paint_box(CENTRES[level], box, LABELS[level])
    for box in ALAE:
        paint_box(CENTRES["S1"], box, LABELS["S1"])
    paint_box(CENTRES["S1"], LOWER_SACRUM, LABELS["sacrum_lower"])
    for upper, lower, level in (("L3", "L4", "L3/4"), ("L4", "L5", "L4/5"), ("L5", "S1", "L5/S1")):
        c = _to_frame(expected_disc(upper, lower), P0)
        inside = (((frame - c) / np.asarray(DISC_SEMI)) ** 2).sum(axis=1) <= 1.0
        labels[inside] = LABELS[level]
    return geom, labels.reshape(geom.shape)


def make_seg(phantom, names, merge=None, source="phantom"):
    """Segmentation from the phantom; ``names`` maps label value -> segment name."""
    geom, labels = phantom
    arr = labels.copy()
    for src, dst in (merge or {}).items():
        arr[arr == src] = dst
    keep = np.isin(arr, list(names))
    arr[~keep] = 0
    segs = [Segment(name, 0, value, str(value)) for value, name in names.items()]
    return Segmentation(arr, geom, segs, source=source)


VERTEBRA_NAMES = {1: "vertebrae_L3", 2: "vertebrae_L4", 3: "vertebrae_L5", 4: "vertebrae_S1"}
DISC_NAMES = {11: "disc_L3_L4", 12: "IVD L4-L5", 13: "disc_L5_S"}
# voxelisation tolerance (mm): centroids of shapes sampled on a 1.0 x 1.4 x 1.8 mm oblique grid
TOL = 0.3


def test_phantom_grid_is_oblique_and_offset(phantom):
    geom, labels = phantom
    assert not np.allclose(geom.direction_matrix, np.eye(3))
    assert len(set(geom.spacing)) == 3
    assert np.linalg.norm(geom.origin) > 300
    assert set(np.unique(labels)) == {0, 1, 2, 3, 4, 5, 11, 12, 13}


# ============================================================================ disc masks
def test_landmarks_from_discs_are_disc_centroids(phantom):
    seg = make_seg(phantom, {**DISC_NAMES, 2: "vertebrae_L4"})
    found = landmarks_from_discs(seg)
    assert list(found) == ["L3/4", "L4/5", "L5/S1"]
    for level, (upper, lower) in {"L3/4": ("L3", "L4"), "L4/5": ("L4", "L5"), "L5/S1": ("L5", "S1")}.items():
        lm = found[level]
        assert isinstance(lm, LevelLandmark)
        assert lm.source == "disc_mask"
        assert np.linalg.norm(lm.point_lps - expected_disc(upper, lower)) < TOL
    assert "IVD L4-L5" in found["L4/5"].detail
    with pytest.raises(ValueError):
        found["L4/5"].point_lps[0] = 0.0  # read-only


def test_disc_without_level_warns(phantom):
    seg = make_seg(phantom, {11: "intervertebral_discs", 12: "disc_L4_L5"})
    with pytest.warns(LevelWarning, match="intervertebral_discs"):
        found = landmarks_from_discs(seg)
    assert list(found) == ["L4/5"]


# ============================================================================ vertebra masks
def test_vertebra_centroids_whole_mask(phantom):
    seg = make_seg(phantom, VERTEBRA_NAMES)
    cents = vertebra_centroids(seg)
    assert list(cents) == ["L3", "L4", "L5", "S1"]
    for level, c in cents.items():
        expected = expected_vertebra(level) if level != "S1" else expected_s1_with_alae()
        assert np.linalg.norm(c - expected) < TOL
    # the arch moves the centroid posteriorly but not along the spine axis
    shift = cents["L4"] - CENTRES["L4"]
    assert shift @ POST > 3.0
    assert abs(shift @ U) < TOL


def test_landmarks_from_vertebrae_are_midpoints(phantom):
    seg = make_seg(phantom, VERTEBRA_NAMES)
    found = landmarks_from_vertebrae(seg)
    assert list(found) == ["L3/4", "L4/5", "L5/S1"]
    exp = {
        "L3/4": (expected_vertebra("L3") + expected_vertebra("L4")) / 2,
        "L4/5": (expected_vertebra("L4") + expected_vertebra("L5")) / 2,
        "L5/S1": (expected_vertebra("L5") + expected_s1_with_alae()) / 2,
    }
    for level, point in exp.items():
        assert found[level].source == "vertebra_masks"
        assert np.linalg.norm(found[level].point_lps - point) < TOL
    # along the spine the midpoint is the disc centre (same measurement slice)
    for level, (a, b) in {"L3/4": ("L3", "L4"), "L4/5": ("L4", "L5")}.items():
        assert abs((found[level].point_lps - expected_disc(a, b)) @ U) < TOL
    assert "vertebrae_L4" in found["L4/5"].detail and "vertebrae_L5" in found["L4/5"].detail


def test_include_vertebrae_and_gaps(phantom):
    # no L4: neither L3/4 nor L4/5 may be invented from L3 and L5
    seg = make_seg(phantom, {1: "L3", 3: "L5", 4: "S1"})
    found = landmarks_from_vertebrae(seg, include_vertebrae=True)
    assert list(found) == ["L3", "L5", "L5/S1", "S1"]
    assert np.linalg.norm(found["L3"].point_lps - expected_vertebra("L3")) < TOL


def test_sacrum_rule_matches_s1(phantom):
    """Only a sacrum (S1 fused with S2-S5): S1 = cranial part of height h = L5 extent."""
    names = {1: "vertebrae_L3", 2: "vertebrae_L4", 3: "vertebrae_L5", 4: "sacrum"}
    seg = make_seg(phantom, names, merge={LABELS["sacrum_lower"]: LABELS["S1"]})
    found = landmarks_from_vertebrae(seg)
    lm = found["L5/S1"]
    expected = (expected_vertebra("L5") + expected_s1_with_alae()) / 2
    # the sacrum centroid itself would be far off: make sure the test can tell
    sacrum_centroid = segment_centroids(seg, ["sacrum"])["sacrum"][0]
    naive = (expected_vertebra("L5") + sacrum_centroid) / 2
    assert np.linalg.norm(naive - expected) > 8.0
    assert np.linalg.norm(lm.point_lps - expected) < 0.4
    assert abs((lm.point_lps - expected) @ U) < 0.4
    assert lm.source == "vertebra_masks"
    assert "sacrum" in lm.detail and "L4->L5" in lm.detail
    # same answer as with a separate S1 segment
    with_s1 = landmarks_from_vertebrae(make_seg(phantom, VERTEBRA_NAMES))["L5/S1"]
    assert np.linalg.norm(lm.point_lps - with_s1.point_lps) < 0.4


def test_sacrum_rule_without_l4_uses_principal_axis(phantom):
    names = {1: "vertebrae_L3", 3: "vertebrae_L5", 4: "sacrum"}
    seg = make_seg(phantom, names, merge={LABELS["sacrum_lower"]: LABELS["S1"]})
    lm = landmarks_from_vertebrae(seg)["L5/S1"]
    expected = (expected_vertebra("L5") + expected_s1_with_alae()) / 2
    assert np.linalg.norm(lm.point_lps - expected) < 0.4
    assert "principal" in lm.detail


def test_s1_segment_preferred_over_sacrum(phantom):
    names = {**VERTEBRA_NAMES, 5: "sacrum"}
    lm = landmarks_from_vertebrae(make_seg(phantom, names))["L5/S1"]
    assert "sacrum" not in lm.detail
    assert np.linalg.norm(lm.point_lps - (expected_vertebra("L5") + expected_s1_with_alae()) / 2) < TOL


def test_spine_axis(phantom):
    cents = vertebra_centroids(make_seg(phantom, VERTEBRA_NAMES))
    axis = spine_axis(cents)
    assert np.isclose(np.linalg.norm(axis), 1.0)
    assert axis @ U > 0.9999
    # from an array: sign makes S positive; order of points irrelevant
    pts = np.array([cents[k] for k in ("S1", "L3", "L5", "L4")])
    assert spine_axis(pts) @ U > 0.9999
    assert np.allclose(spine_axis([[1.0, 2.0, 3.0]]), [0, 0, 1])
    assert np.allclose(spine_axis({}), [0, 0, 1])
    # with landmarks
    lms = landmarks_from_vertebrae(make_seg(phantom, VERTEBRA_NAMES))
    assert spine_axis(lms) @ U > 0.9999


def test_measurement_slice_of_disc(phantom):
    """The Geometry helpers turn the landmark into the slice nearest the disc centre."""
    geom = phantom[0]
    seg = make_seg(phantom, VERTEBRA_NAMES)
    axis_dir = spine_axis(vertebra_centroids(seg))
    ax = geom.slice_axis(axis_dir)
    lm = landmarks_from_vertebrae(seg)["L4/5"]
    k_lm, d_lm = geom.nearest_slice(lm.point_lps, ax)
    k_true, d_true = geom.nearest_slice(expected_disc("L4", "L5"), ax)
    assert abs(k_lm - k_true) <= 1
    n = geom.plane_normal(ax)
    assert abs((lm.point_lps - expected_disc("L4", "L5")) @ n) < 1.5  # posterior shift x obliquity


def test_duplicate_vertebra_names_raise(phantom):
    seg = make_seg(phantom, {1: "vertebrae_L3", 2: "L3", 3: "vertebrae_L5"})
    with pytest.raises(LevelError, match="'vertebrae_L3' and 'L3'"):
        landmarks_from_vertebrae(seg)


def test_empty_segments_are_skipped(phantom):
    geom, labels = phantom
    arr = np.where(np.isin(labels, [2, 3]), labels, 0)
    segs = [Segment("vertebrae_L4", 0, 2), Segment("vertebrae_L5", 0, 3), Segment("vertebrae_L3", 0, 99)]
    found = landmarks_from_vertebrae(Segmentation(arr, geom, segs))
    assert list(found) == ["L4/5"]


def test_layers_are_keyed_by_layer_and_label(phantom):
    """The same label value 1 in two layers is two different vertebrae."""
    geom, labels = phantom
    layers = np.zeros((2,) + labels.shape, dtype=np.uint8)
    layers[0][labels == LABELS["L4"]] = 1
    layers[1][labels == LABELS["L5"]] = 1
    layers[1][labels == LABELS["L3"]] = 7
    segs = [Segment("vertebrae_L4", 0, 1), Segment("vertebrae_L5", 1, 1), Segment("vertebrae_L3", 1, 7)]
    found = landmarks_from_vertebrae(Segmentation(layers, geom, segs))
    assert np.linalg.norm(found["L4/5"].point_lps - (expected_vertebra("L4") + expected_vertebra("L5")) / 2) < TOL
    assert np.linalg.norm(found["L3/4"].point_lps - (expected_vertebra("L3") + expected_vertebra("L4")) / 2) < TOL


def test_segment_centroids_many_and_large_labels():
    """Lookup paths (many labels, huge label values, 8/16-bit and signed voxels) agree with
    a per-label mean.  (Negative labels are refused by Segmentation itself.)"""
    rng = np.random.default_rng(1)
    geom = Geometry((23, 19, 17), (0.7, 1.1, 2.3), (10.0, -20.0, 300.0), tuple(rotation((2, -1, 1), 40).ravel()))
    cases = [
        (np.arange(1, 301), np.int64),
        (np.array([5, 70000, 2**30]), np.int64),
        (np.array([1, 17, 255]), np.uint8),
        (np.array([3, 127]), np.int8),
        (np.array([2, 40000]), np.uint16),
    ]
    for values, dtype in cases:
        pool = np.concatenate([[0], values])
        arr = rng.choice(pool, size=geom.shape).astype(dtype)
        segs = [Segment(f"s{v}", 0, int(v)) for v in values]
        got = segment_centroids(Segmentation(arr, geom, segs, source="rand"))
        for v in values[:: max(1, len(values) // 20)]:
            kji = np.argwhere(arr == v)
            if len(kji) == 0:
                assert f"s{v}" not in got
                continue
            ref = geom.index_to_physical(kji[:, ::-1].mean(axis=0))
            assert np.allclose(got[f"s{v}"][0], ref)
            assert got[f"s{v}"][1] == len(kji)
    with pytest.raises(InputError, match="more than once"):
        segment_centroids(Segmentation(arr, geom, [Segment("a", 0, 1), Segment("a", 0, 2)]))


def test_cropped_but_complete_vertebra_is_kept(phantom):
    """A Slicer-style crop that touches the top of L3 must not drop L3."""
    geom, labels = phantom
    seg = make_seg(phantom, VERTEBRA_NAMES)
    # crop the grid to the bounding box of the labels (all vertebrae touch its faces)
    nz = np.argwhere(seg.layers[0] > 0)
    lo, hi = nz.min(axis=0), nz.max(axis=0) + 1
    cropped = seg.layers[0][lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    origin = geom.index_to_physical(lo[::-1].astype(float))
    g2 = Geometry(tuple(int(v) for v in cropped.shape[::-1]), geom.spacing, tuple(origin), geom.direction)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = landmarks_from_vertebrae(Segmentation(cropped, g2, seg.segments), include_vertebrae=True)
    assert list(found) == ["L3", "L3/4", "L4", "L4/5", "L5", "L5/S1", "S1"]
    assert np.linalg.norm(found["L3"].point_lps - expected_vertebra("L3")) < TOL


def test_cut_off_vertebra_is_dropped(phantom):
    geom, labels = phantom
    seg = make_seg(phantom, VERTEBRA_NAMES)
    # cut the grid through the middle of L3 along the spine
    k_of = geom.physical_to_index(CENTRES["L3"])
    axis = geom.slice_axis(U)
    sl = [slice(None)] * 3
    np_axis = 2 - axis
    top = int(round(k_of[axis]))
    n = geom.shape[np_axis]
    increasing_up = geom.direction_matrix[:, axis] @ U > 0
    sl[np_axis] = slice(0, top) if increasing_up else slice(top, n)
    cut = seg.layers[0][tuple(sl)]
    start = [0, 0, 0]
    start[axis] = 0 if increasing_up else top
    g2 = Geometry(tuple(int(v) for v in cut.shape[::-1]), geom.spacing,
                  tuple(geom.index_to_physical(np.array(start, float))), geom.direction)
    with pytest.warns(LevelWarning, match="vertebrae_L3.*cut off"):
        found = landmarks_from_vertebrae(Segmentation(cut, g2, seg.segments))
    assert "L3/4" not in found and "L4/5" in found


# ============================================================================ markups
SCHEMA = (
    "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/"
    "Resources/Schema/markups-schema-v1.0.3.json#"
)


def _control_point(i, label, position, status="defined"):
    return {
        "id": str(i),
        "label": label,
        "description": "",
        "associatedNodeID": "vtkMRMLScalarVolumeNode1",
        "position": [float(v) for v in position],
        "orientation": [-1.0, -0.0, -0.0, -0.0, -1.0, -0.0, 0.0, 0.0, 1.0],
        "selected": True,
        "locked": False,
        "visibility": True,
        "positionStatus": status,
    }


def _markup(points, system="LPS", mtype="Fiducial", units="mm", name="F"):
    return {
        "type": mtype,
        "coordinateSystem": system,
        "coordinateUnits": units,
        "locked": False,
        "fixedNumberOfControlPoints": False,
        "labelFormat": "%N-%d",
        "lastUsedControlPointNumber": len(points),
        "controlPoints": [_control_point(i + 1, *p) for i, p in enumerate(points)],
        "measurements": [],
        "display": {"visibility": True, "opacity": 1.0, "color": [0.4, 1.0, 1.0], "glyphType": "Sphere3D"},
        "name": name,
    }


def _write_mrk(path, *markups):
    path.write_text(json.dumps({"@schema": SCHEMA, "markups": list(markups)}, indent=4), encoding="utf-8")
    return path


LPS_POINTS = {"L3/4": (10.5, -120.25, 300.0), "L4/5": (11.0, -118.0, 265.5), "L5/S1": (12.5, -110.0, 231.0)}


def test_read_mrk_json_lps(tmp_path):
    pts = [("L3-L4", LPS_POINTS["L3/4"]), ("L45", LPS_POINTS["L4/5"]), ("L5-S1", LPS_POINTS["L5/S1"])]
    path = _write_mrk(tmp_path / "levels.mrk.json", _markup(pts, "LPS"))
    found = read_markups(path)
    assert list(found) == ["L3/4", "L4/5", "L5/S1"]
    for level, p in LPS_POINTS.items():
        assert np.allclose(found[level].point_lps, p)
        assert found[level].source == "markups"
        assert "levels.mrk.json" in found[level].detail


def test_read_mrk_json_ras_is_converted(tmp_path):
    ras = [(lvl, (-p[0], -p[1], p[2])) for lvl, p in LPS_POINTS.items()]
    path = _write_mrk(tmp_path / "ras.mrk.json", _markup(ras, "RAS"))
    found = read_markups(path)
    for level, p in LPS_POINTS.items():
        assert np.allclose(found[level].point_lps, p)
    assert "(RAS)" in found["L4/5"].detail


def test_read_mrk_json_mixed_systems_units_and_default(tmp_path):
    a = _markup([("L3/4", (-10.5, 120.25, 300.0))], "RAS", name="upper")
    b = _markup([("L4-5", (11000.0, -118000.0, 265500.0))], "LPS", units="um", name="mid")
    c = _markup([("L5S1", LPS_POINTS["L5/S1"])], "LPS", name="lower")
    del c["coordinateSystem"]  # schema default is LPS
    found = read_markups(_write_mrk(tmp_path / "mixed.mrk.json", a, b, c))
    for level, p in LPS_POINTS.items():
        assert np.allclose(found[level].point_lps, p)


def test_markups_unparseable_label_warns_with_file_and_label(tmp_path):
    pts = [("F-1", (0, 0, 0)), ("L4/5", LPS_POINTS["L4/5"])]
    path = _write_mrk(tmp_path / "some.mrk.json", _markup(pts))
    with pytest.warns(LevelWarning, match=r"some\.mrk\.json.*'F-1'"):
        found = read_markups(path)
    assert list(found) == ["L4/5"]


def test_markups_duplicate_level_raises_with_file(tmp_path):
    pts = [("L4/5", (0, 0, 0)), ("L4-L5", (1, 1, 1))]
    path = _write_mrk(tmp_path / "dup.mrk.json", _markup(pts))
    with pytest.raises(LevelError, match=r"dup\.mrk\.json.*L4/5"):
        read_markups(path)


def test_markups_unplaced_points_and_other_types(tmp_path):
    fid = _markup([("L4/5", (1, 2, 3)), ("L5/S1", (0, 0, 0), "undefined")])
    angle = _markup([("L3/4", (0, 0, 0)), ("x", (1, 1, 1)), ("y", (2, 0, 1))], mtype="Angle", name="ruler")
    path = _write_mrk(tmp_path / "misc.mrk.json", fid, angle)
    with pytest.warns(LevelWarning) as rec:
        found = read_markups(path)
    messages = " ".join(str(w.message) for w in rec)
    assert "not placed" in messages and "'ruler' is of type 'Angle'" in messages
    assert list(found) == ["L4/5"]


def test_markups_vertebra_points_give_discs(tmp_path):
    pts = [("L3", (0, 0, 30)), ("L4", (0, 2, 0)), ("L5", (0, 6, -32)), ("S1", (0, 16, -60)), ("L4/5", (1, 5, -15))]
    path = _write_mrk(tmp_path / "verts.mrk.json", _markup(pts))
    found = read_markups(path)
    assert list(found) == ["L3/4", "L4/5", "L5/S1"]
    assert np.allclose(found["L3/4"].point_lps, (0, 1, 15))
    assert np.allclose(found["L4/5"].point_lps, (1, 5, -15))  # the disc point wins over the midpoint
    assert np.allclose(found["L5/S1"].point_lps, (0, 11, -46))
    with_v = read_markups(path, include_vertebrae=True)
    assert list(with_v) == ["L3", "L3/4", "L4", "L4/5", "L5", "L5/S1", "S1"]


FCSV_COLUMNS = "id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID"


@pytest.mark.parametrize("system, flip", [("LPS", False), ("RAS", True), ("1", False), ("0", True)])
def test_read_fcsv(tmp_path, system, flip):
    lines = ["# Markups fiducial file version = 4.11", f"# CoordinateSystem = {system}", f"# columns = {FCSV_COLUMNS}"]
    for i, (level, p) in enumerate(LPS_POINTS.items()):
        x, y, z = (-p[0], -p[1], p[2]) if flip else p
        label = {"L3/4": "L3-4", "L4/5": "L4-L5", "L5/S1": "L5/S1"}[level]
        lines.append(f"vtkMRMLMarkupsFiducialNode_{i},{x},{y},{z},0,0,0,1,1,1,0,{label},,vtkMRMLScalarVolumeNode1")
    path = tmp_path / "F.fcsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    found = read_markups(path)
    assert list(found) == ["L3/4", "L4/5", "L5/S1"]
    for level, p in LPS_POINTS.items():
        assert np.allclose(found[level].point_lps, p)


def test_read_fcsv_columns_by_header_and_quoted_label(tmp_path):
    path = tmp_path / "reordered.fcsv"
    path.write_text(
        "# Markups fiducial file version = 5.2\n# CoordinateSystem = LPS\n"
        "# columns = label,id,z,y,x,desc\n"
        '"L4/5, mid disc",1,265.5,-118.0,11.0,\n',
        encoding="utf-8",
    )
    found = read_markups(path)
    assert np.allclose(found["L4/5"].point_lps, LPS_POINTS["L4/5"])


def test_read_fcsv_legacy_without_headers_assumes_ras(tmp_path):
    path = tmp_path / "old.fcsv"
    path.write_text("# Markups fiducial file version = 4.4\n1,-11,118,265.5,0,0,0,1,1,1,0,L4/5,,\n", encoding="utf-8")
    with pytest.warns(LevelWarning) as rec:
        found = read_markups(path)
    messages = " ".join(str(w.message) for w in rec)
    assert "assuming RAS" in messages and "no '# columns" in messages
    assert np.allclose(found["L4/5"].point_lps, LPS_POINTS["L4/5"])


def test_markups_bad_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_markups(tmp_path / "missing.mrk.json")
    bad = tmp_path / "bad.mrk.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="bad.mrk.json"):
        read_markups(bad)
    ijk = tmp_path / "ijk.fcsv"
    ijk.write_text(f"# CoordinateSystem = 2\n# columns = {FCSV_COLUMNS}\n", encoding="utf-8")
    with pytest.raises(InputError, match="ijk.fcsv"):
        read_markups(ijk)


# ============================================================================ combination
def test_find_landmarks_preference(phantom, tmp_path):
    names = {12: "disc_L4_L5", **VERTEBRA_NAMES}
    del names[1]  # no L3: L3/4 must come from the markups
    seg = make_seg(phantom, names)
    far = (999.0, 999.0, 999.0)
    mrk = _write_mrk(
        tmp_path / "pts.mrk.json", _markup([("L3/4", LPS_POINTS["L3/4"]), ("L4/5", far), ("L5/S1", far)])
    )
    found = find_landmarks(seg, markups=mrk)
    assert {k: v.source for k, v in found.items()} == {
        "L3/4": "markups",
        "L4/5": "disc_mask",
        "L5/S1": "vertebra_masks",
    }
    assert np.linalg.norm(found["L4/5"].point_lps - expected_disc("L4", "L5")) < TOL
    assert np.allclose(found["L3/4"].point_lps, LPS_POINTS["L3/4"])
    assert list(found) == ["L3/4", "L4/5", "L5/S1"]
    only_markups = find_landmarks(markups=[mrk])
    assert {v.source for v in only_markups.values()} == {"markups"}


def test_find_landmarks_required(phantom):
    seg = make_seg(phantom, {2: "vertebrae_L4", 3: "vertebrae_L5"})
    assert list(find_landmarks(seg, required=["L4-L5"])) == ["L4/5"]
    with pytest.raises(LevelError, match=r"L3/4, L5/S1 not found.*phantom.*found: L4/5"):
        find_landmarks(seg, required=["L3/4", "L4/5", "L5/S1"])
    muscles_only = make_seg(phantom, {2: "multifidus_left"})
    assert find_landmarks(muscles_only) == {}
    with pytest.raises(LevelError, match="vertebrae_L4"):
        find_landmarks(muscles_only, required=["L4/5"])


def test_find_landmarks_warns_when_sources_disagree(phantom):
    # the disc between L4 and L5 mislabelled as L3/4 while L3 and L4 vertebrae exist
    seg = make_seg(phantom, {12: "disc_L3_L4", 1: "vertebrae_L3", 2: "vertebrae_L4"})
    with pytest.warns(LevelWarning, match="L3/4.*mm from the vertebra midpoint"):
        found = find_landmarks(seg)
    assert found["L3/4"].source == "disc_mask"


def test_landmark_validation():
    with pytest.raises(LevelError):
        LevelLandmark("L4/5", [1.0, 2.0], "markups", "")
    with pytest.raises(ValueError):
        LevelLandmark("L4/5", [1.0, 2.0, 3.0], "guess", "")


# ============================================================================ real data
TOTALSEG_V2 = {25: "sacrum", 26: "vertebrae_S1", 27: "vertebrae_L5", 28: "vertebrae_L4",
               29: "vertebrae_L3", 30: "vertebrae_L2", 31: "vertebrae_L1", 32: "vertebrae_T12"}


def nifti_label_names(path):
    """Label names from the XML header extension TotalSegmentator writes into NIfTI-1."""
    raw = gzip.open(path).read() if str(path).endswith(".gz") else open(path, "rb").read()
    endian = "<" if struct.unpack("<i", raw[:4])[0] == 348 else ">"
    vox_offset = int(struct.unpack(endian + "f", raw[108:112])[0])
    pos, names = 352, {}
    while pos + 8 <= vox_offset:
        esize, _ecode = struct.unpack(endian + "ii", raw[pos : pos + 8])
        if esize <= 8:
            break
        text = raw[pos + 8 : pos + esize].rstrip(b"\0").decode("utf-8", errors="replace")
        if "<" in text:
            root = ET.fromstring(text[text.index("<") :])
            for label in root.iter("Label"):
                names[int(label.get("Key"))] = (label.text or "").strip()
        pos += esize
    return names


def _read_totalseg(realdata):
    import SimpleITK as sitk

    path = realdata / "totalsegmentator" / "example_seg_fast_force_split.nii.gz"
    names = nifti_label_names(path)
    image = sitk.ReadImage(str(path))
    arr = sitk.GetArrayFromImage(image).astype(np.int16)
    segs = [Segment(name, 0, value, str(value)) for value, name in sorted(names.items())]
    return Segmentation(arr, Geometry.from_sitk(image), segs, source=str(path)), names


def test_totalsegmentator_vertebra_slices(realdata):
    seg, names = _read_totalseg(realdata)
    # the XML names agree with TotalSegmentator v2 'total' class values
    for value, name in TOTALSEG_V2.items():
        assert names[value] == name
    geom = seg.geometry
    with pytest.warns(LevelWarning, match="vertebrae_T11.*cut off"):
        cents = vertebra_centroids(seg)
    axis = geom.slice_axis(spine_axis(cents))
    assert axis == 2
    # README regression: middle axial slice of each vertebral body
    for level, k in {"L1": 96, "L2": 85, "L3": 74}.items():
        assert abs(geom.nearest_slice(cents[level], axis)[0] - k) <= 1
    with pytest.warns(LevelWarning, match="cut off"):
        found = find_landmarks(seg, required=["L1/2", "L2/3", "L3/4", "L4/5", "L5/S1"])
    assert "T11/12" not in found  # T11 is cut by the field of view
    order = ["T12", "L1", "L2", "L3", "L4", "L5", "S1"]
    for upper, lower in zip(order, order[1:]):
        disc = f"{upper}/{lower[1:]}" if upper[0] == lower[0] else f"{upper}/{lower}"
        k_disc = geom.nearest_slice(found[disc].point_lps, axis)[0]
        k_up = geom.nearest_slice(cents[upper], axis)[0]
        k_low = geom.nearest_slice(cents[lower], axis)[0]
        assert k_low < k_disc < k_up, disc
        assert found[disc].source == "vertebra_masks"


def test_totalsegmentator_sacrum_rule(realdata):
    """S1 merged into the sacrum (as tools without an S1 class give it): the estimate stays
    within 5 mm of the L5/S1 point from the real S1 mask and on the same slice +-1."""
    seg, names = _read_totalseg(realdata)
    with pytest.warns(LevelWarning):
        truth = landmarks_from_vertebrae(seg)["L5/S1"]
    arr = seg.layers[0].copy()
    arr[arr == 26] = 25
    segs = [s for s in seg.segments if s.label_value != 26]
    merged = Segmentation(arr, seg.geometry, segs, source="merged")
    with pytest.warns(LevelWarning):
        est = landmarks_from_vertebrae(merged)["L5/S1"]
    assert "sacrum" in est.detail
    assert np.linalg.norm(est.point_lps - truth.point_lps) < 5.0
    assert abs(seg.geometry.nearest_slice(est.point_lps, 2)[0] - seg.geometry.nearest_slice(truth.point_lps, 2)[0]) <= 1


def test_tptbox_whole_vertebra_centroid_and_cut_neighbours(realdata):
    """VerSe labels 21/22/23 = L2/L3/L4 on a PIR grid: L2 and L4 are cut by the crop;
    L3's whole-mask centroid lies within 2 mm of its body centroid along the spine."""
    import SimpleITK as sitk

    folder = realdata / "tptbox"
    vert = sitk.ReadImage(str(folder / "sub-ct_seg-vert_label-22_msk.nii.gz"))
    sub = sitk.ReadImage(str(folder / "sub-ct_seg-subreg_label-22_msk.nii.gz"))
    va = sitk.GetArrayFromImage(vert).astype(np.int16)
    sa = sitk.GetArrayFromImage(sub)
    geom = Geometry.from_sitk(vert)
    seg = Segmentation(va, geom, [Segment("L2", 0, 21), Segment("L3", 0, 22), Segment("L4", 0, 23)], source="tptbox")
    with pytest.warns(LevelWarning) as rec:
        found = landmarks_from_vertebrae(seg, include_vertebrae=True)
    cut = " ".join(str(w.message) for w in rec)
    assert "'L2'" in cut and "'L4'" in cut
    assert list(found) == ["L3"]
    axis = geom.slice_axis((0, 0, 1))
    assert axis == 1  # PIR: the j axis runs inferior
    body = np.argwhere((va == 22) & np.isin(sa, [49, 50]))  # TPTBox subregions 49/50 = vertebral body
    body_centre = geom.index_to_physical(body[:, ::-1].mean(axis=0))
    n = geom.plane_normal(axis)
    assert abs((found["L3"].point_lps - body_centre) @ n) < 2.0
    assert abs(geom.nearest_slice(found["L3"].point_lps, axis)[0] - geom.nearest_slice(body_centre, axis)[0]) <= 1
    assert (found["L3"].point_lps - body_centre)[1] > 5.0  # the arch pulls the centroid posteriorly


def test_centroids_of_uint64_labels_above_2_to_the_53_are_not_merged():
    """Labels 2**60 + 1 and 2**60 + 2 differ only beyond float64's 53-bit mantissa."""
    labels = np.zeros((4, 5, 6), dtype=np.uint64)
    a, b = np.uint64(2**60 + 1), np.uint64(2**60 + 2)
    labels[1, 1:3, 1] = a  # voxels (1,1,1), (1,2,1): centroid index (k,j,i) = (1, 1.5, 1)
    labels[3, 4, 2:6] = b  # centroid index (3, 4, 3.5)
    geom = Geometry((6, 5, 4), (1.0, 2.0, 3.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    seg = Segmentation(labels[np.newaxis], geom, [Segment("vertebrae_L4", 0, int(a)),
                                                   Segment("vertebrae_L5", 0, int(b))])
    cents = segment_centroids(seg)
    # index_to_physical takes (i, j, k); spacing (1, 2, 3), origin 0, identity direction
    assert cents["vertebrae_L4"][1] == 2 and cents["vertebrae_L5"][1] == 4
    np.testing.assert_allclose(cents["vertebrae_L4"][0], [1.0, 3.0, 3.0])
    np.testing.assert_allclose(cents["vertebrae_L5"][0], [3.5, 8.0, 9.0])
    np.testing.assert_allclose(cents["vertebrae_L5"][0], geom.index_to_physical((3.5, 4.0, 3.0)))


# ============================================================================ direction hints
def _angle_deg(a, b):
    a = np.asarray(a, float) / np.linalg.norm(a)
    b = np.asarray(b, float) / np.linalg.norm(b)
    return float(np.degrees(np.arccos(np.clip(abs(a @ b), -1.0, 1.0))))


def _unit_up(v):
    v = np.asarray(v, float) / np.linalg.norm(v)
    return -v if v[2] < 0 else v


def test_landmark_direction_is_unit_cranial_and_read_only():
    lm = LevelLandmark("L4/5", [1.0, 2.0, 3.0], "markups", "", direction_lps=[0.0, 3.0, -4.0],
                       direction_source="test")
    np.testing.assert_allclose(lm.direction_lps, [0.0, -0.6, 0.8])
    with pytest.raises(ValueError):
        lm.direction_lps[0] = 1.0
    assert LevelLandmark("L4/5", [1.0, 2.0, 3.0], "markups", "").direction_lps is None
    for bad in ([0.0, 0.0, 0.0], [np.nan, 0.0, 1.0], [1.0, 0.0], [np.inf, 0.0, 0.0]):
        with pytest.raises(LevelError, match="direction"):
            LevelLandmark("L4/5", [1.0, 2.0, 3.0], "markups", "", direction_lps=bad)
    for source in ("level_slices", "level_z"):
        assert LevelLandmark("L4/5", [1.0, 2.0, 3.0], source, "").source == source


def test_disc_mask_direction_is_the_thin_axis(phantom):
    """The phantom discs are ellipsoids with semi-axes (19, 14, 4) mm in (LAT, POST, U): thin axis U."""
    found = landmarks_from_discs(make_seg(phantom, DISC_NAMES))
    for level, lm in found.items():
        assert lm.direction_source == "disc mask principal axes"
        assert lm.direction_lps[2] >= 0 and np.isclose(np.linalg.norm(lm.direction_lps), 1.0)
        assert _angle_deg(lm.direction_lps, U) < 1.0, level


@pytest.mark.parametrize("tilt", [0.0, 20.0, 35.0])
def test_disc_mask_direction_of_a_tilted_slab(tilt):
    """A 44 x 30 x 8 mm box tilted by ``tilt`` degrees about LPS x (sagittal tilt) on an
    anisotropic axial grid (0.7 x 0.9 x 1.5 mm): its normal is R_x(tilt) @ z."""
    normal = rotation((1, 0, 0), tilt) @ np.array([0.0, 0.0, 1.0])
    a1 = np.array([1.0, 0.0, 0.0])
    a2 = np.cross(normal, a1)
    geom = Geometry((90, 80, 50), (0.7, 0.9, 1.5), (-30.0, -35.0, -36.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    pts = _voxel_centres(geom)
    centre = np.array([1.5, 0.5, 0.25])
    rel = pts - centre
    inside = (np.abs(rel @ a1) <= 22) & (np.abs(rel @ a2) <= 15) & (np.abs(rel @ normal) <= 4)
    labels = inside.reshape(geom.shape).astype(np.uint8)
    seg = Segmentation(labels, geom, [Segment("disc_L4_L5", 0, 1)], source="slab")
    lm = landmarks_from_discs(seg)["L4/5"]
    assert _angle_deg(lm.direction_lps, normal) < 1.0
    assert lm.direction_lps[2] > 0
    assert np.linalg.norm(lm.point_lps - centre) < 0.3


def test_disc_mask_not_flat_or_one_layer_has_no_direction():
    geom = Geometry((20, 20, 20), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    cube = np.zeros(geom.shape, np.uint8)
    cube[5:12, 5:12, 5:12] = 1  # equal extents: no thin axis
    cube[15, 2:18, 2:18] = 2  # one voxel layer: its normal is the grid's
    seg = Segmentation(cube, geom, [Segment("disc_L3_L4", 0, 1), Segment("disc_L4_L5", 0, 2)])
    found = landmarks_from_discs(seg)
    assert found["L3/4"].direction_lps is None and found["L3/4"].direction_source == ""
    assert found["L4/5"].direction_lps is None


# vertebra cubes (7 voxels wide, 1 mm grid) at known, non-collinear centres (LPS mm)
CUBE_CENTRES = {"L3": (0, 0, 60), "L4": (5, 10, 30), "L5": (0, 25, 0), "S1": (-5, 45, -25)}


def _cube_seg(levels, extra=None):
    geom = Geometry((40, 70, 110), (1.0, 1.0, 1.0), (-20.0, -10.0, -45.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    labels = np.zeros(geom.shape, np.uint8)
    segs = []
    for value, level in enumerate(levels, start=1):
        i, j, k = np.round(geom.physical_to_index(CUBE_CENTRES[level])).astype(int)
        labels[k - 3 : k + 4, j - 3 : j + 4, i - 3 : i + 4] = value
        segs.append(Segment(f"vertebrae_{level}", 0, value))
    return Segmentation(labels, geom, segs, source="cubes")


def test_vertebra_centroid_directions():
    found = landmarks_from_vertebrae(_cube_seg(["L3", "L4", "L5", "S1"]), include_vertebrae=True)
    c = {k: np.array(v, float) for k, v in CUBE_CENTRES.items()}
    expected = {
        "L3/4": c["L3"] - c["L4"], "L4/5": c["L4"] - c["L5"], "L5/S1": c["L5"] - c["S1"],
        "L3": c["L3"] - c["L4"],  # one neighbour (below)
        "L4": c["L3"] - c["L5"],  # central difference
        "L5": c["L4"] - c["S1"],
        "S1": c["L5"] - c["S1"],  # one neighbour (above)
    }
    for level, d in expected.items():
        np.testing.assert_allclose(found[level].point_lps, (c[level] if level in c else found[level].point_lps))
        np.testing.assert_allclose(found[level].direction_lps, _unit_up(d), atol=1e-12, err_msg=level)
        assert found[level].direction_source == "vertebra centroids"
    alone = landmarks_from_vertebrae(_cube_seg(["L4"]), include_vertebrae=True)
    assert alone["L4"].direction_lps is None and alone["L4"].direction_source == ""


def test_sacrum_rule_disc_direction(phantom):
    names = {1: "vertebrae_L3", 2: "vertebrae_L4", 3: "vertebrae_L5", 4: "sacrum"}
    seg = make_seg(phantom, names, merge={LABELS["sacrum_lower"]: LABELS["S1"]})
    found = landmarks_from_vertebrae(seg, include_vertebrae=True)
    l5 = vertebra_centroids(seg)["L5"]
    s1 = 2 * found["L5/S1"].point_lps - l5  # the S1 estimate behind the midpoint
    np.testing.assert_allclose(found["L5/S1"].direction_lps, _unit_up(l5 - s1), atol=1e-12)
    # L5 uses the S1 estimate as its lower neighbour (central difference L4 - S1)
    l4 = vertebra_centroids(seg)["L4"]
    np.testing.assert_allclose(found["L5"].direction_lps, _unit_up(l4 - s1), atol=1e-12)
    assert _angle_deg(found["L5/S1"].direction_lps, U) < 3.0


# ============================================================================ markups lines
def _line(name, p0, p1, system="LPS", labels=("L-1", "L-2"), status=("defined", "defined")):
    m = _markup([(labels[0], p0, status[0]), (labels[1], p1, status[1])], system, mtype="Line", name=name)
    return m


def _sagittal(tilt_deg):
    t = np.radians(tilt_deg)
    return np.array([0.0, np.cos(t), np.sin(t)])  # posterior and up: a disc tilted in the sagittal plane


@pytest.mark.parametrize("system", ["LPS", "RAS"])
def test_markups_line_gives_disc_point_and_normal(tmp_path, system):
    p0 = np.array([3.0, -20.0, -310.0])  # LPS
    p1 = p0 + 42.0 * _sagittal(20.0)
    to_file = (lambda p: p) if system == "LPS" else (lambda p: p * [-1, -1, 1])
    path = _write_mrk(tmp_path / "line.mrk.json", _line("L4/5", to_file(p0), to_file(p1), system))
    found = read_markups(path)
    lm = found["L4/5"]
    np.testing.assert_allclose(lm.point_lps, (p0 + p1) / 2)
    t = np.radians(20.0)
    # normal = normalise(d x (1, 0, 0)) = (0, sin t, -cos t), flipped cranially
    np.testing.assert_allclose(lm.direction_lps, [0.0, -np.sin(t), np.cos(t)], atol=1e-12)
    assert _angle_deg(lm.direction_lps, [0, 0, 1]) == pytest.approx(20.0)
    assert lm.direction_source == "markups line along the disc"
    assert lm.source == "markups" and "line 'L4/5'" in lm.detail and f"({system})" in lm.detail


def test_markups_line_along_the_spine_axis(tmp_path):
    p0 = np.array([0.0, 10.0, -300.0])
    d = np.array([0.0, np.sin(np.radians(30)), np.cos(np.radians(30))])  # 30 degrees from z
    path = _write_mrk(tmp_path / "axis.mrk.json", _line("L3-L4", p0 + 15 * d, p0 - 15 * d))
    lm = read_markups(path)["L3/4"]
    np.testing.assert_allclose(lm.point_lps, p0)
    np.testing.assert_allclose(lm.direction_lps, d, atol=1e-12)  # pointed cranially though drawn downwards
    assert lm.direction_source == "markups line along the spine axis"


def test_disc_normal_from_line_rules():
    # an axial line running mostly front-back (60 degrees from x): the axial plane, normal z
    d = np.array([np.cos(np.radians(60)), np.sin(np.radians(60)), 0.0])
    normal, rule = disc_normal_from_line([0, 0, 0], 10 * d)
    np.testing.assert_allclose(normal, [0, 0, 1], atol=1e-12)
    assert rule == "along the disc"
    with pytest.raises(LevelError, match=r"0 degrees from the patient's left-right axis"):
        disc_normal_from_line([0, 0, 0], [25, 0, 0], where="line 'L4/5'")
    with pytest.raises(LevelError, match=r"line 'x': the line runs 30 degrees from the patient's left-right"):
        disc_normal_from_line([0, 0, 0], [np.cos(np.radians(30)), 0, np.sin(np.radians(30))], where="line 'x'")
    with pytest.raises(LevelError, match="coincide"):
        disc_normal_from_line([1, 2, 3], [1, 2, 3])


def test_markups_x_parallel_line_is_refused(tmp_path):
    path = _write_mrk(tmp_path / "x.mrk.json", _line("L4/5", (-20, 5, -300), (20, 5, -300)))
    with pytest.raises(LevelError, match=r"x\.mrk\.json.*left-right axis"):
        read_markups(path)


def test_markups_line_label_rules(tmp_path):
    s = _sagittal(0.0)
    lines = [
        _line("L", (0, 0, 0), 30 * s, labels=("L5/S1", "L-2")),  # name not a level: first point's label
        _line("ruler", (0, 0, 50), (0, 30, 50)),  # no level anywhere: ignored
        _line("L4", (0, 0, 100), (0, 30, 100)),  # a vertebra: ignored
        _line("L2/3", (0, 0, 150), (0, 30, 150), status=("defined", "undefined")),  # one point: ignored
    ]
    path = _write_mrk(tmp_path / "lines.mrk.json", *lines)
    with pytest.warns(LevelWarning) as rec:
        found = read_markups(path, include_vertebrae=True)
    messages = " ".join(str(w.message) for w in rec)
    assert "line 'ruler'" in messages and "is not named with a level" in messages
    assert "line 'L4'" in messages and "vertebra level L4" in messages
    assert "line 'L2/3'" in messages and "1 placed control point" in messages
    assert list(found) == ["L5/S1"]
    np.testing.assert_allclose(found["L5/S1"].point_lps, 15 * s)


def test_markups_point_and_line_of_one_level_refused(tmp_path):
    path = _write_mrk(tmp_path / "both.mrk.json", _markup([("L4/5", (0, 0, 0))]),
                      _line("L4-L5", (0, 0, 1), (0, 30, 1)))
    with pytest.raises(LevelError, match=r"both\.mrk\.json: control point 'L4/5' and line 'L4-L5' are both level L4/5"):
        read_markups(path)


def test_markups_vertebra_point_directions(tmp_path):
    pts = [("L3", (0, 0, 30)), ("L4", (0, 2, 0)), ("L5", (0, 6, -32)), ("S1", (0, 16, -60)), ("L4/5", (1, 5, -15))]
    path = _write_mrk(tmp_path / "verts.mrk.json", _markup(pts))
    found = read_markups(path, include_vertebrae=True)
    p = {k: np.array(v, float) for k, v in pts}
    expected = {
        "L3/4": p["L3"] - p["L4"], "L4/5": p["L4"] - p["L5"], "L5/S1": p["L5"] - p["S1"],
        "L3": p["L3"] - p["L4"], "L4": p["L3"] - p["L5"], "L5": p["L4"] - p["S1"], "S1": p["L5"] - p["S1"],
    }
    for level, d in expected.items():
        np.testing.assert_allclose(found[level].direction_lps, _unit_up(d), atol=1e-12, err_msg=level)
        assert found[level].direction_source == "markups vertebra points"
    np.testing.assert_allclose(found["L4/5"].point_lps, p["L4/5"])  # the disc point keeps its place
    lone = read_markups(_write_mrk(tmp_path / "disc.mrk.json", _markup([("L4/5", (1, 5, -15))])))
    assert lone["L4/5"].direction_lps is None


# ============================================================================ typed positions
def test_find_landmarks_positions_win_and_fill(phantom):
    from ParaspinalFatLib.anatomy.level_positions import landmarks_from_slices

    geom = phantom[0]
    seg = make_seg(phantom, VERTEBRA_NAMES)
    ax = geom.slice_axis(U)
    k45 = geom.nearest_slice(expected_disc("L4", "L5"), ax)[0]
    k23 = geom.nearest_slice(CENTRES["L3"] + 0.5 * PITCH * U, ax)[0]  # above L3: only typed
    positions = landmarks_from_slices({"L4/5": k45, "L2/3": k23}, geom, ax)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = find_landmarks(seg, positions=positions, required=["L2/3", "L3/4", "L4/5", "L5/S1"])
    assert {k: v.source for k, v in found.items()} == {
        "L2/3": "level_slices", "L3/4": "vertebra_masks", "L4/5": "level_slices", "L5/S1": "vertebra_masks"}
    assert found["L4/5"] is positions["L4/5"]
    assert list(found) == ["L2/3", "L3/4", "L4/5", "L5/S1"]


def test_find_landmarks_warns_when_a_typed_position_disagrees(phantom):
    from ParaspinalFatLib.anatomy.level_positions import landmarks_from_slices

    geom = phantom[0]
    seg = make_seg(phantom, VERTEBRA_NAMES)
    ax = geom.slice_axis(U)
    k34 = geom.nearest_slice(expected_disc("L3", "L4"), ax)[0]  # one disc (36 mm) too high
    positions = landmarks_from_slices({"L4/5": k34}, geom, ax)
    with pytest.warns(LevelWarning, match=r"level L4/5: the typed position .* lies 3\d mm along the spine from "
                                          r"the same level found by vertebra_masks.*slice-base"):
        found = find_landmarks(seg, positions=positions)
    assert found["L4/5"].source == "level_slices"
    # a typed level the masks do not have is never compared
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        find_landmarks(seg, positions=landmarks_from_slices({"L1/2": k34}, geom, ax))
    with pytest.raises(InputError, match="not a LevelLandmark"):
        find_landmarks(seg, positions={"L4/5": (1.0, 2.0, 3.0)})


def test_missing_level_message_lists_every_way_out(phantom):
    seg = make_seg(phantom, {2: "vertebrae_L4", 3: "vertebrae_L5"})
    with pytest.raises(LevelError) as err:
        find_landmarks(seg, required=["L3/4"])
    msg = str(err.value)
    for way in ("disc_L4_L5", "vertebrae_L4", "--markups", "line", "--level-slices", "--slice-base",
                "--level-z", "multifidus_left_L4/5"):
        assert way in msg, way
    with pytest.raises(LevelError, match="no segmentation, markups file or typed positions was given"):
        find_landmarks(required=["L4/5"])
    with pytest.raises(LevelError, match=r"not found in the typed positions \(L2/3\)"):
        find_landmarks(positions={"L2/3": LevelLandmark("L2/3", (0, 0, 0), "level_z", "typed")}, required=["L4/5"])

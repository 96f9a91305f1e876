"""QC pictures of disc-parallel (oblique) planes: a tilted elliptic-cylinder muscle whose
patient-left half is fat, sampled on planes perpendicular to its axis.

Expected values are computed by hand from the phantom's definition: the LPS centre of a
plane pixel is ``origin + col * pixel * u + row * pixel * v``, its fat/lean state and
image value follow from the analytic cylinder, and the plane cuts the sagittal section
along ``z - z0 = tan(tilt) * (y - y0)``.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from ParaspinalFatLib.composition.base import EXCLUDED, FAT, LEAN, UNDEFINED
from ParaspinalFatLib.composition.pdff import PdffMethod
from ParaspinalFatLib.errors import InputError
from ParaspinalFatLib.geometry import Geometry
from ParaspinalFatLib.measurement.disc_planes import measure_planes
from ParaspinalFatLib.measurement.planning import Roi, Row
from ParaspinalFatLib.report import qc_pictures
from ParaspinalFatLib.report.plane_pictures import plane_edge_labels, resample_plane, section_line, write_plane_pictures
from ParaspinalFatLib.report.qc_pictures import DEFAULT_FAT_COLOR, DEFAULT_LEVEL_LINE_COLOR, DEFAULT_UNDEFINED_COLOR, read_qc_info, voxel_to_pixel
from ParaspinalFatLib.segmentation import Segment, Segmentation

TOL = 1.0 / 255.0 + 1e-9
THETA = np.radians(20.0)
NORMAL = np.array([0.0, -np.sin(THETA), np.cos(THETA)])  # cylinder axis: tilted 20 deg in the y-z plane
E1 = np.array([1.0, 0.0, 0.0])  # cross-section axis towards patient left (fat side)
E2 = np.array([0.0, np.cos(THETA), np.sin(THETA)])  # cross-section axis towards posterior
CENTRE = np.array([0.3, -0.4, 0.7])  # level point (LPS mm), on the cylinder axis
SEMI_X, SEMI_Y = 14.0, 9.0  # ellipse semi-axes along E1, E2 (mm)
FAT_VALUE, BACKGROUND = 80.0, 30.0
NAN_AT = CENTRE - 9.0 * E1  # a NaN voxel in the lean half, on the level plane
L34_SHIFT = 16.0  # an unmeasured level 16 mm cranial along the axis


def lean_value(s):
    """Lean PDFF (%) at distance s (mm) along the axis from the level point: linear, so trilinear
    interpolation reproduces it exactly; 20 % on the level plane, 19 / 21 % on its neighbours."""
    return 20.0 + 0.5 * s


# (direction columns = i, j, k axes in LPS, spacing, size (i, j, k), plane picture transposed?)
GRIDS = {
    "LPS": (np.eye(3), (1.0, 1.0, 2.0), (48, 48, 30), False),
    "RAS-stored": (np.diag([-1.0, -1.0, 1.0]), (1.0, 1.0, 2.0), (48, 48, 30), False),
    "PIR": (np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0]], float), (1.0, 2.0, 1.0), (48, 30, 48), True),
}


def cross_section(points):
    """(x', y', s) of LPS points: coordinates along E1, E2 and the axis, from CENTRE."""
    rel = np.asarray(points, float) - CENTRE
    return rel @ E1, rel @ E2, rel @ NORMAL


def build_case(grid: str):
    direction, spacing, size, _ = GRIDS[grid]
    half = direction @ (np.asarray(spacing) * (np.asarray(size) - 1) / 2.0)
    geo = Geometry(tuple(size), tuple(spacing), tuple(-half), tuple(direction.ravel()))
    k, j, i = np.indices(geo.shape)
    x, y, s = cross_section(geo.index_to_physical(np.stack([i, j, k], axis=-1)))
    inside = (x / SEMI_X) ** 2 + (y / SEMI_Y) ** 2 <= 1.0
    image = np.where(inside, np.where(x > 0, FAT_VALUE, lean_value(s)), BACKGROUND)
    nan_ijk = np.rint(geo.physical_to_index(NAN_AT)).astype(int)
    image[nan_ijk[2], nan_ijk[1], nan_ijk[0]] = np.nan
    seg = Segmentation(inside.astype(np.uint8), geo, [Segment("multifidus_left", 0, 1)], source="phantom")
    axis = geo.slice_axis()
    s_index, _ = geo.nearest_slice(CENTRE, axis)
    rows = [Row(0, "L4/5", "markups", s_index, 0.0, (s_index, s_index))]
    rois = [Roi(seg.segments[0], "multifidus", "left", None)]
    landmarks = {"L4/5": SimpleNamespace(level="L4/5", point_lps=CENTRE, source="markups", detail="",
                                         direction_lps=NORMAL, direction_source="markups line along the disc")}
    planes = measure_planes(image, None, geo, seg, [(0, 1)], rows, rois, landmarks, axis, n_slices=3)
    value = planes.samples.value
    # the simple rule: NaN -> undefined, >= 50 % -> fat, else lean (every kept pixel is in the row)
    codes = np.where(np.isnan(value), UNDEFINED, np.where(value >= 50.0, FAT, LEAN)).astype(np.int8)
    levels = pd.DataFrame([{"segment": "multifidus_left", "level": "L4/5", "muscle": "multifidus", "side": "left",
                            "csa_mm2": 301.4, "fat_fraction_pct": 47.3, "fat_area_ratio": 0.5, "goutallier": 2,
                            "mean": 47.3, "unit": "%"}])
    p34 = CENTRE + L34_SHIFT * NORMAL
    marks = pd.DataFrame([
        {"level": "L3/4", "source": "disc_mask", "x_lps_mm": p34[0], "y_lps_mm": p34[1], "z_lps_mm": p34[2],
         "slice_index": 0, "slice_offset_mm": 0.0, "inside_image": True,
         "axis_lps_x": NORMAL[0], "axis_lps_y": NORMAL[1], "axis_lps_z": NORMAL[2]},
        {"level": "L4/5", "source": "markups", "x_lps_mm": CENTRE[0], "y_lps_mm": CENTRE[1], "z_lps_mm": CENTRE[2],
         "slice_index": s_index, "slice_offset_mm": 0.0, "inside_image": True,
         "axis_lps_x": NORMAL[0], "axis_lps_y": NORMAL[1], "axis_lps_z": NORMAL[2]},
    ])
    method = PdffMethod({"fat_threshold_pct": 50.0}, to_output=1.0, pdff_scale="0-100")
    return SimpleNamespace(geo=geo, image=image, axis=axis, planes=planes, rois=rois, codes=codes,
                           levels=levels, marks=marks, method=method)


def read_rgb(path) -> np.ndarray:
    from matplotlib.image import imread

    return np.asarray(imread(str(path))[..., :3], dtype=np.float64)


def close(pixel, color, tol=TOL) -> bool:
    return bool(np.all(np.abs(np.asarray(pixel, float) - np.asarray(color, float)) <= tol))


@pytest.fixture(scope="module", params=sorted(GRIDS))
def pictures(request, tmp_path_factory):
    pytest.importorskip("matplotlib")
    grid = request.param
    case = build_case(grid)
    out = tmp_path_factory.mktemp(f"planes-{grid}")
    calls = []
    real = qc_pictures.render_level_slice

    def recording(path, image2d, spacing, rois, title, window, **kw):
        calls.append(SimpleNamespace(image2d=np.asarray(image2d), spacing=spacing, rois=list(rois), title=title,
                                     window=window, kw=kw))
        return real(path, image2d, spacing, rois, title, window, **kw)

    mp = pytest.MonkeyPatch()
    mp.setattr(qc_pictures, "render_level_slice", recording)
    try:
        paths = write_plane_pictures(out, case.image, case.geo, case.axis, case.planes, case.rois, case.codes,
                                     case.levels, case.marks, case.method, "p1")
    finally:
        mp.undo()
    return SimpleNamespace(grid=grid, case=case, out=out, paths=paths, calls=calls)


def kept_on_central_plane(case):
    """Kept pixels of the central plane: (row, col), their hand-computed LPS centre and sample value."""
    smp = case.planes.samples
    sel = smp.slice_index == 1  # the central one of the 3 planes of the only level
    plane = case.planes.planes[1]
    r, c = smp.pixel_row[sel], smp.pixel_col[sel]
    lps = plane.origin_lps + c[:, None] * plane.pixel_mm * plane.u_lps + r[:, None] * plane.pixel_mm * plane.v_lps
    return r, c, lps, smp.value[sel]


def png_position(pictures, r, c):
    """PNG (row, col) of plane pixels (r, c): the picture holds the plane grid, transposed for PIR."""
    transposed = GRIDS[pictures.grid][3]
    path = pictures.paths[0]
    return voxel_to_pixel(path, c, r) if transposed else voxel_to_pixel(path, r, c)


def test_file_names_do_not_collide_with_the_image_plane_pictures(pictures):
    names = [p.name for p in pictures.paths]
    assert names == ["p1_L4-5_disc_plane.png", "p1_sagittal_disc_planes.png"]
    assert all(p.is_file() and p.parent == pictures.out for p in pictures.paths)
    info = read_qc_info(pictures.paths[0])
    assert info.kind == "level_slice"
    pixel = pictures.case.planes.planes[1].pixel_mm
    assert pixel == pytest.approx(1.0)  # the finest in-plane spacing of every grid here
    assert info.pixel_spacing == pytest.approx((pixel, pixel))
    assert info.window == pytest.approx((0.0, 100.0))


def test_fat_lean_and_undefined_colours_at_plane_pixel_centres(pictures):
    case = pictures.case
    r, c, lps, value = kept_on_central_plane(case)
    x, y, s = cross_section(lps)
    np.testing.assert_allclose(s, 0.0, atol=1e-9)  # the central plane passes through the level point
    # pixels whose 8 interpolation neighbours are all inside the ellipse, on one side of x' = 0
    deep = (x / (SEMI_X - 2.0)) ** 2 + (y / (SEMI_Y - 2.0)) ** 2 <= 1.0
    away_from_nan = np.linalg.norm(lps - NAN_AT, axis=1) > 4.0
    fat = deep & (x > 1.5)
    lean = deep & (x < -1.5) & away_from_nan
    assert fat.sum() > 50 and lean.sum() > 30
    png = read_rgb(pictures.paths[0])
    pr, pc = png_position(pictures, r, c)
    for n in np.flatnonzero(fat):
        assert close(png[pr[n], pc[n]], DEFAULT_FAT_COLOR), (r[n], c[n], png[pr[n], pc[n]])
    # lean: grey R = G = B at the lean value on the level plane (20 % in the 0-100 window); a
    # neighbouring plane of the stack (19 or 21 %) would be 2.5 grey levels off
    grey = np.round(lean_value(0.0) / 100.0 * 255.0) / 255.0
    for n in np.flatnonzero(lean):
        assert close(png[pr[n], pc[n]], (grey, grey, grey)), (r[n], c[n], png[pr[n], pc[n]])
    # the NaN voxel makes its neighbourhood undefined: magenta
    nan_pixels = np.flatnonzero(np.isnan(value))
    assert nan_pixels.size > 0
    assert np.all(np.linalg.norm(lps[nan_pixels] - NAN_AT, axis=1) < 3.0)  # around that voxel only
    for n in nan_pixels:
        assert close(png[pr[n], pc[n]], DEFAULT_UNDEFINED_COLOR)


def test_plane_picture_is_in_the_radiological_view(pictures):
    """Patient left (fat half) on the viewer's right, posterior at the bottom, whatever the grid."""
    r, c, lps, _ = kept_on_central_plane(pictures.case)
    x, y, _ = cross_section(lps)
    pr, pc = png_position(pictures, r, c)
    left, right = x > 3.0, x < -3.0
    posterior, anterior = y > 3.0, y < -3.0
    assert pc[left].mean() > pc[right].mean() + 10
    assert pr[posterior].mean() > pr[anterior].mean() + 10
    call = pictures.calls[0]
    side = {"R": "L", "L": "R", "A": "P", "P": "A"}
    left_edge, _, top_edge, _ = call.kw["edge_labels"]
    shown_left = side[left_edge] if call.kw["flip_lr"] else left_edge
    shown_top = side[top_edge] if call.kw["flip_ud"] else top_edge
    assert (shown_left, shown_top) == ("R", "A")


def test_the_picture_is_the_resampled_image_and_masks_of_the_central_plane(pictures):
    case = pictures.case
    call = pictures.calls[0]
    plane = case.planes.planes[1]
    expected_shape = plane.shape[::-1] if GRIDS[pictures.grid][3] else plane.shape
    assert call.image2d.shape == expected_shape
    r, c, lps, value = kept_on_central_plane(case)
    got = call.image2d.T[r, c] if GRIDS[pictures.grid][3] else call.image2d[r, c]
    x, y, _ = cross_section(lps)
    deep = (x / (SEMI_X - 2.0)) ** 2 + (y / (SEMI_Y - 2.0)) ** 2 <= 1.0
    away = np.linalg.norm(lps - NAN_AT, axis=1) > 4.0
    np.testing.assert_allclose(got[deep & away & (x > 1.5)], FAT_VALUE, atol=1e-9)
    np.testing.assert_allclose(got[deep & away & (x < -1.5)], lean_value(0.0), atol=1e-9)
    # the resampled picture agrees with the sampler's values at every finite kept pixel
    finite = np.isfinite(value)
    np.testing.assert_allclose(got[finite], value[finite], atol=1e-9)
    (roi,) = call.rois
    mask = np.asarray(roi.mask)
    mask = mask.T if GRIDS[pictures.grid][3] else mask
    expected = np.zeros(plane.shape, bool)
    expected[r, c] = True
    assert np.array_equal(mask, expected)


def test_title_and_label_name_the_level_tilt_and_numbers(pictures):
    call = pictures.calls[0]
    assert "L4/5" in call.title and "disc-parallel plane" in call.title
    assert "tilt 20.0° from the image plane" in call.title
    assert "markups line along the disc" in call.title  # where the normal came from
    assert call.title.startswith("p1  L4/5")
    text = call.rois[0].label_text
    assert "multifidus L" in text and "CSA 301 mm²" in text and "FF 47.3 %" in text and "Goutallier 2" in text
    assert pictures.case.planes.row_tilts_deg[0] == pytest.approx(20.0)


def test_sagittal_overview_draws_each_plane_as_its_tilted_line(pictures):
    case = pictures.case
    path = pictures.paths[1]
    info = read_qc_info(path)
    assert info.kind == "sagittal_overview"
    png = read_rgb(path)
    geo, axis = case.geo, case.axis
    in_plane = [a for a in (0, 1, 2) if a != axis]
    ap = [a for a in in_plane if abs(geo.direction_matrix[0, a]) < 0.5][0]  # the non left-right axis
    ys = np.linspace(-12.0, 12.0, 9)  # posterior coordinates (mm) along the section
    for shift in (0.0,):  # the measured L4/5 plane (the unmeasured L3/4 is not drawn)
        # the plane n . (p - CENTRE - shift n) = 0 with n = (0, -sin, cos): z = z0 + (shift + sin (y - y0)) / cos
        z = CENTRE[2] + (shift + np.sin(THETA) * (ys - CENTRE[1])) / np.cos(THETA)
        idx = geo.physical_to_index(np.stack([np.full_like(ys, CENTRE[0]), ys, z], axis=1))
        py, px = info.voxel_center_px(idx[:, axis], idx[:, ap])
        # in physical units the line's slope is tan(tilt): check the picture keeps the true aspect
        dz_px = abs(py[-1] - py[0]) / (info.image_height / (info.n_rows * geo.spacing[axis]))
        dy_px = abs(px[-1] - px[0]) / (info.image_width / (info.n_cols * geo.spacing[ap]))
        assert dz_px / dy_px == pytest.approx(np.tan(THETA), rel=1e-6)
        for yy, xx in zip(py, px):
            column = png[int(np.floor(yy)) - 2: int(np.floor(yy)) + 3, int(np.floor(xx))]
            assert any(close(p, DEFAULT_LEVEL_LINE_COLOR) for p in column), (shift, yy, xx)
            # and not a horizontal line: 8 px above and below are no line
            for off in (-8, 8):
                assert not close(png[int(np.floor(yy)) + off, int(np.floor(xx))], DEFAULT_LEVEL_LINE_COLOR)


def test_sagittal_labels_say_level_and_tilt_of_the_measured_planes_only(pictures, monkeypatch):
    case = pictures.case
    seen = {}
    real = qc_pictures.render_sagittal_overview

    def recording(path, image2d, spacing, level_lines=(), *args, **kw):
        seen["lines"] = list(level_lines)
        return real(path, image2d, spacing, level_lines, *args, **kw)

    monkeypatch.setattr(qc_pictures, "render_sagittal_overview", recording)
    write_plane_pictures(pictures.out / "again", case.image, case.geo, case.axis, case.planes, case.rois,
                         case.codes, case.levels, case.marks, case.method, "p1")
    labels = {line[0]: line[2] for line in seen["lines"]}
    assert labels["L4/5"] == "tilt 20.0°, markups"
    assert "L3/4" not in labels  # found but not measured: not drawn (the overview shows what was measured)


def test_section_line_by_hand():
    """LPS grid, 1 x 2 x 4 mm: the plane through (0, 10, 20) with normal (0, -sin t, cos t) cuts the
    sagittal section x = 0 (rows along k, columns along j) along z - 20 = tan t (y - 10)."""
    geo = Geometry((5, 40, 30), (1.0, 2.0, 4.0), (0.0, 0.0, 0.0), tuple(np.eye(3).ravel()))
    t = np.radians(15.0)
    ends = section_line(geo, (0.0, 10.0, 20.0), (0.0, -np.sin(t), np.cos(t)), 0, 2, 2, 1, (30, 40))
    for row, col in ends:
        y, z = 2.0 * col, 4.0 * row
        assert z - 20.0 == pytest.approx(np.tan(t) * (y - 10.0))
    assert ends[0][1] == 0.0 and ends[1][1] == 39.0
    # a steep plane (more than 45 degrees in index units) is solved for the column instead
    t = np.radians(80.0)
    ends = section_line(geo, (0.0, 10.0, 20.0), (0.0, -np.sin(t), np.cos(t)), 0, 2, 2, 1, (30, 40))
    assert ends[0][0] == 0.0 and ends[1][0] == 29.0
    for row, col in ends:
        assert 4.0 * row - 20.0 == pytest.approx(np.tan(t) * (2.0 * col - 10.0))
    # a plane parallel to the section has no line
    assert section_line(geo, (0.0, 10.0, 20.0), (1.0, 0.0, 0.0), 0, 2, 2, 1, (30, 40)) is None
    with pytest.raises(InputError, match="0, 1 and 2"):
        section_line(geo, (0.0, 0.0, 0.0), (0.0, 0.0, 1.0), 0, 0, 2, 2, (30, 40))
    with pytest.raises(InputError, match="non-zero"):
        section_line(geo, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 0, 0, 2, 1, (30, 40))


def test_resample_plane_reproduces_a_linear_image_and_is_nan_outside():
    from ParaspinalFatLib.measurement.planes import make_plane

    geo = Geometry((20, 16, 12), (1.0, 1.5, 3.0), (5.0, -4.0, 2.0), tuple(np.eye(3).ravel()))
    k, j, i = np.indices(geo.shape)
    p = geo.index_to_physical(np.stack([i, j, k], axis=-1))
    image = (2.0 * p[..., 0] - p[..., 1] + 0.5 * p[..., 2]).astype(np.float32)
    centre = geo.index_to_physical([9.5, 7.5, 5.5])
    plane = make_plane(geo, centre, (0.2, -0.3, 1.0), axis=2)
    got = resample_plane(image, geo, plane)
    q = plane.pixel_centres()
    expected = 2.0 * q[..., 0] - q[..., 1] + 0.5 * q[..., 2]
    ijk = geo.physical_to_index(q)
    inside = np.all((ijk >= 0) & (ijk <= np.array(geo.size) - 1), axis=-1)
    assert inside.sum() > 100 and (~inside).sum() > 100
    np.testing.assert_allclose(got[inside], expected[inside], atol=1e-4)
    assert np.all(np.isnan(got[~inside]))
    # integer images are interpolated, not rounded
    got_int = resample_plane(np.round(image * 10).astype(np.int32), geo, plane)
    np.testing.assert_allclose(got_int[inside], 10 * expected[inside], atol=0.51)
    assert not np.allclose(got_int[inside], np.round(got_int[inside]))
    with pytest.raises(InputError, match="does not match the geometry"):
        resample_plane(image[:-1], geo, plane)


def test_plane_edge_labels_follow_u_and_v():
    geo = Geometry((10, 10, 10), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), tuple(np.eye(3).ravel()))
    from ParaspinalFatLib.measurement.planes import make_plane

    assert plane_edge_labels(make_plane(geo, (5, 5, 5), (0, 0, 1), axis=2)) == ("R", "L", "A", "P")
    # the normal reversed: v = n x u points anterior
    assert plane_edge_labels(make_plane(geo, (5, 5, 5), (0, 0, -1), axis=2)) == ("R", "L", "P", "A")


def test_codes_must_match_the_samples(tmp_path):
    case = build_case("LPS")
    with pytest.raises(InputError, match="codes has"):
        write_plane_pictures(tmp_path, case.image, case.geo, case.axis, case.planes, case.rois, case.codes[:-1],
                             case.levels, case.marks, case.method, "p1")
    assert list(tmp_path.iterdir()) == []


def test_excluded_pixels_are_undefined_and_unrowed_pixels_plain(tmp_path):
    pytest.importorskip("matplotlib")
    case = build_case("LPS")
    r, c, lps, value = kept_on_central_plane(case)
    x, y, _ = cross_section(lps)
    deep = (x / (SEMI_X - 2.0)) ** 2 + (y / (SEMI_Y - 2.0)) ** 2 <= 1.0
    codes = case.codes.copy()
    on_plane = np.flatnonzero(case.planes.samples.slice_index == 1)
    excluded = on_plane[deep & (x < -1.5) & (y > 2.0)]
    unrowed = on_plane[deep & (x > 1.5) & (y > 2.0)]
    codes[excluded] = EXCLUDED
    codes[unrowed] = EXCLUDED - 1  # in no row: not filled, the image shows through
    path = write_plane_pictures(tmp_path, case.image, case.geo, case.axis, case.planes, case.rois, codes,
                                case.levels, case.marks, case.method, "p1")[0]
    png = read_rgb(path)
    where = {int(n): k for k, n in enumerate(on_plane)}
    for n in excluded:
        k = where[int(n)]
        assert close(png[voxel_to_pixel(path, r[k], c[k])], DEFAULT_UNDEFINED_COLOR)
    grey = np.round(FAT_VALUE / 100.0 * 255.0) / 255.0
    for n in unrowed:
        k = where[int(n)]
        assert close(png[voxel_to_pixel(path, r[k], c[k])], (grey, grey, grey))

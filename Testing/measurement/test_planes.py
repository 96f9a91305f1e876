"""Oblique measurement planes against closed forms.

Phantoms are rasterised by voxel-centre inclusion: tilted elliptic and
circular cylinders (CSA perpendicular to the axis = pi a b), a tube along a
circular arc (the plane perpendicular to the arc cuts exactly the generating
ellipse), linear and constant images (trilinear interpolation reproduces
them), and an untilted plane through voxel centres (must reproduce the image
slice exactly).
"""
from __future__ import annotations

import numpy as np
import pytest

from ParaspinalFatLib.errors import InputError
from ParaspinalFatLib.geometry import Geometry
from ParaspinalFatLib.measurement.planes import Plane, PlaneSamples, make_plane, sample_planes
from ParaspinalFatLib.measurement.voxels import RoiVoxels
from ParaspinalFatLib.segmentation import Segment, Segmentation

A_MM, B_MM = 14.0, 9.0


# --------------------------------------------------------------------------- phantoms
def _rotation(ax, ay, az) -> np.ndarray:
    """Right-handed rotation matrix from three angles (degrees) about x, y, z."""
    cx, cy, cz = np.cos(np.radians([ax, ay, az]))
    sx, sy, sz = np.sin(np.radians([ax, ay, az]))
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _geometry(spacing, half_extent_mm, origin=(10.0, -20.0, 30.0), direction=None) -> Geometry:
    """A grid whose voxel-centre box spans about +- half_extent_mm around its centre."""
    spacing = np.asarray(spacing, dtype=float)
    size = np.ceil(2 * np.asarray(half_extent_mm, dtype=float) / spacing).astype(int) + 1
    d = np.eye(3) if direction is None else np.asarray(direction, dtype=float)
    return Geometry(tuple(int(s) for s in size), tuple(spacing), tuple(origin), tuple(d.ravel()))


def _centre(g: Geometry) -> np.ndarray:
    return g.index_to_physical((np.asarray(g.size, dtype=float) - 1) / 2.0)


def _voxel_centres(g: Geometry) -> np.ndarray:
    nk, nj, ni = g.shape
    k, j, i = np.meshgrid(np.arange(nk), np.arange(nj), np.arange(ni), indexing="ij")
    return g.index_to_physical(np.stack([i, j, k], axis=-1).astype(float))


def _axis_frame(tilt_deg, azimuth_deg=90.0, roll_deg=0.0):
    """Unit axis t tilted from +z towards azimuth (90 = +y: sagittal), and ellipse axes e1, e2 perpendicular."""
    th, ph = np.radians(tilt_deg), np.radians(azimuth_deg)
    t = np.array([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)])
    e1 = np.array([1.0, 0.0, 0.0]) - t[0] * t
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(t, e1)
    r = np.radians(roll_deg)
    return t, np.cos(r) * e1 + np.sin(r) * e2, -np.sin(r) * e1 + np.cos(r) * e2


def _cylinder(g: Geometry, centre, t, e1, e2, a, b, half_length=30.0) -> np.ndarray:
    d = _voxel_centres(g) - centre
    return ((d @ e1 / a) ** 2 + (d @ e2 / b) ** 2 <= 1.0) & (np.abs(d @ t) <= half_length)


def _segmentation(g: Geometry, *masks_by_layer) -> Segmentation:
    """Layers from lists of (label, mask); later masks overwrite earlier ones within a layer."""
    layers = np.zeros((len(masks_by_layer),) + tuple(g.shape), dtype=np.uint8)
    segments = []
    for layer, items in enumerate(masks_by_layer):
        for label, mask in items:
            layers[layer][mask] = label
            segments.append(Segment(f"roi{layer}_{label}", layer, label))
    return Segmentation(layers, g, segments, source="phantom")


def _csa(g, seg, plane, keys=((0, 1),)) -> np.ndarray:
    s = sample_planes(np.zeros(g.shape, np.float32), g, seg, list(keys), [plane])
    return s.area_pixels[:, 0] * plane.pixel_area_mm2


# --------------------------------------------------------------------------- 1. tilted cylinders
GRID_1MM = ((1.0, 1.0, 1.0), (22.0, 40.0, 40.0))
GRID_ANISO = ((0.8, 0.8, 3.0), (22.0, 40.0, 40.0))
#: centre offsets (in voxels) from the grid centre: off the voxel lattice, fixed (not tuned)
OFFSETS = ((0.31, 0.17, 0.43), (-0.22, 0.36, -0.11))
#: positions (mm) along the axis of the planes of each phantom
ALONG = (-4.1, 0.0, 4.3)
#: Bound on ONE plane's relative CSA error.  A binary phantom this small has a lattice (aliasing)
#: error of its own: over 100 random placements per case (module docstring of planes.py) the planes'
#: error had RMS 0.5 %, 95th percentile 1.0 % and maximum 1.5 % on both grids, and the untilted plane
#: (= the voxel count of the phantom slice, see the exact test below) reaches the same.  1 % per
#: plane is therefore not a property the phantom can guarantee; it is asserted on the mean below.
TOL_PLANE = 0.015
#: Bound on the mean error over the planes of one case (unbiasedness: measured means <= 0.2 %).
TOL_MEAN = 0.010


def _check_csa(csa, expected):
    rel = np.asarray(csa, dtype=float) / expected - 1.0
    assert np.all(np.abs(rel) <= TOL_PLANE), rel
    assert abs(rel.mean()) <= TOL_MEAN, rel


@pytest.mark.parametrize("grid", [GRID_1MM, GRID_ANISO], ids=["1mm", "0.8x0.8x3mm"])
@pytest.mark.parametrize("tilt, azimuth, roll", [(0, 90, 0), (10, 90, 0), (20, 90, 30), (30, 90, 0), (25, 40, 65)])
def test_tilted_elliptic_cylinder_csa_is_pi_a_b(grid, tilt, azimuth, roll):
    g = _geometry(*grid)
    t, e1, e2 = _axis_frame(tilt, azimuth, roll)
    expected = np.pi * A_MM * B_MM
    csa = []
    for offset in OFFSETS:
        c = _centre(g) + np.asarray(offset) * np.asarray(g.spacing)
        mask = _cylinder(g, c, t, e1, e2, A_MM, B_MM)
        seg = _segmentation(g, [(1, mask)])
        for along in ALONG:
            plane = make_plane(g, c + along * t, t)
            assert plane.tilt_deg(g.plane_normal(2)) == pytest.approx(tilt, abs=1e-9)
            csa.append(_csa(g, seg, plane)[0])
        # the image's own axial slice through the centre: voxel count x face = pi a b / cos(tilt)
        k, _ = g.nearest_slice(c, 2)
        axial = mask[k].sum() * g.pixel_area_mm2(2)
        assert axial == pytest.approx(expected / np.cos(np.radians(tilt)), rel=0.03)
        if tilt >= 20:
            assert axial > 1.05 * expected  # what the oblique plane corrects
    _check_csa(csa, expected)


@pytest.mark.parametrize("grid", [GRID_1MM, GRID_ANISO], ids=["1mm", "0.8x0.8x3mm"])
@pytest.mark.parametrize("tilt", [0, 10, 20, 30])
def test_tilted_circular_cylinder_csa_is_pi_r2(grid, tilt):
    g = _geometry(*grid)
    r = 11.0
    t, e1, e2 = _axis_frame(tilt)
    csa = []
    for offset in OFFSETS:
        c = _centre(g) + np.asarray(offset) * np.asarray(g.spacing)
        seg = _segmentation(g, [(1, _cylinder(g, c, t, e1, e2, r, r))])
        csa += [_csa(g, seg, make_plane(g, c + along * t, t))[0] for along in ALONG]
    _check_csa(csa, np.pi * r * r)


# --------------------------------------------------------------------------- 2. curved tube
def test_tube_along_a_circular_arc_has_the_generating_ellipse_on_each_perpendicular_plane():
    radius = 150.0
    g = _geometry((1.0, 1.0, 1.0), (18.0, 40.0, 64.0), origin=(0.0, 0.0, 0.0))
    # centre of curvature anterior-inferior of the grid centre (LPS: -y, -z), on the x line through it;
    # the arc (tilt -5 .. 40 degrees) has its middle (17.5 degrees) near the grid centre, off the lattice
    mid = np.radians(17.5)
    centre = _centre(g) - radius * np.array([0.0, np.cos(mid), np.sin(mid)]) + [0.37, 0.21, 0.13]
    x = _voxel_centres(g) - centre
    rho = np.hypot(x[..., 1], x[..., 2])
    alpha = np.degrees(np.arctan2(x[..., 2], x[..., 1]))
    # in every plane containing the x line through `centre`: the ellipse a (x) by b (radial) at rho = R
    mask = ((x[..., 0] / A_MM) ** 2 + ((rho - radius) / B_MM) ** 2 <= 1.0) & (alpha > -5) & (alpha < 40)
    seg = _segmentation(g, [(1, mask)])
    z_axis = g.plane_normal(2)
    csa = []
    for tilt in (0.0, 7.5, 15.0, 22.5, 30.0):
        al = np.radians(tilt)
        point = centre + radius * np.array([0.0, np.cos(al), np.sin(al)])
        tangent = np.array([0.0, -np.sin(al), np.cos(al)])
        plane = make_plane(g, point, tangent)
        assert plane.tilt_deg(z_axis) == pytest.approx(tilt, abs=1e-9)
        csa.append(_csa(g, seg, plane)[0])
        if tilt >= 20:  # the image's axial slice through the point is inflated by about 1 / cos(tilt)
            k, _ = g.nearest_slice(point, 2)
            assert mask[k].sum() > 1.05 * np.pi * A_MM * B_MM
    _check_csa(csa, np.pi * A_MM * B_MM)


# --------------------------------------------------------------------------- 3. values
def test_linear_image_mean_is_its_value_at_the_centre_and_constant_is_exact():
    g = _geometry((0.9, 0.9, 2.5), (22.0, 36.0, 36.0))
    c = _centre(g)  # on a voxel centre: the rasterised mask is point-symmetric about c
    t, e1, e2 = _axis_frame(23.0, 70.0, 20.0)
    seg = _segmentation(g, [(1, _cylinder(g, c, t, e1, e2, A_MM, B_MM))])
    c0, grad = 40.0, np.array([0.7, -1.3, 2.1])  # HU and HU/mm
    image = c0 + _voxel_centres(g) @ grad
    constant = np.full(g.shape, 37, dtype=np.int16)
    plane = make_plane(g, c, t)
    s = sample_planes(image, g, seg, [(0, 1)], [plane], water=constant)
    assert s.value.size > 300 and s.value.dtype == np.float64
    assert s.value.mean() == pytest.approx(c0 + c @ grad, rel=1e-9)
    # trilinear interpolation reproduces a linear function at every pixel centre
    centres = plane.pixel_centres()[s.pixel_row, s.pixel_col]
    np.testing.assert_allclose(s.value, c0 + centres @ grad, rtol=0, atol=1e-9)
    assert s.water.dtype == np.float64 and np.all(s.water == 37.0)
    assert np.all((s.membership >= 0.5) & (s.membership <= 1.0 + 1e-12))


# --------------------------------------------------------------------------- 4. the image slice itself
@pytest.mark.parametrize("direction", [np.eye(3), _rotation(12.0, -7.0, 25.0)], ids=["identity", "oblique grid"])
def test_untilted_plane_through_voxel_centres_reproduces_the_slice(direction):
    g = _geometry((0.8, 0.8, 3.0), (20.0, 30.0, 30.0), direction=direction)
    rng = np.random.default_rng(3)
    image = rng.normal(50.0, 20.0, g.shape)
    t, e1, e2 = _axis_frame(18.0)
    # the cylinder is defined in grid coordinates so that it is tilted relative to the slices
    t, e1, e2 = (direction @ v for v in (t, e1, e2))
    k_slice, j0, i0 = 13, 31, 24
    point = g.index_to_physical([i0, j0, k_slice])
    mask = _cylinder(g, point + 0.3 * e1, t, e1, e2, A_MM, B_MM)
    seg = _segmentation(g, [(1, mask)])
    plane = make_plane(g, point, g.plane_normal(2))
    assert plane.pixel_mm == 0.8
    np.testing.assert_allclose(plane.u_lps, direction[:, 0], atol=1e-12)
    np.testing.assert_allclose(plane.v_lps, direction[:, 1], atol=1e-12)
    s = sample_planes(image, g, seg, [(0, 1)], [plane])
    count = int(mask[k_slice].sum())
    assert s.counts_per_slice()[0, 0] == count
    assert s.area_pixels[0, 0] == count
    assert np.all(s.membership == 1.0)
    row0, col0 = plane.point_pixel
    j = s.pixel_row - row0 + j0
    i = s.pixel_col - col0 + i0
    assert np.all(mask[k_slice, j, i])
    assert np.array_equal(s.value, image[k_slice, j, i])
    k_near, j_near, i_near = s.nearest_kji
    assert np.all(k_near == k_slice) and np.array_equal(j_near, j) and np.array_equal(i_near, i)


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5, 0.8])
def test_axial_plane_between_slices_interpolates_the_two_voxel_counts(fraction):
    g = _geometry((0.8, 0.8, 3.0), (20.0, 30.0, 30.0))
    t, e1, e2 = _axis_frame(35.0)
    c = _centre(g)
    mask = _cylinder(g, c, t, e1, e2, A_MM, B_MM)
    seg = _segmentation(g, [(1, mask)])
    k = g.nearest_slice(c, 2)[0]
    # pixel centres off the voxel centres in-plane as well: with pixel = spacing the area is still exact
    point = g.index_to_physical([10.37, 12.61, k + fraction])
    plane = make_plane(g, point, [0.0, 0.0, 1.0])
    counts = mask[k].sum(), mask[k + 1].sum()
    assert counts[0] != counts[1]
    s = sample_planes(np.zeros(g.shape), g, seg, [(0, 1)], [plane])
    assert s.area_pixels[0, 0] == pytest.approx((1 - fraction) * counts[0] + fraction * counts[1], rel=1e-12)


# --------------------------------------------------------------------------- 5. outside the image
def test_pixels_beyond_the_grid_have_nan_values_and_no_membership_beyond_one_voxel():
    g = _geometry((1.0, 1.0, 2.0), (6.0, 8.0, 10.0))
    ni, nj, nk = g.size
    full = np.ones(g.shape, dtype=bool)
    seg = _segmentation(g, [(1, full)])
    image = np.full(g.shape, 7.0)
    # untilted plane through slice 3, pixel centres half a voxel off the voxel centres in-plane
    point = g.index_to_physical([2.5, 4.5, 3.0])
    plane = make_plane(g, point, g.plane_normal(2))
    s = sample_planes(image, g, seg, [(0, 1)], [plane])
    # bilinear membership of a full slice falls to 0 over one voxel outside: the area is the voxel count
    assert s.area_pixels[0, 0] == pytest.approx(ni * nj, rel=1e-12)
    edge = 2 * (ni - 1) + 2 * (nj - 1)  # membership 0.5 (kept), beyond the last voxel centre: NaN value
    assert s.counts_per_slice()[0, 0] == (ni - 1) * (nj - 1) + edge  # the 4 corners (0.25) are not kept
    assert int(np.isnan(s.value).sum()) == edge
    assert np.all(s.value[~np.isnan(s.value)] == 7.0)
    assert np.all(s.membership[np.isnan(s.value)] == pytest.approx(0.5))
    # half-size pixels: the interpolated membership reaches one voxel beyond the border (inside the
    # plane's margin) and its samples at 1/2 voxel still sum exactly to the voxel count
    fine = make_plane(g, g.index_to_physical([2.3, 4.1, 3.0]), g.plane_normal(2), pixel_mm=0.5)
    s = sample_planes(image, g, seg, [(0, 1)], [fine])
    assert s.area_pixels[0, 0] * fine.pixel_area_mm2 == pytest.approx(ni * nj * g.pixel_area_mm2(2), rel=1e-12)
    # a tilted plane: every kept pixel lies within one voxel of the grid, NaN exactly beyond the centres
    tilted = make_plane(g, _centre(g) + [0.4, 0.3, 0.2], [0.0, np.sin(0.5), np.cos(0.5)])
    s = sample_planes(image, g, seg, [(0, 1)], [tilted])
    ci = g.physical_to_index(tilted.pixel_centres()[s.pixel_row, s.pixel_col])
    size = np.asarray(g.size)
    assert np.all((ci > -1) & (ci < size))
    beyond = np.any((ci < -1e-9) | (ci > size - 1 + 1e-9), axis=1)
    assert beyond.any() and np.array_equal(np.isnan(s.value), beyond)


def test_plane_outside_the_image_has_zero_area():
    g = _geometry((1.0, 1.0, 1.0), (10.0, 10.0, 10.0))
    seg = _segmentation(g, [(1, np.ones(g.shape, dtype=bool))])
    far = make_plane(g, _centre(g) + [0.0, 0.0, 25.0], [0.0, 0.2, 1.0])
    beside = make_plane(g, _centre(g) + [40.0, 0.0, 0.0], [1.0, 0.0, 0.1])
    s = sample_planes(np.ones(g.shape), g, seg, [(0, 1)], [far, beside], water=np.ones(g.shape))
    assert s.area_pixels.tolist() == [[0.0, 0.0]]
    assert s.roi.size == 0 and s.value.size == 0 and s.water.size == 0
    assert s.counts_per_slice().tolist() == [[0, 0]]


# --------------------------------------------------------------------------- 6. several ROIs and layers
def test_several_rois_in_several_layers_agree_with_each_sampled_alone():
    g = _geometry((0.9, 0.9, 2.0), (40.0, 30.0, 30.0))
    c = _centre(g) + [0.2, 0.1, 0.3]
    t, e1, e2 = _axis_frame(15.0)
    left = _cylinder(g, c + [-12.0, 0, 0], t, e1, e2, 10.0, 7.0)
    right = _cylinder(g, c + [8.0, 0, 0], t, e1, e2, 10.0, 7.0)  # touches `left` (shared border)
    other = _cylinder(g, c + [0, 15.0, 0], t, e1, e2, 5.0, 5.0)  # a label that is no ROI
    big = _cylinder(g, c, t, e1, e2, 30.0, 12.0)  # overlaps both, in its own layer
    seg = _segmentation(g, [(1, left), (2, right), (9, other)], [(3, big)])
    image = np.random.default_rng(5).normal(0.0, 1.0, g.shape)
    water = image * 2.0 + 1.0
    planes = [make_plane(g, c, t), make_plane(g, c + 3.0 * t, t).shifted(-1.0)]
    keys = [(0, 1), (1, 3), (0, 2)]
    together = sample_planes(image, g, seg, keys, planes, water=water)
    assert together.area_pixels.shape == (3, 2)
    for number, key in enumerate(keys):
        alone = sample_planes(image, g, seg, [key], planes, water=water)
        np.testing.assert_allclose(together.area_pixels[number], alone.area_pixels[0], rtol=1e-12)
        sel = together.roi == number
        a = _rows(together, sel)
        b = _rows(alone, np.ones(alone.roi.size, bool))
        assert a.shape == b.shape and a.shape[0] > 100
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)
    # the same from layers that are not C-contiguous (read in place, not copied)
    fortran = Segmentation(np.asfortranarray(seg.layers), g, seg.segments, source="fortran")
    again = sample_planes(image, g, fortran, keys, planes, water=water)
    np.testing.assert_array_equal(again.area_pixels, together.area_pixels)
    np.testing.assert_array_equal(_rows(again, np.ones(again.roi.size, bool)),
                                  _rows(together, np.ones(together.roi.size, bool)))
    # the two touching ROIs of one layer: membership sums to at most 1 at every pixel
    sums = np.zeros((2,) + planes[0].shape)
    for r in (0, 2):
        sel = together.roi == r
        np.add.at(sums, (together.slice_index[sel], together.pixel_row[sel], together.pixel_col[sel]),
                  together.membership[sel])
    assert sums.max() <= 1.0 + 1e-12
    # CSA of the 10 x 7 mm cylinders is pi a b within their lattice error (small ellipses on 0.9 mm
    # voxels, and the voxels of their shared border belong to `right`): 3 %
    np.testing.assert_allclose(together.area_mm2()[[0, 2]], np.pi * 70.0, rtol=0.03)
    np.testing.assert_allclose(together.area_mm2()[1], np.pi * 360.0, rtol=0.01)


def _rows(s: PlaneSamples, sel) -> np.ndarray:
    table = np.column_stack([s.slice_index[sel], s.pixel_row[sel], s.pixel_col[sel], s.value[sel],
                             s.water[sel], s.membership[sel]] + [n[sel] for n in s.nearest_kji])
    return table[np.lexsort(table[:, :3].T[::-1])]


def test_samples_convert_to_roi_voxels():
    g = _geometry((1.0, 1.0, 1.0), (20.0, 20.0, 20.0))
    c = _centre(g)
    t, e1, e2 = _axis_frame(20.0)
    seg = _segmentation(g, [(1, _cylinder(g, c, t, e1, e2, 8.0, 5.0)), (2, _cylinder(g, c + [0, 0, 9.0], t, e1, e2, 3.0, 3.0))])
    planes = [make_plane(g, c, t), make_plane(g, c, t).shifted(9.0)]
    s = sample_planes(np.arange(np.prod(g.shape), dtype=np.int32).reshape(g.shape), g, seg, [(0, 2), (0, 1)], planes)
    vox = s.to_roi_voxels()
    assert isinstance(vox, RoiVoxels)
    assert vox.n_slices == 2 and vox.n_rois == 2 and vox.value.dtype == np.float64
    assert np.array_equal(vox.counts_per_slice(), s.counts_per_slice())
    assert all(np.array_equal(a, b) for a, b in zip(vox.positions(), s.nearest_kji))
    counts = s.counts_per_slice()
    assert counts[0, 1] > 0 and counts[1, 0] > 0 and counts[1, 1] > 0
    # nearest voxel = the rounded continuous index of the pixel centre
    ci = g.physical_to_index(planes[0].pixel_centres()[s.pixel_row, s.pixel_col])
    sel = s.slice_index == 0
    assert np.array_equal(np.rint(ci[sel, ::-1]).astype(int).T, np.array([n[sel] for n in s.nearest_kji]))


# --------------------------------------------------------------------------- the plane itself
def test_make_plane_grid_orientation_and_extent():
    d = _rotation(5.0, 10.0, -30.0)
    g = _geometry((0.7, 0.9, 3.0), (30.0, 25.0, 40.0), direction=d)
    point = _centre(g) + [3.3, -2.1, 7.7]
    normal = np.array([0.1, 0.45, 0.9])
    plane = make_plane(g, point, normal)
    n = normal / np.linalg.norm(normal)
    assert isinstance(plane, Plane)
    assert plane.pixel_mm == 0.7 and plane.pixel_area_mm2 == pytest.approx(0.49)
    np.testing.assert_allclose(plane.normal_lps, n, atol=1e-15)
    # u: the image i axis projected onto the plane; v = n x u
    u = d[:, 0] - (d[:, 0] @ n) * n
    np.testing.assert_allclose(plane.u_lps, u / np.linalg.norm(u), atol=1e-12)
    np.testing.assert_allclose(plane.v_lps, np.cross(n, plane.u_lps), atol=1e-12)
    centres = plane.pixel_centres()
    assert centres.shape == plane.shape + (3,)
    row0, col0 = plane.point_pixel
    np.testing.assert_allclose(centres[row0, col0], point, atol=1e-9)
    np.testing.assert_allclose((centres - point) @ n, 0.0, atol=1e-9)
    np.testing.assert_allclose(plane.pixel_centres(2.5)[3, 4], centres[3, 4] + 2.5 * n, atol=1e-12)
    # every image corner projects inside the pixel-centre rectangle, at least `margin` pixels (one
    # voxel: the reach of the interpolation) and less than margin + 1 pixels from its edge
    margin = int(np.ceil(3.0 / 0.7))
    rel = g.corner_points() - plane.origin_lps
    cu, cv = rel @ plane.u_lps / 0.7, rel @ plane.v_lps / 0.7
    assert cu.min() >= margin - 1e-9 and cv.min() >= margin - 1e-9
    assert cu.max() <= plane.shape[1] - 1 - margin + 1e-9 and cv.max() <= plane.shape[0] - 1 - margin + 1e-9
    assert cu.min() < margin + 1 and cv.min() < margin + 1
    assert cu.max() > plane.shape[1] - 2 - margin and cv.max() > plane.shape[0] - 2 - margin
    # degenerate projection of the i axis: the j axis orients the columns
    side = make_plane(g, point, d[:, 0], pixel_mm=1.5)
    np.testing.assert_allclose(side.u_lps, d[:, 1], atol=1e-12)
    assert side.pixel_mm == 1.5
    assert side.tilt_deg(-d[:, 0]) == 0.0 and side.tilt_deg(d[:, 2] * 5) == pytest.approx(90.0)
    assert plane.tilt_deg([0, 0, 1]) == pytest.approx(np.degrees(np.arccos(n[2])))


@pytest.mark.parametrize("kwargs, option", [
    ({"normal_lps": [0.0, 0.0, 0.0]}, "normal_lps"),
    ({"normal_lps": [0.0, np.nan, 1.0]}, "normal_lps"),
    ({"normal_lps": [0.0, 1.0]}, "normal_lps"),
    ({"point_lps": [np.inf, 0.0, 0.0]}, "point_lps"),
    ({"pixel_mm": 0.0}, "pixel_mm"),
    ({"pixel_mm": -1.0}, "pixel_mm"),
    ({"pixel_mm": np.nan}, "pixel_mm"),
    ({"pixel_mm": np.inf}, "pixel_mm"),
    ({"pixel_mm": "fine"}, "pixel_mm"),
    ({"pixel_mm": 1e-5}, "pixel_mm"),
    ({"axis": 3}, "axis"),
])
def test_make_plane_refusals_name_the_option(kwargs, option):
    g = _geometry((1.0, 1.0, 1.0), (10.0, 10.0, 10.0))
    args = {"point_lps": _centre(g), "normal_lps": [0.0, 0.0, 1.0]}
    args.update(kwargs)
    with pytest.raises(InputError, match=option):
        make_plane(g, **args)


def test_sample_planes_refuses_arrays_off_the_grid():
    g = _geometry((1.0, 1.0, 1.0), (5.0, 5.0, 5.0))
    seg = _segmentation(g, [(1, np.ones(g.shape, dtype=bool))])
    plane = make_plane(g, _centre(g), [0, 0, 1])
    with pytest.raises(InputError, match="image array shape"):
        sample_planes(np.zeros((3, 3, 3)), g, seg, [(0, 1)], [plane])
    with pytest.raises(InputError, match="water image"):
        sample_planes(np.zeros(g.shape), g, seg, [(0, 1)], [plane], water=np.zeros((3, 3, 3)))
    with pytest.raises(InputError, match="layer 1"):
        sample_planes(np.zeros(g.shape), g, seg, [(1, 1)], [plane])
    with pytest.raises(InputError, match="twice"):
        sample_planes(np.zeros(g.shape), g, seg, [(0, 1), (0, 1)], [plane])
    other = _geometry((1.0, 1.0, 1.0), (5.0, 5.0, 5.0), origin=(0.0, 0.0, 0.0))
    with pytest.raises(InputError, match="resample"):
        sample_planes(np.zeros(g.shape), other, seg, [(0, 1)], [plane])


# --------------------------------------------------------------------------- counts on a plane are of pixels
@pytest.mark.parametrize("offset, touched", [(0.0, 1), (0.5, 4)])
def test_n_nan_on_a_plane_counts_the_kept_pixels_whose_interpolation_uses_a_nan_voxel(offset, touched):
    # one NaN voxel inside a full ROI; an untilted plane through its slice, with pixel centres on the
    # voxel centres (the NaN voxel is used by 1 pixel) or half a voxel off in-plane (by 4 pixels, each
    # weighting it 1/4); every other value is 7
    from ParaspinalFatLib.composition.factory import make_method
    from ParaspinalFatLib.measurement.quantities import measure_groups

    g = _geometry((1.0, 1.0, 2.0), (6.0, 8.0, 10.0))
    ni, nj, nk = g.size
    seg = _segmentation(g, [(1, np.ones(g.shape, dtype=bool))])
    image = np.full(g.shape, 7.0)
    k, j0, i0 = 3, 5, 4
    image[k, j0, i0] = np.nan
    plane = make_plane(g, g.index_to_physical([2.0 + offset, 4.0 + offset, float(k)]), g.plane_normal(2))
    s = sample_planes(image, g, seg, [(0, 1)], [plane])
    vox = s.to_roi_voxels()
    method = make_method("scalar", image)
    cols = measure_groups(vox, None, np.zeros(vox.size, dtype=np.intp), 1, method, ["m"], 1.0, np.ones(1))
    # pixels beyond the last voxel centre (kept at membership 0.5 when half a voxel off) are NaN too
    edge = 2 * (ni - 1) + 2 * (nj - 1) if offset else 0
    kept = (ni - 1) * (nj - 1) + edge if offset else ni * nj
    assert cols["n_voxels"][0] == kept
    assert cols["n_nan"][0] == touched + edge
    assert cols["mean"][0] == 7.0

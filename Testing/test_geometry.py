"""Geometry: pixel areas, slice choice and nearest-slice distances on oblique grids."""
import numpy as np
import pytest
import SimpleITK as sitk

from ParaspinalFatLib.geometry import Geometry, axis_shear, lps_to_ras, ras_to_lps


def rot_x(deg):
    t = np.deg2rad(deg)
    return np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])


def rot_z(deg):
    t = np.deg2rad(deg)
    return np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])


def make(direction, spacing=(0.7, 0.9, 4.5), origin=(-120.5, 33.0, -410.25), size=(64, 48, 20)):
    return Geometry(size, spacing, origin, tuple(np.asarray(direction, float).ravel()))


@pytest.mark.parametrize("tilt", [0.0, 7.5, -14.0, 30.0])
def test_pixel_area_and_thickness_on_rotated_grid(tilt):
    g = make(rot_z(20) @ rot_x(tilt))
    # a rotation keeps the in-plane pixel a rectangle of the two spacings
    assert g.pixel_area_mm2(2) == pytest.approx(0.7 * 0.9, rel=1e-12)
    assert g.slice_thickness_mm(2) == pytest.approx(4.5, rel=1e-12)
    assert g.voxel_volume_mm3() == pytest.approx(0.7 * 0.9 * 4.5, rel=1e-12)


def test_pixel_area_on_sheared_grid():
    # gantry-tilt style shear: the k axis leans 20 degrees towards y; in-plane axes stay x, y
    t = np.deg2rad(20)
    d = np.array([[1, 0, 0], [0, 1, np.sin(t)], [0, 0, np.cos(t)]])
    g = make(d, spacing=(0.5, 0.5, 3.0))
    assert g.pixel_area_mm2(2) == pytest.approx(0.25)
    # planes of constant k are 3 mm apart along the k axis, i.e. 3 cos(20) along their normal
    assert g.slice_thickness_mm(2) == pytest.approx(3.0 * np.cos(t))


def test_index_physical_round_trip_matches_simpleitk():
    g = make(rot_z(-33) @ rot_x(11))
    img = sitk.Image(*g.size, sitk.sitkUInt8)
    g.apply_to_sitk(img)
    rng = np.random.default_rng(0)
    for ijk in rng.uniform(0, 40, size=(10, 3)):
        expected = img.TransformContinuousIndexToPhysicalPoint(tuple(float(v) for v in ijk))
        np.testing.assert_allclose(g.index_to_physical(ijk), expected, atol=1e-9)
        np.testing.assert_allclose(g.physical_to_index(expected), ijk, atol=1e-9)


@pytest.mark.parametrize("tilt", [0.0, 12.0, -25.0])
def test_nearest_slice_and_signed_offset_along_normal(tilt):
    g = make(rot_x(tilt))
    normal = g.plane_normal(2)
    for k, off in [(3, 0.0), (7, 1.2), (12, -2.2), (0, 0.4)]:
        # any point of plane k, moved `off` mm along the plane normal
        on_plane = g.index_to_physical([17.3, 5.1, k])
        s, d = g.nearest_slice(on_plane + off * normal, 2)
        assert s == k
        assert d == pytest.approx(off, abs=1e-9)


def test_slice_axis_picks_the_most_axial_planes():
    # a stack whose k axis points left-right (sagittal slices) and whose j axis is superior
    d = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], float)
    g = make(d)
    assert g.slice_axis() == 1
    assert g.pixel_area_mm2(1) == pytest.approx(0.7 * 4.5)
    assert make(rot_x(30)).slice_axis() == 2


def test_ras_lps_conversion():
    p = np.array([[1.0, -2.0, 3.0]])
    np.testing.assert_allclose(ras_to_lps(p), [[-1.0, 2.0, 3.0]])
    np.testing.assert_allclose(lps_to_ras(ras_to_lps(p)), p)


def test_same_grid():
    g = make(np.eye(3))
    assert g.same_grid(make(np.eye(3)))
    assert not g.same_grid(make(np.eye(3), origin=(0, 0, 0)))


def test_same_grid_within_tolerance_and_with_fields_given_as_arrays():
    g = make(np.eye(3))
    # not equal field by field, the same grid within the tolerances (numpy.allclose: 1e-3 mm + 1e-5 relative)
    assert g.same_grid(make(np.eye(3), origin=(-120.5 + 4e-4, 33.0, -410.25), spacing=(0.7 * (1 + 5e-6), 0.9, 4.5)))
    assert not g.same_grid(make(np.eye(3), origin=(-120.5 + 1e-2, 33.0, -410.25)))
    # fields as numpy arrays (no single truth value for ==): the tolerances decide, both ways
    arrays = Geometry(np.array([64, 48, 20]), np.array([0.7, 0.9, 4.5]), np.array([-120.5, 33.0, -410.25]),
                      np.eye(3).ravel())
    assert arrays.same_grid(g) and g.same_grid(arrays) and arrays.same_grid(arrays)
    moved = Geometry(arrays.size, arrays.spacing, arrays.origin + 1.0, arrays.direction)
    assert not arrays.same_grid(moved)


@pytest.mark.parametrize("axes, deg", [((0, 1), 20.0), ((0, 1), 5.0), ((1, 2), 20.0), ((0, 2), 12.5)])
@pytest.mark.parametrize("rotation", [0.0, 17.0])
def test_shear_angle_and_areas_of_a_sheared_grid(tmp_path, axes, deg, rotation):
    # axis b leans `deg` towards axis a: the two meet at 90 - deg degrees
    t = np.deg2rad(deg)
    d = np.eye(3)
    a, b = axes
    d[:, b] = 0.0
    d[b, b], d[a, b] = np.cos(t), np.sin(t)
    d = rot_z(rotation) @ rot_x(rotation / 2) @ d
    g = make(d, spacing=(0.5, 0.6, 3.0))
    assert g.shear_deg() == pytest.approx(deg, abs=1e-9)
    assert axis_shear(g.ijk_to_lps[:3, :3]) == (pytest.approx(deg, abs=1e-9), axes)
    sin_ij = np.cos(t) if axes == (0, 1) else 1.0  # only an in-plane shear changes the pixel
    assert g.pixel_area_mm2(2) == pytest.approx(0.5 * 0.6 * sin_ij, rel=1e-12)
    assert g.voxel_volume_mm3() == pytest.approx(0.5 * 0.6 * 3.0 * np.cos(t), rel=1e-12)
    # SimpleITK holds the non-orthogonal direction in memory and in NRRD files
    img = sitk.Image(*g.size, sitk.sitkUInt8)
    g.apply_to_sitk(img)
    assert Geometry.from_sitk(img).same_grid(g, tol_mm=1e-9, tol_dir=1e-12)
    sitk.WriteImage(img, str(tmp_path / "g.nrrd"))
    assert Geometry.from_sitk(sitk.ReadImage(str(tmp_path / "g.nrrd"))).same_grid(g, tol_mm=1e-9,
                                                                                tol_dir=1e-12)


@pytest.mark.parametrize("tilt", [0.0, 7.5, 90.0, 180.0])
def test_rotations_and_flips_have_no_shear(tilt):
    assert make(rot_z(20) @ rot_x(tilt)).shear_deg() == pytest.approx(0.0, abs=1e-6)
    assert make(rot_x(tilt) @ np.diag([1.0, -1.0, 1.0])).shear_deg() == pytest.approx(0.0, abs=1e-6)
    assert np.isnan(axis_shear(np.diag([1.0, 0.0, 1.0]))[0])


def test_axes_angle_is_sign_free_and_clipped():
    from ParaspinalFatLib.geometry import axes_angle_deg

    t = np.radians(25.0)
    n = np.array([0.0, np.sin(t), np.cos(t)])
    assert float(axes_angle_deg(n, [0.0, 0.0, 1.0])) == pytest.approx(25.0, abs=1e-12)
    assert float(axes_angle_deg(-n, [0.0, 0.0, 1.0])) == pytest.approx(25.0, abs=1e-12)
    np.testing.assert_allclose(axes_angle_deg(np.array([[0, 0, 1.0], [1.0, 0, 0]]), [0, 0, 1.0]), [0.0, 90.0])
    assert float(axes_angle_deg([0, 0, 1 + 1e-15], [0, 0, 1.0])) == 0.0  # rounding above 1 is clipped


def test_plane_normal_is_a_fresh_unit_cross_product_on_every_call():
    # computed once per geometry and handed out as copies: a caller that flips its normal in place
    # must not change what the next caller gets
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    g = Geometry((4, 5, 6), (0.7, 0.8, 3.0), (0.0, 0.0, 0.0), tuple(q.ravel()))
    for axis in range(3):
        a, b = [x for x in range(3) if x != axis]
        expected = np.cross(q[:, a], q[:, b])
        expected /= np.linalg.norm(expected)
        expected *= np.sign(expected @ q[:, axis])
        first = g.plane_normal(axis)
        assert np.allclose(first, expected, atol=1e-15) and abs(first @ q[:, axis]) > 0
        first *= -1.0
        assert np.allclose(g.plane_normal(axis), expected, atol=1e-15)

"""Trabecular bone attenuation: closed-form phantoms and the TotalSegmentator example CT.

Phantom vertebra (mm, LPS): a box "body" |x| <= 20, |y| <= 15, |z| <= 15 and a
posterior "arch": a thin pedicle bar (|x| <= 2, 15 < y < 22, 12 <= z <= 15, cranial
only) carrying a thick posterior block (|x| <= 7, 22 <= y <= 36, |z| <= 15) whose
interior survives the erosion, so only the largest-component rule can drop it.
Image: cortical shell of the body (depth <= 2 mm) 900 HU, trabecular interior 200 HU,
arch 450 HU, background -50 HU.

Truth: the depth of a body voxel is the distance from its centre to the nearest voxel
centre outside the body.  For a box of voxel centres that is, per axis, the distance to
the first lattice plane beyond the box, the minimum over the six faces -- computed here
from the voxel-centre coordinates, never with a distance transform.  (The pedicle only
fills outside voxels at 12 <= z <= 15, beyond every slab used here, so it changes no
depth of a voxel in the slab.)  Boundaries are inclusive with the module's 1e-6 mm
tolerance.
"""
from __future__ import annotations

import warnings
from collections import deque

import numpy as np
import pytest

from ParaspinalFatLib.errors import InputError, ParaspinalFatWarning
from ParaspinalFatLib.geometry import Geometry
from ParaspinalFatLib.measurement.bone import (
    BONE_COLUMNS, NO_CALIBRATION_NOTE, bone_table, parse_calibration, trabecular_core,
)
from ParaspinalFatLib.segmentation import Segment, Segmentation

TOL = 1e-6
SHELL, INTERIOR, ARCH, BACKGROUND = 900.0, 200.0, 450.0, -50.0
IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


class Phantom:
    """One vertebra phantom on an axis-aligned grid (arrays [k, j, i])."""

    def __init__(self, spacing=(1.0, 1.0, 1.0), lo=(-25.0, -20.0, -20.0), hi=(25.0, 40.0, 20.0),
                 body_centre=(0.0, 0.0, 0.0), arch=True):
        n = [int(np.floor((h - l) / s + 1e-9)) + 1 for l, h, s in zip(lo, hi, spacing)]
        self.geometry = Geometry(size=tuple(n), spacing=tuple(spacing), origin=tuple(lo), direction=IDENTITY)
        self.x = (lo[0] + np.arange(n[0]) * spacing[0])[None, None, :]
        self.y = (lo[1] + np.arange(n[1]) * spacing[1])[None, :, None]
        self.z = (lo[2] + np.arange(n[2]) * spacing[2])[:, None, None]
        self.spacing = spacing
        cx, cy, cz = body_centre
        self.centre = np.array(body_centre, dtype=float)
        x, y, z = self.x - cx, self.y - cy, self.z - cz
        self.body = (np.abs(x) <= 20 + 1e-9) & (np.abs(y) <= 15 + 1e-9) & (np.abs(z) <= 15 + 1e-9)
        shape = self.body.shape
        if arch:
            pedicle = (np.abs(x) <= 2) & (y > 15) & (y < 22) & (z >= 12) & (z <= 15)
            self.block = (np.abs(x) <= 7) & (y >= 22) & (y <= 36) & (np.abs(z) <= 15)
            self.arch = np.broadcast_to(pedicle | self.block, shape)
        else:
            self.block = np.zeros(shape, bool)
            self.arch = np.zeros(shape, bool)
        self.mask = self.body | self.arch  # novm (numpy boolean or, not a type union)
        self.depth = self.box_depth(self.body)
        self.image = np.full(shape, BACKGROUND)
        self.image[self.arch] = ARCH
        self.image[self.body] = np.where(self.depth[self.body] <= 2.0 + TOL, SHELL, INTERIOR)

    def coords(self):
        shape = self.body.shape
        return (np.broadcast_to(self.x, shape), np.broadcast_to(self.y, shape), np.broadcast_to(self.z, shape))

    def box_depth(self, box):
        """Distance (mm) from each voxel centre of an axis-aligned box to the nearest centre outside it."""
        depth = np.full(box.shape, np.inf)
        for c, s in zip(self.coords(), self.spacing):
            inside = c[box]
            lo, hi = inside.min(), inside.max()
            depth = np.minimum(depth, np.minimum(c - (lo - s), (hi + s) - c))
        return np.where(box, depth, 0.0)

    def slab(self, slab_mm, axis=(0.0, 0.0, 1.0), centre=None):
        a = np.asarray(axis, float) / np.linalg.norm(axis)
        c = self.centre if centre is None else np.asarray(centre, float)
        x, y, z = self.coords()
        d = (x - c[0]) * a[0] + (y - c[1]) * a[1] + (z - c[2]) * a[2]
        return np.abs(d) <= slab_mm / 2 + TOL

    def truth(self, erosion, slab_mm=10.0, axis=(0.0, 0.0, 1.0)):
        core = self.body & (self.depth >= erosion - TOL)
        return core if slab_mm is None else core & self.slab(slab_mm, axis)

    def segmentation(self, labels=None):
        labels = self.mask.astype(np.uint8) if labels is None else labels
        return Segmentation(labels, self.geometry, [Segment("vertebrae_L1", 0, 1)], source="phantom")

    def table(self, erosion=5.0, slab_mm=10.0, axis=None, image=None, calibration=None, unit="HU", centre=None):
        seg = self.segmentation()
        c = self.centre if centre is None else centre
        return bone_table(self.image if image is None else image, self.geometry, seg,
                          {"L1": (seg.segments[0], c, axis)}, subject="ph", unit=unit, erosion_mm=erosion,
                          slab_mm=slab_mm, calibration=calibration)


# --------------------------------------------------------------------------- the core
@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.8, 0.6, 1.5), (1.3, 0.7, 0.9)])
@pytest.mark.parametrize("erosion", [3.0, 4.0, 5.0])
def test_core_is_the_deep_body_in_the_slab(spacing, erosion):
    ph = Phantom(spacing=spacing, lo=(-25.3, -20.1, -20.2), hi=(25.0, 40.0, 20.0))
    truth = ph.truth(erosion, 10.0)
    # the arch block keeps deep voxels in the slab: only the largest-component rule can drop them
    block_deep = ph.block & (ph.box_depth(ph.block) >= erosion - TOL) & ph.slab(10.0)
    assert 0 < block_deep.sum() < truth.sum() / 2
    core = trabecular_core(ph.mask, ph.geometry, ph.centre, erosion_mm=erosion, slab_mm=10.0)
    assert core.dtype == bool and core.shape == ph.mask.shape
    np.testing.assert_array_equal(core, truth)
    row = ph.table(erosion=erosion).iloc[0]
    assert row["n_voxels"] == truth.sum()
    assert row["volume_ml"] == pytest.approx(truth.sum() * np.prod(spacing) / 1000.0, rel=1e-12)
    # only trabecular interior: shell (depth <= 2) and arch are excluded
    assert row["mean"] == INTERIOR and row["median"] == INTERIOR and row["sd"] == 0.0
    assert row["p05"] == INTERIOR and row["p95"] == INTERIOR
    assert row["warnings"] == ""


def test_whole_core_without_slab_and_zero_erosion():
    ph = Phantom()
    # slab None: every body voxel >= 5 mm deep (with 1 mm voxels and erosion 5 the pedicle, at z >= 12,
    # changes no depth >= 5: those voxels are <= 4 mm below the top face)
    core = trabecular_core(ph.mask, ph.geometry, None, erosion_mm=5.0, slab_mm=None)
    np.testing.assert_array_equal(core, ph.truth(5.0, None))
    assert core.sum() == (41 - 8) * (31 - 8) * (31 - 8)
    # erosion 0 and no slab: the whole (connected) mask
    np.testing.assert_array_equal(trabecular_core(ph.mask, ph.geometry, None, erosion_mm=0, slab_mm=None), ph.mask)
    row = ph.table(slab_mm=None).iloc[0]
    assert np.isnan(row["slab_mm"]) and row["n_voxels"] == core.sum()


def test_hand_count_on_unit_grid():
    ph = Phantom()
    # erosion 5: x in [-16, 16] (33), y in [-11, 11] (23), slab |z| <= 5 (11 slices)
    assert trabecular_core(ph.mask, ph.geometry, (0, 0, 0)).sum() == 33 * 23 * 11
    # the slab is centred on the given point: 0.5 mm up -> z in [-4, 5] (10 slices)
    assert trabecular_core(ph.mask, ph.geometry, (3.0, 9.0, 0.5)).sum() == 33 * 23 * 10


@pytest.mark.parametrize("tilt_deg", [20.0, -12.0])
def test_slab_along_an_oblique_spine_axis(tilt_deg):
    ph = Phantom(spacing=(0.8, 0.6, 1.5), lo=(-25.3, -20.1, -20.2))
    t = np.radians(tilt_deg)
    axis = (0.0, np.sin(t), np.cos(t))
    truth = ph.truth(4.0, 10.0, axis)
    assert not np.array_equal(truth, ph.truth(4.0, 10.0))  # the tilt matters
    core = trabecular_core(ph.mask, ph.geometry, ph.centre, [3 * v for v in axis], erosion_mm=4.0, slab_mm=10.0)
    np.testing.assert_array_equal(core, truth)
    # the axis sign does not matter
    np.testing.assert_array_equal(
        trabecular_core(ph.mask, ph.geometry, ph.centre, [-v for v in axis], erosion_mm=4.0, slab_mm=10.0), truth)


def test_gradient_image_mean_and_percentiles():
    ph = Phantom()
    x, y, z = ph.coords()
    image = 100.0 + 2.0 * x - 0.5 * y + 3.0 * z
    row = ph.table(image=image).iloc[0]
    # the core is symmetric about the body centre (0, 0, 0): mean = 100 exactly
    assert row["mean"] == pytest.approx(100.0, abs=1e-9)
    values = image[ph.truth(5.0, 10.0)]
    assert row["median"] == pytest.approx(np.median(values), abs=1e-9)
    assert row["p05"] == pytest.approx(np.percentile(values, 5), abs=1e-9)
    assert row["p95"] == pytest.approx(np.percentile(values, 95), abs=1e-9)
    assert row["sd"] == pytest.approx(np.std(values, ddof=1), rel=1e-12)


def test_gradient_image_anisotropic_off_centre():
    ph = Phantom(spacing=(0.8, 0.6, 1.5), lo=(-25.3, -20.1, -20.2))
    x, y, z = ph.coords()
    image = 100.0 + 2.0 * x - 0.5 * y + 3.0 * z
    truth = ph.truth(5.0, 10.0)
    row = ph.table(image=image).iloc[0]
    expected = 100.0 + 2.0 * x[truth].mean() - 0.5 * y[truth].mean() + 3.0 * z[truth].mean()
    assert row["mean"] == pytest.approx(expected, abs=1e-9)
    assert row["n_voxels"] == truth.sum()


def test_other_grid_orientations_give_the_same_core():
    ph = Phantom(spacing=(0.8, 0.6, 1.5), lo=(-25.3, -20.1, -20.2))
    expected = ph.truth(5.0, 10.0).sum()
    # the same physical phantom stored sagittally: i along y, j along z, k along x
    g = ph.geometry
    perm = Geometry(size=(g.size[1], g.size[2], g.size[0]), spacing=(g.spacing[1], g.spacing[2], g.spacing[0]),
                    origin=g.origin, direction=(0, 0, 1, 1, 0, 0, 0, 1, 0))
    labels = ph.mask.astype(np.uint8).transpose(2, 0, 1)
    image = ph.image.transpose(2, 0, 1)
    # spot check of the permutation: one voxel maps to the same LPS point
    k, j, i = 7, 11, 13
    assert np.allclose(g.index_to_physical([i, j, k]), perm.index_to_physical([j, k, i]))
    assert labels[i, k, j] == ph.mask[k, j, i]
    seg = Segmentation(labels, perm, [Segment("vertebrae_L1", 0, 1)])
    # default axis: the normal of the most axial slice planes (+z here)
    row = bone_table(image, perm, seg, {"L1": (seg.segments[0], ph.centre, None)}, subject="s", unit="HU").iloc[0]
    assert row["n_voxels"] == expected and row["mean"] == INTERIOR and row["sd"] == 0.0
    # RAS-stored CT (x and y flipped): voxel (i, j, k) at (-x, -y, z)
    flip = Geometry(size=g.size, spacing=g.spacing, origin=(-g.origin[0], -g.origin[1], g.origin[2]),
                    direction=(-1, 0, 0, 0, -1, 0, 0, 0, 1))
    seg = Segmentation(ph.mask.astype(np.uint8), flip, [Segment("vertebrae_L1", 0, 1)])
    centre = ph.centre * [-1, -1, 1]
    row = bone_table(ph.image, flip, seg, {"L1": (seg.segments[0], centre, None)}, subject="s", unit="HU").iloc[0]
    assert row["n_voxels"] == expected and row["mean"] == INTERIOR


def test_elliptic_cylinder_body_bounds():
    # body: elliptic cylinder (semi-axes 18 x 13 mm, |z| <= 15) on 0.7 mm voxels; a voxel with centre
    # at least e inside the ellipse (continuous distance) is core; none farther out than e - s*sqrt(2)
    # in the plane can be (a voxel centre outside the ellipse lies within s*sqrt(2)/2 of any point)
    s = 0.7
    n = (61, 51, 51)
    geom = Geometry(size=n, spacing=(s, s, s), origin=(-21.0, -17.5, -17.5), direction=IDENTITY)
    x = (-21.0 + np.arange(n[0]) * s)[None, None, :]
    y = (-17.5 + np.arange(n[1]) * s)[None, :, None]
    z = (-17.5 + np.arange(n[2]) * s)[:, None, None]
    a, b = 18.0, 13.0
    body = ((x / a) ** 2 + (y / b) ** 2 <= 1.0) & (np.abs(z) <= 15.0)
    # distance to the ellipse (inside), by dense sampling of its boundary
    phi = np.linspace(0, 2 * np.pi, 20000, endpoint=False)
    ex, ey = a * np.cos(phi), b * np.sin(phi)
    k0 = np.abs(z[:, 0, 0]).argmin()
    jj, ii = np.nonzero(body[k0])
    px, py = x[0, 0, ii], y[0, jj, 0]
    dist = np.empty(px.size)
    for start in range(0, px.size, 500):
        sl = slice(start, start + 500)
        dist[sl] = np.sqrt((px[sl, None] - ex) ** 2 + (py[sl, None] - ey) ** 2).min(axis=1)
    core = trabecular_core(body, geom, (0.0, 0.0, 0.0), erosion_mm=5.0, slab_mm=10.0)
    in_core = core[k0, jj, ii]
    assert in_core[dist >= 5.0 + 1e-3].all()
    assert not in_core[dist < 5.0 - s * np.sqrt(2) - 1e-3].any()
    # the slab: |z| <= 5 only
    zs = z[:, 0, 0][core.any(axis=(1, 2))]
    assert zs.min() >= -5.0 - TOL and zs.max() <= 5.0 + TOL and zs.max() > 4.0


# --------------------------------------------------------------------------- the table
def test_columns_order_and_no_calibration_note():
    ph = Phantom(arch=False, lo=(-25.0, -20.0, -60.0), hi=(25.0, 20.0, 60.0), body_centre=(0, 0, 30))
    labels = ph.mask.astype(np.uint8)
    ph2 = Phantom(arch=False, lo=(-25.0, -20.0, -60.0), hi=(25.0, 20.0, 60.0), body_centre=(0, 0, -20))
    labels[ph2.mask] = 2
    image = np.where(ph.mask, np.where(ph.depth <= 2, SHELL, 180.0), BACKGROUND)
    image = np.where(ph2.mask, np.where(ph2.depth <= 2, SHELL, 220.0), image)
    seg = Segmentation(labels, ph.geometry, [Segment("vertebrae_L2", 0, 2), Segment("vertebrae_L1", 0, 1)])
    table = bone_table(image, ph.geometry, seg,
                       {"vertebrae_L2": (seg.segment("vertebrae_L2"), ph2.centre, (0, 0, 1)),
                        "L1": ("vertebrae_L1", ph.centre, None)}, subject="s7", unit="HU")
    assert list(table.columns) == BONE_COLUMNS
    assert table["level"].tolist() == ["L1", "L2"]  # cranial -> caudal
    assert table["segment"].tolist() == ["vertebrae_L1", "vertebrae_L2"]
    assert table["mean"].tolist() == [180.0, 220.0]
    assert (table["subject"] == "s7").all() and (table["unit"] == "HU").all()
    assert (table["erosion_mm"] == 5.0).all() and (table["slab_mm"] == 10.0).all()
    assert table["n_voxels"].tolist() == [33 * 23 * 11] * 2
    assert table["vbmd_mg_cm3"].isna().all() and table["calibration_slope"].isna().all()
    assert table["calibration_intercept"].isna().all() and (table["vbmd_category"] == "").all()
    assert (table["note"] == NO_CALIBRATION_NOTE).all()
    assert NO_CALIBRATION_NOTE == "HU is not vBMD (no --bmd-calibration)"


@pytest.mark.parametrize("interior, expected", [
    (240.0, "osteopenia"),   # 120 exactly: osteopenia (80-120 inclusive)
    (240.5, "normal"),       # 120.25
    (160.0, "osteopenia"),   # 80 exactly
    (159.5, "osteoporosis"),  # 79.75
])
def test_calibration_and_category_boundaries(interior, expected):
    ph = Phantom()
    image = np.where(ph.image == INTERIOR, interior, ph.image)
    row = ph.table(image=image, calibration=(0.5, 0.0)).iloc[0]
    assert row["mean"] == interior
    assert row["vbmd_mg_cm3"] == interior * 0.5
    assert row["vbmd_category"] == expected
    assert (row["calibration_slope"], row["calibration_intercept"]) == (0.5, 0.0)
    assert "vBMD" in row["note"] and row["note"] != NO_CALIBRATION_NOTE


def test_calibration_text_and_intercept():
    ph = Phantom()
    row = ph.table(calibration=" 0.75 , -30 ").iloc[0]
    assert row["vbmd_mg_cm3"] == pytest.approx(0.75 * 200 - 30)  # 120 -> osteopenia
    assert row["vbmd_category"] == "osteopenia"
    row = ph.table(calibration="1,-130").iloc[0]
    assert row["vbmd_mg_cm3"] == 70.0 and row["vbmd_category"] == "osteoporosis"
    row = ph.table(calibration=(1, 10), unit="hu").iloc[0]
    assert row["vbmd_mg_cm3"] == 210.0 and row["vbmd_category"] == "normal"


def test_calibration_refused_for_other_units():
    ph = Phantom()
    with pytest.raises(InputError, match=r"bmd_calibration \(--bmd-calibration\).*'%'"):
        ph.table(calibration=(1.0, 0.0), unit="%")
    row = ph.table(unit="a.u.").iloc[0]  # without calibration any unit is measured
    assert row["unit"] == "a.u." and row["mean"] == INTERIOR


@pytest.mark.parametrize("text, expected", [
    ("0.8,-2.5", (0.8, -2.5)), (" 1 , 0 ", (1.0, 0.0)), ((2, 3), (2.0, 3.0)), ([0.5, -1.0], (0.5, -1.0)),
    ("1e-1,5", (0.1, 5.0)),
])
def test_parse_calibration(text, expected):
    assert parse_calibration(text) == expected


@pytest.mark.parametrize("bad", [
    "0.8", "0.8;1", "a,b", "1,2,3", "0,1", "-0.5,3", "nan,1", "1,inf", "inf,0", (1.0,), (1, 2, 3),
    ("1", "2"), (True, 1), 5, None, (float("nan"), 1.0), "",
])
def test_parse_calibration_refusals(bad):
    with pytest.raises(InputError, match=r"bmd_calibration \(--bmd-calibration\)"):
        parse_calibration(bad)


def test_empty_core_erosion_too_large():
    ph = Phantom()
    with pytest.warns(ParaspinalFatWarning, match="vertebrae_L1"):
        row = ph.table(erosion=17.0).iloc[0]
    for c in ("mean", "median", "sd", "p05", "p95"):
        assert np.isnan(row[c]), c
    assert row["n_voxels"] == 0 and row["volume_ml"] == 0.0
    assert "17 mm" in row["warnings"] and "deepest 16.0 mm" in row["warnings"]
    assert "smaller --bone-erosion-mm" in row["warnings"]
    # 16 mm is the deepest point: the y = 0, z = 0 row of the body, x in [-5, 5], in the slab
    assert trabecular_core(ph.mask, ph.geometry, ph.centre, erosion_mm=16.0).sum() == 11


def test_empty_core_with_calibration_has_no_vbmd():
    ph = Phantom()
    with pytest.warns(ParaspinalFatWarning):
        row = ph.table(erosion=30.0, calibration=(1.0, 0.0)).iloc[0]
    assert np.isnan(row["vbmd_mg_cm3"]) and row["vbmd_category"] == ""


def test_slab_that_misses_the_body():
    ph = Phantom()
    with pytest.warns(ParaspinalFatWarning):
        row = ph.table(centre=(0.0, 0.0, 60.0)).iloc[0]
    assert np.isnan(row["mean"]) and row["n_voxels"] == 0
    assert "10 mm slab" in row["warnings"] and "mid-body point" in row["warnings"]


def test_vertebra_without_voxels():
    ph = Phantom()
    seg = Segmentation(ph.mask.astype(np.uint8), ph.geometry,
                       [Segment("vertebrae_L1", 0, 1), Segment("vertebrae_L2", 0, 2)])
    with pytest.warns(ParaspinalFatWarning, match="vertebrae_L2"):
        table = bone_table(ph.image, ph.geometry, seg,
                           {"L1": (seg.segments[0], ph.centre, None), "L2": (seg.segments[1], None, None)},
                           subject="s", unit="HU")
    assert table["level"].tolist() == ["L1", "L2"]
    l2 = table.iloc[1]
    assert np.isnan(l2["mean"]) and l2["n_voxels"] == 0 and "no voxel in the image" in l2["warnings"]
    assert table.iloc[0]["mean"] == INTERIOR


def test_vertebra_cut_by_the_field_of_view():
    ph = Phantom()
    # keep x <= -15 only: 6 mm of body in the image, eroded from the cut edge too
    keep = int(np.flatnonzero(ph.x[0, 0] <= -15.0 + 1e-9)[-1]) + 1
    g = ph.geometry
    cut = Geometry(size=(keep, g.size[1], g.size[2]), spacing=g.spacing, origin=g.origin, direction=g.direction)
    seg = Segmentation(np.ascontiguousarray(ph.mask[:, :, :keep]).astype(np.uint8), cut,
                       [Segment("vertebrae_L1", 0, 1)])
    with pytest.warns(ParaspinalFatWarning):
        row = bone_table(ph.image[:, :, :keep], cut, seg, {"L1": (seg.segments[0], ph.centre, None)},
                         subject="s", unit="HU").iloc[0]
    assert np.isnan(row["mean"])
    assert "touches the edge of the image" in row["warnings"] and "field of view" in row["warnings"]
    assert "smaller --bone-erosion-mm" in row["warnings"]


def test_edge_contact_is_reported_even_when_measured():
    ph = Phantom()
    # cut at x = 10: the core is measured in what is left and the row says the mask touches the edge
    keep = int(np.flatnonzero(ph.x[0, 0] <= 10.0 + 1e-9)[-1]) + 1
    g = ph.geometry
    cut = Geometry(size=(keep, g.size[1], g.size[2]), spacing=g.spacing, origin=g.origin, direction=g.direction)
    seg = Segmentation(np.ascontiguousarray(ph.mask[:, :, :keep]).astype(np.uint8), cut,
                       [Segment("vertebrae_L1", 0, 1)])
    row = bone_table(ph.image[:, :, :keep], cut, seg, {"L1": (seg.segments[0], ph.centre, None)},
                     subject="s", unit="HU").iloc[0]
    # x in [-16, 10 - 5 + ...]: the image edge at x = 10 is "outside" from x = 11 -> x <= 6
    assert row["n_voxels"] == (16 + 6 + 1) * 23 * 11
    assert row["mean"] == INTERIOR
    assert "touches the edge of the image" in row["warnings"]


def test_nan_voxels_are_left_out_and_reported():
    ph = Phantom()
    image = ph.image.copy()
    image[20, 20, 25] = np.nan  # z = 0, y = 0, x = 0: inside the core
    image[21, 20, 25] = 1000.0
    row = ph.table(image=image).iloc[0]
    values = image[ph.truth(5.0, 10.0)]
    values = values[np.isfinite(values)]
    assert row["n_voxels"] == 33 * 23 * 11
    assert row["mean"] == pytest.approx(values.mean(), rel=1e-12)
    assert row["sd"] == pytest.approx(values.std(ddof=1), rel=1e-10)
    assert "1 of 8349 core voxels" in row["warnings"] and "NaN/inf" in row["warnings"]


def test_two_bodies_in_one_label_are_reported():
    grid = dict(arch=False, lo=(-25.0, -20.0, -20.0), hi=(25.0, 20.0, 60.0))
    low, high = Phantom(**grid), Phantom(body_centre=(0, 0, 33), **grid)
    # two equally large bodies (z in [-15, 15] and [18, 48]) in one label; a 60 mm slab reaches both
    labels = (low.mask | high.mask).astype(np.uint8)  # novm (numpy boolean or)
    seg = Segmentation(labels, low.geometry, [Segment("vertebrae_L1", 0, 1)])
    row = bone_table(np.zeros(labels.shape), low.geometry, seg, {"L1": (seg.segments[0], (0, 0, 16.5), None)},
                     subject="s", unit="HU", slab_mm=60.0).iloc[0]
    assert "falls apart into pieces" in row["warnings"]
    assert row["n_voxels"] == 33 * 23 * 23  # one body's core only


# --------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "5", True, None])
def test_bad_erosion(bad):
    ph = Phantom(arch=False)
    with pytest.raises(InputError, match=r"bone_erosion_mm \(--bone-erosion-mm\)"):
        ph.table(erosion=bad)
    with pytest.raises(InputError, match=r"bone_erosion_mm \(--bone-erosion-mm\)"):
        trabecular_core(ph.mask, ph.geometry, ph.centre, erosion_mm=bad)


@pytest.mark.parametrize("bad", [0.0, -10.0, float("nan"), float("inf"), "10", False])
def test_bad_slab(bad):
    ph = Phantom(arch=False)
    with pytest.raises(InputError, match=r"bone_slab_mm \(--bone-slab-mm\)"):
        ph.table(slab_mm=bad)
    with pytest.raises(InputError, match=r"bone_slab_mm \(--bone-slab-mm\)"):
        trabecular_core(ph.mask, ph.geometry, ph.centre, slab_mm=bad)


def test_other_refusals():
    ph = Phantom(arch=False)
    seg = ph.segmentation()
    s = seg.segments[0]
    with pytest.raises(InputError, match="not a vertebra level"):
        bone_table(ph.image, ph.geometry, seg, {"L4/5": (s, ph.centre, None)}, subject="s", unit="HU")
    with pytest.raises(InputError, match="both vertebra L1"):
        bone_table(ph.image, ph.geometry, seg, {"L1": (s, ph.centre, None), "vertebrae_L1": (s, ph.centre, None)},
                   subject="s", unit="HU")
    with pytest.raises(InputError, match="mid-body point"):
        bone_table(ph.image, ph.geometry, seg, {"L1": (s, (np.nan, 0, 0), None)}, subject="s", unit="HU")
    with pytest.raises(InputError, match="spine axis"):
        bone_table(ph.image, ph.geometry, seg, {"L1": (s, ph.centre, (0, 0, 0))}, subject="s", unit="HU")
    with pytest.raises(InputError, match="image"):
        bone_table(ph.image[:-1], ph.geometry, seg, {"L1": (s, ph.centre, None)}, subject="s", unit="HU")
    other = Geometry(ph.geometry.size, ph.geometry.spacing, (0.0, 0.0, 0.0), IDENTITY)
    with pytest.raises(InputError, match="resample"):
        bone_table(ph.image, other, seg, {"L1": (s, ph.centre, None)}, subject="s", unit="HU")
    with pytest.raises(InputError, match="shape"):
        trabecular_core(ph.mask[:-1], ph.geometry, ph.centre)
    # the centre is not needed without a slab
    assert trabecular_core(ph.mask, ph.geometry, None, slab_mm=None).any()


# --------------------------------------------------------------------------- real CT
def _largest_component_26(points):
    """Largest 26-connected set of integer (k, j, i) points, by breadth-first search."""
    left = set(map(tuple, points))
    best = set()
    steps = [(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1) if (a, b, c) != (0, 0, 0)]
    while left:
        seed = left.pop()
        comp, queue = {seed}, deque([seed])
        while queue:
            p = queue.popleft()
            for d in steps:
                q = (p[0] + d[0], p[1] + d[1], p[2] + d[2])
                if q in left:
                    left.remove(q)
                    comp.add(q)
                    queue.append(q)
        if len(comp) > len(best):
            best = comp
    return best


@pytest.fixture(scope="module")
def example_ct(realdata):
    import SimpleITK as sitk

    from ParaspinalFatLib.anatomy.landmarks import segment_centroids, spine_axis, vertebra_centroids
    from ParaspinalFatLib.io.segmentation_files import read_segmentation

    d = realdata / "totalsegmentator"
    img = sitk.ReadImage(str(d / "example_ct.nii.gz"))
    # example_seg_fast_force_split.nii.gz is the segmentation of example_ct.nii.gz (same grid);
    # example_seg.nii.gz belongs to example_ct_sm.nii.gz (30 slices)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seg = read_segmentation(str(d / "example_seg_fast_force_split.nii.gz"), convention="totalsegmentator")
        axis = spine_axis(vertebra_centroids(seg))
    centroids = segment_centroids(seg, ["vertebrae_L1", "vertebrae_L2"])
    return {"image": sitk.GetArrayFromImage(img).astype(np.float64), "geometry": Geometry.from_sitk(img),
            "seg": seg, "axis": axis, "centroids": centroids}


def test_real_ct_l1_l2_trabecular_core(example_ct):
    ct = example_ct
    seg, geom, image = ct["seg"], ct["geometry"], ct["image"]
    assert seg.geometry.same_grid(geom)
    vertebrae = {lv: (seg.segment(f"vertebrae_{lv}"), ct["centroids"][f"vertebrae_{lv}"][0], ct["axis"])
                 for lv in ("L2", "L1")}
    table = bone_table(image, geom, seg, vertebrae, subject="example", unit="HU")
    assert table["level"].tolist() == ["L1", "L2"]
    # independent oracle: nearest outside voxel centre by k-d tree in LPS mm, slab by projection, BFS components
    from scipy.spatial import cKDTree

    for _, row in table.iterrows():
        mask = seg.mask(row["segment"])
        centre = ct["centroids"][row["segment"]][0]
        k, j, i = np.nonzero(mask)
        lo = np.array([k.min(), j.min(), i.min()]) - 1
        hi = np.array([k.max(), j.max(), i.max()]) + 2
        kk, jj, ii = np.meshgrid(*(np.arange(a, b) for a, b in zip(lo, hi)), indexing="ij")
        inside = np.zeros(kk.shape, bool)
        inside[k - lo[0], j - lo[1], i - lo[2]] = True
        pts = geom.index_to_physical(np.stack([ii, jj, kk], axis=-1).astype(float))
        depth, _ = cKDTree(pts[~inside]).query(pts[inside])
        along = (pts[inside] - centre) @ (ct["axis"] / np.linalg.norm(ct["axis"]))
        keep = (depth >= 5.0 - TOL) & (np.abs(along) <= 5.0 + TOL)
        # pts[inside] and np.nonzero(mask) both run in C order over the same voxels
        cand = np.stack([k, j, i], axis=1)[keep]
        truth = _largest_component_26(cand)
        core = trabecular_core(mask, geom, centre, ct["axis"])
        assert set(map(tuple, np.argwhere(core))) == truth
        assert not (core & ~mask).any()  # inside the mask
        values = image[core]
        assert row["n_voxels"] == len(truth) == values.size
        assert row["mean"] == pytest.approx(values.mean(), rel=1e-12)
        assert row["p95"] == pytest.approx(np.percentile(values, 95), rel=1e-12)
        # plausible trabecular bone (this spine's L1 core is ~100 HU: osteopenic range, so the band
        # reaches below 100) and lower than the whole bone, whose dense cortex the core excludes
        assert 50.0 <= row["mean"] <= 350.0
        assert row["mean"] < image[mask].mean()
        assert row["p95"] < np.percentile(image[mask], 95)
        assert row["warnings"] == ""


def test_real_ct_truncated_vertebra_is_flagged(realdata):
    import SimpleITK as sitk

    from ParaspinalFatLib.anatomy.landmarks import segment_centroids
    from ParaspinalFatLib.io.segmentation_files import read_segmentation

    d = realdata / "totalsegmentator"
    img = sitk.ReadImage(str(d / "example_ct_sm.nii.gz"))
    seg = read_segmentation(str(d / "example_seg.nii.gz"), convention="totalsegmentator")
    cents = segment_centroids(seg, ["vertebrae_L1", "vertebrae_L2"])
    # L2 is cut by the lowest slice of this 30-slice crop; L1 is whole
    assert seg.mask("vertebrae_L2")[0].any() and not seg.mask("vertebrae_L1")[0].any()
    table = bone_table(sitk.GetArrayFromImage(img), Geometry.from_sitk(img), seg,
                       {lv: (seg.segment(f"vertebrae_{lv}"), cents[f"vertebrae_{lv}"][0], None)
                        for lv in ("L1", "L2")}, subject="sm", unit="HU")
    l1, l2 = table.iloc[0], table.iloc[1]
    assert l1["warnings"] == "" and "touches the edge of the image" in l2["warnings"]
    assert 50.0 <= l1["mean"] <= 350.0

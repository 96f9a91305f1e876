"""Issue #10 in the pipeline: vertebral-body levels, disc-parallel planes, typed level
positions, SMI and trabecular bone through ``measure``; checked against independent
computations on phantoms and on the real TotalSegmentator CT."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from ParaspinalFatLib import measure, measure_case
from ParaspinalFatLib.errors import InputError
from ParaspinalFatLib.geometry import Geometry
from ParaspinalFatLib.phantom import make_phantom
from ParaspinalFatLib.segmentation import Segment, Segmentation


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# ----------------------------------------------------------------- vertebral-body levels
def test_vertebra_levels_are_measured_at_the_mid_body_slice_and_mix_with_discs():
    ph = make_phantom(mode="3d", crop_segmentation=False, spacing=(1.0, 1.1, 4.0))
    res = _quiet(measure, ph.image, ph.segmentation, levels=["L4", "L4/5", "L5"])
    table = res.levels
    assert sorted(set(table["level"])) == ["L4", "L4/5", "L5"]
    # independent truth: the phantom's box vertebra L4 spans slices centred on (26 + 18) / 2 = 22,
    # L5 on (18 + 10) / 2 = 14; the row's CSA is the mask's voxel count there x pixel area
    seg = ph.segmentation
    for level, k in (("L4", 22), ("L5", 14), ("L4/5", 18)):
        rows = table[table["level"] == level]
        assert len(rows) == 6
        assert (rows["slice_index"] == k).all()
        for _, row in rows.iterrows():
            assert row["csa_mm2"] == pytest.approx(seg.mask(row["segment"])[k].sum() * 1.1, rel=1e-12)
    assert set(table.loc[table["level"] == "L4", "level_source"]) == {"vertebra_masks"}
    # the landmarks table lists vertebrae with their kind
    marks = res.landmarks.set_index("level")
    assert marks.loc["L4", "kind"] == "vertebra" and marks.loc["L4/5", "kind"] == "disc"


def test_levels_all_means_every_disc_level_not_the_vertebrae():
    ph = make_phantom(mode="3d")
    table = _quiet(measure_case, ph.image, ph.segmentation, levels="all")
    assert sorted(set(table["level"])) == ["L3/4", "L4/5", "L5/S1"]


def test_image_plane_rows_record_the_image_normal_and_zero_tilt():
    ph = make_phantom(mode="3d", tilt_deg=12.0)
    table = _quiet(measure_case, ph.image, ph.segmentation)
    assert set(table["plane"]) == {"image"}
    expected = np.array([0.0, -np.sin(np.radians(12.0)), np.cos(np.radians(12.0))])  # grid rotated about x
    np.testing.assert_allclose(table[["plane_normal_lps_x", "plane_normal_lps_y", "plane_normal_lps_z"]].to_numpy(),
                               np.tile(expected, (len(table), 1)), atol=1e-12)
    assert (table["plane_tilt_deg"] == 0.0).all()


# ----------------------------------------------------------------- disc-parallel planes
def _tilted_case(tilt_deg: float, a: float = 14.0, b: float = 9.0):
    """A 1 mm grid with two elliptic-cylinder muscles along an axis tilted in the sagittal plane
    and two 'vertebra' slabs perpendicular to it, whose centroids give the axis."""
    n = (90, 90, 90)
    geom = Geometry(n, (1.0, 1.0, 1.0), (-44.5, -44.5, -44.5), tuple(np.eye(3).ravel()))
    k, j, i = np.meshgrid(*(np.arange(s) for s in n[::-1]), indexing="ij")
    p = np.stack([i - 44.5, j - 44.5, k - 44.5], axis=-1)
    t = np.radians(tilt_deg)
    axis = np.array([0.0, np.sin(t), np.cos(t)])  # tilted towards posterior (LPS +y)
    e1 = np.array([1.0, 0.0, 0.0])
    e2 = np.cross(axis, e1)
    along = p @ axis
    labels = np.zeros(n[::-1], np.uint8)
    segments = []
    for value, (name, x0) in enumerate((("multifidus_left", 20.0), ("multifidus_right", -20.0)), start=1):
        u = p @ e1 - x0
        v = p @ e2 - 15.0
        labels[((u / a) ** 2 + (v / b) ** 2 <= 1.0) & (np.abs(along) <= 40)] = value
        segments.append(Segment(name, 0, value, name))
    # vertebral bodies: slabs centred on the axis at +-16 mm along it, disc between them at 0
    for value, (name, c) in enumerate((("vertebrae_L4", 16.0), ("vertebrae_L5", -16.0)), start=3):
        radial = p - np.outer(along.ravel(), axis).reshape(p.shape)
        r = np.linalg.norm(radial - 0.0, axis=-1)
        labels[(np.abs(along - c) <= 12) & (r <= 12) & (labels == 0)] = value
        segments.append(Segment(name, 0, value, name))
    image = np.full(n[::-1], 40.0, np.float32)
    img = sitk.GetImageFromArray(image)
    geom.apply_to_sitk(img)
    return img, Segmentation(labels[None], geom, segments, source="tilted"), axis


@pytest.mark.parametrize("tilt", [0.0, 15.0, 30.0])
def test_disc_plane_csa_is_the_true_cross_section_and_image_plane_is_inflated(tilt):
    img, seg, axis = _tilted_case(tilt)
    image_rows = _quiet(measure_case, img, seg, map_kind="scalar", levels=["L4/5"])
    disc_rows = _quiet(measure_case, img, seg, map_kind="scalar", levels=["L4/5"], plane="disc")
    truth = np.pi * 14.0 * 9.0
    assert set(disc_rows["plane"]) == {"disc"}
    np.testing.assert_allclose(disc_rows["plane_tilt_deg"], tilt, atol=0.5)
    normals = disc_rows[["plane_normal_lps_x", "plane_normal_lps_y", "plane_normal_lps_z"]].to_numpy()
    assert np.degrees(np.arccos(np.clip(normals @ axis, -1, 1))).max() < 0.5
    np.testing.assert_allclose(disc_rows["csa_mm2"], truth, rtol=0.015)
    np.testing.assert_allclose(image_rows["csa_mm2"], truth / np.cos(np.radians(tilt)), rtol=0.03)
    # the constant map is read back exactly on the oblique plane
    np.testing.assert_allclose(disc_rows["mean"], 40.0, rtol=1e-6)


@pytest.mark.parametrize("tilt", [0.0, 20.0])
def test_disc_plane_fat_area_is_the_share_of_fat_voxels_not_of_interpolated_values(tilt):
    """Fat in voxel-sized specks (20 % of the voxels at PDFF 100, the rest 0): interpolating the map
    averages specks with lean neighbours below the 50 % threshold, so classifying interpolated values
    finds almost no fat (it did: fat share about 0.03). Each plane pixel is classified by its nearest
    voxel, so the fat share is that of the voxels the plane cuts: 0.2 within sampling error (about
    400 pixels: SD 0.02). The level point lies half-way between two slices at tilt 0 (a tie for the
    nearest voxel, broken the same way whatever the last bits of the grid)."""
    img, seg, _ = _tilted_case(tilt)
    rng = np.random.default_rng(7)
    pdff = np.where(rng.random(sitk.GetArrayViewFromImage(img).shape) < 0.2, 100.0, 0.0).astype(np.float32)
    speckled = sitk.GetImageFromArray(pdff)
    speckled.CopyInformation(img)
    rows = _quiet(measure_case, speckled, seg, map_kind="pdff", pdff_scale="0-100", levels=["L4/5"], plane="disc")
    assert len(rows) == 2
    np.testing.assert_allclose(rows["fat_area_ratio"], 0.2, atol=0.07)
    np.testing.assert_allclose(rows["fat_csa_mm2"] / rows["csa_mm2"], rows["fat_area_ratio"], rtol=1e-12)
    np.testing.assert_allclose(rows["fat_fraction_pct"], 20.0, atol=4.0)  # the mean of the interpolated map


def test_disc_plane_refuses_2d_rois_named_with_their_level():
    ph = make_phantom(mode="2d")
    with pytest.raises(InputError, match=r"--plane disc.*2-D ROIs.*--plane image"):
        measure_case(ph.image, ph.segmentation, plane="disc")


def test_plane_and_height_options_are_validated():
    ph = make_phantom(mode="3d")
    with pytest.raises(InputError, match=r"plane \(--plane\) must be one of image, disc"):
        measure_case(ph.image, ph.segmentation, plane="oblique")
    with pytest.raises(InputError, match=r"height_m \(--height-m\).*in cm\? give metres"):
        measure_case(ph.image, ph.segmentation, height_m=175)
    with pytest.raises(InputError, match=r"plane_pixel_mm \(--plane-pixel-mm\)"):
        measure_case(ph.image, ph.segmentation, plane_pixel_mm=0)
    with pytest.raises(InputError, match=r"slice_base \(--slice-base\)"):
        measure_case(ph.image, ph.segmentation, slice_base=2)
    with pytest.raises(InputError, match=r"bone_erosion_mm \(--bone-erosion-mm\)"):
        measure_case(ph.image, ph.segmentation, bone_erosion_mm=-1)
    # checked with the options, even where no vertebra mask would use it
    with pytest.raises(InputError, match=r"bmd_calibration \(--bmd-calibration\)"):
        measure_case(ph.image, ph.segmentation, bmd_calibration="1.2")


# ----------------------------------------------------------------- typed level positions
def test_level_slices_place_levels_without_any_mask():
    ph = make_phantom(mode="3d", crop_segmentation=False)
    seg = ph.segmentation
    muscles = seg.with_layers(seg.layers, seg.geometry)
    muscles.segments = [s for s in seg.segments if not s.name.startswith("vertebrae")]
    zero = _quiet(measure_case, ph.image, muscles, level_slices="L3/4=25,L4/5=17")
    one = _quiet(measure_case, ph.image, muscles, level_slices="L3/4=26,L4/5=18", slice_base=1)
    for table in (zero, one):
        assert set(table["level_source"]) == {"level_slices"}
        assert table.set_index(["segment", "level"])["slice_index"].to_dict() == {
            (name, lv): k for name in table["segment"].unique() for lv, k in (("L3/4", 25), ("L4/5", 17))}
        assert table["csa_mm2"].to_numpy() == pytest.approx(
            [muscles.mask(r.segment)[r.slice_index].sum() * 1.25 * 1.3 for r in table.itertuples()])


def test_typed_positions_win_over_masks_and_a_level_given_twice_is_refused():
    ph = make_phantom(mode="3d", crop_segmentation=False)
    table = _quiet(measure_case, ph.image, ph.segmentation, level_slices="L4/5=20", levels=["L4/5"])
    assert (table["slice_index"] == 20).all() and set(table["level_source"]) == {"level_slices"}
    z = float(ph.disc_points["L3/4"][2])
    with pytest.raises(InputError, match=r"L3/4 is given both"):
        measure_case(ph.image, ph.segmentation, level_slices="L3/4=26", level_z=f"L3/4={z}")


# ----------------------------------------------------------------- empty rows and the console
def test_per_slice_or_whole_roi_never_fail_on_a_segment_empty_at_a_level():
    ph = make_phantom(mode="3d", crop_segmentation=False)
    seg = ph.segmentation
    layers = seg.layers.copy()
    psoas = seg.segment("psoas_right")
    layers[0, 10][layers[0, 10] == psoas.label_value] = 0  # erase psoas on the L5/S1 slice
    seg2 = seg.with_layers(layers, seg.geometry)
    for option in ("per_slice", "whole_roi"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = measure(ph.image, seg2, **{option: True})
        row = res.levels.set_index(["segment", "level"]).loc[("psoas_right", "L5/S1")]
        assert row["n_voxels"] == 0 and np.isnan(row["mean"])
        assert any("psoas_right (L5/S1)" in str(w.message) for w in caught)


def test_cli_never_prints_a_raw_empty_dataframe(tmp_path, capsys):
    from ParaspinalFatLib.cli import main
    from ParaspinalFatLib.phantom import write_phantom

    ph = make_phantom(mode="3d")
    paths = write_phantom(ph, tmp_path, stem="c")
    status = main(["measure", "--image", str(paths["image"]), "--segmentation", str(paths["segmentation"]),
                   "--levels", "", "--per-slice", "--output", str(tmp_path / "out.csv")])
    out = capsys.readouterr().out
    assert status == 0
    assert "Empty DataFrame" not in out and "no per-level rows" in out
    assert (tmp_path / "out_slices.csv").is_file()


# ----------------------------------------------------------------- SMI through the pipeline
def test_height_adds_the_skeletal_muscle_index_at_l3():
    ph = make_phantom(mode="3d", crop_segmentation=False, spacing=(1.0, 1.1, 4.0))
    res = _quiet(measure, ph.image, ph.segmentation, levels=["L3", "L3/4"], height_m=1.6)
    smi = res.muscle_index.set_index("muscle")
    l3 = res.levels[res.levels["level"] == "L3"]
    for muscle, rows in l3.groupby("muscle"):
        total_cm2 = rows["csa_mm2"].sum() / 100.0
        assert smi.loc[muscle, "smi_cm2_m2"] == pytest.approx(total_cm2 / 1.6 ** 2, rel=1e-12)
    assert smi.loc["all muscles", "smi_cm2_m2"] == pytest.approx(l3["csa_mm2"].sum() / 100.0 / 2.56, rel=1e-12)
    wide = res.summary(wide=True)
    assert wide.loc[0, "all muscles L3 smi_cm2_m2"] == smi.loc["all muscles", "smi_cm2_m2"]
    assert wide.columns[-1] == "warnings"


# ----------------------------------------------------------------- the real CT
@pytest.fixture(scope="module")
def ct_case(realdata):
    d = realdata / "totalsegmentator"
    return d / "example_ct.nii.gz", d / "example_seg_fast_force_split.nii.gz"


def test_real_ct_mid_body_slices_agree_with_an_independent_centroid(ct_case):
    image, seg_path = ct_case
    res = _quiet(measure, image, seg_path, map_kind="ct", levels=["L1", "L2", "L3", "L4"], muscles=["autochthon"])
    labels = sitk.ReadImage(str(seg_path))
    arr = sitk.GetArrayFromImage(labels)
    ts_values = {"L1": 31, "L2": 30, "L3": 29, "L4": 28}  # TotalSegmentator v2 'total' label values
    img = sitk.ReadImage(str(image))
    for level, value in ts_values.items():
        kji = np.argwhere(arr == value).mean(axis=0)
        point = labels.TransformContinuousIndexToPhysicalPoint([float(x) for x in kji[::-1]])
        k = img.TransformPhysicalPointToContinuousIndex(point)[2]
        rows = res.levels[res.levels["level"] == level]
        assert len(rows) == 2
        assert (rows["slice_index"] == int(np.floor(k + 0.5))).all(), level


def test_real_ct_disc_plane_l5s1_autochthon_is_of_the_order_of_l45(ct_case):
    image, seg_path = ct_case
    kwargs = dict(map_kind="ct", levels=["L4/5", "L5/S1"], muscles=["autochthon"])
    img_t = _quiet(measure_case, image, seg_path, **kwargs).set_index(["segment", "level"])["csa_mm2"]
    disc_t = _quiet(measure_case, image, seg_path, plane="disc", **kwargs).set_index(["segment", "level"])
    for side in ("left", "right"):
        name = f"autochthon_{side}"
        # the image plane cuts behind the sacrum at L5/S1: under half the L4/5 area
        assert img_t[(name, "L5/S1")] < 0.5 * img_t[(name, "L4/5")]
        ratio = disc_t.loc[(name, "L5/S1"), "csa_mm2"] / disc_t.loc[(name, "L4/5"), "csa_mm2"]
        assert 0.7 < ratio < 1.3
    assert disc_t.loc[("autochthon_left", "L5/S1"), "plane_tilt_deg"] > 20.0


def test_real_ct_bone_table_at_l1_l2(ct_case):
    image, seg_path = ct_case
    res = _quiet(measure, image, seg_path, map_kind="ct", bmd_calibration=(1.0, 0.0))
    bone = res.bone.set_index("level")
    assert list(bone.index) == ["L1", "L2"]
    assert (bone["n_voxels"] > 100).all()
    assert ((bone["mean"] > 50) & (bone["mean"] < 350)).all()
    # identity calibration: vBMD equals the mean HU, categorised by ISCD cut-offs
    np.testing.assert_allclose(bone["vbmd_mg_cm3"], bone["mean"])
    expected = ["normal" if v > 120 else "osteopenia" if v >= 80 else "osteoporosis" for v in bone["mean"]]
    assert [c.lower() for c in bone["vbmd_category"]] == expected


def test_disc_plane_slab_of_three_planes():
    img, seg, _axis = _tilted_case(20.0)
    one = _quiet(measure_case, img, seg, map_kind="scalar", levels=["L4/5"], plane="disc")
    three = _quiet(measure_case, img, seg, map_kind="scalar", levels=["L4/5"], plane="disc", n_slices=3)
    assert (three["n_slices"] == 3).all()
    # a straight cylinder has the same cross-section on every parallel plane
    np.testing.assert_allclose(three["csa_mm2"], np.pi * 14.0 * 9.0, rtol=0.015)
    assert (three["n_voxels"] > 2.5 * one["n_voxels"]).all()


def test_myosegmentum_typed_levels_and_inline_names_from_the_command_line(realdata, tmp_path):
    from ParaspinalFatLib.cli import main

    d = realdata / "myosegmentum"
    out = tmp_path / "tum01.csv"
    status = _quiet(main, [
        "measure", "--image", str(d / "TUM01_fat_L2-L5.nii.gz"), "--segmentation", str(d / "TUM01_label_L2-L5.nii.gz"),
        "--label-names", "1=right ES,2=right MF,3=left MF,4=left ES", "--map", "scalar",
        "--level-slices", "L3/4=21,L4/5=13", "--per-slice", "--output", str(out)])
    assert status == 0
    levels = pd.read_csv(out)
    slices = pd.read_csv(tmp_path / "tum01_slices.csv").set_index(["segment", "slice_index"])
    assert sorted(set(levels["muscle"])) == ["erector_spinae", "multifidus"]
    assert set(levels["level_source"]) == {"level_slices"}
    assert sorted(set(zip(levels["level"], levels["slice_index"]))) == [("L3/4", 21), ("L4/5", 13)]
    assert len(levels) == 8
    for row in levels.itertuples():
        assert row.csa_mm2 == pytest.approx(slices.loc[(row.segment, row.slice_index), "csa_mm2"])
    # the labels' own voxel count on that slice, independently
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(d / "TUM01_label_L2-L5.nii.gz")))
    left_mf = levels[(levels["segment"] == "left MF") & (levels["level"] == "L4/5")].iloc[0]
    assert left_mf["csa_mm2"] == pytest.approx((labels[13] == 3).sum() * 1.0185 ** 2, rel=1e-3)


def _short_stack_case(tmp_path, n_k):
    """A 30-degree tilted elliptic muscle pair on a stack of ``n_k`` 1 mm slices centred on z = 0,
    and a markups line along the disc at the origin (its plane: normal = the tilted axis)."""
    import json

    n = (90, 90, n_k)
    geom = Geometry(n, (1.0, 1.0, 1.0), (-44.5, -44.5, -(n_k - 1) / 2), tuple(np.eye(3).ravel()))
    k, j, i = np.meshgrid(*(np.arange(s) for s in n[::-1]), indexing="ij")
    p = np.stack([i - 44.5, j - 44.5, k - (n_k - 1) / 2], axis=-1)
    t = np.radians(30.0)
    axis = np.array([0.0, np.sin(t), np.cos(t)])
    e2 = np.cross(axis, [1.0, 0.0, 0.0])
    labels = np.zeros(n[::-1], np.uint8)
    segments = []
    for value, (name, x0) in enumerate((("multifidus_left", 20.0), ("multifidus_right", -20.0)), start=1):
        labels[(((p[..., 0] - x0) / 14.0) ** 2 + ((p @ e2 - 15.0) / 9.0) ** 2) <= 1.0] = value
        segments.append(Segment(name, 0, value, name))
    img = sitk.GetImageFromArray(np.full(n[::-1], 40.0, np.float32))
    geom.apply_to_sitk(img)
    line = {"type": "Line", "name": "L4/5", "coordinateSystem": "LPS", "coordinateUnits": "mm",
            "controlPoints": [{"id": "a", "label": "a", "position": list(-20.0 * e2), "positionStatus": "defined"},
                              {"id": "b", "label": "b", "position": list(20.0 * e2), "positionStatus": "defined"}]}
    mrk = tmp_path / f"line{n_k}.mrk.json"
    mrk.write_text(json.dumps({"markups": [line]}), encoding="utf-8")
    return img, Segmentation(labels[None], geom, segments, source="short"), mrk


def test_disc_plane_leaving_the_slice_stack_is_flagged_not_silent(tmp_path):
    from ParaspinalFatLib.errors import LevelWarning

    # 90 slices: the tilted section (|z| <= 24 tan 30 = 13.9 mm) lies inside; no warning
    img, seg, mrk = _short_stack_case(tmp_path, 90)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LevelWarning)
        whole = measure_case(img, seg, map_kind="scalar", levels=["L4/5"], plane="disc", markups=str(mrk))
    assert (whole["plane_tilt_deg"].round(6) == 30.0).all()
    assert not whole["warnings"].str.contains("first/last image slice").any()
    np.testing.assert_allclose(whole["csa_mm2"], np.pi * 14.0 * 9.0, rtol=0.015)
    # 21 slices (|z| <= 10 mm): the section runs off the stack; its CSA is cut, and says so
    img, seg, mrk = _short_stack_case(tmp_path, 21)
    with pytest.warns(LevelWarning, match="reach the first or last image slice"):
        cut = measure_case(img, seg, map_kind="scalar", levels=["L4/5"], plane="disc", markups=str(mrk))
    assert cut["warnings"].str.contains("first/last image slice").all()
    assert (cut["csa_mm2"] < 0.95 * np.pi * 14.0 * 9.0).all()

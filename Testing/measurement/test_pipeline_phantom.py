"""measure() on analytic phantoms: truth = written voxels, computed independently.

The phantom generator rasterises ellipses and writes PDFF values; its truth
table counts the mask voxels and averages the written values with plain numpy.
The pipeline under test reads the image/segmentation back (cropped, offset,
oblique, anisotropic, LPS), finds levels and measures.
"""
import warnings

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from ParaspinalFatLib import measure, measure_case
from ParaspinalFatLib.errors import InputError, LevelError, MeasurementError
from ParaspinalFatLib.phantom import make_phantom, write_phantom


def _check_against_truth(table, truth, pixel_area):
    merged = table.merge(truth, on=["segment", "level"], suffixes=("", "_truth"), validate="one_to_one")
    assert len(merged) == len(truth) == len(table)
    np.testing.assert_array_equal(merged["n_voxels"], merged["n_voxels_truth"])
    np.testing.assert_array_equal(merged["slice_index"], merged["slice_index_truth"])
    np.testing.assert_allclose(merged["csa_mm2"], merged["n_voxels_truth"] * pixel_area, rtol=1e-12)
    np.testing.assert_allclose(merged["mean"], merged["mean_pdff_pct"], rtol=1e-9)
    np.testing.assert_allclose(merged["fat_fraction_pct"], merged["mean_pdff_pct"], rtol=1e-9)
    np.testing.assert_allclose(merged["median"], merged["median_pdff_pct"], rtol=1e-9)
    np.testing.assert_allclose(merged["sd"], merged["sd_pdff_pct"], rtol=1e-8)
    np.testing.assert_allclose(merged["fat_csa_mm2"], merged["n_fat"] * pixel_area, rtol=1e-12)
    np.testing.assert_allclose(merged["lean_csa_mm2"], (merged["n_voxels_truth"] - merged["n_fat"]) * pixel_area, rtol=1e-12)
    np.testing.assert_allclose(merged["fat_area_ratio"], merged["n_fat"] / merged["n_voxels_truth"], rtol=1e-12)
    assert set(merged["muscle"]) == {"multifidus", "erector_spinae", "psoas"}
    assert (merged["side"] == merged["side_truth"]).all()


@pytest.mark.parametrize("scale", ["0-1", "0-100", "0-1000"])
@pytest.mark.parametrize("tilt", [0.0, 9.0, -17.0])
def test_2d_named_rois_oblique_anisotropic_cropped(scale, tilt):
    ph = make_phantom(mode="2d", pdff_scale=scale, tilt_deg=tilt, spacing=(1.1, 1.35, 4.4),
                      origin=(-77.0, -41.5, -311.0))
    # the segmentation really is cropped and offset relative to the image
    assert ph.segmentation.geometry.size != tuple(ph.image.GetSize())
    table = measure_case(ph.image, ph.segmentation, map_kind="pdff", subject="p1")
    area = 1.1 * 1.35  # the direction is a rotation: pixel area = product of in-plane spacings
    _check_against_truth(table, ph.truth, area)
    assert (table["level_source"] == "segment_name").all()
    assert (table["slice_offset_mm"] == 0).all()
    assert (table["pdff_scale"] == scale).all() and (table["unit"] == "%").all()
    assert (table["subject"] == "p1").all()


def test_declared_scale_and_threshold():
    ph = make_phantom(mode="2d", pdff_scale="0-1", fat_threshold_pct=70.0)
    table = measure_case(ph.image, ph.segmentation, pdff_scale="0-1", fat_threshold_pct=70.0)
    _check_against_truth(table, ph.truth, 1.25 * 1.3)
    assert (table["fat_threshold_pct"] == 70.0).all()


@pytest.mark.parametrize("tilt", [0.0, 10.0])
def test_3d_muscles_levels_from_vertebra_masks(tilt):
    ph = make_phantom(mode="3d", tilt_deg=tilt, spacing=(0.9, 1.2, 3.5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = measure(ph.image, ph.segmentation)
    table = res.levels
    _check_against_truth(table, ph.truth, 0.9 * 1.2)
    assert set(table["level_source"]) == {"vertebra_masks"}
    # vertebral body centroids lie exactly half-way: the disc point is on the level slice
    np.testing.assert_allclose(table["slice_offset_mm"], 0.0, atol=1e-6)
    marks = res.landmarks.set_index("level")
    for level, point in ph.disc_points.items():
        np.testing.assert_allclose(marks.loc[level, ["x_lps_mm", "y_lps_mm", "z_lps_mm"]].to_numpy(float),
                                   point, atol=1e-6)


def _full_arrays(ph):
    """Image (%), and full-grid masks from an uncropped phantom, for independent truths."""
    arr = sitk.GetArrayFromImage(ph.image).astype(np.float64) * 100.0 / {"0-1": 1, "0-100": 100, "0-1000": 1000}[ph.pdff_scale]
    return arr


def test_n_slice_average_and_per_slice_and_whole_roi():
    ph = make_phantom(mode="3d", crop_segmentation=False, spacing=(1.0, 1.1, 4.0))
    arr = _full_arrays(ph)
    res = measure(ph.image, ph.segmentation, n_slices=3, per_slice=True, whole_roi=True)
    area, vox_ml = 1.0 * 1.1, 1.0 * 1.1 * 4.0 / 1000.0
    seg = ph.segmentation
    for _, row in res.levels.iterrows():
        mask = seg.mask(row["segment"])
        s = row["slice_index"]
        window = mask[s - 1: s + 2]
        vals = arr[s - 1: s + 2][window]
        assert row["n_slices"] == 3
        assert row["csa_mm2"] == pytest.approx(window.sum() * area / 3, rel=1e-12)
        assert row["mean"] == pytest.approx(vals.mean(), rel=1e-9)
        assert row["median"] == pytest.approx(np.median(vals), rel=1e-9)
    # per-slice table: every slice of every ROI
    sl = res.slices
    for name in ("multifidus_left", "psoas_right"):
        mask = seg.mask(name)
        per = sl[sl["segment"] == name].set_index("slice_index")
        present = np.flatnonzero(mask.any(axis=(1, 2)))
        assert sorted(per.index) == present.tolist()
        for k in present[::5]:
            assert per.loc[k, "csa_mm2"] == pytest.approx(mask[k].sum() * area, rel=1e-12)
            assert per.loc[k, "mean"] == pytest.approx(arr[k][mask[k]].mean(), rel=1e-9)
    # whole-ROI summary
    rois = res.rois.set_index("segment")
    for name in ("erector_spinae_left", "multifidus_right"):
        mask = seg.mask(name)
        counts = mask.sum(axis=(1, 2))
        assert rois.loc[name, "volume_ml"] == pytest.approx(mask.sum() * vox_ml, rel=1e-12)
        assert rois.loc[name, "mean"] == pytest.approx(arr[mask].mean(), rel=1e-9)
        assert rois.loc[name, "median"] == pytest.approx(np.median(arr[mask]), rel=1e-9)
        assert rois.loc[name, "max_csa_mm2"] == pytest.approx(counts.max() * area, rel=1e-12)
        assert rois.loc[name, "mean_csa_mm2"] == pytest.approx(counts[counts > 0].mean() * area, rel=1e-12)
    assert "vertebrae_L3" not in rois.index


def test_nan_voxels_are_ignored_and_counted():
    ph = make_phantom(mode="2d", crop_segmentation=False)
    arr = sitk.GetArrayFromImage(ph.image)
    mask = ph.segmentation.mask("MF_L_L4/5")
    idx = np.argwhere(mask)[:7]
    arr[tuple(idx.T)] = np.nan
    img = sitk.GetImageFromArray(arr)
    img.CopyInformation(ph.image)
    table = measure_case(img, ph.segmentation).set_index("segment")
    row = table.loc["MF_L_L4/5"]
    vals = arr[mask].astype(np.float64)
    assert row["n_nan"] == 7
    assert row["n_voxels"] == mask.sum()
    assert row["csa_mm2"] == pytest.approx(mask.sum() * 1.25 * 1.3)
    assert row["mean"] == pytest.approx(np.nanmean(vals), rel=1e-9)
    assert table.loc["MF_R_L4/5", "n_nan"] == 0


def test_mask_touching_the_image_border_is_kept():
    ph = make_phantom(mode="2d", crop_segmentation=False)
    seg = ph.segmentation
    layers = seg.layers.copy()
    layers[0, 18, :, :3] = 99  # a strip along the i = 0 border on slice 18
    from ParaspinalFatLib.segmentation import Segment
    seg2 = seg.with_layers(layers, seg.geometry)
    seg2.segments = list(seg.segments) + [Segment("quadratus_lumborum_left_L4/5", 0, 99)]
    table = measure_case(ph.image, seg2, map_kind="scalar").set_index("segment")
    assert table.loc["quadratus_lumborum_left_L4/5", "n_voxels"] == ph.image.GetSize()[1] * 3


def test_scalar_map_has_no_composition_columns():
    ph = make_phantom(mode="2d")
    table = measure_case(ph.image, ph.segmentation, map_kind="scalar", unit="a.u.")
    assert table["fat_csa_mm2"].isna().all() and table["fat_fraction_pct"].isna().all()
    assert (table["unit"] == "a.u.").all()
    # scalar map: values in the stored unit (0-100 here) equal the truth in %
    merged = table.merge(ph.truth, on="segment")
    np.testing.assert_allclose(merged["mean"], merged["mean_pdff_pct"], rtol=1e-6)


def test_summary_left_right_asymmetry_and_level_mean():
    ph = make_phantom(mode="2d")
    res = measure(ph.image, ph.segmentation)
    s = res.summary()
    t = ph.truth.set_index(["muscle", "side", "level"])
    row = s[(s.muscle == "psoas") & (s.level == "L4/5") & (s.metric == "csa_mm2")].iloc[0]
    left, right = t.loc[("psoas", "left", "L4/5"), "csa_mm2"], t.loc[("psoas", "right", "L4/5"), "csa_mm2"]
    assert row["left"] == pytest.approx(left) and row["right"] == pytest.approx(right)
    assert row["asymmetry_pct"] == pytest.approx(abs(left - right) / ((left + right) / 2) * 100)
    prof = s[(s.muscle == "multifidus") & (s.level == "mean L3/4-L5/S1") & (s.metric == "fat_fraction_pct")].iloc[0]
    expected = np.mean([t.loc[("multifidus", "left", lv), "mean_pdff_pct"] for lv in ("L3/4", "L4/5", "L5/S1")])
    assert prof["left"] == pytest.approx(expected, rel=1e-9)
    assert prof["n_levels"] == 3
    wide = res.summary(wide=True)
    assert len(wide) == 1
    assert wide.loc[0, "psoas L4/5 asymmetry_pct csa_mm2"] == pytest.approx(row["asymmetry_pct"])


def test_files_round_trip(tmp_path):
    ph = make_phantom(mode="2d", tilt_deg=5.0, pdff_scale="0-1000")
    paths = write_phantom(ph, tmp_path)
    table = measure_case(paths["image"], paths["segmentation"])
    _check_against_truth(table, ph.truth, 1.25 * 1.3)
    assert (table["subject"] == "phantom_pdff").all()


# ----------------------------------------------------------------------------- bad input
def test_missing_and_unreadable_files(tmp_path):
    ph = make_phantom(mode="2d")
    with pytest.raises(InputError, match="not found"):
        measure_case(tmp_path / "nope.nrrd", ph.segmentation)
    bad = tmp_path / "broken.nrrd"
    bad.write_bytes(b"NRRD0004\ntype: float\ngarbage\n")
    with pytest.raises(InputError, match="broken.nrrd"):
        measure_case(bad, ph.segmentation)


def test_2d_and_4d_images_are_refused(tmp_path):
    ph = make_phantom(mode="2d")
    img2 = sitk.Image(30, 20, sitk.sitkFloat32)
    p2 = tmp_path / "slice.nrrd"
    sitk.WriteImage(img2, str(p2))
    with pytest.raises(InputError, match="2-D image"):
        measure_case(p2, ph.segmentation)
    img4 = sitk.Image([8, 8, 4, 3], sitk.sitkFloat32)
    p4 = tmp_path / "echoes.nii.gz"
    sitk.WriteImage(img4, str(p4))
    with pytest.raises(InputError, match="4-D"):
        measure_case(p4, ph.segmentation)


def test_segmentation_not_overlapping_the_image():
    ph = make_phantom(mode="2d")
    seg = ph.segmentation
    g = seg.geometry
    from ParaspinalFatLib.geometry import Geometry
    far = Geometry(g.size, g.spacing, (g.origin[0] + 5000.0, g.origin[1], g.origin[2]), g.direction)
    with pytest.raises(InputError, match="overlap"):
        measure_case(ph.image, seg.with_layers(seg.layers, far))


def test_no_level_in_name_and_no_level_source():
    ph = make_phantom(mode="3d")
    seg = ph.segmentation
    muscles_only = seg.with_layers(seg.layers, seg.geometry)
    muscles_only.segments = [s for s in seg.segments if not s.name.startswith("vertebrae")]
    with pytest.raises(LevelError, match="multifidus_left.*no level"):
        measure_case(ph.image, muscles_only)


def test_empty_roi_on_level_slice():
    ph = make_phantom(mode="3d", crop_segmentation=False)
    seg = ph.segmentation
    layers = seg.layers.copy()
    psoas = seg.segment("psoas_right")
    layers[0, 10][layers[0, 10] == psoas.label_value] = 0  # erase psoas on the L5/S1 slice
    seg2 = seg.with_layers(layers, seg.geometry)
    with pytest.raises(MeasurementError, match=r"psoas_right.*slice 10.*L5/S1"):
        measure_case(ph.image, seg2)
    kept = measure_case(ph.image, seg2, on_empty="keep").set_index(["segment", "level"])
    assert kept.loc[("psoas_right", "L5/S1"), "n_voxels"] == 0
    assert np.isnan(kept.loc[("psoas_right", "L5/S1"), "mean"])


def test_pdff_outside_any_known_scale():
    ph = make_phantom(mode="2d")
    arr = sitk.GetArrayFromImage(ph.image) * 40.0 + 500.0  # e.g. a T1 image in arbitrary units
    img = sitk.GetImageFromArray(arr)
    img.CopyInformation(ph.image)
    with pytest.raises(MeasurementError, match="outside any known scale"):
        measure_case(img, ph.segmentation, map_kind="pdff")
    with pytest.raises(MeasurementError, match="declared scale 0-1"):
        measure_case(ph.image, ph.segmentation, pdff_scale="0-1")


def test_unknown_option_is_named():
    ph = make_phantom(mode="2d")
    with pytest.raises(TypeError, match="fat_treshold"):
        measure_case(ph.image, ph.segmentation, fat_treshold=40)


# ----------------------------------------------------------------------------- level sources
def _muscles_only(ph):
    seg = ph.segmentation
    out = seg.with_layers(seg.layers, seg.geometry)
    out.segments = [s for s in seg.segments if not s.name.startswith("vertebrae")]
    return out


@pytest.mark.parametrize("tilt", [0.0, 11.0])
def test_levels_from_markups_ras_with_offset_along_normal(tmp_path, tilt):
    import json

    ph = make_phantom(mode="3d", tilt_deg=tilt, spacing=(1.0, 1.0, 4.0))
    t = np.deg2rad(tilt)
    normal = np.array([0.0, -np.sin(t), np.cos(t)])  # the rotated k axis = slice normal (LPS)
    shifts = {"L3/4": 1.5, "L4/5": -0.8, "L5/S1": 0.0}
    points = []
    for level, p in ph.disc_points.items():
        lps = p + shifts[level] * normal
        points.append({"id": level, "label": level.replace("/", "-"), "position": [-lps[0], -lps[1], lps[2]],
                       "positionStatus": "defined"})
    doc = {"@schema": "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/Resources/Schema/markups-schema-v1.0.3.json#",
           "markups": [{"type": "Fiducial", "coordinateSystem": "RAS", "coordinateUnits": "mm",
                        "controlPoints": points}]}
    mrk = tmp_path / "levels.mrk.json"
    mrk.write_text(json.dumps(doc))
    table = measure_case(ph.image, _muscles_only(ph), markups=mrk)
    assert set(table["level_source"]) == {"markups"}
    _check_against_truth(table, ph.truth, 1.0)
    for level, shift in shifts.items():
        np.testing.assert_allclose(table.loc[table.level == level, "slice_offset_mm"], shift, atol=1e-6)


def test_levels_from_disc_masks_win_over_vertebrae():
    from ParaspinalFatLib.segmentation import Segment

    ph = make_phantom(mode="3d", crop_segmentation=False)
    seg = ph.segmentation
    layers = seg.layers.copy()
    extra = []
    # disc masks 3 slices thick, centred one slice *above* each level slice: the discs must win
    for n, (level, name) in enumerate((("L3/4", "disc_L3_L4"), ("L4/5", "disc_L4_L5"), ("L5/S1", "disc_L5_S"))):
        k = (26, 18, 10)[n] + 1
        value = 200 + n
        sl = layers[0, k - 1: k + 2, 70:90, 57:62]  # between the multifidi: free of labels
        assert not sl.any()
        sl[...] = value
        extra.append(Segment(name, 0, value))
    seg2 = seg.with_layers(layers, seg.geometry)
    seg2.segments = list(seg.segments) + extra
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = measure_case(ph.image, seg2)
    assert set(table["level_source"]) == {"disc_mask"}
    for level, k in (("L3/4", 27), ("L4/5", 19), ("L5/S1", 11)):
        rows = table[table.level == level]
        assert (rows["slice_index"] == k).all()
        np.testing.assert_allclose(rows["slice_offset_mm"], 0.0, atol=1e-9)


def test_muscle_selection():
    ph = make_phantom(mode="2d")
    table = measure_case(ph.image, ph.segmentation, muscles=["psoas", "multifidus"])
    assert set(table["muscle"]) == {"psoas", "multifidus"} and len(table) == 12
    table = measure_case(ph.image, ph.segmentation, segments=["PS_R_L4/5"])
    assert table["segment"].tolist() == ["PS_R_L4/5"]
    with pytest.raises(InputError, match="gluteus_maximus.*not found"):
        measure_case(ph.image, ph.segmentation, muscles=["gluteus_maximus"])
    with pytest.raises(InputError, match="XX_L_L4/5.*not found"):
        measure_case(ph.image, ph.segmentation, segments=["XX_L_L4/5"])


def test_ambiguous_pdff_scale_detection_warns_and_declared_scale_fixes_it():
    """A 0-1000 map of fat-poor tissue (no subcutaneous fat) looks like a 0-100 map."""
    from ParaspinalFatLib.errors import ParaspinalFatWarning

    ph = make_phantom(mode="2d", pdff_scale="0-1000", crop_segmentation=False)
    arr = sitk.GetArrayFromImage(ph.image)
    arr = np.minimum(arr, 70.0)  # at most 7 %: no near-pure fat anywhere
    img = sitk.GetImageFromArray(arr)
    img.CopyInformation(ph.image)
    with pytest.warns(ParaspinalFatWarning, match="detected as 0-100.*near pure fat.*Declare the scale"):
        wrong = measure_case(img, ph.segmentation)
    right = measure_case(img, ph.segmentation, pdff_scale="0-1000")
    np.testing.assert_allclose(wrong["mean"], right["mean"] * 10, rtol=1e-9)
    seg = ph.segmentation
    mask = seg.mask(right["segment"].iloc[0])
    assert right["mean"].iloc[0] == pytest.approx(arr[mask].astype(float).mean() / 10, rel=1e-6)
    with pytest.warns(ParaspinalFatWarning, match="detected as 0-1000") as record:
        measure_case(ph.image, ph.segmentation)  # a detected scale is always reported
    assert not any("near pure fat" in str(r.message) for r in record)  # ...without the strong wording
    with warnings.catch_warnings():
        warnings.simplefilter("error", ParaspinalFatWarning)
        measure_case(ph.image, ph.segmentation, pdff_scale="0-1000")  # declared: silent


def test_same_size_segmentation_from_another_series_is_resampled_on_request():
    """Drawn on another series of the same matrix size, 8 mm (2 slices) higher: refused by default
    with both ways out named; --resample-segmentation puts it on the right slice."""
    from ParaspinalFatLib.geometry import Geometry
    from ParaspinalFatLib.segmentation import Segment, Segmentation

    a = (np.arange(10, dtype=np.float32)[:, None, None] * 10) * np.ones((10, 40, 40), np.float32)
    img = sitk.GetImageFromArray(a)  # value = 10 x slice index
    img.SetSpacing((1, 1, 4))
    other = Geometry((40, 40, 10), (1.0, 1.0, 4.0), (0.0, 0.0, 8.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    lab = np.zeros((10, 40, 40), np.uint8)
    lab[3, 10:20, 10:20] = 1  # other series' slice 3 = z 20 mm = image slice 5
    seg = Segmentation(lab, other, [Segment("multifidus_left_L4/5", 0, 1)])
    with pytest.raises(InputError, match="resample-segmentation.*assume-same-grid"):
        measure_case(img, seg, map_kind="scalar")
    row = measure_case(img, seg, map_kind="scalar", resample_segmentation=True).iloc[0]
    assert row["slice_index"] == 5 and row["mean"] == 50.0 and row["n_voxels"] == 100


def test_unknown_segment_names_are_reported_not_silently_dropped():
    from ParaspinalFatLib.errors import ParaspinalFatWarning
    from ParaspinalFatLib.segmentation import Segment

    ph = make_phantom(mode="2d", crop_segmentation=False)
    seg = ph.segmentation
    renamed = seg.with_layers(seg.layers, seg.geometry)
    renamed.segments = [Segment("Segment_7 L4/5" if s.name == "ES_L_L4/5" else s.name, s.layer, s.label_value)
                        for s in seg.segments]
    with pytest.warns(ParaspinalFatWarning, match=r"1 segment\(s\) not measured.*'Segment_7 L4/5'"):
        table = measure_case(ph.image, renamed, pdff_scale="0-100")
    assert "Segment_7 L4/5" not in set(table["segment"]) and len(table) == 17
    table = measure_case(ph.image, renamed, pdff_scale="0-100",
                         segments=["Segment_7 L4/5", "ES_R_L4/5"])
    assert set(table["segment"]) == {"Segment_7 L4/5", "ES_R_L4/5"}


def test_measure_options_are_validated_however_they_are_made():
    import dataclasses

    from ParaspinalFatLib.measurement.pipeline import MeasureOptions

    opts = MeasureOptions()  # the defaults are valid
    assert opts.fat_threshold_pct == 50.0 and opts.n_slices == 1
    with pytest.raises(InputError, match=r"fat_threshold_pct \(--fat-threshold\) must be between 0 and 100 %, got 150"):
        MeasureOptions(fat_threshold_pct=150)
    with pytest.raises(InputError, match=r"n_slices \(--n-slices\) must be an odd number >= 1"):
        dataclasses.replace(opts, n_slices=2)
    with pytest.raises(InputError, match=r"noise_floor_fraction must be a fraction in \[0, 1\)"):
        MeasureOptions.from_kwargs(noise_floor_fraction=2)
    MeasureOptions.from_kwargs(fat_threshold_pct=0, noise_floor=0.0, noise_floor_fraction=0.0, n_slices=5,
                               goutallier_cutoffs=(0, 25, 40, 100), kjaer_cutoffs="10,50", n_classes=2.0,
                               levels=[], segments=[], muscles=["multifidus"])


def test_grades_of_the_result_use_its_grading_options():
    ph = make_phantom(mode="2d")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = measure(ph.image, ph.segmentation, goutallier_cutoffs="5,15,20,30", kjaer_cutoffs=(12, 20),
                      grade_source="fat_area_pct")
    assert res.grading == {"source": "fat_area_pct", "goutallier_cutoffs": (5.0, 15.0, 20.0, 30.0),
                           "kjaer_cutoffs": (12.0, 20.0)}
    g = res.grades()
    sided = g[g["side"].isin(["left", "right"]) & ~g["level"].str.startswith("mean")]
    merged = sided.merge(res.levels, on=["muscle", "side", "level"], suffixes=("", "_lvl"))
    assert len(merged) == 18
    np.testing.assert_array_equal(merged["goutallier"], merged["goutallier_lvl"].astype(float))
    np.testing.assert_array_equal(merged["kjaer"], merged["kjaer_lvl"].astype(float))
    assert (merged["grade_source"] == "fat_area_pct").all()


def _as_sitk(array, like):
    img = sitk.GetImageFromArray(array)
    img.CopyInformation(like)
    return img


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.int32])
def test_integer_image_is_measured_exactly_like_its_float64_copy(dtype):
    # integer images are kept in their own type (only the gathered voxels become float64): every number
    # of every table is the same as for the image converted to float64 beforehand
    ph = make_phantom(mode="3d", pdff_scale="0-1000", crop_segmentation=False)
    stored = np.round(sitk.GetArrayFromImage(ph.image)).astype(dtype)
    options = dict(map_kind="pdff", per_slice=True, whole_roi=True, levels="all")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = measure(_as_sitk(stored, ph.image), ph.segmentation, **options)
        expected = measure(_as_sitk(stored.astype(np.float64), ph.image), ph.segmentation, **options)
    for name in ("levels", "slices", "rois", "landmarks"):
        pd.testing.assert_frame_equal(getattr(got, name), getattr(expected, name), check_exact=True)
    assert got.warnings == expected.warnings
    # and against plain numpy on the stored integers: mean PDFF (%) of each ROI on its level slice
    table = got.levels.set_index("segment")
    for name in ("multifidus_left", "psoas_right"):
        seg = ph.segmentation.segment(name)
        for _, row in table.loc[[name]].iterrows():
            voxels = stored[row["slice_index"]][ph.segmentation.layers[seg.layer][row["slice_index"]]
                                                == seg.label_value].astype(np.float64)
            assert row["n_voxels"] == voxels.size
            assert row["mean"] == pytest.approx(voxels.mean() / 10.0, rel=1e-12)


def test_int16_ct_and_integer_dixon_are_measured_exactly_like_their_float64_copies():
    ph = make_phantom(mode="3d", pdff_scale="0-100", crop_segmentation=False)
    pct = sitk.GetArrayFromImage(ph.image).astype(np.float64)
    hu = np.round(40.0 - 1.4 * pct).astype(np.int16)  # muscle ~ +30 HU, fat ~ -85 HU
    fat = np.round(5.0 * pct).astype(np.uint16)
    water = np.round(5.0 * (100.0 - pct)).astype(np.uint16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ct = [measure(_as_sitk(a, ph.image), ph.segmentation, map_kind="ct", whole_roi=True)
              for a in (hu, hu.astype(np.float64))]
        dixon = [measure(None, ph.segmentation, map_kind="dixon", fat=_as_sitk(f, ph.image),
                         water=_as_sitk(w, ph.image), per_slice=True)
                 for f, w in ((fat, water), (fat.astype(np.float64), water.astype(np.float64)))]
    for got, expected in (ct, dixon):
        for name in ("levels", "slices", "rois"):
            if getattr(expected, name) is not None:
                pd.testing.assert_frame_equal(getattr(got, name), getattr(expected, name), check_exact=True)
    assert ct[0].levels["fat_area_ratio"].notna().all()
    assert dixon[0].levels["ff_signal_weighted_pct"].notna().all()


def test_gathered_voxels_of_an_integer_image_are_float64_and_the_image_is_not_converted():
    from ParaspinalFatLib.measurement.voxels import gather_roi_voxels

    ph = make_phantom(mode="3d", pdff_scale="0-1000", crop_segmentation=False)
    stored = np.round(sitk.GetArrayFromImage(ph.image)).astype(np.int16)
    stored.flags.writeable = False  # read-only, as the pipeline passes it
    seg = ph.segmentation.segment("psoas_left")
    keys = [(seg.layer, seg.label_value)]
    mask = ph.segmentation.layers[seg.layer] == seg.label_value
    vox = gather_roi_voxels(stored, ph.segmentation, keys, 2)
    assert vox.value.dtype == np.float64
    np.testing.assert_array_equal(vox.value, stored[mask].astype(np.float64))  # C order, like the gathering
    as_float32 = gather_roi_voxels(stored.astype(np.float32), ph.segmentation, keys, 2)
    assert as_float32.value.dtype == np.float32  # float images keep their own type, as before
    np.testing.assert_array_equal(as_float32.value, vox.value)

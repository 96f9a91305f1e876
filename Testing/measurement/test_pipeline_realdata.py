"""measure() on real scanner/tool files from ../shared/realdata (skipped when absent).

Regression values come from shared/realdata/README.md (computed from the files by
someone else); independent truths are computed here with plain SimpleITK/numpy.
"""
import warnings

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from ParaspinalFatLib import measure
from ParaspinalFatLib.errors import InputError

# label meaning by geometry (shared/realdata/README.md; the source repository's own list is wrong)
MYO_NAMES = {1: "erector_spinae_right", 2: "multifidus_right", 3: "multifidus_left", 4: "erector_spinae_left"}
# README table: label -> volume mL, mean CSA mm2, max CSA mm2, FF_sum, mean voxel FF
MYO_TUM01 = {
    1: (203.1, 1751, 2085, 0.1457, 0.1321),
    2: (63.7, 549, 1052, 0.1601, 0.1491),
    3: (69.6, 600, 1078, 0.1382, 0.1285),
    4: (191.0, 1647, 1977, 0.1358, 0.1222),
}


@pytest.fixture(scope="module")
def myo(realdata):
    d = realdata / "myosegmentum"
    return {
        "fat": d / "TUM01_fat_L2-L5.nii.gz",
        "water": d / "TUM01_water_L2-L5.nii.gz",
        "labels": d / "TUM01_label_L2-L5.nii.gz",
    }


def test_myosegmentum_volumes_and_csa_regression(myo):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = measure(myo["fat"], myo["labels"], map_kind="scalar", label_names=MYO_NAMES,
                      whole_roi=True, per_slice=True)
    assert res.levels.empty  # no level source: only per-slice / whole-ROI tables
    rois = res.rois.set_index("segment")
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(myo["labels"])))
    area = 1.0185185670852661 ** 2
    for value, (vol, mean_csa, max_csa, _ffs, _ffm) in MYO_TUM01.items():
        row = rois.loc[MYO_NAMES[value]]
        assert row["volume_ml"] == pytest.approx(vol, abs=0.05)
        assert row["mean_csa_mm2"] == pytest.approx(mean_csa, abs=0.5)
        assert row["max_csa_mm2"] == pytest.approx(max_csa, abs=0.5)
        assert row["n_slices"] == 29
        # per-slice CSA against an independent count on the label array
        per = res.slices[res.slices["segment"] == MYO_NAMES[value]].set_index("slice_index")["csa_mm2"]
        counts = (labels == value).sum(axis=(1, 2))
        np.testing.assert_allclose(per.loc[np.arange(29)].to_numpy(), counts * area, rtol=1e-6)
    assert set(rois["muscle"]) == {"multifidus", "erector_spinae"}


def test_myosegmentum_fat_fraction_from_dixon(myo):
    fat_img = sitk.ReadImage(str(myo["fat"]))
    fat = sitk.GetArrayFromImage(fat_img).astype(np.float64)
    water = sitk.GetArrayFromImage(sitk.ReadImage(str(myo["water"]))).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ff = fat / (fat + water)  # NaN where both are 0
    ff_img = sitk.GetImageFromArray(ff)
    ff_img.CopyInformation(fat_img)
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(myo["labels"])))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = measure(ff_img, myo["labels"], map_kind="pdff", pdff_scale="0-1", label_names=MYO_NAMES,
                      whole_roi=True)
    rois = res.rois.set_index("segment")
    for value, (_vol, _mc, _xc, _ff_sum, ff_mean) in MYO_TUM01.items():
        row = rois.loc[MYO_NAMES[value]]
        assert row["fat_fraction_pct"] == pytest.approx(ff_mean * 100, abs=0.005)
        mask = labels == value
        assert row["fat_fraction_pct"] == pytest.approx(np.nanmean(ff[mask]) * 100, rel=1e-9)
        assert row["n_nan"] == int(np.isnan(ff[mask]).sum())
        assert row["unit"] == "%"


def test_myosegmentum_water_header_differs(myo):
    """The water image lost its origin: refused unless --assume-same-grid, which warns."""
    with pytest.raises(InputError, match="assume-same-grid"):
        measure(myo["water"], myo["labels"], map_kind="scalar", label_names=MYO_NAMES, whole_roi=True)
    with pytest.warns(UserWarning, match="assuming the same voxel grid"):
        res = measure(myo["water"], myo["labels"], map_kind="scalar", label_names=MYO_NAMES,
                      whole_roi=True, assume_same_grid=True)
    rois = res.rois.set_index("segment")
    water = sitk.GetArrayFromImage(sitk.ReadImage(str(myo["water"]))).astype(np.float64)
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(myo["labels"])))
    for value, name in MYO_NAMES.items():
        assert rois.loc[name, "volume_ml"] == pytest.approx(MYO_TUM01[value][0], abs=0.05)
        assert rois.loc[name, "mean"] == pytest.approx(water[labels == value].mean(), rel=1e-12)


# ----------------------------------------------------------------------------- TotalSegmentator CT
TS_REGRESSION = {  # slice k -> {segment: (CSA mm2, mean HU)}; README "middle slice of each vertebral body"
    96: {"autochthon_left": (2241, 26.8), "autochthon_right": (2214, 27.0), "iliopsoas_right": (54, 35.3)},
    85: {"autochthon_left": (2637, 22.3), "autochthon_right": (2475, 19.7),
         "iliopsoas_left": (441, 33.3), "iliopsoas_right": (360, 36.8)},
    74: {"autochthon_left": (2484, 14.7), "autochthon_right": (2340, 12.4),
         "iliopsoas_left": (702, 34.6), "iliopsoas_right": (702, 37.1)},
}


@pytest.fixture(scope="module")
def ts_result(realdata):
    d = realdata / "totalsegmentator"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = measure(d / "example_ct.nii.gz", d / "example_seg_fast_force_split.nii.gz",
                      map_kind="scalar", unit="HU", per_slice=True, levels="all", on_empty="keep", muscles="all")
    return d, res


def test_totalsegmentator_default_run_measures_the_paraspinal_muscles(realdata):
    """Defaults on a TotalSegmentator file: the paraspinal group at L3/4-L5/S1, no error for the
    gluteal muscles that are (anatomically) absent at L3/4."""
    d = realdata / "totalsegmentator"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = measure(d / "example_ct.nii.gz", d / "example_seg_fast_force_split.nii.gz", map_kind="ct").levels
    assert sorted(set(table["segment"])) == ["autochthon_left", "autochthon_right", "iliopsoas_left", "iliopsoas_right"]
    assert sorted(set(table["level"])) == ["L3/4", "L4/5", "L5/S1"]
    assert (table["n_voxels"] > 0).all()


def test_totalsegmentator_ct_per_slice_regression(ts_result):
    _d, res = ts_result
    sl = res.slices.set_index(["segment", "slice_index"])
    for k, expected in TS_REGRESSION.items():
        for name, (csa, hu) in expected.items():
            row = sl.loc[(name, k)]
            assert row["csa_mm2"] == pytest.approx(csa, abs=0.5)
            assert row["mean"] == pytest.approx(hu, abs=0.05)
            assert row["unit"] == "HU"
    assert ("iliopsoas_left", 96) not in sl.index  # README: 0 mm2 at L1


def test_totalsegmentator_levels_from_vertebra_masks(ts_result):
    d, res = ts_result
    seg = sitk.GetArrayFromImage(sitk.ReadImage(str(d / "example_seg_fast_force_split.nii.gz")))
    table = res.levels
    # TotalSegmentator also labels the gluteal muscles: every muscle is measured
    assert {"autochthon", "iliopsoas", "gluteus_maximus"} <= set(table["muscle"])
    assert "vertebrae_L3" not in set(table["segment"])
    table = table[table["muscle"].isin(["autochthon", "iliopsoas"])]
    assert set(table["level_source"]) == {"vertebra_masks"}
    # independent truth: the disc point is the midpoint of the adjacent vertebra centroids; the
    # grid's k axis is the LPS z axis (direction diag(-1, -1, 1)), so the level slice is the
    # rounded mean of the two centroid k indices.
    ts_values = {"L1": 31, "L2": 30, "L3": 29, "L4": 28, "L5": 27}  # TotalSegmentator v2 'total'
    ck = {name: np.argwhere(seg == v)[:, 0].mean() for name, v in ts_values.items()}
    for upper, lower, level in (("L1", "L2", "L1/2"), ("L2", "L3", "L2/3"), ("L3", "L4", "L3/4"), ("L4", "L5", "L4/5")):
        mid = (ck[upper] + ck[lower]) / 2
        rows = table[table["level"] == level]
        assert len(rows) == 4, level
        assert (rows["slice_index"] == int(np.floor(mid + 0.5))).all()
        np.testing.assert_allclose(rows["slice_offset_mm"], (mid - np.floor(mid + 0.5)) * 3.0, atol=1e-6)
    # every row's CSA equals the per-slice table at that slice
    sl = res.slices.set_index(["segment", "slice_index"])["csa_mm2"]
    for _, row in table[table["n_voxels"] > 0].iterrows():
        assert row["csa_mm2"] == pytest.approx(sl.loc[(row["segment"], row["slice_index"])])


def test_dicom_series_with_flipped_labelmap(realdata):
    """A DICOM CT series with a TotalSegmentator labelmap stored with a flipped y axis:
    same array size, same physical region -> aligned in physical space."""
    d = realdata / "totalsegmentator"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = measure(d / "example_ct_dicom", d / "example_seg_dicom.nii.gz", convention="totalsegmentator",
                      map_kind="scalar", unit="HU", per_slice=True, levels="all", on_empty="keep")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(d / "example_ct_dicom")))
    ct = reader.Execute()
    seg = sitk.ReadImage(str(d / "example_seg_dicom.nii.gz"))
    ct_arr = sitk.GetArrayFromImage(ct).astype(np.float64)
    # independent alignment: flip the label array's y (j) axis, as its header says
    lab = sitk.GetArrayFromImage(seg)[:, ::-1, :]
    sl = res.slices.set_index(["segment", "slice_index"])
    area = ct.GetSpacing()[0] * ct.GetSpacing()[1]
    for name, value in (("autochthon_left", 86), ("autochthon_right", 87)):
        for k in (0, 7, 19):
            mask = lab[k] == value
            assert sl.loc[(name, k), "csa_mm2"] == pytest.approx(mask.sum() * area)
            assert sl.loc[(name, k), "mean"] == pytest.approx(ct_arr[k][mask].mean())

"""Tissue composition through measure(): Dixon, CT windows, T1/T2 classification.

Each phantom writes known voxel values into the ROIs of the 2-D phantom's
segmentation; the expected numbers are computed here with plain numpy on the
written arrays.
"""
import json
import warnings

import numpy as np
import pytest
import SimpleITK as sitk

from ParaspinalFatLib import measure, measure_case
from ParaspinalFatLib.errors import InputError
from ParaspinalFatLib.phantom import make_phantom
from ParaspinalFatLib.segmentation import Segment

AREA = 1.25 * 1.3  # phantom default in-plane spacing


@pytest.fixture(scope="module")
def ph():
    return make_phantom(mode="2d", crop_segmentation=False)


def _image_like(ph, arr):
    img = sitk.GetImageFromArray(arr)
    img.CopyInformation(ph.image)
    return img


def _masks(ph):
    seg = ph.segmentation
    return {s.name: seg.layers[0] == s.label_value for s in seg.segments}


# ----------------------------------------------------------------------------- Dixon
def test_dixon_two_aggregations_and_noise_floor(ph):
    rng = np.random.default_rng(3)
    shape = sitk.GetArrayFromImage(ph.image).shape
    fat = rng.uniform(20, 200, shape).astype(np.float32)
    water = rng.uniform(50, 900, shape).astype(np.float32)
    masks = _masks(ph)
    m = masks["MF_L_L4/5"]
    idx = np.argwhere(m)
    fat[tuple(idx[:5].T)] = 0.0
    water[tuple(idx[:5].T)] = 0.0  # F + W = 0: excluded, never divided
    fat[tuple(idx[5:9].T)] = 1.0
    water[tuple(idx[5:9].T)] = 2.0  # F + W = 3 < floor 10: excluded
    fat[tuple(idx[9:12].T)] = 900.0
    water[tuple(idx[9:12].T)] = 100.0  # clearly fat voxels (FF 90 %)
    res = measure(None, ph.segmentation, map_kind="dixon", fat=_image_like(ph, fat),
                  water=_image_like(ph, water), noise_floor=10.0)
    row = res.levels.set_index("segment").loc["MF_L_L4/5"]
    f, w = fat[m].astype(float), water[m].astype(float)
    keep = (f + w) >= 10.0
    ff = 100 * f[keep] / (f[keep] + w[keep])
    assert row["n_voxels"] == m.sum()
    assert row["n_below_noise"] == 9
    assert row["n_nan"] == 0
    assert row["fat_fraction_pct"] == pytest.approx(ff.mean(), rel=1e-12)
    assert row["ff_signal_weighted_pct"] == pytest.approx(100 * f[keep].sum() / (f[keep] + w[keep]).sum(), rel=1e-12)
    assert row["fat_fraction_pct"] != pytest.approx(row["ff_signal_weighted_pct"], rel=1e-3)  # not interchangeable
    assert row["fat_csa_mm2"] == pytest.approx((ff >= 50).sum() * AREA)
    assert row["lean_csa_mm2"] == pytest.approx((ff < 50).sum() * AREA)
    assert row["csa_mm2"] == pytest.approx(m.sum() * AREA)
    assert row["unit"] == "%" and row["map_kind"] == "dixon"
    assert json.loads(row["method_params"])["noise_floor"] == 10.0


def test_dixon_needs_both_images(ph):
    with pytest.raises(InputError, match="water"):
        measure_case(ph.image, ph.segmentation, map_kind="dixon")


MYO_NAMES = {1: "erector_spinae_right", 2: "multifidus_right", 3: "multifidus_left", 4: "erector_spinae_left"}
MYO_FF = {1: (0.1457, 0.1321), 2: (0.1601, 0.1491), 3: (0.1382, 0.1285), 4: (0.1358, 0.1222)}  # FF_sum, mean voxel FF


def test_myosegmentum_dixon_both_aggregations(realdata):
    d = realdata / "myosegmentum"
    with pytest.warns(UserWarning, match="assuming the same voxel grid"):
        res = measure(None, d / "TUM01_label_L2-L5.nii.gz", map_kind="dixon", fat=d / "TUM01_fat_L2-L5.nii.gz",
                      water=d / "TUM01_water_L2-L5.nii.gz", assume_same_grid=True, label_names=MYO_NAMES,
                      whole_roi=True)
    rois = res.rois.set_index("segment")
    for value, (ff_sum, ff_mean) in MYO_FF.items():
        row = rois.loc[MYO_NAMES[value]]
        assert row["ff_signal_weighted_pct"] == pytest.approx(ff_sum * 100, abs=0.005)
        assert row["fat_fraction_pct"] == pytest.approx(ff_mean * 100, abs=0.005)
    with pytest.raises(InputError, match="assume-same-grid"):
        measure(None, d / "TUM01_label_L2-L5.nii.gz", map_kind="dixon", fat=d / "TUM01_fat_L2-L5.nii.gz",
                water=d / "TUM01_water_L2-L5.nii.gz", label_names=MYO_NAMES, whole_roi=True)


# ----------------------------------------------------------------------------- CT
def test_ct_windows_exact_counts_and_boundaries(ph):
    rng = np.random.default_rng(5)
    shape = sitk.GetArrayFromImage(ph.image).shape
    hu = rng.integers(-300, 300, shape).astype(np.int16)
    m = _masks(ph)["ES_R_L3/4"]
    idx = np.argwhere(m)
    # boundary values: -191 undefined, -190 fat, -30 fat, -29 lean, 150 lean, 151 undefined
    for n, v in enumerate((-191, -190, -30, -29, 150, 151)):
        hu[tuple(idx[n])] = v
    img = _image_like(ph, hu)
    res = measure(img, ph.segmentation, map_kind="ct", myosteatosis_cutoff_hu=41.0)
    row = res.levels.set_index("segment").loc["ES_R_L3/4"]
    v = hu[m].astype(float)
    fat = (v >= -190) & (v <= -30)
    lean = (v >= -29) & (v <= 150)
    assert row["fat_csa_mm2"] == pytest.approx(fat.sum() * AREA)
    assert row["lean_csa_mm2"] == pytest.approx(lean.sum() * AREA)
    assert row["undefined_csa_mm2"] == pytest.approx((~fat & ~lean).sum() * AREA)
    assert row["fat_area_ratio"] == pytest.approx(fat.sum() / v.size)
    assert row["mean"] == pytest.approx(v.mean())
    assert row["mean_muscle_window"] == pytest.approx(v[lean].mean())
    assert row["myosteatosis"] == float(v[lean].mean() < 41.0)
    assert np.isnan(row["fat_fraction_pct"]) and row["unit"] == "HU"
    # custom windows are parameters, written to the table
    res2 = measure(img, ph.segmentation, map_kind="ct", fat_window=(-150, -50), muscle_window=(0, 100))
    row2 = res2.levels.set_index("segment").loc["ES_R_L3/4"]
    assert row2["fat_csa_mm2"] == pytest.approx(((v >= -150) & (v < -50)).sum() * AREA)
    assert json.loads(row2["method_params"])["fat_window"] == [-150.0, -50.0]
    assert np.isnan(row2["myosteatosis"])


def test_ct_overlapping_windows_refused(ph):
    with pytest.raises(InputError, match="overlap"):
        measure_case(ph.image, ph.segmentation, map_kind="ct", fat_window=(-190, 0), muscle_window=(-29, 150))


# ----------------------------------------------------------------------------- T1 / T2
def _t1_case(ph, fat_share=0.3, seed=11):
    """Muscle N(300, 20), fat N(1000, 30) inside every ROI; returns the image and the true fat masks."""
    rng = np.random.default_rng(seed)
    shape = sitk.GetArrayFromImage(ph.image).shape
    img = rng.normal(150, 10, shape)
    truth = {}
    for name, m in _masks(ph).items():
        n = int(m.sum())
        is_fat = rng.random(n) < fat_share
        vals = np.where(is_fat, rng.normal(1000, 30, n), rng.normal(300, 20, n))
        img[m] = vals
        truth[name] = int(is_fat.sum())
    return _image_like(ph, img.astype(np.float32)), truth


@pytest.mark.parametrize("classifier,n_classes", [("gmm", 2), ("kmeans", 2), ("otsu", 2), ("fcm", 2)])
def test_t1_classifiers_find_the_true_fat_area(ph, classifier, n_classes):
    img, truth = _t1_case(ph)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = measure_case(img, ph.segmentation, map_kind="t1", classifier=classifier, n_classes=n_classes)
    for _, row in table.iterrows():
        true_fat_csa = truth[row["segment"]] * AREA
        assert row["fat_csa_mm2"] == pytest.approx(true_fat_csa, rel=0.02), row["segment"]
        assert row["fat_csa_mm2"] + row["lean_csa_mm2"] + row["undefined_csa_mm2"] == pytest.approx(row["csa_mm2"])
        assert row["fat_area_ratio"] * row["csa_mm2"] == pytest.approx(row["fat_csa_mm2"])
        assert np.isfinite(row["threshold_high"])
        assert json.loads(row["method_params"])["classifier"] == classifier
    psoas = table[table["muscle"] == "psoas"]
    assert psoas["warnings"].str.contains("psoas").all()
    assert not table.loc[table["muscle"] != "psoas", "warnings"].str.contains("psoas").any()


def test_t1_gmm_three_classes_partial_volume(ph):
    """Default GMM with 3 classes: fat, a partial-volume middle class ("undefined") and lean."""
    rng = np.random.default_rng(21)
    shape = sitk.GetArrayFromImage(ph.image).shape
    img = rng.normal(150, 10, shape)
    truth = {}
    for name, m in _masks(ph).items():
        n = int(m.sum())
        cls = rng.choice(3, size=n, p=[0.55, 0.15, 0.30])  # lean, partial volume, fat
        img[m] = np.choose(cls, [rng.normal(300, 20, n), rng.normal(650, 25, n), rng.normal(1000, 30, n)])
        truth[name] = ((cls == 2).sum(), (cls == 1).sum())
    table = measure_case(_image_like(ph, img.astype(np.float32)), ph.segmentation, map_kind="t1")
    for _, row in table.iterrows():
        n_fat, n_mid = truth[row["segment"]]
        assert row["fat_csa_mm2"] == pytest.approx(n_fat * AREA, rel=0.02)
        assert row["undefined_csa_mm2"] == pytest.approx(n_mid * AREA, rel=0.10)
        assert row["threshold_low"] < row["threshold_high"]


def test_t1_kmeans_on_a_fat_free_roi_is_flagged(ph):
    """k-means always splits; a muscle-only ROI must carry an overlap warning."""
    rng = np.random.default_rng(4)
    arr = rng.normal(300, 25, sitk.GetArrayFromImage(ph.image).shape).astype(np.float32)
    table = measure_case(_image_like(ph, arr), ph.segmentation, map_kind="t1", classifier="kmeans", n_classes=2)
    assert table["warnings"].str.contains("no clearly separate fat population").all()
    img, _ = _t1_case(ph)  # with a real fat population: no such warning
    table = measure_case(img, ph.segmentation, map_kind="t1", classifier="kmeans", n_classes=2)
    assert not table["warnings"].str.contains("no clearly separate").any()


def test_t1_single_intensity_roi_is_a_row_message_not_a_crash(ph):
    img, _ = _t1_case(ph)
    arr = sitk.GetArrayFromImage(img)
    arr[_masks(ph)["MF_R_L5/S1"]] = 400.0
    table = measure_case(_image_like(ph, arr), ph.segmentation, map_kind="t1", n_classes=2).set_index("segment")
    row = table.loc["MF_R_L5/S1"]
    assert "not classified" in row["warnings"]
    assert np.isnan(row["fat_csa_mm2"]) or row["fat_csa_mm2"] == 0
    assert row["csa_mm2"] == pytest.approx(_masks(ph)["MF_R_L5/S1"].sum() * AREA)
    assert table.loc["MF_L_L5/S1", "warnings"] == ""


def test_t1_reference_fat_segment(ph):
    img, truth = _t1_case(ph)
    arr = sitk.GetArrayFromImage(img)
    seg = ph.segmentation
    layers = seg.layers.copy()
    rng = np.random.default_rng(2)
    # a subcutaneous fat ROI on each level slice, brighter than nothing else
    for k in (10, 18, 26):
        layers[0, k, 2:6, 40:80] = 99
        arr[k, 2:6, 40:80] = rng.normal(1000, 30, (4, 40))
    seg2 = seg.with_layers(layers, seg.geometry)
    seg2.segments = list(seg.segments) + [Segment("subcutaneous_fat", 0, 99)]
    # fat in the ROIs has the reference's distribution: mean - 3 SD keeps 99.9 % of it
    table = measure_case(_image_like(ph, arr), seg2, map_kind="t1", classifier="reference",
                         reference_segment="subcutaneous_fat", classifier_params={"k": 3})
    assert "subcutaneous_fat" not in set(table["segment"])
    for _, row in table.iterrows():
        assert row["fat_csa_mm2"] == pytest.approx(truth[row["segment"]] * AREA, rel=0.02)
    with pytest.raises(InputError, match="subcutaneous"):
        measure_case(_image_like(ph, arr), ph.segmentation, map_kind="t1", classifier="reference",
                     reference_segment="subcutaneous_fat")


def test_dixon_float_images_from_files(ph, tmp_path):
    """Float water/fat files: the arrays must stay valid after their images are freed."""
    shape = sitk.GetArrayFromImage(ph.image).shape
    paths = {}
    for name, value in (("fat", 20.0), ("water", 80.0)):
        img = _image_like(ph, np.full(shape, value, np.float32))
        paths[name] = tmp_path / f"{name}.nii.gz"
        sitk.WriteImage(img, str(paths[name]))
    table = measure_case(None, ph.segmentation, map_kind="dixon", fat=paths["fat"], water=paths["water"])
    np.testing.assert_allclose(table["fat_fraction_pct"], 20.0, rtol=1e-6)
    np.testing.assert_allclose(table["ff_signal_weighted_pct"], 20.0, rtol=1e-6)
    assert (table["n_below_noise"] == 0).all()


def test_image_array_keeps_its_image_alive():
    import gc

    from ParaspinalFatLib.io.images import image_array

    def make():
        return image_array(sitk.GetImageFromArray(np.full((20, 64, 64), 123.0, np.float32)))

    a = make()
    gc.collect()
    junk = [sitk.GetImageFromArray(np.full((20, 64, 64), -5.0, np.float32)) for _ in range(20)]  # noqa: F841
    assert np.unique(a).tolist() == [123.0]
    assert not a.flags.writeable

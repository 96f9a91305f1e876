"""Dixon water and fat images (ParaspinalFatLib.composition.dixon): voxel FF, noise floor, two aggregations."""
import json

import numpy as np
import pytest
import SimpleITK as sitk

from ParaspinalFatLib import measure, measure_case
from ParaspinalFatLib.composition.base import FAT, LEAN, GroupContext
from ParaspinalFatLib.composition.dixon import DixonMethod
from ParaspinalFatLib.errors import InputError


def test_dixon_two_aggregations_and_noise_floor(ph, masks, image_like, area):
    rng = np.random.default_rng(3)
    shape = sitk.GetArrayFromImage(ph.image).shape
    fat = rng.uniform(20, 200, shape).astype(np.float32)
    water = rng.uniform(50, 900, shape).astype(np.float32)
    m = masks["MF_L_L4/5"]
    idx = np.argwhere(m)
    fat[tuple(idx[:5].T)] = 0.0
    water[tuple(idx[:5].T)] = 0.0  # F + W = 0: excluded, never divided
    fat[tuple(idx[5:9].T)] = 1.0
    water[tuple(idx[5:9].T)] = 2.0  # F + W = 3 < floor 10: excluded
    fat[tuple(idx[9:12].T)] = 900.0
    water[tuple(idx[9:12].T)] = 100.0  # clearly fat voxels (FF 90 %)
    res = measure(None, ph.segmentation, map_kind="dixon", fat=image_like(fat),
                  water=image_like(water), noise_floor=10.0)
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
    assert row["fat_csa_mm2"] == pytest.approx((ff >= 50).sum() * area)
    assert row["lean_csa_mm2"] == pytest.approx((ff < 50).sum() * area)
    assert row["csa_mm2"] == pytest.approx(m.sum() * area)
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


def test_dixon_float_images_from_files(ph, image_like, tmp_path):
    """Float water/fat files: the arrays must stay valid after their images are freed."""
    shape = sitk.GetArrayFromImage(ph.image).shape
    paths = {}
    for name, value in (("fat", 20.0), ("water", 80.0)):
        img = image_like(np.full(shape, value, np.float32))
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


# ----------------------------------------------------------------------------- the class itself
def test_default_noise_floor_is_a_fraction_of_the_robust_maximum():
    rng = np.random.default_rng(8)
    fat = rng.uniform(0, 300, (10, 20, 20))
    water = rng.uniform(0, 700, (10, 20, 20))
    fat[0, 0, 0] = np.nan  # ignored
    method = DixonMethod.from_options(fat, water, noise_floor_fraction=0.05)
    total = (fat + water).ravel()
    assert method.params["noise_floor"] == pytest.approx(0.05 * np.percentile(total[np.isfinite(total)], 99.5))
    assert method.params["noise_floor_rule"] == "0.05 x 99.5th percentile of F+W"
    assert DixonMethod.from_options(fat, water, noise_floor=3.0).params["noise_floor_rule"] == "declared"


def test_voxel_ff_noise_floor_and_threshold_boundary():
    method = DixonMethod({"fat_threshold_pct": 40.0, "noise_floor": 10.0, "noise_floor_rule": "declared"})
    f = np.array([4.0, 6.0, 40.0, 1.0, 0.0, np.nan], np.float32)
    w = np.array([6.0, 4.0, 60.0, 2.0, 0.0, 5.0], np.float32)
    ff = method.voxel_values(f, w)
    np.testing.assert_allclose(ff[:3], [40.0, 60.0, 40.0])
    assert np.isnan(ff[3:]).all()  # below the floor, 0/0, NaN
    np.testing.assert_array_equal(method.below_noise(f, w), [False, False, False, True, True, True])
    groups = np.zeros(f.size, np.intp)
    codes, thresholds, _ = method.classify(ff, groups, 1, GroupContext(["m"]))
    assert codes[:3].tolist() == [FAT, FAT, FAT]  # 40 % is on the threshold: fat
    assert thresholds["threshold_high"].tolist() == [40.0]
    codes2, _, _ = DixonMethod({"fat_threshold_pct": 50.0, "noise_floor": 10.0}).classify(ff, groups, 1,
                                                                                        GroupContext(["m"]))
    assert codes2[:3].tolist() == [LEAN, FAT, LEAN]


@pytest.mark.parametrize("n_zero", [1, 5, 17])
def test_zero_signal_is_below_noise_even_with_a_zero_noise_floor(ph, masks, image_like, n_zero):
    """F + W = 0 has no fat fraction: with noise_floor=0 it is counted in n_below_noise, not lost."""
    rng = np.random.default_rng(n_zero)
    shape = sitk.GetArrayFromImage(ph.image).shape
    fat = rng.uniform(20, 200, shape).astype(np.float32)
    water = rng.uniform(50, 900, shape).astype(np.float32)
    m = masks["ES_R_L3/4"]
    idx = tuple(np.argwhere(m)[:n_zero].T)
    fat[idx] = 0.0
    water[idx] = 0.0
    res = measure(None, ph.segmentation, map_kind="dixon", fat=image_like(fat), water=image_like(water),
                  noise_floor=0.0)
    row = res.levels.set_index("segment").loc["ES_R_L3/4"]
    f, w = fat[m].astype(float), water[m].astype(float)
    keep = (f + w) > 0
    ff = 100 * f[keep] / (f[keep] + w[keep])
    assert row["n_below_noise"] == n_zero and row["n_nan"] == 0
    assert row["fat_fraction_pct"] == pytest.approx(ff.mean(), rel=1e-12)
    classified = (row["fat_csa_mm2"] + row["lean_csa_mm2"] + row["undefined_csa_mm2"]) / row["pixel_area_mm2"]
    assert classified + row["n_below_noise"] == pytest.approx(row["n_voxels"])


def test_noise_floor_of_integer_images_equals_that_of_their_float64_copies():
    # the pipeline keeps integer Dixon images in their own type: only the sampled voxels are converted
    rng = np.random.default_rng(9)
    fat = rng.integers(0, 300, (40, 180, 200)).astype(np.uint16)  # 1.44 M voxels
    water = rng.integers(0, 700, (40, 180, 200)).astype(np.uint16)
    got = DixonMethod.from_options(fat, water).params
    assert got == DixonMethod.from_options(fat.astype(np.float64), water.astype(np.float64)).params
    assert got["noise_floor"] > 0.0

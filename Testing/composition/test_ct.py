"""CT HU windows (ParaspinalFatLib.composition.ct): exact counts, half-open boundaries, myosteatosis."""
import json

import numpy as np
import pytest
import SimpleITK as sitk

from ParaspinalFatLib import measure, measure_case
from ParaspinalFatLib.composition.base import FAT, LEAN, UNDEFINED, GroupContext
from ParaspinalFatLib.composition.ct import CT_FAT_WINDOW, CT_MUSCLE_WINDOW, CtMethod
from ParaspinalFatLib.errors import InputError


def test_ct_windows_exact_counts_and_boundaries(ph, masks, image_like, area):
    rng = np.random.default_rng(5)
    shape = sitk.GetArrayFromImage(ph.image).shape
    hu = rng.integers(-300, 300, shape).astype(np.int16)
    m = masks["ES_R_L3/4"]
    idx = np.argwhere(m)
    # boundary values: -191 undefined, -190 fat, -30 fat, -29 lean, 150 lean, 151 undefined
    for n, v in enumerate((-191, -190, -30, -29, 150, 151)):
        hu[tuple(idx[n])] = v
    img = image_like(hu)
    res = measure(img, ph.segmentation, map_kind="ct", myosteatosis_cutoff_hu=41.0)
    row = res.levels.set_index("segment").loc["ES_R_L3/4"]
    v = hu[m].astype(float)
    fat = (v >= -190) & (v <= -30)
    lean = (v >= -29) & (v <= 150)
    assert row["fat_csa_mm2"] == pytest.approx(fat.sum() * area)
    assert row["lean_csa_mm2"] == pytest.approx(lean.sum() * area)
    assert row["undefined_csa_mm2"] == pytest.approx((~fat & ~lean).sum() * area)
    assert row["fat_area_ratio"] == pytest.approx(fat.sum() / v.size)
    assert row["mean"] == pytest.approx(v.mean())
    assert row["mean_muscle_window"] == pytest.approx(v[lean].mean())
    assert row["myosteatosis"] == float(v[lean].mean() < 41.0)
    assert np.isnan(row["fat_fraction_pct"]) and row["unit"] == "HU"
    # custom windows are parameters, written to the table
    res2 = measure(img, ph.segmentation, map_kind="ct", fat_window=(-150, -50), muscle_window=(0, 100))
    row2 = res2.levels.set_index("segment").loc["ES_R_L3/4"]
    assert row2["fat_csa_mm2"] == pytest.approx(((v >= -150) & (v < -50)).sum() * area)
    assert json.loads(row2["method_params"])["fat_window"] == [-150.0, -50.0]
    assert np.isnan(row2["myosteatosis"])


def test_ct_overlapping_windows_refused(ph):
    with pytest.raises(InputError, match="overlap"):
        measure_case(ph.image, ph.segmentation, map_kind="ct", fat_window=(-190, 0), muscle_window=(-29, 150))


# ----------------------------------------------------------------------------- the class itself
@pytest.mark.parametrize("window,needle", [
    ((-190,), "two numbers"), ("ab", "two numbers"), (None, "two numbers"), ((-30, -190), "low < high"),
])
def test_invalid_window_refused(window, needle):
    with pytest.raises(InputError, match=needle):
        CtMethod.from_options(fat_window=window)


def test_default_windows_are_the_integer_literature_windows():
    """-190..-30 HU fat and -29..150 HU muscle, inclusive on integers = half-open windows."""
    hu = np.arange(-300, 301, dtype=float)
    method = CtMethod.from_options()
    codes, thresholds, notes = method.classify(hu, np.zeros(hu.size, np.intp), 1, GroupContext(["m"]))
    np.testing.assert_array_equal(hu[codes == FAT], np.arange(-190, -29))
    np.testing.assert_array_equal(hu[codes == LEAN], np.arange(-29, 151))
    assert (codes == UNDEFINED).sum() == hu.size - 161 - 180
    assert np.isnan(thresholds["threshold_low"]).all() and np.isnan(thresholds["threshold_high"]).all()
    assert notes == [[]]
    assert method.params["fat_window"] == CT_FAT_WINDOW and method.params["muscle_window"] == CT_MUSCLE_WINDOW


def test_muscle_window_mean_and_myosteatosis_per_group():
    hu = np.array([30.0, 50.0, 60.0, -100.0, 200.0, -100.0])
    groups = np.array([0, 0, 1, 1, 1, 2])
    method = CtMethod.from_options(myosteatosis_cutoff_hu=41.0)
    codes, _, _ = method.classify(hu, groups, 3, GroupContext(["a", "b", "c"]))
    extra = method.extra_columns(groups, 3, hu, hu, None, codes)
    np.testing.assert_allclose(extra["mean_muscle_window"], [40.0, 60.0, np.nan])
    np.testing.assert_array_equal(extra["myosteatosis"], [1.0, 0.0, np.nan])  # group 2: no lean voxel
    assert np.isnan(extra["ff_signal_weighted_pct"]).all()
    no_cutoff = CtMethod.from_options().extra_columns(groups, 3, hu, hu, None, codes)
    assert np.isnan(no_cutoff["myosteatosis"]).all()

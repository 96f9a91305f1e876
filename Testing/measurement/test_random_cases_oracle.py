"""``measure`` on random cases against an independent count over the full arrays.

The speed work of issue #11 (label runs, slab-wise gathering, narrow types for quantiles,
grouped statistics) must not change a number. These cases are random in every way that
matters to that code: the grid (size, spacing, origin, which array axis runs cranio-caudal and
the signs of the axes), the image type (float32 with NaN and infinities, float64, int16,
uint8), the labelmap type and label values, and the shapes of the ROIs (boxes, scattered single
voxels, rows of alternating labels). The levels come from three vertebra slabs. PDFF, CT and
Dixon cases also check the fat / lean split on values placed on the thresholds.

Every per-slice, whole-ROI and per-level figure is recomputed here with plain numpy on the
boolean mask of each label over the whole arrays (``np.mean``, ``np.std(ddof=1)``,
``np.percentile`` within the last bits), and the slices of the levels from the vertebrae's
mean voxel indices. For images without NaN, SimpleITK's ``LabelIntensityStatisticsImageFilter``
(another implementation) checks each ROI's voxel count, volume, mean and SD as well.
"""
import warnings

import numpy as np
import pytest
import SimpleITK as sitk

from ParaspinalFatLib import measure
from voxel_oracle import check_group_stats, group_stats

MUSCLES = ("multifidus_left", "multifidus_right", "erector_spinae_left", "erector_spinae_right",
           "psoas_left", "psoas_right")
VERTEBRAE = ("L3", "L4", "L5")  # cranial to caudal
IMAGE_TYPES = (np.float32, np.float64, np.int16, np.uint8)


def _case(seed, kind="scalar"):
    """A random case: image and labelmap arrays (numpy order k, j, i), geometry, names.

    ``kind`` ``"pdff"``: a float32 PDFF map in % (-5..105, with NaN); ``"ct"``: int16 HU with
    voxels in the fat window, the muscle window and outside both; else any of IMAGE_TYPES.
    """
    rng = np.random.default_rng(seed)
    dtype = {"pdff": np.float32, "ct": np.int16}.get(kind, IMAGE_TYPES[seed % len(IMAGE_TYPES)])
    # ITK axis a runs along LPS axis lps_of[a], with sign signs[a]; the one along z is the slice axis
    lps_of = rng.permutation(3)
    signs = rng.choice([-1.0, 1.0], 3)
    direction = np.zeros((3, 3))
    direction[lps_of, np.arange(3)] = signs
    slice_axis = int(np.flatnonzero(lps_of == 2)[0])
    size = [int(rng.integers(9, 24)) for _ in range(3)]
    size[slice_axis] = int(rng.integers(14, 22))
    spacing = rng.uniform(0.4, 4.0, 3)
    origin = rng.uniform(-150.0, 150.0, 3)
    shape = tuple(size[::-1])
    axis = 2 - slice_axis  # the slice axis in numpy order

    if kind == "pdff":  # noise around 0 and 100 %, fat near the 50 % threshold, and NaN
        image = rng.choice([0.0, 20.0, 50.0, 50.0, 80.0, 100.0], shape) + rng.uniform(-5.0, 5.0, shape)
        image = np.where(rng.random(shape) < 0.1, 50.0, image).astype(np.float32)  # exactly at the threshold
        image.reshape(-1)[rng.choice(image.size, image.size // 30, replace=False)] = np.nan
    elif kind == "dixon":  # the fat image; the water image is made by _water
        image = rng.choice([0.0, 5.0, 40.0, 100.0, 300.0], shape) + rng.uniform(0.0, 20.0, shape)
        image = image.astype(np.float32)
    elif kind == "ct":  # air, fat, muscle, bone; the window edges themselves
        image = rng.choice([-1000, -190, -100, -30, -29, 0, 50, 150, 151, 400], shape)
        image = (image + np.where(rng.random(shape) < 0.5, 0, rng.integers(-8, 9, shape))).astype(np.int16)
    elif dtype in (np.float32, np.float64):
        image = rng.normal(40.0, 25.0, shape).astype(dtype)
        if dtype == np.float32:  # not measurable voxels: excluded and counted in n_nan
            flat = image.reshape(-1)
            bad = rng.choice(flat.size, max(3, flat.size // 50), replace=False)
            flat[bad] = rng.choice([np.nan, np.inf, -np.inf], bad.size)
    elif dtype == np.int16:
        image = rng.integers(-300, 400, shape).astype(np.int16)
    else:
        image = rng.integers(0, 256, shape).astype(np.uint8)

    wide = seed % 3 == 0  # uint16 labels with values above 255, else uint8
    label_type = np.uint16 if wide else np.uint8
    values = rng.choice(np.arange(1, 4000 if wide else 256), len(VERTEBRAE) + len(MUSCLES), replace=False)
    labels = np.zeros(shape, dtype=label_type)

    def region(first, last, margin=0):
        """Index of a random box whose slice range is first..last (inclusive), ``margin`` voxels
        or more from the in-plane edges of the grid."""
        box = []
        for a in range(3):
            if a == axis:
                box.append(slice(first, last + 1))
            else:
                lo = int(rng.integers(margin, shape[a] - 2 - margin))
                box.append(slice(lo, int(rng.integers(lo + 1, shape[a] + 1 - margin))))
        return tuple(box)

    # muscles: one to three boxes each, one to three boxes each (later ones overwrite earlier ones)
    for m in range(len(MUSCLES)):
        for _ in range(int(rng.integers(1, 4))):
            a, b = sorted(int(x) for x in rng.integers(0, shape[axis], 2))
            labels[region(a, b)] = values[len(VERTEBRAE) + m]
    # then vertebra slabs of 3 slices, 1 slice apart; L3 most superior (LPS +z), over the muscles
    # (off the edges of the grid: a vertebra cut by the field of view is not used for levels)
    start = int(rng.integers(1, shape[axis] - 11))
    order = VERTEBRAE[::-1] if signs[slice_axis] > 0 else VERTEBRAE  # in increasing slice index
    for n, level in enumerate(order):
        labels[region(start + 4 * n, start + 4 * n + 2, margin=1)] = values[VERTEBRAE.index(level)]
    # then scattered single voxels of any muscle (also inside the vertebrae)
    flat = labels.reshape(-1)
    spots = rng.choice(flat.size, flat.size // 40, replace=False)
    flat[spots] = rng.choice(values[len(VERTEBRAE):], spots.size)
    names = {int(v): name for v, name in zip(values, VERTEBRAE + MUSCLES)}
    geometry = {"spacing": spacing, "origin": origin, "direction": direction, "axis": axis,
                "slice_axis": slice_axis}
    return image, labels, names, geometry


def _water(fat, seed):
    """A Dixon water image for ``fat``: F + W from below the noise floor (20) to large, F = W
    exactly (50 %) at some voxels, and NaN in either image at a few."""
    rng = np.random.default_rng(seed + 1000)
    water = rng.choice([0.0, 3.0, 60.0, 250.0], fat.shape) + rng.uniform(0.0, 20.0, fat.shape)
    water = np.where(rng.random(fat.shape) < 0.1, fat, water).astype(np.float32)
    water.reshape(-1)[rng.choice(water.size, water.size // 40, replace=False)] = np.nan
    fat.reshape(-1)[rng.choice(fat.size, fat.size // 40, replace=False)] = np.nan
    return water


def _image(array, geometry):
    img = sitk.GetImageFromArray(array)
    img.SetSpacing([float(s) for s in geometry["spacing"]])
    img.SetOrigin([float(o) for o in geometry["origin"]])
    img.SetDirection([float(d) for d in geometry["direction"].ravel()])
    return img


@pytest.mark.parametrize("seed", range(12))
def test_every_table_equals_an_independent_count_on_random_cases(seed):
    image, labels, names, geometry = _case(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random ROIs lie on any side: side warnings are expected
        res = measure(_image(image, geometry), _image(labels, geometry), map_kind="scalar", label_names=names,
                      per_slice=True, whole_roi=True, levels=["L3/4", "L4/5"], n_slices=3)
    axis, spacing = geometry["axis"], geometry["spacing"]
    in_plane = [a for a in range(3) if a != geometry["slice_axis"]]
    area = float(spacing[in_plane[0]] * spacing[in_plane[1]])
    voxel_ml = float(np.prod(spacing)) / 1000.0
    n_slices = image.shape[axis]
    slice_of = np.indices(image.shape)[axis]  # the slice index of every voxel
    values = image.astype(np.float64)
    by_name = {name: value for value, name in names.items()}

    # whole ROI
    rois = res.rois.set_index("segment")
    assert sorted(rois.index) == sorted(MUSCLES)
    for muscle in MUSCLES:
        mask = labels == by_name[muscle]
        row, where = rois.loc[muscle], f"seed {seed} {muscle} whole ROI"
        check_group_stats(row, group_stats(values[mask]), where)
        per_slice = np.bincount(slice_of[mask], minlength=n_slices)
        present = np.flatnonzero(per_slice)
        np.testing.assert_allclose(row["volume_ml"], mask.sum() * voxel_ml, rtol=1e-12, err_msg=where)
        assert (int(row["n_slices"]), int(row["first_slice"]), int(row["last_slice"])) == (
            present.size, present[0], present[-1]), where
        np.testing.assert_allclose(row["mean_csa_mm2"], mask.sum() * area / present.size, rtol=1e-12, err_msg=where)
        np.testing.assert_allclose(row["max_csa_mm2"], per_slice.max() * area, rtol=1e-12, err_msg=where)

    # per slice: one row per ROI and slice where it has voxels
    slices = res.slices
    for muscle in MUSCLES:
        mask = labels == by_name[muscle]
        got = slices[slices["segment"] == muscle].set_index("slice_index")
        present = np.flatnonzero(np.bincount(slice_of[mask], minlength=n_slices))
        assert list(got.index) == present.tolist(), (seed, muscle)
        for s in present.tolist():
            on = mask & (slice_of == s)
            where = f"seed {seed} {muscle} slice {s}"
            check_group_stats(got.loc[s], group_stats(values[on]), where)
            np.testing.assert_allclose(got.loc[s, "csa_mm2"], on.sum() * area, rtol=1e-12, err_msg=where)
            np.testing.assert_allclose(abs(got.loc[s, "slice_position_mm"]), s * spacing[geometry["slice_axis"]],
                                       rtol=1e-9, atol=1e-9, err_msg=where)

    # per level: the level slice is the one nearest the midpoint of the two vertebrae's centroids
    centre = {level: float(slice_of[labels == by_name[level]].mean()) for level in VERTEBRAE}
    levels = res.levels
    assert sorted(set(levels["level"])) == ["L3/4", "L4/5"]
    for upper, lower in zip(VERTEBRAE[:-1], VERTEBRAE[1:]):
        level = f"{upper}/{lower[1:]}"
        s = int(np.floor((centre[upper] + centre[lower]) / 2.0 + 0.5))
        first, last = max(0, s - 1), min(n_slices - 1, s + 1)
        for muscle in MUSCLES:
            row = levels[(levels["segment"] == muscle) & (levels["level"] == level)]
            assert len(row) == 1, (seed, muscle, level)
            row, where = row.iloc[0], f"seed {seed} {muscle} {level}"
            on = (labels == by_name[muscle]) & (slice_of >= first) & (slice_of <= last)
            assert int(row["slice_index"]) == s and int(row["n_slices"]) == last - first + 1, where
            check_group_stats(row, group_stats(values[on]), where)
            np.testing.assert_allclose(row["csa_mm2"], on.sum() * area / (last - first + 1), rtol=1e-12,
                                       err_msg=where)

    # another implementation: SimpleITK's label statistics (NaN would poison its sums)
    if np.isfinite(values).all():
        f = sitk.LabelIntensityStatisticsImageFilter()
        f.Execute(_image(labels, geometry), _image(image, geometry))
        for muscle in MUSCLES:
            value, row, where = by_name[muscle], rois.loc[muscle], f"seed {seed} {muscle} SimpleITK"
            assert int(row["n_voxels"]) == f.GetNumberOfPixels(value), where
            np.testing.assert_allclose(row["volume_ml"] * 1000.0, f.GetPhysicalSize(value), rtol=1e-9, err_msg=where)
            np.testing.assert_allclose(row["mean"], f.GetMean(value), rtol=1e-9, err_msg=where)
            np.testing.assert_allclose(row["sd"], f.GetStandardDeviation(value), rtol=1e-6, err_msg=where)


def _split(values, kind):
    """Voxel counts of the fat, lean and undefined classes (independent of the library's windows)."""
    if kind in ("pdff", "dixon"):  # fat >= 50 %, else lean; NaN in no class
        return {"fat": int(np.sum(values >= 50.0)), "lean": int(np.sum(values < 50.0)), "undefined": 0}
    # CT: fat -190..-30 HU, muscle -29..150 HU (integer windows), any other value undefined
    fat = int(np.sum((values >= -190) & (values <= -30)))
    lean = int(np.sum((values >= -29) & (values <= 150)))
    return {"fat": fat, "lean": lean, "undefined": values.size - fat - lean}


def _check_split(row, values, n_slices, area, kind, where, suffix="_csa_mm2", scale=1.0, signal=None):
    split = _split(values, kind)
    classified = sum(split.values())
    for name, count in split.items():
        want = count * area / n_slices * scale if classified else np.nan
        np.testing.assert_allclose(row[name + suffix], want, rtol=1e-12, err_msg=f"{where} {name}")
    ratio = row["fat_area_ratio" if suffix == "_csa_mm2" else "fat_volume_ratio"]
    np.testing.assert_allclose(ratio, split["fat"] / classified if classified else np.nan, rtol=1e-12,
                               err_msg=f"{where} fat ratio")
    finite = values[np.isfinite(values)]
    if kind in ("pdff", "dixon"):  # the mean voxel fat fraction
        np.testing.assert_allclose(row["fat_fraction_pct"], finite.mean() if finite.size else np.nan, rtol=1e-11,
                                   err_msg=f"{where} fat_fraction_pct")
    else:  # the mean HU of the voxels in the muscle window
        lean = finite[(finite >= -29) & (finite <= 150)]
        np.testing.assert_allclose(row["mean_muscle_window"], lean.mean() if lean.size else np.nan, rtol=1e-11,
                                   err_msg=f"{where} mean_muscle_window")
    if signal is not None:  # Dixon: 100 x sum F / sum (F + W) over the voxels with a fat fraction
        fat, total = (a[np.isfinite(values)] for a in signal)
        np.testing.assert_allclose(row["ff_signal_weighted_pct"], 100.0 * fat.sum() / total.sum()
                                   if fat.size else np.nan, rtol=1e-11, err_msg=f"{where} ff_signal_weighted_pct")


@pytest.mark.parametrize("kind", ["pdff", "ct", "dixon"])
@pytest.mark.parametrize("seed", range(6))
def test_fat_and_lean_areas_equal_an_independent_count_on_random_cases(seed, kind):
    image, labels, names, geometry = _case(100 + seed, kind)
    options = {"pdff": {"pdff_scale": "0-100"}, "ct": {"ct_units_check": False}}.get(kind, {})
    values = image.astype(np.float64)
    bad = ~np.isfinite(values)
    fat = total = None
    if kind == "dixon":  # the voxel values are the fat fractions 100 F / (F + W), below the noise floor NaN
        water = _water(image, seed)
        bad = ~np.isfinite(image) | ~np.isfinite(water)
        options = {"water": _image(water, geometry), "noise_floor": 20.0}
        fat = image.astype(np.float64)
        total = fat + water
        with np.errstate(invalid="ignore", divide="ignore"):
            values = np.where((total >= 20.0) & (total > 0), 100.0 * fat / total, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = measure(_image(image, geometry), _image(labels, geometry), map_kind=kind, label_names=names,
                      per_slice=True, whole_roi=True, levels=["L3/4", "L4/5"], n_slices=3, **options)
    axis, spacing = geometry["axis"], geometry["spacing"]
    in_plane = [a for a in range(3) if a != geometry["slice_axis"]]
    area = float(spacing[in_plane[0]] * spacing[in_plane[1]])
    voxel_ml = float(np.prod(spacing)) / 1000.0
    slice_of = np.indices(image.shape)[axis]
    by_name = {name: value for value, name in names.items()}
    rois = res.rois.set_index("segment")
    for muscle in MUSCLES:
        mask = labels == by_name[muscle]
        row = rois.loc[muscle]
        _check_split(row, values[mask], 1, voxel_ml, kind, f"{kind} seed {seed} {muscle} whole ROI",
                     suffix="_volume_ml", signal=None if fat is None else (fat[mask], total[mask]))
        check_group_stats(row, group_stats(values[mask], bad[mask]), f"{kind} seed {seed} {muscle} whole ROI")
        for s in np.unique(slice_of[mask]).tolist():
            got = res.slices[(res.slices["segment"] == muscle) & (res.slices["slice_index"] == s)]
            assert len(got) == 1
            _check_split(got.iloc[0], values[mask & (slice_of == s)], 1, area, kind,
                         f"{kind} seed {seed} {muscle} slice {s}")
    levels = res.levels
    assert len(levels) == 2 * len(MUSCLES)
    for _, row in levels.iterrows():
        s, n = int(row["slice_index"]), int(row["n_slices"])
        first, last = max(0, s - 1), min(image.shape[axis] - 1, s + 1)
        assert last - first + 1 == n
        on = (labels == by_name[row["segment"]]) & (slice_of >= first) & (slice_of <= last)
        _check_split(row, values[on], n, area, kind, f"{kind} seed {seed} {row['segment']} {row['level']}",
                     signal=None if fat is None else (fat[on], total[on]))

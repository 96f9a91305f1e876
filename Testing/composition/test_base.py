"""The shared base of the composition methods (ParaspinalFatLib.composition.base)."""
import json

import numpy as np
import pytest

from ParaspinalFatLib.composition import base, classifiers
from ParaspinalFatLib.composition.base import (
    CLASS_NAMES, COMMON_COLUMNS, EXCLUDED, EXTRA_COLUMNS, FAT, FIXED_UNITS, LEAN, SPLIT_COLUMNS, THRESHOLD_COLUMNS,
    UNDEFINED, VALUE_STATISTICS, CompositionMethod, GroupContext, bounded_sample, image_sample,
)
from ParaspinalFatLib.composition.factory import METHOD_CLASSES
from ParaspinalFatLib.composition.scalar import ScalarMethod
from ParaspinalFatLib.errors import InputError
from ParaspinalFatLib.schemas import COMPOSITION_COLUMNS


def test_class_codes_are_distinct_int8_and_shared_with_the_classifiers():
    codes = [LEAN, UNDEFINED, FAT, EXCLUDED]
    assert len(set(codes)) == 4 and all(np.int8(c) == c for c in codes)
    assert set(CLASS_NAMES) == set(codes)
    # classify() of the T1/T2 classifiers returns exactly these codes (3 classes: 0, 1, 2; NaN: excluded)
    got = classifiers.classify(np.array([1.0, 5.0, 9.0, np.nan]), (4.0, 8.0))
    assert got.tolist() == [LEAN, UNDEFINED, FAT, EXCLUDED]
    for name in ("LEAN", "UNDEFINED", "FAT", "EXCLUDED", "INVALID"):  # defined once: in base
        assert name not in vars(classifiers) or getattr(classifiers, name) is getattr(base, name)


def test_column_groups_partition_the_table_columns():
    declared = COMMON_COLUMNS + SPLIT_COLUMNS + ("fat_fraction_pct",) + EXTRA_COLUMNS + THRESHOLD_COLUMNS
    assert sorted(declared) == sorted(COMPOSITION_COLUMNS)  # each table column in exactly one group
    assert set(VALUE_STATISTICS) <= set(COMMON_COLUMNS)
    numeric = set(COMPOSITION_COLUMNS) - {"warnings"}
    # every numeric column has a fixed unit, or is in the unit of the voxel values
    assert numeric - set(FIXED_UNITS) == set(VALUE_STATISTICS) | {"mean_muscle_window"} | set(THRESHOLD_COLUMNS)


@pytest.mark.parametrize("cls", METHOD_CLASSES, ids=lambda c: c.__name__)
def test_every_class_declares_known_columns_and_a_unit_for_each(cls):
    assert cls.kinds and issubclass(cls, CompositionMethod)
    assert set(cls.columns) <= set(COMPOSITION_COLUMNS) - set(COMMON_COLUMNS)
    assert len(set(cls.columns)) == len(cls.columns)
    assert set(cls.value_columns) <= set(COMMON_COLUMNS + cls.columns)
    assert set(VALUE_STATISTICS) <= set(cls.value_columns)
    # a column is either in the voxel-value unit or has a fixed unit; a fixed-unit column in the
    # value unit (fat_fraction_pct is a %) forces that unit
    for c in set(COMMON_COLUMNS + cls.columns) - {"warnings"}:
        assert c in cls.value_columns or c in FIXED_UNITS, (cls.__name__, c)
        if c in cls.value_columns and c in FIXED_UNITS:
            assert cls.unit == FIXED_UNITS[c], (cls.__name__, c)
    split = [c in cls.columns for c in SPLIT_COLUMNS]
    assert all(split) or not any(split)  # the fat / lean split comes whole


class _Nothing(CompositionMethod):
    """A method that only uses the base class's behaviour."""

    kinds = ("nothing",)


def test_base_method_classifies_nothing():
    method = _Nothing()
    values = np.array([1.0, np.nan, 3.0])
    groups = np.array([0, 1, 1])
    codes, thresholds, notes = method.classify(values, groups, 2, GroupContext(["a", "b"]))
    assert codes.dtype == np.int8 and (codes == EXCLUDED).all()
    assert list(thresholds) == list(THRESHOLD_COLUMNS) and all(np.isnan(t).all() for t in thresholds.values())
    assert notes == [[], []]
    extra = method.extra_columns(groups, 2, values, values, None, codes)
    assert list(extra) == list(EXTRA_COLUMNS) and all(v.shape == (2,) and np.isnan(v).all() for v in extra.values())
    assert not method.has_composition and method.filled_columns == COMMON_COLUMNS
    assert (method.kind, method.unit, method.params, method.pdff_scale) == ("nothing", "", {}, "")


def test_kind_must_be_served_by_the_class():
    with pytest.raises(InputError, match="serves map kinds"):
        _Nothing(kind="pdff")
    assert ScalarMethod(unit="s").kind == "scalar"


def test_params_json_is_sorted_plain_json():
    method = ScalarMethod({"b": np.float32(0.5), "a": (1, np.int64(2)), "c": None, "d": np.dtype("f4")})
    text = method.params_json()
    assert list(json.loads(text)) == ["a", "b", "c", "d"]
    assert json.loads(text) == {"a": [1, 2], "b": 0.5, "c": None, "d": "float32"}


@pytest.mark.parametrize("shape,step", [((4, 5, 6), 1), ((300, 300, 80), 2)])
def test_image_sample_strides_large_images_only(shape, step):
    image = np.arange(np.prod(shape), dtype=np.int32).reshape(shape)
    sample = image_sample(image)
    assert sample.dtype == np.float64 and sample.ndim == 1
    assert sample.size <= 2_000_000
    np.testing.assert_array_equal(sample, image[::step, ::step, ::step].ravel())


def test_image_sample_of_an_integer_image_equals_the_sample_of_its_float64_copy():
    # the pipeline keeps integer images in their own type: the sample is converted, with the same values
    image = np.random.default_rng(4).integers(-1024, 3071, (70, 110, 130)).astype(np.int16)  # 1.0 M voxels
    sample = image_sample(image)
    assert sample.dtype == np.float64
    np.testing.assert_array_equal(sample, image_sample(image.astype(np.float64)))


@pytest.mark.parametrize("shape", [(4, 5, 6), (36, 100, 120), (10, 100, 1000)])
def test_bounded_sample_is_the_whole_image_up_to_the_cap(shape):
    image = np.arange(np.prod(shape), dtype=np.int32).reshape(shape) - 7
    sample = bounded_sample(image)
    assert sample.dtype == np.float64
    np.testing.assert_array_equal(sample, image.ravel().astype(np.float64))


def test_bounded_sample_size_grows_without_a_saw_tooth():
    # images of 512 x 512 x n slices: the sample never exceeds the cap and stays near it (the rounded
    # integer stride of image_sample read 5.2 M voxels whole and 10.5 M at 1.3 M)
    sizes = []
    for n in range(4, 401, 3):
        shape = (n, 512, 512)
        sample = bounded_sample(np.broadcast_to(np.float32(1.0), shape))
        assert sample.size <= 1_000_000
        sizes.append(sample.size)
    assert min(sizes) >= 0.97 * 1_000_000
    assert 990 <= bounded_sample(np.zeros((2, 700, 1000)), max_voxels=1000).size <= 1000
    assert bounded_sample(np.zeros((2, 3, 4)), max_voxels=1).size == 1


@pytest.mark.parametrize("shape", [(60, 512, 512), (3, 1000, 1000), (500, 40, 60), (1, 1, 5_000_000)])
def test_bounded_sample_is_spread_evenly_along_every_axis(shape):
    n = int(np.prod(shape))
    image = np.arange(n, dtype=np.int64).reshape(shape)
    sample = bounded_sample(image)
    assert 0.97 * 1_000_000 <= sample.size <= 1_000_000
    flat = sample.astype(np.int64)
    assert np.all(np.diff(flat) > 0)  # distinct voxels, in array order
    np.testing.assert_array_equal(sample, flat)  # exact integers
    # every axis: the sampled indices are the centres of equal parts of the axis
    for axis, size in enumerate(shape):
        index = np.unique(np.unravel_index(flat, shape)[axis])
        count = index.size
        assert count * int(np.prod([np.unique(np.unravel_index(flat, shape)[a]).size
                                    for a in range(len(shape)) if a != axis])) == sample.size
        centres = np.floor((np.arange(count) + 0.5) * size / count).astype(np.int64)
        np.testing.assert_array_equal(index, centres)
    # deterministic
    np.testing.assert_array_equal(bounded_sample(image), sample)


@pytest.mark.parametrize("shape, cap", [((50, 60, 400), 3000), ((50, 60, 400), 300_000), ((7, 900), 5000),
                                        ((300, 7), 500), ((4, 5, 6, 70), 400), ((10_000,), 77), ((40, 40, 900), 1000)])
def test_bounded_sample_is_the_grid_of_centres_in_array_order(shape, cap):
    # whichever way the voxels are gathered (whole rows first, or one fancy index when the
    # rows would be much larger than the sample), the sample is image[np.ix_(centres...)]
    image = np.random.default_rng(len(shape)).normal(size=shape).astype(np.float32)
    sample = bounded_sample(image, max_voxels=cap)
    assert sample.size <= cap
    counts = []
    rest = sample.size
    for axis, size in enumerate(shape):  # the per-axis counts: the distinct indices of an arange image
        index = np.unique(np.unravel_index(bounded_sample(np.arange(image.size).reshape(shape), cap).astype(np.int64),
                                           shape)[axis])
        counts.append(index.size)
    assert int(np.prod(counts)) == rest
    centres = [np.floor((np.arange(c) + 0.5) * n / c).astype(np.intp) for c, n in zip(counts, shape)]
    np.testing.assert_array_equal(sample, image[np.ix_(*centres)].astype(np.float64).ravel())
    own = bounded_sample(image, max_voxels=cap, keep_type=True)
    assert own.dtype == np.float32 and np.array_equal(own.astype(np.float64), sample)


def test_bounded_sample_keeps_nan_and_converts_only_the_sample():
    image = np.ones((20, 300, 300), np.float32)
    image[10] = np.nan
    sample = bounded_sample(image)
    assert sample.dtype == np.float64 and image.dtype == np.float32
    assert np.isnan(sample).any() and np.isfinite(sample).any()


# --------------------------------------------------------------------------- percentiles (tail selection)
def _percentile_cases():
    rng = np.random.default_rng(7)
    n_big = 1_000_000
    yield "normal", rng.normal(size=n_big)
    yield "few distinct values (ties at every rank)", rng.integers(-5, 5, size=n_big).astype(float)
    yield "two thirds equal", rng.permutation(np.concatenate([np.zeros(666_667), rng.exponential(size=333_333)]))
    yield "float32 map", (rng.random(n_big) * 100).astype(np.float32)
    yield "int16 CT", rng.integers(-1024, 3000, size=n_big).astype(np.int16)
    # a CT: half of the voxels are air at exactly -1000, so both low percentiles lie inside one tie
    air = np.where(rng.random(n_big) < 0.5, -1000, np.round(rng.normal(40, 300, n_big))).astype(np.int16)
    yield "CT with an air tie", air
    yield "saturated top tie", np.minimum(np.round(rng.normal(0, 100, n_big)), 120.0)
    yield "just above the pilot size", rng.normal(size=65_537)
    yield "small", rng.normal(size=11)
    yield "one value", np.array([3.25])
    # sorted input: a strided pilot sees the ends exactly; reversed: the tails swap
    yield "sorted", np.sort(rng.normal(size=200_003))
    yield "reversed", np.sort(rng.normal(size=200_003))[::-1].copy()
    # pilots that misjudge a tail (the small values all sit on the pilot's points, so its threshold
    # keeps too few values): the whole array is partitioned
    trap = np.full(160_000, 1e9)
    trap[::16] = np.arange(10_000)
    yield "pilot misjudges the low tail", trap
    yield "pilot misjudges the high tail", -trap


@pytest.mark.parametrize("name,values", list(_percentile_cases()), ids=lambda x: x if isinstance(x, str) else "")
def test_percentiles_equal_numpy_to_the_last_bit(name, values):
    from ParaspinalFatLib.composition.base import percentiles

    for q in ([0.5, 99.5], [99.5], [0, 0.5, 1, 25, 50, 75, 99, 99.5, 100], [37.3]):
        expected = np.percentile(np.asarray(values, dtype=np.float64), q)
        got = percentiles(values, q)
        assert got == expected.tolist(), (name, q)  # exact, not approximately
        assert percentiles(values, q, no_nan=True) == got  # the caller removed the NaN: the same, check skipped


def test_percentiles_refuse_nan_and_empty():
    from ParaspinalFatLib.composition.base import percentiles

    with pytest.raises(ValueError, match="NaN"):
        percentiles(np.array([1.0, np.nan]), [50])
    with pytest.raises(ValueError, match="empty"):
        percentiles(np.array([]), [50])
    with pytest.raises(ValueError, match="range"):
        percentiles(np.array([1.0]), [101])

"""make_method and the declarations of every map kind (ParaspinalFatLib.composition.factory).

The declaration tests run a whole case through :func:`measure_case` for each map
kind and compare the columns that came out finite, and their numbers, with what
the kind's class declares (``filled_columns``, ``column_units``); the voxel
values in the declared unit are computed here from the written arrays.
"""
import numpy as np
import pytest
import SimpleITK as sitk

from ParaspinalFatLib import measure_case
from ParaspinalFatLib.composition.base import VALUE_STATISTICS
from ParaspinalFatLib.composition.ct import CtMethod
from ParaspinalFatLib.composition.dixon import DixonMethod
from ParaspinalFatLib.composition.factory import MAP_KINDS, METHOD_CLASSES, make_method
from ParaspinalFatLib.composition.intensity import IntensityMethod
from ParaspinalFatLib.composition.pdff import PdffMethod
from ParaspinalFatLib.composition.scalar import ScalarMethod
from ParaspinalFatLib.errors import InputError
from ParaspinalFatLib.schemas import COMPOSITION_COLUMNS


def test_map_kinds_and_their_classes():
    assert MAP_KINDS == ("pdff", "dixon", "ct", "t1", "t2", "scalar")
    image = np.linspace(0, 100, 1000).reshape(10, 10, 10)
    expected = {"pdff": PdffMethod, "dixon": DixonMethod, "ct": CtMethod, "t1": IntensityMethod,
                "t2": IntensityMethod, "scalar": ScalarMethod}
    for kind in MAP_KINDS:
        method = make_method(kind.upper(), image, image, pdff_scale="0-100")  # any case
        assert type(method) is expected[kind] and method.kind == kind
    assert sorted(k for cls in METHOD_CLASSES for k in cls.kinds) == sorted(MAP_KINDS)  # each kind: one class


def test_unknown_kind_lists_the_kinds():
    with pytest.raises(InputError, match="unknown map kind 'fa'; use one of pdff, dixon, ct, t1, t2, scalar"):
        make_method("FA", np.zeros((2, 2, 2)))


def test_options_of_other_kinds_are_ignored():
    image = np.zeros((2, 2, 2))
    method = make_method("ct", image, classifier="nonsense", pdff_scale="nonsense", noise_floor=-1.0)
    assert method.params == {"fat_window": (-190.0, -29.0), "muscle_window": (-29.0, 151.0),
                             "myosteatosis_cutoff_hu": None}
    assert make_method("scalar", image, unit="s", fat_window="nonsense").params == {}
    assert make_method("t1", image, unit=None).unit == "a.u." and make_method("scalar", image).unit == ""


# ----------------------------------------------------------------------------- declarations vs. the tables
def _case(kind, ph, masks, image_like):
    """(measure_case arguments, make_method arguments, options, voxel values in the declared unit)."""
    rng = np.random.default_rng(40 + MAP_KINDS.index(kind))
    shape = sitk.GetArrayFromImage(ph.image).shape
    if kind == "pdff":
        stored = (rng.uniform(0, 100, shape) * 10).astype(np.float32)  # stored 0-1000
        return (image_like(stored),), (stored,), {"pdff_scale": "0-1000"}, stored.astype(float) / 10
    if kind == "dixon":
        fat = rng.uniform(0, 400, shape).astype(np.float32)
        water = rng.uniform(0, 900, shape).astype(np.float32)
        f = fat.astype(float)
        total = f + water
        ff = np.where(total >= 40.0, 100 * f / np.where(total > 0, total, 1), np.nan)
        options = {"noise_floor": 40.0, "fat": image_like(fat), "water": image_like(water)}
        return (None,), (fat, water), options, ff
    if kind == "ct":
        hu = rng.integers(-300, 300, shape).astype(np.int16)
        return (image_like(hu),), (hu,), {"myosteatosis_cutoff_hu": 41.0}, hu.astype(float)
    if kind in ("t1", "t2"):
        img = rng.normal(150, 10, shape)
        k = 3 if kind == "t1" else 2
        for m in masks.values():
            n = int(m.sum())
            cls = rng.choice(k, size=n, p=[0.55, 0.15, 0.30] if k == 3 else [0.7, 0.3])
            means = [300, 650, 1000] if k == 3 else [300, 1000]
            img[m] = rng.normal(np.take(means, cls), 25)
        img = img.astype(np.float32)
        options = {"classifier": "gmm", "n_classes": 3} if k == 3 else {"classifier": "kmeans", "n_classes": 2}
        return (image_like(img),), (img,), options, img.astype(float)
    arr = rng.normal(1.0, 0.3, shape).astype(np.float32)
    return (image_like(arr),), (arr,), {"unit": "mm2/s"}, arr.astype(float)


@pytest.mark.parametrize("kind", MAP_KINDS)
def test_each_kind_fills_exactly_its_declared_columns_in_the_declared_units(kind, ph, masks, image_like, area):
    image_args, method_args, options, values = _case(kind, ph, masks, image_like)
    table = measure_case(*image_args, ph.segmentation, map_kind=kind, **options)
    method_options = {k: v for k, v in options.items() if k not in ("fat", "water")}
    method = make_method(kind, *method_args, **method_options)
    declared = set(method.filled_columns) - {"warnings"}
    units = method.column_units()
    assert set(units) == declared
    assert len(table) == len(masks)
    for _, row in table.iterrows():
        m = masks[row["segment"]]
        v = values[m]
        v = v[np.isfinite(v)]
        filled = {c for c in COMPOSITION_COLUMNS if c != "warnings" and np.isfinite(float(row[c]))}
        assert filled == declared, (row["segment"], sorted(filled ^ declared))
        assert row["unit"] == method.unit and row["map_kind"] == kind
        expected_stats = {"mean": v.mean(), "median": np.median(v), "sd": v.std(ddof=1),
                          "p05": np.percentile(v, 5), "p10": np.percentile(v, 10), "p90": np.percentile(v, 90),
                          "p95": np.percentile(v, 95)}
        for col, unit in units.items():
            x = float(row[col])
            if unit == "voxels":
                assert x == int(x) and 0 <= x <= m.sum(), col
            elif unit == "mm2":
                count = x / area
                assert count == pytest.approx(round(count), abs=1e-6) and 0 <= round(count) <= m.sum(), col
            elif unit == "1":
                assert 0.0 <= x <= 1.0, col
            else:  # in the unit of the voxel values
                assert unit == method.unit, col
                if col in VALUE_STATISTICS:
                    assert x == pytest.approx(expected_stats[col], rel=1e-9, abs=1e-9), col
                else:
                    assert v.min() <= x <= v.max(), col
        if method.fat_fraction_is_mean_value:
            assert row["fat_fraction_pct"] == row["mean"]

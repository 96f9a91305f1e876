"""Grouped statistics against per-group numpy computations."""
import numpy as np
import pytest

from ParaspinalFatLib.measurement.quantities import grouped_stats


@pytest.mark.parametrize("seed", range(5))
def test_grouped_stats_match_numpy_per_group(seed):
    rng = np.random.default_rng(seed)
    n_groups = 9
    groups = rng.integers(0, n_groups - 1, 5000)  # the last group stays empty
    values = rng.normal(30, 12, groups.size) + 1000.0  # offset tests the two-pass SD
    values[rng.random(groups.size) < 0.03] = np.nan
    values[5] = np.inf
    res = grouped_stats(groups, values, n_groups, threshold=1030.0)
    for g in range(n_groups):
        v = values[groups == g]
        fin = v[np.isfinite(v)]
        assert res["n"][g] == v.size
        assert res["n_nan"][g] == v.size - fin.size
        if fin.size == 0:
            assert np.isnan(res["mean"][g]) and np.isnan(res["median"][g])
            continue
        assert res["mean"][g] == pytest.approx(fin.mean(), rel=1e-13)
        assert res["sd"][g] == pytest.approx(fin.std(ddof=1), rel=1e-10)
        assert res["median"][g] == pytest.approx(np.median(fin), rel=1e-14)
        assert res["p05"][g] == pytest.approx(np.percentile(fin, 5), rel=1e-14)
        assert res["p95"][g] == pytest.approx(np.percentile(fin, 95), rel=1e-14)
        assert res["p10"][g] == pytest.approx(np.percentile(fin, 10), rel=1e-14)
        assert res["p90"][g] == pytest.approx(np.percentile(fin, 90), rel=1e-14)
        assert res["n_above"][g] == int((fin >= 1030.0).sum())


def _values_of_kind(kind, rng, size):
    """Voxel values (float64) that hold exactly in the type named by ``kind`` and no narrower one."""
    if kind == "float64":  # tenths: not float32 numbers
        return np.round(rng.normal(20, 9, size), 1)
    if kind == "float32":  # a float32 PDFF map used in %
        return rng.normal(20, 9, size).astype(np.float32).astype(np.float64)
    if kind == "int16":  # CT numbers, with -0.0 and 0.0 among them
        values = rng.integers(-120, 120, size).astype(np.float64)
        values[values == 0] = np.where(rng.random(int((values == 0).sum())) < 0.5, -0.0, 0.0)
        return values
    return rng.integers(-40000, 40000, size).astype(np.float64)  # "float32, beyond int16": whole numbers


@pytest.mark.parametrize("kind", ["float64", "float32", "int16", "float32, beyond int16"])
@pytest.mark.parametrize("n_groups", [3, 600, 40000])  # 40000: group ids beyond 16 bits
def test_grouped_quantiles_are_the_order_statistics_of_each_group(n_groups, kind):
    # each group's quantiles read off its own sorted values, with the same interpolation
    # formula: equal to the last bit, with many ties and groups in no particular order, whatever
    # the narrower type the values are sorted in (int16, float32) or none (float64)
    from ParaspinalFatLib.measurement.quantities import _exact_narrow

    rng = np.random.default_rng(n_groups)
    groups = rng.integers(0, n_groups, 20000)
    values = _values_of_kind(kind, rng, groups.size)
    assert _exact_narrow(values).dtype == np.dtype(kind.split(",")[0])
    res = grouped_stats(groups, values, n_groups)
    qs = {"median": 0.5, "p05": 0.05, "p10": 0.10, "p90": 0.90, "p95": 0.95}
    present = np.unique(groups)
    for g in present[:: max(1, present.size // 300)]:
        fin = np.sort(values[groups == g])
        for name, q in qs.items():
            pos = q * (fin.size - 1)
            lo = int(np.floor(pos))
            a, b = fin[lo], fin[min(lo + 1, fin.size - 1)]
            expected = a + (b - a) * (pos - lo)
            assert res[name][g] == expected and np.signbit(res[name][g]) == np.signbit(expected), (g, name)
    assert np.isnan(res["median"][np.setdiff1d(np.arange(n_groups), present)]).all()


def test_values_beyond_float32_keep_their_type_quietly():
    # 1e40 does not fit float32: the values are sorted as float64, with no overflow warning
    import warnings

    values = np.r_[np.arange(300.0), 1e40, -1e40]
    groups = np.zeros(values.size, dtype=np.intp)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = grouped_stats(groups, values, 1)
    fin = np.sort(values)
    pos = 0.95 * (fin.size - 1)
    lo = int(np.floor(pos))
    assert res["p95"][0] == fin[lo] + (fin[lo + 1] - fin[lo]) * (pos - lo)
    assert res["median"][0] == 149.5

def test_hand_checkable_group():
    res = grouped_stats(np.array([0, 0, 0, 0, 1]), np.array([1.0, 2.0, 3.0, 10.0, 5.0]), 2, threshold=3.0)
    assert res["mean"].tolist() == [4.0, 5.0]
    assert res["median"][0] == 2.5
    assert res["sd"][0] == pytest.approx(np.sqrt(((1 - 4) ** 2 + 4 + 1 + 36) / 3))
    assert np.isnan(res["sd"][1])  # one voxel: no sample SD
    assert res["n_above"].tolist() == [2, 1]
    # R type 7 by hand: group 0 sorted 1, 2, 3, 10; p10 at position 0.3 -> 1.3; p90 at 2.7 -> 3 + 0.7 * 7
    assert res["p10"][0] == pytest.approx(1.3)
    assert res["p90"][0] == pytest.approx(7.9)
    assert res["p10"][1] == res["p90"][1] == 5.0


def _method(kind, **params):
    from ParaspinalFatLib.composition.factory import make_method

    image = np.linspace(0, 100, 1000).reshape(10, 10, 10)
    return make_method(kind, image, image, pdff_scale="0-100", **params)


def test_group_without_classified_voxel_has_nan_split_and_a_row_warning():
    from ParaspinalFatLib.measurement.quantities import UNMEASURABLE_NOTE, measure_groups
    from ParaspinalFatLib.measurement.voxels import RoiVoxels

    # group 0: 4 voxels F+W = 0 (below the floor 10); group 1: 2 below, 2 kept (FF 80 %, 20 %);
    # group 2: 1 NaN + 1 below; group 3: no voxel
    f = np.array([0, 0, 0, 0, 0, 1, 80, 20, np.nan, 1], dtype=float)
    w = np.array([0, 0, 0, 0, 0, 2, 20, 80, 5, 1], dtype=float)
    groups = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    vox = RoiVoxels(groups, np.zeros(10, np.intp), f, 4, 1, water=w)
    method = _method("dixon", noise_floor=10.0)
    cols = measure_groups(vox, None, groups, 4, method, ["multifidus"] * 4, 2.0, np.ones(4))
    assert cols["n_voxels"].tolist() == [4, 4, 2, 0]
    assert cols["csa_mm2"].tolist() == [8.0, 8.0, 4.0, 0.0]
    for c in ("fat_csa_mm2", "lean_csa_mm2", "undefined_csa_mm2", "fat_area_ratio", "fat_fraction_pct"):
        assert np.isnan(cols[c][[0, 2, 3]]).all(), c
    assert (cols["fat_csa_mm2"][1], cols["lean_csa_mm2"][1], cols["fat_area_ratio"][1]) == (2.0, 2.0, 0.5)
    assert cols["fat_fraction_pct"][1] == pytest.approx(50.0)
    assert cols["warnings"][0] == (f"{UNMEASURABLE_NOTE} (NaN): all 4 voxels are excluded (4 below the noise floor "
                                   f"F+W < 10); is the ROI on zero padding or outside the scanned volume?")
    assert cols["warnings"][1] == ""
    assert cols["warnings"][2].startswith(f"{UNMEASURABLE_NOTE} (NaN): all 2 voxels are excluded (1 NaN/inf, 1 below")
    assert cols["warnings"][3] == f"{UNMEASURABLE_NOTE} (NaN): the ROI has no voxel on the measured slice(s)"


def test_scalar_map_gets_no_unmeasurable_warning():
    from ParaspinalFatLib.measurement.quantities import measure_groups
    from ParaspinalFatLib.measurement.voxels import RoiVoxels

    v = np.array([np.nan, np.nan, 3.0])
    g = np.array([0, 0, 1])
    cols = measure_groups(RoiVoxels(g, np.zeros(3, np.intp), v, 2, 1), None, g, 2, _method("scalar"),
                          ["x", "y"], 1.0, np.ones(2))
    assert cols["warnings"].tolist() == ["", ""] and np.isnan(cols["fat_csa_mm2"]).all()

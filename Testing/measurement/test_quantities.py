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
        assert res["n_above"][g] == int((fin >= 1030.0).sum())


def test_hand_checkable_group():
    res = grouped_stats(np.array([0, 0, 0, 0, 1]), np.array([1.0, 2.0, 3.0, 10.0, 5.0]), 2, threshold=3.0)
    assert res["mean"].tolist() == [4.0, 5.0]
    assert res["median"][0] == 2.5
    assert res["sd"][0] == pytest.approx(np.sqrt(((1 - 4) ** 2 + 4 + 1 + 36) / 3))
    assert np.isnan(res["sd"][1])  # one voxel: no sample SD
    assert res["n_above"].tolist() == [2, 1]

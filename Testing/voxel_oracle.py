"""The statistics of a group of voxels recomputed with plain numpy, and the check of a table row
against them: the independent truth of the random-case tests of ``measure``
(``Testing/measurement/test_random_cases_oracle.py``, ``Testing/io/test_slicer_seg.py``)."""
from __future__ import annotations

import numpy as np

#: output column -> percentile (numpy's linear interpolation, R type 7)
QUANTILES = {"median": 50, "p05": 5, "p10": 10, "p90": 90, "p95": 95}


def group_stats(values, bad=None):
    """The statistics of one group of voxels, as the tables define them (NaN/inf excluded).

    ``bad`` (Dixon): the voxels whose fat or water value is not finite (``n_nan``); the other
    voxels without a value are below the noise floor (``n_below_noise``).
    """
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    n_nan = values.size - finite.size if bad is None else int(np.count_nonzero(bad))
    out = {"n_voxels": values.size, "n_nan": n_nan, "n_below_noise": values.size - finite.size - n_nan,
           "mean": finite.mean() if finite.size else np.nan,
           "sd": finite.std(ddof=1) if finite.size > 1 else np.nan}
    for name, q in QUANTILES.items():
        out[name] = np.percentile(finite, q) if finite.size else np.nan
    return out


def check_group_stats(row, expected, where):
    """Assert that a table row holds the :func:`group_stats` ``expected`` (``where`` names it)."""
    assert int(row["n_voxels"]) == expected["n_voxels"], where
    assert int(row["n_nan"]) == expected["n_nan"], where
    assert int(row["n_below_noise"]) == expected["n_below_noise"], where
    for name in ("mean", "sd"):
        np.testing.assert_allclose(row[name], expected[name], rtol=1e-11, atol=0, err_msg=f"{where} {name}")
    for name in QUANTILES:
        # the same order statistics and linear interpolation (R type 7) as numpy.percentile; the
        # tables interpolate as a + (b - a) t, numpy as b - (b - a)(1 - t) when t >= 0.5, so the
        # two may differ in the last bit
        np.testing.assert_allclose(row[name], expected[name], rtol=1e-14, atol=1e-12, err_msg=f"{where} {name}")

"""Grouped voxel statistics in a few vectorised passes (no Python loop per ROI).

Given one group id per voxel and the voxel values, :func:`grouped_stats`
returns per-group counts, NaN counts, mean, sample SD, median and percentiles,
and optionally the count at or above a threshold.

Conventions: SD is the sample SD (ddof = 1, as SPSS and Slicer's Segment
Statistics report); percentiles use linear interpolation between order
statistics (numpy's default, R type 7).  NaN and infinite voxels are excluded
from every statistic and counted in ``n_nan``.
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np

__all__ = ["grouped_stats", "QUANTILES"]

#: output name -> quantile
QUANTILES = {"median": 0.5, "p05": 0.05, "p95": 0.95}


def grouped_stats(
    groups: np.ndarray,
    values: np.ndarray,
    n_groups: int,
    threshold: Optional[float] = None,
    quantiles: bool = True,
) -> Dict[str, np.ndarray]:
    """Statistics of ``values`` per group id in ``0 .. n_groups-1``.

    Parameters
    ----------
    groups : numpy.ndarray of int
        Group id of every voxel (same length as ``values``).
    values : numpy.ndarray of float
        Voxel values (NaN/inf allowed, excluded and counted).
    n_groups : int
        Number of groups (ids ``>= n_groups`` are not allowed).
    threshold : float, optional
        When given, ``n_above`` counts finite values ``>= threshold``.
    quantiles : bool
        Compute median, p05 and p95 (one sort of the voxels).

    Returns
    -------
    dict of numpy.ndarray
        ``n`` (all voxels), ``n_nan``, ``n_finite``, ``mean``, ``sd`` and, as
        requested, ``median``, ``p05``, ``p95``, ``n_above``; statistics of
        groups with no finite voxel are NaN (SD needs two).
    """
    groups = np.asarray(groups, dtype=np.intp)
    values = np.asarray(values, dtype=np.float64)
    n = np.bincount(groups, minlength=n_groups)
    finite = np.isfinite(values)
    if finite.all():
        g, v = groups, values
    else:
        g, v = groups[finite], values[finite]
    n_fin = np.bincount(g, minlength=n_groups)
    out: Dict[str, np.ndarray] = {"n": n, "n_nan": n - n_fin, "n_finite": n_fin}
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(g, weights=v, minlength=n_groups) / n_fin
        # two-pass SD: centre on the group mean first (no catastrophic cancellation)
        dev = v - mean[g]
        ss = np.bincount(g, weights=dev * dev, minlength=n_groups)
        sd = np.sqrt(ss / (n_fin - 1))
    mean[n_fin == 0] = np.nan
    sd[n_fin < 2] = np.nan
    out["mean"], out["sd"] = mean, sd
    if threshold is not None:
        out["n_above"] = np.bincount(g[v >= threshold], minlength=n_groups)
    if quantiles:
        out.update(_grouped_quantiles(g, v, n_fin, QUANTILES))
    return out


def _grouped_quantiles(g: np.ndarray, v: np.ndarray, counts: np.ndarray, qs: Dict[str, float]):
    """Linear-interpolated quantiles per group from one (group, value) sort."""
    order = np.lexsort((v, g))
    sv = v[order]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    res = {}
    has = counts > 0
    for name, q in qs.items():
        out = np.full(counts.shape, np.nan)
        pos = q * (counts[has] - 1)
        lo = np.floor(pos).astype(np.intp)
        hi = np.minimum(lo + 1, counts[has] - 1)
        frac = pos - lo
        a = sv[starts[has] + lo]
        b = sv[starts[has] + hi]
        out[has] = a + (b - a) * frac
        res[name] = out
    return res

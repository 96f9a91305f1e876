"""Small numerical helpers shared by ``agreement``, ``logistic`` and ``roc``.

Private module: nothing here is part of the public API.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

from ._base import StatsError


def check_confidence(confidence: float) -> float:
    """``confidence`` as a float strictly between 0 and 1, else :class:`StatsError`."""
    try:
        conf = float(confidence)
    except (TypeError, ValueError):
        raise StatsError(f"confidence must be a number in (0, 1), got {confidence!r}") from None
    if not 0.0 < conf < 1.0:
        raise StatsError(f"confidence must be in (0, 1), got {confidence!r}")
    return conf


def z_quantile(confidence: float) -> float:
    """Two-sided normal quantile, e.g. 1.959963984540054 for ``confidence=0.95``."""
    return float(stats.norm.ppf(0.5 + check_confidence(confidence) / 2.0))


def two_sided_normal_p(z: float) -> float:
    """Two-sided p-value of a standard normal statistic (accurate in the far tail)."""
    if math.isnan(z):
        return float("nan")
    return float(2.0 * stats.norm.sf(abs(z)))


def wilson_ci(successes: int, trials: int, confidence: float = 0.95):
    """Wilson score interval for a binomial proportion (no continuity correction).

    Returns ``(low, high)``; ``(nan, nan)`` when ``trials == 0``.
    """
    if trials <= 0:
        return float("nan"), float("nan")
    z = z_quantile(confidence)
    n = float(trials)
    phat = successes / n
    denom = 1.0 + z * z / n
    centre = (phat + z * z / (2.0 * n)) / denom
    half = z * math.sqrt(phat * (1.0 - phat) / n + z * z / (4.0 * n * n)) / denom
    low = max(0.0, centre - half)
    high = min(1.0, centre + half)
    # exact bounds at the edges (avoid 1e-17 round-off away from 0 or 1)
    if successes == 0:
        low = 0.0
    if successes == trials:
        high = 1.0
    return low, high


def plain(values, limit: int = 6) -> list:
    """First ``limit`` values as plain Python objects (readable in error messages)."""
    out = []
    for v in list(values)[:limit]:
        out.append(v.item() if isinstance(v, np.generic) else v)
    return out


def midranks_sorted(sorted_values: np.ndarray) -> np.ndarray:
    """1-based mid-ranks of an already ascending-sorted 1-D array (ties averaged)."""
    n = sorted_values.shape[0]
    if n == 0:
        return np.empty(0, dtype=np.float64)
    change = np.empty(n + 1, dtype=bool)
    change[0] = True
    change[-1] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=change[1:-1])
    edges = np.flatnonzero(change)  # group starts, then n
    # a tie group occupying 0-based positions [s, e) has mid-rank (s + 1 + e) / 2
    mid = (edges[:-1] + edges[1:] + 1) * 0.5
    return np.repeat(mid, np.diff(edges))

"""Numerical building blocks of the statistics modules.

* Sums that feed a mean or a sum of squares use :func:`math.fsum` (exactly rounded), and the
  sum of squared deviations uses the corrected two-pass formula, so that the NIST StRD
  univariate and ANOVA sets are reproduced to the limit of their float64 representation.
* Error-free transformations (:func:`two_sum`, :func:`two_product`) give the regression's
  residuals in twice the working precision (:func:`residual_accurate`).
* Quantiles of the t and normal distributions, Wilson score intervals and mid-ranks.
"""
from __future__ import annotations

import math
from decimal import Decimal
from typing import Optional, Tuple

import numpy as np
from scipy import stats as _sps

from ..errors import StatsError
from .deprecation import Renamed
from .validation import check_confidence

__all__ = [
    "accurate_mean", "sum_sq_dev", "mean_sd", "significance_level", "confidence_from_alpha",
    "DEPRECATED_ALPHA", "t_two_sided_p",
    "t_quantile", "z_quantile", "two_sided_normal_p", "wilson_ci", "midranks_sorted",
    "two_sum", "two_product", "residual_accurate", "xt_dot_accurate",
]


# ---------------------------------------------------------------------------
# accurate sums
# ---------------------------------------------------------------------------
def accurate_mean(x: np.ndarray) -> float:
    """Mean with an exactly rounded sum plus one refinement step.

    Parameters
    ----------
    x : numpy.ndarray
        1-D float array (no NaN), at least one value.

    Returns
    -------
    float
        The mean.
    """
    n = x.size
    m = math.fsum(x) / n
    return m + math.fsum(x - m) / n


def sum_sq_dev(x: np.ndarray, m: float) -> float:
    """Corrected two-pass sum of squared deviations (Bjorck; Chan, Golub & LeVeque).

    Parameters
    ----------
    x : numpy.ndarray
        1-D float array.
    m : float
        The mean of ``x`` (or a value close to it).

    Returns
    -------
    float
        sum((x - m)^2) - (sum(x - m))^2 / n, never negative.
    """
    d = x - m
    return max(math.fsum(d * d) - math.fsum(d) ** 2 / x.size, 0.0)


def mean_sd(x: np.ndarray) -> Tuple[float, float]:
    """Mean and standard deviation on n - 1 degrees of freedom.

    Parameters
    ----------
    x : numpy.ndarray
        1-D float array (no NaN), at least one value.

    Returns
    -------
    mean : float
        :func:`accurate_mean` of ``x``.
    sd : float
        Sample SD (NaN when n < 2).
    """
    m = accurate_mean(x)
    if x.size < 2:
        return m, float("nan")
    return m, math.sqrt(sum_sq_dev(x, m) / (x.size - 1))


# ---------------------------------------------------------------------------
# distributions
# ---------------------------------------------------------------------------
def significance_level(confidence: float) -> float:
    """The two-sided significance level ``alpha = 1 - confidence``, computed in decimal.

    ``1 - 0.9`` is 0.09999999999999998 in binary floating point; the decimal difference of
    the shortest representations gives exactly 0.1, so that ``confidence=0.9`` reproduces
    the intervals of the former ``alpha=0.1`` bit for bit.

    Parameters
    ----------
    confidence : float
        Confidence level, e.g. 0.95.

    Returns
    -------
    float
        ``1 - confidence``, e.g. 0.05.
    """
    return float(Decimal(1) - Decimal(repr(float(confidence))))


def confidence_from_alpha(alpha: float) -> float:
    """The confidence level of a deprecated ``alpha=`` argument.

    Parameters
    ----------
    alpha : float
        Two-sided significance level, e.g. 0.05.

    Returns
    -------
    float
        ``1 - alpha`` computed as in :func:`significance_level` (0.05 -> 0.95 exactly).

    Raises
    ------
    StatsError
        ``alpha`` is not strictly between 0 and 1.
    """
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise StatsError(f"alpha must be between 0 and 1, got {alpha}")
    return significance_level(alpha)


#: How ``alpha=`` of the previous release maps onto ``confidence=`` (see :mod:`.deprecation`).
DEPRECATED_ALPHA = Renamed("confidence", confidence_from_alpha, "confidence = 1 - alpha")


def t_two_sided_p(t: float, df: float) -> float:
    """Two-sided p-value of a t statistic.

    Parameters
    ----------
    t : float
        The statistic (may be infinite).
    df : float
        Degrees of freedom.

    Returns
    -------
    float
        2 P(T > |t|); 0 for infinite t.
    """
    return float(2.0 * _sps.t.sf(abs(t), df))


def t_quantile(alpha: float, df: float) -> float:
    """Critical value of a two-sided t interval.

    Parameters
    ----------
    alpha : float
        Two-sided tail probability (the interval has level 1 - alpha).
    df : float
        Degrees of freedom.

    Returns
    -------
    float
        t(1 - alpha/2, df).
    """
    return float(_sps.t.ppf(1.0 - alpha / 2.0, df))


def z_quantile(confidence: float) -> float:
    """Two-sided standard normal quantile of a confidence level.

    Parameters
    ----------
    confidence : float
        Confidence level in (0, 1).

    Returns
    -------
    float
        z(0.5 + confidence / 2), e.g. 1.959963984540054 for 0.95.

    Raises
    ------
    StatsError
        ``confidence`` is not in (0, 1).
    """
    return float(_sps.norm.ppf(0.5 + check_confidence(confidence) / 2.0))


def two_sided_normal_p(z: float) -> float:
    """Two-sided p-value of a standard normal statistic (accurate in the far tail).

    Parameters
    ----------
    z : float
        The statistic.

    Returns
    -------
    float
        2 P(Z > |z|); NaN for NaN.
    """
    if math.isnan(z):
        return float("nan")
    return float(2.0 * _sps.norm.sf(abs(z)))


def wilson_ci(successes: int, trials: int, confidence: float = 0.95) -> Tuple[float, float]:
    """Wilson score interval for a binomial proportion (no continuity correction).

    Parameters
    ----------
    successes : int
        Number of successes.
    trials : int
        Number of trials.
    confidence : float, default 0.95
        Confidence level.

    Returns
    -------
    low, high : float
        The bounds (exactly 0 / 1 at the edges); NaN when ``trials == 0``.
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


def midranks_sorted(sorted_values: np.ndarray) -> np.ndarray:
    """1-based mid-ranks of an ascending-sorted 1-D array (ties get their average rank).

    Parameters
    ----------
    sorted_values : numpy.ndarray
        Values sorted in ascending order.

    Returns
    -------
    numpy.ndarray
        Float mid-ranks, one per value.
    """
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


# ---------------------------------------------------------------------------
# error-free arithmetic for the regression refinement
# ---------------------------------------------------------------------------
_SPLITTER = 134217729.0  # 2**27 + 1 (Veltkamp splitting of float64)


def two_sum(a: np.ndarray, b: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Knuth's TwoSum: ``a + b = s + e`` exactly.

    Parameters
    ----------
    a : numpy.ndarray
        Float array.
    b : numpy.ndarray
        Float array of the same shape.

    Returns
    -------
    s : numpy.ndarray
        The rounded sums.
    e : numpy.ndarray
        Their rounding errors.
    """
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


def two_product(a: np.ndarray, b: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Dekker's TwoProduct: ``a * b = p + e`` exactly (no overflow for |a|, |b| < 1e150).

    Parameters
    ----------
    a : numpy.ndarray
        Float array.
    b : numpy.ndarray
        Float array of the same shape.

    Returns
    -------
    p : numpy.ndarray
        The rounded products.
    e : numpy.ndarray
        Their rounding errors.
    """
    p = a * b
    c = _SPLITTER * a
    ah = c - (c - a)
    al = a - ah
    c = _SPLITTER * b
    bh = c - (c - b)
    bl = b - bh
    e = al * bl - (((p - ah * bh) - al * bh) - ah * bl)
    return p, e


def residual_accurate(
    y: np.ndarray, X: np.ndarray, b: np.ndarray, r: Optional[np.ndarray] = None
) -> np.ndarray:
    """Residuals ``y - X @ b - r`` row by row in twice the working precision (Dot2).

    Parameters
    ----------
    y : numpy.ndarray
        Outcome, shape (n,).
    X : numpy.ndarray
        Design matrix, shape (n, p).
    b : numpy.ndarray
        Coefficients, shape (p,).
    r : numpy.ndarray, optional
        A further vector to subtract, shape (n,).

    Returns
    -------
    numpy.ndarray
        The residuals, shape (n,) (Ogita, Rump & Oishi 2005).
    """
    s = y.astype(np.float64, copy=True)
    c = np.zeros_like(s)
    for j in range(X.shape[1]):
        p, e = two_product(X[:, j], np.full_like(s, -b[j]))
        s, e2 = two_sum(s, p)
        c += e + e2
    if r is not None:
        s, e2 = two_sum(s, -r)
        c += e2
    return s + c


def xt_dot_accurate(X: np.ndarray, r: np.ndarray) -> np.ndarray:
    """``X.T @ r`` with exactly rounded column sums of error-free products.

    Parameters
    ----------
    X : numpy.ndarray
        Matrix, shape (n, p).
    r : numpy.ndarray
        Vector, shape (n,).

    Returns
    -------
    numpy.ndarray
        Shape (p,).
    """
    out = np.empty(X.shape[1])
    for j in range(X.shape[1]):
        p, e = two_product(X[:, j], r)
        out[j] = math.fsum(np.concatenate([p, e]))
    return out

"""Helpers shared by the part-1 statistics modules (descriptive, compare, correlation, regression).

Nothing here is public API.  Conventions used throughout:

* Sums that feed a mean or a sum of squares use :func:`math.fsum` (exactly rounded), and the
  sum of squared deviations uses the corrected two-pass formula, so that the NIST StRD
  univariate and ANOVA sets are reproduced to the limit of their float64 representation.
* Group order is explicit: a caller-given ``order``, else the categories of a pandas
  Categorical (in category order, unused categories dropped), else the sorted unique labels.
* Problems the user must fix raise :class:`~ParaspinalFatLib.stats._base.StatsError` naming
  the column / group; results that are defined but degenerate (e.g. an undefined CI) are
  reported with a note in ``result.notes`` *and* a :class:`StatsWarning`, never silently.
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Hashable, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
from scipy import stats as _sps

from ._base import StatsError, StatsWarning, require_columns


def note(notes: List[str], message: str) -> None:
    """Append ``message`` to ``notes`` and emit it as a :class:`StatsWarning`."""
    notes.append(message)
    warnings.warn(message, StatsWarning, stacklevel=3)


# ---------------------------------------------------------------------------
# accurate sums
# ---------------------------------------------------------------------------
def accurate_mean(x: np.ndarray) -> float:
    """Mean of a 1-D float array with an exactly rounded sum plus one refinement step."""
    n = x.size
    m = math.fsum(x) / n
    return m + math.fsum(x - m) / n


def sum_sq_dev(x: np.ndarray, m: float) -> float:
    """Corrected two-pass sum of squared deviations about ``m`` (Bjorck; Chan, Golub & LeVeque)."""
    d = x - m
    return max(math.fsum(d * d) - math.fsum(d) ** 2 / x.size, 0.0)


def mean_sd(x: np.ndarray) -> Tuple[float, float]:
    """``(mean, sd)`` with sd on n - 1 degrees of freedom (NaN when n < 2)."""
    m = accurate_mean(x)
    if x.size < 2:
        return m, float("nan")
    return m, math.sqrt(sum_sq_dev(x, m) / (x.size - 1))


# ---------------------------------------------------------------------------
# column access and validation
# ---------------------------------------------------------------------------
def numeric_column(data: pd.DataFrame, column: Hashable) -> np.ndarray:
    """``data[column]`` as float64, NaN for missing; :class:`StatsError` if not numeric.

    Booleans count as 0/1.  Object columns are accepted only when *every* non-missing value
    converts to a number (so a stray ``"<80"`` or ``"n/a"`` is reported, not dropped).
    Infinite values are rejected.
    """
    require_columns(data, [column])
    s = data[column]
    if isinstance(s, pd.DataFrame):
        raise StatsError(f"column name {column!r} is duplicated in the table")
    if isinstance(s.dtype, pd.CategoricalDtype):
        raise StatsError(
            f"column {column!r} is categorical (dtype 'category'), not numeric; "
            "convert it with .astype(float) if its labels are numbers"
        )
    if pd.api.types.is_bool_dtype(s.dtype) or (
        pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_complex_dtype(s.dtype)
    ):
        values = s.astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        converted = pd.to_numeric(s, errors="coerce")
        bad = s.notna() & converted.isna()
        if bad.any():
            examples = list(pd.unique(s[bad].astype(str)))[:3]
            raise StatsError(
                f"column {column!r} is not numeric: {int(bad.sum())} value(s) such as "
                f"{examples} cannot be read as numbers"
            )
        values = converted.astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isinf(values).any():
        raise StatsError(f"column {column!r} contains infinite values")
    return values


def require_variance(values: np.ndarray, name: str, where: str = "") -> None:
    """:class:`StatsError` if the (non-missing) ``values`` are all equal."""
    v = values[~np.isnan(values)]
    if v.size and np.all(v == v[0]):
        place = f" {where}" if where else ""
        raise StatsError(
            f"column {name!r} has zero variance{place} (all {v.size} values equal {v[0]:g})"
        )


def check_alpha(alpha: float) -> float:
    """Validate a significance level ``0 < alpha < 1``."""
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise StatsError(f"alpha must be between 0 and 1, got {alpha}")
    return alpha


def present_mask(data: pd.DataFrame, columns: Sequence[Hashable]) -> np.ndarray:
    """Boolean mask of the rows with no missing value in ``columns`` (listwise deletion)."""
    require_columns(data, columns)
    return data.loc[:, list(columns)].notna().all(axis=1).to_numpy()


# ---------------------------------------------------------------------------
# groups
# ---------------------------------------------------------------------------
def _sorted_labels(labels: Sequence[Any]) -> List[Any]:
    try:
        return sorted(labels)
    except TypeError:
        return sorted(labels, key=lambda v: (type(v).__name__, str(v)))


def group_order(
    groups: pd.Series, order: Optional[Sequence[Any]], group_name: Hashable
) -> List[Any]:
    """The group labels to analyse, in reporting order (see module docstring)."""
    observed = [v.item() if isinstance(v, np.generic) else v for v in pd.unique(groups.dropna())]
    if order is not None:
        order = list(order)
        if len(set(map(repr, order))) != len(order):
            raise StatsError(f"order for {group_name!r} lists a group twice: {order}")
        present = set(observed)
        absent = [g for g in order if g not in present]
        if absent:
            raise StatsError(
                f"group(s) {absent} of {group_name!r} given in order= have no rows with data; "
                f"groups present: {_sorted_labels(list(present))}"
            )
        return order
    if isinstance(groups.dtype, pd.CategoricalDtype):
        present = set(observed)
        return [c.item() if isinstance(c, np.generic) else c
                for c in groups.cat.categories if c in present]
    return _sorted_labels(observed)


def split_groups(
    data: pd.DataFrame,
    dv: Hashable,
    group: Hashable,
    order: Optional[Sequence[Any]],
    min_groups: int = 2,
) -> Tuple[List[Any], List[np.ndarray], int, int]:
    """Numeric ``dv`` split by ``group`` after listwise deletion.

    Returns ``(labels, arrays, n_missing, n_other)``: rows dropped because ``dv`` or ``group``
    is missing, and rows whose group is not in ``order``.  Every group must have n >= 2.
    """
    require_columns(data, [dv, group])
    if dv == group:
        raise StatsError(f"the dependent variable and the grouping column are both {dv!r}")
    y = numeric_column(data, dv)
    g = data[group]
    keep = ~np.isnan(y) & g.notna().to_numpy()
    n_missing = int((~keep).sum())
    labels = group_order(g[keep], order, group)
    if len(labels) < min_groups:
        raise StatsError(
            f"{group!r} has {len(labels)} group(s) with data ({labels}); "
            f"at least {min_groups} are needed"
        )
    gk = g[keep]
    yk = y[keep]
    arrays = []
    used = np.zeros(yk.size, dtype=bool)
    for lab in labels:
        m = (gk == lab).to_numpy()
        used |= m
        arr = yk[m]
        if arr.size < 2:
            raise StatsError(
                f"group {lab!r} of {group!r} has n={arr.size} non-missing {dv!r} value(s); "
                "at least 2 are needed"
            )
        arrays.append(arr)
    n_other = int((~used).sum())
    return labels, arrays, n_missing, n_other


# ---------------------------------------------------------------------------
# distributions
# ---------------------------------------------------------------------------
def t_two_sided_p(t: float, df: float) -> float:
    """Two-sided p of a t statistic (0 for infinite t)."""
    return float(2.0 * _sps.t.sf(abs(t), df))


def t_quantile(alpha: float, df: float) -> float:
    """Critical value t(1 - alpha/2, df) of a two-sided (1 - alpha) interval."""
    return float(_sps.t.ppf(1.0 - alpha / 2.0, df))


# ---------------------------------------------------------------------------
# error-free arithmetic for the regression refinement
# ---------------------------------------------------------------------------
_SPLITTER = 134217729.0  # 2**27 + 1 (Veltkamp splitting of float64)


def two_sum(a: np.ndarray, b: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Knuth's TwoSum: ``a + b = s + e`` exactly."""
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


def two_product(a: np.ndarray, b: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Dekker's TwoProduct: ``a * b = p + e`` exactly (no overflow for |a|,|b| < 1e150)."""
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
    """``y - X @ b - r`` row by row in twice the working precision (Ogita-Rump-Oishi Dot2)."""
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
    """``X.T @ r`` with exactly rounded column sums of error-free products."""
    out = np.empty(X.shape[1])
    for j in range(X.shape[1]):
        p, e = two_product(X[:, j], r)
        out[j] = math.fsum(np.concatenate([p, e]))
    return out

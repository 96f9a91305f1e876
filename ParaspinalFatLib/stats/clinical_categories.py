"""Clinical grouping of continuous or ordinal measurements.

* :func:`vbmd_category`: lumbar QCT volumetric BMD in mg/cm^3 (ACR 2018 / ISCD 2007
  thresholds, as used by seed paper 001): normal > 120, osteopenia 80-120 (both ends
  inclusive), osteoporosis < 80.
* :func:`tscore_category`: DXA T-score, WHO 1994: normal >= -1.0, osteopenia between,
  osteoporosis <= -2.5.
* :func:`lovett_group`: Lovett / MRC manual muscle grade 0-5 dichotomised (seed paper 002):
  poor 0-3, good 4-5.

Conventions
-----------
* Values are compared exactly as given (no rounding).  Round first if the source reports a
  coarser precision than the float you hold (e.g. a T-score computed as -2.4999999).
* Missing values (NaN/None) stay missing.
* A scalar gives a plain ``str`` (or ``nan``); a list/array gives an *ordered*
  :class:`pandas.Categorical`; a :class:`pandas.Series` gives a Series of that dtype with the
  same index and name.  Category order is from healthiest to most severe for bone
  (``normal < osteopenia < osteoporosis``) and from weakest to strongest for muscle
  (``poor < good``).
"""
from __future__ import annotations

import numbers
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from ..errors import StatsError
from .deprecation import renamed_arguments
from .validation import as_float_array

__all__ = ["vbmd_category", "tscore_category", "lovett_group", "BONE_LABELS", "LOVETT_LABELS"]

#: What the functions return: a label (or NaN) for a scalar, else an ordered Categorical/Series.
Categories = Union[str, float, pd.Categorical, pd.Series]

BONE_LABELS = ("normal", "osteopenia", "osteoporosis")
LOVETT_LABELS = ("poor", "good")


def _to_float(values: Any, what: str) -> Tuple[bool, np.ndarray, Optional[pd.Series]]:
    """Return ``(is_scalar, float array, original Series or None)``."""
    if isinstance(values, pd.DataFrame):
        raise StatsError(f"{what}: expected a scalar, sequence or Series, got a DataFrame")
    series = values if isinstance(values, pd.Series) else None
    scalar = series is None and (np.ndim(values) == 0)
    dtype = series.dtype if series is not None else np.asarray(values).dtype
    if (
        pd.api.types.is_numeric_dtype(dtype)
        and not pd.api.types.is_bool_dtype(dtype)
        and not pd.api.types.is_complex_dtype(dtype)
        and not isinstance(dtype, pd.CategoricalDtype)
    ):
        out = as_float_array(series if series is not None else np.atleast_1d(values), what)
        return scalar, _check_finite(out, what), series
    if series is not None:
        raw = series.astype(object).where(series.notna(), np.nan).to_numpy()
    else:
        raw = np.atleast_1d(np.asarray(values, dtype=object))
    if raw.ndim != 1:
        raise StatsError(f"{what}: expected a 1-D sequence, got shape {raw.shape}")
    out = np.empty(raw.size, dtype=np.float64)
    for i, v in enumerate(raw):
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA or v is pd.NaT:
            out[i] = np.nan
            continue
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Real, np.number)):
            raise StatsError(f"{what}: value {v!r} at position {i} is not a number")
        out[i] = float(v)
    return scalar, _check_finite(out, what), series


def _check_finite(out: np.ndarray, what: str) -> np.ndarray:
    if np.isinf(out).any():
        i = int(np.flatnonzero(np.isinf(out))[0])
        raise StatsError(f"{what}: value {out[i]} at position {i} is not finite")
    return out


def _package(codes: np.ndarray, labels: Sequence[str], scalar: bool,
             series: Optional[pd.Series]) -> Categories:
    """Wrap integer codes (-1 = missing) as scalar / ordered Categorical / Series."""
    if scalar:
        return labels[codes[0]] if codes[0] >= 0 else np.nan
    cat = pd.Categorical.from_codes(codes, categories=list(labels), ordered=True)
    if series is not None:
        return pd.Series(cat, index=series.index, name=series.name)
    return cat


@renamed_arguments(options=("normal_above", "osteoporosis_below"))
def vbmd_category(values: Any, *, normal_above: float = 120.0,
                  osteoporosis_below: float = 80.0) -> Categories:
    """Classify QCT volumetric BMD (mg/cm^3) as normal / osteopenia / osteoporosis.

    Parameters
    ----------
    values : float, sequence of float or pandas.Series
        Trabecular vBMD in mg/cm^3 (e.g. mean of L1-L2 from QCT).  NaN stays NaN.
    normal_above : float, default 120.0
        Values strictly above this are ``"normal"``.
    osteoporosis_below : float, default 80.0
        Values strictly below this are ``"osteoporosis"``; values from
        ``osteoporosis_below`` to ``normal_above`` inclusive are ``"osteopenia"``.

    Returns
    -------
    str, float nan, pandas.Categorical or pandas.Series
        Ordered categories ``normal < osteopenia < osteoporosis``.

    Raises
    ------
    StatsError
        Non-numeric or infinite values, or ``osteoporosis_below > normal_above``.

    Examples
    --------
    >>> vbmd_category(120.0), vbmd_category(80.0), vbmd_category(79.9)
    ('osteopenia', 'osteopenia', 'osteoporosis')
    """
    normal_above, osteoporosis_below = float(normal_above), float(osteoporosis_below)
    if not osteoporosis_below <= normal_above:
        raise StatsError(
            f"vbmd_category: osteoporosis_below ({osteoporosis_below}) must not exceed "
            f"normal_above ({normal_above})"
        )
    scalar, x, series = _to_float(values, "vbmd_category")
    codes = np.full(x.size, -1, dtype=np.int8)
    codes[x > normal_above] = 0
    codes[(x >= osteoporosis_below) & (x <= normal_above)] = 1
    codes[x < osteoporosis_below] = 2
    return _package(codes, BONE_LABELS, scalar, series)


@renamed_arguments({"t": "values"}, options=("normal_at_or_above", "osteoporosis_at_or_below"))
def tscore_category(
    values: Any, *, normal_at_or_above: float = -1.0, osteoporosis_at_or_below: float = -2.5
) -> Categories:
    """Classify DXA T-scores by the WHO criteria.

    Parameters
    ----------
    values : float, sequence of float or pandas.Series
        T-scores (SD units relative to young adults).  NaN stays NaN.
    normal_at_or_above : float, default -1.0
        T >= this is ``"normal"``.
    osteoporosis_at_or_below : float, default -2.5
        T <= this is ``"osteoporosis"``; values strictly between the two thresholds are
        ``"osteopenia"``.

    Returns
    -------
    str, float nan, pandas.Categorical or pandas.Series
        Ordered categories ``normal < osteopenia < osteoporosis``.

    Raises
    ------
    StatsError
        Non-numeric or infinite values, or thresholds in the wrong order.

    Examples
    --------
    >>> tscore_category(-1.0), tscore_category(-2.5)
    ('normal', 'osteoporosis')
    """
    hi, lo = float(normal_at_or_above), float(osteoporosis_at_or_below)
    if not lo < hi:
        raise StatsError(
            f"tscore_category: osteoporosis_at_or_below ({lo}) must be below "
            f"normal_at_or_above ({hi})"
        )
    scalar, x, series = _to_float(values, "tscore_category")
    codes = np.full(x.size, -1, dtype=np.int8)
    codes[x >= hi] = 0
    codes[(x > lo) & (x < hi)] = 1
    codes[x <= lo] = 2
    return _package(codes, BONE_LABELS, scalar, series)


@renamed_arguments({"grade": "values"}, options=("good_from",))
def lovett_group(values: Any, *, good_from: int = 4) -> Categories:
    """Dichotomise Lovett (MRC) muscle grades 0-5 into ``"poor"`` / ``"good"``.

    Parameters
    ----------
    values : int, sequence of int or pandas.Series
        Whole grades 0, 1, ..., 5 (floats such as 4.0 are accepted).  NaN stays NaN.
        Modifiers such as "4+" must be mapped to whole grades before calling.
    good_from : int, default 4
        Grades >= ``good_from`` are ``"good"``; lower grades are ``"poor"``
        (default: 0-3 poor, 4-5 good).

    Returns
    -------
    str, float nan, pandas.Categorical or pandas.Series
        Ordered categories ``poor < good``.

    Raises
    ------
    StatsError
        A grade outside 0..5 or not a whole number, or ``good_from`` not in 1..5.

    Examples
    --------
    >>> lovett_group(3), lovett_group(4)
    ('poor', 'good')
    """
    if isinstance(good_from, (bool, np.bool_)) or float(good_from) != int(good_from) or not (
        1 <= int(good_from) <= 5
    ):
        raise StatsError(f"lovett_group: good_from must be a whole grade 1..5, got {good_from!r}")
    good_from = int(good_from)
    scalar, x, series = _to_float(values, "lovett_group")
    present = ~np.isnan(x)
    bad = present & ((x < 0) | (x > 5) | (x != np.round(x)))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        where = f" (index {series.index[i]!r})" if series is not None else f" (position {i})"
        raise StatsError(
            f"lovett_group: Lovett grade must be a whole number 0..5, got {x[i]:g}{where}; "
            f"{int(bad.sum())} invalid value(s)"
        )
    codes = np.full(x.size, -1, dtype=np.int8)
    codes[present & (x < good_from)] = 0
    codes[present & (x >= good_from)] = 1
    return _package(codes, LOVETT_LABELS, scalar, series)

"""Input checks shared by the statistics modules.

Conventions used throughout the package:

* Problems the user must fix raise :class:`~ParaspinalFatLib.errors.StatsError` naming the
  column / group; results that are defined but degenerate (e.g. an undefined CI) are
  reported with a note in ``result.notes`` *and* a :class:`~ParaspinalFatLib.errors.StatsWarning`
  (:func:`note`), never silently.
* Group order is explicit (:func:`group_order`): a caller-given ``order``, else the categories
  of a pandas Categorical (in category order, unused categories dropped), else the sorted
  unique labels.
* Missing values are removed listwise and counted by the caller.
"""
from __future__ import annotations

import sys
import warnings
from typing import Any, Dict, Hashable, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from ..errors import StatsError, StatsWarning
from ..validation import as_float_array as shared_as_float_array
from ..validation import require_columns as shared_require_columns

__all__ = [
    "require_columns", "listwise", "as_float_array", "numeric_column", "require_variance",
    "check_confidence", "note", "plain", "group_order", "split_groups", "categorical_spec",
]


def require_columns(data: pd.DataFrame, columns: Iterable[Hashable]) -> None:
    """Check that ``data`` is a DataFrame holding every column of ``columns``.

    Parameters
    ----------
    data : pandas.DataFrame
        The table.
    columns : iterable of hashable
        Column names that must be present.

    Raises
    ------
    StatsError
        ``data`` is not a DataFrame, or names every missing column and lists the available ones.
    """
    shared_require_columns(data, columns, error=StatsError)


def listwise(data: pd.DataFrame, columns: Sequence[Hashable]) -> pd.DataFrame:
    """Rows of ``data[columns]`` with no missing value (listwise deletion).

    Parameters
    ----------
    data : pandas.DataFrame
        The table.
    columns : sequence of hashable
        Columns to keep and to check for missing values.

    Returns
    -------
    pandas.DataFrame
        The complete rows (original index kept); the caller reports ``len(result)`` as the
        n actually used.
    """
    require_columns(data, columns)
    return data.loc[:, list(columns)].dropna(axis=0, how="any")


def as_float_array(values: Any, name: Hashable) -> np.ndarray:
    """``values`` as a 1-D float64 array, NaN for missing; a clear error if not numeric.

    Parameters
    ----------
    values : array_like or pandas.Series
        A sequence or array, or a Series.  Series: booleans count as 0/1, numeric (also
        nullable) dtypes convert directly, and other dtypes (object, string, category) are
        accepted only when *every* non-missing value reads as a number (so a stray ``"<80"``
        or ``"n/a"`` is reported, not dropped).
    name : hashable
        Column or argument name for the error message.

    Returns
    -------
    numpy.ndarray
        1-D float64 array (infinite values are kept; see :func:`numeric_column`).

    Raises
    ------
    StatsError
        Non-numeric values (naming up to three of them for a Series) or not 1-D.
    """
    if isinstance(values, pd.Series):
        dtype = values.dtype
        if pd.api.types.is_bool_dtype(dtype) or (
            pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype)
        ):
            return values.astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)
        converted = pd.to_numeric(values, errors="coerce")
        bad = values.notna() & converted.isna()
        if bad.any():
            examples = list(pd.unique(values[bad].astype(str)))[:3]
            raise StatsError(
                f"column {name!r} is not numeric: {int(bad.sum())} value(s) such as "
                f"{examples} cannot be read as numbers"
            )
        return converted.astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)
    return shared_as_float_array(values, str(name), error=StatsError, ndim=1)


def numeric_column(data: pd.DataFrame, column: Hashable) -> np.ndarray:
    """``data[column]`` as float64, NaN for missing; :class:`StatsError` if not numeric.

    Parameters
    ----------
    data : pandas.DataFrame
        The table.
    column : hashable
        Column name.  Read by :func:`as_float_array`; in addition a column of dtype
        ``category`` (even with numeric labels), a duplicated column name and infinite
        values are rejected.

    Returns
    -------
    numpy.ndarray
        1-D float64 array with one value per row.

    Raises
    ------
    StatsError
        Missing, duplicated, categorical or non-numeric column, or infinite values.
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
    values = as_float_array(s, column)
    if np.isinf(values).any():
        raise StatsError(f"column {column!r} contains infinite values")
    return values


def require_variance(values: np.ndarray, name: Hashable, where: str = "") -> None:
    """Check that the non-missing ``values`` are not all equal.

    Parameters
    ----------
    values : numpy.ndarray
        Float values (NaN = missing).
    name : hashable
        Column name for the message.
    where : str, optional
        Where the values come from, e.g. ``"in the two groups"``.

    Raises
    ------
    StatsError
        All non-missing values are equal (zero variance).
    """
    v = values[~np.isnan(values)]
    if v.size and np.all(v == v[0]):
        place = f" {where}" if where else ""
        raise StatsError(
            f"column {name!r} has zero variance{place} (all {v.size} values equal {v[0]:g})"
        )


def check_confidence(confidence: float) -> float:
    """Validate a confidence level such as 0.95.

    Parameters
    ----------
    confidence : float
        Confidence level of the intervals.

    Returns
    -------
    float
        ``confidence`` as a float strictly between 0 and 1.

    Raises
    ------
    StatsError
        Not a number, or not strictly between 0 and 1.
    """
    try:
        conf = float(confidence)
    except (TypeError, ValueError):
        raise StatsError(f"confidence must be a number in (0, 1), got {confidence!r}") from None
    if not 0.0 < conf < 1.0:
        raise StatsError(f"confidence must be in (0, 1), got {confidence!r}")
    return conf


_PACKAGE = __name__.rpartition(".")[0]


def _stacklevel_outside_package() -> int:
    """``stacklevel`` (for a ``warnings.warn`` in the calling function) of the first frame
    outside this package, i.e. the user's call of the public function."""
    level = 1
    frame = sys._getframe(1)  # the function calling warnings.warn (stacklevel 1)
    while frame is not None and (frame.f_globals.get("__name__", "") + ".").startswith(
            _PACKAGE + "."):
        frame = frame.f_back
        level += 1
    return level


def note(notes: List[str], message: str) -> None:
    """Record a degenerate-result note and emit it as a :class:`StatsWarning`.

    The warning is attributed to the user's call of the public function.

    Parameters
    ----------
    notes : list of str
        The result's notes; ``message`` is appended.
    message : str
        What is degenerate and why.
    """
    notes.append(message)
    warnings.warn(message, StatsWarning, stacklevel=_stacklevel_outside_package())


def plain(values: Iterable[Any], limit: int = 6) -> List[Any]:
    """The first values as plain Python objects (readable in error messages).

    Parameters
    ----------
    values : iterable
        Values, possibly numpy scalars.
    limit : int, default 6
        How many to keep.

    Returns
    -------
    list
        Up to ``limit`` values, numpy scalars converted with ``.item()``.
    """
    out = []
    for v in list(values)[:limit]:
        out.append(v.item() if isinstance(v, np.generic) else v)
    return out


def _sorted_labels(labels: Sequence[Any]) -> List[Any]:
    try:
        return sorted(labels)
    except TypeError:
        return sorted(labels, key=lambda v: (type(v).__name__, str(v)))


def group_order(
    groups: pd.Series, order: Optional[Sequence[Any]], group_name: Hashable
) -> List[Any]:
    """The group labels to analyse, in reporting order.

    Parameters
    ----------
    groups : pandas.Series
        Group label of each row (missing values are ignored).
    order : sequence, optional
        Caller-given groups and order; each must occur in ``groups``.
    group_name : hashable
        Name of the grouping column, for messages.

    Returns
    -------
    list
        ``order`` if given; else the categories of a Categorical that occur (category
        order); else the sorted unique labels (numpy scalars as plain Python values).

    Raises
    ------
    StatsError
        ``order`` lists a group twice or a group with no rows.
    """
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
    between: Hashable,
    order: Optional[Sequence[Any]],
    min_groups: int = 2,
) -> Tuple[List[Any], List[np.ndarray], int, int]:
    """Numeric ``dv`` split by the groups of ``between`` after listwise deletion.

    Parameters
    ----------
    data : pandas.DataFrame
        The table.
    dv : hashable
        Numeric dependent variable.
    between : hashable
        Grouping column.
    order : sequence, optional
        Groups to use, in order (see :func:`group_order`).
    min_groups : int, default 2
        Fewest groups with data.

    Returns
    -------
    labels : list
        Group labels in order.
    arrays : list of numpy.ndarray
        The ``dv`` values of each group.
    n_missing : int
        Rows dropped because ``dv`` or ``between`` is missing.
    n_other : int
        Rows whose group is not in ``order``.

    Raises
    ------
    StatsError
        Missing column, non-numeric ``dv``, fewer than ``min_groups`` groups, or a group
        with fewer than 2 values.
    """
    require_columns(data, [dv, between])
    if dv == between:
        raise StatsError(f"the dependent variable and the grouping column are both {dv!r}")
    y = numeric_column(data, dv)
    g = data[between]
    keep = ~np.isnan(y) & g.notna().to_numpy()
    n_missing = int((~keep).sum())
    labels = group_order(g[keep], order, between)
    if len(labels) < min_groups:
        raise StatsError(
            f"{between!r} has {len(labels)} group(s) with data ({labels}); "
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
                f"group {lab!r} of {between!r} has n={arr.size} non-missing {dv!r} value(s); "
                "at least 2 are needed"
            )
        arrays.append(arr)
    n_other = int((~used).sum())
    return labels, arrays, n_missing, n_other


def categorical_spec(
    categorical: Union[None, str, Sequence[Hashable], Mapping[Hashable, Any]],
    predictors: Sequence[Hashable],
    where: str,
) -> Dict[Hashable, Any]:
    """The ``categorical=`` option of a regression as ``{predictor: reference level or None}``.

    Parameters
    ----------
    categorical : None, column name, list of column names or dict
        Predictors to dummy-code; a dict maps each to its reference level.
    predictors : sequence of hashable
        The model's predictors.
    where : str
        Prefix of the error message (e.g. ``"linear_regression: "``).

    Returns
    -------
    dict
        Predictor -> reference level (``None``: the default reference).

    Raises
    ------
    StatsError
        A name that is not among the predictors.
    """
    if categorical is None:
        return {}
    if isinstance(categorical, Mapping):
        spec = dict(categorical)
    elif isinstance(categorical, str):
        spec = {categorical: None}
    else:
        spec = {c: None for c in categorical}
    unknown = [c for c in spec if c not in predictors]
    if unknown:
        raise StatsError(f"{where}categorical= names {unknown} that are not among the "
                         f"predictors {list(predictors)}")
    return spec

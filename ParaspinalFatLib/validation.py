"""Input checks and conversions shared by every stage: numeric and object arrays, required table columns.

Each check raises the caller's error class (``InputError`` in the measurement
pipeline, ``StatsError`` in :mod:`ParaspinalFatLib.stats`) with a message that
names what was checked, so the user knows which argument or column to fix.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional, Tuple, Type

import numpy as np

from .errors import InputError

__all__ = ["as_float_array", "factorize", "is_missing", "object_array", "require_columns", "texts_or_empty"]


def as_float_array(values: Any, what: str, *, error: Type[Exception] = InputError,
                   ndim: Optional[int] = None, copy: bool = False) -> np.ndarray:
    """``values`` as a float64 array, or a clear error naming ``what``.

    pandas Series/Index (also nullable dtypes) become float with missing values as
    NaN; booleans and integers are accepted; strings, complex numbers and other
    non-real values are refused.

    Parameters
    ----------
    values : array_like
        Numbers (list, numpy array, pandas Series...).
    what : str
        What the values are, for the message (``"column 'fat_pct'"``).
    error : type, optional
        Exception class to raise (default :class:`~ParaspinalFatLib.errors.InputError`).
    ndim : int, optional
        Required number of dimensions (e.g. 1); any when None.
    copy : bool, optional
        Always return a new array (the caller may modify it).

    Returns
    -------
    numpy.ndarray
        float64 array.
    """
    try:
        if hasattr(values, "to_numpy"):
            arr = values.to_numpy(dtype=float, na_value=np.nan)
        else:
            arr = np.asarray(values)
            if arr.dtype.kind == "O":
                arr = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise error(f"{what}: values are not numeric ({exc})") from None
    if arr.dtype.kind not in "biuf":
        raise error(f"{what}: values are not numeric (dtype {arr.dtype}); give real numbers")
    if ndim is not None and arr.ndim != ndim:
        raise error(f"{what}: expected a {ndim}-D sequence, got shape {arr.shape}")
    return np.array(arr, dtype=np.float64, copy=True) if copy else arr.astype(np.float64, copy=False)


def object_array(values: Iterable[Any]) -> np.ndarray:
    """A 1-D object array of ``values``, one entry per value (never a 2-D array of tuples or characters).

    Parameters
    ----------
    values : iterable
        Any objects (text, numbers, None, NaN).

    Returns
    -------
    numpy.ndarray of object
    """
    values = list(values)
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def is_missing(value: Any) -> bool:
    """Whether a table cell is missing: ``None``, a float NaN or ``pandas.NA``.

    ``pandas.NA`` is recognised by its type's name, so this module does not import pandas.

    Parameters
    ----------
    value : object
        One cell (text, number, None, NaN, ``pandas.NA``).

    Returns
    -------
    bool
    """
    return value is None or (isinstance(value, float) and np.isnan(value)) or type(value).__name__ == "NAType"


def texts_or_empty(values: Any) -> np.ndarray:
    """Each value as text, ``""`` for a missing one (``None``, NaN, ``pandas.NA``).

    Parameters
    ----------
    values : array_like
        A Series, array or list (e.g. a table's ``side`` column, ``""`` after a CSV round
        trip read as NaN).

    Returns
    -------
    numpy.ndarray of object
        ``str(value)``, or ``""`` where the value is missing.
    """
    items = values.tolist() if hasattr(values, "tolist") else list(values)
    if not items or set(map(type, items)) == {str}:
        return object_array(items)
    return object_array(["" if is_missing(v) else str(v) for v in items])


def factorize(values: Any, sort: bool = False, use_na_sentinel: bool = True) -> Tuple[np.ndarray, Any]:
    """``pandas.factorize(values, sort=sort)``: integer codes and the distinct values, texts fast.

    When every value is a ``str`` (a per-case table's subject, muscle, level and side columns)
    the codes are made with a dict, in order of first appearance or, with ``sort``, in sorted
    order: the same codes as pandas gives, without its per-call cost (tens of microseconds,
    which a few-row table pays dozens of times).  Anything else (numbers, missing values,
    mixed types) goes to ``pandas.factorize`` itself.

    Parameters
    ----------
    values : array_like
        A Series, array or list.
    sort : bool
        Number the distinct values in sorted order (else in order of first appearance).
    use_na_sentinel : bool
        As in pandas: missing values get code -1 (else a code of their own).

    Returns
    -------
    (numpy.ndarray of intp, sequence)
        The code of every value and the distinct values (``uniques[code]`` is the value): a
        list for texts, else what pandas returns.
    """
    items = values.tolist() if hasattr(values, "tolist") else list(values)
    try:
        first = dict.fromkeys(items)  # the distinct values in order of first appearance
    except TypeError:  # unhashable values: pandas says what is wrong
        first = {None: None}
    # every distinct value a str: every value is text (a str subclass equal to a str counts as that str,
    # as in pandas); missing values (None, NaN), numbers and mixtures go to pandas
    if not all(type(u) is str for u in first):
        import pandas as pd

        return pd.factorize(values if hasattr(values, "dtype") else object_array(items), sort=sort,
                            use_na_sentinel=use_na_sentinel)
    uniques = sorted(first) if sort else list(first)
    index = {u: i for i, u in enumerate(uniques)}
    return np.fromiter(map(index.__getitem__, items), dtype=np.intp, count=len(items)), uniques


def require_columns(data: Any, columns: Iterable[Any], what: str = "", *,
                    error: Type[Exception] = InputError, hint: str = "") -> None:
    """Raise ``error`` naming every column of ``columns`` missing from the DataFrame ``data``.

    Parameters
    ----------
    data : pandas.DataFrame
        The table to check (anything else is refused).
    columns : iterable of str
        Columns that must be present.
    what : str, optional
        Who needs them, put in front of the message (``"grade_summary"``).
    error : type, optional
        Exception class to raise (default :class:`~ParaspinalFatLib.errors.InputError`).
    hint : str, optional
        Appended to the message (e.g. where the expected columns are documented).
    """
    prefix = f"{what}: " if what else ""
    if not (hasattr(data, "columns") and hasattr(data, "loc")):
        raise error(f"{prefix}expected a pandas DataFrame, got {type(data).__name__}")
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise error(f"{prefix}column(s) {missing} not in the table; available columns: "
                    f"{list(data.columns)}{hint}")

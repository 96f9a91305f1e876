"""Shared pieces of the statistics package: the error type and input helpers."""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from ..errors import ParaspinalFatError, ParaspinalFatWarning


class StatsError(ParaspinalFatError, ValueError):
    """A statistics input problem that the user must fix (names the column/group)."""


class StatsWarning(ParaspinalFatWarning):
    """A result is defined but degenerate (undefined CI, zero-variance group, ...)."""


def require_columns(data: pd.DataFrame, columns: Iterable[str]) -> None:
    """Raise :class:`StatsError` naming every column of ``columns`` missing from ``data``."""
    if not isinstance(data, pd.DataFrame):
        raise StatsError(f"expected a pandas DataFrame, got {type(data).__name__}")
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise StatsError(
            f"column(s) {missing} not in the table; available columns: {list(data.columns)}"
        )


def listwise(data: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Rows of ``data[columns]`` with no missing value (listwise deletion).

    The caller reports ``len(result)`` as the n actually used.
    """
    require_columns(data, columns)
    return data.loc[:, list(columns)].dropna(axis=0, how="any")


def as_float_array(values, name: str) -> np.ndarray:
    """``values`` as a 1-D float64 array; a clear error if it is not numeric."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise StatsError(f"{name}: values are not numeric ({exc})") from None
    if arr.ndim != 1:
        raise StatsError(f"{name}: expected a 1-D sequence, got shape {arr.shape}")
    return arr

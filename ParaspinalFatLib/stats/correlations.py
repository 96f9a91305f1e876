"""Pearson and Spearman correlation with p-values and confidence intervals.

Conventions
-----------
* p-values are two-sided, from t = r sqrt((n - 2) / (1 - r^2)) on n - 2 df.  For Pearson
  this is exact under bivariate normality.  For Spearman it is the large-sample
  t-approximation that SPSS (NONPAR CORR) and ``scipy.stats.spearmanr`` use; R's
  ``cor.test`` instead gives an *exact* permutation p for n < 1290 without ties.  On the
  Hollander & Wolfe (1973) example (n = 9, rho = 0.6) the t-approximation gives
  p = 0.0876 where R prints the exact 0.0968; expect such differences for small n.
* Spearman's rho is Pearson's r of the mid-ranks (ties get average ranks), as SPSS.
* The CI is Fisher's z: tanh(atanh(r) +/- z_{1-alpha/2} / sqrt(n - 3)) with alpha =
  1 - confidence (as R ``cor.test`` for Pearson).  For Spearman the same formula is an
  *approximation* (used by pingouin); Bonett-Wright or Fieller standard errors are
  alternatives and no published reference exists.  It needs n >= 4; for n = 3 the CI is
  NaN with a note.
* Missing values: pairs with either value missing are dropped (per pair of variables in
  :func:`correlation_table` by default, SPSS "exclude cases pairwise").
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Hashable, List, Sequence, Union

import numpy as np
import pandas as pd
from scipy import stats as _sps

from ..errors import StatsError
from .deprecation import DeprecatedAttribute, renamed_arguments
from .numerics import DEPRECATED_ALPHA, accurate_mean, significance_level
from .validation import check_confidence, note, numeric_column, require_columns, require_variance

__all__ = ["correlation", "correlation_table", "CorrelationResult", "CorrelationTableResult"]

_METHODS = ("pearson", "spearman")
_P_METHOD = "two-sided t-test of r on n - 2 df"
_CI_METHOD = {
    "pearson": "Fisher z, SE 1/sqrt(n - 3)",
    "spearman": "Fisher z, SE 1/sqrt(n - 3) (approximation for Spearman)",
}


@dataclass
class CorrelationResult:
    """Result of :func:`correlation`.

    Parameters
    ----------
    x : hashable
        First column.
    y : hashable
        Second column.
    method : str
        ``"pearson"`` or ``"spearman"``.
    r : float
        Pearson r or Spearman rho.
    n : int
        Complete pairs used.
    n_missing : int
        Rows dropped because x or y is missing.
    df : int
        n - 2.
    t : float
        t statistic.
    p : float
        Two-sided p.
    ci_low : float
        Lower bound of the ``confidence`` CI (NaN with a note when n = 3).
    ci_high : float
        Upper bound of the CI.
    confidence : float
        Confidence level of the CI.
    p_method : str
        How p was computed.
    ci_method : str
        How the CI was computed.
    notes : list of str
        Degenerate results.
    """

    x: Hashable
    y: Hashable
    method: str
    r: float
    n: int
    n_missing: int
    df: int
    t: float
    p: float
    ci_low: float
    ci_high: float
    confidence: float
    p_method: str
    ci_method: str
    notes: List[str] = field(default_factory=list)

    alpha = DeprecatedAttribute("confidence", significance_level, "alpha = 1 - confidence")

    def to_frame(self) -> pd.DataFrame:
        """One-row table of the correlation.

        Returns
        -------
        pandas.DataFrame
            Columns x, y, method, n, r, t, df, p, ci_low, ci_high.
        """
        return pd.DataFrame([{
            "x": self.x, "y": self.y, "method": self.method, "n": self.n, "r": self.r,
            "t": self.t, "df": self.df, "p": self.p, "ci_low": self.ci_low,
            "ci_high": self.ci_high,
        }])


def _pearson_r(a: np.ndarray, b: np.ndarray) -> float:
    # corrected two-pass cross products (exact to first order even if the means round)
    n = a.size
    da = a - accurate_mean(a)
    db = b - accurate_mean(b)
    ca, cb = math.fsum(da), math.fsum(db)
    sxy = math.fsum(da * db) - ca * cb / n
    sxx = math.fsum(da * da) - ca * ca / n
    syy = math.fsum(db * db) - cb * cb / n
    r = sxy / math.sqrt(sxx * syy)
    return min(1.0, max(-1.0, r))


def _corr_arrays(x: Hashable, y: Hashable, a: np.ndarray, b: np.ndarray, method: str,
                 confidence: float, n_missing: int) -> CorrelationResult:
    n = int(a.size)
    if n < 3:
        raise StatsError(
            f"correlation of {x!r} and {y!r}: {n} complete pair(s); at least 3 are needed"
        )
    require_variance(a, x, f"in the {n} complete pairs with {y!r}")
    require_variance(b, y, f"in the {n} complete pairs with {x!r}")
    if method == "spearman":
        a, b = _sps.rankdata(a), _sps.rankdata(b)
    notes: List[str] = []
    r = _pearson_r(a, b)
    df = n - 2
    if abs(r) == 1.0:
        t, p = math.copysign(math.inf, r), 0.0
    else:
        t = r * math.sqrt(df / ((1.0 - r) * (1.0 + r)))
        p = float(2.0 * _sps.t.sf(abs(t), df))
    if n > 3:
        alpha = significance_level(confidence)
        z = float(_sps.norm.ppf(1.0 - alpha / 2.0))
        zr = math.atanh(r) if abs(r) < 1.0 else math.copysign(math.inf, r)
        h = z / math.sqrt(n - 3)
        lo, hi = math.tanh(zr - h), math.tanh(zr + h)
    else:
        lo = hi = math.nan
        note(notes, f"correlation of {x!r} and {y!r}: n = 3, the Fisher z CI is undefined")
    return CorrelationResult(
        x=x, y=y, method=method, r=r, n=n, n_missing=n_missing, df=df, t=t, p=p,
        ci_low=lo, ci_high=hi, confidence=confidence, p_method=_P_METHOD,
        ci_method=_CI_METHOD[method], notes=notes,
    )


def _check_method(method: str) -> str:
    m = str(method).lower()
    if m not in _METHODS:
        raise StatsError(f"correlation method must be one of {_METHODS}, got {method!r}")
    return m


@renamed_arguments({"alpha": DEPRECATED_ALPHA}, options=("method",))
def correlation(
    data: pd.DataFrame,
    x: Hashable,
    y: Hashable,
    *,
    method: str = "pearson",
    confidence: float = 0.95,
) -> CorrelationResult:
    """Correlation of two numeric columns with a two-sided p and a Fisher-z CI.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject.
    x : column name
        Numeric column (e.g. ``"vbmd"``).
    y : column name
        Numeric column (e.g. ``"mf_pdff"``).
    method : {"pearson", "spearman"}, default "pearson"
        Pearson's r or Spearman's rho (Pearson's r of the mid-ranks).
    confidence : float, default 0.95
        Level of the CI.

    Returns
    -------
    CorrelationResult
        r, n, t, p and CI; ``to_frame()`` gives one row.

    Raises
    ------
    StatsError
        Missing column, non-numeric values, fewer than 3 complete pairs, or a column with
        zero variance among the complete pairs.
    """
    method = _check_method(method)
    confidence = check_confidence(confidence)
    require_columns(data, [x, y])
    if x == y:
        raise StatsError(f"correlation: x and y are the same column {x!r}")
    a, b = numeric_column(data, x), numeric_column(data, y)
    ok = ~(np.isnan(a) | np.isnan(b))
    return _corr_arrays(x, y, a[ok], b[ok], method, confidence, int((~ok).sum()))


@dataclass
class CorrelationTableResult:
    """Result of :func:`correlation_table`.

    Parameters
    ----------
    target : hashable
        The column every column was correlated with.
    method : str
        ``"pearson"`` or ``"spearman"``.
    missing : str
        ``"pairwise"`` or ``"listwise"``.
    results : list of CorrelationResult
        One per column, in the order given (``x`` = the column, ``y`` = the target).
    notes : list of str
        Degenerate results.
    """

    target: Hashable
    method: str
    missing: str
    results: List[CorrelationResult] = field(repr=False)
    notes: List[str] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """One row per column correlated with the target.

        Returns
        -------
        pandas.DataFrame
            Columns variable, target, method, n, r, t, df, p, ci_low, ci_high.
        """
        rows = [{
            "variable": res.x, "target": self.target, "method": self.method, "n": res.n,
            "r": res.r, "t": res.t, "df": res.df, "p": res.p, "ci_low": res.ci_low,
            "ci_high": res.ci_high,
        } for res in self.results]
        return pd.DataFrame(rows)


@renamed_arguments({"variables": "columns", "alpha": DEPRECATED_ALPHA}, options=("method",))
def correlation_table(
    data: pd.DataFrame,
    target: Hashable,
    columns: Union[Hashable, Sequence[Hashable]],
    *,
    method: str = "pearson",
    missing: str = "pairwise",
    confidence: float = 0.95,
) -> CorrelationTableResult:
    """Correlate each of ``columns`` with ``target`` (seed paper 001, Table 4).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject.
    target : column name
        E.g. ``"vbmd"``.
    columns : column name or list of column names
        E.g. age, BMI and the muscle CSA/PDFF columns.
    method : {"pearson", "spearman"}, default "pearson"
        As in :func:`correlation`.
    missing : {"pairwise", "listwise"}, default "pairwise"
        Pairwise: each row of the table uses every subject with both values (SPSS
        default).  Listwise: only subjects complete on the target and all columns.
    confidence : float, default 0.95
        Level of the CIs.

    Returns
    -------
    CorrelationTableResult
        ``to_frame()`` has one row per column; no multiplicity adjustment is applied.

    Raises
    ------
    StatsError
        As :func:`correlation`, naming the offending column; also an empty or
        duplicated column list or the target among the columns.
    """
    method = _check_method(method)
    confidence = check_confidence(confidence)
    if missing not in ("pairwise", "listwise"):
        raise StatsError(f"correlation_table: missing must be 'pairwise' or 'listwise', "
                         f"got {missing!r}")
    variables = [columns] if isinstance(columns, str) else list(columns)
    if not variables:
        raise StatsError("correlation_table: no columns given")
    if len(set(variables)) != len(variables):
        raise StatsError(f"correlation_table: a column is listed twice: {variables}")
    if target in variables:
        raise StatsError(f"correlation_table: the target {target!r} is also in columns")
    require_columns(data, [target] + variables)
    t = numeric_column(data, target)
    cols = {v: numeric_column(data, v) for v in variables}
    base = ~np.isnan(t)
    if missing == "listwise":
        for v in variables:
            base &= ~np.isnan(cols[v])
    results = []
    notes: List[str] = []
    for v in variables:
        ok = base & ~np.isnan(cols[v])
        res = _corr_arrays(v, target, cols[v][ok], t[ok], method, confidence, int((~ok).sum()))
        notes.extend(res.notes)
        results.append(res)
    return CorrelationTableResult(target=target, method=method, missing=missing,
                                  results=results, notes=notes)

"""Empirical ROC analysis: AUC with DeLong CI, Youden cut-off, DeLong test of two AUCs.

DeLong's variance is computed with the O(n log n) mid-rank algorithm of Sun &
Xu (2014, IEEE Signal Process Lett 21:1389) -- one sort of the pooled scores --
instead of the O(n_pos * n_neg) placement values; ties count 1/2 as in the
Mann-Whitney statistic.  Results equal R pROC (``ci.auc``, ``var``, ``cov``,
``roc.test(method="delong")``).

Direction convention (as pROC): ``"<"`` means controls score lower than cases
(a higher score predicts the positive class); ``">"`` the reverse.  ``"auto"``
picks ``"<"`` when median(controls) <= median(cases), else ``">"`` -- pROC's
rule, decided from the medians, not from which AUC is larger, so an AUC below
0.5 is possible (and honest) with ``"auto"``.  The chosen direction is reported.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import StatsError
from .deprecation import OldOrder, renamed_arguments
from .numerics import midranks_sorted, wilson_ci, z_quantile
from .validation import as_float_array, check_confidence, plain, require_columns

__all__ = ["roc", "roc_compare", "ROCResult", "ROCCompareResult", "Placements", "placements"]

_DIRECTIONS = ("auto", "<", ">")


# ---------------------------------------------------------------------------
# input handling
# ---------------------------------------------------------------------------

def _outcome_array(values: Any, name: str) -> np.ndarray:
    if isinstance(values, (pd.Series, pd.Index)):
        return values.to_numpy()
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise StatsError(f"{name}: expected a 1-D sequence, got shape {arr.shape}")
    return arr


def _prepare(y: Any, scores: list, score_names: list, positive: Any,
             outcome_name: str) -> Tuple[np.ndarray, List[np.ndarray], int]:
    """Listwise-complete (is_case, [score arrays], n_excluded) with class checks."""
    y = _outcome_array(y, outcome_name)
    arrays = [as_float_array(_outcome_array(s, nm), nm) for s, nm in zip(scores, score_names)]
    for arr, nm in zip(arrays, score_names):
        if arr.shape[0] != y.shape[0]:
            raise StatsError(f"{nm} has {arr.shape[0]} values but {outcome_name} has {y.shape[0]}")
    keep = ~np.asarray(pd.isna(y), dtype=bool)
    for arr in arrays:
        keep &= ~np.isnan(arr)
    n_excluded = int(y.shape[0] - keep.sum())
    if not keep.all():
        y = y[keep]
        arrays = [arr[keep] for arr in arrays]
    levels = pd.unique(y)
    if len(levels) > 2:
        shown = plain(levels)
        raise StatsError(
            f"{outcome_name} has {len(levels)} distinct values {shown}; ROC needs a binary outcome"
        )
    if y.dtype.kind in "USO":
        is_case = np.fromiter((v == positive for v in y), dtype=bool, count=y.shape[0])
    else:
        is_case = np.asarray(y == positive, dtype=bool)
    n_pos = int(is_case.sum())
    n_neg = int(is_case.shape[0] - n_pos)
    if n_pos == 0 or n_neg == 0:
        raise StatsError(
            f"{outcome_name} has a single class after removing missing values "
            f"(positive={positive!r}: {n_pos} cases, {n_neg} controls; levels {plain(levels)}); "
            "ROC needs both cases and controls"
        )
    if n_pos < 2 or n_neg < 2:
        raise StatsError(
            f"n too small: {n_pos} cases and {n_neg} controls in {outcome_name}; "
            "DeLong's variance needs at least 2 of each"
        )
    return is_case, arrays, n_excluded


def _choose_direction(direction: str, cases: np.ndarray, controls: np.ndarray) -> str:
    if direction not in _DIRECTIONS:
        raise StatsError(f"direction must be 'auto', '<' or '>', got {direction!r}")
    if direction != "auto":
        return direction
    return "<" if np.median(controls) <= np.median(cases) else ">"


# ---------------------------------------------------------------------------
# DeLong (Sun & Xu 2014)
# ---------------------------------------------------------------------------

@dataclass
class Placements:
    """AUC and DeLong structural components of one oriented score (see :func:`placements`).

    Parameters
    ----------
    auc : float
        Mann-Whitney AUC, ``mean(v10)``.
    v10 : numpy.ndarray
        Structural component of each case (original case order): the fraction of
        controls below it, ties counting 1/2.
    v01 : numpy.ndarray
        Structural component of each control (original control order): the fraction
        of cases above it.
    sorted_values : numpy.ndarray
        The pooled scores in ascending order.
    sorted_is_case : numpy.ndarray
        Whether each of ``sorted_values`` is a case.
    """

    auc: float
    v10: np.ndarray
    v01: np.ndarray
    sorted_values: np.ndarray = field(repr=False)
    sorted_is_case: np.ndarray = field(repr=False)


def placements(cases: np.ndarray, controls: np.ndarray) -> Placements:
    """AUC and DeLong structural components from one sort of the pooled scores.

    With T_z the mid-ranks in the pooled sample and T_x, T_y those within the
    cases and within the controls: V10 = (T_z - T_x) / n for each case (the
    fraction of controls below it, ties 1/2), V01 = 1 - (T_z - T_y) / m for each
    control (the fraction of cases above it), AUC = mean(V10).  This is the
    O(n log n) algorithm of Sun & Xu (2014); DeLong's variance of the AUC is
    ``var(v10, ddof=1) / m + var(v01, ddof=1) / n``.

    Parameters
    ----------
    cases : numpy.ndarray
        Scores of the m cases, oriented so that higher means positive.
    controls : numpy.ndarray
        Scores of the n controls, same orientation.

    Returns
    -------
    Placements
        The AUC and the components.
    """
    m, n = cases.shape[0], controls.shape[0]
    pooled = np.concatenate([cases, controls])
    order = np.argsort(pooled, kind="stable")
    values = pooled[order]
    tz = midranks_sorted(values)
    is_case = order < m
    tx = midranks_sorted(values[is_case])
    ty = midranks_sorted(values[~is_case])
    v10 = np.empty(m)
    v01 = np.empty(n)
    v10[order[is_case]] = (tz[is_case] - tx) / n
    v01[order[~is_case] - m] = 1.0 - (tz[~is_case] - ty) / m
    auc = float((tz[is_case].sum() - m * (m + 1) / 2.0) / (float(m) * n))
    return Placements(auc, v10, v01, values, is_case)


def _delong_cov(p1: Placements, p2: Placements) -> float:
    m, n = p1.v10.shape[0], p1.v01.shape[0]
    s10 = np.dot(p1.v10 - p1.v10.mean(), p2.v10 - p2.v10.mean()) / (m - 1)
    s01 = np.dot(p1.v01 - p1.v01.mean(), p2.v01 - p2.v01.mean()) / (n - 1)
    return float(s10 / m + s01 / n)


def _oriented(is_case: np.ndarray, score: np.ndarray,
              direction: str) -> Tuple[np.ndarray, np.ndarray, str]:
    cases, controls = score[is_case], score[~is_case]
    chosen = _choose_direction(direction, cases, controls)
    if chosen == ">":
        return -cases, -controls, chosen
    return cases, controls, chosen


# ---------------------------------------------------------------------------
# roc
# ---------------------------------------------------------------------------

@dataclass
class ROCResult:
    """Empirical ROC curve of one score (result of :func:`roc`).

    Parameters
    ----------
    auc : float
        Area under the curve (Mann-Whitney, ties 1/2).
    se : float
        DeLong standard error of the AUC.
    ci_low : float
        Lower CI bound ``auc - z se``, clipped to [0, 1].
    ci_high : float
        Upper CI bound ``auc + z se``, clipped to [0, 1].
    confidence : float
        Confidence level of the intervals.
    n : int
        Subjects used.
    n_pos : int
        Cases used.
    n_neg : int
        Controls used.
    n_excluded : int
        Rows dropped for a missing outcome or score.
    direction : str
        ``"<"`` (higher score = positive) or ``">"`` (lower score = positive).
    positive : object
        Outcome value of the cases.
    youden_threshold : float
        Cut-off maximising sensitivity + specificity - 1 (score units).
    youden_j : float
        The maximum of sensitivity + specificity - 1.
    sensitivity : float
        Sensitivity at the Youden cut-off.
    sensitivity_ci : tuple of float
        Its Wilson score interval.
    specificity : float
        Specificity at the Youden cut-off.
    specificity_ci : tuple of float
        Its Wilson score interval.
    tp : int
        True positives at the Youden cut-off.
    fn : int
        False negatives at the Youden cut-off.
    tn : int
        True negatives at the Youden cut-off.
    fp : int
        False positives at the Youden cut-off.
    n_youden_optima : int
        Number of cut-offs reaching the maximum J (ties go to the highest sensitivity).
    fpr : numpy.ndarray
        False-positive rates of the curve points, from 0 to 1.
    tpr : numpy.ndarray
        True-positive rates of the curve points, from 0 to 1.
    thresholds : numpy.ndarray
        Thresholds of the curve points in score units: pROC/SPSS mid-points between
        consecutive distinct scores plus -/+inf.  A case is called positive when
        score >= threshold (``"<"``) or score <= threshold (``">"``).
    """

    auc: float
    se: float
    ci_low: float
    ci_high: float
    confidence: float
    n: int
    n_pos: int
    n_neg: int
    n_excluded: int
    direction: str
    positive: object
    youden_threshold: float
    youden_j: float
    sensitivity: float
    sensitivity_ci: tuple
    specificity: float
    specificity_ci: tuple
    tp: int
    fn: int
    tn: int
    fp: int
    n_youden_optima: int
    fpr: np.ndarray = field(repr=False)
    tpr: np.ndarray = field(repr=False)
    thresholds: np.ndarray = field(repr=False)

    @property
    def variance(self) -> float:
        """DeLong variance of the AUC (``se**2``).

        Returns
        -------
        float
            The variance.
        """
        return self.se ** 2

    def to_frame(self) -> pd.DataFrame:
        """One-row tidy summary (AUC, CI, Youden point with Wilson CIs, counts).

        Returns
        -------
        pandas.DataFrame
            One row.
        """
        return pd.DataFrame([{
            "auc": self.auc, "se": self.se, "ci_low": self.ci_low, "ci_high": self.ci_high,
            "direction": self.direction, "youden_threshold": self.youden_threshold,
            "youden_j": self.youden_j, "sensitivity": self.sensitivity,
            "sensitivity_ci_low": self.sensitivity_ci[0], "sensitivity_ci_high": self.sensitivity_ci[1],
            "specificity": self.specificity,
            "specificity_ci_low": self.specificity_ci[0], "specificity_ci_high": self.specificity_ci[1],
            "tp": self.tp, "fn": self.fn, "tn": self.tn, "fp": self.fp,
            "n": self.n, "n_pos": self.n_pos, "n_neg": self.n_neg, "n_excluded": self.n_excluded,
            "confidence": self.confidence,
        }])

    def curve_frame(self) -> pd.DataFrame:
        """The curve for plotting.

        Returns
        -------
        pandas.DataFrame
            Columns threshold, fpr, tpr, sensitivity, specificity; one row per point.
        """
        return pd.DataFrame({"threshold": self.thresholds, "fpr": self.fpr, "tpr": self.tpr,
                             "sensitivity": self.tpr, "specificity": 1.0 - self.fpr})


def _curve(pl: Placements, m: int, n: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts at every mid-point threshold, ascending in the oriented score."""
    values = pl.sorted_values
    k = values.shape[0]
    change = np.empty(k, dtype=bool)
    change[0] = True
    np.not_equal(values[1:], values[:-1], out=change[1:])
    starts = np.flatnonzero(change)
    uniq = values[starts]
    cases_per = np.add.reduceat(pl.sorted_is_case.astype(np.int64), starts)
    total_per = np.diff(np.append(starts, k))
    cum_cases = np.cumsum(cases_per)
    cum_controls = np.cumsum(total_per - cases_per)
    # threshold j (0..K): -inf, mid-points, +inf; called positive: value > threshold
    tp = np.concatenate([[m], m - cum_cases])
    fp = np.concatenate([[n], n - cum_controls])
    with np.errstate(over="ignore", invalid="ignore"):
        mids = (uniq[:-1] + uniq[1:]) / 2.0
    thr = np.concatenate([[-np.inf], mids, [np.inf]])
    return thr, tp, fp


def _outcome_values_first(args: tuple, kwargs: Dict[str, Any]) -> bool:
    """Previous release: ``roc(y_true, score, positive, direction)``, outcome values first."""
    return bool(args) and args[0] is not None and not isinstance(args[0], pd.DataFrame)


def _old_dataframe_form(args: tuple, kwargs: Dict[str, Any]) -> bool:
    """Previous release: ``roc(df, score, ..., outcome=column)`` (score second)."""
    return "outcome" in kwargs and len(args) > 1


@renamed_arguments(
    {"outcome": "dv", "y_true": "dv"},
    old_orders=(OldOrder(("dv", "score", "positive", "direction"), _outcome_values_first),
                OldOrder(("data", "score", "positive", "direction"), _old_dataframe_form)),
)
def roc(
    data: Optional[pd.DataFrame] = None,
    dv: Any = None,
    score: Any = None,
    *,
    positive: Any = 1,
    direction: str = "auto",
    confidence: float = 0.95,
) -> ROCResult:
    """Empirical ROC curve, AUC with DeLong 95% CI, and the Youden cut-off.

    Parameters
    ----------
    data : pandas.DataFrame or None, default None
        Table holding the ``dv`` and ``score`` columns; ``None`` to pass the values
        themselves (``roc(dv=outcome_values, score=scores)``).
    dv : column name or array_like
        Binary outcome (e.g. ``"poor_outcome"``).
    score : column name or array_like
        Marker / predicted score.
    positive : object, default 1
        Outcome value of the cases (e.g. ``"Poor"``); the other value are controls.
    direction : {"auto", "<", ">"}, default "auto"
        ``"<"``: controls < cases (higher score = positive); ``">"``: the reverse;
        ``"auto"``: pROC's median rule (see module docstring).
    confidence : float, default 0.95
        Level of the AUC and sensitivity/specificity intervals.

    Returns
    -------
    ROCResult
        AUC with CI, the curve (``curve_frame()``) and the Youden point.

    Notes
    -----
    AUC is the Mann-Whitney probability P(case > control) + P(tie)/2.  The
    DeLong variance is S10/m + S01/n from the structural components; the CI
    ``auc -/+ z se`` is clipped to [0, 1] like pROC.  The Youden point maximises
    sensitivity + specificity - 1 over the mid-point thresholds (exact integer
    comparison); ties go to the highest sensitivity.  Sensitivity/specificity
    CIs are Wilson score intervals (pROC only bootstraps them).  Rows with a
    missing outcome or score are dropped; ``n_excluded`` counts them.

    The previous release's spellings ``roc(y_true, score, positive, direction)`` and
    ``roc(df, outcome=, score=)`` still work, with a :class:`DeprecationWarning`.

    Raises
    ------
    StatsError
        Missing column, non-numeric score, outcome with more than two values,
        a single class, or fewer than 2 cases or controls.
    """
    conf = check_confidence(confidence)
    if data is not None:
        if not isinstance(dv, str) or not isinstance(score, str):
            raise StatsError("DataFrame form: give dv= and score= column names")
        require_columns(data, [dv, score])
        y, s, names = data[dv], data[score], (dv, score)
    else:
        if dv is None or score is None:
            raise StatsError("give the outcome and the scores: roc(data, dv=column, "
                             "score=column) or roc(dv=values, score=values)")
        y, s, names = dv, score, ("dv", "score")
    is_case, (s,), n_excl = _prepare(y, [s], [names[1]], positive, names[0])
    cases, controls, chosen = _oriented(is_case, s, direction)
    m, n = cases.shape[0], controls.shape[0]
    pl = placements(cases, controls)
    var = float(np.var(pl.v10, ddof=1) / m + np.var(pl.v01, ddof=1) / n)
    se = float(np.sqrt(max(var, 0.0)))
    zq = z_quantile(conf)
    thr, tp, fp = _curve(pl, m, n)
    tn = n - fp
    j_num = tp.astype(np.int64) * n + tn.astype(np.int64) * m - m * n  # J * m * n, exact
    best = j_num.max()
    optima = np.flatnonzero(j_num == best)
    i = optima[np.argmax(tp[optima])]  # highest sensitivity among ties
    sign = -1.0 if chosen == ">" else 1.0
    thresholds = sign * thr[::-1]            # ascending fpr order
    fpr = (fp / n)[::-1]
    tpr = (tp / m)[::-1]
    tp_i, fp_i = int(tp[i]), int(fp[i])
    return ROCResult(
        auc=pl.auc, se=se, ci_low=max(0.0, pl.auc - zq * se), ci_high=min(1.0, pl.auc + zq * se),
        confidence=conf, n=m + n, n_pos=m, n_neg=n, n_excluded=n_excl, direction=chosen,
        positive=positive, youden_threshold=float(sign * thr[i]),
        youden_j=float(best) / (float(m) * n), sensitivity=tp_i / m,
        sensitivity_ci=wilson_ci(tp_i, m, conf), specificity=(n - fp_i) / n,
        specificity_ci=wilson_ci(n - fp_i, n, conf), tp=tp_i, fn=m - tp_i, tn=n - fp_i,
        fp=fp_i, n_youden_optima=int(optima.shape[0]), fpr=fpr, tpr=tpr, thresholds=thresholds,
    )


# ---------------------------------------------------------------------------
# roc_compare
# ---------------------------------------------------------------------------

@dataclass
class ROCCompareResult:
    """DeLong test of two correlated (paired) AUCs (result of :func:`roc_compare`).

    Parameters
    ----------
    auc1 : float
        AUC of the first score.
    auc2 : float
        AUC of the second score.
    difference : float
        ``auc1 - auc2``.
    se : float
        SE of the difference, sqrt(var1 + var2 - 2 cov).
    ci_low : float
        Lower bound of the CI of the difference (not clipped).
    ci_high : float
        Upper bound of the CI of the difference (not clipped).
    confidence : float
        Confidence level of the interval.
    z : float
        ``difference / se``.
    p : float
        p-value for ``alternative``.
    alternative : str
        ``"two-sided"``, ``"greater"`` or ``"less"``.
    var1 : float
        DeLong variance of ``auc1``.
    var2 : float
        DeLong variance of ``auc2``.
    cov : float
        DeLong covariance of the two AUCs.
    direction1 : str
        Direction used for the first score.
    direction2 : str
        Direction used for the second score.
    n : int
        Subjects used.
    n_pos : int
        Cases used.
    n_neg : int
        Controls used.
    n_excluded : int
        Rows dropped for a missing outcome or score.
    """

    auc1: float
    auc2: float
    difference: float
    se: float
    ci_low: float
    ci_high: float
    confidence: float
    z: float
    p: float
    alternative: str
    var1: float
    var2: float
    cov: float
    direction1: str
    direction2: str
    n: int
    n_pos: int
    n_neg: int
    n_excluded: int

    def to_frame(self) -> pd.DataFrame:
        """One-row tidy table of the comparison.

        Returns
        -------
        pandas.DataFrame
            One row.
        """
        return pd.DataFrame([{k: getattr(self, k) for k in (
            "auc1", "auc2", "difference", "se", "ci_low", "ci_high", "z", "p", "alternative",
            "var1", "var2", "cov", "direction1", "direction2", "n", "n_pos", "n_neg",
            "n_excluded", "confidence")}])


@renamed_arguments(
    {"outcome": "dv", "y_true": "dv"},
    old_orders=(
        OldOrder(("dv", "score1", "score2", "positive", "direction"), _outcome_values_first),
        OldOrder(("data", "score1", "score2", "positive", "direction"), _old_dataframe_form),
    ),
)
def roc_compare(
    data: Optional[pd.DataFrame] = None,
    dv: Any = None,
    score1: Any = None,
    score2: Any = None,
    *,
    positive: Any = 1,
    direction: Union[str, Sequence[str]] = "auto",
    alternative: str = "two-sided",
    confidence: float = 0.95,
) -> ROCCompareResult:
    """DeLong test for the difference of two correlated AUCs (same subjects).

    Parameters
    ----------
    data : pandas.DataFrame or None, default None
        Table holding the ``dv``, ``score1`` and ``score2`` columns; ``None`` to pass
        the values themselves.
    dv : column name or array_like
        Binary outcome.
    score1 : column name or array_like
        First score, measured on the same subjects as ``score2``.
    score2 : column name or array_like
        Second score.
    positive : object, default 1
        Outcome value of the cases.
    direction : "auto", "<", ">" or a pair of them, default "auto"
        Per score; ``"auto"`` decides each score separately by the median rule,
        as pROC does when each ROC curve is built with its own ``roc()`` call.
    alternative : {"two-sided", "greater", "less"}, default "two-sided"
        H1: AUC1 != AUC2, AUC1 > AUC2, AUC1 < AUC2.
    confidence : float, default 0.95
        Level of the interval of the difference.

    Returns
    -------
    ROCCompareResult
        Both AUCs, their difference with CI, z and p.

    Notes
    -----
    z = (AUC1 - AUC2) / sqrt(V1 + V2 - 2 C) with DeLong variances V and
    covariance C from the structural components (DeLong, DeLong &
    Clarke-Pearson 1988); this is pROC ``roc.test(method="delong", paired=TRUE)``.
    Rows missing the outcome or either score are dropped (listwise).

    The previous release's spellings ``roc_compare(y_true, score1, score2, ...)`` and
    ``roc_compare(df, outcome=, ...)`` still work, with a :class:`DeprecationWarning`.

    Raises
    ------
    StatsError
        As :func:`roc`; also an unknown ``alternative``.
    """
    conf = check_confidence(confidence)
    if alternative not in ("two-sided", "greater", "less"):
        raise StatsError(f"alternative must be 'two-sided', 'greater' or 'less', got {alternative!r}")
    if data is not None:
        if not all(isinstance(c, str) for c in (dv, score1, score2)):
            raise StatsError("DataFrame form: give dv=, score1= and score2= column names")
        require_columns(data, [dv, score1, score2])
        y, s1, s2 = data[dv], data[score1], data[score2]
        names = (dv, score1, score2)
    else:
        if dv is None or score1 is None or score2 is None:
            raise StatsError("give the outcome and both scores: roc_compare(data, dv=column, "
                             "score1=column, score2=column) or roc_compare(dv=values, "
                             "score1=values, score2=values)")
        y, s1, s2, names = dv, score1, score2, ("dv", "score1", "score2")
    if isinstance(direction, str):
        dirs = (direction, direction)
    else:
        dirs = tuple(direction)
        if len(dirs) != 2:
            raise StatsError("direction must be one value or a pair of values")
    is_case, (s1, s2), n_excl = _prepare(y, [s1, s2], list(names[1:]), positive, names[0])
    c1, k1, d1 = _oriented(is_case, s1, dirs[0])
    c2, k2, d2 = _oriented(is_case, s2, dirs[1])
    p1, p2 = placements(c1, k1), placements(c2, k2)
    v1, v2, cv = _delong_cov(p1, p1), _delong_cov(p2, p2), _delong_cov(p1, p2)
    diff = p1.auc - p2.auc
    var = v1 + v2 - 2.0 * cv
    se = float(np.sqrt(var)) if var > 0 else 0.0
    if se > 0:
        z = diff / se
    else:
        z = 0.0 if diff == 0 else float(np.sign(diff) * np.inf)
    if alternative == "two-sided":
        p = float(2.0 * stats.norm.sf(abs(z)))
    elif alternative == "greater":
        p = float(stats.norm.sf(z))
    else:
        p = float(stats.norm.cdf(z))
    zq = z_quantile(conf)
    m = int(is_case.sum())
    return ROCCompareResult(
        auc1=p1.auc, auc2=p2.auc, difference=diff, se=se, ci_low=diff - zq * se,
        ci_high=diff + zq * se, confidence=conf, z=float(z), p=p, alternative=alternative,
        var1=v1, var2=v2, cov=cv, direction1=d1, direction2=d2, n=int(is_case.shape[0]),
        n_pos=m, n_neg=int(is_case.shape[0]) - m, n_excluded=n_excl,
    )

"""Comparison of group means: Levene's test, independent-samples t-test, one-way ANOVA.

Conventions (chosen to reproduce SPSS, which the seed papers used)
-------------------------------------------------------------------
* Levene's test is the *mean-centred* original (Levene 1960), SPSS's "Based on Mean";
  ``center="median"`` gives the Brown-Forsythe variant.
* Group order is explicit: ``order=`` or else category order / sorted labels.  The t-test
  difference is ``mean(first) - mean(second)``; post hoc differences are
  ``mean(group_a) - mean(group_b)`` for every pair with group_a before group_b in that
  order (each pair once, unlike SPSS which prints both directions).
* The t-test always reports both Student (pooled variance, df = n1 + n2 - 2) and Welch
  (Satterthwaite df) lines with Levene's test, as SPSS does; choosing between them is
  the analyst's decision.  Cohen's d uses the pooled SD (SPSS >= 27 "point estimate");
  Hedges' g multiplies d by the exact correction Gamma(df/2) / (sqrt(df/2) Gamma((df-1)/2)).
* One-way ANOVA always reports Welch's ANOVA (Welch 1951; fractional df2) and Levene's
  test next to the classical F.  Effect sizes: eta^2 = SS_between / SS_total and
  omega^2 = (SS_between - df_between MS_within) / (SS_total + MS_within).
* Post hoc tests use the pooled ANOVA MS_within and its df (N - k):
  ``"lsd"`` Fisher's LSD (unadjusted t tests, SPSS "LSD"); ``"bonferroni"`` LSD p times the
  number of pairs m, capped at 1, CI at alpha/m with alpha = 1 - confidence (SPSS
  "Bonferroni"); ``"tukey"``
  Tukey HSD / Tukey-Kramer for unequal n (studentized range distribution, q =
  |diff| / sqrt(MS_within / 2 (1/n_a + 1/n_b)), CI diff +/- q_crit / sqrt(2) SE).
* Only two-sided tests and intervals are computed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, Hashable, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
from scipy import stats as _sps

from ..errors import StatsError
from .deprecation import DeprecatedAttribute, renamed_arguments
from .numerics import (
    DEPRECATED_ALPHA, accurate_mean, mean_sd, significance_level, sum_sq_dev, t_quantile,
    t_two_sided_p,
)
from .validation import check_confidence, note, require_variance, split_groups

__all__ = [
    "levene", "ttest", "anova_oneway", "oneway_decomposition", "posthoc_table",
    "LeveneResult", "TTestLine", "TTestResult", "WelchAnova", "AnovaResult",
]

_POSTHOC = ("lsd", "bonferroni", "tukey")


# ---------------------------------------------------------------------------
# shared one-way decomposition
# ---------------------------------------------------------------------------
def oneway_decomposition(arrays: Sequence[np.ndarray]) -> Dict[str, Any]:
    """Sums of squares of a one-way layout, computed with exactly rounded sums.

    The data are first shifted by their median (a data value or the mean of two), so that
    group means and their differences keep full precision even when the values share a
    large common part (NIST SmLs07-09: 1000000000000.4 etc.).

    Parameters
    ----------
    arrays : sequence of numpy.ndarray
        The values of each group.

    Returns
    -------
    dict
        ``k``, ``n``, ``ns`` (group sizes), ``means`` (of the shifted data; add ``shift``
        for the original scale), ``shift``, ``ssw_i`` (within-group SS), ``grand``,
        ``ssb``, ``ssw``, ``df_b``, ``df_w``.
    """
    allv = np.concatenate(arrays)
    shift = float(np.median(allv))
    arrays = [a - shift for a in arrays]
    allv = allv - shift
    ns = np.array([a.size for a in arrays], dtype=np.float64)
    means = np.array([accurate_mean(a) for a in arrays])
    ssw_i = np.array([sum_sq_dev(a, m) for a, m in zip(arrays, means)])
    grand = accurate_mean(allv)
    ssb = math.fsum(ns * (means - grand) ** 2)
    ssw = math.fsum(ssw_i)
    k, n = len(arrays), int(ns.sum())
    return dict(
        k=k, n=n, ns=ns, means=means, shift=shift, ssw_i=ssw_i, grand=grand, ssb=ssb, ssw=ssw,
        df_b=k - 1, df_w=n - k,
    )


def _descriptives(labels: Sequence[Any], arrays: Sequence[np.ndarray],
                  alpha: float) -> pd.DataFrame:
    rows = []
    for lab, a in zip(labels, arrays):
        m, sd = mean_sd(a)
        se = sd / math.sqrt(a.size)
        h = t_quantile(alpha, a.size - 1) * se
        rows.append({
            "group": lab, "n": int(a.size), "mean": m, "sd": sd, "se": se,
            "ci_low": m - h, "ci_high": m + h, "min": float(a.min()), "max": float(a.max()),
        })
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------
# Levene
# ---------------------------------------------------------------------------
@dataclass
class LeveneResult:
    """Result of :func:`levene`.

    Parameters
    ----------
    dv : hashable
        Dependent variable.
    between : hashable
        Grouping column.
    groups : list
        Group labels in order.
    center : str
        ``"mean"`` (Levene, SPSS) or ``"median"`` (Brown-Forsythe).
    statistic : float
        Levene's W, an F statistic on ``df1`` and ``df2`` degrees of freedom.
    df1 : int
        k - 1.
    df2 : int
        N - k.
    p : float
        p-value of W.
    n : int
        Rows used.
    notes : list of str
        Degenerate results.
    """

    dv: Hashable
    between: Hashable
    groups: List[Any]
    center: str
    statistic: float
    df1: int
    df2: int
    p: float
    n: int
    notes: List[str] = field(default_factory=list)

    group = DeprecatedAttribute("between")

    def to_frame(self) -> pd.DataFrame:
        """One-row table of the test.

        Returns
        -------
        pandas.DataFrame
            Columns dv, center, statistic, df1, df2, p, n.
        """
        return pd.DataFrame([{
            "dv": self.dv, "center": self.center, "statistic": self.statistic,
            "df1": self.df1, "df2": self.df2, "p": self.p, "n": self.n,
        }])


def _levene_arrays(dv: Hashable, between: Hashable, labels: Sequence[Any],
                   arrays: Sequence[np.ndarray], center: str) -> LeveneResult:
    notes: List[str] = []
    shift = float(np.median(np.concatenate(arrays)))
    arrays = [a - shift for a in arrays]
    if center == "mean":
        z = [np.abs(a - accurate_mean(a)) for a in arrays]
    else:
        z = [np.abs(a - np.median(a)) for a in arrays]
    d = oneway_decomposition(z)
    if d["ssw"] == 0.0:
        stat = math.inf if d["ssb"] > 0 else math.nan
        p = 0.0 if d["ssb"] > 0 else math.nan
        note(notes, f"Levene's test for {dv!r}: the absolute deviations do not vary within "
                    "any group (e.g. every group has n = 2); the statistic is undefined")
    else:
        stat = (d["ssb"] / d["df_b"]) / (d["ssw"] / d["df_w"])
        p = float(_sps.f.sf(stat, d["df_b"], d["df_w"]))
    return LeveneResult(dv=dv, between=between, groups=list(labels), center=center,
                        statistic=float(stat), df1=d["df_b"], df2=d["df_w"], p=float(p),
                        n=d["n"], notes=notes)


@renamed_arguments({"group": "between"}, options=("center",))
def levene(
    data: pd.DataFrame,
    dv: Hashable,
    between: Hashable,
    *,
    center: str = "mean",
    order: Optional[Sequence[Any]] = None,
) -> LeveneResult:
    """Levene's test of equal variances across groups.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject.
    dv : column name
        Numeric dependent variable.
    between : column name
        Grouping column.
    center : {"mean", "median"}, default "mean"
        ``"mean"``: absolute deviations from the group mean (Levene 1960; SPSS "Based on
        Mean").  ``"median"``: from the group median (Brown-Forsythe 1974).
    order : sequence, optional
        Groups to use (default: all, category order or sorted).

    Returns
    -------
    LeveneResult
        The statistic, its df and p; ``to_frame()`` gives one row.

    Raises
    ------
    StatsError
        Missing column, non-numeric dv, fewer than 2 groups or a group with n < 2.
    """
    if center not in ("mean", "median"):
        raise StatsError(f"levene: center must be 'mean' or 'median', got {center!r}")
    labels, arrays, _, _ = split_groups(data, dv, between, order)
    return _levene_arrays(dv, between, labels, arrays, center)


# ---------------------------------------------------------------------------
# t-test
# ---------------------------------------------------------------------------
@dataclass
class TTestLine:
    """One line of the t-test table (Student or Welch).

    Parameters
    ----------
    t : float
        t statistic.
    df : float
        Degrees of freedom.
    p : float
        Two-sided p.
    se_diff : float
        Standard error of the mean difference.
    ci_low : float
        Lower bound of the CI of the difference.
    ci_high : float
        Upper bound of the CI of the difference.
    """

    t: float
    df: float
    p: float
    se_diff: float
    ci_low: float
    ci_high: float


@dataclass
class TTestResult:
    """Result of :func:`ttest`.

    Parameters
    ----------
    dv : hashable
        Dependent variable.
    between : hashable
        Grouping column.
    groups : tuple
        ``(first, second)``; ``mean_diff = mean(first) - mean(second)``.
    n : int
        Rows used.
    n_missing : int
        Rows dropped for a missing dv or group value.
    n_other : int
        Rows of groups not selected by ``order``.
    descriptives : pandas.DataFrame
        group, n, mean, sd, se, ci_low, ci_high, min, max per group.
    mean_diff : float
        mean(first) - mean(second).
    student : TTestLine
        Equal variances assumed (pooled).
    welch : TTestLine
        Equal variances not assumed (Welch-Satterthwaite).
    levene : LeveneResult
        Mean-centred Levene test.
    pooled_sd : float
        Pooled standard deviation.
    cohen_d : float
        Standardised difference with the pooled SD.
    hedges_g : float
        Cohen's d with Hedges' exact small-sample correction.
    confidence : float
        Confidence level of the CIs.
    notes : list of str
        Degenerate results.
    """

    dv: Hashable
    between: Hashable
    groups: Tuple[Any, Any]
    n: int
    n_missing: int
    n_other: int
    descriptives: pd.DataFrame = field(repr=False)
    mean_diff: float
    student: TTestLine
    welch: TTestLine
    levene: LeveneResult
    pooled_sd: float
    cohen_d: float
    hedges_g: float
    confidence: float
    notes: List[str] = field(default_factory=list)

    group = DeprecatedAttribute("between")
    alpha = DeprecatedAttribute("confidence", significance_level, "alpha = 1 - confidence")

    def to_frame(self) -> pd.DataFrame:
        """SPSS-style table: one row per test with Levene's F and p.

        Returns
        -------
        pandas.DataFrame
            Rows ``student`` and ``welch``.
        """
        rows = []
        for name, line in (("student", self.student), ("welch", self.welch)):
            rows.append({
                "dv": self.dv, "test": name, "group_a": self.groups[0],
                "group_b": self.groups[1], "mean_diff": self.mean_diff,
                "se_diff": line.se_diff, "t": line.t, "df": line.df, "p": line.p,
                "ci_low": line.ci_low, "ci_high": line.ci_high,
                "levene_F": self.levene.statistic, "levene_p": self.levene.p,
                "cohen_d": self.cohen_d, "n": self.n,
            })
        return pd.DataFrame(rows)


def _hedges_j(df: float) -> float:
    return math.exp(math.lgamma(df / 2.0) - math.lgamma((df - 1.0) / 2.0)) / math.sqrt(df / 2.0)


@renamed_arguments({"group": "between", "alpha": DEPRECATED_ALPHA})
def ttest(
    data: pd.DataFrame,
    dv: Hashable,
    between: Hashable,
    *,
    order: Optional[Sequence[Any]] = None,
    confidence: float = 0.95,
) -> TTestResult:
    """Independent-samples t-test, Student and Welch, with Levene's test and Cohen's d.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject.
    dv : column name
        Numeric dependent variable.
    between : column name
        Column with two groups (more are allowed when ``order`` selects two).
    order : (first, second), optional
        The two groups; the difference is first - second.  Default: category order, else
        sorted labels (e.g. ``"female"`` before ``"male"``).
    confidence : float, default 0.95
        Level of the two-sided CIs.

    Returns
    -------
    TTestResult
        Student and Welch lines, Levene's test, effect sizes; ``to_frame()`` gives the
        SPSS-style table.

    Raises
    ------
    StatsError
        Missing column, non-numeric dv, not exactly two groups, a group with n < 2, zero
        variance of dv, or zero variance within both groups.
    """
    confidence = check_confidence(confidence)
    alpha = significance_level(confidence)
    if order is not None and len(list(order)) != 2:
        raise StatsError(f"ttest: order must name exactly 2 groups, got {list(order)}")
    labels, arrays, n_missing, n_other = split_groups(data, dv, between, order)
    if len(labels) != 2:
        raise StatsError(
            f"ttest: {between!r} has {len(labels)} groups ({labels}); pass order=(first, second) "
            "to choose two, or use anova_oneway"
        )
    notes: List[str] = []
    require_variance(np.concatenate(arrays), dv, "in the two groups")
    shift = float(np.median(np.concatenate(arrays)))  # keeps the difference exact-ish
    a, b = arrays[0] - shift, arrays[1] - shift
    n1, n2 = a.size, b.size
    m1, s1 = mean_sd(a)
    m2, s2 = mean_sd(b)
    v1, v2 = s1 * s1, s2 * s2
    if v1 == 0.0 and v2 == 0.0:
        raise StatsError(
            f"ttest: {dv!r} has zero variance within both groups {labels}; the t statistic "
            "is undefined"
        )
    diff = m1 - m2
    df_s = n1 + n2 - 2
    sp2 = ((n1 - 1) * v1 + (n2 - 1) * v2) / df_s
    sp = math.sqrt(sp2)
    se_s = sp * math.sqrt(1.0 / n1 + 1.0 / n2)
    t_s = diff / se_s
    h_s = t_quantile(alpha, df_s) * se_s
    student = TTestLine(t_s, float(df_s), t_two_sided_p(t_s, df_s), se_s, diff - h_s, diff + h_s)
    q1, q2 = v1 / n1, v2 / n2
    se_w = math.sqrt(q1 + q2)
    df_w = (q1 + q2) ** 2 / (q1 * q1 / (n1 - 1) + q2 * q2 / (n2 - 1))
    t_w = diff / se_w
    h_w = t_quantile(alpha, df_w) * se_w
    welch = TTestLine(t_w, df_w, t_two_sided_p(t_w, df_w), se_w, diff - h_w, diff + h_w)
    if v1 == 0.0 or v2 == 0.0:
        note(notes, f"ttest {dv!r}: one group has zero variance; Welch df = n - 1 of the other")
    lev = _levene_arrays(dv, between, labels, arrays, "mean")
    notes.extend(lev.notes)
    d = diff / sp
    return TTestResult(
        dv=dv, between=between, groups=(labels[0], labels[1]), n=int(n1 + n2),
        n_missing=n_missing, n_other=n_other, descriptives=_descriptives(labels, arrays, alpha),
        mean_diff=diff, student=student, welch=welch, levene=lev, pooled_sd=sp, cohen_d=d,
        hedges_g=d * _hedges_j(df_s), confidence=confidence, notes=notes,
    )


# ---------------------------------------------------------------------------
# one-way ANOVA
# ---------------------------------------------------------------------------
@dataclass
class WelchAnova:
    """Welch's heteroscedastic one-way ANOVA (Welch 1951).

    Parameters
    ----------
    F : float
        Welch's F statistic.
    df1 : float
        k - 1.
    df2 : float
        Fractional denominator degrees of freedom.
    p : float
        p-value.
    """

    F: float
    df1: float
    df2: float
    p: float


@dataclass
class AnovaResult:
    """Result of :func:`anova_oneway`.

    Parameters
    ----------
    dv : hashable
        Dependent variable.
    between : hashable
        Grouping column.
    groups : list
        Group labels in order.
    n : int
        Rows used.
    n_missing : int
        Rows dropped for a missing dv or group value.
    n_other : int
        Rows of groups not in ``order``.
    ss_between : float
        Between-groups sum of squares.
    ss_within : float
        Within-groups sum of squares.
    ss_total : float
        Total sum of squares.
    df_between : int
        k - 1.
    df_within : int
        N - k.
    df_total : int
        N - 1.
    ms_between : float
        Between-groups mean square.
    ms_within : float
        Within-groups mean square.
    F : float
        Classical F statistic.
    p : float
        Its p-value.
    eta_squared : float
        SS_between / SS_total.
    omega_squared : float
        (SS_between - df_between MS_within) / (SS_total + MS_within).
    descriptives : pandas.DataFrame
        group, n, mean, sd, se, CI of the mean (group's own SD), min, max.
    levene : LeveneResult
        Mean-centred Levene test.
    welch : WelchAnova
        Always computed (NaN with a note if a group has zero variance).
    posthoc_method : str or None
        ``"lsd"``, ``"bonferroni"``, ``"tukey"`` or None.
    posthoc : pandas.DataFrame or None
        group_a, group_b, mean_diff (a - b), se, t (LSD/Bonferroni) or q (Tukey), df, p,
        ci_low, ci_high, method.
    confidence : float
        Confidence level of the post hoc and group CIs.
    notes : list of str
        Degenerate results.
    """

    dv: Hashable
    between: Hashable
    groups: List[Any]
    n: int
    n_missing: int
    n_other: int
    ss_between: float
    ss_within: float
    ss_total: float
    df_between: int
    df_within: int
    df_total: int
    ms_between: float
    ms_within: float
    F: float
    p: float
    eta_squared: float
    omega_squared: float
    descriptives: pd.DataFrame = field(repr=False)
    levene: LeveneResult
    welch: WelchAnova
    posthoc_method: Optional[str]
    posthoc: Optional[pd.DataFrame] = field(repr=False)
    confidence: float
    notes: List[str] = field(default_factory=list)

    alpha = DeprecatedAttribute("confidence", significance_level, "alpha = 1 - confidence")

    def to_frame(self) -> pd.DataFrame:
        """The ANOVA table.

        Returns
        -------
        pandas.DataFrame
            Rows between, within, total; columns source, ss, df, ms, F, p.
        """
        return pd.DataFrame({
            "source": ["between", "within", "total"],
            "ss": [self.ss_between, self.ss_within, self.ss_total],
            "df": [self.df_between, self.df_within, self.df_total],
            "ms": [self.ms_between, self.ms_within, np.nan],
            "F": [self.F, np.nan, np.nan],
            "p": [self.p, np.nan, np.nan],
        })


def _welch_anova(d: Dict[str, Any], variances: np.ndarray) -> WelchAnova:
    k, ns, means = d["k"], d["ns"], d["means"]
    w = ns / variances
    sw = w.sum()
    mw = float((w * means).sum() / sw)
    a = float((w * (means - mw) ** 2).sum() / (k - 1))
    tmp = float((((1.0 - w / sw) ** 2) / (ns - 1.0)).sum())
    b = 1.0 + 2.0 * (k - 2.0) / (k * k - 1.0) * tmp
    f = a / b
    df2 = (k * k - 1.0) / (3.0 * tmp)
    return WelchAnova(F=f, df1=float(k - 1), df2=df2, p=float(_sps.f.sf(f, k - 1, df2)))


def posthoc_table(labels: Sequence[Any], d: Dict[str, Any], mse: float, method: str,
                  confidence: float = 0.95) -> pd.DataFrame:
    """Post hoc comparison of every pair of groups on the pooled MS_within (see module notes).

    Parameters
    ----------
    labels : sequence
        Group labels, in the order of ``d``.
    d : dict
        :func:`oneway_decomposition` of the groups.
    mse : float
        The pooled within-groups mean square.
    method : {"lsd", "bonferroni", "tukey"}
        Fisher's LSD, Bonferroni-adjusted LSD, or Tukey HSD / Tukey-Kramer.
    confidence : float, default 0.95
        Level of the intervals (family-wise for Bonferroni and Tukey).

    Returns
    -------
    pandas.DataFrame
        One row per pair (a before b): group_a, group_b, mean_diff (a - b), se, t or q, df,
        p, ci_low, ci_high, method.
    """
    alpha = significance_level(confidence)
    k, ns, means, df = d["k"], d["ns"], d["means"], d["df_w"]
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    m = len(pairs)
    stat_name = "q" if method == "tukey" else "t"
    if method == "lsd":
        crit = t_quantile(alpha, df)
    elif method == "bonferroni":
        crit = t_quantile(alpha / m, df)
    else:
        crit = float(_sps.studentized_range.ppf(1.0 - alpha, k, df)) / math.sqrt(2.0)
    rows = []
    for i, j in pairs:
        diff = float(means[i] - means[j])
        se = math.sqrt(mse * (1.0 / ns[i] + 1.0 / ns[j]))
        t = diff / se
        if method == "tukey":
            stat = abs(t) * math.sqrt(2.0)
            p = float(_sps.studentized_range.sf(stat, k, df))
        else:
            stat = t
            p = t_two_sided_p(t, df)
            if method == "bonferroni":
                p = min(1.0, p * m)
        rows.append({
            "group_a": labels[i], "group_b": labels[j], "mean_diff": diff, "se": se,
            stat_name: stat, "df": df, "p": min(max(p, 0.0), 1.0),
            "ci_low": diff - crit * se, "ci_high": diff + crit * se, "method": method,
        })
    return pd.DataFrame(rows)


@renamed_arguments({"alpha": DEPRECATED_ALPHA})
def anova_oneway(
    data: pd.DataFrame,
    dv: Hashable,
    between: Hashable,
    *,
    posthoc: Optional[str] = "lsd",
    order: Optional[Sequence[Any]] = None,
    confidence: float = 0.95,
) -> AnovaResult:
    """One-way between-subjects ANOVA with Welch's ANOVA, Levene's test and post hoc pairs.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject.
    dv : column name
        Numeric dependent variable (e.g. MF PDFF in %).
    between : column name
        Grouping column (e.g. the output of :func:`vbmd_category`).
    posthoc : {"lsd", "tukey", "bonferroni", None}, default "lsd"
        Pairwise comparisons using the pooled MS_within and df_within (see module notes);
        "lsd" is what seed paper 001 used (SPSS).
    order : sequence, optional
        Groups and their order (default: category order, else sorted).  Rows of other
        groups are left out and counted in ``n_other``.
    confidence : float, default 0.95
        Level of the post hoc CIs (family-wise for Bonferroni and Tukey) and the group CIs.

    Returns
    -------
    AnovaResult
        ``to_frame()`` is the ANOVA table; ``posthoc``, ``welch``, ``levene`` and
        ``descriptives`` hold the rest.

    Raises
    ------
    StatsError
        Missing column, non-numeric dv, fewer than 2 groups, a group with n < 2, zero
        variance of dv, zero variance within every group, or an unknown post hoc method.
    """
    confidence = check_confidence(confidence)
    alpha = significance_level(confidence)
    if posthoc is not None:
        posthoc = str(posthoc).lower()
        if posthoc not in _POSTHOC:
            raise StatsError(f"anova_oneway: posthoc must be one of {_POSTHOC} or None, "
                             f"got {posthoc!r}")
    labels, arrays, n_missing, n_other = split_groups(data, dv, between, order)
    require_variance(np.concatenate(arrays), dv, f"across the groups of {between!r}")
    notes: List[str] = []
    d = oneway_decomposition(arrays)
    if d["ssw"] == 0.0:
        raise StatsError(
            f"anova_oneway: {dv!r} has zero variance within every group of {between!r}; "
            "F is undefined"
        )
    if d["df_w"] < 1:
        raise StatsError(f"anova_oneway: no residual degrees of freedom for {dv!r}")
    msb, msw = d["ssb"] / d["df_b"], d["ssw"] / d["df_w"]
    f = msb / msw
    variances = d["ssw_i"] / (d["ns"] - 1.0)
    if np.any(variances == 0.0):
        zero = [lab for lab, v in zip(labels, variances) if v == 0.0]
        note(notes, f"anova_oneway {dv!r}: group(s) {zero} have zero variance; Welch's ANOVA "
                    "is undefined (reported as NaN)")
        welch = WelchAnova(math.nan, float(d["k"] - 1), math.nan, math.nan)
    else:
        welch = _welch_anova(d, variances)
    lev = _levene_arrays(dv, between, labels, arrays, "mean")
    notes.extend(lev.notes)
    sst = d["ssb"] + d["ssw"]
    ph = posthoc_table(labels, d, msw, posthoc, confidence) if posthoc else None
    return AnovaResult(
        dv=dv, between=between, groups=list(labels), n=d["n"], n_missing=n_missing,
        n_other=n_other, ss_between=d["ssb"], ss_within=d["ssw"], ss_total=sst,
        df_between=d["df_b"], df_within=d["df_w"], df_total=d["n"] - 1, ms_between=msb,
        ms_within=msw, F=f, p=float(_sps.f.sf(f, d["df_b"], d["df_w"])),
        eta_squared=d["ssb"] / sst,
        omega_squared=(d["ssb"] - d["df_b"] * msw) / (sst + msw),
        descriptives=_descriptives(labels, arrays, alpha), levene=lev, welch=welch,
        posthoc_method=posthoc, posthoc=ph, confidence=confidence, notes=notes,
    )

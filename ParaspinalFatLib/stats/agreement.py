"""Agreement and reliability: intraclass correlation (6 forms) and Cohen's kappa.

Conventions (chosen to match what SPSS prints, the software of the studies):

* ICC F tests use the exact ANOVA degrees of freedom; for ICC(A,1)/ICC(A,k)
  the test of ICC = 0 is F = MSR/MSE on (n-1, (n-1)(k-1)) df (SPSS, R psych,
  pingouin).  R ``irr::icc`` instead uses the Satterthwaite df ``v`` of the
  confidence interval (e.g. F(19, 39.7), p = 0.0543 on irr's ``anxiety``
  against our F(19, 38), p = 0.0562); ``v`` is reported as ``df2_ci``.
* The ICC(A,k) confidence interval is McGraw & Wong's with ``v`` evaluated at
  the single-measure ICC(A,1), i.e. the Spearman-Brown transform of the
  ICC(A,1) bounds (SPSS, psych, pingouin).  irr evaluates ``v`` at ICC(A,k)
  and gets a different interval (0.039-0.929 instead of 0.071-0.93 on the
  Shrout & Fleiss data).
* Cross-check of both choices against SPSS output (RELIABILITY /ICC MODEL(MIXED)
  TYPE(ABSOLUTE), 7 cases x 5 raters): single .671 (.367-.917), average .911
  (.743-.982), F(6, 24) -- integer df2, and the average bounds are exactly the
  Spearman-Brown transform of the single bounds.
* Kappa weights are built on the *positions* of the categories (like irr,
  statsmodels, scikit-learn); pass the full scale in ``categories`` to make
  unused levels count in the spacing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Hashable, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import StatsError
from .deprecation import renamed_arguments
from .numerics import two_sided_normal_p, z_quantile
from .validation import as_float_array, check_confidence, require_columns

__all__ = ["icc", "cohen_kappa", "ICCResult", "KappaResult"]

# ---------------------------------------------------------------------------
# ICC
# ---------------------------------------------------------------------------

#: form -> (McGraw-Wong name, Shrout-Fleiss name, model, type, unit)
_ICC_FORMS = {
    "ICC1": ("ICC(1)", "ICC(1,1)", "one-way random", "absolute agreement", "single measures"),
    "ICC2": ("ICC(A,1)", "ICC(2,1)", "two-way random", "absolute agreement", "single measures"),
    "ICC3": ("ICC(C,1)", "ICC(3,1)", "two-way mixed", "consistency", "single measures"),
    "ICC1k": ("ICC(k)", "ICC(1,k)", "one-way random", "absolute agreement", "average measures"),
    "ICC2k": ("ICC(A,k)", "ICC(2,k)", "two-way random", "absolute agreement", "average measures"),
    "ICC3k": ("ICC(C,k)", "ICC(3,k)", "two-way mixed", "consistency", "average measures"),
}


def _form_aliases() -> Dict[str, str]:
    out = {}
    for form, (mw, sf, _m, _t, _u) in _ICC_FORMS.items():
        for name in (form, mw, sf):
            out[name.lower().replace(" ", "")] = form
    return out


_ICC_ALIASES = _form_aliases()


def _normalise_form(form: str) -> str:
    key = str(form).lower().replace(" ", "")
    try:
        return _ICC_ALIASES[key]
    except KeyError:
        raise StatsError(
            f"unknown ICC form {form!r}; use one of {list(_ICC_FORMS)} "
            "(or ICC(1,1)/ICC(A,1)/ICC(C,1)/ICC(1,k)/ICC(A,k)/ICC(C,k))"
        ) from None


@dataclass
class ICCResult:
    """Intraclass correlation: the selected form plus the table of all six (see :func:`icc`).

    Parameters
    ----------
    form : str
        Selected form (``"ICC2"`` ...).
    description : str
        Its McGraw-Wong/SPSS description.
    icc : float
        Estimate.
    F : float
        F statistic of the test of ICC = 0.
    df1 : float
        Its numerator degrees of freedom.
    df2 : float
        Its denominator degrees of freedom.
    p : float
        Its p.
    ci_low : float
        Lower bound of the confidence interval.
    ci_high : float
        Upper bound of the confidence interval.
    confidence : float
        Confidence level.
    n : int
        Subjects used.
    k : int
        Raters (columns).
    n_excluded : int
        Subjects dropped for missing ratings.
    mean_squares : dict
        ``MSR`` (subjects), ``MSW`` (within subjects), ``MSC`` (raters), ``MSE`` (residual).
    table : pandas.DataFrame
        All six forms (see :func:`icc`).
    """

    form: str
    description: str
    icc: float
    F: float
    df1: float
    df2: float
    p: float
    ci_low: float
    ci_high: float
    confidence: float
    n: int
    k: int
    n_excluded: int
    mean_squares: dict = field(repr=False)
    table: pd.DataFrame = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """Tidy table of all six forms.

        Returns
        -------
        pandas.DataFrame
            One row per form (a copy of ``table``).
        """
        return self.table.copy()

    def select(self, form: str) -> "ICCResult":
        """The same analysis with another form selected (no recomputation).

        Parameters
        ----------
        form : str
            A form name or alias accepted by :func:`icc`.

        Returns
        -------
        ICCResult
            With ``form`` selected.
        """
        name = _normalise_form(form)
        row = self.table.set_index("form").loc[name]
        return ICCResult(
            form=name, description=str(row["description"]), icc=float(row["icc"]),
            F=float(row["F"]), df1=float(row["df1"]), df2=float(row["df2"]),
            p=float(row["p"]), ci_low=float(row["ci_low"]), ci_high=float(row["ci_high"]),
            confidence=self.confidence, n=self.n, k=self.k, n_excluded=self.n_excluded,
            mean_squares=dict(self.mean_squares), table=self.table,
        )


def _wide_from_long(data: pd.DataFrame, targets: Optional[str], raters: Any,
                    ratings: str) -> pd.DataFrame:
    if targets is None or raters is None:
        raise StatsError("long-format ICC needs targets=, raters= and ratings= column names")
    for name in (targets, raters, ratings):
        if not isinstance(name, str):
            raise StatsError(f"targets=, raters=, ratings= must be column names, got {name!r}")
    require_columns(data, [targets, raters, ratings])
    sub = data.loc[:, [targets, raters, ratings]]
    for col in (targets, raters):
        n_missing = int(sub[col].isna().sum())
        if n_missing:
            raise StatsError(f"column {col!r} has {n_missing} missing label(s); fix or drop those rows")
    values = as_float_array(sub[ratings], ratings)
    sub = sub.assign(**{ratings: values})
    dup = sub.duplicated(subset=[targets, raters], keep=False)
    if dup.any():
        first = sub.loc[dup, [targets, raters]].iloc[0].tolist()
        raise StatsError(
            f"{int(dup.sum())} rows repeat a ({targets!r}, {raters!r}) pair, e.g. {first}; "
            "each subject must have at most one rating per rater"
        )
    return sub.pivot(index=targets, columns=raters, values=ratings)


def _icc_matrix(data: Any, targets: Optional[str], raters: Any,
                ratings: Optional[str]) -> np.ndarray:
    """Subjects x raters float matrix (may contain NaN) from any accepted input."""
    if isinstance(data, pd.DataFrame):
        if ratings is not None:
            wide = _wide_from_long(data, targets, raters, ratings)
        else:
            if raters is not None:
                cols = [raters] if isinstance(raters, str) else list(raters)
            else:
                cols = [c for c in data.columns if c != targets]
            require_columns(data, cols + ([targets] if targets is not None else []))
            wide = data.loc[:, cols]
        return np.column_stack(
            [as_float_array(wide[c], c) for c in wide.columns]
        ) if wide.shape[1] else np.empty((len(wide), 0))
    try:
        arr = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError):
        raise StatsError("ICC ratings are not numeric") from None
    if arr.ndim != 2:
        raise StatsError(f"ICC needs a 2-D subjects x raters table, got shape {arr.shape}")
    return arr


def _icc_anova(y: np.ndarray) -> Dict[str, float]:
    """Two-way ANOVA mean squares of a complete n x k matrix (centred for accuracy)."""
    n, k = y.shape
    y = y - y.mean()
    row = y.mean(axis=1)
    col = y.mean(axis=0)
    ss_rows = k * float(np.sum(row ** 2))
    ss_cols = n * float(np.sum(col ** 2))
    resid = y - row[:, None] - col[None, :]
    ss_err = float(np.sum(resid ** 2))
    ss_within = float(np.sum((y - row[:, None]) ** 2))
    return {
        "MSR": ss_rows / (n - 1),
        "MSW": ss_within / (n * (k - 1)),
        "MSC": ss_cols / (k - 1),
        "MSE": ss_err / ((n - 1) * (k - 1)),
    }


def _ratio_bounds(f_low: float, f_high: float, k_eff: float) -> Tuple[float, float]:
    """Bounds ``(F-1)/(F+k-1)`` (k_eff = k) or ``1 - 1/F`` (k_eff = 1) with F = inf -> 1."""
    def one(fv: float) -> float:
        if np.isinf(fv):
            return 1.0
        return (fv - 1.0) / (fv + k_eff - 1.0)
    return one(f_low), one(f_high)


def _icc_rows(ms: Dict[str, float], n: int, k: int, conf: float) -> List[Dict[str, Any]]:
    msr, msw, msc, mse = ms["MSR"], ms["MSW"], ms["MSC"], ms["MSE"]
    q = 1.0 - (1.0 - conf) / 2.0
    df1, df_w, df_e = n - 1, n * (k - 1), (n - 1) * (k - 1)
    rows = []
    with np.errstate(divide="ignore", invalid="ignore"):
        # one-way random
        f1 = np.float64(msr) / msw
        p1 = float(stats.f.sf(f1, df1, df_w))
        fl, fu = f1 / stats.f.ppf(q, df1, df_w), f1 * stats.f.ppf(q, df_w, df1)
        icc1 = (msr - msw) / (msr + (k - 1) * msw)
        icc1k = (msr - msw) / msr
        b1 = _ratio_bounds(fl, fu, k)
        b1k = _ratio_bounds(fl, fu, 1)
        # two-way: consistency
        f3 = np.float64(msr) / mse
        p3 = float(stats.f.sf(f3, df1, df_e))
        fl, fu = f3 / stats.f.ppf(q, df1, df_e), f3 * stats.f.ppf(q, df_e, df1)
        icc3 = (msr - mse) / (msr + (k - 1) * mse)
        icc3k = (msr - mse) / msr
        b3 = _ratio_bounds(fl, fu, k)
        b3k = _ratio_bounds(fl, fu, 1)
        # two-way: absolute agreement (McGraw & Wong 1996, case 2A; v at ICC(A,1))
        icc2 = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
        icc2k = (msr - mse) / (msr + (msc - mse) / n)
        if icc2 >= 1.0:
            v = float("nan")
            b2 = b2k = (1.0, 1.0)
        else:
            a = k * icc2 / (n * (1.0 - icc2))
            b = 1.0 + k * icc2 * (n - 1) / (n * (1.0 - icc2))
            v = (a * msc + b * mse) ** 2 / ((a * msc) ** 2 / (k - 1) + (b * mse) ** 2 / df_e)
            fls, fus = stats.f.ppf(q, df1, v), stats.f.ppf(q, v, df1)
            c = k * msc + (k * n - k - n) * mse
            b2 = (n * (msr - fls * mse) / (fls * c + n * msr),
                  n * (fus * msr - mse) / (c + n * fus * msr))
            b2k = (n * (msr - fls * mse) / (fls * (msc - mse) + n * msr),
                   n * (fus * msr - mse) / (msc - mse + n * fus * msr))
    spec = [
        ("ICC1", icc1, f1, df1, df_w, p1, b1, df_w),
        ("ICC2", icc2, f3, df1, df_e, p3, b2, v),
        ("ICC3", icc3, f3, df1, df_e, p3, b3, df_e),
        ("ICC1k", icc1k, f1, df1, df_w, p1, b1k, df_w),
        ("ICC2k", icc2k, f3, df1, df_e, p3, b2k, v),
        ("ICC3k", icc3k, f3, df1, df_e, p3, b3k, df_e),
    ]
    for form, val, fval, d1, d2, p, (lo, hi), dci in spec:
        mw, sf, model, typ, unit = _ICC_FORMS[form]
        rows.append({
            "form": form, "mcgraw_wong": mw, "shrout_fleiss": sf,
            "description": f"{model[0].upper() + model[1:]} effects, {typ}, {unit}",
            "model": model, "type": typ, "unit": unit,
            "icc": float(val), "F": float(fval), "df1": float(d1), "df2": float(d2),
            "p": p, "ci_low": float(lo), "ci_high": float(hi), "df2_ci": float(dci),
            "confidence": conf, "n": n, "k": k,
        })
    return rows


def icc(
    data: Any,
    targets: Optional[str] = None,
    raters: Union[None, str, Sequence[Hashable]] = None,
    ratings: Optional[str] = None,
    *,
    form: str = "ICC2",
    confidence: float = 0.95,
) -> ICCResult:
    """Intraclass correlation coefficients (Shrout & Fleiss 1979; McGraw & Wong 1996).

    Parameters
    ----------
    data : pandas.DataFrame or array_like
        Long format (one row per rating; give ``targets``, ``raters``, ``ratings``)
        or wide format (rows = subjects, columns = raters or sessions).  For a
        wide DataFrame ``raters`` may list the rating columns (default: every
        column except ``targets``); a 2-D array is taken as wide.
    targets : str, optional
        Column of the subject id (long format; in the wide format, the column that is not
        a rating).
    raters : str or list of str, optional
        Column of the rater / session id (long format), or the rating columns (wide).
    ratings : str, optional
        Column of the rating (long format).
    form : str, default "ICC2"
        Selected form: ``ICC1``, ``ICC2``, ``ICC3``, ``ICC1k``, ``ICC2k``, ``ICC3k``
        or the names ``ICC(1,1)``, ``ICC(A,1)``, ``ICC(C,1)``, ``ICC(1,k)``,
        ``ICC(A,k)``, ``ICC(C,k)``.  The default, single-measure absolute
        agreement, is also the value of SPSS "two-way mixed, absolute agreement"
        that Koo & Li (2016) recommend for test-retest / intra-rater studies.
    confidence : float, default 0.95
        Level of the intervals.

    Returns
    -------
    ICCResult
        Selected form plus ``table``/``to_frame()`` with all six rows: form,
        McGraw-Wong and Shrout-Fleiss names, description (model, type, unit as
        SPSS prints them), icc, F, df1, df2, p, ci_low, ci_high, df2_ci, n, k.

    Notes
    -----
    With mean squares MSR (subjects), MSW (within subjects), MSC (raters), MSE
    (residual), n subjects and k raters:

    * ICC1 = (MSR-MSW)/(MSR+(k-1)MSW), F = MSR/MSW on (n-1, n(k-1)).
    * ICC2 = (MSR-MSE)/(MSR+(k-1)MSE+k(MSC-MSE)/n), ICC3 = (MSR-MSE)/(MSR+(k-1)MSE);
      both tested with F = MSR/MSE on (n-1, (n-1)(k-1)) -- the exact test of
      ICC = 0, as SPSS/psych/pingouin print it.  R irr uses the Satterthwaite
      ``v`` (column ``df2_ci``) as denominator df instead, so its p differs.
    * ICC(A,1) and ICC(A,k) intervals use McGraw & Wong's F(n-1, v) quantiles
      with ``v`` evaluated at ICC(A,1); the ICC(A,k) bounds are therefore the
      Spearman-Brown transform of the ICC(A,1) bounds (SPSS, psych, pingouin;
      irr differs, see module docstring).
    * Average-measure one-way/consistency bounds are 1 - 1/F_L and 1 - 1/F_U.

    Missing values: subjects with any missing rating are dropped (listwise);
    ``n`` and ``n_excluded`` report it.

    Raises
    ------
    StatsError
        Missing or non-numeric columns, duplicate (subject, rater) pairs, fewer
        than 2 complete subjects or 2 raters, or all ratings identical.
    """
    conf = check_confidence(confidence)
    name = _normalise_form(form)
    y = _icc_matrix(data, targets, raters, ratings)
    if np.isinf(y).any():
        raise StatsError("ICC ratings contain infinite values")
    total = y.shape[0]
    y = y[~np.isnan(y).any(axis=1)]
    n, k = y.shape
    if k < 2:
        raise StatsError(f"ICC needs at least 2 raters/sessions (columns), got {k}")
    if n < 2:
        raise StatsError(
            f"ICC needs at least 2 subjects with complete ratings, got {n} of {total}"
        )
    if np.ptp(y) == 0:
        raise StatsError("all ratings are identical (zero variance); the ICC is undefined")
    ms = _icc_anova(y)
    table = pd.DataFrame(_icc_rows(ms, n, k, conf))
    row = table.set_index("form").loc[name]
    return ICCResult(
        form=name, description=str(row["description"]), icc=float(row["icc"]),
        F=float(row["F"]), df1=float(row["df1"]), df2=float(row["df2"]), p=float(row["p"]),
        ci_low=float(row["ci_low"]), ci_high=float(row["ci_high"]), confidence=conf,
        n=n, k=k, n_excluded=total - n, mean_squares=ms, table=table,
    )


# ---------------------------------------------------------------------------
# Cohen's kappa
# ---------------------------------------------------------------------------

@dataclass
class KappaResult:
    """Cohen's (weighted) kappa for two raters.

    Parameters
    ----------
    kappa : float
        Estimate.
    se : float
        Asymptotic SE (Fleiss, Cohen & Everitt 1969) used for the CI.
    se0 : float
        SE under H0 (kappa = 0) used for ``z`` and ``p``.
    z : float
        ``kappa / se0``.
    p : float
        Two-sided p.
    ci_low : float
        ``kappa - z_(1-alpha/2) * se`` (not truncated), alpha = 1 - confidence.
    ci_high : float
        ``kappa + z_(1-alpha/2) * se`` (not truncated).
    confidence : float
        Confidence level.
    n : int
        Pairs used.
    n_excluded : int
        Pairs dropped for a missing rating.
    observed_agreement : float
        Weighted p_o.
    expected_agreement : float
        Weighted chance agreement p_e.
    weights : str
        ``"none"``, ``"linear"``, ``"quadratic"`` or ``"custom"``.
    categories : list
        Category order of the table and the weights.
    table : pandas.DataFrame
        Confusion table of counts (rows ``rater1``, columns ``rater2``).
    weight_matrix : numpy.ndarray
        Agreement weights (1 on the diagonal).
    """

    kappa: float
    se: float
    se0: float
    z: float
    p: float
    ci_low: float
    ci_high: float
    confidence: float
    n: int
    n_excluded: int
    observed_agreement: float
    expected_agreement: float
    weights: str
    categories: list = field(repr=False)
    table: pd.DataFrame = field(repr=False)
    weight_matrix: np.ndarray = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """One-row tidy table of the estimate and its inference.

        Returns
        -------
        pandas.DataFrame
            One row.
        """
        keys = ["weights", "kappa", "se", "ci_low", "ci_high", "se0", "z", "p",
                "observed_agreement", "expected_agreement", "n", "n_excluded", "confidence"]
        return pd.DataFrame([{key: getattr(self, key) for key in keys}])


_WEIGHT_ALIASES = {
    None: "none", "none": "none", "unweighted": "none",
    "linear": "linear", "equal": "linear", "cicchetti-allison": "linear",
    "quadratic": "quadratic", "squared": "quadratic", "fleiss-cohen": "quadratic",
}


def _kappa_weights(weights: Any, r: int) -> Tuple[str, np.ndarray]:
    if weights is not None and not isinstance(weights, str):
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (r, r):
            raise StatsError(f"weight matrix must be {r} x {r} for {r} categories, got {w.shape}")
        if not np.allclose(w, w.T) or not np.allclose(np.diag(w), 1.0):
            raise StatsError("weight matrix must be symmetric with ones on the diagonal")
        return "custom", w
    key = weights.lower() if isinstance(weights, str) else weights
    if key not in _WEIGHT_ALIASES:
        raise StatsError(f"weights must be None, 'linear', 'quadratic' or a matrix, got {weights!r}")
    kind = _WEIGHT_ALIASES[key]
    idx = np.arange(r, dtype=np.float64)
    dist = np.abs(idx[:, None] - idx[None, :])
    if kind == "none":
        return kind, np.eye(r)
    if r < 2:
        return kind, np.ones((1, 1))
    if kind == "linear":
        return kind, 1.0 - dist / (r - 1)
    return kind, 1.0 - (dist / (r - 1)) ** 2


def _kappa_inputs(data: Optional[pd.DataFrame], rater1: Any,
                  rater2: Any) -> Tuple[np.ndarray, np.ndarray, int, Tuple[str, str]]:
    if rater1 is None or rater2 is None:
        raise StatsError("give both raters: cohen_kappa(data, rater1=column, rater2=column) "
                         "or cohen_kappa(rater1=ratings, rater2=ratings)")
    if data is None:
        a = pd.Series(np.asarray(rater1, dtype=object) if not isinstance(rater1, pd.Series) else rater1)
        b = pd.Series(np.asarray(rater2, dtype=object) if not isinstance(rater2, pd.Series) else rater2)
        if len(a) != len(b):
            raise StatsError(f"rater1 and rater2 have different lengths ({len(a)} vs {len(b)})")
        a = a.reset_index(drop=True)
        b = b.reset_index(drop=True)
        names = ("rater1", "rater2")
    else:
        require_columns(data, [rater1, rater2])
        a = data[rater1].reset_index(drop=True)
        b = data[rater2].reset_index(drop=True)
        names = (str(rater1), str(rater2))
    keep = ~(a.isna().to_numpy() | b.isna().to_numpy())
    return a[keep].to_numpy(), b[keep].to_numpy(), int((~keep).sum()), names


def _sorted_categories(values: Any) -> List[Any]:
    uniq = list(pd.unique(pd.Series(values, dtype=object)))
    try:
        return sorted(uniq)
    except TypeError:
        raise StatsError(
            f"ratings mix types that cannot be ordered ({uniq[:5]}...); pass categories="
        ) from None


def _difference(a: float, b: float) -> float:
    """``a - b`` for a variance numerator: 0 when it is at round-off level of a, b (or negative)."""
    d = float(a - b)
    if d <= 64.0 * np.finfo(float).eps * max(abs(a), abs(b)):
        return 0.0
    return d


@renamed_arguments(options=("weights", "categories"))
def cohen_kappa(
    data: Optional[pd.DataFrame] = None,
    rater1: Any = None,
    rater2: Any = None,
    *,
    weights: Union[None, str, np.ndarray, Sequence[Sequence[float]]] = None,
    categories: Optional[Sequence[Any]] = None,
    confidence: float = 0.95,
) -> KappaResult:
    """Cohen's kappa, unweighted or weighted, for two raters.

    Parameters
    ----------
    data : pandas.DataFrame or None, default None
        Table holding the two rating columns; ``None`` to pass the ratings
        themselves as ``rater1`` and ``rater2``.
    rater1 : column name or array_like
        First rater's ratings (column name, or the ratings when ``data`` is None).
    rater2 : column name or array_like
        Second rater's ratings.
    weights : None, "linear", "quadratic" or (r, r) array, default None
        Agreement weights on category positions: linear ``1-|i-j|/(r-1)``
        (Cicchetti-Allison; irr "equal"), quadratic ``1-(i-j)^2/(r-1)^2``
        (Fleiss-Cohen; irr "squared"), or a symmetric matrix with unit diagonal.
    categories : sequence, optional
        Ordered category list.  Default: the sorted union of the observed
        ratings (as irr, statsmodels and scikit-learn do); give the full scale
        (e.g. ``range(6)`` for Lovett grades) when unused grades must count in
        the weighting.  Ratings outside ``categories`` raise an error.
    confidence : float, default 0.95
        Level of the interval.

    Returns
    -------
    KappaResult
        Kappa with SE, CI, z and p, and the confusion table.

    Notes
    -----
    With cell proportions p_ij, margins p_i., p_.j and weights w_ij:
    p_o = sum w p_ij, p_e = sum w p_i. p_.j, kappa = (p_o - p_e) / (1 - p_e).
    The asymptotic variance (Fleiss, Cohen & Everitt 1969; SAS PROC FREQ "ASE")
    is ``[sum p_ij (w_ij - (wbar_i. + wbar_.j)(1 - kappa))^2 - (kappa - p_e(1 - kappa))^2]
    / (n (1 - p_e)^2)`` and gives the CI; the variance under H0 is
    ``[sum p_i. p_.j (w_ij - (wbar_i. + wbar_.j))^2 - p_e^2] / (n (1 - p_e)^2)``
    and gives z and p (as SAS, irr and statsmodels).  The statistic is
    symmetric in the two raters.  Pairs with a missing rating are dropped.

    Raises
    ------
    StatsError
        Missing column, fewer than 2 complete pairs, ratings outside
        ``categories``, or a single category used by both raters (kappa undefined).
    """
    conf = check_confidence(confidence)
    a, b, n_excl, names = _kappa_inputs(data, rater1, rater2)
    n = len(a)
    if n < 2:
        raise StatsError(f"kappa needs at least 2 complete rating pairs, got {n}")
    if categories is None:
        cats = _sorted_categories(np.concatenate([a, b]))
    else:
        cats = list(categories)
        if len(set(cats)) != len(cats):
            raise StatsError("categories contain duplicates")
    index = {c: i for i, c in enumerate(cats)}
    codes = []
    for vals, nm in ((a, names[0]), (b, names[1])):
        try:
            codes.append(np.fromiter((index[v] for v in vals), dtype=np.intp, count=len(vals)))
        except KeyError:
            bad = sorted({str(v) for v in vals if v not in index})
            raise StatsError(f"{nm}: ratings {bad} are not in categories {cats}") from None
    r = len(cats)
    counts = np.bincount(codes[0] * r + codes[1], minlength=r * r).reshape(r, r)
    kind, w = _kappa_weights(weights, r)
    pij = counts / float(n)
    pi, pj = pij.sum(axis=1), pij.sum(axis=0)
    po = float(np.sum(w * pij))
    pe = float(np.sum(w * np.outer(pi, pj)))
    if np.isclose(pe, 1.0, rtol=0.0, atol=1e-12):
        raise StatsError(
            f"kappa is undefined: {names[0]} and {names[1]} used a single and the same "
            "category (chance agreement is 1)"
        )
    kappa = (po - pe) / (1.0 - pe)
    wi = w @ pj          # wbar_i.
    wj = pi @ w          # wbar_.j
    wsum = wi[:, None] + wj[None, :]
    scale = n * (1.0 - pe) ** 2
    var = _difference(np.sum(pij * (w - wsum * (1.0 - kappa)) ** 2),
                      (kappa - pe * (1.0 - kappa)) ** 2) / scale
    var0 = _difference(np.sum(np.outer(pi, pj) * (w - wsum) ** 2), pe ** 2) / scale
    se = float(np.sqrt(var))
    se0 = float(np.sqrt(var0))
    z = kappa / se0 if se0 > 0 else float("nan")
    zq = z_quantile(conf)
    table = pd.DataFrame(counts, index=pd.Index(cats, name=names[0]),
                         columns=pd.Index(cats, name=names[1]))
    return KappaResult(
        kappa=float(kappa), se=se, se0=se0, z=float(z), p=two_sided_normal_p(z),
        ci_low=float(kappa - zq * se), ci_high=float(kappa + zq * se), confidence=conf,
        n=n, n_excluded=n_excl, observed_agreement=po, expected_agreement=pe,
        weights=kind, categories=cats, table=table, weight_matrix=w,
    )

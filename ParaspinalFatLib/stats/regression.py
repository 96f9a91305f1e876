"""Multiple linear regression (ordinary least squares) for cohort tables.

Numerics
--------
The design matrix is scaled column-wise by powers of two (exact: no rounding), factored by
Householder QR (LAPACK via :func:`numpy.linalg.qr`), and the solution is improved by
iterative refinement of the augmented system [I X; X' 0][r; b] = [y; 0] (Bjorck 1967) with
residuals computed in twice the working precision (error-free products and sums).  This
reaches the NIST StRD certified values to LRE >= 13 on the average-difficulty sets (Norris,
Pontius, NoInt1/2, Longley, Wampler1-3) and to the limit set by the float64 representation
of the data on Filip (about 7.5) and Wampler4-5 (>= 13).  A predictor whose column is a
linear combination of the preceding ones (relative remainder < 1e-11) raises
:class:`StatsError` naming it; near-collinearity is reported through the VIFs.

Conventions
-----------
* Listwise deletion over the outcome and all predictors; ``n`` and ``n_missing`` reported.
* Categorical predictors must be declared (``categorical=``): each gets treatment (dummy)
  coding, one 0/1 column ``"name[level]"`` per non-reference level, and the coding table is
  in ``result.coding``.  The reference level is the one given, else the first category
  (pandas Categorical order) or the smallest label.  Non-numeric columns that are not
  declared raise :class:`StatsError`.
* The intercept term is named ``"const"`` and comes first.  Without an intercept
  (``intercept=False``) R^2 is *uncentered*, 1 - SSE / sum(y^2), and the model F has p df, as
  in NIST StRD, SPSS and statsmodels; adjusted R^2 then uses n / (n - p).
* Standardised beta = B * SD(x) / SD(y) (SPSS), with SDs (n - 1) of the used rows, dummy
  columns included; not defined for the intercept (NaN).
* VIF = 1 / (1 - R_j^2) from regressing each predictor column on the others; with an
  intercept the R_j^2 are centered (SPSS, statsmodels with a constant), without one they
  are uncentered.  Not defined for the intercept (NaN); 1.0 for a single predictor.
* t-tests and CIs use the t distribution on n - p df; CIs are at the ``confidence`` level.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, Hashable, List, Mapping, Sequence, Tuple, Union

import numpy as np
import pandas as pd
from scipy import stats as _sps
from scipy.linalg import solve_triangular

from ..errors import StatsError
from .deprecation import DeprecatedAttribute, renamed_arguments
from .numerics import (
    DEPRECATED_ALPHA, accurate_mean, mean_sd, residual_accurate, significance_level,
    sum_sq_dev, t_quantile, xt_dot_accurate,
)
from .validation import (
    categorical_spec, check_confidence, group_order, note, numeric_column, require_columns,
)

__all__ = ["linear_regression", "RegressionResult", "INTERCEPT"]

INTERCEPT = "const"
_COLLINEAR_TOL = 1e-11
_MAX_REFINE = 4


@dataclass
class RegressionResult:
    """Result of :func:`linear_regression`.

    Parameters
    ----------
    dv : hashable
        Dependent variable.
    predictors : list
        As given (before dummy coding).
    terms : list of str
        Model columns: ``"const"`` (if any), numeric predictors, ``"name[level]"`` dummies.
    coefficients : pandas.DataFrame
        term, B, se, beta (standardised), t, p, ci_low, ci_high, vif.
    coding : pandas.DataFrame
        variable, level, term (None for the reference), reference, n per categorical level.
    n : int
        Rows used.
    n_missing : int
        Rows dropped by listwise deletion.
    intercept : bool
        Whether a constant was fitted.
    r : float
        Multiple R.
    r_squared : float
        R^2 (uncentered without intercept, see ``r_squared_kind``).
    adj_r_squared : float
        Adjusted R^2.
    r_squared_kind : str
        ``"centered"`` or ``"uncentered"``.
    F : float
        Overall F test of all non-intercept coefficients (all coefficients without
        intercept).
    df_model : int
        Its numerator degrees of freedom.
    df_resid : int
        Residual degrees of freedom n - p.
    p : float
        p of the F test.
    residual_se : float
        sqrt(SSE / (n - p)).
    ss_model : float
        Regression sum of squares.
    ss_resid : float
        Residual sum of squares.
    ss_total : float
        Total sum of squares (uncentered without intercept).
    confidence : float
        Confidence level of the coefficient CIs.
    notes : list of str
        Degenerate results.
    """

    dv: Hashable
    predictors: List[Hashable]
    terms: List[str]
    coefficients: pd.DataFrame = field(repr=False)
    coding: pd.DataFrame = field(repr=False)
    n: int
    n_missing: int
    intercept: bool
    r: float
    r_squared: float
    adj_r_squared: float
    r_squared_kind: str
    F: float
    df_model: int
    df_resid: int
    p: float
    residual_se: float
    ss_model: float
    ss_resid: float
    ss_total: float
    confidence: float
    notes: List[str] = field(default_factory=list)

    outcome = DeprecatedAttribute("dv")
    alpha = DeprecatedAttribute("confidence", significance_level, "alpha = 1 - confidence")

    def to_frame(self) -> pd.DataFrame:
        """The coefficient table.

        Returns
        -------
        pandas.DataFrame
            One row per term (a copy of ``coefficients``).
        """
        return self.coefficients.copy()

    def model_frame(self) -> pd.DataFrame:
        """One-row model summary.

        Returns
        -------
        pandas.DataFrame
            Columns outcome (the dependent variable), n, r, r_squared, adj_r_squared, F,
            df_model, df_resid, p, residual_se.
        """
        return pd.DataFrame([{
            "outcome": self.dv, "n": self.n, "r": self.r, "r_squared": self.r_squared,
            "adj_r_squared": self.adj_r_squared, "F": self.F, "df_model": self.df_model,
            "df_resid": self.df_resid, "p": self.p, "residual_se": self.residual_se,
        }])

    def anova(self) -> pd.DataFrame:
        """The regression ANOVA table.

        Returns
        -------
        pandas.DataFrame
            Rows regression, residual, total; columns source, ss, df, ms, F, p.
        """
        df_total = self.df_model + self.df_resid
        return pd.DataFrame({
            "source": ["regression", "residual", "total"],
            "ss": [self.ss_model, self.ss_resid, self.ss_total],
            "df": [self.df_model, self.df_resid, df_total],
            "ms": [self.ss_model / self.df_model, self.ss_resid / self.df_resid, np.nan],
            "F": [self.F, np.nan, np.nan],
            "p": [self.p, np.nan, np.nan],
        })


# ---------------------------------------------------------------------------
# design matrix
# ---------------------------------------------------------------------------
def _build_design(
    data: pd.DataFrame, outcome: Hashable, predictors: List[Hashable], spec: Dict[Hashable, Any],
    intercept: bool,
) -> Tuple[np.ndarray, np.ndarray, List[str], pd.DataFrame, int]:
    """Return y, X, term names, coding rows, n_missing (listwise)."""
    numeric = {}
    for pname in predictors:
        if pname in spec:
            continue
        try:
            numeric[pname] = numeric_column(data, pname)
        except StatsError as exc:
            raise StatsError(
                f"{exc}; if {pname!r} is categorical, declare it with "
                f"categorical={{{pname!r}: reference_level}}"
            ) from None
    y_all = numeric_column(data, outcome)
    keep = ~np.isnan(y_all)
    for pname in predictors:
        if pname in spec:
            keep &= data[pname].notna().to_numpy()
        else:
            keep &= ~np.isnan(numeric[pname])
    n = int(keep.sum())
    if n == 0:
        raise StatsError(f"linear_regression: no row is complete on {[outcome] + predictors}")
    cols: List[np.ndarray] = []
    terms: List[str] = []
    coding: List[dict] = []
    if intercept:
        cols.append(np.ones(n))
        terms.append(INTERCEPT)
    for pname in predictors:
        if pname not in spec:
            cols.append(numeric[pname][keep])
            terms.append(str(pname))
            continue
        s = data[pname][keep]
        levels = group_order(s, None, pname)
        ref = spec[pname]
        if ref is None:
            ref = levels[0]
        elif ref not in levels:
            raise StatsError(f"linear_regression: reference level {ref!r} of {pname!r} is "
                             f"not among its levels in the used rows: {levels}")
        if len(levels) < 2:
            raise StatsError(f"column {pname!r} has zero variance in the {n} complete rows "
                             f"(only level {levels})")
        for lev in levels:
            count = int((s == lev).sum())
            if lev == ref:
                coding.append({"variable": pname, "level": lev, "term": None,
                               "reference": True, "n": count})
                continue
            term = f"{pname}[{lev}]"
            cols.append((s == lev).to_numpy().astype(np.float64))
            terms.append(term)
            coding.append({"variable": pname, "level": lev, "term": term,
                           "reference": False, "n": count})
    X = np.column_stack(cols)
    coding_df = pd.DataFrame(coding, columns=["variable", "level", "term", "reference", "n"])
    return y_all[keep], X, terms, coding_df, int(len(data) - n)


# ---------------------------------------------------------------------------
# least squares core
# ---------------------------------------------------------------------------
def _lstsq(
    X: np.ndarray, y: np.ndarray, terms: List[str]
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Scaled Householder QR + refinement.  Returns b, residuals, R^-1 (scaled), scale."""
    norms = np.sqrt(np.einsum("ij,ij->j", X, X))
    zero = [t for t, v in zip(terms, norms) if v == 0.0]
    if zero:
        raise StatsError(f"linear_regression: column(s) {zero} are all zero")
    scale = np.exp2(np.round(np.log2(norms)))
    Xs = X / scale
    Q, R = np.linalg.qr(Xs)
    diag = np.abs(np.diag(R))
    col_norm = norms / scale
    bad = np.flatnonzero(diag < _COLLINEAR_TOL * col_norm)
    if bad.size:
        j = int(bad[0])
        raise StatsError(
            f"linear_regression: term {terms[j]!r} is a linear combination of the preceding "
            f"terms {terms[:j]} (perfect collinearity); remove one of them"
        )
    b = solve_triangular(R, Q.T @ y)
    r = residual_accurate(y, Xs, b)
    for _ in range(_MAX_REFINE):
        f = residual_accurate(y, Xs, b, r)
        g = -xt_dot_accurate(Xs, r)
        f1 = Q.T @ f
        d1 = solve_triangular(R, g, trans="T")
        db = solve_triangular(R, f1 - d1)
        b = b + db
        r = r + (f - Q @ (f1 - d1))
        if np.all(np.abs(db) <= 4.0 * np.finfo(float).eps * np.abs(b)):
            break
    r = residual_accurate(y, Xs, b)
    Rinv = solve_triangular(R, np.eye(R.shape[0]))
    return b / scale, b, r, Rinv, scale, Xs


def _vif(X: np.ndarray, intercept: bool, Rinv: np.ndarray, Xs: np.ndarray) -> np.ndarray:
    p = X.shape[1]
    out = np.full(p, np.nan)
    if intercept:
        if p == 2:
            out[1] = 1.0
            return out
        Z = X[:, 1:] - np.array([accurate_mean(X[:, j]) for j in range(1, p)])
        Z = Z / np.sqrt(np.einsum("ij,ij->j", Z, Z))
        Rz = np.linalg.qr(Z, mode="r")
        Rzi = solve_triangular(Rz, np.eye(p - 1))
        out[1:] = np.einsum("ij,ij->i", Rzi, Rzi)
        return out
    if p == 1:
        return np.ones(1)
    return np.einsum("ij,ij->i", Rinv, Rinv) * np.einsum("ij,ij->j", Xs, Xs)


@renamed_arguments({"outcome": "dv", "alpha": DEPRECATED_ALPHA}, options=("categorical",))
def linear_regression(
    data: pd.DataFrame,
    dv: Hashable,
    predictors: Union[Hashable, Sequence[Hashable]],
    *,
    categorical: Union[None, Hashable, Sequence[Hashable], Mapping[Hashable, Any]] = None,
    intercept: bool = True,
    confidence: float = 0.95,
) -> RegressionResult:
    """Ordinary least-squares multiple linear regression (SPSS REGRESSION "Enter").

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject.
    dv : column name
        Numeric dependent variable (e.g. ``"vbmd"`` in mg/cm^3).
    predictors : column name or list of column names
        Entered simultaneously, in this order.
    categorical : list of column names or dict {column: reference level}, optional
        Predictors to dummy-code (e.g. ``{"sex": "female"}``: coefficient ``sex[male]`` is
        male minus female).  In a list, the reference is the first category / smallest
        label.
    intercept : bool, default True
        Fit a constant.  ``False`` gives the through-origin model with uncentered R^2.
    confidence : float, default 0.95
        Level of the coefficient CIs.

    Returns
    -------
    RegressionResult
        ``to_frame()`` gives the coefficient table; ``model_frame()`` the model summary;
        ``anova()`` the ANOVA table; ``coding`` the dummy coding.

    Raises
    ------
    StatsError
        Missing column, non-numeric undeclared predictor, zero-variance outcome or predictor,
        a categorical predictor with one level, perfect collinearity, or n <= number of
        coefficients.
    """
    confidence = check_confidence(confidence)
    alpha = significance_level(confidence)
    outcome = dv
    predictors = [predictors] if isinstance(predictors, str) else list(predictors)
    if not predictors:
        raise StatsError("linear_regression: no predictors given")
    if len(set(predictors)) != len(predictors):
        raise StatsError(f"linear_regression: a predictor is listed twice: {predictors}")
    if outcome in predictors:
        raise StatsError(f"linear_regression: the outcome {outcome!r} is also a predictor")
    require_columns(data, [outcome] + predictors)
    spec = categorical_spec(categorical, predictors, "linear_regression: ")
    y, X, terms, coding, n_missing = _build_design(data, outcome, predictors, spec, intercept)
    n, p = X.shape
    if n <= p:
        raise StatsError(
            f"linear_regression: {n} complete row(s) but {p} coefficients; at least {p + 1} "
            "complete rows are needed"
        )
    y_mean, y_sd = mean_sd(y)
    if intercept:
        if y_sd == 0.0:
            raise StatsError(f"column {outcome!r} has zero variance in the {n} complete rows")
        for j in range(1, p):
            if np.all(X[:, j] == X[0, j]):
                raise StatsError(
                    f"column {terms[j]!r} has zero variance in the {n} complete rows "
                    f"(all values equal {X[0, j]:g})"
                )
    elif np.all(y == 0.0):
        raise StatsError(f"column {outcome!r} is zero in all {n} complete rows")
    notes: List[str] = []
    if spec and not intercept:
        note(notes, f"linear_regression {outcome!r}: no intercept with categorical predictor(s) "
                    f"{sorted(spec)}: their reference levels are forced through the origin (the model "
                    f"with these 0/1 columns, as SPSS /ORIGIN; R's y ~ 0 + ... would keep every level "
                    f"of the first factor)")
    b, b_scaled, resid, Rinv, scale, Xs = _lstsq(X, y, terms)
    df_resid = n - p
    df_model = p - 1 if intercept else p
    sse = math.fsum(resid * resid)
    sigma = math.sqrt(sse / df_resid)
    se = sigma * np.sqrt(np.einsum("ij,ij->i", Rinv, Rinv)) / scale
    fitted = residual_accurate(np.zeros(n), Xs, -b_scaled)
    if intercept:
        shift = float(np.median(y))
        sst = sum_sq_dev(y - shift, accurate_mean(y - shift))
        ssm = sum_sq_dev(fitted - shift, accurate_mean(fitted - shift))
    else:
        sst = math.fsum(y * y)
        ssm = math.fsum(fitted * fitted)
    r2 = min(1.0, max(0.0, 1.0 - sse / sst))
    k0 = 1 if intercept else 0
    adj = 1.0 - (1.0 - r2) * (n - k0) / df_resid
    if sse == 0.0:
        note(notes, f"linear_regression {outcome!r}: perfect fit (SSE = 0); F, t are infinite")
        F, p_model = math.inf, 0.0
    else:
        F = (ssm / df_model) / (sse / df_resid)
        p_model = float(_sps.f.sf(F, df_model, df_resid))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = b / se
    pvals = 2.0 * _sps.t.sf(np.abs(t), df_resid)
    h = t_quantile(alpha, df_resid) * se
    sd_x = np.array([mean_sd(X[:, j])[1] for j in range(p)])
    beta = b * sd_x / y_sd if y_sd > 0 else np.full(p, np.nan)
    if intercept:
        beta[0] = np.nan
    vif = _vif(X, intercept, Rinv, Xs)
    coefs = pd.DataFrame({
        "term": terms, "B": b, "se": se, "beta": beta, "t": t, "p": pvals,
        "ci_low": b - h, "ci_high": b + h, "vif": vif,
    })
    return RegressionResult(
        dv=outcome, predictors=predictors, terms=terms, coefficients=coefs,
        coding=coding, n=n, n_missing=n_missing, intercept=bool(intercept),
        r=math.sqrt(r2), r_squared=r2, adj_r_squared=adj,
        r_squared_kind="centered" if intercept else "uncentered", F=F, df_model=df_model,
        df_resid=df_resid, p=p_model, residual_se=sigma, ss_model=ssm, ss_resid=sse,
        ss_total=sst, confidence=confidence, notes=notes,
    )

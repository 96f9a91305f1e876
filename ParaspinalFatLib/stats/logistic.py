"""Binary logistic regression by Newton-Raphson (IRLS), reported the SPSS way.

SPSS "Variables in the Equation": B, S.E., Wald = (B/SE)^2, df, Sig., Exp(B) and
its CI exp(B -/+ z SE), with the Constant last; "Model Summary": -2 log
likelihood, Cox & Snell and Nagelkerke R^2; Hosmer-Lemeshow test; the
classification table at a 0.5 cut-off.  Separation is detected before the fit
with a linear programme (Konis 2007) and raised as :class:`StatsError`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Hashable, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
from scipy import linalg, optimize, special, stats

from ..errors import StatsError
from .deprecation import DeprecatedAttribute, renamed_arguments
from .numerics import z_quantile
from .validation import (
    as_float_array, categorical_spec, check_confidence, group_order, listwise, plain,
    require_columns,
)

__all__ = ["logistic_regression", "LogisticResult", "CONSTANT"]

CONSTANT = "Constant"


# ---------------------------------------------------------------------------
# design matrix
# ---------------------------------------------------------------------------

@dataclass
class _Design:
    """How to turn a table into the model matrix (kept for ``linear_score``)."""

    predictors: list
    levels: dict           # categorical predictor -> [reference, other levels...]
    columns: list          # design column names (without the constant)
    sources: list          # predictor each design column comes from

    def matrix(self, data: pd.DataFrame, strict: bool = True) -> np.ndarray:
        """Model matrix (constant last); rows with missing input become NaN.

        Parameters
        ----------
        data : pandas.DataFrame
            Holds the predictor columns.
        strict : bool, default True
            Raise for a categorical level not seen when fitting.

        Returns
        -------
        numpy.ndarray
            Shape (rows, design columns + 1).
        """
        cols = []
        for name in self.predictors:
            series = data[name]
            if name in self.levels:
                ref, *others = self.levels[name]
                missing = series.isna().to_numpy()
                known = set(self.levels[name])
                unseen = sorted({str(v) for v in series[~missing] if v not in known})
                if unseen and strict:
                    raise StatsError(
                        f"predictor {name!r} has levels {unseen} not seen when fitting "
                        f"(levels: {self.levels[name]})"
                    )
                for lev in others:
                    col = (series == lev).to_numpy(dtype=np.float64)
                    col[missing] = np.nan
                    cols.append(col)
            else:
                cols.append(_numeric(series, name))
        cols.append(np.ones(len(data)))
        return np.column_stack(cols)


def _numeric(series: pd.Series, name: Hashable) -> np.ndarray:
    try:
        return as_float_array(series, name)
    except StatsError:
        raise StatsError(
            f"predictor {name!r} is not numeric; list it in categorical= to dummy-code it"
        ) from None


def _build_design(sub: pd.DataFrame, predictors: list, categorical: Any) -> _Design:
    cat_ref = categorical_spec(categorical, predictors, "logistic_regression: ")
    levels, columns, sources = {}, [], []
    for name in predictors:
        if name in cat_ref:
            # R/statsmodels order: a Categorical keeps its category order (e.g.
            # lovett_group: poor < good); other levels are sorted
            levs = group_order(sub[name], None, name)
            if len(levs) < 2:
                raise StatsError(
                    f"categorical predictor {name!r} has a single level {levs} (zero variance)"
                )
            ref = cat_ref[name]
            if ref is None:
                ref = levs[0]
            elif ref not in levs:
                raise StatsError(f"reference level {ref!r} of {name!r} not among {levs}")
            ordered = [ref] + [lev for lev in levs if lev != ref]
            levels[name] = ordered
            for lev in ordered[1:]:
                columns.append(f"{name}[{lev}]")
                sources.append(name)
        else:
            columns.append(name)
            sources.append(name)
    return _Design(list(predictors), levels, columns, sources)


def _outcome_codes(values: pd.Series, outcome: Hashable,
                   event: Any) -> Tuple[np.ndarray, Any, Any]:
    levels = list(pd.unique(values))
    shown = plain(levels)
    if len(levels) > 2:
        raise StatsError(
            f"outcome {outcome!r} has {len(levels)} levels {shown}; binary logistic "
            "regression needs exactly two"
        )
    if len(levels) < 2:
        raise StatsError(f"outcome {outcome!r} has a single class {shown}; need events and non-events")
    numeric_coding = event is None
    if numeric_coding:
        numeric01 = all(
            isinstance(v, (bool, np.bool_, int, float, np.integer, np.floating)) and v in (0, 1)
            for v in levels
        )
        if not numeric01:
            raise StatsError(
                f"outcome {outcome!r} must be coded 0/1, or pass positive= naming the event "
                f"level (found levels {shown})"
            )
        event = 1
    if not any(v == event for v in levels):
        raise StatsError(f"positive= level {event!r} does not occur in outcome {outcome!r} "
                         f"{shown}")
    other = [v for v in levels if not v == event][0]
    y = (values == event).to_numpy(dtype=np.float64)
    if numeric_coding:
        event, other = 1, 0
    return y, event, other


# ---------------------------------------------------------------------------
# checks: collinearity and separation
# ---------------------------------------------------------------------------

def _standardise(x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Centre/scale the non-constant columns; returns (xs, T) with beta = T @ gamma."""
    p = x.shape[1]
    mean = x[:, :-1].mean(axis=0)
    sd = x[:, :-1].std(axis=0)
    xs = np.empty_like(x)
    xs[:, :-1] = (x[:, :-1] - mean) / sd
    xs[:, -1] = 1.0
    t = np.zeros((p, p))
    t[np.arange(p - 1), np.arange(p - 1)] = 1.0 / sd
    t[-1, :-1] = -mean / sd
    t[-1, -1] = 1.0
    return xs, t


def _check_rank(xs: np.ndarray, names: list) -> None:
    _q, r, piv = linalg.qr(xs, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    tol = diag[0] * max(xs.shape) * np.finfo(float).eps * 1e3
    rank = int(np.sum(diag > tol))
    if rank < xs.shape[1]:
        basis = list(piv[:rank])
        parts = []
        for j in piv[rank:]:
            coef = np.linalg.lstsq(xs[:, basis], xs[:, j], rcond=None)[0]
            with_ = [names[b] for b, c in zip(basis, coef) if abs(c) > 1e-8 and names[b] != CONSTANT]
            parts.append(f"{names[j]!r} = linear combination of {with_ or ['the constant']}")
        raise StatsError(
            "predictors are linearly dependent (collinear): " + "; ".join(parts)
            + "; drop one of them"
        )


_LP_OPTIONS = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}


def _separates(a: np.ndarray) -> bool:
    """Is there beta != 0 with all margins a @ beta >= 0 and some > 0?  (Konis 2007 LP)."""
    n, q = a.shape
    res = optimize.linprog(-a.sum(axis=0), A_ub=-a, b_ub=np.zeros(n),
                           bounds=[(-1.0, 1.0)] * q, method="highs", options=_LP_OPTIONS)
    if res.status != 0 or res.x is None:
        return False
    margins = a @ res.x
    return bool(-res.fun > 1e-7 * n and margins.min() >= -1e-7 and margins.max() > 1e-6)


def _completely_separates(a: np.ndarray) -> bool:
    """Is there beta with every margin a @ beta > 0 (complete separation)?"""
    n, q = a.shape
    c = np.zeros(q + 1)
    c[-1] = -1.0  # maximise the smallest margin t
    res = optimize.linprog(c, A_ub=np.column_stack([-a, np.ones(n)]), b_ub=np.zeros(n),
                           bounds=[(-1.0, 1.0)] * q + [(0.0, 1.0)], method="highs",
                           options=_LP_OPTIONS)
    return bool(res.status == 0 and res.x is not None and -res.fun > 1e-7)


def _separation(xs: np.ndarray, y: np.ndarray, sources: list,
                predictors: list) -> Optional[Tuple[str, list]]:
    """None, or (kind, minimal list of predictors that (quasi-)completely separate y).

    The list is found by backward elimination: a predictor is dropped when the
    outcome stays separated without it, so what remains is an irreducible set.
    """
    a_all = (2.0 * y - 1.0)[:, None] * xs
    if not _separates(a_all):
        return None

    def columns(keep):
        return [j for j, src in enumerate(sources) if src in keep] + [xs.shape[1] - 1]

    keep = list(predictors)
    for name in predictors:
        trial = [k for k in keep if k != name]
        if trial and _separates(a_all[:, columns(trial)]):
            keep = trial
    kind = "complete" if _completely_separates(a_all[:, columns(keep)]) else "quasi-complete"
    return kind, keep


# ---------------------------------------------------------------------------
# fitting
# ---------------------------------------------------------------------------

def _loglik(eta: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum(y * eta - np.logaddexp(0.0, eta)))


def _newton(xs: np.ndarray, y: np.ndarray, max_iter: int,
            tol: float) -> Tuple[np.ndarray, np.ndarray, int]:
    """Maximum likelihood by Newton-Raphson with step halving; returns (gamma, cov, iters)."""
    n, p = xs.shape
    gamma = np.zeros(p)
    ybar = y.mean()
    gamma[-1] = np.log(ybar / (1.0 - ybar))
    eta = xs @ gamma
    ll = _loglik(eta, y)
    for it in range(1, max_iter + 1):
        mu = special.expit(eta)
        w = mu * (1.0 - mu)
        hess = xs.T @ (xs * w[:, None])
        grad = xs.T @ (y - mu)
        try:
            step = linalg.solve(hess, grad, assume_a="pos")
        except (linalg.LinAlgError, ValueError):
            raise StatsError("the information matrix is singular; the model cannot be fitted") from None
        new = gamma + step
        new_ll = _loglik(xs @ new, y)
        halvings = 0
        while new_ll < ll - 1e-12 * (1.0 + abs(ll)) and halvings < 30:
            step = step / 2.0
            new = gamma + step
            new_ll = _loglik(xs @ new, y)
            halvings += 1
        gamma, ll = new, new_ll
        eta = xs @ gamma
        if np.max(np.abs(step)) <= tol * (1.0 + np.max(np.abs(gamma))):
            mu = special.expit(eta)
            w = mu * (1.0 - mu)
            hess = xs.T @ (xs * w[:, None])
            cov = linalg.inv(hess)
            return gamma, cov, it
    raise StatsError(
        f"logistic regression did not converge in {max_iter} iterations; coefficients keep "
        "growing, which usually means (quasi-)complete separation of the outcome"
    )


def _hosmer_lemeshow(x: np.ndarray, y: np.ndarray, mu: np.ndarray,
                     groups: int = 10) -> Dict[str, Any]:
    """Hosmer-Lemeshow deciles-of-risk test (SAS PROC LOGISTIC grouping)."""
    n = len(y)
    _pat, inverse = np.unique(x, axis=0, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    n_pat = int(inverse.max()) + 1
    size = np.bincount(inverse, minlength=n_pat)
    obs = np.bincount(inverse, weights=y, minlength=n_pat)
    exp_ = np.bincount(inverse, weights=mu, minlength=n_pat)
    prob = exp_ / size
    order = np.argsort(prob, kind="mergesort")
    target = max(int(np.floor(n / groups + 0.5)), 1)
    assign = np.empty(n_pat, dtype=np.intp)
    g, count = 0, 0
    for j, pat in enumerate(order):
        nb = int(size[pat])
        if j > 0 and not (g == groups - 1 or (count < target and count + nb // 2 <= target)):
            g += 1
            count = 0
        assign[pat] = g
        count += nb
    n_groups = g + 1
    if n_groups > 1:
        last = assign == g
        if size[last].sum() <= int(np.floor(n / (2.0 * groups))):
            assign[last] = g - 1
            n_groups -= 1
    gn = np.bincount(assign, weights=size, minlength=n_groups)
    go = np.bincount(assign, weights=obs, minlength=n_groups)
    ge = np.bincount(assign, weights=exp_, minlength=n_groups)
    table = pd.DataFrame({
        "group": np.arange(1, n_groups + 1), "n": gn.astype(int),
        "observed_event": go, "expected_event": ge,
        "observed_nonevent": gn - go, "expected_nonevent": gn - ge,
    })
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = float(np.sum((go - ge) ** 2 / (ge * (1.0 - ge / gn))))
    df = n_groups - 2
    p = float(stats.chi2.sf(chi2, df)) if df >= 1 and np.isfinite(chi2) else float("nan")
    return {"chi2": chi2 if df >= 1 else float("nan"), "df": df, "p": p, "table": table}


# ---------------------------------------------------------------------------
# result
# ---------------------------------------------------------------------------

@dataclass
class LogisticResult:
    """Fitted binary logistic regression (result of :func:`logistic_regression`).

    Parameters
    ----------
    dv : hashable
        Outcome column.
    positive : object
        The outcome level modelled as 1 (the event).
    negative : object
        The other outcome level.
    predictors : list
        Predictor columns as given.
    terms : list of str
        Model terms: predictors, dummies ``"name[level]"``, ``"Constant"`` last.
    coefficients : pandas.DataFrame
        term, B, SE, z, Wald, df, p, OR, OR_ci_low, OR_ci_high (Constant last).
    wald_tests : pandas.DataFrame
        Joint Wald test per categorical predictor with more than two levels.
    cov : numpy.ndarray
        Covariance matrix of B (terms order).
    n : int
        Rows used.
    n_events : int
        Rows with the ``positive`` outcome.
    n_excluded : int
        Rows dropped for a missing outcome or predictor.
    minus2ll : float
        -2 log-likelihood of the model.
    minus2ll_null : float
        -2 log-likelihood of the constant-only model.
    model_chi2 : float
        Omnibus likelihood-ratio chi-square.
    model_df : int
        Its degrees of freedom.
    model_p : float
        Its p.
    cox_snell_r2 : float
        Cox & Snell R^2.
    nagelkerke_r2 : float
        Nagelkerke R^2.
    hosmer_lemeshow : dict
        ``chi2``, ``df``, ``p`` and the contingency ``table``.
    classification : pandas.DataFrame
        Observed x predicted counts at ``cutoff`` with percent correct.
    percent_correct : float
        Overall percent correctly classified.
    cutoff : float
        Classification cut-off.
    confidence : float
        Confidence level of the odds-ratio intervals.
    iterations : int
        Newton iterations used.
    score : pandas.Series
        Linear predictor (log-odds) of the rows used, indexed like the input; what to
        pass to :func:`roc`.
    predicted : pandas.Series
        Probability of the event for the rows used.
    _design : object
        Internal: how to build the model matrix of new data (:meth:`linear_score`).
    """

    dv: Hashable
    positive: object
    negative: object
    predictors: list
    terms: list
    coefficients: pd.DataFrame = field(repr=False)
    wald_tests: pd.DataFrame = field(repr=False)
    cov: np.ndarray = field(repr=False)
    n: int = 0
    n_events: int = 0
    n_excluded: int = 0
    minus2ll: float = float("nan")
    minus2ll_null: float = float("nan")
    model_chi2: float = float("nan")
    model_df: int = 0
    model_p: float = float("nan")
    cox_snell_r2: float = float("nan")
    nagelkerke_r2: float = float("nan")
    hosmer_lemeshow: dict = field(default_factory=dict, repr=False)
    classification: pd.DataFrame = field(default=None, repr=False)
    percent_correct: float = float("nan")
    cutoff: float = 0.5
    confidence: float = 0.95
    iterations: int = 0
    score: pd.Series = field(default=None, repr=False)
    predicted: pd.Series = field(default=None, repr=False)
    _design: _Design = field(default=None, repr=False)

    outcome = DeprecatedAttribute("dv")
    event = DeprecatedAttribute("positive")
    nonevent = DeprecatedAttribute("negative")

    @property
    def params(self) -> pd.Series:
        """B by term.

        Returns
        -------
        pandas.Series
            Coefficients indexed by term.
        """
        return self.coefficients.set_index("term")["B"]

    def to_frame(self) -> pd.DataFrame:
        """The coefficient table ("Variables in the Equation").

        Returns
        -------
        pandas.DataFrame
            One row per term (a copy of ``coefficients``).
        """
        return self.coefficients.copy()

    def summary_frame(self) -> pd.DataFrame:
        """One-row model summary: n, -2LL, omnibus test, R^2, Hosmer-Lemeshow.

        Returns
        -------
        pandas.DataFrame
            One row.
        """
        hl = self.hosmer_lemeshow
        return pd.DataFrame([{
            "n": self.n, "n_events": self.n_events, "n_excluded": self.n_excluded,
            "minus2ll": self.minus2ll, "minus2ll_null": self.minus2ll_null,
            "model_chi2": self.model_chi2, "model_df": self.model_df, "model_p": self.model_p,
            "cox_snell_r2": self.cox_snell_r2, "nagelkerke_r2": self.nagelkerke_r2,
            "hl_chi2": hl.get("chi2"), "hl_df": hl.get("df"), "hl_p": hl.get("p"),
            "percent_correct": self.percent_correct,
        }])

    def linear_score(self, data: pd.DataFrame) -> pd.Series:
        """Linear predictor ``X @ B`` for the rows of ``data`` (NaN where an input is missing).

        This is the "combined predictor" to compare with single markers in
        :func:`roc_compare`; it ranks exactly like the predicted probability.

        Parameters
        ----------
        data : pandas.DataFrame
            Holds the predictor columns (the fitted rows or new ones).

        Returns
        -------
        pandas.Series
            The linear predictor, indexed like ``data``, named ``"score"``.

        Raises
        ------
        StatsError
            A missing predictor column, or a categorical level not seen when fitting.
        """
        require_columns(data, self.predictors)
        x = self._design.matrix(data)
        beta = self.coefficients["B"].to_numpy()
        return pd.Series(x @ beta, index=data.index, name="score")

    def predict_proba(self, data: pd.DataFrame) -> pd.Series:
        """Predicted probability of the event for the rows of ``data``.

        Parameters
        ----------
        data : pandas.DataFrame
            Holds the predictor columns.

        Returns
        -------
        pandas.Series
            Probabilities indexed like ``data``, named ``"p"``.
        """
        eta = self.linear_score(data)
        return pd.Series(special.expit(eta.to_numpy()), index=data.index, name="p")


def _classification(y: np.ndarray, mu: np.ndarray, cutoff: float, event: Any,
                    nonevent: Any) -> Tuple[pd.DataFrame, float]:
    pred = mu > cutoff  # SPSS: cases whose probability exceeds the cut-off are events
    rows = []
    for label, obs in ((nonevent, 0.0), (event, 1.0)):
        sel = y == obs
        n_neg = int(np.sum(sel & ~pred))
        n_pos = int(np.sum(sel & pred))
        correct = n_pos if obs == 1.0 else n_neg
        rows.append({"observed": label, f"predicted_{nonevent}": n_neg,
                     f"predicted_{event}": n_pos,
                     "percent_correct": 100.0 * correct / max(n_neg + n_pos, 1)})
    overall = 100.0 * float(np.mean(pred == (y == 1.0)))
    rows.append({"observed": "Overall", f"predicted_{nonevent}": np.nan,
                 f"predicted_{event}": np.nan, "percent_correct": overall})
    return pd.DataFrame(rows), overall


@renamed_arguments({"outcome": "dv", "event": "positive"}, options=("categorical",))
def logistic_regression(
    data: pd.DataFrame,
    dv: Hashable,
    predictors: Union[Hashable, Sequence[Hashable]],
    *,
    categorical: Union[None, Hashable, Sequence[Hashable], Mapping[Hashable, Any]] = None,
    positive: Any = None,
    confidence: float = 0.95,
    cutoff: float = 0.5,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> LogisticResult:
    """Binary logistic regression (maximum likelihood, Newton-Raphson).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject.
    dv : column name
        Outcome column: coded 0/1 (1 = event), or any two levels with ``positive=``.
    predictors : column name or list of column names
        Predictor columns (numeric, or listed in ``categorical``).
    categorical : list of column names or dict, optional
        Predictors to dummy-code.  A dict maps predictor -> reference level.
        Default reference: the lowest (first sorted) level, as in R/statsmodels;
        note SPSS's default "Indicator" contrast uses the *last* level.
        Dummy columns are named ``"name[level]"``.
    positive : object, optional
        Outcome level that is the event (required unless the outcome is coded 0/1,
        where 1 is the event).
    confidence : float, default 0.95
        For the odds-ratio intervals exp(B -/+ z SE), z the exact normal quantile.
    cutoff : float, default 0.5
        Classification table cut-off; a case is predicted an event when its
        probability exceeds the cut-off (SPSS).
    max_iter : int, default 100
        Most Newton iterations.
    tol : float, default 1e-10
        Relative step tolerance for convergence.

    Returns
    -------
    LogisticResult
        ``to_frame()`` is the coefficient table; ``summary_frame()`` the model
        summary; ``score``/``linear_score(data)`` the linear predictor for ROC.

    Notes
    -----
    * Wald = (B/SE)^2 on 1 df (SPSS); p = P(chi2_1 > Wald), identical to the
      two-sided z test of Stata/statsmodels/R.
    * Cox & Snell R^2 = 1 - exp((2/n)(LL0 - LL)); Nagelkerke R^2 = Cox & Snell
      / (1 - exp(2 LL0 / n)); LL0 is the constant-only model.
    * Hosmer-Lemeshow: rows with identical covariate patterns form blocks that
      are never split; blocks sorted by predicted probability are filled into
      about 10 groups of target size floor(0.1 n + 0.5) with the documented
      SAS PROC LOGISTIC rule (a block joins the current group while the group is
      below target and adding half the block does not exceed it; at most 10
      groups; a last group of at most half the target joins the previous one).
      SPSS also keeps tied patterns together in "deciles of risk" but does not
      document its exact cut rule, so its chi-square may differ slightly on
      some data.  df = groups - 2.
    * Rows with a missing outcome or predictor are dropped (listwise).

    Raises
    ------
    StatsError
        Missing columns; outcome not binary, single class or unknown ``positive``;
        non-numeric predictor not declared categorical; zero-variance or
        collinear predictors; n not larger than the number of parameters;
        (quasi-)complete separation (naming the predictors involved);
        non-convergence.
    """
    conf = check_confidence(confidence)
    outcome, event = dv, positive
    if isinstance(predictors, str):
        predictors = [predictors]
    predictors = list(predictors)
    if not predictors:
        raise StatsError("give at least one predictor")
    if len(set(predictors)) != len(predictors):
        raise StatsError(f"predictors contain duplicates: {predictors}")
    if outcome in predictors:
        raise StatsError(f"outcome {outcome!r} is also listed as a predictor")
    sub = listwise(data, [outcome] + predictors)
    n = len(sub)
    n_excluded = len(data) - n
    if n == 0:
        raise StatsError("no complete rows (every row has a missing outcome or predictor)")
    y, event, nonevent = _outcome_codes(sub[outcome], outcome, event)
    design = _build_design(sub, predictors, categorical)
    x = design.matrix(sub)
    names = design.columns + [CONSTANT]
    p = x.shape[1]
    for j, col in enumerate(design.columns):
        if np.ptp(x[:, j]) == 0:
            raise StatsError(f"predictor {col!r} has zero variance (constant) in the {n} rows used")
    if n <= p:
        raise StatsError(f"n = {n} complete rows is too small for {p} parameters")
    xs, t = _standardise(x)
    _check_rank(xs, names)
    sep = _separation(xs, y, design.sources, predictors)
    if sep is not None:
        kind, involved = sep
        share = "every case" if kind == "complete" else "part of the cases"
        raise StatsError(
            f"{kind} separation of outcome {outcome!r} by predictor(s) {involved}: they "
            f"predict the outcome perfectly for {share}, so maximum-likelihood estimates "
            "do not exist (coefficients diverge, odds ratios would be infinite). Remove or "
            "recode those predictors, or use penalised (Firth) regression"
        )
    gamma, cov_g, iters = _newton(xs, y, max_iter, tol)
    beta = t @ gamma
    cov = t @ cov_g @ t.T
    se = np.sqrt(np.diag(cov))
    eta = x @ beta
    mu = special.expit(eta)
    ll = _loglik(eta, y)
    ybar = y.mean()
    ll0 = float(n * (ybar * np.log(ybar) + (1.0 - ybar) * np.log(1.0 - ybar)))
    zq = z_quantile(conf)
    zstat = beta / se
    with np.errstate(over="ignore"):  # exp(B) of a large constant may be inf
        odds = (np.exp(beta), np.exp(beta - zq * se), np.exp(beta + zq * se))
    coef = pd.DataFrame({
        "term": names, "B": beta, "SE": se, "z": zstat, "Wald": zstat ** 2,
        "df": np.ones(p, dtype=int), "p": 2.0 * stats.norm.sf(np.abs(zstat)),
        "OR": odds[0], "OR_ci_low": odds[1], "OR_ci_high": odds[2],
    })
    wald_rows = []
    for name in design.levels:
        idx = [j for j, s in enumerate(design.sources) if s == name]
        if len(idx) > 1:
            b = beta[idx]
            wald = float(b @ linalg.solve(cov[np.ix_(idx, idx)], b, assume_a="pos"))
            wald_rows.append({"predictor": name, "Wald": wald, "df": len(idx),
                              "p": float(stats.chi2.sf(wald, len(idx)))})
    cs = 1.0 - np.exp(2.0 * (ll0 - ll) / n)
    cs_max = 1.0 - np.exp(2.0 * ll0 / n)
    classification, overall = _classification(y, mu, cutoff, event, nonevent)
    chi2 = 2.0 * (ll - ll0)
    return LogisticResult(
        dv=outcome, positive=event, negative=nonevent, predictors=predictors, terms=names,
        coefficients=coef,
        wald_tests=pd.DataFrame(wald_rows, columns=["predictor", "Wald", "df", "p"]),
        cov=cov, n=n, n_events=int(y.sum()), n_excluded=n_excluded,
        minus2ll=-2.0 * ll, minus2ll_null=-2.0 * ll0, model_chi2=chi2, model_df=p - 1,
        model_p=float(stats.chi2.sf(chi2, p - 1)), cox_snell_r2=float(cs),
        nagelkerke_r2=float(cs / cs_max), hosmer_lemeshow=_hosmer_lemeshow(x, y, mu),
        classification=classification, percent_correct=overall, cutoff=cutoff,
        confidence=conf, iterations=iters,
        score=pd.Series(eta, index=sub.index, name="score"),
        predicted=pd.Series(mu, index=sub.index, name="p"), _design=design,
    )

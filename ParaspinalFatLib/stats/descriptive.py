"""Descriptive statistics per group (mean +/- SD, counts and %) and the chi-square test.

Conventions
-----------
* SD uses n - 1 (sample SD, as SPSS); SE = SD / sqrt(n).  Mean and sums of squares use
  exactly rounded sums (NIST StRD univariate accuracy).
* Missing values are excluded *per variable* (each variable reports its own n and
  n_missing).  Rows whose grouping value is missing are excluded from the group rows *and*
  from the overall row, so the overall row always pools exactly the groups shown (as SPSS
  Means/Crosstabs); their number is reported as ``n_group_missing``.
* Quartiles default to ``method="weibull"`` (Hyndman-Fan type 6, quantile at (n + 1)p), the
  SPSS "weighted average" definition; pass ``quantile_method="linear"`` for the numpy/R
  default (type 7).  The median is the same under both.
* Percentages of categorical variables are of the non-missing values of that group ("valid
  percent" in SPSS).
* :func:`chi_square` reports the Pearson chi-square *without* continuity correction as its
  main line (as SPSS does); ``correction=True`` makes the Yates-corrected statistic the main
  line for 2x2 tables (both are always computed for 2x2).  For a 2x2 table with any expected
  count < 5, Fisher's exact test (two-sided, sum of probabilities <= observed, as SPSS and R)
  is the test used by default; the result says which test was used.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Hashable, List, Optional, Sequence, Union

import numpy as np
import pandas as pd
from scipy import stats as _sps

from ..errors import StatsError
from .deprecation import DeprecatedAttribute, renamed_arguments
from .numerics import mean_sd
from .validation import group_order, note, numeric_column, require_columns

__all__ = ["describe", "chi_square", "DescribeResult", "ChiSquareResult"]

_NUMERIC_COLUMNS = [
    "variable", "group", "n", "n_missing", "mean", "sd", "se",
    "min", "q1", "median", "q3", "max",
]
_CATEGORICAL_COLUMNS = ["variable", "group", "level", "count", "percent", "n", "n_missing"]


@dataclass
class DescribeResult:
    """Result of :func:`describe`.

    Parameters
    ----------
    numeric : pandas.DataFrame
        One row per numeric variable and group (and the overall row): variable, group, n,
        n_missing, mean, sd, se, min, q1, median, q3, max.
    categorical : pandas.DataFrame
        One row per categorical variable, group and level: count, percent (of the
        non-missing values in that group), n, n_missing.
    between : hashable or None
        The grouping column.
    groups : list
        Group labels in reporting order (the overall row comes last).
    overall_label : str
        Label of the overall row in the ``group`` column of the tables.
    n_rows : int
        Rows in the input table.
    n_group_missing : int
        Rows excluded because the grouping value is missing.
    quantile_method : str
        numpy quantile method used for q1 and q3.
    notes : list of str
        Degenerate results (e.g. SD undefined for n = 1).
    """

    numeric: pd.DataFrame = field(repr=False)
    categorical: pd.DataFrame = field(repr=False)
    between: Optional[Hashable]
    groups: List[Any]
    overall_label: str
    n_rows: int
    n_group_missing: int
    quantile_method: str
    notes: List[str] = field(default_factory=list)

    group = DeprecatedAttribute("between")

    def to_frame(self) -> pd.DataFrame:
        """Numeric and categorical rows stacked, with a ``kind`` column.

        Returns
        -------
        pandas.DataFrame
            variable, kind, group, level, then the numeric and count columns.
        """
        num = self.numeric.assign(kind="numeric")
        cat = self.categorical.assign(kind="categorical")
        first = ["variable", "kind", "group", "level"]
        columns = first + [c for c in _NUMERIC_COLUMNS + ["count", "percent"] if c not in first]
        parts = [p.reindex(columns=columns) for p in (num, cat) if len(p)]
        if not parts:
            return pd.DataFrame(columns=columns)
        return pd.concat(parts, ignore_index=True, sort=False)


def _looks_numeric(s: pd.Series) -> bool:
    conv = pd.to_numeric(s.dropna(), errors="coerce")
    return len(conv) > 0 and conv.notna().mean() > 0.5


def _is_categorical(s: pd.Series) -> bool:
    dt = s.dtype
    return (
        isinstance(dt, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(dt)
        or not pd.api.types.is_numeric_dtype(dt)
    )


def _numeric_row(var: Hashable, grp: Any, x: np.ndarray, n_missing: int, qmethod: str,
                 notes: List[str]) -> Dict[str, Any]:
    n = int(x.size)
    row = {"variable": var, "group": grp, "n": n, "n_missing": n_missing}
    if n == 0:
        note(notes, f"{var!r} in group {grp!r}: no non-missing values; statistics undefined")
        row.update({k: np.nan for k in _NUMERIC_COLUMNS[4:]})
        return row
    m, sd = mean_sd(x)
    if n < 2:
        note(notes, f"{var!r} in group {grp!r}: n = 1, so SD and SE are undefined")
    q1, med, q3 = np.quantile(x, [0.25, 0.5, 0.75], method=qmethod)
    row.update(
        mean=m, sd=sd, se=sd / np.sqrt(n), min=float(x.min()), q1=float(q1),
        median=float(np.median(x)), q3=float(q3), max=float(x.max()),
    )
    return row


@renamed_arguments({"group": "between"})
def describe(
    data: pd.DataFrame,
    columns: Union[Hashable, Sequence[Hashable]],
    between: Optional[Hashable] = None,
    *,
    categorical: Optional[Sequence[Hashable]] = None,
    order: Optional[Sequence[Any]] = None,
    overall: bool = True,
    overall_label: str = "All",
    quantile_method: str = "weibull",
) -> DescribeResult:
    """Mean, SD, SE, range and quartiles (numeric) or counts and % (categorical) per group.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject.
    columns : column name or list of column names
        Variables to describe.  Numeric dtypes are summarised as numbers; bool, category,
        object and string columns as categories.
    between : column name, optional
        Grouping column (e.g. the vBMD category).  Without it only the overall row is given.
    categorical : list of column names, optional
        Numeric-coded columns to treat as categorical (e.g. sex coded 0/1).
    order : sequence, optional
        Group labels in reporting order (default: category order, else sorted).  Rows of
        groups not listed are left out of every row, the overall one included.
    overall : bool, default True
        Add the pooled row labelled ``overall_label``.
    overall_label : str, default "All"
        Label of the pooled row; must differ from every group label.
    quantile_method : str, default "weibull"
        numpy quantile method for q1/q3 ("weibull" = SPSS weighted average).

    Returns
    -------
    DescribeResult
        ``to_frame()`` gives the tidy table.

    Raises
    ------
    StatsError
        Missing column, a column that looks numeric but holds non-numeric values, fewer
        than one group with data, or ``overall_label`` equal to a group label.
    """
    cols = [columns] if isinstance(columns, (str, int)) or not isinstance(
        columns, (list, tuple, pd.Index)) else list(columns)
    if not cols:
        raise StatsError("describe: no columns given")
    group = between
    require_columns(data, cols + ([group] if group is not None else []))
    if group is not None and group in cols:
        raise StatsError(f"describe: the grouping column {group!r} is also listed in columns")
    cat_set = set(categorical or [])
    unknown = [c for c in cat_set if c not in cols]
    if unknown:
        raise StatsError(f"describe: categorical= names {unknown} that are not in columns")
    notes: List[str] = []

    if group is not None:
        g = data[group]
        keep = g.notna().to_numpy()
        n_group_missing = int((~keep).sum())
        labels = group_order(g[keep], order, group)
        if not labels:
            raise StatsError(f"describe: grouping column {group!r} has no non-missing values")
        in_groups = keep & g.isin(labels).to_numpy()
        if overall and any(str(lab) == overall_label for lab in labels):
            raise StatsError(
                f"describe: overall_label {overall_label!r} is also a group of {group!r}; "
                "pass another overall_label"
            )
        # fillna: with nullable dtypes (Int64, string[NA]) a missing group compares as <NA>
        masks = [(lab, (g == lab).fillna(False).to_numpy(dtype=bool) & keep) for lab in labels]
        if overall:
            masks.append((overall_label, in_groups))
    else:
        n_group_missing = 0
        labels = []
        masks = [(overall_label, np.ones(len(data), dtype=bool))]
    if n_group_missing:
        notes.append(f"{n_group_missing} row(s) with missing {group!r} excluded from all rows")

    num_rows, cat_rows = [], []
    for var in cols:
        s = data[var]
        if var in cat_set or _is_categorical(s):
            if var not in cat_set and not isinstance(s.dtype, pd.CategoricalDtype) and (
                not pd.api.types.is_bool_dtype(s.dtype) and _looks_numeric(s)
            ):
                bad = s[s.notna() & pd.to_numeric(s, errors="coerce").isna()]
                raise StatsError(
                    f"column {var!r} is not numeric: mostly numbers but {len(bad)} value(s) "
                    f"such as {list(pd.unique(bad.astype(str)))[:3]} are not; clean them or "
                    "list the column in categorical="
                )
            if isinstance(s.dtype, pd.CategoricalDtype):
                levels = list(s.cat.categories)
            else:
                levels = group_order(s, None, var)
            for lab, m in masks:
                sub = s[m]
                present = sub.dropna()
                n = int(len(present))
                if n == 0:
                    note(notes, f"{var!r} in group {lab!r}: no non-missing values; % undefined")
                counts = present.value_counts()
                for lev in levels:
                    c = int(counts.get(lev, 0))
                    cat_rows.append({
                        "variable": var, "group": lab, "level": lev, "count": c,
                        "percent": 100.0 * c / n if n else np.nan,
                        "n": n, "n_missing": int(len(sub) - n),
                    })
        else:
            x_all = numeric_column(data, var)
            for lab, m in masks:
                x = x_all[m]
                ok = ~np.isnan(x)
                num_rows.append(
                    _numeric_row(var, lab, x[ok], int((~ok).sum()), quantile_method, notes)
                )
    numeric_df = pd.DataFrame(num_rows, columns=_NUMERIC_COLUMNS)
    cat_df = pd.DataFrame(cat_rows, columns=_CATEGORICAL_COLUMNS)
    return DescribeResult(
        numeric=numeric_df, categorical=cat_df, between=group, groups=list(labels),
        overall_label=overall_label, n_rows=int(len(data)), n_group_missing=n_group_missing,
        quantile_method=quantile_method, notes=notes,
    )


# ---------------------------------------------------------------------------
# chi-square test of independence
# ---------------------------------------------------------------------------
@dataclass
class ChiSquareResult:
    """Result of :func:`chi_square`.

    Parameters
    ----------
    row : hashable
        Column whose levels are the table rows.
    col : hashable
        Column whose levels are the table columns.
    observed : pandas.DataFrame
        Counts (rows x columns, labelled).
    expected : pandas.DataFrame
        Expected counts under independence.
    n : int
        Rows used (both values present).
    n_missing : int
        Rows dropped because either value is missing.
    test : str
        The test whose p is in ``p``: ``"pearson"``, ``"yates"`` or ``"fisher"``.
    p : float
        p of the test used.
    chi2 : float
        Pearson chi-square (Yates-corrected for 2x2 when ``correction=True``).
    df : int
        Its degrees of freedom.
    p_chi2 : float
        Its p.
    pearson_chi2 : float
        Uncorrected Pearson chi-square (always).
    pearson_p : float
        Its p.
    yates_chi2 : float or None
        Continuity-corrected chi-square (2x2 only).
    yates_p : float or None
        Its p.
    likelihood_ratio : float
        G statistic 2 sum O ln(O/E).
    likelihood_ratio_p : float
        Its p (df as Pearson).
    fisher_p : float or None
        Fisher's exact two-sided p (2x2 only; always computed for 2x2).
    cramers_v : float
        sqrt(Pearson chi2 / (n (min(r, c) - 1))), from the uncorrected statistic.
    min_expected : float
        Smallest expected count.
    n_expected_below_5 : int
        Cells with expected count < 5.
    correction : bool
        Whether the Yates statistic is the main chi-square line.
    notes : list of str
        Degenerate results (sparse tables).
    """

    row: Hashable
    col: Hashable
    observed: pd.DataFrame = field(repr=False)
    expected: pd.DataFrame = field(repr=False)
    n: int
    n_missing: int
    test: str
    p: float
    chi2: float
    df: int
    p_chi2: float
    pearson_chi2: float
    pearson_p: float
    yates_chi2: Optional[float]
    yates_p: Optional[float]
    likelihood_ratio: float
    likelihood_ratio_p: float
    fisher_p: Optional[float]
    cramers_v: float
    min_expected: float
    n_expected_below_5: int
    correction: bool
    notes: List[str] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """SPSS-style "Chi-Square Tests" table.

        Returns
        -------
        pandas.DataFrame
            One row per test (test, statistic, df, p, used, n, cramers_v); ``used`` marks
            the test whose p is the result's ``p``.
        """
        rows = [("pearson", self.pearson_chi2, self.df, self.pearson_p)]
        if self.yates_chi2 is not None:
            rows.append(("yates", self.yates_chi2, self.df, self.yates_p))
        rows.append(("likelihood_ratio", self.likelihood_ratio, self.df, self.likelihood_ratio_p))
        if self.fisher_p is not None:
            rows.append(("fisher", np.nan, np.nan, self.fisher_p))
        out = pd.DataFrame(rows, columns=["test", "statistic", "df", "p"])
        out["used"] = out["test"] == self.test
        out["n"] = self.n
        out["cramers_v"] = self.cramers_v
        return out


def _levels(s: pd.Series, order: Optional[Sequence[Any]], name: Hashable) -> List[Any]:
    levels = group_order(s, order, name)
    if len(levels) < 2:
        raise StatsError(
            f"chi_square: {name!r} has {len(levels)} level(s) ({levels}) among the rows with "
            "both values; at least 2 are needed"
        )
    return levels


def chi_square(
    data: pd.DataFrame,
    row: Hashable,
    col: Hashable,
    *,
    correction: bool = False,
    fisher: str = "auto",
    row_order: Optional[Sequence[Any]] = None,
    col_order: Optional[Sequence[Any]] = None,
) -> ChiSquareResult:
    """Chi-square test of independence of two categorical columns (Fisher for sparse 2x2).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject.
    row : column name
        Categorical (or integer-coded) variable of the table rows, e.g. ``"sex"``.
    col : column name
        Categorical variable of the table columns, e.g. ``"vbmd_group"``.
    correction : bool, default False
        False: the main line is the uncorrected Pearson chi-square (SPSS's "Pearson
        Chi-Square").  True: for 2x2 tables the Yates continuity-corrected statistic is the
        main line (ignored for larger tables, where no correction is defined).
    fisher : {"auto", "always", "never"}, default "auto"
        For 2x2 tables: "auto" uses Fisher's exact test when any expected count is < 5,
        "always" always uses it, "never" never does.  Fisher's p is always *reported* for
        2x2 tables.  Larger sparse tables get a note (no exact r x c test here).
    row_order : sequence, optional
        Level order of the table rows (default: category order, else sorted).  Rows with
        other levels are dropped and counted in ``n_missing``.
    col_order : sequence, optional
        Level order of the table columns, likewise.

    Returns
    -------
    ChiSquareResult
        The test used and its p, all statistics, observed and expected tables.

    Raises
    ------
    StatsError
        Missing column, the same column twice, or fewer than 2 levels in either variable.
    """
    if fisher not in ("auto", "always", "never"):
        raise StatsError(f"chi_square: fisher must be 'auto', 'always' or 'never', got {fisher!r}")
    require_columns(data, [row, col])
    if row == col:
        raise StatsError(f"chi_square: row and col are the same column {row!r}")
    notes: List[str] = []
    r, c = data[row], data[col]
    both = (r.notna() & c.notna()).to_numpy()
    rl = _levels(r[both], row_order, row)
    cl = _levels(c[both], col_order, col)
    keep = both & r.isin(rl).to_numpy() & c.isin(cl).to_numpy()
    rk, ck = r[keep], c[keep]
    obs = np.array(
        [[int(((rk == a) & (ck == b)).sum()) for b in cl] for a in rl], dtype=np.float64
    )
    # drop levels that vanished after the other variable's filtering
    obs_df = pd.DataFrame(obs, index=pd.Index(rl, name=row), columns=pd.Index(cl, name=col))
    obs_df = obs_df.loc[obs_df.sum(axis=1) > 0, obs_df.sum(axis=0) > 0]
    if obs_df.shape[0] < 2 or obs_df.shape[1] < 2:
        raise StatsError(
            f"chi_square: the table of {row!r} x {col!r} has shape {obs_df.shape} after "
            "removing empty levels; at least 2 x 2 is needed"
        )
    obs = obs_df.to_numpy()
    n = int(obs.sum())
    exp = obs.sum(axis=1, keepdims=True) * obs.sum(axis=0, keepdims=True) / n
    dof = (obs.shape[0] - 1) * (obs.shape[1] - 1)
    pearson = float(((obs - exp) ** 2 / exp).sum())
    pearson_p = float(_sps.chi2.sf(pearson, dof))
    with np.errstate(divide="ignore", invalid="ignore"):
        g_terms = np.where(obs > 0, obs * np.log(obs / exp), 0.0)
    g = float(2.0 * g_terms.sum())
    g_p = float(_sps.chi2.sf(g, dof))
    is2x2 = obs.shape == (2, 2)
    yates = yates_p = fisher_p = None
    if is2x2:
        dev = np.maximum(np.abs(obs - exp) - 0.5, 0.0)
        yates = float((dev ** 2 / exp).sum())
        yates_p = float(_sps.chi2.sf(yates, dof))
        fisher_p = float(_sps.fisher_exact(obs.astype(np.int64), alternative="two-sided")[1])
    min_exp = float(exp.min())
    n_below5 = int((exp < 5).sum())
    use_fisher = is2x2 and (fisher == "always" or (fisher == "auto" and min_exp < 5))
    if use_fisher:
        test, p = "fisher", fisher_p
    elif is2x2 and correction:
        test, p = "yates", yates_p
    else:
        test, p = "pearson", pearson_p
    if not is2x2 and (n_below5 > 0.2 * exp.size or min_exp < 1):
        note(
            notes,
            f"chi_square {row!r} x {col!r}: {n_below5} of {exp.size} cells have expected "
            f"count < 5 (minimum {min_exp:.3g}); the chi-square approximation may be poor "
            "(no exact r x c test is computed)",
        )
    main_chi2 = yates if (is2x2 and correction) else pearson
    main_p = yates_p if (is2x2 and correction) else pearson_p
    cramers_v = float(np.sqrt(pearson / (n * (min(obs.shape) - 1))))
    return ChiSquareResult(
        row=row, col=col, observed=obs_df.astype(np.int64),
        expected=pd.DataFrame(exp, index=obs_df.index, columns=obs_df.columns),
        n=n, n_missing=int(len(data) - n), test=test, p=float(p), chi2=float(main_chi2),
        df=int(dof), p_chi2=float(main_p), pearson_chi2=pearson, pearson_p=pearson_p,
        yates_chi2=yates, yates_p=yates_p, likelihood_ratio=g, likelihood_ratio_p=g_p,
        fisher_p=fisher_p, cramers_v=cramers_v, min_expected=min_exp,
        n_expected_below_5=n_below5, correction=bool(correction), notes=notes,
    )

"""The analyses of a study report: every number from :mod:`ParaspinalFatLib.stats`, in
one tidy table and in the papers' table layouts.

:func:`run_analyses` takes the one-row-per-subject table (and, for reproducibility and
kappa between raters, the repeated readings), runs what the
:class:`~ParaspinalFatLib.report.analysis_config.AnalysisConfig` asks for and returns a
:class:`StudyResults`:

* ``results``: one row per number, columns ``analysis, dv, group_or_term, statistic,
  value, n`` -- exactly the values the ``ParaspinalFatLib.stats`` functions returned
  (nothing is recomputed or rounded here);
* ``tables``: the papers' layouts as text (``"682.49 ± 121.58"``, ``"< 0.001**"``);
* ``notes``: every analysis that could not be run and why, every degenerate result.

Formatting rules (seed papers 001/002): mean ± SD with ``decimals`` (2) decimals (more for
a variable whose SD is below 0.1, so that the SD keeps two significant digits); p with
3 decimals, ``"< 0.001"`` below 0.001, ``*`` for p < 0.05 and ``**`` for p < 0.01;
r, ICC, B, SE, beta, t, OR, AUC with 3 decimals; negative numbers with the minus sign
U+2212 (so that no table cell starts with a spreadsheet formula character);
intervals ``"0.885 (0.772–0.943)"``; "n/a" for an undefined value.
"""
from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ..errors import InputError, ParaspinalFatWarning, StatsError
from .analysis_config import CLINICAL_TOKEN, VARIABLES_TOKEN, AnalysisConfig

__all__ = [
    "StudyResults", "run_analyses", "RESULT_COLUMNS", "TABLE_ORDER", "KEY_COLUMNS",
    "stars", "format_p", "format_number", "format_mean_sd", "format_ci", "format_interval",
    "format_percent_ci",
    "variable_label", "resolve_variables", "add_groups", "MINUS",
]

#: columns of the tidy results table
RESULT_COLUMNS = ["analysis", "dv", "group_or_term", "statistic", "value", "n"]
#: order of the tables in the report (those computed)
TABLE_ORDER = ["reproducibility", "groups", "posthoc", "by_sex", "correlations", "regression",
               "regression_model", "logistic", "logistic_model", "roc", "roc_compare", "kappa"]
#: key columns of a subject table that identify a reading (never analysed)
KEY_COLUMNS = ("subject", "rater", "session", "map_name", "case_id")
#: the minus sign of formatted numbers (not a spreadsheet formula character)
MINUS = "\u2212"
_DASH = "\u2013"
_NA = "n/a"

_STANDARD_MUSCLES = ("mf", "es", "ps")
_STANDARD_METRICS = ("csa", "pdff")
_MUSCLE_ABBR = {
    "mf": "MF", "es": "ES", "ps": "PS", "au": "Autochthon", "ip": "Iliopsoas", "ql": "QL",
    "lo": "Longissimus", "ic": "Iliocostalis", "sp": "Spinalis", "pm": "Psoas minor",
}
_METRIC_LABEL = {
    "csa": ("CSA", "mm²"), "pdff": ("PDFF", "%"), "ff": ("FF", "%"), "fatpct": ("Fat", "%"),
    "fatcsa": ("Fat CSA", "mm²"), "leancsa": ("Lean CSA", "mm²"), "hu": ("Density", "HU"),
    "goutallier": ("Goutallier grade", ""), "kjaer": ("Kjaer grade", ""),
}
_CLINICAL_LABEL = {
    "age": "Age (years)", "bmi": "BMI (kg/m²)", "vbmd": "vBMD (mg/cm³)", "tscore": "T-score",
    "sex": "Sex", "height_m": "Height (m)", "weight": "Weight (kg)", "lovett": "Lovett grade",
}
_MEAN_VARIABLE = re.compile(r"^([a-z][a-z0-9_]*?)_(csa|pdff|ff|fatpct|fatcsa|leancsa|hu)_mean$")
_MALE = {"m", "male", "man", "men"}
_FEMALE = {"f", "female", "woman", "women", "w"}


# =========================================================================== formatting
def stars(p: float) -> str:
    """Significance stars of the seed papers.

    Parameters
    ----------
    p : float
        A p value.

    Returns
    -------
    str
        ``"**"`` for p < 0.01, ``"*"`` for p < 0.05, else ``""`` (also for NaN).
    """
    if p is None or not _finite(p):
        return ""
    return "**" if p < 0.01 else ("*" if p < 0.05 else "")


def format_p(p: float) -> str:
    """A p value as the papers print it.

    Parameters
    ----------
    p : float
        A p value.

    Returns
    -------
    str
        ``"< 0.001**"`` below 0.001, else 3 decimals plus stars (``"0.006**"``,
        ``"0.010*"``, ``"0.172"``); ``"n/a"`` for NaN.
    """
    if p is None or not _finite(p):
        return _NA
    if p < 0.001:
        return "< 0.001**"
    return f"{p:.3f}{stars(p)}"


def format_number(x: float, decimals: int = 3) -> str:
    """A number with fixed decimals and a typographic minus.

    Parameters
    ----------
    x : float
        The value.
    decimals : int, default 3
        Decimals.

    Returns
    -------
    str
        E.g. ``"−0.694"``; a non-zero value too small for ``decimals``, or one of a million
        or more, in scientific notation (``"3.20e−04"``, ``"3.02e12"``); ``"n/a"`` for NaN,
        ``"∞"``/``"−∞"`` for infinities.
    """
    if x is None:
        return _NA
    x = float(x)
    if math.isnan(x):
        return _NA
    if math.isinf(x):
        return ("" if x > 0 else MINUS) + "∞"
    if (x != 0.0 and abs(x) < 0.5 * 10.0 ** (-decimals)) or abs(x) >= 1e6:
        text = f"{abs(x):.2e}".replace("-", MINUS).replace("e+", "e")
    else:
        text = f"{abs(x):.{decimals}f}"
    negative = x < 0 and any(c in "123456789" for c in text.split("e")[0])
    return (MINUS if negative else "") + text


def format_mean_sd(mean: float, sd: float, decimals: int = 2) -> str:
    """``mean ± SD`` as in the papers' tables.

    Parameters
    ----------
    mean : float
        Mean.
    sd : float
        Standard deviation.
    decimals : int, default 2
        Decimals of both.

    Returns
    -------
    str
        E.g. ``"682.49 ± 121.58"``.
    """
    return f"{format_number(mean, decimals)} ± {format_number(sd, decimals)}"


def format_ci(estimate: float, low: float, high: float, decimals: int = 3) -> str:
    """An estimate with its confidence interval.

    Parameters
    ----------
    estimate : float
        The estimate.
    low : float
        Lower bound.
    high : float
        Upper bound.
    decimals : int, default 3
        Decimals.

    Returns
    -------
    str
        E.g. ``"0.885 (0.772–0.943)"``.
    """
    return f"{format_number(estimate, decimals)} ({format_interval(low, high, decimals)})"


def format_interval(low: float, high: float, decimals: int = 3) -> str:
    """The bounds of an interval.

    Parameters
    ----------
    low : float
        Lower bound.
    high : float
        Upper bound.
    decimals : int, default 3
        Decimals.

    Returns
    -------
    str
        ``"0.772–0.943"`` (en dash); ``"−0.900, −0.804"`` when a bound is negative (a dash
        next to a minus sign would be ambiguous).
    """
    sep = _DASH if (not _finite(low) or low >= 0) and (not _finite(high) or high >= 0) else ", "
    return f"{format_number(low, decimals)}{sep}{format_number(high, decimals)}"


def format_percent_ci(proportion: float, low: float, high: float, decimals: int = 1) -> str:
    """A proportion in percent with its confidence interval.

    Parameters
    ----------
    proportion : float
        Proportion 0..1.
    low : float
        Lower bound (0..1).
    high : float
        Upper bound (0..1).
    decimals : int, default 1
        Decimals of the percentages.

    Returns
    -------
    str
        E.g. ``"90.2% (81.2–95.2%)"``.
    """
    def pct(v: float) -> str:
        return format_number(100.0 * v, decimals) + "%" if _finite(v) else _NA
    return f"{pct(proportion)} ({pct(low)}{_DASH}{pct(high)})"


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


# =========================================================================== labels
def variable_label(name: str, codebook: Any = None) -> str:
    """Display label of a column (with its unit).

    Parameters
    ----------
    name : str
        Column name (e.g. ``"mf_pdff_mean"``).
    codebook : pandas.DataFrame, optional
        ``codebook.csv`` (columns ``variable, label, unit``...).

    Returns
    -------
    str
        ``"MF PDFF (%)"`` for the standard muscle variables, ``"Age (years)"`` for known
        clinical columns, else the codebook's label and unit, else ``name``.
    """
    m = _MEAN_VARIABLE.match(name)
    if m and m.group(1) in _MUSCLE_ABBR:
        metric, unit = _METRIC_LABEL[m.group(2)]
        return f"{_MUSCLE_ABBR[m.group(1)]} {metric}" + (f" ({unit})" if unit else "")
    if name in _CLINICAL_LABEL:
        return _CLINICAL_LABEL[name]
    row = _codebook_row(codebook, name)
    if row is not None:
        label = _text(row.get("label")) or name
        unit = _text(row.get("unit"))
        if unit and unit not in label:
            label = f"{label} ({unit})"
        return label
    return name


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return str(value).strip()


def _codebook_row(codebook: Any, name: str) -> Optional[Dict[str, Any]]:
    if codebook is None or "variable" not in getattr(codebook, "columns", ()):
        return None
    hit = codebook[codebook["variable"].astype(str) == name]
    if not len(hit):
        return None
    return hit.iloc[0].to_dict()


def resolve_variables(data: Any, spec: Any = "auto", codebook: Any = None) -> List[str]:
    """The muscle variables to analyse.

    Parameters
    ----------
    data : pandas.DataFrame
        The subject table.
    spec : "auto" or sequence of str, default "auto"
        ``"auto"``: the six ``{mf,es,ps}_{csa,pdff}_mean`` present (CSA first, then PDFF;
        MF, ES, PS); when none is present, the codebook's muscle variables of level
        ``mean`` without a side, else every column named ``<muscle>_<metric>_mean``.
        A list is returned as given (missing columns are reported by the analyses).

    codebook : pandas.DataFrame, optional
        ``codebook.csv``.

    Returns
    -------
    list of str
        Column names.
    """
    if not isinstance(spec, str):
        return list(spec)
    columns = [str(c) for c in data.columns]
    six = [f"{m}_{k}_mean" for k in _STANDARD_METRICS for m in _STANDARD_MUSCLES]
    found = [c for c in six if c in columns]
    if found:
        return found
    names = list(_codebook_muscle_means(codebook, columns))
    if names:
        return names
    return sorted((c for c in columns if _MEAN_VARIABLE.match(c)), key=_metric_order)


def _codebook_muscle_means(codebook: Any, columns: Sequence[Any]) -> Dict[str, str]:
    """The codebook's muscle variables of level ``mean`` without a side that ``columns`` holds.

    Returns ``{variable: metric}`` in the codebook's order (metric ``""`` when the codebook
    has no ``metric`` column); empty without a codebook.
    """
    from ..validation import texts_or_empty

    if codebook is None or not {"variable", "kind"} <= set(codebook.columns):
        return {}
    cb = codebook
    muscle = cb["kind"].astype(str).str.lower() == "muscle"
    level = cb["level"].astype(str) == "mean" if "level" in cb.columns else muscle
    side = cb["side"].isna() | (cb["side"].astype(str).str.strip() == "") if "side" in cb.columns else muscle
    picked = cb.loc[muscle & level & side]
    metrics = texts_or_empty(picked["metric"]) if "metric" in cb.columns else [""] * len(picked)
    present = {str(c) for c in columns}
    return {str(v): m for v, m in zip(picked["variable"], metrics) if str(v) in present}


def _unanalysed_measures(codebook: Any, columns: Sequence[Any], analysed: Sequence[str]) -> List[str]:
    """The fat and map measures that ``"auto"`` left out, when it analyses areas only.

    When every analysed variable is a CSA, the codebook's muscle means (level ``mean``, no
    side: :func:`_codebook_muscle_means`) of the maps' values (PDFF, Dixon FF, CT HU, named
    maps such as FA) and of the fat area percentage, in the codebook's order; else none (e.g.
    a PDFF study, whose PDFF means ``"auto"`` analyses).
    """
    from ..cohort.variables import VALUE_METRICS

    means = _codebook_muscle_means(codebook, columns)
    if any(means.get(v, "") != "csa" for v in analysed):
        return []
    measures = set(VALUE_METRICS) | {"fatpct"}
    return [v for v, metric in means.items() if metric in measures and v not in analysed]


def _metric_order(name: str) -> Tuple[int, int, str]:
    m = _MEAN_VARIABLE.match(name)
    metrics = ("csa", "pdff", "ff", "fatpct", "fatcsa", "leancsa", "hu")
    if not m:
        return (99, 99, name)
    muscle = m.group(1)
    rank = _STANDARD_MUSCLES.index(muscle) if muscle in _STANDARD_MUSCLES else 50
    return (metrics.index(m.group(2)), rank, name)


# =========================================================================== groups
def add_groups(data: Any, groups: Any) -> Tuple[Any, List[Any]]:
    """Add the group column that ``[groups]`` defines.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject.
    groups : GroupsConfig
        The ``[groups]`` section.

    Returns
    -------
    data : pandas.DataFrame
        A copy with the ordered categorical column ``groups.name``.
    order : list
        The groups in reporting order (all categories, also those without subjects).

    Raises
    ------
    InputError
        The source column is missing.
    StatsError
        The source column cannot be classified (non-numeric values...).
    """
    import numpy as np
    import pandas as pd

    from .. import stats

    if groups.column not in data.columns:
        raise InputError(f"groups: the column {groups.column!r} is not in the subject table "
                         f"(columns: {', '.join(map(str, data.columns))}); fix [groups] column")
    src = data[groups.column]
    cut = list(groups.cutoff)
    if groups.source == "vbmd_iscd":
        kw = {"osteoporosis_below": cut[0], "normal_above": cut[1]} if cut else {}
        cat = stats.vbmd_category(src, **kw)
    elif groups.source == "tscore_who":
        kw = {"osteoporosis_at_or_below": cut[0], "normal_at_or_above": cut[1]} if cut else {}
        cat = stats.tscore_category(src, **kw)
    elif groups.source == "lovett":
        cat = stats.lovett_group(src, **({"good_from": int(cut[0])} if cut else {}))
    elif groups.source == "cutoff":
        x = pd.to_numeric(src, errors="coerce")
        bad = src.notna() & x.isna()
        if bad.any():
            raise StatsError(f"groups: column {groups.column!r} has non-numeric values such as "
                             f"{list(src[bad].astype(str).unique()[:3])}; cannot cut it at {cut}")
        codes = np.searchsorted(np.asarray(cut, dtype=float), x.to_numpy(dtype=float), side="right")
        codes = np.where(x.isna().to_numpy(), -1, codes)
        cat = pd.Series(pd.Categorical.from_codes(codes, categories=list(groups.labels), ordered=True),
                        index=data.index)
    else:  # "column"
        values = src.astype(object).where(src.notna(), None)
        present = [v for v in pd.unique(values.dropna())]
        cats = list(groups.labels) or _sorted_labels(present)
        lookup = {str(c): c for c in cats}
        mapped = values.map(lambda v: lookup.get(str(v), v) if v is not None else None)
        unknown = sorted({str(v) for v in mapped.dropna() if v not in cats})
        if unknown and groups.labels:
            raise StatsError(f"groups: column {groups.column!r} has values {unknown[:5]} that are not "
                             f"among groups.labels {list(groups.labels)}")
        cat = pd.Series(pd.Categorical(mapped, categories=cats, ordered=True), index=data.index)
    if groups.labels and groups.source != "cutoff" and groups.source != "column":
        cat = cat.cat.rename_categories(list(groups.labels))
    order = list(groups.order) if groups.order else list(cat.cat.categories)
    if sorted(map(str, order)) != sorted(map(str, cat.cat.categories)):
        raise InputError(f"groups.order {order} must list the groups {list(cat.cat.categories)}; fix [groups] "
                         "order (or labels)")
    lookup = {str(c): c for c in cat.cat.categories}
    order = [lookup[str(o)] for o in order]
    cat = cat.cat.reorder_categories(order, ordered=True)
    out = data.copy()
    out[groups.name] = cat.to_numpy() if not isinstance(cat, pd.Series) else cat.values
    return out, order


def _sorted_labels(values: Sequence[Any]) -> List[Any]:
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


# =========================================================================== results
@dataclass
class StudyResults:
    """Everything a study report shows.

    Parameters
    ----------
    results : pandas.DataFrame
        One row per number: analysis, dv, group_or_term, statistic, value, n.
    tables : dict of str to pandas.DataFrame
        Paper-layout tables of formatted text, keyed as in :data:`TABLE_ORDER`.
    notes : list of str
        Analyses not run (and why) and degenerate results.
    titles : dict of str to str
        Caption of each table.
    footnotes : dict of str to str
        Footnote of each table (tests used, stars).
    methods : str
        What was computed, for the report's methods paragraph.
    data : pandas.DataFrame or None
        The analysed one-row-per-subject table with the group column.
    variables : list of str
        The analysed muscle variables.
    labels : dict of str to str
        Display label of each analysed column.
    group_column : str or None
        Name of the group column in ``data``.
    group_order : list
        Groups in reporting order.
    figure_data : dict of str to pandas.DataFrame
        ``"group_means"`` (variable, group, mean, sd, n) and ``"posthoc"`` (variable,
        group_a, group_b, p: the post hoc pairs, or the t-test of two groups): the same
        numbers as the tables, for the figures.
    raw : dict
        The stats result objects (``"roc"``: {label: ROCResult}, ``"correlation"``:
        {column: CorrelationResult}, ``"regression"``, ``"logistic"``...).
    """

    results: Any
    tables: Dict[str, Any]
    notes: List[str]
    titles: Dict[str, str] = field(default_factory=dict)
    footnotes: Dict[str, str] = field(default_factory=dict)
    methods: str = ""
    data: Any = None
    variables: List[str] = field(default_factory=list)
    labels: Dict[str, str] = field(default_factory=dict)
    group_column: Optional[str] = None
    group_order: List[Any] = field(default_factory=list)
    figure_data: Dict[str, Any] = field(default_factory=dict)
    raw: Dict[str, Any] = field(default_factory=dict)

    def value(self, analysis: str, dv: str, group_or_term: str, statistic: str) -> float:
        """One number of ``results``.

        Parameters
        ----------
        analysis : str
            E.g. ``"anova"``.
        dv : str
            E.g. ``"mf_pdff_mean"``.
        group_or_term : str
            E.g. ``"between"``.
        statistic : str
            E.g. ``"F"``.

        Returns
        -------
        float
            The value.

        Raises
        ------
        KeyError
            No such row (or several).
        """
        r = self.results
        hit = r[(r["analysis"] == analysis) & (r["dv"] == dv) & (r["group_or_term"] == group_or_term)
                & (r["statistic"] == statistic)]
        if len(hit) != 1:
            raise KeyError(f"{len(hit)} result rows for {(analysis, dv, group_or_term, statistic)}")
        return float(hit["value"].iloc[0])


class _Rows:
    """Collects the tidy result rows."""

    def __init__(self) -> None:
        self.rows: List[Tuple[str, str, str, str, float, Optional[int]]] = []

    def add(self, analysis: str, dv: Any, term: Any, statistic: str, value: Any, n: Any = None) -> None:
        v = float("nan") if value is None else float(value)
        self.rows.append((analysis, str(dv), str(term), statistic, v, None if n is None else int(n)))

    def frame(self) -> Any:
        import pandas as pd

        df = pd.DataFrame(self.rows, columns=RESULT_COLUMNS)
        df["value"] = df["value"].astype("float64")
        df["n"] = pd.array([None if v is None or (isinstance(v, float) and math.isnan(v)) else int(v)
                            for v in df["n"]], dtype="Int64")
        return df


class _Notes:
    """Notes of the run; each also emitted once as a warning."""

    def __init__(self) -> None:
        self.items: List[str] = []

    def add(self, message: str, warn: bool = True) -> None:
        if message not in self.items:
            self.items.append(message)
            if warn:
                warnings.warn(message, ParaspinalFatWarning, stacklevel=3)

    def extend(self, messages: Iterable[str]) -> None:
        for m in messages or ():
            self.add(str(m), warn=False)


# =========================================================================== main
def run_analyses(subjects_one: Any, config: AnalysisConfig, *, readings: Any = None,
                 codebook: Any = None) -> StudyResults:
    """Run the configured analyses on one row per subject.

    Parameters
    ----------
    subjects_one : pandas.DataFrame
        One row per subject (a repeated reading must never be a row of its own: reduce
        ``subjects.csv`` with ``cohort.subject_tables.one_per_subject`` first).
    config : AnalysisConfig
        What to compute (:func:`~ParaspinalFatLib.report.analysis_config.load_config`).
    readings : pandas.DataFrame, optional
        Every reading (``subjects.csv`` as written, with ``rater``/``session`` key
        columns): the input of the reproducibility ICCs and of kappa on ``grade``.
    codebook : pandas.DataFrame, optional
        ``codebook.csv``: labels, units, and the muscle variables for ``"auto"``.

    Returns
    -------
    StudyResults
        Tidy results, formatted tables, notes, and what the figures need.

    Raises
    ------
    InputError
        ``subjects_one`` is not a table, or holds a subject twice.
    """
    import pandas as pd

    if not isinstance(subjects_one, pd.DataFrame):
        raise InputError("run_analyses: subjects_one must be a pandas DataFrame (one row per subject)")
    if "subject" in subjects_one.columns:
        dup = subjects_one["subject"][subjects_one["subject"].duplicated()]
        if len(dup):
            raise InputError(
                f"run_analyses: subject {dup.iloc[0]!r} has {int((subjects_one['subject'] == dup.iloc[0]).sum())} "
                "rows; a repeated reading must not count as another subject: reduce the table with "
                "one_per_subject(subjects, repeated='first'|'mean') first")
    run = _Run(subjects_one, config, readings, codebook)
    run.all()
    return run.finish()


class _Run:
    """State of one :func:`run_analyses` call."""

    def __init__(self, data: Any, config: AnalysisConfig, readings: Any, codebook: Any) -> None:
        self.config = config
        self.codebook = codebook
        self.readings = readings
        self.rows = _Rows()
        self.notes = _Notes()
        self.tables: Dict[str, Any] = {}
        self.titles: Dict[str, str] = {}
        self.footnotes: Dict[str, str] = {}
        self.methods: List[str] = []
        self.raw: Dict[str, Any] = {}
        self.figure_data: Dict[str, Any] = {}
        self.conf = config.confidence
        self.data = data.reset_index(drop=True)
        self.variables = self._present(resolve_variables(data, config.variables, codebook), "variables")
        if isinstance(config.variables, str) and self.variables:  # "auto" on areas only: say what it left out
            left_out = _unanalysed_measures(codebook, self.data.columns, self.variables)
            if left_out:
                shown = ", ".join(left_out[:6]) + (f" and {len(left_out) - 6} more" if len(left_out) > 6 else "")
                example = "[" + ", ".join(f'"{v}"' for v in left_out[:2]) + "]"
                self.notes.add(
                    f"variables = \"auto\" analysed cross-sectional areas only ({', '.join(self.variables)}); the "
                    f"fat and map measures of the muscles ({shown}) were not analysed: to analyse them, list the "
                    f"variables in the config's `variables`, e.g. variables = {example}")
        if not self.variables:
            self.notes.add("no muscle variables to analyse: subjects.csv has none of "
                           "{mf,es,ps}_{csa,pdff}_mean nor other <muscle>_<metric>_mean columns; "
                           "list them in the config's `variables`")
        self.clinical = self._present(list(config.descriptives.clinical), "descriptives.clinical") \
            if config.descriptives.enabled else []
        self.group: Optional[str] = None
        self.order: List[Any] = []
        self.labels: Dict[str, str] = {}

    # ----------------------------------------------------------------- helpers
    def label(self, name: str) -> str:
        if name not in self.labels:
            self.labels[name] = variable_label(name, self.codebook)
        return self.labels[name]

    def _present(self, names: Sequence[str], where: str) -> List[str]:
        out = []
        for name in names:
            if name in self.data.columns:
                if name not in out:
                    out.append(name)
            else:
                self.notes.add(f"{where}: column {name!r} is not in the subject table; left out")
        return out

    def expand(self, names: Sequence[str], where: str, exclude: Sequence[str] = ()) -> List[str]:
        out: List[str] = []
        for name in names:
            if name == VARIABLES_TOKEN:
                items = self.variables
            elif name == CLINICAL_TOKEN:
                items = self.clinical
            else:
                items = self._present([name], where)
            out += [i for i in items if i not in out and i not in exclude]
        return out

    def attempt(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Call a stats function; a StatsError becomes a note (the analysis is skipped)."""
        try:
            return fn(*args, **kwargs)
        except StatsError as exc:
            self.notes.add(f"{what}: not computed ({exc})")
            return None

    def decimals(self, var: str) -> int:
        """Configured decimals, more when the SD is below 0.1 (keeps 2 significant digits)."""
        import numpy as np
        import pandas as pd

        base = self.config.descriptives.decimals
        x = pd.to_numeric(self.data[var], errors="coerce").to_numpy(dtype=float)
        x = x[~np.isnan(x)]
        if x.size < 2:
            return base
        sd = float(np.std(x, ddof=1))
        if 0.0 < sd < 0.1:
            return max(base, int(math.ceil(-math.log10(sd))) + 1)
        return base

    def n_of(self, group: Any) -> int:
        return int((self.data[self.group] == group).sum())

    # ----------------------------------------------------------------- run
    def all(self) -> None:
        cfg = self.config
        self.methods.append(self._one_value_text())
        if cfg.groups.enabled:
            self.make_groups()
        if cfg.reproducibility.enabled:
            self.reproducibility()
        if self.group is not None and (cfg.descriptives.enabled or cfg.anova.enabled):
            self.group_table()
        if cfg.by_sex.enabled:
            self.by_sex()
        if cfg.correlations.enabled:
            self.correlations()
        if cfg.regression.enabled:
            self.regression()
        if cfg.logistic.enabled:
            self.logistic()
        if cfg.roc.enabled:
            self.roc()
        if cfg.kappa.enabled:
            self.kappa()
        self.methods.append("All tests are two-sided; * p < 0.05, ** p < 0.01; confidence intervals "
                            f"at {100 * self.conf:g} %.")

    def finish(self) -> StudyResults:
        tables = {k: self.tables[k] for k in TABLE_ORDER if k in self.tables}
        for v in self.variables + self.clinical:
            self.label(v)
        return StudyResults(
            results=self.rows.frame(), tables=tables, notes=list(self.notes.items),
            titles={k: self.titles[k] for k in tables}, footnotes={k: self.footnotes.get(k, "") for k in tables},
            methods=" ".join(m for m in self.methods if m), data=self.data, variables=list(self.variables),
            labels=dict(self.labels), group_column=self.group, group_order=list(self.order),
            figure_data=self.figure_data, raw=self.raw,
        )

    def _one_value_text(self) -> str:
        rep = self.config.reproducibility.repeated
        rule = ("the first reading (lowest session, then lowest rater)" if rep == "first"
                else "the mean of the readings")
        return (f"Each subject contributes one row to every analysis: for subjects read more than "
                f"once, {rule}; repeated readings enter only the reproducibility analysis.")

    # ----------------------------------------------------------------- groups
    def make_groups(self) -> None:
        g = self.config.groups
        try:
            self.data, order = add_groups(self.data, g)
        except (InputError, StatsError) as exc:
            self.notes.add(f"groups not made, group analyses skipped: {exc}")
            return
        present = set(self.data[g.name].dropna())
        empty = [o for o in order if o not in present]
        if empty:
            self.notes.add(f"groups {empty} have no subjects")
        self.order = [o for o in order if o in present]
        self.group = g.name
        n_missing = int(self.data[g.name].isna().sum())
        if n_missing:
            self.notes.add(f"{n_missing} subject(s) without a {g.title} (missing {g.column!r}) are left "
                           "out of the group comparisons", warn=False)
        how = {
            "vbmd_iscd": "by the ISCD/ACR cut-offs of QCT vBMD ({}normal > {}, osteopenia {}{}{}, "
                         "osteoporosis < {} mg/cm³)",
            "tscore_who": "by the WHO T-score criteria (normal ≥ {1}, osteoporosis ≤ {0})",
            "lovett": "from the Lovett grade (poor < {0} ≤ good)",
            "cutoff": "by cutting {col} at {cuts}",
            "column": "as given in {col}",
        }[g.source]
        cut = list(g.cutoff)
        if g.source == "vbmd_iscd":
            lo, hi = (cut or [80.0, 120.0])
            how = how.format("", f"{hi:g}", f"{lo:g}", _DASH, f"{hi:g}", f"{lo:g}")
        elif g.source == "tscore_who":
            lo, hi = (cut or [-2.5, -1.0])
            how = how.format(f"{lo:g}".replace("-", MINUS), f"{hi:g}".replace("-", MINUS))
        elif g.source == "lovett":
            how = how.format(f"{cut[0]:g}" if cut else "4")
        else:
            how = how.format(col=repr(g.column), cuts=", ".join(f"{c:g}" for c in cut))
        self.methods.append(f"Groups ({g.title}: {', '.join(map(str, self.order))}) were made from "
                            f"{g.column!r} {how}.")

    # ----------------------------------------------------------------- Table 2
    def group_table(self) -> None:
        import pandas as pd

        from .. import stats

        cfg = self.config
        grp, order = self.group, self.order
        if len(order) < 2:
            self.notes.add(f"group comparison skipped: {len(order)} group(s) with subjects")
            return
        n_all = int(self.data[grp].isin(order).sum())
        overall = "All" if "All" not in map(str, order) else "All subjects"
        header = [f"{g} (N = {self.n_of(g)})" for g in order] + [f"{overall} (N = {n_all})"]
        rows = []
        ph_rows: List[Dict[str, Any]] = []
        fig_ph: List[Dict[str, Any]] = []  # pairs for the figure's stars: post hoc, or the t-test of 2 groups
        means: List[Dict[str, Any]] = []
        two = len(order) == 2
        posthoc = cfg.anova.posthoc if cfg.anova.posthoc != "none" else None
        cat_cols = self._present(list(cfg.descriptives.categorical), "descriptives.categorical") \
            if cfg.descriptives.enabled else []
        cat_tests = set()
        for col in cat_cols:
            if col == grp:
                continue
            d = self.attempt(f"counts of {col!r} by group", stats.describe, self.data, [col], between=grp,
                             categorical=[col], order=order, overall_label=overall)
            if d is None:
                continue
            self.notes.extend(d.notes)
            levels = list(dict.fromkeys(d.categorical["level"]))
            cells = []
            for g in order + [overall]:
                sub = d.categorical[d.categorical["group"] == g]
                counts = []
                for lev in levels:
                    r = sub[sub["level"] == lev].iloc[0]
                    self.rows.add("descriptives", col, f"{g}: {lev}", "count", r["count"], r["n"])
                    self.rows.add("descriptives", col, f"{g}: {lev}", "percent", r["percent"], r["n"])
                    counts.append(str(int(r["count"])))
                cells.append("/".join(counts))
            p_text = ""
            if cfg.anova.enabled:
                chi = self.attempt(f"chi-square of {col!r} by group", stats.chi_square, self.data, col, grp,
                                   col_order=order)
                if chi is not None:
                    self.notes.extend(chi.notes)
                    cat_tests.add(chi.test)
                    self.raw.setdefault("chi_square", {})[col] = chi
                    for stat in ("chi2", "df", "p", "pearson_chi2", "pearson_p", "cramers_v", "min_expected"):
                        self.rows.add("chi_square", col, grp, stat, getattr(chi, stat), chi.n)
                    if chi.fisher_p is not None:
                        self.rows.add("chi_square", col, grp, "fisher_p", chi.fisher_p, chi.n)
                    p_text = format_p(chi.p)
            label = f"{self.label(col)} ({'/'.join(map(str, levels))})"
            rows.append([label] + cells + [p_text])
        numeric = list(dict.fromkeys(c for c in self.clinical + self.variables if c != grp and c not in cat_cols))
        test_name = None
        for var in numeric:
            d = self.attempt(f"mean ± SD of {var!r} by group", stats.describe, self.data, [var], between=grp,
                             order=order, overall_label=overall)
            if d is None:
                rows.append([self.label(var)] + [_NA] * (len(order) + 1) + [""])
                continue
            self.notes.extend(d.notes)
            cells = []
            for g in order + [overall]:
                r = d.numeric[d.numeric["group"] == g].iloc[0]
                for stat in ("mean", "sd", "n"):
                    self.rows.add("descriptives", var, g, stat, r[stat], r["n"])
                cells.append(format_mean_sd(r["mean"], r["sd"], self.decimals(var)) if r["n"] > 0 else _NA)
                if g != overall:
                    means.append({"variable": var, "group": g, "mean": float(r["mean"]), "sd": float(r["sd"]),
                                  "n": int(r["n"])})
            p_text = ""
            if cfg.anova.enabled:
                if two:
                    kind = cfg.anova.two_groups
                    test_name = f"independent-samples {'Student' if kind == 'student' else 'Welch'} t-test"
                    t = self.attempt(f"t-test of {var!r} between {order}", stats.ttest, self.data, var, grp,
                                     order=order, confidence=self.conf)
                    if t is not None:
                        self.notes.extend(t.notes)
                        self._ttest_rows(f"ttest_{kind}", var, t, kind)
                        p_text = format_p(getattr(t, kind).p)
                        self.raw.setdefault("ttest", {})[var] = t
                        fig_ph.append({"variable": var, "group_a": t.groups[0], "group_b": t.groups[1],
                                       "p": float(getattr(t, kind).p)})
                else:
                    test_name = "one-way ANOVA"
                    a = self.attempt(f"ANOVA of {var!r} by group", stats.anova_oneway, self.data, var, grp,
                                     posthoc=posthoc, order=order, confidence=self.conf)
                    if a is not None:
                        self.notes.extend(a.notes)
                        self.raw.setdefault("anova", {})[var] = a
                        for stat, val in (("F", a.F), ("df1", a.df_between), ("df2", a.df_within),
                                          ("p", a.p), ("eta_squared", a.eta_squared),
                                          ("levene_F", a.levene.statistic), ("levene_p", a.levene.p),
                                          ("welch_F", a.welch.F), ("welch_df2", a.welch.df2),
                                          ("welch_p", a.welch.p)):
                            self.rows.add("anova", var, "between", stat, val, a.n)
                        p_text = format_p(a.p)
                        if a.posthoc is not None:
                            stat_name = "q" if a.posthoc_method == "tukey" else "t"
                            n_group = dict(zip(a.descriptives["group"], a.descriptives["n"]))
                            for _, r in a.posthoc.iterrows():
                                term = f"{r['group_a']} vs {r['group_b']}"
                                n_pair = int(n_group[r["group_a"]] + n_group[r["group_b"]])
                                for stat in ("mean_diff", "se", stat_name, "p", "ci_low", "ci_high"):
                                    self.rows.add(f"posthoc_{a.posthoc_method}", var, term, stat, r[stat], n_pair)
                                ph_rows.append({"variable": var, "group_a": r["group_a"],
                                                "group_b": r["group_b"], "p": float(r["p"])})
                                fig_ph.append(ph_rows[-1])
            rows.append([self.label(var)] + cells + [p_text])
        columns = ["Variable"] + header + (["p"] if cfg.anova.enabled else [])
        if not cfg.anova.enabled:
            rows = [r[:-1] for r in rows]
        self.tables["groups"] = pd.DataFrame(rows, columns=columns)
        self.titles["groups"] = (f"Clinical characteristics and muscle variables by {cfg.groups.title} "
                                 "(mean ± SD; counts for categorical variables)")
        foot = []
        if cfg.anova.enabled and test_name:
            foot.append(f"p values of continuous variables from the {test_name}")
        if cat_tests:
            names = {"pearson": "Pearson chi-square test", "yates": "chi-square test with Yates' correction",
                     "fisher": "Fisher's exact test"}
            foot.append("of categorical variables from the " + " / ".join(names[t] for t in sorted(cat_tests)))
        self.footnotes["groups"] = ("; ".join(foot) + ". " if foot else "") + "* p < 0.05, ** p < 0.01."
        self.figure_data["group_means"] = pd.DataFrame(
            means, columns=["variable", "group", "mean", "sd", "n"])
        self.figure_data["posthoc"] = pd.DataFrame(fig_ph, columns=["variable", "group_a", "group_b", "p"])
        if ph_rows:
            pairs = list(dict.fromkeys((r["group_a"], r["group_b"]) for r in ph_rows))
            table = []
            for var in dict.fromkeys(r["variable"] for r in ph_rows):
                cells = []
                for a_, b_ in pairs:
                    hit = [r["p"] for r in ph_rows if r["variable"] == var and r["group_a"] == a_
                           and r["group_b"] == b_]
                    cells.append(format_p(hit[0]) if hit else _NA)
                table.append([self.label(var)] + cells)
            self.tables["posthoc"] = pd.DataFrame(table, columns=["Variable"] + [f"{a_} vs {b_}" for a_, b_ in pairs])
            method = {"lsd": "Fisher's LSD (unadjusted)", "bonferroni": "Bonferroni-adjusted LSD",
                      "tukey": "Tukey HSD"}[posthoc]
            self.titles["posthoc"] = f"Post hoc pairwise comparisons between the {cfg.groups.title}s ({method}): p values"
            self.footnotes["posthoc"] = ("t tests on the pooled within-group mean square of the ANOVA "
                                         "(df = N − k). * p < 0.05, ** p < 0.01.")
        if cfg.anova.enabled and test_name:
            text = f"Group differences of continuous variables were tested by the {test_name}"
            if not two and posthoc:
                text += {"lsd": " with Fisher's least significant difference (LSD) post hoc tests",
                         "bonferroni": " with Bonferroni-adjusted post hoc tests",
                         "tukey": " with Tukey HSD post hoc tests"}[posthoc]
            text += "; categorical variables by the chi-square test (Fisher's exact test for a 2 × 2 table " \
                    "with an expected count below 5)." if cat_cols else "."
            self.methods.append("Continuous variables are given as mean ± SD (SD with n − 1). " + text)

    def _ttest_rows(self, analysis: str, var: str, t: Any, kind: str) -> None:
        line = getattr(t, kind)
        term = f"{t.groups[0]} vs {t.groups[1]}"
        for stat, val in (("t", line.t), ("df", line.df), ("p", line.p), ("mean_diff", t.mean_diff),
                          ("ci_low", line.ci_low), ("ci_high", line.ci_high),
                          ("levene_F", t.levene.statistic), ("levene_p", t.levene.p),
                          ("cohen_d", t.cohen_d)):
            self.rows.add(analysis, var, term, stat, val, t.n)

    # ----------------------------------------------------------------- Table 3
    def by_sex(self) -> None:
        import pandas as pd

        from .. import stats

        cfg = self.config.by_sex
        col = cfg.column
        if col not in self.data.columns:
            self.notes.add(f"by_sex: column {col!r} is not in the subject table; table skipped")
            return
        values = [v for v in pd.unique(self.data[col].dropna())]
        try:
            order = _sex_order(values, list(cfg.order), col)
        except StatsError as exc:
            self.notes.add(f"by_sex: {exc}; table skipped")
            return
        kind = cfg.test
        rows = []
        variables = [v for v in self.clinical + self.variables if v != col]
        variables = list(dict.fromkeys(variables))
        ns = [int((self.data[col] == o).sum()) for o in order]
        for var in variables:
            t = self.attempt(f"t-test of {var!r} by {col!r}", stats.ttest, self.data, var, col, order=order,
                             confidence=self.conf)
            if t is None:
                rows.append([self.label(var), _NA, _NA, ""])
                continue
            self.notes.extend(t.notes)
            self.raw.setdefault("ttest_by_sex", {})[var] = t
            cells = []
            for _, r in t.descriptives.iterrows():
                for stat in ("mean", "sd", "n"):
                    self.rows.add("by_sex_descriptives", var, r["group"], stat, r[stat], r["n"])
                cells.append(format_mean_sd(r["mean"], r["sd"], self.decimals(var)))
            self._ttest_rows(f"by_sex_ttest_{kind}", var, t, kind)
            rows.append([self.label(var)] + cells + [format_p(getattr(t, kind).p)])
        self.tables["by_sex"] = pd.DataFrame(
            rows, columns=["Variable"] + [f"{o} (N = {n})" for o, n in zip(order, ns)] + ["p"])
        name = "Student" if kind == "student" else "Welch"
        self.titles["by_sex"] = "Clinical characteristics and muscle variables by sex (mean ± SD)"
        self.footnotes["by_sex"] = (f"p values from the independent-samples {name} t-test"
                                    f"{' (pooled variance)' if kind == 'student' else ' (unequal variances)'}. "
                                    "* p < 0.05, ** p < 0.01.")
        self.methods.append(f"Differences between the sexes were tested by the independent-samples {name} "
                            f"t-test{' (pooled variance)' if kind == 'student' else ''}.")

    # ----------------------------------------------------------------- Table 4
    def correlations(self) -> None:
        import pandas as pd

        from .. import stats

        cfg = self.config.correlations
        if cfg.target not in self.data.columns:
            self.notes.add(f"correlations: target {cfg.target!r} is not in the subject table; table skipped")
            return
        columns = self.expand(cfg.columns, "correlations.columns", exclude=[cfg.target])
        rows = []
        for col in columns:
            c = self.attempt(f"correlation of {col!r} with {cfg.target!r}", stats.correlation, self.data, col,
                             cfg.target, method=cfg.method, confidence=self.conf)
            if c is None:
                rows.append([self.label(col), _NA, _NA, _NA, ""])
                continue
            self.notes.extend(c.notes)
            self.raw.setdefault("correlation", {})[col] = c
            for stat in ("r", "p", "ci_low", "ci_high", "t", "df"):
                self.rows.add("correlation", col, cfg.target, stat, getattr(c, stat), c.n)
            rows.append([self.label(col), format_number(c.r) + stars(c.p),
                         format_interval(c.ci_low, c.ci_high), format_p(c.p), str(c.n)])
        sym = "r" if cfg.method == "pearson" else "rho"
        self.tables["correlations"] = pd.DataFrame(
            rows, columns=["Variable", sym, f"{100 * self.conf:g} % CI", "p", "n"])
        name = "Pearson" if cfg.method == "pearson" else "Spearman"
        self.titles["correlations"] = f"{name} correlation of each variable with {self.label(cfg.target)}"
        self.footnotes["correlations"] = ("Pairwise deletion; CI by Fisher's z transformation. "
                                          "* p < 0.05, ** p < 0.01.")
        self.methods.append(f"Correlations with {cfg.target!r} are {name} coefficients (two-sided t test, "
                            "Fisher-z confidence intervals, pairwise deletion).")

    # ----------------------------------------------------------------- Table 5
    def _categorical_spec(self, spec: Mapping[str, str], predictors: Sequence[str]) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for name, ref in spec.items():
            if name not in predictors:
                continue
            out[name] = _coerce_level(self.data[name], ref) if ref != "" else None
        return out

    def regression(self) -> None:
        import pandas as pd

        from .. import stats

        cfg = self.config.regression
        if cfg.dv not in self.data.columns:
            self.notes.add(f"regression: dependent variable {cfg.dv!r} is not in the subject table; skipped")
            return
        predictors = self.expand(cfg.predictors, "regression.predictors", exclude=[cfg.dv])
        if not predictors:
            self.notes.add("regression: no predictor present; skipped")
            return
        cats = self._categorical_spec(cfg.categorical, predictors)
        r = self.attempt(f"regression of {cfg.dv!r}", stats.linear_regression, self.data, cfg.dv, predictors,
                         categorical=cats or None, confidence=self.conf)
        if r is None:
            return
        self.notes.extend(r.notes)
        self.raw["regression"] = r
        rows = []
        for _, c in r.coefficients.iterrows():
            for stat in ("B", "se", "beta", "t", "p", "ci_low", "ci_high", "vif"):
                self.rows.add("regression", cfg.dv, c["term"], stat, c[stat], r.n)
            rows.append([self._term_label(c["term"], r.coding), format_number(c["B"]), format_number(c["se"]),
                         "" if math.isnan(c["beta"]) else format_number(c["beta"]), format_number(c["t"]),
                         format_p(c["p"])])
        for stat in ("r", "r_squared", "adj_r_squared", "F", "df_model", "df_resid", "p", "residual_se"):
            self.rows.add("regression_model", cfg.dv, "model", stat, getattr(r, stat), r.n)
        self.tables["regression"] = pd.DataFrame(rows, columns=["Term", "B", "SE", "β", "t", "p"])
        self.titles["regression"] = f"Multiple linear regression of {self.label(cfg.dv)}"
        ref = "; ".join(f"{row['variable']}: reference {row['level']}" for _, row in r.coding.iterrows()
                        if row["reference"])
        self.footnotes["regression"] = (
            f"B unstandardised coefficient, SE its standard error, β standardised coefficient; n = {r.n}"
            f"{f' ({r.n_missing} subject(s) with a missing value left out)' if r.n_missing else ''}; "
            f"R = {format_number(r.r)}, R² = {format_number(r.r_squared)}, adjusted R² = "
            f"{format_number(r.adj_r_squared)}, F({r.df_model}, {r.df_resid}) = {format_number(r.F, 2)}, "
            f"p {format_p(r.p) if format_p(r.p).startswith('<') else '= ' + format_p(r.p)}."
            f"{' Dummy coding: ' + ref + '.' if ref else ''} * p < 0.05, ** p < 0.01.")
        self.tables["regression_model"] = pd.DataFrame([
            ["n", str(r.n)], ["R", format_number(r.r)], ["R²", format_number(r.r_squared)],
            ["Adjusted R²", format_number(r.adj_r_squared)],
            [f"F ({r.df_model}, {r.df_resid})", format_number(r.F, 2)], ["p", format_p(r.p)],
        ], columns=["Statistic", "Value"])
        self.titles["regression_model"] = f"Multiple linear regression of {self.label(cfg.dv)}: model summary"
        self.footnotes["regression_model"] = "R, R² and adjusted R² reported separately."
        self.methods.append(
            f"{cfg.dv!r} was regressed on {', '.join(repr(p) for p in predictors)} by ordinary least squares "
            "(all entered together, listwise deletion); B, SE, standardised β, t and p are given with R, R² "
            "and adjusted R².")

    def _term_label(self, term: str, coding: Any) -> str:
        if term in ("const", "Constant"):
            return "(Constant)"
        m = re.match(r"^(.*)\[(.*)\]$", term)
        if m:
            var, level = m.group(1), m.group(2)
            ref = [str(r["level"]) for _, r in coding.iterrows() if r["variable"] == var and r["reference"]] \
                if coding is not None and len(coding) else []
            return f"{self.label(var)} ({level}{' vs ' + ref[0] if ref else ''})"
        return self.label(term)

    # ----------------------------------------------------------------- Table 1
    def _key_values(self, column: str) -> List[Any]:
        vals = [v for v in self.readings[column].dropna().unique()]
        return _sorted_labels(vals)

    def reproducibility(self) -> None:
        import pandas as pd

        from .. import stats

        cfg = self.config.reproducibility
        rd = self.readings
        keys = [k for k in ("rater", "session") if rd is not None and k in rd.columns]
        if rd is None or "subject" not in rd.columns or not keys:
            self.notes.add("reproducibility: the subject table has no repeated readings (rater/session "
                           "columns); no ICC computed", warn=False)
            return
        comparisons: List[Tuple[str, str, Any, Any]] = []  # (label, compared key, fixed key, fixed value)
        if "session" in keys and len(self._key_values("session")) > 1:
            raters = self._key_values("rater") if "rater" in keys else [None]
            for r in raters:
                label = "between sessions" + (f" (rater {r})" if r is not None and len(raters) > 1 else "")
                comparisons.append((label, "session", "rater" if r is not None else None, r))
        if "rater" in keys and len(self._key_values("rater")) > 1:
            sessions = self._key_values("session") if "session" in keys else [None]
            for s in sessions:
                label = "between raters" + (f" (session {s})" if s is not None and len(sessions) > 1 else "")
                comparisons.append((label, "rater", "session" if s is not None else None, s))
        if not comparisons:
            self.notes.add("reproducibility: every subject was read once; no ICC computed", warn=False)
            return
        variables = [v for v in self.expand(cfg.columns, "reproducibility.columns") if v in rd.columns]
        rows = []
        for label, key, fixed, value in comparisons:
            sub = rd if fixed is None else rd[rd[fixed] == value]
            for var in variables:
                try:
                    wide = sub.pivot(index="subject", columns=key, values=var)
                except ValueError:
                    self.notes.add(f"ICC of {var!r} {label}: a subject has two rows for one {key}; skipped")
                    continue
                wide = wide.apply(pd.to_numeric, errors="coerce")
                complete = int(wide.notna().all(axis=1).sum())
                if complete < 2:
                    continue
                res = self.attempt(f"ICC of {var!r} {label}", stats.icc, wide, form=cfg.form,
                                   confidence=self.conf)
                if res is None:
                    continue
                self.raw.setdefault("icc", {})[(var, label)] = res
                for stat in ("icc", "ci_low", "ci_high", "F", "df1", "df2", "p", "k"):
                    self.rows.add("icc", var, label, stat, getattr(res, stat), res.n)
                rows.append([self.label(var), label, str(res.n), format_ci(res.icc, res.ci_low, res.ci_high),
                             format_p(res.p)])
        if not rows:
            self.notes.add("reproducibility: fewer than 2 subjects with repeated readings; no ICC computed",
                           warn=False)
            return
        form = cfg.form
        names = {"ICC1": "ICC(1,1), one-way random effects, single measures",
                 "ICC2": "ICC(A,1), two-way random effects, absolute agreement, single measures",
                 "ICC3": "ICC(C,1), two-way mixed effects, consistency, single measures",
                 "ICC1k": "ICC(1,k), one-way random effects, average measures",
                 "ICC2k": "ICC(A,k), two-way random effects, absolute agreement, average measures",
                 "ICC3k": "ICC(C,k), two-way mixed effects, consistency, average measures"}
        self.tables["reproducibility"] = pd.DataFrame(
            rows, columns=["Variable", "Readings compared", "n", f"ICC ({100 * self.conf:g} % CI)", "p"])
        self.titles["reproducibility"] = "Reproducibility of the muscle variables between repeated readings"
        self.footnotes["reproducibility"] = (f"{names[form]} (McGraw & Wong 1996); p of the F test of ICC = 0; "
                                             "n = subjects with every reading. * p < 0.05, ** p < 0.01.")
        self.methods.append(f"Reproducibility between repeated readings (rater/session) is the {names[form]} "
                            "with its confidence interval (McGraw & Wong 1996).")

    # ----------------------------------------------------------------- seed 002
    def _binary(self, section: str, dv: str, positive: Any) -> Optional[Any]:
        if dv not in self.data.columns:
            self.notes.add(f"{section}: outcome {dv!r} is not in the subject table; skipped")
            return None
        return _coerce_level(self.data[dv], positive)

    def logistic(self) -> None:
        import pandas as pd

        from .. import stats

        cfg = self.config.logistic
        positive = self._binary("logistic", cfg.dv, cfg.positive)
        if positive is None:
            return
        predictors = self.expand(cfg.predictors, "logistic.predictors", exclude=[cfg.dv])
        if not predictors:
            self.notes.add("logistic: no predictor present; skipped")
            return
        cats = self._categorical_spec(cfg.categorical, predictors)
        data = _binary_subset(self.data, cfg.dv)
        lr = self.attempt(f"logistic regression of {cfg.dv!r}", stats.logistic_regression, data, cfg.dv,
                          predictors, categorical=cats or None, positive=positive, confidence=self.conf)
        if lr is None:
            return
        self.raw["logistic"] = lr
        rows = []
        for _, c in lr.coefficients.iterrows():
            for stat in ("B", "SE", "Wald", "p", "OR", "OR_ci_low", "OR_ci_high"):
                self.rows.add("logistic", cfg.dv, c["term"], stat, c[stat], lr.n)
            rows.append([self._term_label(c["term"], None), format_number(c["B"]), format_number(c["SE"]),
                         format_number(c["Wald"]), format_p(c["p"]),
                         format_ci(c["OR"], c["OR_ci_low"], c["OR_ci_high"])])
        for stat in ("n_events", "minus2ll", "model_chi2", "model_df", "model_p", "cox_snell_r2",
                     "nagelkerke_r2", "percent_correct"):
            self.rows.add("logistic_model", cfg.dv, "model", stat, getattr(lr, stat), lr.n)
        hl = lr.hosmer_lemeshow or {}
        for stat in ("chi2", "df", "p"):
            if stat in hl:
                self.rows.add("logistic_model", cfg.dv, "hosmer_lemeshow", stat, hl[stat], lr.n)
        self.tables["logistic"] = pd.DataFrame(
            rows, columns=["Term", "B", "SE", "Wald", "p", f"OR ({100 * self.conf:g} % CI)"])
        self.titles["logistic"] = (f"Multivariable logistic regression of {cfg.dv} = {positive} "
                                   f"(events {lr.n_events} of {lr.n})")
        self.footnotes["logistic"] = ("OR = exp(B) with CI exp(B ± z·SE); Wald test on 1 df. "
                                      "* p < 0.05, ** p < 0.01.")
        self.tables["logistic_model"] = pd.DataFrame([
            ["n (events)", f"{lr.n} ({lr.n_events})"], ["−2 log likelihood", format_number(lr.minus2ll, 2)],
            [f"Model χ² ({lr.model_df} df)", format_number(lr.model_chi2, 2)], ["p", format_p(lr.model_p)],
            ["Cox & Snell R²", format_number(lr.cox_snell_r2)], ["Nagelkerke R²", format_number(lr.nagelkerke_r2)],
            ["Hosmer-Lemeshow p", format_p(hl.get("p", float("nan")))],
            ["Correctly classified", format_number(lr.percent_correct, 1) + "%"],
        ], columns=["Statistic", "Value"])
        self.titles["logistic_model"] = "Logistic regression: model summary"
        self.methods.append(f"{cfg.dv} = {positive} was modelled by binary logistic regression on "
                            f"{', '.join(repr(p) for p in predictors)} (maximum likelihood; odds ratios "
                            "exp(B) with Wald confidence intervals).")

    def roc(self) -> None:
        import pandas as pd

        from .. import stats

        cfg = self.config.roc
        positive = self._binary("roc", cfg.dv, cfg.positive)
        if positive is None:
            return
        predictors = self.expand(cfg.predictors, "roc.predictors", exclude=[cfg.dv])
        if not predictors:
            self.notes.add("roc: no predictor present; skipped")
            return
        data = _binary_subset(self.data, cfg.dv)
        curves: Dict[str, Any] = {}
        rows = []
        directions: Dict[str, str] = {}

        def add(name: str, label: str, res: Any) -> None:
            curves[label] = res
            term = f"{cfg.dv}={positive}"
            for stat in ("auc", "se", "ci_low", "ci_high", "youden_threshold", "youden_j", "sensitivity",
                         "specificity"):
                self.rows.add("roc", name, term, stat, getattr(res, stat), res.n)
            self.rows.add("roc", name, term, "sensitivity_ci_low", res.sensitivity_ci[0], res.n)
            self.rows.add("roc", name, term, "sensitivity_ci_high", res.sensitivity_ci[1], res.n)
            self.rows.add("roc", name, term, "specificity_ci_low", res.specificity_ci[0], res.n)
            self.rows.add("roc", name, term, "specificity_ci_high", res.specificity_ci[1], res.n)
            self.rows.add("roc", name, term, "n_pos", res.n_pos, res.n)
            self.rows.add("roc", name, term, "n_neg", res.n_neg, res.n)
            rows.append([label, f"{res.n_pos}/{res.n_neg}", format_ci(res.auc, res.ci_low, res.ci_high),
                         ("higher" if res.direction == "<" else "lower") + " = " + str(positive),
                         format_number(res.youden_threshold) if name != "combined" else
                         format_number(res.youden_threshold) + " (log-odds)",
                         format_percent_ci(res.sensitivity, *res.sensitivity_ci),
                         format_percent_ci(res.specificity, *res.specificity_ci)])

        for pred in predictors:
            res = self.attempt(f"ROC of {pred!r}", stats.roc, data, dv=cfg.dv, score=pred, positive=positive,
                               direction=cfg.direction, confidence=self.conf)
            if res is not None:
                directions[pred] = res.direction
                add(pred, self.label(pred), res)
        combined_col = None
        compare_rows = []
        if cfg.combined and len(predictors) > 1:
            lr = self.attempt(f"logistic score of {predictors} (combined predictor)", stats.logistic_regression,
                              data, cfg.dv, predictors, positive=positive, confidence=self.conf)
            if lr is not None:
                combined_col = "combined_score"
                while combined_col in data.columns:
                    combined_col += "_"
                data = data.assign(**{combined_col: lr.score.reindex(data.index)})
                self.raw["roc_combined_model"] = lr
                res = self.attempt("ROC of the combined predictor", stats.roc, data, dv=cfg.dv, score=combined_col,
                                   positive=positive, direction="<", confidence=self.conf)
                if res is not None:
                    add("combined", "Combined (logistic score)", res)
                    for pred in predictors:
                        if pred not in directions:
                            continue
                        cmp_ = self.attempt(f"DeLong test combined vs {pred!r}", stats.roc_compare, data,
                                            dv=cfg.dv, score1=combined_col, score2=pred, positive=positive,
                                            direction=("<", directions[pred]), confidence=self.conf)
                        if cmp_ is None:
                            continue
                        self.raw.setdefault("roc_compare", {})[pred] = cmp_
                        term = f"combined vs {pred}"
                        for stat in ("auc1", "auc2", "difference", "se", "ci_low", "ci_high", "z", "p"):
                            self.rows.add("roc_compare", "combined", term, stat, getattr(cmp_, stat), cmp_.n)
                        compare_rows.append([f"Combined vs {self.label(pred)}", str(cmp_.n),
                                             format_ci(cmp_.difference, cmp_.ci_low, cmp_.ci_high),
                                             format_number(cmp_.z, 2), format_p(cmp_.p)])
        self.raw["roc"] = curves
        if not rows:
            return
        self.tables["roc"] = pd.DataFrame(rows, columns=[
            "Predictor", "Cases/controls", f"AUC ({100 * self.conf:g} % CI)", "Direction", "Cut-off (Youden)",
            "Sensitivity (CI)", "Specificity (CI)"])
        self.titles["roc"] = f"ROC analysis of each predictor for {cfg.dv} = {positive}"
        self.footnotes["roc"] = ("Empirical AUC with DeLong CI; cut-off maximising Youden's J, sensitivity and "
                                 "specificity with Wilson CIs." + (
                                     " The combined predictor is the linear score of the logistic regression on "
                                     "all predictors, fitted and evaluated on the same subjects (apparent AUC, "
                                     "optimistic)." if combined_col else ""))
        if compare_rows:
            self.tables["roc_compare"] = pd.DataFrame(compare_rows, columns=[
                "Comparison", "n", f"ΔAUC ({100 * self.conf:g} % CI)", "z", "p"])
            self.titles["roc_compare"] = "DeLong test of the combined predictor against each single predictor"
            self.footnotes["roc_compare"] = "Paired AUCs on the subjects with every value. * p < 0.05, ** p < 0.01."
        self.methods.append("ROC curves: empirical AUC with DeLong confidence intervals, Youden cut-off"
                            + ("; the combined predictor (logistic linear score) was compared with each single "
                               "predictor by DeLong's test for paired AUCs." if compare_rows else "."))

    def kappa(self) -> None:
        import pandas as pd

        from .. import stats

        cfg = self.config.kappa
        weights = None if cfg.weights == "none" else cfg.weights
        cats = list(cfg.categories) or None
        rows = []
        if cfg.columns:
            a, b = cfg.columns
            missing = [c for c in (a, b) if c not in self.data.columns]
            if missing:
                self.notes.add(f"kappa: column(s) {missing} not in the subject table; skipped")
                return
            pairs = [(f"{a} vs {b}", self.data, a, b, f"{self.label(a)} vs {self.label(b)}")]
        else:
            rd = self.readings
            if rd is None or "rater" not in rd.columns or cfg.grade not in rd.columns:
                self.notes.add(f"kappa: needs repeated readings with a 'rater' column and the column "
                               f"{cfg.grade!r}; skipped")
                return
            sub = rd
            if "session" in rd.columns:
                first = _sorted_labels(list(rd["session"].dropna().unique()))
                if first:
                    sub = rd[rd["session"] == first[0]]
            try:
                wide = sub.pivot(index="subject", columns="rater", values=cfg.grade)
            except ValueError:
                self.notes.add(f"kappa of {cfg.grade!r}: a subject has two rows for one rater; skipped")
                return
            raters = list(wide.columns)
            pairs = []
            for i in range(len(raters)):
                for j in range(i + 1, len(raters)):
                    pair = wide[[raters[i], raters[j]]]
                    pair.columns = ["rater_a", "rater_b"]
                    pairs.append((cfg.grade, pair, "rater_a", "rater_b",
                                  f"{self.label(cfg.grade)}: rater {raters[i]} vs rater {raters[j]}"))
        for dv, data, a, b, term in pairs:
            k = self.attempt(f"kappa of {dv} ({term})", stats.cohen_kappa, data, a, b, weights=weights,
                             categories=cats, confidence=self.conf)
            if k is None:
                continue
            self.raw.setdefault("kappa", {})[(dv, term)] = k
            for stat in ("kappa", "se", "ci_low", "ci_high", "z", "p", "observed_agreement", "expected_agreement"):
                self.rows.add("kappa", dv, term, stat, getattr(k, stat), k.n)
            rows.append([term, str(k.n), format_ci(k.kappa, k.ci_low, k.ci_high), format_p(k.p),
                         format_number(100 * k.observed_agreement, 1) + "%"])
        if not rows:
            return
        kind = {None: "Cohen's kappa", "linear": "linearly weighted kappa", "quadratic": "quadratically weighted kappa"}
        self.tables["kappa"] = pd.DataFrame(rows, columns=[
            "Ratings compared", "n", f"κ ({100 * self.conf:g} % CI)", "p", "Agreement"])
        self.titles["kappa"] = f"Agreement between raters ({kind[weights]})"
        self.footnotes["kappa"] = "Asymptotic SE for the CI; z test of κ = 0 under independence."
        self.methods.append(f"Agreement between raters is {kind[weights]} with its asymptotic confidence interval.")


def _binary_subset(data: Any, dv: str) -> Any:
    """Rows whose outcome is one of the (present) levels; an unused category is dropped."""
    import pandas as pd

    col = data[dv]
    if isinstance(col.dtype, pd.CategoricalDtype):
        col = col.cat.remove_unused_categories()
        return data.assign(**{dv: col.astype(object).where(col.notna(), None)})
    return data


def _coerce_level(series: Any, level: Any) -> Any:
    """``level`` as the series stores it (a config gives text; the column may hold numbers)."""
    import pandas as pd

    values = [v for v in pd.unique(series.dropna())]
    for v in values:
        if v == level:
            return v
    for v in values:
        if str(v) == str(level):
            return v
        try:
            if float(v) == float(level):
                return v
        except (TypeError, ValueError):
            continue
    return level


def _sex_order(values: List[Any], order: List[str], column: str) -> List[Any]:
    if len(values) != 2 and not order:
        raise StatsError(f"column {column!r} has {len(values)} values {values[:5]}; 2 are needed "
                         "(or give by_sex.order)")
    if order:
        out = []
        for want in order:
            hit = [v for v in values if str(v) == want or (_finite(v) and _finite(want) and float(v) == float(want))]
            if not hit:
                raise StatsError(f"by_sex.order value {want!r} is not in column {column!r} ({values})")
            out.append(hit[0])
        return out
    vals = _sorted_labels(values)
    low = [str(v).strip().lower() for v in vals]
    if low[1] in _MALE and low[0] in _FEMALE and not (low[0] in _MALE):
        vals = [vals[1], vals[0]]
    return vals

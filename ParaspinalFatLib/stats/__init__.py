"""Statistics for cohort tables (numpy/scipy/pandas only).

Every analysis takes a :class:`pandas.DataFrame` first plus column names in one
vocabulary (pingouin style; README, "Statistics"): ``dv`` the dependent variable,
``between`` the grouping column, ``predictors``, ``positive`` the case / event level,
``confidence`` the interval level (0.95); options after the column names are keyword-only.
ROC and kappa also take the values themselves (``roc(dv=y, score=s)``).  Each returns a
result object with named fields and a ``to_frame()`` tidy table.

The names below are imported lazily (PEP 562): ``import ParaspinalFatLib.stats`` imports
no third-party package (it stays cheap inside Slicer), and a missing pandas or scipy is
reported, when a function is first used, as a
:class:`~ParaspinalFatLib.errors.MissingDependencyError` saying how to install it.

Modules: :mod:`.clinical_categories` (vBMD / T-score / Lovett groups), :mod:`.descriptive`,
:mod:`.compare` (t-test, ANOVA, Levene), :mod:`.correlations`, :mod:`.regression`,
:mod:`.agreement` (ICC, kappa), :mod:`.logistic`, :mod:`.roc_analysis`; helpers in
:mod:`.validation`, :mod:`.numerics` and :mod:`.deprecation`.
"""
from __future__ import annotations

from typing import Any, List

from ..dependencies import import_public
from ..errors import StatsError as StatsError, StatsWarning as StatsWarning  # re-exported

# public name -> submodule that defines it
_EXPORTS = {
    "vbmd_category": "clinical_categories",
    "tscore_category": "clinical_categories",
    "lovett_group": "clinical_categories",
    "describe": "descriptive",
    "chi_square": "descriptive",
    "ttest": "compare",
    "anova_oneway": "compare",
    "levene": "compare",
    "correlation": "correlations",
    "correlation_table": "correlations",
    "linear_regression": "regression",
    "icc": "agreement",
    "cohen_kappa": "agreement",
    "logistic_regression": "logistic",
    "roc": "roc_analysis",
    "roc_compare": "roc_analysis",
}

__all__ = sorted(list(_EXPORTS) + ["StatsError", "StatsWarning"])


def __getattr__(name: str) -> Any:
    """Import the submodule defining ``name`` on first use (PEP 562).

    Parameters
    ----------
    name : str
        A public name of the package.

    Returns
    -------
    object
        The function.

    Raises
    ------
    AttributeError
        ``name`` is not a public name of the package.
    MissingDependencyError
        A third-party package the submodule needs is not installed.
    """
    try:
        module_name = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(import_public(f"{__name__}.{module_name}"), name)
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    """The public names (also the not yet imported ones) and the module attributes.

    Returns
    -------
    list of str
        Sorted names.
    """
    return sorted(set(globals()) | set(__all__))

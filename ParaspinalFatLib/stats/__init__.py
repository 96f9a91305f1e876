"""Statistics for cohort tables (numpy/scipy/pandas only).

Every public function takes a :class:`pandas.DataFrame` plus column names
(pingouin style: ``dv=``, ``between=``/``group=``, ``predictors=[...]``) or
plain arrays where that is natural (``roc(y_true, score)``), and returns a
result object with named fields and a ``to_frame()`` tidy table.

The names below are imported lazily (PEP 562) so that ``import
ParaspinalFatLib.stats`` stays cheap inside Slicer.
"""
from __future__ import annotations

import importlib

# public name -> submodule that defines it
_EXPORTS = {
    # groups.py
    "vbmd_category": "groups",
    "tscore_category": "groups",
    "lovett_group": "groups",
    # descriptive.py
    "describe": "descriptive",
    "chi_square": "descriptive",
    # compare.py
    "ttest": "compare",
    "anova_oneway": "compare",
    "levene": "compare",
    # correlation.py
    "correlation": "correlation",
    "correlation_table": "correlation",
    # regression.py
    "linear_regression": "regression",
    # agreement.py
    "icc": "agreement",
    "cohen_kappa": "agreement",
    # logistic.py
    "logistic_regression": "logistic",
    # roc.py
    "roc": "roc",
    "roc_compare": "roc",
    # _base.py
    "StatsError": "_base",
    "StatsWarning": "_base",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    try:
        module_name = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    module = importlib.import_module(f"{__name__}.{module_name}")
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))

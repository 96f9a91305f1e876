"""stats.deprecation: the previous release's argument spellings still work, with a warning.

For every renamed argument of every public function (and every option that used to be
accepted positionally), the old spelling (1) emits a DeprecationWarning naming the new
spelling and (2) gives exactly the result of the new spelling; giving both the old and the
new name is a TypeError naming both.  The helper itself is tested on a toy function.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from ParaspinalFatLib import stats
from ParaspinalFatLib.stats.deprecation import (
    DeprecatedAttribute, OldOrder, Renamed, renamed_arguments,
)


# ---------------------------------------------------------------------------
# the helper on a toy function
# ---------------------------------------------------------------------------

@renamed_arguments({"old": "new", "pct": Renamed("frac", lambda v: v / 100, "frac = pct / 100")},
                   options=("opt1", "opt2"))
def toy(a, new=None, *, frac=0.5, opt1="x", opt2="y"):
    """Return the arguments (toy)."""
    return a, new, frac, opt1, opt2


def test_new_spelling_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert toy(1, 2, frac=0.1, opt1="p") == (1, 2, 0.1, "p", "y")


def test_renamed_keyword_and_conversion():
    with pytest.deprecated_call(match=r"toy\(\): old= is deprecated, use new=; pct= is "
                                      r"deprecated, use frac= \(frac = pct / 100\)"):
        assert toy(1, old=2, pct=25) == (1, 2, 0.25, "x", "y")


def test_positional_options_map_in_their_old_order():
    with pytest.deprecated_call(match="passing opt1, opt2 positionally is deprecated"):
        assert toy(1, 2, "p", "q") == (1, 2, 0.5, "p", "q")
    with pytest.raises(TypeError, match="at most 2 positional"):
        toy(1, 2, "p", "q", "r")
    with pytest.raises(TypeError, match="multiple values for argument 'opt1'"):
        toy(1, 2, "p", opt1="q")


def test_old_and_new_name_together_is_an_error_naming_both():
    with pytest.raises(TypeError, match=r"got both old= \(deprecated\) and new="):
        toy(1, old=2, new=3)
    with pytest.raises(TypeError, match="got both old= .* and new="):
        toy(1, 3, old=2)  # new given positionally


def test_signature_and_docstring_are_kept():
    assert list(inspect.signature(toy).parameters) == ["a", "new", "frac", "opt1", "opt2"]
    assert toy.__doc__ == "Return the arguments (toy)." and toy.__name__ == "toy"


def test_old_order_is_recognised_by_its_predicate():
    @renamed_arguments(old_orders=(OldOrder(("b", "a"), lambda args, kw: isinstance(args[0], str)),))
    def swapped(a=None, b=None):
        return a, b

    assert swapped(1, "z") == (1, "z")
    with pytest.deprecated_call(match=r"positional order \(b, a\)"):
        assert swapped("z", 1) == (1, "z")


def test_misconfiguration_fails_at_import_time():
    with pytest.raises(TypeError, match="not parameters"):
        renamed_arguments({"old": "missing"})(lambda a: a)


def test_deprecated_attribute():
    @dataclasses.dataclass
    class Result:
        confidence: float
        alpha = DeprecatedAttribute("confidence", lambda c: round(1 - c, 12), "alpha = 1 - confidence")

    res = Result(0.9)
    assert [f.name for f in dataclasses.fields(res)] == ["confidence"]
    with pytest.deprecated_call(match=r"Result.alpha is deprecated, use .confidence \(alpha = 1"):
        assert res.alpha == 0.1
    assert isinstance(Result.alpha, DeprecatedAttribute)


# ---------------------------------------------------------------------------
# every renamed argument of the public functions
# ---------------------------------------------------------------------------

def _frame():
    rng = np.random.default_rng(7)
    n = 80
    df = pd.DataFrame({
        "grp": rng.choice(["a", "b", "c"], n), "sex": rng.choice(["female", "male"], n),
        "x": rng.normal(50, 10, n), "z": rng.gamma(2.0, 3.0, n),
        "r1": rng.integers(0, 3, n), "r2": rng.integers(0, 3, n),
    })
    df["y"] = 0.4 * df["x"] + 3 * (df["grp"] == "b") + rng.normal(0, 4, n)
    df["case"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-(df["x"] - 50) / 6))).astype(int)
    df["lab"] = np.where(df["case"] == 1, "poor", "good")
    return df


DF = _frame()
Y = DF["case"].to_numpy()
S1, S2 = DF["x"].to_numpy(), DF["z"].to_numpy()

# id: (old call, new call, warning pattern); renamed keywords and positional options
CASES = {
    "describe group=": (lambda: stats.describe(DF, ["x", "sex"], group="grp"),
                        lambda: stats.describe(DF, ["x", "sex"], between="grp"),
                        "group= is deprecated, use between="),
    "levene group=": (lambda: stats.levene(DF, "y", group="grp"),
                      lambda: stats.levene(DF, "y", between="grp"), "use between="),
    "levene center positional": (lambda: stats.levene(DF, "y", "grp", "median"),
                                 lambda: stats.levene(DF, "y", "grp", center="median"),
                                 "passing center positionally"),
    "ttest group=": (lambda: stats.ttest(DF, "y", group="sex"),
                     lambda: stats.ttest(DF, "y", between="sex"), "use between="),
    "ttest alpha=": (lambda: stats.ttest(DF, "y", "sex", alpha=0.1),
                     lambda: stats.ttest(DF, "y", "sex", confidence=0.9),
                     r"alpha= is deprecated, use confidence= \(confidence = 1 - alpha\)"),
    "anova_oneway alpha=": (lambda: stats.anova_oneway(DF, "y", "grp", posthoc="bonferroni", alpha=0.01),
                            lambda: stats.anova_oneway(DF, "y", "grp", posthoc="bonferroni",
                                                       confidence=0.99),
                            "use confidence="),
    "correlation alpha=": (lambda: stats.correlation(DF, "x", "y", alpha=0.2),
                           lambda: stats.correlation(DF, "x", "y", confidence=0.8), "use confidence="),
    "correlation method positional": (lambda: stats.correlation(DF, "x", "y", "spearman"),
                                      lambda: stats.correlation(DF, "x", "y", method="spearman"),
                                      "passing method positionally"),
    "correlation_table variables=": (lambda: stats.correlation_table(DF, "y", variables=["x", "z"]),
                                     lambda: stats.correlation_table(DF, "y", columns=["x", "z"]),
                                     "variables= is deprecated, use columns="),
    "correlation_table alpha=": (lambda: stats.correlation_table(DF, "y", ["x"], alpha=0.1),
                                 lambda: stats.correlation_table(DF, "y", ["x"], confidence=0.9),
                                 "use confidence="),
    "correlation_table method positional": (
        lambda: stats.correlation_table(DF, "y", ["x"], "spearman"),
        lambda: stats.correlation_table(DF, "y", ["x"], method="spearman"), "passing method"),
    "linear_regression outcome=": (lambda: stats.linear_regression(DF, outcome="y", predictors=["x"]),
                                   lambda: stats.linear_regression(DF, dv="y", predictors=["x"]),
                                   "outcome= is deprecated, use dv="),
    "linear_regression alpha=": (lambda: stats.linear_regression(DF, "y", ["x"], alpha=0.1),
                                 lambda: stats.linear_regression(DF, "y", ["x"], confidence=0.9),
                                 "use confidence="),
    "linear_regression categorical positional": (
        lambda: stats.linear_regression(DF, "y", ["x", "grp"], {"grp": "c"}),
        lambda: stats.linear_regression(DF, "y", ["x", "grp"], categorical={"grp": "c"}),
        "passing categorical positionally"),
    "logistic_regression outcome=": (
        lambda: stats.logistic_regression(DF, outcome="case", predictors=["x"]),
        lambda: stats.logistic_regression(DF, dv="case", predictors=["x"]), "use dv="),
    "logistic_regression event=": (
        lambda: stats.logistic_regression(DF, "lab", ["x"], event="poor"),
        lambda: stats.logistic_regression(DF, "lab", ["x"], positive="poor"),
        "event= is deprecated, use positive="),
    "logistic_regression categorical positional": (
        lambda: stats.logistic_regression(DF, "case", ["x", "sex"], ["sex"]),
        lambda: stats.logistic_regression(DF, "case", ["x", "sex"], categorical=["sex"]),
        "passing categorical positionally"),
    "roc outcome=": (lambda: stats.roc(DF, outcome="lab", score="x", positive="poor"),
                     lambda: stats.roc(DF, dv="lab", score="x", positive="poor"), "use dv="),
    "roc y_true=": (lambda: stats.roc(y_true=Y, score=S1), lambda: stats.roc(dv=Y, score=S1),
                    "y_true= is deprecated, use dv="),
    "roc old positional order": (lambda: stats.roc(Y, S1, 1, ">"),
                                 lambda: stats.roc(dv=Y, score=S1, positive=1, direction=">"),
                                 r"positional order \(dv, score, positive, direction\)"),
    "roc old DataFrame order": (lambda: stats.roc(DF, "x", "poor", outcome="lab"),
                                lambda: stats.roc(DF, "lab", "x", positive="poor"),
                                r"positional order \(data, score, positive, direction\)"),
    "roc_compare outcome=": (
        lambda: stats.roc_compare(DF, outcome="lab", score1="x", score2="z", positive="poor"),
        lambda: stats.roc_compare(DF, dv="lab", score1="x", score2="z", positive="poor"), "use dv="),
    "roc_compare y_true=": (lambda: stats.roc_compare(y_true=Y, score1=S1, score2=S2),
                            lambda: stats.roc_compare(dv=Y, score1=S1, score2=S2), "use dv="),
    "roc_compare old positional order": (
        lambda: stats.roc_compare(Y, S1, S2, 1, ("<", ">")),
        lambda: stats.roc_compare(dv=Y, score1=S1, score2=S2, direction=("<", ">")),
        r"positional order \(dv, score1, score2, positive, direction\)"),
    "cohen_kappa weights/categories positional": (
        lambda: stats.cohen_kappa(DF, "r1", "r2", "linear", [0, 1, 2, 3]),
        lambda: stats.cohen_kappa(DF, "r1", "r2", weights="linear", categories=[0, 1, 2, 3]),
        "passing weights, categories positionally"),
    "vbmd_category thresholds positional": (
        lambda: stats.vbmd_category(DF["x"] + 60, 110.0, 90.0),
        lambda: stats.vbmd_category(DF["x"] + 60, normal_above=110.0, osteoporosis_below=90.0),
        "passing normal_above, osteoporosis_below positionally"),
    "tscore_category t=": (lambda: stats.tscore_category(t=[-1.0, -2.5]),
                           lambda: stats.tscore_category(values=[-1.0, -2.5]),
                           "t= is deprecated, use values="),
    "tscore_category thresholds positional": (
        lambda: stats.tscore_category(-2.0, -1.5, -2.0),
        lambda: stats.tscore_category(-2.0, normal_at_or_above=-1.5, osteoporosis_at_or_below=-2.0),
        "positionally"),
    "lovett_group grade=": (lambda: stats.lovett_group(grade=[2, 4]),
                            lambda: stats.lovett_group(values=[2, 4]), "grade= is deprecated"),
    "lovett_group good_from positional": (lambda: stats.lovett_group([2, 3, 4], 3),
                                          lambda: stats.lovett_group([2, 3, 4], good_from=3),
                                          "passing good_from positionally"),
}


def canonical(obj):
    """A comparable plain-Python image of a result (NaN-safe, tables cell by cell)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: canonical(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not f.name.startswith("_")}
    if isinstance(obj, pd.DataFrame):
        return ("frame", list(map(repr, obj.columns)), list(map(repr, obj.index)),
                canonical(obj.to_numpy(dtype=object).tolist()))
    if isinstance(obj, pd.Series):
        return ("series", list(map(repr, obj.index)), canonical(obj.to_numpy(dtype=object).tolist()))
    if isinstance(obj, pd.Categorical):
        return ("categorical", canonical(list(obj.astype(object))), list(obj.categories))
    if isinstance(obj, np.ndarray):
        return ("array", canonical(obj.tolist()))
    if isinstance(obj, (list, tuple)):
        return [canonical(v) for v in obj]
    if isinstance(obj, dict):
        return {k: canonical(v) for k, v in obj.items()}
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and math.isnan(obj):
        return "nan"
    return obj


@pytest.mark.parametrize("case", list(CASES))
def test_old_spelling_warns_and_equals_the_new_one(case):
    old_call, new_call, pattern = CASES[case]
    with pytest.deprecated_call(match=pattern) as record:
        old = old_call()
    assert "will be removed in the next release" in str(record[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        new = new_call()
    assert canonical(old) == canonical(new)


@pytest.mark.parametrize("call, old, new", [
    (lambda: stats.describe(DF, ["x"], "grp", group="sex"), "group", "between"),
    (lambda: stats.levene(DF, "y", between="grp", group="grp"), "group", "between"),
    (lambda: stats.ttest(DF, "y", "sex", group="sex"), "group", "between"),
    (lambda: stats.ttest(DF, "y", "sex", alpha=0.05, confidence=0.95), "alpha", "confidence"),
    (lambda: stats.anova_oneway(DF, "y", "grp", alpha=0.05, confidence=0.9), "alpha", "confidence"),
    (lambda: stats.correlation(DF, "x", "y", alpha=0.05, confidence=0.9), "alpha", "confidence"),
    (lambda: stats.correlation_table(DF, "y", ["x"], variables=["x"]), "variables", "columns"),
    (lambda: stats.correlation_table(DF, "y", ["x"], alpha=0.1, confidence=0.9), "alpha", "confidence"),
    (lambda: stats.linear_regression(DF, "y", ["x"], outcome="y"), "outcome", "dv"),
    (lambda: stats.linear_regression(DF, "y", ["x"], alpha=0.1, confidence=0.9), "alpha", "confidence"),
    (lambda: stats.logistic_regression(DF, "case", ["x"], outcome="case"), "outcome", "dv"),
    (lambda: stats.logistic_regression(DF, "lab", ["x"], event="poor", positive="poor"), "event",
     "positive"),
    (lambda: stats.roc(DF, dv="lab", score="x", outcome="lab"), "outcome", "dv"),
    (lambda: stats.roc(dv=Y, score=S1, y_true=Y), "y_true", "dv"),
    (lambda: stats.roc_compare(DF, dv="lab", score1="x", score2="z", outcome="lab"), "outcome", "dv"),
    (lambda: stats.roc_compare(dv=Y, score1=S1, score2=S2, y_true=Y), "y_true", "dv"),
    (lambda: stats.tscore_category(-1.0, t=-1.0), "t", "values"),
    (lambda: stats.lovett_group(3, grade=3), "grade", "values"),
])
def test_old_and_new_name_together_raise(call, old, new):
    with pytest.raises(TypeError, match=rf"got both {old}= \(deprecated\) and {new}="):
        call()


def test_options_are_keyword_only_in_the_new_order():
    for call in (lambda: stats.ttest(DF, "y", "sex", None),
                 lambda: stats.roc(DF, "lab", "x", "poor"),
                 lambda: stats.icc(DF[["x", "y"]], None, None, None, "ICC1"),
                 lambda: stats.chi_square(DF, "sex", "grp", True)):
        with pytest.raises(TypeError):
            call()


@pytest.mark.parametrize("result, old, new", [
    (lambda: stats.describe(DF, ["x"], between="grp"), "group", "between"),
    (lambda: stats.levene(DF, "y", "grp"), "group", "between"),
    (lambda: stats.ttest(DF, "y", "sex"), "group", "between"),
    (lambda: stats.linear_regression(DF, "y", ["x"]), "outcome", "dv"),
    (lambda: stats.logistic_regression(DF, "lab", ["x"], positive="poor"), "outcome", "dv"),
    (lambda: stats.logistic_regression(DF, "lab", ["x"], positive="poor"), "event", "positive"),
    (lambda: stats.logistic_regression(DF, "lab", ["x"], positive="poor"), "nonevent", "negative"),
])
def test_renamed_result_attributes(result, old, new):
    res = result()
    with pytest.deprecated_call(match=rf"\.{old} is deprecated, use \.{new}"):
        assert getattr(res, old) == getattr(res, new)


@pytest.mark.parametrize("result", [
    lambda c: stats.ttest(DF, "y", "sex", confidence=c),
    lambda c: stats.anova_oneway(DF, "y", "grp", confidence=c),
    lambda c: stats.correlation(DF, "x", "y", confidence=c),
    lambda c: stats.linear_regression(DF, "y", ["x"], confidence=c),
])
@pytest.mark.parametrize("confidence, alpha", [(0.95, 0.05), (0.9, 0.1), (0.99, 0.01), (0.8, 0.2)])
def test_result_alpha_is_exactly_the_old_value(result, confidence, alpha):
    res = result(confidence)
    assert res.confidence == confidence
    with pytest.deprecated_call(match=r"\.alpha is deprecated, use \.confidence"):
        assert res.alpha == alpha  # exact (decimal complement), not 0.09999999999999998

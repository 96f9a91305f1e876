"""Regression tests for defects found in review (each checked against an independent oracle)."""
import numpy as np
import pandas as pd
import pytest

from ParaspinalFatLib import stats


def test_describe_with_nullable_group_dtype_excludes_missing_group():
    df = pd.DataFrame({"x": [10.0, 15.0, 19.0, 12.0, 16.0, 99.0],
                       "sex": ["f", "f", "f", "m", "m", None]}).convert_dtypes()
    frame = stats.describe(df, ["x"], group="sex").to_frame()
    by = frame.set_index("group")
    assert by.loc["f", "n"] == 3 and by.loc["f", "mean"] == pytest.approx(44 / 3)
    assert by.loc["m", "n"] == 2 and by.loc["m", "mean"] == pytest.approx(14.0)
    assert by.loc["All", "n"] == 5  # the row with a missing group is not in the overall row


def test_logistic_keeps_category_order_like_r_and_statsmodels():
    smf = pytest.importorskip("statsmodels.formula.api")
    rng = np.random.default_rng(1)
    n = 300
    df = pd.DataFrame({"fa": rng.normal(0.3, 0.05, n),
                       "strength": pd.Categorical(rng.choice(["poor", "good"], n), categories=["poor", "good"],
                                                  ordered=True)})
    logit = -6 + 20 * df["fa"] + 0.8 * (df["strength"] == "good")
    df["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    res = stats.logistic_regression(df, "y", ["fa", "strength"], categorical=["strength"])
    table = res.to_frame().set_index(res.to_frame().columns[0])
    assert "strength[good]" in table.index  # reference = first category ("poor"), as in R
    oracle = smf.logit("y ~ fa + C(strength)", data=df.assign(strength=df["strength"].astype(str)).assign(
        strength=lambda d: pd.Categorical(d["strength"], categories=["poor", "good"]))).fit(disp=0)
    assert table.loc["strength[good]", "B"] == pytest.approx(oracle.params["C(strength)[T.good]"], rel=1e-6)


def test_regression_without_intercept_warns_about_categorical_reference():
    df = pd.DataFrame({"y": [1.0, 2, 3, 4, 5, 6.5], "x": [1.0, 2, 3, 4, 5, 7], "g": list("aabbcc")})
    with pytest.warns(stats.StatsWarning, match="forced through the origin"):
        res = stats.linear_regression(df, "y", ["x", "g"], categorical={"g": "a"}, intercept=False)
    assert any("origin" in n for n in res.notes)

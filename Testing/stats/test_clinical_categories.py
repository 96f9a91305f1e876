"""stats.clinical_categories: vBMD (QCT), T-score (WHO) and Lovett grade, boundaries by hand."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ParaspinalFatLib.stats import StatsError, lovett_group, tscore_category, vbmd_category

BONE = ["normal", "osteopenia", "osteoporosis"]


# --- vBMD: normal > 120, osteopenia 80..120 inclusive, osteoporosis < 80 -------------------
@pytest.mark.parametrize(
    "value, expected",
    [
        (120.0, "osteopenia"),
        (np.nextafter(120.0, np.inf), "normal"),
        (120.5, "normal"),
        (80.0, "osteopenia"),
        (np.nextafter(80.0, -np.inf), "osteoporosis"),
        (79.9, "osteoporosis"),
        (100, "osteopenia"),
        (0.0, "osteoporosis"),
        (250.0, "normal"),
    ],
)
def test_vbmd_boundaries(value, expected):
    assert vbmd_category(value) == expected


def test_vbmd_custom_thresholds_and_nan():
    assert vbmd_category(110.0, normal_above=100.0) == "normal"
    assert vbmd_category(85.0, osteoporosis_below=90.0) == "osteoporosis"
    assert np.isnan(vbmd_category(np.nan))
    assert np.isnan(vbmd_category(None))


def test_vbmd_array_gives_ordered_categorical():
    out = vbmd_category([150.0, 120.0, np.nan, 80.0, 60.0])
    assert isinstance(out, pd.Categorical)
    assert out.ordered and list(out.categories) == BONE
    assert list(out.astype(object)[[0, 1, 3, 4]]) == [
        "normal", "osteopenia", "osteopenia", "osteoporosis"]
    assert pd.isna(out[2])
    assert out.min() == "normal" and out.max() == "osteoporosis"


def test_vbmd_series_keeps_index_and_name():
    s = pd.Series([130.0, None, 70.0], index=["p1", "p2", "p3"], name="vbmd")
    out = vbmd_category(s)
    assert isinstance(out, pd.Series) and out.name == "vbmd"
    assert list(out.index) == ["p1", "p2", "p3"]
    assert isinstance(out.dtype, pd.CategoricalDtype) and out.cat.ordered
    assert out["p1"] == "normal" and pd.isna(out["p2"]) and out["p3"] == "osteoporosis"


def test_vbmd_nullable_integer_series():
    out = vbmd_category(pd.Series([121, pd.NA, 80], dtype="Int64"))
    assert out[0] == "normal" and pd.isna(out[1]) and out[2] == "osteopenia"


@pytest.mark.parametrize("bad", [["a"], "120", [np.inf], [True]])
def test_vbmd_rejects_non_numeric(bad):
    with pytest.raises(StatsError, match="vbmd_category"):
        vbmd_category(bad)


def test_vbmd_rejects_inverted_thresholds():
    with pytest.raises(StatsError, match="osteoporosis_below"):
        vbmd_category(100.0, normal_above=80.0, osteoporosis_below=120.0)


# --- T-score: normal >= -1.0, osteoporosis <= -2.5 ------------------------------------------
@pytest.mark.parametrize(
    "t, expected",
    [
        (-1.0, "normal"),
        (np.nextafter(-1.0, -np.inf), "osteopenia"),
        (-1.01, "osteopenia"),
        (-2.5, "osteoporosis"),
        (np.nextafter(-2.5, np.inf), "osteopenia"),
        (-2.49, "osteopenia"),
        (-2.51, "osteoporosis"),
        (0.7, "normal"),
    ],
)
def test_tscore_boundaries(t, expected):
    assert tscore_category(t) == expected


def test_tscore_series_and_thresholds():
    s = pd.Series([-1.0, -2.0, -2.5, np.nan])
    out = tscore_category(s)
    assert list(out[:3]) == ["normal", "osteopenia", "osteoporosis"] and pd.isna(out[3])
    assert tscore_category(-2.0, osteoporosis_at_or_below=-2.0) == "osteoporosis"
    with pytest.raises(StatsError, match="osteoporosis_at_or_below"):
        tscore_category(0.0, normal_at_or_above=-3.0)


# --- Lovett: 0-3 poor, 4-5 good ---------------------------------------------------------------
@pytest.mark.parametrize("grade, expected", [(0, "poor"), (3, "poor"), (3.0, "poor"),
                                             (4, "good"), (5, "good"), (np.int64(4), "good")])
def test_lovett_boundaries(grade, expected):
    assert lovett_group(grade) == expected


def test_lovett_array_nan_and_good_from():
    out = lovett_group(np.array([0, 3, 4, 5, np.nan]))
    assert isinstance(out, pd.Categorical)
    assert list(out.categories) == ["poor", "good"] and out.ordered
    assert list(out[:4]) == ["poor", "poor", "good", "good"] and pd.isna(out[4])
    assert lovett_group(3, good_from=3) == "good"
    assert lovett_group(4, good_from=5) == "poor"


@pytest.mark.parametrize("bad", [6, -1, 3.5, [2, 7], pd.Series([1, 9], index=["a", "b"])])
def test_lovett_out_of_range_is_a_clear_error(bad):
    with pytest.raises(StatsError, match="Lovett grade must be a whole number 0..5"):
        lovett_group(bad)


def test_lovett_error_names_series_index():
    with pytest.raises(StatsError, match="index 'b'"):
        lovett_group(pd.Series([1, 9], index=["a", "b"]))


@pytest.mark.parametrize("bad", [["4+"], "4"])
def test_lovett_rejects_strings(bad):
    with pytest.raises(StatsError, match="not a number"):
        lovett_group(bad)


@pytest.mark.parametrize("good_from", [0, 6, 3.5, True])
def test_lovett_rejects_bad_good_from(good_from):
    with pytest.raises(StatsError, match="good_from"):
        lovett_group(3, good_from=good_from)


# --- properties -------------------------------------------------------------------------------
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(finite, st.just(float("nan"))), min_size=1, max_size=30))
def test_vbmd_matches_definition(values):
    out = vbmd_category(np.array(values, dtype=float))
    for v, c in zip(values, out):
        if np.isnan(v):
            assert pd.isna(c)
        else:
            assert c == ("normal" if v > 120 else "osteoporosis" if v < 80 else "osteopenia")


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=1, max_size=30))
def test_tscore_matches_definition(values):
    out = tscore_category(values)
    for v, c in zip(values, out):
        assert c == ("normal" if v >= -1 else "osteoporosis" if v <= -2.5 else "osteopenia")


# --- deprecated spellings (previous release) ---------------------------------------------------
def test_deprecated_positional_thresholds_and_old_names():
    with pytest.deprecated_call(match="normal_above="):
        assert vbmd_category(110.0, 100.0) == vbmd_category(110.0, normal_above=100.0) == "normal"
    with pytest.deprecated_call(match="t= is deprecated, use values="):
        assert tscore_category(t=-2.0, osteoporosis_at_or_below=-2.0) == "osteoporosis"
    with pytest.deprecated_call(match="grade= is deprecated"):
        old = lovett_group(grade=[3, 4], good_from=3)
    assert list(old) == list(lovett_group([3, 4], good_from=3)) == ["good", "good"]
    with pytest.raises(TypeError, match="got both grade= .* and values="):
        lovett_group(3, grade=4)

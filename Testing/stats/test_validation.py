"""stats.validation: the one way of reading numbers, columns, groups and options."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from ParaspinalFatLib.stats import StatsError, StatsWarning
from ParaspinalFatLib.stats.validation import (
    as_float_array, categorical_spec, check_confidence, group_order, listwise, note,
    numeric_column, plain, require_columns, require_variance, split_groups,
)


def test_require_columns_names_the_missing_ones():
    df = pd.DataFrame({"a": [1], "b": [2]})
    require_columns(df, ["a", "b"])
    with pytest.raises(StatsError, match=r"\['c', 'd'\] not in the table; available columns: \['a', 'b'\]"):
        require_columns(df, ["a", "c", "d"])
    with pytest.raises(StatsError, match="expected a pandas DataFrame, got dict"):
        require_columns({"a": [1]}, ["a"])


def test_listwise_keeps_complete_rows():
    df = pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": [1, 2, None], "c": [None] * 3})
    assert list(listwise(df, ["a", "b"]).index) == [0]


@pytest.mark.parametrize("values, expected", [
    (pd.Series([True, False]), [1.0, 0.0]),
    (pd.Series([1, None, 3], dtype="Int64"), [1.0, np.nan, 3.0]),
    (pd.Series(["1.5", None, "2"]), [1.5, np.nan, 2.0]),
    (pd.Series(pd.Categorical([1, 2, 1])), [1.0, 2.0, 1.0]),
    ([1, 2.5, np.inf], [1.0, 2.5, np.inf]),
    (np.array([3, 4]), [3.0, 4.0]),
])
def test_as_float_array(values, expected):
    out = as_float_array(values, "v")
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, expected)


def test_as_float_array_errors():
    with pytest.raises(StatsError, match=r"column 'v' is not numeric: 2 value\(s\) such as \['<80', 'n/a'\]"):
        as_float_array(pd.Series(["1", "<80", "n/a", None]), "v")
    with pytest.raises(StatsError, match="score: values are not numeric"):
        as_float_array(["a", "b"], "score")
    with pytest.raises(StatsError, match=r"score: expected a 1-D sequence, got shape \(2, 2\)"):
        as_float_array(np.eye(2), "score")


def test_numeric_column_is_stricter():
    df = pd.DataFrame({"cat": pd.Categorical([1, 2]), "inf": [1.0, np.inf], "ok": [1, 2]})
    np.testing.assert_array_equal(numeric_column(df, "ok"), [1.0, 2.0])
    with pytest.raises(StatsError, match="categorical"):
        numeric_column(df, "cat")
    with pytest.raises(StatsError, match="infinite"):
        numeric_column(df, "inf")
    dup = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(StatsError, match="duplicated"):
        numeric_column(dup, "a")


def test_require_variance_and_check_confidence():
    require_variance(np.array([1.0, np.nan, 2.0]), "x")
    with pytest.raises(StatsError, match=r"column 'x' has zero variance in g \(all 2 values equal 3\)"):
        require_variance(np.array([3.0, np.nan, 3.0]), "x", "in g")
    assert check_confidence(np.float64(0.9)) == 0.9
    for bad in (0, 1, "high", None):
        with pytest.raises(StatsError, match="confidence must be"):
            check_confidence(bad)


def test_group_order():
    s = pd.Series(["b", "a", None, "b"])
    assert group_order(s, None, "g") == ["a", "b"]
    assert group_order(s, ["b", "a"], "g") == ["b", "a"]
    cat = pd.Series(pd.Categorical(["x", "z"], categories=["z", "y", "x"]))
    assert group_order(cat, None, "g") == ["z", "x"]
    ints = group_order(pd.Series(np.array([2, 1, 2])), None, "g")
    assert ints == [1, 2] and all(type(v) is int for v in ints)
    assert group_order(pd.Series([1, "a", 2.5]), None, "g") == [2.5, 1, "a"]  # by type name
    with pytest.raises(StatsError, match="lists a group twice"):
        group_order(s, ["a", "a"], "g")
    with pytest.raises(StatsError, match=r"group\(s\) \['c'\] of 'g' given in order= have no rows"):
        group_order(s, ["a", "c"], "g")


def test_split_groups_counts_what_it_leaves_out():
    df = pd.DataFrame({"y": [1.0, 2, 3, 4, np.nan, 6, 7], "g": ["a", "a", "b", "b", "a", None, "c"]})
    labels, arrays, n_missing, n_other = split_groups(df, "y", "g", ["b", "a"])
    assert labels == ["b", "a"] and [a.tolist() for a in arrays] == [[3, 4], [1, 2]]
    assert (n_missing, n_other) == (2, 1)
    with pytest.raises(StatsError, match="group 'c' of 'g' has n=1"):
        split_groups(df, "y", "g", None)
    with pytest.raises(StatsError, match="both 'y'"):
        split_groups(df, "y", "y", None)


def test_categorical_spec():
    assert categorical_spec(None, ["a"], "") == {}
    assert categorical_spec("a", ["a", "b"], "") == {"a": None}
    assert categorical_spec(["a", "b"], ["a", "b"], "") == {"a": None, "b": None}
    assert categorical_spec({"b": "ref"}, ["a", "b"], "") == {"b": "ref"}
    with pytest.raises(StatsError, match=r"^fit: categorical= names \['z'\] that are not among"):
        categorical_spec(["z"], ["a"], "fit: ")


def test_plain_and_note():
    assert plain(np.array([1, 2, 3]), limit=2) == [1, 2] and type(plain(np.array([1]))[0]) is int
    notes = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        note(notes, "degenerate")
    assert notes == ["degenerate"] and caught[0].category is StatsWarning
    assert caught[0].filename == __file__  # attributed to the caller outside the package


def test_warnings_point_at_the_users_call():
    from ParaspinalFatLib import stats
    df = pd.DataFrame({"x": [1.0, 2, 3], "y": [1.0, 3, 2]})
    with pytest.warns(StatsWarning, match="n = 3") as record:
        stats.correlation(df, "x", "y")  # note() is two calls deep, behind the decorator
    assert record[0].filename == __file__


def test_object_array_holds_one_entry_per_value():
    from ParaspinalFatLib.validation import object_array

    values = [("L4/5", 1), "left", None, float("nan"), 3]
    out = object_array(values)
    assert out.shape == (5,) and out.dtype == object
    assert out[0] == ("L4/5", 1) and out[1] == "left" and out[2] is None and out[4] == 3
    assert object_array(iter(["ab"])).tolist() == ["ab"] and object_array([]).shape == (0,)


def test_is_missing_is_none_nan_and_pandas_na_only():
    from ParaspinalFatLib.validation import is_missing

    for value in (None, float("nan"), np.float64("nan"), pd.NA):
        assert is_missing(value), value
    for value in ("", "nan", 0, 0.0, np.float32("nan"), False, float("inf"), [], "NA"):
        assert not is_missing(value), value  # (a float32 NaN is not a float: as the checks it replaces)


def test_texts_or_empty_turns_missing_values_into_empty_texts():
    from ParaspinalFatLib.validation import texts_or_empty

    values = ["left", None, float("nan"), pd.NA, "", 3, np.float64("nan"), np.str_("right")]
    want = ["left", "", "", "", "", "3", "", "right"]
    for given in (values, pd.Series(values, dtype=object), np.array(values, dtype=object)):
        out = texts_or_empty(given)
        assert out.dtype == object and out.shape == (len(values),) and out.tolist() == want
        assert all(type(v) is str for v in out)
    assert texts_or_empty(pd.Series(["left", "right", ""])).tolist() == ["left", "right", ""]  # pandas' str type
    assert texts_or_empty([]).shape == (0,)


@pytest.mark.parametrize("values", [
    ["L4/5", "L3/4", "L4/5", "L5/S1", "L3/4"],            # texts: the dict path
    ["b", "a", "é", "B", "a", ""],                         # case, accents and the empty text sort as pandas does
    [],
    ["L4/5", None, "L3/4", np.nan, "L4/5"],                # missing values: pandas
    [3, 1, 3, 2],                                          # numbers: pandas
    [1, "x", 1, "y"],                                      # mixed: pandas
    [f"part{(7 * i) % 301:03d}_{'lr'[i % 2]}" for i in range(700)],  # many texts
])
@pytest.mark.parametrize("sort", [False, True])
@pytest.mark.parametrize("sentinel", [True, False])
@pytest.mark.parametrize("kind", ["list", "object", "series"])
def test_factorize_equals_pandas(values, sort, sentinel, kind):
    from ParaspinalFatLib.validation import factorize, object_array

    given = {"list": list(values), "object": object_array(values), "series": pd.Series(values, dtype=object)}[kind]
    if kind == "series" and all(isinstance(v, str) for v in values):
        given = pd.Series(values)  # pandas' own text type (str in pandas 3)
    codes, uniques = factorize(given, sort=sort, use_na_sentinel=sentinel)
    want_codes, want_uniques = pd.factorize(object_array(values), sort=sort, use_na_sentinel=sentinel)
    assert codes.dtype == np.intp and codes.tolist() == want_codes.tolist()
    assert [u for u in uniques if u == u] == [u for u in want_uniques if u == u]

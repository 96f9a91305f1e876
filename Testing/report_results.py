"""One number of a report's ``results.csv`` (the tests that recompute the report's numbers)."""
from __future__ import annotations


def result_value(results, analysis, dv, term, statistic):
    """The ``value`` of the one row of ``results`` (a ``results.csv`` DataFrame) with these keys."""
    hit = results[(results["analysis"] == analysis) & (results["dv"] == dv)
                  & (results["group_or_term"] == term) & (results["statistic"] == statistic)]
    assert len(hit) == 1, (analysis, dv, term, statistic, len(hit))
    return float(hit["value"].iloc[0])

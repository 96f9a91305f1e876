"""Column descriptions and units of the per-level table (``ParaspinalFatLib.schemas``).

Truth: the units the README and the schema docstring state for each column, written out
by hand here, checked on tables the library really produces (a PDFF phantom and a CT-like
scalar map in HU).
"""
from __future__ import annotations

import warnings

import pytest

from ParaspinalFatLib import make_phantom, measure_case
from ParaspinalFatLib.schemas import LEVEL_COLUMN_DESCRIPTIONS, LEVEL_COLUMNS, level_column_units


def test_every_level_column_has_a_description():
    missing = [c for c in LEVEL_COLUMNS if not LEVEL_COLUMN_DESCRIPTIONS.get(c, "").strip()]
    assert missing == []
    assert set(LEVEL_COLUMN_DESCRIPTIONS) <= set(LEVEL_COLUMNS)  # no description of a column that does not exist


@pytest.fixture(scope="module")
def pdff_table():
    ph = make_phantom()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return measure_case(ph.image, ph.segmentation, map_kind="pdff", pdff_scale=ph.pdff_scale)


def test_units_of_a_pdff_table(pdff_table):
    units = level_column_units(pdff_table)
    assert list(units) == list(pdff_table.columns)
    expected = {  # by hand, from the README's table description
        "csa_mm2": "mm2", "fat_csa_mm2": "mm2", "lean_csa_mm2": "mm2", "undefined_csa_mm2": "mm2",
        "pixel_area_mm2": "mm2", "slice_offset_mm": "mm", "plane_tilt_deg": "deg",
        "n_voxels": "voxels", "n_nan": "voxels", "fat_area_ratio": "1",
        "fat_fraction_pct": "%", "grade_fat_pct": "%", "fat_threshold_pct": "%",
        "mean": "%", "median": "%", "sd": "%", "p05": "%", "p95": "%", "threshold_high": "%",
        "plane_normal_lps_z": "1",
        "segment": "", "muscle": "", "level": "", "warnings": "", "goutallier": "", "kjaer": "",
    }
    assert {c: units[c] for c in expected} == expected


def test_map_statistics_take_the_tables_own_unit(pdff_table):
    table = pdff_table.copy()
    table["unit"] = "HU"
    units = level_column_units(table)
    assert units["mean"] == units["p10"] == units["threshold_low"] == units["mean_muscle_window"] == "HU"
    assert units["csa_mm2"] == "mm2" and units["fat_fraction_pct"] == "%"
    table["unit"] = ""
    assert level_column_units(table)["mean"] == ""  # a scalar map without a unit: none is invented

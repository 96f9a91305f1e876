"""Scalar maps (ParaspinalFatLib.composition.scalar): statistics only, no fat / lean split."""
import numpy as np

from ParaspinalFatLib.composition.base import EXCLUDED, EXTRA_COLUMNS, GroupContext
from ParaspinalFatLib.composition.scalar import ScalarMethod


def test_scalar_map_classifies_nothing_and_keeps_its_values():
    method = ScalarMethod(unit="mm2/s")
    raw = np.array([1.5, -2.0, np.nan, 7.0], np.float32)
    groups = np.array([0, 0, 1, 1])
    values = method.voxel_values(raw)
    assert values.dtype == np.float64
    np.testing.assert_array_equal(values, raw.astype(np.float64))
    codes, thresholds, notes = method.classify(values, groups, 2, GroupContext(["a", "b"]))
    assert (codes == EXCLUDED).all() and notes == [[], []]
    assert all(np.isnan(t).all() for t in thresholds.values())
    extra = method.extra_columns(groups, 2, values, raw, None, codes)
    assert list(extra) == list(EXTRA_COLUMNS) and all(np.isnan(v).all() for v in extra.values())
    assert not method.below_noise(raw, None).any()
    assert not method.has_composition and not method.fat_fraction_is_mean_value
    assert (method.kind, method.unit, method.params_json()) == ("scalar", "mm2/s", "{}")

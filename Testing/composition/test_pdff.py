"""PDFF maps (ParaspinalFatLib.composition.pdff): conversion to %, the fat threshold."""
import numpy as np
import pytest

from ParaspinalFatLib.composition.base import FAT, LEAN, GroupContext
from ParaspinalFatLib.composition.factory import make_method
from ParaspinalFatLib.composition.pdff import PdffMethod
from ParaspinalFatLib.errors import ParaspinalFatWarning


@pytest.mark.parametrize("scale,full", [("0-1", 1.0), ("0-100", 100.0), ("0-1000", 1000.0)])
def test_values_in_percent_whatever_the_storage_scale(scale, full):
    rng = np.random.default_rng(1)
    pct = rng.uniform(0, 100, (6, 8, 8))
    stored = (pct * full / 100.0).astype(np.float32)
    method = PdffMethod.from_options(stored, pdff_scale=scale, fat_threshold_pct=30.0)
    assert method.pdff_scale == scale and method.params["pdff_scale_source"] == "declared"
    assert method.unit == "%"
    np.testing.assert_allclose(method.voxel_values(stored.ravel()), stored.ravel().astype(float) * 100.0 / full,
                               rtol=1e-12)


def test_fat_threshold_is_half_open():
    method = PdffMethod.from_options(np.linspace(0, 100, 1000).reshape(10, 10, 10), pdff_scale="0-100",
                                     fat_threshold_pct=30.0)
    values = np.array([29.999, 30.0, 75.0, np.nan])
    codes, thresholds, notes = method.classify(values, np.zeros(4, np.intp), 1, GroupContext(["m"]))
    assert codes[:3].tolist() == [LEAN, FAT, FAT] and codes[3] == -1
    assert thresholds["threshold_high"].tolist() == [30.0] and np.isnan(thresholds["threshold_low"]).all()
    assert notes == [[]]


def test_detected_scale_warns_at_the_caller_of_make_method():
    image = np.linspace(0, 95, 1000).reshape(10, 10, 10)
    with pytest.warns(ParaspinalFatWarning, match="PDFF scale detected as 0-100") as record:
        method = make_method("pdff", image)
    assert record[0].filename == __file__
    assert method.params["pdff_scale_source"].startswith("detected")

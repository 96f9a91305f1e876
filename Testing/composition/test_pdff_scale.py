"""PDFF storage scale (ParaspinalFatLib.composition.pdff_scale): spellings, detection, checks."""
import numpy as np
import pytest

from ParaspinalFatLib.composition.pdff_scale import PDFF_SCALES, detect_pdff_scale, normalise_scale_name
from ParaspinalFatLib.errors import MeasurementError, ParaspinalFatWarning


@pytest.mark.parametrize("text,name", [("1", "0-1"), ("Fraction", "0-1"), (" 0 - 100 ", "0-100"), ("%", "0-100"),
                                       ("permille", "0-1000"), ("0..1000", "0-1000")])
def test_spellings(text, name):
    assert normalise_scale_name(text) == name


def test_unknown_spelling_refused():
    with pytest.raises(MeasurementError, match="unknown PDFF scale"):
        normalise_scale_name("0-10")


@pytest.mark.parametrize("scale", list(PDFF_SCALES))
def test_detection_from_the_robust_maximum(scale):
    full, factor = PDFF_SCALES[scale]
    assert full * factor == 100.0  # every scale converts full scale to 100 %
    image = np.random.default_rng(2).uniform(0, full, (8, 16, 16))
    with pytest.warns(ParaspinalFatWarning, match=f"detected as {scale}"):
        assert detect_pdff_scale(image)[0] == scale
    assert detect_pdff_scale(image, scale) == (scale, "declared")


def test_values_outside_the_declared_or_any_scale_refused():
    image = np.random.default_rng(3).uniform(0, 100, (8, 16, 16))
    with pytest.raises(MeasurementError, match="do not fit the declared scale 0-1"):
        detect_pdff_scale(image, "0-1")
    with pytest.raises(MeasurementError, match="outside any known scale"):
        detect_pdff_scale(image * 1000)
    with pytest.raises(MeasurementError, match="no finite voxel"):
        detect_pdff_scale(np.full((2, 2, 2), np.nan))

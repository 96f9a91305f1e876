"""PDFF storage scale (ParaspinalFatLib.composition.pdff_scale): spellings, detection, checks."""
import numpy as np
import pytest

from ParaspinalFatLib.composition.pdff_scale import (PDFF_SCALES, check_roi_fat_fractions, detect_pdff_scale,
                                                     normalise_scale_name)
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


# ----------------------------------------------------------------------------- a scale that contradicts the data
def test_declared_scale_below_5_percent_names_the_scale_the_data_look_like():
    image = np.random.default_rng(4).uniform(0, 40, (8, 16, 16))  # a 0-100 map without fat, declared 0-1000
    hi = float(np.percentile(image, 99.5))
    with pytest.raises(MeasurementError) as err:
        detect_pdff_scale(image, "0-1000", "map.nrrd")
    assert str(err.value) == (
        f"map.nrrd: under the declared PDFF scale 0-1000 the whole map is below 5 % (99.5th percentile {hi:.4g} = "
        f"{hi / 10:.3g} %), but subcutaneous fat and marrow are 30-95 % and even fat-free muscle has voxels of "
        f"several %; the values look like scale 0-100 (then the 99.5th percentile is {hi:.3g} %): declare "
        f"--pdff-scale 0-100 (pdff_scale='0-100')")
    with pytest.warns(ParaspinalFatWarning, match="no part of the map reaches 20 %"):  # >= 5 %: kept, warned
        assert detect_pdff_scale(image * 1.25 + 1.0, "0-1000") == ("0-1000", "declared")


def test_declared_scale_without_fat_tissue_warns_only_when_a_smaller_scale_fits():
    image = np.random.default_rng(5).uniform(0, 92, (8, 16, 16))  # 0-100 with fat declared 0-1000: 9.2 %
    with pytest.warns(ParaspinalFatWarning, match="no part of the map reaches 20 %.*stored as 0-100"):
        assert detect_pdff_scale(image, "0-1000") == ("0-1000", "declared")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        detect_pdff_scale(image / 92 * 12, "0-100")  # 0-12 cannot be a 0-1 map: no warning
        detect_pdff_scale(image * 10, "0-1000")


def _roi(values_by_group):
    values = np.concatenate(values_by_group)
    groups = np.concatenate([np.full(len(v), g) for g, v in enumerate(values_by_group)])
    return values, groups


@pytest.mark.parametrize("values,refused", [
    (np.full(20, 105.0), False),                               # mean exactly 105 %: noise, kept
    (np.full(20, 105.01), True),                               # mean above 105 %
    (np.r_[np.full(5, 110.5), np.full(15, 90.0)], True),       # 25 % of the voxels above 110 %
    (np.r_[np.full(4, 110.5), np.full(16, 90.0)], False),      # 20 %: kept
    (np.r_[np.full(5, 110.0), np.full(15, 90.0)], False),      # at 110 % is not above
    (np.full(19, 140.0), False),                               # fewer than 20 voxels: not judged
    (np.r_[np.full(20, 140.0), np.full(5, np.nan)], True),     # NaN ignored
])
def test_roi_fat_fraction_rule(values, refused):
    ok = np.full(30, 40.0)
    v, g = _roi([ok, values])
    if refused:
        with pytest.raises(MeasurementError, match=r"^seg B: mean voxel fat fraction .* under the detected PDFF "
                                                   r"scale 0-100: .* stored as 0-1000 \(then this ROI's mean is"):
            check_roi_fat_fractions(v, g, ["seg A", "seg B"], "0-100", "detected (99.5th percentile 140)")
    else:
        check_roi_fat_fractions(v, g, ["seg A", "seg B"], "0-100", "declared")


def test_roi_rule_suggests_the_smallest_scale_that_fits():
    v, g = _roi([np.full(30, 130.0)])
    with pytest.raises(MeasurementError, match=r"declared PDFF scale 0-1: .*stored as 0-100 \(then this ROI's "
                                               r"mean is 1\.3 %\): declare --pdff-scale 0-100"):
        check_roi_fat_fractions(v, g, ["x"], "0-1", "declared")
    with pytest.raises(MeasurementError, match="is this really a fat-fraction map"):
        check_roi_fat_fractions(v, g, ["x"], "0-1000", "declared")


def test_detection_reports_the_exact_percentile_up_to_one_million_voxels():
    rng = np.random.default_rng(11)
    image = rng.uniform(0, 1000, (36, 100, 120)).astype(np.float32)  # 432,000 voxels: the golden phantoms' size
    image[0, 0, :7] = np.nan
    finite = image[np.isfinite(image)].astype(np.float64)
    hi = float(np.percentile(finite, 99.5))
    with pytest.warns(ParaspinalFatWarning) as record:
        scale, how = detect_pdff_scale(image)
    assert scale == "0-1000" and how == f"detected (99.5th percentile {hi:.4g})"
    assert f"(99.5th percentile {hi:.4g})" in str(record[0].message)


def test_integer_map_is_judged_like_its_float64_copy():
    # a PDFF map stored as integers (0-1000) is not converted as a whole: only the sample is
    image = np.random.default_rng(12).integers(0, 1001, (30, 180, 200)).astype(np.int16)
    with pytest.warns(ParaspinalFatWarning) as native:
        got = detect_pdff_scale(image)
    with pytest.warns(ParaspinalFatWarning) as copied:
        expected = detect_pdff_scale(image.astype(np.float64))
    assert got == expected and str(native[0].message) == str(copied[0].message)


@pytest.mark.parametrize("slices", [20, 40, 60])
def test_large_map_is_judged_on_a_bounded_sample_near_the_exact_percentile(slices):
    # 5.2 M - 15.7 M voxels: a sample of about 1 M voxels; its 99.5th percentile is that of the whole
    # map within sampling error (a 0-100 map with 30 % subcutaneous fat near 90 % and muscle near 8 %)
    rng = np.random.default_rng(slices)
    image = rng.normal(8.0, 3.0, (slices, 512, 512)).astype(np.float32)
    image[:, :, :150] = rng.normal(90.0, 2.0, (slices, 512, 150)).astype(np.float32)
    exact_hi = float(np.percentile(image.astype(np.float64), 99.5))
    with pytest.warns(ParaspinalFatWarning, match=r"detected as 0-100 \(99\.5th percentile 9[0-9]\.?[0-9]*\)"):
        scale, how = detect_pdff_scale(image)
    assert scale == "0-100"
    hi = float(how.split()[-1].rstrip(")"))
    assert hi == pytest.approx(exact_hi, abs=0.1)


def test_scale_range_of_a_map_with_nan_and_huge_values_is_numpys_percentile_of_the_finite_voxels():
    from ParaspinalFatLib.composition.pdff_scale import _robust_range

    image = np.random.default_rng(6).uniform(0, 100, (4, 30, 40)).astype(np.float32)
    image[0, 0, :3] = np.float32(3e38)  # huge but finite: kept
    image[1, 2, 5] = np.nan
    image[2, 3, 7] = -np.inf
    finite = image[np.isfinite(image)].astype(np.float64)
    assert _robust_range(image) == (float(np.percentile(finite, 0.5)), float(np.percentile(finite, 99.5)))
    image[1, 2, 5] = 50.0
    image[2, 3, 7] = 50.0
    assert _robust_range(image) == (float(np.percentile(image.astype(np.float64), 0.5)),
                                    float(np.percentile(image.astype(np.float64), 99.5)))

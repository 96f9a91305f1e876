"""Hounsfield-unit check of CT images (ParaspinalFatLib.composition.hounsfield): peaks, bands, refusals."""
import math

import numpy as np
import pytest

from ParaspinalFatLib.composition.ct import CtMethod
from ParaspinalFatLib.composition.hounsfield import (HU_BANDS, MAJOR_PEAK_SHARE, check_hounsfield_units,
                                                     histogram_peaks)
from ParaspinalFatLib.errors import MeasurementError


def _mixture(parts, seed=0):
    """Concatenated normal populations: (n, mean, sd) each."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(m, s, n) for n, m, s in parts])


@pytest.mark.parametrize("shift", [0.0, 1024.0, -300.0])
def test_peaks_sit_at_the_population_means(shift):
    v = _mixture([(40000, -1000 + shift, 10), (20000, -100 + shift, 15), (30000, 40 + shift, 12)])
    peaks = histogram_peaks(v)
    assert [p.position for p in peaks] == pytest.approx([-1000 + shift, -100 + shift, 40 + shift], abs=3)
    # share under the width at half prominence of the smoothed peak (Gaussian smoothing, SD 15 units):
    # +-1.1774 x sqrt(10^2 + 15^2) around the mean of N(., 10), i.e. +-2.12 SD: 96.6 % of the air voxels
    half = 1.1774 * np.hypot(10.0, 15.0) / 10.0
    assert peaks[0].share == pytest.approx(40000 / 90000 * math.erf(half / math.sqrt(2.0)), abs=0.005)
    assert all(p.share >= MAJOR_PEAK_SHARE for p in peaks)


def test_minor_and_noise_peaks_are_not_major():
    v = _mixture([(50000, 40, 12), (1000, 700, 20)])  # 2 % cortical bone: not a major peak
    assert [p.position for p in histogram_peaks(v)] == pytest.approx([40], abs=3)
    flat = np.random.default_rng(1).integers(-300, 300, 200000).astype(float)  # a plateau: one peak, its middle
    peaks = histogram_peaks(flat)
    assert len(peaks) == 1 and abs(peaks[0].position) < 10 and peaks[0].share > 0.9


def test_bands_are_the_documented_ones():
    assert HU_BANDS == ((-1100.0, -600.0), (-200.0, 300.0))


@pytest.mark.parametrize("extra", [
    [],                                          # body only
    [(30000, -1000, 10)],                        # with air
    [(30000, -1000, 10), (20000, -3024, 0)],     # padding outside the field of view
    [(30000, -1000, 10), (3000, 3071, 0)],       # saturated metal (7 % of the voxels: a spike, set aside)
    [(20000, -850, 40)],                         # lung
])
def test_hu_images_pass(extra):
    v = _mixture([(20000, -100, 15), (40000, 40, 12)] + extra, seed=2)
    peaks = check_hounsfield_units(v.reshape(1, 1, -1))
    assert peaks and all(any(lo <= p.position < hi for lo, hi in HU_BANDS) for p in peaks)


@pytest.mark.parametrize("scale,offset", [(1, 1024), (0.5, 512), (2, 2048), (0.5, -512)])
def test_rescaled_images_are_refused(scale, offset):
    v = _mixture([(30000, -1000, 10), (20000, -100, 15), (40000, 40, 12)], seed=3) * scale + offset
    with pytest.raises(MeasurementError, match="img: not a CT in Hounsfield units"):
        check_hounsfield_units(v.reshape(1, 1, -1), "img")


def test_too_few_voxels_give_no_verdict_and_padding_only_is_refused():
    assert check_hounsfield_units(np.full((2, 2, 2), 5000.0)) == []
    with pytest.raises(MeasurementError, match="100 % of the voxels are below -1100"):
        check_hounsfield_units(np.full((10, 10, 20), -3024.0), "img")
    with pytest.raises(MeasurementError, match=r"the values span only 0\.1..0\.1"):
        check_hounsfield_units(np.full((10, 10, 20), 0.1), "img")


def test_ct_method_checks_the_image_unless_told_not_to():
    raw = _mixture([(30000, 24, 10), (20000, 924, 15), (40000, 1064, 12)]).reshape(1, 1, -1)
    with pytest.raises(MeasurementError, match="ct.nrrd: not a CT"):
        CtMethod.from_options(image=raw, source="ct.nrrd")
    assert CtMethod.from_options(image=raw, ct_units_check=False).params["ct_units_check"] is False
    assert "ct_units_check" not in CtMethod.from_options(image=raw - 1024).params


def test_an_int16_ct_is_judged_like_its_float64_copy():
    # the pipeline keeps an integer CT in its own type: the check converts only its sample
    rng = np.random.default_rng(21)
    image = np.full((40, 160, 160), -1000, np.int16)
    image[:, 30:130, 30:130] = -100
    image[:, 50:110, 50:110] = np.round(rng.normal(40, 15, (40, 60, 60))).astype(np.int16)
    got = check_hounsfield_units(image)
    assert got == check_hounsfield_units(image.astype(np.float64))
    assert [round(p.position / 10) * 10 for p in got] == [-1000, -100, 40]
    raw = (image.astype(np.int32) + 1024).astype(np.uint16)  # stored values, rescale not applied
    with pytest.raises(MeasurementError, match="not a CT in Hounsfield units"):
        check_hounsfield_units(raw)


@pytest.mark.parametrize("width", [5.0, 0.37, 1e-3, 7.3, 1.0 / 3])
def test_bin_counts_equal_numpy_histogram_on_edges_and_outside_values(width):
    """The unsorted bin count gives numpy.histogram's counts exactly (oracle), including
    values on an edge, one ulp either side of it, on the closed last edge, and outside."""
    from ParaspinalFatLib.composition.hounsfield import _counts_in_bins

    rng = np.random.default_rng(int(width * 1000))
    for n in (1, 7, 400):
        lo = float(rng.uniform(-2000, 100))
        edges = np.arange(np.floor(lo / width) * width, lo + n * width + width, width)
        on_edges = rng.choice(edges, size=5000)
        near = np.concatenate([on_edges, np.nextafter(on_edges, -np.inf), np.nextafter(on_edges, np.inf)])
        spread = rng.uniform(edges[0] - 3 * width, edges[-1] + 3 * width, size=5000)
        integers = rng.integers(-2100, 2100, size=5000).astype(float)
        for v in (near, spread, integers, np.array([edges[-1]]), np.array([])):
            assert np.array_equal(_counts_in_bins(v, edges), np.histogram(v, edges)[0])

"""Is a CT image in Hounsfield units?  Checked from the image's own histogram.

A CT stored as raw detector values (DICOM ``RescaleSlope``/``RescaleIntercept``
not applied, e.g. HU + 1024 as unsigned 0-4095, or slope 2 / 0.5) would be
measured as if it were HU: muscle reads ~+1060 "HU", every voxel falls outside
both windows and the fat ratio is 0.  :func:`check_hounsfield_units` refuses
such an image before anything is measured.

The rule (:func:`histogram_peaks`, then :func:`check_hounsfield_units`)
-----------------------------------------------------------------------
Tissues of a CT form peaks of the histogram at fixed places on the HU scale:
air near -1000 (lung -900..-600), fat near -100, muscle and other soft tissue
near +40 (up to ~+250 for contrast-enhanced organs or trabecular bone).  No
tissue forms a *major* peak between -600 and -200 HU or above +300 HU (cortical
bone and metal are a small share of a lumbar CT).  So:

1. Voxels below -1100 (outside the scanner's field of view: padding -1024 ...
   -3024) and a spike at the image maximum (saturated metal/bone) are set
   aside.  Fewer than 1000 voxels left: no verdict (too little to judge).
2. The rest is histogrammed (5-unit bins, Gaussian smoothing, sigma 15 units).
   A peak is *major* when its prominence is at least 5 x the square root of
   its height (not a counting-noise wiggle) and the voxels under it (within
   its width at half prominence) are at least :data:`MAJOR_PEAK_SHARE` (5 %)
   of the voxels.  Its position is the centre of that width (for a plateau,
   e.g. uniformly spread values, its middle).
3. Every major peak must lie in an HU tissue band (:data:`HU_BANDS`): air/lung
   ``[-1100, -600)`` or fat-to-soft-tissue ``[-200, 300)``.  A major peak
   elsewhere -- e.g. the body of a CT stored as HU + 1024 (fat ~+920, muscle
   ~+1060), or at slope 2 (~+470/+530) -- is a refusal.
4. Values spanning less than 20 units between the 0.5th and 99.5th percentiles
   (an image normalised to 0-1) are a refusal: a CT of the body spans
   hundreds of HU.

A CT cropped to the body (no air) passes when its fat/muscle peaks sit in
HU; a CT with metal or much bone passes (the saturation spike is set aside,
bone is a minor share).  An image the rule cannot judge (too few voxels) passes.
The escape for a user who knows the data are HU is ``ct_units_check=False``
of :func:`~.factory.make_method`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

from ..errors import MeasurementError
from .base import bounded_sample, percentiles

__all__ = ['HU_BANDS', 'MAJOR_PEAK_SHARE', 'HistogramPeak', 'histogram_peaks', 'check_hounsfield_units']

#: HU ranges in which a major histogram peak of a CT may lie: air / lung, and fat .. soft tissue
#: (muscle, organs, contrast-enhanced organs, trabecular bone), half-open [low, high)
HU_BANDS: Tuple[Tuple[float, float], ...] = ((-1100.0, -600.0), (-200.0, 300.0))
#: share of the voxels under a peak (within its width at half prominence) that makes it a major peak
MAJOR_PEAK_SHARE = 0.05
# values below this are outside the field of view (padding), in HU
_PADDING_BELOW = -1100.0
# fewer voxels than this: no verdict
_MIN_VOXELS = 1000
# robust range (0.5..99.5 percentile) below which an image cannot be a CT of a body
_MIN_RANGE = 20.0
_BIN = 5.0
_SIGMA_BINS = 3.0


@dataclass(frozen=True)
class HistogramPeak:
    """A major peak of an image histogram (see the module docstring).

    Attributes
    ----------
    position : float
        Centre of the peak's width at half prominence (image units).
    low, high : float
        Ends of that width.
    share : float
        Fraction of the judged voxels within ``[low, high]``.
    """

    position: float
    low: float
    high: float
    share: float


def _judged_values(image: np.ndarray) -> Tuple[np.ndarray, int]:
    """Finite sampled voxels without padding (< -1100) and the saturation spike; and the finite count."""
    s = bounded_sample(np.asarray(image))  # at most 10**6 voxels, evenly spread (no saw-tooth)
    s = s[np.isfinite(s)]
    n_finite = int(s.size)
    s = s[s >= _PADDING_BELOW]
    if s.size:
        top = s.max()
        at_top = s == top
        if at_top.sum() >= 0.001 * s.size and top > 300.0:  # saturated metal / bone spike
            s = s[~at_top]
    return s, n_finite


def histogram_peaks(values: np.ndarray) -> List[HistogramPeak]:
    """The major peaks of the histogram of ``values``, lowest first.

    Parameters
    ----------
    values : numpy.ndarray
        Voxel values (any shape; NaN/inf must already be removed).

    Returns
    -------
    list of HistogramPeak
        Peaks whose prominence is at least 5 x the square root of their height
        and whose share of the voxels is at least :data:`MAJOR_PEAK_SHARE`.
    """
    from scipy.ndimage import gaussian_filter1d
    from scipy.signal import find_peaks, peak_widths

    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return []
    lo, hi = float(v.min()), float(v.max())
    width = max(_BIN, (hi - lo) / 4000.0)
    pad = 4 * _SIGMA_BINS * width
    edges = np.arange(np.floor((lo - pad) / width) * width, hi + pad + width, width)
    counts = _counts_in_bins(v, edges)
    smooth = gaussian_filter1d(counts.astype(np.float64), _SIGMA_BINS, mode="constant")
    idx, props = find_peaks(smooth, prominence=0.0)
    if idx.size == 0:
        return []
    keep = props["prominences"] >= 5.0 * np.sqrt(smooth[idx] + 1.0)
    idx = idx[keep]
    if idx.size == 0:
        return []
    _w, _h, left, right = peak_widths(smooth, idx, rel_height=0.5)
    out = []
    for a, b in zip(left, right):
        x_lo = float(edges[0] + (a + 0.5) * width)
        x_hi = float(edges[0] + (b + 0.5) * width)
        n = np.count_nonzero((v >= x_lo) & (v <= x_hi))  # a pass per peak: no sort of the whole sample
        share = float(n) / v.size
        if share >= MAJOR_PEAK_SHARE:
            out.append(HistogramPeak((x_lo + x_hi) / 2.0, x_lo, x_hi, share))
    return sorted(out, key=lambda p: p.position)


def _counts_in_bins(v: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``numpy.histogram(v, edges)[0]``, through numpy's equal-width path when it is exact.

    Given the edges as an array, numpy sorts the values (about 70 ms for a 2.9 M-voxel
    sample of a CT); given a bin count and a range it computes each value's bin and
    corrects it against ``numpy.linspace`` edges (about 25 ms).  The two give the same
    counts exactly when those linspace edges are ``edges`` bit for bit (5-unit bins from a
    whole-number start are), which is checked; otherwise the edges are used as given.
    """
    n_bins = edges.size - 1
    if n_bins >= 1 and np.array_equal(np.linspace(edges[0], edges[-1], n_bins + 1), edges):
        return np.histogram(v, bins=n_bins, range=(float(edges[0]), float(edges[-1])))[0]
    return np.histogram(v, edges)[0]


def _in_band(x: float) -> bool:
    return any(lo <= x < hi for lo, hi in HU_BANDS)


def _signed(x: float) -> str:
    return f"{x:+.0f}"


def check_hounsfield_units(image: np.ndarray, source: str = "image") -> List[HistogramPeak]:
    """Refuse a CT image whose values are not Hounsfield units (rule: module docstring).

    Parameters
    ----------
    image : numpy.ndarray
        The CT voxel array (the whole image, air included when present).
    source : str
        Name of the image for messages.

    Returns
    -------
    list of HistogramPeak
        The major peaks found (empty when there were too few voxels to judge).

    Raises
    ------
    MeasurementError
        The histogram contradicts HU: a major peak outside the HU tissue bands,
        values spanning less than 20 units, or almost every voxel below -1100.
        The message gives the peaks found and how to convert or declare.
    """
    v, n_finite = _judged_values(image)
    how = ("Convert the image to HU (a DICOM CT: HU = RescaleSlope x stored value + RescaleIntercept, "
           "typically 1 and -1024, i.e. subtract 1024 from a raw 0-4095 image), or use --map scalar for a map "
           "that is not a CT; if you are sure the values are HU, switch this check off "
           "(ct_units_check=False / --no-ct-units-check)")
    if n_finite >= _MIN_VOXELS and v.size < 0.1 * n_finite:
        raise MeasurementError(
            f"{source}: {100 - 100 * v.size / n_finite:.0f} % of the voxels are below -1100, i.e. below air "
            f"if the values were Hounsfield units: this is not a CT in HU. {how}."
        )
    if v.size < _MIN_VOXELS:
        return []
    p_lo, p_hi = percentiles(v, [0.5, 99.5])  # = numpy.percentile, selecting only the tails
    if p_hi - p_lo < _MIN_RANGE:
        raise MeasurementError(
            f"{source}: the values span only {p_lo:.4g}..{p_hi:.4g} (0.5-99.5 percentile); a CT of the body in "
            f"Hounsfield units spans air (-1000), fat (-100) and muscle (+40 HU): a normalised or rescaled "
            f"image? {how}."
        )
    peaks = histogram_peaks(v)
    wrong = [p for p in peaks if not _in_band(p.position)]
    if not wrong:
        return peaks
    found = ", ".join(f"{_signed(p.position)} ({100 * p.share:.0f} %)" for p in peaks)
    if len(peaks) >= 2 and peaks[-1].position - peaks[0].position >= 300.0:
        air, soft = peaks[0].position, peaks[-1].position
        slope = 1040.0 / (soft - air)
        intercept = -1000.0 - slope * air
        detail = (f"the lowest and highest peaks, read as air and soft tissue, are at ~{_signed(air)}/"
                  f"{_signed(soft)}, not at -1000/+40 HU (they fit HU = {slope:.2g} x value "
                  f"{'-' if intercept < 0 else '+'} {abs(intercept):.0f})")
    else:
        main = max(wrong, key=lambda p: p.share)
        detail = (f"the main peak (the body's fat and soft tissue?) is at ~{_signed(main.position)}, not "
                  f"between -200 and +300 HU")
    raise MeasurementError(
        f"{source}: not a CT in Hounsfield units? Its histogram peaks at {found} of the voxels; {detail}. In HU "
        f"every major peak lies in [-1100, -600) (air, lung) or [-200, +300) (fat to soft tissue), so measured "
        f"as HU its fat and muscle windows would be meaningless (a raw CT: HU + 1024 stored as 0-4095, or "
        f"RescaleSlope/RescaleIntercept not applied). {how}."
    )

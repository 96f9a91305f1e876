"""The PDFF storage scale: 0-1, 0-100 or 0-1000, detected or declared.

Vendors store proton-density fat fraction maps (IDEAL-IQ, Dixon FF maps) in one
of three scales; every output value of this library is in percent (%).  The
PDFF map kind itself is :mod:`.pdff`.
"""

from __future__ import annotations

import warnings
from typing import Optional, Tuple
import numpy as np
from ..errors import MeasurementError, ParaspinalFatWarning
from .base import bounded_sample, percentiles


__all__ = ['PDFF_SCALES', 'MIN_IMAGE_P995_PCT', 'ROI_MEAN_MAX_PCT', 'ROI_HIGH_VOXEL_PCT', 'ROI_HIGH_VOXEL_SHARE',
           'ROI_MIN_VOXELS', 'detect_pdff_scale', 'check_roi_fat_fractions', 'normalise_scale_name']

#: PDFF storage scales: name -> (full-scale value, factor that converts to %)
PDFF_SCALES = {"0-1": (1.0, 100.0), "0-100": (100.0, 1.0), "0-1000": (1000.0, 0.1)}
# A scale is accepted when the image's robust maximum (99.5th percentile) is at most
# this multiple of its full-scale value: noisy PDFF maps overshoot 100 % a little.
_OVERSHOOT = 1.5
# ...and its robust minimum (0.5th percentile) is not below -this x full scale.
_UNDERSHOOT = 0.5
# A detected scale is always reported as a warning; for 0-1 / 0-100 the wording is stronger when the
# robust maximum is below this x full scale (no near-pure fat: a larger-scale map would look the same).
_AMBIGUOUS = 0.8
#: a declared scale under which the image's 99.5th percentile is below this (%) is refused: a lumbar
#: field of view holds subcutaneous fat and marrow (PDFF 30-95 %) and even fat-free muscle has voxels of
#: several % (noise, fascia), so a whole map below 5 % is a map stored on a smaller scale
MIN_IMAGE_P995_PCT = 5.0
# ...and warned about when it is below this (%): no voxel near fat tissue (a crop of fat-poor muscle,
# or a map stored on a smaller scale: a 0-100 map declared 0-1000 puts subcutaneous fat at ~9 %)
_NO_FAT_P995_PCT = 20.0
#: an ROI whose mean voxel PDFF (%) is above this is refused: a fat fraction cannot exceed 100 %, and noise
#: around 100 % averages out within an ROI
ROI_MEAN_MAX_PCT = 105.0
#: ...and so is an ROI with at least ROI_HIGH_VOXEL_SHARE of its finite voxels above ROI_HIGH_VOXEL_PCT (%)
ROI_HIGH_VOXEL_PCT = 110.0
ROI_HIGH_VOXEL_SHARE = 0.25
#: ROIs with fewer finite voxels than this are not judged (a few noisy voxels of pure fat may exceed 105 %)
ROI_MIN_VOXELS = 20


def _robust_range(image: np.ndarray) -> Tuple[float, float]:
    """0.5th and 99.5th percentiles of the finite voxels (of the whole image up to 1 M voxels, else of a
    deterministic sample of about 1 M voxels: :func:`.base.bounded_sample`)."""
    sample = bounded_sample(image, keep_type=True)  # float32 stays float32: percentiles interpolate in float64
    finite = np.isfinite(sample)
    if not finite.all():
        sample = sample[finite]
    if sample.size == 0:
        raise MeasurementError("the PDFF image has no finite voxel")
    lo, hi = percentiles(sample, [0.5, 99.5], no_nan=True)  # = numpy.percentile, selecting only the tails
    return float(lo), float(hi)


def detect_pdff_scale(image: np.ndarray, declared: Optional[str] = None, source: str = "image", *,
                      stacklevel: int = 3) -> Tuple[str, str]:
    """Detect (or check a declared) PDFF storage scale.

    The robust maximum (99.5th percentile of finite voxels over the whole image,
    which normally contains subcutaneous fat near full scale; images above 1 M
    voxels are judged on an evenly spread sample of about 1 M voxels,
    :func:`~.base.bounded_sample`) decides: <= 1.5 ->
    ``0-1``; <= 150 -> ``0-100``; <= 1500 -> ``0-1000``.  A declared scale is
    checked against the same bounds.  A detected scale is always reported with a
    :class:`ParaspinalFatWarning`: a 0-1000 map of fat-poor tissue (no
    subcutaneous fat in the field of view) cannot be told from a 0-100 map by its
    values, so declaring the scale is the only safe choice for such data.

    Parameters
    ----------
    image : numpy.ndarray
        The PDFF voxel array.
    declared : str, optional
        ``"0-1"``, ``"0-100"``, ``"0-1000"`` (also ``"1"``, ``"100"``, ``"1000"``,
        ``"percent"``, ``"fraction"``, ``"permille"``).
    source : str
        Name of the image for messages.
    stacklevel : int, optional
        ``stacklevel`` of the detection warning (default 3: the caller of the
        function that calls this one).

    Returns
    -------
    (scale, how) : tuple of str
        Scale name and ``"declared"`` or ``"detected"``.

    Raises
    ------
    MeasurementError
        Values outside any known scale, or outside the declared one; a declared
        scale under which the whole map is below 5 %.
    """
    lo, hi = _robust_range(image)
    if declared is not None:
        scale = normalise_scale_name(declared)
        full, factor = PDFF_SCALES[scale]
        if hi > _OVERSHOOT * full or lo < -_UNDERSHOOT * full:
            raise MeasurementError(
                f"{source}: PDFF values (0.5-99.5 percentile {lo:.4g}..{hi:.4g}) do not fit the "
                f"declared scale {scale}; check --pdff-scale or that this is a fat-fraction map"
            )
        if hi * factor < MIN_IMAGE_P995_PCT:
            fits = [name for name, (f, _) in PDFF_SCALES.items() if f < full and hi <= _OVERSHOOT * f
                    and lo >= -_UNDERSHOOT * f]
            looks = fits[0] if fits else ""
            hint = (f"the values look like scale {looks} (then the 99.5th percentile is "
                    f"{hi * PDFF_SCALES[looks][1]:.3g} %): declare --pdff-scale {looks} (pdff_scale='{looks}')"
                    if looks else "is this really a fat-fraction map? Use --map scalar for other images")
            raise MeasurementError(
                f"{source}: under the declared PDFF scale {scale} the whole map is below "
                f"{MIN_IMAGE_P995_PCT:g} % (99.5th percentile {hi:.4g} = {hi * factor:.3g} %), but subcutaneous "
                f"fat and marrow are 30-95 % and even fat-free muscle has voxels of several %; {hint}"
            )
        smaller = [name for name, (f, _) in PDFF_SCALES.items()
                   if f < full and hi <= _OVERSHOOT * f and lo >= -_UNDERSHOOT * f]  # scales the data also fit
        if hi * factor < _NO_FAT_P995_PCT and smaller:
            warnings.warn(
                f"{source}: under the declared PDFF scale {scale} no part of the map reaches "
                f"{_NO_FAT_P995_PCT:g} % (99.5th percentile {hi * factor:.3g} %): subcutaneous fat (~90 %) or "
                f"marrow would; if the field of view holds them, the map is stored as {smaller[-1]} and every "
                f"fat fraction here is 10x too small (declare --pdff-scale {smaller[-1]})",
                ParaspinalFatWarning, stacklevel=stacklevel,
            )
        return scale, "declared"
    for scale, (full, _factor) in PDFF_SCALES.items():
        if hi <= _OVERSHOOT * full:
            if lo < -_UNDERSHOOT * full:
                break
            larger = [name for name, (f, _) in PDFF_SCALES.items() if f > full]
            if not larger:
                detail = ""
            elif hi < _AMBIGUOUS * full:
                detail = (f"no voxel is near pure fat (a crop without subcutaneous fat?), so a map stored "
                          f"as {' or '.join(larger)} would look the same and every fat fraction would be off "
                          f"by 10x or more")
            else:
                detail = f"a map of fat-poor tissue stored as {' or '.join(larger)} could look the same"
            warnings.warn(
                f"{source}: PDFF scale detected as {scale} (99.5th percentile {hi:.4g})"
                + (f"; {detail}" if detail else "")
                + ". Declare the scale (--pdff-scale / pdff_scale=) to be sure.",
                ParaspinalFatWarning, stacklevel=stacklevel,
            )
            return scale, f"detected (99.5th percentile {hi:.4g})"
    raise MeasurementError(
        f"{source}: PDFF values outside any known scale (0.5-99.5 percentile {lo:.4g}..{hi:.4g}; "
        f"expected 0-1, 0-100 or 0-1000): is this really a fat-fraction map? Use --map scalar "
        f"for other images, or declare the scale with --pdff-scale"
    )


def check_roi_fat_fractions(values: np.ndarray, groups: np.ndarray, labels, scale: str, how: str = "declared") -> None:
    """Refuse ROIs whose voxel fat fractions exceed 100 % beyond noise (the scale is wrong).

    A fat fraction cannot exceed 100 %.  An ROI is refused when its mean voxel
    PDFF is above :data:`ROI_MEAN_MAX_PCT` (105 %) or when at least
    :data:`ROI_HIGH_VOXEL_SHARE` (25 %) of its finite voxels are above
    :data:`ROI_HIGH_VOXEL_PCT` (110 %); ROIs with fewer than
    :data:`ROI_MIN_VOXELS` (20) finite voxels are not judged.  Noise around 100 % (pure fat,
    overshooting fits) gives ROI means near 100 % and only a few voxels above
    110 %; a 0-1000 map read as 0-100 (a fat-poor crop whose values stay below
    150, so that detection chose 0-100) gives muscle means of 30-150 % with a
    large share above 110 %.

    Parameters
    ----------
    values : numpy.ndarray
        Voxel PDFF in % (NaN/inf ignored).
    groups : numpy.ndarray of int
        Group (table row) of each voxel, ``0 .. len(labels)-1``.
    labels : sequence of str
        Name of each group for the message (segment / muscle, level).
    scale : str
        The storage scale the values were converted from.
    how : str
        ``"declared"`` or ``"detected ..."`` (how the scale was chosen).

    Raises
    ------
    MeasurementError
        Naming the first offending ROI, its mean, the scale used and the scale
        the data look like, with how to declare it.
    """
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    g = np.asarray(groups)[ok]
    v = v[ok]
    n_groups = len(labels)
    n = np.bincount(g, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(g, weights=v, minlength=n_groups) / n
        high = np.bincount(g[v > ROI_HIGH_VOXEL_PCT], minlength=n_groups) / n
    bad = np.flatnonzero((n >= ROI_MIN_VOXELS) & ((mean > ROI_MEAN_MAX_PCT) | (high >= ROI_HIGH_VOXEL_SHARE)))
    if bad.size == 0:
        return
    i = int(bad[0])
    full = PDFF_SCALES[scale][0]
    larger = [name for name, (f, _) in PDFF_SCALES.items() if f > full]
    # the smallest larger scale under which the ROI mean is a fat fraction
    target = next((name for name in larger if mean[i] * full / PDFF_SCALES[name][0] <= 100.0),
                  larger[-1] if larger else "")
    others = f" ({bad.size - 1} more ROI(s) too)" if bad.size > 1 else ""
    if target:
        ratio = PDFF_SCALES[target][0] / full
        hint = (f"the map looks stored as {target} (then this ROI's mean is {mean[i] / ratio:.3g} %): declare "
                f"--pdff-scale {target} (pdff_scale='{target}')")
    else:
        hint = "is this really a fat-fraction map? Use --map scalar for other images"
    kind = "declared" if str(how).startswith("declared") else "detected"
    raise MeasurementError(
        f"{labels[i]}: mean voxel fat fraction {mean[i]:.4g} % with {100 * high[i]:.0f} % of the voxels above "
        f"{ROI_HIGH_VOXEL_PCT:g} % under the {kind} PDFF scale {scale}{others}: a fat fraction cannot exceed "
        f"100 %, so the scale is wrong; {hint}"
    )


_SCALE_ALIASES = {
    "0-1": "0-1", "1": "0-1", "fraction": "0-1", "0..1": "0-1",
    "0-100": "0-100", "100": "0-100", "percent": "0-100", "%": "0-100", "0..100": "0-100",
    "0-1000": "0-1000", "1000": "0-1000", "permille": "0-1000", "0..1000": "0-1000",
}
def normalise_scale_name(text: str) -> str:
    """Canonical PDFF scale name for user spellings (``"100"`` -> ``"0-100"``).

    Parameters
    ----------
    text : str
        A scale name or alias (``"0-1"``, ``"fraction"``, ``"100"``, ``"%"``,
        ``"permille"``...), any case, spaces ignored.

    Returns
    -------
    str
        ``"0-1"``, ``"0-100"`` or ``"0-1000"``.

    Raises
    ------
    MeasurementError
        Unknown spelling.
    """
    key = str(text).strip().lower().replace(" ", "")
    if key not in _SCALE_ALIASES:
        raise MeasurementError(
            f"unknown PDFF scale {text!r}; use one of 0-1, 0-100, 0-1000"
        )
    return _SCALE_ALIASES[key]

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
from .base import image_sample


__all__ = ['PDFF_SCALES', 'detect_pdff_scale', 'normalise_scale_name']

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
def _robust_range(image: np.ndarray) -> Tuple[float, float]:
    """0.5th and 99.5th percentiles of the finite voxels of a strided subsample."""
    sample = image_sample(image)
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        raise MeasurementError("the PDFF image has no finite voxel")
    lo, hi = np.percentile(sample, [0.5, 99.5])
    return float(lo), float(hi)


def detect_pdff_scale(image: np.ndarray, declared: Optional[str] = None, source: str = "image", *,
                      stacklevel: int = 3) -> Tuple[str, str]:
    """Detect (or check a declared) PDFF storage scale.

    The robust maximum (99.5th percentile of finite voxels over the whole image,
    which normally contains subcutaneous fat near full scale) decides: <= 1.5 ->
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
        Values outside any known scale, or outside the declared one.
    """
    lo, hi = _robust_range(image)
    if declared is not None:
        scale = normalise_scale_name(declared)
        full = PDFF_SCALES[scale][0]
        if hi > _OVERSHOOT * full or lo < -_UNDERSHOOT * full:
            raise MeasurementError(
                f"{source}: PDFF values (0.5-99.5 percentile {lo:.4g}..{hi:.4g}) do not fit the "
                f"declared scale {scale}; check --pdff-scale or that this is a fat-fraction map"
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

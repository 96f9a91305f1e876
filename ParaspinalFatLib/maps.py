"""What the intensity image means: map kinds, units and the PDFF scale.

Map kinds
---------
``pdff``
    Proton-density fat fraction map (IDEAL-IQ, vendor Dixon FF maps).  Vendors
    store it as 0-1, 0-100 or 0-1000; the scale is detected from the image or
    declared, and every output value is in percent (%).  A voxel is *fat* when
    its PDFF is >= ``fat_threshold_pct`` (default 50 %).
``scalar``
    Any other map (CT HU, DTI FA, ADC, T2...): mean/median/SD/percentiles only,
    in the map's own unit (``unit=`` option, default empty).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from .errors import MeasurementError

__all__ = ["MapSpec", "PDFF_SCALES", "MAP_KINDS", "detect_pdff_scale", "make_map_spec", "normalise_scale_name"]

MAP_KINDS = ("pdff", "scalar")

#: PDFF storage scales: name -> (full-scale value, factor that converts to %)
PDFF_SCALES = {"0-1": (1.0, 100.0), "0-100": (100.0, 1.0), "0-1000": (1000.0, 0.1)}

# A scale is accepted when the image's robust maximum (99.5th percentile) is at most
# this multiple of its full-scale value: noisy PDFF maps overshoot 100 % a little.
_OVERSHOOT = 1.5
# ...and its robust minimum (0.5th percentile) is not below -this x full scale.
_UNDERSHOOT = 0.5


@dataclass(frozen=True)
class MapSpec:
    """How to read the image values.

    Attributes
    ----------
    kind : str
        ``"pdff"`` or ``"scalar"``.
    unit : str
        Unit of the reported mean/median/SD (``"%"`` for PDFF).
    to_output : float
        Factor applied to raw voxel values to get output units (PDFF: to %).
    pdff_scale : str or None
        ``"0-1"``, ``"0-100"`` or ``"0-1000"`` for PDFF maps.
    pdff_scale_source : str or None
        ``"declared"`` or ``"detected"``.
    fat_threshold_pct : float or None
        PDFF (%) at or above which a voxel counts as fat.
    """

    kind: str
    unit: str = ""
    to_output: float = 1.0
    pdff_scale: Optional[str] = None
    pdff_scale_source: Optional[str] = None
    fat_threshold_pct: Optional[float] = None

    @property
    def has_composition(self) -> bool:
        """True when the map separates fat from lean voxels."""
        return self.kind == "pdff"


def _robust_range(image: np.ndarray) -> Tuple[float, float]:
    """0.5th and 99.5th percentiles of the finite voxels of a strided subsample."""
    step = max(1, int(round((image.size / 2_000_000) ** (1 / 3))))
    sample = np.asarray(image[::step, ::step, ::step], dtype=np.float64).ravel()
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        raise MeasurementError("the PDFF image has no finite voxel")
    lo, hi = np.percentile(sample, [0.5, 99.5])
    return float(lo), float(hi)


def detect_pdff_scale(image: np.ndarray, declared: Optional[str] = None, source: str = "image") -> Tuple[str, str]:
    """Detect (or check a declared) PDFF storage scale.

    The robust maximum (99.5th percentile of finite voxels over the whole image,
    which normally contains subcutaneous fat near full scale) decides: <= 1.5 ->
    ``0-1``; <= 150 -> ``0-100``; <= 1500 -> ``0-1000``.  A declared scale is
    checked against the same bounds.

    Parameters
    ----------
    image : numpy.ndarray
        The PDFF voxel array.
    declared : str, optional
        ``"0-1"``, ``"0-100"``, ``"0-1000"`` (also ``"1"``, ``"100"``, ``"1000"``,
        ``"percent"``, ``"fraction"``, ``"permille"``).
    source : str
        Name of the image for messages.

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
            return scale, "detected"
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
    """Canonical PDFF scale name for user spellings (``"100"`` -> ``"0-100"``)."""
    key = str(text).strip().lower().replace(" ", "")
    if key not in _SCALE_ALIASES:
        raise MeasurementError(
            f"unknown PDFF scale {text!r}; use one of 0-1, 0-100, 0-1000"
        )
    return _SCALE_ALIASES[key]


def make_map_spec(
    kind: str,
    image: np.ndarray,
    pdff_scale: Optional[str] = None,
    fat_threshold_pct: float = 50.0,
    unit: Optional[str] = None,
    source: str = "image",
) -> MapSpec:
    """Build the :class:`MapSpec` for ``kind`` (detects the PDFF scale when needed)."""
    kind = str(kind).lower()
    if kind not in MAP_KINDS:
        raise MeasurementError(f"unknown map kind {kind!r}; use one of {', '.join(MAP_KINDS)}")
    if kind == "pdff":
        scale, how = detect_pdff_scale(image, pdff_scale, source)
        return MapSpec(
            kind="pdff",
            unit="%",
            to_output=PDFF_SCALES[scale][1],
            pdff_scale=scale,
            pdff_scale_source=how,
            fat_threshold_pct=float(fat_threshold_pct),
        )
    return MapSpec(kind="scalar", unit=unit or "", to_output=1.0)

"""PDFF maps: the voxel value is the proton-density fat fraction, reported in %.

Fat = PDFF >= ``fat_threshold_pct`` (default 50 %), else lean;
``fat_fraction_pct`` is the mean voxel PDFF.  The storage scale of the map
(0-1, 0-100 or 0-1000) is declared or detected (:mod:`.pdff_scale`) and every
value is converted to %.  An ROI whose fat fraction exceeds 100 % beyond noise
is refused (:func:`~.pdff_scale.check_roi_fat_fractions`): the scale is wrong.
"""

from __future__ import annotations

from typing import Any, ClassVar, Dict, Optional, Tuple

import numpy as np

from .base import FatFractionMethod
from .pdff_scale import PDFF_SCALES, check_roi_fat_fractions, detect_pdff_scale

__all__ = ['PdffMethod']


class PdffMethod(FatFractionMethod):
    """Composition of a PDFF map (map kind ``pdff``).

    Declares (class attributes): ``unit`` ``%``; ``columns``: the fat / lean
    split, ``fat_fraction_pct`` (mean voxel PDFF, %) and ``threshold_high``
    (the fat threshold, %).

    Parameters
    ----------
    params : dict
        ``fat_threshold_pct``, ``pdff_scale`` and ``pdff_scale_source``.
    to_output : float, optional
        Factor from the storage scale to % (``PDFF_SCALES[scale][1]``).
    pdff_scale : str, optional
        Storage scale name (``"0-1"``, ``"0-100"``, ``"0-1000"``).

    Attributes
    ----------
    to_output : float
        Factor from the storage scale to %.
    """

    kinds: ClassVar[Tuple[str, ...]] = ("pdff",)

    def __init__(self, params: Dict[str, Any], to_output: float = 1.0, pdff_scale: str = "") -> None:
        super().__init__(params)
        self.to_output = to_output
        self.pdff_scale = pdff_scale

    @classmethod
    def from_options(cls, image: np.ndarray, pdff_scale: Optional[str] = None, fat_threshold_pct: float = 50.0,
                     source: str = "image") -> "PdffMethod":
        """Build the method, detecting (or checking the declared) storage scale.

        Parameters
        ----------
        image : numpy.ndarray
            The PDFF voxel array (for the scale check).
        pdff_scale : str, optional
            Declared storage scale; detected when None.
        fat_threshold_pct : float
            Fat threshold in %.
        source : str
            Name of the image for messages.

        Returns
        -------
        PdffMethod
        """
        # the warning of a detected scale points at the caller of make_method
        scale, how = detect_pdff_scale(image, pdff_scale, source, stacklevel=4)
        return cls({"fat_threshold_pct": float(fat_threshold_pct), "pdff_scale": scale, "pdff_scale_source": how},
                   to_output=PDFF_SCALES[scale][1], pdff_scale=scale)

    def voxel_values(self, raw: np.ndarray, water: Optional[np.ndarray] = None) -> np.ndarray:
        """Voxel PDFF in % (float64).

        Parameters
        ----------
        raw : numpy.ndarray
            Gathered PDFF values in the storage scale.
        water : numpy.ndarray, optional
            Not used.

        Returns
        -------
        numpy.ndarray of float64
        """
        return raw.astype(np.float64, copy=False) * self.to_output

    def _assign_classes(self, values, finite, groups, context, codes, low, high, notes) -> None:
        labels = context.labels if context.labels is not None else [f"the {n} ROI" for n in context.names]
        check_roi_fat_fractions(values, groups, labels, self.pdff_scale or "0-100",
                                str(self.params.get("pdff_scale_source", "declared")))
        super()._assign_classes(values, finite, groups, context, codes, low, high, notes)

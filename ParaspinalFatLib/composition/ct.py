"""CT in Hounsfield units: fat window, muscle (lean) window, everything else undefined.

Windows are half-open ``[low, high)``; the defaults are the literature's integer
windows -190..-30 HU (fat) and -29..150 HU (skeletal muscle).
``mean_muscle_window`` is the mean HU of the lean voxels; ``myosteatosis``
flags it below ``myosteatosis_cutoff_hu`` when that cut-off is given (e.g. 41
HU, Martin 2013, BMI < 25) -- a parameter, never built in.

Given the image, :meth:`CtMethod.from_options` first checks that its values are
Hounsfield units (:func:`~.hounsfield.check_hounsfield_units`): a raw CT
(HU + 1024, rescale slope/intercept not applied) is refused, never graded.
"""

from __future__ import annotations

from typing import Any, ClassVar, Dict, Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError
from .base import FAT, LEAN, SPLIT_COLUMNS, UNDEFINED, VALUE_STATISTICS, CompositionMethod
from .hounsfield import check_hounsfield_units

__all__ = ['CT_FAT_WINDOW', 'CT_MUSCLE_WINDOW', 'CtMethod']

#: default CT windows, half-open [low, high) in HU: the literature's integer windows
#: -190..-30 HU (fat) and -29..150 HU (skeletal muscle)
CT_FAT_WINDOW = (-190.0, -29.0)
CT_MUSCLE_WINDOW = (-29.0, 151.0)


class CtMethod(CompositionMethod):
    """Composition of a CT image by HU windows (map kind ``ct``).

    Declares (class attributes): ``unit`` ``HU``; ``columns``: the fat / lean /
    undefined split, ``mean_muscle_window`` (HU) and ``myosteatosis`` (0/1;
    filled only with ``myosteatosis_cutoff_hu``).  ``params``:
    ``fat_window``, ``muscle_window``, ``myosteatosis_cutoff_hu``.
    """

    kinds: ClassVar[Tuple[str, ...]] = ("ct",)
    columns: ClassVar[Tuple[str, ...]] = SPLIT_COLUMNS + ("mean_muscle_window", "myosteatosis")
    value_columns: ClassVar[Tuple[str, ...]] = VALUE_STATISTICS + ("mean_muscle_window",)
    unit: str = "HU"

    @classmethod
    def from_options(cls, fat_window: Sequence[float] = CT_FAT_WINDOW,
                     muscle_window: Sequence[float] = CT_MUSCLE_WINDOW,
                     myosteatosis_cutoff_hu: Optional[float] = None, image: Optional[np.ndarray] = None,
                     source: str = "image", ct_units_check: bool = True) -> "CtMethod":
        """Build the method from checked, non-overlapping windows and a checked image.

        Parameters
        ----------
        fat_window, muscle_window : (low, high)
            HU windows, half-open ``[low, high)``.
        myosteatosis_cutoff_hu : float, optional
            Flag ``myosteatosis`` when the muscle-window mean HU is below it.
        image : numpy.ndarray, optional
            The CT voxel array: checked to be in Hounsfield units
            (:func:`~.hounsfield.check_hounsfield_units`) unless
            ``ct_units_check`` is False.  Not checked when None.
        source : str
            Name of the image for messages.
        ct_units_check : bool
            False: skip the Hounsfield-unit check (the user knows the values are
            HU); recorded in ``params`` as ``"ct_units_check": false``.

        Returns
        -------
        CtMethod

        Raises
        ------
        InputError
            Invalid or overlapping windows.
        MeasurementError
            The image is not in Hounsfield units (the message says what was
            found and how to convert).
        """
        fw, mw = _window(fat_window, "fat_window"), _window(muscle_window, "muscle_window")
        if fw[1] > mw[0] and mw[1] > fw[0]:
            raise InputError(f"CT fat window {fw} and muscle window {mw} overlap")
        params: Dict[str, Any] = {"fat_window": fw, "muscle_window": mw,
                                  "myosteatosis_cutoff_hu": myosteatosis_cutoff_hu}
        if not ct_units_check:
            params["ct_units_check"] = False
        elif image is not None:
            check_hounsfield_units(image, source)
        return cls(params)

    @property
    def filled_columns(self) -> Tuple[str, ...]:
        """The columns filled with these parameters (``myosteatosis`` needs the cut-off)."""
        cols = super().filled_columns
        if self.params.get("myosteatosis_cutoff_hu") is None:
            cols = tuple(c for c in cols if c != "myosteatosis")
        return cols

    def _assign_classes(self, values, finite, groups, context, codes, low, high, notes) -> None:
        f_lo, f_hi = self.params["fat_window"]
        m_lo, m_hi = self.params["muscle_window"]
        v = values[finite]
        c = np.full(v.shape, UNDEFINED, dtype=np.int8)
        c[(v >= f_lo) & (v < f_hi)] = FAT
        c[(v >= m_lo) & (v < m_hi)] = LEAN
        codes[finite] = c

    def _extra(self, groups, n_groups, values, raw, water, codes) -> Dict[str, np.ndarray]:
        lean = codes == LEAN
        n = np.bincount(groups[lean], minlength=n_groups)
        with np.errstate(invalid="ignore", divide="ignore"):
            mw = np.bincount(groups[lean], weights=values[lean], minlength=n_groups) / n
        mw[n == 0] = np.nan
        cutoff = self.params.get("myosteatosis_cutoff_hu")
        if cutoff is None:
            flag = np.full(n_groups, np.nan)
        else:
            flag = np.where(np.isfinite(mw), (mw < float(cutoff)).astype(float), np.nan)
        return {"mean_muscle_window": mw, "myosteatosis": flag}


def _window(w, name) -> Tuple[float, float]:
    try:
        lo, hi = (float(x) for x in w)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be two numbers (low, high), got {w!r}") from None
    if not lo < hi:
        raise InputError(f"{name} must have low < high, got {w!r}")
    return lo, hi

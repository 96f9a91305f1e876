"""Build the composition method of a map kind from the user's options.

One class per map kind, each in its own module: ``pdff``
(:class:`~.pdff.PdffMethod`), ``dixon`` (:class:`~.dixon.DixonMethod`), ``ct``
(:class:`~.ct.CtMethod`), ``t1``/``t2`` (:class:`~.intensity.IntensityMethod`),
``scalar`` (:class:`~.scalar.ScalarMethod`).  :func:`make_method` checks the
kind and hands the options that kind uses to its class.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple, Type

import numpy as np

from ..errors import InputError
from .base import CompositionMethod
from .ct import CT_FAT_WINDOW, CT_MUSCLE_WINDOW, CtMethod
from .dixon import DixonMethod
from .intensity import IntensityMethod
from .pdff import PdffMethod
from .scalar import ScalarMethod

__all__ = ['METHOD_CLASSES', 'MAP_KINDS', 'make_method']

#: the composition method classes, one per map kind (``t1`` and ``t2`` share one)
METHOD_CLASSES: Tuple[Type[CompositionMethod], ...] = (PdffMethod, DixonMethod, CtMethod, IntensityMethod,
                                                       ScalarMethod)
#: every map kind: ``pdff``, ``dixon``, ``ct``, ``t1``, ``t2``, ``scalar``
MAP_KINDS: Tuple[str, ...] = tuple(kind for cls in METHOD_CLASSES for kind in cls.kinds)


def make_method(
    kind: str,
    image: np.ndarray,
    water: Optional[np.ndarray] = None,
    *,
    pdff_scale: Optional[str] = None,
    fat_threshold_pct: float = 50.0,
    unit: Optional[str] = None,
    noise_floor: Optional[float] = None,
    noise_floor_fraction: float = 0.02,
    fat_window: Sequence[float] = CT_FAT_WINDOW,
    muscle_window: Sequence[float] = CT_MUSCLE_WINDOW,
    myosteatosis_cutoff_hu: Optional[float] = None,
    classifier: str = "gmm",
    n_classes: int = 3,
    reference_segment: Optional[str] = None,
    classifier_params: Optional[Dict[str, Any]] = None,
    source: str = "image",
    ct_units_check: bool = True,
) -> CompositionMethod:
    """Build the :class:`~.base.CompositionMethod` for ``kind`` from its options.

    Options that ``kind`` does not use are ignored.

    Parameters
    ----------
    kind : str
        One of :data:`MAP_KINDS` (any case).
    image : numpy.ndarray
        The (fat, for Dixon) image array, for scale/noise detection.
    water : numpy.ndarray, optional
        Dixon water image array.
    pdff_scale, fat_threshold_pct
        PDFF storage scale (detected when None) and the fat threshold (%), also
        used for Dixon voxel FF.
    unit : str, optional
        Unit of a scalar or T1/T2 map.
    noise_floor : float, optional
        Dixon: absolute F + W below which a voxel is excluded.  Default:
        ``noise_floor_fraction`` x the 99.5th percentile of F + W over the image.
    noise_floor_fraction : float
        See ``noise_floor``.
    fat_window, muscle_window : (low, high)
        CT windows in HU, half-open ``[low, high)``.
    myosteatosis_cutoff_hu : float, optional
        CT: flag ``myosteatosis`` when the muscle-window mean HU is below it
        (e.g. 41 HU, Martin 2013, BMI < 25) -- a parameter, never built in.
    classifier, n_classes, reference_segment, classifier_params
        T1/T2: ``gmm`` (default, 3 classes), ``kmeans``, ``otsu``, ``fcm`` or
        ``reference`` (threshold from the reference fat segment's voxels).
    source : str
        Name of the image for messages (PDFF scale, CT units).
    ct_units_check : bool
        CT: check from the image's histogram that its values are Hounsfield
        units (:mod:`.hounsfield`; default True).  False only when the user
        knows the values are HU; recorded in ``method_params``.

    Returns
    -------
    CompositionMethod
        The instance of the kind's class.

    Raises
    ------
    InputError
        Unknown kind or classifier, Dixon without water image, invalid or
        overlapping CT windows, ``reference`` without a reference segment.
    MeasurementError
        A PDFF map outside its (declared or any) scale; a CT image whose values
        are not Hounsfield units.
    """
    kind = str(kind).lower()
    if kind not in MAP_KINDS:
        raise InputError(f"unknown map kind {kind!r}; use one of {', '.join(MAP_KINDS)}")
    if kind == "pdff":
        return PdffMethod.from_options(image, pdff_scale, fat_threshold_pct, source)
    if kind == "dixon":
        return DixonMethod.from_options(image, water, fat_threshold_pct, noise_floor, noise_floor_fraction)
    if kind == "ct":
        return CtMethod.from_options(fat_window, muscle_window, myosteatosis_cutoff_hu, image=image, source=source,
                                     ct_units_check=ct_units_check)
    if kind in IntensityMethod.kinds:
        return IntensityMethod.from_options(kind, classifier, n_classes, reference_segment, classifier_params, unit)
    return ScalarMethod(unit=unit or "")

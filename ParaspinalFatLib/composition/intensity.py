"""T1- / T2-weighted MRI: no quantitative map, so each row's voxels are split by intensity.

Per table row the intensity threshold(s) are fitted to the row's voxels by a
classifier of :mod:`.classifiers` (GMM, k-means, Otsu, fuzzy C-means or a
reference fat ROI) and applied; a row that cannot be fitted keeps its voxels
unclassified with a warning.  Every classifier splits an ROI into the classes it
is asked for, whatever the data, so every row is checked with one shared rule
(:func:`~.classifiers.class_support`, :func:`class_support_note`): a row whose
intensities do not show ``n_classes`` populations gets a row warning (e.g. two
populations read with 3 classes: the middle class cuts into one of them and
the fat area may be halved).  The psoas always gets a warning: intensity
thresholding is unreliable there.
"""

from __future__ import annotations

from typing import Any, ClassVar, Dict, Optional, Tuple

import numpy as np

from ..errors import InputError, MeasurementError
from .base import SPLIT_COLUMNS, THRESHOLD_COLUMNS, VALUE_STATISTICS, CompositionMethod
from .classifiers import BIC_MIN_GAIN, METHODS, class_support, classify, fit_thresholds

__all__ = ['BIC_MIN_GAIN', 'IntensityMethod', 'overlap_note', 'class_support_note']

# the part of a gmm fit message that the class-support note repeats
_GMM_OVERLAP = "overlap (Ashman's D"


class IntensityMethod(CompositionMethod):
    """Per-row intensity classification of a T1/T2-weighted image (map kinds ``t1``, ``t2``).

    Declares (class attributes): ``unit`` ``a.u.`` unless the user gives one;
    ``columns``: the fat / lean / undefined split and ``threshold_low`` /
    ``threshold_high`` (the row's fitted thresholds, in ``unit``;
    ``threshold_low`` only with 3 classes).  ``params``: ``classifier``,
    ``n_classes``, ``reference_segment`` (reference classifier) and the
    classifier's own parameters.
    """

    kinds: ClassVar[Tuple[str, ...]] = ("t1", "t2")
    columns: ClassVar[Tuple[str, ...]] = SPLIT_COLUMNS + THRESHOLD_COLUMNS
    value_columns: ClassVar[Tuple[str, ...]] = VALUE_STATISTICS + THRESHOLD_COLUMNS
    unit: str = "a.u."

    @classmethod
    def from_options(cls, kind: str, classifier: str = "gmm", n_classes: int = 3,
                     reference_segment: Optional[str] = None, classifier_params: Optional[Dict[str, Any]] = None,
                     unit: Optional[str] = None) -> "IntensityMethod":
        """Build the method from checked classifier options.

        Parameters
        ----------
        kind : str
            ``"t1"`` or ``"t2"``.
        classifier : str
            ``gmm`` (default), ``kmeans``, ``otsu``, ``fcm`` or ``reference``.
        n_classes : int
            2 or 3 (forced to 2 for ``otsu`` and ``reference``).
        reference_segment : str, optional
            Name of the reference fat segment (required by ``reference``).
        classifier_params : dict, optional
            Further parameters of :func:`~.classifiers.fit_thresholds`.
        unit : str, optional
            Unit of the intensities (default ``a.u.``).

        Returns
        -------
        IntensityMethod
        """
        classifier = str(classifier).lower()
        if classifier not in METHODS:
            raise InputError(f"unknown classifier {classifier!r}; use gmm, kmeans, otsu, fcm or reference")
        if classifier == "reference" and not reference_segment:
            raise InputError("classifier 'reference' needs the name of a reference fat segment "
                             "(--reference-segment, e.g. subcutaneous_fat)")
        if classifier in ("otsu", "reference"):
            n_classes = 2  # two-class methods
        params: Dict[str, Any] = {"classifier": classifier, "n_classes": int(n_classes)}
        if reference_segment:
            params["reference_segment"] = reference_segment
        params.update(classifier_params or {})
        return cls(params, kind=kind, unit=unit or cls.unit)

    @property
    def filled_columns(self) -> Tuple[str, ...]:
        """The columns filled with these parameters (``threshold_low`` needs 3 classes)."""
        cols = super().filled_columns
        if self.params.get("n_classes") != 3:
            cols = tuple(c for c in cols if c != "threshold_low")
        return cols

    def _assign_classes(self, values, finite, groups, context, codes, low, high, notes) -> None:
        n_groups = len(low)
        order = np.argsort(groups, kind="stable")
        bounds = np.searchsorted(groups[order], np.arange(n_groups + 1))
        method = self.params["classifier"]
        kwargs = {k: v for k, v in self.params.items() if k not in ("classifier", "n_classes", "reference_segment")}
        for g in range(n_groups):
            idx = order[bounds[g]: bounds[g + 1]]
            idx = idx[finite[idx]]
            if idx.size == 0:
                continue
            ref = None
            if method == "reference":
                ref = context.reference_values[g] if context.reference_values else None
                if ref is None or np.size(ref) == 0:
                    notes[g].append(
                        f"reference fat segment '{self.params.get('reference_segment')}' has no voxel "
                        f"on this row's slices: not classified"
                    )
                    continue
            try:
                th = fit_thresholds(values[idx], method=method, n_classes=self.params["n_classes"],
                                    reference=ref, **kwargs)
            except MeasurementError as exc:
                notes[g].append(f"not classified: {exc}")
                continue
            codes[idx] = classify(values[idx], th)
            t = tuple(th.thresholds)
            low[g] = t[0] if len(t) == 2 else np.nan
            high[g] = t[-1]
            support = class_support_note(values[idx], th.n_classes, method)
            message = th.message
            if support and message:  # the support note says it (and with the rule's numbers)
                message = "; ".join(p for p in message.split("; ") if _GMM_OVERLAP not in p)
            if message:
                notes[g].append(message)
            if support:
                notes[g].append(support)
        for g, name in enumerate(context.names):
            if name in ("psoas", "iliopsoas"):
                notes[g].append(
                    f"{name} on {self.kind.upper()}: intensity thresholding is unreliable in the "
                    f"psoas (published); prefer a PDFF/Dixon map"
                )


def class_support_note(values: np.ndarray, n_classes: int, method: str) -> str:
    """Row warning when an ROI's intensities do not support the ``n_classes`` it was split into.

    The same rule for every classifier (gmm, kmeans, otsu, fcm, reference):
    :func:`~.classifiers.class_support` counts the populations the data
    support (Gaussian mixtures by BIC gain >= :data:`BIC_MIN_GAIN` and
    Ashman's D >= :data:`~.classifiers.ASHMAN_D_MIN`); fewer than
    ``n_classes`` gives a warning:

    * one population: ``"<method>: the intensities show no clearly separate fat
      population (...)"`` -- the split of a single tissue is arbitrary, the fat
      area may be spurious (``reference``: it rests on the reference ROI's
      threshold alone);
    * two populations, three classes: ``"<method>: the intensities show 2
      populations, not the 3 classes asked for (...)"`` -- the middle
      ("undefined") class cuts into a real population, the fat area may be too
      small; use ``n_classes=2``.

    Parameters
    ----------
    values : numpy.ndarray
        The ROI's voxel values (NaN/inf ignored).
    n_classes : int
        Number of classes the classifier was asked for (2 or 3).
    method : str
        The classifier (named in the message).

    Returns
    -------
    str
        The warning, or ``""`` when the data support ``n_classes`` or there
        are too few voxels to judge.
    """
    n_classes = int(n_classes)
    sup = class_support(values, max_classes=n_classes)
    if sup.n_voxels == 0 or sup.n_supported >= n_classes:
        return ""
    if sup.n_supported == 1:
        if method == "reference":
            consequence = ("the fat area rests on the reference ROI's threshold alone: check that this ROI really "
                           "holds no fat (or only fat)")
        else:
            consequence = (f"the {n_classes} classes split a single tissue, so the fat area may be spurious; "
                           f"use the reference method, or check the histogram")
        return (f"{method}: the intensities show no clearly separate fat population ({sup.evidence(2)}); "
                f"{consequence}")
    return (f"{method}: the intensities show {sup.n_supported} populations, not the {n_classes} classes asked for "
            f"({sup.evidence(n_classes)}); the middle ('undefined') class cuts into a real population, so the fat "
            f"area may be too small: use n_classes={sup.n_supported}")


def overlap_note(values: np.ndarray, method: str) -> str:
    """Warn when an ROI split into two classes shows no separate fat population.

    :func:`class_support_note` with ``n_classes=2`` (kept for callers of the
    two-class check): two tissue populations are supported only when a
    2-component Gaussian mixture beats a single Gaussian by BIC (gain >=
    :data:`BIC_MIN_GAIN`, "very strong" evidence) *and* its components are
    separated (Ashman's D >= :data:`~.classifiers.ASHMAN_D_MIN`).

    Parameters
    ----------
    values : numpy.ndarray
        The ROI's voxel values (NaN/inf ignored).
    method : str
        The classifier that split the ROI (named in the message).

    Returns
    -------
    str
        A warning text when either check fails, else ``""``.
    """
    return class_support_note(values, 2, method)

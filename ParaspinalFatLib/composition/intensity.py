"""T1- / T2-weighted MRI: no quantitative map, so each row's voxels are split by intensity.

Per table row the intensity threshold(s) are fitted to the row's voxels by a
classifier of :mod:`.classifiers` (GMM, k-means, Otsu, fuzzy C-means or a
reference fat ROI) and applied; a row that cannot be fitted keeps its voxels
unclassified with a warning.  k-means, Otsu and FCM always split an ROI, so
their rows are checked for a real second population (:func:`overlap_note`).
The psoas always gets a warning: intensity thresholding is unreliable there.
"""

from __future__ import annotations

from typing import Any, ClassVar, Dict, Optional, Tuple

import numpy as np

from ..errors import InputError, MeasurementError
from .base import SPLIT_COLUMNS, THRESHOLD_COLUMNS, VALUE_STATISTICS, CompositionMethod
from .classifiers import ASHMAN_D_MIN, METHODS, classify, fit_thresholds

__all__ = ['BIC_MIN_GAIN', 'IntensityMethod', 'overlap_note']

#: BIC difference (1 Gaussian minus 2-component mixture) below which two populations are not supported
BIC_MIN_GAIN = 10.0


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
            if th.message:
                notes[g].append(th.message)
            elif method in ("kmeans", "otsu", "fcm"):
                overlap = overlap_note(values[idx], method)
                if overlap:
                    notes[g].append(overlap)
        for g, name in enumerate(context.names):
            if name in ("psoas", "iliopsoas"):
                notes[g].append(
                    f"{name} on {self.kind.upper()}: intensity thresholding is unreliable in the "
                    f"psoas (published); prefer a PDFF/Dixon map"
                )


def overlap_note(values: np.ndarray, method: str) -> str:
    """Warn when an ROI split by k-means, Otsu or FCM shows no separate fat population.

    Those methods always split an ROI, even one holding only muscle.  Two tissue
    populations are supported only when a 2-component Gaussian mixture beats a
    single Gaussian by BIC (gain >= :data:`BIC_MIN_GAIN`, "very strong"
    evidence) *and* its components are separated (Ashman's D >=
    :data:`~.classifiers.ASHMAN_D_MIN`).

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
    from scipy import stats as sps

    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    try:
        gmm = fit_thresholds(v, method="gmm", n_classes=2)
    except MeasurementError:
        return ""
    means, sds, weights = (np.asarray(x, dtype=float) for x in (gmm.class_means, gmm.class_sds, gmm.class_weights))
    if v.size < 3 or np.any(sds <= 0) or v.std() == 0:
        return ""
    ll1 = float(np.sum(sps.norm.logpdf(v, v.mean(), v.std())))
    dens = sum(w * sps.norm.pdf(v, m, s) for w, m, s in zip(weights, means, sds))
    ll2 = float(np.sum(np.log(np.maximum(dens, np.finfo(float).tiny))))
    gain = (-2 * ll1 + 2 * np.log(v.size)) - (-2 * ll2 + 5 * np.log(v.size))
    d = np.sqrt(2.0) * abs(means[-1] - means[0]) / float(np.hypot(sds[0], sds[-1]))
    if gain < BIC_MIN_GAIN or d < ASHMAN_D_MIN:
        return (f"{method}: the intensities show no clearly separate fat population (2-Gaussian mixture vs one "
                f"Gaussian: BIC gain {gain:.1f} (needs >= {BIC_MIN_GAIN:g}), Ashman's D {d:.2f} (needs >= "
                f"{ASHMAN_D_MIN:g})); the fat area may be spurious")
    return ""

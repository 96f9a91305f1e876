"""Fat / lean classification of the voxels of ONE ROI on T1- or T2-weighted MRI.

Without a quantitative fat map the voxels of a muscle ROI are split by signal
intensity: fat is bright on both T1- and T2-weighted (fast) spin-echo images,
muscle is dark.  :func:`fit_thresholds` finds the intensity threshold(s) of one
ROI, :func:`classify` applies them.  Everything here is pure numpy.

Methods (``method=``)
---------------------
``"gmm"``
    1-D Gaussian mixture with 2 or 3 components, fitted by EM (Dempster, Laird
    & Rubin 1977).  Deterministic start from the exact k-means partition.  The
    class boundaries are the points where the posteriors of adjacent
    components (sorted by mean) are equal; see *GMM boundary* below.
``"kmeans"``
    Exact (globally optimal) 1-D k-means, 2 or 3 clusters, by dynamic
    programming over the sorted values (Wang & Song 2011, *Ckmeans.1d.dp*, The
    R Journal 3(2):29-33; monotone split points, Gronlund et al. 2017,
    arXiv:1701.07204).  No random start, no local optimum.  Boundaries at the
    midpoints of adjacent centroids.
``"otsu"``
    Otsu's method (Otsu 1979, IEEE Trans. Syst. Man Cybern. 9(1):62-66): the
    threshold(s) maximising the between-class variance; 2 classes, or 3
    (multi-level Otsu, Liao, Chen & Chung 2001, J. Inf. Sci. Eng. 17:713-727).
    ``bins=None`` (default) is exact: every distinct intensity is a histogram
    level, as in Otsu's paper for integer-valued images, and the threshold is
    the midpoint between the two adjacent distinct values where the classes
    split.  ``bins=<int>`` uses that many equal-width bins over
    ``[min, max]`` (256 reproduces the usual 8-bit implementations, e.g.
    scikit-image ``threshold_otsu``), bin centres as the bin values, and the
    threshold is the edge above the last bin of the lower class (the first
    maximiser, as those implementations choose).  Maximising the between-class
    variance is minimising the within-class sum of squares, so exact Otsu
    splits the ROI's voxels exactly as exact k-means does; only the threshold
    position between the two classes differs (Otsu: between the adjacent
    data values; k-means: midpoint of the centroids).
``"fcm"``
    Fuzzy C-means (Bezdek 1981, *Pattern Recognition with Fuzzy Objective
    Function Algorithms*), fuzzifier ``m`` (default 2), 2 or 3 clusters,
    started from the exact k-means centroids.  Boundaries where adjacent
    memberships are equal, which is exactly the midpoint of the two centres
    for any ``m``; see *FCM boundary* below.
``"reference"``
    Threshold from a reference fat ROI of the same image (usually
    subcutaneous fat), 2 classes only.  ``rule="mean_minus_k_sd"`` (default):
    fat if ``value >= mean_ref - k * sd_ref`` (``k`` default 2, sample SD);
    ``rule="fraction_of_mean"``: fat if ``value >= fraction * mean_ref``
    (``fraction`` default 0.5).  Threshold-based fat quantification on
    conventional T1/T2 images with operator- or reference-defined cut-offs is
    reviewed in "Imaging evaluation of fat infiltration in paraspinal muscles
    on MRI: a systematic review with a focus on methodology" (PubMed Central
    PMC8274185); published cut-offs differ between studies, so ``k`` and
    ``fraction`` are study parameters: report the value used (it is stored in
    :attr:`TissueThresholds.params`).  The defaults are conventions of this
    library (2 SD: ~97.7 % of a normal fat distribution lies above the
    threshold), not validated clinical constants.

Conventions
-----------
* Input: the ROI's voxel values in any shape (flattened; order is
  irrelevant).  NaN and +/-inf are ignored (as in
  :func:`ParaspinalFatLib.groupstats.grouped_stats`) and counted in
  ``params["n_nonfinite_ignored"]``.
* ONE half-open convention everywhere, so that class counts, percentages and
  areas agree: ``lean = value < t_low``; ``undefined = t_low <= value <
  t_high`` (3 classes); ``fat = value >= t_high``.  With 2 classes
  ``fat = value >= t``.  A value exactly on a threshold belongs to the
  brighter class.
* Codes returned by :func:`classify` (``int8``), the class codes of
  :mod:`.base`: ``0`` lean (:data:`~.base.LEAN`), ``1`` undefined / partial
  volume (:data:`~.base.UNDEFINED`, 3 classes only), ``2`` fat
  (:data:`~.base.FAT`), ``-1`` not classified (NaN/inf,
  :data:`~.base.EXCLUDED`).  The fat code is 2 for 2 and 3 classes alike.
* Fitting is done on the distinct values with their counts, after
  standardising to zero mean and unit SD (computed from the distinct values
  and counts).  Results are therefore bitwise independent of voxel order and
  equivariant (to rounding) under ``a * x + b`` with ``a > 0`` -- except
  ``rule="fraction_of_mean"``, which assumes a true zero and is only
  scale-equivariant.
* Tolerances (``tol``) and the GMM variance floor (``reg_var``) are in units
  of the ROI's overall SD (variance for ``reg_var``), hence scale-free.
* Degenerate input (no finite voxel, fewer than ``min_voxels`` voxels, a
  single intensity, fewer distinct intensities than classes, a missing/empty
  reference ROI) raises :class:`~ParaspinalFatLib.errors.MeasurementError`
  with what is wrong and what to do; invalid arguments raise
  :class:`~ParaspinalFatLib.errors.InputError`.  A fit that runs but is
  questionable (EM/FCM not converged, a component that collapsed or vanished,
  a boundary that fell back to the midpoint, coinciding centres) is returned
  with a non-empty :attr:`TissueThresholds.message` (and ``converged=False``
  when the iteration did not converge; for gmm also adjacent components
  that overlap, Ashman's D < :data:`ASHMAN_D_MIN`): the caller decides
  whether that becomes a row warning.
* Limitation of every data-driven method (gmm, kmeans, otsu, fcm): it always
  splits the ROI into ``n_classes`` classes, also when the ROI holds a single
  tissue (e.g. a fat-free psoas, where about half of the voxels would be
  called "fat"), or two populations into three classes (the middle class
  cuts into one of them).  :func:`class_support` is the one rule that says
  how many populations (1-3) the data support (Gaussian mixtures: BIC gain
  >= :data:`BIC_MIN_GAIN` and Ashman's D >= :data:`ASHMAN_D_MIN`); the T1/T2
  method warns on every row, whatever the classifier, when it is fewer than
  ``n_classes``.  Use the reference method, or inspect the histogram, for
  ROIs that may hold no fat.

GMM boundary
------------
For adjacent components ``i < j`` (by mean) the posteriors are equal where
``w_i N(x; mu_i, s_i^2) = w_j N(x; mu_j, s_j^2)`` (the common normaliser
cancels).  Taking logs, ``f(x) = ln(w_j N_j) - ln(w_i N_i) = A x^2 + B x + C``
with::

    A = 1/(2 s_i^2) - 1/(2 s_j^2)
    B = mu_j / s_j^2 - mu_i / s_i^2
    C = mu_i^2/(2 s_i^2) - mu_j^2/(2 s_j^2) + ln(w_j / w_i) + ln(s_i / s_j)

and ``f > 0`` where component ``j`` is the more probable.  The roots are
computed with the cancellation-free form ``q = -(B + sign(B) sqrt(B^2 -
4AC)) / 2``, roots ``q / A`` and ``C / q``; with equal variances (``A = 0``)
the single root is ``(mu_i + mu_j)/2 + s^2 ln(w_i / w_j) / (mu_j - mu_i)``.
The boundary is the root in ``[mu_i, mu_j]``; if there are two, the one where
``f`` crosses from negative to positive (``f' = 2Ax + B > 0``).  Only if no
root lies between the means (one component dominates the whole interval,
e.g. a near-empty component) does the boundary fall back to the midpoint
``(mu_i + mu_j)/2``; this is recorded in ``params["boundary_rule"]`` and in
:attr:`TissueThresholds.message`.  Note: with unequal variances the wider
component also wins again far out in the tail of the narrower one (the other
root, outside ``[mu_i, mu_j]``); a threshold classification ignores that by
design.  With 3 components each boundary uses only its adjacent pair, so it
can differ from the full 3-component MAP rule where the third component is
not negligible (scikit-learn's ``predict``); in practice this affects a tiny
fraction of voxels.

FCM boundary
------------
The FCM membership of value ``x`` in cluster ``k`` is
``u_k(x) = d_k^(-2/(m-1)) / sum_l d_l^(-2/(m-1))`` with ``d_k = |x - c_k|``.
The denominator is common to all clusters, so ``u_i(x) = u_j(x)`` iff
``d_i = d_j``, i.e. ``|x - c_i| = |x - c_j|``: in 1-D, for ``c_i < c_j``, the
single point ``x = (c_i + c_j) / 2``.  This holds for every fuzzifier
``m > 1`` and with 3 clusters too (the third cluster's term is in the common
denominator), so the maximum-membership (defuzzified) classification is
exactly nearest-centre classification with midpoint boundaries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple
import numpy as np
from ..errors import InputError, MeasurementError
from ..validation import as_float_array
from .base import EXCLUDED, FAT, LEAN


__all__ = ['METHODS', 'DEFAULT_N_CLASSES', 'MIN_VOXELS', 'ASHMAN_D_MIN', 'BIC_MIN_GAIN', 'TissueThresholds',
           'ClassSupport', 'fit_thresholds', 'classify', 'class_support']

#: accepted ``method`` values
METHODS = ("gmm", "kmeans", "otsu", "fcm", "reference")
#: number of classes used when ``n_classes`` is not given
DEFAULT_N_CLASSES = {"gmm": 3, "kmeans": 3, "fcm": 3, "otsu": 2, "reference": 2}
#: default minimum number of finite voxels of an ROI (and of a reference ROI)
MIN_VOXELS = 10
#: GMM separation check: adjacent components with Ashman's D below this are flagged
#: (D = sqrt(2) |mu_j - mu_i| / sqrt(s_i^2 + s_j^2); D > 2 is the usual criterion for a
#: clean separation of two Gaussians, Ashman, Bird & Zepf 1994, Astron. J. 108:2348)
ASHMAN_D_MIN = 2.0
#: class-support rule (:func:`class_support`): BIC difference (fewer components minus more) below which
#: the extra Gaussian component is not supported (10 = "very strong" evidence, Kass & Raftery 1995)
BIC_MIN_GAIN = 10.0
_DEFAULTS: Dict[str, Dict[str, Any]] = {
    "gmm": {"tol": 1e-8, "max_iter": 1000, "reg_var": 1e-6},
    "kmeans": {},
    "otsu": {"bins": None},
    "fcm": {"m": 2.0, "tol": 1e-9, "max_iter": 1000},
    "reference": {"rule": "mean_minus_k_sd"},
}
_REFERENCE_RULES = {"mean_minus_k_sd": ("k", 2.0), "fraction_of_mean": ("fraction", 0.5)}
@dataclass(frozen=True)
class TissueThresholds:
    """Result of :func:`fit_thresholds`: the intensity thresholds of one ROI.

    Attributes
    ----------
    method : str
        ``"gmm"``, ``"kmeans"``, ``"otsu"``, ``"fcm"`` or ``"reference"``.
    n_classes : int
        2 (lean, fat) or 3 (lean, undefined, fat).
    thresholds : tuple of float
        One value for 2 classes, two non-decreasing values ``(t_low, t_high)``
        for 3 classes, in the image's intensity units.
    class_means : tuple of float
        Mean intensity per class, darkest first: component means (gmm),
        centroids (kmeans), centres (fcm), means of the voxels in each class
        (otsu, reference; NaN for an empty class).
    params : dict
        JSON-serialisable record of what was used (method parameters, the
        boundary rule per threshold, numbers of ignored voxels...).
    n_voxels : int
        Number of finite voxel values used.
    converged : bool
        The iteration converged (always True for the non-iterative methods).
    message : str
        ``""``, or why the result is questionable (see module docstring).
    class_weights : tuple of float
        Mixing weights (gmm), fuzzy cluster fractions (fcm) or voxel
        fractions per class (others).
    class_sds : tuple of float
        Component SDs (gmm), fuzzy SDs (fcm), SD (ddof = 0) of the voxels in
        each class (others; NaN for an empty class).
    n_iter : int
        EM / FCM iterations done (0 for the non-iterative methods).
    """

    method: str
    n_classes: int
    thresholds: Tuple[float, ...]
    class_means: Tuple[float, ...]
    params: Dict[str, Any]
    n_voxels: int
    converged: bool
    message: str = ""
    class_weights: Tuple[float, ...] = ()
    class_sds: Tuple[float, ...] = ()
    n_iter: int = 0

    def __post_init__(self) -> None:
        t = _threshold_tuple(self.thresholds)
        if len(t) != int(self.n_classes) - 1:
            raise InputError(
                f"TissueThresholds: {int(self.n_classes)} classes need {int(self.n_classes) - 1} "
                f"threshold(s), got {len(t)}."
            )
        object.__setattr__(self, "thresholds", t)
        object.__setattr__(self, "n_classes", int(self.n_classes))
        for name in ("class_means", "class_weights", "class_sds"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        object.__setattr__(self, "params", dict(self.params))

    def to_dict(self) -> Dict[str, Any]:
        """All fields as a JSON-serialisable dict (NaN stays float NaN).

        Returns
        -------
        dict
        """
        return {
            "method": self.method, "n_classes": self.n_classes,
            "thresholds": list(self.thresholds), "class_means": list(self.class_means),
            "params": dict(self.params), "n_voxels": self.n_voxels, "converged": self.converged,
            "message": self.message, "class_weights": list(self.class_weights),
            "class_sds": list(self.class_sds), "n_iter": self.n_iter,
        }


# ----------------------------------------------------------------------------------------
# public functions
# ----------------------------------------------------------------------------------------
def fit_thresholds(
    values,
    method: str = "gmm",
    n_classes: Optional[int] = None,
    reference=None,
    min_voxels: int = MIN_VOXELS,
    **params: Any,
) -> TissueThresholds:
    """Fit fat / lean intensity thresholds to the voxel values of one ROI.

    Parameters
    ----------
    values : array_like of float
        Intensities of the ROI's voxels (any shape; flattened).  NaN and
        +/-inf are ignored.
    method : str
        ``"gmm"`` (default), ``"kmeans"``, ``"otsu"``, ``"fcm"`` or
        ``"reference"``; see the module docstring.
    n_classes : int, optional
        2 (lean / fat) or 3 (lean / undefined / fat).  Default
        :data:`DEFAULT_N_CLASSES`: 3 for gmm, kmeans and fcm; 2 for otsu and
        reference (reference supports 2 only).
    reference : array_like of float, optional
        Voxel values of a reference fat ROI (e.g. subcutaneous fat on the same
        slice); required by ``method="reference"`` and not accepted by the
        other methods.
    min_voxels : int
        Minimum number of finite voxels of the ROI and of the reference ROI
        (default :data:`MIN_VOXELS` = 10).
    **params
        Method parameters (unknown names raise :class:`InputError`):

        * gmm: ``tol`` (1e-8; largest change of a component mean or SD, in
          ROI-SD units, or of a weight, between EM iterations),
          ``max_iter`` (1000), ``reg_var`` (1e-6; added to every component
          variance, in units of the ROI variance -- scikit-learn's
          ``reg_covar`` on standardised data).
        * kmeans: none (exact).
        * otsu: ``bins`` (None = exact over distinct values; or an int >= 2:
          equal-width histogram over ``[min, max]``).
        * fcm: ``m`` (2.0, > 1), ``tol`` (1e-9; largest centre change in
          ROI-SD units), ``max_iter`` (1000).
        * reference: ``rule`` (``"mean_minus_k_sd"`` with ``k`` = 2.0, or
          ``"fraction_of_mean"`` with ``fraction`` = 0.5).

    Returns
    -------
    TissueThresholds

    Raises
    ------
    MeasurementError
        Degenerate data: no finite voxel, fewer than ``min_voxels`` voxels,
        all voxels of one intensity, fewer distinct intensities (or non-empty
        histogram bins) than classes, reference ROI missing / empty / too
        small / of one intensity, non-positive reference mean with
        ``rule="fraction_of_mean"``.
    InputError
        Unknown method or parameter, invalid parameter value, ``n_classes``
        not 2 or 3, non-numeric values.
    """
    meth = str(method).strip().lower()
    if meth not in METHODS:
        raise InputError(f"Unknown tissue-classification method {method!r}; choose one of {', '.join(METHODS)}.")
    k = DEFAULT_N_CLASSES[meth] if n_classes is None else n_classes
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or int(k) not in (2, 3):
        raise InputError(f"n_classes must be 2 (lean/fat) or 3 (lean/undefined/fat), got {n_classes!r}.")
    k = int(k)
    if isinstance(min_voxels, bool) or not isinstance(min_voxels, (int, np.integer)) or min_voxels < 1:
        raise InputError(f"min_voxels must be a positive integer, got {min_voxels!r}.")
    if meth == "reference" and k != 2:
        raise InputError(
            "method 'reference' gives a single fat threshold from the reference fat ROI; "
            "use n_classes=2 (or a data-driven method for 3 classes)."
        )
    if meth != "reference" and reference is not None:
        raise InputError(f"reference= is only used by method 'reference', not by {meth!r}.")
    p = _check_params(meth, params)
    data = _prepare(values, k, int(min_voxels), meth)
    if meth == "gmm":
        return _fit_gmm(data, k, p)
    if meth == "kmeans":
        return _fit_kmeans(data, k, p)
    if meth == "otsu":
        return _fit_otsu(data, k, p)
    if meth == "fcm":
        return _fit_fcm(data, k, p)
    return _fit_reference(data, reference, int(min_voxels), p)


def classify(values, thresholds) -> np.ndarray:
    """Class code of every voxel value.

    Parameters
    ----------
    values : array_like of float
        Voxel intensities, any shape.
    thresholds : TissueThresholds or float or sequence of float
        A fit result, or the threshold(s) themselves: one value (2 classes)
        or two non-decreasing values (3 classes).

    Returns
    -------
    numpy.ndarray of int8
        Same shape as ``values``: ``LEAN`` (0) where ``value < t_low``,
        ``UNDEFINED`` (1) where ``t_low <= value < t_high`` (3 classes),
        ``FAT`` (2) where ``value >= t_high`` (2 classes: ``value >= t``),
        ``EXCLUDED`` (-1) for NaN and +/-inf (codes of :mod:`.base`).

    Raises
    ------
    InputError
        Thresholds not finite / not ascending / not 1 or 2 values; values not
        numeric.
    """
    t = _threshold_tuple(thresholds.thresholds if isinstance(thresholds, TissueThresholds) else thresholds)
    a = as_float_array(values, "values to classify")
    out = np.full(a.shape, EXCLUDED, dtype=np.int8)
    ok = np.isfinite(a)
    v = a[ok]
    if len(t) == 1:
        out[ok] = np.where(v >= t[0], FAT, LEAN).astype(np.int8)
    else:
        out[ok] = ((v >= t[0]).astype(np.int8) + (v >= t[1]).astype(np.int8))
    return out


@dataclass(frozen=True)
class ClassSupport:
    """How many intensity populations an ROI's voxels support (result of :func:`class_support`).

    Attributes
    ----------
    n_supported : int
        The largest ``k`` (1, 2 or 3, at most ``max_classes``) whose
        ``k``-component Gaussian mixture is supported; 1 when none is.
    bic_gain : dict
        ``k`` -> smallest BIC difference between a mixture with fewer
        components and the ``k``-component one (-inf when the fit failed).
    ashman_d : dict
        ``k`` -> smallest Ashman's D between adjacent components of the
        ``k``-component fit (NaN when the fit failed).
    n_voxels : int
        Finite voxels judged (0: no verdict, too few or a single intensity).
    """

    n_supported: int
    bic_gain: Dict[int, float]
    ashman_d: Dict[int, float]
    n_voxels: int

    def evidence(self, k: int) -> str:
        """The numbers behind the verdict on ``k`` components, as text.

        Parameters
        ----------
        k : int
            2 or 3.

        Returns
        -------
        str
        """
        return (f"{k}-Gaussian mixture vs fewer: BIC gain {self.bic_gain.get(k, float('nan')):.1f} (needs >= "
                f"{BIC_MIN_GAIN:g}), Ashman's D {self.ashman_d.get(k, float('nan')):.2f} (needs >= "
                f"{ASHMAN_D_MIN:g})")


def class_support(values, max_classes: int = 3, min_voxels: int = MIN_VOXELS) -> ClassSupport:
    """How many tissue populations (1, 2 or 3) the intensities of one ROI support.

    The one rule behind every classifier's "does the data support n_classes"
    warning.  Gaussian mixtures with 1 .. ``max_classes`` components are fitted
    (EM as ``method="gmm"``); ``k`` components are supported when the
    ``k``-component mixture beats every mixture with fewer components by BIC
    (gain >= :data:`BIC_MIN_GAIN`) *and* each pair of adjacent components is
    separated (Ashman's D >= :data:`ASHMAN_D_MIN`).  ``n_supported`` is the
    largest supported ``k`` (1 when neither 2 nor 3 is).  Two populations read
    with three classes put a middle "undefined" class across one of them (a
    halved fat area); one population read with two classes splits a single
    tissue.

    Parameters
    ----------
    values : array_like of float
        The ROI's voxel intensities (NaN/inf ignored).
    max_classes : int
        Largest number of components tried (2 or 3).
    min_voxels : int
        Fewer finite voxels (or a single intensity): no verdict
        (``n_voxels`` = 0, ``n_supported`` = ``max_classes``).

    Returns
    -------
    ClassSupport
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size < max(int(min_voxels), 3) or float(v.min()) == float(v.max()):
        return ClassSupport(int(max_classes), {}, {}, 0)
    n = v.size
    loc = float(v.mean())
    scale = float(v.std())
    z = (v - loc) / scale
    bic = {1: float(2.0 * np.sum(0.5 * z * z + 0.5 * math.log(2.0 * math.pi)) + 2.0 * n * math.log(scale)
                    + 2.0 * math.log(n))}
    ashman: Dict[int, float] = {}
    for k in range(2, int(max_classes) + 1):
        try:
            fit = fit_thresholds(v, method="gmm", n_classes=k, min_voxels=1, max_iter=300, tol=1e-6)
        except MeasurementError:
            bic[k], ashman[k] = float("inf"), float("nan")
            continue
        mu = np.asarray(fit.class_means)
        sd = np.asarray(fit.class_sds)
        w = np.asarray(fit.class_weights)
        if np.any(sd <= 0) or np.any(w <= 0):
            bic[k], ashman[k] = float("inf"), float("nan")
            continue
        logp = (np.log(w) - np.log(sd) - 0.5 * math.log(2.0 * math.pi)
                - 0.5 * ((v[:, None] - mu) / sd) ** 2)
        mx = logp.max(axis=1)
        ll = float(np.sum(mx + np.log(np.exp(logp - mx[:, None]).sum(axis=1))))
        bic[k] = -2.0 * ll + (3 * k - 1) * math.log(n)
        ashman[k] = float(min(math.sqrt(2.0) * (mu[j + 1] - mu[j]) / math.hypot(sd[j], sd[j + 1])
                              for j in range(k - 1)))
    gain = {k: float(min(bic[j] for j in range(1, k)) - bic[k]) for k in ashman}
    supported = 1
    for k in sorted(ashman):
        if gain[k] >= BIC_MIN_GAIN and ashman[k] >= ASHMAN_D_MIN:
            supported = k
    return ClassSupport(supported, gain, ashman, int(n))


# ----------------------------------------------------------------------------------------
# input handling
# ----------------------------------------------------------------------------------------
class _Data:
    """Distinct finite values of an ROI, their counts and standardisation."""

    def __init__(self, u: np.ndarray, c: np.ndarray, n_ignored: int) -> None:
        self.u = u                      # sorted distinct values (raw units)
        self.c = c                      # counts (float64)
        self.n = int(round(float(c.sum())))
        self.n_ignored = n_ignored
        mid = u[0] / 2.0 + u[-1] / 2.0
        self.loc = float(mid + np.dot(c, u - mid) / c.sum())
        dev = u - self.loc
        big = float(np.max(np.abs(dev)))
        self.scale = big * math.sqrt(float(np.dot(c, (dev / big) ** 2)) / float(c.sum()))
        self.z = dev / self.scale       # standardised distinct values

    def to_raw(self, z) -> np.ndarray:
        return self.loc + self.scale * np.asarray(z, dtype=np.float64)


def _finite_voxels(values, what: str, min_voxels: int, if_empty: str, if_too_few: str,
                   **fields: Any) -> Tuple[np.ndarray, int]:
    """The finite values of ``values`` and how many were not finite.

    Raises :class:`MeasurementError` when none is finite (message ``if_empty``)
    or fewer than ``min_voxels`` are (``if_too_few``); both are ``str.format``
    templates with the fields ``n`` (finite values), ``ignored`` (a note on the
    non-finite ones), ``min_voxels`` and ``fields``.
    """
    a = as_float_array(values, what).ravel()
    ok = np.isfinite(a)
    n_bad = int(a.size - np.count_nonzero(ok))
    a = a[ok]
    if a.size == 0 or a.size < min_voxels:
        ignored = f" ({n_bad} NaN/inf value(s) ignored)" if n_bad else ""
        template = if_empty if a.size == 0 else if_too_few
        raise MeasurementError(template.format(n=a.size, ignored=ignored, min_voxels=min_voxels, **fields))
    return a, n_bad


def _prepare(values, k: int, min_voxels: int, meth: str) -> _Data:
    a, n_bad = _finite_voxels(
        values, "ROI voxel values", min_voxels,
        "The ROI has no voxel with a finite intensity{ignored}: cannot classify fat/lean. "
        "Check that the ROI is not empty on this slice and lies inside the image.",
        "The ROI has only {n} voxel(s) with a finite intensity{ignored}; at least "
        "{min_voxels} are needed to fit {k} intensity classes ({meth}). Draw a larger ROI or "
        "measure over more slices, or report this ROI without a fat/lean split.",
        k=k, meth=meth,
    )
    u, c = np.unique(a, return_counts=True)
    if u.size == 1:
        raise MeasurementError(
            f"All {a.size} voxels of the ROI have the same intensity {u[0]!r}: no threshold can "
            "separate fat from muscle. Check that the ROI lies on the image (not on zero padding or "
            "outside the field of view) and that the intended T1/T2 image was loaded."
        )
    if u.size < k:
        raise MeasurementError(
            f"The ROI's {a.size} voxels have only {u.size} distinct intensities: {k} classes cannot "
            "be separated. Use n_classes=2, or check the image (is it a binary mask?)."
        )
    data = _Data(u, c.astype(np.float64), n_bad)
    if not (np.isfinite(data.scale) and data.scale > 0 and np.isfinite(data.z).all()):
        raise MeasurementError(
            "The ROI's intensity range cannot be handled in double precision (overflow or "
            "subnormal spread); rescale the image intensities."
        )
    return data


def _threshold_tuple(thresholds) -> Tuple[float, ...]:
    try:
        t = np.atleast_1d(np.asarray(thresholds, dtype=np.float64)).ravel()
    except (TypeError, ValueError) as exc:
        raise InputError(f"Thresholds must be one or two numbers, got {thresholds!r}.") from exc
    if t.size not in (1, 2):
        raise InputError(f"Thresholds must be one value (2 classes) or two (3 classes), got {t.size}.")
    if not np.isfinite(t).all():
        raise InputError(f"Thresholds must be finite, got {tuple(t.tolist())}.")
    if t.size == 2 and t[0] > t[1]:
        raise InputError(f"The two thresholds must be ascending (t_low <= t_high), got {tuple(t.tolist())}.")
    return tuple(float(v) for v in t)


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(float(v))


def _check_params(meth: str, params: Dict[str, Any]) -> Dict[str, Any]:
    p = dict(_DEFAULTS[meth])
    allowed = set(p)
    if meth == "reference":
        rule = params.get("rule", p["rule"])
        if rule not in _REFERENCE_RULES:
            raise InputError(f"reference rule must be one of {', '.join(_REFERENCE_RULES)}, got {rule!r}.")
        name, default = _REFERENCE_RULES[rule]
        p = {"rule": rule, name: default}
        allowed = {"rule", name}
    unknown = sorted(set(params) - allowed)
    if unknown:
        accepted = ", ".join(sorted(allowed)) or "none"
        raise InputError(f"Unknown parameter(s) {', '.join(unknown)} for method {meth!r} (accepted: {accepted}).")
    p.update(params)
    for name in ("tol", "reg_var"):
        if name in p and not (_is_real(p[name]) and float(p[name]) > 0):
            raise InputError(f"{meth}: {name} must be a positive finite number, got {p[name]!r}.")
    if "max_iter" in p and not (_is_int(p["max_iter"]) and p["max_iter"] >= 1):
        raise InputError(f"{meth}: max_iter must be a positive integer, got {p['max_iter']!r}.")
    if "m" in p and not (_is_real(p["m"]) and float(p["m"]) > 1.0):
        raise InputError(f"fcm: the fuzzifier m must be a finite number > 1, got {p['m']!r}.")
    if "bins" in p and p["bins"] is not None and not (_is_int(p["bins"]) and p["bins"] >= 2):
        raise InputError(f"otsu: bins must be None (exact) or an integer >= 2, got {p['bins']!r}.")
    if "k" in p and not (_is_real(p["k"]) and float(p["k"]) >= 0):
        raise InputError(f"reference: k must be a finite number >= 0, got {p['k']!r}.")
    if "fraction" in p and not (_is_real(p["fraction"]) and float(p["fraction"]) > 0):
        raise InputError(f"reference: fraction must be a finite number > 0, got {p['fraction']!r}.")
    # JSON-friendly plain Python types
    out: Dict[str, Any] = {}
    for name, v in p.items():
        if v is None or isinstance(v, str):
            out[name] = v
        elif _is_int(v):
            out[name] = int(v)
        else:
            out[name] = float(v)
    return out


# ----------------------------------------------------------------------------------------
# exact 1-D k-means (weighted) by dynamic programming
# ----------------------------------------------------------------------------------------
def _optimal_partition(x: np.ndarray, w: np.ndarray, k: int) -> Tuple[int, ...]:
    """Globally optimal weighted k-means partition of sorted distinct ``x`` (k = 2, 3).

    Returns the split indices ``s`` (clusters ``x[:s1]``, ``x[s1:s2]``,
    ``x[s2:]``).  The sum of squares of a cluster comes from prefix sums; for
    k = 3 the best first split for every end point is found by divide and
    conquer over the monotone optimal split (all sub-problems of one recursion
    level vectorised), O(m log m).  Ties: the smallest split index.
    """
    m = x.size
    p0 = np.concatenate(([0.0], np.cumsum(w)))
    p1 = np.concatenate(([0.0], np.cumsum(w * x)))
    p2 = np.concatenate(([0.0], np.cumsum(w * x * x)))

    def sse(i, j):
        n = p0[j] - p0[i]
        s = p1[j] - p1[i]
        return np.maximum((p2[j] - p2[i]) - s * s / n, 0.0)

    if k == 2:
        s = np.arange(1, m)
        return (int(s[np.argmin(sse(0, s) + sse(s, m))]),)
    # k == 3: d2[j] = min_{1 <= i <= j-1} sse(0, i) + sse(i, j) for 2 <= j <= m-1
    d2 = np.full(m + 1, np.inf)
    opt = np.zeros(m + 1, dtype=np.intp)
    rl = np.array([2], dtype=np.intp)
    rh = np.array([m - 1], dtype=np.intp)
    ol = np.array([1], dtype=np.intp)
    oh = np.array([m - 2], dtype=np.intp)
    while rl.size:
        mid = (rl + rh) // 2
        lo = ol
        hi = np.minimum(oh, mid - 1)
        length = hi - lo + 1
        starts = np.concatenate(([0], np.cumsum(length)[:-1]))
        seg = np.repeat(np.arange(rl.size), length)
        i = lo[seg] + (np.arange(int(length.sum())) - starts[seg])
        g = sse(0, i) + sse(i, mid[seg])
        gmin = np.minimum.reduceat(g, starts)
        hit = np.flatnonzero(g == gmin[seg])
        best = i[hit[np.searchsorted(seg[hit], np.arange(rl.size))]]
        d2[mid] = gmin
        opt[mid] = best
        left = rl <= mid - 1
        right = mid + 1 <= rh
        rl, rh, ol, oh = (
            np.concatenate((rl[left], mid[right] + 1)),
            np.concatenate((mid[left] - 1, rh[right])),
            np.concatenate((ol[left], best[right])),
            np.concatenate((best[left], oh[right])),
        )
    j = np.arange(2, m)
    jb = int(j[np.argmin(d2[j] + sse(j, m))])
    return (int(opt[jb]), jb)


def _class_stats(data: _Data, splits: Sequence[int]):
    """Mean, SD (ddof 0) and voxel fraction of contiguous classes of the distinct values."""
    bounds = [0] + list(splits) + [data.u.size]
    means, sds, fracs = [], [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        c = data.c[a:b]
        n = float(c.sum())
        if n == 0:
            means.append(float("nan"))
            sds.append(float("nan"))
            fracs.append(0.0)
            continue
        mu = float(np.dot(c, data.u[a:b]) / n)
        means.append(mu)
        sds.append(math.sqrt(float(np.dot(c, (data.u[a:b] - mu) ** 2) / n)))
        fracs.append(n / data.n)
    return means, sds, fracs


def _midpoint(a: float, b: float) -> float:
    return a + (b - a) / 2.0


def _base_params(data: _Data, p: Dict[str, Any]) -> Dict[str, Any]:
    out = dict(p)
    out["n_nonfinite_ignored"] = int(data.n_ignored)
    out["n_distinct"] = int(data.u.size)
    return out


def _fit_kmeans(data: _Data, k: int, p: Dict[str, Any]) -> TissueThresholds:
    splits = _optimal_partition(data.z, data.c, k)
    means, sds, fracs = _class_stats(data, splits)
    thr = tuple(_midpoint(means[i], means[i + 1]) for i in range(k - 1))
    params = _base_params(data, p)
    params.update(algorithm="exact 1-D k-means (dynamic programming)", boundary_rule=["midpoint"] * (k - 1))
    return TissueThresholds("kmeans", k, thr, tuple(means), params, data.n, True, "",
                            tuple(fracs), tuple(sds), 0)


# ----------------------------------------------------------------------------------------
# Otsu
# ----------------------------------------------------------------------------------------
def _fit_otsu(data: _Data, k: int, p: Dict[str, Any]) -> TissueThresholds:
    bins = p["bins"]
    params = _base_params(data, p)
    if bins is None:
        splits = _optimal_partition(data.z, data.c, k)
        thr = []
        for s in splits:
            lo, hi = float(data.u[s - 1]), float(data.u[s])
            t = _midpoint(lo, hi)
            if not lo < t <= hi:  # adjacent floats: keep the partition exact
                t = hi
            thr.append(t)
        params["algorithm"] = "exact Otsu over distinct values"
        means, sds, fracs = _class_stats(data, splits)
    else:
        lo, hi = float(data.u[0]), float(data.u[-1])
        edges = np.linspace(lo, hi, bins + 1)
        idx = np.clip(np.searchsorted(edges, data.u, side="right") - 1, 0, bins - 1)
        hist = np.bincount(idx, weights=data.c, minlength=bins)
        nonempty = np.flatnonzero(hist > 0)
        if nonempty.size < k:
            raise MeasurementError(
                f"Otsu with {bins} bins: only {nonempty.size} non-empty histogram bin(s) for {k} "
                "classes. Use more bins or bins=None (exact)."
            )
        centres = (edges[:-1] + edges[1:])[nonempty] / 2.0
        zc = (centres - data.loc) / data.scale
        splits_b = _optimal_partition(zc, hist[nonempty], k)
        thr = [float(edges[nonempty[s - 1] + 1]) for s in splits_b]
        params["algorithm"] = f"histogram Otsu, {bins} equal-width bins over [min, max]"
        params["bin_width"] = float((hi - lo) / bins)
        # class statistics of the voxels as classified by these thresholds
        splits = [int(np.searchsorted(data.u, t, side="left")) for t in thr]
        means, sds, fracs = _class_stats(data, splits)
    params["boundary_rule"] = ["between-class variance maximum"] * (k - 1)
    return TissueThresholds("otsu", k, tuple(thr), tuple(means), params, data.n, True, "",
                            tuple(fracs), tuple(sds), 0)


# ----------------------------------------------------------------------------------------
# Gaussian mixture (EM)
# ----------------------------------------------------------------------------------------
def _gaussian_boundary(mu1, v1, w1, mu2, v2, w2) -> Tuple[float, str]:
    """Point in [mu1, mu2] where w1 N(mu1, v1) = w2 N(mu2, v2); see module docstring."""
    if not mu2 > mu1:
        return float(mu1), "equal means"
    a = 0.5 / v1 - 0.5 / v2
    b = mu2 / v2 - mu1 / v1
    c = 0.5 * mu1 * mu1 / v1 - 0.5 * mu2 * mu2 / v2 + math.log(w2 / w1) + 0.5 * math.log(v1 / v2)
    roots: List[float] = []
    if a == 0.0:
        roots.append(-c / b)
        rule = "linear (equal variances)"
    else:
        disc = b * b - 4.0 * a * c
        rule = "quadratic"
        if disc >= 0.0:
            q = -0.5 * (b + math.copysign(math.sqrt(disc), b))
            if q != 0.0:
                roots.extend([q / a, c / q])
            else:  # b == 0 and disc == 0
                roots.append(0.0)
    inside = [r for r in roots if mu1 <= r <= mu2]
    if len(inside) > 1:
        rising = [r for r in inside if 2.0 * a * r + b > 0.0]
        inside = rising if rising else inside
    if not inside:
        return _midpoint(mu1, mu2), "midpoint fallback (no root between the means)"
    return float(inside[0]), rule


def _fit_gmm(data: _Data, k: int, p: Dict[str, Any]) -> TissueThresholds:
    z, c, n = data.z, data.c, float(data.n)
    reg, tol, max_iter = p["reg_var"], p["tol"], p["max_iter"]
    # deterministic start: the exact k-means partition (hard responsibilities)
    splits = _optimal_partition(z, c, k)
    bounds = [0] + list(splits) + [z.size]
    mu = np.empty(k)
    var = np.empty(k)
    w = np.empty(k)
    for j, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        nk = float(c[a:b].sum())
        mu[j] = float(np.dot(c[a:b], z[a:b]) / nk)
        var[j] = float(np.dot(c[a:b], (z[a:b] - mu[j]) ** 2) / nk) + reg
        w[j] = nk / n
    converged = False
    vanished = False
    n_iter = 0
    tiny = 10.0 * np.finfo(np.float64).tiny
    log_lik = float("nan")
    for n_iter in range(1, max_iter + 1):
        # E-step
        logp = np.log(w) - 0.5 * np.log(2.0 * np.pi * var) - (z[:, None] - mu) ** 2 / (2.0 * var)
        mx = logp.max(axis=1, keepdims=True)
        lse = mx + np.log(np.exp(logp - mx).sum(axis=1, keepdims=True))
        resp = np.exp(logp - lse) * c[:, None]
        log_lik = float(np.dot(c, lse[:, 0]) / n)
        # M-step
        nk = resp.sum(axis=0)
        if nk.min() <= 1e-12 * n:
            vanished = True
            nk = np.maximum(nk, tiny)
        new_w = nk / n
        new_mu = (resp * z[:, None]).sum(axis=0) / nk
        new_var = (resp * (z[:, None] - new_mu) ** 2).sum(axis=0) / nk + reg
        change = max(
            float(np.max(np.abs(new_mu - mu))),
            float(np.max(np.abs(np.sqrt(new_var) - np.sqrt(var)))),
            float(np.max(np.abs(new_w - w))),
        )
        mu, var, w = new_mu, new_var, new_w
        if vanished:
            break
        if change < tol:
            converged = True
            break
    order = np.argsort(mu, kind="stable")
    mu, var, w = mu[order], var[order], w[order]
    thr_z, rules = [], []
    for j in range(k - 1):
        t, rule = _gaussian_boundary(float(mu[j]), float(var[j]), float(w[j]),
                                     float(mu[j + 1]), float(var[j + 1]), float(w[j + 1]))
        thr_z.append(t)
        rules.append(rule)
    thr = data.to_raw(thr_z)
    if k == 3 and thr[0] > thr[1]:  # cannot happen with roots in [mu_j, mu_j+1]; guard anyway
        thr = np.sort(thr)
    problems = []
    if not converged and not vanished:
        problems.append(f"EM did not converge within max_iter={max_iter} iterations (increase max_iter)")
    if vanished:
        problems.append(f"a mixture component vanished (no voxel supports it): the ROI does not show {k} "
                        "intensity classes; use n_classes=2 or another method")
    for j in range(k):
        if w[j] * n < 1.0 and not vanished:
            problems.append(f"component {j + 1} holds less than one voxel (weight {w[j]:.3g}): the ROI does "
                            f"not show {k} intensity classes; consider n_classes=2")
        if var[j] <= reg * (1.0 + 1e-6) + 1e-300:
            problems.append(f"component {j + 1} collapsed onto a single intensity (variance at the floor "
                            "reg_var): the fit is degenerate; consider n_classes=2 or another method")
    for j, rule in enumerate(rules):
        if not rule.startswith(("quadratic", "linear")):
            problems.append(f"boundary {j + 1}: {rule}")
    ashman = [float(math.sqrt(2.0) * (mu[j + 1] - mu[j]) / math.sqrt(var[j] + var[j + 1])) for j in range(k - 1)]
    for j, d in enumerate(ashman):
        if d < ASHMAN_D_MIN:
            problems.append(
                f"components {j + 1} and {j + 2} overlap (Ashman's D = {d:.2f} < {ASHMAN_D_MIN:g}): the ROI's "
                f"intensities do not show {k} clearly separated classes, so the threshold may split a "
                "single tissue population (consider fewer classes or the reference method)"
            )
    params = _base_params(data, p)
    params.update(
        init="exact k-means partition", boundary_rule=rules, ashman_d=ashman,
        mean_log_likelihood_standardised=log_lik,
    )
    return TissueThresholds(
        "gmm", k, tuple(float(t) for t in thr), tuple(float(v) for v in data.to_raw(mu)), params, data.n,
        converged, "; ".join(problems), tuple(float(v) for v in w),
        tuple(float(v) for v in data.scale * np.sqrt(var)), n_iter,
    )


# ----------------------------------------------------------------------------------------
# fuzzy C-means
# ----------------------------------------------------------------------------------------
def _memberships(z: np.ndarray, centres: np.ndarray, m: float) -> np.ndarray:
    d2 = (z[:, None] - centres[None, :]) ** 2
    zero = d2 == 0.0
    with np.errstate(divide="ignore"):
        logd = np.log(d2)
    expo = -1.0 / (m - 1.0)              # u ~ (d^2)^(-1/(m-1)) = d^(-2/(m-1))
    lg = expo * logd
    lg[zero] = 0.0                       # replaced below
    mx = lg.max(axis=1, keepdims=True)
    u = np.exp(lg - mx)
    u /= u.sum(axis=1, keepdims=True)
    rows = zero.any(axis=1)
    if rows.any():                       # a value on a centre belongs to it entirely
        zr = zero[rows].astype(np.float64)
        u[rows] = zr / zr.sum(axis=1, keepdims=True)
    return u


def _fit_fcm(data: _Data, k: int, p: Dict[str, Any]) -> TissueThresholds:
    z, c = data.z, data.c
    m, tol, max_iter = p["m"], p["tol"], p["max_iter"]
    splits = _optimal_partition(z, c, k)
    bounds = [0] + list(splits) + [z.size]
    centres = np.array([np.dot(c[a:b], z[a:b]) / c[a:b].sum() for a, b in zip(bounds[:-1], bounds[1:])])
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        um = _memberships(z, centres, m) ** m * c[:, None]
        new = (um * z[:, None]).sum(axis=0) / um.sum(axis=0)
        change = float(np.max(np.abs(new - centres)))
        centres = new
        if change < tol:
            converged = True
            break
    centres = np.sort(centres)
    u = _memberships(z, centres, m)
    um = u ** m * c[:, None]
    fuzzy_sd = np.sqrt((um * (z[:, None] - centres) ** 2).sum(axis=0) / um.sum(axis=0)) * data.scale
    weights = (u * c[:, None]).sum(axis=0) / float(data.n)
    raw = data.to_raw(centres)
    thr = tuple(_midpoint(float(raw[j]), float(raw[j + 1])) for j in range(k - 1))
    problems = []
    if not converged:
        problems.append(f"FCM did not converge within max_iter={max_iter} iterations (increase max_iter)")
    if np.any(np.diff(centres) < 1e-6):
        problems.append(f"FCM centres coincide: the ROI does not show {k} intensity classes; use n_classes=2")
    params = _base_params(data, p)
    params.update(init="exact k-means centroids", boundary_rule=["midpoint (equal memberships)"] * (k - 1))
    return TissueThresholds("fcm", k, thr, tuple(float(v) for v in raw), params, data.n, converged,
                            "; ".join(problems), tuple(float(v) for v in weights),
                            tuple(float(v) for v in fuzzy_sd), n_iter)


# ----------------------------------------------------------------------------------------
# reference fat ROI
# ----------------------------------------------------------------------------------------
def _fit_reference(data: _Data, reference, min_voxels: int, p: Dict[str, Any]) -> TissueThresholds:
    if reference is None:
        raise MeasurementError(
            "Method 'reference' needs the voxel values of a reference fat ROI (e.g. subcutaneous fat "
            "on the same slice) via reference=...; none was given. Draw a subcutaneous fat ROI or "
            "choose a data-driven method (gmm, kmeans, otsu, fcm)."
        )
    ref, n_bad = _finite_voxels(
        reference, "reference ROI voxel values", min_voxels,
        "The reference fat ROI has no voxel with a finite intensity{ignored}. Check that it is "
        "drawn on the same image and slice(s) as the muscle ROI.",
        "The reference fat ROI has only {n} finite voxel(s){ignored}; at least {min_voxels} "
        "are needed for a stable mean and SD. Draw a larger reference ROI.",
    )
    ref_mean = float(np.mean(ref))
    ref_sd = float(np.std(ref, ddof=1))
    if float(np.min(ref)) == float(np.max(ref)):
        raise MeasurementError(
            f"All {ref.size} voxels of the reference fat ROI have the same intensity {ref[0]!r}; check "
            "that it lies on the image (not on zero padding) and on the intended T1/T2 image."
        )
    rule = p["rule"]
    if rule == "mean_minus_k_sd":
        t = ref_mean - p["k"] * ref_sd
    else:
        if not ref_mean > 0:
            raise MeasurementError(
                f"The reference fat ROI has mean intensity {ref_mean:g} <= 0; the fraction-of-mean rule "
                "needs magnitude intensities with a true zero. Use rule='mean_minus_k_sd'."
            )
        t = p["fraction"] * ref_mean
    split = int(np.searchsorted(data.u, t, side="left"))
    means, sds, fracs = _class_stats(data, [split])
    problems = []
    if ref_mean <= data.loc:
        problems.append(
            f"the reference fat ROI (mean {ref_mean:g}) is not brighter than the muscle ROI (mean "
            f"{data.loc:g}): fat-suppressed image or wrong reference ROI?"
        )
    if split == 0:
        problems.append("every ROI voxel is at or above the reference threshold (all classified fat)")
    params = _base_params(data, p)
    params.update(reference_mean=ref_mean, reference_sd=ref_sd, reference_n=int(ref.size),
                  reference_nonfinite_ignored=n_bad, boundary_rule=[rule])
    return TissueThresholds("reference", 2, (float(t),), tuple(means), params, data.n, True,
                            "; ".join(problems), tuple(fracs), tuple(sds), 0)

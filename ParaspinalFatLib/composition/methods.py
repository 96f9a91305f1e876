"""Tissue composition methods: how each image type splits an ROI into fat and lean.

Every method turns the gathered voxel values of the ROIs into

* ``value`` -- the voxel value reported by mean/median/SD (in ``unit``),
* a class code per voxel: ``LEAN`` (0), ``UNDEFINED`` (1), ``FAT`` (2), or
  ``EXCLUDED`` (-1: NaN, or below the Dixon noise floor),
* extra per-row columns (Dixon signal-weighted fat fraction, CT muscle-window
  density...).

One half-open convention is used everywhere: a boundary value belongs to the
class *above* it (fat = value >= threshold), so that the percentages and the
areas always agree.

Methods (``map_kind``)
----------------------
``pdff``   fat-fraction map; fat = PDFF >= ``fat_threshold_pct`` (default 50 %).
``dixon``  water W and fat F images; voxel FF = F / (F + W); voxels with
           F + W below the noise floor are excluded and counted.
``ct``     Hounsfield units; fat = fat window, lean = muscle window, everything
           else undefined; windows are half-open ``[low, high)``.
``t1``/``t2``  no quantitative map: per-row intensity classification (GMM,
           k-means, Otsu, fuzzy C-means or a reference fat ROI).
``scalar`` any other map (FA, ADC...): statistics only, no composition.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple
import numpy as np
from ..errors import InputError, MeasurementError
from .pdff_scale import PDFF_SCALES, detect_pdff_scale


__all__ = ['MAP_KINDS', 'CT_FAT_WINDOW', 'CT_MUSCLE_WINDOW', 'CompositionMethod', 'make_method']

LEAN, UNDEFINED, FAT, EXCLUDED = 0, 1, 2, -1
MAP_KINDS = ("pdff", "dixon", "ct", "t1", "t2", "scalar")
#: default CT windows, half-open [low, high) in HU: the literature's integer windows
#: -190..-30 HU (fat) and -29..150 HU (skeletal muscle)
CT_FAT_WINDOW = (-190.0, -29.0)
CT_MUSCLE_WINDOW = (-29.0, 151.0)
@dataclass
class GroupContext:
    """What a method may need about the groups (table rows) being classified."""

    names: List[str]  # muscle name of each group (for warnings)
    reference_values: Optional[List[Optional[np.ndarray]]] = None  # per group, for "reference"


@dataclass
class CompositionMethod:
    """A composition method with its parameters.

    Attributes
    ----------
    kind : str
        One of :data:`MAP_KINDS`.
    unit : str
        Unit of ``value`` (``%`` for PDFF/Dixon, ``HU`` for CT).
    params : dict
        Every parameter used, written to the table (``method_params``).
    """

    kind: str
    unit: str = ""
    params: Dict[str, Any] = field(default_factory=dict)
    to_output: float = 1.0  # PDFF storage scale -> %
    pdff_scale: str = ""

    # ------------------------------------------------------------------ values
    @property
    def needs_water(self) -> bool:
        """True for Dixon (a second, water image is gathered)."""
        return self.kind == "dixon"

    @property
    def has_composition(self) -> bool:
        """True when the method separates fat from lean voxels."""
        return self.kind != "scalar"

    @property
    def fat_fraction_is_mean_value(self) -> bool:
        """True when ``fat_fraction_pct`` is the mean voxel value (PDFF, Dixon)."""
        return self.kind in ("pdff", "dixon")

    def voxel_values(self, raw: np.ndarray, water: Optional[np.ndarray] = None) -> np.ndarray:
        """Voxel values in output units (float64); NaN where excluded."""
        raw = raw.astype(np.float64, copy=False)
        if self.kind == "pdff":
            return raw * self.to_output
        if self.kind == "dixon":
            total = raw + water.astype(np.float64, copy=False)
            with np.errstate(invalid="ignore", divide="ignore"):
                ff = 100.0 * raw / total
            ff[~(total >= self.params["noise_floor"])] = np.nan
            return ff
        return raw

    def below_noise(self, raw: np.ndarray, water: Optional[np.ndarray]) -> np.ndarray:
        """Dixon: voxels whose F + W is below the noise floor (or not finite)."""
        if self.kind != "dixon":
            return np.zeros(raw.shape, bool)
        total = raw.astype(np.float64) + water.astype(np.float64)
        return ~(total >= self.params["noise_floor"])

    # ------------------------------------------------------------------ classes
    def classify(
        self, values: np.ndarray, groups: np.ndarray, n_groups: int, context: GroupContext
    ) -> Tuple[np.ndarray, Dict[str, np.ndarray], List[List[str]]]:
        """Class code of every voxel, per-group thresholds, and per-group warnings.

        Returns
        -------
        codes : numpy.ndarray of int8
        thresholds : dict with ``threshold_low`` / ``threshold_high`` arrays (n_groups)
        warnings : list (n_groups) of lists of str
        """
        codes = np.full(values.shape, EXCLUDED, dtype=np.int8)
        finite = np.isfinite(values)
        low = np.full(n_groups, np.nan)
        high = np.full(n_groups, np.nan)
        notes: List[List[str]] = [[] for _ in range(n_groups)]
        if self.kind in ("pdff", "dixon"):
            t = float(self.params["fat_threshold_pct"])
            codes[finite] = np.where(values[finite] >= t, FAT, LEAN)
            high[:] = t
        elif self.kind == "ct":
            f_lo, f_hi = self.params["fat_window"]
            m_lo, m_hi = self.params["muscle_window"]
            v = values[finite]
            c = np.full(v.shape, UNDEFINED, dtype=np.int8)
            c[(v >= f_lo) & (v < f_hi)] = FAT
            c[(v >= m_lo) & (v < m_hi)] = LEAN
            codes[finite] = c
        elif self.kind in ("t1", "t2"):
            codes, low, high = self._classify_intensity(values, finite, groups, n_groups, context, notes)
        if self.kind in ("t1", "t2"):
            for g, name in enumerate(context.names):
                if name in ("psoas", "iliopsoas"):
                    notes[g].append(
                        f"{name} on {self.kind.upper()}: intensity thresholding is unreliable in the "
                        f"psoas (published); prefer a PDFF/Dixon map"
                    )
        return codes, {"threshold_low": low, "threshold_high": high}, notes

    def _classify_intensity(self, values, finite, groups, n_groups, context, notes):
        from .classifiers import classify, fit_thresholds

        codes = np.full(values.shape, EXCLUDED, dtype=np.int8)
        low = np.full(n_groups, np.nan)
        high = np.full(n_groups, np.nan)
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
                overlap = _overlap_note(values[idx], method)
                if overlap:
                    notes[g].append(overlap)
        return codes, low, high

    # ------------------------------------------------------------------ extras
    def extra_columns(self, groups, n_groups, values, raw, water, codes) -> Dict[str, np.ndarray]:
        """Method-specific per-group columns (NaN where not applicable)."""
        out: Dict[str, np.ndarray] = {}
        nan = np.full(n_groups, np.nan)
        if self.kind == "dixon":
            keep = np.isfinite(values)
            g = groups[keep]
            f = raw[keep].astype(np.float64)
            t = f + water[keep].astype(np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                out["ff_signal_weighted_pct"] = 100.0 * np.bincount(g, weights=f, minlength=n_groups) / np.bincount(
                    g, weights=t, minlength=n_groups)
        else:
            out["ff_signal_weighted_pct"] = nan.copy()
        if self.kind == "ct":
            lean = codes == LEAN
            n = np.bincount(groups[lean], minlength=n_groups)
            with np.errstate(invalid="ignore", divide="ignore"):
                mw = np.bincount(groups[lean], weights=values[lean], minlength=n_groups) / n
            mw[n == 0] = np.nan
            out["mean_muscle_window"] = mw
            cutoff = self.params.get("myosteatosis_cutoff_hu")
            if cutoff is None:
                out["myosteatosis"] = np.full(n_groups, np.nan)
            else:
                out["myosteatosis"] = np.where(np.isfinite(mw), (mw < float(cutoff)).astype(float), np.nan)
        else:
            out["mean_muscle_window"] = nan.copy()
            out["myosteatosis"] = nan.copy()
        return out

    def params_json(self) -> str:
        """The parameters as a JSON string (table column ``method_params``)."""
        return json.dumps(self.params, sort_keys=True, default=_jsonable)


#: BIC difference (1 Gaussian minus 2-component mixture) below which two populations are not supported
BIC_MIN_GAIN = 10.0
def _overlap_note(values: np.ndarray, method: str) -> str:
    """k-means, Otsu and FCM always split an ROI, even one holding only muscle.

    Check whether two tissue populations are there at all: a 2-component
    Gaussian mixture must beat a single Gaussian by BIC (gain >= 10, "very
    strong" evidence) *and* its components must be separated (Ashman's D >= 2).
    Returns a warning text when either fails, else "".
    """
    from scipy import stats as sps

    from .classifiers import ASHMAN_D_MIN, fit_thresholds

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


def _jsonable(obj):
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, tuple):
        return list(obj)
    return str(obj)


# ----------------------------------------------------------------------------- factory
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
) -> CompositionMethod:
    """Build the :class:`CompositionMethod` for ``kind`` from its options.

    Parameters
    ----------
    kind : str
        One of :data:`MAP_KINDS`.
    image : numpy.ndarray
        The (fat, for Dixon) image array, for scale/noise detection.
    water : numpy.ndarray, optional
        Dixon water image array.
    pdff_scale, fat_threshold_pct
        PDFF storage scale (detected when None) and the fat threshold (%), also
        used for Dixon voxel FF.
    unit : str, optional
        Unit of a scalar map.
    noise_floor : float, optional
        Dixon: absolute F + W below which a voxel is excluded.  Default:
        ``noise_floor_fraction`` x the 99.5th percentile of F + W over the image.
    fat_window, muscle_window : (low, high)
        CT windows in HU, half-open ``[low, high)``.
    myosteatosis_cutoff_hu : float, optional
        CT: flag ``myosteatosis`` when the muscle-window mean HU is below it
        (e.g. 41 HU, Martin 2013, BMI < 25) -- a parameter, never built in.
    classifier, n_classes, reference_segment, classifier_params
        T1/T2: ``gmm`` (default, 3 classes), ``kmeans``, ``otsu``, ``fcm`` or
        ``reference`` (threshold from the reference fat segment's voxels).
    """
    kind = str(kind).lower()
    if kind not in MAP_KINDS:
        raise InputError(f"unknown map kind {kind!r}; use one of {', '.join(MAP_KINDS)}")
    if kind == "pdff":
        scale, how = detect_pdff_scale(image, pdff_scale, source)
        return CompositionMethod(
            "pdff", "%", {"fat_threshold_pct": float(fat_threshold_pct), "pdff_scale": scale,
                          "pdff_scale_source": how},
            to_output=PDFF_SCALES[scale][1], pdff_scale=scale,
        )
    if kind == "dixon":
        if water is None:
            raise InputError("map 'dixon' needs a water image (--water) and a fat image (--fat)")
        how = "declared"
        if noise_floor is None:
            total = _strided(image).astype(np.float64) + _strided(water).astype(np.float64)
            total = total[np.isfinite(total)]
            noise_floor = float(noise_floor_fraction * np.percentile(total, 99.5)) if total.size else 0.0
            how = f"{noise_floor_fraction:g} x 99.5th percentile of F+W"
        return CompositionMethod(
            "dixon", "%", {"fat_threshold_pct": float(fat_threshold_pct), "noise_floor": float(noise_floor),
                           "noise_floor_rule": how},
        )
    if kind == "ct":
        fw, mw = _window(fat_window, "fat_window"), _window(muscle_window, "muscle_window")
        if fw[1] > mw[0] and mw[1] > fw[0]:
            raise InputError(f"CT fat window {fw} and muscle window {mw} overlap")
        return CompositionMethod("ct", "HU", {"fat_window": fw, "muscle_window": mw,
                                             "myosteatosis_cutoff_hu": myosteatosis_cutoff_hu})
    if kind in ("t1", "t2"):
        classifier = str(classifier).lower()
        if classifier not in ("gmm", "kmeans", "otsu", "fcm", "reference"):
            raise InputError(f"unknown classifier {classifier!r}; use gmm, kmeans, otsu, fcm or reference")
        if classifier == "reference" and not reference_segment:
            raise InputError("classifier 'reference' needs the name of a reference fat segment "
                             "(--reference-segment, e.g. subcutaneous_fat)")
        if classifier in ("otsu", "reference"):
            n_classes = 2  # two-class methods
        params = {"classifier": classifier, "n_classes": int(n_classes)}
        if reference_segment:
            params["reference_segment"] = reference_segment
        params.update(classifier_params or {})
        return CompositionMethod(kind, unit or "a.u.", params)
    return CompositionMethod("scalar", unit or "", {})


def _window(w, name) -> Tuple[float, float]:
    try:
        lo, hi = (float(x) for x in w)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be two numbers (low, high), got {w!r}") from None
    if not lo < hi:
        raise InputError(f"{name} must have low < high, got {w!r}")
    return lo, hi


def _strided(a: np.ndarray) -> np.ndarray:
    step = max(1, int(round((a.size / 2_000_000) ** (1 / 3))))
    return np.asarray(a[::step, ::step, ::step]).ravel()

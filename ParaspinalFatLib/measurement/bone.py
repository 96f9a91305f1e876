"""Trabecular bone attenuation of lumbar vertebrae (QCT-like mid-vertebral core).

The seed papers relate paraspinal fat to the bone density of L1-L2 (QCT
volumetric BMD).  This module measures the CT attenuation (HU) of the
*trabecular core* of each vertebra from a whole-vertebra mask
(TotalSegmentator ``vertebrae_L1``, posterior elements included), and turns
it into vBMD only when the user gives a phantom/phantomless calibration.

Definition of the trabecular core (:func:`trabecular_core`)
-----------------------------------------------------------
1. **Depth**: the voxels of the vertebra mask whose Euclidean distance to the
   outside of the mask is at least ``erosion_mm`` (default 5 mm).  The
   distance of a voxel is the distance in mm from its centre to the nearest
   voxel centre *outside* the mask (:func:`scipy.ndimage.distance_transform_edt`
   with the voxel spacing as sampling, so anisotropic voxels are honoured): a
   voxel on the mask surface has the distance of one voxel spacing.  This
   removes the cortical shell and the endplates and most of the thin posterior
   elements.  The distances are computed in the bounding box of the mask
   padded by one background voxel (never on the whole volume), so a mask that
   touches the edge of the image is eroded from that edge too.
2. **Slab**: only voxels whose centre lies within ``slab_mm / 2`` (inclusive)
   of the mid-body point along the local spine axis (default 10 mm, like a QCT
   mid-vertebral slab; ``None`` keeps the whole depth-eroded core).
3. **Body**: only the largest 26-connected component is kept (the vertebral
   body; leftovers of the arch, the spinous process or the transverse
   processes are dropped).

Comparisons use a tolerance of 1e-6 mm so that a voxel exactly at the
erosion depth or on the slab boundary is included.  Distances are computed
along the voxel axes; on a sheared grid (CT gantry tilt) they are approximate
and the row says so.

Statistics (:func:`bone_table`) are those of
:func:`~ParaspinalFatLib.measurement.quantities.grouped_stats` (sample SD with
ddof = 1, linearly interpolated percentiles, NaN/inf voxels excluded).  HU is
not vBMD: vBMD in mg/cm^3 is given only with a linear calibration
``vBMD = slope * HU + intercept`` applied to the mean HU, then classified by
:func:`~ParaspinalFatLib.stats.clinical_categories.vbmd_category`
(ACR/ISCD: normal > 120, osteopenia 80-120, osteoporosis < 80 mg/cm^3).
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..anatomy.level_names import canonical_level, is_vertebra_level, level_sort_key
from ..errors import InputError, ParaspinalFatWarning
from ..geometry import Geometry
from ..segmentation import Segment, Segmentation
from .quantities import grouped_stats

__all__ = ["BONE_COLUMNS", "NO_CALIBRATION_NOTE", "trabecular_core", "bone_table", "parse_calibration"]

BONE_COLUMNS: List[str] = [
    "subject", "level", "segment", "erosion_mm", "slab_mm", "n_voxels", "volume_ml", "mean", "median", "sd",
    "p05", "p95", "unit", "calibration_slope", "calibration_intercept", "vbmd_mg_cm3", "vbmd_category", "note",
    "warnings",
]
#: ``note`` of every row measured without a calibration
NO_CALIBRATION_NOTE = "HU is not vBMD (no --bmd-calibration)"

_EROSION_OPT = "bone_erosion_mm (--bone-erosion-mm)"
_SLAB_OPT = "bone_slab_mm (--bone-slab-mm)"
_CALIBRATION_OPT = "bmd_calibration (--bmd-calibration)"
_TOL_MM = 1e-6
#: a dropped core piece at least this fraction of the kept one is reported
_SPLIT_FRACTION = 0.5
#: grids sheared by more than this (degrees) get a note that distances are approximate
_SHEAR_TOL_DEG = 0.01


# =============================================================================
# argument checks
# =============================================================================
def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _erosion(value) -> float:
    if not _is_number(value) or not math.isfinite(float(value)) or float(value) < 0:
        raise InputError(
            f"{_EROSION_OPT} must be a finite number of millimetres >= 0 (default 5), got {value!r}"
        )
    return float(value)


def _slab(value) -> Optional[float]:
    if value is None:
        return None
    if not _is_number(value) or not math.isfinite(float(value)) or float(value) <= 0:
        raise InputError(
            f"{_SLAB_OPT} must be a finite slab thickness in millimetres > 0 (default 10), or None for "
            f"the whole core, got {value!r}"
        )
    return float(value)


def _point(value, what: str) -> np.ndarray:
    try:
        p = np.asarray(value, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        p = np.zeros(0)
    if p.shape != (3,) or not np.all(np.isfinite(p)):
        raise InputError(f"{what} must be 3 finite LPS coordinates in mm, got {value!r}")
    return p


def _axis(axis_lps, geometry: Geometry) -> np.ndarray:
    if axis_lps is None:
        return geometry.plane_normal(geometry.slice_axis())
    a = _point(axis_lps, "the spine axis (axis_lps)")
    norm = float(np.linalg.norm(a))
    if norm <= 1e-12:
        raise InputError(f"the spine axis (axis_lps) must be a non-zero LPS direction, got {axis_lps!r}")
    return a / norm


def _geometry_shape(mask: np.ndarray, geometry: Geometry, what: str) -> None:
    if tuple(mask.shape) != tuple(geometry.shape):
        raise InputError(
            f"{what} has shape {tuple(mask.shape)} but the geometry is (k, j, i) = {tuple(geometry.shape)}; "
            "give arrays on the image grid"
        )


def parse_calibration(text_or_pair) -> Tuple[float, float]:
    """Read a linear HU -> vBMD calibration.

    Parameters
    ----------
    text_or_pair : str or sequence of 2 numbers
        ``"SLOPE,INTERCEPT"`` (e.g. ``"0.8,-2.5"``; spaces allowed) or a pair
        ``(slope, intercept)``: ``vBMD [mg/cm^3] = slope * HU + intercept``.

    Returns
    -------
    tuple of (float, float)
        ``(slope, intercept)``.

    Raises
    ------
    InputError
        Anything else (naming ``bmd_calibration (--bmd-calibration)``); the
        slope must be finite and > 0, the intercept finite.
    """
    usage = (f"{_CALIBRATION_OPT} must be 'SLOPE,INTERCEPT' (vBMD mg/cm^3 = SLOPE x HU + INTERCEPT, "
             f"e.g. '0.8,-2.5'), got {text_or_pair!r}")
    if isinstance(text_or_pair, str):
        parts = [p.strip() for p in text_or_pair.split(",")]
        if len(parts) != 2:
            raise InputError(usage)
        try:
            slope, intercept = float(parts[0]), float(parts[1])
        except ValueError:
            raise InputError(usage) from None
    else:
        try:
            items = list(text_or_pair)
        except TypeError:
            raise InputError(usage) from None
        if len(items) != 2 or not all(_is_number(v) for v in items):
            raise InputError(usage)
        slope, intercept = float(items[0]), float(items[1])
    if not (math.isfinite(slope) and slope > 0):
        raise InputError(f"{usage}: the slope must be a finite number > 0")
    if not math.isfinite(intercept):
        raise InputError(f"{usage}: the intercept must be a finite number")
    return slope, intercept


# =============================================================================
# the core
# =============================================================================
def _core_in_box(
    box: np.ndarray,
    start: Sequence[int],
    geometry: Geometry,
    centre: Optional[np.ndarray],
    axis: np.ndarray,
    erosion_mm: float,
    slab_mm: Optional[float],
) -> Tuple[np.ndarray, Dict[str, float]]:
    """Core of a padded box mask (background on every face).

    ``start`` is the (k, j, i) index of ``box[0, 0, 0]`` in the full grid
    (may be -1 because of the padding).  Returns the core (same shape as
    ``box``) and counts used to explain an empty core.
    """
    from scipy import ndimage

    sampling = tuple(float(s) for s in geometry.spacing[::-1])  # (k, j, i) order
    depth = ndimage.distance_transform_edt(box, sampling=sampling)
    core = depth >= erosion_mm - _TOL_MM
    core &= box
    info: Dict[str, float] = {"max_depth": float(depth.max()), "n_deep": int(core.sum())}
    if slab_mm is not None and info["n_deep"]:
        # signed distance along the axis of every voxel centre: linear in (k, j, i)
        m = geometry.ijk_to_lps
        coef = m[:3, :3].T @ axis  # d/di, d/dj, d/dk
        d0 = float((m[:3, 3] - centre) @ axis)
        kk, jj, ii = (np.arange(n, dtype=float) + s for n, s in zip(box.shape, start))
        dist = d0 + coef[2] * kk[:, None, None] + coef[1] * jj[None, :, None] + coef[0] * ii[None, None, :]
        core &= np.abs(dist) <= slab_mm / 2.0 + _TOL_MM
    info["n_slab"] = int(core.sum())
    info["n_dropped"] = 0
    info["largest_dropped"] = 0
    if info["n_slab"]:
        labels, n = ndimage.label(core, structure=np.ones((3, 3, 3), dtype=bool))
        if n > 1:
            sizes = np.bincount(labels.ravel(), minlength=n + 1)
            sizes[0] = 0
            keep = int(np.argmax(sizes))
            core = labels == keep
            others = np.delete(sizes, [0, keep])
            info["n_dropped"] = int(others.sum())
            info["largest_dropped"] = int(others.max())
    return core, info


def _padded_box(k: np.ndarray, j: np.ndarray, i: np.ndarray) -> Tuple[np.ndarray, Tuple[int, int, int]]:
    """Boolean box around voxel indices, padded by one background voxel; its start index."""
    lo = (int(k.min()) - 1, int(j.min()) - 1, int(i.min()) - 1)
    shape = (int(k.max()) - lo[0] + 2, int(j.max()) - lo[1] + 2, int(i.max()) - lo[2] + 2)
    box = np.zeros(shape, dtype=bool)
    box[k - lo[0], j - lo[1], i - lo[2]] = True
    return box, lo


def trabecular_core(
    mask: np.ndarray,
    geometry: Geometry,
    centre_lps,
    axis_lps=None,
    *,
    erosion_mm: float = 5.0,
    slab_mm: Optional[float] = 10.0,
) -> np.ndarray:
    """Trabecular core of a whole-vertebra mask (see the module notes).

    Parameters
    ----------
    mask : numpy.ndarray of bool
        Vertebra mask ``[k, j, i]`` on ``geometry`` (whole vertebra, posterior
        elements included).
    geometry : Geometry
        Grid of ``mask`` (spacing for the distances, positions for the slab).
    centre_lps : array_like of 3 float
        Mid-body point in LPS mm; the slab is centred on it (e.g. the centroid
        of the whole vertebra mask, whose cranio-caudal position is that of
        the body).  Not used when ``slab_mm`` is None.
    axis_lps : array_like of 3 float, optional
        Local spine axis (LPS direction, any length and sign); default: the
        normal of the image's most nearly axial slice planes.
    erosion_mm : float
        Minimum distance (mm) of a core voxel centre from the outside of the
        mask (>= 0; default 5).
    slab_mm : float or None
        Thickness (mm) of the slab around ``centre_lps`` along the axis
        (default 10); None keeps the whole depth-eroded core.

    Returns
    -------
    numpy.ndarray of bool
        The core, same shape as ``mask`` (all False when nothing is deep
        enough, the slab misses the core or the mask is empty).

    Raises
    ------
    InputError
        Bad ``erosion_mm`` / ``slab_mm`` (naming ``--bone-erosion-mm`` /
        ``--bone-slab-mm``), a mask whose shape is not the geometry's, a
        non-finite centre or a zero axis.
    """
    erosion = _erosion(erosion_mm)
    slab = _slab(slab_mm)
    mask = np.asarray(mask, dtype=bool)
    _geometry_shape(mask, geometry, "the vertebra mask")
    axis = _axis(axis_lps, geometry)
    centre = _point(centre_lps, "the mid-body point (centre_lps)") if slab is not None else None
    out = np.zeros(mask.shape, dtype=bool)
    k, j, i = np.nonzero(mask)
    if k.size == 0:
        return out
    box, lo = _padded_box(k, j, i)
    core, _ = _core_in_box(box, lo, geometry, centre, axis, erosion, slab)
    inner = core[1:-1, 1:-1, 1:-1]
    out[lo[0] + 1: lo[0] + 1 + inner.shape[0], lo[1] + 1: lo[1] + 1 + inner.shape[1],
        lo[2] + 1: lo[2] + 1 + inner.shape[2]] = inner
    return out


# =============================================================================
# the table
# =============================================================================
def _segment_voxels(segmentation: Segmentation, segment: Segment):
    """(k, j, i) indices of a segment's voxels, from the layer's cached non-zero index."""
    found = segmentation.labelled_voxels(segment.layer)
    sel = found.labels == segment.label_value
    return tuple(found.index(axis, sel) for axis in range(3))


def _empty_reason(name: str, level: str, info: Dict[str, float], erosion: float,
                  slab: Optional[float], centre: np.ndarray) -> str:
    head = f"trabecular core of '{name}' ({level}) is empty, statistics NaN"
    if info["n_deep"] == 0:
        return (f"{head}: no voxel of the mask lies {erosion:g} mm or more inside it (deepest "
                f"{info['max_depth']:.1f} mm): the erosion is larger than the body (small, thin or "
                f"truncated vertebra, or coarse voxels); use a smaller --bone-erosion-mm")
    x, y, z = centre
    return (f"{head}: none of the {int(info['n_deep'])} voxels {erosion:g} mm deep lies in the {slab:g} mm "
            f"slab around the mid-body point LPS ({x:.1f}, {y:.1f}, {z:.1f}): is the point outside this "
            f"vertebra's body (vertebra cut off by the field of view)? Check the mask and the point, or use a "
            f"thicker --bone-slab-mm or a smaller --bone-erosion-mm")


def bone_table(
    image: np.ndarray,
    geometry: Geometry,
    segmentation: Segmentation,
    vertebrae: Mapping[str, Tuple[Segment, np.ndarray, np.ndarray]],
    *,
    subject: str,
    unit: str,
    erosion_mm: float = 5.0,
    slab_mm: Optional[float] = 10.0,
    calibration: Optional[Union[str, Sequence[float]]] = None,
):
    """Trabecular attenuation (and optionally vBMD) of vertebrae, one row each.

    Parameters
    ----------
    image : numpy.ndarray
        Image ``[k, j, i]`` on ``geometry`` (CT in HU for vBMD).
    geometry : Geometry
        Grid of ``image``.
    segmentation : Segmentation
        Segmentation on the same grid (resample it first with
        :func:`~ParaspinalFatLib.io.resample.resample_to_grid`).
    vertebrae : mapping
        Vertebra level in any spelling (``"L1"``, ``"vertebrae_L1"``) ->
        ``(segment, centre_lps, axis_lps)``: the whole-vertebra segment (a
        :class:`Segment` or its name), the mid-body point in LPS mm (the
        centroid of the whole mask; may be None when the segment is empty)
        and the local spine axis (None: the image slice normal).
    subject : str
        Subject id written in every row.
    unit : str
        Unit of the image values (``"HU"`` for CT).
    erosion_mm : float
        Depth (mm) of the core below the mask surface (default 5).
    slab_mm : float or None
        Slab thickness (mm) around the mid-body point (default 10; None: the
        whole core).
    calibration : str or pair of float, optional
        ``(slope, intercept)`` or ``"SLOPE,INTERCEPT"``:
        ``vBMD mg/cm^3 = slope * mean HU + intercept`` (see
        :func:`parse_calibration`); CT (unit HU) only.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`BONE_COLUMNS`, one row per vertebra, cranial to caudal:
        ``n_voxels``/``volume_ml`` of the core, statistics of the image in it
        (``unit``), the calibration and ``vbmd_mg_cm3`` / ``vbmd_category``
        (NaN / ``""`` without calibration), ``slab_mm`` NaN for the whole
        core, ``note`` (what the numbers are) and row ``warnings``.  A core
        that is empty gives NaN statistics and a warning saying why.

    Raises
    ------
    InputError
        Bad options (named with their command-line flag), a calibration for
        a unit other than HU, a key that is not a vertebra level (or two keys
        for one level), an image or segmentation not on ``geometry``, a
        non-finite centre of a non-empty vertebra.

    Warns
    -----
    ParaspinalFatWarning
        One warning listing the vertebrae whose core is empty (NaN).
    """
    import pandas as pd

    from ..stats.clinical_categories import vbmd_category

    erosion = _erosion(erosion_mm)
    slab = _slab(slab_mm)
    cal = None if calibration is None else parse_calibration(calibration)
    unit = str(unit)
    if cal is not None and unit.strip().upper() != "HU":
        raise InputError(
            f"{_CALIBRATION_OPT} converts CT numbers (HU) to vBMD, but the image unit is '{unit}': a "
            "calibration only makes sense for CT; drop --bmd-calibration or give a CT image in HU"
        )
    image = np.asarray(image)
    _geometry_shape(image, geometry, "the image")
    if tuple(segmentation.layers.shape[1:]) != tuple(geometry.shape) or not segmentation.geometry.same_grid(geometry):
        raise InputError(
            f"{segmentation.source}: the segmentation grid ({segmentation.geometry.describe()}) is not the "
            f"image grid ({geometry.describe()}); resample it onto the image first (resample_to_grid)"
        )
    items = []
    seen: Dict[str, str] = {}
    for key, value in vertebrae.items():
        level = canonical_level(key) if isinstance(key, str) else None
        if not is_vertebra_level(level):
            raise InputError(f"bone measurement: '{key}' is not a vertebra level; use names such as 'L1', 'L2'")
        if level in seen:
            raise InputError(f"bone measurement: '{seen[level]}' and '{key}' are both vertebra {level}; give it once")
        seen[level] = key
        try:
            segment, centre, axis = value
        except (TypeError, ValueError):
            raise InputError(
                f"bone measurement of {level}: expected (segment, centre_lps, axis_lps), got {value!r}"
            ) from None
        if isinstance(segment, str):
            segment = segmentation.segment(segment)
        items.append((level, segment, centre, axis))
    items.sort(key=lambda t: level_sort_key(t[0]))

    voxel_ml = geometry.voxel_volume_mm3() / 1000.0
    shear = geometry.shear_deg()
    nk, nj, ni = geometry.shape
    rows = []
    empty_rows: List[str] = []
    for level, segment, centre_in, axis_in in items:
        notes: List[str] = []
        k, j, i = _segment_voxels(segmentation, segment)
        values = np.zeros(0)
        if k.size == 0:
            notes.append(
                f"vertebra mask '{segment.name}' ({level}) has no voxel in the image (vertebra outside the field "
                "of view or not segmented): no trabecular core, statistics NaN"
            )
        else:
            axis = _axis(axis_in, geometry)
            centre = _point(centre_in, f"the mid-body point of {level} ('{segment.name}')") if slab is not None \
                else np.zeros(3)
            box, lo = _padded_box(k, j, i)
            core, info = _core_in_box(box, lo, geometry, centre, axis, erosion, slab)
            if (k.min() == 0 or j.min() == 0 or i.min() == 0 or k.max() == nk - 1 or j.max() == nj - 1
                    or i.max() == ni - 1):
                notes.append(
                    f"vertebra mask '{segment.name}' ({level}) touches the edge of the image: it may be cut off by "
                    "the field of view, so the mid-body point and slab may not be mid-vertebral; check it"
                )
            if shear > _SHEAR_TOL_DEG:
                notes.append(f"the image grid is sheared by {shear:.2f} degrees (gantry tilt): the erosion depth is "
                             "measured along the voxel axes and is approximate")
            ck, cj, ci = np.nonzero(core)
            if ck.size == 0:
                notes.append(_empty_reason(segment.name, level, info, erosion, slab, centre))
            else:
                values = image[ck + lo[0], cj + lo[1], ci + lo[2]]
                if info["largest_dropped"] >= _SPLIT_FRACTION * ck.size:
                    notes.append(
                        f"the trabecular core of '{segment.name}' ({level}) falls apart into pieces; the largest "
                        f"({ck.size} voxels) is kept and {int(info['n_dropped'])} voxels in other pieces (largest "
                        f"{int(info['largest_dropped'])}) are dropped: check the vertebra mask (two bodies in one "
                        "label?)"
                    )
        n = int(values.size)
        st = grouped_stats(np.zeros(n, dtype=np.intp), values.astype(np.float64, copy=False), 1)
        n_bad = int(st["n_nan"][0])
        if n and n_bad == n:
            notes.append(f"all {n} core voxels of '{segment.name}' ({level}) are NaN/inf in the image: statistics NaN")
        elif n_bad:
            notes.append(f"{n_bad} of {n} core voxels of '{segment.name}' ({level}) are NaN/inf in the image and "
                         "are left out of the statistics")
        mean = float(st["mean"][0])
        if not math.isfinite(mean):
            empty_rows.append(f"{segment.name} ({level})")
        if cal is None:
            slope = intercept = vbmd = float("nan")
            category = ""
            note = NO_CALIBRATION_NOTE
        else:
            slope, intercept = cal
            vbmd = slope * mean + intercept if math.isfinite(mean) else float("nan")
            category = vbmd_category(vbmd) if math.isfinite(vbmd) else ""
            note = (f"vBMD = {slope:g} x mean HU + {intercept:g} mg/cm3 (user calibration); category ACR/ISCD: "
                    "normal > 120, osteopenia 80-120, osteoporosis < 80")
        rows.append({
            "subject": subject, "level": level, "segment": segment.name, "erosion_mm": erosion,
            "slab_mm": float("nan") if slab is None else slab, "n_voxels": n, "volume_ml": n * voxel_ml,
            "mean": mean, "median": float(st["median"][0]), "sd": float(st["sd"][0]),
            "p05": float(st["p05"][0]), "p95": float(st["p95"][0]), "unit": unit,
            "calibration_slope": slope, "calibration_intercept": intercept, "vbmd_mg_cm3": vbmd,
            "vbmd_category": category, "note": note, "warnings": "; ".join(notes),
        })
    if empty_rows:
        warnings.warn(
            f"subject {subject}: no trabecular bone value for {', '.join(empty_rows)} (NaN; see the bone table's "
            "'warnings' column)", ParaspinalFatWarning, stacklevel=2,
        )
    table = pd.DataFrame(rows, columns=BONE_COLUMNS)
    return table.astype({"n_voxels": np.int64})

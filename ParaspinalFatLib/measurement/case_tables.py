"""Build the per-level, per-slice and whole-ROI tables of one case.

All three tables are the same computation over different groupings of the
gathered ROI voxels (:class:`~ParaspinalFatLib.measurement.voxels.RoiVoxels`):

* per level: group = planned row (ROI x level slice window),
* per slice: group = (ROI, slice),
* whole ROI: group = ROI,

so :func:`measure_groups` computes statistics and composition for any
grouping, and the three ``*_table`` functions only choose the grouping and the
descriptive columns.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple
import numpy as np
import pandas as pd
from ..composition.base import CompositionMethod
from ..geometry import Geometry
from .grading import grade_columns
from ..anatomy.level_names import level_sort_key
from .planning import Roi, Row
from ..schemas import COMPOSITION_COLUMNS, LEVEL_COLUMNS, ROI_COLUMNS, SLICE_COLUMNS
from ..segmentation import offsets_within_runs
from ..validation import factorize, texts_or_empty
from .voxels import RoiVoxels
from .quantities import measure_groups, method_columns


__all__ = ['level_table', 'slice_table', 'roi_table']

def _finish(df: pd.DataFrame, columns: List[str]) -> pd.DataFrame:
    for c in ("n_voxels", "n_nan", "n_below_noise"):
        if c in df:
            df[c] = df[c].fillna(0).astype(np.int64)
    return df[columns]


def level_table(rows: List[Row], rois: List[Roi], vox: RoiVoxels, counts: np.ndarray, area: float,
                method: CompositionMethod, subject: str, reference_roi: Optional[int] = None,
                codes_out: Optional[np.ndarray] = None, grading: Optional[Dict[str, Any]] = None,
                area_pixels: Optional[np.ndarray] = None, plane: Optional[Dict[str, Any]] = None) -> pd.DataFrame:
    """Per subject x muscle x side x level table (:data:`~ParaspinalFatLib.schemas.LEVEL_COLUMNS`).

    ``codes_out`` (optional, one int8 per gathered voxel) receives the class
    code of every voxel measured in a row (see
    :mod:`~ParaspinalFatLib.composition.base`).
    ``grading`` holds keyword arguments of :func:`.grading.add_grades`.

    Parameters
    ----------
    rows : list of Row
        The planned rows (:func:`~.planning.plan_rows`); each is measured on
        the voxels of its ROI in its slice window.  Rows whose windows overlap
        on the same ROI are measured in separate passes.
    rois : list of Roi
        The measured ROIs; ``Row.roi`` indexes this list.
    vox : RoiVoxels
        The gathered voxels of all ROIs (and of the reference ROI, if any).
    counts : numpy.ndarray of int
        Voxel count per (ROI, slice) (:meth:`RoiVoxels.counts_per_slice`);
        only its shape is used (number of slices along the slice axis).
    area : float
        In-plane voxel area of the slice planes (mm^2,
        :meth:`Geometry.pixel_area_mm2`).
    method : CompositionMethod
        How voxel values are made and classified (PDFF, Dixon, CT...).
    subject : str
        Value of the ``subject`` column.
    reference_roi : int, optional
        ROI number of the reference fat segment in ``vox`` (T1/T2
        ``reference`` classifier); each row gets the reference voxels of its
        own slice window.  ``None``: no reference.
    codes_out : numpy.ndarray of int8, optional
        One entry per gathered voxel; the class code of every voxel measured
        in a row is written into it (entries of voxels in no row are left
        unchanged).
    grading : dict, optional
        Keyword arguments of :func:`.grading.add_grades` (``source``,
        ``goutallier_cutoffs``, ``kjaer_cutoffs``); defaults when ``None``.
    area_pixels : numpy.ndarray, optional
        ``(n_rois, n_slices)`` partial-volume area in pixels of every ROI on
        every (oblique) plane (:class:`.planes.PlaneSamples`): the CSA of a
        row is then its mean over the row's window times ``area``, instead of
        the voxel count.
    plane : dict, optional
        The plane columns: ``"plane"`` (``"image"``/``"disc"``) and per row
        ``"normal"`` (``(n_rows, 3)`` LPS unit normals) and ``"tilt_deg"``;
        ``None``: the image plane (normal = the image slice normal given as
        ``{"plane": "image", "normal": (3,)}`` is also accepted).

    Returns
    -------
    pandas.DataFrame
        One row per planned row with exactly the columns of
        :data:`~ParaspinalFatLib.schemas.LEVEL_COLUMNS` (grades included),
        sorted by muscle, side and level (cranial to caudal), index reset.
        ``csa_mm2`` is the mean area per slice of the window (mm^2);
        statistics are in ``method.unit``.
    """
    n_rows = len(rows)
    row_roi = np.array([r.roi for r in rows], dtype=np.intp)
    first = np.array([r.window[0] for r in rows], dtype=np.intp)
    last = np.array([r.window[1] for r in rows], dtype=np.intp)
    n_sl = (last - first + 1).astype(float)
    # the naming columns: read per ROI, then spread to its rows
    at_roi = row_roi.tolist()
    segment_col = _per_row([r.segment.name for r in rois], at_roi)
    muscle_col = _per_row([r.muscle for r in rois], at_roi)
    level_col = [r.level for r in rows]
    labels = [f"segment '{name}' ({level})" for name, level in zip(segment_col, level_col)]  # for refusals
    # per row, whatever the pass: the reference voxels of its window and its partial-volume CSA
    refs = None
    if reference_roi is not None:
        refs = [_reference_on_slices(vox, reference_roi, range(r.window[0], r.window[1] + 1)) for r in rows]
    csa = None
    if area_pixels is not None:
        csa = np.array([area_pixels[r.roi, r.window[0]: r.window[1] + 1].sum() for r in rows]) * area / n_sl
    cols: Dict[str, np.ndarray] = {}
    ns = counts.shape[1]
    for members in _non_overlapping_passes(row_roi, first, last):
        # every (ROI, slice) of the pass's windows -> its row; the slices of the windows
        mem = np.asarray(members, dtype=np.intp)
        width = np.maximum(last[mem] - first[mem] + 1, 0)
        slices = np.repeat(first[mem], width) + offsets_within_runs(width)
        row_of = np.full(counts.size, -1, dtype=np.intp)
        row_of[np.repeat(row_roi[mem], width) * ns + slices] = np.repeat(mem, width)
        in_window = np.zeros(ns, bool)
        in_window[slices] = True
        # the voxels on a slice of some window first (taken run by run from the image when the voxels'
        # arrays are not made: a few slices of the muscles), then their rows: no ROI x slice key of
        # every gathered voxel (a CT's whole muscles: millions)
        sub, at = vox.subset(in_window)
        rid = row_of[sub.roi.astype(np.intp) * ns + sub.slice_index]
        sel = np.flatnonzero(rid >= 0)
        rid = rid[sel]
        sub_codes = None if codes_out is None else np.zeros(sub.size, dtype=codes_out.dtype)
        part = measure_groups(sub, sel, rid, n_rows, method, muscle_col, area, n_sl, refs, sub_codes,
                              labels=labels, csa_mm2=csa)
        if codes_out is not None:
            codes_out[at[sel]] = sub_codes[sel]
        idx = np.asarray(members)
        for name, arr in part.items():
            if name not in cols:
                cols[name] = np.full(n_rows, np.nan, dtype=object if arr.dtype == object else float)
            cols[name][idx] = arr[idx]
    for c in ("n_voxels", "n_nan", "n_below_noise"):
        if c in cols:
            cols[c] = np.nan_to_num(cols[c], nan=0.0).astype(np.int64)
    if n_rows and "warnings" in cols:
        cols["warnings"] = texts_or_empty(cols["warnings"])
    composition = {c: cols.get(c, np.full(n_rows, np.nan)) for c in COMPOSITION_COLUMNS}
    grades = grade_columns(composition["fat_fraction_pct"], composition["fat_area_ratio"], **(grading or {}))
    data: Dict[str, Any] = {
        "subject": [subject] * n_rows,
        "segment": segment_col,
        "muscle": muscle_col,
        "side": _per_row([r.side or "" for r in rois], at_roi),
        "level": level_col,
        "level_source": [r.level_source for r in rows],
        "slice_index": np.array([r.slice_index for r in rows], dtype=np.int64),
        "slice_offset_mm": np.array([r.slice_offset_mm for r in rows], dtype=float),
        **_plane_columns(plane, n_rows),
        "n_slices": n_sl.astype(np.int64),
        "pixel_area_mm2": np.full(n_rows, float(area)),
        **composition,
        **grades,
        **method_columns(method, n_rows),
    }
    # rows sorted by muscle, side and level (cranial to caudal); one table built in its final order
    # (a stable sort on the ranks of the distinct values: the order of sorting the rows by
    # (muscle, side, level key), ties kept in row order)
    level_order = sorted(set(level_col), key=level_sort_key)  # one parse per distinct level
    level_rank = {level: r for r, level in enumerate(level_order)}
    at = np.lexsort((np.fromiter((level_rank[v] for v in level_col), dtype=np.intp, count=n_rows),
                     factorize(data["side"], sort=True)[0], factorize(data["muscle"], sort=True)[0]))
    order = at.tolist()
    return pd.DataFrame({c: _take(data[c], order, at) for c in LEVEL_COLUMNS})


def _per_row(per_roi: List[Any], at_roi: List[int]) -> List[Any]:
    """The value of each row's ROI (``per_roi[roi]`` for the ROI number of every row)."""
    return [per_roi[i] for i in at_roi]


def _take(values, order: List[int], at: np.ndarray):
    """``values`` (list, numpy or pandas array) in the row order ``order`` (``at``: the same as an array)."""
    if isinstance(values, list):
        return [values[i] for i in order]
    return values[at]


def _plane_columns(plane: Optional[Dict[str, Any]], n_rows: int) -> Dict[str, Any]:
    """``plane``, ``plane_normal_lps_x/y/z`` and ``plane_tilt_deg`` of every row."""
    plane = plane or {}
    normal = np.asarray(plane.get("normal", (np.nan, np.nan, np.nan)), dtype=float)
    normals = np.broadcast_to(normal, (n_rows, 3)) if normal.ndim == 1 else normal.reshape(n_rows, 3)
    tilt = np.broadcast_to(np.asarray(plane.get("tilt_deg", 0.0), dtype=float), (n_rows,))
    return {
        "plane": [plane.get("plane", "image")] * n_rows,
        "plane_normal_lps_x": normals[:, 0].copy(),
        "plane_normal_lps_y": normals[:, 1].copy(),
        "plane_normal_lps_z": normals[:, 2].copy(),
        "plane_tilt_deg": tilt.copy(),
    }


def _non_overlapping_passes(roi: np.ndarray, first: np.ndarray, last: np.ndarray) -> List[List[int]]:
    """Split rows into passes in which no (ROI, slice) belongs to two rows.

    Row ``r`` measures ROI ``roi[r]`` on the inclusive slice window ``first[r]``..``last[r]``.
    A row goes into the first pass where no row of its ROI has a slice window that
    overlaps its own.
    When no two windows of one ROI overlap (the usual case: levels are far apart),
    that is a single pass of every row, found without a loop.
    """
    if len(roi) > 1:
        order = np.lexsort((first, roi))
        # windows of one ROI sorted by start overlap nowhere iff each starts after the previous one ends
        clash = (roi[order][1:] == roi[order][:-1]) & (first[order][1:] <= last[order][:-1])
        if not clash.any():
            return [list(range(len(roi)))]
    passes: List[List[int]] = []
    taken: List[Dict[int, List[Tuple[int, int]]]] = []
    for r_i, (number, lo, hi) in enumerate(zip(roi.tolist(), first.tolist(), last.tolist())):
        for p_i, windows in enumerate(taken):
            used = windows.setdefault(number, [])
            if not any(a <= hi and lo <= b for a, b in used):
                passes[p_i].append(r_i)
                used.append((lo, hi))
                break
        else:
            taken.append({number: [(lo, hi)]})
            passes.append([r_i])
    return passes


def _reference_on_slices(vox: RoiVoxels, reference_roi: int, slices) -> np.ndarray:
    mask = (vox.roi == reference_roi) & np.isin(vox.slice_index, np.asarray(list(slices)))
    return vox.values_at(mask).astype(np.float64)


def slice_table(rois: List[Roi], vox: RoiVoxels, area: float, method: CompositionMethod, subject: str,
                geometry: Geometry, axis: int, reference_roi: Optional[int] = None) -> pd.DataFrame:
    """One row per ROI x slice where the ROI has voxels (:data:`~ParaspinalFatLib.schemas.SLICE_COLUMNS`).

    Parameters
    ----------
    rois : list of Roi
        The measured ROIs (ROI numbers in ``vox`` index this list).
    vox : RoiVoxels
        The gathered voxels.
    area : float
        In-plane voxel area of the slice planes (mm^2).
    method : CompositionMethod
        How voxel values are made and classified (PDFF, Dixon, CT...).
    subject : str
        Value of the ``subject`` column.
    geometry : Geometry
        Image grid, used for ``slice_position_mm``.
    axis : int
        ITK slice axis (0 = i, 1 = j, 2 = k).
    reference_roi : int, optional
        ROI number of the reference fat segment in ``vox``; it gets no rows
        and each slice row gets the reference voxels of that slice.

    Returns
    -------
    pandas.DataFrame
        Exactly the columns of :data:`~ParaspinalFatLib.schemas.SLICE_COLUMNS`,
        ordered by ROI then slice index.  ``slice_position_mm`` is the
        distance (mm) of the slice plane from the plane through the grid
        origin, along the slice normal; ``level`` is the level in the
        segment name or ``""``; ``csa_mm2`` is the area on that slice.
    """
    ns = vox.n_slices
    sel = np.flatnonzero(vox.roi != (-1 if reference_roi is None else reference_roi))
    key = vox.roi[sel] * ns + vox.slice_index[sel]
    uniq, inverse = np.unique(key, return_inverse=True)
    roi_idx, sl = uniq // ns, uniq % ns
    refs = None
    if reference_roi is not None:
        refs = [_reference_on_slices(vox, reference_roi, [s]) for s in sl]
    cols = measure_groups(vox, sel, inverse.ravel(), uniq.size, method, [rois[r].muscle for r in roi_idx],
                          area, np.ones(uniq.size), refs,
                          labels=[f"segment '{rois[r].segment.name}' (slice {s})" for r, s in zip(roi_idx, sl)])
    normal = geometry.plane_normal(axis)
    step = float(normal @ geometry.direction_matrix[:, axis]) * geometry.spacing[axis]
    df = pd.DataFrame({
        "subject": subject,
        "segment": [rois[r].segment.name for r in roi_idx],
        "muscle": [rois[r].muscle for r in roi_idx],
        "side": [rois[r].side or "" for r in roi_idx],
        "level": [rois[r].level or "" for r in roi_idx],
        "slice_index": sl.astype(int),
        "slice_position_mm": sl * step,  # distance of the slice plane from the origin along the normal
        **method_columns(method, uniq.size),
        **{c: cols[c] for c in COMPOSITION_COLUMNS},
    })
    return _finish(df, SLICE_COLUMNS)


def roi_table(rois: List[Roi], vox: RoiVoxels, counts: np.ndarray, area: float, method: CompositionMethod,
              subject: str, geometry: Geometry, reference_roi: Optional[int] = None) -> pd.DataFrame:
    """Whole-ROI 3-D summary per segment (:data:`~ParaspinalFatLib.schemas.ROI_COLUMNS`).

    Parameters
    ----------
    rois : list of Roi
        The measured ROIs; one output row each.
    vox : RoiVoxels
        The gathered voxels; ROI numbers ``>= len(rois)`` (the reference
        ROI) are not summarised.
    counts : numpy.ndarray of int
        Voxel count per (ROI, slice) (:meth:`RoiVoxels.counts_per_slice`);
        gives the slice range and the CSA per slice.
    area : float
        In-plane voxel area of the slice planes (mm^2).
    method : CompositionMethod
        How voxel values are made and classified (PDFF, Dixon, CT...).
    subject : str
        Value of the ``subject`` column.
    geometry : Geometry
        Image grid, for the voxel volume.
    reference_roi : int, optional
        ROI number of the reference fat segment in ``vox``; all its voxels
        are the reference of every ROI.

    Returns
    -------
    pandas.DataFrame
        One row per ROI, in ``rois`` order, with exactly the columns of
        :data:`~ParaspinalFatLib.schemas.ROI_COLUMNS`: ``volume_ml`` and
        ``*_volume_ml`` in mL; ``n_slices``, ``first_slice`` and
        ``last_slice`` count/index the slices with voxels (-1 when the ROI
        is empty); ``mean_csa_mm2`` (over the slices with voxels) and
        ``max_csa_mm2`` in mm^2 (NaN when empty); ``fat_volume_ratio`` as a
        fraction 0..1 of the classified voxels; statistics in
        ``method.unit``.
    """
    n = len(rois)
    sel = np.flatnonzero(vox.roi < n)
    refs = None
    if reference_roi is not None:
        refs = [vox.values_at(vox.roi == reference_roi).astype(np.float64)] * n
    vox_ml = geometry.voxel_volume_mm3() / 1000.0
    # area 1 and one "slice": the *_csa_mm2 columns are voxel counts, converted to mL below
    cols = measure_groups(vox, sel, vox.roi[sel], n, method, [r.muscle for r in rois],
                          1.0, np.ones(n), refs, labels=[f"segment '{r.segment.name}' (whole ROI)" for r in rois])
    present = counts[:n] > 0
    n_present = present.sum(axis=1)
    total = counts[:n].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_csa = np.where(n_present > 0, total * area / np.maximum(n_present, 1), np.nan)
    max_csa = np.where(n_present > 0, counts[:n].max(axis=1) * area, np.nan)
    first = np.array([np.flatnonzero(p)[0] if p.any() else -1 for p in present])
    last = np.array([np.flatnonzero(p)[-1] if p.any() else -1 for p in present])
    df = pd.DataFrame({
        "subject": subject,
        "segment": [r.segment.name for r in rois],
        "muscle": [r.muscle for r in rois],
        "side": [r.side or "" for r in rois],
        "level": [r.level or "" for r in rois],
        "volume_ml": cols["n_voxels"] * vox_ml,
        "n_slices": n_present,
        "first_slice": first,
        "last_slice": last,
        "mean_csa_mm2": mean_csa,
        "max_csa_mm2": max_csa,
        "fat_volume_ml": cols["fat_csa_mm2"] * vox_ml,
        "lean_volume_ml": cols["lean_csa_mm2"] * vox_ml,
        "undefined_volume_ml": cols["undefined_csa_mm2"] * vox_ml,
        **method_columns(method, n),
        "fat_volume_ratio": cols["fat_area_ratio"],
        **{c: cols[c] for c in COMPOSITION_COLUMNS if not c.endswith("_csa_mm2") and c != "fat_area_ratio"},
    })
    return _finish(df, ROI_COLUMNS)

"""Measure one case: image + segmentation -> per muscle x side x level table.

Pipeline
--------
1. Read the image (any SimpleITK format, a DICOM folder) and the segmentation
   (Slicer ``.seg.nrrd``, labelmap + names, TotalSegmentator/TotalSpineSeg
   NIfTI, DICOM SEG) and put the segmentation on the image grid (nearest
   neighbour, in physical space).
2. Parse every segment name into (muscle, side, level, kind).
3. Find the measurement slice of every ROI: a level in the segment name wins
   (the ROI's own slice); otherwise the disc-level landmarks (disc masks, then
   vertebra masks, then a markups file) give mid-disc points, and the slice is
   the image plane nearest to that point along the slice normal.
4. Gather all ROI voxels in one pass per layer and compute grouped statistics.

See :class:`MeasureOptions` for every option and :data:`LEVEL_COLUMNS` for the
output columns.
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
import SimpleITK as sitk

from . import io_image
from .errors import InputError, LevelError, MeasurementError
from .geometry import Geometry
from .groupstats import grouped_stats
from .maps import MapSpec, make_map_spec
from .segmentation import Segment, Segmentation
from .tables import LEVEL_COLUMNS, ROI_COLUMNS, SLICE_COLUMNS, level_sort_key, summarize
from .voxels import RoiVoxels, gather_roi_voxels

__all__ = ["MeasureOptions", "CaseMeasurement", "measure", "measure_case", "DEFAULT_LEVELS"]

#: disc levels measured by default for 3-D muscle masks (the "lower lumbar profile")
DEFAULT_LEVELS = ("L3/4", "L4/5", "L5/S1")


@dataclass(frozen=True)
class MeasureOptions:
    """Options of :func:`measure` (all keyword arguments of :func:`measure_case`).

    Attributes
    ----------
    map_kind : str
        ``"pdff"`` (fat-fraction map, output in %) or ``"scalar"`` (any map).
    pdff_scale : str, optional
        Declared PDFF storage scale ``"0-1"``, ``"0-100"`` or ``"0-1000"``;
        detected from the image when omitted.
    fat_threshold_pct : float
        A voxel is fat when PDFF >= this value (%).  Default 50.
    unit : str, optional
        Unit of a scalar map (``"HU"``, ``"mm2/s"``...), written to the table.
    levels : sequence of str or "all"
        Disc levels at which 3-D muscle masks are measured.  Default
        ``L3/4, L4/5, L5/S1``; ``"all"`` = every level the sources give.  ROIs
        whose name carries a level are always measured at their own slice.
    n_slices : int
        Average over this many slices centred on the level slice (odd, >= 1).
        CSA is then the mean CSA per slice; intensity statistics pool the voxels.
    per_slice : bool
        Also return the per-slice table (every slice of every ROI).
    whole_roi : bool
        Also return the whole-ROI 3-D summary (volume, mean/median/SD, CSA).
    segments : sequence of str, optional
        Measure exactly these segments (by name); default: every segment whose
        name parses as a muscle (all non-landmark segments when none does).
    on_empty : str
        ``"error"`` (default): an ROI with no voxel on its level slice is an
        error naming segment, level and slice; ``"keep"``: keep the row with
        ``n_voxels = 0`` and NaN statistics.
    assume_same_grid : bool
        Accept a segmentation/image pair whose arrays have the same size but
        whose headers disagree, using the image header (warns).
    subject : str, optional
        Subject id for the ``subject`` column (default: image file stem).
    markups : str or path, optional
        Slicer markups file (``.mrk.json``/``.fcsv``) with points labelled by level.
    label_names : str, path or dict, optional
        Names for a labelmap segmentation (``.ctbl``/``.txt``/``.json``/``.csv``).
    convention : str, optional
        ``"totalsegmentator"`` or ``"totalspineseg"`` label convention.
    name_table : str or path, optional
        User CSV extending the built-in muscle-name table.
    cranio_caudal : tuple of 3 float
        Spine axis in LPS used to choose the slice orientation (default +z).
    """

    map_kind: str = "pdff"
    pdff_scale: Optional[str] = None
    fat_threshold_pct: float = 50.0
    unit: Optional[str] = None
    levels: Union[Sequence[str], str] = DEFAULT_LEVELS
    n_slices: int = 1
    per_slice: bool = False
    whole_roi: bool = False
    segments: Optional[Sequence[str]] = None
    on_empty: str = "error"
    assume_same_grid: bool = False
    subject: Optional[str] = None
    markups: Optional[Union[str, Path]] = None
    label_names: Any = None
    convention: Optional[str] = None
    name_table: Optional[Union[str, Path]] = None
    cranio_caudal: Tuple[float, float, float] = (0.0, 0.0, 1.0)

    @classmethod
    def from_kwargs(cls, **kwargs) -> "MeasureOptions":
        """Build options, rejecting unknown names with the list of valid ones."""
        valid = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - valid)
        if unknown:
            raise TypeError(f"unknown option(s) {unknown}; valid options: {sorted(valid)}")
        opts = cls(**kwargs)
        if int(opts.n_slices) < 1 or int(opts.n_slices) % 2 == 0:
            raise InputError(f"n_slices must be an odd number >= 1, got {opts.n_slices}")
        if opts.on_empty not in ("error", "keep"):
            raise InputError(f"on_empty must be 'error' or 'keep', got {opts.on_empty!r}")
        return opts


@dataclass
class CaseMeasurement:
    """Everything measured for one case.

    Attributes
    ----------
    levels : pandas.DataFrame
        One row per subject x muscle x side x level (:data:`LEVEL_COLUMNS`).
    slices : pandas.DataFrame or None
        One row per ROI x slice (when ``per_slice``).
    rois : pandas.DataFrame or None
        Whole-ROI 3-D summary per segment (when ``whole_roi``).
    landmarks : pandas.DataFrame
        The level points used: level, source, LPS x/y/z, slice index, offset.
    warnings : list of str
        Non-fatal findings (also issued as Python warnings).
    """

    levels: pd.DataFrame
    slices: Optional[pd.DataFrame]
    rois: Optional[pd.DataFrame]
    landmarks: pd.DataFrame
    warnings: List[str] = field(default_factory=list)

    def summary(self, wide: bool = False) -> pd.DataFrame:
        """Per-subject left/right/asymmetry/level-mean summary (see :func:`tables.summarize`)."""
        return summarize(self.levels, wide=wide)


@dataclass
class _Roi:
    segment: Segment
    muscle: str
    side: Optional[str]
    level: Optional[str]


@dataclass
class _Row:
    roi: int
    level: str
    level_source: str
    slice_index: int
    slice_offset_mm: float
    window: Tuple[int, int]  # first, last slice (inclusive)


# --------------------------------------------------------------------------- inputs
def _load_inputs(image, segmentation, opts: MeasureOptions):
    from .io_segmentation import read_segmentation, resample_to_grid

    img = io_image.read_image(image, role="image")
    geometry = Geometry.from_sitk(img)
    array = io_image.image_array(img)
    if isinstance(segmentation, Segmentation):
        seg = segmentation
    else:
        seg = read_segmentation(segmentation, names=opts.label_names, convention=opts.convention)
    if (
        not seg.geometry.same_grid(geometry)
        and tuple(seg.geometry.size) == tuple(geometry.size)
        and not seg.geometry.covers_same_region(geometry)
    ):
        # Same array size but the headers put the voxels in different places: most likely
        # one file lost its header (seen in real Dixon data).  Refuse unless told that it
        # is one grid.  (Same size *and* same region, e.g. a flipped axis, is resampled.)
        io_image.check_same_grid(
            geometry, seg.geometry, f"image {_name(image)}", f"segmentation {seg.source}",
            assume_same_grid=opts.assume_same_grid,
        )
        seg = seg.with_layers(seg.layers, geometry)
    return img, geometry, array, seg, resample_to_grid


def _name(obj) -> str:
    return "(SimpleITK image)" if isinstance(obj, sitk.Image) else str(obj)


def _subject_id(image, opts: MeasureOptions) -> str:
    if opts.subject:
        return str(opts.subject)
    if isinstance(image, sitk.Image):
        return "subject"
    name = Path(image).name
    for ext in (".nii.gz", ".seg.nrrd", ".nrrd", ".nii", ".mha", ".mhd"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


def _select_rois(seg: Segmentation, opts: MeasureOptions, table) -> List[_Roi]:
    from .names import parse_segment_name

    parsed = [(s, parse_segment_name(s.name, table=table)) for s in seg.segments]
    if opts.segments:
        wanted = {n.lower() for n in opts.segments}
        chosen = [(s, p) for s, p in parsed if s.name.lower() in wanted]
        missing = wanted - {s.name.lower() for s, _ in chosen}
        if missing:
            raise InputError(
                f"{seg.source}: segment(s) {sorted(missing)} not found; segments are {seg.names()}"
            )
    else:
        chosen = [(s, p) for s, p in parsed if p.kind == "muscle"]
        if not chosen:
            chosen = [(s, p) for s, p in parsed if p.kind == "other"]
    if not chosen:
        raise InputError(
            f"{seg.source}: no muscle segment found to measure; segments are {seg.names()} "
            f"(name them e.g. 'multifidus_left', or pass segments=[...] / --segments)"
        )
    return [_Roi(s, p.muscle or p.raw, p.side, p.level) for s, p in chosen]


# --------------------------------------------------------------------------- rows
def _plan_rows(
    rois: List[_Roi],
    counts: np.ndarray,
    landmarks: Dict[str, Any],
    geometry: Geometry,
    axis: int,
    opts: MeasureOptions,
    seg_source: str,
    notes: List[str],
) -> List[_Row]:
    n_slices_grid = counts.shape[1]
    half = int(opts.n_slices) // 2
    if isinstance(opts.levels, str):
        if opts.levels.lower() != "all":
            raise InputError(f"levels must be a list of disc levels or 'all', got {opts.levels!r}")
        wanted = None
    else:
        from .names import canonical_level

        wanted = []
        for lv in opts.levels:
            c = canonical_level(lv)
            if c is None:
                raise InputError(f"cannot read level {lv!r}; write levels like L4/5 or L5/S1")
            wanted.append(c)
    rows: List[_Row] = []
    level_slices: Dict[str, Tuple[int, float]] = {}
    for level, mark in landmarks.items():
        level_slices[level] = geometry.nearest_slice(mark.point_lps, axis)
    if wanted is not None and any(r.level is None for r in rois):
        absent = [lv for lv in wanted if lv not in level_slices]
        if landmarks and absent:
            notes.append(
                f"level(s) {absent} not found by any level source "
                f"(found: {sorted(level_slices, key=level_sort_key)})"
            )
    for number, roi in enumerate(rois):
        present = np.flatnonzero(counts[number])
        if roi.level is not None:
            if present.size == 0:
                raise MeasurementError(
                    f"{seg_source}: segment '{roi.segment.name}' is empty (no voxel inside the "
                    f"image); redraw it or remove it"
                )
            s = int(present[np.argmax(counts[number, present])])
            if present.size > 1:
                notes.append(
                    f"segment '{roi.segment.name}' carries level {roi.level} in its name but spans "
                    f"{present.size} slices; measured on slice {s}, the one with the largest area"
                )
            rows.append(_Row(number, roi.level, "segment_name", s, 0.0, (s, s)))
            continue
        if not landmarks:
            if opts.per_slice or opts.whole_roi:
                notes.append(
                    f"segment '{roi.segment.name}' has no level in its name and no level source was "
                    f"found: no per-level row (the per-slice / whole-ROI tables have it)"
                )
                continue
            raise LevelError(
                f"{seg_source}: segment '{roi.segment.name}' has no level in its name and no level "
                f"source was found (no disc or vertebra segments, no markups file): name the "
                f"segment with its level (e.g. 'MF_L_L4/5'), add vertebra/disc masks, or give a "
                f"markups file with points labelled L3/4, L4/5, L5/S1 (--markups)"
            )
        for level in sorted(level_slices, key=level_sort_key):
            if wanted is not None and level not in wanted:
                continue
            s, offset = level_slices[level]
            if not 0 <= s < n_slices_grid:
                notes.append(
                    f"level {level} (from {landmarks[level].source}) lies outside the image "
                    f"(slice {s} of 0..{n_slices_grid - 1}); not measured"
                )
                continue
            first, last = max(0, s - half), min(n_slices_grid - 1, s + half)
            if counts[number, first: last + 1].sum() == 0 and opts.on_empty == "error":
                raise MeasurementError(
                    f"{seg_source}: segment '{roi.segment.name}' has no voxel on slice {s} "
                    f"(level {level}, from {landmarks[level].source}); check that the segmentation "
                    f"covers this level, restrict the levels (--levels), or use --on-empty keep"
                )
            rows.append(_Row(number, level, landmarks[level].source, s, float(offset), (first, last)))
    return rows


# --------------------------------------------------------------------------- stats
def _stats_frame(groups, values, n_groups, spec: MapSpec) -> Dict[str, np.ndarray]:
    thr = spec.fat_threshold_pct if spec.has_composition else None
    return grouped_stats(groups, values, n_groups, threshold=thr)


def _composition(st, n_slices, area, spec: MapSpec) -> Dict[str, np.ndarray]:
    n = st["n"]
    out = {
        "n_voxels": n,
        "n_nan": st["n_nan"],
        "csa_mm2": n * area / n_slices,
        "mean": st["mean"],
        "median": st["median"],
        "sd": st["sd"],
        "p05": st["p05"],
        "p95": st["p95"],
    }
    if spec.has_composition:
        with np.errstate(invalid="ignore", divide="ignore"):
            fat = st["n_above"]
            lean = st["n_finite"] - fat
            out["fat_csa_mm2"] = fat * area / n_slices
            out["lean_csa_mm2"] = lean * area / n_slices
            out["fat_area_ratio"] = np.where(st["n_finite"] > 0, fat / st["n_finite"], np.nan)
            out["fat_fraction_pct"] = st["mean"]
    else:
        nan = np.full(n.shape, np.nan)
        for col in ("fat_csa_mm2", "lean_csa_mm2", "fat_area_ratio", "fat_fraction_pct"):
            out[col] = nan
    return out


def _map_columns(spec: MapSpec, n: int) -> Dict[str, Any]:
    return {
        "map_kind": [spec.kind] * n,
        "unit": [spec.unit] * n,
        "fat_threshold_pct": [spec.fat_threshold_pct if spec.has_composition else np.nan] * n,
        "pdff_scale": [spec.pdff_scale or ""] * n,
    }


# --------------------------------------------------------------------------- API
def measure(image, segmentation, **options) -> CaseMeasurement:
    """Measure every muscle ROI of one case.

    Parameters
    ----------
    image : str, path-like or SimpleITK.Image
        The parameter map (PDFF, HU, FA...), 3-D.
    segmentation : str, path-like, SimpleITK.Image or Segmentation
        Muscle (and optionally vertebra/disc) segmentation.
    **options
        See :class:`MeasureOptions`.

    Returns
    -------
    CaseMeasurement
        ``.levels`` (per level), ``.slices`` and ``.rois`` when requested,
        ``.landmarks`` and ``.warnings``.
    """
    opts = MeasureOptions.from_kwargs(**options)
    notes: List[str] = []
    img, geometry, array, seg, resample_to_grid = _load_inputs(image, segmentation, opts)
    from .levels import find_landmarks
    from .names import load_name_table

    table = load_name_table(opts.name_table) if opts.name_table else None
    rois = _select_rois(seg, opts, table)
    landmarks = find_landmarks(segmentation=seg, markups=opts.markups, table=table)
    seg_grid = resample_to_grid(seg, geometry)
    spec = make_map_spec(
        opts.map_kind, array, pdff_scale=opts.pdff_scale,
        fat_threshold_pct=opts.fat_threshold_pct, unit=opts.unit, source=f"image {_name(image)}",
    )
    axis = geometry.slice_axis(opts.cranio_caudal)
    area = geometry.pixel_area_mm2(axis)
    vox = gather_roi_voxels(array, seg_grid, [(r.segment.layer, r.segment.label_value) for r in rois], axis)
    values = vox.value.astype(np.float64) * spec.to_output
    counts = vox.counts_per_slice()
    rows = _plan_rows(rois, counts, landmarks, geometry, axis, opts, seg.source, notes)
    subject = _subject_id(image, opts)

    levels_df = _level_table(rows, rois, vox, values, counts, area, spec, subject)
    slices_df = _slice_table(rois, vox, values, area, spec, subject, geometry, axis) if opts.per_slice else None
    rois_df = _roi_table(rois, vox, values, counts, area, spec, subject, geometry) if opts.whole_roi else None
    marks_df = _landmark_table(landmarks, geometry, axis)
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return CaseMeasurement(levels_df, slices_df, rois_df, marks_df, notes)


def measure_case(image, segmentation, **options) -> pd.DataFrame:
    """Per subject x muscle x side x level table of one case.

    Shorthand for ``measure(image, segmentation, **options).levels``; see
    :func:`measure` and :class:`MeasureOptions`.
    """
    return measure(image, segmentation, **options).levels


def _level_table(rows, rois, vox: RoiVoxels, values, counts, area, spec, subject) -> pd.DataFrame:
    n_rows = len(rows)
    # (roi, slice) -> row; rows of one ROI whose windows overlap go to separate passes
    passes: List[List[int]] = []
    taken: List[np.ndarray] = []
    for r_i, row in enumerate(rows):
        for p_i, used in enumerate(taken):
            if not used[row.roi, row.window[0]: row.window[1] + 1].any():
                passes[p_i].append(r_i)
                used[row.roi, row.window[0]: row.window[1] + 1] = True
                break
        else:
            used = np.zeros(counts.shape, bool)
            used[row.roi, row.window[0]: row.window[1] + 1] = True
            taken.append(used)
            passes.append([r_i])
    cols: Dict[str, np.ndarray] = {}
    n_sl = np.array([r.window[1] - r.window[0] + 1 for r in rows], dtype=float)
    for members in passes:
        row_of = np.full(counts.size, -1, dtype=np.intp)
        for r_i in members:
            row = rows[r_i]
            base = row.roi * counts.shape[1]
            row_of[base + row.window[0]: base + row.window[1] + 1] = r_i
        rid = row_of[vox.roi * counts.shape[1] + vox.slice_index] if vox.roi.size else vox.roi
        sel = rid >= 0
        st = grouped_stats(rid[sel], values[sel], n_rows, threshold=spec.fat_threshold_pct if spec.has_composition else None)
        comp = _composition(st, n_sl, area, spec)
        for key, arr in comp.items():
            if key not in cols:
                cols[key] = np.full(n_rows, np.nan)
            idx = np.asarray(members)
            cols[key][idx] = np.asarray(arr, dtype=float)[idx]
    df = pd.DataFrame(
        {
            "subject": [subject] * n_rows,
            "segment": [rois[r.roi].segment.name for r in rows],
            "muscle": [rois[r.roi].muscle for r in rows],
            "side": [rois[r.roi].side or "" for r in rows],
            "level": [r.level for r in rows],
            "level_source": [r.level_source for r in rows],
            "slice_index": [r.slice_index for r in rows],
            "slice_offset_mm": [r.slice_offset_mm for r in rows],
            "n_slices": n_sl.astype(int),
            "pixel_area_mm2": [area] * n_rows,
            **{k: cols.get(k, np.full(n_rows, np.nan)) for k in (
                "n_voxels", "n_nan", "csa_mm2", "mean", "median", "sd", "p05", "p95")},
            **_map_columns(spec, n_rows),
            **{k: cols.get(k, np.full(n_rows, np.nan)) for k in (
                "fat_csa_mm2", "lean_csa_mm2", "fat_area_ratio", "fat_fraction_pct")},
        }
    )
    for c in ("n_voxels", "n_nan"):
        df[c] = df[c].fillna(0).astype(np.int64)
    df = df[LEVEL_COLUMNS]
    order = sorted(range(n_rows), key=lambda i: (df.at[i, "muscle"], df.at[i, "side"], level_sort_key(df.at[i, "level"])))
    return df.iloc[order].reset_index(drop=True)


def _slice_table(rois, vox, values, area, spec, subject, geometry, axis) -> pd.DataFrame:
    ns = vox.n_slices
    key = vox.roi * ns + vox.slice_index
    uniq, inverse = np.unique(key, return_inverse=True)
    st = grouped_stats(inverse, values, uniq.size, threshold=spec.fat_threshold_pct if spec.has_composition else None)
    comp = _composition(st, np.ones(uniq.size), area, spec)
    roi_idx, sl = uniq // ns, uniq % ns
    normal = geometry.plane_normal(axis)
    step = float(normal @ geometry.direction_matrix[:, axis]) * geometry.spacing[axis]
    heights = sl * step  # distance of each slice plane from the origin along the normal
    df = pd.DataFrame(
        {
            "subject": subject,
            "segment": [rois[r].segment.name for r in roi_idx],
            "muscle": [rois[r].muscle for r in roi_idx],
            "side": [rois[r].side or "" for r in roi_idx],
            "level": [rois[r].level or "" for r in roi_idx],
            "slice_index": sl.astype(int),
            "slice_position_mm": heights,
            **{k: comp[k] for k in ("n_voxels", "n_nan", "csa_mm2", "mean", "median", "sd", "p05", "p95")},
            **_map_columns(spec, uniq.size),
            **{k: comp[k] for k in ("fat_csa_mm2", "lean_csa_mm2", "fat_area_ratio", "fat_fraction_pct")},
        }
    )
    return df[SLICE_COLUMNS]


def _roi_table(rois, vox, values, counts, area, spec, subject, geometry) -> pd.DataFrame:
    n = len(rois)
    st = grouped_stats(vox.roi, values, n, threshold=spec.fat_threshold_pct if spec.has_composition else None)
    vox_ml = geometry.voxel_volume_mm3() / 1000.0
    present = counts > 0
    n_present = present.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_csa = np.where(n_present > 0, counts.sum(axis=1) * area / np.maximum(n_present, 1), np.nan)
    max_csa = np.where(n_present > 0, counts.max(axis=1) * area, np.nan)
    first = np.array([np.flatnonzero(p)[0] if p.any() else -1 for p in present])
    last = np.array([np.flatnonzero(p)[-1] if p.any() else -1 for p in present])
    comp = {}
    if spec.has_composition:
        with np.errstate(invalid="ignore", divide="ignore"):
            comp["fat_volume_ml"] = st["n_above"] * vox_ml
            comp["fat_volume_ratio"] = np.where(st["n_finite"] > 0, st["n_above"] / st["n_finite"], np.nan)
            comp["fat_fraction_pct"] = st["mean"]
    else:
        comp = {k: np.full(n, np.nan) for k in ("fat_volume_ml", "fat_volume_ratio", "fat_fraction_pct")}
    df = pd.DataFrame(
        {
            "subject": subject,
            "segment": [r.segment.name for r in rois],
            "muscle": [r.muscle for r in rois],
            "side": [r.side or "" for r in rois],
            "level": [r.level or "" for r in rois],
            "n_voxels": st["n"],
            "n_nan": st["n_nan"],
            "volume_ml": st["n"] * vox_ml,
            "n_slices": n_present,
            "first_slice": first,
            "last_slice": last,
            "mean_csa_mm2": mean_csa,
            "max_csa_mm2": max_csa,
            "mean": st["mean"],
            "median": st["median"],
            "sd": st["sd"],
            "p05": st["p05"],
            "p95": st["p95"],
            **_map_columns(spec, n),
            **comp,
        }
    )
    return df[ROI_COLUMNS]


def _landmark_table(landmarks, geometry: Geometry, axis: int) -> pd.DataFrame:
    recs = []
    for level in sorted(landmarks, key=level_sort_key):
        mark = landmarks[level]
        s, off = geometry.nearest_slice(mark.point_lps, axis)
        p = np.asarray(mark.point_lps, dtype=float)
        recs.append(
            {"level": level, "source": mark.source, "x_lps_mm": p[0], "y_lps_mm": p[1], "z_lps_mm": p[2],
             "slice_index": s, "slice_offset_mm": off, "inside_image": 0 <= s < geometry.size[axis],
             "detail": getattr(mark, "detail", "")}
        )
    return pd.DataFrame(recs, columns=["level", "source", "x_lps_mm", "y_lps_mm", "z_lps_mm",
                                       "slice_index", "slice_offset_mm", "inside_image", "detail"])

"""Which segments are measured, and on which slices (the per-level row plan)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union
import numpy as np
from ..errors import InputError, LevelError, MeasurementError, ParaspinalFatWarning
from ..geometry import Geometry
from ..anatomy.level_names import canonical_level, level_sort_key
from ..anatomy.segment_names import parse_segment_name
from ..segmentation import Segment, Segmentation


__all__ = ['Roi', 'Row', 'PARASPINAL_MUSCLES', 'select_rois', 'plan_rows']

@dataclass
class Roi:
    """A segment to measure, with its parsed muscle, side and (optional) level."""

    segment: Segment
    muscle: str
    side: Optional[str]
    level: Optional[str]


@dataclass
class Row:
    """One row of the per-level table: an ROI measured on a slice window."""

    roi: int
    level: str
    level_source: str
    slice_index: int
    slice_offset_mm: float
    window: Tuple[int, int]  # first, last slice (inclusive)


#: the default muscle group of a lumbar study (``muscles="auto"``)
PARASPINAL_MUSCLES = (
    "multifidus", "erector_spinae", "longissimus", "iliocostalis", "spinalis", "autochthon",
    "psoas", "psoas_minor", "iliopsoas", "quadratus_lumborum",
)
def select_rois(seg: Segmentation, segments: Optional[Sequence[str]], table, exclude: Sequence[str] = (),
                muscles: Union[str, Sequence[str]] = "auto") -> List[Roi]:
    """The segments to measure, minus ``exclude``.

    ``segments`` (names as in the file) wins.  Otherwise ``muscles`` decides among
    the segments whose name parses as a muscle: ``"auto"`` = the paraspinal group
    (:data:`PARASPINAL_MUSCLES`) when any is present, else every muscle (thigh
    studies); ``"all"`` = every muscle; or a list of canonical muscle names.  With
    no muscle at all, every non-landmark segment is measured.

    Parameters
    ----------
    seg : Segmentation
        The case's segmentation.
    segments : sequence of str, optional
        Names of the segments to measure, as in the file (compared ignoring
        case); any kind of segment may be named.  ``None`` or empty: choose by
        ``muscles``.
    table : NameTable or None
        Name vocabulary used to parse the segment names (built-in when
        ``None``).
    exclude : sequence of str
        Segment names never measured (compared ignoring case), e.g. the
        reference fat segment of the T1/T2 ``reference`` classifier.
    muscles : str or sequence of str
        ``"auto"``, ``"all"`` (either case) or canonical muscle names
        (``"multifidus"``, ``"erector_spinae"``; stripped and compared in
        lower case); ignored when ``segments`` is given.

    Returns
    -------
    list of Roi
        One :class:`Roi` per chosen segment, in the order of
        ``seg.segments``, with the parsed muscle (the raw name when it does
        not parse), side and level (``None`` when absent).

    Raises
    ------
    InputError
        A name in ``segments`` or a muscle in ``muscles`` is not present, or
        nothing is left to measure.

    Warns
    -----
    ParaspinalFatWarning
        Muscles were found but some segments with unknown names (kind
        ``"other"``) are therefore not measured.
    """
    parsed = [(s, parse_segment_name(s.name, table=table)) for s in seg.segments]
    excluded = {n.lower() for n in exclude}
    parsed = [(s, p) for s, p in parsed if s.name.lower() not in excluded]
    if segments:
        wanted = {n.lower() for n in segments}
        chosen = [(s, p) for s, p in parsed if s.name.lower() in wanted]
        present = {s.name.lower() for s, _ in chosen}
        missing = [n for n in segments if n.lower() not in present]
        if missing:
            raise InputError(
                f"{seg.source}: segment(s) {sorted(missing)} not found; segments are {seg.names()}"
            )
    else:
        chosen = [(s, p) for s, p in parsed if p.kind == "muscle"]
        if isinstance(muscles, str) and muscles.lower() == "auto":
            paraspinal = [(s, p) for s, p in chosen if p.muscle in PARASPINAL_MUSCLES]
            chosen = paraspinal or chosen
        elif not (isinstance(muscles, str) and muscles.lower() == "all"):
            names = [muscles] if isinstance(muscles, str) else list(muscles)
            wanted_m = {n.strip().lower() for n in names}
            chosen = [(s, p) for s, p in chosen if p.muscle in wanted_m]
            found = {p.muscle for s, p in chosen}
            if wanted_m - found:
                raise InputError(
                    f"{seg.source}: muscle(s) {sorted(wanted_m - found)} not found; muscles present: "
                    f"{sorted({p.muscle for s, p in parsed if p.kind == 'muscle'})}"
                )
        if not chosen:
            chosen = [(s, p) for s, p in parsed if p.kind == "other"]
        else:
            unmeasured = [s.name for s, p in parsed if p.kind == "other"]
            if unmeasured:
                shown = ", ".join(repr(n) for n in unmeasured[:8])
                more = f" and {len(unmeasured) - 8} more" if len(unmeasured) > 8 else ""
                warnings.warn(
                    f"{seg.source}: {len(unmeasured)} segment(s) not measured because their names are not "
                    f"known muscles: {shown}{more} (measure them with --segments, or name them in a "
                    f"--names-table)",
                    ParaspinalFatWarning, stacklevel=3,
                )
    if not chosen:
        raise InputError(
            f"{seg.source}: no muscle segment found to measure; segments are {seg.names()} "
            f"(name them e.g. 'multifidus_left', or pass segments=[...] / --segments)"
        )
    return [Roi(s, p.muscle or p.raw, p.side, p.level) for s, p in chosen]


def plan_rows(
    rois: List[Roi],
    counts: np.ndarray,
    landmarks: Dict[str, Any],
    geometry: Geometry,
    axis: int,
    *,
    levels: Union[Sequence[str], str],
    n_slices: int,
    on_empty: str,
    allow_no_levels: bool,
    seg_source: str,
    notes: List[str],
) -> List[Row]:
    """Plan the per-level rows: which slice window each ROI is measured on.

    ``counts`` is the voxel count per (ROI, slice).  A level in the segment name
    wins (the slice with the most voxels); otherwise one row per wanted level
    found in ``landmarks``, on the slice nearest to the mid-disc point along the
    slice normal, ``n_slices`` wide.  Raises :class:`LevelError` /
    :class:`MeasurementError` naming the segment when a level or voxels are missing.

    Parameters
    ----------
    rois : list of Roi
        ROIs to plan (from :func:`select_rois`); row ``roi`` indices refer to
        this list.
    counts : numpy.ndarray of int
        Voxel count per (ROI, slice), shape ``(len(rois), n_slices_of_grid)``,
        slices along ``axis`` (see :meth:`RoiVoxels.counts_per_slice`).
    landmarks : dict
        Level -> landmark with ``point_lps`` (LPS mm) and ``source``
        (:class:`~ParaspinalFatLib.anatomy.landmarks.LevelLandmark`); may be
        empty.
    geometry : Geometry
        Grid of the image (and of ``counts``).
    axis : int
        ITK slice axis (0 = i, 1 = j, 2 = k) from :meth:`Geometry.slice_axis`.
    levels : sequence of str or "all"
        Levels measured from ``landmarks``, in any spelling (``"L4-L5"``);
        ``"all"`` (any case) = every landmark.  They do not restrict ROIs
        whose name carries a level.
    n_slices : int
        Width of the slice window centred on the level slice; the window is
        ``slice - n_slices // 2 .. slice + n_slices // 2``, clipped to the
        grid (the caller ensures it is odd).
    on_empty : str
        ``"error"``: an ROI without voxels in its window raises; any other
        value keeps the row (it is then measured with zero voxels).
    allow_no_levels : bool
        Without any landmark, skip ROIs that carry no level (with a note)
        instead of raising :class:`LevelError` (for per-slice or whole-ROI
        output).
    seg_source : str
        Segmentation file name used in the messages.
    notes : list of str
        Non-fatal findings are appended to it (in place): wanted levels not
        found, a named-level ROI spanning several slices, levels outside the
        image (not measured), skipped ROIs.

    Returns
    -------
    list of Row
        In ROI order; per ROI, one row at its own slice (the one with most
        voxels, ``level_source`` ``"segment_name"``, offset 0) when its name
        has a level, else one row per wanted landmark level inside the image,
        cranial to caudal, with ``slice_offset_mm`` the signed distance (mm)
        from the slice plane to the landmark along the slice normal.

    Raises
    ------
    InputError
        ``levels`` is a string other than ``"all"`` or holds a text that is
        not a level.
    LevelError
        An ROI without a level in its name, no landmark at all, and
        ``allow_no_levels`` false.
    MeasurementError
        An ROI whose name carries a level has no voxel at all, or an ROI has
        no voxel in a level window while ``on_empty == "error"``.
    """
    n_slices_grid = counts.shape[1]
    half = int(n_slices) // 2
    if isinstance(levels, str):
        if levels.lower() != "all":
            raise InputError(f"levels must be a list of disc levels or 'all', got {levels!r}")
        wanted = None
    else:
        wanted = []
        for lv in levels:
            c = canonical_level(lv)
            if c is None:
                raise InputError(f"cannot read level {lv!r}; write levels like L4/5 or L5/S1")
            wanted.append(c)
    rows: List[Row] = []
    unleveled: List[str] = []
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
            rows.append(Row(number, roi.level, "segment_name", s, 0.0, (s, s)))
            continue
        if not landmarks:
            if allow_no_levels:
                unleveled.append(roi.segment.name)
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
            if counts[number, first: last + 1].sum() == 0 and on_empty == "error":
                raise MeasurementError(
                    f"{seg_source}: segment '{roi.segment.name}' has no voxel on slice {s} "
                    f"(level {level}, from {landmarks[level].source}); check that the segmentation "
                    f"covers this level, restrict the levels (--levels), or use --on-empty keep"
                )
            rows.append(Row(number, level, landmarks[level].source, s, float(offset), (first, last)))
    if unleveled:
        notes.append(
            f"segment(s) {unleveled} have no level in their name and no level source was found: no "
            f"per-level rows (the per-slice / whole-ROI tables have them)"
        )
    return rows

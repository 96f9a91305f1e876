"""Which segments are measured, and on which slices (the per-level row plan)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union
import numpy as np
from ..errors import InputError, LevelError, LevelWarning, MeasurementError, ParaspinalFatWarning, SegmentationWarning
from ..geometry import Geometry
from ..anatomy.level_names import canonical_level, is_vertebra_level, level_sort_key
from ..anatomy.segment_names import parse_segment_names
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
    parsed = list(zip(seg.segments, parse_segment_names(seg.names(), table=table)))
    excluded = {n.lower() for n in exclude}
    if excluded:
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
    level_sources: Optional[str] = None,
) -> List[Row]:
    """Plan the per-level rows: which slice window each ROI is measured on.

    ``counts`` is the voxel count per (ROI, slice).  A level in the segment name
    wins (the slice with the most voxels); otherwise one row per wanted level
    found in ``landmarks``, on the slice nearest to the mid-disc point along the
    slice normal, ``n_slices`` wide.  Raises :class:`LevelError` /
    :class:`MeasurementError` naming the segment when a level or voxels are missing,
    and :class:`LevelError` when no row at all can be planned.

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
        Levels measured from ``landmarks``, in any spelling (``"L4-L5"``):
        disc levels (mid-disc point) and vertebra levels (``"L3"``: the
        mid-body point, when ``landmarks`` holds it); ``"all"`` (any case) =
        every disc level of ``landmarks``.  They do not restrict ROIs
        whose name carries a level.  An empty sequence asks for no per-level
        row of 3-D ROIs (only with ``allow_no_levels``).
    n_slices : int
        Width of the slice window centred on the level slice; the window is
        ``slice - n_slices // 2 .. slice + n_slices // 2``, clipped to the
        grid (the caller ensures it is odd).
    on_empty : str
        ``"error"``: an ROI without voxels in its window raises; any other
        value keeps the row (it is then measured with zero voxels).
    allow_no_levels : bool
        The caller also makes per-slice or whole-ROI tables: without any
        landmark (or with ``levels`` empty), skip ROIs that carry no level
        (with a note) instead of raising :class:`LevelError`.
    seg_source : str
        Segmentation file name used in the messages.
    notes : list of str
        Non-fatal findings are appended to it (in place) and issued at once
        as warnings: wanted levels not found, a named-level ROI spanning
        several slices, levels outside the image (not measured), skipped ROIs.
    level_sources : str, optional
        What was searched for levels and why it gave nothing, for the
        messages (e.g. ``"vertebra segments vertebrae_L4 gave no disc level;
        no markups file (--markups)"``).  Default: ``"no disc or vertebra
        segments, no markups file"``.

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
        ``allow_no_levels`` false; or no row at all could be planned (the
        levels asked were not found or lie outside the image) -- the message
        names the levels asked, the levels found and what to do.
    MeasurementError
        An ROI whose name carries a level has no voxel at all, or an ROI has
        no voxel in a level window while ``on_empty == "error"``.

    Warns
    -----
    LevelWarning
        Levels asked but not found; levels outside the image; ROIs skipped
        for want of a level source.
    SegmentationWarning
        An ROI whose name carries a level spans several slices.
    """
    def note(text: str, category=LevelWarning) -> None:
        notes.append(text)
        warnings.warn(text, category, stacklevel=3)

    n_slices_grid = counts.shape[1]
    half = int(n_slices) // 2
    if isinstance(levels, str):
        if levels.lower() != "all":
            raise InputError(f"levels must be a list of levels (discs such as L4/5, vertebrae such as L3) or "
                             f"'all', got {levels!r}")
        wanted = None
    else:
        wanted = []
        for lv in levels:
            c = canonical_level(lv)
            if c is None:
                raise InputError(f"cannot read level {lv!r} (--levels); write disc levels like L4/5 or L5/S1, "
                                 f"vertebra (mid-body) levels like L3")
            wanted.append(c)
    if wanted is None or not any(is_vertebra_level(lv) for lv in wanted):
        # "all" = every disc level found; vertebra (mid-body) levels play a part only when one is asked by name
        landmarks = {lv: mark for lv, mark in landmarks.items() if not is_vertebra_level(lv)}
    asked = "all (every disc level found)" if wanted is None else (", ".join(wanted) or "none")
    sources = level_sources or "no disc or vertebra segments, no markups file"
    rows: List[Row] = []
    unleveled: List[str] = []
    outside: Dict[str, str] = {}
    level_slices: Dict[str, Tuple[int, float]] = {}
    for level, mark in landmarks.items():
        level_slices[level] = geometry.nearest_slice(mark.point_lps, axis)
    found = sorted(level_slices, key=level_sort_key)
    for level in found:
        s = level_slices[level][0]
        if not 0 <= s < n_slices_grid:
            outside[level] = f"slice {s} of 0..{n_slices_grid - 1}"
    noted_outside: List[str] = []
    needs_levels = any(r.level is None for r in rois)
    if wanted is not None and needs_levels:
        absent = [lv for lv in wanted if lv not in level_slices]
        if landmarks and absent:
            note(f"level(s) {absent} not found by any level source (found: {found})")
    skip_unleveled = allow_no_levels and (not landmarks or wanted == [])
    # voxels in slices 0 .. s-1 of each ROI: a window's count is a difference of two of these
    before = np.zeros((counts.shape[0], n_slices_grid + 1), np.int64)
    np.cumsum(counts, axis=1, out=before[:, 1:])
    # each wanted level found and its row fields (level, source, slice, offset, window); None outside the image
    plan: List[Tuple[str, Optional[Tuple[str, str, int, float, Tuple[int, int]]]]] = []
    for level in found:
        if wanted is not None and level not in wanted:
            continue
        s, offset = level_slices[level]
        window = (max(0, s - half), min(n_slices_grid - 1, s + half))
        plan.append((level, None if level in outside else (level, landmarks[level].source, s, float(offset), window)))
    # whether each ROI has no voxel in the window of each level inside the image (one array operation for all)
    inside = [p for _, p in plan if p is not None]
    no_voxel = np.zeros((len(rois), 0), bool)
    if inside and on_empty == "error":
        first = np.array([p[4][0] for p in inside], dtype=np.intp)
        last = np.array([p[4][1] for p in inside], dtype=np.intp)
        no_voxel = before[:, last + 1] == before[:, first]
    for number, roi in enumerate(rois):
        if roi.level is not None:
            present = np.flatnonzero(counts[number])
            if present.size == 0:
                raise MeasurementError(
                    f"{seg_source}: segment '{roi.segment.name}' is empty (no voxel inside the "
                    f"image); redraw it or remove it"
                )
            s = int(present[np.argmax(counts[number, present])])
            if present.size > 1:
                note(
                    f"segment '{roi.segment.name}' carries level {roi.level} in its name but spans "
                    f"{present.size} slices; measured on slice {s}, the one with the largest area",
                    SegmentationWarning,
                )
            rows.append(Row(number, roi.level, "segment_name", s, 0.0, (s, s)))
            continue
        if skip_unleveled:
            unleveled.append(roi.segment.name)
            continue
        if not landmarks:
            labelled = ("with their levels (e.g. 'L4/5')" if wanted is None or not wanted
                        else f"{', '.join(wanted)}")
            raise LevelError(
                f"{seg_source}: segment '{roi.segment.name}' has no level in its name and no level "
                f"source gave a level ({sources}): name the segment with its level (e.g. "
                f"'MF_L_L4/5'), add vertebra/disc masks, give a markups file with points labelled "
                f"{labelled} or a line along each disc (--markups), type the level positions (--level-slices "
                f"'L4/5=18' as slice indices, or --level-z 'L4/5=-312.5' in LPS mm), or ask only for the per-slice "
                f"or whole-ROI tables (--per-slice, --whole-roi)"
            )
        empty = no_voxel[number].tolist() if no_voxel.size else None
        at = 0  # position among the levels inside the image
        for level, planned in plan:
            if planned is None:
                if level not in noted_outside:
                    noted_outside.append(level)
                    note(f"level {level} (from {landmarks[level].source}) lies outside the image "
                         f"({outside[level]}); not measured")
                continue
            if empty is not None and empty[at]:
                raise MeasurementError(
                    f"{seg_source}: segment '{roi.segment.name}' has no voxel on slice {planned[2]} "
                    f"(level {level}, from {planned[1]}); check that the segmentation "
                    f"covers this level, restrict the levels (--levels), or use --on-empty keep"
                )
            at += 1
            rows.append(Row(number, *planned))
    if unleveled:
        why = ("no levels were asked (levels empty)" if landmarks and wanted == []
               else f"no level source was found ({sources})")
        note(
            f"segment(s) {unleveled} have no level in their name and {why}: no "
            f"per-level rows (the per-slice / whole-ROI tables have them)"
        )
    if not rows and not skip_unleveled:
        if found:
            shown = ", ".join(
                f"{lv} ({landmarks[lv].source}"
                + (f", outside the image: {outside[lv]})" if lv in outside else ")")
                for lv in found
            )
        else:
            shown = f"none ({sources})"
        inside = [lv for lv in found if lv not in outside]
        if inside:
            advice = (f"ask for levels that were found inside the image (--levels {','.join(inside)} "
                      f"or --levels all)")
        elif found:
            advice = ("the image does not cover the levels found: check that image and segmentation belong "
                      "together, or name the level of 2-D ROIs in the segment names")
        else:
            advice = ("add disc or vertebra masks, a markups file with points labelled by level (--markups), or type "
                      "the level positions (--level-slices 'L4/5=18', --level-z 'L4/5=-312.5')")
        raise LevelError(
            f"{seg_source}: nothing to measure per level: levels asked {asked} (--levels); levels found: "
            f"{shown}; so there is no per-level row. To fix: {advice}"
        )
    return rows

"""Left/right check: does every segment named left lie on the patient's left?

A label list with left and right swapped (a real dataset's own list was wrong exactly
this way) gives numbers that look perfectly normal.  :func:`check_sides` compares the
side parsed from each sided segment's name (``multifidus_left``, ``MF_R_L4/5``) with
where its centroid lies relative to the spine midline, and returns a warning per
segment that lies on the wrong side.

How the check works
-------------------
* **Coordinates** are physical LPS mm (``Segmentation.geometry``), so oblique grids,
  flipped axes and RAS-stored files need nothing special: LPS +x points to the
  patient's LEFT, so a left muscle has a larger x than the midline.
* **Midline**, best source first (the source used is named in every message):

  1. *spine masks*: centroids of the vertebra, disc and sacrum segments (and
     ``spinal_cord``/``spinal_canal``);
  2. *left/right pairs*: the midpoints of the left and right segments of the same
     muscle (and level).  A midpoint does not depend on which of the two is called
     left, so swapped names still give the right midline;
  3. *level points*: the ``landmarks`` given (e.g. markups points placed on the
     discs).

  Several midline points are joined into a line along the spine axis: the
  midline point of a segment is interpolated (clamped) at the height of its
  centroid along the axis, so a tilted or scoliotic spine is followed.  Without
  any of these sources nothing is checked and :attr:`SideCheck.note` says so: the
  image centre is not a midline (the field of view is often off-centre).
* **Spine axis**: the principal axis of the spine-mask centroids, of the mean
  pair midpoints of each level (2-D ROIs named with their level) or of the level
  points, else ``cranio_caudal`` (LPS +z).  An axis tilted more than 60 degrees
  away from ``cranio_caudal`` is not believed (then ``cranio_caudal`` is used).
* **Left direction**: LPS +x made perpendicular to the spine axis.  When left/right
  pairs exist, the mean direction from each right segment to its left partner
  (each taken with the sign that points towards +x, so swapped names do not
  matter) is used instead: this follows a patient rotated about the spine axis.
* **Offset**: the signed distance (mm) of the centroid from its midline point
  along the left direction, positive = patient's left.  A segment disagrees with
  its name when it lies on the wrong side by more than ``margin_mm`` (5 mm):
  multifidus centroids lie 15-30 mm from the midline, psoas 35-50 mm.  A segment
  within the margin is listed in :attr:`SideCheck.near_midline` (no warning).
* Segments without a side (a single ``psoas`` straddling the midline) are not
  checked; empty segments are listed in :attr:`SideCheck.unchecked`.

Centroids are computed from the segmentation's cached index of labelled voxels
(:meth:`Segmentation.labelled_voxels`, shared with the level finder and the
measurement): no pass over the volume, and a few milliseconds for 700 000 muscle
voxels (they equal :func:`~ParaspinalFatLib.anatomy.landmarks.segment_centroids`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import InputError, NameWarning
from ..segmentation import Segment, Segmentation
from .landmarks import spine_axis
from .muscle_names import NameTable
from .segment_names import ParsedName, parse_segment_names

__all__ = ["MARGIN_MM", "MIDLINE_STRUCTURES", "SideCheck", "check_sides", "add_side_warnings"]

#: A segment disagrees with its name only when it lies on the wrong side by more than this (mm).
MARGIN_MM = 5.0
#: Unsided structures (canonical names) that lie on the spine midline besides vertebrae/discs/sacrum.
MIDLINE_STRUCTURES = ("spinal_cord", "spinal_canal")
#: Largest believed angle (degrees) between the fitted spine axis and ``cranio_caudal``.
_MAX_AXIS_TILT_DEG = 60.0
#: A left/right pair direction is used only within this angle (degrees) of the patient's left.
_MAX_PAIR_ANGLE_DEG = 60.0
_OPPOSITE = {"left": "right", "right": "left"}
_SIGN = {"left": 1.0, "right": -1.0}


@dataclass(frozen=True)
class SideCheck:
    """Result of :func:`check_sides`.

    Attributes
    ----------
    warnings : dict
        Segment name -> message, only for segments lying on the side opposite
        to their name (by more than the margin).  Empty when all agree or when
        nothing could be checked.
    offsets_mm : dict
        Segment name -> signed distance (mm) of its centroid from the spine
        midline along the patient's left direction (positive = patient's
        left), for every checked sided segment.
    near_midline : list of str
        Checked sided segments whose centroid lies within the margin of the
        midline (side neither confirmed nor contradicted; no warning).
    unchecked : dict
        Segment name -> reason, for sided segments that could not be checked
        (empty segment, no midline source).
    midline_source : str or None
        ``"spine_masks"``, ``"pairs"``, ``"landmarks"``, or ``None`` when no
        midline could be found.
    midline_detail : str
        Human-readable description of the midline source, as used in the
        messages (``"from vertebra masks"``).
    left_direction : numpy.ndarray or None
        Unit vector (LPS) used as the patient's left, perpendicular to the
        spine axis; ``None`` when nothing was checked.
    note : str
        Case-level finding: why no check was possible, or that every checked
        segment is on the opposite side (all names swapped, or a file whose
        left-right orientation is wrong).  Empty otherwise.
    """

    warnings: Dict[str, str] = field(default_factory=dict)
    offsets_mm: Dict[str, float] = field(default_factory=dict)
    near_midline: List[str] = field(default_factory=list)
    unchecked: Dict[str, str] = field(default_factory=dict)
    midline_source: Optional[str] = None
    midline_detail: str = ""
    left_direction: Optional[np.ndarray] = None
    note: str = ""


# =============================================================================
# helpers
# =============================================================================
def _unit(v) -> Optional[np.ndarray]:
    v = np.asarray(v, dtype=float)
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else None


def _perp(v, axis) -> np.ndarray:
    """The part of ``v`` (one vector or rows of vectors) across the unit ``axis``."""
    v = np.asarray(v, dtype=float)
    return v - np.asarray(v @ axis)[..., None] * axis


def _centroids(segmentation: Segmentation, segments: Iterable[Segment]) -> Dict[Tuple[int, int], np.ndarray]:
    """LPS centroids of segments, keyed by ``(layer, label_value)``; empty segments left out.

    The sums of the voxels' indices per label come from the runs of the cached labelled
    voxels (:meth:`LabelledVoxels.label_sums`, exact; shared with the level landmarks).
    """
    by_layer: Dict[int, Dict[int, None]] = {}  # the label values of each layer, once each, in order
    for s in segments:
        if s.label_value > 0:
            by_layer.setdefault(s.layer, {})[int(s.label_value)] = None
    geom = segmentation.geometry
    out: Dict[Tuple[int, int], np.ndarray] = {}
    for layer, unique in by_layer.items():
        values = list(unique)
        found = segmentation.labelled_voxels(layer)
        if found.size == 0:
            continue
        sums = found.label_sums(found.run_numbers({v: c for c, v in enumerate(values, start=1)}), len(values))
        count = sums["count"]
        have = (np.flatnonzero(count[1:] > 0) + 1).tolist()
        if not have:
            continue
        ijk = np.stack([sums["i"][have], sums["j"][have], sums["k"][have]], axis=1) / count[have, None]
        ijk += np.array(found.start[::-1], dtype=float)
        for c, point in zip(have, geom.index_to_physical(ijk)):  # all the points in one product
            out[(layer, values[c - 1])] = point
    return out


def _stacked(points: Dict[str, np.ndarray], names: List[str]) -> np.ndarray:
    """The points of ``names`` as rows of one ``(n, 3)`` array."""
    return np.array([points[name] for name in names], dtype=float).reshape(len(names), 3)


def _believed_axis(points: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Principal axis of ``points`` unless too few or tilted too far from ``fallback``."""
    if len(points) < 2:
        return fallback
    axis = spine_axis(points)
    if abs(float(axis @ fallback)) < np.cos(np.radians(_MAX_AXIS_TILT_DEG)):
        return fallback
    return axis


def _midline_function(points: np.ndarray, axis: np.ndarray):
    """Function LPS point -> midline point at the same height along ``axis``."""
    t = points @ axis
    order = np.argsort(t, kind="stable")
    t, pts = t[order], points[order]
    # merge points at the same height (e.g. the pairs of several muscles on one level)
    groups: List[List[int]] = []
    for i in range(len(t)):
        if groups and t[i] - t[groups[-1][0]] < 1.0:
            groups[-1].append(i)
        else:
            groups.append([i])
    tm = np.array([t[g].mean() for g in groups])
    pm = np.array([pts[g].mean(axis=0) for g in groups])

    def at(c):
        """Midline points of the LPS points ``c`` (shape ``(..., 3)``)."""
        c = np.asarray(c, dtype=float)
        if len(tm) == 1:
            return np.broadcast_to(pm[0], c.shape).copy()
        h = c @ axis
        return np.stack([np.interp(h, tm, pm[:, d]) for d in range(3)], axis=-1)

    return at


def _structure_word(p: ParsedName) -> str:
    return {"vertebra": "vertebra", "disc": "disc", "sacrum": "sacrum"}.get(p.kind, p.muscle.replace("_", " "))


def _join(words: Sequence[str]) -> str:
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


# =============================================================================
# the check
# =============================================================================
def check_sides(
    segmentation: Segmentation,
    table: Optional[NameTable] = None,
    landmarks: Optional[Mapping[str, object]] = None,
    segments: Optional[Iterable[Union[Segment, str]]] = None,
    margin_mm: float = MARGIN_MM,
    cranio_caudal: Sequence[float] = (0.0, 0.0, 1.0),
    warn: bool = True,
) -> SideCheck:
    """Check that every sided segment lies on the side its name says.

    Parameters
    ----------
    segmentation : Segmentation
        The case's segmentation (any grid: LPS physical coordinates are used).
    table : NameTable, optional
        Name vocabulary used to parse the names (built-in when omitted).
    landmarks : dict, optional
        Level -> :class:`~ParaspinalFatLib.anatomy.landmarks.LevelLandmark`
        (or LPS point): level points used as the midline when the
        segmentation holds neither spine masks nor left/right pairs (e.g.
        markups placed on the discs).
    segments : iterable of Segment or str, optional
        The segments to check (e.g. the measured ones); every sided segment
        among them is checked, whatever its kind.  Default: every sided
        segment whose name parses as a muscle.
    margin_mm : float
        A segment disagrees with its name only when its centroid lies on the
        wrong side of the midline by more than this (mm; default 5).
    cranio_caudal : sequence of 3 float
        Spine direction (LPS) used when the spine axis cannot be fitted.
    warn : bool
        Also issue each message (and the note) as a :class:`NameWarning`.

    Returns
    -------
    SideCheck
        ``.warnings`` maps each disagreeing segment to a message such as
        ``"segment 'multifidus_left' is named left but its centroid lies
        15.0 mm to the patient's RIGHT of the spine midline (from vertebra
        masks); check the label names (left/right swapped?)"``; see
        :class:`SideCheck` for the offsets, the midline source and the note.

    Raises
    ------
    InputError
        A name in ``segments`` is not a segment of ``segmentation``;
        ``margin_mm`` is negative or not a finite number; ``cranio_caudal``
        is not a non-zero 3-vector, or lies along the left-right (LPS x) axis.
    """
    try:
        margin = float(margin_mm)
    except (TypeError, ValueError):
        margin = float("nan")
    if not np.isfinite(margin) or margin < 0:
        raise InputError(f"check_sides: margin_mm must be a finite number >= 0 (mm), got {margin_mm!r}")
    try:
        cc = _unit(np.asarray(cranio_caudal, dtype=float).reshape(-1))
    except (TypeError, ValueError):
        cc = None
    if cc is None or cc.shape != (3,) or not np.all(np.isfinite(cc)):
        raise InputError(f"check_sides: cranio_caudal must be a non-zero LPS 3-vector, got {cranio_caudal!r}")

    # name warnings belong to the name listing, not here
    parsed = list(zip(segmentation.segments, parse_segment_names(segmentation.names(), table, warn=False)))
    if segments is not None:
        wanted = [segmentation.segment(s) if isinstance(s, str) else s for s in segments]
        keys = {(s.layer, s.label_value) for s in wanted}
        sided = [(s, p) for s, p in parsed if (s.layer, s.label_value) in keys and p.side in _SIGN]
    else:
        sided = [(s, p) for s, p in parsed if p.kind == "muscle" and p.side in _SIGN]
    spine = [
        (s, p) for s, p in parsed
        if p.side is None and (p.kind in ("vertebra", "disc", "sacrum") or p.muscle in MIDLINE_STRUCTURES)
    ]
    if not sided:
        return SideCheck(note="")

    # one centroid pass per layer for everything (on the cached index of labelled voxels)
    by_key = _centroids(segmentation, [s for s, _ in sided + spine])
    cents = {s.name: by_key[(s.layer, s.label_value)] for s, _ in sided + spine if (s.layer, s.label_value) in by_key}
    unchecked: Dict[str, str] = {}
    points: Dict[str, np.ndarray] = {}
    for s, p in sided:
        if s.name in cents:
            points[s.name] = cents[s.name]
        else:
            unchecked[s.name] = "empty segment"

    # left/right pairs of the same muscle (and level)
    groups: Dict[Tuple[str, Optional[str]], Tuple[List[str], List[str]]] = {}  # (left names, right names)
    level_of = {s.name: p.level for s, p in sided}
    for s, p in sided:
        if s.name in points:
            groups.setdefault((p.muscle, p.level), ([], []))[p.side == "right"].append(s.name)
    pairs = [(lft[0], rgt[0]) for lft, rgt in groups.values() if len(lft) == 1 and len(rgt) == 1]
    # the points of each pair's left and right segment, as (n_pairs, 3) arrays
    pair_left, pair_right = _stacked(points, [a for a, _ in pairs]), _stacked(points, [b for _, b in pairs])
    partner = {}
    for lft, rgt in pairs:
        partner[lft], partner[rgt] = rgt, lft

    # midline
    spine_pts = [(s, p, cents[s.name]) for s, p in spine if s.name in cents]
    marks = []
    for level, mark in (landmarks or {}).items():
        pt = np.asarray(getattr(mark, "point_lps", mark), dtype=float).reshape(-1)
        if pt.shape == (3,) and np.all(np.isfinite(pt)):
            marks.append((level, pt, getattr(mark, "source", "")))
    if spine_pts:
        source = "spine_masks"
        mid = np.array([pt for _, _, pt in spine_pts])
        axis = _believed_axis(mid, cc)
        rank = {"vertebra": 0, "disc": 1, "sacrum": 2}
        words = sorted({_structure_word(p) for _, p, _ in spine_pts}, key=lambda w: (rank.get(w, 3), w))
        detail = f"from {_join(words)} masks"
    elif pairs:
        source = "pairs"
        mid = (pair_left + pair_right) / 2.0
        # 2-D ROIs named with their level: the mean midpoint of each level lies on the spine
        by_level: Dict[str, List[np.ndarray]] = {}
        for (a, b), m in zip(pairs, mid):
            level = level_of[a]
            if level is not None:
                by_level.setdefault(level, []).append(m)
        axis = _believed_axis(np.array([np.mean(v, axis=0) for v in by_level.values()]).reshape(-1, 3), cc)
        detail = "from the midpoints of the left/right pairs of the same muscle"
    elif marks:
        source = "landmarks"
        mid = np.array([pt for _, pt, _ in marks])
        axis = _believed_axis(mid, cc)
        kinds = sorted({src for _, _, src in marks if src}) or ["given"]
        detail = f"from the level points ({', '.join(kinds)})"
    else:
        for name in points:
            unchecked[name] = "no spine midline found"
        names = sorted(points)
        shown = ", ".join(repr(n) for n in names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        note = (
            f"{segmentation.source}: the left/right names of {len(names)} segment(s) ({shown}) could not be "
            "checked against where they lie: no vertebra, disc or sacrum masks, no left/right pair of the same "
            "muscle, and no level points (the image centre is not used as the midline: the field of view need "
            "not be centred on the spine)"
        )
        if warn and names:
            warnings.warn(note, NameWarning, stacklevel=2)
        return SideCheck(unchecked=unchecked, note=note if names else "")

    # the patient's left, perpendicular to the spine axis (never None: the axis is within
    # 60 degrees of cranio_caudal, and cranio_caudal is not along x unless the caller says so)
    left = _unit(_perp([1.0, 0.0, 0.0], axis))
    if left is None:
        raise InputError(
            f"check_sides: the spine axis {np.round(axis, 3).tolist()} runs left-right (LPS x), so no "
            "left-right direction exists across it; check cranio_caudal"
        )
    if pairs:
        # each pair's left-right direction across the axis, turned to the patient's left; those
        # within the angle of the left direction are averaged
        across = _perp(pair_left - pair_right, axis)
        length = np.linalg.norm(across, axis=1)
        across = across[length > 1e-9] / length[length > 1e-9, None]
        across[across @ left < 0] *= -1.0
        directions = across[across @ left >= np.cos(np.radians(_MAX_PAIR_ANGLE_DEG))]
        if len(directions):
            mean_direction = _unit(_perp(directions.sum(axis=0), axis))
            if mean_direction is not None:
                left = mean_direction

    midline_at = _midline_function(mid, axis)
    placed = list(points)
    if placed:
        at = _stacked(points, placed)
        offset_of = dict(zip(placed, ((at - midline_at(at)) @ left).tolist()))
    offsets: Dict[str, float] = {}
    messages: Dict[str, str] = {}
    near: List[str] = []
    for s, p in sided:
        if s.name not in points:
            continue
        c = points[s.name]
        off = offset_of[s.name]
        offsets[s.name] = off
        wrong = -_SIGN[p.side] * off  # > 0: on the opposite side
        if wrong > margin:
            opposite = _OPPOSITE[p.side]
            extra = ""
            other = partner.get(s.name)
            if other is not None:
                rel = float((c - points[other]) @ left) * _SIGN[p.side]
                if rel < 0:
                    extra = f"; it lies to the patient's {opposite} of '{other}'"
            messages[s.name] = (
                f"segment '{s.name}' is named {p.side} but its centroid lies {abs(off):.1f} mm to the "
                f"patient's {opposite.upper()} of the spine midline ({detail}{extra}); check the label "
                "names (left/right swapped?)"
            )
        elif abs(off) <= margin:
            near.append(s.name)

    note = ""
    if len(offsets) >= 2 and len(messages) == len(offsets):
        note = (
            f"{segmentation.source}: every sided segment ({len(offsets)}) lies on the side opposite to its "
            "name: either all left/right names are swapped or the file's left-right orientation (its header) "
            "is wrong"
        )
    if warn:
        for msg in messages.values():
            warnings.warn(msg, NameWarning, stacklevel=2)
        if note:
            warnings.warn(note, NameWarning, stacklevel=2)
    return SideCheck(
        warnings=messages, offsets_mm=offsets, near_midline=near, unchecked=unchecked,
        midline_source=source, midline_detail=detail, left_direction=left, note=note,
    )


def add_side_warnings(table, result: SideCheck):
    """Append the side messages to the ``warnings`` column of a result table.

    Parameters
    ----------
    table : pandas.DataFrame
        A per-level, per-slice or whole-ROI table (columns ``segment`` and
        ``warnings``).
    result : SideCheck
        Result of :func:`check_sides`.

    Returns
    -------
    pandas.DataFrame
        A copy of ``table`` in which every row of a disagreeing segment has
        its message appended to ``warnings`` (joined with ``"; "`` to any
        existing text); ``table`` itself when there is nothing to add.
    """
    if table is None or not result.warnings or len(table) == 0:
        return table
    out = table.copy()
    old = out["warnings"].astype(object).where(out["warnings"].notna(), "")
    new = []
    for seg, text in zip(out["segment"], old):
        msg = result.warnings.get(seg)
        text = "" if text is None else str(text)
        if msg:
            text = f"{text}; {msg}" if text else msg
        new.append(text)
    out["warnings"] = np.array(new, dtype=object)
    return out

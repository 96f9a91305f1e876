"""Disc-level landmarks: where on the spine each measurement level lies.

Each disc level (``"L3/4"``, ``"L4/5"``, ``"L5/S1"``...) gets one point in
patient LPS millimetres at the middle of the intervertebral disc (vertebra
levels such as ``"L3"``, when asked for, a mid-vertebra point).  The
measurement code turns it into a slice with ``Geometry.slice_axis`` and
``Geometry.nearest_slice``.  Points come from, in order of preference:

0. **typed positions** (:mod:`~ParaspinalFatLib.anatomy.level_positions`,
   passed to :func:`find_landmarks` as ``positions``): slice numbers
   (source ``"level_slices"``) or z coordinates (source ``"level_z"``) the
   user read in a viewer;
1. **disc masks** (:func:`landmarks_from_discs`): centroid of each disc segment
   (``disc_L4_L5``, ``IVD L4-L5``...); source ``"disc_mask"``;
2. **vertebra masks** (:func:`landmarks_from_vertebrae`): midpoint of the
   centroids of two adjacent vertebrae (``vertebrae_L4`` + ``vertebrae_L5``);
   source ``"vertebra_masks"``;
3. **Slicer markups** (:func:`read_markups`): control points labelled with a
   level (``L4/5``, ``L4-L5``, ``L45``) in ``.mrk.json`` or legacy ``.fcsv``,
   and line markups named with a disc level (``.mrk.json``), or the same held
   in memory (:class:`~ParaspinalFatLib.io.markups.InMemoryMarkups`); source
   ``"markups"``.

:func:`find_landmarks` combines them: a level from a less preferred source only
fills levels the better sources did not give.

Direction hints
---------------
A landmark may carry ``direction_lps``: a unit vector along the local spine
axis at that level (the normal of a disc-parallel plane), pointing cranially
(non-negative LPS z), with ``direction_source`` saying where it came from:

* ``"disc mask principal axes"``: the disc mask's axis of least extent, the
  eigenvector of the smallest eigenvalue of the covariance of its voxel
  centres (LPS mm); a disc is a flat slab.  The second moments are summed in
  the same pass as the centroid.  No hint when the mask is not clearly flat
  (smallest variance above :data:`FLAT_VARIANCE_RATIO` times the middle one)
  or lies in one voxel layer (its normal would be the grid's, not the disc's).
* ``"vertebra centroids"``: for a disc, upper minus lower vertebra centroid;
  for a vertebra, the upper neighbour's centroid minus the lower one's
  (central difference), or the difference to its one neighbour.
* ``"markups vertebra points"``: the same from control points labelled with
  vertebrae (``L3`` minus ``L4`` for ``L3/4``; a disc point gets the direction
  of its two vertebra points when both are in the file).
* ``"markups line along the disc"`` / ``"markups line along the spine axis"``:
  from a line markup (:func:`disc_normal_from_line`).  A radiologist draws the
  line along the disc on a sagittal view, so the disc plane holds the line and
  the patient's left-right axis (LPS x): normal = normalise(line x (1, 0, 0)).
  A line within 45 degrees of the cranio-caudal axis (LPS z) is taken as drawn
  along the spine axis: normal = the line direction.  A line within 45 degrees
  of LPS x (drawn left-right, e.g. on a coronal or axial view) is refused: a
  plane holding it and the x axis is undefined (parallel) or meaningless (the
  tilt of a coronal line is not a sagittal tilt).  The disc point is the
  midpoint of the line's two end points.

Typed positions carry no direction: they lie on a line along the slice normal,
which says nothing about the spine.

Conventions
-----------
* Centroids are the mean LPS position of the voxel centres of a segment; all
  segments of interest are measured in one pass over each label layer
  (:func:`segment_centroids`).
* A vertebra centroid is the centroid of the **whole vertebra mask**, posterior
  elements included (TotalSegmentator and VerSe masks hold the whole bone).  The
  arch moves the centroid posteriorly but hardly along the spine: on the TPTBox
  L3 sample the whole-mask centroid is 12.5 mm posterior to the body centroid
  and 0.7 mm from it cranio-caudally.  A disc point (midpoint of two such
  centroids) is therefore posterior to the disc centre but at its level, which
  is what the measurement slice needs.
* A vertebra mask that touches the edge of the voxel grid and has fewer than
  70 % of the voxels of its larger neighbour is treated as cut off by the
  field of view: its centroid is biased, so it is not used (warning).  A mask
  that merely touches the edge of a cropped grid (Slicer crops ``.seg.nrrd``
  to the segments' extent) keeps its full size and is used.
* **Sacrum rule** (L5/S1 when there is a ``sacrum`` but no ``S1`` segment):
  the sacrum centroid lies far below the S1 body, so S1 is estimated as the
  centroid of the sacrum's cranial part: the sacrum voxels within ``h`` mm of
  its most cranial voxel along the local spine axis, where ``h`` is the
  extent of the L5 mask along that axis (the S1 segment is assumed to be as
  tall as the L5 mask, the same way both are "whole vertebra" masks).  The
  local axis runs from the L4 centroid to the L5 centroid (from the principal
  axis of all vertebra centroids without L4, and LPS +z without any).  The
  L5/S1 point is then the midpoint of the L5 centroid and that estimate.  This
  is the case for TotalSegmentator ``total_v1`` and ``vertebrae_mr`` outputs
  (sacrum, no ``vertebrae_S1``); ``total`` (v2) has ``vertebrae_S1``.  On
  TotalSegmentator's ``example_seg_fast_force_split`` (S1 merged into the
  sacrum) the estimate lies 3.5 mm from the midpoint of the true L5 and S1
  centroids, 0.7 mm cranio-caudally.  With a transitional L6 the same rule
  applies to L6/S1.
* Markups in RAS are converted to LPS (x and y negated).
* A typed position wins over every other source; when it lies more than
  :data:`SOURCE_DISAGREEMENT_MM` along the spine from the same level found by
  masks or markups, a :class:`~ParaspinalFatLib.errors.LevelWarning` says so.
  The distance is measured along the spine (the other landmark's direction,
  else the principal axis of the other landmarks, else LPS z), not in 3-D: a
  typed slice is placed at the in-plane centre of the grid, which may be far
  from the spine.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union
import numpy as np
from ..io.markups import InMemoryMarkups, read_control_points, read_lines
from ..errors import LevelWarning, InputError, LevelError
from .muscle_names import NameTable
from .level_names import (adjacent_vertebrae, canonical_level, disc_between, is_disc_level, is_vertebra_level,
                          level_sort_key, next_vertebra)
from .segment_names import parse_segment_names
from ..segmentation import Segment, Segmentation


__all__ = ['SOURCES', 'POSITION_SOURCES', 'HOW_TO_GIVE_LEVELS', 'LevelLandmark', 'read_markups',
           'disc_normal_from_line', 'segment_centroids', 'vertebra_centroids', 'spine_axis',
           'landmarks_from_discs', 'landmarks_from_vertebrae', 'find_landmarks']

#: Landmark sources, most preferred first.
SOURCES = ("level_slices", "level_z", "disc_mask", "vertebra_masks", "markups")
#: Sources of positions the user typed (:mod:`~ParaspinalFatLib.anatomy.level_positions`).
POSITION_SOURCES = ("level_slices", "level_z")
#: Every way to give levels, for messages about missing levels.
HOW_TO_GIVE_LEVELS = (
    "Ways to give levels: disc segments named with their level ('disc_L4_L5'); whole-vertebra segments of "
    "two adjacent vertebrae ('vertebrae_L4' and 'vertebrae_L5', as TotalSegmentator writes them); the level "
    "in a muscle segment's own name ('multifidus_left_L4/5', measured on its own slice); a Slicer markups "
    "file (markups (--markups)) with points labelled 'L4/5' (or vertebra points 'L4' and 'L5') or a line "
    "named 'L4/5' drawn along the disc on a sagittal view; or typed positions: level_slices "
    "(--level-slices) 'L4/5=18' with the slice numbers your viewer shows (slice_base (--slice-base) 1 when "
    "it counts from 1), or level_z (--level-z) 'L4/5=-312.5' in mm (Slicer's S coordinate)"
)
#: A disc mask is 'flat' (gets a direction hint) when its smallest variance is below this
#: fraction of its middle one.
FLAT_VARIANCE_RATIO = 0.5
#: A line within this angle (degrees) of LPS z is taken as drawn along the spine axis.
LINE_SPINE_AXIS_DEG = 45.0
#: A line within this angle (degrees) of LPS x is refused (no disc plane from it).
LINE_REFUSED_NEAR_X_DEG = 45.0
#: Adjacent vertebra centroids farther apart than this (mm) trigger a warning.
MAX_ADJACENT_CENTROID_DISTANCE_MM = 80.0
#: A grid-edge vertebra smaller than this fraction of its neighbour is "cut off".
TRUNCATED_VOLUME_RATIO = 0.7
#: Disc-mask and vertebra-midpoint points farther apart than this (mm) trigger a warning.
SOURCE_DISAGREEMENT_MM = 20.0
_PathLike = Union[str, Path]
@dataclass(frozen=True, eq=False)
class LevelLandmark:
    """Measurement point of one level.

    Attributes
    ----------
    level : str
        Canonical level (``"L4/5"``; vertebra levels such as ``"L3"`` only when
        asked for with ``include_vertebrae=True``).
    point_lps : numpy.ndarray
        Read-only float array of shape (3,), LPS mm.
    source : str
        One of :data:`SOURCES`: ``"level_slices"``, ``"level_z"`` (typed
        positions), ``"disc_mask"``, ``"vertebra_masks"`` or ``"markups"``.
    detail : str
        Human-readable provenance (segments or file and label used).
    direction_lps : numpy.ndarray or None
        Optional read-only unit vector (shape (3,)) along the local spine axis
        at this level (the normal of a disc-parallel plane), pointing
        cranially (LPS z >= 0).  Given vectors are normalised and flipped to
        point cranially.  ``None`` when the source gives no direction.
    direction_source : str
        Where the direction came from (module notes), ``""`` without one.

    Raises
    ------
    LevelError
        The point is not 3 finite numbers, or the direction is not 3 finite
        numbers of non-zero length.
    ValueError
        Unknown source.
    """

    level: str
    point_lps: np.ndarray
    source: str
    detail: str
    direction_lps: Optional[np.ndarray] = None
    direction_source: str = ""

    def __post_init__(self):
        p = np.array(self.point_lps, dtype=float).reshape(-1)
        if p.shape != (3,) or not np.all(np.isfinite(p)):
            raise LevelError(f"level {self.level}: landmark point must be 3 finite numbers, got {self.point_lps!r}")
        p.setflags(write=False)
        object.__setattr__(self, "point_lps", p)
        if self.source not in SOURCES:
            raise ValueError(f"landmark source must be one of {SOURCES}, got {self.source!r}")
        if self.direction_lps is not None:
            d = np.array(self.direction_lps, dtype=float).reshape(-1)
            norm = float(np.linalg.norm(d)) if d.shape == (3,) and np.all(np.isfinite(d)) else 0.0
            if not norm > 0.0 or not np.isfinite(norm):
                raise LevelError(
                    f"level {self.level}: landmark direction must be 3 finite numbers of non-zero length, "
                    f"got {self.direction_lps!r}"
                )
            d = d / norm
            if d[2] < 0:
                d = -d
            d.setflags(write=False)
            object.__setattr__(self, "direction_lps", d)
        object.__setattr__(self, "direction_source", str(self.direction_source or ""))

    def __repr__(self) -> str:
        x, y, z = self.point_lps
        text = f"LevelLandmark({self.level!r}, LPS ({x:.2f}, {y:.2f}, {z:.2f}), {self.source!r}, {self.detail!r}"
        if self.direction_lps is not None:
            a, b, c = self.direction_lps
            text += f", direction ({a:.3f}, {b:.3f}, {c:.3f}) from {self.direction_source!r}"
        return text + ")"


# =============================================================================
# centroids
# =============================================================================
def _layer_stats(segmentation: Segmentation, layer: int, values: Sequence[int], moments: bool = False):
    """Voxel counts, mean indices (k, j, i), grid-edge contact and (optionally)
    index covariances (k, j, i order) of labels.

    Uses the runs of the segmentation's cached labelled voxels of the layer
    (:meth:`Segmentation.labelled_voxels`, :meth:`LabelledVoxels.label_sums`), so the
    ROI gathering, the side check and these centroids share one pass over the volume.
    Indices are taken relative to the grid centre, which keeps the second moments
    precise far from the origin; every sum is exact (integers and halves).
    """
    n = len(values)
    found = segmentation.labelled_voxels(layer)
    numbers = found.run_numbers({int(v): c for c, v in enumerate(values, start=1)})
    sums = found.label_sums(numbers, n, second=moments)  # entry 0 (the other labels) is 0
    counts = sums["count"].astype(np.int64)
    nk, nj, ni = segmentation.layers.shape[1:]
    centre = np.array([(nk - 1) / 2.0, (nj - 1) / 2.0, (ni - 1) / 2.0])
    # box index + shift = index relative to the grid centre (a multiple of 0.5)
    shift = np.array(found.start, dtype=float) - centre
    safe = np.maximum(counts, 1)[:, None]
    axes = ("k", "j", "i")
    # sum of (box index + shift) = sum of box indices + count * shift: exact, as the voxel sum was
    rel = np.stack([sums[a] + sums["count"] * shift[x] for x, a in enumerate(axes)], axis=1)
    means = rel / safe
    cov = None
    if moments:
        cov = np.zeros((n + 1, 3, 3), dtype=float)
        for a in range(3):
            for b in range(a, 3):
                products = (sums[axes[a] + axes[b]] + shift[a] * sums[axes[b]] + shift[b] * sums[axes[a]]
                            + sums["count"] * (shift[a] * shift[b]))
                m = products / safe[:, 0]
                cov[:, a, b] = cov[:, b, a] = m - means[:, a] * means[:, b]
    edge = _edge_labels(found, (nk, nj, ni), numbers, n)
    return counts, means + centre, edge, cov


def _edge_labels(found, shape, numbers: np.ndarray, n: int) -> np.ndarray:
    """Per label number of the runs (0 = others, never on the edge): does any voxel lie on the grid's outer faces?"""
    runs = found.runs
    nk, nj, ni = shape
    k0, j0, i0 = found.start
    numbered = np.flatnonzero(numbers)  # only the runs of the labels asked for
    k, j, first = runs.k[numbered] + k0, runs.j[numbered] + j0, runs.first_i[numbered] + i0
    last = first + runs.length[numbered] - 1
    on_edge = (k == 0) | (k == nk - 1) | (j == 0) | (j == nj - 1) | (first == 0) | (last == ni - 1)
    edge = np.bincount(numbers[numbered[on_edge]], minlength=n + 1) > 0
    edge[0] = False
    return edge


@dataclass(frozen=True, eq=False)
class _Centroid:
    segment: Segment
    point: np.ndarray
    n_voxels: int
    touches_edge: bool
    cov_lps: Optional[np.ndarray] = None  # covariance of the voxel centres (LPS mm^2), when asked for


def _centroids(
    segmentation: Segmentation, segments: Iterable[Segment], moments: bool = False
) -> Dict[Tuple[int, int], _Centroid]:
    by_layer: Dict[int, List[Segment]] = {}
    for s in segments:
        if s.label_value > 0:  # 0 is background
            by_layer.setdefault(s.layer, []).append(s)
    geom = segmentation.geometry
    scaled = geom.ijk_to_lps[:3, :3]
    out = {}
    for layer, segs in by_layer.items():
        counts, means, edge, cov = _layer_stats(segmentation, layer, [s.label_value for s in segs], moments)
        for c, s in enumerate(segs, start=1):
            if counts[c] == 0:
                continue
            point = geom.index_to_physical(means[c][::-1])
            cov_lps = None
            if cov is not None:
                cov_ijk = cov[c][::-1, ::-1]  # (k, j, i) -> (i, j, k) order
                cov_lps = scaled @ cov_ijk @ scaled.T
            out[(s.layer, s.label_value)] = _Centroid(s, point, int(counts[c]), bool(edge[c]), cov_lps)
    return out


def _thin_axis(cov_lps: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """Axis of least extent of a flat mask (module notes), or None when not clearly flat."""
    if cov_lps is None or not np.all(np.isfinite(cov_lps)):
        return None
    values, vectors = np.linalg.eigh(cov_lps)
    smallest, middle = float(values[0]), float(values[1])
    if not middle > 0.0 or smallest > FLAT_VARIANCE_RATIO * middle or smallest <= 1e-9 * middle:
        return None
    return vectors[:, 0]


def _direction(upper, lower) -> Optional[np.ndarray]:
    """``upper - lower`` when it has a length, else None."""
    d = np.asarray(upper, dtype=float) - np.asarray(lower, dtype=float)
    return d if float(np.linalg.norm(d)) > 1e-9 else None


def segment_centroids(
    segmentation: Segmentation, segments: Optional[Iterable[Union[Segment, str]]] = None
) -> Dict[str, Tuple[np.ndarray, int]]:
    """Centroids (LPS mm) and voxel counts of segments, one pass per layer.

    Parameters
    ----------
    segmentation : Segmentation
    segments : iterable of Segment or str, optional
        Segments (or names) to measure; all segments when omitted.

    Returns
    -------
    dict
        Segment name -> ``(centroid_lps, n_voxels)``; empty segments are left out.

    Raises
    ------
    InputError
        Two of the segments have the same name.
    """
    if segments is None:
        segs = list(segmentation.segments)
    else:
        segs = [segmentation.segment(s) if isinstance(s, str) else s for s in segments]
    names = [s.name for s in segs]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise InputError(f"{segmentation.source}: segment name(s) {dup} occur more than once; rename them")
    found = _centroids(segmentation, segs)
    return {c.segment.name: (c.point, c.n_voxels) for c in found.values()}


def _classify(segmentation: Segmentation, table: Optional[NameTable]):
    """Parse all segment names: (vertebrae, discs, sacra, unlevelled) lists of (Segment, ParsedName)."""
    vertebrae, discs, sacra, unlevelled = [], [], [], []
    # name warnings belong to the name listing, not here
    parsed = zip(segmentation.segments, parse_segment_names(segmentation.names(), table, warn=False))
    for s, p in parsed:
        if p.kind == "vertebra" and is_vertebra_level(p.level):
            vertebrae.append((s, p))
        elif p.kind == "disc" and is_disc_level(p.level):
            discs.append((s, p))
        elif p.kind == "sacrum":
            sacra.append((s, p))
        elif p.kind in ("vertebra", "disc"):
            unlevelled.append((s, p))
    return vertebrae, discs, sacra, unlevelled


def _unique_by_level(items, centroids, segmentation: Segmentation, what: str) -> Dict[str, _Centroid]:
    out: Dict[str, _Centroid] = {}
    for s, p in items:
        c = centroids.get((s.layer, s.label_value))
        if c is None:
            continue  # empty segment (e.g. a TotalSegmentator class absent from the scan)
        if p.level in out:
            raise LevelError(
                f"{segmentation.source}: segments '{out[p.level].segment.name}' and '{s.name}' are both "
                f"the {what} {p.level}; rename or remove one of them"
            )
        out[p.level] = c
    return out


def _voxel_points(segmentation: Segmentation, segment: Segment) -> np.ndarray:
    kji = np.argwhere(segmentation.layers[segment.layer] == segment.label_value)
    return segmentation.geometry.index_to_physical(kji[:, ::-1].astype(float))


def _vertebra_table(segmentation: Segmentation, table: Optional[NameTable]):
    vertebrae, _, sacra, _ = _classify(segmentation, table)
    centroids = _centroids(segmentation, [s for s, _ in vertebrae + sacra])
    verts = _unique_by_level(vertebrae, centroids, segmentation, "vertebra")
    sacrum = [centroids[(s.layer, s.label_value)] for s, _ in sacra if (s.layer, s.label_value) in centroids]
    if len(sacrum) > 1:
        raise LevelError(
            f"{segmentation.source}: several sacrum segments "
            f"{[c.segment.name for c in sacrum]}; keep one"
        )
    return _drop_truncated(verts, segmentation), (sacrum[0] if sacrum else None)


def _drop_truncated(verts: Dict[str, _Centroid], segmentation: Segmentation) -> Dict[str, _Centroid]:
    order = sorted(verts, key=level_sort_key)
    keep = dict(verts)
    for pos, level in enumerate(order):
        c = verts[level]
        if not c.touches_edge:
            continue
        neighbours = [verts[order[q]] for q in (pos - 1, pos + 1) if 0 <= q < len(order)]
        if not neighbours:
            continue
        reference = max(nb.n_voxels for nb in neighbours)
        if c.n_voxels < TRUNCATED_VOLUME_RATIO * reference:
            warnings.warn(
                f"{segmentation.source}: vertebra segment '{c.segment.name}' touches the edge of the "
                f"voxel grid and has {c.n_voxels} voxels against {reference} for its neighbour: it is "
                "cut off by the field of view, so its centroid is not used for levels",
                LevelWarning,
                stacklevel=3,
            )
            del keep[level]
    return keep


def vertebra_centroids(segmentation: Segmentation, table: Optional[NameTable] = None) -> Dict[str, np.ndarray]:
    """Whole-mask centroid (LPS mm) of each vertebra segment, by canonical level.

    Vertebrae cut off by the edge of the grid are left out (see module notes).

    Parameters
    ----------
    segmentation : Segmentation
        Holds vertebra segments (``vertebrae_L4``, ``L4``...); other segments
        are ignored.
    table : NameTable, optional
        Name vocabulary (built-in when omitted).

    Returns
    -------
    dict
        Canonical vertebra level (``"L3"``, ``"S1"``) -> float array of shape
        (3,), the centroid of the voxel centres in LPS mm (a copy), cranial to
        caudal.  Empty segments and truncated vertebrae are left out; the
        ``sacrum`` is not a vertebra and is never included.

    Warns
    -----
    LevelWarning
        A vertebra is cut off by the field of view and left out.

    Raises
    ------
    LevelError
        Two non-empty segments name the same vertebra, or several non-empty
        sacrum segments exist.
    """
    verts, _ = _vertebra_table(segmentation, table)
    return {level: verts[level].point.copy() for level in sorted(verts, key=level_sort_key)}


# =============================================================================
# spine axis
# =============================================================================
def spine_axis(points) -> np.ndarray:
    """Unit cranio-caudal direction (LPS, pointing superior) through spine points.

    Parameters
    ----------
    points : mapping or array_like
        ``{level: LevelLandmark or point}`` (levels order the points from
        cranial to caudal and fix the sign), or an ``(N, 3)`` array of LPS
        points (sign chosen so that the axis has a non-negative S component).

    Returns
    -------
    numpy.ndarray
        Principal axis of the points (first right singular vector of the
        centred points); ``(0, 0, 1)`` with fewer than two distinct points.
    """
    if isinstance(points, Mapping):
        levels = sorted(points, key=level_sort_key)
        pts = np.array(
            [np.asarray(getattr(points[k], "point_lps", points[k]), dtype=float) for k in levels]
        ).reshape(-1, 3)
    else:
        levels = None
        pts = np.asarray(points, dtype=float).reshape(-1, 3)
    if len(pts) < 2:
        return np.array([0.0, 0.0, 1.0])
    centred = pts - pts.mean(axis=0)
    if not np.any(np.abs(centred) > 1e-9):
        return np.array([0.0, 0.0, 1.0])
    axis = np.linalg.svd(centred, full_matrices=False)[2][0]
    if levels is not None:
        sign = float(axis @ (pts[0] - pts[-1]))  # first level is the most cranial
    else:
        sign = float(axis[2])
    if sign < 0:
        axis = -axis
    return axis / np.linalg.norm(axis)


# =============================================================================
# landmarks from masks
# =============================================================================
def landmarks_from_discs(segmentation: Segmentation, table: Optional[NameTable] = None) -> Dict[str, LevelLandmark]:
    """Disc levels from disc segments: the centroid of each disc mask.

    Parameters
    ----------
    segmentation : Segmentation
    table : NameTable, optional
        Name vocabulary (built-in when omitted).

    Returns
    -------
    dict
        Canonical disc level -> :class:`LevelLandmark` (source ``"disc_mask"``),
        cranial to caudal.  Empty disc segments are skipped.  The direction
        hint is the mask's axis of least extent (``"disc mask principal
        axes"``; none when the mask is not clearly flat, see module notes).

    Raises
    ------
    LevelError
        Two non-empty disc segments with the same level.
    """
    _, discs, _, unlevelled = _classify(segmentation, table)
    for s, p in unlevelled:
        if p.kind == "disc":
            warnings.warn(
                f"{segmentation.source}: disc segment '{s.name}' has no single level in its name (one "
                "label for all discs?); it cannot place disc levels. Name discs like 'disc_L4_L5'",
                LevelWarning,
                stacklevel=2,
            )
    centroids = _centroids(segmentation, [s for s, _ in discs], moments=True)
    found = _unique_by_level(discs, centroids, segmentation, "disc")
    out = {}
    for level in sorted(found, key=level_sort_key):
        c = found[level]
        axis = _thin_axis(c.cov_lps)
        out[level] = LevelLandmark(
            level,
            c.point,
            "disc_mask",
            f"centroid of disc segment '{c.segment.name}' ({c.n_voxels} voxels)",
            direction_lps=axis,
            direction_source="disc mask principal axes" if axis is not None else "",
        )
    return out


def _s1_from_sacrum(segmentation, sacrum: _Centroid, upper: _Centroid, verts: Dict[str, _Centroid], upper_level):
    """Estimate of the S1 'whole vertebra' centroid from the sacrum (see module notes)."""
    above = None
    for level, c in verts.items():
        if next_vertebra(level, verts) == upper_level:
            above = (level, c)
    if above is not None:
        axis = above[1].point - upper.point
        axis_text = f"{above[0]}->{upper_level} centroid"
    elif len(verts) >= 2:
        axis = spine_axis({k: v.point for k, v in verts.items()})
        axis_text = "vertebra-centroid principal"
    else:
        axis = np.array([0.0, 0.0, 1.0])
        axis_text = "LPS superior (+z)"
    norm = np.linalg.norm(axis)
    axis = axis / norm if norm > 0 else np.array([0.0, 0.0, 1.0])
    up = _voxel_points(segmentation, upper.segment) @ axis
    height = float(up.max() - up.min())
    sac_pts = _voxel_points(segmentation, sacrum.segment)
    proj = sac_pts @ axis
    top = float(proj.max())
    cranial = sac_pts[proj >= top - height]
    detail = (
        f"S1 estimated (no S1 segment) as the centroid of the cranial {height:.1f} mm of "
        f"'{sacrum.segment.name}' ({len(cranial)} voxels) along the {axis_text} axis"
    )
    return cranial.mean(axis=0), detail


def landmarks_from_vertebrae(
    segmentation: Segmentation, table: Optional[NameTable] = None, include_vertebrae: bool = False
) -> Dict[str, LevelLandmark]:
    """Disc levels from vertebra masks: midpoints of adjacent vertebra centroids.

    Parameters
    ----------
    segmentation : Segmentation
        Holds vertebra segments (``vertebrae_L4``, ``L4``...) and optionally a
        ``sacrum``.
    table : NameTable, optional
        Name vocabulary (built-in when omitted).
    include_vertebrae : bool
        Also return each vertebra's own centroid under its vertebra level
        (``"L3"``: the mid-vertebra point).

    Returns
    -------
    dict
        Level -> :class:`LevelLandmark` (source ``"vertebra_masks"``), cranial
        to caudal.  A disc level needs both neighbours (``L3`` and ``L4`` for
        ``L3/4``); the transitional ``L6``/``T13`` are followed when present.
        Without an ``S1`` segment, ``L5/S1`` uses the sacrum rule of the
        module notes.  Direction hints (``"vertebra centroids"``): upper
        minus lower centroid for a disc; for a vertebra, its upper minus its
        lower neighbour (the sacrum's S1 estimate counts as a lower
        neighbour), or the difference to its one neighbour, none when alone.

    Raises
    ------
    LevelError
        Two non-empty segments name the same vertebra, or several sacrum
        segments exist.
    """
    verts, sacrum = _vertebra_table(segmentation, table)
    order = sorted(verts, key=level_sort_key)
    lower_of = {level: next_vertebra(level, verts) for level in order}
    upper_of = {lower: level for level, lower in lower_of.items() if lower in verts}
    s1_estimate = None  # (point, detail) of S1 from the sacrum
    for level in order:
        if lower_of[level] == "S1" and "S1" not in verts and sacrum is not None:
            s1_estimate = _s1_from_sacrum(segmentation, sacrum, verts[level], verts, level)
    centre = {level: verts[level].point for level in order}
    if s1_estimate is not None:
        centre.setdefault("S1", s1_estimate[0])  # a neighbour point only, not a landmark
    out: Dict[str, LevelLandmark] = {}
    for level in order:
        c = verts[level]
        lower = lower_of[level]
        if include_vertebrae:
            up = upper_of.get(level)
            down = lower if lower in centre else None
            if up is not None and down is not None:
                direction = _direction(centre[up], centre[down])
            elif up is not None:
                direction = _direction(centre[up], c.point)
            elif down is not None:
                direction = _direction(c.point, centre[down])
            else:
                direction = None
            out[level] = LevelLandmark(
                level, c.point, "vertebra_masks", f"centroid of vertebra segment '{c.segment.name}' ({c.n_voxels} voxels)",
                direction_lps=direction, direction_source="vertebra centroids" if direction is not None else "",
            )
        if lower is None:
            continue
        disc = disc_between(level, lower)
        if lower in verts:
            d = verts[lower]
            gap = float(np.linalg.norm(c.point - d.point))
            if gap > MAX_ADJACENT_CENTROID_DISTANCE_MM:
                warnings.warn(
                    f"{segmentation.source}: centroids of '{c.segment.name}' and '{d.segment.name}' are "
                    f"{gap:.0f} mm apart; check that these vertebrae are labelled correctly ({disc} may be wrong)",
                    LevelWarning,
                    stacklevel=2,
                )
            direction = _direction(c.point, d.point)
            out[disc] = LevelLandmark(
                disc,
                (c.point + d.point) / 2.0,
                "vertebra_masks",
                f"midpoint of the centroids of '{c.segment.name}' and '{d.segment.name}'",
                direction_lps=direction,
                direction_source="vertebra centroids" if direction is not None else "",
            )
        elif lower == "S1" and s1_estimate is not None:
            s1, detail = s1_estimate
            direction = _direction(c.point, s1)
            out[disc] = LevelLandmark(
                disc, (c.point + s1) / 2.0, "vertebra_masks", f"midpoint of the centroid of '{c.segment.name}' and {detail}",
                direction_lps=direction, direction_source="vertebra centroids" if direction is not None else "",
            )
    return dict(sorted(out.items(), key=lambda kv: level_sort_key(kv[0])))


# =============================================================================
# markups
# =============================================================================
def disc_normal_from_line(p0_lps, p1_lps, where: str = "line") -> Tuple[np.ndarray, str]:
    """Disc-plane normal of a line drawn by a reader (see module notes).

    Parameters
    ----------
    p0_lps, p1_lps : array_like
        The two end points of the line, LPS mm.
    where : str
        Names the line in messages (e.g. ``"line 'L4/5' in levels.mrk.json (RAS)"``).

    Returns
    -------
    normal : numpy.ndarray
        Unit vector, LPS, pointing cranially (z >= 0).
    rule : str
        ``"along the spine axis"`` (the line lies within 45 degrees of LPS z:
        normal = the line direction) or ``"along the disc"`` (normal =
        normalise(line x (1, 0, 0)): the disc plane holds the line and the
        left-right axis).

    Raises
    ------
    LevelError
        The two end points coincide (or are not finite), or the line lies
        within 45 degrees of the left-right axis (LPS x), where the plane
        holding it and the x axis is undefined or meaningless.
    """
    p0 = np.asarray(p0_lps, dtype=float).reshape(3)
    p1 = np.asarray(p1_lps, dtype=float).reshape(3)
    d = p1 - p0
    length = float(np.linalg.norm(d))
    if not np.isfinite(length) or length < 1e-6:
        raise LevelError(
            f"{where}: its two end points coincide, so it has no direction; draw the line from one edge of "
            "the disc to the other on a sagittal view"
        )
    d = d / length
    if abs(d[2]) >= np.cos(np.radians(LINE_SPINE_AXIS_DEG)) - 1e-12:
        normal, rule = d, "along the spine axis"
    elif abs(d[0]) > np.cos(np.radians(LINE_REFUSED_NEAR_X_DEG)):
        angle = float(np.degrees(np.arccos(min(1.0, abs(d[0])))))
        raise LevelError(
            f"{where}: the line runs {angle:.0f} degrees from the patient's left-right axis (LPS x); a disc "
            "plane cannot be taken from a line drawn left-right. Draw the line along the disc on a sagittal "
            "view (front to back), or along the spine axis, or mark the disc with a point instead"
        )
    else:
        normal = np.cross(d, np.array([1.0, 0.0, 0.0]))
        normal, rule = normal / np.linalg.norm(normal), "along the disc"
    if normal[2] < 0:
        normal = -normal
    return normal, rule


def _neighbour_direction(level: str, points: Mapping[str, np.ndarray]) -> Optional[np.ndarray]:
    """Vertebra direction from its labelled neighbours (central difference, else one neighbour)."""
    lower = next_vertebra(level, points)
    up = next((v for v in points if next_vertebra(v, points) == level), None)
    down = lower if lower in points else None
    if up is not None and down is not None:
        return _direction(points[up], points[down])
    if up is not None:
        return _direction(points[up], points[level])
    if down is not None:
        return _direction(points[level], points[down])
    return None


def _markup_landmarks(path, points, lines, include_vertebrae: bool) -> Dict[str, LevelLandmark]:
    """Turn labelled LPS points and lines of one file into landmarks."""
    by_level: Dict[str, Tuple[str, np.ndarray, str]] = {}
    line_of: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}

    def claim(level, label, point, where, kind):
        if level in by_level:
            first = by_level[level][0]
            raise LevelError(
                f"{path}: {first} and {kind} '{label}' are both level {level}; keep one point or line per level"
            )
        by_level[level] = (f"{kind} '{label}'", point, where)

    for label, point, where in points:
        level = canonical_level(label)
        if level is None:
            warnings.warn(
                f"{path}: control point label '{label}' is not a vertebra or disc level (write e.g. "
                "'L4/5', 'L4-L5' or 'L5/S1'); the point is ignored",
                LevelWarning,
                stacklevel=3,
            )
            continue
        claim(level, label, point, where, "control point")
    for label, p0, p1, where in lines:
        level = canonical_level(label)
        if level is None or not is_disc_level(level):
            what = "is not named with a level" if level is None else f"is named with the vertebra level {level}"
            warnings.warn(
                f"{where}: the line {what}; a line marks a disc: name the line (or its first point) with the "
                "disc level, e.g. 'L4/5'. The line is ignored",
                LevelWarning,
                stacklevel=3,
            )
            continue
        claim(level, label, (p0 + p1) / 2.0, where, "line")
        line_of[level] = (p0, p1)
    vertebrae = {lvl: v[1] for lvl, v in by_level.items() if is_vertebra_level(lvl)}
    out: Dict[str, LevelLandmark] = {}
    for level, (what, point, where) in by_level.items():
        if level in line_of:
            normal, rule = disc_normal_from_line(*line_of[level], where=where)
            out[level] = LevelLandmark(level, point, "markups", f"midpoint of {where}",
                                       direction_lps=normal, direction_source=f"markups line {rule}")
        elif is_disc_level(level):
            direction = None
            upper, lower = adjacent_vertebrae(level)
            if upper in vertebrae and lower in vertebrae:
                direction = _direction(vertebrae[upper], vertebrae[lower])
            out[level] = LevelLandmark(level, point, "markups", f"{what} {where}", direction_lps=direction,
                                       direction_source="markups vertebra points" if direction is not None else "")
        elif include_vertebrae:
            direction = _neighbour_direction(level, vertebrae)
            out[level] = LevelLandmark(level, point, "markups", f"{what} {where}", direction_lps=direction,
                                       direction_source="markups vertebra points" if direction is not None else "")
    for level, point in vertebrae.items():
        lower = next_vertebra(level, vertebrae)
        if lower in vertebrae:
            disc = disc_between(level, lower)
            if disc not in out:
                direction = _direction(point, vertebrae[lower])
                out[disc] = LevelLandmark(
                    disc,
                    (point + vertebrae[lower]) / 2.0,
                    "markups",
                    f"midpoint of {by_level[level][0]} and {by_level[lower][0]} in {path}",
                    direction_lps=direction,
                    direction_source="markups vertebra points" if direction is not None else "",
                )
    return dict(sorted(out.items(), key=lambda kv: level_sort_key(kv[0])))


def read_markups(path: Union[_PathLike, InMemoryMarkups], include_vertebrae: bool = False) -> Dict[str, LevelLandmark]:
    """Level landmarks from a Slicer markups file (or markups held in memory).

    Parameters
    ----------
    path : str, Path or InMemoryMarkups
        ``.mrk.json`` or legacy ``.fcsv`` (formats and coordinate systems: see
        :func:`ParaspinalFatLib.io.markups.read_control_points` and
        :func:`~ParaspinalFatLib.io.markups.read_lines`), or the same point
        lists and lines held in memory (e.g. from a Slicer markups node).
    include_vertebrae : bool
        Also return points labelled with a vertebra (``"L3"``) under that level.

    Returns
    -------
    dict
        Level -> :class:`LevelLandmark` (source ``"markups"``), LPS mm.
        Points labelled with a disc (``L4/5``, ``L4-L5``, ``L45``...) give that
        disc; two points labelled with adjacent vertebrae (``L4`` and ``L5``)
        give the disc between them at their midpoint unless a disc point
        exists.  A line markup named with a disc level (or whose first point
        is) gives that disc at the midpoint of its end points, with the
        direction hint of :func:`disc_normal_from_line`.  Direction hints of
        vertebra points: see the module notes.

    Warns
    -----
    LevelWarning
        Labels that are not levels (named with the file), lines not named
        with a disc level, unplaced points, lines without two placed points,
        markups that are neither point lists nor lines.

    Raises
    ------
    InputError
        Missing or unreadable file, unknown coordinate system or units.
    LevelError
        Two points or lines with the same level in the file; a line whose end
        points coincide or that runs left-right (:func:`disc_normal_from_line`).
    """
    p = path if isinstance(path, InMemoryMarkups) else Path(path)
    return _markup_landmarks(p, read_control_points(p), read_lines(p), include_vertebrae)


# =============================================================================
# combination
# =============================================================================
def _along_spine(position: LevelLandmark, other: LevelLandmark, others: Mapping[str, LevelLandmark]) -> float:
    """Distance (mm) between two landmarks along the spine at that level (module notes)."""
    axis = other.direction_lps if other.direction_lps is not None else spine_axis(others)
    return abs(float((position.point_lps - other.point_lps) @ axis))


def find_landmarks(
    segmentation: Optional[Segmentation] = None,
    markups: Optional[Union[_PathLike, InMemoryMarkups, Sequence[Union[_PathLike, InMemoryMarkups]]]] = None,
    table: Optional[NameTable] = None,
    include_vertebrae: bool = False,
    required: Iterable[str] = (),
    positions: Optional[Mapping[str, LevelLandmark]] = None,
) -> Dict[str, LevelLandmark]:
    """Level landmarks from all available sources, best source first.

    Parameters
    ----------
    segmentation : Segmentation, optional
        Disc and/or vertebra (and sacrum) segments.
    markups : path, InMemoryMarkups or a sequence of them, optional
        Slicer markups files, or markups held in memory (:func:`read_markups`).
    table : NameTable, optional
        Name vocabulary (built-in when omitted).
    include_vertebrae : bool
        Also return mid-vertebra landmarks (``"L3"``) from vertebra masks or
        markups.
    required : iterable of str
        Levels that must be found (any spelling, e.g. ``("L3/4", "L4/5",
        "L5/S1")``); a missing one raises :class:`LevelError`.
    positions : mapping of str to LevelLandmark, optional
        Positions the user typed (:func:`~ParaspinalFatLib.anatomy.level_positions.landmarks_from_slices`,
        :func:`~ParaspinalFatLib.anatomy.level_positions.landmarks_from_z`);
        each is kept under its ``level`` (vertebra levels too, whatever
        ``include_vertebrae``) and wins over every other source.

    Returns
    -------
    dict
        Level -> :class:`LevelLandmark`, cranial to caudal.  Typed positions
        win over disc masks, which win over vertebra masks, which win over
        markups; a worse source only fills levels the better ones lack
        (``landmark.source`` says which was used).

    Warns
    -----
    LevelWarning
        When a disc-mask point and the vertebra-midpoint point of the same
        level are more than 20 mm apart (a labelling error is likely), or a
        typed position lies more than 20 mm along the spine from the same
        level found by masks or markups.

    Raises
    ------
    LevelError
        A required level is missing (the message lists what was searched,
        what was found and every way to provide levels), or the same level
        appears twice within one source.
    InputError
        ``positions`` holds something that is not a :class:`LevelLandmark`.
    """
    by_source: List[Dict[str, LevelLandmark]] = []
    if segmentation is not None:
        discs = landmarks_from_discs(segmentation, table)
        verts = landmarks_from_vertebrae(segmentation, table, include_vertebrae=include_vertebrae)
        for level, lm in discs.items():
            other = verts.get(level)
            if other is not None:
                gap = float(np.linalg.norm(lm.point_lps - other.point_lps))
                if gap > SOURCE_DISAGREEMENT_MM:
                    warnings.warn(
                        f"{segmentation.source}: level {level} from the disc mask ({lm.detail}) is {gap:.0f} mm "
                        f"from the vertebra midpoint ({other.detail}); check the disc and vertebra labels. "
                        "The disc mask is used",
                        LevelWarning,
                        stacklevel=2,
                    )
        by_source += [discs, verts]
    files: List[_PathLike] = []
    if markups is not None:
        files = [markups] if isinstance(markups, (str, os.PathLike, InMemoryMarkups)) else list(markups)
        merged: Dict[str, LevelLandmark] = {}
        for f in files:
            for level, lm in read_markups(f, include_vertebrae=include_vertebrae).items():
                if level in merged:
                    raise LevelError(
                        f"level {level} is given twice in the markups: {merged[level].detail} and {lm.detail}; "
                        "keep one point or line per level"
                    )
                merged[level] = lm
        by_source.append(merged)
    others: Dict[str, LevelLandmark] = {}
    for found in by_source:
        for level, lm in found.items():
            others.setdefault(level, lm)
    others = dict(sorted(others.items(), key=lambda kv: level_sort_key(kv[0])))
    typed: Dict[str, LevelLandmark] = {}
    for key, lm in (positions or {}).items():
        if not isinstance(lm, LevelLandmark):
            raise InputError(
                f"positions: level {key!r} maps to a {type(lm).__name__}, not a LevelLandmark; build positions "
                "with level_positions.landmarks_from_slices or landmarks_from_z"
            )
        typed[lm.level] = lm
    for level, lm in typed.items():
        other = others.get(level)
        if other is None:
            continue
        gap = _along_spine(lm, other, others)
        if gap > SOURCE_DISAGREEMENT_MM:
            warnings.warn(
                f"level {level}: the typed position ({lm.detail}) lies {gap:.0f} mm along the spine from "
                f"the same level found by {other.source} ({other.detail}); check the typed level and its "
                "slice number or z (for slice numbers also slice_base (--slice-base): 0 or 1). The typed "
                "position is used",
                LevelWarning,
                stacklevel=2,
            )
    out = dict(sorted({**others, **typed}.items(), key=lambda kv: level_sort_key(kv[0])))

    missing = []
    for want in required:
        level = canonical_level(want)
        if level is None:
            raise LevelError(f"required level '{want}' is not a level; write it like 'L4/5' or 'L5/S1'")
        if level not in out:
            missing.append(level)
    if missing:
        where = []
        if typed:
            where.append(f"the typed positions ({', '.join(sorted(typed, key=level_sort_key))})")
        if segmentation is not None:
            where.append(f"segmentation {segmentation.source}")
        if files:
            where.append(f"markups {', '.join(str(f) for f in files)}")
        searched = (
            f"not found in {' or '.join(where)}" if where
            else "not found: no segmentation, markups file or typed positions was given"
        )
        raise LevelError(
            f"level(s) {', '.join(missing)} {searched} (found: {', '.join(out) or 'none'}). "
            f"{HOW_TO_GIVE_LEVELS}"
        )
    return out

"""Disc-level landmarks: where on the spine each measurement level lies.

Each disc level (``"L3/4"``, ``"L4/5"``, ``"L5/S1"``...) gets one point in
patient LPS millimetres at the middle of the intervertebral disc.  The
measurement code turns it into a slice with ``Geometry.slice_axis`` and
``Geometry.nearest_slice``.  Points come from, in order of preference:

1. **disc masks** (:func:`landmarks_from_discs`): centroid of each disc segment
   (``disc_L4_L5``, ``IVD L4-L5``...); source ``"disc_mask"``;
2. **vertebra masks** (:func:`landmarks_from_vertebrae`): midpoint of the
   centroids of two adjacent vertebrae (``vertebrae_L4`` + ``vertebrae_L5``);
   source ``"vertebra_masks"``;
3. **Slicer markups** (:func:`read_markups`): control points labelled with a
   level (``L4/5``, ``L4-L5``, ``L45``) in ``.mrk.json`` or legacy ``.fcsv``;
   source ``"markups"``.

:func:`find_landmarks` combines them: a level from a less preferred source only
fills levels the better sources did not give.

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
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union
import numpy as np
from ..io.markups import read_control_points
from ..errors import LevelWarning, InputError, LevelError
from .muscle_names import NameTable
from .level_names import canonical_level, disc_between, is_disc_level, is_vertebra_level, level_sort_key, next_vertebra
from .segment_names import parse_segment_name
from ..segmentation import Segment, Segmentation


__all__ = ['SOURCES', 'LevelLandmark', 'read_markups', 'segment_centroids', 'vertebra_centroids', 'spine_axis', 'landmarks_from_discs', 'landmarks_from_vertebrae', 'find_landmarks']

#: Landmark sources, most preferred first.
SOURCES = ("disc_mask", "vertebra_masks", "markups")
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
        ``"disc_mask"``, ``"vertebra_masks"`` or ``"markups"``.
    detail : str
        Human-readable provenance (segments or file and label used).
    """

    level: str
    point_lps: np.ndarray
    source: str
    detail: str

    def __post_init__(self):
        p = np.array(self.point_lps, dtype=float).reshape(-1)
        if p.shape != (3,) or not np.all(np.isfinite(p)):
            raise LevelError(f"level {self.level}: landmark point must be 3 finite numbers, got {self.point_lps!r}")
        p.setflags(write=False)
        object.__setattr__(self, "point_lps", p)
        if self.source not in SOURCES:
            raise ValueError(f"landmark source must be one of {SOURCES}, got {self.source!r}")

    def __repr__(self) -> str:
        x, y, z = self.point_lps
        return f"LevelLandmark({self.level!r}, LPS ({x:.2f}, {y:.2f}, {z:.2f}), {self.source!r}, {self.detail!r})"


# =============================================================================
# centroids
# =============================================================================
def _label_lookup(values: Sequence[int]):
    """Function mapping a label block to compact indices 1..n (0 = not of interest)."""
    values = np.asarray(values, dtype=np.int64)
    n = len(values)
    vmax = int(values.max())
    dtype = np.uint8 if n < 255 else (np.uint16 if n < 65535 else np.int64)
    if vmax <= (1 << 22):
        lut = np.zeros(max(vmax + 2, 1 << 16), dtype=dtype)
        lut[values] = np.arange(1, n + 1, dtype=dtype)
        small = {1: np.uint8, 2: np.uint16}

        def apply(block):
            if block.dtype.itemsize in small:
                # 8/16-bit labels: index directly (negative values become large unsigned ones -> 0)
                return lut[block.view(small[block.dtype.itemsize])]
            return lut[np.clip(block, 0, vmax + 1)]

        return apply
    order = np.argsort(values)
    sorted_values = values[order]

    def apply(block):  # very large label values: binary search
        # keys in the block's own type: int64 keys against uint64 labels would compare as float64
        keys = sorted_values.astype(np.uint64) if block.dtype == np.uint64 else sorted_values
        pos = np.clip(np.searchsorted(keys, block), 0, n - 1)
        hit = keys[pos] == block
        return np.where(hit, order[pos] + 1, 0).astype(dtype)

    return apply


def _layer_stats(segmentation: Segmentation, layer: int, values: Sequence[int]):
    """Voxel counts, index sums (k, j, i) and grid-edge contact of labels.

    Uses the segmentation's cached non-zero voxel index of the layer
    (:meth:`Segmentation.labelled_voxels`), so the ROI gathering of the
    measurement and these centroids share one pass over the volume.
    """
    n = len(values)
    lookup = _label_lookup(values)
    found = segmentation.labelled_voxels(layer)
    idx = lookup(found.labels)
    sel = idx > 0
    w = idx[sel].astype(np.intp)
    k, j, i = (found.index(axis, sel) for axis in range(3))
    nk, nj, ni = segmentation.layers.shape[1:]
    counts = np.bincount(w, minlength=n + 1).astype(np.int64)
    sums = np.zeros((n + 1, 3), dtype=float)
    sums[:, 0] = np.bincount(w, weights=k.astype(float), minlength=n + 1)
    sums[:, 1] = np.bincount(w, weights=j.astype(float), minlength=n + 1)
    sums[:, 2] = np.bincount(w, weights=i.astype(float), minlength=n + 1)
    on_edge = (k == 0) | (k == nk - 1) | (j == 0) | (j == nj - 1) | (i == 0) | (i == ni - 1)
    edge = np.bincount(w[on_edge], minlength=n + 1) > 0
    edge[0] = False
    return counts, sums, edge


@dataclass(frozen=True, eq=False)
class _Centroid:
    segment: Segment
    point: np.ndarray
    n_voxels: int
    touches_edge: bool


def _centroids(segmentation: Segmentation, segments: Iterable[Segment]) -> Dict[Tuple[int, int], _Centroid]:
    by_layer: Dict[int, List[Segment]] = {}
    for s in segments:
        if s.label_value > 0:  # 0 is background
            by_layer.setdefault(s.layer, []).append(s)
    geom = segmentation.geometry
    out = {}
    for layer, segs in by_layer.items():
        counts, sums, edge = _layer_stats(segmentation, layer, [s.label_value for s in segs])
        for c, s in enumerate(segs, start=1):
            if counts[c] == 0:
                continue
            kji = sums[c] / counts[c]
            point = geom.index_to_physical(kji[::-1])
            out[(s.layer, s.label_value)] = _Centroid(s, point, int(counts[c]), bool(edge[c]))
    return out


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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # name warnings belong to the name listing, not here
        parsed = [(s, parse_segment_name(s.name, table)) for s in segmentation.segments]
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
        cranial to caudal.  Empty disc segments are skipped.

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
    centroids = _centroids(segmentation, [s for s, _ in discs])
    found = _unique_by_level(discs, centroids, segmentation, "disc")
    return {
        level: LevelLandmark(
            level,
            found[level].point,
            "disc_mask",
            f"centroid of disc segment '{found[level].segment.name}' ({found[level].n_voxels} voxels)",
        )
        for level in sorted(found, key=level_sort_key)
    }


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
        module notes.

    Raises
    ------
    LevelError
        Two non-empty segments name the same vertebra, or several sacrum
        segments exist.
    """
    verts, sacrum = _vertebra_table(segmentation, table)
    out: Dict[str, LevelLandmark] = {}
    for level in sorted(verts, key=level_sort_key):
        c = verts[level]
        if include_vertebrae:
            out[level] = LevelLandmark(
                level, c.point, "vertebra_masks", f"centroid of vertebra segment '{c.segment.name}' ({c.n_voxels} voxels)"
            )
        lower = next_vertebra(level, verts)
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
            out[disc] = LevelLandmark(
                disc,
                (c.point + d.point) / 2.0,
                "vertebra_masks",
                f"midpoint of the centroids of '{c.segment.name}' and '{d.segment.name}'",
            )
        elif lower == "S1" and sacrum is not None:
            s1, detail = _s1_from_sacrum(segmentation, sacrum, c, verts, level)
            out[disc] = LevelLandmark(
                disc, (c.point + s1) / 2.0, "vertebra_masks", f"midpoint of the centroid of '{c.segment.name}' and {detail}"
            )
    return dict(sorted(out.items(), key=lambda kv: level_sort_key(kv[0])))


# =============================================================================
# markups
# =============================================================================
def _label_points(path: Path, points: List[Tuple[str, np.ndarray, str]], include_vertebrae: bool):
    """Turn labelled LPS points of one file into landmarks."""
    by_level: Dict[str, Tuple[str, np.ndarray, str]] = {}
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
        if level in by_level:
            raise LevelError(
                f"{path}: control points '{by_level[level][0]}' and '{label}' are both level {level}; "
                "keep one point per level"
            )
        by_level[level] = (label, point, where)
    out: Dict[str, LevelLandmark] = {}
    for level, (label, point, where) in by_level.items():
        if is_disc_level(level):
            out[level] = LevelLandmark(level, point, "markups", f"control point '{label}' {where}")
        elif include_vertebrae:
            out[level] = LevelLandmark(level, point, "markups", f"control point '{label}' {where}")
    vertebrae = {lvl: v for lvl, v in by_level.items() if is_vertebra_level(lvl)}
    for level, (label, point, _) in vertebrae.items():
        lower = next_vertebra(level, vertebrae)
        if lower in vertebrae:
            disc = disc_between(level, lower)
            if disc not in out:
                out[disc] = LevelLandmark(
                    disc,
                    (point + vertebrae[lower][1]) / 2.0,
                    "markups",
                    f"midpoint of control points '{label}' and '{vertebrae[lower][0]}' in {path}",
                )
    return dict(sorted(out.items(), key=lambda kv: level_sort_key(kv[0])))


def read_markups(path: _PathLike, include_vertebrae: bool = False) -> Dict[str, LevelLandmark]:
    """Level landmarks from a Slicer markups file.

    Parameters
    ----------
    path : str or Path
        ``.mrk.json`` or legacy ``.fcsv`` (formats and coordinate systems: see
        :func:`ParaspinalFatLib.io.markups.read_control_points`).
    include_vertebrae : bool
        Also return points labelled with a vertebra (``"L3"``) under that level.

    Returns
    -------
    dict
        Level -> :class:`LevelLandmark` (source ``"markups"``), LPS mm.
        Points labelled with a disc (``L4/5``, ``L4-L5``, ``L45``...) give that
        disc; two points labelled with adjacent vertebrae (``L4`` and ``L5``)
        give the disc between them at their midpoint unless a disc point
        exists.

    Warns
    -----
    LevelWarning
        Labels that are not levels (named with the file), unplaced points,
        non point-list markups.

    Raises
    ------
    InputError
        Missing or unreadable file, unknown coordinate system or units.
    LevelError
        Two points with the same level in the file.
    """
    p = Path(path)
    return _label_points(p, read_control_points(p), include_vertebrae)


# =============================================================================
# combination
# =============================================================================
def find_landmarks(
    segmentation: Optional[Segmentation] = None,
    markups: Optional[Union[_PathLike, Sequence[_PathLike]]] = None,
    table: Optional[NameTable] = None,
    include_vertebrae: bool = False,
    required: Iterable[str] = (),
) -> Dict[str, LevelLandmark]:
    """Level landmarks from all available sources, best source first.

    Parameters
    ----------
    segmentation : Segmentation, optional
        Disc and/or vertebra (and sacrum) segments.
    markups : path or sequence of paths, optional
        Slicer markups files (:func:`read_markups`).
    table : NameTable, optional
        Name vocabulary (built-in when omitted).
    include_vertebrae : bool
        Also return mid-vertebra landmarks (``"L3"``) from vertebra masks or
        markups.
    required : iterable of str
        Levels that must be found (any spelling, e.g. ``("L3/4", "L4/5",
        "L5/S1")``); a missing one raises :class:`LevelError`.

    Returns
    -------
    dict
        Level -> :class:`LevelLandmark`, cranial to caudal.  Disc masks win
        over vertebra masks, which win over markups; a worse source only fills
        levels the better ones lack (``landmark.source`` says which was used).

    Warns
    -----
    LevelWarning
        When a disc-mask point and the vertebra-midpoint point of the same
        level are more than 20 mm apart (a labelling error is likely).

    Raises
    ------
    LevelError
        A required level is missing (the message lists what was found and how
        to provide levels), or the same level appears twice within one source.
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
    if markups is not None:
        files = [markups] if isinstance(markups, (str, os.PathLike)) else list(markups)
        merged: Dict[str, LevelLandmark] = {}
        for f in files:
            for level, lm in read_markups(f, include_vertebrae=include_vertebrae).items():
                if level in merged:
                    raise LevelError(
                        f"level {level} is given twice in the markups: {merged[level].detail} and {lm.detail}; "
                        "keep one point per level"
                    )
                merged[level] = lm
        by_source.append(merged)
    out: Dict[str, LevelLandmark] = {}
    for found in by_source:
        for level, lm in found.items():
            out.setdefault(level, lm)
    out = dict(sorted(out.items(), key=lambda kv: level_sort_key(kv[0])))

    missing = []
    for want in required:
        level = canonical_level(want)
        if level is None:
            raise LevelError(f"required level '{want}' is not a level; write it like 'L4/5' or 'L5/S1'")
        if level not in out:
            missing.append(level)
    if missing:
        where = []
        if segmentation is not None:
            where.append(f"segmentation {segmentation.source}")
        if markups is not None:
            where.append(f"markups {markups}")
        raise LevelError(
            f"level(s) {', '.join(missing)} not found in {' and '.join(where) or 'no input'} (found: "
            f"{', '.join(out) or 'none'}). Provide disc segments named like 'disc_L4_L5', vertebra "
            "segments like 'vertebrae_L4' and 'vertebrae_L5' (TotalSegmentator), or a Slicer markups "
            "file with points labelled 'L4/5'"
        )
    return out

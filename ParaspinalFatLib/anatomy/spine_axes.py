"""The local spine axis at each level: the normal of its disc- or body-parallel plane.

For ``plane="disc"`` every level is measured on a plane through its landmark
point, perpendicular to the local spine axis there.  The axis comes from, in
order of preference:

1. the landmark's own direction (:attr:`LevelLandmark.direction_lps`): the
   disc mask's axis of least extent, the line between the two adjacent
   vertebral-body centroids, the neighbouring vertebrae of a mid-body level,
   or a Slicer markups line drawn along the disc;
2. the neighbouring landmark points of the same case: the direction from the
   next caudal to the next cranial level point (central difference; one-sided
   at the ends of the chain);
3. the image's slice normal (``fallback_normal``; else the ``cranio_caudal``
   direction), with a warning: the plane is then the image plane through the
   point.

A level typed by the user (``--level-slices``/``--level-z``) sits at the
grid's in-plane centre, not on the spine, so a tilted plane through it would
cut the spine at another height: typed levels always get the fallback normal
(no tilt), and their points are never neighbours of other levels.

Every normal is a unit vector in LPS pointing cranially (positive component
along ``cranio_caudal``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Dict, Mapping, Sequence

import numpy as np

from ..errors import LevelWarning
from .landmarks import POSITION_SOURCES
from .level_names import is_disc_level, level_sort_key

__all__ = ["LevelAxis", "level_axes"]


@dataclass(frozen=True, eq=False)
class LevelAxis:
    """Local spine axis at one level.

    Attributes
    ----------
    level : str
        Canonical level (``"L4/5"``, ``"L3"``).
    normal_lps : numpy.ndarray
        Unit vector (3,), LPS, pointing cranially.
    source : str
        How it was found (e.g. ``"disc mask principal axes"``,
        ``"neighbouring level points L3/4 -> L5/S1"``, ``"cranio_caudal
        option (no spine direction found)"``).
    """

    level: str
    normal_lps: np.ndarray
    source: str


def _unit(vector, cranial: np.ndarray):
    v = np.asarray(vector, dtype=float).reshape(-1)
    if v.shape != (3,) or not np.all(np.isfinite(v)):
        return None
    norm = float(np.linalg.norm(v))
    if norm < 1e-9:
        return None
    v = v / norm
    return -v if float(v @ cranial) < 0 else v


def level_axes(landmarks: Mapping[str, object], levels: Sequence[str],
               cranio_caudal=(0.0, 0.0, 1.0), fallback_normal=None) -> Dict[str, LevelAxis]:
    """The plane normal of each asked level.

    Parameters
    ----------
    landmarks : mapping
        Level -> landmark with ``point_lps`` and optionally ``direction_lps``
        / ``direction_source``
        (:class:`~ParaspinalFatLib.anatomy.landmarks.LevelLandmark`).
    levels : sequence of str
        Canonical levels that need a normal (each must be in ``landmarks``).
    cranio_caudal : sequence of 3 float
        The patient's cranial direction in LPS (orients every normal; the
        last-resort normal when ``fallback_normal`` is not given).
    fallback_normal : sequence of 3 float, optional
        The image's slice normal: the normal of typed levels and of levels
        without any spine direction.

    Returns
    -------
    dict
        Level -> :class:`LevelAxis`.

    Warns
    -----
    LevelWarning
        A level whose axis could come neither from its landmark nor from
        neighbouring levels (the ``cranio_caudal`` direction is used).
    """
    cranial = np.asarray(cranio_caudal, dtype=float)
    cranial = cranial / np.linalg.norm(cranial)
    fallback = _unit(fallback_normal, cranial) if fallback_normal is not None else None
    fallback_text = "image slice normal" if fallback is not None else "cranio_caudal option"
    if fallback is None:
        fallback = cranial.copy()
    on_spine = {lv: m for lv, m in landmarks.items() if getattr(m, "source", "") not in POSITION_SOURCES}
    # the chain of disc points (or of every point when there is no disc) orders neighbours
    chain = sorted([lv for lv in on_spine if is_disc_level(lv)], key=level_sort_key)
    if len(chain) < 2:
        chain = sorted(on_spine, key=level_sort_key)
    out: Dict[str, LevelAxis] = {}
    for level in levels:
        mark = landmarks[level]
        if getattr(mark, "source", "") in POSITION_SOURCES:
            out[level] = LevelAxis(level, fallback.copy(),
                                   f"{fallback_text} (typed position: not on the spine, so not tilted)")
            continue
        own = getattr(mark, "direction_lps", None)
        normal = None if own is None else _unit(own, cranial)
        if normal is not None:
            source = getattr(mark, "direction_source", "") or "level landmark direction"
            out[level] = LevelAxis(level, normal, source)
            continue
        normal, source = _from_neighbours(level, landmarks, chain, cranial) if level in on_spine else (None, "")
        if normal is None:
            warnings.warn(
                f"level {level}: no spine direction found (no disc or vertebra masks giving one, no markups line, "
                f"no neighbouring level point): its plane is the {fallback_text} "
                f"{tuple(float(round(c, 3)) for c in fallback)} (LPS); give a markups line along the disc or "
                f"vertebra masks for a disc-parallel plane",
                LevelWarning, stacklevel=2,
            )
            normal, source = fallback.copy(), f"{fallback_text} (no spine direction found)"
        out[level] = LevelAxis(level, normal, source)
    return out


def _from_neighbours(level: str, landmarks: Mapping[str, object], chain: Sequence[str], cranial: np.ndarray):
    """Direction from the next caudal to the next cranial point of the chain around ``level``."""
    point = np.asarray(landmarks[level].point_lps, dtype=float)
    key = level_sort_key(level)
    above = [lv for lv in chain if level_sort_key(lv) < key]
    below = [lv for lv in chain if level_sort_key(lv) > key]
    upper = above[-1] if above else None
    lower = below[0] if below else None
    if upper is not None and lower is not None:
        a, b = landmarks[upper].point_lps, landmarks[lower].point_lps
        text = f"neighbouring level points {upper} -> {lower}"
    elif upper is not None:
        a, b = landmarks[upper].point_lps, point
        text = f"level points {upper} -> {level}"
    elif lower is not None:
        a, b = point, landmarks[lower].point_lps
        text = f"level points {level} -> {lower}"
    else:
        return None, ""
    normal = _unit(np.asarray(a, dtype=float) - np.asarray(b, dtype=float), cranial)
    return (normal, text) if normal is not None else (None, "")

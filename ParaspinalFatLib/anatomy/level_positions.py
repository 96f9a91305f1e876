"""Level positions the user types: slice numbers or z coordinates read in a viewer.

Data without disc or vertebra masks needs no markups file: the user reads where
each level lies in any viewer and types it, e.g. ``--level-slices
"L3/4=12,L4/5=18,L5/S1=24"`` or ``--level-z "L4/5=-312.5"``.  The functions here
turn such text into :class:`~ParaspinalFatLib.anatomy.landmarks.LevelLandmark`
points (sources ``"level_slices"`` and ``"level_z"``), which
:func:`~ParaspinalFatLib.anatomy.landmarks.find_landmarks` takes as
``positions`` and prefers over every other source.

Conventions
-----------
* **Levels** in any spelling (``L4/5``, ``L4-L5``, ``L45``, ``L5-S1``), disc or
  vertebra levels.  A vertebra level (``L3``) is a mid-vertebra point kept
  under its own level; two adjacent typed vertebrae (``L3``, ``L4``) also give
  the disc between them (``L3/4``) at their midpoint unless that disc is typed
  itself.  An odd number of slices between two typed vertebrae puts the disc
  point exactly between two slices (the measurement's nearest-slice rule then
  decides).
* **Slice numbers** count along the ITK axis ``axis`` of the image (the slice
  axis the measurement uses), as a viewer shows them: ``base`` 0 is Slicer's
  Data Probe (IJK) and ITK; ``base`` 1 is ITK-SNAP and the image numbers of
  many DICOM viewers.  The point is the centre of that slice: the in-plane
  centre of the grid at that index.  A number outside the image is refused;
  when it would fit the other base, the message suggests ``--slice-base``.
* **z** is LPS z in mm (patient superior positive).  Slicer shows the same
  number as S of RAS (only x and y change sign between LPS and RAS).  The point
  is where the image's central slice-axis line (through the grid centre along
  the slice normal) reaches that z.  Refused when that line never changes z
  (slice normal perpendicular to z) or when z lies outside the image along that
  line (the outer faces of the first and last slice; the message gives the
  range).
* A warning is given when the typed levels are not in cranio-caudal order
  along LPS z (a more caudal level at or above a more cranial one): a typing
  error, or a viewer that numbers slices from the other end.
* Typed positions carry no direction hint (they lie on one line along the
  slice normal).
"""
from __future__ import annotations

import re
import warnings
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np

from ..errors import InputError, LevelWarning
from ..geometry import Geometry
from .landmarks import LevelLandmark
from .level_names import canonical_level, disc_between, is_vertebra_level, level_sort_key, next_vertebra

__all__ = ["SLICE_BASE_OPTION", "LEVEL_SLICES_OPTION", "LEVEL_Z_OPTION", "parse_level_assignments",
           "landmarks_from_slices", "landmarks_from_z", "typed_positions"]

#: Option names used in messages.
SLICE_BASE_OPTION = "slice_base (--slice-base)"
LEVEL_SLICES_OPTION = "level_slices (--level-slices)"
LEVEL_Z_OPTION = "level_z (--level-z)"
_AXIS_LETTERS = "ijk"
_VIEWERS = {0: "as Slicer's Data Probe (IJK) and ITK count", 1: "as ITK-SNAP and many DICOM viewers count"}
_Points = Tuple[Dict[str, np.ndarray], Dict[str, str], Dict[str, str]]  # points, details, sources


# =============================================================================
# parsing
# =============================================================================
def _number(value) -> Optional[float]:
    """A finite real number as float, else None (bools are not numbers)."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        x = float(value)
    elif isinstance(value, str):
        try:
            x = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return x if np.isfinite(x) else None


def parse_level_assignments(text_or_mapping, *, option: str) -> Dict[str, float]:
    """Level -> number assignments from a text such as ``"L3/4=12,L4/5=18"``.

    Parameters
    ----------
    text_or_mapping : str, sequence of str or mapping
        ``LEVEL=NUMBER`` items separated by ``,`` or ``;`` (whitespace around
        items and around ``=`` allowed; decimals with ``.``), a sequence of
        such texts (e.g. a repeated command-line option), or a mapping
        ``{level: number}``.  Levels in any spelling (``"L4-L5"``, ``"L45"``,
        ``"L5S1"``), disc or vertebra levels; numbers as numbers or text.
    option : str
        How the option is named in messages (``"level_slices
        (--level-slices)"``).

    Returns
    -------
    dict
        Canonical level -> float, cranial to caudal.

    Raises
    ------
    InputError
        Empty text or mapping; an item that is not ``LEVEL=NUMBER``; a text
        that is not a single vertebra or disc level; a value that is not a
        finite number; the same level twice (in any spelling).  The message
        names ``option`` and the item.
    """
    items: List[Tuple[str, object, object]] = []  # (item as shown, level text, value)
    if isinstance(text_or_mapping, Mapping):
        for key, value in text_or_mapping.items():
            items.append((f"{key}={value}", key, value))
    elif isinstance(text_or_mapping, str) or (
        isinstance(text_or_mapping, (list, tuple)) and all(isinstance(t, str) for t in text_or_mapping)
    ):
        texts = [text_or_mapping] if isinstance(text_or_mapping, str) else list(text_or_mapping)
        for text in texts:
            for raw in re.split(r"[,;]", text):
                item = raw.strip()
                if not item:
                    continue
                if item.count("=") != 1:
                    raise InputError(
                        f"{option}: item '{item}' is not LEVEL=NUMBER; write e.g. 'L3/4=12,L4/5=18' (items "
                        "separated by ',' or ';', decimals with '.')"
                    )
                level_text, value_text = (part.strip() for part in item.split("="))
                items.append((item, level_text, value_text))
    else:
        raise InputError(
            f"{option}: expected a text such as 'L3/4=12,L4/5=18' or a mapping level -> number, not "
            f"{type(text_or_mapping).__name__}"
        )
    if not items:
        raise InputError(f"{option}: no level given (empty); write e.g. 'L3/4=12,L4/5=18,L5/S1=24'")
    out: Dict[str, float] = {}
    item_of: Dict[str, str] = {}
    for shown, level_text, value in items:
        level = canonical_level(level_text) if isinstance(level_text, str) else None
        if level is None:
            raise InputError(
                f"{option}: item '{shown}': '{level_text}' is not a vertebra or disc level; write levels like "
                "'L4/5', 'L5/S1' or 'L3'"
            )
        number = _number(value)
        if number is None:
            raise InputError(
                f"{option}: item '{shown}': '{value}' is not a finite number; write e.g. 'L4/5=18' "
                "(decimals with '.')"
            )
        if level in out:
            raise InputError(
                f"{option}: level {level} is given twice ('{item_of[level]}' and '{shown}'); give each level once"
            )
        out[level] = number
        item_of[level] = shown
    return dict(sorted(out.items(), key=lambda kv: level_sort_key(kv[0])))


def _check_axis(axis, option: str) -> int:
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)) or not 0 <= int(axis) <= 2:
        raise InputError(f"{option}: the slice axis must be 0, 1 or 2 (ITK i, j, k), got {axis!r}")
    return int(axis)


# =============================================================================
# points
# =============================================================================
def _slice_points(assignments, geometry: Geometry, axis: int, base, option: str) -> _Points:
    values = parse_level_assignments(assignments, option=option)
    axis = _check_axis(axis, option)
    if isinstance(base, (bool, np.bool_)) or base not in (0, 1):
        raise InputError(
            f"{SLICE_BASE_OPTION} must be 0 (first slice is 0: Slicer's Data Probe, ITK) or 1 (first slice is 1: "
            f"ITK-SNAP, many DICOM viewers), got {base!r}"
        )
    base = int(base)
    n = int(geometry.size[axis])
    letter = _AXIS_LETTERS[axis]
    centre = (np.asarray(geometry.size, dtype=float) - 1.0) / 2.0
    points, details, sources = {}, {}, {}
    for level, value in values.items():
        if not float(value).is_integer():
            raise InputError(
                f"{option}: level {level}: slice {value:g} is not a whole number; slices are numbered "
                f"{base}, {base + 1}, {base + 2}... ({SLICE_BASE_OPTION} {base})"
            )
        number = int(value)
        index = number - base
        if not 0 <= index < n:
            message = (
                f"{option}: level {level}: slice {number} is outside the image: axis {letter} has {n} slices, "
                f"numbered {base}..{n - 1 + base} when counting from {base} ({SLICE_BASE_OPTION} {base})."
            )
            other = 1 - base
            if 0 <= number - other < n:
                message += (
                    f" Slice {number} exists when counting from {other} ({_VIEWERS[other]}): if your viewer "
                    f"numbers slices from {other}, give {SLICE_BASE_OPTION} {other}."
                )
            else:
                message += " Check the slice number and that it counts along the slice axis of this image."
            raise InputError(message)
        ijk = centre.copy()
        ijk[axis] = index
        points[level] = geometry.index_to_physical(ijk)
        detail = f"slice {number} ({base}-based) of axis {letter}"
        if base:
            detail += f" (ITK index {index})"
        details[level] = detail + f", at the in-plane centre of the grid; from {option}"
        sources[level] = "level_slices"
    return points, details, sources


def _z_points(assignments, geometry: Geometry, axis: int, option: str) -> _Points:
    values = parse_level_assignments(assignments, option=option)
    axis = _check_axis(axis, option)
    letter = _AXIS_LETTERS[axis]
    normal = geometry.plane_normal(axis)
    if abs(float(normal[2])) < 1e-6:
        raise InputError(
            f"{option}: the slices along axis {letter} of this image are parallel to the z axis (slice normal "
            f"{tuple(round(float(v), 3) for v in normal)} in LPS), so no slice lies at a given z; give the "
            f"levels as slice numbers with {LEVEL_SLICES_OPTION} instead"
        )
    n = int(geometry.size[axis])
    centre_ijk = (np.asarray(geometry.size, dtype=float) - 1.0) / 2.0
    centre = geometry.index_to_physical(centre_ijk)
    step = geometry.slice_thickness_mm(axis)  # between slice planes along the normal (increasing index)

    def z_at(q: float) -> float:  # LPS z of the central line at continuous slice index q
        return float(centre[2] + (q - centre_ijk[axis]) * step * normal[2])

    lo, hi = sorted((z_at(-0.5), z_at(n - 0.5)))
    first, last = sorted((z_at(0.0), z_at(n - 1.0)))
    points, details, sources = {}, {}, {}
    for level, z in values.items():
        if not lo - 1e-6 <= z <= hi + 1e-6:
            raise InputError(
                f"{option}: level {level}: z = {z:g} mm is outside the image: along its central line the image "
                f"covers z = {lo:.2f} to {hi:.2f} mm (slice centres {first:.2f} to {last:.2f} mm; LPS z, the "
                "same number as Slicer's S). Check the value and its sign"
            )
        point = centre + (z - float(centre[2])) / float(normal[2]) * normal
        point[2] = z  # exact
        k, _ = geometry.nearest_slice(point, axis)
        points[level] = point
        details[level] = (
            f"z = {z:g} mm (LPS z = Slicer's S) on the central line of axis {letter} (nearest slice {k}, "
            f"0-based); from {option}"
        )
        sources[level] = "level_z"
    return points, details, sources


def _landmarks(points: Dict[str, np.ndarray], details: Dict[str, str], sources: Dict[str, str],
               what: str) -> Dict[str, LevelLandmark]:
    """Landmarks of typed points, discs between typed adjacent vertebrae, order check."""
    out = {level: LevelLandmark(level, p, sources[level], details[level]) for level, p in points.items()}
    vertebrae = [level for level in points if is_vertebra_level(level)]
    for level in vertebrae:
        lower = next_vertebra(level, vertebrae)
        if lower in points:
            disc = disc_between(level, lower)
            if disc not in out:
                out[disc] = LevelLandmark(
                    disc, (points[level] + points[lower]) / 2.0, sources[level],
                    f"midpoint of the typed {level} ({details[level]}) and {lower} ({details[lower]})",
                )
    out = dict(sorted(out.items(), key=lambda kv: level_sort_key(kv[0])))
    typed = [level for level in out if level in points]
    wrong = [
        f"{a} (z = {points[a][2]:.1f} mm) is not above {b} (z = {points[b][2]:.1f} mm)"
        for a, b in zip(typed, typed[1:])
        if points[a][2] <= points[b][2] + 1e-6
    ]
    if wrong:
        warnings.warn(
            f"{what}: the typed levels are not in cranio-caudal order along LPS z: {'; '.join(wrong)}. Check the "
            "levels and numbers; slice numbers of a viewer that counts from the other end (or an image whose "
            "orientation header is wrong) give this",
            LevelWarning,
            stacklevel=3,
        )
    return out


def landmarks_from_slices(assignments, geometry: Geometry, axis: int, *, base: int = 0,
                          option: str = LEVEL_SLICES_OPTION) -> Dict[str, LevelLandmark]:
    """Level landmarks from typed slice numbers (module notes).

    Parameters
    ----------
    assignments : str, sequence of str or mapping
        ``"L3/4=12,L4/5=18,L5/S1=24"`` or ``{level: slice number}``
        (:func:`parse_level_assignments`).
    geometry : Geometry
        Grid of the image the numbers were read on.
    axis : int
        ITK axis (0 = i, 1 = j, 2 = k) the slices are numbered along (the
        measurement's slice axis).
    base : {0, 1}
        Number of the first slice: 0 (Slicer's Data Probe IJK, ITK) or 1
        (ITK-SNAP, many DICOM viewers' image numbers).
    option : str
        How the option is named in messages.

    Returns
    -------
    dict
        Level -> :class:`LevelLandmark` (source ``"level_slices"``), cranial
        to caudal: the centre of each slice (in-plane centre of the grid at
        that index; detail ``"slice 12 (0-based) of axis k..."``), plus the
        disc between two typed adjacent vertebrae.

    Warns
    -----
    LevelWarning
        The typed levels are not in cranio-caudal order along LPS z.

    Raises
    ------
    InputError
        Bad text (:func:`parse_level_assignments`), a bad axis or base, a
        number that is not whole, or a slice outside the image (the message
        gives the valid range for ``base`` and suggests ``--slice-base`` when
        the number fits the other base).
    """
    points, details, sources = _slice_points(assignments, geometry, axis, base, option)
    return _landmarks(points, details, sources, option)


def landmarks_from_z(assignments, geometry: Geometry, axis: int, *,
                     option: str = LEVEL_Z_OPTION) -> Dict[str, LevelLandmark]:
    """Level landmarks from typed LPS z coordinates (module notes).

    Parameters
    ----------
    assignments : str, sequence of str or mapping
        ``"L4/5=-312.5,L5/S1=-340"`` or ``{level: z}``, z in LPS mm (Slicer's
        S coordinate is the same number).
    geometry : Geometry
        Grid of the image.
    axis : int
        ITK axis (0 = i, 1 = j, 2 = k) of the measurement's slices.
    option : str
        How the option is named in messages.

    Returns
    -------
    dict
        Level -> :class:`LevelLandmark` (source ``"level_z"``), cranial to
        caudal: the point of the central slice-axis line (through the grid
        centre along the slice normal) at that z, plus the disc between two
        typed adjacent vertebrae.

    Warns
    -----
    LevelWarning
        The typed levels are not in cranio-caudal order (z not decreasing
        from cranial to caudal levels).

    Raises
    ------
    InputError
        Bad text (:func:`parse_level_assignments`), a bad axis, slices whose
        normal is perpendicular to z, or a z outside the image along the
        central line (the message gives the range).
    """
    points, details, sources = _z_points(assignments, geometry, axis, option)
    return _landmarks(points, details, sources, option)


def typed_positions(geometry: Geometry, axis: int, *, level_slices=None, level_z=None,
                    slice_base: int = 0) -> Dict[str, LevelLandmark]:
    """All typed positions of a case: slice numbers and z values together.

    Parameters
    ----------
    geometry : Geometry
        Grid of the image.
    axis : int
        ITK axis of the measurement's slices.
    level_slices : str, sequence of str or mapping, optional
        As for :func:`landmarks_from_slices`.
    level_z : str, sequence of str or mapping, optional
        As for :func:`landmarks_from_z`.
    slice_base : {0, 1}
        Base of the slice numbers.

    Returns
    -------
    dict
        Level -> :class:`LevelLandmark`, cranial to caudal (empty when neither
        option is given); a disc between two typed adjacent vertebrae is
        added unless typed, also when one vertebra was typed as a slice and
        the other as z.  Pass it to
        :func:`~ParaspinalFatLib.anatomy.landmarks.find_landmarks` as
        ``positions``.

    Warns
    -----
    LevelWarning
        The typed levels are not in cranio-caudal order along LPS z.

    Raises
    ------
    InputError
        As :func:`landmarks_from_slices` and :func:`landmarks_from_z`, and a
        level given in both options.
    """
    points: Dict[str, np.ndarray] = {}
    details: Dict[str, str] = {}
    sources: Dict[str, str] = {}
    given = []
    if level_slices is not None:
        given.append(_slice_points(level_slices, geometry, axis, slice_base, LEVEL_SLICES_OPTION))
    if level_z is not None:
        given.append(_z_points(level_z, geometry, axis, LEVEL_Z_OPTION))
    for p, d, s in given:
        for level in p:
            if level in points:
                raise InputError(
                    f"level {level} is given both in {LEVEL_SLICES_OPTION} and in {LEVEL_Z_OPTION}; give each "
                    "level once"
                )
            points[level], details[level], sources[level] = p[level], d[level], s[level]
    if not points:
        return {}
    what = " and ".join(o for o, v in ((LEVEL_SLICES_OPTION, level_slices), (LEVEL_Z_OPTION, level_z)) if v is not None)
    return _landmarks(points, details, sources, what)

"""Read labelled control points and lines from 3D Slicer markups files (``.mrk.json``, ``.fcsv``).

Coordinates are converted to LPS millimetres.  What a label means (a disc ``L4/5``, a
vertebra ``L4``) and what a line means (a disc drawn on a sagittal view, or a line along
the spine axis) is decided by :func:`ParaspinalFatLib.anatomy.landmarks.read_markups`.

* :func:`read_control_points`: the placed points of point lists (``"type": "Fiducial"``
  markups of ``.mrk.json``; every row of a legacy ``.fcsv``).
* :func:`read_lines`: the two end points of ``"type": "Line"`` markups of ``.mrk.json``
  (legacy ``.fcsv`` files hold point lists only, so they have no lines).  A line is
  labelled with its markup ``name`` when that name holds a level (``"L4/5"``), else with
  the label of its first control point when that holds one (Slicer names a new line
  ``L`` and its points ``L-1``, ``L-2``, which are not levels); otherwise with its name.

Markups of other types (curves, angles, planes, ROIs) are skipped with a warning by
:func:`read_control_points`; lines are skipped silently there (they are read by
:func:`read_lines`).

Both functions also take an :class:`InMemoryMarkups`: the same point lists and lines held
in memory (e.g. read from a Slicer markups node by the Slicer module), read by the same
rules (labels, line labels, unplaced points, RAS/LPS), so that no file is written.
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple, Union
import numpy as np
from ..anatomy.level_names import canonical_level
from ..errors import InputError, LevelWarning
from ..geometry import ras_to_lps


__all__ = ['Markup', 'InMemoryMarkups', 'read_control_points', 'read_lines']

#: Markup types understood: point lists (read by read_control_points) and lines (read_lines).
_POINT_TYPE = "Fiducial"
_LINE_TYPE = "Line"


@dataclass(frozen=True, eq=False)
class Markup:
    """One point list or line held in memory, as in a ``.mrk.json`` ``markups`` entry.

    Parameters
    ----------
    name : str
        Name of the markup (a line named with its level, ``"L4/5"``, marks that disc).
    kind : str
        ``"Fiducial"`` (a point list) or ``"Line"``, as the ``type`` of a ``.mrk.json`` markup.
    labels : sequence of str
        Label of each control point (``"L4/5"``, ``"L4"``...).
    positions : array_like
        ``(n, 3)`` control-point positions in mm, in ``coordinate_system``.
    coordinate_system : str
        ``"LPS"`` (default) or ``"RAS"`` (Slicer's world coordinates; x and y are
        negated on reading).
    placed : sequence of bool, optional
        Whether each point is placed (Slicer's ``positionStatus`` ``"defined"``);
        default all.  Unplaced points are ignored with a warning, as in a file.

    Raises
    ------
    InputError
        An unknown kind or coordinate system, positions that are not ``(n, 3)``
        finite numbers, or as many labels (or ``placed`` flags) as points.
    """

    name: str
    kind: str
    labels: Tuple[str, ...]
    positions: np.ndarray
    coordinate_system: str = "LPS"
    placed: Optional[Tuple[bool, ...]] = None

    def __post_init__(self) -> None:
        where = f"markup '{self.name}'"
        if self.kind not in (_POINT_TYPE, _LINE_TYPE):
            raise InputError(f"{where}: kind must be '{_POINT_TYPE}' (point list) or '{_LINE_TYPE}', got {self.kind!r}")
        system = str(self.coordinate_system).strip().upper()
        if system not in ("LPS", "RAS"):
            raise InputError(f"{where}: coordinate_system must be 'LPS' or 'RAS', got {self.coordinate_system!r}")
        try:
            xyz = np.array(self.positions, dtype=float).reshape(-1, 3)
        except (TypeError, ValueError):
            raise InputError(f"{where}: positions must be n x 3 numbers (mm), got {self.positions!r}") from None
        if not np.all(np.isfinite(xyz)):
            raise InputError(f"{where}: a control point position is not finite: {xyz.tolist()}")
        labels = tuple(str(v) for v in self.labels)
        placed = tuple(bool(v) for v in self.placed) if self.placed is not None else (True,) * len(xyz)
        if len(labels) != len(xyz) or len(placed) != len(xyz):
            raise InputError(f"{where}: {len(xyz)} control points but {len(labels)} labels and "
                             f"{len(placed)} placed flags")
        xyz.setflags(write=False)
        object.__setattr__(self, "coordinate_system", system)
        object.__setattr__(self, "positions", xyz)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "placed", placed)

    def lps(self) -> np.ndarray:
        """The ``(n, 3)`` positions in LPS mm."""
        return ras_to_lps(self.positions) if self.coordinate_system == "RAS" else self.positions.copy()


@dataclass(frozen=True, eq=False)
class InMemoryMarkups:
    """Markups held in memory, read like a markups file (``markups=`` of :func:`~ParaspinalFatLib.measure`).

    Parameters
    ----------
    markups : sequence of Markup
        The point lists and lines.
    source : str
        What they are, for messages (e.g. ``"markups node 'levels'"``); also the
        ``str()`` of the object.
    """

    markups: Tuple[Markup, ...]
    source: str = "markups in memory"

    def __post_init__(self) -> None:
        items = tuple(self.markups)
        bad = [type(m).__name__ for m in items if not isinstance(m, Markup)]
        if bad:
            raise InputError(f"{self.source}: markups must be Markup objects, got {', '.join(bad)}")
        object.__setattr__(self, "markups", items)

    def __str__(self) -> str:
        return self.source


def _memory_points(marks: InMemoryMarkups) -> List[Tuple[str, np.ndarray, str]]:
    points = []
    for markup in marks.markups:
        if markup.kind != _POINT_TYPE:
            continue
        lps = markup.lps()
        for label, xyz, placed in zip(markup.labels, lps, markup.placed):
            if not placed:
                warnings.warn(f"{marks.source}: control point '{label}' of '{markup.name}' is not placed; it is "
                              "ignored", LevelWarning, stacklevel=3)
                continue
            points.append((label, xyz, f"of '{markup.name}' in {marks.source} ({markup.coordinate_system})"))
    return points


def _memory_lines(marks: InMemoryMarkups) -> List[Tuple[str, np.ndarray, np.ndarray, str]]:
    lines = []
    for markup in marks.markups:
        if markup.kind != _LINE_TYPE:
            continue
        lps = markup.lps()
        placed = [(label, xyz) for label, xyz, ok in zip(markup.labels, lps, markup.placed) if ok]
        if len(placed) != 2:
            warnings.warn(
                f"{marks.source}: line '{markup.name}' has {len(placed)} placed control point(s) (of "
                f"{len(markup.labels)}); a line needs its two end points placed, so it is ignored",
                LevelWarning,
                stacklevel=3,
            )
            continue
        label = _line_label(markup.name, placed[0][0])
        lines.append((label, placed[0][1], placed[1][1],
                      f"line '{markup.name}' in {marks.source} ({markup.coordinate_system})"))
    return lines


def _line_label(name: str, first: str) -> str:
    """A line's level label: its name when that holds a level, else its first point's label when that does."""
    return name if canonical_level(name) is not None or canonical_level(first) is None else first


def _units_scale(units, path: Path, name: str) -> float:
    if units is None:
        return 1.0
    code = units[0] if isinstance(units, (list, tuple)) and units else units
    code = str(code).strip()
    if code == "mm":
        return 1.0
    if code == "um":
        return 1e-3
    raise InputError(f"{path}: markup '{name}' has coordinateUnits {units!r}; only 'mm' and 'um' are understood")


def _load_mrk_json(path: Path) -> list:
    """The ``markups`` list of a ``.mrk.json`` file (only dict entries)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable markups JSON file ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("markups"), list):
        raise InputError(f"{path}: no 'markups' list; is this a Slicer .mrk.json file?")
    return [(i, m) for i, m in enumerate(doc["markups"]) if isinstance(m, dict)]


def _system_and_scale(markup: dict, path: Path, name: str) -> Tuple[str, float]:
    system = str(markup.get("coordinateSystem", "LPS")).strip().upper()  # schema default: LPS
    if system not in ("LPS", "RAS"):
        raise InputError(f"{path}: markup '{name}' has coordinateSystem '{system}'; expected LPS or RAS")
    return system, _units_scale(markup.get("coordinateUnits"), path, name)


def _position(cp: dict, label: str, name: str, path: Path, system: str, scale: float) -> np.ndarray:
    pos = cp.get("position")
    try:
        xyz = np.asarray(pos, dtype=float).reshape(3) * scale
    except (TypeError, ValueError):
        raise InputError(f"{path}: control point '{label}' of '{name}' has no valid position {pos!r}") from None
    if not np.all(np.isfinite(xyz)):
        raise InputError(f"{path}: control point '{label}' of '{name}' has a non-finite position {pos!r}")
    return ras_to_lps(xyz) if system == "RAS" else xyz


def _read_mrk_json(path: Path) -> List[Tuple[str, np.ndarray, str]]:
    points = []
    for m_index, markup in _load_mrk_json(path):
        name = str(markup.get("name") or f"markup {m_index}")
        mtype = markup.get("type", _POINT_TYPE)
        if mtype == _LINE_TYPE:
            continue  # read by read_lines
        if mtype != _POINT_TYPE:
            warnings.warn(
                f"{path}: markup '{name}' is of type '{mtype}', not a point list or a line; its points are "
                "not used as levels",
                LevelWarning,
                stacklevel=3,
            )
            continue
        system, scale = _system_and_scale(markup, path, name)
        for cp in markup.get("controlPoints") or []:
            if not isinstance(cp, dict):
                continue
            label = str(cp.get("label", "") or "")
            status = cp.get("positionStatus", "defined")
            if status != "defined":
                warnings.warn(
                    f"{path}: control point '{label}' of '{name}' is not placed (positionStatus "
                    f"'{status}'); it is ignored",
                    LevelWarning,
                    stacklevel=3,
                )
                continue
            lps = _position(cp, label, name, path, system, scale)
            points.append((label, lps, f"of '{name}' in {path} ({system})"))
    return points


def _read_mrk_json_lines(path: Path) -> List[Tuple[str, np.ndarray, np.ndarray, str]]:
    lines = []
    for m_index, markup in _load_mrk_json(path):
        if markup.get("type", _POINT_TYPE) != _LINE_TYPE:
            continue
        name = str(markup.get("name") or f"markup {m_index}")
        system, scale = _system_and_scale(markup, path, name)
        cps = [cp for cp in (markup.get("controlPoints") or []) if isinstance(cp, dict)]
        placed = [cp for cp in cps if cp.get("positionStatus", "defined") == "defined"]
        if len(placed) != 2:
            warnings.warn(
                f"{path}: line '{name}' has {len(placed)} placed control point(s) (of {len(cps)}); a line "
                "needs its two end points placed, so it is ignored",
                LevelWarning,
                stacklevel=3,
            )
            continue
        label = _line_label(name, str(placed[0].get("label", "") or ""))
        p0, p1 = (_position(cp, str(cp.get("label", "") or ""), name, path, system, scale) for cp in placed)
        lines.append((label, p0, p1, f"line '{name}' in {path} ({system})"))
    return lines


_FCSV_DEFAULT_COLUMNS = "id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID"
def _read_fcsv(path: Path) -> List[Tuple[str, np.ndarray, str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a readable .fcsv text file ({exc})") from None
    system = None
    columns = None
    data_lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            body = stripped.lstrip("#").strip()
            key, _, value = body.partition("=")
            key = key.strip().lower()
            if key == "coordinatesystem":
                system = value.strip().upper()
            elif key == "columns":
                columns = [c.strip().lower() for c in value.split(",")]
        elif stripped:
            data_lines.append(line)
    if system is None:
        warnings.warn(
            f"{path}: no '# CoordinateSystem' header line; assuming RAS as in Slicer fcsv files "
            "before version 4.11",
            LevelWarning,
            stacklevel=3,
        )
        system = "RAS"
    system = {"0": "RAS", "1": "LPS"}.get(system, system)
    if system not in ("RAS", "LPS"):
        raise InputError(
            f"{path}: '# CoordinateSystem = {system}' is not supported; save the points in RAS or LPS"
        )
    if columns is None:
        warnings.warn(
            f"{path}: no '# columns = ...' header line; assuming Slicer's {_FCSV_DEFAULT_COLUMNS}",
            LevelWarning,
            stacklevel=3,
        )
        columns = [c.lower() for c in _FCSV_DEFAULT_COLUMNS.split(",")]
    missing = [c for c in ("x", "y", "z", "label") if c not in columns]
    if missing:
        raise InputError(f"{path}: the '# columns' header lacks {missing}; it is {columns}")
    ix, iy, iz, il = (columns.index(c) for c in ("x", "y", "z", "label"))
    points = []
    for row in csv.reader(io.StringIO("\n".join(data_lines))):
        if not row:
            continue
        label = row[il] if il < len(row) else ""
        try:
            xyz = np.array([float(row[ix]), float(row[iy]), float(row[iz])])
        except (IndexError, ValueError):
            raise InputError(f"{path}: point row {row} has no valid x, y, z") from None
        lps = ras_to_lps(xyz) if system == "RAS" else xyz
        points.append((label, lps, f"in {path} ({system})"))
    return points


def _format(p: Path) -> str:
    """``"json"`` or ``"fcsv"`` from the file name, else from the first character."""
    if not p.is_file():
        raise InputError(f"markups file '{p}' does not exist")
    name = p.name.lower()
    if name.endswith(".json"):
        return "json"
    if name.endswith(".fcsv"):
        return "fcsv"
    head = p.read_text(encoding="utf-8-sig", errors="replace").lstrip()[:1]
    if head == "{":
        return "json"
    if head == "#":
        return "fcsv"
    raise InputError(f"{p}: unknown markups format; save the points from Slicer as .mrk.json or .fcsv")


def read_control_points(path: Union[str, Path, InMemoryMarkups]) -> List[Tuple[str, np.ndarray, str]]:
    """Labelled control points of a Slicer markups file, in LPS millimetres.

    Parameters
    ----------
    path : str, Path or InMemoryMarkups
        ``.mrk.json`` (markups schema: ``markups[].controlPoints[].label`` /
        ``position``, per-markup ``coordinateSystem`` ``"LPS"`` (default) or
        ``"RAS"``) or legacy ``.fcsv`` (``# CoordinateSystem = RAS|LPS|0|1``
        and ``# columns = id,x,y,z,...,label,...`` header lines; columns are
        read by name); or markups held in memory (their ``"Fiducial"`` point
        lists).

    Returns
    -------
    list of (str, numpy.ndarray, str)
        ``(label, LPS point, where)`` per placed control point of the point
        lists (``"Fiducial"`` markups); ``where`` says which file (and
        coordinate system) the point came from, for messages.  Line markups
        are left to :func:`read_lines`.

    Warns
    -----
    LevelWarning
        Unplaced points, markups that are neither point lists nor lines.

    Raises
    ------
    InputError
        Missing or unreadable file, unknown coordinate system or units.
    """
    if isinstance(path, InMemoryMarkups):
        return _memory_points(path)
    p = Path(path)
    return _read_mrk_json(p) if _format(p) == "json" else _read_fcsv(p)


def read_lines(path: Union[str, Path, InMemoryMarkups]) -> List[Tuple[str, np.ndarray, np.ndarray, str]]:
    """Labelled line markups of a Slicer markups file, end points in LPS millimetres.

    Parameters
    ----------
    path : str, Path or InMemoryMarkups
        ``.mrk.json`` file (``"type": "Line"`` markups; coordinate systems and
        units as in :func:`read_control_points`), or markups held in memory
        (their ``"Line"`` markups).  A legacy ``.fcsv`` holds no lines and
        gives an empty list.

    Returns
    -------
    list of (str, numpy.ndarray, numpy.ndarray, str)
        ``(label, first point, second point, where)`` per line with both end
        points placed.  ``label`` is the markup name when it holds a level,
        else the first control point's label when that holds one, else the
        markup name; ``where`` names the line, the file and its coordinate
        system, for messages.

    Warns
    -----
    LevelWarning
        A line without exactly two placed control points (it is ignored).

    Raises
    ------
    InputError
        Missing or unreadable file, unknown coordinate system or units, a
        position that is not three finite numbers.
    """
    if isinstance(path, InMemoryMarkups):
        return _memory_lines(path)
    p = Path(path)
    return _read_mrk_json_lines(p) if _format(p) == "json" else []

"""Read labelled control points from 3D Slicer markups files (``.mrk.json``, ``.fcsv``).

Coordinates are converted to LPS millimetres.  What a label means (a disc ``L4/5``, a
vertebra ``L4``) is decided by :func:`ParaspinalFatLib.anatomy.landmarks.read_markups`.
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path
from typing import List, Tuple, Union
import numpy as np
from ..errors import InputError, LevelWarning
from ..geometry import ras_to_lps


__all__ = ['read_control_points']

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


def _read_mrk_json(path: Path) -> List[Tuple[str, np.ndarray, str]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable markups JSON file ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("markups"), list):
        raise InputError(f"{path}: no 'markups' list; is this a Slicer .mrk.json file?")
    points = []
    for m_index, markup in enumerate(doc["markups"]):
        if not isinstance(markup, dict):
            continue
        name = str(markup.get("name") or f"markup {m_index}")
        mtype = markup.get("type", "Fiducial")
        if mtype != "Fiducial":
            warnings.warn(
                f"{path}: markup '{name}' is a {mtype}, not a point list; its points are not used as levels",
                LevelWarning,
                stacklevel=3,
            )
            continue
        system = str(markup.get("coordinateSystem", "LPS")).strip().upper()  # schema default: LPS
        if system not in ("LPS", "RAS"):
            raise InputError(f"{path}: markup '{name}' has coordinateSystem '{system}'; expected LPS or RAS")
        scale = _units_scale(markup.get("coordinateUnits"), path, name)
        for p_index, cp in enumerate(markup.get("controlPoints") or []):
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
            pos = cp.get("position")
            try:
                xyz = np.asarray(pos, dtype=float).reshape(3) * scale
            except (TypeError, ValueError):
                raise InputError(f"{path}: control point '{label}' of '{name}' has no valid position {pos!r}") from None
            lps = ras_to_lps(xyz) if system == "RAS" else xyz
            points.append((label, lps, f"of '{name}' in {path} ({system})"))
    return points


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


def read_control_points(path: Union[str, Path]) -> List[Tuple[str, np.ndarray, str]]:
    """Labelled control points of a Slicer markups file, in LPS millimetres.

    Parameters
    ----------
    path : str or Path
        ``.mrk.json`` (markups schema: ``markups[].controlPoints[].label`` /
        ``position``, per-markup ``coordinateSystem`` ``"LPS"`` (default) or
        ``"RAS"``) or legacy ``.fcsv`` (``# CoordinateSystem = RAS|LPS|0|1``
        and ``# columns = id,x,y,z,...,label,...`` header lines; columns are
        read by name).

    Returns
    -------
    list of (str, numpy.ndarray, str)
        ``(label, LPS point, where)`` per placed control point; ``where`` says
        which file (and coordinate system) the point came from, for messages.

    Warns
    -----
    LevelWarning
        Unplaced points, non point-list markups.

    Raises
    ------
    InputError
        Missing or unreadable file, unknown coordinate system or units.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"markups file '{p}' does not exist")
    name = p.name.lower()
    if name.endswith(".json"):
        points = _read_mrk_json(p)
    elif name.endswith(".fcsv"):
        points = _read_fcsv(p)
    else:
        head = p.read_text(encoding="utf-8-sig", errors="replace").lstrip()[:1]
        if head == "{":
            points = _read_mrk_json(p)
        elif head == "#":
            points = _read_fcsv(p)
        else:
            raise InputError(f"{p}: unknown markups format; save the points from Slicer as .mrk.json or .fcsv")
    return points

"""Skeletal muscle index (SMI): muscle area at one level divided by height squared.

Body-composition research measures the skeletal muscle area at L3 (cm^2)
and divides it by the height squared (SMI, cm^2/m^2), the standard CT
sarcopenia measure.  :func:`muscle_index` computes it from the per-level
table (:data:`~ParaspinalFatLib.schemas.LEVEL_COLUMNS`) for every muscle
measured at that level and for all of them together.

Conventions
-----------
* ``csa_cm2`` is the total area of a muscle at the level: left + right +
  unsided segments, in cm^2 (mm^2 / 100).  Several segments of one muscle
  and side are added (and the row says so: they must not overlap).
* A muscle is *paired* when any of its rows at that level has a side; a
  paired muscle without one of its sides, or any contributing area that is
  NaN, gives a NaN total with a warning naming the muscle: the total never
  silently drops a side.  The ``"all muscles"`` row is NaN as soon as one
  muscle's total is NaN.
* Which muscles make up the "all muscles" area is whatever was measured at
  that level (the published L3 skeletal muscle area includes psoas,
  paraspinal and abdominal wall muscles; a table of paraspinal muscles only
  gives a smaller area that is not comparable with sarcopenia cut-offs).
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Dict, List, Mapping, Union

import numpy as np
import pandas as pd

from ..anatomy.level_names import canonical_level
from ..errors import InputError, ParaspinalFatWarning
from ..validation import is_missing
from .summary import join_warnings, labelled_row_warnings

__all__ = ["SMI_COLUMNS", "ALL_MUSCLES", "muscle_index"]

SMI_COLUMNS: List[str] = [
    "subject", "level", "muscle", "left_csa_cm2", "right_csa_cm2", "csa_cm2", "height_m", "smi_cm2_m2",
    "n_segments", "warnings",
]
#: ``muscle`` of the row that adds up every muscle measured at the level
ALL_MUSCLES = "all muscles"

_HEIGHT_OPT = "height_m (--height-m)"
_REQUIRED = ("subject", "muscle", "side", "level", "csa_mm2")


def _height(value, subject: str = "") -> float:
    who = f" for subject '{subject}'" if subject else ""
    h = float("nan")
    if isinstance(value, str):
        try:
            h = float(value.strip())
        except ValueError:
            pass
    elif isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        h = float(value)
    if not math.isfinite(h):
        raise InputError(f"{_HEIGHT_OPT}{who} must be the body height in metres (e.g. 1.75), got {value!r}")
    if 100.0 <= h <= 250.0:
        raise InputError(
            f"{_HEIGHT_OPT}{who} is {h:g}: that looks like centimetres; give the height in metres "
            f"(e.g. {h / 100:g})"
        )
    if not 1.0 <= h <= 2.5:
        raise InputError(
            f"{_HEIGHT_OPT}{who} must be an adult body height in metres between 1.0 and 2.5 "
            f"(e.g. 1.75), got {h:g}"
        )
    return h


def _text(v) -> str:
    """Cell as stripped text; missing (None, NaN, pd.NA, as after a CSV round trip) is ``""``."""
    return "" if is_missing(v) else str(v).strip()


def _sum(values: List[float]) -> float:
    """Sum that is NaN when any term is NaN (or there is none)."""
    if not values or any(not math.isfinite(v) for v in values):
        return float("nan")
    return float(sum(values))


def muscle_index(levels, height_m: Union[float, Mapping[str, float]], *, level: str = "L3"):
    """Skeletal muscle area and index (SMI) at one level, per subject and muscle.

    Parameters
    ----------
    levels : pandas.DataFrame
        Per-level table (:data:`~ParaspinalFatLib.schemas.LEVEL_COLUMNS`);
        uses ``subject``, ``muscle``, ``side`` (``"left"``, ``"right"`` or
        ``""``), ``level``, ``csa_mm2`` and, when present, ``segment`` and
        ``warnings``.
    height_m : float or mapping of str to float
        Body height in metres (1.0-2.5).  A mapping gives one height per
        subject (needed when the table holds several subjects).
    level : str
        Level in any spelling (``"L3"``, ``"vertebrae_L3"``, ``"L3-L4"``);
        default L3.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SMI_COLUMNS`: per subject, one row per muscle measured
        at ``level`` (sorted by name) then one row ``muscle="all muscles"``.
        ``left_csa_cm2``/``right_csa_cm2`` are per side (NaN when the side is
        absent), ``csa_cm2`` the total of the muscle (left + right + unsided
        segments; NaN, with a warning, when a paired muscle lacks a side or an
        area is NaN), ``smi_cm2_m2 = csa_cm2 / height_m**2``, ``n_segments``
        the number of per-level rows added, ``warnings`` this row's warnings
        followed by those of the per-level rows it is made of.  Empty (with
        these columns) when no row is at ``level``.

    Raises
    ------
    InputError
        A height that is not a number of metres in 1.0-2.5 (a height in cm
        is refused with a message saying to give metres), one height for a
        table of several subjects, a subject without a height, a ``level``
        that is not a level, missing columns.

    Warns
    -----
    ParaspinalFatWarning
        No row of the table (or of some subjects) is at ``level``.
    """
    missing = [c for c in _REQUIRED if c not in levels.columns]
    if missing:
        raise InputError(f"muscle index: the per-level table lacks the column(s) {missing}")
    wanted = canonical_level(level) if isinstance(level, str) else None
    if wanted is None:
        raise InputError(f"muscle index: '{level}' is not a vertebra or disc level; give one such as 'L3'")
    subjects_all = [_text(s) for s in levels["subject"]]
    if isinstance(height_m, Mapping):
        heights = {str(k): _height(v, str(k)) for k, v in height_m.items()}
    else:
        h = _height(height_m)
        distinct = sorted(set(subjects_all))
        if len(distinct) > 1:
            raise InputError(
                f"{_HEIGHT_OPT}: one height was given but the table holds {len(distinct)} subjects "
                f"({', '.join(distinct[:5])}{'...' if len(distinct) > 5 else ''}); give one height per subject "
                "(a mapping subject -> metres)"
            )
        heights = {s: h for s in distinct}

    at_level = np.array([canonical_level(_text(v)) == wanted for v in levels["level"]], dtype=bool)
    if not at_level.any():
        warnings.warn(
            f"muscle index: the table has no row at {wanted}; SMI needs the muscle areas at that level: ask for it "
            f"(--levels {wanted}) or include it in the measured levels",
            ParaspinalFatWarning, stacklevel=2,
        )
        return pd.DataFrame(columns=SMI_COLUMNS)
    measured = {s for s, hit in zip(subjects_all, at_level) if hit}
    without = sorted(set(subjects_all) - measured)
    if without:
        warnings.warn(
            f"muscle index: subject(s) {', '.join(without)} have no row at {wanted} and get no SMI; measure that "
            f"level (--levels {wanted})", ParaspinalFatWarning, stacklevel=2,
        )
    sub = levels.loc[at_level]
    labelled = labelled_row_warnings(sub)
    segment = [_text(v) for v in sub["segment"]] if "segment" in sub.columns else [""] * len(sub)
    # subject -> muscle -> side -> list of (segment, csa_mm2, labelled warning)
    cells: Dict[str, Dict[str, Dict[str, list]]] = {}
    for subj, mus, side, csa, seg, warn in zip(
            (_text(v) for v in sub["subject"]), (_text(v) for v in sub["muscle"]),
            (_text(v).lower() for v in sub["side"]), sub["csa_mm2"], segment, labelled):
        value = float(csa) if isinstance(csa, numbers.Real) and not isinstance(csa, bool) else float("nan")
        side = side if side in ("left", "right") else ""
        cells.setdefault(subj, {}).setdefault(mus, {}).setdefault(side, []).append((seg, value, warn))

    rows = []
    for subj in sorted(cells):
        if subj not in heights:
            raise InputError(f"{_HEIGHT_OPT}: no height given for subject '{subj}'")
        h = heights[subj]
        muscle_rows = []
        for mus in sorted(cells[subj]):
            by_side = cells[subj][mus]
            notes: List[str] = []
            carried: List[str] = []
            name = mus or "(unnamed muscle)"
            side_cm2: Dict[str, float] = {}
            for side, entries in by_side.items():
                vals = [v / 100.0 for _, v, _ in entries]
                side_cm2[side] = _sum(vals)
                carried += [w for _, _, w in entries]
                nan_segs = [s or name for s, v, _ in entries if not math.isfinite(v)]
                if nan_segs:
                    notes.append(f"{name}{' ' + side if side else ''} at {wanted}: area of {', '.join(nan_segs)} "
                                 "is NaN, so the total and SMI are NaN")
                if len(entries) > 1:
                    notes.append(f"{len(entries)} segments of {name}{' ' + side if side else ''} at {wanted} "
                                 f"({', '.join(s or '?' for s, _, _ in entries)}) are added together; check that "
                                 "they do not overlap")
            paired = "left" in by_side or "right" in by_side
            total_terms = list(side_cm2.values())
            if paired:
                for side in ("left", "right"):
                    if side not in by_side:
                        other = "right" if side == "left" else "left"
                        notes.append(f"{name} at {wanted} has no {side} side (only {other}): total area and SMI "
                                     f"are NaN; segment the {side} {name} or read the per-side columns")
                        total_terms.append(float("nan"))
            total = _sum(total_terms)
            muscle_rows.append({
                "subject": subj, "level": wanted, "muscle": mus,
                "left_csa_cm2": side_cm2.get("left", float("nan")),
                "right_csa_cm2": side_cm2.get("right", float("nan")),
                "csa_cm2": total, "height_m": h, "smi_cm2_m2": total / (h * h),
                "n_segments": sum(len(e) for e in by_side.values()),
                "warnings": join_warnings(notes + carried), "_paired": paired, "_carried": carried,
            })
        totals = [r["csa_cm2"] for r in muscle_rows]
        incomplete = [r["muscle"] or "(unnamed muscle)" for r in muscle_rows if not math.isfinite(r["csa_cm2"])]
        notes = []
        if incomplete:
            notes.append(f"all muscles at {wanted}: the total of {', '.join(incomplete)} is NaN, so the sum and "
                         "SMI are NaN")
        paired_rows = [r for r in muscle_rows if r["_paired"]]
        total = _sum(totals)
        all_row = {
            "subject": subj, "level": wanted, "muscle": ALL_MUSCLES,
            "left_csa_cm2": _sum([r["left_csa_cm2"] for r in paired_rows]),
            "right_csa_cm2": _sum([r["right_csa_cm2"] for r in paired_rows]),
            "csa_cm2": total, "height_m": h, "smi_cm2_m2": total / (h * h),
            "n_segments": sum(r["n_segments"] for r in muscle_rows),
            "warnings": join_warnings(notes + [w for r in muscle_rows for w in r["_carried"]]),
        }
        rows += muscle_rows + [all_row]
    table = pd.DataFrame(rows, columns=SMI_COLUMNS)
    return table.astype({"n_segments": np.int64})

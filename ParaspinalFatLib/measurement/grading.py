"""Semi-quantitative grades of paraspinal muscle fat infiltration (Goutallier, Kjaer).

Both scales were defined for visual reading.  This module turns a measured fat
percentage into a grade with explicit, configurable cut-offs:

* :func:`goutallier_grade` -- Goutallier 0-4 (0 normal muscle; 1 some fatty
  streaks; 2 fat present but less than muscle; 3 fat equal to muscle; 4 fat
  more than muscle).  Goutallier et al. 1994 [1]_; adapted to MRI by Fuchs et
  al. 1999 [2]_.
* :func:`kjaer_grade` -- the modified 3-grade lumbar scale of Kjaer et al. 2007
  [3]_: 0 normal (< 10 % fat), 1 slight (10-50 %), 2 severe (> 50 %).
* :func:`add_grades` -- add ``grade_fat_pct``, ``grade_source``, ``goutallier``
  and ``kjaer`` to a per-level table (:data:`ParaspinalFatLib.schemas.LEVEL_COLUMNS`).
* :func:`grade_summary` -- per subject x muscle x level: the grade of each side
  and of left + right together, and per side the mean grade over the levels
  and over L3/4-L5/S1.

Missing values
--------------
The grade functions return **float64 arrays** holding the integer grades
0.0, 1.0, ... and ``NaN`` where the fat percentage is missing (NaN, +-inf or
pandas NA).  In tables, :func:`add_grades` stores grades as the pandas
nullable integer dtype ``"Int64"`` (missing = ``<NA>``, written as an empty
CSV field); :func:`grade_summary` uses float64 because its mean rows hold
non-integer means.

Which fat percentage is graded
------------------------------
For PDFF / Dixon maps the mean fat fraction inside the ROI
(``fat_fraction_pct``); for CT, T1- or T2-weighted images, which have no
quantitative fat fraction, the fat area percentage ``100 * fat_area_ratio``
(voxels classified as fat / finite ROI voxels).  The two are **not**
interchangeable: a visually normal muscle has a PDFF of some 5-15 % from
intramyocellular lipid and partial volume, while its thresholded fat area can
be close to 0 %.  Cut-offs calibrated on one should not be used on the other
without checking; both are parameters.

References
----------
.. [1] Goutallier D, Postel JM, Bernageau J, Lavau L, Voisin MC. Fatty muscle
   degeneration in cuff ruptures. Pre- and postoperative evaluation by CT scan.
   Clin Orthop Relat Res. 1994;(304):78-83.  (Grades first proposed in 1989.)
.. [2] Fuchs B, Weishaupt D, Zanetti M, Hodler J, Gerber C. Fatty degeneration
   of the muscles of the rotator cuff: assessment by computed tomography versus
   magnetic resonance imaging. J Shoulder Elbow Surg. 1999;8(6):599-605.
.. [3] Kjaer P, Bendix T, Sorensen JS, Korsholm L, Leboeuf-Yde C. Are
   MRI-defined fat infiltrations in the multifidus muscles associated with low
   back pain? BMC Med. 2007;5:2.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple
import numpy as np
import pandas as pd
from ..errors import InputError
from ..anatomy.level_names import level_sort_key
from ..schemas import LOWER_LUMBAR_LABEL, LOWER_LUMBAR_LEVELS
from ..validation import as_float_array, factorize, is_missing, require_columns, texts_or_empty
from .summary import labelled_row_warnings


__all__ = ['GOUTALLIER_CUTOFFS', 'KJAER_CUTOFFS', 'GRADE_SOURCES', 'ALL_LEVELS_LABEL', 'GRADE_SUMMARY_COLUMNS', 'check_cutoffs', 'goutallier_grade', 'kjaer_grade', 'add_grades', 'grade_columns', 'grade_summary']

# -----------------------------------------------------------------------------
# THIS PROJECT'S CONVENTION for quantitative Goutallier grading.
#
# There are no consensus quantitative cut-offs for the Goutallier grades: the
# scale is visual [1, 2].  The default below is this project's own translation
# of the verbal definitions into fat % (of ROI area, or mean PDFF), built from:
#   * 10 %  grade 0 | 1  -- the upper limit of "normal" muscle in the lumbar
#                           3-grade scale of Kjaer et al. 2007 [3], so that
#                           Goutallier 0 and Kjaer 0 coincide;
#   * 40 %  grade 2 | 3  -- "fat = muscle" read as neither tissue exceeding the
#   * 60 %  grade 3 | 4     other by more than half (fat:muscle between 2:3 and
#                           3:2, i.e. 40-60 % fat, symmetric about 50 %);
#   * 25 %  grade 1 | 2  -- the midpoint of 10 % and 40 %, splitting "some fatty
#                           streaks" and "fat < muscle" into equal widths
#                           (fat:muscle 1:3).
# It is not taken from a published cut-off table.  To reproduce a paper, pass
# that paper's cut-offs.  Grade g is assigned when
#     cutoffs[g-1] <= x < cutoffs[g]      (cutoffs[-1] = -inf, cutoffs[4] = +inf)
# i.e. grade 0: x < 10; 1: 10 <= x < 25; 2: 25 <= x < 40; 3: 40 <= x < 60;
# 4: x >= 60.
# -----------------------------------------------------------------------------
#: lower bounds (fat %) of Goutallier grades 1, 2, 3, 4 -- this project's convention
GOUTALLIER_CUTOFFS: Tuple[float, float, float, float] = (10.0, 25.0, 40.0, 60.0)
#: Kjaer et al. 2007: grade 0 < 10 %, grade 1 10-50 % (both ends included), grade 2 > 50 %
KJAER_CUTOFFS: Tuple[float, float] = (10.0, 50.0)
#: values of ``source`` accepted by :func:`add_grades` / :func:`grade_summary`
GRADE_SOURCES: Tuple[str, ...] = ("auto", "fat_fraction_pct", "fat_area_pct")
#: level label of the mean over all graded levels in :func:`grade_summary`
ALL_LEVELS_LABEL = "mean all levels"
#: columns of :func:`grade_summary`
GRADE_SUMMARY_COLUMNS: List[str] = [
    "subject", "muscle", "level", "side", "grade_fat_pct", "grade_source",
    "goutallier", "kjaer", "n_levels", "warnings",
]
_SIDE_ORDER = {"left": 0, "right": 1, "combined": 2, "": 3}
_RATIO_TOL = 1e-9
_LEVEL_COLUMNS_HINT = "per-level table columns: ParaspinalFatLib.schemas.LEVEL_COLUMNS"


class _Scale(NamedTuple):
    """A grading scale: the grade of x is the number of its cut-offs that x reaches."""

    column: str        # table column of the grade
    name: str          # for messages
    n_cutoffs: int     # number of cut-offs = highest grade
    top_closed: bool   # x reaches the last cut-off c only when x > c (else x >= c)


_GOUTALLIER = _Scale("goutallier", "Goutallier", 4, top_closed=False)
_KJAER = _Scale("kjaer", "Kjaer", 2, top_closed=True)  # "10-50 %" includes 50
_GRADE_COLUMNS = [_GOUTALLIER.column, _KJAER.column]
# =============================================================================
# grades of numbers
# =============================================================================
def goutallier_grade(fat_pct: Any, cutoffs: Sequence[float] = GOUTALLIER_CUTOFFS) -> np.ndarray:
    """Goutallier grade 0-4 of fat percentages.

    Grade ``g`` is given when ``cutoffs[g-1] <= x < cutoffs[g]`` (half-open
    intervals, closed below), with ``cutoffs[-1] = -inf`` and
    ``cutoffs[4] = +inf``.  With the default cut-offs (this project's
    convention, see the module comment; not a published standard):

    ====== ================================ ======================
    grade  Goutallier 1994                  fat %
    ====== ================================ ======================
    0      normal muscle                    x < 10
    1      some fatty streaks               10 <= x < 25
    2      fat present, less than muscle    25 <= x < 40
    3      fat equal to muscle              40 <= x < 60
    4      fat more than muscle             x >= 60
    ====== ================================ ======================

    Parameters
    ----------
    fat_pct : float or array_like
        Fat percentage(s), 0-100 (mean PDFF % or fat area %).  NaN, +-inf and
        pandas NA mean "not measured".  Values outside 0-100 (noise in PDFF
        maps) are graded like any other number.
    cutoffs : sequence of 4 float
        Strictly increasing, finite lower bounds of grades 1, 2, 3 and 4, in %.

    Returns
    -------
    numpy.ndarray
        float64 array of the shape of ``fat_pct`` (0-d for a scalar) holding
        0.0-4.0, NaN where the input is missing.

    Raises
    ------
    InputError
        If ``cutoffs`` does not hold 4 finite, strictly increasing numbers, or
        ``fat_pct`` is not numeric.

    Examples
    --------
    >>> goutallier_grade([5.0, 10.0, 39.9, 60.0, float("nan")]).tolist()
    [0.0, 1.0, 2.0, 4.0, nan]
    """
    return _grade(_GOUTALLIER, fat_pct, _check_cutoffs(cutoffs, _GOUTALLIER))


def kjaer_grade(fat_pct: Any, cutoffs: Sequence[float] = KJAER_CUTOFFS) -> np.ndarray:
    """Kjaer 3-grade lumbar scale (Kjaer et al. 2007) of fat percentages.

    The published text is followed literally: grade 0 "< 10 %", grade 1
    "10-50 %" (both ends included), grade 2 "> 50 %".  With
    ``cutoffs = (c0, c1)``::

        grade 0:  x <  c0
        grade 1:  c0 <= x <= c1
        grade 2:  x >  c1

    So exactly 10 % is grade 1 and exactly 50 % is grade 1; the next float
    above 50 is grade 2.  Note that the upper interval is closed at ``c1``,
    unlike the half-open convention of :func:`goutallier_grade`.

    Parameters
    ----------
    fat_pct : float or array_like
        Fat percentage(s), 0-100.  NaN, +-inf and pandas NA mean missing.
    cutoffs : sequence of 2 float
        Strictly increasing, finite (c0, c1) in %; default (10, 50).

    Returns
    -------
    numpy.ndarray
        float64 array of the shape of ``fat_pct`` holding 0.0, 1.0 or 2.0,
        NaN where the input is missing.

    Raises
    ------
    InputError
        If ``cutoffs`` does not hold 2 finite, strictly increasing numbers, or
        ``fat_pct`` is not numeric.

    Examples
    --------
    >>> kjaer_grade([9.99, 10.0, 50.0, 50.01]).tolist()
    [0.0, 1.0, 1.0, 2.0]
    """
    return _grade(_KJAER, fat_pct, _check_cutoffs(cutoffs, _KJAER))


# =============================================================================
# tables
# =============================================================================
def add_grades(
    levels: pd.DataFrame,
    source: str = "auto",
    goutallier_cutoffs: Sequence[float] = GOUTALLIER_CUTOFFS,
    kjaer_cutoffs: Sequence[float] = KJAER_CUTOFFS,
) -> pd.DataFrame:
    """Add Goutallier and Kjaer grades to a per-level table.

    Parameters
    ----------
    levels : pandas.DataFrame
        Per-level (or per-slice) table with ``fat_fraction_pct`` and/or
        ``fat_area_ratio`` (:data:`ParaspinalFatLib.schemas.LEVEL_COLUMNS`).
    source : {"auto", "fat_fraction_pct", "fat_area_pct"}
        Which fat percentage is graded, per row:

        * ``"fat_fraction_pct"`` -- the mean fat fraction (PDFF / Dixon maps);
        * ``"fat_area_pct"`` -- ``100 * fat_area_ratio`` (CT, T1/T2 or a
          thresholded PDFF map);
        * ``"auto"`` -- ``fat_fraction_pct`` where it is not NaN, else
          ``100 * fat_area_ratio``.  A table lacking one of the two columns is
          treated as if that column were all NaN.
    goutallier_cutoffs : sequence of 4 float
        See :func:`goutallier_grade`.
    kjaer_cutoffs : sequence of 2 float
        See :func:`kjaer_grade`.

    Returns
    -------
    pandas.DataFrame
        A copy of ``levels`` (same index) with these columns added or replaced:

        ``grade_fat_pct`` (float64)
            The fat % that was graded (NaN when none was available).
        ``grade_source`` (str)
            ``"fat_fraction_pct"``, ``"fat_area_pct"`` or ``""`` (nothing to grade).
        ``goutallier``, ``kjaer`` (Int64)
            The grades; ``<NA>`` where ``grade_fat_pct`` is NaN.

    Raises
    ------
    InputError
        Unknown ``source``; the column(s) the source needs are missing;
        a ``fat_area_ratio`` outside 0..1 (a percentage stored as a ratio?);
        bad cut-offs.
    """
    scales = _scales(goutallier_cutoffs, kjaer_cutoffs)
    pct, src = _grade_input(levels, source)
    out = levels.copy()
    for column, values in _grade_columns(scales, pct, src).items():
        out[column] = values
    return out


def grade_columns(fat_fraction_pct: np.ndarray, fat_area_ratio: np.ndarray, source: str = "auto",
                  goutallier_cutoffs: Sequence[float] = GOUTALLIER_CUTOFFS,
                  kjaer_cutoffs: Sequence[float] = KJAER_CUTOFFS) -> Dict[str, Any]:
    """The grade columns of :func:`add_grades`, from the two fat columns as arrays.

    For a table being built (the per-level table): the same values, types and
    refusals as :func:`add_grades` on a table holding these two columns (rows
    named by their position).

    Parameters
    ----------
    fat_fraction_pct, fat_area_ratio : numpy.ndarray of float
        The ``fat_fraction_pct`` and ``fat_area_ratio`` of every row.
    source, goutallier_cutoffs, kjaer_cutoffs
        As in :func:`add_grades`.

    Returns
    -------
    dict
        ``grade_fat_pct`` (float64 array), ``grade_source`` (object array),
        ``goutallier`` and ``kjaer`` (pandas ``Int64`` arrays).
    """
    scales = _scales(goutallier_cutoffs, kjaer_cutoffs)
    _check_source(source)
    ff = np.array(fat_fraction_pct, dtype=float)
    ratio = np.array(fat_area_ratio, dtype=float)
    pct, src = _grade_values(ff, ratio, source, range(ff.size))
    return _grade_columns(scales, pct, src)


def _grade_columns(scales, pct: np.ndarray, src: np.ndarray) -> Dict[str, Any]:
    out: Dict[str, Any] = {"grade_fat_pct": pct, "grade_source": src}
    for column, grade in _grades(scales, pct).items():
        missing = np.isnan(grade)  # grades are whole numbers or NaN: the Int64 array of pd.array(grade), made directly
        out[column] = pd.arrays.IntegerArray(np.where(missing, 0.0, grade).astype(np.int64), missing)
    return out


def grade_summary(
    levels: pd.DataFrame,
    source: str = "auto",
    goutallier_cutoffs: Sequence[float] = GOUTALLIER_CUTOFFS,
    kjaer_cutoffs: Sequence[float] = KJAER_CUTOFFS,
) -> pd.DataFrame:
    """Grades per side and of left + right together, and their means over levels.

    Rows (tidy, :data:`GRADE_SUMMARY_COLUMNS`), for every subject x muscle:

    * for every level, one row per ``side``:

      ``"left"``, ``"right"``
          that side's grade.  Several ROIs of one side and level (e.g. two
          named segments) are pooled as below.
      ``"combined"``
          the grade of left + right taken as one ROI (a row whenever both
          sides were measured; NaN unless both have a fat % from the same
          source):

          - fat area %: ``100 * (fat_csa_L + fat_csa_R) / (A_L + A_R)``;
          - mean fat fraction: the area-weighted mean ``(FF_L * A_L + FF_R *
            A_R) / (A_L + A_R)``;

          where ``A`` is the finite-voxel area ``fat_csa_mm2 + lean_csa_mm2``
          (the area ``fat_area_ratio`` and the mean FF are taken over), or
          ``csa_mm2`` where those are missing.  Both equal the value that one
          ROI covering both sides would give, and equal the textbook
          ``(fat_csa_L + fat_csa_R) / (csa_L + csa_R)`` when no ROI voxel is NaN.
      ``""``
          a muscle measured as one bilateral ROI without side.

    * per side, two mean rows:

      ``level = "mean all levels"``
          mean of that side's grades over all levels with a grade.
      ``level = "mean L3/4-L5/S1"``
          mean over L3/4, L4/5 and L5/S1, only when all three have a grade
          (else NaN); the label of :func:`ParaspinalFatLib.measurement.summary.summarize`.
          Present for a side measured at one or more of the three levels.

    A mean of grades is not the grade of the mean fat %; mean rows have
    ``grade_fat_pct`` NaN and ``grade_source`` ``""``.

    Parameters
    ----------
    levels : pandas.DataFrame
        Per-level table with ``subject``, ``muscle``, ``side``, ``level``,
        ``csa_mm2`` and the column(s) ``source`` needs (see :func:`add_grades`).
    source : {"auto", "fat_fraction_pct", "fat_area_pct"}
        See :func:`add_grades`; ``"auto"`` decides per ROI row.
    goutallier_cutoffs, kjaer_cutoffs : sequence of float
        See :func:`goutallier_grade` and :func:`kjaer_grade`.

    Returns
    -------
    pandas.DataFrame
        Columns:

        ``subject``, ``muscle``, ``level``, ``side``
            Keys (``level`` also the two mean labels).
        ``grade_fat_pct`` (float64)
            The fat % graded (pooled for ``combined``); NaN in mean rows.
        ``grade_source`` (str)
            ``"fat_fraction_pct"``, ``"fat_area_pct"``, ``"mixed"`` (left and
            right from different sources: no combined grade) or ``""``.
        ``goutallier``, ``kjaer`` (float64)
            Integer grades in level rows, means in mean rows; NaN if missing.
        ``n_levels`` (int)
            1 in level rows (0 if ungraded); in mean rows the number of
            levels averaged (for the L3/4-L5/S1 row: how many of the three
            have a grade).
        ``warnings`` (str)
            The row warnings of the per-level rows behind the row (both
            sides for ``combined``, every level for the means), each prefixed
            with its segment and level; ``""`` when none.  A level whose fat
            % is not measurable is NaN here and its reason is in this column.

    Raises
    ------
    InputError
        A required column is missing, unknown ``source``, a ``fat_area_ratio``
        outside 0..1, or bad cut-offs.
    """
    scales = _scales(goutallier_cutoffs, kjaer_cutoffs)
    _require_level_columns(levels, ("subject", "muscle", "side", "level", "csa_mm2"), "grade_summary")
    pct, src = _grade_input(levels, source)
    area = _finite_area(levels)
    subject = levels["subject"].to_numpy(dtype=object)
    muscle = levels["muscle"].to_numpy(dtype=object)
    level = levels["level"].to_numpy(dtype=object)
    side = texts_or_empty(levels["side"])
    (subj_codes, subj_uniques), (mus_codes, mus_uniques), (lev_codes, lev_uniques) = (
        _codes_and_uniques(subject), _codes_and_uniques(muscle), _codes_and_uniques(level))
    codes = [subj_codes, mus_codes, lev_codes]
    warn = labelled_row_warnings(levels)
    with np.errstate(invalid="ignore", over="ignore"):
        pw = pct * area
    rows = _Rows(pct=pct, src=_codes(src), src_label=src, ok=np.isfinite(pct), pw=pw, area=area,
                 area_ok=np.isfinite(area) & (area >= 0), warn=warn)

    # level rows: each side pooled, then left + right pooled where both were measured
    side_codes = _codes(side)
    per_side, per_side_rows = _pool(rows, codes + [side_codes], np.arange(len(levels)))
    lr = np.flatnonzero((side == "left") | (side == "right"))
    combined, combined_rows = _pool(rows, codes + [side_codes], lr, by_side=False)
    two_sides = combined["n_sides"] == 2
    first = np.r_[per_side_rows, combined_rows[two_sides]]  # a row of the table behind each level row
    lv_side = np.r_[side[per_side_rows], np.full(int(two_sides.sum()), "combined", dtype=object)].astype(object)
    lv_pct = np.r_[per_side["grade_fat_pct"], combined["grade_fat_pct"][two_sides]]
    lv_source = np.r_[per_side["grade_source"], combined["grade_source"][two_sides]].astype(object)
    lv_warn = per_side["warnings"] + [w for w, keep in zip(combined["warnings"], two_sides) if keep]
    lv_grades = _grades(scales, lv_pct)
    lv_n = np.isfinite(lv_grades[_GOUTALLIER.column]).astype(int)

    # per subject x muscle x side: mean grades over all levels and over L3/4-L5/S1
    lv_side_codes, lv_side_uniques = _codes_and_uniques(lv_side)
    lv_level = level[first]
    level_rows = _LevelRows(first=first, subject=codes[0][first], muscle=codes[1][first], side=lv_side,
                            side_code=lv_side_codes, grades=lv_grades, warn=np.array(lv_warn, dtype=object))
    mean_parts = [_level_mean(level_rows, np.arange(len(first)), None)]
    in_lower = np.array([isinstance(lv, str) and lv in LOWER_LUMBAR_LEVELS for lv in lv_level.tolist()], dtype=bool)
    if in_lower.any():
        mean_parts.append(_level_mean(level_rows, np.flatnonzero(in_lower), len(LOWER_LUMBAR_LEVELS)))
    labels = [ALL_LEVELS_LABEL, LOWER_LUMBAR_LABEL]
    row_of = first.tolist() + [r for m in mean_parts for r in m["row"].tolist()]
    out_level = lv_level.tolist() + [labels[k] for k, m in enumerate(mean_parts) for _ in range(len(m["row"]))]
    out_side = lv_side.tolist() + [x for m in mean_parts for x in m["side"].tolist()]
    n_mean = sum(len(m["row"]) for m in mean_parts)
    nan_mean = np.full(n_mean, np.nan)
    out_pct = np.r_[lv_pct, nan_mean]
    out_source = lv_source.tolist() + [""] * n_mean
    out_grades = {c: np.r_[lv_grades[c], np.concatenate([m[c] for m in mean_parts])] for c in _GRADE_COLUMNS}
    out_n = np.r_[lv_n, np.concatenate([m["n_levels"] for m in mean_parts])].astype(int)
    out_warn = lv_warn + [w for m in mean_parts for w in m["warnings"]]

    # order: subject, muscle, level (cranial to caudal, no level, the two means), side
    measured = [lv for lv in pd.unique(lv_level) if not is_missing(lv)]
    rank = {lv: i for i, lv in enumerate(sorted(measured, key=_level_key))}
    missing_rank = len(measured)  # rows without a level: after the levels, before the means
    rank[ALL_LEVELS_LABEL] = missing_rank + 1
    rank[LOWER_LUMBAR_LABEL] = missing_rank + 2
    # every level that is not missing has a rank (a missing one, NaN or None, never equals a key)
    # (looked up once per distinct level and side, by their codes)
    lrank = np.r_[_looked_up(lev_uniques, rank, missing_rank)[lev_codes[first]],
                  np.concatenate([np.full(len(m["row"]), rank[labels[k]], dtype=np.int64)
                                  for k, m in enumerate(mean_parts)])]
    srank = _looked_up(lv_side_uniques, _SIDE_ORDER, len(_SIDE_ORDER))[
        np.r_[lv_side_codes, np.concatenate([m["side_code"] for m in mean_parts])]]
    row_of = np.array(row_of, dtype=np.int64)
    order = np.lexsort((srank, lrank, _sort_codes(levels["muscle"], mus_codes, mus_uniques)[row_of],
                        _sort_codes(levels["subject"], subj_codes, subj_uniques)[row_of]))
    order_l = order.tolist()
    subj_l, mus_l = subject[row_of[order]].tolist(), muscle[row_of[order]].tolist()
    # text columns as lists (pandas infers their type as from records), numbers as arrays
    columns = [subj_l, mus_l, [out_level[i] for i in order_l], [out_side[i] for i in order_l],
               out_pct[order].astype(float), [out_source[i] for i in order_l],
               out_grades[_GOUTALLIER.column][order].astype(float), out_grades[_KJAER.column][order].astype(float),
               out_n[order].astype(int), [out_warn[i] for i in order_l]]
    out = (pd.DataFrame(dict(zip(GRADE_SUMMARY_COLUMNS, columns))) if order_l
           else pd.DataFrame.from_records([], columns=GRADE_SUMMARY_COLUMNS))
    if len(out) and not measured:  # no level at all: the dtype the former concatenation gave
        out["level"] = out["level"].astype(object)
    if len(out) and not len(lr):
        out = _as_concatenated_with_no_pairs(out, {"subject": subject, "muscle": muscle, "level": level})
    dtypes = out.dtypes
    for col in ["grade_fat_pct"] + _GRADE_COLUMNS:
        if dtypes[col] != np.float64:  # made as float64: only a concatenation above may change it
            out[col] = out[col].astype(float)
    if dtypes["n_levels"] != np.dtype(int):
        out["n_levels"] = out["n_levels"].astype(int)
    return out


# =============================================================================
# helpers
# =============================================================================
def check_cutoffs(cutoffs: Any, scale: str, option: str = "") -> Tuple[float, ...]:
    """Check grade cut-offs: the right count of finite, strictly increasing fat % in 0-100.

    Parameters
    ----------
    cutoffs : sequence of float
        The cut-offs (lower bounds of grades 1, 2, ... in %).
    scale : {"goutallier", "kjaer"}
        The scale they belong to (4 and 2 cut-offs).
    option : str, optional
        How the caller's user spells the option (e.g. ``"goutallier_cutoffs
        (--goutallier-cutoffs)"``); named in the messages after the scale.

    Returns
    -------
    tuple of float
        The cut-offs as floats.

    Raises
    ------
    InputError
        Unknown ``scale``; not a sequence of numbers; wrong count; NaN or
        infinite; not strictly increasing; outside 0-100 %.  The message names
        the scale (and ``option``) and the values given.
    """
    scales = {_GOUTALLIER.column: _GOUTALLIER, _KJAER.column: _KJAER}
    if scale not in scales:
        raise InputError(f"scale must be one of {', '.join(scales)}, got {scale!r}")
    return _check_cutoffs(cutoffs, scales[scale], option)


def _check_cutoffs(cutoffs: Any, scale: _Scale, option: str = "") -> Tuple[float, ...]:
    """``cutoffs`` as floats, or an :class:`InputError` naming the scale (and the option)."""
    n = scale.n_cutoffs
    name = f"{scale.name} cut-offs" + (f" {option}" if option else "")
    try:
        items = cutoffs.split(",") if isinstance(cutoffs, str) else cutoffs  # "10,25,40,60" as on the CLI
        values = tuple(float(c) for c in items)
    except (TypeError, ValueError):
        raise InputError(
            f"{name} must be a sequence of {n} numbers (fat %), got {cutoffs!r}"
        ) from None
    if len(values) != n:
        raise InputError(
            f"{name}: expected {n} values (lower bounds of grades 1..{n}, in %), "
            f"got {len(values)}: {list(values)}"
        )
    if not all(np.isfinite(values)):
        raise InputError(f"{name} must be finite numbers, got {list(values)}")
    for a, b in zip(values[:-1], values[1:]):
        if not b > a:
            raise InputError(
                f"{name} must be strictly increasing, got {list(values)} "
                f"({b:g} does not exceed {a:g})"
            )
    outside = [v for v in values if not 0.0 <= v <= 100.0]
    if outside:
        raise InputError(
            f"{name} must lie between 0 and 100 % (they are fat percentages), got {list(values)}"
        )
    return values


def _grade(scale: _Scale, fat_pct: Any, cut: Tuple[float, ...]) -> np.ndarray:
    """Grades of ``fat_pct`` on ``scale`` with checked cut-offs ``cut``; NaN where missing."""
    x = as_float_array(fat_pct, "fat_pct must be numeric (fat %)", copy=True)
    grade = np.zeros(x.shape, dtype=float)
    last = len(cut) - 1
    for k, c in enumerate(cut):
        grade += (x > c) if (scale.top_closed and k == last) else (x >= c)
    grade[~np.isfinite(x)] = np.nan
    return grade


def _scales(goutallier_cutoffs: Any, kjaer_cutoffs: Any) -> List[Tuple[_Scale, Tuple[float, ...]]]:
    """Both scales with their checked cut-offs."""
    return [(_GOUTALLIER, _check_cutoffs(goutallier_cutoffs, _GOUTALLIER)),
            (_KJAER, _check_cutoffs(kjaer_cutoffs, _KJAER))]


def _grades(scales: List[Tuple[_Scale, Tuple[float, ...]]], fat_pct: Any) -> Dict[str, np.ndarray]:
    """Grade column name -> grades of ``fat_pct``, for every scale of :func:`_scales`."""
    return {scale.column: _grade(scale, fat_pct, cut) for scale, cut in scales}


def _require_level_columns(levels: Any, columns: Sequence[str], what: str) -> None:
    """:func:`require_columns` on a per-level table, naming each missing column."""
    present = getattr(levels, "columns", ())
    missing = ", ".join(repr(c) for c in columns if c not in present)
    require_columns(levels, columns, what, hint=f"; no column {missing} ({_LEVEL_COLUMNS_HINT})")


def _column(levels: pd.DataFrame, name: str) -> np.ndarray:
    return as_float_array(levels[name], f"column '{name}' must be numeric", copy=True)


def _check_source(source: Any) -> None:
    if not isinstance(source, str) or source not in GRADE_SOURCES:
        raise InputError(f"source must be one of {', '.join(GRADE_SOURCES)}; got {source!r}")


def _grade_input(levels: pd.DataFrame, source: str) -> Tuple[np.ndarray, np.ndarray]:
    """The fat % to grade and its source label, per row."""
    _check_source(source)
    needed = {"fat_fraction_pct": ("fat_fraction_pct",), "fat_area_pct": ("fat_area_ratio",)}
    _require_level_columns(levels, needed.get(source, ()), f"source={source!r}")
    n = len(levels)
    if source == "auto" and "fat_fraction_pct" not in levels.columns and "fat_area_ratio" not in levels.columns:
        raise InputError(
            "source='auto': the table has neither column 'fat_fraction_pct' nor 'fat_area_ratio'; "
            "nothing to grade"
        )
    ff = _column(levels, "fat_fraction_pct") if "fat_fraction_pct" in levels.columns else np.full(n, np.nan)
    has_ratio = source != "fat_fraction_pct" and "fat_area_ratio" in levels.columns
    ratio = _column(levels, "fat_area_ratio") if has_ratio else np.full(n, np.nan)
    return _grade_values(ff, ratio, source, levels.index)


def _grade_values(ff: np.ndarray, ratio: np.ndarray, source: str, row_names) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`_grade_input` on the columns as arrays; ``row_names`` name the rows in the refusal."""
    n = ff.size
    area_pct = np.full(n, np.nan)
    if source != "fat_fraction_pct":
        use = np.isfinite(ratio) if source == "fat_area_pct" else np.isfinite(ratio) & ~np.isfinite(ff)
        bad = use & ((ratio < -_RATIO_TOL) | (ratio > 1.0 + _RATIO_TOL))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"fat_area_ratio must be a fraction 0..1, but row {row_names[i]!r} has "
                f"{ratio[i]:g} ({int(bad.sum())} row(s) out of range); was a percentage "
                f"stored in fat_area_ratio?"
            )
        area_pct = 100.0 * ratio
    ff_ok = np.isfinite(ff)
    area_ok = np.isfinite(area_pct)
    if source == "fat_fraction_pct":
        pct = np.where(ff_ok, ff, np.nan)
        src = np.where(ff_ok, "fat_fraction_pct", "")
    elif source == "fat_area_pct":
        pct = np.where(area_ok, area_pct, np.nan)
        src = np.where(area_ok, "fat_area_pct", "")
    else:
        pct = np.where(ff_ok, ff, np.where(area_ok, area_pct, np.nan))
        src = np.where(ff_ok, "fat_fraction_pct", np.where(area_ok, "fat_area_pct", ""))
    return pct.astype(float), src.astype(object)


def _finite_area(levels: pd.DataFrame) -> np.ndarray:
    """Per row: the area the fat % refers to -- the classified area
    fat + lean + undefined CSA (``fat_area_ratio`` is fat / classified voxels; PDFF
    and Dixon have no undefined class, so there it is fat + lean) -- else csa_mm2."""
    csa = _column(levels, "csa_mm2")
    if "fat_csa_mm2" in levels.columns and "lean_csa_mm2" in levels.columns:
        fl = _column(levels, "fat_csa_mm2") + _column(levels, "lean_csa_mm2")
        if "undefined_csa_mm2" in levels.columns:
            und = _column(levels, "undefined_csa_mm2")
            fl = fl + np.where(np.isfinite(und), und, 0.0)
        return np.where(np.isfinite(fl), fl, csa)
    return csa


class _Rows(NamedTuple):
    """Per row of the per-level table: what :func:`_pool` pools."""

    pct: np.ndarray       # fat % graded (NaN: none)
    src: np.ndarray       # code of its source label
    src_label: np.ndarray  # the source label
    ok: np.ndarray        # pct is finite
    pw: np.ndarray        # pct x area
    area: np.ndarray      # the area pct refers to
    area_ok: np.ndarray   # area finite and >= 0
    warn: np.ndarray      # labelled row warnings


def _codes(values: Any) -> np.ndarray:
    """Group codes of ``values`` as ``groupby(dropna=False)`` groups them (missing values one group)."""
    return _codes_and_uniques(values)[0]


def _codes_and_uniques(values: Any) -> Tuple[np.ndarray, Any]:
    """:func:`_codes` and the distinct values (``uniques[code]``; a list when every value is text)."""
    return factorize(np.asarray(values, dtype=object), use_na_sentinel=False)


def _sort_codes(values: pd.Series, codes: Optional[np.ndarray] = None, uniques: Any = None) -> np.ndarray:
    """Codes ordering ``values`` as ``sort_values`` does (missing values last).

    ``codes``/``uniques`` (optional): the :func:`_codes_and_uniques` of ``values``; when every
    value is text the order is taken from them (sorting the distinct values only).
    """
    if isinstance(uniques, list):  # texts only: no missing value
        order = np.empty(len(uniques), dtype=np.intp)
        order[sorted(range(len(uniques)), key=uniques.__getitem__)] = np.arange(len(uniques))
        return order[codes]
    codes, uniques = factorize(values, sort=True)
    return np.where(codes < 0, len(uniques), codes)


def _groups(keys: List[np.ndarray], rows: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Group of each of ``rows`` by the codes ``keys``, numbered in order of first appearance.

    Returns the group number of each row and the groups' first rows.
    """
    # one integer key per row (mixed radix over the codes, renumbered only if it could overflow),
    # then numbered in order of first appearance, as the tuples of codes would be
    combined = np.zeros(len(rows), dtype=np.int64)
    span = 1
    for k in keys:
        c = k[rows]
        radix = int(c.max()) + 1 if len(c) else 1
        if span * radix >= 2 ** 62:
            combined = pd.factorize(combined)[0]
            span = int(combined.max()) + 1
        combined = combined * radix + c
        span *= radix
    group = pd.factorize(combined)[0]
    first = np.full(int(group.max()) + 1 if len(group) else 0, len(rows), dtype=np.int64)
    np.minimum.at(first, group, np.arange(len(rows)))
    return group, rows[first]


def _group_sums(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """NaN-skipping sum per group, bit for bit as pandas' ``groupby().sum()`` gives it.

    ``group`` numbers the groups in order of first appearance.  Up to two
    values per group the compensated sum pandas uses is the plain sum; when a
    group is bigger (rare: three ROIs of one muscle and side) pandas sums
    them all, as the same rows (its result depends on their layout).
    """
    size = np.bincount(group, minlength=n_groups)
    if (size > 2).any():
        return pd.Series(values).groupby(group, sort=False).sum().to_numpy(dtype=float)
    out = np.zeros(n_groups)
    np.add.at(out, group, np.where(np.isnan(values), 0.0, values))  # in row order: (0 + a) + b
    return out


def _join_by_group(group: np.ndarray, warn: np.ndarray, n_groups: int) -> List[str]:
    """:func:`join_warnings` of the rows of each group, in row order."""
    texts: Dict[int, List[str]] = {}
    for i in np.flatnonzero(warn != "").tolist():
        seen = texts.setdefault(int(group[i]), [])
        if warn[i] not in seen:
            seen.append(warn[i])
    return ["; ".join(texts[g]) if g in texts else "" for g in range(n_groups)]


def _pool(rows: _Rows, keys: List[np.ndarray], which: np.ndarray, by_side: bool = True):
    """Fat % of the ROIs of each group read as one ROI (area-weighted).

    Groups are the rows ``which`` of the table with equal ``keys`` (subject,
    muscle, level and side; without the side unless ``by_side``), in order
    of first appearance.  NaN when any ROI of the group is ungraded, when
    sources differ (``grade_source = "mixed"``) or, for several ROIs, when an
    area is missing.  Returns the per-group columns and each group's first row.
    """
    group, first = _groups(keys if by_side else keys[:3], which)
    n_groups = len(first)
    n = np.bincount(group, minlength=n_groups)
    n_ok = np.bincount(group, weights=rows.ok[which], minlength=n_groups)
    all_ok = n_ok == n
    src = rows.src[which]
    src_lo = np.full(n_groups, np.iinfo(np.int64).max, dtype=np.int64)
    src_hi = np.full(n_groups, -1, dtype=np.int64)
    np.minimum.at(src_lo, group, src)
    np.maximum.at(src_hi, group, src)
    mixed = all_ok & (src_hi > src_lo)
    w = _group_sums(rows.area[which], group, n_groups)
    pw = _group_sums(rows.pw[which], group, n_groups)
    area_bad = np.bincount(group, weights=~rows.area_ok[which], minlength=n_groups) > 0
    weighted_ok = ~area_bad & (w > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        weighted = pw / w
    value = np.where(n == 1, rows.pct[first], np.where(weighted_ok, weighted, np.nan))
    value = np.where(all_ok & ~mixed, value, np.nan)
    source = np.where(mixed, "mixed", np.where(all_ok, rows.src_label[first], ""))
    side_codes = keys[3][which]
    sides_lo = np.full(n_groups, np.iinfo(np.int64).max, dtype=np.int64)
    sides_hi = np.full(n_groups, -1, dtype=np.int64)
    np.minimum.at(sides_lo, group, side_codes)
    np.maximum.at(sides_hi, group, side_codes)
    return {
        "grade_fat_pct": value, "grade_source": source.astype(object),
        "n_sides": np.where(sides_hi > sides_lo, 2, 1),  # only read for left/right pools
        "warnings": _join_by_group(group, rows.warn[which], n_groups),
    }, first


class _LevelRows(NamedTuple):
    """The level rows of :func:`grade_summary` (per subject x muscle x level x side)."""

    first: np.ndarray      # a table row behind each (its subject, muscle and level)
    subject: np.ndarray    # group codes of the subject
    muscle: np.ndarray     # group codes of the muscle
    side: np.ndarray       # side label (with "combined")
    side_code: np.ndarray  # its group code
    grades: Dict[str, np.ndarray]
    warn: np.ndarray


def _level_mean(lv: _LevelRows, which: np.ndarray, need: Optional[int]) -> Dict[str, Any]:
    """Mean grades of the level rows ``which`` per subject x muscle x side (first appearance order).

    The grades are small integers, so their sums are exact in any order and
    equal pandas' ``groupby().mean()``.  With ``need``, a mean over fewer
    graded levels is NaN.
    """
    group, first = _groups([lv.subject, lv.muscle, lv.side_code], which)
    n_groups = len(first)
    out: Dict[str, Any] = {}
    for column in _GRADE_COLUMNS:
        x = lv.grades[column][which]
        have = ~np.isnan(x)
        count = np.bincount(group, weights=have, minlength=n_groups)
        total = np.bincount(group, weights=np.where(have, x, 0.0), minlength=n_groups)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[column] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        if column == _GOUTALLIER.column:
            out["n_levels"] = count.astype(np.int64)
    if need is not None:
        for column in _GRADE_COLUMNS:
            out[column] = np.where(out["n_levels"] < need, np.nan, out[column])
    out["row"] = lv.first[first]
    out["side"] = lv.side[first]
    out["side_code"] = lv.side_code[first]
    out["warnings"] = _join_by_group(group, lv.warn[which], n_groups)
    return out


def _as_concatenated_with_no_pairs(out: pd.DataFrame, keys: Dict[str, np.ndarray]) -> pd.DataFrame:
    """``out`` with the column dtypes it has when an empty frame of left + right pools is concatenated to it.

    The table of :func:`grade_summary` always had these dtypes when no row
    has a left or right side (e.g. object, not int64, subjects); kept so that
    its dtypes do not change.
    """
    import warnings

    empty = {c: pd.DataFrame({c: v})[c].iloc[:0] for c, v in keys.items()}  # dtypes of the key columns
    side = pd.DataFrame(index=pd.RangeIndex(0))
    side["side"] = "combined"
    empty["side"] = side["side"]
    for c in ("grade_source", "warnings"):
        empty[c] = pd.Series([], dtype=object)
    template = pd.DataFrame({c: empty[c] if c in empty else out[c].iloc[:0] for c in out.columns})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # pandas < 3: empty entries in a concatenation
        return pd.concat([out, template], ignore_index=True)


def _looked_up(uniques: Any, rank: Mapping[Any, int], default: int) -> np.ndarray:
    """``rank.get(u, default)`` of each distinct value (int64; a missing value, NaN or None, is no key)."""
    return np.array([rank.get(u, default) for u in uniques], dtype=np.int64).reshape(len(uniques))


def _level_key(level: Any) -> Tuple[float, str]:
    if isinstance(level, str):
        return level_sort_key(level)
    return (float("inf"), str(level))

"""Per-subject summary of the per-level table: left/right, asymmetry and the L3/4-L5/S1 mean.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence
import numpy as np
import pandas as pd
from ..anatomy.level_names import level_sort_key
from ..schemas import LOWER_LUMBAR_LABEL, LOWER_LUMBAR_LEVELS, SUMMARY_COLUMNS
from ..validation import factorize, is_missing, object_array, texts_or_empty


__all__ = ['SUMMARY_METRICS', 'summarize', 'labelled_row_warnings', 'join_warnings']

#: metrics summarised per side (only those present and not all-NaN are kept)
SUMMARY_METRICS = ("csa_mm2", "fat_fraction_pct", "fat_csa_mm2", "lean_csa_mm2", "fat_area_ratio", "mean")
def summarize(levels: pd.DataFrame, wide: bool = False, metrics: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Per-subject summary: each muscle's value per side, their mean and asymmetry.

    For every subject x muscle x level x metric: ``left``, ``right``,
    ``lr_mean`` = (left + right) / 2 and ``asymmetry_pct`` = |left - right| /
    |lr_mean| x 100 (NaN for mean HU: a percentage of an interval scale whose
    zero is water has no meaning).  An extra level ``"mean L3/4-L5/S1"`` holds
    the mean over the three lower lumbar levels (the "lower lumbar profile" of
    seed 001), computed only when all three levels are present (``n_levels``
    says how many were).  Muscles without a side (one bilateral ROI) have NaN
    left/right and their value in ``lr_mean``.  Several ROIs of one muscle, side
    and level (e.g. longissimus and iliocostalis both mapped to erector_spinae)
    are pooled as one ROI: areas add up, means are weighted by voxel counts and
    the fat area ratio by the classified area.

    A value that is not measurable (NaN in the per-level table, e.g. the fat/lean
    split of an ROI whose voxels are all below the Dixon noise floor) stays NaN:
    so are ``lr_mean`` and ``asymmetry_pct`` of that level and the level mean
    (never a 200 % asymmetry against a zero).  Every summary row carries in
    ``warnings`` the row warnings of the per-level rows it summarises, each
    prefixed with its segment and level (:func:`labelled_row_warnings`).

    Parameters
    ----------
    levels : pandas.DataFrame
        Per-level table (:data:`LEVEL_COLUMNS`).
    wide : bool
        Return one row per subject with columns ``"<muscle> <level> <stat> <metric>"``.
    metrics : sequence of str, optional
        Metrics to summarise (default: those of :data:`SUMMARY_METRICS` that have values).

    Returns
    -------
    pandas.DataFrame
        Tidy (:data:`SUMMARY_COLUMNS`) or wide summary (one row per subject;
        its ``warnings`` column joins the warnings of all the subject's rows).
    """
    # "" comes back from a CSV as NaN: a missing side is ""
    side = texts_or_empty(levels["side"])
    warn = labelled_row_warnings(levels)
    if metrics is None:
        metrics = [m for m in SUMMARY_METRICS if m in levels and not pd.isna(levels[m].to_numpy()).all()]
    tidy = _tidy_summary(levels, side, warn, list(metrics))
    if not wide:
        return tidy
    long = tidy.melt(
        id_vars=["subject", "muscle", "level", "metric"],
        value_vars=["left", "right", "lr_mean", "asymmetry_pct"], var_name="stat",
    )
    long["column"] = long["muscle"] + " " + long["level"] + " " + long["stat"] + " " + long["metric"]
    out = long.pivot_table(index="subject", columns="column", values="value", aggfunc="first", dropna=False)
    out.columns.name = None
    out = out.reset_index()
    by_subject = _joined_by_key(levels["subject"], warn)
    out["warnings"] = [by_subject.get(subject, "") for subject in out["subject"]]
    return out


def labelled_row_warnings(levels: pd.DataFrame) -> np.ndarray:
    """Each row's ``warnings`` text prefixed with the row it belongs to.

    Parameters
    ----------
    levels : pandas.DataFrame
        A per-level table; ``warnings`` (optional: no column means no
        warnings; NaN, as after a CSV round trip, means none), ``segment``
        (else ``muscle`` and ``side``) and ``level`` name the row.

    Returns
    -------
    numpy.ndarray of object
        ``"<segment> (<level>): <warnings>"`` per row, ``""`` where the row
        has no warning.
    """
    n = len(levels)
    if "warnings" not in levels.columns or n == 0:
        return np.array([""] * n, dtype=object)

    def text(v) -> str:
        return "" if is_missing(v) else str(v).strip()

    columns: Dict[str, Any] = {}

    def at(name, i) -> str:
        if name not in columns:  # the naming columns are read only when some row has a warning
            columns[name] = levels[name].to_numpy(dtype=object) if name in levels.columns else None
        values = columns[name]
        return "" if values is None else text(values[i])

    out = np.full(n, "", dtype=object)
    # only the rows with a warning are named (most rows have none: "" is skipped without a call)
    for i, w in enumerate(levels["warnings"].to_numpy(dtype=object)):
        if type(w) is str and w == "":
            continue
        w = text(w)
        if not w:
            continue
        lv, seg = at("level", i), at("segment", i)
        name = seg or " ".join(x for x in (at("muscle", i), at("side", i)) if x) or "row"
        out[i] = f"{name} ({lv}): {w}" if lv else f"{name}: {w}"
    return out


def join_warnings(texts) -> str:
    """Join warning texts with ``"; "``, dropping empty ones and repeats (first order kept).

    Parameters
    ----------
    texts : iterable of str
        E.g. the :func:`labelled_row_warnings` of the rows a summary row is made of.

    Returns
    -------
    str
        The joined text (``""`` when there is none).
    """
    seen = []
    for t in texts:
        if isinstance(t, str) and t and t not in seen:
            seen.append(t)
    return "; ".join(seen)


_UNIT_OF = {
    "csa_mm2": "mm2", "fat_csa_mm2": "mm2", "lean_csa_mm2": "mm2", "fat_area_ratio": "fraction",
    "fat_fraction_pct": "%",
}
_SIDE_CODES = ("left", "right", "")  # columns of the per-cell side values: left, right, no side


def _tidy_summary(levels: pd.DataFrame, side: np.ndarray, warn: np.ndarray, metrics: List[str]) -> pd.DataFrame:
    """The tidy summary (:data:`SUMMARY_COLUMNS`), computed over the whole table at once.

    Rows: per subject x muscle (sorted), per metric, the levels of that muscle
    (cranial to caudal) then the L3/4-L5/S1 mean.  ``side`` holds ``"left"``,
    ``"right"``, ``""`` or another text (ignored) per row; ``warn`` the
    :func:`labelled_row_warnings`.
    """
    n = len(levels)
    # subject x muscle groups in groupby(sort=True) order; rows with a missing key belong to none
    subj_codes, subj_uniques = factorize(levels["subject"], sort=True)
    mus_codes, mus_uniques = factorize(levels["muscle"], sort=True)
    valid = (subj_codes >= 0) & (mus_codes >= 0)
    if n == 0 or not valid.any():
        return pd.DataFrame.from_records([], columns=SUMMARY_COLUMNS)
    group_ids, gid = np.unique(subj_codes[valid] * len(mus_uniques) + mus_codes[valid], return_inverse=True)
    rows = np.flatnonzero(valid)
    n_groups = len(group_ids)
    # levels: every distinct value (a missing level is one more) ranked cranial to caudal
    level_col = levels["level"]
    lev_codes, lev_uniques = factorize(level_col)
    level_objs = list(lev_uniques)
    lev_codes = lev_codes[rows]
    no_level = lev_codes < 0  # such a row names a level no row equals: no values, no warnings
    if no_level.any():
        lev_codes = np.where(lev_codes < 0, len(level_objs), lev_codes)
        level_objs.append(level_col.iloc[int(rows[np.argmax(lev_codes == len(level_objs))])])
    order = sorted(range(len(level_objs)), key=lambda j: level_sort_key(level_objs[j]))
    rank = np.empty(len(level_objs), dtype=np.int64)
    rank[order] = np.arange(len(level_objs))
    level_by_rank = [level_objs[j] for j in order]
    # cells: one per subject x muscle x level present, sorted by group then level
    cell_keys, cell = np.unique(gid * len(level_objs) + rank[lev_codes], return_inverse=True)
    cell_gid = cell_keys // len(level_objs)
    cell_level = [level_by_rank[r] for r in (cell_keys % len(level_objs)).tolist()]
    n_cells = len(cell_keys)
    # the L3/4, L4/5 and L5/S1 cell of each group (-1 where that level is absent)
    lower = np.full((n_groups, len(LOWER_LUMBAR_LEVELS)), -1, dtype=np.int64)
    slot_of_rank = np.array([LOWER_LUMBAR_LEVELS.index(lv) if isinstance(lv, str) and lv in LOWER_LUMBAR_LEVELS
                             else -1 for lv in level_by_rank], dtype=np.int64)
    cell_slot = slot_of_rank[cell_keys % len(level_objs)]
    in_lower_levels = np.flatnonzero(cell_slot >= 0)  # (one cell per group and level: no pair twice)
    lower[cell_gid[in_lower_levels], cell_slot[in_lower_levels]] = in_lower_levels
    n_have = (lower >= 0).sum(axis=1)
    lower_groups = np.flatnonzero(n_have > 0)
    all_three = n_have[lower_groups] == len(LOWER_LUMBAR_LEVELS)
    # warnings: per cell and per group's lower lumbar rows, in table order
    cell_warn = _joined_by_key(np.where(no_level, -1, cell), warn[rows], n_cells)
    is_lower = np.isin(cell, lower[lower >= 0])
    group_lower_warn = _joined_by_key(np.where(is_lower, gid, -1), warn[rows], n_groups)
    # pools: the rows of one cell and side, in table order
    side_code = np.full(len(rows), len(_SIDE_CODES), dtype=np.int64)
    for k, name in enumerate(_SIDE_CODES):
        side_code[side[rows] == name] = k
    keep = (side_code < len(_SIDE_CODES)) & ~no_level
    pool_rows = rows[keep]
    pool_key = cell[keep] * len(_SIDE_CODES) + side_code[keep]
    by_pool = np.argsort(pool_key, kind="stable")
    pool_rows, pool_key = pool_rows[by_pool], pool_key[by_pool]
    starts = np.flatnonzero(np.r_[True, pool_key[1:] != pool_key[:-1]]) if len(pool_key) else np.zeros(0, int)
    sizes = np.diff(np.r_[starts, len(pool_key)])
    pool_at = pool_key[starts]

    unit_col = levels["unit"] if "unit" in levels.columns else None
    first_row = np.full(n_groups, n, dtype=np.int64)
    np.minimum.at(first_row, gid, rows)
    group_unit = (unit_col.to_numpy(dtype=object)[first_row].tolist() if unit_col is not None else [""] * n_groups)
    weights = {}
    n_rows_out = n_cells + len(lower_groups)
    out_gid = np.r_[cell_gid, lower_groups]
    out_level = cell_level + [LOWER_LUMBAR_LABEL] * len(lower_groups)
    out_pos = np.r_[cell_keys % len(level_objs), np.full(len(lower_groups), len(level_objs))]
    out_n_levels = np.r_[np.ones(n_cells, dtype=np.int64), n_have[lower_groups]]
    out_warn = list(cell_warn) + [group_lower_warn[g] for g in lower_groups.tolist()]
    parts = []
    for m_index, metric in enumerate(metrics):
        values = levels[metric].to_numpy(dtype=float)
        if metric.endswith("csa_mm2"):
            pooled = _pooled_sums(values, pool_rows, starts, sizes)
        else:
            kind = "ratio" if metric == "fat_area_ratio" else "voxels"
            if kind not in weights:
                weights[kind] = _pool_weights(levels, metric)
            pooled = _pooled_means(values, weights[kind], pool_rows, starts, sizes)
        per_cell = np.full((n_cells * len(_SIDE_CODES)), np.nan)
        per_cell[pool_at] = pooled
        per_cell = per_cell.reshape(n_cells, len(_SIDE_CODES))
        mean3 = np.full((len(lower_groups), len(_SIDE_CODES)), np.nan)
        if all_three.any():
            # np.mean, not nanmean: a level that is not measurable makes the profile NaN
            cells3 = lower[lower_groups[all_three]]
            mean3[all_three] = np.mean(per_cell[cells3], axis=1)
        value = np.concatenate([per_cell, mean3])
        unit = _UNIT_OF.get(metric)
        units = [unit] * n_groups if unit else group_unit
        interval = (np.array([u == "HU" for u in units], dtype=bool) if metric == "mean"
                    else np.zeros(n_groups, dtype=bool))[out_gid]
        left, right, both = value[:, 0], value[:, 1], value[:, 2]
        lr_mean, asym = _lr_mean_and_asymmetry(left, right, both, interval)
        parts.append((np.full(n_rows_out, m_index), left, right, lr_mean, asym, object_array(units)[out_gid]))
    if not parts:
        return pd.DataFrame.from_records([], columns=SUMMARY_COLUMNS)
    # order: group, metric, level (the L3/4-L5/S1 mean last)
    metric_idx = np.concatenate([p[0] for p in parts])
    pick = np.lexsort((np.tile(out_pos, len(parts)), metric_idx, np.tile(out_gid, len(parts))))
    unit_all = np.concatenate([p[5] for p in parts])
    subj_key = object_array([subj_uniques[int(k) // len(mus_uniques)] for k in group_ids])
    mus_key = object_array([mus_uniques[int(k) % len(mus_uniques)] for k in group_ids])
    gid_all = np.tile(out_gid, len(parts))[pick]
    unit_idx = np.tile(np.arange(n_rows_out), len(parts))[pick]
    # text columns as lists (pandas infers their type as it did from records: an integer subject id
    # stays integer), numbers as arrays
    columns = [
        subj_key[gid_all].tolist(), mus_key[gid_all].tolist(), object_array(out_level)[unit_idx].tolist(),
        object_array(metrics)[metric_idx[pick]].tolist(), unit_all[pick].tolist(),
    ] + [np.concatenate([p[k] for p in parts]).astype(float)[pick] for k in (1, 2, 3, 4)] + [
        out_n_levels[unit_idx].astype(np.int64), object_array(out_warn)[unit_idx].tolist(),
    ]
    return pd.DataFrame(dict(zip(SUMMARY_COLUMNS, columns)))


def _joined_by_key(keys, warn: np.ndarray, n_keys: Optional[int] = None):
    """:func:`join_warnings` of the rows of each key, in row order.

    With ``n_keys`` the keys are codes 0..n_keys-1 (negative: no key) and a
    list is returned; else a dict keyed by the values of ``keys`` (missing
    values skipped).
    """
    keys = np.asarray(keys, dtype=object) if n_keys is None else np.asarray(keys)
    texts: Dict[Any, List[str]] = {}
    for i in np.flatnonzero(warn != "").tolist():
        k = keys[i]
        if n_keys is None and is_missing(k):
            continue
        if n_keys is not None and k < 0:
            continue
        seen = texts.setdefault(int(k) if n_keys is not None else k, [])
        if warn[i] not in seen:
            seen.append(warn[i])
    if n_keys is None:
        return {k: "; ".join(v) for k, v in texts.items()}
    return ["; ".join(texts[k]) if k in texts else "" for k in range(n_keys)]


def _segment_sums(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """``np.sum`` of each segment ``values[starts[i]:starts[i + 1]]``, bit for bit.

    ``np.add.reduceat`` adds in another order than ``np.sum`` from three
    values on, so longer segments (rare: three ROIs of one muscle and side)
    are summed one by one.
    """
    if len(starts) == 0:
        return np.zeros(0)
    sums = np.add.reduceat(values, starts)
    bounds = np.r_[starts, len(values)]
    for i in np.flatnonzero(np.diff(bounds) > 2).tolist():
        sums[i] = np.sum(values[bounds[i]:bounds[i + 1]])
    return sums


def _pooled_sums(values: np.ndarray, pool_rows: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Per pool: its one value, or the NaN-skipping sum of areas (NaN when none is finite)."""
    v = values[pool_rows]
    out = v[starts].copy()
    many = sizes > 1
    if many.any():
        finite = np.logical_or.reduceat(np.isfinite(v), starts)
        sums = _segment_sums(np.where(np.isnan(v), 0.0, v), starts)  # np.nansum
        out[many] = np.where(finite, sums, np.nan)[many]
    return out


def _pooled_means(values: np.ndarray, weights: np.ndarray, pool_rows: np.ndarray, starts: np.ndarray,
                  sizes: np.ndarray) -> np.ndarray:
    """Per pool: its one value, or the weighted mean over the rows with a finite value and weight > 0."""
    v = values[pool_rows]
    out = v[starts].copy()
    many = np.flatnonzero(sizes > 1)
    if len(many):
        w = weights[pool_rows]
        pool = np.repeat(np.arange(len(starts)), sizes)
        ok = np.isfinite(v) & np.isfinite(w) & (w > 0) & (sizes > 1)[pool]
        out[many] = np.nan
        if ok.any():
            okpool = pool[ok]
            first = np.flatnonzero(np.r_[True, okpool[1:] != okpool[:-1]])
            vw, ww = v[ok] * w[ok], w[ok]
            out[okpool[first]] = _segment_sums(vw, first) / _segment_sums(ww, first)
    return out


def _pool_weights(levels: pd.DataFrame, metric: str) -> np.ndarray:
    """Weights that make a weighted mean of ROI values equal the value of their union."""
    def col(name):
        return levels[name].to_numpy(dtype=float) if name in levels else np.zeros(len(levels))

    if metric == "fat_area_ratio":  # fat / classified voxels
        und = col("undefined_csa_mm2")
        return col("fat_csa_mm2") + col("lean_csa_mm2") + np.where(np.isfinite(und), und, 0.0)
    # means over the finite voxels
    return col("n_voxels") - col("n_nan") - col("n_below_noise")


def _lr_mean_and_asymmetry(left: np.ndarray, right: np.ndarray, both: np.ndarray, interval: np.ndarray):
    """``lr_mean`` and ``asymmetry_pct`` per row (see :func:`summarize`)."""
    paired = np.isfinite(left) & np.isfinite(right)
    with np.errstate(all="ignore"):
        lr_mean = (left + right) / 2.0
        asym = np.abs(left - right) / np.abs(lr_mean) * 100.0
    asym = np.where(paired & ~interval & (lr_mean != 0), asym, np.nan)
    lr_mean = np.where(paired, lr_mean, np.where(np.isfinite(both), both, np.nan))
    return lr_mean, asym

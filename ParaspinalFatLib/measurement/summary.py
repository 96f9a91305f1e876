"""Per-subject summary of the per-level table: left/right, asymmetry and the L3/4-L5/S1 mean.
"""

from __future__ import annotations

from typing import Optional, Sequence
import numpy as np
import pandas as pd
from ..anatomy.level_names import level_sort_key
from ..schemas import LOWER_LUMBAR_LABEL, LOWER_LUMBAR_LEVELS, SUMMARY_COLUMNS


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
    side = levels["side"].astype(object)
    levels = levels.assign(side=side.where(side.notna(), "").astype(str),  # "" comes back from a CSV as NaN
                           _warn=labelled_row_warnings(levels))
    if metrics is None:
        metrics = [m for m in SUMMARY_METRICS if m in levels and levels[m].notna().any()]
    unit_of = {
        "csa_mm2": "mm2", "fat_csa_mm2": "mm2", "lean_csa_mm2": "mm2", "fat_area_ratio": "fraction",
        "fat_fraction_pct": "%",
    }
    recs = []
    for (subject, muscle), grp in levels.groupby(["subject", "muscle"], sort=True):
        level_names = sorted(set(grp["level"]), key=level_sort_key)
        for metric in metrics:
            unit = unit_of.get(metric) or (grp["unit"].iloc[0] if "unit" in grp else "")
            per_level = {}
            for level in level_names:
                sub = grp[grp["level"] == level]
                left = _side_value(sub, "left", metric)
                right = _side_value(sub, "right", metric)
                both = _side_value(sub, "", metric)
                per_level[level] = (left, right, both)
                recs.append(_summary_record(subject, muscle, level, metric, unit, left, right, both, 1,
                                            join_warnings(sub["_warn"])))
            have = [lv for lv in LOWER_LUMBAR_LEVELS if lv in per_level]
            if have:
                if len(have) == len(LOWER_LUMBAR_LEVELS):
                    # np.mean, not nanmean: a level that is not measurable makes the profile NaN
                    left, right, both = (
                        float(np.mean([per_level[lv][i] for lv in have])) for i in range(3)
                    )
                else:
                    left = right = both = np.nan
                recs.append(_summary_record(subject, muscle, LOWER_LUMBAR_LABEL, metric, unit,
                                            left, right, both, len(have),
                                            join_warnings(grp.loc[grp["level"].isin(have), "_warn"])))
    tidy = pd.DataFrame.from_records(recs, columns=SUMMARY_COLUMNS)
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
    by_subject = {subject: join_warnings(grp["_warn"]) for subject, grp in levels.groupby("subject", sort=False)}
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
        return "" if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else str(v).strip()

    def column(name):
        return [text(v) for v in levels[name]] if name in levels.columns else [""] * n

    warn, level, segment = column("warnings"), column("level"), column("segment")
    muscle, side = column("muscle"), column("side")
    out = []
    for w, lv, seg, mu, sd in zip(warn, level, segment, muscle, side):
        if not w:
            out.append("")
            continue
        name = seg or " ".join(x for x in (mu, sd) if x) or "row"
        out.append(f"{name} ({lv}): {w}" if lv else f"{name}: {w}")
    return np.array(out, dtype=object)


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


def _side_value(sub: pd.DataFrame, side: str, metric: str) -> float:
    rows = sub.loc[sub["side"] == side]
    if len(rows) == 0:
        return np.nan
    vals = rows[metric].to_numpy(dtype=float)
    if len(rows) == 1:
        return float(vals[0])
    # several ROIs of one muscle/side/level: pool them as one ROI
    if metric.endswith("csa_mm2"):
        return float(np.nansum(vals)) if np.isfinite(vals).any() else np.nan
    weights = _pool_weights(rows, metric)
    ok = np.isfinite(vals) & np.isfinite(weights) & (weights > 0)
    if not ok.any():
        return np.nan
    return float(np.sum(vals[ok] * weights[ok]) / np.sum(weights[ok]))


def _pool_weights(rows: pd.DataFrame, metric: str) -> np.ndarray:
    """Weights that make a weighted mean of ROI values equal the value of their union."""
    def col(name):
        return rows[name].to_numpy(dtype=float) if name in rows else np.zeros(len(rows))

    if metric == "fat_area_ratio":  # fat / classified voxels
        und = col("undefined_csa_mm2")
        return col("fat_csa_mm2") + col("lean_csa_mm2") + np.where(np.isfinite(und), und, 0.0)
    # means over the finite voxels
    return col("n_voxels") - col("n_nan") - col("n_below_noise")


def _summary_record(subject, muscle, level, metric, unit, left, right, both, n_levels, warnings_text=""):
    if np.isfinite(left) and np.isfinite(right):
        lr_mean = (left + right) / 2.0
        interval_scale = metric == "mean" and unit == "HU"
        if interval_scale or lr_mean == 0:
            asym = np.nan
        else:
            asym = abs(left - right) / abs(lr_mean) * 100.0
    else:
        lr_mean = both if np.isfinite(both) else np.nan
        asym = np.nan
    return {
        "subject": subject, "muscle": muscle, "level": level, "metric": metric, "unit": unit,
        "left": left, "right": right, "lr_mean": lr_mean, "asymmetry_pct": asym, "n_levels": n_levels,
        "warnings": warnings_text,
    }

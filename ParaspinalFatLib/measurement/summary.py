"""Per-subject summary of the per-level table: left/right, asymmetry and the L3/4-L5/S1 mean.
"""

from __future__ import annotations

from typing import Optional, Sequence
import numpy as np
import pandas as pd
from ..anatomy.level_names import level_sort_key
from ..schemas import LOWER_LUMBAR_LABEL, LOWER_LUMBAR_LEVELS, SUMMARY_COLUMNS


__all__ = ['summarize']

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
        Tidy (:data:`SUMMARY_COLUMNS`) or wide summary.
    """
    levels = levels.assign(side=levels["side"].fillna("").astype(str))  # "" survives a CSV round trip as NaN
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
                recs.append(_summary_record(subject, muscle, level, metric, unit, left, right, both, 1))
            have = [lv for lv in LOWER_LUMBAR_LEVELS if lv in per_level]
            if have:
                if len(have) == len(LOWER_LUMBAR_LEVELS):
                    left, right, both = (
                        float(np.mean([per_level[lv][i] for lv in have])) for i in range(3)
                    )
                else:
                    left = right = both = np.nan
                recs.append(_summary_record(subject, muscle, LOWER_LUMBAR_LABEL, metric, unit,
                                            left, right, both, len(have)))
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
    return out.reset_index()


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


def _summary_record(subject, muscle, level, metric, unit, left, right, both, n_levels):
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
    }

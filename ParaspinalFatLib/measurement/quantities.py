"""Grouped voxel statistics in a few vectorised passes (no Python loop per ROI).

Given one group id per voxel and the voxel values, :func:`grouped_stats`
returns per-group counts, NaN counts, mean, sample SD, median and percentiles,
and optionally the count at or above a threshold.

Conventions: SD is the sample SD (ddof = 1, as SPSS and Slicer's Segment
Statistics report); percentiles use linear interpolation between order
statistics (numpy's default, R type 7).  NaN and infinite voxels are excluded
from every statistic and counted in ``n_nan``.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from ..composition.base import FAT, LEAN, UNDEFINED, CompositionMethod, GroupContext
from .voxels import RoiVoxels


__all__ = ['QUANTILES', 'UNMEASURABLE_NOTE', 'grouped_stats', 'measure_groups', 'method_columns', 'unmeasurable_note']

#: output name -> quantile
QUANTILES = {"median": 0.5, "p05": 0.05, "p10": 0.10, "p90": 0.90, "p95": 0.95}
def grouped_stats(
    groups: np.ndarray,
    values: np.ndarray,
    n_groups: int,
    threshold: Optional[float] = None,
    quantiles: bool = True,
) -> Dict[str, np.ndarray]:
    """Statistics of ``values`` per group id in ``0 .. n_groups-1``.

    Parameters
    ----------
    groups : numpy.ndarray of int
        Group id of every voxel (same length as ``values``).
    values : numpy.ndarray of float
        Voxel values (NaN/inf allowed, excluded and counted).
    n_groups : int
        Number of groups (ids ``>= n_groups`` are not allowed).
    threshold : float, optional
        When given, ``n_above`` counts finite values ``>= threshold``.
    quantiles : bool
        Compute median, p05, p10, p90 and p95 (one sort of the voxels).

    Returns
    -------
    dict of numpy.ndarray
        ``n`` (all voxels), ``n_nan``, ``n_finite``, ``mean``, ``sd`` and, as
        requested, ``median``, ``p05``, ``p10``, ``p90``, ``p95``, ``n_above``; statistics of
        groups with no finite voxel are NaN (SD needs two).
    """
    groups = np.asarray(groups, dtype=np.intp)
    values = np.asarray(values, dtype=np.float64)
    n = np.bincount(groups, minlength=n_groups)
    finite = np.isfinite(values)
    if finite.all():
        g, v = groups, values
    else:
        g, v = groups[finite], values[finite]
    n_fin = np.bincount(g, minlength=n_groups)
    out: Dict[str, np.ndarray] = {"n": n, "n_nan": n - n_fin, "n_finite": n_fin}
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(g, weights=v, minlength=n_groups) / n_fin
        # two-pass SD: centre on the group mean first (no catastrophic cancellation)
        dev = v - mean[g]
        ss = np.bincount(g, weights=dev * dev, minlength=n_groups)
        sd = np.sqrt(ss / (n_fin - 1))
    mean[n_fin == 0] = np.nan
    sd[n_fin < 2] = np.nan
    out["mean"], out["sd"] = mean, sd
    if threshold is not None:
        out["n_above"] = np.bincount(g[v >= threshold], minlength=n_groups)
    if quantiles:
        out.update(_grouped_quantiles(g, v, n_fin, QUANTILES))
    return out


def _grouped_quantiles(g: np.ndarray, v: np.ndarray, counts: np.ndarray, qs: Dict[str, float]):
    """Linear-interpolated quantiles per group from the values sorted within each group.

    The values of each group in ascending order, as ``numpy.lexsort((v, g))`` orders them.
    Groups of 16 voxels or more on average (the rows of a per-level or per-slice table) are
    put together by a stable sort of their 16-bit ids (a radix sort), then each is sorted in
    place: no index sort of every value (2-3x faster).  Many smaller groups are sorted by
    value, then stably by group, in about half the time of ``lexsort``.

    The values are sorted in the narrowest type that holds every one of them exactly
    (:func:`_exact_narrow`): the same order and, converted back, the same float64 values.
    """
    group_type = np.int16 if counts.size <= np.iinfo(np.int16).max else np.intp
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    v = _exact_narrow(v)
    kind = "stable" if v.dtype == np.int16 else None  # numpy sorts 16-bit integers by radix when stable
    if counts.size * 16 <= v.size:
        sv = v[np.argsort(g.astype(group_type), kind="stable")]
        for lo, n in zip(starts.tolist(), counts.tolist()):
            sv[lo:lo + n].sort(kind=kind)
    else:
        by_value = np.argsort(v, kind=kind)
        sv = v[by_value[np.argsort(g.astype(group_type)[by_value], kind="stable")]]
    res = {}
    has = counts > 0
    for name, q in qs.items():
        out = np.full(counts.shape, np.nan)
        pos = q * (counts[has] - 1)
        lo = np.floor(pos).astype(np.intp)
        hi = np.minimum(lo + 1, counts[has] - 1)
        frac = pos - lo
        a = sv[starts[has] + lo].astype(np.float64)
        b = sv[starts[has] + hi].astype(np.float64)
        out[has] = a + (b - a) * frac
        res[name] = out
    return res


def _exact_narrow(values: np.ndarray) -> np.ndarray:
    """Finite float64 ``values`` as int16 or float32 when every value converts to that type and back
    unchanged (CT numbers; PDFF maps stored as float32 and used in %), else as they are.

    Sorting is then exact: the order of the values is kept and each sorted value converts back to
    itself.  (Only the sign of a zero can be lost to int16, and a quantile interpolated from a
    zero, ``a + (b - a) t`` with ``b >= a``, is +0.0 either way.)  numpy sorts float32 about twice
    as fast as float64 and int16 by radix (a stable sort), about ten times as fast.
    """
    if values.size < 256:
        return values
    with np.errstate(over="ignore"):  # a value beyond float32's range becomes inf: not equal, so kept as it is
        narrow = values.astype(np.float32)
    if not np.array_equal(narrow, values):
        return values
    if narrow.min() >= -32768.0 and narrow.max() <= 32767.0:
        whole = narrow.astype(np.int16)
        if np.array_equal(whole, narrow):
            return whole
    return narrow


def measure_groups(
    vox: RoiVoxels,
    select: Optional[np.ndarray],
    groups: np.ndarray,
    n_groups: int,
    method: CompositionMethod,
    names: Sequence[str],
    area_mm2: float,
    n_slices: np.ndarray,
    reference_values: Optional[List[Optional[np.ndarray]]] = None,
    codes_out: Optional[np.ndarray] = None,
    labels: Optional[Sequence[str]] = None,
    csa_mm2: Optional[np.ndarray] = None,
) -> Dict[str, np.ndarray]:
    """Statistics and composition of the selected voxels per group.

    Parameters
    ----------
    vox : RoiVoxels
        Gathered voxels (raw values, and water for Dixon).
    select : numpy.ndarray of bool or int, optional
        Which gathered voxels take part (None: all).
    groups : numpy.ndarray of int
        Group of each selected voxel (``0 .. n_groups-1``).
    n_groups : int
        Number of groups (table rows); every output array has this length,
        groups without voxels get count 0 and NaN statistics.
    method : CompositionMethod
        How values are made and voxels classified.
    names : sequence of str
        Muscle name of each group (for method warnings).
    area_mm2 : float
        In-plane voxel area (mm^2).
    n_slices : numpy.ndarray
        Slices per group (CSA = count x area / n_slices, i.e. the mean area
        per slice).  CSA counts every voxel of the group, NaN voxels
        included.
    reference_values : list, optional
        Per group, reference fat voxel values (T1/T2 ``reference`` classifier).
    codes_out : numpy.ndarray of int8, optional
        Length of the gathered voxels; the class codes of the selected voxels
        are written into it (for the fat/lean labelmap and QC pictures).
    labels : sequence of str, optional
        Per group, how refusal messages name it (``"segment 'MF_L' (L4/5)"``).
    csa_mm2 : numpy.ndarray, optional
        Per group, the CSA (mm^2) measured another way (the partial-volume
        area of an oblique plane, :mod:`.planes`); replaces ``count x area /
        n_slices``, and the fat/lean/undefined CSAs are then that CSA times
        each class's share of the group's voxels.

    Returns
    -------
    dict of numpy.ndarray
        The columns of :data:`~ParaspinalFatLib.schemas.COMPOSITION_COLUMNS`,
        one value per group: counts (``n_nan`` counts voxels whose raw value,
        or water value for Dixon, is not finite), ``*_csa_mm2`` in mm^2, the
        statistics of the method's voxel values in ``method.unit`` (% for
        PDFF/Dixon), ``fat_area_ratio`` as a fraction 0..1 of the classified
        voxels, ``threshold_low``/``threshold_high``, and ``warnings`` (object
        array of ``"; "``-joined messages).  Composition columns are NaN for
        a ``scalar`` method.
    """
    raw = vox.values_at(select)
    water = None
    if vox.water is not None:
        water = vox.water if select is None else vox.water[select]
    values = method.voxel_values(raw, water)
    st = grouped_stats(groups, values, n_groups)
    raw_finite = np.isfinite(raw) if water is None else np.isfinite(raw) & np.isfinite(water)
    n_nan = np.bincount(groups[~raw_finite], minlength=n_groups)
    n_below = np.bincount(groups[raw_finite & method.below_noise(raw, water)], minlength=n_groups)
    ctx = GroupContext(list(names), reference_values, None if labels is None else list(labels))
    class_raw, class_water, class_values = raw, water, values
    if vox.class_value is not None:  # plane pixels: classified by their nearest voxel's values (see RoiVoxels)
        class_raw = vox.class_value if select is None else vox.class_value[select]
        if vox.class_water is not None:
            class_water = vox.class_water if select is None else vox.class_water[select]
        class_values = method.voxel_values(class_raw, class_water)
    codes, thresholds, notes = method.classify(class_values, groups, n_groups, ctx)
    if codes_out is not None:
        codes_out[slice(None) if select is None else select] = codes
    count = {c: np.bincount(groups[codes == c], minlength=n_groups) for c in (FAT, LEAN, UNDEFINED)}
    classified = count[FAT] + count[LEAN] + count[UNDEFINED]
    n = st["n"]
    cols: Dict[str, np.ndarray] = {
        "n_voxels": n,
        "n_nan": n_nan,
        "n_below_noise": n_below,
        "csa_mm2": n * area_mm2 / n_slices if csa_mm2 is None else np.asarray(csa_mm2, dtype=float),
        "mean": st["mean"],
        "median": st["median"],
        "sd": st["sd"],
        "p05": st["p05"],
        "p10": st["p10"],
        "p90": st["p90"],
        "p95": st["p95"],
    }
    nan = np.full(n_groups, np.nan)
    if method.has_composition:
        # a group without any classified voxel has no fat/lean split: NaN, never 0 (see unmeasurable_note)
        measurable = classified > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            for col, code in (("fat_csa_mm2", FAT), ("lean_csa_mm2", LEAN), ("undefined_csa_mm2", UNDEFINED)):
                if csa_mm2 is None:
                    cols[col] = np.where(measurable, count[code] * area_mm2 / n_slices, np.nan)
                else:  # the class's share of the pixels, applied to the partial-volume CSA
                    cols[col] = np.where(measurable, cols["csa_mm2"] * count[code] / np.maximum(n, 1), np.nan)
            cols["fat_area_ratio"] = np.where(measurable, count[FAT] / np.maximum(classified, 1), np.nan)
        cols["fat_fraction_pct"] = st["mean"] if method.fat_fraction_is_mean_value else nan.copy()
        for g in np.flatnonzero(~measurable):
            notes[g].append(unmeasurable_note(int(n[g]), int(n_nan[g]), int(n_below[g]), method))
    else:
        for c in ("fat_csa_mm2", "lean_csa_mm2", "undefined_csa_mm2", "fat_area_ratio", "fat_fraction_pct"):
            cols[c] = nan.copy()
    cols.update(method.extra_columns(groups, n_groups, class_values, class_raw, class_water, codes))
    cols.update(thresholds)
    cols["warnings"] = np.array(["; ".join(w) for w in notes], dtype=object)
    return cols


#: start of the row warning of a group whose fat/lean split is not measurable
UNMEASURABLE_NOTE = "fat/lean composition not measurable"


def unmeasurable_note(n_voxels: int, n_nan: int, n_below_noise: int, method: CompositionMethod) -> str:
    """Row warning of a group in which no voxel could be classified as fat, lean or undefined.

    Such a group's fat/lean/undefined CSA and fat area ratio are NaN (not 0),
    and so are its grades and every summary value built on them; ``csa_mm2``
    stays measured (the ROI has its voxels).

    Parameters
    ----------
    n_voxels, n_nan, n_below_noise : int
        The group's voxel counts (all, NaN/inf, below the Dixon noise floor).
    method : CompositionMethod
        The method (its ``noise_floor`` parameter is named when voxels were
        below it).

    Returns
    -------
    str
        The message, starting with :data:`UNMEASURABLE_NOTE`.
    """
    if n_voxels == 0:
        return f"{UNMEASURABLE_NOTE} (NaN): the ROI has no voxel on the measured slice(s)"
    parts = []
    if n_nan:
        parts.append(f"{n_nan} NaN/inf")
    if n_below_noise:
        floor = method.params.get("noise_floor")
        where = f" F+W < {floor:g}" if isinstance(floor, (int, float)) else ""
        parts.append(f"{n_below_noise} below the noise floor{where}")
    if n_nan + n_below_noise >= n_voxels:
        return (f"{UNMEASURABLE_NOTE} (NaN): all {n_voxels} voxels are excluded ({', '.join(parts)}); "
                f"is the ROI on zero padding or outside the scanned volume?")
    excluded = f" ({', '.join(parts)} excluded)" if parts else ""
    return f"{UNMEASURABLE_NOTE} (NaN): none of the {n_voxels} voxels could be classified{excluded}"


def method_columns(method: CompositionMethod, n: int) -> Dict[str, list]:
    """The :data:`~ParaspinalFatLib.schemas.METHOD_COLUMNS` of ``n`` table rows.

    Parameters
    ----------
    method : CompositionMethod
        The method every row was measured with.
    n : int
        Number of rows.

    Returns
    -------
    dict of str to list
        ``map_kind``, ``unit``, ``fat_threshold_pct`` (NaN when the method has
        none), ``pdff_scale`` (storage scale, empty when not a PDFF map) and
        ``method_params`` (JSON of all parameters), each a list of ``n``
        equal values, ready to pass to :class:`pandas.DataFrame`.
    """
    return {
        "map_kind": [method.kind] * n,
        "unit": [method.unit] * n,
        "fat_threshold_pct": [method.params.get("fat_threshold_pct", np.nan)] * n,
        "pdff_scale": [method.pdff_scale] * n,
        "method_params": [method.params_json()] * n,
    }

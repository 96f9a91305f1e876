"""The study's subject table: one row per subject (x rater x session), clinical columns
and per-subject muscle variables, with a codebook saying what every column is.

From the long table (``measurements.csv``: key columns, ``case_id``, then the
per-level columns of :data:`ParaspinalFatLib.schemas.LEVEL_COLUMNS`) and the
manifest's clinical columns, :func:`subjects_table` builds

* one row per subject x rater x session (the key columns present), naturally
  sorted (``s2`` before ``s10``; by subject, then session, then rater);
* the clinical columns, renamed by :func:`~.variables.safe_column_name`
  (``"BMI (kg/m2)"`` -> ``bmi_kg_m2``; ``_clin`` appended when the name is a
  muscle variable's), their original header kept as the codebook label;
* per muscle x metric (the metrics of the map kind,
  :data:`~.variables.METRICS_BY_MAP_KIND`): the value per level and side, the
  left-right mean per level, the mean over L3/4, L4/5 and L5/S1 per side (NaN
  unless all three levels exist) and the left-right mean of that, named as in
  :mod:`~.variables` (``mf_pdff_mean``, ``ps_csa_L4_5_left``).  Columns exist
  for what the cohort measured: left/right columns for muscles measured by
  side (a bilateral ROI without side gives only the unsided column), the
  ``mean`` columns for muscles that at least one case measured at all three
  levels (NaN for the cases that did not).

Several segments of one muscle, side and level (e.g. longissimus and
iliocostalis both mapped to ``erector_spinae``) are pooled as
:func:`ParaspinalFatLib.measurement.summary.summarize` pools them (areas add,
means weighted by the finite voxels, the fat area ratio by the classified
area); that function computes every value here, so the subject table and each
case's ``summary.csv`` agree to the bit.  A value that is not measurable stays
NaN (never 0).

Grades (Goutallier, Kjaer) are ordinal: a level x side value is the grade of the
ROI as measured (with the run's cut-offs); segments pooled into one ROI keep
their grade when they all have the same one (the pooled fat % lies between
theirs, and the grade rises with the fat %), else NaN with a
:class:`~ParaspinalFatLib.errors.ParaspinalFatWarning` (the pooled grade needs
the run's cut-offs, which the long table does not hold).  Left-right and level
means of grades are means of grades (not grades).

Several maps of one subject (a ``map_name`` key, e.g. ``FA`` and ``ADC``) are
pivoted into the names: the map's tag replaces its value metric
(``vl_fa_L4_5_left``), other metrics get the tag as prefix
(``vl_fa_fatpct_...``), and ``csa`` is kept once, taken from the first map
(natural order of ``map_name``) that has a value for that ROI.

:func:`one_per_subject` reduces repeated readings to one row per subject for
the analyses; :func:`write_subject_tables` is the cohort runner's ``assemble``
step (``subjects.csv``, ``codebook.csv``, ``subjects.xlsx``, ``subjects.sav``).
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from ..anatomy.level_names import level_sort_key
from ..dependencies import is_installed, require
from ..errors import InputError, MissingDependencyError, ParaspinalFatWarning
from ..measurement.summary import summarize
from ..schemas import LOWER_LUMBAR_LABEL, LOWER_LUMBAR_LEVELS
from .variables import (
    MAX_NAME_LENGTH, METRICS, METRICS_BY_MAP_KIND, MUSCLE_ABBREVIATIONS, key_text, level_tag, map_metric, map_tag,
    natural_key, safe_column_name, variable_label, variable_name,
)

__all__ = [
    "KEY_COLUMNS", "MAP_KEY", "CODEBOOK_COLUMNS", "REPEATED_CHOICES", "subjects_table",
    "one_per_subject", "first_reading_rows", "write_subject_tables",
]

#: key columns that make the rows of the subject table (those present are used)
KEY_COLUMNS: Tuple[str, ...] = ("subject", "rater", "session")
#: key column of several maps per subject: pivoted into the variable names, never a row
MAP_KEY = "map_name"
#: columns of ``codebook.csv``
CODEBOOK_COLUMNS: List[str] = [
    "variable", "label", "unit", "kind", "muscle", "metric", "level", "side", "map_name", "source", "how",
]
#: values of ``repeated`` in :func:`one_per_subject`
REPEATED_CHOICES: Tuple[str, ...] = ("first", "mean")

_SORT_PRIORITY = ("subject", "session", "rater")
_WEIGHT_COLUMNS = ("n_voxels", "n_nan", "n_below_noise", "fat_csa_mm2", "lean_csa_mm2", "undefined_csa_mm2")
_METRIC_ORDER = tuple(METRICS)
_SIDE_ORDER = {"": 0, "left": 1, "right": 2}
_KEY_LABELS = {"subject": "Subject", "rater": "Rater (repeated reading)", "session": "Session (repeated reading)"}
_UNIT_IN_HEADER = re.compile(r"[(\[]\s*([^()\[\]]+?)\s*[)\]]\s*\Z")
_MAX_LISTED = 5


# =============================================================================
# keys
# =============================================================================
def _key_frame(df: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """The key columns of ``df`` as text (index 0..n-1)."""
    return pd.DataFrame({k: np.array([key_text(v) for v in df[k].tolist()], dtype=object) for k in keys},
                        index=pd.RangeIndex(len(df)))


def _sort_keys(keys: Sequence[str]) -> List[str]:
    """Keys in sort priority: subject, session, rater, then the others as given."""
    return [k for k in _SORT_PRIORITY if k in keys] + [k for k in keys if k not in _SORT_PRIORITY]


def _natural_order(frame: pd.DataFrame, keys: Sequence[str]) -> np.ndarray:
    """Row positions of ``frame`` sorted naturally by ``keys`` (stable)."""
    cols = [frame[k].tolist() for k in _sort_keys(keys)]
    return np.array(sorted(range(len(frame)), key=lambda i: tuple(natural_key(c[i]) for c in cols)), dtype=np.int64)


def first_reading_rows(frame: pd.DataFrame, key_columns: Sequence[str] = ("session", "rater")) -> np.ndarray:
    """Which rows belong to each subject's first reading, by the rule of :func:`one_per_subject`.

    Parameters
    ----------
    frame : pandas.DataFrame
        Any table with a ``subject`` column (the subject table, or the long
        measurements table with several rows per reading).
    key_columns : sequence of str
        Reading keys; those present order the readings: lowest session, then
        lowest rater, in natural order (``"s2"`` before ``"s10"``).

    Returns
    -------
    numpy.ndarray of bool
        One entry per row: True for the rows of each subject's first reading
        (all rows when no reading key is present).
    """
    keys = [k for k in _sort_keys(key_columns) if k != "subject" and k in frame.columns]
    if not keys:
        return np.ones(len(frame), dtype=bool)
    keys_df = _key_frame(frame, ["subject"] + keys)
    reading = [tuple(natural_key(v) for v in row) for row in keys_df[keys].itertuples(index=False)]
    first: Dict[str, tuple] = {}
    for subject, key in zip(keys_df["subject"], reading):
        if subject not in first or key < first[subject]:
            first[subject] = key
    return np.array([first[subject] == key for subject, key in zip(keys_df["subject"], reading)], dtype=bool)


def _row_keys(measurements: pd.DataFrame, key_columns: Sequence[str]) -> List[str]:
    if "subject" not in measurements.columns:
        raise InputError("measurements: no 'subject' column; the long table needs the key columns "
                         "(subject, then rater/session when the manifest has them)")
    return ["subject"] + [k for k in key_columns
                          if k not in ("subject", MAP_KEY) and k in measurements.columns]


def _describe_key(row: Dict[str, str], keys: Sequence[str]) -> str:
    text = f"subject {row['subject']!r}"
    extra = [f"{k} {row[k]!r}" for k in keys if k != "subject"]
    return text + (f" ({', '.join(extra)})" if extra else "")


# =============================================================================
# the subject table
# =============================================================================
def subjects_table(measurements: pd.DataFrame, clinical: Optional[pd.DataFrame] = None, *,
                   key_columns: Sequence[str] = KEY_COLUMNS) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """One row per subject x rater x session: clinical columns and muscle variables.

    Parameters
    ----------
    measurements : pandas.DataFrame
        The long table: key columns (text), ``case_id``, and the per-level
        columns ``muscle``, ``side``, ``level``, ``map_kind``, ``unit``,
        ``csa_mm2``, ``fat_fraction_pct``, ``fat_area_ratio``, ``fat_csa_mm2``,
        ``lean_csa_mm2``, ``mean``, ``goutallier``, ``kjaer`` and the pooling
        weights ``n_voxels``, ``n_nan``, ``n_below_noise``,
        ``undefined_csa_mm2`` (a metric whose column is absent is left out);
        ``map_name`` when a subject has several maps.  Rows without a muscle or
        a level name no variable.
    clinical : pandas.DataFrame, optional
        One row per case: ``case_id`` (ignored), the key columns and the
        clinical columns (typed; any header).  A subject's clinical values must
        agree across its rows.  Rows whose keys have no measurement are left
        out (a subject whose every case failed is in ``errors.csv``, not here).
    key_columns : sequence of str
        Keys making the rows; those present in ``measurements`` are used
        (``subject`` always; ``map_name`` is never a row key).

    Returns
    -------
    subjects : pandas.DataFrame
        Key columns (text), clinical columns (safe names, their types), muscle
        variables (float; NaN where not measured).  Rows naturally sorted by
        subject, session, rater.
    codebook : pandas.DataFrame
        One row per column of ``subjects`` (:data:`CODEBOOK_COLUMNS`):
        ``kind`` is ``key``, ``clinical`` or ``muscle``; ``level`` is the
        canonical level or ``mean``; ``side`` is ``left``, ``right`` or ``""``
        (left-right mean); ``source`` the per-level column (or the clinical
        header); ``how`` says how the value was computed.

    Raises
    ------
    InputError
        A missing ``subject`` / ``muscle`` / ``side`` / ``level`` /
        ``map_kind`` column, a non-canonical level, an unknown map kind,
        several map kinds for one subject x rater x session without a
        ``map_name``, ``clinical`` lacking a key column, or clinical values that
        disagree within one subject's rows (all such subjects listed).

    Warns
    -----
    ParaspinalFatWarning
        Pooled segments with different grades (grade NaN there), or one
        variable measured in different units across subjects.
    """
    if not isinstance(measurements, pd.DataFrame):
        raise InputError(f"measurements must be a pandas DataFrame (the long table), got "
                         f"{type(measurements).__name__}")
    keys = _row_keys(measurements, key_columns)
    keys_df = _key_frame(measurements, keys)
    rows = keys_df.drop_duplicates(ignore_index=True)
    rows = rows.iloc[_natural_order(rows, keys)].reset_index(drop=True)
    rk_of = {tuple(r): i for i, r in enumerate(rows.itertuples(index=False, name=None))}
    rk = np.array([rk_of[tuple(r)] for r in keys_df.itertuples(index=False, name=None)], dtype=np.int64)

    values, codebook_rows = _muscle_variables(measurements, keys, rows, rk)
    muscle_names = list(values.columns)
    clin, clin_rows = _clinical_columns(clinical, keys, key_columns, rows, muscle_names)
    key_rows = [_codebook_row(k, label=_KEY_LABELS.get(k, k), kind="key", source=k,
                              how="manifest key column (text)") for k in keys]
    subjects = pd.concat([rows, clin, values], axis=1)
    codebook = pd.DataFrame.from_records(key_rows + clin_rows + codebook_rows, columns=CODEBOOK_COLUMNS)
    return subjects, codebook


def _codebook_row(variable: str, **fields: str) -> Dict[str, str]:
    row = {c: "" for c in CODEBOOK_COLUMNS}
    row["variable"] = variable
    row.update({k: ("" if v is None else str(v)) for k, v in fields.items()})
    return row


def _clinical_columns(clinical: Optional[pd.DataFrame], keys: List[str], key_columns: Sequence[str],
                      rows: pd.DataFrame, muscle_names: List[str]) -> Tuple[pd.DataFrame, List[Dict[str, str]]]:
    """The clinical columns for ``rows`` (safe names) and their codebook rows."""
    if clinical is None:
        return pd.DataFrame(index=rows.index), []
    if not isinstance(clinical, pd.DataFrame):
        raise InputError(f"clinical must be a pandas DataFrame (one row per case), got {type(clinical).__name__}")
    missing = [k for k in keys if k not in clinical.columns]
    if missing:
        raise InputError(f"clinical table: no key column {', '.join(repr(k) for k in missing)}; it needs the "
                         f"same key columns as the measurements ({', '.join(keys)})")
    exclude = set(keys) | set(key_columns) | {"case_id", MAP_KEY}
    columns = [c for c in clinical.columns if c not in exclude]
    table = pd.concat([_key_frame(clinical, keys), clinical[columns].reset_index(drop=True)], axis=1)
    if columns and len(table):
        counts = table.groupby(keys, sort=False, dropna=False)[columns].nunique(dropna=False)
        bad = counts[(counts > 1).any(axis=1)]
        if len(bad):
            shown = []
            for key, row in bad.head(_MAX_LISTED).iterrows():
                key = key if isinstance(key, tuple) else (key,)
                cols = [str(c) for c in columns if row[c] > 1]
                shown.append(f"{_describe_key(dict(zip(keys, key)), keys)}: {', '.join(cols)}")
            more = f" and {len(bad) - _MAX_LISTED} more" if len(bad) > _MAX_LISTED else ""
            raise InputError(f"clinical table: values differ between the rows of one subject: "
                             f"{'; '.join(shown)}{more}; give each subject one value per clinical column")
    first = table.drop_duplicates(keys, ignore_index=True)
    merged = rows.merge(first, on=keys, how="left", sort=False)
    used = set(keys) | set(muscle_names)
    muscle_lower = {n.lower() for n in muscle_names}
    names, cb = [], []
    for col in columns:
        probe = safe_column_name(str(col), set())
        if probe.lower() in muscle_lower:
            probe = probe[:MAX_NAME_LENGTH - len("_clin")].rstrip("_") + "_clin"
        name = safe_column_name(probe, used)
        names.append(name)
        m = _UNIT_IN_HEADER.search(str(col))
        cb.append(_codebook_row(name, label=str(col), unit=m.group(1) if m else "", kind="clinical",
                                source=str(col), how="manifest column; one value per subject"))
    out = merged[columns].copy()
    out.columns = names
    out.index = rows.index
    return out, cb


def _muscle_variables(measurements: pd.DataFrame, keys: List[str], rows: pd.DataFrame,
                      rk: np.ndarray) -> Tuple[pd.DataFrame, List[Dict[str, str]]]:
    """The muscle variables (one column each, rows as ``rows``) and their codebook rows."""
    m = measurements
    if len(m) == 0:
        return pd.DataFrame(index=rows.index), []
    missing = [c for c in ("muscle", "side", "level", "map_kind") if c not in m.columns]
    if missing:
        raise InputError(f"measurements: no column {', '.join(repr(c) for c in missing)}; the long table "
                         f"needs the per-level columns (ParaspinalFatLib.schemas.LEVEL_COLUMNS)")
    n = len(m)
    maps = (np.array([key_text(v) for v in m[MAP_KEY].tolist()], dtype=object) if MAP_KEY in m.columns
            else np.full(n, "", dtype=object))
    has_map = bool((maps != "").any())
    map_order = sorted(set(maps.tolist()), key=lambda v: (v != "", natural_key(v)))
    map_rank = {v: i for i, v in enumerate(map_order)}
    tags = _map_tags(map_order) if has_map else {"": None}

    # one group per subject x rater x session x map (one case)
    gid_codes, gid_uniques = pd.factorize(pd.Series(rk * len(map_order)
                                                    + np.array([map_rank[v] for v in maps.tolist()])))
    gid = np.asarray(gid_codes, dtype=np.int64)
    group_key = np.asarray(gid_uniques, dtype=np.int64)
    group_rk, group_map = group_key // len(map_order), [map_order[int(i)] for i in group_key % len(map_order)]
    kinds = np.array([key_text(v).strip().lower() for v in m["map_kind"].tolist()], dtype=object)
    group_kind = _group_kinds(gid, kinds, group_rk, group_map, rows, keys)

    muscle = m["muscle"].astype(object).where(m["muscle"].notna(), None).to_numpy(dtype=object)
    level = m["level"].astype(object).where(m["level"].notna(), None).to_numpy(dtype=object)
    side = np.array([key_text(v) for v in m["side"].tolist()], dtype=object)
    for lv in {v for v in level.tolist() if v is not None}:
        level_tag(lv)  # refuses a level that cannot name a variable
    usable = np.array([mu is not None and lv is not None for mu, lv in zip(muscle.tolist(), level.tolist())])
    label = np.array([f"g{g:09d}" for g in gid.tolist()], dtype=object)
    frame = pd.DataFrame({"subject": label, "muscle": muscle, "side": side, "level": level})
    if "unit" in m.columns:
        frame["unit"] = m["unit"].astype(object).to_numpy()
    if "segment" in m.columns:
        frame["segment"] = m["segment"].astype(object).to_numpy()
    kinds_present = sorted(set(group_kind))
    wanted = {METRICS[t].column for k in kinds_present for t in METRICS_BY_MAP_KIND[k]}
    value_columns = [c for c in dict.fromkeys(METRICS[t].column for t in METRICS if not METRICS[t].grade)
                     if c in wanted and c in m.columns]
    grade_columns = [c for c in ("goutallier", "kjaer") if c in wanted and c in m.columns]
    for c in dict.fromkeys(value_columns + grade_columns + [w for w in _WEIGHT_COLUMNS if w in m.columns]):
        frame[c] = _as_float(m[c], c)
    frame = frame[usable].reset_index(drop=True)

    parts = []
    if value_columns and len(frame):
        parts.append(summarize(frame, metrics=value_columns))
    if grade_columns and len(frame):
        parts.append(_grade_summary(frame, grade_columns, rows, keys, group_rk, group_map))
    if not parts:
        return pd.DataFrame(index=rows.index), []
    tidy = pd.concat(parts, ignore_index=True)
    long = tidy.melt(id_vars=["subject", "muscle", "level", "metric", "unit", "n_levels"],
                     value_vars=["left", "right", "lr_mean"], var_name="side", value_name="value")
    long["side"] = long["side"].map({"left": "left", "right": "right", "lr_mean": ""})
    is_mean = (long["level"] == LOWER_LUMBAR_LABEL).to_numpy()
    long["level"] = long["level"].where(~is_mean, "mean")
    label_codes, label_uniques = pd.factorize(long["subject"])
    g = np.array([int(u[1:]) for u in label_uniques], dtype=np.int64)[label_codes]
    group_map_arr = pd.Series(group_map, dtype=object).to_numpy()
    long["rk"] = group_rk[g]
    long["map"] = group_map_arr[g]
    long["kind"] = pd.Series(group_kind, dtype=object).to_numpy()[g]
    long["map_rank"] = np.array([map_rank[v] for v in group_map], dtype=np.int64)[g]
    pairs = pd.MultiIndex.from_arrays([long["muscle"], long["map"]])
    # the L3/4-L5/S1 mean only for muscles (of a map) that some case measured at all three levels
    full = pairs[is_mean & (long["n_levels"] == len(LOWER_LUMBAR_LEVELS)).to_numpy()].unique()
    # left/right columns only for muscles measured by side somewhere in the cohort
    by_side = frame["side"].isin(["left", "right"]).to_numpy()
    frame_g = gid[usable]
    sided = pd.MultiIndex.from_arrays([frame["muscle"][by_side], group_map_arr[frame_g[by_side]]]).unique()
    keep = (~is_mean | pairs.isin(full)) & ((long["side"] == "").to_numpy() | pairs.isin(sided))
    long = long[keep]
    mapping = pd.DataFrame.from_records(
        [(k, METRICS[t].column, t, METRICS[t].factor) for k in kinds_present for t in METRICS_BY_MAP_KIND[k]],
        columns=["kind", "metric", "tag", "factor"])
    long = long.merge(mapping, on=["kind", "metric"], how="inner", sort=False)
    long["value"] = long["value"].astype(float) * long["factor"]
    long["vmap"] = long["map"].where(long["tag"] != "csa", "")
    return _pivot(long, rows, tags, map_rank)


def _as_float(values: pd.Series, column: str) -> np.ndarray:
    try:
        return values.astype("float64").to_numpy()
    except (TypeError, ValueError):
        raise InputError(f"measurements: column {column!r} holds values that are not numbers; "
                         f"it must be numeric (empty for not measured)") from None


def _map_tags(map_order: List[str]) -> Dict[str, Optional[str]]:
    """map name -> unique tag (``""`` -> None)."""
    tags: Dict[str, Optional[str]] = {}
    used: set = set()
    for name in map_order:
        if name == "":
            tags[name] = None
            continue
        tag = map_tag(name)
        base, k = tag, 1
        while tag in used or tag in METRICS:
            k += 1
            tag = f"{base}{k}"
        used.add(tag)
        tags[name] = tag
    return tags


def _group_kinds(gid: np.ndarray, kinds: np.ndarray, group_rk: np.ndarray, group_map: List[str],
                 rows: pd.DataFrame, keys: List[str]) -> List[str]:
    """The map kind of every group (one case); refuses mixed or unknown kinds."""
    pairs = pd.DataFrame({"gid": gid, "kind": kinds}).drop_duplicates()
    per_group = pairs.groupby("gid", sort=True)["kind"].agg(list)
    out: List[str] = []
    for g, found in zip(per_group.index.tolist(), per_group.tolist()):
        if len(found) > 1 or found[0] not in METRICS_BY_MAP_KIND:
            where = _describe_key(rows.iloc[int(group_rk[g])].to_dict(), keys)
            where += f", map_name {group_map[g]!r}" if group_map[g] else ""
            if len(found) > 1:
                raise InputError(f"measurements: {where} has rows of several map kinds "
                                 f"({', '.join(sorted(found))}); give each map of a subject its own map_name "
                                 f"in the manifest")
            raise InputError(f"measurements: {where} has map kind {found[0]!r}; expected one of "
                             f"{', '.join(METRICS_BY_MAP_KIND)}")
        out.append(found[0])
    return out


def _grade_summary(frame: pd.DataFrame, columns: List[str], rows: pd.DataFrame, keys: List[str],
                   group_rk: np.ndarray, group_map: List[str]) -> pd.DataFrame:
    """Tidy summary (as :func:`summarize`) of the grades, one grade per muscle x side x level.

    Segments pooled into one ROI keep their common grade; different grades
    give NaN (and a warning).
    """
    cells = ["subject", "muscle", "side", "level"]
    agg = frame.groupby(cells, sort=False, dropna=False)[columns].agg(["min", "max", "count"])
    reduced = agg.index.to_frame(index=False)
    conflicts = []
    for c in columns:
        lo, hi, count = (agg[(c, s)].to_numpy() for s in ("min", "max", "count"))
        differ = (count > 0) & (lo != hi)
        reduced[c] = np.where(differ, np.nan, lo)
        for i in np.flatnonzero(differ).tolist():
            conflicts.append((reduced.loc[i, "subject"], reduced.loc[i, "muscle"], reduced.loc[i, "side"],
                              reduced.loc[i, "level"], c, lo[i], hi[i]))
    if conflicts:
        shown = []
        for subject, mu, sd, lv, c, lo, hi in conflicts[:_MAX_LISTED]:
            g = int(subject[1:])
            where = _describe_key(rows.iloc[int(group_rk[g])].to_dict(), keys)
            where += f", map_name {group_map[g]!r}" if group_map[g] else ""
            shown.append(f"{where} {mu} {sd or 'no side'} {lv} {c} {lo:g}-{hi:g}")
        more = f" and {len(conflicts) - _MAX_LISTED} more" if len(conflicts) > _MAX_LISTED else ""
        warnings.warn(
            f"subject table: segments pooled into one muscle/side/level have different grades, so the "
            f"grade of the pooled ROI is not known without the run's cut-offs and is NaN: "
            f"{'; '.join(shown)}{more}. Use the pooled fat % variables, or segment the muscle as one ROI.",
            ParaspinalFatWarning, stacklevel=4)
    return summarize(reduced, metrics=columns)


def _level_rank(level: str) -> Tuple:
    return (0,) if level == "mean" else (1,) + tuple(level_sort_key(level))


def _muscle_rank(muscle: str) -> Tuple:
    order = list(MUSCLE_ABBREVIATIONS)
    return (0, order.index(muscle), "") if muscle in order else (1, 0, muscle)


def _pivot(long: pd.DataFrame, rows: pd.DataFrame, tags: Dict[str, Optional[str]],
           map_rank: Dict[str, int]) -> Tuple[pd.DataFrame, List[Dict[str, str]]]:
    """Wide muscle variables and their codebook rows from the long values."""
    combo_cols = ["vmap", "muscle", "tag", "level", "side"]
    codes, uniques = pd.MultiIndex.from_frame(long[combo_cols]).factorize()
    combos = pd.DataFrame(list(uniques), columns=combo_cols)
    order = sorted(range(len(combos)), key=lambda i: (
        _muscle_rank(combos.at[i, "muscle"]), combos.at[i, "tag"] != "csa",
        map_rank.get(combos.at[i, "vmap"], -1),
        _METRIC_ORDER.index(combos.at[i, "tag"]), _level_rank(combos.at[i, "level"]),
        _SIDE_ORDER[combos.at[i, "side"]]))
    column_of = np.empty(len(combos), dtype=np.int64)
    column_of[order] = np.arange(len(combos))
    combos = combos.iloc[order].reset_index(drop=True)
    names: List[str] = []
    used: set = set()
    for vmap, mu, tag, lv, sd in combos.itertuples(index=False, name=None):
        name = variable_name(mu, map_metric(tag, tags.get(vmap)), lv, sd or None)
        base, k = name, 1
        while name.lower() in used:
            k += 1
            suffix = f"_{k}"
            name = base[:MAX_NAME_LENGTH - len(suffix)] + suffix
        used.add(name.lower())
        names.append(name)
    # values: one per row x variable; csa of several maps: the first map (natural order) with a value
    col = column_of[np.asarray(codes)]
    rk = long["rk"].to_numpy(dtype=np.int64)
    value = long["value"].to_numpy(dtype=float)
    rank = long["map_rank"].to_numpy(dtype=np.int64)
    ok = np.flatnonzero(np.isfinite(value))
    ok = ok[np.lexsort((rank[ok], col[ok], rk[ok]))]
    cell = rk[ok] * len(names) + col[ok]
    _, first = np.unique(cell, return_index=True)
    matrix = np.full((len(rows), len(names)), np.nan)
    matrix[rk[ok[first]], col[ok[first]]] = value[ok[first]]
    wide = pd.DataFrame(matrix, columns=names, index=rows.index)
    # units: fixed by the metric, or the table's unit of the map
    units: Dict[str, List[str]] = {}
    free = np.array([METRICS[t].unit is None for t in combos["tag"]], dtype=bool)[col]
    seen = pd.DataFrame({"col": col[free], "unit": long["unit"].to_numpy(dtype=object)[free]}).drop_duplicates()
    for c, unit in seen.itertuples(index=False, name=None):
        u = key_text(unit)
        if u and u not in units.setdefault(names[c], []):
            units[names[c]].append(u)
    mixed = {v: u for v, u in units.items() if len(u) > 1}
    if mixed:
        shown = "; ".join(f"{v}: {', '.join(u)}" for v, u in list(mixed.items())[:_MAX_LISTED])
        warnings.warn(f"subject table: these variables were measured in different units in different cases "
                      f"and mix them: {shown}. Give every case of one map the same unit.",
                      ParaspinalFatWarning, stacklevel=4)
    codebook = []
    has_maps = len(map_rank) > 1 or "" not in map_rank
    for (vmap, mu, tag, lv, sd), var in zip(combos.itertuples(index=False, name=None), names):
        metric = METRICS[tag]
        unit = metric.unit if metric.unit is not None else " | ".join(units.get(var, []))
        codebook.append(_codebook_row(
            var, label=variable_label(mu, tag, lv, sd or None, vmap or None), unit=unit, kind="muscle",
            muscle=mu, metric=tag, level=lv, side=sd, map_name=vmap, source=metric.column,
            how=_how(tag, lv, sd, has_maps=has_maps)))
    return wide, codebook


def _how(tag: str, level: str, side: str, has_maps: bool) -> str:
    """The codebook's ``how`` text of one muscle variable."""
    metric = METRICS[tag]
    if level == "mean" and side:
        where = f"mean over L3/4, L4/5, L5/S1 of the {side} values; NaN unless all three levels exist"
    elif level == "mean":
        where = ("mean over L3/4, L4/5, L5/S1 of the left and right values (the mean of the left and right "
                 "three-level means); NaN unless all three levels exist on both sides")
    elif side:
        where = f"{side} side at {level}"
    else:
        where = (f"(left + right) / 2 at {level}; NaN unless both sides were measured (a bilateral ROI "
                 f"without side: its own value)")
    if metric.grade:
        what = (f"{metric.label} of the ROI as measured (the run's cut-offs); segments pooled into one ROI: "
                f"their common grade, NaN when they differ")
        if level == "mean" or not side:
            what += "; a mean of grades, not a grade"
    elif metric.column.endswith("csa_mm2"):
        what = f"{metric.column}; several segments of one muscle, side and level: areas added"
    elif tag == "fatpct":
        what = ("100 x fat_area_ratio (fat / classified voxels); several segments: pooled over their "
                "classified area")
    else:
        what = f"{metric.column}; several segments: mean weighted by their finite voxels"
    if tag == "csa" and has_maps:
        what += "; taken from the first map (natural order of map_name) with a value for this ROI"
    return f"{where}; {what}"


# =============================================================================
# one row per subject
# =============================================================================
def one_per_subject(subjects: pd.DataFrame, *, repeated: str = "first",
                    key_columns: Sequence[str] = KEY_COLUMNS) -> pd.DataFrame:
    """One row per subject from a subject table with repeated readings.

    Parameters
    ----------
    subjects : pandas.DataFrame
        A table of :func:`subjects_table` (or ``subjects.csv`` read back).
    repeated : {"first", "mean"}
        ``"first"``: the reading with the lowest session, then the lowest
        rater (natural order: ``"2"`` before ``"10"``; a missing value last).
        ``"mean"``: every numeric column averaged over the subject's readings
        (NaN readings skipped: the mean of the readings that have a value;
        NaN when none has); a column whose readings are all equal keeps that
        value exactly.  Grade columns are numeric and are averaged too (a mean
        grade, not a grade).  Non-numeric columns (text clinical columns) must
        agree across the readings; the ``rater`` / ``session`` cells list the
        averaged readings joined by ``";"``.
    key_columns : sequence of str
        Key columns; ``subject`` must be present, the others (``rater``,
        ``session``) are used when present.

    Returns
    -------
    pandas.DataFrame
        The same columns, one row per subject, naturally sorted by subject.

    Raises
    ------
    InputError
        Unknown ``repeated``, no ``subject`` column, or (``"mean"``) a
        non-numeric column that differs between the readings of one subject.
    """
    if repeated not in REPEATED_CHOICES:
        raise InputError(f"repeated={repeated!r}: use 'first' (the first session/rater) or 'mean' "
                         f"(the mean of the readings)")
    if not isinstance(subjects, pd.DataFrame) or "subject" not in subjects.columns:
        raise InputError("one_per_subject: the subject table needs a 'subject' column")
    keys = ["subject"] + [k for k in key_columns if k != "subject" and k in subjects.columns]
    keys_df = _key_frame(subjects, keys)
    order = _natural_order(keys_df, keys)
    table = subjects.iloc[order].reset_index(drop=True)
    subject = keys_df["subject"].iloc[order].reset_index(drop=True)
    if repeated == "first" or not subject.duplicated().any():
        return table[~subject.duplicated().to_numpy()].reset_index(drop=True)
    labels = subject.to_numpy()
    result = table[~subject.duplicated().to_numpy()].reset_index(drop=True)
    for col in table.columns:
        values = table[col]
        if col == "subject":
            continue
        if col in keys[1:]:
            texts = keys_df[col].iloc[order].reset_index(drop=True)
            joined = texts.groupby(labels, sort=False).agg(lambda s: ";".join(s))
            result[col] = joined.to_numpy(dtype=object)
        elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            g = values.astype("float64").groupby(labels, sort=False)
            mean, lo, hi, count, size = g.mean(), g.min(), g.max(), g.count(), g.size()
            if (((lo == hi) & (count == size)) | (count == 0)).all():
                continue  # equal readings everywhere (e.g. a clinical column): the first row's values and type
            result[col] = mean.mask(lo == hi, lo).to_numpy(dtype=float)
        else:
            counts = values.groupby(labels, sort=False).nunique(dropna=False)
            if (counts > 1).any():
                bad = [str(s) for s in counts.index[counts > 1][:_MAX_LISTED]]
                raise InputError(f"one_per_subject(repeated='mean'): column {col!r} differs between the "
                                 f"readings of subject {', '.join(bad)}; a text column cannot be averaged, "
                                 f"so its readings must agree (or use repeated='first')")
    return result


# =============================================================================
# the runner's assemble step
# =============================================================================
def write_subject_tables(study_dir: Union[str, Path], measurements: pd.DataFrame, manifest: Any, *,
                         errors: Optional[pd.DataFrame] = None,
                         submit: Optional[Callable[..., Any]] = None) -> Dict[str, Path]:
    """Write ``subjects.csv``, ``codebook.csv`` and, when their packages are installed,
    ``subjects.xlsx`` and ``subjects.sav`` into the study folder, as one set.

    All files are staged and moved in together
    (:class:`ParaspinalFatLib.report.case_files.OutputSet`): a failure leaves
    the previous set as it was.  An export whose package (openpyxl,
    pyreadstat) is missing is skipped, and its file from an earlier run
    removed so that no stale export contradicts ``subjects.csv``; the returned
    dict says which files were written.

    Parameters
    ----------
    study_dir : str or Path
        The study folder.
    measurements : pandas.DataFrame
        The long table (``measurements.csv``).
    manifest : object
        The validated manifest; only ``manifest.clinical`` (one row per case:
        ``case_id``, key columns, clinical columns; may be None),
        ``manifest.key_columns`` and ``manifest.clinical_columns`` are used.
    errors : pandas.DataFrame, optional
        The error rows, written as the ``errors`` sheet of the workbook;
        default: ``<study_dir>/errors.csv`` when it exists (no sheet otherwise).
    submit : callable, optional
        Where the two exports are written: called as ``submit(function, *args)``
        and returning a future (e.g. the ``submit`` of a
        :class:`concurrent.futures.ProcessPoolExecutor`; the cohort runner
        passes its worker pool's), so that the workbook and the SPSS file are
        written by other processes while this one writes the CSV files.
        Default: here, one after the other.  The files are the same either way.

    Returns
    -------
    dict of str to Path
        File name -> path of every file written (``"subjects.csv"``,
        ``"codebook.csv"``, and ``"subjects.xlsx"`` / ``"subjects.sav"`` when
        written).

    Raises
    ------
    InputError
        As :func:`subjects_table`, or a file cannot be written (nothing is
        changed then).
    """
    from ..report.case_files import OutputSet
    from .exports import write_excel, write_spss

    study_dir = Path(study_dir)
    exports = (("subjects.xlsx", "openpyxl", write_excel), ("subjects.sav", "pyreadstat", write_spss))
    installed = [package for _, package, _ in exports if submit is None or is_installed(package)]
    # with submit, the workers import the exports' packages while this process builds the tables
    warm_ups = [submit(_import_packages, installed) for _ in installed] if submit is not None else []
    key_columns = ["subject"] + [k for k in (manifest.key_columns or ()) if k not in ("subject", MAP_KEY)]
    clinical = manifest.clinical
    if clinical is not None:
        wanted = ["case_id"] + list(manifest.key_columns or ()) + list(manifest.clinical_columns or ())
        clinical = clinical[[c for c in dict.fromkeys(wanted) if c in clinical.columns]]
    subjects, codebook = subjects_table(measurements, clinical, key_columns=tuple(key_columns))
    if errors is None and (study_dir / "errors.csv").is_file():
        try:
            errors = pd.read_csv(study_dir / "errors.csv", dtype=str, keep_default_na=False)
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise InputError(f"study {study_dir}: could not read errors.csv for the workbook ({exc})") from None
    written: Dict[str, Path] = {}
    with OutputSet(study_dir, option="study") as out:
        sheets = {"subjects": subjects, "codebook": codebook}
        if errors is not None:
            sheets["errors"] = errors
        arguments = {"subjects.xlsx": (sheets,), "subjects.sav": (subjects, codebook)}
        done: Dict[str, Any] = {}  # name -> whether written (a bool here, a future of it with submit)
        for name, package, writer in exports:
            if package not in installed:
                out.remove(name)  # no stale export of an earlier run beside the new subjects.csv
            elif submit is None:
                done[name] = _export(writer, package, out.path(name), *arguments[name])
            else:
                done[name] = submit(_export, writer, package, out.path(name), *arguments[name])
        try:
            written["subjects.csv"] = out.write_csv(subjects, "subjects.csv")
            written["codebook.csv"] = out.write_csv(codebook, "codebook.csv")
        finally:
            for future in [*warm_ups, *(done.values() if submit is not None else ())]:
                future.exception()  # every export has finished (or failed) before the set is committed
        for name, result in done.items():
            if result.result() if submit is not None else result:  # an export's error is raised here
                written[name] = out.target(name)
            else:  # its package cannot be imported: skipped, and no stale file of an earlier run left
                out.unstage(name)
                out.remove(name)
    return written

def _import_packages(packages: Sequence[str]) -> None:
    """Import ``packages`` (run in a worker ahead of the exports; a failing import is left to the export)."""
    for package in packages:
        try:
            require(package)
        except MissingDependencyError:
            pass


def _export(writer: Callable[..., Any], package: str, path: Path, *args: Any) -> bool:
    """Run one export (in a worker); False, writing nothing, when its package cannot be imported."""
    try:
        require(package)
    except MissingDependencyError:
        return False
    writer(path, *args)
    return True

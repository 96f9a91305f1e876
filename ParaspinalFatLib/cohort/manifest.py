"""Read and check a cohort manifest: one CSV row per measurement.

Columns
-------
``subject`` (required), ``segmentation`` (required), ``image`` or ``fat`` +
``water`` (Dixon); optional key columns ``rater``, ``session``, ``map_name``
(:data:`KEY_COLUMNS`: several readings or several maps of one subject);
option columns: ``markups``, ``label_names``, ``map`` (the ``map_kind`` option)
and any other field of :class:`~ParaspinalFatLib.measurement.pipeline.MeasureOptions`
by its name (``pdff_scale``, ``levels``, ``n_slices``, ``height_m``...), which
override the command-line ``defaults`` row by row.  Every other column is a
clinical variable (age, sex, bmi, vbmd...).

Cells
-----
An empty cell means "use the default" (the command-line ``defaults``, else the
library's).  Option cells are converted to the option's type: numbers
(``1.75``; in a ``;``-separated file also ``1,75``), booleans
(``true/false/yes/no/1/0``), number lists (``-190,-29`` for a CT window,
``10,25,40,60`` for cut-offs), name lists (``levels``, ``segments``,
``muscles``, ``bone_levels``: separated by ``,`` or ``;``; ``levels`` also
``all``, ``bone_levels`` also ``none``), JSON (``classifier_params``) and paths
(relative to the manifest's folder; ``label_names`` may also be inline
``1=right ES,2=right MF``).  A row without ``map`` that has ``fat`` and
``water`` files is a Dixon row.  Text cells are kept as text, never evaluated:
a cell such as ``=HYPERLINK(...)`` is neutralised only when a CSV is written
(:func:`~ParaspinalFatLib.report.case_files.defuse_formulas`).

Checks (all of them, before any case runs)
------------------------------------------
The file itself (readable UTF-8 CSV, ``,`` ``;`` or tab separated, required
columns, no repeated column, no column the runner owns) raises
:class:`~ParaspinalFatLib.errors.InputError` naming the file and the columns.
Everything else is a :class:`RowError` of the row concerned, and that row is not
measured: an option value that cannot be converted or that
:meth:`MeasureOptions.from_kwargs` refuses (the message names the column and the
value), an unknown map kind, classifier, PDFF scale, level or convention, a
missing input file, a duplicate key (subject, rater, session, map_name: every
copy is an error), a subject whose clinical values differ between its rows
(every row of the subject), and a non-number in a clinical column whose other
values are numbers.

Clinical columns
----------------
A clinical column is numeric (float) when every non-empty value is a number;
``NA``, ``N/A``, ``NaN``, ``null``, ``none``, ``missing``, ``.`` and ``-`` count
as empty there.  A column where more than half of the values are numbers and
a few are not is taken as numeric and those few cells are row errors (``age``
= ``abc``).  A subject's rows must agree: an empty cell beside a value is not
a disagreement (the subject's value is used on every row), two different values
are.

Case ids
--------
``subject``, then ``r-<rater>``, ``s-<session>``, ``m-<map_name>`` when given,
joined by ``__``: readable, and usable as a folder name.  Characters outside
``[A-Za-z0-9._-]`` (and a leading ``.``) become ``_`` and, when anything was
changed or two ids would differ only in upper/lower case, ``_`` + 8 hex digits
of a hash of the key are appended, so two different keys never share a folder.
"""
from __future__ import annotations

import csv
import dataclasses
import difflib
import hashlib
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from ..errors import InputError

__all__ = ["KEY_COLUMNS", "PATH_OPTIONS", "OPTION_KINDS", "NA_TEXTS", "CaseSpec", "RowError", "Manifest",
           "read_manifest", "make_case_id", "option_columns"]

#: key columns of a manifest, in the order they are written (``subject`` is required)
KEY_COLUMNS: Tuple[str, ...] = ("subject", "rater", "session", "map_name")
#: options whose cells are file paths (``label_names`` may also be inline names)
PATH_OPTIONS: Tuple[str, ...] = ("water", "fat", "markups", "label_names", "name_table")
#: texts meaning "missing" in a numeric clinical column (compared ignoring case)
NA_TEXTS: Tuple[str, ...] = ("na", "n/a", "nan", "null", "none", "missing", ".", "-")

#: how the cell text of each MeasureOptions field is read (``owned``: set by the runner, not a column)
OPTION_KINDS: Dict[str, str] = {
    "map_kind": "map_kind", "water": "path", "fat": "path", "noise_floor": "float",
    "noise_floor_fraction": "float", "fat_window": "pair", "muscle_window": "pair",
    "myosteatosis_cutoff_hu": "float", "ct_units_check": "bool", "classifier": "classifier",
    "n_classes": "int", "reference_segment": "text", "classifier_params": "json", "grade_source": "text",
    "goutallier_cutoffs": "floats", "kjaer_cutoffs": "floats", "fat_labelmap": "owned", "qc_dir": "owned",
    "pdff_scale": "pdff_scale", "fat_threshold_pct": "float", "unit": "text", "levels": "levels",
    "n_slices": "int", "per_slice": "bool", "whole_roi": "bool", "segments": "names", "muscles": "muscles",
    "on_empty": "text", "assume_same_grid": "bool", "resample_segmentation": "bool", "subject": "owned",
    "markups": "path", "label_names": "label_names", "convention": "convention", "name_table": "path",
    "cranio_caudal": "triple", "plane": "text", "plane_pixel_mm": "float", "level_slices": "level_slices",
    "slice_base": "int", "level_z": "level_z", "height_m": "float", "bone_levels": "bone_levels",
    "bone_erosion_mm": "float", "bone_slab_mm": "slab", "bmd_calibration": "calibration",
}
_OWNED_WHY = {
    "qc_dir": "the cohort run writes each case's QC pictures to cases/<case_id>/qc (qc=True, --qc)",
    "fat_labelmap": "the cohort run writes each case's files into cases/<case_id>/ and makes no class labelmap",
    "subject": "the subject is the manifest's 'subject' column",
}
_FILE_COLUMNS = ("image", "segmentation")
_ALIASES = {"map": "map_kind"}
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_DECIMAL_COMMA = re.compile(r"[+-]?[0-9]+,[0-9]+\Z")
_TRUE = ("true", "yes", "y", "1")
_FALSE = ("false", "no", "n", "0")
_SAFE = re.compile(r"[^A-Za-z0-9._-]")
_MAX_ID = 80


@dataclass
class CaseSpec:
    """One measurement of the manifest, ready to run.

    Attributes
    ----------
    case_id : str
        Folder-safe unique id (``cases/<case_id>/``), see the module notes.
    row : int
        Line number of the row in the manifest file (the header is line 1).
    key : dict of str to str
        The key columns present in the manifest (``subject`` and, when the
        manifest has them, ``rater``, ``session``, ``map_name``) as text.
    image : str or None
        Absolute path of the image; ``None`` for a Dixon row (its fat and
        water images are in ``options``).
    segmentation : str
        Absolute path of the segmentation.
    options : dict
        Keyword options for ``measure(image, segmentation, **options)``:
        the command-line defaults overridden by the row's option cells, with
        ``subject`` set; paths absolute.
    """

    case_id: str
    row: int
    key: Dict[str, str]
    image: Optional[str]
    segmentation: str
    options: Dict[str, Any]

    @property
    def subject(self) -> str:
        """The subject id (``key["subject"]``)."""
        return self.key["subject"]


@dataclass
class RowError:
    """A problem with one manifest row or one case (a row of ``errors.csv``).

    Attributes
    ----------
    row : int
        Line number in the manifest (header = 1).
    subject : str
        The row's subject (may be empty when the cell is).
    case_id : str
        The row's case id.
    file : str
        The file concerned (a missing input, or the manifest itself).
    stage : str
        ``"manifest"`` (found while reading the manifest), ``"measure"`` (the
        case failed) or ``"assemble"`` (building the study tables failed).
    error_type : str
        The error class (``"InputError"``, ``"LevelError"``...).
    message : str
        What is wrong and what to do.
    """

    row: int
    subject: str
    case_id: str
    file: str
    stage: str
    error_type: str
    message: str


@dataclass
class Manifest:
    """A checked manifest.

    Attributes
    ----------
    path : pathlib.Path
        The manifest file (absolute).
    cases : list of CaseSpec
        The rows that passed every check, in file order.
    errors : list of RowError
        Every problem found, one per row and problem, in row order
        (stage ``"manifest"``).
    clinical : pandas.DataFrame
        One row per case of ``cases``: ``case_id``, the key columns, then the
        clinical columns (float when numeric, else text; missing = NaN; a
        subject's value is repeated on each of its rows).
    clinical_columns : list of str
        The clinical column names, in file order.
    key_columns : list of str
        The key columns present, in :data:`KEY_COLUMNS` order.
    option_columns : list of str
        The option columns present (as MeasureOptions names; ``map`` ->
        ``map_kind``).
    n_rows : int
        Measurement rows in the file (blank lines not counted).
    notes : list of str
        Findings that are not errors (e.g. a clinical column named like an
        option: ``n_slice``).
    """

    path: Path
    cases: List[CaseSpec]
    errors: List[RowError]
    clinical: Any
    clinical_columns: List[str]
    key_columns: List[str]
    option_columns: List[str] = field(default_factory=list)
    n_rows: int = 0
    notes: List[str] = field(default_factory=list)

    @property
    def error_rows(self) -> List[int]:
        """Line numbers of the rows with at least one error, sorted."""
        return sorted({e.row for e in self.errors})


# --------------------------------------------------------------------------- public helpers
def option_columns() -> Dict[str, str]:
    """Column name -> MeasureOptions field for every option a manifest column may set.

    Returns
    -------
    dict of str to str
        Every field of :class:`MeasureOptions` except those the runner owns
        (``subject``, ``qc_dir``, ``fat_labelmap``), plus the alias ``map``.
    """
    out = {name: name for name in _option_fields() if OPTION_KINDS.get(name) != "owned"}
    out.update(_ALIASES)
    return out


def make_case_id(key: Dict[str, str]) -> Tuple[str, bool]:
    """Readable, folder-safe id of a manifest key.

    Parameters
    ----------
    key : dict of str to str
        ``subject`` and optionally ``rater``, ``session``, ``map_name``.

    Returns
    -------
    case_id : str
        ``subject[__r-<rater>][__s-<session>][__m-<map_name>]`` with
        characters outside ``[A-Za-z0-9._-]`` (and a leading ``.``) replaced
        by ``_``, shortened to 80 characters, plus ``_`` and 8 hex digits of
        a hash of the key when anything was replaced or shortened.
    changed : bool
        True when the hash was appended.
    """
    parts = [str(key.get("subject", ""))]
    for column, tag in (("rater", "r"), ("session", "s"), ("map_name", "m")):
        value = key.get(column, "")
        if value:
            parts.append(f"{tag}-{value}")
    raw = "__".join(parts)
    safe = _SAFE.sub("_", raw)
    if safe.startswith("."):
        safe = "_" + safe[1:]
    changed = safe != raw or len(safe) > _MAX_ID or not safe
    if changed:
        safe = f"{safe[:_MAX_ID]}_{_key_hash(key)}"
    return safe, changed


def read_manifest(path: Union[str, os.PathLike], *, defaults: Optional[Dict[str, Any]] = None) -> Manifest:
    """Read a manifest CSV and check every row before anything is measured.

    Parameters
    ----------
    path : str or path-like
        The manifest: UTF-8 (a BOM is fine), separated by ``,``, ``;`` or
        tab (detected), any line ends.  See the module notes for the columns.
    defaults : dict, optional
        Command-line options (MeasureOptions names, ``map`` also accepted)
        applied to every row unless the row's cell overrides them.  Values may
        be Python values or text as in a cell; relative paths resolve against
        the current folder.  ``None`` values are ignored.

    Returns
    -------
    Manifest
        The cases that passed, every row problem (as :class:`RowError`), the
        clinical table.

    Raises
    ------
    InputError
        The file is missing or unreadable, not UTF-8 text, has no header or
        no row, lacks a required column (``subject``, ``segmentation``, and
        ``image`` or ``fat`` + ``water``), has a repeated column,
        a column the runner owns (``qc_dir``, ``fat_labelmap``, ``case_id``),
        or the defaults hold a bad value or a missing file (the message names
        the file, the column or the option).
    TypeError
        ``defaults`` names an unknown option (the message lists the valid ones).
    """
    import pandas as pd

    manifest_path = Path(os.path.abspath(os.fspath(path)))
    header, rows, delimiter = _read_rows(manifest_path)
    folder = manifest_path.parent
    columns = _classify_columns(header, manifest_path)
    base = _check_defaults(defaults or {})
    decimal_comma = delimiter == ";"

    errors: List[RowError] = []
    specs: Dict[int, CaseSpec] = {}
    entries = [(line, _row_cells(header, cells)) for line, cells in rows]  # (line number, cells)
    if not entries:
        raise InputError(f"manifest {manifest_path}: no measurement row below the header; add one row per "
                         f"measurement (subject, image, segmentation...)")

    # keys and case ids
    key_columns = [k for k in KEY_COLUMNS if k in columns.keys]
    keyed = []
    for line, raw in entries:
        key = {k: raw[columns.keys[k]].strip() for k in key_columns}
        keyed.append((line, raw, key))
    case_ids = _case_ids([key for _, _, key in keyed])

    row_errors: Dict[int, List[RowError]] = {line: [] for line, _, _ in keyed}

    def add(line: int, key: Dict[str, str], case_id: str, message: str, file: Optional[str] = None,
            error_type: str = "InputError") -> None:
        row_errors[line].append(RowError(line, key.get("subject", ""), case_id, file or str(manifest_path),
                                         "manifest", error_type, message))

    # per-row options and files
    for (line, raw, key), case_id in zip(keyed, case_ids):
        if not key["subject"]:
            add(line, key, case_id, "column 'subject' is empty; every row needs a subject id")
        spec = _row_spec(line, raw, key, case_id, columns, base, folder, decimal_comma,
                         lambda msg, file=None, line=line, key=key, case_id=case_id: add(line, key, case_id, msg, file))
        if spec is not None:
            specs[line] = spec

    # duplicate keys: every copy is an error
    by_key: Dict[Tuple[str, ...], List[int]] = {}
    for line, _, key in keyed:
        if key["subject"]:
            by_key.setdefault(tuple(key[k] for k in key_columns), []).append(line)
    for (line, _, key), case_id in zip(keyed, case_ids):
        lines = by_key.get(tuple(key[k] for k in key_columns), [])
        if len(lines) > 1:
            shown = ", ".join(f"{k}={key[k]!r}" for k in key_columns)
            add(line, key, case_id, f"duplicate key ({shown}) on rows {', '.join(map(str, lines))}; each "
                                    f"{' x '.join(key_columns)} must appear once (add a 'rater' or 'session' "
                                    f"column for repeated readings, 'map_name' for several maps)")

    # clinical columns: types, stray non-numbers, agreement within a subject
    clinical_names = list(columns.clinical)
    values: Dict[str, List[Any]] = {}
    numeric: Dict[str, bool] = {}
    for name in clinical_names:
        cells = [raw[columns.clinical[name]].strip() for _, raw, _ in keyed]
        parsed, is_numeric, bad = _clinical_values(cells, decimal_comma)
        values[name], numeric[name] = parsed, is_numeric
        n_numbers = sum(1 for v in parsed if isinstance(v, float))
        n_given = sum(1 for c in cells if c and c.lower() not in NA_TEXTS)
        for pos in bad:
            line, _, key = keyed[pos]
            add(line, key, case_ids[pos],
                f"clinical column '{name}': {cells[pos]!r} is not a number, while {n_numbers} of the column's "
                f"{n_given} values are numbers; write a number, or leave the cell empty when it is unknown")
    consensus: Dict[Tuple[str, str], Any] = {}
    subject_rows: Dict[str, List[int]] = {}
    for pos, (_, _, key) in enumerate(keyed):
        if key["subject"]:
            subject_rows.setdefault(key["subject"], []).append(pos)
    for subject, positions in subject_rows.items():
        for name in clinical_names:
            seen: Dict[Any, List[int]] = {}
            for pos in positions:
                value = values[name][pos]
                if value is not None:
                    seen.setdefault(value, []).append(keyed[pos][0])
            if len(seen) > 1:
                shown = " vs ".join(f"{_show_value(v)} (row{'s' if len(ls) > 1 else ''} {', '.join(map(str, ls))})"
                                    for v, ls in seen.items())
                for pos in positions:
                    line, _, key = keyed[pos]
                    add(line, key, case_ids[pos],
                        f"clinical column '{name}' differs between the rows of subject {subject!r}: {shown}; a "
                        f"subject's clinical values must be the same on all its rows (or left empty)")
            elif seen:
                consensus[(subject, name)] = next(iter(seen))

    for line in sorted(row_errors):
        errors.extend(row_errors[line])
    cases = [specs[line] for line, _, _ in keyed if line in specs and not row_errors[line]]

    # the clinical table of the cases that passed
    records = []
    for spec in cases:
        record: Dict[str, Any] = {"case_id": spec.case_id}
        record.update(spec.key)
        for name in clinical_names:
            record[name] = consensus.get((spec.subject, name))
        records.append(record)
    clinical = pd.DataFrame(records, columns=["case_id"] + key_columns + clinical_names)
    for name in clinical_names:
        if numeric[name]:
            clinical[name] = pd.to_numeric(clinical[name], errors="coerce").astype(float)
        else:
            clinical[name] = clinical[name].astype(object).where(clinical[name].notna(), float("nan"))
    return Manifest(manifest_path, cases, errors, clinical, clinical_names, key_columns,
                    option_columns=[f for f, _ in columns.options.values()],
                    n_rows=len(keyed), notes=columns.notes)


# --------------------------------------------------------------------------- reading the file
def _read_rows(path: Path) -> Tuple[List[str], List[Tuple[int, List[str]]], str]:
    """Header, (line number, cells) of every non-blank row, and the separator."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"manifest {path}: file not found; check the path") from None
    except IsADirectoryError:
        raise InputError(f"manifest {path}: this is a folder; give the manifest CSV file") from None
    except OSError as exc:
        raise InputError(f"manifest {path}: cannot read the file ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"manifest {path}: not UTF-8 text (byte {exc.start}); save it as 'CSV UTF-8' "
                         f"(Excel: File > Save As > CSV UTF-8)") from None
    if "\x00" in text:
        raise InputError(f"manifest {path}: holds NUL characters (a spreadsheet or binary file?); save it as "
                         f"'CSV UTF-8'")
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    if not first:
        raise InputError(f"manifest {path}: empty file; the first line must name the columns "
                         f"(subject, image, segmentation...)")
    delimiter = _sniff(first)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: List[Tuple[int, List[str]]] = []
    header: Optional[List[str]] = None
    end = 0
    try:
        for cells in reader:
            start, end = end + 1, reader.line_num  # a quoted cell may span lines: the row starts at `start`
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                header = cells
                continue
            rows.append((start, cells))
    except csv.Error as exc:
        raise InputError(f"manifest {path}: not a readable CSV near line {reader.line_num} ({exc})") from None
    assert header is not None
    return header, rows, delimiter


def _sniff(first_line: str) -> str:
    """The separator of the header line: the most frequent of ``,``, ``;`` and tab outside quotes."""
    outside = re.sub(r'"[^"]*"', "", first_line)
    counts = {d: outside.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


@dataclass
class _Columns:
    """Positions of the columns by role."""

    keys: Dict[str, int]
    files: Dict[str, int]
    options: Dict[int, Tuple[str, str]]  # position -> (MeasureOptions field, column name as written)
    clinical: Dict[str, int]
    notes: List[str]
    unnamed: List[int]
    width: int


def _classify_columns(header: List[str], path: Path) -> _Columns:
    names = [h.strip() for h in header]
    valid_options = option_columns()
    fields = _option_fields()
    keys: Dict[str, int] = {}
    files: Dict[str, int] = {}
    options: Dict[int, Tuple[str, str]] = {}
    clinical: Dict[str, int] = {}
    notes: List[str] = []
    unnamed: List[int] = []
    seen: Dict[str, int] = {}
    for pos, name in enumerate(names):
        if not name:
            unnamed.append(pos)  # allowed when empty on every row (checked per row)
            continue
        low = name.lower()
        canonical = low if (low in KEY_COLUMNS or low in _FILE_COLUMNS or low in fields or low in _ALIASES) else name
        meaning = valid_options.get(canonical, canonical)
        if meaning in seen:
            other = names[seen[meaning]]
            raise InputError(f"manifest {path}: columns {pos + 1} ({name!r}) and {seen[meaning] + 1} ({other!r}) "
                             f"both give {meaning!r}; keep one")
        seen[meaning] = pos
        if canonical == "case_id":
            raise InputError(f"manifest {path}: column 'case_id' is made by the cohort run (from subject, rater, "
                             f"session, map_name); rename or remove this column")
        if canonical in KEY_COLUMNS:
            keys[canonical] = pos
        elif canonical in _FILE_COLUMNS:
            files[canonical] = pos
        elif canonical in fields and OPTION_KINDS.get(canonical) == "owned":
            raise InputError(f"manifest {path}: column {name!r} cannot be set per row: {_OWNED_WHY[canonical]}; "
                             f"remove this column")
        elif canonical in valid_options:
            options[pos] = (valid_options[canonical], name)
        else:
            clinical[name] = pos
            close = difflib.get_close_matches(low, list(valid_options) + list(KEY_COLUMNS) + list(_FILE_COLUMNS),
                                              n=1, cutoff=0.85)
            if close:
                notes.append(f"manifest {path.name}: column {name!r} is read as a clinical variable; if you meant "
                             f"the option/column {close[0]!r}, rename it")
    missing = [c for c in ("subject", "segmentation") if c not in keys and c not in files]
    has_image = "image" in files
    given = {f for f, _ in options.values()}
    has_dixon = "fat" in given and "water" in given
    if not has_image and not has_dixon:
        missing.append("image (or fat + water)")
    if missing:
        raise InputError(f"manifest {path}: missing required column(s) {', '.join(missing)}; found columns "
                         f"{', '.join(repr(n) for n in names if n) or 'none'}. A manifest needs one row per "
                         f"measurement with subject, image (or fat + water for Dixon) and segmentation")
    return _Columns(keys, files, options, clinical, notes, unnamed, len(names))


def _row_cells(header: List[str], cells: List[str]) -> List[str]:
    """The row's cells padded to the header's length (extra cells kept beyond it)."""
    if len(cells) < len(header):
        cells = list(cells) + [""] * (len(header) - len(cells))
    return list(cells)


# --------------------------------------------------------------------------- options of one row
def _row_spec(line: int, raw: List[str], key: Dict[str, str], case_id: str, columns: _Columns,
              base: Dict[str, Any], folder: Path, decimal_comma: bool,
              add: Callable[..., None]) -> Optional[CaseSpec]:
    """The row's CaseSpec, or None (every problem reported through ``add``)."""
    n_errors = [0]

    def fail(message: str, file: Optional[str] = None) -> None:
        n_errors[0] += 1
        add(message, file)

    header_len = columns.width
    extra = [c for c in raw[header_len:] if c.strip()]
    unnamed = [raw[i] for i in columns.unnamed if i < len(raw) and raw[i].strip()]
    if extra or unnamed:
        fail(f"the row has values in column(s) without a name in the header "
             f"({', '.join(repr(c.strip()) for c in unnamed + extra)}); name the column in the header or "
             f"remove the values")

    row_opts: Dict[str, Any] = {}
    for pos, (name, column) in columns.options.items():
        text = raw[pos].strip()
        if not text:
            continue
        try:
            row_opts[name] = _convert(name, text, folder, decimal_comma)
            _check_alone(name, row_opts[name])
        except (InputError, TypeError, ValueError) as exc:
            fail(f"column '{column}' = {text!r}: {exc}")
            row_opts.pop(name, None)

    image = raw[columns.files["image"]].strip() if "image" in columns.files else ""
    segmentation = raw[columns.files["segmentation"]].strip() if "segmentation" in columns.files else ""
    image_path = _resolve(image, folder) if image else None
    seg_path = _resolve(segmentation, folder) if segmentation else None

    opts = dict(base)
    opts.update(row_opts)
    kind = str(opts.get("map_kind", "")).lower()
    if "map_kind" not in opts and "fat" in opts and "water" in opts and image_path is None:
        kind = opts["map_kind"] = "dixon"  # a row with fat + water files and no map is a Dixon row
    files = [("image", image_path)]
    if kind == "dixon":
        fat = opts.get("fat")
        if "fat" in row_opts:
            files = [("fat", fat)]  # else the image column holds the fat image (or a default does)
        if image_path and fat and os.path.normcase(image_path) != os.path.normcase(fat):
            fail(f"map 'dixon': the fat image is given twice (image {image!r} and fat {fat!r}); give it once")
        opts["fat"] = fat or image_path
        if not opts["fat"] or not opts.get("water"):
            fail("map 'dixon' needs a fat image (column 'fat' or 'image') and a water image (column 'water')")
        image_path = None
    else:
        for name in ("fat", "water"):
            if row_opts.get(name):
                fail(f"column '{name}' is only used with map 'dixon' (this row's map is {kind or 'pdff'!r}); set "
                     f"map to dixon or leave the cell empty")
        if image_path is None:
            fail("column 'image' is empty; give the image file of this measurement")
    if seg_path is None:
        fail("column 'segmentation' is empty; give the segmentation file of this measurement")
    opts["subject"] = key["subject"]

    if not n_errors[0]:
        try:
            _measure_options().from_kwargs(**opts)
        except (InputError, TypeError, ValueError) as exc:
            given = ", ".join(sorted(row_opts)) or "none"
            fail(f"the options of this row do not go together ({exc}); option columns given on this row: {given}")

    files.append(("segmentation", seg_path))
    files += [(name, opts.get(name)) for name in PATH_OPTIONS
              if name in row_opts and name != "fat" and _is_file_option(name, opts.get(name))]
    for what, file in files:
        if file and not os.path.exists(file):
            fail(f"{what} file not found: {file} (column '{what}'; relative paths are read from the manifest's "
                 f"folder {folder}); check the path", file)
    if n_errors[0]:
        return None
    return CaseSpec(case_id, line, dict(key), image_path, seg_path or "", opts)


def _check_alone(name: str, value: Any) -> None:
    """Validate one option value by itself (MeasureOptions checks it, plus the names it leaves to later)."""
    if name == "map_kind":
        from ..composition.factory import MAP_KINDS

        if value not in MAP_KINDS:
            raise InputError(f"unknown map kind {value!r}; use one of {', '.join(MAP_KINDS)}")
        return
    if name == "classifier":
        from ..composition.classifiers import METHODS

        if value not in METHODS:
            raise InputError(f"unknown classifier {value!r}; use one of {', '.join(METHODS)}")
    if name == "pdff_scale":
        from ..composition.pdff_scale import PDFF_SCALES

        if value not in PDFF_SCALES:
            raise InputError(f"unknown PDFF scale {value!r}; use one of {', '.join(PDFF_SCALES)}")
    if name in ("water", "fat", "markups", "label_names", "name_table"):
        return
    _measure_options().from_kwargs(**{name: value})


def _convert(name: str, text: str, folder: Path, decimal_comma: bool) -> Any:
    """The cell ``text`` of option ``name`` as the option's value (InputError when it cannot be)."""
    kind = OPTION_KINDS.get(name) or _kind_from_annotation(name)
    if kind == "path":
        return _resolve(text, folder)
    if kind == "label_names":
        candidate = _resolve(text, folder)
        if os.path.exists(candidate) or "=" not in text:
            return candidate
        from ..io.label_names import parse_inline_names

        parse_inline_names(text, option="label_names")
        return text
    if kind == "float":
        return _number(text, decimal_comma, "a number")
    if kind == "int":
        value = _number(text, decimal_comma, "a whole number")
        if value != int(value):
            raise InputError("not a whole number")
        return int(value)
    if kind == "bool":
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise InputError("not true/false (write true, false, yes, no, 1 or 0)")
    if kind in ("pair", "triple", "floats"):
        parts = [p for p in re.split(r"[,;\s]+", text) if p]
        values = tuple(_number(p, False, "a number") for p in parts)
        need = {"pair": 2, "triple": 3}.get(kind)
        if need and len(values) != need:
            raise InputError(f"needs {need} numbers separated by ',' (e.g. {'-190,-29' if need == 2 else '0,0,1'}), "
                             f"got {len(values)}")
        return values
    if kind == "calibration":
        from ..measurement.bone import parse_calibration

        return tuple(parse_calibration(text.replace(";", ",")))
    if kind == "json":
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON ({exc.msg}); write e.g. {{\"k\": 3}}") from None
        if not isinstance(value, dict):
            raise InputError("must be a JSON object such as {\"k\": 3}")
        return value
    if kind == "levels":
        if text.lower() == "all":
            return "all"
        return _level_list(text, vertebrae_only=False)
    if kind == "bone_levels":
        if text.lower() == "none":
            return []
        return _level_list(text, vertebrae_only=True)
    if kind == "names":
        return _names(text)
    if kind == "muscles":
        return text.lower() if text.lower() in ("auto", "all") else _names(text)
    if kind == "slab":
        if text.lower() in ("all", "none", "whole"):
            return None
        return _number(text, decimal_comma, "a thickness in mm or 'all'")
    if kind == "map_kind":
        return text.lower()
    if kind == "classifier":
        return text.lower()
    if kind == "pdff_scale":
        return text.replace(" ", "")
    if kind == "convention":
        from ..io.label_names import normalise_convention

        return normalise_convention(text)
    if kind in ("level_slices", "level_z"):
        from ..anatomy.level_positions import parse_level_assignments

        parse_level_assignments(text, option=name)
        return text
    return text


def _kind_from_annotation(name: str) -> str:
    """Conversion of an option missing from OPTION_KINDS, from its annotation (a newer field)."""
    for f in dataclasses.fields(_measure_options()):
        if f.name == name:
            annotation = str(f.type)
            if "bool" in annotation:
                return "bool"
            if "float" in annotation and "Tuple" not in annotation:
                return "float"
            if annotation.strip() in ("int", "Optional[int]"):
                return "int"
    return "text"


def _number(text: str, decimal_comma: bool, what: str) -> float:
    t = text.strip()
    if decimal_comma and _DECIMAL_COMMA.match(t):
        t = t.replace(",", ".")
    if not _NUMBER.match(t):
        raise InputError(f"not {what}")
    return float(t)


def _names(text: str) -> List[str]:
    items = [p.strip() for p in re.split(r"[,;]", text)]
    items = [p for p in items if p]
    if not items:
        raise InputError("no name given")
    return items


def _level_list(text: str, vertebrae_only: bool) -> List[str]:
    from ..anatomy.level_names import canonical_level, is_vertebra_level

    items = _names(text)
    for item in items:
        level = canonical_level(item)
        if level is None:
            raise InputError(f"{item!r} is not a vertebra or disc level; write levels like L3/4, L4/5, L5/S1"
                             + (" or 'all'" if not vertebrae_only else ""))
        if vertebrae_only and not is_vertebra_level(level):
            raise InputError(f"{item!r} is not a vertebra; write e.g. L1,L2 (or 'none')")
    return items


def _resolve(text: str, folder: Path) -> str:
    p = Path(os.path.expanduser(text))
    if not p.is_absolute():
        p = folder / p
    return os.path.normpath(str(p))


def _is_file_option(name: str, value: Any) -> bool:
    """True when the option's value names a file to check (inline label names do not)."""
    if not isinstance(value, str) or not value:
        return False
    if name == "label_names":
        return os.path.isabs(value)
    return True


def _check_defaults(defaults: Dict[str, Any]) -> Dict[str, Any]:
    """The command-line defaults converted, resolved and checked."""
    fields = _option_fields()
    out: Dict[str, Any] = {}
    cwd = Path(os.getcwd())
    for given, value in defaults.items():
        name = _ALIASES.get(given, given)
        if value is None:
            continue
        if name not in fields:
            raise TypeError(f"unknown option {given!r} in the cohort defaults; valid options: {sorted(fields)}")
        if OPTION_KINDS.get(name) == "owned":
            raise InputError(f"option {given!r} cannot be a cohort default: {_OWNED_WHY[name]}")
        kind = OPTION_KINDS.get(name) or _kind_from_annotation(name)
        try:
            if isinstance(value, str) and (kind not in ("text",) or name in PATH_OPTIONS):
                value = _convert(name, value.strip(), cwd, False)
            elif name in PATH_OPTIONS and isinstance(value, os.PathLike):
                value = _resolve(os.fspath(value), cwd)
            if name in ("map_kind", "classifier") and isinstance(value, str):
                value = value.lower()
            _check_alone(name, value)
        except (InputError, TypeError, ValueError) as exc:
            raise InputError(f"command-line option {given} = {value!r}: {exc}") from None
        if name in PATH_OPTIONS and _is_file_option(name, value) and not os.path.exists(value):
            raise InputError(f"command-line option {given}: file not found: {value}; check the path")
        out[name] = value
    try:
        _measure_options().from_kwargs(**out)
    except (InputError, TypeError, ValueError) as exc:
        raise InputError(f"command-line options: {exc}") from None
    return out


# --------------------------------------------------------------------------- clinical values
def _clinical_values(cells: Sequence[str], decimal_comma: bool) -> Tuple[List[Any], bool, List[int]]:
    """Parsed values (float, text or None), whether the column is numeric, and the stray non-numbers."""
    numbers: List[Optional[float]] = []
    for c in cells:
        if not c or c.lower() in NA_TEXTS:
            numbers.append(None)
            continue
        try:
            numbers.append(_number(c, decimal_comma, "a number"))
        except InputError:
            numbers.append(None)
    given = [i for i, c in enumerate(cells) if c and c.lower() not in NA_TEXTS]
    parsed = [i for i in given if numbers[i] is not None]
    if given and len(parsed) * 2 > len(given):
        bad = [i for i in given if numbers[i] is None]
        values: List[Any] = [numbers[i] if i not in bad else None for i in range(len(cells))]
        return values, True, bad
    if not given and any(cells):  # only NA texts: an empty numeric column
        return [None] * len(cells), True, []
    return [c if c else None for c in cells], not any(cells), []


def _show_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value)


# --------------------------------------------------------------------------- case ids
def _key_hash(key: Dict[str, str]) -> str:
    text = json.dumps([key.get(k, "") for k in KEY_COLUMNS], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def _case_ids(keys: List[Dict[str, str]]) -> List[str]:
    """Case ids of all rows; ids equal ignoring case but from different keys get the hash too."""
    made = [make_case_id(k) for k in keys]
    groups: Dict[str, set] = {}
    for (cid, _), key in zip(made, keys):
        groups.setdefault(cid.lower(), set()).add(tuple(key.get(k, "") for k in KEY_COLUMNS))
    out = []
    for (cid, changed), key in zip(made, keys):
        if len(groups[cid.lower()]) > 1 and not changed:
            cid = f"{cid[:_MAX_ID]}_{_key_hash(key)}"
        out.append(cid)
    return out


# --------------------------------------------------------------------------- MeasureOptions access
def _measure_options():
    from ..measurement.pipeline import MeasureOptions

    return MeasureOptions


def _option_fields() -> List[str]:
    return [f.name for f in dataclasses.fields(_measure_options())]

"""The subject table as files clinicians open directly: Excel workbook and SPSS ``.sav``.

Both are optional extras (``pip install paraspinalfat[cohort]``): :func:`write_excel`
needs openpyxl, :func:`write_spss` pyreadstat; a missing package raises
:class:`~ParaspinalFatLib.errors.MissingDependencyError` with the install command.

Both write atomically (a temporary file beside the target, then :func:`os.replace`):
an error leaves the previous file as it was and no partial file behind.  Text that a
spreadsheet would run as a formula (first character ``=``, ``+``, ``-``, ``@``, tab,
carriage return) gets a leading ``'`` exactly as
:func:`ParaspinalFatLib.report.case_files.defuse_formulas` does for the CSV files;
numbers stay numbers.

SPSS coding
-----------
* Variable labels: the codebook's ``label``, with `` (unit)`` appended unless the label
  already ends with it (grades have no unit).
* Text clinical columns with at most :data:`MAX_CATEGORIES` distinct values (``sex``,
  a group) are stored as numeric codes 1..k with value labels; the order is the
  categories' own for an ordered pandas Categorical, ``normal < osteopenia <
  osteoporosis`` for vBMD / T-score groups, ``poor < good`` for Lovett groups, male before
  female for sex (``M`` = 1, ``F`` = 2, the usual SPSS coding), else natural order.
  Boolean columns: 0 = False, 1 = True.
* Grade columns of one level and side (Goutallier, Kjaer): value labels with the grade
  names; their means (left-right, over levels) are plain numbers.
* Measurement level: ``nominal`` for codes and text, ``ordinal`` for ordered groups and
  grades, ``scale`` for numbers.
"""
from __future__ import annotations

import math
import os
import secrets
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Union

import numpy as np
import pandas as pd

from ..dependencies import require
from ..errors import InputError
from ..report.case_files import check_output_file, defuse_formulas, make_folder
from ..stats.clinical_categories import BONE_LABELS, LOVETT_LABELS
from ..validation import is_missing
from .variables import GRADE_METRICS, check_variable_name, natural_key

__all__ = ["MAX_CATEGORIES", "GOUTALLIER_LABELS", "KJAER_LABELS", "write_excel", "write_spss"]

#: a text clinical column with at most this many distinct values is coded with value labels in SPSS
MAX_CATEGORIES = 20
#: value labels of the Goutallier grades (Goutallier 1994, MRI: Fuchs 1999)
GOUTALLIER_LABELS: Dict[int, str] = {
    0: "normal muscle", 1: "some fatty streaks", 2: "fat less than muscle", 3: "fat equal to muscle",
    4: "fat more than muscle",
}
#: value labels of the modified lumbar grades of Kjaer et al. 2007
KJAER_LABELS: Dict[int, str] = {0: "normal (< 10 % fat)", 1: "slight (10-50 % fat)", 2: "severe (> 50 % fat)"}

_SHEET_FORBIDDEN = set("[]:*?/\\")
_EXCEL_MAX_ROWS = 1_048_576
_EXCEL_MAX_COLUMNS = 16_384
_EXCEL_MAX_TEXT = 32_767
_SPSS_MAX_LABEL = 255
_SPSS_MAX_VALUE_LABEL = 120
_MALE = {"m", "male", "man", "men", "mann", "maennlich", "männlich", "h", "homme"}
_FEMALE = {"f", "female", "woman", "women", "w", "frau", "weiblich", "femme"}


def _temporary(path: Path) -> Path:
    """A new empty file ``.<name>.<random>.tmp`` beside ``path`` (mode 0o666 & ~umask)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)  # novm (int flags)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(str(tmp), flags, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise InputError(f"output {path}: no free temporary file name in its folder")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


# =============================================================================
# Excel
# =============================================================================
def write_excel(path: Union[str, Path], sheets: Dict[str, pd.DataFrame]) -> Path:
    """Write tables as the sheets of one ``.xlsx`` workbook, atomically.

    Parameters
    ----------
    path : str or Path
        Destination (``subjects.xlsx``); its folder is created when missing.
    sheets : dict of str to pandas.DataFrame
        Sheet name -> table, in sheet order.  A table is written with its column
        names as the first row (frozen) and without its index.  Numbers are
        written as numbers (NaN / missing: an empty cell; +-inf as the text
        ``inf`` / ``-inf``, which Excel cannot store as a number), text cells
        and column names as text with formula-like text prefixed by ``'``
        (:func:`~ParaspinalFatLib.report.case_files.defuse_formulas`); control
        characters that the file format forbids are replaced by U+FFFD.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    MissingDependencyError
        openpyxl is not installed.
    InputError
        ``path`` is a folder or cannot be written, no sheets, a sheet name
        Excel refuses (empty, longer than 31 characters, one of ``[]:*?/\\``,
        or twice ignoring case), a table larger than a sheet, or a cell value
        that cannot be stored; the previous file, if any, is unchanged.
    """
    openpyxl = require("openpyxl", "writing Excel workbooks (subjects.xlsx)")
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    path = check_output_file(path, "output", example="subjects.xlsx")
    _check_sheets(path, sheets)
    for name, table in sheets.items():
        _check_cells(path, name, table)  # before anything is written: no half-written workbook
    make_folder(path.parent, "output")

    def cell(value: Any) -> Any:
        if value is None or value is pd.NA or value is pd.NaT:
            return None
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        if isinstance(value, (int, np.integer)):
            return int(value)
        if isinstance(value, (float, np.floating)):
            v = float(value)
            if math.isnan(v):
                return None
            return v if math.isfinite(v) else ("inf" if v > 0 else "-inf")
        if isinstance(value, str):
            return ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
        if isinstance(value, pd.Timestamp):
            return value.to_pydatetime()
        return value  # datetime / date (checked by _check_cells)

    tmp = None
    sheet = None
    try:
        tmp = _temporary(path)
        book = openpyxl.Workbook(write_only=True)
        for sheet, table in sheets.items():
            ws = book.create_sheet(title=sheet)
            ws.freeze_panes = "A2"
            safe = defuse_formulas(table)
            ws.append([cell(c if isinstance(c, str) else str(c)) for c in safe.columns])
            for row in zip(*(_column_cells(safe.iloc[:, pos], cell) for pos in range(safe.shape[1]))):
                ws.append(row)
        sheet = None
        book.save(str(tmp))
        os.replace(tmp, path)
    except (OSError, ValueError, TypeError) as exc:
        where = f"sheet {sheet!r}: " if sheet is not None else ""
        raise InputError(f"output {path}: could not write the workbook ({where}{_reason(exc)}); the previous "
                         f"file, if any, is unchanged") from None
    finally:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)
    return path


def _column_cells(values: pd.Series, cell: Callable[[Any], Any]) -> List[Any]:
    """One column's cell values, as ``cell`` converts each value (whole numpy columns at once)."""
    kind = values.dtype.kind if isinstance(values.dtype, np.dtype) else "O"
    if kind in "iub":
        return values.to_numpy().tolist()  # Python int / bool, as cell() gives them
    if kind == "f":
        array = values.to_numpy()
        cells = array.tolist()
        for i in np.flatnonzero(~np.isfinite(array)).tolist():  # NaN: empty cell; +-inf: text
            cells[i] = cell(array[i])
        return cells
    return [cell(v) for v in values.tolist()]


def _check_cells(path: Path, sheet: str, table: pd.DataFrame) -> None:
    """Refuse a text or object column holding a value no cell can store."""
    for pos in range(table.shape[1]):
        values = table.iloc[:, pos]
        if (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)
                or pd.api.types.is_datetime64_any_dtype(values)):
            continue
        for i, v in enumerate(values.tolist()):
            if isinstance(v, str):
                if len(v) > _EXCEL_MAX_TEXT - 1:
                    problem = f"a text of {len(v)} characters (a cell holds at most {_EXCEL_MAX_TEXT - 1})"
                else:
                    continue
            elif v is None or v is pd.NA or v is pd.NaT or isinstance(
                    v, (bool, int, float, np.bool_, np.integer, np.floating, datetime, date)):
                continue
            else:
                problem = f"a value of type {type(v).__name__} ({str(v)[:40]})"
            raise InputError(f"output {path}: sheet {sheet!r}, column {str(table.columns[pos])!r}, row {i + 1} "
                             f"holds {problem} that an Excel cell cannot store; nothing was written, the "
                             f"previous file, if any, is unchanged")


def _check_sheets(path: Path, sheets: Dict[str, pd.DataFrame]) -> None:
    if not isinstance(sheets, dict) or not sheets:
        raise InputError(f"output {path}: give at least one sheet as {{name: DataFrame}}")
    seen = set()
    for name, table in sheets.items():
        bad = (not isinstance(name, str) or not name.strip() or len(name) > 31
               or any(ch in _SHEET_FORBIDDEN for ch in name) or name.startswith("'") or name.endswith("'"))
        if bad:
            raise InputError(f"output {path}: sheet name {name!r} is not accepted by Excel (1-31 characters, "
                             f"none of [ ] : * ? / \\, no leading or trailing ')")
        if name.lower() in seen:
            raise InputError(f"output {path}: sheet name {name!r} is given twice (Excel ignores case)")
        seen.add(name.lower())
        if not isinstance(table, pd.DataFrame):
            raise InputError(f"output {path}: sheet {name!r} must be a pandas DataFrame, got "
                             f"{type(table).__name__}")
        if len(table) + 1 > _EXCEL_MAX_ROWS or table.shape[1] > _EXCEL_MAX_COLUMNS:
            raise InputError(f"output {path}: sheet {name!r} has {len(table)} rows x {table.shape[1]} columns; "
                             f"an Excel sheet holds at most {_EXCEL_MAX_ROWS - 1} rows below its header and "
                             f"{_EXCEL_MAX_COLUMNS} columns (use the CSV file)")


# =============================================================================
# SPSS
# =============================================================================
def write_spss(path: Union[str, Path], data: pd.DataFrame, codebook: Optional[pd.DataFrame] = None) -> Path:
    """Write the subject table as an SPSS ``.sav`` file with variable and value labels, atomically.

    Parameters
    ----------
    path : str or Path
        Destination (``subjects.sav``); its folder is created when missing.
    data : pandas.DataFrame
        The subject table; its column names must already be valid names
        (:func:`~.variables.check_variable_name`, unique ignoring case).
    codebook : pandas.DataFrame, optional
        ``codebook.csv`` (columns ``variable``, ``label``, ``unit``, ``kind``,
        ``metric``, ``level``, ``side``): labels, and which columns are
        clinical (coded when categorical) or grades (value labels).  A column
        without a codebook row gets no label.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    MissingDependencyError
        pyreadstat is not installed.
    InputError
        A column name SPSS refuses, ``path`` is a folder or cannot be written,
        or pyreadstat refuses the data; the previous file, if any, is
        unchanged and no partial file is left.
    """
    pyreadstat = require("pyreadstat", "writing SPSS files (subjects.sav)")
    path = check_output_file(path, "output", example="subjects.sav")
    if not isinstance(data, pd.DataFrame):
        raise InputError(f"output {path}: data must be a pandas DataFrame, got {type(data).__name__}")
    seen = set()
    for col in data.columns:
        check_variable_name(col)
        if col.lower() in seen:
            raise InputError(f"output {path}: variable name {col!r} is given twice (SPSS ignores case)")
        seen.add(col.lower())
    info = _codebook_lookup(codebook)
    frame, labels, value_labels, measure = _spss_frame(data, info)
    make_folder(path.parent, "output")
    tmp = None
    try:
        tmp = _temporary(path)
        pyreadstat.write_sav(frame, str(tmp), file_label="ParaspinalFat subject table",
                             column_labels=labels, variable_value_labels=value_labels or None,
                             variable_measure=measure)
        os.replace(tmp, path)
    except (OSError, ValueError, TypeError, pyreadstat.ReadstatError) as exc:
        raise InputError(f"output {path}: could not write the SPSS file ({_reason(exc)}); the previous file, "
                         f"if any, is unchanged") from None
    finally:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)
    return path


def _codebook_lookup(codebook: Optional[pd.DataFrame]) -> Dict[str, Dict[str, str]]:
    if codebook is None:
        return {}
    if not isinstance(codebook, pd.DataFrame) or "variable" not in codebook.columns:
        raise InputError("write_spss: codebook must be a DataFrame with a 'variable' column (codebook.csv)")
    out: Dict[str, Dict[str, str]] = {}
    for row in codebook.to_dict("records"):
        out.setdefault(str(row["variable"]), {k: _plain(v) for k, v in row.items()})
    return out


def _plain(value: Any) -> str:
    return "" if is_missing(value) else str(value)


def _defused(text: str) -> str:
    return str(defuse_formulas(pd.DataFrame({"x": [text]}, dtype=object))["x"].iloc[0])


def _label(row: Dict[str, str]) -> Optional[str]:
    label, unit = row.get("label", ""), row.get("unit", "")
    if not label:
        return None
    if unit and unit != "grade" and not label.rstrip().endswith(f"({unit})") and not label.rstrip().endswith(
            f"[{unit}]"):
        label = f"{label} ({unit})"
    return _defused(label)[:_SPSS_MAX_LABEL]


def _category_order(values: List[str], series: pd.Series) -> List[str]:
    if isinstance(series.dtype, pd.CategoricalDtype):
        present = set(values)
        return [str(c) for c in series.cat.categories if str(c) in present] + sorted(
            present - {str(c) for c in series.cat.categories}, key=natural_key)
    for order in (BONE_LABELS, LOVETT_LABELS):
        if set(values) <= set(order):
            return [v for v in order if v in values]
    lower = {v.strip().lower() for v in values}
    if lower <= (_MALE | _FEMALE) and lower & _MALE and lower & _FEMALE:
        return sorted(values, key=lambda v: (v.strip().lower() not in _MALE, natural_key(v)))
    return sorted(values, key=natural_key)


def _is_ordered(series: pd.Series, order: List[str]) -> bool:
    if isinstance(series.dtype, pd.CategoricalDtype):
        return bool(series.cat.ordered)
    return any(set(order) <= set(o) for o in (BONE_LABELS, LOVETT_LABELS))


def _spss_frame(data: pd.DataFrame, info: Dict[str, Dict[str, str]]):
    """The frame pyreadstat writes, with labels, value labels and measurement levels."""
    columns: Dict[str, Any] = {}  # built at once (inserting one by one fragments the frame)
    labels: List[Optional[str]] = []
    value_labels: Dict[str, Dict[float, str]] = {}
    measure: Dict[str, str] = {}
    for col in data.columns:
        series = data[col].reset_index(drop=True)
        row = info.get(col, {})
        labels.append(_label(row) if row else None)
        missing = series.isna().to_numpy()
        if pd.api.types.is_bool_dtype(series):
            columns[col] = series.astype(float)
            value_labels[col] = {0.0: "False", 1.0: "True"}
            measure[col] = "nominal"
        elif pd.api.types.is_numeric_dtype(series) and not isinstance(series.dtype, pd.CategoricalDtype):
            columns[col] = series.astype("float64")
            grade = row.get("metric", "") in GRADE_METRICS
            if grade and row.get("side", "") in ("left", "right") and row.get("level", "") != "mean":
                names = GOUTALLIER_LABELS if row["metric"] == "goutallier" else KJAER_LABELS
                value_labels[col] = {float(k): v for k, v in names.items()}
                measure[col] = "ordinal"
            else:
                measure[col] = "scale"
        elif pd.api.types.is_datetime64_any_dtype(series):
            columns[col] = series
            measure[col] = "scale"
        else:
            texts = [_plain(v) for v in series.astype(object).tolist()]
            distinct = sorted({t for t, miss in zip(texts, missing.tolist()) if not miss and t != ""})
            categorical = isinstance(series.dtype, pd.CategoricalDtype) or (
                row.get("kind", "") == "clinical" and 0 < len(distinct) <= MAX_CATEGORIES)
            if categorical and distinct:
                order = _category_order(distinct, series)
                code = {v: float(i + 1) for i, v in enumerate(order)}
                columns[col] = np.array([np.nan if (miss or t == "") else code[t]
                                       for t, miss in zip(texts, missing.tolist())], dtype=float)
                value_labels[col] = {code[v]: _defused(v)[:_SPSS_MAX_VALUE_LABEL] for v in order}
                measure[col] = "ordinal" if _is_ordered(series, order) else "nominal"
            else:
                columns[col] = defuse_formulas(pd.DataFrame({"x": texts}, dtype=object))["x"].to_numpy(dtype=object)
                measure[col] = "nominal"
    frame = pd.DataFrame(columns, index=pd.RangeIndex(len(data)))
    return frame, labels, value_labels, measure

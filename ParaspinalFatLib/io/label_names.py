"""Segment-name tables: value -> (name, colour) for labelmaps.

A *label table* is a ``dict`` ``{label value: (name, rgb or None)}`` (value 0,
the background, is never in it).  It is read from a python mapping or list
(:func:`read_label_table`), from a Slicer colour table (``.ctbl``/``.txt``), a
JSON or a CSV/TSV file, from an inline text such as ``"1=right ES,2=right MF"``
(:func:`parse_inline_names`), from the XML label table TotalSegmentator stores
in a NIfTI header extension (:func:`nifti_label_table`), or taken from a
built-in tool convention (:func:`convention_table`, :data:`CONVENTIONS`).

Inline names
------------
A text that does not name an existing file and holds ``VALUE=NAME`` items
separated by ``,`` or ``;`` (whitespace around items and around ``=`` allowed)
is an inline table: ``"1=right ES, 2=right MF; 3=left MF,4=left ES"``.  Every
value is a whole number >= 1 (0 is the background), every name non-empty,
and neither a value nor a name (compared ignoring case) may occur twice; a
name cannot contain ``=``, ``,`` or ``;``.  A single item whose text before
``=`` is not a number and that looks like a path (holds ``/`` or ``\\``, or
ends in a table file suffix) is taken for a path (``run=3/names.csv``), so a
missing file keeps its "not found" message.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import struct
import warnings
import xml.etree.ElementTree as ET
import zlib
from collections import abc
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Tuple
import numpy as np
from ..errors import InputError
from .label_layers import MAX_LABEL_VALUE
from .nifti import nifti_header_facts, open_maybe_gzip
from ..errors import SegmentationWarning


__all__ = ['LabelTable', 'CONVENTIONS', 'LABEL_NAMES_OPTION', 'read_label_table', 'parse_inline_names',
           'convention_table', 'nifti_label_table']

Color = Optional[Tuple[float, float, float]]
LabelTable = Dict[int, Tuple[str, Color]]
_DATA_DIR = Path(__file__).resolve().parents[1] / "data"
CONVENTIONS = {
    "totalsegmentator": (
        "totalsegmentator_labels.csv",
        "TotalSegmentator v2 'total' task (map_to_binary.class_map['total'])",
    ),
    "totalspineseg": (
        "totalspineseg_labels.csv",
        "TotalSpineSeg final output labels (README 'List of Classes' / tss_map.json)",
    ),
}
#: How the label-names option is named in messages about inline names.
LABEL_NAMES_OPTION = "label_names (--label-names)"
_TABLE_SUFFIXES = (".ctbl", ".txt", ".json", ".csv", ".tsv")
_INLINE_EXAMPLE = "'1=right ES,2=right MF,3=left MF,4=left ES'"


# ============================================================================ public API
def read_label_table(source, *, what: str = "names") -> LabelTable:
    """Read a value -> (name, colour) table.

    Parameters
    ----------
    source : mapping, sequence, str or os.PathLike
        ``{value: name}``, ``{name: value}``, a sequence of names (value =
        position + 1), a ``.ctbl``/``.txt`` colour table, ``.json`` or
        ``.csv``/``.tsv`` file, or (a ``str`` that is not an existing file)
        an inline table ``"1=right ES,2=right MF"`` (module notes,
        :func:`parse_inline_names`).
    what : str
        Description used in error messages.

    Returns
    -------
    dict
        ``{value: (name, rgb or None)}``; value 0 (background) is dropped.

    Raises
    ------
    InputError
        Missing/unreadable file or a table that cannot be interpreted; for
        an inline table: an item that is not ``VALUE=NAME``, a value that is
        not a whole number >= 1, an empty name, a value or name given twice
        (the message names ``label_names (--label-names)`` and the item).
    """
    if isinstance(source, Mapping):
        return _table_from_mapping(dict(source), "names mapping")
    if isinstance(source, (list, tuple)):
        return {i + 1: (str(n).strip(), None) for i, n in enumerate(source) if str(n).strip()}
    if isinstance(source, (str, os.PathLike)):
        p = Path(os.fspath(source))
        if not p.is_file():
            if isinstance(source, str) and _looks_inline(source):
                return parse_inline_names(source)
            raise InputError(
                f"{p}: label-name file ({what}) not found; check the path, or give the names inline as "
                f"{_INLINE_EXAMPLE} (VALUE=NAME items separated by ',' or ';')."
            )
        suffix = p.suffix.lower()
        text = _read_text(p)
        if suffix in (".ctbl", ".txt"):
            return _parse_ctbl(text, str(p))
        if suffix == ".json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputError(f"{p}: not valid JSON ({exc}); fix the file.") from None
            return _table_from_json(data, str(p))
        if suffix in (".csv", ".tsv"):
            return _parse_csv(text, str(p))
        raise InputError(
            f"{p}: unknown label-name file type '{suffix}'; use a Slicer colour table "
            "(.ctbl/.txt), a .json or a .csv file."
        )
    raise InputError(
        f"label names must be a mapping, a list of names or a file path, not {type(source).__name__}"
    )


def parse_inline_names(text: str, *, option: str = LABEL_NAMES_OPTION) -> LabelTable:
    """Label table from an inline text such as ``"1=right ES,2=right MF"``.

    Parameters
    ----------
    text : str
        ``VALUE=NAME`` items separated by ``,`` or ``;``; whitespace around
        items, values and names is ignored, empty items (a trailing comma)
        are skipped.
    option : str
        How the option is named in error messages (default
        ``"label_names (--label-names)"``).

    Returns
    -------
    dict
        ``{value: (name, None)}`` in the order written.

    Raises
    ------
    InputError
        No item; an item without exactly one ``=``; a value that is not a
        whole number, is 0 (the background), negative or above the largest
        supported label value; an empty name; a value, or a name (ignoring
        case), given twice.  The message names ``option`` and the item.
    """
    items = [item.strip() for item in re.split(r"[,;]", str(text))]
    items = [item for item in items if item]
    if not items:
        raise InputError(f"{option}: no VALUE=NAME items in {text!r}; write e.g. {_INLINE_EXAMPLE}.")
    table: LabelTable = {}
    item_of_value: Dict[int, str] = {}
    item_of_name: Dict[str, str] = {}
    for item in items:
        if item.count("=") != 1:
            what = "has no '='" if "=" not in item else "has more than one '='"
            raise InputError(
                f"{option}: item '{item}' {what}; each item is VALUE=NAME (names cannot contain '=', ',' "
                f"or ';'), e.g. {_INLINE_EXAMPLE}."
            )
        value_text, name = (part.strip() for part in item.split("="))
        if not re.fullmatch(r"\+?\d+|-\d+", value_text):
            raise InputError(
                f"{option}: item '{item}': the label value '{value_text}' is not a whole number; each item "
                f"is VALUE=NAME with the value first, e.g. {_INLINE_EXAMPLE}."
            )
        value = int(value_text)
        if value == 0:
            raise InputError(
                f"{option}: item '{item}': value 0 is the background and cannot be named; label values "
                "start at 1."
            )
        if value < 0:
            raise InputError(f"{option}: item '{item}': label values are whole numbers >= 1, not {value}.")
        if value > MAX_LABEL_VALUE:
            raise InputError(
                f"{option}: item '{item}': value {value} is above the largest supported label value "
                f"{MAX_LABEL_VALUE} (2**63 - 1)."
            )
        if not name:
            raise InputError(f"{option}: item '{item}' has an empty name; write VALUE=NAME, e.g. '1=right ES'.")
        if value in item_of_value:
            raise InputError(
                f"{option}: label value {value} is given twice ('{item_of_value[value]}' and '{item}'); "
                "give each value one name."
            )
        key = name.casefold()
        if key in item_of_name:
            same = "" if item_of_name[key].split("=", 1)[1].strip() == name else " (ignoring upper/lower case)"
            raise InputError(
                f"{option}: name '{name}' is given twice{same} ('{item_of_name[key]}' and '{item}'); two label "
                "values cannot be the same segment. Give each its own name."
            )
        item_of_value[value] = item
        item_of_name[key] = item
        table[value] = (name, None)
    return table


def _looks_inline(text: str) -> bool:
    """True when a string that is not an existing file is an inline ``VALUE=NAME`` table."""
    if "=" not in text:
        return False
    if re.search(r"[,;]", text):
        return True
    head = text.split("=", 1)[0].strip()
    if re.fullmatch(r"[+-]?\d+", head):
        return True
    looks_like_path = "/" in text or "\\" in text or text.strip().lower().endswith(_TABLE_SUFFIXES)
    return not looks_like_path


def convention_table(convention: str) -> LabelTable:
    """Built-in value -> name table of a segmentation tool.

    Parameters
    ----------
    convention : {"totalsegmentator", "totalspineseg"}
        Tool name (case-insensitive).

    Returns
    -------
    dict
        ``{value: (name, None)}``.
    """
    key = normalise_convention(convention)
    filename = CONVENTIONS[key][0]
    path = _DATA_DIR / filename
    if not path.is_file():  # pragma: no cover - packaging error
        raise InputError(f"built-in label table {path} is missing; reinstall paraspinalfat.")
    return _parse_csv(_read_text(path), str(path))


def nifti_label_table(path) -> Optional[LabelTable]:
    """Label names stored as XML in the header extensions of a NIfTI file.

    TotalSegmentator (``add_label_map_to_nifti``) appends a Caret/GIfTI style
    ``<LabelTable>`` with ``<Label Key="1" Red=.. Green=.. Blue=..>name</Label>``
    elements as a NIfTI-1 header extension.  SimpleITK does not expose header
    extensions, so the header is parsed here from the (gzipped) file bytes.
    NIfTI-1 and NIfTI-2, single-file (``.nii``/``.nii.gz``) and ``.hdr``/``.img``
    pairs, either byte order, any extension code.

    Parameters
    ----------
    path : str or os.PathLike
        NIfTI file.

    Returns
    -------
    dict or None
        ``{value: (name, rgb)}``, or ``None`` when the file has no label table.

    Raises
    ------
    InputError
        When the file is missing or unreadable, is not a NIfTI file, its
        header is truncated, or its gzip stream ends early or is damaged (the
        message names the file).
    """
    p = Path(os.fspath(path))
    try:
        return _read_nifti_label_table(p)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(
            f"{p}: cannot read the NIfTI header extensions ({type(exc).__name__}: {exc}); the "
            "file is missing, unreadable, truncated or damaged. Check the path, or re-export or "
            "copy the file again."
        ) from None


def _read_nifti_label_table(p: Path) -> Optional[LabelTable]:
    with open_maybe_gzip(p) as f:
        head = f.read(544)
        endian, version, vox_offset, _, single_file = nifti_header_facts(head, p)
        ext_start = 348 if version == 1 else 540
        f.seek(ext_start)
        flag = f.read(4)
        if len(flag) < 4 or flag[0] == 0:
            return None
        limit = vox_offset if single_file else None
        pos = ext_start + 4
        table: LabelTable = {}
        while limit is None or pos + 8 <= limit:
            hdr = f.read(8)
            if len(hdr) < 8:
                break
            esize, ecode = struct.unpack(endian + "ii", hdr)
            if esize < 8 or (limit is not None and pos + esize > limit):
                warnings.warn(f"{p}: malformed NIfTI header extension (size {esize}); "
                              "the remaining extensions are ignored.", SegmentationWarning)
                break
            payload = f.read(esize - 8)
            pos += esize
            if b"LabelTable" in payload or b"<Label " in payload:
                table.update(_parse_label_xml(payload, str(p)))
    return table or None


# ============================================================================ helpers
def normalise_convention(convention: str) -> str:
    """Key of :data:`CONVENTIONS` named by a user-written tool name.

    Parameters
    ----------
    convention : str
        Tool name; case, spaces, hyphens and underscores are ignored, and
        ``"totalseg"`` and ``"TotalSegmentator v2"`` mean
        ``"totalsegmentator"``.

    Returns
    -------
    str
        ``"totalsegmentator"`` or ``"totalspineseg"``.

    Raises
    ------
    InputError
        The name is not a known convention.
    """
    key = str(convention).strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    aliases = {"totalsegmentator": "totalsegmentator", "totalseg": "totalsegmentator",
               "totalsegmentatorv2": "totalsegmentator", "totalspineseg": "totalspineseg"}
    if key not in aliases:
        raise InputError(
            f"unknown segmentation convention {convention!r}; known: {sorted(CONVENTIONS)}."
        )
    return aliases[key]


def describe_names(names) -> str:
    """Short description of a ``names`` argument, for messages.

    Parameters
    ----------
    names : mapping, sequence, str, os.PathLike or object
        Anything accepted (or rejected) by :func:`read_label_table`.

    Returns
    -------
    str
        The path for a file, ``"inline names '1=...'"`` for an inline table,
        ``"mapping with N entries"``, ``"list of N names"``, or the type name
        of anything else.
    """
    if isinstance(names, str) and not Path(names).is_file() and _looks_inline(names):
        return f"inline names '{names}'"
    if isinstance(names, (str, os.PathLike)):
        return str(names)
    if isinstance(names, Mapping):
        return f"mapping with {len(names)} entries"
    if isinstance(names, (list, tuple)):
        return f"list of {len(names)} names"
    return type(names).__name__


def _read_text(p: Path) -> str:
    data = p.read_bytes()
    for enc in ("utf-8-sig", "latin-1"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1", errors="replace")  # pragma: no cover


def _as_int(value) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return int(value) if float(value).is_integer() else None
    text = str(value).strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if re.fullmatch(r"[+-]?\d+\.0*", text):
        return int(float(text))
    return None


def _add_entry(table: LabelTable, value: int, name: str, color: Color, source: str) -> None:
    name = name.strip()
    if not name:
        return
    if value == 0:
        return  # background
    if value < 0:
        raise InputError(f"{source}: label value {value} ('{name}') is negative.")
    if value > MAX_LABEL_VALUE:
        raise InputError(
            f"{source}: label value {value} ('{name}') is above the largest supported label "
            f"value {MAX_LABEL_VALUE} (2**63 - 1); fix the table."
        )
    if value in table and table[value][0] != name:
        raise InputError(
            f"{source}: label value {value} is given two names ('{table[value][0]}' and "
            f"'{name}'); fix the table."
        )
    table[value] = (name, color)


def _table_from_mapping(mapping: dict, source: str) -> LabelTable:
    table: LabelTable = {}
    if not mapping:
        return table
    keys_int = [_as_int(k) for k in mapping]
    if all(k is not None for k in keys_int):
        for k, v in zip(keys_int, mapping.values()):
            if type(v) is str:  # {value: name}, the usual form
                name, color = v, None
            elif isinstance(v, abc.Mapping):  # (typing.Mapping's isinstance is several times slower)
                name = str(v.get("name", v.get("label", "")))
                color = _color_from(v.get("color"))
            elif isinstance(v, (list, tuple)) and v:
                name, color = str(v[0]), _color_from(v[1] if len(v) > 1 else None)
            else:
                name, color = str(v), None
            _add_entry(table, k, name, color, source)
        return table
    vals_int = [_as_int(v) if not isinstance(v, (dict, list, tuple)) else None
                for v in mapping.values()]
    if all(v is not None for v in vals_int):
        for k, v in zip(mapping.keys(), vals_int):
            _add_entry(table, v, str(k), None, source)
        return table
    raise InputError(
        f"{source}: cannot interpret the label names: expected {{value: name}} (e.g. "
        '{"1": "multifidus_left"}) or {name: value} (e.g. {"multifidus_left": 1}).'
    )


def _color_from(c) -> Color:
    if c is None:
        return None
    try:
        vals = [float(x) for x in c][:3]
    except (TypeError, ValueError):
        return None
    if len(vals) < 3:
        return None
    if max(vals) > 1.0:
        vals = [v / 255.0 for v in vals]
    return (vals[0], vals[1], vals[2])


def _table_from_json(data, source: str) -> LabelTable:
    if isinstance(data, Mapping):
        # tolerate one wrapping level such as {"labels": {...}}
        if len(data) == 1:
            (only,) = data.values()
            if isinstance(only, Mapping):
                try:
                    return _table_from_mapping(dict(only), source)
                except InputError:
                    pass
        return _table_from_mapping(dict(data), source)
    if isinstance(data, list) and all(isinstance(x, Mapping) for x in data):
        rows = [{str(k): v for k, v in x.items()} for x in data]
        header = list(rows[0].keys()) if rows else []
        return _table_from_rows(header, [[r.get(h, "") for h in header] for r in rows], source)
    raise InputError(
        f"{source}: JSON label names must be an object {{\"1\": \"multifidus_left\", ...}} or "
        '{"multifidus_left": 1, ...}.'
    )


def _parse_ctbl(text: str, source: str) -> LabelTable:
    table: LabelTable = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s:
            continue
        if s.startswith("#"):
            if s.lower().startswith("# color procedural file"):
                raise InputError(f"{source}: procedural colour tables have no label names; use a "
                                 "discrete colour table (value name r g b a).")
            continue
        tokens = s.split()
        value = _as_int(tokens[0])
        if value is None or len(tokens) < 2:
            raise InputError(
                f"{source}: line {lineno} {s[:60]!r} is not 'value name r g b a' (Slicer colour "
                "table); fix the line or use a JSON/CSV name file."
            )
        rest = tokens[1:]
        color = None
        for ncol in (4, 3):
            if len(rest) > ncol and all(_as_int(t) is not None or _is_float(t) for t in rest[-ncol:]):
                color = _color_from([float(t) for t in rest[-ncol:][:3]])
                rest = rest[:-ncol]
                break
        _add_entry(table, value, " ".join(rest), color, source)
    if not table:
        raise InputError(f"{source}: the colour table has no labels.")
    return table


def _is_float(t: str) -> bool:
    try:
        float(t)
        return True
    except ValueError:
        return False


_VALUE_COLUMNS = ["labelvalue", "value", "labelid", "labelnumber", "labelindex", "segmentnumber",
                  "id", "index", "key", "intensity", "number", "label"]
_NAME_COLUMNS = ["name", "labelname", "segmentname", "segmentlabel", "segment", "structure",
                 "structurename", "anatomy", "class", "classname", "label", "description"]
def _norm_header(h: str) -> str:
    return re.sub(r"[\s_\-.]", "", str(h).strip().lower())


def _parse_csv(text: str, source: str) -> LabelTable:
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise InputError(f"{source}: the CSV file is empty.")
    header_line = lines[0]
    delimiter = max([",", ";", "\t", "|"], key=header_line.count)
    if header_line.count(delimiter) == 0:
        raise InputError(f"{source}: cannot find the column separator in the CSV header "
                         f"{header_line[:80]!r}; expected e.g. 'value,name'.")
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)
    rows = [r for r in reader]
    return _table_from_rows(rows[0], rows[1:], source)


def _table_from_rows(header: Sequence[str], rows: Sequence[Sequence], source: str) -> LabelTable:
    norm = [_norm_header(h) for h in header]

    def column(candidates, exclude=None, need_int=False):
        for cand in candidates:
            for ci, h in enumerate(norm):
                if h == cand and ci != exclude:
                    if need_int:
                        vals = [r[ci] for r in rows if ci < len(r) and str(r[ci]).strip() != ""]
                        if not vals or any(_as_int(v) is None for v in vals):
                            continue
                    return ci
        return None

    vcol = column(_VALUE_COLUMNS, need_int=True)
    ncol = column(_NAME_COLUMNS, exclude=vcol) if vcol is not None else None
    if vcol is None or ncol is None:
        raise InputError(
            f"{source}: cannot find the label value and name columns in the header "
            f"{list(header)}; name them e.g. 'value' and 'name' (integer values in the value "
            "column)."
        )
    color_cols = None
    for names3 in (("colorr", "colorg", "colorb"), ("r", "g", "b"), ("red", "green", "blue")):
        if all(n in norm for n in names3):
            color_cols = [norm.index(n) for n in names3]
            break
    table: LabelTable = {}
    for r in rows:
        if vcol >= len(r) or ncol >= len(r) or str(r[vcol]).strip() == "":
            continue
        value = _as_int(r[vcol])
        color = None
        if color_cols and all(c < len(r) for c in color_cols):
            color = _color_from([r[c] for c in color_cols]) if all(
                _is_float(str(r[c])) for c in color_cols) else None
        _add_entry(table, value, str(r[ncol]), color, source)
    if color_cols:
        # Slicer colour tables store 0..255; normalise consistently for the whole table
        raw_max = 0.0
        for r in rows:
            for c in color_cols:
                if c < len(r) and _is_float(str(r[c])):
                    raw_max = max(raw_max, float(r[c]))
        if raw_max > 1.0:
            for v, (n, _) in list(table.items()):
                row = next(rr for rr in rows if vcol < len(rr) and _as_int(rr[vcol]) == v)
                table[v] = (n, tuple(float(row[c]) / 255.0 for c in color_cols))
    return table


def _parse_label_xml(payload: bytes, source: str) -> LabelTable:
    text = payload.rstrip(b"\x00 \n\r\t").decode("utf-8", errors="replace")
    table: LabelTable = {}
    try:
        root = ET.fromstring(text)
        labels = root.iter("Label")
        for el in labels:
            value = _as_int(el.get("Key", ""))
            if value is None:
                continue
            name = (el.text or "").strip()
            color = None
            try:
                color = (float(el.get("Red")), float(el.get("Green")), float(el.get("Blue")))
            except (TypeError, ValueError):
                color = None
            _add_entry(table, value, name, color, source)
        return table
    except ET.ParseError:
        pass
    # tolerant fallback for slightly malformed XML
    for m in re.finditer(r'<Label\s+([^>]*)>\s*(?:<!\[CDATA\[(.*?)\]\]>|([^<]*))\s*</Label>',
                         text, flags=re.S):
        attrs = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        value = _as_int(attrs.get("Key", ""))
        if value is None:
            continue
        name = (m.group(2) if m.group(2) is not None else m.group(3) or "").strip()
        try:
            color = (float(attrs["Red"]), float(attrs["Green"]), float(attrs["Blue"]))
        except (KeyError, ValueError):
            color = None
        _add_entry(table, value, name, color, source)
    return table

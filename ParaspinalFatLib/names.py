"""Segment-name parsing: muscle, side and spinal level from free-text names.

Real segment names come from TotalSegmentator (``autochthon_left``,
``vertebrae_L3``), TotalSpineSeg (``disc_L5_S``), Slicer users
(``MF_L_L4/5``, ``erector spinae (L) L5/S1``, ``lt MF L45``) and thigh studies
(``rectus femoris R``).  :func:`parse_segment_name` turns any of them into a
:class:`ParsedName` ``(muscle, side, level, kind, raw)``.

How a name is parsed
--------------------
1. camelCase boundaries become spaces (``vertebraeL3`` -> ``vertebrae L3``).
2. **Levels are found first** by a small grammar (not by the table), so that the
   ``L`` of ``L4`` is never taken for "left":

   * a level starts with ``C``, ``T`` (or ``Th``), ``L`` or ``S`` directly
     followed by 1-2 digits, not preceded or followed by a letter/digit;
   * a disc is two adjacent vertebrae: ``L4/5``, ``L4-5``, ``L4_5``, ``L4 5``,
     ``L4-L5``, ``L4/L5``, ``L4L5``, ``L5S1``, ``L5-S1``, ``T12-L1``, and the
     compact ``L45`` / ``l4_5``; a bare ``S`` after L5 means S1 (``L5S``,
     ``disc_L5_S``);
   * compact two-digit forms are a disc only when they are not themselves a
     vertebra: ``L45`` and ``L12`` are discs (there is no L45/L12) but ``T12``
     is the vertebra T12;
   * canonical spellings: vertebra ``L3``, ``S1``, ``T12``; disc ``L4/5``,
     ``L5/S1``, ``T12/L1``.  Transitional ``L6`` and ``T13`` are understood.

   Text that looks like a level but is not one (``L3-L5``, ``L9``) is dropped
   with a :class:`NameWarning`; two different levels in one name give level
   ``None`` with a warning.
3. The rest is split into lower-case alphanumeric tokens; the longest runs of
   tokens that are aliases in the :class:`NameTable` are looked up
   (``quadratus lumborum`` before ``quadratus``).  Aliases of kind ``side``
   (``L``, ``R``, ``lt``, ``rt``, ``left``, ``(L)``...) give the side; aliases of
   kind ``ignore`` (``M.``, ``muscle``, ``ROI``...) are dropped.
4. **Strict structure rule**: the name is a known structure only when every
   remaining token belongs to aliases of one and the same canonical structure.
   ``multifidus_fat`` or ``MF lesion`` are therefore *not* multifidus: they
   become ``kind="other"`` and keep their tokens in snake_case
   (``multifidus_fat``).  Add an alias to the table to accept a new spelling.
5. A name made of a level only (``L3``, ``L4-L5``) is a vertebra or a disc.

``muscle`` holds the canonical structure name for every kind (``multifidus``,
``vertebra``, ``disc``, ``sacrum``, ``subcutaneous_fat``...).  Unknown names keep
their non-side tokens in snake_case (``kidney_left`` -> muscle ``kidney``, side
``left``, kind ``other``).

The vocabulary is data: ``ParaspinalFatLib/data/muscle_names.csv`` (columns
``alias, canonical, kind`` and optional ``side``, read by column name) merged
with the user's own CSV by :func:`load_name_table`.
"""
from __future__ import annotations

import csv
import functools
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from .errors import InputError, LevelError, ParaspinalFatWarning

__all__ = [
    "KINDS",
    "NameWarning",
    "ParsedName",
    "NameEntry",
    "NameTable",
    "load_name_table",
    "default_name_table",
    "builtin_table_path",
    "parse_segment_name",
    "canonical_level",
    "is_disc_level",
    "is_vertebra_level",
    "disc_between",
    "adjacent_vertebrae",
    "next_vertebra",
    "level_sort_key",
    "tokenize",
]

#: Kinds a structure can have (``side`` and ``ignore`` are table-only kinds).
KINDS = ("muscle", "vertebra", "disc", "sacrum", "other")
_TABLE_KINDS = KINDS + ("side", "ignore")
_SIDES = ("left", "right")


class NameWarning(ParaspinalFatWarning):
    """A segment name or name-table row was understood only partly."""


# =============================================================================
# levels
# =============================================================================
# Number of vertebrae per region, including the transitional T13 and L6.
_REGION_COUNT = {"C": 7, "T": 13, "L": 6, "S": 5}
_REGION_BASE = {"C": 0, "T": 100, "L": 200, "S": 300}

_SEP = r"[-_/\\\u2010-\u2015\u2212]"  # hyphen, underscore, slash, backslash, dashes, minus
_START = re.compile(r"(?<![^\W_])(th|[ctls])(\d{1,2})", re.IGNORECASE)
_SINGLE = re.compile(r"(?<![^\W_])(th|[ctls])(\d{1,2})(?![^\W_])", re.IGNORECASE)
_PAIR = re.compile(
    r"(?<![^\W_])(th|[ctls])(\d{1,2})"
    r"(?:"
    rf"\s*{_SEP}?\s*(th|[ctls])(\d{{1,2}})?"  # second vertebra with its letter (S may lack a number)
    rf"|\s*{_SEP}\s*(\d{{1,2}})"  # L4-5, L4_5, L4/5
    r"|\s+(\d{1,2})"  # L4 5
    r")(?![^\W_])",
    re.IGNORECASE,
)


def _region(letter: str) -> str:
    letter = letter.upper()
    return "T" if letter == "TH" else letter


def _vertebra(region: str, number: int) -> Optional[Tuple[str, int]]:
    if region in _REGION_COUNT and 1 <= number <= _REGION_COUNT[region]:
        return (region, number)
    return None


def _vname(v: Tuple[str, int]) -> str:
    return f"{v[0]}{v[1]}"


def _successors(v: Tuple[str, int]) -> Tuple[Tuple[str, int], ...]:
    """Vertebrae that can lie directly below ``v`` with a disc in between."""
    region, n = v
    if region == "C":
        if n == 1:
            return ()  # atlas/axis: no intervertebral disc
        return (("C", n + 1),) if n < 7 else (("T", 1),)
    if region == "T":
        if n < 12:
            return (("T", n + 1),)
        if n == 12:
            return (("T", 13), ("L", 1))
        return (("L", 1),)  # T13
    if region == "L":
        if n < 5:
            return (("L", n + 1),)
        if n == 5:
            return (("L", 6), ("S", 1))
        return (("S", 1),)  # L6
    return ()  # sacral segments are fused


def _disc_name(upper: Tuple[str, int], lower: Tuple[str, int]) -> str:
    if upper[0] == lower[0]:
        return f"{_vname(upper)}/{lower[1]}"
    return f"{_vname(upper)}/{_vname(lower)}"


def _disc(a: Optional[Tuple[str, int]], b: Optional[Tuple[str, int]]) -> Optional[str]:
    if a is None or b is None:
        return None
    if b in _successors(a):
        return _disc_name(a, b)
    if a in _successors(b):
        return _disc_name(b, a)
    return None


def _interpret_pair(m: "re.Match") -> Optional[str]:
    r1 = _region(m.group(1))
    v1 = _vertebra(r1, int(m.group(2)))
    if m.group(3) is not None:
        r2 = _region(m.group(3))
        if m.group(4) is None:
            if r2 != "S":
                return None
            v2 = ("S", 1)
        else:
            v2 = _vertebra(r2, int(m.group(4)))
    else:
        digits = m.group(5) if m.group(5) is not None else m.group(6)
        v2 = _vertebra(r1, int(digits))
    return _disc(v1, v2)


def _interpret_single(m: "re.Match") -> Optional[str]:
    region = _region(m.group(1))
    digits = m.group(2)
    v = _vertebra(region, int(digits))
    if v is not None:
        return _vname(v)
    if len(digits) == 2:  # compact disc: L45, L12, C56
        return _disc(_vertebra(region, int(digits[0])), _vertebra(region, int(digits[1])))
    return None


def _scan_levels(text: str) -> List[Tuple[int, int, Optional[str], str]]:
    """All level-like spans ``(start, end, canonical or None, matched text)``."""
    out = []
    pos = 0
    while True:
        start = _START.search(text, pos)
        if start is None:
            return out
        p = start.start()
        pair = _PAIR.match(text, p)
        level = _interpret_pair(pair) if pair else None
        if level is not None:
            out.append((pair.start(), pair.end(), level, pair.group(0)))
            pos = pair.end()
            continue
        if pair is not None and (pair.group(4) or pair.group(5) or pair.group(6)):
            # two numbered vertebrae that are not adjacent ('L3-L5', 'C1-2'): a range, not a level
            out.append((pair.start(), pair.end(), None, pair.group(0)))
            pos = pair.end()
            continue
        single = _SINGLE.match(text, p)
        if single is not None:
            out.append((single.start(), single.end(), _interpret_single(single), single.group(0)))
            pos = single.end()
        elif pair is not None:
            out.append((pair.start(), pair.end(), None, pair.group(0)))
            pos = pair.end()
        else:
            pos = start.end()


def _parse_vertebra(level: str) -> Optional[Tuple[str, int]]:
    m = re.fullmatch(r"([CTLS])(\d{1,2})", level)
    return _vertebra(m.group(1), int(m.group(2))) if m else None


def canonical_level(text) -> Optional[str]:
    """Canonical vertebra or disc level found in ``text``, else ``None``.

    Parameters
    ----------
    text : str
        A level in any common spelling, possibly with other words around it
        (``"L4-L5"``, ``"L45"``, ``"l4_5"``, ``"L4/L5"``, ``"mid L4-5"``,
        ``"L5-S1"``, ``"L5S"``, ``"T12-L1"``, ``"vertebrae_L3"``).

    Returns
    -------
    str or None
        ``"L4/5"``, ``"L5/S1"``, ``"T12/L1"``, ``"L3"``, ``"S1"``... ``None``
        when the text holds no level, a level-like text that is not a real
        level (``"L3-L5"`` is not adjacent, ``"L9"`` does not exist) or two
        different levels.

    Examples
    --------
    >>> canonical_level("L4-L5"), canonical_level("L5S"), canonical_level("T12-L1")
    ('L4/5', 'L5/S1', 'T12/L1')
    """
    if not isinstance(text, str):
        return None
    found = {lvl for _, _, lvl, _ in _scan_levels(_camel_split(text)) if lvl is not None}
    return found.pop() if len(found) == 1 else None


def is_disc_level(level) -> bool:
    """True when ``level`` is a canonical disc level such as ``"L4/5"``."""
    return isinstance(level, str) and "/" in level and canonical_level(level) == level


def is_vertebra_level(level) -> bool:
    """True when ``level`` is a canonical vertebra level such as ``"L3"`` or ``"S1"``."""
    return isinstance(level, str) and _parse_vertebra(level) is not None


def disc_between(upper_vertebra: str, lower_vertebra: str) -> str:
    """Canonical disc level between two adjacent vertebrae.

    Parameters
    ----------
    upper_vertebra, lower_vertebra : str
        Vertebra levels in any spelling (``"L5"``, ``"vertebrae_S1"``); the
        order does not matter.

    Returns
    -------
    str
        e.g. ``disc_between("L5", "S1") == "L5/S1"``.

    Raises
    ------
    LevelError
        When either is not a vertebra or the two are not adjacent.
    """
    a = _parse_vertebra(canonical_level(upper_vertebra) or "")
    b = _parse_vertebra(canonical_level(lower_vertebra) or "")
    level = _disc(a, b)
    if level is None:
        raise LevelError(
            f"no intervertebral disc between '{upper_vertebra}' and '{lower_vertebra}': give two "
            "adjacent vertebrae such as 'L4' and 'L5' or 'L5' and 'S1'"
        )
    return level


def adjacent_vertebrae(disc_level: str) -> Tuple[str, str]:
    """The two vertebrae ``(upper, lower)`` around a disc level.

    Parameters
    ----------
    disc_level : str
        Disc level in any spelling (``"L5/S1"``, ``"L4-L5"``, ``"L45"``).

    Returns
    -------
    tuple of str
        ``adjacent_vertebrae("L5/S1") == ("L5", "S1")``;
        ``adjacent_vertebrae("L4-5") == ("L4", "L5")``.

    Raises
    ------
    LevelError
        When ``disc_level`` is not a disc level.
    """
    level = canonical_level(disc_level)
    m = re.fullmatch(r"([CTLS])(\d{1,2})/([CTLS]?)(\d{1,2})", level or "")
    if m is None:
        raise LevelError(
            f"'{disc_level}' is not an intervertebral disc level; write it like 'L4/5', "
            "'L4-L5' or 'L5/S1'"
        )
    upper = f"{m.group(1)}{m.group(2)}"
    lower = f"{m.group(3) or m.group(1)}{m.group(4)}"
    return upper, lower


def next_vertebra(vertebra: str, present: Optional[Iterable[str]] = None) -> Optional[str]:
    """The vertebra directly below ``vertebra`` (``"L5"`` -> ``"S1"``).

    Parameters
    ----------
    vertebra : str
        Canonical vertebra level.
    present : iterable of str, optional
        Vertebrae known to exist.  The transitional ``T13`` / ``L6`` follow
        ``T12`` / ``L5`` only when they are in ``present``; otherwise ``L1`` /
        ``S1`` do.

    Returns
    -------
    str or None
        ``None`` for sacral segments, C1 and unknown input.
    """
    v = _parse_vertebra(vertebra)
    if v is None:
        return None
    succ = _successors(v)
    if not succ:
        return None
    present = set(present or ())
    if len(succ) == 2:
        transitional, usual = succ
        return _vname(transitional) if _vname(transitional) in present else _vname(usual)
    return _vname(succ[0])


def level_sort_key(level: str) -> Tuple[float, str]:
    """Sort key ordering levels from cranial to caudal (discs between their vertebrae).

    Unknown strings sort last.
    """
    v = _parse_vertebra(level) if isinstance(level, str) else None
    if v is not None:
        return (float(_REGION_BASE[v[0]] + v[1]), level)
    try:
        upper, _ = adjacent_vertebrae(level)
    except LevelError:
        return (float("inf"), str(level))
    u = _parse_vertebra(upper)
    return (_REGION_BASE[u[0]] + u[1] + 0.5, level)


# =============================================================================
# tokens
# =============================================================================
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_TOKEN = re.compile(r"[^\W_]+")


def _camel_split(text: str) -> str:
    return _CAMEL.sub(" ", text)


def tokenize(text: str) -> Tuple[str, ...]:
    """Lower-case alphanumeric tokens of a name or alias.

    camelCase boundaries, spaces, ``_ - . / ( ) +`` all separate tokens:
    ``tokenize("Erector-Spinae (L)") == ("erector", "spinae", "l")``.
    """
    return tuple(_TOKEN.findall(_camel_split(str(text)).lower()))


# =============================================================================
# name table
# =============================================================================
@dataclass(frozen=True)
class NameEntry:
    """What an alias means.

    Attributes
    ----------
    canonical : str
        Canonical name (``"multifidus"``, ``"vertebra"``, ``"left"``; empty for
        ``ignore``).
    kind : str
        One of ``muscle, vertebra, disc, sacrum, other, side, ignore``.
    side : str or None
        Side implied by the alias itself (``"left"``/``"right"``), if any.
    origin : str
        Where the row came from (file path and line), for messages.
    """

    canonical: str
    kind: str
    side: Optional[str] = None
    origin: str = ""


class NameTable:
    """Alias vocabulary: token tuples -> :class:`NameEntry`.

    Build it with :func:`load_name_table`; it is immutable.
    """

    def __init__(self, entries: Mapping[Tuple[str, ...], NameEntry]):
        self._entries = MappingProxyType(dict(entries))
        self._max_len = max((len(k) for k in self._entries), default=1)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, alias) -> bool:
        return tokenize(alias) in self._entries

    def __repr__(self) -> str:
        return f"NameTable({len(self)} aliases)"

    @property
    def entries(self) -> Mapping[Tuple[str, ...], NameEntry]:
        """Read-only mapping of alias token tuples to entries."""
        return self._entries

    def lookup(self, alias: str) -> Optional[NameEntry]:
        """Entry of an alias (any spelling), or ``None``."""
        return self._entries.get(tokenize(alias))

    def canonical_names(self, kind: Optional[str] = None) -> List[str]:
        """Sorted canonical names, optionally of one kind (e.g. ``"muscle"``)."""
        return sorted(
            {e.canonical for e in self._entries.values() if e.canonical and (kind is None or e.kind == kind)}
        )

    def kind_of(self, canonical: str) -> Optional[str]:
        """Kind of a canonical name when the table is unambiguous about it."""
        kinds = {e.kind for e in self._entries.values() if e.canonical == canonical}
        return kinds.pop() if len(kinds) == 1 else None

    def match(self, tokens: Sequence[str]) -> List[Tuple[int, int, Optional[NameEntry]]]:
        """Greedy longest-alias segmentation of ``tokens``.

        Returns ``(start, end, entry)`` spans covering every token; unknown
        tokens get ``entry=None`` one by one.
        """
        out = []
        i, n = 0, len(tokens)
        while i < n:
            for j in range(min(n, i + self._max_len), i, -1):
                entry = self._entries.get(tuple(tokens[i:j]))
                if entry is not None:
                    out.append((i, j, entry))
                    i = j
                    break
            else:
                out.append((i, i + 1, None))
                i += 1
        return out

    def merged(self, rows: Mapping[Tuple[str, ...], NameEntry]) -> "NameTable":
        """New table with ``rows`` overriding this table's aliases."""
        merged = dict(self._entries)
        merged.update(rows)
        return NameTable(merged)


def builtin_table_path() -> Path:
    """Path of the built-in ``muscle_names.csv``."""
    return Path(__file__).resolve().parent / "data" / "muscle_names.csv"


_PathLike = Union[str, Path]


def _norm_header(h: Optional[str]) -> str:
    return (h or "").strip().lstrip("\ufeff").strip().lower()


def _check_entry(canonical: str, kind: str, side: Optional[str], where: str) -> NameEntry:
    kind = kind.strip().lower()
    canonical = canonical.strip()
    if kind not in _TABLE_KINDS:
        raise InputError(
            f"{where}: kind '{kind}' is not one of {', '.join(_TABLE_KINDS)}; fix the 'kind' column"
        )
    side = (side or "").strip().lower() or None
    if kind == "side":
        side = canonical.lower()
    if side is not None and side not in _SIDES:
        raise InputError(f"{where}: side '{side}' must be 'left', 'right' or empty")
    if kind == "ignore":
        canonical = ""
    elif not canonical:
        raise InputError(f"{where}: the 'canonical' column is empty; give the name to report")
    elif kind != "side":
        canonical = "_".join(tokenize(canonical)) or canonical
    return NameEntry(canonical=canonical, kind=kind, side=side, origin=where)


def _read_table_csv(text: str, source: str) -> Dict[Tuple[str, ...], NameEntry]:
    kept = [(no, line) for no, line in enumerate(text.splitlines(), 1) if not line.lstrip().startswith("#")]
    current = [0]

    def lines():
        for no, line in kept:
            current[0] = no
            yield line

    rows, rows_no = [], []
    try:
        for row in csv.reader(lines()):
            rows.append(row)
            rows_no.append(current[0])
    except csv.Error as exc:
        raise InputError(f"{source}, line {current[0]}: not valid CSV ({exc})") from None
    header_idx = next((i for i, r in enumerate(rows) if any(c.strip() for c in r)), None)
    if header_idx is None:
        raise InputError(f"{source}: the name table is empty; it needs a header alias,canonical,kind")
    header = [_norm_header(h) for h in rows[header_idx]]
    missing = [c for c in ("alias", "canonical", "kind") if c not in header]
    if missing:
        raise InputError(
            f"{source}: the name table lacks column(s) {missing}; its header is {rows[header_idx]}. "
            "Expected a header row with at least alias,canonical,kind (optional: side)"
        )
    col = {name: header.index(name) for name in ("alias", "canonical", "kind", "side") if name in header}
    out: Dict[Tuple[str, ...], NameEntry] = {}
    for i in range(header_idx + 1, len(rows)):
        row = rows[i]
        if not any(c.strip() for c in row):
            continue
        where = f"{source}, line {rows_no[i]}"

        def get(name, row=row):
            j = col.get(name)
            return row[j] if j is not None and j < len(row) else ""

        alias = get("alias")
        key = tokenize(alias)
        if not key:
            raise InputError(f"{where}: empty alias '{alias}'")
        entry = _check_entry(get("canonical"), get("kind"), get("side"), where)
        previous = out.get(key)
        if previous is not None and (previous.canonical, previous.kind, previous.side) != (
            entry.canonical,
            entry.kind,
            entry.side,
        ):
            raise InputError(
                f"{where}: alias '{alias}' is already defined at {previous.origin} as "
                f"{previous.canonical or '(ignore)'} ({previous.kind}); keep one of the two rows"
            )
        out[key] = entry
    return out


@functools.lru_cache(maxsize=1)
def default_name_table() -> NameTable:
    """The built-in name table (cached)."""
    path = builtin_table_path()
    return NameTable(_read_table_csv(path.read_text(encoding="utf-8-sig"), str(path)))


def _extra_rows(extra, base: NameTable) -> Dict[Tuple[str, ...], NameEntry]:
    out: Dict[Tuple[str, ...], NameEntry] = {}
    if isinstance(extra, Mapping):
        items = list(extra.items())
    else:
        items = []
        for row in extra:
            if not isinstance(row, Mapping) or "alias" not in row:
                raise InputError(
                    f"extra name-table rows must be mappings with 'alias', 'canonical' and 'kind'; got {row!r}"
                )
            items.append((row["alias"], (row.get("canonical", ""), row.get("kind", ""), row.get("side"))))
    for alias, value in items:
        where = f"extra alias '{alias}'"
        if isinstance(value, str):
            canonical, kind, side = value, None, None
        else:
            value = tuple(value) + (None,) * (3 - len(tuple(value)))
            canonical, kind, side = value[:3]
        if not kind:
            kind = base.kind_of("_".join(tokenize(canonical))) or "muscle"
        key = tokenize(alias)
        if not key:
            raise InputError(f"{where}: empty alias")
        out[key] = _check_entry(str(canonical or ""), str(kind), side, where)
    return out


def load_name_table(path: Optional[_PathLike] = None, extra=None) -> NameTable:
    """Built-in name table, overridden by a user CSV and by extra aliases.

    Parameters
    ----------
    path : str or Path, optional
        User CSV with a header row holding at least ``alias``, ``canonical``
        and ``kind`` (optional ``side``; other columns such as ``note`` are
        ignored; columns may come in any order; lines starting with ``#`` are
        comments).  Its rows override built-in rows with the same alias.
    extra : mapping or iterable of mappings, optional
        More aliases, applied last: ``{"RMS": "erector_spinae"}`` (kind taken
        from the canonical name's kind in the table, ``muscle`` when new),
        ``{"lmf": ("multifidus", "muscle", "left")}``, or rows
        ``[{"alias": ..., "canonical": ..., "kind": ...}]``.

    Returns
    -------
    NameTable

    Raises
    ------
    InputError
        Missing file or column, unknown kind or side, or one alias defined
        twice with different meanings in the same file.
    """
    table = default_name_table()
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise InputError(f"name table '{p}' does not exist; give the path of a CSV with alias,canonical,kind")
        table = table.merged(_read_table_csv(p.read_text(encoding="utf-8-sig"), str(p)))
    if extra:
        table = table.merged(_extra_rows(extra, table))
    return table


# =============================================================================
# parsing
# =============================================================================
@dataclass(frozen=True)
class ParsedName:
    """Result of :func:`parse_segment_name`.

    Attributes
    ----------
    muscle : str
        Canonical structure name: a muscle (``"multifidus"``), ``"vertebra"``,
        ``"disc"``, ``"sacrum"``, or for unknown names their tokens in
        snake_case (side and level removed).
    side : str or None
        ``"left"``, ``"right"`` or ``None``.
    level : str or None
        Canonical level (``"L4/5"``, ``"L5/S1"``, ``"L3"``, ``"S1"``) or ``None``.
    kind : str
        ``"muscle"``, ``"vertebra"``, ``"disc"``, ``"sacrum"`` or ``"other"``.
    raw : str
        The name as given.
    """

    muscle: str
    side: Optional[str]
    level: Optional[str]
    kind: str
    raw: str

    @property
    def key(self) -> Tuple[str, Optional[str], Optional[str]]:
        """``(muscle, side, level)``."""
        return (self.muscle, self.side, self.level)


def parse_segment_name(name: str, table: Optional[NameTable] = None) -> ParsedName:
    """Parse a segment name into muscle, side, level and kind.

    Parameters
    ----------
    name : str
        Segment name as written by a tool or a user, e.g. ``"MF_L_L4/5"``,
        ``"multifidus left L4-L5"``, ``"autochthon_left"``, ``"disc_L5_S"``.
    table : NameTable, optional
        Vocabulary; the built-in table when omitted (see :func:`load_name_table`).

    Returns
    -------
    ParsedName

    Warns
    -----
    NameWarning
        Level-like text that is not a level, two different levels, both sides,
        or a level that does not fit the structure (a disc named by a vertebra).

    Notes
    -----
    See the module docstring for the rules; in short: levels are parsed
    first (so ``L`` before a digit is a level, a lone ``L`` is left), then
    aliases are looked up, and a name is a known structure only when all its
    other words belong to that structure's aliases.

    Examples
    --------
    >>> parse_segment_name("MF_L_L4/5").key
    ('multifidus', 'left', 'L4/5')
    >>> parse_segment_name("ES_L5S1").key
    ('erector_spinae', None, 'L5/S1')
    """
    raw = name
    if not isinstance(name, str):
        name = "" if name is None else str(name)
    table = table if table is not None else default_name_table()
    text = _camel_split(name)

    # 1. levels
    spans = _scan_levels(text)
    levels = []
    for _, _, lvl, matched in spans:
        if lvl is None:
            warnings.warn(
                f"segment '{name}': '{matched}' looks like a spinal level but is not a single "
                "vertebra or a disc between adjacent vertebrae; it is ignored",
                NameWarning,
                stacklevel=2,
            )
        elif lvl not in levels:
            levels.append(lvl)
    level = levels[0] if len(levels) == 1 else None
    if len(levels) > 1:
        warnings.warn(
            f"segment '{name}' names several levels {levels}; its level is left empty. Rename it "
            "to hold one level (e.g. 'MF_L_L4/5')",
            NameWarning,
            stacklevel=2,
        )
    rest = text
    for start, end, _, _ in sorted(spans, reverse=True):
        rest = rest[:start] + " " + rest[end:]

    # 2. tokens and aliases
    tokens = tokenize(rest)
    spans_t = table.match(tokens)
    sides = set()
    side_positions = set()
    structures = []
    unknown = False
    for i, j, entry in spans_t:
        if entry is None:
            unknown = True
            continue
        if entry.side is not None:
            sides.add(entry.side)
        if entry.kind == "side":
            side_positions.update(range(i, j))
        elif entry.kind != "ignore":
            structures.append(entry)

    side: Optional[str] = None
    if len(sides) == 1:
        side = sides.pop()
    elif len(sides) > 1:
        warnings.warn(
            f"segment '{name}' names both sides; its side is left empty (use one segment per side)",
            NameWarning,
            stacklevel=2,
        )
        side_positions = set()

    distinct = {(e.canonical, e.kind) for e in structures}
    if not unknown and len(distinct) == 1:
        muscle, kind = distinct.pop()
    elif not unknown and not distinct and level is not None and side is None:
        # a bare level: 'L3' is a vertebra, 'L4-L5' a disc
        kind = "disc" if "/" in level else "vertebra"
        muscle = kind
    else:
        kept = [t for k, t in enumerate(tokens) if k not in side_positions]
        if not kept:  # nothing but a side word or a non-level: keep the whole name
            kept, side = list(tokens) or list(tokenize(name)), None
        muscle = "_".join(kept)
        kind = "other"

    # 3. level versus structure
    if level is not None and kind in ("disc", "vertebra"):
        if (kind == "disc") != ("/" in level):
            warnings.warn(
                f"segment '{name}' is a {kind} but its level '{level}' is a "
                f"{'disc' if '/' in level else 'vertebra'} level; its level is left empty. Name "
                "discs by both vertebrae ('disc_L4_L5') and vertebrae by one ('vertebrae_L4')",
                NameWarning,
                stacklevel=2,
            )
            level = None
    return ParsedName(muscle=muscle, side=side, level=level, kind=kind, raw=raw if isinstance(raw, str) else name)

"""The muscle-name table: which words name which muscle, side or structure kind.

The built-in table is ``data/muscle_names.csv``; users extend it with a CSV
(``--names-table``).  :func:`tokenize` splits a segment name into the words looked up here.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union
from ..errors import InputError
from .tokens import tokenize


__all__ = ['KINDS', 'tokenize', 'NameEntry', 'NameTable', 'builtin_table_path', 'default_name_table', 'load_name_table']

#: Kinds a structure can have (``side`` and ``ignore`` are table-only kinds).
KINDS = ("muscle", "vertebra", "disc", "sacrum", "other")
_TABLE_KINDS = KINDS + ("side", "ignore")
_SIDES = ("left", "right")
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
    """Path of the built-in ``muscle_names.csv``.

    Returns
    -------
    pathlib.Path
        Absolute path of ``ParaspinalFatLib/data/muscle_names.csv`` (columns
        ``alias, canonical, kind`` and optional ``side``).  The file is not
        opened here, so its existence is not checked.
    """
    return Path(__file__).resolve().parents[1] / "data" / "muscle_names.csv"


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
    """The built-in name table (cached).

    Returns
    -------
    NameTable
        The aliases of :func:`builtin_table_path`.  The file is read once per
        process (``functools.lru_cache``); later calls return the same
        immutable object.

    Raises
    ------
    InputError
        The built-in CSV is malformed (missing columns, unknown kind or side,
        an alias defined twice with different meanings).
    """
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

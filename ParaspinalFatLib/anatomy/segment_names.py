"""Parse a segment name into muscle, side, level and kind (``MF_L_L4/5`` -> multifidus, left, L4/5).

Uses the level grammar (:mod:`.level_names`) and the muscle-name table (:mod:`.muscle_names`).
"""

from __future__ import annotations

import warnings
import weakref
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple
from .tokens import camel_split, tokenize
from .muscle_names import NameTable, default_name_table
from .level_names import scan_levels
from ..errors import NameWarning


__all__ = ['ParsedName', 'parse_segment_name', 'parse_segment_names']

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
    table = table if table is not None else default_name_table()
    parsed, messages = _found(name, table, _memo_of(table))
    for message in messages:
        warnings.warn(message, NameWarning, stacklevel=2)
    return parsed


def parse_segment_names(names: Iterable[str], table: Optional[NameTable] = None, *,
                        warn: bool = True) -> List[ParsedName]:
    """:func:`parse_segment_name` of every name, in order (the steps of a measurement that go through
    all the segments of a case call this once each).

    Parameters
    ----------
    names : iterable of str
        Segment names.
    table : NameTable, optional
        Vocabulary; the built-in table when omitted.
    warn : bool
        Issue each name's warnings (as :func:`parse_segment_name` does, in name order);
        ``False``: the parsing only (the warnings belong to where the names are listed).

    Returns
    -------
    list of ParsedName
        One per name, the same as :func:`parse_segment_name` gives.
    """
    table = table if table is not None else default_name_table()
    memo = _memo_of(table)
    out: List[ParsedName] = []
    for name in names:
        parsed, messages = _found(name, table, memo)
        out.append(parsed)
        if warn:
            for message in messages:
                warnings.warn(message, NameWarning, stacklevel=2)
    return out


def _memo_of(table: NameTable) -> Dict[str, Tuple[ParsedName, Tuple[str, ...]]]:
    """The memo of ``table``'s parsed names."""
    recent_table, memo = _RECENT
    if recent_table() is not table:  # (the same table is asked for hundreds of times in a row)
        memo = _MEMO.get(table)
        if memo is None:
            memo = _MEMO.setdefault(table, {})
        _RECENT[:] = [weakref.ref(table), memo]
    return memo


def _found(name, table: NameTable, memo) -> Tuple[ParsedName, Tuple[str, ...]]:
    """The parsed name and its warning texts, from the memo or parsed now (and kept)."""
    found = memo.get(name) if isinstance(name, str) else None
    if found is None:
        found = _parse(name, table)
        if isinstance(name, str):
            if len(memo) >= _MEMO_LIMIT:
                memo.clear()
            memo[name] = found
    return found


# A table is immutable and parsing is pure, so each table keeps its names' results (the parsed
# name and the warning texts, re-issued on every call): a case parses each name in several
# steps, a cohort the same names in every case.
_MEMO: "weakref.WeakKeyDictionary[NameTable, Dict[str, Tuple[ParsedName, Tuple[str, ...]]]]" = \
    weakref.WeakKeyDictionary()
_MEMO_LIMIT = 4096
# the table parsed with last and its memo (a weak reference: the table may still be collected)
_RECENT: list = [lambda: None, {}]


def _parse(name, table: NameTable) -> Tuple[ParsedName, Tuple[str, ...]]:
    """:func:`parse_segment_name` without its warnings: the result and the warning texts."""
    messages = []
    raw = name
    if not isinstance(name, str):
        name = "" if name is None else str(name)
    text = camel_split(name)

    # 1. levels
    spans = scan_levels(text)
    levels = []
    for _, _, lvl, matched in spans:
        if lvl is None:
            messages.append(
                f"segment '{name}': '{matched}' looks like a spinal level but is not a single "
                "vertebra or a disc between adjacent vertebrae; it is ignored"
            )
        elif lvl not in levels:
            levels.append(lvl)
    level = levels[0] if len(levels) == 1 else None
    if len(levels) > 1:
        messages.append(
            f"segment '{name}' names several levels {levels}; its level is left empty. Rename it "
            "to hold one level (e.g. 'MF_L_L4/5')"
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
        messages.append(
            f"segment '{name}' names both sides; its side is left empty (use one segment per side)"
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
            messages.append(
                f"segment '{name}' is a {kind} but its level '{level}' is a "
                f"{'disc' if '/' in level else 'vertebra'} level; its level is left empty. Name "
                "discs by both vertebrae ('disc_L4_L5') and vertebrae by one ('vertebrae_L4')"
            )
            level = None
    parsed = ParsedName(muscle=muscle, side=side, level=level, kind=kind, raw=raw if isinstance(raw, str) else name)
    return parsed, tuple(messages)

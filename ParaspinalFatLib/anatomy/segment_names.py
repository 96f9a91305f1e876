"""Parse a segment name into muscle, side, level and kind (``MF_L_L4/5`` -> multifidus, left, L4/5).

Uses the level grammar (:mod:`.level_names`) and the muscle-name table (:mod:`.muscle_names`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Optional, Tuple
from .tokens import camel_split, tokenize
from .muscle_names import NameTable, default_name_table
from .level_names import scan_levels
from ..errors import NameWarning


__all__ = ['ParsedName', 'parse_segment_name']

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
    text = camel_split(name)

    # 1. levels
    spans = scan_levels(text)
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

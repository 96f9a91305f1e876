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

import functools
import re
from typing import Iterable, List, Optional, Tuple
from ..errors import LevelError
from .tokens import camel_split


__all__ = ['canonical_level', 'is_disc_level', 'is_vertebra_level', 'disc_between', 'adjacent_vertebrae', 'next_vertebra', 'level_sort_key']

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


def scan_levels(text: str) -> List[Tuple[int, int, Optional[str], str]]:
    """All level-like spans ``(start, end, canonical or None, matched text)``.

    This is the level grammar of the module notes, applied left to right
    without overlap.  Callers normally pass text already through
    :func:`~ParaspinalFatLib.anatomy.tokens.camel_split`.

    Parameters
    ----------
    text : str
        Free text such as a segment name (``"MF_L_L4/5"``) or a markup label.

    Returns
    -------
    list of tuple
        One ``(start, end, level, matched)`` per level-like span, in order of
        appearance: ``start``/``end`` are character offsets into ``text``
        (``text[start:end] == matched``) and ``level`` is the canonical level
        (``"L4/5"``, ``"L3"``), or ``None`` when the span looks like a level
        but is not one (a range of non-adjacent vertebrae such as ``"L3-L5"``,
        a non-existent vertebra such as ``"L9"``).  Empty when there is none.
    """
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
    if type(text) is str:  # pure on the text: each spelling is scanned once (a case asks for a few, many times)
        return _canonical_of_text(text)
    return _scan_canonical(text)  # a str subclass is scanned every time, never kept


def _scan_canonical(text: str) -> Optional[str]:
    found = {lvl for _, _, lvl, _ in scan_levels(camel_split(text)) if lvl is not None}
    return found.pop() if len(found) == 1 else None


@functools.lru_cache(maxsize=4096)
def _canonical_of_text(text: str) -> Optional[str]:
    return _scan_canonical(text)


def is_disc_level(level) -> bool:
    """True when ``level`` is a canonical disc level such as ``"L4/5"``.

    Parameters
    ----------
    level : object
        Value to test; anything that is not a ``str`` gives ``False``.

    Returns
    -------
    bool
        ``True`` only for the canonical spelling (``"L4/5"``, ``"L5/S1"``,
        ``"T12/L1"``); other spellings of a disc (``"L4-L5"``, ``"L45"``)
        give ``False``; pass them through :func:`canonical_level` first.
    """
    return isinstance(level, str) and "/" in level and canonical_level(level) == level


def is_vertebra_level(level) -> bool:
    """True when ``level`` is a canonical vertebra level such as ``"L3"`` or ``"S1"``.

    Parameters
    ----------
    level : object
        Value to test; anything that is not a ``str`` gives ``False``.

    Returns
    -------
    bool
        ``True`` for an upper-case region letter ``C``, ``T``, ``L`` or ``S``
        followed by the number of an existing vertebra (C1-C7, T1-T13,
        L1-L6, S1-S5; the transitional T13 and L6 included).  Lower-case or
        prefixed spellings (``"l3"``, ``"vertebrae_L3"``) and disc levels give
        ``False``.
    """
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

    Parameters
    ----------
    level : str
        Canonical vertebra level (``"L3"``) or a disc level in any spelling
        (``"L4/5"``, ``"L4-L5"``); any other value is accepted and sorts last.

    Returns
    -------
    tuple of (float, str)
        ``(position, level)``: the position of a vertebra is a region base
        (C 0, T 100, L 200, S 300) plus its number, a disc lies 0.5 below its
        upper vertebra (``"L4/5"`` -> 204.5, between L4 and L5); unknown
        values get ``inf`` and their ``str``.  The second item breaks ties
        alphabetically.  Use as ``sorted(levels, key=level_sort_key)``.
    """
    if type(level) is str:
        return _text_sort_key(level)  # a level text is parsed once (tables sort the same few levels often)
    return _sort_key(level)


def _sort_key(level) -> Tuple[float, str]:
    v = _parse_vertebra(level) if isinstance(level, str) else None
    if v is not None:
        return (float(_REGION_BASE[v[0]] + v[1]), level)
    try:
        upper, _ = adjacent_vertebrae(level)
    except LevelError:
        return (float("inf"), str(level))
    u = _parse_vertebra(upper)
    return (_REGION_BASE[u[0]] + u[1] + 0.5, level)


@functools.lru_cache(maxsize=4096)
def _text_sort_key(level: str) -> Tuple[float, str]:
    return _sort_key(level)

"""Names of the per-subject variables: short, unique, accepted by every statistics package.

A subject-table column is named ``<muscle>_<metric>_<level>_<side>``:

``muscle``
    :data:`MUSCLE_ABBREVIATIONS` (``multifidus`` -> ``mf``, ``erector_spinae`` ->
    ``es``, ``psoas`` -> ``ps`` ...); any other muscle keeps its snake_case name
    (``gluteus_maximus``), shortened when the whole name would exceed 64 characters.
``metric``
    a key of :data:`METRICS` (``csa``, ``pdff``, ``ff``, ``fatpct``, ``fatcsa``,
    ``leancsa``, ``hu``, ``mean``, ``goutallier``, ``kjaer``), or, when one subject
    has several maps (a ``map_name`` key), the map's tag (``fa``, ``adc``) in place of
    the map's value metric and ``<map tag>_<metric>`` for its other metrics
    (:func:`map_metric`).
``level``
    the canonical level with ``/`` written ``_`` (``L4/5`` -> ``L4_5``, ``L5/S1`` ->
    ``L5_S1``, vertebra ``L3``), or ``mean`` = the mean over L3/4, L4/5 and L5/S1.
``side``
    ``left`` or ``right``; omitted for the left-right mean (or a bilateral ROI).

Examples: ``mf_pdff_mean`` (left-right mean of the three-level mean PDFF),
``ps_csa_L4_5_left``, ``es_csa_mean_left``, ``vl_fa_L4_5_right``.

Every name matches ``[A-Za-z][A-Za-z0-9_]*``, has at most 64 characters, is lower
case except the level tag, and is not an SPSS reserved word (:func:`check_variable_name`).
Clinical columns of the manifest (``"BMI (kg/m2)"``) get such a name from
:func:`safe_column_name`; the codebook keeps the original header as the label.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Any, Dict, NamedTuple, Optional, Set, Tuple

import numpy as np
import pandas as pd

from ..anatomy.level_names import canonical_level
from ..errors import InputError

__all__ = [
    "MAX_NAME_LENGTH", "MUSCLE_ABBREVIATIONS", "Metric", "METRICS", "METRICS_BY_MAP_KIND", "VALUE_METRICS",
    "GRADE_METRICS", "SPSS_RESERVED_WORDS", "muscle_tag", "level_tag", "map_tag", "map_metric", "variable_name",
    "variable_label", "check_variable_name", "safe_column_name", "key_text", "natural_key",
]

#: longest variable name (SPSS, SAS 9, R, Python accept 64; Stata only 32)
MAX_NAME_LENGTH = 64

#: canonical muscle name -> abbreviation used in variable names
MUSCLE_ABBREVIATIONS: Dict[str, str] = {
    "multifidus": "mf",
    "erector_spinae": "es",
    "psoas": "ps",
    "autochthon": "au",
    "iliopsoas": "ip",
    "quadratus_lumborum": "ql",
    "longissimus": "lo",
    "iliocostalis": "ic",
    "spinalis": "sp",
    "psoas_minor": "pm",
}


class Metric(NamedTuple):
    """One per-subject metric: which per-level column it comes from and how it is shown.

    Attributes
    ----------
    column : str
        Column of the per-level table (:data:`ParaspinalFatLib.schemas.LEVEL_COLUMNS`).
    unit : str or None
        Unit of the variable; ``None``: the per-level table's ``unit`` column
        (the map's own unit, e.g. ``HU`` or ``mm2/s``).
    label : str
        Name in labels (``"PDFF"``, ``"CSA"``).
    factor : float
        The per-level value is multiplied by this (100 for ``fatpct`` =
        100 x ``fat_area_ratio``).
    grade : bool
        An ordinal grade (Goutallier, Kjaer): pooled and averaged as grades.
    """

    column: str
    unit: Optional[str]
    label: str
    factor: float = 1.0
    grade: bool = False


#: metric tag -> :class:`Metric`
METRICS: Dict[str, Metric] = {
    "csa": Metric("csa_mm2", "mm2", "CSA"),
    "pdff": Metric("fat_fraction_pct", "%", "PDFF"),
    "ff": Metric("fat_fraction_pct", "%", "fat fraction (Dixon)"),
    "hu": Metric("mean", "HU", "mean density"),
    "mean": Metric("mean", None, "mean"),
    "fatpct": Metric("fat_area_ratio", "%", "fat area percentage", factor=100.0),
    "fatcsa": Metric("fat_csa_mm2", "mm2", "fat CSA"),
    "leancsa": Metric("lean_csa_mm2", "mm2", "lean CSA"),
    "goutallier": Metric("goutallier", "grade", "Goutallier grade", grade=True),
    "kjaer": Metric("kjaer", "grade", "Kjaer grade", grade=True),
}

#: the metric tags of each map kind, in column order.  CT, T1 and T2 are graded
#: on the fat area percentage, PDFF and Dixon on the mean fat fraction
#: (:mod:`ParaspinalFatLib.measurement.grading`); a scalar map has no grades.
#: T1/T2 intensities (a.u.) are not comparable between scans, so no ``mean``.
METRICS_BY_MAP_KIND: Dict[str, Tuple[str, ...]] = {
    "pdff": ("csa", "pdff", "fatpct", "fatcsa", "leancsa", "goutallier", "kjaer"),
    "dixon": ("csa", "ff", "fatpct", "fatcsa", "leancsa", "goutallier", "kjaer"),
    "ct": ("csa", "hu", "fatpct", "fatcsa", "leancsa", "goutallier", "kjaer"),
    "t1": ("csa", "fatpct", "fatcsa", "leancsa", "goutallier", "kjaer"),
    "t2": ("csa", "fatpct", "fatcsa", "leancsa", "goutallier", "kjaer"),
    "scalar": ("csa", "mean"),
}

#: the metric that a map's tag replaces when a ``map_name`` is pivoted into the names
VALUE_METRICS: Tuple[str, ...] = ("pdff", "ff", "hu", "mean")
#: the grade metrics
GRADE_METRICS: Tuple[str, ...] = tuple(k for k, m in METRICS.items() if m.grade)

#: SPSS reserved words: not allowed as variable names (compared case-insensitively)
SPSS_RESERVED_WORDS: Tuple[str, ...] = ("all", "and", "by", "eq", "ge", "gt", "le", "lt", "ne", "not", "or",
                                        "to", "with")

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_TAG = re.compile(r"[a-z][a-z0-9_]*\Z")
_SIDES = ("left", "right")
_MIN_MUSCLE_CHARS = 2


def _snake(text: str) -> str:
    """ASCII snake_case of ``text`` (accents dropped, other characters -> ``_``)."""
    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")


def muscle_tag(muscle: str) -> str:
    """The muscle part of a variable name.

    Parameters
    ----------
    muscle : str
        Canonical muscle name of the per-level table (``"multifidus"``,
        ``"gluteus_maximus"``).

    Returns
    -------
    str
        Its :data:`MUSCLE_ABBREVIATIONS` entry, else its snake_case name
        (``"m_"`` put in front when it would not start with a letter).

    Raises
    ------
    InputError
        ``muscle`` holds no letter or digit.
    """
    if muscle in MUSCLE_ABBREVIATIONS:
        return MUSCLE_ABBREVIATIONS[muscle]
    tag = _snake(muscle)
    if not tag:
        raise InputError(f"muscle name {muscle!r} holds no letter or digit; it cannot name a variable "
                         f"(rename the segment)")
    return tag if tag[0].isalpha() else "m_" + tag


def level_tag(level: str) -> str:
    """The level part of a variable name.

    Parameters
    ----------
    level : str
        Canonical level (``"L4/5"``, ``"L5/S1"``, ``"T12/L1"``, vertebra
        ``"L3"``) or ``"mean"`` (the mean over L3/4, L4/5 and L5/S1).

    Returns
    -------
    str
        ``"L4_5"``, ``"L5_S1"``, ``"T12_L1"``, ``"L3"`` or ``"mean"``.

    Raises
    ------
    InputError
        ``level`` is not a canonical level nor ``"mean"``.
    """
    if level == "mean":
        return "mean"
    if not isinstance(level, str) or canonical_level(level) != level:
        raise InputError(f"level {level!r} cannot name a variable: give a canonical level such as 'L4/5', "
                         f"'L5/S1' or 'L3', or 'mean' (the mean over L3/4, L4/5 and L5/S1)")
    return level.replace("/", "_")


def map_tag(map_name: str) -> str:
    """The tag of a map name in variable names (``"FA"`` -> ``"fa"``, ``"T2*"`` -> ``"t2"``).

    Parameters
    ----------
    map_name : str
        The manifest's ``map_name`` value.

    Returns
    -------
    str
        Lower-case snake_case, at most 24 characters, starting with a letter
        (``"map_"`` put in front otherwise).

    Raises
    ------
    InputError
        ``map_name`` holds no letter or digit.
    """
    tag = _snake(map_name)
    if not tag:
        raise InputError(f"map_name {map_name!r} holds no letter or digit; it cannot name a variable "
                         f"(use e.g. 'FA', 'ADC')")
    if not tag[0].isalpha():
        tag = "map_" + tag
    return tag[:24].rstrip("_")


def map_metric(metric: str, tag: Optional[str]) -> str:
    """The metric part of a variable name when the subject has several maps.

    Parameters
    ----------
    metric : str
        A key of :data:`METRICS`.
    tag : str or None
        :func:`map_tag` of the map; ``None`` (no ``map_name``) returns ``metric``.

    Returns
    -------
    str
        ``metric`` for ``csa`` (one CSA per ROI, whichever map measured it) and
        without a map; the tag for a value metric (:data:`VALUE_METRICS`:
        ``fa`` for the mean of an FA map); ``<tag>_<metric>`` otherwise
        (``pdff_fatpct``).
    """
    if tag is None or metric == "csa":
        return metric
    if metric in VALUE_METRICS:
        return tag
    return f"{tag}_{metric}"


def variable_name(muscle: str, metric: str, level: Optional[str] = None, side: Optional[str] = None) -> str:
    """The subject-table name of one muscle variable.

    Parameters
    ----------
    muscle : str
        Canonical muscle name (abbreviated by :func:`muscle_tag`).
    metric : str
        Metric tag: a key of :data:`METRICS` or a :func:`map_metric` result
        (lower case, ``[a-z][a-z0-9_]*``).
    level : str, optional
        Canonical level (``"L4/5"``, ``"L3"``) or ``"mean"``; ``None`` leaves
        the level out (a value over the whole muscle).
    side : {"left", "right", None}
        ``None`` (or ``""``): the left-right mean, no side tag.

    Returns
    -------
    str
        ``<muscle>_<metric>_<level>_<side>``, e.g. ``"ps_csa_L4_5_left"``,
        ``"mf_pdff_mean"``.  When longer than 64 characters the muscle part is
        shortened.

    Raises
    ------
    InputError
        Unknown side, non-canonical level, a metric tag that is not lower-case
        snake_case, or a name that cannot be made to fit 64 characters.

    Examples
    --------
    >>> variable_name("multifidus", "pdff", "mean"), variable_name("psoas", "csa", "L4/5", "left")
    ('mf_pdff_mean', 'ps_csa_L4_5_left')
    """
    if not isinstance(metric, str) or not _TAG.match(metric):
        raise InputError(f"metric tag {metric!r} cannot name a variable: use lower-case letters, digits "
                         f"and '_', starting with a letter (e.g. 'pdff', 'csa', 'fa')")
    if side in (None, ""):
        side = None
    elif side not in _SIDES:
        raise InputError(f"side {side!r} cannot name a variable: use 'left', 'right' or None (left-right mean)")
    tail = [metric] + ([level_tag(level)] if level is not None else []) + ([side] if side else [])
    head = muscle_tag(muscle)
    rest = "_".join(tail)
    room = MAX_NAME_LENGTH - len(rest) - 1
    if len(head) > room:
        if room < _MIN_MUSCLE_CHARS:
            raise InputError(f"variable name for muscle {muscle!r}, metric {metric!r} would exceed "
                             f"{MAX_NAME_LENGTH} characters; use a shorter map_name")
        head = head[:room].rstrip("_")
    name = f"{head}_{rest}"
    check_variable_name(name)
    return name


def variable_label(muscle: str, metric: str, level: Optional[str] = None, side: Optional[str] = None,
                   map_name: Optional[str] = None) -> str:
    """A readable label of one muscle variable (codebook, SPSS variable label).

    Parameters
    ----------
    muscle : str
        Canonical muscle name.
    metric : str
        A key of :data:`METRICS`.
    level : str, optional
        Canonical level or ``"mean"``.
    side : {"left", "right", None}
        ``None`` or ``""``: the left-right mean.
    map_name : str, optional
        The map the value comes from (several maps per subject).

    Returns
    -------
    str
        e.g. ``"Multifidus PDFF, mean of L3/4-L5/S1, left-right mean"``,
        ``"Vastus lateralis FA, L4/5, left"``.
    """
    who = str(muscle).replace("_", " ")
    who = who[:1].upper() + who[1:]
    what = METRICS[metric].label if metric in METRICS else metric
    if map_name not in (None, "") and metric != "csa":
        what = str(map_name) if metric in VALUE_METRICS else f"{map_name} {what}"
    parts = [f"{who} {what}"]
    if level is not None:
        parts.append("mean of L3/4-L5/S1" if level == "mean" else str(level))
    parts.append(side if side in _SIDES else "left-right mean")
    return ", ".join(parts)


def check_variable_name(name: str) -> None:
    """Refuse a name that a statistics package would not accept.

    Parameters
    ----------
    name : str
        Candidate variable name.

    Raises
    ------
    InputError
        ``name`` does not match ``[A-Za-z][A-Za-z0-9_]*``, has more than 64
        characters, or is an SPSS reserved word (``by``, ``to``, ``and``...,
        any case).
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(f"variable name {name!r} is not accepted by statistics packages: use letters, "
                         f"digits and '_', starting with a letter")
    if len(name) > MAX_NAME_LENGTH:
        raise InputError(f"variable name {name!r} has {len(name)} characters; at most {MAX_NAME_LENGTH} "
                         f"are accepted")
    if name.lower() in SPSS_RESERVED_WORDS:
        raise InputError(f"variable name {name!r} is an SPSS reserved word; choose another name")


def safe_column_name(text: str, taken: Set[str]) -> str:
    """A statistics-safe, unique name for a column header of the manifest.

    Parameters
    ----------
    text : str
        The original header (``"BMI (kg/m2)"``, ``"Age"``, ``"vBMD L1-L2"``).
    taken : set of str
        Names already used; compared case-insensitively (SPSS names are).
        The returned name is added to it.

    Returns
    -------
    str
        Lower-case ASCII snake_case (``"bmi_kg_m2"``, ``"age"``,
        ``"vbmd_l1_l2"``): accents dropped, every run of other characters
        -> ``_``; ``"v_"`` in front when it would not start with a letter
        (``"var"`` when nothing is left), ``"_var"`` after an SPSS reserved
        word, at most 64 characters, and ``_2``, ``_3``... appended when the
        name is taken.

    Examples
    --------
    >>> safe_column_name("BMI (kg/m2)", set())
    'bmi_kg_m2'
    """
    base = _snake(text)
    if not base:
        base = "var"
    elif not base[0].isalpha():
        base = "v_" + base
    base = base[:MAX_NAME_LENGTH].rstrip("_")
    if base in SPSS_RESERVED_WORDS:
        base += "_var"
    used = {t.lower() for t in taken}
    name, k = base, 1
    while name.lower() in used:
        k += 1
        suffix = f"_{k}"
        name = base[:MAX_NAME_LENGTH - len(suffix)].rstrip("_") + suffix
    taken.add(name)
    return name


# =============================================================================
# key values (subject, rater, session, map_name): text, in natural order
# =============================================================================
def key_text(value: Any) -> str:
    """A key value (subject, rater, session, map_name) as text.

    Parameters
    ----------
    value : object
        The value as found in a table.

    Returns
    -------
    str
        ``""`` for a missing value (None, NaN, NA); ``"2"`` for the number
        ``2.0`` (a key read from a CSV as a number); otherwise ``str(value)``
        unchanged (``"007"`` stays ``"007"``).
    """
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return ""
        if float(value).is_integer():
            return str(int(value))
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)


def natural_key(value: Any) -> Tuple:
    """Sort key that orders text with its numbers read as numbers (``"s2"`` < ``"s10"``).

    Parameters
    ----------
    value : object
        A key value (text, number, or missing; see :func:`key_text`).

    Returns
    -------
    tuple
        Compares digit runs numerically and other text case-insensitively;
        missing values and ``""`` sort last.

    Examples
    --------
    >>> sorted(["s10", "s2", "S1"], key=natural_key)
    ['S1', 's2', 's10']
    """
    text = key_text(value)
    if text == "":
        return (1,)
    parts = []
    for chunk in re.split(r"(\d+)", text):
        if chunk:
            parts.append((0, int(chunk), chunk) if chunk.isdigit() else (1, 0, chunk.lower()))
    return (0, tuple(parts), text)

"""What the study report computes: the analysis configuration (TOML) and its checks.

A config file names the analyses of a study report (see :func:`load_config`); two
come with the package:

``seed001`` (the default, ``data/analysis_seed001.toml``)
    Seed paper 001 (383 lumbar MRIs): vBMD groups by the ISCD cut-offs, mean +/- SD per
    group with one-way ANOVA and LSD post hoc tests, male/female t-tests, Pearson
    correlations with vBMD, multiple regression of vBMD on age, sex and the six muscle
    variables, ICCs between repeated readings.
``seed002`` (``data/analysis_seed002.toml``)
    Seed paper 002 (thigh DTI): two groups from a dichotomised Lovett grade, t-tests,
    logistic regression (OR with CI), ROC per predictor and for the combined predictor
    with DeLong comparisons, Cohen's kappa between raters.

File layout
-----------
Top-level keys: ``title``, ``description``, ``base`` (start from a packaged config and
override what the file gives, e.g. ``base = "seed001"``), ``variables`` (``"auto"`` or a
list of columns), ``confidence`` (0.95).  Sections (each runs when present, unless it
says ``enabled = false``): ``[groups]``, ``[descriptives]``, ``[anova]``, ``[by_sex]``,
``[correlations]``, ``[regression]``, ``[reproducibility]``, ``[logistic]``, ``[roc]``,
``[kappa]``, ``[figures]``; their keys are the fields of the section classes below.
In the column lists of ``correlations.columns``, ``regression.predictors``,
``logistic.predictors``, ``roc.predictors`` and ``reproducibility.columns`` the entry
``"@variables"`` stands for the analysed muscle variables and ``"@clinical"`` for
``descriptives.clinical``.  An unknown key raises :class:`~ParaspinalFatLib.errors.InputError`
naming the key and the file (a typo never passes silently).
"""
from __future__ import annotations

import difflib
import sys
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple, Union

from ..errors import InputError

__all__ = [
    "AnalysisConfig", "GroupsConfig", "DescriptivesConfig", "AnovaConfig", "BySexConfig",
    "CorrelationsConfig", "RegressionConfig", "ReproducibilityConfig", "LogisticConfig",
    "RocConfig", "KappaConfig", "FiguresConfig", "load_config", "config_path",
    "PACKAGED_CONFIGS", "GROUP_SOURCES", "VARIABLES_TOKEN", "CLINICAL_TOKEN",
]

#: packaged configs by name -> file in ``ParaspinalFatLib/data``
PACKAGED_CONFIGS: Dict[str, str] = {
    "seed001": "analysis_seed001.toml",
    "seed002": "analysis_seed002.toml",
}
#: how ``[groups]`` makes the group of each subject
GROUP_SOURCES: Tuple[str, ...] = ("vbmd_iscd", "tscore_who", "lovett", "cutoff", "column")
#: list entry standing for the analysed muscle variables
VARIABLES_TOKEN = "@variables"
#: list entry standing for ``descriptives.clinical``
CLINICAL_TOKEN = "@clinical"

_POSTHOC = ("lsd", "bonferroni", "tukey", "none")
_TTESTS = ("student", "welch")
_REPEATED = ("first", "mean")
_ICC_FORMS = ("ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k")
_CORR_METHODS = ("pearson", "spearman")
_DIRECTIONS = ("auto", "<", ">")
_KAPPA_WEIGHTS = ("none", "linear", "quadratic")


@dataclass(frozen=True)
class GroupsConfig:
    """How each subject gets its group (``[groups]``).

    Parameters
    ----------
    enabled : bool
        Make groups (and run every analysis by group).
    column : str
        Source column (e.g. ``"vbmd"``, ``"lovett"``, ``"tscore"``, or a column of labels).
    source : str
        TOML key ``from``: ``"vbmd_iscd"`` (QCT vBMD, ISCD/ACR: normal > 120, osteopenia
        80-120, osteoporosis < 80 mg/cm^3; ``cutoff`` may give other [low, high]),
        ``"tscore_who"`` (DXA T-score, WHO: normal >= -1, osteoporosis <= -2.5; ``cutoff``
        may give [low, high]), ``"lovett"`` (Lovett grade 0-5: poor < ``cutoff`` (default
        4) <= good), ``"cutoff"`` (numeric column cut at the ascending ``cutoff`` values:
        a value below ``cutoff[0]`` gets ``labels[0]``, a value at or above ``cutoff[i]``
        and below ``cutoff[i+1]`` gets ``labels[i+1]``) or ``"column"`` (the column already
        holds the group labels).
    cutoff : tuple of float
        Thresholds (see ``source``).
    labels : tuple of str
        Group names, lowest group first: required for ``"cutoff"`` (one more than
        ``cutoff``); optional renaming of the categories of the other sources (e.g.
        ``["Normal", "Osteopenia", "Osteoporosis"]``).
    order : tuple of str
        Reporting order of the groups (default: the order of ``labels``/categories).
    name : str
        Name of the group column added to the analysed table (``dv`` of logistic/ROC).
    title : str
        What the groups are, for table headings (e.g. ``"vBMD group"``).
    """

    enabled: bool = False
    column: str = "vbmd"
    source: str = "vbmd_iscd"
    cutoff: Tuple[float, ...] = ()
    labels: Tuple[str, ...] = ()
    order: Tuple[str, ...] = ()
    name: str = "group"
    title: str = "Group"


@dataclass(frozen=True)
class DescriptivesConfig:
    """Mean +/- SD per group (``[descriptives]``; seed 001 Table 2).

    Parameters
    ----------
    enabled : bool
        Write the group table.
    clinical : tuple of str
        Numeric clinical columns shown before the muscle variables (age, bmi, vbmd).
    categorical : tuple of str
        Categorical columns shown as counts per group with a chi-square test (sex).
    decimals : int
        Decimals of mean and SD (2 as in the papers); a variable whose SD is below 0.1
        (e.g. DTI FA) gets more, so that its SD keeps two significant digits.
    """

    enabled: bool = False
    clinical: Tuple[str, ...] = ()
    categorical: Tuple[str, ...] = ()
    decimals: int = 2


@dataclass(frozen=True)
class AnovaConfig:
    """Comparison of the groups (``[anova]``): one-way ANOVA, or a t-test for two groups.

    Parameters
    ----------
    enabled : bool
        Test the group differences.
    posthoc : str
        Pairwise comparisons after the ANOVA: ``"lsd"`` (seed 001), ``"bonferroni"``,
        ``"tukey"`` or ``"none"``.
    two_groups : str
        Test when there are exactly two groups: ``"student"`` (pooled variance; what SPSS
        users usually report) or ``"welch"``.
    """

    enabled: bool = False
    posthoc: str = "lsd"
    two_groups: str = "student"


@dataclass(frozen=True)
class BySexConfig:
    """Male/female comparison (``[by_sex]``; seed 001 Table 3).

    Parameters
    ----------
    enabled : bool
        Write the table.
    column : str
        The sex column (two values).
    test : str
        ``"student"`` (pooled variance, seed 001 / SPSS first line) or ``"welch"``.
    order : tuple of str
        The two values in column order (default: a male-like value first, else sorted).
    """

    enabled: bool = False
    column: str = "sex"
    test: str = "student"
    order: Tuple[str, ...] = ()


@dataclass(frozen=True)
class CorrelationsConfig:
    """Correlation of each column with one target (``[correlations]``; seed 001 Table 4).

    Parameters
    ----------
    enabled : bool
        Write the table.
    target : str
        Column every other one is correlated with (``"vbmd"``).
    method : str
        ``"pearson"`` or ``"spearman"``.
    columns : tuple of str
        Columns to correlate (tokens ``@clinical``, ``@variables``); the target is left out.
    """

    enabled: bool = False
    target: str = "vbmd"
    method: str = "pearson"
    columns: Tuple[str, ...] = (CLINICAL_TOKEN, VARIABLES_TOKEN)


@dataclass(frozen=True)
class RegressionConfig:
    """Multiple linear regression (``[regression]``; seed 001 Table 5).

    Parameters
    ----------
    enabled : bool
        Fit and report the model.
    dv : str
        Dependent variable (``"vbmd"``).
    predictors : tuple of str
        Entered together, in this order (tokens allowed).
    categorical : dict
        Predictors to dummy-code: ``{column: reference level}`` (``""`` = first level);
        a TOML list gives the columns with their first level as reference.
    """

    enabled: bool = False
    dv: str = "vbmd"
    predictors: Tuple[str, ...] = ()
    categorical: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReproducibilityConfig:
    """Repeated readings (``[reproducibility]``; seed 001 Table 1) and the one-value rule.

    Parameters
    ----------
    enabled : bool
        Compute ICCs between the readings when the subject table has ``rater`` and/or
        ``session`` columns with repeated readings.
    repeated : str
        How the repeated readings of a subject become the one value per subject used by
        every other analysis: ``"first"`` (lowest session, then lowest rater) or ``"mean"``.
    form : str
        ICC form: ``"ICC2"`` = ICC(A,1), two-way random, absolute agreement, single
        measures (default); ``ICC1``, ``ICC3``, ``ICC1k``, ``ICC2k``, ``ICC3k``.
    columns : tuple of str
        Variables whose ICC is computed (tokens allowed).
    """

    enabled: bool = False
    repeated: str = "first"
    form: str = "ICC2"
    columns: Tuple[str, ...] = (VARIABLES_TOKEN,)


@dataclass(frozen=True)
class LogisticConfig:
    """Binary logistic regression (``[logistic]``; seed 002 Table 2).

    Parameters
    ----------
    enabled : bool
        Fit and report the model.
    dv : str
        Binary outcome column (e.g. the group column ``"group"``).
    predictors : tuple of str
        Predictors (tokens allowed).
    positive : str
        Outcome value that is the event (e.g. ``"poor"``).
    categorical : dict
        Predictors to dummy-code, as in ``[regression]``.
    """

    enabled: bool = False
    dv: str = "group"
    predictors: Tuple[str, ...] = (VARIABLES_TOKEN,)
    positive: str = ""
    categorical: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RocConfig:
    """ROC analysis (``[roc]``; seed 002 Table 4 and Fig. 5).

    Parameters
    ----------
    enabled : bool
        Run it.
    dv : str
        Binary outcome column.
    positive : str
        Outcome value of the cases.
    predictors : tuple of str
        One ROC curve per predictor (tokens allowed).
    combined : bool
        Also the combined predictor: the linear score of a logistic regression of ``dv``
        on all predictors, compared with each single predictor by DeLong's test.
    direction : str
        ``"auto"`` (pROC's median rule, per predictor), ``"<"`` (higher = positive) or ``">"``.
    """

    enabled: bool = False
    dv: str = "group"
    positive: str = ""
    predictors: Tuple[str, ...] = (VARIABLES_TOKEN,)
    combined: bool = True
    direction: str = "auto"


@dataclass(frozen=True)
class KappaConfig:
    """Cohen's kappa between raters (``[kappa]``; seed 002).

    Parameters
    ----------
    enabled : bool
        Run it.
    columns : tuple of str
        Two columns of the subject table, one per rater (e.g. ``["lovett_a", "lovett_b"]``);
        or leave empty and give ``grade``.
    grade : str
        A column of the repeated readings compared between the values of the ``rater``
        key column (every pair of raters, first session).
    weights : str
        ``"none"`` (Cohen's kappa), ``"linear"`` or ``"quadratic"``.
    categories : tuple
        The full ordered category scale (e.g. ``[0, 1, 2, 3, 4, 5]``); default: observed.
    """

    enabled: bool = False
    columns: Tuple[str, ...] = ()
    grade: str = ""
    weights: str = "none"
    categories: Tuple[Any, ...] = ()


@dataclass(frozen=True)
class FiguresConfig:
    """Figures of the report (``[figures]``).

    Parameters
    ----------
    enabled : bool
        Draw figures (needs matplotlib).
    bar_charts : bool
        Mean +/- SD per group with post hoc stars (seed 001 Fig. 3).
    roc : bool
        ROC curves with AUC and CI in the legend (seed 002 Fig. 5).
    scatter : bool
        Each variable against the correlation target, with the least-squares line.
    level_profile : bool
        Left/right profile over the levels (from ``measurements.csv``).
    qc_contact_sheet : bool
        Every case's level-slice QC pictures on one sheet (from ``cases/*/qc/*.png``).
    dpi : int
        Resolution of the PNGs.
    contact_sheet_max : int
        Most QC pictures on the contact sheet (the rest are counted in a note).
    """

    enabled: bool = False
    bar_charts: bool = True
    roc: bool = True
    scatter: bool = True
    level_profile: bool = True
    qc_contact_sheet: bool = True
    dpi: int = 100
    contact_sheet_max: int = 600


_SECTIONS = {
    "groups": GroupsConfig, "descriptives": DescriptivesConfig, "anova": AnovaConfig,
    "by_sex": BySexConfig, "correlations": CorrelationsConfig,
    "regression": RegressionConfig, "reproducibility": ReproducibilityConfig,
    "logistic": LogisticConfig, "roc": RocConfig, "kappa": KappaConfig,
    "figures": FiguresConfig,
}
_TOP_KEYS = ("title", "description", "base", "variables", "confidence")
# TOML key -> dataclass field where they differ ("from" is a Python keyword)
_KEY_TO_FIELD = {("groups", "from"): "source"}


@dataclass(frozen=True)
class AnalysisConfig:
    """The analyses of a study report (read by :func:`load_config`).

    Parameters
    ----------
    title : str
        Report title.
    description : str
        One paragraph shown under the title.
    variables : str or tuple of str
        ``"auto"`` (the six ``{mf,es,ps}_{csa,pdff}_mean`` present; when none is, every
        ``<muscle>_<metric>_mean`` of the codebook) or the columns to analyse.
    confidence : float
        Level of every confidence interval (0.95).
    groups, descriptives, anova, by_sex, correlations, regression, reproducibility, logistic, roc, kappa, figures
        The sections (see their classes).
    source : str
        Where the config was read from (file path or packaged name).
    """

    title: str = "Study report"
    description: str = ""
    variables: Union[str, Tuple[str, ...]] = "auto"
    confidence: float = 0.95
    groups: GroupsConfig = GroupsConfig()
    descriptives: DescriptivesConfig = DescriptivesConfig()
    anova: AnovaConfig = AnovaConfig()
    by_sex: BySexConfig = BySexConfig()
    correlations: CorrelationsConfig = CorrelationsConfig()
    regression: RegressionConfig = RegressionConfig()
    reproducibility: ReproducibilityConfig = ReproducibilityConfig()
    logistic: LogisticConfig = LogisticConfig()
    roc: RocConfig = RocConfig()
    kappa: KappaConfig = KappaConfig()
    figures: FiguresConfig = FiguresConfig()
    source: str = ""

    def to_dict(self) -> Dict[str, Any]:
        """The config as plain data (for a record of what was run).

        Returns
        -------
        dict
            Nested dict of the fields (tuples as lists).
        """
        def plain(value: Any) -> Any:
            if isinstance(value, (list, tuple)):
                return [plain(v) for v in value]
            if isinstance(value, Mapping):
                return {k: plain(v) for k, v in value.items()}
            return value
        return plain(asdict(self))

    def with_changes(self, **changes: Any) -> "AnalysisConfig":
        """A copy with some top-level fields replaced (sections as their config objects).

        Parameters
        ----------
        **changes
            Field names and new values.

        Returns
        -------
        AnalysisConfig
            The changed copy.
        """
        return replace(self, **changes)


# --------------------------------------------------------------------------- reading
def config_path(name: str) -> Path:
    """Path of a packaged config.

    Parameters
    ----------
    name : str
        ``"seed001"`` or ``"seed002"``.

    Returns
    -------
    pathlib.Path
        ``ParaspinalFatLib/data/analysis_<name>.toml``.

    Raises
    ------
    InputError
        ``name`` is not a packaged config.
    """
    try:
        file = PACKAGED_CONFIGS[str(name).lower()]
    except KeyError:
        raise InputError(f"analysis config {name!r} is not a packaged config ({', '.join(PACKAGED_CONFIGS)}) "
                         f"nor a .toml file; give the path of a TOML file or one of those names") from None
    return Path(__file__).resolve().parents[1] / "data" / file


def _toml_module() -> Any:
    if sys.version_info >= (3, 11):
        import tomllib  # novm (3.11+ only, guarded)
        return tomllib
    from ..dependencies import require
    return require("tomli", "reading analysis configs (TOML) on Python < 3.11")


def _read_toml(path: Path) -> Dict[str, Any]:
    toml = _toml_module()
    try:
        with open(path, "rb") as fh:
            return toml.load(fh)
    except OSError as exc:
        raise InputError(f"analysis config {path}: cannot read the file ({exc.strerror or exc})") from None
    except toml.TOMLDecodeError as exc:
        raise InputError(f"analysis config {path}: not valid TOML ({exc}); fix the file") from None


def _unknown(key: str, known: List[str], where: str, file: str) -> InputError:
    close = difflib.get_close_matches(key.split(".")[-1], known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return InputError(f"analysis config {file}: unknown key {key!r}{hint}; the keys of {where} are "
                      f"{', '.join(known)}")


def _bad(file: str, key: str, what: str, value: Any) -> InputError:
    return InputError(f"analysis config {file}: {key} must be {what}, got {value!r}")


def _as_str(value: Any, key: str, file: str) -> str:
    if not isinstance(value, str):
        raise _bad(file, key, "a text string", value)
    return value


def _as_bool(value: Any, key: str, file: str) -> bool:
    if not isinstance(value, bool):
        raise _bad(file, key, "true or false", value)
    return value


def _as_number(value: Any, key: str, file: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(file, key, "a number", value)
    return float(value)


def _as_str_list(value: Any, key: str, file: str) -> Tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(file, key, "a list of text strings", value)
    if len(set(value)) != len(value):
        raise _bad(file, key, "a list without repeats", value)
    return tuple(value)


def _choice(value: Any, key: str, file: str, choices: Tuple[str, ...], lower: bool = True) -> str:
    text = _as_str(value, key, file)
    norm = text.lower() if lower else text
    if norm not in choices:
        raise _bad(file, key, "one of " + ", ".join(repr(c) for c in choices), value)
    return norm


def _categorical(value: Any, key: str, file: str) -> Dict[str, str]:
    if isinstance(value, (list, str)):
        return {name: "" for name in _as_str_list(value, key, file)}
    if isinstance(value, dict):
        out = {}
        for name, ref in value.items():
            if isinstance(ref, bool) or not isinstance(ref, (str, int, float)):
                raise _bad(file, f"{key}.{name}", "a reference level (text or number)", ref)
            out[str(name)] = ref if isinstance(ref, str) else str(ref)
        return out
    raise _bad(file, key, "a list of columns or a table {column = reference level}", value)


def _section_value(section: str, name: str, value: Any, file: str) -> Any:
    """Check one key of a section and convert it to the field's type."""
    key = f"{section}.{name}"
    current = getattr(_SECTIONS[section](), name)
    if name == "enabled":
        return _as_bool(value, key, file)
    special = {
        ("groups", "source"): lambda: _choice(value, f"{section}.from", file, GROUP_SOURCES),
        ("groups", "cutoff"): lambda: tuple(_as_number(v, key, file) for v in (
            value if isinstance(value, list) else [value])),
        ("anova", "posthoc"): lambda: _choice(value, key, file, _POSTHOC),
        ("anova", "two_groups"): lambda: _choice(value, key, file, _TTESTS),
        ("by_sex", "test"): lambda: _choice(value, key, file, _TTESTS),
        ("correlations", "method"): lambda: _choice(value, key, file, _CORR_METHODS),
        ("reproducibility", "repeated"): lambda: _choice(value, key, file, _REPEATED),
        ("reproducibility", "form"): lambda: _icc_form(value, key, file),
        ("roc", "direction"): lambda: _choice(value, key, file, _DIRECTIONS),
        ("kappa", "weights"): lambda: _choice(value, key, file, _KAPPA_WEIGHTS),
        ("kappa", "categories"): lambda: _categories(value, key, file),
        ("logistic", "positive"): lambda: _level(value, key, file),
        ("roc", "positive"): lambda: _level(value, key, file),
    }
    if (section, name) in special:
        return special[(section, name)]()
    if name == "categorical" and section in ("regression", "logistic"):
        return _categorical(value, key, file)
    if isinstance(current, bool):
        return _as_bool(value, key, file)
    if isinstance(current, int):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _bad(file, key, "a whole number >= 1", value)
        return int(value)
    if isinstance(current, tuple):
        return _as_str_list(value, key, file)
    return _as_str(value, key, file)


def _icc_form(value: Any, key: str, file: str) -> str:
    text = _as_str(value, key, file)
    for form in _ICC_FORMS:
        if text.lower() == form.lower():
            return form
    aliases = {"icc(1,1)": "ICC1", "icc(a,1)": "ICC2", "icc(2,1)": "ICC2", "icc(c,1)": "ICC3",
               "icc(3,1)": "ICC3", "icc(1,k)": "ICC1k", "icc(a,k)": "ICC2k", "icc(2,k)": "ICC2k",
               "icc(c,k)": "ICC3k", "icc(3,k)": "ICC3k"}
    norm = text.lower().replace(" ", "")
    if norm in aliases:
        return aliases[norm]
    raise _bad(file, key, "an ICC form (" + ", ".join(_ICC_FORMS) + ", or ICC(A,1)...)", value)


def _level(value: Any, key: str, file: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _bad(file, key, "an outcome value (text or number)", value)
    return value


def _categories(value: Any, key: str, file: str) -> Tuple[Any, ...]:
    if not isinstance(value, list) or any(isinstance(v, (bool, list, dict)) for v in value):
        raise _bad(file, key, "a list of category values", value)
    return tuple(value)


def _merge(base: Dict[str, Any], override: Dict[str, Any]) -> Dict[str, Any]:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key in _SECTIONS:
            merged = dict(out[key])
            merged.update(value)
            out[key] = merged
        else:
            out[key] = value
    return out


def _build(raw: Dict[str, Any], file: str, source: str) -> AnalysisConfig:
    known_top = list(_TOP_KEYS) + list(_SECTIONS)
    top: Dict[str, Any] = {"source": source}
    for key, value in raw.items():
        if key not in known_top:
            raise _unknown(key, known_top, "the top level", file)
        if key in _SECTIONS:
            if not isinstance(value, dict):
                raise _bad(file, f"[{key}]", "a table (section)", value)
            cls = _SECTIONS[key]
            field_names = [f.name for f in fields(cls)]
            toml_names = [("from" if n == "source" and key == "groups" else n) for n in field_names]
            values: Dict[str, Any] = {"enabled": True}
            for name, item in value.items():
                if name not in toml_names:
                    raise _unknown(f"{key}.{name}", toml_names, f"[{key}]", file)
                fname = _KEY_TO_FIELD.get((key, name), name)
                values[fname] = _section_value(key, fname, item, file)
            top[key] = cls(**values)
        elif key == "base":
            continue
        elif key == "variables":
            if isinstance(value, str) and value.lower() == "auto":
                top["variables"] = "auto"
            else:
                names = _as_str_list(value, "variables", file)
                if not names:
                    raise _bad(file, "variables", '"auto" or a non-empty list of columns', value)
                top["variables"] = names
        elif key == "confidence":
            conf = _as_number(value, "confidence", file)
            if not 0.5 <= conf < 1.0:
                raise _bad(file, "confidence", "a level in [0.5, 1), e.g. 0.95", value)
            top["confidence"] = conf
        else:
            top[key] = _as_str(value, key, file)
    config = AnalysisConfig(**top)
    _check_consistency(config, file)
    return config


def _check_consistency(config: AnalysisConfig, file: str) -> None:
    g = config.groups
    if g.enabled:
        if g.source == "cutoff":
            if not g.cutoff:
                raise InputError(f"analysis config {file}: groups.from = 'cutoff' needs groups.cutoff "
                                 "(one or more ascending thresholds)")
            if len(g.labels) != len(g.cutoff) + 1:
                raise InputError(f"analysis config {file}: groups.labels must name {len(g.cutoff) + 1} "
                                 f"groups for {len(g.cutoff)} cutoff value(s), got {list(g.labels)}")
        if list(g.cutoff) != sorted(g.cutoff) or len(set(g.cutoff)) != len(g.cutoff):
            raise InputError(f"analysis config {file}: groups.cutoff must be ascending, got {list(g.cutoff)}")
        n_fixed = {"vbmd_iscd": 3, "tscore_who": 3, "lovett": 2}.get(g.source)
        if n_fixed is not None:
            if g.labels and len(g.labels) != n_fixed:
                raise InputError(f"analysis config {file}: groups.labels must rename the {n_fixed} "
                                 f"categories of groups.from = {g.source!r}, got {list(g.labels)}")
            n_cut = 1 if g.source == "lovett" else 2
            if g.cutoff and len(g.cutoff) != n_cut:
                raise InputError(f"analysis config {file}: groups.cutoff of groups.from = {g.source!r} "
                                 f"takes {n_cut} value(s), got {list(g.cutoff)}")
        if g.order and g.labels and sorted(g.order) != sorted(g.labels):
            raise InputError(f"analysis config {file}: groups.order {list(g.order)} must list the same "
                             f"groups as groups.labels {list(g.labels)}")
    for section in ("logistic", "roc"):
        sec = getattr(config, section)
        if sec.enabled and (sec.positive == "" or sec.positive is None):
            raise InputError(f"analysis config {file}: {section}.positive must name the outcome value "
                             f"of the cases (e.g. \"poor\")")
    k = config.kappa
    if k.enabled and not k.grade and len(k.columns) != 2:
        raise InputError(f"analysis config {file}: [kappa] needs columns = [rater1_column, "
                         f"rater2_column] or grade = column compared between raters")
    if config.by_sex.enabled and config.by_sex.order and len(config.by_sex.order) != 2:
        raise InputError(f"analysis config {file}: by_sex.order must name 2 values, got "
                         f"{list(config.by_sex.order)}")


def load_config(path_or_name: Union[None, str, Path] = None) -> AnalysisConfig:
    """Read an analysis config.

    Parameters
    ----------
    path_or_name : None, str or pathlib.Path
        ``None``: the default (``"seed001"``); ``"seed001"`` / ``"seed002"``: a packaged
        config; otherwise the path of a ``.toml`` file.  A file may say
        ``base = "seed001"`` to start from a packaged config and override what it gives
        (section keys are merged one by one).

    Returns
    -------
    AnalysisConfig
        The checked config (``source`` says where it came from).

    Raises
    ------
    InputError
        The file is missing or not valid TOML, has an unknown key (named with the file),
        a value of the wrong type or outside its choices, or inconsistent settings.
    MissingDependencyError
        Python < 3.11 without the ``tomli`` package.
    """
    if path_or_name is None:
        path_or_name = "seed001"
    text = str(path_or_name)
    if not isinstance(path_or_name, Path) and text.lower() in PACKAGED_CONFIGS:
        path, source = config_path(text), text.lower()
    else:
        path, source = Path(path_or_name), str(path_or_name)
        if not path.is_file():
            if path.suffix.lower() != ".toml":
                config_path(text)  # raises: neither a packaged name nor a file
            raise InputError(f"analysis config {path}: file not found; give an existing .toml file "
                             f"or one of the packaged names {', '.join(PACKAGED_CONFIGS)}")
    raw = _read_toml(path)
    base = raw.get("base")
    if base is not None:
        base_name = _as_str(base, "base", str(path))
        if base_name.lower() not in PACKAGED_CONFIGS:
            raise _bad(str(path), "base", "a packaged config name (" + ", ".join(PACKAGED_CONFIGS) + ")",
                       base)
        base_raw = _read_toml(config_path(base_name))
        base_raw.pop("base", None)
        raw = _merge(base_raw, {k: v for k, v in raw.items() if k != "base"})
        source = f"{source} (base {base_name.lower()})"
    return _build(raw, str(path), source)

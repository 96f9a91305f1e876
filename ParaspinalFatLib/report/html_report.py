"""The study report: tables, figures and one self-contained HTML file from a study folder.

:func:`write_report` reads ``study/subjects.csv`` (and ``codebook.csv``; for the figures
``measurements.csv`` and ``cases/*/qc/*.png`` when present), reduces the readings to one
row per subject (:func:`ParaspinalFatLib.cohort.subject_tables.one_per_subject`), runs the
configured analyses (:func:`~ParaspinalFatLib.report.study_analyses.run_analyses`) and
writes into the report folder (default ``study/report/``):

``results.csv``
    Every number: ``analysis, dv, group_or_term, statistic, value, n`` (atomic,
    spreadsheet-formula-safe).
``tables/<name>.csv`` and ``tables/<name>.md``
    The tables in the papers' layout.
``figures/<name>.png``
    The figures (when matplotlib is installed).
``report.html``
    Everything in one file: the figures embedded as base64 PNG, the tables as HTML
    tables, a methods paragraph (one-value-per-subject rule, group definition, tests,
    post hoc method, ICC form, software versions) and the notes.

Every file is written atomically (temporary file + rename); table and figure files of an
earlier run that this run does not produce are removed, so the folder never mixes runs.
"""
from __future__ import annotations

import base64
import datetime
import html
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from ..atomic_files import atomic_output
from ..errors import InputError, MissingDependencyError
from .analysis_config import AnalysisConfig, load_config
from .study_analyses import (
    TABLE_ORDER, StudyResults, format_number, format_p, run_analyses, stars,
)

__all__ = ["ReportResult", "write_report", "render_html", "FIGURE_BORDER", "markdown_table",
           "read_study_table", "table_numbers", "SUBORDINATE_TABLES"]

#: CSS colour of the frame around every figure of the HTML report (also lets a test find them)
FIGURE_BORDER = "#3b5b7d"
_KEYS = ("subject", "rater", "session")


@dataclass
class ReportResult:
    """What :func:`write_report` wrote.

    Parameters
    ----------
    html : pathlib.Path
        ``report.html``.
    results_csv : pathlib.Path
        ``results.csv``.
    tables : dict of str to pathlib.Path
        Table name -> its CSV file.
    figures : dict of str to pathlib.Path
        Figure name -> its PNG file.
    markdown : dict of str to pathlib.Path
        Table name -> its Markdown file.
    notes : list of str
        Notes of the analyses and the figures.
    study : StudyResults or None
        The analyses' results.
    """

    html: Path
    results_csv: Path
    tables: Dict[str, Path]
    figures: Dict[str, Path]
    markdown: Dict[str, Path] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)
    study: Optional[StudyResults] = None


# --------------------------------------------------------------------------- files
def _write_text_atomic(path: Path, text: str) -> Path:
    with atomic_output(path, what="report file", text=True) as fh:
        fh.write(text)
    return path


def read_study_table(path: Union[str, Path], what: str) -> Any:
    """Read a CSV of the study folder as the cohort wrote it (key columns as text).

    Parameters
    ----------
    path : str or pathlib.Path
        The CSV file.
    what : str
        What it is, for messages (``"subjects.csv"``).

    Returns
    -------
    pandas.DataFrame
        The table; empty cells are missing values, the key columns ``subject``,
        ``rater``, ``session``, ``map_name``, ``case_id`` are text (every column of a
        file named ``codebook.csv``).

    Raises
    ------
    InputError
        The file is missing or cannot be parsed.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputError(f"study: {what} not found at {path}; run `paraspinalfat cohort` first "
                         "(or give the study folder that holds it)")
    if path.name == "codebook.csv":
        text_cols: Any = str
    else:
        text_cols = {c: str for c in ("subject", "rater", "session", "map_name", "case_id")}
    try:
        return pd.read_csv(path, dtype=text_cols, keep_default_na=False, na_values=[""], encoding="utf-8")
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"study: cannot read {what} ({path}): {exc}") from None


def markdown_table(table: Any, title: str = "", footnote: str = "") -> str:
    """A table as GitHub-flavoured Markdown.

    Parameters
    ----------
    table : pandas.DataFrame
        Text cells.
    title : str, optional
        Heading line.
    footnote : str, optional
        Paragraph after the table.

    Returns
    -------
    str
        The Markdown text (``|`` in cells escaped).
    """
    def cell(v: Any) -> str:
        return str(v).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    lines = []
    if title:
        lines += [f"## {cell(title)}", ""]
    lines.append("| " + " | ".join(cell(c) for c in table.columns) + " |")
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    if footnote:
        lines += ["", cell(footnote)]
    return "\n".join(lines) + "\n"


def _remove_stale(folder: Path, keep: Sequence[Path], suffixes: Tuple[str, ...]) -> None:
    if not folder.is_dir():
        return
    keep_names = {p.name for p in keep}
    for p in folder.iterdir():
        if p.is_file() and p.suffix.lower() in suffixes and p.name not in keep_names and not p.name.startswith("."):
            try:
                p.unlink()
            except OSError:
                pass


# --------------------------------------------------------------------------- versions
def _software() -> str:
    import numpy
    import pandas
    import scipy

    from .. import __version__

    parts = [f"ParaspinalFatLib {__version__}", f"Python {platform.python_version()}",
             f"numpy {numpy.__version__}", f"scipy {scipy.__version__}", f"pandas {pandas.__version__}"]
    try:
        import matplotlib
        parts.append(f"matplotlib {matplotlib.__version__}")
    except ImportError:
        pass
    return ", ".join(parts)


# --------------------------------------------------------------------------- HTML
#: tables that continue the one before them (numbered "2b", "5b"...)
SUBORDINATE_TABLES = ("posthoc", "regression_model", "logistic_model", "roc_compare")


def table_numbers(keys: Sequence[str]) -> List[Tuple[str, str]]:
    """Table numbers in report order; a continuation table gets its main table's number + letter.

    Parameters
    ----------
    keys : sequence of str
        Table names present.

    Returns
    -------
    list of (str, str)
        ``(number, name)`` in :data:`~ParaspinalFatLib.report.study_analyses.TABLE_ORDER`
        order, e.g. ``("2", "groups"), ("2b", "posthoc"), ("3", "by_sex")``.
    """
    out: List[Tuple[str, str]] = []
    number, letter = 0, 0
    for key in [k for k in TABLE_ORDER if k in keys]:
        if key in SUBORDINATE_TABLES and number > 0:
            letter += 1
            out.append((f"{number}{'bcdefgh'[min(letter - 1, 6)]}", key))
        else:
            number, letter = number + 1, 0
            out.append((str(number), key))
    return out


_CSS = """
body { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; margin: 24px auto; max-width: 1100px;
       color: #1a1a1a; line-height: 1.4; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; }
p.meta { color: #555; font-size: 13px; margin-top: 0; }
table.results { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
table.results th, table.results td { border-top: 1px solid #999; border-bottom: 1px solid #999;
       padding: 3px 10px; text-align: right; white-space: nowrap; }
table.results th:first-child, table.results td:first-child { text-align: left; }
table.results thead th { background: #e8edf2; border-top: 2px solid #333; border-bottom: 2px solid #333; }
table.results tbody tr:nth-child(even) { background: #f5f7f9; }
table.results tbody tr:last-child td { border-bottom: 2px solid #333; }
p.footnote { font-size: 12px; color: #444; margin-top: 2px; max-width: 1000px; }
figure { margin: 14px 0 22px 0; }
img.figure { border: 3px solid %s; display: block; max-width: 100%%; height: auto; }
figcaption { font-size: 13px; margin-top: 4px; }
section.notes li { font-size: 13px; }
p.methods { font-size: 14px; text-align: justify; }
""" % FIGURE_BORDER


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _html_table(table: Any, table_id: str) -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in table.columns)
    body = []
    for row in table.itertuples(index=False):
        body.append("<tr>" + "".join(f"<td>{_esc(v)}</td>" for v in row) + "</tr>")
    return (f'<table class="results" id="{_esc(table_id)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def render_html(study: StudyResults, config: AnalysisConfig, figures: Dict[str, Path],
                captions: Dict[str, str], *, source: str = "", extra_notes: Sequence[str] = (),
                n_readings: Optional[int] = None) -> str:
    """The self-contained HTML report.

    Parameters
    ----------
    study : StudyResults
        Results of :func:`~ParaspinalFatLib.report.study_analyses.run_analyses`.
    config : AnalysisConfig
        The config that was run.
    figures : dict of str to pathlib.Path
        Figure PNGs to embed (base64), in order.
    captions : dict of str to str
        Caption of each figure.
    source : str, optional
        Where the data came from (the study folder), for the header.
    extra_notes : sequence of str, optional
        Notes besides the analyses' (figures not drawn...).
    n_readings : int, optional
        Rows of ``subjects.csv`` (readings), for the header.

    Returns
    -------
    str
        The HTML document.
    """
    n_subjects = len(study.data) if study.data is not None else 0
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{_esc(config.title)}</title>", f"<style>{_CSS}</style></head><body>",
             f"<h1>{_esc(config.title)}</h1>"]
    meta = f"{n_subjects} subject(s)"
    if n_readings is not None and n_readings != n_subjects:
        meta += f" ({n_readings} readings)"
    if source:
        meta += f" from {source}"
    meta += f"; analysis config {config.source or 'default'}; written {now}."
    parts.append(f'<p class="meta">{_esc(meta)}</p>')
    if config.description:
        parts.append(f"<p>{_esc(config.description)}</p>")
    methods = study.methods + f" Software: {_software()}."
    parts.append('<h2>Methods</h2>')
    parts.append(f'<p class="methods" id="methods">{_esc(methods)}</p>')
    for number, key in table_numbers(list(study.tables)):
        title = study.titles.get(key, key)
        parts.append(f'<section class="table" id="section-{_esc(key)}">')
        parts.append(f"<h2>Table {number}. {_esc(title)}</h2>")
        parts.append(_html_table(study.tables[key], f"table-{key}"))
        if study.footnotes.get(key):
            parts.append(f'<p class="footnote">{_esc(study.footnotes[key])}</p>')
        parts.append("</section>")
    for number, (key, path) in enumerate(figures.items(), start=1):
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        caption = captions.get(key, key)
        parts.append(f'<figure id="figure-{_esc(key)}"><img class="figure" alt="{_esc(caption)}" '
                     f'src="data:image/png;base64,{data}">')
        parts.append(f"<figcaption>Figure {number}. {_esc(caption)}</figcaption></figure>")
    notes = list(study.notes) + [n for n in extra_notes if n not in study.notes]
    if notes:
        parts.append('<section class="notes"><h2>Notes</h2><ul>')
        parts += [f"<li>{_esc(n)}</li>" for n in notes]
        parts.append("</ul></section>")
    parts.append('<p class="footnote">Every number of this report is in results.csv (columns analysis, dv, '
                 'group_or_term, statistic, value, n), as computed by ParaspinalFatLib.stats.</p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------- figures
def _figures(study: StudyResults, config: AnalysisConfig, study_dir: Path, fig_dir: Path,
             notes: List[str]) -> Tuple[Dict[str, Path], Dict[str, str]]:
    from . import study_figures as sf

    fc = config.figures
    figures: Dict[str, Path] = {}
    captions: Dict[str, str] = {}
    if not fc.enabled:
        return figures, captions

    def attempt(name: str, caption: str, fn: Any, *args: Any, **kwargs: Any) -> None:
        try:
            figures[name] = fn(*args, **kwargs)
            captions[name] = caption
        except MissingDependencyError as exc:
            notes.append(f"figure {name} not drawn: {exc}")
        except InputError as exc:
            notes.append(f"figure {name} not drawn: {exc}")

    means = study.figure_data.get("group_means")
    if fc.bar_charts and means is not None and len(means):
        variables = [v for v in study.variables if (means["variable"] == v).any()]
        if variables:
            if len(study.group_order) == 2:
                test = f"{'Student' if config.anova.two_groups == 'student' else 'Welch'} t-test"
            else:
                test = f"post hoc {config.anova.posthoc.upper()}" if config.anova.posthoc != "none" else ""
            caption = (f"Mean ± SD of the muscle variables by {config.groups.title}"
                       + (f"; brackets mark {test} p < 0.05 (*) and p < 0.01 (**)" if test and config.anova.enabled
                          else "") + ".")
            attempt("bar_by_group", caption, sf.bar_chart_by_group, means, fig_dir / "bar_by_group.png",
                    variables=variables, posthoc=study.figure_data.get("posthoc"), labels=study.labels,
                    group_order=study.group_order, dpi=fc.dpi)
    curves = study.raw.get("roc")
    if fc.roc and curves:
        attempt("roc", f"ROC curves for {config.roc.dv} = {config.roc.positive}; legend: AUC with its "
                       f"{100 * config.confidence:g} % DeLong CI.", sf.roc_figure, curves, fig_dir / "roc.png",
                dpi=fc.dpi)
    corr = study.raw.get("correlation") or {}
    target = config.correlations.target
    if fc.scatter and config.correlations.enabled and corr and study.data is not None:
        variables = [v for v in study.variables if v in corr]
        if variables:
            notes_ = {v: f"r = {format_number(corr[v].r)}{stars(corr[v].p)}, p "
                         f"{format_p(corr[v].p) if format_p(corr[v].p).startswith('<') else '= ' + format_p(corr[v].p)}"
                      for v in variables}
            attempt("scatter", f"{study.labels.get(target, target)} against each muscle variable with the "
                               "least-squares line; r and p from the correlation table.",
                    sf.scatter_with_fit, study.data, target, variables, fig_dir / "scatter.png",
                    labels=study.labels, annotations=notes_, dpi=fc.dpi)
    meas = study_dir / "measurements.csv"
    if fc.level_profile and meas.is_file():
        try:
            import pandas as pd
            head = pd.read_csv(meas, nrows=0).columns
            use = [c for c in ("subject", "rater", "session", "muscle", "side", "level", "csa_mm2",
                               "fat_fraction_pct") if c in head]
            m = pd.read_csv(meas, usecols=use, dtype={c: str for c in ("subject", "rater", "session", "muscle",
                                                                         "side", "level") if c in use},
                            keep_default_na=False, na_values=[""])
        except (OSError, ValueError) as exc:
            notes.append(f"figure level_profile not drawn: cannot read {meas} ({exc})")
        else:
            attempt("level_profile", "Muscle variables per level (mean ± SD over subjects), left (solid) and "
                                     "right (dashed), from measurements.csv.", sf.level_profile, m,
                    fig_dir / "level_profile.png", repeated=config.reproducibility.repeated, dpi=fc.dpi)
    if fc.qc_contact_sheet:
        pngs = sorted(p for p in study_dir.glob("cases/*/qc/*.png") if not p.name.endswith("_sagittal.png"))
        if pngs:
            shown = pngs[:fc.contact_sheet_max]
            if len(pngs) > len(shown):
                notes.append(f"QC contact sheet: the first {len(shown)} of {len(pngs)} level-slice pictures are "
                             "shown (figures.contact_sheet_max)")
            labels = [_qc_label(p) for p in shown]
            attempt("qc_contact_sheet", f"QC contact sheet: the level-slice pictures of every case "
                                        f"({len(shown)} pictures); a wrong level or a failed segmentation "
                                        "stands out.", sf.qc_contact_sheet, shown, fig_dir / "qc_contact_sheet.png",
                    labels=labels, dpi=fc.dpi)
    return figures, captions


def _qc_label(path: Path) -> str:
    """``<case_id>_<level>_slice<k>`` from ``cases/<case_id>/qc/<subject>_<level>_slice<k>.png``."""
    case_id, stem = path.parent.parent.name, path.stem
    common = os.path.commonprefix([case_id, stem]).rstrip("_")
    if not common:
        return f"{case_id}/{stem}"
    return case_id + stem[len(common):] if stem[len(common):].startswith("_") else stem


# --------------------------------------------------------------------------- main
def write_report(study: Union[str, Path], config: Union[None, str, Path, AnalysisConfig] = None,
                 output: Union[None, str, Path] = None) -> ReportResult:
    """Tables, figures and the HTML report of a study folder.

    Parameters
    ----------
    study : str or pathlib.Path
        The study folder written by ``paraspinalfat cohort`` (``subjects.csv``,
        ``codebook.csv``, ``measurements.csv``, ``cases/``).
    config : None, str, pathlib.Path or AnalysisConfig
        The analyses: ``None`` = seed 001's design (default), ``"seed002"``, the path of
        a TOML file, or a loaded config.
    output : str or pathlib.Path, optional
        Report folder (default ``study/report``).

    Returns
    -------
    ReportResult
        Paths of ``report.html``, ``results.csv``, the tables and the figures.

    Raises
    ------
    InputError
        No ``subjects.csv`` in the study folder, a bad config, or a file that cannot be
        written.
    """
    from ..cohort.subject_tables import one_per_subject
    from .case_files import write_csv_atomic

    study_dir = Path(study)
    if not study_dir.is_dir():
        raise InputError(f"study folder {study_dir} not found; give the folder written by `paraspinalfat cohort`")
    cfg = config if isinstance(config, AnalysisConfig) else load_config(config)
    readings = read_study_table(study_dir / "subjects.csv", "subjects.csv")
    codebook = None
    if (study_dir / "codebook.csv").is_file():
        codebook = read_study_table(study_dir / "codebook.csv", "codebook.csv")
    keys = [k for k in _KEYS if k in readings.columns]
    if "subject" not in keys:
        raise InputError(f"study: {study_dir / 'subjects.csv'} has no 'subject' column")
    one = one_per_subject(readings, repeated=cfg.reproducibility.repeated, key_columns=tuple(keys))
    results = run_analyses(one, cfg, readings=readings if len(keys) > 1 else None, codebook=codebook)
    out = Path(output) if output is not None else study_dir / "report"
    if out.exists() and not out.is_dir():
        raise InputError(f"report output {out} is a file; give a folder")
    table_dir, fig_dir = out / "tables", out / "figures"
    results_csv = write_csv_atomic(results.results, out / "results.csv")
    tables: Dict[str, Path] = {}
    markdown: Dict[str, Path] = {}
    for key, table in results.tables.items():
        tables[key] = write_csv_atomic(table, table_dir / f"{key}.csv")
        markdown[key] = _write_text_atomic(table_dir / f"{key}.md", markdown_table(
            table, results.titles.get(key, key), results.footnotes.get(key, "")))
    extra: List[str] = []
    figures, captions = _figures(results, cfg, study_dir, fig_dir, extra)
    _remove_stale(table_dir, list(tables.values()) + list(markdown.values()), (".csv", ".md"))
    _remove_stale(fig_dir, list(figures.values()), (".png",))
    page = render_html(results, cfg, figures, captions, source=str(study_dir), extra_notes=extra,
                       n_readings=len(readings))
    html_path = _write_text_atomic(out / "report.html", page)
    return ReportResult(html=html_path, results_csv=results_csv, tables=tables, figures=figures,
                        markdown=markdown, notes=list(results.notes) + extra, study=results)

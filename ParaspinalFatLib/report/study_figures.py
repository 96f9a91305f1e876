"""Figures of a study report (matplotlib, object-oriented API only, no pyplot).

Every function draws one figure from numbers it is given (the report passes the same
numbers its tables show), writes it as a PNG atomically (temporary file + rename) and
returns the path.  Colours are the colour-blind-safe Okabe-Ito palette
(:data:`OKABE_ITO`); every text is drawn literally (no mathtext).

* :func:`bar_chart_by_group` -- mean ± SD per group with post hoc stars (seed 001 Fig. 3);
* :func:`roc_figure` -- ROC curves with AUC and CI in the legend (seed 002 Fig. 5);
* :func:`scatter_with_fit` -- a target (vBMD) against each variable with the least-squares line;
* :func:`level_profile` -- mean ± SD of a metric per level, left and right, per muscle;
* :func:`qc_contact_sheet` -- every case's QC pictures as thumbnails on one sheet (drawn
  with Pillow, which comes with matplotlib: a thousand thumbnails in seconds).
"""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator, Mapping, Optional, Sequence, Tuple, Union

from ..anatomy.level_names import level_sort_key
from ..dependencies import install_hint
from ..atomic_files import atomic_output
from ..errors import InputError, MissingDependencyError
from .qc_layout import load_matplotlib, plain_texts
from .study_analyses import stars

__all__ = ["OKABE_ITO", "bar_chart_by_group", "roc_figure", "scatter_with_fit", "level_profile",
           "qc_contact_sheet", "save_figure"]

#: Okabe & Ito (2008) colour-blind-safe palette, in the order used for groups/curves
OKABE_ITO: Tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9",
                              "#F0E442", "#000000")
_SIDE_STYLE = {"left": "-", "right": "--"}
_PathLike = Union[str, "os.PathLike[str]"]


def _figure(width_in: float, height_in: float, dpi: int) -> Any:
    mpl = load_matplotlib()
    fig = mpl.Figure(figsize=(width_in, height_in), dpi=dpi, facecolor="white", layout="none")
    mpl.FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Any, out: _PathLike) -> Path:
    """Write a figure as PNG atomically (temporary file beside ``out``, then rename).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        A figure on an Agg canvas.
    out : str or os.PathLike
        Destination ``.png``; its folder is created.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    InputError
        The file cannot be written (the previous file, if any, is kept).
    """
    from .. import __version__

    out = Path(out)
    plain_texts(fig)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"figure {out}: cannot create its folder ({exc.strerror or exc})") from None
    with atomic_output(out, what="figure") as fh:
        fig.canvas.print_png(fh, metadata={"Software": f"ParaspinalFatLib {__version__}"})
    return out


def _grid(n: int, ncols: int) -> Tuple[int, int]:
    ncols = max(1, min(ncols, n))
    return int(math.ceil(n / ncols)), ncols


# --------------------------------------------------------------------------- bars
def bar_chart_by_group(group_means: Any, out: _PathLike, *, variables: Optional[Sequence[str]] = None,
                       posthoc: Any = None, labels: Optional[Mapping[str, str]] = None,
                       group_order: Optional[Sequence[Any]] = None, title: Optional[str] = None,
                       ncols: int = 3, dpi: int = 100) -> Path:
    """Bar charts of the group means with SD bars and post hoc stars (seed 001 Fig. 3).

    Parameters
    ----------
    group_means : pandas.DataFrame
        Columns ``variable, group, mean, sd`` (one row per variable and group).
    out : str or os.PathLike
        Output PNG.
    variables : sequence of str, optional
        Panels, in order (default: every variable of ``group_means``).
    posthoc : pandas.DataFrame, optional
        Columns ``variable, group_a, group_b, p``; pairs with p < 0.05 get a bracket with
        ``*`` (p < 0.05) or ``**`` (p < 0.01).
    labels : mapping, optional
        Panel title of each variable (default: the variable name).
    group_order : sequence, optional
        Bar order (default: first appearance in ``group_means``).
    title : str, optional
        Figure title.
    ncols : int, default 3
        Panels per row.
    dpi : int, default 100
        Resolution.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    InputError
        No variable to draw, or the file cannot be written.
    """
    variables = list(variables) if variables is not None else list(dict.fromkeys(group_means["variable"]))
    variables = [v for v in variables if (group_means["variable"] == v).any()]
    if not variables:
        raise InputError(f"bar chart {out}: no variable with group means to draw")
    groups = list(group_order) if group_order is not None else list(dict.fromkeys(group_means["group"]))
    nrows, ncols = _grid(len(variables), ncols)
    fig = _figure(3.3 * ncols, 2.9 * nrows + (0.4 if title else 0.1), dpi)
    top = 1.0 - (0.4 if title else 0.1) / (2.9 * nrows + (0.4 if title else 0.1))
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.08, top=top - 0.05, wspace=0.35, hspace=0.55)
    colours = {g: OKABE_ITO[i % len(OKABE_ITO)] for i, g in enumerate(groups)}
    for idx, var in enumerate(variables):
        ax = fig.add_subplot(nrows, ncols, idx + 1)
        sub = group_means[group_means["variable"] == var].set_index("group")
        present = [g for g in groups if g in sub.index]
        means = [float(sub.loc[g, "mean"]) for g in present]
        sds = [float(sub.loc[g, "sd"]) if math.isfinite(float(sub.loc[g, "sd"])) else 0.0 for g in present]
        x = list(range(len(present)))
        ax.bar(x, means, yerr=sds, capsize=4, color=[colours[g] for g in present], edgecolor="black",
               linewidth=0.6, error_kw={"elinewidth": 0.9, "ecolor": "black"})
        ax.set_xticks(x)
        ax.set_xticklabels([str(g) for g in present], fontsize=8)
        ax.set_title((labels or {}).get(var, var), fontsize=10)
        ax.tick_params(axis="y", labelsize=8)
        ax.spines["top"].set_visible(False)
        ax.spines["right"].set_visible(False)
        tops = [m + s for m, s in zip(means, sds)]
        ymax = max(tops) if tops else 1.0
        ymin = min(0.0, min(means) if means else 0.0)
        span = (ymax - ymin) or 1.0
        level = ymax + 0.06 * span
        if posthoc is not None and len(posthoc):
            ph = posthoc[posthoc["variable"] == var]
            pairs = [(present.index(r["group_a"]), present.index(r["group_b"]), float(r["p"]))
                     for _, r in ph.iterrows()
                     if r["p"] < 0.05 and r["group_a"] in present and r["group_b"] in present]
            for xa, xb, p in sorted(pairs, key=lambda t: (abs(t[1] - t[0]), min(t[0], t[1]))):
                h = 0.025 * span
                ax.plot([xa, xa, xb, xb], [level, level + h, level + h, level], color="black", linewidth=0.8)
                ax.text((xa + xb) / 2.0, level + h, stars(p), ha="center", va="bottom", fontsize=10)
                level += 0.14 * span
        ax.set_ylim(ymin, level + 0.05 * span)
    if title:
        fig.suptitle(title, fontsize=11)
    return save_figure(fig, out)


# --------------------------------------------------------------------------- ROC
def roc_figure(curves: Mapping[str, Any], out: _PathLike, *, title: Optional[str] = None,
               dpi: int = 100) -> Path:
    """ROC curves with AUC and its CI in the legend (seed 002 Fig. 5).

    Parameters
    ----------
    curves : mapping of str to ROCResult
        Legend name -> result of :func:`ParaspinalFatLib.stats.roc` (``fpr``, ``tpr``,
        ``auc``, ``ci_low``, ``ci_high``, ``confidence``).
    out : str or os.PathLike
        Output PNG.
    title : str, optional
        Axes title.
    dpi : int, default 100
        Resolution.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    InputError
        No curve, or the file cannot be written.
    """
    if not curves:
        raise InputError(f"ROC figure {out}: no curve to draw")
    fig = _figure(6.0, 5.6, dpi)
    ax = fig.add_axes([0.12, 0.1, 0.84, 0.8])
    ax.plot([0, 1], [0, 1], color="0.6", linestyle=":", linewidth=1.0)
    styles = ["-", "--", "-.", ":"]
    for i, (name, res) in enumerate(curves.items()):
        conf = getattr(res, "confidence", 0.95)
        label = (f"{name}: AUC {res.auc:.3f} ({100 * conf:g} % CI {res.ci_low:.3f}\u2013{res.ci_high:.3f})")
        ax.step(list(res.fpr), list(res.tpr), where="post", color=OKABE_ITO[i % len(OKABE_ITO)],
                linestyle=styles[(i // len(OKABE_ITO)) % len(styles)], linewidth=1.8, label=label)
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_xlabel("1 \u2212 specificity")
    ax.set_ylabel("Sensitivity")
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=7, frameon=True)
    ax.set_title(title or "ROC curves", fontsize=11)
    return save_figure(fig, out)


# --------------------------------------------------------------------------- scatter
def scatter_with_fit(data: Any, target: str, variables: Sequence[str], out: _PathLike, *,
                     labels: Optional[Mapping[str, str]] = None,
                     annotations: Optional[Mapping[str, str]] = None, ncols: int = 3,
                     dpi: int = 100) -> Path:
    """Scatter of ``target`` against each variable with the least-squares line.

    The line is :func:`ParaspinalFatLib.stats.linear_regression` of ``target`` on the
    variable (complete pairs).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject.
    target : str
        y axis of every panel (e.g. ``"vbmd"``).
    variables : sequence of str
        x axis of each panel.
    out : str or os.PathLike
        Output PNG.
    labels : mapping, optional
        Axis label of each column.
    annotations : mapping, optional
        Text shown in each variable's panel (e.g. ``"r = −0.48**"``).
    ncols : int, default 3
        Panels per row.
    dpi : int, default 100
        Resolution.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    InputError
        No variable, or the file cannot be written.
    """
    import numpy as np
    import pandas as pd

    from .. import stats
    from ..errors import StatsError

    variables = [v for v in variables if v in data.columns and v != target]
    if not variables or target not in data.columns:
        raise InputError(f"scatter figure {out}: nothing to draw (target {target!r}, variables {variables})")
    labels = labels or {}
    nrows, ncols = _grid(len(variables), ncols)
    fig = _figure(3.3 * ncols, 3.0 * nrows, dpi)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.1, top=0.95, wspace=0.35, hspace=0.45)
    y_all = pd.to_numeric(data[target], errors="coerce")
    for idx, var in enumerate(variables):
        ax = fig.add_subplot(nrows, ncols, idx + 1)
        x = pd.to_numeric(data[var], errors="coerce")
        ok = x.notna() & y_all.notna()
        ax.scatter(x[ok], y_all[ok], s=9, color=OKABE_ITO[0], alpha=0.6, edgecolors="none")
        try:
            fit = stats.linear_regression(data.loc[ok, [target, var]], target, [var])
            b = fit.coefficients.set_index("term")["B"]
            xs = np.array([x[ok].min(), x[ok].max()])
            ax.plot(xs, b["const"] + b[var] * xs, color=OKABE_ITO[3], linewidth=1.6)
        except StatsError:
            pass
        ax.set_xlabel(labels.get(var, var), fontsize=8)
        ax.set_ylabel(labels.get(target, target), fontsize=8)
        ax.tick_params(labelsize=7)
        if annotations and var in annotations:
            ax.text(0.03, 0.97, annotations[var], transform=ax.transAxes, ha="left", va="top", fontsize=8,
                    bbox={"facecolor": "white", "edgecolor": "0.7", "boxstyle": "round,pad=0.2"})
    return save_figure(fig, out)


# --------------------------------------------------------------------------- levels
def level_profile(measurements: Any, out: _PathLike, *,
                  metrics: Sequence[Tuple[str, str]] = (("csa_mm2", "CSA (mm²)"),
                                                       ("fat_fraction_pct", "Fat fraction (%)")),
                  repeated: str = "first", dpi: int = 100) -> Path:
    """Mean ± SD over subjects of each metric per level, left and right, per muscle.

    Parameters
    ----------
    measurements : pandas.DataFrame
        ``measurements.csv``: ``subject``, ``muscle``, ``side``, ``level`` and the metric
        columns (optional key columns ``rater``, ``session``).
    out : str or os.PathLike
        Output PNG.
    metrics : sequence of (column, axis label)
        One panel per metric that has values.
    repeated : {"first", "mean"}, default "first"
        Readings of a subject read more than once: the first (lowest session, then
        rater) or the mean of them, as in the other analyses.
    dpi : int, default 100
        Resolution.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    InputError
        A required column is missing or no metric has values; the file cannot be written.
    """
    import pandas as pd

    need = ["subject", "muscle", "side", "level"]
    missing = [c for c in need if c not in measurements.columns]
    if missing:
        raise InputError(f"level profile {out}: measurements lack the column(s) {missing}")
    from ..cohort.subject_tables import first_reading_rows

    m = measurements
    if repeated == "first":  # the reading the tables use (one_per_subject's rule)
        m = m[first_reading_rows(m, ("session", "rater"))]
    panels = [(col, lab) for col, lab in metrics
              if col in m.columns and pd.to_numeric(m[col], errors="coerce").notna().any()]
    if not panels:
        raise InputError(f"level profile {out}: none of the metrics {[c for c, _ in metrics]} has values")
    fig = _figure(5.2 * len(panels), 4.3, dpi)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.27, top=0.88, wspace=0.3)
    for p_idx, (col, lab) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), p_idx + 1)
        d = m[["subject", "muscle", "side", "level"]].copy()
        d["value"] = pd.to_numeric(m[col], errors="coerce")
        d = d.dropna(subset=["value"])
        d["side"] = d["side"].fillna("").astype(str)
        per_subject = d.groupby(["subject", "muscle", "side", "level"], as_index=False)["value"].mean()
        summary = per_subject.groupby(["muscle", "side", "level"])["value"].agg(["mean", "std", "count"])
        summary = summary.reset_index()
        levels = sorted(summary["level"].unique(), key=level_sort_key)
        pos = {lev: i for i, lev in enumerate(levels)}
        muscles = list(dict.fromkeys(summary["muscle"]))
        series = [(i, muscle, side) for i, muscle in enumerate(muscles)
                  for side in sorted(summary.loc[summary["muscle"] == muscle, "side"].unique())]
        for j, (i, muscle, side) in enumerate(series):
            s = summary[(summary["muscle"] == muscle) & (summary["side"] == side)]
            s = s.assign(x=s["level"].map(pos)).sort_values("x")
            name = f"{muscle.replace('_', ' ')} {side}".strip()
            shift = (j - (len(series) - 1) / 2.0) * min(0.05, 0.5 / max(len(series), 1))
            ax.errorbar(s["x"] + shift,
                        s["mean"], yerr=s["std"].fillna(0.0), color=OKABE_ITO[i % len(OKABE_ITO)],
                        linestyle=_SIDE_STYLE.get(side, ":"), marker="o", markersize=3.5, capsize=3,
                        linewidth=1.3, label=name)
        ax.set_xticks(range(len(levels)))
        ax.set_xticklabels([str(lv) for lv in levels], fontsize=8)
        ax.set_ylabel(lab, fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
        ax.legend(fontsize=6.5, ncol=3, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.1))
        ax.set_title(f"{lab}: mean ± SD over subjects", fontsize=9)
    fig.suptitle("Level profile (solid: left, dashed: right)", fontsize=10)
    return save_figure(fig, out)


# --------------------------------------------------------------------------- QC sheet
def _pillow() -> Any:
    try:
        from PIL import Image, ImageDraw, ImageFont, PngImagePlugin
    except ImportError as exc:
        raise MissingDependencyError(
            "the QC contact sheet needs Pillow, which comes with matplotlib, an optional dependency of "
            f"paraspinalfat: {install_hint('matplotlib')}; import failed: {exc}") from exc
    return SimpleNamespace(Image=Image, ImageDraw=ImageDraw, ImageFont=ImageFont, PngInfo=PngImagePlugin.PngInfo)


def _caption_font(pil: Any, size_px: int) -> Any:
    try:
        import matplotlib
        path = Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        return pil.ImageFont.truetype(str(path), size_px)
    except (ImportError, OSError):
        return pil.ImageFont.load_default()


def _thumbnail(pil: Any, path: Path, thumb_px: int) -> Any:
    """The picture on white, shrunk by the integer factor that fits ``thumb_px`` (box filter)."""
    try:
        with pil.Image.open(path) as im:
            im.load()
            has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
            full = im if im.mode == ("RGBA" if has_alpha else "RGB") else im.convert("RGBA" if has_alpha else "RGB")
            step = max(1, int(math.ceil(max(full.size) / float(thumb_px))))
            small = full.reduce(step) if step > 1 else full.copy()
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"contact sheet: cannot read the QC picture {path} ({exc})") from None
    if not has_alpha:
        return small
    white = pil.Image.new("RGBA", small.size, (255, 255, 255, 255))
    return pil.Image.alpha_composite(white, small).convert("RGB")


def _thumbnails(pil: Any, paths: Sequence[Path], thumb_px: int) -> Iterator[Any]:
    """Thumbnails in order, decoded by a few threads (Pillow releases the GIL), in chunks."""
    workers = max(1, min(4, os.cpu_count() or 1))
    chunk = 16 * workers
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(paths), chunk):
            yield from pool.map(lambda p: _thumbnail(pil, p, thumb_px), paths[start:start + chunk])


def qc_contact_sheet(png_paths: Sequence[_PathLike], out: _PathLike, *,
                     labels: Optional[Sequence[str]] = None, ncols: int = 10, thumb_px: int = 120,
                     dpi: int = 100) -> Path:
    """Thumbnails of QC pictures on one sheet, each with its caption (Pillow, no matplotlib figure:
    a sheet of a thousand pictures takes seconds, not minutes).

    Parameters
    ----------
    png_paths : sequence of path
        The QC PNGs (e.g. every ``cases/*/qc/*.png`` level slice), in sheet order.
    out : str or os.PathLike
        Output PNG.
    labels : sequence of str, optional
        Caption under each thumbnail (default: the file name without ``.png``).
    ncols : int, default 10
        Thumbnails per row.
    thumb_px : int, default 120
        Largest side of a thumbnail in pixels (pictures are shrunk by an integer factor,
        averaging each block of pixels).
    dpi : int, default 100
        Resolution written into the PNG; also scales the caption font (10 px at 100 dpi).

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    InputError
        No picture, an unreadable picture (named), or the file cannot be written.
    """
    pil = _pillow()
    paths = [Path(p) for p in png_paths]
    if not paths:
        raise InputError(f"contact sheet {out}: no QC picture to show")
    captions = list(labels) if labels is not None else [p.stem for p in paths]
    if len(captions) != len(paths):
        raise InputError(f"contact sheet {out}: {len(captions)} labels for {len(paths)} pictures")
    nrows, ncols = _grid(len(paths), ncols)
    cap_px, gap = 16, 6
    cell_w, cell_h = thumb_px + gap, thumb_px + cap_px + gap
    sheet = pil.Image.new("RGB", (ncols * cell_w + gap, nrows * cell_h + gap), (255, 255, 255))
    draw = pil.ImageDraw.Draw(sheet)
    font = _caption_font(pil, max(8, int(round(10 * dpi / 100.0))))
    for i, thumb in enumerate(_thumbnails(pil, paths, thumb_px)):
        r, c = divmod(i, ncols)
        x0, y0 = gap + c * cell_w, gap + r * cell_h
        sheet.paste(thumb, (x0 + (thumb_px - thumb.size[0]) // 2, y0 + (thumb_px - thumb.size[1]) // 2))
        text = str(captions[i])
        while len(text) > 4 and draw.textlength(text, font=font) > cell_w - 2:
            text = text.rstrip("\u2026")[:-1] + "\u2026"
        width = draw.textlength(text, font=font)
        draw.text((x0 + (thumb_px - width) / 2.0, y0 + thumb_px + 2), text, fill=(0, 0, 0), font=font)
    return _save_pillow(pil, sheet, Path(out), dpi)


def _save_pillow(pil: Any, image: Any, out: Path, dpi: int) -> Path:
    from .. import __version__

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"figure {out}: cannot create its folder ({exc.strerror or exc})") from None
    info = pil.PngInfo()
    info.add_text("Software", f"ParaspinalFatLib {__version__}")
    with atomic_output(out, what="figure") as fh:
        image.save(fh, format="PNG", pnginfo=info, dpi=(dpi, dpi), compress_level=3)
    return out

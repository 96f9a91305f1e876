"""Quality-control pictures: is the level right, and is the fat call right?

Two pure rendering functions write PNG files from 2-D numpy arrays; the caller
extracts the slices from its volumes.

:func:`render_level_slice`
    One axial measurement slice in grey, every ROI outlined in its own colour,
    fat voxels filled in one colour and undefined voxels (no fat call possible,
    e.g. ``W + F`` near 0 or a NaN in the map) in another, each ROI labelled
    with its numbers ("MF L: CSA 612 mm², FF 18.2 %, Goutallier 1"), a title
    (level, slice index, offset) and a small legend.
:func:`render_sagittal_overview`
    A sagittal (or coronal) reformat with the disc levels drawn as labelled
    lines ("L4/5 (vertebra masks)"): horizontal at a level's row, or tilted
    where an oblique (disc-parallel) measurement plane cuts the section.

matplotlib is an optional dependency (``pip install paraspinalfat[report]``);
it is imported only when a picture is drawn, and only its object-oriented API
is used (``Figure`` + ``FigureCanvasAgg``): no pyplot, no global backend or
rcParams changes, safe in Slicer and in worker threads.

The machinery lives in two helper modules: :mod:`.qc_layout` (the pixel-exact
frame every picture shares: sizes, fonts, title and window line, side names,
image, scale bar, outline and label geometry) and :mod:`.qc_png` (the
pixel-mapping record in the PNG, reading it back, atomic writing).  The names
a caller needs are all importable from here.

Conventions
-----------
* **Array order.**  A slice is passed as a numpy array indexed ``[row, col]``.
  For an axial slice of a volume read with SimpleITK (numpy order
  ``[k, j, i]``), pass ``volume[k]``, i.e. ``[j, i]``: rows run along the ITK
  j axis, columns along i.  ``pixel_spacing`` is ``(row_mm, col_mm)``, i.e.
  ``(spacing_j, spacing_i)`` -- note the reversal of SimpleITK's
  ``GetSpacing()`` order.
* **Display.**  Row 0 is at the top, column 0 at the left (origin upper-left),
  each voxel drawn as a rectangle of its true physical aspect.  For an array
  with the identity LPS direction (i towards patient Left, j towards
  Posterior) this is the radiological view: patient **Right on the viewer's
  left**, anterior at the top.  ``flip_lr`` / ``flip_ud`` mirror the display
  for other directions; ``edge_labels`` names the array's sides (use
  :data:`LPS_AXIAL_EDGE_LABELS` for LPS arrays) and follows the flips.
* **Sagittal overview.**  Rows must run cranio-caudally.  ``volume[:, :, i]``
  of an LPS array is ``[k, j]`` with k increasing towards Superior, so row 0
  is the most *inferior* slice: pass ``flip_ud=True`` to put cranial at the
  top.  Level-line positions are given in the passed array's row coordinates
  (voxel centres at integers, e.g. the fractional k of a disc mid-plane), or
  as a tilted line by a slope or two end points in its ``(row, col)``
  coordinates, so they follow the flips automatically.
* **Exact colours.**  The grey slice, the fat fill and the undefined fill are
  composed into one RGB image in numpy, upsampled nearest-neighbour in numpy
  (every voxel covering at least ``min_px_per_voxel`` output pixels in each
  direction) and placed unresampled at an integer pixel offset.  The PNG pixel holding
  a voxel's centre therefore has exactly that voxel's colour (to the 8-bit
  rounding of the colour): the fat colour for an (opaque) fat voxel, R = G = B
  for a lean one.  Outlines run along the voxel *edges* (the honest boundary
  of a voxel mask), so they never cover a voxel centre.
* **Pixel mapping.**  Every PNG carries a :class:`QCFigureInfo` (JSON in a
  PNG text chunk, key ``"ParaspinalFat-QC"``) with the exact pixel rectangle
  of the image.  :func:`voxel_to_pixel` maps voxel indices of the *passed*
  array (crops and flips are accounted for) to PNG ``(row, col)`` pixel
  indices; :func:`read_qc_info` returns the record.  Reading it needs only the
  standard library.
* **Files** are written atomically: a temporary file in the destination folder
  is renamed over the target (``os.replace``), so a reader never sees a half
  written picture and a failure leaves no temporary file behind.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Mapping, Optional, Sequence, Tuple, Union
import numpy as np
from ..errors import InputError
from .qc_layout import TEXT_COLOR, PictureFrame, edge_segments, load_matplotlib, place_labels, plain_texts
from .qc_png import PNG_INFO_KEY, QCFigureInfo, read_qc_info, voxel_to_pixel


__all__ = ['DEFAULT_FAT_COLOR', 'DEFAULT_UNDEFINED_COLOR', 'DEFAULT_OUTLINE_COLORS', 'DEFAULT_LEVEL_LINE_COLOR', 'LPS_AXIAL_EDGE_LABELS', 'PNG_INFO_KEY', 'RoiOverlay', 'QCFigureInfo', 'read_qc_info', 'voxel_to_pixel', 'render_level_slice', 'render_sagittal_overview']

_PathLike = Union[str, os.PathLike]
Color = Union[str, Sequence[float]]
#: Fat fill colour (RGB 0-1): saturated yellow, unmistakable on grey and
#: distinct from every outline colour.
DEFAULT_FAT_COLOR: Tuple[float, float, float] = (1.0, 0.85, 0.0)
#: Undefined-voxel fill colour: magenta, the conventional "no value" colour.
DEFAULT_UNDEFINED_COLOR: Tuple[float, float, float] = (1.0, 0.0, 1.0)
#: Outline colours, used in turn for the ROIs; none is close to the fills.
DEFAULT_OUTLINE_COLORS: Tuple[Tuple[float, float, float], ...] = (
    (0.0, 0.9, 1.0),    # cyan
    (0.2, 1.0, 0.2),    # green
    (1.0, 0.25, 0.25),  # red
    (0.3, 0.5, 1.0),    # blue
    (1.0, 0.55, 0.0),   # orange
    (0.7, 0.45, 1.0),   # violet
    (0.55, 1.0, 0.8),   # aquamarine
    (1.0, 0.6, 0.75),   # pink
)
#: Colour of the level lines of the sagittal overview.
DEFAULT_LEVEL_LINE_COLOR: Tuple[float, float, float] = (1.0, 0.2, 0.2)
#: ``edge_labels`` of an axial ``[j, i]`` slice of an array with identity LPS
#: direction: (column 0 side, last column side, row 0 side, last row side).
LPS_AXIAL_EDGE_LABELS: Tuple[str, str, str, str] = ("R", "L", "A", "P")
_NAN_COLOR = (0.0, 0.0, 0.0)


# --------------------------------------------------------------------------- data
@dataclass
class RoiOverlay:
    """One ROI drawn on a QC slice.

    Parameters
    ----------
    name : str
        Short name shown in the legend ("MF L", "autochthon_left").
    mask : array_like of bool, shape (rows, cols)
        ROI voxels on the slice (same shape as the image).
    fat : array_like of bool, optional
        Voxels classified as fat.  Only voxels inside ``mask`` are filled.
    undefined : array_like of bool, optional
        Voxels for which no fat call was possible (NaN map value, ``W + F``
        near 0...).  Only voxels inside ``mask`` are filled; they take
        precedence over ``fat``.
    label_text : str, optional
        Annotation written next to the ROI, e.g.
        ``"MF L: CSA 612 mm², FF 18.2 %, Goutallier 1"``; defaults to ``name``.
        May contain line breaks.
    color : colour, optional
        Outline colour (any matplotlib colour); overrides ``outline_colors``.
    """

    name: str
    mask: Any
    fat: Any = None
    undefined: Any = None
    label_text: Optional[str] = None
    color: Optional[Color] = None


# --------------------------------------------------------------------------- inputs
def _rgb(mpl, color, what: str) -> Tuple[float, float, float]:
    try:
        return tuple(float(v) for v in mpl.to_rgb(color))  # type: ignore[return-value]
    except (ValueError, TypeError) as exc:
        raise InputError(f"{what} {color!r} is not a colour: {exc}") from exc


def _check_png_path(path: _PathLike) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InputError(f"QC picture path {path} must end in .png")
    return path


def _image_array(image2d, what: str) -> np.ndarray:
    a = np.asarray(image2d)
    if a.ndim != 2:
        raise InputError(f"{what} must be a 2-D array (rows, cols), got shape {a.shape}")
    if a.size == 0:
        raise InputError(f"{what} is empty (shape {a.shape})")
    if a.dtype == bool:
        a = a.astype(np.float64)
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise InputError(f"{what} must hold real numbers, got dtype {a.dtype}")
    return a.astype(np.float64, copy=False)


def _spacing(pixel_spacing) -> Tuple[float, float]:
    try:
        sp = tuple(float(v) for v in pixel_spacing)
    except (TypeError, ValueError) as exc:
        raise InputError(f"pixel_spacing must be (row_mm, col_mm), got {pixel_spacing!r}") from exc
    if len(sp) != 2 or not all(math.isfinite(v) and v > 0 for v in sp):
        raise InputError(f"pixel_spacing must be two positive numbers (row_mm, col_mm), got {pixel_spacing!r}")
    return sp  # type: ignore[return-value]


def _bool_layer(arr, shape, what: str) -> Optional[np.ndarray]:
    if arr is None:
        return None
    a = np.asarray(arr)
    if a.shape != tuple(shape):
        raise InputError(f"{what} has shape {a.shape}, the image slice {tuple(shape)}")
    if a.dtype != bool:
        if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
            raise InputError(f"{what} must be boolean, got dtype {a.dtype}")
        a = np.nan_to_num(a.astype(np.float64)) != 0
    return a


def _window(data: np.ndarray, window, percentiles) -> Tuple[Tuple[float, float], str]:
    """Grey window (low, high) and a short description of its origin."""
    if window is not None:
        try:
            lo, hi = (float(v) for v in window)
        except (TypeError, ValueError) as exc:
            raise InputError(f"window must be (low, high), got {window!r}") from exc
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            raise InputError(f"window must be finite with low < high, got {window!r}")
        return (lo, hi), "fixed"
    try:
        p_lo, p_hi = (float(v) for v in percentiles)
    except (TypeError, ValueError) as exc:
        raise InputError(f"percentiles must be (low, high), got {percentiles!r}") from exc
    if not (0.0 <= p_lo < p_hi <= 100.0):
        raise InputError(f"percentiles must satisfy 0 <= low < high <= 100, got {percentiles!r}")
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        return (0.0, 1.0), "no finite values"
    lo, hi = (float(v) for v in np.percentile(finite, [p_lo, p_hi]))
    if not hi > lo:  # flat slice: widen around the value
        lo, hi = float(finite.min()), float(finite.max())
        if not hi > lo:
            lo, hi = lo - 0.5, lo + 0.5
    return (lo, hi), f"{p_lo:g}-{p_hi:g} % of view"


def _grey(data: np.ndarray, lo: float, hi: float) -> np.ndarray:
    g = (data - lo) / (hi - lo)
    with np.errstate(invalid="ignore"):
        g = np.clip(g, 0.0, 1.0)
    rgb = np.repeat(g[..., None], 3, axis=2)
    bad = ~np.isfinite(data)
    if bad.any():
        rgb[bad] = _NAN_COLOR
    return rgb


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)


def _view(a: Optional[np.ndarray], r0: int, r1: int, c0: int, c1: int, flip_lr: bool, flip_ud: bool):
    if a is None:
        return None
    v = a[r0:r1, c0:c1]
    if flip_ud:
        v = v[::-1, :]
    if flip_lr:
        v = v[:, ::-1]
    return np.ascontiguousarray(v)


def _crop_box(masks: Sequence[np.ndarray], shape, spacing, margin_mm) -> Tuple[int, int, int, int]:
    rows, cols = shape
    if margin_mm is None:
        return 0, rows, 0, cols
    margin_mm = float(margin_mm)
    if not (math.isfinite(margin_mm) and margin_mm >= 0):
        raise InputError(f"crop_margin_mm must be >= 0, got {margin_mm!r}")
    union = np.zeros(shape, dtype=bool)
    for m in masks:
        union |= m
    if not union.any():
        return 0, rows, 0, cols
    rr = np.nonzero(union.any(axis=1))[0]
    cc = np.nonzero(union.any(axis=0))[0]
    mr = int(math.ceil(margin_mm / spacing[0]))
    mc = int(math.ceil(margin_mm / spacing[1]))
    return (max(0, rr[0] - mr), min(rows, rr[-1] + 1 + mr), max(0, cc[0] - mc), min(cols, cc[-1] + 1 + mc))


def _checked_inputs(path: _PathLike, image2d, what: str, pixel_spacing, edge_labels):
    """matplotlib and the arguments every picture has: PNG path, 2-D image, spacing, side names."""
    mpl = load_matplotlib()
    path = _check_png_path(path)
    img = _image_array(image2d, what)
    spacing = _spacing(pixel_spacing)
    if edge_labels is not None and len(edge_labels) != 4:
        raise InputError(f"edge_labels must name 4 sides (col 0, last col, row 0, last row), got {edge_labels!r}")
    return mpl, path, img, spacing


def _windowed_grey(img: np.ndarray, box, flip_lr: bool, flip_ud: bool, window, percentiles):
    """The displayed part of ``img`` (crop ``box``, flips) as grey RGB 0-1, its window and the window's origin."""
    view = _view(img, *box, flip_lr, flip_ud)
    win, source = _window(view, window, percentiles)
    return _grey(view, *win), win, source


# --------------------------------------------------------------------------- level slice
def _prepared_rois(mpl, rois: Sequence[RoiOverlay], shape, outline_colors) -> List[tuple]:
    """Checked ROIs as ``(name, mask, fat, undefined, outline RGB, label text)``."""
    prepared = []
    for n, roi in enumerate(rois):
        if not isinstance(roi, RoiOverlay):
            raise InputError(f"rois[{n}] must be a RoiOverlay, got {type(roi).__name__}")
        what = f"ROI '{roi.name}'"
        mask = _bool_layer(roi.mask, shape, f"{what} mask")
        fat = _bool_layer(roi.fat, shape, f"{what} fat layer")
        und = _bool_layer(roi.undefined, shape, f"{what} undefined layer")
        if roi.color is not None:
            color = roi.color
        elif isinstance(outline_colors, Mapping):
            color = outline_colors.get(roi.name, DEFAULT_OUTLINE_COLORS[n % len(DEFAULT_OUTLINE_COLORS)])
        elif outline_colors is not None and len(outline_colors) > 0:
            color = outline_colors[n % len(outline_colors)]
        else:
            color = DEFAULT_OUTLINE_COLORS[n % len(DEFAULT_OUTLINE_COLORS)]
        text = roi.name if roi.label_text is None else str(roi.label_text)
        prepared.append((str(roi.name), mask, fat, und, _rgb(mpl, color, f"{what} outline colour"), text))
    return prepared


def _legend(frame: PictureFrame, shown, labels: str, line_width_pt: float, fills):
    """The legend of the outlines and of the ``fills`` ``(rgb, label)`` used, measured.

    Returns ``(legend, width, height)`` in pixels, ``(None, 0, 0)`` when there
    is nothing to list.  The columns are reduced until the legend fits the
    picture's width; it is positioned once the figure size is known.
    """
    mpl = frame.mpl
    handles = []
    for name, m, color, text in shown:
        label = text if labels == "legend" else name
        if not m.any():
            label += " (not on this slice)"
        handles.append(mpl.Line2D([], [], color=color, linewidth=line_width_pt * 1.6, label=label))
    for rgb, label in fills:
        handles.append(mpl.Patch(facecolor=tuple(rgb), edgecolor="none", label=label))
    if not handles:
        return None, 0.0, 0.0
    avail = max(frame.img_w, frame.header_width) + 2 * frame.band
    ncol = len(handles) if labels != "legend" else 1
    while True:
        legend = frame.fig.legend(handles=handles, loc="upper center", ncol=ncol, fontsize=frame.fs_small,
                                  frameon=False, labelcolor=TEXT_COLOR, handlelength=1.6,
                                  columnspacing=1.2, borderaxespad=0.0)
        plain_texts(legend)
        bb = legend.get_window_extent(frame.renderer)
        leg_w, leg_h = float(bb.width), float(bb.height)
        if leg_w <= avail or ncol == 1:
            return legend, leg_w, leg_h
        legend.remove()
        ncol -= 1


def _label_rois(frame: PictureFrame, ax, shown) -> None:
    """Each ROI's label text in a box next to it, with a leader line when detached."""
    todo = [(name, m, color, text) for name, m, color, text in shown if m.any() and text]
    if not todo:
        return
    mpl, font_px, pw, ph = frame.mpl, frame.font_px, frame.pw, frame.ph
    union = np.zeros((frame.n_rows, frame.n_cols), dtype=bool)
    for _, m, _, _ in shown:
        union |= m
    occ = union.copy()  # dilate by one voxel (4-neighbourhood)
    occ[1:, :] |= union[:-1, :]
    occ[:-1, :] |= union[1:, :]
    occ[:, 1:] |= union[:, :-1]
    occ[:, :-1] |= union[:, 1:]
    box_pad = 0.35 * font_px
    sizes, rois_px = [], []
    for name, m, color, text in todo:
        tw, th = frame.text_size(text, frame.fs_small)
        sizes.append((tw + 2 * box_pad, th + 2 * box_pad))
        rr, cc = np.nonzero(m)
        rois_px.append((cc.min() * pw, rr.min() * ph, (cc.max() + 1) * pw, (rr.max() + 1) * ph,
                        (cc.mean() + 0.5) * pw, (rr.mean() + 0.5) * ph))
    corners = place_labels(sizes, rois_px, occ, pw, ph, frame.img_w, frame.img_h, gap=0.6 * font_px)
    for (name, m, color, text), (bw, bh), (x0, y0) in zip(todo, sizes, corners):
        # leader line from the box to the nearest ROI voxel when detached
        rr, cc = np.nonzero(m)
        vx, vy = (cc + 0.5) * pw, (rr + 0.5) * ph
        bx, by = x0 + bw / 2.0, y0 + bh / 2.0
        k = int(np.argmin((vx - bx) ** 2 + (vy - by) ** 2))
        px_, py_ = float(vx[k]), float(vy[k])
        qx, qy = min(max(px_, x0), x0 + bw), min(max(py_, y0), y0 + bh)
        if math.hypot(px_ - qx, py_ - qy) > 1.2 * font_px:
            ax.add_artist(mpl.Line2D([qx / pw - 0.5, px_ / pw - 0.5], [qy / ph - 0.5, py_ / ph - 0.5],
                                     color=color, linewidth=frame.points(1.5), alpha=0.9))
        ax.text(bx / pw - 0.5, by / ph - 0.5, text, fontsize=frame.fs_small, color=TEXT_COLOR,
                ha="center", va="center", clip_on=False,
                bbox=dict(boxstyle=f"round,pad={box_pad / font_px / 0.85:.3f}",
                          facecolor=(0, 0, 0, 0.6), edgecolor=color, linewidth=frame.points(1.5)))


def render_level_slice(
    path: _PathLike,
    image2d,
    pixel_spacing: Sequence[float],
    rois: Sequence[RoiOverlay] = (),
    title: str = "",
    window: Optional[Sequence[float]] = None,
    *,
    percentiles: Sequence[float] = (1.0, 99.0),
    fat_color: Color = DEFAULT_FAT_COLOR,
    undefined_color: Color = DEFAULT_UNDEFINED_COLOR,
    outline_colors: Optional[Union[Sequence[Color], Mapping[str, Color]]] = None,
    fill_alpha: float = 1.0,
    labels: str = "auto",
    fat_label: str = "fat",
    undefined_label: str = "undefined",
    edge_labels: Optional[Sequence[str]] = None,
    flip_lr: bool = False,
    flip_ud: bool = False,
    crop_margin_mm: Optional[float] = None,
    min_px_per_voxel: int = 4,
    min_image_px: int = 600,
    max_image_px: int = 8000,
    dpi: float = 100.0,
    font_size: Optional[float] = None,
    outline_width_px: float = 2.5,
    scale_bar: bool = True,
) -> Path:
    """Write a QC picture of one measurement slice with its ROIs and fat call.

    Parameters
    ----------
    path : str or path-like
        Output ``.png`` (parent folders are created; written atomically).
    image2d : array_like, shape (rows, cols)
        The slice, ``[j, i]`` for an axial slice ``volume[k]`` of a
        SimpleITK-ordered volume (see the module conventions).  NaNs show black.
    pixel_spacing : (float, float)
        ``(row_mm, col_mm)``; anisotropic pixels are drawn with their true
        aspect.
    rois : sequence of RoiOverlay
        ROIs to draw, in drawing order (a later ROI's fill wins where ROIs
        overlap).
    title : str, optional
        Title above the picture, e.g. ``"L4/5 - slice 23 - offset +0.8 mm"``.
    window : (float, float), optional
        Grey window ``(low, high)`` in image units, e.g. ``(-160, 240)`` HU or
        ``(0, 100)`` for a PDFF map in %.  Default: the ``percentiles`` of the
        finite values in view.
    percentiles : (float, float), optional
        Percentiles of the automatic window (default 1 and 99).
    fat_color, undefined_color : colour, optional
        Fill colours (any matplotlib colour; defaults yellow and magenta).
    outline_colors : sequence of colours or mapping name -> colour, optional
        Outline colours, used in turn (sequence) or by ROI name (mapping);
        ``RoiOverlay.color`` wins.  Default :data:`DEFAULT_OUTLINE_COLORS`.
    fill_alpha : float, optional
        Opacity of the fat fill, default 1 (opaque; the PNG then holds exactly
        ``fat_color`` at fat voxels).  Undefined voxels are always opaque.
    labels : {"auto", "legend", "none"}, optional
        ``"auto"``: each ``label_text`` in a box next to its ROI (placed
        where it covers no ROI if there is room), with a leader line when
        detached; ``"legend"``: the label texts go into the legend instead
        (for crowded slices); ``"none"``: names in the legend only.
    fat_label, undefined_label : str, optional
        Legend texts of the fills.
    edge_labels : (str, str, str, str), optional
        Names of the array's sides (column 0, last column, row 0, last row),
        written outside the image; they follow ``flip_lr``/``flip_ud``.  Use
        :data:`LPS_AXIAL_EDGE_LABELS` (R, L, A, P) for LPS arrays.
    flip_lr, flip_ud : bool, optional
        Mirror the display left-right / up-down.
    crop_margin_mm : float, optional
        Crop the view to the ROIs' bounding box plus this margin (mm).
        Indices given to :func:`voxel_to_pixel` stay those of ``image2d``.
    min_px_per_voxel : int, optional
        Minimum output pixels per voxel along either axis (default 4).
    min_image_px : int, optional
        Minimum size (pixels) of the longer image side (default 600), for
        readable small crops.
    max_image_px : int, optional
        Refuse pictures whose image side would exceed this (default 8000).
    dpi : float, optional
        Resolution used to turn font sizes in points into pixels.
    font_size : float, optional
        Font size in points; default scales with the picture (>= 13 px).
    outline_width_px : float, optional
        Outline width in output pixels (default 2.5; >= 2 keeps the exact
        outline colour on at least one pixel across the line).
    scale_bar : bool, optional
        Draw a millimetre scale bar under the image.

    Returns
    -------
    pathlib.Path
        The PNG written; :func:`read_qc_info` / :func:`voxel_to_pixel` read
        its pixel mapping.

    Raises
    ------
    InputError
        matplotlib is missing, or an argument is malformed (shapes, spacing,
        window, colours, path not ending in ``.png``).
    """
    mpl, path, img, spacing = _checked_inputs(path, image2d, "image2d", pixel_spacing, edge_labels)
    if labels not in ("auto", "legend", "none"):
        raise InputError(f"labels must be 'auto', 'legend' or 'none', got {labels!r}")
    if not (0.0 <= float(fill_alpha) <= 1.0):
        raise InputError(f"fill_alpha must lie in [0, 1], got {fill_alpha!r}")
    fat_rgb = np.array(_rgb(mpl, fat_color, "fat_color"))
    und_rgb = np.array(_rgb(mpl, undefined_color, "undefined_color"))
    prepared = _prepared_rois(mpl, rois, img.shape, outline_colors)

    # ---- view (crop + flips) and composite RGB: grey + fills, exact colours
    box = _crop_box([p[1] for p in prepared], img.shape, spacing, crop_margin_mm)
    rgb, win, win_source = _windowed_grey(img, box, flip_lr, flip_ud, window, percentiles)
    any_fat = any_und = False
    shown = []
    for name, mask, fat, und, color, text in prepared:
        m = _view(mask, *box, flip_lr, flip_ud)
        if fat is not None:
            any_fat = True
            f = _view(fat, *box, flip_lr, flip_ud) & m
            rgb[f] = fill_alpha * fat_rgb + (1.0 - fill_alpha) * rgb[f]
        if und is not None:
            any_und = True
            u = _view(und, *box, flip_lr, flip_ud) & m
            rgb[u] = und_rgb
        shown.append((name, m, color, text))
    frame = PictureFrame(mpl, _to_uint8(rgb), spacing, win, win_source, title, edge_labels, flip_lr, flip_ud,
                         min_px_per_voxel=min_px_per_voxel, min_image_px=min_image_px,
                         max_image_px=max_image_px, dpi=dpi, font_size=font_size)

    # ---- legend (measured now, positioned once the figure size is known) and layout
    lw_pt = frame.points(max(outline_width_px, 1.0))
    fills = []
    if any_fat:
        fills.append((fat_rgb, fat_label))
    if any_und:
        fills.append((und_rgb, undefined_label))
    legend, leg_w, leg_h = _legend(frame, shown, labels, lw_pt, fills)
    font_px, pad, band = frame.font_px, frame.pad, frame.band
    bottom = band + (1.6 * font_px if scale_bar else 0.0) + (leg_h + pad if legend is not None else 0.0) + pad
    lay = frame.place(band, bottom, min_width=leg_w)
    y = lay.top + frame.img_h + band
    if scale_bar:
        frame.draw_scale_bar(y + 0.8 * font_px)
        y += 1.6 * font_px
    if legend is not None:
        legend.set_bbox_to_anchor((lay.fx(lay.fig_w / 2.0), lay.fy(y)), transform=frame.fig.transFigure)

    # ---- the image, outlines and labels next to the ROIs
    ax = frame.draw_image()
    for name, m, color, text in shown:
        segs = edge_segments(m)
        if len(segs):
            ax.add_collection(mpl.LineCollection(segs, colors=[color], linewidths=lw_pt,
                                                 capstyle="projecting", joinstyle="miter"))
    if labels == "auto":
        _label_rois(frame, ax, shown)
    return frame.save(path, "level_slice", row_offset=box[0], col_offset=box[2])


# --------------------------------------------------------------------------- sagittal
#: A checked level line: label, source text, a point ``(row, col)`` on it (``col`` None: the
#: image's middle column) and its direction ``(d_row, d_col)`` in array index units.
_Line = Tuple[str, str, Tuple[float, Optional[float]], Tuple[float, float]]


def _finite(value, n: int, label: str, what: str) -> float:
    """``value`` as a finite float, or InputError naming ``level_lines[n]`` and ``what``."""
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"level_lines[{n}] {what} {value!r} is not a number") from exc
    if not math.isfinite(out):
        raise InputError(f"level_lines[{n}] ('{label}') {what} is not finite: {out!r}")
    return out


def _pair(value) -> Optional[list]:
    """``value`` as a list of 2 items when it is a non-text sequence of 2, else None."""
    if isinstance(value, (str, bytes)):
        return None
    try:
        items = list(value)
    except TypeError:
        return None
    return items if len(items) == 2 else None


def _level_lines(level_lines) -> List[_Line]:
    """Checked level lines ``(label, source, point, direction)`` (see :func:`render_sagittal_overview`)."""
    lines: List[_Line] = []
    for n, item in enumerate(level_lines):
        try:
            items = list(item)
        except TypeError as exc:
            raise InputError(f"level_lines[{n}] must be (label, row, source), got {item!r}") from exc
        if len(items) not in (2, 3, 4):
            raise InputError(f"level_lines[{n}] must be (label, row, source) or (label, row, source, slope), "
                             f"got {item!r}")
        label = str(items[0])
        source = str(items[2]) if len(items) >= 3 and items[2] not in (None, "") else ""
        slope = items[3] if len(items) == 4 else None
        position = items[1]
        pair = None
        if not isinstance(position, (int, float, np.number)):
            pair = _pair(position)
        if pair is None:  # a row number: today's horizontal line (or tilted by the slope)
            row = _finite(position, n, label, "row position")
            point: Tuple[float, Optional[float]] = (row, None)
        elif all(_pair(p) is not None for p in pair):  # two end points ((r0, c0), (r1, c1))
            if slope is not None:
                raise InputError(f"level_lines[{n}] ('{label}') gives two end points and a slope; give one of them")
            (r0, c0), (r1, c1) = ([_finite(v, n, label, "end point coordinate") for v in _pair(p)] for p in pair)
            if (r0, c0) == (r1, c1):
                raise InputError(f"level_lines[{n}] ('{label}') end points are the same point ({r0:g}, {c0:g}); "
                                 f"give two distinct points")
            lines.append((label, source, (r0, c0), (r1 - r0, c1 - c0)))
            continue
        else:  # a point (row, col)
            row, col = (_finite(v, n, label, "point coordinate") for v in pair)
            point = (row, col)
        d_row = 0.0 if slope is None else _finite(slope, n, label, "slope")
        lines.append((label, source, point, (d_row, 1.0)))
    return lines


def _clip_line(point: Tuple[float, float], direction: Tuple[float, float], n_rows: int, n_cols: int):
    """The part of the infinite line ``point + t * direction`` (``(y, x)`` display coordinates,
    voxel centres at integers) inside the image rectangle, as two ``(y, x)`` ends ordered
    left to right, or None when the line misses the image (Liang-Barsky)."""
    t0, t1 = -math.inf, math.inf
    for p, d, hi in ((point[0], direction[0], n_rows - 0.5), (point[1], direction[1], n_cols - 0.5)):
        if d == 0.0:
            if not -0.5 <= p <= hi:
                return None
            continue
        a, b = (-0.5 - p) / d, (hi - p) / d
        t0, t1 = max(t0, min(a, b)), min(t1, max(a, b))
    if t0 > t1:
        return None
    ends = sorted(((point[0] + t * direction[0], point[1] + t * direction[1]) for t in (t0, t1)),
                  key=lambda e: e[1])
    return ends[0], ends[1]


def render_sagittal_overview(
    path: _PathLike,
    image2d_sagittal,
    pixel_spacing: Sequence[float],
    level_lines: Sequence[Sequence[Any]] = (),
    title: str = "",
    window: Optional[Sequence[float]] = None,
    *,
    percentiles: Sequence[float] = (1.0, 99.0),
    line_color: Color = DEFAULT_LEVEL_LINE_COLOR,
    edge_labels: Optional[Sequence[str]] = None,
    flip_lr: bool = False,
    flip_ud: bool = False,
    min_px_per_voxel: int = 2,
    min_image_px: int = 600,
    max_image_px: int = 8000,
    dpi: float = 100.0,
    font_size: Optional[float] = None,
    line_width_px: float = 2.5,
) -> Path:
    """Write a sagittal (or coronal) overview with the disc levels as lines.

    Parameters
    ----------
    path : str or path-like
        Output ``.png`` (parent folders are created; written atomically).
    image2d_sagittal : array_like, shape (rows, cols)
        Reformatted slice whose rows run cranio-caudally (cranial at row 0,
        or pass ``flip_ud=True``: ``volume[:, :, i]`` of an LPS volume has the
        most inferior slice at row 0).  Columns run antero-posteriorly
        (sagittal) or left-right (coronal).
    pixel_spacing : (float, float)
        ``(row_mm, col_mm)``, e.g. ``(slice spacing, spacing_j)`` for
        ``volume[:, :, i]``; the true aspect is drawn.
    level_lines : sequence of tuples
        One tuple per level, ``(label, position, source[, slope])``:

        * ``label`` e.g. ``"L4/5"``; ``source`` optional text such as
          ``"vertebra masks"`` (a 2-tuple ``(label, row)`` is accepted);
        * ``position`` a number ``row``: the level's row in
          ``image2d_sagittal`` (float, voxel centres at integers, before any
          flip), a horizontal line; or a point ``(row, col)`` on the line; or
          two end points ``((row0, col0), (row1, col1))`` of a tilted line
          (e.g. where an oblique measurement plane cuts the section);
        * ``slope`` optional, with a row or a point: rows per column in
          array index units (not mm; ``d row / d col`` before any flip),
          default 0 (horizontal).  With a bare ``row`` the line passes
          through that row at the middle column ``(n_cols - 1) / 2``.

        Each line is drawn across the image in ``line_color`` (extended to
        the image edges; the flips are applied to it) with its label right of
        the image, joined to the line's right end; a line missing the image is
        listed at the nearest edge as "(outside view)".
    title : str, optional
        Title above the picture.
    window : (float, float), optional
        Grey window; default the ``percentiles`` of the finite values.
    percentiles : (float, float), optional
        Percentiles of the automatic window (default 1 and 99).
    line_color : colour, optional
        Colour of the level lines and their labels (default strong red).
    edge_labels : (str, str, str, str), optional
        Names of the array's sides (column 0, last column, row 0, last row),
        e.g. ``("A", "P", "I", "S")`` for ``volume[:, :, i]`` of an LPS volume;
        they follow the flips.
    flip_lr, flip_ud : bool, optional
        Mirror the display left-right / up-down.
    min_px_per_voxel : int, optional
        Minimum output pixels per voxel along either axis (default 2).
    min_image_px, max_image_px : int, optional
        Minimum size of the longer image side and maximum size of either
        side, in pixels.
    dpi : float, optional
        Resolution used to turn font sizes in points into pixels.
    font_size : float, optional
        Font size in points; default scales with the picture.
    line_width_px : float, optional
        Level-line width in output pixels (default 2.5).

    Returns
    -------
    pathlib.Path
        The PNG written; :func:`read_qc_info` gives its pixel mapping, and
        ``info.voxel_center_px(row, col)`` the PNG ``(y, x)`` of a point of a
        level line (``row`` its row at column ``col``).

    Raises
    ------
    InputError
        matplotlib is missing, or an argument is malformed.
    """
    mpl, path, img, spacing = _checked_inputs(path, image2d_sagittal, "image2d_sagittal", pixel_spacing,
                                              edge_labels)
    color = _rgb(mpl, line_color, "line_color")
    lines = _level_lines(level_lines)
    rgb, win, win_source = _windowed_grey(img, (0, img.shape[0], 0, img.shape[1]), flip_lr, flip_ud,
                                          window, percentiles)
    frame = PictureFrame(mpl, _to_uint8(rgb), spacing, win, win_source, title, edge_labels, flip_lr, flip_ud,
                         min_px_per_voxel=min_px_per_voxel, min_image_px=min_image_px,
                         max_image_px=max_image_px, dpi=dpi, font_size=font_size)
    n_rows, n_cols, img_w, img_h, ph = frame.n_rows, frame.n_cols, frame.img_w, frame.img_h, frame.ph
    font_px, fs, pad, band = frame.font_px, frame.fs, frame.pad, frame.band

    # each line clipped to the image in display coordinates (flips applied), its label text
    # and the y of its right end (px from the image top)
    entries = []
    for label, source, (row, col), (d_row, d_col) in lines:
        if col is None:
            col = (n_cols - 1) / 2.0
        r_disp = (n_rows - 1) - row if flip_ud else row
        c_disp = (n_cols - 1) - col if flip_lr else col
        d_disp = (-d_row if flip_ud else d_row, -d_col if flip_lr else d_col)
        segment = _clip_line((r_disp, c_disp), d_disp, n_rows, n_cols)
        inside = segment is not None
        if inside:
            y_right = segment[1][0]
        elif d_disp[1] != 0.0:  # the line's row at the right edge, clamped below
            y_right = r_disp + (n_cols - 0.5 - c_disp) * d_disp[0] / d_disp[1]
        else:  # a vertical line beside the image
            y_right = (n_rows - 1) / 2.0
        y = (y_right + 0.5) * ph
        text = label + (f" ({source})" if source else "") + ("" if inside else " (outside view)")
        tw, th = frame.text_size(text, fs, "bold")
        entries.append([min(max(y, 0.0), float(img_h)), y, segment, text, tw, th])
    label_w = max([e[4] for e in entries], default=0.0)
    lead = 1.5 * font_px  # connector from the image edge to the label
    right = max(band, lead + label_w + pad) if entries else band
    # the right margin holds the level labels: the side names go above the image
    lay = frame.place(right, band + pad, side_names_above=True)
    ax = frame.draw_image()

    # de-overlap the labels vertically (keep order, push apart)
    order = sorted(range(len(entries)), key=lambda k: entries[k][0])
    min_gap = 1.15 * max([e[5] for e in entries], default=0.0)
    prev = -math.inf
    for k in order:
        entries[k][0] = max(entries[k][0], prev + min_gap)
        prev = entries[k][0]
    lw_pt = frame.points(max(line_width_px, 1.0))
    x_edge = lay.left + img_w
    fig = frame.fig
    for label_y, y_true, segment, text, tw, th in entries:
        if segment is not None:
            (ya, xa), (yb, xb) = segment
            ax.add_artist(mpl.Line2D([xa, xb], [ya, yb], color=color, linewidth=lw_pt, solid_capstyle="butt"))
            x0, ys = lay.left + (xb + 0.5) * frame.pw, (lay.top + y_true, lay.top + label_y)
        else:
            x0, ys = x_edge, (lay.top + label_y, lay.top + label_y)
        fig.add_artist(mpl.Line2D([lay.fx(x0), lay.fx(x_edge + 0.6 * lead), lay.fx(x_edge + lead - 0.2 * font_px)],
                                  [lay.fy(ys[0]), lay.fy(ys[0]), lay.fy(ys[1])], transform=fig.transFigure,
                                  color=color, linewidth=lw_pt * 0.7))
        fig.text(lay.fx(x_edge + lead), lay.fy(lay.top + label_y), text, fontsize=fs, fontweight="bold",
                 color=color, ha="left", va="center")
    return frame.save(path, "sagittal_overview")

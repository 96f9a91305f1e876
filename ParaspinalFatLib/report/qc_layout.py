"""Pixel-exact layout of a QC picture: figure, margins, texts, image, outlines, labels.

:class:`PictureFrame` holds what every QC picture of
:mod:`ParaspinalFatLib.report.qc_pictures` shares: the displayed image at an
integer pixel size of its true physical aspect, the font sizes, the title and
the window line above the image, the names of the image's sides, the
nearest-neighbour drawing of the composed RGB image at an integer pixel
offset, and the final write with its pixel-mapping record
(:mod:`ParaspinalFatLib.report.qc_png`).  A renderer creates the frame, measures
what it adds around the image, lets :meth:`PictureFrame.place` size the figure,
draws its own overlays and calls :meth:`PictureFrame.save`.

:func:`edge_segments` (voxel-edge outlines of a mask) and :func:`place_labels`
(label boxes beside their ROIs) compute geometry only.

matplotlib is imported only by :func:`load_matplotlib`, and only its
object-oriented API is used (``Figure`` + ``FigureCanvasAgg``): no pyplot, no
global backend or rcParams changes, safe in Slicer and in worker threads.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError
from .qc_png import QCFigureInfo, write_png_atomic
from ..dependencies import install_hint
from ..errors import MissingDependencyError

__all__ = ["TEXT_COLOR", "load_matplotlib", "plain_texts", "PixelLayout", "PictureFrame",
           "edge_segments", "place_labels"]

#: Colour of the texts on the black background.
TEXT_COLOR: Tuple[float, float, float] = (1.0, 1.0, 1.0)
_BACKGROUND = (0.0, 0.0, 0.0)
_WINDOW_TEXT_COLOR = (0.8, 0.8, 0.8)
# user texts are plain text: no mathtext ($...$), no LaTeX, whatever rcParams say
_PLAIN = {"parse_math": False, "usetex": False}


# --------------------------------------------------------------------------- matplotlib
def load_matplotlib() -> SimpleNamespace:
    """Import the matplotlib pieces the QC pictures use, or explain how to get them.

    Returns
    -------
    types.SimpleNamespace
        ``Figure``, ``FigureCanvasAgg``, ``LineCollection``, ``Line2D``,
        ``Patch`` and ``to_rgb`` (``matplotlib.colors.to_rgb``).

    Raises
    ------
    MissingDependencyError
        matplotlib is not installed; the message gives the install command (a subclass
        of InputError).
    """
    try:
        from matplotlib import colors as mcolors
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.collections import LineCollection
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch
    except ImportError as exc:
        raise MissingDependencyError(
            "QC pictures need matplotlib, an optional dependency of paraspinalfat: "
            f"{install_hint('matplotlib')}; import failed: {exc}"
        ) from exc
    return SimpleNamespace(
        Figure=Figure, FigureCanvasAgg=FigureCanvasAgg, LineCollection=LineCollection,
        Line2D=Line2D, Patch=Patch, to_rgb=mcolors.to_rgb,
    )


def plain_texts(artist: Any) -> None:
    """Render every text of ``artist`` literally (no mathtext, no LaTeX).

    Parameters
    ----------
    artist : matplotlib.artist.Artist
        A figure, legend... ; every ``Text`` below it is changed in place.
    """
    from matplotlib.text import Text

    for t in artist.findobj(Text):
        t.set_parse_math(False)
        t.set_usetex(False)


def _pt(px: float, dpi: float) -> float:
    return px * 72.0 / dpi


def _auto_font_px(width: int, height: int) -> float:
    return max(13.0, max(width, height) / 75.0)


def _display_size(n_rows, n_cols, spacing, min_px_per_voxel, min_image_px, max_image_px):
    """Pixel size (width, height) of the displayed array, true physical aspect."""
    row_mm, col_mm = spacing
    if not (isinstance(min_px_per_voxel, (int, float)) and min_px_per_voxel >= 1):
        raise InputError(f"min_px_per_voxel must be >= 1, got {min_px_per_voxel!r}")
    width_mm, height_mm = n_cols * col_mm, n_rows * row_mm
    scale = max(min_px_per_voxel / min(row_mm, col_mm), float(min_image_px) / max(width_mm, height_mm))
    width = int(math.ceil(width_mm * scale - 1e-9))
    height = int(math.ceil(height_mm * scale - 1e-9))
    if max(width, height) > max_image_px:
        raise InputError(
            f"the picture would be {width} x {height} pixels (more than max_image_px={max_image_px}): "
            f"{n_rows} x {n_cols} voxels of {row_mm:g} x {col_mm:g} mm at >= {min_px_per_voxel} px per "
            "voxel; crop the slice (crop_margin_mm), lower min_px_per_voxel or raise max_image_px"
        )
    return max(width, 1), max(height, 1)


def _set_exact_size(fig, width_px: int, height_px: int, dpi: float) -> None:
    """Figure size such that Agg renders exactly width_px x height_px pixels."""
    w_in, h_in = width_px / dpi, height_px / dpi
    # Agg truncates the float pixel size: nudge up until it reaches the integer
    while w_in * dpi < width_px:
        w_in = math.nextafter(w_in, math.inf)
    while h_in * dpi < height_px:
        h_in = math.nextafter(h_in, math.inf)
    fig.set_size_inches(w_in, h_in)


def _new_figure(mpl, dpi):
    # layout="none": a global rcParams["figure.autolayout"] / constrained
    # layout must not move the axes off their pixel rectangle
    fig = mpl.Figure(dpi=dpi, facecolor=_BACKGROUND, layout="none")
    mpl.FigureCanvasAgg(fig)
    return fig


# --------------------------------------------------------------------------- layout
class PixelLayout:
    """Figure and image rectangle sized in integer pixels around a displayed array.

    The figure is ``left + img_w + right`` pixels wide (widened, with the
    image centred, to at least ``min_fig_w``) and ``top + img_h + bottom``
    pixels high; margins are rounded up to whole pixels.

    Parameters
    ----------
    dpi : float
        Figure resolution.
    font_px : float
        Base font size in pixels.
    img_w, img_h : int
        Size of the displayed image in pixels.
    margins : (float, float, float, float)
        ``(left, right, top, bottom)`` margins in pixels.
    min_fig_w : float, optional
        Minimum figure width in pixels (e.g. the width of the title).

    Attributes
    ----------
    left, top : int
        Pixel position of the image's upper-left corner in the figure.
    fig_w, fig_h : int
        Figure size in pixels.
    img_w, img_h : int
        Image size in pixels.
    """

    def __init__(self, dpi, font_px, img_w, img_h, margins, min_fig_w=0):
        left, right, top, bottom = (int(math.ceil(m)) for m in margins)
        fig_w = max(left + img_w + right, int(math.ceil(min_fig_w)))
        extra = fig_w - (left + img_w + right)
        self.left = left + extra // 2
        self.top = top
        self.fig_w = fig_w
        self.fig_h = top + img_h + bottom
        self.img_w, self.img_h = img_w, img_h
        self.dpi = dpi
        self.font_px = font_px

    def fx(self, x_px: float) -> float:
        """Figure fraction of an x pixel position (from the left)."""
        return x_px / self.fig_w

    def fy(self, y_px: float) -> float:
        """Figure fraction of a y pixel position (from the top)."""
        return 1.0 - y_px / self.fig_h


def _add_axes(fig, lay: PixelLayout, n_rows: int, n_cols: int):
    ax = fig.add_axes(
        [lay.fx(lay.left), lay.fy(lay.top + lay.img_h), lay.img_w / lay.fig_w, lay.img_h / lay.fig_h]
    )
    ax.set_axis_off()
    ax.set_xlim(-0.5, n_cols - 0.5)
    ax.set_ylim(n_rows - 0.5, -0.5)
    ax.set_aspect("auto")
    return ax


def _draw_pixels(fig, lay: PixelLayout, rgb8: np.ndarray) -> None:
    """Draw the composed RGB array nearest-neighbour upsampled, pixel-exact.

    Output pixel ``c`` (centre ``c + 0.5``) shows voxel
    ``floor((c + 0.5) / px_per_voxel)`` -- the same mapping as
    :meth:`QCFigureInfo.voxel_center_px` -- and the block is placed with
    ``figimage`` at an integer pixel offset, so no matplotlib resampling or
    interpolation setting is involved.  It sits below the axes (outlines and
    labels are drawn in the axes' data coordinates on top).
    """
    n_rows, n_cols = rgb8.shape[:2]
    pw, ph = lay.img_w / n_cols, lay.img_h / n_rows
    cols = np.minimum(np.floor((np.arange(lay.img_w) + 0.5) / pw).astype(np.intp), n_cols - 1)
    rows = np.minimum(np.floor((np.arange(lay.img_h) + 0.5) / ph).astype(np.intp), n_rows - 1)
    # RGBA uint8 is matplotlib's native image format: RGB input would be
    # converted pixel by pixel (about ten times slower at 2000 x 2000)
    rgba = np.empty((n_rows, n_cols, 4), dtype=np.uint8)
    rgba[..., :3] = rgb8
    rgba[..., 3] = 255
    big = np.ascontiguousarray(rgba[rows[:, None], cols[None, :]])
    fig.figimage(big, xo=lay.left, yo=lay.fig_h - lay.top - lay.img_h, origin="upper", zorder=-1)


class PictureFrame:
    """A QC picture being drawn: the image, its sizes and fonts, the header and the finish.

    Creating the frame fixes the image's pixel size (true aspect, at least
    ``min_px_per_voxel`` pixels per voxel), the font sizes, and measures the
    title and the window line ("window 12 to 340 (1-99 % of view) | pixel
    0.8 x 0.8 mm") that stand above the image.  The renderer then measures its
    own additions, calls :meth:`place` once (figure size, header texts, side
    names), :meth:`draw_image`, draws its overlays and finally :meth:`save`.

    Parameters
    ----------
    mpl : types.SimpleNamespace
        The matplotlib pieces from :func:`load_matplotlib`.
    rgb8 : numpy.ndarray of uint8, shape (rows, cols, 3)
        The composed picture of the displayed (cropped, flipped) array.
    spacing : (float, float)
        ``(row_mm, col_mm)`` of a displayed voxel.
    window : (float, float)
        Grey window ``(low, high)`` of the picture.
    window_source : str
        How the window was chosen ("fixed", "1-99 % of view"...).
    title : str
        Title above the picture ("" for none).
    edge_labels : (str, str, str, str) or None
        Names of the array's sides (column 0, last column, row 0, last row),
        before flipping; None for none.
    flip_lr, flip_ud : bool
        Whether ``rgb8`` is mirrored left-right / up-down relative to the
        caller's array.
    min_px_per_voxel : int
        Minimum output pixels per voxel along either axis.
    min_image_px, max_image_px : int
        Minimum size of the longer image side and maximum size of either
        side, in pixels.
    dpi : float
        Resolution used to turn font sizes in points into pixels.
    font_size : float or None
        Font size in points; None scales it with the picture (>= 13 px).

    Attributes
    ----------
    fig : matplotlib.figure.Figure
        The figure (on an Agg canvas) being drawn.
    renderer
        Its renderer, for measuring artists.
    img_w, img_h : int
        Image size in pixels.
    pw, ph : float
        Pixels per displayed voxel along columns and rows.
    font_px : float
        Base font size in pixels.
    fs, fs_small : float
        Base and small font sizes in points.
    pad : float
        Space between texts, in pixels.
    band : float
        Width of the band around the image (holds the side names if any).
    header_width : float
        Width of the wider of title and window line, in pixels.
    layout : PixelLayout or None
        Set by :meth:`place`.
    """

    def __init__(self, mpl, rgb8, spacing, window, window_source, title, edge_labels, flip_lr, flip_ud,
                 *, min_px_per_voxel, min_image_px, max_image_px, dpi, font_size):
        self.mpl = mpl
        self.rgb8 = rgb8
        self.n_rows, self.n_cols = rgb8.shape[:2]
        self.spacing = spacing
        self.window = (window[0], window[1])
        self.title = title
        self.edge_labels = edge_labels
        self.flip_lr, self.flip_ud = flip_lr, flip_ud
        self.dpi = dpi
        self.img_w, self.img_h = _display_size(self.n_rows, self.n_cols, spacing, min_px_per_voxel,
                                               min_image_px, max_image_px)
        self.pw, self.ph = self.img_w / self.n_cols, self.img_h / self.n_rows
        self.font_px = (_auto_font_px(self.img_w, self.img_h) if font_size is None
                        else float(font_size) * dpi / 72.0)
        self.fs = _pt(self.font_px, dpi)
        self.fs_small = self.fs * 0.85
        self.pad = 0.6 * self.font_px
        self.band = 1.6 * self.font_px if edge_labels is not None else self.pad

        self.fig = _new_figure(mpl, dpi)
        self.renderer = self.fig.canvas.get_renderer()
        title_w, self._title_h = self.text_size(title, self.fs * 1.15, "bold") if title else (0.0, 0.0)
        lo, hi = self.window
        self._window_text = (f"window {lo:.4g} to {hi:.4g} ({window_source})  |  "
                             f"pixel {spacing[0]:.3g} x {spacing[1]:.3g} mm")
        window_w, self._window_h = self.text_size(self._window_text, self.fs_small)
        self.header_width = max(title_w, window_w)
        self.layout: Optional[PixelLayout] = None

    def points(self, px: float) -> float:
        """A length in output pixels as typographic points (line widths, font sizes).

        Parameters
        ----------
        px : float
            Length in pixels.

        Returns
        -------
        float
            The same length in points at the frame's dpi.
        """
        return _pt(px, self.dpi)

    def text_size(self, text: str, fontsize: float, weight: str = "normal") -> Tuple[float, float]:
        """Rendered width and height of a text, in pixels.

        Parameters
        ----------
        text : str
            The text (drawn literally, no mathtext).
        fontsize : float
            Font size in points.
        weight : str, optional
            Font weight ("normal", "bold").

        Returns
        -------
        (float, float)
            Width and height in pixels.
        """
        t = self.fig.text(0, 0, text, fontsize=fontsize, fontweight=weight, **_PLAIN)
        bb = t.get_window_extent(self.renderer)
        t.remove()
        return float(bb.width), float(bb.height)

    def place(self, right: float, bottom: float, min_width: float = 0.0,
              side_names_above: bool = False) -> PixelLayout:
        """Size the figure around the image and write the header and the side names.

        The left margin is the band; the top margin holds the title, the
        window line and the band.

        Parameters
        ----------
        right, bottom : float
            Right and bottom margins in pixels (at least the band).
        min_width : float, optional
            Width in pixels that the figure must hold besides the header,
            e.g. a legend (the padding on both sides is added).
        side_names_above : bool, optional
            Write the names of the left and right sides in the band above the
            image, at its corners (when the right margin holds other labels),
            instead of beside the image.

        Returns
        -------
        PixelLayout
            The layout, also kept as :attr:`layout`.
        """
        top = self.pad + (self._title_h + self.pad if self.title else 0.0) + self._window_h + self.pad + self.band
        lay = PixelLayout(self.dpi, self.font_px, self.img_w, self.img_h, (self.band, right, top, bottom),
                          min_fig_w=max(self.header_width, min_width) + 2 * self.pad)
        _set_exact_size(self.fig, lay.fig_w, lay.fig_h, self.dpi)
        cx = lay.fig_w / 2.0
        y = self.pad
        if self.title:
            self.fig.text(lay.fx(cx), lay.fy(y), self.title, fontsize=self.fs * 1.15, fontweight="bold",
                          color=TEXT_COLOR, ha="center", va="top")
            y += self._title_h + self.pad
        self.fig.text(lay.fx(cx), lay.fy(y), self._window_text, fontsize=self.fs_small, color=_WINDOW_TEXT_COLOR,
                      ha="center", va="top")
        self.layout = lay
        self._side_names(side_names_above)
        return lay

    def _side_names(self, above: bool) -> None:
        """The names of the image's sides, following the flips, in the band."""
        if self.edge_labels is None:
            return
        lay, half = self.layout, self.band / 2.0
        left, right, top, bottom = (str(v) for v in self.edge_labels)
        if self.flip_lr:
            left, right = right, left
        if self.flip_ud:
            top, bottom = bottom, top
        kw = dict(fontsize=self.fs, color=TEXT_COLOR, fontweight="bold", va="center")
        y_above = lay.fy(lay.top - half)
        if above:
            self.fig.text(lay.fx(lay.left), y_above, left, ha="left", **kw)
            self.fig.text(lay.fx(lay.left + lay.img_w), y_above, right, ha="right", **kw)
        else:
            y_mid = lay.fy(lay.top + lay.img_h / 2.0)
            self.fig.text(lay.fx(lay.left - half), y_mid, left, ha="center", **kw)
            self.fig.text(lay.fx(lay.left + lay.img_w + half), y_mid, right, ha="center", **kw)
        x_mid = lay.fx(lay.left + lay.img_w / 2.0)
        self.fig.text(x_mid, y_above, top, ha="center", **kw)
        self.fig.text(x_mid, lay.fy(lay.top + lay.img_h + half), bottom, ha="center", **kw)

    def draw_scale_bar(self, y_px: float) -> None:
        """A millimetre scale bar left-aligned under the image, centred on ``y_px``.

        The longest of 1, 2, 5, 10, 20, 50... mm that is at most a quarter of
        the image width; none when even 1 mm is too long.

        Parameters
        ----------
        y_px : float
            Vertical pixel position (from the top) of the bar.
        """
        lay = self.layout
        mm_per_px = self.spacing[1] / self.pw
        width_mm = lay.img_w * mm_per_px
        length = None
        for cand in (1, 2, 5, 10, 20, 50, 100, 200, 500):
            if cand <= 0.25 * width_mm:
                length = cand
        if length is None:
            return
        x0 = lay.left
        x1 = x0 + length / mm_per_px
        self.fig.add_artist(self.mpl.Line2D([lay.fx(x0), lay.fx(x1)], [lay.fy(y_px)] * 2,
                                            transform=self.fig.transFigure, color=TEXT_COLOR,
                                            linewidth=self.points(3.0), solid_capstyle="butt"))
        self.fig.text(lay.fx(x1 + 0.4 * lay.font_px), lay.fy(y_px), f"{length:g} mm", fontsize=self.fs_small,
                      color=TEXT_COLOR, ha="left", va="center")

    def draw_image(self) -> Any:
        """Draw the image pixel-exact and return axes over it in voxel coordinates.

        Returns
        -------
        matplotlib.axes.Axes
            Axes without decorations covering the image: displayed voxel
            ``[r, c]`` has its centre at data ``(x=c, y=r)``, row 0 at the top.
        """
        ax = _add_axes(self.fig, self.layout, self.n_rows, self.n_cols)
        _draw_pixels(self.fig, self.layout, self.rgb8)
        return ax

    def save(self, path: Path, kind: str, row_offset: int = 0, col_offset: int = 0) -> Path:
        """Write the finished picture with its :class:`~ParaspinalFatLib.report.qc_png.QCFigureInfo`.

        Parameters
        ----------
        path : pathlib.Path
            Output ``.png`` (written atomically, see
            :func:`~ParaspinalFatLib.report.qc_png.write_png_atomic`).
        kind : str
            ``"level_slice"`` or ``"sagittal_overview"``.
        row_offset, col_offset : int, optional
            Index in the caller's array of displayed row/column 0 before
            flipping (the crop's corner).

        Returns
        -------
        pathlib.Path
            ``path``.
        """
        lay = self.layout
        info = QCFigureInfo(
            kind=kind, png_width=lay.fig_w, png_height=lay.fig_h,
            image_left=lay.left, image_top=lay.top, image_width=self.img_w, image_height=self.img_h,
            n_rows=self.n_rows, n_cols=self.n_cols, row_offset=int(row_offset), col_offset=int(col_offset),
            flip_lr=bool(self.flip_lr), flip_ud=bool(self.flip_ud), pixel_spacing=self.spacing,
            window=self.window,
        )
        plain_texts(self.fig)
        return write_png_atomic(self.fig, path, info)


# --------------------------------------------------------------------------- geometry
def edge_segments(mask: np.ndarray) -> np.ndarray:
    """Voxel-edge outline of a 2-D mask as merged straight segments.

    Parameters
    ----------
    mask : numpy.ndarray of bool, shape (rows, cols)
        The mask.

    Returns
    -------
    numpy.ndarray, shape (n, 2, 2)
        ``[[x0, y0], [x1, y1]]`` per segment in data coordinates (voxel
        centres at integers, edges at half integers).
    """
    p = np.pad(mask, 1)
    segs: List[np.ndarray] = []
    # horizontal edges: horiz[r, c] -> edge at y = r - 0.5 spanning column c
    horiz = p[1:, 1:-1] != p[:-1, 1:-1]
    # vertical edges: vert[r, c] -> edge at x = c - 0.5 spanning row r
    vert = p[1:-1, 1:] != p[1:-1, :-1]
    for edges, horizontal in ((horiz, True), (vert.T, False)):
        e = np.pad(edges.astype(np.int8), ((0, 0), (1, 1)))
        d = np.diff(e, axis=1)
        line_s, start = np.nonzero(d == 1)
        _, stop = np.nonzero(d == -1)  # row-major order pairs starts with stops
        if line_s.size == 0:
            continue
        fixed = line_s - 0.5
        a = start - 0.5
        b = stop - 0.5
        if horizontal:
            s = np.stack([np.stack([a, fixed], 1), np.stack([b, fixed], 1)], 1)
        else:
            s = np.stack([np.stack([fixed, a], 1), np.stack([fixed, b], 1)], 1)
        segs.append(s)
    if not segs:
        return np.zeros((0, 2, 2))
    return np.concatenate(segs, axis=0)


def place_labels(boxes_wh: Sequence[Tuple[float, float]], rois_px: Sequence[Tuple[float, ...]],
                 occupancy: np.ndarray, pw: float, ph: float, img_w: int, img_h: int,
                 gap: float) -> List[Tuple[float, float]]:
    """Greedy placement of label boxes next to their ROIs.

    Candidates are boxes beside the ROI's bounding box and a coarse grid over
    the image; the score is the gap to the ROI (plus a little pull towards its
    centre) with heavy penalties for covering ROI voxels and earlier labels.

    Parameters
    ----------
    boxes_wh : sequence of (float, float)
        ``(w, h)`` of each box in image pixels.
    rois_px : sequence of 6-tuples
        Each ROI's bounding box and centroid ``(x0, y0, x1, y1, cx, cy)`` in
        image pixels.
    occupancy : numpy.ndarray of bool, shape (rows, cols)
        Displayed voxels to keep free (the ROIs, dilated).
    pw, ph : float
        Pixels per displayed voxel along columns and rows.
    img_w, img_h : int
        Image size in pixels.
    gap : float
        Preferred distance between a box and its ROI, in pixels.

    Returns
    -------
    list of (float, float)
        Top-left corner of each box in image pixels.
    """
    occ = occupancy.astype(np.int64)
    integral = np.zeros((occ.shape[0] + 1, occ.shape[1] + 1), dtype=np.int64)
    integral[1:, 1:] = occ.cumsum(0).cumsum(1)
    n_rows, n_cols = occ.shape
    placed: List[Tuple[float, float, float, float]] = []
    corners = []
    for (bw, bh), (rx0, ry0, rx1, ry1, cx, cy) in zip(boxes_wh, rois_px):
        xs, ys = [], []
        for k in range(4):
            g = gap + k * 0.75 * bh
            for sx in (-1, 0, 1):
                for sy in (-1, 0, 1):
                    if sx or sy:
                        xs.append(rx1 + g if sx > 0 else (rx0 - g - bw if sx < 0 else cx - bw / 2.0))
                        ys.append(ry1 + g if sy > 0 else (ry0 - g - bh if sy < 0 else cy - bh / 2.0))
        step = max(bh / 2.0, 4.0)
        gy, gx = np.meshgrid(np.arange(1.0, max(img_h - bh, 1.0), step),
                             np.arange(1.0, max(img_w - bw, 1.0), 2.0 * step), indexing="ij")
        x0 = np.concatenate([np.asarray(xs, float), gx.ravel()])
        y0 = np.concatenate([np.asarray(ys, float), gy.ravel()])
        x0 = np.clip(x0, 1.0, max(img_w - bw - 1.0, 1.0))
        y0 = np.clip(y0, 1.0, max(img_h - bh - 1.0, 1.0))
        x1, y1 = x0 + bw, y0 + bh
        c0 = np.clip(np.floor(x0 / pw).astype(np.intp), 0, n_cols)
        c1 = np.clip(np.ceil(x1 / pw).astype(np.intp), 0, n_cols)
        r0 = np.clip(np.floor(y0 / ph).astype(np.intp), 0, n_rows)
        r1 = np.clip(np.ceil(y1 / ph).astype(np.intp), 0, n_rows)
        covered = (integral[r1, c1] - integral[r0, c1] - integral[r1, c0] + integral[r0, c0]) * (pw * ph)
        penalty = 10.0 * covered
        for (px0, py0, px1, py1) in placed:
            w = np.clip(np.minimum(x1, px1) - np.maximum(x0, px0), 0.0, None)
            h = np.clip(np.minimum(y1, py1) - np.maximum(y0, py0), 0.0, None)
            penalty = penalty + 20.0 * w * h
        dx = np.maximum(np.maximum(rx0 - x1, x0 - rx1), 0.0)
        dy = np.maximum(np.maximum(ry0 - y1, y0 - ry1), 0.0)
        score = np.hypot(dx, dy) + 0.25 * np.hypot(x0 + bw / 2.0 - cx, y0 + bh / 2.0 - cy) + penalty
        best = int(np.argmin(score))  # first minimum: beside-the-ROI candidates win ties
        placed.append((float(x0[best]), float(y0[best]), float(x1[best]), float(y1[best])))
        corners.append((float(x0[best]), float(y0[best])))
    return corners

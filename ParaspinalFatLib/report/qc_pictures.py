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
    horizontal lines ("L4/5 (vertebra masks)").

matplotlib is an optional dependency (``pip install paraspinalfat[report]``);
it is imported only when a picture is drawn, and only its object-oriented API
is used (``Figure`` + ``FigureCanvasAgg``): no pyplot, no global backend or
rcParams changes, safe in Slicer and in worker threads.

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
  (voxel centres at integers, e.g. the fractional k of a disc mid-plane), so
  they follow the flip automatically.
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

import json
import math
import os
import secrets
import struct
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union
import numpy as np
from ..errors import InputError


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
#: Key of the PNG text chunk holding the :class:`QCFigureInfo` JSON.
PNG_INFO_KEY = "ParaspinalFat-QC"
_INSTALL_HINT = "pip install paraspinalfat[report]"
_BACKGROUND = (0.0, 0.0, 0.0)
_TEXT_COLOR = (1.0, 1.0, 1.0)
_NAN_COLOR = (0.0, 0.0, 0.0)
# user texts are plain text: no mathtext ($...$), no LaTeX, whatever rcParams say
_PLAIN = {"parse_math": False, "usetex": False}
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


@dataclass(frozen=True)
class QCFigureInfo:
    """Where the image lies in a QC PNG, to map voxels to PNG pixels exactly.

    PNG pixel ``(row, col)`` covers the continuous square
    ``[row, row + 1) x [col, col + 1)``; the displayed array occupies the
    rectangle ``image_left .. image_left + image_width`` (columns) by
    ``image_top .. image_top + image_height`` (rows), each displayed voxel
    ``image_width / n_cols`` by ``image_height / n_rows`` pixels.

    Attributes
    ----------
    kind : str
        ``"level_slice"`` or ``"sagittal_overview"``.
    png_width, png_height : int
        Size of the PNG in pixels.
    image_left, image_top, image_width, image_height : int
        Pixel rectangle of the displayed array.
    n_rows, n_cols : int
        Shape of the displayed (possibly cropped) array.
    row_offset, col_offset : int
        Index in the caller's array of displayed row/column 0 before flipping
        (non-zero only when the picture was cropped).
    flip_lr, flip_ud : bool
        Whether the display is mirrored left-right / up-down.
    pixel_spacing : tuple of float
        ``(row_mm, col_mm)``.
    window : tuple of float
        Grey window ``(low, high)`` used.
    """

    kind: str
    png_width: int
    png_height: int
    image_left: int
    image_top: int
    image_width: int
    image_height: int
    n_rows: int
    n_cols: int
    row_offset: int
    col_offset: int
    flip_lr: bool
    flip_ud: bool
    pixel_spacing: Tuple[float, float]
    window: Tuple[float, float]

    @property
    def px_per_voxel(self) -> Tuple[float, float]:
        """Output pixels per voxel along rows (vertical) and columns (horizontal)."""
        return self.image_height / self.n_rows, self.image_width / self.n_cols

    def voxel_center_px(self, j, i):
        """Continuous PNG position ``(y, x)`` of voxel centre ``[j, i]``.

        Parameters
        ----------
        j, i : float or array_like
            Row and column index in the caller's (uncropped, unflipped) array;
            fractional values address positions between voxel centres.

        Returns
        -------
        tuple of float or ndarray
            ``(y, x)`` with pixel ``(r, c)`` covering ``[r, r+1) x [c, c+1)``.
        """
        jd = np.asarray(j, dtype=float) - self.row_offset
        idx = np.asarray(i, dtype=float) - self.col_offset
        if self.flip_ud:
            jd = (self.n_rows - 1) - jd
        if self.flip_lr:
            idx = (self.n_cols - 1) - idx
        ph, pw = self.px_per_voxel
        y = self.image_top + (jd + 0.5) * ph
        x = self.image_left + (idx + 0.5) * pw
        if y.ndim == 0:
            return float(y), float(x)
        return y, x

    def voxel_to_pixel(self, j, i):
        """PNG pixel ``(row, col)`` holding the centre of voxel ``[j, i]``.

        Indices refer to the caller's array (crop and flips accounted for).
        Voxels outside the displayed part give indices outside the image
        rectangle.  Scalars give ints, arrays give integer arrays.
        """
        y, x = self.voxel_center_px(j, i)
        if isinstance(y, float):
            return int(math.floor(y)), int(math.floor(x))
        return np.floor(y).astype(np.int64), np.floor(x).astype(np.int64)

    def to_json(self) -> str:
        """Compact ASCII JSON of this record."""
        return json.dumps(asdict(self), separators=(",", ":"), ensure_ascii=True)

    @classmethod
    def from_json(cls, text: str) -> "QCFigureInfo":
        """Inverse of :meth:`to_json`."""
        d = json.loads(text)
        d["pixel_spacing"] = tuple(float(v) for v in d["pixel_spacing"])
        d["window"] = tuple(float(v) for v in d["window"])
        return cls(**d)


# --------------------------------------------------------------------------- PNG info
def _png_text_chunks(path: Path) -> Dict[str, str]:
    """tEXt / zTXt / iTXt chunks of a PNG file (standard library only)."""
    out: Dict[str, str] = {}
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise InputError(f"cannot open QC picture {path}: {exc}") from exc
    with fh:
        if fh.read(8) != b"\x89PNG\r\n\x1a\n":
            raise InputError(f"{path} is not a PNG file")
        while True:
            head = fh.read(8)
            if len(head) < 8:
                break
            length, ctype = struct.unpack(">I4s", head)
            if ctype in (b"tEXt", b"zTXt", b"iTXt"):
                data = fh.read(length)
                fh.seek(4, os.SEEK_CUR)
                key, _, rest = data.partition(b"\0")
                try:
                    if ctype == b"tEXt":
                        value = rest.decode("latin-1")
                    elif ctype == b"zTXt":
                        value = zlib.decompress(rest[1:]).decode("latin-1")
                    else:  # iTXt: flag, method, language\0, translated key\0, text
                        flag, rest = rest[0], rest[2:]
                        _, _, rest = rest.partition(b"\0")
                        _, _, rest = rest.partition(b"\0")
                        value = (zlib.decompress(rest) if flag else rest).decode("utf-8")
                except (zlib.error, UnicodeDecodeError, IndexError):
                    continue
                out[key.decode("latin-1")] = value
            elif ctype == b"IEND":
                break
            else:
                fh.seek(length + 4, os.SEEK_CUR)
    return out


def read_qc_info(path: _PathLike) -> QCFigureInfo:
    """The :class:`QCFigureInfo` stored in a QC PNG written by this module.

    Parameters
    ----------
    path : str or path-like
        PNG written by :func:`render_level_slice` or
        :func:`render_sagittal_overview`.

    Returns
    -------
    QCFigureInfo

    Raises
    ------
    InputError
        The file is not a PNG or carries no QC record.
    """
    path = Path(path)
    chunks = _png_text_chunks(path)
    if PNG_INFO_KEY not in chunks:
        raise InputError(
            f"{path} carries no '{PNG_INFO_KEY}' record: it was not written by "
            "ParaspinalFatLib.qc_pictures (or was re-saved by another program)"
        )
    return QCFigureInfo.from_json(chunks[PNG_INFO_KEY])


def voxel_to_pixel(path_or_info, j, i):
    """PNG pixel ``(row, col)`` holding the centre of voxel ``[j, i]``.

    Parameters
    ----------
    path_or_info : QCFigureInfo or str or path-like
        The record, or a PNG written by this module (its record is read).
    j, i : int or array_like
        Row and column index in the array passed to the render function
        (before cropping and flipping).

    Returns
    -------
    tuple
        ``(row, col)``: ints for scalar input, integer arrays otherwise; use
        them as ``png[row, col]`` on the array read back from the file.
    """
    info = path_or_info if isinstance(path_or_info, QCFigureInfo) else read_qc_info(path_or_info)
    return info.voxel_to_pixel(j, i)


# --------------------------------------------------------------------------- helpers
def _mpl() -> SimpleNamespace:
    """Import the matplotlib pieces used here, or explain how to get them."""
    try:
        from matplotlib import colors as mcolors
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.collections import LineCollection
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch
    except ImportError as exc:
        raise InputError(
            "QC pictures need matplotlib, an optional dependency of paraspinalfat: "
            f"{_INSTALL_HINT} (or pip install matplotlib); import failed: {exc}"
        ) from exc
    return SimpleNamespace(
        Figure=Figure, FigureCanvasAgg=FigureCanvasAgg, LineCollection=LineCollection,
        Line2D=Line2D, Patch=Patch, to_rgb=mcolors.to_rgb,
    )


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


def _edge_segments(mask: np.ndarray) -> np.ndarray:
    """Voxel-edge outline of a 2-D mask as merged straight segments.

    Returns an array ``(n, 2, 2)`` of ``[[x0, y0], [x1, y1]]`` in data
    coordinates (voxel centres at integers, edges at half integers).
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


def _pt(px: float, dpi: float) -> float:
    return px * 72.0 / dpi


def _auto_font_px(width: int, height: int) -> float:
    return max(13.0, max(width, height) / 75.0)


def _text_size(fig, renderer, text, fontsize, weight="normal") -> Tuple[float, float]:
    t = fig.text(0, 0, text, fontsize=fontsize, fontweight=weight, **_PLAIN)
    bb = t.get_window_extent(renderer)
    t.remove()
    return float(bb.width), float(bb.height)


def _plain_texts(artist) -> None:
    """Render every text of ``artist`` literally (no mathtext, no LaTeX)."""
    from matplotlib.text import Text

    for t in artist.findobj(Text):
        t.set_parse_math(False)
        t.set_usetex(False)


def _set_exact_size(fig, width_px: int, height_px: int, dpi: float) -> None:
    """Figure size such that Agg renders exactly width_px x height_px pixels."""
    w_in, h_in = width_px / dpi, height_px / dpi
    # Agg truncates the float pixel size: nudge up until it reaches the integer
    while w_in * dpi < width_px:
        w_in = math.nextafter(w_in, math.inf)
    while h_in * dpi < height_px:
        h_in = math.nextafter(h_in, math.inf)
    fig.set_size_inches(w_in, h_in)


def _write_png_atomic(fig, path: Path, info: QCFigureInfo) -> Path:
    from .. import __version__

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    metadata = {"Software": f"ParaspinalFatLib {__version__}", PNG_INFO_KEY: info.to_json()}
    _plain_texts(fig)
    try:
        # mode 0o666 lets the umask decide the permissions, as for any new file
        fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as fh:
            # print_png, not savefig: no rcParams["savefig.*"] (bbox="tight",
            # transparent, dpi...) can move the image off its pixel grid
            fig.canvas.print_png(fh, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


class _Layout:
    """Figure and axes sized in integer pixels around a displayed array."""

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


def _new_figure(mpl, dpi):
    # layout="none": a global rcParams["figure.autolayout"] / constrained
    # layout must not move the axes off their pixel rectangle
    fig = mpl.Figure(dpi=dpi, facecolor=_BACKGROUND, layout="none")
    mpl.FigureCanvasAgg(fig)
    return fig


def _add_axes(fig, lay: _Layout, n_rows: int, n_cols: int):
    ax = fig.add_axes(
        [lay.fx(lay.left), lay.fy(lay.top + lay.img_h), lay.img_w / lay.fig_w, lay.img_h / lay.fig_h]
    )
    ax.set_axis_off()
    ax.set_xlim(-0.5, n_cols - 0.5)
    ax.set_ylim(n_rows - 0.5, -0.5)
    ax.set_aspect("auto")
    return ax


def _draw_pixels(fig, lay: _Layout, rgb8: np.ndarray) -> None:
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


def _edge_texts(fig, lay: _Layout, edge_labels, flip_lr, flip_ud, fontsize, band_px):
    if edge_labels is None:
        return
    left, right, top, bottom = (str(v) for v in edge_labels)
    if flip_lr:
        left, right = right, left
    if flip_ud:
        top, bottom = bottom, top
    kw = dict(fontsize=fontsize, color=_TEXT_COLOR, fontweight="bold", ha="center", va="center")
    cy = lay.top + lay.img_h / 2.0
    cx = lay.left + lay.img_w / 2.0
    fig.text(lay.fx(lay.left - band_px / 2.0), lay.fy(cy), left, **kw)
    fig.text(lay.fx(lay.left + lay.img_w + band_px / 2.0), lay.fy(cy), right, **kw)
    fig.text(lay.fx(cx), lay.fy(lay.top - band_px / 2.0), top, **kw)
    fig.text(lay.fx(cx), lay.fy(lay.top + lay.img_h + band_px / 2.0), bottom, **kw)


def _scale_bar(fig, mpl, lay: _Layout, mm_per_px: float, y_px: float, fontsize, lw_pt):
    """Scale bar left-aligned under the image, in the band at y_px."""
    width_mm = lay.img_w * mm_per_px
    length = None
    for cand in (1, 2, 5, 10, 20, 50, 100, 200, 500):
        if cand <= 0.25 * width_mm:
            length = cand
    if length is None:
        return
    x0 = lay.left
    x1 = x0 + length / mm_per_px
    fig.add_artist(mpl.Line2D([lay.fx(x0), lay.fx(x1)], [lay.fy(y_px)] * 2, transform=fig.transFigure,
                              color=_TEXT_COLOR, linewidth=lw_pt, solid_capstyle="butt"))
    fig.text(lay.fx(x1 + 0.4 * lay.font_px), lay.fy(y_px), f"{length:g} mm", fontsize=fontsize,
             color=_TEXT_COLOR, ha="left", va="center")


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


# --------------------------------------------------------------------------- labels
def _place_labels(boxes_wh, rois_px, occupancy, pw, ph, img_w, img_h, gap):
    """Greedy placement of label boxes next to their ROIs.

    ``boxes_wh``: (w, h) of each box in image pixels; ``rois_px``: the ROIs'
    bounding boxes and centroids ``(x0, y0, x1, y1, cx, cy)`` in image pixels;
    ``occupancy``: displayed-voxel bool array of space to keep free (the ROIs,
    dilated).  Candidates are boxes beside the ROI's bounding box and a coarse
    grid over the image; the score is the gap to the ROI (plus a little pull
    towards its centre) with heavy penalties for covering ROI voxels and
    earlier labels.  Returns the top-left corners.
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


# --------------------------------------------------------------------------- level slice
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
    mpl = _mpl()
    path = _check_png_path(path)
    img = _image_array(image2d, "image2d")
    spacing = _spacing(pixel_spacing)
    if labels not in ("auto", "legend", "none"):
        raise InputError(f"labels must be 'auto', 'legend' or 'none', got {labels!r}")
    if not (0.0 <= float(fill_alpha) <= 1.0):
        raise InputError(f"fill_alpha must lie in [0, 1], got {fill_alpha!r}")
    if edge_labels is not None and len(edge_labels) != 4:
        raise InputError(f"edge_labels must name 4 sides (col 0, last col, row 0, last row), got {edge_labels!r}")
    fat_rgb = np.array(_rgb(mpl, fat_color, "fat_color"))
    und_rgb = np.array(_rgb(mpl, undefined_color, "undefined_color"))

    # ---- validate ROIs and choose colours
    prepared = []
    for n, roi in enumerate(rois):
        if not isinstance(roi, RoiOverlay):
            raise InputError(f"rois[{n}] must be a RoiOverlay, got {type(roi).__name__}")
        what = f"ROI '{roi.name}'"
        mask = _bool_layer(roi.mask, img.shape, f"{what} mask")
        fat = _bool_layer(roi.fat, img.shape, f"{what} fat layer")
        und = _bool_layer(roi.undefined, img.shape, f"{what} undefined layer")
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

    # ---- view: crop + flips
    r0, r1, c0, c1 = _crop_box([p[1] for p in prepared], img.shape, spacing, crop_margin_mm)
    view = _view(img, r0, r1, c0, c1, flip_lr, flip_ud)
    n_rows, n_cols = view.shape
    (lo, hi), win_source = _window(view, window, percentiles)

    # ---- composite RGB: grey + fills, exact colours
    rgb = _grey(view, lo, hi)
    any_fat = any_und = False
    shown = []
    for name, mask, fat, und, color, text in prepared:
        m = _view(mask, r0, r1, c0, c1, flip_lr, flip_ud)
        if fat is not None:
            any_fat = True
            f = _view(fat, r0, r1, c0, c1, flip_lr, flip_ud) & m
            rgb[f] = fill_alpha * fat_rgb + (1.0 - fill_alpha) * rgb[f]
        if und is not None:
            any_und = True
            u = _view(und, r0, r1, c0, c1, flip_lr, flip_ud) & m
            rgb[u] = und_rgb
        shown.append((name, m, color, text))
    rgb8 = _to_uint8(rgb)

    # ---- sizes in pixels
    img_w, img_h = _display_size(n_rows, n_cols, spacing, min_px_per_voxel, min_image_px, max_image_px)
    pw, ph = img_w / n_cols, img_h / n_rows
    font_px = _auto_font_px(img_w, img_h) if font_size is None else float(font_size) * dpi / 72.0
    fs = _pt(font_px, dpi)
    fs_small = fs * 0.85
    pad = 0.6 * font_px
    band = 1.6 * font_px if edge_labels is not None else pad

    fig = _new_figure(mpl, dpi)
    renderer = fig.canvas.get_renderer()

    title_w, title_h = _text_size(fig, renderer, title, fs * 1.15, "bold") if title else (0.0, 0.0)
    px_text = f"pixel {spacing[0]:.3g} x {spacing[1]:.3g} mm"
    win_text = f"window {lo:.4g} to {hi:.4g} ({win_source})  |  {px_text}"
    win_w, win_h = _text_size(fig, renderer, win_text, fs_small)

    # legend (measured now, positioned once the figure size is known)
    lw_pt = _pt(max(outline_width_px, 1.0), dpi)
    handles = []
    for name, m, color, text in shown:
        label = text if labels == "legend" else name
        if not m.any():
            label += " (not on this slice)"
        handles.append(mpl.Line2D([], [], color=color, linewidth=lw_pt * 1.6, label=label))
    if any_fat:
        handles.append(mpl.Patch(facecolor=tuple(fat_rgb), edgecolor="none", label=fat_label))
    if any_und:
        handles.append(mpl.Patch(facecolor=tuple(und_rgb), edgecolor="none", label=undefined_label))
    legend = None
    leg_w = leg_h = 0.0
    if handles:
        avail = max(img_w, title_w, win_w) + 2 * band
        ncol = len(handles) if labels != "legend" else 1
        while True:
            legend = fig.legend(handles=handles, loc="upper center", ncol=ncol, fontsize=fs_small,
                                frameon=False, labelcolor=_TEXT_COLOR, handlelength=1.6,
                                columnspacing=1.2, borderaxespad=0.0)
            _plain_texts(legend)
            bb = legend.get_window_extent(renderer)
            leg_w, leg_h = float(bb.width), float(bb.height)
            if leg_w <= avail or ncol == 1:
                break
            legend.remove()
            ncol -= 1

    top = pad + (title_h + pad if title else 0.0) + win_h + pad + band
    bottom = band + (1.6 * font_px if scale_bar else 0.0) + (leg_h + pad if legend is not None else 0.0) + pad
    lay = _Layout(dpi, font_px, img_w, img_h, (band, band, top, bottom),
                  min_fig_w=max(title_w, win_w, leg_w) + 2 * pad)
    _set_exact_size(fig, lay.fig_w, lay.fig_h, dpi)

    # ---- texts around the image
    cx = lay.fig_w / 2.0
    y = pad
    if title:
        fig.text(lay.fx(cx), lay.fy(y), title, fontsize=fs * 1.15, fontweight="bold", color=_TEXT_COLOR,
                 ha="center", va="top")
        y += title_h + pad
    fig.text(lay.fx(cx), lay.fy(y), win_text, fontsize=fs_small, color=(0.8, 0.8, 0.8), ha="center", va="top")
    _edge_texts(fig, lay, edge_labels, flip_lr, flip_ud, fs, band)
    y = lay.top + img_h + band
    if scale_bar:
        _scale_bar(fig, mpl, lay, spacing[1] / pw, y + 0.8 * font_px, fs_small, _pt(3.0, dpi))
        y += 1.6 * font_px
    if legend is not None:
        legend.set_bbox_to_anchor((lay.fx(cx), lay.fy(y)), transform=fig.transFigure)

    # ---- the image and outlines
    ax = _add_axes(fig, lay, n_rows, n_cols)
    _draw_pixels(fig, lay, rgb8)
    for name, m, color, text in shown:
        segs = _edge_segments(m)
        if len(segs):
            ax.add_collection(mpl.LineCollection(segs, colors=[color], linewidths=lw_pt,
                                                 capstyle="projecting", joinstyle="miter"))

    # ---- labels next to the ROIs
    if labels == "auto":
        todo = [(name, m, color, text) for name, m, color, text in shown if m.any() and text]
        if todo:
            union = np.zeros((n_rows, n_cols), dtype=bool)
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
                tw, th = _text_size(fig, renderer, text, fs_small)
                sizes.append((tw + 2 * box_pad, th + 2 * box_pad))
                rr, cc = np.nonzero(m)
                rois_px.append((cc.min() * pw, rr.min() * ph, (cc.max() + 1) * pw, (rr.max() + 1) * ph,
                                (cc.mean() + 0.5) * pw, (rr.mean() + 0.5) * ph))
            corners = _place_labels(sizes, rois_px, occ, pw, ph, img_w, img_h, gap=0.6 * font_px)
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
                                             color=color, linewidth=_pt(1.5, dpi), alpha=0.9))
                ax.text(bx / pw - 0.5, by / ph - 0.5, text, fontsize=fs_small, color=_TEXT_COLOR,
                        ha="center", va="center", clip_on=False,
                        bbox=dict(boxstyle=f"round,pad={box_pad / font_px / 0.85:.3f}",
                                  facecolor=(0, 0, 0, 0.6), edgecolor=color, linewidth=_pt(1.5, dpi)))

    info = QCFigureInfo(
        kind="level_slice", png_width=lay.fig_w, png_height=lay.fig_h,
        image_left=lay.left, image_top=lay.top, image_width=img_w, image_height=img_h,
        n_rows=n_rows, n_cols=n_cols, row_offset=int(r0), col_offset=int(c0),
        flip_lr=bool(flip_lr), flip_ud=bool(flip_ud), pixel_spacing=spacing, window=(lo, hi),
    )
    return _write_png_atomic(fig, path, info)


# --------------------------------------------------------------------------- sagittal
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
    level_lines : sequence of (label, row, source) tuples
        ``label`` e.g. ``"L4/5"``; ``row`` the level's position in rows of
        ``image2d_sagittal`` (float, voxel centres at integers, before any
        flip); ``source`` optional text such as ``"vertebra masks"`` (a
        2-tuple ``(label, row)`` is accepted).  A line across the image is
        drawn in ``line_color`` with its label right of the image; a level
        outside the image is listed at the nearest edge as "(outside view)".
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
        ``info.voxel_center_px(row, 0)[0]`` the PNG y of a level line.

    Raises
    ------
    InputError
        matplotlib is missing, or an argument is malformed.
    """
    mpl = _mpl()
    path = _check_png_path(path)
    img = _image_array(image2d_sagittal, "image2d_sagittal")
    spacing = _spacing(pixel_spacing)
    if edge_labels is not None and len(edge_labels) != 4:
        raise InputError(f"edge_labels must name 4 sides (col 0, last col, row 0, last row), got {edge_labels!r}")
    color = _rgb(mpl, line_color, "line_color")
    lines = []
    for n, item in enumerate(level_lines):
        try:
            items = list(item)
        except TypeError as exc:
            raise InputError(f"level_lines[{n}] must be (label, row, source), got {item!r}") from exc
        if len(items) not in (2, 3):
            raise InputError(f"level_lines[{n}] must be (label, row, source), got {item!r}")
        try:
            row = float(items[1])
        except (TypeError, ValueError) as exc:
            raise InputError(f"level_lines[{n}] row position {items[1]!r} is not a number") from exc
        if not math.isfinite(row):
            raise InputError(f"level_lines[{n}] ('{items[0]}') row position is not finite: {row!r}")
        source = str(items[2]) if len(items) == 3 and items[2] not in (None, "") else ""
        lines.append((str(items[0]), row, source))

    view = _view(img, 0, img.shape[0], 0, img.shape[1], flip_lr, flip_ud)
    n_rows, n_cols = view.shape
    (lo, hi), win_source = _window(view, window, percentiles)
    rgb8 = _to_uint8(_grey(view, lo, hi))

    img_w, img_h = _display_size(n_rows, n_cols, spacing, min_px_per_voxel, min_image_px, max_image_px)
    ph = img_h / n_rows
    font_px = _auto_font_px(img_w, img_h) if font_size is None else float(font_size) * dpi / 72.0
    fs = _pt(font_px, dpi)
    fs_small = fs * 0.85
    pad = 0.6 * font_px
    band = 1.6 * font_px if edge_labels is not None else pad

    fig = _new_figure(mpl, dpi)
    renderer = fig.canvas.get_renderer()
    title_w, title_h = _text_size(fig, renderer, title, fs * 1.15, "bold") if title else (0.0, 0.0)
    win_text = f"window {lo:.4g} to {hi:.4g} ({win_source})  |  pixel {spacing[0]:.3g} x {spacing[1]:.3g} mm"
    win_w, win_h = _text_size(fig, renderer, win_text, fs_small)

    # label texts and their y (display rows, px from the image top)
    entries = []
    for label, row, source in lines:
        r_disp = (n_rows - 1) - row if flip_ud else row
        y = (r_disp + 0.5) * ph
        inside = -0.5 <= r_disp <= n_rows - 0.5
        text = label + (f" ({source})" if source else "") + ("" if inside else " (outside view)")
        tw, th = _text_size(fig, renderer, text, fs, "bold")
        entries.append([min(max(y, 0.0), float(img_h)), y, inside, text, tw, th])
    label_w = max([e[4] for e in entries], default=0.0)
    lead = 1.5 * font_px  # connector from the image edge to the label
    right = max(band, lead + label_w + pad) if entries else band

    top = pad + (title_h + pad if title else 0.0) + win_h + pad + band
    bottom = band + pad
    lay = _Layout(dpi, font_px, img_w, img_h, (band, right, top, bottom),
                  min_fig_w=max(title_w, win_w) + 2 * pad)
    _set_exact_size(fig, lay.fig_w, lay.fig_h, dpi)

    cx = lay.fig_w / 2.0
    y = pad
    if title:
        fig.text(lay.fx(cx), lay.fy(y), title, fontsize=fs * 1.15, fontweight="bold", color=_TEXT_COLOR,
                 ha="center", va="top")
        y += title_h + pad
    fig.text(lay.fx(cx), lay.fy(y), win_text, fontsize=fs_small, color=(0.8, 0.8, 0.8), ha="center", va="top")
    if edge_labels is not None:
        # the right margin holds the level labels: name the left and right
        # sides in the top band, at the image's corners
        left_l, right_l, top_l, bottom_l = (str(v) for v in edge_labels)
        if flip_lr:
            left_l, right_l = right_l, left_l
        if flip_ud:
            top_l, bottom_l = bottom_l, top_l
        kw = dict(fontsize=fs, color=_TEXT_COLOR, fontweight="bold", va="center")
        y_top = lay.fy(lay.top - band / 2.0)
        fig.text(lay.fx(lay.left), y_top, left_l, ha="left", **kw)
        fig.text(lay.fx(lay.left + img_w), y_top, right_l, ha="right", **kw)
        fig.text(lay.fx(lay.left + img_w / 2.0), y_top, top_l, ha="center", **kw)
        fig.text(lay.fx(lay.left + img_w / 2.0), lay.fy(lay.top + img_h + band / 2.0), bottom_l, ha="center", **kw)

    ax = _add_axes(fig, lay, n_rows, n_cols)
    _draw_pixels(fig, lay, rgb8)

    # de-overlap the labels vertically (keep order, push apart)
    order = sorted(range(len(entries)), key=lambda k: entries[k][0])
    min_gap = 1.15 * max([e[5] for e in entries], default=0.0)
    prev = -math.inf
    for k in order:
        entries[k][0] = max(entries[k][0], prev + min_gap)
        prev = entries[k][0]
    lw_pt = _pt(max(line_width_px, 1.0), dpi)
    x_edge = lay.left + img_w
    for label_y, y_true, inside, text, tw, th in entries:
        if inside:
            r_data = y_true / ph - 0.5
            ax.add_artist(mpl.Line2D([-0.5, n_cols - 0.5], [r_data, r_data], color=color, linewidth=lw_pt,
                                     solid_capstyle="butt"))
            ys = (lay.top + y_true, lay.top + label_y)
        else:
            ys = (lay.top + label_y, lay.top + label_y)
        fig.add_artist(mpl.Line2D([lay.fx(x_edge), lay.fx(x_edge + 0.6 * lead), lay.fx(x_edge + lead - 0.2 * font_px)],
                                  [lay.fy(ys[0]), lay.fy(ys[0]), lay.fy(ys[1])], transform=fig.transFigure,
                                  color=color, linewidth=lw_pt * 0.7))
        fig.text(lay.fx(x_edge + lead), lay.fy(lay.top + label_y), text, fontsize=fs, fontweight="bold",
                 color=color, ha="left", va="center")

    info = QCFigureInfo(
        kind="sagittal_overview", png_width=lay.fig_w, png_height=lay.fig_h,
        image_left=lay.left, image_top=lay.top, image_width=img_w, image_height=img_h,
        n_rows=n_rows, n_cols=n_cols, row_offset=0, col_offset=0,
        flip_lr=bool(flip_lr), flip_ud=bool(flip_ud), pixel_spacing=spacing, window=(lo, hi),
    )
    return _write_png_atomic(fig, path, info)

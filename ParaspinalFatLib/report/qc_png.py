"""QC picture files: the pixel-mapping record in the PNG, reading it back, atomic writing.

Every QC PNG (:mod:`ParaspinalFatLib.report.qc_pictures`) carries a
:class:`QCFigureInfo` as JSON in a PNG text chunk (key :data:`PNG_INFO_KEY`)
with the exact pixel rectangle of the displayed array.  :func:`voxel_to_pixel`
maps voxel indices of the array passed to the render function (crops and
flips are accounted for) to PNG ``(row, col)`` pixel indices;
:func:`read_qc_info` returns the record.  Reading needs only the standard
library and numpy.

:func:`write_png_atomic` writes a finished matplotlib figure with its record:
a temporary file in the destination folder is renamed over the target
(``os.replace``), so a reader never sees a half written picture and a failure
leaves no temporary file behind.
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
from typing import Any, Dict, Tuple, Union

import numpy as np

from ..errors import InputError

__all__ = ["PNG_INFO_KEY", "QCFigureInfo", "read_qc_info", "voxel_to_pixel", "write_png_atomic"]

_PathLike = Union[str, os.PathLike]
#: Key of the PNG text chunk holding the :class:`QCFigureInfo` JSON.
PNG_INFO_KEY = "ParaspinalFat-QC"


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
    """The :class:`QCFigureInfo` stored in a QC PNG.

    Parameters
    ----------
    path : str or path-like
        PNG written by :func:`~ParaspinalFatLib.report.qc_pictures.render_level_slice` or
        :func:`~ParaspinalFatLib.report.qc_pictures.render_sagittal_overview`.

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
            "ParaspinalFatLib.report.qc_pictures (or was re-saved by another program)"
        )
    return QCFigureInfo.from_json(chunks[PNG_INFO_KEY])


def voxel_to_pixel(path_or_info, j, i):
    """PNG pixel ``(row, col)`` holding the centre of voxel ``[j, i]``.

    Parameters
    ----------
    path_or_info : QCFigureInfo or str or path-like
        The record, or a QC PNG (its record is read).
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


def write_png_atomic(fig: Any, path: Path, info: QCFigureInfo) -> Path:
    """Write a matplotlib figure as a PNG carrying ``info``, atomically.

    The figure is rendered by its canvas' ``print_png`` (not ``savefig``: no
    ``rcParams["savefig.*"]`` such as a tight bounding box or another dpi can
    move the image off its pixel grid) into a temporary file next to ``path``,
    which then replaces ``path``.  On any failure the temporary file is
    removed and an existing ``path`` is left as it was.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The finished figure, attached to an Agg canvas.
    path : pathlib.Path
        Output ``.png``; its parent folders are created.
    info : QCFigureInfo
        Pixel mapping stored in the text chunk :data:`PNG_INFO_KEY`.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    from .. import __version__

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    metadata = {"Software": f"ParaspinalFatLib {__version__}", PNG_INFO_KEY: info.to_json()}
    try:
        # mode 0o666 lets the umask decide the permissions, as for any new file
        fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)  # novm (int flags, not a union type)
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

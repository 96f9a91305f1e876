"""Reading NIfTI files safely with SimpleITK.

SimpleITK (through the NIfTI library inside ITK) has two pitfalls that silently
give wrong voxels:

* a **truncated** file (a ``.nii`` with fewer voxel bytes than its header
  declares, or a ``.nii.gz`` whose gzip stream ends early or is damaged) is
  read without any error, the missing voxels being filled with zeros;
* asked for ``x.nii.gz`` while ``x.nii`` also exists in the same folder, it
  silently reads the **sibling** ``x.nii`` instead;
* a **sheared** sform (a non-orthogonal grid, e.g. CT with gantry tilt) is
  replaced by the qform, an orthogonal grid that places the voxels wrongly
  (areas too large by ``1 / cos(shear)``: 6 % at 20 degrees), or the file is
  refused when there is no qform.

:func:`check_nifti_complete` detects the first; :func:`nifti_true_geometry`
finds the true grid of the third; :func:`read_image_file` reads any image
file with all three guards applied to NIfTI files.  The segmentation
readers (:func:`ParaspinalFatLib.io.segmentation_files.read_segmentation`) and the
image reader (:func:`ParaspinalFatLib.io.images.read_image`) read NIfTI files
through it.  The helpers that parse a NIfTI-1/NIfTI-2 header from the
(gzipped) file bytes live here too.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple
import numpy as np
from ..errors import InputError, ParaspinalFatWarning
from ..geometry import Geometry, axis_shear


__all__ = ['is_nifti_file', 'check_nifti_complete', 'gzip_trailer_proves_size', 'read_image_file',
           'NiftiSpatialHeader',
           'ShearedGrid', 'nifti_spatial_header', 'nifti_true_geometry', 'nifti_header_file']

def nifti_header_facts(head: bytes, p: Path) -> Tuple[str, int, int, int, bool]:
    """(endian, version, vox_offset, data bytes, single_file) from the first 544 bytes.

    The byte order is found from the ``sizeof_hdr`` field (348 for NIfTI-1,
    540 for NIfTI-2), tried little-endian first.

    Parameters
    ----------
    head : bytes
        The first bytes of the (decompressed) file: at least 348 for NIfTI-1,
        544 for NIfTI-2; more are ignored.
    p : pathlib.Path
        File name used in the messages.

    Returns
    -------
    tuple
        ``(endian, version, vox_offset, data_bytes, single_file)``:
        ``endian`` is the :mod:`struct` prefix ``"<"`` or ``">"``; ``version``
        is 1 or 2; ``vox_offset`` the byte offset of the voxel data (truncated
        to an integer); ``data_bytes`` the number of voxel bytes the header
        declares (product of the used dimensions, a dimension below 1 counted
        as 1, times ``bitpix`` bits, rounded up to whole bytes: a 1-bit
        image packs 8 voxels a byte; a ``bitpix`` below 1 counts 8 bits);
        ``single_file`` is ``True`` for a ``.nii`` (magic ``n+1``/``n+2``) and
        ``False`` for the header of a ``.hdr``/``.img`` pair.

    Raises
    ------
    InputError
        The header is too short, its size field is neither 348 nor 540 in
        either byte order (not a NIfTI file), or it declares a number of
        dimensions outside 1..7.
    """
    if len(head) < 348:
        raise InputError(f"{p}: NIfTI header is truncated (only {len(head)} bytes).")
    for e in ("<", ">"):
        size = struct.unpack(e + "i", head[:4])[0]
        if size == 348:
            dims = struct.unpack(e + "8h", head[40:56])
            bitpix = struct.unpack(e + "h", head[72:74])[0]
            vox_offset = int(struct.unpack(e + "f", head[108:112])[0])
            single = head[344:347] == b"n+1"
            version = 1
            break
        if size == 540:
            if len(head) < 544:
                raise InputError(f"{p}: NIfTI-2 header is truncated.")
            bitpix = struct.unpack(e + "h", head[14:16])[0]
            dims = struct.unpack(e + "8q", head[16:80])
            vox_offset = int(struct.unpack(e + "q", head[168:176])[0])
            single = head[4:7] == b"n+2"
            version = 2
            break
    else:
        raise InputError(f"{p}: not a NIfTI file (header size field is not 348 or 540).")
    ndim = int(dims[0])
    if not 1 <= ndim <= 7:
        raise InputError(f"{p}: NIfTI header declares {ndim} dimensions; the header is damaged.")
    count = 1
    for d in dims[1:1 + ndim]:
        count *= max(int(d), 1)
    bits = int(bitpix) if int(bitpix) > 0 else 8  # a missing bitpix: count one byte a voxel
    return e, version, vox_offset, (count * bits + 7) // 8, single


_NIFTI_SUFFIXES = (".nii.gz", ".nii", ".hdr.gz", ".hdr", ".img.gz", ".img")
def _nifti_stem(name: str) -> Tuple[str, str]:
    lower = name.lower()
    for suffix in _NIFTI_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)], name[-len(suffix):]
    return name, ""


def open_maybe_gzip(p: Path):
    """Open a file for binary reading, decompressing it when it is gzip data.

    The gzip magic bytes (``1f 8b``) decide, not the file name.

    Parameters
    ----------
    p : pathlib.Path
        File to open.

    Returns
    -------
    file object
        A :class:`gzip.GzipFile` or a plain binary file, positioned at the
        start of the (decompressed) data; the caller closes it (use it in a
        ``with`` statement).

    Raises
    ------
    OSError
        The file cannot be opened (not converted to ``InputError``).
    """
    with open(p, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(p, "rb")
    return open(p, "rb")


def looks_like_nifti_header(first8: bytes, head: Optional[bytes]) -> bool:
    """Whether the first bytes of a (decompressed) file start a NIfTI header.

    Parameters
    ----------
    first8 : bytes
        The first (up to 8) bytes of the decompressed data; only the
        ``sizeof_hdr`` field (first 4 bytes, 348 or 540 in either byte order)
        is read.
    head : bytes or None
        The first bytes of an uncompressed file (at least 348 for the magic
        check), or ``None`` when only ``first8`` is available (gzip data).

    Returns
    -------
    bool
        ``True`` for a NIfTI-2 size field, or a NIfTI-1 size field whose magic
        (bytes 344-346) is ``n+1`` or ``ni1``; without ``head`` the size field
        alone decides.  ``False`` for fewer than 4 bytes.
    """
    if len(first8) < 4:
        return False
    for e in ("<", ">"):
        size = struct.unpack(e + "i", first8[:4])[0]
        if size in (348, 540):
            if head is None or size == 540:
                return True
            return len(head) >= 348 and head[344:347] in (b"n+1", b"ni1")
    return False


def is_nifti_file(path) -> bool:
    """Whether a file is a NIfTI file, judged from its first bytes (not its name).

    A single-file NIfTI-1 (``n+1`` magic), the header of a ``.hdr``/``.img``
    pair (``ni1``) or a NIfTI-2 file, plain or gzip-compressed.

    Parameters
    ----------
    path : str or os.PathLike
        File to look at.

    Returns
    -------
    bool
        ``False`` also when the file cannot be opened or is too short to hold a
        NIfTI header.
    """
    p = Path(os.fspath(path))
    try:
        with open(p, "rb") as f:
            head = f.read(560)
    except OSError:
        return False
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(p, "rb") as g:
                inner = g.read(8)
        except (OSError, EOFError, zlib.error):
            inner = b""
        return looks_like_nifti_header(inner, None)
    return looks_like_nifti_header(head[:8], head)


#: Smallest possible gzip member: 10-byte header, 2-byte empty deflate stream, 8-byte trailer.
_GZIP_MIN_MEMBER = 20


def gzip_trailer_proves_size(path, expected: int) -> bool:
    """Whether the gzip trailer of a file proves it decompresses to ``expected`` bytes.

    Reads only the last 4 bytes of the file: the ``ISIZE`` field of the gzip
    trailer (RFC 1952, section 2.3.1), the uncompressed size of the last
    member modulo ``2**32``, little-endian.  ``True`` only when that field
    equals ``expected`` and ``0 < expected < 2**32``; ``False`` means "cannot
    tell" (the caller then decompresses the file), never "truncated".

    Why a match proves the file complete, without decompressing it:

    * A complete single-member file ends with its trailer, whose ``ISIZE`` is
      its uncompressed size: it matches exactly when the file holds
      ``expected`` bytes.  (``expected`` must be below ``2**32``: above, a file
      missing a multiple of 4 GiB would match too.)
    * A file cut **exactly at a member boundary** (multi-member gzip:
      ``pigz --independent``, BGZF, concatenated ``.gz``) ends with the complete
      trailer of its last whole member, whose ``ISIZE`` is that member's own
      size ``s``.  When data is missing, ``s`` is at most the bytes present,
      which are fewer than ``expected``, so ``s < expected < 2**32`` and the
      field cannot match: such a cut is never accepted.
    * A file cut **anywhere else** (inside the compressed data, inside a
      member's header or trailer) ends with 4 bytes that are not an ``ISIZE``
      field: Huffman-coded data or header bytes, which match a given 32-bit
      value with probability about ``2**-32``.  (Inside a *stored* deflate
      block, used for incompressible data, they are raw voxel bytes; matching
      needs four consecutive bytes of such noise-like data to spell the file's
      size, equally improbable.)
    * A complete multi-member file (last member smaller than the whole),
      trailing zero padding or trailing garbage does not match: the caller's
      full decompression then decides, as before.

    Damage that keeps the length (a flipped bit in the compressed data or in
    the CRC) is not detected here: SimpleITK's own reader (zlib) verifies the
    CRC and raises on it, unlike truncation, which it zero-fills silently.

    Parameters
    ----------
    path : str or os.PathLike
        A gzip file.
    expected : int
        The uncompressed size the file must have (for a NIfTI file:
        ``vox_offset`` plus the voxel bytes declared by its header).

    Returns
    -------
    bool
        ``True`` when the trailer proves the size; ``False`` when it cannot
        decide (no match, ``expected`` outside ``1 .. 2**32 - 1``, file shorter
        than a gzip member).

    Raises
    ------
    OSError
        The file cannot be read.
    """
    if not 0 < int(expected) < 1 << 32:
        return False
    with open(os.fspath(path), "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() < _GZIP_MIN_MEMBER:
            return False
        f.seek(-4, os.SEEK_END)
        isize = struct.unpack("<I", f.read(4))[0]
    return isize == int(expected)


def check_nifti_complete(path) -> None:
    """Refuse a truncated or damaged NIfTI file, which SimpleITK would read silently.

    Raise InputError when a single-file NIfTI holds fewer voxel bytes than declared,
    or its gzip stream is truncated/corrupt.  SimpleITK reads such files without
    an error and fills the missing voxels with zeros.  The header is parsed from
    the (decompressed) file bytes and the voxel bytes are counted.  A gzip file
    whose trailer proves it holds exactly the declared bytes
    (:func:`gzip_trailer_proves_size`: last 4 bytes, no decompression) is
    accepted at once; any other gzip file (multi-member, 4 GiB or more, extra
    or trailing bytes) is decompressed to the end, which also verifies its CRC.
    (SimpleITK verifies the CRC itself when it reads the file.)  For a
    ``.hdr``/``.img`` pair only the header is checked (SimpleITK checks the
    ``.img`` size itself).

    Parameters
    ----------
    path : str or os.PathLike
        A NIfTI file (``.nii``, ``.nii.gz``, ``.hdr``), see :func:`is_nifti_file`.

    Raises
    ------
    InputError
        The gzip stream is truncated or damaged; the file holds fewer voxel bytes
        than its header declares; the header is truncated or not a NIfTI header.
        The message names the file and says to re-export or copy it again.
    """
    p = Path(os.fspath(path))
    with open(p, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    try:
        with open_maybe_gzip(p) as f:
            head = f.read(544)
            _, _, vox_offset, nbytes, single = nifti_header_facts(head, p)
            if not single:
                return  # .hdr/.img pair: SimpleITK checks the .img itself
            if gz and gzip_trailer_proves_size(p, vox_offset + nbytes):
                return
            if gz:
                total = len(head)
                while True:
                    chunk = f.read(1 << 24)
                    if not chunk:
                        break
                    total += len(chunk)
            else:
                total = p.stat().st_size
    except (EOFError, OSError, zlib.error) as exc:
        raise InputError(
            f"{p}: the gzip-compressed file is truncated or damaged ({exc}); re-export or copy "
            "it again."
        ) from None
    if total < vox_offset + nbytes:
        raise InputError(
            f"{p}: the NIfTI file holds {max(total - vox_offset, 0)} bytes of voxel data but its "
            f"header declares {nbytes}; the file is truncated. Re-export or copy it again."
        )


# ============================================================================ sheared grids
#: A sform whose axes deviate from right angles by more than this (degrees) is "sheared".
#: Float32 rounding of an orthogonal sform stays below 1e-4 degrees.
SHEAR_TOLERANCE_DEG = 1e-3

_AXIS_NAMES = ("i", "j", "k")
_XFORM_NAMES = {0: "unknown", 1: "scanner", 2: "aligned", 3: "Talairach", 4: "MNI-152",
                5: "template"}


@dataclass(frozen=True)
class NiftiSpatialHeader:
    """The spatial fields of a NIfTI-1 or NIfTI-2 header, as stored (RAS millimetres).

    Attributes
    ----------
    version : int
        1 or 2.
    ndim : int
        ``dim[0]``, the number of dimensions.
    size : tuple of 3 int
        ``dim[1..3]`` (a missing or non-positive dimension counted as 1).
    pixdim : tuple of 8 float
        ``pixdim[0..7]`` (``pixdim[0]`` is the qform's ``qfac``).
    qform_code, sform_code : int
        The transform codes (0 unknown, 1 scanner, 2 aligned, 3 Talairach,
        4 MNI-152, 5 template).
    quatern : tuple of 3 float
        ``quatern_b, quatern_c, quatern_d``.
    qoffset : tuple of 3 float
        ``qoffset_x, qoffset_y, qoffset_z``.
    srow : tuple of 3 tuples of 4 float
        ``srow_x, srow_y, srow_z``.
    """

    version: int
    ndim: int
    size: Tuple[int, int, int]
    pixdim: Tuple[float, ...]
    qform_code: int
    sform_code: int
    quatern: Tuple[float, float, float]
    qoffset: Tuple[float, float, float]
    srow: Tuple[Tuple[float, float, float, float], ...]

    def sform_ras(self):
        """4x4 voxel-index-to-RAS matrix of the sform (``srow_x/y/z``).

        Returns
        -------
        numpy.ndarray
            ``[[srow_x], [srow_y], [srow_z], [0, 0, 0, 1]]``.
        """
        m = np.eye(4)
        m[:3, :] = np.asarray(self.srow, dtype=float)
        return m

    def qform_ras(self):
        """4x4 voxel-index-to-RAS matrix of the qform (NIfTI "method 2").

        Computed as ``nifti_quatern_to_mat44`` of the NIfTI reference library:
        rotation from the unit quaternion ``(a, b, c, d)`` with
        ``a = sqrt(1 - b^2 - c^2 - d^2)`` (``b, c, d`` renormalised and
        ``a = 0`` when that is not positive), scaled by ``pixdim[1..3]``
        (a non-positive spacing counted as 1), the third column negated when
        ``qfac = pixdim[0] < 0``; offset ``qoffset``.

        Returns
        -------
        numpy.ndarray
            The 4x4 matrix.
        """
        b, c, d = (float(v) for v in self.quatern)
        a = 1.0 - (b * b + c * c + d * d)
        if a < 1e-7:
            norm = math.sqrt(b * b + c * c + d * d) or 1.0
            b, c, d, a = b / norm, c / norm, d / norm, 0.0
        else:
            a = math.sqrt(a)
        r = np.array([
            [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
            [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
            [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
        ])
        spacing = [float(v) if float(v) > 0 else 1.0 for v in self.pixdim[1:4]]
        if float(self.pixdim[0]) < 0:
            spacing[2] = -spacing[2]
        m = np.eye(4)
        m[:3, :3] = r * np.asarray(spacing)
        m[:3, 3] = self.qoffset
        return m


def nifti_spatial_header(head: bytes, p: Path) -> NiftiSpatialHeader:
    """Parse the spatial fields of a NIfTI-1/NIfTI-2 header, either byte order.

    Parameters
    ----------
    head : bytes
        The first bytes of the (decompressed) file: at least 348 for NIfTI-1,
        544 for NIfTI-2.
    p : pathlib.Path
        File name used in the messages.

    Returns
    -------
    NiftiSpatialHeader

    Raises
    ------
    InputError
        Not a NIfTI header, or a truncated one (see :func:`nifti_header_facts`).
    """
    e, version, _, _, _ = nifti_header_facts(head, p)
    if version == 1:
        dims = struct.unpack(e + "8h", head[40:56])
        pixdim = struct.unpack(e + "8f", head[76:108])
        qcode, scode = struct.unpack(e + "2h", head[252:256])
        q = struct.unpack(e + "6f", head[256:280])
        rows = struct.unpack(e + "12f", head[280:328])
    else:
        dims = struct.unpack(e + "8q", head[16:80])
        pixdim = struct.unpack(e + "8d", head[104:168])
        qcode, scode = struct.unpack(e + "2i", head[344:352])
        q = struct.unpack(e + "6d", head[352:400])
        rows = struct.unpack(e + "12d", head[400:496])
    ndim = int(dims[0])
    size = tuple(max(int(dims[a]), 1) if a <= ndim else 1 for a in (1, 2, 3))
    return NiftiSpatialHeader(
        version=version, ndim=ndim, size=size, pixdim=tuple(float(v) for v in pixdim),
        qform_code=int(qcode), sform_code=int(scode), quatern=tuple(float(v) for v in q[:3]),
        qoffset=tuple(float(v) for v in q[3:]),
        srow=tuple(tuple(float(v) for v in rows[4 * r:4 * r + 4]) for r in range(3)),
    )


def _lps_geometry(size, ras):
    """Geometry of a voxel-index-to-RAS 4x4 matrix (rows x and y negated for LPS)."""
    m = np.asarray(ras, dtype=float).copy()
    m[:2, :] *= -1.0
    return Geometry.from_ijk_to_lps(size, m)


@dataclass(frozen=True)
class ShearedGrid:
    """A NIfTI file whose sform is sheared, and the grid its voxels really lie on.

    Attributes
    ----------
    geometry : Geometry
        The sform's grid in LPS (non-orthogonal direction matrix).
    shear_deg : float
        Largest deviation from a right angle between two grid axes (degrees).
    axes : str
        The two axes concerned, e.g. ``"j and k"``.
    header : NiftiSpatialHeader
        The parsed header.
    """

    geometry: Geometry
    shear_deg: float
    axes: str
    header: NiftiSpatialHeader


def nifti_true_geometry(path) -> Optional[ShearedGrid]:
    """The true grid of a NIfTI file whose sform is sheared (``None`` when it is not).

    ITK (and so SimpleITK and 3D Slicer) only supports orthogonal grids: for a
    sheared sform (e.g. CT with gantry tilt converted by dcm2niix) it silently
    uses the qform, which cannot describe a shear, or refuses the file when
    there is no qform.  The cross-sectional areas measured on that grid are
    wrong by the factor ``1 / cos(shear)`` (6 % at 20 degrees).  This function
    reads the header itself and returns the sform's grid, which places every
    voxel where it really is: spacing = the lengths of the sform's columns
    (``pixdim`` is not used), direction = the columns divided by them
    (non-orthogonal), origin = its last column, in LPS.

    The sform is taken to describe the voxels when ``sform_code`` is 1
    (scanner; ITK prefers such a sform too), when there is no qform
    (``qform_code`` 0), or when the qform is the orthogonal approximation of
    the sform (same origin within half a voxel, axes within the shear angle
    plus 1 degree), as written by dcm2niix, SPM and nibabel.

    Parameters
    ----------
    path : str or os.PathLike
        A NIfTI file (``.nii``, ``.nii.gz``, ``.hdr``), plain or gzipped,
        NIfTI-1 or NIfTI-2, either byte order.

    Returns
    -------
    ShearedGrid or None
        ``None`` when ``sform_code`` is 0, the sform's axes are at right
        angles within :data:`SHEAR_TOLERANCE_DEG` (rotations, flips and float
        noise), or the sform is degenerate (a zero-length axis, non-finite
        numbers: left to SimpleITK).

    Raises
    ------
    InputError
        The header cannot be read; or the sform is sheared, its code is not
        1 (scanner) and the qform places the voxels elsewhere, so that it
        cannot be told which transform describes the voxels.  The message
        names the file, the shear angle and what to do.
    """
    p = Path(os.fspath(path))
    try:
        with open_maybe_gzip(p) as f:
            head = f.read(544)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{p}: cannot read the NIfTI header ({exc}); re-export or copy the "
                         "file again.") from None
    hdr = nifti_spatial_header(head, p)
    if hdr.sform_code <= 0:
        return None
    sform = hdr.sform_ras()
    shear, pair = axis_shear(sform[:3, :3])
    if not shear > SHEAR_TOLERANCE_DEG or abs(np.linalg.det(sform[:3, :3])) < 1e-12:
        return None
    axes = f"{_AXIS_NAMES[pair[0]]} and {_AXIS_NAMES[pair[1]]}"
    if hdr.sform_code != 1 and hdr.qform_code > 0:
        qform = hdr.qform_ras()
        spacing = np.linalg.norm(sform[:3, :3], axis=0)
        unit_s = sform[:3, :3] / spacing
        unit_q = qform[:3, :3] / np.linalg.norm(qform[:3, :3], axis=0)
        angles = np.degrees(np.arccos(np.clip(np.sum(unit_s * unit_q, axis=0), -1.0, 1.0)))
        offset = float(np.linalg.norm(sform[:3, 3] - qform[:3, 3]))
        if offset > 0.5 * float(spacing.min()) or float(angles.max()) > shear + 1.0:
            o_s = tuple(round(float(v), 2) for v in _lps_geometry(hdr.size, sform).origin)
            o_q = tuple(round(float(v), 2) for v in _lps_geometry(hdr.size, qform).origin)
            raise InputError(
                f"{p}: the NIfTI sform (sform_code {hdr.sform_code}, "
                f"'{_XFORM_NAMES.get(hdr.sform_code, 'other')}') describes a sheared voxel grid "
                f"({shear:.2f} degree shear between the {axes} axes) and the qform (qform_code "
                f"{hdr.qform_code}) places the voxels elsewhere (origin {o_s} vs {o_q} mm LPS, "
                f"axes up to {float(angles.max()):.2f} degrees apart), so it cannot be told which "
                "transform describes the voxels. Resample the image to an orthogonal grid, or save "
                "it as NRRD (which keeps the true geometry) from the tool that made it."
            )
    return ShearedGrid(_lps_geometry(hdr.size, sform), shear, axes, hdr)


def nifti_header_file(path) -> Optional[Path]:
    """The file holding the NIfTI header of ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        Any file.

    Returns
    -------
    pathlib.Path or None
        ``path`` itself for a NIfTI file (:func:`is_nifti_file`); for the
        ``.img``/``.img.gz`` of a ``.hdr``/``.img`` pair its NIfTI ``.hdr``
        (or ``.hdr.gz``) sibling; ``None`` otherwise.
    """
    p = Path(os.fspath(path))
    if is_nifti_file(p):
        return p
    stem, suffix = _nifti_stem(p.name)
    if suffix.lower() in (".img", ".img.gz"):
        for s in (".hdr", ".hdr.gz", ".HDR", ".HDR.GZ"):
            q = p.with_name(stem + s)
            if q.is_file() and is_nifti_file(q):
                return q
    return None


def _spatial_parts(image):
    """(direction 3x3, origin 3) of the spatial axes of a 3-D or 4-D SimpleITK image."""
    dim = image.GetDimension()
    d = np.asarray(image.GetDirection(), dtype=float).reshape(dim, dim)[:3, :3]
    return d, np.asarray(image.GetOrigin(), dtype=float)[:3]


def _set_spatial_geometry(image, geometry) -> None:
    """Give the spatial axes of a 3-D or 4-D SimpleITK image the grid ``geometry``."""
    dim = image.GetDimension()
    if dim == 3:
        geometry.apply_to_sitk(image)
        return
    d = np.eye(dim)
    d[:3, :3] = geometry.direction_matrix
    image.SetSpacing(tuple(geometry.spacing) + tuple(image.GetSpacing()[3:]))
    image.SetOrigin(tuple(geometry.origin) + tuple(image.GetOrigin()[3:]))
    image.SetDirection(tuple(float(v) for v in d.ravel()))


def _read_sheared(p: Path, header: Path, sheared: ShearedGrid):
    """SimpleITK read of a file with a sheared sform, given the sform's true grid."""
    try:
        image = _read_isolated(p)  # ITK uses the qform (when present) ...
    except RuntimeError:
        image = _read_without_orientation(header)  # ... or refuses
    if image.GetDimension() not in (3, 4):
        return image  # the callers refuse the dimension
    d, origin = _spatial_parts(image)
    g = sheared.geometry
    if np.allclose(d, g.direction_matrix, atol=1e-4) and np.allclose(origin, g.origin, atol=1e-3):
        return image  # ITK accepted this nearly orthogonal sform itself
    _set_spatial_geometry(image, g)
    warnings.warn(
        f"{p}: the NIfTI sform describes a sheared voxel grid ({sheared.shear_deg:.2f} degree "
        f"shear between the {sheared.axes} axes, e.g. CT gantry tilt); it is read on this true "
        "geometry. SimpleITK/ITK and 3D Slicer use an orthogonal grid for this file instead "
        "(the qform) or refuse it: a segmentation drawn on it in such a tool carries that other "
        "header; pass it with --assume-same-grid (assume_same_grid=True).",
        ParaspinalFatWarning, stacklevel=3,
    )
    return image


def _read_without_orientation(header: Path):
    """Read a NIfTI file through a copy whose qform and sform codes are 0.

    ITK refuses a sheared sform without a qform; with both codes 0 it reads
    the voxels unchanged (only the orientation is lost, which the caller
    sets).  The copy (decompressed) lives in a private temporary folder; for
    a ``.hdr``/``.img`` pair only the header is copied and the image file is
    linked (or copied) beside it.
    """
    import shutil
    import tempfile

    import SimpleITK as sitk  # runtime dependency

    with open_maybe_gzip(header) as src:
        _, version, _, _, single = nifti_header_facts(src.read(544), header)
    size = 348 if version == 1 else 540
    codes = slice(252, 256) if version == 1 else slice(344, 352)
    stem, _ = _nifti_stem(header.name)
    with tempfile.TemporaryDirectory(prefix="paraspinalfat_") as tmp:
        target = Path(tmp) / ((stem or "image") + (".nii" if single else ".hdr"))
        with open_maybe_gzip(header) as src, open(target, "wb") as dst:
            head = bytearray(src.read(size))
            head[codes] = bytes(codes.stop - codes.start)
            dst.write(head)
            shutil.copyfileobj(src, dst, 1 << 24)
        if not single:
            found = [header.with_name(stem + s) for s in (".img", ".img.gz", ".IMG", ".IMG.GZ")]
            found = [q for q in found if q.is_file()]
            if found:
                _, img_suffix = _nifti_stem(found[0].name)
                alias = target.with_name(target.name[:-4] + img_suffix.lower())
                try:
                    os.symlink(found[0].resolve(), alias)
                except (OSError, NotImplementedError):
                    shutil.copyfile(found[0], alias)
        image = sitk.ReadImage(str(target))
        image.GetSize()  # force the read to complete before the folder goes
    return image


def read_image_file(path):
    """Read an image file with SimpleITK, guarding against its NIfTI pitfalls.

    A NIfTI file (recognised by its content, :func:`is_nifti_file`) is first
    checked to be complete (:func:`check_nifti_complete`) and then read so that
    SimpleITK cannot pick up a sibling file (``x.nii`` instead of the requested
    ``x.nii.gz`` in the same folder; the file is then read through a link or
    copy in a private temporary folder).  A NIfTI file whose sform describes a
    sheared grid (:func:`nifti_true_geometry`), which SimpleITK would read on
    an orthogonal grid (the qform) or refuse, gets the sform's true grid: its
    spacing, origin and non-orthogonal direction matrix (a warning says so).
    Any other file is read with plain ``SimpleITK.ReadImage``.

    Parameters
    ----------
    path : str or os.PathLike
        Image file in any format SimpleITK reads (NIfTI, NRRD, MetaImage...);
        the ``.img`` of a NIfTI ``.hdr``/``.img`` pair is checked through its
        header.

    Returns
    -------
    SimpleITK.Image
        The image as SimpleITK reads it (no check of dimension or voxel
        type), with the true grid of a sheared NIfTI sform.

    Raises
    ------
    InputError
        A truncated or damaged NIfTI file; a sheared sform that disagrees with
        the qform (see :func:`nifti_true_geometry`).  The message names the
        file.
    RuntimeError
        SimpleITK cannot read the file; callers turn this into a message of
        their own.

    Warns
    -----
    ParaspinalFatWarning
        A sheared sform was applied (names the file and the shear angle).
    """
    p = Path(os.fspath(path))
    header = nifti_header_file(p)
    if header is not None:
        if header == p:
            check_nifti_complete(p)
        sheared = nifti_true_geometry(header)
        if sheared is not None:
            return _read_sheared(p, header, sheared)
        if header == p:
            return _read_isolated(p)
    import SimpleITK as sitk  # runtime dependency

    return sitk.ReadImage(str(p))


def _read_isolated(p: Path):
    """SimpleITK read of a NIfTI file that cannot pick up a sibling file.

    The NIfTI library behind SimpleITK resolves file names itself: asked for
    ``x.nii.gz`` while ``x.nii`` also exists, it silently reads ``x.nii``.  When
    such a sibling exists the file is read through a link (or copy) in a
    private temporary folder.
    """
    import shutil
    import tempfile

    import SimpleITK as sitk  # runtime dependency

    stem, suffix = _nifti_stem(p.name)
    siblings = [p.with_name(stem + s) for s in _NIFTI_SUFFIXES if s.lower() != suffix.lower()]
    if suffix.lower() in (".hdr", ".hdr.gz", ".img", ".img.gz") or not any(
            q.exists() for q in siblings):
        return sitk.ReadImage(str(p))
    with tempfile.TemporaryDirectory(prefix="paraspinalfat_") as tmp:
        alias = Path(tmp) / ((stem or "image") + suffix)
        try:
            os.symlink(p.resolve(), alias)
        except (OSError, NotImplementedError):
            shutil.copyfile(p, alias)
        image = sitk.ReadImage(str(alias))
        image.GetSize()  # force the read to complete before the folder goes
    return image

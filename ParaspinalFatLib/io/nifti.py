"""Reading NIfTI files safely with SimpleITK.

SimpleITK (through the NIfTI library inside ITK) has two pitfalls that silently
give wrong voxels:

* a **truncated** file (a ``.nii`` with fewer voxel bytes than its header
  declares, or a ``.nii.gz`` whose gzip stream ends early or is damaged) is
  read without any error, the missing voxels being filled with zeros;
* asked for ``x.nii.gz`` while ``x.nii`` also exists in the same folder, it
  silently reads the **sibling** ``x.nii`` instead.

:func:`check_nifti_complete` detects the first; :func:`read_image_file` reads
any image file with both guards applied to NIfTI files.  The segmentation
readers (:func:`ParaspinalFatLib.io.segmentation_files.read_segmentation`) and the
image reader (:func:`ParaspinalFatLib.io.images.read_image`) read NIfTI files
through it.  The helpers that parse a NIfTI-1/NIfTI-2 header from the
(gzipped) file bytes live here too.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path
from typing import Optional, Tuple
from ..errors import InputError


__all__ = ['is_nifti_file', 'check_nifti_complete', 'read_image_file']

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
        as 1, times ``bitpix / 8`` with at least one byte per voxel);
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
    return e, version, vox_offset, count * max(int(bitpix), 8) // 8, single


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


def check_nifti_complete(path) -> None:
    """Refuse a truncated or damaged NIfTI file, which SimpleITK would read silently.

    Raise InputError when a single-file NIfTI holds fewer voxel bytes than declared,
    or its gzip stream is truncated/corrupt.  SimpleITK reads such files without
    an error and fills the missing voxels with zeros.  The header is parsed from
    the (decompressed) file bytes and the voxel bytes are counted; a gzip file is
    decompressed to the end, which also verifies its CRC.  For a ``.hdr``/``.img``
    pair only the header is checked (SimpleITK checks the ``.img`` size itself).

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


def read_image_file(path):
    """Read an image file with SimpleITK, guarding against its NIfTI pitfalls.

    A NIfTI file (recognised by its content, :func:`is_nifti_file`) is first
    checked to be complete (:func:`check_nifti_complete`) and then read so that
    SimpleITK cannot pick up a sibling file (``x.nii`` instead of the requested
    ``x.nii.gz`` in the same folder; the file is then read through a link or
    copy in a private temporary folder).  Any other file is read with plain
    ``SimpleITK.ReadImage``.

    Parameters
    ----------
    path : str or os.PathLike
        Image file in any format SimpleITK reads (NIfTI, NRRD, MetaImage...).

    Returns
    -------
    SimpleITK.Image
        The image as SimpleITK reads it (no check of dimension or voxel type).

    Raises
    ------
    InputError
        A truncated or damaged NIfTI file (the message names the file).
    RuntimeError
        SimpleITK cannot read the file; callers turn this into a message of
        their own.
    """
    p = Path(os.fspath(path))
    if is_nifti_file(p):
        check_nifti_complete(p)
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

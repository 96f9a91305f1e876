"""Reading intensity images (parameter maps) with their full geometry.

Everything goes through SimpleITK, so NRRD, NIfTI (``.nii``/``.nii.gz``), MHA/MHD
and DICOM series folders all keep origin, spacing and direction (oblique axial
stacks are the norm in lumbar MRI).  NIfTI files are read through
:func:`ParaspinalFatLib.io.nifti.read_image_file`, which refuses truncated
files (SimpleITK zero-fills them silently), never reads a sibling ``x.nii``
when ``x.nii.gz`` was asked for, and reads a sheared sform (gantry tilt) on its
true, non-orthogonal grid (SimpleITK would silently use the orthogonal qform).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Optional, Tuple, Union
import numpy as np
import SimpleITK as sitk
from ..errors import InputError, ParaspinalFatWarning
from ..geometry import Geometry
from .nifti import nifti_header_file, read_image_file
from .dicom_seg import is_dicom_seg


__all__ = ['read_image', 'image_array', 'check_same_grid']

ImageLike = Union[str, os.PathLike, sitk.Image]
def _read_dicom_series(folder: Path, role: str) -> sitk.Image:
    ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    if not ids:
        raise InputError(
            f"{role} folder {folder} contains no DICOM image series; give a DICOM series "
            f"folder or an image file (.nrrd, .nii, .nii.gz, .mha)"
        )
    best: Optional[Tuple[int, str, list]] = None
    for series_id in ids:
        files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_id)
        if best is None or len(files) > best[0]:
            best = (len(files), series_id, list(files))
    assert best is not None
    if any(is_dicom_seg(Path(f)) for f in best[2][:1]):
        raise InputError(
            f"{role} folder {folder} holds a DICOM SEG, not an image series; pass the SEG file as "
            f"the segmentation and the referenced CT/MR series as the image"
        )
    if len(ids) > 1:
        warnings.warn(
            f"{folder}: {len(ids)} DICOM series found; using the largest one "
            f"({best[1]}, {best[0]} files)",
            ParaspinalFatWarning,
            stacklevel=3,
        )
    _check_series_geometry(best[2], folder, role)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(best[2])
    try:
        return reader.Execute()
    except RuntimeError as exc:
        raise InputError(f"{role} DICOM series in {folder} could not be read: {exc}") from None


def _check_series_geometry(files, folder: Path, role: str) -> None:
    """Refuse a DICOM series that is not one evenly spaced stack.

    SimpleITK stacks the files regardless (with only a C++ message on stderr):
    slices would sit at wrong positions, and several angled blocks in one series
    would all get the first slice's orientation.  Checks every file's
    ImageOrientationPatient and the gaps of ImagePositionPatient along the normal.
    """
    if len(files) < 2:
        return
    orientations, positions = [], []
    for f in files:
        r = sitk.ImageFileReader()
        r.SetFileName(str(f))
        try:
            r.ReadImageInformation()
            iop = [float(v) for v in r.GetMetaData("0020|0037").split("\\")]
            ipp = [float(v) for v in r.GetMetaData("0020|0032").split("\\")]
        except (RuntimeError, ValueError):
            return  # no usable geometry tags: leave it to SimpleITK
        orientations.append(iop)
        positions.append(ipp)
    iop = np.asarray(orientations)
    if not np.allclose(iop, iop[0], atol=1e-4):
        raise InputError(
            f"{role} DICOM series in {folder} mixes slice orientations (several angled stacks in one "
            f"series?); export each stack as its own series and pass one"
        )
    normal = np.cross(iop[0, :3], iop[0, 3:])
    heights = np.sort(np.asarray(positions) @ normal)
    gaps = np.diff(heights)
    median = float(np.median(gaps))
    if median <= 1e-6 or np.any(np.abs(gaps - median) > 0.01 * median + 1e-3):
        shown = ", ".join(f"{g:.3g}" for g in gaps[:12]) + (" ..." if gaps.size > 12 else "")
        raise InputError(
            f"{role} DICOM series in {folder} is not one evenly spaced stack (gaps along the slice "
            f"normal in mm: {shown}): missing or duplicate slices, or several stacks in one series; "
            f"export one complete stack"
        )


def read_image(image: ImageLike, role: str = "image") -> sitk.Image:
    """Read a 3-D scalar image from a file, a DICOM series folder or a SimpleITK image.

    Parameters
    ----------
    image : str, path-like or SimpleITK.Image
        NRRD, NIfTI, MHA/MHD file, a folder holding one DICOM series, or an image.
    role : str
        Word used in error messages ("image", "water image"...).

    Returns
    -------
    SimpleITK.Image
        3-D scalar image with its geometry.

    Raises
    ------
    InputError
        Missing or unreadable file, a DICOM SEG given as an image, 2-D, 4-D or
        multi-component data.
    """
    if isinstance(image, sitk.Image):
        img, name = image, f"{role} (SimpleITK image)"
    else:
        path = Path(image)
        name = f"{role} {path}"
        if not path.exists():
            raise InputError(f"{role} file not found: {path}")
        if path.is_dir():
            img = _read_dicom_series(path, role)
        else:
            if is_dicom_seg(path):
                raise InputError(
                    f"{name} is a DICOM SEG (segmentation object), not an image; pass it as the "
                    f"segmentation and the referenced series as the image"
                )
            if nifti_header_file(path) is not None:  # also the .img of a .hdr/.img pair
                img = _read_nifti(path, name, role)
            else:
                img = _read_other_file(path, name)
    if img.GetDimension() != 3:
        raise InputError(_dimension_message(name, img.GetDimension(), img.GetSize()))
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            f"{name} has {img.GetNumberOfComponentsPerPixel()} components per voxel (colour or "
            f"vector image); a scalar parameter map is needed"
        )
    if 1 in img.GetSize():
        raise InputError(_dimension_message(name, 2, img.GetSize()))
    return img


def _read_nifti(path: Path, name: str, role: str) -> sitk.Image:
    """NIfTI file: completeness check and sibling-safe read (see :mod:`.nifti`).

    The dimension is checked by the caller on the image read: SimpleITK's
    header-only read of the file would be exposed to the sibling-file hazard.
    """
    try:
        return read_image_file(path)
    except InputError as exc:  # truncated or damaged: the message names the file
        raise InputError(f"{role} {exc}") from None
    except RuntimeError as exc:
        raise InputError(
            f"{name} could not be read as an image ({_first_line(exc)}); supported: NRRD, "
            f"NIfTI, MHA/MHD or a DICOM series folder"
        ) from None


def _read_other_file(path: Path, name: str) -> sitk.Image:
    """Any non-NIfTI file SimpleITK reads: the dimension is checked before the voxels are read."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise InputError(
            f"{name} could not be read as an image ({_first_line(exc)}); supported: NRRD, "
            f"NIfTI, MHA/MHD or a DICOM series folder"
        ) from None
    dim = reader.GetDimension()
    if dim != 3:
        raise InputError(_dimension_message(name, dim, tuple(reader.GetSize())))
    try:
        return reader.Execute()
    except RuntimeError as exc:
        raise InputError(f"{name} could not be read: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


def _dimension_message(name: str, dim: int, size) -> str:
    if dim < 3 or (dim == 3 and 1 in tuple(size)):
        return (
            f"{name} is a 2-D image (size {tuple(size)}); a 3-D volume is needed so that the slice "
            f"geometry is known (save the whole series, not one slice)"
        )
    return (
        f"{name} is a {dim}-D image (size {tuple(size)}); a 3-D scalar volume is needed (split "
        f"multi-echo / time series / vector data and pass one 3-D map)"
    )


class _ImageBuffer:
    """Exposes a SimpleITK image's voxel buffer to numpy *and keeps the image alive*.

    ``SimpleITK.GetArrayViewFromImage`` returns a view that does not own the
    image: once the image is garbage collected the view reads freed memory.
    ``np.asarray(_ImageBuffer(img))`` is the same zero-copy view, but its
    ``base`` holds the image.
    """

    def __init__(self, image: sitk.Image):
        self._image = image
        view = sitk.GetArrayViewFromImage(image)
        self.__array_interface__ = dict(view.__array_interface__)


def image_array(img: sitk.Image, keep_integers: bool = False) -> np.ndarray:
    """Voxel array ``[k, j, i]`` of ``img``; integer types are kept exact, floats untouched.

    Float maps are never cast to integers and are not copied: the array is a
    read-only view that keeps ``img`` alive (safe after ``img`` goes out of
    scope).  Integer images are returned as float64 copies so that means/SDs
    are computed in floating point -- unless ``keep_integers``, which returns
    them as a read-only view in their own type too (the measurement converts
    only the voxels it gathers: an int16 CT as float64 would take 4x its size).

    Parameters
    ----------
    img : SimpleITK.Image
        Scalar image (as returned by :func:`read_image`).
    keep_integers : bool, optional
        Return integer images as a read-only zero-copy view in their own type.

    Returns
    -------
    numpy.ndarray
        Array of shape ``(size_k, size_j, size_i)`` (numpy ``[k, j, i]``
        order, i.e. ``Geometry.shape``), in the image's own units (no
        rescaling).  Float32/float64 images (and integer images with
        ``keep_integers``): a read-only zero-copy view with the image's dtype.
        Integer images otherwise: a writeable float64 copy.
    """
    view = np.asarray(_ImageBuffer(img))
    if keep_integers or np.issubdtype(view.dtype, np.floating):
        view.flags.writeable = False
        return view
    return view.astype(np.float64)


def check_same_grid(
    reference: Geometry,
    other: Geometry,
    reference_name: str,
    other_name: str,
    assume_same_grid: bool = False,
) -> None:
    """Refuse paired images whose headers disagree, unless explicitly overridden.

    Paired images (water/fat, map/anatomy) must be on the same voxel grid.  When
    the array sizes agree but the headers (origin/spacing/direction) differ --
    seen in real Dixon data where one series lost its origin -- this raises,
    unless ``assume_same_grid`` is true, in which case it warns and the caller
    uses the reference header for both.

    Parameters
    ----------
    reference : Geometry
        Grid of the image whose header is trusted (the parameter map).
    other : Geometry
        Grid of the paired image.
    reference_name, other_name : str
        Names of the two images used in the messages.
    assume_same_grid : bool
        Accept a same-size grid with a different header (warn instead of
        raising).  Grids of different sizes are refused regardless.

    Raises
    ------
    InputError
        The array sizes differ, or the sizes agree but origin, spacing or
        direction differ (beyond :meth:`Geometry.same_grid` tolerances: 1e-3
        mm for the origin) and ``assume_same_grid`` is false.

    Warns
    -----
    ParaspinalFatWarning
        The headers differ and ``assume_same_grid`` is true.
    """
    if reference.same_grid(other):
        return
    if tuple(reference.size) != tuple(other.size):
        raise InputError(
            f"{other_name} ({other.describe()}) is not on the voxel grid of {reference_name} "
            f"({reference.describe()}): paired images must share one grid"
        )
    if not assume_same_grid:
        raise InputError(
            f"{other_name} has the same array size as {reference_name} but a different header "
            f"({other.describe()} vs {reference.describe()}); if they are the same acquisition "
            f"grid, rerun with --assume-same-grid (assume_same_grid=True) to use the header of "
            f"{reference_name}"
        )
    warnings.warn(
        f"{other_name}: header differs from {reference_name} ({other.describe()} vs "
        f"{reference.describe()}); assuming the same voxel grid as requested",
        ParaspinalFatWarning,
        stacklevel=2,
    )

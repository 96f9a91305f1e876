"""Integer label arrays: validation, compact voxel types and label counts.

Helpers shared by the segmentation readers (labelmaps, Slicer ``.seg.nrrd``),
the ``.seg.nrrd`` writer and the resampling: label layers are kept in the
smallest unsigned integer type that holds their values, non-integer voxel
values are refused, and segment names must be unique.
"""

from __future__ import annotations

from typing import Dict, Sequence
import numpy as np
from ..errors import InputError
from ..segmentation import Segment
from .file_notes import FileNotes

#: Largest label value a segmentation can hold (int64 maximum, 2**63 - 1): label
#: values are handled as ``int64`` beyond the ``uint32`` range.
MAX_LABEL_VALUE = int(np.iinfo(np.int64).max)


def dtype_for_max(vmax: int):
    """Smallest unsigned integer type that holds label values ``0..vmax``.

    Parameters
    ----------
    vmax : int
        Largest label value to store (non-negative, at most
        :data:`MAX_LABEL_VALUE`).

    Returns
    -------
    type
        ``numpy.uint8``, ``numpy.uint16`` or ``numpy.uint32``; ``numpy.int64``
        above the ``uint32`` range.

    Raises
    ------
    ValueError
        ``vmax`` above :data:`MAX_LABEL_VALUE` (2**63 - 1), which ``int64``
        cannot hold (it would wrap to a negative value); readers refuse such
        labels first with an :class:`~ParaspinalFatLib.errors.InputError`.
    """
    if vmax > MAX_LABEL_VALUE:
        raise ValueError(f"label value {vmax} is above the largest supported label value "
                         f"{MAX_LABEL_VALUE} (2**63 - 1)")
    if vmax <= np.iinfo(np.uint8).max:
        return np.uint8
    if vmax <= np.iinfo(np.uint16).max:
        return np.uint16
    if vmax <= np.iinfo(np.uint32).max:
        return np.uint32
    return np.int64


def to_label_layers(layers: np.ndarray, source: str, notes: FileNotes, *, writeable: bool = True) -> np.ndarray:
    """Integer (L, k, j, i) array in the smallest unsigned type; negatives -> 0 (warned).

    Parameters
    ----------
    layers : numpy.ndarray
        Label values, normally of shape (L, k, j, i) (one layer per frame of
        overlapping segments; a single labelmap as L = 1); the shape is kept.
        Boolean, integer, or float holding whole numbers only.
    source : str
        File name used in the messages.
    notes : FileNotes
        Collects the warning about negative values.
    writeable : bool, optional
        False: an input that already has the target type and is C-contiguous
        is returned itself even when it is read-only (a zero-copy view of an
        image read from a file: no copy of the whole labelmap).

    Returns
    -------
    numpy.ndarray
        Writeable array (unless ``writeable=False``) of the same shape with
        the same label values, in the type of :func:`dtype_for_max` for its
        largest value, C-contiguous; booleans become a ``uint8`` 0/1 copy
        that keeps the input's memory order.  When the input already has the
        target type and is C-contiguous (and writeable, or ``writeable`` is
        False) it is returned itself, not copied.

    Raises
    ------
    InputError
        A voxel type that is neither boolean, integer nor float; NaN or
        infinite voxels; non-integer float values (e.g. a probability map);
        float values outside the ``int64`` range; ``uint64`` values above
        :data:`MAX_LABEL_VALUE` (2**63 - 1).

    Warns
    -----
    SegmentationWarning
        Through ``notes``: negative values, which are set to 0 (background).
    """
    a = layers
    if a.dtype == np.bool_:
        return a.astype(np.uint8)
    if not np.issubdtype(a.dtype, np.integer):
        if not np.issubdtype(a.dtype, np.floating):
            raise InputError(f"{source}: voxel type {a.dtype} cannot hold segmentation labels.")
        finite = np.isfinite(a)
        if not finite.all():
            raise InputError(
                f"{source}: the segmentation contains NaN/inf voxels; a segmentation must hold "
                "integer label values. Fix or re-export the labelmap."
            )
        frac = a != np.round(a)
        if frac.any():
            bad = a[frac]
            raise InputError(
                f"{source}: voxel type is {a.dtype} and {bad.size} voxel(s) hold non-integer "
                f"values (e.g. {float(bad.flat[0]):g}); a segmentation must hold integer labels. "
                "If this is a probability map, threshold it first; otherwise save the labelmap "
                "with an integer voxel type."
            )
        vmin, vmax = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        if vmax >= 2.0 ** 63 or vmin < -(2.0 ** 63):  # int64 holds [-2**63, 2**63)
            raise InputError(f"{source}: label values out of range ({vmin:g}..{vmax:g}).")
        a = a.astype(np.int64)
    if a.dtype == np.uint8:  # the smallest label type already, and no negative values: no pass over the voxels
        return _contiguous(a, writeable)
    vmin = int(a.min()) if a.size and a.dtype.kind == "i" else 0  # an unsigned type has no negative value
    if vmin < 0:
        neg = int(np.count_nonzero(a < 0))
        notes.warn(f"{neg} voxel(s) have negative values (e.g. {vmin}); they are treated as "
                   "background.")
        a = np.where(a < 0, 0, a)
    vmax = int(a.max()) if a.size else 0
    if vmax > MAX_LABEL_VALUE:
        big = int(np.count_nonzero(a > MAX_LABEL_VALUE))
        raise InputError(
            f"{source}: {big} voxel(s) hold label values above {MAX_LABEL_VALUE} (2**63 - 1), "
            f"e.g. {vmax}; label values are handled as 64-bit signed integers, which cannot "
            "hold them. Relabel the segmentation with smaller label values (e.g. 1, 2, 3...) "
            "and save it again."
        )
    target = np.dtype(dtype_for_max(vmax))
    if a.dtype == target:
        return _contiguous(a, writeable)
    return np.ascontiguousarray(a.astype(target))


def _contiguous(a: np.ndarray, writeable: bool) -> np.ndarray:
    """``a`` C-contiguous, itself when it already is (and writeable, unless ``writeable`` is False)."""
    out = np.ascontiguousarray(a)
    return out if out.flags.writeable or not writeable else out.copy()


def present_values(layer: np.ndarray) -> Dict[int, int]:
    """{value: voxel count} of the non-zero values in an integer array.

    Parameters
    ----------
    layer : numpy.ndarray
        Integer label array of any shape (usually one (k, j, i) layer).

    Returns
    -------
    dict of int to int
        Label value -> number of voxels holding it, in increasing value
        order; 0 (background) and values without voxels are left out
        (negative values of a signed array would be included).  Empty for an
        empty array.
    """
    flat = layer.ravel()
    if flat.size == 0:
        return {}
    if layer.dtype.itemsize <= 2 and np.issubdtype(layer.dtype, np.unsignedinteger):
        # bincount casts its input to intp: in slabs, so that a uint8 volume does not
        # get a whole 8-bytes-per-voxel copy (memory bound: one slab); only the non-zero
        # voxels of a slab are counted (background is most of a labelmap; 0 is not reported)
        counts = np.zeros(1 << (8 * layer.dtype.itemsize), np.int64)
        step = 1 << 22
        for start in range(0, flat.size, step):
            part = flat[start:start + step]
            counts += np.bincount(part[part != 0], minlength=counts.size)
        nz = np.nonzero(counts)[0]
        return {int(v): int(counts[v]) for v in nz if v != 0}
    values, counts = np.unique(flat, return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts) if v != 0}


def compact_dtype(layers: np.ndarray):
    """Smallest voxel type that holds the values of ``layers`` (for writing).

    Parameters
    ----------
    layers : numpy.ndarray
        Integer label array of any shape.

    Returns
    -------
    numpy.dtype or type
        :func:`dtype_for_max` of the largest value (``numpy.uint8`` for an
        empty array); ``layers.dtype`` itself when a value is negative.
    """
    if layers.size == 0:
        return np.uint8
    vmin = int(layers.min())
    if vmin < 0:
        return layers.dtype
    return dtype_for_max(int(layers.max()))


def check_unique_names(segments: Sequence[Segment], source: str, hint: str = "") -> None:
    """Refuse segments whose names are equal ignoring case.

    Parameters
    ----------
    segments : sequence of Segment
        The segments of one file.
    source : str
        File name used in the message.
    hint : str
        Likely cause appended to the message in parentheses; nothing when
        empty.

    Raises
    ------
    InputError
        Two segments have the same name, compared case-insensitively
        (``"MF_L"`` and ``"mf_l"`` clash), so that a muscle maps to exactly
        one segment.
    """
    seen: Dict[str, Segment] = {}
    for s in segments:
        key = s.name.lower()
        if key in seen:
            other = seen[key]
            raise InputError(
                f"{source}: segment name '{s.name}' is used twice (layer {other.layer} value "
                f"{other.label_value} and layer {s.layer} value {s.label_value}); names must be "
                f"unique so that a muscle maps to exactly one segment"
                f"{' (' + hint + ')' if hint else ''}. Rename one of them."
            )
        seen[key] = s

"""Gather the voxels of all ROIs in one pass per segmentation layer.

The non-zero voxels of each layer are found once
(:meth:`Segmentation.labelled_voxels`, restricted to the labels' bounding box)
and mapped to ROI numbers through a lookup table, so the cost does not grow
with the number of ROIs.  Masks touching the image border are kept as they are.
Only the gathered voxels of an integer image are converted to float64 (the image
itself keeps its own type; no whole-volume copy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple
import numpy as np
from ..segmentation import LabelledVoxels, Segmentation


__all__ = ['RoiVoxels', 'gather_roi_voxels']

@dataclass
class RoiVoxels:
    """Voxels of all ROIs: parallel arrays, one entry per (ROI, voxel).

    Attributes
    ----------
    roi : numpy.ndarray of int32 (intp when ROIs x slices reach 2**31)
        ROI number (index into the caller's ROI list).
    slice_index : numpy.ndarray of int32 (intp for a layer box of 2**31 voxels or more)
        Index of the voxel along the slice axis.
    raw : numpy.ndarray
        Image value in the image's units and its own type (not rescaled).
        :attr:`value` and :meth:`values_at` give them in floating point.
    n_rois, n_slices : int
        Sizes of the ROI and slice ranges.
    water : numpy.ndarray or None
        Second image's values at the same voxels (Dixon water), if gathered.
    class_value, class_water : numpy.ndarray or None
        The values the voxels are *classified* by (fat/lean/undefined, and the
        classifier's thresholds), when they are not :attr:`value` /
        :attr:`water`: for pixels of an oblique plane, their nearest image
        voxel's values (:mod:`.planes`), because interpolation would average
        fat and lean voxels and shift their classes.  None: :attr:`value`.
    """

    roi: np.ndarray
    slice_index: np.ndarray
    raw: np.ndarray
    n_rois: int
    n_slices: int
    water: Optional[np.ndarray] = None
    parts: List[Tuple[LabelledVoxels, Optional[np.ndarray]]] = field(default_factory=list, repr=False)
    class_value: Optional[np.ndarray] = None
    class_water: Optional[np.ndarray] = None
    _value: Optional[np.ndarray] = field(default=None, init=False, repr=False, compare=False)

    @property
    def value(self) -> np.ndarray:
        """Every voxel's value in floating point: a float image's values as they are, an integer
        image's converted to float64 (on first use, once), so that statistics are computed in
        floating point."""
        if self._value is None:
            self._value = _real(self.raw)
        return self._value

    def values_at(self, select: Optional[np.ndarray]) -> np.ndarray:
        """:attr:`value` of the selected voxels (a mask or indices; None: all), converting only those.

        The per-level table reads a few slices of every ROI: an integer image's millions of
        other gathered voxels (a CT's whole muscles) are never converted.
        """
        if select is None or self._value is not None:
            return self.value if select is None else self.value[select]
        return _real(self.raw[select])

    def positions(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(k, j, i)`` array indices of every gathered voxel (computed on demand)."""
        if not self.parts:
            empty = np.zeros(0, np.intp)
            return empty, empty, empty
        return tuple(np.concatenate([found.index(axis, sel) for found, sel in self.parts]) for axis in range(3))

    def counts_per_slice(self) -> np.ndarray:
        """Voxel count per (ROI, slice) as an ``(n_rois, n_slices)`` array.

        Counted in slabs of 2**18 voxels: the ROI x slice keys of a slab are
        small, reused temporaries (whole-array keys cost fresh memory of 8
        bytes per voxel, and its page faults, on every call).
        """
        bins, slab = self.n_rois * self.n_slices, 1 << 18
        counts = np.zeros(bins, np.intp)
        for first in range(0, int(self.roi.size), slab):
            key = self.roi[first:first + slab].astype(np.intp)
            key *= self.n_slices
            key += self.slice_index[first:first + slab]
            counts += np.bincount(key, minlength=bins)
        return counts.reshape(self.n_rois, self.n_slices)


def gather_roi_voxels(
    image: np.ndarray,
    segmentation: Segmentation,
    roi_keys: Sequence[Tuple[int, int]],
    slice_axis: int,
    water: Optional[np.ndarray] = None,
) -> RoiVoxels:
    """Collect every voxel of every ROI.

    Parameters
    ----------
    image : numpy.ndarray
        Intensity array ``[k, j, i]`` in its own type (an integer image is not
        converted as a whole: only its gathered voxels become float64).
    segmentation : Segmentation
        Label layers on the same grid as ``image``.
    roi_keys : sequence of (layer, label_value)
        The ROIs, in output order; ROI number = position in this list.
    slice_axis : int
        ITK axis (0 = i, 1 = j, 2 = k) along which slices are counted.
    water : numpy.ndarray, optional
        A second image on the same grid gathered at the same voxels (Dixon).

    Returns
    -------
    RoiVoxels
    """
    if image.shape != segmentation.layers.shape[1:]:
        raise ValueError(f"image shape {image.shape} != segmentation shape {segmentation.layers.shape[1:]}")
    n_slices = image.shape[2 - slice_axis]
    # ROI numbers as int32 while ROI x slice keys (roi * n_slices + slice) fit: half the memory of intp
    roi_type = np.int32 if (len(roi_keys) + 1) * n_slices < 2 ** 31 else np.intp
    by_layer: Dict[int, Dict[int, int]] = {}
    for number, (layer, value) in enumerate(roi_keys):
        by_layer.setdefault(int(layer), {})[int(value)] = number
    rois, slices, values, waters, parts = [], [], [], [], []
    for layer, mapping in by_layer.items():
        found = segmentation.labelled_voxels(layer)
        if found.flat.size == 0:
            continue
        # ROI numbers per run of one label along a row (LabelledVoxels.runs), then per voxel: a
        # lookup sized to the labels present (a label value of 2**31 costs nothing), made per run
        runs = found.runs
        run_roi = found.run_numbers(mapping, missing=-1, dtype=roi_type)
        kept = run_roi >= 0
        every = bool(kept.all())
        length = runs.length if every else runs.length[kept]
        select = None if every else np.repeat(kept, runs.length)
        rois.append(np.repeat(run_roi if every else run_roi[kept], length))
        slices.append(_slice_index(found, runs, None if every else kept, length, 2 - slice_axis, select))
        values.append(found.take(image, select))
        parts.append((found, select))
        if water is not None:
            waters.append(_real(found.take(water, select)))
    if rois:
        return RoiVoxels(_joined(rois), _joined(slices), _joined(values), len(roi_keys),
                         n_slices, _joined(waters) if water is not None else None, parts)
    empty = np.zeros(0, roi_type)
    return RoiVoxels(empty, empty, np.zeros(0, image.dtype), len(roi_keys), n_slices,
                     _real(np.zeros(0, water.dtype)) if water is not None else None)


def _slice_index(found: LabelledVoxels, runs, kept: Optional[np.ndarray], length: np.ndarray, axis: int,
                 select: Optional[np.ndarray]) -> np.ndarray:
    """:meth:`LabelledVoxels.index` of the kept voxels along numpy ``axis``: from the runs for k and j
    (constant along a run), else per voxel."""
    if axis == 2:
        return found.index(axis, select)
    per_run = runs.k if axis == 0 else runs.j
    per_run = (per_run if kept is None else per_run[kept]) + found.start[axis]
    return np.repeat(per_run.astype(found.flat.dtype), length)


def _joined(parts: List[np.ndarray]) -> np.ndarray:
    """The layers' arrays as one; a single layer's array as it is (a copy would double the peak memory)."""
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _real(values: np.ndarray) -> np.ndarray:
    """Gathered values of a floating-point image as they are; of any other (integer) image as float64."""
    return values if np.issubdtype(values.dtype, np.floating) else values.astype(np.float64)

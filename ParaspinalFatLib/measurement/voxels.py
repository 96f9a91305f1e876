"""Gather the voxels of all ROIs in one pass per segmentation layer.

The non-zero voxels of each layer are found once
(:meth:`Segmentation.labelled_voxels`, restricted to the labels' bounding box)
and mapped to ROI numbers through a lookup table, so the cost does not grow
with the number of ROIs.  Masks touching the image border are kept as they are.
Only the gathered voxels of an integer image are converted to float64 (the image
itself keeps its own type; no whole-volume copy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple
import numpy as np
from ..segmentation import LabelledVoxels, Segmentation, offsets_within_runs


__all__ = ['RoiVoxels', 'gather_roi_voxels']

class RoiVoxels:
    """Voxels of all ROIs: parallel arrays, one entry per (ROI, voxel).

    Gathered from a segmentation (:func:`gather_roi_voxels`), the arrays are made from the
    layers' runs on first use only: the per-level table reads the voxels of a few slices
    (:meth:`subset`) and the plan their counts (:meth:`counts_per_slice`), neither of
    which needs every voxel of the whole muscles.

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

    def __init__(self, roi: np.ndarray, slice_index: np.ndarray, raw: np.ndarray, n_rois: int, n_slices: int,
                 water: Optional[np.ndarray] = None, parts: Optional[List[Tuple[LabelledVoxels, Optional[np.ndarray]]]] = None,
                 class_value: Optional[np.ndarray] = None, class_water: Optional[np.ndarray] = None) -> None:
        self.n_rois, self.n_slices = int(n_rois), int(n_slices)
        self.class_value, self.class_water = class_value, class_water
        self._roi, self._slice_index, self._raw, self._water = roi, slice_index, raw, water
        self._parts = parts if parts is not None else []
        self._value: Optional[np.ndarray] = None
        self._layers: List["_LayerRuns"] = []  # the source of arrays not yet made (gathered voxels)
        self._images: Tuple[Optional[np.ndarray], Optional[np.ndarray]] = (None, None)
        self._axis = 0

    @classmethod
    def _from_runs(cls, layers: List["_LayerRuns"], image: np.ndarray, water: Optional[np.ndarray], n_rois: int,
                   n_slices: int, axis: int) -> "RoiVoxels":
        """Voxels whose arrays are made from the layers' runs when first read."""
        vox = cls(None, None, None, n_rois, n_slices)
        vox._layers, vox._images, vox._axis = layers, (image, water), axis
        return vox

    # ----------------------------------------------------------------- the arrays, made on first use
    @property
    def roi(self) -> np.ndarray:
        """ROI number of every voxel (see the class docstring; made on first use)."""
        if self._roi is None:
            self._roi = _joined([np.repeat(layer.roi, layer.length) for layer in self._layers])
        return self._roi

    @property
    def slice_index(self) -> np.ndarray:
        """Index of every voxel along the slice axis (made on first use)."""
        if self._slice_index is None:
            self._slice_index = _joined([layer.slice_index(self._axis) for layer in self._layers])
        return self._slice_index

    @property
    def raw(self) -> np.ndarray:
        """Image value of every voxel in the image's own type (gathered on first use)."""
        if self._raw is None:
            self._raw = _joined([layer.found.take(self._images[0], layer.select) for layer in self._layers])
        return self._raw

    @property
    def water(self) -> Optional[np.ndarray]:
        """Second image's value of every voxel (Dixon water) or None (gathered on first use)."""
        if self._water is None and self._layers and self._images[1] is not None:
            self._water = _joined([_real(layer.found.take(self._images[1], layer.select))
                                   for layer in self._layers])
        return self._water

    @property
    def parts(self) -> List[Tuple[LabelledVoxels, Optional[np.ndarray]]]:
        """Per layer, its :class:`LabelledVoxels` and which of them are gathered (None: all)."""
        if not self._parts and self._layers:
            self._parts = [(layer.found, layer.select) for layer in self._layers]
        return self._parts

    @property
    def _across_rows(self) -> bool:
        """The arrays are not made yet and slices cut across the rows (slice axis k or j): each run
        lies on one slice, so counts and the voxels of some slices follow from the runs."""
        return self._roi is None and bool(self._layers) and self._axis != 2

    @property
    def size(self) -> int:
        """Number of gathered voxels (without making the arrays)."""
        if self._roi is None and self._layers:
            return int(sum(int(layer.length.sum()) for layer in self._layers))
        return int(self.roi.size)

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

        From the runs when the slices cut across the rows (slice axis k or j: a run lies on one
        slice); else counted in slabs of 2**18 voxels: the ROI x slice keys of a slab are
        small, reused temporaries (whole-array keys cost fresh memory of 8 bytes per voxel,
        and its page faults, on every call).
        """
        bins, slab = self.n_rois * self.n_slices, 1 << 18
        counts = np.zeros(bins, np.intp)
        if self._across_rows:
            for layer in self._layers:
                key = layer.roi.astype(np.intp) * self.n_slices + layer.run_slice(self._axis)
                counts += np.bincount(key, weights=layer.length, minlength=bins).astype(np.intp)  # exact: < 2**53
            return counts.reshape(self.n_rois, self.n_slices)
        for first in range(0, int(self.roi.size), slab):
            key = self.roi[first:first + slab].astype(np.intp)
            key *= self.n_slices
            key += self.slice_index[first:first + slab]
            counts += np.bincount(key, minlength=bins)
        return counts.reshape(self.n_rois, self.n_slices)

    def subset(self, on_slice: np.ndarray) -> Tuple["RoiVoxels", np.ndarray]:
        """The voxels lying on some slices, and where they are in the whole.

        Parameters
        ----------
        on_slice : numpy.ndarray of bool
            One flag per slice (``n_slices``).

        Returns
        -------
        (RoiVoxels, numpy.ndarray of intp)
            The voxels on a flagged slice (their ROI numbers, slice indices, raw, water and
            class values, in the order they have here) and their indices here.  Gathered
            voxels whose arrays are not made yet are taken run by run from the image (a
            few slices of the muscles, not every voxel of them).
        """
        if self._across_rows:
            return self._subset_of_runs(on_slice)
        at = np.flatnonzero(on_slice[self.slice_index])

        def cut(values):
            return None if values is None else values[at]

        sub = RoiVoxels(self.roi[at], self.slice_index[at], self.raw[at], self.n_rois, self.n_slices, cut(self.water),
                        class_value=cut(self.class_value), class_water=cut(self.class_water))
        return sub, at

    def _subset_of_runs(self, on_slice: np.ndarray) -> Tuple["RoiVoxels", np.ndarray]:
        rois, slices, raws, waters, where = [], [], [], [], []
        image, water = self._images
        offset = 0  # voxels of the layers before this one
        for layer in self._layers:
            run_slice = layer.run_slice(self._axis)
            pick = np.flatnonzero(on_slice[run_slice])
            length = layer.length[pick]
            first = (np.cumsum(layer.length) - layer.length)[pick] + offset  # index of its first voxel here
            offset += int(layer.length.sum())
            # voxel t of a picked run: index first + t here, image voxel start + t (a run follows i)
            within = offsets_within_runs(length)
            where.append(np.repeat(first, length) + within)
            rois.append(np.repeat(layer.roi[pick], length))
            slices.append(np.repeat(run_slice[pick].astype(layer.found.index_type), length))
            at_image = np.repeat(layer.image_start(image.shape)[pick], length) + within
            raws.append(_take_flat(image, at_image))
            if water is not None:
                waters.append(_real(_take_flat(water, at_image)))
        sub = RoiVoxels(_joined(rois), _joined(slices), _joined(raws), self.n_rois, self.n_slices,
                        _joined(waters) if water is not None else None)
        return sub, _joined(where)


@dataclass
class _LayerRuns:
    """The gathered runs of one layer (the ROIs' runs among :attr:`LabelledVoxels.runs`)."""

    found: LabelledVoxels
    kept: Optional[np.ndarray]  # which runs belong to an ROI (None: all)
    roi: np.ndarray  # ROI number of each kept run
    length: np.ndarray  # its voxel count

    @property
    def select(self) -> Optional[np.ndarray]:
        """Which of the layer's voxels are gathered (a mask; None: all)."""
        return None if self.kept is None else np.repeat(self.kept, self.found.runs.length)

    def _runs_field(self, name: str) -> np.ndarray:
        values = getattr(self.found.runs, name)
        return values if self.kept is None else values[self.kept]

    def run_slice(self, axis: int) -> np.ndarray:
        """Index (int64) of each kept run along numpy ``axis`` 0 (k) or 1 (j) of the layer: a run lies
        on one slice across the rows."""
        return self._runs_field("k" if axis == 0 else "j") + self.found.start[axis]

    def slice_index(self, axis: int) -> np.ndarray:
        """:meth:`LabelledVoxels.index` of the gathered voxels along numpy ``axis``: from the runs for
        k and j (constant along a run), else per voxel."""
        if axis == 2:
            return self.found.index(2, self.select)
        return np.repeat(self.run_slice(axis).astype(self.found.index_type), self.length)

    def image_start(self, shape: Tuple[int, int, int]) -> np.ndarray:
        """C-order index in an array of ``shape`` (the layer's) of each kept run's first voxel."""
        k0, j0, i0 = self.found.start
        k, j, i = (self._runs_field(name) for name in ("k", "j", "first_i"))
        return ((k + k0) * shape[1] + (j + j0)) * shape[2] + (i + i0)


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
    layers = []
    for layer, mapping in by_layer.items():
        found = segmentation.labelled_voxels(layer)
        if found.size == 0:
            continue
        # ROI numbers per run of one label along a row (LabelledVoxels.runs): a lookup sized to the
        # labels present (a label value of 2**31 costs nothing), made per run, not per voxel
        run_roi = found.run_numbers(mapping, missing=-1, dtype=roi_type)
        kept = run_roi >= 0
        if kept.all():
            kept, length = None, found.runs.length
        else:
            run_roi, length = run_roi[kept], found.runs.length[kept]
        layers.append(_LayerRuns(found, kept, run_roi, length))
    if layers:
        return RoiVoxels._from_runs(layers, image, water, len(roi_keys), n_slices, 2 - slice_axis)
    empty = np.zeros(0, roi_type)
    return RoiVoxels(empty, empty, np.zeros(0, image.dtype), len(roi_keys), n_slices,
                     _real(np.zeros(0, water.dtype)) if water is not None else None)


def _joined(parts: List[np.ndarray]) -> np.ndarray:
    """The layers' arrays as one; a single layer's array as it is (a copy would double the peak memory)."""
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _take_flat(array: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Values of ``array`` at C-order indices (of its shape), in its own type."""
    if array.flags.c_contiguous:
        return array.reshape(-1)[index]
    return array[np.unravel_index(index, array.shape)]


def _real(values: np.ndarray) -> np.ndarray:
    """Gathered values of a floating-point image as they are; of any other (integer) image as float64."""
    return values if np.issubdtype(values.dtype, np.floating) else values.astype(np.float64)

"""In-memory labelled segmentation: layers of label values plus segment metadata.

A :class:`Segmentation` is what every reader returns (Slicer ``.seg.nrrd``,
labelmap + names, TotalSegmentator NIfTI, DICOM SEG) and what the measurement
code consumes.  Overlapping segments live in different *layers* (as in Slicer's
4-D ``.seg.nrrd``): a segment is identified by ``(layer, label_value)``, never
by the label value alone.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Tuple

import numpy as np

from .errors import InputError
from .geometry import Geometry

__all__ = ["Segment", "Segmentation", "LabelledVoxels", "LabelRuns", "map_label_values", "offsets_within_runs"]


@dataclass(frozen=True)
class Segment:
    """One named segment.

    Attributes
    ----------
    name : str
        Display name as written by the tool (e.g. ``"MF_L_L4/5"``,
        ``"autochthon_left"``).
    layer : int
        0-based layer index in :attr:`Segmentation.layers`.
    label_value : int
        Voxel value of this segment within its layer (> 0).
    segment_id : str
        Tool's identifier (Slicer ``SegmentN_ID``; label value as text otherwise).
    color : tuple of float or None
        RGB in 0..1 when known.
    """

    name: str
    layer: int
    label_value: int
    segment_id: str = ""
    color: Optional[Tuple[float, float, float]] = None


@dataclass
class Segmentation:
    """Layers of integer labels on one voxel grid, with their segments.

    Attributes
    ----------
    layers : numpy.ndarray
        Integer array of shape ``(n_layers, k, j, i)`` (numpy order of
        :attr:`geometry`); 0 means background.
    geometry : Geometry
        Grid of ``layers`` (may be cropped/offset relative to the image).
    segments : list of Segment
        Segment metadata; ``(layer, label_value)`` pairs are unique.
    source : str
        File path or description, used in error messages.
    """

    layers: np.ndarray
    geometry: Geometry
    segments: List[Segment]
    source: str = "<memory>"
    metadata: Dict[str, str] = field(default_factory=dict)
    _nonzero: Dict[int, "LabelledVoxels"] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self):
        if self.layers.ndim == 3:
            self.layers = self.layers[np.newaxis]
        if self.layers.ndim != 4:
            raise InputError(
                f"{self.source}: segmentation layers must be 3-D or 4-D, got shape {self.layers.shape}"
            )
        if tuple(self.layers.shape[1:]) != tuple(self.geometry.shape):
            raise InputError(
                f"{self.source}: layer array shape {self.layers.shape[1:]} does not match the "
                f"geometry (k, j, i) = {self.geometry.shape}"
            )
        if not np.issubdtype(self.layers.dtype, np.integer):
            raise InputError(
                f"{self.source}: segmentation voxels must be integer labels, got {self.layers.dtype}"
            )
        if np.issubdtype(self.layers.dtype, np.signedinteger) and self.layers.size and self.layers.min() < 0:
            raise InputError(
                f"{self.source}: segmentation has negative label values ({int(self.layers.min())}); set "
                f"them to 0 (background) or give them a positive label and a segment"
            )
        seen = set()
        for seg in self.segments:
            key = (seg.layer, seg.label_value)
            if key in seen:
                raise InputError(
                    f"{self.source}: two segments share layer {seg.layer} label {seg.label_value}"
                )
            if not 0 <= seg.layer < self.layers.shape[0]:
                raise InputError(
                    f"{self.source}: segment '{seg.name}' refers to layer {seg.layer} but the "
                    f"file has {self.layers.shape[0]} layer(s)"
                )
            seen.add(key)

    @property
    def n_layers(self) -> int:
        """Number of layers."""
        return int(self.layers.shape[0])

    def names(self) -> List[str]:
        """Segment names in file order."""
        return [s.name for s in self.segments]

    def segment(self, name: str) -> Segment:
        """The segment called ``name`` (exact match, then case-insensitive)."""
        for s in self.segments:
            if s.name == name:
                return s
        for s in self.segments:
            if s.name.lower() == name.lower():
                return s
        raise InputError(
            f"{self.source}: no segment named '{name}'; segments are: {self.names()}"
        )

    def mask(self, segment) -> np.ndarray:
        """Boolean ``(k, j, i)`` mask of a :class:`Segment` or segment name."""
        if isinstance(segment, str):
            segment = self.segment(segment)
        return self.layers[segment.layer] == segment.label_value

    def labelled_voxels(self, layer: int) -> "LabelledVoxels":
        """Every non-zero voxel of ``layer``: its label and position.

        Computed once per layer and cached: the gathering of ROI voxels and the
        centroids of vertebra/disc masks share this single pass.  The search is
        restricted to the bounding box of the labels (cheap boolean projections).
        Do not modify :attr:`layers` in place after calling this.
        """
        cached = self._nonzero.get(layer)
        if cached is None:
            cached = LabelledVoxels.from_layer(self.layers[layer])
            self._nonzero[layer] = cached
        return cached

    def adopt_labelled_voxels(self, layer: int, found: "LabelledVoxels") -> None:
        """Use a pass over ``layer`` already made (by a reader) as its :meth:`labelled_voxels` cache.

        Parameters
        ----------
        layer : int
            Layer index.
        found : LabelledVoxels
            :meth:`LabelledVoxels.from_layer` of exactly ``self.layers[layer]`` (same values;
            a widened integer type is fine).

        Raises
        ------
        ValueError
            ``found`` does not fit the layer's shape or voxel count.
        """
        shape = tuple(self.layers.shape[1:])
        end = tuple(a + n for a, n in zip(found.start, found.box_shape))
        if found.size and (len(end) != 3 or any(e > n for e, n in zip(end, shape))):
            raise ValueError(f"labelled voxels with box {found.start}..{end} do not fit layer shape {shape}")
        self._nonzero[layer] = found

    def with_layers(self, layers: np.ndarray, geometry: Geometry) -> "Segmentation":
        """Copy with new layer data on a new grid (same segments)."""
        return replace(self, layers=layers, geometry=geometry)


@dataclass(frozen=True)
class LabelledVoxels:
    """The non-zero voxels of one label layer, found inside its bounding box, as runs.

    The voxels are found as :class:`LabelRuns` (stretches of one label along a row of the
    box): one comparison of neighbouring voxels per slab, no index of every voxel.  Label
    counts, centroids and the voxels of a few slices follow from the runs; the per-voxel
    :attr:`flat` indices and :attr:`labels` are expanded from them on first use only.

    Attributes
    ----------
    start : tuple of 3 int
        ``(k0, j0, i0)`` corner of the bounding box in the layer array.
    box_shape : tuple of 3 int
        Shape of the bounding box.
    runs : LabelRuns
        The voxels as runs of one label along the rows of the box, in C order.
    index_type : numpy.dtype
        Integer type of :attr:`flat`: int32 for a box of fewer than 2**31 voxels (half the
        memory of the largest array a measurement holds besides the image), else intp.
    flat : numpy.ndarray of ``index_type``
        C-order indices of the voxels *within the box* (computed on first use).
    labels : numpy.ndarray
        Their label values, in the layer's type (computed on first use).
    """

    start: Tuple[int, int, int]
    box_shape: Tuple[int, int, int]
    runs: "LabelRuns"
    index_type: np.dtype

    @classmethod
    def from_layer(cls, lab: np.ndarray) -> "LabelledVoxels":
        """Find the non-zero voxels of a ``(k, j, i)`` label array."""
        if lab.dtype.kind == "u" and lab.flags.c_contiguous and lab.size and lab[0].nbytes >= 1 << 16:
            ks, plane = _slices_and_plane(lab)  # large slices: one pass, slice by slice
        elif lab.dtype.kind == "u" and lab.flags.c_contiguous:
            ks = np.flatnonzero(lab.reshape(lab.shape[0], -1).max(axis=1, initial=0))
            plane = lab[ks[0]:ks[-1] + 1].max(axis=0) if ks.size else None
        else:
            ks = np.flatnonzero(lab.any(axis=(1, 2)))
            plane = lab[ks[0]:ks[-1] + 1].any(axis=0) if ks.size else None
        if ks.size == 0:
            return cls((0, 0, 0), (0, 0, 0), LabelRuns.empty(lab.dtype), np.dtype(np.intp))
        k0, k1 = int(ks[0]), int(ks[-1]) + 1
        sub = lab[k0:k1]
        # the j and i extents follow from the 2-D map of the labelled pixels of all slices
        js = np.flatnonzero(plane.any(axis=1))
        is_ = np.flatnonzero(plane.any(axis=0))
        j0, j1, i0, i1 = int(js[0]), int(js[-1]) + 1, int(is_[0]), int(is_[-1]) + 1
        box = sub[:, j0:j1, i0:i1]
        index_type = np.dtype(np.int32 if box.size < _INT32_LIMIT else np.intp)
        return cls((k0, j0, i0), box.shape, _runs_of_box(box), index_type)

    @functools.cached_property
    def size(self) -> int:
        """Number of labelled voxels."""
        return int(self.runs.length.sum())

    @functools.cached_property
    def flat(self) -> np.ndarray:
        """C-order indices of the voxels within the box (expanded from the runs, once)."""
        runs = self.runs
        if self.size == 0:
            return np.zeros(0, self.index_type)
        nj, ni = self.box_shape[1], self.box_shape[2]
        # voxel t of a run lies at the run's first index + t, and is voxel first + t of the list
        offset = (runs.k * nj + runs.j) * ni + runs.first_i - runs.first
        flat = np.repeat(offset.astype(self.index_type), runs.length)
        flat += np.arange(self.size, dtype=self.index_type)
        return flat

    @functools.cached_property
    def labels(self) -> np.ndarray:
        """Label value of every voxel of :attr:`flat` (expanded from the runs, once)."""
        return np.repeat(self.runs.label, self.runs.length)

    def value_counts(self) -> Dict[int, int]:
        """{label value: voxel count} of the non-zero voxels, in increasing value order.

        Returns
        -------
        dict of int to int
            The same as :func:`ParaspinalFatLib.io.label_layers.present_values` of the layer,
            from this pass's labels only (no second pass over the volume).
        """
        runs = self.runs  # counted per run (exact integer sums): no 8-byte copy of every label
        if runs.label.size == 0:
            return {}
        if runs.label.dtype.itemsize <= 2 and np.issubdtype(runs.label.dtype, np.unsignedinteger):
            counts = np.bincount(runs.label, weights=runs.length, minlength=1)
            values = np.flatnonzero(counts)
            return dict(zip(values.tolist(), counts[values].astype(np.int64).tolist()))
        values, inverse = np.unique(runs.label, return_inverse=True)
        counts = np.bincount(inverse.ravel(), weights=runs.length, minlength=values.size)
        return dict(zip(values.tolist(), counts.astype(np.int64).tolist()))

    def run_numbers(self, mapping: Dict[int, int], missing: int = 0, dtype=np.intp) -> np.ndarray:
        """Number of every run's label in ``mapping`` (``missing`` for other labels); see :meth:`map_labels`."""
        return map_label_values(self.runs.label, mapping, missing, dtype=dtype)

    def label_sums(self, numbers: np.ndarray, n: int, second: bool = False) -> Dict[str, np.ndarray]:
        """Voxel counts and sums of box indices per label number, exactly, from the runs.

        Parameters
        ----------
        numbers : numpy.ndarray of int
            Number ``0 .. n`` of every run (:meth:`run_numbers`; 0 for labels not asked for).
        n : int
            Largest number.
        second : bool
            Also the sums of the products of the indices.

        Returns
        -------
        dict of numpy.ndarray of float64, each of length ``n + 1``
            ``count``; ``k``, ``j``, ``i`` (sums of the box indices); with ``second``
            ``kk``, ``jj``, ``ii``, ``kj``, ``ki``, ``ji``.  Every sum is of integers and
            is exact (the closed forms over each run are summed in float64 well below
            2**53), so it equals a sum over the voxels in any order.  Entry 0 is 0:
            the runs numbered 0 (labels not asked for) are not summed.
        """
        runs = self.runs
        size = n + 1
        length, k, j, i0 = runs.length, runs.k, runs.j, runs.first_i
        numbered = np.flatnonzero(numbers)
        if numbered.size < numbers.size:  # e.g. 4 vertebrae among many muscles: sum only their runs
            length, k, j, i0, numbers = (a[numbered] for a in (length, k, j, i0, numbers))
        tri = length * (length - 1) // 2  # 0 + 1 + ... + (L - 1)
        run_i = length * i0 + tri  # sum of i over the run

        def total(weights):
            return np.bincount(numbers, weights=weights.astype(np.float64), minlength=size)

        out = {"count": total(length), "k": total(length * k), "j": total(length * j), "i": total(run_i)}
        if second:
            squares = (length - 1) * length * (2 * length - 1) // 6  # 0 + 1 + 4 + ... + (L - 1)**2
            out.update(kk=total(length * k * k), jj=total(length * j * j), kj=total(length * k * j),
                       ki=total(k * run_i), ji=total(j * run_i),
                       ii=total(length * i0 * i0 + 2 * i0 * tri + squares))
        return out

    @property
    def box(self) -> Tuple[slice, slice, slice]:
        """Slices of the bounding box in the layer array."""
        return tuple(slice(a, a + n) for a, n in zip(self.start, self.box_shape))

    def map_labels(self, mapping: Dict[int, int], missing: int = -1, dtype=np.intp) -> np.ndarray:
        """Number of every voxel's label in ``mapping`` (``missing`` for other labels).

        The lookup is sized to the labels present, never to the largest label
        value: a label near 2**31 (or any uint32/uint64 value) costs no more
        memory than label 1.  See :func:`map_label_values`.

        Parameters
        ----------
        mapping : dict of int to int
            Label value -> number (e.g. the ROI number).
        missing : int
            Number given to voxels whose label is not in ``mapping``.
        dtype : numpy dtype
            Integer type of the result (wide enough for the numbers).

        Returns
        -------
        numpy.ndarray of ``dtype``
            One number per voxel, parallel to :attr:`labels`.
        """
        return map_label_values(self.labels, mapping, missing, dtype=dtype)

    def take(self, array: np.ndarray, select: Optional[np.ndarray] = None) -> np.ndarray:
        """Values of ``array`` (same shape as the layer) at the voxels (or a selection)."""
        flat = self.flat if select is None else self.flat[select]
        box = array[self.box]
        nk, nj, ni = self.box_shape
        plane = nj * ni
        # slab by slab (about 2**20 voxels): no copy of the whole box, no whole intp copy of the indices
        step = max(1, (1 << 20) // max(plane, 1))
        out = np.empty(flat.size, dtype=array.dtype)
        lo = 0
        for k in range(0, nk, step):
            end = min(k + step, nk) * plane
            hi = int(np.searchsorted(flat, flat.dtype.type(end)))  # end <= box size: fits the indices' type
            if hi > lo:
                part = np.ascontiguousarray(box[k:k + step]).ravel()
                out[lo:hi] = part[flat[lo:hi] - flat.dtype.type(k * plane)]
            lo = hi
        return out

    def index(self, axis: int, select: Optional[np.ndarray] = None) -> np.ndarray:
        """Index along numpy ``axis`` (0 = k, 1 = j, 2 = i) in the layer array (in the type of :attr:`flat`)."""
        nk, nj, ni = self.box_shape
        if axis == 0:
            # flat indices are sorted (C order): slice k is a contiguous run
            bounds = np.searchsorted(self.flat, np.arange(nk + 1, dtype=self.flat.dtype) * (nj * ni))
            first = self.start[0]
            index = np.repeat(np.arange(first, first + nk, dtype=self.flat.dtype), np.diff(bounds))
            return index if select is None else index[select]
        flat = self.flat if select is None else self.flat[select]
        if axis == 1:
            index = flat // ni
            index %= nj
        else:
            index = flat % ni
        index += self.flat.dtype.type(self.start[axis])  # in place: no second array of every voxel
        return index


@dataclass(frozen=True)
class LabelRuns:
    """The labelled voxels of a box as runs: stretches of one label along one row (fixed k and j).

    Attributes (one entry per run, in the voxels' C order)
    ----------
    first : numpy.ndarray of intp
        Index of the run's first voxel in :attr:`LabelledVoxels.flat` / ``labels``.
    length : numpy.ndarray of int64
        Number of voxels.
    label : numpy.ndarray
        Label value (the labels' type).
    k, j : numpy.ndarray of int64
        The run's slice and row in the box.
    first_i : numpy.ndarray of int64
        ``i`` of the first voxel in the box (the run covers ``first_i .. first_i + length - 1``).
    """

    first: np.ndarray
    length: np.ndarray
    label: np.ndarray
    k: np.ndarray
    j: np.ndarray
    first_i: np.ndarray

    @classmethod
    def empty(cls, label_type) -> "LabelRuns":
        """No runs (labels of type ``label_type``)."""
        none = np.zeros(0, np.int64)
        return cls(np.zeros(0, np.intp), none, np.zeros(0, label_type), none, none, none)


def _slices_and_plane(lab: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The slices of an unsigned C-contiguous ``(k, j, i)`` label array that hold labels, and the
    largest label of every ``(j, i)`` over all slices, in one pass over the array.

    Slice by slice: its largest label (numpy's max of unsigned values is several times faster than
    any()), then, while the slice is still in the cache, the running maximum of the labelled slices
    (two passes over the whole array read it from memory twice).
    """
    nk = lab.shape[0]
    flat = lab.reshape(nk, -1)
    top = np.zeros(nk, lab.dtype)
    plane = np.zeros(flat.shape[1], lab.dtype)
    for k in range(nk):
        top[k] = flat[k].max()
        if top[k]:
            np.maximum(plane, flat[k], out=plane)
    return np.flatnonzero(top), plane.reshape(lab.shape[1:])


def _runs_of_box(box: np.ndarray) -> LabelRuns:
    """The runs of one non-zero label along the rows of a ``(k, j, i)`` box (see :class:`LabelRuns`).

    Slab by slab (about 2**20 voxels, copied to C order: small, reused temporaries), every
    voxel is compared with its row neighbour; a stretch ends where the label changes and at
    the end of each row, and the stretches of label 0 are dropped.
    """
    nk, nj, ni = box.shape
    plane = nj * ni
    step = max(1, (1 << 20) // max(plane, 1))
    begins, labels, lengths = [], [], []
    for k in range(0, nk, step):
        part = np.ascontiguousarray(box[k:k + step]).reshape(-1)
        change = part[1:] != part[:-1]
        change[ni - 1::ni] = True  # a run never continues into the next row
        cut = np.flatnonzero(change)
        begin = np.empty(cut.size + 1, np.int64)  # first voxel of every stretch, labelled or not
        begin[0] = 0
        np.add(cut, 1, out=begin[1:])
        label = part[begin]
        keep = label != 0
        lengths.append(np.diff(begin, append=part.size)[keep])
        begin = begin[keep]
        begin += k * plane
        begins.append(begin)
        labels.append(label[keep])
    start = np.concatenate(begins)
    if start.size == 0:
        return LabelRuns.empty(box.dtype)
    length = np.concatenate(lengths)
    first = np.zeros(start.size, np.intp)  # index of the run's first voxel in the voxel list
    np.cumsum(length[:-1], out=first[1:])
    row = start // ni
    k = row // nj
    return LabelRuns(first, length, np.concatenate(labels), k, row - k * nj, start - row * ni)


def offsets_within_runs(length: np.ndarray) -> np.ndarray:
    """``0, 1, ..., L - 1`` for every run of ``L`` voxels, one after the other (intp).

    Parameters
    ----------
    length : numpy.ndarray of int
        Voxels of each run (or of each slice window), >= 0.

    Returns
    -------
    numpy.ndarray of intp
        One entry per voxel: its position within its run.
    """
    length = np.asarray(length, dtype=np.intp)
    return np.arange(int(length.sum()), dtype=np.intp) - np.repeat(np.cumsum(length) - length, length)


#: Largest label value looked up through a direct table (8 bytes per entry: 8 MiB).
_DIRECT_LOOKUP_MAX = 1 << 20
#: boxes with fewer voxels than this index them as int32
_INT32_LIMIT = 1 << 31


def map_label_values(labels: np.ndarray, mapping: Dict[int, int], missing: int = -1, dtype=np.intp) -> np.ndarray:
    """Map label values to numbers with a lookup sized to the labels present.

    A direct table indexed by label value is used only while the largest label
    value is small (below 2**20); above that the wanted values are found by
    binary search, so label values near 2**31 (or uint32/uint64 values above
    it) never allocate a table of that many entries.  Both ways give the same
    numbers.

    Parameters
    ----------
    labels : numpy.ndarray
        Non-negative integer label values (any shape, any integer type, as in a
        :class:`Segmentation` layer).
    mapping : dict of int to int
        Label value -> number.  Values absent from ``labels`` (or outside the
        range of its type) are ignored.
    missing : int
        Number given to labels that are not keys of ``mapping``.
    dtype : numpy dtype
        Integer type of the result (default intp; it must hold ``missing`` and
        every number).

    Returns
    -------
    numpy.ndarray of ``dtype``
        Array of the shape of ``labels``.
    """
    labels = np.asarray(labels)
    out_shape = labels.shape
    if labels.size == 0:
        return np.zeros(out_shape, dtype=dtype)
    vmax = int(labels.max())
    vmin = int(labels.min())
    if vmin >= 0 and vmax < _DIRECT_LOOKUP_MAX:
        lut = np.full(vmax + 1, missing, dtype=dtype)
        try:  # the keys as one array (a key beyond int64 is never a label here: the long way below)
            keys = np.fromiter(mapping.keys(), dtype=np.int64, count=len(mapping))
        except (OverflowError, TypeError, ValueError):
            keys = None
        if keys is not None:
            numbers = np.fromiter(mapping.values(), dtype=np.int64, count=len(mapping))
            inside = (keys >= vmin) & (keys <= vmax)
            lut[keys[inside]] = numbers[inside].astype(dtype)
            return lut[labels]
    pairs = sorted((int(k), int(v)) for k, v in mapping.items() if vmin <= int(k) <= vmax)
    if vmin >= 0 and vmax < _DIRECT_LOOKUP_MAX:
        if pairs:
            keys, numbers = zip(*pairs)
            lut[np.array(keys, dtype=np.intp)] = np.array(numbers, dtype=dtype)
        return lut[labels]
    if not pairs:
        return np.full(out_shape, missing, dtype=dtype)
    # keys within [vmin, vmax] fit the labels' own type: compare without casting to float
    keys = np.array([k for k, _ in pairs], dtype=labels.dtype)
    numbers = np.array([v for _, v in pairs], dtype=dtype)
    pos = np.minimum(np.searchsorted(keys, labels), keys.size - 1)
    return np.where(keys[pos] == labels, numbers[pos], missing).astype(dtype, copy=False)

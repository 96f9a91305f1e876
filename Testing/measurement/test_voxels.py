"""Gathering of ROI voxels (``measurement/voxels.py``) and the labelled-voxel pass behind it.

Truth: numpy on the whole arrays (``np.nonzero`` of each label, the image values there),
independent of the bounding-box pass; the compact index types (int32) must give the same
positions, ROI numbers and values as that reference.
"""
from __future__ import annotations

import numpy as np
import pytest

from ParaspinalFatLib.geometry import Geometry
from ParaspinalFatLib.measurement.voxels import gather_roi_voxels
from ParaspinalFatLib.segmentation import LabelledVoxels, Segment, Segmentation


def _layer(rng, shape=(9, 23, 31), labels=(1, 2, 7, 300)):
    lab = np.zeros(shape, dtype=np.uint16)
    inner = lab[2:7, 3:19, 4:27]  # a bounding box away from every border
    inner[...] = rng.choice(np.array((0,) + labels, dtype=np.uint16), size=inner.shape)
    return lab


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_labelled_voxels_positions_equal_nonzero_of_the_whole_layer(seed):
    lab = _layer(np.random.default_rng(seed))
    found = LabelledVoxels.from_layer(lab)
    assert found.flat.dtype == np.int32  # half of intp: the largest array besides the image
    k, j, i = np.nonzero(lab)
    for axis, expected in enumerate((k, j, i)):
        got = found.index(axis)
        assert got.dtype == np.int32 and np.array_equal(got, expected)
    assert np.array_equal(found.labels, lab[k, j, i])
    select = found.labels != 7
    assert np.array_equal(found.index(0, select), k[select])
    mapping = {2: 0, 300: 1}
    for dtype in (np.int32, np.intp):
        numbers = found.map_labels(mapping, dtype=dtype)
        assert numbers.dtype == dtype
        assert np.array_equal(numbers, np.select([lab[k, j, i] == 2, lab[k, j, i] == 300], [0, 1], -1))


@pytest.mark.parametrize("shape, box", [((13, 530, 520), (slice(1, 12), slice(3, 525), slice(2, 519))),
                                        ((5, 1100, 1000), (slice(0, 5), slice(0, 1100), slice(1, 999)))])
def test_labelled_voxels_found_slab_by_slab_equal_nonzero(shape, box):
    # boxes of several slabs of ~2**20 voxels (and one slice larger than a slab): the same
    # voxels, in C order, with their labels, as numpy's nonzero of the whole layer
    rng = np.random.default_rng(shape[0])
    lab = np.zeros(shape, dtype=np.uint8)
    lab[box] = rng.choice(np.array([0, 0, 0, 4, 9], np.uint8), size=lab[box].shape)
    found = LabelledVoxels.from_layer(lab)
    k, j, i = np.nonzero(lab)
    assert found.start == (k.min(), j.min(), i.min())
    assert found.box_shape == (k.max() - k.min() + 1, j.max() - j.min() + 1, i.max() - i.min() + 1)
    assert found.flat.dtype == np.int32
    for axis, expected in enumerate((k, j, i)):
        assert np.array_equal(found.index(axis), expected)
    assert np.array_equal(found.labels, lab[k, j, i]) and found.labels.dtype == np.uint8
    image = rng.normal(0, 100, shape).astype(np.int16)
    assert np.array_equal(found.take(image), image[k, j, i]) and found.take(image).dtype == np.int16
    select = found.labels == 9
    assert np.array_equal(found.take(image, select), image[k, j, i][select])
    assert np.array_equal(found.take(image, np.flatnonzero(select)), image[k, j, i][select])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32])
def test_label_sums_from_runs_equal_sums_over_the_voxels(dtype):
    # runs of one label along a row; full-width rows make runs that would continue into the next
    # row, and a label value absent from the mapping counts for number 0
    rng = np.random.default_rng(np.dtype(dtype).itemsize)
    lab = np.zeros((8, 40, 50), dtype)
    top = 200 if dtype == np.uint8 else 300
    lab[1:7, 3:37, 5:45] = rng.choice(np.array([0, 2, 2, 2, top, 9], dtype), size=(6, 34, 40))
    lab[2, 10:14, 5:45] = 2  # whole rows of the box: one run per row, not one for the four rows
    found = LabelledVoxels.from_layer(lab)
    runs = found.runs
    assert runs.length.sum() == found.flat.size
    assert np.array_equal(np.repeat(runs.label, runs.length), found.labels)
    k, j, i = (found.index(axis) - found.start[axis] for axis in range(3))
    assert np.array_equal(np.repeat(runs.k, runs.length), k) and np.array_equal(np.repeat(runs.j, runs.length), j)
    assert np.array_equal(runs.first_i, i[runs.first])
    values = [int(v) for v in np.unique(found.labels)]
    mapping = {values[0]: 2, values[-1]: 1}  # numbers in any order; the other labels -> 0
    sums = found.label_sums(found.run_numbers(mapping), 2, second=True)
    number = np.array([mapping.get(int(v), 0) for v in found.labels])
    for c in range(3):
        m = number == c
        kk, jj, ii = k[m].astype(np.int64), j[m].astype(np.int64), i[m].astype(np.int64)
        expected = dict(count=m.sum(), k=kk.sum(), j=jj.sum(), i=ii.sum(), kk=(kk * kk).sum(), jj=(jj * jj).sum(),
                        ii=(ii * ii).sum(), kj=(kk * jj).sum(), ki=(kk * ii).sum(), ji=(jj * ii).sum())
        assert m.sum() > 0
        for name, value in expected.items():
            assert sums[name][c] == (value if c > 0 else 0), (name, c)  # number 0 (labels not asked for): not summed
    every = {v: c for c, v in enumerate(values, start=1)}  # every run numbered: the same sums
    whole = found.label_sums(found.run_numbers(every), len(values), second=True)
    for name in expected:
        assert whole[name][0] == 0
        for c, v in ((1, values[-1]), (2, values[0])):
            assert whole[name][every[v]] == sums[name][c], name
    assert set(found.label_sums(found.run_numbers(mapping), 2)) == {"count", "k", "j", "i"}
    # a row of full-width runs: 4 runs of 40 voxels on slice 2
    on_slice = runs.k == 2 - found.start[0]
    assert np.count_nonzero(runs.length[on_slice] == 40) >= 4


@pytest.mark.parametrize("slice_axis", [0, 1, 2])
@pytest.mark.parametrize("keys", [[(0, 300), (0, 7)], [(0, 1), (0, 2), (0, 7), (0, 300)]])
def test_gathered_arrays_equal_the_voxels_in_c_order(slice_axis, keys):
    # every ROI voxel in C order: its ROI number, its index along the slice axis and its value,
    # whether every label is an ROI or only some, for slices along i, j or k
    rng = np.random.default_rng(slice_axis)
    lab = _layer(rng)
    image = rng.integers(-1000, 1000, lab.shape).astype(np.int16)
    geometry = Geometry(lab.shape[::-1], (1.0, 1.0, 3.0), (0.0, 0.0, 0.0), tuple(np.eye(3).ravel()))
    seg = Segmentation(lab, geometry, [Segment(f"s{v}", 0, v) for v in (1, 2, 7, 300)])
    vox = gather_roi_voxels(image, seg, keys, slice_axis=slice_axis)
    number = {value: n for n, (_, value) in enumerate(keys)}
    k, j, i = np.nonzero(lab)
    labels = lab[k, j, i]
    mine = np.isin(labels, list(number))
    assert np.array_equal(vox.roi, np.array([number[int(v)] for v in labels[mine]])) and vox.roi.dtype == np.int32
    assert np.array_equal(vox.slice_index, (i, j, k)[slice_axis][mine]) and vox.slice_index.dtype == np.int32
    assert np.array_equal(vox.raw, image[k, j, i][mine]) and vox.raw.dtype == np.int16
    assert vox.value.dtype == np.float64 and np.array_equal(vox.value, image[k, j, i][mine].astype(np.float64))
    assert np.array_equal(vox.values_at(vox.roi == 1), vox.value[vox.roi == 1])
    assert vox.n_slices == lab.shape[2 - slice_axis]


def test_gathered_rois_equal_the_masks_values_and_slices():
    rng = np.random.default_rng(5)
    lab = _layer(rng)
    image = rng.normal(30, 10, lab.shape).astype(np.float32)
    geometry = Geometry(lab.shape[::-1], (1.0, 1.0, 3.0), (0.0, 0.0, 0.0), tuple(np.eye(3).ravel()))
    seg = Segmentation(lab, geometry, [Segment("a", 0, 7), Segment("b", 0, 2), Segment("c", 0, 300)])
    keys = [(0, 300), (0, 7)]  # ROI 0 = label 300, ROI 1 = label 7; label 2 is not gathered
    vox = gather_roi_voxels(image, seg, keys, slice_axis=2)
    assert vox.roi.dtype == np.int32 and vox.slice_index.dtype == np.int32
    assert vox.n_rois == 2 and vox.n_slices == lab.shape[0]
    for number, (_, value) in enumerate(keys):
        k, j, i = np.nonzero(lab == value)
        mine = vox.roi == number
        assert np.array_equal(np.sort(vox.value[mine]), np.sort(image[k, j, i]))
        assert np.array_equal(np.bincount(vox.slice_index[mine], minlength=lab.shape[0]),
                              np.bincount(k, minlength=lab.shape[0]))
    expected = np.stack([np.bincount(np.nonzero(lab == v)[0], minlength=lab.shape[0]) for _, v in keys])
    assert np.array_equal(vox.counts_per_slice(), expected)


def test_counts_per_slice_over_several_slabs_equal_a_direct_count():
    """More voxels than one counting slab (2**18): every (ROI, slice) count is the direct count."""
    from ParaspinalFatLib.measurement.voxels import RoiVoxels

    rng = np.random.default_rng(11)
    n, n_rois, n_slices = 700_001, 5, 37
    roi = rng.integers(0, n_rois, n).astype(np.int32)
    slices = np.sort(rng.integers(0, n_slices, n)).astype(np.int32)
    vox = RoiVoxels(roi, slices, np.zeros(n), n_rois, n_slices)
    expected = np.zeros((n_rois, n_slices), np.int64)
    np.add.at(expected, (roi, slices), 1)
    got = vox.counts_per_slice()
    assert got.shape == (n_rois, n_slices) and np.array_equal(got, expected) and got.sum() == n


def _runs_by_hand(box):
    """Maximal stretches of one non-zero label along each row of a small box, by a Python loop."""
    runs = []
    nk, nj, ni = box.shape
    for k in range(nk):
        for j in range(nj):
            i = 0
            while i < ni:
                v = box[k, j, i]
                start = i
                while i < ni and box[k, j, i] == v:
                    i += 1
                if v != 0:
                    runs.append((k, j, start, i - start, int(v)))
    return runs


@pytest.mark.parametrize("seed", range(6))
def test_runs_are_the_maximal_stretches_of_one_label_along_each_row(seed):
    # runs found slab by slab (a box of several slabs for seed 5) against a loop over the rows;
    # blocky labels make long runs, rows full of one label must not join the next row
    rng = np.random.default_rng(seed)
    shape = (4, 7, 9) if seed < 5 else (3, 1100, 1000)
    lab = np.repeat(rng.choice(np.array([0, 0, 3, 5, 300], np.uint16), size=shape[:2] + (shape[2] // 3 + 1,)),
                    3, axis=2)[:, :, :shape[2]]
    lab[0, 1, :] = 5  # a whole row (the box spans the full width when the corners are labelled)
    lab[:, 0, 0] = 3
    lab[:, -1, -1] = 3
    if seed % 2:
        lab = lab[:, :, ::-1]  # not C-contiguous
    found = LabelledVoxels.from_layer(lab)
    box = lab[found.box]
    runs = found.runs
    got = list(zip(runs.k.tolist(), runs.j.tolist(), runs.first_i.tolist(), runs.length.tolist(),
                   runs.label.tolist()))
    if seed < 5:
        assert got == _runs_by_hand(box)
    else:  # large: check maximality and cover instead of the slow loop
        k, j, i = np.nonzero(box)
        assert runs.length.sum() == k.size and found.size == k.size
        end = runs.first_i + runs.length
        after = np.where(end < box.shape[2], box[runs.k, runs.j, np.minimum(end, box.shape[2] - 1)], 0)
        before = np.where(runs.first_i > 0, box[runs.k, runs.j, np.maximum(runs.first_i - 1, 0)], 0)
        assert not np.any((after == runs.label) & (end < box.shape[2]))
        assert not np.any((before == runs.label) & (runs.first_i > 0))
    assert runs.first.dtype == np.intp and runs.length.dtype == np.int64 and runs.label.dtype == lab.dtype
    assert np.array_equal(runs.first, np.r_[0, np.cumsum(runs.length)[:-1]])
    assert np.array_equal(found.labels, box[box != 0]) and found.flat.dtype == np.int32
    assert np.array_equal(found.flat, np.flatnonzero(box))


def test_no_labelled_voxel_gives_no_runs():
    found = LabelledVoxels.from_layer(np.zeros((3, 4, 5), np.uint8))
    assert found.size == 0 and found.flat.size == 0 and found.labels.dtype == np.uint8
    assert found.runs.length.size == 0 and found.value_counts() == {}


@pytest.mark.parametrize("slice_axis", [0, 1, 2])
@pytest.mark.parametrize("keys", [[(0, 300), (0, 7)], [(0, 1), (0, 2), (0, 7), (0, 300)]])
def test_voxels_of_some_slices_and_counts_equal_the_whole_arrays(slice_axis, keys):
    # the per-level table's voxels (RoiVoxels.subset) and the plan's counts, made from the runs
    # without the whole arrays, against the whole arrays made from np.nonzero (Dixon water too)
    rng = np.random.default_rng(10 + slice_axis)
    lab = _layer(rng)
    image = rng.integers(-1000, 1000, lab.shape).astype(np.int16)
    water = np.asfortranarray(rng.normal(50, 10, lab.shape).astype(np.float32))  # not C-contiguous
    geometry = Geometry(lab.shape[::-1], (1.0, 1.0, 3.0), (0.0, 0.0, 0.0), tuple(np.eye(3).ravel()))
    seg = Segmentation(lab, geometry, [Segment(f"s{v}", 0, v) for v in (1, 2, 7, 300)])
    number = {value: n for n, (_, value) in enumerate(keys)}
    k, j, i = np.nonzero(lab)
    mine = np.isin(lab[k, j, i], list(number))
    roi = np.array([number[int(v)] for v in lab[k, j, i][mine]])
    sl = (i, j, k)[slice_axis][mine]
    n_slices = lab.shape[2 - slice_axis]
    on = np.zeros(n_slices, bool)
    on[rng.choice(n_slices, 3, replace=False)] = True
    vox = gather_roi_voxels(image, seg, keys, slice_axis=slice_axis, water=water)
    assert vox.size == roi.size
    expected = np.zeros((len(keys), n_slices), np.int64)
    np.add.at(expected, (roi, sl), 1)
    assert np.array_equal(vox.counts_per_slice(), expected)
    sub, at = vox.subset(on)
    assert np.array_equal(at, np.flatnonzero(on[sl]))
    assert np.array_equal(sub.roi, roi[at]) and sub.roi.dtype == np.int32
    assert np.array_equal(sub.slice_index, sl[at]) and sub.slice_index.dtype == np.int32
    assert np.array_equal(sub.raw, image[k, j, i][mine][at]) and sub.raw.dtype == np.int16
    assert np.array_equal(sub.water, water[k, j, i][mine][at]) and sub.water.dtype == np.float32
    # the same after the whole arrays are made (the other way of taking the subset)
    assert np.array_equal(vox.roi, roi) and np.array_equal(vox.water, water[k, j, i][mine])
    sub2, at2 = vox.subset(on)
    for name in ("roi", "slice_index", "raw", "water"):
        assert np.array_equal(getattr(sub2, name), getattr(sub, name))
    assert np.array_equal(at2, at) and np.array_equal(vox.counts_per_slice(), expected)


def test_offsets_within_runs_count_each_run_from_zero():
    from ParaspinalFatLib.segmentation import offsets_within_runs

    assert offsets_within_runs(np.array([3, 0, 1, 2])).tolist() == [0, 1, 2, 0, 0, 1]
    assert offsets_within_runs(np.zeros(0, np.int64)).size == 0

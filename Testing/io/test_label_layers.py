"""Label-array helpers (ParaspinalFatLib.io.label_layers): voxel counts per label value."""
import numpy as np
import pytest

from ParaspinalFatLib.io.label_layers import present_values


def _unique_counts(arr):
    values, counts = np.unique(arr, return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts) if v != 0}


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.uint32])
@pytest.mark.parametrize("size, fill", [((3, 4, 5), 0.5), ((9, 700, 700), 0.05), ((9, 700, 700), 1.0),
                                        ((1, 1, 1), 1.0), ((2, 3, 0), 0.0)])
def test_present_values_equal_numpy_unique(dtype, size, fill):
    """Counts equal np.unique's, across slab boundaries (4 M voxels), sparse and dense."""
    rng = np.random.default_rng(int(np.prod(size)) + len(str(dtype)))
    hi = min(int(np.iinfo(dtype).max), 300)
    arr = np.where(rng.random(size) < fill, rng.integers(1, hi + 1, size), 0).astype(dtype)
    assert present_values(arr) == _unique_counts(arr)
    assert list(present_values(arr)) == sorted(present_values(arr))


def test_present_values_of_the_largest_value_of_each_small_type():
    for dtype in (np.uint8, np.uint16):
        top = np.iinfo(dtype).max
        arr = np.array([[[0, top, top, 1]]], dtype=dtype)
        assert present_values(arr) == {1: 1, int(top): 2}


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.uint32])
def test_one_pass_value_counts_equal_present_values(dtype):
    """The reader's counts come from the labelled-voxel pass: equal to a whole-volume count."""
    from ParaspinalFatLib.io.label_layers import present_values
    from ParaspinalFatLib.segmentation import LabelledVoxels

    rng = np.random.default_rng(3)
    top = 250 if np.dtype(dtype).itemsize == 1 else 3000
    lab = np.zeros((7, 40, 33), dtype)
    lab[1:6, 5:30, 4:20] = rng.integers(0, top, (5, 25, 16)).astype(dtype)
    found = LabelledVoxels.from_layer(lab)
    assert found.value_counts() == present_values(lab)
    # by hand on a tiny one
    tiny = np.array([[[0, 3, 3], [0, 0, 7]]], dtype)
    assert LabelledVoxels.from_layer(tiny).value_counts() == {3: 2, 7: 1}
    assert LabelledVoxels.from_layer(np.zeros((2, 2, 2), dtype)).value_counts() == {}

"""Pasting a cropped segmentation at its voxel offset gives the nearest-neighbour resampling."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import SimpleITK as sitk

from ParaspinalFatLib.errors import InputError, SegmentationWarning
from ParaspinalFatLib.geometry import Geometry
from ParaspinalFatLib.io.resample import crop_offset, resample_to_grid
from ParaspinalFatLib.segmentation import Segment, Segmentation


def _rotation(axis, deg):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    a = np.radians(deg)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def _geom(size, spacing, origin, direction=np.eye(3)):
    return Geometry(tuple(int(s) for s in size), tuple(float(s) for s in spacing),
                    tuple(float(o) for o in origin),
                    tuple(float(d) for d in np.asarray(direction, float).ravel()))


def _shifted(target, offset, size):
    """The target grid cropped/extended: its voxel ``offset`` (i, j, k) is the crop's (0, 0, 0)."""
    origin = target.index_to_physical(np.asarray(offset, float))
    return _geom(size, target.spacing, origin, target.direction_matrix)


def _reference(layers, src, target):
    """The SimpleITK nearest-neighbour resampling of every layer (the general path)."""
    out = np.zeros((layers.shape[0],) + target.shape, layers.dtype)
    for li in range(layers.shape[0]):
        img = sitk.GetImageFromArray(np.ascontiguousarray(layers[li]))
        src.apply_to_sitk(img)
        out[li] = sitk.GetArrayFromImage(sitk.Resample(
            img, [int(s) for s in target.size], sitk.Transform(), sitk.sitkNearestNeighbor,
            target.origin, target.spacing, target.direction, 0, img.GetPixelID()))
    return out


def _segmentation(geom, n_layers, rng, dtype=np.uint8, top=3):
    layers = np.zeros((n_layers,) + geom.shape, dtype)
    segments = []
    for li in range(n_layers):
        for v in range(1, top + 1):
            lo = [int(rng.integers(0, n)) for n in geom.shape]
            hi = [min(n, a + int(rng.integers(1, max(2, n // 2 + 1)))) for a, n in zip(lo, geom.shape)]
            layers[li, lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = v * (1 if top < 10 else 97)
            segments.append(Segment(f"s{li}_{v}", li, v * (1 if top < 10 else 97)))
    present = {(s.layer, s.label_value) for s in segments
               if np.any(layers[s.layer] == s.label_value)}
    segments = [s for s in segments if (s.layer, s.label_value) in present]
    return Segmentation(layers=layers, geometry=geom, segments=segments, source="crop.seg.nrrd")


TARGET = _geom((37, 29, 13), (0.78, 0.81, 3.3), (-140.2, 60.5, 12.25), _rotation([0.2, 1, 0.1], 17.0))


def _crops(n, seed):
    rng = np.random.default_rng(seed)
    for c in range(n):
        if c % 3 == 0:  # wholly inside
            size = [int(rng.integers(1, s + 1)) for s in TARGET.size]
            offset = [int(rng.integers(0, t - s + 1)) for s, t in zip(size, TARGET.size)]
        else:  # positive/negative offsets, partly (or wholly) outside
            size = [int(rng.integers(1, s + 8)) for s in TARGET.size]
            offset = [int(rng.integers(-s // 2 - 4, t)) for s, t in zip(size, TARGET.size)]
        yield offset, size, int(rng.integers(1, 4)), int(rng.integers(0, 2**31))


@pytest.mark.parametrize("offset, size, n_layers, seed", list(_crops(60, 11)))
def test_paste_equals_nearest_neighbour_resampling(offset, size, n_layers, seed):
    src = _shifted(TARGET, offset, size)
    assert crop_offset(src, TARGET) == tuple(-o for o in offset)
    rng = np.random.default_rng(seed)
    seg = _segmentation(src, n_layers, rng, dtype=np.uint16 if seed % 3 == 0 else np.uint8,
                        top=12 if seed % 3 == 0 else 3)
    ref = _reference(seg.layers, src, TARGET)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = resample_to_grid(seg, TARGET)
        except InputError as exc:  # the crop lies wholly outside the target
            assert "does not overlap the image" in str(exc)
            assert not ref.any() and seg.layers.any()
            return
    assert out.layers.dtype == ref.dtype and np.array_equal(out.layers, ref)
    assert out.geometry == TARGET and out.metadata["resampled_from"] == src.describe()
    # the voxels that fall outside, per segment, counted independently
    lost = []
    for s in seg.segments:
        total = int(np.count_nonzero(seg.layers[s.layer] == s.label_value))
        kept = int(np.count_nonzero(ref[s.layer] == s.label_value))
        if kept < total:
            lost.append(f"'{s.name}' {total - kept} of {total}")
    texts = [str(w.message) for w in caught if issubclass(w.category, SegmentationWarning)]
    if lost:
        assert len(texts) == 1 and f"({'; '.join(lost)} voxels)" in texts[0]
    else:
        assert texts == []


@pytest.mark.parametrize("nudge", ["spacing", "origin", "direction"])
def test_float_noise_still_pastes(nudge):
    src = _shifted(TARGET, (-3, 5, 2), (20, 14, 9))
    if nudge == "spacing":  # float32 rounding of the spacing
        src = _geom(src.size, np.float32(src.spacing).astype(float) * (1 + 3e-7), src.origin,
                    src.direction_matrix)
    elif nudge == "origin":
        src = _geom(src.size, src.spacing, np.add(src.origin, [2e-4, -3e-4, 1e-4]),
                    src.direction_matrix)
    else:
        src = _geom(src.size, src.spacing, src.origin,
                    src.direction_matrix @ _rotation([1, 0, 0], 1e-5))
    assert crop_offset(src, TARGET) == (3, -5, -2)
    seg = _segmentation(src, 2, np.random.default_rng(5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SegmentationWarning)
        out = resample_to_grid(seg, TARGET)
    assert np.array_equal(out.layers, _reference(seg.layers, src, TARGET))


def _flipped(axis):
    """A crop of TARGET whose ``axis`` runs the other way (same voxel centres)."""
    src = _shifted(TARGET, (2, 3, 1), (15, 11, 7))
    d = src.direction_matrix.copy()
    d[:, axis] *= -1
    far = np.zeros(3)
    far[axis] = src.size[axis] - 1
    return _geom(src.size, src.spacing, src.index_to_physical(far), d)


@pytest.mark.parametrize("src", [
    _flipped(0), _flipped(1), _flipped(2),
    # axes i and j swapped
    _geom((11, 15, 7), (0.81, 0.78, 3.3), TARGET.index_to_physical([2.0, 3.0, 1.0]),
          TARGET.direction_matrix[:, [1, 0, 2]]),
    # half a voxel off, a third of a voxel off
    _shifted(TARGET, (2.5, 3, 1), (15, 11, 7)),
    _shifted(TARGET, (2, 3.33, 1), (15, 11, 7)),
    # another spacing on an aligned origin
    _geom((15, 11, 7), (0.39, 0.81, 3.3), TARGET.origin, TARGET.direction_matrix),
    # rotated a little (one voxel's drift across the grid)
    _geom((15, 11, 7), (0.78, 0.81, 3.3), TARGET.origin,
          TARGET.direction_matrix @ _rotation([0, 0, 1], 2.0)),
], ids=["flip_i", "flip_j", "flip_k", "swap_ij", "half_voxel", "third_voxel", "spacing",
        "rotated"])
def test_other_grids_take_the_general_path(src, monkeypatch):
    assert crop_offset(src, TARGET) is None
    seg = _segmentation(src, 2, np.random.default_rng(9))
    calls = []
    real = sitk.ResampleImageFilter

    def counting():
        calls.append(1)
        return real()

    monkeypatch.setattr(sitk, "ResampleImageFilter", counting)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SegmentationWarning)
        out = resample_to_grid(seg, TARGET)
    assert len(calls) == 2  # one resampling per non-empty layer
    monkeypatch.undo()
    assert np.array_equal(out.layers, _reference(seg.layers, src, TARGET))


def test_paste_does_not_resample(monkeypatch):
    src = _shifted(TARGET, (-2, 4, -1), (30, 20, 16))
    seg = _segmentation(src, 3, np.random.default_rng(2))
    ref = _reference(seg.layers, src, TARGET)

    def refuse():
        raise AssertionError("resampled instead of pasted")

    monkeypatch.setattr(sitk, "ResampleImageFilter", refuse)
    with pytest.warns(SegmentationWarning, match=re.escape("outside the image grid")):
        out = resample_to_grid(seg, TARGET)
    assert np.array_equal(out.layers, ref)
    # wholly inside: no warning; empty layers stay empty
    inner = _shifted(TARGET, (3, 2, 1), (10, 9, 5))
    seg = _segmentation(inner, 2, np.random.default_rng(3))
    seg.layers[1] = 0
    seg.segments[:] = [s for s in seg.segments if s.layer == 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = resample_to_grid(seg, TARGET)
    assert not out.layers[1].any()
    assert np.array_equal(out.layers[0, 1:6, 2:11, 3:13], seg.layers[0])
    assert int(out.layers[0].astype(bool).sum()) == int(seg.layers[0].astype(bool).sum())

"""Read .seg.nrrd files written by real 3D Slicer code (the ``slicer-core`` wheel).

The files are produced in the test with Slicer's own MRML classes: a
``vtkMRMLScene``, a ``vtkMRMLSegmentationNode`` whose segments are built from
numpy masks as ``vtkOrientedImageData`` (IJK-to-RAS matrices, oblique, with
extent offsets), collapsed into shared layers by ``vtkSegmentation`` and saved
by the node's default storage node (``vtkMRMLSegmentationStorageNode``).  No
MRML class or Slicer function is imitated: without ``slicer-core`` the tests
are skipped.

Truth: the numpy masks and IJK-to-RAS matrices given to Slicer.  Every segment
read back by :func:`read_segmentation` must cover exactly the voxel centres
(in physical space: RAS from Slicer -> LPS) of its input mask, and ``measure``
on a random Slicer-written file (overlapping segments, cropped to their extent)
must give every figure that plain numpy gives on the input masks.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import SimpleITK as sitk

from slicer_wheel import require
from voxel_oracle import check_group_stats, group_stats

slicer = require("vtkMRMLSegmentationNode", "vtkMRMLScene", purpose="run the tests on Slicer-written .seg.nrrd files")
import vtk  # noqa: E402
from vtkmodules.util import numpy_support  # noqa: E402

from ParaspinalFatLib import measure  # noqa: E402
from ParaspinalFatLib.io.segmentation_files import read_segmentation  # noqa: E402

# vtk's numpy_support sets ndarray.shape, deprecated in numpy >= 2.5 (not our code)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
from ParaspinalFatLib.io.nrrd import read_nrrd_header  # noqa: E402


def _vtk_matrix(m: np.ndarray):
    vm = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            vm.SetElement(r, c, float(m[r, c]))
    return vm


def _oriented_image(mask_kji: np.ndarray, ijk_to_ras: np.ndarray, extent_start=(0, 0, 0)):
    """vtkOrientedImageData holding ``mask`` (numpy k, j, i) at VTK extent start."""
    img = slicer.vtkOrientedImageData()
    k, j, i = mask_kji.shape
    s = extent_start
    img.SetExtent(s[0], s[0] + i - 1, s[1], s[1] + j - 1, s[2], s[2] + k - 1)
    img.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    scalars = numpy_support.vtk_to_numpy(img.GetPointData().GetScalars())
    scalars[:] = mask_kji.astype(np.uint8).ravel()  # VTK: x (i) fastest == numpy C order of (k,j,i)
    img.SetImageToWorldMatrix(_vtk_matrix(ijk_to_ras))
    return img


def _rotation(axis, degrees):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    a = np.deg2rad(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def _ijk_to_ras(rotation, spacing, origin_ras):
    m = np.eye(4)
    m[:3, :3] = rotation * np.asarray(spacing, float)
    m[:3, 3] = origin_ras
    return m


def _expected_indices(mask_kji, extent_start):
    k, j, i = np.nonzero(mask_kji)
    return np.stack([i + extent_start[0], j + extent_start[1], k + extent_start[2]], axis=1)


def _read_voxels_in_source_ijk(seg, segment, ijk_to_ras):
    """Voxel centres of a read segment, mapped into the source IJK (integers if aligned)."""
    mask = seg.mask(segment)
    k, j, i = np.nonzero(mask)
    lps = seg.geometry.index_to_physical(np.stack([i, j, k], axis=1).astype(float))
    ras = lps * np.array([-1.0, -1.0, 1.0])
    inv = np.linalg.inv(ijk_to_ras)
    ijk = ras @ inv[:3, :3].T + inv[:3, 3]
    assert np.allclose(ijk, np.round(ijk), atol=1e-4), "read voxels are off the source grid"
    return np.round(ijk).astype(int)


def _as_set(rows):
    return {tuple(int(v) for v in r) for r in rows}


def _write(node, path):
    storage = node.CreateDefaultStorageNode()
    assert storage is not None and storage.GetClassName() == "vtkMRMLSegmentationStorageNode"
    storage.SetFileName(str(path))
    assert storage.WriteData(node) == 1, "Slicer failed to write the segmentation"
    return path


def _new_node(reference_image):
    scene = slicer.vtkMRMLScene()
    node = slicer.vtkMRMLSegmentationNode()
    scene.AddNode(node)
    conv = slicer.vtkSegmentationConverter
    node.GetSegmentation().SetConversionParameter(
        conv.GetReferenceImageGeometryParameterName(),
        conv.SerializeImageGeometry(reference_image),
    )
    return scene, node


@pytest.fixture(scope="module")
def masks():
    rng = np.random.default_rng(20240611)
    shape = (9, 14, 17)  # k, j, i
    zz, yy, xx = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    a = ((xx - 5) ** 2 + (yy - 6) ** 2 + 2 * (zz - 4) ** 2) < 14      # "multifidus"
    b = ((xx - 12) ** 2 + (yy - 7) ** 2 + 2 * (zz - 4) ** 2) < 10     # disjoint from a
    c = (xx >= 4) & (xx <= 9) & (yy >= 3) & (yy <= 9) & (zz >= 2) & (zz <= 5)  # overlaps a
    noise = rng.random(shape) < 0.03
    a = a | (noise & (xx < 8))  # irregular voxels: exact voxel-for-voxel check matters
    assert not np.any(a & b) and np.any(a & c)
    return {"A_multifidus_left": a, "B_multifidus_right": b, "C_overlapping_box": c}


def _build_and_write(tmp_path, masks, ijk_to_ras, extent_starts, names, collapse=True,
                     add_empty=False, filename="slicer.seg.nrrd"):
    first = _oriented_image(masks[names[0]], ijk_to_ras, extent_starts[names[0]])
    scene, node = _new_node(first)
    colors = [(0.9, 0.1, 0.1), (0.1, 0.8, 0.2), (0.2, 0.3, 0.9)]
    for n, name in enumerate(names):
        img = _oriented_image(masks[name], ijk_to_ras, extent_starts[name])
        sid = node.AddSegmentFromBinaryLabelmapRepresentation(img, name, list(colors[n % 3]))
        assert sid
    if add_empty:
        node.GetSegmentation().AddEmptySegment("empty_segment", "empty_segment")
    if collapse:
        node.GetSegmentation().CollapseBinaryLabelmaps(False)
    path = _write(node, tmp_path / filename)
    return path, node


def _check_segments(path, masks, ijk_to_ras, extent_starts, names):
    seg = read_segmentation(path)
    assert seg.names()[: len(names)] == list(names)
    for name in names:
        got = _read_voxels_in_source_ijk(seg, seg.segment(name), ijk_to_ras)
        want = _expected_indices(masks[name], extent_starts[name])
        assert len(got) == len(want), name
        assert _as_set(got) == _as_set(want), name
    return seg


def test_overlapping_oblique_layers(tmp_path, masks):
    """Overlapping segments -> Slicer writes a 4-D file with layers sharing label values."""
    rot = _rotation([1.0, 2.0, 0.5], 23.0)
    m = _ijk_to_ras(rot, (0.8, 1.1, 3.5), (-12.3, 40.7, 101.9))
    starts = {"A_multifidus_left": (0, 0, 0), "B_multifidus_right": (0, 0, 0),
              "C_overlapping_box": (0, 0, 0)}
    names = list(masks)
    path, node = _build_and_write(tmp_path, masks, m, starts, names)
    fields, kv, _ = read_nrrd_header(path)
    assert fields["dimension"] == "4" and fields["kinds"].startswith("list")
    assert fields["space"] == "left-posterior-superior"
    seg = _check_segments(path, masks, m, starts, names)
    assert seg.n_layers == 2
    # the two disjoint segments share a layer; the overlapping one reuses a label value
    a, b, c = (seg.segment(n) for n in names)
    assert a.layer == b.layer != c.layer
    values = [s.label_value for s in seg.segments]
    assert len(values) != len(set(values)), "expected a label value repeated across layers"
    # segment ids, colours and header agree with what Slicer holds
    for s in seg.segments:
        segment = node.GetSegmentation().GetSegment(s.segment_id)
        assert segment is not None and segment.GetName() == s.name
        assert np.allclose(segment.GetColor(), s.color, atol=1e-5)
        assert int(kv[f"Segment{seg.segments.index(s)}_Layer"]) == s.layer


def test_cropped_extent_offset_and_3d_file(tmp_path, masks):
    """Disjoint segments with VTK extent offsets -> 3-D file cropped to the minimal extent."""
    rot = _rotation([0.0, 0.0, 1.0], -35.0) @ _rotation([1.0, 0.0, 0.0], 12.0)
    m = _ijk_to_ras(rot, (0.6, 0.6, 4.0), (55.0, -20.5, -310.25))
    starts = {"A_multifidus_left": (3, 7, 2), "B_multifidus_right": (3, 7, 2)}
    names = ["A_multifidus_left", "B_multifidus_right"]
    path, _ = _build_and_write(tmp_path, masks, m, starts, names, add_empty=True)
    fields, kv, _ = read_nrrd_header(path)
    assert fields["dimension"] == "3"
    offset = [int(v) for v in kv["Segmentation_ReferenceImageExtentOffset"].split()]
    assert offset != [0, 0, 0], "Slicer should have cropped the labelmap (offset extent)"
    seg = _check_segments(path, masks, m, starts, names)
    assert seg.n_layers == 1
    empty = seg.segment("empty_segment")
    assert not seg.mask(empty).any()


def test_uncollapsed_segments_flipped_axis(tmp_path, masks):
    """Segments added one by one (own labelmaps, not collapsed in memory), flipped i axis.

    The storage node itself merges them into as few layers as possible on save.
    """
    m = _ijk_to_ras(np.diag([-1.0, 1.0, 1.0]), (1.0, 1.0, 2.5), (10.0, 20.0, 30.0))
    starts = {n: (0, 0, 0) for n in masks}
    names = list(masks)
    path, _ = _build_and_write(tmp_path, masks, m, starts, names, collapse=False,
                               filename="uncollapsed.seg.nrrd")
    seg = _check_segments(path, masks, m, starts, names)
    assert seg.n_layers in (2, 3)
    a, b, c = (seg.segment(n) for n in names)
    assert c.layer != a.layer  # overlapping segments never share a layer


def test_slicer_reads_our_seg_nrrd(tmp_path):
    """write_seg_nrrd output loads in Slicer's storage node with the same voxels."""
    from ParaspinalFatLib.geometry import Geometry
    from ParaspinalFatLib.io.slicer_seg import write_seg_nrrd
    from ParaspinalFatLib.segmentation import Segment, Segmentation

    rot = _rotation([0.2, 1.0, 0.4], 17.0)
    geom = Geometry((13, 11, 7), (0.7, 0.9, 2.8), (-31.5, 14.25, 120.0),
                    tuple(float(v) for v in rot.ravel()))
    rng = np.random.default_rng(7)
    l0 = rng.integers(0, 3, size=geom.shape).astype(np.uint8)
    l1 = (rng.random(geom.shape) < 0.2).astype(np.uint8)  # overlaps layer 0, label 1 again
    ours = Segmentation(
        layers=np.stack([l0, l1]), geometry=geom, source="ours",
        segments=[Segment("left", 0, 1, "id_left", (1.0, 0.0, 0.0)),
                  Segment("right", 0, 2, "id_right", (0.0, 1.0, 0.0)),
                  Segment("overlap", 1, 1, "id_overlap", (0.0, 0.0, 1.0))])
    path = write_seg_nrrd(ours, tmp_path / "ours.seg.nrrd")

    scene = slicer.vtkMRMLScene()
    node = slicer.vtkMRMLSegmentationNode()
    scene.AddNode(node)
    storage = node.CreateDefaultStorageNode()
    storage.SetFileName(str(path))
    assert storage.ReadData(node) == 1, "Slicer could not read our .seg.nrrd"
    segmentation = node.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == 3
    rep = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
    for s in ours.segments:
        vseg = segmentation.GetSegment(s.segment_id)
        assert vseg is not None and vseg.GetName() == s.name
        assert np.allclose(vseg.GetColor(), s.color)
        lab = vseg.GetRepresentation(rep)
        e = lab.GetExtent()
        dims = (e[5] - e[4] + 1, e[3] - e[2] + 1, e[1] - e[0] + 1)
        arr = numpy_support.vtk_to_numpy(lab.GetPointData().GetScalars()).reshape(dims)
        k, j, i = np.nonzero(arr == vseg.GetLabelValue())
        m = vtk.vtkMatrix4x4()
        lab.GetImageToWorldMatrix(m)
        ijk_to_ras = np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])
        ijk = np.stack([i + e[0], j + e[2], k + e[4], np.ones_like(i)], axis=1).astype(float)
        lps_slicer = (ijk @ ijk_to_ras.T)[:, :3] * np.array([-1.0, -1.0, 1.0])
        # map Slicer's voxels into our grid: they must be exactly our mask's voxels
        idx = geom.physical_to_index(lps_slicer)
        assert np.allclose(idx, np.round(idx), atol=1e-4)
        got = _as_set(np.round(idx).astype(int))
        kk, jj, ii = np.nonzero(ours.mask(s))
        assert got == _as_set(np.stack([ii, jj, kk], axis=1)), s.name


@pytest.mark.parametrize("seed", range(4))
def test_measure_on_a_random_slicer_file_equals_an_independent_count(tmp_path, seed):
    """A Slicer-written .seg.nrrd (overlapping segments in several layers, each given to Slicer
    cropped to its box, an oblique grid) measured against the image it was drawn on: every
    whole-ROI, per-slice and per-level figure equals plain numpy on each segment's own mask."""
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(15, 20)), int(rng.integers(10, 16)), int(rng.integers(10, 16)))  # k, j, i
    rot = _rotation(rng.normal(size=3), float(rng.uniform(-12.0, 12.0)))  # k stays the slice axis
    spacing = rng.uniform(0.5, 3.0, 3)
    m = _ijk_to_ras(rot, spacing, rng.uniform(-80.0, 80.0, 3))
    image = rng.normal(50.0, 20.0, shape).astype(np.float32)
    image.reshape(-1)[rng.choice(image.size, image.size // 30, replace=False)] = np.nan

    def box(first, last, margin):
        lo = [first] + [int(rng.integers(margin, n - 3 - margin)) for n in shape[1:]]
        hi = [last + 1] + [int(rng.integers(a + 2, n + 1 - margin)) for a, n in zip(lo[1:], shape[1:])]
        mask = np.zeros(shape, bool)
        mask[tuple(slice(a, b) for a, b in zip(lo, hi))] = True
        return mask

    # L3 superior: RAS S = +k when the k axis points up (it does: the rotation is at most 12 degrees);
    # the three vertebrae of one size, as in a patient (one much smaller than its neighbour at the
    # edge of the file's extent would be taken as cut off by the field of view)
    body = box(1, 3, 1)
    masks = {level: np.roll(body, 4 * n, axis=0) for n, level in enumerate(("L5", "L4", "L3"))}
    muscles = ("multifidus_left", "multifidus_right", "psoas_left", "psoas_right")
    for name in muscles:  # boxes and scattered voxels; they overlap each other and the vertebrae
        a, b = sorted(int(x) for x in rng.integers(0, shape[0], 2))
        masks[name] = box(a, b, 0) | (rng.random(shape) < 0.02)
    inside = np.zeros(shape, bool)  # nothing in the first row and the last two columns: Slicer crops the file
    inside[:, 1:, :-2] = True
    masks = {name: mask & inside for name, mask in masks.items()}
    scene, node = _new_node(_oriented_image(np.zeros(shape, bool), m))
    for name, mask in masks.items():
        k, j, i = (np.flatnonzero(mask.any(axis=axes)) for axes in ((1, 2), (0, 2), (0, 1)))
        crop = mask[k[0]:k[-1] + 1, j[0]:j[-1] + 1, i[0]:i[-1] + 1]
        assert node.AddSegmentFromBinaryLabelmapRepresentation(
            _oriented_image(crop, m, (int(i[0]), int(j[0]), int(k[0]))), name, [0.5, 0.5, 0.5])
    node.GetSegmentation().CollapseBinaryLabelmaps(False)
    storage = node.CreateDefaultStorageNode()
    storage.SetCropToMinimumExtent(True)  # Slicer's option: the file holds the labelled extent only
    storage.SetFileName(str(tmp_path / "random.seg.nrrd"))
    assert storage.WriteData(node) == 1
    seg_path = tmp_path / "random.seg.nrrd"
    img = sitk.GetImageFromArray(image)  # the same grid, in LPS
    flip = np.diag([-1.0, -1.0, 1.0])
    img.SetSpacing([float(s) for s in spacing])
    img.SetOrigin([float(v) for v in flip @ m[:3, 3]])
    img.SetDirection([float(v) for v in (flip @ rot).ravel()])
    image_path = tmp_path / "image.nrrd"
    sitk.WriteImage(img, str(image_path))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random muscles lie on any side: side warnings are expected
        res = measure(str(image_path), str(seg_path), map_kind="scalar", per_slice=True, whole_roi=True,
                      levels=["L3/4", "L4/5"], n_slices=1, segments=list(muscles))
    assert read_segmentation(seg_path).n_layers >= 2  # the overlaps were kept in separate layers
    _, kv, _ = read_nrrd_header(seg_path)
    assert [int(v) for v in kv["Segmentation_ReferenceImageExtentOffset"].split()][1] == 1  # pasted at an offset
    values = image.astype(np.float64)
    slice_of = np.indices(shape)[0]
    area = float(spacing[0] * spacing[1])

    def check(row, want, where):
        for key, value in want.items():
            np.testing.assert_allclose(row[key], value, rtol=1e-11, atol=1e-12, err_msg=f"{where} {key}")

    rois = res.rois.set_index("segment")
    centre = {level: slice_of[masks[level]].mean() for level in ("L3", "L4", "L5")}
    for name in muscles:
        mask = masks[name]
        check_group_stats(rois.loc[name], group_stats(values[mask]), f"seed {seed} {name} whole ROI")
        check(rois.loc[name], {"volume_ml": mask.sum() * np.prod(spacing) / 1000.0}, f"seed {seed} {name} whole ROI")
        rows = res.slices[res.slices["segment"] == name]
        assert rows["slice_index"].tolist() == np.flatnonzero(mask.any(axis=(1, 2))).tolist()
        for _, row in rows.iterrows():
            on = mask & (slice_of == row["slice_index"])
            check_group_stats(row, group_stats(values[on]), f"seed {seed} {name} slice")
            check(row, {"csa_mm2": on.sum() * area}, f"seed {seed} {name} slice")
        for upper, lower in (("L3", "L4"), ("L4", "L5")):
            s = int(np.floor((centre[upper] + centre[lower]) / 2.0 + 0.5))
            row = res.levels[(res.levels["segment"] == name) & (res.levels["level"] == f"{upper}/{lower[1:]}")]
            assert len(row) == 1 and int(row.iloc[0]["slice_index"]) == s, (seed, name, upper)
            on = mask & (slice_of == s)
            check(row.iloc[0], {"n_voxels": on.sum(), "csa_mm2": on.sum() * area},
                  f"seed {seed} {name} {upper}/{lower[1:]}")

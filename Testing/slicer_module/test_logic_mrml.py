"""The Slicer module's Logic on Slicer's real MRML (the ``slicer-core`` wheel).

Scenes are built here with Slicer's own classes: scalar volume nodes with oblique,
anisotropic IJK-to-RAS matrices, segmentation nodes whose segments are
``vtkOrientedImageData`` with cropped extents (collapsed by ``vtkSegmentation`` into shared
layers, overlapping ones in another layer, one segment on a grid of its own), markups
point lists and lines.  Nothing of Slicer is imitated; without ``slicer-core`` (Python
3.9) the module is skipped.

Oracles, each independent of the Logic's conversions:

* the library run on the same data written to files by Slicer's own storage nodes
  (``.nrrd`` volume, ``.seg.nrrd`` segmentation, ``.mrk.json`` markups):
  ``ParaspinalFatLib.measure(path, path, ...)``; every cell of the table node must equal
  it, and the overlay must equal the class labelmap it writes (``fat_labelmap``);
* analytic truth: boxes of known voxel counts (CSA = count x pixel area), constant PDFF
  regions (mean = the constant, SD = 0), level slices placed between vertebra boxes,
  Dixon F / (F + W) of constant images, the disc-plane normal of a line;
* ``make_phantom``'s own truth table for the sample case.
"""
from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from slicer_wheel import require

slicer = require("vtkMRMLSegmentationNode", "vtkSlicerApplicationLogic",
                 purpose="run the Slicer module's Logic on real MRML")
import vtk  # noqa: E402
from vtkmodules.util import numpy_support  # noqa: E402

import ParaspinalFatLib  # noqa: E402
from ParaspinalFatLib.errors import InputError  # noqa: E402
from ParaspinalFatLogic import ParaspinalFatLogic  # noqa: E402  (conftest puts ParaspinalFat/ on sys.path)

# vtk's numpy_support sets ndarray.shape, deprecated in numpy >= 2.5 (not our code)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

RAS_FROM_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])

# ------------------------------------------------------------------ the test case, in index space
SIZE = (48, 40, 16)  # i, j, k
SPACING = (0.8, 1.1, 3.5)
ORIGIN_LPS = (-21.0, -16.5, -30.25)
PIXEL_AREA = SPACING[0] * SPACING[1]
#: vertebra boxes: slices k (inclusive); the disc levels lie halfway between their centroids
VERTEBRA_SLICES = {"L3": (1, 3), "L4": (5, 7), "L5": (9, 11), "S1": (13, 15)}
LEVEL_SLICES = {"L3/4": 4, "L4/5": 8, "L5/S1": 12}
MF_LEFT = (slice(24, 32), slice(28, 34))   # (j, i) box, PDFF 12.5 everywhere
MF_RIGHT = (slice(24, 32), slice(12, 18))  # (j, i) box, PDFF 80 for i < 15 and 10 for i >= 15
ES_LEFT = (slice(22, 34), slice(32, 40))   # overlaps MF_LEFT at i = 32, 33 (another layer)
VERTEBRA = (slice(6, 16), slice(20, 28))


def _rotation(axis, degrees) -> np.ndarray:
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    a = np.deg2rad(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


ROTATION = _rotation([1.0, 0.3, 0.2], 11.0)  # oblique: no axis along a patient axis


def _ijk_to_lps(rotation=ROTATION, spacing=SPACING, origin=ORIGIN_LPS) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = rotation * np.asarray(spacing, float)
    m[:3, 3] = origin
    return m


IJK_TO_RAS = RAS_FROM_LPS @ _ijk_to_lps()


def _vtk_matrix(m) -> "vtk.vtkMatrix4x4":
    vm = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            vm.SetElement(r, c, float(m[r][c]))
    return vm


def _ras(ijk) -> np.ndarray:
    """RAS of a continuous index (i, j, k) of the image grid."""
    return (IJK_TO_RAS @ np.array([*ijk, 1.0]))[:3]


def _volume_node(scene, array_kji, ijk_to_ras, name):
    """A scalar volume node made the way Slicer's readers make one (vtkImageData + IJK-to-RAS)."""
    nk, nj, ni = array_kji.shape
    image = vtk.vtkImageData()
    image.SetDimensions(ni, nj, nk)
    image.AllocateScalars(numpy_support.get_vtk_array_type(array_kji.dtype), 1)
    numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())[:] = np.ascontiguousarray(array_kji).ravel()
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    node.SetAndObserveImageData(image)
    node.SetIJKToRASMatrix(_vtk_matrix(ijk_to_ras))
    node.CreateDefaultDisplayNodes()
    return node


def _oriented_image(labels_kji, ijk_to_ras, extent_start=(0, 0, 0)):
    image = slicer.vtkOrientedImageData()
    nk, nj, ni = labels_kji.shape
    s = extent_start
    image.SetExtent(s[0], s[0] + ni - 1, s[1], s[1] + nj - 1, s[2], s[2] + nk - 1)
    image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())[:] = labels_kji.astype(np.uint8).ravel()
    image.SetImageToWorldMatrix(_vtk_matrix(ijk_to_ras))
    return image


def _cropped(mask_kji):
    """The mask cropped to its bounding box and the box's start (i, j, k): Slicer's cropped extents."""
    nz = np.argwhere(mask_kji)
    lo, hi = nz.min(axis=0), nz.max(axis=0) + 1
    return mask_kji[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]], (int(lo[2]), int(lo[1]), int(lo[0]))


def _masks():
    shape = (SIZE[2], SIZE[1], SIZE[0])
    masks = {}
    for name, box in (("multifidus_left", MF_LEFT), ("multifidus_right", MF_RIGHT),
                      ("erector_spinae_left", ES_LEFT)):
        m = np.zeros(shape, bool)
        m[:, box[0], box[1]] = True
        masks[name] = m
    for name, (k0, k1) in VERTEBRA_SLICES.items():
        m = np.zeros(shape, bool)
        m[k0:k1 + 1, VERTEBRA[0], VERTEBRA[1]] = True
        masks[f"vertebrae_{name}"] = m
    return masks


def _pdff():
    """PDFF (%) float32: constant muscle regions, a subcutaneous-fat border (90 %) for the scale."""
    shape = (SIZE[2], SIZE[1], SIZE[0])
    pdff = np.full(shape, 4.0, np.float32)
    pdff[:, :, :3] = 90.0
    pdff[:, :, -3:] = 90.0
    pdff[:, ES_LEFT[0], ES_LEFT[1]] = 30.0
    pdff[:, MF_LEFT[0], MF_LEFT[1]] = 12.5  # overwrites the overlap with ES: ES mean is mixed
    pdff[:, MF_RIGHT[0], MF_RIGHT[1]] = 10.0
    pdff[:, MF_RIGHT[0], 12:15] = 80.0
    return pdff


#: the psoas is drawn on a grid of its own (finer, rotated 25 degrees about the image's k axis)
FOREIGN_IJK_TO_LPS = _ijk_to_lps(ROTATION @ _rotation([0.0, 0.0, 1.0], 25.0), (0.6, 0.7, 1.75),
                                 _ijk_to_lps()[:3, :3] @ np.array([30.0, 0.0, -1.0]) + np.asarray(ORIGIN_LPS))
PSOAS_CENTRE_IJK = (38.3, 11.6)  # (i, j) of the image grid


def _foreign_psoas():
    """Psoas mask on its own grid: an elliptic cylinder (semi-axes 3.7 x 2.6 mm) along the image's k axis."""
    shape = (36, 36, 40)  # k, j, i of the foreign grid
    kk, jj, ii = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    ijk = np.stack([ii, jj, kk, np.ones_like(ii)], axis=-1).astype(float)
    lps = ijk @ FOREIGN_IJK_TO_LPS.T
    image_ijk = lps @ np.linalg.inv(_ijk_to_lps()).T  # continuous index of the image grid
    u = (image_ijk[..., 0] - PSOAS_CENTRE_IJK[0]) * SPACING[0]
    v = (image_ijk[..., 1] - PSOAS_CENTRE_IJK[1]) * SPACING[1]
    return (u / 3.7) ** 2 + (v / 2.6) ** 2 <= 1.0


def _build_case(scene, with_vertebrae=True, foreign=True):
    pdff = _pdff()
    image_node = _volume_node(scene, pdff, IJK_TO_RAS, "pdff")
    seg_node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "muscles")
    seg_node.CreateDefaultDisplayNodes()
    seg_node.SetReferenceImageGeometryParameterFromVolumeNode(image_node)
    colors = [(0.9, 0.1, 0.1), (0.1, 0.8, 0.2), (0.2, 0.3, 0.9), (0.8, 0.8, 0.2)]
    names = []
    for n, (name, mask) in enumerate(_masks().items()):
        if not with_vertebrae and name.startswith("vertebrae"):
            continue
        box, start = _cropped(mask)
        assert seg_node.AddSegmentFromBinaryLabelmapRepresentation(_oriented_image(box, IJK_TO_RAS, start), name,
                                                                   list(colors[n % 4]))
        names.append(name)
    segmentation = seg_node.GetSegmentation()
    segmentation.CollapseBinaryLabelmaps(False)
    if foreign:
        psoas = _foreign_psoas()
        assert psoas.sum() > 50
        assert seg_node.AddSegmentFromBinaryLabelmapRepresentation(
            _oriented_image(psoas, RAS_FROM_LPS @ FOREIGN_IJK_TO_LPS), "psoas_left", [0.5, 0.5, 0.9])
        names.append("psoas_left")
    return image_node, seg_node, names


def _write_node(node, path):
    storage = node.CreateDefaultStorageNode()
    node.GetScene().AddNode(storage)
    node.SetAndObserveStorageNodeID(storage.GetID())
    storage.SetFileName(str(path))
    assert storage.WriteData(node) == 1, f"Slicer could not write {path}"
    return path


# ------------------------------------------------------------------ reading the output nodes
def _table_columns(table_node):
    """{name: (class name, list of values)} of a table node, in column order."""
    table = table_node.GetTable()
    out = {}
    for c in range(table.GetNumberOfColumns()):
        column = table.GetColumn(c)
        if isinstance(column, vtk.vtkStringArray):
            values = [column.GetValue(r) for r in range(column.GetNumberOfValues())]
        else:
            values = [column.GetValue(r) for r in range(column.GetNumberOfTuples())]
        out[column.GetName()] = (column, values)
    return out


def _assert_table_equals_frame(table_node, frame):
    """Every cell of the table node equals the DataFrame's (text exactly, numbers to 1e-9, NaN where NaN)."""
    columns = _table_columns(table_node)
    assert list(columns) == list(frame.columns)
    assert table_node.GetNumberOfRows() == len(frame)
    for name in frame.columns:
        column, values = columns[name]
        series = frame[name]
        if isinstance(column, vtk.vtkStringArray):
            assert not _numeric(series), name
            want = ["" if (v is None or (isinstance(v, float) and math.isnan(v))) else str(v) for v in series]
            assert values == want, name
        else:
            assert column.IsA("vtkDoubleArray"), (name, column.GetClassName())
            want = series.to_numpy(dtype=float, na_value=np.nan)
            # the files hold the grid in decimal text: positions derived from it (slice offsets, plane
            # normals) may differ in the last bits (~1e-15); counts and areas are equal
            np.testing.assert_allclose(np.asarray(values, float), want, rtol=1e-9, atol=1e-9, equal_nan=True,
                                       err_msg=name)


def _numeric(series):
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series.dtype)


def _segment_mask(seg_node, name, reference_node):
    """A segment exported by Slicer's own logic onto the reference volume's grid (k, j, i bool)."""
    segment_id = seg_node.GetSegmentation().GetSegmentIdBySegmentName(name)
    assert segment_id, f"no segment {name!r}"
    ids = vtk.vtkStringArray()
    ids.InsertNextValue(segment_id)
    scene = seg_node.GetScene()
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "export")
    try:
        assert slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(seg_node, ids, labelmap,
                                                                                       reference_node)
        image = labelmap.GetImageData()
        dims = image.GetDimensions()
        array = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(dims[::-1]).copy()
    finally:
        scene.RemoveNode(labelmap)
    return array != 0


# ------------------------------------------------------------------ tests: the oracle and the truth
@pytest.mark.parametrize("plane", ["image", "disc"])
def test_table_equals_library_on_slicer_written_files_and_the_analytic_truth(mrml_scene, tmp_path, plane):
    image_node, seg_node, _ = _build_case(mrml_scene)
    segmentation = seg_node.GetSegmentation()
    # the scene is what the test claims: shared, overlapping, cropped and foreign layers
    rep = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
    assert segmentation.GetNumberOfLayers(rep) == 3
    layer_of = {segmentation.GetSegment(i).GetName(): segmentation.GetLayerIndex(i, rep)
                for i in segmentation.GetSegmentIDs()}
    assert layer_of["multifidus_left"] == layer_of["multifidus_right"] == layer_of["vertebrae_L4"]
    assert layer_of["erector_spinae_left"] != layer_of["multifidus_left"]
    assert len({layer_of["psoas_left"], layer_of["multifidus_left"], layer_of["erector_spinae_left"]}) == 3
    extents = [segmentation.GetLayerDataObject(n, rep).GetExtent() for n in range(3)]
    assert any(e[0] > 0 and e[2] > 0 for e in extents), f"no cropped extent among {extents}"

    logic = ParaspinalFatLogic(mrml_scene)
    options = {"subject": "case1", "plane": plane}
    result = logic.process(image_node, seg_node, **options)

    image_path = _write_node(image_node, tmp_path / "pdff.nrrd")
    seg_path = _write_node(seg_node, tmp_path / "muscles.seg.nrrd")
    classes_path = tmp_path / "classes.nrrd"
    oracle = ParaspinalFatLib.measure(str(image_path), str(seg_path), fat_labelmap=str(classes_path), **options)
    _assert_table_equals_frame(result.tableNode, oracle.levels)
    # four muscles x three levels (vertebrae give the levels and are not measured)
    assert len(oracle.levels) == 4 * 3
    assert set(oracle.levels["segment"]) == {"multifidus_left", "multifidus_right", "erector_spinae_left",
                                             "psoas_left"}

    # analytic truth (independent of any reader): boxes on known slices with constant PDFF
    rows = {(r.segment, r.level): r for r in oracle.levels.itertuples()}
    assert set(oracle.levels["level"]) == set(LEVEL_SLICES)
    for level, k in LEVEL_SLICES.items():
        mf_l, mf_r = rows[("multifidus_left", level)], rows[("multifidus_right", level)]
        if plane == "image":
            assert mf_l.slice_index == k and mf_r.slice_index == k
            assert abs(mf_l.slice_offset_mm) < 1e-9
            n_left = (MF_LEFT[0].stop - MF_LEFT[0].start) * (MF_LEFT[1].stop - MF_LEFT[1].start)
            assert mf_l.n_voxels == n_left and mf_l.csa_mm2 == pytest.approx(n_left * PIXEL_AREA, rel=1e-12)
            n_fat = (MF_RIGHT[0].stop - MF_RIGHT[0].start) * 3
            assert mf_r.fat_csa_mm2 == pytest.approx(n_fat * PIXEL_AREA, rel=1e-12)
            assert mf_r.lean_csa_mm2 == pytest.approx(n_fat * PIXEL_AREA, rel=1e-12)
            assert mf_r.fat_fraction_pct == pytest.approx(45.0, abs=1e-9)  # half 80 %, half 10 %
            assert mf_l.fat_fraction_pct == pytest.approx(12.5, abs=1e-9)  # constant region
            assert mf_l.sd == pytest.approx(0.0, abs=1e-9)
        else:
            # the spine axis from the vertebra boxes is the grid's k axis: the disc plane is that slice,
            # resampled (linear image, partial-volume masks): the box edge mixes in its neighbours
            normal = np.array([mf_l.plane_normal_lps_x, mf_l.plane_normal_lps_y, mf_l.plane_normal_lps_z])
            np.testing.assert_allclose(normal, ROTATION[:, 2], atol=1e-9)
            assert mf_l.plane_tilt_deg == pytest.approx(0.0, abs=1e-6)
            assert mf_l.csa_mm2 == pytest.approx(48 * PIXEL_AREA, rel=0.03)
            assert mf_l.median == pytest.approx(12.5, abs=1e-9)
        assert mf_l.fat_csa_mm2 == 0.0
    assert rows[("psoas_left", "L4/5")].n_voxels > 10
    # the psoas grid reaches beyond the image: the library's warning is among the result's findings
    assert any("'psoas_left'" in w and "lost by resampling" in w for w in result.warnings)

    # the overlay, exported by Slicer's own logic onto the image grid, is voxel for voxel the library's
    # class labelmap: the array measure() returned, and on image planes also the file it writes
    import SimpleITK as sitk

    classes = result.measurement.class_labelmap
    written = sitk.GetArrayFromImage(sitk.ReadImage(str(classes_path)))
    # (disc planes paint each plane pixel's class on its nearest voxel; this phantom's plane pixels sit
    # exactly half-way between voxel centres, a tie the library breaks the same way whatever the last
    # bits of the grid, so the file run and the in-memory run agree here too)
    np.testing.assert_array_equal(classes, written)
    assert segmentation_names(result.overlayNode) == ["fat", "lean", "undefined"]
    for name, value in (("lean", 1), ("undefined", 2), ("fat", 3)):
        exported = _segment_mask(result.overlayNode, name, image_node)
        np.testing.assert_array_equal(exported, classes == value, err_msg=name)
    assert (classes == 3).sum() > 0 and (classes == 1).sum() > 0


def segmentation_names(node):
    segmentation = node.GetSegmentation()
    return [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]


# ------------------------------------------------------------------ tests: the chart
def test_chart_has_one_series_per_side_with_every_muscle_and_level(mrml_scene):
    image_node, seg_node, _ = _build_case(mrml_scene)
    logic = ParaspinalFatLogic(mrml_scene)
    result = logic.process(image_node, seg_node, subject="case1", pdff_scale="0-100")
    levels = result.measurement.levels
    chart = result.chartNode
    series = [chart.GetNthPlotSeriesNode(i) for i in range(chart.GetNumberOfPlotSeriesNodes())]
    assert [s.GetName() for s in series] == ["left", "right"]
    order = ["L3/4", "L4/5", "L5/S1"]
    positions = {}
    for s in series:
        assert s.GetPlotType() == slicer.vtkMRMLPlotSeriesNode.PlotTypeScatter
        assert s.GetYColumnName() == "fat_fraction_pct"
        columns = _table_columns(s.GetTableNode())
        x = columns[s.GetXColumnName()][1]
        y = columns[s.GetYColumnName()][1]
        labels = columns[s.GetLabelColumnName()][1]
        side_rows = levels[levels["side"] == s.GetName()]
        want = {f"{r.muscle} {r.level}": r.fat_fraction_pct for r in side_rows.itertuples()}
        assert len(y) == len(side_rows) and dict(zip(labels, y)) == want
        for label, pos in zip(labels, x):
            assert positions.setdefault(label, pos) == pos  # left and right share the x of a muscle x level
    # within each muscle, x follows the level order (cranial to caudal)
    for muscle in set(levels["muscle"]):
        xs = [positions[f"{muscle} {lv}"] for lv in order if f"{muscle} {lv}" in positions]
        assert xs == sorted(xs) and len(set(xs)) == len(xs) == 3
    assert "fat fraction" in chart.GetYAxisTitle()
    # multifidus: the analytic values of the two boxes
    assert positions["multifidus L4/5"] == positions["multifidus L3/4"] + 1


def test_outputs_are_reused_not_multiplied(mrml_scene):
    image_node, seg_node, _ = _build_case(mrml_scene, foreign=False)
    logic = ParaspinalFatLogic(mrml_scene)
    first = logic.process(image_node, seg_node, pdff_scale="0-100")
    counts = {c: mrml_scene.GetNumberOfNodesByClass(c) for c in
              ("vtkMRMLTableNode", "vtkMRMLPlotSeriesNode", "vtkMRMLPlotChartNode", "vtkMRMLSegmentationNode")}
    assert counts == {"vtkMRMLTableNode": 3, "vtkMRMLPlotSeriesNode": 2, "vtkMRMLPlotChartNode": 1,
                      "vtkMRMLSegmentationNode": 2}
    second = logic.process(image_node, seg_node, tableNode=first.tableNode, chartNode=first.chartNode,
                           overlayNode=first.overlayNode, pdff_scale="0-100", levels=["L4/5"])
    assert second.tableNode is first.tableNode and second.chartNode is first.chartNode
    assert {c: mrml_scene.GetNumberOfNodesByClass(c) for c in counts} == counts
    assert second.tableNode.GetNumberOfRows() == 3  # three muscles at L4/5
    assert second.chartNode.GetNumberOfPlotSeriesNodes() == 2
    assert segmentation_names(second.overlayNode) == ["fat", "lean", "undefined"]


# ------------------------------------------------------------------ tests: markups
def _points_node(scene, name, labelled_ijk):
    node = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", name)
    for label, ijk in labelled_ijk:
        node.AddControlPoint(vtk.vtkVector3d(*_ras(ijk)), label)
    return node


def _line_node(scene, name, ijk0, ijk1):
    node = scene.AddNewNodeByClass("vtkMRMLMarkupsLineNode", name)
    node.AddControlPoint(vtk.vtkVector3d(*_ras(ijk0)))
    node.AddControlPoint(vtk.vtkVector3d(*_ras(ijk1)))
    return node


def _oracle_with_markups(tmp_path, image_node, seg_node, markups_nodes, **options):
    image_path = _write_node(image_node, tmp_path / "pdff.nrrd")
    seg_path = _write_node(seg_node, tmp_path / "muscles.seg.nrrd")
    paths = [str(_write_node(node, tmp_path / f"{node.GetID()}.mrk.json")) for node in markups_nodes]
    return ParaspinalFatLib.measure(str(image_path), str(seg_path), markups=paths, **options)


def test_level_points_and_vertebra_points_from_point_lists(mrml_scene, tmp_path):
    image_node, seg_node, _ = _build_case(mrml_scene, with_vertebrae=False, foreign=False)
    # disc points (L4/5 placed 0.3 slice above slice 8), vertebra points L5 and S1 (-> L5/S1 at slice 12),
    # and a point whose label is no level (ignored with the library's warning)
    discs = _points_node(mrml_scene, "discs", [("L3/4", (24, 20, 4)), ("L4/5", (24, 20, 8.3)),
                                               ("note", (10, 10, 10))])
    vertebrae = _points_node(mrml_scene, "vertebrae", [("L5", (23, 12, 10)), ("S1", (23, 12, 14))])
    options = {"subject": "case2", "levels": ["L3/4", "L4/5", "L5/S1"], "pdff_scale": "0-100"}
    logic = ParaspinalFatLogic(mrml_scene)
    result = logic.process(image_node, seg_node, markupsNode=[discs, vertebrae], **options)
    oracle = _oracle_with_markups(tmp_path, image_node, seg_node, [discs, vertebrae], **options)
    _assert_table_equals_frame(result.tableNode, oracle.levels)
    rows = {(r.segment, r.level): r for r in oracle.levels.itertuples()}
    for level, k in LEVEL_SLICES.items():
        row = rows[("multifidus_left", level)]
        assert row.level_source == "markups" and row.slice_index == k
    assert rows[("multifidus_left", "L4/5")].slice_offset_mm == pytest.approx(0.3 * SPACING[2], abs=1e-9)
    assert any("'note'" in w and "not a vertebra or disc level" in w for w in result.warnings)
    # the level view of L4/5 on the image plane: the point projected onto slice 8
    views = {level: (center, normal) for level, center, normal in logic.levelViews(result)}
    center_ijk = np.linalg.inv(IJK_TO_RAS) @ np.array([*views["L4/5"][0], 1.0])
    np.testing.assert_allclose(center_ijk[:3], [24, 20, 8], atol=1e-9)
    np.testing.assert_allclose(views["L4/5"][1], (RAS_FROM_LPS[:3, :3] @ ROTATION[:, 2]), atol=1e-12)


def test_a_line_named_by_its_level_gives_the_disc_point_and_plane(mrml_scene, tmp_path):
    image_node, seg_node, _ = _build_case(mrml_scene, with_vertebrae=False, foreign=False)
    # a line along the disc of L4/5 on a sagittal view: front to back (image j axis) through slice 8
    line = _line_node(mrml_scene, "L4/5", (24, 8, 8), (24, 34, 8))
    points = _points_node(mrml_scene, "upper", [("L3/4", (24, 20, 4))])
    options = {"subject": "case3", "levels": ["L3/4", "L4/5"], "plane": "disc", "pdff_scale": "0-100"}
    logic = ParaspinalFatLogic(mrml_scene)
    result = logic.process(image_node, seg_node, markupsNode=[points, line], **options)
    oracle = _oracle_with_markups(tmp_path, image_node, seg_node, [points, line], **options)
    _assert_table_equals_frame(result.tableNode, oracle.levels)
    # the disc plane holds the line and the left-right axis: normal = line x (1, 0, 0), cranial
    direction = ROTATION[:, 1]
    normal = np.cross(direction, [1.0, 0.0, 0.0])
    normal = normal / np.linalg.norm(normal) * np.sign(normal[2])
    row = oracle.levels[(oracle.levels["segment"] == "multifidus_left") & (oracle.levels["level"] == "L4/5")]
    np.testing.assert_allclose(row[["plane_normal_lps_x", "plane_normal_lps_y", "plane_normal_lps_z"]]
                               .to_numpy(float)[0], normal, atol=1e-9)
    views = {level: (center, n) for level, center, n in logic.levelViews(result)}
    np.testing.assert_allclose(views["L4/5"][0], (_ras((24, 8, 8)) + _ras((24, 34, 8))) / 2, atol=1e-9)
    np.testing.assert_allclose(views["L4/5"][1], RAS_FROM_LPS[:3, :3] @ normal, atol=1e-9)


# ------------------------------------------------------------------ tests: scene save and reload
def test_results_survive_a_mrml_scene_save_and_reload(mrml_scene, scene_factory, tmp_path):
    image_node, seg_node, _ = _build_case(mrml_scene, foreign=False)
    logic = ParaspinalFatLogic(mrml_scene)
    result = logic.process(image_node, seg_node, subject="case4", pdff_scale="0-100")
    result.tableNode.SetName("levels table")
    for node in [image_node, seg_node, result.tableNode, result.overlayNode] + [
            result.chartNode.GetNthPlotSeriesNode(i).GetTableNode()
            for i in range(result.chartNode.GetNumberOfPlotSeriesNodes())]:
        storage = node.CreateDefaultStorageNode()
        mrml_scene.AddNode(storage)
        node.SetAndObserveStorageNodeID(storage.GetID())
        storage.SetFileName(str(tmp_path / f"{node.GetID()}.{storage.GetDefaultWriteFileExtension()}"))
        assert storage.WriteData(node) == 1, node.GetName()
    mrml_scene.SetRootDirectory(str(tmp_path))
    mrml_scene.SetURL(str(tmp_path / "scene.mrml"))
    assert mrml_scene.Commit() == 1

    loaded = scene_factory()
    loaded.SetURL(str(tmp_path / "scene.mrml"))
    assert loaded.Connect() == 1
    table = loaded.GetFirstNodeByName("levels table")
    assert table is not None and table.IsA("vtkMRMLTableNode")
    before, after = _table_columns(result.tableNode), _table_columns(table)
    assert list(after) == list(before) and table.GetNumberOfRows() == result.tableNode.GetNumberOfRows() == 9
    quoted = set()
    for name, (column, values) in before.items():
        column_after, values_after = after[name]
        assert table.GetColumnUnitLabel(name) == result.tableNode.GetColumnUnitLabel(name), name
        assert table.GetColumnDescription(name) == result.tableNode.GetColumnDescription(name) != "", name
        if isinstance(column, vtk.vtkStringArray):
            assert isinstance(column_after, vtk.vtkStringArray), name
            for a, b in zip(values, values_after):
                if '"' in a:  # Slicer's .tsv reader takes " as a string delimiter: such text is not kept
                    quoted.add(name)
                else:
                    assert a == b, name
        else:
            assert column_after.IsA("vtkDoubleArray"), name
            # Slicer's table writer keeps 6 significant digits
            np.testing.assert_allclose(values_after, values, rtol=5e-6, atol=0, equal_nan=True, err_msg=name)
    assert quoted == {"method_params"}
    assert table.GetColumnUnitLabel("csa_mm2") == "mm2" and table.GetColumnUnitLabel("mean") == "%"
    chart = loaded.GetFirstNodeByClass("vtkMRMLPlotChartNode")
    names = [chart.GetNthPlotSeriesNode(i).GetName() for i in range(chart.GetNumberOfPlotSeriesNodes())]
    assert names == ["left", "right"]
    assert all(chart.GetNthPlotSeriesNode(i).GetTableNode().GetNumberOfRows() > 0 for i in range(2))
    overlay = loaded.GetNodeByID(result.overlayNode.GetID())
    image = loaded.GetNodeByID(image_node.GetID())
    for name, value in (("lean", 1), ("fat", 3)):
        np.testing.assert_array_equal(_segment_mask(overlay, name, image),
                                      result.measurement.class_labelmap == value, err_msg=name)


# ------------------------------------------------------------------ tests: the sample case
def test_sample_case_gives_the_phantoms_truth(mrml_scene):
    logic = ParaspinalFatLogic(mrml_scene)
    image_node, seg_node, markups_node = logic.createSampleCase()
    assert markups_node is None and image_node.GetScene() is mrml_scene and seg_node.GetScene() is mrml_scene
    phantom = logic.samplePhantom
    reference = ParaspinalFatLib.make_phantom(**ParaspinalFatLogic.SAMPLE_PHANTOM_ARGUMENTS)
    assert reference.truth.equals(phantom.truth)
    result = logic.process(image_node, seg_node)
    levels = result.measurement.levels
    assert len(levels) == len(phantom.truth) == 18
    merged = levels.merge(phantom.truth, on=["segment", "level"], suffixes=("", "_truth"))
    assert len(merged) == 18
    np.testing.assert_array_equal(merged["slice_index"], merged["slice_index_truth"])
    np.testing.assert_array_equal(merged["n_voxels"], merged["n_voxels_truth"])
    np.testing.assert_allclose(merged["csa_mm2"], merged["csa_mm2_truth"], rtol=1e-12)
    np.testing.assert_allclose(merged["fat_fraction_pct"], merged["mean_pdff_pct"], rtol=1e-9)
    np.testing.assert_allclose(merged["median"], merged["median_pdff_pct"], rtol=1e-9)
    np.testing.assert_allclose(merged["sd"], merged["sd_pdff_pct"], rtol=1e-9)
    np.testing.assert_allclose(merged["fat_csa_mm2"], merged["fat_csa_mm2_truth"], rtol=1e-12)
    np.testing.assert_allclose(merged["lean_csa_mm2"], merged["lean_csa_mm2_truth"], rtol=1e-12)
    # the overlay's fat voxels on each level slice: the phantom's fat voxels of the ROI
    from ParaspinalFatLib.geometry import Geometry
    from ParaspinalFatLib.io.resample import resample_to_grid

    on_grid = resample_to_grid(phantom.segmentation, Geometry.from_sitk(phantom.image))
    fat = _segment_mask(result.overlayNode, "fat", image_node)
    for row in merged.itertuples():
        mask = on_grid.mask(row.segment)[row.slice_index]
        assert int((fat[row.slice_index] & mask).sum()) == row.n_fat, (row.segment, row.level)
    # the level views: the phantom's disc points (RAS), normal along the slice axis
    views = logic.levelViews(result)
    assert [v[0] for v in views] == ["L3/4", "L4/5", "L5/S1"]
    for level, center, normal in views:
        np.testing.assert_allclose(center, RAS_FROM_LPS[:3, :3] @ phantom.disc_points[level], atol=1e-9)
        np.testing.assert_allclose(normal, [0.0, 0.0, 1.0], atol=1e-12)


# ------------------------------------------------------------------ tests: Dixon, transforms, errors
def test_dixon_fat_and_water_nodes(mrml_scene):
    image_node, seg_node, _ = _build_case(mrml_scene, foreign=False)
    shape = (SIZE[2], SIZE[1], SIZE[0])
    fat = np.full(shape, 5.0, np.float32)
    water = np.full(shape, 95.0, np.float32)
    fat[:, :, :3], water[:, :, :3] = 90.0, 10.0
    fat[:, MF_LEFT[0], MF_LEFT[1]], water[:, MF_LEFT[0], MF_LEFT[1]] = 20.0, 80.0
    fat[:, MF_RIGHT[0], MF_RIGHT[1]], water[:, MF_RIGHT[0], MF_RIGHT[1]] = 150.0, 100.0
    fat_node = _volume_node(mrml_scene, fat, IJK_TO_RAS, "fat")
    water_node = _volume_node(mrml_scene, water, IJK_TO_RAS, "water")
    logic = ParaspinalFatLogic(mrml_scene)
    with pytest.raises(ValueError, match="needs the water volume"):
        logic.process(fat_node, seg_node, map_kind="dixon")
    result = logic.process(fat_node, seg_node, waterNode=water_node, map_kind="dixon", levels=["L4/5"])
    rows = {r.segment: r for r in result.measurement.levels.itertuples()}
    assert rows["multifidus_left"].fat_fraction_pct == pytest.approx(20.0, abs=1e-6)
    assert rows["multifidus_left"].ff_signal_weighted_pct == pytest.approx(20.0, abs=1e-6)
    assert rows["multifidus_right"].fat_fraction_pct == pytest.approx(60.0, abs=1e-6)
    assert rows["multifidus_right"].fat_csa_mm2 == pytest.approx(48 * PIXEL_AREA, rel=1e-12)
    # a water volume given with another map kind is not used, and the result says so
    other = logic.process(image_node, seg_node, waterNode=water_node, pdff_scale="0-100", levels=["L4/5"])
    assert any("water volume 'water' is not used" in w for w in other.warnings)


def test_a_linear_parent_transform_moves_image_and_segments_together(mrml_scene):
    image_node, seg_node, _ = _build_case(mrml_scene)
    logic = ParaspinalFatLogic(mrml_scene)
    plain = logic.process(image_node, seg_node, subject="s", pdff_scale="0-100")
    transform = mrml_scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "shift")
    shift = np.eye(4)
    shift[:3, 3] = (12.5, -7.25, 30.0)
    transform.SetMatrixTransformToParent(_vtk_matrix(shift))
    image_node.SetAndObserveTransformNodeID(transform.GetID())
    seg_node.SetAndObserveTransformNodeID(transform.GetID())
    moved = logic.process(image_node, seg_node, subject="s", pdff_scale="0-100")
    _assert_table_equals_frame(moved.tableNode, plain.measurement.levels)
    np.testing.assert_allclose(moved.landmarks[["x_lps_mm", "y_lps_mm", "z_lps_mm"]].to_numpy(float),
                               plain.landmarks[["x_lps_mm", "y_lps_mm", "z_lps_mm"]].to_numpy(float)
                               + RAS_FROM_LPS[:3, :3] @ shift[:3, 3], atol=1e-9)
    # the segmentation alone moved by whole voxels along i: the boxes measure elsewhere
    image_node.SetAndObserveTransformNodeID(None)
    seg_node.SetAndObserveTransformNodeID(None)
    bent = mrml_scene.AddNewNodeByClass("vtkMRMLTransformNode", "bent")
    tps = vtk.vtkThinPlateSplineTransform()
    source, target = vtk.vtkPoints(), vtk.vtkPoints()
    for p in ((0, 0, 0), (100, 0, 0), (0, 100, 0), (0, 0, 100)):
        source.InsertNextPoint(p)
        target.InsertNextPoint(p[0] + 1.0, p[1], p[2])
    tps.SetSourceLandmarks(source)
    tps.SetTargetLandmarks(target)
    bent.SetAndObserveTransformToParent(tps)
    seg_node.SetAndObserveTransformNodeID(bent.GetID())
    with pytest.raises(ValueError, match="segmentation 'muscles' is under the non-linear transform 'bent'"):
        logic.process(image_node, seg_node)


def test_unusable_inputs_are_refused_naming_the_node(mrml_scene):
    image_node, seg_node, _ = _build_case(mrml_scene, foreign=False)
    logic = ParaspinalFatLogic(mrml_scene)
    with pytest.raises(ValueError, match="no image volume selected"):
        logic.process(None, seg_node)
    with pytest.raises(ValueError, match="no segmentation selected"):
        logic.process(image_node, None)
    vector = mrml_scene.AddNewNodeByClass("vtkMRMLVectorVolumeNode", "rgb")
    data = vtk.vtkImageData()
    data.SetDimensions(4, 4, 4)
    data.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 3)
    vector.SetAndObserveImageData(data)
    with pytest.raises(ValueError, match="image volume 'rgb' has 3 values per voxel"):
        logic.process(vector, seg_node)
    empty = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "nothing")
    with pytest.raises(ValueError, match="segmentation 'nothing' has no segments"):
        logic.process(image_node, empty)
    with pytest.raises(ValueError, match="is the input segmentation"):
        logic.process(image_node, seg_node, overlayNode=seg_node)
    curve = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsCurveNode", "spine curve")
    with pytest.raises(ValueError, match="markups 'spine curve' is a vtkMRMLMarkupsCurveNode"):
        logic.process(image_node, seg_node, markupsNode=curve)
    with pytest.raises(ValueError, match="levels are given twice"):
        logic.process(image_node, seg_node, markupsNode=_points_node(mrml_scene, "p", [("L4/5", (1, 1, 8))]),
                      markups="levels.mrk.json")
    # the library's own refusals come through unchanged
    with pytest.raises(InputError, match="fat_threshold_pct"):
        logic.process(image_node, seg_node, fat_threshold_pct=150)
    with pytest.raises(ParaspinalFatLib.LevelError):
        logic.process(image_node, seg_node, levels=["L1/2"])


# ------------------------------------------------------------------ tests: parameters and packages
def test_options_from_parameters_good_input():
    f = ParaspinalFatLogic.optionsFromParameters
    defaults = {"mapKind": "pdff", "pdffScale": "auto", "fatThresholdPct": 50.0, "levels": "L3/4,L4/5,L5/S1",
                "plane": "image", "nSlices": 1, "unit": "", "goutallierCutoffs": "", "kjaerCutoffs": ""}
    assert sorted(defaults) == sorted(ParaspinalFatLogic.PARAMETER_OPTIONS)
    assert f(defaults) == {"map_kind": "pdff", "fat_threshold_pct": 50.0, "levels": ["L3/4", "L4/5", "L5/S1"],
                           "plane": "image", "n_slices": 1}
    opts = f({"mapKind": "CT", "pdffScale": "0-1000", "fatThresholdPct": "40,5", "levels": " L4-L5 ; l5s1, L3",
              "plane": "disc", "nSlices": "3", "unit": "HU", "goutallierCutoffs": "10,25,50,75",
              "kjaerCutoffs": "10; 50"})
    assert opts == {"map_kind": "ct", "pdff_scale": "0-1000", "fat_threshold_pct": 40.5,
                    "levels": ["L4/5", "L5/S1", "L3"], "plane": "disc", "n_slices": 3, "unit": "HU",
                    "goutallier_cutoffs": (10.0, 25.0, 50.0, 75.0), "kjaer_cutoffs": (10.0, 50.0)}
    assert f({"levels": "all"}) == {"levels": "all"}
    assert f({}) == {}
    # the options are accepted by the library as they are
    from ParaspinalFatLib.measurement.pipeline import MeasureOptions

    MeasureOptions.from_kwargs(**opts)
    MeasureOptions.from_kwargs(**f(defaults))


@pytest.mark.parametrize("field, value, words", [
    ("mapKind", "mri", "mapKind must be one of"),
    ("pdffScale", "percent", "pdffScale must be one of"),
    ("fatThresholdPct", "half", "fatThresholdPct must be a number"),
    ("fatThresholdPct", float("nan"), "fatThresholdPct must be a finite number"),
    ("levels", "L4/5, disc", "levels: 'disc' is not a vertebral level"),
    ("levels", " ", "levels is empty"),
    ("plane", "oblique", "plane must be one of"),
    ("nSlices", 2.5, "nSlices must be an odd whole number"),
    ("nSlices", 2, "nSlices must be an odd whole number"),
    ("fatThresholdPct", "150", "fatThresholdPct must be a fat percentage between 0 and 100"),
    ("nSlices", "x", "nSlices must be a number"),
    ("goutallierCutoffs", "5;x", "goutallierCutoffs must be numbers"),
    ("kjaerCutoffs", "10,fifty", "kjaerCutoffs must be numbers"),
    ("unit", 5, "unit must be text"),
    ("colour", "red", "unknown parameter(s) ['colour']"),
])
def test_options_from_parameters_bad_input_names_the_field(field, value, words):
    with pytest.raises(ValueError) as raised:
        ParaspinalFatLogic.optionsFromParameters({field: value})
    assert words in str(raised.value)


def test_missing_packages(monkeypatch):
    assert ParaspinalFatLogic.missingPackages() == []
    monkeypatch.setitem(sys.modules, "pandas", None)  # what Python does for a package that cannot be imported
    assert ParaspinalFatLogic.missingPackages() == ["pandas"]


def test_a_layer_outside_the_image_is_warned_and_only_all_outside_is_refused(mrml_scene):
    image_node, seg_node, _ = _build_case(mrml_scene, foreign=False)
    far = _ijk_to_lps()
    far[:3, 3] += (0.0, 0.0, 500.0)  # a grid 500 mm above the image
    box = np.ones((3, 4, 5), bool)
    assert seg_node.AddSegmentFromBinaryLabelmapRepresentation(_oriented_image(box, RAS_FROM_LPS @ far), "marker",
                                                               [1.0, 1.0, 0.0])
    logic = ParaspinalFatLogic(mrml_scene)
    with pytest.warns(ParaspinalFatLib.SegmentationWarning, match="'marker'"):
        result = logic.process(image_node, seg_node, pdff_scale="0-100", levels=["L4/5"])
    assert any("'marker'" in w and "does not overlap the image" in w for w in result.warnings)
    assert result.tableNode.GetNumberOfRows() == 3
    alone = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "far only")
    assert alone.AddSegmentFromBinaryLabelmapRepresentation(_oriented_image(box, RAS_FROM_LPS @ far), "marker",
                                                            [1.0, 1.0, 0.0])
    with pytest.raises(InputError, match="does not overlap the image"):
        logic.process(image_node, alone)

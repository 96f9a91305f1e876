"""Logic of the ParaspinalFat module: Slicer nodes in, the library's measurement, Slicer nodes out.

Qt-free, so that it runs inside the Slicer application and under the ``slicer-core``
wheel alike (the tests use the wheel's real MRML scene).  At file scope it imports only
the standard library, ``slicer``, ``vtk`` and ``numpy``; ``ParaspinalFatLib`` (and through
it pandas, SimpleITK, scipy) is imported inside the functions that need it, so that the
module loads in a Slicer without pandas and can offer to install it
(:meth:`ParaspinalFatLogic.missingPackages`).

No measurement is done here: :meth:`ParaspinalFatLogic.process` converts the nodes once,
in memory, calls :func:`ParaspinalFatLib.measure` and puts its results into nodes.

* Coordinates: Slicer works in RAS, the library in LPS; a point or an IJK-to-RAS matrix
  becomes LPS by negating x and y.  Linear parent transforms of the input nodes are
  applied (a non-linear one must be hardened first).
* Volume node -> ``SimpleITK.Image``: its voxel array and its IJK-to-RAS matrix (any
  direction matrix, anisotropic spacing) as LPS origin, spacing and direction.
* Segmentation node -> :class:`ParaspinalFatLib.segmentation.Segmentation` on the image
  grid, read from the node's internal binary labelmap *layers* (segments sharing a layer
  share one label array; ``GetLabelValue()`` is a segment's value in its layer): a layer
  on the image grid up to an extent shift (Slicer's cropped extents) is pasted at its
  offset, a layer on another grid is resampled (nearest neighbour, physical space), both by
  :func:`ParaspinalFatLib.io.resample.resample_to_grid`.
* Markups nodes -> :class:`ParaspinalFatLib.io.markups.InMemoryMarkups` (point lists with
  points labelled ``L4/5`` or ``L4``, ``L5``; lines named by their disc level), read by the
  same rules as a markups file.
* Results: the per-level table in a ``vtkMRMLTableNode`` (the library's column names;
  numbers as ``vtkDoubleArray``, text as ``vtkStringArray``; unit and description of every
  column), a ``vtkMRMLPlotChartNode`` (fat % per muscle x level, one series per side) and a
  ``vtkMRMLSegmentationNode`` with segments ``fat``, ``lean``, ``undefined`` on the image
  grid, voxel for voxel the library's class labelmap (what ``fat_labelmap`` writes).

Installed beside ``ParaspinalFat.py``, this file is also seen by Slicer's scripted-module
factory, which loads every ``.py`` file of the folder and instantiates the class named after
the file with a module object.  The Logic recognises that call and declares itself a
*hidden* module (no entry in the module list, no panel), the standard way of shipping a
helper next to a module; every other use passes a scene or nothing.

Known limit of Slicer's table storage (not of this module): a scene saved with the table
writes its numbers with 6 significant digits and cannot keep a double quote in a text
cell (``method_params`` is JSON); export the table as CSV for the exact values.
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import slicer
import vtk
from vtkmodules.util import numpy_support

__all__ = ["ParaspinalFatLogic", "ProcessResult", "SAMPLE_PHANTOM_ARGUMENTS",
           "imageFromVolumeNode", "segmentationFromNode", "markupsFromNodes", "fillTableNode",
           "chartQuantity"]

#: RAS <-> LPS: negate x and y (its own inverse)
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])

#: third-party import name -> pip requirement, checked by ParaspinalFatLogic.missingPackages()
#: (numpy is imported by this file itself; no Slicer release bundles pandas)
REQUIRED_PACKAGES: Tuple[Tuple[str, str], ...] = (("pandas", "pandas"), ("SimpleITK", "SimpleITK"),
                                                   ("scipy", "scipy"))

#: the phantom of ParaspinalFatLogic.createSampleCase(): ParaspinalFatLib.make_phantom arguments
#: (3-D muscles and box vertebrae L3..S1, so the levels come from the vertebra masks)
SAMPLE_PHANTOM_ARGUMENTS: Dict[str, Any] = {"mode": "3d"}

#: segments of the overlay, in this order (their label values are the library's CLASS_LABELS)
OVERLAY_SEGMENTS: Tuple[str, ...] = ("fat", "lean", "undefined")

#: choices of the text parameters (the library's MeasureOptions values)
MAP_KINDS = ("pdff", "dixon", "ct", "t1", "t2", "scalar")
PDFF_SCALES = ("0-1", "0-100", "0-1000")
PLANES = ("image", "disc")

#: attribute marking the chart's series and data tables this Logic made (replaced on the next run)
_MADE_BY = "ParaspinalFat.madeBy"

#: colour (RGB 0..1) of each side's chart series
_SIDE_COLORS = {"left": (0.85, 0.2, 0.2), "right": (0.2, 0.4, 0.85), "": (0.3, 0.6, 0.3)}
#: colours given in turn to segments without one (createSampleCase)
_SEGMENT_COLORS = ((0.85, 0.33, 0.31), (0.3, 0.6, 0.9), (0.95, 0.75, 0.2), (0.45, 0.75, 0.4),
                   (0.7, 0.45, 0.8), (0.9, 0.55, 0.3), (0.55, 0.55, 0.55), (0.4, 0.8, 0.8))


@dataclass
class ProcessResult:
    """What :meth:`ParaspinalFatLogic.process` made.

    Attributes
    ----------
    tableNode : vtkMRMLTableNode
        The per-level table (one row per muscle x side x level).
    chartNode : vtkMRMLPlotChartNode
        Fat % (or the map mean for a scalar map) per muscle x level, one series per side.
    overlayNode : vtkMRMLSegmentationNode
        Segments ``fat``, ``lean``, ``undefined`` on the image grid.
    landmarks : pandas.DataFrame
        The library's level points (LPS), ``CaseMeasurement.landmarks``.
    measurement : ParaspinalFatLib.measurement.pipeline.CaseMeasurement
        Everything the library measured (``levels``, ``summary()``, ``grades()``...).
    warnings : list of str
        The library's findings and this Logic's notes.
    geometry : ParaspinalFatLib.geometry.Geometry
        The image grid in LPS (used by :meth:`ParaspinalFatLogic.levelViews`).
    cranioCaudal : tuple of 3 float
        The spine axis (LPS) the slice orientation was chosen with.
    """

    tableNode: Any
    chartNode: Any
    overlayNode: Any
    landmarks: Any
    measurement: Any
    warnings: List[str] = field(default_factory=list)
    geometry: Any = None
    cranioCaudal: Tuple[float, float, float] = (0.0, 0.0, 1.0)


# --------------------------------------------------------------------------- conversions
def _vtkMatrixToArray(matrix) -> np.ndarray:
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)], dtype=float)


def _arrayToVtkMatrix(array) -> "vtk.vtkMatrix4x4":
    matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, float(array[r][c]))
    return matrix


def _nodeToWorld(node, what: str) -> np.ndarray:
    """4x4 matrix from the node's coordinates to world RAS (identity without a parent transform).

    Raises
    ------
    ValueError
        The parent transform is not linear.
    """
    transformNode = node.GetParentTransformNode()
    if transformNode is None:
        return np.eye(4)
    if not transformNode.IsTransformToWorldLinear():
        raise ValueError(f"{what} '{node.GetName()}' is under the non-linear transform '{transformNode.GetName()}'; "
                         "harden the transform (Data module: right-click > Harden transform) and apply again")
    matrix = vtk.vtkMatrix4x4()
    transformNode.GetMatrixTransformToWorld(matrix)
    return _vtkMatrixToArray(matrix)


def _extentShape(extent) -> Optional[Tuple[int, int, int]]:
    """numpy shape (k, j, i) of a VTK extent, or None when it is empty."""
    ni, nj, nk = (extent[1] - extent[0] + 1, extent[3] - extent[2] + 1, extent[5] - extent[4] + 1)
    if ni <= 0 or nj <= 0 or nk <= 0:
        return None
    return (nk, nj, ni)


def _gridGeometry(ijkToRas: np.ndarray, extent):
    """The library's LPS Geometry of the voxels of ``extent`` under an IJK-to-RAS matrix."""
    from ParaspinalFatLib.geometry import Geometry

    ijkToLps = _RAS_TO_LPS @ ijkToRas
    start = np.array([extent[0], extent[2], extent[4], 1.0], dtype=float)
    matrix = ijkToLps.copy()
    matrix[:3, 3] = (ijkToLps @ start)[:3]  # the origin is the first voxel of the extent
    shape = _extentShape(extent)
    return Geometry.from_ijk_to_lps((shape[2], shape[1], shape[0]), matrix)


def _scalarArray(imageData, shape, what: str) -> np.ndarray:
    """The scalars of a vtkImageData as a numpy (k, j, i) array (a view of VTK's memory)."""
    scalars = imageData.GetPointData().GetScalars() if imageData is not None else None
    if scalars is None:
        raise ValueError(f"{what} has no voxel data")
    if scalars.GetNumberOfComponents() != 1:
        raise ValueError(f"{what} has {scalars.GetNumberOfComponents()} values per voxel; a scalar image (one "
                         "value per voxel) is needed: extract one component first (Vector to Scalar Volume module)")
    return numpy_support.vtk_to_numpy(scalars).reshape(shape)


def imageFromVolumeNode(volumeNode, what: str = "image volume"):
    """The volume as a ``SimpleITK.Image`` in LPS: its voxels and its full geometry.

    Parameters
    ----------
    volumeNode : vtkMRMLScalarVolumeNode
        The volume (a linear parent transform is applied).
    what : str
        How messages name it (``"image volume"``, ``"water volume"``).

    Returns
    -------
    SimpleITK.Image
        The voxel values in their own type; origin, spacing and direction (LPS) from the
        node's IJK-to-RAS matrix (any direction matrix, anisotropic spacing).

    Raises
    ------
    ValueError
        No node, not a scalar volume, no voxels, several values per voxel, a
        non-linear parent transform.
    """
    import SimpleITK as sitk

    if volumeNode is None:
        raise ValueError(f"no {what} selected")
    if not volumeNode.IsA("vtkMRMLScalarVolumeNode"):
        raise ValueError(f"{what} '{volumeNode.GetName()}' is a {volumeNode.GetClassName()}, not a scalar volume")
    imageData = volumeNode.GetImageData()
    name = f"{what} '{volumeNode.GetName()}'"
    shape = _extentShape(imageData.GetExtent()) if imageData is not None else None
    if shape is None:
        raise ValueError(f"{name} has no voxel data")
    array = _scalarArray(imageData, shape, name)
    ijkToRas = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(ijkToRas)
    geometry = _gridGeometry(_nodeToWorld(volumeNode, what) @ _vtkMatrixToArray(ijkToRas), imageData.GetExtent())
    image = sitk.GetImageFromArray(array)  # copies the voxels
    geometry.apply_to_sitk(image)
    return image


def segmentationFromNode(segmentationNode, geometry):
    """The node's segments as the library's ``Segmentation`` on the image grid, from its layers.

    Each internal binary labelmap layer is read once (no export per segment): segments
    sharing a layer share its label array, a segment's voxels are those equal to its
    ``GetLabelValue()``.  A layer on the image grid up to an extent shift (Slicer's
    cropped extents) is pasted at its offset; a layer on another grid is resampled onto
    the image grid (nearest neighbour in physical space), both by the library's
    :func:`~ParaspinalFatLib.io.resample.resample_to_grid`.

    Parameters
    ----------
    segmentationNode : vtkMRMLSegmentationNode
        The segmentation (binary labelmaps are made from another source representation;
        a linear parent transform is applied).
    geometry : ParaspinalFatLib.geometry.Geometry
        The image grid (LPS).

    Returns
    -------
    ParaspinalFatLib.segmentation.Segmentation
        One layer per Slicer layer, on ``geometry``; segments in the node's order
        (name, layer, label value, segment ID, colour).

    Raises
    ------
    ValueError
        No node, no segment, no binary labelmap, non-integer labelmaps, a non-linear
        parent transform.
    InputError
        No layer overlaps the image (library message).  A layer that does not overlap
        it while others do gives a ``SegmentationWarning`` and leaves its segments empty.
    """
    from ParaspinalFatLib.errors import InputError, SegmentationWarning
    from ParaspinalFatLib.segmentation import Segment, Segmentation

    if segmentationNode is None:
        raise ValueError("no segmentation selected")
    name = f"segmentation '{segmentationNode.GetName()}'"
    segmentation = segmentationNode.GetSegmentation()
    if segmentation.GetNumberOfSegments() == 0:
        raise ValueError(f"{name} has no segments")
    rep = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
    if not segmentation.ContainsRepresentation(rep) and not segmentationNode.CreateBinaryLabelmapRepresentation():
        raise ValueError(f"{name} has no binary labelmap and none could be made from its "
                         f"{segmentation.GetSourceRepresentationName()}")
    toWorld = _nodeToWorld(segmentationNode, "segmentation")
    segments = []
    for segmentId in segmentation.GetSegmentIDs():
        segment = segmentation.GetSegment(segmentId)
        segments.append(Segment(segment.GetName(), int(segmentation.GetLayerIndex(segmentId, rep)),
                                int(segment.GetLabelValue()), str(segmentId),
                                tuple(float(c) for c in segment.GetColor())))
    images = [segmentation.GetLayerDataObject(layer, rep) for layer in range(segmentation.GetNumberOfLayers(rep))]
    # one array for every layer, filled layer by layer: no second copy of the layers on the image grid
    stacked = np.zeros((len(images),) + tuple(geometry.shape), dtype=np.result_type(*[_labelType(i) for i in images]))
    outside = []  # layers with voxels, none of them in the image (the library's InputError)
    filled = 0
    for layer, image in enumerate(images):
        mine = [Segment(s.name, 0, s.label_value, s.segment_id, s.color) for s in segments if s.layer == layer]
        where = f"{name} (layer {layer}: {', '.join(repr(s.name) for s in mine)})"
        try:
            on_grid = _layerOnGrid(image, toWorld, geometry, mine, where)
        except InputError as exc:
            outside.append(exc)
            continue
        if on_grid is not None:
            stacked[layer] = on_grid
            filled += 1
    if outside and not filled:
        raise outside[0]
    for exc in outside:  # as the library does for a file: voxels outside the image are lost, with a warning
        warnings.warn(f"{exc}; its segments are empty here", SegmentationWarning, stacklevel=2)
    return Segmentation(stacked, geometry, segments, source=name)


def _labelType(image) -> np.dtype:
    """numpy type of a layer's labels (uint8 for an empty layer)."""
    if image is None or _extentShape(image.GetExtent()) is None or image.GetPointData().GetScalars() is None:
        return np.dtype(np.uint8)
    return np.dtype(numpy_support.get_numpy_array_type(image.GetScalarType()))


def _layerOnGrid(image, toWorld, geometry, segments, source: str) -> Optional[np.ndarray]:
    """One layer (vtkOrientedImageData) as a label array on the image grid (pasted or resampled).

    None for an empty layer (its segments have no voxel).  The array may be a view of
    VTK's memory (a layer already on the image grid): copy it before the layer changes.
    """
    from ParaspinalFatLib.io.resample import resample_to_grid
    from ParaspinalFatLib.segmentation import Segmentation

    shape = _extentShape(image.GetExtent()) if image is not None else None
    if shape is None:
        return None
    array = _scalarArray(image, shape, source)
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{source}: the labelmap holds {array.dtype} values, not integer labels")
    imageToWorld = vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(imageToWorld)
    layerGeometry = _gridGeometry(toWorld @ _vtkMatrixToArray(imageToWorld), image.GetExtent())
    part = Segmentation(array[np.newaxis], layerGeometry, segments, source=source)
    return resample_to_grid(part, geometry).layers[0]


def markupsFromNodes(markupsNodes):
    """Point lists and lines as the library's in-memory markups (world RAS, placed points only used).

    Parameters
    ----------
    markupsNodes : vtkMRMLMarkupsNode or sequence of them
        Point lists (``vtkMRMLMarkupsFiducialNode``: points labelled ``L4/5``, or
        vertebra points ``L4``, ``L5``) and lines (``vtkMRMLMarkupsLineNode`` named with
        the disc level, e.g. ``L4/5``, or whose first point is).

    Returns
    -------
    ParaspinalFatLib.io.markups.InMemoryMarkups
        Read by the library as a markups file would be.

    Raises
    ------
    ValueError
        A node that is neither a point list nor a line.
    """
    from ParaspinalFatLib.io.markups import InMemoryMarkups, Markup

    nodes = list(markupsNodes) if isinstance(markupsNodes, (list, tuple)) else [markupsNodes]
    markups = []
    for node in nodes:
        if node.IsA("vtkMRMLMarkupsLineNode"):
            kind = "Line"
        elif node.IsA("vtkMRMLMarkupsFiducialNode"):
            kind = "Fiducial"
        else:
            raise ValueError(f"markups '{node.GetName()}' is a {node.GetClassName()}; levels are read from a point "
                             "list (points labelled L4/5, or L4 and L5) or a line named with its disc level")
        n = node.GetNumberOfControlPoints()
        positions = np.zeros((n, 3))
        for i in range(n):
            node.GetNthControlPointPositionWorld(i, positions[i])
        labels = [node.GetNthControlPointLabel(i) for i in range(n)]
        placed = [node.GetNthControlPointPositionStatus(i) == node.PositionDefined for i in range(n)]
        markups.append(Markup(node.GetName(), kind, labels, positions, "RAS", placed))
    shown = ", ".join(f"'{node.GetName()}'" for node in nodes)
    return InMemoryMarkups(tuple(markups), source=f"markups {shown}")


def _isNumeric(series) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype))


def _text(value) -> str:
    """A table cell as text: ``""`` for a missing value (None, NaN, pandas.NA)."""
    import pandas as pd

    return "" if value is None or (not isinstance(value, str) and bool(pd.isna(value))) else str(value)


def fillTableNode(tableNode, levels) -> None:
    """Put a per-level table into a table node (its previous columns are removed).

    Parameters
    ----------
    tableNode : vtkMRMLTableNode
        The node to fill.
    levels : pandas.DataFrame
        The library's per-level table: numeric columns become ``vtkDoubleArray``, the
        others ``vtkStringArray`` (missing text as ``""``); each column gets its unit
        (:func:`ParaspinalFatLib.schemas.level_column_units`) and description
        (:data:`ParaspinalFatLib.schemas.LEVEL_COLUMN_DESCRIPTIONS`).
    """
    from ParaspinalFatLib.schemas import LEVEL_COLUMN_DESCRIPTIONS, level_column_units

    units = level_column_units(levels)
    wasModifying = tableNode.StartModify()
    try:
        tableNode.RemoveAllColumns()
        for column in levels.columns:
            series = levels[column]
            if _isNumeric(series):
                values = np.ascontiguousarray(series.to_numpy(dtype=float, na_value=np.nan))
                array = numpy_support.numpy_to_vtk(values, deep=1, array_type=vtk.VTK_DOUBLE)
            else:
                array = vtk.vtkStringArray()
                array.SetNumberOfValues(len(series))
                for row, value in enumerate(series.tolist()):
                    array.SetValue(row, _text(value))
            array.SetName(str(column))
            tableNode.AddColumn(array)
            tableNode.SetColumnUnitLabel(str(column), units.get(column, ""))
            tableNode.SetColumnDescription(str(column), LEVEL_COLUMN_DESCRIPTIONS.get(column, ""))
        tableNode.SetUseColumnTitleAsColumnHeader(True)
        tableNode.SetLocked(True)  # results: not edited in the table view
    finally:
        tableNode.EndModify(wasModifying)
    tableNode.Modified()


def chartQuantity(levels) -> Tuple[str, str]:
    """The column the chart shows and its axis title.

    Parameters
    ----------
    levels : pandas.DataFrame
        The per-level table.

    Returns
    -------
    column : str
        ``fat_fraction_pct`` (PDFF, Dixon), else ``grade_fat_pct`` (the fat area % of
        CT, T1, T2), else ``mean`` (a scalar map).
    title : str
        Axis title with the unit.
    """
    for column, title in (("fat_fraction_pct", "mean fat fraction (%)"), ("grade_fat_pct", "fat area (%)")):
        if column in levels.columns and np.isfinite(levels[column].to_numpy(dtype=float, na_value=np.nan)).any():
            return column, title
    from ParaspinalFatLib.schemas import level_column_units

    unit = level_column_units(levels).get("mean", "")
    return "mean", f"mean ({unit})" if unit else "mean"


# --------------------------------------------------------------------------- the Logic
class ParaspinalFatLogic:
    """Measure paraspinal muscle fat from Slicer nodes (Qt-free; see the module notes).

    Parameters
    ----------
    scene : vtkMRMLScene, optional
        The scene to read and fill (default ``slicer.mrmlScene``).

    Attributes
    ----------
    samplePhantom : ParaspinalFatLib.phantom.Phantom or None
        The phantom of the last :meth:`createSampleCase` (its ``truth`` table holds the
        expected values).
    """

    #: parameter-node fields :meth:`optionsFromParameters` understands
    PARAMETER_OPTIONS: Tuple[str, ...] = ("mapKind", "pdffScale", "fatThresholdPct", "levels", "plane", "nSlices",
                                          "unit", "goutallierCutoffs", "kjaerCutoffs")
    #: make_phantom arguments of :meth:`createSampleCase`
    SAMPLE_PHANTOM_ARGUMENTS = SAMPLE_PHANTOM_ARGUMENTS

    def __init__(self, scene=None) -> None:
        self.samplePhantom = None
        if _isModuleParent(scene):
            _declareHiddenModule(scene)
            self.scene = None
            return
        self.scene = scene if scene is not None else slicer.mrmlScene

    # ------------------------------------------------------------------ process
    def process(self, imageNode, segmentationNode, markupsNode=None, waterNode=None, tableNode=None,
                chartNode=None, overlayNode=None, progress: Optional[Callable[[float, str], Any]] = None,
                **options) -> ProcessResult:
        """Measure every muscle x side x level and fill the output nodes.

        Parameters
        ----------
        imageNode : vtkMRMLScalarVolumeNode
            The map to measure (PDFF, CT, T1/T2, any scalar map); for ``map_kind="dixon"``
            the fat image.
        segmentationNode : vtkMRMLSegmentationNode
            Muscle segments (and optionally vertebra/disc segments for the levels).
        markupsNode : vtkMRMLMarkupsNode or sequence of them, optional
            Level points (point list) or disc lines (see :func:`markupsFromNodes`).
        waterNode : vtkMRMLScalarVolumeNode, optional
            The Dixon water image (used only for ``map_kind="dixon"``, where it is needed).
        tableNode, chartNode, overlayNode : optional
            Output nodes to reuse; new ones are added to the scene when not given.
        progress : callable, optional
            ``progress(fraction, text)`` with fraction in 0..1.
        **options
            :class:`ParaspinalFatLib.MeasureOptions` names (``map_kind``, ``pdff_scale``,
            ``levels``, ``plane``, ``n_slices``, ``unit``, cut-offs...).  ``subject``
            defaults to the image node's name.

        Returns
        -------
        ProcessResult

        Raises
        ------
        ValueError
            Missing or unusable nodes (the message names the node), an option given twice
            (a node and the same option).
        ParaspinalFatLib.InputError, LevelError, MeasurementError
            The library's refusals (unusable options, levels not found, empty ROIs...).
        """
        from ParaspinalFatLib import measure

        report = progress if progress is not None else (lambda fraction, text="": None)
        notes: List[str] = []
        options = dict(options)
        self._checkOptionConflicts(options, markupsNode, waterNode, overlayNode, segmentationNode)
        mapKind = str(options.get("map_kind", "pdff")).lower()

        report(0.0, "Reading the image")
        image = imageFromVolumeNode(imageNode, "fat volume" if mapKind == "dixon" else "image volume")
        from ParaspinalFatLib.geometry import Geometry

        geometry = Geometry.from_sitk(image)
        if mapKind == "dixon":
            if waterNode is None:
                raise ValueError("map kind 'dixon' needs the water volume (and the fat volume as the image)")
            options["water"] = imageFromVolumeNode(waterNode, "water volume")
        elif waterNode is not None:
            notes.append(f"water volume '{waterNode.GetName()}' is not used: map kind is '{mapKind}', not 'dixon'")
        report(0.1, "Reading the segmentation")
        with warnings.catch_warnings(record=True) as caught:  # e.g. voxels of a layer outside the image
            warnings.simplefilter("always")
            segmentation = segmentationFromNode(segmentationNode, geometry)
        for found in caught:
            notes.append(str(found.message))
            warnings.warn_explicit(found.message, found.category, found.filename, found.lineno)
        if markupsNode is not None:
            options["markups"] = markupsFromNodes(markupsNode)
        options.setdefault("subject", imageNode.GetName())

        report(0.25, "Measuring")
        measurement = measure(image, segmentation, class_labelmap=True, **options)

        report(0.8, "Filling the table")
        tableNode = tableNode if tableNode is not None else self._newNode("vtkMRMLTableNode", "ParaspinalFat table")
        fillTableNode(tableNode, measurement.levels)
        report(0.85, "Making the chart")
        chartNode = chartNode if chartNode is not None else self._newNode("vtkMRMLPlotChartNode", "ParaspinalFat chart")
        self._fillChart(chartNode, measurement.levels)
        report(0.9, "Making the fat overlay")
        if overlayNode is None:
            overlayNode = self._newNode("vtkMRMLSegmentationNode", "ParaspinalFat fat overlay")
        self._fillOverlay(overlayNode, measurement.class_labelmap, geometry)
        report(1.0, "Done")
        findings = notes + [text for text in measurement.warnings if text not in notes]
        return ProcessResult(tableNode, chartNode, overlayNode, measurement.landmarks, measurement, findings,
                             geometry, tuple(float(v) for v in options.get("cranio_caudal", (0.0, 0.0, 1.0))))

    @staticmethod
    def _checkOptionConflicts(options, markupsNode, waterNode, overlayNode, segmentationNode) -> None:
        if markupsNode is not None and options.get("markups") is not None:
            raise ValueError("levels are given twice: as a markups node and as the markups option; give one")
        if options.get("water") is not None or options.get("fat") is not None:
            raise ValueError("give the Dixon images as nodes (image = fat volume, waterNode = water volume), not as "
                             "the water/fat options")
        if "class_labelmap" in options:
            raise ValueError("class_labelmap is not an option of process(): the classes are always returned (overlay)")
        if overlayNode is not None and segmentationNode is not None and overlayNode is segmentationNode:
            raise ValueError(f"the output overlay '{overlayNode.GetName()}' is the input segmentation; choose another "
                             "segmentation node (or none) for the overlay")

    def _newNode(self, className: str, name: str):
        return self.scene.AddNewNodeByClass(className, self.scene.GenerateUniqueName(name))

    # ------------------------------------------------------------------ chart
    def _fillChart(self, chartNode, levels) -> None:
        """One scatter series per side: fat % at each muscle x level (x = position in that order)."""
        from ParaspinalFatLib.anatomy.level_names import level_sort_key

        column, title = chartQuantity(levels)
        self._removeOwnSeries(chartNode)
        chartNode.SetTitle(f"{title} per muscle and level")
        chartNode.SetYAxisTitle(title)
        chartNode.SetLegendVisibility(True)
        if not len(levels):
            chartNode.SetXAxisTitle("muscle and level")
            return
        muscles = list(dict.fromkeys(str(m) for m in levels["muscle"]))
        levelNames = sorted({str(lv) for lv in levels["level"]}, key=level_sort_key)
        position = {(m, lv): 1 + i * (len(levelNames) + 1) + j
                    for i, m in enumerate(muscles) for j, lv in enumerate(levelNames)}
        sides = sorted(dict.fromkeys(_text(s) for s in levels["side"]), key=_sideOrder)
        for side in sides:
            part = levels[[_text(s) == side for s in levels["side"]]]
            rowMuscles = [str(m) for m in part["muscle"]]
            rowLevels = [str(lv) for lv in part["level"]]
            rowSegments = [str(sg) for sg in part["segment"]]
            order = sorted(range(len(part)), key=lambda r: (position[(rowMuscles[r], rowLevels[r])], rowSegments[r]))
            label = side or "no side"
            data = self._newNode("vtkMRMLTableNode", f"{chartNode.GetName()} {label}")
            data.SetAttribute(_MADE_BY, "chart data")
            x = vtk.vtkDoubleArray()
            x.SetName("position")
            y = vtk.vtkDoubleArray()
            y.SetName(column)
            names = vtk.vtkStringArray()
            names.SetName("muscle_level")
            values = part[column].to_numpy(dtype=float, na_value=np.nan)
            for r in order:
                x.InsertNextValue(float(position[(rowMuscles[r], rowLevels[r])]))
                y.InsertNextValue(float(values[r]))
                names.InsertNextValue(f"{rowMuscles[r]} {rowLevels[r]}")
            for array in (x, y, names):
                data.AddColumn(array)
            series = self._newNode("vtkMRMLPlotSeriesNode", f"{chartNode.GetName()} {label}")
            series.SetName(label)
            series.SetAttribute(_MADE_BY, "chart series")
            series.SetAndObserveTableNodeID(data.GetID())
            series.SetXColumnName("position")
            series.SetYColumnName(column)
            series.SetLabelColumnName("muscle_level")
            series.SetPlotType(slicer.vtkMRMLPlotSeriesNode.PlotTypeScatter)
            series.SetLineStyle(slicer.vtkMRMLPlotSeriesNode.LineStyleNone)
            series.SetMarkerStyle(slicer.vtkMRMLPlotSeriesNode.MarkerStyleCircle if side != "right"
                                  else slicer.vtkMRMLPlotSeriesNode.MarkerStyleSquare)
            series.SetColor(*_SIDE_COLORS.get(side, _SIDE_COLORS[""]))
            chartNode.AddAndObservePlotSeriesNodeID(series.GetID())
        ranges = "; ".join(f"{m} {position[(m, levelNames[0])]}-{position[(m, levelNames[-1])]}" for m in muscles)
        chartNode.SetXAxisTitle(f"muscle and level ({ranges}; levels {', '.join(levelNames)} cranial to caudal)")
        chartNode.Modified()

    def _removeOwnSeries(self, chartNode) -> None:
        """Remove the series (and their data tables) a previous run put into this chart."""
        ours = []
        for i in range(chartNode.GetNumberOfPlotSeriesNodes()):
            series = chartNode.GetNthPlotSeriesNode(i)
            if series is not None and series.GetAttribute(_MADE_BY):
                ours.append(series)
        for series in ours:
            chartNode.RemovePlotSeriesNodeID(series.GetID())
            data = series.GetTableNode()
            if data is not None and data.GetAttribute(_MADE_BY) and data.GetScene() is not None:
                data.GetScene().RemoveNode(data)
            if series.GetScene() is not None:
                series.GetScene().RemoveNode(series)

    # ------------------------------------------------------------------ overlay
    def _fillOverlay(self, overlayNode, classes: np.ndarray, geometry) -> None:
        """Segments fat, lean and undefined sharing one labelmap: the library's class array."""
        from ParaspinalFatLib.report.case_files import CLASS_COLORS, CLASS_LABELS

        nk, nj, ni = classes.shape
        image = slicer.vtkOrientedImageData()
        image.SetExtent(0, ni - 1, 0, nj - 1, 0, nk - 1)
        image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
        numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())[:] = classes.astype(np.uint8).ravel()
        image.SetImageToWorldMatrix(_arrayToVtkMatrix(_RAS_TO_LPS @ geometry.ijk_to_lps))
        segmentation = overlayNode.GetSegmentation()
        wasModifying = overlayNode.StartModify()
        try:
            segmentation.RemoveAllSegments()
            converter = slicer.vtkSegmentationConverter
            segmentation.SetSourceRepresentationName(converter.GetBinaryLabelmapRepresentationName())
            segmentation.SetConversionParameter(converter.GetReferenceImageGeometryParameterName(),
                                                converter.SerializeImageGeometry(image))
            for name in OVERLAY_SEGMENTS:
                segment = slicer.vtkSegment()
                segment.SetName(name)
                segment.SetLabelValue(int(CLASS_LABELS[name]))
                segment.SetColor(*CLASS_COLORS[name])
                segment.AddRepresentation(converter.GetBinaryLabelmapRepresentationName(), image)
                segmentation.AddSegment(segment, name)
        finally:
            overlayNode.EndModify(wasModifying)
        if overlayNode.GetDisplayNode() is None:
            overlayNode.CreateDefaultDisplayNodes()

    # ------------------------------------------------------------------ level views
    def levelViews(self, result: ProcessResult) -> List[Tuple[str, np.ndarray, np.ndarray]]:
        """Where each measured level lies: the plane centre and its normal, in RAS.

        Parameters
        ----------
        result : ProcessResult
            A result of :meth:`process`.

        Returns
        -------
        list of (str, numpy.ndarray, numpy.ndarray)
            ``(level, centerRAS, normalRAS)`` per measured level, cranial to caudal.
            ``plane="image"``: the normal of the image slices (pointing cranially) and the
            level point projected onto the measured slice (the slice's in-plane centre when
            the level has no point, e.g. 2-D ROIs named with their level);
            ``plane="disc"``: the level point and the disc-plane normal.
        """
        from ParaspinalFatLib.anatomy.level_names import level_sort_key

        levels = result.measurement.levels
        if not len(levels):
            return []
        geometry = result.geometry
        axis = geometry.slice_axis(result.cranioCaudal)
        sliceNormal = geometry.plane_normal(axis)  # towards increasing index on the slice axis
        marks = result.landmarks
        points = {str(row.level): np.array([row.x_lps_mm, row.y_lps_mm, row.z_lps_mm], dtype=float)
                  for row in marks.itertuples()} if marks is not None and len(marks) else {}
        views = []
        for level in sorted({str(v) for v in levels["level"]}, key=level_sort_key):
            rows = levels[levels["level"] == level]
            normal = rows[["plane_normal_lps_x", "plane_normal_lps_y", "plane_normal_lps_z"]].to_numpy(float)[0]
            point = points.get(level)
            if str(rows["plane"].iloc[0]) == "disc" and point is not None:
                center = point
            else:
                sliceIndex = int(rows["slice_index"].mode().iloc[0])
                ijk = (np.asarray(geometry.size, dtype=float) - 1.0) / 2.0
                ijk[axis] = sliceIndex
                onSlice = geometry.index_to_physical(ijk)
                center = onSlice if point is None else point - float((point - onSlice) @ sliceNormal) * sliceNormal
            views.append((level, _lpsToRas(center), _lpsToRas(normal / np.linalg.norm(normal))))
        return views

    # ------------------------------------------------------------------ sample case
    def createSampleCase(self) -> Tuple[Any, Any, Any]:
        """A phantom PDFF case (``ParaspinalFatLib.make_phantom``) as nodes in the scene; works offline.

        Returns
        -------
        tuple
            ``(imageNode, segmentationNode, None)``: the PDFF map (0-100 %) and its muscle
            and vertebra segments (levels come from the vertebrae, so no markups).  The
            phantom, with its ``truth`` table, is kept in :attr:`samplePhantom`.
        """
        import SimpleITK as sitk
        from ParaspinalFatLib import make_phantom
        from ParaspinalFatLib.geometry import Geometry

        phantom = make_phantom(**SAMPLE_PHANTOM_ARGUMENTS)
        self.samplePhantom = phantom
        geometry = Geometry.from_sitk(phantom.image)
        imageNode = self.volumeNodeFromArray(sitk.GetArrayFromImage(phantom.image), geometry,
                                             "ParaspinalFat sample PDFF")
        displayNode = imageNode.GetDisplayNode()
        if displayNode is not None and phantom.pdff_scale == "0-100":
            displayNode.AutoWindowLevelOff()
            displayNode.SetWindowLevel(100.0, 50.0)
        segmentationNode = self.segmentationNodeFromLibrary(phantom.segmentation, "ParaspinalFat sample muscles",
                                                            imageNode, geometry)
        return imageNode, segmentationNode, None

    def volumeNodeFromArray(self, array: np.ndarray, geometry, name: str):
        """A scalar volume node holding a ``(k, j, i)`` array on an LPS grid.

        Parameters
        ----------
        array : numpy.ndarray
            Voxel values, numpy order ``(k, j, i)``.
        geometry : ParaspinalFatLib.geometry.Geometry
            Their grid (LPS).
        name : str
            Node name (made unique in the scene).

        Returns
        -------
        vtkMRMLScalarVolumeNode
            Added to the scene, with display nodes.
        """
        array = np.ascontiguousarray(array)
        nk, nj, ni = array.shape
        imageData = vtk.vtkImageData()
        imageData.SetDimensions(ni, nj, nk)
        imageData.AllocateScalars(numpy_support.get_vtk_array_type(array.dtype), 1)
        numpy_support.vtk_to_numpy(imageData.GetPointData().GetScalars())[:] = array.ravel()
        node = self._newNode("vtkMRMLScalarVolumeNode", name)
        node.SetAndObserveImageData(imageData)
        node.SetIJKToRASMatrix(_arrayToVtkMatrix(_RAS_TO_LPS @ geometry.ijk_to_lps))
        node.CreateDefaultDisplayNodes()
        return node

    def segmentationNodeFromLibrary(self, segmentation, name: str, referenceNode=None, referenceGeometry=None):
        """A segmentation node holding a library ``Segmentation`` (one Slicer layer per layer).

        Parameters
        ----------
        segmentation : ParaspinalFatLib.segmentation.Segmentation
            Layers, geometry (LPS) and segments.
        name : str
            Node name (made unique in the scene).
        referenceNode : vtkMRMLScalarVolumeNode, optional
            Volume whose geometry becomes the node's reference geometry.
        referenceGeometry : ParaspinalFatLib.geometry.Geometry, optional
            That volume's grid: a layer on it up to a shift is stored with an extent
            offset in its index space (as Slicer crops), otherwise on its own grid.

        Returns
        -------
        vtkMRMLSegmentationNode
            Added to the scene, with display nodes; segments sharing a layer share one
            labelmap (their label values as in ``segmentation``).
        """
        from ParaspinalFatLib.io.resample import crop_offset

        node = self._newNode("vtkMRMLSegmentationNode", name)
        node.CreateDefaultDisplayNodes()
        if referenceNode is not None:
            node.SetReferenceImageGeometryParameterFromVolumeNode(referenceNode)
        rep = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
        target = node.GetSegmentation()
        offset = crop_offset(segmentation.geometry, referenceGeometry) if referenceGeometry is not None else None
        grid = referenceGeometry if offset is not None else segmentation.geometry
        start = tuple(-v for v in offset) if offset is not None else (0, 0, 0)
        for layer in range(segmentation.n_layers):
            labels = np.ascontiguousarray(segmentation.layers[layer])
            nk, nj, ni = labels.shape
            image = slicer.vtkOrientedImageData()
            image.SetExtent(start[0], start[0] + ni - 1, start[1], start[1] + nj - 1, start[2], start[2] + nk - 1)
            image.AllocateScalars(numpy_support.get_vtk_array_type(labels.dtype), 1)
            numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())[:] = labels.ravel()
            image.SetImageToWorldMatrix(_arrayToVtkMatrix(_RAS_TO_LPS @ grid.ijk_to_lps))
            for index, s in enumerate(segmentation.segments):
                if s.layer != layer:
                    continue
                segment = slicer.vtkSegment()
                segment.SetName(s.name)
                segment.SetLabelValue(int(s.label_value))
                color = s.color or _SEGMENT_COLORS[index % len(_SEGMENT_COLORS)]
                segment.SetColor(*[float(c) for c in color])
                segment.AddRepresentation(rep, image)
                target.AddSegment(segment, s.segment_id or s.name)
        return node

    # ------------------------------------------------------------------ packages and parameters
    @staticmethod
    def missingPackages() -> List[str]:
        """Packages the library needs that cannot be imported here (e.g. ``["pandas"]``).

        Returns
        -------
        list of str
            pip requirement names, empty when everything is there.  Nothing is imported.
        """
        missing = []
        for module, requirement in REQUIRED_PACKAGES:
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):  # a module in sys.modules without a spec: it is imported
                found = True
            if not found:
                missing.append(requirement)
        return missing

    @staticmethod
    def optionsFromParameters(values: Dict[str, Any]) -> Dict[str, Any]:
        """Measurement options from the parameter node's text and number fields.

        Parameters
        ----------
        values : dict
            ``{fieldName: value}`` for fields of :attr:`PARAMETER_OPTIONS` (missing ones
            keep the library's default): ``mapKind`` (pdff, dixon, ct, t1, t2, scalar),
            ``pdffScale`` (auto, 0-1, 0-100, 0-1000), ``fatThresholdPct`` (number),
            ``levels`` ("L3/4,L4/5,L5/S1" or "all"), ``plane`` (image, disc), ``nSlices``
            (whole number), ``unit`` (text), ``goutallierCutoffs`` and ``kjaerCutoffs``
            ("10,25,40,60"; "" = library default).

        Returns
        -------
        dict
            Keyword options of :meth:`process` (``map_kind``, ``pdff_scale``...); "auto"
            and empty texts give no option (the library's default).

        Raises
        ------
        ValueError
            An unknown field, or a value that cannot be read; the message names the field.
        """
        unknown = sorted(set(values) - set(ParaspinalFatLogic.PARAMETER_OPTIONS))
        if unknown:
            known = ", ".join(ParaspinalFatLogic.PARAMETER_OPTIONS)
            raise ValueError(f"unknown parameter(s) {unknown}; known: {known}")
        options: Dict[str, Any] = {}
        if "mapKind" in values:
            options["map_kind"] = _choice(values["mapKind"], MAP_KINDS, "mapKind")
        if "pdffScale" in values:
            scale = _textValue(values["pdffScale"], "pdffScale")
            if scale.lower() not in ("", "auto"):
                options["pdff_scale"] = _choice(scale, PDFF_SCALES, "pdffScale")
        if "fatThresholdPct" in values:
            threshold = _number(values["fatThresholdPct"], "fatThresholdPct")
            if not 0.0 <= threshold <= 100.0:
                raise ValueError(f"fatThresholdPct must be a fat percentage between 0 and 100, got "
                                 f"{values['fatThresholdPct']!r}")
            options["fat_threshold_pct"] = threshold
        if "levels" in values:
            options["levels"] = _levels(values["levels"])
        if "plane" in values:
            options["plane"] = _choice(values["plane"], PLANES, "plane")
        if "nSlices" in values:
            number = _number(values["nSlices"], "nSlices")
            if number != int(number) or number < 1 or int(number) % 2 == 0:
                raise ValueError(f"nSlices must be an odd whole number >= 1 (slices centred on the level slice), "
                                 f"got {values['nSlices']!r}")
            options["n_slices"] = int(number)
        if "unit" in values:
            unit = _textValue(values["unit"], "unit")
            if unit:
                options["unit"] = unit
        for name, option in (("goutallierCutoffs", "goutallier_cutoffs"), ("kjaerCutoffs", "kjaer_cutoffs")):
            if name in values:
                cutoffs = _numbers(values[name], name)
                if cutoffs:
                    options[option] = cutoffs
        return options


# --------------------------------------------------------------------------- helpers
def _isModuleParent(obj) -> bool:
    """Whether ``obj`` is the module object Slicer's scripted-module factory passes (not a scene)."""
    return obj is not None and hasattr(obj, "setPythonSource") and not isinstance(obj, vtk.vtkObject)


def _declareHiddenModule(parent) -> None:
    """Make the module Slicer builds from this file a hidden helper (see the module notes)."""
    parent.hidden = True
    parent.title = "Paraspinal Fat logic"
    parent.categories = []
    parent.dependencies = []
    parent.helpText = "The Qt-free logic of the Paraspinal Fat module (not a module of its own)."
    parent.acknowledgementText = ""


def _sideOrder(side: str) -> Tuple[int, str]:
    order = ("left", "right", "")
    return (order.index(side) if side in order else len(order), side)


def _lpsToRas(point) -> np.ndarray:
    p = np.array(point, dtype=float)
    p[..., :2] *= -1.0
    return p


def _textValue(value, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text, got {value!r}")
    return value.strip()


def _choice(value, allowed: Sequence[str], name: str) -> str:
    text = _textValue(value, name).lower()
    if text not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return text


def _number(value, name: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value.strip().replace(",", ".")) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def _numbers(value, name: str) -> Tuple[float, ...]:
    """``"10,25,50"`` (or ``;``/space separated, or a sequence) as floats; ``""`` -> ``()``."""
    if value is None:
        return ()
    items = value.replace(";", ",").replace(" ", ",").split(",") if isinstance(value, str) else list(value)
    out = []
    for item in items:
        if isinstance(item, str) and not item.strip():
            continue
        try:
            out.append(_number(item, name))
        except ValueError:
            raise ValueError(f"{name} must be numbers separated by commas (fat %, e.g. 10,25,40,60), got "
                             f"{value!r}") from None
    return tuple(out)


def _levels(value):
    """``"L3/4,L4/5"`` -> ``["L3/4", "L4/5"]`` (canonical); ``"all"`` -> ``"all"``."""
    from ParaspinalFatLib.anatomy.level_names import canonical_level

    if isinstance(value, (list, tuple)):
        items = [str(v) for v in value]
    else:
        text = _textValue(value, "levels")
        if text.lower() == "all":
            return "all"
        items = text.replace(";", ",").split(",")
    items = [item.strip() for item in items if item.strip()]
    if not items:
        raise ValueError("levels is empty; write the levels to measure, e.g. L3/4,L4/5,L5/S1 (discs), L3 "
                         "(a vertebra) or all")
    out = []
    for item in items:
        level = canonical_level(item)
        if level is None:
            raise ValueError(f"levels: {item!r} is not a vertebral level; write e.g. L3/4,L4/5,L5/S1 or L3 or all")
        out.append(level)
    return out

"""Paraspinal Fat: 3D Slicer scripted module (module description, parameter node, panel, self-test).

The measurement itself is done by :class:`ParaspinalFatLogic.ParaspinalFatLogic` (Qt-free,
in the same folder), which adapts the headless library ``ParaspinalFatLib``.  This file
holds only what needs Slicer's application and Qt: the module description, the
``@parameterNodeWrapper`` parameter node, the panel (``Resources/UI/ParaspinalFat.ui``) and
``ParaspinalFatTest``, which runs inside a real Slicer.

Nothing is executed at import: only the standard library, slicer, vtk, qt, ctk and numpy
are imported at file scope (the Logic file imports the same).  pandas, which no Slicer
release bundles, is installed on the first Apply after the user agrees, never at import.

Coordinates: Slicer's RAS (the library works in LPS: x and y negated; the Logic converts).
"""
import importlib
import logging
import os
from typing import Annotated, Optional

import numpy as np
import qt
import vtk

import slicer
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin
from slicer import (
    vtkMRMLMarkupsNode,
    vtkMRMLPlotChartNode,
    vtkMRMLScalarVolumeNode,
    vtkMRMLSegmentationNode,
    vtkMRMLTableNode,
)

from ParaspinalFatLogic import ParaspinalFatLogic

#: choices of the text options (the library's MeasureOptions values; "auto" = detect the scale)
MAP_KINDS = ("pdff", "dixon", "ct", "t1", "t2", "scalar")
PDFF_SCALES = ("auto", "0-1", "0-100", "0-1000")
PLANES = ("image", "disc")

#: pip requirement of each package ParaspinalFatLogic.missingPackages() may report
#: (the library's pyproject.toml); a name not listed here is installed as it is
PIP_REQUIREMENTS = {"pandas": "pandas>=2.0", "scipy": "scipy>=1.13", "SimpleITK": "SimpleITK>=2.3"}

#: at most this many warnings are listed in the Results section (all are logged)
MAX_WARNINGS_SHOWN = 5

#: the layout that shows slice views, a plot view and a table view together
RESULTS_LAYOUT_NAME = "SlicerLayoutFourUpPlotTableView"


#
# ParaspinalFat
#


class ParaspinalFat(ScriptedLoadableModule):
    """Module description shown in Slicer (title, category, help, acknowledgement)."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Paraspinal Fat")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Quantification")]
        self.parent.dependencies = []
        self.parent.contributors = ["ParaspinalFat maintainers"]
        self.parent.helpText = _("""
Measures paraspinal muscle fat infiltration per muscle, side and disc level (L3/4, L4/5, L5/S1
by default) from a lumbar MRI or CT and a muscle segmentation: total, lean and fat
cross-sectional area (mm<sup>2</sup>), fat fraction, map statistics, and Goutallier and Kjaer
grades.
<ul>
<li><b>PDFF map</b> (IDEAL-IQ or vendor Dixon map, stored 0-1, 0-100 or 0-1000): mean PDFF in the
ROI; a voxel is fat when its PDFF is at least the fat threshold (50 % by default).</li>
<li><b>Dixon</b> water W and fat F images: voxel fat fraction F / (F + W), with a noise floor.</li>
<li><b>CT</b>: Hounsfield units; fat window -190 to -30 HU, muscle window -29 to 150 HU.</li>
<li><b>T1 / T2-weighted</b>: fat and muscle voxels separated per ROI by a fitted threshold
(Gaussian mixture by default; k-means, Otsu, fuzzy C-means, reference fat ROI).</li>
<li><b>Any scalar map</b> (DTI FA, ADC...): mean, median, SD and percentiles only.</li>
</ul>
Levels come from segments named with their level (2-D ROIs such as MF_L_L4/5), from vertebra or
disc masks (TotalSegmentator names work), or from a markups point list or lines. The measured
plane is the image slice nearest to the level point, or (Plane: disc) an oblique plane through
the point perpendicular to the local spine axis, with a partial-volume area.
Results: a table (shown in the layout), a chart of fat fraction per muscle and level, the fat
overlay on the slices, buttons that jump the slice views to each level, and CSV export.
Press <i>Create sample case</i> for a synthetic case with known areas and fat fractions.
See the <a href="https://github.com/ParaspinalFat/SlicerParaspinalFat#readme">documentation</a>.
""")
        self.parent.acknowledgementText = _("""
Methods follow the lumbar paraspinal protocol of the project's source studies: CSA and PDFF of
multifidus, erector spinae and psoas major at the mid-disc levels L3/4, L4/5 and L5/S1 on
chemical-shift-encoded (IDEAL-IQ) MRI, related to QCT volumetric bone density in 383 patients
with lumbar disc herniation; the review by Guo J and Dou Q, <i>Research Progress of Paraspinal
Muscle Fat Infiltration in Osteoporotic Vertebral Compression Fractures</i> (semi-quantitative
grading, threshold, fuzzy C-means and Dixon methods); and Wang H, Yang Y, et al.,
<i>The Relationship Between Magnetic Resonance Diffusion Tensor Imaging Parameters and Muscle
Dysfunction in Patients with Osteoporosis</i> (scalar maps FA and ADC in muscle ROIs).
Grades: Goutallier D, et al., Clin Orthop Relat Res 1994;(304):78-83 (grades of 1989; the
quantitative cut-offs 10, 25, 40, 60 % are this project's convention, to be set to a paper's own);
Kjaer P, et al., BMC Med 2007;5:2 (three grades: &lt; 10 %, 10-50 %, &gt; 50 %).
The module is a thin adapter over the ParaspinalFatLib Python library (Apache-2.0).
""")


#
# ParaspinalFatParameterNode
#


@parameterNodeWrapper
class ParaspinalFatParameterNode:
    """The module's parameters, saved with the scene.

    inputVolume - image to measure (for Dixon: the fat image).
    waterVolume - Dixon water image (used only when mapKind is "dixon").
    inputSegmentation - muscle segments (and vertebra / disc masks).
    levelMarkups - optional level points or disc lines.
    mapKind - pdff, dixon, ct, t1, t2 or scalar.
    pdffScale - PDFF storage scale; "auto" detects it.
    fatThresholdPct - a voxel is fat when its fat fraction is at least this (%).
    levels - levels to measure 3-D muscles at ("L3/4,L4/5,L5/S1", "L3,L4/5", "all").
    plane - "image" (image slice) or "disc" (oblique plane perpendicular to the spine axis).
    nSlices - odd number of slices averaged around each level slice.
    unit - unit of a scalar map, written to the table.
    goutallierCutoffs, kjaerCutoffs - grade cut-offs in % ("" = the library defaults).
    outputTable, outputChart, outputOverlay - results; created on Apply when empty.
    """

    inputVolume: vtkMRMLScalarVolumeNode
    waterVolume: vtkMRMLScalarVolumeNode
    inputSegmentation: vtkMRMLSegmentationNode
    levelMarkups: vtkMRMLMarkupsNode
    mapKind: Annotated[str, Choice(list(MAP_KINDS))] = "pdff"
    pdffScale: Annotated[str, Choice(list(PDFF_SCALES))] = "auto"
    fatThresholdPct: Annotated[float, WithinRange(0.0, 100.0)] = 50.0
    levels: str = "L3/4,L4/5,L5/S1"
    plane: Annotated[str, Choice(list(PLANES))] = "image"
    nSlices: Annotated[int, WithinRange(1, 99)] = 1
    unit: str = ""
    goutallierCutoffs: str = ""
    kjaerCutoffs: str = ""
    outputTable: vtkMRMLTableNode
    outputChart: vtkMRMLPlotChartNode
    outputOverlay: vtkMRMLSegmentationNode


class ParaspinalFatParameterLogic(ScriptedLoadableModuleLogic):
    """Finds or creates the module's parameter node in the scene.

    The measurement logic is :class:`ParaspinalFatLogic.ParaspinalFatLogic` (Qt-free, no
    Slicer base class); this small class only provides Slicer's standard singleton
    parameter node for the module name ``ParaspinalFat``.
    """

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        self.moduleName = "ParaspinalFat"

    def getParameterNode(self):
        """Return the scene's ParaspinalFat parameter node, wrapped (created when missing)."""
        return ParaspinalFatParameterNode(super().getParameterNode())


def parameterValues(parameterNode):
    """The non-node parameters as ``{fieldName: value}`` for ``optionsFromParameters``.

    Parameters
    ----------
    parameterNode : ParaspinalFatParameterNode
        The wrapped parameter node.

    Returns
    -------
    dict
        One entry per name of ``ParaspinalFatLogic.PARAMETER_OPTIONS``.
    """
    return {name: getattr(parameterNode, name) for name in ParaspinalFatLogic.PARAMETER_OPTIONS}


def applyBlockReason(inputVolume, inputSegmentation, mapKind, waterVolume, outputOverlay=None):
    """Why Apply cannot run yet, or ``""`` when the inputs are complete.

    Parameters
    ----------
    inputVolume, inputSegmentation, waterVolume, outputOverlay : vtkMRMLNode or None
        The selected nodes.
    mapKind : str
        The selected image kind (``"dixon"`` needs the water image).

    Returns
    -------
    str
        A sentence naming the missing or conflicting input and where to set it.
    """
    if inputVolume is None:
        return _("Select the image to measure (Inputs > Image).")
    if inputSegmentation is None:
        return _("Select the muscle segmentation (Inputs > Muscle segmentation).")
    if outputOverlay is not None and inputSegmentation is outputOverlay:
        return _("The muscle segmentation is also the fat overlay output: choose another "
                 "segmentation, or set Outputs > Fat overlay to (create new).")
    if mapKind == "dixon":
        if waterVolume is None:
            return _("Dixon needs the water image (Inputs > Water image); Image is the fat image.")
        if waterVolume is inputVolume:
            return _("The water image and the fat image are the same volume: select the water "
                     "image in Inputs > Water image.")
    return ""


def levelSliceToRAS(centerRAS, normalRAS):
    """SliceToRAS matrix of a slice view showing the plane of one level.

    The view's normal (third column) is the plane normal, turned to point superiorly
    (+S); its up direction is anterior projected onto the plane and its right-hand
    direction the patient's left, as in Slicer's axial view (radiological
    convention, a left-handed matrix); its origin is the plane centre.

    Parameters
    ----------
    centerRAS : sequence of 3 float
        Plane centre (RAS, mm).
    normalRAS : sequence of 3 float
        Plane normal (RAS), any length > 0.

    Returns
    -------
    numpy.ndarray
        4 x 4 matrix.

    Raises
    ------
    ValueError
        The normal is zero or not finite, or the centre is not finite.
    """
    center = np.asarray(centerRAS, dtype=float).reshape(3)
    normal = np.asarray(normalRAS, dtype=float).reshape(3)
    length = float(np.linalg.norm(normal))
    if not np.all(np.isfinite(center)) or not np.isfinite(length) or length < 1e-9:
        raise ValueError(f"a level plane needs a finite centre and a non-zero normal, got centre "
                         f"{center.tolist()} and normal {normal.tolist()}")
    normal = normal / length
    if normal[2] < 0:
        normal = -normal
    up = None
    for reference in ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0)):
        candidate = np.asarray(reference) - np.dot(reference, normal) * normal
        if np.linalg.norm(candidate) > 1e-6:
            up = candidate / np.linalg.norm(candidate)
            break
    right = np.cross(normal, up)
    matrix = np.eye(4)
    matrix[:3, 0] = right
    matrix[:3, 1] = up
    matrix[:3, 2] = normal
    matrix[:3, 3] = center
    return matrix


def jumpSliceViewsToLevel(centerRAS, normalRAS):
    """Show one level's plane in the Red slice view and centre the other views on it.

    The Red view is set to the level's plane (oblique for a disc plane, see
    :func:`levelSliceToRAS`); the other slice views keep their orientation and are
    centred on the plane centre.

    Parameters
    ----------
    centerRAS, normalRAS : sequence of 3 float
        Plane centre and normal in RAS (from ``ParaspinalFatLogic.levelViews``).

    Returns
    -------
    int
        Number of slice nodes moved (slice nodes of ``slicer.mrmlScene``).
    """
    matrix = levelSliceToRAS(centerRAS, normalRAS)
    center = [float(v) for v in matrix[:3, 3]]
    moved = 0
    for sliceNode in slicer.util.getNodesByClass("vtkMRMLSliceNode"):
        if sliceNode.GetLayoutName() == "Red":
            sliceToRAS = sliceNode.GetSliceToRAS()
            for row in range(4):
                for column in range(4):
                    sliceToRAS.SetElement(row, column, float(matrix[row, column]))
            sliceNode.UpdateMatrices()
        else:
            sliceNode.JumpSliceByCentering(*center)
        moved += 1
    return moved


#
# ParaspinalFatWidget
#


class ParaspinalFatWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The module panel: inputs, options, outputs, Apply, results."""

    def __init__(self, parent=None) -> None:
        """Called when the user opens the module the first time and the widget is initialized."""
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)  # needed for parameter node observation
        self.logic = None
        self.parameterLogic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._result = None
        self._levelViews = []
        self._levelButtons = []

    def setup(self) -> None:
        """Build the panel from the .ui file and connect it."""
        ScriptedLoadableModuleWidget.setup(self)

        uiWidget = slicer.util.loadUI(self.resourcePath("UI/ParaspinalFat.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        # the .ui connects the qMRMLWidget's mrmlSceneChanged(vtkMRMLScene*) to every selector
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = ParaspinalFatLogic()
        self.parameterLogic = ParaspinalFatParameterLogic()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.createSampleButton.connect("clicked(bool)", self.onCreateSampleButton)
        self.ui.exportCsvButton.connect("clicked(bool)", self.onExportCsvButton)

        self._clearResults()
        self.initializeParameterNode()

    def cleanup(self) -> None:
        """Called when the application closes and the module widget is destroyed."""
        self.removeObservers()

    def enter(self) -> None:
        """Called each time the user opens this module."""
        self.initializeParameterNode()

    def exit(self) -> None:
        """Called each time the user opens a different module."""
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
            self._parameterNode = None

    def onSceneStartClose(self, caller, event) -> None:
        """Called just before the scene is closed: forget the parameter node and the results."""
        self.setParameterNode(None)
        self._clearResults()

    def onSceneEndClose(self, caller, event) -> None:
        """Called just after the scene is closed."""
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        """Ensure the parameter node exists and is observed; preselect inputs."""
        self.setParameterNode(self.parameterLogic.getParameterNode())
        parameterNode = self._parameterNode
        if not parameterNode.inputVolume:
            firstVolumeNode = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolumeNode:
                parameterNode.inputVolume = firstVolumeNode
        if not parameterNode.inputSegmentation:
            for segmentationNode in slicer.util.getNodesByClass("vtkMRMLSegmentationNode"):
                if segmentationNode is not parameterNode.outputOverlay:
                    parameterNode.inputSegmentation = segmentationNode
                    break

    def setParameterNode(self, inputParameterNode: Optional[ParaspinalFatParameterNode]) -> None:
        """Set and observe the parameter node (the GUI follows it through ``connectGui``)."""
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            # every widget with a "SlicerParameterName" dynamic property in the .ui is bound
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
        self._onParameterNodeModified()

    def _onParameterNodeModified(self, caller=None, event=None) -> None:
        """Update Apply (enabled, with the reason in its tooltip) and the option widgets."""
        parameterNode = self._parameterNode
        if parameterNode is None:
            reason = _("The module has no parameter node (scene closing).")
        else:
            reason = applyBlockReason(parameterNode.inputVolume, parameterNode.inputSegmentation,
                                      parameterNode.mapKind, parameterNode.waterVolume,
                                      parameterNode.outputOverlay)
        self.ui.applyButton.enabled = not reason
        self.ui.applyButton.toolTip = reason or _("Measure every muscle x side x level and show the results.")
        self._updateOptionWidgets()
        self._updateExportButton()

    def _updateOptionWidgets(self) -> None:
        """Enable only the options that the selected image kind uses."""
        mapKind = self._parameterNode.mapKind if self._parameterNode else "pdff"
        isDixon = mapKind == "dixon"
        self.ui.inputVolumeLabel.text = _("Fat image:") if isDixon else _("Image:")
        self.ui.waterVolumeSelector.enabled = isDixon
        self.ui.waterVolumeLabel.enabled = isDixon
        self.ui.pdffScaleComboBox.enabled = mapKind == "pdff"
        self.ui.pdffScaleLabel.enabled = mapKind == "pdff"
        self.ui.fatThresholdSliderWidget.enabled = mapKind in ("pdff", "dixon")
        self.ui.fatThresholdLabel.enabled = mapKind in ("pdff", "dixon")

    def _updateExportButton(self) -> None:
        tableNode = self._parameterNode.outputTable if self._parameterNode else None
        hasTable = tableNode is not None and tableNode.GetNumberOfRows() > 0
        self.ui.exportCsvButton.enabled = self._result is not None or hasTable

    # --- Python packages ---------------------------------------------------

    def ensurePythonPackages(self) -> bool:
        """Install the packages the library needs (pandas) after the user agrees.

        Uses ``slicer.packaging.pip_ensure`` where it exists (Slicer >= 5.12), else a
        confirmation dialog and ``slicer.util.pip_install``.

        Returns
        -------
        bool
            True when every package is importable; False when the user declined.

        Raises
        ------
        RuntimeError
            The installation ran but a package is still not importable.
        """
        missing = ParaspinalFatLogic.missingPackages()
        if not missing:
            return True
        requirements = [PIP_REQUIREMENTS.get(name, name) for name in missing]
        pipEnsure = None
        try:
            import slicer.packaging

            pipEnsure = getattr(slicer.packaging, "pip_ensure", None)
        except ImportError:  # Slicer < 5.12 has no slicer.packaging
            pipEnsure = None
        if pipEnsure is not None:
            try:
                pipEnsure(requirements, requester="ParaspinalFat")
            except RuntimeError:  # pip_ensure raises RuntimeError when the user declines
                slicer.util.showStatusMessage(_("Paraspinal Fat: installation of {names} declined; "
                                                "nothing was measured.").format(names=", ".join(missing)), 5000)
                return False
        else:
            text = _("Paraspinal Fat needs Python packages that are not installed: {names}.\n\n"
                     "Install them now into Slicer's Python? This downloads them from the Python "
                     "Package Index and may take a minute.").format(names=", ".join(missing))
            if not slicer.util.confirmOkCancelDisplay(
                    text, windowTitle=_("Paraspinal Fat - install Python packages"),
                    detailedText="\n".join(requirements)):
                slicer.util.showStatusMessage(_("Paraspinal Fat: installation of {names} declined; "
                                                "nothing was measured.").format(names=", ".join(missing)), 5000)
                return False
            slicer.app.setOverrideCursor(qt.Qt.WaitCursor)
            try:
                slicer.util.pip_install(requirements)
            finally:
                slicer.app.restoreOverrideCursor()
        importlib.invalidate_caches()
        stillMissing = ParaspinalFatLogic.missingPackages()
        if stillMissing:
            raise RuntimeError(
                f"the Python packages {', '.join(stillMissing)} are still not importable after the "
                f"installation; install them in the Python console with "
                f"slicer.util.pip_install({[PIP_REQUIREMENTS.get(n, n) for n in stillMissing]!r}) "
                f"and restart Slicer")
        return True

    # --- Apply -------------------------------------------------------------

    def onApplyButton(self) -> None:
        """Measure, then show the table, chart, overlay and level buttons."""
        with slicer.util.tryWithErrorDisplay(_("Python packages for Paraspinal Fat are missing.")):
            if not self.ensurePythonPackages():
                return
        with slicer.util.tryWithErrorDisplay(_("Paraspinal fat measurement failed."), waitCursor=True):
            result = self.runMeasurement()
            self._adoptOutputNodes(result)
            self.showResults(result)

    def runMeasurement(self):
        """Run ``ParaspinalFatLogic.process`` on the parameter node, with a progress dialog.

        Returns
        -------
        ProcessResult
            The Logic's result (table, chart and overlay nodes, the library's measurement).
        """
        p = self._parameterNode
        reason = applyBlockReason(p.inputVolume, p.inputSegmentation, p.mapKind, p.waterVolume, p.outputOverlay)
        if reason:
            raise ValueError(reason)
        progressDialog = slicer.util.createProgressDialog(
            windowTitle=_("Paraspinal Fat"), labelText=_("Measuring..."), maximum=100)
        # the measurement cannot be interrupted half-way: no Cancel button (where PythonQt
        # passes None as a null button; otherwise the button stays and is simply not used)
        try:
            progressDialog.setCancelButton(None)
        except (TypeError, ValueError):
            pass

        def progress(fraction, text=""):
            progressDialog.value = int(round(100.0 * min(max(float(fraction), 0.0), 1.0)))
            if text:
                progressDialog.labelText = text
            slicer.app.processEvents()

        try:
            return self.logic.process(
                p.inputVolume,
                p.inputSegmentation,
                markupsNode=p.levelMarkups,
                waterNode=p.waterVolume if p.mapKind == "dixon" else None,
                tableNode=p.outputTable,
                chartNode=p.outputChart,
                overlayNode=p.outputOverlay,
                progress=progress,
                **ParaspinalFatLogic.optionsFromParameters(parameterValues(p)),
            )
        finally:
            progressDialog.close()

    def _adoptOutputNodes(self, result) -> None:
        """Select the result's nodes as outputs, so that the next Apply reuses them."""
        p = self._parameterNode
        if p.outputTable is not result.tableNode:
            p.outputTable = result.tableNode
        if p.outputChart is not result.chartNode:
            p.outputChart = result.chartNode
        if p.outputOverlay is not result.overlayNode:
            p.outputOverlay = result.overlayNode

    def showResults(self, result) -> None:
        """Table and chart in the layout, overlay on the slices, level buttons, summary."""
        self._result = result
        p = self._parameterNode
        showTableAndChart(result.tableNode, result.chartNode)
        showOverlayOnSlices(p.inputVolume, result.overlayNode)
        self._levelViews = list(self.logic.levelViews(result))
        self._rebuildLevelButtons()
        for warning in result.warnings:
            logging.warning(f"ParaspinalFat: {warning}")
        self.ui.resultsLabel.text = resultsSummary(result.tableNode.GetNumberOfRows(),
                                                   [view[0] for view in self._levelViews],
                                                   list(result.warnings))
        self._updateExportButton()

    def _clearResults(self) -> None:
        self._result = None
        self._levelViews = []
        self._rebuildLevelButtons()
        if hasattr(self, "ui"):
            self.ui.resultsLabel.text = _("No results yet: press Apply.")
            self.ui.exportCsvButton.enabled = False

    def _rebuildLevelButtons(self) -> None:
        """One push button per measured level in the Results section."""
        if not hasattr(self, "ui"):
            return
        layout = self.ui.levelButtonsWidget.layout()
        for button in self._levelButtons:
            layout.removeWidget(button)
            button.deleteLater()
        self._levelButtons = []
        for index, (level, center, normal) in enumerate(self._levelViews):
            button = qt.QPushButton(str(level))
            tilt = _tiltFromSuperiorDeg(normal)
            button.toolTip = _("Jump the slice views to {level}: centre R {r:.1f}, A {a:.1f}, S {s:.1f} mm; "
                               "plane tilted {tilt:.1f} deg from axial.").format(
                level=level, r=center[0], a=center[1], s=center[2], tilt=tilt)
            button.connect("clicked()", lambda levelIndex=index: self.onJumpToLevel(levelIndex))
            layout.addWidget(button)
            self._levelButtons.append(button)
        self.ui.levelButtonsLabel.visible = bool(self._levelButtons)

    def onJumpToLevel(self, levelIndex: int) -> None:
        """Move the slice views to one measured level (oblique Red view for disc planes)."""
        with slicer.util.tryWithErrorDisplay(_("Could not move the slice views.")):
            level, center, normal = self._levelViews[levelIndex]
            jumpSliceViewsToLevel(center, normal)

    # --- sample case and export ---------------------------------------------

    def onCreateSampleButton(self) -> None:
        """Generate the phantom case with the library and select its nodes."""
        with slicer.util.tryWithErrorDisplay(_("Python packages for Paraspinal Fat are missing.")):
            if not self.ensurePythonPackages():
                return
        with slicer.util.tryWithErrorDisplay(_("Could not create the sample case."), waitCursor=True):
            imageNode, segmentationNode, markupsNode = self.logic.createSampleCase()
            p = self._parameterNode
            p.mapKind = "pdff"  # the phantom is a PDFF map, stored in a known scale
            phantom = getattr(self.logic, "samplePhantom", None)
            p.pdffScale = phantom.pdff_scale if getattr(phantom, "pdff_scale", None) in PDFF_SCALES else "auto"
            p.waterVolume = None
            p.inputVolume = imageNode
            p.inputSegmentation = segmentationNode
            p.levelMarkups = markupsNode
            slicer.util.setSliceViewerLayers(background=imageNode, fit=True)

    def onExportCsvButton(self) -> None:
        """Save the per-level table as CSV (formula-safe, through the library's writer)."""
        with slicer.util.tryWithErrorDisplay(_("Could not export the table.")):
            tableNode = self._resultTableNode()
            if tableNode is None:
                raise ValueError("there is no result table to export: press Apply first")
            defaultName = os.path.join(_defaultExportFolder(), f"{tableNode.GetName() or 'ParaspinalFat'}.csv")
            path = qt.QFileDialog.getSaveFileName(
                slicer.util.mainWindow(), _("Export the per-level table"), defaultName, _("CSV files (*.csv)"))
            if not path:
                return
            if not path.lower().endswith(".csv"):
                path += ".csv"
            written = self.exportCsv(path)
            slicer.util.showStatusMessage(_("Paraspinal Fat: table saved to {path}").format(path=written), 5000)

    def _resultTableNode(self):
        if self._result is not None:
            return self._result.tableNode
        return self._parameterNode.outputTable if self._parameterNode else None

    def exportCsv(self, path):
        """Write the per-level table to ``path`` with the library's formula-safe CSV writer.

        The library's own table (``result.measurement.levels``) is written when the
        result of this session is shown; otherwise (e.g. a reloaded scene) the output
        table node's content.

        Parameters
        ----------
        path : str
            Destination ``.csv`` file.

        Returns
        -------
        str
            The written path.
        """
        if not self.ensurePythonPackages():
            raise RuntimeError("pandas is needed to write the CSV file and was not installed")
        from ParaspinalFatLib.report.case_files import write_csv_atomic

        if self._result is not None:
            frame = self._result.measurement.levels
        else:
            tableNode = self._resultTableNode()
            if tableNode is None:
                raise ValueError("there is no result table to export: press Apply first")
            frame = slicer.util.dataframeFromTable(tableNode)
        return str(write_csv_atomic(frame, path))


def _tiltFromSuperiorDeg(normalRAS) -> float:
    """Angle (degrees) between a plane normal and the superior axis (0 = axial plane)."""
    normal = np.asarray(normalRAS, dtype=float)
    cosine = abs(float(normal[2])) / max(float(np.linalg.norm(normal)), 1e-12)
    return float(np.degrees(np.arccos(min(cosine, 1.0))))


def _defaultExportFolder() -> str:
    """Slicer's default scene folder, else the user's home folder."""
    try:
        folder = slicer.app.defaultScenePath
    except AttributeError:
        folder = ""
    return folder or os.path.expanduser("~")


def resultsSummary(numberOfRows, levels, warnings):
    """Text of the Results section: rows, levels and the first warnings.

    Parameters
    ----------
    numberOfRows : int
        Rows of the per-level table.
    levels : list of str
        Measured levels.
    warnings : list of str
        The measurement's warnings.

    Returns
    -------
    str
    """
    text = _("{rows} rows (muscle x side x level) at {count} levels: {levels}.").format(
        rows=numberOfRows, count=len(levels), levels=", ".join(str(level) for level in levels) or "-")
    if warnings:
        shown = warnings[:MAX_WARNINGS_SHOWN]
        text += "\n" + _("{count} warnings (all in the Python console and the table's warnings column):").format(
            count=len(warnings))
        text += "".join(f"\n- {warning}" for warning in shown)
        if len(warnings) > len(shown):
            text += "\n- ..."
    return text


def showTableAndChart(tableNode, chartNode) -> None:
    """Switch to a layout with a table and a plot view and show the results there."""
    layoutManager = slicer.app.layoutManager()
    if layoutManager is None:  # no main window (e.g. --no-main-window)
        return
    resultsLayout = getattr(slicer.vtkMRMLLayoutNode, RESULTS_LAYOUT_NAME)
    if layoutManager.layout != resultsLayout:
        layoutManager.setLayout(resultsLayout)
    applicationLogic = slicer.app.applicationLogic()
    selectionNode = applicationLogic.GetSelectionNode()
    selectionNode.SetActiveTableID(tableNode.GetID())
    applicationLogic.PropagateTableSelection()
    selectionNode.SetActivePlotChartID(chartNode.GetID())
    applicationLogic.PropagatePlotChartSelection()


def showOverlayOnSlices(imageNode, overlayNode) -> None:
    """Show the measured image in the slice views with the fat overlay on top."""
    slicer.util.setSliceViewerLayers(background=imageNode, fit=True)
    overlayNode.CreateDefaultDisplayNodes()
    displayNode = overlayNode.GetDisplayNode()
    displayNode.SetVisibility(True)
    displayNode.SetVisibility2DFill(True)
    displayNode.SetVisibility2DOutline(True)


#
# ParaspinalFatTest
#


class ParaspinalFatTest(ScriptedLoadableModuleTest):
    """Runs the Logic inside a real Slicer on phantoms with known answers.

    The truth comes from the voxels themselves (the image and segment arrays read back
    from the scene with numpy) and from the library's phantom generator
    (``ParaspinalFatLib.make_phantom``: its truth table and level points), never from
    the measurement code under test.
    """

    def setUp(self):
        """Clear the scene."""
        slicer.mrmlScene.Clear()

    def runTest(self):
        """Run every test."""
        self.setUp()
        self.test_ParaspinalFat_ParameterDefaults()
        self.setUp()
        self.test_ParaspinalFat_SampleCase()
        self.setUp()
        self.test_ParaspinalFat_ObliqueDiscPlane()
        self.test_ParaspinalFat_LogicFileIsAHiddenModule()

    def test_ParaspinalFat_LogicFileIsAHiddenModule(self):
        """Slicer also makes a module of ParaspinalFatLogic.py (it loads every .py of the
        folder): it must be hidden, and the real module visible."""
        self.delayDisplay("The Logic file is a hidden helper module")
        self.assertFalse(slicer.modules.paraspinalfat.isHidden())
        helper = getattr(slicer.modules, "paraspinalfatlogic", None)
        if helper is not None:
            self.assertTrue(helper.isHidden())

    def _requirePackages(self):
        """pandas is needed by the library; install it for the test when missing."""
        missing = ParaspinalFatLogic.missingPackages()
        if missing:
            self.delayDisplay(f"Installing {', '.join(missing)} for the test")
            slicer.util.pip_install([PIP_REQUIREMENTS.get(name, name) for name in missing])
            importlib.invalidate_caches()
        self.assertEqual(ParaspinalFatLogic.missingPackages(), [])

    def _defaultParameterNode(self):
        node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScriptedModuleNode")
        return ParaspinalFatParameterNode(node)

    def test_ParaspinalFat_ParameterDefaults(self):
        """The parameter node's defaults become the library's defaults."""
        self.delayDisplay("Parameter node defaults")
        p = self._defaultParameterNode()
        self.assertEqual(sorted(parameterValues(p)), sorted(ParaspinalFatLogic.PARAMETER_OPTIONS))
        options = ParaspinalFatLogic.optionsFromParameters(parameterValues(p))
        self.assertEqual(options.get("map_kind"), "pdff")
        self.assertNotIn("pdff_scale", options)  # "auto": the library detects the scale
        self.assertEqual(options["fat_threshold_pct"], 50.0)
        self.assertEqual(options["plane"], "image")
        self.assertEqual(options["n_slices"], 1)
        self.assertEqual(list(options["levels"]), ["L3/4", "L4/5", "L5/S1"])
        self.assertNotIn("unit", options)  # "": no unit
        self.assertNotIn("goutallier_cutoffs", options)  # "": the library's default cut-offs
        p.goutallierCutoffs = "5,25,50,75"
        options = ParaspinalFatLogic.optionsFromParameters(parameterValues(p))
        self.assertEqual(tuple(options["goutallier_cutoffs"]), (5.0, 25.0, 50.0, 75.0))
        p.goutallierCutoffs = "5;x"
        with self.assertRaises(ValueError) as raised:
            ParaspinalFatLogic.optionsFromParameters(parameterValues(p))
        self.assertIn("goutallierCutoffs", str(raised.exception))
        # Apply's reason, with real nodes
        image = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "fat")
        water = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "water")
        segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "muscles")
        self.assertIn("Inputs > Image", applyBlockReason(None, segmentation, "pdff", None))
        self.assertIn("Inputs > Muscle segmentation", applyBlockReason(image, None, "pdff", None))
        self.assertEqual(applyBlockReason(image, segmentation, "pdff", None), "")
        self.assertIn("Inputs > Water image", applyBlockReason(image, segmentation, "dixon", None))
        self.assertIn("same volume", applyBlockReason(image, segmentation, "dixon", image))
        self.assertEqual(applyBlockReason(image, segmentation, "dixon", water), "")
        self.assertIn("fat overlay", applyBlockReason(image, segmentation, "pdff", None, segmentation))
        self.delayDisplay("Parameter node defaults: passed")

    def test_ParaspinalFat_SampleCase(self):
        """The sample case on image planes: every row against the voxels, chart and overlay."""
        self._requirePackages()
        self.delayDisplay("Sample case: create and measure")
        logic = ParaspinalFatLogic()
        imageNode, segmentationNode, markupsNode = logic.createSampleCase()
        self.assertIsNotNone(imageNode)
        self.assertIsNotNone(segmentationNode)
        p = self._defaultParameterNode()
        progressCalls = []
        result = logic.process(imageNode, segmentationNode, markupsNode=markupsNode,
                               progress=lambda fraction, text="": progressCalls.append(float(fraction)),
                               **ParaspinalFatLogic.optionsFromParameters(parameterValues(p)))
        self.assertTrue(progressCalls, "process() never reported progress")
        self.assertTrue(all(0.0 <= f <= 1.0 for f in progressCalls))

        rows = tableRows(result.tableNode)
        self.assertEqual(len(rows), 18, "the phantom has 3 muscles x 2 sides x 3 levels")
        self.assertEqual({row["level"] for row in rows}, {"L3/4", "L4/5", "L5/S1"})
        self.assertEqual({row["side"] for row in rows}, {"left", "right"})
        thresholdPct = 50.0
        for row in rows:
            truth = roiSliceTruth(imageNode, segmentationNode, row["segment"], int(row["slice_index"]),
                                  _pdffPercentPerStoredUnit(row["pdff_scale"]), thresholdPct)
            where = f"{row['segment']} {row['level']}"
            self.assertEqual(int(row["n_voxels"]), truth["n_voxels"], where)
            self.assertAlmostEqual(row["csa_mm2"], truth["csa_mm2"], delta=1e-6 * truth["csa_mm2"], msg=where)
            self.assertAlmostEqual(row["fat_fraction_pct"], truth["mean_pct"], delta=1e-4, msg=where)
            self.assertAlmostEqual(row["median"], truth["median_pct"], delta=1e-4, msg=where)
            self.assertAlmostEqual(row["fat_csa_mm2"], truth["fat_csa_mm2"], delta=1e-6 * truth["csa_mm2"], msg=where)
            self.assertAlmostEqual(row["lean_csa_mm2"], truth["lean_csa_mm2"], delta=1e-6 * truth["csa_mm2"], msg=where)
            # the fat overlay holds exactly the ROI's fat voxels on the measured slice
            overlayFat = segmentSliceMask(result.overlayNode, "fat", imageNode, int(row["slice_index"]))
            self.assertEqual(int((overlayFat & truth["mask"]).sum()), truth["n_fat"], where)
        self._checkAgainstPhantomTruth(rows)

        self.delayDisplay("Sample case: chart and overlay")
        self._checkChart(result.chartNode, rows)
        overlayNames = segmentNames(result.overlayNode)
        self.assertEqual(sorted(overlayNames), ["fat", "lean", "undefined"])

        # image planes of an axial stack: centred on the level points (from the vertebra masks)
        import ParaspinalFatLib

        discPoints = ParaspinalFatLib.make_phantom(**ParaspinalFatLogic.SAMPLE_PHANTOM_ARGUMENTS).disc_points
        views = logic.levelViews(result)
        self.assertEqual([view[0] for view in views], ["L3/4", "L4/5", "L5/S1"])
        for level, center, normal in views:
            self.assertLess(np.abs(np.asarray(normal) - [0.0, 0.0, 1.0]).max(), 1e-9, level)
            expectedCenter = np.asarray(discPoints[level], dtype=float) * [-1, -1, 1]  # LPS -> RAS
            self.assertLess(np.abs(np.asarray(center) - expectedCenter).max(), 1e-3, level)
        self.delayDisplay("Sample case: passed")

    def _checkAgainstPhantomTruth(self, rows):
        """Rows of the sample case against make_phantom's own truth table (when it is that phantom)."""
        import ParaspinalFatLib

        truth = ParaspinalFatLib.make_phantom(**ParaspinalFatLogic.SAMPLE_PHANTOM_ARGUMENTS).truth
        byKey = {(t.segment, t.level): t for t in truth.itertuples()}
        for row in rows:
            t = byKey[(row["segment"], row["level"])]
            where = f"{row['segment']} {row['level']}"
            self.assertEqual(int(row["slice_index"]), int(t.slice_index), where)
            self.assertEqual(int(row["n_voxels"]), int(t.n_voxels), where)
            self.assertAlmostEqual(row["csa_mm2"], t.csa_mm2, delta=1e-6 * t.csa_mm2, msg=where)
            self.assertAlmostEqual(row["fat_fraction_pct"], t.mean_pdff_pct, delta=1e-4, msg=where)
            self.assertAlmostEqual(row["fat_csa_mm2"], t.fat_csa_mm2, delta=1e-6 * t.csa_mm2, msg=where)

    def _checkChart(self, chartNode, rows):
        """One series per side; each holds that side's fat fractions (muscle x level)."""
        seriesNodes = [chartNode.GetNthPlotSeriesNode(i) for i in range(chartNode.GetNumberOfPlotSeriesNodes())]
        sides = sorted({row["side"] for row in rows if row["side"]})
        self.assertEqual(len(seriesNodes), len(sides))
        for side in sides:
            matching = [s for s in seriesNodes if side in (s.GetName() or "").lower()]
            self.assertEqual(len(matching), 1, f"no single chart series named with side {side!r}")
            series = matching[0]
            values = tableColumnValues(series.GetTableNode(), series.GetYColumnName())
            expected = sorted(row["fat_fraction_pct"] for row in rows if row["side"] == side)
            self.assertEqual(len(values), len(expected))
            for got, want in zip(sorted(values), expected):
                self.assertAlmostEqual(got, want, delta=1e-9)

    def test_ParaspinalFat_ObliqueDiscPlane(self):
        """A tilted 3-D phantom measured on disc planes: areas, plane normals and the oblique view."""
        self._requirePackages()
        self.delayDisplay("Oblique disc planes")
        import tempfile

        import ParaspinalFatLib
        from ParaspinalFatLib.phantom import write_phantom

        tiltDeg = 8.0
        phantom = ParaspinalFatLib.make_phantom(mode="3d", tilt_deg=tiltDeg)
        with tempfile.TemporaryDirectory() as folder:
            paths = write_phantom(phantom, folder)
            imageNode = slicer.util.loadVolume(str(paths["image"]))
            segmentationNode = slicer.util.loadSegmentation(str(paths["segmentation"]))
        logic = ParaspinalFatLogic()
        p = self._defaultParameterNode()
        p.plane = "disc"
        p.pdffScale = phantom.pdff_scale
        result = logic.process(imageNode, segmentationNode,
                               **ParaspinalFatLogic.optionsFromParameters(parameterValues(p)))
        rows = tableRows(result.tableNode)
        self.assertEqual(len(rows), 18)
        truth = {(t.segment, t.level): t for t in phantom.truth.itertuples()}
        # the spine runs along the tilted grid's slice axis: RAS (0, sin t, cos t)
        expectedNormal = np.array([0.0, np.sin(np.radians(tiltDeg)), np.cos(np.radians(tiltDeg))])
        for row in rows:
            t = truth[(row["segment"], row["level"])]
            where = f"{row['segment']} {row['level']}"
            self.assertEqual(row["plane"], "disc", where)
            self.assertAlmostEqual(row["plane_tilt_deg"], 0.0, delta=0.01, msg=where)
            normalLPS = np.array([row["plane_normal_lps_x"], row["plane_normal_lps_y"], row["plane_normal_lps_z"]])
            self.assertLess(np.abs(normalLPS * [-1, -1, 1] - expectedNormal).max(), 1e-4, where)
            # partial-volume area of a plane through voxel centres: within 1 % of the voxel count
            self.assertAlmostEqual(row["csa_mm2"], t.csa_mm2, delta=0.01 * t.csa_mm2, msg=where)
        views = logic.levelViews(result)
        self.assertEqual([view[0] for view in views], ["L3/4", "L4/5", "L5/S1"])
        for level, center, normal in views:
            pointLPS = np.asarray(phantom.disc_points[level], dtype=float)
            self.assertLess(np.abs(np.asarray(center) - pointLPS * [-1, -1, 1]).max(), 1e-3, level)
            self.assertLess(np.abs(np.asarray(normal) / np.linalg.norm(normal) - expectedNormal).max(), 1e-4, level)
            jumpSliceViewsToLevel(center, normal)
            redSliceNode = slicer.mrmlScene.GetNodeByID("vtkMRMLSliceNodeRed")
            if redSliceNode is not None:
                sliceToRAS = redSliceNode.GetSliceToRAS()
                shownNormal = np.array([sliceToRAS.GetElement(r, 2) for r in range(3)])
                shownCenter = np.array([sliceToRAS.GetElement(r, 3) for r in range(3)])
                self.assertLess(np.abs(shownNormal - expectedNormal).max(), 1e-4, level)
                self.assertLess(np.abs(shownCenter - np.asarray(center)).max(), 1e-6, level)
        self.delayDisplay("Oblique disc planes: passed")



def _pdffPercentPerStoredUnit(pdffScale) -> float:
    """Percent per stored unit of a PDFF storage scale ("0-1" -> 100, "0-100" -> 1, "0-1000" -> 0.1)."""
    fullScale = {"0-1": 1.0, "0-100": 100.0, "0-1000": 1000.0}[str(pdffScale)]
    return 100.0 / fullScale


def tableRows(tableNode):
    """The rows of a table node as dicts (numbers as float, text as str)."""
    table = tableNode.GetTable()
    columns = [table.GetColumn(index) for index in range(table.GetNumberOfColumns())]
    rows = []
    for rowIndex in range(table.GetNumberOfRows()):
        row = {}
        for column in columns:
            value = column.GetValue(rowIndex)
            row[column.GetName()] = value if isinstance(column, vtk.vtkStringArray) else float(value)
        rows.append(row)
    return rows


def tableColumnValues(tableNode, columnName):
    """The values of one numeric column of a table node, as floats."""
    column = tableNode.GetTable().GetColumnByName(columnName)
    if column is None:
        raise ValueError(f"table {tableNode.GetName()!r} has no column {columnName!r}")
    return [float(column.GetValue(index)) for index in range(column.GetNumberOfValues())]


def segmentNames(segmentationNode):
    """Names of the segments of a segmentation node."""
    segmentation = segmentationNode.GetSegmentation()
    return [segmentation.GetNthSegment(index).GetName() for index in range(segmentation.GetNumberOfSegments())]


def segmentSliceMask(segmentationNode, segmentName, referenceVolumeNode, sliceIndex):
    """Boolean mask (j, i) of a segment on one slice (k) of the reference volume's grid.

    The segment is exported by Slicer's own ``vtkSlicerSegmentationsModuleLogic`` into a
    temporary labelmap volume on the reference volume's geometry.
    """
    segmentId = segmentationNode.GetSegmentation().GetSegmentIdBySegmentName(segmentName)
    if not segmentId:
        raise ValueError(f"segmentation {segmentationNode.GetName()!r} has no segment {segmentName!r}")
    segmentIds = vtk.vtkStringArray()
    segmentIds.InsertNextValue(segmentId)
    scene = segmentationNode.GetScene()
    labelmapNode = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "ParaspinalFatTest temporary labelmap")
    try:
        if not slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
                segmentationNode, segmentIds, labelmapNode, referenceVolumeNode,
                slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY):
            raise RuntimeError(f"exporting segment {segmentName!r} to a labelmap failed")
        labelmap = slicer.util.arrayFromVolume(labelmapNode)
        expectedShape = slicer.util.arrayFromVolume(referenceVolumeNode).shape
        if labelmap.shape != expectedShape:
            raise RuntimeError(f"segment {segmentName!r} exported on a {labelmap.shape} grid, not the reference "
                               f"volume's {expectedShape}")
        return np.array(labelmap[sliceIndex] > 0)
    finally:
        displayNode = labelmapNode.GetDisplayNode()
        colorNode = displayNode.GetColorNode() if displayNode is not None else None
        if colorNode is not None and not colorNode.GetSingletonTag():  # the export's own color table
            scene.RemoveNode(colorNode)
        if displayNode is not None:
            scene.RemoveNode(displayNode)
        scene.RemoveNode(labelmapNode)


def roiSliceTruth(imageNode, segmentationNode, segmentName, sliceIndex, percentPerUnit, thresholdPct):
    """What one ROI on one image slice holds, counted from the voxels with numpy.

    Returns
    -------
    dict
        ``mask`` (j, i), ``n_voxels``, ``csa_mm2`` (count x in-plane spacing product),
        ``mean_pct``, ``median_pct``, ``n_fat`` (PDFF >= threshold), ``fat_csa_mm2``,
        ``lean_csa_mm2``.
    """
    mask = segmentSliceMask(segmentationNode, segmentName, imageNode, sliceIndex)
    values = slicer.util.arrayFromVolume(imageNode)[sliceIndex][mask].astype(np.float64) * percentPerUnit
    spacing = imageNode.GetSpacing()
    area = float(spacing[0]) * float(spacing[1])
    count = int(mask.sum())
    fat = int((values >= thresholdPct).sum())
    return {
        "mask": mask, "n_voxels": count, "csa_mm2": count * area,
        "mean_pct": float(values.mean()) if count else float("nan"),
        "median_pct": float(np.median(values)) if count else float("nan"),
        "n_fat": fat, "fat_csa_mm2": fat * area, "lean_csa_mm2": (count - fat) * area,
    }

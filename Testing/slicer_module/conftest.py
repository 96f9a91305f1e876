"""Fixtures for the Slicer module's tests: a real MRML scene from the ``slicer-core`` wheel.

Nothing of Slicer is imitated here.  The ``mrml_scene`` fixture builds what the Slicer
application builds at start-up, from the wheel's own classes: a ``vtkMRMLScene``, a
``vtkSlicerApplicationLogic`` and the module logics the tests need (colours, markups,
segmentations, tables, plots, volumes), and sets ``slicer.mrmlScene``.  Without
``slicer-core`` (Python < 3.11, e.g. the 3.9 test venv) the fixture skips the test with a
message saying why.  The folder ``ParaspinalFat/`` (the module, not a package) is put on
``sys.path`` so that ``import ParaspinalFatLogic`` works as inside Slicer.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

MODULE_DIR = Path(__file__).resolve().parents[2] / "ParaspinalFat"
if str(MODULE_DIR) not in sys.path:
    sys.path.insert(0, str(MODULE_DIR))

from slicer_wheel import missing, slicer  # noqa: E402  (Testing/conftest.py puts Testing/ on sys.path)

SLICER_ERROR = missing("vtkMRMLScene", "vtkSlicerApplicationLogic")

#: the module logics a test scene gets (class names in the slicer-core wheel)
MODULE_LOGICS = ("vtkSlicerColorLogic", "vtkSlicerMarkupsLogic", "vtkSlicerSegmentationsModuleLogic",
                 "vtkSlicerTablesLogic", "vtkSlicerPlotsLogic", "vtkSlicerVolumesLogic")

# Every application logic and module logic made here is kept until the process ends:
# letting a vtkSlicerApplicationLogic be collected while markups nodes live segfaults.
_KEEP_ALIVE: list = []


def new_scene():
    """A scene with an application logic and the module logics of :data:`MODULE_LOGICS`.

    Returns
    -------
    vtkMRMLScene
        Also set as ``slicer.mrmlScene``.
    """
    app = slicer.vtkSlicerApplicationLogic()
    scene = slicer.vtkMRMLScene()
    app.SetMRMLScene(scene)
    logics = []
    for name in MODULE_LOGICS:
        logic = getattr(slicer, name)()
        logic.SetMRMLApplicationLogic(app)
        logic.SetMRMLScene(scene)
        logics.append(logic)
    _KEEP_ALIVE.append((app, scene, logics))
    slicer.mrmlScene = scene
    return scene


@pytest.fixture
def mrml_scene():
    """A fresh MRML scene (see :func:`new_scene`); the test is skipped without slicer-core."""
    if SLICER_ERROR:
        pytest.skip(f"slicer-core is not importable ({SLICER_ERROR})")
    return new_scene()


@pytest.fixture
def scene_factory():
    """:func:`new_scene`, for tests that need a second scene (e.g. to reload a saved one)."""
    if SLICER_ERROR:
        pytest.skip(f"slicer-core is not importable ({SLICER_ERROR})")
    return new_scene

"""3D Slicer's Python wheel (``slicer-core``) for the tests that run real Slicer code.

One place says whether the wheel is usable and why not: the tests of the Slicer module's
Logic and of Slicer-written ``.seg.nrrd`` files skip with that reason (Python < 3.11 has
no wheel, e.g. the 3.9 test venv).  Nothing of Slicer is imitated.
"""
from __future__ import annotations

import pytest

try:
    import slicer
except Exception as exc:  # ImportError, or a binary wheel that does not load
    slicer = None
    _IMPORT_ERROR = f"{type(exc).__name__}: {exc}"
else:
    _IMPORT_ERROR = ""


def missing(*classes: str) -> str:
    """Why the wheel cannot be used: ``""`` when ``slicer`` imports and has every class named."""
    if _IMPORT_ERROR:
        return _IMPORT_ERROR
    absent = [name for name in classes if not hasattr(slicer, name)]
    return f"the 'slicer' package has no {', '.join(absent)} (not slicer-core)" if absent else ""


def require(*classes: str, purpose: str):
    """The ``slicer`` module, or skip the calling test module (at module level) saying why.

    Parameters
    ----------
    *classes : str
        Slicer classes the module's tests use (e.g. ``"vtkMRMLSegmentationNode"``).
    purpose : str
        What the tests do, ending the skip message ("... install `slicer-core` ... to <purpose>.").
    """
    why = missing(*classes)
    if why:
        pytest.skip(f"3D Slicer's Python wheel is not importable ({why}); install `slicer-core` (Python >= 3.11, "
                    f"as in .venv-py312) to {purpose}.", allow_module_level=True)
    return slicer

"""Third-party packages the library needs, and one clear error when one is missing.

3D Slicer bundles numpy, scipy and SimpleITK but **no Slicer release bundles pandas**;
matplotlib (QC pictures, figures) and highdicom (DICOM SEG) are optional extras.
:func:`require` imports a package or raises :class:`~ParaspinalFatLib.errors.MissingDependencyError`
naming the package, what needs it, and the command that installs it (plain Python and
inside Slicer).  :func:`import_public` is what the lazy package faces use, so that a
missing package is reported the same way whichever public name was asked for first.
"""
from __future__ import annotations

import importlib
import importlib.util
import warnings
from types import ModuleType
from typing import Dict, Optional

from .errors import MissingDependencyError

__all__ = ["PACKAGES", "require", "is_installed", "import_public", "install_hint", "ignore_foreign_deprecations"]

#: import name -> (pip requirement, what it is for)
PACKAGES: Dict[str, tuple] = {
    "numpy": ("numpy", "every computation"),
    "scipy": ("scipy", "statistics and image processing"),
    "pandas": ("pandas", "tables (measurement results, statistics)"),
    "SimpleITK": ("SimpleITK", "reading and resampling images"),
    "matplotlib": ("paraspinalfat[report]", "QC pictures and figures"),
    "highdicom": ("paraspinalfat[dicomseg]", "reading DICOM SEG files"),
    "pydicom": ("pydicom", "reading DICOM files"),
    "openpyxl": ("paraspinalfat[cohort]", "the Excel export (subjects.xlsx)"),
    "pyreadstat": ("paraspinalfat[cohort]", "the SPSS export (subjects.sav)"),
    "tqdm": ("paraspinalfat[cohort]", "the progress bar of cohort runs"),
    "tomli": ("paraspinalfat[cohort]", "reading TOML analysis configs on Python < 3.11"),
    "distributed": ("paraspinalfat[dask]", "running a cohort on a Dask cluster"),
    "dask": ("paraspinalfat[dask]", "running a cohort on a Dask cluster"),
}


def install_hint(package: str) -> str:
    """The commands that install ``package`` in plain Python and inside 3D Slicer.

    Parameters
    ----------
    package : str
        Import name, e.g. ``"pandas"``.

    Returns
    -------
    str
        A sentence with both commands.
    """
    requirement = PACKAGES.get(package, (package, ""))[0]
    slicer_requirement = package if requirement.startswith("paraspinalfat") else requirement
    return (f"install it with `python -m pip install {requirement}` "
            f"(in 3D Slicer's Python console: `slicer.util.pip_install('{slicer_requirement}')`)")


def _missing(package: str, needed_for: Optional[str], exc: BaseException) -> MissingDependencyError:
    purpose = needed_for or PACKAGES.get(package, ("", "this feature"))[1]
    return MissingDependencyError(
        f"the package '{package}' is needed for {purpose} but is not installed; "
        f"{install_hint(package)}. (import failed: {exc})")


def require(package: str, needed_for: Optional[str] = None) -> ModuleType:
    """Import ``package`` or raise one clear :class:`MissingDependencyError`.

    Parameters
    ----------
    package : str
        Import name (``"pandas"``, ``"matplotlib"``, ``"highdicom"``...).
    needed_for : str, optional
        What needs it, for the message (default: the entry of :data:`PACKAGES`).

    Returns
    -------
    module
        The imported package.
    """
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        raise _missing(package, needed_for, exc) from None


def is_installed(package: str) -> bool:
    """Whether ``package`` can be found, without importing it.

    Parameters
    ----------
    package : str
        Import name.

    Returns
    -------
    bool
        False also when its import is blocked (``sys.modules[package] is None``).
    """
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def import_public(module_name: str) -> ModuleType:
    """Import one of this library's modules for a lazily resolved public name.

    A ``ModuleNotFoundError`` for a third-party package becomes a
    :class:`MissingDependencyError` naming that package and how to install it.

    Parameters
    ----------
    module_name : str
        Absolute module name, e.g. ``"ParaspinalFatLib.measurement.pipeline"``.

    Returns
    -------
    module
        The imported module.
    """
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing and missing != "ParaspinalFatLib":
            raise _missing(missing, None, exc) from None
        raise


def ignore_foreign_deprecations() -> None:
    """Install warning filters that drop other packages' deprecation notices.

    A ``DeprecationWarning`` of matplotlib, pyparsing or pandas is addressed to their
    developers, not a finding about the data: call this inside a ``warnings.catch_warnings()``
    block after its ``simplefilter("always")``, so that only those notices are dropped (this
    library's own deprecations still show).
    """
    for category in (DeprecationWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=r"(?!ParaspinalFatLib)")

"""Every error and warning class of the library, in one place.

Every message names the file, segment, option or row concerned and says what the
user can do about it.  This module imports nothing outside the standard library, so
``from ParaspinalFatLib.errors import InputError`` is free (also inside Slicer).

Errors
------
ParaspinalFatError
    Base class of every user-facing error.
InputError
    A file or argument cannot be used as given.
LevelError
    The disc level / measurement slice of a segment cannot be determined.
MeasurementError
    A measurement cannot be made (empty ROI on its level slice, unknown PDFF scale...).
MissingDependencyError
    An optional (or Slicer-unbundled) package is not installed; names the package and
    the command that installs it.
StatsError
    A statistics input problem (names the column or group).

Warnings
--------
ParaspinalFatWarning
    Base class of every warning (filter them all with this class).
SegmentationWarning, LevelWarning, NameWarning, StatsWarning
    Findings about a segmentation file, the level landmarks, segment names and
    statistics results that do not stop the work.
"""
from __future__ import annotations

__all__ = [
    "ParaspinalFatError", "InputError", "LevelError", "MeasurementError",
    "MissingDependencyError", "StatsError",
    "ParaspinalFatWarning", "SegmentationWarning", "LevelWarning", "NameWarning", "StatsWarning",
]


class ParaspinalFatError(Exception):
    """Base class of this library's user-facing errors."""


class InputError(ParaspinalFatError, ValueError):
    """A file or argument cannot be used as given (missing, unreadable, wrong shape...)."""


class LevelError(ParaspinalFatError, ValueError):
    """The disc level / measurement slice of a segment cannot be determined."""


class MeasurementError(ParaspinalFatError, ValueError):
    """A measurement cannot be made (empty ROI on its level slice, unknown PDFF scale...)."""


class MissingDependencyError(InputError, ImportError):
    """A package the requested work needs is not installed (the message says how to install it)."""


class StatsError(ParaspinalFatError, ValueError):
    """A statistics input problem that the user must fix (names the column/group)."""


class ParaspinalFatWarning(UserWarning):
    """Base class of this library's warnings (filter them all with this class)."""


class SegmentationWarning(ParaspinalFatWarning):
    """Something about a segmentation file that the user should know."""


class LevelWarning(ParaspinalFatWarning):
    """Something about the level landmarks that the user should know."""


class NameWarning(ParaspinalFatWarning):
    """A segment or level name was read in a way the user should know about."""


class StatsWarning(ParaspinalFatWarning):
    """A result is defined but degenerate (undefined CI, zero-variance group, ...)."""

"""Error types.  Every message names the file, segment or row concerned and says
what the user can do about it."""
from __future__ import annotations

__all__ = ["ParaspinalFatError", "InputError", "LevelError", "MeasurementError", "ParaspinalFatWarning"]


class ParaspinalFatError(Exception):
    """Base class of this library's user-facing errors."""


class InputError(ParaspinalFatError, ValueError):
    """A file or argument cannot be used as given (missing, unreadable, wrong shape...)."""


class LevelError(ParaspinalFatError, ValueError):
    """The disc level / measurement slice of a segment cannot be determined."""


class MeasurementError(ParaspinalFatError, ValueError):
    """A measurement cannot be made (empty ROI on its level slice, unknown PDFF scale...)."""


class ParaspinalFatWarning(UserWarning):
    """Base class of this library's warnings (filter them all with this class)."""

"""Warnings about segmentation files: the warning class and how it is issued.

:class:`SegmentationWarning` is issued by every segmentation reader, by the
Slicer ``.seg.nrrd`` interpretation and by
:func:`~ParaspinalFatLib.resample.resample_to_grid` for things the user should
know that do not stop the work.  Warnings point at the first frame outside this
package (the user's code), and the warnings about one file are also kept in the
segmentation's ``metadata["warnings"]``.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Dict, List

__all__ = ["SegmentationWarning"]


class SegmentationWarning(UserWarning):
    """Something about a segmentation file that the user should know."""


def _caller_stacklevel() -> int:
    """warnings stacklevel pointing at the first frame outside this package."""
    import sys

    package_dir = str(Path(__file__).resolve().parent)
    frame = sys._getframe(1)
    level = 1
    while frame is not None and str(Path(frame.f_code.co_filename).resolve().parent) == package_dir:
        frame = frame.f_back
        level += 1
    return level


class _Notes:
    """Collects warnings for one file: emitted and stored in metadata."""

    def __init__(self, source: str):
        self.source = source
        self.messages: List[str] = []

    def warn(self, message: str) -> None:
        self.messages.append(message)
        warnings.warn(f"{self.source}: {message}", SegmentationWarning,
                      stacklevel=_caller_stacklevel())

    def store(self, metadata: Dict[str, str]) -> None:
        if self.messages:
            old = metadata.get("warnings")
            metadata["warnings"] = "\n".join(([old] if old else []) + self.messages)

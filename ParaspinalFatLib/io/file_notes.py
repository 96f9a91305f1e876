"""How warnings about one input file are issued and kept.

:class:`~ParaspinalFatLib.errors.SegmentationWarning` is issued by every segmentation reader, by the
Slicer ``.seg.nrrd`` interpretation and by
:func:`~ParaspinalFatLib.io.resample.resample_to_grid` for things the user should
know that do not stop the work.  Warnings point at the first frame outside this
package (the user's code), and the warnings about one file are also kept in the
segmentation's ``metadata["warnings"]``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Dict, List
from ..errors import SegmentationWarning

def caller_stacklevel() -> int:
    """warnings stacklevel pointing at the first frame outside this package.

    Returns
    -------
    int
        The ``stacklevel`` to pass to :func:`warnings.warn` from the caller.
    """
    import sys

    package_dir = str(Path(__file__).resolve().parents[1])
    frame = sys._getframe(1)
    level = 1
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(package_dir + os.sep):
        frame = frame.f_back
        level += 1
    return level


class FileNotes:
    """Collects warnings for one file: emitted and stored in metadata."""

    def __init__(self, source: str):
        self.source = source
        self.messages: List[str] = []

    def warn(self, message: str) -> None:
        """Issue a warning about the file and keep its text.

        Parameters
        ----------
        message : str
            Text of the warning, without the file name (the warning shown is
            ``"<source>: <message>"``; the kept text is ``message`` alone).

        Warns
        -----
        SegmentationWarning
            Always; attributed to the first frame outside this package.
        """
        self.messages.append(message)
        warnings.warn(f"{self.source}: {message}", SegmentationWarning,
                      stacklevel=caller_stacklevel())

    def store(self, metadata: Dict[str, str]) -> None:
        """Append the kept warnings to ``metadata["warnings"]`` (in place).

        Parameters
        ----------
        metadata : dict of str to str
            Metadata of the segmentation read from the file; modified in
            place.  The messages are joined with newlines and appended after
            any text already under ``"warnings"``.  Nothing changes when no
            warning was issued.
        """
        if self.messages:
            old = metadata.get("warnings")
            metadata["warnings"] = "\n".join(([old] if old else []) + self.messages)

"""ParaspinalFatLib: headless paraspinal muscle fat measurement and statistics.

No Slicer import here, ever: this package runs in plain Python, in PythonSlicer
and inside the Slicer application alike.
"""
from __future__ import annotations

__version__ = "0.1.0"

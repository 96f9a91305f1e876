"""ParaspinalFatLib: headless paraspinal muscle fat measurement and statistics.

No Slicer import here, ever: this package runs in plain Python, in PythonSlicer
and inside the Slicer application alike.

Main entry points
-----------------
measure_case(image, segmentation, **options) -> pandas.DataFrame
    One row per subject x muscle x side x level.
measure(image, segmentation, **options) -> CaseMeasurement
    The per-level table plus per-slice / whole-ROI tables, level points, summary.
ParaspinalFatLib.stats
    Cohort statistics (ANOVA, regression, ICC, ROC...).
"""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import InputError, LevelError, MeasurementError, ParaspinalFatError  # noqa: E402
from .measure import CaseMeasurement, MeasureOptions, measure, measure_case  # noqa: E402

__all__ = [
    "measure_case", "measure", "MeasureOptions", "CaseMeasurement",
    "ParaspinalFatError", "InputError", "LevelError", "MeasurementError", "__version__",
]

"""ParaspinalFatLib: headless paraspinal muscle fat measurement and statistics.

No Slicer import here, ever: this package runs in plain Python, in PythonSlicer
and inside the Slicer application alike.  ``import ParaspinalFatLib`` loads no
third-party package (no numpy, pandas, SimpleITK...): the public names below are
resolved on first use (PEP 562), and a missing package (e.g. pandas, which no
Slicer release bundles) then raises one :class:`MissingDependencyError` that names
it and the command that installs it.

Main entry points
-----------------
measure_case(image, segmentation, **options) -> pandas.DataFrame
    One row per subject x muscle x side x level.
measure(image, segmentation, **options) -> CaseMeasurement
    The per-level table plus per-slice / whole-ROI tables, level points, summary.
run_cohort(manifest, output, ...) -> CohortResult
    A manifest of cases -> a study folder (measurements, subjects, codebook, errors).
write_report(study, config=None) -> ReportResult
    A study folder -> the paper's tables, figures and one HTML report.
ParaspinalFatLib.stats
    Cohort statistics (ANOVA, regression, ICC, ROC...).

Subpackages, in pipeline order: ``io`` (read images, segmentations, markups,
label names) -> ``anatomy`` (level grammar, segment names, level landmarks) ->
``composition`` (fat/lean per map kind) -> ``measurement`` (rows, voxels,
quantities, grades, summary) -> ``report`` (QC pictures, case files, the study
report) -> ``cohort`` (manifest, runner, subject tables) -> ``stats``.  See the README's "Architecture" section.
"""
from __future__ import annotations

from typing import Any, Dict, List

from .errors import (  # noqa: F401  (stdlib-only module: free to import)
    InputError, LevelError, LevelWarning, MeasurementError, MissingDependencyError, NameWarning,
    ParaspinalFatError, ParaspinalFatWarning, SegmentationWarning, StatsError, StatsWarning,
)

__version__ = "0.1.0"

# public name -> module that defines it (imported on first use)
_LAZY: Dict[str, str] = {
    "measure": "measurement.pipeline",
    "measure_case": "measurement.pipeline",
    "MeasureOptions": "measurement.pipeline",
    "CaseMeasurement": "measurement.pipeline",
    "read_image": "io.images",
    "read_segmentation": "io.segmentation_files",
    "write_seg_nrrd": "io.slicer_seg",
    "read_markups": "io.markups",
    "read_label_table": "io.label_names",
    "Segment": "segmentation",
    "Segmentation": "segmentation",
    "Geometry": "geometry",
    "summarize": "measurement.summary",
    "grade_summary": "measurement.grading",
    "make_phantom": "phantom",
    "run_cohort": "cohort.runner",
    "read_manifest": "cohort.manifest",
    "write_report": "report.html_report",
}
_SUBPACKAGES = ("stats", "io", "anatomy", "composition", "measurement", "report", "cohort")

__all__ = sorted(list(_LAZY) + list(_SUBPACKAGES) + [
    "ParaspinalFatError", "InputError", "LevelError", "MeasurementError", "MissingDependencyError",
    "StatsError", "ParaspinalFatWarning", "SegmentationWarning", "LevelWarning", "NameWarning",
    "StatsWarning", "__version__",
])


def __getattr__(name: str) -> Any:
    from .dependencies import import_public

    if name in _SUBPACKAGES:
        value = import_public(f"{__name__}.{name}")
    elif name in _LAZY:
        value = getattr(import_public(f"{__name__}.{_LAZY[name]}"), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))

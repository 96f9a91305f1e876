"""Table schemas and the per-subject summary (left/right, asymmetry, level mean).

The per-level table is the interchange format of this project: one row per
subject x muscle x side x level, with the columns of :data:`LEVEL_COLUMNS`.

Units: ``*_mm2`` in mm^2; ``*_ml`` in mL; ``slice_offset_mm`` in mm (signed,
along the slice normal, positive = the landmark lies on the side of increasing
slice index); ``mean``/``median``/``sd``/``p05``/``p10``/``p90``/``p95`` in ``unit`` (``%``
for PDFF maps, whatever the storage scale was); ``fat_area_ratio`` is a
fraction 0..1 of the finite voxels; ``fat_fraction_pct`` is the mean PDFF in %.
``plane`` is ``image`` (the image's own slice) or ``disc`` (an oblique plane
perpendicular to the local spine axis); ``plane_normal_lps_x/y/z`` is the unit
normal of the measured plane in LPS (pointing cranially) and ``plane_tilt_deg``
its angle (degrees) from the image's slice normal (0 for ``image``).
"""

from __future__ import annotations

from typing import List, Tuple


__all__ = ['COMPOSITION_COLUMNS', 'METHOD_COLUMNS', 'GRADE_COLUMNS', 'LEVEL_COLUMNS', 'SLICE_COLUMNS', 'ROI_COLUMNS', 'SUMMARY_COLUMNS', 'LOWER_LUMBAR_LEVELS']

#: per-group statistics and composition, shared by the three tables
COMPOSITION_COLUMNS: List[str] = [
    "n_voxels", "n_nan", "n_below_noise", "csa_mm2", "mean", "median", "sd", "p05", "p10", "p90", "p95",
    "fat_csa_mm2", "lean_csa_mm2", "undefined_csa_mm2", "fat_area_ratio", "fat_fraction_pct",
    "ff_signal_weighted_pct", "mean_muscle_window", "myosteatosis",
    "threshold_low", "threshold_high", "warnings",
]
#: how the numbers were made
METHOD_COLUMNS: List[str] = ["map_kind", "unit", "fat_threshold_pct", "pdff_scale", "method_params"]
#: grades added by :func:`grading.add_grades`
GRADE_COLUMNS: List[str] = ["grade_fat_pct", "grade_source", "goutallier", "kjaer"]
LEVEL_COLUMNS: List[str] = [
    "subject", "segment", "muscle", "side", "level", "level_source",
    "slice_index", "slice_offset_mm", "plane", "plane_normal_lps_x", "plane_normal_lps_y", "plane_normal_lps_z",
    "plane_tilt_deg", "n_slices", "pixel_area_mm2",
] + COMPOSITION_COLUMNS + GRADE_COLUMNS + METHOD_COLUMNS
SLICE_COLUMNS: List[str] = [
    "subject", "segment", "muscle", "side", "level", "slice_index", "slice_position_mm",
] + COMPOSITION_COLUMNS + METHOD_COLUMNS
ROI_COLUMNS: List[str] = [
    "subject", "segment", "muscle", "side", "level", "n_voxels", "n_nan", "n_below_noise", "volume_ml",
    "n_slices", "first_slice", "last_slice", "mean_csa_mm2", "max_csa_mm2",
    "mean", "median", "sd", "p05", "p10", "p90", "p95",
    "fat_volume_ml", "lean_volume_ml", "undefined_volume_ml", "fat_volume_ratio", "fat_fraction_pct",
    "ff_signal_weighted_pct", "mean_muscle_window", "myosteatosis", "threshold_low", "threshold_high",
    "warnings",
] + METHOD_COLUMNS
SUMMARY_COLUMNS: List[str] = [
    "subject", "muscle", "level", "metric", "unit", "left", "right", "lr_mean", "asymmetry_pct", "n_levels",
    "warnings",
]
#: the three levels averaged into the "lower lumbar profile" (seed 001)
LOWER_LUMBAR_LEVELS: Tuple[str, ...] = ("L3/4", "L4/5", "L5/S1")
LOWER_LUMBAR_LABEL = "mean L3/4-L5/S1"

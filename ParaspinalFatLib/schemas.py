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

from typing import Dict, List, Tuple


__all__ = ['COMPOSITION_COLUMNS', 'METHOD_COLUMNS', 'GRADE_COLUMNS', 'LEVEL_COLUMNS', 'SLICE_COLUMNS', 'ROI_COLUMNS', 'SUMMARY_COLUMNS', 'LOWER_LUMBAR_LEVELS',
           'LEVEL_COLUMN_DESCRIPTIONS', 'level_column_units']

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

#: what each column of the per-level table means (the Slicer module shows it as the column's description)
LEVEL_COLUMN_DESCRIPTIONS: Dict[str, str] = {
    "subject": "subject id",
    "segment": "segment name as in the segmentation",
    "muscle": "canonical muscle name",
    "side": "left or right (empty when the segment has no side)",
    "level": "vertebral level (disc L4/5: mid-disc; vertebra L3: mid-body)",
    "level_source": "where the level position came from (segment_name, level_slices, level_z, disc_mask, "
                    "vertebra_masks, markups)",
    "slice_index": "index of the measured image slice along the slice axis (0-based, ITK order)",
    "slice_offset_mm": "signed distance from the measured slice plane to the level point, along the slice normal",
    "plane": "image: the image slice nearest to the level point; disc: an oblique plane through the level "
             "point, perpendicular to the local spine axis",
    "plane_normal_lps_x": "x (LPS) of the unit normal of the measured plane, pointing cranially",
    "plane_normal_lps_y": "y (LPS) of the unit normal of the measured plane, pointing cranially",
    "plane_normal_lps_z": "z (LPS) of the unit normal of the measured plane, pointing cranially",
    "plane_tilt_deg": "angle between the measured plane and the image slice (0 for plane = image)",
    "n_slices": "number of slices (or planes) averaged",
    "pixel_area_mm2": "in-plane area of one voxel (or plane pixel)",
    "n_voxels": "ROI voxels on the measured slice(s)",
    "n_nan": "of which NaN or infinite (excluded from the statistics)",
    "n_below_noise": "of which below the Dixon noise floor (excluded from the statistics)",
    "csa_mm2": "total cross-sectional area (muscle + intramuscular fat)",
    "mean": "mean of the map inside the ROI",
    "median": "median of the map inside the ROI",
    "sd": "standard deviation of the map inside the ROI (ddof = 1)",
    "p05": "5th percentile of the map inside the ROI",
    "p10": "10th percentile of the map inside the ROI",
    "p90": "90th percentile of the map inside the ROI",
    "p95": "95th percentile of the map inside the ROI",
    "fat_csa_mm2": "cross-sectional area of the fat class",
    "lean_csa_mm2": "cross-sectional area of the lean (muscle) class (functional CSA)",
    "undefined_csa_mm2": "cross-sectional area of the undefined class",
    "fat_area_ratio": "fat voxels / classified voxels",
    "fat_fraction_pct": "PDFF/Dixon: mean voxel fat fraction",
    "ff_signal_weighted_pct": "Dixon: sum F / sum (F + W)",
    "mean_muscle_window": "CT: mean HU of the muscle-window voxels",
    "myosteatosis": "CT: 1 when the muscle-window mean is below the myosteatosis cut-off, else 0",
    "threshold_low": "lower class threshold used for the row",
    "threshold_high": "upper class threshold used for the row (PDFF/Dixon: the fat threshold)",
    "warnings": "row-level findings (empty when none)",
    "grade_fat_pct": "fat percentage behind the grades",
    "grade_source": "which fat percentage the grades use",
    "goutallier": "Goutallier grade (0-4) from the grade cut-offs",
    "kjaer": "Kjaer grade (0-2): < 10 %, 10-50 %, > 50 %",
    "map_kind": "image kind: pdff, dixon, ct, t1, t2 or scalar",
    "unit": "unit of the map statistics",
    "fat_threshold_pct": "fat threshold: a voxel is fat when its fat fraction is at least this",
    "pdff_scale": "storage scale of the PDFF map (output is always %)",
    "method_params": "every parameter of the composition method (JSON)",
}

#: unit of per-level columns whose unit does not depend on the image (the composition columns: FIXED_UNITS)
_OWN_UNITS: Dict[str, str] = {
    "slice_offset_mm": "mm", "plane_normal_lps_x": "1", "plane_normal_lps_y": "1", "plane_normal_lps_z": "1",
    "plane_tilt_deg": "deg", "pixel_area_mm2": "mm2", "grade_fat_pct": "%", "fat_threshold_pct": "%",
}
#: columns in the unit of the map values (the table's ``unit`` column)
_MAP_UNIT_COLUMNS = ("mean", "median", "sd", "p05", "p10", "p90", "p95", "threshold_low", "threshold_high",
                     "mean_muscle_window")


def level_column_units(levels) -> Dict[str, str]:
    """Unit of every column of a per-level table (``""`` for text columns).

    Parameters
    ----------
    levels : pandas.DataFrame
        A per-level table (:data:`LEVEL_COLUMNS`, possibly more).

    Returns
    -------
    dict of str to str
        Map statistics and thresholds in the table's ``unit`` column (``%``
        for PDFF; its first non-empty value), areas ``mm2``, counts
        ``voxels``, fractions and flags ``1``, angles ``deg`` (see
        :data:`~ParaspinalFatLib.composition.base.FIXED_UNITS`).
    """
    from .composition.base import FIXED_UNITS

    map_unit = ""
    if "unit" in levels.columns:
        units = [str(u) for u in levels["unit"] if isinstance(u, str) and u]
        map_unit = units[0] if units else ""
    return {str(column): map_unit if column in _MAP_UNIT_COLUMNS
            else _OWN_UNITS.get(column, FIXED_UNITS.get(column, "")) for column in levels.columns}

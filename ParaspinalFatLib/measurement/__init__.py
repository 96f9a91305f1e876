"""Stage 4 — measurement: from a case's arrays to its tables.

Modules
-------
pipeline
    ``measure``/``measure_case``: read, plan, gather, tabulate (the entry point).
planning
    Which ROIs are measured and on which level slice (``plan_rows``).
voxels
    Gathering each ROI's voxels once (``gather_roi_voxels``).
quantities
    The numbers of a row: CSA, map statistics, fat/lean areas (``measure_groups``).
case_tables
    The per-level, per-slice and whole-ROI tables of one case.
grading
    Goutallier and Kjaer grades.
summary
    Left/right, asymmetry and the L3/4-L5/S1 mean per subject.
planes
    Oblique (disc-parallel) planes: image and masks sampled on them, partial-volume CSA.
disc_planes
    The per-level rows measured on disc-parallel planes (``plane="disc"``).
bone
    Trabecular bone attenuation / vBMD of the vertebral bodies (``bone_table``).
skeletal_muscle
    Skeletal muscle index at L3 (``muscle_index``).
"""

"""Stage 5 — report: what a case writes besides its tables' numbers.

Modules
-------
case_files
    Atomic CSV writing, the QC pictures of the measured rows, the fat/lean labelmap.
qc_pictures
    Rendering of one level slice and of the sagittal overview (matplotlib, optional).
"""

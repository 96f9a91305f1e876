"""Stage 5 — report: what a case writes besides its tables' numbers.

Modules
-------
case_files
    CSV writing (atomic, as a set: ``OutputSet``; formula-safe cells), output-path checks,
    the QC pictures of the measured rows, the fat/lean labelmap.
qc_pictures
    Rendering of one level slice and of the sagittal overview (matplotlib, optional).
qc_layout
    The pixel-exact frame of a QC picture: sizes, fonts, header, image, outline/label geometry.
qc_png
    The QC PNG pixel-mapping record, reading it back, atomic PNG writing.
plane_pictures
    QC pictures of the disc-parallel planes and the sagittal overview with the tilted plane lines.
"""

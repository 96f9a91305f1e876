"""Stage 1 — read what the user has: images, segmentations, markups, label names.

Modules
-------
images
    Images (NRRD, NIfTI, MHA, DICOM series) with their geometry; grid checks.
segmentation_files
    ``read_segmentation``: finds a segmentation file's format from its content and routes it.
slicer_seg
    3D Slicer ``.seg.nrrd`` (read and write).
dicom_seg
    DICOM Segmentation objects (optional highdicom).
label_names
    Names of labelmap values: ``.ctbl``/``.txt``, JSON, CSV, inline ``1=right ES,2=right MF``,
    TotalSegmentator conventions.
label_layers
    Integer label-array helpers (layers of overlapping segments, compact dtypes).
nrrd, nifti
    The NRRD reader/writer; NIfTI completeness checks and sibling-safe reads.
markups
    Labelled control points and lines of Slicer markups files (``.mrk.json``, ``.fcsv``).
resample
    A segmentation onto the image grid (nearest neighbour, physical space).
file_notes
    How warnings about one input file are issued and kept.
"""

"""Stage 6 — cohort: a manifest of cases -> one study folder of tidy tables.

Modules
-------
manifest
    ``read_manifest``: the cases, their options and clinical columns, every problem listed at once.
fingerprints
    What a case's result depends on (options, input files): resuming recomputes only what changed.
runner
    ``run_cohort``: every case measured in worker processes or on a Dask cluster, resumable,
    one error row per failed case; ``measurements.csv``, ``errors.csv``, ``run.log``.
variables
    Statistics-safe variable names (``mf_pdff_mean``, ``ps_csa_L4_5_left``).
subject_tables
    ``subjects.csv`` (one row per subject [x rater x session]) and ``codebook.csv``; one value
    per subject for the analyses (``one_per_subject``).
exports
    Excel (openpyxl) and SPSS (pyreadstat) copies of the subject table, with labels.
synthetic_cohort
    The demo cohort: phantom cases whose values follow seed 001's Table 2.
"""

"""Command line: ``paraspinalfat`` / ``python -m ParaspinalFatLib``.

Sub-commands
------------
``measure``  one case: image + segmentation -> per-level CSV (+ slices, ROIs, summary)
``cohort``   a manifest of cases -> study folder (measurements, subjects, codebook, errors)
``report``   a study folder -> paper-style tables, figures and one HTML report
``phantom``  write a synthetic phantom case (image, .seg.nrrd, truth CSV)
``demo``     synthetic cohort -> cohort -> report (``--case``: one phantom case, checked against its truth)
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

from .dependencies import ignore_foreign_deprecations
from .errors import InputError, ParaspinalFatError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["main", "build_parser"]


def _side_paths(output: Path):
    stem = output.name[:-4] if output.name.lower().endswith(".csv") else output.name
    return {
        "slices": output.with_name(f"{stem}_slices.csv"),
        "rois": output.with_name(f"{stem}_rois.csv"),
        "summary": output.with_name(f"{stem}_summary.csv"),
        "summary_wide": output.with_name(f"{stem}_summary_wide.csv"),
        "grades": output.with_name(f"{stem}_grades.csv"),
        "landmarks": output.with_name(f"{stem}_levels.csv"),
        "bone": output.with_name(f"{stem}_bone.csv"),
        "smi": output.with_name(f"{stem}_smi.csv"),
    }


def _add_measure_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image", help="parameter map: NRRD/NIfTI/MHA file or DICOM series folder "
                                   "(for --map dixon use --fat and --water)")
    p.add_argument("--segmentation", required=True,
                   help="Slicer .seg.nrrd, labelmap (NRRD/NIfTI), TotalSegmentator NIfTI or DICOM SEG")
    p.add_argument("--map", dest="map_kind", default="pdff", choices=["pdff", "dixon", "ct", "t1", "t2", "scalar"],
                   help="what the image is: pdff (fat fraction map, output in %%), dixon (--water/--fat), "
                        "ct (HU windows), t1/t2 (intensity classification) or scalar (statistics only)")
    p.add_argument("--water", help="Dixon water image")
    p.add_argument("--fat", help="Dixon fat image")
    p.add_argument("--noise-floor", type=float,
                   help="Dixon: exclude voxels with F+W below this (default: 2%% of the 99.5th percentile of F+W)")
    p.add_argument("--fat-window", type=_pair, default=(-190.0, -29.0), metavar="LOW,HIGH",
                   help="CT fat window in HU, half-open [LOW, HIGH) (default -190,-29 = -190..-30 HU)")
    p.add_argument("--muscle-window", type=_pair, default=(-29.0, 151.0), metavar="LOW,HIGH",
                   help="CT muscle window in HU, half-open [LOW, HIGH) (default -29,151 = -29..150 HU)")
    p.add_argument("--myosteatosis-cutoff", dest="myosteatosis_cutoff_hu", type=float,
                   help="CT: flag rows whose muscle-window mean HU is below this (e.g. 41)")
    p.add_argument("--no-ct-units-check", dest="ct_units_check", action="store_false",
                   help="CT: skip the check that the image's values are Hounsfield units "
                        "(only when you know they are)")
    p.add_argument("--classifier", default="gmm", choices=["gmm", "kmeans", "otsu", "fcm", "reference"],
                   help="T1/T2 fat/lean classification (default gmm)")
    p.add_argument("--n-classes", type=int, default=3, choices=[2, 3],
                   help="T1/T2: 2 (fat/lean) or 3 classes (fat/undefined/lean; default)")
    p.add_argument("--reference-segment", help="T1/T2 --classifier reference: the reference fat segment's name")
    p.add_argument("--grade-source", default="auto", choices=["auto", "fat_fraction_pct", "fat_area_pct"],
                   help="fat %% behind the grades (auto: mean FF for pdff/dixon, fat area %% otherwise)")
    p.add_argument("--goutallier-cutoffs", type=_floats, metavar="C1,C2,C3,C4",
                   help="Goutallier cut-offs in %% (default 10,25,40,60: this project's convention)")
    p.add_argument("--kjaer-cutoffs", type=_floats, metavar="C1,C2", help="Kjaer cut-offs in %% (default 10,50)")
    p.add_argument("--qc-dir", help="write QC pictures (one PNG per level + a sagittal overview) here")
    p.add_argument("--fat-labelmap",
                   help="write the fat/lean/undefined classes as a labelmap on the image grid "
                        "(.seg.nrrd for Slicer segments, or .nrrd/.nii.gz with 1 lean, 2 undefined, 3 fat)")
    p.add_argument("--output", "-o", help="per-level CSV to write (side tables get the same stem)")
    p.add_argument("--subject", help="subject id (default: image file name)")
    p.add_argument("--pdff-scale", choices=["0-1", "0-100", "0-1000"],
                   help="storage scale of the PDFF map (default: detected)")
    p.add_argument("--fat-threshold", dest="fat_threshold_pct", type=float, default=50.0,
                   help="PDFF (%%) at or above which a voxel is fat (default 50)")
    p.add_argument("--unit", help="unit of a scalar map (HU, mm2/s, ...)")
    p.add_argument("--levels", default="L3/4,L4/5,L5/S1",
                   help="disc levels for 3-D muscle masks, comma separated, or 'all' (default L3/4,L4/5,L5/S1)")
    p.add_argument("--n-slices", type=int, default=1, help="average over N slices centred on the level (odd)")
    p.add_argument("--markups", help="Slicer markups (.mrk.json / .fcsv): points labelled by level (disc L4/5 "
                                     "or vertebrae L4, L5), or a line per disc named by its level")
    p.add_argument("--level-slices", metavar="LEVEL=SLICE,...",
                   help="level positions as slice indices, e.g. 'L3/4=12,L4/5=18,L5/S1=24' (count from 0 as "
                        "Slicer's Data Probe, or see --slice-base); they win over every other level source")
    p.add_argument("--slice-base", type=int, choices=[0, 1], default=0,
                   help="how --level-slices count: 0 = first slice is 0 (Slicer, ITK; default), "
                        "1 = first slice is 1 (ITK-SNAP, image numbers)")
    p.add_argument("--level-z", metavar="LEVEL=Z,...",
                   help="level positions as LPS z in mm (Slicer's S coordinate), e.g. 'L4/5=-312.5'")
    p.add_argument("--plane", choices=["image", "disc"], default="image",
                   help="image: measure on the image slice nearest to each level (default; 2-D ROIs drawn on "
                        "acquired slices); disc: on an oblique plane through the level point perpendicular to "
                        "the local spine axis (disc-parallel), for 3-D masks")
    p.add_argument("--plane-pixel-mm", dest="plane_pixel_mm", type=float,
                   help="--plane disc: pixel size of the oblique planes in mm (default: the image's finest "
                        "in-plane spacing)")
    p.add_argument("--height-m", dest="height_m", type=float,
                   help="body height in metres: adds the skeletal muscle index (cm2/m2) at L3 "
                        "(<stem>_smi.csv; measure L3, e.g. --levels L3,L3/4,L4/5,L5/S1)")
    p.add_argument("--bone-levels", default="L1,L2",
                   help="vertebrae whose trabecular bone is measured when their masks exist (default L1,L2; "
                        "'none' for none) -> <stem>_bone.csv")
    p.add_argument("--bone-erosion-mm", dest="bone_erosion_mm", type=float, default=5.0,
                   help="distance in mm the trabecular core keeps from the vertebra surface (default 5)")
    p.add_argument("--bone-slab-mm", dest="bone_slab_mm", type=_slab, default=10.0,
                   help="thickness in mm of the mid-vertebral slab of the core (default 10; 'all' = whole body)")
    p.add_argument("--bmd-calibration", metavar="SLOPE,INTERCEPT",
                   help="CT: vBMD mg/cm3 = SLOPE x HU + INTERCEPT from a calibration phantom; without it bone "
                        "values are HU, which is not vBMD")
    p.add_argument("--label-names", help="names for a labelmap: .ctbl/.txt colour table, .json or .csv file, or "
                                         "inline '1=right ES,2=right MF,3=left MF,4=left ES'")
    p.add_argument("--convention", choices=["totalsegmentator", "totalspineseg"],
                   help="label-value convention of an unnamed labelmap")
    p.add_argument("--names-table", help="CSV extending the built-in muscle name table")
    p.add_argument("--segments", help="measure only these segments (comma separated names as in the file)")
    p.add_argument("--muscles", default="auto",
                   help="auto (paraspinal muscles when present, else all; default), all, or canonical names "
                        "comma separated (multifidus,psoas)")
    p.add_argument("--per-slice", action="store_true", help="also write <stem>_slices.csv (every slice of every ROI)")
    p.add_argument("--whole-roi", action="store_true", help="also write <stem>_rois.csv (3-D summary per segment)")
    p.add_argument("--on-empty", choices=["error", "keep"], default="error",
                   help="an ROI empty on its level slice: error (default) or keep the row")
    p.add_argument("--assume-same-grid", action="store_true",
                   help="accept same-size grids whose headers disagree (uses the image header; warns) -- "
                        "only for a file that lost its header")
    p.add_argument("--resample-segmentation", action="store_true",
                   help="a same-size segmentation placed elsewhere by its header was drawn on another "
                        "series: resample it onto the image in physical space")


def _pair(text: str):
    """``"LOW,HIGH"`` -> (float, float) for window options."""
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH, got {text!r}") from None
    return lo, hi


def _slab(text: str):
    """``--bone-slab-mm``: a number, or ``all`` (None: the whole eroded body)."""
    if text.strip().lower() in ("all", "none", "whole"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a thickness in mm or 'all', got {text!r}") from None


def _names_arg(text: str, keywords=("all",)):
    """``"a, b"`` -> ``["a", "b"]``; a keyword (``all``) is passed on as it is, in lower case."""
    if text.strip().lower() in keywords:
        return text.strip().lower()
    return [x.strip() for x in text.split(",") if x.strip()]


def _floats(text: str):
    """``"10,25,40,60"`` -> tuple of floats."""
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _check_output_paths(args) -> None:
    """Refuse unusable output paths before anything is measured (fail fast)."""
    from .report.case_files import check_labelmap_path, check_output_file, check_output_folder

    outputs = []
    if args.output:
        out = check_output_file(args.output, "--output")
        outputs.append(("--output", out))
        for side in _side_paths(out).values():
            if side.is_dir():
                raise InputError(f"--output {out}: {side}, written beside it, is a folder; remove it or "
                                 f"choose another --output name")
            outputs.append(("--output", side))
    if args.qc_dir:
        check_output_folder(args.qc_dir, "--qc-dir")
    if args.fat_labelmap:
        outputs.append(("--fat-labelmap", check_labelmap_path(args.fat_labelmap, "--fat-labelmap")))
    inputs = [("--image", args.image), ("--segmentation", args.segmentation), ("--water", args.water),
              ("--fat", args.fat), ("--markups", args.markups), ("--label-names", args.label_names),
              ("--names-table", args.names_table)]
    for option, path in outputs:
        for flag, given in inputs:
            if given and path.is_file() and Path(given).is_file() and path.samefile(given):
                raise InputError(f"{option} {path}: this is the input file of {flag}; it would be "
                                 f"overwritten; choose another output name")


def _run_measure(args) -> int:
    from .measurement.pipeline import measure
    from .report.case_files import OutputSet

    _check_output_paths(args)
    result = measure(
        args.image, args.segmentation,
        map_kind=args.map_kind, water=args.water, fat=args.fat, noise_floor=args.noise_floor,
        fat_window=args.fat_window, muscle_window=args.muscle_window,
        myosteatosis_cutoff_hu=args.myosteatosis_cutoff_hu, ct_units_check=args.ct_units_check,
        classifier=args.classifier,
        n_classes=args.n_classes, reference_segment=args.reference_segment, grade_source=args.grade_source,
        goutallier_cutoffs=args.goutallier_cutoffs, kjaer_cutoffs=args.kjaer_cutoffs, qc_dir=args.qc_dir,
        fat_labelmap=args.fat_labelmap, pdff_scale=args.pdff_scale, fat_threshold_pct=args.fat_threshold_pct,
        unit=args.unit, levels=_names_arg(args.levels), n_slices=args.n_slices, per_slice=args.per_slice,
        whole_roi=args.whole_roi, on_empty=args.on_empty, assume_same_grid=args.assume_same_grid,
        resample_segmentation=args.resample_segmentation,
        subject=args.subject, markups=args.markups, label_names=args.label_names,
        convention=args.convention, name_table=args.names_table,
        segments=[s.strip() for s in args.segments.split(",")] if args.segments else None,
        muscles=args.muscles if args.muscles.lower() in ("auto", "all") else args.muscles.split(","),
        plane=args.plane, plane_pixel_mm=args.plane_pixel_mm, level_slices=args.level_slices,
        slice_base=args.slice_base, level_z=args.level_z, height_m=args.height_m,
        bone_levels=[] if args.bone_levels.strip().lower() == "none" else _names_arg(args.bone_levels, ()),
        bone_erosion_mm=args.bone_erosion_mm, bone_slab_mm=args.bone_slab_mm,
        bmd_calibration=args.bmd_calibration,
    )
    _print_levels(result.levels)
    if args.output:
        out = Path(args.output)
        side = _side_paths(out)
        tables = [(out, result.levels), (side["summary"], result.summary(wide=False)),
                  (side["summary_wide"], result.summary(wide=True)), (side["landmarks"], result.landmarks),
                  (side["grades"], result.grades()), (side["slices"], result.slices), (side["rois"], result.rois),
                  (side["bone"], result.bone if result.bone is not None and len(result.bone) else None),
                  (side["smi"], result.muscle_index)]
        # one set: every CSV is staged beside the targets and moved in only when all were written;
        # a <stem>_slices/_rois.csv of an earlier run that this run does not produce is removed with it
        with OutputSet(out.parent, option="--output") as files:
            for path, table in tables:
                if table is not None:
                    files.write_csv(table, path.name)
                else:
                    files.remove(path.name)
        for p in files.written:
            print(f"wrote {p}")
        for p in files.removed:
            print(f"removed {p} (from an earlier run; this run does not produce it)")
    return 0


def _print_levels(df: "pd.DataFrame") -> None:
    import pandas as pd

    if not len(df):
        print("no per-level rows (no level was measured; see the warnings); the other tables are written")
        return
    if "plane" in df and (df["plane"] == "disc").any():
        df = df.rename(columns={"plane_tilt_deg": "tilt_deg"})
    cols = [c for c in ("muscle", "side", "level", "slice_index", "slice_offset_mm", "tilt_deg", "csa_mm2", "mean",
                        "sd", "fat_csa_mm2", "fat_area_ratio", "goutallier", "kjaer", "unit") if c in df]
    with pd.option_context("display.max_rows", 500, "display.width", 160, "display.precision", 3):
        print(df[cols].to_string(index=False))


def _run_phantom(args) -> int:
    from .phantom import make_phantom, write_phantom

    ph = make_phantom(mode=args.mode, pdff_scale=args.pdff_scale, tilt_deg=args.tilt)
    paths = write_phantom(ph, args.out, stem=args.stem)
    for p in paths.values():
        print(f"wrote {p}")
    return 0


def _measure_defaults(args) -> dict:
    """Command-line measure options given explicitly (cohort defaults for every manifest row)."""
    defaults = {}
    for name in ("map_kind", "pdff_scale", "fat_threshold_pct", "n_slices", "plane", "on_empty", "height_m"):
        value = getattr(args, name, None)
        if value is not None:
            defaults[name] = value
    if getattr(args, "levels", None):
        defaults["levels"] = _names_arg(args.levels)
    return defaults


def _run_cohort(args) -> int:
    from .cohort.runner import run_cohort
    from .cohort.subject_tables import write_subject_tables

    result = run_cohort(args.manifest, args.output, workers=args.workers, scheduler=args.scheduler,
                        defaults=_measure_defaults(args), qc=args.qc, assemble=write_subject_tables)
    print(f"{result.n_cases} case(s): {result.n_measured} measured, {result.n_reused} reused from an earlier run, "
          f"{result.n_failed} failed (see {Path(args.output) / 'errors.csv'})")
    print(f"study folder: {result.output}")
    return 1 if result.n_failed else 0


def _run_report(args) -> int:
    from .report.html_report import write_report

    report = write_report(args.study, config=args.config, output=args.output)
    print(f"report: {report.html}")
    print(f"every number: {report.results_csv}")
    return 0


def _run_demo(args) -> int:
    if args.case:
        return _run_case_demo(args)
    from .cohort.runner import run_cohort
    from .cohort.subject_tables import write_subject_tables
    from .cohort.synthetic_cohort import make_synthetic_cohort
    from .report.html_report import write_report

    out = Path(args.out)
    cohort = make_synthetic_cohort(out / "synthetic", n_subjects=args.subjects)
    print(f"synthetic cohort of {cohort.n_subjects} subjects (groups, clinical columns and muscle values drawn "
          f"from seed 001's Table 2) in {cohort.folder}")
    study = out / "study"
    result = run_cohort(cohort.manifest, study, workers=args.workers, assemble=write_subject_tables, qc=True)
    print(f"cohort: {result.n_measured + result.n_reused} of {result.n_cases} case(s) measured, "
          f"{result.n_failed} failed")
    report = write_report(study)
    print(f"report: {report.html}")
    return 0 if result.n_failed == 0 else 1


def _run_case_demo(args) -> int:
    import numpy as np

    from .measurement.pipeline import measure
    from .phantom import make_phantom, write_phantom
    from .report.case_files import OutputSet

    out = Path(args.out)
    ph = make_phantom(mode="2d", pdff_scale="0-1000", tilt_deg=8.0)
    paths = write_phantom(ph, out, stem="demo")
    print(f"phantom written to {out}/ (PDFF stored 0-1000, grid tilted 8 degrees)\n")
    result = measure(paths["image"], paths["segmentation"], map_kind="pdff", subject="demo")
    _print_levels(result.levels)
    with OutputSet(out, option="--out") as files:
        csv = files.write_csv(result.levels, "demo_levels.csv")
        files.write_csv(result.summary(), "demo_summary.csv")
    merged = result.levels.merge(ph.truth, on="segment", suffixes=("", "_truth"))
    err_csa = float(np.max(np.abs(merged["csa_mm2"] - merged["csa_mm2_truth"])))
    err_ff = float(np.max(np.abs(merged["mean"] - merged["mean_pdff_pct"])))
    print(f"\nwrote {csv}")
    print(f"check against the phantom truth ({len(merged)} ROIs): max |CSA error| = {err_csa:.3g} mm2, "
          f"max |mean PDFF error| = {err_ff:.3g} %")
    return 0 if err_csa < 1e-6 and err_ff < 1e-4 else 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``paraspinalfat`` command.

    Returns
    -------
    argparse.ArgumentParser
        Parser with the required sub-commands ``measure``, ``phantom`` and
        ``demo``; each sub-parser sets ``func`` (the function that runs the
        sub-command and returns an exit status) in the parsed namespace.
        Nothing is imported beyond the standard library until a sub-command
        runs.
    """
    parser = argparse.ArgumentParser(prog="paraspinalfat", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure", help="measure one case")
    _add_measure_args(m)
    m.set_defaults(func=_run_measure)
    ph = sub.add_parser("phantom", help="write a synthetic phantom case")
    ph.add_argument("--out", required=True, help="output folder")
    ph.add_argument("--stem", default="phantom")
    ph.add_argument("--mode", choices=["2d", "3d"], default="2d",
                    help="2d: named 2-D ROIs per level; 3d: 3-D muscles + vertebra masks")
    ph.add_argument("--pdff-scale", choices=["0-1", "0-100", "0-1000"], default="0-100")
    ph.add_argument("--tilt", type=float, default=0.0, help="tilt of the slice stack (degrees)")
    ph.set_defaults(func=_run_phantom)
    c = sub.add_parser("cohort", help="measure every case of a manifest into a study folder (resumable, parallel)")
    c.add_argument("--manifest", required=True, help="CSV: subject, image (or fat + water), segmentation, options "
                                                       "by name, clinical columns (README: Cohort)")
    c.add_argument("--output", required=True, help="study folder (created; an earlier run in it is resumed)")
    c.add_argument("--workers", type=int, help="worker processes (default: the number of cores)")
    c.add_argument("--scheduler", help="Dask scheduler address tcp://host:8786, or 'local' for a local cluster")
    c.add_argument("--qc", action="store_true", help="also write each case's QC pictures (cases/<case>/qc/)")
    c.add_argument("--map", dest="map_kind", choices=["pdff", "dixon", "ct", "t1", "t2", "scalar"],
                   help="default map kind of rows without a 'map' cell")
    c.add_argument("--pdff-scale", choices=["0-1", "0-100", "0-1000"], help="default PDFF storage scale")
    c.add_argument("--fat-threshold", dest="fat_threshold_pct", type=float, help="default fat threshold (%%)")
    c.add_argument("--levels", help="default levels (comma separated, or 'all')")
    c.add_argument("--n-slices", type=int, help="default slices per level")
    c.add_argument("--plane", choices=["image", "disc"], help="default measurement plane")
    c.add_argument("--on-empty", choices=["error", "keep"], help="default for an ROI empty on its level slice")
    c.set_defaults(func=_run_cohort)
    r = sub.add_parser("report", help="paper-style tables, figures and an HTML report of a study folder")
    r.add_argument("--study", required=True, help="study folder written by 'cohort'")
    r.add_argument("--config", help="analysis config: a .toml file, or 'seed001' (default) / 'seed002'")
    r.add_argument("--output", help="report folder (default: <study>/report)")
    r.set_defaults(func=_run_report)
    d = sub.add_parser("demo", help="synthetic cohort -> cohort -> report (--case: one phantom case)")
    d.add_argument("--out", default="demo_output", help="folder for the synthetic data, the study and the report")
    d.add_argument("--subjects", type=int, default=60, help="subjects of the synthetic cohort (default 60)")
    d.add_argument("--workers", type=int, help="worker processes (default: the number of cores)")
    d.add_argument("--case", action="store_true",
                   help="one phantom case: measure it, print the table and check it against its truth")
    d.set_defaults(func=_run_demo)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit status (2 for input errors).

    Warnings raised while the sub-command runs are all shown (not only the
    first of each place), on standard error as ``paraspinalfat: warning: ...``.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments without the program name; ``sys.argv[1:]`` when
        ``None``.

    Returns
    -------
    int
        0 on success; 1 when ``demo --case`` finds the measured table differs
        from the phantom truth, or when ``cohort``/``demo`` completed with failed
        cases (listed in ``errors.csv``); 2 when a :class:`~ParaspinalFatLib.errors.ParaspinalFatError`
        or an :class:`OSError` (a file that cannot be read or written) is
        raised: one line ``paraspinalfat: error: ...`` on standard error, no
        traceback.  Unusable output paths (``--output`` a folder, ``--qc-dir``
        a file, a ``--fat-labelmap`` extension no writer knows, an output that
        is an input file) are refused before anything is measured; the CSV
        tables of ``measure --output`` are written as one set
        (:class:`~ParaspinalFatLib.report.case_files.OutputSet`).

    Raises
    ------
    SystemExit
        From :mod:`argparse`: invalid or missing arguments (status 2) and
        ``--help`` (status 0).  Other errors propagate unchanged.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            ignore_foreign_deprecations()  # matplotlib's, pyparsing's... are not findings
            warnings.showwarning = _show_warning
            return int(args.func(args) or 0)
    except ParaspinalFatError as exc:
        print(f"paraspinalfat: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file the library did not check: still one clean line naming it
        print(f"paraspinalfat: error: {exc}", file=sys.stderr)
        return 2


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"paraspinalfat: warning: {message}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

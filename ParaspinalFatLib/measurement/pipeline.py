"""Measure one case: image + segmentation -> per muscle x side x level table.

Pipeline
--------
1. Read the image (any SimpleITK format, a DICOM folder) and the segmentation
   (Slicer ``.seg.nrrd``, labelmap + names, TotalSegmentator/TotalSpineSeg
   NIfTI, DICOM SEG) and put the segmentation on the image grid (nearest
   neighbour, in physical space).
2. Parse every segment name into (muscle, side, level, kind).
3. Find the measurement slice of every ROI: a level in the segment name wins
   (the ROI's own slice); otherwise the disc-level landmarks (disc masks, then
   vertebra masks, then a markups file) give mid-disc points, and the slice is
   the image plane nearest to that point along the slice normal.
4. Gather all ROI voxels in one pass per layer and compute grouped statistics.

See :class:`MeasureOptions` for every option and
:data:`~ParaspinalFatLib.schemas.LEVEL_COLUMNS` for the output columns.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union
import numpy as np
import pandas as pd
import SimpleITK as sitk
from ..io.images import check_same_grid, image_array, read_image
from ..errors import InputError, ParaspinalFatWarning
from ..geometry import Geometry
from .case_tables import level_table, roi_table, slice_table
from ..report.case_files import write_class_labelmap, write_qc_pictures
from ..composition.base import EXCLUDED
from ..composition.ct import CT_FAT_WINDOW, CT_MUSCLE_WINDOW
from ..composition.factory import make_method
from ..anatomy.level_names import level_sort_key
from .planning import plan_rows, select_rois
from ..segmentation import Segmentation
from .summary import summarize
from .voxels import gather_roi_voxels


__all__ = ['DEFAULT_LEVELS', 'MeasureOptions', 'CaseMeasurement', 'measure', 'measure_case']

#: disc levels measured by default for 3-D muscle masks (the "lower lumbar profile")
DEFAULT_LEVELS = ("L3/4", "L4/5", "L5/S1")
@dataclass(frozen=True)
class MeasureOptions:
    """Options of :func:`measure` (all keyword arguments of :func:`measure_case`).

    Attributes
    ----------
    map_kind : str
        ``"pdff"`` (fat-fraction map, output in %), ``"dixon"`` (water + fat
        images), ``"ct"`` (HU), ``"t1"``/``"t2"`` (intensity classification) or
        ``"scalar"`` (any map: statistics only).  See
        :mod:`ParaspinalFatLib.composition`.
    water, fat : str, path or SimpleITK.Image, optional
        Dixon water and fat images (``fat`` may also be given as ``image``).
    noise_floor : float, optional
        Dixon: voxels with F + W below this are excluded and counted
        (default ``noise_floor_fraction`` x the image's 99.5th percentile of F + W).
    noise_floor_fraction : float
        Dixon: relative noise floor used when ``noise_floor`` is not given (0.02).
    fat_window, muscle_window : (float, float)
        CT windows in HU, half-open ``[low, high)``; defaults (-190, -29) and
        (-29, 151), i.e. the integer windows -190..-30 and -29..150 HU.
    myosteatosis_cutoff_hu : float, optional
        CT: flag rows whose muscle-window mean HU is below this.
    classifier : str
        T1/T2: ``gmm`` (default), ``kmeans``, ``otsu``, ``fcm`` or ``reference``.
    n_classes : int
        T1/T2: 2 (fat/lean) or 3 (fat/undefined/lean, default).
    reference_segment : str, optional
        T1/T2 ``reference`` classifier: name of the reference fat segment
        (e.g. subcutaneous fat); it is not measured itself.
    classifier_params : dict, optional
        Extra parameters of the classifier (see
        :mod:`~ParaspinalFatLib.composition.classifiers`).
    grade_source : str
        Fat % that feeds the grades: ``"auto"`` (mean FF for PDFF/Dixon, fat
        area % otherwise), ``"fat_fraction_pct"`` or ``"fat_area_pct"``.
    goutallier_cutoffs, kjaer_cutoffs : tuple of float, optional
        Grade cut-offs in % (defaults in
        :mod:`~ParaspinalFatLib.measurement.grading`; no consensus exists).
    fat_labelmap : str or path, optional
        Write the fat/lean/undefined classes of the measured voxels as a
        labelmap on the image grid (``.seg.nrrd`` loads in Slicer as segments
        ``lean``, ``undefined``, ``fat``; any other extension: values 1 lean,
        2 undefined, 3 fat).
    qc_dir : str or path, optional
        Write QC pictures (one PNG per level + a sagittal overview) here.
    pdff_scale : str, optional
        Declared PDFF storage scale ``"0-1"``, ``"0-100"`` or ``"0-1000"``;
        detected from the image when omitted.
    fat_threshold_pct : float
        A voxel is fat when PDFF >= this value (%).  Default 50.
    unit : str, optional
        Unit of a scalar map (``"HU"``, ``"mm2/s"``...), written to the table.
    levels : sequence of str or "all"
        Disc levels at which 3-D muscle masks are measured.  Default
        ``L3/4, L4/5, L5/S1``; ``"all"`` = every level the sources give.  ROIs
        whose name carries a level are always measured at their own slice.
    n_slices : int
        Average over this many slices centred on the level slice (odd, >= 1).
        CSA is then the mean CSA per slice; intensity statistics pool the voxels.
    per_slice : bool
        Also return the per-slice table (every slice of every ROI).
    whole_roi : bool
        Also return the whole-ROI 3-D summary (volume, mean/median/SD, CSA).
    segments : sequence of str, optional
        Measure exactly these segments (by name as in the file).
    muscles : str or sequence of str
        Which muscles when ``segments`` is not given: ``"auto"`` (default) = the
        paraspinal group (multifidus, erector spinae, autochthon, psoas,
        iliopsoas, quadratus lumborum...) when present, else every muscle;
        ``"all"``; or canonical names (``["multifidus", "psoas"]``).  Segments
        that are not muscles are measured only when no muscle exists.
    on_empty : str
        ``"error"`` (default): an ROI with no voxel on its level slice is an
        error naming segment, level and slice; ``"keep"``: keep the row with
        ``n_voxels = 0`` and NaN statistics.
    assume_same_grid : bool
        Accept a segmentation/image (or water/fat) pair whose arrays have the
        same size but whose headers disagree, using the image header (warns).
        Only for a file that lost its header.
    resample_segmentation : bool
        A same-size segmentation whose header places it elsewhere was drawn on
        another series: resample it onto the image in physical space.
    subject : str, optional
        Subject id for the ``subject`` column (default: image file stem).
    markups : str or path, optional
        Slicer markups file (``.mrk.json``/``.fcsv``) with points labelled by level.
    label_names : str, path or dict, optional
        Names for a labelmap segmentation (``.ctbl``/``.txt``/``.json``/``.csv``).
    convention : str, optional
        ``"totalsegmentator"`` or ``"totalspineseg"`` label convention.
    name_table : str or path, optional
        User CSV extending the built-in muscle-name table.
    cranio_caudal : tuple of 3 float
        Spine axis in LPS used to choose the slice orientation (default +z).
    """

    map_kind: str = "pdff"
    water: Any = None
    fat: Any = None
    noise_floor: Optional[float] = None
    noise_floor_fraction: float = 0.02
    fat_window: Tuple[float, float] = CT_FAT_WINDOW
    muscle_window: Tuple[float, float] = CT_MUSCLE_WINDOW
    myosteatosis_cutoff_hu: Optional[float] = None
    classifier: str = "gmm"
    n_classes: int = 3
    reference_segment: Optional[str] = None
    classifier_params: Optional[Dict[str, Any]] = None
    grade_source: str = "auto"
    goutallier_cutoffs: Optional[Tuple[float, ...]] = None
    kjaer_cutoffs: Optional[Tuple[float, ...]] = None
    fat_labelmap: Optional[Union[str, Path]] = None
    qc_dir: Optional[Union[str, Path]] = None
    pdff_scale: Optional[str] = None
    fat_threshold_pct: float = 50.0
    unit: Optional[str] = None
    levels: Union[Sequence[str], str] = DEFAULT_LEVELS
    n_slices: int = 1
    per_slice: bool = False
    whole_roi: bool = False
    segments: Optional[Sequence[str]] = None
    muscles: Union[str, Sequence[str]] = "auto"
    on_empty: str = "error"
    assume_same_grid: bool = False
    resample_segmentation: bool = False
    subject: Optional[str] = None
    markups: Optional[Union[str, Path]] = None
    label_names: Any = None
    convention: Optional[str] = None
    name_table: Optional[Union[str, Path]] = None
    cranio_caudal: Tuple[float, float, float] = (0.0, 0.0, 1.0)

    @classmethod
    def from_kwargs(cls, **kwargs) -> "MeasureOptions":
        """Build options, rejecting unknown names with the list of valid ones."""
        valid = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - valid)
        if unknown:
            raise TypeError(f"unknown option(s) {unknown}; valid options: {sorted(valid)}")
        opts = cls(**kwargs)
        if int(opts.n_slices) < 1 or int(opts.n_slices) % 2 == 0:
            raise InputError(f"n_slices must be an odd number >= 1, got {opts.n_slices}")
        if opts.on_empty not in ("error", "keep"):
            raise InputError(f"on_empty must be 'error' or 'keep', got {opts.on_empty!r}")
        return opts


@dataclass
class CaseMeasurement:
    """Everything measured for one case.

    Attributes
    ----------
    levels : pandas.DataFrame
        One row per subject x muscle x side x level
        (:data:`~ParaspinalFatLib.schemas.LEVEL_COLUMNS`).
    slices : pandas.DataFrame or None
        One row per ROI x slice (when ``per_slice``).
    rois : pandas.DataFrame or None
        Whole-ROI 3-D summary per segment (when ``whole_roi``).
    landmarks : pandas.DataFrame
        The level points used: level, source, LPS x/y/z, slice index, offset.
    warnings : list of str
        Non-fatal findings (also issued as Python warnings).
    """

    levels: pd.DataFrame
    slices: Optional[pd.DataFrame]
    rois: Optional[pd.DataFrame]
    landmarks: pd.DataFrame
    warnings: List[str] = field(default_factory=list)

    def summary(self, wide: bool = False) -> pd.DataFrame:
        """Per-subject left/right/asymmetry/level-mean summary (see :func:`.summary.summarize`)."""
        return summarize(self.levels, wide=wide)

    def grades(self) -> pd.DataFrame:
        """Grades per side, left+right combined and mean over levels (:func:`.grading.grade_summary`)."""
        from .grading import grade_summary

        return grade_summary(self.levels)


# --------------------------------------------------------------------------- inputs
def _read_pair(image, opts: MeasureOptions):
    """The main image (the fat image for Dixon) and, for Dixon, the water array."""
    if opts.map_kind.lower() == "dixon":
        if opts.fat is not None and image is not None and opts.fat is not image:
            raise InputError("map 'dixon': give the fat image once, as image or as fat=, not both")
        image = opts.fat if opts.fat is not None else image
        if image is None or opts.water is None:
            raise InputError("map 'dixon' needs both a fat image (--fat) and a water image (--water)")
    elif image is None:
        raise InputError("no image given (--image)")
    img = read_image(image, role="fat image" if opts.map_kind.lower() == "dixon" else "image")
    geometry = Geometry.from_sitk(img)
    water = None
    if opts.map_kind.lower() == "dixon":
        w_img = read_image(opts.water, role="water image")
        check_same_grid(geometry, Geometry.from_sitk(w_img), f"fat image {_name(image)}",
                                 f"water image {_name(opts.water)}", assume_same_grid=opts.assume_same_grid)
        water = image_array(w_img)
    return image, img, geometry, image_array(img), water


def _read_segmentation(segmentation, geometry: Geometry, image, opts: MeasureOptions) -> Segmentation:
    from ..io.segmentation_files import read_segmentation

    if isinstance(segmentation, Segmentation):
        seg = segmentation
    else:
        seg = read_segmentation(segmentation, names=opts.label_names, convention=opts.convention)
    if (
        not seg.geometry.same_grid(geometry)
        and tuple(seg.geometry.size) == tuple(geometry.size)
        and not seg.geometry.covers_same_region(geometry)
        and not opts.resample_segmentation
    ):
        # Same array size but the headers put the voxels in different places: either one file
        # lost its header (seen in real Dixon data: assume_same_grid) or the segmentation was
        # drawn on another series of the same frame of reference (resample_segmentation).
        # Refuse unless told which.  (Same size *and* same region, e.g. a flipped axis, is
        # resampled without asking.)
        if not opts.assume_same_grid:
            raise InputError(
                f"segmentation {seg.source} has the same array size as image {_name(image)} but its header "
                f"places it elsewhere ({seg.geometry.describe()} vs {geometry.describe()}). If it was "
                f"drawn on another series of the same patient position, resample it in physical space "
                f"(--resample-segmentation); only if one file lost its header and the voxels really "
                f"correspond one to one, use --assume-same-grid (assume_same_grid=True)"
            )
        check_same_grid(
            geometry, seg.geometry, f"image {_name(image)}", f"segmentation {seg.source}",
            assume_same_grid=True,
        )
        seg = seg.with_layers(seg.layers, geometry)
    return seg


def _name(obj) -> str:
    return "(SimpleITK image)" if isinstance(obj, sitk.Image) else str(obj)


def _subject_id(image, opts: MeasureOptions) -> str:
    if opts.subject:
        return str(opts.subject)
    if image is None or isinstance(image, sitk.Image):
        return "subject"
    name = Path(image).name
    for ext in (".nii.gz", ".seg.nrrd", ".nrrd", ".nii", ".mha", ".mhd"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


# --------------------------------------------------------------------------- API
def measure(image, segmentation, **options) -> CaseMeasurement:
    """Measure every muscle ROI of one case.

    Parameters
    ----------
    image : str, path-like, SimpleITK.Image or None
        The parameter map (PDFF, HU, FA...), 3-D; for Dixon the fat image (or
        pass ``fat=`` and ``image=None``).
    segmentation : str, path-like, SimpleITK.Image or Segmentation
        Muscle (and optionally vertebra/disc) segmentation.
    **options
        See :class:`MeasureOptions`.

    Returns
    -------
    CaseMeasurement
        ``.levels`` (per level), ``.slices`` and ``.rois`` when requested,
        ``.landmarks`` and ``.warnings``.

    Raises
    ------
    TypeError
        An unknown option name.
    InputError, LevelError, MeasurementError
        Unusable inputs or options, undeterminable levels, empty ROIs; see
        :func:`measure_case`.

    Warns
    -----
    ParaspinalFatWarning
        Every warning raised while measuring (this class and its subclasses,
        and a few plain ``UserWarning``) is re-issued with its own category
        after the measurement, and its text kept in ``.warnings``.
    """
    opts = MeasureOptions.from_kwargs(**options)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _measure(image, segmentation, opts)
    # every warning raised on the way (PDFF scale, segmentation, levels) is also kept in .warnings
    for w in caught:
        if str(w.message) not in result.warnings:
            result.warnings.append(str(w.message))
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return result


def _measure(image, segmentation, opts: MeasureOptions) -> CaseMeasurement:
    notes: List[str] = []
    image, img, geometry, array, water = _read_pair(image, opts)
    seg = _read_segmentation(segmentation, geometry, image, opts)
    from ..io.resample import resample_to_grid
    from ..anatomy.landmarks import find_landmarks
    from ..anatomy.muscle_names import load_name_table

    table = load_name_table(opts.name_table) if opts.name_table else None
    method = make_method(
        opts.map_kind, array, water, pdff_scale=opts.pdff_scale, fat_threshold_pct=opts.fat_threshold_pct,
        unit=opts.unit, noise_floor=opts.noise_floor, noise_floor_fraction=opts.noise_floor_fraction,
        fat_window=opts.fat_window, muscle_window=opts.muscle_window,
        myosteatosis_cutoff_hu=opts.myosteatosis_cutoff_hu, classifier=opts.classifier,
        n_classes=opts.n_classes, reference_segment=opts.reference_segment,
        classifier_params=opts.classifier_params, source=f"image {_name(image)}",
    )
    exclude = [opts.reference_segment] if opts.reference_segment else []
    rois = select_rois(seg, opts.segments, table, exclude=exclude, muscles=opts.muscles)
    landmarks = find_landmarks(segmentation=seg, markups=opts.markups, table=table)
    seg_grid = resample_to_grid(seg, geometry)
    axis = geometry.slice_axis(opts.cranio_caudal)
    area = geometry.pixel_area_mm2(axis)
    keys = [(r.segment.layer, r.segment.label_value) for r in rois]
    reference_roi = None
    if opts.reference_segment and method.params.get("classifier") == "reference":
        ref = seg.segment(opts.reference_segment)
        reference_roi = len(keys)
        keys.append((ref.layer, ref.label_value))
    vox = gather_roi_voxels(array, seg_grid, keys, axis, water=water)
    counts = vox.counts_per_slice()
    rows = plan_rows(
        rois, counts[: len(rois)], landmarks, geometry, axis, levels=opts.levels, n_slices=int(opts.n_slices),
        on_empty=opts.on_empty, allow_no_levels=bool(opts.per_slice or opts.whole_roi),
        seg_source=seg.source, notes=notes,
    )
    subject = _subject_id(image, opts)
    grading = {"source": opts.grade_source}
    if opts.goutallier_cutoffs is not None:
        grading["goutallier_cutoffs"] = tuple(opts.goutallier_cutoffs)
    if opts.kjaer_cutoffs is not None:
        grading["kjaer_cutoffs"] = tuple(opts.kjaer_cutoffs)
    codes = np.full(vox.roi.size, EXCLUDED - 1, dtype=np.int8)  # EXCLUDED - 1: not in any row
    levels_df = level_table(rows, rois, vox, counts, area, method, subject, reference_roi, codes, grading)
    slices_df = (slice_table(rois, vox, area, method, subject, geometry, axis, reference_roi)
                 if opts.per_slice else None)
    rois_df = roi_table(rois, vox, counts, area, method, subject, geometry, reference_roi) if opts.whole_roi else None
    marks_df = _landmark_table(landmarks, geometry, axis)
    if opts.fat_labelmap:
        write_class_labelmap(opts.fat_labelmap, vox, codes, geometry, img)
    if opts.qc_dir:
        write_qc_pictures(opts.qc_dir, array, geometry, axis, rows, rois, vox, codes, levels_df, marks_df,
                          method, subject)
    for note in notes:
        warnings.warn(note, ParaspinalFatWarning, stacklevel=2)
    return CaseMeasurement(levels_df, slices_df, rois_df, marks_df, notes)


def measure_case(image, segmentation, **options) -> pd.DataFrame:
    """Per subject x muscle x side x level table of one case.

    Shorthand for ``measure(image, segmentation, **options).levels``; see
    :func:`measure` and :class:`MeasureOptions`.

    Parameters
    ----------
    image : str, path-like, SimpleITK.Image or None
        The 3-D parameter map (PDFF, HU, FA...): a NRRD/NIfTI/MHA file, a
        DICOM series folder or an image; for Dixon the fat image (or pass
        ``fat=`` and ``image=None``).
    segmentation : str, path-like, SimpleITK.Image or Segmentation
        Muscle (and optionally vertebra/disc) segmentation; it is put on the
        image grid by nearest-neighbour resampling in physical (LPS) space.
    **options
        Keyword options of :class:`MeasureOptions` (``map_kind``,
        ``levels``, ``n_slices``...).

    Returns
    -------
    pandas.DataFrame
        The per-level table: one row per subject x muscle x side x level with
        the columns of :data:`~ParaspinalFatLib.schemas.LEVEL_COLUMNS`, sorted
        by muscle, side and level (cranial to caudal).  Areas in mm^2,
        statistics in the table's ``unit`` (% for PDFF/Dixon, HU for CT).
        The side tables and ``warnings`` of :class:`CaseMeasurement` are
        dropped; use :func:`measure` to keep them.

    Raises
    ------
    TypeError
        An unknown option name.
    InputError
        An invalid option (even ``n_slices``, ``on_empty`` other than
        ``"error"``/``"keep"``, unknown map kind or level), a missing or
        unreadable image or segmentation, grids that cannot be paired, or
        requested segments/muscles that are not in the segmentation.
    LevelError
        A segment without a level in its name while no level source (disc or
        vertebra masks, markups) exists, or conflicting level sources.
    MeasurementError
        A segment is empty, or has no voxel on its level slice while
        ``on_empty="error"``.
    MissingDependencyError
        An optional package needed by the input is not installed (e.g.
        ``highdicom`` for a DICOM SEG).

    Warns
    -----
    ParaspinalFatWarning
        Non-fatal findings (its subclasses ``SegmentationWarning``,
        ``LevelWarning`` and ``NameWarning`` included), e.g. a level outside
        the image or unmeasured segments with unknown names.
    UserWarning
        A few reader findings: several DICOM series in one folder, paired
        grids assumed equal (``assume_same_grid``), NRRD header oddities.
    """
    return measure(image, segmentation, **options).levels


def _landmark_table(landmarks, geometry: Geometry, axis: int) -> pd.DataFrame:
    recs = []
    for level in sorted(landmarks, key=level_sort_key):
        mark = landmarks[level]
        s, off = geometry.nearest_slice(mark.point_lps, axis)
        p = np.asarray(mark.point_lps, dtype=float)
        recs.append(
            {"level": level, "source": mark.source, "x_lps_mm": p[0], "y_lps_mm": p[1], "z_lps_mm": p[2],
             "slice_index": s, "slice_offset_mm": off, "inside_image": 0 <= s < geometry.size[axis],
             "detail": getattr(mark, "detail", "")}
        )
    return pd.DataFrame(recs, columns=["level", "source", "x_lps_mm", "y_lps_mm", "z_lps_mm",
                                       "slice_index", "slice_offset_mm", "inside_image", "detail"])

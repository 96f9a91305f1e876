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

import contextlib
import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union
import numpy as np
import pandas as pd
import SimpleITK as sitk
from ..io.images import check_same_grid, image_array, read_image
from ..io.markups import InMemoryMarkups
from ..errors import InputError, LevelWarning, ParaspinalFatWarning
from ..geometry import Geometry, axes_angle_deg
from .case_tables import level_table, roi_table, slice_table
from .grading import GRADE_SOURCES, check_cutoffs
from .quantities import UNMEASURABLE_NOTE
from ..report.case_files import (check_labelmap_path, check_output_folder, class_labelmap_array, write_class_labelmap,
                                 write_qc_pictures)
from ..composition.base import EXCLUDED
from ..composition.ct import CT_FAT_WINDOW, CT_MUSCLE_WINDOW
from ..composition.factory import make_method
from ..anatomy.level_names import is_disc_level, level_sort_key
from .planning import plan_rows, select_rois
from ..segmentation import Segmentation
from .summary import summarize
from .voxels import gather_roi_voxels


__all__ = ['DEFAULT_LEVELS', 'LANDMARK_COLUMNS', 'MeasureOptions', 'CaseMeasurement', 'measure', 'measure_case']

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
    ct_units_check : bool
        CT: check from the image's histogram that its values are Hounsfield units
        (refused otherwise); False only when you know they are.
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
        ``n_voxels = 0`` and NaN statistics.  With ``per_slice`` or
        ``whole_roi`` such rows are always kept (with a warning): those
        tables are made whatever the level slices hold.
    assume_same_grid : bool
        Accept a segmentation/image (or water/fat) pair whose arrays have the
        same size but whose headers disagree, using the image header (warns).
        Only for a file that lost its header.
    resample_segmentation : bool
        A same-size segmentation whose header places it elsewhere was drawn on
        another series: resample it onto the image in physical space.
    subject : str, optional
        Subject id for the ``subject`` column (default: image file stem).
    markups : str, path or InMemoryMarkups, optional
        Slicer markups file (``.mrk.json``/``.fcsv``) with points labelled by level,
        or the same points and lines held in memory
        (:class:`~ParaspinalFatLib.io.markups.InMemoryMarkups`, e.g. from a Slicer
        markups node).
    label_names : str, path or dict, optional
        Names for a labelmap segmentation (``.ctbl``/``.txt``/``.json``/``.csv``).
    convention : str, optional
        ``"totalsegmentator"`` or ``"totalspineseg"`` label convention.
    name_table : str or path, optional
        User CSV extending the built-in muscle-name table.
    cranio_caudal : tuple of 3 float
        Spine axis in LPS used to choose the slice orientation (default +z).
    plane : str
        ``"image"`` (default): each level is measured on the image's own
        slice nearest to the level point (what 2-D ROIs drawn on acquired
        slices need).  ``"disc"``: on an oblique plane through the level
        point, perpendicular to the local spine axis (disc-parallel for disc
        levels, body-parallel for vertebra levels), the image resampled
        linearly and each mask partial-volume-aware
        (:mod:`~ParaspinalFatLib.measurement.planes`).  For 3-D masks (CT,
        isotropic Dixon, TotalSegmentator / nnU-Net outputs).
    plane_pixel_mm : float, optional
        Pixel size of the disc-parallel planes (mm); default the image's
        finest in-plane spacing.
    level_slices : str or dict, optional
        Level positions as slice indices, ``"L3/4=12,L4/5=18"`` (disc or
        vertebra levels); they win over every other level source.
    slice_base : int
        0 (default: Slicer's Data Probe IJK, ITK) or 1 (ITK-SNAP, viewers
        numbering images from 1): how ``level_slices`` count.
    level_z : str or dict, optional
        Level positions as LPS z in mm (``"L4/5=-312.5"``; Slicer shows the
        same number as S in RAS).
    height_m : float, optional
        Body height in metres: adds the skeletal muscle index (SMI, cm2/m2)
        at L3 (:attr:`CaseMeasurement.muscle_index`); needs ``L3`` among the
        levels.
    bone_levels : sequence of str
        Vertebrae whose trabecular bone is measured (default ``L1, L2``) when
        their masks exist (:mod:`~ParaspinalFatLib.measurement.bone`); empty:
        none.
    bone_erosion_mm : float
        Distance (mm) the trabecular core keeps from the vertebra mask's
        surface (cortical shell, endplates); default 5.
    bone_slab_mm : float, optional
        Thickness (mm) of the mid-vertebral slab of the core (default 10, as
        QCT); ``None``: the whole eroded body.
    bmd_calibration : tuple of 2 float or str, optional
        ``(slope, intercept)``: vBMD mg/cm3 = slope x HU + intercept from a
        calibration phantom (CT only).  Without it bone values are HU, which
        is not vBMD.
    """

    map_kind: str = "pdff"
    water: Any = None
    fat: Any = None
    noise_floor: Optional[float] = None
    noise_floor_fraction: float = 0.02
    fat_window: Tuple[float, float] = CT_FAT_WINDOW
    muscle_window: Tuple[float, float] = CT_MUSCLE_WINDOW
    myosteatosis_cutoff_hu: Optional[float] = None
    ct_units_check: bool = True
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
    markups: Optional[Union[str, Path, InMemoryMarkups]] = None
    label_names: Any = None
    convention: Optional[str] = None
    name_table: Optional[Union[str, Path]] = None
    cranio_caudal: Tuple[float, float, float] = (0.0, 0.0, 1.0)
    plane: str = "image"
    plane_pixel_mm: Optional[float] = None
    level_slices: Any = None
    slice_base: int = 0
    level_z: Any = None
    height_m: Optional[float] = None
    bone_levels: Sequence[str] = ("L1", "L2")
    bone_erosion_mm: float = 5.0
    bone_slab_mm: Optional[float] = 10.0
    bmd_calibration: Any = None

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def from_kwargs(cls, **kwargs) -> "MeasureOptions":
        """Build options, rejecting unknown names with the list of valid ones.

        Parameters
        ----------
        **kwargs
            Option values by name (the fields of this class).

        Returns
        -------
        MeasureOptions
            The options, checked by :meth:`validate`.

        Raises
        ------
        TypeError
            An unknown option name.
        InputError
            An option value outside its meaning (see :meth:`validate`).
        """
        valid = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - valid)
        if unknown:
            raise TypeError(f"unknown option(s) {unknown}; valid options: {sorted(valid)}")
        return cls(**kwargs)

    def validate(self) -> None:
        """Check every option value against its meaning; called when the options are made.

        The one place where option values are checked before any file is read.
        Each message names the option by its Python name and its command-line
        flag, says what it means and gives the value, e.g. ``fat_threshold_pct
        (--fat-threshold) must be between 0 and 100 %, got 150``.  NaN and
        infinite numbers are refused everywhere.  Checked here: the fat
        threshold (0-100 %), the Dixon noise floor (>= 0) and its fraction
        ([0, 1)), the CT windows (two finite numbers), the myosteatosis
        cut-off, ``n_classes`` (2 or 3), ``n_slices`` (odd, >= 1), both grade
        cut-off sets (:func:`~.grading.check_cutoffs`: count, strictly
        increasing, 0-100 %), ``grade_source``, ``on_empty``, ``muscles``,
        ``segments``, ``levels`` (type; the level names are read by
        :func:`~.planning.plan_rows`), ``classifier_params`` and
        ``cranio_caudal``.  Checked by the composition method when it is made
        (:func:`~ParaspinalFatLib.composition.factory.make_method`), so not
        here: ``map_kind``, ``pdff_scale``, ``classifier`` and the order and
        overlap of the CT windows.

        Raises
        ------
        InputError
            The first option found outside its meaning.
        """
        pct = _finite(self, "fat_threshold_pct")
        if not 0.0 <= pct <= 100.0:
            raise InputError(f"{_opt('fat_threshold_pct')} must be between 0 and 100 %, got {_show(pct)}")
        if self.noise_floor is not None and _finite(self, "noise_floor") < 0:
            raise InputError(f"{_opt('noise_floor')} must be >= 0 (a signal level of F+W in the images' "
                             f"units), got {_show(self.noise_floor)}")
        fraction = _finite(self, "noise_floor_fraction")
        if not 0.0 <= fraction < 1.0:
            raise InputError(f"{_opt('noise_floor_fraction')} must be a fraction in [0, 1) of the 99.5th "
                             f"percentile of F+W (0.02 = 2 %), got {_show(fraction)}")
        for name in ("fat_window", "muscle_window"):
            window = getattr(self, name)
            try:
                lo, hi = (_number(v) for v in window)
            except (TypeError, ValueError):
                raise InputError(f"{_opt(name)} must be two numbers LOW,HIGH in HU, got {window!r}") from None
            if not (np.isfinite(lo) and np.isfinite(hi)):
                raise InputError(f"{_opt(name)} must be two finite numbers LOW,HIGH in HU, got {window!r}")
        if self.myosteatosis_cutoff_hu is not None:
            _finite(self, "myosteatosis_cutoff_hu")
        if not isinstance(self.ct_units_check, (bool, np.bool_)):
            raise InputError(f"{_opt('ct_units_check')} must be True or False, got {self.ct_units_check!r}")
        if _integer(self, "n_classes") not in (2, 3):
            raise InputError(f"{_opt('n_classes')} must be 2 (lean/fat) or 3 (lean/undefined/fat), "
                             f"got {self.n_classes!r}")
        n_slices = _integer(self, "n_slices")
        if n_slices < 1 or n_slices % 2 == 0:
            raise InputError(f"{_opt('n_slices')} must be an odd number >= 1 (slices centred on the level "
                             f"slice), got {self.n_slices!r}")
        for name, scale in (("goutallier_cutoffs", "goutallier"), ("kjaer_cutoffs", "kjaer")):
            if getattr(self, name) is not None:
                check_cutoffs(getattr(self, name), scale, option=f"({name}, {_CLI_FLAGS[name]})")
        _one_of(self, "grade_source", GRADE_SOURCES)
        _one_of(self, "on_empty", ("error", "keep"))
        if not isinstance(self.muscles, str) and not _names(self.muscles):
            raise InputError(f"{_opt('muscles')} must be 'auto', 'all' or a list of muscle names "
                             f"(e.g. ['multifidus', 'psoas']), got {self.muscles!r}")
        if self.segments is not None and (isinstance(self.segments, str) or not _names(self.segments, empty=True)):
            raise InputError(f"{_opt('segments')} must be a list of segment names as in the file "
                             f"(e.g. ['multifidus_left']), got {self.segments!r}")
        if not isinstance(self.levels, str) and not _names(self.levels, empty=True):
            raise InputError(f"{_opt('levels')} must be a list of disc levels (e.g. ['L4/5', 'L5/S1']) "
                             f"or 'all', got {self.levels!r}")
        if self.classifier_params is not None and not isinstance(self.classifier_params, dict):
            raise InputError(f"classifier_params must be a dict of classifier parameters (e.g. {{'k': 3}}), "
                             f"got {self.classifier_params!r}")
        try:
            axis = np.array([_number(v) for v in self.cranio_caudal], dtype=float)
        except (TypeError, ValueError):
            axis = np.zeros(0)
        if axis.shape != (3,) or not np.all(np.isfinite(axis)) or not np.any(axis != 0):
            raise InputError(f"cranio_caudal must be 3 finite numbers, not all 0 (the spine axis in LPS), "
                             f"got {self.cranio_caudal!r}")
        _one_of(self, "plane", ("image", "disc"))
        if self.plane_pixel_mm is not None and not _finite(self, "plane_pixel_mm") > 0:
            raise InputError(f"{_opt('plane_pixel_mm')} must be a pixel size > 0 mm, got {_show(self.plane_pixel_mm)}")
        if _integer(self, "slice_base") not in (0, 1):
            raise InputError(f"{_opt('slice_base')} must be 0 (Slicer, ITK: first slice is 0) or 1 (ITK-SNAP, "
                             f"image numbers: first slice is 1), got {self.slice_base!r}")
        if self.height_m is not None:
            height = _finite(self, "height_m")
            if not 1.0 <= height <= 2.5:
                hint = " (a height in cm? give metres, e.g. 1.75)" if 100 <= height <= 250 else ""
                raise InputError(f"{_opt('height_m')} must be a body height in metres between 1.0 and 2.5, "
                                 f"got {_show(height)}{hint}")
        if isinstance(self.bone_levels, str) or not _names(self.bone_levels, empty=True):
            raise InputError(f"{_opt('bone_levels')} must be a list of vertebrae (e.g. ['L1', 'L2']) or empty, "
                             f"got {self.bone_levels!r}")
        if not _finite(self, "bone_erosion_mm") >= 0:
            raise InputError(f"{_opt('bone_erosion_mm')} must be a distance >= 0 mm, got {_show(self.bone_erosion_mm)}")
        if self.bmd_calibration is not None:
            from .bone import parse_calibration

            parse_calibration(self.bmd_calibration)  # "SLOPE,INTERCEPT" or a pair; refused with its flag named
        if self.bone_slab_mm is not None and not _finite(self, "bone_slab_mm") > 0:
            raise InputError(f"{_opt('bone_slab_mm')} must be a thickness > 0 mm (or None for the whole body), "
                             f"got {_show(self.bone_slab_mm)}")


#: command-line flag of each option that has one (named in the messages of :meth:`MeasureOptions.validate`)
_CLI_FLAGS = {
    "map_kind": "--map", "pdff_scale": "--pdff-scale", "fat_threshold_pct": "--fat-threshold",
    "unit": "--unit", "levels": "--levels", "n_slices": "--n-slices", "noise_floor": "--noise-floor",
    "fat_window": "--fat-window", "muscle_window": "--muscle-window",
    "myosteatosis_cutoff_hu": "--myosteatosis-cutoff", "ct_units_check": "--no-ct-units-check",
    "classifier": "--classifier", "n_classes": "--n-classes",
    "reference_segment": "--reference-segment", "grade_source": "--grade-source",
    "goutallier_cutoffs": "--goutallier-cutoffs", "kjaer_cutoffs": "--kjaer-cutoffs", "segments": "--segments",
    "muscles": "--muscles", "on_empty": "--on-empty", "markups": "--markups",
    "plane": "--plane", "plane_pixel_mm": "--plane-pixel-mm", "level_slices": "--level-slices",
    "slice_base": "--slice-base", "level_z": "--level-z", "height_m": "--height-m",
    "bone_levels": "--bone-levels", "bone_erosion_mm": "--bone-erosion-mm", "bone_slab_mm": "--bone-slab-mm",
    "bmd_calibration": "--bmd-calibration", "label_names": "--label-names",
}


def _opt(name: str) -> str:
    """``"fat_threshold_pct (--fat-threshold)"``: an option as the user may have spelt it."""
    flag = _CLI_FLAGS.get(name)
    return f"{name} ({flag})" if flag else name


def _show(value) -> str:
    return f"{value:g}" if isinstance(value, float) else repr(value)


def _number(value) -> float:
    """A real number as float (bool and text are not numbers)."""
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise TypeError(value)
    return float(value)


def _finite(opts: "MeasureOptions", name: str) -> float:
    value = getattr(opts, name)
    try:
        number = _number(value)
    except (TypeError, ValueError):
        raise InputError(f"{_opt(name)} must be a number, got {value!r}") from None
    if not np.isfinite(number):
        raise InputError(f"{_opt(name)} must be a finite number, got {_show(number)}")
    return number


def _integer(opts: "MeasureOptions", name: str) -> int:
    number = _finite(opts, name)
    if number != int(number):
        raise InputError(f"{_opt(name)} must be a whole number, got {_show(number)}")
    return int(number)


def _one_of(opts: "MeasureOptions", name: str, allowed: Sequence[str]) -> None:
    value = getattr(opts, name)
    if not isinstance(value, str) or value not in allowed:
        raise InputError(f"{_opt(name)} must be one of {', '.join(allowed)}; got {value!r}")


def _names(value, empty: bool = False) -> bool:
    """True for a sequence of non-empty strings (and not a bare string); ``empty``: may have no item."""
    try:
        items = list(value)
    except TypeError:
        return False
    return (empty or bool(items)) and all(isinstance(v, str) and v.strip() for v in items)


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
        The level points found (:data:`LANDMARK_COLUMNS`): level, kind (disc or
        vertebra), source, LPS x/y/z, nearest image slice and offset, the local
        spine axis (LPS unit vector, its tilt from the image slice normal and
        where it came from) and the provenance.
    warnings : list of str
        Non-fatal findings (also issued as Python warnings, as they happen).
    grading : dict
        The grading options the per-level grades were made with (keyword
        arguments of :func:`.grading.grade_summary`: ``source`` and the
        cut-offs given); :meth:`grades` uses them too.
    bone : pandas.DataFrame or None
        Trabecular bone per vertebra of ``bone_levels`` that has a mask
        (:data:`~.bone.BONE_COLUMNS`); ``None`` when no such mask exists.
    muscle_index : pandas.DataFrame or None
        Skeletal muscle index at L3 (:data:`~.skeletal_muscle.SMI_COLUMNS`)
        when ``height_m`` was given.
    class_labelmap : numpy.ndarray or None
        The classes of the measured voxels on the image grid (uint8, numpy order
        ``k, j, i``: 0 background, 1 lean, 2 undefined, 3 fat), the array that
        ``fat_labelmap`` writes (:func:`~ParaspinalFatLib.report.case_files.class_labelmap_array`);
        only when :func:`measure` was called with ``class_labelmap=True``.
    """

    levels: pd.DataFrame
    slices: Optional[pd.DataFrame]
    rois: Optional[pd.DataFrame]
    landmarks: pd.DataFrame
    warnings: List[str] = field(default_factory=list)
    grading: Dict[str, Any] = field(default_factory=dict)
    bone: Optional[pd.DataFrame] = None
    muscle_index: Optional[pd.DataFrame] = None
    class_labelmap: Optional[np.ndarray] = None

    def summary(self, wide: bool = False) -> pd.DataFrame:
        """Per-subject left/right/asymmetry/level-mean summary (see :func:`.summary.summarize`).

        Parameters
        ----------
        wide : bool
            One row per subject instead of the tidy table.

        Returns
        -------
        pandas.DataFrame
            The wide table also has a column ``"<muscle> <level> smi_cm2_m2"``
            per row of :attr:`muscle_index` (when a height was given).
        """
        table = summarize(self.levels, wide=wide)
        if wide and self.muscle_index is not None and len(self.muscle_index) and len(table):
            smi = self.muscle_index
            for (muscle, level), part in smi.groupby(["muscle", "level"], sort=False):
                values = dict(zip(part["subject"], part["smi_cm2_m2"]))
                table.insert(len(table.columns) - 1, f"{muscle} {level} smi_cm2_m2",
                             [values.get(subject, np.nan) for subject in table["subject"]])
        return table

    def grades(self) -> pd.DataFrame:
        """Grades per side, left+right combined and mean over levels (:func:`.grading.grade_summary`).

        Made with the same ``grade_source`` and cut-offs as the per-level
        table's ``goutallier``/``kjaer`` columns (:attr:`grading`).

        Returns
        -------
        pandas.DataFrame
            :data:`~.grading.GRADE_SUMMARY_COLUMNS`.
        """
        from .grading import grade_summary

        return grade_summary(self.levels, **self.grading)


# --------------------------------------------------------------------------- inputs
def _read_pair(image, opts: MeasureOptions):
    """The main image (the fat image for Dixon) and, for Dixon, the water array."""
    if str(opts.map_kind).lower() == "dixon":
        if opts.fat is not None and image is not None and opts.fat is not image:
            raise InputError("map 'dixon': give the fat image once, as image or as fat=, not both")
        image = opts.fat if opts.fat is not None else image
        if image is None or opts.water is None:
            raise InputError("map 'dixon' needs both a fat image (--fat) and a water image (--water)")
    elif image is None:
        raise InputError("no image given (--image)")
    img = read_image(image, role="fat image" if str(opts.map_kind).lower() == "dixon" else "image")
    geometry = Geometry.from_sitk(img)
    water = None
    if str(opts.map_kind).lower() == "dixon":
        w_img = read_image(opts.water, role="water image")
        check_same_grid(geometry, Geometry.from_sitk(w_img), f"fat image {_name(image)}",
                                 f"water image {_name(opts.water)}", assume_same_grid=opts.assume_same_grid)
        water = image_array(w_img, keep_integers=True)
    return image, img, geometry, image_array(img, keep_integers=True), water


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
def measure(image, segmentation, *, class_labelmap: bool = False, **options) -> CaseMeasurement:
    """Measure every muscle ROI of one case.

    Parameters
    ----------
    image : str, path-like, SimpleITK.Image or None
        The parameter map (PDFF, HU, FA...), 3-D; for Dixon the fat image (or
        pass ``fat=`` and ``image=None``).
    segmentation : str, path-like, SimpleITK.Image or Segmentation
        Muscle (and optionally vertebra/disc) segmentation.
    class_labelmap : bool
        Also return the fat/lean/undefined classes of the measured voxels as an
        array on the image grid (:attr:`CaseMeasurement.class_labelmap`, the
        array ``fat_labelmap`` writes), e.g. for an overlay in a viewer.
    **options
        See :class:`MeasureOptions`.

    Returns
    -------
    CaseMeasurement
        ``.levels`` (per level), ``.slices`` and ``.rois`` when requested,
        ``.landmarks``, ``.warnings`` and, with ``class_labelmap``,
        ``.class_labelmap``.

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
        and a few plain ``UserWarning``) is issued with its own category at
        the moment it happens, under the caller's warning filters -- so the
        warnings that explain a failing run come before its error -- and its
        text is kept in ``.warnings`` whatever the filters.  Per-level rows
        whose fat/lean split is not measurable (NaN) are listed in one
        warning.
    """
    opts = MeasureOptions.from_kwargs(**options)
    if opts.fat_labelmap:  # unusable output paths are refused before measuring
        check_labelmap_path(opts.fat_labelmap, "fat_labelmap")
    if opts.qc_dir:
        check_output_folder(opts.qc_dir, "qc_dir")
    seen: List[str] = []
    with _relayed_warnings(seen):
        result = _measure(image, segmentation, opts, keep_classes=bool(class_labelmap))
    # every warning raised on the way (PDFF scale, segmentation, levels) is also kept in .warnings
    for text in seen:
        if text not in result.warnings:
            result.warnings.append(text)
    return result


@contextlib.contextmanager
def _relayed_warnings(seen: List[str]):
    """Record the text of every warning raised inside, and pass each on at once.

    Inside, every warning is caught (filter ``"always"``) so that its text is
    kept even when the caller ignores it; it is then issued again, at the
    moment it happens, under the caller's own filters and display (so a failing
    run shows the warnings that explain it before its error, and the caller's
    ``"error"`` filter turns it into an exception right there).
    """
    outer_filters = list(warnings.filters)
    outer_show = warnings.showwarning

    def relay(message, category, filename, lineno, file=None, line=None):
        text = str(message)
        foreign_notice = (issubclass(category, (DeprecationWarning, PendingDeprecationWarning))
                          and "ParaspinalFatLib" not in str(filename))
        if text not in seen and not foreign_notice:  # another package's deprecation notice is no finding
            seen.append(text)
        inner_filters, inner_show = list(warnings.filters), warnings.showwarning
        warnings.filters[:] = outer_filters
        warnings.showwarning = outer_show
        try:
            warnings.warn_explicit(message, category, filename, lineno)
        finally:
            warnings.filters[:] = inner_filters
            warnings.showwarning = inner_show

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = relay
        yield


def _measure(image, segmentation, opts: MeasureOptions, keep_classes: bool = False) -> CaseMeasurement:
    notes: List[str] = []
    image, img, geometry, array, water = _read_pair(image, opts)
    seg = _read_segmentation(segmentation, geometry, image, opts)
    from ..io.resample import resample_to_grid
    from ..anatomy.landmarks import POSITION_SOURCES, find_landmarks
    from ..anatomy.muscle_names import load_name_table
    from ..anatomy.sides import add_side_warnings, check_sides

    table = load_name_table(opts.name_table) if opts.name_table else None
    method = make_method(
        opts.map_kind, array, water, pdff_scale=opts.pdff_scale, fat_threshold_pct=opts.fat_threshold_pct,
        unit=opts.unit, noise_floor=opts.noise_floor, noise_floor_fraction=opts.noise_floor_fraction,
        fat_window=opts.fat_window, muscle_window=opts.muscle_window,
        myosteatosis_cutoff_hu=opts.myosteatosis_cutoff_hu, ct_units_check=opts.ct_units_check,
        classifier=opts.classifier,
        n_classes=opts.n_classes, reference_segment=opts.reference_segment,
        classifier_params=opts.classifier_params, source=f"image {_name(image)}",
    )
    exclude = [opts.reference_segment] if opts.reference_segment else []
    rois = select_rois(seg, opts.segments, table, exclude=exclude, muscles=opts.muscles)
    axis = geometry.slice_axis(opts.cranio_caudal)
    positions = _typed_positions(opts, geometry, axis)
    landmarks = find_landmarks(segmentation=seg, markups=opts.markups, table=table, include_vertebrae=True,
                               positions=positions)
    # typed positions lie at the grid's in-plane centre, not on the spine: not a midline for the side check
    spine_points = {lv: m for lv, m in landmarks.items() if m.source not in POSITION_SOURCES}
    sides = check_sides(seg, table=table, landmarks=spine_points, segments=[r.segment for r in rois],
                        cranio_caudal=opts.cranio_caudal)
    seg_grid = resample_to_grid(seg, geometry)
    area = geometry.pixel_area_mm2(axis)
    keys = [(r.segment.layer, r.segment.label_value) for r in rois]
    reference_roi = None
    if opts.reference_segment and method.params.get("classifier") == "reference":
        ref = seg.segment(opts.reference_segment)
        reference_roi = len(keys)
        keys.append((ref.layer, ref.label_value))
    vox = gather_roi_voxels(array, seg_grid, keys, axis, water=water)
    counts = vox.counts_per_slice()
    disc_plane = opts.plane == "disc"
    if disc_plane:
        _check_disc_plane_rois(rois, seg.source)
    # with per-slice / whole-ROI tables asked, a segment empty at a level slice never fails the run:
    # its per-level row is kept (NaN, row warning) and the other tables are made
    on_empty = "keep" if opts.per_slice or opts.whole_roi else opts.on_empty
    rows = plan_rows(
        rois, counts[: len(rois)], landmarks, geometry, axis, levels=opts.levels, n_slices=int(opts.n_slices),
        on_empty="keep" if disc_plane else on_empty, allow_no_levels=bool(opts.per_slice or opts.whole_roi),
        seg_source=seg.source, notes=notes,
        level_sources=None if any(is_disc_level(lv) for lv in landmarks) else _level_sources_text(seg, table, opts),
    )
    image_normal = geometry.plane_normal(axis)
    cranial = np.asarray(opts.cranio_caudal, dtype=float)
    if float(image_normal @ cranial) < 0:
        image_normal = -image_normal
    plane_info: Dict[str, Any] = {"plane": "image", "normal": image_normal, "tilt_deg": 0.0}
    level_vox, level_counts, level_area, area_pixels, planes = vox, counts, area, None, None
    if disc_plane and rows:
        from .disc_planes import measure_planes

        planes = measure_planes(array, water, geometry, seg_grid, keys, rows, rois, landmarks, axis,
                                n_slices=int(opts.n_slices), pixel_mm=opts.plane_pixel_mm,
                                cranio_caudal=opts.cranio_caudal, on_empty=on_empty, seg_source=seg.source)
        rows = planes.rows
        level_vox, level_counts, level_area = planes.voxels, planes.counts, planes.pixel_area_mm2
        area_pixels = planes.area_pixels
        plane_info = {"plane": "disc", "normal": planes.row_normals, "tilt_deg": planes.row_tilts_deg}
    subject = _subject_id(image, opts)
    grading: Dict[str, Any] = {"source": opts.grade_source}
    if opts.goutallier_cutoffs is not None:
        grading["goutallier_cutoffs"] = check_cutoffs(opts.goutallier_cutoffs, "goutallier")
    if opts.kjaer_cutoffs is not None:
        grading["kjaer_cutoffs"] = check_cutoffs(opts.kjaer_cutoffs, "kjaer")
    codes = np.full(level_vox.size, EXCLUDED - 1, dtype=np.int8)  # EXCLUDED - 1: not in any row
    levels_df = level_table(rows, rois, level_vox, level_counts, level_area, method, subject, reference_roi, codes,
                            grading, area_pixels=area_pixels, plane=plane_info)
    slices_df = (slice_table(rois, vox, area, method, subject, geometry, axis, reference_roi)
                 if opts.per_slice else None)
    rois_df = roi_table(rois, vox, counts, area, method, subject, geometry, reference_roi) if opts.whole_roi else None
    levels_df = add_side_warnings(levels_df, sides)
    if planes is not None:
        levels_df = _add_row_notes(levels_df, planes.rows, rois, planes.row_notes)
    slices_df = add_side_warnings(slices_df, sides)
    rois_df = add_side_warnings(rois_df, sides)
    marks_df = _landmark_table(landmarks, geometry, axis, opts.cranio_caudal)
    bone_df = _bone(array, geometry, seg_grid, seg, landmarks, table, method, subject, opts)
    smi_df = None
    if opts.height_m is not None:
        from .skeletal_muscle import muscle_index

        smi_df = muscle_index(levels_df, float(opts.height_m))
    classes = class_labelmap_array(level_vox, codes, geometry) if keep_classes or opts.fat_labelmap else None
    if opts.fat_labelmap:
        write_class_labelmap(opts.fat_labelmap, level_vox, codes, geometry, img, labels=classes)
    if opts.qc_dir:
        if planes is not None:
            from ..report.plane_pictures import write_plane_pictures

            write_plane_pictures(opts.qc_dir, array, geometry, axis, planes, rois, codes, levels_df, marks_df,
                                 method, subject)
        else:
            write_qc_pictures(opts.qc_dir, array, geometry, axis, rows, rois, vox, codes, levels_df, marks_df,
                              method, subject)
    _warn_empty_rows(levels_df, _warn_unmeasurable(levels_df))
    return CaseMeasurement(levels_df, slices_df, rois_df, marks_df, list(notes), grading, bone_df, smi_df,
                           classes if keep_classes else None)


def _typed_positions(opts: MeasureOptions, geometry: Geometry, axis: int):
    """Level points typed by the user (``level_slices``, ``level_z``), or None."""
    if opts.level_slices is None and opts.level_z is None:
        return None
    from ..anatomy.level_positions import typed_positions

    return typed_positions(geometry, axis, level_slices=opts.level_slices, level_z=opts.level_z,
                           slice_base=int(opts.slice_base))


def _check_disc_plane_rois(rois, seg_source: str) -> None:
    """``plane="disc"`` resamples 3-D masks; a 2-D ROI drawn on one image slice cannot be."""
    named = [r.segment.name for r in rois if r.level is not None]
    if named:
        shown = ", ".join(repr(n) for n in named[:6]) + (f" and {len(named) - 6} more" if len(named) > 6 else "")
        raise InputError(
            f"{seg_source}: --plane disc (plane='disc') measures 3-D muscle masks on oblique planes, but segment(s) "
            f"{shown} carry their level in the name (2-D ROIs drawn on an image slice, which cannot be resampled "
            f"onto another plane): measure them with --plane image, or leave them out (--segments)"
        )


def _bone(array, geometry: Geometry, seg_grid: Segmentation, seg: Segmentation, landmarks, table, method,
          subject: str, opts: MeasureOptions):
    """Trabecular bone table of the asked vertebrae that have masks (None when none)."""
    if not opts.bone_levels:
        return None
    from ..anatomy.level_names import canonical_level
    from ..anatomy.segment_names import parse_segment_names
    from ..anatomy.spine_axes import level_axes
    from .bone import bone_table, parse_calibration

    wanted = []
    for text in opts.bone_levels:
        level = canonical_level(text)
        if level is None or level not in _VERTEBRAE:
            raise InputError(f"{_opt('bone_levels')}: {text!r} is not a vertebra; write e.g. L1,L2")
        wanted.append(level)
    calibration = parse_calibration(opts.bmd_calibration) if opts.bmd_calibration is not None else None
    found = {}
    # name findings are reported where the names are listed
    for s, p in zip(seg_grid.segments, parse_segment_names(seg_grid.names(), table=table, warn=False)):
        if p.kind == "vertebra" and p.level in wanted:
            found.setdefault(p.level, s)
    if not found:
        if calibration is not None:
            raise InputError(f"{_opt('bmd_calibration')} was given but no vertebra mask of {', '.join(wanted)} "
                             f"was found in {seg.source} ({_opt('bone_levels')})")
        return None
    marks = {lv: landmarks[lv] for lv in found if lv in landmarks}
    axes = level_axes(landmarks, list(marks), opts.cranio_caudal, fallback_normal=geometry.plane_normal(
        geometry.slice_axis(opts.cranio_caudal))) if marks else {}
    vertebrae = {}
    for level, segment in found.items():
        if level not in marks:
            continue  # a cut-off vertebra (warned by the landmarks) has no mid-body point
        vertebrae[level] = (segment, marks[level].point_lps, axes[level].normal_lps)
    return bone_table(array, geometry, seg_grid, vertebrae, subject=subject, unit=method.unit,
                      erosion_mm=float(opts.bone_erosion_mm),
                      slab_mm=None if opts.bone_slab_mm is None else float(opts.bone_slab_mm),
                      calibration=calibration)


#: vertebrae whose bone may be measured
_VERTEBRAE = ("T10", "T11", "T12", "T13", "L1", "L2", "L3", "L4", "L5", "L6", "S1")


def _add_row_notes(levels_df: pd.DataFrame, rows, rois, notes: Sequence[str]) -> pd.DataFrame:
    """Append each row's note to the ``warnings`` of its (segment, level) row; one warning lists them."""
    hits = [(rois[r.roi].segment.name, r.level, note) for r, note in zip(rows, notes) if note]
    if not hits:
        return levels_df
    levels_df = levels_df.copy()
    for name, level, note in hits:
        at = (levels_df["segment"] == name) & (levels_df["level"] == level)
        levels_df.loc[at, "warnings"] = [f"{w}; {note}" if w else note for w in levels_df.loc[at, "warnings"]]
    shown = ", ".join(f"{name} ({level})" for name, level, _ in hits[:8])
    more = f" and {len(hits) - 8} more" if len(hits) > 8 else ""
    warnings.warn(f"{len(hits)} disc-parallel section(s) reach the first or last image slice, so their CSA may be "
                  f"cut by the field of view (see the 'warnings' column): {shown}{more}", LevelWarning, stacklevel=3)
    return levels_df


def _warn_unmeasurable(levels_df: pd.DataFrame) -> np.ndarray:
    """One warning listing the per-level rows whose fat/lean split is not measurable (NaN); returns which."""
    if not len(levels_df):
        return np.zeros(0, dtype=bool)
    hit = _unmeasurable_rows(levels_df)
    _warn_rows(levels_df, hit, "have no measurable fat/lean split; their fat/lean areas, fat % and grades are NaN "
                               "(see the 'warnings' column): {shown}")
    return hit


def _warn_empty_rows(levels_df: pd.DataFrame, warned: np.ndarray) -> None:
    """One warning listing the per-level rows whose ROI has no voxel there (kept with NaN); ``warned``: the
    rows already listed by :func:`_warn_unmeasurable` (which it returns)."""
    if not len(levels_df):
        return
    empty = (levels_df["n_voxels"].to_numpy() == 0) & ~warned  # rows without a fat/lean split warning yet
    _warn_rows(levels_df, empty, "have no voxel of their segment at their level (kept with 0 voxels and NaN "
                                 "values): {shown}; check that the segmentation covers these levels or restrict "
                                 "--levels")


def _unmeasurable_rows(levels_df: pd.DataFrame) -> np.ndarray:
    """Which rows' ``warnings`` hold the not-measurable note (a text test per row: no pandas string pass)."""
    return np.array([UNMEASURABLE_NOTE in str(w) for w in levels_df["warnings"].tolist()], dtype=bool)


def _warn_rows(levels_df: pd.DataFrame, hit: np.ndarray, text: str) -> None:
    """``"<n> per-level row(s) " + text`` with ``{shown}`` = the first rows' ``segment (level)``."""
    if not hit.any():
        return
    names = [f"{seg} ({lv})" for seg, lv in zip(levels_df.loc[hit, "segment"], levels_df.loc[hit, "level"])]
    shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    warnings.warn(f"{len(names)} per-level row(s) " + text.format(shown=shown), ParaspinalFatWarning, stacklevel=4)


def _level_sources_text(seg: Segmentation, table, opts: MeasureOptions) -> str:
    """What was searched for disc levels and found nothing (for the level error messages)."""
    from ..anatomy.segment_names import parse_segment_names

    # name findings are reported where the names are listed
    spine = [name for name, p in zip(seg.names(), parse_segment_names(seg.names(), table=table, warn=False))
             if p.kind in ("vertebra", "disc", "sacrum")]
    if spine:
        shown = ", ".join(repr(n) for n in spine[:6]) + (f" and {len(spine) - 6} more" if len(spine) > 6 else "")
        parts = [f"the disc/vertebra segments {shown} of {seg.source} gave no disc level (a disc mask named "
                 f"with its level, or two adjacent whole vertebrae, is needed; see the warnings)"]
    else:
        parts = [f"no disc or vertebra segments in {seg.source}"]
    if opts.markups:
        what = "" if isinstance(opts.markups, InMemoryMarkups) else "markups file "  # in memory: "markups 'x'"
        parts.append(f"the {what}{opts.markups} gave no disc level (points labelled with disc levels "
                     f"such as L4/5, or two adjacent vertebrae such as L4 and L5, are needed; see the warnings)")
    else:
        parts.append("no markups file (--markups)")
    return "; ".join(parts)


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
        An option value outside its meaning (see
        :meth:`MeasureOptions.validate`: e.g. a fat threshold outside 0-100 %,
        even ``n_slices``, NaN anywhere; unknown map kind or level), a missing or
        unreadable image or segmentation, grids that cannot be paired, or
        requested segments/muscles that are not in the segmentation.
    LevelError
        A segment without a level in its name while no level source (disc or
        vertebra masks, markups) gave a level (the message says what was
        searched), conflicting level sources, or nothing to measure per
        level: every level asked lies outside the image or was not found
        (the message names the levels asked and found) -- unless only the
        per-slice / whole-ROI tables were asked for (``per_slice`` /
        ``whole_roi`` without a level source, or ``levels=[]``).
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


#: columns of :attr:`CaseMeasurement.landmarks`
LANDMARK_COLUMNS = ["level", "kind", "source", "x_lps_mm", "y_lps_mm", "z_lps_mm", "slice_index", "slice_offset_mm",
                    "inside_image", "axis_lps_x", "axis_lps_y", "axis_lps_z", "axis_tilt_deg", "axis_source", "detail"]


def _landmark_table(landmarks, geometry: Geometry, axis: int, cranio_caudal) -> pd.DataFrame:
    from ..anatomy.level_names import is_disc_level
    from ..anatomy.spine_axes import level_axes

    recs = []
    order = sorted(landmarks, key=level_sort_key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a missing direction is warned where a plane needs it
        axes = level_axes(landmarks, order, cranio_caudal, fallback_normal=geometry.plane_normal(axis))
    image_normal = geometry.plane_normal(axis)
    for level in order:
        mark = landmarks[level]
        s, off = geometry.nearest_slice(mark.point_lps, axis)
        p = np.asarray(mark.point_lps, dtype=float)
        n = axes[level].normal_lps
        tilt = float(axes_angle_deg(n, image_normal))
        recs.append(
            {"level": level, "kind": "disc" if is_disc_level(level) else "vertebra", "source": mark.source,
             "x_lps_mm": p[0], "y_lps_mm": p[1], "z_lps_mm": p[2],
             "slice_index": s, "slice_offset_mm": off, "inside_image": 0 <= s < geometry.size[axis],
             "axis_lps_x": n[0], "axis_lps_y": n[1], "axis_lps_z": n[2], "axis_tilt_deg": tilt,
             "axis_source": axes[level].source, "detail": getattr(mark, "detail", "")}
        )
    return pd.DataFrame(recs, columns=LANDMARK_COLUMNS)

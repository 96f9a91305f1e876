"""Per-level rows measured on disc-parallel (oblique) planes (``plane="disc"``).

The rows planned on the image grid (:func:`~.planning.plan_rows`) keep their
ROI and level; each level gets a stack of ``n_slices`` parallel planes through
its landmark point (spaced by the image's slice thickness along the normal),
perpendicular to the local spine axis
(:func:`~ParaspinalFatLib.anatomy.spine_axes.level_axes`).  Image and masks are
sampled on them by :func:`~.planes.sample_planes`; the rows' windows then index
those planes instead of image slices, so the per-level table is computed by the
same :func:`~.case_tables.level_table` as on the image grid, with the
partial-volume CSA of each plane.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import MeasurementError
from ..geometry import Geometry, axes_angle_deg
from ..segmentation import Segmentation
from ..anatomy.level_names import level_sort_key
from ..anatomy.spine_axes import LevelAxis, level_axes
from .planning import Roi, Row
from .planes import Plane, make_plane, sample_planes

__all__ = ["PlaneMeasurement", "measure_planes"]


@dataclass
class PlaneMeasurement:
    """The disc-parallel planes of a case and the ROI samples on them.

    Attributes
    ----------
    rows : list of Row
        The per-level rows; ``window`` indexes the planes (``level number x
        n_slices + k``), ``slice_index`` is the image slice nearest to the
        level point and ``slice_offset_mm`` is 0 (the plane passes through
        the point).
    voxels : RoiVoxels
        The kept plane pixels of every ROI (membership >= 0.5), as voxels.
    counts : numpy.ndarray
        Kept pixels per (ROI, plane).
    area_pixels : numpy.ndarray
        Partial-volume area in pixels per (ROI, plane).
    pixel_area_mm2 : float
        Area of one plane pixel (mm^2).
    planes : list of Plane
        Every plane, in window order.
    levels : list of str
        The level of each group of ``n_slices`` planes.
    axes : dict
        Level -> :class:`~ParaspinalFatLib.anatomy.spine_axes.LevelAxis`.
    row_normals : numpy.ndarray
        ``(n_rows, 3)`` unit normal (LPS) of each row's plane.
    row_tilts_deg : numpy.ndarray
        Angle (degrees) of each row's plane from the image slice plane.
    n_slices : int
        Planes per level.
    samples : PlaneSamples
        The raw samples (pixel positions in their planes, for QC pictures).
    row_notes : list of str
        Per row, a row warning (``""`` when none): the section reaches the first or
        last image slice, so the CSA may be cut by the field of view.
    """

    rows: List[Row]
    voxels: object
    counts: np.ndarray
    area_pixels: np.ndarray
    pixel_area_mm2: float
    planes: List[Plane]
    levels: List[str]
    axes: Dict[str, LevelAxis]
    row_normals: np.ndarray
    row_tilts_deg: np.ndarray
    n_slices: int
    samples: object
    row_notes: List[str] = field(default_factory=list)


def measure_planes(
    image: np.ndarray,
    water: Optional[np.ndarray],
    geometry: Geometry,
    segmentation: Segmentation,
    roi_keys: Sequence[Tuple[int, int]],
    rows: List[Row],
    rois: List[Roi],
    landmarks: Dict[str, object],
    axis: int,
    *,
    n_slices: int = 1,
    pixel_mm: Optional[float] = None,
    cranio_caudal=(0.0, 0.0, 1.0),
    on_empty: str = "error",
    seg_source: str = "segmentation",
) -> PlaneMeasurement:
    """Sample every ROI on the disc-parallel planes of the planned rows' levels.

    Parameters
    ----------
    image, water : numpy.ndarray
        Image ``[k, j, i]`` (and Dixon water image or None) on ``geometry``.
    geometry : Geometry
        The image grid.
    segmentation : Segmentation
        Label layers on the image grid.
    roi_keys : sequence of (layer, label_value)
        Every ROI (and the reference ROI, if any, last), ROI number = position.
    rows : list of Row
        Rows planned on the image grid; their levels must be in ``landmarks``.
    rois : list of Roi
        The measured ROIs (for messages).
    landmarks : dict
        Level -> landmark (``point_lps``, optional ``direction_lps``).
    axis : int
        ITK slice axis of the image (for the nearest slice, the tilt and the
        plane spacing).
    n_slices : int
        Parallel planes per level (odd), spaced by the image's slice
        thickness along the normal, centred on the level point.
    pixel_mm : float, optional
        Plane pixel size (mm); default the image's finest in-plane spacing.
    cranio_caudal : sequence of 3 float
        Cranial direction in LPS (orients the normals).
    on_empty : str
        ``"error"``: a row whose ROI has no area on its planes raises.
    seg_source : str
        Segmentation name for messages.

    Returns
    -------
    PlaneMeasurement

    Raises
    ------
    MeasurementError
        A row's ROI does not cross its level's planes and ``on_empty`` is
        ``"error"``.
    """
    levels = sorted({r.level for r in rows}, key=level_sort_key)
    image_normal = geometry.plane_normal(axis)
    axes = level_axes(landmarks, levels, cranio_caudal, fallback_normal=image_normal)
    step = geometry.slice_thickness_mm(axis)
    half = int(n_slices) // 2
    planes: List[Plane] = []
    for level in levels:
        base = make_plane(geometry, landmarks[level].point_lps, axes[level].normal_lps, pixel_mm=pixel_mm, axis=axis)
        planes.extend(base.shifted((t - half) * step) for t in range(int(n_slices)))
    samples = sample_planes(image, geometry, segmentation, list(roi_keys), planes, water=water)
    counts = samples.counts_per_slice()
    number = {level: i for i, level in enumerate(levels)}
    new_rows: List[Row] = []
    for row in rows:
        first = number[row.level] * int(n_slices)
        window = (first, first + int(n_slices) - 1)
        if on_empty == "error" and samples.area_pixels[row.roi, window[0]: window[1] + 1].sum() == 0:
            raise MeasurementError(
                f"{seg_source}: segment '{rois[row.roi].segment.name}' does not cross the disc-parallel plane of "
                f"level {row.level} (from {landmarks[row.level].source}, axis from {axes[row.level].source}); "
                f"check that the segmentation covers this level, restrict the levels (--levels), use --plane "
                f"image, or --on-empty keep"
            )
        new_rows.append(dataclasses.replace(row, slice_offset_mm=0.0, window=window))
    notes = _edge_notes(samples, new_rows, rois, geometry, axis)
    normals = np.array([axes[r.level].normal_lps for r in new_rows], dtype=float).reshape(-1, 3)
    tilts = axes_angle_deg(normals, image_normal)
    return PlaneMeasurement(
        rows=new_rows, voxels=samples.to_roi_voxels(), counts=counts, area_pixels=samples.area_pixels,
        pixel_area_mm2=float(planes[0].pixel_area_mm2) if planes else float("nan"), planes=planes,
        levels=levels, axes=axes, row_normals=normals, row_tilts_deg=tilts, n_slices=int(n_slices),
        samples=samples, row_notes=notes,
    )


def _edge_notes(samples, rows: List[Row], rois: List[Roi], geometry: Geometry, axis: int) -> List[str]:
    """Per row, a warning when its section reaches the first or last image slice.

    An oblique plane leaves the slice stack where the stack ends: a muscle section that
    reaches the first or last slice there may continue beyond the field of view, so its
    CSA may be cut.  ``""`` for rows whose kept pixels all lie off the stack's two ends.
    """
    along = samples.nearest_kji[2 - axis]  # nearest voxel index of each kept pixel along the slice axis
    at_end = (along == 0) | (along == geometry.size[axis] - 1)
    notes = []
    for row in rows:
        mine = (samples.roi == row.roi) & (samples.slice_index >= row.window[0]) & (samples.slice_index <= row.window[1])
        hit = int(np.count_nonzero(mine & at_end))
        notes.append("" if hit == 0 else
                     f"disc-parallel section reaches the first/last image slice ({hit} pixel(s)): the muscle may "
                     f"continue beyond the field of view, so this CSA may be cut")
    return notes

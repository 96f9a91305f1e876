"""Synthetic lumbar phantoms with known muscle areas and fat fractions.

The phantom is a PDFF map with elliptical multifidus, erector spinae and psoas
muscles (left and right) on three disc-level slices, a ring of subcutaneous fat
(so that the PDFF scale can be detected) and, optionally, 3-D muscles plus box
vertebrae L3..S1 from which the disc levels follow.

The *truth* table is computed here from the written voxels (voxel count x
pixel area, mean of the written PDFF values, count of voxels >= threshold), by
code independent of the measurement pipeline, so tests can compare against it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import SimpleITK as sitk

from .geometry import Geometry
from .segmentation import Segment, Segmentation

__all__ = ["Phantom", "make_phantom", "write_phantom", "PHANTOM_MUSCLES"]

#: muscle -> (abbreviation, centre x offset |mm|, centre y mm (LPS, + = posterior), semi-axes a, b mm)
PHANTOM_MUSCLES: Dict[str, Tuple[str, float, float, float, float]] = {
    "multifidus": ("MF", 15.0, 38.0, 9.0, 14.0),
    "erector_spinae": ("ES", 44.0, 40.0, 16.0, 13.0),
    "psoas": ("PS", 34.0, -8.0, 12.0, 15.0),
}
PHANTOM_LEVELS = ("L3/4", "L4/5", "L5/S1")
_SIDE_SIGN = {"left": 1.0, "right": -1.0}  # LPS: +x is patient left
_SIDE_ABBR = {"left": "L", "right": "R"}


@dataclass
class Phantom:
    """A synthetic case.

    Attributes
    ----------
    image : SimpleITK.Image
        PDFF map stored in ``pdff_scale`` units (float32).
    segmentation : Segmentation
        Muscle ROIs (and vertebrae when ``mode="3d"``) on their own grid.
    truth : pandas.DataFrame
        Per muscle x side x level: slice_index, n_voxels, csa_mm2, mean PDFF (%),
        fat voxels and fat CSA at the threshold, from the written voxels.
    disc_points : dict
        Level -> LPS point of the mid-disc used to build the phantom.
    pdff_scale : str
        Storage scale of ``image`` (``"0-1"``, ``"0-100"`` or ``"0-1000"``).
    """

    image: sitk.Image
    segmentation: Segmentation
    truth: pd.DataFrame
    disc_points: Dict[str, np.ndarray]
    pdff_scale: str


def _rotation_x(deg: float) -> np.ndarray:
    t = np.deg2rad(deg)
    c, s = np.cos(t), np.sin(t)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def make_phantom(
    mode: str = "2d",
    size: Tuple[int, int, int] = (120, 100, 36),
    spacing: Tuple[float, float, float] = (1.25, 1.3, 4.0),
    tilt_deg: float = 0.0,
    origin: Optional[Sequence[float]] = None,
    pdff_scale: str = "0-100",
    fat_threshold_pct: float = 50.0,
    seed: int = 7,
    crop_segmentation: bool = True,
    level_slices: Tuple[int, int, int] = (26, 18, 10),
) -> Phantom:
    """Build a phantom.

    Parameters
    ----------
    mode : {"2d", "3d"}
        ``"2d"``: one 2-D ROI per muscle x side x level named like
        ``MF_L_L4/5``.  ``"3d"``: one 3-D muscle per side (``multifidus_left``)
        spanning all slices plus box vertebrae ``vertebrae_L3``, ``vertebrae_L4``,
        ``vertebrae_L5`` and ``vertebrae_S1`` centred between the level slices.
    size, spacing : tuple
        Grid size (i, j, k) and spacing in mm (anisotropic by default).
    tilt_deg : float
        Rotation of the grid about the LPS x axis (an oblique axial stack).
    origin : sequence of 3 float, optional
        LPS origin (mm, centre of voxel (0, 0, 0)); default centres the grid
        on (0, 0, 0) in-plane, the centre of slice 0 lying at LPS
        (0, 0, -60).
    pdff_scale : {"0-1", "0-100", "0-1000"}
        Storage scale of the written PDFF values.
    fat_threshold_pct : float
        Threshold used for the truth's fat voxel count.
    seed : int
        Seed of the random fat pattern.
    crop_segmentation : bool
        Store the segmentation on a grid cropped to the ROIs' bounding box
        (with an offset origin), as Slicer does.
    level_slices : tuple of 3 int
        Slice index of L3/4, L4/5 and L5/S1.

    Returns
    -------
    Phantom
        ``image``: float32 PDFF map in ``pdff_scale`` units on the (possibly
        tilted) grid; ``segmentation``: one layer of non-overlapping muscle
        ROIs (and vertebrae in ``"3d"`` mode), cropped when
        ``crop_segmentation``; ``truth``: one row per muscle x side x level
        (18 rows) with ``segment``, ``muscle``, ``side``, ``level``,
        ``slice_index``, ``n_voxels``, ``csa_mm2``, ``mean_pdff_pct``,
        ``median_pdff_pct``, ``sd_pdff_pct``, ``n_fat``, ``fat_csa_mm2``,
        ``lean_csa_mm2`` and ``pixel_area_mm2`` (mm^2, PDFF in % as read back
        from the stored float32 values); ``disc_points``: level -> LPS point
        (mm) at the in-plane grid centre of each level slice.

    Raises
    ------
    ValueError
        ``mode`` is not ``"2d"`` or ``"3d"``.
    KeyError
        ``pdff_scale`` is not one of the three scales.
    AssertionError
        Two ROIs overlap (a grid too small or spacing too coarse for the
        muscle layout), which would make the truth wrong.
    """
    from .composition.pdff_scale import PDFF_SCALES

    full_scale = PDFF_SCALES[pdff_scale][0]
    rng = np.random.default_rng(seed)
    size = tuple(int(v) for v in size)
    spacing = tuple(float(v) for v in spacing)
    direction = _rotation_x(tilt_deg)
    if origin is None:
        half = np.array([(size[0] - 1) * spacing[0] / 2, (size[1] - 1) * spacing[1] / 2, 0.0])
        origin = -(direction @ half) + np.array([0.0, 0.0, -60.0])
    geometry = Geometry(size, spacing, tuple(float(v) for v in origin), tuple(direction.ravel()))

    nk, nj, ni = geometry.shape
    kk, jj, ii = np.meshgrid(np.arange(nk), np.arange(nj), np.arange(ni), indexing="ij")
    # in-plane patient coordinates of each voxel, measured within its own slice plane
    # (u along the i axis, v along the j axis), so ellipses are exact on oblique grids
    u = (ii - (ni - 1) / 2) * spacing[0]
    v = (jj - (nj - 1) / 2) * spacing[1]

    pdff = np.zeros(geometry.shape, dtype=np.float64)  # in %
    r = np.hypot(u / 72.0, v / 62.0)
    pdff[(r >= 0.92) & (r <= 1.0)] = 92.0  # subcutaneous fat ring
    layers = np.zeros((1,) + geometry.shape, dtype=np.uint16)
    segments: List[Segment] = []
    truth_masks = []
    label = 0
    level_slices = tuple(int(s) for s in level_slices)

    def ellipse(muscle, side, scale=1.0):
        _abbr, cx, cy, a, b = PHANTOM_MUSCLES[muscle]
        return ((u - _SIDE_SIGN[side] * cx) / (a * scale)) ** 2 + ((v - cy) / (b * scale)) ** 2 <= 1.0

    fat_ratio_target = {"multifidus": 0.22, "erector_spinae": 0.18, "psoas": 0.06}
    lean_level = {"multifidus": 6.0, "erector_spinae": 8.0, "psoas": 3.0}
    if mode == "2d":
        for li, level in enumerate(PHANTOM_LEVELS):
            s = level_slices[li]
            for muscle, (abbr, *_rest) in PHANTOM_MUSCLES.items():
                for side in ("left", "right"):
                    label += 1
                    m2 = ellipse(muscle, side, scale=1.0 + 0.06 * li)[s]
                    mask = np.zeros(geometry.shape, bool)
                    mask[s] = m2
                    _fill_muscle(pdff, mask, rng, fat_ratio_target[muscle] + 0.04 * li, lean_level[muscle])
                    _paint(layers[0], mask, label)
                    name = f"{abbr}_{_SIDE_ABBR[side]}_{level}"
                    segments.append(Segment(name, 0, label, f"Segment_{label}"))
                    truth_masks.append((name, muscle, side, level, s, mask))
    elif mode == "3d":
        for muscle, (abbr, *_rest) in PHANTOM_MUSCLES.items():
            for side in ("left", "right"):
                label += 1
                mask = np.zeros(geometry.shape, bool)
                for k in range(nk):
                    mask[k] = ellipse(muscle, side, scale=1.0 + 0.004 * k)[k]
                _fill_muscle(pdff, mask, rng, fat_ratio_target[muscle], lean_level[muscle])
                _paint(layers[0], mask, label)
                name = f"{muscle}_{side}"
                segments.append(Segment(name, 0, label, f"Segment_{label}"))
                for li, level in enumerate(PHANTOM_LEVELS):
                    s = level_slices[li]
                    sl = np.zeros(geometry.shape, bool)
                    sl[s] = mask[s]
                    truth_masks.append((name, muscle, side, level, s, sl))
        # vertebral bodies: boxes centred between the disc slices
        spacing_k = level_slices[1] - level_slices[0]
        centres = {
            "L3": level_slices[0] - spacing_k / 2, "L4": (level_slices[0] + level_slices[1]) / 2,
            "L5": (level_slices[1] + level_slices[2]) / 2, "S1": level_slices[2] + spacing_k / 2,
        }
        half_h = max(1, int(round(abs(spacing_k) / 2 - 1)))
        body = (np.abs(u) <= 18.0) & (np.abs(v - 0.0) <= 14.0)
        for name, c in centres.items():
            label += 1
            lo, hi = int(np.floor(c - half_h + 0.5)), int(np.floor(c + half_h + 0.5))
            mask = np.zeros(geometry.shape, bool)
            for k in range(max(lo, 0), min(hi, nk - 1) + 1):
                mask[k] = body[k]
            _paint(layers[0], mask, label)
            segments.append(Segment(f"vertebrae_{name}", 0, label, f"Segment_{label}"))
    else:
        raise ValueError(f"mode must be '2d' or '3d', got {mode!r}")

    disc_points = {}
    for li, level in enumerate(PHANTOM_LEVELS):
        centre_ijk = np.array([(ni - 1) / 2, (nj - 1) / 2, level_slices[li]])
        disc_points[level] = geometry.index_to_physical(centre_ijk)

    stored = (pdff / 100.0 * full_scale).astype(np.float32)
    written_pct = stored.astype(np.float64) * (100.0 / full_scale)  # what a reader sees, in %
    truth_rows = [_truth(*t, written_pct, geometry, fat_threshold_pct) for t in truth_masks]
    image = sitk.GetImageFromArray(stored)
    geometry.apply_to_sitk(image)
    seg = Segmentation(layers, geometry, segments, source="phantom")
    if crop_segmentation:
        seg = _crop(seg)
    truth = pd.DataFrame(truth_rows)
    truth["pixel_area_mm2"] = geometry.pixel_area_mm2(2)
    return Phantom(image, seg, truth, disc_points, pdff_scale)


def _paint(layer, mask, label):
    """Write ``label`` into ``mask``; the truth assumes ROIs never overlap."""
    if layer[mask].any():
        raise AssertionError("phantom ROIs overlap; the truth table would be wrong")
    layer[mask] = label


def _fill_muscle(pdff, mask, rng, fat_ratio, lean_pct):
    """Write lean voxels (lean_pct +- 2 %) and fat voxels (60-95 %) into the mask."""
    n = int(mask.sum())
    is_fat = rng.random(n) < fat_ratio
    values = np.where(is_fat, rng.uniform(60.0, 95.0, n), lean_pct + rng.uniform(-2.0, 2.0, n))
    pdff[mask] = values


def _truth(name, muscle, side, level, s, mask, pdff, geometry: Geometry, thr):
    vals = pdff[mask] * 1.0
    n = int(mask.sum())
    fat = int((vals >= thr).sum())
    # pixel area from the spacing alone: the phantom's direction matrix is a rotation
    area = geometry.spacing[0] * geometry.spacing[1]
    return {
        "segment": name, "muscle": muscle, "side": side, "level": level, "slice_index": s,
        "n_voxels": n, "csa_mm2": n * area, "mean_pdff_pct": float(vals.mean()) if n else np.nan,
        "median_pdff_pct": float(np.median(vals)) if n else np.nan,
        "sd_pdff_pct": float(vals.std(ddof=1)) if n > 1 else np.nan,
        "n_fat": fat, "fat_csa_mm2": fat * area, "lean_csa_mm2": (n - fat) * area,
    }


def _crop(seg: Segmentation, margin: int = 2) -> Segmentation:
    """The segmentation on a grid cropped to its non-zero bounding box (+ margin)."""
    nz = np.argwhere(seg.layers.any(axis=0))
    lo = np.maximum(nz.min(axis=0) - margin, 0)
    hi = np.minimum(nz.max(axis=0) + margin + 1, seg.geometry.shape)
    layers = seg.layers[:, lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]].copy()
    g = seg.geometry
    start_ijk = np.array([lo[2], lo[1], lo[0]], dtype=float)
    new = Geometry(
        size=(int(hi[2] - lo[2]), int(hi[1] - lo[1]), int(hi[0] - lo[0])),
        spacing=g.spacing,
        origin=tuple(float(x) for x in g.index_to_physical(start_ijk)),
        direction=g.direction,
    )
    return seg.with_layers(layers, new)


def write_phantom(phantom: Phantom, folder, stem: str = "phantom") -> Dict[str, Path]:
    """Write the phantom's image (``<stem>_pdff.nrrd``), segmentation
    (``<stem>_muscles.seg.nrrd``) and truth (``<stem>_truth.csv``) into ``folder``.

    Parameters
    ----------
    phantom : Phantom
        Result of :func:`make_phantom`.
    folder : str or os.PathLike
        Output folder; created (with its parents) when missing.  Existing
        files of the same names are overwritten.
    stem : str
        File-name prefix.

    Returns
    -------
    dict of str to pathlib.Path
        ``"image"`` (compressed NRRD of the PDFF map in its storage scale),
        ``"segmentation"`` (Slicer ``.seg.nrrd``, gzip) and ``"truth"`` (CSV
        without index) -> the written file.
    """
    from .io.slicer_seg import write_seg_nrrd
    from .report.case_files import write_csv_atomic

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "image": folder / f"{stem}_pdff.nrrd",
        "segmentation": folder / f"{stem}_muscles.seg.nrrd",
        "truth": folder / f"{stem}_truth.csv",
    }
    sitk.WriteImage(phantom.image, str(paths["image"]), useCompression=True)
    write_seg_nrrd(phantom.segmentation, paths["segmentation"])
    write_csv_atomic(phantom.truth, paths["truth"])
    return paths

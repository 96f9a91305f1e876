"""Moving a segmentation onto another voxel grid (usually the image's).

Segmentations are often stored on their own grid (cropped, another resolution,
or the grid of another series of the same frame of reference).
:func:`resample_to_grid` maps every layer onto a target grid in physical (LPS)
space with nearest-neighbour sampling, warns when segment voxels are lost and
refuses a segmentation that does not overlap the target at all.  A segmentation
cropped from the target grid (:func:`crop_offset`) is pasted at its offset,
which gives the same voxels as the resampling.
"""

from __future__ import annotations

import warnings
from typing import Dict, Optional, Tuple
import numpy as np
from ..errors import InputError
from ..geometry import Geometry
from .label_layers import compact_dtype
from ..segmentation import Segmentation
from ..errors import SegmentationWarning
from .file_notes import caller_stacklevel


__all__ = ['resample_to_grid', 'crop_offset', 'CROP_TOLERANCE_VOXELS']

def resample_to_grid(segmentation: Segmentation, geometry: Geometry) -> Segmentation:
    """Resample every layer onto another voxel grid (nearest neighbour).

    Each target voxel takes the label of the source voxel whose centre is
    nearest in physical (LPS) space (SimpleITK ``ResampleImageFilter`` with
    ``sitkNearestNeighbor``); target voxels outside the source grid get 0.
    The integer voxel type is kept.  When the source grid is the target grid
    cropped (or extended) by a whole number of voxels (:func:`crop_offset`:
    same axes, directions and spacing), the layers are pasted at that offset
    instead, clipping what falls outside: the same voxels, without resampling
    the whole target grid.

    Parameters
    ----------
    segmentation : Segmentation
        Segmentation on its own (possibly cropped) grid.
    geometry : Geometry
        Target grid (usually the image's).

    Returns
    -------
    Segmentation
        New segmentation on ``geometry`` with the same segments.  When the
        grids are already identical (``segmentation.geometry.same_grid(geometry)``,
        within 1e-3 mm / 1e-5) the **same object** is returned, not a copy, so
        that its cached labelled-voxel index
        (:meth:`Segmentation.labelled_voxels`) is shared between level
        detection and measurement; its geometry is then the segmentation's own
        (equal to ``geometry`` within that tolerance).  Do not modify the
        returned layers in place: copy them first.

    Raises
    ------
    InputError
        When the segmentation had voxels but none of them falls inside the
        target grid ("segmentation does not overlap the image"), giving both
        extents in LPS mm.

    Warns
    -----
    SegmentationWarning
        When some (not all) segment voxels lie outside the target grid.
    """
    src = segmentation.geometry
    layers = segmentation.layers
    if src.same_grid(geometry):
        return segmentation
    dtype = compact_dtype(layers)
    out = np.zeros((layers.shape[0],) + tuple(geometry.shape), dtype=dtype)
    offset = crop_offset(src, geometry)
    if offset is not None:
        had_voxels, all_inside = _paste(layers, offset, out)
    else:
        had_voxels, all_inside = _resample_layers(layers, src, geometry, out), False
    if had_voxels and not out.any():
        raise InputError(
            f"{segmentation.source}: segmentation does not overlap the image: the segmentation "
            f"grid covers {_extent_text(src)} but the image covers {_extent_text(geometry)} "
            "(LPS mm). Check that both files belong to the same scan (same frame of reference); "
            "a lost origin or an RAS/LPS mix-up in one of them moves it away."
        )
    if had_voxels and not all_inside:
        _warn_outside(segmentation, geometry)
    new = segmentation.with_layers(out, geometry)
    new.metadata = dict(segmentation.metadata)
    new.metadata["resampled_from"] = src.describe()
    return new


#: Largest deviation (voxels) of a grid mapping from an integer shift that still counts as a
#: shift.  Nearest-neighbour sampling rounds at 0.5 voxel, so any mapping within this of the
#: shift samples exactly the shifted voxels.
CROP_TOLERANCE_VOXELS = 1e-2


def crop_offset(source: Geometry, target: Geometry) -> Optional[Tuple[int, int, int]]:
    """The integer voxel shift from ``target`` to ``source`` when one grid is the other cropped.

    The source grid is a crop (or an extension) of the target grid when every
    target voxel index ``t`` maps (through physical space) to the source
    continuous index ``t + offset`` for one integer ``offset``: same axis order
    and directions (no flip, no permutation), same spacing, origins a whole
    number of voxels apart.  The mapping is checked at the eight corners of
    the target grid (it is affine, so the corners bound it) against
    :data:`CROP_TOLERANCE_VOXELS`; the source may extend beyond the target on
    any side.  Nearest-neighbour resampling onto ``target`` is then the same as
    pasting the source at ``-offset`` (see :func:`resample_to_grid`).

    Parameters
    ----------
    source : Geometry
        Grid of the segmentation.
    target : Geometry
        Grid to move it onto.

    Returns
    -------
    tuple of 3 int or None
        ``(di, dj, dk)``: the source index of target voxel ``(0, 0, 0)``
        (ITK order i, j, k); ``None`` when the grids are not shifted copies of
        each other (a flip, rotation, other spacing or a sub-voxel shift).
    """
    try:
        m = np.linalg.inv(source.ijk_to_lps) @ target.ijk_to_lps  # target ijk -> source ijk
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(m)):
        return None
    shift = np.rint(m[:3, 3])
    hi = np.asarray(target.size, dtype=float) - 1.0
    corners = np.array([[a, b, c] for a in (0.0, hi[0]) for b in (0.0, hi[1])
                        for c in (0.0, hi[2])])
    deviation = corners @ (m[:3, :3] - np.eye(3)).T + (m[:3, 3] - shift)
    if float(np.abs(deviation).max()) > CROP_TOLERANCE_VOXELS:
        return None
    return (int(shift[0]), int(shift[1]), int(shift[2]))


def _paste(layers: np.ndarray, offset: Tuple[int, int, int], out: np.ndarray) -> Tuple[bool, bool]:
    """Copy the source layers into ``out`` (zeros) shifted by ``-offset``, clipping.

    Returns (any labelled voxel in the source, whole source grid inside the target).
    """
    src_slices, dst_slices = [], []
    all_inside = True
    # numpy axes (k, j, i) against ITK offsets (i, j, k)
    for n_src, n_dst, d in zip(layers.shape[1:], out.shape[1:], offset[::-1]):
        lo, hi = max(0, -d), min(n_dst, n_src - d)  # target range whose source index t + d exists
        all_inside = all_inside and d <= 0 and n_src - d <= n_dst
        if hi <= lo:
            return bool(layers.any()), False
        dst_slices.append(slice(lo, hi))
        src_slices.append(slice(lo + d, hi + d))
    had_voxels = False
    for li in range(layers.shape[0]):
        layer = layers[li]
        if not layer.any():
            continue
        had_voxels = True
        out[(li,) + tuple(dst_slices)] = layer[tuple(src_slices)]
    return had_voxels, all_inside


def _resample_layers(layers: np.ndarray, src: Geometry, geometry: Geometry,
                     out: np.ndarray) -> bool:
    """Nearest-neighbour resampling of every non-empty layer into ``out``; any labelled voxel."""
    import SimpleITK as sitk  # runtime dependency

    dtype = out.dtype
    had_voxels = False
    for li in range(layers.shape[0]):
        layer = layers[li]
        if not layer.any():
            continue
        had_voxels = True
        img = sitk.GetImageFromArray(np.ascontiguousarray(layer, dtype=dtype))
        src.apply_to_sitk(img)
        res = sitk.ResampleImageFilter()
        res.SetSize([int(s) for s in geometry.size])
        res.SetOutputSpacing([float(s) for s in geometry.spacing])
        res.SetOutputOrigin([float(o) for o in geometry.origin])
        res.SetOutputDirection([float(d) for d in geometry.direction])
        res.SetInterpolator(sitk.sitkNearestNeighbor)
        res.SetDefaultPixelValue(0)
        res.SetOutputPixelType(img.GetPixelID())
        out[li] = sitk.GetArrayFromImage(res.Execute(img))
    return had_voxels


# ============================================================================ helpers
def _grid_bounds(geometry: Geometry) -> Tuple[np.ndarray, np.ndarray]:
    """LPS bounding box of the grid's outer voxel edges."""
    size = np.asarray(geometry.size, dtype=float)
    corners = np.array([[x, y, z] for x in (-0.5, size[0] - 0.5) for y in (-0.5, size[1] - 0.5)
                        for z in (-0.5, size[2] - 0.5)])
    pts = geometry.index_to_physical(corners)
    return pts.min(axis=0), pts.max(axis=0)


def _extent_text(geometry: Geometry) -> str:
    lo, hi = _grid_bounds(geometry)
    return ", ".join(f"{ax} {a:.1f}..{b:.1f}" for ax, a, b in zip("xyz", lo, hi))


def _warn_outside(segmentation: Segmentation, geometry: Geometry) -> None:
    """Warn (per segment) when source voxels fall outside the target grid."""
    src = segmentation.geometry
    size = np.asarray(geometry.size, dtype=float)
    m = np.linalg.inv(geometry.ijk_to_lps) @ src.ijk_to_lps  # source ijk -> target ijk
    outside_counts: Dict[Tuple[int, int], int] = {}
    for li in range(segmentation.n_layers):
        layer = segmentation.layers[li]
        nz = np.nonzero(layer)
        if nz[0].size == 0:
            continue
        # quick test on the bounding box corners
        lo = np.array([nz[2].min(), nz[1].min(), nz[0].min()], dtype=float)
        hi = np.array([nz[2].max(), nz[1].max(), nz[0].max()], dtype=float)
        corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                            for z in (lo[2], hi[2])])
        t = corners @ m[:3, :3].T + m[:3, 3]
        if np.all(t >= -0.5) and np.all(t < size - 0.5):
            continue
        values = layer[nz]
        chunk = 1 << 20
        for start in range(0, values.size, chunk):
            ijk = np.stack([nz[2][start:start + chunk], nz[1][start:start + chunk],
                            nz[0][start:start + chunk]], axis=1).astype(float)
            t = ijk @ m[:3, :3].T + m[:3, 3]
            out = ~(np.all(t >= -0.5, axis=1) & np.all(t < size - 0.5, axis=1))
            if out.any():
                vals, cnts = np.unique(values[start:start + chunk][out], return_counts=True)
                for v, c in zip(vals, cnts):
                    outside_counts[(li, int(v))] = outside_counts.get((li, int(v)), 0) + int(c)
    if outside_counts:
        parts = []
        for s in segmentation.segments:
            c = outside_counts.get((s.layer, s.label_value))
            if c:
                total = int(np.count_nonzero(segmentation.layers[s.layer] == s.label_value))
                parts.append(f"'{s.name}' {c} of {total}")
        warnings.warn(
            f"{segmentation.source}: some segment voxels lie outside the image grid and are lost "
            f"by resampling ({'; '.join(parts) or 'unnamed labels'} voxels).",
            SegmentationWarning, stacklevel=caller_stacklevel())

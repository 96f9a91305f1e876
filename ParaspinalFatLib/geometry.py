"""Voxel-grid geometry in the patient LPS frame (the DICOM/ITK convention).

Conventions used everywhere in this library
-------------------------------------------
* Physical coordinates are **LPS** millimetres (x: patient Left, y: Posterior,
  z: Superior), as in DICOM, ITK and SimpleITK.  Slicer's GUI shows RAS; convert
  with :func:`ras_to_lps` (negate x and y).
* Index order of a :class:`Geometry` is ITK's ``(i, j, k)``; numpy arrays obtained
  with ``SimpleITK.GetArrayFromImage`` are indexed ``[k, j, i]``.  Every array in
  this library uses that numpy order.
* ``direction`` is the 3x3 matrix whose *columns* are the unit vectors of the
  i, j and k axes in LPS.  A voxel index ``(i, j, k)`` maps to
  ``origin + direction @ (spacing * (i, j, k))``.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

__all__ = ["Geometry", "ras_to_lps", "lps_to_ras", "axis_shear", "axes_angle_deg"]


def axis_shear(axes) -> Tuple[float, Tuple[int, int]]:
    """Largest deviation from a right angle between two axes of a grid, in degrees.

    Parameters
    ----------
    axes : array_like
        3x3 matrix whose columns are the grid axes (scaled or unit length),
        e.g. :attr:`Geometry.direction_matrix` or the upper-left 3x3 of an
        IJK-to-LPS (or RAS) matrix.

    Returns
    -------
    shear_deg : float
        ``max |90 - angle(a, b)|`` over the three pairs of axes: 0 for a
        rotation (with or without flips), e.g. 20 for a CT stack with a 20
        degree gantry tilt.  NaN when an axis has zero length or a number is
        not finite.
    pair : tuple of 2 int
        The two axes (0 = i, 1 = j, 2 = k) of that largest deviation
        (``(0, 1)`` when there is none).
    """
    m = np.asarray(axes, dtype=float).reshape(3, 3)
    norms = np.linalg.norm(m, axis=0)
    if not np.all(np.isfinite(m)) or np.any(norms <= 0):
        return float("nan"), (0, 1)
    unit = m / norms
    worst, pair = 0.0, (0, 1)
    for a, b in ((0, 1), (0, 2), (1, 2)):
        cos = float(np.clip(unit[:, a] @ unit[:, b], -1.0, 1.0))
        dev = abs(90.0 - float(np.degrees(np.arccos(cos))))
        if dev > worst:
            worst, pair = dev, (a, b)
    return worst, pair


def axes_angle_deg(unit_a, unit_b) -> np.ndarray:
    """Sign-free angle (degrees, 0..90) between unit directions, e.g. a plane's tilt.

    Parameters
    ----------
    unit_a : array_like
        Unit vector(s), shape ``(3,)`` or ``(n, 3)``.
    unit_b : array_like
        Unit vector, shape ``(3,)``.

    Returns
    -------
    float or numpy.ndarray
        ``degrees(arccos(|a . b|))``, the cosine clipped to 1 against rounding.
    """
    cos = np.minimum(1.0, np.abs(np.asarray(unit_a, dtype=float) @ np.asarray(unit_b, dtype=float)))
    return np.degrees(np.arccos(cos))


def ras_to_lps(points) -> np.ndarray:
    """Convert RAS coordinates (N x 3 or 3) to LPS by negating x and y.

    The conversion is its own inverse, so :func:`lps_to_ras` is this same
    function.

    Parameters
    ----------
    points : array_like
        Points in mm with the coordinates on the last axis: shape ``(3,)``,
        ``(N, 3)`` or more generally ``(..., 3)`` (x, y, z order).

    Returns
    -------
    numpy.ndarray
        New float array of the same shape with x and y negated (z unchanged);
        the input is never modified.
    """
    p = np.array(points, dtype=float, copy=True)
    p[..., 0] *= -1.0
    p[..., 1] *= -1.0
    return p


lps_to_ras = ras_to_lps


@dataclass(frozen=True)
class Geometry:
    """A 3-D voxel grid: size, spacing, origin and direction in LPS.

    Parameters
    ----------
    size : tuple of int
        Number of voxels along i, j, k (ITK order).
    spacing : tuple of float
        Voxel spacing in mm along i, j, k.
    origin : tuple of float
        LPS position (mm) of the centre of voxel (0, 0, 0).
    direction : tuple of 9 floats
        Row-major 3x3 matrix whose columns are the axis unit vectors in LPS.
    """

    size: Tuple[int, int, int]
    spacing: Tuple[float, float, float]
    origin: Tuple[float, float, float]
    direction: Tuple[float, ...]

    # ------------------------------------------------------------------ creation
    @classmethod
    def from_sitk(cls, image) -> "Geometry":
        """Geometry of a 3-D SimpleITK image."""
        if image.GetDimension() != 3:
            raise ValueError(f"expected a 3-D image, got {image.GetDimension()}-D")
        return cls(
            size=tuple(int(v) for v in image.GetSize()),
            spacing=tuple(float(v) for v in image.GetSpacing()),
            origin=tuple(float(v) for v in image.GetOrigin()),
            direction=tuple(float(v) for v in image.GetDirection()),
        )

    @classmethod
    def from_ijk_to_lps(cls, size: Sequence[int], matrix) -> "Geometry":
        """Geometry from a 4x4 (or 3x4) IJK-to-LPS matrix (columns = scaled axes)."""
        m = np.asarray(matrix, dtype=float)
        axes = m[:3, :3]
        spacing = np.linalg.norm(axes, axis=0)
        if np.any(spacing <= 0):
            raise ValueError("IJK-to-LPS matrix has a zero-length axis")
        direction = axes / spacing
        return cls(
            size=tuple(int(v) for v in size),
            spacing=tuple(float(v) for v in spacing),
            origin=tuple(float(v) for v in m[:3, 3]),
            direction=tuple(float(v) for v in direction.ravel()),
        )

    def apply_to_sitk(self, image) -> None:
        """Set spacing, origin and direction of a SimpleITK image to this geometry."""
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)

    # ------------------------------------------------------------------ matrices
    @property
    def direction_matrix(self) -> np.ndarray:
        """3x3 direction matrix (columns are i, j, k unit vectors in LPS)."""
        return np.asarray(self.direction, dtype=float).reshape(3, 3)

    @property
    def ijk_to_lps(self) -> np.ndarray:
        """4x4 homogeneous matrix mapping (i, j, k, 1) to LPS mm."""
        m = np.eye(4)
        m[:3, :3] = self.direction_matrix * np.asarray(self.spacing, dtype=float)
        m[:3, 3] = self.origin
        return m

    @property
    def shape(self) -> Tuple[int, int, int]:
        """numpy array shape ``(k, j, i)`` of arrays on this grid."""
        return (self.size[2], self.size[1], self.size[0])

    def index_to_physical(self, ijk) -> np.ndarray:
        """LPS mm of continuous ITK indices ``(..., 3)`` in (i, j, k) order."""
        ijk = np.asarray(ijk, dtype=float)
        m = self.ijk_to_lps
        return ijk @ m[:3, :3].T + m[:3, 3]

    def physical_to_index(self, lps) -> np.ndarray:
        """Continuous ITK indices (i, j, k) of LPS points ``(..., 3)``."""
        lps = np.asarray(lps, dtype=float)
        m = self.ijk_to_lps
        inv = np.linalg.inv(m[:3, :3])
        return (lps - m[:3, 3]) @ inv.T

    # ------------------------------------------------------------------ slices
    def slice_axis(self, cranio_caudal=(0.0, 0.0, 1.0)) -> int:
        """ITK axis (0=i, 1=j, 2=k) whose slice planes are most nearly axial.

        The chosen axis is the one whose *plane normal* (the cross product of
        the two other axes) is closest in angle to the cranio-caudal direction
        (default LPS +z, i.e. Superior).
        """
        axis_dir = np.asarray(cranio_caudal, dtype=float)
        axis_dir = axis_dir / np.linalg.norm(axis_dir)
        scores = [abs(float(self.plane_normal(a) @ axis_dir)) for a in range(3)]
        return int(np.argmax(scores))

    def plane_normal(self, axis: int) -> np.ndarray:
        """Unit normal (LPS) of the planes of constant index along ``axis`` (a new array each call)."""
        return self._plane_normals[axis].copy()

    @functools.cached_property
    def _plane_normals(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The three :meth:`plane_normal` (computed once per geometry: a measurement asks a dozen times)."""
        d = self.direction_matrix
        normals = []
        for axis in range(3):
            a, b = [x for x in range(3) if x != axis]
            n = np.cross(d[:, a], d[:, b])
            n = n / np.linalg.norm(n)
            # orient the normal along increasing index on `axis`
            if float(n @ d[:, axis]) < 0:
                n = -n
            normals.append(n)
        return tuple(normals)

    def pixel_area_mm2(self, axis: int) -> float:
        """Area (mm^2) of one voxel face in the planes of constant ``axis`` index.

        Computed from the true geometry: ``|s_a d_a x s_b d_b|``, which also holds
        for a sheared (non-orthogonal) direction matrix.
        """
        d = self.direction_matrix
        s = self.spacing
        a, b = [x for x in range(3) if x != axis]
        return float(np.linalg.norm(np.cross(d[:, a] * s[a], d[:, b] * s[b])))

    def shear_deg(self) -> float:
        """Largest deviation (degrees) from a right angle between two grid axes.

        0 for every orthogonal grid (oblique or not); positive for a sheared
        grid such as CT with gantry tilt, which SimpleITK cannot write to
        NIfTI (it orthogonalises the direction matrix); see :func:`axis_shear`.
        """
        return axis_shear(self.direction_matrix)[0]

    def slice_thickness_mm(self, axis: int) -> float:
        """Distance (mm) between adjacent slice planes of ``axis``, along their normal."""
        d = self.direction_matrix
        return float(abs(self.plane_normal(axis) @ d[:, axis]) * self.spacing[axis])

    def voxel_volume_mm3(self) -> float:
        """Volume of one voxel in mm^3 (|det| of the scaled direction matrix)."""
        return float(abs(np.linalg.det(self.ijk_to_lps[:3, :3])))

    def nearest_slice(self, point_lps, axis: int) -> Tuple[int, float]:
        """Slice index nearest to ``point_lps`` along the slice normal, and the
        signed distance (mm) from that slice plane to the point along the normal.

        The index is not clipped to the grid; callers check
        ``0 <= index < size[axis]``.
        """
        p = np.asarray(point_lps, dtype=float) - np.asarray(self.origin, dtype=float)
        n = self.plane_normal(axis)
        step = float(n @ self.direction_matrix[:, axis]) * self.spacing[axis]
        height = float(p @ n)
        index = int(np.floor(height / step + 0.5))
        return index, height - index * step

    def same_grid(self, other: "Geometry", tol_mm: float = 1e-3, tol_dir: float = 1e-5) -> bool:
        """True when both geometries describe the same voxel grid (within tolerance)."""
        try:
            if self == other:  # equal fields (the usual case: no tolerance to test)
                return True
        except ValueError:  # fields given as numpy arrays (no single truth value): the tolerances decide
            pass
        return (
            tuple(self.size) == tuple(other.size)
            and np.allclose(self.spacing, other.spacing, atol=tol_dir * 10, rtol=tol_dir)
            and np.allclose(self.origin, other.origin, atol=tol_mm)
            and np.allclose(self.direction, other.direction, atol=tol_dir)
        )

    def corner_points(self) -> np.ndarray:
        """LPS positions (8 x 3) of the centres of the eight corner voxels."""
        hi = np.asarray(self.size, dtype=float) - 1.0
        corners = np.array([[a, b, c] for a in (0, hi[0]) for b in (0, hi[1]) for c in (0, hi[2])])
        return self.index_to_physical(corners)

    def covers_same_region(self, other: "Geometry", tol_mm: Optional[float] = None) -> bool:
        """True when both grids' voxel centres span the same physical box (axis
        order and flips may differ), within ``tol_mm`` (default half the
        smallest spacing)."""
        if tol_mm is None:
            tol_mm = 0.5 * min(min(self.spacing), min(other.spacing))
        a, b = self.corner_points(), other.corner_points()
        return bool(
            np.all(np.abs(a.min(axis=0) - b.min(axis=0)) <= tol_mm)
            and np.all(np.abs(a.max(axis=0) - b.max(axis=0)) <= tol_mm)
        )

    def describe(self) -> str:
        """Short human-readable description for error messages."""
        return (
            f"size {tuple(self.size)}, spacing {tuple(round(s, 4) for s in self.spacing)} mm, "
            f"origin {tuple(round(o, 3) for o in self.origin)} (LPS)"
        )

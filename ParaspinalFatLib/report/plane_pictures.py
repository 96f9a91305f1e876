"""QC pictures of levels measured on disc-parallel (oblique) planes (``plane="disc"``).

With ``plane="disc"`` every level is measured on planes through its level point,
perpendicular to the local spine axis
(:mod:`~ParaspinalFatLib.measurement.disc_planes`).  The image-plane pictures of
:func:`~ParaspinalFatLib.report.case_files.write_qc_pictures` would show the
wrong section; :func:`write_plane_pictures` draws what was measured instead:

* per level, the central plane of its stack (``t = n_slices // 2``), the image
  resampled trilinearly on the plane's pixel centres (:func:`resample_plane`),
  each ROI's kept pixels (interpolated membership >= 0.5) outlined, fat and
  undefined pixels filled from the class codes, every ROI labelled with its
  numbers from the per-level table, and a title naming the level, the plane's
  tilt from the image plane and where its normal came from;
* a sagittal overview (the same reformat through the muscles' midline as the
  image-plane overview) with each level's plane drawn as the tilted line where
  it cuts that section (:func:`section_line`), labelled with the level and the
  tilt.

Orientation follows the image-plane pictures: the plane grid's columns run along
``u`` (the image's in-plane column axis projected onto the plane) and its rows
along ``v = normal x u``, so an untilted plane looks like the axial slice; the
picture is then transposed and flipped from the patient sides that ``u`` and
``v`` point to, into the radiological view (patient right on the viewer's left,
anterior at the top).  File names carry ``disc_plane`` so that they never
replace the image-plane pictures of another run in the same folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..composition.base import EXCLUDED, FAT, UNDEFINED, CompositionMethod
from ..errors import InputError
from ..geometry import Geometry
from .case_files import check_output_folder, default_window, edge_labels, end_label, label_text, make_folder

if TYPE_CHECKING:  # pragma: no cover - annotations only
    import pandas as pd

    from ..measurement.disc_planes import PlaneMeasurement
    from ..measurement.planes import Plane
    from ..measurement.planning import Roi

__all__ = ["plane_edge_labels", "resample_plane", "section_line", "write_plane_pictures"]



# --------------------------------------------------------------------------- geometry
def plane_edge_labels(plane: "Plane") -> Tuple[str, str, str, str]:
    """Patient sides of a plane's pixel grid: (first column, last column, first row, last row).

    Parameters
    ----------
    plane : Plane
        A measurement plane (:class:`~ParaspinalFatLib.measurement.planes.Plane`);
        its column index increases along ``u_lps``, its row index along
        ``v_lps``.

    Returns
    -------
    tuple of 4 str
        LPS letters (``"R"``/``"L"``, ``"A"``/``"P"``, ``"I"``/``"S"``) of the
        side each edge faces: the end of the LPS axis nearest to ``-u``,
        ``+u``, ``-v`` and ``+v``.  An untilted plane of an LPS-aligned axial
        image gives ``("R", "L", "A", "P")``, as
        :func:`~ParaspinalFatLib.report.case_files.edge_labels` does for the
        slice.
    """
    u = np.asarray(plane.u_lps, dtype=float)
    v = np.asarray(plane.v_lps, dtype=float)
    return end_label(-u), end_label(u), end_label(-v), end_label(v)


def resample_plane(array: np.ndarray, geometry: Geometry, plane: "Plane") -> np.ndarray:
    """The image on a plane's pixel centres, trilinear.

    Parameters
    ----------
    array : numpy.ndarray
        Image voxels ``[k, j, i]`` on ``geometry`` (any real dtype; not copied).
    geometry : Geometry
        The image grid (LPS).
    plane : Plane
        The plane (:class:`~ParaspinalFatLib.measurement.planes.Plane`).

    Returns
    -------
    numpy.ndarray of float64, shape ``plane.shape``
        ``[row, col]``: the value at the centre of pixel ``(row, col)``, by the
        measurement's own trilinear interpolation
        (:func:`~ParaspinalFatLib.measurement.planes.image_on_plane`); NaN beyond
        the outermost voxel centres.

    Raises
    ------
    InputError
        ``array`` does not have the grid's shape ``(k, j, i)``.
    """
    from ..measurement.planes import image_on_plane

    arr = np.asarray(array)
    if arr.shape != tuple(geometry.shape):
        raise InputError(f"image array shape {arr.shape} does not match the geometry (k, j, i) = "
                         f"{tuple(geometry.shape)}")
    return image_on_plane(arr, geometry, plane)


def section_line(geometry: Geometry, point_lps, normal_lps, fixed_axis: int, fixed_index: float,
                 row_axis: int, col_axis: int, shape: Sequence[int]):
    """Where a plane cuts a section of constant index, as two points of the section.

    Parameters
    ----------
    geometry : Geometry
        The image grid.
    point_lps : array_like
        (3,) a point of the plane (LPS mm).
    normal_lps : array_like
        (3,) the plane's normal (any length and sign).
    fixed_axis : int
        ITK axis (0 = i, 1 = j, 2 = k) held constant in the section (e.g. the
        left-right axis for a sagittal reformat).
    fixed_index : float
        Its index.
    row_axis, col_axis : int
        ITK axes along which the section's row and column indices increase.
    shape : (int, int)
        ``(n_rows, n_cols)`` of the section.

    Returns
    -------
    tuple or None
        ``((row0, col0), (row1, col1))``: two points of the intersection line
        in the section's continuous index coordinates (voxel centres at
        integers), at its first and last column (its first and last row when
        the line is steeper than 45 degrees in index units); extend them to
        draw the line.  None when the plane is parallel to the section.

    Raises
    ------
    InputError
        The axes are not three different ITK axes, or the normal is zero or
        not finite.
    """
    if sorted((fixed_axis, row_axis, col_axis)) != [0, 1, 2]:
        raise InputError(f"fixed_axis, row_axis and col_axis must be 0, 1 and 2 in some order, got "
                         f"{(fixed_axis, row_axis, col_axis)}")
    n = np.asarray(normal_lps, dtype=float).reshape(3)
    norm = float(np.linalg.norm(n))
    if not (np.all(np.isfinite(n)) and norm > 0):
        raise InputError(f"the plane normal must be a finite non-zero vector, got {n.tolist()}")
    n = n / norm
    base = np.zeros(3)
    base[fixed_axis] = float(fixed_index)
    f0 = float(n @ (geometry.index_to_physical(base) - np.asarray(point_lps, dtype=float)))
    axes = geometry.direction_matrix * np.asarray(geometry.spacing, dtype=float)  # columns: one index step
    g_row, g_col = float(n @ axes[:, row_axis]), float(n @ axes[:, col_axis])
    n_rows, n_cols = int(shape[0]), int(shape[1])
    if max(abs(g_row), abs(g_col)) < 1e-12:
        return None
    if abs(g_row) >= abs(g_col):  # signed distance f0 + row g_row + col g_col = 0, solved for the row
        cols = (0.0, float(max(n_cols - 1, 1)))
        return tuple((-(f0 + c * g_col) / g_row, c) for c in cols)
    rows = (0.0, float(max(n_rows - 1, 1)))
    return tuple((r, -(f0 + r * g_row) / g_col) for r in rows)


# --------------------------------------------------------------------------- texts
# --------------------------------------------------------------------------- pictures
def write_plane_pictures(
    qc_dir,
    array: np.ndarray,
    geometry: Geometry,
    axis: int,
    planes: "PlaneMeasurement",
    rois: "List[Roi]",
    codes: np.ndarray,
    levels_df: "pd.DataFrame",
    landmarks_df: "Optional[pd.DataFrame]",
    method: CompositionMethod,
    subject: str,
    crop_margin_mm: Optional[float] = 30.0,
) -> List[Path]:
    """One PNG per level of its central disc-parallel plane, and a sagittal
    overview with the planes drawn as tilted lines; returns the written paths.

    Each level picture shows the image resampled on the level's central plane
    (``t = n_slices // 2`` of its stack), the kept pixels of each of its rows'
    ROIs outlined, ``FAT`` pixels filled as fat and ``UNDEFINED`` / ``EXCLUDED``
    pixels as undefined, each ROI labelled with its numbers from ``levels_df``
    (as on the image-plane pictures), cropped to the ROIs + ``crop_margin_mm``,
    in the radiological view (patient right on the viewer's left, anterior at
    the top; transposed and flipped from the patient sides of the plane's
    ``u`` and ``v``).  Pixels are ``pixel_mm`` square.

    Parameters
    ----------
    qc_dir : str or os.PathLike
        Output folder; created when missing.
    array : numpy.ndarray
        Image voxels ``[k, j, i]`` in their storage units (as measured).
    geometry : Geometry
        Image grid (LPS).
    axis : int
        ITK slice axis (0 = i, 1 = j, 2 = k) of the image (the tilt is
        measured from its slice plane; the sagittal reformat keeps it as rows).
    planes : PlaneMeasurement
        The disc-parallel planes, their rows and samples
        (:func:`~ParaspinalFatLib.measurement.disc_planes.measure_planes`).
    rois : list of Roi
        Measured ROIs; ``Row.roi`` indexes this list.
    codes : numpy.ndarray of int8
        Class code of every kept plane pixel, in the order of
        ``planes.samples`` (``LEAN``, ``UNDEFINED``, ``FAT``, ``EXCLUDED``;
        ``EXCLUDED - 1`` for pixels in no row).
    levels_df : pandas.DataFrame
        Per-level table; its ``(segment, level)`` rows give each ROI's label
        (CSA, FF or fat %, Goutallier grade).
    landmarks_df : pandas.DataFrame or None
        Level points (:attr:`CaseMeasurement.landmarks`); its source text names
        the level point in the titles.  The overview draws the measured
        levels' planes only.
    method : CompositionMethod
        Gives the grey window (PDFF: 0-100 % in storage units; CT: W 400 /
        L 40 HU; otherwise the automatic percentile window) and the title.
    subject : str
        File-name prefix and title text.
    crop_margin_mm : float or None
        Margin (mm) kept around the ROIs of a level picture; ``None`` shows
        the whole plane.

    Returns
    -------
    list of pathlib.Path
        ``<subject>_<level>_disc_plane.png`` per measured level (``/`` in the
        level replaced by ``-``), cranial to caudal, then
        ``<subject>_sagittal_disc_planes.png``.

    Raises
    ------
    InputError
        matplotlib is not installed, ``qc_dir`` is a file or cannot be
        created, ``codes`` does not have one entry per kept plane pixel, or the
        pictures cannot be drawn from the arguments (see
        :mod:`~ParaspinalFatLib.report.qc_pictures`).
    """
    qc_dir = check_output_folder(qc_dir, "qc_dir")
    from .qc_pictures import RoiOverlay, render_level_slice

    samples = planes.samples
    codes = np.asarray(codes)
    if codes.shape != np.shape(samples.roi):
        raise InputError(f"codes has {codes.size} entries but the disc-parallel planes have "
                         f"{np.size(samples.roi)} kept pixels: give the codes of these planes' samples")
    make_folder(qc_dir, "qc_dir")
    sources = _landmark_sources(landmarks_df)
    tilts: Dict[str, float] = {}
    for row, tilt in zip(planes.rows, np.asarray(planes.row_tilts_deg, dtype=float).reshape(-1)):
        tilts.setdefault(row.level, float(tilt))
        sources.setdefault(row.level, row.level_source)
    half = int(planes.n_slices) // 2
    table = levels_df.set_index(["segment", "level"])
    written: List[Path] = []
    for level in planes.levels:
        members = [row for row in planes.rows if row.level == level]
        if not members:
            continue
        first = members[0]
        index = int(first.window[0]) + half
        plane = planes.planes[index]
        image2d = resample_plane(array, geometry, plane)
        on_plane = np.asarray(samples.slice_index) == index
        overlays = []
        for row in members:
            name = rois[row.roi].segment.name
            sel = on_plane & (np.asarray(samples.roi) == row.roi)
            r, c = np.asarray(samples.pixel_row)[sel], np.asarray(samples.pixel_col)[sel]
            mask = np.zeros(plane.shape, bool)
            fat = np.zeros(plane.shape, bool)
            undef = np.zeros(plane.shape, bool)
            mask[r, c] = True
            fat[r, c] = codes[sel] == FAT
            undef[r, c] = (codes[sel] == UNDEFINED) | (codes[sel] == EXCLUDED)
            try:
                text = label_text(table.loc[(name, level)])
            except KeyError:
                text = name
            overlays.append((name, mask, fat, undef, text))
        labels = plane_edge_labels(plane)
        spacing = (plane.pixel_mm, plane.pixel_mm)
        # radiological view needs rows running A-P and columns R-L: transpose when the plane's
        # columns run anterior-posterior, then flip as needed
        if labels[0] in ("A", "P"):
            labels = (labels[2], labels[3], labels[0], labels[1])
            image2d = image2d.T
            overlays = [(nm, m.T, f.T, u.T, t) for nm, m, f, u, t in overlays]
        tilt = tilts[level]
        axis_source = planes.axes[level].source if level in planes.axes else "unknown"
        point_source = sources[level].replace("_", " ")
        stack = f"; central plane of {planes.n_slices}" if planes.n_slices > 1 else ""
        title = (f"{subject}  {level}  disc-parallel plane, tilt {tilt:.1f}° from the image plane  {method.kind}\n"
                 f"normal from {axis_source}; level point from {point_source}; "
                 f"nearest image slice {first.slice_index}{stack}")
        out = qc_dir / f"{subject}_{level.replace('/', '-')}_disc_plane.png"
        written.append(render_level_slice(
            out, image2d, spacing, [RoiOverlay(nm, m, f, u, t) for nm, m, f, u, t in overlays], title,
            default_window(method), edge_labels=labels, crop_margin_mm=crop_margin_mm,
            # radiological view: patient right on the viewer's left, anterior at the top
            flip_lr=labels[0] == "L", flip_ud=labels[2] == "P",
        ))
    written.append(_sagittal(qc_dir, array, geometry, axis, planes, landmarks_df, sources, tilts, method, subject))
    return written


def _landmark_sources(landmarks_df) -> Dict[str, str]:
    """Level -> source text of the level point, from the landmark table."""
    if landmarks_df is None or len(landmarks_df) == 0 or "level" not in landmarks_df or "source" not in landmarks_df:
        return {}
    return {str(lv): str(src) for lv, src in zip(landmarks_df["level"], landmarks_df["source"])}


def _sagittal(qc_dir: Path, array, geometry: Geometry, axis: int, planes, landmarks_df, sources, tilts, method,
              subject: str) -> Path:
    """The image-plane overview's sagittal reformat with every plane as the line cutting it."""
    from .qc_pictures import render_sagittal_overview

    # the left-right axis: of the two in-plane ITK axes, the one closest to LPS x
    in_plane = [a for a in (0, 1, 2) if a != axis]
    d = geometry.direction_matrix
    lr = max(in_plane, key=lambda a: abs(d[0, a]))
    ap = [a for a in in_plane if a != lr][0]
    k, j, i = planes.samples.nearest_kji
    pos = (np.asarray(i), np.asarray(j), np.asarray(k))  # ITK axis -> index array
    centre = int(round(float(np.median(pos[lr])))) if pos[lr].size else geometry.size[lr] // 2
    section = np.take(array, centre, axis=2 - lr)  # remaining numpy axes: (axis, ap) in numpy order
    if (2 - axis) > (2 - ap):  # make rows run along the slice axis
        section = section.T
    superior_up = float(d[2, axis]) > 0  # index increases towards superior: flip to put cranial at the top
    image_normal = geometry.plane_normal(axis)
    half = int(planes.n_slices) // 2
    lines = []
    for number, level in enumerate(planes.levels):
        plane = planes.planes[number * int(planes.n_slices) + half]
        ends = section_line(geometry, plane.point_lps, plane.normal_lps, lr, centre, axis, ap, section.shape)
        if ends is None:
            continue
        tilt = tilts.get(level, plane.tilt_deg(image_normal))
        src = sources.get(level, "")
        text = f"tilt {tilt:.1f}°" + (f", {src.replace('_', ' ')}" if src else "")
        lines.append((level, ends, text))
    spacing = (float(geometry.spacing[axis]), float(geometry.spacing[ap]))
    labels = edge_labels(geometry, axis, ap)
    return render_sagittal_overview(
        qc_dir / f"{subject}_sagittal_disc_planes.png", section, spacing, lines,
        title=f"{subject}  disc-parallel measurement planes (reformat through the muscles' midline)",
        window=default_window(method), flip_ud=superior_up,
        edge_labels=labels, flip_lr=labels[0] == "P",  # anterior on the viewer's left
    )

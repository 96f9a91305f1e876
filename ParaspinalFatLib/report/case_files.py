"""Files written beside the tables: the fat/lean class labelmap and QC pictures."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union
import numpy as np
import pandas as pd
import SimpleITK as sitk
from ..composition.base import EXCLUDED, FAT, LEAN, UNDEFINED, CompositionMethod
from ..geometry import Geometry
from ..measurement.planning import Roi, Row
from ..segmentation import Segment, Segmentation
from ..measurement.voxels import RoiVoxels


__all__ = ['write_csv_atomic', 'CLASS_LABELS', 'write_class_labelmap', 'edge_labels', 'write_qc_pictures']

#: label values of the class labelmap
CLASS_LABELS = {"lean": LEAN + 1, "undefined": UNDEFINED + 1, "fat": FAT + 1}
_CLASS_COLORS = {"lean": (0.85, 0.33, 0.31), "undefined": (0.45, 0.6, 0.95), "fat": (1.0, 0.85, 0.0)}
def write_class_labelmap(path, vox: RoiVoxels, codes: np.ndarray, geometry: Geometry, image: sitk.Image) -> Path:
    """Write the classes of the measured voxels as a labelmap on the image grid.

    Parameters
    ----------
    path : str or path
        ``*.seg.nrrd``: a Slicer segmentation with segments ``lean`` (1),
        ``undefined`` (2) and ``fat`` (3); any other extension SimpleITK writes
        (``.nrrd``, ``.nii.gz``...): a plain labelmap with those values.
    vox : RoiVoxels
        Gathered voxels (their ``(k, j, i)`` positions are written).
    codes : numpy.ndarray of int8
        Class code of every gathered voxel (negative = not classified:
        excluded, or in no measured row); such voxels stay 0 (background).
    geometry : Geometry
        The image grid (the labelmap is aligned to it voxel for voxel).
    image : SimpleITK.Image
        The image; its header is copied into a plain labelmap.

    Returns
    -------
    pathlib.Path
        ``path``, written atomically (temporary file in the same folder, then
        renamed); its folder is created when missing.
    """
    path = Path(path)
    lab = np.zeros(geometry.shape, dtype=np.uint8)
    k, j, i = vox.positions()
    sel = codes >= LEAN
    lab[k[sel], j[sel], i[sel]] = (codes[sel] + 1).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.lower().endswith(".seg.nrrd"):
        from ..io.slicer_seg import write_seg_nrrd

        segments = [Segment(name, 0, value, name, _CLASS_COLORS[name]) for name, value in CLASS_LABELS.items()]
        tmp = path.with_name(f".{path.name}.tmp.seg.nrrd")
        write_seg_nrrd(Segmentation(lab, geometry, segments, source=str(path)), tmp)
    else:
        out = sitk.GetImageFromArray(lab)
        out.CopyInformation(image)
        tmp = path.with_name(f".tmp-{path.name}")
        sitk.WriteImage(out, str(tmp), useCompression=True)
    os.replace(tmp, path)
    return path


def write_csv_atomic(df: "pd.DataFrame", path: Union[str, Path]) -> Path:
    """Write ``df`` to ``path`` via a temporary file + rename (never a half-written CSV).

    Parameters
    ----------
    df : pandas.DataFrame
        The table (written without its index).
    path : str or Path
        Destination; its folder is created when missing.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            df.to_csv(fh, index=False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _plane(array: np.ndarray, axis: int, index: int) -> np.ndarray:
    """2-D plane of constant ITK ``axis`` index, rows/cols in increasing array-axis order."""
    return np.take(array, index, axis=2 - axis)


def _plane_spacing(geometry: Geometry, axis: int) -> Tuple[float, float]:
    """(row_mm, col_mm) of :func:`_plane`: the two remaining ITK axes, numpy order."""
    rest = [a for a in (2, 1, 0) if a != axis]  # numpy order of the remaining ITK axes
    return float(geometry.spacing[rest[0]]), float(geometry.spacing[rest[1]])


_LPS_LETTERS = (("R", "L"), ("A", "P"), ("I", "S"))  # (negative, positive) end of LPS x, y, z
def _end_label(vector) -> str:
    """Patient side towards which a direction vector points most (LPS letters)."""
    v = np.asarray(vector, dtype=float)
    a = int(np.argmax(np.abs(v)))
    return _LPS_LETTERS[a][1 if v[a] > 0 else 0]


def edge_labels(geometry: Geometry, row_axis: int, col_axis: int) -> Tuple[str, str, str, str]:
    """(first column, last column, first row, last row) patient sides of a plane
    whose rows run along ITK ``row_axis`` and columns along ``col_axis``.

    Parameters
    ----------
    geometry : Geometry
        Grid of the image the plane is cut from.
    row_axis : int
        ITK axis (0 = i, 1 = j, 2 = k) along which the plane's row index
        increases (down the picture).
    col_axis : int
        ITK axis along which the column index increases (left to right).

    Returns
    -------
    tuple of 4 str
        Patient-side letters (``"R"``/``"L"``, ``"A"``/``"P"``, ``"I"``/``"S"``,
        LPS convention) of the first-column (left) edge, last-column (right)
        edge, first-row (top) edge and last-row (bottom) edge: the end of the
        LPS axis nearest to the ``-``/``+`` direction of ``col_axis`` and
        ``row_axis``.  E.g. an LPS-aligned axial plane with
        ``row_axis=1, col_axis=0`` gives ``("R", "L", "A", "P")``.
    """
    d = geometry.direction_matrix
    return (_end_label(-d[:, col_axis]), _end_label(d[:, col_axis]),
            _end_label(-d[:, row_axis]), _end_label(d[:, row_axis]))


def _default_window(method: CompositionMethod, image2d: np.ndarray) -> Optional[Tuple[float, float]]:
    if method.kind == "pdff":
        return 0.0, 100.0 / method.to_output
    if method.kind == "ct":
        return -160.0, 240.0  # soft-tissue window (W 400, L 40)
    return None


def _label_text(row: pd.Series) -> str:
    side = {"left": " L", "right": " R"}.get(row["side"], "")
    parts = [f"{row['muscle']}{side}", f"CSA {row['csa_mm2']:.0f} mm²"]
    if np.isfinite(row.get("fat_fraction_pct", np.nan)):
        parts.append(f"FF {row['fat_fraction_pct']:.1f} %")
    elif np.isfinite(row.get("fat_area_ratio", np.nan)):
        parts.append(f"fat {100 * row['fat_area_ratio']:.1f} %")
    else:
        parts.append(f"mean {row['mean']:.3g} {row['unit']}")
    if pd.notna(row.get("goutallier", np.nan)):
        parts.append(f"Goutallier {int(row['goutallier'])}")
    return ", ".join(parts[:2]) + "\n" + ", ".join(parts[2:])


def write_qc_pictures(
    qc_dir,
    array: np.ndarray,
    geometry: Geometry,
    axis: int,
    rows: List[Row],
    rois: List[Roi],
    vox: RoiVoxels,
    codes: np.ndarray,
    levels: pd.DataFrame,
    landmarks: pd.DataFrame,
    method: CompositionMethod,
    subject: str,
    crop_margin_mm: Optional[float] = 30.0,
) -> List[Path]:
    """One PNG per measured level slice (ROIs outlined, fat/undefined voxels
    filled, numbers and grades annotated; cropped to the ROIs + ``crop_margin_mm``,
    None for the whole slice) and a sagittal overview with the level lines;
    returns the written paths.

    Level slices are shown in the radiological view (patient right on the
    viewer's left, anterior at the top), transposing and flipping the plane
    as the grid's direction requires.

    Parameters
    ----------
    qc_dir : str or os.PathLike
        Output folder; created when missing.
    array : numpy.ndarray
        Image voxels ``[k, j, i]`` in their storage units (as measured).
    geometry : Geometry
        Image grid (LPS).
    axis : int
        ITK slice axis (0 = i, 1 = j, 2 = k) of the measurement slices.
    rows : list of Row
        Planned rows; one picture per distinct (level, slice index).
    rois : list of Roi
        Measured ROIs; ``Row.roi`` indexes this list.
    vox : RoiVoxels
        Gathered ROI voxels (their positions give the masks).
    codes : numpy.ndarray of int8
        Class code of every gathered voxel (from
        :func:`~ParaspinalFatLib.measurement.case_tables.level_table`):
        ``FAT`` voxels are filled as fat; ``UNDEFINED`` and ``EXCLUDED``
        (NaN, below the Dixon noise floor) as undefined.
    levels : pandas.DataFrame
        Per-level table; its ``(segment, level)`` rows give each ROI's label
        (CSA, FF or fat %, Goutallier grade).
    landmarks : pandas.DataFrame
        Level points (:attr:`CaseMeasurement.landmarks`: ``level``,
        ``source``, ``slice_index``, ``slice_offset_mm``, ``inside_image``);
        those inside the image are drawn as lines on the sagittal overview.
    method : CompositionMethod
        Gives the grey window (PDFF: 0-100 % in storage units; CT: W 400 /
        L 40 HU; otherwise the automatic percentile window) and the title.
    subject : str
        File-name prefix and title text.
    crop_margin_mm : float or None
        Margin (mm) kept around the ROIs of a level picture; ``None`` shows
        the whole slice.

    Returns
    -------
    list of pathlib.Path
        ``<subject>_<level>_slice<s>.png`` per level slice (``/`` in the level
        replaced by ``-``), in increasing slice index, then
        ``<subject>_sagittal.png`` (a reformat through the median left-right
        position of the ROI voxels).

    Raises
    ------
    InputError
        matplotlib is not installed, or the pictures cannot be drawn from the
        arguments (see :mod:`~ParaspinalFatLib.report.qc_pictures`).
    """
    from .qc_pictures import RoiOverlay, render_level_slice

    qc_dir = Path(qc_dir)
    qc_dir.mkdir(parents=True, exist_ok=True)
    k, j, i = vox.positions()
    pos = (i, j, k)  # ITK axis -> index array
    in_plane = [a for a in (2, 1, 0) if a != axis]  # numpy order of the plane's (row, col) ITK axes
    spacing = _plane_spacing(geometry, axis)
    labels = edge_labels(geometry, in_plane[0], in_plane[1])
    # radiological view needs rows running A-P and columns R-L: transpose when the array's
    # columns run anterior-posterior (e.g. a PIR volume), then flip as needed
    transpose = labels[0] in ("A", "P")
    if transpose:
        spacing = (spacing[1], spacing[0])
        labels = (labels[2], labels[3], labels[0], labels[1])
    table = levels.set_index(["segment", "level"])
    written: List[Path] = []
    by_slice: Dict[Tuple[str, int], List[Row]] = {}
    for row in rows:
        by_slice.setdefault((row.level, row.slice_index), []).append(row)
    for (level, s), members in sorted(by_slice.items(), key=lambda kv: kv[0][1]):
        image2d = _plane(array, axis, s)
        overlays = []
        for row in members:
            roi = rois[row.roi]
            sel = (vox.roi == row.roi) & (pos[axis] == s)
            mask = np.zeros(image2d.shape, bool)
            fat = np.zeros(image2d.shape, bool)
            undef = np.zeros(image2d.shape, bool)
            r, c = pos[in_plane[0]][sel], pos[in_plane[1]][sel]
            mask[r, c] = True
            fat[r, c] = codes[sel] == FAT
            undef[r, c] = (codes[sel] == UNDEFINED) | (codes[sel] == EXCLUDED)
            info = table.loc[(roi.segment.name, level)]
            if transpose:
                mask, fat, undef = mask.T, fat.T, undef.T
            overlays.append(RoiOverlay(roi.segment.name, mask, fat, undef, _label_text(info)))
        if transpose:
            image2d = image2d.T
        first = members[0]
        title = (f"{subject}  {level}  slice {s}  (offset {first.slice_offset_mm:+.1f} mm, "
                 f"{first.level_source.replace('_', ' ')})  {method.kind}")
        name = f"{subject}_{level.replace('/', '-')}_slice{s}.png"
        written.append(render_level_slice(
            qc_dir / name, image2d, spacing, overlays, title, _default_window(method, image2d),
            edge_labels=labels, crop_margin_mm=crop_margin_mm,
            # radiological view: patient right on the viewer's left, anterior at the top
            flip_lr=labels[0] == "L", flip_ud=labels[2] == "P",
        ))
    written.append(_sagittal(qc_dir, array, geometry, axis, vox, pos, landmarks, method, subject))
    return written


def _sagittal(qc_dir: Path, array, geometry: Geometry, axis: int, vox: RoiVoxels, pos, landmarks, method, subject):
    from .qc_pictures import render_sagittal_overview

    # the left-right axis: of the two in-plane ITK axes, the one closest to LPS x
    in_plane = [a for a in (0, 1, 2) if a != axis]
    d = geometry.direction_matrix
    lr = max(in_plane, key=lambda a: abs(d[0, a]))
    ap = [a for a in in_plane if a != lr][0]
    centre = int(round(float(np.median(pos[lr])))) if pos[lr].size else geometry.size[lr] // 2
    plane = np.take(array, centre, axis=2 - lr)  # remaining numpy axes: (axis, ap) in numpy order
    if (2 - axis) > (2 - ap):  # make rows run along the slice axis
        plane = plane.T
    superior_up = float(d[2, axis]) > 0  # index increases towards superior: flip to put cranial at the top
    lines = []
    for _, mark in landmarks.iterrows():
        if not mark["inside_image"]:
            continue
        step = geometry.slice_thickness_mm(axis)
        lines.append((mark["level"], float(mark["slice_index"]) + float(mark["slice_offset_mm"]) / step,
                      str(mark["source"]).replace("_", " ")))
    spacing = (float(geometry.spacing[axis]), float(geometry.spacing[ap]))
    labels = edge_labels(geometry, axis, ap)
    return render_sagittal_overview(
        qc_dir / f"{subject}_sagittal.png", plane, spacing, lines,
        title=f"{subject}  levels (reformat through the muscles' midline)",
        window=_default_window(method, plane), flip_ud=superior_up,
        edge_labels=labels, flip_lr=labels[0] == "P",  # anterior on the viewer's left
    )

"""DICOM Segmentation (SEG) reader, via highdicom (optional dependency).

Install with ``pip install paraspinalfat[dicomseg]``.

What is read
------------
* ``SegmentationType`` BINARY, FRACTIONAL and LABELMAP.  A FRACTIONAL voxel
  belongs to a segment when ``value / MaximumFractionalValue >=
  fractional_threshold`` (default 0.5, the usual "half-voxel" rule; the
  fraction itself is not kept).
* Segment names from ``SegmentLabel``; label value = ``SegmentNumber``;
  colour from ``RecommendedDisplayCIELabValue`` (converted to sRGB, display only).
* Overlapping segments are packed greedily into layers: segments are taken in
  ``SegmentNumber`` order and each goes into the first layer where it overlaps
  no voxel of the segments already there.
* Geometry from the SEG frames themselves (``PlanePositionSequence``,
  ``PlaneOrientationSequence``, ``PixelMeasuresSequence``), never from the
  referenced images: frames need not be matched to source instances (so
  files such as dcmqi's, for which highdicom needs
  ``ignore_spatial_locations=True``, read fine).  The slice spacing is derived
  from the frame positions along the plane normal, not from ``SliceThickness``
  or ``SpacingBetweenSlices`` (only used for a single-slice SEG).  Frames that
  skip empty slices are placed by position; the grid spans the slices
  present.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union
import numpy as np
from ..errors import InputError
from ..geometry import Geometry
from ..segmentation import Segment, Segmentation
from ..dependencies import require


__all__ = ['DICOM_SEG_SOP_CLASSES', 'dicom_object_class', 'is_dicom_seg', 'read_dicom_seg', 'cielab_to_rgb']

#: SOP classes of DICOM segmentation objects.
DICOM_SEG_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.66.4": "Segmentation Storage",
    "1.2.840.10008.5.1.4.1.1.66.7": "Label Map Segmentation Storage",
}


def dicom_object_class(path: Union[str, os.PathLike], *, force: bool = False,
                       simpleitk: bool = True) -> Optional[Tuple[str, str]]:
    """SOP Class UID and Modality of a DICOM file, read from its header only.

    pydicom is used when installed; otherwise (or when it cannot tell) SimpleITK's
    tags ``0008|0016`` and ``0008|0060``, so that routing never depends on pydicom.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    force : bool, optional
        Let pydicom read a file without the ``DICM`` preamble.
    simpleitk : bool, optional
        Fall back to SimpleITK when pydicom is missing or finds nothing.

    Returns
    -------
    (str, str) or None
        ``(sop_class_uid, modality)``; None when the file is not DICOM (or neither
        tag is present).
    """
    info = _pydicom_sop_class(Path(path), force)
    if info is None and simpleitk:
        info = _sitk_sop_class(Path(path))
    return info


def is_dicom_seg(path: Union[str, os.PathLike]) -> bool:
    """True when ``path`` is a DICOM Segmentation object (SEG SOP class or modality SEG).

    Parameters
    ----------
    path : str or os.PathLike
        A file (a folder or unreadable file gives False).

    Returns
    -------
    bool
        Whether the file has the ``DICM`` preamble and a segmentation SOP class or modality.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    if len(head) < 132 or head[128:132] != b"DICM":
        return False
    info = dicom_object_class(path)
    return info is not None and (info[0] in DICOM_SEG_SOP_CLASSES or info[1].upper() == "SEG")


def _pydicom_sop_class(p: Path, force: bool = False) -> Optional[Tuple[str, str]]:
    """(SOPClassUID, Modality) via pydicom, or None when pydicom is missing / not DICOM."""
    try:
        import pydicom
    except ImportError:
        return None
    try:
        ds = pydicom.dcmread(str(p), stop_before_pixels=True, force=force,
                             specific_tags=["SOPClassUID", "Modality"])
    except Exception:
        return None
    sop = str(getattr(ds, "SOPClassUID", "") or "")
    modality = str(getattr(ds, "Modality", "") or "")
    if not sop and not modality:
        return None
    return sop, modality


def _sitk_sop_class(p: Path) -> Optional[Tuple[str, str]]:
    """(SOPClassUID, Modality) from SimpleITK's header tags, or None."""
    import SimpleITK as sitk

    try:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(p))
        reader.ReadImageInformation()
    except Exception:
        return None
    keys = reader.GetMetaDataKeys()
    sop = reader.GetMetaData("0008|0016").strip() if "0008|0016" in keys else ""
    modality = reader.GetMetaData("0008|0060").strip() if "0008|0060" in keys else ""
    sop = sop.rstrip("\x00 ")
    if not sop and not modality:
        return None
    return sop, modality


def _import_highdicom(path):
    return require("highdicom", needed_for=f"reading the DICOM SEG {path}")


def read_dicom_seg(path, fractional_threshold: float = 0.5) -> Segmentation:
    """Read a DICOM Segmentation object.

    Parameters
    ----------
    path : str or os.PathLike
        The SEG file (one multi-frame instance).
    fractional_threshold : float
        For FRACTIONAL segmentations: minimum fraction (0..1] for a voxel to
        belong to the segment.  Default 0.5.

    Returns
    -------
    Segmentation
        One or more layers (uint8, or uint16 for > 255 segments) on the grid
        spanned by the SEG frames, in LPS; ``label_value`` = ``SegmentNumber``.

    Raises
    ------
    InputError
        highdicom missing (with the install command), file missing/unreadable,
        not a SEG, frames without position/orientation, or frames not on one
        regular grid.
    """
    p = Path(os.fspath(path))
    if not p.is_file():
        raise InputError(f"{p}: DICOM SEG file not found; check the path.")
    if not (0.0 < float(fractional_threshold) <= 1.0):
        raise InputError(f"{p}: fractional_threshold must be in (0, 1], got {fractional_threshold}.")
    hd = _import_highdicom(p)
    try:
        seg = hd.seg.segread(str(p))
    except Exception as exc:
        sop = ""
        try:
            import pydicom

            sop = str(pydicom.dcmread(str(p), stop_before_pixels=True,
                                      specific_tags=["SOPClassUID"]).SOPClassUID)
        except Exception:
            pass
        if sop == "1.2.840.10008.5.1.4.1.1.66.7":
            raise InputError(
                f"{p}: is a DICOM Label Map Segmentation, which highdicom "
                f"{getattr(hd, '__version__', '?')} cannot read; upgrade it with "
                "`pip install -U highdicom`."
            ) from None
        raise InputError(
            f"{p}: cannot read the file as a DICOM Segmentation ({str(exc).strip()[:200]}). "
            "Check that it is a complete DICOM SEG object."
        ) from None
    source = str(p)
    seg_type = str(getattr(seg, "SegmentationType", "")).upper()
    if seg_type not in ("BINARY", "FRACTIONAL", "LABELMAP"):
        raise InputError(f"{source}: unsupported SegmentationType {seg_type!r}.")
    n_frames = int(getattr(seg, "NumberOfFrames", 1) or 1)
    rows, cols = int(seg.Rows), int(seg.Columns)

    try:
        frames = np.asarray(seg.pixel_array)
    except Exception as exc:
        raise InputError(
            f"{source}: cannot decode the SEG pixel data ({str(exc).strip()[:200]}); a "
            "compressed SEG may need extra pydicom decoders (e.g. pylibjpeg)."
        ) from None
    frames = frames.reshape((n_frames, rows, cols))

    shared = None
    if "SharedFunctionalGroupsSequence" in seg and len(seg.SharedFunctionalGroupsSequence):
        shared = seg.SharedFunctionalGroupsSequence[0]
    per_frame = list(getattr(seg, "PerFrameFunctionalGroupsSequence", []) or [])
    if len(per_frame) != n_frames:
        raise InputError(
            f"{source}: the SEG has {n_frames} frame(s) but {len(per_frame)} per-frame "
            "functional group item(s) (e.g. a TILED_FULL whole-slide SEG); only SEGs with "
            "per-frame plane positions are supported."
        )

    def group(item, seq_name):
        if seq_name in item and len(getattr(item, seq_name)):
            return getattr(item, seq_name)[0]
        if shared is not None and seq_name in shared and len(getattr(shared, seq_name)):
            return getattr(shared, seq_name)[0]
        return None

    positions = np.zeros((n_frames, 3))
    orientation = None
    pixel_spacing = None
    segment_of_frame = np.zeros(n_frames, dtype=int)
    for f, item in enumerate(per_frame):
        pos = group(item, "PlanePositionSequence")
        ori = group(item, "PlaneOrientationSequence")
        meas = group(item, "PixelMeasuresSequence")
        if pos is None or "ImagePositionPatient" not in pos:
            raise InputError(f"{source}: frame {f + 1} has no ImagePositionPatient; the SEG has no "
                             "patient geometry and cannot be placed on the image.")
        if ori is None or "ImageOrientationPatient" not in ori:
            raise InputError(f"{source}: frame {f + 1} has no ImageOrientationPatient.")
        if meas is None or "PixelSpacing" not in meas:
            raise InputError(f"{source}: frame {f + 1} has no PixelSpacing.")
        positions[f] = [float(v) for v in pos.ImagePositionPatient]
        o = np.array([float(v) for v in ori.ImageOrientationPatient])
        s = np.array([float(v) for v in meas.PixelSpacing])
        if orientation is None:
            orientation, pixel_spacing = o, s
        elif not (np.allclose(o, orientation, atol=1e-4) and np.allclose(s, pixel_spacing,
                                                                         rtol=1e-5, atol=1e-6)):
            raise InputError(
                f"{source}: frames have different orientations or pixel spacings; only SEGs on "
                "one regular grid are supported."
            )
        if seg_type != "LABELMAP":
            ident = group(item, "SegmentIdentificationSequence")
            if ident is None:
                raise InputError(f"{source}: frame {f + 1} does not say which segment it "
                                 "belongs to (SegmentIdentificationSequence).")
            segment_of_frame[f] = int(ident.ReferencedSegmentNumber)

    geometry, slice_index = _frames_grid(positions, orientation, pixel_spacing, shared, rows,
                                         cols, source)

    # segment descriptions
    descriptions = {}
    for item in seg.SegmentSequence:
        number = int(item.SegmentNumber)
        if number <= 0:
            continue  # LABELMAP SEGs may describe the background as segment 0
        label = str(getattr(item, "SegmentLabel", "") or "").strip() or f"Segment {number}"
        color = None
        if "RecommendedDisplayCIELabValue" in item:
            try:
                color = cielab_to_rgb([int(v) for v in item.RecommendedDisplayCIELabValue])
            except Exception:  # pragma: no cover - cosmetic only
                color = None
        descriptions[number] = (label, color)
    unknown = sorted(set(int(n) for n in np.unique(segment_of_frame)) - set(descriptions))
    if seg_type != "LABELMAP" and unknown:
        raise InputError(f"{source}: frames refer to segment number(s) {unknown} that are not "
                         "described in SegmentSequence.")
    numbers = sorted(descriptions)
    dtype = np.uint8 if (max(numbers) if numbers else 0) <= 255 else np.uint16
    shape = geometry.shape  # (k, j, i)
    notes: List[str] = []

    if seg_type == "LABELMAP":
        layer = np.zeros(shape, dtype=dtype)
        for f in range(n_frames):
            layer[slice_index[f]] = frames[f].astype(dtype, copy=False)
        layers = layer[np.newaxis]
        layer_of = {n: 0 for n in numbers}
        stray = sorted(set(int(v) for v in np.unique(layer)) - set(numbers) - {0})
        if stray:
            notes.append(f"pixel values {stray[:10]} match no SegmentNumber (ignored)")
    else:
        if seg_type == "FRACTIONAL":
            max_value = float(getattr(seg, "MaximumFractionalValue", 255) or 255)
            # smallest stored value v with v / max_value >= threshold (exact, no float per voxel)
            min_stored = int(np.ceil(float(fractional_threshold) * max_value - 1e-9))
            min_stored = max(min_stored, 1)

            def frame_mask(f):
                return frames[f] >= min_stored
        else:
            def frame_mask(f):
                return frames[f] != 0
        layers_list: List[np.ndarray] = []
        layer_of: Dict[int, int] = {}
        for number in numbers:
            fr = np.nonzero(segment_of_frame == number)[0]
            placed = None
            for li, layer in enumerate(layers_list):
                if not any(np.any(layer[slice_index[f]][frame_mask(f)] != 0) for f in fr):
                    placed = li
                    break
            if placed is None:
                layers_list.append(np.zeros(shape, dtype=dtype))
                placed = len(layers_list) - 1
            target = layers_list[placed]
            for f in fr:
                plane = target[slice_index[f]]
                plane[frame_mask(f)] = number
            layer_of[number] = placed
        if not layers_list:
            layers_list.append(np.zeros(shape, dtype=dtype))
        layers = np.stack(layers_list)

    segments = []
    used = {}
    for number in numbers:
        label, color = descriptions[number]
        name = label
        if name.lower() in used:
            name = f"{label} [{number}]"
            notes.append(f"segment label '{label}' is used by segments {used[label.lower()]} and "
                         f"{number}; the latter is named '{name}'")
        used.setdefault(label.lower(), number)
        segments.append(Segment(name=name, layer=layer_of[number], label_value=number,
                                segment_id=str(number), color=color))

    metadata = {
        "format": "dicom-seg",
        "segmentation_type": seg_type,
        "series_instance_uid": str(getattr(seg, "SeriesInstanceUID", "")),
        "frame_of_reference_uid": str(getattr(seg, "FrameOfReferenceUID", "")),
    }
    if seg_type == "FRACTIONAL":
        metadata["fractional_threshold"] = repr(float(fractional_threshold))
    ref_series = []
    for item in getattr(seg, "ReferencedSeriesSequence", []) or []:
        uid = str(getattr(item, "SeriesInstanceUID", ""))
        if uid:
            ref_series.append(uid)
    if ref_series:
        metadata["referenced_series_instance_uids"] = ",".join(ref_series)
    result = Segmentation(layers=layers, geometry=geometry, segments=segments, source=source,
                          metadata=metadata)
    if notes:
        import warnings

        from ..errors import SegmentationWarning
        from .file_notes import caller_stacklevel

        for n in notes:
            warnings.warn(f"{source}: {n}", SegmentationWarning, stacklevel=caller_stacklevel())
        result.metadata["warnings"] = "\n".join(notes)
    return result


def _frames_grid(positions: np.ndarray, orientation: np.ndarray, pixel_spacing: np.ndarray,
                 shared, rows: int, cols: int, source: str) -> Tuple[Geometry, List[int]]:
    """Regular grid through all frame positions; slice index of every frame."""
    row_dir = orientation[:3] / np.linalg.norm(orientation[:3])   # along a row: +i (columns)
    col_dir = orientation[3:] / np.linalg.norm(orientation[3:])   # down a column: +j (rows)
    if abs(float(row_dir @ col_dir)) > 1e-3:
        raise InputError(f"{source}: ImageOrientationPatient axes are not perpendicular.")
    normal = np.cross(row_dir, col_dir)
    normal /= np.linalg.norm(normal)
    heights = positions @ normal
    order = np.argsort(heights, kind="stable")
    tol = 1e-2  # mm: positions closer than this are the same slice
    unique_h: List[float] = []
    for h in heights[order]:
        if not unique_h or h - unique_h[-1] > tol:
            unique_h.append(float(h))
    h0 = unique_h[0]
    if len(unique_h) == 1:
        step = None
        if shared is not None and "PixelMeasuresSequence" in shared:
            pm = shared.PixelMeasuresSequence[0]
            for attr in ("SpacingBetweenSlices", "SliceThickness"):
                v = getattr(pm, attr, None)
                if v not in (None, "") and float(v) > 0:
                    step = float(v)
                    break
        step = step or 1.0
        n_slices = 1
    else:
        gaps = np.diff(unique_h)
        base = float(gaps.min())
        step = None
        for divisor in range(1, 9):
            cand = base / divisor
            ratios = (np.asarray(unique_h) - h0) / cand
            if np.all(np.abs(ratios - np.round(ratios)) < 0.02):
                step = cand
                break
        if step is None:
            raise InputError(
                f"{source}: the SEG frames are not on a regular slice grid (distances along the "
                f"normal: {np.round(gaps, 4).tolist()[:10]} mm); this layout is not supported."
            )
        n_slices = int(round((unique_h[-1] - h0) / step)) + 1
    slice_index = [int(round((h - h0) / step)) for h in heights]
    # in-plane alignment: every frame's origin projected onto the first slice must coincide
    origin_idx = int(order[0])
    origin = positions[origin_idx] - (heights[origin_idx] - h0) * normal
    tol_inplane = max(1e-3, 0.01 * float(min(pixel_spacing)))
    for f in range(len(positions)):
        projected = positions[f] - (heights[f] - h0) * normal
        if np.linalg.norm(projected - origin) > tol_inplane:
            raise InputError(
                f"{source}: frame {f + 1} is shifted in-plane relative to the others "
                f"({np.round(projected - origin, 3).tolist()} mm); SEGs whose frames are not on "
                "one grid are not supported."
            )
    direction = np.column_stack([row_dir, col_dir, normal])
    geometry = Geometry(
        size=(int(cols), int(rows), int(n_slices)),
        # PixelSpacing = [row spacing (between rows, along j), column spacing (along i)]
        spacing=(float(pixel_spacing[1]), float(pixel_spacing[0]), float(step)),
        origin=tuple(float(v) for v in origin),
        direction=tuple(float(v) for v in direction.ravel()),
    )
    return geometry, slice_index


def cielab_to_rgb(lab_dicom) -> Tuple[float, float, float]:
    """Convert a DICOM CIELab triplet (0..65535 scaled) to sRGB in 0..1.

    Parameters
    ----------
    lab_dicom : sequence of 3 int
        ``RecommendedDisplayCIELabValue``: L* scaled from 0..100, a* and b*
        from -128..127, each to 0..65535 (DICOM PS3.3 C.10.7.1.1).

    Returns
    -------
    tuple of float
        sRGB (D65 white), clipped to 0..1.
    """
    L = lab_dicom[0] * 100.0 / 65535.0
    a = lab_dicom[1] * 255.0 / 65535.0 - 128.0
    b = lab_dicom[2] * 255.0 / 65535.0 - 128.0
    fy = (L + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = fy - b / 200.0

    def finv(t):
        return t ** 3 if t > 6.0 / 29.0 else 3 * (6.0 / 29.0) ** 2 * (t - 4.0 / 29.0)

    white = (0.950456, 1.0, 1.088754)
    x, y, z = white[0] * finv(fx), white[1] * finv(fy), white[2] * finv(fz)
    r = 3.2404542 * x - 1.5371385 * y - 0.4985314 * z
    g = -0.9692660 * x + 1.8760108 * y + 0.0415560 * z
    bb = 0.0556434 * x - 0.2040259 * y + 1.0572252 * z

    def gamma(c):
        c = min(max(c, 0.0), 1.0)
        return 12.92 * c if c <= 0.0031308 else 1.055 * c ** (1 / 2.4) - 0.055

    return (gamma(r), gamma(g), gamma(bb))

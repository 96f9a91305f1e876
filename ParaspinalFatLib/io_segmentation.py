"""Read segmentations from any supported file into a :class:`Segmentation`.

Supported inputs (see :func:`read_segmentation`):

* 3D Slicer ``.seg.nrrd`` (3-D, and 4-D "layers" for overlapping segments),
  read with the library's own NRRD reader (:mod:`ParaspinalFatLib.nrrd`);
* labelmaps (NIfTI, NRRD, MetaImage, any format SimpleITK reads) plus segment
  names from a Slicer colour table (``.ctbl``/``.txt``), a JSON file, a CSV
  file, a python mapping, a TotalSegmentator NIfTI header extension, or a
  built-in convention (``"totalsegmentator"``, ``"totalspineseg"``);
* DICOM Segmentation objects (BINARY, FRACTIONAL, LABELMAP), through
  :func:`ParaspinalFatLib.dicom_seg.read_dicom_seg` (needs the optional
  ``highdicom`` dependency).

Conventions
-----------
* Geometry is always LPS (RAS files are converted), arrays are numpy ``(k, j, i)``.
* A segment is identified by ``(layer, label_value)``.
* For labelmaps, every label value present in the image becomes a segment.
  Name-table entries whose value has no voxel are kept as segments *without
  voxels* when the table was supplied by the user (python mapping, JSON, CSV,
  colour table) so that later steps can say "segment X is empty" instead of
  "no segment X"; for tool-wide tables (TotalSegmentator header extension,
  ``convention=``), which list every class the tool knows, only values present
  in the image become segments.  ``keep_empty=True/False`` overrides this.
  Absent table names are listed in ``metadata["absent_table_names"]``.
* Warnings (unnamed label values, ignored arguments...) are issued as
  :class:`SegmentationWarning` and also collected in ``metadata["warnings"]``.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import struct
import warnings
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .errors import InputError
from .geometry import Geometry
from .nrrd import NrrdImage, nrrd_geometry, read_nrrd
from .segmentation import Segment, Segmentation

__all__ = [
    "read_segmentation",
    "resample_to_grid",
    "write_seg_nrrd",
    "read_label_table",
    "convention_table",
    "nifti_label_table",
    "SegmentationWarning",
    "CONVENTIONS",
]

Color = Optional[Tuple[float, float, float]]
LabelTable = Dict[int, Tuple[str, Color]]

DICOM_SEG_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.66.4": "Segmentation Storage",
    "1.2.840.10008.5.1.4.1.1.66.7": "Label Map Segmentation Storage",
}

_DATA_DIR = Path(__file__).resolve().parent / "data"

#: Built-in label conventions: name -> (CSV file in ``data/``, description).
CONVENTIONS = {
    "totalsegmentator": (
        "totalsegmentator_labels.csv",
        "TotalSegmentator v2 'total' task (map_to_binary.class_map['total'])",
    ),
    "totalspineseg": (
        "totalspineseg_labels.csv",
        "TotalSpineSeg final output labels (README 'List of Classes' / tss_map.json)",
    ),
}


class SegmentationWarning(UserWarning):
    """Something about a segmentation file that the user should know."""


def _caller_stacklevel() -> int:
    """warnings stacklevel pointing at the first frame outside this package."""
    import sys

    package_dir = str(Path(__file__).resolve().parent)
    frame = sys._getframe(1)
    level = 1
    while frame is not None and str(Path(frame.f_code.co_filename).resolve().parent) == package_dir:
        frame = frame.f_back
        level += 1
    return level


class _Notes:
    """Collects warnings for one file: emitted and stored in metadata."""

    def __init__(self, source: str):
        self.source = source
        self.messages: List[str] = []

    def warn(self, message: str) -> None:
        self.messages.append(message)
        warnings.warn(f"{self.source}: {message}", SegmentationWarning,
                      stacklevel=_caller_stacklevel())

    def store(self, metadata: Dict[str, str]) -> None:
        if self.messages:
            old = metadata.get("warnings")
            metadata["warnings"] = "\n".join(([old] if old else []) + self.messages)


# ============================================================================ public API
def read_segmentation(
    path,
    names=None,
    convention: Optional[str] = None,
    *,
    keep_empty: Optional[bool] = None,
    fractional_threshold: float = 0.5,
) -> Segmentation:
    """Read a segmentation file (or SimpleITK labelmap image).

    Parameters
    ----------
    path : str, os.PathLike or SimpleITK.Image
        A Slicer ``.seg.nrrd``; a labelmap (``.nii``, ``.nii.gz``, ``.nrrd``,
        ``.mha``/``.mhd`` or anything SimpleITK reads); a DICOM SEG file; or an
        in-memory SimpleITK image (a labelmap, for which ``names`` or
        ``convention`` must be given, or an image read from a ``.seg.nrrd``
        that still carries the ``SegmentN_*`` metadata).
    names : mapping, sequence, str or os.PathLike, optional
        Segment names for a labelmap: a python mapping ``{value: name}`` or
        ``{name: value}``; a sequence of names (value = position + 1); or a
        file: Slicer colour table (``.ctbl``/``.txt``: ``value name r g b a``),
        JSON (``{"1": "multifidus_left"}`` or ``{"multifidus_left": 1}``) or
        CSV/TSV (columns found by header name, e.g. ``value,name`` or Slicer's
        ``LabelValue,Name,...``).  Ignored (with a warning) for ``.seg.nrrd``
        and DICOM SEG files, which name their segments themselves.
    convention : {"totalsegmentator", "totalspineseg"}, optional
        Built-in value -> name table for the output of these tools.  Mutually
        exclusive with ``names``.
    keep_empty : bool, optional
        Whether name-table entries without voxels become (empty) segments.
        Default: yes for user-supplied tables, no for tool-wide tables (see
        the module docstring).
    fractional_threshold : float
        DICOM SEG FRACTIONAL only: a voxel belongs to a segment when its
        fraction is ``>= fractional_threshold`` (default 0.5).

    Returns
    -------
    Segmentation
        Layers (uint8/uint16 where possible), LPS geometry, segments, and
        ``metadata`` with at least ``"format"``.

    Raises
    ------
    InputError
        Missing/unreadable/corrupt file, 2-D or 5-D data, non-integer voxel
        values, inconsistent header fields, unsupported encoding, a DICOM file
        that is not a segmentation, or conflicting arguments.  Messages name
        the file and say what to do.
    """
    if names is not None and convention is not None:
        raise InputError(
            "read_segmentation: give either 'names' or 'convention', not both "
            f"(names={_describe_names(names)}, convention={convention!r})."
        )
    if convention is not None:
        convention = _normalise_convention(convention)

    sitk = _sitk()
    if isinstance(path, sitk.Image):
        return _from_sitk_image(path, "<SimpleITK image>", names, convention, keep_empty,
                                require_names=True)

    p = Path(os.fspath(path))
    if not p.exists():
        raise InputError(f"{p}: segmentation file not found; check the path and file name.")
    if p.is_dir():
        raise InputError(
            f"{p}: is a folder; give the segmentation file itself (for a DICOM SEG, "
            "the .dcm file of the SEG series)."
        )
    kind = _sniff(p)
    if kind == "dicom":
        return _read_dicom(p, names, convention, fractional_threshold)
    if kind == "nrrd":
        image = read_nrrd(p)
        if _has_segment_fields(image.key_values):
            notes = _Notes(str(p))
            if names is not None or convention is not None:
                notes.warn(
                    "a Slicer .seg.nrrd names its own segments; the 'names'/'convention' "
                    "argument is ignored."
                )
            return _slicer_seg_from_nrrd(image, notes)
        geometry, list_axis = nrrd_geometry(image)
        array = image.array
        if list_axis is not None:
            if array.shape[3 - list_axis] != 1:
                raise InputError(
                    f"{p}: 4-D NRRD ({image.fields.get('sizes')}) without Slicer segment "
                    "metadata: its non-spatial axis cannot be interpreted as segments. Save it "
                    "from Slicer as a .seg.nrrd, or as a 3-D labelmap."
                )
            array = np.take(array, 0, axis=3 - list_axis)
        return _labelmap_segmentation(array, geometry, str(p), names, convention, keep_empty,
                                      embedded=None, fmt="labelmap-nrrd")
    # anything else: SimpleITK
    embedded = None
    if kind == "nifti":
        try:
            embedded = nifti_label_table(p)
        except Exception as exc:  # unreadable extension: SimpleITK has the final word
            warnings.warn(f"{p}: NIfTI header extensions could not be parsed ({exc}); "
                          "label names stored in the file are not used.", SegmentationWarning,
                          stacklevel=2)
            embedded = None
    if kind == "nifti":
        _check_nifti_complete(p)  # SimpleITK silently zero-fills truncated NIfTI files
    try:
        image = _sitk_read_isolated(p) if kind == "nifti" else sitk.ReadImage(str(p))
    except Exception as exc:
        raise InputError(
            f"{p}: cannot read the file as an image ({_first_line(exc)}). Check that it is a "
            "complete NIfTI/NRRD/MetaImage/DICOM SEG file (it may be truncated or damaged)."
        ) from None
    return _from_sitk_image(image, str(p), names, convention, keep_empty,
                            require_names=False, embedded=embedded,
                            fmt="labelmap-nifti" if kind == "nifti" else "labelmap")


def resample_to_grid(segmentation: Segmentation, geometry: Geometry) -> Segmentation:
    """Resample every layer onto another voxel grid (nearest neighbour).

    Each target voxel takes the label of the source voxel whose centre is
    nearest in physical (LPS) space (SimpleITK ``ResampleImageFilter`` with
    ``sitkNearestNeighbor``); target voxels outside the source grid get 0.
    The integer voxel type is kept.

    Parameters
    ----------
    segmentation : Segmentation
        Segmentation on its own (possibly cropped) grid.
    geometry : Geometry
        Target grid (usually the image's).

    Returns
    -------
    Segmentation
        New segmentation on ``geometry`` with the same segments; a plain copy
        when the grids are already identical (within 1e-3 mm / 1e-5).

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
        return segmentation.with_layers(layers.copy(), geometry)
    sitk = _sitk()
    dtype = _compact_dtype(layers)
    out = np.zeros((layers.shape[0],) + tuple(geometry.shape), dtype=dtype)
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
    if had_voxels and not out.any():
        raise InputError(
            f"{segmentation.source}: segmentation does not overlap the image: the segmentation "
            f"grid covers {_extent_text(src)} but the image covers {_extent_text(geometry)} "
            "(LPS mm). Check that both files belong to the same scan (same frame of reference); "
            "a lost origin or an RAS/LPS mix-up in one of them moves it away."
        )
    if had_voxels:
        _warn_outside(segmentation, geometry)
    new = segmentation.with_layers(out, geometry)
    new.metadata = dict(segmentation.metadata)
    new.metadata["resampled_from"] = src.describe()
    return new


def write_seg_nrrd(segmentation: Segmentation, path, encoding: str = "gzip") -> Path:
    """Write a :class:`Segmentation` as a 3D Slicer ``.seg.nrrd`` file.

    One layer gives a 3-D file, several layers a 4-D file with the layer axis
    first (``kinds: list domain domain domain``), as Slicer writes them, with
    ``SegmentN_ID/Name/Color/LabelValue/Layer/Extent`` fields.  The file loads
    in Slicer and round-trips through :func:`read_segmentation`.

    Parameters
    ----------
    segmentation : Segmentation
        Layers, grid (LPS) and segments to write.
    path : str or os.PathLike
        Output file (``.seg.nrrd``).
    encoding : {"gzip", "raw"}
        Voxel data encoding.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    from .nrrd import write_nrrd

    layers = segmentation.layers
    dtype = _compact_dtype(layers)
    kv: Dict[str, str] = {}
    for n, s in enumerate(segmentation.segments):
        mask = layers[s.layer] == s.label_value
        nz = np.nonzero(mask)
        if nz[0].size:
            extent = (nz[2].min(), nz[2].max(), nz[1].min(), nz[1].max(), nz[0].min(), nz[0].max())
        else:
            extent = (0, -1, 0, -1, 0, -1)
        color = s.color if s.color is not None else (0.5, 0.5, 0.5)
        kv[f"Segment{n}_Color"] = " ".join(f"{float(c):.6g}" for c in color)
        kv[f"Segment{n}_ColorAutoGenerated"] = "0"
        kv[f"Segment{n}_Extent"] = " ".join(str(int(e)) for e in extent)
        kv[f"Segment{n}_ID"] = s.segment_id or f"Segment_{n + 1}"
        kv[f"Segment{n}_LabelValue"] = str(int(s.label_value))
        kv[f"Segment{n}_Layer"] = str(int(s.layer))
        kv[f"Segment{n}_Name"] = s.name
        kv[f"Segment{n}_NameAutoGenerated"] = "0"
        kv[f"Segment{n}_Tags"] = "Segmentation.Status:inprogress|"
    kv["Segmentation_ContainedRepresentationNames"] = "Binary labelmap|"
    kv["Segmentation_MasterRepresentation"] = "Binary labelmap"
    kv["Segmentation_ReferenceImageExtentOffset"] = "0 0 0"
    data = layers[0] if layers.shape[0] == 1 else layers
    return write_nrrd(path, np.asarray(data, dtype=dtype), segmentation.geometry,
                      key_values=kv, encoding=encoding)


def read_label_table(source, *, what: str = "names") -> LabelTable:
    """Read a value -> (name, colour) table.

    Parameters
    ----------
    source : mapping, sequence, str or os.PathLike
        ``{value: name}``, ``{name: value}``, a sequence of names (value =
        position + 1), or a ``.ctbl``/``.txt`` colour table, ``.json`` or
        ``.csv``/``.tsv`` file.
    what : str
        Description used in error messages.

    Returns
    -------
    dict
        ``{value: (name, rgb or None)}``; value 0 (background) is dropped.

    Raises
    ------
    InputError
        Missing/unreadable file or a table that cannot be interpreted.
    """
    if isinstance(source, Mapping):
        return _table_from_mapping(dict(source), "names mapping")
    if isinstance(source, (list, tuple)):
        return {i + 1: (str(n).strip(), None) for i, n in enumerate(source) if str(n).strip()}
    if isinstance(source, (str, os.PathLike)):
        p = Path(os.fspath(source))
        if not p.is_file():
            raise InputError(f"{p}: label-name file ({what}) not found; check the path.")
        suffix = p.suffix.lower()
        text = _read_text(p)
        if suffix in (".ctbl", ".txt"):
            return _parse_ctbl(text, str(p))
        if suffix == ".json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputError(f"{p}: not valid JSON ({exc}); fix the file.") from None
            return _table_from_json(data, str(p))
        if suffix in (".csv", ".tsv"):
            return _parse_csv(text, str(p))
        raise InputError(
            f"{p}: unknown label-name file type '{suffix}'; use a Slicer colour table "
            "(.ctbl/.txt), a .json or a .csv file."
        )
    raise InputError(
        f"label names must be a mapping, a list of names or a file path, not {type(source).__name__}"
    )


def convention_table(convention: str) -> LabelTable:
    """Built-in value -> name table of a segmentation tool.

    Parameters
    ----------
    convention : {"totalsegmentator", "totalspineseg"}
        Tool name (case-insensitive).

    Returns
    -------
    dict
        ``{value: (name, None)}``.
    """
    key = _normalise_convention(convention)
    filename = CONVENTIONS[key][0]
    path = _DATA_DIR / filename
    if not path.is_file():  # pragma: no cover - packaging error
        raise InputError(f"built-in label table {path} is missing; reinstall paraspinalfat.")
    return _parse_csv(_read_text(path), str(path))


def nifti_label_table(path) -> Optional[LabelTable]:
    """Label names stored as XML in the header extensions of a NIfTI file.

    TotalSegmentator (``add_label_map_to_nifti``) appends a Caret/GIfTI style
    ``<LabelTable>`` with ``<Label Key="1" Red=.. Green=.. Blue=..>name</Label>``
    elements as a NIfTI-1 header extension.  SimpleITK does not expose header
    extensions, so the header is parsed here from the (gzipped) file bytes.
    NIfTI-1 and NIfTI-2, single-file (``.nii``/``.nii.gz``) and ``.hdr``/``.img``
    pairs, either byte order, any extension code.

    Parameters
    ----------
    path : str or os.PathLike
        NIfTI file.

    Returns
    -------
    dict or None
        ``{value: (name, rgb)}``, or ``None`` when the file has no label table.

    Raises
    ------
    InputError
        When the file is not a NIfTI file or its header is truncated.
    """
    p = Path(os.fspath(path))
    with _open_maybe_gzip(p) as f:
        head = f.read(544)
        endian, version, vox_offset, _, single_file = _nifti_header_facts(head, p)
        ext_start = 348 if version == 1 else 540
        f.seek(ext_start)
        flag = f.read(4)
        if len(flag) < 4 or flag[0] == 0:
            return None
        limit = vox_offset if single_file else None
        pos = ext_start + 4
        table: LabelTable = {}
        while limit is None or pos + 8 <= limit:
            hdr = f.read(8)
            if len(hdr) < 8:
                break
            esize, ecode = struct.unpack(endian + "ii", hdr)
            if esize < 8 or (limit is not None and pos + esize > limit):
                warnings.warn(f"{p}: malformed NIfTI header extension (size {esize}); "
                              "the remaining extensions are ignored.", SegmentationWarning)
                break
            payload = f.read(esize - 8)
            pos += esize
            if b"LabelTable" in payload or b"<Label " in payload:
                table.update(_parse_label_xml(payload, str(p)))
    return table or None


# ============================================================================ helpers: io
def _nifti_header_facts(head: bytes, p: Path) -> Tuple[str, int, int, int, bool]:
    """(endian, version, vox_offset, data bytes, single_file) from the first 544 bytes."""
    if len(head) < 348:
        raise InputError(f"{p}: NIfTI header is truncated (only {len(head)} bytes).")
    for e in ("<", ">"):
        size = struct.unpack(e + "i", head[:4])[0]
        if size == 348:
            dims = struct.unpack(e + "8h", head[40:56])
            bitpix = struct.unpack(e + "h", head[72:74])[0]
            vox_offset = int(struct.unpack(e + "f", head[108:112])[0])
            single = head[344:347] == b"n+1"
            version = 1
            break
        if size == 540:
            if len(head) < 544:
                raise InputError(f"{p}: NIfTI-2 header is truncated.")
            bitpix = struct.unpack(e + "h", head[14:16])[0]
            dims = struct.unpack(e + "8q", head[16:80])
            vox_offset = int(struct.unpack(e + "q", head[168:176])[0])
            single = head[4:7] == b"n+2"
            version = 2
            break
    else:
        raise InputError(f"{p}: not a NIfTI file (header size field is not 348 or 540).")
    ndim = int(dims[0])
    if not 1 <= ndim <= 7:
        raise InputError(f"{p}: NIfTI header declares {ndim} dimensions; the header is damaged.")
    count = 1
    for d in dims[1:1 + ndim]:
        count *= max(int(d), 1)
    return e, version, vox_offset, count * max(int(bitpix), 8) // 8, single


_NIFTI_SUFFIXES = (".nii.gz", ".nii", ".hdr.gz", ".hdr", ".img.gz", ".img")


def _nifti_stem(name: str) -> Tuple[str, str]:
    lower = name.lower()
    for suffix in _NIFTI_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)], name[-len(suffix):]
    return name, ""


def _sitk_read_isolated(p: Path):
    """SimpleITK read of a NIfTI file that cannot pick up a sibling file.

    The NIfTI library behind SimpleITK resolves file names itself: asked for
    ``x.nii.gz`` while ``x.nii`` also exists, it silently reads ``x.nii``.  When
    such a sibling exists the file is read through a link (or copy) in a
    private temporary folder.
    """
    import shutil
    import tempfile

    sitk = _sitk()
    stem, suffix = _nifti_stem(p.name)
    siblings = [p.with_name(stem + s) for s in _NIFTI_SUFFIXES if s.lower() != suffix.lower()]
    if suffix.lower() in (".hdr", ".hdr.gz", ".img", ".img.gz") or not any(
            q.exists() for q in siblings):
        return sitk.ReadImage(str(p))
    with tempfile.TemporaryDirectory(prefix="paraspinalfat_") as tmp:
        alias = Path(tmp) / ("segmentation" + suffix)
        try:
            os.symlink(p.resolve(), alias)
        except (OSError, NotImplementedError):
            shutil.copyfile(p, alias)
        image = sitk.ReadImage(str(alias))
        image.GetSize()  # force the read to complete before the folder goes
    return image


def _check_nifti_complete(p: Path) -> None:
    """Raise InputError when a single-file NIfTI holds fewer voxel bytes than declared,
    or its gzip stream is truncated/corrupt (SimpleITK would read it silently)."""
    with open(p, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    try:
        with _open_maybe_gzip(p) as f:
            head = f.read(544)
            _, _, vox_offset, nbytes, single = _nifti_header_facts(head, p)
            if not single:
                return  # .hdr/.img pair: SimpleITK checks the .img itself
            if gz:
                total = len(head)
                while True:
                    chunk = f.read(1 << 24)
                    if not chunk:
                        break
                    total += len(chunk)
            else:
                total = p.stat().st_size
    except (EOFError, OSError, zlib.error) as exc:
        raise InputError(
            f"{p}: the gzip-compressed file is truncated or damaged ({exc}); re-export or copy "
            "it again."
        ) from None
    if total < vox_offset + nbytes:
        raise InputError(
            f"{p}: the NIfTI file holds {max(total - vox_offset, 0)} bytes of voxel data but its "
            f"header declares {nbytes}; the file is truncated. Re-export or copy it again."
        )


def _sitk():
    import SimpleITK as sitk  # runtime dependency

    return sitk


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # SimpleITK messages: the useful part is usually the last line
    return (lines[-1] if lines else type(exc).__name__)[:300]


def _read_text(p: Path) -> str:
    data = p.read_bytes()
    for enc in ("utf-8-sig", "latin-1"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1", errors="replace")  # pragma: no cover


def _open_maybe_gzip(p: Path):
    with open(p, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(p, "rb")
    return open(p, "rb")


def _sniff(p: Path) -> str:
    """'nrrd', 'dicom', 'nifti' or 'other' from the file's first bytes."""
    try:
        with open(p, "rb") as f:
            head = f.read(560)
    except OSError as exc:
        raise InputError(f"{p}: cannot open the file ({exc}); check its permissions.") from None
    if len(head) == 0:
        raise InputError(f"{p}: the file is empty.")
    if head.startswith(b"NRRD000"):
        return "nrrd"
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(p, "rb") as g:
                inner = g.read(8)
        except OSError:
            inner = b""
        if inner[:7] == b"NRRD000":  # pragma: no cover - unusual: gzipped NRRD file
            return "other"
        if _looks_like_nifti_header(inner, None):
            return "nifti"
        return "other"
    if _looks_like_nifti_header(head[:8], head):
        return "nifti"
    if p.suffix.lower() in (".dcm", ".dicom") or p.suffix == "":
        if _pydicom_sop_class(p, force=True) is not None:
            return "dicom"
    return "other"


def _looks_like_nifti_header(first8: bytes, head: Optional[bytes]) -> bool:
    if len(first8) < 4:
        return False
    for e in ("<", ">"):
        size = struct.unpack(e + "i", first8[:4])[0]
        if size in (348, 540):
            if head is None or size == 540:
                return True
            return len(head) >= 348 and head[344:347] in (b"n+1", b"ni1")
    return False


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
    sitk = _sitk()
    try:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(p))
        reader.ReadImageInformation()
    except Exception:
        return None
    keys = reader.GetMetaDataKeys()
    sop = reader.GetMetaData("0008|0016").strip() if "0008|0016" in keys else ""
    modality = reader.GetMetaData("0008|0060").strip() if "0008|0060" in keys else ""
    return sop.rstrip("\x00 "), modality


def _read_dicom(p: Path, names, convention, fractional_threshold: float) -> Segmentation:
    info = _pydicom_sop_class(p)
    if info is None:
        info = _sitk_sop_class(p)
    is_seg = True  # when undeterminable, let the DICOM SEG reader decide (it explains)
    if info is not None:
        sop, modality = info
        is_seg = sop in DICOM_SEG_SOP_CLASSES or modality.upper() == "SEG"
        if not is_seg:
            raise InputError(
                f"{p}: is a DICOM {modality or 'object'} (SOP Class {sop or 'unknown'}), not a "
                "segmentation. Give the DICOM SEG file, a Slicer .seg.nrrd or a labelmap; "
                "the image itself is given separately."
            )
    from .dicom_seg import read_dicom_seg

    seg = read_dicom_seg(p, fractional_threshold=fractional_threshold)
    if names is not None or convention is not None:
        notes = _Notes(str(p))
        notes.warn("a DICOM SEG names its own segments (SegmentLabel); the 'names'/"
                   "'convention' argument is ignored.")
        notes.store(seg.metadata)
    return seg


# ============================================================================ Slicer .seg.nrrd
_SEGMENT_KEY = re.compile(r"^Segment(\d+)_(\w+)$")


def _has_segment_fields(key_values: Mapping[str, str]) -> bool:
    return any(_SEGMENT_KEY.match(k) for k in key_values)


def _slicer_seg_from_nrrd(image: NrrdImage, notes: _Notes) -> Segmentation:
    geometry, list_axis = nrrd_geometry(image)
    array = image.array
    if list_axis is None:
        layers = array[np.newaxis]
    else:
        layers = np.moveaxis(array, 3 - list_axis, 0)
    return _slicer_seg(layers, geometry, dict(image.key_values), image.path, notes,
                       fmt="slicer-seg-nrrd")


def _int_list(text: str, n: int, what: str, source: str) -> List[int]:
    try:
        values = [int(round(float(v))) for v in text.split()]
    except ValueError:
        raise InputError(f"{source}: cannot parse {what} {text!r} as integers; the header "
                         "is damaged.") from None
    if len(values) != n:
        raise InputError(f"{source}: {what} {text!r} should have {n} numbers.")
    return values


def _slicer_seg(layers: np.ndarray, geometry: Geometry, kv: Dict[str, str], source: str,
                notes: _Notes, fmt: str) -> Segmentation:
    """Build a Segmentation from Slicer layer data + SegmentN_* key/values.

    Follows vtkMRMLSegmentationStorageNode: a missing ``SegmentN_Layer`` means
    layer N when the file has one frame per segment (the pre-layer format),
    otherwise layer 0; a missing ``SegmentN_LabelValue`` means 1 for a segment
    alone in its layer (vtkSegment's default), else N + 1.  Voxels outside the
    union of a layer's ``SegmentN_Extent`` boxes belong to no segment.
    """
    n_layers = layers.shape[0]
    per_segment: Dict[int, Dict[str, str]] = {}
    for key, value in kv.items():
        m = _SEGMENT_KEY.match(key)
        if m:
            per_segment.setdefault(int(m.group(1)), {})[m.group(2)] = value
    indices = sorted(per_segment)
    if indices != list(range(len(indices))):
        notes.warn(f"segment numbers in the header are not consecutive ({indices}).")

    # legacy (pre-2019) files: common extent; file voxel 0 sits at extent lower bound
    legacy_lo = np.zeros(3, dtype=int)
    if "Segmentation_Extent" in kv:
        ext = _int_list(kv["Segmentation_Extent"], 6, "Segmentation_Extent", source)
        legacy_lo = np.array(ext[0::2], dtype=int)
        if np.any(legacy_lo != 0):
            m = geometry.ijk_to_lps
            origin = m[:3, 3] + m[:3, :3] @ legacy_lo
            geometry = Geometry(geometry.size, geometry.spacing, tuple(float(v) for v in origin),
                                geometry.direction)

    has_layer = [("Layer" in per_segment[i]) for i in indices]
    if any(has_layer) and not all(has_layer):
        notes.warn("only some segments have SegmentN_Layer; the others are put in layer 0.")
    one_frame_each = (not any(has_layer)) and n_layers == len(indices) and n_layers > 1

    raw: List[dict] = []
    for pos, i in enumerate(indices):
        f = per_segment[i]
        name = f.get("Name", "").strip() or f.get("ID", "").strip() or f"Segment_{i}"
        if "Layer" in f:
            layer = _int_list(f["Layer"], 1, f"Segment{i}_Layer", source)[0]
        elif one_frame_each:
            layer = pos
        else:
            layer = 0
        if not 0 <= layer < n_layers:
            raise InputError(
                f"{source}: Segment{i}_Layer = {layer} (segment '{name}') but the file has "
                f"{n_layers} layer(s); the header does not match the voxel data. Re-save the "
                "segmentation from Slicer."
            )
        color = None
        if "Color" in f:
            try:
                c = [float(v) for v in f["Color"].split()]
                if len(c) >= 3:
                    color = (c[0], c[1], c[2])
            except ValueError:
                notes.warn(f"Segment{i}_Color {f['Color']!r} is not three numbers; ignored.")
        extent = None
        if "Extent" in f:
            e = _int_list(f["Extent"], 6, f"Segment{i}_Extent", source)
            extent = [e[0] - legacy_lo[0], e[1] - legacy_lo[0], e[2] - legacy_lo[1],
                      e[3] - legacy_lo[1], e[4] - legacy_lo[2], e[5] - legacy_lo[2]]
        raw.append(dict(index=i, name=name, layer=layer, color=color, extent=extent,
                        segment_id=f.get("ID", "").strip() or f"Segment_{i}",
                        label=f.get("LabelValue")))

    by_layer: Dict[int, List[dict]] = {}
    for r in raw:
        by_layer.setdefault(r["layer"], []).append(r)
    for r in raw:
        if r["label"] is not None:
            r["label"] = _int_list(r["label"], 1, f"Segment{r['index']}_LabelValue", source)[0]
            if r["label"] <= 0:
                raise InputError(
                    f"{source}: Segment{r['index']}_LabelValue = {r['label']} for segment "
                    f"'{r['name']}'; label values must be positive. Re-save from Slicer."
                )
        elif len(by_layer[r["layer"]]) == 1:
            r["label"] = 1
        else:
            r["label"] = r["index"] + 1
            notes.warn(f"Segment{r['index']}_LabelValue is missing for '{r['name']}'; "
                       f"assuming label value {r['label']} (segment number + 1).")

    # voxel data: compact unsigned dtype, copy we own
    layers = _to_label_layers(layers, source, notes)

    # honour per-layer extents (voxels outside the union of the layer's extents are unused)
    shape_ijk = geometry.size
    for layer, members in by_layer.items():
        if any(r["extent"] is None for r in members):
            continue
        lo = [None, None, None]
        hi = [None, None, None]
        for r in members:
            e = r["extent"]
            if e[0] > e[1] or e[2] > e[3] or e[4] > e[5]:
                continue  # empty segment
            for a in range(3):
                lo[a] = e[2 * a] if lo[a] is None else min(lo[a], e[2 * a])
                hi[a] = e[2 * a + 1] if hi[a] is None else max(hi[a], e[2 * a + 1])
        keep = np.zeros(layers.shape[1:], dtype=bool)
        if lo[0] is not None:
            sl = tuple(
                slice(max(lo[a], 0), min(hi[a], shape_ijk[a] - 1) + 1) for a in (2, 1, 0)
            )
            keep[sl] = True
        if not keep.all():
            dropped = int(np.count_nonzero(layers[layer][~keep]))
            if dropped:
                notes.warn(f"{dropped} non-zero voxel(s) of layer {layer} lie outside the "
                           "segments' extents and belong to no segment (as in Slicer).")
                layers[layer][~keep] = 0

    segments: List[Segment] = []
    seen: Dict[Tuple[int, int], str] = {}
    for r in raw:
        key = (r["layer"], r["label"])
        if key in seen:
            raise InputError(
                f"{source}: segments '{seen[key]}' and '{r['name']}' both use layer {key[0]} "
                f"label value {key[1]}; the header is inconsistent. Re-save from Slicer."
            )
        seen[key] = r["name"]
        segments.append(Segment(name=r["name"], layer=r["layer"], label_value=r["label"],
                                segment_id=r["segment_id"], color=r["color"]))
    _check_unique_names(segments, source)

    # values no segment claims
    for li in range(layers.shape[0]):
        claimed = {s.label_value for s in segments if s.layer == li}
        present = _present_values(layers[li])
        stray = sorted(set(present) - claimed)
        if stray:
            notes.warn(f"layer {li} contains label value(s) {stray[:10]} that no segment uses "
                       "(ignored).")
    metadata = {"format": fmt}
    for key in ("Segmentation_MasterRepresentation", "Segmentation_ReferenceImageExtentOffset",
                "Segmentation_ContainedRepresentationNames"):
        if key in kv:
            metadata[key] = kv[key]
    seg = Segmentation(layers=layers, geometry=geometry, segments=segments, source=source,
                       metadata=metadata)
    notes.store(seg.metadata)
    return seg


# ============================================================================ labelmaps
def _from_sitk_image(image, source: str, names, convention, keep_empty, *, require_names: bool,
                     embedded: Optional[LabelTable] = None, fmt: str = "labelmap") -> Segmentation:
    sitk = _sitk()
    dim = image.GetDimension()
    ncomp = image.GetNumberOfComponentsPerPixel()
    keys = set(image.GetMetaDataKeys())
    kv = {k: image.GetMetaData(k) for k in keys if _SEGMENT_KEY.match(k) or k.startswith("Segmentation_")}
    if dim == 2:
        raise InputError(
            f"{source}: the segmentation is 2-D; a 2-D ROI must be stored as a 3-D volume with "
            "one slice so that its position in the patient is known (save it from Slicer as "
            ".seg.nrrd or on the image grid)."
        )
    if dim > 4 or (dim == 4 and image.GetSize()[3] != 1):
        raise InputError(
            f"{source}: the segmentation is {dim}-D (size {tuple(image.GetSize())}); only 3-D "
            "labelmaps are supported (a 4-D stack of masks is not). Save each mask as a "
            "label value in one 3-D labelmap, or use a Slicer .seg.nrrd."
        )
    if dim == 4:
        spacing = image.GetSpacing()[:3]
        origin = image.GetOrigin()[:3]
        d4 = np.asarray(image.GetDirection()).reshape(4, 4)
        geometry = Geometry(tuple(int(s) for s in image.GetSize()[:3]),
                            tuple(float(s) for s in spacing), tuple(float(o) for o in origin),
                            tuple(float(v) for v in d4[:3, :3].ravel()))
        array = sitk.GetArrayFromImage(image)[0]
    else:
        geometry = Geometry.from_sitk(image)
        array = sitk.GetArrayFromImage(image)
    if kv and _has_segment_fields(kv):
        notes = _Notes(source)
        if names is not None or convention is not None:
            notes.warn("the image carries Slicer segment metadata; 'names'/'convention' ignored.")
        layers = array[np.newaxis] if ncomp == 1 else np.moveaxis(array, -1, 0)
        return _slicer_seg(layers, geometry, kv, source, notes, fmt="slicer-seg-sitk")
    if ncomp != 1:
        raise InputError(
            f"{source}: the image has {ncomp} components per voxel; a labelmap must have one "
            "(integer label per voxel)."
        )
    if require_names and names is None and convention is None:
        raise InputError(
            f"{source}: an in-memory labelmap needs segment names: pass names=... (mapping, "
            "list or file) or convention='totalsegmentator'/'totalspineseg'."
        )
    return _labelmap_segmentation(array, geometry, source, names, convention, keep_empty,
                                  embedded=embedded, fmt=fmt)


def _labelmap_segmentation(array: np.ndarray, geometry: Geometry, source: str, names,
                           convention, keep_empty, *, embedded: Optional[LabelTable],
                           fmt: str) -> Segmentation:
    notes = _Notes(source)
    layer = _to_label_layers(array[np.newaxis], source, notes)
    counts = _present_values(layer[0])

    tool_table = False
    if names is not None:
        table = read_label_table(names, what="names")
        name_source = _describe_names(names)
        if embedded:
            notes.warn("the file carries its own label names (NIfTI header extension); the "
                       "'names' argument takes precedence.")
    elif convention is not None:
        table = convention_table(convention)
        name_source = f"convention '{convention}' ({CONVENTIONS[convention][1]})"
        tool_table = True
        if embedded:
            differ = [v for v in counts if v in embedded and v in table
                      and embedded[v][0] != table[v][0]]
            if differ:
                ex = ", ".join(f"{v}: file '{embedded[v][0]}' vs convention '{table[v][0]}'"
                               for v in differ[:5])
                notes.warn(f"the label names stored in the file disagree with convention "
                           f"'{convention}' for {len(differ)} present value(s) ({ex}); the "
                           "convention is used. Check that the convention matches the tool "
                           "version (TotalSegmentator v1 numbered classes differently).")
    elif embedded:
        table = embedded
        name_source = "NIfTI header extension (TotalSegmentator label table)"
        tool_table = True
    else:
        table = {}
        name_source = "none"
    if keep_empty is None:
        keep_empty = not tool_table

    present = sorted(v for v in counts if v > 0)
    if not table and len(present) > _MAX_UNNAMED_LABELS:
        raise InputError(
            f"{source}: has {len(present)} different voxel values; this looks like an image, "
            "not a labelmap. Give the segmentation file (or pass names=... if it really is a "
            "labelmap with that many labels)."
        )
    if not table:
        if present:
            notes.warn(f"no segment names were given (names=... or convention=...); segments are "
                       f"named by label value: {', '.join('label_%d' % v for v in present[:10])}"
                       f"{' ...' if len(present) > 10 else ''}.")
    else:
        unnamed = [v for v in present if v not in table]
        if unnamed:
            notes.warn(f"label value(s) {unnamed[:20]} have no name in {name_source}; they are "
                       "named 'label_<value>'.")
    values = set(present)
    absent = sorted(v for v in table if v not in counts)
    if keep_empty:
        values |= set(absent)
    max_value = int(layer.max()) if layer.size else 0
    segments: List[Segment] = []
    for v in sorted(values):
        name, color = table.get(v, (f"label_{v}", None))
        segments.append(Segment(name=name, layer=0, label_value=int(v), segment_id=str(v),
                                color=color))
    _check_unique_names(segments, source, hint="the name table maps several values to one name")
    if keep_empty and absent and max_value < max(absent):
        # dtype must be able to hold the largest (empty) label value for consistency
        needed = _dtype_for_max(max(absent))
        if np.dtype(needed).itemsize > layer.dtype.itemsize:
            layer = layer.astype(needed)
    metadata = {"format": fmt, "name_source": name_source}
    if absent:
        metadata["absent_table_names"] = json.dumps([table[v][0] for v in absent])
    seg = Segmentation(layers=layer, geometry=geometry, segments=segments, source=source,
                       metadata=metadata)
    notes.store(seg.metadata)
    return seg


#: More distinct values than this in a labelmap without a name table -> probably an image.
_MAX_UNNAMED_LABELS = 1000


def _dtype_for_max(vmax: int):
    if vmax <= np.iinfo(np.uint8).max:
        return np.uint8
    if vmax <= np.iinfo(np.uint16).max:
        return np.uint16
    if vmax <= np.iinfo(np.uint32).max:
        return np.uint32
    return np.int64


def _to_label_layers(layers: np.ndarray, source: str, notes: _Notes) -> np.ndarray:
    """Integer (L, k, j, i) array in the smallest unsigned type; negatives -> 0 (warned)."""
    a = layers
    if a.dtype == np.bool_:
        return a.astype(np.uint8)
    if not np.issubdtype(a.dtype, np.integer):
        if not np.issubdtype(a.dtype, np.floating):
            raise InputError(f"{source}: voxel type {a.dtype} cannot hold segmentation labels.")
        finite = np.isfinite(a)
        if not finite.all():
            raise InputError(
                f"{source}: the segmentation contains NaN/inf voxels; a segmentation must hold "
                "integer label values. Fix or re-export the labelmap."
            )
        frac = a != np.round(a)
        if frac.any():
            bad = a[frac]
            raise InputError(
                f"{source}: voxel type is {a.dtype} and {bad.size} voxel(s) hold non-integer "
                f"values (e.g. {float(bad.flat[0]):g}); a segmentation must hold integer labels. "
                "If this is a probability map, threshold it first; otherwise save the labelmap "
                "with an integer voxel type."
            )
        vmin, vmax = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        if vmax > np.iinfo(np.int64).max or vmin < np.iinfo(np.int64).min:
            raise InputError(f"{source}: label values out of range ({vmin:g}..{vmax:g}).")
        a = a.astype(np.int64)
    vmin = int(a.min()) if a.size else 0
    if vmin < 0:
        neg = int(np.count_nonzero(a < 0))
        notes.warn(f"{neg} voxel(s) have negative values (e.g. {vmin}); they are treated as "
                   "background.")
        a = np.where(a < 0, 0, a)
    vmax = int(a.max()) if a.size else 0
    target = np.dtype(_dtype_for_max(vmax))
    if a.dtype == target:
        out = np.ascontiguousarray(a)
        return out if out.flags.writeable else out.copy()
    return np.ascontiguousarray(a.astype(target))


def _present_values(layer: np.ndarray) -> Dict[int, int]:
    """{value: voxel count} of the non-zero values in an integer array."""
    flat = layer.ravel()
    if flat.size == 0:
        return {}
    if layer.dtype.itemsize <= 2 and np.issubdtype(layer.dtype, np.unsignedinteger):
        counts = np.bincount(flat)
        nz = np.nonzero(counts)[0]
        return {int(v): int(counts[v]) for v in nz if v != 0}
    values, counts = np.unique(flat, return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts) if v != 0}


def _compact_dtype(layers: np.ndarray):
    if layers.size == 0:
        return np.uint8
    vmin = int(layers.min())
    if vmin < 0:
        return layers.dtype
    return _dtype_for_max(int(layers.max()))


def _check_unique_names(segments: Sequence[Segment], source: str, hint: str = "") -> None:
    seen: Dict[str, Segment] = {}
    for s in segments:
        key = s.name.lower()
        if key in seen:
            other = seen[key]
            raise InputError(
                f"{source}: segment name '{s.name}' is used twice (layer {other.layer} value "
                f"{other.label_value} and layer {s.layer} value {s.label_value}); names must be "
                f"unique so that a muscle maps to exactly one segment"
                f"{' (' + hint + ')' if hint else ''}. Rename one of them."
            )
        seen[key] = s


# ============================================================================ name tables
def _normalise_convention(convention: str) -> str:
    key = str(convention).strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    aliases = {"totalsegmentator": "totalsegmentator", "totalseg": "totalsegmentator",
               "totalsegmentatorv2": "totalsegmentator", "totalspineseg": "totalspineseg"}
    if key not in aliases:
        raise InputError(
            f"unknown segmentation convention {convention!r}; known: {sorted(CONVENTIONS)}."
        )
    return aliases[key]


def _describe_names(names) -> str:
    if isinstance(names, (str, os.PathLike)):
        return str(names)
    if isinstance(names, Mapping):
        return f"mapping with {len(names)} entries"
    if isinstance(names, (list, tuple)):
        return f"list of {len(names)} names"
    return type(names).__name__


def _as_int(value) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return int(value) if float(value).is_integer() else None
    text = str(value).strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if re.fullmatch(r"[+-]?\d+\.0*", text):
        return int(float(text))
    return None


def _add_entry(table: LabelTable, value: int, name: str, color: Color, source: str) -> None:
    name = name.strip()
    if not name:
        return
    if value == 0:
        return  # background
    if value < 0:
        raise InputError(f"{source}: label value {value} ('{name}') is negative.")
    if value in table and table[value][0] != name:
        raise InputError(
            f"{source}: label value {value} is given two names ('{table[value][0]}' and "
            f"'{name}'); fix the table."
        )
    table[value] = (name, color)


def _table_from_mapping(mapping: dict, source: str) -> LabelTable:
    table: LabelTable = {}
    if not mapping:
        return table
    keys_int = [_as_int(k) for k in mapping]
    vals_int = [_as_int(v) if not isinstance(v, (dict, list, tuple)) else None
                for v in mapping.values()]
    if all(k is not None for k in keys_int):
        for k, v in zip(keys_int, mapping.values()):
            if isinstance(v, Mapping):
                name = str(v.get("name", v.get("label", "")))
                color = _color_from(v.get("color"))
            elif isinstance(v, (list, tuple)) and v:
                name, color = str(v[0]), _color_from(v[1] if len(v) > 1 else None)
            else:
                name, color = str(v), None
            _add_entry(table, k, name, color, source)
        return table
    if all(v is not None for v in vals_int):
        for k, v in zip(mapping.keys(), vals_int):
            _add_entry(table, v, str(k), None, source)
        return table
    raise InputError(
        f"{source}: cannot interpret the label names: expected {{value: name}} (e.g. "
        '{"1": "multifidus_left"}) or {name: value} (e.g. {"multifidus_left": 1}).'
    )


def _color_from(c) -> Color:
    if c is None:
        return None
    try:
        vals = [float(x) for x in c][:3]
    except (TypeError, ValueError):
        return None
    if len(vals) < 3:
        return None
    if max(vals) > 1.0:
        vals = [v / 255.0 for v in vals]
    return (vals[0], vals[1], vals[2])


def _table_from_json(data, source: str) -> LabelTable:
    if isinstance(data, Mapping):
        # tolerate one wrapping level such as {"labels": {...}}
        if len(data) == 1:
            (only,) = data.values()
            if isinstance(only, Mapping):
                try:
                    return _table_from_mapping(dict(only), source)
                except InputError:
                    pass
        return _table_from_mapping(dict(data), source)
    if isinstance(data, list) and all(isinstance(x, Mapping) for x in data):
        rows = [{str(k): v for k, v in x.items()} for x in data]
        header = list(rows[0].keys()) if rows else []
        return _table_from_rows(header, [[r.get(h, "") for h in header] for r in rows], source)
    raise InputError(
        f"{source}: JSON label names must be an object {{\"1\": \"multifidus_left\", ...}} or "
        '{"multifidus_left": 1, ...}.'
    )


def _parse_ctbl(text: str, source: str) -> LabelTable:
    table: LabelTable = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s:
            continue
        if s.startswith("#"):
            if s.lower().startswith("# color procedural file"):
                raise InputError(f"{source}: procedural colour tables have no label names; use a "
                                 "discrete colour table (value name r g b a).")
            continue
        tokens = s.split()
        value = _as_int(tokens[0])
        if value is None or len(tokens) < 2:
            raise InputError(
                f"{source}: line {lineno} {s[:60]!r} is not 'value name r g b a' (Slicer colour "
                "table); fix the line or use a JSON/CSV name file."
            )
        rest = tokens[1:]
        color = None
        for ncol in (4, 3):
            if len(rest) > ncol and all(_as_int(t) is not None or _is_float(t) for t in rest[-ncol:]):
                color = _color_from([float(t) for t in rest[-ncol:][:3]])
                rest = rest[:-ncol]
                break
        _add_entry(table, value, " ".join(rest), color, source)
    if not table:
        raise InputError(f"{source}: the colour table has no labels.")
    return table


def _is_float(t: str) -> bool:
    try:
        float(t)
        return True
    except ValueError:
        return False


_VALUE_COLUMNS = ["labelvalue", "value", "labelid", "labelnumber", "labelindex", "segmentnumber",
                  "id", "index", "key", "intensity", "number", "label"]
_NAME_COLUMNS = ["name", "labelname", "segmentname", "segmentlabel", "segment", "structure",
                 "structurename", "anatomy", "class", "classname", "label", "description"]


def _norm_header(h: str) -> str:
    return re.sub(r"[\s_\-.]", "", str(h).strip().lower())


def _parse_csv(text: str, source: str) -> LabelTable:
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise InputError(f"{source}: the CSV file is empty.")
    header_line = lines[0]
    delimiter = max([",", ";", "\t", "|"], key=header_line.count)
    if header_line.count(delimiter) == 0:
        raise InputError(f"{source}: cannot find the column separator in the CSV header "
                         f"{header_line[:80]!r}; expected e.g. 'value,name'.")
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)
    rows = [r for r in reader]
    return _table_from_rows(rows[0], rows[1:], source)


def _table_from_rows(header: Sequence[str], rows: Sequence[Sequence], source: str) -> LabelTable:
    norm = [_norm_header(h) for h in header]

    def column(candidates, exclude=None, need_int=False):
        for cand in candidates:
            for ci, h in enumerate(norm):
                if h == cand and ci != exclude:
                    if need_int:
                        vals = [r[ci] for r in rows if ci < len(r) and str(r[ci]).strip() != ""]
                        if not vals or any(_as_int(v) is None for v in vals):
                            continue
                    return ci
        return None

    vcol = column(_VALUE_COLUMNS, need_int=True)
    ncol = column(_NAME_COLUMNS, exclude=vcol) if vcol is not None else None
    if vcol is None or ncol is None:
        raise InputError(
            f"{source}: cannot find the label value and name columns in the header "
            f"{list(header)}; name them e.g. 'value' and 'name' (integer values in the value "
            "column)."
        )
    color_cols = None
    for names3 in (("colorr", "colorg", "colorb"), ("r", "g", "b"), ("red", "green", "blue")):
        if all(n in norm for n in names3):
            color_cols = [norm.index(n) for n in names3]
            break
    table: LabelTable = {}
    for r in rows:
        if vcol >= len(r) or ncol >= len(r) or str(r[vcol]).strip() == "":
            continue
        value = _as_int(r[vcol])
        color = None
        if color_cols and all(c < len(r) for c in color_cols):
            color = _color_from([r[c] for c in color_cols]) if all(
                _is_float(str(r[c])) for c in color_cols) else None
        _add_entry(table, value, str(r[ncol]), color, source)
    if color_cols:
        # Slicer colour tables store 0..255; normalise consistently for the whole table
        raw_max = 0.0
        for r in rows:
            for c in color_cols:
                if c < len(r) and _is_float(str(r[c])):
                    raw_max = max(raw_max, float(r[c]))
        if raw_max > 1.0:
            for v, (n, _) in list(table.items()):
                row = next(rr for rr in rows if vcol < len(rr) and _as_int(rr[vcol]) == v)
                table[v] = (n, tuple(float(row[c]) / 255.0 for c in color_cols))
    return table


def _parse_label_xml(payload: bytes, source: str) -> LabelTable:
    text = payload.rstrip(b"\x00 \n\r\t").decode("utf-8", errors="replace")
    table: LabelTable = {}
    try:
        root = ET.fromstring(text)
        labels = root.iter("Label")
        for el in labels:
            value = _as_int(el.get("Key", ""))
            if value is None:
                continue
            name = (el.text or "").strip()
            color = None
            try:
                color = (float(el.get("Red")), float(el.get("Green")), float(el.get("Blue")))
            except (TypeError, ValueError):
                color = None
            _add_entry(table, value, name, color, source)
        return table
    except ET.ParseError:
        pass
    # tolerant fallback for slightly malformed XML
    for m in re.finditer(r'<Label\s+([^>]*)>\s*(?:<!\[CDATA\[(.*?)\]\]>|([^<]*))\s*</Label>',
                         text, flags=re.S):
        attrs = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        value = _as_int(attrs.get("Key", ""))
        if value is None:
            continue
        name = (m.group(2) if m.group(2) is not None else m.group(3) or "").strip()
        try:
            color = (float(attrs["Red"]), float(attrs["Green"]), float(attrs["Blue"]))
        except (KeyError, ValueError):
            color = None
        _add_entry(table, value, name, color, source)
    return table


# ============================================================================ resampling helpers
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
            SegmentationWarning, stacklevel=_caller_stacklevel())

"""Read segmentations from any supported file into a :class:`Segmentation`.

Supported inputs (see :func:`read_segmentation`):

* 3D Slicer ``.seg.nrrd`` (3-D, and 4-D "layers" for overlapping segments),
  read with the library's own NRRD reader (:mod:`ParaspinalFatLib.io.nrrd`);
* labelmaps (NIfTI, NRRD, MetaImage, any format SimpleITK reads) plus segment
  names from a Slicer colour table (``.ctbl``/``.txt``), a JSON file, a CSV
  file, a python mapping, a TotalSegmentator NIfTI header extension, or a
  built-in convention (``"totalsegmentator"``, ``"totalspineseg"``);
* DICOM Segmentation objects (BINARY, FRACTIONAL, LABELMAP), through
  :func:`ParaspinalFatLib.io.dicom_seg.read_dicom_seg` (needs the optional
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

Where things live
-----------------
This module finds a file's format from its content (not its name), routes
DICOM files, and turns labelmaps into segmentations.  The other parts live in:

* :mod:`ParaspinalFatLib.io.slicer_seg` -- Slicer ``.seg.nrrd`` interpretation
  and :func:`write_seg_nrrd`;
* :mod:`ParaspinalFatLib.io.label_names` -- :func:`read_label_table`,
  :func:`convention_table`, :func:`nifti_label_table`, :data:`CONVENTIONS`;
* :mod:`ParaspinalFatLib.io.resample` -- :func:`resample_to_grid`;
* :mod:`ParaspinalFatLib.errors` -- :class:`SegmentationWarning`;
* :mod:`ParaspinalFatLib.io.file_notes` -- how warnings about one file are
  issued and kept;
* :mod:`ParaspinalFatLib.io.nifti` -- truncation check and sibling-safe
  SimpleITK read of NIfTI files;
* :mod:`ParaspinalFatLib.io.label_layers` -- integer label-array helpers.

``__all__`` lists only :func:`read_segmentation`; :func:`resample_to_grid` and
:class:`SegmentationWarning` are also imported here, so
``from ParaspinalFatLib.io.segmentation_files import resample_to_grid`` works.
"""

from __future__ import annotations

import gzip
import json
import os
import warnings
from pathlib import Path
from typing import List, Optional
import numpy as np
from ..errors import InputError
from ..geometry import Geometry
from .label_layers import check_unique_names, dtype_for_max, to_label_layers
from .label_names import CONVENTIONS, LabelTable, describe_names, normalise_convention, convention_table, nifti_label_table, read_label_table
from .nifti import looks_like_nifti_header, read_image_file
from .nrrd import nrrd_geometry, read_nrrd
from .resample import resample_to_grid  # noqa: F401  (re-exported)
from ..segmentation import LabelledVoxels, Segment, Segmentation
from ..errors import SegmentationWarning  # noqa: F401  (re-exported)
from .file_notes import caller_stacklevel  # noqa: F401  (used by dicom_seg)
from .file_notes import FileNotes
from .slicer_seg import SEGMENT_KEY, has_segment_fields, segmentation_from_seg_nrrd, slicer_seg_from_nrrd
from .dicom_seg import DICOM_SEG_SOP_CLASSES, dicom_object_class, read_dicom_seg


__all__ = ['read_segmentation']

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
        ``LabelValue,Name,...``); or an inline text ``"1=right ES,2=right MF"``.
        Ignored (with a warning) for ``.seg.nrrd``
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
            f"(names={describe_names(names)}, convention={convention!r})."
        )
    if convention is not None:
        convention = normalise_convention(convention)

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
        if has_segment_fields(image.key_values):
            notes = FileNotes(str(p))
            if names is not None or convention is not None:
                notes.warn(
                    "a Slicer .seg.nrrd names its own segments; the 'names'/'convention' "
                    "argument is ignored."
                )
            return slicer_seg_from_nrrd(image, notes)
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
    try:
        # NIfTI: completeness check (SimpleITK silently zero-fills truncated files) and a
        # read that cannot pick up a sibling x.nii for x.nii.gz; others: plain SimpleITK
        image = read_image_file(p)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(
            f"{p}: cannot read the file as an image ({_first_line(exc)}). Check that it is a "
            "complete NIfTI/NRRD/MetaImage/DICOM SEG file (it may be truncated or damaged)."
        ) from None
    return _from_sitk_image(image, str(p), names, convention, keep_empty,
                            require_names=False, embedded=embedded,
                            fmt="labelmap-nifti" if kind == "nifti" else "labelmap")


# ============================================================================ helpers: io
def _sitk():
    import SimpleITK as sitk  # runtime dependency

    return sitk


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # SimpleITK messages: the useful part is usually the last line
    return (lines[-1] if lines else type(exc).__name__)[:300]


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
        except (OSError, EOFError):  # a damaged/truncated gzip stream
            inner = b""
        if inner[:7] == b"NRRD000":  # pragma: no cover - unusual: gzipped NRRD file
            return "other"
        if looks_like_nifti_header(inner, None):
            return "nifti"
        return "other"
    if looks_like_nifti_header(head[:8], head):
        return "nifti"
    if p.suffix.lower() in (".dcm", ".dicom") or p.suffix == "":
        if dicom_object_class(p, force=True, simpleitk=False) is not None:
            return "dicom"
    return "other"


def _read_dicom(p: Path, names, convention, fractional_threshold: float) -> Segmentation:
    info = dicom_object_class(p)
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
    seg = read_dicom_seg(p, fractional_threshold=fractional_threshold)
    if names is not None or convention is not None:
        notes = FileNotes(str(p))
        notes.warn("a DICOM SEG names its own segments (SegmentLabel); the 'names'/"
                   "'convention' argument is ignored.")
        notes.store(seg.metadata)
    return seg


# ============================================================================ labelmaps
def _from_sitk_image(image, source: str, names, convention, keep_empty, *, require_names: bool,
                     embedded: Optional[LabelTable] = None, fmt: str = "labelmap") -> Segmentation:
    from .images import image_array

    dim = image.GetDimension()
    ncomp = image.GetNumberOfComponentsPerPixel()
    keys = set(image.GetMetaDataKeys())
    kv = {k: image.GetMetaData(k) for k in keys if SEGMENT_KEY.match(k) or k.startswith("Segmentation_")}
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
        array = image_array(image, keep_integers=True)[0]
    else:
        geometry = Geometry.from_sitk(image)
        array = image_array(image, keep_integers=True)  # a read-only view that keeps the image alive: no copy
    if kv and has_segment_fields(kv):
        array = array.copy()  # the Slicer segmentation reader may edit its layers
        notes = FileNotes(source)
        if names is not None or convention is not None:
            notes.warn("the image carries Slicer segment metadata; 'names'/'convention' ignored.")
        layers = array[np.newaxis] if ncomp == 1 else np.moveaxis(array, -1, 0)
        return segmentation_from_seg_nrrd(layers, geometry, kv, source, notes, fmt="slicer-seg-sitk")
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
    notes = FileNotes(source)
    layer = to_label_layers(array[np.newaxis], source, notes, writeable=False)  # read-only view: never edited
    # one pass finds every labelled voxel: it gives the counts here and is kept for the measurement
    found = LabelledVoxels.from_layer(layer[0])
    counts = found.value_counts()

    tool_table = False
    if names is not None:
        table = read_label_table(names, what="names")
        name_source = describe_names(names)
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
    max_value = max(counts) if counts else 0  # labels are >= 0 here (negative ones are refused)
    segments: List[Segment] = []
    for v in sorted(values):
        name, color = table.get(v, (f"label_{v}", None))
        segments.append(Segment(name=name, layer=0, label_value=int(v), segment_id=str(v),
                                color=color))
    check_unique_names(segments, source, hint="the name table maps several values to one name")
    if keep_empty and absent and max_value < max(absent):
        # dtype must be able to hold the largest (empty) label value for consistency
        needed = dtype_for_max(max(absent))
        if np.dtype(needed).itemsize > layer.dtype.itemsize:
            layer = layer.astype(needed)
    metadata = {"format": fmt, "name_source": name_source}
    if absent:
        metadata["absent_table_names"] = json.dumps([table[v][0] for v in absent])
    seg = Segmentation(layers=layer, geometry=geometry, segments=segments, source=source,
                       metadata=metadata)
    seg.adopt_labelled_voxels(0, found)
    notes.store(seg.metadata)
    return seg


#: More distinct values than this in a labelmap without a name table -> probably an image.
_MAX_UNNAMED_LABELS = 1000

"""NIfTI header parsing (:mod:`ParaspinalFatLib.io.nifti`) and the io warning classes.

The qform is checked against SimpleITK's own reading of files SimpleITK wrote; the sheared
grids themselves are in ``Testing/test_bad_inputs.py`` (io section).
"""
from __future__ import annotations

import gzip
import shutil
import struct
import warnings

import numpy as np
import pytest
import SimpleITK as sitk

from ParaspinalFatLib.errors import InputError, ParaspinalFatWarning, SegmentationWarning
from ParaspinalFatLib.geometry import Geometry
from ParaspinalFatLib.io.images import check_same_grid, read_image
from ParaspinalFatLib.io.label_names import nifti_label_table
from ParaspinalFatLib.io.nifti import (check_nifti_complete, nifti_header_facts,
                                       nifti_spatial_header, nifti_true_geometry)
from ParaspinalFatLib.io.nrrd import nrrd_geometry, read_nrrd


def _rotation(ax, ay, az):
    rx, ry, rz = np.deg2rad([ax, ay, az])
    x = np.array([[1, 0, 0], [0, np.cos(rx), -np.sin(rx)], [0, np.sin(rx), np.cos(rx)]])
    y = np.array([[np.cos(ry), 0, np.sin(ry)], [0, 1, 0], [-np.sin(ry), 0, np.cos(ry)]])
    z = np.array([[np.cos(rz), -np.sin(rz), 0], [np.sin(rz), np.cos(rz), 0], [0, 0, 1]])
    return z @ y @ x


def _written(tmp_path, direction, name="q.nii", spacing=(0.8, 0.9, 3.5), origin=(12.5, -40.0, 7.25)):
    img = sitk.GetImageFromArray(np.zeros((4, 5, 6), np.int16))
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    img.SetDirection(tuple(float(v) for v in np.asarray(direction).ravel()))
    path = tmp_path / name
    sitk.WriteImage(img, str(path))
    return path


def _head(path):
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


@pytest.mark.parametrize("rotation", [(0, 0, 0), (15, 0, 0), (10, -20, 33), (0, 0, 180), (170, 40, -95)])
@pytest.mark.parametrize("flip", [False, True])
def test_qform_and_sform_match_simpleitk(tmp_path, rotation, flip):
    d = _rotation(*rotation)
    if flip:  # a left-handed grid: qfac = -1
        d = d @ np.diag([1.0, 1.0, -1.0])
    path = _written(tmp_path, d, "q.nii.gz")
    hdr = nifti_spatial_header(_head(path), path)
    assert hdr.version == 1 and hdr.ndim == 3 and hdr.size == (6, 5, 4)
    assert hdr.qform_code > 0 and hdr.sform_code > 0
    itk = Geometry.from_sitk(sitk.ReadImage(str(path)))
    lps = np.diag([-1.0, -1.0, 1.0, 1.0])
    for ras in (hdr.qform_ras(), hdr.sform_ras()):
        np.testing.assert_allclose(lps @ ras, itk.ijk_to_lps, atol=2e-5)
    assert nifti_true_geometry(path) is None  # orthogonal: nothing to correct


@pytest.mark.parametrize("endian", ["<", ">"])
def test_big_endian_header_fields(tmp_path, endian):
    path = _written(tmp_path, _rotation(5, 0, 0))
    data = bytearray(path.read_bytes())
    if endian == ">":  # byte-swap every header field that is read
        def swap(fmt, offset):
            values = struct.unpack_from("<" + fmt, data, offset)
            struct.pack_into(">" + fmt, data, offset, *values)
        for fmt, offset in (("i", 0), ("8h", 40), ("2h", 70), ("8f", 76), ("f", 108), ("2h", 252),
                            ("6f", 256), ("12f", 280)):
            swap(fmt, offset)
    path.write_bytes(bytes(data))
    hdr = nifti_spatial_header(bytes(data[:348]), path)
    assert hdr.size == (6, 5, 4)
    assert hdr.pixdim[1:4] == pytest.approx((0.8, 0.9, 3.5), rel=1e-6)
    assert hdr.sform_ras()[:3, 3] == pytest.approx((-12.5, 40.0, 7.25), rel=1e-6)


@pytest.mark.parametrize("n_voxels", [8, 13, 64, 7 * 9 * 5])
def test_one_bit_nifti_counts_packed_bytes(tmp_path, n_voxels):
    # DT_BINARY (datatype 1, bitpix 1) packs 8 voxels a byte
    head = bytearray(348)
    struct.pack_into("<i", head, 0, 348)
    struct.pack_into("<8h", head, 40, 1, n_voxels, 1, 1, 1, 1, 1, 1)
    struct.pack_into("<2h", head, 70, 1, 1)
    struct.pack_into("<f", head, 108, 352.0)
    head[344:348] = b"n+1\0"
    nbytes = (n_voxels + 7) // 8
    assert nifti_header_facts(bytes(head), tmp_path / "b.nii")[3] == nbytes
    full = tmp_path / "b.nii"
    full.write_bytes(bytes(head) + bytes(4) + bytes(nbytes))
    check_nifti_complete(full)  # complete: accepted
    cut = tmp_path / "cut.nii"
    cut.write_bytes(bytes(head) + bytes(4) + bytes(nbytes - 1))
    with pytest.raises(InputError, match=rf"cut\.nii: the NIfTI file holds {nbytes - 1} bytes of "
                                         rf"voxel data but its header declares {nbytes}"):
        check_nifti_complete(cut)


def test_nifti_label_table_errors_are_input_errors(tmp_path):
    missing = tmp_path / "missing.nii.gz"
    with pytest.raises(InputError, match=r"missing\.nii\.gz: cannot read the NIfTI header extensions "
                                         r"\(FileNotFoundError"):
        nifti_label_table(missing)
    path = _written(tmp_path, np.eye(3), "whole.nii.gz")
    data = path.read_bytes()
    for name, payload in (("cut.nii.gz", data[: len(data) // 2] if len(data) > 80 else data[:20]),
                          ("header_cut.nii.gz", gzip.compress(_head(path)[:200])),
                          ("garbled.nii.gz", data[:10] + bytes(len(data) - 10))):
        bad = tmp_path / name
        bad.write_bytes(payload)
        with pytest.raises(InputError, match=name.replace(".", r"\.") + ": "):
            nifti_label_table(bad)


def test_check_same_grid_warning_is_a_paraspinalfat_warning():
    a = Geometry((4, 5, 6), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), tuple(np.eye(3).ravel()))
    b = Geometry((4, 5, 6), (1.0, 1.0, 1.0), (9.0, 0.0, 0.0), tuple(np.eye(3).ravel()))
    with pytest.warns(ParaspinalFatWarning, match="water: header differs from fat"):
        check_same_grid(a, b, "fat", "water", assume_same_grid=True)


@pytest.mark.parametrize("drop, text", [
    ("space", "no 'space' field: coordinates assumed to be LPS"),
    ("space directions", "no 'space directions': identity orientation assumed"),
])
def test_nrrd_geometry_warnings_are_segmentation_warnings(tmp_path, drop, text):
    img = sitk.GetImageFromArray(np.zeros((3, 4, 5), np.uint8))
    path = tmp_path / "l.nrrd"
    sitk.WriteImage(img, str(path), useCompression=False)
    lines = path.read_bytes().split(b"\n")
    kept = [ln for ln in lines if not ln.startswith(drop.encode() + b":")]
    if drop == "space directions":
        kept = [ln for ln in kept if not ln.startswith(b"space origin:")]
    path.write_bytes(b"\n".join(kept))
    with pytest.warns(SegmentationWarning, match=str(path).replace(".", r"\.") + ": " + text):
        nrrd_geometry(read_nrrd(path))


def test_several_dicom_series_warning_is_a_paraspinalfat_warning(realdata, tmp_path):
    first = realdata / "highdicom" / "CT2_pydicom"
    second = realdata / "dcmqi" / "ct-3slice"
    if not first.is_dir() or not second.is_dir():
        pytest.skip("the two DICOM series are absent")
    folder = tmp_path / "series"
    folder.mkdir()
    for n, src in enumerate(sorted(p for d in (first, second) for p in d.iterdir() if p.is_file())):
        shutil.copyfile(src, folder / f"f{n:03d}.dcm")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            read_image(folder)
        except InputError:
            pass  # the chosen series may be refused for its own reasons; the warning came first
    found = [w for w in caught if "DICOM series found; using the largest one" in str(w.message)]
    assert len(found) == 1 and issubclass(found[0].category, ParaspinalFatWarning)
    assert str(folder) in str(found[0].message)

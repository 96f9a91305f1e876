"""Image reading (:func:`ParaspinalFatLib.io_image.read_image`).

Geometry and voxels are checked against the values the test itself wrote (and
against plain SimpleITK reads); the NIfTI hazards are shown to exist in plain
SimpleITK before the reader is shown to avoid them.
"""
from __future__ import annotations

import gzip
import re

import numpy as np
import pytest
import SimpleITK as sitk

from ParaspinalFatLib.errors import InputError
from ParaspinalFatLib.io.images import read_image
from ParaspinalFatLib.io.nifti import check_nifti_complete, is_nifti_file, read_image_file


# ----------------------------------------------------------------------------- helpers
def _oblique_direction():
    """An oblique (non-axis-aligned) rotation, as in angulated lumbar axial stacks."""
    a, b = np.deg2rad(17.0), np.deg2rad(-8.0)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return tuple(float(v) for v in (rz @ rx).ravel())


ORIGIN = (-12.3456789, 30.123456, 45.6789)
SPACING = (0.78125, 0.9, 4.4)
DIRECTION = _oblique_direction()


def _volume(shape=(5, 6, 7), dtype=np.float32, seed=3):
    """A 3-D image (numpy shape k, j, i) with distinct voxel values and oblique geometry."""
    rng = np.random.default_rng(seed)
    arr = (rng.random(shape) * 1000).astype(dtype)
    img = sitk.GetImageFromArray(arr)
    img.SetOrigin(ORIGIN)
    img.SetSpacing(SPACING)
    img.SetDirection(DIRECTION)
    return img, arr


def _nii_bytes(img) -> bytes:
    """Uncompressed NIfTI bytes of ``img`` as SimpleITK writes them."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "v.nii"
        sitk.WriteImage(img, str(p))
        return p.read_bytes()


# ----------------------------------------------------------------------------- round trips
# Largest geometry error allowed per format: NRRD and MetaImage store text doubles,
# NIfTI stores its qform/sform in float32.
TOLERANCE = {".nrrd": 1e-12, ".mha": 0.0, ".mhd": 0.0, ".nii": 1e-5, ".nii.gz": 1e-5, ".hdr": 1e-5}


@pytest.mark.parametrize("ext", sorted(TOLERANCE))
@pytest.mark.parametrize("dtype", [np.float32, np.int16, np.uint8])
def test_round_trip_keeps_geometry_and_voxels(tmp_path, ext, dtype):
    img, arr = _volume(dtype=dtype)
    path = tmp_path / ("map" + ext)
    sitk.WriteImage(img, str(path))
    out = read_image(path)
    tol = TOLERANCE[ext]
    assert out.GetSize() == (7, 6, 5)
    assert np.allclose(out.GetOrigin(), ORIGIN, rtol=0, atol=tol * 10)
    assert np.allclose(out.GetSpacing(), SPACING, rtol=0, atol=tol)
    assert np.allclose(out.GetDirection(), DIRECTION, rtol=0, atol=tol)
    assert np.array_equal(sitk.GetArrayFromImage(out), arr)
    # nothing is lost relative to SimpleITK's own reading of the file
    plain = sitk.ReadImage(str(path))
    assert out.GetOrigin() == plain.GetOrigin() and out.GetSpacing() == plain.GetSpacing()
    assert out.GetDirection() == plain.GetDirection()
    if ext in (".mha", ".mhd"):  # exact doubles
        assert out.GetOrigin() == ORIGIN and out.GetSpacing() == SPACING
        assert out.GetDirection() == DIRECTION


def test_simpleitk_image_is_passed_through():
    img, _ = _volume()
    assert read_image(img) is img


# ----------------------------------------------------------------------------- NIfTI hazards
def test_truncated_nii_is_refused_not_zero_filled(tmp_path):
    img, _ = _volume(shape=(20, 30, 40), dtype=np.int16)  # 48000 voxel bytes
    full = _nii_bytes(img)
    cut = tmp_path / "cut.nii"
    cut.write_bytes(full[:-5000])
    assert sitk.ReadImage(str(cut)).GetSize() == (40, 30, 20)  # the hazard: no error
    with pytest.raises(InputError, match=re.escape(f"water image {cut}: ") +
                       r".*43000 bytes.*declares 48000.*truncated"):
        read_image(cut, role="water image")


def test_truncated_nii_gz_is_refused(tmp_path):
    img, arr = _volume(shape=(20, 30, 40), dtype=np.int16)
    gz = gzip.compress(_nii_bytes(img))
    # the gzip stream itself is cut short
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(gz[: len(gz) // 2])
    with pytest.raises(InputError, match=re.escape(str(cut)) +
                       r": the gzip-compressed file is truncated"):
        read_image(cut)
    # a complete gzip stream of a truncated NIfTI file
    short = tmp_path / "short.nii.gz"
    short.write_bytes(gzip.compress(_nii_bytes(img)[:-5000]))
    assert sitk.ReadImage(str(short)).GetSize() == (40, 30, 20)  # the hazard: no error
    with pytest.raises(InputError, match=re.escape(str(short)) + r".*declares 48000.*truncated"):
        read_image(short)
    ok = tmp_path / "ok.nii.gz"
    ok.write_bytes(gz)
    assert np.array_equal(sitk.GetArrayFromImage(read_image(ok)), arr)


def test_nii_gz_with_nii_sibling_reads_the_nii_gz(tmp_path):
    wanted, wanted_arr = _volume(dtype=np.int16, seed=1)
    other, other_arr = _volume(dtype=np.int16, seed=2)
    assert not np.array_equal(wanted_arr, other_arr)
    sitk.WriteImage(wanted, str(tmp_path / "x.nii.gz"))
    sitk.WriteImage(other, str(tmp_path / "x.nii"))
    hazard = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "x.nii.gz")))
    assert np.array_equal(hazard, other_arr)  # the hazard: SimpleITK reads x.nii instead
    out = read_image(tmp_path / "x.nii.gz")
    assert np.array_equal(sitk.GetArrayFromImage(out), wanted_arr)
    assert np.allclose(out.GetDirection(), DIRECTION, atol=1e-5)
    assert np.array_equal(sitk.GetArrayFromImage(read_image(tmp_path / "x.nii")), other_arr)


def test_nifti_safety_public_functions(tmp_path):
    img, arr = _volume(dtype=np.int16)
    sitk.WriteImage(img, str(tmp_path / "v.nii.gz"))
    sitk.WriteImage(img, str(tmp_path / "v.nrrd"))
    # recognised by content, not by name
    (tmp_path / "renamed.dat").write_bytes(_nii_bytes(img))
    assert is_nifti_file(tmp_path / "v.nii.gz") and is_nifti_file(tmp_path / "renamed.dat")
    assert not is_nifti_file(tmp_path / "v.nrrd") and not is_nifti_file(tmp_path / "missing.nii")
    check_nifti_complete(tmp_path / "v.nii.gz")  # complete: no error
    for name in ("v.nii.gz", "v.nrrd"):
        assert np.array_equal(sitk.GetArrayFromImage(read_image_file(tmp_path / name)), arr)
    (tmp_path / "cut.nii").write_bytes(_nii_bytes(img)[:-10])
    with pytest.raises(InputError, match=r"cut\.nii: .*truncated"):
        check_nifti_complete(tmp_path / "cut.nii")
    with pytest.raises(InputError, match=r"cut\.nii: .*truncated"):
        read_image_file(str(tmp_path / "cut.nii"))


# ----------------------------------------------------------------------------- refusals
def test_dicom_seg_given_as_image_is_refused(realdata):
    path = realdata / "dcmqi" / "liver.dcm"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    with pytest.raises(InputError, match=re.escape(f"image {path} is a DICOM SEG") +
                       r".*pass it as the segmentation"):
        read_image(path)


def _two_d():
    return sitk.GetImageFromArray(np.ones((5, 6), np.float32))


def _one_slice():
    return sitk.GetImageFromArray(np.ones((1, 5, 6), np.float32))


def _four_d():
    img, _ = _volume()
    return sitk.JoinSeries([img] * 3)


@pytest.mark.parametrize("ext", [".nrrd", ".nii", ".nii.gz", ".mha"])
@pytest.mark.parametrize("make, message", [
    (_two_d, r"is a 2-D image \(size \(6, 5\)\); a 3-D volume is needed"),
    (_one_slice, r"is a 2-D image \(size \(6, 5, 1\)\); a 3-D volume is needed"),
    (_four_d, r"is a 4-D image \(size \(7, 6, 5, 3\)\); a 3-D scalar volume is needed"),
])
def test_wrong_dimension_is_refused(tmp_path, ext, make, message):
    path = tmp_path / ("bad" + ext)
    sitk.WriteImage(make(), str(path))
    with pytest.raises(InputError, match=re.escape(f"fat image {path} ") + message):
        read_image(path, role="fat image")


@pytest.mark.parametrize("ext", [".nrrd", ".nii", ".nii.gz", ".mha"])
@pytest.mark.parametrize("kind", ["rgb", "vector"])
def test_vector_or_rgb_image_is_refused(tmp_path, ext, kind):
    img, _ = _volume(dtype=np.uint8)
    if kind == "rgb":
        multi = sitk.Compose([img, img, img])
    else:
        multi = sitk.GetImageFromArray(np.ones((5, 6, 7, 3), np.float32), isVector=True)
    path = tmp_path / (kind + ext)
    sitk.WriteImage(multi, str(path))
    with pytest.raises(InputError, match=re.escape(f"image {path} has 3 components per voxel")):
        read_image(path)


def test_folder_without_dicom_is_refused(tmp_path):
    folder = tmp_path / "series"
    folder.mkdir()
    (folder / "notes.txt").write_text("not an image")
    with pytest.raises(InputError, match=re.escape(f"image folder {folder} contains no DICOM "
                                                   "image series")):
        read_image(folder)


def test_missing_and_unreadable_files_are_refused(tmp_path):
    with pytest.raises(InputError, match=re.escape(f"image file not found: {tmp_path / 'no.nii'}")):
        read_image(tmp_path / "no.nii")
    for name, data in [("junk.nrrd", b"this is not an image\n" * 10),
                       ("junk.nii.gz", gzip.compress(b"this is not an image\n" * 10)),
                       ("junk.nii", b"\x00" * 400)]:
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(InputError, match=re.escape(f"image {path} could not be read")):
            read_image(path)


def test_dicom_series_with_uneven_slices_is_refused(realdata):
    """CT2_pydicom: 4 slices at z = -99.5, 103.0, 104.3, 105.5 -- SimpleITK would stack them."""
    with pytest.raises(InputError, match="not one evenly spaced stack.*202"):
        read_image(realdata / "highdicom" / "CT2_pydicom")


def test_dicom_series_slice_spacing_from_positions(realdata):
    img = read_image(realdata / "dcmqi" / "ct-3slice")  # SliceThickness says 1.25; positions 1.0 apart
    assert img.GetSize()[2] == 3
    assert img.GetSpacing()[2] == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.int32, np.uint8])
def test_image_array_keep_integers_is_a_readonly_view_in_the_own_type(dtype):
    from ParaspinalFatLib.io.images import image_array

    rng = np.random.default_rng(5)
    arr = rng.integers(0, 120, (4, 5, 6)).astype(dtype)
    img = sitk.GetImageFromArray(arr)
    kept = image_array(img, keep_integers=True)
    converted = image_array(img)
    del img  # the view keeps the image alive
    assert kept.dtype == dtype and not kept.flags.writeable
    np.testing.assert_array_equal(kept, arr)
    assert converted.dtype == np.float64 and converted.flags.writeable
    np.testing.assert_array_equal(converted, arr.astype(np.float64))

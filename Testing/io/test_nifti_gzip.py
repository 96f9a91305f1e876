"""Completeness of gzip NIfTI files from the gzip trailer (:func:`gzip_trailer_proves_size`).

SimpleITK reads a truncated ``.nii.gz`` silently, zero-filling what is missing, so
:func:`check_nifti_complete` must refuse every truncated file; it accepts a complete file from
its trailer without decompressing it, and falls back to decompressing when the trailer cannot
decide (multi-member gzip, extra bytes).
"""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import SimpleITK as sitk

from ParaspinalFatLib.errors import InputError
from ParaspinalFatLib.io.nifti import (check_nifti_complete, gzip_trailer_proves_size,
                                       nifti_header_facts, read_image_file)


def _nii(tmp_path, shape, dtype, kind, seed=0):
    """Bytes of a ``.nii`` written by SimpleITK, and its voxel array."""
    rng = np.random.default_rng(seed)
    if kind == "noise":
        arr = rng.normal(0, 400, shape).astype(dtype)
    elif kind == "labels":
        arr = np.zeros(shape, dtype)
        arr[1:-1, 2:-2, 1:] = rng.integers(0, 4, (shape[0] - 2, shape[1] - 4, shape[2] - 1))
    else:  # smooth
        z, y, x = np.indices(shape)
        arr = (100 * np.sin(x / 5.0) + 3 * y + z).astype(dtype)
    path = tmp_path / "src.nii"
    sitk.WriteImage(sitk.GetImageFromArray(arr), str(path))
    raw = path.read_bytes()
    path.unlink()
    return raw, arr


VARIANTS = [  # (shape, dtype, content, gzip level)
    ((4, 5, 6), np.int16, "smooth", 6),
    ((20, 30, 40), np.int16, "noise", 6),
    ((20, 30, 40), np.int16, "noise", 0),  # stored blocks: raw voxel bytes in the stream
    ((16, 64, 64), np.float32, "noise", 1),
    ((30, 40, 50), np.uint8, "labels", 9),
    ((7, 33, 65), np.int16, "smooth", 1),
]


def _expected(raw):
    _, _, vox_offset, nbytes, _ = nifti_header_facts(raw[:544], "x.nii")
    return vox_offset + nbytes


@pytest.mark.parametrize("shape, dtype, kind, level", VARIANTS)
def test_complete_files_are_proved_by_their_trailer(tmp_path, shape, dtype, kind, level):
    raw, arr = _nii(tmp_path, shape, dtype, kind)
    assert _expected(raw) == len(raw)
    path = tmp_path / "ok.nii.gz"
    path.write_bytes(gzip.compress(raw, level))
    assert gzip_trailer_proves_size(path, len(raw))
    assert not gzip_trailer_proves_size(path, len(raw) + 1)
    assert not gzip_trailer_proves_size(path, len(raw) - 1)
    check_nifti_complete(path)
    assert np.array_equal(sitk.GetArrayFromImage(read_image_file(path)), arr)


def _cuts(n_compressed, seed):
    """Truncation points: every byte of the last 48 and first 40, and 60 random ones."""
    rng = np.random.default_rng(seed)
    cuts = set(range(max(1, n_compressed - 48), n_compressed)) | set(range(1, 41))
    cuts |= {int(c) for c in rng.integers(1, n_compressed, 60)}
    return sorted(c for c in cuts if 0 < c < n_compressed)


@pytest.mark.parametrize("shape, dtype, kind, level", VARIANTS)
def test_truncated_at_any_offset_is_refused(tmp_path, shape, dtype, kind, level):
    raw, _ = _nii(tmp_path, shape, dtype, kind)
    gz = gzip.compress(raw, level)
    path = tmp_path / "cut.nii.gz"
    for cut in _cuts(len(gz), seed=len(gz)):
        path.write_bytes(gz[:cut])
        assert not gzip_trailer_proves_size(path, len(raw)), cut
        with pytest.raises(InputError, match=r"cut\.nii\.gz: .*truncated"):
            check_nifti_complete(path)


def _members(raw, splits, level=6):
    bounds = [0] + list(splits) + [len(raw)]
    return [gzip.compress(raw[a:b], level) for a, b in zip(bounds[:-1], bounds[1:])]


@pytest.mark.parametrize("splits", [
    (100,),  # inside the header
    (352,),  # at the start of the voxels
    (10000,),
    (5000, 30000),
    tuple(range(4096, 48352, 4096)),  # BGZF-like blocks
])
def test_multi_member_gzip(tmp_path, splits):
    raw, arr = _nii(tmp_path, (20, 30, 40), np.int16, "noise", seed=3)
    members = _members(raw, splits)
    path = tmp_path / "multi.nii.gz"
    # complete: the last member's ISIZE is only its own size, the decompression decides
    path.write_bytes(b"".join(members))
    assert not gzip_trailer_proves_size(path, len(raw))
    check_nifti_complete(path)
    assert np.array_equal(sitk.GetArrayFromImage(read_image_file(path)), arr)
    # with an empty end-of-file member (as BGZF writes), and without it: complete either way
    path.write_bytes(b"".join(members) + gzip.compress(b""))
    check_nifti_complete(path)
    # cut exactly at each member boundary: a valid trailer, but of a member too small
    for n in range(1, len(members)):
        path.write_bytes(b"".join(members[:n]))
        assert not gzip_trailer_proves_size(path, len(raw))
        with pytest.raises(InputError, match=r"multi\.nii\.gz: .*truncated"):
            check_nifti_complete(path)
    # cut inside the last member, and inside the next member's gzip header
    for cut in (len(members[-1]) // 2, 5):
        path.write_bytes(b"".join(members[:-1]) + members[-1][:cut])
        assert not gzip_trailer_proves_size(path, len(raw))
        with pytest.raises(InputError, match=r"multi\.nii\.gz: .*truncated"):
            check_nifti_complete(path)


def test_empty_members_before_the_data_keep_the_fast_proof(tmp_path):
    raw, arr = _nii(tmp_path, (20, 30, 40), np.int16, "smooth")
    path = tmp_path / "e.nii.gz"
    path.write_bytes(gzip.compress(b"") + gzip.compress(b"") + gzip.compress(raw))
    assert gzip_trailer_proves_size(path, len(raw))
    check_nifti_complete(path)
    assert np.array_equal(sitk.GetArrayFromImage(read_image_file(path)), arr)


def test_trailing_bytes(tmp_path):
    raw, _ = _nii(tmp_path, (20, 30, 40), np.int16, "noise")
    gz = gzip.compress(raw)
    path = tmp_path / "tail.nii.gz"
    # trailing garbage: refused as damaged, as when the whole file is decompressed
    for garbage in (b"garbage!", b"\x01", bytes(7) + b"\x05", struct.pack("<I", len(raw))[:3]):
        path.write_bytes(gz + garbage)
        assert not gzip_trailer_proves_size(path, len(raw))
        with pytest.raises(InputError, match=r"tail\.nii\.gz: the gzip-compressed file is "
                                             r"truncated or damaged"):
            check_nifti_complete(path)
    # zero padding (block devices, tapes) is allowed by gzip: accepted after decompressing
    path.write_bytes(gz + bytes(512))
    assert not gzip_trailer_proves_size(path, len(raw))
    check_nifti_complete(path)
    # more bytes than the header declares (a complete stream): accepted after decompressing
    path.write_bytes(gzip.compress(raw + bytes(100)))
    assert not gzip_trailer_proves_size(path, len(raw))
    check_nifti_complete(path)


def test_trailer_cannot_decide_at_4_gib_or_more(tmp_path):
    path = tmp_path / "big.gz"
    for expected in (100, 2**32 - 1):
        path.write_bytes(bytes(16) + struct.pack("<I", expected))
        assert gzip_trailer_proves_size(path, expected)
    for expected in (2**32 + 100, 2**33 + 100):  # ISIZE wraps: a file 4 GiB short would match
        assert not gzip_trailer_proves_size(path, expected)
        path.write_bytes(bytes(16) + struct.pack("<I", expected % 2**32))
        assert not gzip_trailer_proves_size(path, expected)
    assert not gzip_trailer_proves_size(path, 0)
    path.write_bytes(struct.pack("<I", 100))  # shorter than any gzip member
    assert not gzip_trailer_proves_size(path, 100)


def test_damage_that_keeps_the_length_is_left_to_simpleitk(tmp_path):
    """The trailer proves the length only; SimpleITK's zlib checks the CRC and raises."""
    raw, _ = _nii(tmp_path, (20, 30, 40), np.int16, "noise")
    for level in (0, 6):
        gz = bytearray(gzip.compress(raw, level))
        for pos in (len(gz) - 5, len(gz) // 2):  # the CRC field; the compressed data
            bad = bytearray(gz)
            bad[pos] ^= 0x10
            path = tmp_path / "bad.nii.gz"
            path.write_bytes(bytes(bad))
            assert gzip_trailer_proves_size(path, len(raw))
            with pytest.raises((RuntimeError, InputError)):
                read_image_file(path)

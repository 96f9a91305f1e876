"""Segmentation readers: NRRD, Slicer .seg.nrrd, labelmaps + names, resampling.

Every number is checked against an independent truth: the arrays and grids the
test itself wrote, SimpleITK's own NRRD/NIfTI readers, a numpy re-implementation
of nearest-neighbour sampling, or header text parsed with plain regexes.
"""
from __future__ import annotations

import gzip
import json
import re
import shutil
import struct
import warnings

import numpy as np
import pytest
import SimpleITK as sitk

from ParaspinalFatLib.errors import InputError
from ParaspinalFatLib.geometry import Geometry
from ParaspinalFatLib.errors import SegmentationWarning
from ParaspinalFatLib.io.label_names import convention_table, nifti_label_table, read_label_table
from ParaspinalFatLib.io.segmentation_files import read_segmentation
from ParaspinalFatLib.io.resample import resample_to_grid
from ParaspinalFatLib.io.nrrd import nrrd_geometry, read_nrrd, write_nrrd
from ParaspinalFatLib.segmentation import Segment, Segmentation


# ----------------------------------------------------------------------------- helpers
def _rotation(axis, degrees):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    a = np.deg2rad(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def _geom(size, spacing, origin, rotation=None):
    d = np.eye(3) if rotation is None else rotation
    return Geometry(tuple(size), tuple(float(s) for s in spacing), tuple(float(o) for o in origin),
                    tuple(float(v) for v in d.ravel()))


def _blobs(shape, values, seed):
    """Integer labels: random ellipsoids per value (later values overwrite)."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    out = np.zeros(shape, dtype=np.uint8 if max(values) < 256 else np.uint16)
    for v in values:
        c = [rng.uniform(1, n - 2) for n in shape]
        r = [rng.uniform(1.5, max(2.0, n / 3)) for n in shape]
        inside = ((zz - c[0]) / r[0]) ** 2 + ((yy - c[1]) / r[1]) ** 2 + ((xx - c[2]) / r[2]) ** 2 < 1
        out[inside] = v
    return out


def _sitk_image(array, geometry):
    img = sitk.GetImageFromArray(array)
    geometry.apply_to_sitk(img)
    return img


def _nn_reference(src_layer, src_geom, dst_geom):
    """Independent nearest-neighbour sampling: which source voxel centre is nearest.

    Implements ITK's rule (round half up; inside when the continuous index is in
    [-0.5, size - 0.5)) with numpy, and asserts that no target voxel centre sits
    on a rounding tie (so the expected result is unambiguous).
    """
    k, j, i = np.meshgrid(*[np.arange(n) for n in dst_geom.shape], indexing="ij")
    ijk = np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1).astype(float)
    lps = dst_geom.index_to_physical(ijk)
    idx = src_geom.physical_to_index(lps)
    frac = idx - np.floor(idx)
    assert not np.any(np.abs(frac - 0.5) < 1e-6), "test grid has rounding ties; change offsets"
    size = np.asarray(src_geom.size)
    inside = np.all(idx >= -0.5, axis=1) & np.all(idx < size - 0.5, axis=1)
    r = np.floor(idx + 0.5).astype(int)
    out = np.zeros(ijk.shape[0], dtype=src_layer.dtype)
    ri = r[inside]
    out[inside] = src_layer[ri[:, 2], ri[:, 1], ri[:, 0]]
    return out.reshape(dst_geom.shape)


def _seg_kv(segments):
    """Slicer-style SegmentN_* key/values from (name, layer, value, color, extent) tuples."""
    kv = {}
    for n, (name, layer, value, color, extent) in enumerate(segments):
        kv[f"Segment{n}_ID"] = f"Segment_{n + 1}"
        kv[f"Segment{n}_Name"] = name
        if value is not None:
            kv[f"Segment{n}_LabelValue"] = str(value)
        if layer is not None:
            kv[f"Segment{n}_Layer"] = str(layer)
        kv[f"Segment{n}_Color"] = " ".join(str(c) for c in color)
        if extent is not None:
            kv[f"Segment{n}_Extent"] = " ".join(str(e) for e in extent)
        kv[f"Segment{n}_Tags"] = "Segmentation.Status:inprogress|"
    kv["Segmentation_MasterRepresentation"] = "Binary labelmap"
    kv["Segmentation_ReferenceImageExtentOffset"] = "0 0 0"
    return kv


def _extent_of(mask):
    k, j, i = np.nonzero(mask)
    if k.size == 0:
        return (0, -1, 0, -1, 0, -1)
    return (i.min(), i.max(), j.min(), j.max(), k.min(), k.max())


OBLIQUE = _rotation([0.3, -0.5, 1.0], 27.0)


# ============================================================================ NRRD reader/writer
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("encoding", ["raw", "gzip"])
@pytest.mark.parametrize("endian", ["little", "big"])
def test_nrrd_roundtrip_matches_simpleitk(tmp_path, dtype, encoding, endian):
    geom = _geom((7, 5, 4), (0.7, 1.3, 2.9), (12.5, -40.25, 301.0), OBLIQUE)
    rng = np.random.default_rng(1)
    data = (rng.integers(-50, 200, size=geom.shape) if np.issubdtype(dtype, np.signedinteger)
            else rng.integers(0, 250, size=geom.shape)).astype(dtype)
    if np.issubdtype(dtype, np.floating):
        data = data + np.asarray(0.25, dtype=dtype)
    path = write_nrrd(tmp_path / "x.nrrd", data, geom, encoding=encoding, endian=endian)
    img = read_nrrd(path)
    g, list_axis = nrrd_geometry(img)
    assert list_axis is None
    assert img.array.dtype == np.dtype(dtype).newbyteorder("=")
    assert np.array_equal(img.array, data)
    assert g.same_grid(geom, tol_mm=1e-9, tol_dir=1e-12)
    # independent reader: SimpleITK
    ref = sitk.ReadImage(str(path))
    assert np.array_equal(sitk.GetArrayFromImage(ref), data)
    assert Geometry.from_sitk(ref).same_grid(g, tol_mm=1e-6, tol_dir=1e-9)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint32, np.float32, np.float64])
@pytest.mark.parametrize("endian", ["little", "big"])
def test_gzip_voxels_decoded_by_itk_equal_the_data_and_a_damaged_file_falls_back(tmp_path, dtype, endian):
    """ITK decodes a simple 3-D gzip NRRD's voxels (fast path); they equal the data written, in
    native byte order and the header's type. A truncated file is left to this library's decoder,
    which refuses it with its own message."""
    from ParaspinalFatLib.io.nrrd import _gzip_voxels_by_itk

    geom = _geom((7, 5, 4), (0.7, 1.3, 2.9), (12.5, -40.25, 301.0), OBLIQUE)
    data = (np.random.default_rng(3).integers(0, 120, size=geom.shape) + 0.5 * np.issubdtype(dtype, np.floating))
    data = data.astype(dtype)
    path = write_nrrd(tmp_path / "x.nrrd", data, geom, endian=endian)
    fast = _gzip_voxels_by_itk(path, list(geom.size), np.dtype(dtype))
    assert fast is not None and fast.dtype == np.dtype(dtype) and np.array_equal(fast, data)
    assert fast.flags.writeable and np.array_equal(read_nrrd(path).array, data)
    raw = path.read_bytes()
    cut = tmp_path / "cut.nrrd"
    cut.write_bytes(raw[:-20])
    assert _gzip_voxels_by_itk(cut, list(geom.size), np.dtype(dtype)) is None
    with pytest.raises(InputError, match="truncated|damaged"):
        read_nrrd(cut)


def test_gzip_nrrd_has_no_timestamp_so_the_same_data_give_the_same_file(tmp_path):
    """The gzip member's MTIME field (bytes 4-8 of RFC 1952's header) is 0: two writes of the same
    data are byte-identical whenever they happen (golden-file comparisons, content hashes)."""
    geom = _geom((6, 4, 3), (1, 1, 1), (0, 0, 0))
    data = np.arange(72, dtype=np.uint8).reshape(geom.shape)
    a = write_nrrd(tmp_path / "a.nrrd", data, geom).read_bytes()
    b = write_nrrd(tmp_path / "b.nrrd", data, geom).read_bytes()
    body = a.split(b"\n\n", 1)[1]
    assert body[:2] == b"\x1f\x8b" and struct.unpack("<I", body[4:8])[0] == 0
    assert a == b and np.array_equal(read_nrrd(tmp_path / "a.nrrd").array, data)


@pytest.mark.parametrize("encoding", ["bzip2", "ascii", "hex"])
def test_nrrd_other_encodings(tmp_path, encoding):
    geom = _geom((6, 4, 3), (1, 1, 1), (0, 0, 0))
    data = np.arange(72, dtype=np.int16).reshape(geom.shape) - 30
    path = write_nrrd(tmp_path / "x.nrrd", data, geom, encoding=encoding, endian="big")
    assert np.array_equal(read_nrrd(path).array, data)


@pytest.mark.parametrize("space", ["right-anterior-superior", "left-anterior-superior"])
def test_nrrd_space_converted_to_lps(tmp_path, space):
    geom = _geom((5, 6, 3), (0.9, 0.8, 3.0), (-20.0, 33.3, 7.0), OBLIQUE)
    data = _blobs(geom.shape, [1, 2], seed=3)
    path = write_nrrd(tmp_path / "ras.nrrd", data, geom, space=space)
    header = path.read_bytes()[:600].decode("latin-1")
    assert f"space: {space}" in header
    # the file holds the converted numbers (independent check of the writer)
    m = re.search(r"space origin: \(([^)]*)\)", header)
    origin_file = [float(v) for v in m.group(1).split(",")]
    flip = [-1, -1, 1] if space.startswith("right") else [1, -1, 1]
    assert np.allclose(origin_file, np.asarray(geom.origin) * flip)
    g, _ = nrrd_geometry(read_nrrd(path))
    assert g.same_grid(geom, tol_mm=1e-9, tol_dir=1e-12)
    ref = sitk.ReadImage(str(path))  # ITK converts RAS/LAS to LPS itself
    assert Geometry.from_sitk(ref).same_grid(geom, tol_mm=1e-6, tol_dir=1e-9)


def test_nrrd_detached_header_and_skips(tmp_path):
    data = np.arange(24, dtype="<u2").reshape(2, 3, 4)
    (tmp_path / "x.raw").write_bytes(b"JUNKLINE\n" + b"\x00" * 6 + data.tobytes())
    (tmp_path / "x.nhdr").write_text(
        "NRRD0004\ntype: ushort\ndimension: 3\nspace: left-posterior-superior\nsizes: 4 3 2\n"
        "space directions: (1,0,0) (0,1,0) (0,0,1)\nendian: little\nencoding: raw\n"
        "space origin: (0,0,0)\nline skip: 1\nbyte skip: 6\ndata file: x.raw\n"
    )
    assert np.array_equal(read_nrrd(tmp_path / "x.nhdr").array, data)
    # byte skip -1: data are the last bytes of the file
    (tmp_path / "y.nrrd").write_bytes(
        b"NRRD0004\ntype: ushort\ndimension: 3\nsizes: 4 3 2\nendian: little\nencoding: raw\n"
        b"byte skip: -1\nspace directions: (1,0,0) (0,1,0) (0,0,1)\nspace: LPS\n\n"
        + b"garbage!" + data.tobytes())
    assert np.array_equal(read_nrrd(tmp_path / "y.nrrd").array, data)


def test_nrrd_key_value_escapes(tmp_path):
    geom = _geom((2, 2, 2), (1, 1, 1), (0, 0, 0))
    kv = {"Segment0_Name": "back\\slash\nnewline", "Other": "a:=b: c"}
    path = write_nrrd(tmp_path / "k.nrrd", np.zeros(geom.shape, np.uint8), geom, key_values=kv)
    assert b"back\\\\slash\\nnewline" in path.read_bytes()
    assert read_nrrd(path).key_values == kv


# ============================================================================ .seg.nrrd synthetic
def test_seg_nrrd_3d_roundtrip(tmp_path):
    geom = _geom((20, 18, 9), (0.78, 0.78, 4.0), (101.2, 87.5, -212.0))
    layer = _blobs(geom.shape, [1, 2, 3, 4], seed=11)
    names = ["multifidus_left", "multifidus_right", "erector_spinae_left", "psoas_left"]
    segs = [(n, 0, v, (0.1 * v, 0.2, 0.3), _extent_of(layer == v)) for v, n in
            zip([1, 2, 3, 4], names)]
    path = write_nrrd(tmp_path / "s.seg.nrrd", layer, geom, key_values=_seg_kv(segs))
    seg = read_segmentation(path)
    assert seg.metadata["format"] == "slicer-seg-nrrd"
    assert seg.names() == names
    assert seg.n_layers == 1 and seg.layers.dtype == np.uint8
    assert seg.geometry.same_grid(geom, tol_mm=1e-9)
    for v, n in zip([1, 2, 3, 4], names):
        assert np.array_equal(seg.mask(n), layer == v)
        s = seg.segment(n)
        assert (s.layer, s.label_value) == (0, v)
        assert s.color == pytest.approx((0.1 * v, 0.2, 0.3))


@pytest.mark.parametrize("space", ["left-posterior-superior", "right-anterior-superior"])
@pytest.mark.parametrize("encoding", ["gzip", "raw"])
def test_seg_nrrd_4d_layers_cropped_oblique(tmp_path, space, encoding):
    """4-D layers with repeated label values, cropped + offset extent, oblique, RAS/LPS."""
    image = _geom((30, 26, 12), (0.9, 0.9, 3.3), (-40.0, 22.0, 150.0), OBLIQUE)
    full0 = _blobs(image.shape, [1, 2], seed=5)                       # layer 0: labels 1, 2
    full1 = np.zeros(image.shape, np.uint8)
    full1[3:8, 6:15, 9:20] = 1                                        # overlaps layer 0, label 1 again
    full1[9:11, 20:24, 2:6] = 3
    # crop to the union bounding box (as Slicer does) -> offset origin
    any_vox = (full0 > 0) | (full1 > 0)
    k, j, i = np.nonzero(any_vox)
    lo = np.array([i.min(), j.min(), k.min()])
    hi = np.array([i.max(), j.max(), k.max()])
    crop = (slice(lo[2], hi[2] + 1), slice(lo[1], hi[1] + 1), slice(lo[0], hi[0] + 1))
    layers = np.stack([full0[crop], full1[crop]])
    origin = image.index_to_physical(lo.astype(float))
    cropped = Geometry(tuple(int(v) for v in hi - lo + 1), image.spacing, tuple(origin),
                       image.direction)
    segs = [("ribs", 0, 1, (1, 0, 0), _extent_of(layers[0] == 1)),
            ("lung", 0, 2, (0, 1, 0), _extent_of(layers[0] == 2)),
            ("sphere", 1, 1, (0, 0, 1), _extent_of(layers[1] == 1)),
            ("box", 1, 3, (1, 1, 0), _extent_of(layers[1] == 3))]
    kv = _seg_kv(segs)
    kv["Segmentation_ReferenceImageExtentOffset"] = " ".join(str(v) for v in lo)
    path = write_nrrd(tmp_path / "o.seg.nrrd", layers, cropped, key_values=kv,
                      encoding=encoding, space=space)
    seg = read_segmentation(path)
    assert seg.n_layers == 2
    assert [(s.name, s.layer, s.label_value) for s in seg.segments] == [
        ("ribs", 0, 1), ("lung", 0, 2), ("sphere", 1, 1), ("box", 1, 3)]
    assert seg.geometry.same_grid(cropped, tol_mm=1e-9)
    assert np.array_equal(seg.layers, layers)
    # back on the image grid every mask equals the uncropped truth
    on_image = resample_to_grid(seg, image)
    assert np.array_equal(on_image.mask("ribs"), full0 == 1)
    assert np.array_equal(on_image.mask("lung"), full0 == 2)
    assert np.array_equal(on_image.mask("sphere"), full1 == 1)
    assert np.array_equal(on_image.mask("box"), full1 == 3)


@pytest.mark.parametrize("nrrd_type", [np.int16, np.int32, np.uint16])
def test_seg_nrrd_wider_types_compacted(tmp_path, nrrd_type):
    geom = _geom((8, 7, 6), (1, 1, 1), (0, 0, 0))
    layer = _blobs(geom.shape, [1, 2], seed=2).astype(nrrd_type)
    kv = _seg_kv([("a", 0, 1, (1, 0, 0), None), ("b", 0, 2, (0, 1, 0), None)])
    seg = read_segmentation(write_nrrd(tmp_path / "t.seg.nrrd", layer, geom, key_values=kv,
                                       endian="big"))
    assert seg.layers.dtype == np.uint8
    assert np.array_equal(seg.layers[0], layer)


def test_seg_nrrd_old_slicer_without_label_value_and_layer(tmp_path):
    geom = _geom((8, 7, 6), (1, 1, 1), (0, 0, 0))
    layer = _blobs(geom.shape, [1, 2, 3], seed=4)
    kv = _seg_kv([("a", None, None, (1, 0, 0), None), ("b", None, None, (0, 1, 0), None),
                  ("c", None, None, (0, 0, 1), None)])
    with pytest.warns(SegmentationWarning, match="LabelValue is missing"):
        seg = read_segmentation(write_nrrd(tmp_path / "old3d.seg.nrrd", layer, geom,
                                           key_values=kv))
    assert [(s.layer, s.label_value) for s in seg.segments] == [(0, 1), (0, 2), (0, 3)]
    for v, n in zip([1, 2, 3], "abc"):
        assert np.array_equal(seg.mask(n), layer == v)
    # 4-D, one binary frame per segment (Slicer's rule: layer = segment index, label 1)
    frames = np.stack([(layer == v).astype(np.uint8) for v in (1, 2, 3)])
    seg4 = read_segmentation(write_nrrd(tmp_path / "old4d.seg.nrrd", frames, geom,
                                        key_values=kv))
    assert [(s.layer, s.label_value) for s in seg4.segments] == [(0, 1), (1, 1), (2, 1)]
    for v, n in zip([1, 2, 3], "abc"):
        assert np.array_equal(seg4.mask(n), layer == v)


def test_seg_nrrd_voxels_outside_extent_ignored(tmp_path):
    geom = _geom((10, 10, 5), (1, 1, 1), (0, 0, 0))
    layer = np.zeros(geom.shape, np.uint8)
    layer[1:3, 2:5, 2:6] = 1
    layer[4, 9, 9] = 1  # stray voxel outside the declared extent
    kv = _seg_kv([("a", 0, 1, (1, 0, 0), (2, 5, 2, 4, 1, 2))])
    with pytest.warns(SegmentationWarning, match="outside the segments' extents"):
        seg = read_segmentation(write_nrrd(tmp_path / "e.seg.nrrd", layer, geom, key_values=kv))
    expected = np.zeros_like(layer)
    expected[1:3, 2:5, 2:6] = 1
    assert np.array_equal(seg.layers[0], expected)


def test_seg_nrrd_legacy_common_extent_shifts_origin(tmp_path):
    """Pre-2019 4-D files: 'Segmentation_Extent' lower bound offsets file voxel 0."""
    geom = _geom((6, 5, 4), (2.0, 2.0, 3.0), (10.0, 20.0, 30.0))
    frames = np.zeros((1,) + geom.shape, np.uint8)
    frames[0, 1, 2, 3] = 1
    kv = {"Segment0_ID": "s", "Segment0_Name": "legacy", "Segment0_Extent": "3 8 4 8 5 8",
          "Segmentation_Extent": "3 8 4 8 5 8"}
    seg = read_segmentation(write_nrrd(tmp_path / "legacy.seg.nrrd", frames, geom, key_values=kv))
    k, j, i = np.nonzero(seg.mask("legacy"))
    p = seg.geometry.index_to_physical([[i[0], j[0], k[0]]])[0]
    # file voxel (3, 2, 1) is at VTK index (3 + 3, 2 + 4, 1 + 5) from the space origin
    assert np.allclose(p, [10.0 + 2 * 6, 20.0 + 2 * 6, 30.0 + 3 * 6])


def test_seg_nrrd_inconsistent_header(tmp_path):
    geom = _geom((5, 5, 5), (1, 1, 1), (0, 0, 0))
    layers = np.zeros((2,) + geom.shape, np.uint8)
    kv = _seg_kv([("a", 0, 1, (1, 0, 0), None), ("b", 5, 1, (0, 1, 0), None)])
    path = write_nrrd(tmp_path / "bad.seg.nrrd", layers, geom, key_values=kv)
    with pytest.raises(InputError, match=r"bad\.seg\.nrrd.*Segment1_Layer = 5.*2 layer"):
        read_segmentation(path)
    kv = _seg_kv([("a", 0, 1, (1, 0, 0), None), ("b", 0, 1, (0, 1, 0), None)])
    path = write_nrrd(tmp_path / "dup.seg.nrrd", layers, geom, key_values=kv)
    with pytest.raises(InputError, match=r"dup\.seg\.nrrd.*both use layer 0 label value 1"):
        read_segmentation(path)


def _raw_nrrd(path, sizes, encoding="raw", payload=None, typ="uint8", extra=""):
    dirs = " ".join("(" + ",".join("1" if r == c else "0" for r in range(3)) + ")" for c in range(3))
    if len(sizes) == 4:
        dirs = "none " + dirs
    elif len(sizes) == 2:
        dirs = "(1,0) (0,1)"
    elif len(sizes) == 5:
        dirs = "none none " + dirs
    n = int(np.prod(sizes))
    body = payload if payload is not None else bytes(n)
    header = (f"NRRD0004\ntype: {typ}\ndimension: {len(sizes)}\nspace: left-posterior-superior\n"
              f"sizes: {' '.join(map(str, sizes))}\nspace directions: {dirs}\n"
              f"encoding: {encoding}\nspace origin: (0,0,0)\n{extra}"
              "Segment0_ID:=a\nSegment0_Name:=a\nSegment0_LabelValue:=1\nSegment0_Layer:=0\n\n")
    if len(sizes) == 2:
        header = header.replace("space: left-posterior-superior", "space dimension: 2").replace(
            "space origin: (0,0,0)", "space origin: (0,0)")
    path.write_bytes(header.encode() + body)
    return path


def test_errors_name_the_file_and_say_what_to_do(tmp_path):
    with pytest.raises(InputError, match=r"nothere\.seg\.nrrd: segmentation file not found"):
        read_segmentation(tmp_path / "nothere.seg.nrrd")
    with pytest.raises(InputError, match="is a folder"):
        read_segmentation(tmp_path)
    # truncated raw and corrupt gzip
    p = _raw_nrrd(tmp_path / "trunc.seg.nrrd", [4, 4, 4], payload=bytes(10))
    with pytest.raises(InputError, match=r"trunc\.seg\.nrrd.*truncated"):
        read_segmentation(p)
    good = gzip.compress(bytes(64))
    p = _raw_nrrd(tmp_path / "cut.seg.nrrd", [4, 4, 4], encoding="gzip", payload=good[:-12])
    with pytest.raises(InputError, match=r"cut\.seg\.nrrd.*(truncated|damaged)"):
        read_segmentation(p)
    p = _raw_nrrd(tmp_path / "junk.seg.nrrd", [4, 4, 4], encoding="gzip", payload=b"x" * 40)
    with pytest.raises(InputError, match=r"junk\.seg\.nrrd.*damaged"):
        read_segmentation(p)
    p = _raw_nrrd(tmp_path / "enc.seg.nrrd", [4, 4, 4], encoding="zrl")
    with pytest.raises(InputError, match=r"enc\.seg\.nrrd.*encoding 'zrl' is not supported"):
        read_segmentation(p)
    p = _raw_nrrd(tmp_path / "two.seg.nrrd", [4, 4])
    with pytest.raises(InputError, match=r"two\.seg\.nrrd.*2 dimension"):
        read_segmentation(p)
    p = _raw_nrrd(tmp_path / "five.seg.nrrd", [2, 2, 4, 4, 4])
    with pytest.raises(InputError, match=r"five\.seg\.nrrd.*5 dimension"):
        read_segmentation(p)
    p = tmp_path / "garbage.nii.gz"
    p.write_bytes(b"\x1f\x8b" + b"not really gzip" * 10)
    with pytest.raises(InputError, match=r"garbage\.nii\.gz.*cannot read"):
        read_segmentation(p)
    p = tmp_path / "empty.nrrd"
    p.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.nrrd.*empty"):
        read_segmentation(p)
    with pytest.raises(InputError, match="either 'names' or 'convention'"):
        read_segmentation(p, names={1: "a"}, convention="totalsegmentator")
    with pytest.raises(InputError, match="unknown segmentation convention"):
        read_segmentation(p, convention="nnunet")


def test_2d_and_4d_labelmaps_rejected(tmp_path):
    img2 = sitk.GetImageFromArray(np.ones((5, 6), np.uint8))
    sitk.WriteImage(img2, str(tmp_path / "flat.nii.gz"))
    with pytest.raises(InputError, match=r"flat\.nii\.gz.*2-D.*one slice"):
        read_segmentation(tmp_path / "flat.nii.gz", names={1: "a"})
    img4 = sitk.GetImageFromArray(np.ones((3, 4, 5, 6), np.uint8), isVector=False)
    sitk.WriteImage(img4, str(tmp_path / "stack.nii.gz"))
    with pytest.raises(InputError, match=r"stack\.nii\.gz.*4-D"):
        read_segmentation(tmp_path / "stack.nii.gz", names={1: "a"})


# ============================================================================ labelmaps + names
@pytest.fixture()
def labelmap(tmp_path):
    geom = _geom((16, 14, 7), (0.8, 0.8, 3.0), (-12.0, 30.0, 80.0), OBLIQUE)
    arr = _blobs(geom.shape, [1, 2, 3, 4], seed=21).astype(np.int16)
    path = tmp_path / "labels.nii.gz"
    sitk.WriteImage(_sitk_image(arr, geom), str(path))
    return path, arr, geom


NAMES = {1: "erector_spinae_right", 2: "multifidus_right", 3: "multifidus_left",
         4: "erector_spinae_left", 7: "psoas_left"}  # 7: no voxels


def _check_named(seg, arr, keep_empty=True):
    for v in (1, 2, 3, 4):
        assert np.array_equal(seg.mask(NAMES[v]), arr == v)
        assert seg.segment(NAMES[v]).label_value == v
    if keep_empty:
        assert not seg.mask("psoas_left").any()
    else:
        assert "psoas_left" not in seg.names()
    assert json.loads(seg.metadata["absent_table_names"]) == ["psoas_left"]


def test_labelmap_names_from_dict_and_list(labelmap):
    path, arr, geom = labelmap
    seg = read_segmentation(path, names=NAMES)
    assert seg.geometry.same_grid(geom, tol_mm=1e-4, tol_dir=1e-5)
    assert seg.layers.dtype == np.uint8
    _check_named(seg, arr)
    seg = read_segmentation(path, names={v: k for k, v in NAMES.items()}, keep_empty=False)
    _check_named(seg, arr, keep_empty=False)
    seg = read_segmentation(path, names=[NAMES[1], NAMES[2], NAMES[3], NAMES[4]])
    assert seg.names() == [NAMES[v] for v in (1, 2, 3, 4)]


def test_labelmap_names_from_ctbl(labelmap, tmp_path):
    path, arr, _ = labelmap
    ctbl = tmp_path / "names.ctbl"
    ctbl.write_text("# Color table file names.ctbl\n# 6 values\n0 Background 0 0 0 0\n"
                    + "".join(f"{v} {n} {10 * v} 20 30 255\n" for v, n in NAMES.items()))
    seg = read_segmentation(path, names=ctbl)
    _check_named(seg, arr)
    assert seg.segment(NAMES[2]).color == pytest.approx((20 / 255, 20 / 255, 30 / 255))
    txt = tmp_path / "names.txt"
    txt.write_text("".join(f"{v} {n}\n" for v, n in NAMES.items()))
    _check_named(read_segmentation(path, names=txt), arr)


def test_labelmap_names_from_json(labelmap, tmp_path):
    path, arr, _ = labelmap
    j1 = tmp_path / "a.json"
    j1.write_text(json.dumps({str(k): v for k, v in NAMES.items()}))
    _check_named(read_segmentation(path, names=j1), arr)
    j2 = tmp_path / "b.json"
    j2.write_text(json.dumps({v: k for k, v in NAMES.items()}))
    _check_named(read_segmentation(path, names=j2), arr)
    j3 = tmp_path / "c.json"
    j3.write_text(json.dumps(["not", "a", "mapping", 3]))
    with pytest.raises(InputError, match=r"c\.json"):
        read_segmentation(path, names=j3)


@pytest.mark.parametrize("header,row", [
    ("value,name", "{v},{n}"),
    ("name,value", "{n},{v}"),                       # columns found by name, not position
    ("Structure;Label ID", "{n};{v}"),
    ("LabelValue,Name,Color_R,Color_G,Color_B,Color_A", "{v},{n},10,20,30,255"),  # Slicer CSV
    ("label\tname", "{v}\t{n}"),
])
def test_labelmap_names_from_csv(labelmap, tmp_path, header, row):
    path, arr, _ = labelmap
    csv_path = tmp_path / "names.csv"
    csv_path.write_text(header + "\n" + "\n".join(row.format(v=v, n=n) for v, n in NAMES.items()))
    _check_named(read_segmentation(path, names=csv_path), arr)


def test_csv_without_recognisable_columns(labelmap, tmp_path):
    path, _, _ = labelmap
    bad = tmp_path / "bad.csv"
    bad.write_text("foo,bar\n1,a\n")
    with pytest.raises(InputError, match=r"bad\.csv.*value.*name"):
        read_segmentation(path, names=bad)


def test_labelmap_without_names_warns(labelmap):
    path, arr, _ = labelmap
    with pytest.warns(SegmentationWarning, match="no segment names"):
        seg = read_segmentation(path)
    assert seg.names() == ["label_1", "label_2", "label_3", "label_4"]
    assert "no segment names" in seg.metadata["warnings"]
    assert np.array_equal(seg.mask("label_3"), arr == 3)
    with pytest.warns(SegmentationWarning, match=r"\[4\] have no name"):
        read_segmentation(path, names={1: "a", 2: "b", 3: "c"})


def test_labelmap_duplicate_names_rejected(labelmap):
    path, _, _ = labelmap
    with pytest.raises(InputError, match="used twice"):
        read_segmentation(path, names={1: "muscle", 2: "Muscle", 3: "c", 4: "d"})


def test_float_labelmaps(tmp_path):
    geom = _geom((6, 5, 4), (1, 1, 1), (0, 0, 0))
    arr = _blobs(geom.shape, [1, 2], seed=8).astype(np.float32)
    sitk.WriteImage(_sitk_image(arr, geom), str(tmp_path / "f.nii.gz"))
    seg = read_segmentation(tmp_path / "f.nii.gz", names={1: "a", 2: "b"})
    assert seg.layers.dtype == np.uint8 and np.array_equal(seg.mask("b"), arr == 2)
    arr[0, 0, 0] = 0.37
    sitk.WriteImage(_sitk_image(arr, geom), str(tmp_path / "p.nii.gz"))
    with pytest.raises(InputError, match=r"p\.nii\.gz.*non-integer values.*0\.37"):
        read_segmentation(tmp_path / "p.nii.gz", names={1: "a"})


def test_plain_nrrd_labelmap_and_mha(tmp_path):
    geom = _geom((9, 8, 5), (0.5, 0.6, 2.0), (3.0, 4.0, 5.0), OBLIQUE)
    arr = _blobs(geom.shape, [3, 300], seed=9).astype(np.uint16)
    write_nrrd(tmp_path / "lm.nrrd", arr, geom)
    seg = read_segmentation(tmp_path / "lm.nrrd", names={3: "x", 300: "y"})
    assert seg.metadata["format"] == "labelmap-nrrd" and seg.layers.dtype == np.uint16
    assert np.array_equal(seg.mask("y"), arr == 300)
    sitk.WriteImage(_sitk_image(arr, geom), str(tmp_path / "lm.mha"))
    seg = read_segmentation(tmp_path / "lm.mha", names={3: "x", 300: "y"})
    assert np.array_equal(seg.mask("x"), arr == 3)
    assert seg.geometry.same_grid(geom, tol_mm=1e-6)


def test_sitk_image_input(labelmap):
    path, arr, _ = labelmap
    img = sitk.ReadImage(str(path))
    with pytest.raises(InputError, match="needs segment names"):
        read_segmentation(img)
    seg = read_segmentation(img, names=NAMES)
    _check_named(seg, arr)


# ============================================================================ NIfTI XML extension
def _caret_xml(label_map):
    """XML as TotalSegmentator's add_label_map_to_nifti writes it."""
    colors = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]]
    pre = ('<?xml version="1.0" encoding="UTF-8"?> <CaretExtension>  <Date><![CDATA[2013-07-14T05:'
           '45:09]]></Date>   <VolumeInformation Index="0">   <LabelTable>')
    body = ""
    for k, n in label_map.items():
        rgb = colors[k % len(colors)]
        body += (f'<Label Key="{k}" Red="{rgb[0] / 255}" Green="{rgb[1] / 255}" '
                 f'Blue="{rgb[2] / 255}" Alpha="1"><![CDATA[{n}]]></Label>\n')
    post = ('  </LabelTable>  <StudyMetaDataLinkSet>  </StudyMetaDataLinkSet>  <VolumeType><![CDATA'
            '[Label]]></VolumeType>   </VolumeInformation></CaretExtension>')
    return (pre + "\n" + body + "\n" + post + "\n              ").encode()


def _with_extension(nii_path, out_path, payload, ecode=0, compress=True):
    """Insert one NIfTI-1 header extension into an uncompressed .nii written by SimpleITK."""
    raw = nii_path.read_bytes()
    hdr = bytearray(raw[:348])
    vox = int(struct.unpack("<f", bytes(hdr[108:112]))[0])
    pad = (-(len(payload) + 8)) % 16
    ext = struct.pack("<ii", len(payload) + 8 + pad, ecode) + payload + b"\x00" * pad
    hdr[108:112] = struct.pack("<f", float(352 + len(ext)))
    data = bytes(hdr) + b"\x01\x00\x00\x00" + ext + raw[vox:]
    out_path.write_bytes(gzip.compress(data) if compress else data)
    return out_path


@pytest.mark.parametrize("ecode,compress", [(0, True), (30, False)])
def test_nifti_xml_extension_names(tmp_path, ecode, compress):
    geom = _geom((10, 9, 6), (1.5, 1.5, 3.0), (5.0, -5.0, 0.0))
    arr = _blobs(geom.shape, [86, 87, 29], seed=12)
    plain = tmp_path / "plain.nii"
    sitk.WriteImage(_sitk_image(arr, geom), str(plain))
    table = {29: "vertebrae_L3", 86: "autochthon_left", 87: "autochthon_right",
             88: "iliopsoas_left"}
    out = _with_extension(plain, tmp_path / ("x.nii.gz" if compress else "x.nii"),
                          _caret_xml(table), ecode=ecode, compress=compress)
    parsed = nifti_label_table(out)
    assert {k: v[0] for k, v in parsed.items()} == table
    assert parsed[86][1] == pytest.approx((0.0, 0.0, 1.0))  # colors[86 % 4] = blue
    seg = read_segmentation(out)  # names from the file, no warning about missing names
    assert seg.names() == ["vertebrae_L3", "autochthon_left", "autochthon_right"]  # present only
    assert json.loads(seg.metadata["absent_table_names"]) == ["iliopsoas_left"]
    for v, n in table.items():
        if v != 88:
            assert np.array_equal(seg.mask(n), arr == v)
    assert read_segmentation(out, keep_empty=True).names()[-1] == "iliopsoas_left"
    # explicit names win over the extension
    with pytest.warns(SegmentationWarning, match="'names' argument takes precedence"):
        assert "m" in read_segmentation(out, names={86: "m", 87: "n", 29: "o"}).names()


def test_nifti_without_extension(tmp_path):
    geom = _geom((4, 4, 4), (1, 1, 1), (0, 0, 0))
    sitk.WriteImage(_sitk_image(np.zeros(geom.shape, np.uint8), geom), str(tmp_path / "n.nii.gz"))
    assert nifti_label_table(tmp_path / "n.nii.gz") is None


# ============================================================================ conventions
def test_totalspineseg_convention_values():
    t = {v: n for v, (n, _) in convention_table("totalspineseg").items()}
    expected = {1: "spinal_cord", 2: "spinal_canal", 50: "sacrum", 71: "disc_C7_T1",
                91: "disc_T12_L1", 100: "disc_L5_S"}
    expected.update({10 + i: f"vertebrae_C{i}" for i in range(1, 8)})
    expected.update({20 + i: f"vertebrae_T{i}" for i in range(1, 13)})
    expected.update({40 + i: f"vertebrae_L{i}" for i in range(1, 6)})
    expected.update({63 + i: f"disc_C{i + 2}_C{i + 3}" for i in range(5)})       # 63..67
    expected.update({71 + i: f"disc_T{i}_T{i + 1}" for i in range(1, 12)})       # 72..82
    expected.update({91 + i: f"disc_L{i}_L{i + 1}" for i in range(1, 5)})        # 92..95
    for v, n in expected.items():
        assert t[v] == n, v
    assert t[94] == "disc_L3_L4" and t[95] == "disc_L4_L5" and t[82] == "disc_T11_T12"
    assert set(t) - set(expected) == {46, 47}  # L6/L7 of transitional anatomy (tss_map.json)


def test_totalsegmentator_convention_values():
    t = {v: n for v, (n, _) in convention_table("TotalSegmentator").items()}
    assert len(t) == 117 and sorted(t) == list(range(1, 118))
    assert (t[25], t[26], t[27], t[31], t[32]) == ("sacrum", "vertebrae_S1", "vertebrae_L5",
                                                   "vertebrae_L1", "vertebrae_T12")
    assert (t[86], t[87], t[88], t[89]) == ("autochthon_left", "autochthon_right",
                                            "iliopsoas_left", "iliopsoas_right")
    assert len(set(t.values())) == 117


def test_convention_on_labelmap(tmp_path):
    geom = _geom((6, 6, 6), (1, 1, 1), (0, 0, 0))
    arr = np.zeros(geom.shape, np.uint8)
    arr[1:3, 1:3, 1:3] = 44
    arr[3:5, 3:5, 3:5] = 95
    sitk.WriteImage(_sitk_image(arr, geom), str(tmp_path / "tss.nii.gz"))
    seg = read_segmentation(tmp_path / "tss.nii.gz", convention="totalspineseg")
    assert seg.names() == ["vertebrae_L4", "disc_L4_L5"]
    assert np.array_equal(seg.mask("disc_L4_L5"), arr == 95)


def test_read_label_table_rejects_conflicts(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("value,name\n1,a\n1,b\n")
    with pytest.raises(InputError, match="two names"):
        read_label_table(p)


# ============================================================================ resampling
def _two_layer_seg(geom, seed=31):
    l0 = _blobs(geom.shape, [1, 2, 3], seed=seed)
    l1 = _blobs(geom.shape, [1, 5], seed=seed + 1)
    segs = [Segment("a", 0, 1), Segment("b", 0, 2), Segment("c", 0, 3), Segment("d", 1, 1),
            Segment("e", 1, 5)]
    return Segmentation(layers=np.stack([l0, l1]), geometry=geom, segments=segs,
                        source="synthetic.seg.nrrd")


SRC = _geom((21, 17, 11), (0.9, 1.1, 2.5), (-30.3, 12.1, 45.7), _rotation([0, 0, 1], 10.0))


@pytest.mark.parametrize("target", [
    # finer, shifted by a non-grid amount
    _geom((45, 37, 25), (0.45, 0.55, 1.25), np.asarray(SRC.origin) + [0.137, -0.211, 0.093],
          _rotation([0, 0, 1], 10.0)),
    # same spacing, shifted (partly outside)
    _geom((21, 17, 11), (0.9, 1.1, 2.5), np.asarray(SRC.origin) + [3.31, -2.27, 5.13],
          _rotation([0, 0, 1], 10.0)),
    # oblique, coarser in-plane
    _geom((18, 16, 14), (1.3, 1.2, 1.9), np.asarray(SRC.origin) + [-4.1, -3.3, -2.2],
          _rotation([1, 1, 0.2], 25.0)),
], ids=["finer", "shifted", "oblique"])
def test_resample_to_grid_matches_independent_nn(target):
    seg = _two_layer_seg(SRC)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SegmentationWarning)  # partial coverage is expected
        out = resample_to_grid(seg, target)
    assert out.geometry == target and out.layers.dtype == np.uint8
    assert [s.name for s in out.segments] == [s.name for s in seg.segments]
    for li in range(2):
        ref = _nn_reference(seg.layers[li], SRC, target)
        assert np.array_equal(out.layers[li], ref)
    assert out.layers.any()


def test_resample_identity_returns_the_same_object():
    """Same grid: the segmentation itself comes back, so its labelled-voxel cache is shared."""
    seg = _two_layer_seg(SRC)
    before = seg.layers.copy()
    found = seg.labelled_voxels(1)  # e.g. computed by level detection
    out = resample_to_grid(seg, SRC)
    assert out is seg and out.layers is seg.layers
    assert out.labelled_voxels(1) is found  # not recomputed by the measurement
    assert np.array_equal(seg.layers, before) and seg.metadata == {}
    # within the same_grid tolerance (1e-3 mm) counts as the same grid too
    nudged = Geometry(SRC.size, SRC.spacing, tuple(o + 2e-4 for o in SRC.origin), SRC.direction)
    assert SRC.same_grid(nudged) and resample_to_grid(seg, nudged) is seg
    # a different grid gives a new object with its own (fresh) cache
    shifted = Geometry(SRC.size, SRC.spacing, tuple(np.add(SRC.origin, 0.6)), SRC.direction)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SegmentationWarning)
        moved = resample_to_grid(seg, shifted)
    assert moved is not seg and moved.geometry == shifted
    assert moved.labelled_voxels(1) is not found
    assert np.array_equal(seg.layers, before)


def test_resample_partial_overlap_warns_with_segment_names():
    seg = _two_layer_seg(SRC)
    half = _geom((10, 17, 11), (0.9, 1.1, 2.5), SRC.origin, _rotation([0, 0, 1], 10.0))
    with pytest.warns(SegmentationWarning, match="outside the image grid"):
        resample_to_grid(seg, half)


def test_resample_no_overlap_error():
    seg = _two_layer_seg(SRC)
    far = _geom((10, 10, 10), (1, 1, 1), (500.0, 500.0, -900.0))
    with pytest.raises(InputError) as info:
        resample_to_grid(seg, far)
    msg = str(info.value)
    assert "synthetic.seg.nrrd" in msg and "does not overlap the image" in msg
    assert "x 500.0" in msg or "x 499.5" in msg  # target extent in LPS mm
    assert "(LPS mm)" in msg


def test_resample_uint16_labels_kept():
    layer = np.zeros(SRC.shape, np.uint16)
    layer[2:6, 3:9, 4:12] = 1000
    seg = Segmentation(layers=layer, geometry=SRC, segments=[Segment("big", 0, 1000)])
    target = _geom((30, 20, 12), (0.6, 0.9, 2.4), np.asarray(SRC.origin) + [0.31, 0.17, 0.23],
                   _rotation([0, 0, 1], 10.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SegmentationWarning)
        out = resample_to_grid(seg, target)
    assert out.layers.dtype == np.uint16
    assert np.array_equal(out.layers[0], _nn_reference(layer, SRC, target))


# ============================================================================ real files
def _header_text(path):
    raw = path.read_bytes()
    return raw[: raw.index(b"\n\n")].decode("utf-8")


def _segment_fields(text):
    out = {}
    for n, key, value in re.findall(r"^Segment(\d+)_(\w+):=(.*)$", text, flags=re.M):
        out.setdefault(int(n), {})[key] = value
    return out


def test_real_slicerio_single_layer(realdata):
    path = realdata / "slicerio" / "Segmentation.seg.nrrd"
    seg = read_segmentation(path)
    fields = _segment_fields(_header_text(path))
    assert seg.names() == [fields[n]["Name"] for n in sorted(fields)]
    assert len(seg.segments) == 7 and seg.n_layers == 1
    assert "lumbar vertebral column" in seg.names()
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))  # independent reader
    for s in seg.segments:
        assert s.label_value == int(fields[int(s.segment_id.split("_")[1]) - 1]["LabelValue"])
        assert int(seg.mask(s).sum()) == int(np.count_nonzero(ref == s.label_value)) > 0
    ct = Geometry.from_sitk(sitk.ReadImage(str(realdata / "slicerio" / "CTChest4.nrrd")))
    on_ct = resample_to_grid(seg, ct)
    # same grid (within 1e-3 mm / 1e-5): the segmentation itself, with its own header
    assert on_ct.geometry.same_grid(ct) and on_ct is seg
    assert np.array_equal(on_ct.layers[0], ref)


def test_real_slicerio_overlapping_layers(realdata):
    path = realdata / "slicerio" / "SegmentationOverlapping.seg.nrrd"
    seg = read_segmentation(path)
    fields = _segment_fields(_header_text(path))
    assert len(seg.segments) == 8 and seg.n_layers == 2
    assert [(s.name, s.layer, s.label_value, s.segment_id) for s in seg.segments] == [
        (f["Name"], int(f["Layer"]), int(f["LabelValue"]), f["ID"]) for _, f in sorted(fields.items())]
    sphere = seg.segment("overlapping sphere")
    ribs = seg.segment("ribs")
    assert (sphere.layer, sphere.label_value) == (1, 1) and (ribs.layer, ribs.label_value) == (0, 1)
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))  # (k, j, i, layer) vector image
    for s in seg.segments:
        expected = ref[..., s.layer] == s.label_value
        assert np.array_equal(seg.mask(s), expected)
        assert expected.sum() > 0
    assert np.any(seg.mask(sphere) & seg.mask(seg.segment("right lung")))  # real overlap
    # onto the CT grid and onto a cropped, shifted sub-grid of it (independent NN check)
    ct_img = sitk.ReadImage(str(realdata / "slicerio" / "CTChest4.nrrd"))
    ct = Geometry.from_sitk(ct_img)
    assert np.array_equal(resample_to_grid(seg, ct).layers, np.moveaxis(ref, -1, 0))
    sub = Geometry((50, 40, 20), (1.7, 2.1, 4.3),
                   tuple(np.asarray(ct.index_to_physical([30.23, 40.37, 5.11]))), ct.direction)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SegmentationWarning)
        out = resample_to_grid(seg, sub)
    for li in range(2):
        assert np.array_equal(out.layers[li], _nn_reference(seg.layers[li], seg.geometry, sub))


def test_real_totalsegmentator_xml_names(realdata):
    path = realdata / "totalsegmentator" / "example_seg_fast_force_split.nii.gz"
    # independent parse of the XML: regex over the decompressed header bytes
    head = gzip.open(path).read(20000)
    truth = {int(k): n for k, n in re.findall(
        rb'<Label Key="(\d+)"[^>]*><!\[CDATA\[([^\]]*)\]\]></Label>', head)}
    truth = {k: v.decode() for k, v in truth.items()}
    assert len(truth) == 117
    with warnings.catch_warnings():
        warnings.simplefilter("error", SegmentationWarning)  # names known: no warning
        seg = read_segmentation(path)
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    values, counts = np.unique(ref, return_counts=True)
    expected = {int(v): int(c) for v, c in zip(values, counts) if v != 0}
    assert {s.label_value: int(seg.mask(s).sum()) for s in seg.segments} == expected
    assert {s.label_value: s.name for s in seg.segments} == {v: truth[v] for v in expected}
    for name in ["vertebrae_L1", "vertebrae_L2", "vertebrae_L3", "vertebrae_L4", "vertebrae_L5",
                 "autochthon_left", "autochthon_right", "iliopsoas_left", "iliopsoas_right"]:
        assert seg.mask(name).sum() > 0, name
    assert seg.geometry.same_grid(Geometry.from_sitk(sitk.ReadImage(str(path))))
    # the built-in convention agrees with what TotalSegmentator wrote into the file
    conv = convention_table("totalsegmentator")
    assert all(conv[v][0] == truth[v] for v in truth)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SegmentationWarning)
        seg2 = read_segmentation(path, convention="totalsegmentator")
    assert seg2.names() == seg.names()


def test_real_myosegmentum_labels_with_names(realdata, tmp_path):
    path = realdata / "myosegmentum" / "TUM01_label_L2-L5.nii.gz"
    names = {1: "erector_spinae_right", 2: "multifidus_right", 3: "multifidus_left",
             4: "erector_spinae_left"}
    j = tmp_path / "names.json"
    j.write_text(json.dumps(names))
    seg = read_segmentation(path, names=j)
    img = sitk.ReadImage(str(path))
    ref = sitk.GetArrayFromImage(img)
    assert seg.geometry.same_grid(Geometry.from_sitk(img))
    for v, n in names.items():
        assert np.array_equal(seg.mask(n), ref == v)
    # README regression: right ES 203.1 mL
    vol_ml = seg.mask("erector_spinae_right").sum() * seg.geometry.voxel_volume_mm3() / 1000
    assert vol_ml == pytest.approx(203.1, abs=0.05)


def test_real_tptbox_pir_orientation(realdata):
    path = realdata / "tptbox" / "sub-ct_seg-vert_label-22_msk.nii.gz"
    img = sitk.ReadImage(str(path))
    with pytest.warns(SegmentationWarning, match="no segment names"):
        seg = read_segmentation(path)
    assert seg.geometry.same_grid(Geometry.from_sitk(img))
    ref = sitk.GetArrayFromImage(img)
    assert sorted(s.label_value for s in seg.segments) == sorted(
        int(v) for v in np.unique(ref) if v)
    for s in seg.segments:
        assert np.array_equal(seg.mask(s), ref == s.label_value)


def test_real_dicom_seg_is_never_an_anonymous_labelmap(realdata, tmp_path):
    pytest.importorskip("highdicom")
    src = realdata / "highdicom" / "seg_image_ct_binary_overlap.dcm"
    # SimpleITK alone sees an anonymous 0/255 volume: the trap we must avoid
    assert set(np.unique(sitk.GetArrayFromImage(sitk.ReadImage(str(src))))) == {0, 255}
    renamed = tmp_path / "looks_like_a_labelmap.nrrd"
    shutil.copy(src, renamed)
    for p in (src, renamed):
        with pytest.warns(SegmentationWarning, match="names its own segments"):
            seg = read_segmentation(p, names={255: "anonymous"})
        assert seg.metadata["format"] == "dicom-seg"
        assert seg.names() == ["first segment", "second segment"]
        assert all(s.label_value != 255 for s in seg.segments)


def test_real_dicom_image_is_not_a_segmentation(realdata):
    with pytest.raises(InputError, match=r"ct_image\.dcm: is a DICOM CT.*not a segmentation"):
        read_segmentation(realdata / "highdicom" / "ct_image.dcm")


def test_real_ct_image_is_not_taken_for_a_labelmap(realdata):
    with pytest.raises(InputError, match=r"example_ct\.nii\.gz.*looks like an image"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SegmentationWarning)  # negative HU warning
            read_segmentation(realdata / "totalsegmentator" / "example_ct.nii.gz")


def test_truncated_nifti_is_an_error_not_zero_filled(tmp_path):
    """SimpleITK reads truncated NIfTI files silently (zero-filled); we must not."""
    geom = _geom((40, 30, 20), (1, 1, 1), (0, 0, 0))
    arr = _blobs(geom.shape, [1, 2, 3], seed=17)
    sitk.WriteImage(_sitk_image(arr, geom), str(tmp_path / "full.nii"))
    full = (tmp_path / "full.nii").read_bytes()
    (tmp_path / "cut.nii").write_bytes(full[:-5000])
    img = sitk.ReadImage(str(tmp_path / "cut.nii"))  # the hazard: no error from SimpleITK
    assert img.GetSize() == geom.size
    with pytest.raises(InputError, match=r"cut\.nii: .*19000 bytes.*declares 24000.*truncated"):
        read_segmentation(tmp_path / "cut.nii", names={1: "a"})
    gz = gzip.compress(full)
    (tmp_path / "cut.nii.gz").write_bytes(gz[: len(gz) // 2])
    with pytest.raises(InputError, match=r"cut\.nii\.gz: the gzip-compressed file is truncated"):
        read_segmentation(tmp_path / "cut.nii.gz", names={1: "a"})
    (tmp_path / "ok.nii.gz").write_bytes(gz)
    assert np.array_equal(read_segmentation(tmp_path / "ok.nii.gz", names={1: "a", 2: "b",
                                                                       3: "c"}).layers[0], arr)


def test_convention_disagreeing_with_file_names_warns(tmp_path):
    """A TotalSegmentator v1 file (100 = autochthon_left) read with the v2 convention."""
    geom = _geom((6, 6, 6), (1, 1, 1), (0, 0, 0))
    arr = np.zeros(geom.shape, np.uint8)
    arr[1:4, 1:4, 1:4] = 100
    sitk.WriteImage(_sitk_image(arr, geom), str(tmp_path / "v1.nii"))
    out = _with_extension(tmp_path / "v1.nii", tmp_path / "v1.nii.gz",
                          _caret_xml({100: "autochthon_left"}))
    with pytest.warns(SegmentationWarning, match="disagree with convention 'totalsegmentator'.*"
                      "100: file 'autochthon_left' vs convention 'rib_left_9'"):
        seg = read_segmentation(out, convention="totalsegmentator")
    assert seg.names() == ["rib_left_9"]  # explicit convention used, but the user was warned
    assert read_segmentation(out).names() == ["autochthon_left"]


def test_nifti_sibling_file_is_not_read_instead(tmp_path):
    """SimpleITK asked for x.nii.gz reads x.nii when both exist; we must read x.nii.gz."""
    geom = _geom((6, 6, 6), (1, 1, 1), (0, 0, 0))
    wanted = np.zeros(geom.shape, np.uint8)
    wanted[1:4, 1:4, 1:4] = 5
    sitk.WriteImage(_sitk_image(wanted, geom), str(tmp_path / "x.nii.gz"))
    sitk.WriteImage(_sitk_image(np.full(geom.shape, 7, np.uint8), geom), str(tmp_path / "x.nii"))
    assert set(np.unique(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "x.nii.gz"))))) \
        == {7}  # the hazard
    seg = read_segmentation(tmp_path / "x.nii.gz", names={5: "m"})
    assert np.array_equal(seg.layers[0], wanted)
    assert np.array_equal(read_segmentation(tmp_path / "x.nii", names={7: "n"}).mask("n"),
                          np.ones(geom.shape, bool))

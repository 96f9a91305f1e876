"""DICOM SEG reader against independent truths.

* an independent pydicom decode: raw ``PixelData`` bytes unpacked with numpy
  (``np.unpackbits``, little bit order, for BINARY; bytes for FRACTIONAL),
  per-frame ``ImagePositionPatient`` and the shared orientation / pixel spacing,
  giving the LPS position of every segment pixel;
* dcmqi's own NRRD exports of the same segmentations (``liver_seg.nrrd``,
  ``partial_overlaps-1/2/3.nrrd``), read with SimpleITK;
* the referenced CT images (pixel centres must coincide with SEG voxel centres).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from ParaspinalFatLib.errors import InputError
from ParaspinalFatLib.geometry import Geometry
from ParaspinalFatLib.io.segmentation_files import read_segmentation
from ParaspinalFatLib.io.resample import resample_to_grid

hd = pytest.importorskip("highdicom", reason="highdicom (optional extra 'dicomseg') not installed")
pydicom = pytest.importorskip("pydicom")

from ParaspinalFatLib.io.dicom_seg import cielab_to_rgb, read_dicom_seg  # noqa: E402

HIGHDICOM_SEGS = {
    "seg_image_ct_binary.dcm": ["first segment"],
    "seg_image_ct_binary_overlap.dcm": ["first segment", "second segment"],
    "seg_image_ct_binary_single_frame.dcm": ["first segment"],
    "seg_image_ct_binary_fractional.dcm": ["first segment"],
    "seg_image_ct_true_fractional.dcm": ["first segment"],
}


# ----------------------------------------------------------------------------- independent decode
def _independent_points(path: Path, threshold: float = 0.5):
    """{segment number: (N, 3) LPS positions of its pixels} from raw pydicom data."""
    ds = pydicom.dcmread(str(path))
    assert str(ds.file_meta.TransferSyntaxUID) in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")
    n, rows, cols = int(getattr(ds, "NumberOfFrames", 1)), int(ds.Rows), int(ds.Columns)
    raw = np.frombuffer(ds.PixelData, dtype=np.uint8)
    if int(ds.BitsAllocated) == 1:
        pixels = np.unpackbits(raw, bitorder="little")[: n * rows * cols].reshape(n, rows, cols)
        inside = pixels == 1
    else:
        assert int(ds.BitsAllocated) == 8
        pixels = raw[: n * rows * cols].reshape(n, rows, cols)
        inside = pixels / float(ds.MaximumFractionalValue) >= threshold
    shared = ds.SharedFunctionalGroupsSequence[0]
    iop = [float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient]
    row_cos, col_cos = np.array(iop[:3]), np.array(iop[3:])
    dr, dc = [float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing]
    out = {}
    for f, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        number = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        ipp = np.array([float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient])
        r, c = np.nonzero(inside[f])
        pts = ipp + np.outer(c * dc, row_cos) + np.outer(r * dr, col_cos)
        out.setdefault(number, []).append(pts)
    return {k: np.concatenate(v) for k, v in out.items()}, ds


def _points_of(seg, segment):
    k, j, i = np.nonzero(seg.mask(segment))
    return seg.geometry.index_to_physical(np.stack([i, j, k], axis=1).astype(float))


def _same_points(a, b, tol=1e-3):
    if len(a) != len(b):
        return False
    if len(a) == 0:
        return True
    ka = np.lexsort(np.round(a / 0.01).T)
    kb = np.lexsort(np.round(b / 0.01).T)
    return np.allclose(a[ka], b[kb], atol=tol)


# ----------------------------------------------------------------------------- highdicom files
@pytest.mark.parametrize("filename", sorted(HIGHDICOM_SEGS))
def test_highdicom_segs_match_independent_decode(realdata, filename):
    path = realdata / "highdicom" / filename
    seg = read_segmentation(path)
    truth, ds = _independent_points(path)
    assert seg.metadata["format"] == "dicom-seg"
    assert seg.names() == HIGHDICOM_SEGS[filename]
    assert seg.names() == [str(s.SegmentLabel) for s in ds.SegmentSequence]
    for s in seg.segments:
        assert s.label_value == int(s.segment_id)
        expected = truth.get(s.label_value, np.zeros((0, 3)))
        assert len(expected) > 0
        assert _same_points(_points_of(seg, s), expected), (filename, s.name)
    # never an anonymous 0/255 volume
    assert all(s.label_value in (1, 2) for s in seg.segments)


def test_fractional_threshold_parameter(realdata):
    path = realdata / "highdicom" / "seg_image_ct_true_fractional.dcm"
    ds = pydicom.dcmread(str(path))
    values = np.frombuffer(ds.PixelData, dtype=np.uint8)
    assert set(np.unique(values)) == {0, 64, 128}  # true fractions: 0.25 and 0.5
    for thr in (0.5, 0.25, 0.9):
        seg = read_dicom_seg(path, fractional_threshold=thr)
        truth, _ = _independent_points(path, threshold=thr)
        got = _points_of(seg, seg.segments[0])
        assert _same_points(got, truth.get(1, np.zeros((0, 3))))
        assert len(got) == int(np.count_nonzero(values / 255.0 >= thr))
    assert read_dicom_seg(path).metadata["fractional_threshold"] == "0.5"
    with pytest.raises(InputError, match="fractional_threshold"):
        read_dicom_seg(path, fractional_threshold=0)


def test_overlapping_segments_go_to_separate_layers(realdata):
    seg = read_segmentation(realdata / "highdicom" / "seg_image_ct_binary_overlap.dcm")
    first, second = seg.segments
    assert np.any(seg.mask(first) & seg.mask(second))
    assert first.layer == 0 and second.layer == 1 and seg.n_layers == 2


def _ct_planes(files):
    planes = []
    for f in files:
        d = pydicom.dcmread(str(f))
        planes.append((np.array([float(v) for v in d.ImagePositionPatient]),
                       np.array([float(v) for v in d.ImageOrientationPatient]),
                       np.array([float(v) for v in d.PixelSpacing]), int(d.Rows), int(d.Columns)))
    return planes


def _assert_aligned(seg, planes):
    """Every SEG slice containing voxels lies on a CT image with identical pixel centres."""
    g = seg.geometry
    used = np.nonzero(seg.layers.any(axis=(0, 2, 3)))[0]
    assert used.size
    for k in used:
        corner = g.index_to_physical([0.0, 0.0, float(k)])
        far = g.index_to_physical([g.size[0] - 1.0, g.size[1] - 1.0, float(k)])
        match = [p for p in planes if np.allclose(p[0], corner, atol=1e-3)]
        assert match, f"SEG slice {k} at {corner} matches no CT image"
        ipp, iop, ps, rows, cols = match[0]
        ct_far = ipp + (cols - 1) * ps[1] * iop[:3] + (rows - 1) * ps[0] * iop[3:]
        assert (rows, cols) == (g.size[1], g.size[0])
        assert np.allclose(ct_far, far, atol=1e-3)


@pytest.mark.parametrize("filename", [f for f in sorted(HIGHDICOM_SEGS) if "single" not in f])
def test_highdicom_segs_align_with_ct2(realdata, filename):
    seg = read_segmentation(realdata / "highdicom" / filename)
    _assert_aligned(seg, _ct_planes(sorted((realdata / "highdicom" / "CT2_pydicom").iterdir())))


def test_single_frame_seg_aligns_with_ct_image(realdata):
    seg = read_segmentation(realdata / "highdicom" / "seg_image_ct_binary_single_frame.dcm")
    assert seg.geometry.size[2] == 1
    _assert_aligned(seg, _ct_planes([realdata / "highdicom" / "ct_image.dcm"]))
    # single slice: thickness from SpacingBetweenSlices (5 mm), not invented
    assert seg.geometry.spacing[2] == pytest.approx(5.0)


# ----------------------------------------------------------------------------- dcmqi files
def test_dcmqi_liver_voxel_for_voxel(realdata):
    seg = read_segmentation(realdata / "dcmqi" / "liver.dcm")
    assert seg.names() == ["Liver"]
    ref_img = sitk.ReadImage(str(realdata / "dcmqi" / "liver_seg.nrrd"))
    ref = sitk.GetArrayFromImage(ref_img)
    ref_geom = Geometry.from_sitk(ref_img)
    # slice spacing from the positions (1.0 mm), not SliceThickness (1.25 mm in the CT)
    assert seg.geometry.spacing[2] == pytest.approx(1.0, abs=1e-4)
    assert seg.geometry.same_grid(ref_geom)
    assert np.array_equal(seg.mask("Liver"), ref == 1)
    on_ref = resample_to_grid(seg, ref_geom)
    assert np.array_equal(on_ref.mask("Liver"), ref == 1)
    assert int(on_ref.mask("Liver").sum()) == 107098
    truth, _ = _independent_points(realdata / "dcmqi" / "liver.dcm")
    assert _same_points(_points_of(seg, seg.segment("Liver")), truth[1])
    _assert_aligned(seg, _ct_planes(sorted((realdata / "dcmqi" / "ct-3slice").iterdir())))


def test_dcmqi_partial_overlaps(realdata):
    seg = read_segmentation(realdata / "dcmqi" / "partial_overlaps.dcm")
    assert seg.names() == ["GREEN", "ORANGE", "PURPLE", "LIGHT_BLUE", "DARK_BLUE"]
    found = {}
    for n in (1, 2, 3):
        img = sitk.ReadImage(str(realdata / "dcmqi" / f"partial_overlaps-{n}.nrrd"))
        ref = sitk.GetArrayFromImage(img)
        on_ref = resample_to_grid(seg, Geometry.from_sitk(img))
        for value in np.unique(ref):
            if value == 0:
                continue
            s = [x for x in seg.segments if x.label_value == int(value)][0]
            assert np.array_equal(on_ref.mask(s), ref == value), (n, s.name)
            found[int(value)] = s.name
    assert sorted(found) == [1, 2, 3, 4, 5]
    # greedy packing: a segment in layer L > 0 overlaps something in every lower layer
    for s in seg.segments:
        for lower in range(s.layer):
            others = [o for o in seg.segments if o.layer == lower]
            assert any(np.any(seg.mask(s) & seg.mask(o)) for o in others), s.name
    truth, _ = _independent_points(realdata / "dcmqi" / "partial_overlaps.dcm")
    for s in seg.segments:
        assert _same_points(_points_of(seg, s), truth[s.label_value]), s.name


# ----------------------------------------------------------------------------- LABELMAP, errors
def test_labelmap_seg_written_by_highdicom(realdata, tmp_path):
    if not hasattr(hd.seg.SegmentationTypeValues, "LABELMAP"):
        pytest.skip(f"highdicom {hd.__version__} cannot write LABELMAP SEGs")
    from pydicom.sr.codedict import codes

    files = sorted((realdata / "highdicom" / "CT2_pydicom").iterdir())
    src = sorted((pydicom.dcmread(str(f)) for f in files),
                 key=lambda d: float(d.ImagePositionPatient[2]))[1:]  # the 3 contiguous slices
    arr = np.zeros((3, 16, 16), np.uint8)
    arr[0, 2:5, 3:9] = 1
    arr[1, 4:10, 4:6] = 2
    arr[2, 1:3, 1:3] = 1
    descriptions = [hd.seg.SegmentDescription(
        segment_number=n, segment_label=label, segmented_property_category=codes.SCT.Tissue,
        segmented_property_type=codes.SCT.Muscle,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
        for n, label in ((1, "multifidus_left"), (2, "multifidus_right"))]
    out = hd.seg.Segmentation(
        source_images=src, pixel_array=arr,
        segmentation_type=hd.seg.SegmentationTypeValues.LABELMAP,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=2,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="test",
        manufacturer_model_name="test", software_versions="1", device_serial_number="1")
    path = tmp_path / "labelmap_seg.dcm"
    out.save_as(str(path))
    seg = read_segmentation(path)
    assert seg.metadata["segmentation_type"] == "LABELMAP"
    assert seg.names() == ["multifidus_left", "multifidus_right"]
    z = [float(d.ImagePositionPatient[2]) for d in src]
    for value, name in ((1, "multifidus_left"), (2, "multifidus_right")):
        pts = _points_of(seg, seg.segment(name))
        f, r, c = np.nonzero(arr == value)
        ipp = np.array([[float(v) for v in src[i].ImagePositionPatient] for i in f])
        ps = [float(v) for v in src[0].PixelSpacing]
        expected = ipp + np.stack([c * ps[1], r * ps[0], np.zeros_like(c)], axis=1)
        assert _same_points(pts, expected)
        assert set(np.round(pts[:, 2], 3)) <= set(np.round(z, 3))


def test_missing_highdicom_message(realdata, monkeypatch):
    monkeypatch.setitem(sys.modules, "highdicom", None)
    from ParaspinalFatLib.errors import MissingDependencyError

    with pytest.raises(MissingDependencyError, match=r"'highdicom'.*liver\.dcm.*pip install paraspinalfat\[dicomseg\]"
                       r".*slicer\.util\.pip_install\('highdicom'\)"):
        read_segmentation(realdata / "dcmqi" / "liver.dcm")


def test_cielab_conversion_known_colours():
    # DICOM CIELab of pure sRGB red / white (values as written by dcmqi/Slicer)
    assert cielab_to_rgb([65535, 32896, 32896]) == pytest.approx((1.0, 1.0, 1.0), abs=0.01)
    assert cielab_to_rgb([34891, 53479, 50166]) == pytest.approx((1.0, 0.0, 0.0), abs=0.02)


def test_detection_without_pydicom_uses_simpleitk_tags(realdata, monkeypatch):
    """Routing must not depend on pydicom: SimpleITK's 0008|0016 / 0008|0060 tags suffice."""
    import ParaspinalFatLib.io.dicom_seg as dicom_seg

    monkeypatch.setattr(dicom_seg, "_pydicom_sop_class", lambda p, force=False: None)
    seg = read_segmentation(realdata / "highdicom" / "seg_image_ct_binary.dcm")
    assert seg.metadata["format"] == "dicom-seg" and seg.names() == ["first segment"]
    with pytest.raises(InputError, match="not a segmentation"):
        read_segmentation(realdata / "highdicom" / "ct_image.dcm")
    assert dicom_seg.dicom_object_class(realdata / "dcmqi" / "liver.dcm") == (
        "1.2.840.10008.5.1.4.1.1.66.4", "SEG")

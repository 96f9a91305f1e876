"""QC pictures and the fat/lean labelmap written by measure()."""
import numpy as np
import pytest
import SimpleITK as sitk

pytest.importorskip("matplotlib")
from matplotlib.image import imread  # noqa: E402

from ParaspinalFatLib import measure  # noqa: E402
from ParaspinalFatLib.io.segmentation_files import read_segmentation  # noqa: E402
from ParaspinalFatLib.phantom import make_phantom  # noqa: E402
from ParaspinalFatLib.report.qc_pictures import DEFAULT_FAT_COLOR, read_qc_info, voxel_to_pixel  # noqa: E402


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    out = tmp_path_factory.mktemp("qc")
    ph = make_phantom(mode="2d", crop_segmentation=False, tilt_deg=4.0)
    res = measure(ph.image, ph.segmentation, subject="p7", qc_dir=out, fat_labelmap=out / "classes.seg.nrrd")
    return ph, res, out


def test_qc_png_shows_fat_colour_at_a_known_fat_voxel(case):
    ph, res, out = case
    png = out / "p7_L4-5_slice18.png"
    assert png.is_file() and (out / "p7_sagittal.png").is_file()
    pdff = sitk.GetArrayFromImage(ph.image).astype(float)  # stored 0-100
    mask = ph.segmentation.mask("MF_L_L4/5")[18]
    fat_j, fat_i = np.argwhere(mask & (pdff[18] >= 50))[0]
    lean_j, lean_i = np.argwhere(mask & (pdff[18] < 50))[0]
    rgb = imread(str(png))[..., :3]
    r, c = voxel_to_pixel(png, fat_j, fat_i)
    np.testing.assert_allclose(rgb[r, c], DEFAULT_FAT_COLOR, atol=1.5 / 255)
    r, c = voxel_to_pixel(png, lean_j, lean_i)
    assert rgb[r, c, 0] == pytest.approx(rgb[r, c, 1]) == pytest.approx(rgb[r, c, 2])  # grey: lean
    # PDFF window 0-100 %: a lean voxel of value v is drawn at grey level v / 100
    assert rgb[r, c, 0] == pytest.approx(pdff[18, lean_j, lean_i] / 100, abs=1.5 / 255)
    assert read_qc_info(png).window == pytest.approx((0.0, 100.0))


def test_class_labelmap_matches_the_fat_call(case):
    ph, res, out = case
    seg = read_segmentation(out / "classes.seg.nrrd")
    assert seg.names() == ["lean", "undefined", "fat"]
    fat = seg.mask("fat")
    lean = seg.mask("lean")
    pdff = sitk.GetArrayFromImage(ph.image).astype(float)
    rois = np.zeros(fat.shape, bool)
    for s in ph.segmentation.segments:
        rois |= ph.segmentation.mask(s)
    np.testing.assert_array_equal(fat, rois & (pdff >= 50))
    np.testing.assert_array_equal(lean, rois & (pdff < 50))
    assert seg.geometry.same_grid(type(seg.geometry).from_sitk(ph.image))
    # and the table agrees with the labelmap
    assert res.levels["fat_csa_mm2"].sum() == pytest.approx(fat.sum() * 1.25 * 1.3)


def test_plain_labelmap_values(tmp_path):
    ph = make_phantom(mode="2d", crop_segmentation=False)
    measure(ph.image, ph.segmentation, fat_labelmap=tmp_path / "classes.nii.gz")
    lab = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "classes.nii.gz")))
    pdff = sitk.GetArrayFromImage(ph.image).astype(float)
    rois = ph.segmentation.layers[0] > 0
    np.testing.assert_array_equal(lab == 3, rois & (pdff >= 50))
    np.testing.assert_array_equal(lab == 1, rois & (pdff < 50))
    assert set(np.unique(lab)) <= {0, 1, 3}


def test_qc_is_radiological_for_a_pir_volume(tmp_path):
    """A PIR volume (i->P, j->I, k->R): a left-posterior ROI must appear bottom-right."""
    from ParaspinalFatLib.geometry import Geometry
    from ParaspinalFatLib.segmentation import Segment, Segmentation

    d = np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0]], float)  # columns: i -> P, j -> I, k -> R (LPS)
    shape = (30, 20, 40)  # numpy (k, j, i)
    arr = np.full(shape, 5.0, np.float32)
    lab = np.zeros(shape, np.uint8)
    lab[2:8, 10, 30:38] = 1  # small k = patient left, large i = posterior
    arr[lab == 1] = 90.0  # all fat
    arr[0, 0, 0] = 100.0  # a full-scale voxel for the PDFF scale
    img = sitk.GetImageFromArray(arr)
    img.SetDirection(d.ravel().tolist())
    img.SetSpacing((1.0, 4.0, 1.0))
    seg = Segmentation(lab, Geometry.from_sitk(img), [Segment("multifidus_left_L4/5", 0, 1)])
    measure(img, seg, pdff_scale="0-100", qc_dir=tmp_path, subject="pir")
    png = next(tmp_path.glob("pir_L4-5_slice*.png"))
    info = read_qc_info(png)
    rgb = imread(str(png))[..., :3]
    box = rgb[info.image_top: info.image_top + info.image_height, info.image_left: info.image_left + info.image_width]
    yellow = np.all(np.abs(box - np.asarray(DEFAULT_FAT_COLOR)) < 2 / 255, axis=-1)
    rows, cols = np.nonzero(yellow)
    assert rows.size > 0
    assert rows.mean() > box.shape[0] / 2  # posterior: lower half
    assert cols.mean() > box.shape[1] / 2  # patient left: viewer's right


def test_negative_labels_are_refused():
    from ParaspinalFatLib.errors import InputError
    from ParaspinalFatLib.geometry import Geometry
    from ParaspinalFatLib.segmentation import Segment, Segmentation

    lab = np.zeros((3, 4, 4), np.int16)
    lab[1, 1, 1] = -1
    geom = Geometry((4, 4, 3), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    with pytest.raises(InputError, match="negative label"):
        Segmentation(lab, geom, [Segment("multifidus_left", 0, 1)])

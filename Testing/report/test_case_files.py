"""Files a run writes: QC pictures and the fat/lean labelmap written by measure(); the CSV
writer (formula defusing, permissions) and OutputSet (all files of a run or none)."""
import csv
import errno
import os

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

try:
    from matplotlib.image import imread
except ImportError:  # pragma: no cover - matplotlib is optional
    imread = None

from ParaspinalFatLib import measure
from ParaspinalFatLib.errors import InputError
from ParaspinalFatLib.io.segmentation_files import read_segmentation
from ParaspinalFatLib.phantom import make_phantom
from ParaspinalFatLib.report import case_files
from ParaspinalFatLib.report.case_files import (
    OutputSet, check_labelmap_path, check_output_file, check_output_folder, defuse_formulas, write_csv_atomic,
)
from ParaspinalFatLib.report.qc_pictures import DEFAULT_FAT_COLOR, read_qc_info, voxel_to_pixel

needs_matplotlib = pytest.mark.skipif(imread is None, reason="matplotlib is not installed")


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    pytest.importorskip("matplotlib")
    out = tmp_path_factory.mktemp("qc")
    ph = make_phantom(mode="2d", crop_segmentation=False, tilt_deg=4.0)
    res = measure(ph.image, ph.segmentation, subject="p7", qc_dir=out, fat_labelmap=out / "classes.seg.nrrd")
    return ph, res, out


@needs_matplotlib
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


@needs_matplotlib
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


@needs_matplotlib
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


# --------------------------------------------------------------------------- CSV cells
PAYLOADS = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd", "=", "-", "+-1", "-1-",
            "-1e", "--1", "@", "=1"]


def _csv_rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


@pytest.mark.parametrize("text", PAYLOADS)
def test_formula_text_gets_a_visible_quote(tmp_path, text):
    df = pd.DataFrame({"segment": [text, "multifidus_left"], "csa_mm2": [-3.5, 412.25]})
    out = defuse_formulas(df)
    assert out["segment"].tolist() == ["'" + text, "multifidus_left"]
    assert df["segment"].tolist() == [text, "multifidus_left"]  # the caller's table is not modified
    write_csv_atomic(df, tmp_path / "t.csv")
    assert _csv_rows(tmp_path / "t.csv") == [["segment", "csa_mm2"], ["'" + text, "-3.5"], ["multifidus_left", "412.25"]]
    back = pd.read_csv(tmp_path / "t.csv")
    assert back["segment"].tolist() == ["'" + text, "multifidus_left"]
    assert back["csa_mm2"].tolist() == [-3.5, 412.25]


@pytest.mark.parametrize("text", ["-3.5", "+2e-3", "-0", ".5", "-.5E+7", "12", "-1."])
def test_plain_numbers_in_text_cells_are_not_quoted(text):
    out = defuse_formulas(pd.DataFrame({"subject": [text, "=1"]}))
    assert out["subject"].tolist() == [text, "'=1"]


def test_numbers_and_missing_values_stay_as_they_are(tmp_path):
    values = [-3.5, -0.0, -1e-300, np.nan, -np.inf, 7.0]
    df = pd.DataFrame({
        "mean": values,
        "n_voxels": np.array([-1, 0, 2, 3, 4, -5], dtype=np.int64),
        "flag": [True, False, True, True, False, False],
        "mixed": [None, -2.0, 3, "-x", "ok", np.nan],  # object column: only the str cell changes
        "cat": pd.Categorical(["=a", "b", "=a", "b", "b", "b"]),
        "string": pd.array(["@x", None, "y", "z", "+1", "-A1"], dtype="string"),
    })
    out = defuse_formulas(df)
    assert out["mean"] is not None and out["mean"].equals(df["mean"])
    assert out["n_voxels"].equals(df["n_voxels"]) and out["flag"].equals(df["flag"])
    assert out["mixed"].tolist()[1:5] == [-2.0, 3, "'-x", "ok"] and out["mixed"][0] is None
    assert out["cat"].tolist() == ["'=a", "b", "'=a", "b", "b", "b"]
    assert out["string"].tolist()[0] == "'@x" and out["string"].tolist()[4:] == ["+1", "'-A1"]
    write_csv_atomic(df, tmp_path / "t.csv")
    back = pd.read_csv(tmp_path / "t.csv")
    np.testing.assert_array_equal(back["mean"], values)  # -0.0, -1e-300, -inf round-trip exactly
    assert np.signbit(back["mean"][1])
    assert back["n_voxels"].tolist() == [-1, 0, 2, 3, 4, -5]


def test_nothing_to_defuse_returns_the_same_table():
    df = pd.DataFrame({"segment": ["multifidus_left"], "mean": [-3.5]})
    assert defuse_formulas(df) is df


def test_column_names_are_defused_too():
    df = pd.DataFrame([[1.0, 2.0]], columns=["=cmd L4/5 csa_mm2", "psoas L4/5 left csa_mm2"])
    assert list(defuse_formulas(df).columns) == ["'=cmd L4/5 csa_mm2", "psoas L4/5 left csa_mm2"]


@pytest.mark.parametrize("name", ["MF\rL", "MF\nL", "MF\r\nL", "\r", "a,b", 'say "hi"'])
def test_a_line_break_inside_a_cell_does_not_split_the_row(tmp_path, name):
    df = pd.DataFrame({"segment": [name, "next"], "csa_mm2": [1.5, -2.5]})
    write_csv_atomic(df, tmp_path / "t.csv")
    expected = "'" + name if name[:1] in ("\r",) else name
    assert _csv_rows(tmp_path / "t.csv") == [["segment", "csa_mm2"], [expected, "1.5"], ["next", "-2.5"]]
    back = pd.read_csv(tmp_path / "t.csv")
    assert back["segment"].tolist() == [expected, "next"] and back["csa_mm2"].tolist() == [1.5, -2.5]


# --------------------------------------------------------------------------- write_csv_atomic
@pytest.mark.parametrize("umask", [0o022, 0o002, 0o027, 0o077, 0o000], ids=["022", "002", "027", "077", "000"])
def test_csv_permissions_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        write_csv_atomic(pd.DataFrame({"a": [1]}), tmp_path / "new.csv")
        (tmp_path / "old.csv").write_text("x\n")
        os.chmod(tmp_path / "old.csv", 0o600)
        write_csv_atomic(pd.DataFrame({"a": [1]}), tmp_path / "old.csv")  # replacing a 0600 file
    finally:
        os.umask(old)
    for name in ("new.csv", "old.csv"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask


def test_csv_writer_failure_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "case.csv"
    target.write_bytes(b"old,run\r\n1,2\r\n")

    def disk_full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", disk_full)
    with pytest.raises(InputError, match="No space left on device") as info:
        write_csv_atomic(pd.DataFrame({"a": [1]}), target)
    assert str(target) in str(info.value)
    assert target.read_bytes() == b"old,run\r\n1,2\r\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case.csv"]


def test_csv_to_a_folder_is_refused(tmp_path):
    (tmp_path / "case.csv").mkdir()
    with pytest.raises(InputError, match="this is a folder"):
        write_csv_atomic(pd.DataFrame({"a": [1]}), tmp_path / "case.csv")


# --------------------------------------------------------------------------- path checks
@pytest.mark.parametrize("name", ["c.seg.nrrd", "c.SEG.NRRD", "c.nrrd", "c.NRRD", "c.nii.gz", "c.nii", "c.mha",
                                  "c.MHA", "my.case.nii.gz"])
def test_labelmap_suffixes_accepted(tmp_path, name):
    assert check_labelmap_path(tmp_path / name) == tmp_path / name


@pytest.mark.parametrize("name, phrase", [
    ("c.png", "'.png'"), ("c.tif", "'.tif'"), ("c.vtk", "'.vtk'"), ("c.mhd", "'.mhd'"), ("c.nhdr", "'.nhdr'"),
    ("c.csv", "'.csv'"), ("c", "no extension"), ("c.tar.gz", "'.tar.gz'"), ("c.NII.GZ", "lower case"),
    ("c.Nii", "lower case"),
])
def test_labelmap_suffixes_refused(tmp_path, name, phrase):
    with pytest.raises(InputError) as info:
        check_labelmap_path(tmp_path / name, "--fat-labelmap")
    msg = str(info.value)
    assert msg.startswith(f"--fat-labelmap {tmp_path / name}: ") and phrase in msg


def test_output_checks_create_nothing(tmp_path):
    (tmp_path / "f.txt").write_text("x")
    assert check_output_file(tmp_path / "a" / "b" / "case.csv") == tmp_path / "a" / "b" / "case.csv"
    assert check_output_folder(tmp_path / "qc" / "deep") == tmp_path / "qc" / "deep"
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_output_folder(tmp_path / "f.txt" / "qc")
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_output_file(tmp_path / "f.txt" / "deeper" / "case.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_unwritable_folder_is_refused(tmp_path):  # pragma: no cover - CI runs as root here
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    try:
        with pytest.raises(InputError, match="no permission to write"):
            check_output_file(ro / "case.csv", "--output")
    finally:
        os.chmod(ro, 0o700)


# --------------------------------------------------------------------------- OutputSet
def _tables(tag):
    return {f"{n}.csv": pd.DataFrame({"run": [tag], "value": [-float(i) - 0.5]}) for i, n in enumerate("abcd")}


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _write_set(folder, tag, **kw):
    with OutputSet(folder, **kw) as out:
        for name, df in _tables(tag).items():
            out.write_csv(df, name)
    return out


def test_output_set_writes_every_file_and_leaves_no_temporary(tmp_path):
    out = _write_set(tmp_path / "new" / "folder", "A")
    folder = tmp_path / "new" / "folder"
    assert out.written == [folder / f"{n}.csv" for n in "abcd"]
    assert sorted(_files(folder)) == ["a.csv", "b.csv", "c.csv", "d.csv"]
    for i, n in enumerate("abcd"):
        assert pd.read_csv(folder / f"{n}.csv").to_dict("list") == {"run": ["A"], "value": [-i - 0.5]}


def test_output_set_error_in_the_block_changes_nothing(tmp_path):
    _write_set(tmp_path, "A")
    before = _files(tmp_path)
    with pytest.raises(ZeroDivisionError):
        with OutputSet(tmp_path) as out:
            out.write_csv(_tables("B")["a.csv"], "a.csv")
            out.write_csv(_tables("B")["b.csv"], "b.csv")
            1 / 0
    assert _files(tmp_path) == before


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_output_set_failed_write_changes_nothing(tmp_path, monkeypatch, k):
    _write_set(tmp_path, "A")
    before = _files(tmp_path)
    real, calls = case_files.write_csv_atomic, []

    def flaky(df, path):
        calls.append(path)
        if len(calls) == k:
            raise OSError(errno.EROFS, "Read-only file system")
        return real(df, path)

    monkeypatch.setattr(case_files, "write_csv_atomic", flaky)
    with pytest.raises(InputError) as info:
        _write_set(tmp_path, "B", option="--output")
    msg = str(info.value)
    assert msg.startswith(f"--output {tmp_path / 'abcd'[k - 1]}.csv: could not write the file (Read-only file system)")
    assert "nothing was changed" in msg
    assert _files(tmp_path) == before


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("hard_links", [True, False], ids=["hardlink-backup", "copy-backup"])
def test_output_set_failed_move_rolls_back(tmp_path, monkeypatch, k, hard_links):
    (tmp_path / "a.csv").write_bytes(b"old a\n")
    (tmp_path / "c.csv").write_bytes(b"old c\n")  # b and d are new in this run
    before = _files(tmp_path)
    if not hard_links:
        def no_link(*args, **kwargs):
            raise OSError(errno.EPERM, "Operation not permitted")
        monkeypatch.setattr(case_files.os, "link", no_link)
    real, calls = case_files._move, []

    def flaky(src, dst):
        calls.append(dst)
        if len(calls) == k:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(src, dst)

    monkeypatch.setattr(case_files, "_move", flaky)
    with pytest.raises(InputError, match="could not replace the file .Permission denied.; nothing was changed"):
        _write_set(tmp_path, "B")
    assert _files(tmp_path) == before


def test_output_set_rollback_failure_says_where_the_backups_are(tmp_path, monkeypatch):
    for n in "abcd":
        (tmp_path / f"{n}.csv").write_bytes(f"old {n}\n".encode())
    real, calls = case_files._move, []

    def flaky(src, dst):
        calls.append(dst)
        if len(calls) in (3, 4):  # moving c fails, then restoring b fails
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(src, dst)

    monkeypatch.setattr(case_files, "_move", flaky)
    with pytest.raises(InputError) as info:
        _write_set(tmp_path, "B")
    msg = str(info.value)
    assert f"restoring the previous version failed for {tmp_path / 'b.csv'}" in msg
    backups = [p for p in tmp_path.iterdir() if p.name.startswith(".paraspinalfat-")]
    assert len(backups) == 1 and str(backups[0] / ".backup") in msg
    assert (backups[0] / ".backup" / "b.csv").read_bytes() == b"old b\n"
    assert (tmp_path / "a.csv").read_bytes() == b"old a\n"  # restored
    assert (tmp_path / "c.csv").read_bytes() == b"old c\n"  # never replaced
    assert pd.read_csv(tmp_path / "b.csv")["run"].tolist() == ["B"]  # the one that could not be restored


def test_output_set_removes_stale_files_with_the_commit_and_restores_them_on_failure(tmp_path, monkeypatch):
    (tmp_path / "a.csv").write_bytes(b"old a\n")
    (tmp_path / "old_slices.csv").write_bytes(b"old slices\n")
    with OutputSet(tmp_path) as out:
        out.write_csv(_tables("B")["a.csv"], "a.csv")
        out.remove("old_slices.csv")
        out.remove("never_there.csv")
    assert out.removed == [tmp_path / "old_slices.csv"]
    assert sorted(_files(tmp_path)) == ["a.csv"]
    # a failing removal puts everything back
    (tmp_path / "old_slices.csv").write_bytes(b"old slices\n")
    before = _files(tmp_path)

    real_unlink = os.unlink

    def locked(path, *args, **kwargs):
        if str(path) == str(tmp_path / "old_slices.csv"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(case_files.os, "unlink", locked)
    with pytest.raises(InputError, match="old_slices.csv: could not replace"):
        with OutputSet(tmp_path) as out:
            out.write_csv(_tables("C")["a.csv"], "a.csv")
            out.remove("old_slices.csv")
    monkeypatch.undo()
    assert _files(tmp_path) == before


def test_output_set_other_writers_and_misuse(tmp_path):
    with OutputSet(tmp_path) as out:
        out.path("classes.nii.gz").write_bytes(b"labelmap")
        target = out.write_csv(pd.DataFrame({"a": [1]}), "t.csv")
        assert target == tmp_path / "t.csv" and not target.exists()  # nothing in place before the commit
        with pytest.raises(ValueError, match="written twice"):
            out.path("t.csv")
        for bad in ("../t.csv", "sub/t.csv", "", ".."):
            with pytest.raises(ValueError, match="not a plain file name"):
                out.path(bad)
    assert sorted(_files(tmp_path)) == ["classes.nii.gz", "t.csv"]
    assert (tmp_path / "classes.nii.gz").read_bytes() == b"labelmap"
    with pytest.raises(InputError, match="was not written; nothing was changed"):
        with OutputSet(tmp_path) as out:
            out.write_csv(pd.DataFrame({"a": [2]}), "t.csv")
            out.path("never_written.png")
    assert pd.read_csv(tmp_path / "t.csv")["a"].tolist() == [1]
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(InputError, match="dir.csv: this is a folder"):
        with OutputSet(tmp_path) as out:
            out.write_csv(pd.DataFrame({"a": [3]}), "dir.csv")
    with pytest.raises(RuntimeError, match="context manager"):
        OutputSet(tmp_path).path("x.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classes.nii.gz", "dir.csv", "t.csv"]  # no temporary left


def test_output_set_folder_under_a_file_is_refused(tmp_path):
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(InputError, match="cannot create this folder"):
        with OutputSet(tmp_path / "f.txt" / "out", option="--output"):
            pass


def test_fat_labelmap_on_a_sheared_grid_is_refused_as_nifti_and_kept_in_nrrd(tmp_path):
    """SimpleITK writes NIfTI on an orthogonal grid: a sheared image's labelmap would move."""
    import warnings

    import SimpleITK as sitk

    from ParaspinalFatLib import measure
    from ParaspinalFatLib.errors import InputError
    from ParaspinalFatLib.phantom import make_phantom

    ph = make_phantom(size=(60, 50, 12), spacing=(2.5, 2.6, 4.0), level_slices=(9, 6, 3),
                      crop_segmentation=False)
    shear = np.deg2rad(15.0)  # the j axis leans towards i by 15 degrees (gantry-tilt-like)
    direction = np.array([[1.0, np.sin(shear), 0.0], [0.0, np.cos(shear), 0.0], [0.0, 0.0, 1.0]])
    img = sitk.Image(ph.image)
    img.SetDirection(tuple(direction.ravel()))
    seg = ph.segmentation
    from ParaspinalFatLib.geometry import Geometry

    seg.geometry = Geometry.from_sitk(img)
    with pytest.raises(InputError, match=r"c\.nii\.gz: the image grid is sheared \(15\.00 degrees"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            measure(img, seg, map_kind="pdff", fat_labelmap=str(tmp_path / "c.nii.gz"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        measure(img, seg, map_kind="pdff", fat_labelmap=str(tmp_path / "c.nrrd"))
    back = sitk.ReadImage(str(tmp_path / "c.nrrd"))
    np.testing.assert_allclose(back.GetDirection(), direction.ravel(), atol=1e-9)

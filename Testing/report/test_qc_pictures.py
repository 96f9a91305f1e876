"""QC pictures: exact colours at voxel centres, outlines, aspect, level lines, atomic writes."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from ParaspinalFatLib.errors import InputError, MissingDependencyError
from ParaspinalFatLib.report.qc_pictures import DEFAULT_FAT_COLOR, DEFAULT_LEVEL_LINE_COLOR, DEFAULT_OUTLINE_COLORS, DEFAULT_UNDEFINED_COLOR, LPS_AXIAL_EDGE_LABELS, QCFigureInfo, RoiOverlay, read_qc_info, render_level_slice, render_sagittal_overview, voxel_to_pixel

TOL = 1.0 / 255.0 + 1e-9


@pytest.fixture(scope="module")
def mpl():
    return pytest.importorskip("matplotlib")


def read_rgb(path) -> np.ndarray:
    """PNG as float RGB in [0, 1] (exact multiples of 1/255)."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0


def close(pixel, color, tol=TOL) -> bool:
    return bool(np.all(np.abs(np.asarray(pixel, float) - np.asarray(color, float)) <= tol))


SPACING = (0.8, 1.25)  # (row_mm, col_mm): strongly anisotropic


def synthetic_slice():
    """A 60 x 48 slice: muscle (grey ~ 300) in a disk ROI, fat blocks and undefined voxels."""
    rng = np.random.default_rng(7)
    rows, cols = 60, 48
    y, x = np.mgrid[0:rows, 0:cols]
    yy, xx = (y - 30) * SPACING[0], (x - 24) * SPACING[1]
    image = 100.0 + rng.normal(0, 5, (rows, cols))
    mask = xx ** 2 + yy ** 2 < 14.0 ** 2  # disk of radius 14 mm (an ellipse in voxels)
    image[mask] = 300.0 + rng.normal(0, 10, mask.sum())
    fat = np.zeros_like(mask)
    fat[26:29, 20:22] = True  # well inside the disk
    fat[33, 27] = True
    undefined = np.zeros_like(mask)
    undefined[30, 18] = True
    undefined[24, 25] = True
    image[fat] = 800.0
    image[undefined] = np.nan
    lean = (31, 23)  # a muscle voxel, neither fat nor undefined
    assert mask[lean] and not fat[lean] and not undefined[lean]
    assert np.all(mask[fat]) and np.all(mask[undefined])
    return image, mask, fat, undefined, lean


@pytest.fixture(scope="module")
def level_png(tmp_path_factory, mpl):
    image, mask, fat, undefined, lean = synthetic_slice()
    out = tmp_path_factory.mktemp("qc") / "level.png"
    roi = RoiOverlay("MF L", mask, fat, undefined, "MF L: CSA 612 mm², FF 18.2 %, Goutallier 1")
    path = render_level_slice(out, image, SPACING, [roi], title="L4/5 | slice 23 | offset +0.8 mm",
                              edge_labels=LPS_AXIAL_EDGE_LABELS)
    return path, image, mask, fat, undefined, lean


def test_fat_lean_and_undefined_colours_at_voxel_centres(level_png):
    path, image, mask, fat, undefined, lean = level_png
    png = read_rgb(path)
    info = read_qc_info(path)
    assert png.shape[:2] == (info.png_height, info.png_width)
    ph, pw = info.px_per_voxel
    assert min(ph, pw) >= 4  # each voxel covers several output pixels
    for j, i in zip(*np.nonzero(fat)):
        r, c = voxel_to_pixel(path, j, i)
        assert close(png[r, c], DEFAULT_FAT_COLOR), (j, i, png[r, c])
    for j, i in zip(*np.nonzero(undefined)):
        r, c = voxel_to_pixel(info, j, i)
        assert close(png[r, c], DEFAULT_UNDEFINED_COLOR), (j, i, png[r, c])
    r, c = voxel_to_pixel(info, *lean)
    rgb = png[r, c]
    assert rgb[0] == rgb[1] == rgb[2]  # grey
    lo, hi = info.window
    expected = np.clip((image[lean] - lo) / (hi - lo), 0, 1)
    assert abs(rgb[0] - expected) <= TOL
    # every lean ROI voxel is grey: the fill touches fat/undefined voxels only
    lean_all = mask & ~fat & ~undefined
    jj, ii = np.nonzero(lean_all)
    rr, cc = voxel_to_pixel(info, jj, ii)
    sample = png[rr, cc]
    assert np.all(sample[:, 0] == sample[:, 1]) and np.all(sample[:, 1] == sample[:, 2])


def test_outline_colour_on_roi_boundary(level_png):
    path, image, mask, *_ = level_png
    png = read_rgb(path)
    info = read_qc_info(path)
    ph, pw = info.px_per_voxel
    color = DEFAULT_OUTLINE_COLORS[0]
    rows, cols = np.nonzero(mask)
    # the extreme voxels of the disk: left, right, top and bottom edges
    checks = []
    j = int(np.median(rows))
    i_left, i_right = cols[rows == j].min(), cols[rows == j].max()
    y = info.image_top + (j + 0.5) * ph
    checks.append((y, info.image_left + i_left * pw, "x"))  # edge at the left of the voxel
    checks.append((y, info.image_left + (i_right + 1) * pw, "x"))
    i = int(np.median(cols))
    j_top, j_bottom = rows[cols == i].min(), rows[cols == i].max()
    x = info.image_left + (i + 0.5) * pw
    checks.append((info.image_top + j_top * ph, x, "y"))
    checks.append((info.image_top + (j_bottom + 1) * ph, x, "y"))
    for yy, xx, across in checks:
        r, c = int(np.floor(yy)), int(np.floor(xx))
        if across == "x":
            window = png[r, c - 2:c + 3]
        else:
            window = png[r - 2:r + 3, c]
        assert any(close(p, color) for p in window), (yy, xx, window)
    # and the outline colour is not inside the ROI away from its boundary
    r, c = voxel_to_pixel(info, 30, 24)
    assert not close(png[r, c], color)


def test_aspect_ratio_follows_anisotropic_spacing(tmp_path, mpl):
    rows, cols = 40, 64
    image = np.full((rows, cols), 10.0)
    path = render_level_slice(tmp_path / "aspect.png", image, SPACING, [], window=(0, 5), scale_bar=False)
    png = read_rgb(path)
    white = np.all(png == 1.0, axis=2)  # the image is saturated white on a black figure
    rr, cc = np.nonzero(white)
    height, width = rr.max() - rr.min() + 1, cc.max() - cc.min() + 1
    expected = (cols * SPACING[1]) / (rows * SPACING[0])
    assert width / height == pytest.approx(expected, rel=0.02)
    info = read_qc_info(path)
    assert (rr.min(), cc.min(), height, width) == (info.image_top, info.image_left, info.image_height,
                                                   info.image_width)
    # swapping the spacing changes the shape accordingly
    path2 = render_level_slice(tmp_path / "aspect2.png", image, SPACING[::-1], [], window=(0, 5))
    info2 = read_qc_info(path2)
    assert info2.image_width / info2.image_height == pytest.approx(
        (cols * SPACING[0]) / (rows * SPACING[1]), rel=0.02)


@pytest.mark.parametrize("flip_lr,flip_ud,crop", [(False, False, None), (True, False, None),
                                                   (False, True, 3.0), (True, True, 3.0)])
def test_every_voxel_centre_maps_exactly(tmp_path, mpl, flip_lr, flip_ud, crop):
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, size=(23, 31)).astype(float)
    mask = np.zeros(image.shape, dtype=bool)
    mask[5:15, 8:20] = True
    path = render_level_slice(tmp_path / "map.png", image, (1.1, 0.7), [RoiOverlay("box", mask)],
                              window=(0, 255), flip_lr=flip_lr, flip_ud=flip_ud, crop_margin_mm=crop,
                              labels="none", min_image_px=200)
    png = np.round(read_rgb(path) * 255).astype(int)
    info = read_qc_info(path)
    r0, c0 = info.row_offset, info.col_offset
    jj, ii = np.mgrid[r0:r0 + info.n_rows, c0:c0 + info.n_cols]
    rr, cc = voxel_to_pixel(path, jj.ravel(), ii.ravel())
    got = png[rr, cc]
    assert np.array_equal(got[:, 0], image[jj.ravel(), ii.ravel()].astype(int))
    assert np.array_equal(got[:, 0], got[:, 2])
    if crop is not None:
        assert (info.n_rows, info.n_cols) != image.shape


def test_sagittal_level_lines_on_expected_rows(tmp_path, mpl):
    rows, cols = 30, 120
    image = np.full((rows, cols), 50.0)
    lines = [("L3/4", 21.5, "vertebra masks"), ("L4/5", 13.25, "vertebra masks"), ("L5/S1", 5.0, "disc masks"),
             ("L2/3", 40.0, "markups")]  # the last lies outside the image
    path = render_sagittal_overview(tmp_path / "sag.png", image, (4.0, 0.9), lines, title="sagittal",
                                    window=(0, 100), flip_ud=True, edge_labels=("A", "P", "I", "S"))
    png = read_rgb(path)
    info = read_qc_info(path)
    assert info.kind == "sagittal_overview"
    assert info.image_width / info.image_height == pytest.approx((cols * 0.9) / (rows * 4.0), rel=0.02)
    x_mid = int(info.image_left + info.image_width / 2)
    column = png[info.image_top:info.image_top + info.image_height, x_mid]
    hits = np.nonzero([close(p, DEFAULT_LEVEL_LINE_COLOR) for p in column])[0] + info.image_top
    expected_rows = []
    for label, row, _ in lines[:3]:
        y = info.voxel_center_px(row, 0)[0]
        # flip_ud: cranial (high row index) is at the top of the picture
        assert y == pytest.approx(info.image_top + (rows - 1 - row + 0.5) * info.image_height / rows)
        near = hits[np.abs(hits - y) <= 2]
        assert near.size > 0, (label, y, hits)
        expected_rows.append(y)
    # nothing else in the image column has the line colour
    for h in hits:
        assert min(abs(h - y) for y in expected_rows) <= 2
    # the grey away from the lines is plain grey
    y_free = int(info.image_top + 0.5 * info.image_height / rows)
    assert close(png[y_free, x_mid], (0.5, 0.5, 0.5))


def test_missing_matplotlib_gives_install_hint(tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingDependencyError, match=r"pip install paraspinalfat\[report\]"):
        render_level_slice(tmp_path / "x.png", np.zeros((4, 4)), (1, 1), [])
    with pytest.raises(MissingDependencyError, match=r"pip install paraspinalfat\[report\]"):
        render_sagittal_overview(tmp_path / "y.png", np.zeros((4, 4)), (1, 1), [])
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_leaves_no_temporary_files(tmp_path, mpl, monkeypatch):
    image, mask, fat, undefined, _ = synthetic_slice()
    out = tmp_path / "sub" / "level.png"
    render_level_slice(out, image, SPACING, [RoiOverlay("MF L", mask, fat, undefined)])
    assert sorted(p.name for p in out.parent.iterdir()) == ["level.png"]
    before = out.read_bytes()
    render_sagittal_overview(tmp_path / "sub" / "sag.png", image, SPACING, [("L4/5", 10.0, "test")])
    assert sorted(p.name for p in out.parent.iterdir()) == ["level.png", "sag.png"]

    # a failure while writing leaves the old picture intact and no temporary file
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    def broken_print_png(self, fh, *args, **kwargs):
        fh.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(FigureCanvasAgg, "print_png", broken_print_png)
    with pytest.raises(RuntimeError, match="disk full"):
        render_level_slice(out, image * 2, SPACING, [RoiOverlay("MF L", mask, fat, undefined)])
    assert sorted(p.name for p in out.parent.iterdir()) == ["level.png", "sag.png"]
    assert out.read_bytes() == before


def test_no_pyplot_and_no_global_state(tmp_path, mpl):
    pyplot_before = "matplotlib.pyplot" in sys.modules
    backend = mpl.get_backend() if pyplot_before else None

    def rc():  # raw values: reading rcParams["backend"] itself would import pyplot
        return dict(dict.items(mpl.rcParams))

    rc_before = rc()
    image, mask, fat, undefined, _ = synthetic_slice()
    render_level_slice(tmp_path / "a.png", image, SPACING, [RoiOverlay("MF L", mask, fat, undefined)])
    if not pyplot_before:
        assert "matplotlib.pyplot" not in sys.modules
    else:
        assert mpl.get_backend() == backend
    assert rc() == rc_before


def test_info_round_trip_and_errors(tmp_path, level_png, mpl):
    path = level_png[0]
    info = read_qc_info(path)
    assert QCFigureInfo.from_json(info.to_json()) == info
    assert voxel_to_pixel(path, 3, 4) == info.voxel_to_pixel(3, 4)
    assert isinstance(voxel_to_pixel(info, 3, 4)[0], int)
    # a PNG without the record
    from PIL import Image

    plain = tmp_path / "plain.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(plain)
    with pytest.raises(InputError, match="no 'ParaspinalFat-QC' record"):
        read_qc_info(plain)
    not_png = tmp_path / "x.png"
    not_png.write_text("hello")
    with pytest.raises(InputError, match="not a PNG"):
        read_qc_info(not_png)


def test_bad_arguments_are_input_errors(tmp_path, mpl):
    img = np.zeros((10, 12))
    good = np.zeros((10, 12), bool)
    with pytest.raises(InputError, match="ROI 'MF L' mask has shape"):
        render_level_slice(tmp_path / "a.png", img, (1, 1), [RoiOverlay("MF L", np.zeros((10, 11), bool))])
    with pytest.raises(InputError, match="fat layer"):
        render_level_slice(tmp_path / "a.png", img, (1, 1), [RoiOverlay("MF L", good, np.zeros((3, 3), bool))])
    with pytest.raises(InputError, match="pixel_spacing"):
        render_level_slice(tmp_path / "a.png", img, (1, 0), [])
    with pytest.raises(InputError, match="2-D"):
        render_level_slice(tmp_path / "a.png", np.zeros((2, 3, 4)), (1, 1), [])
    with pytest.raises(InputError, match="window"):
        render_level_slice(tmp_path / "a.png", img, (1, 1), [], window=(5, 5))
    with pytest.raises(InputError, match=r"\.png"):
        render_level_slice(tmp_path / "a.jpg", img, (1, 1), [])
    with pytest.raises(InputError, match="not finite"):
        render_sagittal_overview(tmp_path / "s.png", img, (1, 1), [("L4/5", float("nan"), "x")])
    assert not any(p.suffix == ".tmp" or p.name.startswith(".") for p in tmp_path.iterdir())


def test_empty_roi_and_nan_slice_still_render(tmp_path, mpl):
    img = np.full((20, 20), np.nan)
    img[5:15, 5:15] = 1.0
    path = render_level_slice(tmp_path / "e.png", img, (1, 1),
                              [RoiOverlay("MF R", np.zeros((20, 20), bool), None, None, "MF R: empty")])
    png = read_rgb(path)
    info = read_qc_info(path)
    assert close(png[voxel_to_pixel(info, 0, 0)], (0, 0, 0))  # NaN shows black
    assert os.path.getsize(path) > 0


def test_global_rcparams_cannot_break_the_pixel_grid(tmp_path, mpl):
    """A user's global style (tight bbox, autolayout, LaTeX, transparent...) is ignored."""
    image, mask, fat, undefined, _ = synthetic_slice()
    hostile = {"savefig.bbox": "tight", "figure.autolayout": True, "savefig.transparent": True,
               "text.usetex": True, "image.interpolation": "bilinear", "savefig.dpi": 37,
               "figure.facecolor": "red", "font.size": 30}
    with mpl.rc_context(hostile):
        path = render_level_slice(tmp_path / "h.png", image, SPACING,
                                  [RoiOverlay("MF_L $x$", mask, fat, undefined, "cost $5, 10 % fat")],
                                  title="a_b $c$", labels="auto")
    png = read_rgb(path)
    info = read_qc_info(path)
    assert png.shape[:2] == (info.png_height, info.png_width)
    for j, i in zip(*np.nonzero(fat)):
        assert close(png[voxel_to_pixel(info, j, i)], DEFAULT_FAT_COLOR)


def test_options_legend_labels_alpha_and_named_colours(tmp_path, mpl):
    image, mask, fat, undefined, lean = synthetic_slice()
    rois = [RoiOverlay("MF L", mask, fat, undefined, "MF L: FF 18.2 %"),
            RoiOverlay("ES L", np.zeros_like(mask), None, None, "ES L: not drawn")]
    path = render_level_slice(tmp_path / "o.png", image, SPACING, rois, labels="legend", fill_alpha=0.5,
                              fat_color="red", undefined_color="#00ff00", outline_colors={"MF L": "white"},
                              window=(0, 1000), flip_lr=True)
    png = read_rgb(path)
    info = read_qc_info(path)
    j, i = np.argwhere(fat)[0]
    grey = np.clip(image[j, i] / 1000.0, 0, 1)
    assert close(png[voxel_to_pixel(info, j, i)], (0.5 + 0.5 * grey, 0.5 * grey, 0.5 * grey), tol=1.01 / 255)
    j, i = np.argwhere(undefined)[0]
    assert close(png[voxel_to_pixel(info, j, i)], (0, 1, 0))
    with pytest.raises(InputError, match="not a colour"):
        render_level_slice(tmp_path / "o.png", image, SPACING, rois, fat_color="no-such-colour")
    with pytest.raises(InputError, match="labels must be"):
        render_level_slice(tmp_path / "o.png", image, SPACING, rois, labels="everywhere")


def test_sagittal_tilted_level_lines_by_end_points_slope_and_point(tmp_path, mpl):
    rows, cols = 30, 120
    image = np.full((rows, cols), 50.0)
    lines = [("A", ((5.0, 10.0), (20.0, 100.0)), "two end points"),   # row = 5 + (col - 10) / 6
             ("B", 12.0, "row and slope", 0.05),                    # row = 12 + 0.05 (col - 59.5)
             ("C", (24.0, 30.0), "point and slope", -0.1),          # row = 24 - 0.1 (col - 30)
             ("D", ((100.0, 0.0), (101.0, 10.0)), "misses the image")]
    expected = [lambda c: 5.0 + (c - 10.0) / 6.0, lambda c: 12.0 + 0.05 * (c - 59.5), lambda c: 24.0 - 0.1 * (c - 30.0)]
    path = render_sagittal_overview(tmp_path / "tilted.png", image, (4.0, 0.9), lines, window=(0, 100),
                                    flip_ud=True, flip_lr=True, edge_labels=("A", "P", "I", "S"))
    png = read_rgb(path)
    info = read_qc_info(path)
    top, height = info.image_top, info.image_height
    for c in range(0, cols, 7):
        ys = []
        for row_of in expected:
            y, x = info.voxel_center_px(row_of(c), c)  # the flips are applied by the mapping
            ys.append(y)
            column = png[int(np.floor(y)) - 2: int(np.floor(y)) + 3, int(np.floor(x))]
            assert any(close(p, DEFAULT_LEVEL_LINE_COLOR) for p in column), (c, row_of(c))
        # nothing else in this image column has the line colour (D lies outside the image)
        x_px = int(np.floor(info.voxel_center_px(0, c)[1]))
        hits = [top + n for n, p in enumerate(png[top:top + height, x_px]) if close(p, DEFAULT_LEVEL_LINE_COLOR)]
        assert hits and all(min(abs(h - y) for y in ys) <= 3 for h in hits), (c, hits, ys)
    # flip_lr mirrors the line: with the flip the left end of A (row 3.3 at col 0) is at the viewer's right
    y0, x0 = info.voxel_center_px(expected[0](0.0), 0.0)
    y1, x1 = info.voxel_center_px(expected[0](119.0), 119.0)
    assert x0 > x1 and y0 > y1  # flip_ud: the low row (3.3) is near the bottom


def test_horizontal_line_forms_give_the_same_picture(tmp_path, mpl):
    image = np.tile(np.linspace(0, 100, 40), (25, 1))
    forms = [("L4/5", 13.25, "x"), ("L4/5", 13.25, "x", 0.0), ("L4/5", (13.25, 3.0), "x"),
             ("L4/5", ((13.25, -4.0), (13.25, 70.0)), "x")]
    pictures = [read_rgb(render_sagittal_overview(tmp_path / f"h{n}.png", image, (3.0, 1.0), [form], window=(0, 100)))
                for n, form in enumerate(forms)]
    for other in pictures[1:]:
        assert np.array_equal(pictures[0], other)


def test_bad_tilted_lines_are_input_errors(tmp_path, mpl):
    img = np.zeros((10, 12))
    bad = [(("L4/5", ((3.0, 4.0), (3.0, 4.0)), "x"), "same point"),
           (("L4/5", ((3.0, 4.0), (5.0, 6.0)), "x", 0.2), "two end points and a slope"),
           (("L4/5", 3.0, "x", float("nan")), "slope is not finite"),
           (("L4/5", (3.0, float("inf")), "x"), "point coordinate is not finite"),
           (("L4/5", ((3.0, "a"), (5.0, 6.0)), "x"), "is not a number"),
           (("L4/5", 3.0, "x", 0.1, 7), "must be")]
    for line, message in bad:
        with pytest.raises(InputError, match=message):
            render_sagittal_overview(tmp_path / "s.png", img, (1, 1), [line])
    assert list(tmp_path.iterdir()) == []
